//! Heap accounting of unflushed keys (issue 14): how many bytes of live heap an engine holds per key
//! while every key sits in the memtable, measured with glibc's `mallinfo2` (the library's tests run on the
//! system allocator). Run alone, as it reads a process-wide figure:
//! `cargo test --lib memory_probe -- --ignored --nocapture --test-threads=1`.

use super::envelope::ValueKind;
use super::{Engine, EngineOptions};

/// Live heap bytes (small chunks and mmapped ones).
fn heap_bytes() -> usize {
    // SAFETY: mallinfo2 only reads the allocator's counters.
    let info = unsafe { libc::mallinfo2() };
    info.uordblks + info.hblkhd
}

#[test]
#[ignore = "a measurement: run alone with --ignored --nocapture --test-threads=1"]
fn heap_bytes_per_unflushed_key() {
    for (keys, value_len) in [(100_000u64, 100usize), (100_000, 16)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine =
            Engine::open(dir.path(), EngineOptions { background_sync: false, ..Default::default() }).expect("open");
        let value = vec![b'x'; value_len];
        let before = heap_bytes();
        for i in 0..keys {
            let key = format!("key:{i:012}");
            engine.set(0, key.as_bytes(), ValueKind::String, &value, None).expect("set");
        }
        let after = heap_bytes();
        println!(
            "{keys} keys of 16 bytes, values of {value_len} bytes: {:.1} heap bytes per key",
            (after - before) as f64 / keys as f64
        );
        drop(engine);
    }
}
