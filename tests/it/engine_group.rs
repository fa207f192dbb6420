//! Grouped WAL writes (`Engine::group_writes`, docs/recovery.md): records a group holds reach the OS when
//! it closes, or earlier when another thread locks their slot; a process crash (`kill -9`: the OS keeps
//! every write, modelled by forking the crash file system's live image) after the group closed loses
//! nothing; a failed grouped write is reported and poisons the slot.

use std::path::Path;

use velo::engine::io::CrashFs;
use velo::engine::{Engine, FsyncPolicy, ValueKind};

use crate::engine_support::{small_options, TestClock};
use crate::support::noise;

/// Larger than the memtable keeps in memory, so reads inside the group come from the held WAL bytes.
const BIG: usize = 20_000;

fn open(fs: &CrashFs, clock: &TestClock) -> Engine {
    let mut options = small_options(fs, clock, FsyncPolicy::EverySec);
    // No checkpoint during the test: it would write held records out early.
    options.wal_flush_bytes = Some(64 << 20);
    Engine::open(Path::new("/data"), options).expect("open")
}

/// What a `kill -9` now would leave: the live images, reopened.
fn after_process_crash(fs: &CrashFs, clock: &TestClock) -> Engine {
    open(&fs.fork(), clock)
}

fn value(i: usize) -> Vec<u8> {
    if i % 10 == 0 {
        vec![b'a' + (i % 26) as u8; BIG]
    } else {
        format!("value-{i}").into_bytes()
    }
}

fn get(engine: &Engine, key: &[u8]) -> Option<Vec<u8>> {
    engine.get(0, key).expect("get").map(|entry| entry.value.to_vec())
}

#[test]
fn held_records_are_readable_in_the_group_and_in_the_os_once_it_closes() {
    let fs = CrashFs::new();
    let clock = TestClock::new(1_000);
    let engine = open(&fs, &clock);
    let ((), written) = engine.group_writes(|| {
        for i in 0..100 {
            engine.set(0, format!("k{i}").as_bytes(), ValueKind::String, &value(i), None).expect("set");
        }
        // Same thread: served from the memtable and the held bytes.
        for i in 0..100 {
            assert_eq!(get(&engine, format!("k{i}").as_bytes()), Some(value(i)), "k{i} inside the group");
        }
        // Held, not yet in the OS: a crash now loses them (they were never acknowledged).
        let crashed = after_process_crash(&fs, &clock);
        assert_eq!((0..100).filter(|i| get(&crashed, format!("k{i}").as_bytes()).is_some()).count(), 0);
    });
    written.expect("group written");
    let crashed = after_process_crash(&fs, &clock);
    for i in 0..100 {
        assert_eq!(get(&crashed, format!("k{i}").as_bytes()), Some(value(i)), "k{i} after the group closed");
    }
}

/// `write_group_now` puts what the group holds in the OS at once and keeps the group open (a blocked
/// client served inside a pass gets its reply from its own connection before the pass ends).
#[test]
fn write_group_now_puts_held_records_in_the_os_and_keeps_the_group() {
    let fs = CrashFs::new();
    let clock = TestClock::new(1_000);
    let engine = open(&fs, &clock);
    let ((), written) = engine.group_writes(|| {
        engine.set(0, b"first", ValueKind::String, &value(1), None).expect("set");
        assert!(engine.group_held_bytes() > 0);
        engine.write_group_now().expect("written");
        assert_eq!(engine.group_held_bytes(), 0);
        assert_eq!(get(&after_process_crash(&fs, &clock), b"first"), Some(value(1)), "in the OS before the close");
        // Still grouped: the next write is held again.
        engine.set(0, b"second", ValueKind::String, &value(2), None).expect("set");
        assert!(engine.group_held_bytes() > 0);
        assert_eq!(get(&after_process_crash(&fs, &clock), b"second"), None);
    });
    written.expect("group written");
    assert_eq!(get(&after_process_crash(&fs, &clock), b"second"), Some(value(2)));
}

#[test]
fn another_thread_never_sees_a_record_the_os_does_not_have() {
    let fs = CrashFs::new();
    let clock = TestClock::new(1_000);
    let engine = open(&fs, &clock);
    let ((), written) = engine.group_writes(|| {
        engine.set(0, b"seen", ValueKind::String, &value(10), None).expect("set");
        let read = std::thread::scope(|scope| scope.spawn(|| get(&engine, b"seen")).join().expect("reader"));
        assert_eq!(read, Some(value(10)));
        // The reader's lock wrote the record out before it read it.
        assert_eq!(get(&after_process_crash(&fs, &clock), b"seen"), Some(value(10)));
        // The group goes on holding later writes.
        engine.set(0, b"seen", ValueKind::String, b"later", None).expect("set");
        assert_eq!(get(&engine, b"seen").as_deref(), Some(&b"later"[..]));
    });
    written.expect("group written");
    assert_eq!(get(&after_process_crash(&fs, &clock), b"seen").as_deref(), Some(&b"later"[..]));
}

