//! `velo ingest-parquet`: the command line over [`crate::ingest`]: options, progress display, the summary
//! table or JSON, and the exit code (0 loaded, 1 rows rejected, 2 error).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};

use crate::ingest::target::{EngineTarget, RespTarget, Target};
use crate::ingest::{self, Expiry, KeySpec, OnDuplicate, OnExisting, Options, Progress, Summary, ValueMode};

/// `velo ingest-parquet` options.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("keyspec").required(true).args(["key", "key_template"])))]
#[command(group(clap::ArgGroup::new("valuespec").required(true).args(["value", "value_json", "value_hash"])))]
#[command(group(clap::ArgGroup::new("target").required(true).args(["dir", "host"])))]
pub struct IngestParquetArgs {
    /// Parquet files, directories (every *.parquet in them, sorted) or glob patterns.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Data directory to load into (offline: no server may hold it).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Load through a running Velo or Redis server instead of a directory.
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// The server's port (with --host).
    #[arg(long, default_value_t = 6379, requires = "host")]
    pub port: u16,
    /// The server's password (with --host).
    #[arg(long, env = "VELO_PASSWORD", requires = "host")]
    pub password: Option<String>,
    /// Database number.
    #[arg(long, default_value_t = 0)]
    pub db: u16,
    /// Key column (string, binary or integer).
    #[arg(long, value_name = "COL")]
    pub key: Option<String>,
    /// Key built from several columns, e.g. 'user:{id}:{country}'.
    #[arg(long, value_name = "TEMPLATE")]
    pub key_template: Option<String>,
    /// Prepended to every key.
    #[arg(long, value_name = "P", default_value = "")]
    pub key_prefix: String,
    /// Store this column as a string value.
    #[arg(long, value_name = "COL")]
    pub value: Option<String>,
    /// Store the row (or --columns) as a JSON object.
    #[arg(long)]
    pub value_json: bool,
    /// Store a hash with one field per column (or per --columns); null fields are left out.
    #[arg(long)]
    pub value_hash: bool,
    /// Columns for --value-json / --value-hash, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "A,B,C")]
    pub columns: Option<Vec<String>>,
    /// TTL in seconds for every key.
    #[arg(long, value_name = "SECONDS", conflicts_with_all = ["ttl_col", "expire_at_col"], value_parser = clap::value_parser!(u64).range(1..))]
    pub ttl: Option<u64>,
    /// Relative TTL from this integer column (unit: --ttl-unit) or duration column (its own unit); null: none.
    #[arg(long, value_name = "COL", conflicts_with = "expire_at_col")]
    pub ttl_col: Option<String>,
    /// Absolute expiry from this timestamp column, or epoch number column in --ttl-unit; null means none.
    #[arg(long, value_name = "COL")]
    pub expire_at_col: Option<String>,
    /// Unit of --ttl-col and of integer --expire-at-col values.
    #[arg(long, value_enum, default_value = "s")]
    pub ttl_unit: TtlUnit,
    /// A key that exists before the load: fail the run, skip the row, or replace the key.
    #[arg(long, value_enum, default_value = "fail")]
    pub on_existing: ExistingArg,
    /// A key repeated in the input: the last row wins, the first row wins, or every repeat is rejected.
    #[arg(long, value_enum, default_value = "last")]
    pub on_duplicate: DuplicateArg,
    /// Rejected rows tolerated; with more, nothing is written.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub max_errors: u64,
    /// Read and validate everything, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// No progress and no summary table (errors still go to stderr).
    #[arg(long)]
    pub quiet: bool,
}

/// `--ttl-unit`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TtlUnit {
    /// Seconds.
    S,
    /// Milliseconds.
    Ms,
}

/// `--on-existing`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExistingArg {
    /// Fail before writing anything.
    Fail,
    /// Leave the existing key.
    Skip,
    /// Overwrite it.
    Replace,
}

/// `--on-duplicate`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DuplicateArg {
    /// The last row wins.
    Last,
    /// The first row wins.
    First,
    /// Every repeat is a rejected row.
    Error,
}

