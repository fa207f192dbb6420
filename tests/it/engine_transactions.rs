//! Transactions across slots survive crashes whole or not at all (issue 15). A file system that keeps,
//! drops or tears every unsynced write at a random point (`CrashFs`) crashes the engine between
//! transactions, inside them (records written, no commit yet), and after checkpoints; recovery must show
//! every transaction's keys all present or all absent, and under `fsync always` exactly the committed ones.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use velo::engine::io::CrashFs;
use velo::engine::{BatchOp, Engine, EngineOptions, FsyncPolicy, ValueKind};

use crate::engine_support::{random_key, random_value, small_options, TestClock};

fn options(fs: &CrashFs, clock: &TestClock, fsync: FsyncPolicy) -> EngineOptions {
    let mut options = small_options(fs, clock, fsync);
    options.slot_count = Some(4);
    options
}

fn reopen(fs: &CrashFs, clock: &TestClock, fsync: FsyncPolicy, context: &str) -> Engine {
    match Engine::open(Path::new("/data"), options(fs, clock, fsync)) {
        Ok(engine) => engine,
        Err(err) => panic!("{context}: recovery failed: {err}"),
    }
}

/// The keys of transaction `id`: fresh ones, spread over the slots by their hash tags.
fn tx_keys(id: u64, count: usize) -> Vec<Vec<u8>> {
    (0..count).map(|i| format!("{{t{}}}tx{id}:{i}", (id * 7 + i as u64) % 13).into_bytes()).collect()
}

fn tx_value(id: u64, i: usize) -> Vec<u8> {
    format!("value of {id}/{i} ").repeat(1 + (i * 37 + id as usize) % 90).into_bytes()
}

/// Writes transaction `id` (some keys by single sets, some in a batch); the transaction stays open.
fn write_transaction(engine: &Engine, rng: &mut SmallRng, id: u64, count: usize) {
    let keys = tx_keys(id, count);
    let split = rng.gen_range(0..=count);
    for (i, key) in keys.iter().enumerate().take(split) {
        engine.set(0, key, ValueKind::String, &tx_value(id, i), None).expect("set in transaction");
    }
    let batch: Vec<BatchOp> = keys
        .iter()
        .enumerate()
        .skip(split)
        .map(|(i, key)| BatchOp::Set {
            db: 0,
            key: key.clone(),
            kind: ValueKind::String,
            value: tx_value(id, i),
            expire_at_ms: None,
        })
        .collect();
    if !batch.is_empty() {
        engine.write_batch(batch).expect("batch in transaction");
    }
}

/// How many of transaction `id`'s keys the engine holds, checking each value.
fn present(engine: &Engine, id: u64, count: usize, context: &str) -> usize {
    tx_keys(id, count)
        .iter()
        .enumerate()
        .filter(|(i, key)| match engine.get(0, key).expect("read after recovery") {
            Some(entry) => {
                assert_eq!(entry.value.to_vec(), tx_value(id, *i), "{context}: tx {id} key {i} has a wrong value");
                true
            }
            None => false,
        })
        .count()
}

