//! `velo inspect-bucket`: the path of one key through a data directory, or one bucket's pages and cells
//! (library: `inspect::bucket`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgGroup, Args};

use super::output::{self, bad_cell};
use crate::inspect::bucket::{self, CellReport, PageReport, Storage};
use crate::inspect::{DataDir, MetaSource};

/// Flags of `velo inspect-bucket`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["key", "slot"])))]
pub struct InspectBucketArgs {
    /// The data directory (may be held by a running server; nothing is written).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Follow this key's path (bytes as given on the command line).
    #[arg(long, value_name = "KEY", conflicts_with_all = ["slot", "bucket"])]
    pub key: Option<String>,
    /// The key's database.
    #[arg(long, value_name = "N", default_value_t = 0, requires = "key")]
    pub db: u16,
    /// Show one bucket of this internal slot instead (with --bucket).
    #[arg(long, value_name = "S", requires = "bucket")]
    pub slot: Option<usize>,
    /// The bucket to show (with --slot).
    #[arg(long, value_name = "B", requires = "slot")]
    pub bucket: Option<u64>,
    /// Print one JSON document (shape: docs/tools.md).
    #[arg(long)]
    pub json: bool,
    /// Show values (escaped, first 256 bytes).
    #[arg(long)]
    pub values: bool,
}

/// Runs `velo inspect-bucket`. Exit 0: path intact; 1: a page or record on it does not verify.
pub fn run(args: InspectBucketArgs) -> ExitCode {
    let dir = match DataDir::open(&args.dir) {
        Ok(dir) => dir,
        Err(err) => return output::fail("inspect-bucket", err),
    };
    if let Some(key) = &args.key {
        let report = match bucket::inspect_key(&dir, args.db, key.as_bytes(), args.values) {
            Ok(report) => report,
            Err(err) => return output::fail("inspect-bucket", err),
        };
        let damaged = report.status == "damaged";
        if args.json {
            output::print_json(&report);
        } else {
            let mut text = String::new();
            text.push_str(&format!("key          {} (db {})\n", report.key, report.db));
            text.push_str(&format!("hash slot    {} (CRC16 mod 16384)\n", report.hash_slot));
            text.push_str(&format!("slot         {} of {}\n", report.slot, report.slot_count));
            text.push_str(&format!("key hash     {}\n", report.key_hash));
            text.push_str(&format!(
                "bucket       {} (level {}, split {}; metadata from {}, checkpoint {})\n",
                report.bucket,
                report.level,
                report.split,
                meta_source(report.meta_source),
                report.checkpoint_seq
            ));
            text.push_str(&format!("status       {}\n\n", report.status));
            text.push_str(&pages_table(&report.pages).to_string());
            text.push('\n');
            if let Some(problem) = &report.chain_problem {
                text.push_str(&format!("chain: {problem}\n"));
            }
            match &report.cell {
                Some(cell) => {
                    text.push_str("\ncell\n");
                    text.push_str(&cells_table(std::slice::from_ref(cell)).to_string());
                    text.push('\n');
                }
                None => text.push_str("\nno cell for this key in the bucket\n"),
            }
            if let Some(record) = &report.record {
                text.push_str(&format!(
                    "\nrecord       {} @ {}: {}\n",
                    record.path.display(),
                    record.offset,
                    record.status
                ));
                if let Some(seq) = record.seq {
                    text.push_str(&format!("  seq {seq}"));
                }
                if let (Some(c), Some(n), Some(s), Some(r)) =
                    (record.compressed, record.record_count, record.stored_len, record.raw_len)
                {
                    text.push_str(&format!("  segment: {n} records, {s} stored / {r} raw bytes, compressed {c}"));
                }
                if let Some(env) = &record.envelope {
                    text.push_str(&format!(
                        "  envelope: {} {}{}, {} bytes stored, {} raw",
                        env.kind,
                        env.codec,
                        env.dict_id.map_or(String::new(), |d| format!(" (dictionary {d})")),
                        env.stored_len,
                        env.raw_len.map_or("?".into(), |r| r.to_string())
                    ));
                }
                text.push('\n');
                if let Some(value) = &record.value {
                    text.push_str(&format!("  value {value}\n"));
                }
            }
            if report.wal.is_empty() {
                text.push_str("\nWAL: no newer version of this key\n");
            } else {
                text.push_str("\nWAL: newer versions not yet checkpointed\n");
                let mut table = output::table(&["offset", "seq", "op", "expire_at_ms", "envelope"]);
                for hit in &report.wal {
                    table.add_row(vec![
                        hit.offset.to_string(),
                        hit.seq.to_string(),
                        hit.op.to_string(),
                        hit.expire_at_ms.map_or("-".into(), |e| e.to_string()),
                        hit.envelope
                            .as_ref()
                            .map_or("-".into(), |e| format!("{} {} {} bytes", e.kind, e.codec, e.stored_len)),
                    ]);
                }
                text.push_str(&table.to_string());
                text.push('\n');
            }
            if let Some(problem) = &report.wal_problem {
                text.push_str(&format!("WAL read stopped: {problem}\n"));
            }
            output::print(&text);
        }
        return ExitCode::from(if damaged { output::FINDINGS } else { output::OK });
    }
    let (Some(slot), Some(number)) = (args.slot, args.bucket) else {
        return output::fail("inspect-bucket", "give --key KEY, or --slot S with --bucket B");
    };
    let report = match bucket::inspect_bucket(&dir, slot, number, args.values) {
        Ok(report) => report,
        Err(err) => return output::fail("inspect-bucket", err),
    };
    let damaged = report.chain_problem.is_some() || report.pages.iter().any(|p| p.status != "ok");
    if args.json {
        output::print_json(&report);
    } else {
        let mut text = format!(
            "slot {} bucket {} of {} (metadata from {})\n\n",
            report.slot,
            report.bucket,
            report.bucket_count,
            meta_source(report.meta_source)
        );
        text.push_str(&pages_table(&report.pages).to_string());
        text.push('\n');
        if let Some(problem) = &report.chain_problem {
            text.push_str(&format!("chain: {problem}\n"));
        }
        for page in &report.pages {
            if !page.cells.is_empty() {
                text.push_str(&format!("\n{} page {}\n", page.file, page.page));
                text.push_str(&cells_table(&page.cells).to_string());
                text.push('\n');
            }
        }
        output::print(&text);
    }
    ExitCode::from(if damaged { output::FINDINGS } else { output::OK })
}

