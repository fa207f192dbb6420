//! Geo commands on sorted sets whose scores are Redis's 52-bit geohashes ([`crate::types::geohash`]):
//! GEOADD, GEODIST, GEOHASH, GEOPOS, GEOSEARCH. A search scans the grid cells Redis scans (centre cell
//! first, then its neighbours). GEOSEARCHSTORE and the GEORADIUS family come next.

use bytes::Bytes;

use super::collection::{load, read};
use super::{Args, CmdError, Ctx};
use crate::engine::ValueKind;
use crate::resp::Reply;
use crate::types::geohash;
use crate::types::zset;
use crate::types::zset_index::{InsertOutcome, ZsetIndex};

/// ```text
/// GEOADD key [NX | XX] [CH] longitude latitude member [longitude latitude member ...]
/// ```
pub fn geoadd(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let (mut nx, mut xx, mut ch) = (false, false, false);
    loop {
        if args.eat("NX") {
            nx = true;
        } else if args.eat("XX") {
            xx = true;
        } else if args.eat("CH") {
            ch = true;
        } else {
            break;
        }
    }
    let rest = args.rest();
    if rest.is_empty() || !rest.len().is_multiple_of(3) {
        return Err(CmdError::Syntax);
    }
    if nx && xx {
        // GEOADD answers a plain syntax error here, unlike ZADD.
        return Err(CmdError::Syntax);
    }
    let mut items = Vec::with_capacity(rest.len() / 3);
    for triple in rest.chunks(3) {
        let longitude = super::args::parse_f64(&triple[0]).ok_or(CmdError::NotFloat)?;
        let latitude = super::args::parse_f64(&triple[1]).ok_or(CmdError::NotFloat)?;
        let score = geohash::score(longitude, latitude).map_err(|err| CmdError::Raw(err.to_string().into()))?;
        items.push((score as f64, triple[2].clone()));
    }
    let db = ctx.db();
    let mut slot = ctx.engine.lock_key(&key);
    let (mut index, expire, existed) = match load(&mut slot, db, &key)? {
        Some((index, expire)) => (index, expire, true),
        None => (ZsetIndex::new(), None, false),
    };
    let (mut added, mut updated) = (0i64, 0i64);
    if existed || !xx {
        for (score, member) in items {
            let exists = index.score(&member).is_some();
            if (nx && exists) || (xx && !exists) {
                continue;
            }
            match index.insert(&member, score).map_err(|_| CmdError::NotFloat)? {
                InsertOutcome::Added => added += 1,
                InsertOutcome::Updated(_) => updated += 1,
                InsertOutcome::Unchanged => {}
            }
        }
    }
    let changed = added + updated > 0;
    if changed {
        slot.set(db, &key, ValueKind::SortedSet, &zset::to_bytes(&index), expire)?;
    }
    slot.commit()?;
    if changed {
        ctx.touch(db, &key);
    }
    Ok(Reply::Int(if ch { added + updated } else { added }))
}

/// ```text
/// GEODIST key member1 member2 [M | KM | FT | MI]
/// ```
pub fn geodist(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let first = args.next_bytes()?;
    let second = args.next_bytes()?;
    let unit = if args.is_empty() {
        1.0
    } else {
        geohash::unit_to_meters(&args.next_bytes()?)
            .ok_or_else(|| CmdError::err("unsupported unit provided. please use M, KM, FT, MI"))?
    };
    args.finish()?;
    let Some(index) = read::<ZsetIndex>(ctx, &key)? else { return Ok(Reply::Nil) };
    let (Some(a), Some(b)) = (index.score(&first), index.score(&second)) else { return Ok(Reply::Nil) };
    let (lon1, lat1) = geohash::decode_score(a);
    let (lon2, lat2) = geohash::decode_score(b);
    Ok(Reply::bulk(geohash::format_distance(geohash::distance(lon1, lat1, lon2, lat2) / unit)))
}

