//! `keymiss` keyspace events (class `m`) and INFO's `keyspace_hits`/`keyspace_misses`: which keys a command looks
//! up for reading, counting the hits and misses, and publishing the misses in Redis 7.0's order.
//!
//! Redis counts a hit or a miss in `lookupKey` for every read lookup (`lookupKeyRead*`) except those flagged
//! `LOOKUP_NOSTATS` (serving blocked clients; cluster routing). OBJECT looks up with `LOOKUP_NONOTIFY`, which
//! counts but sends no `keymiss`; MEMORY USAGE finds its key without a lookup (neither). So the lookups
//! [`read_lookups`] lists are counted (found before the handler runs, as for `keymiss`), plus those of OBJECT
//! (`stats_only_lookups`), plus SORT's pattern lookups (counted by its handler); GET counts its own lookup (the
//! hottest read, spared the second one). Counted only when the command got as far as its lookups (not when it
//! failed on its arguments).
//!
//! Redis emits `keymiss` from `lookupKeyRead*` when a key is missing (or found expired), but not from write lookups
//! nor from lookups flagged `LOOKUP_NONOTIFY` (OBJECT), nor from MEMORY USAGE. Rather than threading that through
//! every handler, the dispatcher asks [`read_lookups`] for the keys a command reads (checked against redis-server
//! 7.0.15 command by command: `tests/it/notifications.rs`), finds which are missing before the handler runs (only
//! while class `m` is on: one atomic load otherwise) and keeps them pending on the client. They are published
//! before the handler's first own event ([`Ctx::notify`]), or after it returns; dropped if the command failed on
//! its arguments (Redis parses those commands' options before the lookup). A lookup that finds an expired key
//! deletes it first, so `expired` precedes `keymiss` as in Redis. SORT's BY/GET pattern lookups publish from the
//! handler ([`Ctx::keymiss`]).

use bytes::Bytes;

use crate::cmd::spec::Flags;
use crate::cmd::{CmdError, CommandSpec, Ctx};
use crate::engine::ValueKind;
use crate::resp::Reply;
use crate::server::notify::KEY_MISS;

/// The read lookups of one command.
#[derive(Debug, Default, PartialEq)]
pub struct Lookups {
    /// The keys, in Redis's order (a key read twice is listed twice).
    pub keys: Vec<Bytes>,
    /// Redis's lookup of a missing key ends the command (XREADGROUP's NOGROUP).
    pub stop_at_missing: bool,
    /// Redis checks each key's type right after its lookup and ends the command at the first key of
    /// another type (the keys after it are not looked up); `None`: no such check between lookups.
    pub types: Option<&'static [ValueKind]>,
    /// As `types`, for PFCOUNT/PFMERGE: a key that is not a HyperLogLog ends the command.
    pub hll: bool,
}

const SETS: &[ValueKind] = &[ValueKind::Set];
const ZSETS: &[ValueKind] = &[ValueKind::Set, ValueKind::SortedSet];
const STRINGS: &[ValueKind] = &[ValueKind::String];
const STREAMS: &[ValueKind] = &[ValueKind::Stream];

