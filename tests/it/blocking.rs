//! Blocking commands (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BZPOPMIN, BZPOPMAX, CLIENT UNBLOCK): multi-client
//! scenarios run on redis-server 7.0 and on Velo, comparing every reply in RESP2 and RESP3; plus timing
//! and disconnection checks.
//!
//! A scenario is a list of steps, each addressed to a numbered client (connected on first use):
//! - `N: CMD ...` sends a command and records its reply;
//! - `N> CMD ...` sends a command without reading (a command that blocks);
//! - `N<` reads one reply and records it;
//! - `blocked K` waits until INFO reports K blocked clients (so that no step races a client that has not
//!   blocked yet: no fixed sleeps);
//! - `close N` closes client N's connection.
//!
//! `$N` in a command is replaced by client N's id (CLIENT UNBLOCK).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::support::resp::{command, show};
use crate::support::{Conn, RedisServer, TestServer};

/// The blocked_clients figure of INFO.
fn blocked_clients(conn: &mut Conn) -> usize {
    let info = String::from_utf8_lossy(&conn.cmd(&["INFO", "clients"])).into_owned();
    info.lines()
        .find_map(|line| line.strip_prefix("blocked_clients:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("INFO clients has blocked_clients")
}

/// Waits until `count` clients are blocked (10 s at most).
fn wait_blocked(control: &mut Conn, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = blocked_clients(control);
        if now == count {
            return;
        }
        assert!(Instant::now() < deadline, "expected {count} blocked clients, INFO says {now}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Reads a recorded step's reply: a step that gets none (a client blocked when the script expects a
/// reply) fails the test rather than comparing two silences.
fn read(conn: &mut Conn, port: u16, step: &str) -> Vec<u8> {
    let reply = conn.read_reply();
    assert!(!reply.is_empty(), "port {port}: no reply for `{step}`");
    reply
}

/// Runs a scenario on the server at `port`; the recorded replies, one per recording step.
fn run(port: u16, resp3: bool, script: &[&str]) -> Vec<Vec<u8>> {
    let mut control = Conn::connect(port);
    assert_eq!(control.cmd(&["FLUSHALL"]), b"+OK\r\n");
    let mut clients: BTreeMap<usize, (Conn, String)> = BTreeMap::new();
    let mut replies = Vec::new();
    for step in script {
        if let Some(count) = step.strip_prefix("blocked ") {
            wait_blocked(&mut control, count.parse().expect("blocked count"));
            continue;
        }
        if let Some(n) = step.strip_prefix("close ") {
            clients.remove(&n.parse::<usize>().expect("client number"));
            continue;
        }
        let split = step.find([':', '>', '<']).expect("step has a client number");
        let n: usize = step[..split].trim().parse().expect("client number");
        if let std::collections::btree_map::Entry::Vacant(entry) = clients.entry(n) {
            let mut conn = Conn::connect(port);
            conn.set_timeout(Duration::from_secs(10));
            if resp3 {
                assert!(!conn.cmd(&["HELLO", "3"]).is_empty());
            }
            let id = String::from_utf8_lossy(&conn.cmd(&["CLIENT", "ID"])).trim_matches([':', '\r', '\n']).to_string();
            entry.insert((conn, id));
        }
        let ids: BTreeMap<usize, String> = clients.iter().map(|(n, (_, id))| (*n, id.clone())).collect();
        let (conn, _) = clients.get_mut(&n).expect("connected above");
        let kind = step.as_bytes()[split];
        if kind == b'<' {
            replies.push(read(conn, port, step));
            continue;
        }
        let mut text = step[split + 1..].trim().to_string();
        for (m, id) in ids.iter().rev() {
            text = text.replace(&format!("${m}"), id);
        }
        let args = velo::resp::decode::split_args(text.as_bytes()).expect("step parses");
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_ref()).collect();
        conn.send(&command(&args));
        if kind == b':' {
            replies.push(read(conn, port, step));
        }
    }
    replies
}

/// Runs `script` on redis-server and on Velo, RESP2 then RESP3, and asserts equal replies.
fn compare(redis: &RedisServer, velo: &TestServer, name: &str, script: &[&str]) {
    for resp3 in [false, true] {
        let expected = run(redis.port, resp3, script);
        let actual = run(velo.port, resp3, script);
        let recording: Vec<&&str> =
            script.iter().filter(|s| s.find([':', '>', '<']).is_some_and(|at| s.as_bytes()[at] != b'>')).collect();
        assert_eq!(expected.len(), actual.len());
        for (i, (want, got)) in expected.iter().zip(&actual).enumerate() {
            assert!(
                want == got,
                "{name} ({}), step `{}`:\n  redis: {}\n  velo:  {}",
                if resp3 { "RESP3" } else { "RESP2" },
                recording.get(i).map_or("?", |s| s),
                show(want),
                show(got)
            );
        }
    }
}

fn servers() -> (RedisServer, TestServer) {
    (RedisServer::start(), TestServer::start())
}

#[test]
fn arguments_errors_and_immediate_replies() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "arguments",
        &[
            "0: BLPOP k abc",
            "0: BLPOP k -1",
            "0: BLPOP k inf",
            "0: BLPOP k 1e16",
            "0: BLPOP k nan",
            "0: BLPOP k \" 1\"",
            "0: BLPOP k",
            "0: BLPOP k 0.0001",
            "0: BLPOP k 0x0.001p-20",
            "0: BRPOP k 0.01",
            "0: BLMOVE k d LEFT UP x",
            "0: BLMOVE k d LEFT LEFT x",
            "0: BLMOVE k d LEFT LEFT 0.01",
            "0: BRPOPLPUSH k d 0.01",
            "0: BRPOPLPUSH k d -1",
            "0: BZPOPMIN k x",
            "0: BZPOPMAX k 0.01",
            "0: SET s x",
            "0: RPUSH l a b c",
            "0: ZADD z 1 one 2 two 3 three",
            "0: BLPOP s l 0",
            "0: BLPOP missing l s 0",
            "0: BRPOP missing l 0",
            "0: BLPOP z 0",
            "0: BLMOVE l s LEFT LEFT 0",
            "0: BLMOVE s l LEFT LEFT 0",
            "0: BLMOVE missing s LEFT LEFT 0.01",
            "0: BLMOVE l l LEFT RIGHT 0",
            "0: BRPOPLPUSH l d 0",
            "0: LRANGE l 0 -1",
            "0: LRANGE d 0 -1",
            "0: BZPOPMIN s z 0",
            "0: BZPOPMIN missing z 0",
            "0: BZPOPMAX z 0",
            "0: BZPOPMAX z 0",
            "0: EXISTS z",
            "0: BZPOPMIN s 0",
            "0: CLIENT UNBLOCK abc",
            "0: CLIENT UNBLOCK 99999",
            "0: CLIENT UNBLOCK -1 bad",
            "0: CLIENT UNBLOCK 1 timeout x",
            "0: CLIENT UNBLOCK 1 Error",
        ],
    );
}

#[test]
fn inside_multi_blocking_commands_do_not_block() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "multi",
        &[
            "0: MULTI",
            "0: BLPOP k 0",
            "0: BRPOP k 0",
            "0: BRPOPLPUSH k d 0",
            "0: BLMOVE k d LEFT LEFT 0",
            "0: BZPOPMIN z 0",
            "0: BZPOPMAX z 0",
            "0: RPUSH k a b",
            "0: BLPOP k 0",
            "0: BLMOVE k d RIGHT LEFT 0",
            "0: BLPOP k -1",
            "0: BLPOP k nope",
            "0: EXEC",
            "0: LRANGE d 0 -1",
        ],
    );
}

