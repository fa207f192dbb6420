//! Routing: key → Redis Cluster hash slot (CRC16/XMODEM mod 16384 with the `{hash tag}` rule) → internal slot
//! (contiguous ranges of hash slots) → 64-bit key hash inside the slot (xxh3, seeded with the database
//! number so that the database is part of the key's identity).

use crc::{Crc, CRC_16_XMODEM};

/// Number of Redis Cluster hash slots.
pub const HASH_SLOTS: u32 = 16384;

const CRC16: Crc<u16> = Crc::<u16>::new(&CRC_16_XMODEM);

/// The part of the key that is hashed: the content of the first `{...}` if it is non-empty, else the key.
pub fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{') {
        if let Some(close_rel) = key[open + 1..].iter().position(|&b| b == b'}') {
            if close_rel > 0 {
                return &key[open + 1..open + 1 + close_rel];
            }
        }
    }
    key
}

/// Redis Cluster's hash slot of a key (0..16384).
pub fn hash_slot(key: &[u8]) -> u16 {
    (CRC16.checksum(hash_tag(key)) as u32 % HASH_SLOTS) as u16
}

/// The internal slot owning a hash slot, for `slot_count` internal slots (a power of two up to 1024): each
/// internal slot owns a contiguous range, so doubling the slot count splits every range in two.
pub fn internal_slot(hash_slot: u16, slot_count: u32) -> usize {
    (hash_slot as u32 * slot_count / HASH_SLOTS) as usize
}

/// The persisted 64-bit hash of `(db, key)`. Zero is reserved and remapped to one.
pub fn key_hash(db: u16, key: &[u8]) -> u64 {
    match xxhash_rust::xxh3::xxh3_64_with_seed(key, db as u64) {
        0 => 1,
        hash => hash,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_slots_match_redis_cluster() {
        // Values from Redis's CLUSTER KEYSLOT.
        assert_eq!(hash_slot(b"foo"), 12182);
        assert_eq!(hash_slot(b"bar"), 5061);
        assert_eq!(hash_slot(b"{user1000}.following"), hash_slot(b"user1000"));
        assert_eq!(hash_slot(b"foo{}{bar}"), hash_slot(b"foo{}{bar}"));
        assert_eq!(hash_tag(b"foo{}{bar}"), b"foo{}{bar}");
        assert_eq!(hash_tag(b"foo{{bar}}zap"), b"{bar");
        assert_eq!(hash_slot(b""), 0);
    }

    #[test]
    fn internal_slots_are_contiguous_ranges() {
        assert_eq!(internal_slot(0, 4), 0);
        assert_eq!(internal_slot(4095, 4), 0);
        assert_eq!(internal_slot(4096, 4), 1);
        assert_eq!(internal_slot(16383, 4), 3);
        assert_eq!(internal_slot(16383, 1), 0);
        assert_eq!(internal_slot(16383, 1024), 1023);
    }

    #[test]
    fn key_hash_depends_on_db_and_is_never_zero() {
        assert_ne!(key_hash(0, b"a"), key_hash(1, b"a"));
        assert_ne!(key_hash(0, b"a"), 0);
    }
}
