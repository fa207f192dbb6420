//! The memtable: the in-memory index of a slot's unflushed WAL entries. Point lookups (every read and
//! write) go through a hash map. Scans and checkpoints need the keys in scan-position order (bit-reversed
//! key hash): a checkpoint sorts the entries once when it takes them, and a scan builds a sorted copy of
//! the keys on its first call, keeping the keys added after it in a small B-tree beside it. Keeping a
//! B-tree of every key beside the map cost a second copy of each key and 8% of a SET (issue 14), for the
//! benefit of scans only; a million-entry B-tree lookup also cost several cache misses per read.
//!
//! The hash table keeps its capacity across checkpoints (they drain it): regrowing it after each one
//! made the kernel zero fresh pages for every doubling, 14-18% of SET's CPU time.

use std::collections::BTreeSet;
use std::hash::{BuildHasher, Hash, Hasher};
use std::ops::{Bound, RangeBounds};
use std::sync::Mutex;

use hashbrown::{Equivalent, HashMap};

use super::slot::{MemEntry, MemKey};

/// A borrowed memtable key: hashes and compares like the owned `(u64, u16, Vec<u8>)`.
struct KeyRef<'a>(u64, u16, &'a [u8]);

impl Hash for KeyRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Same sequence of writes as the tuple `(u64, u16, Vec<u8>)`: a Vec hashes as its slice.
        self.0.hash(state);
        self.1.hash(state);
        self.2.hash(state);
    }
}

impl Equivalent<MemKey> for KeyRef<'_> {
    fn equivalent(&self, key: &MemKey) -> bool {
        self.0 == key.0 && self.1 == key.1 && self.2 == key.2.as_slice()
    }
}

/// Hashes a memtable key by the key hash it already carries (its first field, an xxh3 of db and key):
/// hashing the key bytes again cost a few percent of every command. The carried hash is bit-reversed and
/// the slot is chosen by some of its bits, so it is mixed (a folded 128-bit multiply) to spread both the
/// bits hashbrown indexes with and the ones it tags with.
#[derive(Default, Clone, Copy)]
pub(crate) struct CarriedHash;

impl BuildHasher for CarriedHash {
    type Hasher = CarriedHasher;

    fn build_hasher(&self) -> CarriedHasher {
        CarriedHasher { hash: None }
    }
}

/// See [`CarriedHash`]: keeps the first `u64` written and ignores the rest.
pub(crate) struct CarriedHasher {
    hash: Option<u64>,
}

impl Hasher for CarriedHasher {
    fn write(&mut self, _bytes: &[u8]) {}

    fn write_u64(&mut self, value: u64) {
        self.hash.get_or_insert(value);
    }

    fn finish(&self) -> u64 {
        let product = u128::from(self.hash.unwrap_or(0)) * 0x9E37_79B9_7F4A_7C15_u128;
        (product as u64) ^ ((product >> 64) as u64)
    }
}

/// See the module docs.
#[derive(Default)]
pub(crate) struct Memtable {
    entries: HashMap<MemKey, MemEntry, CarriedHash>,
    /// The scan order, built on demand: `None` until a scan asks for a range. A mutex (uncontended) rather
    /// than a cell so that a frozen memtable can be shared with the checkpoint thread (`memlayers`).
    order: Mutex<Option<Order>>,
}

/// Keys in scan order for [`Memtable::range`]. Removed keys stay listed until the memtable is emptied (a
/// range looks every key up in the map, so they are skipped); a key removed and added again may be listed
/// in both parts, and a range returns it once.
#[derive(Default)]
struct Order {
    sorted: Vec<MemKey>,
    /// Keys inserted since `sorted` was last rebuilt. A B-tree, so that a scan call after a few inserts
    /// does not re-merge the whole sorted list (a call costs O(log n) plus its keys); merged into
    /// `sorted` once it passes an eighth of it. Inserts pay for it only while a scan uses the order.
    added: BTreeSet<MemKey>,
}

impl Memtable {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry of `(reversed hash, db, key)`, without allocating.
    pub(crate) fn get(&self, reversed_hash: u64, db: u16, key: &[u8]) -> Option<&MemEntry> {
        self.entries.get(&KeyRef(reversed_hash, db, key))
    }

    pub(crate) fn get_mut(&mut self, reversed_hash: u64, db: u16, key: &[u8]) -> Option<&mut MemEntry> {
        self.entries.get_mut(&KeyRef(reversed_hash, db, key))
    }

    /// Inserts or replaces; returns the replaced entry.
    pub(crate) fn insert(&mut self, key: MemKey, entry: MemEntry) -> Option<MemEntry> {
        if let Some(existing) = self.entries.get_mut(&key) {
            return Some(std::mem::replace(existing, entry));
        }
        if let Some(order) = self.order.get_mut().unwrap_or_else(|p| p.into_inner()) {
            order.added.insert(key.clone());
        }
        self.entries.insert(key, entry);
        None
    }

    pub(crate) fn remove(&mut self, key: &MemKey) -> Option<MemEntry> {
        self.entries.remove(key)
    }

    /// Empties the memtable, keeping the hash table's capacity for the next cycle.
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        *self.order.get_mut().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Every key of one database, in no particular order.
    pub(crate) fn keys_of_db(&self, db: u16) -> Vec<MemKey> {
        self.entries.keys().filter(|(_, key_db, _)| *key_db == db).cloned().collect()
    }

    /// True if any entry (a write, a delete or a retime) is for a key of `db`; no keys are copied.
    pub(crate) fn has_db(&self, db: u16) -> bool {
        self.entries.keys().any(|(_, key_db, _)| *key_db == db)
    }

