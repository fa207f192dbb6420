//! The checkpoint: moves memtable entries into chunk segments and key buckets, compacts chunk files that
//! are mostly dead, splits buckets as the table fills, and then empties the WAL file it covered.
//!
//! Three phases (docs/recovery.md §"Checkpoints"):
//! - *Begin*, under the slot lock: the WAL rotates (see `wal`): appends go to the other file from now
//!   on, and the checkpoint covers exactly the records of the file it froze. The memtable is frozen with
//!   it (see `memlayers`: an O(1) swap; its entries are exactly those at or below the cut) and an empty
//!   one takes the writes; reads see both.
//! - *Prepare*, without the slot lock (on one of the engine's checkpoint threads, see [`Checkpointer`]), through
//!   its own handles on the slot's files: (1) new segments and big values are appended and fsynced;
//!   (2) every changed page and the new slot metadata go to the double-write batch, which is fsynced.
//!   None of it is visible to readers, which use the committed metadata: segments lie past the committed
//!   ends of chunk files, new pages past the committed table or in the batch.
//! - *Install*, under the slot lock: (3) the batch's pages (read back by the prepare) are staged in the
//!   slot's bucket store, which serves them from memory, the new metadata takes over in memory, files
//!   that died are deleted, and the frozen memtable is dropped (the entries written since the begin are
//!   in the active one already). No system call and nothing per memtable entry: O(pages) map inserts.
//! - *Tail* ([`Tail`]), without the lock again: the staged pages are written in place and `buckets` and
//!   `overflow` fsynced (the slot drops the staged copies when it learns the tail is done), (4) the
//!   metadata file is replaced atomically, the batch is emptied, and (5) the frozen WAL file is emptied;
//!   the frozen memtable is emptied and handed back to the slot for its next begin.
//!
//! Until (2) the old metadata and the WAL describe the data; once the batch is durable recovery installs
//! it (pages and metadata) whatever happened after, which is what lets the install change the slot before
//! the metadata file does. Any error poisons the slot: the WAL still holds everything, and a restart
//! recovers. Writers wait for a checkpoint only while it begins and installs, or when the memtable passes
//! twice its budget while one is in flight (back-pressure). A checkpoint that could not rotate (the other
//! WAL file still held records, after a crash) runs whole under the lock.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::buckets::{self, BucketStore, PageBuf, PageId};
use super::dwb::DwbWriter;
use super::envelope::ValueKind;
use super::error::{Error, Result};
use super::io::FileSystem;
use super::memlayers;
use super::memtable::{Memtable, KEY_INLINE};
use super::meta::{self, ChunkFileMeta, SlotMeta};
use super::page::{
    self, Cell, CellValue, Page, SegmentLocation, CELL_AREA, CELL_HEADER_LEN, PAGE_KIND_OVERFLOW, PAGE_KIND_PRIMARY,
};
use super::segment::{self, ChunkStore, SegmentWriter, CHUNK_FILE_MAX};
use super::slot::{MemEntry, MemEnvelope, MemKey, MemValue, Slot, SlotConfig};
use super::wal::WalReader;

/// The table splits a bucket while cells fill more than this share of the primary pages.
const SPLIT_FILL: f64 = 0.85;

/// A chunk file is compacted once less than this share of what was written to it is live.
const COMPACT_LIVE_SHARE: f64 = 0.65;

/// Memtable bytes from which a slot whose writes have stopped is checkpointed ([`Slot::checkpoint_idle`]):
/// a memtable this small costs less memory than its checkpoint's page writes are worth.
pub(crate) const IDLE_CHECKPOINT_BYTES: usize = 1 << 20;

/// Page cache of a checkpoint's own bucket store: each bucket is read about once.
const JOB_PAGE_CACHE: usize = 4 << 20;

/// A live record moving out of a chunk file being compacted: database, key, old location, ticket of its
/// new location in the segment writer.
type Relocation = (u16, Vec<u8>, SegmentLocation, usize);

/// A record read from a chunk file being compacted: sequence, database, key, envelope, location.
type StoredRecord = (u64, u16, Vec<u8>, Vec<u8>, SegmentLocation);

/// Where a memtable entry's value goes.
#[derive(Clone)]
enum Placement {
    Nothing,
    Inline(bytes::Bytes),
    Segment(usize),
    Big,
}

/// What a checkpoint's prepare needs of one frozen memtable entry (see `Job::prepare`): 64 bytes, the key
/// copied when it is short.
struct Item<'a> {
    reversed_hash: u64,
    seq: u64,
    expire_at: u64,
    key: ItemKey<'a>,
    /// The value of a set (`None` for a delete or a retime).
    envelope: Option<&'a MemEnvelope>,
    db: u16,
    /// The value's type, for a set.
    kind: ValueKind,
    op: ItemOp,
    prior: Option<bool>,
}

