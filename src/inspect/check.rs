//! `velo check`: verifies every file of a data directory (metadata, pages, segments, big values, WAL,
//! double-write batch) and the references between them (every cell names a record that exists, decodes
//! and belongs to it). Records no cell names are garbage (compaction's business), not damage. Shapes:
//! docs/tools.md §"check".
//!
//! Memory stays bounded by one slot: the cells' references are collected per slot as compact entries
//! (locations and key hashes, not keys), sorted, and matched while each chunk file is read once in order.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::engine::buckets::{bucket_of, PageFile, PageId};
use crate::engine::format::{self, FILE_HEADER_LEN};
use crate::engine::key::key_hash;
use crate::engine::page::{CellValue, PAGE_KIND_OVERFLOW, PAGE_KIND_PRIMARY, PAGE_SIZE};
use crate::engine::segment as seg;
use crate::engine::{dictionary, dwb, envelope, wal, Error};

use super::{error_location, read_file, DataDir, SlotView};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Bytes on disk are wrong, or a reference leads nowhere: a read may fail or data may be lost.
    Damage,
    /// Not damage, but worth knowing: a torn WAL tail (dropped on open: never acknowledged as durable),
    /// an interrupted checkpoint, leftover files the next open removes.
    Warning,
}

/// One finding.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Damage or warning.
    pub severity: Severity,
    /// The file concerned.
    pub file: PathBuf,
    /// The byte offset in it, when one applies.
    pub offset: Option<u64>,
    /// What is wrong.
    pub what: String,
}

/// Counts of what was verified.
#[derive(Debug, Default, Clone, Serialize)]
pub struct CheckStats {
    /// Slots checked.
    pub slots: u64,
    /// Files read.
    pub files: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Bucket pages verified.
    pub pages: u64,
    /// Cells verified.
    pub cells: u64,
    /// Segments verified.
    pub segments: u64,
    /// Segment records seen.
    pub records: u64,
    /// Records no cell points at (garbage for compaction).
    pub garbage_records: u64,
    /// Their bytes.
    pub garbage_bytes: u64,
    /// Big-value files verified.
    pub big_files: u64,
    /// Big-value files no cell points at.
    pub garbage_big_files: u64,
    /// WAL records verified.
    pub wal_records: u64,
    /// Dictionary files verified.
    pub dictionaries: u64,
}

/// The result of a check.
#[derive(Debug, Serialize)]
pub struct CheckReport {
    /// The data directory.
    pub dir: PathBuf,
    /// True when no damage was found (warnings allowed).
    pub clean: bool,
    /// Every finding, damage first, then by file and offset.
    pub findings: Vec<Finding>,
    /// What was verified.
    pub stats: CheckStats,
}

/// Bytes `check` will read (for a progress bar).
pub fn planned_bytes(dir: &DataDir, only: Option<usize>) -> u64 {
    let mut total = 0;
    for index in slots(dir, only) {
        if let Ok(entries) = std::fs::read_dir(dir.slot_dir(index)) {
            total += entries.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum::<u64>();
        }
    }
    total
}

fn slots(dir: &DataDir, only: Option<usize>) -> Vec<usize> {
    match only {
        Some(index) => vec![index],
        None => (0..dir.slot_count as usize).collect(),
    }
}

struct Checker<'a> {
    findings: Vec<Finding>,
    stats: CheckStats,
    progress: &'a dyn Fn(u64),
    /// Ids of the dictionary files that verified.
    dictionaries: HashSet<u32>,
}

