//! `velo train-dict`: trains a zstd dictionary per key family from the values already in a data directory
//! (read-only open, as the inspect tools; works beside a running server), reports what it would save on
//! held-out values, and with `--install` adds it to a stopped directory's dictionaries. With
//! `--from-parquet FILE --column C --family F` it samples a Parquet column instead, before a load. Training and
//! measuring are the server's own (`engine::train`), so the figures are what the server would get.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{ArgGroup, Args};
use serde::Serialize;

use super::output;
use crate::engine::dictionary::{DictionaryMap, DICT_MAX_VALUE_LEN, DICT_MIN_VALUE_LEN};
use crate::engine::family::{display_family, FamilyRules};
use crate::engine::io::RealFs;
use crate::engine::meta::DirLock;
use crate::engine::{train, CompressionPolicy, Engine, EngineOptions, ValueKind};

/// Flags of `velo train-dict`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("which").required(true).args(["family", "all"])))]
#[command(group(ArgGroup::new("source").required(true).multiple(true).args(["dir", "from_parquet"])))]
pub struct TrainDictArgs {
    /// The data directory to sample (with `--from-parquet`: where `--install` writes).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Sample the values of one column of a Parquet file instead (before loading it), as the family
    /// given by `--family`.
    #[arg(long, value_name = "FILE", requires_all = ["column", "family"])]
    pub from_parquet: Option<PathBuf>,
    /// The Parquet column holding the values (its cells as `velo ingest-parquet` stores them as text).
    #[arg(long, value_name = "C", requires = "from_parquet")]
    pub column: Option<String>,
    /// Train only this key family (the key up to its last separator; `(default)` for keys without one).
    #[arg(long, value_name = "F")]
    pub family: Option<String>,
    /// Train every family with enough values.
    #[arg(long)]
    pub all: bool,
    /// Values sampled per family (the first found in scan order).
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub samples: usize,
    /// Dictionary size in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 10)]
    pub size: usize,
    /// Bytes that end a family prefix (as the server's velo-dict-separators).
    #[arg(long, value_name = "CHARS", default_value = ":")]
    pub separators: String,
    /// Write each trained dictionary into the directory (which no server may hold) for new writes to use.
    #[arg(long)]
    pub install: bool,
    /// Print one JSON document (shape: docs/tools.md).
    #[arg(long)]
    pub json: bool,
}

/// One family's result.
#[derive(Debug, Serialize)]
pub struct FamilyReport {
    /// The family (`(default)` for keys without a separator).
    pub family: String,
    /// Values of the family seen (strings, hashes, ... of 16 B to 64 KiB).
    pub values: u64,
    /// Values sampled.
    pub samples: usize,
    /// Held-out samples the figures below are measured on (one in ten).
    pub held_out: usize,
    /// Their raw bytes.
    pub raw_bytes: u64,
    /// What they cost stored today without a dictionary (`engine::train::stored_cost`: inline in the
    /// cell, or a location plus a record in a zstd-compressed segment).
    pub stored_bytes: u64,
    /// What they cost stored each compressed with the new dictionary (the same model).
    pub dict_bytes: u64,
    /// dict_bytes / raw_bytes.
    pub ratio: f64,
    /// 1 - dict_bytes / stored_bytes: the share the dictionary saves (the server keeps a dictionary when
    /// this is at least `velo-dict-min-gain` percent).
    pub gain: f64,
    /// Size of the dictionary trained, 0 if training failed (too few or too uniform samples).
    pub dictionary_bytes: usize,
    /// The id it was installed under (`--install`).
    pub installed_id: Option<u32>,
}

/// The whole report.
#[derive(Debug, Serialize)]
pub struct TrainDictReport {
    /// What was sampled: the data directory, or the Parquet file.
    pub dir: PathBuf,
    /// Per family, largest first.
    pub families: Vec<FamilyReport>,
}

/// Runs `velo train-dict`. Exit 0 on success, 2 on error.
pub fn run(args: TrainDictArgs) -> ExitCode {
    match train_dir(&args) {
        Ok(report) => {
            if args.json {
                output::print_json(&report);
            } else {
                output::print(&render(&report));
            }
            ExitCode::from(output::OK)
        }
        Err(err) => output::fail("train-dict", err),
    }
}