const _: () = assert!(std::mem::size_of::<Item<'static>>() == 64);

/// A key copied (up to [`KEY_INLINE`] bytes) or, when longer, borrowed from the memtable.
enum ItemKey<'a> {
    Inline(u8, [u8; KEY_INLINE]),
    Borrowed(&'a [u8]),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ItemOp {
    Set,
    Delete,
    Retime,
}

impl<'a> Item<'a> {
    fn new((key, entry): (&'a MemKey, &'a MemEntry)) -> Self {
        let (envelope, kind, op) = match &entry.value {
            MemValue::Set { kind, envelope } => (Some(envelope), *kind, ItemOp::Set),
            MemValue::Delete => (None, ValueKind::String, ItemOp::Delete),
            MemValue::Retime => (None, ValueKind::String, ItemOp::Retime),
        };
        let bytes = key.2.as_slice();
        let item_key = if bytes.len() <= KEY_INLINE {
            let mut inline = [0; KEY_INLINE];
            inline[..bytes.len()].copy_from_slice(bytes);
            ItemKey::Inline(bytes.len() as u8, inline)
        } else {
            ItemKey::Borrowed(bytes)
        };
        Item {
            reversed_hash: key.0,
            seq: entry.seq,
            expire_at: entry.expire_at,
            key: item_key,
            envelope,
            db: key.1,
            kind,
            op,
            prior: entry.prior,
        }
    }

    fn key(&self) -> &[u8] {
        match &self.key {
            ItemKey::Inline(len, bytes) => &bytes[..*len as usize],
            ItemKey::Borrowed(bytes) => bytes,
        }
    }
}

struct Batch {
    dwb: DwbWriter,
    segments: SegmentWriter,
    touched_chunks: Vec<u32>,
    new_files: bool,
    target_seq: u64,
    /// Pages at or past these numbers (buckets file, overflow file) are not part of the committed table:
    /// nothing references them until the new metadata is in place, so they are written directly instead
    /// of through the double-write batch.
    fresh_from: (u64, u64),
    /// Set once a page past `fresh_from` was written directly: those pages must be durable before the
    /// batch commits, since recovery installs the batch's metadata, which references them.
    fresh_written: bool,
}

/// A checkpoint between its begin and its install: what it covers and its own handles on the slot's files.
pub(crate) struct Job {
    dir: PathBuf,
    config: Arc<SlotConfig>,
    /// The committed metadata at the begin (the prepare builds the new one from it).
    meta: SlotMeta,
    buckets: BucketStore,
    chunks: ChunkStore,
    /// Opened at the begin, so that every handle the prepare writes through predates it (a simulated
    /// crash in the tests invalidates them all).
    dwb: Option<DwbWriter>,
    wal: WalReader,
    /// Bytes of the WAL the checkpoint covers (sizes compaction's share).
    wal_bytes: u64,
    /// The memtable frozen at the begin (the prepare reads it off the lock; `None` once the install took
    /// it).
    frozen: Option<Arc<Memtable>>,
    reset: bool,
    db_flush_pending: BTreeMap<u16, u64>,
    cleanup_buckets: BTreeSet<u64>,
    target_seq: u64,
    /// The WAL rotated at the begin: the install empties the frozen file only. Otherwise (the other file
    /// still held records, after a crash) the checkpoint ran under the lock and empties both.
    rotated: bool,
    /// The slot's `unflushed_txid` at the begin.
    txid: u64,
    big_values: u64,
    big_value_bytes: u64,
    began: Instant,
    /// Time the begin held the slot lock.
    begin_time: Duration,
}

/// A prepared checkpoint: durable in the double-write batch, waiting for its install.
pub(crate) struct Prepared {
    job: Job,
    /// The batch's pages, read back off the lock: the install stages them, the tail writes them in place.
    pages: Vec<(PageId, PageBuf)>,
    meta: SlotMeta,
    meta_bytes: Vec<u8>,
    batch: Batch,
    prepare_time: Duration,
    durable_time: Duration,
}

/// Where a checkpoint handed to the [`Checkpointer`] is.
enum Flight {
    Queued(Box<Job>),
    /// Being prepared by the thread.
    Running,
    Done(Box<Result<Prepared>>),
    /// Installed; the thread runs its [`Tail`] off the lock.
    Tailing,
    /// The tail's outcome, and the frozen memtable it emptied, for whoever holds the slot lock next.
    Finished(Result<()>, Option<Memtable>),
    Taken,
}

/// What an install leaves to run off the slot lock: the fsyncs that make the installed checkpoint's files
/// final (pages in place, the metadata file, the emptied batch, the emptied frozen WAL file). The
/// committed double-write batch already makes the checkpoint durable (recovery installs it again), so
/// readers and writers may go on meanwhile; the next checkpoint may not begin before it is done (it
/// reuses the batch file and rotates into the frozen WAL file), so the checkpoint stays in flight.
pub(crate) struct Tail {
    fs: Arc<dyn FileSystem>,
    buckets: BucketStore,
    dwb: DwbWriter,
    meta_path: PathBuf,
    meta_bytes: Vec<u8>,
    /// The frozen WAL file, to empty last.
    wal: WalReader,
    frozen: usize,
    /// The frozen memtable the install dropped: emptied here, off the lock, for the slot to reuse.
    memtable: Option<Arc<Memtable>>,
    /// The pages to write in place (the slot serves them from memory meanwhile, see
    /// [`BucketStore::stage_page`]).
    pages: Vec<(PageId, PageBuf)>,
}

impl Tail {
    fn run(mut self) -> (Result<()>, Option<Memtable>) {
        let outcome = self.sync();
        let spare = self.memtable.take().and_then(memlayers::emptied);
        // The emptied memtable's entries were allocated by the threads that wrote them.
        super::heap::released();
        (outcome, spare)
    }

    fn sync(&mut self) -> Result<()> {
        for (id, page) in std::mem::take(&mut self.pages) {
            self.buckets.write_page(id, &page)?;
        }
        self.buckets.sync()?;
        meta::write_atomically(self.fs.as_ref(), &self.meta_path, &self.meta_bytes)?;
        self.dwb.clear()?;
        self.wal.truncate(self.frozen)
    }
}

/// A checkpoint in flight: the slot and the checkpoint thread share it. Whoever holds the slot lock when
/// it is prepared installs it; a caller that needs it finished (a synchronous checkpoint, back-pressure)
/// prepares it itself if the thread has not started it, or waits.
pub(crate) struct InFlight {
    state: Mutex<Flight>,
    done: Condvar,
}

impl InFlight {
    fn state(&self) -> MutexGuard<'_, Flight> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True once the checkpoint can be finished without waiting (prepared, or its tail has run).
    pub(crate) fn is_prepared(&self) -> bool {
        matches!(*self.state(), Flight::Done(_) | Flight::Finished(..))
    }
}

/// The checkpoint threads' queue (slot index and checkpoint, oldest first) and its stop flag.
type Queue = (VecDeque<(usize, Arc<InFlight>)>, bool);

/// The engine's checkpoint threads: a small pool (`EngineOptions::checkpoint_threads`) that prepares the
/// slots' checkpoints off their locks, one per thread at a time. Under random keys the slots reach their
/// budgets together; with one thread their checkpoints queued and writers met the back-pressure. A slot
/// never has two checkpoints in flight (it begins one only once the last is finished), so the threads
/// never work on the same slot.
pub(crate) struct Checkpointer {
    queue: Mutex<Queue>,
    wake: Condvar,
    slots: OnceLock<Vec<Weak<Mutex<Slot>>>>,
}

impl Checkpointer {
    pub(crate) fn new() -> Arc<Checkpointer> {
        Arc::new(Checkpointer {
            queue: Mutex::new((VecDeque::new(), false)),
            wake: Condvar::new(),
            slots: OnceLock::new(),
        })
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts `threads` threads over the engine's slots.
    pub(crate) fn start(self: &Arc<Self>, slots: &[Arc<Mutex<Slot>>], threads: usize) -> Vec<JoinHandle<()>> {
        let _ = self.slots.set(slots.iter().map(Arc::downgrade).collect());
        (0..threads)
            .filter_map(|number| {
                let this = self.clone();
                std::thread::Builder::new().name(format!("velo-checkpoint-{number}")).spawn(move || this.run()).ok()
            })
            .collect()
    }

    /// Asks the threads to stop; checkpoints not yet started stay with their slots (a synchronous
    /// checkpoint finishes them; without one the WAL keeps their records).
    pub(crate) fn stop(&self) {
        self.queue().1 = true;
        self.wake.notify_all();
    }

    fn submit(&self, slot: usize, flight: Arc<InFlight>) {
        self.queue().0.push_back((slot, flight));
        self.wake.notify_all();
    }

    fn run(&self) {
        loop {
            let (index, flight) = {
                let mut queue = self.queue();
                loop {
                    if queue.1 {
                        return;
                    }
                    if let Some(next) = queue.0.pop_front() {
                        break next;
                    }
                    queue = self.wake.wait(queue).unwrap_or_else(|p| p.into_inner());
                }
            };
            let job = {
                let mut state = flight.state();
                match std::mem::replace(&mut *state, Flight::Running) {
                    Flight::Queued(job) => job,
                    other => {
                        // Finished under the slot lock already.
                        *state = other;
                        continue;
                    }
                }
            };
            let prepared = job.prepare();
            *flight.state() = Flight::Done(Box::new(prepared));
            flight.done.notify_all();
            let Some(slot) = self.slots.get().and_then(|slots| slots.get(index)).and_then(Weak::upgrade) else {
                continue;
            };
            // Install under the lock (unless someone finished it already), then run the tail without it.
            let tail = {
                let mut guard = super::lock(&slot);
                if !guard.in_flight.as_ref().is_some_and(|current| Arc::ptr_eq(current, &flight)) {
                    continue;
                }
                let taken = std::mem::replace(&mut *flight.state(), Flight::Tailing);
                let prepared = match taken {
                    Flight::Done(prepared) => *prepared,
                    other => {
                        *flight.state() = other;
                        continue;
                    }
                };
                match guard.install(prepared) {
                    Ok(Some(tail)) => tail,
                    Ok(None) => {
                        *flight.state() = Flight::Taken;
                        guard.in_flight = None;
                        flight.done.notify_all();
                        continue;
                    }
                    Err(error) => {
                        tracing::error!(slot = guard.index, %error, "background checkpoint failed");
                        *flight.state() = Flight::Taken;
                        guard.in_flight = None;
                        flight.done.notify_all();
                        continue;
                    }
                }
            };
            let started = Instant::now();
            let (outcome, spare) = tail.run();
            tracing::debug!(
                slot = index,
                tail_us = started.elapsed().as_micros() as u64,
                "checkpoint tail (off the lock)"
            );
            *flight.state() = Flight::Finished(outcome, spare);
            flight.done.notify_all();
            let mut guard = super::lock(&slot);
            if guard.in_flight.as_ref().is_some_and(|current| Arc::ptr_eq(current, &flight)) {
                if let Err(error) = guard.finish_in_flight() {
                    tracing::error!(slot = guard.index, %error, "background checkpoint failed");
                }
            }
        }
    }
}

impl Slot {
    /// Moves the whole memtable into the layers below and empties the WAL, before returning (a checkpoint
    /// in flight is finished first). See the module docs.
    pub fn checkpoint(&mut self) -> Result<()> {
        self.finish_in_flight()?;
        if let Some(job) = self.begin_checkpoint()? {
            let prepared = job.prepare();
            let tail = self.install(prepared)?;
            self.finish_tail(tail)?;
        }
        Ok(())
    }

    /// Runs an install's tail here (under the lock) and applies its outcome.
    fn finish_tail(&mut self, tail: Option<Tail>) -> Result<()> {
        match tail {
            Some(tail) => {
                let (outcome, spare) = tail.run();
                self.tail_done(outcome, spare)
            }
            None => Ok(()),
        }
    }

    /// Applies a tail's outcome: the frozen WAL file is empty (the WAL may rotate again), or the slot is
    /// poisoned. The emptied memtable, if any, is kept for the next checkpoint's begin.
    fn tail_done(&mut self, outcome: Result<()>, spare: Option<Memtable>) -> Result<()> {
        if let Some(spare) = spare {
            self.memtable.recycle(spare);
        }
        match outcome {
            Ok(()) => {
                self.wal.previous_emptied();
                self.buckets.clear_staged();
                Ok(())
            }
            Err(err) => {
                tracing::error!(slot = self.index, error = %err, "checkpoint failed; slot poisoned until restart");
                self.poisoned = Some("checkpoint");
                Err(err)
            }
        }
    }

    /// True when the memtable or the WAL has reached the size that calls for a checkpoint.
    fn checkpoint_due(&self) -> bool {
        self.memtable_bytes >= self.memtable_budget() || self.wal.len() as usize >= 2 * self.config.wal_flush_bytes
    }

    /// Starts a checkpoint when one is due: handed to the checkpoint thread when there is one. With a
    /// checkpoint in flight, leaves it to the thread (which installs it and runs its tail off the lock), and
    /// finishes it here (back-pressure) only once the memtable holds twice its budget.
    pub(crate) fn maybe_checkpoint(&mut self) -> Result<()> {
        if !self.checkpoint_due() {
            return Ok(());
        }
        if let Some(flight) = &self.in_flight {
            let pressed = self.memtable_bytes >= 2 * self.memtable_budget()
                || self.wal.len() as usize >= 4 * self.config.wal_flush_bytes;
            if !pressed {
                return Ok(());
            }
            let waited = Instant::now();
            let was_prepared = flight.is_prepared();
            self.finish_in_flight()?;
            if !was_prepared {
                tracing::debug!(
                    slot = self.index,
                    wait_us = waited.elapsed().as_micros() as u64,
                    "writer waited for the checkpoint in flight (memtable at twice its budget)"
                );
            }
            if !self.checkpoint_due() {
                return Ok(());
            }
        }
        self.start_checkpoint()
    }

    /// Checkpoints a memtable that has stopped taking writes, so that its memory goes back (issue 14):
    /// a data set loaded and then only read would otherwise stay in the memtable, at ~250 bytes a key
    /// (more than Redis holds the same key in), until a shutdown. Only a memtable of at least
    /// [`IDLE_CHECKPOINT_BYTES`], so that a trickle of writes does not checkpoint every few of them. The
    /// caller decides what idle means ([`super::Engine::checkpoint_idle`]). True if one was started.
    pub(crate) fn checkpoint_idle(&mut self) -> Result<bool> {
        if self.in_flight.is_some() || self.memtable_bytes < IDLE_CHECKPOINT_BYTES {
            return Ok(false);
        }
        self.start_checkpoint()?;
        Ok(true)
    }

    /// Begins a checkpoint and hands it to the checkpoint threads, or runs it here when there are none
    /// (or the WAL could not rotate). No checkpoint may be in flight.
    fn start_checkpoint(&mut self) -> Result<()> {
        let Some(job) = self.begin_checkpoint()? else { return Ok(()) };
        match &self.config.checkpointer {
            Some(checkpointer) if job.rotated => {
                let flight =
                    Arc::new(InFlight { state: Mutex::new(Flight::Queued(Box::new(job))), done: Condvar::new() });
                self.in_flight = Some(flight.clone());
                checkpointer.submit(self.index, flight);
                Ok(())
            }
            _ => {
                let prepared = job.prepare();
                let tail = self.install(prepared)?;
                self.finish_tail(tail)
            }
        }
    }

    /// Finishes the checkpoint in flight, if any: prepares it here if the thread has not started it, or
    /// waits for its prepare, then installs it.
    pub(crate) fn finish_in_flight(&mut self) -> Result<()> {
        let Some(flight) = self.in_flight.clone() else { return Ok(()) };
        let taken = {
            let mut state = flight.state();
            loop {
                match std::mem::replace(&mut *state, Flight::Taken) {
                    waiting @ (Flight::Running | Flight::Tailing) => {
                        *state = waiting;
                        state = flight.done.wait(state).unwrap_or_else(|p| p.into_inner());
                    }
                    other => break other,
                }
            }
        };
        self.in_flight = None;
        match taken {
            Flight::Queued(job) => {
                let prepared = job.prepare();
                let tail = self.install(prepared)?;
                self.finish_tail(tail)
            }
            Flight::Done(prepared) => {
                let tail = self.install(*prepared)?;
                self.finish_tail(tail)
            }
            Flight::Finished(outcome, spare) => self.tail_done(outcome, spare),
            Flight::Running | Flight::Tailing | Flight::Taken => Ok(()),
        }
    }

    /// The begin phase (see the module docs), or `None` when there is nothing to do or a checkpoint may not
    /// run now (read-only, an open transaction). Must not be called with a checkpoint in flight.
    fn begin_checkpoint(&mut self) -> Result<Option<Job>> {
        if self.config.read_only {
            return Ok(None);
        }
        if let Some(op) = self.poisoned {
            return Err(Error::Poisoned { slot: self.index, op });
        }
        // Nothing of an uncommitted transaction may reach the layers below; the checkpoint runs when the
        // last open transaction here commits.
        if self.has_open_transactions() {
            return Ok(None);
        }
        // A committed transaction's records become permanent here: first make sure no other slot can still
        // lose its share of them (a power loss before their WALs were fsynced).
        if self.unflushed_txid != 0 && !self.config.transactions.is_durable(self.unflushed_txid) {
            self.config.transactions.make_durable()?;
        }
        let reset = self.flush_all_seq > self.meta.checkpoint_seq;
        let flushes = self.db_flush_pending.iter().any(|(db, seq)| self.meta.db_flush_seq.get(db) != Some(seq));
        if self.memtable.is_empty()
            && !reset
            && !flushes
            && self.cleanup_buckets.is_empty()
            && self.wal.is_empty()
            && self.wal.previous_is_empty()
        {
            return Ok(None);
        }
        let began = Instant::now();
        let fs = self.config.fs.clone();
        let handles = BucketStore::open(fs.as_ref(), &self.dir, false, false, JOB_PAGE_CACHE)
            .and_then(|buckets| Ok((buckets, DwbWriter::begin(fs.as_ref(), &self.dir)?)));
        let (buckets, dwb) = match handles {
            Ok(handles) => handles,
            Err(err) => {
                tracing::error!(slot = self.index, error = %err, "checkpoint failed; slot poisoned until restart");
                self.poisoned = Some("checkpoint");
                return Err(err);
            }
        };
        let chunks = ChunkStore::new(fs.clone(), &self.dir, false, 0, self.config.segment_size);
        let rotated = self.wal.previous_is_empty();
        let wal_bytes = self.wal.total_len();
        let rotation = if rotated { self.wal.rotate() } else { self.wal.write_held() };
        if let Err(err) = rotation {
            tracing::error!(slot = self.index, error = %err, "checkpoint failed; slot poisoned until restart");
            self.poisoned = Some("checkpoint");
            return Err(err);
        }
        let job = Job {
            dir: self.dir.clone(),
            config: self.config.clone(),
            meta: self.meta.clone(),
            buckets,
            chunks,
            dwb: Some(dwb),
            wal: self.wal.reader(),
            wal_bytes,
            frozen: Some(self.memtable.freeze(self.memtable_bytes, self.expiring_in_memtable)),
            reset,
            db_flush_pending: self.db_flush_pending.clone(),
            cleanup_buckets: std::mem::take(&mut self.cleanup_buckets),
            target_seq: self.next_seq - 1,
            rotated,
            txid: self.unflushed_txid,
            big_values: 0,
            big_value_bytes: 0,
            began,
            begin_time: began.elapsed(),
        };
        Ok(Some(job))
    }

    /// The install phase (see the module docs), but for its [`Tail`] (`None` when it was run here: the
    /// checkpoint did not rotate the WAL). An error, here or from the prepare, poisons the slot.
    fn install(&mut self, prepared: Result<Prepared>) -> Result<Option<Tail>> {
        let started = Instant::now();
        match prepared.and_then(|prepared| self.install_inner(prepared, started)) {
            Ok(tail) => Ok(tail),
            Err(err) => {
                tracing::error!(slot = self.index, error = %err, "checkpoint failed; slot poisoned until restart");
                // Reads keep seeing every acknowledged write: the memtable still holds them.
                self.poisoned = Some("checkpoint");
                self.buckets.clear_cache();
                self.chunks.clear_cache();
                Err(err)
            }
        }
    }

    fn install_inner(&mut self, prepared: Prepared, started: Instant) -> Result<Option<Tail>> {
        let Prepared { mut job, pages, meta, meta_bytes, mut batch, prepare_time, durable_time } = prepared;
        // Before-images a snapshot still takes from the pages are read before the pages change.
        if self.snapshot.is_some() {
            super::snapshot::before_checkpoint(self);
        }
        let fs = self.config.fs.clone();
        let page_count = pages.len();
        if job.rotated {
            // Served from memory until the tail has written them in place: no system call under the lock.
            for (id, page) in &pages {
                self.buckets.stage_page(*id, page.clone());
            }
        } else {
            for (id, page) in &pages {
                self.buckets.write_page(*id, page)?;
            }
        }
        if !job.rotated {
            // The checkpoint covers both WAL files (after a crash): all of it runs here.
            self.buckets.sync()?;
            meta::write_atomically(fs.as_ref(), &meta::slot_meta_path(&self.dir), &meta_bytes)?;
            batch.dwb.clear()?;
        }

        // The batch is durable, so recovery would install this checkpoint again: files that died can go
        // (nothing the new metadata names), and the written entries leave the memtable.
        for name in &meta.pending_deletes {
            if let Some(id) = segment::parse_chunk_file_name(name) {
                self.chunks.forget(id);
            }
            let path = self.dir.join(name);
            if fs.exists(&path) {
                fs.remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
            }
        }
        if job.reset {
            self.buckets.truncate_to(meta.bucket_count(), meta.overflow_pages)?;
            self.chunks.clear_cache();
        }
        let target_seq = job.target_seq;
        // The pages hold the frozen entries now: the table leaves (an O(1) step; entries written since the
        // begin are in the active table already). Its tail empties it off the lock.
        drop(job.frozen.take());
        let unfrozen = self.memtable.unfreeze();
        let entry_count = unfrozen.as_ref().map_or(0, |unfrozen| unfrozen.table.len());
        // Expiring keys or FLUSHDB markers reach the buckets: the active-expire sweep has work again.
        if unfrozen.as_ref().is_some_and(|unfrozen| unfrozen.expiring > 0) || !job.db_flush_pending.is_empty() {
            self.sweep_gate.wake(&mut self.sweep_bucket);
        }
        let frozen_table = unfrozen.map(|unfrozen| {
            self.memtable_bytes = self.memtable_bytes.saturating_sub(unfrozen.bytes);
            self.expiring_in_memtable = self.expiring_in_memtable.saturating_sub(unfrozen.expiring);
            unfrozen.table
        });
        if !job.rotated {
            self.wal.reset(target_seq)?;
        }
        self.meta = meta;
        self.db_flush_pending.retain(|_, seq| *seq > target_seq);
        if self.memtable.is_empty() {
            self.memtable_bytes = 0;
            self.expiring_in_memtable = 0;
        }
        self.stats.checkpoints += 1;
        self.stats.big_values += job.big_values;
        self.stats.big_value_bytes += job.big_value_bytes;
        if self.unflushed_txid == job.txid {
            self.unflushed_txid = 0;
        }
        self.config.transactions.note_checkpoint(self.index, self.meta.checkpoint_seq);
        tracing::debug!(
            slot = self.index,
            entries = entry_count,
            pages = page_count,
            rotated = job.rotated,
            begin_us = job.begin_time.as_micros() as u64,
            prepare_us = prepare_time.as_micros() as u64,
            durable_us = durable_time.as_micros() as u64,
            install_us = started.elapsed().as_micros() as u64,
            total_us = job.began.elapsed().as_micros() as u64,
            "checkpoint"
        );
        if !job.rotated {
            // All of it ran under the lock: the table is emptied here too.
            if let Some(spare) = frozen_table.and_then(memlayers::emptied) {
                self.memtable.recycle(spare);
            }
            return Ok(None);
        }
        Ok(Some(Tail {
            fs,
            buckets: job.buckets,
            dwb: batch.dwb,
            meta_path: meta::slot_meta_path(&self.dir),
            meta_bytes,
            frozen: self.wal.previous_index(),
            wal: job.wal,
            memtable: frozen_table,
            pages,
        }))
    }
}

impl Job {
    /// The bytes of an unflushed envelope (from memory, or read back from the WAL).
    fn load_envelope(&self, envelope: &MemEnvelope) -> Result<Bytes> {
        match &envelope.bytes {
            Some(bytes) => Ok(Bytes::copy_from_slice(bytes)),
            None => self.wal.read_envelope(envelope.record.0, envelope.record.1).map(Bytes::from),
        }
    }

    /// Whether the committed layers hold a live cell for the key (for the growth estimate).
    fn has_cell(&mut self, db: u16, key: &[u8]) -> Result<bool> {
        if self.reset {
            return Ok(false);
        }
        let marker = self
            .meta
            .db_flush_seq
            .get(&db)
            .copied()
            .unwrap_or(0)
            .max(self.db_flush_pending.get(&db).copied().unwrap_or(0));
        let hash = super::key::key_hash(db, key);
        let mut id = PageId::bucket(buckets::bucket_of(hash, self.meta.level, self.meta.split));
        for _ in 0..=self.meta.overflow_pages {
            let (cell, next) = self.buckets.find_cell(id, hash, db, key)?;
            if let Some(cell) = cell {
                return Ok(cell.seq >= marker);
            }
            if next == 0 {
                return Ok(false);
            }
            id = PageId::overflow(next);
        }
        Ok(false)
    }

    /// The prepare phase (see the module docs): everything up to the durable double-write batch.
    fn prepare(mut self) -> Result<Prepared> {
        let started = Instant::now();
        let frozen = self.frozen.clone().ok_or_else(|| Error::Config("checkpoint prepared twice".into()))?;
        // What the steps below need of each entry, copied out of it in one pass and sorted here (not at the
        // begin, which holds the slot lock). The entries lie in memory in arrival order, not key order: each
        // pass over them in key order missed the cache once per entry, and there were three, plus a sort
        // that dereferenced both entries of every comparison (docs/performance.md, issue 14).
        let mut items: Vec<Item<'_>> = frozen.iter().map(Item::new).collect();
        items.sort_unstable_by(|a, b| {
            (a.reversed_hash, a.db).cmp(&(b.reversed_hash, b.db)).then_with(|| a.key().cmp(b.key()))
        });
        let reset = self.reset;
        let target_seq = self.target_seq;
        let mut meta = self.meta.clone();
        meta.pending_deletes.clear();
        meta.checkpoint_seq = target_seq;
        let fs = self.config.fs.clone();
        let zstd_level = self.config.compression.segments.then_some(self.config.compression.level);
        let mut batch = Batch {
            dwb: self.dwb.take().ok_or_else(|| Error::Config("checkpoint prepared twice".into()))?,
            segments: SegmentWriter::new(self.config.segment_size, zstd_level)
                .with_dictionaries(self.config.dictionaries.clone()),
            touched_chunks: Vec::new(),
            new_files: false,
            target_seq,
            fresh_from: (self.meta.bucket_count() + 1, self.meta.overflow_pages.max(1)),
            fresh_written: false,
        };
        if reset {
            self.reset_layout(&mut meta, &mut batch)?;
        }
        for (db, seq) in &self.db_flush_pending {
            let marker = meta.db_flush_seq.entry(*db).or_insert(0);
            *marker = (*marker).max(*seq);
            meta.key_counts.insert(*db, 0);
        }

        // (1) Values that do not fit inline go to segments or big files first: cells need their locations.
        // Records are packed grouped by key family (see `family::grouped_order`), and the segments of a
        // family with a trained dictionary compressed with it (`SegmentWriter::prepare`).
        self.chunks.set_dictionaries(self.config.dictionaries.clone());
        let mut placements = vec![Placement::Nothing; items.len()];
        let rules = self.config.dictionaries.rules();
        for index in super::family::grouped_order(items.iter().map(Item::key), &rules) {
            let item = &items[index];
            let Some(envelope) = item.envelope else { continue };
            let (key, len) = (item.key(), envelope.len);
            let bytes = self.load_envelope(envelope)?;
            placements[index] = if len <= self.config.inline_max && CELL_HEADER_LEN + key.len() + len <= CELL_AREA {
                Placement::Inline(bytes)
            } else if batch.segments.fits(key.len(), len) {
                let record = batch.segments.prepare(key, &bytes);
                if batch.segments.must_seal_before_record(key.len(), &record) {
                    self.append_segment(&mut meta, &mut batch)?;
                }
                Placement::Segment(batch.segments.add_record(item.seq, item.db, key, record))
            } else {
                self.chunks.write_big(item.seq, item.db, key, &bytes)?;
                self.big_values += 1;
                self.big_value_bytes += len as u64;
                batch.new_files = true;
                Placement::Big
            };
        }
        if batch.segments.has_pending() {
            self.append_segment(&mut meta, &mut batch)?;
        }

        // (2) Grow the table first to the size the new cells need, so that entries land in buckets of
        // normal size (applying a large batch to a small table and splitting afterwards is quadratic).
        // What each placed value's cell takes (its location is resolved: every segment is sealed).
        let cell_len = |index: usize| {
            let item = &items[index];
            let (seq, expire_at, db, key_len) = (item.seq, item.expire_at, item.db, item.key().len());
            (match &placements[index] {
                Placement::Nothing => 0,
                Placement::Inline(bytes) => page::cell_len(seq, expire_at, db, key_len, Some(bytes.len())),
                Placement::Segment(ticket) => match batch.segments.locations[*ticket] {
                    Some(location) => page::segment_cell_len(seq, expire_at, db, key_len, &location),
                    None => page::cell_len(seq, expire_at, db, key_len, None),
                },
                Placement::Big => page::cell_len(seq, expire_at, db, key_len, None),
            }) as u64
        };
        let fits = |meta: &SlotMeta, incoming: u64| {
            (meta.used_bytes + incoming) as f64 <= SPLIT_FILL * (meta.bucket_count() * CELL_AREA as u64) as f64
        };
        let mut incoming: u64 = (0..items.len()).map(cell_len).sum();
        if !fits(&meta, incoming) {
            // Count only the keys that are new: overwrites take no extra room. Looking every key up would
            // double the checkpoint's page reads, so estimate from a sample; the split loop after the
            // apply step corrects an underestimate.
            let sets: Vec<usize> = (0..items.len()).filter(|&i| items[i].envelope.is_some()).collect();
            let stride = (sets.len() / 512).max(1);
            let (mut sampled, mut new_bytes) = (0u64, 0u64);
            for &index in sets.iter().step_by(stride) {
                let item = &items[index];
                let exists = match item.prior {
                    Some(prior) => prior,
                    None => self.has_cell(item.db, item.key())?,
                };
                sampled += 1;
                if !exists {
                    new_bytes += cell_len(index);
                }
            }
            incoming = new_bytes * sets.len() as u64 / sampled.max(1);
        }
        while !fits(&meta, incoming) {
            self.split_bucket(&mut meta, &mut batch)?;
        }

        // (3) Apply the entries bucket by bucket. A bucket is a range of low hash bits, so its entries are
        // one run of the key order (bit-reversed hashes); the runs are taken in bucket order (the pages'
        // order in the file), and runs of one bucket together should the table's rule ever break that.
        let mut runs: Vec<(u64, usize, usize)> = Vec::new();
        for (index, item) in items.iter().enumerate() {
            let bucket = buckets::bucket_of(item.reversed_hash.reverse_bits(), meta.level, meta.split);
            match runs.last_mut() {
                Some((last, _, end)) if *last == bucket => *end = index + 1,
                _ => runs.push((bucket, index, index + 1)),
            }
        }
        for bucket in std::mem::take(&mut self.cleanup_buckets) {
            runs.push((bucket, 0, 0));
        }
        runs.sort_unstable();
        let mut next_run = 0;
        while next_run < runs.len() {
            let bucket = runs[next_run].0;
            let first_run = next_run;
            while next_run < runs.len() && runs[next_run].0 == bucket {
                next_run += 1;
            }
            if bucket >= meta.bucket_count() {
                continue;
            }
            let (mut cells, overflow) = self.load_bucket(&batch, bucket)?;
            let before: u64 = cells.iter().map(|c| c.encoded_len() as u64).sum();
            cells.retain(|cell| {
                let marker = meta.db_flush_seq.get(&cell.db).copied().unwrap_or(0);
                let dead = cell.seq < marker || reset;
                if dead {
                    kill_value(&mut meta, cell);
                }
                !dead
            });
            let indexes = runs[first_run..next_run].iter().flat_map(|&(_, start, end)| start..end);
            for index in indexes {
                let item = &items[index];
                let (db, key) = (item.db, item.key());
                let hash = item.reversed_hash.reverse_bits();
                let position = cells.iter().position(|c| c.hash == hash && c.db == db && c.key == key);
                match (item.envelope, item.op) {
                    (Some(envelope), _) => {
                        let value = match &placements[index] {
                            Placement::Inline(bytes) => CellValue::Inline(bytes.to_vec()),
                            Placement::Nothing => return Err(Error::Config("a Set entry was not placed".into())),
                            Placement::Segment(ticket) => CellValue::Segment(
                                batch.segments.locations[*ticket]
                                    .ok_or_else(|| Error::Config("segment location unresolved".into()))?,
                            ),
                            Placement::Big => CellValue::Big { id: item.seq, envelope_len: envelope.len as u64 },
                        };
                        let cell = Cell {
                            hash,
                            seq: item.seq,
                            expire_at: item.expire_at,
                            db,
                            key: key.to_vec(),
                            kind: item.kind,
                            value,
                        };
                        match position {
                            Some(at) => {
                                kill_value(&mut meta, &cells[at]);
                                cells[at] = cell;
                            }
                            None => {
                                cells.push(cell);
                                *meta.key_counts.entry(db).or_insert(0) += 1;
                            }
                        }
                    }
                    (None, ItemOp::Delete) => {
                        if let Some(at) = position {
                            kill_value(&mut meta, &cells[at]);
                            cells.swap_remove(at);
                            let count = meta.key_counts.entry(db).or_insert(0);
                            *count = count.saturating_sub(1);
                        }
                    }
                    (None, _) => {
                        if let Some(at) = position {
                            cells[at].expire_at = item.expire_at;
                            cells[at].seq = item.seq;
                        }
                    }
                }
            }
            let after: u64 = cells.iter().map(|c| c.encoded_len() as u64).sum();
            meta.used_bytes = (meta.used_bytes + after).saturating_sub(before);
            let level = buckets::bucket_level(bucket, meta.level, meta.split);
            self.write_bucket(&mut meta, &mut batch, bucket, level, cells, overflow)?;
        }
        drop(placements);
        drop(items);
        // (4) Compact chunk files that are mostly dead.
        self.compact(&mut meta, &mut batch)?;

        // (5) Grow the table if deletes and updates did not leave enough room after all.
        while meta.used_bytes as f64 > SPLIT_FILL * (meta.bucket_count() * CELL_AREA as u64) as f64 {
            self.split_bucket(&mut meta, &mut batch)?;
        }

        // (6) Make segments and big values durable, then the batch (the install does the rest).
        let prepare_time = started.elapsed();
        for id in &batch.touched_chunks {
            let file = self.chunks.chunk_file(*id, false)?;
            file.sync().map_err(|e| Error::io("fsync", self.chunks.chunk_path(*id), e))?;
        }
        if batch.new_files {
            fs.sync_dir(&self.dir).map_err(|e| Error::io("fsync", &self.dir, e))?;
        }
        if batch.fresh_written {
            self.buckets.sync()?;
        }
        let meta_bytes = meta.encode();
        batch.dwb.commit(&meta_bytes)?;
        let mut pages = Vec::new();
        for id in batch.dwb.page_ids() {
            if let Some(page) = batch.dwb.page(id)? {
                pages.push((id, PageBuf::from(page)));
            }
        }
        let durable_time = started.elapsed() - prepare_time;
        Ok(Prepared { job: self, pages, meta, meta_bytes, batch, prepare_time, durable_time })
    }

    /// FLUSHALL: the table shrinks back to one empty bucket and every chunk and big file is to be deleted.
    fn reset_layout(&mut self, meta: &mut SlotMeta, batch: &mut Batch) -> Result<()> {
        for id in meta.chunk_files.keys() {
            meta.pending_deletes.push(segment::chunk_file_name(*id));
        }
        let next_chunk = meta.chunk_files.keys().max().copied().unwrap_or(0).max(meta.active_chunk) + 1;
        meta.chunk_files.clear();
        meta.active_chunk = next_chunk;
        let fs = self.config.fs.clone();
        for name in fs.list(&self.dir).map_err(|e| Error::io("list", &self.dir, e))? {
            if segment::parse_big_file_name(&name).is_some() {
                meta.pending_deletes.push(name);
            }
        }
        meta.level = 0;
        meta.split = 0;
        meta.overflow_pages = 1;
        meta.free_overflow.clear();
        meta.used_bytes = 0;
        meta.key_counts.clear();
        meta.db_flush_seq.clear();
        let empty = Page {
            kind: PAGE_KIND_PRIMARY,
            level: 0,
            bucket: 0,
            next_overflow: 0,
            checkpoint_seq: batch.target_seq,
            cells: vec![],
        };
        batch.dwb.add_page(PageId::bucket(0), &empty.encode())
    }

    /// Appends the writer's current segment to the active chunk file (opening a new one when full).
    fn append_segment(&mut self, meta: &mut SlotMeta, batch: &mut Batch) -> Result<()> {
        let active_full = meta.chunk_files.get(&meta.active_chunk).is_none_or(|c| c.committed_len >= CHUNK_FILE_MAX);
        if active_full {
            if meta.chunk_files.contains_key(&meta.active_chunk) {
                meta.active_chunk = meta.chunk_files.keys().max().copied().unwrap_or(0).max(meta.active_chunk) + 1;
            }
            self.chunks.chunk_file(meta.active_chunk, true)?;
            meta.chunk_files.insert(
                meta.active_chunk,
                ChunkFileMeta { committed_len: super::format::FILE_HEADER_LEN as u64, ..Default::default() },
            );
            batch.new_files = true;
        }
        let id = meta.active_chunk;
        let chunk = meta.chunk_files.entry(id).or_default();
        let offset = chunk.committed_len;
        let sealed = batch.segments.seal(id, offset as u32);
        let file = self.chunks.chunk_file(id, false)?;
        file.write_all_at(&sealed.bytes, offset).map_err(|e| Error::io("write", self.chunks.chunk_path(id), e))?;
        chunk.committed_len += sealed.bytes.len() as u64;
        chunk.written_bytes += sealed.record_bytes;
        chunk.live_bytes += sealed.record_bytes;
        if !batch.touched_chunks.contains(&id) {
            batch.touched_chunks.push(id);
        }
        Ok(())
    }

    /// The cells of a bucket chain (the batch's images first) and the chain's overflow page numbers.
    fn load_bucket(&mut self, batch: &Batch, bucket: u64) -> Result<(Vec<Cell>, Vec<u64>)> {
        let mut cells = Vec::new();
        let mut overflow = Vec::new();
        let mut id = PageId::bucket(bucket);
        loop {
            let offset = id.number * page::PAGE_SIZE as u64;
            let page = match batch.dwb.page(id)? {
                Some(image) => Page::decode(&image[..], self.buckets.path(id.file), offset)?,
                None => {
                    let bytes = self.buckets.read_page(id)?;
                    Page::decode(&bytes[..], self.buckets.path(id.file), offset)?
                }
            };
            if page.bucket != bucket {
                return Err(Error::corrupt(
                    self.buckets.path(id.file),
                    offset,
                    format!("page belongs to bucket {}, expected {bucket}", page.bucket),
                ));
            }
            cells.extend(page.cells);
            if page.next_overflow == 0 {
                return Ok((cells, overflow));
            }
            if overflow.contains(&page.next_overflow) {
                return Err(Error::corrupt(self.buckets.path(id.file), offset, "overflow chain loops"));
            }
            overflow.push(page.next_overflow);
            id = PageId::overflow(page.next_overflow);
        }
    }

    /// Packs cells into the bucket's primary page and as many overflow pages as needed, reusing the
    /// chain's pages first, and adds the images to the batch.
    fn write_bucket(
        &mut self,
        meta: &mut SlotMeta,
        batch: &mut Batch,
        bucket: u64,
        level: u8,
        cells: Vec<Cell>,
        mut old_overflow: Vec<u64>,
    ) -> Result<()> {
        let mut pages: Vec<Vec<Cell>> = vec![Vec::new()];
        let mut used = 0;
        for cell in cells {
            let len = cell.encoded_len();
            if used + len > CELL_AREA {
                pages.push(Vec::new());
                used = 0;
            }
            used += len;
            if let Some(page) = pages.last_mut() {
                page.push(cell);
            }
        }
        let mut ids = vec![PageId::bucket(bucket)];
        old_overflow.reverse();
        for _ in 1..pages.len() {
            let number = match old_overflow.pop().or_else(|| meta.free_overflow.pop()) {
                Some(number) => number,
                None => {
                    meta.overflow_pages += 1;
                    meta.overflow_pages - 1
                }
            };
            ids.push(PageId::overflow(number));
        }
        meta.free_overflow.extend(old_overflow);
        let count = pages.len();
        for (index, cells) in pages.into_iter().enumerate() {
            let next_overflow = if index + 1 < count { ids[index + 1].number } else { 0 };
            let kind = if index == 0 { PAGE_KIND_PRIMARY } else { PAGE_KIND_OVERFLOW };
            let page = Page { kind, level, bucket, next_overflow, checkpoint_seq: batch.target_seq, cells };
            let id = ids[index];
            let fresh = match id.file {
                buckets::PageFile::Primary => id.number >= batch.fresh_from.0,
                buckets::PageFile::Overflow => id.number >= batch.fresh_from.1,
            };
            if fresh {
                self.buckets.write_page(id, &page.encode())?;
                batch.fresh_written = true;
            } else {
                batch.dwb.add_page(id, &page.encode())?;
            }
        }
        Ok(())
    }

    /// Splits the next bucket of the linear-hashing table.
    fn split_bucket(&mut self, meta: &mut SlotMeta, batch: &mut Batch) -> Result<()> {
        let level = meta.level;
        if level >= 50 {
            return Err(Error::TooLarge("bucket table reached 2^50 buckets".into()));
        }
        let bucket = meta.split;
        let (cells, overflow) = self.load_bucket(batch, bucket)?;
        let (high, low): (Vec<Cell>, Vec<Cell>) = cells.into_iter().partition(|cell| (cell.hash >> level) & 1 == 1);
        let sibling = bucket + (1u64 << level);
        meta.split += 1;
        if meta.split == 1u64 << level {
            meta.level += 1;
            meta.split = 0;
        }
        self.write_bucket(meta, batch, bucket, level + 1, low, overflow)?;
        self.write_bucket(meta, batch, sibling, level + 1, high, Vec::new())
    }

    /// Carries the live records of mostly-dead chunk files forward into new segments and marks the old
    /// files for deletion. A record is live iff its key's cell still points at it.
    fn compact(&mut self, meta: &mut SlotMeta, batch: &mut Batch) -> Result<()> {
        let mut candidates: Vec<(u32, ChunkFileMeta)> = meta
            .chunk_files
            .iter()
            .filter(|(id, chunk)| {
                **id != meta.active_chunk
                    && chunk.written_bytes > 0
                    && (chunk.live_bytes as f64) < COMPACT_LIVE_SHARE * chunk.written_bytes as f64
            })
            .map(|(id, chunk)| (*id, *chunk))
            .collect();
        candidates.sort_by(|a, b| (a.1.live_bytes * b.1.written_bytes).cmp(&(b.1.live_bytes * a.1.written_bytes)));
        // Relocate up to twice what this checkpoint wrote, so that compaction keeps pace with the garbage
        // that overwrites create.
        let budget = (self.config.wal_flush_bytes as u64).max(2 * self.wal_bytes);
        let mut moved = 0u64;
        for (id, chunk) in candidates {
            if chunk.live_bytes > 0 && moved > 0 && moved + chunk.live_bytes > budget {
                break;
            }
            moved += chunk.live_bytes;
            let mut relocations: Vec<Relocation> = Vec::new();
            if chunk.live_bytes > 0 {
                // Read every record of the file, then check liveness one bucket at a time.
                let mut records_by_bucket: BTreeMap<u64, Vec<StoredRecord>> = BTreeMap::new();
                let mut offset = super::format::FILE_HEADER_LEN as u64;
                while offset < chunk.committed_len {
                    let (segment_len, segment) =
                        self.chunks.read_segment_for_compaction(id, offset as u32, chunk.committed_len)?;
                    let Some(segment) = segment else {
                        offset += segment_len; // dead records only (its dictionary was removed)
                        continue;
                    };
                    let records = segment::records(&segment.payload, segment.record_count).map_err(|at| {
                        Error::corrupt(self.chunks.chunk_path(id), offset, format!("record at payload offset {at}"))
                    })?;
                    for (record_offset, record) in records {
                        let old = SegmentLocation {
                            file: id,
                            segment_offset: offset as u32,
                            record_offset: record_offset as u32,
                            envelope_len: record.envelope.len() as u32,
                        };
                        let bucket =
                            buckets::bucket_of(super::key::key_hash(record.db, record.key), meta.level, meta.split);
                        records_by_bucket.entry(bucket).or_default().push((
                            record.seq,
                            record.db,
                            record.key.to_vec(),
                            record.envelope.to_vec(),
                            old,
                        ));
                    }
                    offset += segment.encoded_len() as u64;
                }
                let mut live: Vec<StoredRecord> = Vec::new();
                for (bucket, records) in records_by_bucket {
                    let (cells, _) = self.load_bucket(batch, bucket)?;
                    live.extend(records.into_iter().filter(|(_, db, key, _, old)| {
                        cells.iter().any(|c| c.value == CellValue::Segment(*old) && c.db == *db && c.key == *key)
                    }));
                }
                // Packed grouped by key family, as the checkpoint packs new records.
                let rules = self.config.dictionaries.rules();
                let mut live: Vec<Option<StoredRecord>> = live.into_iter().map(Some).collect();
                let order = super::family::grouped_order(
                    live.iter().map(|record| record.as_ref().map_or(&[][..], |r| &r.2[..])),
                    &rules,
                );
                for index in order {
                    let Some((seq, db, key, envelope, old)) = live[index].take() else { continue };
                    let record = batch.segments.prepare(&key, &envelope);
                    if batch.segments.must_seal_before_record(key.len(), &record) {
                        self.append_segment(meta, batch)?;
                    }
                    let ticket = batch.segments.add_record(seq, db, &key, record);
                    relocations.push((db, key, old, ticket));
                }
                if batch.segments.has_pending() {
                    self.append_segment(meta, batch)?;
                }
            }
            let mut by_bucket: BTreeMap<u64, Vec<Relocation>> = BTreeMap::new();
            for relocation in relocations {
                let hash = super::key::key_hash(relocation.0, &relocation.1);
                by_bucket.entry(buckets::bucket_of(hash, meta.level, meta.split)).or_default().push(relocation);
            }
            for (bucket, moves) in by_bucket {
                let (mut cells, overflow) = self.load_bucket(batch, bucket)?;
                for (db, key, old, ticket) in moves {
                    let new = batch.segments.locations[ticket]
                        .ok_or_else(|| Error::Config("segment location unresolved".into()))?;
                    if let Some(cell) =
                        cells.iter_mut().find(|c| c.db == db && c.key == key && c.value == CellValue::Segment(old))
                    {
                        cell.value = CellValue::Segment(new);
                    }
                }
                let level = buckets::bucket_level(bucket, meta.level, meta.split);
                self.write_bucket(meta, batch, bucket, level, cells, overflow)?;
            }
            meta.chunk_files.remove(&id);
            meta.pending_deletes.push(segment::chunk_file_name(id));
        }
        Ok(())
    }
}

/// Accounts for a cell's value dying: its record stops being live, or its big file is to be deleted.
fn kill_value(meta: &mut SlotMeta, cell: &Cell) {
    match &cell.value {
        CellValue::Inline(_) => {}
        CellValue::Segment(location) => {
            if let Some(chunk) = meta.chunk_files.get_mut(&location.file) {
                let len = segment::record_len(cell.key.len(), location.envelope_len as usize) as u64;
                chunk.live_bytes = chunk.live_bytes.saturating_sub(len);
            }
        }
        CellValue::Big { id, .. } => meta.pending_deletes.push(segment::big_file_name(*id)),
    }
}

#[cfg(test)]
#[path = "checkpoint_tests.rs"]
mod tests;
