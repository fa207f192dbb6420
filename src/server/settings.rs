//! The live side of the configuration: what CONFIG SET changes while the server runs.
//!
//! [`crate::config::params`] validates and normalises values; this module keeps the copies that hot paths
//! read without taking the config mutex (timeouts, the password gate, OBJECT ENCODING thresholds) and
//! applies a change where it has an effect: `maxmemory`, `page-cache` and `value-cache` resize the
//! engine's RAM budgets, `maxclients` and `proto-max-bulk-len` bound new connections and requests,
//! `requirepass` turns the AUTH gate on or off, `timeout` and `tcp-keepalive` apply to idle clients and
//! new connections. Other helpers read any parameter through [`Server::config_value`].

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::RwLock;

use tokio::sync::watch;

use super::Server;
use crate::config::params::{EncodingLimits, Values};
use crate::config::Config;

/// The values hot paths read.
pub struct Live {
    /// `timeout` in seconds (0: never); a watch so that idle connections re-arm their timers.
    timeout: watch::Sender<u64>,
    /// `tcp-keepalive` in seconds (0: off).
    tcp_keepalive: AtomicU64,
    /// `requirepass` (`None`: the default user needs no password).
    requirepass: RwLock<Option<Vec<u8>>>,
    auth_required: AtomicBool,
    encoding: RwLock<EncodingLimits>,
    notify_flags: AtomicU32,
    slowlog_log_slower_than: AtomicI64,
    slowlog_max_len: AtomicU64,
    latency_monitor_threshold: AtomicU64,
}

/// `notify-keyspace-events` classes as bits (Redis's `NOTIFY_*` values), for [`Live::notify_flags`].
pub mod notify {
    /// `K`: `__keyspace@<db>__:<key>` channels.
    pub const KEYSPACE: u32 = 1 << 0;
    /// `E`: `__keyevent@<db>__:<event>` channels.
    pub const KEYEVENT: u32 = 1 << 1;
    /// `g`: generic commands (DEL, EXPIRE, RENAME, ...).
    pub const GENERIC: u32 = 1 << 2;
    /// `$`: string commands.
    pub const STRING: u32 = 1 << 3;
    /// `l`: list commands.
    pub const LIST: u32 = 1 << 4;
    /// `s`: set commands.
    pub const SET: u32 = 1 << 5;
    /// `h`: hash commands.
    pub const HASH: u32 = 1 << 6;
    /// `z`: sorted set commands.
    pub const ZSET: u32 = 1 << 7;
    /// `x`: expirations.
    pub const EXPIRED: u32 = 1 << 8;
    /// `e`: evictions.
    pub const EVICTED: u32 = 1 << 9;
    /// `t`: stream commands.
    pub const STREAM: u32 = 1 << 10;
    /// `m`: key misses.
    pub const KEY_MISS: u32 = 1 << 11;
    /// `d`: module key types.
    pub const MODULE: u32 = 1 << 13;
    /// `n`: new keys.
    pub const NEW: u32 = 1 << 14;

    /// The bits of a (normalised or not) `notify-keyspace-events` value.
    pub fn parse(classes: &str) -> u32 {
        let mut flags = 0;
        for c in classes.chars() {
            flags |= match c {
                'A' => GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE,
                'g' => GENERIC,
                '$' => STRING,
                'l' => LIST,
                's' => SET,
                'h' => HASH,
                'z' => ZSET,
                'x' => EXPIRED,
                'e' => EVICTED,
                'K' => KEYSPACE,
                'E' => KEYEVENT,
                't' => STREAM,
                'm' => KEY_MISS,
                'd' => MODULE,
                'n' => NEW,
                _ => 0,
            };
        }
        flags
    }
}

