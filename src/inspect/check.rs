//! `velo check`: verifies every file of a data directory (metadata, pages, segments, big values, WAL,
//! double-write batch) and the references between them (every cell names a record that exists, decodes
//! and belongs to it). Records no cell names are garbage (compaction's business), not damage. Shapes:
//! docs/tools.md §"check".
//!
//! Memory stays bounded by one slot: the cells' references are collected per slot as compact entries
//! (locations and key hashes, not keys), grouped per chunk file in bins of segment offset, and matched
//! while each chunk file is read once in order.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::engine::buckets::{bucket_of, PageFile, PageId};
use crate::engine::format::{self, FILE_HEADER_LEN};
use crate::engine::key::key_hash;
use crate::engine::page::{self, CellValueRef, PAGE_KIND_OVERFLOW, PAGE_KIND_PRIMARY, PAGE_SIZE};
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

/// A progress callback, told of every byte read (from several threads).
pub type Progress<'a> = &'a (dyn Fn(u64) + Sync);

struct Checker<'a> {
    findings: Vec<Finding>,
    stats: CheckStats,
    progress: Progress<'a>,
    /// Ids of the dictionary files that verified.
    dictionaries: HashSet<u32>,
    /// Those dictionaries, prepared: segments compressed with one are decompressed with it.
    dict_map: Arc<dictionary::DictionaryMap>,
}

impl Checker<'_> {
    /// A checker for a second walk over pages already checked: the same dictionaries, its own findings
    /// and statistics (thrown away) and no progress.
    fn quiet(&self) -> Checker<'static> {
        Checker {
            findings: Vec::new(),
            stats: CheckStats::default(),
            progress: &|_| {},
            dictionaries: self.dictionaries.clone(),
            dict_map: self.dict_map.clone(),
        }
    }

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
        let mut bytes = Vec::new();
        self.read_into(path, &mut bytes).then_some(bytes)
    }

    /// Opens a chunk file for [`walk_chunk`] and counts its bytes as read (it reads them all, through a
    /// window).
    fn open_chunk(&mut self, path: &Path) -> Option<(File, u64)> {
        match File::open(path).and_then(|file| Ok((file.metadata()?.len(), file))) {
            Ok((len, file)) => {
                self.stats.files += 1;
                self.stats.bytes += len;
                (self.progress)(len);
                Some((file, len))
            }
            Err(e) => {
                self.error(path, &Error::io("read", path, e));
                None
            }
        }
    }

    /// Reads a whole file into `buf` (its allocation reused: chunk files are read one after another into
    /// the same buffer, so the kernel does not hand out and zero fresh pages for each).
    fn read_into(&mut self, path: &Path, buf: &mut Vec<u8>) -> bool {
        buf.clear();
        let read = File::open(path).and_then(|mut file| {
            // Sized from the file's length: one allocation, instead of read_to_end's doublings (each a
            // copy into fresh pages the kernel zeroes).
            let len = file.metadata()?.len();
            buf.reserve(usize::try_from(len).unwrap_or(0).saturating_add(1));
            file.read_to_end(buf)
        });
        match read {
            Ok(len) => {
                self.stats.files += 1;
                self.stats.bytes += len as u64;
                (self.progress)(len as u64);
                true
            }
            Err(e) => {
                self.error(path, &Error::io("read", path, e));
                false
            }
        }
    }
}

/// Buffers a checking thread reuses from slot to slot.
struct Scratch {
    /// A window on a chunk file (see [`Window`]).
    file: Vec<u8>,
    /// A segment's decompressed payload.
    payload: Vec<u8>,
    /// A run of primary pages read at once.
    block: Vec<u8>,
    /// The slot's index of segment references.
    refs: RefIndex,
    /// One chunk file's references, in bins of segment offset (see [`bin_by_segment`]).
    binned: Vec<SegRef>,
    /// Where each bin of [`bin_by_segment`] ends.
    bins: Vec<u32>,
    /// Its bound in entries (see [`REF_BUDGET`]).
    budget: usize,
    /// Indices (into `binned`) of the references into the segment being matched.
    picked: Vec<u32>,
    /// Offsets of a decoded payload's records.
    starts: Vec<u32>,
    /// Which of them a reference hits.
    live: Vec<bool>,
    /// Record number by payload offset (a sparse set: an entry counts only when `starts` agrees).
    by_offset: Vec<u16>,
}

/// The most segment references a slot's index holds at once (24 bytes each: 48 MiB per checking
/// thread).
pub const REF_BUDGET: usize = 2 << 20;

/// A cell's reference to a segment record, compact (24 bytes, no key bytes): the slot's index of
/// references is made of these, binned by location and matched while each chunk file is read once. The
/// database is not kept (the key hash is seeded with it), nor the page holding the cell: the pages are
/// walked again to name it only when a reference fails ([`locate_failed`]), which keeps the entries that
/// the index moves small.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct SegRef {
    file: u32,
    segment_offset: u32,
    record_offset: u32,
    envelope_len: u32,
    hash: u64,
}

impl SegRef {
    /// Sort key: chunk file, segment offset, record offset.
    fn order(&self) -> u128 {
        (self.file as u128) << 64 | (self.segment_offset as u128) << 32 | self.record_offset as u128
    }
}

