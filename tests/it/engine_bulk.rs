//! The engine's bulk loader (`engine::bulk`): a large load reads back whole, before and after a reopen,
//! with spilled runs merged, duplicates resolved, values inline, in segments and in big files; `velo
//! check` finds nothing wrong; and a failure at any write or fsync of a load, followed by a power cut,
//! leaves the directory with none of it or all of it.

use std::sync::Arc;

use velo::engine::io::CrashFs;
use velo::engine::{BatchOp, Engine, EngineOptions, FsyncPolicy, ValueKind};

fn key(i: u64) -> Vec<u8> {
    format!("key:{i:09}").into_bytes()
}

/// The value of key `i` in round `round`: tiny (inline), 100 bytes (segment), an integer, or every
/// 5,000th one 9 KiB (a big value).
fn value(i: u64, round: u64) -> Vec<u8> {
    if i % 5000 == 7 {
        return format!("{round}:{i}:").repeat(1000).into_bytes();
    }
    match i % 3 {
        0 => format!("v{round}:{i}").into_bytes(),
        1 => format!("{round}:{i}:{}", "x".repeat(90)).into_bytes(),
        _ => (i * 1000 + round).to_string().into_bytes(),
    }
}

fn db_of(i: u64) -> u16 {
    if i % 10 == 9 {
        1
    } else {
        0
    }
}

fn expiry(i: u64) -> Option<u64> {
    i.is_multiple_of(7).then_some(4_000_000_000_000 + i)
}

fn set(i: u64, round: u64) -> BatchOp {
    BatchOp::Set { db: db_of(i), key: key(i), kind: ValueKind::String, value: value(i, round), expire_at_ms: expiry(i) }
}

/// Loads keys `0..n` (the first `dups` of them twice, the second write winning).
fn bulk_load(engine: &Engine, n: u64, dups: u64, run_budget: usize) -> velo::engine::Result<()> {
    let mut load = engine.bulk_load()?;
    load.set_run_budget(run_budget);
    for i in 0..dups {
        load.write_slot(engine.slot_of(&key(i)), vec![set(i, 0)])?;
    }
    for i in 0..n {
        load.write_slot(engine.slot_of(&key(i)), vec![set(i, 1)])?;
    }
    engine.commit_bulk(load)
}

fn verify(engine: &Engine, n: u64) {
    for i in 0..n {
        let entry = engine.get(db_of(i), &key(i)).unwrap().unwrap_or_else(|| panic!("key {i} missing"));
        assert_eq!(entry.value.as_ref(), &value(i, 1)[..], "key {i}");
        assert_eq!(entry.expire_at_ms, expiry(i), "key {i}");
    }
    let in_db1 = (0..n).filter(|i| db_of(*i) == 1).count() as u64;
    assert_eq!(engine.dbsize(0).unwrap(), n - in_db1);
    assert_eq!(engine.dbsize(1).unwrap(), in_db1);
}

#[test]
fn a_bulk_load_of_200k_keys_reads_back_whole_before_and_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let options = || EngineOptions { slot_count: Some(4), background_sync: false, ..EngineOptions::default() };
    let n = 200_000;
    {
        let engine = Engine::open(dir.path(), options()).unwrap();
        assert!(engine.is_empty_for_bulk().unwrap());
        // A 2 MiB budget: several sorted runs per slot are merged.
        bulk_load(&engine, n, 3000, 2 << 20).unwrap();
        assert!(!dir.path().join("bulk").exists(), "staging directory removed after the commit");
        verify(&engine, n);
        assert!(!engine.is_empty_for_bulk().unwrap());
        engine.close().unwrap();
    }
    let report = velo::inspect::check::check(&velo::inspect::DataDir::open(dir.path()).unwrap(), None, &|_| {});
    assert!(report.clean, "velo check: {:?}", report.findings);
    let engine = Engine::open(dir.path(), options()).unwrap();
    verify(&engine, n);
    // The loaded slots take ordinary writes, checkpoints and table growth afterwards.
    for i in n..n + 20_000 {
        engine.write_batch(vec![set(i, 1)]).unwrap();
    }
    for i in (0..n).step_by(97) {
        engine.delete(db_of(i), &key(i)).unwrap();
        engine.write_batch(vec![set(i, 1)]).unwrap();
    }
    engine.checkpoint().unwrap();
    verify(&engine, n + 20_000);
    engine.close().unwrap();
    let report = velo::inspect::check::check(&velo::inspect::DataDir::open(dir.path()).unwrap(), None, &|_| {});
    assert!(report.clean, "velo check after more writes: {:?}", report.findings);
}

