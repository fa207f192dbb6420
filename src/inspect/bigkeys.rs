//! `velo bigkeys`: per type the largest keys by stored bytes and by elements, per key family (the key up
//! to its last `:`) keys, raw bytes and stored bytes, and totals. Offline from the files of a data
//! directory, or online through SCAN, TYPE, MEMORY USAGE and the length commands (Velo or Redis).
//! Shapes: docs/tools.md §"bigkeys".
//!
//! Offline, sizes are:
//! - **stored bytes**: the key's cell in its bucket page, plus its record's share of its segment as
//!   stored (compressed segments scale the record by the segment's stored/raw ratio), or its big-value
//!   file, or its WAL record when not checkpointed yet. A split collection adds every part and its owner
//!   record.
//! - **raw bytes**: the key plus the decoded value (for split collections, the decoded parts).
//! - **elements**: a compact collection's count (its first payload bytes), a split collection's count
//!   from its header (parts are never read for it), a stream's entries; none for strings and bloom
//!   filters.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fs::File;
use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::Serialize;

use crate::elements::{is_split, OWNER_DB_FLAG, PART_DB_FLAG};
use crate::engine::buckets::{PageFile, PageId};
use crate::engine::format::FILE_HEADER_LEN;
use crate::engine::key::key_hash;
use crate::engine::page::{self, CellRef, CellValueRef, PAGE_SIZE};
use crate::engine::segment as seg;
use crate::engine::wal::WalOp;
use crate::engine::{envelope, Error, ValueKind};

use super::check::{self, PageSource};
use super::client::{Client, Reply};
use super::{escape, kind_name, DataDir, SlotView};

/// One key's sizes.
#[derive(Debug, Clone, Serialize)]
pub struct KeyStat {
    /// The key, escaped as redis-cli prints it.
    pub key: String,
    /// Database.
    pub db: u16,
    /// Type name.
    #[serde(rename = "type")]
    pub kind: String,
    /// Stored bytes (offline: on disk; online: MEMORY USAGE, or the estimate noted in `notes`).
    pub stored_bytes: u64,
    /// Raw bytes: key plus decoded value.
    pub raw_bytes: u64,
    /// Element count (null for strings and bloom filters).
    pub elements: Option<u64>,
    /// Stored split into parts (offline only).
    pub split: bool,
}

/// One type's figures.
#[derive(Debug, Serialize)]
pub struct TypeReport {
    /// Type name.
    #[serde(rename = "type")]
    pub kind: String,
    /// Keys of this type.
    pub keys: u64,
    /// Their stored bytes.
    pub stored_bytes: u64,
    /// Their raw bytes.
    pub raw_bytes: u64,
    /// Their elements.
    pub elements: u64,
    /// The largest by stored bytes, largest first.
    pub top_by_bytes: Vec<KeyStat>,
    /// The largest by elements, largest first (empty for strings and bloom filters).
    pub top_by_elements: Vec<KeyStat>,
}

/// One key family.
#[derive(Debug, Serialize)]
pub struct FamilyReport {
    /// The key up to (not including) its last `:`, escaped; `""` (shown as `(none)`) without a `:`.
    pub family: String,
    /// Keys.
    pub keys: u64,
    /// Raw bytes.
    pub raw_bytes: u64,
    /// Stored bytes.
    pub stored_bytes: u64,
    /// stored_bytes / raw_bytes (0 when raw_bytes is 0).
    pub ratio: f64,
    /// The family's active trained dictionary (as VELO FAMILIES shows it): offline from the directory's
    /// dictionary files (the highest id of the family), online from VELO FAMILIES; null when it has none
    /// or the server is not Velo.
    pub dictionary: Option<u32>,
    /// That dictionary's size in bytes (0 without one).
    pub dictionary_bytes: u64,
}

/// Active dictionary (id, bytes) per raw family name, for the family rows.
pub type FamilyDictionaries = HashMap<Vec<u8>, (u32, u64)>;

/// Totals.
#[derive(Debug, Default, Serialize)]
pub struct Totals {
    /// Keys.
    pub keys: u64,
    /// Raw bytes.
    pub raw_bytes: u64,
    /// Stored bytes.
    pub stored_bytes: u64,
    /// Elements.
    pub elements: u64,
}

/// The whole report.
#[derive(Debug, Serialize)]
pub struct BigkeysReport {
    /// `offline` or `online`.
    pub source: &'static str,
    /// The data directory, or `host:port`.
    pub target: String,
    /// The database asked for, null for all.
    pub db: Option<u16>,
    /// Per type, in type-name order.
    pub types: Vec<TypeReport>,
    /// Families by stored bytes, largest first, at most `families_shown`.
    pub families: Vec<FamilyReport>,
    /// Families found in all.
    pub family_count: u64,
    /// Totals.
    pub totals: Totals,
    /// How figures were obtained where it matters (e.g. estimates when MEMORY USAGE is unknown).
    pub notes: Vec<String>,
    /// Damage met on the way (a page or segment that did not verify: its keys are not counted).
    pub problems: Vec<String>,
}

/// The most key families a report keeps apart; keys of further families are summed in one row,
/// `(other)`, so that memory stays bounded when nearly every key is a family of its own.
pub const FAMILY_CAP: usize = 1 << 20;

/// A key offered to the report, borrowed: it is copied only if it enters a top-N list.
struct Candidate<'a> {
    key: &'a [u8],
    db: u16,
    kind: &'a str,
    stored: u64,
    raw: u64,
    elements: Option<u64>,
    split: bool,
}