#[test]
fn timeouts_reply_null_after_the_timeout() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "timeouts",
        &[
            "1: BLPOP k 0.05",
            "1: BRPOP a b c 0.05",
            "1: BLMOVE k d LEFT LEFT 0.05",
            "1: BRPOPLPUSH k d 0.05",
            "1: BZPOPMIN z 0.05",
            "1: BZPOPMAX z y 0.05",
        ],
    );
    // Timing, on Velo: never early, and not much late.
    let mut conn = velo.connect();
    for cmd in [&["BLPOP", "k", "0.3"][..], &["BLMOVE", "k", "d", "LEFT", "LEFT", "0.3"], &["BZPOPMIN", "z", "0.3"]] {
        let began = Instant::now();
        assert_eq!(conn.cmd(cmd), b"*-1\r\n", "{cmd:?}");
        let elapsed = began.elapsed();
        assert!(elapsed >= Duration::from_millis(295), "{cmd:?} returned after {elapsed:?}");
        assert!(elapsed < Duration::from_secs(3), "{cmd:?} returned after {elapsed:?}");
    }
    assert_eq!(blocked_clients(&mut conn), 0);
}

#[test]
fn waiters_are_served_in_blocking_order() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "fifo",
        &[
            "1> BLPOP k 0",
            "blocked 1",
            "2> BRPOP k 0",
            "blocked 2",
            "3> BLPOP other k 0",
            "blocked 3",
            "0: RPUSH k a b c d",
            "1<",
            "2<",
            "3<",
            "0: LRANGE k 0 -1",
        ],
    );
    compare(
        &redis,
        &velo,
        "one push of several elements, several waiters",
        &[
            "1> BLPOP k 0",
            "blocked 1",
            "2> BLPOP k 0",
            "blocked 2",
            "3> BLPOP k 0",
            "blocked 3",
            "0: LPUSH k x y",
            "1<",
            "2<",
            "blocked 1",
            "0: LLEN k",
            "0: LPUSH k z",
            "3<",
            "0: EXISTS k",
        ],
    );
    compare(
        &redis,
        &velo,
        "sorted sets",
        &[
            "1> BZPOPMIN z 0",
            "blocked 1",
            "2> BZPOPMAX z 0",
            "blocked 2",
            "3> BZPOPMIN z 0",
            "blocked 3",
            "0: ZADD z 1.5 a 2 b 3e10 c -inf d",
            "1<",
            "2<",
            "3<",
            "0: ZRANGE z 0 -1 WITHSCORES",
        ],
    );
}

