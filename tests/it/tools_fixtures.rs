//! Data directories for the offline tools' tests (`velo check`, `inspect-*`, `bigkeys`), built at test
//! time through the engine API so they always follow the current format: a healthy directory with data
//! in every layer, and damaged copies made by flipping or cutting bytes of one file.
//! `VELO_FIXTURES_OUT=fixtures/engine cargo test --test it tools_fixtures -- --ignored` writes them to disk
//! for poking at by hand (fixtures/engine/README.md).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use velo::engine::{Engine, EngineOptions, FsyncPolicy, ValueKind};

/// Options that make small directories exercise every layer: two slots, small segments, few inline bytes.
pub fn options() -> EngineOptions {
    EngineOptions {
        slot_count: Some(2),
        fsync: FsyncPolicy::Always,
        wal_flush_bytes: Some(1 << 30),
        segment_size: 1024,
        inline_max: 24,
        background_sync: false,
        clock: Arc::new(|| 1_000_000),
        ..Default::default()
    }
}

/// A compact hash value (docs/format.md §"Hash value") of `n` fields of `len`-byte values.
pub fn hash_value(n: u32, len: usize) -> Vec<u8> {
    let mut out = n.to_le_bytes().to_vec();
    for i in 0..n {
        let field = format!("f{i}");
        out.extend_from_slice(&(field.len() as u32).to_le_bytes());
        out.extend_from_slice(field.as_bytes());
        out.extend_from_slice(&(len as u32).to_le_bytes());
        out.extend(std::iter::repeat_n(b'v', len));
    }
    out
}

/// What the healthy fixture holds.
pub struct Healthy {
    /// The data directory.
    pub dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

/// Builds the healthy fixture in `dir`: `user:N` small strings (inline), `doc:N` 200-byte strings
/// (segments, overwritten once so the first versions are garbage), `blob:big` 20 KB random (a big-value
/// file), `h:small`/`h:large` compact hashes (3 and 40 fields), `exp:1` with an expiry, a key with bytes
/// redis-cli escapes, all checkpointed; then `wal:N` and a new version of `user:1` only in the WAL.
pub fn build(dir: &Path) {
    let mut rng = SmallRng::seed_from_u64(12);
    let engine = Engine::open(dir, options()).expect("open");
    for n in 0..200 {
        engine
            .set(0, format!("user:{n}").as_bytes(), ValueKind::String, format!("u{n}").as_bytes(), None)
            .expect("set");
    }
    for round in 0..2 {
        for n in 0..60 {
            let value: Vec<u8> = (0..200).map(|i| b'a' + ((i + n + round) % 26) as u8).collect();
            engine.set(0, format!("doc:{n}").as_bytes(), ValueKind::String, &value, None).expect("set");
        }
        engine.checkpoint().expect("checkpoint");
    }
    let big: Vec<u8> = (0..20_000).map(|_| rng.gen()).collect();
    engine.set(0, b"blob:big", ValueKind::String, &big, None).expect("set");
    engine.set(0, b"h:small", ValueKind::Hash, &hash_value(3, 4), None).expect("set");
    engine.set(0, b"h:large", ValueKind::Hash, &hash_value(40, 10), None).expect("set");
    engine.set(0, b"exp:1", ValueKind::String, b"soon", Some(9_000_000_000_000)).expect("set");
    engine.set(1, b"odd\n\"key\"\xff", ValueKind::String, b"x", None).expect("set");
    engine.checkpoint().expect("checkpoint");
    for n in 0..5 {
        engine.set(0, format!("wal:{n}").as_bytes(), ValueKind::String, b"pending", None).expect("set");
    }
    engine.set(0, b"user:1", ValueKind::String, b"newer", None).expect("set");
    engine.sync().expect("sync");
    // Dropped without close: the WAL keeps the last writes (close would checkpoint them).
    drop(engine);
}

impl Healthy {
    /// A fresh healthy directory in a temporary directory.
    pub fn new() -> Healthy {
        let temp = tempfile::tempdir().expect("tempdir");
        let dir = temp.path().join("data");
        build(&dir);
        Healthy { dir, _temp: Some(temp) }
    }

    /// A copy of the directory (to damage) inside the same temporary directory.
    pub fn copy(&self, name: &str) -> PathBuf {
        let target = self.dir.with_file_name(name);
        copy_dir(&self.dir, &target);
        target
    }
}

/// Copies a directory tree (files and subdirectories).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir").flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Flips one bit of a file.
pub fn flip(path: &Path, offset: u64, bit: u8) {
    let mut bytes = std::fs::read(path).expect("read");
    bytes[offset as usize] ^= 1 << bit;
    std::fs::write(path, bytes).expect("write");
}

/// Runs the `velo` binary.
pub fn velo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_velo")).args(args).env("NO_COLOR", "1").output().expect("run velo")
}

/// Runs `velo ... --json` and parses stdout.
pub fn velo_json(args: &[&str]) -> (i32, serde_json::Value) {
    let mut all = args.to_vec();
    all.push("--json");
    let out = velo(&all);
    let text = String::from_utf8_lossy(&out.stdout);
    let value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!("{args:?}: not JSON ({e}): {text}\nstderr: {}", String::from_utf8_lossy(&out.stderr))
    });
    (out.status.code().unwrap_or(-1), value)
}

/// The chunk files of a slot directory, sorted.
pub fn chunk_files(slot: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(slot)
        .expect("read_dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("chunk-")))
        .collect();
    files.sort();
    files
}

/// Writes the fixtures to `$VELO_FIXTURES_OUT` (healthy, and one damaged copy per file kind).
#[test]
#[ignore]
fn write_fixtures() {
    let Some(out) = std::env::var_os("VELO_FIXTURES_OUT") else { return };
    let out = PathBuf::from(out);
    let healthy = out.join("healthy");
    let _ = std::fs::remove_dir_all(&healthy);
    build(&healthy);
    let damaged = out.join("damaged-page");
    let _ = std::fs::remove_dir_all(&damaged);
    copy_dir(&healthy, &damaged);
    flip(&damaged.join("slot-0/buckets"), 4096 + 100, 3);
}
