//! `kill -9` under `--fsync everysec` while clients pipeline writes: the server writes a pipeline's WAL
//! records in one grouped write per slot before its replies (docs/recovery.md, "Grouped writes"), so every
//! write a client saw acknowledged survives a process crash, large values (read back from the WAL) included.

use std::time::{Duration, Instant};

use crate::support::resp::command;
use crate::support::{noise, TestServer};

/// The value written as the `i`-th write of writer `w`: every fifth one is larger than the memtable keeps.
fn value(w: usize, i: usize) -> String {
    let small = format!("value-{w}-{i}");
    if i % 5 == 0 {
        small.repeat(1 + 20_000 / small.len())
    } else {
        small
    }
}

#[test]
fn kill_9_loses_no_acknowledged_pipelined_write_under_everysec() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_in(dir.path(), &["--fsync", "everysec"]);
    let port = server.port;
    // Writers send pipelines of 32 SETs (and a GET of the pipeline's first key, which the same pass reads
    // back from its own held records) and count the replies they receive before the kill.
    let writers: Vec<_> = (0..3)
        .map(|w| {
            std::thread::spawn(move || {
                let mut conn = crate::support::Conn::connect(port);
                conn.set_timeout(Duration::from_secs(5));
                let mut acked = 0usize;
                loop {
                    let mut pipeline = Vec::new();
                    for i in acked..acked + 32 {
                        let (key, value) = (format!("w{w}:{i}"), value(w, i));
                        pipeline.extend(command(&[b"SET", key.as_bytes(), value.as_bytes()]));
                    }
                    pipeline.extend(command(&[b"GET", format!("w{w}:{acked}").as_bytes()]));
                    if !conn.try_send(&pipeline) {
                        return acked;
                    }
                    for _ in 0..32 {
                        if conn.read_reply() != b"+OK\r\n" {
                            return acked;
                        }
                        acked += 1;
                    }
                    let first = value(w, acked - 32);
                    let reply = conn.read_reply();
                    if reply.is_empty() {
                        return acked;
                    }
                    assert_eq!(reply, format!("${}\r\n{first}\r\n", first.len()).into_bytes());
                }
            })
        })
        .collect();
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(700) {
        std::thread::sleep(Duration::from_millis(10));
    }
    server.kill9();
    let acked: Vec<usize> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    assert!(acked.iter().sum::<usize>() > 0, "no write was acknowledged before the kill");
    let server = TestServer::start_in(dir.path(), &["--fsync", "everysec"]);
    let mut conn = server.connect();
    for (w, &count) in acked.iter().enumerate() {
        for i in 0..count {
            let expected = value(w, i);
            let reply = conn.cmd(&["GET", &format!("w{w}:{i}")]);
            assert!(
                reply == format!("${}\r\n{expected}\r\n", expected.len()).into_bytes(),
                "w{w}:{i} acknowledged before the kill, not found after it"
            );
        }
    }
}

/// `kill -9` while a client runs EXECs and scripts of many large SETs, each larger than what a write
/// group holds before writing out (4 MiB, `Engine::write_group_if_over_cap`): after the restart each
/// transaction is there entirely or not at all, and every acknowledged one is there.
#[test]
fn kill_9_during_large_execs_and_scripts_leaves_each_all_or_nothing() {
    const WRITES: usize = 20;
    // 256 KiB, incompressible (values are compressed before they reach the WAL): 5 MiB per transaction.
    let value = |n: usize| noise(n as u64 + 1, 256 << 10);
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start_in(dir.path(), &["--fsync", "everysec"]);
    let port = server.port;
    let writer = std::thread::spawn(move || {
        let mut conn = crate::support::Conn::connect(port);
        conn.set_timeout(Duration::from_secs(10));
        let mut acked = 0usize;
        loop {
            let n = acked;
            let value = value(n);
            let keys: Vec<String> = (0..WRITES).map(|i| format!("t{n}:{i}")).collect();
            let mut request = Vec::new();
            if n % 2 == 0 {
                request.extend(command(&[b"MULTI"]));
                for key in &keys {
                    request.extend(command(&[b"SET", key.as_bytes(), &value]));
                }
                request.extend(command(&[b"EXEC"]));
            } else {
                let script = b"for i, key in ipairs(KEYS) do redis.call('set', key, ARGV[1]) end return #KEYS";
                let count = WRITES.to_string();
                let mut args: Vec<&[u8]> = vec![b"EVAL", script, count.as_bytes()];
                args.extend(keys.iter().map(|k| k.as_bytes()));
                args.push(&value);
                request.extend(command(&args));
            }
            if !conn.try_send(&request) {
                return acked;
            }
            let replies = if n % 2 == 0 { WRITES + 2 } else { 1 };
            for _ in 0..replies {
                if conn.read_reply().is_empty() {
                    return acked;
                }
            }
            acked += 1;
        }
    });
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(800) {
        std::thread::sleep(Duration::from_millis(10));
    }
    server.kill9();
    let acked = writer.join().unwrap();
    assert!(acked > 0, "no transaction was acknowledged before the kill");
    let server = TestServer::start_in(dir.path(), &["--fsync", "everysec"]);
    let mut conn = server.connect();
    conn.set_timeout(Duration::from_secs(10));
    // The one in flight at the kill (acked) may be there or not, but whole.
    for n in 0..=acked {
        let expected = value(n);
        let found = (0..WRITES)
            .filter(|i| {
                let reply = conn.cmd(&["GET", &format!("t{n}:{i}")]);
                if reply == b"$-1\r\n" {
                    return false;
                }
                let mut want = format!("${}\r\n", expected.len()).into_bytes();
                want.extend_from_slice(&expected);
                want.extend_from_slice(b"\r\n");
                assert!(reply == want, "t{n}:{i}");
                true
            })
            .count();
        if n < acked {
            assert_eq!(found, WRITES, "transaction {n} was acknowledged");
        } else {
            assert!(found == 0 || found == WRITES, "transaction {n}: {found} of {WRITES} writes survived");
        }
    }
}
