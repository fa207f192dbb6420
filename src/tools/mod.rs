//! One file per `velo` subcommand: parse nothing more than clap already did, call library code
//! (`crate::inspect` for the offline tools), print. `main.rs` dispatches here; each `run` returns the
//! process exit code: 0 ok, 1 findings (damage found; for `serve` a runtime failure), 2 usage or I/O
//! error. [`output`] holds what they share (tables, JSON, progress bars, `NO_COLOR`, broken pipes).

pub mod bigkeys;
pub mod check;
pub mod completions;
pub mod ingest_parquet;
pub mod inspect_bucket;
pub mod inspect_segment;
pub mod output;
pub mod rdb_dump;
pub mod rdb_dump_live;
pub mod rdb_restore;
pub mod serve;
pub mod train_dict;
