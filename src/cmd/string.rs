//! The string group: GET/SET and friends, counters, ranges, LCS.
//!
//! Every read-modify-write command works under its key's slot lock (`engine.lock_key`), so it is atomic
//! with respect to other clients; multi-key commands lock their slots in ascending order.

use bytes::Bytes;

use super::args::parse_i64;
use super::extfloat::Ext;
use super::{commit_all, guard_for, Args, CmdError, Ctx};
use crate::engine::{Entry, Slot, StringEncoding, ValueKind};
use crate::resp::Reply;
use crate::server::notify as ev;

/// Largest string a write may produce (Redis's `proto-max-bulk-len` default).
pub const MAX_STRING: u64 = 512 * 1024 * 1024;

/// The entry if it is a string; WRONGTYPE otherwise.
pub fn as_string(entry: Option<Entry>) -> Result<Option<Entry>, CmdError> {
    match entry {
        Some(entry) if entry.kind != ValueKind::String => Err(CmdError::WrongType),
        other => Ok(other),
    }
}

/// Marks the string `entry` at `key` as Redis's `raw` when it is not already: Redis's in-place writers
/// (SETBIT, PFADD, PFCOUNT's cache) make the string they touch `raw` even when they change nothing
/// (`dbUnshareStringValue`). The value and expiry stay; no WATCH signal, no event.
pub fn unshare(slot: &mut Slot, db: u16, key: &[u8], entry: &Entry) -> Result<(), CmdError> {
    if entry.string_encoding != StringEncoding::Raw {
        slot.set_string(db, key, &entry.value, StringEncoding::Raw, entry.expire_at_ms)?;
    }
    Ok(())
}

/// Writes a string value, or deletes the key when its expiry is already past (as Redis does).
pub fn write_string(
    slot: &mut Slot,
    db: u16,
    key: &[u8],
    value: &[u8],
    expire_at: Option<i64>,
    now: u64,
) -> Result<(), CmdError> {
    match expire_at {
        Some(at) if at <= now as i64 => {
            slot.delete(db, key)?;
        }
        Some(at) => slot.set(db, key, ValueKind::String, value, Some(at as u64))?,
        None => slot.set(db, key, ValueKind::String, value, None)?,
    }
    Ok(())
}

/// Checks a size against the string limit.
pub fn check_length(size: u64) -> Result<(), CmdError> {
    if size > MAX_STRING {
        return Err(CmdError::err("string exceeds maximum allowed size (proto-max-bulk-len)"));
    }
    Ok(())
}

fn invalid_expire(command: &str) -> CmdError {
    CmdError::err(format!("invalid expire time in '{command}' command"))
}

/// Parses an expiry option value (`EX`, `PX`, `EXAT`, `PXAT`) into absolute Unix milliseconds.
pub fn expire_at(unit: &str, value: &[u8], now: u64, command: &str) -> Result<i64, CmdError> {
    let number = parse_i64(value).ok_or(CmdError::NotInteger)?;
    if number <= 0 {
        return Err(invalid_expire(command));
    }
    let millis = match unit {
        "EX" | "EXAT" => number.checked_mul(1000).ok_or_else(|| invalid_expire(command))?,
        _ => number,
    };
    match unit {
        "EX" | "PX" => millis.checked_add(now as i64).ok_or_else(|| invalid_expire(command)),
        _ => Ok(millis),
    }
}

/// ```text
/// GET key
/// ```
pub fn get(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let entry = ctx.engine.get(ctx.db(), &key)?;
    ctx.server.stats.hit(entry.is_some());
    let entry = as_string(entry)?;
    Ok(entry.map_or(Reply::Nil, |e| Reply::Bulk(e.value)))
}