impl Live {
    /// The live copies of `config`.
    pub fn new(config: &Config) -> Live {
        let live = Live {
            timeout: watch::channel(0).0,
            tcp_keepalive: AtomicU64::new(0),
            requirepass: RwLock::new(None),
            auth_required: AtomicBool::new(false),
            encoding: RwLock::new(EncodingLimits::default()),
            notify_flags: AtomicU32::new(0),
            slowlog_log_slower_than: AtomicI64::new(10000),
            slowlog_max_len: AtomicU64::new(128),
            latency_monitor_threshold: AtomicU64::new(0),
        };
        live.load(&config.params);
        live
    }

    fn load(&self, values: &Values) {
        self.timeout.send_replace(values.uint("timeout"));
        self.tcp_keepalive.store(values.uint("tcp-keepalive"), Ordering::Relaxed);
        let password = values.get("requirepass").unwrap_or_default();
        let password = (!password.is_empty()).then(|| password.as_bytes().to_vec());
        self.auth_required.store(password.is_some(), Ordering::Relaxed);
        *self.requirepass.write().unwrap_or_else(|p| p.into_inner()) = password;
        *self.encoding.write().unwrap_or_else(|p| p.into_inner()) = EncodingLimits::from_values(values);
        let events = values.get("notify-keyspace-events").unwrap_or_default();
        self.notify_flags.store(notify::parse(events), Ordering::Relaxed);
        self.slowlog_log_slower_than.store(values.int("slowlog-log-slower-than"), Ordering::Relaxed);
        self.slowlog_max_len.store(values.uint("slowlog-max-len"), Ordering::Relaxed);
        self.latency_monitor_threshold.store(values.uint("latency-monitor-threshold"), Ordering::Relaxed);
    }

    /// `notify-keyspace-events` as [`notify`] bits (0: notifications off).
    pub fn notify_flags(&self) -> u32 {
        self.notify_flags.load(Ordering::Relaxed)
    }

    /// `slowlog-log-slower-than` in microseconds (-1: slowlog off; 0: every command).
    pub fn slowlog_log_slower_than(&self) -> i64 {
        self.slowlog_log_slower_than.load(Ordering::Relaxed)
    }

    /// `slowlog-max-len`.
    pub fn slowlog_max_len(&self) -> u64 {
        self.slowlog_max_len.load(Ordering::Relaxed)
    }

    /// `latency-monitor-threshold` in milliseconds (0: latency monitor off).
    pub fn latency_monitor_threshold(&self) -> u64 {
        self.latency_monitor_threshold.load(Ordering::Relaxed)
    }

    /// Idle seconds after which a client is disconnected (0: never).
    pub fn timeout(&self) -> u64 {
        *self.timeout.borrow()
    }

    /// A receiver that changes when `timeout` does.
    pub fn timeout_receiver(&self) -> watch::Receiver<u64> {
        self.timeout.subscribe()
    }

    /// `tcp-keepalive` seconds.
    pub fn tcp_keepalive(&self) -> u64 {
        self.tcp_keepalive.load(Ordering::Relaxed)
    }

    /// True if the default user has a password (`requirepass`): new clients must AUTH.
    pub fn auth_required(&self) -> bool {
        self.auth_required.load(Ordering::Relaxed)
    }

    /// Checks a password of the default user. Without `requirepass` any password matches (Redis's
    /// `nopass` default user).
    pub fn check_password(&self, password: &[u8]) -> bool {
        match &*self.requirepass.read().unwrap_or_else(|p| p.into_inner()) {
            None => true,
            Some(expected) => constant_time_eq(expected, password),
        }
    }

