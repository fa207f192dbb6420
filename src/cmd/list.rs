//! List commands (Redis 7.0's list group), element by element through [`super::collection::Handle`]: a
//! small list is one compact value ([`crate::types::list`]), a large one a chain of chunks, of which every
//! command reads and rewrites only the chunks it needs. The blocking ones (BLPOP, BRPOP, BLMOVE,
//! BRPOPLPUSH) serve what is there like their plain forms, else block through [`Ctx::block`]
//! (`server::blocking`).

use bytes::Bytes;

use super::collection::{inspect, update_notify, Handle};
use super::{commit_all, guard_for, Args, CmdError, Ctx};
use crate::engine::ValueKind;
use crate::resp::Reply;
use crate::server::blocking::{holds, parse_timeout, TimeoutUnit};
use crate::server::notify as ev;
use crate::types::list::ListValue;

fn push(ctx: &mut Ctx<'_>, args: &mut Args, left: bool, only_existing: bool) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let elements = args.rest();
    update_notify(ctx, &key, (ev::LIST, if left { "lpush" } else { "rpush" }), |list: &mut Handle<ListValue>, slot| {
        if !list.existed() && only_existing {
            return Ok((Reply::Int(0), false));
        }
        list.push(slot, left, elements)?;
        Ok((Reply::Int(list.len() as i64), true))
    })
}

/// ```text
/// LPUSH key element [element ...]
/// ```
pub fn lpush(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    push(ctx, args, true, false)
}

/// ```text
/// RPUSH key element [element ...]
/// ```
pub fn rpush(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    push(ctx, args, false, false)
}

/// ```text
/// LPUSHX key element [element ...]
/// ```
pub fn lpushx(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    push(ctx, args, true, true)
}

/// ```text
/// RPUSHX key element [element ...]
/// ```
pub fn rpushx(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    push(ctx, args, false, true)
}

fn pop(ctx: &mut Ctx<'_>, args: &mut Args, left: bool) -> Result<Reply, CmdError> {
    // More than a count is an arity error, checked before anything else (Redis's arity is -2).
    if args.remaining() > 2 {
        return Err(CmdError::WrongArity(if left { "lpop" } else { "rpop" }));
    }
    let key = args.next_bytes()?;
    let count = if args.is_empty() {
        None
    } else {
        let n = super::args::parse_i64(&args.next_bytes()?)
            .filter(|n| *n >= 0)
            .ok_or_else(|| CmdError::err("value is out of range, must be positive"))?;
        Some(n as usize)
    };
    args.finish()?;
    update_notify(ctx, &key, (ev::LIST, if left { "lpop" } else { "rpop" }), |list: &mut Handle<ListValue>, slot| {
        if !list.existed() {
            return Ok((if count.is_some() { Reply::NilArray } else { Reply::Nil }, false));
        }
        let popped = list.pop(slot, left, count.unwrap_or(1) as u64)?;
        let changed = !popped.is_empty();
        let reply = match count {
            None => popped.into_iter().next().map_or(Reply::Nil, Reply::Bulk),
            Some(_) => Reply::Array(popped.into_iter().map(Reply::Bulk).collect()),
        };
        Ok((reply, changed))
    })
}

/// ```text
/// LPOP key [count]
/// ```
pub fn lpop(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    pop(ctx, args, true)
}

/// ```text
/// RPOP key [count]
/// ```
pub fn rpop(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    pop(ctx, args, false)
}

/// ```text
/// LLEN key
/// ```
pub fn llen(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    inspect(ctx, &key, |list: &mut Handle<ListValue>, _| Ok(Reply::Int(list.len() as i64)))
}

/// A Redis index (negative counts from the tail) into a list of `len`, if it falls inside.
fn resolve(index: i64, len: usize) -> Option<usize> {
    let index = if index < 0 { index + len as i64 } else { index };
    (0..len as i64).contains(&index).then_some(index as usize)
}

/// Redis's range normalisation (LRANGE, LTRIM): `None` when the range is empty.
fn range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let mut start = if start < 0 { start + len } else { start };
    let mut stop = if stop < 0 { stop + len } else { stop };
    if start < 0 {
        start = 0;
    }
    if start > stop || start >= len {
        return None;
    }
    if stop >= len {
        stop = len - 1;
    }
    Some((start as usize, stop as usize))
}

/// ```text
/// LINDEX key index
/// ```
pub fn lindex(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let index = args.next_i64()?;
    inspect(ctx, &key, |list: &mut Handle<ListValue>, slot| {
        Ok(match resolve(index, list.len() as usize) {
            Some(at) => list.index(slot, at as u64)?.map_or(Reply::Nil, Reply::Bulk),
            None => Reply::Nil,
        })
    })
}

