//! A slot's two memtables. The *active* one takes every write. A checkpoint's begin freezes it: the table
//! is moved aside whole (an O(1) swap) behind an `Arc`, and an empty active one takes its place. The
//! checkpoint thread reads the frozen table without the slot lock (nothing changes it); the slot reads
//! the active table, then the frozen one, then the pages, and scans merge the two tables, the active one
//! winning a key both hold. The install drops the frozen table (the pages hold its entries from then on):
//! an O(1) step under the lock where copying the entries at the begin and removing them one by one at
//! the install each held it for 14-120 ms at the default budget (docs/performance.md, issue 14). The
//! checkpoint's tail empties the table off the lock and hands it back as the next freeze's active table,
//! so that its hash table keeps its capacity (see `memtable`).
//!
//! A FLUSHDB or FLUSHALL while a table is frozen cannot take entries out of it (the checkpoint is writing
//! them to the pages, where the flush marker makes them dead): the flushed databases' frozen entries are
//! hidden instead, until the install drops the table.

use std::ops::Bound;
use std::sync::Arc;

use super::memtable::Memtable;
use super::slot::{MemEntry, MemKey};

/// See the module docs.
#[derive(Default)]
pub(crate) struct MemLayers {
    active: Memtable,
    frozen: Option<Frozen>,
    /// An emptied table for the next freeze (its hash table keeps its capacity).
    spare: Option<Memtable>,
}

/// The frozen table and what the slot accounted for it at the freeze.
struct Frozen {
    table: Arc<Memtable>,
    /// Memtable bytes and entries with an expiry the slot counted for it (released at the install).
    bytes: usize,
    expiring: usize,
    /// Databases a flush since the freeze emptied: their frozen entries are hidden.
    dead_dbs: Vec<u16>,
    /// A FLUSHALL since the freeze: every frozen entry is hidden.
    all_dead: bool,
}

impl Frozen {
    fn live(&self, db: u16) -> bool {
        !self.all_dead && !self.dead_dbs.contains(&db)
    }
}

/// What [`MemLayers::unfreeze`] hands the install: the table, and the bytes and expiring entries the slot
/// counted for it.
pub(crate) struct Unfrozen {
    pub(crate) table: Arc<Memtable>,
    pub(crate) bytes: usize,
    pub(crate) expiring: usize,
}

impl MemLayers {
    /// Entries in both tables (a key in both counts twice; hidden frozen entries are not counted).
    pub(crate) fn len(&self) -> usize {
        self.active.len() + self.frozen.as_ref().filter(|f| !f.all_dead).map_or(0, |f| f.table.len())
    }

    /// True when the active table is empty and none is frozen.
    pub(crate) fn is_empty(&self) -> bool {
        self.active.is_empty() && self.frozen.is_none()
    }

    /// True while a table is frozen (a checkpoint between its begin and its install).
    pub(crate) fn has_frozen(&self) -> bool {
        self.frozen.is_some()
    }

    /// The newest entry of a key: the active table's, else the frozen table's.
    pub(crate) fn get(&self, reversed_hash: u64, db: u16, key: &[u8]) -> Option<&MemEntry> {
        match self.active.get(reversed_hash, db, key) {
            Some(entry) => Some(entry),
            None => self.frozen_get(reversed_hash, db, key),
        }
    }

    /// The active table's entry of a key.
    pub(crate) fn active_get(&self, reversed_hash: u64, db: u16, key: &[u8]) -> Option<&MemEntry> {
        self.active.get(reversed_hash, db, key)
    }

    /// The frozen table's entry of a key, unless a flush since the freeze hid it.
    pub(crate) fn frozen_get(&self, reversed_hash: u64, db: u16, key: &[u8]) -> Option<&MemEntry> {
        let frozen = self.frozen.as_ref()?;
        if !frozen.live(db) {
            return None;
        }
        frozen.table.get(reversed_hash, db, key)
    }

    /// The active table's entry, to change in place (frozen entries never change).
    pub(crate) fn active_get_mut(&mut self, reversed_hash: u64, db: u16, key: &[u8]) -> Option<&mut MemEntry> {
        self.active.get_mut(reversed_hash, db, key)
    }

