//! The generic (keyspace) group: DEL, EXISTS, TYPE, expiry, RENAME, COPY, MOVE, KEYS, SCAN, OBJECT,
//! DBSIZE, SWAPDB, RANDOMKEY.

use bytes::Bytes;

use super::collection;
use super::connection::parse_db;
use super::{commit_all, guard_for, Args, CmdError, Ctx};
use crate::engine::ValueKind;
use crate::resp::Reply;
use crate::server::notify as ev;

/// Keys fetched per engine scan call when a command walks a whole database.
const SCAN_BATCH: usize = 1024;

/// Redis's name for a value type (TYPE, SCAN TYPE).
pub fn type_name(kind: ValueKind) -> &'static str {
    match kind {
        ValueKind::String => "string",
        ValueKind::Hash => "hash",
        ValueKind::List => "list",
        ValueKind::Set => "set",
        ValueKind::SortedSet => "zset",
        ValueKind::Stream => "stream",
        ValueKind::BloomFilter => "MBbloom--",
        _ => "none",
    }
}

/// ```text
/// DEL key [key ...]
/// UNLINK key [key ...]
/// ```
pub fn del(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let keys = args.rest();
    let db = ctx.db();
    let refs: Vec<&[u8]> = keys.iter().map(|k| k.as_ref()).collect();
    let mut guards = ctx.lock_slots(&refs);
    let mut deleted = Vec::new();
    for key in &keys {
        if guard_for(&mut guards, ctx.engine, key).delete(db, key)? {
            deleted.push(key);
        }
    }
    commit_all(guards)?;
    for key in &deleted {
        ctx.touch(db, key);
        ctx.notify(ev::GENERIC, "del", db, key);
    }
    Ok(Reply::Int(deleted.len() as i64))
}

/// ```text
/// EXISTS key [key ...]
/// ```
pub fn exists(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let db = ctx.db();
    let mut count = 0;
    for key in args.rest() {
        count += i64::from(ctx.engine.exists(db, &key)?);
    }
    Ok(Reply::Int(count))
}

/// ```text
/// TOUCH key [key ...]
/// ```
pub fn touch(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    exists(ctx, args)
}

/// ```text
/// TYPE key
/// ```
pub fn type_(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let info = ctx.engine.key_info(ctx.db(), &key)?;
    Ok(Reply::simple(info.map_or("none", |i| type_name(i.kind))))
}

fn expire_generic(
    ctx: &mut Ctx<'_>,
    args: &mut Args,
    seconds: bool,
    absolute: bool,
    command: &str,
) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let when = args.next_i64()?;
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    while !args.is_empty() {
        let option = args.next_bytes()?;
        match String::from_utf8_lossy(&option).to_ascii_uppercase().as_str() {
            "NX" => nx = true,
            "XX" => xx = true,
            "GT" => gt = true,
            "LT" => lt = true,
            _ => return Err(CmdError::err(format!("Unsupported option {}", String::from_utf8_lossy(&option)))),
        }
    }
    if nx && (xx || gt || lt) {
        return Err(CmdError::err("NX and XX, GT or LT options at the same time are not compatible"));
    }
    if gt && lt {
        return Err(CmdError::err("GT and LT options at the same time are not compatible"));
    }
    let invalid = || CmdError::err(format!("invalid expire time in '{command}' command"));
    let now = ctx.now_ms() as i64;
    let mut at = when;
    if seconds {
        at = at.checked_mul(1000).ok_or_else(invalid)?;
    }
    if !absolute {
        at = at.checked_add(now).ok_or_else(invalid)?;
    }
    let db = ctx.db();
    let mut slot = ctx.engine.lock_key(&key);
    let Some(info) = slot.key_info(db, &key)? else {
        return Ok(Reply::Int(0));
    };
    let current = info.expire_at_ms.map(|t| t as i64);
    let refused = (nx && current.is_some())
        || (xx && current.is_none())
        || (gt && current.is_none_or(|c| at <= c))
        || (lt && current.is_some_and(|c| at >= c));
    if refused {
        return Ok(Reply::Int(0));
    }
    let event = if at <= now {
        slot.delete(db, &key)?;
        "del"
    } else {
        slot.set_expiry(db, &key, Some(at as u64))?;
        "expire"
    };
    slot.commit()?;
    ctx.touch(db, &key);
    ctx.notify(ev::GENERIC, event, db, &key);
    Ok(Reply::Int(1))
}

