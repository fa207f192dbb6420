//! One slot: the WAL, its in-memory index of unflushed entries (the memtable), the key buckets and the
//! chunk segments, tied together. This file holds the read and write paths, scans, expiry and recovery;
//! `checkpoint.rs` moves memtable entries into the layers below.
//!
//! Read order: memtable first (it is newer), then the bucket chain of the key's hash, then the value's
//! segment or big file. Cells older than a database flush marker are dead. Every acknowledged write is in
//! the WAL until a checkpoint has made the layers below durable; recovery replays the WAL records newer
//! than the checkpoint recorded in the slot metadata (docs/recovery.md).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use super::buckets::{self, BucketStore, PageId};
use super::dwb;
use super::envelope::{self, CompressionPolicy, DictionaryMap, EnvelopeError, StringEncoding, ValueKind};
use super::error::{Error, Result};
use super::group;
use super::io::FileSystem;
use super::key::key_hash;
use super::memlayers::MemLayers;
use super::memtable::MemKeyBytes;
use super::meta::{self, SlotMeta};
use super::page::{self, Cell, CellValue, Page, MAX_KEY_LEN};
use super::segment::{self, ChunkStore};
use super::snapshot;
use super::txn::{self, Decisions, TxRegistry};
use super::wal::{self, WalOp, WalRecord, WalSync, WalWriter};
use super::{BatchOp, Change, ChangeListener, Clock, Entry, ExpireListener, FsyncCell, FsyncPolicy, KeyInfo};

/// Settings shared by every slot of an engine.
pub struct SlotConfig {
    pub(crate) fs: Arc<dyn FileSystem>,
    pub(crate) fsync: Arc<FsyncCell>,
    pub(crate) page_cache_bytes: usize,
    pub(crate) value_cache_bytes: usize,
    pub(crate) wal_flush_bytes: usize,
    pub(crate) segment_size: usize,
    pub(crate) inline_max: usize,
    pub(crate) compression: CompressionPolicy,
    pub(crate) read_only: bool,
    pub(crate) clock: Clock,
    pub(crate) change_listener: Option<Arc<dyn ChangeListener>>,
    pub(crate) expire_listener: Option<Arc<dyn ExpireListener>>,
    pub(crate) dictionaries: Arc<DictionaryMap>,
    pub(crate) transactions: Arc<TxRegistry>,
    /// The engine's checkpoint threads (`None`: checkpoints run on the writing thread).
    pub(crate) checkpointer: Option<Arc<super::checkpoint::Checkpointer>>,
}

/// Per-slot figures for INFO and metrics.
#[derive(Debug, Clone, Default)]
pub struct SlotStats {
    /// Slot index.
    pub slot: usize,
    /// Keys in all databases as of the last checkpoint (DBSIZE counts the unflushed ones too).
    pub keys: u64,
    /// Bytes in the WAL files (both, while a checkpoint is in flight).
    pub wal_bytes: u64,
    /// Entries in the unflushed WAL index.
    pub wal_entries: u64,
    /// Sequence up to which the layers below the WAL are durable.
    pub checkpoint_seq: u64,
    /// Last sequence assigned.
    pub last_seq: u64,
    /// Number of checkpoints since open.
    pub checkpoints: u64,
    /// Primary key buckets.
    pub buckets: u64,
    /// Overflow pages in use.
    pub overflow_pages: u64,
    /// Bytes used by cells across bucket pages.
    pub bucket_used_bytes: u64,
    /// Chunk files.
    pub chunk_files: u64,
    /// Bytes in chunk files.
    pub chunk_bytes: u64,
    /// Encoded bytes of records still live in chunk files.
    pub chunk_live_bytes: u64,
    /// Big-value files written since open.
    pub big_values: u64,
    /// Bytes in big-value files written since open.
    pub big_value_bytes: u64,
    /// Value bytes before compression, of values written since open.
    pub raw_value_bytes: u64,
    /// Value bytes after encoding and compression, of values written since open.
    pub stored_value_bytes: u64,
    /// Page cache hits.
    pub page_cache_hits: u64,
    /// Page cache misses.
    pub page_cache_misses: u64,
    /// Bytes held by the page cache.
    pub page_cache_bytes: u64,
    /// Value cache hits.
    pub value_cache_hits: u64,
    /// Value cache misses.
    pub value_cache_misses: u64,
    /// Bytes held by the value cache.
    pub value_cache_bytes: u64,
    /// True after a failed write or fsync: writes are refused.
    pub poisoned: bool,
}

/// Waits until a slot's writes so far are durable (`fsync always`); a no-op under the other policies.
pub struct DurabilityWaiter {
    sync: Option<(Arc<WalSync>, u64)>,
}

impl DurabilityWaiter {
    /// Blocks until durable; an error means the fsync failed and the slot is poisoned.
    pub fn wait(self) -> Result<()> {
        match self.sync {
            Some((sync, seq)) => sync.wait_durable(seq),
            None => Ok(()),
        }
    }
}

/// Forces a slot's WAL to disk (the `everysec` thread and `Engine::sync`).
#[derive(Clone)]
pub struct WalSyncer {
    sync: Arc<WalSync>,
}

impl WalSyncer {
    /// fsyncs now if anything written is not yet durable.
    pub fn sync_now(&self) -> Result<()> {
        self.sync.sync_now()
    }
}

/// Where an unflushed value's envelope is: always in the WAL, and also in memory when it is small. Keeping
/// large envelopes only in the WAL lets a memory budget index several times more writes, and every extra
/// write a checkpoint absorbs is a page rewrite saved.
#[derive(Debug, Clone)]
pub(crate) struct MemEnvelope {
    /// The envelope, if small enough to keep in memory. A boxed slice, 16 bytes, rather than a `Bytes`, 32:
    /// with it the entry's block is 112 bytes instead of 128 (issue 14). A read copies it out, which costs
    /// what the first clone of a `Bytes` made from a boxed slice cost (a block for its shared header).
    pub(crate) bytes: Option<Box<[u8]>>,
    /// Offset and encoded length of the WAL record holding it.
    pub(crate) record: (u64, u32),
    /// Length of the envelope.
    pub(crate) len: usize,
}

/// An unflushed change to one key.
#[derive(Debug, Clone)]
pub(crate) enum MemValue {
    /// The key is set to this envelope.
    Set { kind: ValueKind, envelope: MemEnvelope },
    /// The key is deleted.
    Delete,
    /// The key keeps its value below; only its expiry changed.
    Retime,
}

impl MemValue {
    /// Bytes this value holds in memory.
    pub(crate) fn memory_len(&self) -> usize {
        match self {
            MemValue::Set { envelope, .. } => envelope.bytes.as_ref().map_or(0, |bytes| bytes.len()),
            _ => 0,
        }
    }
}

/// A memtable entry: the newest unflushed state of a key.
#[derive(Debug, Clone)]
pub(crate) struct MemEntry {
    pub(crate) seq: u64,
    pub(crate) expire_at: u64,
    pub(crate) value: MemValue,
    /// Whether the key exists in the layers below (resolved lazily, for key counts).
    pub(crate) prior: Option<bool>,
}

/// Memtable key: bit-reversed key hash first, so that a range of the map is a range of scan positions.
pub(crate) type MemKey = (u64, u16, MemKeyBytes);

/// One record to append: op, database, expiry, key, envelope.
type WalWrite<'a> = (WalOp, u16, u64, &'a [u8], &'a [u8]);

/// A value encoded off its slot's lock ([`super::Engine::encode_value`]), for [`Slot::set_encoded`]: the
/// encoding (a dictionary compression above all, about a microsecond) then takes no time under the lock.
#[derive(Debug)]
pub struct Encoded {
    pub(crate) envelope: Vec<u8>,
    /// [`DictionaryMap::generation`] before encoding.
    pub(crate) generation: u64,
}

impl Encoded {
    /// The trained dictionary the encoding used, if any.
    pub fn dictionary(&self) -> Option<u32> {
        envelope::dictionary_id(&self.envelope)
    }
}

