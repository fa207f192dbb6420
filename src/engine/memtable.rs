//! The memtable: the in-memory index of a slot's unflushed WAL entries. Point lookups (every read and
//! write) go through a hash table. Scans and checkpoints need the keys in scan-position order (bit-reversed
//! key hash): a checkpoint sorts the entries once when it takes them, and a scan builds a sorted copy of
//! the keys on its first call, keeping the keys added after it in a small B-tree beside it. Keeping a
//! B-tree of every key beside the map cost a second copy of each key and 8% of a SET (issue 14), for the
//! benefit of scans only; a million-entry B-tree lookup also cost several cache misses per read.
//!
//! Memory (issue 14): each entry is one 112-byte slot of an arena, its key and [`MemEntry`] side by side
//! (keys up to [`KEY_INLINE`] bytes inside the [`MemKey`], longer ones in a block of their own), and the
//! hash table holds one 4-byte arena index per bucket. The table used to hold the entries themselves,
//! 128 bytes a bucket, so the empty buckets a hash table keeps (an eighth to a half of them, as it
//! doubles) cost as much as entries, and every key was a second block with its own cache miss on lookup.
//! A lookup still touches two places (the table, then the entry with its key). The arena rather than a
//! heap block per entry: emptying a frozen table freed each block on its own, from the checkpoint thread
//! (a cross-thread free per entry, ~8% of a 10M-key load's CPU, docs/performance.md); its chunks go in
//! one free each.
//!
//! The hash table keeps its capacity across checkpoints (they drain it): regrowing it after each one
//! made the kernel zero fresh pages for every doubling, 14-18% of SET's CPU time. At 8 bytes a bucket
//! that capacity is now small.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};
use std::ops::{Bound, Deref, RangeBounds};
use std::sync::Mutex;

use hashbrown::HashTable;

use super::slot::{MemEntry, MemKey};

/// Keys up to this length are stored inside their [`MemKeyBytes`] (most keys are short: redis-benchmark's
/// are 16 bytes); longer ones take a heap block.
pub(crate) const KEY_INLINE: usize = 22;

/// The key bytes of a memtable key: inline up to [`KEY_INLINE`] bytes, else boxed. 24 bytes, as a
/// `Vec<u8>`, but a short key costs no allocation and no second cache miss. Compares, orders and hashes
/// as its byte slice (as the `Vec<u8>` it replaces did).
#[derive(Clone)]
pub(crate) enum MemKeyBytes {
    /// Length and bytes (the first `length` of them are the key).
    Inline(u8, [u8; KEY_INLINE]),
    /// A key longer than [`KEY_INLINE`] bytes.
    Heap(Box<[u8]>),
}

impl MemKeyBytes {
    /// The empty key (range bounds).
    pub(crate) const fn new() -> Self {
        MemKeyBytes::Inline(0, [0; KEY_INLINE])
    }

    /// The key's bytes.
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            MemKeyBytes::Inline(len, bytes) => &bytes[..*len as usize],
            MemKeyBytes::Heap(bytes) => bytes,
        }
    }
}

impl Default for MemKeyBytes {
    fn default() -> Self {
        Self::new()
    }
}

impl From<&[u8]> for MemKeyBytes {
    fn from(key: &[u8]) -> Self {
        if key.len() <= KEY_INLINE {
            let mut bytes = [0; KEY_INLINE];
            bytes[..key.len()].copy_from_slice(key);
            MemKeyBytes::Inline(key.len() as u8, bytes)
        } else {
            MemKeyBytes::Heap(Box::from(key))
        }
    }
}

impl From<Vec<u8>> for MemKeyBytes {
    fn from(key: Vec<u8>) -> Self {
        if key.len() <= KEY_INLINE {
            MemKeyBytes::from(key.as_slice())
        } else {
            MemKeyBytes::Heap(key.into_boxed_slice())
        }
    }
}

impl Deref for MemKeyBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl PartialEq for MemKeyBytes {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for MemKeyBytes {}

impl PartialEq<[u8]> for MemKeyBytes {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_slice() == other
    }
}

impl PartialOrd for MemKeyBytes {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for MemKeyBytes {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_slice().cmp(other.as_slice())
    }
}

