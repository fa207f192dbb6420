//! Tests of a slot while a checkpoint is in flight: the test holds the slot lock, so the checkpoint thread
//! prepares the frozen memtable but cannot install it, and every read, write, scan and count meets both
//! memtables.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::engine::{Engine, EngineOptions, FsyncPolicy, ValueKind};

use crate::engine::slot::Slot;

const NOW: u64 = 1_800_000_000_000;

fn engine(dir: &std::path::Path, clock: Arc<AtomicU64>, threads: usize) -> Engine {
    let options = EngineOptions {
        slot_count: Some(1),
        fsync: FsyncPolicy::Always,
        wal_flush_bytes: Some(64 << 20),
        segment_size: 1024,
        inline_max: 24,
        background_sync: false,
        checkpoint_threads: threads,
        clock: Arc::new(move || clock.load(Ordering::Relaxed)),
        ..Default::default()
    };
    Engine::open(dir, options).unwrap()
}

/// A value for key `i`: some larger than what the memtable keeps in memory (read back from the WAL).
fn value(i: u64, round: u64) -> Vec<u8> {
    if i % 5 == 0 {
        format!("big-{i}-{round}-").repeat(80).into_bytes()
    } else {
        format!("v-{i}-{round}").into_bytes()
    }
}

/// Starts a background checkpoint of everything written so far, leaving it to the thread.
fn start_checkpoint(slot: &mut Slot) {
    let limit = slot.memtable_limit;
    slot.memtable_limit = 1;
    slot.maybe_checkpoint().unwrap();
    slot.memtable_limit = limit;
    assert!(slot.in_flight.is_some() && slot.memtable.has_frozen(), "no checkpoint in flight");
}

fn get(slot: &mut Slot, db: u16, key: &str) -> Option<(Vec<u8>, Option<u64>)> {
    slot.get(db, key.as_bytes()).unwrap().map(|entry| (entry.value.to_vec(), entry.expire_at_ms))
}

fn scan_all(slot: &mut Slot, db: u16) -> Vec<Vec<u8>> {
    let (mut position, mut keys) = (0, Vec::new());
    loop {
        let mut out = Vec::new();
        let next = slot.scan(Some(db), position, 7, &mut out).unwrap();
        keys.extend(out.into_iter().map(|(_, key)| key));
        match next {
            Some(next) => position = next,
            None => return keys,
        }
    }
}

/// The model's keys and values read back through every path: point reads, a scan (each key once), the
/// key count.
fn check(slot: &mut Slot, model: &BTreeMap<(u16, String), (Vec<u8>, Option<u64>)>, dbs: &[u16], when: &str) {
    check_reads(slot, model, dbs, when);
    for db in dbs {
        let expected = model.keys().filter(|(key_db, _)| key_db == db).count();
        assert_eq!(slot.key_count(*db).unwrap(), expected as u64, "{when}: count of db {db}");
    }
}

/// [`check`] but for the key count (expired keys count until they are deleted).
fn check_reads(slot: &mut Slot, model: &BTreeMap<(u16, String), (Vec<u8>, Option<u64>)>, dbs: &[u16], when: &str) {
    for ((db, key), expected) in model {
        assert_eq!(get(slot, *db, key).as_ref(), Some(expected), "{when}: {db}/{key}");
    }
    for db in dbs {
        let scanned = scan_all(slot, *db);
        let unique: BTreeSet<Vec<u8>> = scanned.iter().cloned().collect();
        assert_eq!(unique.len(), scanned.len(), "{when}: a key scanned twice in db {db}");
        let expected: BTreeSet<Vec<u8>> =
            model.keys().filter(|(key_db, _)| key_db == db).map(|(_, key)| key.clone().into_bytes()).collect();
        assert_eq!(unique, expected, "{when}: scan of db {db}");
    }
}

