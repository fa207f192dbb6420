//! Geo commands on sorted sets whose scores are Redis's 52-bit geohashes ([`crate::types::geohash`]):
//! GEOADD, GEODIST, GEOHASH, GEOPOS, and the searches GEOSEARCH, GEOSEARCHSTORE, GEORADIUS,
//! GEORADIUSBYMEMBER and their `_RO` forms, which share one parser and one search. A search scans the grid
//! cells Redis scans (centre cell first, then its neighbours).
//!
//! Everything goes through a [`Handle`] on the sorted set, so a large (split) set is never read whole:
//! GEOADD/GEOPOS/GEODIST/GEOHASH cost a few parts per member, and a search reads, for each grid cell, only
//! the members whose scores fall in the cell's range (two rank lookups and a range of the order tree).

use bytes::Bytes;

use super::collection::{inspect, update_notify, Handle};
use super::{Args, CmdError, Ctx};
use crate::engine::Slot;
use crate::resp::Reply;
use crate::types::geohash;
use crate::types::zset_index::{InsertOutcome, ScoreBound, ZsetIndex};

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
    // GEOADD is ZADD underneath, in Redis too: its event is `zadd`.
    let (added, updated) =
        update_notify(ctx, &key, (crate::server::notify::ZSET, "zadd"), |index: &mut Handle<ZsetIndex>, slot| {
            let (mut added, mut updated) = (0i64, 0i64);
            if index.existed() || !xx {
                for (score, member) in items {
                    let exists = index.score(slot, &member)?.is_some();
                    if (nx && exists) || (xx && !exists) {
                        continue;
                    }
                    match index.insert(slot, member, score)? {
                        InsertOutcome::Added => added += 1,
                        InsertOutcome::Updated(_) => updated += 1,
                        InsertOutcome::Unchanged => {}
                    }
                }
            }
            Ok(((added, updated), added + updated > 0))
        })?;
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
    let scores = inspect(ctx, &key, |index: &mut Handle<ZsetIndex>, slot| {
        Ok((index.score(slot, &first)?, index.score(slot, &second)?))
    })?;
    let (Some(a), Some(b)) = scores else { return Ok(Reply::Nil) };
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
    let scores = member_scores(ctx, &key, &members)?;
    Ok(Reply::Array(
        scores.into_iter().map(|score| score.map_or(Reply::Nil, |s| Reply::bulk(geohash::hash_string(s)))).collect(),
    ))
}

