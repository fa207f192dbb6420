//! What the collection commands share: how a Redis collection is read and written whatever its form.
//!
//! A [`Collection`] (hash, set, list, sorted set, bloom filter) is one compact value while small. A hash,
//! set or list that grows past [`SPLIT_ABOVE_COUNT`] elements or [`SPLIT_ABOVE_BYTES`] bytes is split into
//! parts ([`crate::elements`]) and joins back into one value below [`JOIN_BELOW_COUNT`] elements and
//! [`JOIN_BELOW_BYTES`] bytes (the gap keeps a collection at the edge from flipping on every command).
//! Clients cannot tell the forms apart.
//!
//! Two ways in:
//! - [`Handle`]: one collection under its slot lock, with element-level operations that cost a few parts
//!   in the split form (the hot commands: HGET, HSET, SADD, LPUSH, LINDEX, ...), and [`Handle::save`], which
//!   writes every change of the command in one engine batch and picks the form.
//! - [`load`], [`read`], [`store`], [`modify`]: the whole collection as its compact type (materialised
//!   from its parts if split), for commands that are O(n) anyway.
//!
//! Redis never keeps an empty collection: saving an empty one deletes the key.

use bytes::Bytes;

use super::{CmdError, Ctx};
use crate::config::params::EncodingLimits;
use crate::elements::chain::Chain;
use crate::elements::hashed::Hashed;
use crate::elements::ranked::{Inserted, Ranked};
use crate::elements::streamed::Streamed;
use crate::elements::{self, Home, LAYOUT_CHAIN, LAYOUT_HASHED, LAYOUT_RANKED, LAYOUT_STREAM};
use crate::engine::{BatchOp, Slot, ValueKind};
use crate::resp::Reply;
use crate::server::notify;
use crate::types::hash::HashValue;
use crate::types::list::ListValue;
use crate::types::set::SetValue;
use crate::types::stream::{Extent, NodeEntry, StreamId, StreamValue, Trim};
use crate::types::zset;
use crate::types::zset_index::{InsertOutcome, LexBound, ScoreBound, ZsetIndex};
use std::ops::Range;

/// A compact collection splits when it holds more elements than this...
pub const SPLIT_ABOVE_COUNT: u64 = 512;
/// ...or when its compact encoding is larger than this.
pub const SPLIT_ABOVE_BYTES: u64 = 32 << 10;
/// A split collection joins into one value when it holds at most this many elements...
pub const JOIN_BELOW_COUNT: u64 = 128;
/// ...and at most this many bytes of elements.
pub const JOIN_BELOW_BYTES: u64 = 8 << 10;

/// How a collection type splits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitShape {
    /// Never: always one value.
    Never,
    /// Fields (with values) in hashed buckets.
    Hashed,
    /// A chain of chunks, in order.
    Chain,
    /// Scored members: hashed scores and a counted tree of their order.
    Ranked,
    /// A stream: its nodes in a counted tree keyed by master ID.
    Stream,
}

/// A collection type stored as one compact value while small.
pub trait Collection: Default {
    /// The stored value kind.
    const KIND: ValueKind;
    /// Its name in error messages.
    const WHAT: &'static str;
    /// How it splits when large.
    const SHAPE: SplitShape = SplitShape::Never;
    /// Decodes a stored compact value.
    fn decode(bytes: &[u8]) -> Result<Self, String>;
    /// Encodes the compact value.
    fn encode(&self) -> Vec<u8>;
    /// True when it has no elements.
    fn is_empty(&self) -> bool;
    /// Its element count.
    fn count(&self) -> u64 {
        0
    }
    /// The contents as (field, value) entries, for the hashed shape (a set's values are empty).
    fn to_entries(&self) -> Vec<(Bytes, Bytes)> {
        Vec::new()
    }
    /// Builds it from hashed entries (distinct fields).
    fn from_entries(_entries: Vec<(Bytes, Bytes)>) -> Self {
        Self::default()
    }
    /// The contents in order, for the chain shape.
    fn to_items(&self) -> Vec<Bytes> {
        Vec::new()
    }
    /// Builds it from chain items.
    fn from_items(_items: Vec<Bytes>) -> Self {
        Self::default()
    }
    /// The members with their scores, for the ranked shape.
    fn to_scored(&self) -> Vec<(Bytes, f64)> {
        Vec::new()
    }
    /// Builds it from ranked members (distinct).
    fn from_scored(_items: Vec<(Bytes, f64)>) -> Self {
        Self::default()
    }
    /// The value as a stream, for the stream shape.
    fn as_stream(&self) -> Option<&StreamValue> {
        None
    }
    /// Builds it from a materialised split stream.
    fn from_stream(_value: StreamValue) -> Self {
        Self::default()
    }
    /// The bytes the split thresholds weigh: the compact encoding's size (a stream counts its entries
    /// only, so that large consumer groups alone do not split it).
    fn split_weight(&self, encoded: &[u8]) -> u64 {
        encoded.len() as u64
    }
    /// True for the types whose Redis encoding, once promoted to the large one, stays (hashes, sets,
    /// sorted sets: [`super::encoding`]).
    const STICKY: bool = false;
    /// True when this content calls for Redis's large encoding under `limits`.
    fn outgrows(&self, _limits: &EncodingLimits) -> bool {
        false
    }
    /// True when `count` elements call for Redis's large encoding under `limits`.
    fn count_outgrows(_count: u64, _limits: &EncodingLimits) -> bool {
        false
    }
    /// True when writing the one element `field` (with `value`) calls for Redis's large encoding under
    /// `limits`: a long field or value, a set member that is not an integer.
    fn element_outgrows(_field: &[u8], _value: &[u8], _limits: &EncodingLimits) -> bool {
        false
    }
}

impl Collection for HashValue {
    const KIND: ValueKind = ValueKind::Hash;
    const WHAT: &'static str = "hash";
    const SHAPE: SplitShape = SplitShape::Hashed;
    fn decode(bytes: &[u8]) -> Result<Self, String> {
        HashValue::from_bytes(bytes).map_err(|e| e.to_string())
    }
    fn encode(&self) -> Vec<u8> {
        self.to_bytes()
    }
    fn is_empty(&self) -> bool {
        HashValue::is_empty(self)
    }
    fn count(&self) -> u64 {
        self.len() as u64
    }
    fn to_entries(&self) -> Vec<(Bytes, Bytes)> {
        self.pairs().to_vec()
    }
    fn from_entries(entries: Vec<(Bytes, Bytes)>) -> Self {
        HashValue::from_pairs(entries)
    }
    const STICKY: bool = true;
    fn outgrows(&self, limits: &EncodingLimits) -> bool {
        self.encoding_name(limits.hash_entries, limits.hash_value) != "listpack"
    }
    fn count_outgrows(count: u64, limits: &EncodingLimits) -> bool {
        count > limits.hash_entries
    }
    fn element_outgrows(field: &[u8], value: &[u8], limits: &EncodingLimits) -> bool {
        field.len() as u64 > limits.hash_value || value.len() as u64 > limits.hash_value
    }
}

impl Collection for SetValue {
    const KIND: ValueKind = ValueKind::Set;
    const WHAT: &'static str = "set";
    const SHAPE: SplitShape = SplitShape::Hashed;
    fn decode(bytes: &[u8]) -> Result<Self, String> {
        SetValue::from_bytes(bytes).map_err(|e| e.to_string())
    }
    fn encode(&self) -> Vec<u8> {
        self.to_bytes()
    }
    fn is_empty(&self) -> bool {
        SetValue::is_empty(self)
    }
    fn count(&self) -> u64 {
        self.len() as u64
    }
    fn to_entries(&self) -> Vec<(Bytes, Bytes)> {
        self.members().iter().map(|member| (member.clone(), Bytes::new())).collect()
    }
    fn from_entries(entries: Vec<(Bytes, Bytes)>) -> Self {
        let mut set = SetValue::default();
        for (member, _) in entries {
            set.insert(member);
        }
        set
    }
    const STICKY: bool = true;
    fn outgrows(&self, limits: &EncodingLimits) -> bool {
        self.encoding_name(limits.set_intset_entries) != "intset"
    }
    fn count_outgrows(count: u64, limits: &EncodingLimits) -> bool {
        count > limits.set_intset_entries
    }
    fn element_outgrows(member: &[u8], _value: &[u8], _limits: &EncodingLimits) -> bool {
        crate::engine::envelope::canonical_int(member).is_none()
    }
}