/// ```text
/// SET key value [NX | XX] [GET] [EX seconds | PX milliseconds | EXAT unix-time-seconds |
///     PXAT unix-time-milliseconds | KEEPTTL]
/// ```
pub fn set(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let value = args.next_bytes()?;
    let (mut nx, mut xx, mut get, mut keepttl) = (false, false, false, false);
    let mut expiry: Option<(String, Bytes)> = None;
    while !args.is_empty() {
        let option = args.next_upper()?;
        match option.as_str() {
            "NX" if !xx => nx = true,
            "XX" if !nx => xx = true,
            "GET" => get = true,
            "KEEPTTL" if expiry.is_none() => keepttl = true,
            "EX" | "PX" | "EXAT" | "PXAT" if !keepttl && expiry.is_none() && !args.is_empty() => {
                expiry = Some((option, args.next_bytes()?));
            }
            _ => return Err(CmdError::Syntax),
        }
    }
    let now = ctx.now_ms();
    let expire = expiry.map(|(unit, value)| expire_at(&unit, &value, now, "set")).transpose()?;
    check_length(value.len() as u64)?;
    let db = ctx.db();
    // Encoded (a dictionary compression, often) before the slot is locked, unless NX/XX may leave it unused.
    let mut encoded = (!nx && !xx).then(|| ctx.engine.encode_value(ValueKind::String, &key, &value));
    let mut slot = ctx.engine.lock_key(&key);
    let looked = nx || xx || get || keepttl;
    let old = if looked { slot.get(db, &key)? } else { None };
    if get && old.as_ref().is_some_and(|e| e.kind != ValueKind::String) {
        return Err(CmdError::WrongType);
    }
    let exists = old.is_some();
    // A blind SET looks the key up only when `new` events are wanted.
    let created = if looked { !exists } else { ctx.wants_lookup() && slot.key_info(db, &key)?.is_none() };
    let apply = if exists { !nx } else { !xx };
    if apply {
        let expire = if keepttl { old.as_ref().and_then(|e| e.expire_at_ms).map(|at| at as i64) } else { expire };
        match encoded.take() {
            Some(encoded) if expire.is_none_or(|at| at > now as i64) => {
                slot.set_encoded(db, &key, ValueKind::String, &value, encoded, expire.map(|at| at as u64))?
            }
            _ => write_string(&mut slot, db, &key, &value, expire, now)?,
        }
    }
    slot.commit()?;
    if apply {
        ctx.touch(db, &key);
        ctx.notify_new(created, db, &key);
        ctx.notify(ev::STRING, "set", db, &key);
        if expire.is_some() {
            ctx.notify(ev::GENERIC, "expire", db, &key);
        }
    }
    Ok(match (get, apply) {
        (true, _) => old.map_or(Reply::Nil, |e| Reply::Bulk(e.value)),
        (false, true) => Reply::Ok,
        (false, false) => Reply::Nil,
    })
}

/// ```text
/// SETNX key value
/// ```
pub fn setnx(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let value = args.next_bytes()?;
    let db = ctx.db();
    let mut slot = ctx.engine.lock_key(&key);
    let exists = slot.key_info(db, &key)?.is_some();
    if !exists {
        slot.set(db, &key, ValueKind::String, &value, None)?;
    }
    slot.commit()?;
    if !exists {
        ctx.touch(db, &key);
        ctx.notify_new(true, db, &key);
        ctx.notify(ev::STRING, "set", db, &key);
    }
    Ok(Reply::Int(i64::from(!exists)))
}

fn setex_generic(ctx: &mut Ctx<'_>, args: &mut Args, unit: &str, command: &str) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let time = args.next_bytes()?;
    let value = args.next_bytes()?;
    let now = ctx.now_ms();
    let at = expire_at(unit, &time, now, command)?;
    let db = ctx.db();
    let mut slot = ctx.engine.lock_key(&key);
    let created = ctx.wants_lookup() && slot.key_info(db, &key)?.is_none();
    write_string(&mut slot, db, &key, &value, Some(at), now)?;
    slot.commit()?;
    ctx.touch(db, &key);
    ctx.notify_new(created, db, &key);
    ctx.notify(ev::STRING, "set", db, &key);
    ctx.notify(ev::GENERIC, "expire", db, &key);
    Ok(Reply::Ok)
}

/// ```text
/// SETEX key seconds value
/// ```
pub fn setex(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    setex_generic(ctx, args, "EX", "setex")
}

/// ```text
/// PSETEX key milliseconds value
/// ```
pub fn psetex(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    setex_generic(ctx, args, "PX", "psetex")
}

