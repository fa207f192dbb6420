//! The differential harness: the same script to `redis-server` and to Velo, raw reply bytes compared in
//! RESP2 and RESP3. A line starting with `~` has an unordered reply (its elements are sorted before
//! comparing); `!` runs on both without comparing; `-` expects no reply at all (CLIENT REPLY OFF/SKIP).

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

/// A fresh redis-server and Velo, on free ports.
pub fn servers() -> (RedisServer, TestServer) {
    (RedisServer::start(), TestServer::start())
}

/// The first seed of a randomised differential test: `VELO_DIFF_SEED` when set (to reproduce a run);
/// else `ci_fixed` under `CI=true`, so that a red CI means a regression rather than a newly drawn
/// sequence; else the clock, so that local runs keep exploring new sequences.
pub fn seed_base(ci_fixed: u64) -> u64 {
    std::env::var("VELO_DIFF_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        if std::env::var("CI").is_ok_and(|ci| ci == "true") {
            ci_fixed
        } else {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
        }
    })
}