impl Checker<'_> {
    /// Why an envelope cannot be decoded for want of a dictionary, if that is so.
    fn missing_dictionary(&self, env: &[u8]) -> Option<String> {
        envelope::dictionary_id(env)
            .filter(|&id| id > envelope::DICT_PLAIN_ZSTD && !self.dictionaries.contains(&id))
            .map(|id| format!("value uses dictionary {id}, which is missing or damaged"))
    }

    fn damage(&mut self, file: &Path, offset: Option<u64>, what: impl Into<String>) {
        self.findings.push(Finding { severity: Severity::Damage, file: file.to_path_buf(), offset, what: what.into() });
    }

    fn warning(&mut self, file: &Path, offset: Option<u64>, what: impl Into<String>) {
        self.findings.push(Finding {
            severity: Severity::Warning,
            file: file.to_path_buf(),
            offset,
            what: what.into(),
        });
    }

    /// Records an engine error as damage at the file and offset it names (or `fallback`).
    fn error(&mut self, fallback: &Path, err: &Error) {
        let (file, offset) = error_location(err);
        let what = match err {
            Error::Corrupt { what, .. } => what.clone(),
            Error::ChecksumMismatch { expected, actual, .. } => {
                format!("checksum mismatch: stored {expected:#010x}, computed {actual:#010x}")
            }
            other => other.to_string(),
        };
        self.damage(file.as_deref().unwrap_or(fallback), offset, what);
    }

    fn read(&mut self, path: &Path) -> Option<Vec<u8>> {
        match read_file(path) {
            Ok(bytes) => {
                self.stats.files += 1;
                self.stats.bytes += bytes.len() as u64;
                (self.progress)(bytes.len() as u64);
                Some(bytes)
            }
            Err(err) => {
                self.error(path, &err);
                None
            }
        }
    }
}

/// A cell's reference to a segment record, compact (no key bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct SegRef {
    file: u32,
    segment_offset: u32,
    record_offset: u32,
    db: u16,
    hash: u64,
    envelope_len: u32,
    page: PageId,
}

/// Verifies the directory (or one slot). `progress` is told of every byte read.
pub fn check(dir: &DataDir, only: Option<usize>, progress: &dyn Fn(u64)) -> CheckReport {
    let mut checker =
        Checker { findings: Vec::new(), stats: CheckStats::default(), progress, dictionaries: HashSet::new() };
    check_dictionaries(&mut checker, &dir.path);
    let meta_path = dir.path.join(crate::engine::meta::DIR_META_FILE);
    if let Err(what) = &dir.meta {
        let err = read_file(&meta_path)
            .and_then(|bytes| crate::engine::meta::DataDirMeta::decode(&bytes, &meta_path).map(|_| ()))
            .err();
        match err {
            Some(err) => checker.error(&meta_path, &err),
            None => checker.damage(&meta_path, None, what.clone()),
        }
    }
    if only.is_none() {
        check_txlog(&mut checker, &dir.path.join(crate::engine::txn::TXLOG_FILE));
        check_bulk(&mut checker, &dir.path);
    }
    let writer = writer_alive(&dir.path);
    for index in slots(dir, only) {
        checker.stats.slots += 1;
        check_slot_consistently(&mut checker, dir, index, writer);
    }
    let mut findings = checker.findings;
    findings.sort_by(|a, b| (a.severity, &a.file, a.offset).cmp(&(b.severity, &b.file, b.offset)));
    CheckReport {
        dir: dir.path.clone(),
        clean: !findings.iter().any(|f| f.severity == Severity::Damage),
        findings,
        stats: checker.stats,
    }
}

/// Verifies every dictionary file (`dict-N.vdct`); the ids that verify are what values may name.
fn check_dictionaries(c: &mut Checker<'_>, dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut names: Vec<String> =
        entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    for name in names {
        let path = dir.join(&name);
        if dictionary::parse_dict_file_name(&name).is_none() {
            if name.starts_with("dict-") && name.ends_with(".tmp") {
                c.warning(&path, None, "leftover of an interrupted dictionary install (the next open removes it)");
            }
            continue;
        }
        match read_file(&path).and_then(|bytes| {
            c.stats.files += 1;
            c.stats.bytes += bytes.len() as u64;
            (c.progress)(bytes.len() as u64);
            dictionary::decode_dict_file(&bytes, &path)
        }) {
            Ok(dict) => {
                c.stats.dictionaries += 1;
                c.dictionaries.insert(dict.id);
            }
            Err(err) => c.error(&path, &err),
        }
    }
}

/// Times a slot is checked again when a checkpoint of a running server changed it meanwhile.
const ATTEMPTS: usize = 5;

/// Slot metadata bytes, and the double-write batch's length and modification time.
type Fingerprint = (Option<Vec<u8>>, Option<(u64, Option<std::time::SystemTime>)>);