/// `write_string` (packed writes, what `velo rdb-restore` uses) and `write_slot` mixed key by key: the
/// later write of a key wins whichever way each came, a delete cancels a packed write, and integers, big
/// values and expiries read back as with `write_slot` alone.
#[test]
fn packed_string_writes_and_batch_ops_apply_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let engine =
        Engine::open(dir.path(), EngineOptions { slot_count: Some(4), background_sync: false, ..Default::default() })
            .unwrap();
    let n = 60_000;
    let string = |load: &mut velo::engine::BulkLoad, i: u64, round: u64| {
        load.write_string(engine.slot_of(&key(i)), db_of(i), &key(i), &value(i, round), expiry(i)).unwrap()
    };
    let mut load = engine.bulk_load().unwrap();
    load.set_run_budget(1 << 20);
    for i in 0..n {
        // Round 0 one way, round 1 the other.
        if i % 2 == 0 {
            string(&mut load, i, 0);
            load.write_slot(engine.slot_of(&key(i)), vec![set(i, 1)]).unwrap();
        } else {
            load.write_slot(engine.slot_of(&key(i)), vec![set(i, 0)]).unwrap();
            string(&mut load, i, 1);
        }
    }
    // Written packed, then deleted by an op.
    let gone = |i: u64| key(n + i);
    for i in 0..500 {
        load.write_string(engine.slot_of(&gone(i)), 0, &gone(i), b"doomed", None).unwrap();
        load.write_slot(engine.slot_of(&gone(i)), vec![BatchOp::Delete { db: 0, key: gone(i) }]).unwrap();
    }
    engine.commit_bulk(load).unwrap();
    verify(&engine, n);
    for i in 0..500 {
        assert_eq!(engine.get(0, &gone(i)).unwrap(), None, "deleted key {i}");
    }
    engine.close().unwrap();
    let report = velo::inspect::check::check(&velo::inspect::DataDir::open(dir.path()).unwrap(), None, &|_| {});
    assert!(report.clean, "velo check: {:?}", report.findings);
}

#[test]
fn a_slot_written_during_a_bulk_load_refuses_its_commit() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), EngineOptions { background_sync: false, ..Default::default() }).unwrap();
    let mut load = engine.bulk_load().unwrap();
    load.write_slot(engine.slot_of(&key(1)), vec![set(1, 1)]).unwrap();
    // A key of the same slot, written outside the load.
    let other = (2..).map(key).find(|k| engine.slot_of(k) == engine.slot_of(&key(1))).unwrap();
    engine.set(0, &other, ValueKind::String, b"x", None).unwrap();
    assert!(!engine.is_empty_for_bulk().unwrap());
    assert!(engine.commit_bulk(load).is_err(), "a slot written meanwhile refuses the commit");
    assert!(!dir.path().join("bulk").exists(), "the refused load's staged files are removed");
    assert_eq!(engine.get(0, &key(1)).unwrap(), None);
    assert_eq!(engine.dbsize(0).unwrap(), 1);
}

fn crash_options(fs: &CrashFs) -> EngineOptions {
    EngineOptions {
        slot_count: Some(2),
        fsync: FsyncPolicy::No,
        segment_size: 1024,
        background_sync: false,
        fs: Arc::new(fs.clone()),
        ..EngineOptions::default()
    }
}

