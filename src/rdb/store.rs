//! RDB values to and from Velo's stored forms, through the same code paths as the commands: collections
//! are built as Velo's compact types and stored with `cmd::collection` (which splits a large one), and
//! a split collection is read back materialised as its compact type.

use bytes::Bytes;

use super::write::Shape;
use super::Value;
use crate::cmd::collection::{self, Collection};
use crate::cmd::CmdError;
use crate::engine::{BatchOp, Slot, ValueKind};
use crate::types::hash::HashValue;
use crate::types::list::ListValue;
use crate::types::set::SetValue;
use crate::types::zset_index::ZsetIndex;

fn hash(pairs: Vec<(Bytes, Bytes)>) -> HashValue {
    HashValue::from_pairs(pairs)
}

fn set(members: Vec<Bytes>) -> SetValue {
    let mut set = SetValue::default();
    for member in members {
        set.insert(member);
    }
    set
}

fn zset(members: Vec<(Bytes, f64)>) -> ZsetIndex {
    ZsetIndex::from_scored(members)
}

/// Appends the writes that create `key` (known not to exist) holding `value`.
pub fn create_ops(ops: &mut Vec<BatchOp>, db: u16, key: &[u8], value: Value, expire: Option<u64>) {
    match value {
        // `Vec::from` takes the reader's buffer over without a copy when nothing else holds it.
        Value::String(bytes) => ops.push(BatchOp::Set {
            db,
            key: key.to_vec(),
            kind: ValueKind::String,
            value: Vec::from(bytes),
            expire_at_ms: expire,
        }),
        Value::List(items) => collection::create_ops(ops, db, key, &ListValue { items: items.into() }, expire),
        Value::Set(members) => collection::create_ops(ops, db, key, &set(members), expire),
        Value::SortedSet(members) => collection::create_ops(ops, db, key, &zset(members), expire),
        Value::Hash(pairs) => collection::create_ops(ops, db, key, &hash(pairs), expire),
        Value::Stream(stream) => collection::create_ops(ops, db, key, stream.as_ref(), expire),
    }
}

/// [`create_ops`] taking the key over: a string's key and value become its write without a copy (the
/// reader's buffers are taken over when nothing else holds them).
pub fn create_ops_owned(ops: &mut Vec<BatchOp>, db: u16, key: Bytes, value: Value, expire: Option<u64>) {
    match value {
        Value::String(bytes) => ops.push(BatchOp::Set {
            db,
            key: Vec::from(key),
            kind: ValueKind::String,
            value: Vec::from(bytes),
            expire_at_ms: expire,
        }),
        other => create_ops(ops, db, &key, other, expire),
    }
}

/// Writes `value` to `key`, replacing whatever is there (freeing the parts of a split collection).
pub fn write(slot: &mut Slot, db: u16, key: &[u8], value: Value, expire: Option<u64>) -> Result<(), CmdError> {
    match value {
        Value::String(bytes) => {
            let mut ops = Vec::new();
            collection::replace_ops(slot, db, key, &mut ops)?;
            ops.push(BatchOp::Set {
                db,
                key: key.to_vec(),
                kind: ValueKind::String,
                value: bytes.to_vec(),
                expire_at_ms: expire,
            });
            slot.write_batch(ops)?;
            Ok(())
        }
        Value::List(items) => collection::store(slot, db, key, &ListValue { items: items.into() }, expire),
        Value::Set(members) => collection::store(slot, db, key, &set(members), expire),
        Value::SortedSet(members) => collection::store(slot, db, key, &zset(members), expire),
        Value::Hash(pairs) => collection::store(slot, db, key, &hash(pairs), expire),
        Value::Stream(stream) => collection::store(slot, db, key, stream.as_ref(), expire),
    }
}

/// Why a stored value has no RDB form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    /// A bloom filter (a RedisBloom module type in Redis).
    #[error("a bloom filter has no RDB form without the RedisBloom module")]
    Module,
    /// The stored value is unreadable.
    #[error("{0}")]
    Unreadable(String),
}

