//! Bulk loading of Parquet files (`velo ingest-parquet`): rows → (key, value, expiry) records, validated in
//! full before anything is published.
//!
//! The input is decoded and converted on a reading thread (`scan`), while the caller's thread checks keys
//! and writes; they pass records in bounded chunks.
//! 1. **Validate:** every row is converted (key, value, TTL), bad rows are collected as `file: row N:
//!    reason`, keys that exist already are checked against `--on-existing`, and each valid row leaves one
//!    16-byte entry (its key's hash and its row) for duplicate detection by sorting (`dedup`).
//!    Repeated keys are then resolved by `--on-duplicate`.
//! 2. **Write** (only if validation passed and this is not a dry run): the files are read again and the
//!    winning rows are written in bounded batches ([`target::Target`]).
//!
//! Into an empty directory (an engine bulk load, staged until its commit) with `--on-duplicate last` and
//! string values, both happen in one pass: every valid row is written as it is read (the bulk loader keeps
//! a key's last write, which is what `last` asks), and a run that fails validation discards the staged
//! load, so nothing is published.
//!
//! - [`convert`]: Arrow cells to JSON and text.
//! - [`source`]: expanding PATH arguments, opening files with clear damage messages, reading batches.
//! - [`target`]: the engine (offline) and a RESP connection (online) as write targets.

pub mod convert;
mod dedup;
mod scan;
pub mod source;
pub mod target;

use std::path::PathBuf;
use std::time::Instant;

use arrow_array::RecordBatch;
use arrow_schema::Schema;
use serde::Serialize;

use source::{display_name, ParquetInput};
use target::Target;

/// Largest value (and hash field value) written: Redis's default `proto-max-bulk-len`.
pub const MAX_VALUE_LEN: usize = 512 << 20;
/// Rejected rows kept for printing and for the JSON summary (all are counted).
pub const REJECTIONS_SHOWN: usize = 20;
/// A write batch is sent once it holds this many bytes...
const BATCH_BYTES: usize = 4 << 20;
/// ...or this many records.
const BATCH_RECORDS: usize = 16384;
/// Keys whose existence is checked in one round.
const EXISTS_BATCH: usize = 4096;
/// Chunks (decoded batches) in flight between the reading thread and the writing one.
const CHANNEL_DEPTH: usize = 4;

/// What can stop a load as a whole (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// An input file is unreadable, damaged or unusable for the options.
    #[error("{file}: {what}")]
    File {
        /// The file as named on the command line.
        file: String,
        /// What is wrong.
        what: String,
    },
    /// The PATH arguments or options are wrong.
    #[error("{0}")]
    Input(String),
    /// The data directory or server could not be opened or written.
    #[error("{0}")]
    Target(String),
}

/// How keys are built.
#[derive(Debug, Clone)]
pub enum KeySpec {
    /// One column's text form.
    Column(String),
    /// A template such as `user:{id}:{country}`.
    Template(String),
}

/// How values are built.
#[derive(Debug, Clone)]
pub enum ValueMode {
    /// One column as a string value.
    Column(String),
    /// The row (or chosen columns) as one JSON object.
    Json,
    /// A hash with one field per column; null fields left out.
    Hash,
}

/// Expiry of the loaded keys.
#[derive(Debug, Clone)]
pub enum Expiry {
    /// None.
    None,
    /// The same TTL in seconds for every key.
    Fixed(u64),
    /// A relative TTL from a column, in milliseconds per unit.
    Column(String, u64),
    /// An absolute expiry from a column: timestamps as such, integers in milliseconds per unit.
    At(String, u64),
}

/// What to do with a key that exists in the target before the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnExisting {
    /// Fail the run before writing.
    Fail,
    /// Leave the existing key and skip the row.
    Skip,
    /// Overwrite it (any type; a split collection's parts are freed).
    Replace,
}

