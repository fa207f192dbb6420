//! Velo: a Redis-compatible key-value server whose data lives on disk, compressed.
//!
//! # Layout
//! - [`engine`]: the synchronous storage engine (data directory, slots, WAL, key buckets, chunk segments).
//!   No network, no async: the server and every offline tool share it.
//! - [`types`]: Redis data-type building blocks (HyperLogLog, geohash, bloom filters, sorted-set
//!   index), pure library code.

#![warn(missing_docs)]

pub mod engine;
pub mod types;
