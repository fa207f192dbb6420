//! The storage engine: a data directory of slots, each a WAL over key buckets over chunk segments.
//!
//! Synchronous and free of any network or async runtime, so that `velo serve` and every offline tool open
//! data the same way. The design is ARCHITECTURE.md §3–§5; the bytes are docs/format.md; the crash story
//! is docs/recovery.md.
//!
//! # Layout
//! - [`error`]: the engine's error enum (file and offset on every corruption).
//! - [`io`]: the file-system trait with the real backend and a crash-simulating one for tests.
//! - [`mod@format`]: file headers, magics, CRC and a bounds-checked byte reader.
//! - [`key`]: key → hash slot → internal slot → key hash.
//! - [`envelope`]: the value envelope (type, encoding, dictionary id) and compression.
//! - [`wal`]: the write-ahead log codec, writer, group commit and replay.
//! - [`page`]: the 4 KiB key-bucket page and its cells.
//! - [`buckets`]: linear-hashing table of bucket pages with overflow chains and a page cache.
//! - [`segment`]: chunk files of segments, big-value files, and the value cache.
//! - [`meta`]: data-directory metadata, slot metadata and the directory lock.
//! - [`dwb`]: the double-write batch that makes a checkpoint's in-place page writes atomic.
//! - [`slot`]: one slot: the three layers tied together (read path, write path, checkpoint, recovery).
//! - [`txn`]: transactions: writes to several slots (or several batches) durable all or nothing.
//!
//! Concurrency: each slot sits behind its own mutex (one owner at a time); [`Engine`] methods lock the slot
//! a key routes to. A caller that needs several operations to be atomic takes [`Engine::lock_slot`].

pub mod buckets;
pub mod bulk;
mod cache;
mod checkpoint;
pub mod dictionary;
pub mod dwb;
pub mod envelope;
pub mod error;
pub mod family;
pub mod format;
mod group;
pub mod heap;
pub mod io;
pub mod key;
mod memlayers;
#[cfg(test)]
mod memory_probe;
mod memtable;
pub mod meta;
pub mod page;
pub mod radix;
pub mod recode;
pub mod segment;
pub mod slot;
pub mod snapshot;
mod sweep_gate;
pub mod train;
pub mod txn;
pub mod wal;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;

pub use bulk::BulkLoad;
pub use envelope::{CompressionPolicy, DictionaryMap, StringEncoding, ValueKind};
pub use error::{Error, Result};
pub use slot::{Encoded, Slot, SlotStats};
pub use txn::Transaction;

use io::{FileSystem, RealFs};
use meta::{DataDirMeta, DirLock};

/// When the WAL is made durable, as Redis's `appendfsync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FsyncPolicy {
    /// fsync before acknowledging; concurrent writers share one fsync (group commit).
    Always,
    /// fsync once a second in the background (default): a crash loses at most the last second.
    EverySec,
    /// Leave it to the operating system.
    No,
}

impl FromStr for FsyncPolicy {
    type Err = String;
    fn from_str(text: &str) -> std::result::Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "always" => Ok(FsyncPolicy::Always),
            "everysec" => Ok(FsyncPolicy::EverySec),
            "no" => Ok(FsyncPolicy::No),
            other => Err(format!("invalid fsync policy '{other}': expected always, everysec or no")),
        }
    }
}

/// The engine's current [`FsyncPolicy`], shared by its slots, its transaction log and its sync thread, so
/// that `CONFIG SET appendfsync` takes effect with the next write.
#[derive(Debug)]
pub(crate) struct FsyncCell(std::sync::atomic::AtomicU8);

impl FsyncCell {
    pub(crate) fn new(policy: FsyncPolicy) -> FsyncCell {
        FsyncCell(std::sync::atomic::AtomicU8::new(policy as u8))
    }

    /// The policy now in force.
    pub(crate) fn get(&self) -> FsyncPolicy {
        match self.0.load(std::sync::atomic::Ordering::Acquire) {
            0 => FsyncPolicy::Always,
            1 => FsyncPolicy::EverySec,
            _ => FsyncPolicy::No,
        }
    }

    fn set(&self, policy: FsyncPolicy) {
        self.0.store(policy as u8, std::sync::atomic::Ordering::Release);
    }
}

impl std::fmt::Display for FsyncPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FsyncPolicy::Always => "always",
            FsyncPolicy::EverySec => "everysec",
            FsyncPolicy::No => "no",
        })
    }
}