impl Collection for ListValue {
    const KIND: ValueKind = ValueKind::List;
    const WHAT: &'static str = "list";
    const SHAPE: SplitShape = SplitShape::Chain;
    fn decode(bytes: &[u8]) -> Result<Self, String> {
        ListValue::from_bytes(bytes).map_err(|e| e.to_string())
    }
    fn encode(&self) -> Vec<u8> {
        self.to_bytes()
    }
    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    fn count(&self) -> u64 {
        self.items.len() as u64
    }
    fn to_items(&self) -> Vec<Bytes> {
        self.items.iter().cloned().collect()
    }
    fn from_items(items: Vec<Bytes>) -> Self {
        ListValue { items: items.into() }
    }
}

impl Collection for ZsetIndex {
    const KIND: ValueKind = ValueKind::SortedSet;
    const WHAT: &'static str = "sorted set";
    const SHAPE: SplitShape = SplitShape::Ranked;
    fn decode(bytes: &[u8]) -> Result<Self, String> {
        zset::from_bytes(bytes).map_err(|e| e.to_string())
    }
    fn encode(&self) -> Vec<u8> {
        zset::to_bytes(self)
    }
    fn is_empty(&self) -> bool {
        ZsetIndex::is_empty(self)
    }
    fn count(&self) -> u64 {
        self.len() as u64
    }
    fn to_scored(&self) -> Vec<(Bytes, f64)> {
        self.iter().map(|(member, score)| (Bytes::copy_from_slice(member), score)).collect()
    }
    fn from_scored(items: Vec<(Bytes, f64)>) -> Self {
        let mut index = ZsetIndex::new();
        for (member, score) in items {
            // Scores come from a stored set: never NaN.
            let _ = index.insert(&member, score);
        }
        index
    }
    const STICKY: bool = true;
    fn outgrows(&self, limits: &EncodingLimits) -> bool {
        zset::encoding_name(self, limits.zset_entries, limits.zset_value) != "listpack"
    }
    fn count_outgrows(count: u64, limits: &EncodingLimits) -> bool {
        count > limits.zset_entries
    }
    fn element_outgrows(member: &[u8], _value: &[u8], limits: &EncodingLimits) -> bool {
        member.len() as u64 > limits.zset_value
    }
}

impl Collection for StreamValue {
    const KIND: ValueKind = ValueKind::Stream;
    const WHAT: &'static str = "stream";
    const SHAPE: SplitShape = SplitShape::Stream;
    fn decode(bytes: &[u8]) -> Result<Self, String> {
        StreamValue::from_bytes(bytes).map_err(|e| e.to_string())
    }
    fn encode(&self) -> Vec<u8> {
        self.to_bytes()
    }
    /// Never: a stream with no entries stays a key (with its counters and groups), as in Redis.
    fn is_empty(&self) -> bool {
        false
    }
    fn count(&self) -> u64 {
        self.len() as u64
    }
    fn as_stream(&self) -> Option<&StreamValue> {
        Some(self)
    }
    fn from_stream(value: StreamValue) -> Self {
        value
    }
    fn split_weight(&self, _encoded: &[u8]) -> u64 {
        self.entry_bytes()
    }
}

/// A split collection's parts, whichever the shape.
#[derive(Debug)]
pub enum Split {
    /// A hash or set.
    Hashed(Hashed),
    /// A list.
    Chain(Chain),
    /// A sorted set.
    Ranked(Ranked),
    /// A stream (boxed: its header state is several times the others').
    Stream(Box<Streamed>),
}

impl Split {
    /// The split form described by the header `payload` stored at `key` in `db`.
    pub fn decode(db: u16, key: &[u8], payload: &[u8]) -> Result<Split, CmdError> {
        Ok(match payload.get(4).map(|layout| layout & !elements::LAYOUT_PROMOTED) {
            Some(LAYOUT_HASHED) => Split::Hashed(Hashed::decode(db, key, payload)?),
            Some(LAYOUT_CHAIN) => Split::Chain(Chain::decode(db, key, payload)?),
            Some(LAYOUT_RANKED) => Split::Ranked(Ranked::decode(db, key, payload)?),
            Some(LAYOUT_STREAM) => Split::Stream(Box::new(Streamed::decode(db, key, payload)?)),
            _ => Err(elements::ElementError::Damaged {
                key: String::from_utf8_lossy(key).into_owned(),
                reason: "unknown split layout".into(),
            })?,
        })
    }

    fn home(&self) -> Home {
        match self {
            Split::Hashed(hashed) => hashed.home(),
            Split::Chain(chain) => chain.home(),
            Split::Ranked(ranked) => ranked.home(),
            Split::Stream(stream) => stream.home(),
        }
    }

    fn count(&self) -> u64 {
        match self {
            Split::Hashed(hashed) => hashed.len(),
            Split::Chain(chain) => chain.len(),
            Split::Ranked(ranked) => ranked.len(),
            Split::Stream(stream) => stream.len(),
        }
    }

    fn element_bytes(&self) -> u64 {
        match self {
            Split::Hashed(hashed) => hashed.bytes(),
            Split::Chain(chain) => chain.bytes(),
            Split::Ranked(ranked) => ranked.bytes(),
            Split::Stream(stream) => stream.bytes(),
        }
    }

    fn header(&self) -> Vec<u8> {
        match self {
            Split::Hashed(hashed) => hashed.header(),
            Split::Chain(chain) => chain.header(),
            Split::Ranked(ranked) => ranked.header(),
            Split::Stream(stream) => stream.header(),
        }
    }

    /// The whole collection as its compact type.
    fn materialize<T: Collection>(&mut self, slot: &mut Slot) -> Result<T, CmdError> {
        Ok(match self {
            Split::Hashed(hashed) => T::from_entries(hashed.entries(slot)?),
            Split::Chain(chain) => T::from_items(chain.items(slot)?),
            Split::Ranked(ranked) => {
                let len = ranked.len();
                T::from_scored(ranked.range(slot, 0..len)?)
            }
            Split::Stream(stream) => T::from_stream(stream.materialize(slot)?),
        })
    }

    /// The writes deleting every part and the owner record.
    fn free_ops(self, slot: &mut Slot, ops: &mut Vec<BatchOp>) -> Result<(), CmdError> {
        ops.push(self.home().owner_delete_op());
        match self {
            Split::Hashed(hashed) => hashed.free_ops(ops),
            Split::Chain(chain) => chain.free_ops(slot, ops)?,
            Split::Ranked(ranked) => ranked.free_ops(slot, ops)?,
            Split::Stream(stream) => stream.free_ops(slot, ops)?,
        }
        Ok(())
    }

    /// A new split form of `value` (of a splitting type) at a fresh home for `key`.
    fn create<T: Collection>(db: u16, key: &[u8], value: &T, random: u64) -> Split {
        let home = Home::new(db, key, random);
        match T::SHAPE {
            SplitShape::Hashed => Split::Hashed(Hashed::create(home, value.to_entries())),
            SplitShape::Chain => Split::Chain(Chain::create(home, value.to_items())),
            SplitShape::Ranked => Split::Ranked(Ranked::create(home, value.to_scored())),
            SplitShape::Stream => Split::Stream(Box::new(Streamed::create(
                home,
                value.as_stream().expect("the stream shape is a stream's"),
            ))),
            SplitShape::Never => unreachable!("only splitting types are split"),
        }
    }
}

/// A fresh id for a new split collection: unpredictable enough that two incarnations never share one.
fn fresh_id(key: &[u8]) -> u64 {
    let state = std::collections::hash_map::RandomState::new();
    std::hash::BuildHasher::hash_one(&state, (key, crate::engine::system_clock_ms(), std::thread::current().id()))
}

/// The split form stored at `key`, if the key holds a split collection of any type.
fn stored_split(slot: &mut Slot, db: u16, key: &[u8]) -> Result<Option<Split>, CmdError> {
    match slot.get(db, key)? {
        Some(entry) if is_collection_kind(entry.kind) && elements::is_split(&entry.value) => {
            Ok(Some(Split::decode(db, key, &entry.value)?))
        }
        _ => Ok(None),
    }
}

fn is_collection_kind(kind: ValueKind) -> bool {
    matches!(kind, ValueKind::Hash | ValueKind::Set | ValueKind::List | ValueKind::SortedSet | ValueKind::Stream)
}