/// What to do with a key that repeats inside the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnDuplicate {
    /// The last row wins, as repeated SETs would.
    Last,
    /// The first row wins.
    First,
    /// Every repeat is a rejected row.
    Error,
}

/// Everything a load needs besides its target.
#[derive(Debug, Clone)]
pub struct Options {
    /// The files, in load order (already expanded by [`source::expand`]).
    pub files: Vec<PathBuf>,
    /// Keys.
    pub key: KeySpec,
    /// Prepended to every key.
    pub key_prefix: Vec<u8>,
    /// Values.
    pub value: ValueMode,
    /// For JSON and hash values: the columns to use (default: all, in schema order).
    pub columns: Option<Vec<String>>,
    /// Expiry.
    pub expiry: Expiry,
    /// Keys that exist already.
    pub on_existing: OnExisting,
    /// Keys that repeat.
    pub on_duplicate: OnDuplicate,
    /// Rejected rows tolerated; above this nothing is written.
    pub max_errors: u64,
    /// Validate only.
    pub dry_run: bool,
    /// "Now" for TTLs, in Unix milliseconds (fixed once so both passes agree).
    pub now_ms: u64,
}

/// A key's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A string.
    String(Vec<u8>),
    /// A hash's fields and values, in column order.
    Hash(Vec<(Vec<u8>, Vec<u8>)>),
}

/// One key to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The key.
    pub key: Vec<u8>,
    /// The value.
    pub value: Value,
    /// Absolute expiry in Unix milliseconds.
    pub expire_at_ms: Option<u64>,
}

impl Record {
    fn weight(&self) -> usize {
        self.key.len()
            + 32
            + match &self.value {
                Value::String(v) => v.len(),
                Value::Hash(pairs) => pairs.iter().map(|(f, v)| f.len() + v.len() + 16).sum(),
            }
    }
}

/// A row that was not loaded.
#[derive(Debug, Clone, Serialize)]
pub struct Rejection {
    /// File as named on the command line.
    pub file: String,
    /// Row number, 0-based across the whole file.
    pub row: u64,
    /// Why.
    pub reason: String,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: row {}: {}", self.file, self.row, self.reason)
    }
}

/// Per-file figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FileSummary {
    /// File as named on the command line.
    pub file: String,
    /// Rows in the file.
    pub rows_read: u64,
    /// Keys written from this file (in a dry run: that would be written).
    pub keys_written: u64,
    /// Rows rejected.
    pub rows_rejected: u64,
    /// Rows whose key another row won (`--on-duplicate last|first`).
    pub rows_superseded: u64,
    /// Rows skipped because their key existed (`--on-existing skip`).
    pub rows_skipped_existing: u64,
    /// Bytes of compressed column data.
    pub bytes: u64,
    /// Seconds spent on this file (both passes).
    pub seconds: f64,
}

/// The result of a load.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Per file, in load order.
    pub files: Vec<FileSummary>,
    /// Rows rejected in all.
    pub rows_rejected: u64,
    /// The first [`REJECTIONS_SHOWN`] rejected rows.
    pub rejections: Vec<Rejection>,
    /// True when anything was written (false for a dry run, or when too many rows were rejected).
    pub written: bool,
    /// True for `--dry-run`.
    pub dry_run: bool,
    /// Seconds for the whole load.
    pub seconds: f64,
}

/// Told how far the load is.
pub trait Progress {
    /// A pass starts over `rows` rows and `bytes` bytes in all.
    fn start(&mut self, pass: &'static str, rows: u64, bytes: u64);
    /// `rows` more rows and `bytes` more bytes are done.
    fn advance(&mut self, rows: u64, bytes: u64);
    /// The pass is over.
    fn finish(&mut self);
}

/// A [`Progress`] that shows nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&mut self, _: &'static str, _: u64, _: u64) {}
    fn advance(&mut self, _: u64, _: u64) {}
    fn finish(&mut self) {}
}

/// Column indexes for one file.
struct Plan {
    key: Vec<KeyPart>,
    single_key: bool,
    value: ValuePlan,
    expiry: ExpiryPlan,
}

