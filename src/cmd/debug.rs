//! DEBUG: the subcommands of Redis 7.0's DEBUG that have an honest meaning in Velo (docs/compat.md,
//! "DEBUG"). Redis's own test suite and client libraries' tests use them; those tied to Redis's memory
//! layout (HTSTATS, SDSLEN, MALLCTL, LISTPACK, QUICKLIST) or to its AOF (LOADAOF) answer Redis's unknown
//! subcommand error.
//!
//! One match arm per subcommand, each calling a function, so that arms added by different changes merge.

use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;

use super::args::Args;
use super::{CmdError, Ctx};
use crate::engine::ValueKind;
use crate::rdb::store::{self, ExportError};
use crate::rdb::Value;
use crate::resp::{Protocol, Reply};

/// Server-wide DEBUG switches.
#[derive(Debug)]
pub struct DebugState {
    /// False after `DEBUG SET-ACTIVE-EXPIRE 0`: the active expire cycle stops (keys still expire when
    /// accessed), as in Redis.
    active_expire: AtomicBool,
    /// True after `DEBUG SET-DISABLE-DENY-SCRIPTS 1`: scripts may call the commands flagged `noscript`
    /// (Redis's test suite uses it to call DEBUG PROTOCOL and CLIENT LIST from scripts).
    allow_noscript: AtomicBool,
}

impl Default for DebugState {
    fn default() -> Self {
        DebugState { active_expire: AtomicBool::new(true), allow_noscript: AtomicBool::new(false) }
    }
}

impl DebugState {
    /// Whether the active expire cycle runs.
    pub fn active_expire(&self) -> bool {
        self.active_expire.load(Ordering::Relaxed)
    }

    /// Whether scripts may call `noscript` commands (`DEBUG SET-DISABLE-DENY-SCRIPTS 1`).
    pub fn noscript_allowed(&self) -> bool {
        self.allow_noscript.load(Ordering::Relaxed)
    }
}

/// ```text
/// DEBUG subcommand [argument ...]
/// ```
pub fn debug(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    check_allowed(ctx)?;
    let given = args.next_bytes()?;
    let sub = String::from_utf8_lossy(&given).to_ascii_uppercase();
    let n = args.remaining();
    match sub.as_str() {
        "HELP" if n == 0 => Ok(help()),
        "SLEEP" if n == 1 => sleep(args),
        "LOG" if n == 1 => log(args),
        "ERROR" if n == 1 => error(args),
        "SET-ACTIVE-EXPIRE" if n == 1 => set_active_expire(ctx, args),
        "SET-DISABLE-DENY-SCRIPTS" if n == 1 => {
            // Not in Redis's DEBUG HELP either; `atoi` as Redis.
            let on = atoi(&args.next_bytes()?) != 0;
            ctx.server.debug.allow_noscript.store(on, Ordering::Relaxed);
            Ok(Reply::Ok)
        }
        "QUICKLIST-PACKED-THRESHOLD" if n == 1 => quicklist_packed_threshold(args),
        "OBJECT" if n == 1 => object(ctx, args),
        "DIGEST" if n == 0 => digest(ctx),
        "DIGEST-VALUE" => digest_value(ctx, args),
        "PROTOCOL" if n == 1 => protocol(ctx, args),
        "RELOAD" => reload(ctx, args),
        "POPULATE" if (1..=3).contains(&n) => populate(ctx, args),
        _ => Err(CmdError::err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
            String::from_utf8_lossy(&given)
        ))),
    }
}

/// Redis's `enable-debug-command` (Velo's default is `yes`).
fn check_allowed(ctx: &Ctx<'_>) -> Result<(), CmdError> {
    super::protected_action_allowed(ctx, "enable-debug-command", "yes", "DEBUG")
}

/// DEBUG HELP: Redis's texts for the subcommands Velo has (and what RELOAD means here).
fn help() -> Reply {
    super::connection::help(&[
        "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "DIGEST",
        "    Output a hex signature representing the current DB content.",
        "DIGEST-VALUE <key> [<key> ...]",
        "    Output a hex signature of the values of all the specified keys.",
        "ERROR <string>",
        "    Return a Redis protocol error with <string> as message. Useful for clients",
        "    unit tests to simulate Redis errors.",
        "LOG <message>",
        "    Write <message> to the server log.",
        "OBJECT <key>",
        "    Show low level info about `key` and associated value.",
        "POPULATE <count> [<prefix>] [<size>]",
        "    Create <count> string keys named <prefix>:<n> (prefix 'key') holding 'value:<n>',",
        "    zero-padded or cut to <size> bytes when given. Existing keys are left alone.",
        "PROTOCOL <type>",
        "    Reply with a test value of the specified type. <type> can be: string,",
        "    integer, double, bignum, null, array, set, map, attrib, push, verbatim,",
        "    true, false.",
        "RELOAD",
        "    Make every write durable, move the write-ahead log into the data files, drop",
        "    the caches and serve every key from disk again.",
        "SET-ACTIVE-EXPIRE <0|1>",
        "    Setting it to 0 disables expiring keys in background when they are not",
        "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
        "    default.",
        "QUICKLIST-PACKED-THRESHOLD <size>",
        "    Sets the threshold for elements to be inserted as plain vs packed nodes",
        "    Default value is 1GB, allows values up to 4GB. Setting to 0 restores to default.",
        "SLEEP <seconds>",
        "    Stop the server for <seconds>. Decimals allowed.",
        "HELP",
        "    Print this help.",
    ])
}

