//! Introspection and client features shared by the connections: the slow log, latency monitor and
//! histograms ([`super::slowlog`]), MONITOR ([`super::monitor`]), CLIENT PAUSE ([`super::pause`]) and
//! client tracking ([`super::tracking`]), plus the per-client state they need ([`ClientIntro`]).
//!
//! The dispatcher calls [`after_command`] once per executed command (EXEC's queued commands included):
//! that is where Redis's `call()` records slow log entries, latency samples and histograms, feeds
//! monitors and remembers the keys a tracking client read. The three settings read here
//! (`slowlog-log-slower-than`, `slowlog-max-len`, `latency-monitor-threshold`) live in atomics of
//! [`Introspection`], set through [`Introspection::config_set`] so that the CONFIG table can own the
//! parameters and call in.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use super::client::{Client, ClientHandle};
use super::monitor::Monitors;
use super::pause::Pause;
use super::slowlog::{Histogram, LatencyEvents, SlowEntry, SlowLog};
use super::tracking::{Tracking, TrackingState};
use crate::cmd::spec::Flags;
use crate::cmd::table::COMMAND_COUNT;
use crate::cmd::{CommandSpec, Ctx};

/// Commands Redis never shows to MONITOR besides the administrative ones (`SKIP_MONITOR`).
const SKIP_MONITOR: &[&str] = &["eval", "eval_ro", "evalsha", "evalsha_ro", "fcall", "fcall_ro"];

/// CONFIG parameters owned here.
pub const PARAMETERS: &[&str] =
    &["slowlog-log-slower-than", "slowlog-max-len", "latency-monitor-threshold", "tracking-table-max-keys"];

/// Server-wide introspection state.
pub struct Introspection {
    /// SLOWLOG.
    pub slowlog: SlowLog,
    /// LATENCY events.
    pub latency: LatencyEvents,
    /// LATENCY HISTOGRAM, by command id.
    pub histograms: Vec<Histogram>,
    /// MONITOR clients.
    pub monitors: Monitors,
    /// CLIENT PAUSE.
    pub pause: Pause,
    /// CLIENT TRACKING.
    pub tracking: Tracking,
    slowlog_log_slower_than: AtomicI64,
    slowlog_max_len: AtomicU64,
    latency_monitor_threshold: AtomicU64,
    tracking_table_max_keys: AtomicU64,
    startup_rss: u64,
}

impl Default for Introspection {
    fn default() -> Introspection {
        Introspection {
            slowlog: SlowLog::default(),
            latency: LatencyEvents::default(),
            histograms: (0..COMMAND_COUNT).map(|_| Histogram::default()).collect(),
            monitors: Monitors::default(),
            pause: Pause::default(),
            tracking: Tracking::default(),
            slowlog_log_slower_than: AtomicI64::new(10_000),
            slowlog_max_len: AtomicU64::new(128),
            latency_monitor_threshold: AtomicU64::new(0),
            tracking_table_max_keys: AtomicU64::new(1_000_000),
            startup_rss: resident_bytes(),
        }
    }
}

/// The process's resident set, in bytes.
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm.split_whitespace().nth(1).and_then(|pages| pages.parse::<u64>().ok()).unwrap_or(0) * 4096
}

impl Introspection {
    /// The resident set when the server started (MEMORY STATS `startup.allocated`).
    pub fn startup_rss(&self) -> u64 {
        self.startup_rss
    }

    /// `slowlog-log-slower-than` (microseconds; negative disables).
    pub fn slowlog_log_slower_than(&self) -> i64 {
        self.slowlog_log_slower_than.load(Ordering::Relaxed)
    }

    /// `slowlog-max-len`.
    pub fn slowlog_max_len(&self) -> u64 {
        self.slowlog_max_len.load(Ordering::Relaxed)
    }

    /// `latency-monitor-threshold` (milliseconds; 0 disables).
    pub fn latency_monitor_threshold(&self) -> u64 {
        self.latency_monitor_threshold.load(Ordering::Relaxed)
    }

    /// The value of one of [`PARAMETERS`], as CONFIG GET shows it.
    pub fn config_get(&self, name: &str) -> Option<String> {
        Some(match name {
            "slowlog-log-slower-than" => self.slowlog_log_slower_than().to_string(),
            "slowlog-max-len" => self.slowlog_max_len().to_string(),
            "latency-monitor-threshold" => self.latency_monitor_threshold().to_string(),
            "tracking-table-max-keys" => self.tracking_table_max_keys.load(Ordering::Relaxed).to_string(),
            _ => return None,
        })
    }

