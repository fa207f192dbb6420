//! Bulk loads: many keys written straight into new chunk files and bucket pages of empty slots, without
//! the WAL, published all at once by one atomic commit point. `velo rdb-restore` and `velo
//! ingest-parquet` use it when the destination holds no key (docs/engine.md §"Bulk loads"; bytes in
//! docs/format.md §"Bulk load"; crash cases in docs/recovery.md §"Bulk loads").
//!
//! Staging: each slot's values are packed into segments of new chunk files (or big-value files) under
//! `<dir>/bulk/slot-N/` as they arrive, in arrival order. The cells (key, expiry, inline value or
//! location) are collected in a bounded in-memory buffer that, when full, is sorted by (slot, bit-reversed
//! key hash, sequence) and spilled to a run file. At the end every slot's runs are merged, which yields its
//! cells in bucket order for a table sized once for the final count: each bucket's pages are written once.
//!
//! Threads: the staging (value envelopes, segments and their compression, cells, sorted runs) runs on
//! worker threads, each owning every n-th slot; [`BulkLoad::write_slot`] only hands the ops over in
//! batches, so the caller's thread produces the next keys (parses its input) meanwhile. At the end the
//! workers build their slots' pages in parallel. The result is the same as one thread's: a slot's cells
//! are ordered by their sequence numbers, which only its worker assigns.
//!
//! Publishing: the staged files are fsynced, then `bulk/COMMIT` (the list of slots and their files) is
//! written atomically (temporary file, fsync, rename, directory fsync): that rename is the commit point.
//! The staged files are then renamed over the slot's own, the slot's old chunk and big files deleted, and
//! the slots reloaded. [`recover`] runs at every read-write open before the slots are opened: with a
//! `COMMIT` it finishes the renames (they are idempotent), without one it deletes the staging directory.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::buckets::{BUCKETS_FILE, OVERFLOW_FILE};
use super::envelope::{self, CompressionPolicy, ValueKind};
use super::error::{Error, Result};
use super::format::{self, ByteReader, PutLe, FILE_HEADER_LEN};
use super::io::{FileHandle, FileSystem};
use super::key::key_hash;
use super::meta::{self, ChunkFileMeta, SlotMeta};
use super::page::{self, Cell, CellValue, Page, SegmentLocation, CELL_AREA, CELL_HEADER_LEN, PAGE_SIZE};
use super::segment::{self, CHUNK_FILE_MAX};
use super::BatchOp;

/// Name of the staging directory inside the data directory.
pub const BULK_DIR: &str = "bulk";
/// Name of the commit file inside the staging directory.
pub const COMMIT_FILE: &str = "COMMIT";
/// Magic of the commit file.
pub const MAGIC_BULK_COMMIT: &[u8; 4] = b"VBLK";
/// Magic of a run file (scratch: never read after a crash, only deleted).
const MAGIC_RUN: &[u8; 4] = b"VRUN";

/// Cell bytes buffered in memory before a sorted run is spilled to disk.
const RUN_BUDGET: usize = 64 << 20;
/// Chunk-file bytes buffered per slot before they are written.
const WRITE_BUFFER: usize = 256 << 10;
/// The new table is sized so that cells fill at most this share of the primary pages (the checkpoint
/// splits past 85%; starting lower keeps overflow chains rare).
const BULK_FILL: f64 = 0.7;
/// Bytes read at a time from a run file during the merge.
const READ_BUFFER: usize = 256 << 10;
/// Ops handed to a worker at a time (or fewer, once they hold this many key and value bytes).
const BATCH_OPS: usize = 2048;
const BATCH_BYTES: usize = 1 << 20;
/// Batches queued per worker: bounds the memory in flight while the caller runs ahead.
const QUEUE: usize = 4;
/// Most worker threads a load uses (fewer on a machine with fewer cores, or with fewer slots).
const MAX_WORKERS: usize = 4;
/// Bytes of a sort entry of the in-memory buffer (slot, reversed hash, seq, offset).
const INDEX_ENTRY: usize = std::mem::size_of::<(u16, u64, u64, u32)>();

/// What a slot's staged value is.
const STORE_INLINE: u8 = 0;
const STORE_SEGMENT: u8 = 1;
const STORE_BIG: u8 = 2;
/// A delete: the key has no value (it cancels earlier writes of the load).
const STORE_DELETE: u8 = 3;

/// One staged slot.
struct StagedSlot {
    dir: PathBuf,
    base: SlotMeta,
    next_seq: u64,
    chunk_id: u32,
    chunk: Option<Arc<dyn FileHandle>>,
    /// File offset where the next sealed segment goes.
    chunk_end: u64,
    /// Offset of the first byte of `buffer` in the chunk file.
    buffer_at: u64,
    buffer: Vec<u8>,
    /// The segment being filled: payload, record count, and its future offset in the chunk file.
    payload: Vec<u8>,
    count: u16,
    segment_at: u64,
    chunk_files: BTreeMap<u32, ChunkFileMeta>,
    files: Vec<String>,
    cells: u64,
    /// Bytes of the staged cells in pages (duplicates included).
    cell_bytes: u64,
}

/// A cell as staged: everything but its bucket.
struct StagedCell {
    rhash: u64,
    seq: u64,
    expire_at: u64,
    db: u16,
    kind: u8,
    key: Vec<u8>,
    /// `None`: a delete.
    value: Option<CellValue>,
}

/// A bulk load in progress: see the module docs. Created by [`super::Engine::bulk_load`], fed with
/// [`BulkLoad::write_slot`], published by [`super::Engine::commit_bulk`]. Dropped without a commit, it
/// stops its workers and deletes what it staged.
pub struct BulkLoad {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    slot_count: usize,
    /// Worker `w` owns the slots `w`, `w + n`, `w + 2n`... (`n` workers).
    workers: Vec<Worker>,
    committed: bool,
    /// Keys written.
    pub keys: u64,
}

/// Part of a [`CommitPlan`]: (slot, checkpoint sequence, files).
type PlanSlots = Vec<(u32, u64, Vec<String>)>;

/// Ops for one worker, with the worker's own index of their slot.
type Batch = Vec<(u32, BatchOp)>;

enum Message {
    Ops(Batch),
    RunBudget(usize),
}

/// A worker thread and the ops not yet handed to it.
struct Worker {
    sender: Option<SyncSender<Message>>,
    handle: Option<JoinHandle<Result<Stager>>>,
    pending: Batch,
    pending_bytes: usize,
}