/// The slot's index of segment references, grouped by chunk file while the pages are walked: each
/// file's group is put in bins of segment offset on its own when the file is read ([`bin_by_segment`]),
/// a few MB that stay in the CPU caches, instead of one sort of the whole slot's index (15% of a check's
/// CPU time).
#[derive(Default)]
struct RefIndex {
    /// The metadata's chunk file ids, ascending: `groups[i]` holds the references into `ids[i]`.
    ids: Vec<u32>,
    /// `ids` by `id - ids[0]` when the ids span a short range (they are nearly consecutive): the group
    /// of a reference without a binary search.
    dense: Vec<u32>,
    /// The references, per chunk file (allocations reused from slot to slot).
    groups: Vec<Vec<SegRef>>,
    /// References counted per group, collected or not (the budget may stop the collection).
    counts: Vec<usize>,
    /// References into files the metadata does not list (all of them fail).
    stray: Vec<SegRef>,
    /// Their counts per file id.
    stray_counts: BTreeMap<u32, usize>,
    /// References collected.
    len: usize,
    /// True when the budget stopped the collection.
    overflowed: bool,
}

/// Longest span of chunk file ids looked up through [`RefIndex::dense`].
const DENSE_SPAN: u32 = 1 << 16;

impl RefIndex {
    /// Empties the index for a slot whose metadata lists the chunk files `ids` (ascending).
    fn reset(&mut self, ids: impl Iterator<Item = u32>) {
        self.ids.clear();
        self.ids.extend(ids);
        let n = self.ids.len();
        if self.groups.len() < n {
            self.groups.resize_with(n, Vec::new);
        }
        for group in &mut self.groups {
            group.clear();
        }
        self.counts.clear();
        self.counts.resize(n, 0);
        self.stray.clear();
        self.stray_counts.clear();
        self.dense.clear();
        if let (Some(&first), Some(&last)) = (self.ids.first(), self.ids.last()) {
            if last - first < DENSE_SPAN {
                self.dense.resize((last - first + 1) as usize, u32::MAX);
                for (i, &id) in self.ids.iter().enumerate() {
                    self.dense[(id - first) as usize] = i as u32;
                }
            }
        }
        self.len = 0;
        self.overflowed = false;
    }

    /// Gives each group (emptied by [`Self::reset`]) room for the `needs` of the listed files, in order.
    /// The allocations kept from earlier slots are handed out largest to the largest need: growing the
    /// group at the same position instead (`Vec::reserve`) copied it into fresh pages the kernel zeroes,
    /// whenever a later slot's file there was larger, while a larger allocation sat unused at another
    /// position (peak RSS ~150 MB instead of ~110). A need no kept allocation meets gets a new one, the
    /// old freed first (nothing to copy: the group is empty).
    fn presize(&mut self, needs: impl Iterator<Item = usize>) {
        let needs: Vec<usize> = needs.collect();
        let mut by_need: Vec<usize> = (0..needs.len()).collect();
        by_need.sort_by_key(|&i| std::cmp::Reverse(needs[i]));
        let mut pool = std::mem::take(&mut self.groups);
        pool.sort_by_key(|group| std::cmp::Reverse(group.capacity()));
        pool.resize_with(pool.len().max(needs.len()), Vec::new);
        let spare = pool.split_off(needs.len());
        let mut groups: Vec<Vec<SegRef>> = Vec::with_capacity(needs.len() + spare.len());
        groups.resize_with(needs.len(), Vec::new);
        for (&i, group) in by_need.iter().zip(pool) {
            groups[i] = group;
        }
        groups.extend(spare);
        for (group, &need) in groups.iter_mut().zip(&needs) {
            if group.capacity() < need {
                *group = Vec::new();
                group.reserve_exact(need);
            }
        }
        self.groups = groups;
    }

    /// The group of chunk file `file`, if the metadata lists it.
    fn group_of(&self, file: u32) -> Option<usize> {
        if !self.dense.is_empty() {
            let at = file.wrapping_sub(self.ids[0]) as usize;
            return self.dense.get(at).filter(|&&g| g != u32::MAX).map(|&g| g as usize);
        }
        self.ids.binary_search(&file).ok()
    }

    /// Counts a reference and keeps it while under `budget`.
    fn add(&mut self, r: SegRef, budget: usize) {
        let group = self.group_of(r.file);
        match group {
            Some(g) => self.counts[g] += 1,
            None => *self.stray_counts.entry(r.file).or_default() += 1,
        }
        if self.len >= budget {
            self.overflowed = true;
            return;
        }
        self.len += 1;
        match group {
            Some(g) => self.groups[g].push(r),
            None => self.stray.push(r),
        }
    }

    /// References counted per chunk file id (collected or not).
    fn per_file(&self) -> BTreeMap<u32, usize> {
        let mut out = self.stray_counts.clone();
        for (&id, &n) in self.ids.iter().zip(&self.counts) {
            if n > 0 {
                *out.entry(id).or_default() += n;
            }
        }
        out
    }
}

/// Bytes of segment offset per bin of [`bin_by_segment`]: a third of a segment's stored length, so a bin
/// holds the references of at most one or two segments and the bin ends of a 16 MiB file (64 KiB) stay
/// in the CPU's caches.
const BIN_SHIFT: u32 = 10;
/// The most bins of [`bin_by_segment`] (a metadata that commits an absurd length does not size the counts).
const BINS_MAX: u64 = 1 << 20;

