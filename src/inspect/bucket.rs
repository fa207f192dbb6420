//! `inspect-bucket`: the whole path of one key (hash slot → internal slot → bucket → pages → cell →
//! segment record or big file, with the checksum status of each step and the WAL's newer versions), or
//! one bucket's pages and cells. Shapes are documented in docs/tools.md §"inspect-bucket".

use std::path::PathBuf;

use serde::Serialize;

use crate::engine::buckets::PageFile;
use crate::engine::key;
use crate::engine::page::{Cell, CellValue, Page};
use crate::engine::segment as seg;
use crate::engine::wal::WalOp;
use crate::engine::Error;

use super::{envelope_info, escape, kind_name, value_preview, DataDir, EnvelopeInfo, MetaSource, PageRead, SlotView};

/// One page on the way, with its checksum status.
#[derive(Debug, Serialize)]
pub struct PageReport {
    /// `buckets` or `overflow`.
    pub file: &'static str,
    /// The file's path.
    pub path: PathBuf,
    /// Page number in that file.
    pub page: u64,
    /// Byte offset in that file.
    pub offset: u64,
    /// `ok`, or the error (checksum mismatch, malformed, missing).
    pub status: String,
    /// True when the image is the double-write batch's (an interrupted checkpoint).
    pub from_dwb: bool,
    /// Page kind: `primary` / `overflow` (null when it does not decode).
    pub kind: Option<&'static str>,
    /// Hash bits of the bucket.
    pub level: Option<u8>,
    /// The bucket the page says it belongs to.
    pub bucket: Option<u64>,
    /// Next overflow page, 0 at the end.
    pub next_overflow: Option<u64>,
    /// The checkpoint that wrote it.
    pub checkpoint_seq: Option<u64>,
    /// Number of cells.
    pub cell_count: Option<usize>,
    /// Cell bytes used (of 4064).
    pub used_bytes: Option<usize>,
    /// The cells (bucket reports only; empty in key reports).
    pub cells: Vec<CellReport>,
}

impl PageReport {
    fn new(read: &PageRead, with_cells: Option<&SlotView>, values: bool) -> PageReport {
        let page = read.page.as_ref().ok();
        PageReport {
            file: match read.id.file {
                PageFile::Primary => "buckets",
                PageFile::Overflow => "overflow",
            },
            path: read.path.clone(),
            page: read.id.number,
            offset: read.offset,
            status: match &read.page {
                Ok(_) => "ok".into(),
                Err(err) => err.to_string(),
            },
            from_dwb: read.from_dwb,
            kind: page.map(|p| if p.kind == crate::engine::page::PAGE_KIND_PRIMARY { "primary" } else { "overflow" }),
            level: page.map(|p| p.level),
            bucket: page.map(|p| p.bucket),
            next_overflow: page.map(|p| p.next_overflow),
            checkpoint_seq: page.map(|p| p.checkpoint_seq),
            cell_count: page.map(|p| p.cells.len()),
            used_bytes: page.map(Page::used),
            cells: match (page, with_cells) {
                (Some(page), Some(slot)) => page.cells.iter().map(|cell| CellReport::new(slot, cell, values)).collect(),
                _ => Vec::new(),
            },
        }
    }
}

/// Where a cell's value is.
#[derive(Debug, Serialize)]
#[serde(tag = "storage", rename_all = "snake_case")]
pub enum Storage {
    /// In the cell.
    Inline,
    /// A record in a chunk segment.
    Segment {
        /// Chunk file id.
        file: u32,
        /// The chunk file's path.
        path: PathBuf,
        /// The segment's byte offset in the file.
        segment_offset: u32,
        /// The record's offset in the segment's decompressed payload.
        record_offset: u32,
        /// The envelope's length.
        envelope_len: u32,
    },
    /// A big-value file.
    Big {
        /// Its id (the sequence of the write).
        id: u64,
        /// Its path.
        path: PathBuf,
        /// The envelope's length.
        envelope_len: u64,
    },
}