/// A collection's form in a [`Handle`]. (A handle lives for one command: the size of the split variant
/// costs nothing worth a box.)
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
enum Form<T> {
    Compact(T),
    Split(Split),
}

/// One collection under its slot's lock, for the length of one command.
#[derive(Debug)]
pub struct Handle<T: Collection> {
    db: u16,
    key: Bytes,
    expire: Option<u64>,
    existed: bool,
    form: Form<T>,
    /// The split form this command started from, once it was materialised: its parts are freed on save.
    replaced: Option<Split>,
    /// The stored split header as opened: a command that leaves it unchanged (HSET of an existing field)
    /// does not rewrite it.
    opened_header: Option<Bytes>,
    /// The stored compact value as opened: a command that leaves it byte for byte the same (HSET of a
    /// field to the value it holds) writes nothing.
    opened_compact: Option<Bytes>,
    /// The stored value carries the promoted flag: Redis's large encoding, kept for life
    /// ([`super::encoding`]).
    promoted: bool,
    /// An element this command wrote calls for the large encoding by itself.
    grown: bool,
    /// The element count when opened: Redis judges a conversion only on writes that add (a hash: that set
    /// a field), never on removals.
    opened_len: u64,
}

impl<T: Collection> Handle<T> {
    /// The collection at `key` (empty and not existing if missing); WRONGTYPE for another type.
    pub fn open(slot: &mut Slot, db: u16, key: &Bytes) -> Result<Handle<T>, CmdError> {
        let mut handle = Handle::open_without_stream_groups(slot, db, key)?;
        if let Form::Split(Split::Stream(stream)) = &mut handle.form {
            stream.load_groups(slot)?;
        }
        Ok(handle)
    }

    /// [`Handle::open`], except that a split stream's consumer groups are not read (nor rewritten on
    /// save): for the stream commands that touch no group (XADD, XDEL, XTRIM, XLEN, XRANGE, XREAD).
    pub fn open_without_stream_groups(slot: &mut Slot, db: u16, key: &Bytes) -> Result<Handle<T>, CmdError> {
        let entry = slot.get(db, key)?;
        let promoted = T::STICKY && entry.as_ref().is_some_and(|entry| elements::is_promoted(&entry.value));
        let mut opened_header = None;
        let mut opened_compact = None;
        let (expire, existed, form) = match entry {
            None => (None, false, Form::Compact(T::default())),
            Some(entry) if entry.kind != T::KIND => return Err(CmdError::WrongType),
            Some(entry) if T::SHAPE != SplitShape::Never && elements::is_split(&entry.value) => {
                let split = Split::decode(db, key, &entry.value)?;
                opened_header = Some(entry.value);
                (entry.expire_at_ms, true, Form::Split(split))
            }
            Some(entry) => {
                let value = T::decode(&entry.value)
                    .map_err(|err| CmdError::err(format!("stored {} is unreadable: {err}", T::WHAT)))?;
                opened_compact = Some(entry.value);
                (entry.expire_at_ms, true, Form::Compact(value))
            }
        };
        Ok(Handle {
            db,
            key: key.clone(),
            expire,
            existed,
            form,
            replaced: None,
            opened_header,
            opened_compact,
            promoted,
            grown: false,
            opened_len: 0,
        }
        .with_opened_len())
    }

    fn with_opened_len(mut self) -> Self {
        self.opened_len = self.len();
        self
    }

    /// True when this command's writes are ones Redis judges a conversion on: those that add elements
    /// (`setTypeAdd`, `zsetAdd` of a new member) or, for a hash, set a field (`hashTypeSet` checks the
    /// length after an update too). Removals (HDEL, SREM, ZREM, pops) never convert.
    fn judged(&self) -> bool {
        match T::KIND {
            ValueKind::Hash => self.len() >= self.opened_len,
            _ => self.len() > self.opened_len,
        }
    }

    /// True if the key existed when opened.
    pub fn existed(&self) -> bool {
        self.existed
    }

    /// True when the stored collection was promoted to Redis's large encoding (hashtable, skiplist),
    /// which it keeps for life ([`super::encoding`]).
    pub fn promoted(&self) -> bool {
        self.promoted
    }

    /// Notes an element this command wrote, for the promotion judged on save: as Redis, only the
    /// elements written are weighed (`hashTypeTryConversion` and `hashTypeSet` weigh the command's field
    /// and value, `zsetAdd` a new member, `setTypeAdd` a new member), never what the collection held
    /// before, which may be a long value written while a threshold was higher.
    fn note_written(&mut self, field: &[u8], value: &[u8]) {
        if T::STICKY && !self.promoted && !self.grown {
            self.grown = T::element_outgrows(field, value, &super::encoding::limits());
        }
    }

    /// Number of elements.
    pub fn len(&self) -> u64 {
        match &self.form {
            Form::Compact(value) => value.count(),
            Form::Split(split) => split.count(),
        }
    }

    /// True when it has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The key's expiry.
    pub fn expire(&self) -> Option<u64> {
        self.expire
    }

    /// The whole collection as its compact type, for changes that have no element-level form. A split
    /// collection is read whole here; [`Handle::save`] then picks its form again.
    pub fn materialize(&mut self, slot: &mut Slot) -> Result<&mut T, CmdError> {
        if let Form::Split(split) = &mut self.form {
            let value = split.materialize::<T>(slot)?;
            let Form::Split(split) = std::mem::replace(&mut self.form, Form::Compact(value)) else { unreachable!() };
            self.replaced = Some(split);
        }
        match &mut self.form {
            Form::Compact(value) => Ok(value),
            Form::Split(_) => unreachable!("materialised above"),
        }
    }

    /// Writes the command's changes in one batch, choosing the form: deletes the key when empty, splits a
    /// compact value that outgrew [`SPLIT_ABOVE_COUNT`]/[`SPLIT_ABOVE_BYTES`], joins a split one that
    /// shrank below [`JOIN_BELOW_COUNT`] and [`JOIN_BELOW_BYTES`].
    pub fn save(self, slot: &mut Slot) -> Result<(), CmdError> {
        let mut ops = Vec::new();
        self.save_ops(slot, &mut ops)?;
        if !ops.is_empty() {
            slot.write_batch(ops)?;
        }
        Ok(())
    }

    /// [`Handle::save`]'s writes, appended to `ops` (to join another collection's in one batch).
    pub fn save_ops(mut self, slot: &mut Slot, ops: &mut Vec<BatchOp>) -> Result<(), CmdError> {
        if let Form::Split(split) = &self.form {
            if split.count() <= JOIN_BELOW_COUNT && split.element_bytes() <= JOIN_BELOW_BYTES {
                self.materialize(slot)?;
            }
        }
        if let Some(old) = self.replaced.take() {
            old.free_ops(slot, ops)?;
        }
        // Redis converts on the write that outgrows the small encoding and never back: by the count, or
        // by an element written (`grown`).
        let judged = self.judged();
        let len = self.len();
        let promoted = T::STICKY
            && len > 0
            && (self.promoted || self.grown || judged && T::count_outgrows(len, &super::encoding::limits()));
        match self.form {
            Form::Split(split) => {
                let mut header = split.header();
                elements::set_promoted(&mut header, promoted);
                if self.opened_header.as_deref() != Some(&header[..]) {
                    ops.push(BatchOp::Set {
                        db: self.db,
                        key: self.key.to_vec(),
                        kind: T::KIND,
                        value: header,
                        expire_at_ms: self.expire,
                    });
                }
                match split {
                    Split::Hashed(hashed) => hashed.into_ops(ops),
                    Split::Chain(chain) => chain.into_ops(ops),
                    Split::Ranked(ranked) => ranked.into_ops(ops),
                    Split::Stream(stream) => stream.into_ops(ops),
                }
            }
            Form::Compact(value) => {
                let stored = Stored { existed: self.existed, expire: self.expire, compact: self.opened_compact };
                compact_ops(ops, self.db, &self.key, stored, &value, promoted);
            }
        }
        Ok(())
    }
}

/// What [`compact_ops`] replaces at its key.
struct Stored {
    existed: bool,
    /// The expiry the value keeps.
    expire: Option<u64>,
    /// The compact value stored there, if any.
    compact: Option<Bytes>,
}

