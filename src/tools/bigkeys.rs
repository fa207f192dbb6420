//! `velo bigkeys`: the largest keys per type and the sizes of key families, offline from a data
//! directory or online from a server (library: `inspect::bigkeys`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgGroup, Args};

use super::output;
use crate::inspect::bigkeys::{self, BigkeysReport, KeyStat, Online};
use crate::inspect::DataDir;

/// Flags of `velo bigkeys`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("source").required(true).args(["dir", "host"])))]
pub struct BigkeysArgs {
    /// Read this data directory (offline; may be held by a running server).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Ask this server instead (Velo or Redis), through SCAN, TYPE, MEMORY USAGE and length commands.
    #[arg(long, value_name = "H", conflicts_with = "dir")]
    pub host: Option<String>,
    /// The server's port.
    #[arg(long, value_name = "P", default_value_t = 6379, requires = "host")]
    pub port: u16,
    /// AUTH password (or the VELO_PASSWORD environment variable).
    #[arg(long, value_name = "PW", env = "VELO_PASSWORD", hide_env_values = true, requires = "host")]
    pub password: Option<String>,
    /// AUTH user name (with --password).
    #[arg(long, value_name = "USER", requires = "password")]
    pub user: Option<String>,
    /// Only this database (offline default: all; online default: 0).
    #[arg(long, value_name = "N")]
    pub db: Option<u16>,
    /// Keys to list per type and measure.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub top: usize,
    /// Key families to list (largest stored bytes first).
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub families: usize,
    /// Print one JSON document (shape: docs/tools.md).
    #[arg(long)]
    pub json: bool,
    /// Offline: run at this nice value (0-19; the default yields the CPU to a server running beside it;
    /// 0 keeps the normal priority).
    #[arg(long, value_name = "N", default_value_t = super::TOOL_NICE, value_parser = clap::value_parser!(i32).range(0..=19))]
    pub nice: i32,
}

/// Runs `velo bigkeys`. Exit 0 on success, 1 when damage kept some keys from being counted, 2 on error.
pub fn run(args: BigkeysArgs) -> ExitCode {
    let report = if let Some(host) = &args.host {
        let bar = output::progress(0, "scanning");
        let target =
            Online { host: host.clone(), port: args.port, password: args.password.clone(), user: args.user.clone() };
        let result =
            bigkeys::online(&target, args.db, args.top, args.families, &|n| bar.set_length(n), &|n| bar.inc(n));
        bar.finish_and_clear();
        match result {
            Ok(report) => report,
            Err(err) => return output::fail("bigkeys", err),
        }
    } else {
        let Some(path) = &args.dir else { return output::fail("bigkeys", "give --dir DIR or --host H") };
        // The scan's queue and buffers are reused slot after slot: kept, not purged and faulted in again.
        super::keep_freed_memory();
        super::lower_priority(args.nice);
        let dir = match DataDir::open(path) {
            Ok(dir) => dir,
            Err(err) => return output::fail("bigkeys", err),
        };
        let bar = output::progress(dir.slot_count as u64, "scanning slots");
        let result = bigkeys::offline(&dir, args.db, args.top, args.families, &|n| bar.inc(n));
        bar.finish_and_clear();
        match result {
            Ok(report) => report,
            Err(err) => return output::fail("bigkeys", err),
        }
    };
    if args.json {
        output::print_json(&report);
    } else {
        output::print(&render(&report));
    }
    ExitCode::from(if report.problems.is_empty() { output::OK } else { output::FINDINGS })
}

fn render(report: &BigkeysReport) -> String {
    let mut text = format!("{} report of {}\n", report.source, report.target);
    let row = |k: &KeyStat| {
        vec![
            k.key.clone(),
            k.db.to_string(),
            output::bytes(k.stored_bytes),
            output::bytes(k.raw_bytes),
            k.elements.map_or("-".into(), |e| e.to_string()),
            if k.split { "split".into() } else { String::new() },
        ]
    };
    for t in &report.types {
        text.push_str(&format!(
            "\n{}: {} keys, {} stored, {} raw, {} elements\n",
            t.kind,
            t.keys,
            output::bytes(t.stored_bytes),
            output::bytes(t.raw_bytes),
            t.elements
        ));
        let mut table = output::table(&["largest by stored bytes", "db", "stored", "raw", "elements", ""]);
        for k in &t.top_by_bytes {
            table.add_row(row(k));
        }
        text.push_str(&table.to_string());
        text.push('\n');
        if !t.top_by_elements.is_empty() {
            let mut table = output::table(&["largest by elements", "db", "stored", "raw", "elements", ""]);
            for k in &t.top_by_elements {
                table.add_row(row(k));
            }
            text.push_str(&table.to_string());
            text.push('\n');
        }
    }
    text.push_str(&format!("\nkey families ({} in all, the key up to its last ':')\n", report.family_count));
    let mut table = output::table(&["family", "keys", "raw", "stored", "ratio", "dictionary"]);
    for f in &report.families {
        table.add_row(vec![
            if f.family == "\"\"" { "(none)".into() } else { f.family.clone() },
            f.keys.to_string(),
            output::bytes(f.raw_bytes),
            output::bytes(f.stored_bytes),
            format!("{:.3}", f.ratio),
            f.dictionary.map_or("-".into(), |id| format!("{id} ({})", output::bytes(f.dictionary_bytes))),
        ]);
    }
    text.push_str(&table.to_string());
    text.push('\n');
    let t = &report.totals;
    text.push_str(&format!(
        "\ntotal: {} keys, {} raw, {} stored, {} elements\n",
        t.keys,
        output::bytes(t.raw_bytes),
        output::bytes(t.stored_bytes),
        t.elements
    ));
    for note in &report.notes {
        text.push_str(&format!("note: {note}\n"));
    }
    for problem in &report.problems {
        text.push_str(&format!("problem: {problem}\n"));
    }
    text
}