    /// Inserts or replaces in the active table; returns the replaced entry. A frozen entry of the key stays,
    /// shadowed.
    pub(crate) fn insert(&mut self, key: MemKey, entry: MemEntry) -> Option<MemEntry> {
        self.active.insert(key, entry)
    }

    /// Removes a key's active entry.
    pub(crate) fn remove_active(&mut self, key: &MemKey) -> Option<MemEntry> {
        self.active.remove(key)
    }

    /// The active table's keys of one database.
    pub(crate) fn active_keys_of_db(&self, db: u16) -> Vec<MemKey> {
        self.active.keys_of_db(db)
    }

    /// A flush of `db`: the active entries are the caller's to remove; the frozen ones are hidden.
    pub(crate) fn hide_frozen_db(&mut self, db: u16) {
        if let Some(frozen) = &mut self.frozen {
            if !frozen.dead_dbs.contains(&db) {
                frozen.dead_dbs.push(db);
            }
        }
    }

    /// A FLUSHALL: the active table is emptied and every frozen entry hidden. Returns the bytes and the
    /// expiring entries still counted for the frozen table (until its install).
    pub(crate) fn clear(&mut self) -> (usize, usize) {
        self.active.clear();
        match &mut self.frozen {
            Some(frozen) => {
                frozen.all_dead = true;
                (frozen.bytes, frozen.expiring)
            }
            None => (0, 0),
        }
    }

    /// Every key of one database in either table, once each.
    pub(crate) fn keys_of_db(&self, db: u16) -> Vec<MemKey> {
        let mut keys = self.active.keys_of_db(db);
        if let Some(frozen) = self.frozen.as_ref().filter(|f| f.live(db)) {
            keys.extend(
                frozen.table.keys_of_db(db).into_iter().filter(|key| self.active.get(key.0, key.1, &key.2).is_none()),
            );
        }
        keys
    }

    /// True if either table has an entry for a key of `db`.
    pub(crate) fn has_db(&self, db: u16) -> bool {
        self.active.has_db(db) || self.frozen.as_ref().is_some_and(|f| f.live(db) && f.table.has_db(db))
    }

    /// Entries whose keys fall in `range`, in key order, the active table's winning.
    pub(crate) fn range(&self, range: (Bound<MemKey>, Bound<MemKey>)) -> Vec<(&MemKey, &MemEntry)> {
        let Some(frozen) = self.frozen.as_ref().filter(|f| !f.all_dead) else {
            return self.active.range(range);
        };
        let older: Vec<(&MemKey, &MemEntry)> =
            frozen.table.range(range.clone()).into_iter().filter(|(key, _)| frozen.live(key.1)).collect();
        let newer = self.active.range(range);
        if older.is_empty() {
            return newer;
        }
        let mut merged = Vec::with_capacity(newer.len() + older.len());
        let (mut newer, mut older) = (newer.into_iter().peekable(), older.into_iter().peekable());
        loop {
            let next = match (newer.peek(), older.peek()) {
                (Some(a), Some(b)) if a.0 == b.0 => {
                    older.next();
                    newer.next()
                }
                (Some(a), Some(b)) if a.0 < b.0 => newer.next(),
                (Some(_), Some(_)) => older.next(),
                (Some(_), None) => newer.next(),
                (None, Some(_)) => older.next(),
                (None, None) => break,
            };
            merged.extend(next);
        }
        merged
    }

    /// Every entry of either table, the active one winning, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&MemKey, &MemEntry)> {
        let frozen = self.frozen.as_ref().filter(|f| !f.all_dead);
        let older = frozen.into_iter().flat_map(move |frozen| {
            frozen
                .table
                .iter()
                .filter(move |(key, _)| frozen.live(key.1) && self.active.get(key.0, key.1, &key.2).is_none())
        });
        self.active.iter().chain(older)
    }

    /// A checkpoint's begin: the active table becomes the frozen one (`bytes` and `expiring`: what the slot
    /// counts for it), and the spare table, if any, the active one. Returns the frozen table for the
    /// checkpoint. Must not be called while a table is frozen.
    pub(crate) fn freeze(&mut self, bytes: usize, expiring: usize) -> Arc<Memtable> {
        debug_assert!(self.frozen.is_none(), "a memtable is frozen already");
        let next = self.spare.take().unwrap_or_default();
        let table = Arc::new(std::mem::replace(&mut self.active, next));
        self.frozen = Some(Frozen { table: table.clone(), bytes, expiring, dead_dbs: Vec::new(), all_dead: false });
        table
    }

    /// A checkpoint's install: the frozen table leaves (the pages hold its entries now).
    pub(crate) fn unfreeze(&mut self) -> Option<Unfrozen> {
        self.frozen.take().map(|frozen| Unfrozen {
            table: frozen.table,
            bytes: frozen.bytes,
            expiring: frozen.expiring,
        })
    }

    /// Keeps an emptied table for the next freeze.
    pub(crate) fn recycle(&mut self, table: Memtable) {
        if table.is_empty() && self.spare.is_none() {
            self.spare = Some(table);
        }
    }
}