/// Two keys in different slots (the test engine has two).
fn keys_in_two_slots(engine: &Engine) -> (Vec<u8>, Vec<u8>) {
    let first = b"a".to_vec();
    let other = (0..)
        .map(|i| format!("other-{i}").into_bytes())
        .find(|key| engine.slot_of(key) != engine.slot_of(&first))
        .expect("a key of the other slot");
    (first, other)
}

#[test]
fn transactions_and_nested_groups_write_in_order() {
    let fs = CrashFs::new();
    let clock = TestClock::new(1_000);
    let engine = open(&fs, &clock);
    let (a, other) = keys_in_two_slots(&engine);
    let ((), written) = engine.group_writes(|| {
        engine.set(0, &a, ValueKind::String, b"1", None).expect("set");
        let ((), inner) = engine.group_writes(|| engine.set(0, &a, ValueKind::String, b"2", None).expect("set"));
        inner.expect("a nested group joins the outer one");
        // A transaction over two slots commits in the transaction log: what the group holds in its slots
        // is written before that commit, so the commit is never in the OS without its records.
        let tx = engine.transaction();
        engine.set(0, &a, ValueKind::String, b"3", None).expect("set");
        engine.set(0, &other, ValueKind::String, b"3", None).expect("set");
        // Until then the group holds all of it (the writes before the transaction too).
        assert_eq!(get(&after_process_crash(&fs, &clock), &a), None, "held before the commit");
        tx.commit().expect("commit");
        let crashed = after_process_crash(&fs, &clock);
        assert_eq!(get(&crashed, &a).as_deref(), Some(&b"3"[..]));
        assert_eq!(get(&crashed, &other).as_deref(), Some(&b"3"[..]));
        engine.set(0, &a, ValueKind::String, b"4", None).expect("set");
    });
    written.expect("group written");
    assert_eq!(get(&after_process_crash(&fs, &clock), &a).as_deref(), Some(&b"4"[..]));
}

#[test]
fn a_single_slot_transaction_is_held_with_its_commit_until_the_group_closes() {
    let fs = CrashFs::new();
    let clock = TestClock::new(1_000);
    let engine = open(&fs, &clock);
    engine.set(0, b"a", ValueKind::String, b"before", None).expect("set");
    let ((), written) = engine.group_writes(|| {
        // As a script's writes: two records and a Commit record in one slot.
        let tx = engine.transaction();
        engine.set(0, b"a", ValueKind::String, &value(10), None).expect("set");
        engine.set(0, b"a", ValueKind::String, b"after", None).expect("set");
        tx.commit().expect("commit");
        assert_eq!(get(&engine, b"a").as_deref(), Some(&b"after"[..]));
        // Not acknowledged yet, so a crash may lose it, and it does: all of it.
        assert_eq!(get(&after_process_crash(&fs, &clock), b"a").as_deref(), Some(&b"before"[..]));
    });
    written.expect("group written");
    assert_eq!(get(&after_process_crash(&fs, &clock), b"a").as_deref(), Some(&b"after"[..]));
    // Another thread's lock writes a held transaction out first, commit or not (recovery drops an
    // uncommitted one).
    let ((), written) = engine.group_writes(|| {
        let tx = engine.transaction();
        engine.set(0, b"a", ValueKind::String, b"uncommitted", None).expect("set");
        let read = std::thread::scope(|scope| scope.spawn(|| get(&engine, b"a")).join().expect("reader"));
        assert_eq!(read.as_deref(), Some(&b"uncommitted"[..]));
        assert_eq!(get(&after_process_crash(&fs, &clock), b"a").as_deref(), Some(&b"after"[..]));
        tx.commit().expect("commit");
    });
    written.expect("group written");
    assert_eq!(get(&after_process_crash(&fs, &clock), b"a").as_deref(), Some(&b"uncommitted"[..]));
}

#[test]
fn a_failed_grouped_write_is_reported_and_poisons_the_slot() {
    let fs = CrashFs::new();
    let clock = TestClock::new(1_000);
    let engine = open(&fs, &clock);
    engine.set(0, b"before", ValueKind::String, b"kept", None).expect("set");
    let ((), written) = engine.group_writes(|| {
        engine.set(0, b"lost", ValueKind::String, b"never acknowledged", None).expect("held");
        fs.fail_writes_after(1, std::io::ErrorKind::StorageFull);
    });
    assert!(written.is_err(), "the failed write must be reported");
    fs.heal();
    assert!(engine.set(0, b"lost", ValueKind::String, b"again", None).is_err(), "the slot must refuse writes");
    let crashed = after_process_crash(&fs, &clock);
    assert_eq!(get(&crashed, b"before").as_deref(), Some(&b"kept"[..]));
    assert_eq!(get(&crashed, b"lost"), None);
}

