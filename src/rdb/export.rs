//! Writing the keys of a Velo engine as an RDB file: what `velo rdb-dump`, SAVE and BGSAVE do. The keys
//! are those of one instant: a point-in-time snapshot (`engine::snapshot`) is registered first, and
//! read database by database, slot by slot, a range of keys at a time under the slot lock (a split
//! collection is materialised one key at a time through the snapshot's view), then streamed through
//! [`RdbWriter`] while writers go on.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use super::store::{self, ExportError, Stored};
use super::write::{RdbWriter, Shape};
use crate::engine::snapshot::Snapshot;
use crate::engine::Engine;
use crate::server::dbmap::DbMap;

/// What to write.
#[derive(Debug, Clone, Default)]
pub struct DumpOptions {
    /// Logical databases to include (empty: all).
    pub dbs: Vec<u16>,
    /// Only keys matching this glob pattern.
    pub pattern: Option<Vec<u8>>,
    /// Number of logical databases.
    pub databases: u16,
    /// LZF-compress strings (Redis's `rdbcompression`).
    pub compress: bool,
    /// Function libraries (their source code) to write before the keys.
    pub functions: Vec<bytes::Bytes>,
    /// No writer waits for the slot locks (an offline `velo rdb-dump`): the snapshot is read in large
    /// ranges (see `OFFLINE_RANGE_BYTES`) instead of a live server's short ones.
    pub offline: bool,
}

/// What a dump wrote.
#[derive(Debug, Default, Serialize)]
pub struct DumpSummary {
    /// Keys written per logical database and type.
    pub written: BTreeMap<u16, BTreeMap<&'static str, u64>>,
    /// Keys with no RDB form (bloom filters), skipped.
    pub skipped: u64,
    /// Bytes written.
    pub bytes: u64,
}

impl DumpSummary {
    /// Keys written.
    pub fn total(&self) -> u64 {
        self.written.values().flat_map(|types| types.values()).sum()
    }
}

/// Why a dump failed.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// Writing the output failed.
    #[error("write: {0}")]
    Io(#[from] std::io::Error),
    /// The engine failed.
    #[error("engine: {0}")]
    Engine(String),
}

/// RAM the before-images of a dump's snapshot may hold before they spill to a file in the data directory.
pub const SNAPSHOT_RAM: usize = 64 << 20;

/// The (logical, physical) databases `options` selects, in logical order: what a snapshot must cover.
pub fn selected_dbs(dbmap: &DbMap, options: &DumpOptions) -> Vec<(u16, u16)> {
    (0..options.databases.max(1))
        .filter(|logical| options.dbs.is_empty() || options.dbs.contains(logical))
        .map(|logical| (logical, dbmap.physical(logical)))
        .collect()
}

/// Takes a point-in-time snapshot of the selected databases of `engine` (see [`dump_snapshot`]).
pub fn snapshot(
    engine: &Engine,
    dbmap: &DbMap,
    options: &DumpOptions,
) -> Result<(Snapshot, Vec<(u16, u16)>), DumpError> {
    let dbs = selected_dbs(dbmap, options);
    let physical: Vec<u16> = dbs.iter().map(|(_, physical)| *physical).collect();
    let snapshot = engine.snapshot(&physical, SNAPSHOT_RAM).map_err(|e| DumpError::Engine(e.to_string()))?;
    Ok((snapshot, dbs))
}

