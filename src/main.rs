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
    /// Load RDB files into a data directory (offline) or a running server (`--host`).
    ///
    /// Example: `velo rdb-restore dump.rdb --dir ./velo-data`.
    RdbRestore(velo::tools::rdb_restore::RdbRestoreArgs),
    /// Write the keys of a data directory as an RDB file (version 10, as Redis 7.0 writes).
    ///
    /// Example: `velo rdb-dump --dir ./velo-data -o dump.rdb`.
    RdbDump(velo::tools::rdb_dump::RdbDumpArgs),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve(args) => velo::tools::serve::run(args),
        Command::RdbRestore(args) => velo::tools::rdb_restore::run(args),
        Command::RdbDump(args) => velo::tools::rdb_dump::run(args),
    }
}