enum KeyPart {
    Literal(Vec<u8>),
    Column(usize, String),
}

enum ValuePlan {
    Column(usize),
    Json(Vec<(usize, String)>),
    Hash(Vec<(usize, String)>),
}

enum ExpiryPlan {
    None,
    Fixed(u64),
    Relative(usize, u64),
    At(usize, u64),
}

fn parse_template(template: &str) -> Result<Vec<(bool, String)>, IngestError> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            parts.push((false, rest[..open].to_string()));
        }
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| IngestError::Input(format!("--key-template {template:?}: '{{' without '}}'")))?;
        let name = &rest[open + 1..open + close];
        if name.is_empty() {
            return Err(IngestError::Input(format!("--key-template {template:?}: empty '{{}}'")));
        }
        parts.push((true, name.to_string()));
        rest = &rest[open + close + 1..];
    }
    if !rest.is_empty() {
        parts.push((false, rest.to_string()));
    }
    if !parts.iter().any(|(column, _)| *column) {
        return Err(IngestError::Input(format!("--key-template {template:?} names no column ({{column}})")));
    }
    Ok(parts)
}

impl Plan {
    fn new(options: &Options, schema: &Schema, file: &str) -> Result<Plan, IngestError> {
        let fail = |what: String| IngestError::File { file: file.to_string(), what };
        let index = |name: &str| -> Result<usize, IngestError> {
            schema.index_of(name).map_err(|_| {
                let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                fail(format!("no column named \"{name}\" (columns: {})", names.join(", ")))
            })
        };
        let type_of = |i: usize| schema.field(i).data_type();
        let (template, single_key) = match &options.key {
            KeySpec::Column(name) => (vec![(true, name.clone())], true),
            KeySpec::Template(template) => (parse_template(template)?, false),
        };
        let mut key = Vec::new();
        if !options.key_prefix.is_empty() {
            key.push(KeyPart::Literal(options.key_prefix.clone()));
        }
        for (is_column, text) in template {
            if is_column {
                let i = index(&text)?;
                if !convert::is_key_type(type_of(i)) {
                    return Err(fail(format!(
                        "column \"{text}\" has type {}; a key column must be a string, binary or integer",
                        type_of(i)
                    )));
                }
                key.push(KeyPart::Column(i, text));
            } else {
                key.push(KeyPart::Literal(text.into_bytes()));
            }
        }
        let columns = |options: &Options| -> Result<Vec<(usize, String)>, IngestError> {
            let names: Vec<String> = match &options.columns {
                Some(names) => names.clone(),
                None => schema.fields().iter().map(|f| f.name().clone()).collect(),
            };
            names.into_iter().map(|name| Ok((index(&name)?, name))).collect()
        };
        let value = match &options.value {
            ValueMode::Column(name) => ValuePlan::Column(index(name)?),
            ValueMode::Json => ValuePlan::Json(columns(options)?),
            ValueMode::Hash => ValuePlan::Hash(columns(options)?),
        };
        let used: Vec<usize> = match &value {
            ValuePlan::Column(i) => vec![*i],
            ValuePlan::Json(cols) | ValuePlan::Hash(cols) => cols.iter().map(|(i, _)| *i).collect(),
        };
        for i in used {
            convert::check_supported(type_of(i))
                .map_err(|e| fail(format!("column \"{}\": {e}", schema.field(i).name())))?;
        }
        let expiry = match &options.expiry {
            Expiry::None => ExpiryPlan::None,
            Expiry::Fixed(seconds) => ExpiryPlan::Fixed(options.now_ms.saturating_add(seconds.saturating_mul(1000))),
            Expiry::Column(name, unit) => {
                let i = index(name)?;
                if !convert::is_duration_type(type_of(i)) {
                    return Err(fail(format!(
                        "TTL column \"{name}\" has type {}; it must be an integer or a duration",
                        type_of(i)
                    )));
                }
                ExpiryPlan::Relative(i, *unit)
            }
            Expiry::At(name, unit) => {
                let i = index(name)?;
                if !convert::is_time_type(type_of(i)) {
                    return Err(fail(format!(
                        "expire-at column \"{name}\" has type {}; it must be a timestamp or an integer",
                        type_of(i)
                    )));
                }
                ExpiryPlan::At(i, *unit)
            }
        };
        Ok(Plan { key, single_key, value, expiry })
    }