/// Empties a frozen table the install dropped, for [`MemLayers::recycle`] (`None` if it is still shared).
/// Run off the slot lock: dropping a budget's worth of entries takes milliseconds.
pub(crate) fn emptied(table: Arc<Memtable>) -> Option<Memtable> {
    let mut table = Arc::try_unwrap(table).ok()?;
    table.clear();
    Some(table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::slot::MemValue;

    fn entry(seq: u64, value: MemValue) -> MemEntry {
        MemEntry { seq, expire_at: 0, value, prior: None }
    }

    fn key(position: u64, db: u16, name: &str) -> MemKey {
        (position << 58, db, name.as_bytes().into())
    }

    /// Reads, ranges and iteration across both tables: the active table wins, a tombstone in it shadows
    /// a frozen value, a flush hides the frozen entries of its database, each key is listed once.
    #[test]
    fn active_shadows_frozen() {
        let mut layers = MemLayers::default();
        for (index, name) in ["a", "b", "c", "d"].iter().enumerate() {
            layers.insert(key(index as u64, 0, name), entry(index as u64 + 1, MemValue::Retime));
        }
        layers.insert(key(5, 1, "e"), entry(5, MemValue::Retime));
        let frozen = layers.freeze(100, 0);
        assert_eq!(frozen.len(), 5);
        assert!(layers.active_get(0, 0, b"a").is_none());
        layers.insert(key(1, 0, "b"), entry(10, MemValue::Delete));
        layers.insert(key(4, 0, "z"), entry(11, MemValue::Retime));
        // The tombstone wins over the frozen entry.
        assert!(matches!(layers.get(1 << 58, 0, b"b").map(|e| &e.value), Some(MemValue::Delete)));
        assert_eq!(layers.get(0, 0, b"a").map(|e| e.seq), Some(1));
        let all: Vec<(u64, u64)> =
            layers.range((Bound::Unbounded, Bound::Unbounded)).iter().map(|(k, e)| (k.0 >> 58, e.seq)).collect();
        assert_eq!(all, vec![(0, 1), (1, 10), (2, 3), (3, 4), (4, 11), (5, 5)]);
        let mut iterated: Vec<u64> = layers.iter().map(|(_, e)| e.seq).collect();
        iterated.sort_unstable();
        assert_eq!(iterated, vec![1, 3, 4, 5, 10, 11]);
        let mut keys: Vec<Vec<u8>> = layers.keys_of_db(0).into_iter().map(|k| k.2.to_vec()).collect();
        keys.sort();
        assert_eq!(keys, vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec(), b"d".to_vec(), b"z".to_vec()]);
        // A flush of database 1 hides its frozen entry only.
        layers.hide_frozen_db(1);
        assert!(layers.get(5 << 58, 1, b"e").is_none());
        assert!(!layers.has_db(1));
        assert_eq!(layers.range((Bound::Unbounded, Bound::Unbounded)).len(), 5);
        // FLUSHALL hides everything frozen.
        let counted = layers.clear();
        assert_eq!(counted, (100, 0));
        assert!(layers.get(0, 0, b"a").is_none());
        assert!(layers.iter().next().is_none());
        assert!(!layers.is_empty());
        let unfrozen = layers.unfreeze().expect("frozen");
        drop(frozen);
        let table = emptied(unfrozen.table).expect("unshared");
        layers.recycle(table);
        assert!(layers.is_empty());
        layers.insert(key(0, 0, "a"), entry(20, MemValue::Retime));
        let again = layers.freeze(0, 0);
        assert_eq!(again.len(), 1);
        assert!(layers.spare.is_none());
    }
}
