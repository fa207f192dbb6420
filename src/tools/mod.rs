//! One file per `velo` subcommand: parse nothing more than clap already did, call library code, report.
//! `main.rs` dispatches here; each `run` returns the process exit code (0 ok, 1 runtime failure, 2 bad
//! configuration).

pub mod ingest_parquet;
pub mod serve;