fn run(fsync: FsyncPolicy, base: u64) {
    let seeds = std::env::var("VELO_CRASH_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(16u64);
    for seed in base..base + seeds {
        let mut rng = SmallRng::seed_from_u64(seed);
        let fs = CrashFs::new();
        let clock = TestClock::new(1_000);
        let mut engine = reopen(&fs, &clock, fsync, "create");
        // Committed transactions (id → key count), and those known durable (committed before a sync).
        let mut committed: BTreeMap<u64, usize> = BTreeMap::new();
        let mut durable: BTreeSet<u64> = BTreeSet::new();
        let mut next_id = 0u64;
        for round in 0..5 {
            let context = format!("{fsync} seed {seed} round {round}");
            for _ in 0..rng.gen_range(1..40) {
                match rng.gen_range(0..10) {
                    0..=5 => {
                        next_id += 1;
                        let count = rng.gen_range(1..12);
                        let transaction = engine.transaction();
                        write_transaction(&engine, &mut rng, next_id, count);
                        transaction.commit().expect("commit");
                        committed.insert(next_id, count);
                    }
                    6..=8 => {
                        // Unrelated single-key traffic, so that checkpoints and overwrites run in between.
                        let key = random_key(&mut rng, 60);
                        engine.set(1, &key, ValueKind::String, &random_value(&mut rng), None).expect("set");
                    }
                    _ => {
                        if rng.gen_bool(0.5) {
                            engine.checkpoint().expect("checkpoint");
                        } else {
                            engine.sync().expect("sync");
                        }
                        durable.extend(committed.keys());
                    }
                }
            }
            // Half the time the crash lands inside a transaction: its records written, no commit.
            let in_flight = rng.gen_bool(0.5).then(|| {
                next_id += 1;
                let count = rng.gen_range(2..12);
                let transaction = engine.transaction();
                write_transaction(&engine, &mut rng, next_id, count);
                (next_id, count, transaction)
            });
            fs.crash(&mut |bound| rng.gen_range(0..bound.max(1)));
            // The open transaction's commit now goes to a file system that has "lost power": it fails.
            let in_flight = in_flight.map(|(id, count, transaction)| {
                let _ = transaction.commit();
                (id, count)
            });
            drop(engine);
            engine = reopen(&fs, &clock, fsync, &context);
            if let Some((id, count)) = in_flight {
                assert_eq!(present(&engine, id, count, &context), 0, "{context}: uncommitted tx {id} survived");
            }
            let mut lost = Vec::new();
            for (&id, &count) in &committed {
                let found = present(&engine, id, count, &context);
                assert!(found == 0 || found == count, "{context}: tx {id} recovered {found} of its {count} keys");
                let must_survive = fsync == FsyncPolicy::Always || durable.contains(&id);
                assert!(found == count || !must_survive, "{context}: acknowledged durable tx {id} was lost");
                if found == 0 {
                    lost.push(id);
                }
            }
            for id in lost {
                committed.remove(&id);
            }
            durable = committed.keys().copied().collect();
        }
    }
}

#[test]
fn fsync_always_keeps_exactly_the_committed_transactions() {
    run(FsyncPolicy::Always, 0);
}

#[test]
fn everysec_keeps_each_transaction_whole_or_not_at_all() {
    run(FsyncPolicy::EverySec, 5_000_000);
}

/// A transaction that wrote one slot commits in that slot's WAL; one that wrote several, in the
/// transaction log. Both replay after a clean reopen, and the log is rewritten small at open.
#[test]
fn committed_transactions_replay_after_reopen() {
    let fs = CrashFs::new();
    let clock = TestClock::new(1_000);
    let mut opts = options(&fs, &clock, FsyncPolicy::Always);
    opts.wal_flush_bytes = Some(64 << 20);
    let engine = Engine::open(Path::new("/data"), opts.clone()).expect("open");
    let one_slot = engine.transaction();
    engine.set(0, b"{a}x", ValueKind::String, b"1", None).expect("set");
    engine.set(0, b"{a}y", ValueKind::String, b"2", None).expect("set");
    one_slot.commit().expect("commit");
    let several = engine.transaction();
    let nested = engine.transaction();
    for n in 0..50 {
        engine.set(0, format!("k{n}").as_bytes(), ValueKind::String, b"v", None).expect("set");
    }
    nested.commit().expect("inner commit joins the outer transaction");
    several.commit().expect("commit");
    assert!(fs.read_file(Path::new("/data/txlog")).is_some_and(|log| log.len() > 16), "a logged commit");
    // Without a clean close: the WAL (not the layers) must bring everything back.
    fs.crash(&mut |_| 0);
    drop(engine);
    let engine = Engine::open(Path::new("/data"), opts).expect("reopen");
    assert_eq!(engine.get(0, b"{a}y").expect("get").map(|e| e.value.to_vec()), Some(b"2".to_vec()));
    for n in 0..50 {
        assert!(engine.exists(0, format!("k{n}").as_bytes()).expect("exists"), "k{n}");
    }
}
