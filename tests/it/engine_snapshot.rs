//! Point-in-time engine snapshots (`engine::snapshot`): what a snapshot reads is the data set of the
//! instant it was registered, whatever writers do meanwhile (overwrites, deletes, new keys, expiry
//! changes, checkpoints), across slots; spilled before-images read back the same; a flush aborts it;
//! dropping it releases the slots.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use velo::engine::snapshot::Snapshot;
use velo::engine::{Engine, EngineOptions, ValueKind};

fn open(dir: &std::path::Path) -> Engine {
    let options = EngineOptions {
        slot_count: Some(4),
        // Small memtables: checkpoints run while the snapshot is read.
        wal_flush_bytes: Some(64 << 10),
        ..EngineOptions::default()
    };
    Engine::open(dir, options).unwrap()
}

/// How a test reads a snapshot: keys listed then looked up through the view (`Snapshot::read`), or
/// keys handed out with their values by one pass over the pages (`Snapshot::read_values`), or so in
/// ranges bounded by bytes instead of keys (`Snapshot::read_values_within`, as an offline dump reads).
#[derive(Clone, Copy, Debug)]
enum Path {
    Keys,
    Values,
    ValuesByBytes,
}

type State = BTreeMap<Vec<u8>, (Vec<u8>, Option<u64>)>;

/// Reads one range of the snapshot into `out` (a key read twice fails); returns where to continue.
fn read_range(
    snapshot: &Snapshot,
    path: Path,
    slot: usize,
    db: u16,
    position: u64,
    want: usize,
    out: &mut State,
) -> Option<u64> {
    let mut add = |key: &[u8], entry: velo::engine::Entry| {
        let previous = out.insert(key.to_vec(), (entry.value.to_vec(), entry.expire_at_ms));
        assert!(previous.is_none(), "key {} read twice", String::from_utf8_lossy(key));
    };
    match path {
        Path::Keys => snapshot.read(slot, db, position, want, &mut |slot, key| {
            if let Some(entry) = slot.get(db, key).unwrap() {
                add(key, entry);
            }
        }),
        Path::Values => snapshot.read_values(slot, db, position, want, &mut |_, key, entry| add(key, entry)),
        // About `want` keys of these tests' values per range.
        Path::ValuesByBytes => {
            snapshot
                .read_values_within(slot, db, position, usize::MAX, want * 64, &mut |_, key, entry| add(&key, entry))
        }
    }
    .unwrap()
}

/// Everything the snapshot holds in `db`, read in ranges of `want` keys.
fn read_all(snapshot: &Snapshot, db: u16, want: usize) -> State {
    read_all_slowly(snapshot, Path::Keys, db, want, std::time::Duration::ZERO)
}

/// As `read_all`, by `path`, pausing `gap` between ranges so that writers run in between.
fn read_all_slowly(snapshot: &Snapshot, path: Path, db: u16, want: usize, gap: std::time::Duration) -> State {
    let mut out = BTreeMap::new();
    for slot in 0..snapshot.slot_count() {
        let mut position = 0;
        loop {
            let next = read_range(snapshot, path, slot, db, position, want, &mut out);
            std::thread::sleep(gap);
            match next {
                Some(next) => position = next,
                None => break,
            }
        }
    }
    out
}

fn current(engine: &Engine, db: u16) -> BTreeMap<Vec<u8>, (Vec<u8>, Option<u64>)> {
    let mut out = BTreeMap::new();
    let mut cursor = 0;
    loop {
        let page = engine.scan(Some(db), cursor, 100).unwrap();
        for (_, key) in page.keys {
            let entry = engine.get(db, &key).unwrap().unwrap();
            out.insert(key, (entry.value.to_vec(), entry.expire_at_ms));
        }
        cursor = page.cursor;
        if cursor == 0 {
            break;
        }
    }
    out
}

fn key(i: usize) -> Vec<u8> {
    format!("key:{i}").into_bytes()
}

