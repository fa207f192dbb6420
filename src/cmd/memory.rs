//! MEMORY USAGE, STATS, DOCTOR, MALLOC-STATS, PURGE and HELP.
//!
//! Velo's data is on disk, so what MEMORY USAGE reports for a key is what Velo *stores* for it: its
//! key-bucket cell (its compact header, 9 to 23 bytes, and the key), its value envelope (2 bytes and the
//! value bytes, before compression) and, for a collection split into parts, the bytes of its elements (kept exactly
//! in the collection's header, so SAMPLES is accepted and checked but no sampling is needed).
//! MEMORY STATS reports the process's memory (resident set) in Redis's fields; the figures Redis takes
//! from its allocator are the resident set as well (Velo's allocator keeps no such statistics).

use bytes::Bytes;

use super::connection::help as help_reply;
use super::{Args, CmdError, Ctx};
use crate::resp::Reply;

/// Bytes of a value envelope's header (kind, codec).
const ENVELOPE_HEADER: u64 = 2;
/// Envelopes up to this length are stored inline in their cell (the engine's default `inline_max`).
const INLINE_MAX: usize = 64;

/// Bytes of the compact key-bucket cell header (docs/format.md §"Cell") of a key of `db` with this expiry
/// whose envelope is `envelope_len` bytes: tag and key length, the database unless 0, a 6-byte sequence,
/// the expiry when set, the value length when the envelope is inline (else a location follows, which is
/// not counted, as the envelope is counted whole).
fn cell_header_len(db: u16, expire_at_ms: Option<u64>, envelope_len: usize) -> u64 {
    let inline = (envelope_len <= INLINE_MAX).then_some(envelope_len);
    let whole = crate::engine::page::cell_len(1, expire_at_ms.unwrap_or(0), db, 0, inline);
    (whole - inline.unwrap_or(crate::engine::page::LOCATION_LEN)) as u64
}