/// Unflushed envelopes up to this size stay in memory as well as in the WAL, so that reading a recent
/// small value costs no system call; larger ones are read back from the WAL.
const MEM_KEEP_ENVELOPE: usize = 512;

/// Parts of split collections (kind 7) stay in memory up to this size: a hot list end or hash bucket is
/// read by nearly every command on its collection.
const MEM_KEEP_PART_ENVELOPE: usize = 8 << 10;

/// Approximate bytes a memtable entry costs beyond its key and envelope: its place in the memtable's
/// arena (key and entry, 112 bytes) and its share of the hash table (a 4-byte arena index and a control
/// byte per bucket, at a load of 7/16 to 7/8), rounded up for the arena's last, partly used chunk. It was
/// 224 while the table held the entries themselves, 144 while each entry was a 128-byte heap block
/// (docs/performance.md, issue 14).
pub(crate) const MEM_ENTRY_OVERHEAD: usize = 128;

// The size of an arena place, which MEM_ENTRY_OVERHEAD counts.
const _: () = assert!(std::mem::size_of::<(MemKey, MemEntry)>() == 112);

/// Bits of a scan position (see [`Slot::scan`]).
pub(crate) const POSITION_BITS: u32 = 54;

/// One slot of a data directory. See the module docs.
pub struct Slot {
    pub(crate) index: usize,
    pub(crate) dir: PathBuf,
    pub(crate) config: Arc<SlotConfig>,
    pub(crate) meta: SlotMeta,
    pub(crate) wal: WalWriter,
    /// The active memtable and, while a checkpoint is in flight, the frozen one (`memlayers`).
    pub(crate) memtable: MemLayers,
    pub(crate) memtable_bytes: usize,
    /// Memtable bytes that trigger a checkpoint (`wal_flush_bytes` unless a memory budget lowered it).
    pub(crate) memtable_limit: usize,
    pub(crate) expiring_in_memtable: usize,
    /// FLUSHDB markers not yet in the metadata: database → sequence.
    pub(crate) db_flush_pending: BTreeMap<u16, u64>,
    /// Sequence of a FLUSHALL not yet applied to the layers below (0 for none).
    pub(crate) flush_all_seq: u64,
    /// True from a FLUSHALL that emptied the slot and reclaimed its files (its checkpoint done) until the
    /// next write: another FLUSHALL then has nothing to do. Client test suites flush an empty server before
    /// every test, and each such flush cost a checkpoint's fsyncs per slot (0.2-0.9 s on a loaded machine).
    pristine: bool,
    pub(crate) buckets: BucketStore,
    pub(crate) chunks: ChunkStore,
    pub(crate) next_seq: u64,
    pub(crate) last_written_seq: u64,
    pub(crate) poisoned: Option<&'static str>,
    pub(crate) sweep_bucket: u64,
    /// Whether the active-expire sweep has anything to find in the buckets (`sweep_gate`).
    pub(crate) sweep_gate: super::sweep_gate::SweepGate,
    /// Buckets holding dead cells (flushed databases) to rewrite at the next checkpoint.
    pub(crate) cleanup_buckets: BTreeSet<u64>,
    pub(crate) stats: SlotStats,
    /// Transactions that wrote here and have not committed: the checkpoint waits for them.
    pub(crate) open_transactions: BTreeSet<u64>,
    /// Highest transaction id among the records not yet checkpointed (0: none).
    pub(crate) unflushed_txid: u64,
    /// Keys with a future expiry seen by the current active-expire pass over the buckets, per database:
    /// (count, sum of remaining milliseconds).
    expiry_pass: BTreeMap<u16, (u64, u128)>,
    /// The same figures from the last complete pass (INFO keyspace's `expires` and `avg_ttl` estimate).
    expiry_seen: BTreeMap<u16, (u64, u128)>,
    /// The point-in-time snapshot being read, if any (`engine::snapshot`): before-images of changed keys.
    pub(crate) snapshot: Option<super::snapshot::SlotCapture>,
    /// Set while the snapshot reader holds the slot: reads answer as of the snapshot's instant.
    pub(crate) snapshot_view: bool,
    /// The checkpoint between its begin and its install, if any (`checkpoint.rs`).
    pub(crate) in_flight: Option<Arc<super::checkpoint::InFlight>>,
}

/// The scan position of a key hash: the top bits of its bit-reversed hash, so that every bucket (which
/// fixes the low bits of the hash) is one contiguous range of positions, and splitting a bucket splits its
/// range in two.
pub(crate) fn position_of(hash: u64) -> u64 {
    hash.reverse_bits() >> (64 - POSITION_BITS)
}

fn reverse_low_bits(value: u64, bits: u8) -> u64 {
    if bits == 0 {
        0
    } else {
        value.reverse_bits() >> (64 - bits as u32)
    }
}

impl Slot {
    /// Opens (or creates) the slot directory `dir`, recovering from a crash if needed: applies a complete
    /// double-write batch, removes files an interrupted checkpoint left behind, and reads the WAL. The WAL's
    /// records newer than the checkpoint are returned for [`Slot::replay`], which applies them once the
    /// engine knows which transactions committed (that takes every slot's WAL).
    pub fn open(index: usize, dir: &Path, config: Arc<SlotConfig>) -> Result<(Slot, Vec<(u64, u32, WalRecord)>)> {
        let fs = config.fs.clone();
        let read_only = config.read_only;
        let meta_path = meta::slot_meta_path(dir);
        let exists = fs.exists(&meta_path);
        if !exists && read_only {
            return Err(Error::Config(format!("{} is missing", meta_path.display())));
        }
        if !exists {
            Self::create(fs.as_ref(), dir, &config)?;
        }
        let mut meta = SlotMeta::decode(&meta::read_whole(fs.as_ref(), &meta_path)?, &meta_path)?;
        let mut buckets = BucketStore::open(fs.as_ref(), dir, false, read_only, config.page_cache_bytes)?;
        let dwb_path = dir.join(dwb::DWB_FILE);
        if fs.exists(&dwb_path) {
            let bytes = meta::read_whole(fs.as_ref(), &dwb_path)?;
            if let Some(batch) = dwb::recover(&bytes, &dwb_path)? {
                tracing::info!(
                    slot = index,
                    pages = batch.pages.len(),
                    "applying interrupted checkpoint from the double-write batch"
                );
                let batch_meta = SlotMeta::decode(&batch.meta, &dwb_path)?;
                for (id, page) in batch.pages {
                    if read_only {
                        buckets.override_page(id, Arc::from(page));
                    } else {
                        buckets.write_page(id, &page)?;
                    }
                }
                if !read_only {
                    buckets.sync()?;
                    meta::write_atomically(fs.as_ref(), &meta_path, &batch.meta)?;
                    let file = fs.open(&dwb_path, false).map_err(|e| Error::io("open", &dwb_path, e))?;
                    file.set_len(0).map_err(|e| Error::io("truncate", &dwb_path, e))?;
                    file.sync().map_err(|e| Error::io("fsync", &dwb_path, e))?;
                }
                meta = batch_meta;
            }
        }
        let mut chunks = ChunkStore::new(fs.clone(), dir, read_only, config.value_cache_bytes, config.segment_size);
        chunks.set_dictionaries(config.dictionaries.clone());
        if !read_only {
            Self::remove_leftovers(fs.as_ref(), dir, &mut meta, &mut chunks)?;
        }
        let (wal, replay) = WalWriter::open(fs.as_ref(), dir, index, read_only, meta.checkpoint_seq)?;
        let memtable_limit = config.wal_flush_bytes;
        let slot = Slot {
            index,
            dir: dir.to_path_buf(),
            config,
            next_seq: meta.checkpoint_seq + 1,
            meta,
            wal,
            memtable: MemLayers::default(),
            memtable_bytes: 0,
            memtable_limit,
            expiry_pass: BTreeMap::new(),
            expiry_seen: BTreeMap::new(),
            expiring_in_memtable: 0,
            db_flush_pending: BTreeMap::new(),
            flush_all_seq: 0,
            pristine: false,
            buckets,
            chunks,
            last_written_seq: 0,
            poisoned: None,
            sweep_bucket: 0,
            sweep_gate: Default::default(),
            cleanup_buckets: BTreeSet::new(),
            stats: SlotStats { slot: index, ..Default::default() },
            open_transactions: BTreeSet::new(),
            unflushed_txid: 0,
            snapshot: None,
            snapshot_view: false,
            in_flight: None,
        };
        let checkpoint_seq = slot.meta.checkpoint_seq;
        let records = replay.records.into_iter().filter(|(_, _, record)| record.seq > checkpoint_seq).collect();
        Ok((slot, records))
    }