#[test]
fn a_pushed_element_taken_by_a_waiter_is_not_seen_by_others() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "consumed",
        &[
            "1> BLPOP k 0",
            "blocked 1",
            // Pipelined: the push's client must already see the list emptied.
            "0> RPUSH k v",
            "0> LLEN k",
            "0> EXISTS k",
            "0<",
            "0<",
            "0<",
            "1<",
            "2: LPOP k",
        ],
    );
}

#[test]
fn a_client_waiting_on_several_keys_is_served_from_the_first_made_ready() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "multi-key",
        &[
            "1> BLPOP a b c 0",
            "blocked 1",
            "0: MULTI",
            "0: RPUSH c 1",
            "0: RPUSH a 2",
            "0: EXEC",
            "1<",
            "0: LRANGE a 0 -1",
            "0: DEL a",
            "1> BRPOP a b c 0",
            "blocked 1",
            "0: MULTI",
            "0: SET a x",
            "0: RPUSH b 1",
            "0: DEL a",
            "0: RPUSH a 2",
            "0: EXEC",
            "1<",
            "0: LRANGE a 0 -1",
        ],
    );
}

#[test]
fn blmove_wakes_waiters_of_its_destination() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "chain",
        &[
            "1> BLPOP c 0",
            "blocked 1",
            "2> BRPOPLPUSH b c 0",
            "blocked 2",
            "3> BLMOVE a b LEFT RIGHT 0",
            "blocked 3",
            "0: RPUSH a x y",
            "3<",
            "2<",
            "1<",
            "0: LRANGE a 0 -1",
            "0: EXISTS b c",
        ],
    );
    compare(
        &redis,
        &velo,
        "destination of the wrong type",
        &[
            "1> BLMOVE src dst LEFT RIGHT 0",
            "blocked 1",
            "0: SET dst str",
            "0: RPUSH src 1",
            "1<",
            "0: LRANGE src 0 -1",
            "1> BLMOVE src2 src2 LEFT RIGHT 0",
            "blocked 1",
            "0: RPUSH src2 a b",
            "1<",
            "0: LRANGE src2 0 -1",
        ],
    );
}