/// ```text
/// EXPIRE key seconds [NX | XX | GT | LT]
/// ```
pub fn expire(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    expire_generic(ctx, args, true, false, "expire")
}

/// ```text
/// PEXPIRE key milliseconds [NX | XX | GT | LT]
/// ```
pub fn pexpire(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    expire_generic(ctx, args, false, false, "pexpire")
}

/// ```text
/// EXPIREAT key unix-time-seconds [NX | XX | GT | LT]
/// ```
pub fn expireat(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    expire_generic(ctx, args, true, true, "expireat")
}

/// ```text
/// PEXPIREAT key unix-time-milliseconds [NX | XX | GT | LT]
/// ```
pub fn pexpireat(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    expire_generic(ctx, args, false, true, "pexpireat")
}

fn ttl_generic(ctx: &mut Ctx<'_>, args: &mut Args, millis: bool, absolute: bool) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let Some(info) = ctx.engine.key_info(ctx.db(), &key)? else {
        return Ok(Reply::Int(-2));
    };
    let Some(at) = info.expire_at_ms else {
        return Ok(Reply::Int(-1));
    };
    let value = if absolute { at as i64 } else { (at as i64 - ctx.now_ms() as i64).max(0) };
    Ok(Reply::Int(if millis { value } else { (value + 500) / 1000 }))
}

/// ```text
/// TTL key
/// ```
pub fn ttl(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    ttl_generic(ctx, args, false, false)
}

/// ```text
/// PTTL key
/// ```
pub fn pttl(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    ttl_generic(ctx, args, true, false)
}

/// ```text
/// EXPIRETIME key
/// ```
pub fn expiretime(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    ttl_generic(ctx, args, false, true)
}

/// ```text
/// PEXPIRETIME key
/// ```
pub fn pexpiretime(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    ttl_generic(ctx, args, true, true)
}

/// ```text
/// PERSIST key
/// ```
pub fn persist(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let db = ctx.db();
    let mut slot = ctx.engine.lock_key(&key);
    let had = slot.key_info(db, &key)?.is_some_and(|i| i.expire_at_ms.is_some());
    if had {
        slot.set_expiry(db, &key, None)?;
    }
    slot.commit()?;
    if had {
        ctx.touch(db, &key);
        ctx.notify(ev::GENERIC, "persist", db, &key);
    }
    Ok(Reply::Int(i64::from(had)))
}

/// Moves or copies `src` (db `src_db`) to `dst` (db `dst_db`) under both slot locks. `Ok(None)` if `src`
/// does not exist; `Ok(Some(false))` if `dst` exists and `replace` is false.
fn transfer(
    ctx: &Ctx<'_>,
    src_db: u16,
    src: &[u8],
    dst_db: u16,
    dst: &[u8],
    replace: bool,
    remove_src: bool,
) -> Result<Option<bool>, CmdError> {
    let mut guards = ctx.lock_slots(&[src, dst]);
    if guard_for(&mut guards, ctx.engine, src).key_info(src_db, src)?.is_none() {
        return Ok(None);
    }
    let dst_slot = guard_for(&mut guards, ctx.engine, dst);
    if !replace && dst_slot.key_info(dst_db, dst)?.is_some() {
        return Ok(Some(false));
    }
    // RENAME within one slot and database moves a split collection's header and leaves its parts alone.
    if remove_src && src_db == dst_db && ctx.engine.slot_of(src) == ctx.engine.slot_of(dst) {
        let slot = guard_for(&mut guards, ctx.engine, src);
        if collection::rename_split(slot, src_db, src, dst)? {
            commit_all(guards)?;
            return Ok(Some(true));
        }
    }
    // Otherwise a split collection's parts belong to its key: the copy gets its own
    // (collection::portable_value).
    let entry =
        collection::portable_value(guard_for(&mut guards, ctx.engine, src), src_db, src)?.ok_or(CmdError::NoSuchKey)?;
    collection::write_portable(guard_for(&mut guards, ctx.engine, dst), dst_db, dst, &entry)?;
    if remove_src {
        guard_for(&mut guards, ctx.engine, src).delete(src_db, src)?;
    }
    commit_all(guards)?;
    Ok(Some(true))
}