/// ```text
/// GETEX key [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | PERSIST]
/// ```
pub fn getex(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let mut expiry: Option<(String, Bytes)> = None;
    let mut persist = false;
    while !args.is_empty() {
        let option = args.next_upper()?;
        match option.as_str() {
            "PERSIST" if expiry.is_none() => persist = true,
            "EX" | "PX" | "EXAT" | "PXAT" if !persist && expiry.is_none() && !args.is_empty() => {
                expiry = Some((option, args.next_bytes()?));
            }
            _ => return Err(CmdError::Syntax),
        }
    }
    let now = ctx.now_ms();
    let expire = expiry.map(|(unit, value)| expire_at(&unit, &value, now, "getex")).transpose()?;
    let db = ctx.db();
    let mut slot = ctx.engine.lock_key(&key);
    let Some(entry) = as_string(slot.get(db, &key)?)? else {
        return Ok(Reply::Nil);
    };
    let mut changed = None;
    if let Some(at) = expire {
        if at <= now as i64 {
            slot.delete(db, &key)?;
            changed = Some("del");
        } else {
            slot.set_expiry(db, &key, Some(at as u64))?;
            changed = Some("expire");
        }
    } else if persist && entry.expire_at_ms.is_some() {
        slot.set_expiry(db, &key, None)?;
        changed = Some("persist");
    }
    slot.commit()?;
    if let Some(event) = changed {
        ctx.touch(db, &key);
        ctx.notify(ev::GENERIC, event, db, &key);
    }
    Ok(Reply::Bulk(entry.value))
}

/// ```text
/// GETDEL key
/// ```
pub fn getdel(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let db = ctx.db();
    let mut slot = ctx.engine.lock_key(&key);
    let Some(entry) = as_string(slot.get(db, &key)?)? else {
        return Ok(Reply::Nil);
    };
    slot.delete(db, &key)?;
    slot.commit()?;
    ctx.touch(db, &key);
    ctx.notify(ev::GENERIC, "del", db, &key);
    Ok(Reply::Bulk(entry.value))
}

/// ```text
/// GETSET key value
/// ```
pub fn getset(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let value = args.next_bytes()?;
    let db = ctx.db();
    let mut slot = ctx.engine.lock_key(&key);
    let old = as_string(slot.get(db, &key)?)?;
    slot.set(db, &key, ValueKind::String, &value, None)?;
    slot.commit()?;
    ctx.touch(db, &key);
    ctx.notify_new(old.is_none(), db, &key);
    ctx.notify(ev::STRING, "set", db, &key);
    Ok(old.map_or(Reply::Nil, |e| Reply::Bulk(e.value)))
}

/// ```text
/// MGET key [key ...]
/// ```
pub fn mget(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let keys = args.rest();
    let db = ctx.db();
    let refs: Vec<&[u8]> = keys.iter().map(|k| k.as_ref()).collect();
    let mut guards = ctx.lock_slots(&refs);
    let mut replies = Vec::with_capacity(keys.len());
    for key in &keys {
        let entry = guard_for(&mut guards, ctx.engine, key).get(db, key)?;
        replies.push(match entry {
            Some(entry) if entry.kind == ValueKind::String => Reply::Bulk(entry.value),
            _ => Reply::Nil,
        });
    }
    commit_all(guards)?;
    Ok(Reply::Array(replies))
}

fn pairs(args: &mut Args, command: &'static str) -> Result<Vec<(Bytes, Bytes)>, CmdError> {
    let rest = args.rest();
    if !rest.len().is_multiple_of(2) {
        return Err(CmdError::WrongArity(command));
    }
    Ok(rest.chunks(2).map(|pair| (pair[0].clone(), pair[1].clone())).collect())
}

