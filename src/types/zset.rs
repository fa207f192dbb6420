//! Sorted-set values in their compact form: (member, score) pairs in (score, member) order, stored as one
//! value and loaded into a [`ZsetIndex`] to be worked on. Layout (the envelope payload of a value of kind
//! `SortedSet`): `count u32`, then per pair `score f64 (IEEE bits, little-endian) | len u32 | member`
//! (docs/format.md §"Sorted-set value"). A large sorted set is split instead (`crate::elements::ranked`).

use super::zset_index::ZsetIndex;

/// Why stored bytes are not a sorted set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed sorted-set value at byte {0}")]
pub struct ZsetError(pub usize);

/// Decodes a stored sorted set into an index.
pub fn from_bytes(bytes: &[u8]) -> Result<ZsetIndex, ZsetError> {
    let u32_at = |at: usize| -> Result<usize, ZsetError> {
        let raw = bytes.get(at..at + 4).ok_or(ZsetError(at))?;
        Ok(u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize)
    };
    let count = super::compact_count(u32_at(0)? as u32);
    let mut at = 4;
    let mut index = ZsetIndex::new();
    for _ in 0..count {
        let raw = bytes.get(at..at + 8).ok_or(ZsetError(at))?;
        let score = f64::from_bits(u64::from_le_bytes(raw.try_into().map_err(|_| ZsetError(at))?));
        at += 8;
        let len = u32_at(at)?;
        at += 4;
        let member = bytes.get(at..at.checked_add(len).ok_or(ZsetError(at))?).ok_or(ZsetError(at))?;
        at += len;
        match index.insert(member, score) {
            Ok(super::zset_index::InsertOutcome::Added) => {}
            _ => return Err(ZsetError(at)),
        }
    }
    if at != bytes.len() {
        return Err(ZsetError(at));
    }
    Ok(index)
}

/// Encodes an index for storage, in order.
pub fn to_bytes(index: &ZsetIndex) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(index.len() as u32).to_le_bytes());
    for (member, score) in index.iter() {
        out.extend_from_slice(&score.to_bits().to_le_bytes());
        out.extend_from_slice(&(member.len() as u32).to_le_bytes());
        out.extend_from_slice(member);
    }
    out
}

/// Redis 7.0's encoding name for a sorted set with this content: listpack up to `max_entries` members
/// (`zset-max-listpack-entries`) of at most `max_value` bytes.
pub fn encoding_name(index: &ZsetIndex, max_entries: u64, max_value: u64) -> &'static str {
    if index.len() as u64 <= max_entries && index.iter().all(|(member, _)| member.len() as u64 <= max_value) {
        "listpack"
    } else {
        "skiplist"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_rejects_every_truncation() {
        let mut index = ZsetIndex::new();
        index.insert(b"b", 2.0).expect("insert");
        index.insert(b"a", 1.5).expect("insert");
        let bytes = to_bytes(&index);
        let decoded = from_bytes(&bytes).expect("decodes");
        assert_eq!(
            decoded.iter().map(|(m, s)| (m.to_vec(), s)).collect::<Vec<_>>(),
            vec![(b"a".to_vec(), 1.5), (b"b".to_vec(), 2.0)]
        );
        for len in 0..bytes.len() {
            assert!(from_bytes(&bytes[..len]).is_err(), "truncation {len}");
        }
    }
}