/// ```text
/// RENAME key newkey
/// ```
pub fn rename(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let src = args.next_bytes()?;
    let dst = args.next_bytes()?;
    let db = ctx.db();
    if src == dst {
        return if ctx.engine.exists(db, &src)? { Ok(Reply::Ok) } else { Err(CmdError::NoSuchKey) };
    }
    match transfer(ctx, db, &src, db, &dst, true, true)? {
        None => Err(CmdError::NoSuchKey),
        Some(_) => {
            ctx.touch(db, &src);
            ctx.touch(db, &dst);
            // Redis deletes an existing destination and adds the key anew.
            ctx.notify_new(true, db, &dst);
            ctx.notify(ev::GENERIC, "rename_from", db, &src);
            ctx.notify(ev::GENERIC, "rename_to", db, &dst);
            Ok(Reply::Ok)
        }
    }
}

/// ```text
/// RENAMENX key newkey
/// ```
pub fn renamenx(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let src = args.next_bytes()?;
    let dst = args.next_bytes()?;
    let db = ctx.db();
    if src == dst {
        return if ctx.engine.exists(db, &src)? { Ok(Reply::Int(0)) } else { Err(CmdError::NoSuchKey) };
    }
    match transfer(ctx, db, &src, db, &dst, false, true)? {
        None => Err(CmdError::NoSuchKey),
        Some(false) => Ok(Reply::Int(0)),
        Some(true) => {
            ctx.touch(db, &src);
            ctx.touch(db, &dst);
            // Redis deletes an existing destination and adds the key anew.
            ctx.notify_new(true, db, &dst);
            ctx.notify(ev::GENERIC, "rename_from", db, &src);
            ctx.notify(ev::GENERIC, "rename_to", db, &dst);
            Ok(Reply::Int(1))
        }
    }
}

