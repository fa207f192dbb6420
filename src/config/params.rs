//! Every configuration parameter Velo knows: all of Redis 7.0's `redis.conf` parameters plus Velo's own
//! (`slots`, `page-cache`, `value-cache`, `log-level`), with their aliases, kinds, defaults, bounds and
//! flags, and the parsing/validation/normalisation that CONFIG SET, CONFIG GET and the config file share.
//!
//! A value is kept as the text CONFIG GET reports (the normal form: `100mb` is stored as `104857600`,
//! `KEA` as `AKE`); typed readers parse that text. Which parameters Velo applies, and what they mean here,
//! is listed in docs/compat.md.

use std::collections::HashMap;

/// CONFIG SET refuses it ("can't set immutable config").
pub const IMMUTABLE: u8 = 1;
/// CONFIG SET refuses it ("can't set protected config"), as Redis does with `enable-protected-configs no`.
pub const PROTECTED: u8 = 2;
/// Its value is a secret (kept out of logs).
pub const SENSITIVE: u8 = 4;
/// Only an exact name finds it in CONFIG GET (patterns skip it).
pub const HIDDEN: u8 = 8;
/// With [`IMMUTABLE`]: a parameter Redis can change at run time (or Velo's own) that Velo cannot, so
/// CONFIG SET to the value it already has is accepted (a no-op, as in Redis) and any other value is
/// refused as immutable.
pub const FIXED: u8 = 16;

/// How a parameter's value is parsed, validated and shown.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// `yes` or `no`.
    Bool,
    /// A decimal integer within bounds.
    Int(i128, i128),
    /// A byte count (`100mb`, `1gb`, `5k`, plain digits) within bounds, shown in bytes.
    Memory(i128, i128),
    /// A byte count or a percentage of maxmemory (`10%`), within bounds (`maxmemory-clients`).
    MemoryPercent(i128, i128),
    /// An octal number within bounds.
    Octal(i128, i128),
    /// One of these words (case-insensitive), shown in lowercase.
    Enum(&'static [&'static str]),
    /// A set of these words (case-insensitive), `default` meaning none (`shutdown-on-sigint`).
    Flags(&'static [&'static str]),
    /// Free text.
    Text,
    /// `save`: pairs of seconds and changes.
    Save,
    /// `client-output-buffer-limit`: class, hard limit, soft limit, soft seconds, for some classes.
    ClientOutputBufferLimit,
    /// `notify-keyspace-events`: event class letters.
    NotifyKeyspaceEvents,
    /// `bind`: up to 16 addresses.
    Bind,
    /// `replicaof`: host and port, or nothing.
    ReplicaOf,
    /// `oom-score-adj-values`: three integers in -2000..=2000.
    OomScoreAdjValues,
    /// `latency-tracking-info-percentiles`: numbers in 0..=100.
    Percentiles,
    /// `slots` (Velo): a power of two 1..=1024, or empty for "what the directory has".
    Slots,
}

/// One parameter.
#[derive(Debug)]
pub struct Param {
    /// Its name.
    pub name: &'static str,
    /// Its other name, which CONFIG GET also lists (`hash-max-ziplist-entries` for `hash-max-listpack-entries`).
    pub alias: Option<&'static str>,
    /// [`IMMUTABLE`], [`PROTECTED`], [`SENSITIVE`], [`HIDDEN`].
    pub flags: u8,
    /// Value syntax.
    pub kind: Kind,
    /// Default value, in normal form.
    pub default: &'static str,
}

impl Param {
    /// True if the flag is set.
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    /// True if CONFIG SET takes several words as one value (split on spaces).
    pub fn multi_arg(&self) -> bool {
        matches!(
            self.kind,
            Kind::Flags(_)
                | Kind::Save
                | Kind::ClientOutputBufferLimit
                | Kind::Bind
                | Kind::ReplicaOf
                | Kind::OomScoreAdjValues
                | Kind::Percentiles
        )
    }
}

const INT_MAX: i128 = i32::MAX as i128;
const INT_MIN: i128 = i32::MIN as i128;
const UINT_MAX: i128 = u32::MAX as i128;
const LONG_MAX: i128 = i64::MAX as i128;
const ULLONG_MAX: i128 = u64::MAX as i128;

const fn p(name: &'static str, alias: Option<&'static str>, flags: u8, kind: Kind, default: &'static str) -> Param {
    Param { name, alias, flags, kind, default }
}

use Kind::*;