    /// Applies the WAL records [`Slot::open`] returned, skipping those of transactions that did not commit.
    pub fn replay(&mut self, records: Vec<(u64, u32, WalRecord)>, decisions: &Decisions) -> Result<()> {
        let slot = self;
        let index = slot.index;
        let mut replayed = 0usize;
        let mut skipped = 0usize;
        for (offset, len, record) in records {
            slot.next_seq = record.seq + 1;
            if record.op == WalOp::Commit {
                continue;
            }
            if !decisions.applies(index, record.txid) {
                skipped += 1;
                continue;
            }
            slot.unflushed_txid = slot.unflushed_txid.max(record.txid);
            replayed += 1;
            match record.op {
                WalOp::Set => {
                    let kind = envelope::peek_kind(&record.envelope).map_err(|e| slot.envelope_error(e, 0))?;
                    slot.remember(
                        record.db,
                        &record.key,
                        record.seq,
                        record.expire_at,
                        MemValue::Set { kind, envelope: slot.mem_envelope(record.envelope, (offset, len)) },
                    );
                }
                WalOp::Delete => slot.remember(record.db, &record.key, record.seq, 0, MemValue::Delete),
                WalOp::Expire => slot.remember_expiry(record.db, &record.key, record.seq, record.expire_at)?,
                WalOp::FlushDb => slot.forget_db(record.db, record.seq),
                WalOp::FlushAll => slot.forget_all(record.seq),
                WalOp::Commit => {}
            }
        }
        if replayed > 0 {
            tracing::info!(slot = index, records = replayed, "replayed WAL");
        }
        if skipped > 0 {
            tracing::warn!(slot = index, records = skipped, "dropped WAL records of transactions that did not commit");
        }
        Ok(())
    }

    /// Creates an empty slot: page files with one empty bucket, then the metadata that makes it exist.
    fn create(fs: &dyn FileSystem, dir: &Path, config: &SlotConfig) -> Result<()> {
        fs.create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
        for stale in [wal::WAL_FILE, wal::WAL_FILE_2, dwb::DWB_FILE] {
            let path = dir.join(stale);
            if fs.exists(&path) {
                fs.remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
            }
        }
        let mut buckets = BucketStore::open(fs, dir, true, false, config.page_cache_bytes)?;
        let empty = Page {
            kind: page::PAGE_KIND_PRIMARY,
            level: 0,
            bucket: 0,
            next_overflow: 0,
            checkpoint_seq: 0,
            cells: vec![],
        };
        buckets.write_page(PageId::bucket(0), &empty.encode())?;
        buckets.sync()?;
        let meta = SlotMeta { overflow_pages: 1, active_chunk: 1, ..Default::default() };
        fs.sync_dir(dir).map_err(|e| Error::io("fsync", dir, e))?;
        meta::write_atomically(fs, &meta::slot_meta_path(dir), &meta.encode())
    }

    /// True when the slot holds no key in any database and nothing unflushed (see [`super::bulk`]).
    pub(crate) fn is_bulk_empty(&self) -> bool {
        self.memtable.is_empty()
            && self.wal.is_empty()
            && self.wal.previous_is_empty()
            && self.in_flight.is_none()
            && self.poisoned.is_none()
            && self.open_transactions.is_empty()
            && self.flush_all_seq <= self.meta.checkpoint_seq
            && self.db_flush_pending.is_empty()
            && self.meta.key_counts.values().all(|count| *count == 0)
    }

    /// Reopens the slot's layers after a bulk load replaced its files (the WAL, empty, stays).
    pub(crate) fn reload_after_bulk(&mut self) -> Result<()> {
        let fs = self.config.fs.clone();
        let meta_path = meta::slot_meta_path(&self.dir);
        let mut meta = SlotMeta::decode(&meta::read_whole(fs.as_ref(), &meta_path)?, &meta_path)?;
        self.buckets = BucketStore::open(fs.as_ref(), &self.dir, false, false, self.config.page_cache_bytes)?;
        let mut chunks =
            ChunkStore::new(fs.clone(), &self.dir, false, self.config.value_cache_bytes, self.config.segment_size);
        chunks.set_dictionaries(self.config.dictionaries.clone());
        Self::remove_leftovers(fs.as_ref(), &self.dir, &mut meta, &mut chunks)?;
        self.chunks = chunks;
        self.wal.reset(meta.checkpoint_seq)?;
        self.next_seq = meta.checkpoint_seq + 1;
        self.meta = meta;
        self.memtable_bytes = 0;
        self.expiring_in_memtable = 0;
        self.sweep_bucket = 0;
        self.sweep_gate = Default::default();
        self.cleanup_buckets.clear();
        self.expiry_pass.clear();
        Ok(())
    }

    /// Deletes what an interrupted checkpoint left: files listed for deletion, chunk files the metadata
    /// does not know, big values newer than the checkpoint, and segment bytes past a file's committed end.
    fn remove_leftovers(fs: &dyn FileSystem, dir: &Path, meta: &mut SlotMeta, chunks: &mut ChunkStore) -> Result<()> {
        for name in meta.pending_deletes.drain(..) {
            let path = dir.join(&name);
            if fs.exists(&path) {
                fs.remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
            }
        }
        for name in fs.list(dir).map_err(|e| Error::io("list", dir, e))? {
            let orphan = match (segment::parse_chunk_file_name(&name), segment::parse_big_file_name(&name)) {
                (Some(id), _) => !meta.chunk_files.contains_key(&id),
                (_, Some(id)) => id > meta.checkpoint_seq,
                _ => false,
            };
            if orphan {
                let path = dir.join(&name);
                tracing::info!(path = %path.display(), "removing file left by an interrupted checkpoint");
                fs.remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
            }
        }
        for (id, chunk) in &meta.chunk_files {
            let file = chunks.chunk_file(*id, false)?;
            let path = chunks.chunk_path(*id);
            let len = file.len().map_err(|e| Error::io("stat", &path, e))?;
            if len < chunk.committed_len {
                return Err(Error::corrupt(
                    &path,
                    len,
                    format!("chunk file is {len} bytes but {} are committed", chunk.committed_len),
                ));
            }
            if len > chunk.committed_len {
                file.set_len(chunk.committed_len).map_err(|e| Error::io("truncate", &path, e))?;
            }
        }
        Ok(())
    }

    pub(crate) fn now(&self) -> u64 {
        (self.config.clock)()
    }

    pub(crate) fn envelope_error(&self, err: EnvelopeError, offset: u64) -> Error {
        match err {
            EnvelopeError::DictMissing(id) => Error::DictMissing(id),
            EnvelopeError::Malformed(what) => {
                Error::corrupt(self.dir.join(wal::WAL_FILE), offset, format!("value envelope: {what}"))
            }
        }
    }

    /// The flush marker that makes older cells of `db` dead.
    pub(crate) fn flush_marker(&self, db: u16) -> u64 {
        let committed = self.meta.db_flush_seq.get(&db).copied().unwrap_or(0);
        let pending = self.db_flush_pending.get(&db).copied().unwrap_or(0);
        committed.max(pending).max(self.flush_all_seq)
    }

    /// The memtable entry of a key, found without allocating (reads take this path).
    pub(crate) fn mem_entry(&self, reversed_hash: u64, db: u16, key: &[u8]) -> Option<&MemEntry> {
        self.memtable.get(reversed_hash, db, key)
    }

