//! The integration test binary: one module per topic.

mod blocking;
mod codegen;
mod concurrency;
mod differential;
mod differential_multikey;
mod elements_model;
mod engine_corruption;
mod engine_crash;
mod engine_decoders;
mod engine_feed;
mod engine_growth;
mod engine_model;
mod engine_support;
mod large_collections;
mod lifecycle;
mod million;
mod protocol;
mod server_bloom;
mod server_commands;
mod streams;
mod support;
mod types_bloom;
mod types_geo;
mod types_hll;
mod types_support;
mod types_zset;
