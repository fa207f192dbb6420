//! What the collection commands share: a [`Collection`] is a Redis type stored as one compact value
//! (hash, set, list, sorted set); [`load`], [`read`], [`store`] and [`modify`] are the one way handlers
//! read it, write it back (deleting the key when it became empty, as Redis never keeps empty
//! collections) and apply a read-modify-write under the key's slot lock.

use bytes::Bytes;

use super::{CmdError, Ctx};
use crate::engine::{Entry, SlotGuard, ValueKind};
use crate::resp::Reply;
use crate::types::hash::HashValue;
use crate::types::list::ListValue;
use crate::types::set::SetValue;
use crate::types::stream::StreamValue;
use crate::types::zset;
use crate::types::zset_index::ZsetIndex;

/// A collection type stored as one value.
pub trait Collection: Default {
    /// The stored value kind.
    const KIND: ValueKind;
    /// Its name in error messages.
    const WHAT: &'static str;
    /// Decodes a stored value.
    fn decode(bytes: &[u8]) -> Result<Self, String>;
    /// Encodes for storage.
    fn encode(&self) -> Vec<u8>;
    /// True when it has no elements.
    fn is_empty(&self) -> bool;
}

impl Collection for HashValue {
    const KIND: ValueKind = ValueKind::Hash;
    const WHAT: &'static str = "hash";
    fn decode(bytes: &[u8]) -> Result<Self, String> {
        HashValue::from_bytes(bytes).map_err(|e| e.to_string())
    }
    fn encode(&self) -> Vec<u8> {
        self.to_bytes()
    }
    fn is_empty(&self) -> bool {
        HashValue::is_empty(self)
    }
}

impl Collection for SetValue {
    const KIND: ValueKind = ValueKind::Set;
    const WHAT: &'static str = "set";
    fn decode(bytes: &[u8]) -> Result<Self, String> {
        SetValue::from_bytes(bytes).map_err(|e| e.to_string())
    }
    fn encode(&self) -> Vec<u8> {
        self.to_bytes()
    }
    fn is_empty(&self) -> bool {
        SetValue::is_empty(self)
    }
}

impl Collection for ListValue {
    const KIND: ValueKind = ValueKind::List;
    const WHAT: &'static str = "list";
    fn decode(bytes: &[u8]) -> Result<Self, String> {
        ListValue::from_bytes(bytes).map_err(|e| e.to_string())
    }
    fn encode(&self) -> Vec<u8> {
        self.to_bytes()
    }
    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

impl Collection for ZsetIndex {
    const KIND: ValueKind = ValueKind::SortedSet;
    const WHAT: &'static str = "sorted set";
    fn decode(bytes: &[u8]) -> Result<Self, String> {
        zset::from_bytes(bytes).map_err(|e| e.to_string())
    }
    fn encode(&self) -> Vec<u8> {
        zset::to_bytes(self)
    }
    fn is_empty(&self) -> bool {
        ZsetIndex::is_empty(self)
    }
}

impl Collection for StreamValue {
    const KIND: ValueKind = ValueKind::Stream;
    const WHAT: &'static str = "stream";
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
}

/// The collection in `entry` and its expiry; WRONGTYPE for any other type.
pub fn load<T: Collection>(entry: Option<Entry>) -> Result<Option<(T, Option<u64>)>, CmdError> {
    super::load_typed(entry, T::KIND, T::WHAT, T::decode)
}

/// The collection at `key`, read without locking (single-key reads).
pub fn read<T: Collection>(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Option<T>, CmdError> {
    Ok(load::<T>(ctx.engine.get(ctx.db(), key)?)?.map(|(value, _)| value))
}

/// Writes a collection back, deleting the key when it became empty.
pub fn store<T: Collection>(
    slot: &mut SlotGuard<'_>,
    db: u16,
    key: &[u8],
    value: &T,
    expire: Option<u64>,
) -> Result<(), CmdError> {
    if value.is_empty() {
        slot.delete(db, key)?;
    } else {
        slot.set(db, key, T::KIND, &value.encode(), expire)?;
    }
    Ok(())
}

/// Runs `change` on the collection at `key` (empty, with `existed` false, if missing) under the key's slot
/// lock; stores it, keeping its expiry, when `change` says it changed, and returns `change`'s reply.
pub fn modify<T: Collection>(
    ctx: &mut Ctx<'_>,
    key: &Bytes,
    change: impl FnOnce(&mut T, bool) -> Result<(Reply, bool), CmdError>,
) -> Result<Reply, CmdError> {
    let db = ctx.db();
    let mut slot = ctx.engine.lock_key(key);
    let (mut value, expire, existed) = match load::<T>(slot.get(db, key)?)? {
        Some((value, expire)) => (value, expire, true),
        None => (T::default(), None, false),
    };
    let (reply, changed) = change(&mut value, existed)?;
    if changed {
        store(&mut slot, db, key, &value, expire)?;
    }
    slot.commit()?;
    if changed {
        ctx.touch(db, key);
    }
    Ok(reply)
}
