//! Large collections split into elements (docs/format.md §"Split collections").
//!
//! A hash, set or list that outgrows one compact value keeps only a small *header* under its own key; its
//! elements live in *parts*: engine values of kind `Element` in a hidden database of the same slot, so
//! that reading or changing one element reads and writes one part, not the whole collection. Every change
//! of one command (parts and header) leaves in one engine batch, which the WAL replays whole or not at all.
//!
//! # Layout
//! - this file: the hidden databases, part and owner keys ([`Home`]), the header's common prefix, the
//!   per-command part buffer ([`Parts`]) and the sweeper that frees the parts of collections that were
//!   deleted, overwritten or expired by any path ([`sweep_slot`]).
//! - [`hashed`]: fields (with values) in linear-hashed buckets, for hashes and sets.
//! - [`chain`]: a list as a doubly linked chain of chunks.
//! - [`ranked`]: a sorted set as hashed member scores plus a [`tree`] of their order.
//! - [`tree`]: an ordered, counted B+-tree of keys, the order of a split sorted set.
//! - [`streamed`]: a stream as a [`tree`] of its nodes keyed by master ID, each node's entries in one part.
//!
//! Each incarnation of a split collection has a random 64-bit id in all its part keys, so parts of an
//! overwritten or deleted collection are unreachable at once and are freed later without blocking anyone;
//! an *owner record* names the collection's key so the sweeper can tell live parts from dead ones.

pub mod chain;
pub mod hashed;
pub mod interrupt;
pub mod ranked;
pub mod streamed;
pub mod tree;

use std::collections::{HashMap, HashSet};

use bytes::Bytes;

use crate::engine::{self, BatchOp, Slot, ValueKind};

/// Parts of the collections of user database `d` live in database `d | PART_DB_FLAG`.
pub const PART_DB_FLAG: u16 = 0x8000;
/// Owner records of the collections of user database `d` live in database `d | OWNER_DB_FLAG`.
pub const OWNER_DB_FLAG: u16 = 0xC000;

/// The first four payload bytes of a split collection's header. Every compact encoding starts with its
/// element count as a u32, and no compact value holds 2^32 - 1 elements, so the two never collide.
pub const SPLIT_MARKER: [u8; 4] = crate::engine::dictionary::SPLIT_HEADER_MARKER;

/// Header layout tags (the byte after the marker).
pub const LAYOUT_HASHED: u8 = 1;
/// A chain of list chunks.
pub const LAYOUT_CHAIN: u8 = 2;
/// A sorted set: members in hashed buckets (with their scores) and their order in a counted tree.
pub const LAYOUT_RANKED: u8 = 3;
/// A stream: its nodes in a counted tree keyed by master ID, each node's entries in one part.
pub const LAYOUT_STREAM: u8 = 4;

/// Bit 7 of the layout byte: the collection was promoted to Redis's large encoding (hashtable / skiplist)
/// and keeps it for its life (see [`crate::types::PROMOTED_COUNT_BIT`] for compact values). Layouts are
/// below 0x80, so the bit was always 0 before it was given this meaning; readers mask it off.
pub const LAYOUT_PROMOTED: u8 = 0x80;

/// True when the stored collection `payload` (compact value or split header, of a hash, set or sorted
/// set) carries the promoted flag.
pub fn is_promoted(payload: &[u8]) -> bool {
    if is_split(payload) {
        payload.get(4).is_some_and(|layout| layout & LAYOUT_PROMOTED != 0)
    } else {
        payload.get(3).is_some_and(|high| high & 0x80 != 0)
    }
}

/// Sets or clears the promoted flag of the stored collection `payload` (compact value or split header).
pub fn set_promoted(payload: &mut [u8], promoted: bool) {
    let (at, bit) = if is_split(payload) { (4, LAYOUT_PROMOTED) } else { (3, 0x80) };
    if let Some(byte) = payload.get_mut(at) {
        if promoted {
            *byte |= bit;
        } else {
            *byte &= !bit;
        }
    }
}

