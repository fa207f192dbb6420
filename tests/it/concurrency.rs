//! Atomicity under concurrent clients: read-modify-write commands, multi-key commands across slots, and
//! MULTI/EXEC against readers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::support::TestServer;

#[test]
fn concurrent_incr_loses_no_update() {
    let server = TestServer::start();
    let port = server.port;
    let workers: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                let mut conn = crate::support::Conn::connect(port);
                for _ in 0..500 {
                    conn.cmd(&["INCR", "counter"]);
                    conn.cmd(&["APPEND", "log", "x"]);
                    conn.cmd(&["INCRBYFLOAT", "float", "0.5"]);
                }
            })
        })
        .collect();
    workers.into_iter().for_each(|w| w.join().unwrap());
    let mut conn = server.connect();
    assert_eq!(conn.cmd(&["GET", "counter"]), b"$4\r\n2000\r\n");
    assert_eq!(conn.cmd(&["STRLEN", "log"]), b":2000\r\n");
    assert_eq!(conn.cmd(&["GET", "float"]), b"$4\r\n1000\r\n");
}

#[test]
fn multi_key_commands_and_transactions_are_atomic() {
    let server = TestServer::start();
    let mut setup = server.connect();
    // Keys chosen to land in different slots.
    let keys = ["alpha", "bravo", "charlie", "delta"];
    setup.cmd(&["MSET", keys[0], "0", keys[1], "0", keys[2], "0", keys[3], "0"]);
    let stop = Arc::new(AtomicBool::new(false));
    let port = server.port;
    let writers: Vec<_> = (0..2)
        .map(|w| {
            std::thread::spawn(move || {
                let mut conn = crate::support::Conn::connect(port);
                for i in 0..300 {
                    let value = format!("{w}-{i}");
                    if i % 2 == 0 {
                        conn.cmd(&["MSET", keys[0], &value, keys[1], &value, keys[2], &value, keys[3], &value]);
                    } else {
                        conn.cmd(&["MULTI"]);
                        for key in keys {
                            conn.cmd(&["SET", key, &value]);
                        }
                        assert_eq!(conn.cmd(&["EXEC"]), b"*4\r\n+OK\r\n+OK\r\n+OK\r\n+OK\r\n");
                    }
                }
            })
        })
        .collect();
    let reader_stop = stop.clone();
    let reader = std::thread::spawn(move || {
        let mut conn = crate::support::Conn::connect(port);
        let mut checks = 0;
        while !reader_stop.load(Ordering::Relaxed) {
            let reply = conn.cmd(&["MGET", keys[0], keys[1], keys[2], keys[3]]);
            let text = String::from_utf8(reply).unwrap();
            let values: Vec<&str> =
                text.split("\r\n").filter(|l| !l.starts_with(['*', '$']) && !l.is_empty()).collect();
            assert_eq!(values.len(), 4, "{text}");
            assert!(values.iter().all(|v| *v == values[0]), "torn multi-key write seen: {values:?}");
            checks += 1;
        }
        checks
    });
    writers.into_iter().for_each(|w| w.join().unwrap());
    stop.store(true, Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);
}