impl Hash for MemKeyBytes {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl std::fmt::Debug for MemKeyBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_slice().fmt(f)
    }
}

/// The table hash of a memtable key, from the key hash it already carries (its first field, an xxh3 of
/// db and key): hashing the key bytes again cost a few percent of every command. The carried hash is
/// bit-reversed and the slot is chosen by some of its bits, so it is mixed (a folded 128-bit multiply) to
/// spread both the bits hashbrown indexes with and the ones it tags with.
fn table_hash(reversed_hash: u64) -> u64 {
    let product = u128::from(reversed_hash) * 0x9E37_79B9_7F4A_7C15_u128;
    (product as u64) ^ ((product >> 64) as u64)
}

/// One entry: its key and state side by side (see the module docs).
type Node = (MemKey, MemEntry);

/// Arena index bits for the position within a chunk (chunks hold at most `1 << CHUNK_BITS` entries).
const CHUNK_BITS: u32 = 12;

/// Entries of the first chunk: chunks double up to `1 << CHUNK_BITS`, so that the many slots' small
/// memtables do not each hold a 450 KiB chunk.
const FIRST_CHUNK: usize = 64;

/// The entries of a memtable, addressed by `u32` index (chunk number, position): appended in arrival
/// order, never moved, emptied in one go. A removed entry's place is reused by the next insert.
#[derive(Default)]
struct Arena {
    /// Each chunk is allocated at its full capacity and never grows (so never reallocates).
    chunks: Vec<Vec<Node>>,
    /// Places of removed entries (holding a placeholder).
    vacant: Vec<u32>,
}

impl Arena {
    fn get(&self, index: u32) -> &Node {
        &self.chunks[(index >> CHUNK_BITS) as usize][(index & ((1 << CHUNK_BITS) - 1)) as usize]
    }

    fn get_mut(&mut self, index: u32) -> &mut Node {
        &mut self.chunks[(index >> CHUNK_BITS) as usize][(index & ((1 << CHUNK_BITS) - 1)) as usize]
    }

    fn push(&mut self, node: Node) -> u32 {
        if let Some(index) = self.vacant.pop() {
            *self.get_mut(index) = node;
            return index;
        }
        let full = self.chunks.last().is_none_or(|chunk| chunk.len() == chunk.capacity());
        if full {
            let capacity = (FIRST_CHUNK << self.chunks.len().min(CHUNK_BITS as usize)).min(1 << CHUNK_BITS);
            self.chunks.push(Vec::with_capacity(capacity));
        }
        let chunk_number = self.chunks.len() - 1;
        let chunk = &mut self.chunks[chunk_number];
        let index = ((chunk_number as u32) << CHUNK_BITS) | chunk.len() as u32;
        chunk.push(node);
        index
    }

    /// Takes a removed entry out, leaving a placeholder (no allocation) until its place is reused.
    fn take(&mut self, index: u32) -> Node {
        let placeholder: Node = (
            (0, 0, MemKeyBytes::new()),
            MemEntry { seq: 0, expire_at: 0, value: super::slot::MemValue::Delete, prior: None },
        );
        self.vacant.push(index);
        std::mem::replace(self.get_mut(index), placeholder)
    }

    fn clear(&mut self) {
        self.chunks = Vec::new();
        self.vacant = Vec::new();
    }
}

/// See the module docs.
#[derive(Default)]
pub(crate) struct Memtable {
    /// Arena indexes of the entries.
    entries: HashTable<u32>,
    arena: Arena,
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

    fn find(&self, reversed_hash: u64, db: u16, key: &[u8]) -> Option<&(MemKey, MemEntry)> {
        let arena = &self.arena;
        self.entries
            .find(table_hash(reversed_hash), |&index| {
                let node = arena.get(index);
                node.0 .0 == reversed_hash && node.0 .1 == db && node.0 .2.as_slice() == key
            })
            .map(|&index| arena.get(index))
    }

    /// The entry of `(reversed hash, db, key)`, without allocating.
    pub(crate) fn get(&self, reversed_hash: u64, db: u16, key: &[u8]) -> Option<&MemEntry> {
        self.find(reversed_hash, db, key).map(|(_, entry)| entry)
    }

