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
