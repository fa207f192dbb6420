//! Writing the keys of a Velo engine as an RDB file: what `velo rdb-dump`, SAVE and BGSAVE do. Keys
//! are read database by database in scan order, each under its slot lock (a split collection is
//! materialised one key at a time), and streamed through [`RdbWriter`]. The result is consistent per
//! key; it is a point-in-time snapshot only when no writer runs meanwhile (SAVE holds the server's
//! command lock exclusively; an offline directory has no writers).

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;

use super::store::{self, ExportError};
use super::write::RdbWriter;
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

/// Writes the selected keys of `engine` to `out` as RDB version 10; `progress` is told of each key.
pub fn dump<W: Write>(
    engine: &Engine,
    dbmap: &DbMap,
    out: W,
    options: &DumpOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<(W, DumpSummary), DumpError> {
    let engine_err = |e: String| DumpError::Engine(e);
    let mut writer = RdbWriter::new(out, options.compress)?;
    let mut summary = DumpSummary::default();
    for logical in 0..options.databases.max(1) {
        if !options.dbs.is_empty() && !options.dbs.contains(&logical) {
            continue;
        }
        let db = dbmap.physical(logical);
        let size = engine.dbsize(db).map_err(|e| engine_err(e.to_string()))?;
        if size == 0 {
            continue;
        }
        writer.select_db(logical as u64, size, 0)?;
        let mut cursor = 0;
        loop {
            let page = engine.scan(Some(db), cursor, 512).map_err(|e| engine_err(e.to_string()))?;
            for (_, key) in page.keys {
                if let Some(pattern) = &options.pattern {
                    if !crate::glob::matches(pattern, &key, false) {
                        continue;
                    }
                }
                let found = {
                    let mut slot = engine.lock_key(&key);
                    store::read(&mut slot, db, &key).map_err(|e| engine_err(format!("{e:?}")))?
                };
                match found {
                    None => {}
                    Some((Err(ExportError::Module), _)) => summary.skipped += 1,
                    Some((Err(error), _)) => {
                        return Err(engine_err(format!("key {}: {error}", String::from_utf8_lossy(&key))))
                    }
                    Some((Ok(value), expire)) => {
                        writer.key(&key, &value, expire)?;
                        *summary.written.entry(logical).or_default().entry(value.type_name()).or_default() += 1;
                        progress(1);
                    }
                }
            }
            cursor = page.cursor;
            if cursor == 0 {
                break;
            }
        }
    }
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
    let path = path.to_path_buf();
    let tmp = path.with_file_name(format!(
        ".{}.tmp-{}",
        path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        std::process::id()
    ));
    let file = std::fs::File::create(&tmp)?;
    let result = dump(engine, dbmap, std::io::BufWriter::with_capacity(1 << 20, file), options, progress);
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