/// ```text
/// GEOHASH key [member [member ...]]
/// ```
pub fn geohash_command(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let members = args.rest();
    let index = read::<ZsetIndex>(ctx, &key)?;
    Ok(Reply::Array(
        members
            .iter()
            .map(|m| {
                index.as_ref().and_then(|i| i.score(m)).map_or(Reply::Nil, |s| Reply::bulk(geohash::hash_string(s)))
            })
            .collect(),
    ))
}

/// ```text
/// GEOPOS key [member [member ...]]
/// ```
pub fn geopos(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let members: Vec<Bytes> = args.rest();
    let index = read::<ZsetIndex>(ctx, &key)?;
    Ok(Reply::Array(
        members
            .iter()
            .map(|m| match index.as_ref().and_then(|i| i.score(m)) {
                Some(score) => {
                    let (lon, lat) = geohash::decode_score(score);
                    Reply::Array(vec![
                        Reply::DoubleText(geohash::format_coordinate(lon).into()),
                        Reply::DoubleText(geohash::format_coordinate(lat).into()),
                    ])
                }
                None => Reply::NilArray,
            })
            .collect(),
    ))
}

/// One GEOSEARCH match: member, distance in the request's unit, score.
struct Found {
    member: Bytes,
    distance: f64,
    score: f64,
}

