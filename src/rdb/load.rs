//! Loading RDB files into Velo: offline into an engine (what `velo rdb-restore --dir` does) and online
//! into a running Redis or Velo server through pipelined RESTORE commands (`--host`).
//!
//! An offline load into an empty directory reads the files once, straight into the engine's bulk
//! loader: it is atomic (published by one commit at the end), so damaged input or a module value under
//! `--strict` found half way simply abandons it, and no key can exist before it. Other offline loads
//! run two passes over the (memory-mapped) files. The first reads everything and checks it: damaged
//! input, with `--strict` module values, and with `--on-existing fail` keys that already exist all stop
//! the load before anything is written. The second writes the keys through the engine's batch writes,
//! a bounded batch at a time (collections large enough are split into parts exactly as the commands
//! would store them).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

use bytes::Bytes;
use serde::Serialize;

use super::read::{Item, Next, RdbReader, Record, Scratch, StringRecord};
use super::{store, write, RdbError};
use crate::engine::{BatchOp, Engine};
use crate::server::dbmap::DbMap;

/// What to do with a key that already exists in the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnExisting {
    /// Write nothing at all if any key of the files exists.
    #[default]
    Fail,
    /// Keep the existing key.
    Skip,
    /// Replace the existing key.
    Replace,
}

/// How to load.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Source database → destination database.
    pub db_map: Vec<(u64, u16)>,
    /// Existing keys.
    pub on_existing: OnExisting,
    /// Read and check only.
    pub dry_run: bool,
    /// Module values are an error instead of being skipped.
    pub strict: bool,
}

/// One input file.
#[derive(Debug, Serialize)]
pub struct FileSummary {
    /// Its name (`-` for standard input).
    pub path: String,
    /// Its RDB version.
    pub rdb_version: u16,
    /// Its size.
    pub bytes: u64,
    /// True when its CRC64 was present and checked.
    pub checksum_verified: bool,
}

/// What a load did.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    /// The input files.
    pub files: Vec<FileSummary>,
    /// Keys written, per destination database and type.
    pub loaded: BTreeMap<u16, BTreeMap<&'static str, u64>>,
    /// Keys whose expiry had passed (not loaded, as Redis does not load them).
    pub expired_skipped: u64,
    /// Existing keys kept (`--on-existing skip`).
    pub existing_skipped: u64,
    /// Existing keys replaced (`--on-existing replace`).
    pub existing_replaced: u64,
    /// Keys the destination refused (online loads).
    pub rejected: u64,
    /// Keys holding module values, skipped, by module name.
    pub modules_skipped: BTreeMap<String, u64>,
    /// Empty collections in the files, skipped as Redis skips them.
    pub empty_skipped: u64,
    /// Function libraries in the files not loaded (online loads do not send them).
    pub functions_skipped: u64,
    /// Function libraries loaded into the directory's FUNCTION store (offline loads).
    pub functions_loaded: u64,
    /// The function libraries' codes found in the files (an offline load adds them to `<dir>/functions`).
    #[serde(skip)]
    pub functions: Vec<bytes::Bytes>,
    /// True for a dry run (nothing written).
    pub dry_run: bool,
}

impl Summary {
    /// Keys written.
    pub fn total_loaded(&self) -> u64 {
        self.loaded.values().flat_map(|types| types.values()).sum()
    }

    /// True when some key was not loaded (skipped or rejected): exit code 1.
    pub fn any_skipped(&self) -> bool {
        self.expired_skipped + self.existing_skipped + self.rejected + self.empty_skipped > 0
            || !self.modules_skipped.is_empty()
            || self.functions_skipped > 0
    }
}

