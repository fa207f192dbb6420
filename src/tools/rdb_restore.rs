//! `velo rdb-restore`: load RDB files into a data directory (offline) or a running server (`--host`,
//! pipelined RESTORE). The work is `rdb::load`; this file parses flags, shows progress, prints the summary
//! and picks the exit code (0 loaded everything, 1 some keys were skipped or rejected, 2 error).

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use comfy_table::Table;
use indicatif::{ProgressBar, ProgressStyle};

use crate::engine::{Engine, EngineOptions, Error as EngineError};
use crate::rdb::load::{self, LoadError, LoadOptions, OnExisting, Summary};

/// Flags of `velo rdb-restore`.
#[derive(Debug, clap::Args)]
pub struct RdbRestoreArgs {
    /// RDB files to load, in order (`-` reads standard input).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,
    /// Data directory to load into while no server runs on it (created if missing).
    #[arg(long, required_unless_present = "host", conflicts_with = "host")]
    pub dir: Option<PathBuf>,
    /// Load into a running Redis or Velo server instead, with pipelined RESTORE commands.
    #[arg(long)]
    pub host: Option<String>,
    /// Port of `--host`.
    #[arg(long, default_value_t = 6379)]
    pub port: u16,
    /// Password of `--host` (AUTH).
    #[arg(long, env = "VELO_RESTORE_PASSWORD")]
    pub password: Option<String>,
    /// Load source database SRC into database DST (repeatable); others keep their number.
    #[arg(long = "db-map", value_name = "SRC:DST", value_parser = parse_db_map)]
    pub db_map: Vec<(u64, u16)>,
    /// What to do when a key already exists: `fail` writes nothing at all if any does.
    #[arg(long, value_enum, default_value_t = OnExisting::Fail)]
    pub on_existing: OnExisting,
    /// Read and check the files, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Fail on module values instead of skipping them.
    #[arg(long)]
    pub strict: bool,
    /// Print the summary as JSON on standard output.
    #[arg(long)]
    pub json: bool,
}

fn parse_db_map(text: &str) -> Result<(u64, u16), String> {
    let (from, to) = text.split_once(':').ok_or("expected SRC:DST")?;
    let from = from.parse::<u64>().map_err(|e| format!("SRC: {e}"))?;
    let to = to.parse::<u16>().map_err(|e| format!("DST: {e}"))?;
    Ok((from, to))
}

/// An input: a mapped file or standard input read whole.
enum Input {
    Mapped(memmap2::Mmap),
    Read(Vec<u8>),
}

impl Input {
    fn bytes(&self) -> &[u8] {
        match self {
            Input::Mapped(map) => map,
            Input::Read(bytes) => bytes,
        }
    }
}

/// Drops the pages of mapped inputs behind the reader, so that the restore's RSS does not grow with the
/// input's size: each pass (one or two) reads the files front to back (the reader's CRC64 too, as it goes), and a
/// mapped page once read would otherwise stay in the process until it exits. The pages stay in the page
/// cache for the kernel to keep or reclaim; one read again simply faults back in.
struct Releaser<'a> {
    /// Each input's map (None when it was read into memory) and length, in reading order.
    inputs: Vec<(Option<&'a memmap2::Mmap>, u64)>,
    /// Bytes reported so far (the first pass, then the second).
    position: u64,
    /// `position` when pages were last released.
    released_at: u64,
}

/// Pages are released after every this many bytes read.
const RELEASE_EVERY: u64 = 32 << 20;

impl<'a> Releaser<'a> {
    fn new(inputs: &'a [(String, Input)]) -> Releaser<'a> {
        let inputs = inputs
            .iter()
            .map(|(_, input)| match input {
                Input::Mapped(map) => (Some(map), map.len() as u64),
                Input::Read(bytes) => (None, bytes.len() as u64),
            })
            .collect();
        Releaser { inputs, position: 0, released_at: 0 }
    }

    fn advance(&mut self, bytes: u64) {
        self.position += bytes;
        if self.position - self.released_at < RELEASE_EVERY {
            return;
        }
        self.released_at = self.position;
        let pass: u64 = self.inputs.iter().map(|(_, len)| len).sum();
        if pass == 0 {
            return;
        }
        // Where the reader is within its current pass (an offline load may read everything twice).
        let mut at = self.position % pass;
        for (map, len) in &self.inputs {
            let behind = at.min(*len);
            if let Some(map) = map {
                let end = (behind as usize / PAGE) * PAGE;
                if end > 0 {
                    // SAFETY: the map is read-only and file-backed: dropping its pages loses nothing, a
                    // later read faults them in from the file again.
                    let _ = unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, 0, end) };
                }
            }
            if at < *len {
                break;
            }
            at -= len;
        }
    }
}