    pub(crate) fn get_mut(&mut self, reversed_hash: u64, db: u16, key: &[u8]) -> Option<&mut MemEntry> {
        let arena = &self.arena;
        let index = *self.entries.find(table_hash(reversed_hash), |&index| {
            let node = arena.get(index);
            node.0 .0 == reversed_hash && node.0 .1 == db && node.0 .2.as_slice() == key
        })?;
        Some(&mut self.arena.get_mut(index).1)
    }

    /// Inserts or replaces; returns the replaced entry.
    pub(crate) fn insert(&mut self, key: MemKey, entry: MemEntry) -> Option<MemEntry> {
        if let Some(existing) = self.get_mut(key.0, key.1, &key.2) {
            return Some(std::mem::replace(existing, entry));
        }
        if let Some(order) = self.order.get_mut().unwrap_or_else(|p| p.into_inner()) {
            order.added.insert(key.clone());
        }
        let hash = table_hash(key.0);
        let index = self.arena.push((key, entry));
        let arena = &self.arena;
        self.entries.insert_unique(hash, index, |&index| table_hash(arena.get(index).0 .0));
        None
    }

    pub(crate) fn remove(&mut self, key: &MemKey) -> Option<MemEntry> {
        let arena = &self.arena;
        let found = self.entries.find_entry(table_hash(key.0), |&index| arena.get(index).0 == *key).ok()?;
        let (index, _) = found.remove();
        Some(self.arena.take(index).1)
    }

    /// Empties the memtable, keeping the hash table's capacity for the next cycle (the arena's chunks go).
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.arena.clear();
        *self.order.get_mut().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Every key of one database, in no particular order.
    pub(crate) fn keys_of_db(&self, db: u16) -> Vec<MemKey> {
        self.nodes().filter(|node| node.0 .1 == db).map(|node| node.0.clone()).collect()
    }

    /// True if any entry (a write, a delete or a retime) is for a key of `db`; no keys are copied.
    pub(crate) fn has_db(&self, db: u16) -> bool {
        self.nodes().any(|node| node.0 .1 == db)
    }

    fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.entries.iter().map(|&index| self.arena.get(index))
    }

    /// Entries whose keys fall in `range`, in key order. The first call after the memtable was emptied
    /// sorts a copy of every key; keys added later are kept in a small B-tree beside it (see [`Order`]).
    pub(crate) fn range(&self, range: impl RangeBounds<MemKey>) -> Vec<(&MemKey, &MemEntry)> {
        let mut order = self.order.lock().unwrap_or_else(|p| p.into_inner());
        let order = order.get_or_insert_with(|| {
            let mut sorted: Vec<MemKey> = self.nodes().map(|node| node.0.clone()).collect();
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
        keys.into_iter().filter_map(|key| self.find(key.0, key.1, &key.2).map(|(key, entry)| (key, entry))).collect()
    }

    /// Every entry, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&MemKey, &MemEntry)> {
        self.nodes().map(|node| (&node.0, &node.1))
    }

    /// Empties the memtable, returning its entries in key order. The hash table keeps its capacity.
    #[cfg(test)]
    pub(crate) fn take_sorted(&mut self) -> Vec<(MemKey, MemEntry)> {
        *self.order.get_mut().unwrap_or_else(|p| p.into_inner()) = None;
        let arena = &mut self.arena;
        let mut sorted: Vec<(MemKey, MemEntry)> = self.entries.drain().map(|index| arena.take(index)).collect();
        arena.clear();
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
    use crate::engine::page::MAX_KEY_LEN;
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
                // Keys of one byte, and some too long to be inline (both kinds in one table).
                let mut bytes = vec![rng.gen_range(0..key_bytes)];
                if rng.gen_range(0..4) == 0 {
                    bytes.resize(KEY_INLINE + 1 + rng.gen_range(0..3), b'k');
                }
                let key: MemKey = (rng.gen_range(0..64u64) << 58, rng.gen_range(0..2), bytes.into());
                match rng.gen_range(0..40) {
                    0..=23 => {
                        memtable.insert(key.clone(), entry(step));
                        model.insert(key, step);
                    }
                    24..=31 => {
                        assert_eq!(memtable.remove(&key).map(|e| e.seq), model.remove(&key));
                    }
                    _ => {
                        let low: MemKey = (rng.gen_range(0..64u64) << 58, 0, MemKeyBytes::new());
                        let high: MemKey = (low.0.saturating_add(rng.gen_range(0..16u64) << 58), 0, MemKeyBytes::new());
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

    /// Entries across many arena chunks, removed and added again (reusing the removed places): every
    /// lookup finds its own entry, and an emptied table starts over.
    #[test]
    fn arena_places_survive_growth_removal_and_reuse() {
        let key = |n: u64| -> MemKey {
            (n.wrapping_mul(0x9E37_79B9_7F4A_7C15), (n % 3) as u16, n.to_string().into_bytes().into())
        };
        let mut memtable = Memtable::default();
        for round in 0..2 {
            for n in 0..20_000 {
                assert!(memtable.insert(key(n), entry(n)).is_none());
            }
            for n in (0..20_000).step_by(3) {
                assert_eq!(memtable.remove(&key(n)).map(|e| e.seq), Some(n));
            }
            for n in (0..20_000).step_by(6) {
                assert!(memtable.insert(key(n), entry(n + 1_000_000)).is_none());
            }
            for n in 0..20_000 {
                let want = match (n % 3, n % 6) {
                    (0, 0) => Some(n + 1_000_000),
                    (0, _) => None,
                    _ => Some(n),
                };
                assert_eq!(memtable.get(key(n).0, key(n).1, &key(n).2).map(|e| e.seq), want, "round {round} key {n}");
            }
            assert_eq!(memtable.len(), memtable.iter().count());
            assert_eq!(memtable.arena.vacant.len(), 20_000usize.div_ceil(3) - 20_000usize.div_ceil(6));
            memtable.clear();
            assert!(memtable.is_empty() && memtable.arena.chunks.is_empty());
        }
    }

    /// Short keys live inside the key (no allocation), long ones on the heap; both give back their bytes
    /// and compare, order and hash exactly as the byte strings (and so as the `Vec<u8>` keys before them):
    /// scans depend on the order.
    #[test]
    fn key_bytes_round_trip_and_order_as_slices() {
        use std::collections::hash_map::DefaultHasher;
        let lengths = [0, 1, 15, 16, KEY_INLINE - 1, KEY_INLINE, KEY_INLINE + 1, 64, 1000, MAX_KEY_LEN];
        let mut rng = SmallRng::seed_from_u64(16);
        let mut keys: Vec<Vec<u8>> = Vec::new();
        for len in lengths {
            for _ in 0..4 {
                keys.push((0..len).map(|_| rng.gen_range(b'a'..=b'c')).collect());
            }
        }
        for key in &keys {
            let from_slice = MemKeyBytes::from(key.as_slice());
            let from_vec = MemKeyBytes::from(key.clone());
            assert_eq!(from_slice.as_slice(), key.as_slice());
            assert_eq!(&*from_vec, key.as_slice());
            assert_eq!(matches!(from_slice, MemKeyBytes::Inline(..)), key.len() <= KEY_INLINE);
            assert_eq!(matches!(from_vec, MemKeyBytes::Inline(..)), key.len() <= KEY_INLINE);
            let hash = |value: &dyn Fn(&mut DefaultHasher)| {
                let mut hasher = DefaultHasher::new();
                value(&mut hasher);
                hasher.finish()
            };
            assert_eq!(hash(&|h| from_slice.hash(h)), hash(&|h| key.hash(h)));
            for other in &keys {
                let other_bytes = MemKeyBytes::from(other.as_slice());
                assert_eq!(from_slice.cmp(&other_bytes), key.cmp(other), "{key:?} against {other:?}");
                assert_eq!(from_slice == other_bytes, key == other);
            }
        }
        assert_eq!(MemKeyBytes::new().as_slice(), b"");
        assert_eq!(std::mem::size_of::<MemKeyBytes>(), 24, "as small as the Vec<u8> it replaced");
        assert_eq!(std::mem::size_of::<MemKey>(), 40);
    }

    /// Every kind of entry (a value kept in memory, one left in the WAL, a tombstone, a retime with its
    /// expiry, a resolved prior) comes back as it went in, by lookup, iteration, copy and range, for short
    /// and long keys; replacing returns the old entry, removing returns it and leaves nothing behind.
    #[test]
    fn entries_round_trip() {
        use crate::engine::envelope::ValueKind;
        use crate::engine::slot::MemEnvelope;

        let in_memory = |seq: u64| MemEntry {
            seq,
            expire_at: 0,
            value: MemValue::Set {
                kind: ValueKind::String,
                envelope: MemEnvelope { bytes: Some(Box::from([0, 0, 7].as_slice())), record: (96, 40), len: 3 },
            },
            prior: Some(true),
        };
        let in_wal = |seq: u64| MemEntry {
            seq,
            expire_at: 1_700_000_000_000,
            value: MemValue::Set {
                kind: ValueKind::Hash,
                envelope: MemEnvelope { bytes: None, record: (1 << 40, 70_000), len: 69_000 },
            },
            prior: None,
        };
        let tombstone = |seq: u64| MemEntry { seq, expire_at: 0, value: MemValue::Delete, prior: Some(false) };
        let retime = |seq: u64| MemEntry { seq, expire_at: u64::MAX, value: MemValue::Retime, prior: Some(true) };
        let same = |a: &MemEntry, b: &MemEntry| format!("{a:?}") == format!("{b:?}");
        let makers: [&dyn Fn(u64) -> MemEntry; 4] = [&in_memory, &in_wal, &tombstone, &retime];
        let mut memtable = Memtable::default();
        let mut keys = Vec::new();
        for (i, key_len) in [3usize, KEY_INLINE, KEY_INLINE + 1, MAX_KEY_LEN].into_iter().enumerate() {
            for (j, make) in makers.iter().enumerate() {
                let seq = (i * 4 + j) as u64 + 1;
                let bytes = vec![b'a' + seq as u8; key_len];
                let key: MemKey = ((seq << 56) | 1, (j % 2) as u16, bytes.into());
                assert!(memtable.insert(key.clone(), make(seq)).is_none());
                keys.push((key, j, seq));
            }
        }
        assert_eq!(memtable.len(), keys.len());
        for (key, j, seq) in &keys {
            let want = makers[*j](*seq);
            assert!(same(memtable.get(key.0, key.1, &key.2).expect("present"), &want));
            assert!(memtable.get(key.0, key.1 + 2, &key.2).is_none(), "another database");
            assert!(memtable.get(key.0 ^ 2, key.1, &key.2).is_none(), "another hash");
        }
        let listed: Vec<(&MemKey, &MemEntry)> = memtable.iter().collect();
        assert_eq!(listed.len(), keys.len());
        for (key, entry) in listed {
            let (_, j, seq) = keys.iter().find(|(k, _, _)| k == key).expect("listed key");
            assert!(same(entry, &makers[*j](*seq)));
        }
        let ranged: Vec<MemKey> = memtable.range(..).into_iter().map(|(key, _)| key.clone()).collect();
        let mut sorted: Vec<MemKey> = keys.iter().map(|(key, _, _)| key.clone()).collect();
        sorted.sort();
        assert_eq!(ranged, sorted);
        assert_eq!(memtable.iter().count(), keys.len());
        assert_eq!(memtable.keys_of_db(1).len(), keys.len() / 2);
        assert!(memtable.has_db(0) && !memtable.has_db(3));
        // Replace every entry with the next kind, then remove them all.
        for (key, j, seq) in &keys {
            let next = makers[(j + 1) % 4](seq + 100);
            let old = memtable.insert(key.clone(), next).expect("replaced");
            assert!(same(&old, &makers[*j](*seq)));
            memtable.get_mut(key.0, key.1, &key.2).expect("present").prior = Some(false);
        }
        assert_eq!(memtable.len(), keys.len());
        for (key, j, seq) in &keys {
            let mut want = makers[(j + 1) % 4](seq + 100);
            want.prior = Some(false);
            let removed = memtable.remove(key).expect("removed");
            assert!(same(&removed, &want));
            assert!(memtable.remove(key).is_none());
            assert!(memtable.get(key.0, key.1, &key.2).is_none());
        }
        assert!(memtable.is_empty());
        assert!(memtable.range(..).is_empty());
    }
}