/// The database holding the parts of user database `db`.
pub fn part_db(db: u16) -> u16 {
    db | PART_DB_FLAG
}

/// The database holding the owner records of user database `db`.
pub fn owner_db(db: u16) -> u16 {
    db | OWNER_DB_FLAG
}

/// True for the hidden databases (never a user's).
pub fn is_hidden_db(db: u16) -> bool {
    db & PART_DB_FLAG != 0
}

/// True when a stored collection payload is a split header rather than a compact value.
pub fn is_split(payload: &[u8]) -> bool {
    payload.starts_with(&SPLIT_MARKER)
}

/// Why split storage failed.
#[derive(Debug, thiserror::Error)]
pub enum ElementError {
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] engine::Error),
    /// Stored bytes do not decode; never served as data.
    #[error("split collection {key} is damaged: {reason}")]
    Damaged {
        /// The collection's key (lossy text) or part key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The running command must stop (its client is gone, the server is shutting down): see
    /// [`interrupt`].
    #[error("command aborted: {0}")]
    Interrupted(&'static str),
}

/// Result of element operations.
pub type Result<T> = std::result::Result<T, ElementError>;

fn damaged(key: &[u8], reason: impl Into<String>) -> ElementError {
    ElementError::Damaged { key: String::from_utf8_lossy(key).into_owned(), reason: reason.into() }
}

/// Where one incarnation of a split collection keeps its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Home {
    /// The user database of the collection's key.
    pub db: u16,
    /// The key's cluster hash slot: part keys carry it so they route like their collection's key.
    pub hash_slot: u16,
    /// This incarnation's random id.
    pub id: u64,
}

impl Home {
    /// A new incarnation for `key` in `db`, with a fresh random id.
    pub fn new(db: u16, key: &[u8], random: u64) -> Home {
        Home { db, hash_slot: engine::key::hash_slot(key), id: random }
    }

    /// The key of part `part`: `hash_slot u16 BE | id u64 BE | part u32 BE`.
    pub fn part_key(&self, part: u32) -> [u8; 14] {
        let mut key = [0u8; 14];
        key[..2].copy_from_slice(&self.hash_slot.to_be_bytes());
        key[2..10].copy_from_slice(&self.id.to_be_bytes());
        key[10..].copy_from_slice(&part.to_be_bytes());
        key
    }

    /// The key of the owner record: `hash_slot u16 BE | id u64 BE`.
    pub fn owner_key(&self) -> [u8; 10] {
        let mut key = [0u8; 10];
        key[..2].copy_from_slice(&self.hash_slot.to_be_bytes());
        key[2..].copy_from_slice(&self.id.to_be_bytes());
        key
    }

    /// The write creating the owner record naming `key`.
    pub fn owner_op(&self, key: &[u8]) -> BatchOp {
        BatchOp::Set {
            db: owner_db(self.db),
            key: self.owner_key().to_vec(),
            kind: ValueKind::Element,
            value: key.to_vec(),
            expire_at_ms: None,
        }
    }

    /// The write deleting the owner record.
    pub fn owner_delete_op(&self) -> BatchOp {
        BatchOp::Delete { db: owner_db(self.db), key: self.owner_key().to_vec() }
    }
}

/// The header prefix every layout shares: `marker | layout u8 | id u64 | count u64 | hash_slot u16`
/// (little-endian). `hash_slot` is the one the part keys carry: the collection's key's when it was split,
/// kept when RENAME moves the header to another key of the same slot.
pub const HEADER_PREFIX_LEN: usize = 4 + 1 + 8 + 8 + 2;

/// Writes the common header prefix.
pub fn put_header_prefix(out: &mut Vec<u8>, layout: u8, home: Home, count: u64) {
    out.extend_from_slice(&SPLIT_MARKER);
    out.push(layout);
    out.extend_from_slice(&home.id.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&home.hash_slot.to_le_bytes());
}