/// Writes between registration and reading, and between reads of ranges, never show in the snapshot;
/// `ram_limit` 0 sends every before-image to the spill file.
fn changes_after_the_instant_are_invisible(ram_limit: usize, path: Path) {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let far = velo::engine::system_clock_ms() + 3_600_000;
    for i in 0..3000 {
        let value = format!("v{i}:").repeat(1 + i % 50);
        let expire = (i % 7 == 0).then_some(far + i as u64);
        engine.set(0, &key(i), ValueKind::String, value.as_bytes(), expire).unwrap();
        if i % 3 == 0 {
            engine.set(1, &key(i), ValueKind::String, b"db1", None).unwrap();
        }
    }
    let expected0 = current(&engine, 0);
    let expected1 = current(&engine, 1);
    let snapshot = engine.snapshot(&[0, 1], ram_limit).unwrap();
    assert!(snapshot.pause().as_millis() < 1000);
    let mut round = 0;
    let writer = |round: usize| {
        for i in (round..3000).step_by(5) {
            match i % 4 {
                0 => engine.set(0, &key(i), ValueKind::String, b"changed", None).unwrap(),
                1 => {
                    engine.delete(0, &key(i)).unwrap();
                }
                2 => {
                    engine.set_expiry(0, &key(i), Some(far * 2)).unwrap();
                }
                _ => engine.set(0, &key(i + 100_000), ValueKind::String, b"new", None).unwrap(),
            }
            engine.set(1, &key(i), ValueKind::String, b"db1 changed", None).unwrap();
        }
    };
    writer(round);
    // Read the snapshot in small ranges, writing between them.
    let mut got0 = BTreeMap::new();
    for slot in 0..snapshot.slot_count() {
        let mut position = 0;
        loop {
            let next = read_range(&snapshot, path, slot, 0, position, 50, &mut got0);
            round += 1;
            writer(round % 5);
            match next {
                Some(next) => position = next,
                None => break,
            }
        }
    }
    assert_eq!(got0.len(), expected0.len());
    assert!(got0 == expected0, "database 0 differs from the instant");
    let got1 = read_all_slowly(&snapshot, path, 1, 1000, std::time::Duration::ZERO);
    assert!(got1 == expected1, "database 1 differs from the instant");
    let stats = snapshot.stats();
    assert!(stats.captured_keys > 0);
    if ram_limit == 0 {
        assert_eq!(stats.spilled_bytes, stats.captured_bytes);
        assert!(stats.spilled_bytes > 0);
    }
    // Read completely: every slot has stopped capturing and holds nothing.
    assert_eq!(snapshot.stats().ram_bytes, 0);
    drop(snapshot);
    // No spill file stays in the directory.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("snapshot-"))
        .collect();
    assert!(leftovers.is_empty());
    engine.close().unwrap();
}

#[test]
fn snapshot_sees_the_instant_in_ram() {
    changes_after_the_instant_are_invisible(64 << 20, Path::Keys);
}

#[test]
fn snapshot_sees_the_instant_with_spilled_images() {
    changes_after_the_instant_are_invisible(0, Path::Keys);
}

#[test]
fn snapshot_values_see_the_instant_in_ram() {
    changes_after_the_instant_are_invisible(64 << 20, Path::Values);
}

#[test]
fn snapshot_values_see_the_instant_with_spilled_images() {
    changes_after_the_instant_are_invisible(0, Path::Values);
}

#[test]
fn snapshot_values_by_bytes_see_the_instant() {
    changes_after_the_instant_are_invisible(64 << 20, Path::ValuesByBytes);
    changes_after_the_instant_are_invisible(0, Path::ValuesByBytes);
}

fn add(slot: &mut velo::engine::Slot, key: &[u8], delta: i64) {
    let value: i64 = std::str::from_utf8(&slot.get(0, key).unwrap().unwrap().value).unwrap().parse().unwrap();
    slot.set(0, key, ValueKind::String, (value + delta).to_string().as_bytes(), None).unwrap();
}

/// Transfers between accounts in different slots (both slots locked, as a multi-key command does) run
/// while the snapshot is read: the snapshot's total is always the initial total.
#[test]
fn snapshot_is_one_instant_across_slots_under_concurrent_writers() {
    one_instant_across_slots(Path::Keys);
}

#[test]
fn snapshot_values_are_one_instant_across_slots_under_concurrent_writers() {
    one_instant_across_slots(Path::Values);
    one_instant_across_slots(Path::ValuesByBytes);
}