/// One cell.
#[derive(Debug, Serialize)]
pub struct CellReport {
    /// The key, escaped as redis-cli prints it.
    pub key: String,
    /// Database (hidden databases of split collections have bit 15 set).
    pub db: u16,
    /// Type name.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Sequence of the write that produced the cell's state.
    pub seq: u64,
    /// Absolute expiry in Unix ms, null for none.
    pub expire_at_ms: Option<u64>,
    /// Bytes the cell takes in its page.
    pub cell_len: usize,
    /// Where the value is.
    #[serde(flatten)]
    pub storage: Storage,
    /// The envelope's header, when it was read (inline cells, and the record for the others).
    pub envelope: Option<EnvelopeInfo>,
    /// True when a FLUSHDB after this cell's write made it dead.
    pub flushed: bool,
    /// The value (with `--values`), escaped, cut at 256 bytes.
    pub value: Option<String>,
}

impl CellReport {
    fn new(slot: &SlotView, cell: &Cell, values: bool) -> CellReport {
        let (storage, envelope, value) = match &cell.value {
            CellValue::Inline(envelope) => (
                Storage::Inline,
                Some(envelope_info(envelope)),
                values.then(|| value_preview(envelope, slot.dictionaries())),
            ),
            CellValue::Segment(location) => (
                Storage::Segment {
                    file: location.file,
                    path: slot.chunk_path(location.file),
                    segment_offset: location.segment_offset,
                    record_offset: location.record_offset,
                    envelope_len: location.envelope_len,
                },
                None,
                None,
            ),
            CellValue::Big { id, envelope_len } => {
                (Storage::Big { id: *id, path: slot.big_path(*id), envelope_len: *envelope_len }, None, None)
            }
        };
        CellReport {
            key: escape(&cell.key),
            db: cell.db,
            kind: kind_name(cell.kind),
            seq: cell.seq,
            expire_at_ms: (cell.expire_at != 0).then_some(cell.expire_at),
            cell_len: cell.encoded_len(),
            storage,
            envelope,
            flushed: cell.seq < slot.meta.db_flush_seq.get(&cell.db).copied().unwrap_or(0),
            value,
        }
    }
}

/// The record a cell points to.
#[derive(Debug, Serialize)]
pub struct RecordReport {
    /// The chunk or big-value file.
    pub path: PathBuf,
    /// The segment's offset in a chunk file (0 for a big-value file).
    pub offset: u64,
    /// `ok`, or the error (segment checksum, decompression, record mismatch).
    pub status: String,
    /// Segment: stored zstd-compressed.
    pub compressed: Option<bool>,
    /// Segment: records in it.
    pub record_count: Option<u16>,
    /// Segment: stored payload bytes.
    pub stored_len: Option<u32>,
    /// Segment: decompressed payload bytes.
    pub raw_len: Option<usize>,
    /// The record's sequence.
    pub seq: Option<u64>,
    /// The record's envelope header.
    pub envelope: Option<EnvelopeInfo>,
    /// The value (with `--values`).
    pub value: Option<String>,
}

/// A WAL record about the key newer than the checkpoint.
#[derive(Debug, Serialize)]
pub struct WalHit {
    /// Position in the WAL: the byte offset in `wal.log`, or in `wal-1.log` with bit 63 set.
    pub offset: u64,
    /// Its sequence.
    pub seq: u64,
    /// `set`, `delete`, `expire`, `flushdb` or `flushall`.
    pub op: &'static str,
    /// Expiry it sets (set, expire), null for none.
    pub expire_at_ms: Option<u64>,
    /// Set: the envelope header.
    pub envelope: Option<EnvelopeInfo>,
}