/// Why a load stopped.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file is damaged or unsupported.
    #[error("{file}: {error}")]
    Rdb {
        /// The file.
        file: String,
        /// What is wrong.
        error: RdbError,
    },
    /// Keys exist and `--on-existing fail`.
    #[error(
        "{count} key(s) already exist (first: db {db} key \"{}\"); nothing was written (use --on-existing skip or replace)",
        String::from_utf8_lossy(key).escape_debug()
    )]
    Exists {
        /// How many.
        count: u64,
        /// Database of the first.
        db: u16,
        /// The first.
        key: Bytes,
    },
    /// A module value with `--strict`.
    #[error("{file}: key \"{}\" holds a value of module {module} (not loaded; drop --strict to skip such keys)", String::from_utf8_lossy(key).escape_debug())]
    Module {
        /// The file.
        file: String,
        /// The key.
        key: Bytes,
        /// The module.
        module: String,
    },
    /// A source database number out of range.
    #[error("database {0} cannot be mapped (use --db-map {0}:N)")]
    Database(u64),
    /// The engine failed.
    #[error("engine: {0}")]
    Engine(String),
    /// The network or the remote server failed.
    #[error("{0}")]
    Remote(String),
}

fn map_db(options: &LoadOptions, db: u64) -> Result<u16, LoadError> {
    match options.db_map.iter().find(|(from, _)| *from == db) {
        Some((_, to)) => Ok(*to),
        None => u16::try_from(db).map_err(|_| LoadError::Database(db)),
    }
}

fn rdb_error(file: &str) -> impl Fn(RdbError) -> LoadError + '_ {
    move |error| LoadError::Rdb { file: file.to_string(), error }
}

/// A key read by [`walk`]: a string key borrowed from the input (or the reader's scratch), or any key
/// decoded.
enum KeyRead<'s> {
    String(StringRecord<'s>),
    Record(Record),
}

impl KeyRead<'_> {
    fn db(&self) -> u64 {
        match self {
            KeyRead::String(record) => record.db,
            KeyRead::Record(record) => record.db,
        }
    }

    fn key(&self) -> &[u8] {
        match self {
            KeyRead::String(record) => record.key,
            KeyRead::Record(record) => &record.key,
        }
    }

    fn into_record(self) -> Record {
        match self {
            KeyRead::String(record) => record.to_record(),
            KeyRead::Record(record) => record,
        }
    }
}