impl Worker {
    /// Stops the worker (its queue closes; it stages what it holds) and takes its state back.
    fn finish(&mut self) -> Result<Stager> {
        self.sender = None;
        match self.handle.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => Err(Error::Config("bulk load: a worker already stopped".into())),
        }
    }
}

/// One worker's share of a load: its slots (its local slot `k` is the load's slot `worker + k *
/// workers`) and the buffered cells of those slots.
struct Stager {
    worker: usize,
    workers: usize,
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    compression: CompressionPolicy,
    inline_max: usize,
    segment_size: usize,
    slots: Vec<StagedSlot>,
    /// Encoded cells not yet spilled, and their sort keys (local slot, reversed hash, seq, offset).
    arena: Vec<u8>,
    index: Vec<(u16, u64, u64, u32)>,
    /// Spilled runs: file, and per local slot the byte range of its cells.
    runs: Vec<(PathBuf, Vec<(u64, u64)>)>,
    run_budget: usize,
    /// Scratch for a value's envelope (reused: no allocation per value).
    envelope: Vec<u8>,
}

/// The commit file's plan: per slot, its files and its new checkpoint sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitPlan {
    /// (slot index, checkpoint sequence of the new slot, file names staged for it).
    pub slots: Vec<(u32, u64, Vec<String>)>,
}

impl CommitPlan {
    /// Encodes the commit file (docs/format.md §"Bulk load").
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = format::file_header(MAGIC_BULK_COMMIT, 0).to_vec();
        bytes.put_u32(self.slots.len() as u32);
        for (slot, seq, files) in &self.slots {
            bytes.put_u32(*slot);
            bytes.put_u64(*seq);
            bytes.put_u32(files.len() as u32);
            for name in files {
                bytes.put_u16(name.len() as u16);
                bytes.extend_from_slice(name.as_bytes());
            }
        }
        format::seal(bytes)
    }

    /// Decodes and verifies the commit file.
    pub fn decode(bytes: &[u8], path: &Path) -> Result<CommitPlan> {
        let body = format::unseal(bytes, MAGIC_BULK_COMMIT, 4, "bulk commit file", path)?;
        let mut reader = ByteReader::new(body);
        let bad = |what: &str| Error::corrupt(path, FILE_HEADER_LEN as u64, what.to_string());
        let count = reader.u32().ok_or_else(|| bad("slot count missing"))?;
        let mut slots = Vec::new();
        for _ in 0..count {
            let slot = reader.u32().ok_or_else(|| bad("slot entry truncated"))?;
            let seq = reader.u64().ok_or_else(|| bad("slot entry truncated"))?;
            let files = reader.u32().ok_or_else(|| bad("slot entry truncated"))?;
            let mut names = Vec::new();
            for _ in 0..files {
                let len = reader.u16().ok_or_else(|| bad("file name truncated"))?;
                let name = reader.take(len as usize).ok_or_else(|| bad("file name truncated"))?;
                let name = String::from_utf8(name.to_vec()).map_err(|_| bad("file name is not UTF-8"))?;
                if name.contains('/') || name.starts_with('.') {
                    return Err(bad("file name with a path"));
                }
                names.push(name);
            }
            slots.push((slot, seq, names));
        }
        if reader.remaining() != 0 {
            return Err(bad("trailing bytes"));
        }
        Ok(CommitPlan { slots })
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |e| Error::io(op, path, e)
}

/// The staging directory of `dir`.
pub fn staging_dir(dir: &Path) -> PathBuf {
    dir.join(BULK_DIR)
}

fn slot_name(index: usize) -> String {
    format!("slot-{index}")
}

/// Deletes the staging directory and everything in it (a load that did not reach its commit point).
fn discard(fs: &dyn FileSystem, dir: &Path) -> Result<()> {
    let bulk = staging_dir(dir);
    let Ok(names) = fs.list(&bulk) else { return Ok(()) };
    for name in names {
        let path = bulk.join(&name);
        if name.starts_with("slot-") {
            for inner in fs.list(&path).map_err(io_err("list", &path))? {
                let file = path.join(inner);
                fs.remove_file(&file).map_err(io_err("remove", &file))?;
            }
            fs.remove_dir(&path).map_err(io_err("remove", &path))?;
        } else {
            fs.remove_file(&path).map_err(io_err("remove", &path))?;
        }
    }
    fs.remove_dir(&bulk).map_err(io_err("remove", &bulk))?;
    fs.sync_dir(dir).map_err(io_err("fsync", dir))
}

/// Moves a committed load's files into their slots (idempotent: a file already moved is not in the
/// staging directory any more) and deletes the slots' chunk and big files the load does not list.
fn roll_forward(fs: &dyn FileSystem, dir: &Path, plan: &CommitPlan) -> Result<()> {
    let bulk = staging_dir(dir);
    for (slot, _, files) in &plan.slots {
        let from_dir = bulk.join(slot_name(*slot as usize));
        let to_dir = dir.join(slot_name(*slot as usize));
        fs.create_dir_all(&to_dir).map_err(io_err("create", &to_dir))?;
        for name in files {
            let from = from_dir.join(name);
            if fs.exists(&from) {
                let to = to_dir.join(name);
                fs.rename(&from, &to).map_err(io_err("rename", &to))?;
            }
        }
        for name in fs.list(&to_dir).map_err(io_err("list", &to_dir))? {
            let data = segment::parse_chunk_file_name(&name).is_some() || segment::parse_big_file_name(&name).is_some();
            if data && !files.contains(&name) {
                let path = to_dir.join(&name);
                fs.remove_file(&path).map_err(io_err("remove", &path))?;
            }
        }
        fs.sync_dir(&to_dir).map_err(io_err("fsync", &to_dir))?;
        fs.sync_dir(&from_dir).map_err(io_err("fsync", &from_dir))?;
    }
    Ok(())
}

