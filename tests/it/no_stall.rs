//! No request can stall the server: pathological glob patterns answer at once (KEYS, SCAN MATCH,
//! PSUBSCRIBE + PUBLISH), long commands leave other clients served, a disconnected client's long KEYS
//! stops, and SIGTERM during a long KEYS exits within seconds with the data intact. Plus glob results
//! compared with redis-server on tricky patterns.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::support::resp::{command, show};
use crate::support::{differential, Conn, TestServer};

const PATHOLOGICAL: &str = "a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b";

/// A thread that PINGs on its own connection until stopped; reports the slowest answer.
struct Pinger {
    stop: Arc<AtomicBool>,
    worst_ms: Arc<AtomicU64>,
    count: Arc<AtomicU64>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Pinger {
    fn start(port: u16) -> Pinger {
        let stop = Arc::new(AtomicBool::new(false));
        let worst_ms = Arc::new(AtomicU64::new(0));
        let count = Arc::new(AtomicU64::new(0));
        let (s, w, c) = (stop.clone(), worst_ms.clone(), count.clone());
        let thread = thread::spawn(move || {
            let mut conn = Conn::connect(port);
            conn.set_timeout(Duration::from_secs(60));
            while !s.load(Ordering::Relaxed) {
                let began = Instant::now();
                assert_eq!(conn.cmd(&["PING"]), b"+PONG\r\n");
                w.fetch_max(began.elapsed().as_millis() as u64, Ordering::Relaxed);
                c.fetch_add(1, Ordering::Relaxed);
                thread::sleep(Duration::from_millis(5));
            }
        });
        Pinger { stop, worst_ms, count, thread: Some(thread) }
    }

    /// Stops; returns (slowest PING in ms, PINGs answered).
    fn finish(mut self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().expect("running").join().expect("pinger thread");
        (self.worst_ms.load(Ordering::Relaxed), self.count.load(Ordering::Relaxed))
    }
}

/// Random patterns of nested stars, classes and escapes, biased to match long runs of `a`.
fn random_pattern(rng: &mut SmallRng) -> String {
    const PIECES: &[&str] = &["*", "a*", "*a", "?", "[a]", "[^b]", "a", "**", "[a-c]*", "\\a", "*?*"];
    let mut pattern: String = (0..rng.gen_range(5..40)).map(|_| PIECES[rng.gen_range(0..PIECES.len())]).collect();
    if rng.gen_bool(0.7) {
        pattern.push('b');
    }
    pattern
}

fn expect_fast(what: &str, began: Instant) {
    let took = began.elapsed();
    assert!(took < Duration::from_millis(500), "{what} took {took:?}");
}

#[test]
fn pathological_patterns_answer_at_once_while_ping_flows() {
    let server = TestServer::start();
    let mut conn = server.connect();
    let long_a = "a".repeat(40);
    assert_eq!(conn.cmd(&["SET", &long_a, "v"]), b"+OK\r\n");
    for batch in 0..5 {
        let mut args = vec!["MSET".to_string()];
        for i in 0..1000 {
            args.push(format!("{}{}", "a".repeat(20 + i % 20), batch * 1000 + i));
            args.push("x".into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(conn.cmd(&args), b"+OK\r\n");
    }
    let mut subscriber = server.connect();
    let mut rng = SmallRng::seed_from_u64(0x51a11);
    let mut patterns = vec![PATHOLOGICAL.to_string(), format!("{}*", PATHOLOGICAL), "*a".repeat(300) + "*b"];
    patterns.extend((0..40).map(|_| random_pattern(&mut rng)));

    let pinger = Pinger::start(server.port);
    for pattern in &patterns {
        let began = Instant::now();
        let keys = conn.cmd(&["KEYS", pattern]);
        expect_fast(&format!("KEYS {pattern}"), began);
        assert!(keys.starts_with(b"*"), "KEYS {pattern}: {}", show(&keys));

        let began = Instant::now();
        let scan = conn.cmd(&["SCAN", "0", "MATCH", pattern, "COUNT", "100000"]);
        expect_fast(&format!("SCAN MATCH {pattern}"), began);
        assert!(scan.starts_with(b"*2\r\n$1\r\n0\r\n"), "SCAN {pattern}: {}", show(&scan));

        let began = Instant::now();
        let confirmation = subscriber.cmd(&["PSUBSCRIBE", pattern]);
        assert!(confirmation.starts_with(b"*3\r\n$10\r\npsubscribe\r\n"), "{}", show(&confirmation));
        let receivers = conn.cmd(&["PUBLISH", &long_a, "hello"]);
        expect_fast(&format!("PSUBSCRIBE/PUBLISH {pattern}"), began);
        let receivers: usize =
            String::from_utf8_lossy(&receivers).trim_matches([':', '\r', '\n']).parse().expect("PUBLISH count");
        for _ in 0..receivers {
            let message = subscriber.read_reply();
            assert!(message.starts_with(b"*4\r\n$8\r\npmessage\r\n"), "{}", show(&message));
        }
    }
    let (worst, count) = pinger.finish();
    assert!(count > 0, "no PING answered");
    assert!(worst < 500, "a PING waited {worst} ms");
}

/// Loads `count` keys of `len` bytes of `a` (plus a distinct suffix).
fn load_long_keys(conn: &mut Conn, count: usize, len: usize) {
    let base = "a".repeat(len);
    for start in (0..count).step_by(500) {
        let mut args = vec!["MSET".to_string()];
        for i in start..(start + 500).min(count) {
            args.push(format!("{base}:{i}"));
            args.push(i.to_string());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(conn.cmd(&args), b"+OK\r\n");
    }
}

/// A pattern that costs about `len`² steps against each of those keys (a star, then `len` literals that
/// match everywhere but the last): bounded, but slow on purpose.
fn slow_pattern(len: usize) -> String {
    format!("*{}b", "a".repeat(len / 2))
}

/// The `calls=` and `failed_calls=` figures of `INFO commandstats` for `command`.
fn command_calls(conn: &mut Conn, command: &str) -> (u64, u64) {
    let info = String::from_utf8_lossy(&conn.cmd(&["INFO", "commandstats"])).into_owned();
    let Some(line) = info.lines().find(|l| l.starts_with(&format!("cmdstat_{command}:"))) else { return (0, 0) };
    let field = |name: &str| {
        line.split([':', ',']).find_map(|f| f.strip_prefix(name)).and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    (field("calls="), field("failed_calls="))
}

#[test]
fn long_commands_leave_others_served_and_stop_when_their_client_leaves() {
    let server = TestServer::start();
    let mut conn = server.connect();
    load_long_keys(&mut conn, 3000, 3000);
    let pattern = slow_pattern(3000);
    // Three long KEYS at once: more than the runtime's workers on this machine.
    let mut long: Vec<Conn> = (0..3).map(|_| server.connect()).collect();
    for c in &mut long {
        c.send(&command(&[b"KEYS", pattern.as_bytes()]));
    }
    let pinger = Pinger::start(server.port);
    let began = Instant::now();
    while began.elapsed() < Duration::from_secs(2) {
        let t = Instant::now();
        assert_eq!(conn.cmd(&["GET", &format!("{}:7", "a".repeat(3000))]), b"$1\r\n7\r\n");
        expect_fast("GET during long KEYS", t);
        thread::sleep(Duration::from_millis(20));
    }
    let (worst, count) = pinger.finish();
    assert!(count > 10, "only {count} PINGs answered");
    assert!(worst < 500, "a PING waited {worst} ms while long KEYS ran");
    // Still running (else this test proves nothing about cancellation), then the clients leave.
    assert_eq!(command_calls(&mut conn, "keys"), (0, 0), "the long KEYS finished too soon");
    drop(long);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (calls, failed) = command_calls(&mut conn, "keys");
        if calls == 3 {
            assert_eq!(failed, 3, "the abandoned KEYS were cut short");
            break;
        }
        assert!(Instant::now() < deadline, "abandoned KEYS still running ({calls} of 3 ended)");
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigterm_during_a_long_keys_exits_quickly_with_data_intact() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut server = TestServer::start_in(dir.path(), &["--fsync", "everysec"]);
    let mut conn = server.connect();
    load_long_keys(&mut conn, 3000, 3000);
    assert_eq!(conn.cmd(&["SET", "last", "written-before-sigterm"]), b"+OK\r\n");
    let mut keys = server.connect();
    keys.send(&command(&[b"KEYS", slow_pattern(3000).as_bytes()]));
    thread::sleep(Duration::from_millis(1000));
    assert_eq!(command_calls(&mut conn, "keys"), (0, 0), "the long KEYS finished too soon");
    let began = Instant::now();
    assert_eq!(server.terminate(), Some(0), "velo did not exit cleanly on SIGTERM");
    let took = began.elapsed();
    assert!(took < Duration::from_secs(5), "SIGTERM took {took:?} during a long KEYS");

    let server = TestServer::start_in(dir.path(), &[]);
    let mut conn = server.connect();
    assert_eq!(conn.cmd(&["DBSIZE"]), b":3001\r\n");
    assert_eq!(conn.cmd(&["GET", "last"]), b"$22\r\nwritten-before-sigterm\r\n");
    assert_eq!(conn.cmd(&["GET", &format!("{}:2999", "a".repeat(3000))]), b"$4\r\n2999\r\n");
}

#[test]
fn shutdown_command_stops_a_long_keys() {
    let mut server = TestServer::start();
    let mut conn = server.connect();
    load_long_keys(&mut conn, 3000, 3000);
    let mut keys = server.connect();
    keys.send(&command(&[b"KEYS", slow_pattern(3000).as_bytes()]));
    thread::sleep(Duration::from_millis(500));
    let began = Instant::now();
    conn.send(&command(&[b"SHUTDOWN"]));
    assert_eq!(server.wait_exit(), Some(0));
    assert!(began.elapsed() < Duration::from_secs(5), "SHUTDOWN took {:?}", began.elapsed());
}

#[test]
fn glob_results_match_redis_on_tricky_patterns() {
    let (redis, velo) = differential::servers();
    let mut script =
        vec!["MSET a v b v ab v aab v abc v [ v ] v \\ v ^ v - v a*b v a?b v A v B v Ab v x] v ]x v aa]x v z v \
         a-b v \"\" v"
            .to_string()];
    let patterns = [
        "*",
        "a*",
        "*b",
        "a?b",
        "[ab]*",
        "[^a]*",
        "[a-b]",
        "[b-a]",
        "[z-a]",
        "[",
        "[a",
        "[^",
        "[^a",
        "[]",
        "[]a]",
        "[^]",
        "[a-]x]",
        "[a-]",
        "\\",
        "a\\",
        "\\*",
        "a\\*b",
        "[\\]]",
        "[\\",
        "[a\\-z]",
        "[\\a-b]",
        "*[",
        "*\\",
        "**a**",
        "?",
        "??",
        "*?",
        "[-]",
        "[a-b-c]",
        "[]-a]",
        "[A-Z]*",
        "[^A-Z]*",
        "a**b",
        "*a*a*a*a*b",
        "\\[",
        "[[]",
        "[^^]",
    ];
    for pattern in patterns {
        let quoted = format!("\"{}\"", pattern.replace('\\', "\\\\").replace('"', "\\\""));
        script.push(format!("~KEYS {quoted}"));
    }
    let script: Vec<&str> = script.iter().map(String::as_str).collect();
    differential::compare(&redis, &velo, "glob", &script);
    // The same patterns decide pub/sub delivery.
    compare_deliveries(redis.port, velo.port, &patterns);
}

/// Subscribes one connection to every pattern, publishes to tricky channel names, and compares the
/// messages that arrive (order of patterns per channel is sorted: Redis iterates a hash table).
fn compare_deliveries(redis: u16, velo: u16, patterns: &[&str]) {
    let channels = ["a", "ab", "abc", "aab", "[", "]", "\\", "^", "-", "a*b", "A", "x]", "aa]x", "a-b", "z"];
    let mut results = Vec::new();
    for port in [redis, velo] {
        let mut sub = Conn::connect(port);
        let mut publisher = Conn::connect(port);
        for pattern in patterns {
            let reply = sub.cmd(&["PSUBSCRIBE", pattern]);
            assert!(!reply.is_empty());
        }
        let mut got = Vec::new();
        for channel in channels {
            let n = publisher.cmd(&["PUBLISH", channel, "m"]);
            let n: usize = String::from_utf8_lossy(&n).trim_matches([':', '\r', '\n']).parse().expect("count");
            let mut messages: Vec<Vec<u8>> = (0..n).map(|_| sub.read_reply()).collect();
            messages.sort();
            got.push((channel, messages));
        }
        results.push(got);
    }
    for (r, v) in results[0].iter().zip(&results[1]) {
        assert_eq!(r.1, v.1, "deliveries for channel {:?} differ", r.0);
    }
}

/// Fills `key` with `count` elements by `head` commands of 1000 elements each (`pairs`: a score or
/// field before each element), pipelined.
fn fill(conn: &mut Conn, head: &[&str], count: usize, pairs: bool) {
    let mut sent = 0;
    for start in (0..count).step_by(1000) {
        let mut args: Vec<String> = head.iter().map(|s| s.to_string()).collect();
        for i in start..(start + 1000).min(count) {
            if pairs {
                args.push(i.to_string());
            }
            args.push(format!("{}", (i as u64).wrapping_mul(2_654_435_761) % 1_000_000_007));
        }
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        conn.send(&command(&args));
        sent += 1;
    }
    for _ in 0..sent {
        assert!(!conn.read_reply().starts_with(b"-"));
    }
}

/// SORT, set algebra, ZUNIONSTORE, LRANGE and HGETALL of large collections (split in Velo) run off the
/// workers: PING keeps answering meanwhile. SORT and the set algebra check for cancellation between
/// elements: abandoned by their clients, they stop early (counted as failed).
#[test]
fn large_sort_and_set_algebra_leave_others_served_and_stop_when_abandoned() {
    let server = TestServer::start();
    let mut conn = server.connect();
    const N: usize = 100_000;
    fill(&mut conn, &["RPUSH", "list"], N, false);
    fill(&mut conn, &["SADD", "sa"], N, false);
    fill(&mut conn, &["SADD", "sb"], N / 2, false);
    fill(&mut conn, &["ZADD", "za"], N, true);
    fill(&mut conn, &["HSET", "hash"], N / 2, true);
    let pinger = Pinger::start(server.port);
    for args in [
        vec!["SORT", "list"],
        vec!["SUNIONSTORE", "su", "sa", "sb"],
        vec!["SINTER", "sa", "sb"],
        vec!["SDIFFSTORE", "sd", "sa", "sb"],
        vec!["ZUNIONSTORE", "zu", "2", "za", "sa"],
        vec!["ZINTERSTORE", "zi", "2", "za", "sb"],
        vec!["LRANGE", "list", "0", "-1"],
        vec!["HGETALL", "hash"],
    ] {
        let reply = conn.cmd(&args);
        assert!(!reply.is_empty() && !reply.starts_with(b"-"), "{args:?}: {}", show(&reply[..reply.len().min(200)]));
    }
    let (worst, count) = pinger.finish();
    assert!(count > 10, "only {count} PINGs answered");
    assert!(worst < 500, "a PING waited {worst} ms while long commands ran");
    // Abandoned: each stops at its next check instead of running to its end.
    for (name, args) in [
        ("sort", vec!["SORT", "list", "BY", "nosuchkey_*", "GET", "#", "GET", "w_*"]),
        ("sunion", vec!["SUNION", "sa", "sb", "list_is_not_here"]),
    ] {
        let (calls_before, failed_before) = command_calls(&mut conn, name);
        let mut long = server.connect();
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        long.send(&command(&args));
        drop(long);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (calls, failed) = command_calls(&mut conn, name);
            if calls == calls_before + 1 {
                assert_eq!(failed, failed_before + 1, "the abandoned {name} was cut short");
                break;
            }
            assert!(Instant::now() < deadline, "abandoned {name} still running");
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Stores `value` at `key` through RESTORE of a DUMP payload built here: filling collections of
/// hundreds of thousands of elements command by command takes minutes in a debug build.
fn restore(conn: &mut Conn, key: &str, value: &velo::rdb::Value) {
    let payload = velo::rdb::write::payload(value);
    let reply = conn.cmd_bytes(&[b"RESTORE", key.as_bytes(), b"0", &payload, b"REPLACE"]);
    assert_eq!(reply, b"+OK\r\n", "RESTORE {key}: {}", show(&reply));
}

/// `n` distinct members `m:<i*step>`.
fn members(n: usize, step: usize) -> Vec<bytes::Bytes> {
    (0..n).map(|i| bytes::Bytes::from(format!("m:{}", i * step))).collect()
}

fn sorted_set(n: usize, step: usize) -> velo::rdb::Value {
    velo::rdb::Value::SortedSet(members(n, step).into_iter().enumerate().map(|(i, m)| (m, i as f64)).collect())
}

/// Reads of whole large collections (split in Velo) check for cancellation inside the walk over their
/// parts, and so do the STORE commands while reading their sources and writing their destination:
/// abandoned by their clients, each stops early (counted as failed) and a STORE leaves its destination
/// as it was. PING keeps answering meanwhile.
#[test]
fn walks_of_huge_collections_stop_when_abandoned() {
    use velo::rdb::Value;
    use velo::types::stream::{NodeLimits, StreamId, StreamValue};
    let server = TestServer::start();
    let mut conn = server.connect();
    conn.set_timeout(Duration::from_secs(120));
    const N: usize = 200_000;
    restore(&mut conn, "list", &Value::List(members(N, 1)));
    restore(&mut conn, "hash", &Value::Hash(members(N, 1).into_iter().map(|m| (m.clone(), m)).collect()));
    restore(&mut conn, "sa", &Value::Set(members(N, 1)));
    restore(&mut conn, "sb", &Value::Set(members(N, 2)));
    restore(&mut conn, "za", &sorted_set(N, 1));
    restore(&mut conn, "zb", &sorted_set(N, 2));
    let mut stream = StreamValue::default();
    for i in 0..N as u64 {
        let fields = vec![(bytes::Bytes::from("f"), bytes::Bytes::from(i.to_string()))];
        stream.append(StreamId { ms: i + 1, seq: 0 }, fields, NodeLimits::default());
    }
    restore(&mut conn, "stream", &Value::Stream(Box::new(stream)));
    assert_eq!(conn.cmd(&["SADD", "sdest", "kept"]), b":1\r\n");
    assert_eq!(conn.cmd(&["ZADD", "zdest", "1", "kept"]), b":1\r\n");

    let pinger = Pinger::start(server.port);
    for (name, args) in [
        ("lrange", vec!["LRANGE", "list", "0", "-1"]),
        ("lpos", vec!["LPOS", "list", "nothing", "COUNT", "0"]),
        ("hgetall", vec!["HGETALL", "hash"]),
        ("hkeys", vec!["HKEYS", "hash"]),
        ("smembers", vec!["SMEMBERS", "sa"]),
        ("zrange", vec!["ZRANGE", "za", "0", "-1", "WITHSCORES"]),
        ("xrange", vec!["XRANGE", "stream", "-", "+"]),
        ("xrevrange", vec!["XREVRANGE", "stream", "+", "-"]),
        ("sunionstore", vec!["SUNIONSTORE", "sdest", "sa", "sb"]),
        ("zunionstore", vec!["ZUNIONSTORE", "zdest", "2", "za", "zb"]),
        ("zinterstore", vec!["ZINTERSTORE", "znew", "2", "za", "zb"]),
    ] {
        let (calls_before, failed_before) = command_calls(&mut conn, name);
        let mut long = server.connect();
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        long.send(&command(&args));
        drop(long);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (calls, failed) = command_calls(&mut conn, name);
            if calls == calls_before + 1 {
                assert_eq!(failed, failed_before + 1, "the abandoned {name} ran to its end");
                break;
            }
            assert!(Instant::now() < deadline, "abandoned {name} still running");
            thread::sleep(Duration::from_millis(20));
        }
    }
    let (worst, count) = pinger.finish();
    assert!(count > 10, "only {count} PINGs answered");
    assert!(worst < 500, "a PING waited {worst} ms while long commands ran");
    // The abandoned STOREs left their destinations as they were.
    assert_eq!(conn.cmd(&["SMEMBERS", "sdest"]), b"*1\r\n$4\r\nkept\r\n");
    assert_eq!(conn.cmd(&["ZRANGE", "zdest", "0", "-1"]), b"*1\r\n$4\r\nkept\r\n");
    assert_eq!(conn.cmd(&["EXISTS", "znew"]), b":0\r\n");
    // Not abandoned, the same commands complete.
    assert_eq!(conn.cmd(&["ZINTERSTORE", "znew", "2", "za", "zb"]), format!(":{}\r\n", N / 2).as_bytes());
    assert_eq!(conn.cmd(&["SUNIONSTORE", "sdest", "sa", "sb"]), format!(":{}\r\n", N + N / 2).as_bytes());
}

/// SIGTERM while a ZUNIONSTORE of two large sorted sets reads its sources: the server exits within a
/// few seconds (it took the whole command's length before the walks checked), and the destination
/// is unchanged after restart.
#[test]
fn sigterm_during_a_huge_zunionstore_exits_quickly_leaving_the_destination_unchanged() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut server = TestServer::start_in(dir.path(), &["--fsync", "everysec"]);
    let mut conn = server.connect();
    conn.set_timeout(Duration::from_secs(120));
    const N: usize = 200_000;
    restore(&mut conn, "za", &sorted_set(N, 1));
    restore(&mut conn, "zb", &sorted_set(N, 3));
    assert_eq!(conn.cmd(&["ZADD", "zdest", "1", "kept"]), b":1\r\n");
    // A fresh start: the sources are read from disk, not from the caches RESTORE filled.
    assert_eq!(server.terminate(), Some(0));
    let mut server = TestServer::start_in(dir.path(), &["--fsync", "everysec"]);
    let mut long = server.connect();
    long.set_timeout(Duration::from_secs(60));
    long.send(&command(&[b"ZUNIONSTORE", b"zdest", b"2", b"za", b"zb"]));
    thread::sleep(Duration::from_millis(500));
    let began = Instant::now();
    assert_eq!(server.terminate(), Some(0), "velo did not exit cleanly on SIGTERM");
    let took = began.elapsed();
    assert!(took < Duration::from_secs(4), "SIGTERM took {took:?} during a long ZUNIONSTORE");
    let reply = long.read_to_close();
    assert!(
        reply.is_empty() || reply.starts_with(b"-ERR command aborted: the server is shutting down"),
        "{}",
        show(&reply)
    );

    let server = TestServer::start_in(dir.path(), &[]);
    let mut conn = server.connect();
    assert_eq!(conn.cmd(&["ZRANGE", "zdest", "0", "-1", "WITHSCORES"]), b"*2\r\n$4\r\nkept\r\n$1\r\n1\r\n");
    assert_eq!(conn.cmd(&["ZCARD", "za"]), format!(":{N}\r\n").as_bytes());
}

/// Counts of the reply's top-level array (`*N`), for replies whose picks are random.
fn array_len(reply: &[u8]) -> usize {
    let text = String::from_utf8_lossy(reply);
    let head = text.split("\r\n").next().unwrap_or_default();
    head.strip_prefix('*').and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("not an array: {}", show(reply)))
}

/// A negative count repeats picks, so the client chooses the reply's size: `HRANDFIELD h -999999999` on a
/// one-field hash once built a billion entries in memory and the kernel killed the server. Past the
/// client's `client-output-buffer-limit` the client is closed (as Redis closes it); with no limit (the
/// default), Velo refuses past its bound with an error. Usual counts answer as Redis does.
#[test]
fn repeated_random_picks_are_bounded() {
    let velo = TestServer::start();
    let redis = crate::support::RedisServer::start();
    for port in [velo.port, redis.port] {
        let mut conn = Conn::connect(port);
        conn.cmd(&["HSET", "h", "a", "b"]);
        conn.cmd(&["SADD", "s", "m"]);
        conn.cmd(&["ZADD", "z", "1", "m"]);
        // Usual counts: the same reply sizes on both servers; a missing key is an empty array.
        assert_eq!(array_len(&conn.cmd(&["HRANDFIELD", "h", "-5000", "WITHVALUES"])), 10000, "port {port}");
        assert_eq!(array_len(&conn.cmd(&["SRANDMEMBER", "s", "-5000"])), 5000, "port {port}");
        assert_eq!(array_len(&conn.cmd(&["ZRANDMEMBER", "z", "-5000"])), 5000, "port {port}");
        assert_eq!(conn.cmd(&["HRANDFIELD", "missing", "-999999999"]), b"*0\r\n", "port {port}");
        assert_eq!(conn.cmd(&["CONFIG", "SET", "client-output-buffer-limit", "normal 1000000 0 0"]), b"+OK\r\n");
        for huge in [
            &["HRANDFIELD", "h", "-999999999"][..],
            &["SRANDMEMBER", "s", "-999999999"][..],
            &["ZRANDMEMBER", "z", "-999999999", "WITHSCORES"][..],
        ] {
            let mut victim = Conn::connect(port);
            victim.set_timeout(Duration::from_secs(60));
            let args: Vec<&[u8]> = huge.iter().map(|a| a.as_bytes()).collect();
            victim.send(&command(&args));
            // Redis writes part of the reply before it closes the client; Velo closes it at once.
            let got = victim.read_to_close();
            assert!(got.len() < 64 << 20, "port {port}: {} bytes before the close", got.len());
            assert_eq!(conn.cmd(&["PING"]), b"+PONG\r\n", "port {port}: the server is still up");
        }
        conn.cmd(&["CONFIG", "SET", "client-output-buffer-limit", "normal 0 0 0"]);
    }
    // No limit: Velo refuses what it cannot hold, and keeps serving.
    let mut conn = Conn::connect(velo.port);
    for huge in
        [["HRANDFIELD", "h", "-999999999"], ["SRANDMEMBER", "s", "-999999999"], ["ZRANDMEMBER", "z", "-999999999"]]
    {
        let reply = conn.cmd(&huge);
        assert!(reply.starts_with(b"-ERR reply too large"), "{huge:?}: {}", show(&reply));
    }
    let big = "x".repeat(1000);
    conn.cmd(&["HSET", "wide", "f", &big]);
    let reply = conn.cmd(&["HRANDFIELD", "wide", "-1000000", "WITHVALUES"]);
    assert!(reply.starts_with(b"-ERR reply too large"), "{}", show(&reply));
    assert_eq!(conn.cmd(&["PING"]), b"+PONG\r\n");
}