/// Reads the common header prefix of the collection at `key` in `db`: (layout, home, count, rest).
pub fn read_header_prefix<'b>(db: u16, key: &[u8], payload: &'b [u8]) -> Result<(u8, Home, u64, &'b [u8])> {
    if payload.len() < HEADER_PREFIX_LEN || !is_split(payload) {
        return Err(damaged(key, "header too short"));
    }
    let id = u64::from_le_bytes(payload[5..13].try_into().expect("8 bytes"));
    let count = u64::from_le_bytes(payload[13..21].try_into().expect("8 bytes"));
    let hash_slot = u16::from_le_bytes(payload[21..23].try_into().expect("2 bytes"));
    Ok((payload[4] & !LAYOUT_PROMOTED, Home { db, hash_slot, id }, count, &payload[HEADER_PREFIX_LEN..]))
}

/// The id of the split header `payload`, if it is one.
pub fn header_id(payload: &[u8]) -> Option<u64> {
    (is_split(payload) && payload.len() >= HEADER_PREFIX_LEN)
        .then(|| u64::from_le_bytes(payload[5..13].try_into().expect("8 bytes")))
}

/// The parts of one collection that one command read or wrote. Reads go through it (so a command sees
/// its own writes); writes stay here until [`Parts::into_ops`] hands them to the one batch of the command.
#[derive(Debug)]
pub struct Parts {
    home: Home,
    cache: HashMap<u32, Option<Bytes>>,
    dirty: HashSet<u32>,
}

impl Parts {
    /// An empty buffer for the collection at `home`.
    pub fn new(home: Home) -> Parts {
        Parts { home, cache: HashMap::new(), dirty: HashSet::new() }
    }

    /// The collection's home.
    pub fn home(&self) -> Home {
        self.home
    }

    /// Part `part`'s bytes, `None` if it does not exist.
    pub fn get(&mut self, slot: &mut Slot, part: u32) -> Result<Option<Bytes>> {
        if let Some(cached) = self.cache.get(&part) {
            return Ok(cached.clone());
        }
        let key = self.home.part_key(part);
        let loaded = match slot.get(part_db(self.home.db), &key)? {
            None => None,
            Some(entry) if entry.kind == ValueKind::Element => Some(entry.value),
            Some(entry) => return Err(damaged(&key, format!("part holds a value of kind {:?}", entry.kind))),
        };
        self.cache.insert(part, loaded.clone());
        Ok(loaded)
    }

    /// Part `part`'s bytes; a missing part is damage (the header says it exists).
    pub fn expect(&mut self, slot: &mut Slot, part: u32) -> Result<Bytes> {
        self.get(slot, part)?.ok_or_else(|| damaged(&self.home.part_key(part), "part listed in the header is missing"))
    }

    /// Replaces part `part`.
    pub fn put(&mut self, part: u32, bytes: Vec<u8>) {
        self.cache.insert(part, Some(Bytes::from(bytes)));
        self.dirty.insert(part);
    }

    /// Deletes part `part`.
    pub fn remove(&mut self, part: u32) {
        self.cache.insert(part, None);
        self.dirty.insert(part);
    }

    /// The buffered writes, as batch operations.
    pub fn into_ops(self, ops: &mut Vec<BatchOp>) {
        let db = part_db(self.home.db);
        let mut dirty: Vec<u32> = self.dirty.into_iter().collect();
        dirty.sort_unstable();
        for part in dirty {
            let key = self.home.part_key(part).to_vec();
            match self.cache.get(&part).cloned().flatten() {
                Some(bytes) => ops.push(BatchOp::Set {
                    db,
                    key,
                    kind: ValueKind::Element,
                    value: bytes.to_vec(),
                    expire_at_ms: None,
                }),
                None => ops.push(BatchOp::Delete { db, key }),
            }
        }
    }
}

/// Length-prefixed byte strings, the element encoding of every part: `len u32 LE | bytes`.
pub(crate) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// A cursor over a part's bytes that turns every short read into damage naming the part.
pub(crate) struct PartReader<'b> {
    bytes: &'b Bytes,
    at: usize,
}