/// Writes the selected keys of `engine` to `out` as RDB version 10, as of one instant (a snapshot
/// registered now); `progress` is told of each key.
pub fn dump<W: Write>(
    engine: &Engine,
    dbmap: &DbMap,
    out: W,
    options: &DumpOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<(W, DumpSummary), DumpError> {
    let (snapshot, dbs) = snapshot(engine, dbmap, options)?;
    dump_snapshot(&snapshot, &dbs, out, options, progress)
}

/// Keys a live server's dump reads per range under a slot lock: the slot's writers wait meanwhile.
const RANGE_KEYS: usize = 512;
/// Key and value bytes an offline dump ([`DumpOptions::offline`]) reads per range. A bulk-loaded slot's
/// values lie in segments in arrival order while ranges go in bucket order; each range decompresses
/// every segment holding one of its values once, so the larger the range, the fewer times each segment
/// is decompressed (with 64 MiB, once per 64 MiB of a slot's values). The range's values are held in
/// memory meanwhile, about twice these bytes.
const OFFLINE_RANGE_BYTES: usize = 64 << 20;
/// Keys handed from the reading thread to the writing one at a time.
const BATCH_KEYS: usize = 4096;
/// Batches queued between the two threads.
const BATCHES_QUEUED: usize = 4;

/// A key's value as RDB carries it, with the encoding it is written in (OBJECT ENCODING's).
type Shaped = (Stored, Shape);

/// Keys read from a snapshot, on their way to the writer.
struct Batch {
    logical: u16,
    /// The database's RESIZEDB hint, with the batch holding its first key written: SELECTDB goes before it.
    select: Option<u64>,
    keys: Vec<(Vec<u8>, Shaped)>,
}

/// Writes the keys of `snapshot` in the databases `dbs` ((logical, physical), as registered) to `out`
/// as RDB version 10: the function libraries in `options` first, then each database slot by slot, a
/// range of keys at a time read under the slot lock and written out after it is released.
///
/// Two threads: a reader (a scoped thread) reads the ranges and materialises their values, and the
/// calling thread encodes them into RDB and writes them, so reading the next range (segment
/// decompression, collections' parts) overlaps the encoding (LZF, CRC64) and writing of the last one.
pub fn dump_snapshot<W: Write>(
    snapshot: &Snapshot,
    dbs: &[(u16, u16)],
    out: W,
    options: &DumpOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<(W, DumpSummary), DumpError> {
    let mut writer = RdbWriter::new(out, options.compress)?;
    for library in &options.functions {
        writer.function(library)?;
    }
    let mut summary = DumpSummary::default();
    std::thread::scope(|scope| {
        let (send, receive) = std::sync::mpsc::sync_channel(BATCHES_QUEUED);
        // Written batches go back to the reader, which frees their keys and values: memory is freed
        // fastest by the thread that allocated it.
        let (give_back, returned) = std::sync::mpsc::sync_channel(BATCHES_QUEUED + 1);
        let reader = std::thread::Builder::new()
            .name("rdb-dump-read".into())
            .spawn_scoped(scope, move || read_batches(snapshot, dbs, options, &send, &returned))?;
        let written = write_batches(receive, &give_back, &mut writer, &mut summary, progress);
        let read = reader.join().unwrap_or_else(|_| Err(DumpError::Engine("the snapshot reader panicked".into())));
        // The reader's error first: a writer's error may only be the reader hanging up.
        read.and(written)
    })?;
    snapshot.check().map_err(|e| DumpError::Engine(e.to_string()))?;
    // What finish() adds: the EOF opcode and the 8-byte CRC64.
    summary.bytes = writer.written() + 9;
    Ok((writer.finish()?, summary))
}

/// The writing side of [`dump_snapshot`]: encodes and writes the batches as they come, until the
/// reader is done (or hangs up after an error, which it returns itself).
fn write_batches<W: Write>(
    receive: std::sync::mpsc::Receiver<Batch>,
    give_back: &std::sync::mpsc::SyncSender<Vec<(Vec<u8>, Shaped)>>,
    writer: &mut RdbWriter<W>,
    summary: &mut DumpSummary,
    progress: &mut dyn FnMut(u64),
) -> Result<(), DumpError> {
    for batch in receive {
        let mut select = batch.select;
        let mut written = 0;
        for (key, ((value, expire), shape)) in &batch.keys {
            match value {
                Err(ExportError::Module) => summary.skipped += 1,
                Err(error) => return Err(DumpError::Engine(format!("key {}: {error}", String::from_utf8_lossy(key)))),
                Ok(value) => {
                    if let Some(size) = select.take() {
                        // RESIZEDB is a hint: the database's current size.
                        writer.select_db(batch.logical as u64, size, 0)?;
                    }
                    writer.key_shaped(key, value, *expire, *shape)?;
                    *summary.written.entry(batch.logical).or_default().entry(value.type_name()).or_default() += 1;
                    written += 1;
                }
            }
        }
        progress(written);
        // Dropped here instead when the reader has enough back or is done.
        let _ = give_back.try_send(batch.keys);
    }
    Ok(())
}

/// The reading side of [`dump_snapshot`]: reads every selected database slot by slot, range by range,
/// and sends the keys on. Returns early without an error when the writer hung up (it failed).
fn read_batches(
    snapshot: &Snapshot,
    dbs: &[(u16, u16)],
    options: &DumpOptions,
    send: &std::sync::mpsc::SyncSender<Batch>,
    returned: &std::sync::mpsc::Receiver<Vec<(Vec<u8>, Shaped)>>,
) -> Result<(), DumpError> {
    let engine_err = |e: String| DumpError::Engine(e);
    let (want, want_bytes) = if options.offline { (usize::MAX, OFFLINE_RANGE_BYTES) } else { (RANGE_KEYS, usize::MAX) };
    let mut keys: Vec<(Vec<u8>, Shaped)> = Vec::with_capacity(BATCH_KEYS);
    // A written batch's list, emptied, for the next batch.
    let mut spare: Option<Vec<(Vec<u8>, Shaped)>> = None;
    let next_list = |spare: &mut Option<Vec<(Vec<u8>, Shaped)>>| {
        while let Ok(mut list) = returned.try_recv() {
            list.clear();
            if spare.is_none() {
                *spare = Some(list);
            }
        }
        spare.take().unwrap_or_else(|| Vec::with_capacity(BATCH_KEYS))
    };
    for &(logical, db) in dbs {
        // Whether the database's SELECTDB (with its size hint) went out with a batch.
        let mut selected = false;
        for slot in 0..snapshot.slot_count() {
            let mut position = 0;
            loop {
                let mut failure = None;
                let mut hung_up = false;
                let next = snapshot
                    .read_values_within(slot, db, position, want, want_bytes, &mut |slot, key, entry| {
                        if failure.is_some() || hung_up {
                            return;
                        }
                        if let Some(pattern) = &options.pattern {
                            if !crate::glob::matches(pattern, &key, false) {
                                return;
                            }
                        }
                        match store::from_entry(slot, db, &key, entry) {
                            Ok(Some(stored)) => keys.push((key, stored)),
                            Ok(None) => {}
                            Err(error) => failure = Some(format!("{error:?}")),
                        }
                        // Offline, a range is large: its keys go to the writer as they are materialised.
                        // (A live server's ranges are short, and nothing waits on the writer under a lock.)
                        if options.offline && selected && keys.len() >= BATCH_KEYS {
                            let keys = std::mem::replace(&mut keys, next_list(&mut spare));
                            hung_up = send.send(Batch { logical, select: None, keys }).is_err();
                        }
                    })
                    .map_err(|e| engine_err(e.to_string()))?;
                if let Some(failure) = failure {
                    return Err(engine_err(failure));
                }
                if hung_up {
                    return Ok(());
                }
                let mut select = None;
                if !selected && keys.iter().any(|(_, ((value, _), _))| value.is_ok()) {
                    // The hint as of the range holding the database's first key.
                    let mut size = 0;
                    for slot in 0..snapshot.slot_count() {
                        size += snapshot.size_hint(slot, db).map_err(|e| engine_err(e.to_string()))?;
                    }
                    select = Some(size);
                    selected = true;
                }
                if !keys.is_empty() {
                    let keys = std::mem::replace(&mut keys, next_list(&mut spare));
                    if send.send(Batch { logical, select, keys }).is_err() {
                        return Ok(());
                    }
                }
                match next {
                    Some(next) => position = next,
                    None => break,
                }
            }
        }
    }
    Ok(())
}

/// Writes to a temporary file next to `path`, fsyncs it and renames it over `path`, so `path` is either
/// the previous file or the complete new one.
pub fn write_file(
    engine: &Engine,
    dbmap: &DbMap,
    path: &std::path::Path,
    options: &DumpOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<DumpSummary, DumpError> {
    let (snapshot, dbs) = snapshot(engine, dbmap, options)?;
    write_snapshot_file(&snapshot, &dbs, path, options, progress)
}

/// As [`write_file`], from a snapshot registered earlier (BGSAVE registers it in the command's thread
/// and writes the file in another).
pub fn write_snapshot_file(
    snapshot: &Snapshot,
    dbs: &[(u16, u16)],
    path: &std::path::Path,
    options: &DumpOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<DumpSummary, DumpError> {
    let path = path.to_path_buf();
    let tmp = path.with_file_name(format!(
        ".{}.tmp-{}",
        path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        std::process::id()
    ));
    let file = std::fs::File::create(&tmp)?;
    let result = dump_snapshot(snapshot, dbs, std::io::BufWriter::with_capacity(1 << 20, file), options, progress);
    let (writer, summary) = match result {
        Ok(done) => done,
        Err(error) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(error);
        }
    };
    let file = writer.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if let Ok(dir) = std::fs::File::open(parent) {
            let _ = dir.sync_all();
        }
    }
    Ok(summary)
}
