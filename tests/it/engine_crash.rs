//! Crash tests: a file system that forgets, keeps or tears every write not yet fsynced, at a random
//! point. With `fsync always` every acknowledged write survives; with `everysec` the recovered state is
//! the state after some prefix of the writes that followed the last sync. Never a wrong value, never a
//! panic, never a failed recovery. Failed writes and fsyncs are injected too: the slot refuses writes
//! (poisoned) rather than pretending, and a restart recovers.

use std::collections::BTreeMap;
use std::path::Path;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use velo::engine::io::CrashFs;
use velo::engine::{Engine, FsyncPolicy, ValueKind};

use crate::engine_support::{random_key, random_value, small_options, TestClock};

type State = BTreeMap<(u16, Vec<u8>), Vec<u8>>;

fn engine_state(engine: &Engine) -> State {
    let mut state = BTreeMap::new();
    let mut cursor = 0;
    loop {
        let page = engine.scan(None, cursor, 100).expect("scan after recovery");
        for (db, key) in page.keys {
            let entry = engine.get(db, &key).expect("read after recovery").expect("scanned key readable");
            assert!(state.insert((db, key), entry.value.to_vec()).is_none(), "scan returned a key twice");
        }
        cursor = page.cursor;
        if cursor == 0 {
            return state;
        }
    }
}

/// One random write; returns the state it produces if it succeeds.
fn random_write(engine: &Engine, rng: &mut SmallRng, state: &State) -> (velo::engine::Result<()>, State) {
    let db = rng.gen_range(0..2u16);
    let key = random_key(rng, 150);
    let mut next = state.clone();
    let result = match rng.gen_range(0..10) {
        0..=6 => {
            let value = random_value(rng);
            next.insert((db, key.clone()), value.clone());
            engine.set(db, &key, ValueKind::String, &value, None)
        }
        7 | 8 => {
            next.remove(&(db, key.clone()));
            engine.delete(db, &key).map(|_| ())
        }
        _ => {
            if rng.gen_bool(0.1) {
                next.retain(|(d, _), _| *d != db);
                engine.flush_db(db)
            } else {
                engine.checkpoint()
            }
        }
    };
    (result, next)
}