/// ```text
/// MEMORY USAGE key [SAMPLES count]
/// ```
pub fn usage(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    while !args.is_empty() {
        if args.eat("SAMPLES") && !args.is_empty() {
            if args.next_i64()? < 0 {
                return Err(CmdError::Syntax);
            }
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let db = ctx.db();
    let Some(entry) = ctx.engine.get(db, &key)? else {
        return Ok(Reply::Nil);
    };
    Ok(Reply::Int(stored_bytes(db, &key, &entry.value, entry.expire_at_ms)? as i64))
}

/// What Velo stores for `key` holding `value` (see the module comment).
pub fn stored_bytes(db: u16, key: &[u8], value: &[u8], expire_at_ms: Option<u64>) -> Result<u64, CmdError> {
    use crate::elements as el;
    let envelope = ENVELOPE_HEADER + value.len() as u64;
    let mut bytes = cell_header_len(db, expire_at_ms, envelope as usize) + key.len() as u64 + envelope;
    if el::is_split(value) && value.len() > 4 {
        let unreadable =
            |e: crate::elements::ElementError| CmdError::err(format!("stored collection is unreadable: {e}"));
        bytes += match value[4] & !el::LAYOUT_PROMOTED {
            el::LAYOUT_HASHED => el::hashed::Hashed::decode(db, key, value).map_err(unreadable)?.bytes(),
            el::LAYOUT_CHAIN => el::chain::Chain::decode(db, key, value).map_err(unreadable)?.bytes(),
            el::LAYOUT_RANKED => el::ranked::Ranked::decode(db, key, value).map_err(unreadable)?.bytes(),
            el::LAYOUT_STREAM => el::streamed::Streamed::decode(db, key, value).map_err(unreadable)?.bytes(),
            _ => 0,
        };
    }
    Ok(bytes)
}

/// (resident bytes, peak resident bytes) of the process, from /proc.
fn resident() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    let rss = field("VmRSS:");
    (rss, field("VmHWM:").max(rss))
}

struct Overhead {
    peak: u64,
    total: u64,
    startup: u64,
    clients: u64,
    keys: u64,
    dbs: Vec<(u16, u64)>,
}

fn overhead(ctx: &Ctx<'_>) -> Result<Overhead, CmdError> {
    let (total, peak) = resident();
    let clients = ctx
        .server
        .clients
        .all()
        .iter()
        .map(|c| {
            let line = c.info_line();
            line.split(' ')
                .find_map(|field| field.strip_prefix("tot-mem="))
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum();
    let mut dbs = Vec::new();
    let mut keys = 0;
    for db in 0..ctx.server.databases() {
        let count = ctx.engine.dbsize(ctx.server.dbmap.physical(db))?;
        if count > 0 {
            dbs.push((db, count));
            keys += count;
        }
    }
    Ok(Overhead { peak, total, startup: ctx.server.intro.startup_rss(), clients, keys, dbs })
}

/// ```text
/// MEMORY STATS
/// ```
pub fn stats(ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    let o = overhead(ctx)?;
    let overhead_total = o.startup + o.clients;
    let net = o.total.saturating_sub(o.startup);
    let dataset = o.total.saturating_sub(overhead_total);
    let int = |name: &'static str, value: u64| (Reply::bulk(name), Reply::Int(value as i64));
    let double = |name: &'static str, value: f64| (Reply::bulk(name), Reply::Double(value));
    let mut map = vec![
        int("peak.allocated", o.peak),
        int("total.allocated", o.total),
        int("startup.allocated", o.startup),
        int("replication.backlog", 0),
        int("clients.slaves", 0),
        int("clients.normal", o.clients),
        int("cluster.links", 0),
        int("aof.buffer", 0),
        int("lua.caches", 0),
        int("functions.caches", 0),
    ];
    for (db, _) in &o.dbs {
        // Velo's key index is on disk (key-bucket pages behind the shared page cache): no per-database
        // hash table lives in memory.
        map.push((
            Reply::bulk(format!("db.{db}")),
            Reply::Map(vec![
                int("overhead.hashtable.main", 0),
                int("overhead.hashtable.expires", 0),
                int("overhead.hashtable.slot-to-keys", 0),
            ]),
        ));
    }
    map.extend([
        int("overhead.total", overhead_total),
        int("keys.count", o.keys),
        int("keys.bytes-per-key", net.checked_div(o.keys).unwrap_or(0)),
        int("dataset.bytes", dataset),
        double("dataset.percentage", if net > 0 { dataset as f64 * 100.0 / net as f64 } else { 0.0 }),
        double("peak.percentage", if o.peak > 0 { o.total as f64 * 100.0 / o.peak as f64 } else { 0.0 }),
        int("allocator.allocated", o.total),
        int("allocator.active", o.total),
        int("allocator.resident", o.total),
        double("allocator-fragmentation.ratio", 1.0),
        int("allocator-fragmentation.bytes", 0),
        double("allocator-rss.ratio", 1.0),
        int("allocator-rss.bytes", 0),
        double("rss-overhead.ratio", 1.0),
        int("rss-overhead.bytes", 0),
        double("fragmentation", 1.0),
        int("fragmentation.bytes", 0),
    ]);
    Ok(Reply::Map(map))
}

/// ```text
/// MEMORY DOCTOR
/// ```
///
/// Redis's checks that apply to Velo's figures: an (almost) empty process, a past peak, big client
/// buffers. Fragmentation checks never fire (the allocator figures are the resident set).
pub fn doctor(ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    let o = overhead(ctx)?;
    let clients = ctx.server.clients.count().max(1) as u64;
    let text = if o.total < 5 * 1024 * 1024 {
        "Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting.\n".to_string()
    } else {
        let big_peak = o.peak as f64 / o.total as f64 > 1.5;
        let big_client_buf = o.clients / clients > 1024 * 200;
        if !big_peak && !big_client_buf {
            "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.\n"
                .to_string()
        } else {
            let mut s = "Sam, I detected a few issues in this Redis instance memory implants:\n\n".to_string();
            if big_peak {
                s.push_str(" * Peak memory: In the past this instance used more than 150% the memory that is currently using. The allocator is normally not able to release memory after a peak, so you can expect to see a big fragmentation ratio, however this is actually harmless and is only due to the memory peak, and if the Redis instance Resident Set Size (RSS) is currently bigger than expected, the memory will be used as soon as you fill the Redis instance with more data. If the memory peak was only occasional and you want to try to reclaim memory, please try the MEMORY PURGE command, otherwise the only other option is to shutdown and restart the instance.\n\n");
            }
            if big_client_buf {
                s.push_str(" * Big client buffers: The clients output buffers in this instance are greater than 200K per client (on average). This may result from different causes, like Pub/Sub clients subscribed to channels bot not receiving data fast enough, so that data piles on the Redis instance output buffer, or clients sending commands with large replies or very large sequences of commands in the same pipeline. Please use the CLIENT LIST command in order to investigate the issue if it causes problems in your instance, or to understand better why certain clients are using a big amount of memory.\n\n");
            }
            s.push_str("I'm here to keep you safe, Sam. I want to help you.\n");
            s
        }
    };
    Ok(Reply::Verbatim("txt", Bytes::from(text)))
}

/// ```text
/// MEMORY MALLOC-STATS
/// ```
///
/// Redis's answer when its allocator is not jemalloc.
pub fn malloc_stats(_ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    Ok(Reply::bulk("Stats not supported for the current allocator"))
}

/// ```text
/// MEMORY PURGE
/// ```
///
/// As Redis built without jemalloc: nothing to ask the allocator (Velo's returns freed pages by itself).
pub fn purge(_ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    Ok(Reply::Ok)
}

/// ```text
/// MEMORY HELP
/// ```
pub fn help(_ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    Ok(help_reply(&[
        "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "DOCTOR",
        "    Return memory problems reports.",
        "MALLOC-STATS",
        "    Return internal statistics report from the memory allocator.",
        "PURGE",
        "    Attempt to purge dirty pages for reclamation by the allocator.",
        "STATS",
        "    Return information about the memory usage of the server.",
        "USAGE <key> [SAMPLES <count>]",
        "    Return memory in bytes used by <key> and its value. Nested values are",
        "    sampled up to <count> times (default: 5, 0 means sample all).",
        "HELP",
        "    Prints this help.",
    ]))
}