impl<'b> PartReader<'b> {
    pub(crate) fn new(bytes: &'b Bytes) -> PartReader<'b> {
        PartReader { bytes, at: 0 }
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        let raw = self.bytes.get(self.at..self.at + 4)?;
        self.at += 4;
        Some(u32::from_le_bytes(raw.try_into().expect("4 bytes")))
    }

    /// A length-prefixed string, sharing the part's buffer.
    pub(crate) fn bytes(&mut self) -> Option<Bytes> {
        let len = self.u32()? as usize;
        let end = self.at.checked_add(len)?;
        if end > self.bytes.len() {
            return None;
        }
        let out = self.bytes.slice(self.at..end);
        self.at = end;
        Some(out)
    }

    /// A length-prefixed string, borrowed from the part: no reference count (see `hashed::Hashed::get`).
    pub(crate) fn slice(&mut self) -> Option<&'b [u8]> {
        let all: &'b [u8] = self.bytes.as_ref();
        let len = self.u32()? as usize;
        let end = self.at.checked_add(len)?;
        let out = all.get(self.at..end)?;
        self.at = end;
        Some(out)
    }

    pub(crate) fn u64(&mut self) -> Option<u64> {
        let raw = self.bytes.get(self.at..self.at + 8)?;
        self.at += 8;
        Some(u64::from_le_bytes(raw.try_into().expect("8 bytes")))
    }

    pub(crate) fn is_done(&self) -> bool {
        self.at == self.bytes.len()
    }
}

/// Is the collection owning the part or owner record `(db, key)` of a hidden database still alive? It is
/// when its owner record exists and the key it names holds a split header with the same id.
fn owner_alive(slot: &mut Slot, hidden_db: u16, key: &[u8]) -> Result<bool> {
    if key.len() < 10 {
        return Ok(false);
    }
    let user_db = hidden_db & !OWNER_DB_FLAG;
    let owner_key = &key[..10];
    let id = u64::from_be_bytes(key[2..10].try_into().expect("8 bytes"));
    let Some(owner) = slot.get(owner_db(user_db), owner_key)? else { return Ok(false) };
    let Some(parent) = slot.get(user_db, &owner.value)? else { return Ok(false) };
    Ok(header_id(&parent.value) == Some(id))
}

/// Where the sweeper of one slot is: a scan position, or done.
pub type SweepPosition = u64;