#[test]
fn keys_of_another_type_or_database_do_not_wake() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "types and databases",
        &[
            "1> BLPOP k 0",
            "blocked 1",
            "0: SET k str",
            "0: DEL k",
            "0: ZADD k 1 m",
            "0: SELECT 1",
            "0: RPUSH k other-db",
            "blocked 1",
            "0: SELECT 0",
            "0: DEL k",
            "0: RPUSH k v",
            "1<",
            "2> BZPOPMIN z 0",
            "blocked 1",
            "0: RPUSH z not-a-zset",
            "0: DEL z",
            "0: ZADD z 7 m",
            "2<",
            "2> BLPOP moved 0",
            "blocked 1",
            "0: SELECT 1",
            "0: RPUSH moved v",
            "0: SWAPDB 0 1",
            "2<",
            "0: SELECT 0",
            "0: EXISTS moved",
        ],
    );
    compare(
        &redis,
        &velo,
        "list and sorted-set waiters on one key",
        &[
            "1> BLPOP k 0",
            "blocked 1",
            "2> BZPOPMIN k 0",
            "blocked 2",
            "3> BRPOP k 0",
            "blocked 3",
            "0: ZADD k 1 a 2 b",
            "2<",
            "blocked 2",
            "0: DEL k",
            "0: RPUSH k x",
            "1<",
            "blocked 1",
            "0: RPUSH k y",
            "3<",
        ],
    );
}

#[test]
fn keys_created_by_rename_move_copy_and_store_commands_wake() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "creators",
        &[
            "1> BLPOP k 0",
            "blocked 1",
            "0: RPUSH src a",
            "0: RENAME src k",
            "1<",
            "1> BRPOP k 0",
            "blocked 1",
            "0: SELECT 1",
            "0: RPUSH k x",
            "0: MOVE k 0",
            "1<",
            "0: RPUSH c y",
            "1> BLPOP k2 0",
            "blocked 1",
            "0: COPY c k2 DB 0",
            "1<",
            "0: SELECT 0",
            "1> BZPOPMAX z 0",
            "blocked 1",
            "0: ZADD src 1 a 2 b 3 c",
            "0: ZRANGESTORE z src 0 1",
            "1<",
            "1> BZPOPMIN g 0",
            "blocked 1",
            "0: GEOADD g 13.361389 38.115556 Palermo",
            "1<",
            "0: DBSIZE",
        ],
    );
}

