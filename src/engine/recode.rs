//! Dictionary compaction: re-encodes the values that name a *retired* dictionary (one that is no longer
//! its family's active dictionary, see [`DictionaryMap::retired`]) with their family's current one, and
//! removes a retired dictionary's file once a complete count finds no stored value naming it.
//!
//! One pass, slot after slot: the memtable's values, then every bucket of the table (a few buckets per
//! lock hold, so requests go on in between), each value not overridden by the memtable. A value naming a
//! retired dictionary is decoded and written again, through the WAL and memtable as any write, encoded as
//! a new write of its key would be (same type and expiry). The slot is then checkpointed, which commits
//! the new encodings to segments and pages durably and empties the WAL. No write can name a retired
//! dictionary (writes encode with the active one; every write path encodes from the decoded value), so
//! once every slot is done, the count of values naming each retired dictionary is complete. Only then,
//! with every slot locked and no snapshot reading (a snapshot's before-images may hold old envelopes), are
//! the files of the retired dictionaries counted zero removed, each before its entry in the map.
//!
//! Segments compressed with a trained dictionary (`segment::encode_segment_with_dictionary`) name it too:
//! a value whose segment uses a retired dictionary is written again as well, and its checkpoint puts it
//! in a segment of the family's active dictionary. A checkpoint in flight is finished before a slot is
//! visited (it may have looked its dictionaries up before the install that retired one); every later
//! checkpoint writes segments with active dictionaries only. So once the pass is complete no live value
//! lies in a segment of a retired dictionary, and segments that still name a removed one hold only dead
//! records: chunk compaction skips them (they cannot be decompressed, and need not be) and `velo check`
//! holds them against the directory only if a cell points into one.
//!
//! Crash safety: the re-encoded values are durable (the checkpoint) before any file is removed. A crash in
//! between leaves a retired dictionary that nothing names; the next pass removes it. A pass cut short (an
//! open transaction kept a checkpoint back, a snapshot is being read, the engine is closing) removes
//! nothing. Segment records of old values that died in the checkpoint may still name a removed
//! dictionary: they are garbage (no cell points at them), which nothing decodes and `velo check` does not
//! hold against the directory; chunk compaction drops them later.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::dictionary::DictionaryMap;
use super::envelope;
use super::error::{Error, Result};
use super::page::{self, Page};
use super::slot::{MemValue, Slot};
use super::{buckets, key, lock};

/// Buckets handled per lock hold.
const STEP_BUCKETS: u64 = 16;

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RecodeReport {
    /// The dictionaries that were retired when the pass began.
    pub retired: Vec<u32>,
    /// Values re-encoded.
    pub recoded: u64,
    /// Values seen (every stored value of every slot).
    pub values: u64,
    /// Values naming each dictionary after the pass (trained dictionaries only; ids above 1).
    pub references: BTreeMap<u32, u64>,

    /// Retired dictionaries whose files were removed.
    pub removed: Vec<u32>,
    /// Why nothing was removed, when the pass was cut short.
    pub deferred: Option<String>,
}

/// Runs one pass over `slots` (see the module docs). `stop` is asked between steps; when it says so the
/// pass ends early and removes nothing.
pub(crate) fn run(slots: &[Arc<Mutex<Slot>>], map: &DictionaryMap, stop: &dyn Fn() -> bool) -> Result<RecodeReport> {
    let retired = map.retired();
    let mut report = RecodeReport { retired: retired.clone(), ..RecodeReport::default() };
    if retired.is_empty() || !map.is_writable() {
        return Ok(report);
    }
    for slot in slots {
        let mut guard = lock(slot);
        guard.finish_in_flight()?;
        guard.recode_memtable(&retired, &mut report)?;
        drop(guard);
        let mut bucket = 0;
        loop {
            if stop() {
                report.deferred = Some("the engine is closing".into());
                return Ok(report);
            }
            let mut guard = lock(slot);
            let end = guard.meta.bucket_count();
            if bucket >= end {
                // Commit the new encodings; a checkpoint held back by an open transaction leaves the WAL
                // (and the layers below) naming old dictionaries.
                guard.checkpoint()?;
                if !guard.wal.is_empty() {
                    report.deferred =
                        Some(format!("slot {} could not be checkpointed (open transaction)", guard.index));
                }
                break;
            }
            let until = (bucket + STEP_BUCKETS).min(end);
            while bucket < until {
                guard.recode_bucket(bucket, &retired, &mut report)?;
                bucket += 1;
            }
        }
    }
    if report.deferred.is_some() {
        return Ok(report);
    }
    // Every slot locked: no snapshot can register while the files go.
    let guards: Vec<_> = slots.iter().map(|slot| lock(slot)).collect();
    if guards.iter().any(|g| g.snapshot.is_some()) {
        report.deferred = Some("a snapshot is being read".into());
        return Ok(report);
    }
    for id in &retired {
        if report.references.get(id).copied().unwrap_or(0) == 0 {
            map.remove(*id)?;
            report.removed.push(*id);
        }
    }
    drop(guards);
    if !report.removed.is_empty() {
        tracing::info!(removed = ?report.removed, recoded = report.recoded, "dictionary compaction removed retired dictionaries");
    }
    Ok(report)
}