/// The whole path of one key.
#[derive(Debug, Serialize)]
pub struct KeyReport {
    /// The key, escaped.
    pub key: String,
    /// Database.
    pub db: u16,
    /// Redis Cluster hash slot (CRC16 of the key or its hash tag, mod 16384).
    pub hash_slot: u16,
    /// Internal slot.
    pub slot: usize,
    /// Slots in the directory.
    pub slot_count: u32,
    /// The key hash inside the slot (xxh3 seeded with the database), hex.
    pub key_hash: String,
    /// Where the slot's metadata came from.
    pub meta_source: MetaSource,
    /// Its checkpoint sequence.
    pub checkpoint_seq: u64,
    /// Linear-hashing level and split of the bucket table.
    pub level: u8,
    /// See `level`.
    pub split: u64,
    /// The bucket.
    pub bucket: u64,
    /// The pages walked, primary first.
    pub pages: Vec<PageReport>,
    /// A broken chain link, if any.
    pub chain_problem: Option<String>,
    /// The cell, if found.
    pub cell: Option<CellReport>,
    /// The record the cell points to (segment or big value).
    pub record: Option<RecordReport>,
    /// WAL records about this key (or flushing its database) newer than the checkpoint.
    pub wal: Vec<WalHit>,
    /// Where WAL reading stopped early, if it did.
    pub wal_problem: Option<String>,
    /// `found`, `not_found`, `damaged` (a page or record on the path does not verify) or `flushed`.
    pub status: &'static str,
}

/// One bucket's pages and cells.
#[derive(Debug, Serialize)]
pub struct BucketReport {
    /// Internal slot.
    pub slot: usize,
    /// The bucket.
    pub bucket: u64,
    /// Buckets in the slot's table.
    pub bucket_count: u64,
    /// Where the slot's metadata came from.
    pub meta_source: MetaSource,
    /// The pages with their cells.
    pub pages: Vec<PageReport>,
    /// A broken chain link, if any.
    pub chain_problem: Option<String>,
}

/// Inspects one bucket.
pub fn inspect_bucket(dir: &DataDir, slot: usize, bucket: u64, values: bool) -> Result<BucketReport, Error> {
    let view = dir.slot(slot)?;
    let bucket_count = view.meta.bucket_count();
    if bucket >= bucket_count {
        return Err(Error::Config(format!("bucket {bucket} does not exist (slot {slot} has {bucket_count})")));
    }
    let chain = view.chain(bucket);
    Ok(BucketReport {
        slot,
        bucket,
        bucket_count,
        meta_source: view.meta_source,
        pages: chain.pages.iter().map(|read| PageReport::new(read, Some(&view), values)).collect(),
        chain_problem: chain.problem.map(|e| e.to_string()),
    })
}

