//! Set commands (Redis 7.0's set group), member by member through [`super::collection::Handle`]: a small
//! set is one compact value ([`crate::types::set`], insertion order), a large one is split into buckets.
//! Redis's member order depends on its encoding too, so the differential tests compare set replies
//! unordered.

use bytes::Bytes;

use super::collection::{inspect, load, store, update_notify, Handle};
use super::{commit_all, guard_for, Args, CmdError, Ctx};
use crate::engine::SlotGuard;
use crate::resp::Reply;
use crate::server::notify as ev;
use crate::types::set::SetValue;

fn members_reply(members: impl IntoIterator<Item = Bytes>) -> Reply {
    Reply::Set(members.into_iter().map(Reply::Bulk).collect())
}

/// ```text
/// SADD key member [member ...]
/// ```
pub fn sadd(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let members = args.rest();
    update_notify(ctx, &key, (ev::SET, "sadd"), |set: &mut Handle<SetValue>, slot| {
        let mut added = 0;
        for member in members {
            added += i64::from(set.insert(slot, member, Bytes::new())?);
        }
        Ok((Reply::Int(added), added > 0))
    })
}

/// ```text
/// SREM key member [member ...]
/// ```
pub fn srem(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let members = args.rest();
    update_notify(ctx, &key, (ev::SET, "srem"), |set: &mut Handle<SetValue>, slot| {
        let mut removed = 0;
        for member in &members {
            removed += i64::from(set.remove(slot, member)?);
        }
        Ok((Reply::Int(removed), removed > 0))
    })
}

/// ```text
/// SCARD key
/// ```
pub fn scard(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    inspect(ctx, &key, |set: &mut Handle<SetValue>, _| Ok(Reply::Int(set.len() as i64)))
}

/// ```text
/// SISMEMBER key member
/// ```
pub fn sismember(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let member = args.next_bytes()?;
    inspect(ctx, &key, |set: &mut Handle<SetValue>, slot| Ok(Reply::Int(set.get(slot, &member)?.is_some().into())))
}

/// ```text
/// SMISMEMBER key member [member ...]
/// ```
pub fn smismember(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let members = args.rest();
    inspect(ctx, &key, |set: &mut Handle<SetValue>, slot| {
        let mut out = Vec::with_capacity(members.len());
        for member in &members {
            out.push(Reply::Int(set.get(slot, member)?.is_some().into()));
        }
        Ok(Reply::Array(out))
    })
}

/// ```text
/// SMEMBERS key
/// ```
pub fn smembers(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let entries = inspect(ctx, &key, |set: &mut Handle<SetValue>, slot| set.entries(slot))?;
    Ok(members_reply(entries.into_iter().map(|(member, _)| member)))
}

/// `wanted` distinct pseudo-random positions out of `len` (a partial Fisher-Yates shuffle driven by `seed`).
pub(super) fn distinct_picks(seed: u64, len: usize, wanted: usize) -> Vec<usize> {
    let mut indexes: Vec<usize> = (0..len).collect();
    let wanted = wanted.min(len);
    let mut state = seed | 1;
    for i in 0..wanted {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let j = i + (state % (len - i) as u64) as usize;
        indexes.swap(i, j);
    }
    indexes.truncate(wanted);
    indexes
}