/// ```text
/// MSET key value [key value ...]
/// ```
pub fn mset(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let pairs = pairs(args, "mset")?;
    let db = ctx.db();
    let refs: Vec<&[u8]> = pairs.iter().map(|(k, _)| k.as_ref()).collect();
    let mut guards = ctx.lock_slots(&refs);
    let wants_lookup = ctx.wants_lookup();
    let mut created = Vec::with_capacity(pairs.len());
    for (key, value) in &pairs {
        let slot = guard_for(&mut guards, ctx.engine, key);
        // A key repeated in the command is new only the first time, as in Redis.
        created.push(wants_lookup && slot.key_info(db, key)?.is_none());
        slot.set(db, key, ValueKind::String, value, None)?;
    }
    commit_all(guards)?;
    for ((key, _), created) in pairs.iter().zip(created) {
        ctx.touch(db, key);
        ctx.notify_new(created, db, key);
        ctx.notify(ev::STRING, "set", db, key);
    }
    Ok(Reply::Ok)
}

/// ```text
/// MSETNX key value [key value ...]
/// ```
pub fn msetnx(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let pairs = pairs(args, "msetnx")?;
    let db = ctx.db();
    let refs: Vec<&[u8]> = pairs.iter().map(|(k, _)| k.as_ref()).collect();
    let mut guards = ctx.lock_slots(&refs);
    for (key, _) in &pairs {
        if guard_for(&mut guards, ctx.engine, key).key_info(db, key)?.is_some() {
            commit_all(guards)?;
            return Ok(Reply::Int(0));
        }
    }
    for (key, value) in &pairs {
        guard_for(&mut guards, ctx.engine, key).set(db, key, ValueKind::String, value, None)?;
    }
    commit_all(guards)?;
    let mut seen = std::collections::HashSet::new();
    for (key, _) in &pairs {
        ctx.touch(db, key);
        ctx.notify_new(seen.insert(key), db, key);
        ctx.notify(ev::STRING, "set", db, key);
    }
    Ok(Reply::Int(1))
}

/// ```text
/// APPEND key value
/// ```
pub fn append(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let suffix = args.next_bytes()?;
    let db = ctx.db();
    let mut slot = ctx.engine.lock_key(&key);
    let old = as_string(slot.get(db, &key)?)?;
    let created = old.is_none();
    let (mut value, expire) = match old {
        Some(entry) => (entry.value.to_vec(), entry.expire_at_ms),
        None => (Vec::new(), None),
    };
    check_length(value.len() as u64 + suffix.len() as u64)?;
    value.extend_from_slice(&suffix);
    // Redis appends in place to an existing string (then `raw`); a new key is its argument, encoded as
    // SET's.
    let encoding = if created { StringEncoding::Content } else { StringEncoding::Raw };
    slot.set_string(db, &key, &value, encoding, expire)?;
    slot.commit()?;
    ctx.touch(db, &key);
    ctx.notify_new(created, db, &key);
    ctx.notify(ev::STRING, "append", db, &key);
    Ok(Reply::Int(value.len() as i64))
}

/// ```text
/// STRLEN key
/// ```
pub fn strlen(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let entry = as_string(ctx.engine.get(ctx.db(), &key)?)?;
    Ok(Reply::Int(entry.map_or(0, |e| e.value.len() as i64)))
}

/// ```text
/// GETRANGE key start end
/// SUBSTR key start end
/// ```
pub fn getrange(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let mut start = args.next_i64()?;
    let mut end = args.next_i64()?;
    let Some(entry) = as_string(ctx.engine.get(ctx.db(), &key)?)? else {
        return Ok(Reply::bulk(""));
    };
    let len = entry.value.len() as i64;
    if start < 0 && end < 0 && start > end {
        return Ok(Reply::bulk(""));
    }
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        return Ok(Reply::bulk(""));
    }
    Ok(Reply::Bulk(entry.value.slice(start as usize..=end as usize)))
}