impl Slot {
    /// Re-encodes the memtable's values that name a retired dictionary.
    fn recode_memtable(&mut self, retired: &[u32], report: &mut RecodeReport) -> Result<()> {
        let mut found = Vec::new();
        for ((_, db, key), entry) in self.memtable.iter() {
            if let MemValue::Set { kind, envelope } = &entry.value {
                found.push((*db, key.to_vec(), *kind, entry.expire_at, envelope.clone()));
            }
        }
        for (db, key, kind, expire_at, envelope) in found {
            let bytes = self.load_envelope(&envelope)?;
            self.recode_value(db, &key, kind, expire_at, &bytes, retired, report)?;
        }
        Ok(())
    }

    /// Re-encodes the values of one bucket (its whole chain) that name a retired dictionary; values the
    /// memtable overrides are skipped (the memtable pass saw them, and newer writes use active ones).
    fn recode_bucket(&mut self, bucket: u64, retired: &[u32], report: &mut RecodeReport) -> Result<()> {
        let mut cells = Vec::new();
        let mut id = buckets::PageId::bucket(bucket);
        for _ in 0..=self.meta.overflow_pages {
            let bytes = self.buckets.read_page(id)?;
            let page = Page::decode(&bytes[..], self.buckets.path(id.file), id.number * page::PAGE_SIZE as u64)?;
            cells.extend(page.cells);
            if page.next_overflow == 0 {
                break;
            }
            id = buckets::PageId::overflow(page.next_overflow);
        }
        for cell in cells {
            if cell.seq < self.flush_marker(cell.db) {
                continue;
            }
            let expire_at = match self.mem_entry(key::key_hash(cell.db, &cell.key).reverse_bits(), cell.db, &cell.key) {
                None => cell.expire_at,
                // Only the expiry changed: the value below is still the key's.
                Some(entry) if matches!(entry.value, MemValue::Retime) => entry.expire_at,
                Some(_) => continue,
            };
            let bytes = self.cell_envelope(&cell)?;
            // A value in a segment compressed with a retired dictionary moves to a new segment.
            let in_retired_segment = match &cell.value {
                page::CellValue::Segment(location) => {
                    let file_len = self.meta.chunk_files.get(&location.file).map_or(0, |c| c.committed_len);
                    self.chunks
                        .segment_dictionary(location.file, location.segment_offset, file_len)?
                        .is_some_and(|id| retired.contains(&id))
                }
                _ => false,
            };
            if in_retired_segment {
                report.values += 1;
                let map = self.config.dictionaries.clone();
                let (_, value) = envelope::decode(&bytes, &map).map_err(|err| match err {
                    envelope::EnvelopeError::DictMissing(id) => Error::DictMissing(id),
                    envelope::EnvelopeError::Malformed(what) => {
                        Error::corrupt(self.dir.clone(), 0, format!("value envelope of a stored value: {what}"))
                    }
                })?;
                let mut encoded = map.encode_quiet(cell.kind, &cell.key, &value, self.config.compression);
                envelope::mark_string(&mut encoded, envelope::string_encoding(&bytes));
                if let Some(id) = envelope::dictionary_id(&encoded).filter(|&id| id > envelope::DICT_PLAIN_ZSTD) {
                    *report.references.entry(id).or_insert(0) += 1;
                }
                self.rewrite_envelope(cell.db, &cell.key, cell.kind, expire_at, encoded)?;
                report.recoded += 1;
                continue;
            }
            self.recode_value(cell.db, &cell.key, cell.kind, expire_at, &bytes, retired, report)?;
        }
        Ok(())
    }

    /// Counts one stored value and, if it names a retired dictionary, writes it again encoded as a new
    /// write of its key would be.
    #[allow(clippy::too_many_arguments)]
    fn recode_value(
        &mut self,
        db: u16,
        key: &[u8],
        kind: envelope::ValueKind,
        expire_at: u64,
        bytes: &[u8],
        retired: &[u32],
        report: &mut RecodeReport,
    ) -> Result<()> {
        report.values += 1;
        let mut id = envelope::dictionary_id(bytes);
        if id.is_some_and(|id| retired.contains(&id)) {
            let map = self.config.dictionaries.clone();
            let (_, value) = envelope::decode(bytes, &map).map_err(|err| match err {
                envelope::EnvelopeError::DictMissing(id) => Error::DictMissing(id),
                envelope::EnvelopeError::Malformed(what) => {
                    Error::corrupt(self.dir.clone(), 0, format!("value envelope of a stored value: {what}"))
                }
            })?;
            let mut encoded = map.encode_quiet(kind, key, &value, self.config.compression);
            envelope::mark_string(&mut encoded, envelope::string_encoding(bytes));
            id = envelope::dictionary_id(&encoded);
            self.rewrite_envelope(db, key, kind, expire_at, encoded)?;
            report.recoded += 1;
        }
        if let Some(id) = id.filter(|&id| id > envelope::DICT_PLAIN_ZSTD) {
            *report.references.entry(id).or_insert(0) += 1;
        }
        Ok(())
    }
}
