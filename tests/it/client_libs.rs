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
