//! The live side of the configuration: what CONFIG SET changes while the server runs.
//!
//! [`crate::config::params`] validates and normalises values; this module keeps the copies that hot paths
//! read without taking the config mutex (timeouts, the password gate, OBJECT ENCODING thresholds) and
//! applies a change where it has an effect: `maxmemory`, `page-cache` and `value-cache` resize the
//! engine's RAM budgets, `appendfsync` sets the engine's WAL policy, `maxclients` and `proto-max-bulk-len` bound new connections and requests,
//! `requirepass` turns the AUTH gate on or off, `timeout` and `tcp-keepalive` apply to idle clients and
//! new connections, `min-replicas-to-write` refuses writes (there are no replicas). Other helpers read any parameter through [`Server::config_value`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::RwLock;

use tokio::sync::watch;

use super::Server;
use crate::config::params::{EncodingLimits, Values};
use crate::config::Config;

/// The error of a write refused for `min-replicas-to-write` (Redis's `shared.noreplicaserr`).
pub const NOREPLICAS: &str = "NOREPLICAS Not enough good replicas to write.";

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
    /// `min-replicas-to-write` > 0 with `min-replicas-max-lag` > 0: Velo has no replica, so writes are
    /// refused with NOREPLICAS, as Redis refuses them with too few good replicas.
    too_few_replicas: AtomicBool,
    /// `client-output-buffer-limit`, which every client's handle reads (`super::obuf`).
    pub obuf: std::sync::Arc<super::obuf::Limits>,
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
            too_few_replicas: AtomicBool::new(false),
            obuf: Default::default(),
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
        let limits = EncodingLimits::from_values(values);
        *self.encoding.write().unwrap_or_else(|p| p.into_inner()) = limits;
        crate::cmd::encoding::set_limits(limits);
        self.obuf.load(&values.get("client-output-buffer-limit").unwrap_or_default());
        let min_replicas = values.uint("min-replicas-to-write") > 0 && values.uint("min-replicas-max-lag") > 0;
        self.too_few_replicas.store(min_replicas, Ordering::Relaxed);
    }

    /// True when writes must be refused for `min-replicas-to-write` (Redis's `checkGoodReplicasStatus`
    /// failing: Velo has no replicas to count).
    pub fn too_few_replicas(&self) -> bool {
        self.too_few_replicas.load(Ordering::Relaxed)
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

/// Descriptors Redis keeps for itself beyond `maxclients` (`CONFIG_MIN_RESERVED_FDS`); Velo uses its
/// formula so that CONFIG SET maxclients accepts and refuses the same values, with the same suggestion.
const RESERVED_FDS: u64 = 32;

/// How many clients the open-files limit fits when `maxclients` are wanted, after raising the soft limit
/// towards `maxclients` + 32 as far as the hard limit allows (or further where the process may raise the
/// hard limit too), as Redis's `adjustOpenFilesLimit` does at start-up and on CONFIG SET maxclients.
/// Returns `maxclients` when it fits.
pub fn clients_the_fd_limit_fits(maxclients: u64) -> u64 {
    let wanted = maxclients.saturating_add(RESERVED_FDS);
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        // Redis assumes 1024 when the limit cannot be read.
        return maxclients.min(1024 - RESERVED_FDS);
    }
    if limit.rlim_cur == libc::RLIM_INFINITY || limit.rlim_cur >= wanted {
        return maxclients;
    }
    let mut raised = libc::rlimit { rlim_cur: wanted, rlim_max: limit.rlim_max.max(wanted) };
    // SAFETY: setrlimit only reads the struct; raising the hard limit fails without the privilege.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        // Redis then steps down from `wanted` 16 at a time to the first value the hard limit allows (so
        // its suggestion is that value less 32), or keeps the old limit when none above it is allowed.
        let over = wanted.saturating_sub(limit.rlim_max);
        let allowed = wanted.saturating_sub(over.div_ceil(16) * 16);
        raised = libc::rlimit { rlim_cur: allowed.max(limit.rlim_cur), rlim_max: limit.rlim_max };
        // SAFETY: as above; a soft limit up to the hard limit is always allowed.
        if allowed <= limit.rlim_cur || unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            raised.rlim_cur = limit.rlim_cur;
        }
    }
    if raised.rlim_cur >= wanted {
        maxclients
    } else {
        raised.rlim_cur.saturating_sub(RESERVED_FDS).max(1)
    }
}

/// At start-up, as Redis: a `maxclients` the open-files limit cannot fit is lowered to what it fits,
/// with Redis's warning.
pub fn fit_maxclients_at_start(config: &mut Config) {
    let wanted = config.maxclients as u64;
    let fits = clients_the_fd_limit_fits(wanted);
    if fits < wanted {
        tracing::warn!(
            "maxclients has been reduced to {fits} to compensate for low ulimit (open files). If you need \
             higher maxclients increase 'ulimit -n'."
        );
        if config.set_param("maxclients", &fits.to_string()).is_err() {
            config.maxclients = fits as usize;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_copies_follow_the_values() {
        let mut config = crate::config::Config::load(&Default::default()).expect("defaults");
        config.set_param("notify-keyspace-events", "KEA").unwrap();
        config.set_param("requirepass", "pw").unwrap();
        config.set_param("hash-max-ziplist-value", "1kb").unwrap();
        let live = Live::new(&config);
        use crate::server::notify::{HASH, KEYSPACE, KEY_MISS, NEW};
        let flags = notify_flags(&config.params);
        assert_eq!(flags & KEYSPACE, KEYSPACE);
        assert_eq!(flags & (HASH | NEW | KEY_MISS), HASH);
        assert!(live.auth_required() && live.check_password(b"pw") && !live.check_password(b"p"));
        assert_eq!(live.encoding_limits().hash_value, 1024);
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
        self.notify.set_flags(notify_flags(&config.params));
        self.scripting.set_busy_threshold_ms(config.params.uint("busy-reply-threshold"));
        for name in crate::server::introspection::PARAMETERS {
            self.intro.config_set(name, config.params.int(name));
        }
        self.set_maxclients(config.maxclients);
        self.set_proto_max_bulk_len(config.params.uint("proto-max-bulk-len") as usize);
        self.apply_memory_budget(&config);
        self.access.configure(
            &config.params.get("maxmemory-policy").unwrap_or_default(),
            config.params.uint("lfu-log-factor"),
            config.params.uint("lfu-decay-time"),
        );
        if self.engine.fsync_policy() != config.fsync {
            if let Err(error) = self.engine.set_fsync_policy(config.fsync) {
                tracing::error!(%error, "making the WAL durable for appendfsync always failed");
            }
        }
        crate::server::dictionaries::apply(&self.engine, &config.params);
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

/// `notify-keyspace-events` as [`crate::server::notify`] bits (the stored value was validated on the way in).
pub fn notify_flags(values: &Values) -> u32 {
    let events = values.get("notify-keyspace-events").unwrap_or_default();
    crate::server::notify::parse_flags(events.as_bytes()).unwrap_or(0)
}