    /// Finds a key's cell in the bucket layer (ignoring the memtable); dead cells are not returned.
    pub(crate) fn find_cell(&mut self, db: u16, key: &[u8]) -> Result<Option<Cell>> {
        let hash = key_hash(db, key);
        let bucket = buckets::bucket_of(hash, self.meta.level, self.meta.split);
        let mut id = PageId::bucket(bucket);
        for _ in 0..=self.meta.overflow_pages {
            let (cell, next) = self.buckets.find_cell(id, hash, db, key)?;
            if let Some(cell) = cell {
                return Ok((cell.seq >= self.flush_marker(db)).then_some(cell));
            }
            if next == 0 {
                return Ok(None);
            }
            id = PageId::overflow(next);
        }
        Err(Error::corrupt(self.buckets.path(id.file), id.number * page::PAGE_SIZE as u64, "overflow chain loops"))
    }

    /// Reads the envelope a cell points at.
    pub(crate) fn cell_envelope(&mut self, cell: &Cell) -> Result<Vec<u8>> {
        match &cell.value {
            CellValue::Inline(envelope) => Ok(envelope.clone()),
            CellValue::Segment(location) => {
                let file_len = self.meta.chunk_files.get(&location.file).map(|c| c.committed_len).ok_or_else(|| {
                    Error::corrupt(
                        self.chunks.chunk_path(location.file),
                        0,
                        "cell points into a chunk file the slot does not have",
                    )
                })?;
                self.chunks.read_value(*location, file_len, cell.db, &cell.key)
            }
            CellValue::Big { id, .. } => self.chunks.read_big(*id, cell.db, &cell.key),
        }
    }

    /// Decodes an envelope read from `file` (a file name in the slot directory, joined only for an error:
    /// every GET comes here).
    fn decode_envelope(&self, bytes: &Bytes, file: &str) -> Result<(ValueKind, Bytes)> {
        envelope::decode_shared(bytes, &self.config.dictionaries).map_err(|err| self.decode_error(err, file))
    }

    fn decode_error(&self, err: EnvelopeError, file: &str) -> Error {
        match err {
            EnvelopeError::DictMissing(id) => Error::DictMissing(id),
            EnvelopeError::Malformed(what) => Error::corrupt(self.dir.join(file), 0, format!("value envelope: {what}")),
        }
    }

