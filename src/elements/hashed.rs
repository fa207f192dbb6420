//! Fields of a split hash or set in linear-hashed buckets (docs/format.md §"Split collections").
//!
//! Bucket `b` is part `b + 1`. The table grows one bucket at a time (linear hashing): when the average
//! bucket would exceed [`TARGET_ENTRIES`] entries or [`TARGET_BYTES`] bytes, bucket `split` is divided
//! between itself and `split + 2^level`. So one insert reads and writes at most three parts, whatever the
//! size of the collection, and buckets only ever split, which keeps HSCAN/SSCAN cursors valid.

use bytes::Bytes;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::{damaged, put_bytes, Home, PartReader, Parts, Result, LAYOUT_HASHED};
use crate::engine::{BatchOp, Slot};

/// Average entries per bucket before the table grows.
pub const TARGET_ENTRIES: u64 = 32;
/// Average bucket bytes before the table grows.
pub const TARGET_BYTES: u64 = 4096;

/// Bytes of the table state in a header.
pub const STATE_LEN: usize = 17;

/// A split hash or set (a set's values are empty).
#[derive(Debug)]
pub struct Hashed {
    parts: Parts,
    count: u64,
    level: u8,
    split: u64,
    bytes: u64,
}

/// The next number of a SplitMix64 sequence (a cheap, well-mixed generator for random picks).
pub(crate) fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The bytes an entry adds to its bucket.
fn entry_bytes(field: &[u8], value: &[u8]) -> u64 {
    8 + field.len() as u64 + value.len() as u64
}

impl Hashed {
    /// A new split collection at `home` holding `entries` (distinct fields); all its parts are written.
    pub fn create(home: Home, entries: Vec<(Bytes, Bytes)>) -> Hashed {
        let count = entries.len() as u64;
        let bytes: u64 = entries.iter().map(|(f, v)| entry_bytes(f, v)).sum();
        let mut level = 0u8;
        // Start half full so that the first inserts do not split at once.
        while (1u64 << level) * TARGET_ENTRIES / 2 < count || (1u64 << level) * TARGET_BYTES / 2 < bytes {
            level += 1;
        }
        let mut hashed = Hashed { parts: Parts::new(home), count, level, split: 0, bytes };
        let mut buckets: Vec<Vec<(Bytes, Bytes)>> = vec![Vec::new(); 1usize << level];
        for (field, value) in entries {
            let bucket = hashed.bucket_of(&field);
            buckets[bucket as usize].push((field, value));
        }
        for (bucket, entries) in buckets.into_iter().enumerate() {
            hashed.write_bucket(bucket as u64, &entries);
        }
        hashed
    }

    /// The split collection described by header `payload` (already checked to be split) of `key`.
    pub fn decode(db: u16, key: &[u8], payload: &[u8]) -> Result<Hashed> {
        let (layout, home, count, rest) = super::read_header_prefix(db, key, payload)?;
        if layout != LAYOUT_HASHED || rest.len() != STATE_LEN {
            return Err(damaged(key, format!("not a hashed header (layout {layout}, {} bytes)", payload.len())));
        }
        Hashed::decode_state(home, key, count, rest)
    }

    /// The table state at the start of `bytes` (after a header prefix giving `count`).
    pub fn decode_state(home: Home, key: &[u8], count: u64, bytes: &[u8]) -> Result<Hashed> {
        if bytes.len() < STATE_LEN {
            return Err(damaged(key, "hashed state truncated"));
        }
        let level = bytes[0];
        let split = u64::from_le_bytes(bytes[1..9].try_into().expect("8 bytes"));
        let element_bytes = u64::from_le_bytes(bytes[9..17].try_into().expect("8 bytes"));
        if level > 40 || split >= 1u64 << level {
            return Err(damaged(key, format!("impossible table shape (level {level}, split {split})")));
        }
        Ok(Hashed { parts: Parts::new(home), count, level, split, bytes: element_bytes })
    }