/// Frees dead parts and owner records of one slot: scans up to about `budget` hidden keys from
/// `position` and deletes those whose collection is gone. Returns the next position (0 when the pass is
/// complete) and how many keys were deleted.
pub fn sweep_slot(slot: &mut Slot, position: SweepPosition, budget: usize) -> Result<(SweepPosition, usize)> {
    if slot.has_open_transactions() {
        // An uncommitted transaction may have unlinked these parts: a crash would bring their owner back.
        return Ok((position, 0));
    }
    let mut found = Vec::new();
    let next = slot.scan(None, position, budget, &mut found)?;
    let mut verdicts: HashMap<(u16, [u8; 10]), bool> = HashMap::new();
    let mut dead = Vec::new();
    for (db, key) in found {
        if !is_hidden_db(db) || key.len() < 10 {
            continue;
        }
        let owner: [u8; 10] = key[..10].try_into().expect("10 bytes");
        let user_db = db & !OWNER_DB_FLAG;
        let alive = match verdicts.get(&(user_db, owner)) {
            Some(alive) => *alive,
            None => {
                let alive = owner_alive(slot, db, &key)?;
                verdicts.insert((user_db, owner), alive);
                alive
            }
        };
        if !alive {
            dead.push(BatchOp::Delete { db, key });
        }
    }
    let deleted = dead.len();
    if !dead.is_empty() {
        slot.write_batch(dead)?;
    }
    Ok((next.unwrap_or(0), deleted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_keys_and_header() {
        let home = Home { db: 3, hash_slot: 0x1234, id: 0x0102_0304_0506_0708 };
        assert_eq!(home.part_key(9), [0x12, 0x34, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 9]);
        assert_eq!(home.owner_key(), [0x12, 0x34, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!((part_db(3), owner_db(3)), (0x8003, 0xC003));
        let hashed = hashed::Hashed::create(home, Vec::new());
        let header = hashed.header();
        let mut golden = vec![0xff, 0xff, 0xff, 0xff, LAYOUT_HASHED, 8, 7, 6, 5, 4, 3, 2, 1];
        golden.extend_from_slice(&[0; 8]); // count
        golden.extend_from_slice(&[0x34, 0x12]); // hash slot
        golden.push(0); // level
        golden.extend_from_slice(&[0; 16]); // split, bytes
        assert_eq!(header, golden);
        assert!(is_split(&header));
        let (layout, read_home, count, rest) = read_header_prefix(3, b"k", &header).expect("prefix");
        assert_eq!((layout, read_home, count, rest.len()), (LAYOUT_HASHED, home, 0, hashed::STATE_LEN));
    }

    #[test]
    fn promoted_flag_golden_bytes_and_old_values_read_the_same() {
        // A compact hash `a -> 1` as written before the flag, then promoted: bit 31 of the count.
        let plain = crate::types::hash::HashValue::from_pairs(vec![(Bytes::from("a"), Bytes::from("1"))]).to_bytes();
        assert_eq!(plain, [1, 0, 0, 0, 1, 0, 0, 0, b'a', 1, 0, 0, 0, b'1']);
        assert!(!is_promoted(&plain));
        let mut flagged = plain.clone();
        set_promoted(&mut flagged, true);
        assert_eq!(flagged[..4], [1, 0, 0, 0x80]);
        assert!(is_promoted(&flagged) && !is_split(&flagged));
        let decoded = crate::types::hash::HashValue::from_bytes(&flagged).expect("flagged hash");
        assert_eq!(decoded.to_bytes(), plain);
        let set = crate::types::set::SetValue::from_bytes(&[1, 0, 0, 0x80, 1, 0, 0, 0, b'7']).expect("flagged set");
        assert_eq!(set.len(), 1);
        let zset = crate::types::zset::from_bytes(&[1, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 1, 0, 0, 0, b'm'])
            .expect("flagged sorted set");
        assert_eq!(zset.len(), 1);
        set_promoted(&mut flagged, false);
        assert_eq!(flagged, plain);

        // A split header: bit 7 of the layout byte, masked off by every reader.
        let home = Home { db: 0, hash_slot: 5, id: 9 };
        let mut header = ranked::Ranked::create(home, vec![(Bytes::from("m"), 1.5)]).header();
        assert!(!is_promoted(&header));
        set_promoted(&mut header, true);
        assert_eq!(header[..5], [0xff, 0xff, 0xff, 0xff, LAYOUT_RANKED | LAYOUT_PROMOTED]);
        assert!(is_promoted(&header));
        let (layout, _, count, _) = read_header_prefix(0, b"k", &header).expect("prefix");
        assert_eq!((layout, count), (LAYOUT_RANKED, 1));
        assert!(ranked::Ranked::decode(0, b"k", &header).is_ok());
    }

    #[test]
    fn truncated_headers_are_damage_not_panics() {
        let home = Home { db: 0, hash_slot: 1, id: 2 };
        let headers = [
            hashed::Hashed::create(home, vec![(Bytes::from("f"), Bytes::from("v"))]).header(),
            chain::Chain::create(home, vec![Bytes::from("a")]).header(),
            ranked::Ranked::create(home, vec![(Bytes::from("m"), 1.5)]).header(),
        ];
        for header in headers {
            for len in 0..header.len() {
                let cut = &header[..len];
                assert!(hashed::Hashed::decode(0, b"k", cut).is_err());
                assert!(chain::Chain::decode(0, b"k", cut).is_err());
                assert!(ranked::Ranked::decode(0, b"k", cut).is_err());
            }
        }
    }
}