/// ```text
/// SPOP key [count]
/// ```
pub fn spop(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
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
    let seed = ctx.random(7);
    update_notify(ctx, &key, (ev::SET, "spop"), |set: &mut Handle<SetValue>, slot| {
        let wanted = count.unwrap_or(1);
        let popped: Vec<Bytes> = if (wanted as u64).saturating_mul(2) >= set.len() {
            // Most of the set: pick positions in one listing.
            let entries = set.entries(slot)?;
            let picked: Vec<Bytes> =
                distinct_picks(seed, entries.len(), wanted).into_iter().map(|at| entries[at].0.clone()).collect();
            for member in &picked {
                set.remove(slot, member)?;
            }
            picked
        } else {
            // A few of a large set: random picks, each removed so that it cannot be picked again.
            let mut popped = Vec::with_capacity(wanted);
            let mut state = seed;
            while popped.len() < wanted {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let Some((member, _)) = set.random(slot, state)? else { break };
                set.remove(slot, &member)?;
                popped.push(member);
            }
            popped
        };
        let changed = !popped.is_empty();
        let reply = match count {
            None => popped.into_iter().next().map_or(Reply::Nil, Reply::Bulk),
            Some(_) => members_reply(popped),
        };
        Ok((reply, changed))
    })
}

/// ```text
/// SRANDMEMBER key [count]
/// ```
pub fn srandmember(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let count = if args.is_empty() { None } else { Some(args.next_i64()?) };
    args.finish()?;
    if count.is_some_and(|n| n < -(i64::MAX / 2)) {
        return Err(CmdError::err("value is out of range"));
    }
    let Some(count) = count else {
        let random = ctx.random(0);
        let picked = inspect(ctx, &key, |set: &mut Handle<SetValue>, slot| set.random(slot, random))?;
        return Ok(picked.map_or(Reply::Nil, |(member, _)| Reply::Bulk(member)));
    };
    // Repeated picks (a negative count) make a reply as large as the client asks: bounded first.
    if count < -(super::reply_bound::CHECKED_FROM as i64) {
        let len = inspect(ctx, &key, |set: &mut Handle<SetValue>, _| Ok(set.len()))?;
        if len > 0 {
            if let Some(instead) = super::reply_bound::check_entries(ctx, count.unsigned_abs())? {
                return Ok(instead);
            }
        }
    }
    // A few picks of a large set read a few buckets; only counts near its size read it whole.
    let seed = ctx.random(1);
    let picked = inspect(ctx, &key, |set: &mut Handle<SetValue>, slot| set.random_entries(slot, count, seed))?;
    if let Some(instead) = super::reply_bound::check_bytes(ctx, picked.iter().map(|(m, _)| m), picked.len() as u64)? {
        return Ok(instead);
    }
    Ok(Reply::Array(picked.into_iter().map(|(member, _)| Reply::Bulk(member)).collect()))
}

/// ```text
/// SMOVE source destination member
/// ```
pub fn smove(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let source = args.next_bytes()?;
    let destination = args.next_bytes()?;
    let member = args.next_bytes()?;
    let db = ctx.db();
    let mut guards = ctx.lock_slots(&[&source, &destination]);
    // As in Redis: a missing source answers 0 before the destination's type is checked, and both types
    // are checked before anything moves.
    let mut src = Handle::<SetValue>::open(guard_for(&mut guards, ctx.engine, &source), db, &source)?;
    if !src.existed() {
        return Ok(Reply::Int(0));
    }
    let mut dst = Handle::<SetValue>::open(guard_for(&mut guards, ctx.engine, &destination), db, &destination)?;
    if source == destination {
        let present = src.get(guard_for(&mut guards, ctx.engine, &source), &member)?.is_some();
        return Ok(Reply::Int(present.into()));
    }
    if !src.remove(guard_for(&mut guards, ctx.engine, &source), &member)? {
        return Ok(Reply::Int(0));
    }
    let src_emptied = src.is_empty();
    let dst_created = !dst.existed();
    let dst_slot = guard_for(&mut guards, ctx.engine, &destination);
    let added = dst.insert(dst_slot, member, Bytes::new())?;
    // Keys sharing a slot leave in one batch, so recovery never sees the member in both sets or neither.
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
    // The destination changed only if the member was new to it (Redis signals it, for WATCH and
    // tracking, only then).
    if added {
        ctx.touch(db, &destination);
    }
    ctx.notify(ev::SET, "srem", db, &source);
    if src_emptied {
        ctx.notify(ev::GENERIC, "del", db, &source);
    }
    ctx.notify_new(dst_created, db, &destination);
    if added {
        ctx.notify(ev::SET, "sadd", db, &destination);
    }
    Ok(Reply::Int(1))
}