    /// The header payload.
    pub fn header(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(super::HEADER_PREFIX_LEN + STATE_LEN);
        super::put_header_prefix(&mut out, LAYOUT_HASHED, self.parts.home(), self.count);
        self.encode_state(&mut out);
        out
    }

    /// Appends the table state (level, split, bytes) to a header.
    pub fn encode_state(&self, out: &mut Vec<u8>) {
        out.push(self.level);
        out.extend_from_slice(&self.split.to_le_bytes());
        out.extend_from_slice(&self.bytes.to_le_bytes());
    }

    /// Number of entries.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Sum of the entries' encoded sizes.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Where the parts live.
    pub fn home(&self) -> Home {
        self.parts.home()
    }

    fn bucket_count(&self) -> u64 {
        (1u64 << self.level) + self.split
    }

    fn hash(&self, field: &[u8]) -> u64 {
        xxh3_64_with_seed(field, self.parts.home().id)
    }

    fn bucket_of(&self, field: &[u8]) -> u64 {
        let hash = self.hash(field);
        let bucket = hash & ((1u64 << self.level) - 1);
        if bucket < self.split {
            hash & ((1u64 << (self.level + 1)) - 1)
        } else {
            bucket
        }
    }

    fn read_bucket(&mut self, slot: &mut Slot, bucket: u64) -> Result<Vec<(Bytes, Bytes)>> {
        let part = bucket as u32 + 1;
        let Some(bytes) = self.parts.get(slot, part)? else { return Ok(Vec::new()) };
        let bad = || damaged(&self.parts.home().part_key(part), "bucket does not decode");
        let mut reader = PartReader::new(&bytes);
        let n = reader.u32().ok_or_else(bad)?;
        let mut entries = Vec::with_capacity((n as usize).min(bytes.len() / 8));
        for _ in 0..n {
            let field = reader.bytes().ok_or_else(bad)?;
            let value = reader.bytes().ok_or_else(bad)?;
            entries.push((field, value));
        }
        if !reader.is_done() {
            return Err(bad());
        }
        Ok(entries)
    }

    fn write_bucket(&mut self, bucket: u64, entries: &[(Bytes, Bytes)]) {
        let part = bucket as u32 + 1;
        if entries.is_empty() {
            self.parts.remove(part);
            return;
        }
        let size: usize = entries.iter().map(|(f, v)| entry_bytes(f, v) as usize).sum();
        let mut out = Vec::with_capacity(4 + size);
        out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        for (field, value) in entries {
            put_bytes(&mut out, field);
            put_bytes(&mut out, value);
        }
        self.parts.put(part, out);
    }

