//! The layers below the WAL at work: the bucket table grows without a ceiling, values land inline, in
//! segments and in big files, overwrites are compacted away so disk stays bounded, and FLUSHALL gives the
//! space back.

use std::path::Path;

use velo::engine::io::CrashFs;
use velo::engine::{Engine, FsyncPolicy, ValueKind};

use crate::engine_support::{small_options, TestClock};

fn disk_bytes(fs: &CrashFs) -> usize {
    fs.files().iter().filter_map(|path| fs.read_file(path)).map(|bytes| bytes.len()).sum()
}

#[test]
fn table_grows_and_overwrites_are_compacted() {
    let fs = CrashFs::new();
    let clock = TestClock::new(1_000);
    let dir = Path::new("/data");
    let engine = Engine::open(dir, small_options(&fs, &clock, FsyncPolicy::No)).expect("open");
    let keys = 20_000u32;
    let value = |key: u32, pass: u32| format!("{key:08}-{pass}-{}", "v".repeat(60 + (key % 40) as usize)).into_bytes();
    let mut live_bytes = 0usize;
    for pass in 0..3 {
        live_bytes = 0;
        for key in 0..keys {
            let name = format!("key:{key}");
            let value = value(key, pass);
            live_bytes += name.len() + value.len();
            engine.set(0, name.as_bytes(), ValueKind::String, &value, None).expect("set");
        }
    }
    let big: Vec<u8> = (0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
    engine.set(0, b"big", ValueKind::String, &big, None).expect("big");
    engine.checkpoint().expect("checkpoint");
    let stats = engine.stats();
    assert!(stats.total(|s| s.buckets) > 100, "table did not grow: {stats:?}");
    assert!(stats.total(|s| s.chunk_files) >= 1);
    assert_eq!(engine.dbsize(0).expect("dbsize"), keys as u64 + 1);
    // Three passes of overwrites: compaction keeps the files near the live data.
    let disk = disk_bytes(&fs);
    assert!(disk < 2 * live_bytes + 400_000, "disk {disk} vs live {live_bytes}");
    for key in (0..keys).step_by(97) {
        let got = engine.get(0, format!("key:{key}").as_bytes()).expect("get").expect("present");
        assert_eq!(got.value.to_vec(), value(key, 2));
    }
    assert_eq!(engine.get(0, b"big").expect("get").map(|e| e.value.len()), Some(200_000));
    assert!(fs.files().iter().any(|f| f.to_string_lossy().contains("big-")));
    // Overwriting the big value deletes its file.
    engine.set(0, b"big", ValueKind::String, b"small now", None).expect("set");
    engine.checkpoint().expect("checkpoint");
    assert!(!fs.files().iter().any(|f| f.to_string_lossy().contains("big-")), "big file leaked");
    // FLUSHALL returns the space.
    engine.flush_all().expect("flushall");
    assert_eq!(engine.dbsize(0).expect("dbsize"), 0);
    assert!(disk_bytes(&fs) < 64 << 10, "disk after flushall: {}", disk_bytes(&fs));
    engine.set(0, b"after", ValueKind::String, b"1", None).expect("set");
    engine.close().expect("close");
    let engine = Engine::open(dir, small_options(&fs, &clock, FsyncPolicy::No)).expect("reopen");
    assert_eq!(engine.get(0, b"after").expect("get").map(|e| e.value.to_vec()), Some(b"1".to_vec()));
    assert_eq!(engine.get(0, b"key:1").expect("get"), None);
}

#[test]
fn slot_count_is_fixed_and_lock_is_exclusive() {
    let fs = CrashFs::new();
    let clock = TestClock::new(1_000);
    let dir = Path::new("/data");
    let engine = Engine::open(dir, small_options(&fs, &clock, FsyncPolicy::No)).expect("open");
    let err = Engine::open(dir, small_options(&fs, &clock, FsyncPolicy::No)).err().expect("second open fails");
    assert!(err.to_string().contains("locked by another process (pid "), "{err}");
    let mut read_only = small_options(&fs, &clock, FsyncPolicy::No);
    read_only.read_only = true;
    engine.set(0, b"a", ValueKind::String, b"1", None).expect("set");
    engine.sync().expect("sync");
    let inspector = Engine::open(dir, read_only).expect("read-only open beside the writer");
    assert_eq!(inspector.get(0, b"a").expect("get").map(|e| e.value.to_vec()), Some(b"1".to_vec()));
    assert!(inspector.set(0, b"b", ValueKind::String, b"2", None).is_err());
    drop(inspector);
    engine.close().expect("close");
    let mut other_count = small_options(&fs, &clock, FsyncPolicy::No);
    other_count.slot_count = Some(4);
    let err = Engine::open(dir, other_count).err().expect("slot count mismatch");
    assert!(err.to_string().contains("created with 2 slots, but 4 are configured"), "{err}");
    let mut bad = small_options(&fs, &clock, FsyncPolicy::No);
    bad.slot_count = Some(3);
    assert!(Engine::open(Path::new("/other"), bad).is_err());
}

#[test]
fn real_files_on_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options =
        velo::engine::EngineOptions { slot_count: Some(4), wal_flush_bytes: Some(64 << 10), ..Default::default() };
    let engine = Engine::open(dir.path(), options.clone()).expect("open");
    for key in 0..5_000u32 {
        engine
            .set(
                1,
                format!("k{key}").as_bytes(),
                ValueKind::String,
                format!("value-{key}-{}", "z".repeat(80)).as_bytes(),
                None,
            )
            .expect("set");
    }
    let err = Engine::open(dir.path(), options.clone()).err().expect("locked");
    assert!(err.to_string().contains(&format!("pid {}", std::process::id())), "{err}");
    engine.close().expect("close");
    let engine = Engine::open(dir.path(), options).expect("reopen");
    assert_eq!(engine.dbsize(1).expect("dbsize"), 5_000);
    assert_eq!(
        engine.get(1, b"k4321").expect("get").map(|e| e.value.to_vec()),
        Some(format!("value-4321-{}", "z".repeat(80)).into_bytes())
    );
    for slot in 0..4 {
        assert!(dir.path().join(format!("slot-{slot}/meta")).exists());
    }
}