/// The keys `argv` looks up for reading (checked against redis-server 7.0.15).
pub fn read_lookups(spec: &CommandSpec, argv: &[Bytes]) -> Lookups {
    let key = |at: usize| argv.get(at).cloned().into_iter().collect::<Vec<_>>();
    let positions = || spec.key_positions(argv).unwrap_or_default();
    let keys_at = |positions: &[usize]| positions.iter().filter_map(|&at| argv.get(at).cloned()).collect::<Vec<_>>();
    let sources = || keys_at(positions().get(1..).unwrap_or_default());
    let mut types = None;
    let mut stop_at_missing = false;
    let mut hll = false;
    let keys = match spec.fullname {
        // Looked up with LOOKUP_NONOTIFY, or not looked up as reads.
        "object|encoding" | "object|freq" | "object|idletime" | "object|refcount" | "memory|usage" => Vec::new(),
        // Parsed once (to check the types and ids) and read once more.
        "xread" => {
            types = Some(STREAMS);
            let keys = keys_at(&positions());
            keys.iter().chain(keys.iter()).cloned().collect()
        }
        "xreadgroup" => {
            stop_at_missing = true;
            types = Some(STREAMS);
            keys_at(&positions())
        }
        "set" => {
            if argv.iter().skip(3).any(|arg| arg.eq_ignore_ascii_case(b"get")) {
                key(1)
            } else {
                Vec::new()
            }
        }
        "migrate" => keys_at(&positions()),
        "getset" | "getdel" | "getex" | "copy" | "sort" | "sort_ro" | "georadius" | "georadiusbymember" | "xack"
        | "xclaim" | "xautoclaim" => key(1),
        "pfcount" | "pfmerge" => {
            hll = true;
            keys_at(&positions())
        }
        "sunion" | "sinter" | "sdiff" | "sintercard" => {
            types = Some(SETS);
            keys_at(&positions())
        }
        "zunion" | "zinter" | "zdiff" | "zintercard" => {
            types = Some(ZSETS);
            keys_at(&positions())
        }
        // The destination is looked up for writing; the sources for reading.
        "sinterstore" | "sunionstore" | "sdiffstore" => {
            types = Some(SETS);
            sources()
        }
        "zunionstore" | "zinterstore" | "zdiffstore" => {
            types = Some(ZSETS);
            sources()
        }
        "bitop" => {
            types = Some(STRINGS);
            sources()
        }
        "zrangestore" | "geosearchstore" => sources(),
        // Read-only only when every operation is GET.
        "bitfield" => {
            let writes =
                argv.iter().skip(2).any(|arg| arg.eq_ignore_ascii_case(b"set") || arg.eq_ignore_ascii_case(b"incrby"));
            if writes {
                Vec::new()
            } else {
                key(1)
            }
        }
        _ if spec.has(Flags::READONLY) => keys_at(&positions()),
        _ => Vec::new(),
    };
    Lookups { keys, stop_at_missing, types, hll }
}

/// Read lookups that count as keyspace hits/misses but send no `keymiss` (OBJECT's `LOOKUP_NONOTIFY`).
fn stats_only_lookups(spec: &CommandSpec, argv: &[Bytes]) -> Vec<Bytes> {
    match spec.fullname {
        "object|encoding" | "object|freq" | "object|idletime" | "object|refcount" => argv.get(2).cloned(),
        _ => None,
    }
    .into_iter()
    .collect()
}

/// A command's keyspace hits and misses, found before it runs and counted once it has run.
#[derive(Debug, Default)]
pub struct Pending {
    hits: u64,
    misses: u64,
}

/// Before a command runs: finds which of its read lookups will hit and miss; with class `m` on
/// (`notify`), keeps the misses pending on the client for `keymiss`.
pub fn before(ctx: &mut Ctx<'_>, spec: &CommandSpec, argv: &[Bytes], notify: bool) -> Pending {
    let mut pending = Pending::default();
    // GET counts its own lookup.
    if spec.fullname == "get" && !notify {
        return pending;
    }
    let lookups = read_lookups(spec, argv);
    let db = ctx.db();
    if lookups.keys.is_empty() {
        for key in stats_only_lookups(spec, argv) {
            match ctx.engine.key_info(db, &key) {
                Ok(None) => pending.misses += 1,
                _ => pending.hits += 1,
            }
        }
        return pending;
    }
    let mut missing = Vec::new();
    for key in lookups.keys {
        // An engine error here is the handler's to report: the key counts as present.
        match ctx.engine.key_info(db, &key) {
            Ok(None) => {
                pending.misses += 1;
                if notify {
                    missing.push(key);
                }
                if lookups.stop_at_missing {
                    break;
                }
            }
            Ok(Some(info)) if lookups.types.is_some_and(|types| !types.contains(&info.kind)) => {
                pending.hits += 1;
                break;
            }
            Ok(Some(_)) if lookups.hll && !is_hll(ctx, db, &key) => {
                pending.hits += 1;
                break;
            }
            _ => pending.hits += 1,
        }
    }
    if notify {
        *ctx.client.keymiss.lock().unwrap_or_else(|p| p.into_inner()) = missing;
    }
    if spec.fullname == "get" {
        pending = Pending::default();
    }
    pending
}

