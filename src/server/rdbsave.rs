//! SAVE and BGSAVE: the RDB snapshot written to `dbfilename` in `dir` (`velo serve --dbfilename`)
//! (temporary file, fsync, rename, so the previous file survives a failed or interrupted save), and the
//! `rdb_*` state INFO reports.
//!
//! Consistency: both write one instant of the data set. They register an engine snapshot
//! (`engine::snapshot`) while holding the server's command lock shared, so no transaction (EXEC) or
//! script is half applied, and every multi-key command holds its slots' locks, which the registration
//! takes. SAVE holds the command lock exclusively for the whole write (as Redis's SAVE blocks the
//! server); BGSAVE registers in the command's own thread (writers pause only while every slot lock is
//! taken once, reported as `snapshot_last_pause_us` in INFO velo) and writes the file in a
//! background thread while commands go on. A scheduled BGSAVE registers its snapshot under the command
//! lock too.
//!
//! `rdb_changes_since_last_save` counts engine changes (WAL records: one per key written, deleted or
//! expired; a command on a split collection also counts the parts it rewrote) since the instant of the
//! last successful save, or since start.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Instant;

use super::Server;
use crate::engine::snapshot::Snapshot;
use crate::rdb::export::{self, DumpOptions, DumpSummary};

/// Snapshot state.
pub struct RdbSaves {
    server: OnceLock<Weak<Server>>,
    in_progress: AtomicBool,
    scheduled: AtomicBool,
    last_ok: AtomicBool,
    last_seconds: AtomicI64,
    started: Mutex<Option<Instant>>,
    saves: AtomicU64,
    /// Sum of the slots' sequence numbers at the instant of the last successful save (or at start).
    saved_seq: AtomicU64,
    /// Before-image bytes the last BGSAVE captured (Redis's `rdb_last_cow_size`).
    last_cow: AtomicU64,
    /// Writers' pause when the last snapshot was registered, nanoseconds.
    last_pause_ns: AtomicU64,
    /// Keys written by the running save, and its before-image bytes so far.
    current_keys: AtomicU64,
    current: Mutex<Option<Arc<Snapshot>>>,
}

impl Default for RdbSaves {
    fn default() -> Self {
        RdbSaves {
            server: OnceLock::new(),
            in_progress: AtomicBool::new(false),
            scheduled: AtomicBool::new(false),
            last_ok: AtomicBool::new(true),
            last_seconds: AtomicI64::new(-1),
            started: Mutex::new(None),
            saves: AtomicU64::new(0),
            saved_seq: AtomicU64::new(0),
            last_cow: AtomicU64::new(0),
            last_pause_ns: AtomicU64::new(0),
            current_keys: AtomicU64::new(0),
            current: Mutex::new(None),
        }
    }
}

/// Why a save did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaveError {
    /// A background save is running.
    InProgress,
    /// Writing failed.
    Failed(String),
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A registered snapshot and what is needed to write it.
struct Pending {
    snapshot: Arc<Snapshot>,
    dbs: Vec<(u16, u16)>,
    options: DumpOptions,
    path: std::path::PathBuf,
}

/// A snapshot registered for a SYNC transfer, with what writing it needs.
pub struct TransferSnapshot {
    /// The snapshot.
    pub snapshot: Arc<Snapshot>,
    /// Logical and physical databases, in writing order.
    pub dbs: Vec<(u16, u16)>,
    /// What to write (every database, the function libraries, LZF).
    pub options: DumpOptions,
}

fn seq_sum(server: &Server) -> u64 {
    server.engine.stats().total(|slot| slot.last_seq)
}