/// Run at every open before the slots: finishes a committed bulk load, or deletes an uncommitted one.
/// A read-only open cannot do either: with a committed load waiting it fails (its slots would be half
/// old, half new); an uncommitted one is ignored (it is invisible).
pub fn recover(fs: &dyn FileSystem, dir: &Path, read_only: bool) -> Result<()> {
    let bulk = staging_dir(dir);
    let commit = bulk.join(COMMIT_FILE);
    if fs.exists(&commit) {
        if read_only {
            return Err(Error::Config(format!(
                "{} holds a committed bulk load not yet moved into its slots; open the directory read-write \
                 once (any write tool or velo serve) to finish it",
                dir.display()
            )));
        }
        let plan = CommitPlan::decode(&meta::read_whole(fs, &commit)?, &commit)?;
        tracing::info!(slots = plan.slots.len(), "finishing a committed bulk load");
        roll_forward(fs, dir, &plan)?;
        return retire_commit(fs, dir);
    }
    // (A file system without real directories lists a missing one as empty: nothing to do then.)
    let staged = matches!(fs.list(&bulk), Ok(names) if !names.is_empty()) || fs.exists(&bulk);
    if !read_only && staged {
        tracing::info!(dir = %bulk.display(), "removing the staged files of a bulk load that did not commit");
        discard(fs, dir)?;
    }
    Ok(())
}

/// Publishes a staged load: the commit point, then the roll-forward, then the clean-up. The caller holds
/// every slot involved and reloads them afterwards.
pub(crate) fn publish(fs: &dyn FileSystem, dir: &Path, plan: &CommitPlan) -> Result<()> {
    let bulk = staging_dir(dir);
    meta::write_atomically(fs, &bulk.join(COMMIT_FILE), &plan.encode())?;
    fail_point("after-commit");
    roll_forward(fs, dir, plan)?;
    fail_point("after-roll-forward");
    retire_commit(fs, dir)
}

/// After the roll-forward: the commit file goes first, durably, so that it can never be applied again
/// over slots that have changed since (its clean-up deletes chunk files it does not list); then the rest.
fn retire_commit(fs: &dyn FileSystem, dir: &Path) -> Result<()> {
    let bulk = staging_dir(dir);
    let commit = bulk.join(COMMIT_FILE);
    fs.remove_file(&commit).map_err(io_err("remove", &commit))?;
    fs.sync_dir(&bulk).map_err(io_err("fsync", &bulk))?;
    discard(fs, dir)
}

/// Test hook: `VELO_BULK_FAIL_AT=<point>` aborts the process there (crash tests of the tools).
fn fail_point(point: &str) {
    if std::env::var("VELO_BULK_FAIL_AT").is_ok_and(|at| at == point) {
        std::process::abort();
    }
}

impl BulkLoad {
    /// Starts a load into the slots whose current metadata is `bases` (one per slot). Stale staged files
    /// of an earlier attempt are removed first. Starts the worker threads.
    pub(crate) fn begin(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        bases: Vec<SlotMeta>,
        compression: CompressionPolicy,
        inline_max: usize,
        segment_size: usize,
    ) -> Result<BulkLoad> {
        discard(fs.as_ref(), dir)?;
        let bulk = staging_dir(dir);
        fs.create_dir_all(&bulk).map_err(io_err("create", &bulk))?;
        let slot_count = bases.len();
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let count = cores.clamp(1, MAX_WORKERS).min(slot_count.max(1));
        let mut stagers: Vec<Stager> = (0..count)
            .map(|worker| Stager {
                worker,
                workers: count,
                fs: fs.clone(),
                dir: dir.to_path_buf(),
                compression,
                inline_max,
                segment_size,
                slots: Vec::new(),
                arena: Vec::new(),
                index: Vec::new(),
                runs: Vec::new(),
                run_budget: (RUN_BUDGET / count).max(1),
                envelope: Vec::new(),
            })
            .collect();
        for (index, base) in bases.into_iter().enumerate() {
            stagers[index % count].slots.push(StagedSlot {
                dir: bulk.join(slot_name(index)),
                next_seq: base.checkpoint_seq + 1,
                base,
                chunk_id: 0,
                chunk: None,
                chunk_end: 0,
                buffer_at: 0,
                buffer: Vec::new(),
                payload: Vec::new(),
                count: 0,
                segment_at: 0,
                chunk_files: BTreeMap::new(),
                files: Vec::new(),
                cells: 0,
                cell_bytes: 0,
            });
        }
        let mut load =
            BulkLoad { fs, dir: dir.to_path_buf(), slot_count, workers: Vec::new(), committed: false, keys: 0 };
        for stager in stagers {
            let (sender, receiver) = sync_channel::<Message>(QUEUE);
            let name = format!("velo-bulk-{}", stager.worker);
            let handle = std::thread::Builder::new()
                .name(name)
                .spawn(move || stager.run(receiver))
                .map_err(|e| Error::io("start a thread", &bulk, e))?;
            load.workers.push(Worker {
                sender: Some(sender),
                handle: Some(handle),
                pending: Vec::new(),
                pending_bytes: 0,
            });
        }
        Ok(load)
    }

    /// Bytes of cells kept in memory before a sorted run is spilled to disk (64 MiB unless set, shared by
    /// the workers; tests set it low to exercise the merge).
    pub fn set_run_budget(&mut self, bytes: usize) {
        let share = (bytes / self.workers.len().max(1)).max(1);
        for worker in 0..self.workers.len() {
            // A worker that failed reports its error at the next write or at the build.
            let _ = self.hand_over(worker);
            let _ = self.send(worker, Message::RunBudget(share));
        }
    }

    /// Adds writes to slot `slot`. As with `Slot::write_batch`, the ops of one key (a split collection's
    /// header, parts and owner record) all go to the slot of the key, whatever their own keys hash to.
    /// The slots are empty, so a delete only cancels an earlier write of the load. A key written twice
    /// keeps its last value. The ops are staged by a worker thread: an error there (a failed write)
    /// is returned by a later call, or by the commit.
    pub fn write_slot(&mut self, slot: usize, ops: Vec<BatchOp>) -> Result<()> {
        let worker = self.worker_of(slot)?;
        for op in ops {
            self.queue(slot, worker, op)?;
        }
        self.hand_over_if_full(worker)
    }

    /// [`BulkLoad::write_slot`] for a single op (a string key), without a vector per key: the tools
    /// hand over millions of keys one at a time.
    pub fn write_op(&mut self, slot: usize, op: BatchOp) -> Result<()> {
        let worker = self.worker_of(slot)?;
        self.queue(slot, worker, op)?;
        self.hand_over_if_full(worker)
    }

    /// The worker that stages slot `slot`.
    fn worker_of(&self, slot: usize) -> Result<usize> {
        if slot >= self.slot_count {
            return Err(Error::Config(format!("bulk load: no slot {slot}")));
        }
        if self.workers.is_empty() {
            return Err(Error::Config("bulk load: no worker".into()));
        }
        Ok(slot % self.workers.len())
    }

