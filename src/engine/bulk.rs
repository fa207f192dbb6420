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
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::buckets::{BUCKETS_FILE, OVERFLOW_FILE};
use super::envelope::{self, CompressionPolicy, ValueKind};
use super::error::{Error, Result};
use super::format::{self, ByteReader, PutLe, FILE_HEADER_LEN};
use super::io::{FileHandle, FileSystem};
use super::key::key_hash;
use super::meta::{self, ChunkFileMeta, SlotMeta};
use super::page::{self, SegmentLocation, CELL_AREA, CELL_HEADER_LEN, PAGE_SIZE};
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
/// Written chunk-file bytes after which their writeback to the disk is started (without waiting): the
/// disk writes them while the load goes on, instead of all at the fsyncs of the build.
const WRITEBACK_AFTER: u64 = 8 << 20;
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
/// A sort entry of the in-memory buffer: reversed key hash, offset of the cell in the arena, local slot.
/// Within a run a slot's cells arrive in sequence order and are appended to the arena, so ordering by
/// offset orders equal hashes by sequence: the sequence itself stays in the arena, before the cell, and
/// the entries are 16 bytes (they were 32 with it; the sort moves them several times).
type IndexEntry = (u64, u32, u16);
/// Bytes of a sort entry.
const INDEX_ENTRY: usize = std::mem::size_of::<IndexEntry>();

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
    /// Offset in the chunk file up to which writeback was started.
    writeback_at: u64,
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
    /// String writes packed into one buffer (see [`BulkLoad::write_string`]); the worker sends the
    /// buffer back for reuse.
    Packed(Vec<u8>),
    RunBudget(usize),
}

/// Bytes of a packed write before its key: local slot, database, expiry (0: none), key length, envelope
/// length. The envelope follows the key: a raw value's, built in place by the caller's thread, so that
/// the worker stages it without another copy or allocation per key.
const PACKED_HEADER: usize = 2 + 2 + 8 + 2 + 4;
/// Bytes of packed writes handed to a worker at a time. (256 KiB cost 15-25% more CPU on a 2M-key
/// restore than 1 MiB: more hand-overs, each a wake-up of the worker.)
const PACKED_BATCH: usize = BATCH_BYTES;
/// A packed buffer larger than this (a huge value went through it) is dropped instead of reused.
const PACKED_KEEP: usize = 4 * PACKED_BATCH;

