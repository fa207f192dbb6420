//! The `velo` binary: one clap command line, one subcommand per tool (`velo::tools`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The engine and the server allocate many small buffers per request; mimalloc serves them markedly faster
/// than glibc's allocator (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use velo::config::ServeArgs;

/// Velo: a Redis-compatible key-value server whose data lives on disk.
#[derive(Debug, Parser)]
#[command(name = "velo", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the RESP server on a data directory.
    ///
    /// Example: `velo serve --port 7379 --dir ./velo-data --fsync everysec`, then `redis-cli -p 7379`.
    Serve(ServeArgs),
    /// Load Parquet files into a data directory (offline) or a running server (--host).
    ///
    /// Example: `velo ingest-parquet users.parquet --dir ./velo-data --key id --value-json`.
    IngestParquet(velo::tools::ingest_parquet::IngestParquetArgs),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve(args) => velo::tools::serve::run(args),
        Command::IngestParquet(args) => velo::tools::ingest_parquet::run(args),
    }
}