/// A key kept in a top-N list, ranked by `score` (stored bytes or elements), then by key bytes (the
/// smaller key ranks higher, so ties are broken the same way however the keys arrive).
#[derive(PartialEq, Eq)]
struct Ranked {
    score: u64,
    key: Vec<u8>,
    db: u16,
    stored: u64,
    raw: u64,
    elements: Option<u64>,
    split: bool,
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.score.cmp(&other.score).then_with(|| other.key.cmp(&self.key)).then_with(|| other.db.cmp(&self.db))
    }
}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// The `n` best keys seen, in a min-heap whose root is the one to beat: a key that cannot enter costs
/// one comparison and no allocation.
struct Top {
    n: usize,
    heap: BinaryHeap<Reverse<Ranked>>,
}

impl Top {
    fn new(n: usize) -> Top {
        Top { n, heap: BinaryHeap::with_capacity(n + 1) }
    }

    fn admits(&self, score: u64, key: &[u8], db: u16) -> bool {
        match self.heap.peek() {
            Some(Reverse(worst)) if self.heap.len() >= self.n => {
                score > worst.score
                    || (score == worst.score && (key < &worst.key[..] || (key == &worst.key[..] && db < worst.db)))
            }
            _ => true,
        }
    }

    fn push(&mut self, ranked: Ranked) {
        if self.admits(ranked.score, &ranked.key, ranked.db) {
            self.heap.push(Reverse(ranked));
            if self.heap.len() > self.n {
                self.heap.pop();
            }
        }
    }

    fn offer(&mut self, score: u64, c: &Candidate<'_>) {
        if self.admits(score, c.key, c.db) {
            self.push(Ranked {
                score,
                key: c.key.to_vec(),
                db: c.db,
                stored: c.stored,
                raw: c.raw,
                elements: c.elements,
                split: c.split,
            });
        }
    }

    /// Best first.
    fn into_stats(self, kind: &str) -> Vec<KeyStat> {
        let mut ranked: Vec<Ranked> = self.heap.into_iter().map(|Reverse(r)| r).collect();
        ranked.sort_by(|a, b| b.cmp(a));
        ranked
            .into_iter()
            .map(|r| KeyStat {
                key: escape(&r.key),
                db: r.db,
                kind: kind.to_string(),
                stored_bytes: r.stored,
                raw_bytes: r.raw,
                elements: r.elements,
                split: r.split,
            })
            .collect()
    }
}

/// One type's running figures.
struct TypeAcc {
    totals: Totals,
    by_bytes: Top,
    by_elements: Top,
}

/// Keys, raw bytes, stored bytes of a family.
type FamilyAcc = (u64, u64, u64);

/// Collects key stats into the report, in memory bounded by the number of types, `top` and
/// [`FAMILY_CAP`] (not by the number of keys). One per scanning thread; merged at the end.
struct Collector {
    top: usize,
    /// A handful of types: searched linearly (no hashing per key).
    per_type: Vec<(String, TypeAcc)>,
    families: HashMap<Vec<u8>, FamilyAcc>,
    /// The family of the last key and its sums not yet added to `families`: keys of one family tend to
    /// come in long runs (one family per directory is common), and this spares a hash lookup per key.
    last_family: Option<(Vec<u8>, FamilyAcc)>,
    /// Keys of families past [`FAMILY_CAP`].
    other_families: FamilyAcc,
    totals: Totals,
}

impl Collector {
    fn new(top: usize) -> Self {
        Collector {
            top: top.max(1),
            per_type: Vec::new(),
            families: HashMap::new(),
            last_family: None,
            other_families: (0, 0, 0),
            totals: Totals::default(),
        }
    }

    /// Adds to `family`'s sums, through [`Collector::last_family`].
    fn family(&mut self, family: &[u8], add: FamilyAcc) {
        if let Some((last, sums)) = &mut self.last_family {
            if short_eq(last, family) {
                sums.0 += add.0;
                sums.1 += add.1;
                sums.2 += add.2;
                return;
            }
        }
        self.flush_family();
        self.last_family = Some((family.to_vec(), add));
    }

    /// Adds the pending sums of [`Collector::last_family`] to `families`. The map sees families in the
    /// same order as without the pending sums (a family is flushed before the next one is added), so
    /// the same families stay apart under [`FAMILY_CAP`].
    fn flush_family(&mut self) {
        if let Some((family, sums)) = self.last_family.take() {
            self.add_family(&family, sums);
        }
    }

    fn add_family(&mut self, family: &[u8], add: FamilyAcc) {
        let entry = if self.families.contains_key(family) {
            self.families.get_mut(family).expect("present")
        } else if self.families.len() < FAMILY_CAP {
            self.families.entry(family.to_vec()).or_default()
        } else {
            &mut self.other_families
        };
        entry.0 += add.0;
        entry.1 += add.1;
        entry.2 += add.2;
    }

    fn type_acc(&mut self, kind: &str) -> &mut TypeAcc {
        let at = match self.per_type.iter().position(|(k, _)| short_eq(k.as_bytes(), kind.as_bytes())) {
            Some(at) => at,
            None => {
                let top = self.top;
                self.per_type.push((
                    kind.to_string(),
                    TypeAcc { totals: Totals::default(), by_bytes: Top::new(top), by_elements: Top::new(top) },
                ));
                self.per_type.len() - 1
            }
        };
        &mut self.per_type[at].1
    }

    fn add(&mut self, c: Candidate<'_>) {
        self.totals.keys += 1;
        self.totals.raw_bytes += c.raw;
        self.totals.stored_bytes += c.stored;
        self.totals.elements += c.elements.unwrap_or(0);
        let family = c.key.iter().rposition(|&b| b == b':').map_or(&c.key[..0], |at| &c.key[..at]);
        self.family(family, (1, c.raw, c.stored));
        let acc = self.type_acc(c.kind);
        acc.totals.keys += 1;
        acc.totals.raw_bytes += c.raw;
        acc.totals.stored_bytes += c.stored;
        acc.totals.elements += c.elements.unwrap_or(0);
        acc.by_bytes.offer(c.stored, &c);
        if let Some(elements) = c.elements {
            acc.by_elements.offer(elements, &c);
        }
    }