/// Follows one key's path.
pub fn inspect_key(dir: &DataDir, db: u16, key: &[u8], values: bool) -> Result<KeyReport, Error> {
    let hash_slot = key::hash_slot(key);
    let slot = key::internal_slot(hash_slot, dir.slot_count);
    let view = dir.slot(slot)?;
    let hash = key::key_hash(db, key);
    let bucket = view.bucket_of(hash);
    let chain = view.chain(bucket);
    let mut damaged = chain.problem.is_some();
    let mut found: Option<Cell> = None;
    for read in &chain.pages {
        match &read.page {
            Ok(page) => {
                if let Some(cell) = page.cells.iter().find(|c| c.db == db && c.key == key) {
                    found = Some(cell.clone());
                }
            }
            Err(_) => damaged = true,
        }
    }
    let record = found.as_ref().and_then(|cell| record_report(&view, cell, values));
    if record.as_ref().is_some_and(|r| r.status != "ok") {
        damaged = true;
    }
    let flushed = found.as_ref().is_some_and(|cell| cell.seq < view.meta.db_flush_seq.get(&db).copied().unwrap_or(0));
    let wal = view.wal();
    let hits = wal
        .records
        .iter()
        .filter(|(_, r)| match r.op {
            WalOp::FlushAll => true,
            WalOp::FlushDb => r.db == db,
            _ => r.db == db && r.key == key,
        })
        .map(|(offset, r)| WalHit {
            offset: *offset,
            seq: r.seq,
            op: match r.op {
                WalOp::Set => "set",
                WalOp::Delete => "delete",
                WalOp::Expire => "expire",
                WalOp::FlushDb => "flushdb",
                WalOp::FlushAll => "flushall",
                WalOp::Commit => "commit",
            },
            expire_at_ms: matches!(r.op, WalOp::Set | WalOp::Expire).then_some(r.expire_at).filter(|&e| e != 0),
            envelope: (r.op == WalOp::Set).then(|| envelope_info(&r.envelope)),
        })
        .collect();
    let status = match (&found, damaged, flushed) {
        (_, true, _) => "damaged",
        (Some(_), false, true) => "flushed",
        (Some(_), false, false) => "found",
        (None, false, _) => "not_found",
    };
    Ok(KeyReport {
        key: escape(key),
        db,
        hash_slot,
        slot,
        slot_count: dir.slot_count,
        key_hash: format!("{hash:016x}"),
        meta_source: view.meta_source,
        checkpoint_seq: view.meta.checkpoint_seq,
        level: view.meta.level,
        split: view.meta.split,
        bucket,
        pages: chain.pages.iter().map(|read| PageReport::new(read, None, values)).collect(),
        chain_problem: chain.problem.map(|e| e.to_string()),
        cell: found.as_ref().map(|cell| CellReport::new(&view, cell, values)),
        record,
        wal: hits,
        wal_problem: wal.stop.map(|e| e.to_string()),
        status,
    })
}

/// Reads the record a cell points to (None for inline cells).
fn record_report(view: &SlotView, cell: &Cell, values: bool) -> Option<RecordReport> {
    match &cell.value {
        CellValue::Inline(_) => None,
        CellValue::Segment(location) => {
            let path = view.chunk_path(location.file);
            let mut report = RecordReport {
                path: path.clone(),
                offset: location.segment_offset as u64,
                status: "ok".into(),
                compressed: None,
                record_count: None,
                stored_len: None,
                raw_len: None,
                seq: None,
                envelope: None,
                value: None,
            };
            match view.read_segment(location.file, location.segment_offset as u64) {
                Ok(segment) => {
                    report.compressed = Some(segment.compressed);
                    report.record_count = Some(segment.record_count);
                    report.stored_len = Some(segment.stored_len);
                    report.raw_len = Some(segment.payload.len());
                    match seg::record_at(&segment.payload, location.record_offset as usize) {
                        Some(record)
                            if record.db == cell.db
                                && record.key == cell.key
                                && record.envelope.len() == location.envelope_len as usize =>
                        {
                            report.seq = Some(record.seq);
                            report.envelope = Some(envelope_info(record.envelope));
                            report.value = values.then(|| value_preview(record.envelope, view.dictionaries()));
                        }
                        _ => {
                            report.status =
                                format!("record at payload offset {} is not this key's value", location.record_offset)
                        }
                    }
                }
                Err(err) => report.status = err.to_string(),
            }
            Some(report)
        }
        CellValue::Big { id, envelope_len } => {
            let mut report = RecordReport {
                path: view.big_path(*id),
                offset: 0,
                status: "ok".into(),
                compressed: None,
                record_count: None,
                stored_len: None,
                raw_len: None,
                seq: None,
                envelope: None,
                value: None,
            };
            match view.read_big(*id) {
                Ok((seq, db, key, envelope))
                    if db == cell.db && key == cell.key && envelope.len() as u64 == *envelope_len =>
                {
                    report.seq = Some(seq);
                    report.envelope = Some(envelope_info(&envelope));
                    report.value = values.then(|| value_preview(&envelope, view.dictionaries()));
                }
                Ok(_) => report.status = "big value belongs to another key".into(),
                Err(err) => report.status = err.to_string(),
            }
            Some(report)
        }
    }
}