/// The slot locks of a multi-key command, with their slot indexes.
type Guards<'a> = Vec<(usize, SlotGuard<'a>)>;

#[derive(Clone, Copy)]
enum Algebra {
    Inter,
    Union,
    Diff,
}

/// Reads every key's set under its slot lock (missing keys are empty) and combines them; the guards are
/// returned so that a STORE variant can write its result atomically.
fn combine<'a>(
    ctx: &Ctx<'a>,
    keys: &[Bytes],
    extra: Option<&Bytes>,
    algebra: Algebra,
) -> Result<(Vec<Bytes>, Guards<'a>), CmdError> {
    let db = ctx.db();
    let mut all: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
    if let Some(dest) = extra {
        all.push(dest);
    }
    let mut guards = ctx.lock_slots(&all);
    let mut sets: Vec<SetValue> = Vec::with_capacity(keys.len());
    for key in keys {
        ctx.checkpoint()?;
        let index = ctx.engine.slot_of(key);
        let loaded = match guards.iter_mut().find(|(slot, _)| *slot == index) {
            Some((_, guard)) => load(guard, db, key)?,
            None => None,
        };
        sets.push(loaded.map(|(set, _)| set).unwrap_or_default());
    }
    let mut result = SetValue::default();
    match algebra {
        Algebra::Union => {
            for set in &sets {
                for member in set.members() {
                    ctx.checkpoint()?;
                    result.insert(member.clone());
                }
            }
        }
        Algebra::Inter => {
            if let Some((first, rest)) = sets.split_first() {
                for member in first.members() {
                    ctx.checkpoint()?;
                    if rest.iter().all(|set| set.contains(member)) {
                        result.insert(member.clone());
                    }
                }
            }
        }
        Algebra::Diff => {
            if let Some((first, rest)) = sets.split_first() {
                for member in first.members() {
                    ctx.checkpoint()?;
                    if !rest.iter().any(|set| set.contains(member)) {
                        result.insert(member.clone());
                    }
                }
            }
        }
    }
    Ok((result.members().to_vec(), guards))
}

fn algebra_reply(ctx: &mut Ctx<'_>, args: &mut Args, algebra: Algebra) -> Result<Reply, CmdError> {
    let keys = args.rest();
    let (members, guards) = combine(ctx, &keys, None, algebra)?;
    drop(guards);
    Ok(members_reply(members))
}

fn algebra_store(ctx: &mut Ctx<'_>, args: &mut Args, algebra: Algebra, event: &str) -> Result<Reply, CmdError> {
    let destination = args.next_bytes()?;
    let keys = args.rest();
    let (members, mut guards) = combine(ctx, &keys, Some(&destination), algebra)?;
    let db = ctx.db();
    let mut result = SetValue::default();
    for member in &members {
        result.insert(member.clone());
    }
    let index = ctx.engine.slot_of(&destination);
    let mut existed = false;
    if let Some((_, guard)) = guards.iter_mut().find(|(slot, _)| *slot == index) {
        existed = guard.key_info(db, &destination)?.is_some();
        store(guard, db, &destination, &result, None)?;
    }
    commit_all(guards)?;
    ctx.touch(db, &destination);
    if !members.is_empty() {
        ctx.notify_new(!existed, db, &destination);
        ctx.notify(ev::SET, event, db, &destination);
    } else if existed {
        ctx.notify(ev::GENERIC, "del", db, &destination);
    }
    Ok(Reply::Int(result.len() as i64))
}

/// ```text
/// SINTER key [key ...]
/// ```
pub fn sinter(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    algebra_reply(ctx, args, Algebra::Inter)
}

