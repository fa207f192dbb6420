//! Model test: random sequences of set / delete / expire / persist / flush / checkpoint / close+reopen, and
//! transactions of several batches over every slot, against a `BTreeMap` reference, checking every read,
//! full scans and key counts.

use std::collections::{BTreeMap, BTreeSet};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use velo::engine::io::CrashFs;
use velo::engine::{BatchOp, Engine, FsyncPolicy, ValueKind};

use crate::engine_support::{random_key, random_value, small_options, TestClock};

type Model = BTreeMap<(u16, Vec<u8>), (ValueKind, Vec<u8>, Option<u64>)>;

fn live(model: &Model, db: u16, key: &[u8], now: u64) -> Option<(ValueKind, Vec<u8>, Option<u64>)> {
    model.get(&(db, key.to_vec())).filter(|(_, _, at)| at.is_none_or(|at| at > now)).cloned()
}

fn full_scan(engine: &Engine, db: Option<u16>, rng: &mut SmallRng) -> Vec<(u16, Vec<u8>)> {
    let mut cursor = 0;
    let mut keys = Vec::new();
    loop {
        let page = engine.scan(db, cursor, rng.gen_range(1..50)).expect("scan");
        keys.extend(page.keys);
        cursor = page.cursor;
        if cursor == 0 {
            return keys;
        }
    }
}

/// Removes every expired key from the engine (sweeping all buckets) and from the model.
fn sweep_all(engine: &Engine, model: &mut Model, now: u64) {
    let buckets: u64 = engine.stats().slots.iter().map(|s| s.buckets).max().unwrap_or(1);
    for _ in 0..(buckets / 16 + 2) * 2 {
        engine.active_expire(usize::MAX).expect("active expire");
    }
    model.retain(|_, (_, _, at)| at.is_none_or(|at| at > now));
}