    /// Adds another thread's collector into this one.
    fn merge(&mut self, mut other: Collector) {
        self.flush_family();
        other.flush_family();
        self.totals.keys += other.totals.keys;
        self.totals.raw_bytes += other.totals.raw_bytes;
        self.totals.stored_bytes += other.totals.stored_bytes;
        self.totals.elements += other.totals.elements;
        for (family, acc) in other.families {
            self.add_family(&family, acc);
        }
        let o = other.other_families;
        self.other_families = (self.other_families.0 + o.0, self.other_families.1 + o.1, self.other_families.2 + o.2);
        for (kind, theirs) in other.per_type {
            let acc = self.type_acc(&kind);
            acc.totals.keys += theirs.totals.keys;
            acc.totals.raw_bytes += theirs.totals.raw_bytes;
            acc.totals.stored_bytes += theirs.totals.stored_bytes;
            acc.totals.elements += theirs.totals.elements;
            for Reverse(ranked) in theirs.by_bytes.heap {
                acc.by_bytes.push(ranked);
            }
            for Reverse(ranked) in theirs.by_elements.heap {
                acc.by_elements.push(ranked);
            }
        }
    }

    fn finish(
        mut self,
        source: &'static str,
        target: String,
        db: Option<u16>,
        families_shown: usize,
        mut notes: Vec<String>,
        problems: Vec<String>,
        dictionaries: &FamilyDictionaries,
    ) -> BigkeysReport {
        self.flush_family();
        let mut types: Vec<TypeReport> = self
            .per_type
            .into_iter()
            .map(|(kind, acc)| TypeReport {
                keys: acc.totals.keys,
                stored_bytes: acc.totals.stored_bytes,
                raw_bytes: acc.totals.raw_bytes,
                elements: acc.totals.elements,
                top_by_bytes: acc.by_bytes.into_stats(&kind),
                top_by_elements: acc.by_elements.into_stats(&kind),
                kind,
            })
            .collect();
        types.sort_by(|a, b| a.kind.cmp(&b.kind));
        let mut family_count = self.families.len() as u64;
        let mut families: Vec<FamilyReport> = self
            .families
            .into_iter()
            .map(|(family, (keys, raw_bytes, stored_bytes))| {
                let dictionary = dictionaries.get(&family);
                FamilyReport {
                    family: escape(&family),
                    keys,
                    raw_bytes,
                    stored_bytes,
                    ratio: family_ratio(stored_bytes, raw_bytes),
                    dictionary: dictionary.map(|d| d.0),
                    dictionary_bytes: dictionary.map_or(0, |d| d.1),
                }
            })
            .collect();
        let (keys, raw_bytes, stored_bytes) = self.other_families;
        if keys > 0 {
            family_count += 1;
            families.push(FamilyReport {
                family: OTHER_FAMILIES.to_string(),
                keys,
                raw_bytes,
                stored_bytes,
                ratio: family_ratio(stored_bytes, raw_bytes),
                dictionary: None,
                dictionary_bytes: 0,
            });
            notes.push(format!(
                "more than {FAMILY_CAP} key families: the keys of the families past them are summed in {OTHER_FAMILIES}"
            ));
        }
        families.sort_by(|a, b| b.stored_bytes.cmp(&a.stored_bytes).then_with(|| a.family.cmp(&b.family)));
        families.truncate(families_shown);
        BigkeysReport { source, target, db, types, families, family_count, totals: self.totals, notes, problems }
    }
}

/// Byte equality of short slices (family names, type names) without a call to `memcmp` per key: that
/// call took ~15% of a scan's profile for a family comparison that mostly compares empty names.
fn short_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    if a.len() > 32 {
        return a == b;
    }
    a.iter().zip(b).all(|(x, y)| x == y)
}

fn family_ratio(stored: u64, raw: u64) -> f64 {
    if raw == 0 {
        0.0
    } else {
        stored as f64 / raw as f64
    }
}

/// The active dictionary of each family among a data directory's dictionary files (the highest id of a
/// family is its active one, docs/format.md §"Dictionary file").
pub fn dir_dictionaries(dir: &std::path::Path) -> Result<FamilyDictionaries, String> {
    let stored = crate::engine::dictionary::load_dir(&crate::engine::io::RealFs, dir).map_err(|e| e.to_string())?;
    let mut out = FamilyDictionaries::new();
    for dict in stored {
        let entry = out.entry(dict.family).or_insert((dict.id, dict.bytes.len() as u64));
        if dict.id >= entry.0 {
            *entry = (dict.id, dict.bytes.len() as u64);
        }
    }
    Ok(out)
}

/// The active dictionary of each family from a VELO FAMILIES reply (a map per family, RESP2: flat
/// arrays of name and value); empty when the server does not know the command (Redis).
fn reply_dictionaries(reply: &Reply) -> FamilyDictionaries {
    let mut out = FamilyDictionaries::new();
    let Reply::Array(families) = reply else { return out };
    for family in families {
        let Reply::Array(fields) = family else { continue };
        let (mut name, mut id, mut bytes) = (None, None, 0);
        for pair in fields.chunks(2) {
            match pair {
                [Reply::Bulk(field), Reply::Bulk(value)] if field == b"family" => {
                    name = Some(if value == b"(default)" { Vec::new() } else { value.clone() });
                }
                [Reply::Bulk(field), Reply::Integer(value)] if field == b"dictionary" => {
                    id = u32::try_from(*value).ok();
                }
                [Reply::Bulk(field), Reply::Integer(value)] if field == b"dictionary_bytes" => {
                    bytes = (*value).max(0) as u64;
                }
                _ => {}
            }
        }
        if let (Some(name), Some(id)) = (name, id) {
            out.insert(name, (id, bytes));
        }
    }
    out
}