const LOGLEVELS: &[&str] = &["debug", "verbose", "notice", "warning"];
const POLICIES: &[&str] = &[
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "noeviction",
];
const FSYNC: &[&str] = &["everysec", "always", "no"];
const PROTECTED_ACTION: &[&str] = &["no", "yes", "local"];
const SHUTDOWN_FLAGS: &[&str] = &["default", "save", "nosave", "now", "force"];
const SYSLOG_FACILITIES: &[&str] =
    &["user", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"];

/// Every parameter, Redis 7.0's in the order of its `config.c`, then Velo's own.
pub static PARAMS: &[Param] = &[
    p("rdbchecksum", None, IMMUTABLE, Bool, "yes"),
    p("daemonize", None, IMMUTABLE, Bool, "no"),
    p("io-threads-do-reads", None, IMMUTABLE, Bool, "no"),
    p("always-show-logo", None, IMMUTABLE, Bool, "no"),
    p("protected-mode", None, 0, Bool, "yes"),
    p("rdbcompression", None, 0, Bool, "yes"),
    p("rdb-del-sync-files", None, 0, Bool, "no"),
    p("activerehashing", None, 0, Bool, "yes"),
    p("stop-writes-on-bgsave-error", None, 0, Bool, "yes"),
    p("set-proc-title", None, IMMUTABLE, Bool, "yes"),
    p("dynamic-hz", None, 0, Bool, "yes"),
    p("lazyfree-lazy-eviction", None, 0, Bool, "no"),
    p("lazyfree-lazy-expire", None, 0, Bool, "no"),
    p("lazyfree-lazy-server-del", None, 0, Bool, "no"),
    p("lazyfree-lazy-user-del", None, 0, Bool, "no"),
    p("lazyfree-lazy-user-flush", None, 0, Bool, "no"),
    p("repl-disable-tcp-nodelay", None, 0, Bool, "no"),
    p("repl-diskless-sync", None, 0, Bool, "yes"),
    p("aof-rewrite-incremental-fsync", None, 0, Bool, "yes"),
    p("no-appendfsync-on-rewrite", None, 0, Bool, "no"),
    p("cluster-require-full-coverage", None, 0, Bool, "yes"),
    p("rdb-save-incremental-fsync", None, 0, Bool, "yes"),
    p("aof-load-truncated", None, 0, Bool, "yes"),
    p("aof-use-rdb-preamble", None, 0, Bool, "yes"),
    p("aof-timestamp-enabled", None, 0, Bool, "no"),
    p("cluster-replica-no-failover", Some("cluster-slave-no-failover"), 0, Bool, "no"),
    p("replica-lazy-flush", Some("slave-lazy-flush"), 0, Bool, "no"),
    p("replica-serve-stale-data", Some("slave-serve-stale-data"), 0, Bool, "yes"),
    p("replica-read-only", Some("slave-read-only"), 0, Bool, "yes"),
    p("replica-ignore-maxmemory", Some("slave-ignore-maxmemory"), 0, Bool, "yes"),
    p("jemalloc-bg-thread", None, 0, Bool, "yes"),
    p("activedefrag", None, 0, Bool, "no"),
    p("syslog-enabled", None, IMMUTABLE, Bool, "no"),
    p("cluster-enabled", None, IMMUTABLE, Bool, "no"),
    // Velo always logs writes (its WAL); `appendonly` is reported as it is, and setting it changes nothing.
    p("appendonly", None, 0, Bool, "yes"),
    p("cluster-allow-reads-when-down", None, 0, Bool, "no"),
    p("cluster-allow-pubsubshard-when-down", None, 0, Bool, "yes"),
    p("crash-log-enabled", None, 0, Bool, "yes"),
    p("crash-memcheck-enabled", None, 0, Bool, "yes"),
    p("use-exit-on-panic", None, HIDDEN, Bool, "no"),
    p("disable-thp", None, IMMUTABLE, Bool, "yes"),
    p("cluster-allow-replica-migration", None, 0, Bool, "yes"),
    p("replica-announced", None, 0, Bool, "yes"),
    p("latency-tracking", None, 0, Bool, "yes"),
    p("aof-disable-auto-gc", None, 0, Bool, "no"),
    p("replica-ignore-disk-write-errors", None, 0, Bool, "no"),
    p("aclfile", None, IMMUTABLE, Text, ""),
    p("unixsocket", None, IMMUTABLE, Text, ""),
    p("pidfile", None, IMMUTABLE, Text, ""),
    p("replica-announce-ip", Some("slave-announce-ip"), 0, Text, ""),
    p("masteruser", None, SENSITIVE, Text, ""),
    p("cluster-announce-ip", None, 0, Text, ""),
    p("cluster-config-file", None, IMMUTABLE, Text, "nodes.conf"),
    p("cluster-announce-hostname", None, 0, Text, ""),
    p("syslog-ident", None, IMMUTABLE, Text, "redis"),
    p("dbfilename", None, PROTECTED, Text, "dump.rdb"),
    p("appendfilename", None, IMMUTABLE, Text, "appendonly.aof"),
    p("appenddirname", None, IMMUTABLE, Text, "appendonlydir"),
    p("server_cpulist", None, IMMUTABLE, Text, ""),
    p("bio_cpulist", None, IMMUTABLE, Text, ""),
    p("aof_rewrite_cpulist", None, IMMUTABLE, Text, ""),
    p("bgsave_cpulist", None, IMMUTABLE, Text, ""),
    p("ignore-warnings", None, 0, Text, ""),
    p("proc-title-template", None, 0, Text, "{title} {listen-addr} {server-mode}"),
    p("bind-source-addr", None, 0, Text, ""),
    p("logfile", None, IMMUTABLE, Text, ""),
    p("masterauth", None, SENSITIVE, Text, ""),
    p("requirepass", None, SENSITIVE, Text, ""),
    p("supervised", None, IMMUTABLE, Enum(&["upstart", "systemd", "auto", "no"]), "no"),
    p("syslog-facility", None, IMMUTABLE, Enum(SYSLOG_FACILITIES), "local0"),
    p("repl-diskless-load", None, 0, Enum(&["disabled", "on-empty-db", "swapdb"]), "disabled"),
    p("loglevel", None, 0, Enum(LOGLEVELS), "notice"),
    p("maxmemory-policy", None, 0, Enum(POLICIES), "noeviction"),
    // The engine's WAL policy (settable at run time); `fsync` is Velo's older name for it.
    p("appendfsync", Some("fsync"), 0, Enum(FSYNC), "everysec"),
    p("oom-score-adj", None, 0, Enum(&["no", "yes", "relative", "absolute"]), "no"),
    p("acl-pubsub-default", None, 0, Enum(&["allchannels", "resetchannels"]), "resetchannels"),
    p("sanitize-dump-payload", None, 0, Enum(&["no", "yes", "clients"]), "no"),
    p("enable-protected-configs", None, IMMUTABLE, Enum(PROTECTED_ACTION), "no"),
    // Velo enables DEBUG by default (its tests need it); `no` and `local` are applied as in Redis.
    p("enable-debug-command", None, IMMUTABLE, Enum(PROTECTED_ACTION), "yes"),
    p("enable-module-command", None, IMMUTABLE, Enum(PROTECTED_ACTION), "no"),
    p("cluster-preferred-endpoint-type", None, 0, Enum(&["ip", "hostname", "unknown-endpoint"]), "ip"),
    p("propagation-error-behavior", None, 0, Enum(&["ignore", "panic", "panic-on-replicas"]), "ignore"),
    p("shutdown-on-sigint", None, 0, Flags(SHUTDOWN_FLAGS), "default"),
    p("shutdown-on-sigterm", None, 0, Flags(SHUTDOWN_FLAGS), "default"),
    p("databases", None, IMMUTABLE, Int(1, INT_MAX), "16"),
    // Velo listens where it started; a new port or address takes effect at the next start.
    p("port", None, IMMUTABLE | FIXED, Int(0, 65535), "7379"),
    p("io-threads", None, IMMUTABLE, Int(1, 128), "1"),
    p("auto-aof-rewrite-percentage", None, 0, Int(0, INT_MAX), "100"),
    p("cluster-replica-validity-factor", Some("cluster-slave-validity-factor"), 0, Int(0, INT_MAX), "10"),
    p("list-max-listpack-size", Some("list-max-ziplist-size"), 0, Int(INT_MIN, INT_MAX), "-2"),
    p("tcp-keepalive", None, 0, Int(0, INT_MAX), "300"),
    p("cluster-migration-barrier", None, 0, Int(0, INT_MAX), "1"),
    p("active-defrag-cycle-min", None, 0, Int(1, 99), "1"),
    p("active-defrag-cycle-max", None, 0, Int(1, 99), "25"),
    p("active-defrag-threshold-lower", None, 0, Int(0, 1000), "10"),
    p("active-defrag-threshold-upper", None, 0, Int(0, 1000), "100"),
    p("lfu-log-factor", None, 0, Int(0, INT_MAX), "10"),
    p("lfu-decay-time", None, 0, Int(0, INT_MAX), "1"),
    p("replica-priority", Some("slave-priority"), 0, Int(0, INT_MAX), "100"),
    p("repl-diskless-sync-delay", None, 0, Int(0, INT_MAX), "5"),
    p("maxmemory-samples", None, 0, Int(1, INT_MAX), "5"),
    p("maxmemory-eviction-tenacity", None, 0, Int(0, 100), "10"),
    p("timeout", None, 0, Int(0, INT_MAX), "0"),
    p("replica-announce-port", Some("slave-announce-port"), 0, Int(0, 65535), "0"),
    p("tcp-backlog", None, IMMUTABLE, Int(0, INT_MAX), "511"),
    p("cluster-port", None, IMMUTABLE, Int(0, 65535), "0"),
    p("cluster-announce-bus-port", None, 0, Int(0, 65535), "0"),
    p("cluster-announce-port", None, 0, Int(0, 65535), "0"),
    p("cluster-announce-tls-port", None, 0, Int(0, 65535), "0"),
    p("repl-timeout", None, 0, Int(1, INT_MAX), "60"),
    p("repl-ping-replica-period", Some("repl-ping-slave-period"), 0, Int(1, INT_MAX), "10"),
    p("list-compress-depth", None, 0, Int(0, INT_MAX), "0"),
    p("rdb-key-save-delay", None, HIDDEN, Int(INT_MIN, INT_MAX), "0"),
    p("key-load-delay", None, HIDDEN, Int(INT_MIN, INT_MAX), "0"),
    p("active-expire-effort", None, 0, Int(1, 10), "1"),
    p("hz", None, 0, Int(0, INT_MAX), "10"),
    p("min-replicas-to-write", Some("min-slaves-to-write"), 0, Int(0, INT_MAX), "0"),
    p("min-replicas-max-lag", Some("min-slaves-max-lag"), 0, Int(0, INT_MAX), "10"),
    p("watchdog-period", None, HIDDEN, Int(0, INT_MAX), "0"),
    p("shutdown-timeout", None, 0, Int(0, INT_MAX), "10"),
    p("repl-diskless-sync-max-replicas", None, 0, Int(0, INT_MAX), "0"),
    p("maxclients", None, 0, Int(1, UINT_MAX), "10000"),
    p("unixsocketperm", None, IMMUTABLE, Octal(0, 0o777), "0"),
    p("socket-mark-id", None, IMMUTABLE, Int(0, UINT_MAX), "0"),
    p("active-defrag-max-scan-fields", None, 0, Int(1, LONG_MAX), "1000"),
    p("slowlog-max-len", None, 0, Int(0, LONG_MAX), "128"),
    p("acllog-max-len", None, 0, Int(0, LONG_MAX), "128"),
    p("busy-reply-threshold", Some("lua-time-limit"), 0, Int(0, LONG_MAX), "5000"),
    p("cluster-node-timeout", None, 0, Int(0, LONG_MAX), "15000"),
    p("slowlog-log-slower-than", None, 0, Int(-1, LONG_MAX), "10000"),
    p("latency-monitor-threshold", None, 0, Int(0, LONG_MAX), "0"),
    p("proto-max-bulk-len", None, 0, Memory(1024 * 1024, LONG_MAX), "536870912"),
    p("stream-node-max-entries", None, 0, Int(0, LONG_MAX), "100"),
    p("repl-backlog-size", None, 0, Memory(1, LONG_MAX), "1048576"),
    p("maxmemory", None, 0, Memory(0, ULLONG_MAX), "0"),
    p("cluster-link-sendbuf-limit", None, 0, Memory(0, ULLONG_MAX), "0"),
    p("hash-max-listpack-entries", Some("hash-max-ziplist-entries"), 0, Int(0, LONG_MAX), "512"),
    p("set-max-intset-entries", None, 0, Int(0, LONG_MAX), "512"),
    p("zset-max-listpack-entries", Some("zset-max-ziplist-entries"), 0, Int(0, LONG_MAX), "128"),
    p("active-defrag-ignore-bytes", None, 0, Memory(1, LONG_MAX), "104857600"),
    p("hash-max-listpack-value", Some("hash-max-ziplist-value"), 0, Memory(0, LONG_MAX), "64"),
    p("stream-node-max-bytes", None, 0, Memory(0, LONG_MAX), "4096"),
    p("zset-max-listpack-value", Some("zset-max-ziplist-value"), 0, Memory(0, LONG_MAX), "64"),
    p("hll-sparse-max-bytes", None, 0, Memory(0, LONG_MAX), "3000"),
    p("tracking-table-max-keys", None, 0, Int(0, LONG_MAX), "1000000"),
    p("client-query-buffer-limit", None, 0, Memory(1024 * 1024, LONG_MAX), "1073741824"),
    p("maxmemory-clients", None, 0, MemoryPercent(-100, LONG_MAX), "0"),
    p("repl-backlog-ttl", None, 0, Int(0, LONG_MAX), "3600"),
    p("auto-aof-rewrite-min-size", None, 0, Memory(0, LONG_MAX), "67108864"),
    p("loading-process-events-interval-bytes", None, HIDDEN, Int(1024, INT_MAX), "2097152"),
    p("tls-port", None, 0, Int(0, 65535), "0"),
    p("tls-session-cache-size", None, 0, Int(0, INT_MAX), "20480"),
    p("tls-session-cache-timeout", None, 0, Int(0, INT_MAX), "300"),
    p("tls-cluster", None, 0, Bool, "no"),
    p("tls-replication", None, 0, Bool, "no"),
    p("tls-auth-clients", None, 0, Enum(&["no", "yes", "optional"]), "yes"),
    p("tls-prefer-server-ciphers", None, 0, Bool, "no"),
    p("tls-session-caching", None, 0, Bool, "yes"),
    p("tls-cert-file", None, 0, Text, ""),
    p("tls-key-file", None, 0, Text, ""),
    p("tls-key-file-pass", None, 0, Text, ""),
    p("tls-client-cert-file", None, 0, Text, ""),
    p("tls-client-key-file", None, 0, Text, ""),
    p("tls-client-key-file-pass", None, 0, Text, ""),
    p("tls-dh-params-file", None, 0, Text, ""),
    p("tls-ca-cert-file", None, 0, Text, ""),
    p("tls-ca-cert-dir", None, 0, Text, ""),
    p("tls-protocols", None, 0, Text, ""),
    p("tls-ciphers", None, 0, Text, ""),
    p("tls-ciphersuites", None, 0, Text, ""),
    // Velo's data directory; the default is made absolute at start-up.
    p("dir", None, PROTECTED, Text, "./velo-data"),
    // Velo writes no snapshots; the schedule is only kept.
    p("save", None, 0, Save, ""),
    p("client-output-buffer-limit", None, 0, ClientOutputBufferLimit, DEFAULT_OUTPUT_LIMITS),
    p("oom-score-adj-values", None, 0, OomScoreAdjValues, "0 200 800"),
    p("notify-keyspace-events", None, 0, NotifyKeyspaceEvents, ""),
    p("bind", None, IMMUTABLE | FIXED, Bind, "127.0.0.1"),
    p("replicaof", Some("slaveof"), IMMUTABLE, ReplicaOf, ""),
    p("latency-tracking-info-percentiles", None, 0, Percentiles, "50 99 99.9"),
    // Velo's own.
    p("slots", None, IMMUTABLE | FIXED, Slots, ""),
    p("page-cache", None, 0, Memory(0, LONG_MAX), "67108864"),
    p("value-cache", None, 0, Memory(0, LONG_MAX), "67108864"),
    p("log-level", None, IMMUTABLE | FIXED, Enum(&["error", "warn", "info", "debug", "trace"]), "info"),
    // Threads of the runtime serving connections (server::run); 0: one per CPU core.
    p("velo-worker-threads", None, IMMUTABLE | FIXED, Int(0, 1024), "0"),
    // Threads preparing checkpoints off the slots' locks (engine::checkpoint); 0: on the writing thread.
    p("velo-checkpoint-threads", None, IMMUTABLE | FIXED, Int(0, 64), "2"),
    // Trained compression dictionaries (server::dictionaries, docs/compat.md).
    p("velo-dict-training", None, 0, Bool, "yes"),
    p("velo-dict-min-samples", None, 0, Int(16, 1_000_000), "2000"),
    p("velo-dict-size", None, 0, Memory(256, 4 << 20), "16384"),
    p("velo-dict-min-gain", None, 0, Int(-1000, 100), "10"),
    p("velo-dict-retrain-seconds", None, 0, Int(0, LONG_MAX), "3600"),
    p("velo-dict-separators", None, 0, Text, ":"),
    p("velo-dict-prefixes", None, 0, Text, ""),
];

const DEFAULT_OUTPUT_LIMITS: &str = "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60";

/// A parameter found by one of its names; `name` is the name it was found by (its own or its alias).
#[derive(Debug, Clone, Copy)]
pub struct Found {
    /// The parameter.
    pub param: &'static Param,
    /// The name that found it, lowercase.
    pub name: &'static str,
}

/// Looks a parameter up by name or alias, case-insensitively.
pub fn lookup(name: &str) -> Option<Found> {
    static INDEX: std::sync::OnceLock<HashMap<&'static str, usize>> = std::sync::OnceLock::new();
    let index = INDEX.get_or_init(|| {
        let mut map = HashMap::new();
        for (i, param) in PARAMS.iter().enumerate() {
            map.insert(param.name, i);
            if let Some(alias) = param.alias {
                map.insert(alias, i);
            }
        }
        map
    });
    let lower = name.to_ascii_lowercase();
    let i = *index.get(lower.as_str())?;
    let param = &PARAMS[i];
    let name = if param.name == lower { param.name } else { param.alias.unwrap_or(param.name) };
    Some(Found { param, name })
}

/// Every name CONFIG GET can list (names and aliases), with its parameter.
pub fn all_names() -> impl Iterator<Item = (&'static str, &'static Param)> {
    PARAMS.iter().flat_map(|p| std::iter::once((p.name, p)).chain(p.alias.map(|a| (a, p))))
}

/// Parses a Redis integer (`string2ll`: no spaces, no `+`, no leading zeros).
fn parse_ll(text: &str) -> Option<i128> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || (digits.len() > 1 && digits.starts_with('0'))
    {
        return None;
    }
    if text == "-0" {
        return None;
    }
    let value: i64 = text.parse().ok()?;
    Some(value.into())
}

