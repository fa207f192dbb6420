//! The network server: `velo serve`.
//!
//! # Layout
//! - [`connection`]: one task per connection: read → decode → dispatch → encode → write.
//! - [`dispatch`]: the gate (lookup, arity, MULTI queueing, pub/sub context) and statistics.
//! - [`client`]: connection-local state, the shared handle others see, the client registry.
//! - [`pubsub`]: channel and pattern subscriptions and delivery.
//! - [`obuf`]: output buffer limits (`client-output-buffer-limit`).
//! - [`watch`]: WATCH bookkeeping.
//! - [`blocking`]: clients blocked by BLPOP & co., the key-ready signal, serving them.
//! - [`notify`]: keyspace notifications.
//! - [`dbmap`]: the persisted logical → physical database map behind SWAPDB.
//! - [`stats`]: counters for INFO.
//! - [`settings`]: the live configuration (CONFIG SET's effects, the AUTH gate's password).
//! - [`introspection`]: slow log, latency, MONITOR, CLIENT PAUSE and tracking ([`slowlog`], [`monitor`],
//!   [`pause`], [`tracking`]).
//!
//! # Threading
//! A tokio multi-thread runtime (`velo-worker-threads` workers, by default one per CPU core); each
//! connection is a task that calls the (synchronous, short) engine directly. The engine serialises access per slot. Every command holds [`Server::command_lock`] shared;
//! EXEC and SWAPDB hold it exclusively, which makes a transaction atomic with respect to every other
//! client. Read-modify-write commands lock their key's slot; multi-key commands lock their slots in
//! ascending order.
//!
//! # Shutdown
//! SIGTERM, SIGINT or SHUTDOWN stop the listener; connections finish the requests they have read, flush
//! and close; then the WAL is made durable, the engine checkpoints and the directory lock is released.

pub mod access;
pub mod blocking;
pub mod bufsize;
pub mod cancel;
pub mod client;
pub mod clock;
pub mod connection;
pub mod dbmap;
pub mod dictionaries;
pub mod dispatch;
pub mod fullsync;
pub mod gate;
pub mod introspection;
pub mod keymiss;
pub mod metrics;
pub mod monitor;
pub mod notify;
pub mod obuf;
pub mod pause;
pub mod pubsub;
pub mod rdbsave;
pub mod settings;
pub mod slowlog;
pub mod stats;
pub mod tracking;
pub mod watch;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch as tokio_watch;

use crate::config::Config;
use crate::engine::{Engine, EngineOptions};

/// Keys examined per slot per active-expire cycle.
const ACTIVE_EXPIRE_BUDGET: usize = 20;
/// Active-expire cycles per second (Redis's `hz`).
const ACTIVE_EXPIRE_HZ: u64 = 10;
/// Keys the part sweeper examines per slot per tick (10 ticks a second).
const SWEEP_BUDGET: usize = 512;
/// Pause after a sweep pass over a slot that found nothing to free.
const SWEEP_IDLE_PAUSE: Duration = Duration::from_secs(30);

/// A slot that took no write for this long is checkpointed when its memtable is large enough
/// (`idle_checkpoints`).
const IDLE_CHECKPOINT_PERIOD: Duration = Duration::from_millis(250);

/// Everything connections share.
pub struct Server {
    /// The storage engine.
    pub engine: Engine,
    /// The configuration (CONFIG SET changes the mutable parts).
    pub config: Mutex<Config>,
    /// Logical → physical databases.
    pub dbmap: dbmap::DbMap,
    /// Connected clients.
    pub clients: client::ClientRegistry,
    /// Pub/sub subscriptions.
    pub pubsub: pubsub::PubSub,
    /// WATCH bookkeeping.
    pub watches: watch::Watches,
    /// Blocked clients.
    pub blocking: blocking::Blocking,
    /// Keyspace notification classes.
    pub notify: notify::Notify,
    /// Shared by every command, exclusive for EXEC and SWAPDB.
    pub command_lock: RwLock<()>,
    /// Counters.
    pub stats: stats::Stats,
    /// Configuration values hot paths read.
    pub live: settings::Live,
    /// Rates, latency histograms and other INFO measurements.
    pub metrics: metrics::Metrics,
    /// Slow log, latency, MONITOR, CLIENT PAUSE, tracking.
    pub intro: introspection::Introspection,
    /// Inline (fast path) versus off-worker execution.
    pub gate: gate::Gate,
    /// Lua scripts, function libraries and the running script.
    pub scripting: crate::script::Scripting,
    /// When the server started.
    pub started: Instant,
    /// Unix seconds of the last time everything was made durable (LASTSAVE).
    pub lastsave: AtomicU64,
    /// Port actually listened on.
    pub port: AtomicU64,
    /// RDB snapshots (SAVE, BGSAVE, dbfilename).
    pub rdb: rdbsave::RdbSaves,
    /// DEBUG switches (SET-ACTIVE-EXPIRE).
    pub debug: crate::cmd::debug::DebugState,
    /// Per-key access times and LFU counters (OBJECT IDLETIME/FREQ).
    pub access: access::AccessClock,
    maxclients: AtomicUsize,
    proto_max_bulk_len: AtomicUsize,
    databases: u16,
    shutdown: tokio_watch::Sender<bool>,
    /// Set with `shutdown` (before it): read by every connection on every idle wait, without the watch's lock.
    stopping: std::sync::atomic::AtomicBool,
}