/// DEBUG SLEEP seconds: blocks this command (Redis's whole server) for that long.
fn sleep(args: &mut Args) -> Result<Reply, CmdError> {
    // strtod: a text that is not a number sleeps 0 seconds, as Redis.
    let text = args.next_bytes()?;
    let seconds = std::str::from_utf8(&text).ok().and_then(|t| t.trim().parse::<f64>().ok()).unwrap_or(0.0);
    if seconds > 0.0 {
        std::thread::sleep(std::time::Duration::from_secs_f64(seconds.min(3600.0)));
    }
    Ok(Reply::Ok)
}

/// DEBUG LOG message: a warning line in the server log (the test suite marks each test's start with it).
fn log(args: &mut Args) -> Result<Reply, CmdError> {
    let message = args.next_bytes()?;
    tracing::warn!("DEBUG LOG: {}", String::from_utf8_lossy(&message));
    Ok(Reply::Ok)
}

/// DEBUG ERROR text: `-text` as an error reply (CR and LF become spaces).
fn error(args: &mut Args) -> Result<Reply, CmdError> {
    let text = args.next_bytes()?;
    Ok(Reply::error(String::from_utf8_lossy(&text).replace(['\r', '\n'], " ")))
}

/// DEBUG SET-ACTIVE-EXPIRE 0|1 (`atoi`: anything but a non-zero number disables).
fn set_active_expire(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let on = atoi(&args.next_bytes()?) != 0;
    ctx.server.debug.active_expire.store(on, Ordering::Relaxed);
    Ok(Reply::Ok)
}

/// C's `atoi`: leading blanks, a sign, then digits up to the first other byte; 0 when there are none.
fn atoi(text: &[u8]) -> i64 {
    let text = std::str::from_utf8(text).unwrap_or("").trim_start();
    let (negative, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).take(18).collect();
    let value: i64 = digits.parse().unwrap_or(0);
    if negative {
        -value
    } else {
        value
    }
}

/// DEBUG QUICKLIST-PACKED-THRESHOLD size: items at least this long get a chunk of their own in a split
/// list, as Redis stores them in plain nodes (crate::elements::chain).
fn quicklist_packed_threshold(args: &mut Args) -> Result<Reply, CmdError> {
    let text = args.next_bytes()?;
    let size = std::str::from_utf8(&text).ok().and_then(crate::config::params::parse_memory);
    match size {
        Some(size) if size <= (1u64 << 32) - (1 << 20) => {
            crate::elements::chain::set_packed_threshold(size as usize);
            Ok(Reply::Ok)
        }
        _ => Err(CmdError::err("argument must be a memory value bigger than 1 and smaller than 4gb")),
    }
}

/// DEBUG OBJECT key: Redis's line with Velo's figures. `at:` is the engine slot holding the key (Velo has
/// no object in memory to point at); `serializedlength` is the value's RDB length, as Redis's; the `lru`
/// fields are left out: the access clock is kept apart from the data (`server::access`, OBJECT IDLETIME).
fn object(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    // Redis looks the key up without checking expiry: an expired key not yet deleted is described.
    crate::script::current::ignoring_expiry(|| describe_object(ctx, args))
}

fn describe_object(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let db = ctx.db();
    let Some(entry) = ctx.engine.get(db, &key)? else { return Err(CmdError::NoSuchKey) };
    let encoding = super::generic::encoding_of(ctx, &key, &entry)?;
    let refcount = super::generic::refcount(&entry);
    let serialized = {
        let mut slot = ctx.engine.lock_key(&key);
        match store::read_shaped(&mut slot, db, &key)? {
            Some(((Ok(value), _), shape)) => {
                let mut out = Vec::new();
                crate::rdb::write::put_value_shaped(&mut out, &value, true, shape);
                out.len()
            }
            _ => entry.value.len(),
        }
    };
    Ok(Reply::simple(format!(
        "Value at:slot{} refcount:{refcount} encoding:{encoding} serializedlength:{serialized}",
        ctx.engine.slot_of(&key)
    )))
}