/// Parses a Redis memory value (`memtoull`): digits with an optional `b`, `k`, `kb`, `m`, `mb`, `g`, `gb`.
pub fn parse_memory(text: &str) -> Option<u64> {
    if text.starts_with('-') {
        return None;
    }
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let unit: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    // strtoull of an empty string is 0, as Redis.
    let number: u64 = if digits.is_empty() { 0 } else { digits.parse().ok()? };
    number.checked_mul(unit)
}

/// Where Redis accepts a value but its apply function then moves it into a narrower range, which CONFIG
/// GET shows: `hz` into 1..=500 (`updateHZ`), `repl-backlog-size` up to at least 16 KiB
/// (`resizeReplicationBacklog`).
fn applied_bounds(name: &str, value: i128) -> i128 {
    match name {
        "hz" => value.clamp(1, 500),
        "repl-backlog-size" => value.max(16 * 1024),
        _ => value,
    }
}

fn between(value: i128, min: i128, max: i128) -> Result<i128, String> {
    if value < min || value > max {
        return Err(format!("argument must be between {min} and {max} inclusive"));
    }
    Ok(value)
}

/// The event class letters of `notify-keyspace-events`, in the order Redis shows them.
const EVENT_CLASSES: &[char] = &['g', '$', 'l', 's', 'h', 'z', 'x', 'e', 't', 'd', 'n'];
/// Classes `A` stands for.
const EVENT_ALL: &[char] = &['g', '$', 'l', 's', 'h', 'z', 'x', 'e', 't', 'd'];