/// The family row summing the families past [`FAMILY_CAP`] (unquoted: no escaped key looks like it).
pub const OTHER_FAMILIES: &str = "(other)";

/// The first `n` bytes of an envelope's decoded value (decompressing no more than needed; a value
/// compressed with a dictionary is decoded whole).
fn value_head(env: &[u8], n: usize, dictionaries: &envelope::DictionaryMap) -> Option<Vec<u8>> {
    if envelope::dictionary_id(env).is_some_and(|id| id != envelope::DICT_PLAIN_ZSTD) {
        let (_, value) = envelope::decode(env, dictionaries).ok()?;
        return Some(value[..value.len().min(n)].to_vec());
    }
    match env.get(1)? {
        0 => Some(env.get(2..)?.iter().take(n).copied().collect()),
        1 => None,
        2 => {
            let dict = u32::from_le_bytes(env.get(2..6)?.try_into().ok()?);
            if dict != envelope::DICT_PLAIN_ZSTD {
                return None;
            }
            let mut decoder = zstd::stream::read::Decoder::new(env.get(10..)?).ok()?;
            let mut head = Vec::with_capacity(n);
            (&mut decoder).take(n as u64).read_to_end(&mut head).ok()?;
            Some(head)
        }
        _ => None,
    }
}

/// Elements of a value from its envelope: (elements, is split).
fn elements_of(kind: ValueKind, env: &[u8], dictionaries: &envelope::DictionaryMap) -> (Option<u64>, bool) {
    match kind {
        ValueKind::Hash | ValueKind::List | ValueKind::Set | ValueKind::SortedSet | ValueKind::Stream => {
            let Some(head) = value_head(env, 21, dictionaries) else { return (None, false) };
            if is_split(&head) {
                let count = head.get(13..21).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes);
                return (count, true);
            }
            if kind == ValueKind::Stream {
                let value = envelope::decode(env, dictionaries).ok();
                let stream = value.and_then(|(_, bytes)| crate::types::stream::StreamValue::from_bytes(&bytes).ok());
                return (stream.map(|s| s.len() as u64), false);
            }
            // Bit 31 of a compact count is the encoding flag (docs/format.md "Encoding flag").
            let count = head.get(..4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes);
            (count.map(|raw| crate::types::compact_count(raw) as u64), false)
        }
        _ => (None, false),
    }
}

/// What bigkeys needs of a value's envelope.
#[derive(Clone, Copy)]
struct ValueInfo {
    elements: Option<u64>,
    split: bool,
    raw_len: u64,
    /// A split collection's id (its parts' key prefix).
    split_id: Option<u64>,
}

impl ValueInfo {
    fn of(kind: ValueKind, env: &[u8], dictionaries: &envelope::DictionaryMap) -> ValueInfo {
        let (elements, split) = elements_of(kind, env, dictionaries);
        let split_id = if split {
            value_head(env, 13, dictionaries).and_then(|h| h.get(5..13)?.try_into().ok()).map(u64::from_le_bytes)
        } else {
            None
        };
        ValueInfo { elements, split, raw_len: envelope::value_len(env).unwrap_or(0) as u64, split_id }
    }
}

/// A WAL version of a key: its record length and envelope.
type WalValue = (u64, Vec<u8>);

/// A segment record a cell needs read, compact (no key bytes: the record holds the key, and the cell's
/// key hash tells that it is the right one). A user key's value, or a part of a split collection whose
/// stored share only needs its segment's header.
#[derive(Clone, Copy)]
struct Need {
    file: u32,
    segment_offset: u32,
    record_offset: u32,
    envelope_len: u32,
    /// A user key: its key hash. A part: its collection's id.
    hash: u64,
    /// A user key: its cell's bytes. A part: its key's length.
    base: u32,
    /// A user key: its database. A part: its collection's user database.
    db: u16,
    kind: ValueKind,
    part: bool,
}

/// The most segment records a scanning thread keeps waiting (32 bytes each: 48 MiB); when the cells of a
/// slot name more, the waiting ones are resolved (their chunk files read) before the page walk goes on.
/// Each round reads and decompresses nearly every segment of the slot again (a round's records are
/// spread over all of them), so the budget is sized for a slot of a 10M-key directory (1.25M keys) to
/// take one round.
pub const NEED_BUDGET: usize = 3 << 19;

const _: () = assert!(std::mem::size_of::<Need>() == 32);

/// A split collection's owner, waiting for the end of its slot's walk, when all its parts are counted.
struct Deferred {
    db: u16,
    key: Vec<u8>,
    kind: ValueKind,
    stored: u64,
    info: ValueInfo,
}

/// Buffers a scanning thread reuses from slot to slot.
#[derive(Default)]
struct Scratch {
    block: Vec<u8>,
    file: Vec<u8>,
    payload: Vec<u8>,
    needs: Vec<Need>,
}