/// Writes, deletes, expiry changes, expiries and a FLUSHDB against a frozen memtable: the active table
/// wins, a tombstone hides the frozen value, a flush hides the frozen entries of its database, an expiry
/// change keeps a large value whose WAL file the checkpoint empties; all of it holds after the install
/// and after a reopen.
#[test]
fn every_path_sees_active_over_frozen() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(AtomicU64::new(NOW));
    let engine = engine(dir.path(), clock.clone(), 1);
    let mut model: BTreeMap<(u16, String), (Vec<u8>, Option<u64>)> = BTreeMap::new();
    {
        let mut slot = engine.lock_slot(0);
        // Some keys checkpointed, so that the frozen table overlays pages too.
        for i in 0..40u64 {
            let key = format!("k{i}");
            slot.set(0, key.as_bytes(), ValueKind::String, &value(i, 0), None).unwrap();
            model.insert((0, key), (value(i, 0), None));
        }
        slot.checkpoint().unwrap();
        for i in 20..80u64 {
            let key = format!("k{i}");
            let expire = (i % 4 == 0).then_some(NOW + 1_000 + i);
            slot.set(0, key.as_bytes(), ValueKind::String, &value(i, 1), expire).unwrap();
            model.insert((0, key), (value(i, 1), expire));
            let other = format!("o{i}");
            slot.set(1, other.as_bytes(), ValueKind::String, &value(i, 1), None).unwrap();
            model.insert((1, other), (value(i, 1), None));
        }
        start_checkpoint(&mut slot);
        check(&mut slot, &model, &[0, 1], "frozen, nothing written since");

        // Overwrites, deletes and expiry changes of frozen (and of checkpointed) keys.
        for i in (0..80u64).step_by(3) {
            let key = format!("k{i}");
            slot.set(0, key.as_bytes(), ValueKind::String, &value(i, 2), None).unwrap();
            model.insert((0, key), (value(i, 2), None));
        }
        for i in (1..80u64).step_by(7) {
            let key = format!("k{i}");
            assert_eq!(slot.delete(0, key.as_bytes()).unwrap(), model.remove(&(0, key.clone())).is_some(), "DEL {key}");
            assert_eq!(get(&mut slot, 0, &key), None);
        }
        for i in (20..80u64).step_by(5) {
            // Big frozen values among them: their records are in the WAL file the tail empties.
            let key = format!("k{i}");
            let expire = NOW + 50_000 + i;
            let live = model.contains_key(&(0, key.clone()));
            assert_eq!(slot.set_expiry(0, key.as_bytes(), Some(expire)).unwrap(), live, "EXPIRE {key}");
            if let Some(entry) = model.get_mut(&(0, key)) {
                entry.1 = Some(expire);
            }
        }
        for i in 80..90u64 {
            let key = format!("k{i}");
            slot.set(0, key.as_bytes(), ValueKind::String, &value(i, 2), None).unwrap();
            model.insert((0, key), (value(i, 2), None));
        }
        check(&mut slot, &model, &[0, 1], "frozen, after writes");

        // Frozen keys expire: hidden from reads, and deleted by the active cycle.
        clock.store(NOW + 1_100, Ordering::Relaxed);
        model.retain(|_, (_, expire)| expire.is_none_or(|at| at > NOW + 1_100));
        check_reads(&mut slot, &model, &[0, 1], "frozen, some expired");
        let expired = slot.active_expire(1000).unwrap();
        assert!(expired > 0, "nothing expired");
        check(&mut slot, &model, &[0, 1], "frozen, expired deleted");

        // A FLUSHDB hides the frozen entries of its database (and the pages the install writes).
        slot.flush_db(1).unwrap();
        model.retain(|(db, _), _| *db != 1);
        slot.set(1, b"after-flush", ValueKind::String, b"x", None).unwrap();
        model.insert((1, "after-flush".into()), (b"x".to_vec(), None));
        check(&mut slot, &model, &[0, 1], "frozen, after FLUSHDB");
        assert!(slot.memtable.has_frozen(), "the checkpoint installed under the test's lock");

        // The install (the thread's prepare is awaited) and its tail.
        slot.finish_in_flight().unwrap();
        assert!(!slot.memtable.has_frozen());
        check(&mut slot, &model, &[0, 1], "installed");
        slot.checkpoint().unwrap();
        check(&mut slot, &model, &[0, 1], "checkpointed again");
    }
    engine.close().unwrap();
    let engine = self::engine(dir.path(), clock, 1);
    let mut slot = engine.lock_slot(0);
    check(&mut slot, &model, &[0, 1], "reopened");
}

/// FLUSHALL while a checkpoint is in flight (it finishes the checkpoint, then empties the slot): nothing of
/// the frozen table survives.
#[test]
fn flushall_hides_the_frozen_table() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(AtomicU64::new(NOW));
    let engine = engine(dir.path(), clock.clone(), 2);
    let mut slot = engine.lock_slot(0);
    for i in 0..50u64 {
        slot.set(0, format!("k{i}").as_bytes(), ValueKind::String, &value(i, 0), None).unwrap();
    }
    start_checkpoint(&mut slot);
    slot.set(0, b"new", ValueKind::String, b"1", None).unwrap();
    slot.flush_all().unwrap();
    let model = BTreeMap::new();
    check(&mut slot, &model, &[0], "after FLUSHALL");
    slot.set(0, b"k3", ValueKind::String, b"again", None).unwrap();
    assert_eq!(get(&mut slot, 0, "k3"), Some((b"again".to_vec(), None)));
    assert_eq!(slot.key_count(0).unwrap(), 1);
}

