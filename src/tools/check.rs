//! `velo check`: verify every file of a data directory and the references between them (library:
//! `inspect::check`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::output::{self, bad_cell};
use crate::inspect::check::{self, Severity};
use crate::inspect::DataDir;

/// Flags of `velo check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The data directory (may be held by a running server; nothing is written).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Check only this internal slot.
    #[arg(long, value_name = "S")]
    pub slot: Option<usize>,
    /// Print one JSON document (shape: docs/tools.md).
    #[arg(long)]
    pub json: bool,
    /// Run at this nice value (0-19; the default yields the CPU to a server running beside it; 0 keeps
    /// the normal priority).
    #[arg(long, value_name = "N", default_value_t = super::TOOL_NICE, value_parser = clap::value_parser!(i32).range(0..=19))]
    pub nice: i32,
}

/// Runs `velo check`. Exit 0: no damage (warnings allowed); 1: damage found; 2: usage or I/O error.
pub fn run(args: CheckArgs) -> ExitCode {
    super::keep_freed_memory();
    super::lower_priority(args.nice);
    let dir = match DataDir::open(&args.dir) {
        Ok(dir) => dir,
        Err(err) => return output::fail("check", err),
    };
    if let Some(slot) = args.slot {
        if slot >= dir.slot_count as usize {
            return output::fail("check", format!("slot {slot} does not exist (the directory has {})", dir.slot_count));
        }
    }
    let bar = output::progress(check::planned_bytes(&dir, args.slot), "checking");
    let report = check::check(&dir, args.slot, &|n| bar.inc(n));
    bar.finish_and_clear();
    if args.json {
        output::print_json(&report);
    } else {
        let mut text = String::new();
        if !report.findings.is_empty() {
            let mut table = output::table(&["severity", "file", "offset", "finding"]);
            for f in &report.findings {
                table.add_row(vec![
                    match f.severity {
                        Severity::Damage => bad_cell("damage"),
                        Severity::Warning => comfy_table::Cell::new("warning"),
                    },
                    comfy_table::Cell::new(f.file.display()),
                    comfy_table::Cell::new(f.offset.map_or("-".into(), |o| o.to_string())),
                    comfy_table::Cell::new(&f.what),
                ]);
            }
            text.push_str(&table.to_string());
            text.push('\n');
        }
        let s = &report.stats;
        let damage = report.findings.iter().filter(|f| f.severity == Severity::Damage).count();
        text.push_str(&format!(
            "{}: {} slots, {} files, {} read; {} pages, {} cells, {} segments, {} records ({} garbage, {}), {} big values ({} garbage), {} WAL records; {} damage, {} warnings\n",
            if report.clean { "clean" } else { "DAMAGED" },
            s.slots,
            s.files,
            output::bytes(s.bytes),
            s.pages,
            s.cells,
            s.segments,
            s.records,
            s.garbage_records,
            output::bytes(s.garbage_bytes),
            s.big_files,
            s.garbage_big_files,
            s.wal_records,
            damage,
            report.findings.len() - damage,
        ));
        output::print(&text);
    }
    ExitCode::from(if report.clean { output::OK } else { output::FINDINGS })
}