/// ```text
/// GEOPOS key [member [member ...]]
/// ```
pub fn geopos(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let members: Vec<Bytes> = args.rest();
    let scores = member_scores(ctx, &key, &members)?;
    Ok(Reply::Array(
        scores
            .into_iter()
            .map(|score| match score {
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

/// The scores of `members` (`None` for a missing member or key), one lookup each.
fn member_scores(ctx: &mut Ctx<'_>, key: &Bytes, members: &[Bytes]) -> Result<Vec<Option<f64>>, CmdError> {
    inspect(ctx, key, |index: &mut Handle<ZsetIndex>, slot| {
        members.iter().map(|member| index.score(slot, member)).collect()
    })
}

/// One search match: member, distance in the request's unit, score.
struct Found {
    member: Bytes,
    distance: f64,
    score: f64,
}

/// The search commands, which share one parser and one search (Redis's option rules differ slightly
/// between them: which keywords are allowed, whether the centre comes first).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// GEOSEARCH.
    Search,
    /// GEOSEARCHSTORE.
    SearchStore,
    /// GEORADIUS (`read_only` false) and GEORADIUS_RO.
    Radius { read_only: bool },
    /// GEORADIUSBYMEMBER and GEORADIUSBYMEMBER_RO.
    ByMember { read_only: bool },
}

impl Kind {
    fn is_search(self) -> bool {
        matches!(self, Kind::Search | Kind::SearchStore)
    }

    /// GEORADIUS and GEORADIUSBYMEMBER take `STORE key` and `STOREDIST key`.
    fn takes_store_key(self) -> bool {
        matches!(self, Kind::Radius { read_only: false } | Kind::ByMember { read_only: false })
    }
}

/// The area searched: a radius or a box, in metres, with the unit's size in metres.
#[derive(Clone, Copy)]
enum Size {
    Radius { radius_m: f64, unit_m: f64 },
    Box { width_m: f64, height_m: f64, unit_m: f64 },
}

/// A parsed search request.
#[derive(Default)]
struct Query {
    /// The centre; `None` only when the key is missing (a member centre cannot be resolved then).
    center: Option<(f64, f64)>,
    size: Option<Size>,
    /// `Some(true)` ascending, `Some(false)` descending.
    sort: Option<bool>,
    count: Option<i64>,
    any: bool,
    with_coord: bool,
    with_dist: bool,
    with_hash: bool,
    /// The destination of a STORE form.
    store: Option<Bytes>,
    /// Store distances instead of geohashes.
    store_dist: bool,
}

fn unit_of(bytes: &[u8]) -> Result<f64, CmdError> {
    geohash::unit_to_meters(bytes).ok_or_else(|| CmdError::err("unsupported unit provided. please use M, KM, FT, MI"))
}

fn float_or(bytes: &[u8], message: &'static str) -> Result<f64, CmdError> {
    super::args::parse_f64(bytes).ok_or_else(|| CmdError::err(message))
}

/// `longitude latitude`, validated.
fn lon_lat(args: &mut Args) -> Result<(f64, f64), CmdError> {
    let lon = args.next_f64()?;
    let lat = args.next_f64()?;
    geohash::validate(lon, lat).map_err(|err| CmdError::Raw(err.to_string().into()))?;
    Ok((lon, lat))
}

/// `radius unit`.
fn radius(args: &mut Args) -> Result<Size, CmdError> {
    let radius = float_or(&args.next_bytes()?, "need numeric radius")?;
    if radius < 0.0 {
        return Err(CmdError::err("radius cannot be negative"));
    }
    let unit_m = unit_of(&args.next_bytes()?)?;
    Ok(Size::Radius { radius_m: radius * unit_m, unit_m })
}

/// The position of `member` in the source; `None` when the source does not exist.
fn member_center(
    index: &mut Handle<ZsetIndex>,
    slot: &mut Slot,
    member: &[u8],
) -> Result<Option<(f64, f64)>, CmdError> {
    if !index.existed() {
        return Ok(None);
    }
    let score = index.score(slot, member)?.ok_or_else(|| CmdError::err("could not decode requested zset member"))?;
    Ok(Some(geohash::decode_score(score)))
}

/// Parses a search request the way Redis does, in its order: a member centre is looked up (in `index`,
/// the source, which may not exist) as soon as it is read, so its error comes before later syntax errors.
fn parse_query(
    args: &mut Args,
    kind: Kind,
    index: &mut Handle<ZsetIndex>,
    slot: &mut Slot,
    store: Option<Bytes>,
) -> Result<Query, CmdError> {
    let mut query = Query { store, ..Query::default() };
    match kind {
        Kind::Radius { .. } => {
            query.center = Some(lon_lat(args)?);
            query.size = Some(radius(args)?);
        }
        Kind::ByMember { .. } => {
            let member = args.next_bytes()?;
            match member_center(index, slot, &member)? {
                Some(center) => {
                    query.center = Some(center);
                    query.size = Some(radius(args)?);
                }
                // Without a source, Redis parses the options only to pick the reply.
                None => {
                    args.next_bytes()?;
                    args.next_bytes()?;
                }
            }
        }
        Kind::Search | Kind::SearchStore => {}
    }
    let (mut from_member, mut from_lonlat, mut by_radius, mut by_box) = (false, false, false, false);
    while let Some(arg) = args.peek() {
        let word = String::from_utf8_lossy(arg).to_ascii_uppercase();
        let after = args.remaining() - 1;
        let search = kind.is_search();
        match word.as_str() {
            "WITHDIST" => query.with_dist = true,
            "WITHHASH" => query.with_hash = true,
            "WITHCOORD" => query.with_coord = true,
            "ANY" => query.any = true,
            "ASC" => query.sort = Some(true),
            "DESC" => query.sort = Some(false),
            "COUNT" if after >= 1 => {
                args.next_bytes()?;
                let n = args.next_i64()?;
                if n <= 0 {
                    return Err(CmdError::err("COUNT must be > 0"));
                }
                query.count = Some(n);
                continue;
            }
            "STORE" | "STOREDIST" if after >= 1 && kind.takes_store_key() => {
                args.next_bytes()?;
                query.store = Some(args.next_bytes()?);
                query.store_dist = word == "STOREDIST";
                continue;
            }
            "STOREDIST" if kind == Kind::SearchStore => query.store_dist = true,
            "FROMMEMBER" if after >= 1 && search && !from_lonlat => {
                args.next_bytes()?;
                let member = args.next_bytes()?;
                if let Some(center) = member_center(index, slot, &member)? {
                    query.center = Some(center);
                }
                from_member = true;
                continue;
            }
            "FROMLONLAT" if after >= 2 && search && !from_member => {
                args.next_bytes()?;
                query.center = Some(lon_lat(args)?);
                from_lonlat = true;
                continue;
            }
            "BYRADIUS" if after >= 2 && search && !by_box => {
                args.next_bytes()?;
                query.size = Some(radius(args)?);
                by_radius = true;
                continue;
            }
            "BYBOX" if after >= 3 && search && !by_radius => {
                args.next_bytes()?;
                let width = float_or(&args.next_bytes()?, "need numeric width")?;
                let height = float_or(&args.next_bytes()?, "need numeric height")?;
                if width < 0.0 || height < 0.0 {
                    return Err(CmdError::err("height or width cannot be negative"));
                }
                let unit_m = unit_of(&args.next_bytes()?)?;
                query.size = Some(Size::Box { width_m: width * unit_m, height_m: height * unit_m, unit_m });
                by_box = true;
                continue;
            }
            _ => return Err(CmdError::Syntax),
        }
        args.next_bytes()?;
    }
    if query.store.is_some() && (query.with_dist || query.with_hash || query.with_coord) {
        return Err(CmdError::err(if kind == Kind::SearchStore {
            "GEOSEARCHSTORE is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        } else {
            "STORE option in GEORADIUS is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        }));
    }
    // Redis names the command as the client spelled it.
    let name = String::from_utf8_lossy(&args.argv()[0]).into_owned();
    if kind.is_search() && !(from_member || from_lonlat) {
        return Err(CmdError::err(format!("exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}")));
    }
    if kind.is_search() && !(by_radius || by_box) {
        return Err(CmdError::err(format!("exactly one of BYRADIUS and BYBOX can be specified for {name}")));
    }
    if query.any && query.count.is_none() {
        return Err(CmdError::err("the ANY argument requires COUNT argument"));
    }
    Ok(query)
}

/// The members of `index` inside the query's area, sorted and cut as asked. Each cell costs two rank
/// lookups and a read of the members in its score range, whatever the size of the set.
fn search(index: &mut Handle<ZsetIndex>, slot: &mut Slot, query: &Query) -> Result<Vec<Found>, CmdError> {
    let (Some((longitude, latitude)), Some(size)) = (query.center, query.size) else { return Ok(Vec::new()) };
    let (shape, unit_m) = match size {
        Size::Radius { radius_m, unit_m } => (geohash::Shape::Radius { longitude, latitude, radius_m }, unit_m),
        Size::Box { width_m, height_m, unit_m } => {
            (geohash::Shape::Box { longitude, latitude, width_m, height_m }, unit_m)
        }
    };
    let areas = geohash::search_areas(&shape).map_err(|err| CmdError::Raw(err.to_string().into()))?;
    let (count, any) = (query.count, query.any);
    // Redis sorts ascending when COUNT is given without ANY and without an order.
    let sort = if query.sort.is_none() && count.is_some() && !any { Some(true) } else { query.sort };
    let mut found: Vec<Found> = Vec::new();
    'cells: for cell in areas.cells() {
        let (low, high) = geohash::score_range(cell);
        let ranks = index.score_ranks(slot, ScoreBound::Inclusive(low as f64), ScoreBound::Exclusive(high as f64))?;
        if ranks.is_empty() {
            continue;
        }
        for (member, score) in index.range(slot, ranks, false)? {
            let (lon, lat) = geohash::decode_score(score);
            if let Some(distance) = shape.contains(lon, lat) {
                found.push(Found { member, distance: distance / unit_m, score });
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
    Ok(found)
}

/// The reply of a search that does not store.
fn found_reply(found: Vec<Found>, query: &Query) -> Reply {
    let (with_coord, with_dist, with_hash) = (query.with_coord, query.with_dist, query.with_hash);
    Reply::Array(
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
    )
}

/// Runs a search command: the source's type is checked first (as Redis, before any option), then the
/// request is parsed against it; a STORE form re-reads the source under the slot locks of the source and
/// destination and writes the result as a sorted set (geohashes, or distances with STOREDIST).
fn run_search(ctx: &mut Ctx<'_>, args: &mut Args, kind: Kind) -> Result<Reply, CmdError> {
    let destination = if kind == Kind::SearchStore { Some(args.next_bytes()?) } else { None };
    let key = args.next_bytes()?;
    let options = args.clone();
    // The source's type and the request are checked first, without locking the destination.
    let searched = inspect(ctx, &key, |index: &mut Handle<ZsetIndex>, slot| {
        let query = parse_query(args, kind, index, slot, destination.clone())?;
        if query.store.is_some() {
            return Ok((query, None));
        }
        let found = if index.existed() { search(index, slot, &query)? } else { Vec::new() };
        Ok((query, Some(found)))
    })?;
    let (query, found) = searched;
    if let Some(found) = found {
        return Ok(found_reply(found, &query));
    }
    let destination = query.store.clone().expect("a STORE request");
    let db = ctx.db();
    let mut guards = ctx.lock_slots(&[&key, &destination]);
    let source = super::guard_for(&mut guards, ctx.engine, &key);
    let mut index = Handle::<ZsetIndex>::open(source, db, &key)?;
    // Parsed again against the locked source, so that a member centre is the one now stored.
    let query = parse_query(&mut options.clone(), kind, &mut index, source, Some(destination.clone()))?;
    let mut result = ZsetIndex::new();
    if index.existed() {
        for item in search(&mut index, source, &query)? {
            let score = if query.store_dist { item.distance } else { item.score };
            result.insert(&item.member, score).map_err(|_| CmdError::NotFloat)?;
        }
    }
    let event = if matches!(kind, Kind::SearchStore) { "geosearchstore" } else { "georadiusstore" };
    super::collection::store_destination(ctx, guards, &destination, &result, (crate::server::notify::ZSET, event))
}

/// ```text
/// GEOSEARCH key <FROMMEMBER member | FROMLONLAT longitude latitude>
///   <BYRADIUS radius <M | KM | FT | MI> | BYBOX width height <M | KM | FT | MI>>
///   [ASC | DESC] [COUNT count [ANY]] [WITHCOORD] [WITHDIST] [WITHHASH]
/// ```
pub fn geosearch(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    run_search(ctx, args, Kind::Search)
}

/// ```text
/// GEOSEARCHSTORE destination source <FROMMEMBER member | FROMLONLAT longitude latitude>
///   <BYRADIUS radius <M | KM | FT | MI> | BYBOX width height <M | KM | FT | MI>>
///   [ASC | DESC] [COUNT count [ANY]] [STOREDIST]
/// ```
pub fn geosearchstore(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    run_search(ctx, args, Kind::SearchStore)
}

/// ```text
/// GEORADIUS key longitude latitude radius <M | KM | FT | MI> [WITHCOORD] [WITHDIST] [WITHHASH]
///   [COUNT count [ANY]] [ASC | DESC] [STORE key | STOREDIST key]
/// ```
pub fn georadius(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    run_search(ctx, args, Kind::Radius { read_only: false })
}

/// ```text
/// GEORADIUS_RO key longitude latitude radius <M | KM | FT | MI> [WITHCOORD] [WITHDIST] [WITHHASH]
///   [COUNT count [ANY]] [ASC | DESC]
/// ```
pub fn georadius_ro(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    run_search(ctx, args, Kind::Radius { read_only: true })
}

/// ```text
/// GEORADIUSBYMEMBER key member radius <M | KM | FT | MI> [WITHCOORD] [WITHDIST] [WITHHASH]
///   [COUNT count [ANY]] [ASC | DESC] [STORE key | STOREDIST key]
/// ```
pub fn georadiusbymember(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    run_search(ctx, args, Kind::ByMember { read_only: false })
}

/// ```text
/// GEORADIUSBYMEMBER_RO key member radius <M | KM | FT | MI> [WITHCOORD] [WITHDIST] [WITHHASH]
///   [COUNT count [ANY]] [ASC | DESC]
/// ```
pub fn georadiusbymember_ro(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    run_search(ctx, args, Kind::ByMember { read_only: true })
}