/// ```text
/// LRANGE key start stop
/// ```
pub fn lrange(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let start = args.next_i64()?;
    let stop = args.next_i64()?;
    inspect(ctx, &key, |list: &mut Handle<ListValue>, slot| {
        Ok(Reply::Array(match range(start, stop, list.len() as usize) {
            Some((from, to)) => list.range(slot, from as u64, to as u64)?.into_iter().map(Reply::Bulk).collect(),
            None => Vec::new(),
        }))
    })
}

/// ```text
/// LSET key index element
/// ```
pub fn lset(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let index = args.next_i64()?;
    let element = args.next_bytes()?;
    update_notify(ctx, &key, (ev::LIST, "lset"), |list: &mut Handle<ListValue>, slot| {
        if !list.existed() {
            return Err(CmdError::NoSuchKey);
        }
        let at = resolve(index, list.len() as usize).ok_or_else(|| CmdError::err("index out of range"))?;
        list.set_index(slot, at as u64, element)?;
        Ok((Reply::Ok, true))
    })
}

/// ```text
/// LTRIM key start stop
/// ```
pub fn ltrim(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let start = args.next_i64()?;
    let stop = args.next_i64()?;
    update_notify(ctx, &key, (ev::LIST, "ltrim"), |list: &mut Handle<ListValue>, slot| {
        if !list.existed() {
            return Ok((Reply::Ok, false));
        }
        let keep = range(start, stop, list.len() as usize).map(|(from, to)| (from as u64, to as u64));
        list.trim(slot, keep)?;
        Ok((Reply::Ok, true))
    })
}

/// ```text
/// LINSERT key <BEFORE | AFTER> pivot element
/// ```
pub fn linsert(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let after = if args.eat("AFTER") {
        true
    } else if args.eat("BEFORE") {
        false
    } else {
        return Err(CmdError::Syntax);
    };
    let pivot = args.next_bytes()?;
    let element = args.next_bytes()?;
    // Walks to the pivot and rewrites only the chunk it lands in (docs/format.md §"Split collections").
    update_notify(ctx, &key, (ev::LIST, "linsert"), |list: &mut Handle<ListValue>, slot| {
        if !list.existed() {
            return Ok((Reply::Int(0), false));
        }
        if list.insert_at_pivot(slot, &pivot, element, after)? {
            Ok((Reply::Int(list.len() as i64), true))
        } else {
            Ok((Reply::Int(-1), false))
        }
    })
}

/// ```text
/// LREM key count element
/// ```
pub fn lrem(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let count = args.next_i64()?;
    let element = args.next_bytes()?;
    // Rewrites only the chunks it removes from, and stops walking once `count` items went.
    update_notify(ctx, &key, (ev::LIST, "lrem"), |list: &mut Handle<ListValue>, slot| {
        let limit = if count == 0 { None } else { Some(count.unsigned_abs()) };
        let removed = list.remove_matching(slot, &element, limit, count >= 0)?;
        Ok((Reply::Int(removed as i64), removed > 0))
    })
}