/// The page size the released ranges are aligned to (a multiple of it works as well).
const PAGE: usize = 4096;

fn open_input(name: &str) -> Result<Input, String> {
    if name == "-" {
        let mut bytes = Vec::new();
        std::io::stdin().read_to_end(&mut bytes).map_err(|e| format!("standard input: {e}"))?;
        return Ok(Input::Read(bytes));
    }
    let file = std::fs::File::open(name).map_err(|e| format!("{name}: {e}"))?;
    if file.metadata().map(|m| m.len()).unwrap_or(0) == 0 {
        return Ok(Input::Read(Vec::new()));
    }
    // SAFETY: the file is only read; a concurrent truncation by another process could fault, which is
    // the accepted risk of every mmap-based reader of files it does not own.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| format!("{name}: {e}"))?;
    Ok(Input::Mapped(map))
}

fn fail(json: bool, message: &str, code: u8) -> ExitCode {
    eprintln!("velo: error: {message}");
    if json {
        println!("{}", serde_json::json!({ "error": message }));
    }
    ExitCode::from(code)
}

fn is_new_dir(dir: &Path) -> bool {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_none(),
        Err(_) => !dir.exists(),
    }
}

/// Runs `velo rdb-restore`.
pub fn run(args: RdbRestoreArgs) -> ExitCode {
    let mut inputs = Vec::new();
    for name in &args.files {
        match open_input(name) {
            Ok(input) => inputs.push((name.clone(), input)),
            Err(message) => return fail(args.json, &message, 2),
        }
    }
    let files: Vec<(String, &[u8])> = inputs.iter().map(|(name, input)| (name.clone(), input.bytes())).collect();
    let total: u64 = files.iter().map(|(_, bytes)| bytes.len() as u64).sum();
    let options = LoadOptions {
        db_map: args.db_map.clone(),
        on_existing: args.on_existing,
        dry_run: args.dry_run,
        strict: args.strict,
    };
    let bar = if args.json || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        // Offline loads may read the files twice; `offline` sets the length once it knows.
        let bar = ProgressBar::new(if args.host.is_some() { total } else { total * 2 });
        if let Ok(style) =
            ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    };
    let mut releaser = Releaser::new(&inputs);
    let mut progress = |bytes: u64| {
        bar.inc(bytes);
        releaser.advance(bytes);
    };
    let result = match (&args.host, &args.dir) {
        (Some(host), _) => {
            bar.set_message("restoring");
            let addr = format!("{host}:{}", args.port);
            load::load_online(&addr, args.password.as_deref(), &files, &options, &mut progress)
        }
        (None, Some(dir)) => {
            match offline(dir, &files, &options, &mut progress, &args, &|passes| bar.set_length(total * passes)) {
                Ok(summary) => Ok(summary),
                Err(Offline::Load(error)) => Err(error),
                Err(Offline::Message(message)) => {
                    bar.finish_and_clear();
                    return fail(args.json, &message, 2);
                }
            }
        }
        (None, None) => return fail(args.json, "give --dir DIR or --host H", 2),
    };
    bar.finish_and_clear();
    match result {
        Ok(summary) => {
            print_summary(&summary, args.json);
            if summary.any_skipped() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(error @ LoadError::Exists { .. }) => fail(args.json, &error.to_string(), 1),
        // Damaged input, module values under --strict and unmappable databases are found by the
        // checking pass, before anything is written; engine and network failures happen while writing.
        Err(error @ (LoadError::Engine(_) | LoadError::Remote(_))) => {
            fail(args.json, &format!("{error}; the load stopped part way"), 2)
        }
        Err(error) => fail(args.json, &format!("{error}; nothing was written"), 2),
    }
}