#[test]
fn client_unblock_and_client_list() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "unblock",
        &[
            "0: CLIENT UNBLOCK $1",
            "1> BLPOP k 0",
            "blocked 1",
            "0: CLIENT UNBLOCK $1",
            "1<",
            "1> BLMOVE k d LEFT LEFT 0",
            "blocked 1",
            "0: CLIENT UNBLOCK $1 TIMEOUT",
            "1<",
            "1> BZPOPMIN k 0",
            "blocked 1",
            "0: CLIENT UNBLOCK $1 bad",
            "0: CLIENT UNBLOCK $1 ERROR",
            "1<",
            "0: CLIENT UNBLOCK $1 ERROR",
            "1: PING",
        ],
    );
    // The UNBLOCKED errors count in INFO errorstats (once per RESP2 and RESP3 run).
    for port in [redis.port, velo.port] {
        let errors = String::from_utf8_lossy(&Conn::connect(port).cmd(&["INFO", "errorstats"])).into_owned();
        assert!(errors.contains("errorstat_UNBLOCKED:count=2\r\n"), "port {port}: {errors}");
    }
    // CLIENT LIST shows the blocked client with flag b and its command.
    for port in [redis.port, velo.port] {
        let mut control = Conn::connect(port);
        let mut blocked = Conn::connect(port);
        let id = String::from_utf8_lossy(&blocked.cmd(&["CLIENT", "ID"])).trim_matches([':', '\r', '\n']).to_string();
        blocked.send(&command(&[b"BRPOP", b"nothing", b"0"]));
        wait_blocked(&mut control, 1);
        let line = String::from_utf8_lossy(&control.cmd(&["CLIENT", "LIST", "ID", &id])).into_owned();
        assert!(line.contains(" flags=b ") && line.contains(" cmd=brpop "), "port {port}: {line}");
        assert_eq!(control.cmd(&["CLIENT", "UNBLOCK", &id]), b":1\r\n");
        assert_eq!(blocked.read_reply(), b"*-1\r\n");
        let line = String::from_utf8_lossy(&control.cmd(&["CLIENT", "LIST", "ID", &id])).into_owned();
        assert!(line.contains(" flags=N "), "port {port}: {line}");
    }
}

#[test]
fn a_blocked_client_that_disconnects_is_removed() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "disconnect",
        &[
            "1> BLPOP k 0",
            "blocked 1",
            "2> BLPOP k 0",
            "blocked 2",
            "close 1",
            "blocked 1",
            "0: RPUSH k a b",
            "2<",
            "0: LRANGE k 0 -1",
            "close 2",
            "blocked 0",
        ],
    );
}

#[test]
fn commands_pipelined_behind_a_blocked_one_run_after_it() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "pipeline",
        &[
            "1> BLPOP k 0",
            "1> RPUSH mine 1",
            "blocked 1",
            "0: EXISTS mine",
            "0: RPUSH k v",
            "1<",
            "1<",
            "0: EXISTS mine",
        ],
    );
}

/// Parses a `*2 key element` reply; `None` for a null reply.
fn popped_element(reply: &[u8]) -> Option<String> {
    if reply == b"*-1\r\n" {
        return None;
    }
    let text = String::from_utf8_lossy(reply).into_owned();
    let element = text.split("\r\n").nth(4).unwrap_or_else(|| panic!("unexpected reply {}", show(reply)));
    Some(element.to_string())
}

#[test]
fn concurrent_pushes_moves_and_pops_lose_and_duplicate_nothing() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let velo = TestServer::start();
    let port = velo.port;
    let producing = Arc::new(AtomicBool::new(true));
    // Consumers pop from three lists (some with timeouts short enough to race their own serving); movers
    // wait on k2 and push to k3, so serving makes k3 ready in the same pass.
    let mut waiters = Vec::new();
    for n in 0..6 {
        let producing = producing.clone();
        waiters.push(std::thread::spawn(move || {
            let mut conn = Conn::connect(port);
            let timeout = if n % 2 == 0 { "0.001" } else { "0.3" };
            let mut got = Vec::new();
            loop {
                let reply = if n < 4 {
                    conn.cmd(&["BLPOP", "k1", "k2", "k3", timeout])
                } else {
                    conn.cmd(&["BRPOPLPUSH", "k2", "k3", timeout])
                };
                if n < 4 {
                    match popped_element(&reply) {
                        Some(element) => got.push(element),
                        None if !producing.load(Ordering::SeqCst) => return got,
                        None => {}
                    }
                } else if reply == b"*-1\r\n" && !producing.load(Ordering::SeqCst) {
                    return got;
                }
            }
        }));
    }
    let mut producers = Vec::new();
    for p in 0..3 {
        producers.push(std::thread::spawn(move || {
            let mut conn = Conn::connect(port);
            let mut pushed = Vec::new();
            for i in 0..1000 {
                let key = ["k1", "k2", "k3"][(i + p) % 3];
                let element = format!("{p}-{i}");
                let verb = if i % 2 == 0 { "RPUSH" } else { "LPUSH" };
                let reply = conn.cmd(&[verb, key, &element]);
                assert!(reply.starts_with(b":"), "{}", show(&reply));
                pushed.push(element);
            }
            pushed
        }));
    }
    let mut pushed: Vec<String> = producers.into_iter().flat_map(|p| p.join().expect("producer")).collect();
    producing.store(false, Ordering::SeqCst);
    let mut received: Vec<String> = waiters.into_iter().flat_map(|w| w.join().expect("waiter")).collect();
    let mut conn = velo.connect();
    wait_blocked(&mut conn, 0);
    for key in ["k1", "k2", "k3"] {
        while let Some(element) = popped_element(&conn.cmd(&["BLPOP", key, "0.001"])) {
            received.push(element);
        }
    }
    pushed.sort();
    received.sort();
    assert_eq!(received.len(), pushed.len(), "every element popped once");
    assert_eq!(received, pushed);
}