    /// The OBJECT ENCODING thresholds.
    pub fn encoding_limits(&self) -> EncodingLimits {
        *self.encoding.read().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_copies_follow_the_values() {
        let mut config = crate::config::Config::load(&Default::default()).expect("defaults");
        config.set_param("notify-keyspace-events", "KEA").unwrap();
        config.set_param("slowlog-log-slower-than", "-1").unwrap();
        config.set_param("requirepass", "pw").unwrap();
        config.set_param("hash-max-ziplist-value", "1kb").unwrap();
        let live = Live::new(&config);
        assert_eq!(live.notify_flags() & notify::KEYSPACE, notify::KEYSPACE);
        assert_eq!(live.notify_flags() & (notify::HASH | notify::NEW | notify::KEY_MISS), notify::HASH);
        assert_eq!(live.slowlog_log_slower_than(), -1);
        assert!(live.auth_required() && live.check_password(b"pw") && !live.check_password(b"p"));
        assert_eq!(live.encoding_limits().hash_value, 1024);
        assert_eq!(live.slowlog_max_len(), 128);
    }
}

/// Compares without stopping at the first difference, so the time taken says nothing about the password.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

impl Server {
    /// A parameter's current value as CONFIG GET shows it, by name or alias (`None`: no such parameter).
    /// For other modules: `server.config_value("notify-keyspace-events")`, `"slowlog-log-slower-than"`,
    /// `"slowlog-max-len"`, `"latency-monitor-threshold"`, ...
    pub fn config_value(&self, name: &str) -> Option<String> {
        self.lock_config().get(name)
    }

    /// An integer parameter's current value (0 for an unknown or non-integer one).
    pub fn config_int(&self, name: &str) -> i64 {
        self.lock_config().params.int(name)
    }

    /// Makes the running server follow the configuration after CONFIG SET (or at start-up).
    pub fn apply_config(&self) {
        let config = self.lock_config().clone();
        self.live.load(&config.params);
        self.notify.set_flags(self.live.notify_flags());
        self.scripting.set_busy_threshold_ms(config.params.uint("busy-reply-threshold"));
        for name in crate::server::introspection::PARAMETERS {
            self.intro.config_set(name, config.params.int(name));
        }
        self.set_maxclients(config.maxclients);
        self.set_proto_max_bulk_len(config.params.uint("proto-max-bulk-len") as usize);
        self.apply_memory_budget(&config);
    }

    /// Sizes the engine's RAM budgets. With `maxmemory` 0 they are `page-cache`, `value-cache` and the
    /// engine's default memtable budget; with `maxmemory` M, the memtable gets at most M/2 and each cache at
    /// most M/4 (and never more than its own setting). Data on disk is never evicted.
    pub fn apply_memory_budget(&self, config: &Config) {
        let maxmemory = config.params.uint("maxmemory");
        let (page, value) = (config.page_cache_bytes, config.value_cache_bytes);
        if maxmemory == 0 {
            self.engine.set_memory_budget(page, value, None);
        } else {
            let quarter = usize::try_from(maxmemory / 4).unwrap_or(usize::MAX);
            let half = usize::try_from(maxmemory / 2).unwrap_or(usize::MAX);
            self.engine.set_memory_budget(page.min(quarter), value.min(quarter), Some(half));
        }
    }
}

/// Sets TCP keepalive on a new connection as Redis does: probes after `seconds` idle, every third of it.
pub fn set_keepalive(socket: &tokio::net::TcpStream, seconds: u64) {
    use std::os::fd::AsRawFd;
    if seconds == 0 {
        return;
    }
    let fd = socket.as_raw_fd();
    let idle = seconds.min(i32::MAX as u64) as libc::c_int;
    let interval = (idle / 3).max(1);
    let set = |level: libc::c_int, name: libc::c_int, value: libc::c_int| {
        // SAFETY: setsockopt reads a c_int from the pointer we pass, for an fd we own.
        unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                &value as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        }
    };
    set(libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1);
    #[cfg(target_os = "linux")]
    {
        set(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, idle);
        set(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, interval);
        set(libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 3);
    }
    let _ = interval;
}

/// Samples the instantaneous rates 10 times a second (INFO's `instantaneous_*`).
pub async fn sample_metrics(server: std::sync::Arc<Server>) {
    let mut ticker = tokio::time::interval(std::time::Duration::from_millis(100));
    while !server.shutting_down() {
        ticker.tick().await;
        let stats = &server.stats;
        server.metrics.sample([
            stats.commands.load(Ordering::Relaxed),
            stats.net_input.load(Ordering::Relaxed),
            stats.net_output.load(Ordering::Relaxed),
        ]);
    }
}