/// DEBUG DIGEST: Redis's dataset digest (SHA-1 based, order-independent over keys), computed from every
/// key of every database; 40 zeros when there are none.
fn digest(ctx: &mut Ctx<'_>) -> Result<Reply, CmdError> {
    let mut total = [0u8; 20];
    for logical in 0..ctx.server.databases() {
        let db = ctx.server.dbmap.physical(logical);
        let mut cursor = 0;
        let mut first = true;
        loop {
            let page = ctx.engine.scan(Some(db), cursor, 1000)?;
            for (_, key) in page.keys {
                ctx.checkpoint()?;
                let mut slot = ctx.engine.lock_key(&key);
                let Some(found) = store::read(&mut slot, db, &key)? else { continue };
                drop(slot);
                if first {
                    // The database number enters the digest, so that the same keys elsewhere differ.
                    mix(&mut total, &u32::from(logical).to_be_bytes());
                    first = false;
                }
                let mut one = [0u8; 20];
                mix(&mut one, &key);
                value_digest(&mut one, &found);
                xor(&mut total, &one);
            }
            if page.cursor == 0 {
                break;
            }
            cursor = page.cursor;
        }
    }
    Ok(Reply::simple(hex(&total)))
}

/// DEBUG DIGEST-VALUE key ...: the digest of each key's value (40 zeros for a missing key).
fn digest_value(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let db = ctx.db();
    let mut out = Vec::with_capacity(args.remaining());
    while !args.is_empty() {
        let key = args.next_bytes()?;
        let mut one = [0u8; 20];
        let mut slot = ctx.engine.lock_key(&key);
        if let Some(found) = store::read(&mut slot, db, &key)? {
            value_digest(&mut one, &found);
        }
        out.push(Reply::simple(hex(&one)));
    }
    Ok(Reply::Array(out))
}

/// Adds a value (and whether it expires) to `digest` as Redis does: the type code mixed in, then strings
/// and list items mixed in order, set members xored, hash pairs and sorted-set members (with `%.17g`
/// scores) digested apart and xored, stream entries mixed in ID order.
fn value_digest(digest: &mut [u8; 20], (value, expire): &store::Stored) {
    let type_code: u32 = match value {
        Ok(Value::String(_)) => 0,
        Ok(Value::List(_)) => 1,
        Ok(Value::Set(_)) => 2,
        Ok(Value::SortedSet(_)) => 3,
        Ok(Value::Hash(_)) => 4,
        Err(ExportError::Module) | Err(ExportError::Unreadable(_)) => 5,
        Ok(Value::Stream(_)) => 6,
    };
    mix(digest, &type_code.to_be_bytes());
    match value {
        Ok(Value::String(bytes)) => mix(digest, bytes),
        Ok(Value::List(items)) => items.iter().for_each(|item| mix(digest, item)),
        Ok(Value::Set(members)) => members.iter().for_each(|member| xor(digest, member)),
        Ok(Value::SortedSet(members)) => {
            for (member, score) in members {
                let mut one = [0u8; 20];
                mix(&mut one, member);
                mix(&mut one, crate::resp::reply::format_double(*score).as_bytes());
                xor(digest, &one);
            }
        }
        Ok(Value::Hash(pairs)) => {
            for (field, value) in pairs {
                let mut one = [0u8; 20];
                mix(&mut one, field);
                mix(&mut one, value);
                xor(digest, &one);
            }
        }
        Ok(Value::Stream(stream)) => {
            for (id, entry) in &stream.entries {
                mix(digest, format!("{}.{}", id.ms, id.seq).as_bytes());
                for (field, value) in &entry.fields {
                    mix(digest, field);
                    mix(digest, value);
                }
            }
        }
        // A bloom filter is a module type in Redis; it adds only its type code, as a module without a
        // digest callback does.
        Err(_) => {}
    }
    if expire.is_some() {
        xor(digest, b"!!expire!!");
    }
}

fn sha1(data: &[u8]) -> [u8; 20] {
    sha1_smol::Sha1::from(data).digest().bytes()
}

/// `digest ^= SHA1(data)`: order-independent accumulation.
fn xor(digest: &mut [u8; 20], data: &[u8]) {
    let hash = sha1(data);
    digest.iter_mut().zip(hash).for_each(|(d, h)| *d ^= h);
}

/// `digest = SHA1(digest ^ SHA1(data))`: order-dependent accumulation.
fn mix(digest: &mut [u8; 20], data: &[u8]) {
    xor(digest, data);
    *digest = sha1(digest);
}