fn normalize_events(text: &str) -> Result<String, String> {
    let mut set = std::collections::BTreeSet::new();
    for c in text.chars() {
        match c {
            'A' => set.extend(EVENT_ALL.iter().copied()),
            'g' | '$' | 'l' | 's' | 'h' | 'z' | 'x' | 'e' | 't' | 'm' | 'd' | 'n' | 'K' | 'E' => {
                set.insert(c);
            }
            _ => return Err("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".into()),
        }
    }
    let mut out = String::new();
    if EVENT_ALL.iter().all(|c| set.contains(c)) {
        out.push('A');
        if set.contains(&'n') {
            // Kept in the stored form (`n` is not part of `A`), though CONFIG GET shows `A` alone as Redis
            // does: see `events_shown`.
            out.push('n');
        }
    } else {
        out.extend(EVENT_CLASSES.iter().filter(|c| set.contains(c)));
    }
    out.extend(['K', 'E', 'm'].iter().filter(|c| set.contains(c)));
    Ok(out)
}

/// How CONFIG GET shows a stored `notify-keyspace-events` value: Redis prints `A` without `n` even when
/// `n` is on.
pub fn events_shown(stored: &str) -> String {
    match stored.strip_prefix("An") {
        Some(rest) => format!("A{rest}"),
        None => stored.to_string(),
    }
}

