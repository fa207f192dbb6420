//! Checkpoints off the writing thread (docs/recovery.md §"Checkpoints"): with a memtable budget small
//! enough that checkpoints run all the time, reads see the newest values while checkpoints are prepared
//! and installed, FLUSHALL and FLUSHDB while one is in flight leave nothing of the flushed data, and
//! `kill -9` under concurrent pipelined SETs with `fsync always` loses no acknowledged write.

use std::collections::HashMap;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use velo::engine::{Engine, EngineOptions, FsyncPolicy, ValueKind};

use crate::support::resp::command;
use crate::support::TestServer;

fn options(flush_bytes: usize) -> EngineOptions {
    EngineOptions {
        slot_count: Some(2),
        fsync: FsyncPolicy::EverySec,
        wal_flush_bytes: Some(flush_bytes),
        segment_size: 1024,
        inline_max: 24,
        background_sync: false,
        ..Default::default()
    }
}

/// A value for write `i`: most small, some past what the memtable keeps (read back from the WAL), some
/// past the inline limit (segments).
fn value_of(i: u64) -> Vec<u8> {
    match i % 7 {
        0 => format!("large-{i}-").repeat(120).into_bytes(),
        1 | 2 => format!("medium-{i}-").repeat(8).into_bytes(),
        _ => format!("v{i}").into_bytes(),
    }
}

#[test]
fn reads_during_checkpoints_see_the_newest_values() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), options(16 << 10)).unwrap();
    let mut rng = SmallRng::seed_from_u64(14);
    let mut model: HashMap<Vec<u8>, (Vec<u8>, Option<u64>)> = HashMap::new();
    let far = 4_000_000_000_000u64;
    for i in 0..30_000u64 {
        let key = format!("key:{}", rng.gen_range(0..600)).into_bytes();
        match rng.gen_range(0..20) {
            0 => {
                let existed = engine.delete(0, &key).unwrap();
                assert_eq!(existed, model.remove(&key).is_some(), "DEL {i}");
            }
            1 => {
                // An expiry change keeps the value's WAL record (possibly in the file a checkpoint froze).
                let changed = engine.set_expiry(0, &key, Some(far + i)).unwrap();
                assert_eq!(changed, model.contains_key(&key), "EXPIRE {i}");
                if let Some(entry) = model.get_mut(&key) {
                    entry.1 = Some(far + i);
                }
            }
            _ => {
                let value = value_of(i);
                engine.set(0, &key, ValueKind::String, &value, None).unwrap();
                model.insert(key.clone(), (value, None));
            }
        }
        // The key just written and a random other one read back as the model has them.
        let other = format!("key:{}", rng.gen_range(0..600)).into_bytes();
        for probe in [&key, &other] {
            let got = engine.get(0, probe).unwrap().map(|entry| (entry.value.to_vec(), entry.expire_at_ms));
            assert_eq!(got.as_ref(), model.get(probe), "read {} after write {i}", String::from_utf8_lossy(probe));
        }
    }
    let checkpoints = engine.stats().total(|slot| slot.checkpoints);
    assert!(checkpoints >= 20, "only {checkpoints} checkpoints ran");
    assert_eq!(engine.dbsize(0).unwrap(), model.len() as u64);
    engine.close().unwrap();
    let engine = Engine::open(dir.path(), options(16 << 10)).unwrap();
    assert_eq!(engine.dbsize(0).unwrap(), model.len() as u64);
    for (key, expected) in &model {
        let got = engine.get(0, key).unwrap().map(|entry| (entry.value.to_vec(), entry.expire_at_ms));
        assert_eq!(got.as_ref(), Some(expected), "{} after reopen", String::from_utf8_lossy(key));
    }
}

#[test]
fn flushes_during_a_checkpoint_in_flight_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = Engine::open(dir.path(), options(16 << 10)).unwrap();
    for round in 0..12u64 {
        // Enough writes to start checkpoints; the flush comes right after one may have begun.
        let writes = 150 + round * 37;
        for i in 0..writes {
            engine.set(0, format!("old:{round}:{i}").as_bytes(), ValueKind::String, &value_of(i), None).unwrap();
            engine.set(1, format!("db1:{round}:{i}").as_bytes(), ValueKind::String, &value_of(i), None).unwrap();
        }
        if round % 2 == 0 {
            engine.flush_all().unwrap();
            assert_eq!(engine.dbsize(1).unwrap(), 0, "round {round}");
        } else {
            engine.flush_db(0).unwrap();
            assert!(engine.dbsize(1).unwrap() > 0, "round {round}");
        }
        assert_eq!(engine.dbsize(0).unwrap(), 0, "round {round}");
        for i in (0..writes).step_by(13) {
            assert!(engine.get(0, format!("old:{round}:{i}").as_bytes()).unwrap().is_none(), "round {round}");
        }
        // Writes after the flush survive it, through more checkpoints and a reopen.
        for i in 0..60 {
            engine.set(0, format!("new:{round}:{i}").as_bytes(), ValueKind::String, &value_of(i), None).unwrap();
        }
        assert_eq!(engine.dbsize(0).unwrap(), 60, "round {round}");
        if round % 3 == 2 {
            engine.close().unwrap();
            engine = Engine::open(dir.path(), options(16 << 10)).unwrap();
        }
        assert_eq!(engine.dbsize(0).unwrap(), 60, "round {round} after reopen");
        for i in 0..60 {
            let got = engine.get(0, format!("new:{round}:{i}").as_bytes()).unwrap().map(|e| e.value.to_vec());
            assert_eq!(got, Some(value_of(i)), "round {round}");
        }
        engine.flush_db(0).unwrap();
    }
}