    /// Checks a value for one of [`PARAMETERS`] as Redis does (`None`: not one of ours); the error is
    /// the reason CONFIG SET shows after "CONFIG SET failed (possibly related to argument '...') - ".
    pub fn config_check(name: &str, value: &[u8]) -> Option<Result<i64, String>> {
        let (low, high) = match name {
            "slowlog-log-slower-than" => (-1, i64::MAX),
            "slowlog-max-len" | "latency-monitor-threshold" | "tracking-table-max-keys" => (0, i64::MAX),
            _ => return None,
        };
        let Some(number) = crate::cmd::args::parse_i64(value) else {
            return Some(Err("argument couldn't be parsed into an integer".into()));
        };
        if number < low || number > high {
            return Some(Err(format!("argument must be between {low} and {high} inclusive")));
        }
        Some(Ok(number))
    }

    /// Applies a value checked by [`Introspection::config_check`]; false if `name` is not ours.
    pub fn config_set(&self, name: &str, value: i64) -> bool {
        match name {
            "slowlog-log-slower-than" => self.slowlog_log_slower_than.store(value, Ordering::Relaxed),
            "slowlog-max-len" => {
                self.slowlog_max_len.store(value.max(0) as u64, Ordering::Relaxed);
                self.slowlog.trim(usize::try_from(value).unwrap_or(usize::MAX));
            }
            "latency-monitor-threshold" => self.latency_monitor_threshold.store(value.max(0) as u64, Ordering::Relaxed),
            "tracking-table-max-keys" => self.tracking_table_max_keys.store(value.max(0) as u64, Ordering::Relaxed),
            _ => return false,
        }
        true
    }

    /// Applies `tracking-table-max-keys` while tracking clients exist: after each command and from the
    /// server's periodic task, so that a table far over the limit is brought under it by growing efforts
    /// even when no command comes (Redis's `serverCron`).
    pub fn limit_tracking(&self, registry: &super::client::ClientRegistry) {
        if self.tracking.clients() > 0 {
            let max_keys = usize::try_from(self.tracking_table_max_keys.load(Ordering::Relaxed)).unwrap_or(usize::MAX);
            self.tracking.limit(registry, max_keys);
        }
    }

    /// CONFIG RESETSTAT: the histograms start again (the slow log and latency events are kept, as Redis).
    pub fn reset_stats(&self) {
        for histogram in &self.histograms {
            histogram.reset();
        }
    }

    /// A client disconnected: it stops monitoring and tracking.
    pub fn client_gone(&self, handle: &ClientHandle) {
        self.monitors.remove(handle.id);
        self.tracking.disable(handle);
    }
}

/// Per-client state for these features, in the client's shared handle (CLIENT LIST reads it from other
/// connections; writers read the tracking settings of the clients they invalidate).
#[derive(Default)]
pub struct ClientIntro {
    /// CLIENT SETINFO lib-name.
    pub lib_name: Mutex<Option<Bytes>>,
    /// CLIENT SETINFO lib-ver.
    pub lib_ver: Mutex<Option<Bytes>>,
    /// Bytes in the query buffer (CLIENT LIST `qbuf`).
    pub qbuf: AtomicUsize,
    /// Free space in the query buffer (`qbuf-free`).
    pub qbuf_free: AtomicUsize,
    /// Bytes of the arguments of the command being run (`argv-mem`).
    pub argv_mem: AtomicUsize,
    /// Bytes of the commands queued in MULTI (`multi-mem`).
    pub multi_mem: AtomicUsize,
    /// Bytes of replies waiting in the output buffer (`obl`).
    pub obl: AtomicUsize,
    /// Capacity of the output buffer (`rbs`).
    pub rbs: AtomicUsize,
    /// Largest output buffer use seen (`rbp`).
    pub rbp: AtomicUsize,
    /// The connection's socket descriptor (CLIENT LIST `fd`; unset, shown as -1, for a handle without one).
    pub fd: std::sync::OnceLock<i32>,
    /// Push messages (pub/sub, invalidations) queued for the connection and not yet in its output buffer
    /// (CLIENT LIST `oll`, Redis's count of reply blocks waiting beyond its fixed buffer).
    pub queued_pushes: AtomicUsize,
    /// The client is in MONITOR mode.
    pub monitor: AtomicBool,
    /// EXEC is running this client's queued commands (Redis's "deny blocking").
    pub in_exec: AtomicBool,
    /// A script this client runs is calling a command (MONITOR shows it as run by `lua`).
    pub in_script: AtomicBool,
    /// The keys the running script command declared: what a tracking client remembers when its script
    /// calls a read command (Redis tracks the caller's keys, not the ones the script read).
    pub script_keys: Mutex<Vec<Bytes>>,
    tracking: Mutex<TrackingState>,
}