/// Values sampled per family: (values seen, samples, key bytes of the samples).
type Sampled = BTreeMap<Vec<u8>, (u64, Vec<Vec<u8>>, u64)>;

fn train_dir(args: &TrainDictArgs) -> Result<TrainDictReport, String> {
    let wanted: Option<Vec<u8>> =
        args.family.as_ref().map(|f| if f == "(default)" { Vec::new() } else { f.as_bytes().to_vec() });
    if let Some(dir) = &args.dir {
        if !dir.join(crate::engine::meta::DIR_META_FILE).exists() {
            return Err(format!("{} is not a Velo data directory", dir.display()));
        }
        // A writable open comes later, under the directory's lock: fail early if a server holds it.
        if args.install {
            DirLock::acquire(&RealFs, dir).map_err(|e| format!("{e}; stop the server to install"))?;
        }
    } else if args.install {
        return Err("--install needs --dir: the data directory to install into".into());
    }
    let (source, families) = match (&args.from_parquet, &args.dir) {
        (Some(file), _) => (file.clone(), sample_parquet(args, file, wanted.clone().unwrap_or_default())?),
        (None, Some(dir)) => (dir.clone(), sample_dir(args, dir, wanted.as_deref())?),
        (None, None) => return Err("give --dir or --from-parquet".into()),
    };
    let level = CompressionPolicy::default().level;
    let mut reports = Vec::new();
    let mut trained = Vec::new();
    for (family, (values, samples, key_bytes)) in families {
        if samples.len() < 20 {
            continue;
        }
        // The cost model needs the keys' length; a Parquet column has no keys yet: assume a short one.
        let key_len = if key_bytes == 0 { train::DEFAULT_KEY_LEN } else { (key_bytes / samples.len() as u64) as usize };
        let result = train::train(&samples, args.size, level, key_len);
        reports.push(FamilyReport {
            family: display_family(&family),
            values,
            samples: samples.len(),
            held_out: result.held_out,
            raw_bytes: result.raw_bytes,
            stored_bytes: result.baseline_bytes,
            dict_bytes: if result.dictionary.is_some() { result.dict_bytes } else { result.baseline_bytes },
            ratio: if result.dictionary.is_some() {
                result.dict_bytes as f64 / result.raw_bytes.max(1) as f64
            } else {
                result.baseline_bytes as f64 / result.raw_bytes.max(1) as f64
            },
            gain: if result.dictionary.is_some() { result.gain() } else { 0.0 },
            dictionary_bytes: result.dictionary.as_ref().map_or(0, Vec::len),
            installed_id: None,
        });
        trained.push((family, result.dictionary));
    }
    if wanted.is_some() && reports.is_empty() {
        return Err("the family has fewer than 20 values to train on".into());
    }
    if let (true, Some(dir)) = (args.install, &args.dir) {
        let _lock = DirLock::acquire(&RealFs, dir).map_err(|e| format!("{e}; stop the server to install"))?;
        let map = DictionaryMap::open(Arc::new(RealFs), dir, false, level).map_err(|e| e.to_string())?;
        for (report, (family, dictionary)) in reports.iter_mut().zip(trained) {
            if let Some(dictionary) = dictionary {
                report.installed_id = Some(map.install(&family, dictionary).map_err(|e| e.to_string())?);
            }
        }
    }
    reports.sort_by(|a, b| b.raw_bytes.cmp(&a.raw_bytes).then_with(|| a.family.cmp(&b.family)));
    Ok(TrainDictReport { dir: source, families: reports })
}