/// A group holds at most about 4 MiB (`Engine::write_group_if_over_cap`, which the server calls between
/// commands): a script or EXEC of many large writes has its records written out as it goes instead of
/// keeping them all in memory, and a `kill -9` at any point still leaves all of a transaction or none.
#[test]
fn a_large_group_is_written_out_past_its_cap_and_a_transaction_stays_all_or_nothing() {
    const CAP: usize = 4 << 20;
    let fs = CrashFs::new();
    let clock = TestClock::new(1_000);
    let engine = open(&fs, &clock);
    let (a, _) = keys_in_two_slots(&engine);
    // Incompressible (values are compressed before they reach the WAL).
    let big = noise(7, 64 << 10);
    // 200 writes of 64 KiB: about 12.8 MiB, three times the cap. Without a transaction (a pipeline of
    // SETs), then in a transaction over both slots (a script's), then in one slot (its `Commit` record in
    // the slot's own WAL).
    for (round, transaction, one_slot) in [(0, false, false), (1, true, false), (2, true, true)] {
        let keys: Vec<Vec<u8>> = (0..)
            .map(|i| format!("big-{round}-{i}").into_bytes())
            .filter(|key| !one_slot || engine.slot_of(key) == engine.slot_of(&a))
            .take(200)
            .collect();
        let ((), written) = engine.group_writes(|| {
            let tx = transaction.then(|| engine.transaction());
            let mut peak = 0;
            for (i, key) in keys.iter().enumerate() {
                engine.set(0, key, ValueKind::String, &big, None).expect("set");
                peak = peak.max(engine.group_held_bytes());
                engine.write_group_if_over_cap().expect("held records written");
                assert!(engine.group_held_bytes() <= CAP, "round {round}: {} bytes held", engine.group_held_bytes());
                if i == 150 {
                    // A crash now: what was written out is in the OS, but of a transaction without its
                    // commit recovery keeps nothing.
                    let crashed = after_process_crash(&fs, &clock);
                    let found = keys.iter().filter(|key| get(&crashed, key).is_some()).count();
                    if transaction {
                        assert_eq!(found, 0, "round {round}: part of an uncommitted transaction survived");
                    } else {
                        assert!(found >= 100, "round {round}: only {found} of 151 writes were written out");
                    }
                }
            }
            // Never more than the cap and one record's worth held.
            assert!(peak <= CAP + big.len() + 1024, "round {round}: {peak} bytes held at the peak");
            // Records written out early are read back from the file.
            assert_eq!(get(&engine, &keys[0]).as_deref(), Some(&big[..]));
            if let Some(tx) = tx {
                tx.commit().expect("commit");
            }
        });
        written.expect("group written");
        let crashed = after_process_crash(&fs, &clock);
        let found = keys.iter().filter(|key| get(&crashed, key).as_deref() == Some(&big[..])).count();
        assert_eq!(found, keys.len(), "round {round}: all of it once the group closed");
    }
}

/// A snapshot read by another thread (BGSAVE, SYNC, `rdb-dump` of a live directory) never hands out a value
/// whose record the OS does not have yet: its slot locks write out the records a write group holds, as every
/// other reader's do.
#[test]
fn a_snapshot_never_hands_out_a_record_the_os_does_not_have() {
    let fs = CrashFs::new();
    let clock = TestClock::new(1_000);
    let engine = open(&fs, &clock);
    let ((), written) = engine.group_writes(|| {
        engine.set(0, b"snap", ValueKind::String, &value(3), None).expect("set");
        assert_eq!(get(&after_process_crash(&fs, &clock), b"snap"), None, "held, not in the OS yet");
        let seen = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let snapshot = engine.snapshot(&[0], 1 << 20).expect("snapshot");
                    let mut seen = Vec::new();
                    for slot in 0..snapshot.slot_count() {
                        let mut position = 0;
                        loop {
                            let next = snapshot
                                .read_values(slot, 0, position, 64, &mut |_, key, entry| {
                                    seen.push((key.to_vec(), entry.value.to_vec()))
                                })
                                .expect("read");
                            match next {
                                Some(next) => position = next,
                                None => break,
                            }
                        }
                    }
                    seen
                })
                .join()
                .expect("snapshot reader")
        });
        assert_eq!(seen, vec![(b"snap".to_vec(), value(3))]);
        assert_eq!(get(&after_process_crash(&fs, &clock), b"snap"), Some(value(3)), "written out before it was read");
    });
    written.expect("group written");
}
