//! `inspect-segment`: a chunk file's (or big-value file's) header, segments and records, each record live
//! (a bucket cell still points at it, for the same database and key) or garbage, and the file's live
//! share, which is what compaction decides on. Shapes: docs/tools.md §"inspect-segment".

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::engine::format::{self, FILE_HEADER_LEN};
use crate::engine::page::CellValue;
use crate::engine::segment as seg;
use crate::engine::Error;

use super::{envelope_info, escape, value_preview, DataDir, EnvelopeInfo, SlotView};

/// The cell pointing at a record: database, key, cell sequence, expiry (0 for none).
pub type Owner = (u16, Vec<u8>, u64, u64);

/// What the slot's cells point at: segment records and big values, with the owning cell's sequence and
/// expiry.
#[derive(Debug, Default)]
pub struct References {
    /// `(file, segment_offset, record_offset)` → (db, key, cell seq, expire_at).
    pub segments: HashMap<(u32, u32, u32), Owner>,
    /// Big-value id → (db, key, cell seq, expire_at).
    pub bigs: HashMap<u64, Owner>,
    /// Pages that did not decode while collecting (their cells are unknown, so liveness may be
    /// understated).
    pub unreadable_pages: usize,
}

/// Walks every bucket of a slot and collects what its cells point at (cells made dead by a FLUSHDB
/// point at garbage and are left out).
pub fn references(view: &SlotView) -> References {
    let mut refs = References::default();
    for bucket in 0..view.meta.bucket_count() {
        let chain = view.chain(bucket);
        for read in chain.pages {
            let Ok(page) = read.page else {
                refs.unreadable_pages += 1;
                continue;
            };
            for cell in page.cells {
                if cell.seq < view.meta.db_flush_seq.get(&cell.db).copied().unwrap_or(0) {
                    continue;
                }
                match cell.value {
                    CellValue::Inline(_) => {}
                    CellValue::Segment(l) => {
                        refs.segments.insert(
                            (l.file, l.segment_offset, l.record_offset),
                            (cell.db, cell.key, cell.seq, cell.expire_at),
                        );
                    }
                    CellValue::Big { id, .. } => {
                        refs.bigs.insert(id, (cell.db, cell.key, cell.seq, cell.expire_at));
                    }
                }
            }
        }
    }
    refs
}

/// One record of a segment.
#[derive(Debug, Serialize)]
pub struct RecordInfo {
    /// Offset in the segment's decompressed payload (0 in a big-value file).
    pub record_offset: u32,
    /// Sequence of the write.
    pub seq: u64,
    /// Database.
    pub db: u16,
    /// The key, escaped as redis-cli prints it.
    pub key: String,
    /// The envelope header: type, codec, dictionary id, stored and raw length.
    pub envelope: EnvelopeInfo,
    /// Bytes the record takes (header, key, envelope).
    pub record_len: u64,
    /// Expiry of the live cell, null when none or garbage.
    pub expire_at_ms: Option<u64>,
    /// A bucket cell still points at this record.
    pub live: bool,
    /// The value (with `--values`).
    pub value: Option<String>,
}

/// One segment.
#[derive(Debug, Serialize)]
pub struct SegmentInfo {
    /// Byte offset in the chunk file.
    pub offset: u64,
    /// `ok`, or the error (checksum mismatch, decompression, malformed records).
    pub status: String,
    /// Stored zstd-compressed.
    pub compressed: Option<bool>,
    /// The trained dictionary it is compressed with (absent: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dictionary: Option<u32>,
    /// Records in it.
    pub record_count: Option<u16>,
    /// Stored payload bytes.
    pub stored_len: Option<u32>,
    /// Decompressed payload bytes.
    pub raw_len: Option<usize>,
    /// The records.
    pub records: Vec<RecordInfo>,
}