/// Counts the keys of `0..n` that are present with their loaded value (panics on a wrong value).
fn present(engine: &Engine, n: u64) -> u64 {
    (0..n)
        .filter(|&i| match engine.get(db_of(i), &key(i)).unwrap() {
            Some(entry) => {
                assert_eq!(entry.value.as_ref(), &value(i, 1)[..], "key {i}");
                true
            }
            None => false,
        })
        .count() as u64
}

#[test]
fn a_failure_at_any_write_or_fsync_then_a_power_cut_leaves_all_or_nothing() {
    let n = 3000;
    // How many writes and fsyncs a whole load takes, to try a failure at each (a sample of them).
    let probe = CrashFs::new();
    let mut rng_state = 0x9e3779b97f4a7c15u64;
    let mut random = move |bound: u64| {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        rng_state % bound.max(1)
    };
    {
        let engine = Engine::open("/data", crash_options(&probe)).unwrap();
        engine.set(0, b"before", ValueKind::String, b"old", None).unwrap();
        engine.delete(0, b"before").unwrap();
        engine.close().unwrap();
    }
    let (mut all, mut none) = (0, 0);
    for step in (1..400u64).step_by(7) {
        for fail_sync in [false, true] {
            let fs = probe.fork();
            let engine = Engine::open("/data", crash_options(&fs)).unwrap();
            assert!(engine.is_empty_for_bulk().unwrap());
            if fail_sync {
                fs.fail_syncs_after(step / 7 + 1);
            } else {
                fs.fail_writes_after(step, std::io::ErrorKind::Other);
            }
            let result = bulk_load(&engine, n, 100, 64 << 10);
            drop(engine);
            fs.crash(&mut random);
            let engine = Engine::open("/data", crash_options(&fs)).unwrap();
            let count = present(&engine, n);
            assert!(count == 0 || count == n, "step {step} (sync {fail_sync}): {count} of {n} keys survived");
            if count == n {
                all += 1;
                assert_eq!(engine.dbsize(0).unwrap() + engine.dbsize(1).unwrap(), n);
            } else {
                assert!(result.is_err(), "step {step}: the load reported success but nothing survived");
                none += 1;
                assert!(engine.is_empty_for_bulk().unwrap());
            }
            let names: Vec<String> = fs.files().iter().map(|p| p.display().to_string()).collect();
            assert!(!names.iter().any(|name| name.starts_with("/data/bulk")), "staging left: {names:?}");
            engine.close().unwrap();
        }
    }
    assert!(all > 0 && none > 0, "both outcomes are exercised ({all} whole, {none} none)");
}

#[test]
fn velo_check_reports_staged_and_committed_loads_as_warnings_not_damage() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), EngineOptions { background_sync: false, ..Default::default() }).unwrap();
    let mut load = engine.bulk_load().unwrap();
    for i in 0..1000 {
        load.write_slot(engine.slot_of(&key(i)), vec![set(i, 1)]).unwrap();
    }
    let report = velo::inspect::check::check(&velo::inspect::DataDir::open(dir.path()).unwrap(), None, &|_| {});
    assert!(report.clean, "{:?}", report.findings);
    let text = format!("{:?}", report.findings);
    assert!(text.contains("bulk load that has not committed"), "{text}");
    drop(load);
    assert!(!dir.path().join("bulk").exists(), "an abandoned load removes its staged files");
    engine.close().unwrap();
    // A damaged commit file is damage.
    std::fs::create_dir_all(dir.path().join("bulk")).unwrap();
    std::fs::write(dir.path().join("bulk/COMMIT"), b"VBLK garbage").unwrap();
    let report = velo::inspect::check::check(&velo::inspect::DataDir::open(dir.path()).unwrap(), None, &|_| {});
    assert!(!report.clean, "{:?}", report.findings);
    assert!(Engine::open(dir.path(), EngineOptions { background_sync: false, ..Default::default() }).is_err());
}