impl RdbSaves {
    /// Records the server's own `Arc` (BGSAVE's thread needs one).
    pub fn attach(server: &Arc<Server>) {
        let _ = server.rdb.server.set(Arc::downgrade(server));
        server.rdb.saved_seq.store(seq_sum(server), Ordering::Relaxed);
        // A save a crash (kill -9) interrupted leaves its temporary file; the dump itself is intact.
        let (dir, name) = {
            let config = server.lock_config();
            (config.dir.clone(), config.dbfilename.clone())
        };
        let prefix = format!(".{name}.tmp-");
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with(&prefix) {
                    tracing::info!(path = %entry.path().display(), "removing the temporary file of an interrupted save");
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
    }

    /// True while a background save runs.
    pub fn in_progress(&self) -> bool {
        self.in_progress.load(Ordering::Acquire)
    }

    /// Waits until no background save runs (shutdown).
    pub fn wait_idle(&self) {
        while self.in_progress() {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Registers a snapshot of every database (the caller holds the command lock, shared or exclusive).
    fn register(server: &Server) -> Result<Pending, SaveError> {
        let path = {
            let config = server.lock_config();
            config.dir.join(&config.dbfilename)
        };
        let functions = server.rdb.function_codes(server);
        let options = DumpOptions {
            dbs: Vec::new(),
            pattern: None,
            databases: server.databases(),
            compress: true,
            functions,
            offline: false,
        };
        let (snapshot, dbs) = export::snapshot(&server.engine, &server.dbmap, &options).map_err(|error| {
            tracing::error!(%error, "cannot take a snapshot");
            SaveError::Failed(error.to_string())
        })?;
        server.rdb.last_pause_ns.store(snapshot.pause().as_nanos() as u64, Ordering::Relaxed);
        Ok(Pending { snapshot: Arc::new(snapshot), dbs, options, path })
    }

    /// The server's own `Arc`, for threads that outlive a command.
    pub fn server(&self) -> Option<Arc<Server>> {
        self.server.get().and_then(Weak::upgrade)
    }

    /// Takes the one snapshot a server writes at a time for a SYNC transfer (`server::fullsync`): false
    /// while a save or another transfer runs. INFO then reports a background save in progress, as Redis
    /// does while its child writes for a replica.
    pub fn claim(&self) -> bool {
        !self.in_progress.swap(true, Ordering::AcqRel)
    }

    /// Ends what [`RdbSaves::claim`] took; a BGSAVE SCHEDULEd meanwhile starts now.
    pub fn release(&self, server: &Server) {
        self.in_progress.store(false, Ordering::Release);
        if self.scheduled.swap(false, Ordering::AcqRel) {
            let _shared = server.command_lock.read().unwrap_or_else(|p| p.into_inner());
            if let Err(error) = self.bgsave(false) {
                tracing::error!(?error, "the scheduled background save did not start");
            }
        }
    }

    /// Registers a snapshot of every database for a SYNC transfer (the caller holds the claim and the
    /// command lock).
    pub fn register_transfer(&self, server: &Server) -> Result<TransferSnapshot, SaveError> {
        let Pending { snapshot, dbs, options, path: _ } = Self::register(server)?;
        Ok(TransferSnapshot { snapshot, dbs, options })
    }

    /// The function libraries' source code, as a save writes them.
    pub fn function_codes(&self, server: &Server) -> Vec<bytes::Bytes> {
        let functions = server.scripting.functions.lock().unwrap_or_else(|p| p.into_inner());
        functions.codes()
    }

    /// Writes the snapshot now, on this thread (SAVE: the caller holds the command lock exclusively).
    pub fn save(server: &Server) -> Result<DumpSummary, SaveError> {
        if server.rdb.in_progress() {
            return Err(SaveError::InProgress);
        }
        let pending = Self::register(server)?;
        Self::write(server, pending, false)
    }

    fn write(server: &Server, pending: Pending, background: bool) -> Result<DumpSummary, SaveError> {
        let Pending { snapshot, dbs, options, path } = pending;
        let instant_seq: u64 = snapshot.sequences().iter().sum();
        let rdb = &server.rdb;
        rdb.current_keys.store(0, Ordering::Relaxed);
        if background {
            *lock(&rdb.current) = Some(snapshot.clone());
        }
        let started = Instant::now();
        let result = export::write_snapshot_file(&snapshot, &dbs, &path, &options, &mut |keys| {
            rdb.current_keys.fetch_add(keys, Ordering::Relaxed);
        });
        if background {
            rdb.last_seconds.store(started.elapsed().as_secs() as i64, Ordering::Relaxed);
            rdb.last_cow.store(snapshot.stats().captured_bytes, Ordering::Relaxed);
            rdb.last_ok.store(result.is_ok(), Ordering::Relaxed);
            *lock(&rdb.current) = None;
        }
        match result {
            Ok(summary) => {
                rdb.saves.fetch_add(1, Ordering::Relaxed);
                rdb.last_ok.store(true, Ordering::Relaxed);
                rdb.saved_seq.store(instant_seq, Ordering::Relaxed);
                server.lastsave.store(crate::engine::system_clock_ms() / 1000, Ordering::Relaxed);
                let stats = snapshot.stats();
                tracing::info!(
                    keys = summary.total(),
                    path = %path.display(),
                    pause_us = snapshot.pause().as_micros() as u64,
                    captured_keys = stats.captured_keys,
                    captured_bytes = stats.captured_bytes,
                    spilled_bytes = stats.spilled_bytes,
                    capture_us = stats.capture_us,
                    write_ms = started.elapsed().as_millis() as u64,
                    "DB saved on disk"
                );
                Ok(summary)
            }
            Err(error) => {
                tracing::error!(%error, path = %path.display(), "RDB save failed");
                Err(SaveError::Failed(error.to_string()))
            }
        }
    }

    /// Starts a background save (the caller holds the command lock shared: the snapshot is registered
    /// here, before this returns); with `schedule`, one already running makes it run once more
    /// afterwards (`Ok(false)`: scheduled) instead of failing.
    pub fn bgsave(&self, schedule: bool) -> Result<bool, SaveError> {
        if self.in_progress.swap(true, Ordering::AcqRel) {
            if schedule {
                self.scheduled.store(true, Ordering::Release);
                return Ok(false);
            }
            return Err(SaveError::InProgress);
        }
        let Some(server) = self.server.get().and_then(Weak::upgrade) else {
            self.in_progress.store(false, Ordering::Release);
            return Err(SaveError::Failed("server not attached".into()));
        };
        let pending = match Self::register(&server) {
            Ok(pending) => pending,
            Err(error) => {
                self.last_ok.store(false, Ordering::Relaxed);
                self.in_progress.store(false, Ordering::Release);
                return Err(error);
            }
        };
        *lock(&self.started) = Some(Instant::now());
        let spawned = std::thread::Builder::new().name("velo-bgsave".into()).spawn(move || {
            background_priority();
            let mut pending = Some(pending);
            loop {
                if let Some(pending) = pending.take() {
                    let _ = Self::write(&server, pending, true);
                }
                if !server.rdb.scheduled.swap(false, Ordering::AcqRel) {
                    break;
                }
                // A scheduled save: its instant must not fall inside a transaction or script either.
                let registered = {
                    let _shared = server.command_lock.read().unwrap_or_else(|p| p.into_inner());
                    Self::register(&server)
                };
                match registered {
                    Ok(next) => {
                        *lock(&server.rdb.started) = Some(Instant::now());
                        pending = Some(next);
                    }
                    Err(_) => server.rdb.last_ok.store(false, Ordering::Relaxed),
                }
            }
            *lock(&server.rdb.started) = None;
            server.rdb.in_progress.store(false, Ordering::Release);
        });
        if let Err(error) = spawned {
            *lock(&self.started) = None;
            self.in_progress.store(false, Ordering::Release);
            return Err(SaveError::Failed(error.to_string()));
        }
        Ok(true)
    }

    /// INFO persistence's figures of the save in progress: `current_cow_size` (before-image bytes held
    /// so far) and `current_save_keys_processed`.
    pub fn current(&self) -> (u64, u64) {
        let cow = lock(&self.current).as_ref().map_or(0, |snapshot| snapshot.stats().captured_bytes);
        let keys = if self.in_progress() { self.current_keys.load(Ordering::Relaxed) } else { 0 };
        (cow, keys)
    }

    /// The `rdb_*` lines of INFO persistence (Redis 7.0's names), given the server.
    pub fn info(&self, server: &Server, lastsave: u64) -> String {
        let current = lock(&self.started).map_or(-1, |at| at.elapsed().as_secs() as i64);
        let changes = seq_sum(server).saturating_sub(self.saved_seq.load(Ordering::Relaxed));
        format!(
            "rdb_changes_since_last_save:{changes}\r\nrdb_bgsave_in_progress:{}\r\nrdb_last_save_time:{lastsave}\r\n\
             rdb_last_bgsave_status:{}\r\nrdb_last_bgsave_time_sec:{}\r\nrdb_current_bgsave_time_sec:{current}\r\n\
             rdb_saves:{}\r\nrdb_last_cow_size:{}\r\nrdb_last_load_keys_expired:0\r\nrdb_last_load_keys_loaded:0\r\n",
            u8::from(self.in_progress()),
            if self.last_ok.load(Ordering::Relaxed) { "ok" } else { "err" },
            self.last_seconds.load(Ordering::Relaxed),
            self.saves.load(Ordering::Relaxed),
            self.last_cow.load(Ordering::Relaxed),
        )
    }

    /// How long writers were held off to register the last snapshot, in µs (INFO velo's
    /// `snapshot_last_pause_us`; Redis has no such field, so it is not in INFO persistence).
    pub fn last_pause_us(&self) -> f64 {
        self.last_pause_ns.load(Ordering::Relaxed) as f64 / 1000.0
    }
}

/// Nice value of the BGSAVE thread: the save yields the CPU to the threads serving commands when they
/// compete for it (Redis's forked child competes as an equal; here the writers come first and the save
/// takes longer on a busy machine, holding its before-images a little longer).
const BGSAVE_NICE: libc::c_int = 10;

/// Lowers the calling thread's scheduling priority to [`BGSAVE_NICE`] (Linux sets a nice value per
/// thread); on failure the save runs at the normal priority.
fn background_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain system calls on the calling thread's own id; no memory is passed.
        let result = unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, tid, BGSAVE_NICE)
        };
        if result != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "could not lower the save thread's priority");
        }
    }
}