#[test]
fn blmpop_and_bzmpop_pop_counts_from_the_first_ready_key() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "blmpop and bzmpop",
        &[
            "0: BLMPOP 0 0 k LEFT",
            "0: BLMPOP 0 2 k LEFT",
            "0: BLMPOP -1 1 k LEFT",
            "0: BLMPOP 0 1 k MIDDLE",
            "0: BLMPOP 0 1 k LEFT COUNT 0",
            "0: BZMPOP 0 1 z MIN COUNT -1",
            "0: RPUSH ready a b c",
            "0: BLMPOP 0 2 missing ready RIGHT COUNT 2",
            "0: BLMPOP 0.01 1 missing LEFT",
            "0: SET str x",
            "0: BLMPOP 0 2 str ready LEFT",
            "0: BZMPOP 0 1 str MIN",
            "1> BLMPOP 0 2 l1 l2 LEFT COUNT 3",
            "blocked 1",
            "2> BZMPOP 0 2 z1 z2 MAX COUNT 2",
            "blocked 2",
            "3> BLMPOP 0 1 l2 RIGHT",
            "blocked 3",
            "0: RPUSH l2 x y z w",
            "1<",
            "3<",
            "0: ZADD z2 1 a 2 b 3 c",
            "2<",
            "0: ZRANGE z2 0 -1 WITHSCORES",
            "0: MULTI",
            "0: BLMPOP 0 1 nothing LEFT",
            "0: BZMPOP 0 1 nothing MIN",
            "0: EXEC",
        ],
    );
}

#[test]
fn xread_and_xreadgroup_block_until_an_entry_arrives() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "xread block",
        &[
            "0: XREAD BLOCK 10 STREAMS s $",
            "0: XREAD BLOCK -1 STREAMS s $",
            "0: XREAD BLOCK abc STREAMS s $",
            "1> XREAD BLOCK 0 STREAMS s $",
            "blocked 1",
            "2> XREAD COUNT 5 BLOCK 0 STREAMS other s 0-0 $",
            "blocked 2",
            "0: XADD s 1-1 f v",
            "1<",
            "2<",
            "0: XADD s 2-1 f w",
            "3: XREAD BLOCK 0 STREAMS s 1-1",
            "0: XGROUP CREATE s g $",
            "4> XREADGROUP GROUP g alice BLOCK 0 STREAMS s >",
            "blocked 1",
            "5> XREADGROUP GROUP g bob BLOCK 0 STREAMS s >",
            "blocked 2",
            "0: XADD s 3-1 f x",
            "4<",
            "blocked 1",
            "0: XADD s 4-1 f y",
            "5<",
            "0: XPENDING s g",
            "0: XREADGROUP GROUP g alice BLOCK 0 STREAMS s 0",
            "0: MULTI",
            "0: XREAD BLOCK 0 STREAMS s $",
            "0: EXEC",
        ],
    );
}
