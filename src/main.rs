//! The `velo` binary: one clap command line, one subcommand per tool (`velo::tools`).

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// The engine and the server allocate many small buffers per request; mimalloc serves them markedly faster
/// than glibc's allocator (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use velo::config::ServeArgs;
use velo::tools::bigkeys::BigkeysArgs;
use velo::tools::check::CheckArgs;
use velo::tools::completions::{CompletionsArgs, GenerateArgs};
use velo::tools::inspect_bucket::InspectBucketArgs;
use velo::tools::inspect_segment::InspectSegmentArgs;

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
    /// Show a key's path through the data files (slot, bucket, pages, cell, record, WAL), or one bucket.
    ///
    /// Example: `velo inspect-bucket --dir ./velo-data --key user:42`. Read-only; works beside a running
    /// server. Exit 1 when a page or record on the path does not verify.
    InspectBucket(InspectBucketArgs),
    /// Show a chunk file's segments and records, live or garbage, with its live share.
    ///
    /// Example: `velo inspect-segment --dir ./velo-data --slot 3 --file 1`. Read-only.
    InspectSegment(InspectSegmentArgs),
    /// Verify every file of a data directory and the references between them.
    ///
    /// Example: `velo check --dir ./velo-data`. Read-only. Exit 0 clean, 1 damage found, 2 error.
    Check(CheckArgs),
    /// The largest keys per type and the sizes of key families, from the files or from a server.
    ///
    /// Example: `velo bigkeys --dir ./velo-data --top 10` or `velo bigkeys --host 127.0.0.1 --port 6379`.
    Bigkeys(BigkeysArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    ///
    /// Example: `velo completions bash > ~/.local/share/bash-completion/completions/velo`.
    Completions(CompletionsArgs),
    /// Write every completion script and man page under DIR/completions and DIR/man.
    #[command(hide = true)]
    Generate(GenerateArgs),
    /// Load Parquet files into a data directory (offline) or a running server (--host).
    ///
    /// Example: `velo ingest-parquet users.parquet --dir ./velo-data --key id --value-json`.
    IngestParquet(velo::tools::ingest_parquet::IngestParquetArgs),
    /// Train a zstd dictionary per key family from the values in a data directory and report the gain.
    ///
    /// Example: `velo train-dict --dir ./velo-data --all`; add `--install` (server stopped) to use them.
    TrainDict(velo::tools::train_dict::TrainDictArgs),
}

/// `velo serve` starts without transparent huge pages (velo::tools::huge_pages), turned off before mimalloc
/// first touches its arena: glibc runs this ELF constructor before those of default priority, mimalloc's
/// among them (Rust's own runs at 99). Turned off in `main`, two 2 MiB huge pages were already resident:
/// 4 MB of an empty server's 15 (docs/performance.md, "Memory floor"). glibc passes the constructors the
/// command line.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[used]
#[link_section = ".init_array.00101"]
static HUGE_PAGES_OFF_FOR_SERVE: extern "C" fn(
    std::ffi::c_int,
    *const *const std::ffi::c_char,
    *const *const std::ffi::c_char,
) = huge_pages_off_for_serve;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
extern "C" fn huge_pages_off_for_serve(
    argc: std::ffi::c_int,
    argv: *const *const std::ffi::c_char,
    _env: *const *const std::ffi::c_char,
) {
    if argc < 2 || argv.is_null() {
        return;
    }
    // SAFETY: glibc passes the process's argc and argv (argv[1] exists as argc >= 2), NUL-terminated.
    let first = unsafe { *argv.add(1) };
    // SAFETY: as above; a non-null argv entry is a NUL-terminated string that lives for the process.
    if !first.is_null() && unsafe { std::ffi::CStr::from_ptr(first) }.to_bytes() == b"serve" {
        velo::tools::huge_pages::disable();
    }
}

fn main() -> ExitCode {
    // `velo serve` starts without transparent huge pages, before parsing allocates (velo::tools::huge_pages;
    // on glibc already done by the constructor above, and doing it again changes nothing).
    if std::env::args_os().nth(1).is_some_and(|arg| arg == "serve") {
        velo::tools::huge_pages::disable();
    }
    match Cli::parse().command {
        Command::Serve(args) => velo::tools::serve::run(args),
        Command::RdbRestore(args) => velo::tools::rdb_restore::run(args),
        Command::RdbDump(args) => velo::tools::rdb_dump::run(args),
        Command::InspectBucket(args) => velo::tools::inspect_bucket::run(args),
        Command::InspectSegment(args) => velo::tools::inspect_segment::run(args),
        Command::Check(args) => velo::tools::check::run(args),
        Command::Bigkeys(args) => velo::tools::bigkeys::run(args),
        Command::Completions(args) => velo::tools::completions::run_completions(args, Cli::command()),
        Command::Generate(args) => velo::tools::completions::run_generate(args, Cli::command()),
        Command::IngestParquet(args) => velo::tools::ingest_parquet::run(args),
        Command::TrainDict(args) => velo::tools::train_dict::run(args),
    }
}