    /// Adds one op to `worker`'s pending batch (checking the key's length).
    fn queue(&mut self, slot: usize, worker: usize, op: BatchOp) -> Result<()> {
        let local = (slot / self.workers.len()) as u32;
        let target = &mut self.workers[worker];
        match &op {
            BatchOp::Set { key, value, .. } => {
                if key.len() > page::MAX_KEY_LEN {
                    return Err(Error::TooLarge(format!(
                        "key of {} bytes exceeds the limit of {} bytes",
                        key.len(),
                        page::MAX_KEY_LEN
                    )));
                }
                self.keys += 1;
                target.pending_bytes += key.len() + value.len();
            }
            BatchOp::Delete { key, .. } => target.pending_bytes += key.len(),
        }
        target.pending.push((local, op));
        Ok(())
    }

    fn hand_over_if_full(&mut self, worker: usize) -> Result<()> {
        let target = &self.workers[worker];
        if target.pending.len() >= BATCH_OPS || target.pending_bytes >= BATCH_BYTES {
            self.hand_over(worker)?;
        }
        Ok(())
    }

    /// Sends worker `worker` the ops pending for it.
    fn hand_over(&mut self, worker: usize) -> Result<()> {
        let Some(target) = self.workers.get_mut(worker) else { return Ok(()) };
        if target.pending.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut target.pending, Vec::with_capacity(BATCH_OPS));
        target.pending_bytes = 0;
        self.send(worker, Message::Ops(batch))
    }

    fn send(&mut self, worker: usize, message: Message) -> Result<()> {
        let Some(target) = self.workers.get_mut(worker) else { return Ok(()) };
        if target.sender.as_ref().is_some_and(|sender| sender.send(message).is_ok()) {
            return Ok(());
        }
        // The worker stopped: its result says why.
        match target.finish() {
            Err(error) => Err(error),
            Ok(_) => Err(Error::Config("bulk load: a worker stopped".into())),
        }
    }

    /// Stops the workers and builds every slot that received keys (the workers' slots in parallel);
    /// returns the commit plan.
    pub(crate) fn build(&mut self) -> Result<CommitPlan> {
        for worker in 0..self.workers.len() {
            self.hand_over(worker)?;
        }
        let mut stagers = Vec::with_capacity(self.workers.len());
        for worker in &mut self.workers {
            stagers.push(worker.finish()?);
        }
        let built: Vec<Result<PlanSlots>> = match stagers.as_mut_slice() {
            [one] => vec![one.build()],
            many => std::thread::scope(|scope| {
                let handles: Vec<_> = many.iter_mut().map(|stager| scope.spawn(move || stager.build())).collect();
                handles
                    .into_iter()
                    .map(|handle| handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
                    .collect()
            }),
        };
        drop(stagers);
        let mut plan = CommitPlan { slots: Vec::new() };
        for slots in built {
            plan.slots.extend(slots?);
        }
        plan.slots.sort_by_key(|(slot, _, _)| *slot);
        let fs = self.fs.as_ref();
        let bulk = staging_dir(&self.dir);
        fs.sync_dir(&bulk).map_err(io_err("fsync", &bulk))?;
        fs.sync_dir(&self.dir).map_err(io_err("fsync", &self.dir))?;
        fail_point("before-commit");
        Ok(plan)
    }

    /// Marks the load published (its files now belong to the slots).
    pub(crate) fn set_committed(&mut self) {
        self.committed = true;
    }
}

impl Drop for BulkLoad {
    fn drop(&mut self) {
        // Stop the workers first: none may write a staged file after the clean-up.
        for worker in &mut self.workers {
            worker.sender = None;
            if let Some(handle) = worker.handle.take() {
                let _ = handle.join();
            }
        }
        if !self.committed {
            if let Err(error) = discard(self.fs.as_ref(), &self.dir) {
                tracing::warn!(%error, "could not remove the staged files of an abandoned bulk load");
            }
        }
    }
}

/// A borrowed cell value as staged: inline bytes, or where the value went.
enum CellRef<'a> {
    Inline(&'a [u8]),
    Segment(SegmentLocation),
    Big { id: u64, envelope_len: u64 },
}

impl Stager {
    /// The worker's loop: stages every batch it receives until the load closes its queue.
    fn run(mut self, receiver: std::sync::mpsc::Receiver<Message>) -> Result<Stager> {
        for message in receiver {
            match message {
                Message::Ops(batch) => {
                    for (local, op) in batch {
                        self.write(local as usize, op)?;
                    }
                }
                Message::RunBudget(bytes) => self.run_budget = bytes.max(1),
            }
        }
        Ok(self)
    }

    fn write(&mut self, local: usize, op: BatchOp) -> Result<()> {
        if local >= self.slots.len() {
            return Err(Error::Config(format!("bulk load: no local slot {local}")));
        }
        match op {
            BatchOp::Set { db, key, kind, value, expire_at_ms } => {
                let mut envelope = std::mem::take(&mut self.envelope);
                envelope::encode_into(kind, &value, self.compression, &mut envelope);
                drop(value);
                let added = self.add(local, db, &key, kind, &envelope, expire_at_ms.unwrap_or(0));
                self.envelope = envelope;
                added
            }
            BatchOp::Delete { db, key } => self.add_delete(local, db, &key),
        }
    }

    /// Reserves the in-memory buffer once, for the whole budget (pages are only touched as cells
    /// arrive), so that it never grows by copying and is reused run after run.
    fn reserve(&mut self) {
        if self.arena.capacity() == 0 {
            let budget = self.run_budget.min(u32::MAX as usize / 2);
            self.arena.reserve_exact(budget + PAGE_SIZE);
            self.index.reserve_exact(budget / INDEX_ENTRY + 1);
        }
    }

    /// Spills the buffer once it holds the budget.
    fn after_cell(&mut self) -> Result<()> {
        if self.arena.len() + self.index.len() * INDEX_ENTRY >= self.run_budget
            || self.arena.len() > u32::MAX as usize / 2
        {
            self.spill()?;
        }
        Ok(())
    }

    fn add_delete(&mut self, local: usize, db: u16, key: &[u8]) -> Result<()> {
        self.reserve();
        let staged = &mut self.slots[local];
        let seq = staged.next_seq;
        staged.next_seq += 1;
        let rhash = key_hash(db, key).reverse_bits();
        let offset = self.arena.len() as u32;
        encode_cell(&mut self.arena, 0, db, 0, key, None);
        self.index.push((local as u16, rhash, seq, offset));
        self.after_cell()
    }