impl Server {
    /// Opens the engine and builds the shared state (no sockets yet).
    pub fn open(mut config: Config) -> anyhow::Result<Server> {
        settings::fit_maxclients_at_start(&mut config);
        std::fs::create_dir_all(&config.dir)
            .with_context(|| format!("cannot create data directory {}", config.dir.display()))?;
        let notify = notify::Notify::default();
        notify.set_flags(settings::notify_flags(&config.params));
        let options = EngineOptions {
            expire_listener: Some(notify.expire_listener()),
            slot_count: config.slots,
            fsync: config.fsync,
            page_cache_bytes: config.page_cache_bytes,
            value_cache_bytes: config.value_cache_bytes,
            checkpoint_threads: config.params.uint("velo-checkpoint-threads") as usize,
            // Key expiry inside a script is judged at the script's start, as in Redis.
            clock: Arc::new(crate::script::current::engine_clock_ms),
            ..Default::default()
        };
        let engine = Engine::open(&config.dir, options)?;
        let dbmap = dbmap::DbMap::open(&config.dir, config.databases)?;
        let (shutdown, _) = tokio_watch::channel(false);
        // CONFIG GET dir shows an absolute path, as Redis's.
        if let Ok(absolute) = std::fs::canonicalize(&config.dir) {
            if let Some(found) = crate::config::params::lookup("dir") {
                config.params.put(found.param, absolute.display().to_string());
            }
        }
        let server = Server {
            engine,
            dbmap,
            clients: Default::default(),
            pubsub: Default::default(),
            watches: Default::default(),
            blocking: Default::default(),
            notify,
            command_lock: RwLock::new(()),
            stats: Default::default(),
            intro: Default::default(),
            gate: Default::default(),
            scripting: crate::script::Scripting::open(&config.dir)?,
            started: Instant::now(),
            lastsave: AtomicU64::new(crate::engine::system_clock_ms() / 1000),
            port: AtomicU64::new(u64::from(config.port)),
            rdb: Default::default(),
            debug: Default::default(),
            access: Default::default(),
            maxclients: AtomicUsize::new(config.maxclients),
            proto_max_bulk_len: AtomicUsize::new(512 * 1024 * 1024),
            databases: config.databases,
            live: settings::Live::new(&config),
            metrics: Default::default(),
            config: Mutex::new(config),
            shutdown,
            stopping: Default::default(),
        };
        server.apply_config();
        Ok(server)
    }

    /// Number of logical databases.
    pub fn databases(&self) -> u16 {
        self.databases
    }

    /// Largest accepted bulk argument.
    pub fn proto_max_bulk_len(&self) -> usize {
        self.proto_max_bulk_len.load(Ordering::Relaxed)
    }

    /// Sets the largest accepted bulk argument.
    pub fn set_proto_max_bulk_len(&self, value: usize) {
        self.proto_max_bulk_len.store(value, Ordering::Relaxed);
    }

    /// Maximum number of clients.
    pub fn maxclients(&self) -> usize {
        self.maxclients.load(Ordering::Relaxed)
    }

    /// Sets the maximum number of clients.
    pub fn set_maxclients(&self, value: usize) {
        self.maxclients.store(value, Ordering::Relaxed);
        self.lock_config().maxclients = value;
    }

    /// The configuration.
    pub fn lock_config(&self) -> std::sync::MutexGuard<'_, Config> {
        self.config.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a graceful shutdown.
    pub fn begin_shutdown(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.shutdown.send_replace(true);
    }