    /// The row's key, or why it has none.
    fn key(&self, batch: &RecordBatch, row: usize) -> Result<Vec<u8>, String> {
        let mut key = Vec::new();
        for part in &self.key {
            match part {
                KeyPart::Literal(bytes) => key.extend_from_slice(bytes),
                KeyPart::Column(i, name) => {
                    if !convert::write_text(batch.column(*i).as_ref(), row, &mut key)? {
                        return Err(if self.single_key {
                            "key is null".to_string()
                        } else {
                            format!("key column \"{name}\" is null")
                        });
                    }
                }
            }
        }
        if key.len() > crate::engine::page::MAX_KEY_LEN {
            return Err(format!("key is {} bytes, over the limit of {}", key.len(), crate::engine::page::MAX_KEY_LEN));
        }
        Ok(key)
    }

    /// The row as a record, or why it cannot be loaded.
    fn record(&self, batch: &RecordBatch, row: usize, now_ms: u64) -> Result<Record, String> {
        let key = self.key(batch, row)?;
        let value = match &self.value {
            ValuePlan::Column(i) => {
                let mut out = Vec::new();
                if !convert::write_text(batch.column(*i).as_ref(), row, &mut out)? {
                    return Err("value is null".to_string());
                }
                check_len(out.len())?;
                Value::String(out)
            }
            ValuePlan::Json(columns) => {
                let mut out = Vec::with_capacity(64);
                out.push(b'{');
                for (n, (i, name)) in columns.iter().enumerate() {
                    if n > 0 {
                        out.push(b',');
                    }
                    convert::write_string(name, &mut out);
                    out.push(b':');
                    convert::write_json(batch.column(*i).as_ref(), row, &mut out)
                        .map_err(|e| format!("column \"{name}\": {e}"))?;
                }
                out.push(b'}');
                check_len(out.len())?;
                Value::String(out)
            }
            ValuePlan::Hash(columns) => {
                let mut pairs = Vec::with_capacity(columns.len());
                for (i, name) in columns {
                    let mut out = Vec::new();
                    if convert::write_text(batch.column(*i).as_ref(), row, &mut out)
                        .map_err(|e| format!("column \"{name}\": {e}"))?
                    {
                        check_len(out.len())?;
                        pairs.push((name.clone().into_bytes(), out));
                    }
                }
                if pairs.is_empty() {
                    return Err("every hash field is null (a hash cannot be empty)".to_string());
                }
                Value::Hash(pairs)
            }
        };
        let expire_at_ms = match &self.expiry {
            ExpiryPlan::None => None,
            ExpiryPlan::Fixed(at) => Some(*at),
            ExpiryPlan::Relative(i, unit) => match convert::integer_at(batch.column(*i).as_ref(), row)? {
                None => None,
                Some((ttl, _)) if ttl <= 0 => return Err(format!("TTL {ttl} is not positive")),
                Some((ttl, is_ms)) => {
                    let ttl_ms = if is_ms { ttl } else { ttl.saturating_mul(*unit as i128) };
                    let at = (now_ms as i128).saturating_add(ttl_ms);
                    Some(u64::try_from(at).ok().filter(|at| *at < i64::MAX as u64).ok_or("TTL is out of range")?)
                }
            },
            ExpiryPlan::At(i, unit) => match convert::integer_at(batch.column(*i).as_ref(), row)? {
                None => None,
                Some((at, is_ms)) => {
                    let at = if is_ms { at } else { at.saturating_mul(*unit as i128) };
                    if at <= now_ms as i128 {
                        return Err(format!("expiry time {at} ms is in the past"));
                    }
                    Some(
                        u64::try_from(at)
                            .ok()
                            .filter(|at| *at < i64::MAX as u64)
                            .ok_or("expiry time is out of range")?,
                    )
                }
            },
        };
        Ok(Record { key, value, expire_at_ms })
    }
}