    fn add(
        &mut self,
        local: usize,
        db: u16,
        key: &[u8],
        kind: ValueKind,
        envelope: &[u8],
        expire_at: u64,
    ) -> Result<()> {
        self.reserve();
        let fs = self.fs.clone();
        let inline_max = self.inline_max;
        let segment_size = self.segment_size;
        let zstd_level = self.compression.segments.then_some(self.compression.level);
        let staged = &mut self.slots[local];
        let seq = staged.next_seq;
        staged.next_seq += 1;
        staged.cells += 1;
        let len = envelope.len();
        let value = if len <= inline_max && CELL_HEADER_LEN + key.len() + len <= CELL_AREA {
            CellRef::Inline(envelope)
        } else if segment::record_len(key.len(), len) <= segment_size {
            if staged.count > 0
                && (staged.payload.len() + segment::record_len(key.len(), len) > segment_size
                    || staged.count == u16::MAX)
            {
                staged.seal(fs.as_ref(), zstd_level)?;
            }
            if staged.count == 0 {
                staged.start_segment(fs.as_ref())?;
                if staged.payload.capacity() == 0 {
                    staged.payload.reserve_exact(segment_size);
                }
            }
            let location = SegmentLocation {
                file: staged.chunk_id,
                segment_offset: staged.segment_at as u32,
                record_offset: staged.payload.len() as u32,
                envelope_len: len as u32,
            };
            segment::encode_record(seq, db, key, envelope, &mut staged.payload);
            staged.count += 1;
            CellRef::Segment(location)
        } else {
            staged.ensure_dir(fs.as_ref())?;
            let name = segment::big_file_name(seq);
            let path = staged.dir.join(&name);
            let file = fs.open(&path, true).map_err(io_err("create", &path))?;
            file.set_len(0).map_err(io_err("truncate", &path))?;
            file.write_all_at(&segment::encode_big_value(seq, db, key, envelope), 0).map_err(io_err("write", &path))?;
            file.sync().map_err(io_err("fsync", &path))?;
            staged.files.push(name);
            CellRef::Big { id: seq, envelope_len: len as u64 }
        };
        let inline_len = match &value {
            CellRef::Inline(envelope) => Some(envelope.len()),
            _ => None,
        };
        staged.cell_bytes += page::cell_len(seq, expire_at, db, key.len(), inline_len) as u64;
        let rhash = key_hash(db, key).reverse_bits();
        let offset = self.arena.len() as u32;
        encode_cell(&mut self.arena, expire_at, db, kind as u8, key, Some(&value));
        self.index.push((local as u16, rhash, seq, offset));
        self.after_cell()
    }

    /// Sorts the buffered cells and writes them to a new run file.
    fn spill(&mut self) -> Result<()> {
        if self.index.is_empty() {
            return Ok(());
        }
        sort_index(&mut self.index);
        let path = staging_dir(&self.dir).join(format!("run-{}-{:06}", self.worker, self.runs.len()));
        let file = self.fs.open(&path, true).map_err(io_err("create", &path))?;
        file.set_len(0).map_err(io_err("truncate", &path))?;
        let mut out = Vec::with_capacity(WRITE_BUFFER + PAGE_SIZE);
        out.extend_from_slice(&format::file_header(MAGIC_RUN, 0));
        // Bytes of the file already written (`out` goes after them).
        let mut written = 0u64;
        let mut ranges = vec![(0u64, 0u64); self.slots.len()];
        for &(slot, rhash, seq, offset) in &self.index {
            let range = &mut ranges[slot as usize];
            if range.1 == 0 {
                range.0 = written + out.len() as u64;
            }
            out.put_u64(rhash);
            out.put_u64(seq);
            out.extend_from_slice(cell_bytes(&self.arena, offset as usize));
            range.1 = written + out.len() as u64;
            if out.len() >= WRITE_BUFFER {
                file.write_all_at(&out, written).map_err(io_err("write", &path))?;
                written += out.len() as u64;
                out.clear();
            }
        }
        file.write_all_at(&out, written).map_err(io_err("write", &path))?;
        self.runs.push((path, ranges));
        // Kept, with their capacity, for the next run.
        self.arena.clear();
        self.index.clear();
        Ok(())
    }

    /// Builds every slot of this worker that received keys; returns their part of the commit plan.
    fn build(&mut self) -> Result<PlanSlots> {
        let zstd_level = self.compression.segments.then_some(self.compression.level);
        let fs = self.fs.clone();
        for staged in &mut self.slots {
            if staged.count > 0 {
                staged.seal(fs.as_ref(), zstd_level)?;
            }
            staged.flush(fs.as_ref())?;
        }
        // The last buffer is merged from memory: sorted, not spilled.
        sort_index(&mut self.index);
        let mut plan = Vec::new();
        let mut memory_at = 0usize;
        for local in 0..self.slots.len() {
            let memory_end = memory_at + self.index[memory_at..].partition_point(|entry| entry.0 as usize == local);
            if self.slots[local].cells == 0 {
                memory_at = memory_end;
                continue;
            }
            let mut sources: Vec<Source<'_>> = Vec::new();
            for (path, ranges) in &self.runs {
                let (start, end) = ranges[local];
                if end > start {
                    let file = fs.open_read(path).map_err(io_err("open", path))?;
                    sources.push(Source::File { file, path: path.clone(), at: start, end, buf: Vec::new(), pos: 0 });
                }
            }
            sources.push(Source::Memory { arena: &self.arena, index: &self.index[memory_at..memory_end], pos: 0 });
            memory_at = memory_end;
            let staged = &mut self.slots[local];
            let seq = staged.build(fs.as_ref(), sources)?;
            let slot = self.worker + local * self.workers;
            plan.push((slot as u32, seq, staged.files.clone()));
        }
        for (path, _) in std::mem::take(&mut self.runs) {
            fs.remove_file(&path).map_err(io_err("remove", &path))?;
        }
        self.arena = Vec::new();
        self.index = Vec::new();
        for staged in &mut self.slots {
            staged.chunk = None;
        }
        Ok(plan)
    }
}