/// An incompressible value for write `i` of the kill test (so that the memtable fills quickly): most are
/// kept in the memtable, every seventh is past that size (read back from the WAL).
fn random_value(i: u64) -> Vec<u8> {
    let mut rng = SmallRng::seed_from_u64(i);
    let len = if i % 7 == 0 { 2000 } else { 400 };
    (0..len).map(|_| rng.gen()).collect()
}

#[test]
fn kill_9_under_constant_checkpoints_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--fsync", "always", "--slots", "2"];
    let mut server = TestServer::start_in(dir.path(), &args);
    let port = server.port;
    // Two slots with the smallest memtable budget (1 MiB each): checkpoints run all the time.
    assert_eq!(server.connect().cmd(&["CONFIG", "SET", "maxmemory", "2mb"]), b"+OK\r\n");
    const KEYS: u64 = 6000;
    // Writer `w` sets key `w:(i % KEYS)` to random_value(i) in pipelines of 64; it returns how many writes
    // were acknowledged and how many were sent.
    let writers: Vec<_> = (0..16u64)
        .map(|w| {
            std::thread::spawn(move || {
                let mut conn = crate::support::Conn::connect(port);
                conn.set_timeout(Duration::from_secs(10));
                let (mut acked, mut sent) = (0u64, 0u64);
                loop {
                    let mut pipeline = Vec::new();
                    for i in acked..acked + 64 {
                        let key = format!("{w}:{}", i % KEYS);
                        pipeline.extend(command(&[b"SET", key.as_bytes(), &random_value(i)]));
                    }
                    if !conn.try_send(&pipeline) {
                        return (acked, sent);
                    }
                    sent = acked + 64;
                    for _ in 0..64 {
                        if conn.read_reply() != b"+OK\r\n" {
                            return (acked, sent);
                        }
                        acked += 1;
                    }
                }
            })
        })
        .collect();
    // Kill once a few checkpoints have run (each rotates the WAL), while the writers go on.
    let mut conn = server.connect();
    let started = std::time::Instant::now();
    let (checkpoints, info) = loop {
        std::thread::sleep(Duration::from_millis(200));
        let info = String::from_utf8_lossy(&conn.cmd(&["INFO", "velo"])).into_owned();
        let checkpoints: u64 = info
            .lines()
            .filter_map(|line| line.strip_prefix("checkpoints:"))
            .map(|n| n.trim().parse::<u64>().unwrap_or(0))
            .sum();
        if checkpoints >= 3 || started.elapsed() > Duration::from_secs(20) {
            break (checkpoints, info);
        }
    };
    server.kill9();
    let counts: Vec<(u64, u64)> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    assert!(counts.iter().map(|c| c.0).sum::<u64>() > 1000, "too few writes acknowledged: {counts:?}");
    assert!(checkpoints >= 3, "only {checkpoints} checkpoints before the kill:\n{info}");
    let server = TestServer::start_in(dir.path(), &args);
    let mut conn = server.connect();
    for (w, &(acked, sent)) in counts.iter().enumerate() {
        for key in 0..KEYS.min(sent) {
            // The newest write of this key that was acknowledged, and the last one sent.
            let last_acked = (0..acked).rev().find(|i| i % KEYS == key);
            let reply = conn.cmd(&["GET", &format!("{w}:{key}")]);
            let Some(last_acked) = last_acked else { continue };
            let accepted: Vec<Vec<u8>> = (last_acked..sent.max(last_acked + 1))
                .filter(|i| i % KEYS == key)
                .map(|i| {
                    let value = random_value(i);
                    let mut expected = format!("${}\r\n", value.len()).into_bytes();
                    expected.extend_from_slice(&value);
                    expected.extend_from_slice(b"\r\n");
                    expected
                })
                .collect();
            assert!(
                accepted.contains(&reply),
                "{w}:{key}: write {last_acked} was acknowledged before the kill, got {:?}\n{info}",
                String::from_utf8_lossy(&reply[..reply.len().min(80)])
            );
        }
    }
}
