//! The memtable: the in-memory index of a slot's unflushed WAL entries. Point lookups (every read and
//! write) go through a hash map; a sorted set of the same keys, ordered by bit-reversed key hash, serves
//! scans and checkpoints, which need the keys in scan-position order. Keeping both costs a copy of each
//! key; with a million entries a B-tree lookup alone cost several cache misses per read.

use std::collections::BTreeSet;
use std::hash::{BuildHasher, Hash, Hasher};
use std::ops::RangeBounds;

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
    order: BTreeSet<MemKey>,
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
        self.order.insert(key.clone());
        self.entries.insert(key, entry);
        None
    }

    pub(crate) fn remove(&mut self, key: &MemKey) -> Option<MemEntry> {
        self.order.remove(key);
        self.entries.remove(key)
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
    }

    /// Every key of one database.
    pub(crate) fn keys_of_db(&self, db: u16) -> Vec<MemKey> {
        self.order.iter().filter(|(_, key_db, _)| *key_db == db).cloned().collect()
    }

    /// True if any entry (a write, a delete or a retime) is for a key of `db`; no keys are copied.
    pub(crate) fn has_db(&self, db: u16) -> bool {
        self.order.iter().any(|(_, key_db, _)| *key_db == db)
    }

    /// Entries whose keys fall in `range`, in key order.
    pub(crate) fn range<'a>(
        &'a self,
        range: impl RangeBounds<MemKey> + 'a,
    ) -> impl Iterator<Item = (&'a MemKey, &'a MemEntry)> + 'a {
        self.order.range(range).filter_map(move |key| self.entries.get(key).map(|entry| (key, entry)))
    }

    /// Every entry, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&MemKey, &MemEntry)> {
        self.entries.iter()
    }

    /// Empties the memtable, returning its entries in key order.
    pub(crate) fn take_sorted(&mut self) -> Vec<(MemKey, MemEntry)> {
        let order = std::mem::take(&mut self.order);
        let mut entries = std::mem::take(&mut self.entries);
        order.into_iter().filter_map(|key| entries.remove(&key).map(|entry| (key, entry))).collect()
    }

    /// Refills an empty memtable from `take_sorted`'s output.
    pub(crate) fn restore(&mut self, sorted: Vec<(MemKey, MemEntry)>) {
        for (key, entry) in sorted {
            self.insert(key, entry);
        }
    }
}