/// Runs `velo ingest-parquet`.
pub fn run(args: IngestParquetArgs) -> ExitCode {
    super::keep_freed_memory();
    match load(&args) {
        Ok(summary) => {
            report(&args, &summary);
            if summary.rows_rejected > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(error) => {
            // One line naming the file (and codec, row group, column or offset where known).
            eprintln!("velo ingest-parquet: error: {error}");
            if args.json {
                println!("{}", serde_json::json!({ "error": error.to_string() }));
            }
            ExitCode::from(2)
        }
    }
}

fn load(args: &IngestParquetArgs) -> Result<Summary, ingest::IngestError> {
    let unit = match args.ttl_unit {
        TtlUnit::S => 1000,
        TtlUnit::Ms => 1,
    };
    let options = Options {
        files: ingest::source::expand(&args.paths)?,
        key: match (&args.key, &args.key_template) {
            (Some(column), _) => KeySpec::Column(column.clone()),
            (None, Some(template)) => KeySpec::Template(template.clone()),
            (None, None) => unreachable!("clap requires one"),
        },
        key_prefix: args.key_prefix.clone().into_bytes(),
        value: match &args.value {
            Some(column) => ValueMode::Column(column.clone()),
            None if args.value_json => ValueMode::Json,
            None => ValueMode::Hash,
        },
        columns: args.columns.clone(),
        expiry: match (&args.ttl, &args.ttl_col, &args.expire_at_col) {
            (Some(seconds), _, _) => Expiry::Fixed(*seconds),
            (_, Some(column), _) => Expiry::Column(column.clone(), unit),
            (_, _, Some(column)) => Expiry::At(column.clone(), unit),
            _ => Expiry::None,
        },
        on_existing: match args.on_existing {
            ExistingArg::Fail => OnExisting::Fail,
            ExistingArg::Skip => OnExisting::Skip,
            ExistingArg::Replace => OnExisting::Replace,
        },
        on_duplicate: match args.on_duplicate {
            DuplicateArg::Last => OnDuplicate::Last,
            DuplicateArg::First => OnDuplicate::First,
            DuplicateArg::Error => OnDuplicate::Error,
        },
        max_errors: args.max_errors,
        dry_run: args.dry_run,
        now_ms: crate::engine::system_clock_ms(),
    };
    // Every file's footer is checked before the target is opened, so a damaged file leaves no trace (not even
    // a new, empty data directory).
    for path in &options.files {
        ingest::source::ParquetInput::open(path)?;
    }
    // A directory this run creates is removed again when the run writes nothing (a dry run, too many
    // rejected rows, an error), so a run that changes nothing leaves no trace, not even an empty data
    // directory. Nobody else can have put anything in it meanwhile: the engine's lock was ours.
    let created_dir = args.dir.as_deref().filter(|dir| !dir.exists());
    let engine = match &args.dir {
        Some(dir) => Some(ingest::target::open_engine(dir)?),
        None => None,
    };
    let result = load_into(args, &options, engine);
    if let Some(dir) = created_dir {
        if !matches!(&result, Ok(summary) if summary.written) {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    result
}

fn load_into(
    args: &IngestParquetArgs,
    options: &Options,
    engine: Option<crate::engine::Engine>,
) -> Result<Summary, ingest::IngestError> {
    let mut target: Box<dyn Target + '_> = match (&engine, &args.host) {
        (Some(engine), _) => Box::new(EngineTarget::new(engine, args.db)?),
        (None, Some(host)) => Box::new(RespTarget::connect(host, args.port, args.password.as_deref(), args.db)?),
        (None, None) => unreachable!("clap requires one"),
    };
    let mut progress: Box<dyn Progress> = if args.quiet || args.json {
        Box::new(ingest::NoProgress)
    } else if std::io::stderr().is_terminal() {
        Box::new(BarProgress::default())
    } else {
        Box::new(LineProgress::default())
    };
    let mut summary = ingest::run(options, target.as_mut(), progress.as_mut())?;
    // Closing checkpoints the engine (or flushes the connection): part of the load's time.
    let closing = Instant::now();
    target.finish()?;
    if let Some(engine) = engine {
        engine.close().map_err(|e| crate::ingest::IngestError::Target(format!("closing the data directory: {e}")))?;
    }
    summary.seconds += closing.elapsed().as_secs_f64();
    Ok(summary)
}

fn report(args: &IngestParquetArgs, summary: &Summary) {
    if args.json {
        println!("{}", serde_json::to_string_pretty(summary).unwrap_or_default());
        return;
    }
    for rejection in &summary.rejections {
        eprintln!("{rejection}");
    }
    if summary.rows_rejected > summary.rejections.len() as u64 {
        eprintln!("... and {} more rejected rows", summary.rows_rejected - summary.rejections.len() as u64);
    }
    if args.quiet {
        return;
    }
    let mut table = comfy_table::Table::new();
    let keys_header = if summary.dry_run { "keys to write" } else { "keys written" };
    table.set_header(["file", "rows read", keys_header, "rows rejected", "time (s)", "rows/s"]);
    let rate =
        |rows: u64, seconds: f64| if seconds > 0.0 { format!("{:.0}", rows as f64 / seconds) } else { "-".into() };
    let (mut rows, mut keys, mut rejected) = (0, 0, 0);
    for file in &summary.files {
        rows += file.rows_read;
        keys += file.keys_written;
        rejected += file.rows_rejected;
        table.add_row([
            file.file.clone(),
            file.rows_read.to_string(),
            file.keys_written.to_string(),
            file.rows_rejected.to_string(),
            format!("{:.3}", file.seconds),
            rate(file.rows_read, file.seconds),
        ]);
    }
    table.add_row([
        "total".to_string(),
        rows.to_string(),
        keys.to_string(),
        rejected.to_string(),
        format!("{:.3}", summary.seconds),
        rate(rows, summary.seconds),
    ]);
    println!("{table}");
    if summary.dry_run {
        println!("dry run: nothing was written");
    } else if !summary.written {
        println!("nothing was written: {} rows rejected, --max-errors is {}", summary.rows_rejected, args.max_errors);
    }
}

/// An indicatif bar on a terminal.
#[derive(Default)]
struct BarProgress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress for BarProgress {
    fn start(&mut self, pass: &'static str, rows: u64, _bytes: u64) {
        let bar = indicatif::ProgressBar::new(rows);
        let style = indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {human_pos}/{human_len} rows, {per_sec}, ETA {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(pass);
        self.bar = Some(bar);
    }
    fn advance(&mut self, rows: u64, _bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(rows);
        }
    }
    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// Plain lines every few seconds when stderr is not a terminal (logs, CI).
#[derive(Default)]
struct LineProgress {
    pass: &'static str,
    total_rows: u64,
    rows: u64,
    bytes: u64,
    started: Option<Instant>,
    last: Option<Instant>,
}

impl Progress for LineProgress {
    fn start(&mut self, pass: &'static str, rows: u64, _bytes: u64) {
        *self = LineProgress {
            pass,
            total_rows: rows,
            started: Some(Instant::now()),
            last: Some(Instant::now()),
            ..LineProgress::default()
        };
    }
    fn advance(&mut self, rows: u64, bytes: u64) {
        self.rows += rows;
        self.bytes += bytes;
        let now = Instant::now();
        if self.last.is_some_and(|last| now.duration_since(last) >= Duration::from_secs(5)) {
            self.last = Some(now);
            let seconds = self.started.map(|s| now.duration_since(s).as_secs_f64()).unwrap_or(0.0).max(1e-9);
            eprintln!(
                "{}: {}/{} rows, {} MB, {:.0} rows/s",
                self.pass,
                self.rows,
                self.total_rows,
                self.bytes >> 20,
                self.rows as f64 / seconds
            );
        }
    }
    fn finish(&mut self) {}
}
