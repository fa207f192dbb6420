//! Engine benchmark (issue 2's figures): through the engine API on one thread, N keys of 16 bytes with
//! 100-byte values. Measures write throughput (fsync everysec), random-read throughput with a cold value
//! cache (files in the OS page cache), resident memory after loading, disk bytes per key after three full
//! overwrite passes, and reopen time after a clean close and after `kill -9`.
//!
//! ```text
//! cargo bench --bench engine -- [--keys 10000000] [--reads 2000000] [--dir PATH] [--load-read-only]
//! ```
//! Prints one line per figure and a JSON summary on the last line. Each throughput comes with the process's
//! CPU time per operation (user + system, all threads: checkpoint threads included), the figure that other
//! work on the machine distorts least. `--load-read-only` stops after the write and read phases.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use velo::engine::{Engine, EngineOptions, FsyncPolicy, ValueKind};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn key(n: u64) -> [u8; 16] {
    let mut key = *b"key:000000000000";
    let digits = format!("{n:012}");
    key[4..].copy_from_slice(digits.as_bytes());
    key
}

/// A 100-byte value: the key number, the pass, and pseudo-random text (compressible like real data).
fn value(n: u64, pass: u64, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(format!("{n:012}-{pass}-").as_bytes());
    let mut state = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ pass;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789 :,{}\"";
    while out.len() < 100 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.push(ALPHABET[(state % ALPHABET.len() as u64) as usize]);
    }
}

fn options() -> EngineOptions {
    EngineOptions { slot_count: Some(8), fsync: FsyncPolicy::EverySec, ..Default::default() }
}

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU seconds (user + system) of the whole process so far.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes the struct it is given and nothing else.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                total += dir_bytes(&path);
            } else if let Ok(meta) = entry.metadata() {
                total += meta.len();
            }
        }
    }
    total
}

/// Bytes per kind of file (buckets, overflow, chunk, wal, big, other).
fn bytes_by_kind(dir: &Path, totals: &mut std::collections::BTreeMap<String, u64>) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                bytes_by_kind(&path, totals);
            } else if let Ok(meta) = entry.metadata() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let kind = name.split(['-', '.']).next().unwrap_or("other").to_string();
                *totals.entry(kind).or_default() += meta.len();
            }
        }
    }
}

