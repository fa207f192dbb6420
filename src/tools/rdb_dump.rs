//! `velo rdb-dump`: write the keys of a data directory as an RDB file (version 10, loadable by Redis
//! 7.0 and later). The work is `rdb::export`; this file parses flags, shows progress, writes the file
//! atomically (temporary file, fsync, rename) and prints the summary. Exit 0 on success, 1 when keys had
//! no RDB form and were skipped, 2 on error.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use comfy_table::Table;
use indicatif::{ProgressBar, ProgressStyle};

use crate::engine::{Engine, EngineOptions, Error as EngineError};
use crate::rdb::export::{self, DumpOptions, DumpSummary};
use crate::server::dbmap::DbMap;

/// Flags of `velo rdb-dump`.
#[derive(Debug, clap::Args)]
pub struct RdbDumpArgs {
    /// Data directory to read; if a running server holds it, that server sends the file of one instant
    /// (it must be reachable at the address in the directory's ADDRESS file).
    #[arg(long)]
    pub dir: PathBuf,
    /// Output file (`-` for standard output).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: String,
    /// Only this database (repeatable).
    #[arg(long = "db", value_name = "N")]
    pub dbs: Vec<u16>,
    /// Only keys matching this glob-style pattern.
    #[arg(long = "match", value_name = "PATTERN")]
    pub pattern: Option<String>,
    /// Number of databases of the directory.
    #[arg(long, default_value_t = 16)]
    pub databases: u16,
    /// Do not LZF-compress strings (Redis's `rdbcompression no`).
    #[arg(long)]
    pub no_compression: bool,
    /// Print the summary as JSON (on standard error when the RDB goes to standard output).
    #[arg(long)]
    pub json: bool,
    /// Password of the running server holding the directory, if it has one (`requirepass`).
    #[arg(long, env = "REDISCLI_AUTH", hide_env_values = true)]
    pub password: Option<String>,
}

fn fail(message: &str) -> ExitCode {
    eprintln!("velo: error: {message}");
    ExitCode::from(2)
}

/// Runs `velo rdb-dump`.
pub fn run(args: RdbDumpArgs) -> ExitCode {
    let engine = match Engine::open(&args.dir, EngineOptions::default()) {
        Ok(engine) => engine,
        Err(EngineError::Locked { pid, .. }) => {
            return match super::rdb_dump_live::dump(&args) {
                Ok(summary) => {
                    print_summary(&summary, &args);
                    ExitCode::SUCCESS
                }
                Err(error) => fail(&format!(
                    "{} is in use by a running server (pid {pid}), which did not send its snapshot: {error}; \
                     ask it directly: redis-cli -p PORT --rdb FILE (see docs/tools.md)",
                    args.dir.display()
                )),
            };
        }
        Err(error) => return fail(&format!("{}: {error}", args.dir.display())),
    };
    let dbmap = match DbMap::open(&args.dir, args.databases) {
        Ok(map) => map,
        Err(error) => return fail(&error.to_string()),
    };
    let functions = match crate::script::functions::codes_in_dir(&args.dir) {
        Ok(codes) => codes,
        Err(error) => return fail(&error),
    };
    let options = DumpOptions {
        dbs: args.dbs.clone(),
        pattern: args.pattern.as_ref().map(|p| p.as_bytes().to_vec()),
        databases: args.databases,
        compress: !args.no_compression,
        functions,
        offline: true,
    };
    let total: u64 = (0..args.databases).map(|db| engine.dbsize(dbmap.physical(db)).unwrap_or(0)).sum();
    let bar = if args.json || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new(total);
        if let Ok(style) = ProgressStyle::with_template("dumping [{bar:40}] {pos}/{len} keys ({per_sec}, {eta})") {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    };
    let mut progress = |keys: u64| bar.inc(keys);
    let result = if args.output == "-" {
        let stdout = std::io::stdout().lock();
        export::dump(&engine, &dbmap, std::io::BufWriter::new(stdout), &options, &mut progress).map(|(_, s)| s)
    } else {
        export::write_file(&engine, &dbmap, std::path::Path::new(&args.output), &options, &mut progress)
    };
    bar.finish_and_clear();
    let _ = engine.close();
    match result {
        Ok(summary) => {
            print_summary(&summary, &args);
            if summary.skipped > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(error) => fail(&error.to_string()),
    }
}

fn print_summary(summary: &DumpSummary, args: &RdbDumpArgs) {
    let mut out: Box<dyn Write> =
        if args.output == "-" { Box::new(std::io::stderr()) } else { Box::new(std::io::stdout()) };
    if args.json {
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(summary).unwrap_or_default());
        return;
    }
    let mut table = Table::new();
    table.set_header(vec!["db", "type", "keys"]);
    for (db, types) in &summary.written {
        for (type_name, count) in types {
            table.add_row(vec![db.to_string(), type_name.to_string(), count.to_string()]);
        }
    }
    let _ = writeln!(out, "{table}");
    let _ = writeln!(out, "wrote {} keys, {} bytes to {}", summary.total(), summary.bytes, args.output);
    if summary.skipped > 0 {
        let _ = writeln!(out, "keys skipped (bloom filters have no RDB form): {}", summary.skipped);
    }
}