fn check_len(len: usize) -> Result<(), String> {
    if len > MAX_VALUE_LEN {
        return Err(format!("value is {len} bytes, over the limit of {MAX_VALUE_LEN}"));
    }
    Ok(())
}

/// A key's 128-bit hash: its low half sorts the duplicate-detection entries, its high half tells the
/// rows of a repeated low half apart (`dedup`).
fn key_hash(key: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128(key)
}

/// Records gathered into write batches of bounded size.
struct WriteBatch {
    records: Vec<Record>,
    bytes: usize,
    replace: bool,
}

impl WriteBatch {
    fn push(&mut self, target: &mut dyn Target, record: Record) -> Result<(), IngestError> {
        self.bytes += record.weight();
        self.records.push(record);
        if self.bytes >= BATCH_BYTES || self.records.len() >= BATCH_RECORDS {
            self.flush(target)?;
        }
        Ok(())
    }

    fn flush(&mut self, target: &mut dyn Target) -> Result<(), IngestError> {
        if !self.records.is_empty() {
            // The next batch starts at full size: growing by doubling copied every batch's records
            // about twice.
            let records = std::mem::replace(&mut self.records, Vec::with_capacity(BATCH_RECORDS));
            target.write(records, self.replace)?;
        }
        self.bytes = 0;
        Ok(())
    }
}

/// Runs `produce` on a reading thread and `consume` on this one over a bounded channel. An error of the
/// consumer wins (the producer then stops at its next send); a panic of the producer becomes an error.
fn pipeline<T: Send>(
    produce: impl FnOnce(std::sync::mpsc::SyncSender<scan::Message>) -> Result<T, IngestError> + Send,
    consume: impl FnOnce(std::sync::mpsc::Receiver<scan::Message>) -> Result<(), IngestError>,
) -> Result<T, IngestError> {
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel(CHANNEL_DEPTH);
        let producer = std::thread::Builder::new()
            .name("ingest-read".into())
            .spawn_scoped(scope, move || produce(tx))
            .map_err(|e| IngestError::Input(format!("cannot start the reading thread: {e}")))?;
        let consumed = consume(rx);
        let produced = producer.join().unwrap_or_else(|_| Err(IngestError::Input("the reading thread failed".into())));
        consumed?;
        produced
    })
}