/// ```text
/// LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]
/// ```
pub fn lpos(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let element = args.next_bytes()?;
    let (mut rank, mut count, mut maxlen) = (1i64, None, 0i64);
    while !args.is_empty() {
        if args.eat("RANK") && !args.is_empty() {
            rank = args.next_i64()?;
            if rank == 0 {
                return Err(CmdError::err(
                    "RANK can't be zero: use 1 to start from the first match, 2 from the second ... \
                     or use negative to start from the end of the list",
                ));
            }
            if rank == i64::MIN {
                return Err(CmdError::err("value is out of range"));
            }
        } else if args.eat("COUNT") && !args.is_empty() {
            let n = args.next_i64()?;
            if n < 0 {
                return Err(CmdError::err("COUNT can't be negative"));
            }
            count = Some(n);
        } else if args.eat("MAXLEN") && !args.is_empty() {
            maxlen = args.next_i64()?;
            if maxlen < 0 {
                return Err(CmdError::err("MAXLEN can't be negative"));
            }
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let wanted = match count {
        Some(0) => u64::MAX,
        Some(n) => n as u64,
        None => 1,
    };
    // Reads chunks only until RANK, COUNT or MAXLEN is satisfied.
    let found = inspect(ctx, &key, |list: &mut Handle<ListValue>, slot| {
        list.positions(slot, &element, rank > 0, rank.unsigned_abs() - 1, wanted, maxlen as u64)
    })?;
    let found: Vec<i64> = found.into_iter().map(|at| at as i64).collect();
    Ok(match count {
        Some(_) => Reply::Array(found.into_iter().map(Reply::Int).collect()),
        None => found.first().map_or(Reply::Nil, |at| Reply::Int(*at)),
    })
}

fn side(args: &mut Args) -> Result<bool, CmdError> {
    if args.eat("LEFT") {
        Ok(true)
    } else if args.eat("RIGHT") {
        Ok(false)
    } else {
        Err(CmdError::Syntax)
    }
}

fn move_element(
    ctx: &mut Ctx<'_>,
    source: Bytes,
    destination: Bytes,
    from_left: bool,
    to_left: bool,
) -> Result<Reply, CmdError> {
    let db = ctx.db();
    let mut guards = ctx.lock_slots(&[&source, &destination]);
    let mut src = Handle::<ListValue>::open(guard_for(&mut guards, ctx.engine, &source), db, &source)?;
    if !src.existed() {
        return Ok(Reply::Nil);
    }
    if source == destination {
        let slot = guard_for(&mut guards, ctx.engine, &source);
        let Some(element) = src.pop(slot, from_left, 1)?.pop() else { return Ok(Reply::Nil) };
        src.push(slot, to_left, vec![element.clone()])?;
        src.save(slot)?;
        commit_all(guards)?;
        ctx.touch(db, &source);
        notify_move(ctx, db, &source, &source, (from_left, to_left), (false, false));
        return Ok(Reply::Bulk(element));
    }
    // The destination's type is checked before anything moves, as in Redis.
    let mut dst = Handle::<ListValue>::open(guard_for(&mut guards, ctx.engine, &destination), db, &destination)?;
    let Some(element) = src.pop(guard_for(&mut guards, ctx.engine, &source), from_left, 1)?.pop() else {
        return Ok(Reply::Nil);
    };
    let src_emptied = src.is_empty();
    let dst_created = !dst.existed();
    let dst_slot = guard_for(&mut guards, ctx.engine, &destination);
    dst.push(dst_slot, to_left, vec![element.clone()])?;
    // Keys sharing a slot leave in one batch, so recovery never sees the element in both lists or neither.
    if ctx.engine.slot_of(&source) == ctx.engine.slot_of(&destination) {
        let mut ops = Vec::new();
        dst.save_ops(dst_slot, &mut ops)?;
        src.save_ops(dst_slot, &mut ops)?;
        dst_slot.write_batch(ops)?;
    } else {
        dst.save(dst_slot)?;
        src.save(guard_for(&mut guards, ctx.engine, &source))?;
    }
    commit_all(guards)?;
    ctx.touch(db, &source);
    ctx.touch(db, &destination);
    notify_move(ctx, db, &source, &destination, (from_left, to_left), (dst_created, src_emptied));
    Ok(Reply::Bulk(element))
}

/// LMOVE's events in Redis's order: `new` if the destination was created, the push to it, the pop from
/// the source, and `del` if that emptied the source.
fn notify_move(
    ctx: &Ctx<'_>,
    db: u16,
    source: &[u8],
    destination: &[u8],
    (from_left, to_left): (bool, bool),
    (created, emptied): (bool, bool),
) {
    ctx.notify_new(created, db, destination);
    ctx.notify(ev::LIST, if to_left { "lpush" } else { "rpush" }, db, destination);
    ctx.notify(ev::LIST, if from_left { "lpop" } else { "rpop" }, db, source);
    if emptied {
        ctx.notify(ev::GENERIC, "del", db, source);
    }
}

/// ```text
/// LMOVE source destination <LEFT | RIGHT> <LEFT | RIGHT>
/// ```
pub fn lmove(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let source = args.next_bytes()?;
    let destination = args.next_bytes()?;
    let from_left = side(args)?;
    let to_left = side(args)?;
    move_element(ctx, source, destination, from_left, to_left)
}

/// ```text
/// RPOPLPUSH source destination
/// ```
pub fn rpoplpush(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let source = args.next_bytes()?;
    let destination = args.next_bytes()?;
    move_element(ctx, source, destination, false, true)
}

/// ```text
/// LMPOP numkeys key [key ...] <LEFT | RIGHT> [COUNT count]
/// ```
pub fn lmpop(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let keys = super::zset::mpop_keys(args)?;
    let (left, count) = mpop_side_and_count(args)?;
    Ok(mpop_from(ctx, &keys, left, count)?.unwrap_or(Reply::NilArray))
}

fn mpop_side_and_count(args: &mut Args) -> Result<(bool, usize), CmdError> {
    let left = match args.next_upper()?.as_str() {
        "LEFT" => true,
        "RIGHT" => false,
        _ => return Err(CmdError::Syntax),
    };
    Ok((left, super::zset::mpop_count(args)?))
}

/// Pops up to `count` elements from the first of `keys` that holds a list: LMPOP's `[key, [element ...]]`
/// reply, `None` when no key exists; a key of another type met first is WRONGTYPE.
fn mpop_from(ctx: &mut Ctx<'_>, keys: &[Bytes], left: bool, count: usize) -> Result<Option<Reply>, CmdError> {
    let db = ctx.db();
    let all: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
    let mut guards = ctx.lock_slots(&all);
    for key in keys {
        let guard = guard_for(&mut guards, ctx.engine, key);
        let mut list = Handle::<ListValue>::open(guard, db, key)?;
        if !list.existed() {
            continue;
        }
        let popped: Vec<Reply> = list.pop(guard, left, count as u64)?.into_iter().map(Reply::Bulk).collect();
        let emptied = list.is_empty();
        list.save(guard)?;
        commit_all(guards)?;
        ctx.touch(db, key);
        if !popped.is_empty() {
            ctx.notify(ev::LIST, if left { "lpop" } else { "rpop" }, db, key);
            if emptied {
                ctx.notify(ev::GENERIC, "del", db, key);
            }
        }
        return Ok(Some(Reply::Array(vec![Reply::Bulk(key.clone()), Reply::Array(popped)])));
    }
    Ok(None)
}

/// ```text
/// BLMPOP timeout numkeys key [key ...] <LEFT | RIGHT> [COUNT count]
/// ```
pub fn blmpop(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let timeout = parse_timeout(&args.next_bytes()?, TimeoutUnit::Seconds)?;
    let keys = super::zset::mpop_keys(args)?;
    let (left, count) = mpop_side_and_count(args)?;
    ctx.pop_or_block(keys, timeout, ValueKind::List, move |ctx, keys| mpop_from(ctx, keys, left, count))
}

/// Pops one element from the head (`left`) or tail of the first of `keys` that exists: BLPOP's and
/// BRPOP's `[key, element]` reply, or `None`; WRONGTYPE for a key of another type met first.
fn pop_first(ctx: &mut Ctx<'_>, keys: &[Bytes], left: bool) -> Result<Option<Reply>, CmdError> {
    for key in keys {
        let event = if left { "lpop" } else { "rpop" };
        let popped = update_notify(ctx, key, (ev::LIST, event), |list: &mut Handle<ListValue>, slot| {
            let element = list.pop(slot, left, 1)?.pop();
            let changed = element.is_some();
            Ok((element, changed))
        })?;
        if let Some(element) = popped {
            return Ok(Some(Reply::Array(vec![Reply::Bulk(key.clone()), Reply::Bulk(element)])));
        }
    }
    Ok(None)
}

fn blocking_pop(ctx: &mut Ctx<'_>, args: &mut Args, left: bool) -> Result<Reply, CmdError> {
    let mut keys = args.rest();
    let timeout_arg = keys.pop().ok_or(CmdError::Syntax)?;
    let timeout = parse_timeout(&timeout_arg, TimeoutUnit::Seconds)?;
    ctx.pop_or_block(keys, timeout, ValueKind::List, move |ctx, keys| pop_first(ctx, keys, left))
}

/// ```text
/// BLPOP key [key ...] timeout
/// ```
pub fn blpop(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    blocking_pop(ctx, args, true)
}

/// ```text
/// BRPOP key [key ...] timeout
/// ```
pub fn brpop(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    blocking_pop(ctx, args, false)
}

fn blocking_move(
    ctx: &mut Ctx<'_>,
    source: Bytes,
    destination: Bytes,
    from_left: bool,
    to_left: bool,
    timeout: Option<std::time::Duration>,
) -> Result<Reply, CmdError> {
    let reply = move_element(ctx, source.clone(), destination.clone(), from_left, to_left)?;
    if !matches!(reply, Reply::Nil) {
        return Ok(reply);
    }
    // Woken, the client moves from the source it waits on; a destination of another type then ends the
    // wait with WRONGTYPE (the element stays), as in Redis.
    let serve = move |ctx: &mut Ctx<'_>, key: &Bytes| {
        if !holds(ctx, key, ValueKind::List)? {
            return Ok(None);
        }
        let reply = move_element(ctx, key.clone(), destination.clone(), from_left, to_left)?;
        Ok((!matches!(reply, Reply::Nil)).then_some(reply))
    };
    Ok(ctx.block(vec![source], timeout, serve, Reply::Nil))
}

/// ```text
/// BLMOVE source destination <LEFT | RIGHT> <LEFT | RIGHT> timeout
/// ```
pub fn blmove(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let source = args.next_bytes()?;
    let destination = args.next_bytes()?;
    let from_left = side(args)?;
    let to_left = side(args)?;
    let timeout = parse_timeout(&args.next_bytes()?, TimeoutUnit::Seconds)?;
    blocking_move(ctx, source, destination, from_left, to_left, timeout)
}

/// ```text
/// BRPOPLPUSH source destination timeout
/// ```
pub fn brpoplpush(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let source = args.next_bytes()?;
    let destination = args.next_bytes()?;
    let timeout = parse_timeout(&args.next_bytes()?, TimeoutUnit::Seconds)?;
    blocking_move(ctx, source, destination, false, true, timeout)
}