fn hex(digest: &[u8; 20]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// DEBUG PROTOCOL type: a sample reply of each RESP3 type (clients test their parsers with it).
fn protocol(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let name = args.next_bytes()?.to_ascii_lowercase();
    let resp3 = ctx.client.proto == Protocol::Resp3;
    Ok(match name.as_slice() {
        b"string" => Reply::bulk("Hello World"),
        b"integer" => Reply::Int(12345),
        // Redis's own test value (not π).
        #[allow(clippy::approx_constant)]
        b"double" => Reply::Double(3.141),
        b"bignum" => Reply::BigNumber(Bytes::from_static(b"1234567999999999999999999999999999999")),
        b"null" => Reply::Nil,
        b"array" => Reply::Array((0..3).map(Reply::Int).collect()),
        b"set" => Reply::Set((0..3).map(Reply::Int).collect()),
        b"map" => Reply::Map((0..3).map(|j| (Reply::Int(j), Reply::Bool(j == 1))).collect()),
        b"attrib" => Reply::Attribute(
            vec![(Reply::bulk("key-popularity"), Reply::Array(vec![Reply::bulk("key:123"), Reply::Int(90)]))],
            Box::new(Reply::bulk("Some real reply following the attribute")),
        ),
        b"push" if !resp3 => return Err(CmdError::err("RESP2 is not supported by this command")),
        // A push is not a reply: a normal reply follows, for clients that wait for one.
        b"push" => Reply::Many(vec![
            Reply::Push(vec![Reply::bulk("server-cpu-usage"), Reply::Int(42)]),
            Reply::bulk("Some real reply following the push reply"),
        ]),
        b"true" => Reply::Bool(true),
        b"false" => Reply::Bool(false),
        b"verbatim" => Reply::Verbatim("txt", Bytes::from_static(b"This is a verbatim\nstring")),
        _ => {
            return Err(CmdError::err(
                "Wrong protocol type name. Please use one of the following: \
                 string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false",
            ))
        }
    })
}

/// DEBUG RELOAD: Velo's data is on disk, so "save, flush and load back" becomes: make every write durable,
/// move the write-ahead log into the data files and drop the page and value caches, so that every key is
/// read back from disk afterwards. Every key is kept. Redis's options load a different RDB file; Velo has
/// none to load, so they are refused.
fn reload(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    if !args.is_empty() {
        let option = args.next_upper()?;
        if !matches!(option.as_str(), "MERGE" | "NOFLUSH" | "NOSAVE") {
            return Err(CmdError::err("DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options."));
        }
        return Err(CmdError::err(format!(
            "DEBUG RELOAD {option} is not supported: Velo's data is its data directory, there is no RDB file \
             to load"
        )));
    }
    ctx.engine.sync()?;
    ctx.engine.checkpoint()?;
    ctx.engine.drop_caches();
    tracing::warn!("DB reloaded by DEBUG RELOAD");
    Ok(Reply::Ok)
}

/// A DEBUG count or size: a non-negative integer. Redis (`getPositiveLongFromObjectOrReply` without a
/// message) answers anything else, text or negative, with the same error.
fn non_negative(text: &[u8]) -> Result<u64, CmdError> {
    super::args::parse_i64(text)
        .and_then(|value| u64::try_from(value).ok())
        .ok_or_else(|| CmdError::err("value is out of range, must be positive"))
}

/// DEBUG POPULATE count [prefix] [size]: test data in bulk, as Redis makes it. Key `prefix:N` holds
/// `value:N`, or with a size those bytes zero-padded or cut to it; a key that exists (and has not expired)
/// is left alone, so a second call only fills the gaps. Redis formats the name into a 128-byte buffer, so a
/// name past 127 bytes is cut there. The loop is cancellable (shutdown, client gone), and other clients
/// are served meanwhile: each key takes its own slot's lock.
fn populate(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let count = non_negative(&args.next_bytes()?)?;
    let prefix = if args.is_empty() { Bytes::from_static(b"key") } else { args.next_bytes()? };
    let size = if args.is_empty() { 0 } else { non_negative(&args.next_bytes()?)? };
    super::string::check_length(size)?;
    let db = ctx.db();
    let mut key = Vec::with_capacity(prefix.len() + 21);
    let mut value = Vec::new();
    for n in 0..count {
        ctx.checkpoint()?;
        key.clear();
        key.extend_from_slice(&prefix);
        key.push(b':');
        key.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
        key.truncate(127);
        value.clear();
        value.extend_from_slice(b"value:");
        value.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
        if size > 0 {
            value.resize(size as usize, 0);
        }
        let mut slot = ctx.engine.lock_key(&key);
        if slot.key_info(db, &key)?.is_some() {
            continue;
        }
        slot.set(db, &key, ValueKind::String, &value, None)?;
        slot.commit()?;
        ctx.touch(db, &key);
    }
    Ok(Reply::Ok)
}
