//! What running real client libraries (ioredis, BullMQ; docs/compat.md "Client libraries") found, as
//! differential tests that need no Node: the same bytes to redis-server 7.0 and to Velo, replies compared.

use std::time::Duration;

use crate::support::resp::show;
use crate::support::{Conn, RedisServer, TestServer};

/// Sends `bytes` raw and reads one reply, waiting at most `wait` (empty: no reply came).
fn exchange(conn: &mut Conn, bytes: &[u8], wait: Duration) -> Vec<u8> {
    conn.set_timeout(wait);
    conn.send(bytes);
    conn.read_reply()
}

/// Inline requests split as Redis's `sdssplitargs` splits them: C's `isspace` (vertical tab included)
/// between arguments and after a closing quote; form feed and vertical tab kept inside a bare argument.
#[test]
fn inline_requests_split_on_c_whitespace() {
    let (redis, velo) = (RedisServer::start(), TestServer::start());
    let requests: &[&[u8]] = &[
        b"ECHO \x0b \"a\"\x0b\r\n",
        b"ECHO a\x0bb\x0c\r\n",
        b"\x0bECHO\x0c'q'\x0b\n",
        b"ECHO \"a\"\x0bb\r\n",
        b"ECHO 'a'\x0c\r\n",
        b"PING \x0b\x0c\t \r\n",
    ];
    for request in requests {
        let mut replies = Vec::new();
        for port in [redis.port, velo.port] {
            let mut conn = Conn::connect(port);
            replies.push(exchange(&mut conn, request, Duration::from_secs(5)));
        }
        assert!(!replies[0].is_empty(), "redis answers {}", show(request));
        assert_eq!(replies[0], replies[1], "{}: redis {} velo {}", show(request), show(&replies[0]), show(&replies[1]));
    }
}

/// A NUL byte in an inline request (ioredis's TLS test sends a TLS ClientHello to the plain port). Redis
/// looks for the newline with `strchr`, which stops at the NUL: no request is seen, the client waits,
/// and once more than 64 KiB are buffered the request fails with "too big inline request". Velo used to
/// split the line and loop for ever on the NUL, pushing empty arguments until the kernel killed it.
#[test]
fn inline_request_with_nul_waits_like_redis() {
    let (redis, velo) = (RedisServer::start(), TestServer::start());
    // The start of a TLS 1.2 ClientHello: record header, handshake header, then a newline in its random.
    let hello: &[u8] = b"\x16\x03\x01\x01\x36\x01\x00\x01\x32\x03\x03\x12\x4b\x0a\xbe\xff\x37\r\n";
    for request in [hello, b"PING\x00x\r\nPING\r\n", b"\x00\r\n"] {
        let mut replies = Vec::new();
        for port in [redis.port, velo.port] {
            let mut conn = Conn::connect(port);
            let reply = exchange(&mut conn, request, Duration::from_millis(300));
            // The server still serves others (Velo used to stop answering and grow without bound).
            let mut other = Conn::connect(port);
            assert_eq!(other.cmd(&["PING"]), b"+PONG\r\n", "port {port} alive after {}", show(request));
            // Filling the buffer past 64 KiB without a visible newline fails the request, as Redis.
            let filler = vec![b'x'; 70 * 1024];
            let error = exchange(&mut conn, &filler, Duration::from_secs(5));
            replies.push((reply, error));
        }
        assert_eq!(replies[0].0, b"", "redis waits on {}", show(request));
        assert_eq!(replies[0], replies[1], "{}", show(request));
        assert_eq!(replies[1].1, b"-ERR Protocol error: too big inline request\r\n");
    }
}

/// Iterates `cmd key cursor COUNT count` to the end; the steps' element counts and every element name
/// (fields, members) seen.
fn scan_all(conn: &mut Conn, cmd: &str, key: &str, count: usize, per_name: usize) -> (Vec<usize>, Vec<String>) {
    let mut cursor = "0".to_string();
    let mut steps = Vec::new();
    let mut names = Vec::new();
    loop {
        let reply = conn.cmd(&[cmd, key, &cursor, "COUNT", &count.to_string()]);
        let text = String::from_utf8_lossy(&reply).into_owned();
        // *2 $len cursor *n then bulk strings: take the cursor line and every bulk after the inner header.
        let lines: Vec<&str> = text.split("\r\n").collect();
        cursor = lines[2].to_string();
        let items: Vec<&str> = lines[4..].iter().skip(1).step_by(2).copied().filter(|l| !l.is_empty()).collect();
        steps.push(items.len() / per_name);
        names.extend(items.iter().step_by(per_name).map(|s| s.to_string()));
        if cursor == "0" {
            break;
        }
        assert!(steps.len() < 1000, "{cmd} never ends");
    }
    names.sort();
    (steps, names)
}

/// HSCAN, SSCAN and ZSCAN page a collection Redis keeps in a hash table (or skiplist) about COUNT elements a
/// step, and return a listpack or intset whole. BullMQ's `getDependencies` pages a hash of 72 fields
/// longer than `hash-max-listpack-value` with COUNT 50 and expects 50 then 22; Velo used to return every
/// compact collection whole.
#[test]
fn scan_pages_what_redis_keeps_in_a_hash_table() {
    let (redis, velo) = (RedisServer::start(), TestServer::start());
    let long = |i: usize| format!("bull:test-8f7d7787-011a-4ac3-a6a6-37f179fad34a:1b7837a7-7bde-4b66-acc6-{i:012}");
    let mut results = Vec::new();
    for port in [redis.port, velo.port] {
        let mut conn = Conn::connect(port);
        for i in 0..72 {
            conn.cmd(&["HSET", "processed", &long(i), "null"]);
            conn.cmd(&["SADD", "dependencies", &format!("job{i}")]);
        }
        for i in 0..200 {
            conn.cmd(&["ZADD", "z", &i.to_string(), &format!("m{i}")]);
        }
        for i in 0..5 {
            conn.cmd(&["HSET", "small", &format!("f{i}"), "v"]);
            conn.cmd(&["SADD", "ints", &i.to_string()]);
            conn.cmd(&["ZADD", "zsmall", &i.to_string(), &format!("m{i}")]);
        }
        let result = [
            scan_all(&mut conn, "HSCAN", "processed", 50, 2),
            scan_all(&mut conn, "SSCAN", "dependencies", 50, 1),
            scan_all(&mut conn, "ZSCAN", "z", 150, 2),
            scan_all(&mut conn, "HSCAN", "small", 1, 2),
            scan_all(&mut conn, "SSCAN", "ints", 1, 1),
            scan_all(&mut conn, "ZSCAN", "zsmall", 1, 2),
        ];
        results.push(result);
    }
    let (redis_results, velo_results) = (&results[0], &results[1]);
    for (i, (r, v)) in redis_results.iter().zip(velo_results).enumerate() {
        // The same elements, in the same number of steps; the first step at least COUNT when paged.
        assert_eq!(r.1, v.1, "case {i}: elements");
        assert_eq!(r.0.len(), v.0.len(), "case {i}: steps redis {:?} velo {:?}", r.0, v.0);
    }
    assert_eq!(velo_results[0].0, vec![50, 22], "BullMQ's pages");
    assert!(redis_results[0].0[0] >= 50 && redis_results[0].0.len() == 2);
    assert_eq!(velo_results[3].0, vec![5], "a listpack comes whole");
}