/// True if `key` holds a HyperLogLog (a string with its header's magic).
fn is_hll(ctx: &Ctx<'_>, db: u16, key: &[u8]) -> bool {
    matches!(ctx.engine.get(db, key), Ok(Some(entry)) if entry.kind == ValueKind::String && entry.value.starts_with(b"HYLL"))
}

/// After a command ran: counts its hits and misses and publishes the misses still pending (class `m`
/// on: `notify`), unless it failed on its arguments.
pub fn after(ctx: &Ctx<'_>, result: &Result<Reply, CmdError>, pending: Pending, notify: bool) {
    if pending.hits == 0 && pending.misses == 0 && !notify {
        return;
    }
    let looked_up = match result {
        Ok(_) => true,
        Err(CmdError::WrongType | CmdError::NoSuchKey) => true,
        Err(CmdError::Raw(text)) => text.starts_with("NOGROUP") || text.starts_with("WRONGTYPE"),
        // LCS checks the types after looking both keys up.
        Err(CmdError::Err(text)) => text.starts_with("The specified keys must contain string values"),
        Err(_) => false,
    };
    if looked_up {
        let stats = &ctx.server.stats;
        stats.keyspace_hits.fetch_add(pending.hits, std::sync::atomic::Ordering::Relaxed);
        stats.keyspace_misses.fetch_add(pending.misses, std::sync::atomic::Ordering::Relaxed);
    }
    if !notify {
        return;
    }
    if looked_up {
        ctx.flush_keymiss();
    } else {
        ctx.client.keymiss.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

impl Ctx<'_> {
    /// Publishes the pending `keymiss` events (see [`crate::server::keymiss`]).
    pub fn flush_keymiss(&self) {
        let pending = std::mem::take(&mut *self.client.keymiss.lock().unwrap_or_else(|p| p.into_inner()));
        if !pending.is_empty() {
            let db = self.server.dbmap.logical(self.db());
            for key in pending {
                self.server.notify.publish(self.server, KEY_MISS, "keymiss", db, &key);
            }
        }
    }

    /// A read lookup of `key` in physical database `db` missed, found by the handler itself (SORT's
    /// patterns): publishes `keymiss` after any pending ones.
    pub fn keymiss(&self, db: u16, key: &[u8]) {
        if self.server.notify.enabled(KEY_MISS) {
            self.flush_keymiss();
            self.server.notify.publish(self.server, KEY_MISS, "keymiss", self.server.dbmap.logical(db), key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookups(line: &str) -> Lookups {
        let argv: Vec<Bytes> = line.split(' ').map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
        let (spec, _) = crate::server::dispatch::resolve(&argv).expect("known command");
        read_lookups(spec, &argv)
    }

    fn keys(line: &str) -> Vec<String> {
        lookups(line).keys.iter().map(|k| String::from_utf8_lossy(k).into_owned()).collect()
    }

    #[test]
    fn read_lookups_follow_redis() {
        assert_eq!(keys("MGET a b a"), ["a", "b", "a"]);
        assert_eq!(keys("XREAD COUNT 1 STREAMS a b 0 0"), ["a", "b", "a", "b"]);
        assert_eq!(keys("SET a v GET"), ["a"]);
        assert!(keys("SET a v").is_empty());
        assert!(keys("OBJECT ENCODING a").is_empty());
        assert!(keys("INCR a").is_empty());
        assert_eq!(keys("SUNIONSTORE d a b"), ["a", "b"]);
        assert_eq!(keys("PFMERGE d a b"), ["d", "a", "b"]);
        assert_eq!(keys("BITOP AND d a b"), ["a", "b"]);
        assert!(keys("BITFIELD a INCRBY u8 0 1").is_empty());
        assert_eq!(keys("BITFIELD a GET u8 0"), ["a"]);
        assert!(lookups("XREADGROUP GROUP g c STREAMS a >").stop_at_missing);
        assert!(lookups("PFCOUNT a b").hll);
        assert_eq!(lookups("SINTER a b").types, Some(SETS));
    }
}