/// A stored key as RDB would carry it (or why it has no RDB form), with its expiry.
pub type Stored = (Result<Value, ExportError>, Option<u64>);

/// The value at `key` as RDB carries it, with its expiry; `None` when there is no key. A split
/// collection is materialised.
pub fn read(slot: &mut Slot, db: u16, key: &[u8]) -> Result<Option<Stored>, CmdError> {
    let Some(entry) = collection::portable_value(slot, db, key)? else { return Ok(None) };
    Ok(Some((to_value(entry.kind, &entry.value), entry.expire_at_ms)))
}

/// [`read`], with the encoding Redis would hold the value in: a hash, set or sorted set in its large
/// encoding when promoted, else in its small one ([`crate::cmd::encoding`]); what DUMP writes.
pub fn read_shaped(slot: &mut Slot, db: u16, key: &[u8]) -> Result<Option<(Stored, Shape)>, CmdError> {
    let Some(entry) = collection::portable_value(slot, db, key)? else { return Ok(None) };
    let shape = shape_of(entry.kind, &entry.value);
    Ok(Some(((to_value(entry.kind, &entry.value), entry.expire_at_ms), shape)))
}

/// As [`read_shaped`], from the key's entry already read (a snapshot hands entries out as it scans):
/// only a split collection is read again, to materialise its parts. The shape is what OBJECT ENCODING
/// reports, from the promoted flag the entry carries (compact value or split header alike).
pub fn from_entry(
    slot: &mut Slot,
    db: u16,
    key: &[u8],
    entry: crate::engine::Entry,
) -> Result<Option<(Stored, Shape)>, CmdError> {
    let shape = shape_of(entry.kind, &entry.value);
    let collection = matches!(
        entry.kind,
        ValueKind::Hash | ValueKind::Set | ValueKind::List | ValueKind::SortedSet | ValueKind::Stream
    );
    if collection && crate::elements::is_split(&entry.value) {
        return Ok(read(slot, db, key)?.map(|stored| (stored, shape)));
    }
    if entry.kind == ValueKind::String {
        // The entry's bytes are the reader's own (decoded for it): taken over, not copied.
        return Ok(Some(((Ok(Value::String(entry.value)), entry.expire_at_ms), shape)));
    }
    Ok(Some(((to_value(entry.kind, &entry.value), entry.expire_at_ms), shape)))
}

/// The encoding Redis holds a stored value in: a hash, set or sorted set in its large encoding when
/// promoted, else in its small one ([`crate::cmd::encoding`]); other types by content.
fn shape_of(kind: ValueKind, stored: &[u8]) -> Shape {
    match kind {
        ValueKind::Hash | ValueKind::Set | ValueKind::SortedSet if crate::elements::is_promoted(stored) => Shape::Large,
        ValueKind::Hash | ValueKind::Set | ValueKind::SortedSet => Shape::Small,
        _ => Shape::Defaults,
    }
}

/// A stored (compact) value as an RDB value.
pub fn to_value(kind: ValueKind, bytes: &[u8]) -> Result<Value, ExportError> {
    let unreadable = ExportError::Unreadable;
    Ok(match kind {
        ValueKind::String => Value::String(Bytes::copy_from_slice(bytes)),
        ValueKind::Hash => Value::Hash(HashValue::decode(bytes).map_err(unreadable)?.pairs().to_vec()),
        ValueKind::Set => Value::Set(SetValue::decode(bytes).map_err(unreadable)?.members().to_vec()),
        ValueKind::List => Value::List(ListValue::decode(bytes).map_err(unreadable)?.items.into()),
        ValueKind::SortedSet => Value::SortedSet(ZsetIndex::decode(bytes).map_err(unreadable)?.to_scored()),
        ValueKind::Stream => {
            Value::Stream(Box::new(crate::types::stream::StreamValue::decode(bytes).map_err(unreadable)?))
        }
        ValueKind::BloomFilter => return Err(ExportError::Module),
        ValueKind::Element => return Err(ExportError::Unreadable("internal element".into())),
    })
}