    /// The newest state of a live key, with the memtable applied (`None`: missing, deleted or expired; an
    /// expired key is deleted first, see [`Slot::expire_found`]). A key found in the bucket layer is handed
    /// to `read` (with the chunk store its value may lie in) while its cell is borrowed from the cached
    /// page, so nothing of the cell is copied unless `read` copies it.
    fn probe<R>(
        &mut self,
        db: u16,
        key: &[u8],
        read: impl FnOnce(page::CellValueRef<'_>, &mut ChunkStore, &BTreeMap<u32, meta::ChunkFileMeta>) -> Result<R>,
    ) -> Result<Option<Lookup<R>>> {
        // The clock is read only for a key with a TTL (most have none): a read of it costs about as much
        // as a memtable hit on this project's VMs, and a script's GETs each made one.
        let hash = key_hash(db, key);
        let retime = match self.mem_entry(hash.reverse_bits(), db, key) {
            Some(entry) => match &entry.value {
                MemValue::Set { kind, envelope } if entry.expire_at == 0 || entry.expire_at > self.now() => {
                    let source = Source::Memtable(envelope.clone());
                    return Ok(Some(Lookup { kind: *kind, expire_at: entry.expire_at, source }));
                }
                MemValue::Set { .. } => {
                    self.expire_found(db, key)?;
                    return Ok(None);
                }
                MemValue::Delete => return Ok(None),
                MemValue::Retime => Some(entry.expire_at),
            },
            None => None,
        };
        let marker = self.flush_marker(db);
        let bucket = buckets::bucket_of(hash, self.meta.level, self.meta.split);
        let mut id = PageId::bucket(bucket);
        let chunks = &mut self.chunks;
        let files = &self.meta.chunk_files;
        let clock = &self.config.clock;
        let mut read = Some(read);
        for _ in 0..=self.meta.overflow_pages {
            let (found, next) = self.buckets.with_cell(id, hash, db, key, |cell| {
                if cell.seq < marker {
                    // A cell older than a FLUSHDB/FLUSHALL is dead.
                    return Ok(Probed::Missing);
                }
                let expire_at = retime.unwrap_or(cell.expire_at);
                if expire_at != 0 && expire_at <= clock() {
                    return Ok(Probed::Expired);
                }
                match read.take() {
                    Some(read) => {
                        let value = read(cell.value, chunks, files)?;
                        Ok(Probed::Live(Lookup { kind: cell.kind, expire_at, source: Source::Cell(value) }))
                    }
                    None => Ok(Probed::Missing),
                }
            })?;
            match found.transpose()? {
                Some(Probed::Live(lookup)) => return Ok(Some(lookup)),
                Some(Probed::Missing) => return Ok(None),
                Some(Probed::Expired) => {
                    self.expire_found(db, key)?;
                    return Ok(None);
                }
                None if next == 0 => return Ok(None),
                None => id = PageId::overflow(next),
            }
        }
        Err(Error::corrupt(self.buckets.path(id.file), id.number * page::PAGE_SIZE as u64, "overflow chain loops"))
    }

    /// [`Slot::probe`] for whether a key is live, its type and expiry.
    fn lookup(&mut self, db: u16, key: &[u8]) -> Result<Option<Lookup<()>>> {
        self.probe(db, key, |_, _, _| Ok(()))
    }

    /// A key found expired by a read: with an expire listener, deleted now and reported (Redis's lazy
    /// expiry); without one (tools, engine tests) left for the active-expire cycle.
    fn expire_found(&mut self, db: u16, key: &[u8]) -> Result<()> {
        let Some(listener) = self.config.expire_listener.clone() else { return Ok(()) };
        // As the active cycle, leave a slot with an open transaction alone (see `active_expire`).
        if self.config.read_only
            || self.poisoned.is_some()
            || self.wal.sync_handle().is_poisoned()
            || (self.has_open_transactions() && txn::current_txid(&self.config.transactions) == 0)
            || !listener.deletes_now()
        {
            return Ok(());
        }
        let (seq, _) = self.append(&[(WalOp::Delete, db, 0, key, &[])])?;
        self.remember(db, key, seq, 0, MemValue::Delete);
        listener.on_expired(db, key);
        Ok(())
    }

    /// The live value of a key.
    pub fn get(&mut self, db: u16, key: &[u8]) -> Result<Option<Entry>> {
        if self.snapshot_view {
            if let Some(found) = snapshot::view_get(self, db, key)? {
                return Ok(found);
            }
        }
        // A live value the memtable holds is decoded where it lies. Cloning its `Bytes` (as `probe` does)
        // would give a value written since the last checkpoint a shared header on its first read: an
        // allocation per key read, kept as long as the entry. A raw value is copied out, as from a page.
        if let Some(entry) = self.mem_entry(key_hash(db, key).reverse_bits(), db, key) {
            if let MemValue::Set { envelope: MemEnvelope { bytes: Some(bytes), .. }, .. } = &entry.value {
                if entry.expire_at == 0 || entry.expire_at > self.now() {
                    let expire_at_ms = (entry.expire_at != 0).then_some(entry.expire_at);
                    let (kind, value) = envelope::decode(bytes, &self.config.dictionaries)
                        .map_err(|err| self.decode_error(err, wal::WAL_FILE))?;
                    let string_encoding = envelope::string_encoding(bytes);
                    return Ok(Some(Entry { kind, value, expire_at_ms, string_encoding }));
                }
            }
        }
        let found = self.probe(db, key, |value, chunks, files| match value {
            // A small value: copied out of the page once (the reply copies it again, into the write buffer).
            page::CellValueRef::Inline(envelope) => Ok(Bytes::copy_from_slice(envelope)),
            page::CellValueRef::Segment(location) => {
                let file_len = files.get(&location.file).map(|c| c.committed_len).ok_or_else(|| {
                    Error::corrupt(
                        chunks.chunk_path(location.file),
                        0,
                        "cell points into a chunk file the slot does not have",
                    )
                })?;
                chunks.read_value_shared(location, file_len, db, key)
            }
            page::CellValueRef::Big { id, .. } => chunks.read_big(id, db, key).map(Bytes::from),
        });
        let Some(lookup) = found? else {
            return Ok(None);
        };
        let expire_at_ms = (lookup.expire_at != 0).then_some(lookup.expire_at);
        let (kind, value, string_encoding) = match lookup.source {
            Source::Memtable(envelope) => {
                let envelope = self.load_envelope(&envelope)?;
                let (kind, value) = self.decode_envelope(&envelope, wal::WAL_FILE)?;
                (kind, value, envelope::string_encoding(&envelope))
            }
            Source::Cell(envelope) => {
                let (kind, value) = self.decode_envelope(&envelope, buckets::BUCKETS_FILE)?;
                (kind, value, envelope::string_encoding(&envelope))
            }
        };
        Ok(Some(Entry { kind, value, expire_at_ms, string_encoding }))
    }

    /// A live key's type and expiry, without reading its value.
    pub fn key_info(&mut self, db: u16, key: &[u8]) -> Result<Option<KeyInfo>> {
        if self.snapshot_view {
            if let Some(found) = snapshot::view_key_info(self, db, key)? {
                return Ok(found);
            }
        }
        Ok(self.lookup(db, key)?.map(|lookup| KeyInfo {
            kind: lookup.kind,
            expire_at_ms: (lookup.expire_at != 0).then_some(lookup.expire_at),
        }))
    }

    /// Identifies the engine this slot belongs to (its shared configuration's address), for `group`.
    pub(crate) fn config_address(&self) -> usize {
        Arc::as_ptr(&self.config) as usize
    }

    fn check_writable(&self) -> Result<()> {
        if self.config.read_only {
            return Err(Error::ReadOnly);
        }
        if let Some(op) = self.poisoned {
            return Err(Error::Poisoned { slot: self.index, op });
        }
        if self.wal.sync_handle().is_poisoned() {
            return Err(Error::Poisoned { slot: self.index, op: "WAL fsync" });
        }
        Ok(())
    }

    fn check_key(key: &[u8]) -> Result<()> {
        if key.len() > MAX_KEY_LEN {
            return Err(Error::TooLarge(format!(
                "key of {} bytes exceeds the limit of {MAX_KEY_LEN} bytes",
                key.len()
            )));
        }
        Ok(())
    }

    /// Appends records to the WAL: `records` are (op, db, expire_at, key, envelope). Returns the first seq
    /// and the transaction the records belong to (the calling thread's open one, or 0).
    fn append(&mut self, records: &[WalWrite<'_>]) -> Result<(u64, u64)> {
        let txid = txn::current_txid(&self.config.transactions);
        self.append_in(records, txid)
    }

    fn append_in(&mut self, records: &[WalWrite<'_>], txid: u64) -> Result<(u64, u64)> {
        self.check_writable()?;
        self.pristine = false;
        let first = self.next_seq;
        let (buffer, synced_offset) = self.wal.buffer();
        for (offset, (op, db, expire_at, key, envelope)) in records.iter().enumerate() {
            let continues = offset + 1 < records.len();
            let seq = first + offset as u64;
            wal::encode_batch_record(seq, synced_offset, *op, continues, *db, *expire_at, key, envelope, txid, buffer);
        }
        let last = first + records.len() as u64 - 1;
        // A write of an `everysec`/`no` slot may wait in the WAL buffer for its thread's write group (see
        // `group`): one `pwrite` for a pipeline's writes to this slot instead of one each. A transaction's
        // records too (a script's writes and its `Commit` go out together); a commit that goes to the
        // transaction log writes its slots' held records first (`Transaction::commit`).
        let engine = self.config_address();
        if self.config.fsync.get() != FsyncPolicy::Always && group::hold(engine, self.index) {
            let before = self.wal.len();
            self.wal.hold_buffer(last)?;
            group::note_held((self.wal.len() - before) as usize);
        } else {
            self.wal.append_buffer(last)?;
        }
        self.next_seq = last + 1;
        self.last_written_seq = last;
        if txid != 0 && records.first().is_some_and(|(op, ..)| *op != WalOp::Commit) {
            self.open_transactions.insert(txid);
            self.unflushed_txid = self.unflushed_txid.max(txid);
            txn::note_appended(self.index, first, last, records.len() as u32);
        }
        if let Some(listener) = &self.config.change_listener {
            for (offset, (op, db, expire_at, key, envelope)) in records.iter().enumerate() {
                let change = match op {
                    WalOp::Set => Change::Set { db: *db, key, envelope, expire_at_ms: *expire_at },
                    WalOp::Delete => Change::Delete { db: *db, key },
                    WalOp::Expire => Change::Expire { db: *db, key, expire_at_ms: *expire_at },
                    WalOp::FlushDb => Change::FlushDb { db: *db },
                    WalOp::FlushAll => Change::FlushAll,
                    WalOp::Commit => continue,
                };
                listener.on_change(self.index, first + offset as u64, &change);
            }
        }
        Ok((first, txid))
    }

    /// Writes the commit record of a transaction that wrote only this slot, and ends it here.
    pub(crate) fn commit_transaction(&mut self, txid: u64) -> Result<()> {
        let result = self.append_in(&[(WalOp::Commit, 0, 0, &[], &[])], txid).map(|_| ());
        if result.is_ok() {
            self.end_transaction(txid);
        } else {
            self.poison_transaction();
        }
        result
    }

    /// A transaction that wrote here has committed: its records may be checkpointed.
    pub(crate) fn end_transaction(&mut self, txid: u64) {
        self.open_transactions.remove(&txid);
        if self.open_transactions.is_empty() {
            if let Err(error) = self.maybe_checkpoint() {
                tracing::error!(slot = self.index, %error, "deferred checkpoint failed");
            }
        }
    }

    /// Marks the slot unusable for writes until a restart: a transaction's commit could not be written, so
    /// recovery will drop records the memtable holds, and they must not be checkpointed.
    pub(crate) fn poison_transaction(&mut self) {
        self.poisoned = Some("transaction commit");
    }

    /// True while a transaction that wrote here has not committed (background work leaves the slot alone).
    pub fn has_open_transactions(&self) -> bool {
        !self.open_transactions.is_empty()
    }

    /// The memtable's handle on an envelope just written to the WAL as `record` (offset, length).
    fn mem_envelope(&self, envelope: Vec<u8>, record: (u64, u32)) -> MemEnvelope {
        let len = envelope.len();
        let limit = if envelope::peek_kind(&envelope).ok() == Some(ValueKind::Element) {
            MEM_KEEP_PART_ENVELOPE
        } else {
            MEM_KEEP_ENVELOPE.max(self.config.inline_max)
        };
        // Exact size: a `Vec` with spare capacity (a dictionary-compressed envelope has some) would become a
        // `Bytes` with a second block for its shared header, and keep the spare bytes for as long as the
        // entry lives.
        let bytes = (len <= limit).then(|| envelope.into_boxed_slice());
        MemEnvelope { bytes, record, len }
    }

    /// The bytes of an unflushed envelope (from memory, or read back from the WAL).
    pub(crate) fn load_envelope(&self, envelope: &MemEnvelope) -> Result<Bytes> {
        match &envelope.bytes {
            Some(bytes) => Ok(Bytes::copy_from_slice(bytes)),
            None => self.wal.read_envelope(envelope.record.0, envelope.record.1).map(Bytes::from),
        }
    }

    /// Records a key's new state in the memtable.
    fn remember(&mut self, db: u16, key: &[u8], seq: u64, expire_at: u64, value: MemValue) {
        if self.snapshot.is_some() {
            snapshot::capture(self, db, key);
        }
        let added = key.len() + MEM_ENTRY_OVERHEAD + value.memory_len();
        if expire_at != 0 {
            self.expiring_in_memtable += 1;
        }
        let reversed = key_hash(db, key).reverse_bits();
        if let Some(old) = self.memtable.active_get_mut(reversed, db, key) {
            let removed = key.len() + MEM_ENTRY_OVERHEAD + old.value.memory_len();
            if old.expire_at != 0 {
                self.expiring_in_memtable -= 1;
            }
            let prior = old.prior;
            *old = MemEntry { seq, expire_at, value, prior };
            self.memtable_bytes = self.memtable_bytes + added - removed;
        } else {
            self.memtable.insert((reversed, db, key.into()), MemEntry { seq, expire_at, value, prior: None });
            self.memtable_bytes += added;
        }
    }

    fn remember_expiry(&mut self, db: u16, key: &[u8], seq: u64, expire_at: u64) -> Result<()> {
        let existing = self.mem_entry(key_hash(db, key).reverse_bits(), db, key).map(|entry| entry.value.clone());
        match existing {
            Some(MemValue::Delete) => {}
            Some(MemValue::Set { kind, mut envelope }) => {
                // The value's record stays where it was written. If that is the WAL file a checkpoint in
                // flight covers (the value is frozen), the checkpoint's tail empties the file: keep the
                // bytes in memory instead.
                if envelope.bytes.is_none() && self.memtable.has_frozen() && self.wal.in_previous(envelope.record.0) {
                    envelope.bytes =
                        Some(self.wal.read_envelope(envelope.record.0, envelope.record.1)?.into_boxed_slice());
                }
                self.remember(db, key, seq, expire_at, MemValue::Set { kind, envelope });
            }
            Some(value) => self.remember(db, key, seq, expire_at, value),
            None => self.remember(db, key, seq, expire_at, MemValue::Retime),
        }
        Ok(())
    }

    fn forget_db(&mut self, db: u16, seq: u64) {
        snapshot::abort_on_flush(self);
        let doomed = self.memtable.active_keys_of_db(db);
        for key in doomed {
            if let Some(entry) = self.memtable.remove_active(&key) {
                self.memtable_bytes -= key.2.len() + MEM_ENTRY_OVERHEAD + entry.value.memory_len();
                if entry.expire_at != 0 {
                    self.expiring_in_memtable -= 1;
                }
            }
        }
        self.memtable.hide_frozen_db(db);
        self.db_flush_pending.insert(db, seq);
    }

    fn forget_all(&mut self, seq: u64) {
        snapshot::abort_on_flush(self);
        // A frozen table's entries are hidden, and still counted until its install drops it.
        (self.memtable_bytes, self.expiring_in_memtable) = self.memtable.clear();
        self.db_flush_pending.clear();
        self.flush_all_seq = seq;
    }

    /// Drops the page and value caches (DEBUG RELOAD: later reads come from the files).
    pub fn drop_caches(&mut self) {
        self.buckets.clear_cache();
        self.chunks.clear_cache();
    }

    /// Sets this slot's RAM budgets: page cache, value cache, and the memtable size that triggers a
    /// checkpoint (`None`: the engine's default). Caches shrink at once; the memtable at the next write.
    pub fn set_memory_budget(&mut self, page_cache: usize, value_cache: usize, memtable: Option<usize>) {
        self.buckets.set_cache_capacity(page_cache);
        self.chunks.set_cache_capacity(value_cache);
        self.memtable_limit = memtable.unwrap_or(self.config.wal_flush_bytes).min(self.config.wal_flush_bytes);
    }

    /// Memtable bytes that trigger a checkpoint. Not sized down from the slot's stored data: with values that
    /// compress well (redis-benchmark's) that made checkpoints 3x as frequent while a data set was loaded,
    /// and SET's p99 at -P 16 went from 2x to 12x Redis's (docs/performance.md, 2026-12-05 19:10).
    pub(crate) fn memtable_budget(&self) -> usize {
        self.memtable_limit
    }

    /// Sets a key (replacing any value and expiry).
    pub fn set(&mut self, db: u16, key: &[u8], kind: ValueKind, value: &[u8], expire_at_ms: Option<u64>) -> Result<()> {
        Self::check_key(key)?;
        let envelope = self.config.dictionaries.encode(kind, key, value, self.config.compression);
        self.set_envelope(db, key, kind, value.len(), envelope, expire_at_ms)
    }

    /// Sets a string whose Redis encoding is not (only) its content's: one written in place, or
    /// INCRBYFLOAT's result ([`StringEncoding`]).
    pub fn set_string(
        &mut self,
        db: u16,
        key: &[u8],
        value: &[u8],
        encoding: StringEncoding,
        expire_at_ms: Option<u64>,
    ) -> Result<()> {
        Self::check_key(key)?;
        let mut envelope = self.config.dictionaries.encode(ValueKind::String, key, value, self.config.compression);
        envelope::mark_string(&mut envelope, encoding);
        self.set_envelope(db, key, ValueKind::String, value.len(), envelope, expire_at_ms)
    }

    /// [`Slot::set`] of a value encoded before the slot was locked ([`super::Engine::encode_value`], from
    /// the same `kind`, `key` and `value`). If the active dictionaries changed since, the value is encoded
    /// again here: a compaction pass may already have visited this slot for a dictionary the encoding used.
    pub fn set_encoded(
        &mut self,
        db: u16,
        key: &[u8],
        kind: ValueKind,
        value: &[u8],
        encoded: Encoded,
        expire_at_ms: Option<u64>,
    ) -> Result<()> {
        Self::check_key(key)?;
        let envelope = if encoded.generation == self.config.dictionaries.generation() {
            encoded.envelope
        } else {
            self.config.dictionaries.encode_quiet(kind, key, value, self.config.compression)
        };
        self.set_envelope(db, key, kind, value.len(), envelope, expire_at_ms)
    }

    fn set_envelope(
        &mut self,
        db: u16,
        key: &[u8],
        kind: ValueKind,
        value_len: usize,
        envelope: Vec<u8>,
        expire_at_ms: Option<u64>,
    ) -> Result<()> {
        let expire_at = expire_at_ms.unwrap_or(0);
        let start = self.wal.position();
        let (seq, txid) = self.append(&[(WalOp::Set, db, expire_at, key, &envelope)])?;
        self.stats.raw_value_bytes += value_len as u64;
        self.stats.stored_value_bytes += envelope.len() as u64;
        let record = (start, wal::record_len_in(key.len(), envelope.len(), txid) as u32);
        let envelope = self.mem_envelope(envelope, record);
        self.remember(db, key, seq, expire_at, MemValue::Set { kind, envelope });
        self.maybe_checkpoint()
    }

    /// Deletes a key; true if it was live.
    pub fn delete(&mut self, db: u16, key: &[u8]) -> Result<bool> {
        if self.lookup(db, key)?.is_none() {
            return Ok(false);
        }
        let (seq, _) = self.append(&[(WalOp::Delete, db, 0, key, &[])])?;
        self.remember(db, key, seq, 0, MemValue::Delete);
        self.maybe_checkpoint()?;
        Ok(true)
    }

    /// Sets (Some) or removes (None) a live key's expiry; false if the key is not live.
    pub fn set_expiry(&mut self, db: u16, key: &[u8], expire_at_ms: Option<u64>) -> Result<bool> {
        if self.lookup(db, key)?.is_none() {
            return Ok(false);
        }
        let expire_at = expire_at_ms.unwrap_or(0);
        let (seq, _) = self.append(&[(WalOp::Expire, db, expire_at, key, &[])])?;
        self.remember_expiry(db, key, seq, expire_at)?;
        self.maybe_checkpoint()?;
        Ok(true)
    }

    /// Applies a batch of writes with one WAL append.
    pub fn write_batch(&mut self, ops: Vec<BatchOp>) -> Result<()> {
        let mut encoded = Vec::with_capacity(ops.len());
        for op in &ops {
            match op {
                BatchOp::Set { db, key, kind, value, expire_at_ms } => {
                    Self::check_key(key)?;
                    self.stats.raw_value_bytes += value.len() as u64;
                    let envelope = self.config.dictionaries.encode(*kind, key, value, self.config.compression);
                    self.stats.stored_value_bytes += envelope.len() as u64;
                    encoded.push((WalOp::Set, *db, expire_at_ms.unwrap_or(0), &key[..], envelope));
                }
                BatchOp::SetString { db, key, value, encoding, expire_at_ms } => {
                    Self::check_key(key)?;
                    self.stats.raw_value_bytes += value.len() as u64;
                    let mut envelope =
                        self.config.dictionaries.encode(ValueKind::String, key, value, self.config.compression);
                    envelope::mark_string(&mut envelope, *encoding);
                    self.stats.stored_value_bytes += envelope.len() as u64;
                    encoded.push((WalOp::Set, *db, expire_at_ms.unwrap_or(0), &key[..], envelope));
                }
                BatchOp::Delete { db, key } => encoded.push((WalOp::Delete, *db, 0, &key[..], Vec::new())),
            }
        }
        let records: Vec<WalWrite<'_>> = encoded
            .iter()
            .map(|(op, db, expire_at, key, envelope)| (*op, *db, *expire_at, *key, &envelope[..]))
            .collect();
        let mut record_start = self.wal.position();
        let (first, txid) = self.append(&records)?;
        drop(records);
        for (offset, (op, db, expire_at, key, envelope)) in encoded.into_iter().enumerate() {
            let seq = first + offset as u64;
            let record = (record_start, wal::record_len_in(key.len(), envelope.len(), txid) as u32);
            record_start += record.1 as u64;
            let value = match op {
                WalOp::Set => MemValue::Set {
                    kind: envelope::peek_kind(&envelope).unwrap_or(ValueKind::String),
                    envelope: self.mem_envelope(envelope, record),
                },
                _ => MemValue::Delete,
            };
            self.remember(db, key, seq, expire_at, value);
        }
        self.maybe_checkpoint()
    }

    /// Empties one database.
    pub fn flush_db(&mut self, db: u16) -> Result<()> {
        let (seq, _) = self.append(&[(WalOp::FlushDb, db, 0, &[], &[])])?;
        self.forget_db(db, seq);
        Ok(())
    }

    /// Empties every database and reclaims the slot's disk space.
    pub fn flush_all(&mut self) -> Result<()> {
        if self.pristine {
            return Ok(());
        }
        let (seq, _) = self.append(&[(WalOp::FlushAll, 0, 0, &[], &[])])?;
        self.forget_all(seq);
        self.checkpoint()?;
        // Inside a transaction the checkpoint waits for its commit, so the files are not reclaimed yet.
        self.pristine = !self.has_open_transactions()
            && self.memtable.is_empty()
            && self.wal.is_empty()
            && self.wal.previous_is_empty()
            && self.flush_all_seq <= self.meta.checkpoint_seq;
        Ok(())
    }

    /// Keys in a database (expired keys count until removed, as in Redis's DBSIZE): the checkpointed count,
    /// plus, for each key with a memtable entry, whether it exists now less whether it has a cell.
    pub fn key_count(&mut self, db: u16) -> Result<u64> {
        let flushed_below = self.flush_marker(db) > self.meta.checkpoint_seq;
        let mut count = if flushed_below { 0 } else { self.meta.key_counts.get(&db).copied().unwrap_or(0) as i64 };
        let keys = self.memtable.keys_of_db(db);
        for key in keys {
            let in_cells = self.prior_in_cells(&key)?;
            let now_exists = match self.memtable.get(key.0, key.1, &key.2).map(|entry| &entry.value) {
                Some(MemValue::Set { .. }) => true,
                // A retime is only ever the newest entry of a key no other memtable entry holds.
                Some(MemValue::Retime) => in_cells,
                _ => false,
            };
            count += now_exists as i64 - in_cells as i64;
        }
        Ok(count.max(0) as u64)
    }

    /// Whether the bucket layer holds a cell for a memtable key. An entry's `prior` memoizes that answer. It
    /// is stored only while no table is frozen: the cells change only at an install, which drops the frozen
    /// table, so every stored `prior` is of the cells as they are (an active entry written while a table is
    /// frozen has none until the install). A frozen entry's answer is the key's when it has one.
    fn prior_in_cells(&mut self, key: &MemKey) -> Result<bool> {
        let (reversed, db, name) = (key.0, key.1, &key.2[..]);
        let frozen = self.memtable.frozen_get(reversed, db, name).map(|entry| entry.prior);
        let known = match frozen {
            Some(prior) => prior,
            None => self.memtable.active_get(reversed, db, name).and_then(|entry| entry.prior),
        };
        if let Some(prior) = known {
            return Ok(prior);
        }
        let exists = self.find_cell(db, name)?.is_some();
        if frozen.is_none() {
            if let Some(entry) = self.memtable.active_get_mut(reversed, db, name) {
                entry.prior = Some(exists);
            }
        }
        Ok(exists)
    }

    /// The bucket holding scan `position` and the end of the position range it covers (the snapshot
    /// reader walks buckets as `scan` does).
    pub(crate) fn bucket_range(&self, position: u64) -> (u64, u64) {
        let level = self.meta.level;
        let mut bucket = reverse_low_bits(position >> (POSITION_BITS - level as u32), level);
        let mut bits = level;
        if bucket < self.meta.split {
            bits = level + 1;
            bucket = reverse_low_bits(position >> (POSITION_BITS - bits as u32), bits);
        }
        let width = 1u64 << (POSITION_BITS - bits as u32);
        (bucket, (position / width + 1) * width)
    }

    /// Appends to `out` the live keys at scan positions from `position` on, whole buckets at a time, until
    /// at least `want` keys were added; returns the position to continue from, or `None` when the slot is
    /// done. A position is a prefix of the bit-reversed key hash (see `position_of`); buckets cover
    /// contiguous ranges of positions and only ever split, so every key live for the whole scan is
    /// returned exactly once however the table grows in between.
    pub fn scan(
        &mut self,
        db: Option<u16>,
        mut position: u64,
        want: usize,
        out: &mut Vec<(u16, Vec<u8>)>,
    ) -> Result<Option<u64>> {
        let now = self.now();
        let space_end = 1u64 << POSITION_BITS;
        let added_before = out.len();
        while position < space_end {
            let (bucket, range_end) = self.bucket_range(position);
            let alive = |expire_at: u64| expire_at == 0 || expire_at > now;
            let wanted_db = |key_db: u16| db.is_none_or(|want| want == key_db);
            // Layer cells not overridden by the memtable.
            let mut id = PageId::bucket(bucket);
            for _ in 0..=self.meta.overflow_pages {
                let bytes = self.buckets.read_page(id)?;
                let page = Page::decode(&bytes[..], self.buckets.path(id.file), id.number * page::PAGE_SIZE as u64)?;
                for cell in page.cells {
                    let cell_position = position_of(cell.hash);
                    if cell_position < position || cell_position >= range_end || !wanted_db(cell.db) {
                        continue;
                    }
                    if cell.seq < self.flush_marker(cell.db) || !alive(cell.expire_at) {
                        continue;
                    }
                    if self.mem_entry(cell.hash.reverse_bits(), cell.db, &cell.key).is_some() {
                        continue;
                    }
                    out.push((cell.db, cell.key));
                }
                if page.next_overflow == 0 {
                    break;
                }
                id = PageId::overflow(page.next_overflow);
            }
            // Memtable entries in the same range.
            let low = Bound::Included((position << (64 - POSITION_BITS), 0u16, MemKeyBytes::new()));
            let high = if range_end == space_end {
                Bound::Unbounded
            } else {
                Bound::Excluded((range_end << (64 - POSITION_BITS), 0u16, MemKeyBytes::new()))
            };
            let mut retimed = Vec::new();
            for ((_, key_db, key), entry) in self.memtable.range((low, high)) {
                if !wanted_db(*key_db) || !alive(entry.expire_at) {
                    continue;
                }
                match entry.value {
                    MemValue::Set { .. } => out.push((*key_db, key.to_vec())),
                    MemValue::Retime => retimed.push((*key_db, key.to_vec())),
                    MemValue::Delete => {}
                }
            }
            for (key_db, key) in retimed {
                if self.find_cell(key_db, &key)?.is_some() {
                    out.push((key_db, key));
                }
            }
            position = range_end;
            if out.len() - added_before >= want && position < space_end {
                return Ok(Some(position));
            }
        }
        Ok(None)
    }

    /// Keys of `db` with a future expiry and the sum of their remaining milliseconds, estimated: the
    /// buckets' figures come from the last complete active-expire pass over them (it reads every bucket
    /// page anyway), the memtable's are counted now. A key in both layers counts twice until the next pass.
    pub fn expiry_estimate(&self, db: u16) -> (u64, u128) {
        let (mut count, mut ttl) = self.expiry_seen.get(&db).copied().unwrap_or((0, 0));
        if self.expiring_in_memtable > 0 {
            let now = self.now();
            for ((_, entry_db, _), entry) in self.memtable.iter() {
                if *entry_db == db && entry.expire_at > now && !matches!(entry.value, MemValue::Delete) {
                    count += 1;
                    ttl += u128::from(entry.expire_at - now);
                }
            }
        }
        (count, ttl)
    }

    /// Deletes up to `budget` expired keys (writing tombstones, so the change feed sees them), and notes
    /// buckets holding cells of flushed databases for cleanup. Returns how many keys were deleted.
    pub fn active_expire(&mut self, budget: usize) -> Result<usize> {
        // A key deleted here while a transaction that wrote it is open would outlive the transaction if a
        // crash dropped it.
        if self.config.read_only || self.poisoned.is_some() || self.has_open_transactions() {
            return Ok(0);
        }
        let now = self.now();
        let mut expired: Vec<(u16, Vec<u8>)> = Vec::new();
        if self.expiring_in_memtable > 0 {
            for ((_, db, key), entry) in self.memtable.iter() {
                if expired.len() >= budget {
                    break;
                }
                if entry.expire_at != 0 && entry.expire_at <= now && !matches!(entry.value, MemValue::Delete) {
                    expired.push((*db, key.to_vec()));
                }
            }
        }
        let bucket_count = self.meta.bucket_count();
        let mut visited = 0;
        while self.sweep_gate.is_open() && expired.len() < budget && visited < bucket_count.min(16) {
            let bucket = self.sweep_bucket % bucket_count;
            self.sweep_bucket = bucket + 1;
            visited += 1;
            if bucket == 0 {
                // A pass over every bucket is complete: its figures become the estimate.
                self.expiry_seen = std::mem::take(&mut self.expiry_pass);
                self.sweep_gate.pass_boundary();
                if !self.sweep_gate.is_open() {
                    break;
                }
            }
            let mut id = PageId::bucket(bucket);
            for _ in 0..=self.meta.overflow_pages {
                let bytes = self.buckets.read_page(id)?;
                let page = Page::decode(&bytes[..], self.buckets.path(id.file), id.number * page::PAGE_SIZE as u64)?;
                for cell in &page.cells {
                    if cell.expire_at != 0 || cell.seq < self.flush_marker(cell.db) {
                        self.sweep_gate.saw_work();
                    }
                    if cell.seq < self.flush_marker(cell.db) {
                        self.cleanup_buckets.insert(bucket);
                    } else if cell.expire_at > now {
                        let seen = self.expiry_pass.entry(cell.db).or_insert((0, 0));
                        seen.0 += 1;
                        seen.1 += u128::from(cell.expire_at - now);
                    } else if cell.expire_at != 0
                        && cell.expire_at <= now
                        && self.mem_entry(cell.hash.reverse_bits(), cell.db, &cell.key).is_none()
                    {
                        expired.push((cell.db, cell.key.clone()));
                    }
                }
                if page.next_overflow == 0 {
                    break;
                }
                id = PageId::overflow(page.next_overflow);
            }
        }
        expired.truncate(budget);
        for (db, key) in &expired {
            let (seq, _) = self.append(&[(WalOp::Delete, *db, 0, key, &[])])?;
            self.remember(*db, key, seq, 0, MemValue::Delete);
            if let Some(listener) = &self.config.expire_listener {
                listener.on_expired(*db, key);
            }
        }
        self.maybe_checkpoint()?;
        Ok(expired.len())
    }

    /// Figures for INFO and metrics.
    pub fn stats(&self) -> SlotStats {
        let mut stats = self.stats.clone();
        stats.keys = self.meta.key_counts.values().sum::<u64>();
        stats.wal_bytes = self.wal.total_len();
        stats.wal_entries = self.memtable.len() as u64;
        stats.checkpoint_seq = self.meta.checkpoint_seq;
        stats.last_seq = self.next_seq - 1;
        stats.buckets = self.meta.bucket_count();
        stats.overflow_pages = self.meta.overflow_pages.saturating_sub(1 + self.meta.free_overflow.len() as u64);
        stats.bucket_used_bytes = self.meta.used_bytes;
        stats.chunk_files = self.meta.chunk_files.len() as u64;
        stats.chunk_bytes = self.meta.chunk_files.values().map(|c| c.committed_len).sum();
        stats.chunk_live_bytes = self.meta.chunk_files.values().map(|c| c.live_bytes).sum();
        (stats.page_cache_hits, stats.page_cache_misses, stats.page_cache_bytes) = self.buckets.cache_stats();
        (stats.value_cache_hits, stats.value_cache_misses, stats.value_cache_bytes) = self.chunks.cache_stats();
        stats.poisoned = self.poisoned.is_some() || self.wal.sync_handle().is_poisoned();
        stats
    }

    /// Waiter for durability of what was written so far (`fsync always` only).
    pub fn durability_waiter(&self) -> DurabilityWaiter {
        let sync = (self.config.fsync.get() == FsyncPolicy::Always && self.last_written_seq > 0)
            .then(|| (self.wal.sync_handle(), self.last_written_seq));
        DurabilityWaiter { sync }
    }

    /// Handle to fsync the WAL.
    pub fn wal_syncer(&self) -> WalSyncer {
        WalSyncer { sync: self.wal.sync_handle() }
    }

    /// The dictionary map.
    pub fn dictionaries(&self) -> Arc<DictionaryMap> {
        self.config.dictionaries.clone()
    }

    /// The slot's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The slot's durable metadata as of its last checkpoint.
    pub fn meta(&self) -> &SlotMeta {
        &self.meta
    }

    /// Writes a key's value again as `envelope` (same type and expiry) through the WAL and memtable, as
    /// any write; for dictionary compaction (`engine::recode`), which re-encodes values so that an old
    /// dictionary can go.
    pub(crate) fn rewrite_envelope(
        &mut self,
        db: u16,
        key: &[u8],
        kind: ValueKind,
        expire_at: u64,
        envelope: Vec<u8>,
    ) -> Result<()> {
        let start = self.wal.position();
        let (seq, txid) = self.append(&[(WalOp::Set, db, expire_at, key, &envelope)])?;
        let record = (start, wal::record_len_in(key.len(), envelope.len(), txid) as u32);
        let envelope = self.mem_envelope(envelope, record);
        self.remember(db, key, seq, expire_at, MemValue::Set { kind, envelope });
        self.maybe_checkpoint()
    }
}

/// Where a found key's value is.
/// Where [`Slot::probe`] found a key: its memtable entry, or the bucket layer (with what the probe's reader
/// made of the cell's value).
enum Source<R> {
    Memtable(MemEnvelope),
    Cell(R),
}

struct Lookup<R> {
    kind: ValueKind,
    expire_at: u64,
    source: Source<R>,
}

/// What [`Slot::probe`] found in a page holding the key's cell.
enum Probed<R> {
    Live(Lookup<R>),
    Missing,
    Expired,
}