/// Milliseconds since the Unix epoch, from the system clock.
pub fn system_clock_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// A source of "now" in Unix milliseconds (replaceable in tests).
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// How to open a data directory.
#[derive(Clone)]
pub struct EngineOptions {
    /// Slot count for a new directory (power of two, 1..=1024). When opening an existing directory, `Some(n)`
    /// must match what it was created with; `None` accepts whatever it has (tools).
    pub slot_count: Option<u32>,
    /// WAL durability policy.
    pub fsync: FsyncPolicy,
    /// Byte bound of the key-bucket page cache (all slots together).
    pub page_cache_bytes: usize,
    /// Byte bound of the value (decoded segment) cache (all slots together).
    pub value_cache_bytes: usize,
    /// Unflushed WAL bytes per slot that trigger a checkpoint into buckets and segments; `None` derives it
    /// from a 192 MiB budget shared by all slots. A larger budget means fewer page rewrites per write.
    pub wal_flush_bytes: Option<usize>,
    /// Target payload size of a chunk segment.
    pub segment_size: usize,
    /// Largest envelope stored inline in a bucket cell.
    pub inline_max: usize,
    /// When values are compressed.
    pub compression: CompressionPolicy,
    /// Open for inspection only: no lock, no writes, no recovery side effects.
    pub read_only: bool,
    /// The file system (the real one, or a fault-injecting one in tests).
    pub fs: Arc<dyn FileSystem>,
    /// Now, in Unix milliseconds.
    pub clock: Clock,
    /// Told of every applied change, in sequence order per slot (the replication binlog hooks in here).
    pub change_listener: Option<Arc<dyn ChangeListener>>,
    /// Told of every key removed because it expired. With a listener, a read that finds an expired key
    /// also deletes it then (Redis's lazy expiry), so that each expiry is reported once, when found.
    pub expire_listener: Option<Arc<dyn ExpireListener>>,
    /// Start the background thread that drives `everysec` fsyncs.
    pub background_sync: bool,
    /// Threads that prepare checkpoints off the slots' locks, shared by all slots (one slot has at most one
    /// checkpoint in flight, so more threads than slots are idle); 0: checkpoints run on the writing
    /// thread. Default 2.
    pub checkpoint_threads: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            slot_count: None,
            fsync: FsyncPolicy::EverySec,
            page_cache_bytes: 32 << 20,
            value_cache_bytes: 32 << 20,
            wal_flush_bytes: None,
            segment_size: 4096,
            inline_max: 64,
            compression: CompressionPolicy::default(),
            read_only: false,
            fs: Arc::new(RealFs),
            clock: Arc::new(system_clock_ms),
            change_listener: None,
            expire_listener: None,
            background_sync: true,
            checkpoint_threads: 2,
        }
    }
}

impl std::fmt::Debug for EngineOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineOptions")
            .field("slot_count", &self.slot_count)
            .field("fsync", &self.fsync)
            .field("page_cache_bytes", &self.page_cache_bytes)
            .field("value_cache_bytes", &self.value_cache_bytes)
            .field("read_only", &self.read_only)
            .finish_non_exhaustive()
    }
}

/// Default slot count of a new data directory.
pub const DEFAULT_SLOT_COUNT: u32 = 8;

/// A live key's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its Redis type.
    pub kind: ValueKind,
    /// The value bytes (decoded, decompressed).
    pub value: Bytes,
    /// Absolute expiry in Unix milliseconds, if any.
    pub expire_at_ms: Option<u64>,
    /// A string's Redis encoding history (`Content` for every other kind).
    pub string_encoding: StringEncoding,
}

/// A live key's metadata, found without reading its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyInfo {
    /// Its Redis type.
    pub kind: ValueKind,
    /// Absolute expiry in Unix milliseconds, if any.
    pub expire_at_ms: Option<u64>,
}

/// One write of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOp {
    /// Set a key.
    Set {
        /// Database number.
        db: u16,
        /// The key.
        key: Vec<u8>,
        /// Value type.
        kind: ValueKind,
        /// The value.
        value: Vec<u8>,
        /// Absolute expiry in Unix milliseconds.
        expire_at_ms: Option<u64>,
    },
    /// Set a key to a string whose Redis encoding is not its content's ([`StringEncoding`]).
    SetString {
        /// Database number.
        db: u16,
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
        /// How Redis would hold it.
        encoding: StringEncoding,
        /// Absolute expiry in Unix milliseconds.
        expire_at_ms: Option<u64>,
    },
    /// Delete a key.
    Delete {
        /// Database number.
        db: u16,
        /// The key.
        key: Vec<u8>,
    },
}

/// A change applied to a slot, as the change feed reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change<'a> {
    /// A key was set; `envelope` is the encoded value (docs/format.md §"Value envelope").
    Set {
        /// Database number.
        db: u16,
        /// The key.
        key: &'a [u8],
        /// The encoded value.
        envelope: &'a [u8],
        /// Absolute expiry, 0 for none.
        expire_at_ms: u64,
    },
    /// A key was deleted.
    Delete {
        /// Database number.
        db: u16,
        /// The key.
        key: &'a [u8],
    },
    /// A key's expiry changed (0 = persist).
    Expire {
        /// Database number.
        db: u16,
        /// The key.
        key: &'a [u8],
        /// Absolute expiry, 0 for none.
        expire_at_ms: u64,
    },
    /// One database was emptied.
    FlushDb {
        /// Database number.
        db: u16,
    },
    /// Every database was emptied.
    FlushAll,
}

