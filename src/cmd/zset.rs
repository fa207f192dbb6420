//! Sorted-set commands (part of Redis 7.0's sorted-set group: adding, scoring, ranking, ranges by rank,
//! score and lex, popping (BZPOPMIN and BZPOPMAX block through [`Ctx::block`]), removing ranges, ZSCAN). Every sorted set is one compact value today
//! ([`crate::types::zset`]), worked on through the order-statistic [`ZsetIndex`].

use bytes::Bytes;

use super::collection::{load, modify, read, store};
use super::{Args, CmdError, Ctx};
use crate::engine::ValueKind;
use crate::resp::{Protocol, Reply};
use crate::server::blocking::{holds, parse_timeout, TimeoutUnit};
use crate::types::zset_index::{InsertOutcome, LexBound, ScoreBound, ZsetIndex};

fn parse_score(bytes: &[u8]) -> Result<f64, CmdError> {
    // Adding 0.0 turns -0 into 0, which is what Redis stores and prints.
    super::args::parse_f64(bytes).filter(|s| !s.is_nan()).map(|s| s + 0.0).ok_or(CmdError::NotFloat)
}

/// Members with their scores: flat in RESP2, `[member, score]` pairs in RESP3 (as Redis 7.0).
fn with_scores(ctx: &Ctx<'_>, items: Vec<(Bytes, f64)>) -> Reply {
    if ctx.client.proto == Protocol::Resp3 {
        Reply::Array(items.into_iter().map(|(m, s)| Reply::Array(vec![Reply::Bulk(m), Reply::Double(s)])).collect())
    } else {
        Reply::Array(items.into_iter().flat_map(|(m, s)| [Reply::Bulk(m), Reply::Double(s)]).collect())
    }
}

/// ```text
/// ZADD key [NX | XX] [GT | LT] [CH] [INCR] score member [score member ...]
/// ```
pub fn zadd(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let (mut nx, mut xx, mut gt, mut lt, mut ch, mut incr) = (false, false, false, false, false, false);
    loop {
        if args.eat("NX") {
            nx = true;
        } else if args.eat("XX") {
            xx = true;
        } else if args.eat("GT") {
            gt = true;
        } else if args.eat("LT") {
            lt = true;
        } else if args.eat("CH") {
            ch = true;
        } else if args.eat("INCR") {
            incr = true;
        } else {
            break;
        }
    }
    let rest = args.rest();
    if rest.is_empty() || !rest.len().is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    if nx && xx {
        return Err(CmdError::err("XX and NX options at the same time are not compatible"));
    }
    if (nx && (gt || lt)) || (gt && lt) {
        return Err(CmdError::err("GT, LT, and/or NX options at the same time are not compatible"));
    }
    if incr && rest.len() > 2 {
        return Err(CmdError::err("INCR option supports a single increment-element pair"));
    }
    let mut pairs = Vec::with_capacity(rest.len() / 2);
    for pair in rest.chunks(2) {
        pairs.push((parse_score(&pair[0])?, pair[1].clone()));
    }
    modify(ctx, &key, |index: &mut ZsetIndex, existed| {
        if !existed && xx {
            return Ok((if incr { Reply::Nil } else { Reply::Int(0) }, false));
        }
        let (mut added, mut updated) = (0i64, 0i64);
        let mut incr_result = None;
        for (score, member) in pairs {
            let current = index.score(&member);
            if (nx && current.is_some()) || (xx && current.is_none()) {
                continue;
            }
            let new_score = match (incr, current) {
                (true, Some(cur)) => cur + score,
                _ => score,
            };
            if new_score.is_nan() {
                return Err(CmdError::err("resulting score is not a number (NaN)"));
            }
            if let Some(cur) = current {
                if (gt && new_score <= cur) || (lt && new_score >= cur) {
                    continue;
                }
            }
            match index.insert(&member, new_score).map_err(|_| CmdError::NotFloat)? {
                InsertOutcome::Added => added += 1,
                InsertOutcome::Updated(_) => updated += 1,
                InsertOutcome::Unchanged => {}
            }
            incr_result = Some(new_score);
        }
        let reply = if incr {
            incr_result.map_or(Reply::Nil, Reply::Double)
        } else {
            Reply::Int(if ch { added + updated } else { added })
        };
        Ok((reply, added + updated > 0))
    })
}