/// Sorts a worker's cell index by (local slot, reversed hash, sequence). A radix sort on one 128-bit key
/// (slot, hash, sequence less the smallest) when the sequences span less than 2^48, which a load's
/// always do; a comparison sort otherwise. The comparison sort was about 4% of a load's CPU time.
fn sort_index(index: &mut [(u16, u64, u64, u32)]) {
    let (min, max) = index.iter().fold((u64::MAX, 0u64), |(lo, hi), e| (lo.min(e.2), hi.max(e.2)));
    if index.is_empty() {
        return;
    }
    if max - min < 1 << 48 {
        super::radix::sort_by_key(index, 16, |e| (e.0 as u128) << 112 | (e.1 as u128) << 48 | (e.2 - min) as u128);
    } else {
        index.sort_unstable_by_key(|&(slot, rhash, seq, _)| (slot, rhash, seq));
    }
}

/// Cell bytes in the arena and in run files: expire u64 | db u16 | kind u8 | storage u8 | key_len u16 |
/// value_len u16 | key | value (inline envelope, or the 16-byte location).
fn encode_cell(out: &mut Vec<u8>, expire_at: u64, db: u16, kind: u8, key: &[u8], value: Option<&CellRef<'_>>) {
    out.put_u64(expire_at);
    out.put_u16(db);
    out.push(kind);
    match value {
        None => {
            out.push(STORE_DELETE);
            out.put_u16(key.len() as u16);
            out.put_u16(0);
            out.extend_from_slice(key);
        }
        Some(CellRef::Inline(envelope)) => {
            out.push(STORE_INLINE);
            out.put_u16(key.len() as u16);
            out.put_u16(envelope.len() as u16);
            out.extend_from_slice(key);
            out.extend_from_slice(envelope);
        }
        Some(CellRef::Segment(location)) => {
            out.push(STORE_SEGMENT);
            out.put_u16(key.len() as u16);
            out.put_u16(16);
            out.extend_from_slice(key);
            out.put_u32(location.file);
            out.put_u32(location.segment_offset);
            out.put_u32(location.record_offset);
            out.put_u32(location.envelope_len);
        }
        Some(CellRef::Big { id, envelope_len }) => {
            out.push(STORE_BIG);
            out.put_u16(key.len() as u16);
            out.put_u16(16);
            out.extend_from_slice(key);
            out.put_u64(*id);
            out.put_u64(*envelope_len);
        }
    }
}

const CELL_FIXED: usize = 16;

fn cell_len_at(bytes: &[u8]) -> usize {
    let key_len = u16::from_le_bytes([bytes[12], bytes[13]]) as usize;
    let value_len = u16::from_le_bytes([bytes[14], bytes[15]]) as usize;
    CELL_FIXED + key_len + value_len
}

fn cell_bytes(arena: &[u8], offset: usize) -> &[u8] {
    let len = cell_len_at(&arena[offset..]);
    &arena[offset..offset + len]
}

fn decode_cell(rhash: u64, seq: u64, bytes: &[u8], path: &Path) -> Result<StagedCell> {
    let bad = || Error::corrupt(path, 0, "bulk run record malformed");
    let mut reader = ByteReader::new(bytes);
    let expire_at = reader.u64().ok_or_else(bad)?;
    let db = reader.u16().ok_or_else(bad)?;
    let kind = reader.u8().ok_or_else(bad)?;
    let storage = reader.u8().ok_or_else(bad)?;
    let key_len = reader.u16().ok_or_else(bad)?;
    let value_len = reader.u16().ok_or_else(bad)?;
    let key = reader.take(key_len as usize).ok_or_else(bad)?.to_vec();
    let value = reader.take(value_len as usize).ok_or_else(bad)?;
    let mut v = ByteReader::new(value);
    let value = match storage {
        STORE_INLINE => Some(CellValue::Inline(value.to_vec())),
        STORE_SEGMENT => Some(CellValue::Segment(SegmentLocation {
            file: v.u32().ok_or_else(bad)?,
            segment_offset: v.u32().ok_or_else(bad)?,
            record_offset: v.u32().ok_or_else(bad)?,
            envelope_len: v.u32().ok_or_else(bad)?,
        })),
        STORE_BIG => Some(CellValue::Big { id: v.u64().ok_or_else(bad)?, envelope_len: v.u64().ok_or_else(bad)? }),
        _ => None,
    };
    Ok(StagedCell { rhash, seq, expire_at, db, kind, key, value })
}

/// A sorted stream of one slot's cells: a range of a run file, or of the in-memory buffer.
enum Source<'a> {
    File { file: Arc<dyn FileHandle>, path: PathBuf, at: u64, end: u64, buf: Vec<u8>, pos: usize },
    Memory { arena: &'a [u8], index: &'a [(u16, u64, u64, u32)], pos: usize },
}

impl Source<'_> {
    fn next(&mut self) -> Result<Option<StagedCell>> {
        match self {
            Source::Memory { arena, index, pos } => {
                let Some(&(_, rhash, seq, offset)) = index.get(*pos) else { return Ok(None) };
                *pos += 1;
                decode_cell(rhash, seq, cell_bytes(arena, offset as usize), Path::new("bulk buffer")).map(Some)
            }
            Source::File { file, path, at, end, buf, pos } => {
                // Refill when the buffer may not hold a whole record (records are below 8 KiB).
                if buf.len() - *pos < 16 + CELL_FIXED + 8192 && *at < *end {
                    buf.drain(..*pos);
                    *pos = 0;
                    let want = (READ_BUFFER as u64).min(*end - *at) as usize;
                    let old = buf.len();
                    buf.resize(old + want, 0);
                    file.read_exact_at(&mut buf[old..], *at).map_err(io_err("read", path))?;
                    *at += want as u64;
                }
                if *pos >= buf.len() {
                    return Ok(None);
                }
                let bad = || Error::corrupt(path.as_path(), *at, "bulk run record truncated");
                let rest = &buf[*pos..];
                if rest.len() < 16 + CELL_FIXED {
                    return Err(bad());
                }
                let rhash = u64::from_le_bytes(rest[0..8].try_into().map_err(|_| bad())?);
                let seq = u64::from_le_bytes(rest[8..16].try_into().map_err(|_| bad())?);
                let len = cell_len_at(&rest[16..]);
                if rest.len() < 16 + len {
                    return Err(bad());
                }
                let cell = decode_cell(rhash, seq, &rest[16..16 + len], path)?;
                *pos += 16 + len;
                Ok(Some(cell))
            }
        }
    }
}

impl StagedSlot {
    fn ensure_dir(&mut self, fs: &dyn FileSystem) -> Result<()> {
        if self.files.is_empty() && self.chunk.is_none() {
            fs.create_dir_all(&self.dir).map_err(io_err("create", &self.dir))?;
        }
        Ok(())
    }