/// The writes storing compact `value` at `key`: a delete when empty, a split collection when large,
/// nothing when the stored compact value is already byte for byte the same, else one value, carrying
/// the promoted flag when `promoted` ([`super::encoding`]). True when split: the owner record and the
/// header are then the first two writes, the new parts the rest.
fn compact_ops<T: Collection>(
    ops: &mut Vec<BatchOp>,
    db: u16,
    key: &[u8],
    stored: Stored,
    value: &T,
    promoted: bool,
) -> bool {
    let Stored { existed, expire, compact } = stored;
    if value.is_empty() {
        if existed {
            ops.push(BatchOp::Delete { db, key: key.to_vec() });
        }
        return false;
    }
    let mut encoded = value.encode();
    let large = value.count() > SPLIT_ABOVE_COUNT || value.split_weight(&encoded) > SPLIT_ABOVE_BYTES;
    if T::SHAPE == SplitShape::Never || !large {
        if promoted {
            elements::set_promoted(&mut encoded, true);
        }
        // Rewriting the same bytes would change nothing a reader or a recovery sees, and cost a WAL
        // record and an encoding (a dictionary compression) under the slot's lock: redis-benchmark's HSET
        // sets one field of a one-field hash to the value it holds. The caller's commit still waits for
        // what the slot wrote before under `fsync always`, so the reply never precedes the durability of
        // the value it confirms.
        if compact.as_deref() == Some(&encoded[..]) {
            return false;
        }
        ops.push(BatchOp::Set { db, key: key.to_vec(), kind: T::KIND, value: encoded, expire_at_ms: expire });
        return false;
    }
    let split = Split::create(db, key, value, fresh_id(key));
    ops.push(split.home().owner_op(key));
    let mut header = split.header();
    elements::set_promoted(&mut header, promoted);
    ops.push(BatchOp::Set { db, key: key.to_vec(), kind: T::KIND, value: header, expire_at_ms: expire });
    match split {
        Split::Hashed(hashed) => hashed.into_ops(ops),
        Split::Chain(chain) => chain.into_ops(ops),
        Split::Ranked(ranked) => ranked.into_ops(ops),
        Split::Stream(stream) => stream.into_ops(ops),
    }
    true
}

/// The writes that create `key` holding `value` (split when large) where no key exists: for bulk loads
/// (rdb-restore), which batch many keys into one write.
pub fn create_ops<T: Collection>(ops: &mut Vec<BatchOp>, db: u16, key: &[u8], value: &T, expire: Option<u64>) {
    compact_ops(ops, db, key, Stored { existed: false, expire, compact: None }, value, chosen_from_content(value));
}

/// The promoted flag of a collection written whole from a result (STORE commands, RESTORE, bulk loads):
/// Redis chooses the encoding of those from their content.
fn chosen_from_content<T: Collection>(value: &T) -> bool {
    T::STICKY && !value.is_empty() && value.outgrows(&super::encoding::limits())
}

/// Element-level operations of hashes and sets (a set's values are empty).
impl<T: Collection + Keyed> Handle<T> {
    /// The value of `field`.
    pub fn get(&mut self, slot: &mut Slot, field: &[u8]) -> Result<Option<Bytes>, CmdError> {
        Ok(match &mut self.form {
            Form::Compact(value) => value.get_field(field),
            Form::Split(Split::Hashed(hashed)) => hashed.get(slot, field)?,
            Form::Split(_) => None,
        })
    }

    /// Sets `field`; true if it is new.
    pub fn insert(&mut self, slot: &mut Slot, field: Bytes, value: Bytes) -> Result<bool, CmdError> {
        // A hash weighs every field set (`hashTypeSet` checks an update too), a set only a new member.
        let weigh_always = T::KIND == ValueKind::Hash;
        if weigh_always {
            self.note_written(&field, &value);
        }
        let weighed = (!weigh_always).then(|| field.clone());
        let added = match &mut self.form {
            Form::Compact(compact) => compact.insert_field(field, value),
            Form::Split(Split::Hashed(hashed)) => hashed.insert(slot, field, value)?,
            Form::Split(_) => false,
        };
        if let Some(member) = weighed.filter(|_| added) {
            self.note_written(&member, b"");
        }
        Ok(added)
    }

    /// Removes `field`; true if it was there.
    pub fn remove(&mut self, slot: &mut Slot, field: &[u8]) -> Result<bool, CmdError> {
        Ok(match &mut self.form {
            Form::Compact(compact) => compact.remove_field(field),
            Form::Split(Split::Hashed(hashed)) => hashed.remove(slot, field)?.is_some(),
            Form::Split(_) => false,
        })
    }

    /// Every entry (compact: insertion order; split: bucket order).
    pub fn entries(&mut self, slot: &mut Slot) -> Result<Vec<(Bytes, Bytes)>, CmdError> {
        Ok(match &mut self.form {
            Form::Compact(compact) => compact.to_entries(),
            Form::Split(Split::Hashed(hashed)) => hashed.entries(slot)?,
            Form::Split(_) => Vec::new(),
        })
    }

    /// One step of HSCAN/SSCAN: a compact collection is returned whole whatever the cursor when `whole`
    /// says Redis keeps its content in a listpack or intset (which Redis returns whole), else paged about
    /// `want` entries a step ([`super::scan_page`]) as Redis walks a hash table; a split one a few buckets
    /// at a time.
    pub fn scan(
        &mut self,
        slot: &mut Slot,
        cursor: u64,
        want: usize,
        whole: impl FnOnce(&[(Bytes, Bytes)]) -> bool,
    ) -> Result<(u64, Vec<(Bytes, Bytes)>), CmdError> {
        Ok(match &mut self.form {
            Form::Compact(compact) => {
                let entries = compact.to_entries();
                // A promoted collection is a hash table in Redis, paged whatever its size.
                if !self.promoted && whole(&entries) {
                    (0, entries)
                } else {
                    super::scan_page::page(entries, cursor, want)
                }
            }
            Form::Split(Split::Hashed(hashed)) => hashed.scan(slot, cursor, want)?,
            Form::Split(_) => (0, Vec::new()),
        })
    }

    /// A random entry (uniform when compact; a random bucket's random entry when split).
    pub fn random(&mut self, slot: &mut Slot, random: u64) -> Result<Option<(Bytes, Bytes)>, CmdError> {
        Ok(match &mut self.form {
            Form::Compact(compact) => {
                let entries = compact.to_entries();
                if entries.is_empty() {
                    None
                } else {
                    let at = (random % entries.len() as u64) as usize;
                    entries.into_iter().nth(at)
                }
            }
            Form::Split(Split::Hashed(hashed)) => hashed.random(slot, random)?,
            Form::Split(_) => None,
        })
    }

    /// SRANDMEMBER/HRANDFIELD with a count: `count` > 0 picks distinct entries (all of them, in a random
    /// order, when `count` covers the collection), `count` < 0 picks `-count` entries with repetition.
    ///
    /// As Redis does, a split collection is read whole only when the count approaches its size (a
    /// positive count above a third of it, a negative one at least its size); otherwise each pick is a
    /// [`Hashed::random`] pick reading about two buckets (see there for the distribution), distinct
    /// picks rejecting repeats, which are rare below a third of the size.
    pub fn random_entries(&mut self, slot: &mut Slot, count: i64, seed: u64) -> Result<Vec<(Bytes, Bytes)>, CmdError> {
        let len = self.len();
        let wanted = count.unsigned_abs();
        if count == 0 || len == 0 {
            return Ok(Vec::new());
        }
        let mut state = seed;
        if let Form::Split(Split::Hashed(hashed)) = &mut self.form {
            if count > 0 && wanted.saturating_mul(3) <= len {
                let mut seen = std::collections::HashSet::with_capacity(wanted as usize);
                let mut out = Vec::with_capacity(wanted as usize);
                // Repeats are rare here; the bound only guards against a degenerate generator.
                for _ in 0..wanted.saturating_mul(64) {
                    let Some(entry) = hashed.random(slot, elements::hashed::splitmix(&mut state))? else { break };
                    if seen.insert(entry.0.clone()) {
                        out.push(entry);
                        if out.len() as u64 == wanted {
                            return Ok(out);
                        }
                    }
                }
            } else if count < 0 && wanted < len {
                let mut out = Vec::with_capacity(wanted as usize);
                for _ in 0..wanted {
                    if let Some(entry) = hashed.random(slot, elements::hashed::splitmix(&mut state))? {
                        out.push(entry);
                    }
                }
                return Ok(out);
            }
        }
        let entries = self.entries(slot)?;
        let picks: Vec<usize> = if count > 0 {
            super::set::distinct_picks(elements::hashed::splitmix(&mut state), entries.len(), wanted as usize)
        } else {
            (0..wanted).map(|_| (elements::hashed::splitmix(&mut state) % entries.len() as u64) as usize).collect()
        };
        Ok(picks.into_iter().map(|at| entries[at].clone()).collect())
    }
}

