//! Corruption tests: flip bytes in every file type of a data directory, and cut files short. Opening or
//! reading must then report the damaged file (and, from the decoders, the offset), and never return a
//! value that was not written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use velo::engine::io::CrashFs;
use velo::engine::{Engine, FsyncPolicy, ValueKind};

use crate::engine_support::{random_value, small_options, TestClock};

struct Fixture {
    fs: CrashFs,
    clock: TestClock,
    /// Every value each key ever had (the last one is current).
    versions: BTreeMap<Vec<u8>, Vec<Vec<u8>>>,
}

/// A data directory with data in every layer: inline cells, segments, big values, overflow pages, a
/// checkpoint, and unflushed WAL records on top.
fn fixture() -> Fixture {
    let fs = CrashFs::new();
    let clock = TestClock::new(5_000);
    let mut rng = SmallRng::seed_from_u64(7);
    let engine = Engine::open(Path::new("/data"), small_options(&fs, &clock, FsyncPolicy::Always)).expect("open");
    let mut versions: BTreeMap<Vec<u8>, Vec<Vec<u8>>> = BTreeMap::new();
    for round in 0..3 {
        // Rounds 0 and 1 end in a checkpoint; round 2 stays in the WAL, over a few of the keys.
        let keys = if round == 2 { 30 } else { 120 };
        for n in 0..keys {
            let key = format!("key:{n}").into_bytes();
            let value = if n % 40 == 0 { (0..3000).map(|_| rng.gen::<u8>()).collect() } else { random_value(&mut rng) };
            engine.set(0, &key, ValueKind::String, &value, None).expect("set");
            versions.entry(key).or_default().push(value);
        }
        if round < 2 {
            engine.checkpoint().expect("checkpoint");
        }
    }
    engine.sync().expect("sync");
    drop(engine);
    Fixture { fs, clock, versions }
}

fn data_files(fs: &CrashFs) -> Vec<PathBuf> {
    fs.files().into_iter().filter(|path| !path.ends_with("LOCK")).collect()
}

/// Opens the damaged copy and reads every key; checks the outcome against what was written.
fn check(fixture: &Fixture, fs: &CrashFs, damaged: &Path, context: &str) {
    let file_name = damaged.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let engine = match Engine::open(Path::new("/data"), small_options(fs, &fixture.clock, FsyncPolicy::Always)) {
        Ok(engine) => engine,
        Err(err) => {
            assert!(err.to_string().contains("/data"), "{context}: open error names no file: {err}");
            return;
        }
    };
    let is_wal = file_name == "wal.log" || file_name == "wal-1.log";
    for (key, versions) in &fixture.versions {
        match engine.get(0, key) {
            Ok(Some(entry)) => {
                let value = entry.value.to_vec();
                let current = versions.last() == Some(&value);
                assert!(
                    current || (is_wal && versions.contains(&value)),
                    "{context}: key {:?} read a value never written last",
                    String::from_utf8_lossy(key)
                );
            }
            Ok(None) => assert!(is_wal, "{context}: key {:?} vanished without an error", String::from_utf8_lossy(key)),
            Err(err) => assert!(err.to_string().contains("/data"), "{context}: read error names no file: {err}"),
        }
    }
}

#[test]
fn flipped_bytes_are_detected_in_every_file() {
    let fixture = fixture();
    let files = data_files(&fixture.fs);
    for wanted in ["velo.meta", "meta", "wal.log", "buckets", "overflow", "chunk-", "big-"] {
        assert!(files.iter().any(|f| f.to_string_lossy().contains(wanted)), "fixture lacks a {wanted} file: {files:?}");
    }
    let mut rng = SmallRng::seed_from_u64(11);
    for path in &files {
        let original = fixture.fs.read_file(path).expect("file");
        if original.is_empty() {
            continue;
        }
        let positions: Vec<usize> =
            (0..24).map(|_| rng.gen_range(0..original.len())).chain([0, 4, original.len() - 1]).collect();
        for position in positions {
            let fs = fixture.fs.fork();
            let mut bytes = original.clone();
            bytes[position] ^= 1 << rng.gen_range(0..8);
            fs.write_file(path, &bytes);
            check(&fixture, &fs, path, &format!("{} byte {position} flipped", path.display()));
        }
    }
}

#[test]
fn truncated_files_are_detected() {
    let fixture = fixture();
    let mut rng = SmallRng::seed_from_u64(12);
    for path in data_files(&fixture.fs) {
        let original = fixture.fs.read_file(&path).expect("file");
        for _ in 0..6 {
            let len = rng.gen_range(0..original.len().max(1));
            let fs = fixture.fs.fork();
            fs.write_file(&path, &original[..len]);
            check(&fixture, &fs, &path, &format!("{} cut to {len} bytes", path.display()));
        }
    }
}

#[test]
fn decode_errors_name_file_and_offset() {
    let fixture = fixture();
    let path = data_files(&fixture.fs).into_iter().find(|p| p.ends_with("buckets")).expect("buckets file");
    let mut bytes = fixture.fs.read_file(&path).expect("file");
    bytes[4096 + 100] ^= 0xff;
    let fs = fixture.fs.fork();
    fs.write_file(&path, &bytes);
    let engine =
        Engine::open(Path::new("/data"), small_options(&fs, &fixture.clock, FsyncPolicy::Always)).expect("open");
    let errors: Vec<String> =
        fixture.versions.keys().filter_map(|key| engine.get(0, key).err()).map(|e| e.to_string()).collect();
    assert!(!errors.is_empty());
    assert!(errors.iter().all(|e| e.contains("buckets at offset 4096")), "{errors:?}");
}