    /// True once shutdown has begun.
    pub fn shutting_down(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// A receiver that changes when shutdown begins.
    pub fn shutdown_receiver(&self) -> tokio_watch::Receiver<bool> {
        self.shutdown.subscribe()
    }
}

/// Runs `velo serve` until shutdown.
pub fn run(config: Config) -> anyhow::Result<()> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all().thread_name("velo-worker").on_thread_park(crate::engine::heap::collect_if_released);
    if config.worker_threads > 0 {
        builder.worker_threads(config.worker_threads);
    }
    let runtime = builder.build()?;
    let server = Arc::new(Server::open(config)?);
    notify::Notify::attach(&server);
    rdbsave::RdbSaves::attach(&server);
    runtime.block_on(serve(server.clone()))?;
    // A command still running off the workers (one without checkpoints) must not hold the exit hostage.
    runtime.shutdown_timeout(Duration::from_secs(2));
    finish(server)
}

/// Makes everything durable and closes the engine once the connections are gone.
fn finish(server: Arc<Server>) -> anyhow::Result<()> {
    server.rdb.wait_idle();
    server.engine.sync().context("final WAL sync")?;
    match Arc::try_unwrap(server) {
        Ok(server) => server.engine.close().context("closing the engine")?,
        Err(_) => {
            tracing::warn!("connections still hold the engine; the WAL is durable, skipping the final checkpoint")
        }
    }
    tracing::info!("velo stopped");
    Ok(())
}