/// ```text
/// ZINCRBY key increment member
/// ```
pub fn zincrby(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let delta = parse_score(&args.next_bytes()?)?;
    let member = args.next_bytes()?;
    modify(ctx, &key, |index: &mut ZsetIndex, _| {
        let score = index.score(&member).unwrap_or(0.0) + delta;
        if score.is_nan() {
            return Err(CmdError::err("resulting score is not a number (NaN)"));
        }
        index.insert(&member, score).map_err(|_| CmdError::NotFloat)?;
        Ok((Reply::Double(score), true))
    })
}

/// ```text
/// ZREM key member [member ...]
/// ```
pub fn zrem(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let members = args.rest();
    modify(ctx, &key, |index: &mut ZsetIndex, _| {
        let removed = members.iter().filter(|m| index.remove(m).is_some()).count();
        Ok((Reply::Int(removed as i64), removed > 0))
    })
}

/// ```text
/// ZCARD key
/// ```
pub fn zcard(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    Ok(Reply::Int(read::<ZsetIndex>(ctx, &key)?.map_or(0, |index| index.len() as i64)))
}

/// ```text
/// ZSCORE key member
/// ```
pub fn zscore(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let member = args.next_bytes()?;
    Ok(read::<ZsetIndex>(ctx, &key)?.and_then(|index| index.score(&member)).map_or(Reply::Nil, Reply::Double))
}

/// ```text
/// ZMSCORE key member [member ...]
/// ```
pub fn zmscore(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let members = args.rest();
    let index = read::<ZsetIndex>(ctx, &key)?;
    Ok(Reply::Array(
        members.iter().map(|m| index.as_ref().and_then(|i| i.score(m)).map_or(Reply::Nil, Reply::Double)).collect(),
    ))
}

fn rank(ctx: &mut Ctx<'_>, args: &mut Args, reverse: bool) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let member = args.next_bytes()?;
    let Some(index) = read::<ZsetIndex>(ctx, &key)? else { return Ok(Reply::Nil) };
    Ok(index.rank(&member).map_or(Reply::Nil, |r| Reply::Int(if reverse { index.len() - 1 - r } else { r } as i64)))
}

/// ```text
/// ZRANK key member
/// ```
pub fn zrank(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    rank(ctx, args, false)
}

/// ```text
/// ZREVRANK key member
/// ```
pub fn zrevrank(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    rank(ctx, args, true)
}

fn score_bounds(min: &[u8], max: &[u8]) -> Result<(ScoreBound, ScoreBound), CmdError> {
    match (ScoreBound::parse(min), ScoreBound::parse(max)) {
        (Some(min), Some(max)) => Ok((min, max)),
        _ => Err(CmdError::err("min or max is not a float")),
    }
}

fn lex_bounds(min: &[u8], max: &[u8]) -> Result<(LexBound, LexBound), CmdError> {
    match (LexBound::parse(min), LexBound::parse(max)) {
        (Some(min), Some(max)) => Ok((min, max)),
        _ => Err(CmdError::err("min or max not valid string range item")),
    }
}

/// ```text
/// ZCOUNT key min max
/// ```
pub fn zcount(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let (min, max) = score_bounds(&args.next_bytes()?, &args.next_bytes()?)?;
    Ok(Reply::Int(read::<ZsetIndex>(ctx, &key)?.map_or(0, |index| index.score_rank_range(min, max).len() as i64)))
}