    /// Bucket `bucket`'s entries as slices of `bytes`, its part's bytes (`None`: no part, no entries).
    ///
    /// Point reads and writes (HGET, HSET, SADD, a sorted set's score lookup, ZADD, ZREM...) go through
    /// these slices rather than [`Hashed::read_bucket`]: a `Bytes` for every field and value of the bucket
    /// (about 32 of each), each cloned and dropped with an atomic reference count, was much of the cost of
    /// a write to a large collection (docs/performance.md, issue 9, branch `scriptspeed`).
    fn bucket_slices<'b>(&self, bucket: u64, bytes: Option<&'b Bytes>) -> Result<Vec<(&'b [u8], &'b [u8])>> {
        let Some(bytes) = bytes else { return Ok(Vec::new()) };
        let bad = || damaged(&self.parts.home().part_key(bucket as u32 + 1), "bucket does not decode");
        let mut reader = PartReader::new(bytes);
        let n = reader.u32().ok_or_else(bad)?;
        let mut entries = Vec::with_capacity((n as usize).min(bytes.len() / 8));
        for _ in 0..n {
            let field = reader.slice().ok_or_else(bad)?;
            let value = reader.slice().ok_or_else(bad)?;
            entries.push((field, value));
        }
        if !reader.is_done() {
            return Err(bad());
        }
        Ok(entries)
    }

    /// The bytes of bucket `bucket`'s part, if it has one.
    fn bucket_bytes(&mut self, slot: &mut Slot, bucket: u64) -> Result<Option<Bytes>> {
        self.parts.get(slot, bucket as u32 + 1)
    }

    /// Writes bucket `bucket` holding `entries` (in this order); no part when there are none.
    fn write_bucket_slices(&mut self, bucket: u64, entries: &[(&[u8], &[u8])], extra: Option<(&[u8], &[u8])>) {
        let part = bucket as u32 + 1;
        let count = entries.len() + usize::from(extra.is_some());
        if count == 0 {
            self.parts.remove(part);
            return;
        }
        let size: usize = entries.iter().chain(extra.iter()).map(|(f, v)| entry_bytes(f, v) as usize).sum();
        let mut out = Vec::with_capacity(4 + size);
        out.extend_from_slice(&(count as u32).to_le_bytes());
        for (field, value) in entries.iter().chain(extra.iter()) {
            put_bytes(&mut out, field);
            put_bytes(&mut out, value);
        }
        self.parts.put(part, out);
    }

    /// The value of `field`.
    pub fn get(&mut self, slot: &mut Slot, field: &[u8]) -> Result<Option<Bytes>> {
        let bucket = self.bucket_of(field);
        let bytes = self.bucket_bytes(slot, bucket)?;
        let entries = self.bucket_slices(bucket, bytes.as_ref())?;
        let found = entries.iter().find(|(f, _)| *f == field);
        Ok(found.zip(bytes.as_ref()).map(|((_, value), bytes)| bytes.slice_ref(value)))
    }

    /// Sets `field` to `value`; true if the field is new (appended to its bucket; an existing field keeps
    /// its place).
    pub fn insert(&mut self, slot: &mut Slot, field: Bytes, value: Bytes) -> Result<bool> {
        let bucket = self.bucket_of(&field);
        let bytes = self.bucket_bytes(slot, bucket)?;
        let mut entries = self.bucket_slices(bucket, bytes.as_ref())?;
        let added = match entries.iter_mut().find(|(f, _)| *f == field.as_ref()) {
            // The bucket would be rewritten byte for byte: nothing to write.
            Some(entry) if entry.1 == value.as_ref() => return Ok(false),
            Some(entry) => {
                self.bytes = self.bytes - entry_bytes(entry.0, entry.1) + entry_bytes(&field, &value);
                entry.1 = &value;
                false
            }
            None => {
                self.bytes += entry_bytes(&field, &value);
                self.count += 1;
                true
            }
        };
        let extra = added.then_some((&field[..], &value[..]));
        self.write_bucket_slices(bucket, &entries, extra);
        drop(entries);
        if added {
            self.grow(slot)?;
        }
        Ok(added)
    }

    /// Removes `field`; its value if it was there. The bucket's last entry takes its place.
    pub fn remove(&mut self, slot: &mut Slot, field: &[u8]) -> Result<Option<Bytes>> {
        let bucket = self.bucket_of(field);
        let Some(bytes) = self.bucket_bytes(slot, bucket)? else { return Ok(None) };
        let mut entries = self.bucket_slices(bucket, Some(&bytes))?;
        let Some(at) = entries.iter().position(|(f, _)| *f == field) else { return Ok(None) };
        let (old_field, old_value) = entries.swap_remove(at);
        self.bytes -= entry_bytes(old_field, old_value);
        self.count -= 1;
        let value = bytes.slice_ref(old_value);
        self.write_bucket_slices(bucket, &entries, None);
        Ok(Some(value))
    }

    /// Splits one bucket while the table is fuller than its targets.
    fn grow(&mut self, slot: &mut Slot) -> Result<()> {
        let buckets = self.bucket_count();
        if self.count <= buckets * TARGET_ENTRIES && self.bytes <= buckets * TARGET_BYTES {
            return Ok(());
        }
        let source = self.split;
        let high_bit = 1u64 << self.level;
        let (moved, kept): (Vec<_>, Vec<_>) =
            self.read_bucket(slot, source)?.into_iter().partition(|(field, _)| self.hash(field) & high_bit != 0);
        self.write_bucket(source, &kept);
        self.write_bucket(source + high_bit, &moved);
        self.split += 1;
        if self.split == high_bit {
            self.level += 1;
            self.split = 0;
        }
        Ok(())
    }

    /// Every entry, bucket by bucket.
    pub fn entries(&mut self, slot: &mut Slot) -> Result<Vec<(Bytes, Bytes)>> {
        let mut out = Vec::with_capacity(self.count as usize);
        for bucket in 0..self.bucket_count() {
            super::interrupt::check()?;
            out.extend(self.read_bucket(slot, bucket)?);
        }
        Ok(out)
    }

    /// Whole buckets from bucket `cursor` on until at least `want` entries; the cursor to continue from
    /// (0 when done). Buckets only split upwards, so an entry present for the whole scan is returned.
    pub fn scan(&mut self, slot: &mut Slot, cursor: u64, want: usize) -> Result<(u64, Vec<(Bytes, Bytes)>)> {
        let mut out = Vec::new();
        let mut bucket = cursor;
        while bucket < self.bucket_count() && out.len() < want {
            out.extend(self.read_bucket(slot, bucket)?);
            bucket += 1;
        }
        Ok((if bucket >= self.bucket_count() { 0 } else { bucket }, out))
    }

    /// A random entry, near-uniform, reading a few buckets whatever the size of the table.
    ///
    /// Distribution: rejection sampling over buckets weighted by their entry counts. A try picks a
    /// bucket uniformly and a slot `j` uniformly in `0..bound`, where `bound` is twice the average bucket
    /// load plus two; it succeeds when the bucket has an entry at `j`. Every entry of a bucket holding at
    /// most `bound` entries is thus equally likely (linear hashing leaves buckets unevenly full, so a plain
    /// "random bucket, random entry" would favour the entries of the emptier, just-split buckets). A bucket
    /// fuller than `bound` (rare: hash clustering) is taken as holding `bound`-weighted slots, so its
    /// entries are slightly less likely. A try succeeds with probability about 1/2, so this reads about
    /// two buckets; after 64 failed tries (vanishingly rare) it falls back to a random non-empty bucket.
    /// Redis promises no uniformity either. `random` seeds the tries.
    pub fn random(&mut self, slot: &mut Slot, random: u64) -> Result<Option<(Bytes, Bytes)>> {
        if self.count == 0 {
            return Ok(None);
        }
        let buckets = self.bucket_count();
        let bound = 2 * self.count.div_ceil(buckets) + 2;
        let mut state = random;
        for _ in 0..64 {
            let bucket = splitmix(&mut state) % buckets;
            let entries = self.read_bucket(slot, bucket)?;
            let at = splitmix(&mut state) % bound.max(entries.len() as u64);
            if let Some(entry) = entries.into_iter().nth(at as usize) {
                return Ok(Some(entry));
            }
        }
        let start = splitmix(&mut state) % buckets;
        for step in 0..buckets {
            let entries = self.read_bucket(slot, (start + step) % buckets)?;
            if !entries.is_empty() {
                let at = (splitmix(&mut state) % entries.len() as u64) as usize;
                return Ok(entries.into_iter().nth(at));
            }
        }
        Ok(None)
    }

    /// The writes of this command: changed buckets.
    pub fn into_ops(self, ops: &mut Vec<BatchOp>) {
        self.parts.into_ops(ops);
    }

    /// The writes that delete every part (the owner record is the caller's).
    pub fn free_ops(self, ops: &mut Vec<BatchOp>) {
        let mut parts = self.parts;
        for bucket in 0..(1u64 << self.level) + self.split {
            parts.remove(bucket as u32 + 1);
        }
        parts.into_ops(ops);
    }
}