/// Receives every change applied to the engine (called under the slot's lock, in sequence order).
pub trait ChangeListener: Send + Sync {
    /// Called once per applied change.
    fn on_change(&self, slot: usize, seq: u64, change: &Change<'_>);
}

/// Receives the keys removed because they expired (by the active-expire cycle or found on access), called
/// under the slot's lock right after the removal was written: the server publishes `expired` events.
pub trait ExpireListener: Send + Sync {
    /// Called once per expired key removed (any database, hidden ones included).
    fn on_expired(&self, db: u16, key: &[u8]);

    /// False while expired keys that reads find must stay stored (reported missing, not deleted): Redis
    /// 7.0 keeps them during a CLIENT PAUSE and expires them when it ends.
    fn deletes_now(&self) -> bool {
        true
    }
}

/// One page of a SCAN: the cursor to continue from (0 when done) and the keys found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanPage {
    /// Cursor for the next call; 0 when the scan is complete.
    pub cursor: u64,
    /// The keys, with their database number.
    pub keys: Vec<(u16, Vec<u8>)>,
}

/// Bits of a scan cursor that address a position inside a slot.
const SCAN_POSITION_BITS: u32 = 54;

/// Engine-wide figures for INFO and metrics.
#[derive(Debug, Clone, Default)]
pub struct EngineStats {
    /// One entry per slot.
    pub slots: Vec<SlotStats>,
}

impl EngineStats {
    /// Sum of one field over all slots.
    pub fn total(&self, field: impl Fn(&SlotStats) -> u64) -> u64 {
        self.slots.iter().map(field).sum()
    }
}

struct SyncThread {
    stop: Arc<(Mutex<bool>, Condvar)>,
    handle: JoinHandle<()>,
}

/// An open data directory. `Send + Sync`: share it behind an `Arc`.
pub struct Engine {
    dir: PathBuf,
    meta: DataDirMeta,
    slots: Vec<Arc<Mutex<Slot>>>,
    options: EngineOptions,
    sync_thread: Option<SyncThread>,
    transactions: Arc<txn::TxRegistry>,
    /// This engine's key in `group` (its slots' shared configuration's address).
    group_key: usize,
    dictionaries: Arc<DictionaryMap>,
    trainer: Mutex<Option<train::Trainer>>,
    /// The WAL policy now in force (starts as `options.fsync`).
    fsync: Arc<FsyncCell>,
    /// The checkpoint threads (`checkpoint::Checkpointer`) and their handles.
    checkpointer: Option<(Arc<checkpoint::Checkpointer>, Vec<JoinHandle<()>>)>,
    _lock: Option<DirLock>,
}

/// Exclusive access to one slot, for callers that need several operations to be atomic (read-modify-write
/// commands, transactions). With `fsync always`, dropping the guard waits until its writes are durable.
pub struct SlotGuard<'a> {
    slot: MutexGuard<'a, Slot>,
}

impl std::ops::Deref for SlotGuard<'_> {
    type Target = Slot;
    fn deref(&self) -> &Slot {
        &self.slot
    }
}

impl std::ops::DerefMut for SlotGuard<'_> {
    fn deref_mut(&mut self) -> &mut Slot {
        &mut self.slot
    }
}

impl SlotGuard<'_> {
    /// Releases the slot and, under `fsync always`, waits until everything written through it is durable.
    pub fn commit(self) -> Result<()> {
        if txn::in_transaction() {
            // The transaction's commit waits for all of it at once.
            return Ok(());
        }
        let waiter = self.slot.durability_waiter();
        drop(self.slot);
        waiter.wait()
    }
}