/// Element-level operations of lists.
impl Handle<ListValue> {
    /// Pushes `items` one by one at the head (`front`) or the tail.
    pub fn push(&mut self, slot: &mut Slot, front: bool, items: Vec<Bytes>) -> Result<(), CmdError> {
        match &mut self.form {
            Form::Compact(list) => {
                for item in items {
                    if front {
                        list.items.push_front(item);
                    } else {
                        list.items.push_back(item);
                    }
                }
            }
            Form::Split(Split::Chain(chain)) => chain.push(slot, front, items)?,
            Form::Split(_) => {}
        }
        Ok(())
    }

    /// Pops up to `n` items from the head (`front`) or the tail.
    pub fn pop(&mut self, slot: &mut Slot, front: bool, n: u64) -> Result<Vec<Bytes>, CmdError> {
        Ok(match &mut self.form {
            Form::Compact(list) => {
                let take = (n as usize).min(list.items.len());
                if front {
                    list.items.drain(..take).collect()
                } else {
                    let mut popped: Vec<Bytes> = list.items.drain(list.items.len() - take..).collect();
                    popped.reverse();
                    popped
                }
            }
            Form::Split(Split::Chain(chain)) => chain.pop(slot, front, n, true)?,
            Form::Split(_) => Vec::new(),
        })
    }

    /// Item `index` (from the head, 0-based).
    pub fn index(&mut self, slot: &mut Slot, index: u64) -> Result<Option<Bytes>, CmdError> {
        Ok(match &mut self.form {
            Form::Compact(list) => list.items.get(index as usize).cloned(),
            Form::Split(Split::Chain(chain)) => chain.get(slot, index)?,
            Form::Split(_) => None,
        })
    }

    /// Replaces item `index`; false if out of range.
    pub fn set_index(&mut self, slot: &mut Slot, index: u64, value: Bytes) -> Result<bool, CmdError> {
        Ok(match &mut self.form {
            Form::Compact(list) => match list.items.get_mut(index as usize) {
                Some(item) => {
                    *item = value;
                    true
                }
                None => false,
            },
            Form::Split(Split::Chain(chain)) => chain.set(slot, index, value)?,
            Form::Split(_) => false,
        })
    }

    /// Items `start..=stop` (normalised: start <= stop < len).
    pub fn range(&mut self, slot: &mut Slot, start: u64, stop: u64) -> Result<Vec<Bytes>, CmdError> {
        Ok(match &mut self.form {
            Form::Compact(list) => list.items.range(start as usize..=stop as usize).cloned().collect(),
            Form::Split(Split::Chain(chain)) => chain.range(slot, start, stop)?,
            Form::Split(_) => Vec::new(),
        })
    }

    /// LINSERT: inserts `element` before (or `after`) the first `pivot`; false if there is no pivot.
    pub fn insert_at_pivot(
        &mut self,
        slot: &mut Slot,
        pivot: &[u8],
        element: Bytes,
        after: bool,
    ) -> Result<bool, CmdError> {
        Ok(match &mut self.form {
            Form::Compact(list) => match list.items.iter().position(|item| item.as_ref() == pivot) {
                Some(at) => {
                    list.items.insert(if after { at + 1 } else { at }, element);
                    true
                }
                None => false,
            },
            Form::Split(Split::Chain(chain)) => chain.insert_at_pivot(slot, pivot, element, after)?,
            Form::Split(_) => false,
        })
    }

    /// LREM: removes up to `limit` items equal to `element` (every one with `None`), from the head
    /// (`from_head`) or the tail; how many went.
    pub fn remove_matching(
        &mut self,
        slot: &mut Slot,
        element: &[u8],
        limit: Option<u64>,
        from_head: bool,
    ) -> Result<u64, CmdError> {
        Ok(match &mut self.form {
            Form::Compact(list) => {
                let mut removed = 0u64;
                let mut keep = |item: &Bytes| {
                    let matches = item.as_ref() == element && limit.is_none_or(|limit| removed < limit);
                    removed += u64::from(matches);
                    !matches
                };
                let kept: std::collections::VecDeque<Bytes> = if from_head {
                    list.items.drain(..).filter(|item| keep(item)).collect()
                } else {
                    let mut kept: Vec<Bytes> = list.items.drain(..).rev().filter(|item| keep(item)).collect();
                    kept.reverse();
                    kept.into()
                };
                list.items = kept;
                removed
            }
            Form::Split(Split::Chain(chain)) => chain.remove_matching(slot, element, limit, from_head)?,
            Form::Split(_) => 0,
        })
    }

    /// LPOS: indexes of items equal to `element` (skipping the first `skip` matches, at most `wanted`,
    /// looking at no more than `maxlen` items, 0 = all), walking from the head (`from_head`) or the tail.
    pub fn positions(
        &mut self,
        slot: &mut Slot,
        element: &[u8],
        from_head: bool,
        mut skip: u64,
        wanted: u64,
        maxlen: u64,
    ) -> Result<Vec<u64>, CmdError> {
        Ok(match &mut self.form {
            Form::Compact(list) => {
                let len = list.items.len() as u64;
                let limit = if maxlen == 0 { len } else { maxlen.min(len) };
                let mut found = Vec::new();
                for step in 0..limit {
                    if found.len() as u64 >= wanted {
                        break;
                    }
                    let at = if from_head { step } else { len - 1 - step };
                    if list.items[at as usize].as_ref() == element {
                        if skip > 0 {
                            skip -= 1;
                        } else {
                            found.push(at);
                        }
                    }
                }
                found
            }
            Form::Split(Split::Chain(chain)) => chain.positions(slot, element, from_head, skip, wanted, maxlen)?,
            Form::Split(_) => Vec::new(),
        })
    }

    /// Keeps only items `start..=stop` (normalised), or empties the list with `None`.
    pub fn trim(&mut self, slot: &mut Slot, keep: Option<(u64, u64)>) -> Result<(), CmdError> {
        let len = self.len();
        let (drop_front, drop_back) = match keep {
            Some((start, stop)) => (start, len - 1 - stop),
            None => (len, 0),
        };
        match &mut self.form {
            Form::Compact(list) => {
                list.items.drain(..drop_front as usize);
                let keep_len = list.items.len() - drop_back as usize;
                list.items.truncate(keep_len);
            }
            Form::Split(Split::Chain(chain)) => {
                chain.pop(slot, true, drop_front, false)?;
                chain.pop(slot, false, drop_back, false)?;
            }
            Form::Split(_) => {}
        }
        Ok(())
    }
}

/// Element-level operations of sorted sets (ranks are ascending, 0-based).
impl Handle<ZsetIndex> {
    /// The score of `member`.
    pub fn score(&mut self, slot: &mut Slot, member: &[u8]) -> Result<Option<f64>, CmdError> {
        Ok(match &mut self.form {
            Form::Compact(index) => index.score(member),
            Form::Split(Split::Ranked(ranked)) => ranked.score(slot, member)?,
            Form::Split(_) => None,
        })
    }

    /// Sets `member`'s score (never NaN: callers check).
    pub fn insert(&mut self, slot: &mut Slot, member: Bytes, score: f64) -> Result<InsertOutcome, CmdError> {
        // Redis's `zsetAdd` weighs a new member only; a score update converts nothing.
        let outcome = match &mut self.form {
            Form::Compact(index) => index.insert(&member, score).map_err(|_| CmdError::NotFloat)?,
            Form::Split(Split::Ranked(ranked)) => match ranked.insert(slot, member.clone(), score)? {
                Inserted::Added => InsertOutcome::Added,
                Inserted::Updated(old) => InsertOutcome::Updated(old),
                Inserted::Unchanged => InsertOutcome::Unchanged,
            },
            Form::Split(_) => InsertOutcome::Unchanged,
        };
        if matches!(outcome, InsertOutcome::Added) {
            self.note_written(&member, b"");
        }
        Ok(outcome)
    }

    /// Removes `member`; its score if it was there.
    pub fn remove(&mut self, slot: &mut Slot, member: &[u8]) -> Result<Option<f64>, CmdError> {
        Ok(match &mut self.form {
            Form::Compact(index) => index.remove(member),
            Form::Split(Split::Ranked(ranked)) => ranked.remove(slot, member)?,
            Form::Split(_) => None,
        })
    }

