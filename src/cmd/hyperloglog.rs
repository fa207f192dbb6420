//! HyperLogLog commands: PFADD, PFCOUNT, PFMERGE. Values are strings in Redis's own `HYLL` format
//! ([`crate::types::hll`]), so GET, DUMP and RDB files see exactly the bytes Redis would, and PFCOUNT gives
//! Redis's number for the same inputs.

use bytes::Bytes;

use super::{commit_all, Args, CmdError, Ctx};
use crate::engine::{Entry, StringEncoding, ValueKind};
use crate::resp::Reply;
use crate::server::notify as ev;
use crate::types::hll::Hll;

/// The HLL stored in `entry` and its expiry; WRONGTYPE for other types and for strings that are not HLLs,
/// INVALIDOBJ for damaged ones (Redis's texts).
fn load(entry: Option<Entry>) -> Result<Option<(Hll, Option<u64>)>, CmdError> {
    match entry {
        None => Ok(None),
        Some(entry) if entry.kind != ValueKind::String => Err(CmdError::WrongType),
        Some(entry) => Hll::from_bytes(&entry.value)
            .map(|hll| Some((hll, entry.expire_at_ms)))
            .map_err(|err| CmdError::Raw(err.redis_reply().into())),
    }
}

/// ```text
/// PFADD key [element [element ...]]
/// ```
pub fn pfadd(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let elements = args.rest();
    let db = ctx.db();
    let mut slot = ctx.engine.lock_key(&key);
    let entry = slot.get(db, &key)?;
    let (mut hll, expire, created) = match load(entry.clone())? {
        Some((hll, expire)) => (hll, expire, false),
        None => (Hll::new_sparse(), None, true),
    };
    let mut changed = created;
    for element in &elements {
        changed |= hll.add(element);
    }
    if changed {
        // Creating the key counts as a change, as in Redis: the cache is marked stale either way.
        hll.invalidate_cache();
        slot.set_string(db, &key, hll.as_bytes(), StringEncoding::Raw, expire)?;
    } else if let Some(entry) = &entry {
        super::string::unshare(&mut slot, db, &key, entry)?;
    }
    slot.commit()?;
    if changed {
        ctx.touch(db, &key);
        ctx.notify_new(created, db, &key);
        ctx.notify(ev::STRING, "pfadd", db, &key);
    }
    Ok(Reply::Int(i64::from(changed)))
}

/// ```text
/// PFCOUNT key [key ...]
/// ```
pub fn pfcount(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let keys = args.rest();
    let db = ctx.db();
    if let [key] = keys.as_slice() {
        let mut slot = ctx.engine.lock_key(key);
        let entry = slot.get(db, key)?;
        let Some((mut hll, expire)) = load(entry.clone())? else {
            return Ok(Reply::Int(0));
        };
        let stale = hll.cached_count().is_none();
        let count = hll.count();
        if stale {
            // Redis writes the refreshed cache back into the string (and propagates it).
            slot.set_string(db, key, hll.as_bytes(), StringEncoding::Raw, expire)?;
        } else if let Some(entry) = &entry {
            super::string::unshare(&mut slot, db, key, entry)?;
        }
        slot.commit()?;
        if stale {
            ctx.touch(db, key);
        }
        return Ok(Reply::Int(count as i64));
    }
    let key_refs: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
    let mut guards = ctx.lock_slots(&key_refs);
    let mut hlls = Vec::with_capacity(keys.len());
    for key in &keys {
        let index = ctx.engine.slot_of(key);
        let guard = guards.iter_mut().find(|(slot, _)| *slot == index).map(|(_, guard)| guard);
        let entry = match guard {
            Some(guard) => guard.get(db, key)?,
            None => None,
        };
        if let Some((hll, _)) = load(entry)? {
            hlls.push(hll);
        }
    }
    drop(guards);
    let refs: Vec<&Hll> = hlls.iter().collect();
    Ok(Reply::Int(Hll::count_union(&refs) as i64))
}

/// ```text
/// PFMERGE destkey [sourcekey [sourcekey ...]]
/// ```
pub fn pfmerge(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let dest = args.next_bytes()?;
    let sources = args.rest();
    let db = ctx.db();
    let mut all: Vec<&[u8]> = vec![&dest[..]];
    all.extend(sources.iter().map(|k| &k[..]));
    let mut guards = ctx.lock_slots(&all);
    let mut read = |key: &Bytes| -> Result<Option<(Hll, Option<u64>)>, CmdError> {
        let index = ctx.engine.slot_of(key);
        match guards.iter_mut().find(|(slot, _)| *slot == index) {
            Some((_, guard)) => load(guard.get(db, key)?),
            None => Ok(None),
        }
    };
    // Redis checks the destination first, then each source in order: the first bad key names the error.
    let existing = read(&dest)?;
    let mut inputs = Vec::with_capacity(sources.len());
    for source in &sources {
        if let Some((hll, _)) = read(source)? {
            inputs.push(hll);
        }
    }
    let created = existing.is_none();
    let refs: Vec<&Hll> = inputs.iter().collect();
    let (merged, expire) = match existing {
        Some((mut hll, expire)) => {
            hll.merge_into(&refs);
            (hll, expire)
        }
        None => (Hll::merged(&refs), None),
    };
    let index = ctx.engine.slot_of(&dest);
    if let Some((_, guard)) = guards.iter_mut().find(|(slot, _)| *slot == index) {
        guard.set_string(db, &dest, merged.as_bytes(), StringEncoding::Raw, expire)?;
    }
    commit_all(guards)?;
    ctx.touch(db, &dest);
    ctx.notify_new(created, db, &dest);
    ctx.notify(ev::STRING, "pfadd", db, &dest);
    Ok(Reply::Ok)
}