/// ```text
/// SETRANGE key offset value
/// ```
pub fn setrange(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let offset = args.next_i64()?;
    let patch = args.next_bytes()?;
    if offset < 0 {
        return Err(CmdError::err("offset is out of range"));
    }
    let db = ctx.db();
    let mut slot = ctx.engine.lock_key(&key);
    let old = as_string(slot.get(db, &key)?)?;
    let created = old.is_none();
    let (mut value, expire) = match old {
        Some(entry) => (entry.value.to_vec(), entry.expire_at_ms),
        None if patch.is_empty() => return Ok(Reply::Int(0)),
        None => (Vec::new(), None),
    };
    if patch.is_empty() {
        return Ok(Reply::Int(value.len() as i64));
    }
    let end = offset as u64 + patch.len() as u64;
    check_length(end)?;
    let end = end as usize;
    if value.len() < end {
        value.resize(end, 0);
    }
    value[offset as usize..end].copy_from_slice(&patch);
    // Written in place (a new key too: Redis makes it a zeroed `raw` string first).
    slot.set_string(db, &key, &value, StringEncoding::Raw, expire)?;
    slot.commit()?;
    ctx.touch(db, &key);
    ctx.notify_new(created, db, &key);
    ctx.notify(ev::STRING, "setrange", db, &key);
    Ok(Reply::Int(value.len() as i64))
}

fn incr_generic(ctx: &mut Ctx<'_>, key: Bytes, delta: i64) -> Result<Reply, CmdError> {
    let db = ctx.db();
    let mut slot = ctx.engine.lock_key(&key);
    let (current, expire, created) = match as_string(slot.get(db, &key)?)? {
        Some(entry) => (parse_i64(&entry.value).ok_or(CmdError::NotInteger)?, entry.expire_at_ms, false),
        None => (0, None, true),
    };
    let value = current.checked_add(delta).ok_or(CmdError::Overflow)?;
    slot.set(db, &key, ValueKind::String, value.to_string().as_bytes(), expire)?;
    slot.commit()?;
    ctx.touch(db, &key);
    ctx.notify_new(created, db, &key);
    ctx.notify(ev::STRING, "incrby", db, &key);
    Ok(Reply::Int(value))
}

/// ```text
/// INCR key
/// ```
pub fn incr(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    incr_generic(ctx, key, 1)
}

/// ```text
/// DECR key
/// ```
pub fn decr(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    incr_generic(ctx, key, -1)
}

/// ```text
/// INCRBY key increment
/// ```
pub fn incrby(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let delta = args.next_i64()?;
    incr_generic(ctx, key, delta)
}

/// ```text
/// DECRBY key decrement
/// ```
pub fn decrby(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let delta = args.next_i64()?;
    let delta = delta.checked_neg().ok_or_else(|| CmdError::err("decrement would overflow"))?;
    incr_generic(ctx, key, delta)
}

/// ```text
/// INCRBYFLOAT key increment
/// ```
pub fn incrbyfloat(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let delta_arg = args.next_bytes()?;
    let db = ctx.db();
    let mut slot = ctx.engine.lock_key(&key);
    // Redis's order: the key's type, then its value, then the increment.
    let (current, expire, created) = match as_string(slot.get(db, &key)?)? {
        Some(entry) => (Ext::parse(&entry.value).ok_or(CmdError::NotFloat)?, entry.expire_at_ms, false),
        None => (Ext::parse(b"0").ok_or(CmdError::NotFloat)?, None, true),
    };
    let delta = Ext::parse(&delta_arg).ok_or(CmdError::NotFloat)?;
    if current.is_infinite() || delta.is_infinite() {
        return Err(CmdError::err("increment would produce NaN or Infinity"));
    }
    let value = current.plus(delta);
    if value.is_infinite() {
        return Err(CmdError::err("increment would produce NaN or Infinity"));
    }
    let text = value.to_human();
    // Redis stores the formatted number as a plain string (`embstr`), never as `int`.
    slot.set_string(db, &key, text.as_bytes(), StringEncoding::NotInt, expire)?;
    slot.commit()?;
    ctx.touch(db, &key);
    ctx.notify_new(created, db, &key);
    ctx.notify(ev::STRING, "incrbyfloat", db, &key);
    Ok(Reply::bulk(text))
}