fn normalize_save(words: &[&str]) -> Result<String, String> {
    if !words.len().is_multiple_of(2) {
        return Err("Invalid save parameters".into());
    }
    // Seconds at least 1, changes at least 0 (an empty word reads as 0, as `strtoll` reads it).
    let numbers: Vec<i64> = words
        .iter()
        .map(|w| if w.is_empty() { Some(0) } else { w.parse().ok() })
        .collect::<Option<_>>()
        .ok_or("Invalid save parameters")?;
    if numbers.chunks(2).any(|pair| pair[0] < 1 || pair[1] < 0) {
        return Err("Invalid save parameters".into());
    }
    Ok(numbers.iter().map(i64::to_string).collect::<Vec<_>>().join(" "))
}

/// Applies `words` (class hard soft seconds, ...) to the current limits text.
fn normalize_output_limits(current: &str, words: &[&str]) -> Result<String, String> {
    if words.is_empty() || !words.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    let mut classes: Vec<(String, [u64; 3])> = Vec::new();
    let parsed: Vec<&str> = current.split(' ').collect();
    for chunk in parsed.chunks(4) {
        if chunk.len() == 4 {
            let n = |s: &str| s.parse::<u64>().unwrap_or(0);
            classes.push((chunk[0].to_string(), [n(chunk[1]), n(chunk[2]), n(chunk[3])]));
        }
    }
    let mut updates = Vec::new();
    for chunk in words.chunks(4) {
        let class = match chunk[0].to_ascii_lowercase().as_str() {
            "normal" => "normal",
            "slave" | "replica" => "slave",
            "pubsub" => "pubsub",
            _ => return Err("Invalid client class specified in buffer limit configuration.".into()),
        };
        let hard = parse_memory(chunk[1]);
        let soft = parse_memory(chunk[2]);
        let seconds = chunk[3].parse::<i64>().ok().filter(|&n| n >= 0);
        match (hard, soft, seconds) {
            (Some(h), Some(s), Some(sec)) => updates.push((class, [h, s, sec as u64])),
            _ => return Err("Error in hard, soft or soft_seconds setting in buffer limit configuration.".into()),
        }
    }
    for (class, limits) in updates {
        if let Some(entry) = classes.iter_mut().find(|(c, _)| c == class) {
            entry.1 = limits;
        }
    }
    Ok(classes.iter().map(|(c, [h, s, sec])| format!("{c} {h} {s} {sec}")).collect::<Vec<_>>().join(" "))
}