/// Samples the values of a data directory (read-only open), per family.
fn sample_dir(args: &TrainDictArgs, dir: &Path, wanted: Option<&[u8]>) -> Result<Sampled, String> {
    let rules = FamilyRules { separators: args.separators.as_bytes().to_vec(), prefixes: Vec::new() };
    let options = EngineOptions { read_only: true, background_sync: false, ..EngineOptions::default() };
    let engine = Engine::open(dir, options).map_err(|e| e.to_string())?;
    let mut total = 0;
    for db in 0..16u16 {
        total += engine.dbsize(db).map_err(|e| e.to_string())?;
    }
    let bar = output::progress(total, "sampling");
    let mut families: Sampled = BTreeMap::new();
    let mut cursor = 0;
    loop {
        let page = engine.scan(None, cursor, 1000).map_err(|e| e.to_string())?;
        for (db, key) in &page.keys {
            bar.inc(1);
            let family = rules.family_of(key);
            if wanted.is_some_and(|w| w != family) {
                continue;
            }
            let Some(entry) = engine.get(*db, key).map_err(|e| e.to_string())? else { continue };
            if entry.kind == ValueKind::Element {
                continue;
            }
            add_sample(&mut families, family, key.len(), &entry.value, args.samples);
        }
        cursor = page.cursor;
        if cursor == 0 {
            break;
        }
    }
    bar.finish_and_clear();
    Ok(families)
}

/// Counts a value of a family and keeps it as a sample while the family has fewer than `limit`; values a
/// dictionary is not used for (shorter than 16 B or longer than 64 KiB) are left out.
fn add_sample(families: &mut Sampled, family: &[u8], key_len: usize, value: &[u8], limit: usize) {
    if !(DICT_MIN_VALUE_LEN..=DICT_MAX_VALUE_LEN).contains(&value.len()) {
        return;
    }
    let slot = families.entry(family.to_vec()).or_default();
    slot.0 += 1;
    if slot.1.len() < limit {
        slot.1.push(value.to_vec());
        slot.2 += key_len as u64;
    }
}

/// Samples the cells of one Parquet column (their text form, as `velo ingest-parquet` stores a text
/// column's cells: strings and binary as they are, other types as JSON), as values of `family`. The
/// file is read through `ingest::source`, so damage is reported as the loader reports it.
fn sample_parquet(args: &TrainDictArgs, file: &Path, family: Vec<u8>) -> Result<Sampled, String> {
    use crate::ingest::{convert, source::ParquetInput};
    let column = args.column.as_deref().unwrap_or_default();
    let input = ParquetInput::open(file).map_err(|e| e.to_string())?;
    let index = input.schema().index_of(column).map_err(|_| {
        let names: Vec<&str> = input.schema().fields().iter().map(|f| f.name().as_str()).collect();
        format!("{}: no column \"{column}\" (columns: {})", file.display(), names.join(", "))
    })?;
    convert::check_supported(input.schema().field(index).data_type())
        .map_err(|e| format!("{}: column \"{column}\": {e}", file.display()))?;
    let bar = output::progress(input.row_count(), "sampling");
    let mut families: Sampled = BTreeMap::new();
    let mut cell = Vec::new();
    for batch in input.batches().map_err(|e| e.to_string())? {
        let batch = batch.map_err(|e| e.to_string())?;
        let array = batch.column(index);
        for row in 0..batch.num_rows() {
            cell.clear();
            if convert::write_text(array.as_ref(), row, &mut cell).map_err(|e| format!("{}: {e}", file.display()))? {
                add_sample(&mut families, &family, 0, &cell, args.samples);
            }
        }
        bar.inc(batch.num_rows() as u64);
        if families.get(&family).is_some_and(|(_, samples, _)| samples.len() >= args.samples) {
            break;
        }
    }
    bar.finish_and_clear();
    Ok(families)
}

fn render(report: &TrainDictReport) -> String {
    let mut table = output::table(&[
        "family",
        "values",
        "samples",
        "raw",
        "stored today",
        "with dictionary",
        "ratio",
        "gain",
        "installed",
    ]);
    for f in &report.families {
        table.add_row(vec![
            f.family.clone(),
            f.values.to_string(),
            f.samples.to_string(),
            output::bytes(f.raw_bytes),
            output::bytes(f.stored_bytes),
            output::bytes(f.dict_bytes),
            format!("{:.3}", f.ratio),
            format!("{:.0}%", f.gain * 100.0),
            f.installed_id.map_or("-".into(), |id| format!("dict {id}")),
        ]);
    }
    format!(
        "dictionaries trained from {} (bytes the held-out tenth of each family's samples costs stored, cell headers and keys\nleft out; gain: what the dictionary saves, kept by the server at velo-dict-min-gain or more)\n{table}\n",
        report.dir.display()
    )
}