#[test]
fn random_key_reaches_every_key_and_none_when_empty() {
    let fs = CrashFs::new();
    let clock = TestClock::new(1_000);
    let engine = Engine::open(Path::new("/data"), small_options(&fs, &clock, FsyncPolicy::No)).expect("open");
    assert_eq!(engine.random_key(0, 12345).expect("random"), None);
    let keys: Vec<Vec<u8>> = (0..5).map(|n| format!("k{n}").into_bytes()).collect();
    for key in &keys {
        engine.set(0, key, ValueKind::String, b"v", None).expect("set");
    }
    engine.set(1, b"other-db", ValueKind::String, b"v", None).expect("set");
    let mut seen = std::collections::BTreeSet::new();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..400 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let key = engine.random_key(0, state).expect("random").expect("a key");
        assert!(keys.contains(&key), "{key:?} is not in db 0");
        seen.insert(key);
    }
    assert_eq!(seen.len(), keys.len(), "every key comes up");
    engine.set(2, b"soon-gone", ValueKind::String, b"v", Some(1_500)).expect("set");
    clock.advance(1_000);
    assert_eq!(engine.random_key(2, 99).expect("random"), None, "expired keys are not returned");
}

/// A FLUSHALL of slots that a FLUSHALL already emptied does nothing (no record, no checkpoint), and any
/// write in between makes the next one a real flush again: after a crash nothing written before the last
/// flush comes back.
#[test]
fn a_flushall_of_an_emptied_slot_is_free_and_writes_end_that() {
    let fs = CrashFs::new();
    let clock = TestClock::new(1_000);
    let dir = Path::new("/data");
    let engine = Engine::open(dir, small_options(&fs, &clock, FsyncPolicy::Always)).expect("open");
    engine.set(0, b"a", ValueKind::String, b"1", None).expect("set");
    engine.flush_all().expect("flushall");
    let files = fs.files();
    let disk = disk_bytes(&fs);
    engine.flush_all().expect("second flushall");
    engine.flush_all().expect("third flushall");
    assert_eq!((fs.files(), disk_bytes(&fs)), (files, disk), "an emptied slot's FLUSHALL writes nothing");
    for round in 0..3u8 {
        engine.set(round as u16 % 2, b"k", ValueKind::String, &[round], None).expect("set");
        engine.set(0, format!("key:{round}").as_bytes(), ValueKind::String, b"v", Some(5_000)).expect("set");
        engine.flush_all().expect("flushall");
        assert_eq!(engine.dbsize(0).expect("dbsize") + engine.dbsize(1).expect("dbsize"), 0, "round {round}");
        engine.flush_all().expect("flushall again");
    }
    engine.set(0, b"kept", ValueKind::String, b"1", None).expect("set");
    // A power cut: what `fsync always` acknowledged survives, nothing flushed comes back.
    fs.crash(&mut |bound| bound / 2);
    drop(engine);
    let engine = Engine::open(dir, small_options(&fs, &clock, FsyncPolicy::Always)).expect("reopen");
    assert_eq!(engine.dbsize(0).expect("dbsize") + engine.dbsize(1).expect("dbsize"), 1);
    assert_eq!(engine.get(0, b"kept").expect("get").map(|e| e.value.to_vec()), Some(b"1".to_vec()));
    assert_eq!(engine.get(0, b"key:2").expect("get"), None);
}