/// ```text
/// COPY source destination [DB destination-db] [REPLACE]
/// ```
pub fn copy(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let src = args.next_bytes()?;
    let dst = args.next_bytes()?;
    let mut dst_logical = ctx.client.db;
    let mut replace = false;
    while !args.is_empty() {
        if args.eat("REPLACE") {
            replace = true;
        } else if args.eat("DB") && !args.is_empty() {
            dst_logical = parse_db(ctx, &args.next_bytes()?)?;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let src_db = ctx.db();
    let dst_db = ctx.server.dbmap.physical(dst_logical);
    if src == dst && src_db == dst_db {
        return Err(CmdError::err("source and destination objects are the same"));
    }
    match transfer(ctx, src_db, &src, dst_db, &dst, replace, false)? {
        Some(true) => {
            ctx.touch(dst_db, &dst);
            // The copy is a new object: accessed now, in its own database (`server::access`).
            ctx.server.access.touch(dst_db, &dst);
            ctx.notify_new(true, dst_db, &dst);
            ctx.notify(ev::GENERIC, "copy_to", dst_db, &dst);
            Ok(Reply::Int(1))
        }
        _ => Ok(Reply::Int(0)),
    }
}

/// ```text
/// MOVE key db
/// ```
pub fn move_(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let dst_logical = parse_db(ctx, &args.next_bytes()?)?;
    let src_db = ctx.db();
    let dst_db = ctx.server.dbmap.physical(dst_logical);
    if src_db == dst_db {
        return Err(CmdError::err("source and destination objects are the same"));
    }
    match transfer(ctx, src_db, &key, dst_db, &key, false, true)? {
        Some(true) => {
            ctx.touch(src_db, &key);
            ctx.touch(dst_db, &key);
            ctx.server.access.touch(dst_db, &key);
            ctx.notify_new(true, dst_db, &key);
            ctx.notify(ev::GENERIC, "move_from", src_db, &key);
            ctx.notify(ev::GENERIC, "move_to", dst_db, &key);
            Ok(Reply::Int(1))
        }
        _ => Ok(Reply::Int(0)),
    }
}

/// Calls `visit` for every key of a physical database, in scan order, stopping early when the command
/// is cancelled ([`Ctx::checkpoint`]: shutdown, client gone).
fn for_each_key(ctx: &Ctx<'_>, db: u16, mut visit: impl FnMut(Vec<u8>) -> bool) -> Result<(), CmdError> {
    let mut cursor = 0;
    loop {
        let page = ctx.engine.scan(Some(db), cursor, SCAN_BATCH)?;
        for (_, key) in page.keys {
            ctx.checkpoint()?;
            if !visit(key) {
                return Ok(());
            }
        }
        if page.cursor == 0 {
            return Ok(());
        }
        cursor = page.cursor;
    }
}

/// ```text
/// KEYS pattern
/// ```
pub fn keys(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let pattern = args.next_bytes()?;
    let all = pattern.as_ref() == b"*";
    let matcher = crate::glob::Pattern::new(&pattern, false);
    let mut found = Vec::new();
    for_each_key(ctx, ctx.db(), |key| {
        if all || matcher.matches(&key) {
            found.push(Reply::Bulk(Bytes::from(key)));
        }
        true
    })?;
    Ok(Reply::Array(found))
}

/// ```text
/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]
/// ```
pub fn scan(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let super::args::ScanOptions { cursor, pattern, count, kind } = super::args::scan_options(args, true)?;
    let db = ctx.db();
    // A huge COUNT is read in batches, so that a cancelled command stops between them.
    let mut page = crate::engine::ScanPage { cursor, ..Default::default() };
    loop {
        let batch = ctx.engine.scan(Some(db), page.cursor, (count - page.keys.len()).min(SCAN_BATCH))?;
        page.keys.extend(batch.keys);
        page.cursor = batch.cursor;
        if page.cursor == 0 || page.keys.len() >= count {
            break;
        }
        ctx.check_cancelled()?;
    }
    let matcher = pattern.filter(|p| p.as_ref() != b"*").map(|p| crate::glob::Pattern::new(&p, false));
    let mut keys = Vec::with_capacity(page.keys.len());
    for (_, key) in page.keys {
        ctx.checkpoint()?;
        if matcher.as_ref().is_some_and(|m| !m.matches(&key)) {
            continue;
        }
        if let Some(kind) = &kind {
            match ctx.engine.key_info(db, &key)? {
                Some(info) if type_name(info.kind) == kind => {}
                _ => continue,
            }
        }
        keys.push(Reply::Bulk(Bytes::from(key)));
    }
    Ok(Reply::Array(vec![Reply::bulk(page.cursor.to_string()), Reply::Array(keys)]))
}

/// ```text
/// RANDOMKEY
/// ```
pub fn randomkey(ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    let key = ctx.engine.random_key(ctx.db(), ctx.random(0))?;
    Ok(key.map_or(Reply::Nil, |key| Reply::Bulk(Bytes::from(key))))
}

/// ```text
/// DBSIZE
/// ```
pub fn dbsize(ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    Ok(Reply::Int(ctx.engine.dbsize(ctx.db())? as i64))
}

/// ```text
/// SWAPDB index1 index2
/// ```
pub fn swapdb(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let first = super::args::parse_i64(&args.next_bytes()?).ok_or_else(|| CmdError::err("invalid first DB index"))?;
    let second = super::args::parse_i64(&args.next_bytes()?).ok_or_else(|| CmdError::err("invalid second DB index"))?;
    let databases = i64::from(ctx.server.databases());
    if first < 0 || first >= databases || second < 0 || second >= databases {
        return Err(CmdError::DbIndexOutOfRange);
    }
    let (a, b) = (first as u16, second as u16);
    let touched_a = super::transactions::existing_watched_keys(ctx, a, b)?;
    let touched_b = super::transactions::existing_watched_keys(ctx, b, a)?;
    ctx.server.dbmap.swap(first as u16, second as u16).map_err(|error| {
        tracing::error!(%error, "cannot persist the database map");
        CmdError::err("internal error: cannot persist the database map (see the server log)")
    })?;
    super::transactions::touch_logical(ctx, a, &touched_a);
    super::transactions::touch_logical(ctx, b, &touched_b);
    ctx.server.blocking.signal_existing(ctx.server, a);
    ctx.server.blocking.signal_existing(ctx.server, b);
    Ok(Reply::Ok)
}

fn object_entry(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Option<crate::engine::Entry>, CmdError> {
    let key = args.next_bytes()?;
    Ok(ctx.engine.get(ctx.db(), &key)?)
}

/// ```text
/// OBJECT ENCODING key
/// ```
pub fn object_encoding(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    Ok(match ctx.engine.get(ctx.db(), &key)? {
        None => Reply::Nil,
        Some(entry) => Reply::bulk(encoding_of(ctx, &key, &entry)?),
    })
}

/// Redis's OBJECT ENCODING name of the value `entry` stored at `key` (also DEBUG OBJECT's `encoding:`).
pub fn encoding_of(ctx: &mut Ctx<'_>, key: &[u8], entry: &crate::engine::Entry) -> Result<&'static str, CmdError> {
    if entry.kind == ValueKind::String {
        return Ok(entry.string_encoding.name(&entry.value));
    }
    Ok(collection::encoding_name(ctx, key, entry)?.unwrap_or_else(|| type_name(entry.kind)))
}

/// ```text
/// OBJECT FREQ key
/// ```
pub fn object_freq(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.peek().map(|key| key.to_vec()).unwrap_or_default();
    match object_entry(ctx, args)? {
        None => Ok(Reply::Nil),
        Some(_) if ctx.server.access.lfu() => Ok(Reply::Int(i64::from(ctx.server.access.frequency(ctx.db(), &key)))),
        Some(_) => Err(CmdError::err(
            "An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching \
             between policies at runtime LRU and LFU data will take some time to adjust.",
        )),
    }
}

/// ```text
/// OBJECT IDLETIME key
/// ```
pub fn object_idletime(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    // The access clock is in RAM (`server::access`): a key not named since the start reads as idle since then.
    let key = args.peek().map(|key| key.to_vec()).unwrap_or_default();
    match object_entry(ctx, args)? {
        None => Ok(Reply::Nil),
        Some(_) if ctx.server.access.lfu() => Err(CmdError::err(
            "An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between \
             policies at runtime LRU and LFU data will take some time to adjust.",
        )),
        Some(_) => Ok(Reply::Int(ctx.server.access.idle_seconds(ctx.db(), &key) as i64)),
    }
}

/// ```text
/// OBJECT REFCOUNT key
/// ```
pub fn object_refcount(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    Ok(match object_entry(ctx, args)? {
        None => Reply::Nil,
        Some(entry) => Reply::Int(refcount(&entry)),
    })
}

/// Redis's reference count of a value: the shared integers 0..10000 (an `int`-encoded string) have
/// INT_MAX, every other value one (also OBJECT and DEBUG OBJECT's `refcount:`).
pub fn refcount(entry: &crate::engine::Entry) -> i64 {
    let shared = entry.kind == ValueKind::String
        && entry.string_encoding.name(&entry.value) == "int"
        && super::args::parse_i64(&entry.value).is_some_and(|n| (0..10000).contains(&n));
    if shared {
        i64::from(i32::MAX)
    } else {
        1
    }
}

/// ```text
/// OBJECT HELP
/// ```
pub fn object_help(_ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    Ok(super::connection::help(&[
        "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ENCODING <key>",
        "    Return the kind of internal representation used in order to store the value",
        "    associated with a <key>.",
        "FREQ <key>",
        "    Return the access frequency index of the <key>. The returned integer is",
        "    proportional to the logarithm of the recent access frequency of the key.",
        "IDLETIME <key>",
        "    Return the idle time of the <key>, that is the approximated number of",
        "    seconds elapsed since the last access to the key.",
        "REFCOUNT <key>",
        "    Return the number of references of the value associated with the specified",
        "    <key>.",
        "HELP",
        "    Prints this help.",
    ]))
}
