//! `velo inspect-segment`: a chunk file's (or big-value file's) segments and records with their liveness
//! (library: `inspect::segment`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgGroup, Args};

use super::output;
use crate::inspect::segment::{self, Target};
use crate::inspect::DataDir;

/// Flags of `velo inspect-segment`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["file", "segment"])))]
pub struct InspectSegmentArgs {
    /// The data directory (may be held by a running server; nothing is written).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// The internal slot.
    #[arg(long, value_name = "S")]
    pub slot: usize,
    /// A chunk file (id, or name `chunk-NNNNNNNN.dat`) or big-value file (`big-<id>.val`).
    #[arg(long, value_name = "F")]
    pub file: Option<String>,
    /// Only the segment starting at this byte offset of the chunk file.
    #[arg(long, value_name = "O", requires = "file")]
    pub offset: Option<u64>,
    /// One segment as `FILE:OFFSET` (chunk file id and byte offset, as cells show their location).
    #[arg(long, value_name = "ID", conflicts_with_all = ["file", "offset"])]
    pub segment: Option<String>,
    /// Print one JSON document (shape: docs/tools.md).
    #[arg(long)]
    pub json: bool,
    /// Show values (escaped, first 256 bytes).
    #[arg(long)]
    pub values: bool,
}

/// Runs `velo inspect-segment`. Exit 0: everything shown verifies; 1: a header or segment does not.
pub fn run(args: InspectSegmentArgs) -> ExitCode {
    let target = match (&args.file, &args.segment) {
        (Some(file), _) => match segment::parse_file(file) {
            Some(Target::Chunk { id, .. }) => Target::Chunk { id, offset: args.offset },
            Some(big) => big,
            None => return output::fail("inspect-segment", format!("--file {file}: not a chunk or big-value file")),
        },
        (None, Some(text)) => {
            let parsed = text.split_once(':').and_then(|(f, o)| Some((f.parse().ok()?, o.parse().ok()?)));
            match parsed {
                Some((id, offset)) => Target::Chunk { id, offset: Some(offset) },
                None => return output::fail("inspect-segment", format!("--segment {text}: expected FILE:OFFSET")),
            }
        }
        (None, None) => return output::fail("inspect-segment", "give --file F or --segment FILE:OFFSET"),
    };
    let dir = match DataDir::open(&args.dir) {
        Ok(dir) => dir,
        Err(err) => return output::fail("inspect-segment", err),
    };
    let report = match segment::inspect(&dir, args.slot, target, args.values) {
        Ok(report) => report,
        Err(err) => return output::fail("inspect-segment", err),
    };
    let damaged = report.header != "ok" || report.segments.iter().any(|s| s.status != "ok");
    if args.json {
        output::print_json(&report);
    } else {
        let mut text = format!(
            "{} ({} file, slot {}): {} bytes, committed {}, header {}\n",
            report.path.display(),
            report.kind,
            report.slot,
            report.file_len,
            report.committed_len.map_or("-".into(), |c| c.to_string()),
            report.header
        );
        for seg in &report.segments {
            text.push_str(&format!(
                "\nsegment @ {}: {}{}\n",
                seg.offset,
                seg.status,
                match (seg.record_count, seg.stored_len, seg.raw_len, seg.compressed) {
                    (Some(n), Some(s), Some(r), Some(c)) => {
                        let codec = match (c, seg.dictionary) {
                            (true, Some(id)) => format!(", zstd with dictionary {id}"),
                            (true, None) => ", zstd".to_string(),
                            _ => String::new(),
                        };
                        format!(", {n} records, {s} stored / {r} raw bytes{codec}")
                    }
                    _ => String::new(),
                }
            ));
            if seg.records.is_empty() {
                continue;
            }
            let mut table = output::table(&[
                "offset",
                "key",
                "db",
                "type",
                "seq",
                "stored",
                "raw",
                "codec",
                "dict",
                "expire_at_ms",
                "live",
            ]);
            for r in &seg.records {
                let mut row = vec![
                    comfy_table::Cell::new(r.record_offset),
                    comfy_table::Cell::new(&r.key),
                    comfy_table::Cell::new(r.db),
                    comfy_table::Cell::new(&r.envelope.kind),
                    comfy_table::Cell::new(r.seq),
                    comfy_table::Cell::new(r.envelope.stored_len),
                    comfy_table::Cell::new(r.envelope.raw_len.map_or("-".into(), |l| l.to_string())),
                    comfy_table::Cell::new(&r.envelope.codec),
                    comfy_table::Cell::new(r.envelope.dict_id.map_or("-".into(), |d| d.to_string())),
                    comfy_table::Cell::new(r.expire_at_ms.map_or("-".into(), |e| e.to_string())),
                    comfy_table::Cell::new(if r.live { "live" } else { "garbage" }),
                ];
                if let Some(value) = &r.value {
                    row.push(comfy_table::Cell::new(value));
                }
                table.add_row(row);
            }
            text.push_str(&table.to_string());
            text.push('\n');
        }
        if report.segments.iter().any(|s| s.status != "ok") {
            text.push_str("\ndamaged segments above\n");
        }
        let s = &report.summary;
        text.push_str(&format!(
            "\nsummary: {} segments, {} records ({} bytes), {} live ({} bytes): live share {:.1}%",
            s.segments,
            s.records,
            s.record_bytes,
            s.live_records,
            s.live_bytes,
            s.live_share * 100.0
        ));
        if let (Some(w), Some(l)) = (s.meta_written_bytes, s.meta_live_bytes) {
            text.push_str(&format!(" (metadata: {l} of {w} bytes live)"));
        }
        text.push('\n');
        if report.unreadable_pages > 0 {
            text.push_str(&format!(
                "{} bucket pages did not verify: records they point at show as garbage\n",
                report.unreadable_pages
            ));
        }
        output::print(&text);
    }
    ExitCode::from(if damaged { output::FINDINGS } else { output::OK })
}
