//! Grouped WAL writes (`Engine::group_writes`, docs/recovery.md): records a group holds reach the OS when
//! it closes, or earlier when another thread locks their slot; a process crash (`kill -9`: the OS keeps
//! every write, modelled by forking the crash file system's live image) after the group closed loses
//! nothing; a failed grouped write is reported and poisons the slot.

use std::path::Path;

use velo::engine::io::CrashFs;
use velo::engine::{Engine, FsyncPolicy, ValueKind};

use crate::engine_support::{small_options, TestClock};

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

#[test]
fn transactions_and_nested_groups_write_in_order() {
    let fs = CrashFs::new();
    let clock = TestClock::new(1_000);
    let engine = open(&fs, &clock);
    let ((), written) = engine.group_writes(|| {
        engine.set(0, b"a", ValueKind::String, b"1", None).expect("set");
        let ((), inner) = engine.group_writes(|| engine.set(0, b"a", ValueKind::String, b"2", None).expect("set"));
        inner.expect("a nested group joins the outer one");
        // A transaction's records go out at once, after what the group held before them.
        let tx = engine.transaction();
        engine.set(0, b"a", ValueKind::String, b"3", None).expect("set");
        engine.set(0, b"zz-other-slot-key", ValueKind::String, b"3", None).expect("set");
        tx.commit().expect("commit");
        assert_eq!(get(&after_process_crash(&fs, &clock), b"a").as_deref(), Some(&b"3"[..]));
        engine.set(0, b"a", ValueKind::String, b"4", None).expect("set");
    });
    written.expect("group written");
    assert_eq!(get(&after_process_crash(&fs, &clock), b"a").as_deref(), Some(&b"4"[..]));
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
