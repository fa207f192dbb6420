//! Writing the keys of a Velo engine as an RDB file: what `velo rdb-dump`, SAVE and BGSAVE do. The keys
//! are those of one instant: a point-in-time snapshot (`engine::snapshot`) is registered first, and
//! read database by database, slot by slot, a range of keys at a time under the slot lock (a split
//! collection is materialised one key at a time through the snapshot's view), then streamed through
//! [`RdbWriter`] while writers go on.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use super::store::{self, ExportError, Stored};
use super::write::RdbWriter;
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

/// Writes the keys of `snapshot` in the databases `dbs` ((logical, physical), as registered) to `out`
/// as RDB version 10: the function libraries in `options` first, then each database slot by slot, a
/// range of keys at a time read under the slot lock and written out after it is released.
pub fn dump_snapshot<W: Write>(
    snapshot: &Snapshot,
    dbs: &[(u16, u16)],
    out: W,
    options: &DumpOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<(W, DumpSummary), DumpError> {
    let engine_err = |e: String| DumpError::Engine(e);
    let mut writer = RdbWriter::new(out, options.compress)?;
    for library in &options.functions {
        writer.function(library)?;
    }
    let mut summary = DumpSummary::default();
    // Reused for every range (a fresh vector each time costs page faults for its growth).
    let mut found: Vec<(Vec<u8>, Stored)> = Vec::with_capacity(1024);
    for &(logical, db) in dbs {
        let mut selected = false;
        for slot in 0..snapshot.slot_count() {
            let mut position = 0;
            loop {
                let mut failure = None;
                let next = snapshot
                    .read_values(slot, db, position, 512, &mut |slot, key, entry| {
                        if failure.is_some() {
                            return;
                        }
                        if let Some(pattern) = &options.pattern {
                            if !crate::glob::matches(pattern, key, false) {
                                return;
                            }
                        }
                        match store::from_entry(slot, db, key, entry) {
                            Ok(Some(stored)) => found.push((key.to_vec(), stored)),
                            Ok(None) => {}
                            Err(error) => failure = Some(format!("{error:?}")),
                        }
                    })
                    .map_err(|e| engine_err(e.to_string()))?;
                if let Some(failure) = failure {
                    return Err(engine_err(failure));
                }
                for (key, (value, expire)) in found.drain(..) {
                    match value {
                        Err(ExportError::Module) => summary.skipped += 1,
                        Err(error) => {
                            return Err(engine_err(format!("key {}: {error}", String::from_utf8_lossy(&key))))
                        }
                        Ok(value) => {
                            if !selected {
                                // RESIZEDB is a hint: the database's current size.
                                let mut size = 0;
                                for slot in 0..snapshot.slot_count() {
                                    size += snapshot.size_hint(slot, db).map_err(|e| engine_err(e.to_string()))?;
                                }
                                writer.select_db(logical as u64, size, 0)?;
                                selected = true;
                            }
                            writer.key(&key, &value, expire)?;
                            *summary.written.entry(logical).or_default().entry(value.type_name()).or_default() += 1;
                            progress(1);
                        }
                    }
                }
                match next {
                    Some(next) => position = next,
                    None => break,
                }
            }
        }
    }
    snapshot.check().map_err(|e| engine_err(e.to_string()))?;
    // What finish() adds: the EOF opcode and the 8-byte CRC64.
    summary.bytes = writer.written() + 9;
    Ok((writer.finish()?, summary))
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