/// ```text
/// GEOSEARCH key <FROMMEMBER member | FROMLONLAT longitude latitude>
///   <BYRADIUS radius <M | KM | FT | MI> | BYBOX width height <M | KM | FT | MI>>
///   [ASC | DESC] [COUNT count [ANY]] [WITHCOORD] [WITHDIST] [WITHHASH]
/// ```
pub fn geosearch(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let (mut from_member, mut from_lonlat) = (None, None);
    let (mut radius, mut boxed) = (None, None);
    let (mut sort, mut count, mut any) = (None::<bool>, None::<i64>, false);
    let (mut with_coord, mut with_dist, mut with_hash) = (false, false, false);
    let unit = |bytes: &[u8]| {
        geohash::unit_to_meters(bytes)
            .ok_or_else(|| CmdError::err("unsupported unit provided. please use M, KM, FT, MI"))
    };
    let float = |bytes: &[u8]| super::args::parse_f64(bytes).ok_or(CmdError::NotFloat);
    while !args.is_empty() {
        if args.remaining() >= 2 && args.eat("FROMMEMBER") {
            if from_member.is_some() || from_lonlat.is_some() {
                return Err(CmdError::Syntax);
            }
            from_member = Some(args.next_bytes()?);
        } else if args.remaining() >= 3 && args.eat("FROMLONLAT") {
            if from_member.is_some() || from_lonlat.is_some() {
                return Err(CmdError::Syntax);
            }
            let lon = float(&args.next_bytes()?)?;
            let lat = float(&args.next_bytes()?)?;
            geohash::validate(lon, lat).map_err(|err| CmdError::Raw(err.to_string().into()))?;
            from_lonlat = Some((lon, lat));
        } else if args.remaining() >= 3 && args.eat("BYRADIUS") {
            if radius.is_some() || boxed.is_some() {
                return Err(CmdError::Syntax);
            }
            let r = float(&args.next_bytes()?)?;
            if r < 0.0 {
                return Err(CmdError::err("radius cannot be negative"));
            }
            let u = unit(&args.next_bytes()?)?;
            radius = Some((r * u, u));
        } else if args.remaining() >= 4 && args.eat("BYBOX") {
            if radius.is_some() || boxed.is_some() {
                return Err(CmdError::Syntax);
            }
            let w = float(&args.next_bytes()?)?;
            let h = float(&args.next_bytes()?)?;
            if w < 0.0 || h < 0.0 {
                return Err(CmdError::err("height or width cannot be negative"));
            }
            let u = unit(&args.next_bytes()?)?;
            boxed = Some((w * u, h * u, u));
        } else if args.eat("ASC") {
            sort = Some(true);
        } else if args.eat("DESC") {
            sort = Some(false);
        } else if args.remaining() >= 2 && args.eat("COUNT") {
            let n = args.next_i64()?;
            if n <= 0 {
                return Err(CmdError::err("COUNT must be > 0"));
            }
            count = Some(n);
        } else if args.eat("ANY") {
            any = true;
        } else if args.eat("WITHCOORD") {
            with_coord = true;
        } else if args.eat("WITHDIST") {
            with_dist = true;
        } else if args.eat("WITHHASH") {
            with_hash = true;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    if from_member.is_some() == from_lonlat.is_some() {
        return Err(CmdError::err("exactly one of FROMMEMBER or FROMLONLAT can be specified for GEOSEARCH"));
    }
    if radius.is_some() == boxed.is_some() {
        return Err(CmdError::err("exactly one of BYRADIUS and BYBOX can be specified for GEOSEARCH"));
    }
    if any && count.is_none() {
        return Err(CmdError::err("the ANY argument requires COUNT argument"));
    }
    let Some(index) = read::<ZsetIndex>(ctx, &key)? else { return Ok(Reply::Array(Vec::new())) };
    let (longitude, latitude) = match (from_lonlat, &from_member) {
        (Some(point), _) => point,
        (None, Some(member)) => {
            let score = index.score(member).ok_or_else(|| CmdError::err("could not decode requested zset member"))?;
            geohash::decode_score(score)
        }
        _ => return Err(CmdError::Syntax),
    };
    let (shape, unit_m) = match (radius, boxed) {
        (Some((radius_m, u)), _) => (geohash::Shape::Radius { longitude, latitude, radius_m }, u),
        (_, Some((width_m, height_m, u))) => (geohash::Shape::Box { longitude, latitude, width_m, height_m }, u),
        _ => return Err(CmdError::Syntax),
    };
    let areas = geohash::search_areas(&shape).map_err(|err| CmdError::Raw(err.to_string().into()))?;
    // Redis sorts ascending when COUNT is given without ANY and without an order.
    if sort.is_none() && count.is_some() && !any {
        sort = Some(true);
    }
    let mut found: Vec<Found> = Vec::new();
    'cells: for cell in areas.cells() {
        let (low, high) = geohash::score_range(cell);
        let ranks = index.score_rank_range(
            crate::types::zset_index::ScoreBound::Inclusive(low as f64),
            crate::types::zset_index::ScoreBound::Exclusive(high as f64),
        );
        for (member, score) in index.range(ranks) {
            let (lon, lat) = geohash::decode_score(score);
            if let Some(distance) = shape.contains(lon, lat) {
                found.push(Found { member: Bytes::copy_from_slice(member), distance: distance / unit_m, score });
                if any && count.is_some_and(|n| found.len() as i64 >= n) {
                    break 'cells;
                }
            }
        }
    }
    match sort {
        Some(true) => found.sort_by(|a, b| a.distance.total_cmp(&b.distance)),
        Some(false) => found.sort_by(|a, b| b.distance.total_cmp(&a.distance)),
        None => {}
    }
    if let Some(n) = count {
        found.truncate(n as usize);
    }
    Ok(Reply::Array(
        found
            .into_iter()
            .map(|item| {
                if !(with_coord || with_dist || with_hash) {
                    return Reply::Bulk(item.member);
                }
                let mut parts = vec![Reply::Bulk(item.member)];
                if with_dist {
                    parts.push(Reply::bulk(geohash::format_distance(item.distance)));
                }
                if with_hash {
                    parts.push(Reply::Int(item.score as i64));
                }
                if with_coord {
                    let (lon, lat) = geohash::decode_score(item.score);
                    parts.push(Reply::Array(vec![
                        Reply::DoubleText(geohash::format_coordinate(lon).into()),
                        Reply::DoubleText(geohash::format_coordinate(lat).into()),
                    ]));
                }
                Reply::Array(parts)
            })
            .collect(),
    ))
}