    /// Opens a new chunk file when there is none yet or the current one is full.
    fn start_segment(&mut self, fs: &dyn FileSystem) -> Result<()> {
        if self.chunk.is_none() || self.chunk_end >= CHUNK_FILE_MAX {
            self.ensure_dir(fs)?;
            self.flush(fs)?;
            if let Some(meta) = self.chunk_files.get_mut(&self.chunk_id) {
                meta.committed_len = self.chunk_end;
            }
            self.chunk_id += 1;
            let name = segment::chunk_file_name(self.chunk_id);
            let path = self.dir.join(&name);
            let file = fs.open(&path, true).map_err(io_err("create", &path))?;
            file.set_len(0).map_err(io_err("truncate", &path))?;
            self.chunk = Some(file);
            self.files.push(name);
            self.buffer.clear();
            self.buffer.extend_from_slice(&format::file_header(format::MAGIC_CHUNK, 0));
            self.buffer_at = 0;
            self.chunk_end = FILE_HEADER_LEN as u64;
            self.chunk_files.insert(self.chunk_id, ChunkFileMeta::default());
        }
        self.segment_at = self.chunk_end;
        Ok(())
    }

    fn seal(&mut self, fs: &dyn FileSystem, zstd_level: Option<i32>) -> Result<()> {
        let bytes = segment::encode_segment(&self.payload, self.count, zstd_level);
        let meta = self.chunk_files.entry(self.chunk_id).or_default();
        meta.written_bytes += self.payload.len() as u64;
        self.buffer.extend_from_slice(&bytes);
        self.chunk_end += bytes.len() as u64;
        self.payload.clear();
        self.count = 0;
        if self.buffer.len() >= WRITE_BUFFER {
            self.flush(fs)?;
        }
        Ok(())
    }

    fn flush(&mut self, _fs: &dyn FileSystem) -> Result<()> {
        if let Some(file) = &self.chunk {
            if !self.buffer.is_empty() {
                let path = self.dir.join(segment::chunk_file_name(self.chunk_id));
                file.write_all_at(&self.buffer, self.buffer_at).map_err(io_err("write", &path))?;
                self.buffer_at += self.buffer.len() as u64;
                self.buffer.clear();
            }
        }
        Ok(())
    }

    /// Writes the slot's pages and metadata from its sorted cells; returns its checkpoint sequence.
    fn build(&mut self, fs: &dyn FileSystem, mut sources: Vec<Source<'_>>) -> Result<u64> {
        self.ensure_dir(fs)?;
        if let Some(meta) = self.chunk_files.get_mut(&self.chunk_id) {
            meta.committed_len = self.chunk_end;
        }
        for id in self.chunk_files.keys() {
            let path = self.dir.join(segment::chunk_file_name(*id));
            let file = fs.open(&path, false).map_err(io_err("open", &path))?;
            file.sync().map_err(io_err("fsync", &path))?;
        }
        self.chunk = None;
        let checkpoint_seq = self.next_seq - 1;
        // Size the table for every staged cell (a key written twice is counted twice: a little room).
        let mut level = 0u8;
        let estimate = self.cell_bytes as f64;
        while estimate > BULK_FILL * ((1u64 << level) * CELL_AREA as u64) as f64 && level < 50 {
            level += 1;
        }
        let mut meta = SlotMeta {
            checkpoint_seq,
            level,
            split: 0,
            overflow_pages: 1,
            free_overflow: Vec::new(),
            used_bytes: 0,
            key_counts: BTreeMap::new(),
            db_flush_seq: self.base.db_flush_seq.clone(),
            chunk_files: self.chunk_files.clone(),
            active_chunk: self.chunk_id.max(1),
            pending_deletes: Vec::new(),
        };
        for chunk in meta.chunk_files.values_mut() {
            chunk.live_bytes = 0;
        }
        let header_page = |path: &Path| -> Result<Arc<dyn FileHandle>> {
            let file = fs.open(path, true).map_err(io_err("create", path))?;
            file.set_len(0).map_err(io_err("truncate", path))?;
            let mut page = vec![0u8; PAGE_SIZE];
            page[..FILE_HEADER_LEN].copy_from_slice(&format::file_header(format::MAGIC_BUCKETS, 0));
            file.write_all_at(&page, 0).map_err(io_err("write", path))?;
            Ok(file)
        };
        let buckets_path = self.dir.join(BUCKETS_FILE);
        let overflow_path = self.dir.join(OVERFLOW_FILE);
        let buckets = header_page(&buckets_path)?;
        let overflow = header_page(&overflow_path)?;

        // Merge the sorted sources; cells come out in bit-reversed hash order, i.e. bucket by bucket.
        let mut heads: Vec<Option<StagedCell>> = Vec::with_capacity(sources.len());
        let mut heap = BinaryHeap::new();
        for (i, source) in sources.iter_mut().enumerate() {
            let head = source.next()?;
            if let Some(cell) = &head {
                heap.push(Reverse((cell.rhash, cell.seq, i)));
            }
            heads.push(head);
        }
        let top_bits = |rhash: u64| if level == 0 { 0 } else { rhash >> (64 - level as u32) };
        let bucket_count = 1u64 << level;
        let mut writer = PageWriter { buckets, overflow, buckets_path, overflow_path, level, checkpoint_seq };
        // Buckets before `next_top` are written; `cells` are those of bucket `pending`.
        let mut next_top = 0u64;
        let mut pending: Option<u64> = None;
        // The bucket's cells; a `None` value is a delete that won (dropped when the bucket is written).
        let mut cells: Vec<(Cell, bool)> = Vec::new();
        loop {
            let next = match heap.pop() {
                Some(Reverse((_, _, i))) => {
                    let cell = heads[i].take();
                    let refill = sources[i].next()?;
                    if let Some(c) = &refill {
                        heap.push(Reverse((c.rhash, c.seq, i)));
                    }
                    heads[i] = refill;
                    cell
                }
                None => None,
            };
            let top = next.as_ref().map(|c| top_bits(c.rhash));
            if let Some(done) = pending {
                if top != Some(done) {
                    while next_top < done {
                        writer.write_bucket(&mut meta, next_top, Vec::new())?;
                        next_top += 1;
                    }
                    let live = std::mem::take(&mut cells).into_iter().filter(|(_, deleted)| !deleted).map(|(c, _)| c);
                    writer.write_bucket(&mut meta, done, live.collect())?;
                    next_top = done + 1;
                }
            }
            let Some(staged) = next else { break };
            pending = top;
            let hash = staged.rhash.reverse_bits();
            let kind = ValueKind::try_from(staged.kind)
                .map_err(|_| Error::corrupt(&self.dir, 0, format!("bulk cell of unknown kind {}", staged.kind)))?;
            let deleted = staged.value.is_none();
            let cell = Cell {
                hash,
                seq: staged.seq,
                expire_at: staged.expire_at,
                db: staged.db,
                key: staged.key,
                kind,
                value: staged.value.unwrap_or(CellValue::Inline(Vec::new())),
            };
            // Same hash, database and key as an earlier cell: the later write wins (sorted by seq). Cells
            // come sorted by hash, so only the last ones, of the same hash, can be such a cell.
            let tail = cells.len() - cells.iter().rev().take_while(|(c, _)| c.hash == hash).count();
            let duplicate = cells
                .get(tail..)
                .and_then(|same| same.iter().rposition(|(c, _)| c.db == cell.db && c.key == cell.key))
                .map(|at| tail + at);
            if let Some(at) = duplicate {
                let (old, old_deleted) = std::mem::replace(&mut cells[at], (cell, deleted));
                if let (CellValue::Big { id, .. }, false) = (old.value, old_deleted) {
                    meta.pending_deletes.push(segment::big_file_name(id));
                }
                continue;
            }
            cells.push((cell, deleted));
        }
        while next_top < bucket_count {
            writer.write_bucket(&mut meta, next_top, Vec::new())?;
            next_top += 1;
        }
        for name in &meta.pending_deletes {
            self.files.retain(|f| f != name);
            let path = self.dir.join(name);
            fs.remove_file(&path).map_err(io_err("remove", &path))?;
        }
        meta.pending_deletes.clear();
        writer.buckets.sync().map_err(io_err("fsync", &writer.buckets_path))?;
        writer.overflow.sync().map_err(io_err("fsync", &writer.overflow_path))?;
        self.files.push(BUCKETS_FILE.into());
        self.files.push(OVERFLOW_FILE.into());
        let meta_path = meta::slot_meta_path(&self.dir);
        let file = fs.open(&meta_path, true).map_err(io_err("create", &meta_path))?;
        file.set_len(0).map_err(io_err("truncate", &meta_path))?;
        file.write_all_at(&meta.encode(), 0).map_err(io_err("write", &meta_path))?;
        file.sync().map_err(io_err("fsync", &meta_path))?;
        self.files.push("meta".into());
        fs.sync_dir(&self.dir).map_err(io_err("fsync", &self.dir))?;
        Ok(checkpoint_seq)
    }
}

