//! End to end (issue 15): `kill -9` while clients run large EXECs, cross-slot MSETs and RENAMEs. After the
//! restart every transaction's keys are all present or all absent, and under `--fsync always` every
//! acknowledged transaction is present. Before the engine's transactions, a kill during an EXEC of
//! 100,000 SETs left 2,149 to 11,668 of its keys.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::support::resp::Conn;
use crate::support::server::TestServer;

/// Keys per EXEC: enough that the kill often lands inside one.
const EXEC_KEYS: usize = 3000;
/// Keys per MSET, spread over every slot by their hash tags.
const MSET_KEYS: usize = 24;

fn count_existing(conn: &mut Conn, keys: &[String]) -> usize {
    let mut found = 0;
    for chunk in keys.chunks(500) {
        let mut args = vec!["EXISTS"];
        args.extend(chunk.iter().map(String::as_str));
        let reply = String::from_utf8(conn.cmd(&args)).expect("utf-8 reply");
        found += reply.trim_start_matches(':').trim().parse::<usize>().expect("EXISTS count");
    }
    found
}

fn exec_keys(round: usize, n: usize) -> Vec<String> {
    (0..EXEC_KEYS).map(|i| format!("{{{}}}x{round}:{n}:{i}", i % 97)).collect()
}

fn mset_keys(round: usize, n: usize) -> Vec<String> {
    (0..MSET_KEYS).map(|i| format!("{{{i}}}m{round}:{n}")).collect()
}

/// Runs EXEC writers and MSET/RENAME writers until `stop`; returns (EXECs acknowledged, EXECs sent) and the
/// same for MSETs.
fn load(port: u16, round: usize, stop: Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<(&'static str, usize, usize)>> {
    let exec = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut conn = Conn::connect(port);
            conn.set_timeout(Duration::from_secs(30));
            let (mut acked, mut sent) = (0, 0);
            while !stop.load(Ordering::Relaxed) {
                let mut pipeline = b"*1\r\n$5\r\nMULTI\r\n".to_vec();
                for key in exec_keys(round, sent) {
                    pipeline.extend(crate::support::resp::command(&[b"SET", key.as_bytes(), b"v"]));
                }
                pipeline.extend(b"*1\r\n$4\r\nEXEC\r\n");
                sent += 1;
                if !conn.try_send(&pipeline) {
                    break;
                }
                let mut ok = true;
                for _ in 0..EXEC_KEYS + 1 {
                    if conn.read_reply().is_empty() {
                        ok = false;
                        break;
                    }
                }
                // The EXEC reply itself: an array of +OK.
                if !ok || conn.read_reply().is_empty() {
                    break;
                }
                acked += 1;
            }
            ("exec", acked, sent)
        })
    };
    let mset = std::thread::spawn(move || {
        let mut conn = Conn::connect(port);
        conn.set_timeout(Duration::from_secs(30));
        let (mut acked, mut sent) = (0, 0);
        while !stop.load(Ordering::Relaxed) {
            let keys = mset_keys(round, sent);
            let mut args: Vec<&[u8]> = vec![b"MSET"];
            for key in &keys {
                args.push(key.as_bytes());
                args.push(b"m");
            }
            sent += 1;
            if !conn.try_send(&crate::support::resp::command(&args)) {
                break;
            }
            if conn.read_reply().is_empty() {
                break;
            }
            // Move one of them to another slot: RENAME is atomic too (the source goes, the target comes).
            let from = keys[0].clone();
            let to = format!("{from}:renamed");
            if !conn.try_send(&crate::support::resp::command(&[b"RENAME", from.as_bytes(), to.as_bytes()])) {
                break;
            }
            if conn.read_reply().is_empty() {
                break;
            }
            acked += 1;
        }
        ("mset", acked, sent)
    });
    vec![exec, mset]
}

fn run(fsync: &str, seed: u64) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("temporary directory");
    for round in 0..3 {
        let context = format!("--fsync {fsync}, seed {seed}, round {round}");
        let mut server = TestServer::start_in(dir.path(), &["--fsync", fsync]);
        let stop = Arc::new(AtomicBool::new(false));
        let writers = load(server.port, round, stop.clone());
        let started = Instant::now();
        let kill_after = Duration::from_millis(rng.gen_range(300..1500));
        while started.elapsed() < kill_after {
            std::thread::sleep(Duration::from_millis(5));
        }
        server.kill9();
        stop.store(true, Ordering::Relaxed);
        let results: Vec<_> = writers.into_iter().map(|w| w.join().expect("writer thread")).collect();
        let server = TestServer::start_in(dir.path(), &["--fsync", fsync]);
        let mut conn = server.connect();
        for (kind, acked, sent) in results {
            for n in 0..sent {
                let (keys, expected_whole) = match kind {
                    "exec" => (exec_keys(round, n), EXEC_KEYS),
                    _ => {
                        // After MSET and RENAME: the MSET's keys, one of them under its new name.
                        let mut keys = mset_keys(round, n);
                        keys.push(format!("{}:renamed", keys[0]));
                        (keys, MSET_KEYS)
                    }
                };
                let found = count_existing(&mut conn, &keys);
                assert!(
                    found == 0 || found == expected_whole,
                    "{context}: {kind} #{n} recovered {found} of its {expected_whole} keys"
                );
                if fsync == "always" && n < acked {
                    assert_eq!(found, expected_whole, "{context}: acknowledged {kind} #{n} was lost");
                }
            }
        }
        drop(server);
    }
}

#[test]
fn kill9_during_exec_mset_and_rename_keeps_each_whole_under_fsync_always() {
    run("always", 15);
}

#[test]
fn kill9_during_exec_mset_and_rename_keeps_each_whole_under_everysec() {
    run("everysec", 16);
}