impl Engine {
    /// Creates or opens the data directory at `dir`.
    pub fn open(dir: impl AsRef<Path>, options: EngineOptions) -> Result<Engine> {
        let dir = dir.as_ref().to_path_buf();
        let fs = options.fs.clone();
        let lock = if options.read_only { None } else { Some(DirLock::acquire(fs.as_ref(), &dir)?) };
        let meta = DataDirMeta::open_or_create(fs.as_ref(), &dir, options.slot_count, options.read_only)?;
        if !options.read_only {
            snapshot::remove_leftovers(&dir);
        }
        // A bulk load interrupted by a crash is finished (it had committed) or removed, before any slot opens.
        bulk::recover(fs.as_ref(), &dir, options.read_only)?;
        let slot_count = meta.slot_count as usize;
        let fsync = Arc::new(FsyncCell::new(options.fsync));
        let (transactions, commits) =
            txn::TxRegistry::open(fs.clone(), &dir, slot_count, fsync.clone(), options.read_only)?;
        let transactions = Arc::new(transactions);
        let dictionaries =
            Arc::new(DictionaryMap::open(fs.clone(), &dir, options.read_only, options.compression.level)?);
        let wal_flush_bytes = options.wal_flush_bytes.unwrap_or_else(|| ((192usize << 20) / slot_count).max(4 << 20));
        let config = Arc::new(slot::SlotConfig {
            fs: fs.clone(),
            fsync: fsync.clone(),
            page_cache_bytes: (options.page_cache_bytes / slot_count).max(64 << 10),
            value_cache_bytes: (options.value_cache_bytes / slot_count).max(64 << 10),
            wal_flush_bytes,
            segment_size: options.segment_size.clamp(1024, 1 << 20),
            inline_max: options.inline_max.min(page::MAX_INLINE_ENVELOPE),
            compression: options.compression,
            read_only: options.read_only,
            clock: options.clock.clone(),
            change_listener: options.change_listener.clone(),
            expire_listener: options.expire_listener.clone(),
            dictionaries: dictionaries.clone(),
            transactions: transactions.clone(),
            checkpointer: (!options.read_only && options.checkpoint_threads > 0).then(checkpoint::Checkpointer::new),
        });
        let mut opened = Vec::with_capacity(slot_count);
        for index in 0..slot_count {
            opened.push(Slot::open(index, &dir.join(format!("slot-{index}")), config.clone())?);
        }
        // Which transactions committed is known only from every slot's WAL and the transaction log together.
        let replays: Vec<&[_]> = opened.iter().map(|(_, records)| records.as_slice()).collect();
        let checkpoint_seqs: Vec<u64> = opened.iter().map(|(slot, _)| slot.meta.checkpoint_seq).collect();
        let decisions = transactions.recover(commits, &replays, &checkpoint_seqs)?;
        let mut slots = Vec::with_capacity(slot_count);
        for (mut slot, records) in opened {
            slot.replay(records, &decisions)?;
            slots.push(Arc::new(Mutex::new(slot)));
        }
        transactions.set_wal_syncs(slots.iter().map(|slot| self::lock(slot).wal.sync_handle()).collect());
        let group_key = Arc::as_ptr(&config) as usize;
        let engine_threads = options.checkpoint_threads;
        let checkpointer = config.checkpointer.clone().map(|checkpointer| {
            let handles = checkpointer.start(&slots, engine_threads);
            (checkpointer, handles)
        });
        let mut engine = Engine {
            dir,
            meta,
            slots,
            options,
            sync_thread: None,
            transactions,
            group_key,
            dictionaries,
            trainer: Mutex::new(None),
            fsync,
            checkpointer,
            _lock: lock,
        };
        // Started whatever the policy: it syncs only while the policy is `everysec`, which CONFIG SET may
        // choose later.
        if engine.options.background_sync && !engine.options.read_only {
            engine.start_sync_thread();
        }
        Ok(engine)
    }

    /// The WAL policy now in force.
    pub fn fsync_policy(&self) -> FsyncPolicy {
        self.fsync.get()
    }

    /// Changes the WAL policy while the engine runs (`CONFIG SET appendfsync`): writes from now on follow
    /// it. Moving to `always` first makes everything written so far durable, so that every write
    /// acknowledged after the change survives a crash together with what came before it.
    pub fn set_fsync_policy(&self, policy: FsyncPolicy) -> Result<()> {
        let before = self.fsync.get();
        self.fsync.set(policy);
        if policy == FsyncPolicy::Always && before != FsyncPolicy::Always && !self.options.read_only {
            self.transactions.make_durable()?;
        }
        Ok(())
    }

    fn start_sync_thread(&mut self) {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let transactions = self.transactions.clone();
        let fsync = self.fsync.clone();
        let thread_stop = stop.clone();
        let handle = std::thread::Builder::new()
            .name("velo-wal-sync".into())
            .spawn(move || {
                let (flag, condvar) = &*thread_stop;
                let mut stopped = flag.lock().unwrap_or_else(|p| p.into_inner());
                while !*stopped {
                    let (guard, _) =
                        condvar.wait_timeout(stopped, Duration::from_secs(1)).unwrap_or_else(|p| p.into_inner());
                    stopped = guard;
                    if fsync.get() != FsyncPolicy::EverySec {
                        continue;
                    }
                    // Every WAL, then the transaction log. A failure poisons the slot inside the WAL sync;
                    // the writers report it.
                    if let Err(error) = transactions.make_durable() {
                        tracing::error!(%error, "background sync failed");
                    }
                }
            })
            .ok();
        if let Some(handle) = handle {
            self.sync_thread = Some(SyncThread { stop, handle });
        }
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Number of internal slots.
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// The data directory's creation id (random, fixed at creation).
    pub fn creation_id(&self) -> u64 {
        self.meta.creation_id
    }

    /// The internal slot a key routes to.
    pub fn slot_of(&self, key: &[u8]) -> usize {
        key::internal_slot(key::hash_slot(key), self.meta.slot_count)
    }

    /// The dictionary map shared by all slots.
    pub fn dictionaries(&self) -> Arc<DictionaryMap> {
        self.dictionaries.clone()
    }

    /// Installs a trained dictionary for a key family (durably, before any value uses it); new writes of
    /// the family use it. Returns its id.
    pub fn install_dictionary(&self, family: &[u8], dictionary: Vec<u8>) -> Result<u32> {
        self.dictionaries.install(family, dictionary)
    }

    /// Starts the background dictionary trainer (once; a no-op on a read-only open). Whether values are
    /// sampled and trained is then up to the settings in [`DictionaryMap::sampler`]. The same thread runs
    /// dictionary compaction ([`recode`]) after an install retires a dictionary.
    pub fn start_dictionary_training(&self) {
        let mut trainer = self.trainer.lock().unwrap_or_else(|p| p.into_inner());
        if trainer.is_none() && !self.options.read_only {
            let slots = self.slots.clone();
            let map = self.dictionaries.clone();
            let compact: train::Compactor = Box::new(move |stop| recode::run(&slots, &map, stop));
            *trainer = train::Trainer::spawn(self.dictionaries.clone(), self.options.compression.level, Some(compact));
        }
    }

    /// Dictionary compaction ([`recode`]): re-encodes every stored value that names a retired dictionary
    /// with its family's current one, commits that, and removes the retired dictionaries no value names.
    pub fn compact_dictionaries(&self) -> Result<recode::RecodeReport> {
        recode::run(&self.slots, &self.dictionaries, &|| false)
    }

    /// Opens a transaction on the calling thread: every write it makes, in any slot, until the
    /// transaction commits is durable all together or not at all (see [`txn`]). Nested calls join.
    pub fn transaction(&self) -> Transaction<'_> {
        Transaction::begin(self, &self.transactions)
    }