/// Puts one chunk file's references into bins of segment offset, in `out`: counted, then placed (a pass
/// that writes to a few thousand places in a buffer that stays in the caches). `bins[b]` ends up where
/// bin `b` ends (it starts where bin `b - 1` ends). Within a bin the references stay in the order they
/// came: [`match_records`] looks each up in its segment's records, which a sort of each bin by record
/// offset (5% of a check's CPU time) only served to walk in step. `committed_len` sizes the bins (an
/// offset past it lands in the last one).
fn bin_by_segment(refs: &[SegRef], committed_len: u64, out: &mut Vec<SegRef>, bins: &mut Vec<u32>) {
    out.clear();
    let count = ((committed_len >> BIN_SHIFT) + 1).min(BINS_MAX) as usize;
    bins.clear();
    bins.resize(count + 1, 0);
    for r in refs {
        bins[bin_of(r.segment_offset, count) + 1] += 1;
    }
    for i in 1..=count {
        bins[i] += bins[i - 1];
    }
    // `bins[b]` is now where bin `b` starts; it is advanced as the bin fills.
    out.resize(refs.len(), SegRef { file: 0, segment_offset: 0, record_offset: 0, envelope_len: 0, hash: 0 });
    for r in refs {
        let b = bin_of(r.segment_offset, count);
        out[bins[b] as usize] = *r;
        bins[b] += 1;
    }
    // Bin `b` now ends at `bins[b]`.
    bins.truncate(count);
}

/// The bin of [`bin_by_segment`] holding the references to the segment at `segment_offset`, of `count`.
fn bin_of(segment_offset: u32, count: usize) -> usize {
    ((segment_offset >> BIN_SHIFT) as usize).min(count - 1)
}

/// Verifies the directory (or one slot). `progress` is told of every byte read.
pub fn check(dir: &DataDir, only: Option<usize>, progress: Progress<'_>) -> CheckReport {
    check_with_budget(dir, only, progress, REF_BUDGET)
}