/// Offline report from the files of `dir`, with slots scanned on one thread per core. `progress` is
/// told of each slot done.
pub fn offline(
    dir: &DataDir,
    db: Option<u16>,
    top: usize,
    families_shown: usize,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<BigkeysReport, Error> {
    offline_with_budget(dir, db, top, families_shown, progress, NEED_BUDGET)
}

/// [`offline`] with at most `need_budget` segment records waiting per thread instead of
/// [`NEED_BUDGET`] (tests pass a tiny bound to exercise the resolution in rounds).
pub fn offline_with_budget(
    dir: &DataDir,
    db: Option<u16>,
    top: usize,
    families_shown: usize,
    progress: &(dyn Fn(u64) + Sync),
    need_budget: usize,
) -> Result<BigkeysReport, Error> {
    let slots = dir.slot_count as usize;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(slots).max(1);
    let next = AtomicUsize::new(0);
    let collectors: Mutex<Vec<Collector>> = Mutex::new(Vec::new());
    let slot_problems: Mutex<Vec<(usize, Vec<String>)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut collector = Collector::new(top);
                let mut scratch = Scratch::default();
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= slots {
                        break;
                    }
                    let mut problems = Vec::new();
                    match dir.slot(index) {
                        Ok(view) => SlotScan::new(&view, db, need_budget.max(1), &mut problems)
                            .run(&mut collector, &mut scratch),
                        Err(err) => problems.push(err.to_string()),
                    }
                    slot_problems.lock().unwrap_or_else(|e| e.into_inner()).push((index, problems));
                    progress(1);
                }
                collectors.lock().unwrap_or_else(|e| e.into_inner()).push(collector);
            });
        }
    });
    let mut collector = Collector::new(top);
    for other in collectors.into_inner().unwrap_or_else(|e| e.into_inner()) {
        collector.merge(other);
    }
    let mut slot_problems = slot_problems.into_inner().unwrap_or_else(|e| e.into_inner());
    slot_problems.sort_by_key(|(index, _)| *index);
    let problems = slot_problems.into_iter().flat_map(|(_, p)| p).collect();
    let notes = vec![
        "stored bytes: cell + record share of its (compressed) segment, big-value file or WAL record; split collections include their parts".into(),
    ];
    let mut problems: Vec<String> = problems;
    let dictionaries = dir_dictionaries(&dir.path).unwrap_or_else(|err| {
        problems.push(format!("dictionaries: {err}"));
        FamilyDictionaries::new()
    });
    Ok(collector.finish("offline", dir.path.display().to_string(), db, families_shown, notes, problems, &dictionaries))
}

/// The key of a part of a split collection: its collection's id.
fn part_id(key: &[u8]) -> Option<u64> {
    key.get(2..10).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes)
}

/// One slot's scan: pages walked in bucket order with borrowed cells; inline and big values counted at
/// once, segment values queued as [`Need`]s and resolved chunk file by chunk file.
struct SlotScan<'v, 'p> {
    view: &'v SlotView,
    want_db: Option<u16>,
    budget: usize,
    /// Newer versions in the WAL (by database, then key): they win over the cells, as an open would
    /// replay them. `None`: deleted.
    overlay: HashMap<u16, HashMap<Vec<u8>, Option<WalValue>>>,
    flush_seq: HashMap<u16, u64>,
    flush_all: u64,
    /// Parts and owner records by (user db, collection id): (stored, raw).
    parts: HashMap<(u16, u64), (u64, u64)>,
    deferred: Vec<Deferred>,
    problems: &'p mut Vec<String>,
}

impl<'v, 'p> SlotScan<'v, 'p> {
    fn new(view: &'v SlotView, want_db: Option<u16>, budget: usize, problems: &'p mut Vec<String>) -> Self {
        SlotScan {
            view,
            want_db,
            budget,
            overlay: HashMap::new(),
            flush_seq: view.meta.db_flush_seq.iter().map(|(d, s)| (*d, *s)).collect(),
            flush_all: 0,
            parts: HashMap::new(),
            deferred: Vec::new(),
            problems,
        }
    }

    fn user_db(&self, db: u16) -> bool {
        db & 0xC000 == 0 && self.want_db.is_none_or(|w| w == db)
    }

    fn overlaid(&self, db: u16, key: &[u8]) -> bool {
        !self.overlay.is_empty() && self.overlay.get(&db).is_some_and(|keys| keys.contains_key(key))
    }

    fn read_wal(&mut self) {
        let wal = self.view.wal();
        if let Some(stop) = &wal.stop {
            self.problems.push(format!("WAL read stopped: {stop}"));
        }
        for (_, record) in wal.records {
            match record.op {
                WalOp::Set => {
                    let len = crate::engine::wal::record_len(record.key.len(), record.envelope.len()) as u64;
                    self.overlay.entry(record.db).or_default().insert(record.key, Some((len, record.envelope)));
                }
                WalOp::Delete => {
                    self.overlay.entry(record.db).or_default().insert(record.key, None);
                }
                WalOp::Expire | WalOp::Commit => {}
                WalOp::FlushDb => {
                    self.flush_seq.insert(record.db, record.seq);
                    self.flush_seq.insert(record.db | PART_DB_FLAG, record.seq);
                    self.flush_seq.insert(record.db | OWNER_DB_FLAG, record.seq);
                    self.overlay.retain(|d, _| d & 0x3fff != record.db);
                }
                WalOp::FlushAll => {
                    self.flush_all = record.seq;
                    self.overlay.clear();
                }
            }
        }
    }