/// Totals of a file.
#[derive(Debug, Default, Serialize)]
pub struct FileSummary {
    /// Segments decoded.
    pub segments: u64,
    /// Records.
    pub records: u64,
    /// Bytes of all records.
    pub record_bytes: u64,
    /// Live records.
    pub live_records: u64,
    /// Bytes of live records.
    pub live_bytes: u64,
    /// live_bytes / record_bytes (1.0 for an empty file). Compaction rewrites a file below 0.65.
    pub live_share: f64,
    /// The slot metadata's figures for the file: record bytes ever written, and still live.
    pub meta_written_bytes: Option<u64>,
    /// See `meta_written_bytes`.
    pub meta_live_bytes: Option<u64>,
}

/// A chunk or big-value file.
#[derive(Debug, Serialize)]
pub struct FileReport {
    /// Slot.
    pub slot: usize,
    /// The file.
    pub path: PathBuf,
    /// `chunk` or `big`.
    pub kind: &'static str,
    /// File length.
    pub file_len: u64,
    /// Committed length from the slot metadata (chunk files; null when the metadata does not list it).
    pub committed_len: Option<u64>,
    /// `ok`, or what is wrong with the file header.
    pub header: String,
    /// The segments (a big-value file is shown as one segment holding its record).
    pub segments: Vec<SegmentInfo>,
    /// Pages that could not be read while finding live records.
    pub unreadable_pages: usize,
    /// Totals.
    pub summary: FileSummary,
}

/// Which file to inspect.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// Chunk file `id`, optionally only the segment at `offset`.
    Chunk {
        /// Chunk file id.
        id: u32,
        /// Only this segment.
        offset: Option<u64>,
    },
    /// Big-value file `id`.
    Big(u64),
}

/// Parses `--file`: a chunk file id, a `chunk-NNNNNNNN.dat` or `big-<id>.val` name.
pub fn parse_file(text: &str) -> Option<Target> {
    let name = text.rsplit('/').next().unwrap_or(text);
    if let Some(id) = seg::parse_chunk_file_name(name) {
        return Some(Target::Chunk { id, offset: None });
    }
    if let Some(id) = seg::parse_big_file_name(name) {
        return Some(Target::Big(id));
    }
    name.parse().ok().map(|id| Target::Chunk { id, offset: None })
}