fn normalize_percentiles(words: &[&str]) -> Result<String, String> {
    let mut out = Vec::new();
    for word in words {
        let value: f64 = word
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| "Invalid latency-tracking-info-percentiles parameters".to_string())?;
        if !(0.0..=100.0).contains(&value) {
            return Err("latency-tracking-info-percentiles parameters should sit between [0.0,100.0]".into());
        }
        out.push(value.to_string());
    }
    Ok(out.join(" "))
}

/// Validates `value` for `param` and returns its normal form (what CONFIG GET shows). `current` is the
/// parameter's present value (`client-output-buffer-limit` changes only the classes given). The error is
/// the text Redis puts after "CONFIG SET failed (possibly related to argument '...') - ".
pub fn normalize(param: &Param, value: &str, current: &str) -> Result<String, String> {
    // Redis splits a several-word value on each single space (so two spaces make an empty word).
    let words: Vec<&str> = if param.multi_arg() && !value.is_empty() { value.split(' ').collect() } else { vec![] };
    match param.kind {
        Bool => match value.to_ascii_lowercase().as_str() {
            "yes" => Ok("yes".into()),
            "no" => Ok("no".into()),
            _ => Err("argument must be 'yes' or 'no'".into()),
        },
        Int(min, max) => {
            let n = parse_ll(value).ok_or("argument couldn't be parsed into an integer")?;
            Ok(applied_bounds(param.name, between(n, min, max)?).to_string())
        }
        Memory(min, max) => {
            let n = parse_memory(value).ok_or("argument must be a memory value")?;
            Ok(applied_bounds(param.name, between(n.into(), min, max)?).to_string())
        }
        MemoryPercent(min, max) => {
            if let Some(n) = parse_memory(value) {
                return Ok(between(n.into(), 0, max)?.to_string());
            }
            let percent = value
                .strip_suffix('%')
                .filter(|_| value.len() > 1)
                .and_then(parse_ll)
                .filter(|&n| n >= 0)
                .ok_or("argument must be a memory or percent value")?;
            if -percent < min {
                return Err(format!("percentage argument must be less or equal to {}", -min));
            }
            Ok(format!("{percent}%"))
        }
        Octal(min, max) => {
            let n = i128::from_str_radix(value, 8).map_err(|_| "argument couldn't be parsed as an octal number")?;
            if n < min || n > max {
                return Err(format!("argument must be between {min:o} and {max:o} inclusive"));
            }
            Ok(format!("{n:o}"))
        }
        Enum(names) => {
            let lower = value.to_ascii_lowercase();
            match names.iter().find(|n| **n == lower) {
                // `relative` is another name of `yes`, which Redis shows.
                Some(&"relative") if param.name == "oom-score-adj" => Ok("yes".into()),
                Some(name) => Ok(name.to_string()),
                None => Err(format!("argument(s) must be one of the following: {}", names.join(", "))),
            }
        }
        Flags(names) => {
            let mut chosen = Vec::new();
            for word in &words {
                let lower = word.to_ascii_lowercase();
                if !names.contains(&lower.as_str()) {
                    return Err(format!("argument(s) must be one of the following: {}", names.join(", ")));
                }
                chosen.push(lower);
            }
            if chosen.iter().any(|w| w == "save") && chosen.iter().any(|w| w == "nosave") {
                return Err("shutdown options SAVE and NOSAVE can't be used simultaneously".into());
            }
            let shown: Vec<&str> = names[1..].iter().copied().filter(|n| chosen.iter().any(|c| c == n)).collect();
            Ok(if shown.is_empty() { "default".into() } else { shown.join(" ") })
        }
        Text => Ok(value.to_string()),
        Save => normalize_save(&words),
        ClientOutputBufferLimit => normalize_output_limits(current, &words),
        NotifyKeyspaceEvents => normalize_events(value),
        Bind => {
            if words.len() > 16 {
                return Err("Too many bind addresses specified.".into());
            }
            Ok(words.join(" "))
        }
        ReplicaOf => match words.as_slice() {
            [] => Ok(String::new()),
            [no, one] if no.eq_ignore_ascii_case("no") && one.eq_ignore_ascii_case("one") => Ok(String::new()),
            [host, port] => {
                let port = port.parse::<u16>().map_err(|_| "Invalid master port")?;
                Ok(format!("{host} {port}"))
            }
            _ => Err("wrong number of arguments".into()),
        },
        OomScoreAdjValues => {
            if words.len() != 3 {
                return Err("wrong number of arguments".into());
            }
            let mut out = Vec::new();
            for word in &words {
                match word.parse::<i64>() {
                    Ok(n) if (-2000..=2000).contains(&n) => out.push(n.to_string()),
                    _ => return Err("Invalid oom-score-adj-values, elements must be between -2000 and 2000.".into()),
                }
            }
            Ok(out.join(" "))
        }
        Percentiles => normalize_percentiles(&words),
        Slots => {
            if value.is_empty() {
                return Ok(String::new());
            }
            match value.parse::<u32>() {
                Ok(n) if n.is_power_of_two() && n <= 1024 => Ok(n.to_string()),
                _ => Err("argument must be a power of two between 1 and 1024".into()),
            }
        }
    }
}