/// Walks every item of one file, calling `visit` with each key, and reporting the bytes read through
/// `progress`.
fn walk(
    file: &str,
    buf: &[u8],
    summary: Option<&mut Summary>,
    options: &LoadOptions,
    progress: &mut dyn FnMut(u64),
    mut visit: impl FnMut(KeyRead<'_>) -> Result<(), LoadError>,
) -> Result<FileSummary, LoadError> {
    let mut reader = RdbReader::new(buf).map_err(rdb_error(file))?;
    let mut local = Summary::default();
    let summary = summary.unwrap_or(&mut local);
    let mut reported = 0usize;
    let mut checksum_verified = false;
    let mut scratch = Scratch::default();
    while let Some(next) = reader.next_with(&mut scratch).map_err(rdb_error(file))? {
        match next {
            Next::String(record) => visit(KeyRead::String(record))?,
            Next::Item(Item::Key(record)) => visit(KeyRead::Record(record))?,
            Next::Item(item) => note_item(item, file, options, summary, &mut checksum_verified)?,
        }
        if reader.pos() - reported >= 1 << 20 {
            progress((reader.pos() - reported) as u64);
            reported = reader.pos();
        }
    }
    progress((reader.pos() - reported) as u64);
    Ok(FileSummary {
        path: file.to_string(),
        rdb_version: reader.version(),
        bytes: buf.len() as u64,
        checksum_verified,
    })
}

/// What [`walk`] does with an item that is not a key to load.
fn note_item(
    item: Item,
    file: &str,
    options: &LoadOptions,
    summary: &mut Summary,
    checksum_verified: &mut bool,
) -> Result<(), LoadError> {
    match item {
        Item::ModuleKey { key, module, .. } => {
            if options.strict {
                return Err(LoadError::Module { file: file.to_string(), key, module });
            }
            *summary.modules_skipped.entry(module).or_default() += 1;
        }
        Item::EmptyKey { .. } => summary.empty_skipped += 1,
        Item::Function(code) => {
            if !summary.functions.contains(&code) {
                summary.functions.push(code);
            }
        }
        Item::End { checksum_verified: verified } => *checksum_verified = verified,
        // (Keys go to the visitor.)
        Item::Key(_) | Item::Aux { .. } | Item::SelectDb(_) | Item::ResizeDb { .. } | Item::ModuleAux { .. } => {}
    }
    Ok(())
}

/// Writes in batches of about this many value bytes.
const BATCH_BYTES: usize = 8 << 20;
/// ...or this many keys.
const BATCH_KEYS: usize = 10_000;

/// How many times [`load_offline`] reads the files into `engine`: once into an empty directory (a bulk
/// load), twice otherwise (a checking pass, then the writing pass).
pub fn offline_passes(engine: &Engine, options: &LoadOptions) -> Result<u64, LoadError> {
    let bulk = !options.dry_run && engine.is_empty_for_bulk().map_err(|e| LoadError::Engine(e.to_string()))?;
    Ok(if bulk { 1 } else { 2 })
}

/// Loads `files` (name, bytes) into `engine`, databases mapped through the directory's `dbmap`.
/// `progress` is told of bytes read ([`offline_passes`] times the input in all).
pub fn load_offline(
    engine: &Engine,
    files: &[(String, &[u8])],
    options: &LoadOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<Summary, LoadError> {
    let dbmap = DbMap::open(engine.dir(), 16).map_err(|e| LoadError::Engine(e.to_string()))?;
    let now = crate::engine::system_clock_ms() as i64;
    let engine_err = |e: crate::engine::Error| LoadError::Engine(e.to_string());
    // Into an empty directory: one pass, through a bulk load (staged beside the slots, published at once;
    // dropped unpublished on any error, so nothing is written then).
    let bulk = if options.dry_run || !engine.is_empty_for_bulk().map_err(engine_err)? {
        None
    } else {
        Some(engine.bulk_load().map_err(engine_err)?)
    };
    if bulk.is_some() {
        let mut summary = Summary { dry_run: false, ..Summary::default() };
        let mut writer =
            Writer { engine, bulk, ops: vec![Vec::new(); engine.slot_count()], batch_bytes: 0, batch_keys: 0 };
        write_pass(&mut writer, &dbmap, files, options, progress, now, &mut summary)?;
        if let Some(load) = writer.bulk.take() {
            engine.commit_bulk(load).map_err(engine_err)?;
        }
        engine.sync().map_err(engine_err)?;
        return Ok(summary);
    }
    // Pass 1: read and check everything; nothing is written if anything is wrong.
    let mut conflicts: u64 = 0;
    let mut first_conflict: Option<(u16, Bytes)> = None;
    for (name, buf) in files {
        walk(name, buf, None, options, progress, |record| {
            let db = dbmap.physical(map_db(options, record.db())?);
            if options.on_existing == OnExisting::Fail && engine.exists(db, record.key()).map_err(engine_err)? {
                conflicts += 1;
                first_conflict.get_or_insert_with(|| (db, Bytes::copy_from_slice(record.key())));
            }
            Ok(())
        })?;
    }
    if let Some((db, key)) = first_conflict {
        return Err(LoadError::Exists { count: conflicts, db: dbmap.logical(db), key });
    }
    let mut summary = Summary { dry_run: options.dry_run, ..Summary::default() };
    // Pass 2: write, in one engine transaction over every slot: a crash leaves all of the load or none
    // of it.
    let transaction = (!options.dry_run).then(|| engine.transaction());
    let mut writer =
        Writer { engine, bulk: None, ops: vec![Vec::new(); engine.slot_count()], batch_bytes: 0, batch_keys: 0 };
    let result = write_pass(&mut writer, &dbmap, files, options, progress, now, &mut summary);
    if let Err(error) = result {
        if let Some(transaction) = transaction {
            transaction.abandon();
        }
        return Err(error);
    }
    if let Some(transaction) = transaction {
        transaction.commit().map_err(engine_err)?;
    }
    if !options.dry_run {
        engine.sync().map_err(engine_err)?;
    }
    Ok(summary)
}

/// Keys counted per (database, type) without a map look-up per key: a run of keys of the same pair (the
/// usual case) is added up first. (A list of every key's pair grew with the file: 240 MB at 10M keys.)
#[derive(Default)]
struct Tally {
    last: Option<(u16, &'static str)>,
    run: u64,
    counted: BTreeMap<(u16, &'static str), u64>,
}

impl Tally {
    fn add(&mut self, db: u16, type_name: &'static str) {
        if self.last == Some((db, type_name)) {
            self.run += 1;
            return;
        }
        self.close_run();
        self.last = Some((db, type_name));
        self.run = 1;
    }

    fn close_run(&mut self) {
        if let Some(pair) = self.last.take() {
            *self.counted.entry(pair).or_default() += self.run;
        }
        self.run = 0;
    }

    /// Adds the counts to `summary.loaded`.
    fn into_summary(mut self, summary: &mut Summary) {
        self.close_run();
        for ((db, type_name), count) in self.counted {
            *summary.loaded.entry(db).or_default().entry(type_name).or_default() += count;
        }
    }
}

/// Where pass 2 writes: a bulk load, or the engine's batches (per slot, flushed by size).
struct Writer<'e> {
    engine: &'e Engine,
    bulk: Option<crate::engine::BulkLoad>,
    ops: Vec<Vec<BatchOp>>,
    batch_bytes: usize,
    batch_keys: usize,
}

impl Writer<'_> {
    /// Writes per slot: a key's ops (its parts included, which live in its slot whatever their own keys
    /// hash to) must go to the home key's slot, so batches are per slot, not `Engine::write_batch`.
    fn add(&mut self, slot: usize, key_ops: Vec<BatchOp>) -> Result<(), LoadError> {
        if let Some(load) = &mut self.bulk {
            return load.write_slot(slot, key_ops).map_err(|e| LoadError::Engine(e.to_string()));
        }
        self.batch_bytes += key_ops
            .iter()
            .map(|op| match op {
                BatchOp::Set { key, value, .. } | BatchOp::SetString { key, value, .. } => key.len() + value.len(),
                BatchOp::Delete { key, .. } => key.len(),
            })
            .sum::<usize>();
        if let Some(batch) = self.ops.get_mut(slot) {
            batch.extend(key_ops);
        }
        self.batch_keys += 1;
        if self.batch_bytes >= BATCH_BYTES || self.batch_keys >= BATCH_KEYS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), LoadError> {
        for (index, batch) in self.ops.iter_mut().enumerate() {
            if !batch.is_empty() {
                let mut guard = self.engine.lock_slot(index);
                guard.write_batch(std::mem::take(batch)).map_err(|e| LoadError::Engine(e.to_string()))?;
                guard.commit().map_err(|e| LoadError::Engine(e.to_string()))?;
            }
        }
        self.batch_bytes = 0;
        self.batch_keys = 0;
        Ok(())
    }
}

fn write_pass(
    writer: &mut Writer<'_>,
    dbmap: &DbMap,
    files: &[(String, &[u8])],
    options: &LoadOptions,
    progress: &mut dyn FnMut(u64),
    now: i64,
    summary: &mut Summary,
) -> Result<(), LoadError> {
    let engine = writer.engine;
    let engine_err = |e: crate::engine::Error| LoadError::Engine(e.to_string());
    let bulk = writer.bulk.is_some();
    let mut file_summaries = Vec::new();
    for (name, buf) in files {
        let mut counts = Tally::default();
        let mut expired = 0u64;
        let (mut kept, mut replaced) = (0u64, 0u64);
        let file_summary = walk(name, buf, Some(&mut *summary), options, progress, |read| {
            let logical = map_db(options, read.db())?;
            let db = dbmap.physical(logical);
            if bulk {
                if let KeyRead::String(record) = &read {
                    // A string into a bulk load: copied once, from the input into the loader's buffers.
                    if record.expire_ms.is_some_and(|at| at <= now) {
                        expired += 1;
                        return Ok(());
                    }
                    counts.add(logical, "string");
                    let slot = engine.slot_of(record.key);
                    let expire = record.expire_ms.map(|at| at as u64);
                    return match &mut writer.bulk {
                        Some(load) => load
                            .write_string(slot, db, record.key, record.value, expire)
                            .map_err(|e| LoadError::Engine(e.to_string())),
                        None => Ok(()),
                    };
                }
            }
            let record = read.into_record();
            if record.expire_ms.is_some_and(|at| at <= now) {
                expired += 1;
                return Ok(());
            }
            let expire = record.expire_ms.map(|at| at as u64);
            let type_name = record.value.type_name();
            // A bulk load runs only into an empty directory: no key exists before it.
            if !bulk && options.on_existing != OnExisting::Fail && engine.exists(db, &record.key).map_err(engine_err)? {
                if options.on_existing == OnExisting::Skip {
                    kept += 1;
                    return Ok(());
                }
                replaced += 1;
                if !options.dry_run {
                    let mut slot = engine.lock_key(&record.key);
                    store::write(&mut slot, db, &record.key, record.value, expire)
                        .map_err(|e| LoadError::Engine(format!("{e:?}")))?;
                }
                counts.add(logical, type_name);
                return Ok(());
            }
            counts.add(logical, type_name);
            if options.dry_run {
                return Ok(());
            }
            let mut key_ops = Vec::new();
            let slot = engine.slot_of(&record.key);
            store::create_ops_owned(&mut key_ops, db, record.key, record.value, expire);
            writer.add(slot, key_ops)
        })?;
        counts.into_summary(summary);
        summary.expired_skipped += expired;
        summary.existing_skipped += kept;
        summary.existing_replaced += replaced;
        file_summaries.push(file_summary);
    }
    writer.flush()?;
    summary.files = file_summaries;
    Ok(())
}

/// A connection to a Redis or Velo server speaking RESP.
struct Remote {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

fn remote_err(e: std::io::Error) -> LoadError {
    LoadError::Remote(format!("connection: {e}"))
}

fn command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

impl Remote {
    fn connect(addr: &str, password: Option<&str>) -> Result<Remote, LoadError> {
        let stream = TcpStream::connect(addr).map_err(|e| LoadError::Remote(format!("{addr}: {e}")))?;
        let reader = BufReader::new(stream.try_clone().map_err(remote_err)?);
        let mut remote = Remote { writer: stream, reader };
        if let Some(password) = password {
            let mut out = Vec::new();
            command(&mut out, &[b"AUTH", password.as_bytes()]);
            remote.writer.write_all(&out).map_err(remote_err)?;
            if let Err(reply) = remote.reply()? {
                return Err(LoadError::Remote(format!("AUTH: {reply}")));
            }
        }
        Ok(remote)
    }

    /// One reply: `Ok(())` for a non-error reply (simple string or integer), `Err(text)` for an error.
    fn reply(&mut self) -> Result<Result<(), String>, LoadError> {
        let mut line = String::new();
        if self.reader.read_line(&mut line).map_err(remote_err)? == 0 {
            return Err(LoadError::Remote("server closed the connection".into()));
        }
        let line = line.trim_end();
        match line.as_bytes().first() {
            Some(b'-') => Ok(Err(line.get(1..).unwrap_or("").to_string())),
            Some(b'+') | Some(b':') => Ok(Ok(())),
            _ => Err(LoadError::Remote(format!("unexpected reply: {line}"))),
        }
    }
}

/// Loads `files` into the server at `addr` with pipelined `RESTORE key ttl payload ABSTTL [REPLACE]`
/// (SELECT before each database change), after a first pass that checks the files.
pub fn load_online(
    addr: &str,
    password: Option<&str>,
    files: &[(String, &[u8])],
    options: &LoadOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<Summary, LoadError> {
    // Check everything first, so that damaged input sends nothing.
    for (name, buf) in files {
        walk(name, buf, None, options, &mut |_| {}, |record| map_db(options, record.db()).map(|_| ()))?;
    }
    let mut remote = Remote::connect(addr, password)?;
    let now = crate::engine::system_clock_ms() as i64;
    let mut summary = Summary { dry_run: options.dry_run, ..Summary::default() };
    // Kind of each pipelined command's reply: None for SELECT, Some((db, type)) for RESTORE.
    let mut pending: Vec<Option<(u16, &'static str)>> = Vec::new();
    let mut out: Vec<u8> = Vec::new();
    let mut current_db: Option<u16> = None;
    let mut results = (0u64, 0u64, 0u64); // expired, kept (BUSYKEY with skip), rejected
    let mut loaded = Tally::default();
    let flush = |remote: &mut Remote,
                 out: &mut Vec<u8>,
                 pending: &mut Vec<Option<(u16, &'static str)>>,
                 results: &mut (u64, u64, u64),
                 loaded: &mut Tally|
     -> Result<(), LoadError> {
        remote.writer.write_all(out).map_err(remote_err)?;
        out.clear();
        for kind in pending.drain(..) {
            match (remote.reply()?, kind) {
                (Ok(()), Some((db, type_name))) => loaded.add(db, type_name),
                (Ok(()), None) => {}
                (Err(reply), None) => return Err(LoadError::Remote(format!("SELECT: {reply}"))),
                (Err(reply), Some(_)) if reply.starts_with("BUSYKEY") && options.on_existing == OnExisting::Skip => {
                    results.1 += 1
                }
                (Err(reply), Some(_)) => {
                    tracing::warn!("RESTORE refused: {reply}");
                    results.2 += 1;
                }
            }
        }
        Ok(())
    };
    let mut file_summaries = Vec::new();
    let mut summary_ref = Summary::default();
    for (name, buf) in files {
        let file_summary = walk(name, buf, Some(&mut summary_ref), options, progress, |read| {
            let record = read.into_record();
            let db = map_db(options, record.db)?;
            if record.expire_ms.is_some_and(|at| at <= now) {
                results.0 += 1;
                return Ok(());
            }
            if options.dry_run {
                loaded.add(db, record.value.type_name());
                return Ok(());
            }
            if current_db != Some(db) {
                command(&mut out, &[b"SELECT", db.to_string().as_bytes()]);
                pending.push(None);
                current_db = Some(db);
            }
            let payload = write::payload(&record.value);
            let ttl = record.expire_ms.unwrap_or(0).to_string();
            let mut args: Vec<&[u8]> = vec![b"RESTORE", &record.key, ttl.as_bytes(), &payload, b"ABSTTL"];
            if options.on_existing == OnExisting::Replace {
                args.push(b"REPLACE");
            }
            command(&mut out, &args);
            pending.push(Some((db, record.value.type_name())));
            if out.len() >= 4 << 20 || pending.len() >= 1000 {
                flush(&mut remote, &mut out, &mut pending, &mut results, &mut loaded)?;
            }
            Ok(())
        })?;
        file_summaries.push(file_summary);
    }
    flush(&mut remote, &mut out, &mut pending, &mut results, &mut loaded)?;
    loaded.into_summary(&mut summary);
    summary.files = file_summaries;
    summary.expired_skipped = results.0;
    summary.existing_skipped = results.1;
    summary.rejected = results.2;
    summary.modules_skipped = summary_ref.modules_skipped;
    summary.empty_skipped = summary_ref.empty_skipped;
    summary.functions_skipped = summary_ref.functions.len() as u64;
    Ok(summary)
}