fn run(seed: u64, operations: usize) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let fs = CrashFs::new();
    let clock = TestClock::new(1_700_000_000_000);
    let dir = std::path::Path::new("/data");
    let mut engine = Engine::open(dir, small_options(&fs, &clock, FsyncPolicy::EverySec)).expect("open");
    let mut model: Model = BTreeMap::new();
    let checkpoints = std::cell::RefCell::new(0u64);
    for step in 0..operations {
        let db = rng.gen_range(0..3u16);
        let key = random_key(&mut rng, 400);
        let now = clock.now();
        let context = format!("seed {seed} step {step} db {db} key {:?}", String::from_utf8_lossy(&key));
        match rng.gen_range(0..100) {
            0..=34 => {
                let value = random_value(&mut rng);
                let kind = if rng.gen_bool(0.9) { ValueKind::String } else { ValueKind::Hash };
                let expiry = rng.gen_bool(0.15).then(|| now + rng.gen_range(1..5_000));
                engine.set(db, &key, kind, &value, expiry).expect(&context);
                model.insert((db, key), (kind, value, expiry));
            }
            35..=54 => {
                let got = engine.get(db, &key).expect(&context).map(|e| (e.kind, e.value.to_vec(), e.expire_at_ms));
                assert_eq!(got, live(&model, db, &key, now), "{context}");
            }
            55..=64 => {
                let was = engine.delete(db, &key).expect(&context);
                assert_eq!(was, live(&model, db, &key, now).is_some(), "{context}");
                if was {
                    model.remove(&(db, key));
                }
            }
            65..=71 => {
                let expiry = if rng.gen_bool(0.3) { None } else { Some(now + rng.gen_range(1..10_000)) };
                let applied = engine.set_expiry(db, &key, expiry).expect(&context);
                let exists = live(&model, db, &key, now).is_some();
                assert_eq!(applied, exists, "{context}");
                if exists {
                    if let Some(entry) = model.get_mut(&(db, key)) {
                        entry.2 = expiry;
                    }
                }
            }
            72..=74 => {
                let info = engine.key_info(db, &key).expect(&context).map(|i| (i.kind, i.expire_at_ms));
                assert_eq!(info, live(&model, db, &key, now).map(|(kind, _, at)| (kind, at)), "{context}");
            }
            75..=79 => clock.advance(rng.gen_range(1..3_000)),
            80..=82 => {
                // Half the time several batches (over every slot and database) run as one transaction,
                // reading their own writes before the commit.
                let transaction = rng.gen_bool(0.5).then(|| engine.transaction());
                let batches = if transaction.is_some() { rng.gen_range(1..5) } else { 1 };
                for _ in 0..batches {
                    let mut ops = Vec::new();
                    let db = rng.gen_range(0..3u16);
                    for _ in 0..rng.gen_range(1..30) {
                        let key = random_key(&mut rng, 400);
                        if rng.gen_bool(0.8) {
                            let value = random_value(&mut rng);
                            model.insert((db, key.clone()), (ValueKind::String, value.clone(), None));
                            ops.push(BatchOp::Set { db, key, kind: ValueKind::String, value, expire_at_ms: None });
                        } else {
                            model.remove(&(db, key.clone()));
                            ops.push(BatchOp::Delete { db, key });
                        }
                    }
                    let probe = ops.first().map(|op| match op {
                        BatchOp::Set { key, .. } | BatchOp::SetString { key, .. } | BatchOp::Delete { key, .. } => {
                            key.clone()
                        }
                    });
                    engine.write_batch(ops).expect(&context);
                    if let Some(probe) = probe {
                        let got =
                            engine.get(db, &probe).expect(&context).map(|e| (e.kind, e.value.to_vec(), e.expire_at_ms));
                        assert_eq!(got, live(&model, db, &probe, now), "{context}: read inside a transaction");
                    }
                }
                if let Some(transaction) = transaction {
                    transaction.commit().expect(&context);
                }
            }
            83 => {
                let scanned = full_scan(&engine, Some(db), &mut rng);
                let unique: BTreeSet<_> = scanned.iter().cloned().collect();
                assert_eq!(unique.len(), scanned.len(), "{context}: scan returned duplicates");
                let expected: BTreeSet<_> = model
                    .iter()
                    .filter(|((d, _), (_, _, at))| *d == db && at.is_none_or(|at| at > now))
                    .map(|(k, _)| k.clone())
                    .collect();
                assert_eq!(unique, expected, "{context}: scan");
            }
            84 => {
                sweep_all(&engine, &mut model, now);
                let expected = model.keys().filter(|(d, _)| *d == db).count() as u64;
                assert_eq!(engine.dbsize(db).expect(&context), expected, "{context}: dbsize");
            }
            85 => {
                if rng.gen_bool(0.3) {
                    engine.flush_db(db).expect(&context);
                    model.retain(|(d, _), _| *d != db);
                }
            }
            86 => {
                if rng.gen_bool(0.1) {
                    engine.flush_all().expect(&context);
                    model.clear();
                }
            }
            87..=89 => engine.checkpoint().expect(&context),
            90 if step % 500 == 0 => {
                *checkpoints.borrow_mut() += engine.stats().total(|s| s.checkpoints);
            }
            90..=92 => {
                *checkpoints.borrow_mut() += engine.stats().total(|s| s.checkpoints);
                engine.close().expect(&context);
                engine = Engine::open(dir, small_options(&fs, &clock, FsyncPolicy::EverySec)).expect(&context);
            }
            _ => {
                // Reopen without a clean close: the WAL must be replayed.
                engine.sync().expect(&context);
                drop(engine);
                engine = Engine::open(dir, small_options(&fs, &clock, FsyncPolicy::EverySec)).expect(&context);
            }
        }
    }
    // Final full comparison after a reopen.
    engine.close().expect("close");
    let engine = Engine::open(dir, small_options(&fs, &clock, FsyncPolicy::EverySec)).expect("reopen");
    let now = clock.now();
    for ((db, key), _) in model.iter() {
        let got = engine.get(*db, key).expect("get").map(|e| (e.kind, e.value.to_vec(), e.expire_at_ms));
        assert_eq!(got, live(&model, *db, key, now), "seed {seed} final {db} {key:?}");
    }
    let stats = engine.stats();
    assert!(stats.slots.iter().all(|s| !s.poisoned));
    // The run must have exercised the layers below the WAL, not just the memtable.
    assert!(*checkpoints.borrow() > 20, "only {} checkpoints", checkpoints.borrow());
}

#[test]
fn engine_matches_model_seed_1() {
    run(1, 12_000);
}

#[test]
fn engine_matches_model_seed_2() {
    run(2, 12_000);
}

#[test]
fn engine_matches_model_seed_3() {
    run(3, 12_000);
}

#[test]
fn engine_matches_model_random_seed() {
    let seed = std::env::var("VELO_MODEL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random::<u64>);
    eprintln!("model seed {seed} (rerun with VELO_MODEL_SEED={seed})");
    run(seed, 12_000);
}