fn pages_table(pages: &[PageReport]) -> comfy_table::Table {
    let mut table =
        output::table(&["file", "page", "offset", "crc", "kind", "bucket", "next", "checkpoint", "cells", "used"]);
    for page in pages {
        let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        table.add_row(vec![
            comfy_table::Cell::new(format!("{}{}", page.file, if page.from_dwb { " (dwb)" } else { "" })),
            comfy_table::Cell::new(page.page),
            comfy_table::Cell::new(page.offset),
            if page.status == "ok" { comfy_table::Cell::new("ok") } else { bad_cell(&page.status) },
            comfy_table::Cell::new(opt(page.kind.map(str::to_string))),
            comfy_table::Cell::new(opt(page.bucket.map(|b| b.to_string()))),
            comfy_table::Cell::new(opt(page.next_overflow.map(|b| b.to_string()))),
            comfy_table::Cell::new(opt(page.checkpoint_seq.map(|b| b.to_string()))),
            comfy_table::Cell::new(opt(page.cell_count.map(|b| b.to_string()))),
            comfy_table::Cell::new(opt(page.used_bytes.map(|b| b.to_string()))),
        ]);
    }
    table
}

fn cells_table(cells: &[CellReport]) -> comfy_table::Table {
    let mut table = output::table(&["key", "db", "type", "seq", "expire_at_ms", "storage", "value"]);
    for cell in cells {
        let storage = match &cell.storage {
            Storage::Inline => match &cell.envelope {
                Some(env) => format!("inline {} {} bytes", env.codec, env.stored_len),
                None => "inline".into(),
            },
            Storage::Segment { file, segment_offset, record_offset, envelope_len, .. } => {
                format!("chunk {file} segment {segment_offset} record {record_offset} ({envelope_len} bytes)")
            }
            Storage::Big { id, envelope_len, .. } => format!("big-{id:016x}.val ({envelope_len} bytes)"),
        };
        table.add_row(vec![
            cell.key.clone(),
            cell.db.to_string(),
            format!("{}{}", cell.kind, if cell.flushed { " (flushed)" } else { "" }),
            cell.seq.to_string(),
            cell.expire_at_ms.map_or("-".into(), |e| e.to_string()),
            storage,
            cell.value.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    table
}

fn meta_source(source: MetaSource) -> &'static str {
    match source {
        MetaSource::MetaFile => "meta",
        MetaSource::DoubleWriteBatch => "the double-write batch of an interrupted checkpoint",
    }
}
