//! TEMPORARY in-memory slot with the final API, so that the server can be built while the disk layers land.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use super::envelope::{CompressionPolicy, DictionaryMap, ValueKind};
use super::error::Result;
use super::io::FileSystem;
use super::{BatchOp, ChangeListener, Clock, Entry, FsyncPolicy, KeyInfo};

/// Settings shared by every slot of an engine.
pub struct SlotConfig {
    pub(crate) fs: Arc<dyn FileSystem>,
    pub(crate) fsync: FsyncPolicy,
    pub(crate) page_cache_bytes: usize,
    pub(crate) value_cache_bytes: usize,
    pub(crate) wal_flush_bytes: usize,
    pub(crate) segment_size: usize,
    pub(crate) inline_max: usize,
    pub(crate) compression: CompressionPolicy,
    pub(crate) read_only: bool,
    pub(crate) clock: Clock,
    pub(crate) change_listener: Option<Arc<dyn ChangeListener>>,
    pub(crate) dictionaries: Arc<DictionaryMap>,
}

/// Per-slot figures for INFO and metrics.
#[derive(Debug, Clone, Default)]
pub struct SlotStats {
    /// Slot index.
    pub slot: usize,
    /// Keys in all databases (flushed plus unflushed).
    pub keys: u64,
    /// Bytes in the WAL file.
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
    /// Big-value files.
    pub big_values: u64,
    /// Bytes in big-value files.
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

/// Waits for durability of a slot's writes.
pub struct DurabilityWaiter;
impl DurabilityWaiter {
    /// Blocks until durable.
    pub fn wait(self) -> Result<()> {
        Ok(())
    }
}

/// Forces a slot's WAL to disk.
#[derive(Clone)]
pub struct WalSyncer;
impl WalSyncer {
    /// fsyncs now.
    pub fn sync_now(&self) -> Result<()> {
        Ok(())
    }
}

/// One slot.
pub struct Slot {
    config: Arc<SlotConfig>,
    map: BTreeMap<(u16, Vec<u8>), (ValueKind, Bytes, Option<u64>)>,
}

impl Slot {
    /// Opens or creates a slot directory.
    pub fn open(_index: usize, _dir: &Path, config: Arc<SlotConfig>) -> Result<Slot> {
        Ok(Slot { config, map: BTreeMap::new() })
    }
    fn now(&self) -> u64 {
        (self.config.clock)()
    }
    fn live(&mut self, db: u16, key: &[u8]) -> Option<&(ValueKind, Bytes, Option<u64>)> {
        let now = self.now();
        let k = (db, key.to_vec());
        if let Some((_, _, Some(at))) = self.map.get(&k) {
            if *at <= now {
                self.map.remove(&k);
            }
        }
        self.map.get(&k)
    }
    /// The live value of a key.
    pub fn get(&mut self, db: u16, key: &[u8]) -> Result<Option<Entry>> {
        Ok(self.live(db, key).map(|(kind, value, at)| Entry { kind: *kind, value: value.clone(), expire_at_ms: *at }))
    }
    /// Type and expiry.
    pub fn key_info(&mut self, db: u16, key: &[u8]) -> Result<Option<KeyInfo>> {
        Ok(self.live(db, key).map(|(kind, _, at)| KeyInfo { kind: *kind, expire_at_ms: *at }))
    }
    /// Sets a key.
    pub fn set(&mut self, db: u16, key: &[u8], kind: ValueKind, value: &[u8], expire_at_ms: Option<u64>) -> Result<()> {
        self.map.insert((db, key.to_vec()), (kind, Bytes::copy_from_slice(value), expire_at_ms));
        Ok(())
    }
    /// Deletes a key.
    pub fn delete(&mut self, db: u16, key: &[u8]) -> Result<bool> {
        let was = self.live(db, key).is_some();
        self.map.remove(&(db, key.to_vec()));
        Ok(was)
    }
    /// Sets or clears expiry.
    pub fn set_expiry(&mut self, db: u16, key: &[u8], expire_at_ms: Option<u64>) -> Result<bool> {
        if self.live(db, key).is_none() {
            return Ok(false);
        }
        if let Some(entry) = self.map.get_mut(&(db, key.to_vec())) {
            entry.2 = expire_at_ms;
        }
        Ok(true)
    }
    /// Applies a batch.
    pub fn write_batch(&mut self, ops: Vec<BatchOp>) -> Result<()> {
        for op in ops {
            match op {
                BatchOp::Set { db, key, kind, value, expire_at_ms } => self.set(db, &key, kind, &value, expire_at_ms)?,
                BatchOp::Delete { db, key } => {
                    self.delete(db, &key)?;
                }
            }
        }
        Ok(())
    }
    /// Appends up to about `want` keys from `position`; returns the next position or None when done.
    pub fn scan(&mut self, db: Option<u16>, position: u64, want: usize, out: &mut Vec<(u16, Vec<u8>)>) -> Result<Option<u64>> {
        let now = self.now();
        let all: Vec<(u16, Vec<u8>)> = self
            .map
            .iter()
            .filter(|((d, _), (_, _, at))| db.is_none_or(|want_db| *d == want_db) && at.is_none_or(|at| at > now))
            .map(|(k, _)| k.clone())
            .collect();
        let start = position as usize;
        let end = (start + want).min(all.len());
        out.extend(all[start.min(all.len())..end].iter().cloned());
        Ok(if end >= all.len() { None } else { Some(end as u64) })
    }
    /// Keys in a database.
    pub fn key_count(&mut self, db: u16) -> Result<u64> {
        Ok(self.map.keys().filter(|(d, _)| *d == db).count() as u64)
    }
    /// Empties a database.
    pub fn flush_db(&mut self, db: u16) -> Result<()> {
        self.map.retain(|(d, _), _| *d != db);
        Ok(())
    }
    /// Empties everything.
    pub fn flush_all(&mut self) -> Result<()> {
        self.map.clear();
        Ok(())
    }
    /// Removes expired keys.
    pub fn active_expire(&mut self, _budget: usize) -> Result<usize> {
        let now = self.now();
        let before = self.map.len();
        self.map.retain(|_, (_, _, at)| at.is_none_or(|at| at > now));
        Ok(before - self.map.len())
    }
    /// Flushes the WAL into the layers below.
    pub fn checkpoint(&mut self) -> Result<()> {
        Ok(())
    }
    /// Figures.
    pub fn stats(&self) -> SlotStats {
        SlotStats { keys: self.map.len() as u64, ..Default::default() }
    }
    /// Waiter for durability of what was written so far.
    pub fn durability_waiter(&self) -> DurabilityWaiter {
        DurabilityWaiter
    }
    /// Handle to fsync the WAL.
    pub fn wal_syncer(&self) -> WalSyncer {
        WalSyncer
    }
    /// The dictionary map.
    pub fn dictionaries(&self) -> Arc<DictionaryMap> {
        self.config.dictionaries.clone()
    }
}