impl ClientIntro {
    /// The tracking settings.
    pub fn tracking(&self) -> MutexGuard<'_, TrackingState> {
        self.tracking.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records the connection's buffers before it runs `argv` (`buffered`: bytes in the query buffer
    /// with the request still in it, as Redis shows them while the command runs).
    pub fn note(&self, client: &Client, buffered: usize, capacity: usize, wbuf: &BytesMut, argv: &[Bytes]) {
        self.qbuf.store(buffered, Ordering::Relaxed);
        self.qbuf_free.store(capacity.saturating_sub(buffered), Ordering::Relaxed);
        self.argv_mem.store(argv.iter().map(Bytes::len).sum(), Ordering::Relaxed);
        if client.multi.is_none() {
            self.multi_mem.store(0, Ordering::Relaxed);
        }
        self.obl.store(wbuf.len(), Ordering::Relaxed);
        self.rbs.store(wbuf.capacity(), Ordering::Relaxed);
        self.rbp.fetch_max(wbuf.len(), Ordering::Relaxed);
    }

    /// Text of an optional attribute (empty when unset).
    pub fn text(value: &Mutex<Option<Bytes>>) -> String {
        value
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    }
}

/// Marks a client as running EXEC's queue while alive.
pub struct InExec(Arc<ClientHandle>, bool);

impl InExec {
    /// Enters EXEC (or a command a script calls, which may itself run inside EXEC).
    pub fn enter(handle: Arc<ClientHandle>) -> InExec {
        let before = handle.intro.in_exec.swap(true, Ordering::Relaxed);
        InExec(handle, before)
    }
}

impl Drop for InExec {
    fn drop(&mut self) {
        // Nested entries (EVAL inside EXEC calls commands) must leave the outer EXEC's flag set.
        self.0.intro.in_exec.store(self.1, Ordering::Relaxed);
    }
}

/// Marks a client's script as calling a command while alive.
pub struct InScript(Arc<ClientHandle>);

impl InScript {
    /// Enters a `redis.call`.
    pub fn enter(handle: Arc<ClientHandle>) -> InScript {
        handle.intro.in_script.store(true, Ordering::Relaxed);
        InScript(handle)
    }
}

impl Drop for InScript {
    fn drop(&mut self) {
        self.0.intro.in_script.store(false, Ordering::Relaxed);
    }
}

/// Called as a script command (EVAL, EVALSHA, FCALL and their `_RO` forms) starts: shows it to the
/// monitors before it runs, as Redis's `evalCommand`/`fcallCommand` do, so that the commands its script
/// calls come after it; and keeps its declared keys for client tracking.
pub fn begin_script_command(ctx: &Ctx<'_>, argv: &[Bytes]) {
    let intro = &ctx.server.intro;
    let handle = &ctx.client.handle;
    if intro.monitors.active() {
        intro.monitors.feed(ctx.client.db, &handle.addr, argv);
    }
    if handle.intro.tracking().on {
        let numkeys = argv.get(2).and_then(|n| crate::cmd::args::parse_i64(n)).unwrap_or(0).max(0) as usize;
        let keys = argv.iter().skip(3).take(numkeys).cloned().collect();
        *handle.intro.script_keys.lock().unwrap_or_else(|p| p.into_inner()) = keys;
    }
}

/// The gate Redis applies to a monitor (a replica-like client): it may not touch the keyspace.
pub fn gate(ctx: &Ctx<'_>, spec: &CommandSpec) -> Option<crate::cmd::CmdError> {
    let handle = &ctx.client.handle;
    if handle.intro.monitor.load(Ordering::Relaxed)
        && (spec.has(Flags::READONLY) || super::pause::may_write(spec) || exec_writes(ctx, spec))
    {
        return Some(crate::cmd::CmdError::err("Replica can't interact with the keyspace"));
    }
    None
}

/// True for an EXEC whose queue holds a command a WRITE pause holds.
pub fn exec_writes(ctx: &Ctx<'_>, spec: &CommandSpec) -> bool {
    spec.fullname == "exec"
        && ctx.client.multi.as_ref().is_some_and(|m| m.queued.iter().any(|(s, _, _)| super::pause::may_write(s)))
}