/// The current value of every parameter, in normal form.
#[derive(Debug, Clone)]
pub struct Values {
    values: HashMap<&'static str, String>,
}

impl Default for Values {
    fn default() -> Self {
        Values { values: PARAMS.iter().map(|p| (p.name, p.default.to_string())).collect() }
    }
}

impl Values {
    /// A parameter's value by its name or alias.
    pub fn get(&self, name: &str) -> Option<&str> {
        let found = lookup(name)?;
        self.values.get(found.param.name).map(String::as_str)
    }

    /// Validates and stores a value; returns the normal form stored. The error is Redis's text.
    pub fn set(&mut self, name: &str, value: &str) -> Result<String, String> {
        let found = lookup(name).ok_or_else(|| format!("unknown parameter '{name}'"))?;
        let current = self.values.get(found.param.name).cloned().unwrap_or_default();
        let normal = normalize(found.param, value, &current)?;
        self.values.insert(found.param.name, normal.clone());
        Ok(normal)
    }

    /// Stores an already normalised value (rollback, start-up adjustments).
    pub fn put(&mut self, param: &'static Param, value: String) {
        self.values.insert(param.name, value);
    }

    /// An integer parameter (0 if it is not one).
    pub fn int(&self, name: &str) -> i64 {
        self.get(name)
            .and_then(|v| v.parse::<i128>().ok())
            .map_or(0, |v| v.clamp(i64::MIN.into(), i64::MAX.into()) as i64)
    }