/// Runs a load: validates everything, then (unless a dry run or too many rows were rejected) writes.
pub fn run(options: &Options, target: &mut dyn Target, progress: &mut dyn Progress) -> Result<Summary, IngestError> {
    let started = Instant::now();
    if options.files.is_empty() {
        return Err(IngestError::Input("no input files".into()));
    }
    let inputs: Vec<ParquetInput> =
        options.files.iter().map(|path| ParquetInput::open(path)).collect::<Result<_, _>>()?;
    let mut summary = Summary { dry_run: options.dry_run, ..Summary::default() };
    let mut plans = Vec::new();
    let mut names = Vec::new();
    // Global row number of each file's first row.
    let mut bases = Vec::new();
    let mut base = 0u64;
    for (path, input) in options.files.iter().zip(&inputs) {
        let name = display_name(path);
        plans.push(Plan::new(options, input.schema(), &name)?);
        summary.files.push(FileSummary { file: name.clone(), bytes: input.data_bytes(), ..FileSummary::default() });
        names.push(name);
        bases.push(base);
        base += input.row_count();
    }
    let total_rows = base;
    let total_bytes: u64 = inputs.iter().map(|i| i.data_bytes()).sum();
    let locate = |global: u64| -> (usize, u64) {
        let file = bases.partition_point(|b| *b <= global).saturating_sub(1);
        (file, global - bases[file])
    };
    let ctx = scan::Context { inputs: &inputs, plans: &plans, bases: &bases, names: &names, now_ms: options.now_ms };

    // One pass when writes are staged until the commit and no row's fate depends on a later row: with
    // `--on-duplicate last` the bulk loader's own rule (a key's last write wins) is the answer. Not for
    // hashes: a large hash is written as several records, which a later write of the key would not replace.
    let streaming = target.is_bulk()
        && !options.dry_run
        && options.on_duplicate == OnDuplicate::Last
        && !matches!(options.value, ValueMode::Hash);
    let check_existing = !streaming && !target.is_bulk() && options.on_existing != OnExisting::Replace;
    let mut batch = WriteBatch { records: Vec::new(), bytes: 0, replace: options.on_existing == OnExisting::Replace };

    // Pass 1: validate (and, streaming, write).
    progress.start(if streaming { "loading" } else { "validating" }, total_rows, total_bytes);
    // Rows whose key existed (`--on-existing skip`), ascending.
    let mut existing = Vec::new();
    let mut file_started = Instant::now();
    let validated = pipeline(
        |tx| scan::validate(&ctx, total_rows, streaming || check_existing, streaming.then_some(options.max_errors), tx),
        |rx| {
            let mut pending: Vec<(u64, Vec<u8>)> = Vec::new();
            for message in rx {
                match message {
                    scan::Message::Rows { rows, bytes, records } => {
                        for (global, record) in records {
                            if streaming {
                                batch.push(target, record)?;
                            } else {
                                pending.push((global, record.key));
                                if pending.len() >= EXISTS_BATCH {
                                    check_existing_keys(options, target, &mut pending, &mut existing, &names, &locate)?;
                                }
                            }
                        }
                        progress.advance(rows, bytes);
                    }
                    scan::Message::FileDone { file } => {
                        // Flushed per file so that each file's time includes its own writes.
                        batch.flush(target)?;
                        summary.files[file].seconds += file_started.elapsed().as_secs_f64();
                        file_started = Instant::now();
                    }
                }
            }
            check_existing_keys(options, target, &mut pending, &mut existing, &names, &locate)
        },
    )?;
    progress.finish();

    // Duplicates: the rows of repeated 64-bit hashes are told apart by the rest of their keys' hashes.
    let scan::Validated { entries, mut rejections, rejected, rows } = validated;
    let groups = dedup::contested(&entries);
    drop(entries);
    let losers = if groups.is_empty() {
        Vec::new()
    } else {
        let mut contested: Vec<u64> = groups.iter().flatten().copied().collect();
        contested.sort_unstable();
        let checks = scan::key_hashes(&ctx, &contested)?;
        dedup::losers(
            &groups,
            |row| checks[contested.binary_search(&row).expect("a contested row")],
            options.on_duplicate,
        )
    };
    let duplicates_rejected = options.on_duplicate == OnDuplicate::Error;
    if duplicates_rejected && !losers.is_empty() {
        // Their messages name the key: read back for the ones that can be among the rows shown.
        let shown: Vec<dedup::Loser> = losers.iter().take(REJECTIONS_SHOWN).copied().collect();
        let shown_rows: Vec<u64> = shown.iter().map(|l| l.row).collect();
        for (loser, key) in shown.iter().zip(scan::keys(&ctx, &shown_rows)?) {
            let (file, row) = locate(loser.row);
            let (first_file, first_row) = locate(loser.first);
            let earlier = if first_file == file {
                format!("row {first_row}")
            } else {
                format!("{}: row {first_row}", names[first_file])
            };
            let key = String::from_utf8_lossy(&key).into_owned();
            let reason = format!("duplicate key {key:?} (first at {earlier})");
            rejections.push((loser.row, Rejection { file: names[file].clone(), row, reason }));
        }
        rejections.sort_by_key(|(global, _)| *global);
        rejections.truncate(REJECTIONS_SHOWN);
    }

    // Per file: rows read, rejected, written, skipped and superseded.
    let mut lost = vec![0u64; inputs.len()];
    for loser in &losers {
        lost[locate(loser.row).0] += 1;
    }
    let mut skipped = vec![0u64; inputs.len()];
    let mut not_written = merge_rows(losers.iter().map(|l| l.row), existing.iter().copied());
    for &row in &existing {
        if losers.binary_search_by_key(&row, |l| l.row).is_err() {
            skipped[locate(row).0] += 1;
        }
    }
    for (index, file) in summary.files.iter_mut().enumerate() {
        file.rows_read = rows[index];
        file.rows_rejected = rejected[index] + if duplicates_rejected { lost[index] } else { 0 };
        file.rows_skipped_existing = skipped[index];
        file.keys_written = rows[index] - rejected[index] - lost[index] - skipped[index];
        file.rows_superseded =
            file.rows_read.saturating_sub(file.rows_rejected + file.keys_written + file.rows_skipped_existing);
        summary.rows_rejected += file.rows_rejected;
    }
    summary.rejections = rejections.into_iter().map(|(_, rejection)| rejection).collect();
    if options.dry_run || summary.rows_rejected > options.max_errors {
        target.discard();
        summary.seconds = started.elapsed().as_secs_f64();
        return Ok(summary);
    }
    if streaming {
        summary.written = true;
        summary.seconds = started.elapsed().as_secs_f64();
        return Ok(summary);
    }

    // Pass 2: write the winners.
    progress.start("writing", total_rows, total_bytes);
    not_written.dedup();
    let mut file_started = Instant::now();
    pipeline(
        |tx| scan::write_pass(&ctx, &not_written, tx),
        |rx| {
            for message in rx {
                match message {
                    scan::Message::Rows { rows, bytes, records } => {
                        for (_, record) in records {
                            batch.push(target, record)?;
                        }
                        progress.advance(rows, bytes);
                    }
                    scan::Message::FileDone { file } => {
                        batch.flush(target)?;
                        summary.files[file].seconds += file_started.elapsed().as_secs_f64();
                        file_started = Instant::now();
                    }
                }
            }
            Ok(())
        },
    )?;
    progress.finish();
    summary.written = true;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// Two ascending row lists as one ascending list (repeats kept).
fn merge_rows(a: impl Iterator<Item = u64>, b: impl Iterator<Item = u64>) -> Vec<u64> {
    let mut out: Vec<u64> = a.chain(b).collect();
    out.sort_unstable();
    out
}

/// Checks the pending keys against the target: `fail` stops the run at the first that exists, `skip`
/// records its row (ascending) so that the write pass leaves it alone.
fn check_existing_keys(
    options: &Options,
    target: &mut dyn Target,
    pending: &mut Vec<(u64, Vec<u8>)>,
    existing: &mut Vec<u64>,
    names: &[String],
    locate: &dyn Fn(u64) -> (usize, u64),
) -> Result<(), IngestError> {
    if pending.is_empty() {
        return Ok(());
    }
    let batch = std::mem::take(pending);
    let keys: Vec<Vec<u8>> = batch.iter().map(|(_, key)| key.clone()).collect();
    let exists = target.exists(&keys)?;
    for ((global, key), exists) in batch.into_iter().zip(exists) {
        if !exists {
            continue;
        }
        match options.on_existing {
            OnExisting::Fail => {
                let (file, row) = locate(global);
                return Err(IngestError::File {
                    file: names[file].clone(),
                    what: format!(
                        "row {row}: key {:?} already exists (use --on-existing skip or replace); nothing was written",
                        String::from_utf8_lossy(&key)
                    ),
                });
            }
            OnExisting::Skip => existing.push(global),
            OnExisting::Replace => {}
        }
    }
    Ok(())
}