/// ```text
/// ZLEXCOUNT key min max
/// ```
pub fn zlexcount(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let (min, max) = lex_bounds(&args.next_bytes()?, &args.next_bytes()?)?;
    Ok(Reply::Int(read::<ZsetIndex>(ctx, &key)?.map_or(0, |index| index.lex_rank_range(&min, &max).len() as i64)))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RangeBy {
    Rank,
    Score,
    Lex,
}

/// Picks a range's members and scores out of a loaded sorted set.
type Selector = Box<dyn Fn(&ZsetIndex) -> Vec<(Bytes, f64)>>;

/// A parsed range request (ZRANGE and its older forms).
struct RangeRequest {
    by: RangeBy,
    start: Bytes,
    stop: Bytes,
    reverse: bool,
    limit: Option<(i64, i64)>,
    with_scores: bool,
}

/// The ascending ranks a rank range selects (Redis's normalisation).
fn rank_window(start: i64, stop: i64, len: usize) -> std::ops::Range<usize> {
    let len = len as i64;
    let mut start = if start < 0 { start + len } else { start };
    let mut stop = if stop < 0 { stop + len } else { stop };
    if start < 0 {
        start = 0;
    }
    if start > stop || start >= len {
        return 0..0;
    }
    if stop >= len {
        stop = len - 1;
    }
    start as usize..stop as usize + 1
}

fn run_range(ctx: &mut Ctx<'_>, key: &[u8], request: RangeRequest) -> Result<Reply, CmdError> {
    let selector = selector_for(&request)?;
    let items = read::<ZsetIndex>(ctx, key)?.map(|index| selector(&index)).unwrap_or_default();
    Ok(if request.with_scores {
        with_scores(ctx, items)
    } else {
        Reply::Array(items.into_iter().map(|(m, _)| Reply::Bulk(m)).collect())
    })
}

/// What a range request selects, as a function of the sorted set; bounds are checked here, before any
/// key is read, as in Redis.
fn selector_for(request: &RangeRequest) -> Result<Selector, CmdError> {
    let parse_rank = |b: &Bytes| super::args::parse_i64(b).ok_or(CmdError::NotInteger);
    let selector: Selector = match request.by {
        RangeBy::Rank => {
            let (start, stop) = (parse_rank(&request.start)?, parse_rank(&request.stop)?);
            let reverse = request.reverse;
            Box::new(move |index: &ZsetIndex| {
                let window = rank_window(start, stop, index.len());
                let len = index.len();
                if reverse {
                    index
                        .range_rev(len - window.end..len - window.start)
                        .map(|(m, s)| (Bytes::copy_from_slice(m), s))
                        .collect()
                } else {
                    index.range(window).map(|(m, s)| (Bytes::copy_from_slice(m), s)).collect()
                }
            })
        }
        RangeBy::Score | RangeBy::Lex => {
            let (low, high) =
                if request.reverse { (&request.stop, &request.start) } else { (&request.start, &request.stop) };
            let by_score = request.by == RangeBy::Score;
            let score = if by_score { Some(score_bounds(low, high)?) } else { None };
            let lex = if by_score { None } else { Some(lex_bounds(low, high)?) };
            let (offset, count) = request.limit.unwrap_or((0, -1));
            let reverse = request.reverse;
            Box::new(move |index: &ZsetIndex| {
                let ranks = match (&score, &lex) {
                    (Some((min, max)), _) => index.score_rank_range(*min, *max),
                    (_, Some((min, max))) => index.lex_rank_range(min, max),
                    _ => 0..0,
                };
                if offset < 0 {
                    return Vec::new();
                }
                let items: Box<dyn Iterator<Item = (&[u8], f64)>> =
                    if reverse { Box::new(index.range_rev(ranks)) } else { Box::new(index.range(ranks)) };
                let items = items.skip(offset as usize);
                let taken: Box<dyn Iterator<Item = (&[u8], f64)>> =
                    if count < 0 { Box::new(items) } else { Box::new(items.take(count as usize)) };
                taken.map(|(m, s)| (Bytes::copy_from_slice(m), s)).collect()
            })
        }
    };
    Ok(selector)
}

fn parse_limit(args: &mut Args) -> Result<(i64, i64), CmdError> {
    let offset = args.next_i64().map_err(|_| CmdError::Syntax)?;
    let count = args.next_i64().map_err(|_| CmdError::Syntax)?;
    Ok((offset, count))
}

/// ```text
/// ZRANGE key start stop [BYSCORE | BYLEX] [REV] [LIMIT offset count] [WITHSCORES]
/// ```
pub fn zrange(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let request = parse_range(args, true)?;
    run_range(ctx, &key, request)
}

/// `start stop [BYSCORE | BYLEX] [REV] [LIMIT offset count] [WITHSCORES]` of ZRANGE and ZRANGESTORE.
fn parse_range(args: &mut Args, allow_scores: bool) -> Result<RangeRequest, CmdError> {
    let start = args.next_bytes()?;
    let stop = args.next_bytes()?;
    let mut request = RangeRequest { by: RangeBy::Rank, start, stop, reverse: false, limit: None, with_scores: false };
    while !args.is_empty() {
        if args.eat("BYSCORE") {
            request.by = RangeBy::Score;
        } else if args.eat("BYLEX") {
            request.by = RangeBy::Lex;
        } else if args.eat("REV") {
            request.reverse = true;
        } else if allow_scores && args.eat("WITHSCORES") {
            request.with_scores = true;
        } else if args.remaining() >= 3 && args.eat("LIMIT") {
            request.limit = Some(parse_limit(args)?);
        } else {
            return Err(CmdError::Syntax);
        }
    }
    if request.limit.is_some() && request.by == RangeBy::Rank {
        return Err(CmdError::err("syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"));
    }
    if request.with_scores && request.by == RangeBy::Lex {
        return Err(CmdError::err("syntax error, WITHSCORES not supported in combination with BYLEX"));
    }
    Ok(request)
}

/// ```text
/// ZRANGESTORE dst src min max [BYSCORE | BYLEX] [REV] [LIMIT offset count]
/// ```
pub fn zrangestore(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let destination = args.next_bytes()?;
    let source = args.next_bytes()?;
    let request = parse_range(args, false)?;
    let selector = selector_for(&request)?;
    let db = ctx.db();
    let mut guards = ctx.lock_slots(&[&source, &destination]);
    let src_slot = ctx.engine.slot_of(&source);
    let source_index = match guards.iter_mut().find(|(slot, _)| *slot == src_slot) {
        Some((_, guard)) => load(guard.get(db, &source)?)?.map(|(index, _)| index),
        None => None,
    };
    let mut result = ZsetIndex::new();
    for (member, score) in source_index.map(|index| selector(&index)).unwrap_or_default() {
        result.insert(&member, score).map_err(|_| CmdError::NotFloat)?;
    }
    let dst_slot = ctx.engine.slot_of(&destination);
    if let Some((_, guard)) = guards.iter_mut().find(|(slot, _)| *slot == dst_slot) {
        store(guard, db, &destination, &result, None)?;
    }
    super::commit_all(guards)?;
    ctx.touch(db, &destination);
    Ok(Reply::Int(result.len() as i64))
}

fn legacy_range(ctx: &mut Ctx<'_>, args: &mut Args, by: RangeBy, reverse: bool) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let start = args.next_bytes()?;
    let stop = args.next_bytes()?;
    let mut request = RangeRequest { by, start, stop, reverse, limit: None, with_scores: false };
    while !args.is_empty() {
        if by != RangeBy::Lex && args.eat("WITHSCORES") {
            request.with_scores = true;
        } else if by != RangeBy::Rank && args.remaining() >= 3 && args.eat("LIMIT") {
            request.limit = Some(parse_limit(args)?);
        } else {
            return Err(CmdError::Syntax);
        }
    }
    run_range(ctx, &key, request)
}

/// ```text
/// ZREVRANGE key start stop [WITHSCORES]
/// ```
pub fn zrevrange(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    legacy_range(ctx, args, RangeBy::Rank, true)
}

/// ```text
/// ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]
/// ```
pub fn zrangebyscore(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    legacy_range(ctx, args, RangeBy::Score, false)
}

/// ```text
/// ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]
/// ```
pub fn zrevrangebyscore(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    legacy_range(ctx, args, RangeBy::Score, true)
}

/// ```text
/// ZRANGEBYLEX key min max [LIMIT offset count]
/// ```
pub fn zrangebylex(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    legacy_range(ctx, args, RangeBy::Lex, false)
}

/// ```text
/// ZREVRANGEBYLEX key max min [LIMIT offset count]
/// ```
pub fn zrevrangebylex(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    legacy_range(ctx, args, RangeBy::Lex, true)
}

fn pop(ctx: &mut Ctx<'_>, args: &mut Args, max: bool) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let count = if args.is_empty() {
        None
    } else {
        let n = args.next_i64()?;
        if n < 0 {
            return Err(CmdError::err("value is out of range, must be positive"));
        }
        Some(n as usize)
    };
    args.finish()?;
    let resp3 = ctx.client.proto == Protocol::Resp3;
    modify(ctx, &key, |index: &mut ZsetIndex, _| {
        let wanted = count.unwrap_or(1).min(index.len());
        let mut popped = Vec::with_capacity(wanted);
        for _ in 0..wanted {
            let rank = if max { index.len() - 1 } else { 0 };
            let Some((member, score)) = index.get_by_rank(rank).map(|(m, s)| (Bytes::copy_from_slice(m), s)) else {
                break;
            };
            index.remove(&member);
            popped.push((member, score));
        }
        let changed = !popped.is_empty();
        let reply = if count.is_some() && resp3 {
            Reply::Array(
                popped.into_iter().map(|(m, s)| Reply::Array(vec![Reply::Bulk(m), Reply::Double(s)])).collect(),
            )
        } else {
            Reply::Array(popped.into_iter().flat_map(|(m, s)| [Reply::Bulk(m), Reply::Double(s)]).collect())
        };
        Ok((reply, changed))
    })
}

