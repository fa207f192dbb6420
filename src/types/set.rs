//! Set values in their compact form: members in insertion order with a hash index for membership, stored
//! as one value. Layout (the envelope payload of a value of kind `Set`): `count u32`, then per member
//! `len u32 | member`, little-endian (docs/format.md §"Set value"). A large set is split into hashed
//! buckets instead (`crate::elements::hashed`).

use std::collections::HashSet;

use bytes::Bytes;

/// Why stored bytes are not a set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed set value at byte {0}")]
pub struct SetError(pub usize);

/// A set's members.
#[derive(Debug, Clone, Default)]
pub struct SetValue {
    members: Vec<Bytes>,
    index: HashSet<Bytes>,
}

impl SetValue {
    /// Decodes a stored set.
    pub fn from_bytes(bytes: &[u8]) -> Result<SetValue, SetError> {
        let read_u32 = |at: usize| -> Result<usize, SetError> {
            let raw = bytes.get(at..at + 4).ok_or(SetError(at))?;
            Ok(u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize)
        };
        let count = super::compact_count(read_u32(0)? as u32);
        let mut at = 4;
        let mut set = SetValue::default();
        for _ in 0..count.min(bytes.len() / 4) {
            let len = read_u32(at)?;
            at += 4;
            let member = bytes.get(at..at.checked_add(len).ok_or(SetError(at))?).ok_or(SetError(at))?;
            at += len;
            if !set.insert(Bytes::copy_from_slice(member)) {
                return Err(SetError(at));
            }
        }
        if set.len() != count || at != bytes.len() {
            return Err(SetError(at));
        }
        Ok(set)
    }

    /// Encodes for storage.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.members.iter().map(|m| 4 + m.len()).sum::<usize>());
        out.extend_from_slice(&(self.members.len() as u32).to_le_bytes());
        for member in &self.members {
            out.extend_from_slice(&(member.len() as u32).to_le_bytes());
            out.extend_from_slice(member);
        }
        out
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// True if `member` is in the set.
    pub fn contains(&self, member: &[u8]) -> bool {
        self.index.contains(member)
    }

    /// Adds a member; true if it is new.
    pub fn insert(&mut self, member: Bytes) -> bool {
        if self.index.insert(member.clone()) {
            self.members.push(member);
            true
        } else {
            false
        }
    }

    /// Removes a member; true if it was there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        if self.index.remove(member) {
            self.members.retain(|m| m.as_ref() != member);
            true
        } else {
            false
        }
    }

    /// The members, in insertion order.
    pub fn members(&self) -> &[Bytes] {
        &self.members
    }

    /// Redis 7.0's encoding name for a set with this content: intset for integers only, up to
    /// `max_intset` members (`set-max-intset-entries`).
    pub fn encoding_name(&self, max_intset: u64) -> &'static str {
        let integers = self.members.iter().all(|m| crate::engine::envelope::canonical_int(m).is_some());
        if integers && self.members.len() as u64 <= max_intset {
            "intset"
        } else {
            "hashtable"
        }
    }
}

impl PartialEq for SetValue {
    fn eq(&self, other: &Self) -> bool {
        self.index == other.index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_rejects_every_truncation() {
        let mut set = SetValue::default();
        assert!(set.insert(Bytes::from_static(b"a")));
        assert!(set.insert(Bytes::from_static(b"bc")));
        assert!(!set.insert(Bytes::from_static(b"a")));
        let bytes = set.to_bytes();
        assert_eq!(bytes, b"\x02\x00\x00\x00\x01\x00\x00\x00a\x02\x00\x00\x00bc");
        assert_eq!(SetValue::from_bytes(&bytes), Ok(set.clone()));
        for len in 0..bytes.len() {
            assert!(SetValue::from_bytes(&bytes[..len]).is_err(), "truncation {len}");
        }
        assert!(SetValue::from_bytes(b"\x02\x00\x00\x00\x01\x00\x00\x00a\x01\x00\x00\x00a").is_err(), "duplicates");
        assert!(set.remove(b"a"));
        assert_eq!(set.members(), [Bytes::from_static(b"bc")]);
    }
}