    fn run(mut self, collector: &mut Collector, scratch: &mut Scratch) {
        self.read_wal();
        scratch.needs.clear();
        // Reserved once at the size the slot's cells need (at most the budget), not grown by doubling:
        // every doubling copied the queue into fresh memory the kernel had to zero.
        let cells = self.view.meta.key_counts.values().sum::<u64>();
        let want = usize::try_from(cells).unwrap_or(usize::MAX).saturating_add(1).min(self.budget);
        if scratch.needs.capacity() < want {
            scratch.needs.reserve_exact(want);
        }
        self.walk_pages(collector, scratch);
        self.resolve(collector, scratch);
        for (db, keys) in std::mem::take(&mut self.overlay) {
            for (key, value) in keys {
                let Some((len, env)) = value else { continue };
                let Ok(kind) = envelope::peek_kind(&env) else { continue };
                if db & PART_DB_FLAG != 0 {
                    let user = db & 0x3fff;
                    if self.want_db.is_none_or(|w| w == user) {
                        if let Some(id) = part_id(&key) {
                            let entry = self.parts.entry((user, id)).or_default();
                            entry.0 += len;
                            entry.1 += env.len().saturating_sub(2) as u64;
                        }
                    }
                } else if self.user_db(db) {
                    self.value(collector, db, &key, kind, len, ValueInfo::of(kind, &env, self.view.dictionaries()));
                }
            }
        }
        for owner in std::mem::take(&mut self.deferred) {
            let id = owner.info.split_id.unwrap_or_default();
            let (part_stored, part_raw) = self.parts.get(&(owner.db, id)).copied().unwrap_or_default();
            collector.add(Candidate {
                key: &owner.key,
                db: owner.db,
                kind: kind_name(owner.kind),
                stored: owner.stored + part_stored,
                raw: owner.key.len() as u64 + part_raw,
                elements: owner.info.elements,
                split: true,
            });
        }
    }

    /// A user key whose value is known: counted now, or (a split collection) when its parts are.
    fn value(&mut self, collector: &mut Collector, db: u16, key: &[u8], kind: ValueKind, stored: u64, info: ValueInfo) {
        if info.split && info.split_id.is_some() {
            self.deferred.push(Deferred { db, key: key.to_vec(), kind, stored, info });
            return;
        }
        collector.add(Candidate {
            key,
            db,
            kind: kind_name(kind),
            stored,
            raw: key.len() as u64 + info.raw_len,
            elements: info.elements,
            split: info.split,
        });
    }

    /// Walks every bucket chain, primary pages read in large runs, cells borrowed from the page image.
    fn walk_pages(&mut self, collector: &mut Collector, scratch: &mut Scratch) {
        let view = self.view;
        let meta = &view.meta;
        let mut pages = PageSource::new(view, std::mem::take(&mut scratch.block));
        let paths = [view.page_path(PageFile::Primary), view.page_path(PageFile::Overflow)];
        let mut buf = [0u8; PAGE_SIZE];
        let mut seen: Vec<u64> = Vec::new();
        for bucket in 0..meta.bucket_count() {
            let mut id = PageId::bucket(bucket);
            seen.clear();
            loop {
                let path = &paths[(id.file == PageFile::Overflow) as usize];
                let offset = id.number.saturating_mul(PAGE_SIZE as u64);
                let header =
                    pages.read(id, path, offset, &mut buf).and_then(|()| page::decode_header(&buf, path, offset));
                let next = match header {
                    Ok(header) => {
                        for cell in page::cell_refs(&buf) {
                            self.cell(collector, &cell, &mut scratch.needs);
                        }
                        header.next_overflow
                    }
                    Err(err) => {
                        self.problems.push(err.to_string());
                        0
                    }
                };
                if next == 0 {
                    break;
                }
                if next >= meta.overflow_pages.max(1) || seen.contains(&next) {
                    self.problems.push(
                        Error::corrupt(
                            path,
                            offset,
                            if next >= meta.overflow_pages {
                                format!("overflow link {next} is past the {} overflow pages", meta.overflow_pages)
                            } else {
                                format!("overflow link {next} closes a cycle")
                            },
                        )
                        .to_string(),
                    );
                    break;
                }
                seen.push(next);
                id = PageId::overflow(next);
            }
            if scratch.needs.len() >= self.budget {
                scratch.block = pages.into_block();
                self.resolve(collector, scratch);
                pages = PageSource::new(view, std::mem::take(&mut scratch.block));
            }
        }
        scratch.block = pages.into_block();
    }

    fn cell(&mut self, collector: &mut Collector, cell: &CellRef<'_>, needs: &mut Vec<Need>) {
        if cell.seq < self.flush_seq.get(&cell.db).copied().unwrap_or(0).max(self.flush_all) {
            return;
        }
        if cell.db & PART_DB_FLAG != 0 {
            let user = cell.db & 0x3fff;
            if self.want_db.is_some_and(|w| w != user) || self.overlaid(cell.db, cell.key) {
                return;
            }
            let Some(id) = part_id(cell.key) else { return };
            let entry = self.parts.entry((user, id)).or_default();
            entry.0 += cell.encoded_len() as u64;
            match cell.value {
                CellValueRef::Inline(env) => entry.1 += env.len().saturating_sub(2) as u64,
                CellValueRef::Segment(l) => {
                    entry.1 += (l.envelope_len as u64).saturating_sub(2);
                    needs.push(Need {
                        file: l.file,
                        segment_offset: l.segment_offset,
                        record_offset: l.record_offset,
                        envelope_len: l.envelope_len,
                        hash: id,
                        base: cell.key.len() as u32,
                        db: user,
                        kind: cell.kind,
                        part: true,
                    });
                }
                CellValueRef::Big { envelope_len, .. } => {
                    entry.1 += envelope_len.saturating_sub(2);
                    entry.0 += envelope_len + (FILE_HEADER_LEN + seg::RECORD_HEADER_LEN + 4) as u64;
                }
            }
            return;
        }
        if !self.user_db(cell.db) || self.overlaid(cell.db, cell.key) {
            return;
        }
        let base = cell.encoded_len() as u64;
        match cell.value {
            CellValueRef::Inline(env) => self.value(
                collector,
                cell.db,
                cell.key,
                cell.kind,
                base,
                ValueInfo::of(cell.kind, env, self.view.dictionaries()),
            ),
            CellValueRef::Segment(l) => needs.push(Need {
                file: l.file,
                segment_offset: l.segment_offset,
                record_offset: l.record_offset,
                envelope_len: l.envelope_len,
                hash: key_hash(cell.db, cell.key),
                base: base as u32,
                db: cell.db,
                kind: cell.kind,
                part: false,
            }),
            CellValueRef::Big { id, .. } => match self.view.read_big(id) {
                Ok((_, _, _, env)) => {
                    let extra = std::fs::metadata(self.view.big_path(id)).map_or(0, |m| m.len());
                    self.value(
                        collector,
                        cell.db,
                        cell.key,
                        cell.kind,
                        base + extra,
                        ValueInfo::of(cell.kind, &env, self.view.dictionaries()),
                    );
                }
                Err(err) => self.problems.push(err.to_string()),
            },
        }
    }