/// ```text
/// ZPOPMIN key [count]
/// ```
pub fn zpopmin(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    pop(ctx, args, false)
}

/// ```text
/// ZPOPMAX key [count]
/// ```
pub fn zpopmax(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    pop(ctx, args, true)
}

/// Pops the lowest (or, with `max`, highest) member of the sorted set at `key`: BZPOPMIN's and BZPOPMAX's
/// `[key, member, score]` reply, or `None` if the key does not exist; WRONGTYPE if it is not a sorted set.
fn pop_one(ctx: &mut Ctx<'_>, key: &Bytes, max: bool) -> Result<Option<Reply>, CmdError> {
    let mut popped = None;
    modify(ctx, key, |index: &mut ZsetIndex, _| {
        let rank = if max { index.len().checked_sub(1) } else { Some(0) };
        popped = rank.and_then(|rank| index.get_by_rank(rank)).map(|(m, s)| (Bytes::copy_from_slice(m), s));
        if let Some((member, _)) = &popped {
            index.remove(member);
        }
        Ok((Reply::Nil, popped.is_some()))
    })?;
    Ok(popped
        .map(|(member, score)| Reply::Array(vec![Reply::Bulk(key.clone()), Reply::Bulk(member), Reply::Double(score)])))
}

fn blocking_pop(ctx: &mut Ctx<'_>, args: &mut Args, max: bool) -> Result<Reply, CmdError> {
    let mut keys = args.rest();
    let timeout_arg = keys.pop().ok_or(CmdError::Syntax)?;
    let timeout = parse_timeout(&timeout_arg, TimeoutUnit::Seconds)?;
    // The first non-empty sorted set in argument order serves; a key of another type met first is an error.
    for key in &keys {
        if let Some(reply) = pop_one(ctx, key, max)? {
            return Ok(reply);
        }
    }
    let serve = move |ctx: &mut Ctx<'_>, key: &Bytes| {
        if !holds(ctx, key, ValueKind::SortedSet)? {
            return Ok(None);
        }
        pop_one(ctx, key, max)
    };
    Ok(ctx.block(keys, timeout, serve, Reply::NilArray))
}