/// Writes a slot's bucket pages (and overflow chains) as the merge completes them.
struct PageWriter {
    buckets: Arc<dyn FileHandle>,
    overflow: Arc<dyn FileHandle>,
    buckets_path: PathBuf,
    overflow_path: PathBuf,
    level: u8,
    checkpoint_seq: u64,
}

impl PageWriter {
    /// Writes the bucket whose hashes have these top bits of their reversed form.
    fn write_bucket(&mut self, meta: &mut SlotMeta, top: u64, cells: Vec<Cell>) -> Result<()> {
        let bucket = if self.level == 0 { 0 } else { top.reverse_bits() >> (64 - self.level as u32) };
        for cell in &cells {
            meta.used_bytes += cell.encoded_len() as u64;
            *meta.key_counts.entry(cell.db).or_insert(0) += 1;
            if let CellValue::Segment(location) = &cell.value {
                if let Some(chunk) = meta.chunk_files.get_mut(&location.file) {
                    chunk.live_bytes += segment::record_len(cell.key.len(), location.envelope_len as usize) as u64;
                }
            }
        }
        // Split the cells into pages: the primary page, then an overflow chain.
        let mut pages: Vec<Vec<Cell>> = vec![Vec::new()];
        let mut used = 0usize;
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
        let first_overflow = meta.overflow_pages;
        meta.overflow_pages += pages.len() as u64 - 1;
        let count = pages.len();
        for (i, page_cells) in pages.into_iter().enumerate() {
            let next_overflow = if i + 1 < count { first_overflow + i as u64 } else { 0 };
            let page = Page {
                kind: if i == 0 { page::PAGE_KIND_PRIMARY } else { page::PAGE_KIND_OVERFLOW },
                level: self.level,
                bucket,
                next_overflow,
                checkpoint_seq: self.checkpoint_seq,
                cells: page_cells,
            };
            let bytes = page.encode();
            if i == 0 {
                self.buckets
                    .write_all_at(&bytes[..], (bucket + 1) * PAGE_SIZE as u64)
                    .map_err(io_err("write", &self.buckets_path))?;
            } else {
                let number = first_overflow + i as u64 - 1;
                self.overflow
                    .write_all_at(&bytes[..], number * PAGE_SIZE as u64)
                    .map_err(io_err("write", &self.overflow_path))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> CommitPlan {
        CommitPlan { slots: vec![(3, 9, vec!["meta".into(), "buckets".into()])] }
    }

    #[test]
    fn golden_commit_file() {
        let bytes = plan().encode();
        assert_eq!(&bytes[..16], &format::file_header(MAGIC_BULK_COMMIT, 0)[..]);
        let body = [
            0x01, 0, 0, 0, 0x03, 0, 0, 0, 0x09, 0, 0, 0, 0, 0, 0, 0, 0x02, 0, 0, 0, 0x04, 0, b'm', b'e', b't', b'a',
            0x07, 0, b'b', b'u', b'c', b'k', b'e', b't', b's',
        ];
        assert_eq!(&bytes[16..bytes.len() - 4], &body[..]);
        assert_eq!(&bytes[bytes.len() - 4..], &format::crc32(&body).to_le_bytes()[..]);
        assert_eq!(CommitPlan::decode(&bytes, Path::new("COMMIT")).unwrap(), plan());
    }

    #[test]
    fn every_flip_and_truncation_of_the_commit_file_is_rejected() {
        let bytes = plan().encode();
        for at in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 0x20;
            assert!(CommitPlan::decode(&bad, Path::new("COMMIT")).is_err(), "flip at {at}");
        }
        for len in 0..bytes.len() {
            assert!(CommitPlan::decode(&bytes[..len], Path::new("COMMIT")).is_err(), "truncated to {len}");
        }
    }
}