/// Inspects a chunk or big-value file of a slot.
pub fn inspect(dir: &DataDir, slot: usize, target: Target, values: bool) -> Result<FileReport, Error> {
    let view = dir.slot(slot)?;
    let refs = references(&view);
    let mut summary = FileSummary::default();
    let record_info = |offset: u32, record: seg::RecordRef<'_>, live: Option<&Owner>| {
        let live = live.filter(|(db, key, _, _)| *db == record.db && key.as_slice() == record.key);
        RecordInfo {
            record_offset: offset,
            seq: record.seq,
            db: record.db,
            key: escape(record.key),
            envelope: envelope_info(record.envelope),
            record_len: seg::record_len(record.key.len(), record.envelope.len()) as u64,
            expire_at_ms: live.map(|l| l.3).filter(|&e| e != 0),
            live: live.is_some(),
            value: values.then(|| value_preview(record.envelope, view.dictionaries())),
        }
    };
    let report = match target {
        Target::Big(id) => {
            let path = view.big_path(id);
            let bytes = super::read_file(&path)?;
            let header = header_status(&bytes, format::MAGIC_BIG_VALUE, &path);
            let mut info = SegmentInfo {
                offset: FILE_HEADER_LEN as u64,
                status: "ok".into(),
                compressed: None,
                dictionary: None,
                record_count: Some(1),
                stored_len: None,
                raw_len: None,
                records: Vec::new(),
            };
            match seg::decode_big_value(&bytes, &path) {
                Ok((seq, db, key, envelope)) => {
                    let record = seg::RecordRef { seq, db, key: &key, envelope: &envelope };
                    info.records.push(record_info(0, record, refs.bigs.get(&id)));
                }
                Err(err) => info.status = err.to_string(),
            }
            FileReport {
                slot,
                path,
                kind: "big",
                file_len: bytes.len() as u64,
                committed_len: None,
                header,
                segments: vec![info],
                unreadable_pages: refs.unreadable_pages,
                summary: FileSummary::default(),
            }
        }
        Target::Chunk { id, offset } => {
            let path = view.chunk_path(id);
            let bytes = super::read_file(&path)?;
            let header = header_status(&bytes, format::MAGIC_CHUNK, &path);
            let committed = view.committed_len(id);
            let end = committed.unwrap_or(bytes.len() as u64).min(bytes.len() as u64) as usize;
            let mut segments = Vec::new();
            let mut at = FILE_HEADER_LEN;
            while at < end {
                let (info, next) = decode_at(&bytes[..end], at, &path, id, &refs, &record_info, view.dictionaries());
                if offset.is_none_or(|o| o == at as u64) {
                    segments.push(info);
                }
                match next {
                    Some(next) => at = next,
                    None => break,
                }
            }
            if let Some(o) = offset {
                if segments.is_empty() {
                    return Err(Error::Config(format!("no segment starts at offset {o} of {}", path.display())));
                }
            }
            let meta = view.meta.chunk_files.get(&id);
            summary.meta_written_bytes = meta.map(|m| m.written_bytes);
            summary.meta_live_bytes = meta.map(|m| m.live_bytes);
            FileReport {
                slot,
                path,
                kind: "chunk",
                file_len: bytes.len() as u64,
                committed_len: committed,
                header,
                segments,
                unreadable_pages: refs.unreadable_pages,
                summary,
            }
        }
    };
    let mut report = report;
    let mut summary = std::mem::take(&mut report.summary);
    for segment in &report.segments {
        summary.segments += u64::from(segment.status == "ok");
        for record in &segment.records {
            summary.records += 1;
            summary.record_bytes += record.record_len;
            if record.live {
                summary.live_records += 1;
                summary.live_bytes += record.record_len;
            }
        }
    }
    summary.live_share =
        if summary.record_bytes == 0 { 1.0 } else { summary.live_bytes as f64 / summary.record_bytes as f64 };
    report.summary = summary;
    Ok(report)
}

fn header_status(bytes: &[u8], magic: &'static [u8; 4], path: &std::path::Path) -> String {
    match format::check_file_header(bytes, magic, path) {
        Ok(_) => "ok".into(),
        Err(err) => err.to_string(),
    }
}

type RecordInfoFn<'a> = dyn Fn(u32, seg::RecordRef<'_>, Option<&Owner>) -> RecordInfo + 'a;

/// Decodes the segment at `at`; returns its report and where the next one starts (None: stop).
fn decode_at(
    bytes: &[u8],
    at: usize,
    path: &std::path::Path,
    id: u32,
    refs: &References,
    record_info: &RecordInfoFn<'_>,
    dictionaries: &crate::engine::dictionary::DictionaryMap,
) -> (SegmentInfo, Option<usize>) {
    let mut info = SegmentInfo {
        offset: at as u64,
        status: "ok".into(),
        compressed: None,
        dictionary: None,
        record_count: None,
        stored_len: None,
        raw_len: None,
        records: Vec::new(),
    };
    match seg::decode_segment(&bytes[at..], path, at as u64, Some(dictionaries)) {
        Ok(Some(segment)) => {
            info.compressed = Some(segment.compressed);
            info.dictionary = segment.dictionary;
            info.record_count = Some(segment.record_count);
            info.stored_len = Some(segment.stored_len);
            info.raw_len = Some(segment.payload.len());
            if let Ok(records) = seg::records(&segment.payload, segment.record_count) {
                for (offset, record) in records {
                    let live = refs.segments.get(&(id, at as u32, offset as u32));
                    info.records.push(record_info(offset as u32, record, live));
                }
            }
            (info, Some(at + segment.encoded_len()))
        }
        Ok(None) => {
            info.status = format!("corrupt {} at offset {at}: segment runs past the committed length", path.display());
            (info, None)
        }
        Err(err) => {
            info.status = err.to_string();
            (info, None)
        }
    }
}