/// A worker thread and the ops not yet handed to it.
struct Worker {
    sender: Option<SyncSender<Message>>,
    handle: Option<JoinHandle<Result<Stager>>>,
    pending: Batch,
    pending_bytes: usize,
    /// Packed string writes not yet handed over (at most one of `pending` and `packed` holds writes,
    /// so that the worker receives them in order).
    packed: Vec<u8>,
    /// Packed buffers the worker has finished with.
    spare: Receiver<Vec<u8>>,
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
    /// Cells not yet spilled (each its sequence, then the encoded cell), and their sort entries.
    arena: Vec<u8>,
    index: Vec<IndexEntry>,
    /// Spilled runs: file, and per local slot the byte range of its cells.
    runs: Vec<(PathBuf, Vec<(u64, u64)>)>,
    run_budget: usize,
    /// Scratch for a value's envelope (reused: no allocation per value).
    envelope: Vec<u8>,
    /// Where packed buffers go back to the loader once staged.
    spare: Option<Sender<Vec<u8>>>,
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
                spare: None,
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
                writeback_at: 0,
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
        for mut stager in stagers {
            let (sender, receiver) = sync_channel::<Message>(QUEUE);
            let (spare_sender, spare) = channel();
            stager.spare = Some(spare_sender);
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
                packed: Vec::new(),
                spare,
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

    /// [`BulkLoad::write_slot`] for a string key whose value is known (`value`, stored as it is or
    /// compressed by the engine's policy), without owned buffers: key and value are copied once, into a
    /// buffer of packed writes that the worker stages from and hands back, so that a restore of millions
    /// of keys allocates nothing per key on either thread.
    pub fn write_string(
        &mut self,
        slot: usize,
        db: u16,
        key: &[u8],
        value: &[u8],
        expire_at_ms: Option<u64>,
    ) -> Result<()> {
        let worker = self.worker_of(slot)?;
        if key.len() > page::MAX_KEY_LEN {
            return Err(Error::TooLarge(format!(
                "key of {} bytes exceeds the limit of {} bytes",
                key.len(),
                page::MAX_KEY_LEN
            )));
        }
        let envelope_len = u32::try_from(value.len() + 2)
            .map_err(|_| Error::TooLarge(format!("value of {} bytes in a bulk load", value.len())))?;
        if !self.workers[worker].pending.is_empty() {
            self.hand_over(worker)?;
        }
        let local = (slot / self.workers.len()) as u16;
        let target = &mut self.workers[worker];
        if target.packed.capacity() == 0 {
            target.packed = target.spare.try_recv().unwrap_or_else(|_| Vec::with_capacity(PACKED_BATCH + (64 << 10)));
        }
        let packed = &mut target.packed;
        packed.put_u16(local);
        packed.put_u16(db);
        packed.put_u64(expire_at_ms.unwrap_or(0));
        packed.put_u16(key.len() as u16);
        packed.put_u32(envelope_len);
        packed.extend_from_slice(key);
        packed.extend_from_slice(&envelope::raw_header(ValueKind::String));
        packed.extend_from_slice(value);
        self.keys += 1;
        if packed.len() >= PACKED_BATCH {
            self.hand_over(worker)?;
        }
        Ok(())
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
        if !self.workers[worker].packed.is_empty() {
            self.hand_over(worker)?;
        }
        let local = (slot / self.workers.len()) as u32;
        let target = &mut self.workers[worker];
        match &op {
            BatchOp::Set { key, value, .. } | BatchOp::SetString { key, value, .. } => {
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
        if !target.packed.is_empty() {
            let packed = std::mem::take(&mut target.packed);
            return self.send(worker, Message::Packed(packed));
        }
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
                Message::Packed(packed) => {
                    self.write_packed(&packed)?;
                    if packed.capacity() <= PACKED_KEEP {
                        let mut packed = packed;
                        packed.clear();
                        if let Some(spare) = &self.spare {
                            // The loader may have finished already: then the buffer is simply freed.
                            let _ = spare.send(packed);
                        }
                    }
                }
                Message::RunBudget(bytes) => self.run_budget = bytes.max(1),
            }
        }
        Ok(self)
    }

    /// Stages the string writes of a packed buffer ([`BulkLoad::write_string`]).
    fn write_packed(&mut self, packed: &[u8]) -> Result<()> {
        let malformed = || Error::Config("bulk load: malformed packed writes".into());
        let mut reader = ByteReader::new(packed);
        while reader.remaining() > 0 {
            let header = reader.take(PACKED_HEADER).ok_or_else(malformed)?;
            let mut fields = ByteReader::new(header);
            let (Some(local), Some(db), Some(expire_at), Some(key_len), Some(envelope_len)) =
                (fields.u16(), fields.u16(), fields.u64(), fields.u16(), fields.u32())
            else {
                return Err(malformed());
            };
            let key = reader.take(key_len as usize).ok_or_else(malformed)?;
            let raw = reader.take(envelope_len as usize).ok_or_else(malformed)?;
            let local = local as usize;
            if local >= self.slots.len() {
                return Err(Error::Config(format!("bulk load: no local slot {local}")));
            }
            let value = raw.get(2..).ok_or_else(malformed)?;
            if envelope::stays_raw(ValueKind::String, value, self.compression) {
                self.add(local, db, key, ValueKind::String, raw, expire_at)?;
            } else {
                let mut envelope = std::mem::take(&mut self.envelope);
                envelope::encode_into(ValueKind::String, value, self.compression, &mut envelope);
                let added = self.add(local, db, key, ValueKind::String, &envelope, expire_at);
                self.envelope = envelope;
                added?;
            }
        }
        Ok(())
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
            BatchOp::SetString { db, key, value, encoding, expire_at_ms } => {
                let mut envelope = std::mem::take(&mut self.envelope);
                envelope::encode_into(ValueKind::String, &value, self.compression, &mut envelope);
                envelope::mark_string(&mut envelope, encoding);
                drop(value);
                let added = self.add(local, db, &key, ValueKind::String, &envelope, expire_at_ms.unwrap_or(0));
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
        self.arena.put_u64(seq);
        encode_cell(&mut self.arena, 0, db, 0, key, None);
        self.index.push((rhash, offset, local as u16));
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
        staged.cell_bytes += match &value {
            CellRef::Inline(envelope) => page::cell_len(seq, expire_at, db, key.len(), Some(envelope.len())),
            CellRef::Segment(location) => page::segment_cell_len(seq, expire_at, db, key.len(), location),
            CellRef::Big { .. } => page::cell_len(seq, expire_at, db, key.len(), None),
        } as u64;
        let rhash = key_hash(db, key).reverse_bits();
        let offset = self.arena.len() as u32;
        self.arena.put_u64(seq);
        encode_cell(&mut self.arena, expire_at, db, kind as u8, key, Some(&value));
        self.index.push((rhash, offset, local as u16));
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
        for &(rhash, offset, slot) in &self.index {
            let range = &mut ranges[slot as usize];
            if range.1 == 0 {
                range.0 = written + out.len() as u64;
            }
            // A run record: reversed hash, then the arena's sequence and cell as they are.
            out.put_u64(rhash);
            let offset = offset as usize;
            out.extend_from_slice(&self.arena[offset..offset + 8 + cell_bytes(&self.arena, offset + 8).len()]);
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
            let memory_end = memory_at + self.index[memory_at..].partition_point(|entry| entry.2 as usize == local);
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

/// Sorts a worker's cell index by (local slot, reversed hash, arena offset), i.e. by (local slot, reversed
/// hash, sequence): a radix sort on one 112-bit key. (A comparison sort was about 4% of a load's CPU.)
fn sort_index(index: &mut [IndexEntry]) {
    super::radix::sort_by_key(index, 14, |e| (e.2 as u128) << 96 | (e.0 as u128) << 32 | e.1 as u128);
}

/// Cell bytes in the arena and in run files: expire u64 | db u16 | kind u8 | storage u8 | key_len u16 |
/// value_len u16 | key | value (inline envelope, or the 16-byte long form of the location, which
/// `page::write_cell_parts` writes in its short form when it fits).
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

/// Bytes the staged `cell` takes in a page, written with sequence `seq` ([`page::cell_len`]).
fn page_cell_len(seq: u64, cell: &[u8]) -> usize {
    let expire_at = u64::from_le_bytes(cell[0..8].try_into().unwrap_or_default());
    let db = u16::from_le_bytes([cell[8], cell[9]]);
    let key_len = u16::from_le_bytes([cell[12], cell[13]]) as usize;
    let value_len = u16::from_le_bytes([cell[14], cell[15]]) as usize;
    match cell[11] {
        STORE_INLINE => page::cell_len(seq, expire_at, db, key_len, Some(value_len)),
        // A location is written in its short form when it fits (`page::write_cell_parts`).
        storage => {
            let value = &cell[CELL_FIXED + key_len..CELL_FIXED + key_len + value_len];
            page::cell_len(seq, expire_at, db, key_len, None) - page::LOCATION_LEN
                + page::parts_value_len(storage, value)
        }
    }
}

fn cell_len_at(bytes: &[u8]) -> usize {
    let key_len = u16::from_le_bytes([bytes[12], bytes[13]]) as usize;
    let value_len = u16::from_le_bytes([bytes[14], bytes[15]]) as usize;
    CELL_FIXED + key_len + value_len
}

fn cell_bytes(arena: &[u8], offset: usize) -> &[u8] {
    let len = cell_len_at(&arena[offset..]);
    &arena[offset..offset + len]
}

/// A sorted stream of one slot's cells: a range of a run file, or of the in-memory buffer.
enum Source<'a> {
    File { file: Arc<dyn FileHandle>, path: PathBuf, at: u64, end: u64, buf: Vec<u8>, pos: usize },
    Memory { arena: &'a [u8], index: &'a [IndexEntry], pos: usize },
}

impl Source<'_> {
    /// The next cell's sort key (reversed hash, sequence) and staged bytes, borrowed: the merge copies
    /// only the bytes of the bucket it is filling, nothing is decoded into owned cells. [`Source::advance`]
    /// moves past it.
    fn peek(&mut self) -> Result<Option<(u64, u64, &[u8])>> {
        match self {
            Source::Memory { arena, index, pos } => {
                let Some(&(rhash, offset, _)) = index.get(*pos) else { return Ok(None) };
                let offset = offset as usize;
                let seq = u64::from_le_bytes(arena[offset..offset + 8].try_into().unwrap_or_default());
                Ok(Some((rhash, seq, cell_bytes(arena, offset + 8))))
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
                let rest = &buf[*pos..];
                let bad = || Error::corrupt(path.as_path(), *at, "bulk run record truncated");
                if rest.len() < 16 + CELL_FIXED {
                    return Err(bad());
                }
                let rhash = u64::from_le_bytes(rest[0..8].try_into().map_err(|_| bad())?);
                let seq = u64::from_le_bytes(rest[8..16].try_into().map_err(|_| bad())?);
                let len = cell_len_at(&rest[16..]);
                if rest.len() < 16 + len {
                    return Err(bad());
                }
                Ok(Some((rhash, seq, &rest[16..16 + len])))
            }
        }
    }

    /// Moves past the cell [`Source::peek`] returned (`len`: its staged bytes).
    fn advance(&mut self, len: usize) {
        match self {
            Source::Memory { pos, .. } => *pos += 1,
            Source::File { pos, .. } => *pos += 16 + len,
        }
    }
}

/// The staged cells of the bucket the merge is filling: their bytes (copied from the sources, in the
/// staged layout) and, in merge order, where each is. A later write of the same key replaces its entry.
#[derive(Default)]
struct BucketCells {
    bytes: Vec<u8>,
    entries: Vec<BucketEntry>,
}

#[derive(Clone, Copy)]
struct BucketEntry {
    hash: u64,
    seq: u64,
    start: usize,
    len: usize,
}

/// The key of a staged cell (see [`encode_cell`]).
fn staged_key(cell: &[u8]) -> &[u8] {
    let key_len = u16::from_le_bytes([cell[12], cell[13]]) as usize;
    &cell[CELL_FIXED..CELL_FIXED + key_len]
}

impl BucketCells {
    fn clear(&mut self) {
        self.bytes.clear();
        self.entries.clear();
    }

    /// Adds a staged cell. Same hash, database and key as an earlier cell: the later write wins (cells
    /// come sorted by hash and seq, so only the last entries, of the same hash, can be such a cell); a
    /// big-value file the earlier write made is then listed in `big_deletes`.
    fn add(&mut self, hash: u64, seq: u64, cell: &[u8], dir: &Path, big_deletes: &mut Vec<String>) -> Result<()> {
        ValueKind::try_from(cell[10])
            .map_err(|_| Error::corrupt(dir, 0, format!("bulk cell of unknown kind {}", cell[10])))?;
        if cell[11] > STORE_DELETE {
            return Err(Error::corrupt(dir, 0, format!("bulk cell of unknown storage {}", cell[11])));
        }
        let entry = BucketEntry { hash, seq, start: self.bytes.len(), len: cell.len() };
        let key = staged_key(cell);
        for at in (0..self.entries.len()).rev() {
            let old = self.entries[at];
            if old.hash != hash {
                break;
            }
            let old_cell = &self.bytes[old.start..old.start + old.len];
            if old_cell[8..10] == cell[8..10] && staged_key(old_cell) == key {
                if old_cell[11] == STORE_BIG {
                    let at = CELL_FIXED + staged_key(old_cell).len();
                    let id = u64::from_le_bytes(old_cell[at..at + 8].try_into().unwrap_or_default());
                    big_deletes.push(segment::big_file_name(id));
                }
                self.entries[at] = entry;
                self.bytes.extend_from_slice(cell);
                return Ok(());
            }
        }
        self.entries.push(entry);
        self.bytes.extend_from_slice(cell);
        Ok(())
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
            self.writeback_at = 0;
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
                if self.buffer_at - self.writeback_at >= WRITEBACK_AFTER {
                    file.start_writeback(self.writeback_at, self.buffer_at - self.writeback_at);
                    self.writeback_at = self.buffer_at;
                }
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
        let buckets_path = self.dir.join(BUCKETS_FILE);
        let overflow_path = self.dir.join(OVERFLOW_FILE);
        let create = |path: &Path| -> Result<Arc<dyn FileHandle>> {
            let file = fs.open(path, true).map_err(io_err("create", path))?;
            file.set_len(0).map_err(io_err("truncate", path))?;
            Ok(file)
        };
        let buckets = create(&buckets_path)?;
        let overflow = create(&overflow_path)?;
        let mut header = vec![0u8; PAGE_SIZE];
        header[..FILE_HEADER_LEN].copy_from_slice(&format::file_header(format::MAGIC_BUCKETS, 0));
        buckets.write_all_at(&header, 0).map_err(io_err("write", &buckets_path))?;
        overflow.write_all_at(&header, 0).map_err(io_err("write", &overflow_path))?;
        let bucket_count = 1u64 << level;
        let max_chunk = meta.chunk_files.keys().next_back().copied().unwrap_or(0) as usize;
        let mut writer = PageWriter {
            buckets,
            overflow,
            buckets_path,
            overflow_path,
            level,
            checkpoint_seq,
            overflow_buf: Vec::new(),
            overflow_at: PAGE_SIZE as u64,
            page: vec![0u8; PAGE_SIZE],
            live: Vec::new(),
            breaks: Vec::new(),
            db_counts: Vec::new(),
            chunk_live: vec![0; max_chunk + 1],
        };

        // Merge the sorted sources; cells come out in bit-reversed hash order, i.e. bucket by bucket.
        let mut heap = BinaryHeap::with_capacity(sources.len());
        for (i, source) in sources.iter_mut().enumerate() {
            if let Some((rhash, seq, _)) = source.peek()? {
                heap.push(Reverse((rhash, seq, i)));
            }
        }
        let top_bits = |rhash: u64| if level == 0 { 0 } else { rhash >> (64 - level as u32) };
        // Buckets before `next_top` are written; `cells` are those of bucket `pending`.
        let mut next_top = 0u64;
        let mut pending: Option<u64> = None;
        let mut cells = BucketCells::default();
        let empty = BucketCells::default();
        loop {
            let next = heap.pop().map(|Reverse(head)| head);
            let top = next.map(|(rhash, _, _)| top_bits(rhash));
            if let Some(done) = pending {
                if top != Some(done) {
                    while next_top < done {
                        writer.write_bucket(&mut meta, next_top, &empty)?;
                        next_top += 1;
                    }
                    writer.write_bucket(&mut meta, done, &cells)?;
                    cells.clear();
                    next_top = done + 1;
                }
            }
            let Some((rhash, seq, i)) = next else { break };
            pending = top;
            let source = &mut sources[i];
            let len = match source.peek()? {
                Some((_, _, bytes)) => {
                    cells.add(rhash.reverse_bits(), seq, bytes, &self.dir, &mut meta.pending_deletes)?;
                    bytes.len()
                }
                None => return Err(Error::corrupt(&self.dir, 0, "bulk run ended under the merge")),
            };
            source.advance(len);
            if let Some((rhash, seq, _)) = source.peek()? {
                heap.push(Reverse((rhash, seq, i)));
            }
        }
        while next_top < bucket_count {
            writer.write_bucket(&mut meta, next_top, &empty)?;
            next_top += 1;
        }
        writer.finish(&mut meta)?;
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

/// Overflow pages are buffered up to this many bytes (they are numbered in the order they are written,
/// so the buffer is always the next stretch of the file).
const OVERFLOW_BUFFER: usize = 1 << 20;

/// Writes a slot's bucket pages (and overflow chains) as the merge completes them, encoding each page
/// straight from the staged cells' bytes.
struct PageWriter {
    buckets: Arc<dyn FileHandle>,
    overflow: Arc<dyn FileHandle>,
    buckets_path: PathBuf,
    overflow_path: PathBuf,
    level: u8,
    checkpoint_seq: u64,
    /// Overflow pages not yet written, and the file offset of the first.
    overflow_buf: Vec<u8>,
    overflow_at: u64,
    /// A primary page being written. (Primary pages go one write each: the merge completes buckets in
    /// bit-reversed order, scattered over the file. Building the file's image in memory and writing it
    /// in large writes was measured slower: the kernel zeroing the image's fresh memory and copying it
    /// back, cold, into the page cache cost more than the small writes of pages still in the CPU cache.)
    page: Vec<u8>,
    /// Scratch of `write_bucket`: the live entries, the index in `live` where each page after the first
    /// starts.
    live: Vec<usize>,
    breaks: Vec<usize>,
    /// Live cells per database, live record bytes per chunk file id (into the metadata at the end).
    db_counts: Vec<u64>,
    chunk_live: Vec<u64>,
}

impl PageWriter {
    /// Writes the bucket whose hashes have these top bits of their reversed form.
    fn write_bucket(&mut self, meta: &mut SlotMeta, top: u64, cells: &BucketCells) -> Result<()> {
        let bucket = if self.level == 0 { 0 } else { top.reverse_bits() >> (64 - self.level as u32) };
        // The live cells (a delete that won is dropped), split into the primary page and an overflow chain.
        self.live.clear();
        self.breaks.clear();
        let mut used = 0usize;
        for (n, entry) in cells.entries.iter().enumerate() {
            let cell = &cells.bytes[entry.start..entry.start + entry.len];
            if cell[11] == STORE_DELETE {
                continue;
            }
            // A page cell is the staged cell in the compact layout, with the sequence added.
            let len = page_cell_len(entry.seq, cell);
            meta.used_bytes += len as u64;
            let db = u16::from_le_bytes([cell[8], cell[9]]) as usize;
            if db >= self.db_counts.len() {
                self.db_counts.resize(db + 1, 0);
            }
            self.db_counts[db] += 1;
            if cell[11] == STORE_SEGMENT {
                let key_len = staged_key(cell).len();
                let at = CELL_FIXED + key_len;
                let file = u32::from_le_bytes(cell[at..at + 4].try_into().unwrap_or_default()) as usize;
                let envelope_len = u32::from_le_bytes(cell[at + 12..at + 16].try_into().unwrap_or_default());
                if let Some(live) = self.chunk_live.get_mut(file) {
                    *live += segment::record_len(key_len, envelope_len as usize) as u64;
                }
            }
            if used + len > CELL_AREA {
                self.breaks.push(self.live.len());
                used = 0;
            }
            used += len;
            self.live.push(n);
        }
        let count = self.breaks.len() + 1;
        let first_overflow = meta.overflow_pages;
        meta.overflow_pages += count as u64 - 1;
        for i in 0..count {
            let lo = if i == 0 { 0 } else { self.breaks[i - 1] };
            let hi = self.breaks.get(i).copied().unwrap_or(self.live.len());
            let next_overflow = if i + 1 < count { first_overflow + i as u64 } else { 0 };
            let kind = if i == 0 { page::PAGE_KIND_PRIMARY } else { page::PAGE_KIND_OVERFLOW };
            let header =
                PageHeader { kind, level: self.level, bucket, next_overflow, checkpoint_seq: self.checkpoint_seq };
            if i == 0 {
                let at = (bucket + 1) * PAGE_SIZE as u64;
                encode_page(&mut self.page, &header, cells, &self.live[lo..hi]);
                self.buckets.write_all_at(&self.page, at).map_err(io_err("write", &self.buckets_path))?;
            } else {
                let offset = (first_overflow + i as u64 - 1) * PAGE_SIZE as u64;
                if offset != self.overflow_at + self.overflow_buf.len() as u64 {
                    self.flush_overflow()?;
                    self.overflow_at = offset;
                }
                let start = self.overflow_buf.len();
                self.overflow_buf.resize(start + PAGE_SIZE, 0);
                encode_page(&mut self.overflow_buf[start..], &header, cells, &self.live[lo..hi]);
                if self.overflow_buf.len() >= OVERFLOW_BUFFER {
                    self.flush_overflow()?;
                }
            }
        }
        Ok(())
    }

    fn flush_overflow(&mut self) -> Result<()> {
        if !self.overflow_buf.is_empty() {
            self.overflow
                .write_all_at(&self.overflow_buf, self.overflow_at)
                .map_err(io_err("write", &self.overflow_path))?;
            self.overflow_at += self.overflow_buf.len() as u64;
            self.overflow_buf.clear();
        }
        Ok(())
    }

    /// Writes what is buffered and puts the counts into the slot's metadata.
    fn finish(&mut self, meta: &mut SlotMeta) -> Result<()> {
        self.flush_overflow()?;
        for (db, &count) in self.db_counts.iter().enumerate() {
            if count > 0 {
                meta.key_counts.insert(db as u16, count);
            }
        }
        for (&id, chunk) in meta.chunk_files.iter_mut() {
            chunk.live_bytes = self.chunk_live.get(id as usize).copied().unwrap_or(0);
        }
        Ok(())
    }
}

/// A page's header fields (docs/format.md §"Key-bucket files").
struct PageHeader {
    kind: u8,
    level: u8,
    bucket: u64,
    next_overflow: u64,
    checkpoint_seq: u64,
}

/// Encodes a page holding the cells `members` (indexes into `cells.entries`) into `out` (one page), as
/// `Page::encode` would: the same bytes, without building owned cells.
fn encode_page(out: &mut [u8], header: &PageHeader, cells: &BucketCells, members: &[usize]) {
    out[4] = header.kind | page::PAGE_FLAG_COMPACT;
    out[5] = header.level;
    out[6..8].copy_from_slice(&(members.len() as u16).to_le_bytes());
    out[8..16].copy_from_slice(&header.bucket.to_le_bytes());
    out[16..24].copy_from_slice(&header.next_overflow.to_le_bytes());
    out[24..32].copy_from_slice(&header.checkpoint_seq.to_le_bytes());
    let mut at = page::PAGE_HEADER_LEN;
    for &n in members {
        let entry = cells.entries[n];
        let cell = &cells.bytes[entry.start..entry.start + entry.len];
        // Staged: expire u64 | db u16 | kind u8 | storage u8 | key_len u16 | value_len u16 | key | value.
        let expire_at = u64::from_le_bytes(cell[0..8].try_into().unwrap_or_default());
        let db = u16::from_le_bytes([cell[8], cell[9]]);
        let key = staged_key(cell);
        let value = &cell[CELL_FIXED + key.len()..];
        at += page::write_cell_parts(&mut out[at..], entry.seq, expire_at, db, cell[10], cell[11], key, value);
    }
    out[at..].fill(0);
    let crc = format::crc32(&out[4..]);
    out[0..4].copy_from_slice(&crc.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::page::{Cell, CellValue, Page};

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

    #[test]
    fn pages_encoded_from_staged_cells_are_page_encode_bytes() {
        let location = SegmentLocation { file: 3, segment_offset: 4096, record_offset: 77, envelope_len: 120 };
        let values = [
            (CellRef::Inline(b"\x00abc"), CellValue::Inline(b"\x00abc".to_vec())),
            (CellRef::Segment(location), CellValue::Segment(location)),
            (CellRef::Big { id: 42, envelope_len: 9000 }, CellValue::Big { id: 42, envelope_len: 9000 }),
        ];
        let mut cells = BucketCells::default();
        let mut expected = Vec::new();
        let mut big_deletes = Vec::new();
        let mut staged = Vec::new();
        for (i, (staged_value, value)) in values.into_iter().enumerate() {
            let (db, key) = (i as u16, format!("key:{i}").into_bytes());
            let hash = key_hash(db, &key);
            staged.clear();
            encode_cell(&mut staged, 1000 + i as u64, db, ValueKind::Hash as u8, &key, Some(&staged_value));
            cells.add(hash, 10 + i as u64, &staged, Path::new("t"), &mut big_deletes).unwrap();
            let seq = 10 + i as u64;
            expected.push(Cell { hash, seq, expire_at: 1000 + i as u64, db, key, kind: ValueKind::Hash, value });
        }
        let header =
            PageHeader { kind: page::PAGE_KIND_OVERFLOW, level: 3, bucket: 5, next_overflow: 9, checkpoint_seq: 77 };
        let mut out = vec![0xee; PAGE_SIZE];
        encode_page(&mut out, &header, &cells, &[0, 1, 2]);
        let page = Page {
            kind: page::PAGE_KIND_OVERFLOW,
            level: 3,
            bucket: 5,
            next_overflow: 9,
            checkpoint_seq: 77,
            cells: expected.clone(),
        };
        assert_eq!(&out[..], &page.encode()[..]);
        // Only some of the cells, in another order.
        encode_page(&mut out, &header, &cells, &[2, 0]);
        let page = Page { cells: vec![expected[2].clone(), expected[0].clone()], ..page };
        assert_eq!(&out[..], &page.encode()[..]);

        // A later write of the same key (here a delete) takes the earlier one's place; the big-value
        // file the earlier one made is to be deleted.
        let key = b"key:2".to_vec();
        staged.clear();
        encode_cell(&mut staged, 0, 2, 0, &key, None);
        cells.add(key_hash(2, &key), 20, &staged, Path::new("t"), &mut big_deletes).unwrap();
        assert_eq!(cells.entries.len(), 3);
        assert_eq!(cells.entries[2].seq, 20);
        assert_eq!(big_deletes, vec![segment::big_file_name(42)]);
        // The same key in another database is another key.
        staged.clear();
        encode_cell(&mut staged, 0, 5, 0, &key, None);
        cells.add(key_hash(2, &key), 21, &staged, Path::new("t"), &mut big_deletes).unwrap();
        assert_eq!(cells.entries.len(), 4);
        // An unknown kind is refused.
        staged[10] = 200;
        assert!(cells.add(7, 22, &staged, Path::new("t"), &mut big_deletes).is_err());
    }
}