/// ```text
/// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN min-match-len] [WITHMATCHLEN]
/// ```
pub fn lcs(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key_a = args.next_bytes()?;
    let key_b = args.next_bytes()?;
    let (mut len_only, mut idx, mut withmatchlen, mut minmatchlen) = (false, false, false, 0i64);
    while !args.is_empty() {
        let option = args.next_upper()?;
        match option.as_str() {
            "IDX" => idx = true,
            "LEN" => len_only = true,
            "WITHMATCHLEN" => withmatchlen = true,
            "MINMATCHLEN" if !args.is_empty() => minmatchlen = args.next_i64()?.max(0),
            _ => return Err(CmdError::Syntax),
        }
    }
    let db = ctx.db();
    let mut guards = ctx.lock_slots(&[&key_a, &key_b]);
    let a = guard_for(&mut guards, ctx.engine, &key_a).get(db, &key_a)?;
    let b = guard_for(&mut guards, ctx.engine, &key_b).get(db, &key_b)?;
    commit_all(guards)?;
    if a.as_ref().is_some_and(|e| e.kind != ValueKind::String)
        || b.as_ref().is_some_and(|e| e.kind != ValueKind::String)
    {
        return Err(CmdError::err("The specified keys must contain string values"));
    }
    if idx && len_only {
        return Err(CmdError::err("If you want both the length and indexes, please just use IDX."));
    }
    let a = a.map(|e| e.value).unwrap_or_default();
    let b = b.map(|e| e.value).unwrap_or_default();
    let cells = (a.len() as u64 + 1) * (b.len() as u64 + 1);
    if cells > (1 << 32) {
        return Err(CmdError::err("Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"));
    }
    Ok(lcs_reply(&a, &b, len_only, idx, withmatchlen, minmatchlen as usize))
}

/// The LCS dynamic program and Redis's backtracking (ranges are emitted from the end of the strings).
fn lcs_reply(a: &[u8], b: &[u8], len_only: bool, idx: bool, withmatchlen: bool, minmatchlen: usize) -> Reply {
    let (alen, blen) = (a.len(), b.len());
    let width = blen + 1;
    let mut table = vec![0u32; (alen + 1) * width];
    for i in 1..=alen {
        for j in 1..=blen {
            table[i * width + j] = if a[i - 1] == b[j - 1] {
                table[(i - 1) * width + j - 1] + 1
            } else {
                table[(i - 1) * width + j].max(table[i * width + j - 1])
            };
        }
    }
    let total = table[alen * width + blen] as usize;
    if len_only {
        return Reply::Int(total as i64);
    }
    let mut result = vec![0u8; total];
    let mut matches = Vec::new();
    let (mut i, mut j, mut index) = (alen, blen, total);
    let (mut a_start, mut a_end, mut b_start, mut b_end) = (alen, 0, 0, 0);
    while i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            result[index - 1] = a[i - 1];
            if a_start == alen {
                (a_start, a_end, b_start, b_end) = (i - 1, i - 1, j - 1, j - 1);
            } else if a_start == i && b_start == j {
                a_start -= 1;
                b_start -= 1;
            } else {
                emit = true;
            }
            if a_start == 0 || b_start == 0 {
                emit = true;
            }
            index -= 1;
            i -= 1;
            j -= 1;
        } else {
            if table[(i - 1) * width + j] > table[i * width + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            if a_start != alen {
                emit = true;
            }
        }
        if emit {
            let match_len = a_end - a_start + 1;
            if minmatchlen == 0 || match_len >= minmatchlen {
                let mut item = vec![
                    Reply::Array(vec![Reply::Int(a_start as i64), Reply::Int(a_end as i64)]),
                    Reply::Array(vec![Reply::Int(b_start as i64), Reply::Int(b_end as i64)]),
                ];
                if withmatchlen {
                    item.push(Reply::Int(match_len as i64));
                }
                matches.push(Reply::Array(item));
            }
            a_start = alen;
        }
    }
    if idx {
        Reply::Map(vec![
            (Reply::bulk("matches"), Reply::Array(matches)),
            (Reply::bulk("len"), Reply::Int(total as i64)),
        ])
    } else {
        Reply::Bulk(Bytes::from(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lcs_example() {
        assert_eq!(lcs_reply(b"ohmytext", b"mynewtext", false, false, false, 0), Reply::bulk("mytext"));
        assert_eq!(lcs_reply(b"ohmytext", b"mynewtext", true, false, false, 0), Reply::Int(6));
    }
}