fn load(engine: &Engine, keys: u64, pass: u64) -> f64 {
    let start = Instant::now();
    let mut buffer = Vec::with_capacity(128);
    for n in 0..keys {
        value(n, pass, &mut buffer);
        engine.set(0, &key(n), ValueKind::String, &buffer, None).expect("set");
    }
    keys as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    // Child mode: load some keys with no clean close and wait to be killed.
    if let Some(dir) = arg("--child-load") {
        let keys: u64 = arg("--keys").and_then(|k| k.parse().ok()).unwrap_or(1_000_000);
        let engine = Engine::open(&dir, options()).expect("open");
        load(&engine, keys, 9);
        println!("loaded");
        std::thread::sleep(Duration::from_secs(3600));
        return;
    }
    let keys: u64 = arg("--keys").and_then(|k| k.parse().ok()).unwrap_or(10_000_000);
    let reads: u64 = arg("--reads").and_then(|k| k.parse().ok()).unwrap_or(2_000_000);
    let dir: PathBuf =
        arg("--dir").map(PathBuf::from).unwrap_or_else(|| std::env::temp_dir().join("velo-engine-bench"));
    let _ = std::fs::remove_dir_all(&dir);
    println!("engine benchmark: {keys} keys (16-byte keys, 100-byte values), dir {}", dir.display());

    let engine = Engine::open(&dir, options()).expect("open");
    let cpu = cpu_seconds();
    let write_rate = load(&engine, keys, 0);
    let write_cpu_us = (cpu_seconds() - cpu) * 1e6 / keys as f64;
    println!("write (everysec, 1 thread): {write_rate:.0} ops/s, {write_cpu_us:.2} µs CPU per write");
    let rss_after_load = rss_kib("VmRSS:");
    let hwm_after_load = rss_kib("VmHWM:");
    println!("resident memory after loading: {} MiB (peak {} MiB)", rss_after_load / 1024, hwm_after_load / 1024);
    let (start, cpu) = (Instant::now(), cpu_seconds());
    engine.close().expect("close");
    println!(
        "close after loading (the last checkpoint): {:.2} s, {:.2} µs CPU per key loaded",
        start.elapsed().as_secs_f64(),
        (cpu_seconds() - cpu) * 1e6 / keys as f64
    );

    let start = Instant::now();
    let engine = Engine::open(&dir, options()).expect("reopen");
    let clean_reopen = start.elapsed();
    println!("reopen after clean close: {:.3} s", clean_reopen.as_secs_f64());

    let start = Instant::now();
    let cpu = cpu_seconds();
    let mut state = 0x1234_5678_9abc_def0u64;
    let mut found = 0u64;
    for _ in 0..reads {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        if engine.get(0, &key(state % keys)).expect("get").is_some() {
            found += 1;
        }
    }
    let read_rate = reads as f64 / start.elapsed().as_secs_f64();
    let read_cpu_us = (cpu_seconds() - cpu) * 1e6 / reads as f64;
    assert_eq!(found, reads, "every key must be found");
    println!(
        "random read (cold value cache, files page-cached): {read_rate:.0} ops/s, {read_cpu_us:.2} µs CPU per read"
    );
    // The figures of the load and read phases; the full run adds the overwrite, disk and reopen ones.
    let mut summary = serde_json::json!({
        "keys": keys,
        "write_ops_per_sec": write_rate.round(),
        "write_cpu_us": (write_cpu_us * 100.0).round() / 100.0,
        "random_read_ops_per_sec": read_rate.round(),
        "read_cpu_us": (read_cpu_us * 100.0).round() / 100.0,
    });
    if std::env::args().any(|a| a == "--load-read-only") {
        engine.close().expect("close");
        println!("{summary}");
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }

    for pass in 1..=2 {
        let cpu = cpu_seconds();
        let rate = load(&engine, keys, pass);
        let cpu_us = (cpu_seconds() - cpu) * 1e6 / keys as f64;
        println!("overwrite pass {pass}: {rate:.0} ops/s, {cpu_us:.2} µs CPU per write");
    }
    engine.checkpoint().expect("checkpoint");
    let stats = engine.stats();
    let disk = dir_bytes(&dir);
    let raw = keys * (16 + 100);
    println!(
        "disk after three passes: {} MiB = {:.1} bytes/key = {:.2}x the raw {} MiB (buckets {}, overflow pages {}, chunk files {})",
        disk >> 20,
        disk as f64 / keys as f64,
        disk as f64 / raw as f64,
        raw >> 20,
        stats.total(|s| s.buckets),
        stats.total(|s| s.overflow_pages),
        stats.total(|s| s.chunk_files)
    );
    let mut kinds = std::collections::BTreeMap::new();
    bytes_by_kind(&dir, &mut kinds);
    println!("  by file kind (MiB): {:?}", kinds.iter().map(|(k, v)| (k.clone(), v >> 20)).collect::<Vec<_>>());
    engine.close().expect("close");

    // kill -9 a loader mid-life and time the recovery.
    let crash_dir = dir.join("crash");
    let crash_keys = keys;
    let exe = std::env::current_exe().expect("exe");
    let mut child = Command::new(exe)
        .args(["--child-load", &crash_dir.to_string_lossy(), "--keys", &crash_keys.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn loader");
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("read");
    child.kill().expect("kill -9");
    let _ = child.wait();
    let start = Instant::now();
    let engine = Engine::open(&crash_dir, options()).expect("recover");
    let crash_reopen = start.elapsed();
    let wal_entries = engine.stats().total(|s| s.wal_entries);
    println!(
        "reopen after kill -9 ({crash_keys} keys loaded, {wal_entries} replayed from the WAL): {:.3} s",
        crash_reopen.as_secs_f64()
    );
    drop(engine);

    let full = serde_json::json!({
            "rss_after_load_mib": rss_after_load / 1024,
            "disk_bytes_per_key_after_3_passes": (disk as f64 / keys as f64 * 10.0).round() / 10.0,
            "disk_to_raw_ratio": (disk as f64 / raw as f64 * 100.0).round() / 100.0,
            "reopen_clean_s": clean_reopen.as_secs_f64(),
            "reopen_after_kill9_s": crash_reopen.as_secs_f64(),
    });
    if let (Some(summary), serde_json::Value::Object(full)) = (summary.as_object_mut(), full) {
        summary.extend(full);
    }
    println!("{summary}");
    let _ = std::fs::remove_dir_all(&dir);
}
