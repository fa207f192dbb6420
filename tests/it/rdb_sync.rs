//! SYNC for snapshot clients: `redis-cli --rdb` takes a copy of a running Velo that redis-server loads
//! with the same contents; both framings (`$EOF:` after `REPLCONF capa eof`, `$<length>` otherwise),
//! the functions-only filter, and REPLCONF's and SYNC's errors as Redis 7.0 words them.

use std::process::Command;

use crate::rdb_support::{assert_same, ok, populate};
use crate::support::resp::{command, show};
use crate::support::{Conn, RedisServer, TestServer};

/// Sends `requests` (raw RESP, each answered before the next is sent) and then SYNC; returns what
/// came back for SYNC until the server closed the connection.
fn sync_after(port: u16, requests: &[&[&str]]) -> Vec<u8> {
    let mut conn = Conn::connect(port);
    for args in requests {
        assert_eq!(conn.cmd(args), b"+OK\r\n", "{args:?}");
    }
    conn.send(b"SYNC\r\n");
    conn.read_to_close()
}

/// The RDB inside an `$EOF:<mark>` framing, after the newlines a server may send first.
fn unframe_eof(reply: &[u8]) -> Vec<u8> {
    let start = reply.iter().position(|&b| b != b'\n').expect("a reply");
    let reply = &reply[start..];
    assert!(reply.starts_with(b"$EOF:"), "{}", show(&reply[..reply.len().min(60)]));
    let mark = &reply[5..45];
    assert_eq!(&reply[45..47], b"\r\n");
    let body = &reply[47..];
    assert!(body.ends_with(mark), "the file must end with the mark");
    body[..body.len() - 40].to_vec()
}

#[test]
fn redis_cli_rdb_copies_a_running_server_that_redis_loads() {
    let velo = TestServer::start();
    let mut conn = velo.connect();
    populate(&mut conn, 7);
    ok(&mut conn, &["FUNCTION", "LOAD", "#!lua name=synclib\nredis.register_function('f', function() return 1 end)"]);
    let copy = tempfile::tempdir().unwrap();
    let out = Command::new("redis-cli")
        .args(["-p", &velo.port.to_string(), "--rdb"])
        .arg(copy.path().join("copy.rdb"))
        .output()
        .expect("redis-cli not found: install it with `apt-get install redis-tools`");
    assert!(out.status.success(), "redis-cli --rdb: {}", String::from_utf8_lossy(&out.stderr));
    let redis = RedisServer::start_in(copy.path(), &["--dbfilename", "copy.rdb"]);
    let mut rconn = Conn::connect(redis.port);
    assert_same(&mut rconn, &mut conn, &[0, 1, 5]);
    assert!(show(&rconn.cmd(&["FUNCTION", "LIST"])).contains("synclib"));
    // The server goes on serving, and a second copy works too (the snapshot was released).
    assert_eq!(conn.cmd(&["PING"]), b"+PONG\r\n");
    let again = sync_after(velo.port, &[&["REPLCONF", "capa", "eof"], &["REPLCONF", "rdb-only", "1"]]);
    assert!(unframe_eof(&again).starts_with(b"REDIS0010"));
}

#[test]
fn sync_framings_match_redis() {
    let redis = RedisServer::start();
    let velo = TestServer::start();
    let mut vconn = velo.connect();
    let mut rconn = Conn::connect(redis.port);
    for conn in [&mut vconn, &mut rconn] {
        ok(conn, &["SET", "k", "v"]);
        ok(conn, &["RPUSH", "l", "a", "b"]);
    }
    // Without `capa eof`: the length first, then exactly that many bytes, then the connection closes.
    for port in [velo.port, redis.port] {
        let reply = sync_after(port, &[&["REPLCONF", "rdb-only", "1"]]);
        let line_end = reply.windows(2).position(|w| w == b"\r\n").unwrap();
        assert_eq!(reply[0], b'$', "{}", show(&reply[..reply.len().min(60)]));
        let length: usize = std::str::from_utf8(&reply[1..line_end]).unwrap().parse().unwrap();
        let body = &reply[line_end + 2..];
        assert_eq!(body.len(), length, "port {port}");
        assert!(body.starts_with(b"REDIS0010"));
    }
    // With `capa eof` and the functions-only filter: a file redis-server loads, holding no keys.
    ok(&mut vconn, &["FUNCTION", "LOAD", "#!lua name=onlyfns\nredis.register_function('g', function() return 2 end)"]);
    let reply = sync_after(
        velo.port,
        &[&["REPLCONF", "capa", "eof"], &["REPLCONF", "rdb-only", "1"], &["REPLCONF", "rdb-filter-only", "functions"]],
    );
    let file = tempfile::tempdir().unwrap();
    std::fs::write(file.path().join("fns.rdb"), unframe_eof(&reply)).unwrap();
    let loaded = RedisServer::start_in(file.path(), &["--dbfilename", "fns.rdb"]);
    let mut lconn = Conn::connect(loaded.port);
    assert_eq!(lconn.cmd(&["DBSIZE"]), b":0\r\n");
    assert!(show(&lconn.cmd(&["FUNCTION", "LIST"])).contains("onlyfns"));
}