    /// The ascending rank of `member`.
    pub fn rank(&mut self, slot: &mut Slot, member: &[u8]) -> Result<Option<u64>, CmdError> {
        Ok(match &mut self.form {
            Form::Compact(index) => index.rank(member).map(|r| r as u64),
            Form::Split(Split::Ranked(ranked)) => ranked.rank(slot, member)?,
            Form::Split(_) => None,
        })
    }

    /// The ascending ranks of the members with scores between `min` and `max`.
    pub fn score_ranks(&mut self, slot: &mut Slot, min: ScoreBound, max: ScoreBound) -> Result<Range<u64>, CmdError> {
        Ok(match &mut self.form {
            Form::Compact(index) => {
                let ranks = index.score_rank_range(min, max);
                ranks.start as u64..ranks.end as u64
            }
            Form::Split(Split::Ranked(ranked)) => {
                let start = ranked.count_before(slot, |score, _| match min {
                    ScoreBound::Inclusive(s) => score < s,
                    ScoreBound::Exclusive(s) => score <= s,
                })?;
                let end = ranked.count_before(slot, |score, _| match max {
                    ScoreBound::Inclusive(s) => score <= s,
                    ScoreBound::Exclusive(s) => score < s,
                })?;
                start..end.max(start)
            }
            Form::Split(_) => 0..0,
        })
    }

    /// The ascending ranks of the members between `min` and `max`, comparing members only (meaningful,
    /// as in Redis, when all scores are equal).
    pub fn lex_ranks(&mut self, slot: &mut Slot, min: &LexBound, max: &LexBound) -> Result<Range<u64>, CmdError> {
        Ok(match &mut self.form {
            Form::Compact(index) => {
                let ranks = index.lex_rank_range(min, max);
                ranks.start as u64..ranks.end as u64
            }
            Form::Split(Split::Ranked(ranked)) => {
                let below = |bound: &LexBound, member: &[u8], inclusive_end: bool| match bound {
                    LexBound::Min => false,
                    LexBound::Max => true,
                    LexBound::Inclusive(m) if inclusive_end => member <= m.as_slice(),
                    LexBound::Inclusive(m) => member < m.as_slice(),
                    LexBound::Exclusive(m) if inclusive_end => member < m.as_slice(),
                    LexBound::Exclusive(m) => member <= m.as_slice(),
                };
                let start = ranked.count_before(slot, |_, member| below(min, member, false))?;
                let end = ranked.count_before(slot, |_, member| below(max, member, true))?;
                start..end.max(start)
            }
            Form::Split(_) => 0..0,
        })
    }

    /// One step of ZSCAN: a compact set whole (cursor 0) when `whole` says Redis keeps it in a listpack,
    /// else paged as Redis walks its skiplist's hash table ([`super::scan_page`]); a split one a few
    /// buckets at a time.
    pub fn scan(
        &mut self,
        slot: &mut Slot,
        cursor: u64,
        want: usize,
        whole: impl FnOnce(&ZsetIndex) -> bool,
    ) -> Result<(u64, Vec<(Bytes, f64)>), CmdError> {
        Ok(match &mut self.form {
            Form::Compact(index) if !self.promoted && whole(index) => (0, index.to_scored()),
            Form::Compact(index) => super::scan_page::page(index.to_scored(), cursor, want),
            Form::Split(Split::Ranked(ranked)) => ranked.scan(slot, cursor, want)?,
            Form::Split(_) => (0, Vec::new()),
        })
    }

    /// Members and scores at ascending ranks `ranks`, in descending order when `reverse`.
    pub fn range(&mut self, slot: &mut Slot, ranks: Range<u64>, reverse: bool) -> Result<Vec<(Bytes, f64)>, CmdError> {
        let mut items: Vec<(Bytes, f64)> = match &mut self.form {
            Form::Compact(index) => index
                .range(ranks.start as usize..ranks.end as usize)
                .map(|(member, score)| (Bytes::copy_from_slice(member), score))
                .collect(),
            Form::Split(Split::Ranked(ranked)) => ranked.range(slot, ranks)?,
            Form::Split(_) => Vec::new(),
        };
        if reverse {
            items.reverse();
        }
        Ok(items)
    }
}

/// Field access on the compact hash and set types.
pub trait Keyed {
    /// The value of `field`.
    fn get_field(&self, field: &[u8]) -> Option<Bytes>;
    /// Sets `field`; true if new.
    fn insert_field(&mut self, field: Bytes, value: Bytes) -> bool;
    /// Removes `field`; true if it was there.
    fn remove_field(&mut self, field: &[u8]) -> bool;
}

impl Keyed for HashValue {
    fn get_field(&self, field: &[u8]) -> Option<Bytes> {
        self.get(field).cloned()
    }
    fn insert_field(&mut self, field: Bytes, value: Bytes) -> bool {
        self.set(field, value)
    }
    fn remove_field(&mut self, field: &[u8]) -> bool {
        self.remove(field)
    }
}

impl Keyed for SetValue {
    fn get_field(&self, field: &[u8]) -> Option<Bytes> {
        self.contains(field).then(Bytes::new)
    }
    fn insert_field(&mut self, field: Bytes, _value: Bytes) -> bool {
        self.insert(field)
    }
    fn remove_field(&mut self, field: &[u8]) -> bool {
        self.remove(field)
    }
}

/// The whole collection at `key` (materialised if split) and its expiry; WRONGTYPE for another type.
pub fn load<T: Collection>(slot: &mut Slot, db: u16, key: &[u8]) -> Result<Option<(T, Option<u64>)>, CmdError> {
    let key = Bytes::copy_from_slice(key);
    let mut handle = Handle::<T>::open(slot, db, &key)?;
    if !handle.existed() {
        return Ok(None);
    }
    let expire = handle.expire();
    handle.materialize(slot)?;
    match handle.form {
        Form::Compact(value) => Ok(Some((value, expire))),
        Form::Split(_) => unreachable!("materialised above"),
    }
}