    /// Reads the records the queued needs name, each chunk file once from its first needed segment, each
    /// needed segment once: decompressed when a user key's value is in it, its header alone when only
    /// parts are (their stored share needs only its stored/raw ratio).
    fn resolve(&mut self, collector: &mut Collector, scratch: &mut Scratch) {
        let mut needs = std::mem::take(&mut scratch.needs);
        // One integer key (file, segment): a segment's records are looked up by offset in its payload, so
        // their order within it does not matter, and a u64 compares in one instruction.
        needs.sort_unstable_by_key(|n| ((n.file as u64) << 32) | n.segment_offset as u64);
        let mut at = 0;
        while at < needs.len() {
            let file = needs[at].file;
            let end = at + needs[at..].partition_point(|n| n.file == file);
            self.resolve_file(collector, &needs[at..end], &mut scratch.file, &mut scratch.payload);
            at = end;
        }
        needs.clear();
        scratch.needs = needs;
    }

    /// Reads one chunk file's needed segments through a window of [`check::Window`]'s size (1 MiB, one
    /// buffer per thread): the segments are read in file order and checked while in the CPU caches,
    /// and neither the whole file nor its unneeded tail is copied to memory.
    fn resolve_file(&mut self, collector: &mut Collector, needs: &[Need], buf: &mut Vec<u8>, payload: &mut Vec<u8>) {
        let id = needs[0].file;
        let path = self.view.chunk_path(id);
        let opened = File::open(&path).and_then(|file| {
            let len = file.metadata()?.len();
            Ok((file, self.view.committed_len(id).unwrap_or(len).min(len)))
        });
        let (file, limit) = match opened {
            Ok(opened) => opened,
            Err(err) => {
                self.problems.push(Error::io("read", &path, err).to_string());
                return;
            }
        };
        let mut window = check::Window::new(&file, limit, buf);
        let mut i = 0;
        while i < needs.len() {
            let offset = needs[i].segment_offset;
            let group_end = i + needs[i..].partition_point(|n| n.segment_offset == offset);
            let group = &needs[i..group_end];
            i = group_end;
            // The segment's length from its header (verified below), then its bytes; past the committed
            // length the bytes come out short and the segment is reported as running past it.
            let at = offset as u64;
            if at >= limit {
                self.problems.push(format!("{}: segment at {offset} runs past the committed length", path.display()));
                continue;
            }
            let end = limit;
            let need = match window.get(at, end.min(at + seg::SEGMENT_HEADER_LEN as u64)) {
                Ok(head) if head.len() == seg::SEGMENT_HEADER_LEN => {
                    let stored = u32::from_le_bytes([head[12], head[13], head[14], head[15]]) as u64;
                    seg::SEGMENT_HEADER_LEN as u64 + stored.min((64 << 20) + 1)
                }
                Ok(_) => seg::SEGMENT_HEADER_LEN as u64,
                Err(err) => {
                    self.problems.push(Error::io("read", &path, err).to_string());
                    return;
                }
            };
            let bytes = match window.get(at, end.min(at + need)) {
                Ok(bytes) => bytes,
                Err(err) => {
                    self.problems.push(Error::io("read", &path, err).to_string());
                    return;
                }
            };
            let decoded = if group.iter().all(|n| n.part) {
                seg::verify_segment(bytes, &path, offset as u64)
            } else {
                seg::decode_segment_into(bytes, &path, offset as u64, payload, Some(self.view.dictionaries()))
            };
            let header = match decoded {
                Ok(Some(header)) => header,
                Ok(None) => {
                    self.problems
                        .push(format!("{}: segment at {offset} runs past the committed length", path.display()));
                    continue;
                }
                Err(err) => {
                    self.problems.push(err.to_string());
                    continue;
                }
            };
            let ratio = header.stored_len as f64 / header.raw_len.max(1) as f64;
            for n in group {
                if n.part {
                    let share = (seg::record_len(n.base as usize, n.envelope_len as usize) as f64 * ratio) as u64;
                    self.parts.entry((n.db, n.hash)).or_default().0 += share;
                    continue;
                }
                match seg::record_at(payload, n.record_offset as usize) {
                    Some(r)
                        if r.db == n.db
                            && r.envelope.len() == n.envelope_len as usize
                            && key_hash(r.db, r.key) == n.hash =>
                    {
                        let share = (seg::record_len(r.key.len(), r.envelope.len()) as f64 * ratio) as u64;
                        let info = ValueInfo::of(n.kind, r.envelope, self.view.dictionaries());
                        self.value(collector, n.db, r.key, n.kind, n.base as u64 + share, info);
                    }
                    _ => self.problems.push(format!(
                        "{}: segment {offset} has no record of the cell's key at {}",
                        path.display(),
                        n.record_offset
                    )),
                }
            }
        }
    }
}