    /// Entries whose keys fall in `range`, in key order. The first call after the memtable was emptied
    /// sorts a copy of every key; keys added later are kept in a small B-tree beside it (see [`Order`]).
    pub(crate) fn range(&self, range: impl RangeBounds<MemKey>) -> Vec<(&MemKey, &MemEntry)> {
        let mut order = self.order.lock().unwrap_or_else(|p| p.into_inner());
        let order = order.get_or_insert_with(|| {
            let mut sorted: Vec<MemKey> = self.entries.keys().cloned().collect();
            sorted.sort_unstable();
            Order { sorted, added: BTreeSet::new() }
        });
        if order.added.len() > order.sorted.len() / 8 + 1024 {
            let added = std::mem::take(&mut order.added);
            let old = std::mem::take(&mut order.sorted);
            order.sorted = merge_sorted(old.into_iter(), added.into_iter());
        }
        let (low, high) = (range.start_bound(), range.end_bound());
        let empty = match (low, high) {
            (Bound::Included(a), Bound::Included(b)) => a > b,
            (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => a >= b,
            _ => false,
        };
        if empty {
            return Vec::new();
        }
        let start = match low {
            Bound::Included(low) => order.sorted.partition_point(|key| key < low),
            Bound::Excluded(low) => order.sorted.partition_point(|key| key <= low),
            Bound::Unbounded => 0,
        };
        let end = match high {
            Bound::Included(high) => order.sorted.partition_point(|key| key <= high),
            Bound::Excluded(high) => order.sorted.partition_point(|key| key < high),
            Bound::Unbounded => order.sorted.len(),
        };
        let keys =
            merge_sorted(order.sorted[start..end.max(start)].iter(), order.added.range::<MemKey, _>((low, high)));
        keys.into_iter().filter_map(|key| self.entries.get_key_value(key)).collect()
    }

    /// Every entry, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&MemKey, &MemEntry)> {
        self.entries.iter()
    }

    /// Empties the memtable, returning its entries in key order. The hash table keeps its capacity.
    #[cfg(test)]
    pub(crate) fn take_sorted(&mut self) -> Vec<(MemKey, MemEntry)> {
        *self.order.get_mut().unwrap_or_else(|p| p.into_inner()) = None;
        let mut sorted: Vec<(MemKey, MemEntry)> = self.entries.drain().collect();
        sorted.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        sorted
    }
}

/// Merges two ascending sequences into one, keeping one of equal items.
fn merge_sorted<T: Ord>(a: impl Iterator<Item = T>, b: impl Iterator<Item = T>) -> Vec<T> {
    let (mut a, mut b) = (a.peekable(), b.peekable());
    let mut merged: Vec<T> = Vec::with_capacity(a.size_hint().0 + b.size_hint().0);
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x <= y => a.next(),
            (Some(_), Some(_)) => b.next(),
            (Some(_), None) => a.next(),
            (None, Some(_)) => b.next(),
            (None, None) => break,
        };
        if let Some(item) = next {
            if merged.last() != Some(&item) {
                merged.push(item);
            }
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::engine::slot::MemValue;

    fn entry(seq: u64) -> MemEntry {
        MemEntry { seq, expire_at: 0, value: MemValue::Delete, prior: None }
    }

    /// `range` and `take_sorted` against a B-tree model, with inserts, overwrites, removes and re-inserts
    /// between the scans (the added keys beside the sorted ones, and the skipping of removed ones).
    #[test]
    fn range_matches_an_ordered_model() {
        check_against_model(14, 8, 2_000);
    }

    /// The same with enough new keys between scans that they are merged into the sorted list.
    #[test]
    fn range_matches_an_ordered_model_across_merges() {
        check_against_model(15, 255, 12_000);
    }

    fn check_against_model(seed: u64, key_bytes: u8, steps: u64) {
        let mut rng = SmallRng::seed_from_u64(seed);
        for round in 0..10 {
            let mut memtable = Memtable::default();
            let mut model: BTreeMap<MemKey, u64> = BTreeMap::new();
            for step in 0..steps {
                let key: MemKey =
                    (rng.gen_range(0..64u64) << 58, rng.gen_range(0..2), vec![rng.gen_range(0..key_bytes)]);
                match rng.gen_range(0..40) {
                    0..=23 => {
                        memtable.insert(key.clone(), entry(step));
                        model.insert(key, step);
                    }
                    24..=31 => {
                        assert_eq!(memtable.remove(&key).map(|e| e.seq), model.remove(&key));
                    }
                    _ => {
                        let low: MemKey = (rng.gen_range(0..64u64) << 58, 0, Vec::new());
                        let high: MemKey = (low.0.saturating_add(rng.gen_range(0..16u64) << 58), 0, Vec::new());
                        let got: Vec<(MemKey, u64)> = memtable
                            .range(low.clone()..high.clone())
                            .into_iter()
                            .map(|(k, e)| (k.clone(), e.seq))
                            .collect();
                        let want: Vec<(MemKey, u64)> =
                            model.range(low.clone()..high).map(|(k, s)| (k.clone(), *s)).collect();
                        assert_eq!(got, want, "round {round} step {step}");
                        let all: Vec<MemKey> =
                            memtable.range(low.clone()..).into_iter().map(|(k, _)| k.clone()).collect();
                        let want_all: Vec<MemKey> = model.range(low..).map(|(k, _)| k.clone()).collect();
                        assert_eq!(all, want_all);
                    }
                }
                assert_eq!(memtable.len(), model.len());
            }
            let sorted: Vec<(MemKey, u64)> = memtable.take_sorted().into_iter().map(|(k, e)| (k, e.seq)).collect();
            assert_eq!(sorted, model.into_iter().collect::<Vec<_>>());
            assert!(memtable.is_empty());
            assert!(memtable.range(..).is_empty());
        }
    }
}
