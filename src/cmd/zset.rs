//! Sorted-set commands (Redis 7.0's sorted-set group: adding, scoring, ranking, ranges by rank, score and
//! lex, popping (also ZMPOP; BZPOPMIN and BZPOPMAX block through [`Ctx::block`]), removing ranges, ZSCAN,
//! ZRANDMEMBER, and the set operations ZUNION/ZINTER/ZDIFF, their STORE forms and ZINTERCARD, which read
//! sets as scores of 1), element by element through [`super::collection::Handle`]: a small sorted set is
//! one compact value ([`crate::types::zset`]) worked on through the order-statistic [`ZsetIndex`]; a large
//! one is split (hashed scores and a counted tree of their order), so that a point command reads
//! O(log n) parts.

use bytes::Bytes;

use super::collection::{inspect, load, store, update_notify, Handle};
use super::{Args, CmdError, Ctx};
use crate::engine::{Slot, ValueKind};
use crate::resp::{Protocol, Reply};
use crate::server::blocking::{parse_timeout, TimeoutUnit};
use crate::server::notify as ev;
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
    let event = if incr { "zincr" } else { "zadd" };
    update_notify(ctx, &key, (ev::ZSET, event), |index: &mut Handle<ZsetIndex>, slot| {
        if !index.existed() && xx {
            return Ok((if incr { Reply::Nil } else { Reply::Int(0) }, false));
        }
        let (mut added, mut updated) = (0i64, 0i64);
        let mut incr_result = None;
        for (score, member) in pairs {
            let current = index.score(slot, &member)?;
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
            match index.insert(slot, member, new_score)? {
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
    update_notify(ctx, &key, (ev::ZSET, "zincr"), |index: &mut Handle<ZsetIndex>, slot| {
        let score = index.score(slot, &member)?.unwrap_or(0.0) + delta;
        if score.is_nan() {
            return Err(CmdError::err("resulting score is not a number (NaN)"));
        }
        // An increment that leaves the score as it was changes nothing (and Redis does not notify).
        let changed = !matches!(index.insert(slot, member, score)?, InsertOutcome::Unchanged);
        Ok((Reply::Double(score), changed))
    })
}

/// ```text
/// ZREM key member [member ...]
/// ```
pub fn zrem(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let members = args.rest();
    update_notify(ctx, &key, (ev::ZSET, "zrem"), |index: &mut Handle<ZsetIndex>, slot| {
        let mut removed = 0;
        for member in &members {
            removed += i64::from(index.remove(slot, member)?.is_some());
        }
        Ok((Reply::Int(removed), removed > 0))
    })
}

/// ```text
/// ZCARD key
/// ```
pub fn zcard(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    inspect(ctx, &key, |index: &mut Handle<ZsetIndex>, _| Ok(Reply::Int(index.len() as i64)))
}

/// ```text
/// ZSCORE key member
/// ```
pub fn zscore(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let member = args.next_bytes()?;
    inspect(ctx, &key, |index: &mut Handle<ZsetIndex>, slot| {
        Ok(index.score(slot, &member)?.map_or(Reply::Nil, Reply::Double))
    })
}

/// ```text
/// ZMSCORE key member [member ...]
/// ```
pub fn zmscore(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let members = args.rest();
    inspect(ctx, &key, |index: &mut Handle<ZsetIndex>, slot| {
        let mut out = Vec::with_capacity(members.len());
        for member in &members {
            out.push(index.score(slot, member)?.map_or(Reply::Nil, Reply::Double));
        }
        Ok(Reply::Array(out))
    })
}

fn rank(ctx: &mut Ctx<'_>, args: &mut Args, reverse: bool) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let member = args.next_bytes()?;
    inspect(ctx, &key, |index: &mut Handle<ZsetIndex>, slot| {
        let len = index.len();
        Ok(index.rank(slot, &member)?.map_or(Reply::Nil, |r| Reply::Int(if reverse { len - 1 - r } else { r } as i64)))
    })
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
    inspect(ctx, &key, |index: &mut Handle<ZsetIndex>, slot| {
        let ranks = index.score_ranks(slot, min, max)?;
        Ok(Reply::Int((ranks.end - ranks.start) as i64))
    })
}

/// ```text
/// ZLEXCOUNT key min max
/// ```
pub fn zlexcount(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let (min, max) = lex_bounds(&args.next_bytes()?, &args.next_bytes()?)?;
    inspect(ctx, &key, |index: &mut Handle<ZsetIndex>, slot| {
        let ranks = index.lex_ranks(slot, &min, &max)?;
        Ok(Reply::Int((ranks.end - ranks.start) as i64))
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RangeBy {
    Rank,
    Score,
    Lex,
}

/// Picks a range's members and scores out of a sorted set.
type Selector = Box<dyn Fn(&mut Handle<ZsetIndex>, &mut Slot) -> Result<Vec<(Bytes, f64)>, CmdError>>;

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
    let key = Bytes::copy_from_slice(key);
    let items = inspect(ctx, &key, |index: &mut Handle<ZsetIndex>, slot| selector(index, slot))?;
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
            Box::new(move |index: &mut Handle<ZsetIndex>, slot: &mut Slot| {
                let len = index.len();
                let window = rank_window(start, stop, len as usize);
                let (from, to) = (window.start as u64, window.end as u64);
                if reverse {
                    index.range(slot, len - to..len - from, true)
                } else {
                    index.range(slot, from..to, false)
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
            Box::new(move |index: &mut Handle<ZsetIndex>, slot: &mut Slot| {
                let ranks = match (&score, &lex) {
                    (Some((min, max)), _) => index.score_ranks(slot, *min, *max)?,
                    (_, Some((min, max))) => index.lex_ranks(slot, min, max)?,
                    _ => 0..0,
                };
                if offset < 0 {
                    return Ok(Vec::new());
                }
                // LIMIT counts from the start of the range in the reply's direction.
                let available = ranks.end - ranks.start;
                let skip = (offset as u64).min(available);
                let take = if count < 0 { available - skip } else { (count as u64).min(available - skip) };
                if reverse {
                    index.range(slot, ranks.end - skip - take..ranks.end - skip, true)
                } else {
                    index.range(slot, ranks.start + skip..ranks.start + skip + take, false)
                }
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
    let selected = match guards.iter_mut().find(|(slot, _)| *slot == src_slot) {
        Some((_, guard)) => {
            let mut index = Handle::<ZsetIndex>::open(guard, db, &source)?;
            selector(&mut index, guard)?
        }
        None => Vec::new(),
    };
    let mut result = ZsetIndex::new();
    for (member, score) in selected {
        result.insert(&member, score).map_err(|_| CmdError::NotFloat)?;
    }
    let dst_slot = ctx.engine.slot_of(&destination);
    let mut existed = false;
    if let Some((_, guard)) = guards.iter_mut().find(|(slot, _)| *slot == dst_slot) {
        existed = guard.key_info(db, &destination)?.is_some();
        store(guard, db, &destination, &result, None)?;
    }
    super::commit_all(guards)?;
    ctx.touch(db, &destination);
    if !result.is_empty() {
        ctx.notify_new(!existed, db, &destination);
        ctx.notify(ev::ZSET, "zrangestore", db, &destination);
    } else if existed {
        ctx.notify(ev::GENERIC, "del", db, &destination);
    }
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
    let event = if max { "zpopmax" } else { "zpopmin" };
    update_notify(ctx, &key, (ev::ZSET, event), |index: &mut Handle<ZsetIndex>, slot| {
        let len = index.len();
        let wanted = (count.unwrap_or(1) as u64).min(len);
        let popped =
            if max { index.range(slot, len - wanted..len, true)? } else { index.range(slot, 0..wanted, false)? };
        for (member, _) in &popped {
            index.remove(slot, member)?;
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

/// Pops the lowest (or, with `max`, highest) member of the first of `keys` that exists: BZPOPMIN's and
/// BZPOPMAX's `[key, member, score]` reply, or `None`; WRONGTYPE for a key of another type met first.
fn pop_first(ctx: &mut Ctx<'_>, keys: &[Bytes], max: bool) -> Result<Option<Reply>, CmdError> {
    let event = if max { "zpopmax" } else { "zpopmin" };
    for key in keys {
        let popped = update_notify(ctx, key, (ev::ZSET, event), |index: &mut Handle<ZsetIndex>, slot| {
            let len = index.len();
            if len == 0 {
                return Ok((None, false));
            }
            let rank = if max { len - 1 } else { 0 };
            let popped = index.range(slot, rank..rank + 1, false)?.pop();
            if let Some((member, _)) = &popped {
                index.remove(slot, member)?;
            }
            let changed = popped.is_some();
            Ok((popped, changed))
        })?;
        if let Some((member, score)) = popped {
            let reply = vec![Reply::Bulk(key.clone()), Reply::Bulk(member), Reply::Double(score)];
            return Ok(Some(Reply::Array(reply)));
        }
    }
    Ok(None)
}

fn blocking_pop(ctx: &mut Ctx<'_>, args: &mut Args, max: bool) -> Result<Reply, CmdError> {
    let mut keys = args.rest();
    let timeout_arg = keys.pop().ok_or(CmdError::Syntax)?;
    let timeout = parse_timeout(&timeout_arg, TimeoutUnit::Seconds)?;
    ctx.pop_or_block(keys, timeout, ValueKind::SortedSet, move |ctx, keys| pop_first(ctx, keys, max))
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
    event: &str,
    select: impl FnOnce(&mut Handle<ZsetIndex>, &mut Slot) -> Result<std::ops::Range<u64>, CmdError>,
) -> Result<Reply, CmdError> {
    update_notify(ctx, key, (ev::ZSET, event), |index: &mut Handle<ZsetIndex>, slot| {
        let ranks = select(index, slot)?;
        let doomed = index.range(slot, ranks, false)?;
        for (member, _) in &doomed {
            index.remove(slot, member)?;
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
    remove_ranks(ctx, &key, "zremrangebyrank", |index, _| {
        let window = rank_window(start, stop, index.len() as usize);
        Ok(window.start as u64..window.end as u64)
    })
}

/// ```text
/// ZREMRANGEBYSCORE key min max
/// ```
pub fn zremrangebyscore(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let (min, max) = score_bounds(&args.next_bytes()?, &args.next_bytes()?)?;
    remove_ranks(ctx, &key, "zremrangebyscore", |index, slot| index.score_ranks(slot, min, max))
}

/// ```text
/// ZREMRANGEBYLEX key min max
/// ```
pub fn zremrangebylex(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let (min, max) = lex_bounds(&args.next_bytes()?, &args.next_bytes()?)?;
    remove_ranks(ctx, &key, "zremrangebylex", |index, slot| index.lex_ranks(slot, &min, &max))
}

/// ```text
/// ZSCAN key cursor [MATCH pattern] [COUNT count]
/// ```
pub fn zscan(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let super::args::ScanOptions { cursor, pattern, count, .. } = super::args::scan_options(args, false)?;
    // Scores come back as strings, as Redis's ZSCAN sends them.
    // Redis 7.0 returns a listpack whole and pages a skiplist's hash table: a sorted set never promoted
    // is a listpack, whatever the thresholds say now (Redis converts on writes only).
    let listpack = |_: &ZsetIndex| true;
    let (next, entries) =
        inspect(ctx, &key, |index: &mut Handle<ZsetIndex>, slot| index.scan(slot, cursor, count, listpack))?;
    let mut items = Vec::new();
    for (member, score) in entries {
        if pattern.as_ref().is_none_or(|p| crate::glob::matches(p, &member, false)) {
            items.push(Reply::Bulk(member));
            items.push(Reply::bulk(crate::resp::reply::format_double(score)));
        }
    }
    Ok(Reply::Array(vec![Reply::bulk(next.to_string()), Reply::Array(items)]))
}

/// The slot locks of a multi-key command, with their slot indexes.
type Guards<'a> = Vec<(usize, crate::engine::SlotGuard<'a>)>;

/// One input of ZUNION and its family: members with scores, `None` for a missing key.
type Source = Option<Vec<(Bytes, f64)>>;

/// Parses `numkeys key [key ...]` of ZUNION and its family: Redis's errors for a count that is not an
/// integer, below 1, or larger than the arguments left.
fn zset_numkeys(args: &mut Args, command: &str) -> Result<Vec<Bytes>, CmdError> {
    let count = args.next_i64()?;
    if count < 1 {
        return Err(CmdError::err(format!("at least 1 input key is needed for '{command}' command")));
    }
    if count as u64 > args.remaining() as u64 {
        return Err(CmdError::Syntax);
    }
    (0..count).map(|_| args.next_bytes()).collect()
}

/// Loads every key under the slot locks of `keys` plus `extra` (a destination): a sorted set as is, a set
/// as members of score 1 (as ZUNION and its family read sets), a missing key as `None`.
fn load_sources<'a>(
    ctx: &Ctx<'a>,
    keys: &[Bytes],
    extra: Option<&Bytes>,
) -> Result<(Vec<Source>, Guards<'a>), CmdError> {
    let db = ctx.db();
    let mut all: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
    if let Some(dest) = extra {
        all.push(dest);
    }
    let mut guards = ctx.lock_slots(&all);
    let mut sources = Vec::with_capacity(keys.len());
    for key in keys {
        let slot = super::guard_for(&mut guards, ctx.engine, key);
        let source = match slot.key_info(db, key)? {
            Some(info) if info.kind == crate::engine::ValueKind::Set => {
                load::<crate::types::set::SetValue>(slot, db, key)?
                    .map(|(set, _)| set.members().iter().map(|m| (m.clone(), 1.0)).collect())
            }
            _ => load::<ZsetIndex>(slot, db, key)?
                .map(|(index, _)| index.iter().map(|(m, s)| (Bytes::copy_from_slice(m), s)).collect()),
        };
        sources.push(source);
    }
    Ok((sources, guards))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    fn apply(self, current: f64, value: f64) -> f64 {
        match self {
            // inf + -inf is NaN, which Redis turns into 0.
            Aggregate::Sum => {
                let sum = current + value;
                if sum.is_nan() {
                    0.0
                } else {
                    sum
                }
            }
            Aggregate::Min => current.min(value),
            Aggregate::Max => current.max(value),
        }
    }
}

/// A parsed ZUNION/ZINTER/ZDIFF request (and STORE forms).
struct SetOpRequest {
    keys: Vec<Bytes>,
    weights: Vec<f64>,
    aggregate: Aggregate,
    with_scores: bool,
}

/// Parses `numkeys key [key ...] [WEIGHTS w ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]`; ZDIFF takes neither
/// WEIGHTS nor AGGREGATE, the STORE forms no WITHSCORES.
fn parse_setop(args: &mut Args, op: SetOp, store: bool, command: &str) -> Result<SetOpRequest, CmdError> {
    let keys = zset_numkeys(args, command)?;
    let mut request =
        SetOpRequest { weights: vec![1.0; keys.len()], keys, aggregate: Aggregate::Sum, with_scores: false };
    while !args.is_empty() {
        if op != SetOp::Diff && args.remaining() > request.keys.len() && args.eat("WEIGHTS") {
            for weight in request.weights.iter_mut() {
                *weight = super::args::parse_f64(&args.next_bytes()?)
                    .ok_or_else(|| CmdError::err("weight value is not a float"))?;
            }
        } else if op != SetOp::Diff && args.remaining() >= 2 && args.eat("AGGREGATE") {
            request.aggregate = match args.next_upper()?.as_str() {
                "SUM" => Aggregate::Sum,
                "MIN" => Aggregate::Min,
                "MAX" => Aggregate::Max,
                _ => return Err(CmdError::Syntax),
            };
        } else if !store && args.eat("WITHSCORES") {
            request.with_scores = true;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok(request)
}

/// Computes a union, intersection or difference of loaded sources into a sorted set (cancellable at
/// each member: `Ctx::checkpoint`).
fn compute_setop(
    ctx: &Ctx<'_>,
    op: SetOp,
    sources: Vec<Source>,
    request: &SetOpRequest,
) -> Result<ZsetIndex, CmdError> {
    let weighted = |score: f64, weight: f64| {
        let value = score * weight;
        if value.is_nan() {
            0.0
        } else {
            value
        }
    };
    let mut result = ZsetIndex::new();
    match op {
        SetOp::Union => {
            let mut order: Vec<Bytes> = Vec::new();
            let mut scores: std::collections::HashMap<Bytes, f64> = std::collections::HashMap::new();
            // Redis accumulates in order of size (smallest first), which decides float rounding.
            let mut inputs: Vec<(Vec<(Bytes, f64)>, &f64)> =
                sources.into_iter().map(Option::unwrap_or_default).zip(&request.weights).collect();
            inputs.sort_by_key(|(source, _)| source.len());
            for (source, weight) in inputs {
                for (member, score) in source {
                    ctx.checkpoint()?;
                    let value = weighted(score, *weight);
                    match scores.get_mut(&member) {
                        Some(current) => *current = request.aggregate.apply(*current, value),
                        None => {
                            order.push(member.clone());
                            scores.insert(member, value);
                        }
                    }
                }
            }
            for member in order {
                ctx.checkpoint()?;
                let _ = result.insert(&member, scores[&member]);
            }
        }
        SetOp::Inter => {
            if sources.iter().any(Option::is_none) {
                return Ok(result);
            }
            let lookups: Vec<std::collections::HashMap<Bytes, f64>> =
                sources.into_iter().map(|s| s.unwrap_or_default().into_iter().collect()).collect();
            // Redis walks the smallest input and accumulates in order of size.
            let mut by_size: Vec<usize> = (0..lookups.len()).collect();
            by_size.sort_by_key(|i| lookups[*i].len());
            let first = by_size[0];
            'members: for (member, score) in &lookups[first] {
                ctx.checkpoint()?;
                let mut total = weighted(*score, request.weights[first]);
                for &other in &by_size[1..] {
                    let Some(score) = lookups[other].get(member) else { continue 'members };
                    total = request.aggregate.apply(total, weighted(*score, request.weights[other]));
                }
                let _ = result.insert(member, total);
            }
        }
        SetOp::Diff => {
            let mut sources = sources.into_iter();
            let Some(Some(first)) = sources.next() else { return Ok(result) };
            let others: Vec<std::collections::HashSet<Bytes>> =
                sources.flatten().map(|s| s.into_iter().map(|(m, _)| m).collect()).collect();
            for (member, score) in first {
                ctx.checkpoint()?;
                if !others.iter().any(|o| o.contains(&member)) {
                    let _ = result.insert(&member, score);
                }
            }
        }
    }
    Ok(result)
}

fn setop_reply(ctx: &mut Ctx<'_>, args: &mut Args, op: SetOp, command: &str) -> Result<Reply, CmdError> {
    let request = parse_setop(args, op, false, command)?;
    let (sources, guards) = load_sources(ctx, &request.keys, None)?;
    drop(guards);
    let result = compute_setop(ctx, op, sources, &request)?;
    let items: Vec<(Bytes, f64)> = result.iter().map(|(m, s)| (Bytes::copy_from_slice(m), s)).collect();
    Ok(if request.with_scores {
        with_scores(ctx, items)
    } else {
        Reply::Array(items.into_iter().map(|(m, _)| Reply::Bulk(m)).collect())
    })
}

fn setop_store(ctx: &mut Ctx<'_>, args: &mut Args, op: SetOp, command: &str) -> Result<Reply, CmdError> {
    let destination = args.next_bytes()?;
    let request = parse_setop(args, op, true, command)?;
    let (sources, guards) = load_sources(ctx, &request.keys, Some(&destination))?;
    let result = compute_setop(ctx, op, sources, &request)?;
    super::collection::store_destination(ctx, guards, &destination, &result, (crate::server::notify::ZSET, command))
}

/// ```text
/// ZUNION numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE SUM | MIN | MAX] [WITHSCORES]
/// ```
pub fn zunion(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    setop_reply(ctx, args, SetOp::Union, "zunion")
}

/// ```text
/// ZINTER numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE SUM | MIN | MAX] [WITHSCORES]
/// ```
pub fn zinter(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    setop_reply(ctx, args, SetOp::Inter, "zinter")
}

/// ```text
/// ZDIFF numkeys key [key ...] [WITHSCORES]
/// ```
pub fn zdiff(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    setop_reply(ctx, args, SetOp::Diff, "zdiff")
}

/// ```text
/// ZUNIONSTORE destination numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE SUM | MIN | MAX]
/// ```
pub fn zunionstore(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    setop_store(ctx, args, SetOp::Union, "zunionstore")
}

/// ```text
/// ZINTERSTORE destination numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE SUM | MIN | MAX]
/// ```
pub fn zinterstore(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    setop_store(ctx, args, SetOp::Inter, "zinterstore")
}

/// ```text
/// ZDIFFSTORE destination numkeys key [key ...]
/// ```
pub fn zdiffstore(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    setop_store(ctx, args, SetOp::Diff, "zdiffstore")
}

/// ```text
/// ZINTERCARD numkeys key [key ...] [LIMIT limit]
/// ```
pub fn zintercard(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let keys = zset_numkeys(args, "zintercard")?;
    let limit = intercard_limit(args)?;
    let (sources, guards) = load_sources(ctx, &keys, None)?;
    drop(guards);
    let request = SetOpRequest { weights: vec![1.0; keys.len()], keys, aggregate: Aggregate::Sum, with_scores: false };
    let count = compute_setop(ctx, SetOp::Inter, sources, &request)?.len();
    Ok(Reply::Int(if limit > 0 { count.min(limit) } else { count } as i64))
}

/// `[LIMIT limit]` of SINTERCARD and ZINTERCARD (0, the default, means no limit; the last LIMIT wins).
pub(super) fn intercard_limit(args: &mut Args) -> Result<usize, CmdError> {
    let mut limit = 0;
    while !args.is_empty() {
        if args.remaining() >= 2 && args.eat("LIMIT") {
            limit = super::args::parse_i64(&args.next_bytes()?)
                .filter(|n| *n >= 0)
                .ok_or_else(|| CmdError::err("LIMIT can't be negative"))? as usize;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok(limit)
}

/// `numkeys key [key ...]` of LMPOP and ZMPOP: "numkeys should be greater than 0" for any count that is
/// not a positive integer, a syntax error when the keys leave no room for the direction.
pub(super) fn mpop_keys(args: &mut Args) -> Result<Vec<Bytes>, CmdError> {
    let count = super::args::parse_i64(&args.next_bytes()?)
        .filter(|n| *n > 0)
        .ok_or_else(|| CmdError::err("numkeys should be greater than 0"))?;
    if count as u64 >= args.remaining() as u64 {
        return Err(CmdError::Syntax);
    }
    (0..count).map(|_| args.next_bytes()).collect()
}

/// `[COUNT count]` of LMPOP and ZMPOP (1 when absent).
pub(super) fn mpop_count(args: &mut Args) -> Result<usize, CmdError> {
    let mut count = None;
    while !args.is_empty() {
        if count.is_none() && args.remaining() >= 2 && args.eat("COUNT") {
            let n = super::args::parse_i64(&args.next_bytes()?)
                .filter(|n| *n > 0)
                .ok_or_else(|| CmdError::err("count should be greater than 0"))?;
            count = Some(n as usize);
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok(count.unwrap_or(1))
}

/// ```text
/// ZMPOP numkeys key [key ...] <MIN | MAX> [COUNT count]
/// ```
pub fn zmpop(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let keys = mpop_keys(args)?;
    let (max, count) = mpop_side_and_count(args)?;
    Ok(mpop_from(ctx, &keys, max, count)?.unwrap_or(Reply::NilArray))
}

fn mpop_side_and_count(args: &mut Args) -> Result<(bool, usize), CmdError> {
    let max = match args.next_upper()?.as_str() {
        "MIN" => false,
        "MAX" => true,
        _ => return Err(CmdError::Syntax),
    };
    Ok((max, mpop_count(args)?))
}

/// Pops up to `count` members from the first of `keys` that holds a sorted set: ZMPOP's `[key, [[member,
/// score] ...]]` reply, `None` when no key exists; a key of another type met first is WRONGTYPE.
fn mpop_from(ctx: &mut Ctx<'_>, keys: &[Bytes], max: bool, count: usize) -> Result<Option<Reply>, CmdError> {
    let db = ctx.db();
    let all: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
    let mut guards = ctx.lock_slots(&all);
    for key in keys {
        let guard = super::guard_for(&mut guards, ctx.engine, key);
        let mut index = Handle::<ZsetIndex>::open(guard, db, key)?;
        if !index.existed() {
            continue;
        }
        let len = index.len();
        let wanted = (count as u64).min(len);
        let popped =
            if max { index.range(guard, len - wanted..len, true)? } else { index.range(guard, 0..wanted, false)? };
        for (member, _) in &popped {
            index.remove(guard, member)?;
        }
        let emptied = index.is_empty();
        index.save(guard)?;
        super::commit_all(guards)?;
        ctx.touch(db, key);
        if !popped.is_empty() {
            ctx.notify(ev::ZSET, if max { "zpopmax" } else { "zpopmin" }, db, key);
            if emptied {
                ctx.notify(ev::GENERIC, "del", db, key);
            }
        }
        let items = popped.into_iter().map(|(m, s)| Reply::Array(vec![Reply::Bulk(m), Reply::Double(s)])).collect();
        return Ok(Some(Reply::Array(vec![Reply::Bulk(key.clone()), Reply::Array(items)])));
    }
    Ok(None)
}

/// ```text
/// BZMPOP timeout numkeys key [key ...] <MIN | MAX> [COUNT count]
/// ```
pub fn bzmpop(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let timeout = parse_timeout(&args.next_bytes()?, TimeoutUnit::Seconds)?;
    let keys = mpop_keys(args)?;
    let (max, count) = mpop_side_and_count(args)?;
    ctx.pop_or_block(keys, timeout, ValueKind::SortedSet, move |ctx, keys| mpop_from(ctx, keys, max, count))
}

/// ```text
/// ZRANDMEMBER key [count [WITHSCORES]]
/// ```
pub fn zrandmember(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let count = if args.is_empty() {
        None
    } else {
        let n = args.next_i64()?;
        if n == i64::MIN {
            return Err(CmdError::err(
                "value is out of range, value must between -9223372036854775807 and 9223372036854775807",
            ));
        }
        Some(n)
    };
    let scores = count.is_some() && args.eat("WITHSCORES");
    args.finish()?;
    // With scores, the reply holds two entries per pick; Redis refuses counts whose doubling overflows.
    if scores && count.is_some_and(|n| n.unsigned_abs() > (i64::MAX / 2) as u64) {
        return Err(CmdError::err("value is out of range"));
    }
    // Repeated picks (a negative count) make a reply as large as the client asks: bounded first.
    if count.is_some_and(|n| n < -(super::reply_bound::CHECKED_FROM as i64)) {
        let len = inspect(ctx, &key, |index: &mut Handle<ZsetIndex>, _| Ok(index.len()))?;
        let per_pick = if scores { 2 } else { 1 };
        if len > 0 {
            let entries = count.unwrap_or(0).unsigned_abs() * per_pick;
            if let Some(instead) = super::reply_bound::check_entries(ctx, entries)? {
                return Ok(instead);
            }
        }
    }
    let seed = ctx.random(1);
    // Picks are ranks; each is one descent of the order tree of a split set, so a few picks of a large
    // set read a few paths. Only counts near the size read it whole, as Redis does.
    let picked = inspect(ctx, &key, |index: &mut Handle<ZsetIndex>, slot| {
        let len = index.len();
        if len == 0 {
            return Ok(None);
        }
        let mut state = seed;
        let mut next = || crate::elements::hashed::splitmix(&mut state);
        let Some(count) = count else {
            let rank = next() % len;
            return Ok(Some(index.range(slot, rank..rank + 1, false)?));
        };
        let wanted = count.unsigned_abs();
        if count >= len as i64 {
            // The whole set, in Redis's order for this case (highest rank first).
            return Ok(Some(index.range(slot, 0..len, true)?));
        }
        let ranks: Vec<u64> = if count >= 0 {
            if wanted.saturating_mul(3) <= len {
                let mut seen = std::collections::HashSet::with_capacity(wanted as usize);
                let mut ranks = Vec::with_capacity(wanted as usize);
                while (ranks.len() as u64) < wanted {
                    let rank = next() % len;
                    if seen.insert(rank) {
                        ranks.push(rank);
                    }
                }
                ranks
            } else {
                super::set::distinct_picks(next(), len as usize, wanted as usize)
                    .into_iter()
                    .map(|r| r as u64)
                    .collect()
            }
        } else {
            (0..wanted).map(|_| next() % len).collect()
        };
        // Many picks of a set (more than a third of it): one read of the whole order beats a descent each.
        if wanted.saturating_mul(3) > len {
            let all = index.range(slot, 0..len, false)?;
            return Ok(Some(ranks.into_iter().map(|rank| all[rank as usize].clone()).collect()));
        }
        let mut items = Vec::with_capacity(ranks.len());
        for rank in ranks {
            items.extend(index.range(slot, rank..rank + 1, false)?);
        }
        Ok(Some(items))
    })?;
    let Some(items) = picked else {
        return Ok(if count.is_some() { Reply::Array(Vec::new()) } else { Reply::Nil });
    };
    if count.is_none() {
        return Ok(items.into_iter().next().map_or(Reply::Nil, |(m, _)| Reply::Bulk(m)));
    }
    if let Some(instead) = super::reply_bound::check_bytes(ctx, items.iter().map(|(m, _)| m), items.len() as u64)? {
        return Ok(instead);
    }
    Ok(if scores {
        with_scores(ctx, items)
    } else {
        Reply::Array(items.into_iter().map(|(m, _)| Reply::Bulk(m)).collect())
    })
}