/// Where to connect for the online report.
#[derive(Debug, Clone)]
pub struct Online {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// AUTH password.
    pub password: Option<String>,
    /// AUTH user (with `password`).
    pub user: Option<String>,
}

/// Keys asked about per pipelined round trip.
const BATCH: usize = 256;

/// Online report through SCAN, TYPE, MEMORY USAGE and the length commands. `progress` is told of each
/// key done; `total` is told of DBSIZE first.
pub fn online(
    target: &Online,
    db: Option<u16>,
    top: usize,
    families_shown: usize,
    total: &dyn Fn(u64),
    progress: &dyn Fn(u64),
) -> Result<BigkeysReport, String> {
    let mut client = Client::connect(&target.host, target.port).map_err(|e| e.to_string())?;
    if let Some(password) = &target.password {
        let mut args: Vec<&[u8]> = vec![b"AUTH"];
        if let Some(user) = &target.user {
            args.push(user.as_bytes());
        }
        args.push(password.as_bytes());
        if let Reply::Error(e) = client.call(&args).map_err(|e| e.to_string())? {
            return Err(format!("AUTH failed: {e}"));
        }
    }
    let db = db.unwrap_or(0);
    if let Reply::Error(e) = client.call(&[b"SELECT", db.to_string().as_bytes()]).map_err(|e| e.to_string())? {
        return Err(format!("SELECT {db} failed: {e}"));
    }
    if let Reply::Integer(n) = client.call(&[b"DBSIZE"]).map_err(|e| e.to_string())? {
        total(n.max(0) as u64);
    }
    let mut memory_usage = true;
    let mut collector = Collector::new(top);
    let mut cursor = b"0".to_vec();
    let io = |e: std::io::Error| e.to_string();
    loop {
        let reply = client.call(&[b"SCAN", &cursor, b"COUNT", b"1000"]).map_err(io)?;
        let Reply::Array(mut parts) = reply else { return Err(format!("unexpected SCAN reply {reply:?}")) };
        let keys = match parts.pop() {
            Some(Reply::Array(keys)) => keys,
            other => return Err(format!("unexpected SCAN reply {other:?}")),
        };
        cursor = match parts.pop() {
            Some(Reply::Bulk(c)) => c,
            other => return Err(format!("unexpected SCAN cursor {other:?}")),
        };
        let keys: Vec<Vec<u8>> =
            keys.into_iter().filter_map(|k| if let Reply::Bulk(k) = k { Some(k) } else { None }).collect();
        for chunk in keys.chunks(BATCH) {
            let types =
                client.pipeline(chunk.iter().map(|k| vec![b"TYPE".to_vec(), k.clone()]).collect()).map_err(io)?;
            let mut commands = Vec::new();
            for (key, kind) in chunk.iter().zip(&types) {
                let kind = match kind {
                    Reply::Status(s) => s.clone(),
                    _ => "none".into(),
                };
                let length: &[u8] = match kind.as_str() {
                    "string" => b"STRLEN",
                    "hash" => b"HLEN",
                    "list" => b"LLEN",
                    "set" => b"SCARD",
                    "zset" => b"ZCARD",
                    "stream" => b"XLEN",
                    _ => b"EXISTS",
                };
                commands.push(vec![length.to_vec(), key.clone()]);
                if memory_usage {
                    commands.push(vec![
                        b"MEMORY".to_vec(),
                        b"USAGE".to_vec(),
                        key.clone(),
                        b"SAMPLES".to_vec(),
                        b"0".to_vec(),
                    ]);
                }
            }
            let replies = client.pipeline(commands).map_err(io)?;
            let per_key = if memory_usage { 2 } else { 1 };
            if memory_usage && replies.iter().skip(1).step_by(2).any(|r| matches!(r, Reply::Error(_))) {
                // MEMORY USAGE is not there (an older Velo): estimate from lengths from here on.
                memory_usage = false;
            }
            for (i, (key, kind)) in chunk.iter().zip(&types).enumerate() {
                let kind = match kind {
                    Reply::Status(s) if s != "none" => s.clone(),
                    _ => continue, // expired or deleted since SCAN
                };
                let length = match replies.get(i * per_key) {
                    Some(Reply::Integer(n)) => *n.max(&0) as u64,
                    _ => 0,
                };
                let usage = match replies.get(i * per_key + 1) {
                    Some(Reply::Integer(n)) if per_key == 2 => Some(*n.max(&0) as u64),
                    _ => None,
                };
                let is_string = kind == "string";
                let raw = key.len() as u64 + if is_string { length } else { 0 };
                collector.add(Candidate {
                    key,
                    db,
                    kind: &kind,
                    stored: usage.unwrap_or(raw),
                    raw,
                    elements: (!is_string && kind != "MBbloom--").then_some(length),
                    split: false,
                });
                progress(1);
            }
        }
        if cursor == b"0" {
            break;
        }
    }
    let mut notes = vec!["raw bytes: key plus STRLEN for strings, key only for other types".to_string()];
    notes.push(if memory_usage {
        "stored bytes: MEMORY USAGE (SAMPLES 0)".to_string()
    } else {
        "MEMORY USAGE is not supported by the server: stored bytes are estimated as raw bytes".to_string()
    });
    // Velo names each family's active dictionary; Redis answers an error, which leaves none.
    let dictionaries = client.call(&[b"VELO", b"FAMILIES"]).map(|r| reply_dictionaries(&r)).unwrap_or_default();
    Ok(collector.finish(
        "online",
        format!("{}:{}", target.host, target.port),
        Some(db),
        families_shown,
        notes,
        Vec::new(),
        &dictionaries,
    ))
}
