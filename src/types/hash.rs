//! Hash values in their compact form: field/value pairs in insertion order (as Redis keeps small hashes),
//! stored as one value. Layout (the envelope payload of a value of kind `Hash`): `count u32`, then per
//! pair `field_len u32 | field | value_len u32 | value`, little-endian (docs/format.md §"Hash value").
//!
//! A large hash is split into linear-hashed buckets instead (`crate::elements::hashed`), so that one field
//! costs O(1) parts.

use bytes::Bytes;

/// Why stored bytes are not a hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed hash value at byte {0}")]
pub struct HashError(pub usize);

/// A hash's fields and values, in insertion order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HashValue {
    pairs: Vec<(Bytes, Bytes)>,
}

impl HashValue {
    /// Decodes a stored hash.
    pub fn from_bytes(bytes: &[u8]) -> Result<HashValue, HashError> {
        let mut at = 0usize;
        let read_u32 = |at: &mut usize| -> Result<usize, HashError> {
            let raw = bytes.get(*at..*at + 4).ok_or(HashError(*at))?;
            *at += 4;
            Ok(u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize)
        };
        let count = super::compact_count(read_u32(&mut at)? as u32);
        // Each pair takes at least 8 bytes: a hostile count cannot make us allocate much.
        let mut pairs = Vec::with_capacity(count.min(bytes.len() / 8));
        for _ in 0..count {
            let field_len = read_u32(&mut at)?;
            let field = bytes.get(at..at.checked_add(field_len).ok_or(HashError(at))?).ok_or(HashError(at))?;
            at += field_len;
            let value_len = read_u32(&mut at)?;
            let value = bytes.get(at..at.checked_add(value_len).ok_or(HashError(at))?).ok_or(HashError(at))?;
            at += value_len;
            pairs.push((Bytes::copy_from_slice(field), Bytes::copy_from_slice(value)));
        }
        if at != bytes.len() {
            return Err(HashError(at));
        }
        Ok(HashValue { pairs })
    }

    /// Encodes for storage.
    pub fn to_bytes(&self) -> Vec<u8> {
        let size: usize = self.pairs.iter().map(|(f, v)| 8 + f.len() + v.len()).sum();
        let mut out = Vec::with_capacity(4 + size);
        out.extend_from_slice(&(self.pairs.len() as u32).to_le_bytes());
        for (field, value) in &self.pairs {
            out.extend_from_slice(&(field.len() as u32).to_le_bytes());
            out.extend_from_slice(field);
            out.extend_from_slice(&(value.len() as u32).to_le_bytes());
            out.extend_from_slice(value);
        }
        out
    }

    /// A hash of `pairs`, whose fields must be distinct.
    pub fn from_pairs(pairs: Vec<(Bytes, Bytes)>) -> HashValue {
        HashValue { pairs }
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// True if there are no fields.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    fn position(&self, field: &[u8]) -> Option<usize> {
        self.pairs.iter().position(|(f, _)| f.as_ref() == field)
    }

    /// The value of a field.
    pub fn get(&self, field: &[u8]) -> Option<&Bytes> {
        self.position(field).map(|at| &self.pairs[at].1)
    }

    /// Sets a field; true if it is new.
    pub fn set(&mut self, field: Bytes, value: Bytes) -> bool {
        match self.position(&field) {
            Some(at) => {
                self.pairs[at].1 = value;
                false
            }
            None => {
                self.pairs.push((field, value));
                true
            }
        }
    }

    /// Removes a field; true if it was there.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self.position(field) {
            Some(at) => {
                self.pairs.remove(at);
                true
            }
            None => false,
        }
    }

    /// The pairs, in insertion order.
    pub fn pairs(&self) -> &[(Bytes, Bytes)] {
        &self.pairs
    }

    /// Redis's encoding name for a hash with this content: listpack up to `max_entries` fields
    /// (`hash-max-listpack-entries`) whose fields and values are at most `max_value` bytes.
    pub fn encoding_name(&self, max_entries: u64, max_value: u64) -> &'static str {
        let small = |b: &Bytes| b.len() as u64 <= max_value;
        if self.pairs.len() as u64 <= max_entries && self.pairs.iter().all(|(f, v)| small(f) && small(v)) {
            "listpack"
        } else {
            "hashtable"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_rejects_every_truncation() {
        let mut hash = HashValue::default();
        assert!(hash.set(Bytes::from_static(b"a"), Bytes::from_static(b"1")));
        assert!(hash.set(Bytes::from_static(b"bb"), Bytes::from_static(b"")));
        assert!(!hash.set(Bytes::from_static(b"a"), Bytes::from_static(b"2")));
        let bytes = hash.to_bytes();
        assert_eq!(bytes, b"\x02\x00\x00\x00\x01\x00\x00\x00a\x01\x00\x00\x002\x02\x00\x00\x00bb\x00\x00\x00\x00");
        assert_eq!(HashValue::from_bytes(&bytes), Ok(hash.clone()));
        for len in 0..bytes.len() {
            assert!(HashValue::from_bytes(&bytes[..len]).is_err(), "truncation {len}");
        }
        assert!(HashValue::from_bytes(b"\xff\xff\xff\xff").is_err());
        assert!(hash.remove(b"a"));
        assert_eq!(hash.pairs().len(), 1);
    }
}