    /// Runs `work` with the calling thread's single-key WAL appends grouped (module `group`): they are
    /// written with one write per slot when `work` returns, and the second result says whether that
    /// succeeded. The caller must not acknowledge any write `work` made before it has that `Ok`; on an
    /// error the slots concerned are poisoned and the writes may be lost. A nested call joins the outer group.
    pub fn group_writes<T>(&self, work: impl FnOnce() -> T) -> (T, Result<()>) {
        if self.options.read_only || !group::open(self.group_key) {
            return (work(), Ok(()));
        }
        // Closes the group even if `work` panics, writing what it holds.
        struct Close<'a>(&'a Engine);
        impl Drop for Close<'_> {
            fn drop(&mut self) {
                for index in group::close() {
                    let _ = lock(&self.0.slots[index]).wal.write_held();
                }
            }
        }
        let close = Close(self);
        let value = work();
        std::mem::forget(close);
        let mut outcome = Ok(());
        for index in group::close() {
            let mut slot = lock(&self.slots[index]);
            let written = if slot.wal.holds_for_this_thread() {
                slot.wal.write_held()
            } else if slot.wal.sync_handle().is_poisoned() {
                // Another thread wrote this group's records out for it, and failed.
                Err(Error::Poisoned { slot: index, op: "WAL write" })
            } else {
                Ok(())
            };
            if let Err(error) = written {
                outcome = Err(error);
            }
        }
        (value, outcome)
    }

    /// Writes out what the calling thread's write group holds once it holds more than
    /// 4 MiB (`group::HELD_CAP`), keeping the group open (a script or EXEC of many large writes must not
    /// keep all its records in memory; see `group`). Call it only while holding no slot (between
    /// commands). An error poisons the slot concerned, and the group's close reports it too.
    pub fn write_group_if_over_cap(&self) -> Result<()> {
        if group::held_bytes(self.group_key) <= group::HELD_CAP {
            return Ok(());
        }
        self.write_group_now()
    }

    /// Writes out everything the calling thread's write group holds, keeping the group open: before a
    /// reply leaves by another way than the group's own pass (a blocked client served by this thread's
    /// write gets its reply from its own connection at once). Call it only while holding no slot. An
    /// error poisons the slot concerned, and the group's close reports it too.
    pub fn write_group_now(&self) -> Result<()> {
        for index in group::held_slots() {
            let mut slot = lock(&self.slots[index]);
            if slot.wal.holds_for_this_thread() {
                slot.wal.write_held()?;
            }
        }
        Ok(())
    }

    /// Bytes of WAL records the calling thread's write group holds, not yet written (an upper bound).
    pub fn group_held_bytes(&self) -> usize {
        group::held_bytes(self.group_key)
    }

    /// Registers a point-in-time snapshot of every slot ([`snapshot`]): the databases `dbs` will be read
    /// in that order; before-images beyond `ram_limit` bytes spill to a file in the data directory.
    /// Writers are held off only while every slot lock is taken once. One snapshot at a time.
    pub fn snapshot(&self, dbs: &[u16], ram_limit: usize) -> Result<snapshot::Snapshot> {
        snapshot::Snapshot::register(&self.slots, &self.dir, dbs, ram_limit)
    }

    /// True when no slot holds a key (in any database, hidden ones included): a bulk load can then build
    /// every slot afresh. Slots with unflushed writes are checkpointed first, so that their count is known.
    pub fn is_empty_for_bulk(&self) -> Result<bool> {
        for slot in &self.slots {
            let mut slot = lock(slot);
            if !slot.memtable.is_empty() || !slot.wal.is_empty() {
                slot.checkpoint()?;
            }
            if !slot.is_bulk_empty() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Starts a bulk load (see [`bulk`]): its writes are staged beside the slots and become visible, all
    /// at once, with [`Engine::commit_bulk`]. Meant for an engine no one else writes to (the offline
    /// tools) whose slots are empty ([`Engine::is_empty_for_bulk`]); the commit checks again.
    pub fn bulk_load(&self) -> Result<BulkLoad> {
        if self.options.read_only {
            return Err(Error::Config("a read-only engine takes no bulk load".into()));
        }
        let bases = self.slots.iter().map(|slot| lock(slot).meta.clone()).collect();
        let (compression, inline_max, segment_size) = {
            let slot = lock(&self.slots[0]);
            (slot.config.compression, slot.config.inline_max, slot.config.segment_size)
        };
        BulkLoad::begin(self.options.fs.clone(), &self.dir, bases, compression, inline_max, segment_size)
    }

    /// Builds the staged load's pages, then publishes it with one atomic commit point and reloads the
    /// slots it filled. A crash before the commit point leaves the directory as it was; after it, the
    /// next open finishes the load. An error after the commit point poisons the slots involved (a restart
    /// finishes the load).
    pub fn commit_bulk(&self, mut load: BulkLoad) -> Result<()> {
        let plan = load.build()?;
        let mut guards: Vec<SlotGuard<'_>> = (0..self.slots.len()).map(|index| self.lock_slot(index)).collect();
        for (slot, _, _) in &plan.slots {
            if !guards[*slot as usize].is_bulk_empty() {
                return Err(Error::Config(format!("slot {slot} was written during the bulk load; nothing was loaded")));
            }
        }
        load.set_committed();
        if let Err(error) = bulk::publish(self.options.fs.as_ref(), &self.dir, &plan) {
            for (slot, _, _) in &plan.slots {
                guards[*slot as usize].poisoned = Some("bulk load");
            }
            return Err(error);
        }
        for (slot, seq, _) in &plan.slots {
            let guard = &mut guards[*slot as usize];
            if let Err(error) = guard.reload_after_bulk() {
                guard.poisoned = Some("bulk load");
                return Err(error);
            }
            self.transactions.note_checkpoint(*slot as usize, *seq);
        }
        Ok(())
    }

    /// Exclusive access to one slot (by index). Lock several in ascending order to avoid deadlocks.
    pub fn lock_slot(&self, index: usize) -> SlotGuard<'_> {
        SlotGuard { slot: lock(&self.slots[index]) }
    }

    /// Exclusive access to the slot owning `key`.
    pub fn lock_key(&self, key: &[u8]) -> SlotGuard<'_> {
        self.lock_slot(self.slot_of(key))
    }

    fn with_key<T>(&self, key: &[u8], op: impl FnOnce(&mut Slot) -> Result<T>) -> Result<T> {
        let guard = self.lock_key(key);
        self.finish(guard, op)
    }

    /// A read: no durability wait (as in Redis, a read may see a write whose fsync is still running; the
    /// writer is only told once it is durable).
    fn read_key<T>(&self, key: &[u8], op: impl FnOnce(&mut Slot) -> Result<T>) -> Result<T> {
        let mut guard = self.lock_key(key);
        op(&mut guard)
    }

    fn finish<T>(&self, mut guard: SlotGuard<'_>, op: impl FnOnce(&mut Slot) -> Result<T>) -> Result<T> {
        let result = op(&mut guard);
        let committed = guard.commit();
        let value = result?;
        committed?;
        Ok(value)
    }

    /// The live value of a key.
    pub fn get(&self, db: u16, key: &[u8]) -> Result<Option<Entry>> {
        self.read_key(key, |slot| slot.get(db, key))
    }

    /// A live key's type and expiry, without reading its value.
    pub fn key_info(&self, db: u16, key: &[u8]) -> Result<Option<KeyInfo>> {
        self.read_key(key, |slot| slot.key_info(db, key))
    }

    /// True if the key is live.
    pub fn exists(&self, db: u16, key: &[u8]) -> Result<bool> {
        Ok(self.key_info(db, key)?.is_some())
    }

    /// Encodes a value to be written under `key` as [`Slot::set`] would, before the slot is locked (for
    /// [`Slot::set_encoded`]): a dictionary compression costs about a microsecond, which the other writers
    /// of the slot would otherwise wait through.
    pub fn encode_value(&self, kind: ValueKind, key: &[u8], value: &[u8]) -> Encoded {
        let generation = self.dictionaries.generation();
        let envelope = self.dictionaries.encode(kind, key, value, self.options.compression);
        Encoded { envelope, generation }
    }

    /// Sets a key (replacing any value and expiry).
    pub fn set(&self, db: u16, key: &[u8], kind: ValueKind, value: &[u8], expire_at_ms: Option<u64>) -> Result<()> {
        self.with_key(key, |slot| slot.set(db, key, kind, value, expire_at_ms))
    }

    /// Deletes a key; true if it was live.
    pub fn delete(&self, db: u16, key: &[u8]) -> Result<bool> {
        self.with_key(key, |slot| slot.delete(db, key))
    }

    /// Sets (Some) or removes (None) a live key's expiry; false if the key is not live.
    pub fn set_expiry(&self, db: u16, key: &[u8], expire_at_ms: Option<u64>) -> Result<bool> {
        self.with_key(key, |slot| slot.set_expiry(db, key, expire_at_ms))
    }

    /// Applies a batch of writes (bulk loaders): one WAL append per slot touched.
    pub fn write_batch(&self, ops: Vec<BatchOp>) -> Result<()> {
        let mut per_slot: Vec<Vec<BatchOp>> = vec![Vec::new(); self.slots.len()];
        for op in ops {
            let key = match &op {
                BatchOp::Set { key, .. } | BatchOp::SetString { key, .. } | BatchOp::Delete { key, .. } => key,
            };
            per_slot[self.slot_of(key)].push(op);
        }
        for (index, ops) in per_slot.into_iter().enumerate() {
            if !ops.is_empty() {
                let guard = self.lock_slot(index);
                self.finish(guard, |slot| slot.write_batch(ops))?;
            }
        }
        Ok(())
    }

    /// One step of a resumable scan over all slots. Start with cursor 0; a returned cursor of 0 means done.
    /// Every key live for the whole scan is returned exactly once; `db` restricts it to one database.
    pub fn scan(&self, db: Option<u16>, cursor: u64, count: usize) -> Result<ScanPage> {
        let mut slot_index = (cursor >> SCAN_POSITION_BITS) as usize;
        let mut position = cursor & ((1 << SCAN_POSITION_BITS) - 1);
        let mut page = ScanPage::default();
        while slot_index < self.slots.len() {
            let want = count.max(1).saturating_sub(page.keys.len()).max(1);
            let next = lock(&self.slots[slot_index]).scan(db, position, want, &mut page.keys)?;
            match next {
                Some(next_position) => {
                    page.cursor = ((slot_index as u64) << SCAN_POSITION_BITS) | next_position;
                    return Ok(page);
                }
                None => {
                    slot_index += 1;
                    position = 0;
                    if page.keys.len() >= count.max(1) && slot_index < self.slots.len() {
                        page.cursor = (slot_index as u64) << SCAN_POSITION_BITS;
                        return Ok(page);
                    }
                }
            }
        }
        page.cursor = 0;
        Ok(page)
    }

    /// A random live key of a database (RANDOMKEY), or `None` if it has none. `random` is any random u64:
    /// it picks a position in scan order, and the key is drawn from the bucket found there, so a key's
    /// chance depends on how full its bucket is (as with Redis's random bucket pick), not on the order of
    /// keys.
    pub fn random_key(&self, db: u16, random: u64) -> Result<Option<Vec<u8>>> {
        if self.dbsize(db)? == 0 {
            return Ok(None);
        }
        let slot = random % self.slots.len() as u64;
        let position = random.rotate_right(17) & ((1 << SCAN_POSITION_BITS) - 1);
        let start = (slot << SCAN_POSITION_BITS) | position;
        let mut cursor = start;
        let mut wrapped = false;
        loop {
            let page = self.scan(Some(db), cursor, 1)?;
            if !page.keys.is_empty() {
                let pick = (random >> 40) as usize % page.keys.len();
                return Ok(page.keys.into_iter().nth(pick).map(|(_, key)| key));
            }
            if page.cursor == 0 {
                if wrapped {
                    return Ok(None);
                }
                wrapped = true;
                cursor = 0;
                continue;
            }
            cursor = page.cursor;
            if wrapped && cursor >= start {
                // Every key counted by DBSIZE has expired since.
                return Ok(None);
            }
        }
    }

    /// Number of keys in a database (keys past their expiry count until removed, as in Redis).
    pub fn dbsize(&self, db: u16) -> Result<u64> {
        let mut total = 0;
        for slot in &self.slots {
            total += lock(slot).key_count(db)?;
        }
        Ok(total)
    }

    /// Keys of `db` with an expiry (estimated, see [`Slot::expiry_estimate`]) and their average remaining
    /// time in milliseconds (INFO keyspace's `expires` and `avg_ttl`).
    pub fn expiry_estimate(&self, db: u16) -> (u64, u64) {
        let (mut count, mut ttl) = (0u64, 0u128);
        for slot in &self.slots {
            let (c, t) = lock(slot).expiry_estimate(db);
            count += c;
            ttl += t;
        }
        let average = if count > 0 { (ttl / u128::from(count)) as u64 } else { 0 };
        (count, average)
    }

    /// Empties one database.
    pub fn flush_db(&self, db: u16) -> Result<()> {
        for index in 0..self.slots.len() {
            let guard = self.lock_slot(index);
            self.finish(guard, |slot| slot.flush_db(db))?;
        }
        Ok(())
    }

    /// Empties every database.
    pub fn flush_all(&self) -> Result<()> {
        for index in 0..self.slots.len() {
            let guard = self.lock_slot(index);
            self.finish(guard, |slot| slot.flush_all())?;
        }
        Ok(())
    }

    /// Removes up to `budget` expired keys per slot; returns how many were removed. The server calls this
    /// periodically (Redis's active-expire cycle).
    pub fn active_expire(&self, budget: usize) -> Result<usize> {
        let mut removed = 0;
        for index in 0..self.slots.len() {
            let guard = self.lock_slot(index);
            removed += self.finish(guard, |slot| slot.active_expire(budget))?;
        }
        Ok(removed)
    }

    /// Makes every acknowledged write durable now (fsync of every WAL).
    pub fn sync(&self) -> Result<()> {
        self.transactions.make_durable()
    }

    /// Moves every slot's unflushed WAL entries into buckets and segments and empties the WALs.
    pub fn checkpoint(&self) -> Result<()> {
        for slot in &self.slots {
            lock(slot).checkpoint()?;
        }
        Ok(())
    }

    /// Starts a checkpoint (on the checkpoint threads) of every slot that took no write since the last call
    /// and whose memtable is large enough to be worth it (`Slot::checkpoint_idle`): the memtable's memory
    /// goes back once its data is in the files. `seen` holds each slot's next sequence number as of the
    /// last call (kept by the caller; empty on the first). Returns how many checkpoints it started.
    pub fn checkpoint_idle(&self, seen: &mut Vec<u64>) -> Result<usize> {
        seen.resize(self.slots.len(), 0);
        let mut started = 0;
        for (index, last) in seen.iter_mut().enumerate() {
            let guard = self.lock_slot(index);
            let next = guard.next_seq;
            if std::mem::replace(last, next) != next {
                continue;
            }
            if self.finish(guard, Slot::checkpoint_idle)? {
                started += 1;
            }
        }
        Ok(started)
    }

    /// Drops every slot's page and value caches (DEBUG RELOAD), so that later reads come from the files.
    pub fn drop_caches(&self) {
        for slot in &self.slots {
            lock(slot).drop_caches();
        }
    }

    /// Divides RAM budgets (bytes for all slots together) among the slots: page cache, value cache and,
    /// when given, the memtable bytes that trigger checkpoints (never above the default). Each slot keeps
    /// at least 64 KiB of each cache and 1 MiB of memtable.
    pub fn set_memory_budget(&self, page_cache: usize, value_cache: usize, memtable: Option<usize>) {
        let n = self.slots.len().max(1);
        for slot in &self.slots {
            lock(slot).set_memory_budget(
                (page_cache / n).max(64 << 10),
                (value_cache / n).max(64 << 10),
                memtable.map(|m| (m / n).max(1 << 20)),
            );
        }
    }

    /// Figures for INFO and metrics.
    pub fn stats(&self) -> EngineStats {
        EngineStats { slots: self.slots.iter().map(|slot| lock(slot).stats()).collect() }
    }

    /// Checkpoints every slot and releases the directory lock.
    pub fn close(mut self) -> Result<()> {
        self.stop_sync_thread();
        if !self.options.read_only {
            self.checkpoint()?;
        }
        Ok(())
    }

    fn stop_sync_thread(&mut self) {
        drop(self.trainer.lock().unwrap_or_else(|p| p.into_inner()).take());
        if let Some((checkpointer, handles)) = self.checkpointer.take() {
            checkpointer.stop();
            for handle in handles {
                let _ = handle.join();
            }
        }
        if let Some(thread) = self.sync_thread.take() {
            let (flag, condvar) = &*thread.stop;
            *flag.lock().unwrap_or_else(|p| p.into_inner()) = true;
            condvar.notify_all();
            let _ = thread.handle.join();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop_sync_thread();
        if !self.options.read_only {
            // Without a checkpoint the WAL still holds everything; make it durable before letting go.
            let _ = self.sync();
        }
    }
}

