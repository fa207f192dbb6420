//! Geo commands on sorted sets whose scores are Redis's 52-bit geohashes ([`crate::types::geohash`]):
//! GEOADD, GEODIST, GEOHASH, GEOPOS. The searches (GEOSEARCH, GEORADIUS, ...) come next.

use bytes::Bytes;

use super::{Args, CmdError, Ctx};
use crate::engine::{Entry, ValueKind};
use crate::resp::Reply;
use crate::types::geohash;
use crate::types::zset;
use crate::types::zset_index::{InsertOutcome, ZsetIndex};

fn load(entry: Option<Entry>) -> Result<Option<(ZsetIndex, Option<u64>)>, CmdError> {
    match entry {
        None => Ok(None),
        Some(entry) if entry.kind != ValueKind::SortedSet => Err(CmdError::WrongType),
        Some(entry) => zset::from_bytes(&entry.value)
            .map(|index| Some((index, entry.expire_at_ms)))
            .map_err(|err| CmdError::err(format!("stored sorted set is unreadable: {err}"))),
    }
}

fn read(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Option<ZsetIndex>, CmdError> {
    Ok(load(ctx.engine.get(ctx.db(), key)?)?.map(|(index, _)| index))
}

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
    let (mut index, expire, existed) = match load(slot.get(db, &key)?)? {
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
    let Some(index) = read(ctx, &key)? else { return Ok(Reply::Nil) };
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
    let index = read(ctx, &key)?;
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
    let index = read(ctx, &key)?;
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
