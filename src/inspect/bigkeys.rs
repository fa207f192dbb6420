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

use std::collections::HashMap;
use std::io::Read;

use serde::Serialize;

use crate::elements::{is_split, OWNER_DB_FLAG, PART_DB_FLAG};
use crate::engine::format::FILE_HEADER_LEN;
use crate::engine::page::{CellValue, SegmentLocation};
use crate::engine::segment as seg;
use crate::engine::wal::WalOp;
use crate::engine::{envelope, Error, ValueKind};

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
}

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

/// Collects key stats into the report.
struct Collector {
    top: usize,
    per_type: HashMap<String, (Totals, Vec<KeyStat>, Vec<KeyStat>)>,
    families: HashMap<Vec<u8>, (u64, u64, u64)>,
    totals: Totals,
}

impl Collector {
    fn new(top: usize) -> Self {
        Collector { top: top.max(1), per_type: HashMap::new(), families: HashMap::new(), totals: Totals::default() }
    }

    fn add(&mut self, key: &[u8], stat: KeyStat) {
        self.totals.keys += 1;
        self.totals.raw_bytes += stat.raw_bytes;
        self.totals.stored_bytes += stat.stored_bytes;
        self.totals.elements += stat.elements.unwrap_or(0);
        let family = key.iter().rposition(|&b| b == b':').map_or(&key[..0], |at| &key[..at]);
        let entry = match self.families.get_mut(family) {
            Some(entry) => entry,
            None => self.families.entry(family.to_vec()).or_default(),
        };
        entry.0 += 1;
        entry.1 += stat.raw_bytes;
        entry.2 += stat.stored_bytes;
        let top = self.top;
        if !self.per_type.contains_key(&stat.kind) {
            self.per_type.insert(stat.kind.clone(), Default::default());
        }
        let Some((totals, by_bytes, by_elements)) = self.per_type.get_mut(&stat.kind) else { return };
        totals.keys += 1;
        totals.raw_bytes += stat.raw_bytes;
        totals.stored_bytes += stat.stored_bytes;
        totals.elements += stat.elements.unwrap_or(0);
        if stat.elements.is_some() {
            by_elements.push(stat.clone());
            if by_elements.len() > top * 8 {
                by_elements.sort_by(|a, b| b.elements.cmp(&a.elements).then_with(|| a.key.cmp(&b.key)));
                by_elements.truncate(top);
            }
        }
        by_bytes.push(stat);
        if by_bytes.len() > top * 8 {
            by_bytes.sort_by(|a, b| b.stored_bytes.cmp(&a.stored_bytes).then_with(|| a.key.cmp(&b.key)));
            by_bytes.truncate(top);
        }
    }

    fn finish(
        self,
        source: &'static str,
        target: String,
        db: Option<u16>,
        families_shown: usize,
        notes: Vec<String>,
        problems: Vec<String>,
    ) -> BigkeysReport {
        let top = self.top;
        let mut types: Vec<TypeReport> = self
            .per_type
            .into_iter()
            .map(|(kind, (totals, mut by_bytes, mut by_elements))| {
                by_bytes.sort_by(|a, b| b.stored_bytes.cmp(&a.stored_bytes).then_with(|| a.key.cmp(&b.key)));
                by_bytes.truncate(top);
                by_elements.sort_by(|a, b| b.elements.cmp(&a.elements).then_with(|| a.key.cmp(&b.key)));
                by_elements.truncate(top);
                TypeReport {
                    kind,
                    keys: totals.keys,
                    stored_bytes: totals.stored_bytes,
                    raw_bytes: totals.raw_bytes,
                    elements: totals.elements,
                    top_by_bytes: by_bytes,
                    top_by_elements: by_elements,
                }
            })
            .collect();
        types.sort_by(|a, b| a.kind.cmp(&b.kind));
        let family_count = self.families.len() as u64;
        let mut families: Vec<FamilyReport> = self
            .families
            .into_iter()
            .map(|(family, (keys, raw_bytes, stored_bytes))| FamilyReport {
                family: escape(&family),
                keys,
                raw_bytes,
                stored_bytes,
            })
            .collect();
        families.sort_by(|a, b| b.stored_bytes.cmp(&a.stored_bytes).then_with(|| a.family.cmp(&b.family)));
        families.truncate(families_shown);
        BigkeysReport { source, target, db, types, families, family_count, totals: self.totals, notes, problems }
    }
}

