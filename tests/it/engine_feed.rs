//! The change feed (what the replication binlog will consume) and concurrent writers under group commit.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use velo::engine::io::CrashFs;
use velo::engine::{Change, ChangeListener, Engine, FsyncPolicy, ValueKind};

use crate::engine_support::{small_options, TestClock};

#[derive(Default)]
struct Recorder {
    changes: Mutex<Vec<(usize, u64, String)>>,
}

impl ChangeListener for Recorder {
    fn on_change(&self, slot: usize, seq: u64, change: &Change<'_>) {
        let text = match change {
            Change::Set { db, key, .. } => format!("set {db} {}", String::from_utf8_lossy(key)),
            Change::Delete { db, key } => format!("del {db} {}", String::from_utf8_lossy(key)),
            Change::Expire { db, key, expire_at_ms } => {
                format!("expire {db} {} {expire_at_ms}", String::from_utf8_lossy(key))
            }
            Change::FlushDb { db } => format!("flushdb {db}"),
            Change::FlushAll => "flushall".to_string(),
        };
        self.changes.lock().expect("lock").push((slot, seq, text));
    }
}

#[test]
fn every_change_is_reported_in_sequence_order() {
    let fs = CrashFs::new();
    let clock = TestClock::new(1_000);
    let recorder = Arc::new(Recorder::default());
    let mut options = small_options(&fs, &clock, FsyncPolicy::No);
    options.change_listener = Some(recorder.clone());
    let engine = Engine::open(Path::new("/data"), options).expect("open");
    engine.set(0, b"a", ValueKind::String, b"1", None).expect("set");
    engine.set_expiry(0, b"a", Some(5_000)).expect("expire");
    engine.delete(0, b"a").expect("del");
    assert!(!engine.delete(0, b"a").expect("del again"), "deleting a missing key changes nothing");
    engine.flush_db(3).expect("flushdb");
    let changes = recorder.changes.lock().expect("lock").clone();
    let for_a: Vec<&str> =
        changes.iter().filter(|(slot, _, _)| *slot == engine.slot_of(b"a")).map(|(_, _, t)| t.as_str()).collect();
    assert_eq!(for_a, ["set 0 a", "expire 0 a 5000", "del 0 a", "flushdb 3"]);
    let mut last: BTreeMap<usize, u64> = BTreeMap::new();
    for (slot, seq, _) in &changes {
        assert!(last.get(slot).is_none_or(|prev| seq > prev), "sequence must increase per slot");
        last.insert(*slot, *seq);
    }
    assert_eq!(changes.iter().filter(|(_, _, t)| t == "flushdb 3").count(), engine.slot_count());
}

#[test]
fn concurrent_writers_under_fsync_always_all_survive_a_crash() {
    let fs = CrashFs::new();
    let clock = TestClock::new(1_000);
    let mut options = small_options(&fs, &clock, FsyncPolicy::Always);
    options.slot_count = Some(1);
    let engine = Arc::new(Engine::open(Path::new("/data"), options.clone()).expect("open"));
    let threads: Vec<_> = (0..4)
        .map(|thread| {
            let engine = engine.clone();
            std::thread::spawn(move || {
                for n in 0..300 {
                    let key = format!("t{thread}:{n}");
                    engine
                        .set(
                            0,
                            key.as_bytes(),
                            ValueKind::String,
                            format!("{n}-{}", "v".repeat(n % 50)).as_bytes(),
                            None,
                        )
                        .expect("set");
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("writer");
    }
    fs.crash(&mut |bound| bound / 2);
    drop(engine);
    let engine = Engine::open(Path::new("/data"), options).expect("recover");
    for thread in 0..4 {
        for n in 0..300 {
            let key = format!("t{thread}:{n}");
            let got = engine.get(0, key.as_bytes()).expect("get").map(|e| e.value.to_vec());
            assert_eq!(got, Some(format!("{n}-{}", "v".repeat(n % 50)).into_bytes()), "{key}");
        }
    }
}