/// The active-expire sweep stops reading bucket pages once a whole pass found nothing it acts on, and
/// starts again when a checkpoint brings a key with an expiry (which it then deletes) or a FLUSHDB marker
/// (whose dead cells it then notes for cleanup). With data larger than RAM the sweep of a slot without
/// TTLs read its bucket files over and over, through the page cache.
#[test]
fn the_expire_sweep_rests_while_no_cell_can_expire() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(AtomicU64::new(NOW));
    let engine = engine(dir.path(), clock.clone(), 0);
    let mut slot = engine.lock_slot(0);
    for i in 0..3000u64 {
        slot.set(0, format!("key-{i}").as_bytes(), ValueKind::String, &value(i, 0), None).unwrap();
    }
    slot.checkpoint().unwrap();
    let buckets = slot.meta.bucket_count();
    assert!(buckets > 16, "the test wants a pass to take more than one call ({buckets} buckets)");
    let page_reads = |slot: &Slot| {
        let stats = slot.stats();
        stats.page_cache_hits + stats.page_cache_misses
    };
    // Enough calls for two whole passes (16 buckets a call).
    let two_passes = (2 * buckets / 16 + 4) as usize;
    let before = page_reads(&slot);
    for _ in 0..two_passes {
        assert_eq!(slot.active_expire(20).unwrap(), 0);
    }
    assert!(page_reads(&slot) > before + buckets, "the sweep read every bucket");
    assert!(!slot.sweep_gate.is_open(), "a whole pass met no expiring cell");
    let before = page_reads(&slot);
    for _ in 0..100 {
        assert_eq!(slot.active_expire(20).unwrap(), 0);
    }
    assert_eq!(page_reads(&slot), before, "a resting sweep reads no page");

    // A key with an expiry reaches the buckets: the sweep wakes and deletes it once it has expired.
    slot.set(0, b"short-lived", ValueKind::String, b"x", Some(NOW + 1_000)).unwrap();
    slot.checkpoint().unwrap();
    assert!(slot.sweep_gate.is_open());
    clock.store(NOW + 2_000, Ordering::Relaxed);
    let mut expired = 0;
    for _ in 0..two_passes {
        expired += slot.active_expire(20).unwrap();
    }
    assert_eq!(expired, 1);
    assert_eq!(get(&mut slot, 0, "short-lived"), None);
    slot.checkpoint().unwrap();
    for _ in 0..(3 * buckets / 16 + 4) as usize {
        slot.active_expire(20).unwrap();
    }
    assert!(!slot.sweep_gate.is_open(), "the deleted key was the last one with an expiry");

    // FLUSHDB: the sweep wakes and finds the flushed database's dead cells.
    slot.flush_db(0).unwrap();
    slot.checkpoint().unwrap();
    assert!(slot.sweep_gate.is_open());
    assert!(slot.cleanup_buckets.is_empty());
    for _ in 0..two_passes {
        slot.active_expire(20).unwrap();
    }
    assert!(!slot.cleanup_buckets.is_empty(), "the sweep noted the dead cells");
    assert_eq!(scan_all(&mut slot, 0), Vec::<Vec<u8>>::new());
    drop(slot);
    engine.close().unwrap();
}

/// `Engine::checkpoint_idle` checkpoints a slot that took no write since its last call, and only once its
/// memtable holds at least `IDLE_CHECKPOINT_BYTES`: a small memtable, or one still being written, stays.
#[test]
fn idle_slots_are_checkpointed() {
    use crate::engine::checkpoint::IDLE_CHECKPOINT_BYTES;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(AtomicU64::new(NOW));
    let engine = engine(dir.path(), clock, 1);
    // A thousand fsyncs would only slow the test down.
    engine.set_fsync_policy(FsyncPolicy::No).unwrap();
    let checkpoints = |engine: &Engine| engine.lock_slot(0).stats.checkpoints;
    let memtable_bytes = |engine: &Engine| engine.lock_slot(0).memtable_bytes;
    let mut seen = Vec::new();

    engine.set(0, b"small", ValueKind::String, b"value", None).unwrap();
    assert_eq!(engine.checkpoint_idle(&mut seen).unwrap(), 0, "the first call only notes the sequences");
    assert_eq!(engine.checkpoint_idle(&mut seen).unwrap(), 0, "a small memtable is not worth a checkpoint");

    let mut i = 0u64;
    while memtable_bytes(&engine) < IDLE_CHECKPOINT_BYTES {
        engine.set(0, format!("key:{i}").as_bytes(), ValueKind::String, &value(i, 0), None).unwrap();
        i += 1;
    }
    assert_eq!(engine.checkpoint_idle(&mut seen).unwrap(), 0, "the slot took writes since the last call");
    assert_eq!(engine.checkpoint_idle(&mut seen).unwrap(), 1, "an idle slot with a large memtable");
    // The checkpoint thread prepares it; finishing it here waits for it.
    engine.lock_slot(0).finish_in_flight().unwrap();
    assert_eq!(checkpoints(&engine), 1);
    assert!(memtable_bytes(&engine) < IDLE_CHECKPOINT_BYTES);
    assert_eq!(engine.checkpoint_idle(&mut seen).unwrap(), 0, "nothing left to checkpoint");
    for j in (0..i).step_by(97) {
        let entry = engine.get(0, format!("key:{j}").as_bytes()).unwrap().expect("key after the checkpoint");
        assert_eq!(entry.value.to_vec(), value(j, 0));
    }
    engine.close().unwrap();
}