/// A blocking command's request, wrapped so that when a writer serves it (Redis's
/// `updateStatsOnUnblock`) its slow log entry and histogram are recorded with the time of its first run
/// plus the serving, and a `command-unblocking` latency sample with the serving time. Not on timeout or
/// CLIENT UNBLOCK, as in Redis.
pub fn on_block(
    spec: &'static CommandSpec,
    argv: &[Bytes],
    first_run: Duration,
    mut request: super::blocking::BlockRequest,
) -> super::blocking::BlockRequest {
    let serve = request.serve;
    let argv = argv.to_vec();
    request.serve = Box::new(move |ctx, key| {
        let began = std::time::Instant::now();
        let result = serve(ctx, key);
        if !matches!(result, Ok(None)) {
            let serving = began.elapsed();
            let intro = &ctx.server.intro;
            let threshold = intro.latency_monitor_threshold();
            let serving_ms = serving.as_millis() as u64;
            if threshold > 0 && serving_ms >= threshold {
                intro.latency.add("command-unblocking", crate::engine::system_clock_ms() / 1000, serving_ms);
            }
            record_run(ctx, spec, &argv, micros(first_run + serving));
        }
        result
    });
    request
}

fn micros(duration: Duration) -> u64 {
    duration.as_micros().min(u128::from(u64::MAX)) as u64
}

/// The histogram and slow log entry of a command that ran (or was served after blocking).
fn record_run(ctx: &Ctx<'_>, spec: &'static CommandSpec, argv: &[Bytes], micros: u64) {
    let intro = &ctx.server.intro;
    intro.histograms[spec.id].record(micros);
    if spec.has(Flags::SKIP_SLOWLOG) {
        return;
    }
    let handle = &ctx.client.handle;
    let max_len = usize::try_from(intro.slowlog_max_len()).unwrap_or(usize::MAX);
    intro.slowlog.record(intro.slowlog_log_slower_than(), max_len, micros, || SlowEntry {
        id: 0,
        time: crate::engine::system_clock_ms() / 1000,
        duration: micros,
        argv: super::slowlog::trim_argv(&super::monitor::redacted(argv)),
        peer: handle.addr.clone(),
        name: handle.name.lock().unwrap_or_else(|p| p.into_inner()).clone().unwrap_or_default(),
    });
}

/// Records an executed command (Redis's `call()` bookkeeping): histogram, latency event, slow log,
/// monitors, tracked keys, and the per-command CLIENT CACHING flag. `blocked`: the client is now
/// blocked (Redis records its slow log entry and histogram when it is served instead).
pub fn after_command(ctx: &mut Ctx<'_>, spec: &'static CommandSpec, argv: &[Bytes], duration: Duration, blocked: bool) {
    let intro = &ctx.server.intro;
    let micros = micros(duration);
    let threshold = intro.latency_monitor_threshold();
    if threshold > 0 && micros / 1000 >= threshold {
        let event = if spec.has(Flags::FAST) { "fast-command" } else { "command" };
        intro.latency.add(event, crate::engine::system_clock_ms() / 1000, micros / 1000);
    }
    if !blocked {
        record_run(ctx, spec, argv, micros);
    }
    let handle = &ctx.client.handle;
    if intro.monitors.active() && !spec.has(Flags::ADMIN) && !SKIP_MONITOR.contains(&spec.fullname) {
        // Commands a script calls run on Redis's `lua` client.
        let addr = if handle.intro.in_script.load(Ordering::Relaxed) { "lua" } else { handle.addr.as_str() };
        intro.monitors.feed(ctx.client.db, addr, &super::monitor::redacted(argv));
    }
    // Redis enforces `tracking-table-max-keys` before every command and in its cron.
    intro.limit_tracking(&ctx.server.clients);
    let in_exec = handle.intro.in_exec.load(Ordering::Relaxed);
    let tracking = {
        let state = handle.intro.tracking();
        (state.on, state.bcast, state.optin, state.optout, state.caching)
    };
    let (on, bcast, optin, optout, caching) = tracking;
    if on {
        // A read-only script command is not tracked itself: the reads its script makes are, as the
        // script's declared keys.
        let script_ro = matches!(spec.fullname, "eval_ro" | "evalsha_ro" | "fcall_ro");
        if spec.has(Flags::READONLY) && !spec.has(Flags::PUBSUB) && !bcast && !script_ro {
            let skip = (optin && !caching) || (optout && caching);
            if !skip && handle.intro.in_script.load(Ordering::Relaxed) {
                let keys = handle.intro.script_keys.lock().unwrap_or_else(|p| p.into_inner()).clone();
                intro.tracking.remember(handle.id, keys.into_iter());
            } else if !skip {
                if let Some(positions) = spec.key_positions(argv) {
                    intro.tracking.remember(handle.id, positions.into_iter().filter_map(|i| argv.get(i).cloned()));
                }
            }
        }
        // CLIENT CACHING applies to the next command, or to the whole next transaction.
        if caching && !in_exec && ctx.client.multi.is_none() && !spec.fullname.starts_with("client|") {
            handle.intro.tracking().caching = false;
        }
    }
    if !in_exec {
        intro.tracking.flush_broadcasts(&ctx.server.clients);
    }
}
