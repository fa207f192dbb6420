//! Raw-socket protocol tests: pipelining, inline commands, malformed frames, oversized bulks, RESP3
//! shapes, and a reader that does not read. Where Redis defines the bytes, they are compared with
//! `redis-server`'s.

use std::time::Duration;

use crate::support::resp::{command, parse, show, Value};
use crate::support::{Conn, RedisServer, TestServer};

/// Sends `bytes` on a fresh connection and returns everything until the server closes it.
fn send_and_read_to_close(port: u16, bytes: &[u8]) -> Vec<u8> {
    let mut conn = Conn::connect(port);
    conn.set_timeout(Duration::from_secs(5));
    conn.send(bytes);
    conn.read_to_close()
}

#[test]
fn malformed_frames_match_redis_and_close() {
    let redis = RedisServer::start();
    let velo = TestServer::start();
    let cases: &[&[u8]] = &[
        b"*abc\r\n",
        b"*1\r\n+PING\r\n",
        b"*1\r\n$-5\r\n",
        b"*1\r\n$abc\r\n",
        b"*1\r\n$600000000\r\n",
        b"PING\r\nSET a \"b\r\n",
        b"SET a \"b\"c\r\n",
        b"*3000000000\r\n",
        b"*1\r\n$4\r\nPING\r\n*x\r\n",
    ];
    for case in cases {
        let expected = send_and_read_to_close(redis.port, case);
        let actual = send_and_read_to_close(velo.port, case);
        assert!(expected == actual, "{}:\n  redis: {}\n  velo:  {}", show(case), show(&expected), show(&actual));
        assert!(actual.windows(15).any(|w| w == b"Protocol error:"), "{}", show(&actual));
    }
}

#[test]
fn too_big_inline_and_count_lines() {
    let redis = RedisServer::start();
    let velo = TestServer::start();
    let inline = vec![b'a'; 70 * 1024];
    let mut count = b"*".to_vec();
    count.extend(std::iter::repeat_n(b'1', 70 * 1024));
    for case in [inline, count] {
        let expected = send_and_read_to_close(redis.port, &case);
        let actual = send_and_read_to_close(velo.port, &case);
        assert_eq!(show(&expected), show(&actual));
    }
}

#[test]
fn pipelining_answers_in_order() {
    let velo = TestServer::start();
    let mut conn = velo.connect();
    let mut batch = Vec::new();
    for i in 0..2000 {
        batch.extend(command(&[b"SET", format!("k{i}").as_bytes(), format!("v{i}").as_bytes()]));
        batch.extend(command(&[b"GET", format!("k{i}").as_bytes()]));
    }
    conn.send(&batch);
    for i in 0..2000 {
        assert_eq!(conn.read_reply(), b"+OK\r\n");
        let value = format!("v{i}");
        assert_eq!(conn.read_reply(), format!("${}\r\n{value}\r\n", value.len()).into_bytes());
    }
}

#[test]
fn inline_commands_match_redis() {
    let redis = RedisServer::start();
    let velo = TestServer::start();
    let script: &[u8] = b"PING\r\nSET greeting \"hello world\"\r\nGET greeting\r\nset  q 'it\\'s'\r\nget q\n\r\nECHO \"\\x41\\n\"\r\nQUIT\r\n";
    let expected = send_and_read_to_close(redis.port, script);
    let actual = send_and_read_to_close(velo.port, script);
    assert_eq!(show(&expected), show(&actual));
}

#[test]
fn big_values_round_trip() {
    let velo = TestServer::start();
    let mut conn = velo.connect();
    let value = vec![b'x'; 3 * 1024 * 1024];
    assert_eq!(conn.cmd_bytes(&[b"SET", b"big", &value]), b"+OK\r\n");
    let reply = conn.cmd(&["GET", "big"]);
    let (parsed, _) = parse(&reply).expect("reply");
    assert_eq!(parsed, Value::Blob(b'$', Some(value)));
}