/// How long a thread spins on a held slot lock before sleeping on it. Kept short: on a busy machine the
/// holder may have lost its core, and then every µs of spin is lost (20 µs cost GET -P 16 a fifth more CPU
/// at load average 26).
const LOCK_SPIN: Duration = Duration::from_micros(4);
/// Pause instructions between two tries (a few hundred ns): reading the lock's cache line less often
/// leaves it to the holder.
const LOCK_SPIN_PAUSES: u32 = 16;

/// Takes a slot's mutex, spinning up to [`LOCK_SPIN`] before sleeping on it. The two runtime workers write
/// to the same few slots, and a writer holds a slot for a microsecond or two (a SET, a pass's WAL
/// `pwrite`): sleeping on the futex and being woken cost each side a system call and a context switch,
/// more than the wait. std's own spin (100 pauses, 1.5 µs here) is shorter than that. A holder that keeps
/// the slot longer (a checkpoint's install) still finds its waiters asleep after the spin.
fn acquire(slot: &Mutex<Slot>) -> MutexGuard<'_, Slot> {
    let mut spin_start = None;
    loop {
        match slot.try_lock() {
            Ok(guard) => return guard,
            // A panic while holding a slot leaves it poisoned for std; the slot's own state is still
            // consistent with its WAL, so carry on (the panic itself is reported by the thread that had it).
            Err(std::sync::TryLockError::Poisoned(poisoned)) => return poisoned.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                let start = *spin_start.get_or_insert_with(std::time::Instant::now);
                if start.elapsed() >= LOCK_SPIN {
                    break;
                }
                for _ in 0..LOCK_SPIN_PAUSES {
                    std::hint::spin_loop();
                }
            }
        }
    }
    slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn lock(slot: &Mutex<Slot>) -> MutexGuard<'_, Slot> {
    let mut guard = acquire(slot);
    // Records another thread's write group holds go to the OS before this thread can see them.
    guard.wal.write_foreign_held();
    guard
}