fn one_instant_across_slots(path: Path) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(open(dir.path()));
    const ACCOUNTS: usize = 400;
    for i in 0..ACCOUNTS {
        engine.set(0, &key(i), ValueKind::String, b"100", None).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let transfers = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for w in 0..3u64 {
        let (engine, stop, transfers) = (engine.clone(), stop.clone(), transfers.clone());
        writers.push(std::thread::spawn(move || {
            let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ w;
            while !stop.load(Ordering::Relaxed) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let (a, b) = ((state % ACCOUNTS as u64) as usize, ((state >> 20) % ACCOUNTS as u64) as usize);
                if a == b {
                    continue;
                }
                let (ka, kb) = (key(a), key(b));
                let (sa, sb) = (engine.slot_of(&ka), engine.slot_of(&kb));
                if sa == sb {
                    let mut slot = engine.lock_slot(sa);
                    add(&mut slot, &ka, -1);
                    add(&mut slot, &kb, 1);
                } else {
                    let mut low = engine.lock_slot(sa.min(sb));
                    let mut high = engine.lock_slot(sa.max(sb));
                    let (slot_a, slot_b) = if sa < sb { (&mut low, &mut high) } else { (&mut high, &mut low) };
                    add(slot_a, &ka, -1);
                    add(slot_b, &kb, 1);
                }
                transfers.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for _ in 0..5 {
        std::thread::sleep(std::time::Duration::from_millis(30));
        let snapshot = engine.snapshot(&[0], 1 << 20).unwrap();
        let seen = read_all_slowly(&snapshot, path, 0, 10, std::time::Duration::from_millis(2));
        assert_eq!(seen.len(), ACCOUNTS);
        let total: i64 = seen.values().map(|(v, _)| std::str::from_utf8(v).unwrap().parse::<i64>().unwrap()).sum();
        assert_eq!(total, 100 * ACCOUNTS as i64, "the snapshot is not one instant");
    }
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.join().unwrap();
    }
    assert!(transfers.load(Ordering::Relaxed) > 100, "the writers hardly ran");
}

#[test]
fn flush_aborts_a_snapshot_and_one_snapshot_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    for i in 0..100 {
        engine.set(0, &key(i), ValueKind::String, b"x", None).unwrap();
    }
    let snapshot = engine.snapshot(&[0], 1 << 20).unwrap();
    assert!(engine.snapshot(&[0], 1 << 20).is_err(), "a second snapshot while one is read");
    engine.flush_db(0).unwrap();
    let error = snapshot.read(0, 0, 0, 10, &mut |_, _| {}).unwrap_err();
    assert!(error.to_string().contains("flushed"), "{error}");
    drop(snapshot);
    // Dropped: a new snapshot registers and reads the flushed state.
    let snapshot = engine.snapshot(&[0], 1 << 20).unwrap();
    assert!(read_all(&snapshot, 0, 10).is_empty());
}

/// A database empty in a slot is skipped without a scan; that must not lose keys deleted from it after
/// the instant (they live only in before-images), nor show keys added to a database empty at the instant.
#[test]
fn databases_empty_now_or_at_the_instant_read_exactly() {
    empty_databases(Path::Keys);
}

#[test]
fn snapshot_values_of_databases_empty_now_or_at_the_instant() {
    empty_databases(Path::Values);
    empty_databases(Path::ValuesByBytes);
}

fn empty_databases(path: Path) {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    for i in 0..400 {
        engine.set(0, &key(i), ValueKind::String, b"zero", None).unwrap();
    }
    // Database 3: a few keys, each deleted after the instant (and checkpointed away).
    for i in 0..6 {
        engine.set(3, &key(i), ValueKind::String, b"three", None).unwrap();
    }
    engine.checkpoint().unwrap();
    let expected3 = current(&engine, 3);
    assert_eq!(expected3.len(), 6);
    let snapshot = engine.snapshot(&[0, 3, 5], 64 << 20).unwrap();
    for i in 0..6 {
        assert!(engine.delete(3, &key(i)).unwrap());
    }
    // Database 5: empty at the instant, written after it.
    for i in 0..50 {
        engine.set(5, &key(i), ValueKind::String, b"five", None).unwrap();
    }
    engine.checkpoint().unwrap();
    assert_eq!(read_all_slowly(&snapshot, path, 0, 64, std::time::Duration::ZERO).len(), 400);
    assert_eq!(read_all_slowly(&snapshot, path, 3, 64, std::time::Duration::ZERO), expected3);
    assert!(read_all_slowly(&snapshot, path, 5, 64, std::time::Duration::ZERO).is_empty());
    snapshot.check().unwrap();
}

/// Keys whose state at the instant is in the bucket pages (checkpointed, no memtable entry) are marked,
/// not read, when first changed: read back from the pages by the scan, or by the checkpoint that is
/// about to rewrite those pages (here forced between the writes and the read), by either read path.
#[test]
fn keys_changed_while_in_the_pages_read_as_of_the_instant() {
    for (path, checkpoint_between) in [
        (Path::Keys, false),
        (Path::Keys, true),
        (Path::Values, false),
        (Path::Values, true),
        (Path::ValuesByBytes, false),
        (Path::ValuesByBytes, true),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let engine = open(dir.path());
        let far = velo::engine::system_clock_ms() + 3_600_000;
        for i in 0..1500 {
            let expire = (i % 5 == 0).then_some(far + i as u64);
            engine
                .set(0, &key(i), ValueKind::String, format!("old:{i}").repeat(1 + i % 40).as_bytes(), expire)
                .unwrap();
        }
        engine.checkpoint().unwrap();
        let expected = current(&engine, 0);
        let snapshot = engine.snapshot(&[0], 64 << 20).unwrap();
        for i in 0..1500 {
            match i % 4 {
                0 => engine.set(0, &key(i), ValueKind::String, b"new", None).unwrap(),
                1 => assert!(engine.delete(0, &key(i)).unwrap()),
                2 => assert!(engine.set_expiry(0, &key(i), Some(far * 2)).unwrap()),
                _ => {}
            }
        }
        if checkpoint_between {
            engine.checkpoint().unwrap();
            // Overwritten again after the checkpoint: the image read at the checkpoint stays.
            for i in (0..1500).step_by(3) {
                engine.set(0, &key(i), ValueKind::String, b"newer", None).unwrap();
            }
            engine.checkpoint().unwrap();
        }
        let got = read_all_slowly(&snapshot, path, 0, 64, std::time::Duration::ZERO);
        assert_eq!(got.len(), expected.len(), "{path:?}, checkpoint between: {checkpoint_between}");
        assert!(got == expected, "{path:?}, checkpoint between: {checkpoint_between}: differs from the instant");
        snapshot.check().unwrap();
    }
}
