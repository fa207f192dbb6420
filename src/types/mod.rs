//! Building blocks for Redis data types whose formats must match Redis byte for byte or
//! behave like a well-known module: pure library code, no I/O, no command wiring.
//!
//! - [`hll`]: HyperLogLog in Redis's `HYLL` sparse/dense string format.
//! - [`geohash`]: Redis's 52-bit geohash (GEOADD scores, GEOHASH strings, distances, search helpers).
//! - [`bloom`]: RedisBloom-style scalable bloom filters with a versioned, checksummed encoding.
//! - [`hash`]: hash values in their compact form (field/value pairs in insertion order).
//! - [`list`]: list values in their compact form.
//! - [`set`]: set values in their compact form.
//! - [`stream`]: stream values (entries, counters, consumer groups).
//! - [`zset`]: sorted-set values in their compact form.
//! - [`zset_index`]: an order-statistic index for sorted sets (ranks, ranges by rank/score/lex).
//!
//! Everything here is written from documented formats and published algorithms; no code was
//! copied from Redis (whose recent versions are not permissively licensed) or any other project.

pub mod bloom;
pub mod geohash;
pub mod hash;
pub mod hll;
pub mod list;
pub mod set;
pub mod stream;
pub mod zset;
pub mod zset_index;

/// Bit 31 of a compact hash's, set's or sorted set's leading element count: the collection was promoted
/// to Redis's large encoding (hashtable / skiplist) and keeps it for its life, as Redis 7.0 never converts
/// back (docs/format.md, "Encoding flag"). A compact count never reaches 2^31, so the bit was always 0
/// before it was given this meaning.
pub const PROMOTED_COUNT_BIT: u32 = 1 << 31;

/// The element count of a compact collection's leading `count u32`, without [`PROMOTED_COUNT_BIT`].
pub fn compact_count(raw: u32) -> usize {
    (raw & !PROMOTED_COUNT_BIT) as usize
}
