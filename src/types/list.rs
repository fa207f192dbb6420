//! List values in their compact form: the elements in order, stored as one value. Layout (the envelope
//! payload of a value of kind `List`): `count u32`, then per element `len u32 | element`, little-endian
//! (docs/format.md §"List value"). A large list is a chain of chunks instead (`crate::elements::chain`).

use std::collections::VecDeque;

use bytes::Bytes;

/// Why stored bytes are not a list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed list value at byte {0}")]
pub struct ListError(pub usize);

/// A list's elements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListValue {
    /// The elements, head first.
    pub items: VecDeque<Bytes>,
}

impl ListValue {
    /// Decodes a stored list.
    pub fn from_bytes(bytes: &[u8]) -> Result<ListValue, ListError> {
        let read_u32 = |at: usize| -> Result<usize, ListError> {
            let raw = bytes.get(at..at + 4).ok_or(ListError(at))?;
            Ok(u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize)
        };
        let count = read_u32(0)?;
        let mut at = 4;
        let mut items = VecDeque::with_capacity(count.min(bytes.len() / 4));
        for _ in 0..count {
            let len = read_u32(at)?;
            at += 4;
            let item = bytes.get(at..at.checked_add(len).ok_or(ListError(at))?).ok_or(ListError(at))?;
            at += len;
            items.push_back(Bytes::copy_from_slice(item));
        }
        if at != bytes.len() {
            return Err(ListError(at));
        }
        Ok(ListValue { items })
    }

    /// Encodes for storage.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.items.iter().map(|i| 4 + i.len()).sum::<usize>());
        out.extend_from_slice(&(self.items.len() as u32).to_le_bytes());
        for item in &self.items {
            out.extend_from_slice(&(item.len() as u32).to_le_bytes());
            out.extend_from_slice(item);
        }
        out
    }

    /// Redis 7.0's encoding name for a list (always quicklist).
    pub fn encoding_name(&self) -> &'static str {
        "quicklist"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_rejects_every_truncation() {
        let list = ListValue { items: [Bytes::from_static(b"a"), Bytes::from_static(b"")].into_iter().collect() };
        let bytes = list.to_bytes();
        assert_eq!(bytes, b"\x02\x00\x00\x00\x01\x00\x00\x00a\x00\x00\x00\x00");
        assert_eq!(ListValue::from_bytes(&bytes), Ok(list));
        for len in 0..bytes.len() {
            assert!(ListValue::from_bytes(&bytes[..len]).is_err(), "truncation {len}");
        }
    }
}
