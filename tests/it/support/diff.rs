//! The differential harness: the same script goes to `redis-server` and to `velo serve`, and the raw
//! reply bytes must be identical (errors included), in RESP2 and in RESP3. A line starting with `~` has an
//! unordered reply (its elements are sorted before comparing); `!` runs on both without comparing; `-`
//! expects no reply at all (CLIENT REPLY OFF/SKIP).

use super::resp::{command, show, sorted};
use super::{Conn, RedisServer, TestServer};

/// Runs `script` on both servers over fresh connections, RESP2 then RESP3, comparing every reply.
pub fn compare(redis: &RedisServer, velo: &TestServer, name: &str, script: &[&str]) {
    for resp3 in [false, true] {
        let mut replies: Vec<Vec<Vec<u8>>> = Vec::new();
        for port in [redis.port, velo.port] {
            let mut conn = Conn::connect(port);
            assert_eq!(conn.cmd(&["FLUSHALL"]), b"+OK\r\n");
            if resp3 {
                assert!(!conn.cmd(&["HELLO", "3"]).is_empty());
            }
            let mut out = Vec::new();
            for line in script {
                let (mode, text) = match line.as_bytes().first() {
                    Some(b'~') => (b'~', &line[1..]),
                    Some(b'!') => (b'!', &line[1..]),
                    Some(b'-') => (b'-', &line[1..]),
                    _ => (b'=', *line),
                };
                let args = velo::resp::decode::split_args(text.as_bytes()).expect("script line parses");
                let args: Vec<&[u8]> = args.iter().map(|a| a.as_ref()).collect();
                conn.send(&command(&args));
                if mode == b'-' {
                    out.push(Vec::new());
                    continue;
                }
                let reply = conn.read_reply();
                out.push(match mode {
                    b'~' => sorted(&reply),
                    b'!' => Vec::new(),
                    _ => reply,
                });
            }
            replies.push(out);
        }
        for (i, line) in script.iter().enumerate() {
            assert!(
                replies[0][i] == replies[1][i],
                "{name} ({}), `{line}`:\n  redis: {}\n  velo:  {}",
                if resp3 { "RESP3" } else { "RESP2" },
                show(&replies[0][i]),
                show(&replies[1][i])
            );
        }
    }
}

/// A redis-server and a Velo server, both started on free ports.
pub fn servers() -> (RedisServer, TestServer) {
    (RedisServer::start(), TestServer::start())
}