enum Offline {
    Load(LoadError),
    Message(String),
}

/// An offline load. Into a new (missing or empty) directory the load goes to a staging directory next
/// to it, renamed into place only when complete, so a crash leaves no half-loaded directory.
fn offline(
    dir: &Path,
    files: &[(String, &[u8])],
    options: &LoadOptions,
    progress: &mut dyn FnMut(u64),
    args: &RdbRestoreArgs,
    set_passes: &dyn Fn(u64),
) -> Result<Summary, Offline> {
    let staged = is_new_dir(dir);
    let target = if staged {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "data".into());
        dir.with_file_name(format!(".{name}.rdb-restore-{}", std::process::id()))
    } else {
        dir.to_path_buf()
    };
    let engine = match Engine::open(&target, EngineOptions::default()) {
        Ok(engine) => engine,
        Err(EngineError::Locked { pid, .. }) => {
            return Err(Offline::Message(format!(
                "{} is in use by a running server (pid {pid}); load into it online instead: velo rdb-restore {} --host H --port P [--password PW]",
                dir.display(),
                args.files.join(" ")
            )))
        }
        Err(error) => return Err(Offline::Message(format!("{}: {error}", dir.display()))),
    };
    let mut result = match load::offline_passes(&engine, options) {
        Ok(passes) => {
            set_passes(passes);
            load::load_offline(&engine, files, options, progress)
        }
        Err(error) => Err(error),
    };
    let closed = engine.close();
    // Function libraries go to the directory's FUNCTION store (`<dir>/functions`), as Redis loads them
    // from an RDB file into its function registry.
    let mut functions_failed = None;
    if let Ok(summary) = result.as_mut() {
        if !options.dry_run {
            match crate::script::functions::add_to_dir(&target, &summary.functions) {
                Ok(loaded) => summary.functions_loaded = loaded as u64,
                Err(error) => functions_failed = Some(format!("loading the function libraries: {error}")),
            }
        }
    }
    let cleanup = |target: &Path| {
        if staged {
            let _ = std::fs::remove_dir_all(target);
        }
    };
    let summary = match result {
        Ok(summary) => summary,
        Err(error) => {
            cleanup(&target);
            return Err(Offline::Load(error));
        }
    };
    if let Some(message) = functions_failed {
        cleanup(&target);
        return Err(Offline::Message(message));
    }
    if let Err(error) = closed {
        cleanup(&target);
        return Err(Offline::Message(format!("closing {}: {error}", target.display())));
    }
    if staged {
        if options.dry_run {
            cleanup(&target);
        } else {
            if dir.exists() {
                // An empty directory: replaced by the loaded one.
                std::fs::remove_dir(dir).map_err(|e| Offline::Message(format!("{}: {e}", dir.display())))?;
            }
            std::fs::rename(&target, dir).map_err(|e| Offline::Message(format!("{}: {e}", dir.display())))?;
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                if let Ok(handle) = std::fs::File::open(parent) {
                    let _ = handle.sync_all();
                }
            }
        }
    }
    Ok(summary)
}

fn print_summary(summary: &Summary, json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(summary).unwrap_or_default());
        return;
    }
    let mut table = Table::new();
    table.set_header(vec!["db", "type", "keys"]);
    for (db, types) in &summary.loaded {
        for (type_name, count) in types {
            table.add_row(vec![db.to_string(), type_name.to_string(), count.to_string()]);
        }
    }
    println!("{table}");
    let verb = if summary.dry_run { "would load" } else { "loaded" };
    println!("{verb} {} keys from {} file(s)", summary.total_loaded(), summary.files.len());
    let notes = [
        ("expired keys skipped", summary.expired_skipped),
        ("existing keys skipped", summary.existing_skipped),
        ("existing keys replaced", summary.existing_replaced),
        ("keys rejected by the server", summary.rejected),
        ("empty collections skipped", summary.empty_skipped),
        ("function libraries loaded", summary.functions_loaded),
        ("function libraries skipped (online loads do not send them)", summary.functions_skipped),
    ];
    for (what, count) in notes {
        if count > 0 {
            println!("{what}: {count}");
        }
    }
    for (module, count) in &summary.modules_skipped {
        println!("module values skipped ({module}): {count}");
    }
}
