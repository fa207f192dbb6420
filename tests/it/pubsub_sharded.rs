//! Sharded pub/sub (SSUBSCRIBE, SUNSUBSCRIBE, SPUBLISH, PUBSUB SHARDCHANNELS/SHARDNUMSUB), subscription
//! confirmations under CLIENT REPLY OFF/SKIP, and the release of XREADGROUP BLOCK 0 when its stream goes:
//! multi-client scripts run on redis-server 7.0 and on Velo, every reply compared byte for byte in RESP2
//! and RESP3.
//!
//! A script step is addressed to a numbered client (connected, and switched to RESP3 if asked, on first
//! use):
//! - `N: CMD ...` sends a command and records its reply;
//! - `N> CMD ...` sends a command without reading (no reply expected yet, or none at all);
//! - `N<` reads one reply (or push) and records it;
//! - `blocked K` waits until INFO reports K blocked clients;
//! - a leading `~` sorts the elements of the recorded reply (Redis answers in hash order).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::support::resp::{command, show, sorted};
use crate::support::{Conn, RedisServer, TestServer};

fn blocked_clients(conn: &mut Conn) -> usize {
    let info = String::from_utf8_lossy(&conn.cmd(&["INFO", "clients"])).into_owned();
    info.lines()
        .find_map(|line| line.strip_prefix("blocked_clients:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("INFO clients has blocked_clients")
}

/// Runs a script on the server at `port`; the recorded replies.
fn run(port: u16, resp3: bool, script: &[&str]) -> Vec<Vec<u8>> {
    let mut control = Conn::connect(port);
    assert_eq!(control.cmd(&["FLUSHALL"]), b"+OK\r\n");
    let mut clients: BTreeMap<usize, Conn> = BTreeMap::new();
    let mut replies = Vec::new();
    for step in script {
        if let Some(count) = step.strip_prefix("blocked ") {
            let count: usize = count.parse().expect("blocked count");
            let deadline = Instant::now() + Duration::from_secs(10);
            while blocked_clients(&mut control) != count {
                assert!(Instant::now() < deadline, "port {port}: expected {count} blocked clients");
                std::thread::sleep(Duration::from_millis(2));
            }
            continue;
        }
        let (unordered, step) = match step.strip_prefix('~') {
            Some(rest) => (true, rest),
            None => (false, *step),
        };
        let split = step.find([':', '>', '<']).expect("step has a client number");
        let n: usize = step[..split].trim().parse().expect("client number");
        let conn = clients.entry(n).or_insert_with(|| {
            let mut conn = Conn::connect(port);
            conn.set_timeout(Duration::from_secs(5));
            if resp3 {
                assert!(!conn.cmd(&["HELLO", "3"]).is_empty());
            }
            conn
        });
        let kind = step.as_bytes()[split];
        if kind != b'<' {
            let args = velo::resp::decode::split_args(step[split + 1..].trim().as_bytes()).expect("step parses");
            let args: Vec<&[u8]> = args.iter().map(|a| a.as_ref()).collect();
            conn.send(&command(&args));
        }
        if kind != b'>' {
            let reply = conn.read_reply();
            assert!(!reply.is_empty(), "port {port}: no reply for `{step}`");
            replies.push(if unordered { sorted(&reply) } else { reply });
        }
    }
    replies
}

/// Runs `script` on redis-server and Velo in RESP2 and RESP3 and compares every recorded reply.
fn compare(name: &str, script: &[&str]) {
    let redis = RedisServer::start();
    let velo = TestServer::start();
    eprintln!("{name}: redis on {}, velo on {}", redis.port, velo.port);
    for resp3 in [false, true] {
        let expected = run(redis.port, resp3, script);
        let got = run(velo.port, resp3, script);
        let recording: Vec<&&str> = script.iter().filter(|s| s.contains([':', '<'])).collect();
        for (i, (e, g)) in expected.iter().zip(&got).enumerate() {
            assert!(
                e == g,
                "{name} ({}), step {i} `{}`:\n  redis: {}\n  velo:  {}",
                if resp3 { "RESP3" } else { "RESP2" },
                recording.get(i).map_or("?", |s| s),
                show(e),
                show(g)
            );
        }
        assert_eq!(expected.len(), got.len(), "{name}: reply counts");
    }
}

#[test]
fn sharded_pubsub_as_redis() {
    compare(
        "sharded",
        &[
            "1: SSUBSCRIBE a",
            "1: SSUBSCRIBE b",
            "1: SSUBSCRIBE a",
            "1: SUBSCRIBE a",
            "1: PSUBSCRIBE p*",
            "2: SPUBLISH a hello",
            "1<",
            "2: PUBLISH a normal",
            "1<",
            "2: SPUBLISH b x",
            "1<",
            "2: SPUBLISH nobody x",
            "2: PUBLISH b not-a-shard-subscriber",
            "~2: PUBSUB SHARDCHANNELS",
            "2: PUBSUB SHARDCHANNELS a*",
            "2: PUBSUB SHARDCHANNELS a b",
            "2: PUBSUB channels a b",
            "2: PUBSUB SHARDNUMSUB a b c",
            "2: PUBSUB SHARDNUMSUB",
            "2: PUBSUB NUMSUB a b",
            "~2: PUBSUB CHANNELS",
            "2: PUBSUB NUMPAT",
            "1: PING",
            "1: GET x",
            "1: SPUBLISH a x",
            "1: SUNSUBSCRIBE b",
            "1: SUNSUBSCRIBE b",
            "1: UNSUBSCRIBE a",
            "1: PUNSUBSCRIBE",
            "1: GET x",
            "1: SUNSUBSCRIBE a",
            "1: SUNSUBSCRIBE",
            "1: GET x",
            "1: SUNSUBSCRIBE z",
            "1: SSUBSCRIBE c",
            "1: RESET",
            "1: SUNSUBSCRIBE",
            "2: PUBSUB SHARDNUMSUB c",
            "3: SSUBSCRIBE d",
            "4: SSUBSCRIBE d",
            "2: SPUBLISH d both",
            "3<",
            "4<",
            "2: PUBSUB SHARDNUMSUB d",
            "3: QUIT",
            "2: PUBSUB SHARDNUMSUB d",
            "2: SPUBLISH",
            "2: SSUBSCRIBE",
            "2: MULTI",
            "2: SSUBSCRIBE e",
            "2: SPUBLISH e m",
            "2: EXEC",
            "2: PUBSUB SHARDNUMSUB e",
            "2: COMMAND GETKEYS SSUBSCRIBE a b",
            "2: COMMAND GETKEYS SPUBLISH a b",
            "2: COMMAND GETKEYS SUNSUBSCRIBE a",
        ],
    );
}

#[test]
fn subscription_confirmations_ignore_client_reply() {
    compare(
        "reply off",
        &[
            "1> CLIENT REPLY OFF",
            "1> SUBSCRIBE c1 c2",
            "1<",
            "1<",
            "1> PSUBSCRIBE p*",
            "1<",
            "1> SSUBSCRIBE s1",
            "1<",
            "1> PING",
            "2: PUBLISH c1 m",
            "1<",
            "2: PUBLISH pq m",
            "1<",
            "2: SPUBLISH s1 m",
            "1<",
            "1> UNSUBSCRIBE c1",
            "1<",
            "1> PUNSUBSCRIBE",
            "1<",
            "1> SUNSUBSCRIBE",
            "1<",
            "1> UNSUBSCRIBE",
            "1<",
            "1> UNSUBSCRIBE",
            "1<",
            "1> GET x",
            "1: CLIENT REPLY ON",
            "1> CLIENT REPLY SKIP",
            "1> SUBSCRIBE z",
            "1<",
            "1: PING",
            "1: UNSUBSCRIBE z",
            "1: GET x",
        ],
    );
}

#[test]
fn xreadgroup_block_is_released_when_its_stream_goes() {
    for action in [
        "RENAME s t",
        "DEL s",
        "UNLINK s",
        "SET s x",
        "FLUSHDB",
        "FLUSHALL",
        "MOVE s 1",
        "SWAPDB 0 1",
        "EXPIRE s 0",
        "LPUSH s a",
        "XTRIM s MAXLEN 0",
    ] {
        compare(
            action,
            &[
                "1: XGROUP CREATE s g $ MKSTREAM",
                "2> XREADGROUP GROUP g c BLOCK 0 STREAMS s >",
                "3> XREAD BLOCK 0 STREAMS s $",
                "blocked 2",
                &format!("1: {action}"),
                // XREAD keeps waiting whatever happened to its key; XREADGROUP ends unless the key is
                // still a stream (LPUSH's WRONGTYPE, XTRIM): then DEL ends it.
                "1: DEL s",
                "2<",
                "blocked 1",
                "1: XADD s 5-1 f v",
                "3<",
                "2: PING",
            ],
        );
    }
}

/// Redis frees a client in the turn it answers QUIT: once its `+OK` is read, no other client sees its
/// subscriptions or its entry in CLIENT LIST. Repeated, since a late release shows only now and then.
#[test]
fn a_client_that_quit_is_gone_once_its_reply_is_read() {
    let velo = TestServer::start();
    let mut observer = Conn::connect(velo.port);
    // The start-up probe's connection closed without QUIT: the server frees it once it reads the EOF.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while String::from_utf8_lossy(&observer.cmd(&["CLIENT", "LIST"])).matches("id=").count() > 1 {
        assert!(std::time::Instant::now() < deadline, "the start-up probe's connection was never freed");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    for round in 0..200 {
        let mut leaving = Conn::connect(velo.port);
        leaving.cmd(&["SSUBSCRIBE", "s"]);
        leaving.cmd(&["SUBSCRIBE", "c"]);
        assert_eq!(leaving.cmd(&["QUIT"]), b"+OK\r\n");
        assert_eq!(observer.cmd(&["PUBSUB", "SHARDNUMSUB", "s"]), b"*2\r\n$1\r\ns\r\n:0\r\n", "round {round}");
        assert_eq!(observer.cmd(&["PUBSUB", "NUMSUB", "c"]), b"*2\r\n$1\r\nc\r\n:0\r\n", "round {round}");
        let list = observer.cmd(&["CLIENT", "LIST"]);
        assert_eq!(String::from_utf8_lossy(&list).matches("id=").count(), 1, "round {round}");
    }
}