async fn serve(server: Arc<Server>) -> anyhow::Result<()> {
    let (bind, port) = {
        let config = server.lock_config();
        (config.bind.clone(), config.port)
    };
    let listener =
        TcpListener::bind((bind.as_str(), port)).await.with_context(|| format!("cannot listen on {bind}:{port}"))?;
    let local = listener.local_addr()?;
    server.port.store(u64::from(local.port()), Ordering::Relaxed);
    let address_file = publish_address(&server, local);
    tracing::info!(address = %local, dir = %server.engine.dir().display(), "velo ready to accept connections");
    println!("velo listening on {local}");

    tokio::spawn(signals(server.clone()));
    tokio::spawn(active_expire(server.clone()));
    tokio::spawn(sweep_parts(server.clone()));
    tokio::spawn(idle_checkpoints(server.clone()));
    tokio::spawn(settings::sample_metrics(server.clone()));
    tokio::spawn(obuf::watch(server.clone()));

    let mut shutdown = server.shutdown_receiver();
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((socket, _)) = accepted else { continue };
                stats::Stats::bump(&server.stats.connections);
                if server.clients.count() >= server.maxclients() {
                    stats::Stats::bump(&server.stats.rejected_connections);
                    tokio::spawn(async move {
                        use tokio::io::AsyncWriteExt;
                        let mut socket = socket;
                        let _ = socket.write_all(b"-ERR max number of clients reached\r\n").await;
                    });
                    continue;
                }
                connections.spawn(connection::serve(server.clone(), socket));
            }
            _ = shutdown.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    if let Some(path) = address_file {
        let _ = std::fs::remove_file(path);
    }
    tracing::info!("shutting down: finishing in-flight commands");
    let drained =
        tokio::time::timeout(Duration::from_secs(10), async { while connections.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!("connections did not finish within 10s; aborting them");
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
    Ok(())
}

/// Writes where the server listens to the data directory's `ADDRESS` file (docs/format.md), so that
/// `velo rdb-dump` on the directory can ask this server for its snapshot. A wildcard bind is reached on
/// the loopback address.
fn publish_address(server: &Server, local: std::net::SocketAddr) -> Option<std::path::PathBuf> {
    let mut reachable = local;
    if local.ip().is_unspecified() {
        reachable.set_ip(match local {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let path = server.engine.dir().join(crate::tools::rdb_dump_live::ADDRESS_FILE);
    match std::fs::write(&path, format!("{reachable}\n")) {
        Ok(()) => Some(path),
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "cannot record the server's address");
            None
        }
    }
}

async fn signals(server: Arc<Server>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
    server.begin_shutdown();
}

async fn active_expire(server: Arc<Server>) {
    let mut ticker = tokio::time::interval(Duration::from_millis(1000 / ACTIVE_EXPIRE_HZ));
    loop {
        ticker.tick().await;
        if server.shutting_down() {
            return;
        }
        server.intro.limit_tracking(&server.clients);
        // Redis stops the active expire cycle while clients are paused.
        if server.intro.pause.is_paused() {
            continue;
        }
        // DEBUG SET-ACTIVE-EXPIRE 0 stops the cycle; keys still expire when accessed.
        if !server.debug.active_expire() {
            continue;
        }
        // Runs on a runtime worker: skip the tick while a long command runs (`gate`).
        let Some(_inline) = server.gate.try_inline() else { continue };
        // Skip a tick rather than block a worker while EXEC or a script holds the lock exclusively.
        let Ok(_shared) = server.command_lock.try_read() else { continue };
        // Each removal is counted and notified by the engine's expire listener (notify::ExpiredSink).
        if let Err(error) = server.engine.active_expire(ACTIVE_EXPIRE_BUDGET) {
            tracing::error!(%error, "active expire failed");
        }
        // Expired keys matching BCAST prefixes (Redis broadcasts them before it sleeps).
        server.intro.tracking.flush_broadcasts(&server.clients);
    }
}

/// Checkpoints the slots whose writes have stopped (`Engine::checkpoint_idle`, issue 14): a slot that took
/// no write for one period gives its memtable's memory back. The checkpoint itself runs on the engine's
/// checkpoint threads; this only begins it (a WAL rotation and an O(1) memtable swap under the slot lock).
async fn idle_checkpoints(server: Arc<Server>) {
    let mut ticker = tokio::time::interval(IDLE_CHECKPOINT_PERIOD);
    let mut seen = Vec::new();
    loop {
        ticker.tick().await;
        if server.shutting_down() {
            return;
        }
        // Runs on a runtime worker: skip the tick while a long command runs (`gate`).
        let Some(_inline) = server.gate.try_inline() else { continue };
        // Skip a tick rather than block a worker while EXEC or a script holds the lock exclusively.
        let Ok(_shared) = server.command_lock.try_read() else { continue };
        match server.engine.checkpoint_idle(&mut seen) {
            Ok(0) => {}
            Ok(started) => tracing::debug!(started, "checkpoints of idle slots"),
            Err(error) => tracing::error!(%error, "checkpoint of an idle slot failed"),
        }
    }
}

/// Frees, a little at a time, the parts of split collections that were deleted, overwritten or expired
/// (crate::elements): so that DEL of a collection of millions of elements never blocks the server.
/// A slot is swept only when its checkpointed key counts show hidden keys, and a pass that freed nothing
/// waits [`SWEEP_IDLE_PAUSE`] before the next, so that an idle sweeper does not churn the page cache.
async fn sweep_parts(server: Arc<Server>) {
    struct SlotSweep {
        position: u64,
        freed_this_pass: usize,
        next_pass: Instant,
    }
    let mut ticker = tokio::time::interval(Duration::from_millis(100));
    let mut sweeps: Vec<SlotSweep> = (0..server.engine.slot_count())
        .map(|_| SlotSweep { position: 0, freed_this_pass: 0, next_pass: Instant::now() })
        .collect();
    loop {
        ticker.tick().await;
        if server.shutting_down() {
            return;
        }
        // Runs on a runtime worker: skip the tick while a long command runs (`gate`).
        let Some(_inline) = server.gate.try_inline() else { continue };
        // Skip a tick rather than block a worker while EXEC or a script holds the lock exclusively.
        let Ok(_shared) = server.command_lock.try_read() else { continue };
        for (index, sweep) in sweeps.iter_mut().enumerate() {
            let mut slot = server.engine.lock_slot(index);
            if sweep.position == 0 {
                let has_hidden =
                    slot.meta().key_counts.iter().any(|(db, n)| crate::elements::is_hidden_db(*db) && *n > 0);
                if !has_hidden || Instant::now() < sweep.next_pass {
                    continue;
                }
            }
            match crate::elements::sweep_slot(&mut slot, sweep.position, SWEEP_BUDGET) {
                Ok((next, freed)) => {
                    sweep.position = next;
                    sweep.freed_this_pass += freed;
                    if freed > 0 {
                        tracing::debug!(slot = index, freed, "freed parts of deleted collections");
                    }
                    if next == 0 {
                        let pause = if sweep.freed_this_pass > 0 { Duration::ZERO } else { SWEEP_IDLE_PAUSE };
                        sweep.next_pass = Instant::now() + pause;
                        sweep.freed_this_pass = 0;
                    }
                }
                Err(error) => tracing::error!(%error, slot = index, "part sweep failed"),
            }
        }
    }
}
