//! Velo: a Redis-compatible key-value server whose data lives on disk, compressed.
//!
//! # Layout
//! - [`engine`]: the synchronous storage engine (data directory, slots, WAL, key buckets, chunk segments).
//!   No network, no async: the server and every offline tool share it.
//! - [`elements`]: large hashes, sets and lists split into parts on the engine, so one element costs one
//!   part's I/O; the sweeper that frees the parts of deleted collections.
//! - [`types`]: Redis data-type building blocks (HyperLogLog, geohash, bloom filters, sorted-set
//!   index), pure library code.
//! - [`config`]: `velo serve` flags and config file, validated once into a typed struct.
//! - [`resp`]: RESP2/RESP3 request decoding (zero-copy, inline commands) and the reply encoder.
//! - [`cmd`]: the command table (generated from `commands/*.json`) and the handlers, one file per group.
//! - [`script`]: Lua scripting and functions (the interpreters, conversions, bundled libraries).
//! - [`server`]: tokio listener, connections, dispatch gate, clients, pub/sub, WATCH, shutdown.
//! - [`glob`]: Redis's glob-style pattern matching.
//! - [`ingest`]: bulk loading of Parquet files (`velo ingest-parquet`).
//! - [`inspect`]: offline forensics of a data directory (`velo check`, `inspect-bucket`, `inspect-segment`,
//!   `bigkeys`), over the engine's public decoders.
//! - [`rdb`]: Redis RDB files and DUMP payloads (reader for versions 1 to 12, writer of version 10).
//! - [`tools`]: one file per `velo` subcommand (`serve`, the offline tools, completions).

#![warn(missing_docs)]

pub mod cmd;
pub mod config;
pub mod elements;
pub mod engine;
pub mod glob;
pub mod ingest;
pub mod inspect;
pub mod rdb;
pub mod resp;
pub mod script;
pub mod server;
pub mod tools;
pub mod types;