/// What changes when a checkpoint runs: the slot metadata (rewritten at its end) and the double-write
/// batch (written at its start, emptied at its end).
fn fingerprint(slot_dir: &Path) -> Fingerprint {
    let meta = std::fs::read(crate::engine::meta::slot_meta_path(slot_dir)).ok();
    let dwb = std::fs::metadata(slot_dir.join(dwb::DWB_FILE)).ok().map(|m| (m.len(), m.modified().ok()));
    (meta, dwb)
}

/// True when a process holds the directory's lock (a server runs on it). Read from `/proc/locks`, so the
/// tool takes no lock itself: the flock entry whose inode is the LOCK file's.
fn writer_alive(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(dir.join(crate::engine::meta::LOCK_FILE)) else { return false };
    let inode = meta.ino();
    std::fs::read_to_string("/proc/locks").is_ok_and(|locks| {
        locks.lines().any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(1) == Some(&"FLOCK")
                && fields.get(5).and_then(|id| id.rsplit(':').next()).and_then(|ino| ino.parse::<u64>().ok())
                    == Some(inode)
        })
    })
}

/// Checks a slot so that a checkpoint running beside it (a live server) is not mistaken for damage:
/// pages rewritten in place under an older metadata look inconsistent. The slot is checked again until
/// no checkpoint overlapped the check; if that never happens, its damage findings are reported as
/// warnings that say so.
fn check_slot_consistently(c: &mut Checker<'_>, dir: &DataDir, index: usize, writer: bool) {
    let slot_dir = dir.slot_dir(index);
    for attempt in 0..ATTEMPTS {
        let before = fingerprint(&slot_dir);
        let mut sub = Checker {
            findings: Vec::new(),
            stats: CheckStats::default(),
            progress: c.progress,
            dictionaries: c.dictionaries.clone(),
        };
        check_slot(&mut sub, dir, index);
        let after = fingerprint(&slot_dir);
        let in_progress = writer && after.1.is_some_and(|(len, _)| len > FILE_HEADER_LEN as u64);
        let settled = before == after && !in_progress;
        if settled || attempt + 1 == ATTEMPTS {
            if !settled {
                for finding in &mut sub.findings {
                    if finding.severity == Severity::Damage {
                        finding.severity = Severity::Warning;
                        finding.what =
                            format!("(read while a checkpoint rewrote the slot; run again) {}", finding.what);
                    }
                }
                c.warning(
                    &slot_dir,
                    None,
                    "the running server checkpointed this slot during every attempt to check it",
                );
            }
            c.findings.append(&mut sub.findings);
            merge(&mut c.stats, &sub.stats);
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

fn merge(total: &mut CheckStats, slot: &CheckStats) {
    total.files += slot.files;
    total.bytes += slot.bytes;
    total.pages += slot.pages;
    total.cells += slot.cells;
    total.segments += slot.segments;
    total.records += slot.records;
    total.garbage_records += slot.garbage_records;
    total.garbage_bytes += slot.garbage_bytes;
    total.big_files += slot.big_files;
    total.garbage_big_files += slot.garbage_big_files;
    total.wal_records += slot.wal_records;
}

fn check_slot(c: &mut Checker<'_>, dir: &DataDir, index: usize) {
    let slot_dir = dir.slot_dir(index);
    if !slot_dir.is_dir() {
        c.damage(&slot_dir, None, "slot directory is missing");
        return;
    }
    let dwb_path = slot_dir.join(dwb::DWB_FILE);
    if let Ok(bytes) = std::fs::read(&dwb_path) {
        c.stats.files += 1;
        c.stats.bytes += bytes.len() as u64;
        (c.progress)(bytes.len() as u64);
        match dwb::recover(&bytes, &dwb_path) {
            Ok(Some(batch)) => c.warning(
                &dwb_path,
                None,
                format!(
                    "complete double-write batch of an interrupted checkpoint ({} pages): the next open applies it",
                    batch.pages.len()
                ),
            ),
            Ok(None) => {}
            Err(err) => c.error(&dwb_path, &err),
        }
    }
    let view = match SlotView::open(index, &slot_dir) {
        Ok(view) => Some(view),
        Err(err) => {
            c.error(&crate::engine::meta::slot_meta_path(&slot_dir), &err);
            None
        }
    };
    let meta_path = crate::engine::meta::slot_meta_path(&slot_dir);
    if let Ok(len) = std::fs::metadata(&meta_path).map(|m| m.len()) {
        c.stats.files += 1;
        c.stats.bytes += len;
        (c.progress)(len);
    }
    let checkpoint_seq = view.as_ref().map_or(0, |v| v.meta.checkpoint_seq);
    check_wal(c, &slot_dir.join(wal::WAL_FILE));
    let Some(view) = view else {
        // Without metadata the references cannot be followed; still verify every file on its own.
        for (path, id) in list(&slot_dir, seg::parse_chunk_file_name) {
            if let Some(bytes) = c.read(&path) {
                let len = bytes.len() as u64;
                walk_chunk(c, &path, id, &bytes, len, &[], &mut Vec::new());
            }
        }
        for (path, _) in list(&slot_dir, seg::parse_big_file_name) {
            if let Some(bytes) = c.read(&path) {
                c.stats.big_files += 1;
                if let Err(err) = seg::decode_big_value(&bytes, &path) {
                    c.error(&path, &err);
                }
            }
        }
        return;
    };

    // Pages and cells.
    let meta = view.meta.clone();
    for file in [PageFile::Primary, PageFile::Overflow] {
        let path = view.page_path(file);
        let need = match file {
            PageFile::Primary => meta.bucket_count() + 1,
            PageFile::Overflow => meta.overflow_pages.max(1),
        };
        match read_head(&path, PAGE_SIZE) {
            Ok((head, len)) => {
                c.stats.files += 1;
                if let Err(err) = format::check_file_header(&head, format::MAGIC_BUCKETS, &path) {
                    c.error(&path, &err);
                } else if let Some(at) = head.iter().skip(FILE_HEADER_LEN).position(|&b| b != 0) {
                    // The header page is the file header and zeros (docs/format.md §"Key-bucket files").
                    c.damage(&path, Some((FILE_HEADER_LEN + at) as u64), "non-zero byte in the header page's padding");
                }
                if len < need * PAGE_SIZE as u64 {
                    c.damage(&path, Some(len), format!("file is {len} bytes, the bucket table needs {need} pages"));
                }
            }
            Err(err) => c.error(&path, &err),
        }
    }
    let free: HashSet<u64> = meta.free_overflow.iter().copied().collect();
    let mut used_overflow: HashMap<u64, u64> = HashMap::new();
    let mut seg_refs: Vec<SegRef> = Vec::new();
    let mut big_refs: HashMap<u64, (u16, u64, u64, PageId)> = HashMap::new();
    for bucket in 0..meta.bucket_count() {
        let chain = view.chain(bucket);
        if let Some(problem) = &chain.problem {
            c.error(&view.page_path(PageFile::Overflow), problem);
        }
        for (position, read) in chain.pages.iter().enumerate() {
            c.stats.pages += 1;
            c.stats.bytes += PAGE_SIZE as u64;
            (c.progress)(PAGE_SIZE as u64);
            let page = match &read.page {
                Ok(page) => page,
                Err(err) => {
                    c.error(&read.path, err);
                    continue;
                }
            };
            let at = Some(read.offset);
            if read.id.file == PageFile::Overflow {
                if let Some(other) = used_overflow.insert(read.id.number, bucket) {
                    c.damage(&read.path, at, format!("overflow page is in the chains of buckets {other} and {bucket}"));
                }
                if free.contains(&read.id.number) {
                    c.damage(&read.path, at, "overflow page is on the free list but in a chain");
                }
            }
            let want_kind = if position == 0 { PAGE_KIND_PRIMARY } else { PAGE_KIND_OVERFLOW };
            if page.kind != want_kind {
                c.damage(&read.path, at, format!("page kind {} where {want_kind} belongs", page.kind));
            }
            if page.bucket != bucket {
                c.damage(
                    &read.path,
                    at,
                    format!("page says bucket {}, it is in the chain of bucket {bucket}", page.bucket),
                );
            }
            for (n, cell) in page.cells.iter().enumerate() {
                c.stats.cells += 1;
                if bucket_of(cell.hash, meta.level, meta.split) != bucket {
                    c.damage(
                        &read.path,
                        at,
                        format!("cell {n} ({}) hashes to another bucket", super::escape(&cell.key)),
                    );
                }
                if cell.seq < meta.db_flush_seq.get(&cell.db).copied().unwrap_or(0) {
                    continue;
                }
                match &cell.value {
                    CellValue::Inline(env) => {
                        let kind = envelope::peek_kind(env).map_err(|e| format!("{e:?}"));
                        let len = envelope::value_len(env).map_err(|e| format!("{e:?}"));
                        if let Some(missing) = c.missing_dictionary(env) {
                            c.damage(&read.path, at, format!("cell {n}: {missing}"));
                        }
                        match (kind, len) {
                            (Ok(kind), Ok(_)) if kind == cell.kind => {}
                            (Ok(kind), Ok(_)) => c.damage(
                                &read.path,
                                at,
                                format!("cell {n}: inline value is a {kind:?}, the cell says {:?}", cell.kind),
                            ),
                            (Err(e), _) | (_, Err(e)) => {
                                c.damage(&read.path, at, format!("cell {n}: inline value is malformed: {e}"))
                            }
                        }
                    }
                    CellValue::Segment(l) => seg_refs.push(SegRef {
                        file: l.file,
                        segment_offset: l.segment_offset,
                        record_offset: l.record_offset,
                        db: cell.db,
                        hash: cell.hash,
                        envelope_len: l.envelope_len,
                        page: read.id,
                    }),
                    CellValue::Big { id, envelope_len } => {
                        big_refs.insert(*id, (cell.db, cell.hash, *envelope_len, read.id));
                    }
                }
            }
        }
    }

    // Chunk files, in id order, each read once; references matched segment by segment.
    seg_refs.sort_unstable();
    let on_disk: BTreeSet<u32> = list(&slot_dir, seg::parse_chunk_file_name).into_iter().map(|(_, id)| id).collect();
    let mut matched = vec![false; seg_refs.len()];
    for (&id, chunk) in &meta.chunk_files {
        let path = view.chunk_path(id);
        if !on_disk.contains(&id) {
            if chunk.committed_len > FILE_HEADER_LEN as u64 {
                c.damage(
                    &path,
                    None,
                    format!("chunk file is missing (the metadata commits {} bytes)", chunk.committed_len),
                );
            }
            continue;
        }
        let Some(bytes) = c.read(&path) else { continue };
        if (bytes.len() as u64) < chunk.committed_len {
            c.damage(
                &path,
                Some(bytes.len() as u64),
                format!("file is {} bytes, the metadata commits {}", bytes.len(), chunk.committed_len),
            );
        }
        let start = seg_refs.partition_point(|r| r.file < id);
        let end = seg_refs.partition_point(|r| r.file <= id);
        let mut hits = vec![false; end - start];
        walk_chunk(c, &path, id, &bytes, chunk.committed_len, &seg_refs[start..end], &mut hits);
        for (flag, hit) in matched[start..end].iter_mut().zip(hits) {
            *flag = hit;
        }
        if bytes.len() as u64 > chunk.committed_len.max(FILE_HEADER_LEN as u64) {
            c.warning(
                &path,
                Some(chunk.committed_len),
                format!(
                    "{} bytes past the committed length (an unfinished checkpoint; dropped on open)",
                    bytes.len() as u64 - chunk.committed_len
                ),
            );
        }
    }
    for id in on_disk.iter().filter(|id| !meta.chunk_files.contains_key(id)) {
        c.warning(&view.chunk_path(*id), None, "chunk file the metadata does not list (removed on the next open)");
    }
    // A reference whose segment never decoded at its offset.
    let mut reported = HashSet::new();
    for (r, _) in seg_refs.iter().zip(&matched).filter(|(_, hit)| !**hit) {
        if meta.chunk_files.contains_key(&r.file) && !reported.insert((r.file, r.segment_offset)) {
            continue;
        }
        let page_path = view.page_path(r.page.file);
        c.damage(
            &page_path,
            Some(r.page.number * PAGE_SIZE as u64),
            format!(
                "a cell points to {} segment {} record {}, which does not exist or does not verify",
                seg::chunk_file_name(r.file),
                r.segment_offset,
                r.record_offset
            ),
        );
    }

    // Big values.
    let pending: HashSet<&str> = meta.pending_deletes.iter().map(String::as_str).collect();
    let bigs = list(&slot_dir, seg::parse_big_file_name);
    let present: HashSet<u64> = bigs.iter().map(|(_, id)| *id).collect();
    for (path, id) in bigs {
        let Some(bytes) = c.read(&path) else { continue };
        c.stats.big_files += 1;
        match seg::decode_big_value(&bytes, &path) {
            Ok((_, db, key, env)) => match big_refs.get(&id) {
                Some(&(cell_db, hash, len, page)) => {
                    if cell_db != db || key_hash(db, &key) != hash || env.len() as u64 != len {
                        c.damage(
                            &path,
                            Some(FILE_HEADER_LEN as u64),
                            "big value belongs to another key than the cell naming it",
                        );
                    }
                    let _ = page;
                }
                None => {
                    c.stats.garbage_big_files += 1;
                    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                    if !pending.contains(name) && id <= checkpoint_seq {
                        c.warning(
                            &path,
                            None,
                            "big-value file no cell points at (removed by a later checkpoint or open)",
                        );
                    }
                }
            },
            Err(err) => {
                if big_refs.contains_key(&id) {
                    c.error(&path, &err)
                } else {
                    c.warning(&path, None, format!("unreferenced big-value file does not decode: {err}"))
                }
            }
        }
    }
    for (id, (_, _, _, page)) in &big_refs {
        if !present.contains(id) {
            c.damage(
                &view.page_path(page.file),
                Some(page.number * PAGE_SIZE as u64),
                format!("a cell points to {}, which is missing", seg::big_file_name(*id)),
            );
        }
    }
}

/// Walks a chunk file's segments up to `committed_len`, matching `refs` (sorted, this file's) and
/// setting `hits` for those that verify.
fn walk_chunk(
    c: &mut Checker<'_>,
    path: &Path,
    id: u32,
    bytes: &[u8],
    committed_len: u64,
    refs: &[SegRef],
    hits: &mut [bool],
) {
    let _ = id;
    if let Err(err) = format::check_file_header(bytes, format::MAGIC_CHUNK, path) {
        c.error(path, &err);
        return;
    }
    let end = (committed_len as usize).min(bytes.len());
    let mut at = FILE_HEADER_LEN;
    while at < end {
        match seg::decode_segment(&bytes[at..end], path, at as u64) {
            Ok(Some(segment)) => {
                c.stats.segments += 1;
                let lo = refs.partition_point(|r| (r.segment_offset as usize) < at);
                let hi = refs.partition_point(|r| (r.segment_offset as usize) <= at);
                let mut live_offsets = HashSet::new();
                for (index, r) in refs.iter().enumerate().take(hi).skip(lo) {
                    match seg::record_at(&segment.payload, r.record_offset as usize) {
                        Some(record)
                            if record.db == r.db
                                && key_hash(record.db, record.key) == r.hash
                                && record.envelope.len() == r.envelope_len as usize =>
                        {
                            hits[index] = true;
                            live_offsets.insert(r.record_offset as usize);
                            if let Err(e) = envelope::value_len(record.envelope) {
                                c.damage(
                                    path,
                                    Some(at as u64),
                                    format!("record at payload offset {}: {e:?}", r.record_offset),
                                );
                            }
                            if let Some(missing) = c.missing_dictionary(record.envelope) {
                                c.damage(
                                    path,
                                    Some(at as u64),
                                    format!("record at payload offset {}: {missing}", r.record_offset),
                                );
                            }
                        }
                        _ => {}
                    }
                }
                if let Ok(records) = seg::records(&segment.payload, segment.record_count) {
                    for (offset, record) in records {
                        c.stats.records += 1;
                        if !live_offsets.contains(&offset) {
                            c.stats.garbage_records += 1;
                            c.stats.garbage_bytes += seg::record_len(record.key.len(), record.envelope.len()) as u64;
                        }
                    }
                }
                at += segment.encoded_len();
            }
            Ok(None) => {
                c.damage(path, Some(at as u64), "segment runs past the committed length");
                return;
            }
            Err(err) => {
                let cells = refs.iter().filter(|r| r.segment_offset as usize == at).count();
                let (_, offset) = error_location(&err);
                let mut what = match &err {
                    Error::Corrupt { what, .. } => what.clone(),
                    Error::ChecksumMismatch { expected, actual, .. } => {
                        format!("segment checksum mismatch: stored {expected:#010x}, computed {actual:#010x}")
                    }
                    other => other.to_string(),
                };
                if cells > 0 {
                    what.push_str(&format!(" ({cells} live values in it are unreadable)"));
                }
                c.damage(path, offset.or(Some(at as u64)), what);
                // Segment boundaries past a bad header are unknown: the rest of the file is not walked.
                return;
            }
        }
    }
}

/// The transaction log (docs/format.md §"Transaction log"): a bad header or a damaged record before valid
/// ones is damage; a torn last record (never synced, so never acknowledged) is a warning, as recovery
/// drops it.
fn check_txlog(c: &mut Checker<'_>, path: &Path) {
    if !path.exists() {
        return;
    }
    let Some(bytes) = c.read(path) else { return };
    match crate::engine::txn::decode_log(&bytes, path) {
        Ok((_, valid_end)) if valid_end < bytes.len() as u64 => c.warning(
            path,
            Some(valid_end),
            format!("torn commit record at the end ({} bytes; recovery drops it)", bytes.len() as u64 - valid_end),
        ),
        Ok(_) => {}
        Err(err) => c.error(path, &err),
    }
}

/// A bulk load's staging directory (docs/format.md §"Bulk load"): staged files without a commit file are
/// a load in progress or one that did not commit (the next read-write open removes them); a commit file
/// that decodes is a committed load the next read-write open moves into its slots (until then the slots
/// may look half old, half new); one that does not decode is damage.
fn check_bulk(c: &mut Checker<'_>, dir: &Path) {
    let staging = crate::engine::bulk::staging_dir(dir);
    if !staging.is_dir() {
        return;
    }
    let commit = staging.join(crate::engine::bulk::COMMIT_FILE);
    if !commit.exists() {
        c.warning(
            &staging,
            None,
            "staged files of a bulk load that has not committed (in progress, or interrupted: the next \
             read-write open removes them)",
        );
        return;
    }
    let Some(bytes) = c.read(&commit) else { return };
    match crate::engine::bulk::CommitPlan::decode(&bytes, &commit) {
        Ok(plan) => c.warning(
            &commit,
            None,
            format!(
                "committed bulk load of {} slot(s) not yet moved into place; the next read-write open finishes it",
                plan.slots.len()
            ),
        ),
        Err(err) => c.error(&commit, &err),
    }
}

fn check_wal(c: &mut Checker<'_>, path: &Path) {
    let Some(bytes) = c.read(path) else { return };
    match wal::replay(&bytes, path) {
        Ok(replay) => {
            c.stats.wal_records += replay.records.len() as u64;
            if let Some((offset, reason)) = replay.torn_tail {
                c.warning(
                    path,
                    Some(offset),
                    format!(
                        "torn tail ({reason}): {} bytes never synced, dropped on open",
                        bytes.len() as u64 - offset
                    ),
                );
            }
        }
        Err(err) => c.error(path, &err),
    }
}

/// The files of a slot directory whose names parse with `parse`, sorted by id.
fn list<T: Ord + Copy>(dir: &Path, parse: fn(&str) -> Option<T>) -> Vec<(PathBuf, T)> {
    let mut out: Vec<(PathBuf, T)> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    let name = e.file_name();
                    parse(name.to_str()?).map(|id| (e.path(), id))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_by_key(|(_, id)| *id);
    out
}

/// The first `want` bytes (fewer if the file is shorter) and the length of a file.
fn read_head(path: &Path, want: usize) -> Result<(Vec<u8>, u64), Error> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
    let len = file.metadata().map_err(|e| Error::io("stat", path, e))?.len();
    let mut head = vec![0u8; (len as usize).min(want)];
    file.read_exact_at(&mut head, 0).map_err(|e| Error::io("read", path, e))?;
    Ok((head, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_directory_lock_is_seen_without_taking_it() {
        use std::os::fd::AsRawFd;
        let dir = tempfile::tempdir().unwrap();
        let lock = std::fs::File::create(dir.path().join(crate::engine::meta::LOCK_FILE)).unwrap();
        assert!(!writer_alive(dir.path()));
        // SAFETY: flock on a descriptor this test owns.
        assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }, 0);
        assert!(writer_alive(dir.path()));
        drop(lock);
        assert!(!writer_alive(dir.path()));
    }
}