/// ```text
/// BZPOPMIN key [key ...] timeout
/// ```
pub fn bzpopmin(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    blocking_pop(ctx, args, false)
}

/// ```text
/// BZPOPMAX key [key ...] timeout
/// ```
pub fn bzpopmax(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    blocking_pop(ctx, args, true)
}

fn remove_ranks(
    ctx: &mut Ctx<'_>,
    key: &Bytes,
    select: impl FnOnce(&ZsetIndex) -> std::ops::Range<usize>,
) -> Result<Reply, CmdError> {
    modify(ctx, key, |index: &mut ZsetIndex, _| {
        let ranks = select(index);
        let doomed: Vec<Bytes> = index.range(ranks).map(|(m, _)| Bytes::copy_from_slice(m)).collect();
        for member in &doomed {
            index.remove(member);
        }
        Ok((Reply::Int(doomed.len() as i64), !doomed.is_empty()))
    })
}

/// ```text
/// ZREMRANGEBYRANK key start stop
/// ```
pub fn zremrangebyrank(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let start = args.next_i64()?;
    let stop = args.next_i64()?;
    remove_ranks(ctx, &key, |index| rank_window(start, stop, index.len()))
}

/// ```text
/// ZREMRANGEBYSCORE key min max
/// ```
pub fn zremrangebyscore(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let (min, max) = score_bounds(&args.next_bytes()?, &args.next_bytes()?)?;
    remove_ranks(ctx, &key, |index| index.score_rank_range(min, max))
}

/// ```text
/// ZREMRANGEBYLEX key min max
/// ```
pub fn zremrangebylex(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let (min, max) = lex_bounds(&args.next_bytes()?, &args.next_bytes()?)?;
    remove_ranks(ctx, &key, |index| index.lex_rank_range(&min, &max))
}

/// ```text
/// ZSCAN key cursor [MATCH pattern] [COUNT count]
/// ```
pub fn zscan(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let super::args::ScanOptions { cursor, pattern, .. } = super::args::scan_options(args, false)?;
    // A compact sorted set is returned whole in one step, scores as strings (as Redis's ZSCAN).
    let index = read::<ZsetIndex>(ctx, &key)?.unwrap_or_else(ZsetIndex::new);
    let mut items = Vec::new();
    if cursor == 0 {
        for (member, score) in index.iter() {
            if pattern.as_ref().is_none_or(|p| crate::glob::matches(p, member, false)) {
                items.push(Reply::Bulk(Bytes::copy_from_slice(member)));
                items.push(Reply::bulk(crate::resp::reply::format_double(score)));
            }
        }
    }
    Ok(Reply::Array(vec![Reply::bulk("0"), Reply::Array(items)]))
}