#[test]
fn replconf_and_sync_errors_match_redis() {
    let redis = RedisServer::start();
    let velo = TestServer::start();
    let mut vconn = velo.connect();
    let mut rconn = Conn::connect(redis.port);
    for args in [
        &["REPLCONF"][..],
        &["REPLCONF", "listening-port"][..],
        &["REPLCONF", "nosuch", "1"][..],
        &["REPLCONF", "rdb-only", "2"][..],
        &["REPLCONF", "rdb-only", "x"][..],
        &["REPLCONF", "listening-port", "x"][..],
        &["REPLCONF", "listening-port", "6380", "ip-address", "10.0.0.1", "capa", "psync2"][..],
        &["REPLCONF", "rdb-filter-only", "keys"][..],
        &["REPLCONF", "rdb-filter-only", ""][..],
        &["SYNC", "extra"][..],
    ] {
        assert_eq!(show(&vconn.cmd(args)), show(&rconn.cmd(args)), "{args:?}");
    }
    // SYNC refused: inside MULTI, with replies still unsent, and filtered without the EOF framing.
    for port in [velo.port, redis.port] {
        let mut conn = Conn::connect(port);
        assert_eq!(show(&conn.cmd(&["MULTI"])), "+OK⏎");
        assert_eq!(show(&conn.cmd(&["SYNC"])), "-ERR Command not allowed inside a transaction⏎", "port {port}");
        let mut conn = Conn::connect(port);
        let mut pipeline = command(&[b"PING"]);
        pipeline.extend_from_slice(&command(&[b"SYNC"]));
        conn.send(&pipeline);
        assert_eq!(show(&conn.read_reply()), "+PONG⏎");
        assert_eq!(show(&conn.read_reply()), "-ERR SYNC and PSYNC are invalid with pending output⏎", "port {port}");
        let mut conn = Conn::connect(port);
        assert_eq!(conn.cmd(&["REPLCONF", "rdb-filter-only", "functions"]), b"+OK\r\n");
        assert_eq!(show(&conn.cmd(&["SYNC"])), "-ERR Filtered replica requires EOF capability⏎", "port {port}");
    }
}

#[test]
fn rdb_dump_of_a_live_directory_asks_its_server() {
    let velo = TestServer::start();
    let mut conn = velo.connect();
    populate(&mut conn, 11);
    let out_dir = tempfile::tempdir().unwrap();
    let whole = out_dir.path().join("whole.rdb");
    let run = |extra: &[&str], file: &std::path::Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_velo"))
            .args(["rdb-dump", "--json", "--dir"])
            .arg(&velo.dir)
            .arg("-o")
            .arg(file)
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let summary = run(&[], &whole);
    let redis = RedisServer::start_in(out_dir.path(), &["--dbfilename", "whole.rdb"]);
    let mut rconn = Conn::connect(redis.port);
    assert_same(&mut rconn, &mut conn, &[0, 1, 5]);
    let dbsize = |reply: Vec<u8>| String::from_utf8_lossy(&reply)[1..].trim().parse::<u64>().unwrap();
    let mut total = 0;
    for db in ["0", "1", "5"] {
        ok(&mut conn, &["SELECT", db]);
        total += dbsize(conn.cmd(&["DBSIZE"]));
    }
    let written: u64 = summary["written"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|types| types.as_object().unwrap().values().map(|n| n.as_u64().unwrap()))
        .sum();
    assert_eq!(written, total);
    // The filters apply to what the server sent: database 1, keys matching a pattern.
    ok(&mut conn, &["SELECT", "1"]);
    ok(&mut conn, &["SET", "only:this", "1"]);
    let some = out_dir.path().join("some.rdb");
    run(&["--db", "1", "--match", "only:*"], &some);
    drop(rconn);
    drop(redis);
    let redis = RedisServer::start_in(out_dir.path(), &["--dbfilename", "some.rdb"]);
    let mut rconn = Conn::connect(redis.port);
    ok(&mut rconn, &["SELECT", "1"]);
    assert_eq!(show(&rconn.cmd(&["KEYS", "*"])), "*1⏎$9⏎only:this⏎");
    assert_eq!(rconn.cmd(&["SELECT", "0"]), b"+OK\r\n");
    assert_eq!(rconn.cmd(&["DBSIZE"]), b":0\r\n");
}

#[test]
fn a_sync_client_that_reads_nothing_neither_blocks_others_nor_shutdown() {
    let mut velo = TestServer::start();
    let mut conn = velo.connect();
    // About 8 MB of values: more than the transfer channel and the socket buffers hold.
    let value = "v".repeat(4000);
    for batch in 0..20 {
        let mut pipeline = Vec::new();
        for i in 0..100 {
            let key = format!("big:{batch}:{i}");
            pipeline.extend_from_slice(&command(&[b"SET", key.as_bytes(), value.as_bytes()]));
        }
        conn.send(&pipeline);
        for _ in 0..100 {
            assert_eq!(conn.read_reply(), b"+OK\r\n");
        }
    }
    let mut stalled = Conn::connect(velo.port);
    assert_eq!(stalled.cmd(&["REPLCONF", "rdb-only", "1"]), b"+OK\r\n");
    assert_eq!(stalled.cmd(&["REPLCONF", "capa", "eof"]), b"+OK\r\n");
    stalled.send(b"SYNC\r\n");
    std::thread::sleep(std::time::Duration::from_millis(500));
    // Others are served while the transfer waits for its reader.
    let started = std::time::Instant::now();
    assert_eq!(conn.cmd(&["SET", "after", "1"]), b"+OK\r\n");
    assert_eq!(conn.cmd(&["GET", "after"]), b"$1\r\n1\r\n");
    assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
    // SIGTERM still stops the server, well before the 60 s transfer limit.
    let stopping = std::time::Instant::now();
    assert_eq!(velo.terminate(), Some(0));
    assert!(stopping.elapsed() < std::time::Duration::from_secs(15), "{:?}", stopping.elapsed());
    drop(stalled);
}
