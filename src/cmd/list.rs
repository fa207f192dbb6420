//! List commands (Redis 7.0's list group without LMPOP and BLMPOP). Every list is one compact value today
//! ([`crate::types::list`]). The blocking ones (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH) serve what is there like
//! their plain forms, else block through [`Ctx::block`] (`server::blocking`).

use bytes::Bytes;

use super::collection::{load, modify, read, store};
use super::{commit_all, Args, CmdError, Ctx};
use crate::engine::ValueKind;
use crate::resp::Reply;
use crate::server::blocking::{holds, parse_timeout, TimeoutUnit};
use crate::types::list::ListValue;

fn push(ctx: &mut Ctx<'_>, args: &mut Args, left: bool, only_existing: bool) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let elements = args.rest();
    let db = ctx.db();
    let mut slot = ctx.engine.lock_key(&key);
    let loaded = load::<ListValue>(slot.get(db, &key)?)?;
    if loaded.is_none() && only_existing {
        return Ok(Reply::Int(0));
    }
    let (mut list, expire) = loaded.unwrap_or_default();
    for element in elements {
        if left {
            list.items.push_front(element);
        } else {
            list.items.push_back(element);
        }
    }
    store(&mut slot, db, &key, &list, expire)?;
    slot.commit()?;
    ctx.touch(db, &key);
    Ok(Reply::Int(list.items.len() as i64))
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
    modify(ctx, &key, |list: &mut ListValue, existed| {
        let list = existed.then_some(list);
        let Some(list) = list else {
            return Ok((if count.is_some() { Reply::NilArray } else { Reply::Nil }, false));
        };
        let take = count.unwrap_or(1).min(list.items.len());
        let popped: Vec<Bytes> =
            (0..take).filter_map(|_| if left { list.items.pop_front() } else { list.items.pop_back() }).collect();
        let reply = match count {
            None => popped.into_iter().next().map_or(Reply::Nil, Reply::Bulk),
            Some(_) => Reply::Array(popped.into_iter().map(Reply::Bulk).collect()),
        };
        Ok((reply, take > 0))
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
    Ok(Reply::Int(read::<ListValue>(ctx, &key)?.map_or(0, |list| list.items.len() as i64)))
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
    let list = read::<ListValue>(ctx, &key)?.unwrap_or_default();
    Ok(resolve(index, list.items.len()).map_or(Reply::Nil, |at| Reply::Bulk(list.items[at].clone())))
}

/// ```text
/// LRANGE key start stop
/// ```
pub fn lrange(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let start = args.next_i64()?;
    let stop = args.next_i64()?;
    let list = read::<ListValue>(ctx, &key)?.unwrap_or_default();
    Ok(Reply::Array(match range(start, stop, list.items.len()) {
        Some((from, to)) => list.items.range(from..=to).cloned().map(Reply::Bulk).collect(),
        None => Vec::new(),
    }))
}

/// ```text
/// LSET key index element
/// ```
pub fn lset(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let index = args.next_i64()?;
    let element = args.next_bytes()?;
    modify(ctx, &key, |list: &mut ListValue, existed| {
        let list = existed.then_some(list);
        let list = list.ok_or(CmdError::NoSuchKey)?;
        let at = resolve(index, list.items.len()).ok_or_else(|| CmdError::err("index out of range"))?;
        list.items[at] = element;
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
    modify(ctx, &key, |list: &mut ListValue, existed| {
        let list = existed.then_some(list);
        let Some(list) = list else { return Ok((Reply::Ok, false)) };
        match range(start, stop, list.items.len()) {
            Some((from, to)) => {
                list.items.truncate(to + 1);
                list.items.drain(..from);
            }
            None => list.items.clear(),
        }
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
    modify(ctx, &key, |list: &mut ListValue, existed| {
        let list = existed.then_some(list);
        let Some(list) = list else { return Ok((Reply::Int(0), false)) };
        match list.items.iter().position(|item| *item == pivot) {
            Some(at) => {
                list.items.insert(if after { at + 1 } else { at }, element);
                Ok((Reply::Int(list.items.len() as i64), true))
            }
            None => Ok((Reply::Int(-1), false)),
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
    modify(ctx, &key, |list: &mut ListValue, existed| {
        let list = existed.then_some(list);
        let Some(list) = list else { return Ok((Reply::Int(0), false)) };
        let limit = if count == 0 { usize::MAX } else { count.unsigned_abs() as usize };
        let mut removed = 0usize;
        let mut kept: Vec<Bytes> = Vec::with_capacity(list.items.len());
        let items: Vec<Bytes> = list.items.drain(..).collect();
        if count >= 0 {
            for item in items {
                if removed < limit && item == element {
                    removed += 1;
                } else {
                    kept.push(item);
                }
            }
        } else {
            for item in items.into_iter().rev() {
                if removed < limit && item == element {
                    removed += 1;
                } else {
                    kept.push(item);
                }
            }
            kept.reverse();
        }
        list.items = kept.into();
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
    let list = read::<ListValue>(ctx, &key)?;
    let Some(list) = list else {
        return Ok(if count.is_some() { Reply::Array(Vec::new()) } else { Reply::Nil });
    };
    let len = list.items.len();
    let order: Box<dyn Iterator<Item = usize>> = if rank > 0 { Box::new(0..len) } else { Box::new((0..len).rev()) };
    let wanted = match count {
        Some(0) => usize::MAX,
        Some(n) => n as usize,
        None => 1,
    };
    let mut skip = rank.unsigned_abs() - 1;
    let mut found = Vec::new();
    for (scanned, at) in order.enumerate() {
        if maxlen != 0 && scanned as i64 >= maxlen {
            break;
        }
        if list.items[at] == element {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            found.push(at as i64);
            if found.len() >= wanted {
                break;
            }
        }
    }
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
    let mut load_key = |key: &Bytes| -> Result<Option<(ListValue, Option<u64>)>, CmdError> {
        let index = ctx.engine.slot_of(key);
        match guards.iter_mut().find(|(slot, _)| *slot == index) {
            Some((_, guard)) => load(guard.get(db, key)?),
            None => Ok(None),
        }
    };
    let Some((mut src, src_expire)) = load_key(&source)? else {
        return Ok(Reply::Nil);
    };
    // The destination's type is checked before anything moves, as in Redis.
    let dst_loaded = load_key(&destination)?;
    let Some(element) = (if from_left { src.items.pop_front() } else { src.items.pop_back() }) else {
        return Ok(Reply::Nil);
    };
    let (mut dst, dst_expire) =
        if source == destination { (src.clone(), src_expire) } else { dst_loaded.unwrap_or_default() };
    if to_left {
        dst.items.push_front(element.clone());
    } else {
        dst.items.push_back(element.clone());
    }
    let writes: Vec<(&Bytes, &ListValue, Option<u64>)> = if source == destination {
        vec![(&destination, &dst, dst_expire)]
    } else {
        vec![(&source, &src, src_expire), (&destination, &dst, dst_expire)]
    };
    for (key, list, expire) in writes {
        let index = ctx.engine.slot_of(key);
        if let Some((_, guard)) = guards.iter_mut().find(|(slot, _)| *slot == index) {
            store(guard, db, key, list, expire)?;
        }
    }
    commit_all(guards)?;
    ctx.touch(db, &source);
    ctx.touch(db, &destination);
    Ok(Reply::Bulk(element))
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

/// Pops one element from the head (`left`) or tail of the list at `key`: BLPOP's and BRPOP's `[key, element]`
/// reply, or `None` if the key does not exist; WRONGTYPE if it is not a list.
fn pop_one(ctx: &mut Ctx<'_>, key: &Bytes, left: bool) -> Result<Option<Reply>, CmdError> {
    let popped = modify(ctx, key, |list: &mut ListValue, _| {
        let element = if left { list.items.pop_front() } else { list.items.pop_back() };
        let changed = element.is_some();
        Ok((element.map_or(Reply::Nil, Reply::Bulk), changed))
    })?;
    Ok(match popped {
        Reply::Bulk(element) => Some(Reply::Array(vec![Reply::Bulk(key.clone()), Reply::Bulk(element)])),
        _ => None,
    })
}

fn blocking_pop(ctx: &mut Ctx<'_>, args: &mut Args, left: bool) -> Result<Reply, CmdError> {
    let mut keys = args.rest();
    let timeout_arg = keys.pop().ok_or(CmdError::Syntax)?;
    let timeout = parse_timeout(&timeout_arg, TimeoutUnit::Seconds)?;
    // The first non-empty list in argument order serves; a key of another type met first is an error.
    for key in &keys {
        if let Some(reply) = pop_one(ctx, key, left)? {
            return Ok(reply);
        }
    }
    let serve = move |ctx: &mut Ctx<'_>, key: &Bytes| {
        if !holds(ctx, key, ValueKind::List)? {
            return Ok(None);
        }
        pop_one(ctx, key, left)
    };
    Ok(ctx.block(keys, timeout, serve, Reply::NilArray))
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