/// Seeds to run: 24 by default; `VELO_CRASH_SEEDS=n` runs n (for soak runs).
fn seeds(base: u64) -> std::ops::Range<u64> {
    let count = std::env::var("VELO_CRASH_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(24);
    base..base + count
}

/// The keys of `state` that live in `slot`.
fn slot_part(engine: &Engine, state: &State, slot: usize) -> State {
    state.iter().filter(|((_, key), _)| engine.slot_of(key) == slot).map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn reopen(fs: &CrashFs, clock: &TestClock, fsync: FsyncPolicy, context: &str) -> Engine {
    match Engine::open(Path::new("/data"), small_options(fs, clock, fsync)) {
        Ok(engine) => engine,
        Err(err) => panic!("{context}: recovery failed: {err}"),
    }
}

#[test]
fn fsync_always_keeps_every_acknowledged_write() {
    for seed in seeds(0) {
        let mut rng = SmallRng::seed_from_u64(seed);
        let fs = CrashFs::new();
        let clock = TestClock::new(1_000);
        let mut engine = reopen(&fs, &clock, FsyncPolicy::Always, "create");
        let mut state = State::new();
        for round in 0..4 {
            let context = format!("seed {seed} round {round}");
            let writes = rng.gen_range(0..600);
            let mut uncertain: Option<State> = None;
            for _ in 0..writes {
                let (result, next) = random_write(&engine, &mut rng, &state);
                result.expect(&context);
                state = next;
            }
            // Sometimes the crash hits in the middle of an operation whose write or fsync fails.
            if rng.gen_bool(0.5) {
                if rng.gen_bool(0.5) {
                    fs.fail_writes_after(rng.gen_range(1..20), std::io::ErrorKind::Other);
                } else {
                    fs.fail_syncs_after(rng.gen_range(1..5));
                }
                for _ in 0..20 {
                    let (result, next) = random_write(&engine, &mut rng, &state);
                    match result {
                        Ok(()) => state = next,
                        Err(_) => {
                            uncertain = Some(next);
                            break;
                        }
                    }
                }
                if uncertain.is_some() {
                    // After a failure the slot must refuse writes, or fail them, until restart.
                    // (A write whose fsync failed was not acknowledged, but may still be on disk.)
                    let after = engine.set(0, b"after-failure", ValueKind::String, b"x", None);
                    if after.is_ok() {
                        state.insert((0, b"after-failure".to_vec()), b"x".to_vec());
                        if let Some(next) = uncertain.as_mut() {
                            next.insert((0, b"after-failure".to_vec()), b"x".to_vec());
                        }
                    }
                }
            }
            fs.crash(&mut |bound| rng.gen_range(0..bound.max(1)));
            drop(engine);
            engine = reopen(&fs, &clock, FsyncPolicy::Always, &context);
            let mut recovered = engine_state(&engine);
            if !state.contains_key(&(0, b"after-failure".to_vec())) {
                // Refused, so not acknowledged: it may or may not have reached the disk.
                if let Some(value) = recovered.remove(&(0, b"after-failure".to_vec())) {
                    assert_eq!(value, b"x", "{context}");
                    engine.delete(0, b"after-failure").expect(&context);
                }
            }
            // Per slot (each has its own WAL, and a failed multi-slot operation such as FLUSHDB may have
            // been applied to some slots only): the acknowledged state, or that plus the failed operation.
            let mut accepted = State::new();
            for slot in 0..engine.slot_count() {
                let project = |state: &State| slot_part(&engine, state, slot);
                let got = project(&recovered);
                let acknowledged = project(&state);
                let with_failed = uncertain.as_ref().map(project);
                if with_failed.as_ref() == Some(&got) || got == acknowledged {
                    accepted.extend(got);
                    continue;
                }
                let diff: Vec<_> = got
                    .iter()
                    .filter(|(k, v)| acknowledged.get(*k) != Some(*v))
                    .map(|(k, v)| {
                        (k.0, String::from_utf8_lossy(&k.1).into_owned(), v.len(), acknowledged.get(k).map(|v| v.len()))
                    })
                    .chain(
                        acknowledged
                            .keys()
                            .filter(|k| !got.contains_key(*k))
                            .map(|k| (k.0, String::from_utf8_lossy(&k.1).into_owned(), 0, None)),
                    )
                    .collect();
                panic!(
                    "{context}: slot {slot} recovered a state that was never acknowledged (uncertain op: {}): {diff:?}",
                    uncertain.is_some()
                );
            }
            state = accepted;
        }
    }
}

#[test]
fn everysec_loses_only_writes_after_the_last_sync() {
    for seed in seeds(1_000_000) {
        let mut rng = SmallRng::seed_from_u64(seed);
        let fs = CrashFs::new();
        let clock = TestClock::new(1_000);
        let mut engine = reopen(&fs, &clock, FsyncPolicy::EverySec, "create");
        let mut state = State::new();
        for round in 0..4 {
            let context = format!("seed {seed} round {round}");
            // history[0] is the state at the last sync; history[i] after the i-th write since.
            let mut history = vec![state.clone()];
            for _ in 0..rng.gen_range(0..800) {
                let (result, next) = random_write(&engine, &mut rng, &state);
                result.expect(&context);
                state = next;
                if rng.gen_bool(0.01) {
                    engine.sync().expect(&context);
                    history.clear();
                }
                history.push(state.clone());
            }
            fs.crash(&mut |bound| rng.gen_range(0..bound.max(1)));
            drop(engine);
            engine = reopen(&fs, &clock, FsyncPolicy::EverySec, &context);
            let recovered = engine_state(&engine);
            // Each slot has its own WAL, so each slot's keys recover to a prefix of that slot's writes.
            for slot in 0..engine.slot_count() {
                let project = |state: &State| slot_part(&engine, state, slot);
                let recovered_slot = project(&recovered);
                let prefix = history.iter().position(|candidate| project(candidate) == recovered_slot);
                assert!(
                    prefix.is_some(),
                    "{context}: slot {slot} recovered {} keys, which is no prefix of the writes since the last sync",
                    recovered_slot.len()
                );
            }
            state = recovered;
        }
    }
}

#[test]
fn a_failed_checkpoint_poisons_writes_but_keeps_reads_right() {
    for fail_after in [1u64, 3, 8, 20, 60] {
        let fs = CrashFs::new();
        let clock = TestClock::new(1_000);
        let mut options = small_options(&fs, &clock, FsyncPolicy::EverySec);
        options.slot_count = Some(1);
        options.wal_flush_bytes = Some(64 << 20);
        let engine = Engine::open(Path::new("/data"), options.clone()).expect("open");
        let value = |n: u32| format!("value-{n}-{}", "x".repeat((n % 300) as usize)).into_bytes();
        for n in 0..500u32 {
            engine.set(0, format!("k{n}").as_bytes(), ValueKind::String, &value(n), None).expect("set");
        }
        engine.checkpoint().expect("first checkpoint");
        for n in 250..750u32 {
            engine.set(0, format!("k{n}").as_bytes(), ValueKind::String, &value(n + 1), None).expect("set");
        }
        fs.fail_writes_after(fail_after, std::io::ErrorKind::StorageFull);
        let err = engine.checkpoint().expect_err("checkpoint must fail");
        assert!(err.to_string().contains("/data"), "{err}");
        let refused = engine.set(0, b"new", ValueKind::String, b"v", None).expect_err("poisoned");
        assert!(refused.to_string().contains("poisoned"), "{refused}");
        for n in 0..750u32 {
            let expected = if n < 250 { value(n) } else { value(n + 1) };
            let got = engine.get(0, format!("k{n}").as_bytes()).expect("read after failure").map(|e| e.value.to_vec());
            assert_eq!(got, Some(expected), "k{n} after a checkpoint failing at write {fail_after}");
        }
        fs.heal();
        drop(engine);
        let engine = Engine::open(Path::new("/data"), options).expect("restart recovers");
        for n in 0..750u32 {
            let expected = if n < 250 { value(n) } else { value(n + 1) };
            let got = engine.get(0, format!("k{n}").as_bytes()).expect("read after restart").map(|e| e.value.to_vec());
            assert_eq!(got, Some(expected), "k{n} after restart");
        }
        engine.set(0, b"new", ValueKind::String, b"v", None).expect("writable again");
    }
}

/// A batch of writes to one slot (what one command writes, e.g. a split collection's header and parts)
/// is recovered whole or not at all, wherever the crash tears the WAL.
#[test]
fn a_batch_is_recovered_whole_or_not_at_all() {
    for seed in seeds(3_000_000) {
        let mut rng = SmallRng::seed_from_u64(seed);
        let fs = CrashFs::new();
        let clock = TestClock::new(1_000);
        let engine = reopen(&fs, &clock, FsyncPolicy::No, "create");
        // Every key carries the `{tag}` of its batch, so a batch's keys share one slot.
        let sizes: Vec<usize> = (0..rng.gen_range(1..60)).map(|_| rng.gen_range(2..12)).collect();
        for (batch, &size) in sizes.iter().enumerate() {
            let ops = (0..size)
                .map(|i| velo::engine::BatchOp::Set {
                    db: 0,
                    key: format!("{{b{batch}}}:{i}").into_bytes(),
                    kind: ValueKind::String,
                    value: random_value(&mut rng),
                    expire_at_ms: None,
                })
                .collect();
            engine.write_batch(ops).expect("write batch");
            if rng.gen_bool(0.05) {
                engine.sync().expect("sync");
            }
        }
        fs.crash(&mut |bound| rng.gen_range(0..bound.max(1)));
        drop(engine);
        let engine = reopen(&fs, &clock, FsyncPolicy::No, &format!("seed {seed}"));
        let recovered = engine_state(&engine);
        for (batch, &size) in sizes.iter().enumerate() {
            let present =
                (0..size).filter(|i| recovered.contains_key(&(0, format!("{{b{batch}}}:{i}").into_bytes()))).count();
            assert!(present == 0 || present == size, "seed {seed}: batch {batch} recovered {present} of {size} keys");
        }
    }
}

/// `CONFIG SET appendfsync` changes the policy of an open engine: after a switch to `always`, every
/// acknowledged write (and everything before the switch) survives a power cut that drops every unsynced
/// write; after a switch back to `no`, a write is not synced and such a cut loses it.
#[test]
fn fsync_policy_changes_at_run_time() {
    let fs = CrashFs::new();
    let clock = TestClock::new(1_000);
    let engine = reopen(&fs, &clock, FsyncPolicy::No, "create");
    assert_eq!(engine.fsync_policy(), FsyncPolicy::No);
    engine.set(0, b"before", ValueKind::String, b"1", None).expect("write under no");
    engine.set_fsync_policy(FsyncPolicy::Always).expect("switch to always");
    assert_eq!(engine.fsync_policy(), FsyncPolicy::Always);
    for i in 0..50u32 {
        engine.set(0, format!("k{i}").as_bytes(), ValueKind::String, b"v", None).expect("write under always");
    }
    fs.crash(&mut |_| 0);
    drop(engine);
    let engine = reopen(&fs, &clock, FsyncPolicy::No, "after the cut under always");
    let state = engine_state(&engine);
    assert_eq!(state.len(), 51, "every acknowledged write survives: {:?}", state.keys().collect::<Vec<_>>());
    assert_eq!(state.get(&(0, b"before".to_vec())).map(Vec::as_slice), Some(&b"1"[..]));
    // Opened with `no`: nothing is synced, and a cut that drops unsynced writes loses the new key.
    engine.set(0, b"lost", ValueKind::String, b"x", None).expect("write under no");
    fs.crash(&mut |_| 0);
    drop(engine);
    let engine = reopen(&fs, &clock, FsyncPolicy::EverySec, "after the cut under no");
    let state = engine_state(&engine);
    assert_eq!(state.len(), 51);
    assert!(!state.contains_key(&(0, b"lost".to_vec())));
}