/// ```text
/// SUNION key [key ...]
/// ```
pub fn sunion(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    algebra_reply(ctx, args, Algebra::Union)
}

/// ```text
/// SDIFF key [key ...]
/// ```
pub fn sdiff(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    algebra_reply(ctx, args, Algebra::Diff)
}

/// ```text
/// SINTERSTORE destination key [key ...]
/// ```
pub fn sinterstore(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    algebra_store(ctx, args, Algebra::Inter, "sinterstore")
}

/// ```text
/// SUNIONSTORE destination key [key ...]
/// ```
pub fn sunionstore(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    algebra_store(ctx, args, Algebra::Union, "sunionstore")
}

/// ```text
/// SDIFFSTORE destination key [key ...]
/// ```
pub fn sdiffstore(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    algebra_store(ctx, args, Algebra::Diff, "sdiffstore")
}

/// ```text
/// SSCAN key cursor [MATCH pattern] [COUNT count]
/// ```
pub fn sscan(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let super::args::ScanOptions { cursor, pattern, count, .. } = super::args::scan_options(args, false)?;
    // Redis 7.0 returns an intset whole and pages a hash table (every set of strings): a set of integers
    // never promoted is an intset, whatever `set-max-intset-entries` says now.
    let intset =
        |entries: &[(Bytes, Bytes)]| entries.iter().all(|(m, _)| crate::engine::envelope::canonical_int(m).is_some());
    let (next, entries) = inspect(ctx, &key, |set: &mut Handle<SetValue>, slot| set.scan(slot, cursor, count, intset))?;
    let items = entries
        .into_iter()
        .filter(|(member, _)| pattern.as_ref().is_none_or(|p| crate::glob::matches(p, member, false)))
        .map(|(member, _)| Reply::Bulk(member))
        .collect();
    Ok(Reply::Array(vec![Reply::bulk(next.to_string()), Reply::Array(items)]))
}

/// ```text
/// SINTERCARD numkeys key [key ...] [LIMIT limit]
/// ```
pub fn sintercard(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let count = super::args::parse_i64(&args.next_bytes()?)
        .filter(|n| *n > 0)
        .ok_or_else(|| CmdError::err("numkeys should be greater than 0"))?;
    if count as u64 > args.remaining() as u64 {
        return Err(CmdError::err("Number of keys can't be greater than number of args"));
    }
    let keys: Vec<Bytes> = (0..count).map(|_| args.next_bytes()).collect::<Result<_, _>>()?;
    let limit = super::zset::intercard_limit(args)?;
    let db = ctx.db();
    let all: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
    let mut guards = ctx.lock_slots(&all);
    // Every key's type is checked (WRONGTYPE wins over a missing key, as in Redis), then the smallest set
    // is walked a few buckets at a time, each member looked up in the others, stopping at LIMIT.
    let mut sets = Vec::with_capacity(keys.len());
    for key in &keys {
        sets.push(Handle::<SetValue>::open(guard_for(&mut guards, ctx.engine, key), db, key)?);
    }
    if sets.iter().any(|set| !set.existed()) {
        return Ok(Reply::Int(0));
    }
    let smallest = (0..sets.len()).min_by_key(|&i| sets[i].len()).expect("numkeys > 0");
    let mut found = 0usize;
    let mut cursor = 0;
    'walk: loop {
        let (next, members) =
            sets[smallest].scan(guard_for(&mut guards, ctx.engine, &keys[smallest]), cursor, 64, |_| true)?;
        for (member, _) in members {
            let mut everywhere = true;
            for (i, set) in sets.iter_mut().enumerate() {
                if i != smallest && set.get(guard_for(&mut guards, ctx.engine, &keys[i]), &member)?.is_none() {
                    everywhere = false;
                    break;
                }
            }
            if everywhere {
                found += 1;
                if limit > 0 && found >= limit {
                    break 'walk;
                }
            }
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    Ok(Reply::Int(found as i64))
}
