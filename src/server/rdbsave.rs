//! SAVE and BGSAVE: the RDB snapshot written to `dbfilename` in `dir` (`velo serve --dbfilename`) (temporary file, fsync, rename, so
//! the previous file survives a failed or interrupted save), and the `rdb_*` state INFO reports.
//!
//! Consistency: SAVE runs under the server's command lock held exclusively (no command runs meanwhile),
//! so its file is a point-in-time snapshot. BGSAVE runs in a background thread while commands go on and
//! reads each key under its slot lock: every key is consistent, but the file is **not** one instant
//! across keys (a key written during the save may or may not be in it).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Instant;

use super::Server;
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

impl RdbSaves {
    /// Records the server's own `Arc` (BGSAVE's thread needs one).
    pub fn attach(server: &Arc<Server>) {
        let _ = server.rdb.server.set(Arc::downgrade(server));
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

    /// Writes the snapshot now, on this thread.
    pub fn save(server: &Server) -> Result<DumpSummary, SaveError> {
        if server.rdb.in_progress() {
            return Err(SaveError::InProgress);
        }
        Self::write(server)
    }

    fn write(server: &Server) -> Result<DumpSummary, SaveError> {
        let path = {
            let config = server.lock_config();
            config.dir.join(&config.dbfilename)
        };
        let options = DumpOptions { dbs: Vec::new(), pattern: None, databases: server.databases(), compress: true };
        let started = Instant::now();
        let result = export::write_file(&server.engine, &server.dbmap, &path, &options, &mut |_| {});
        server.rdb.last_seconds.store(started.elapsed().as_secs() as i64, Ordering::Relaxed);
        server.rdb.last_ok.store(result.is_ok(), Ordering::Relaxed);
        match result {
            Ok(summary) => {
                server.rdb.saves.fetch_add(1, Ordering::Relaxed);
                server.lastsave.store(crate::engine::system_clock_ms() / 1000, Ordering::Relaxed);
                tracing::info!(keys = summary.total(), path = %path.display(), "DB saved on disk");
                Ok(summary)
            }
            Err(error) => {
                tracing::error!(%error, path = %path.display(), "RDB save failed");
                Err(SaveError::Failed(error.to_string()))
            }
        }
    }

    /// Starts a background save; with `schedule`, one already running makes it run once more afterwards
    /// (`Ok(false)`: scheduled) instead of failing.
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
        *lock(&self.started) = Some(Instant::now());
        let spawned = std::thread::Builder::new().name("velo-bgsave".into()).spawn(move || {
            loop {
                let _ = Self::write(&server);
                if !server.rdb.scheduled.swap(false, Ordering::AcqRel) {
                    break;
                }
            }
            *lock(&server.rdb.started) = None;
            server.rdb.in_progress.store(false, Ordering::Release);
        });
        if let Err(error) = spawned {
            self.in_progress.store(false, Ordering::Release);
            return Err(SaveError::Failed(error.to_string()));
        }
        Ok(true)
    }

    /// The `rdb_*` lines of INFO persistence (Redis 7.0's names).
    pub fn info(&self, lastsave: u64) -> String {
        let current = lock(&self.started).map_or(-1, |at| at.elapsed().as_secs() as i64);
        format!(
            "rdb_changes_since_last_save:0\r\nrdb_bgsave_in_progress:{}\r\nrdb_last_save_time:{lastsave}\r\n\
             rdb_last_bgsave_status:{}\r\nrdb_last_bgsave_time_sec:{}\r\nrdb_current_bgsave_time_sec:{current}\r\n\
             rdb_saves:{}\r\nrdb_last_cow_size:0\r\nrdb_last_load_keys_expired:0\r\nrdb_last_load_keys_loaded:0\r\n",
            u8::from(self.in_progress()),
            if self.last_ok.load(Ordering::Relaxed) { "ok" } else { "err" },
            self.last_seconds.load(Ordering::Relaxed),
            self.saves.load(Ordering::Relaxed),
        )
    }
}