/// The whole collection at `key`, read under its slot lock.
pub fn read<T: Collection>(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Option<T>, CmdError> {
    let db = ctx.db();
    let mut slot = ctx.engine.lock_key(key);
    Ok(load::<T>(&mut slot, db, key)?.map(|(value, _)| value))
}

/// Parts written per batch by [`store`] before the header that makes them reachable.
const STORE_PARTS_PER_BATCH: usize = 64;

/// Writes a whole collection to `key`, replacing whatever is there (and freeing the parts of a split
/// collection it replaces); deletes the key when `value` is empty.
///
/// A large value's parts go first, `STORE_PARTS_PER_BATCH` (64) per batch, under a fresh id that nothing
/// refers to yet; the last batch writes the header that makes them the key's value (with the owner
/// record and the freeing of what it replaces). Between batches the command may be interrupted
/// ([`elements::interrupt`]: its client is gone, the server is shutting down): `key` then still holds
/// its old value, and the parts written so far have no owner record, so the sweeper frees them.
pub fn store<T: Collection>(
    slot: &mut Slot,
    db: u16,
    key: &[u8],
    value: &T,
    expire: Option<u64>,
) -> Result<(), CmdError> {
    store_with(slot, db, key, value, expire, None)
}

/// [`store`] with the promoted flag given (`Some`: a copy of a value keeps its encoding state) or chosen
/// from the content (`None`).
fn store_with<T: Collection>(
    slot: &mut Slot,
    db: u16,
    key: &[u8],
    value: &T,
    expire: Option<u64>,
    promoted: Option<bool>,
) -> Result<(), CmdError> {
    let mut ops = Vec::new();
    replace_ops(slot, db, key, &mut ops)?;
    let existed = slot.key_info(db, key)?.is_some();
    elements::interrupt::check()?;
    let mut new = Vec::new();
    let promoted = promoted.unwrap_or_else(|| chosen_from_content(value));
    let split = compact_ops(&mut new, db, key, Stored { existed, expire, compact: None }, value, promoted);
    if split && new.len() > 2 + STORE_PARTS_PER_BATCH {
        // `compact_ops` put the owner record and the header first.
        let mut parts = new.split_off(2).into_iter().peekable();
        while parts.peek().is_some() {
            elements::interrupt::check()?;
            slot.write_batch(parts.by_ref().take(STORE_PARTS_PER_BATCH).collect())?;
        }
        elements::interrupt::check()?;
    }
    ops.extend(new);
    if !ops.is_empty() {
        slot.write_batch(ops)?;
    }
    Ok(())
}

/// [`store`]'s writes appended to `ops` instead of written (bulk loaders batch many keys of one slot).
pub fn store_ops<T: Collection>(
    slot: &mut Slot,
    db: u16,
    key: &[u8],
    value: &T,
    expire: Option<u64>,
    ops: &mut Vec<BatchOp>,
) -> Result<(), CmdError> {
    replace_ops(slot, db, key, ops)?;
    let existed = slot.key_info(db, key)?.is_some();
    compact_ops(ops, db, key, Stored { existed, expire, compact: None }, value, chosen_from_content(value));
    Ok(())
}

/// The end of every STORE command (ZUNIONSTORE, GEOSEARCHSTORE, SORT ... STORE): writes `value` to
/// `destination` (deleting it when empty) under the held locks, commits them all, and tells WATCH, which
/// Redis notifies only when the destination existed or gets a value. Returns the stored element count.
///
/// Keyspace notifications as Redis: `event` (of `class`) when a value is stored, `del` when an existing
/// destination is deleted because the result is empty.
pub fn store_destination<T: Collection>(
    ctx: &Ctx<'_>,
    mut guards: Vec<(usize, crate::engine::SlotGuard<'_>)>,
    destination: &[u8],
    value: &T,
    (class, event): (u32, &str),
) -> Result<Reply, CmdError> {
    let db = ctx.db();
    let guard = super::guard_for(&mut guards, ctx.engine, destination);
    let existed = guard.key_info(db, destination)?.is_some();
    store(guard, db, destination, value, None)?;
    super::commit_all(guards)?;
    if existed || !value.is_empty() {
        ctx.touch(db, destination);
    }
    if !value.is_empty() {
        ctx.notify_new(!existed, db, destination);
        ctx.notify(class, event, db, destination);
    } else if existed {
        ctx.notify(notify::GENERIC, "del", db, destination);
    }
    Ok(Reply::Int(value.count() as i64))
}

/// Runs `change` on the whole collection at `key` (empty, with `existed` false, if missing) under the
/// key's slot lock; saves it, keeping its expiry, when `change` says it changed, and returns its reply.
pub fn modify<T: Collection>(
    ctx: &mut Ctx<'_>,
    key: &Bytes,
    change: impl FnOnce(&mut T, bool) -> Result<(Reply, bool), CmdError>,
) -> Result<Reply, CmdError> {
    let db = ctx.db();
    let mut slot = ctx.engine.lock_key(key);
    let mut handle = Handle::<T>::open(&mut slot, db, key)?;
    let existed = handle.existed();
    let (reply, changed) = change(handle.materialize(&mut slot)?, existed)?;
    if changed {
        handle.save(&mut slot)?;
        slot.commit()?;
        ctx.touch(db, key);
    }
    Ok(reply)
}

/// Runs `work` on the collection at `key` through a [`Handle`] under the key's slot lock; when `work`
/// says it changed something, saves (one batch), waits for durability as configured and notifies WATCH.
pub fn update<T: Collection, R>(
    ctx: &mut Ctx<'_>,
    key: &Bytes,
    work: impl FnOnce(&mut Handle<T>, &mut Slot) -> Result<(R, bool), CmdError>,
) -> Result<R, CmdError> {
    update_notify(ctx, key, (0, ""), work)
}

/// [`update`] with Redis's keyspace notifications: `event` (of `class`) when `work` changed the
/// collection, then `del` if that emptied it (which deletes the key; never for a stream, which stays).
pub fn update_notify<T: Collection, R>(
    ctx: &mut Ctx<'_>,
    key: &Bytes,
    (class, event): (u32, &str),
    work: impl FnOnce(&mut Handle<T>, &mut Slot) -> Result<(R, bool), CmdError>,
) -> Result<R, CmdError> {
    let db = ctx.db();
    let mut slot = ctx.engine.lock_key(key);
    let mut handle = Handle::<T>::open(&mut slot, db, key)?;
    let existed = handle.existed();
    let (out, changed) = work(&mut handle, &mut slot)?;
    if changed {
        // Class 0 (plain `update`) notifies nothing.
        let emptied = class != 0 && class != notify::STREAM && handle.is_empty();
        handle.save(&mut slot)?;
        slot.commit()?;
        ctx.touch(db, key);
        ctx.notify_new(class != 0 && !existed && !emptied, db, key);
        ctx.notify(class, event, db, key);
        if emptied {
            ctx.notify(notify::GENERIC, "del", db, key);
        }
    }
    Ok(out)
}

/// Runs read-only `work` on the collection at `key` through a [`Handle`] under the key's slot lock.
pub fn inspect<T: Collection, R>(
    ctx: &mut Ctx<'_>,
    key: &Bytes,
    work: impl FnOnce(&mut Handle<T>, &mut Slot) -> Result<R, CmdError>,
) -> Result<R, CmdError> {
    let db = ctx.db();
    let mut slot = ctx.engine.lock_key(key);
    let mut handle = Handle::<T>::open(&mut slot, db, key)?;
    work(&mut handle, &mut slot)
}

/// Frees the parts of the split collection stored at `key`, if it holds one, in the same batch as
/// `then` (the write that replaces or deletes the key): for paths that overwrite any type.
pub fn replace_ops(slot: &mut Slot, db: u16, key: &[u8], ops: &mut Vec<BatchOp>) -> Result<(), CmdError> {
    if let Some(split) = stored_split(slot, db, key)? {
        split.free_ops(slot, ops)?;
    }
    Ok(())
}

/// RENAME of a split collection to `dst` in the same slot and database, in O(1): the header moves (its
/// parts keep their keys, which carry the collection's id, not its name) and the owner record names the
/// new key, in one batch; whatever `dst` held is replaced (its own parts freed). False, doing nothing,
/// when `src` holds no split collection.
pub fn rename_split(slot: &mut Slot, db: u16, src: &[u8], dst: &[u8]) -> Result<bool, CmdError> {
    let Some(entry) = slot.get(db, src)? else { return Ok(false) };
    if !is_collection_kind(entry.kind) || !elements::is_split(&entry.value) {
        return Ok(false);
    }
    let (_, home, _, _) = elements::read_header_prefix(db, src, &entry.value)?;
    let mut ops = Vec::new();
    replace_ops(slot, db, dst, &mut ops)?;
    ops.push(BatchOp::Set {
        db,
        key: dst.to_vec(),
        kind: entry.kind,
        value: entry.value.to_vec(),
        expire_at_ms: entry.expire_at_ms,
    });
    ops.push(BatchOp::Delete { db, key: src.to_vec() });
    ops.push(home.owner_op(dst));
    slot.write_batch(ops)?;
    Ok(true)
}

/// The value at `key` in a form that can be copied to another key or database: a split collection comes
/// back as its compact encoding (its parts belong to this key alone). Other values come back as stored.
pub fn portable_value(slot: &mut Slot, db: u16, key: &[u8]) -> Result<Option<crate::engine::Entry>, CmdError> {
    let Some(mut entry) = slot.get(db, key)? else { return Ok(None) };
    if is_collection_kind(entry.kind) && elements::is_split(&entry.value) {
        let mut split = Split::decode(db, key, &entry.value)?;
        let mut value = match entry.kind {
            ValueKind::Hash => split.materialize::<HashValue>(slot)?.encode(),
            ValueKind::Set => split.materialize::<SetValue>(slot)?.encode(),
            ValueKind::SortedSet => split.materialize::<ZsetIndex>(slot)?.encode(),
            ValueKind::Stream => split.materialize::<StreamValue>(slot)?.encode(),
            _ => split.materialize::<ListValue>(slot)?.encode(),
        };
        // The copy keeps the encoding state, as Redis's RENAME/MOVE/COPY keep the object.
        if matches!(entry.kind, ValueKind::Hash | ValueKind::Set | ValueKind::SortedSet) {
            elements::set_promoted(&mut value, elements::is_promoted(&entry.value));
        }
        entry.value = Bytes::from(value);
    }
    Ok(Some(entry))
}

/// Writes a compact value of any type to `key` (splitting a large collection), replacing what is there.
pub fn write_portable(slot: &mut Slot, db: u16, key: &[u8], entry: &crate::engine::Entry) -> Result<(), CmdError> {
    let decode_error = |err: String| CmdError::err(format!("value to copy is unreadable: {err}"));
    let promoted = Some(elements::is_promoted(&entry.value));
    match entry.kind {
        ValueKind::Hash => {
            let value = HashValue::decode(&entry.value).map_err(decode_error)?;
            store_with(slot, db, key, &value, entry.expire_at_ms, promoted)
        }
        ValueKind::Set => {
            let value = SetValue::decode(&entry.value).map_err(decode_error)?;
            store_with(slot, db, key, &value, entry.expire_at_ms, promoted)
        }
        ValueKind::List => {
            store(slot, db, key, &ListValue::decode(&entry.value).map_err(decode_error)?, entry.expire_at_ms)
        }
        ValueKind::Stream => {
            store(slot, db, key, &StreamValue::decode(&entry.value).map_err(decode_error)?, entry.expire_at_ms)
        }
        kind => {
            let mut ops = Vec::new();
            replace_ops(slot, db, key, &mut ops)?;
            // A string keeps its Redis encoding (`raw`, INCRBYFLOAT's `embstr`): the object moves.
            ops.push(match entry.string_encoding {
                crate::engine::StringEncoding::Content => BatchOp::Set {
                    db,
                    key: key.to_vec(),
                    kind,
                    value: entry.value.to_vec(),
                    expire_at_ms: entry.expire_at_ms,
                },
                encoding => BatchOp::SetString {
                    db,
                    key: key.to_vec(),
                    value: entry.value.to_vec(),
                    encoding,
                    expire_at_ms: entry.expire_at_ms,
                },
            });
            slot.write_batch(ops)?;
            Ok(())
        }
    }
}

/// Redis 7.0's OBJECT ENCODING for a hash, set or sorted set. Redis converts on the write that outgrows
/// the small encoding and never back, and [`Handle::save`] marks that write's value promoted; so a
/// value without the mark is still in the small encoding, whatever the thresholds say now (a lowered
/// threshold shows on the key's next write, as in Redis). A set is an intset only while every member is
/// an integer (a split one is read whole for that, which only a raised `set-max-intset-entries` allows).
/// `None` for other types.
pub fn encoding_name(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    entry: &crate::engine::Entry,
) -> Result<Option<&'static str>, CmdError> {
    let unreadable = |what: &str, err: String| CmdError::err(format!("stored {what} is unreadable: {err}"));
    // Promoted once, the large encoding stays (Redis never converts back).
    if elements::is_promoted(&entry.value) {
        match entry.kind {
            ValueKind::Hash | ValueKind::Set => return Ok(Some("hashtable")),
            ValueKind::SortedSet => return Ok(Some("skiplist")),
            _ => {}
        }
    }
    let split = elements::is_split(&entry.value);
    Ok(Some(match entry.kind {
        ValueKind::List => "quicklist",
        ValueKind::Hash | ValueKind::SortedSet => "listpack",
        ValueKind::Set if split => read::<SetValue>(ctx, key)?.map_or("hashtable", |s| s.encoding_name(u64::MAX)),
        ValueKind::Set => SetValue::decode(&entry.value).map_err(|e| unreadable("set", e))?.encoding_name(u64::MAX),
        _ => return Ok(None),
    }))
}

/// Element-level operations of streams: the counters and groups ([`Handle::stream_meta`]) are at hand in
/// both forms; entries are reached by ID, reading only the nodes concerned when the stream is split.
impl Handle<StreamValue> {
    /// The counters and groups (the whole value when compact).
    pub fn stream_meta(&self) -> &StreamValue {
        match &self.form {
            Form::Compact(value) => value,
            Form::Split(Split::Stream(stream)) => stream.meta(),
            Form::Split(_) => unreachable!("a stream handle holds a stream"),
        }
    }

    /// The counters and groups, to change.
    pub fn stream_meta_mut(&mut self) -> &mut StreamValue {
        match &mut self.form {
            Form::Compact(value) => value,
            Form::Split(Split::Stream(stream)) => stream.meta_mut(),
            Form::Split(_) => unreachable!("a stream handle holds a stream"),
        }
    }

    /// Live entries and the first ID, for the group counters.
    pub fn extent(&mut self, slot: &mut Slot) -> Result<Extent, CmdError> {
        Ok(match &mut self.form {
            Form::Compact(value) => value.extent(),
            Form::Split(Split::Stream(stream)) => stream.extent(slot)?,
            Form::Split(_) => Extent { len: 0, first: StreamId::MIN },
        })
    }

    /// The first live entry's ID, `0-0` when none.
    pub fn first_id(&mut self, slot: &mut Slot) -> Result<StreamId, CmdError> {
        Ok(match &mut self.form {
            Form::Compact(value) => value.first_id(),
            Form::Split(Split::Stream(stream)) => stream.first_id(slot)?,
            Form::Split(_) => StreamId::MIN,
        })
    }

    /// The last live entry's ID.
    pub fn top_id(&mut self, slot: &mut Slot) -> Result<Option<StreamId>, CmdError> {
        Ok(match &mut self.form {
            Form::Compact(value) => value.entries.keys().next_back().copied(),
            Form::Split(Split::Stream(stream)) => stream.top_id(slot)?,
            Form::Split(_) => None,
        })
    }

    /// The fields of entry `id`.
    pub fn entry(&mut self, slot: &mut Slot, id: StreamId) -> Result<Option<Vec<(Bytes, Bytes)>>, CmdError> {
        Ok(match &mut self.form {
            Form::Compact(value) => value.entries.get(&id).map(|entry| entry.fields.clone()),
            Form::Split(Split::Stream(stream)) => stream.get(slot, id)?,
            Form::Split(_) => None,
        })
    }

    /// Entries in `[start, end]`, ascending (descending when `rev`), at most `limit` (0: all).
    pub fn entries_between(
        &mut self,
        slot: &mut Slot,
        start: StreamId,
        end: StreamId,
        limit: usize,
        rev: bool,
    ) -> Result<Vec<NodeEntry>, CmdError> {
        if start > end {
            return Ok(Vec::new());
        }
        let limit = if limit == 0 { usize::MAX } else { limit };
        Ok(match &mut self.form {
            Form::Compact(value) => {
                let range = value.entries.range(start..=end).map(|(id, e)| (*id, e.fields.clone()));
                if rev {
                    range.rev().take(limit).collect()
                } else {
                    range.take(limit).collect()
                }
            }
            Form::Split(Split::Stream(stream)) => stream.range(slot, start, end, limit, rev)?,
            Form::Split(_) => Vec::new(),
        })
    }

    /// Appends an entry whose ID the caller checked to be greater than the last ID, in the last node if
    /// it fits the node `limits`.
    pub fn append(
        &mut self,
        slot: &mut Slot,
        id: StreamId,
        fields: Vec<(Bytes, Bytes)>,
        limits: crate::types::stream::NodeLimits,
    ) -> Result<(), CmdError> {
        match &mut self.form {
            Form::Compact(value) => value.append(id, fields, limits),
            Form::Split(Split::Stream(stream)) => stream.append(slot, id, fields, limits)?,
            Form::Split(_) => {}
        }
        Ok(())
    }

    /// Removes entry `id` (XDEL); true if it existed.
    pub fn delete(&mut self, slot: &mut Slot, id: StreamId) -> Result<bool, CmdError> {
        Ok(match &mut self.form {
            Form::Compact(value) => value.delete(id),
            Form::Split(Split::Stream(stream)) => stream.delete(slot, id)?,
            Form::Split(_) => false,
        })
    }

    /// Trims as XADD/XTRIM do; the number of entries removed.
    pub fn trim(&mut self, slot: &mut Slot, strategy: Trim, approx: bool, limit: u64) -> Result<u64, CmdError> {
        Ok(match &mut self.form {
            Form::Compact(value) => value.trim(strategy, approx, limit),
            Form::Split(Split::Stream(stream)) => stream.trim(slot, strategy, approx, limit)?,
            Form::Split(_) => 0,
        })
    }

    /// Redis's `radix-tree-keys` (nodes) and `radix-tree-nodes`.
    pub fn radix_tree(&mut self, slot: &mut Slot) -> Result<(u64, u64), CmdError> {
        Ok(match &mut self.form {
            Form::Compact(value) => (value.node_count() as u64, value.radix_tree_nodes() as u64),
            Form::Split(Split::Stream(stream)) => {
                let masters = stream.master_ids(slot)?;
                (masters.len() as u64, crate::types::stream::radix_tree_nodes(masters) as u64)
            }
            Form::Split(_) => (0, 1),
        })
    }
}