    /// An unsigned integer or byte-count parameter (0 if it is not one).
    pub fn uint(&self, name: &str) -> u64 {
        self.get(name).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
    }

    /// A yes/no parameter.
    pub fn flag(&self, name: &str) -> bool {
        self.get(name) == Some("yes")
    }
}

/// The OBJECT ENCODING thresholds (`*-max-listpack-*`, `set-max-intset-entries`) and the stream node
/// limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodingLimits {
    /// `hash-max-listpack-entries`.
    pub hash_entries: u64,
    /// `hash-max-listpack-value`.
    pub hash_value: u64,
    /// `set-max-intset-entries`.
    pub set_intset_entries: u64,
    /// `zset-max-listpack-entries`.
    pub zset_entries: u64,
    /// `zset-max-listpack-value`.
    pub zset_value: u64,
    /// `stream-node-max-entries` and `stream-node-max-bytes`.
    pub stream_nodes: crate::types::stream::NodeLimits,
}

impl Default for EncodingLimits {
    fn default() -> Self {
        EncodingLimits {
            hash_entries: 512,
            hash_value: 64,
            set_intset_entries: 512,
            zset_entries: 128,
            zset_value: 64,
            stream_nodes: Default::default(),
        }
    }
}

impl EncodingLimits {
    /// The thresholds in `values`.
    pub fn from_values(values: &Values) -> EncodingLimits {
        EncodingLimits {
            hash_entries: values.uint("hash-max-listpack-entries"),
            hash_value: values.uint("hash-max-listpack-value"),
            set_intset_entries: values.uint("set-max-intset-entries"),
            zset_entries: values.uint("zset-max-listpack-entries"),
            zset_value: values.uint("zset-max-listpack-value"),
            stream_nodes: crate::types::stream::NodeLimits {
                entries: values.uint("stream-node-max-entries"),
                bytes: values.uint("stream-node-max-bytes"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_forms_and_errors_are_redis_s() {
        let mut v = Values::default();
        assert_eq!(v.set("maxmemory", "100mb"), Ok("104857600".into()));
        assert_eq!(v.set("maxmemory", "-1"), Err("argument must be a memory value".into()));
        assert_eq!(v.set("timeout", "05"), Err("argument couldn't be parsed into an integer".into()));
        assert_eq!(v.set("timeout", "-1"), Err("argument must be between 0 and 2147483647 inclusive".into()));
        assert_eq!(v.set("notify-keyspace-events", "KEA"), Ok("AKE".into()));
        assert_eq!(v.set("notify-keyspace-events", "Ex"), Ok("xE".into()));
        assert_eq!(v.set("HASH-MAX-ZIPLIST-ENTRIES", "3"), Ok("3".into()));
        assert_eq!(v.get("hash-max-listpack-entries"), Some("3"));
        assert_eq!(v.set("maxmemory-clients", "10%"), Ok("10%".into()));
        assert_eq!(v.set("maxmemory-clients", "200%"), Err("percentage argument must be less or equal to 100".into()));
        assert_eq!(v.set("oom-score-adj", "relative"), Ok("yes".into()));
        assert_eq!(v.set("shutdown-on-sigint", "force NOSAVE"), Ok("nosave force".into()));
        assert_eq!(v.set("save", "100 10"), Ok("100 10".into()));
        assert_eq!(v.set("save", "100  10"), Err("Invalid save parameters".into()));
        assert_eq!(
            v.set("client-output-buffer-limit", "normal 1mb 2 3"),
            Ok("normal 1048576 2 3 slave 268435456 67108864 60 pubsub 33554432 8388608 60".into())
        );
        assert_eq!(v.set("latency-tracking-info-percentiles", "50.5 99"), Ok("50.5 99".into()));
        assert!(lookup("nonexistent").is_none());
        assert_eq!(lookup("Slave-Read-Only").unwrap().name, "slave-read-only");
    }
}