#[test]
fn resp3_shapes() {
    let redis = RedisServer::start();
    let velo = TestServer::start();
    for port in [redis.port, velo.port] {
        let mut conn = Conn::connect(port);
        let hello = conn.cmd(&["HELLO", "3"]);
        let (Value::Agg(b'%', Some(fields)), _) = parse(&hello).expect("hello") else { panic!("{}", show(&hello)) };
        let keys: Vec<_> = fields.iter().step_by(2).cloned().collect();
        let expected_keys: Vec<_> = ["server", "version", "proto", "id", "mode", "role", "modules"]
            .iter()
            .map(|k| Value::Blob(b'$', Some(k.as_bytes().to_vec())))
            .collect();
        assert_eq!(keys, expected_keys, "port {port}");
        assert_eq!(fields[5], Value::Line(b':', b"3".to_vec()));
        assert_eq!(conn.cmd(&["GET", "nokey"]), b"_\r\n");
        assert_eq!(conn.cmd(&["CONFIG", "GET", "maxclients"]), b"%1\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n");
        let info = conn.cmd(&["INFO", "server"]);
        assert!(info.starts_with(b"="), "{}", show(&info));
        assert!(conn.cmd(&["CLIENT", "INFO"]).starts_with(b"="));
        assert_eq!(conn.cmd(&["HELLO", "2"]).first(), Some(&b'*'));
        assert_eq!(conn.cmd(&["GET", "nokey"]), b"$-1\r\n");
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_client_that_does_not_read_does_not_grow_the_server() {
    let velo = TestServer::start();
    let mut setup = velo.connect();
    let value = vec![b'v'; 256 * 1024];
    assert_eq!(setup.cmd_bytes(&[b"SET", b"big", &value]), b"+OK\r\n");
    let before = rss_kib(velo.pid());
    // 2000 pipelined GETs of 256 KiB = 500 MiB of replies that are never read.
    let mut slow = velo.connect();
    let mut batch = Vec::new();
    for _ in 0..2000 {
        batch.extend(command(&[b"GET", b"big"]));
    }
    slow.send(&batch);
    std::thread::sleep(Duration::from_millis(500));
    let mut other = velo.connect();
    assert_eq!(other.cmd(&["PING"]), b"+PONG\r\n");
    let after = rss_kib(velo.pid());
    assert!(after < before + 64 * 1024, "server RSS grew from {before} KiB to {after} KiB");
}

#[test]
fn client_kill_and_maxclients() {
    let velo = TestServer::start();
    let mut admin = velo.connect();
    let mut victim = velo.connect();
    let id = String::from_utf8(victim.cmd(&["CLIENT", "ID"])).unwrap();
    let id = id.trim_start_matches(':').trim().to_string();
    assert_eq!(admin.cmd(&["CLIENT", "KILL", "ID", &id]), b":1\r\n");
    victim.set_timeout(Duration::from_secs(5));
    assert!(victim.is_closed());
    assert_eq!(admin.cmd(&["CONFIG", "SET", "maxclients", "1"]), b"+OK\r\n");
    let mut refused = velo.connect();
    refused.set_timeout(Duration::from_secs(5));
    assert_eq!(refused.read_to_close(), b"-ERR max number of clients reached\r\n");
    assert_eq!(admin.cmd(&["CONFIG", "SET", "maxclients", "10000"]), b"+OK\r\n");
}

#[test]
fn a_subscriber_that_does_not_read_is_disconnected_past_its_backlog_limit() {
    let velo = TestServer::start();
    let mut subscriber = velo.connect();
    assert!(!subscriber.cmd(&["SUBSCRIBE", "firehose"]).is_empty());
    let mut publisher = velo.connect();
    let message = vec![b'm'; 1024 * 1024];
    for _ in 0..64 {
        publisher.cmd_bytes(&[b"PUBLISH", b"firehose", &message]);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let numsub = publisher.cmd(&["PUBSUB", "NUMSUB", "firehose"]);
        if numsub.ends_with(b":0\r\n") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "subscriber still connected: {}", show(&numsub));
        std::thread::sleep(Duration::from_millis(50));
    }
}