/// [`check`] with the slot's index of segment references bounded by `ref_budget` entries instead of
/// [`REF_BUDGET`] (tests pass a tiny bound to exercise the batched walk).
pub fn check_with_budget(dir: &DataDir, only: Option<usize>, progress: Progress<'_>, ref_budget: usize) -> CheckReport {
    let mut checker = Checker {
        findings: Vec::new(),
        stats: CheckStats::default(),
        progress,
        dictionaries: HashSet::new(),
        dict_map: Arc::default(),
    };
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
    // Slots are independent: one thread per core takes the next slot (each slot's memory is bounded, so
    // the whole is bounded by the number of threads).
    let slots = slots(dir, only);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(slots.len()).max(1);
    let next = AtomicUsize::new(0);
    let dictionaries = &checker.dictionaries;
    let dict_map = &checker.dict_map;
    let done: Mutex<Vec<(usize, Vec<Finding>, CheckStats)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut scratch = Scratch {
                    file: Vec::new(),
                    payload: Vec::new(),
                    block: Vec::new(),
                    refs: RefIndex::default(),
                    binned: Vec::new(),
                    bins: Vec::new(),
                    budget: ref_budget.max(1),
                    picked: Vec::new(),
                    starts: Vec::new(),
                    live: Vec::new(),
                    by_offset: Vec::new(),
                };
                loop {
                    let at = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&index) = slots.get(at) else { break };
                    let mut sub = Checker {
                        findings: Vec::new(),
                        stats: CheckStats::default(),
                        progress,
                        dictionaries: dictionaries.clone(),
                        dict_map: dict_map.clone(),
                    };
                    check_slot_consistently(&mut sub, dir, index, writer, &mut scratch);
                    done.lock().unwrap_or_else(|e| e.into_inner()).push((index, sub.findings, sub.stats));
                }
            });
        }
    });
    let mut done = done.into_inner().unwrap_or_else(|e| e.into_inner());
    done.sort_by_key(|(index, _, _)| *index);
    for (_, mut findings, stats) in done {
        checker.stats.slots += 1;
        checker.findings.append(&mut findings);
        merge(&mut checker.stats, &stats);
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
                // A dictionary zstd rejects cannot decode anything: segments naming it are reported.
                if c.dict_map.insert(dict.id, &dict.family, dict.bytes).is_ok() {
                    c.dictionaries.insert(dict.id);
                } else {
                    c.damage(&path, None, "zstd rejects the dictionary");
                }
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
fn check_slot_consistently(c: &mut Checker<'_>, dir: &DataDir, index: usize, writer: bool, scratch: &mut Scratch) {
    let slot_dir = dir.slot_dir(index);
    for attempt in 0..ATTEMPTS {
        let before = fingerprint(&slot_dir);
        let mut sub = Checker {
            findings: Vec::new(),
            stats: CheckStats::default(),
            progress: c.progress,
            dictionaries: c.dictionaries.clone(),
            dict_map: c.dict_map.clone(),
        };
        check_slot(&mut sub, dir, index, scratch);
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
    total.dictionaries += slot.dictionaries;
}

fn check_slot(c: &mut Checker<'_>, dir: &DataDir, index: usize, scratch: &mut Scratch) {
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
    // The second WAL file (missing in directories written before it existed).
    let second = slot_dir.join(wal::WAL_FILE_2);
    if second.exists() {
        check_wal(c, &second);
    }
    let Some(view) = view else {
        // Without metadata the references cannot be followed; still verify every file on its own.
        for (path, _) in list(&slot_dir, seg::parse_chunk_file_name) {
            if let Some((file, len)) = c.open_chunk(&path) {
                let mut file_buf = std::mem::take(&mut scratch.file);
                let mut window = Window::new(&file, len, &mut file_buf);
                scratch.bins.clear();
                walk_chunk(c, &path, &mut window, len, &[], &mut [], scratch);
                scratch.file = file_buf;
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
    // The slot's index of references (24 bytes each) is kept under REF_BUDGET entries: when the cells
    // hold more, the chunk files are taken in batches of ids whose references fit, the pages walked again
    // (quietly) for each batch.
    let mut big_refs: HashMap<u64, (u16, u64, u64, PageId)> = HashMap::new();
    let mut index = std::mem::take(&mut scratch.refs);
    index.reset(meta.chunk_files.keys().copied());
    let budget = scratch.budget;
    // Each file's group sized from its share of the committed bytes and the slot's key count (an upper
    // bound of its references): growing by doubling faulted fresh, kernel-zeroed pages in at every step
    // (12% of a check's CPU time). The allocations are kept from slot to slot (see `RefIndex::presize`).
    let keys: u64 = meta.key_counts.values().fold(0u64, |sum, &n| sum.saturating_add(n)).min(budget as u64);
    let committed: u64 = meta.chunk_files.values().map(|f| f.committed_len).sum::<u64>().max(1);
    index.presize(meta.chunk_files.values().map(|chunk| {
        let share = (keys as u128 * chunk.committed_len as u128 / committed as u128) as usize;
        share + share / 16 + 64
    }));
    scan_pages(c, &view, &mut scratch.block, &mut big_refs, &mut |r, _| index.add(r, budget));
    let mut batches: Vec<std::ops::RangeInclusive<u32>> = Vec::new();
    if index.overflowed {
        let (mut first, mut count) = (0u32, 0usize);
        for (&file, &n) in &index.per_file() {
            if count > 0 && count + n > budget {
                batches.push(first..=file - 1);
                (first, count) = (file, 0);
            }
            count += n;
        }
        batches.push(first..=u32::MAX);
    } else {
        batches.push(0..=u32::MAX);
    }

    // Chunk files, in id order, each read once; references matched segment by segment.
    let on_disk: BTreeSet<u32> = list(&slot_dir, seg::parse_chunk_file_name).into_iter().map(|(_, id)| id).collect();
    let mut reported = HashSet::new();
    let mut failed: Vec<SegRef> = Vec::new();
    let mut hits: Vec<bool> = Vec::new();
    // Over budget, the first walk collected only part of the references: walk again even for one batch.
    let batched = index.overflowed;
    for files in batches {
        if batched {
            index.reset(meta.chunk_files.keys().copied());
            let mut quiet = c.quiet();
            let mut bigs = HashMap::new();
            scan_pages(&mut quiet, &view, &mut scratch.block, &mut bigs, &mut |r, _| {
                if files.contains(&r.file) {
                    index.add(r, usize::MAX);
                }
            });
        }
        failed.clear();
        for (&id, chunk) in meta.chunk_files.range(files) {
            let Some(group) = index.group_of(id) else { continue };
            let path = view.chunk_path(id);
            let mut binned = std::mem::take(&mut scratch.binned);
            bin_by_segment(&index.groups[group], chunk.committed_len, &mut binned, &mut scratch.bins);
            let refs = &binned;
            hits.clear();
            hits.resize(refs.len(), false);
            if !on_disk.contains(&id) {
                if chunk.committed_len > FILE_HEADER_LEN as u64 {
                    c.damage(
                        &path,
                        None,
                        format!("chunk file is missing (the metadata commits {} bytes)", chunk.committed_len),
                    );
                }
            } else if let Some((file, size)) = c.open_chunk(&path) {
                if size < chunk.committed_len {
                    c.damage(
                        &path,
                        Some(size),
                        format!("file is {size} bytes, the metadata commits {}", chunk.committed_len),
                    );
                }
                let mut file_buf = std::mem::take(&mut scratch.file);
                let mut window = Window::new(&file, size, &mut file_buf);
                walk_chunk(c, &path, &mut window, chunk.committed_len, refs, &mut hits, scratch);
                scratch.file = file_buf;
                if size > chunk.committed_len.max(FILE_HEADER_LEN as u64) {
                    c.warning(
                        &path,
                        Some(chunk.committed_len),
                        format!(
                            "{} bytes past the committed length (an unfinished checkpoint; dropped on open)",
                            size - chunk.committed_len
                        ),
                    );
                }
            }
            failed.extend(refs.iter().zip(&hits).filter(|(_, hit)| !**hit).map(|(r, _)| *r));
            scratch.binned = binned;
        }
        failed.extend_from_slice(&index.stray);
        if failed.is_empty() {
            continue;
        }
        // A reference whose segment never decoded at its offset, named at the page of its cell.
        failed.sort_by_key(SegRef::order);
        let mut pages = locate_failed(c, &view, &mut scratch.block, &failed);
        for r in &failed {
            if meta.chunk_files.contains_key(&r.file) && !reported.insert((r.file, r.segment_offset)) {
                continue;
            }
            let Some(page) = pages.get_mut(r).and_then(|pages| pages.pop_front()) else { continue };
            c.damage(
                &view.page_path(page.file),
                Some(page.number * PAGE_SIZE as u64),
                format!(
                    "a cell points to {} segment {} record {}, which does not exist or does not verify",
                    seg::chunk_file_name(r.file),
                    r.segment_offset,
                    r.record_offset
                ),
            );
        }
    }
    scratch.refs = index;
    for id in on_disk.iter().filter(|id| !meta.chunk_files.contains_key(id)) {
        c.warning(&view.chunk_path(*id), None, "chunk file the metadata does not list (removed on the next open)");
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

/// Walks every bucket chain of a slot: verifies each page and cell (findings and statistics into `c`),
/// notes big-value references in `big_refs` and hands every segment reference to `on_segment` with the
/// page holding its cell.
fn scan_pages(
    c: &mut Checker<'_>,
    view: &SlotView,
    block: &mut Vec<u8>,
    big_refs: &mut HashMap<u64, (u16, u64, u64, PageId)>,
    on_segment: &mut impl FnMut(SegRef, PageId),
) {
    let meta = &view.meta;
    let free: HashSet<u64> = meta.free_overflow.iter().copied().collect();
    let mut used_overflow: HashMap<u64, u64> = HashMap::new();
    let mut pages = PageSource::new(view, std::mem::take(block));
    let paths = [view.page_path(PageFile::Primary), view.page_path(PageFile::Overflow)];
    let mut buf = [0u8; PAGE_SIZE];
    let mut seen: Vec<u64> = Vec::new();
    let mut unreported = 0u64;
    for bucket in 0..meta.bucket_count() {
        let mut id = PageId::bucket(bucket);
        let mut position = 0usize;
        seen.clear();
        loop {
            let path = &paths[(id.file == PageFile::Overflow) as usize];
            let offset = id.number.saturating_mul(PAGE_SIZE as u64);
            c.stats.pages += 1;
            c.stats.bytes += PAGE_SIZE as u64;
            unreported += PAGE_SIZE as u64;
            if unreported >= 1 << 20 {
                (c.progress)(unreported);
                unreported = 0;
            }
            let header = pages.read(id, path, offset, &mut buf).and_then(|()| page::decode_header(&buf, path, offset));
            let next = match header {
                Ok(header) => {
                    check_page(c, &free, &mut used_overflow, bucket, position, id, path, &header);
                    for (n, cell) in page::cell_refs(&buf).enumerate() {
                        c.stats.cells += 1;
                        let hash = key_hash(cell.db, cell.key);
                        if bucket_of(hash, meta.level, meta.split) != bucket {
                            c.damage(
                                path,
                                Some(offset),
                                format!("cell {n} ({}) hashes to another bucket", super::escape(cell.key)),
                            );
                        }
                        if cell.seq < meta.db_flush_seq.get(&cell.db).copied().unwrap_or(0) {
                            continue;
                        }
                        match cell.value {
                            CellValueRef::Inline(env) => {
                                let kind = envelope::peek_kind(env).map_err(|e| format!("{e:?}"));
                                let len = envelope::value_len(env).map_err(|e| format!("{e:?}"));
                                if let Some(missing) = c.missing_dictionary(env) {
                                    c.damage(path, Some(offset), format!("cell {n}: {missing}"));
                                }
                                match (kind, len) {
                                    (Ok(kind), Ok(_)) if kind == cell.kind => {}
                                    (Ok(kind), Ok(_)) => c.damage(
                                        path,
                                        Some(offset),
                                        format!("cell {n}: inline value is a {kind:?}, the cell says {:?}", cell.kind),
                                    ),
                                    (Err(e), _) | (_, Err(e)) => c.damage(
                                        path,
                                        Some(offset),
                                        format!("cell {n}: inline value is malformed: {e}"),
                                    ),
                                }
                            }
                            CellValueRef::Segment(l) => on_segment(
                                SegRef {
                                    file: l.file,
                                    segment_offset: l.segment_offset,
                                    record_offset: l.record_offset,
                                    envelope_len: l.envelope_len,
                                    hash,
                                },
                                id,
                            ),
                            CellValueRef::Big { id: big, envelope_len } => {
                                big_refs.insert(big, (cell.db, hash, envelope_len, id));
                            }
                        }
                    }
                    header.next_overflow
                }
                Err(err) => {
                    c.error(path, &err);
                    0
                }
            };
            if next == 0 {
                break;
            }
            if next >= meta.overflow_pages.max(1) || seen.contains(&next) {
                let what = if next >= meta.overflow_pages {
                    format!("overflow link {next} is past the {} overflow pages", meta.overflow_pages)
                } else {
                    format!("overflow link {next} closes a cycle")
                };
                c.damage(path, Some(offset), what);
                break;
            }
            seen.push(next);
            id = PageId::overflow(next);
            position += 1;
        }
    }
    (c.progress)(unreported);
    *block = pages.into_block();
}

/// The pages of the cells holding the references `failed` (a reference may be held by several cells:
/// their pages in walk order), found by walking the slot's pages again, quietly: the index does not
/// keep them (see [`SegRef`]), and a failed reference is rare.
fn locate_failed(
    c: &Checker<'_>,
    view: &SlotView,
    block: &mut Vec<u8>,
    failed: &[SegRef],
) -> HashMap<SegRef, std::collections::VecDeque<PageId>> {
    let mut pages: HashMap<SegRef, std::collections::VecDeque<PageId>> =
        failed.iter().map(|r| (*r, Default::default())).collect();
    let mut quiet = c.quiet();
    scan_pages(&mut quiet, view, block, &mut HashMap::new(), &mut |r, page| {
        if let Some(list) = pages.get_mut(&r) {
            list.push_back(page);
        }
    });
    pages
}

/// Bytes of a chunk file read at a time by [`walk_chunk`]: a window small enough to stay in the CPU
/// caches between the read and the checks (the whole 16 MiB file was copied to memory first, then read
/// back from it).
const CHUNK_WINDOW: usize = 1 << 20;

/// A window on a file: its bytes `[at, at + len)` are in `buf` (reused from file to file).
pub(super) struct Window<'a> {
    file: &'a File,
    /// The file's size when it was opened.
    size: u64,
    buf: &'a mut Vec<u8>,
    at: u64,
    len: usize,
}

impl<'a> Window<'a> {
    pub(super) fn new(file: &'a File, size: u64, buf: &'a mut Vec<u8>) -> Self {
        Window { file, size, buf, at: 0, len: 0 }
    }

    /// The file's bytes `[from, to)` (`to` at most the size), read from `from` on when the window does
    /// not hold them.
    pub(super) fn get(&mut self, from: u64, to: u64) -> std::io::Result<&[u8]> {
        if from < self.at || to > self.at + self.len as u64 {
            let want = usize::try_from(to - from).unwrap_or(usize::MAX).max(CHUNK_WINDOW);
            let want = want.min(usize::try_from(self.size - from).unwrap_or(usize::MAX));
            if self.buf.len() < want {
                self.buf.resize(want, 0);
            }
            self.len = 0;
            self.file.read_exact_at(&mut self.buf[..want], from)?;
            (self.at, self.len) = (from, want);
        }
        let start = (from - self.at) as usize;
        Ok(&self.buf[start..start + (to - from) as usize])
    }
}

/// Walks a chunk file's segments up to `committed_len`, matching `refs` (this file's, in the bins
/// `scratch.bins` of [`bin_by_segment`]; no bins when there are no references) and setting `hits` for those
/// that verify. A segment no reference points into is verified by its CRC over the stored bytes only
/// (its records are garbage, counted from its header); the others are decompressed (into the scratch
/// payload, reused) and their records matched with the references.
fn walk_chunk(
    c: &mut Checker<'_>,
    path: &Path,
    window: &mut Window<'_>,
    committed_len: u64,
    refs: &[SegRef],
    hits: &mut [bool],
    scratch: &mut Scratch,
) {
    let Scratch { payload, bins, picked, starts, live, by_offset, .. } = scratch;
    let read_error = |c: &mut Checker<'_>, e: std::io::Error| c.error(path, &Error::io("read", path, e));
    let size = window.size;
    match window.get(0, size.min(FILE_HEADER_LEN as u64)) {
        Ok(head) => {
            if let Err(err) = format::check_file_header(head, format::MAGIC_CHUNK, path) {
                c.error(path, &err);
                return;
            }
        }
        Err(e) => return read_error(c, e),
    }
    let end = committed_len.min(size);
    let mut at = FILE_HEADER_LEN as u64;
    while at < end {
        // The references to the segment at `at` are in its offset's bin, among others; those to offsets
        // that are not segment starts are never picked: they stay unmatched.
        picked.clear();
        if let Some(b) = u32::try_from(at).ok().filter(|_| !bins.is_empty()).map(|at| bin_of(at, bins.len())) {
            let start = if b == 0 { 0 } else { bins[b - 1] as usize };
            for (i, r) in refs[start..bins[b] as usize].iter().enumerate() {
                if r.segment_offset as u64 == at {
                    picked.push((start + i) as u32);
                }
            }
        }
        let here = &picked[..];
        // The segment's length from its header (the checks below verify the header), then its bytes.
        let need = match window.get(at, end.min(at + seg::SEGMENT_HEADER_LEN as u64)) {
            Ok(head) if head.len() == seg::SEGMENT_HEADER_LEN => {
                let stored = u32::from_le_bytes([head[12], head[13], head[14], head[15]]) as u64;
                seg::SEGMENT_HEADER_LEN as u64 + stored.min((64 << 20) + 1)
            }
            Ok(_) => seg::SEGMENT_HEADER_LEN as u64,
            Err(e) => return read_error(c, e),
        };
        let bytes = match window.get(at, end.min(at + need)) {
            Ok(bytes) => bytes,
            Err(e) => return read_error(c, e),
        };
        let decoded = if here.is_empty() {
            seg::verify_segment(bytes, path, at)
        } else {
            let map = c.dict_map.clone();
            seg::decode_segment_into(bytes, path, at, payload, Some(&map))
        };
        match decoded {
            Ok(Some(header)) => {
                c.stats.segments += 1;
                c.stats.records += header.record_count as u64;
                if here.is_empty() {
                    c.stats.garbage_records += header.record_count as u64;
                    c.stats.garbage_bytes += header.raw_len as u64;
                } else {
                    let records = Records { payload, count: header.record_count, starts, live, by_offset };
                    match_records(c, path, at as usize, records, refs, here, hits);
                }
                at += header.encoded_len() as u64;
            }
            Ok(None) => {
                c.damage(path, Some(at), "segment runs past the committed length");
                return;
            }
            Err(Error::DictMissing(id)) => {
                // The segment verified (its CRC is checked first); only its dictionary is gone.
                c.damage(
                    path,
                    Some(at),
                    format!(
                        "segment is compressed with dictionary {id}, which is missing or damaged ({} live values \
                         in it are unreadable)",
                        here.len()
                    ),
                );
                match seg::verify_segment(bytes, path, at) {
                    Ok(Some(header)) => at += header.encoded_len() as u64,
                    _ => return,
                }
            }
            Err(err) => {
                let cells = here.len();
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
                c.damage(path, offset.or(Some(at)), what);
                // Segment boundaries past a bad header are unknown: the rest of the file is not walked.
                return;
            }
        }
    }
}

/// A decoded payload (already checked to be well-formed) and the buffers [`match_records`] indexes its
/// records in.
struct Records<'a> {
    payload: &'a [u8],
    count: u16,
    starts: &'a mut Vec<u32>,
    live: &'a mut Vec<bool>,
    by_offset: &'a mut Vec<u16>,
}

/// Longest payload whose records are looked up by offset in a table (`by_offset`, two bytes per payload
/// byte); longer ones (not written with the default segment size) through a binary search.
const BY_OFFSET_MAX: usize = 1 << 20;

/// Matches the references `refs[i]` for each `i` in `here` (in no order) with a decoded payload's
/// records, indexed by offset first: a reference is a hit when a record starts at its offset and belongs
/// to its database and key with its envelope length; records no reference hits are garbage. Findings
/// come in record order.
fn match_records(
    c: &mut Checker<'_>,
    path: &Path,
    at: usize,
    records: Records<'_>,
    refs: &[SegRef],
    here: &[u32],
    hits: &mut [bool],
) {
    let Records { payload, count, starts, live, by_offset } = records;
    starts.clear();
    let table = payload.len() <= BY_OFFSET_MAX;
    if table && by_offset.len() < payload.len() {
        by_offset.resize(payload.len(), 0);
    }
    let mut offset = 0usize;
    for n in 0..count {
        let Some(record) = seg::record_at(payload, offset) else { break };
        if table {
            by_offset[offset] = n;
        }
        starts.push(offset as u32);
        offset += seg::record_len(record.key.len(), record.envelope.len());
    }
    live.clear();
    live.resize(starts.len(), false);
    for &i in here {
        let r = &refs[i as usize];
        // The table is not cleared between payloads: an entry counts only when `starts` agrees.
        let found = if table {
            by_offset
                .get(r.record_offset as usize)
                .map(|&n| n as usize)
                .filter(|&n| starts.get(n) == Some(&r.record_offset))
        } else {
            starts.binary_search(&r.record_offset).ok()
        };
        let Some(n) = found else { continue };
        let Some(record) = seg::record_at(payload, r.record_offset as usize) else { continue };
        // The hash is seeded with the database: a record of another database does not match.
        if record.envelope.len() == r.envelope_len as usize && key_hash(record.db, record.key) == r.hash {
            hits[i as usize] = true;
            live[n] = true;
        }
    }
    for (&start, &is_live) in starts.iter().zip(live.iter()) {
        let offset = start as usize;
        let Some(record) = seg::record_at(payload, offset) else { break };
        if is_live {
            if let Err(e) = envelope::value_len(record.envelope) {
                c.damage(path, Some(at as u64), format!("record at payload offset {offset}: {e:?}"));
            }
            if let Some(missing) = c.missing_dictionary(record.envelope) {
                c.damage(path, Some(at as u64), format!("record at payload offset {offset}: {missing}"));
            }
        } else {
            c.stats.garbage_records += 1;
            c.stats.garbage_bytes += seg::record_len(record.key.len(), record.envelope.len()) as u64;
        }
    }
}

/// Runs of the primary page file read at once: 256 pages (1 MiB), so the bucket table is read in large
/// sequential reads; overflow pages (reached through links) are read one by one.
const BLOCK_PAGES: usize = 256;

/// Reads a slot's pages as recovery would see them: an interrupted checkpoint's double-write batch
/// images first, then the page files.
pub(super) struct PageSource<'v> {
    view: &'v SlotView,
    block: Vec<u8>,
    /// The first page number in `block`.
    block_first: u64,
}

impl<'v> PageSource<'v> {
    pub(super) fn new(view: &'v SlotView, mut block: Vec<u8>) -> Self {
        block.clear();
        PageSource { view, block, block_first: 0 }
    }

    pub(super) fn into_block(self) -> Vec<u8> {
        self.block
    }

    pub(super) fn read(
        &mut self,
        id: PageId,
        path: &Path,
        offset: u64,
        out: &mut [u8; PAGE_SIZE],
    ) -> Result<(), Error> {
        if let Some(image) = self.view.dwb_pages.get(&id) {
            out.copy_from_slice(&image[..]);
            return Ok(());
        }
        let missing = || Error::corrupt(path, offset, "page missing: file is shorter than the bucket table");
        let file = match id.file {
            PageFile::Primary => self.view.buckets.as_ref(),
            PageFile::Overflow => self.view.overflow.as_ref(),
        };
        let file = file.ok_or_else(|| Error::io("open", path, std::io::Error::from(std::io::ErrorKind::NotFound)))?;
        if id.file == PageFile::Overflow {
            return file.read_exact_at(out, offset).map_err(|e| {
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    missing()
                } else {
                    Error::io("read", path, e)
                }
            });
        }
        let in_block =
            |s: &Self| id.number >= s.block_first && id.number - s.block_first < (s.block.len() / PAGE_SIZE) as u64;
        if !in_block(self) {
            self.block.resize(BLOCK_PAGES * PAGE_SIZE, 0);
            let mut filled = 0;
            while filled < self.block.len() {
                match file.read_at(&mut self.block[filled..], offset + filled as u64) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        self.block.clear();
                        return Err(Error::io("read", path, e));
                    }
                }
            }
            self.block.truncate(filled - filled % PAGE_SIZE);
            self.block_first = id.number;
            if !in_block(self) {
                return Err(missing());
            }
        }
        let start = (id.number - self.block_first) as usize * PAGE_SIZE;
        out.copy_from_slice(&self.block[start..start + PAGE_SIZE]);
        Ok(())
    }
}

/// The checks of one verified page's header against its place in bucket `bucket`'s chain.
#[allow(clippy::too_many_arguments)]
fn check_page(
    c: &mut Checker<'_>,
    free: &HashSet<u64>,
    used_overflow: &mut HashMap<u64, u64>,
    bucket: u64,
    position: usize,
    id: PageId,
    path: &Path,
    header: &page::PageHeader,
) {
    let at = Some(id.number.saturating_mul(PAGE_SIZE as u64));
    if id.file == PageFile::Overflow {
        if let Some(other) = used_overflow.insert(id.number, bucket) {
            c.damage(path, at, format!("overflow page is in the chains of buckets {other} and {bucket}"));
        }
        if free.contains(&id.number) {
            c.damage(path, at, "overflow page is on the free list but in a chain");
        }
    }
    let want_kind = if position == 0 { PAGE_KIND_PRIMARY } else { PAGE_KIND_OVERFLOW };
    if header.kind != want_kind {
        c.damage(path, at, format!("page kind {} where {want_kind} belongs", header.kind));
    }
    if header.bucket != bucket {
        c.damage(path, at, format!("page says bucket {}, it is in the chain of bucket {bucket}", header.bucket));
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

    /// References in no order are matched to the records starting at their offsets, of their database
    /// and key with their envelope length; a reference into the middle of a record, past the payload,
    /// to another key or database misses. The buffers are reused for a second payload whose record
    /// starts differ: entries of the offset table left from the first must not match.
    #[test]
    fn references_in_no_order_match_only_their_own_record_starts() {
        let records: [(u16, &[u8], &[u8]); 4] = [
            (0, b"a", &[0, 0, b'x']),
            (0, b"bb", &[0, 0, 1, 2, 3, 4, 5, 6, 7, 8]),
            (1, b"a", &[0, 0, b'y']),
            (0, b"c", &[0, 9, 1]),
        ];
        let mut payload = Vec::new();
        let mut starts = Vec::new();
        for (db, key, env) in records {
            starts.push(payload.len() as u32);
            seg::encode_record(7, db, key, env, &mut payload);
        }
        let reference = |n: usize, record_offset: u32, hash: u64| SegRef {
            file: 1,
            segment_offset: 16,
            record_offset,
            envelope_len: records[n].2.len() as u32,
            hash,
        };
        let refs = [
            reference(1, starts[1], key_hash(0, b"bb")),
            reference(0, starts[0], key_hash(0, b"zz")),
            reference(0, starts[0] + 3, key_hash(0, b"a")),
            reference(2, starts[2], key_hash(0, b"a")),
            reference(0, payload.len() as u32 + 40, key_hash(0, b"a")),
            reference(3, starts[3], key_hash(0, b"c")),
            reference(1, starts[1], key_hash(0, b"bb")),
        ];
        let mut c = Checker {
            findings: Vec::new(),
            stats: CheckStats::default(),
            progress: &|_| {},
            dictionaries: HashSet::new(),
            dict_map: Arc::default(),
        };
        let (mut starts_buf, mut live, mut by_offset) = (Vec::new(), Vec::new(), Vec::new());
        let here: Vec<u32> = vec![6, 4, 0, 3, 5, 2, 1];
        let mut hits = vec![false; refs.len()];
        let batch = Records {
            payload: &payload,
            count: 4,
            starts: &mut starts_buf,
            live: &mut live,
            by_offset: &mut by_offset,
        };
        match_records(&mut c, Path::new("chunk"), 16, batch, &refs, &here, &mut hits);
        assert_eq!(hits, [true, false, false, false, false, true, true]);
        let garbage = |n: usize| seg::record_len(records[n].1.len(), records[n].2.len()) as u64;
        assert_eq!((c.stats.garbage_records, c.stats.garbage_bytes), (2, garbage(0) + garbage(2)));
        assert_eq!(c.findings.len(), 1, "{:?}", c.findings);
        assert!(c.findings[0].what.starts_with(&format!("record at payload offset {}: ", starts[3])));

        // One record, starting where the first payload's second record did: the stale table entry
        // there names record 1, which this payload does not have.
        let mut second = Vec::new();
        seg::encode_record(8, 0, b"bb", records[1].2, &mut second);
        let moved = [reference(1, starts[1], key_hash(0, b"bb")), reference(1, 0, key_hash(0, b"bb"))];
        let mut hits = vec![false; 2];
        let batch =
            Records { payload: &second, count: 1, starts: &mut starts_buf, live: &mut live, by_offset: &mut by_offset };
        match_records(&mut c, Path::new("chunk"), 16, batch, &moved, &[0, 1], &mut hits);
        assert_eq!(hits, [false, true]);
    }

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