/// The first `n` bytes of an envelope's decoded value (decompressing no more than needed).
fn value_head(env: &[u8], n: usize) -> Option<Vec<u8>> {
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
fn elements_of(kind: ValueKind, env: &[u8]) -> (Option<u64>, bool) {
    match kind {
        ValueKind::Hash | ValueKind::List | ValueKind::Set | ValueKind::SortedSet | ValueKind::Stream => {
            let Some(head) = value_head(env, 21) else { return (None, false) };
            if is_split(&head) {
                let count = head.get(13..21).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes);
                return (count, true);
            }
            if kind == ValueKind::Stream {
                let value = envelope::decode(env, &envelope::DictionaryMap::default()).ok();
                let stream = value.and_then(|(_, bytes)| crate::types::stream::StreamValue::from_bytes(&bytes).ok());
                return (stream.map(|s| s.len() as u64), false);
            }
            (head.get(..4).and_then(|b| b.try_into().ok()).map(|b| u32::from_le_bytes(b) as u64), false)
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
    fn of(kind: ValueKind, env: &[u8]) -> ValueInfo {
        let (elements, split) = elements_of(kind, env);
        let split_id = if split {
            value_head(env, 13).and_then(|h| h.get(5..13)?.try_into().ok()).map(u64::from_le_bytes)
        } else {
            None
        };
        ValueInfo { elements, split, raw_len: envelope::value_len(env).unwrap_or(0) as u64, split_id }
    }
}

/// A WAL version of a key: its record length and envelope.
type WalValue = (u64, Vec<u8>);

/// A user key waiting for its value (offline).
struct Item {
    db: u16,
    key: Vec<u8>,
    kind: ValueKind,
    /// Cell bytes (or WAL record bytes).
    base: u64,
    /// What the value's envelope says, once read (the envelope itself is not kept: a slot's items
    /// would otherwise hold every value of the slot).
    value: Option<ValueInfo>,
    /// Stored bytes beyond `base` (record share or big file).
    extra: u64,
}

/// A segment record somebody needs: a user key's value (`item`) or a part's size (`part`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Need {
    file: u32,
    segment_offset: u32,
    record_offset: u32,
    envelope_len: u32,
    target: Target,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    Item(usize),
    Part(u16, u64),
}

/// Offline report from the files of `dir`. `progress` is told of each slot done.
pub fn offline(
    dir: &DataDir,
    db: Option<u16>,
    top: usize,
    families_shown: usize,
    progress: &dyn Fn(u64),
) -> Result<BigkeysReport, Error> {
    let mut collector = Collector::new(top);
    let mut problems = Vec::new();
    for index in 0..dir.slot_count as usize {
        match dir.slot(index) {
            Ok(view) => scan_slot(&view, db, &mut collector, &mut problems),
            Err(err) => problems.push(err.to_string()),
        }
        progress(1);
    }
    let notes = vec![
        "stored bytes: cell + record share of its (compressed) segment, big-value file or WAL record; split collections include their parts".into(),
    ];
    Ok(collector.finish("offline", dir.path.display().to_string(), db, families_shown, notes, problems))
}

fn scan_slot(view: &SlotView, want_db: Option<u16>, collector: &mut Collector, problems: &mut Vec<String>) {
    let meta = &view.meta;
    // Newer versions in the WAL win over the cells (replayed as an open would).
    let wal = view.wal();
    if let Some(stop) = &wal.stop {
        problems.push(format!("WAL read stopped: {stop}"));
    }
    let mut overlay: HashMap<(u16, Vec<u8>), Option<WalValue>> = HashMap::new();
    let mut flush_seq: HashMap<u16, u64> = meta.db_flush_seq.iter().map(|(d, s)| (*d, *s)).collect();
    let mut flush_all = 0u64;
    for (_, record) in &wal.records {
        match record.op {
            WalOp::Set => {
                let len = crate::engine::wal::record_len(record.key.len(), record.envelope.len()) as u64;
                overlay.insert((record.db, record.key.clone()), Some((len, record.envelope.clone())));
            }
            WalOp::Delete => {
                overlay.insert((record.db, record.key.clone()), None);
            }
            WalOp::Expire => {}
            WalOp::FlushDb => {
                flush_seq.insert(record.db, record.seq);
                flush_seq.insert(record.db | PART_DB_FLAG, record.seq);
                flush_seq.insert(record.db | OWNER_DB_FLAG, record.seq);
                overlay.retain(|(d, _), _| d & 0x3fff != record.db);
            }
            WalOp::FlushAll => {
                flush_all = record.seq;
                overlay.clear();
            }
            WalOp::Commit => {}
        }
    }
    let user_db = |db: u16| db & 0xC000 == 0 && want_db.is_none_or(|w| w == db);
    let mut items: Vec<Item> = Vec::new();
    // Parts and owner records by (user db, collection id): (stored, raw).
    let mut parts: HashMap<(u16, u64), (u64, u64)> = HashMap::new();
    let mut needs: Vec<Need> = Vec::new();
    let part_id = |key: &[u8]| key.get(2..10).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes);
    for bucket in 0..meta.bucket_count() {
        let chain = view.chain(bucket);
        if let Some(problem) = chain.problem {
            problems.push(problem.to_string());
        }
        for read in chain.pages {
            let page = match read.page {
                Ok(page) => page,
                Err(err) => {
                    problems.push(err.to_string());
                    continue;
                }
            };
            for cell in page.cells {
                if cell.seq < flush_seq.get(&cell.db).copied().unwrap_or(0).max(flush_all) {
                    continue;
                }
                if cell.db & PART_DB_FLAG != 0 {
                    let user = cell.db & 0x3fff;
                    if want_db.is_some_and(|w| w != user)
                        || (!overlay.is_empty() && overlay.contains_key(&(cell.db, cell.key.clone())))
                    {
                        continue;
                    }
                    let Some(id) = part_id(&cell.key) else { continue };
                    let entry = parts.entry((user, id)).or_default();
                    entry.0 += cell.encoded_len() as u64;
                    match &cell.value {
                        CellValue::Inline(env) => entry.1 += env.len().saturating_sub(2) as u64,
                        CellValue::Segment(l) => {
                            entry.1 += (l.envelope_len as u64).saturating_sub(2);
                            needs.push(need(l, Target::Part(user, id)));
                        }
                        CellValue::Big { envelope_len, .. } => {
                            entry.1 += envelope_len.saturating_sub(2);
                            entry.0 += envelope_len + (FILE_HEADER_LEN + seg::RECORD_HEADER_LEN + 4) as u64;
                        }
                    }
                    continue;
                }
                if !user_db(cell.db) || (!overlay.is_empty() && overlay.contains_key(&(cell.db, cell.key.clone()))) {
                    continue;
                }
                let index = items.len();
                let mut item = Item {
                    db: cell.db,
                    key: cell.key.clone(),
                    kind: cell.kind,
                    base: cell.encoded_len() as u64,
                    value: None,
                    extra: 0,
                };
                match &cell.value {
                    CellValue::Inline(env) => item.value = Some(ValueInfo::of(cell.kind, env)),
                    CellValue::Segment(l) => needs.push(need(l, Target::Item(index))),
                    CellValue::Big { id, .. } => match view.read_big(*id) {
                        Ok((_, _, _, env)) => {
                            item.extra = std::fs::metadata(view.big_path(*id)).map_or(0, |m| m.len());
                            item.value = Some(ValueInfo::of(cell.kind, &env));
                        }
                        Err(err) => problems.push(err.to_string()),
                    },
                }
                items.push(item);
            }
        }
    }
    for ((db, key), value) in overlay {
        if let Some((len, env)) = value {
            let Ok(kind) = envelope::peek_kind(&env) else { continue };
            if db & PART_DB_FLAG != 0 {
                let user = db & 0x3fff;
                if want_db.is_none_or(|w| w == user) {
                    if let Some(id) = part_id(&key) {
                        let entry = parts.entry((user, id)).or_default();
                        entry.0 += len;
                        entry.1 += env.len().saturating_sub(2) as u64;
                    }
                }
            } else if user_db(db) {
                items.push(Item { db, key, kind, base: len, value: Some(ValueInfo::of(kind, &env)), extra: 0 });
            }
        }
    }
    // Each chunk file is read once, in order.
    needs.sort_unstable();
    let mut at = 0;
    while at < needs.len() {
        let file = needs[at].file;
        let end = at + needs[at..].partition_point(|n| n.file == file);
        let path = view.chunk_path(file);
        match super::read_file(&path) {
            Ok(bytes) => {
                let limit = view.committed_len(file).unwrap_or(bytes.len() as u64).min(bytes.len() as u64) as usize;
                let mut i = at;
                while i < end {
                    let offset = needs[i].segment_offset;
                    let group_end = i + needs[i..end].partition_point(|n| n.segment_offset == offset);
                    let decoded = bytes
                        .get(offset as usize..limit)
                        .ok_or_else(|| Error::corrupt(&path, offset as u64, "segment past the committed length"))
                        .and_then(|b| seg::decode_segment(b, &path, offset as u64));
                    match decoded {
                        Ok(Some(segment)) => {
                            let ratio = segment.stored_len as f64 / segment.payload.len().max(1) as f64;
                            for n in &needs[i..group_end] {
                                let share = (seg::record_len(0, n.envelope_len as usize) as f64 * ratio) as u64;
                                match n.target {
                                    Target::Part(user, id) => {
                                        parts.entry((user, id)).or_default().0 += share;
                                    }
                                    Target::Item(index) => {
                                        let item = &mut items[index];
                                        match seg::record_at(&segment.payload, n.record_offset as usize) {
                                            Some(r) if r.db == item.db && r.key == item.key => {
                                                item.extra = share + (item.key.len() as f64 * ratio) as u64;
                                                item.value = Some(ValueInfo::of(item.kind, r.envelope));
                                            }
                                            _ => problems.push(format!(
                                                "{}: segment {offset} has no record of key {} at {}",
                                                path.display(),
                                                escape(&item.key),
                                                n.record_offset
                                            )),
                                        }
                                    }
                                }
                            }
                        }
                        Ok(None) => problems.push(format!("{}: segment at {offset} is truncated", path.display())),
                        Err(err) => problems.push(err.to_string()),
                    }
                    i = group_end;
                }
            }
            Err(err) => problems.push(err.to_string()),
        }
        at = end;
    }
    for item in items {
        let Some(ValueInfo { elements, split, raw_len, split_id }) = item.value else { continue };
        let mut stored = item.base + item.extra;
        let mut raw = item.key.len() as u64 + raw_len;
        if split {
            if let Some(id) = split_id {
                let (part_stored, part_raw) = parts.get(&(item.db, id)).copied().unwrap_or_default();
                stored += part_stored;
                raw = item.key.len() as u64 + part_raw;
            }
        }
        let stat = KeyStat {
            key: escape(&item.key),
            db: item.db,
            kind: kind_name(item.kind).to_string(),
            stored_bytes: stored,
            raw_bytes: raw,
            elements,
            split,
        };
        collector.add(&item.key, stat);
    }
}

fn need(l: &SegmentLocation, target: Target) -> Need {
    Need {
        file: l.file,
        segment_offset: l.segment_offset,
        record_offset: l.record_offset,
        envelope_len: l.envelope_len,
        target,
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
                let stat = KeyStat {
                    key: escape(key),
                    db,
                    kind: kind.clone(),
                    stored_bytes: usage.unwrap_or(raw),
                    raw_bytes: raw,
                    elements: (!is_string && kind != "MBbloom--").then_some(length),
                    split: false,
                };
                collector.add(key, stat);
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
    Ok(collector.finish(
        "online",
        format!("{}:{}", target.host, target.port),
        Some(db),
        families_shown,
        notes,
        Vec::new(),
    ))
}
