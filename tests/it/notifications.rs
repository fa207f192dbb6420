//! Keyspace notifications, differentially: the same command sequences run against redis-server and Velo
//! with a subscriber on `__key*__:*`; the messages it receives (raw bytes, order included) must be
//! identical. Random sequences cover every type, large (split) collections, transactions, MOVE/COPY across
//! databases, and expirations (found on access or by the active cycle); fixed scenarios cover blocked
//! clients served by a push, RESP3 push shape and CONFIG's parsing.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::support::resp::{command, show};
use super::support::{Conn, RedisServer, TestServer};

/// One step of a scenario.
enum Step {
    /// A command on the main connection (its reply is read and ignored: only the events are compared).
    Cmd(Vec<String>),
    /// A pause, for expirations.
    Sleep(u64),
}

fn cmd(parts: &[&str]) -> Step {
    Step::Cmd(parts.iter().map(|s| s.to_string()).collect())
}

/// Channel the end marker is published on; it matches the subscriber's pattern.
const MARKER: &str = "__keyend__:marker";

/// Channel of the per-step markers of [`events_marked`].
const STEP_MARKER: &str = "__keystep__:marker";

/// Subscribes (RESP2 or RESP3) to `__key*__:*` on a server whose notifications are `flags`, runs `steps`
/// and returns every message the subscriber got, up to the end marker.
/// Each command (its first arguments, joined) with its raw reply.
type Replies = Vec<(String, Vec<u8>)>;

fn events(port: u16, flags: &str, steps: &[Step], resp3: bool) -> (Vec<Vec<u8>>, Replies) {
    events_marked(port, flags, steps, resp3, false)
}

/// [`events`]; with `per_step`, a marker message after each command (to find the step that differs).
fn events_marked(port: u16, flags: &str, steps: &[Step], resp3: bool, per_step: bool) -> (Vec<Vec<u8>>, Replies) {
    let mut replies = Vec::new();
    let mut main = Conn::connect(port);
    assert_eq!(main.cmd(&["FLUSHALL"]), b"+OK\r\n");
    assert_eq!(main.cmd(&["CONFIG", "SET", "notify-keyspace-events", flags]), b"+OK\r\n");
    let mut sub = Conn::connect(port);
    if resp3 {
        assert!(!sub.cmd(&["HELLO", "3"]).is_empty());
    }
    let confirmation = sub.cmd(&["PSUBSCRIBE", "__key*__:*"]);
    assert!(!confirmation.is_empty());
    for step in steps {
        match step {
            Step::Cmd(args) => {
                let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
                main.send(&command(&args));
                let reply = main.read_reply();
                assert!(!reply.is_empty(), "no reply to {args:?}");
                let line: Vec<String> = args.iter().take(6).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
                replies.push((line.join(" "), reply));
                if per_step {
                    main.cmd(&["PUBLISH", STEP_MARKER, &line.join(" ")]);
                }
            }
            Step::Sleep(ms) => std::thread::sleep(Duration::from_millis(*ms)),
        }
    }
    main.cmd(&["PUBLISH", MARKER, "end"]);
    let mut out = Vec::new();
    sub.set_timeout(Duration::from_secs(10));
    loop {
        let message = sub.read_reply();
        assert!(!message.is_empty(), "the end marker never arrived; got {} messages", out.len());
        if String::from_utf8_lossy(&message).contains(MARKER) {
            return (out, replies);
        }
        out.push(message);
    }
}

/// Runs `steps` on both servers and requires the same messages.
fn compare(redis: &RedisServer, velo: &TestServer, name: &str, flags: &str, steps: &[Step], resp3: bool) {
    let (expected, redis_replies) = events(redis.port, flags, steps, resp3);
    let (actual, velo_replies) = events(velo.port, flags, steps, resp3);
    // For the report: the first reply that differs (random picks and stream IDs differ legitimately).
    let first_reply_difference = redis_replies
        .iter()
        .zip(&velo_replies)
        .position(|((line, a), (_, b))| a != b && !line.starts_with("SPOP") && !line.starts_with('X'));
    let first_reply_difference = first_reply_difference.map(|i| {
        let ((line, a), (_, b)) = (&redis_replies[i], &velo_replies[i]);
        format!("`{line}`: redis {} velo {}", show(a), show(b))
    });
    let first_difference = expected.iter().zip(&actual).position(|(a, b)| a != b);
    if expected.len() != actual.len() || first_difference.is_some() {
        let at = first_difference.unwrap_or(expected.len().min(actual.len()));
        let around = |list: &[Vec<u8>]| {
            list[at.saturating_sub(3)..(at + 3).min(list.len())].iter().map(|m| show(m)).collect::<Vec<_>>()
        };
        let step = locate(redis, velo, flags, steps, resp3);
        panic!(
            "{name} [{flags}]: first differing step: {step}\n{name} [{flags}]: event streams differ at message {at} (redis {} messages, velo {}); first other reply: {:?}\n  redis: {:#?}\n  velo:  {:#?}",
            expected.len(),
            actual.len(),
            first_reply_difference,
            around(&expected),
            around(&actual)
        );
    }
    assert!(!expected.is_empty() || flags.is_empty() || !flags.contains(['K', 'E']), "{name}: no events at all");
}

/// Runs `steps` again with a marker after each command; the first command whose events differ, with them.
fn locate(redis: &RedisServer, velo: &TestServer, flags: &str, steps: &[Step], resp3: bool) -> String {
    let split = |port: u16| {
        let (messages, _) = events_marked(port, flags, steps, resp3, true);
        let mut out = vec![(String::new(), Vec::new())];
        for message in messages {
            let text = show(&message);
            if text.contains(STEP_MARKER) {
                out.last_mut().unwrap().0 = text;
                out.push((String::new(), Vec::new()));
            } else {
                out.last_mut().unwrap().1.push(text);
            }
        }
        out
    };
    let (expected, actual) = (split(redis.port), split(velo.port));
    match expected.iter().zip(&actual).find(|(a, b)| a != b) {
        Some((a, b)) => format!("{}\n  redis: {:?}\n  velo:  {:?}", a.0, a.1, b.1),
        None => "none found on a second run (timing)".to_string(),
    }
}

fn pick<'a>(rng: &mut SmallRng, items: &[&'a str]) -> &'a str {
    items[rng.gen_range(0..items.len())]
}

/// `n` numbered elements (so that large ones split: more than 512).
fn many(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

/// A random command on a small key space of every type (wrong types happen, and must emit nothing).
fn random_command(rng: &mut SmallRng) -> Vec<Step> {
    let s = pick(rng, &["s0", "s1"]);
    let l = pick(rng, &["l0", "l1"]);
    let h = pick(rng, &["h0", "h1"]);
    let set = pick(rng, &["S0", "S1"]);
    let z = pick(rng, &["z0", "z1"]);
    let x = pick(rng, &["x0", "x1"]);
    let any = pick(rng, &["s0", "s1", "l0", "l1", "h0", "h1", "S0", "S1", "z0", "z1", "x0", "x1", "none"]);
    let other = pick(rng, &["s0", "l1", "h0", "S1", "z0", "x1", "fresh"]);
    let v = rng.gen_range(0..20).to_string();
    let m = format!("m{}", rng.gen_range(0..8));
    let large = rng.gen_range(0..12) == 0;
    let steps = match rng.gen_range(0..62) {
        0 => vec![cmd(&["SET", s, &v])],
        1 => vec![cmd(&["SET", s, &v, "EX", "100"])],
        2 => vec![cmd(&["SETNX", s, &v])],
        3 => vec![cmd(&["APPEND", s, &v])],
        4 => vec![cmd(&["INCRBY", s, &v])],
        5 => vec![cmd(&["INCRBYFLOAT", s, "1.5"])],
        6 => vec![cmd(&["SETRANGE", s, "2", &v])],
        7 => vec![cmd(&["GETDEL", s])],
        8 => vec![cmd(&["GETEX", s, "PERSIST"])],
        9 => vec![cmd(&["MSET", "s0", &v, "s1", &v])],
        10 => vec![cmd(&["SETBIT", s, "7", "1"])],
        11 => vec![cmd(&["BITOP", "OR", s, "s0", "s1"])],
        12 => vec![cmd(&["PFADD", "hll", &v])],
        13 => vec![cmd(&["LPUSH", l, &v, &m])],
        14 => vec![cmd(&["RPUSH", l, &v])],
        15 => vec![cmd(&["LPOP", l])],
        16 => vec![cmd(&["RPOP", l, "2"])],
        17 => vec![cmd(&["LTRIM", l, "1", "-2"])],
        18 => vec![cmd(&["LREM", l, "0", &v])],
        19 => vec![cmd(&["LSET", l, "0", &v])],
        20 => vec![cmd(&["LINSERT", l, "BEFORE", &v, "ins"])],
        21 => vec![cmd(&["LMOVE", "l0", "l1", pick(rng, &["LEFT", "RIGHT"]), pick(rng, &["LEFT", "RIGHT"])])],
        22 => vec![cmd(&["LMPOP", "2", "l0", "l1", "LEFT", "COUNT", "3"])],
        23 => vec![cmd(&["HSET", h, &m, &v])],
        24 => vec![cmd(&["HDEL", h, &m, "m1"])],
        25 => vec![cmd(&["HINCRBY", h, "n", &v])],
        26 => vec![cmd(&["HINCRBYFLOAT", h, "f", "0.5"])],
        27 => vec![cmd(&["HSETNX", h, &m, &v])],
        28 => vec![cmd(&["SADD", set, &m, &v])],
        29 => vec![cmd(&["SREM", set, &m, &v])],
        // SPOP's picks are random: only whole pops on shared keys (the servers' sets must not diverge);
        // partial ones on a key nothing else reads, whose events do not depend on the picks.
        30 => match rng.gen_range(0..3) {
            0 => vec![cmd(&["SPOP", set, "100000"])],
            1 => vec![cmd(&["SADD", "Sp", "a", "b", "c", &v]), cmd(&["SPOP", "Sp"])],
            _ => vec![cmd(&["SPOP", "Sp", &rng.gen_range(0..3).to_string()])],
        },
        31 => vec![cmd(&["SMOVE", "S0", "S1", &m])],
        32 => vec![cmd(&[pick(rng, &["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"]), "Sd", "S0", "S1"])],
        33 => vec![cmd(&["ZADD", z, &v, &m])],
        34 => vec![cmd(&["ZINCRBY", z, pick(rng, &["0", "1"]), &m])],
        35 => vec![cmd(&["ZREM", z, &m])],
        36 => vec![cmd(&["ZREMRANGEBYSCORE", z, "0", "5"])],
        37 => vec![cmd(&["ZREMRANGEBYRANK", z, "0", "1"])],
        // Lex ranges are defined only over equal scores (Redis leaves the rest unspecified): own key.
        38 => vec![cmd(&["ZADD", "zl", "0", &m]), cmd(&["ZREMRANGEBYLEX", "zl", "-", "[m3"])],
        39 => vec![cmd(&[pick(rng, &["ZPOPMIN", "ZPOPMAX"]), z, "2"])],
        40 => vec![cmd(&[pick(rng, &["ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"]), "zd", "2", "z0", "z1"])],
        41 => vec![cmd(&["ZRANGESTORE", "zd", z, "0", "2"])],
        42 => vec![cmd(&["ZMPOP", "2", "z0", "z1", "MAX"])],
        43 => vec![cmd(&["XADD", x, "MAXLEN", "3", "*", "f", &v])],
        44 => vec![cmd(&["XTRIM", x, "MAXLEN", "1"])],
        45 => vec![cmd(&["XDEL", x, "0-1", "99999999999999-0"])],
        46 => vec![cmd(&["XGROUP", "CREATE", x, "g", "0", "MKSTREAM"])],
        47 => vec![cmd(&["XREADGROUP", "GROUP", "g", &m, "COUNT", "1", "STREAMS", x, ">"])],
        48 => vec![cmd(&["XGROUP", pick(rng, &["CREATECONSUMER", "DELCONSUMER"]), x, "g", &m])],
        49 => vec![cmd(&["XGROUP", "DESTROY", x, "g"])],
        50 => vec![cmd(&["XAUTOCLAIM", x, "g", &m, "0", "0"])],
        51 => vec![cmd(&["DEL", any, other])],
        52 => vec![cmd(&["EXPIRE", any, "100"])],
        53 => vec![cmd(&["PERSIST", any])],
        54 => vec![cmd(&["RENAME", any, other])],
        55 => vec![cmd(&["COPY", any, other, "REPLACE"])],
        56 => vec![
            cmd(&["MOVE", any, "1"]),
            cmd(&["SELECT", "1"]),
            cmd(&["RENAME", any, other]),
            cmd(&["MOVE", other, "0"]),
            cmd(&["SELECT", "0"]),
        ],
        57 => vec![cmd(&["EXPIRE", any, "-1"])],
        // An expiry: the key expires while nothing runs and is then looked at, so that it expires at the
        // same point of the stream on both servers (on access, or by the active cycle during the pause).
        58 => vec![cmd(&["PEXPIRE", any, "20"]), Step::Sleep(60), cmd(&["EXISTS", any])],
        // A blind overwrite of an expired key finds it expired first, as Redis's lookup does.
        59 => {
            let access = match rng.gen_range(0..3) {
                0 => cmd(&["GET", s]),
                1 => cmd(&["SET", s, &v]),
                _ => cmd(&["MSET", s, &v]),
            };
            vec![cmd(&["SET", s, &v, "PX", "20"]), Step::Sleep(60), access]
        }
        60 => {
            vec![cmd(&["MULTI"]), cmd(&["RPUSH", l, &v]), cmd(&["HSET", h, &m, &v]), cmd(&["DEL", set]), cmd(&["EXEC"])]
        }
        _ => vec![cmd(&["SORT", l, "ALPHA", "STORE", "sorted"])],
    };
    if !large {
        return steps;
    }
    // A large collection: split in Velo, and its commands must emit what small ones do.
    let add = |head: &[&str], items: Vec<String>| {
        let mut args: Vec<String> = head.iter().map(|s| s.to_string()).collect();
        args.extend(items);
        Step::Cmd(args)
    };
    let mut out = steps;
    out.push(match rng.gen_range(0..4) {
        0 => add(&["RPUSH", l], many("e", 600)),
        1 => add(&["SADD", set], many("m", 600)),
        2 => add(&["HSET", h], many("f", 1200)),
        _ => add(&["ZADD", z], (0..600).flat_map(|i| [i.to_string(), format!("m{i}")]).collect()),
    });
    out
}

fn random_script(seed: u64, len: usize) -> Vec<Step> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut steps = Vec::new();
    while steps.len() < len {
        steps.extend(random_command(&mut rng));
    }
    steps
}

#[test]
fn random_sequences_emit_what_redis_emits() {
    let redis = RedisServer::start();
    let velo = TestServer::start();
    for seed in 0..6 {
        let steps = random_script(seed, 200);
        compare(&redis, &velo, &format!("seed {seed}"), "KEA", &steps, false);
    }
}

#[test]
fn narrower_classes_emit_only_theirs() {
    let redis = RedisServer::start();
    let velo = TestServer::start();
    for (seed, flags) in [
        (10, "Kg"),
        (11, "El"),
        (12, "K$x"),
        (13, "Eszht"),
        (14, "KEhx"),
        (15, "gE$lshzxetd"),
        (17, "KEn"),
        (18, "EAn"),
    ] {
        let steps = random_script(seed, 120);
        compare(&redis, &velo, &format!("seed {seed}"), flags, &steps, false);
    }
    // Without K or E nothing is published, whatever the classes.
    compare(&redis, &velo, "no K/E", "A", &random_script(16, 40), false);
}

#[test]
fn resp3_subscribers_get_push_messages() {
    let redis = RedisServer::start();
    let velo = TestServer::start();
    let steps = random_script(20, 80);
    compare(&redis, &velo, "resp3", "KEA", &steps, true);
}

#[test]
fn served_blocked_clients_emit_their_pops() {
    let redis = RedisServer::start();
    let velo = TestServer::start();
    let mut streams = Vec::new();
    for port in [redis.port, velo.port] {
        let mut main = Conn::connect(port);
        main.cmd(&["FLUSHALL"]);
        main.cmd(&["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
        let mut sub = Conn::connect(port);
        sub.cmd(&["PSUBSCRIBE", "__key*__:*"]);
        let mut blocked = Vec::new();
        for request in [
            vec!["BLPOP", "bl", "0"],
            vec!["BLMOVE", "bm", "bmd", "LEFT", "RIGHT", "0"],
            vec!["BZPOPMIN", "bz", "0"],
            vec!["BLMPOP", "0", "1", "bq", "RIGHT", "COUNT", "5"],
        ] {
            let mut conn = Conn::connect(port);
            let args: Vec<&[u8]> = request.iter().map(|a| a.as_bytes()).collect();
            conn.send(&command(&args));
            blocked.push(conn);
        }
        // Let the clients block (both servers register them in arrival order).
        std::thread::sleep(Duration::from_millis(200));
        main.cmd(&["RPUSH", "bl", "a", "b"]);
        main.cmd(&["RPUSH", "bm", "a"]);
        main.cmd(&["ZADD", "bz", "1", "a"]);
        main.cmd(&["RPUSH", "bq", "a", "b"]);
        for conn in &mut blocked {
            assert!(!conn.read_reply().is_empty());
        }
        main.cmd(&["PUBLISH", MARKER, "end"]);
        let mut out = Vec::new();
        loop {
            let message = sub.read_reply();
            assert!(!message.is_empty());
            if String::from_utf8_lossy(&message).contains(MARKER) {
                break;
            }
            out.push(show(&message));
        }
        streams.push(out);
    }
    assert_eq!(streams[0], streams[1]);
    assert!(streams[0].len() > 10);
}

#[test]
fn active_expiry_emits_expired() {
    let redis = RedisServer::start();
    let velo = TestServer::start();
    let mut streams = Vec::new();
    for port in [redis.port, velo.port] {
        let mut main = Conn::connect(port);
        main.cmd(&["FLUSHALL"]);
        main.cmd(&["CONFIG", "SET", "notify-keyspace-events", "Ex"]);
        let mut sub = Conn::connect(port);
        sub.cmd(&["PSUBSCRIBE", "__key*__:*"]);
        main.cmd(&["SET", "gone", "1", "PX", "10"]);
        let mut args: Vec<String> = vec!["RPUSH".into(), "big".into()];
        args.extend(many("e", 700));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        main.cmd(&refs);
        main.cmd(&["PEXPIRE", "big", "10"]);
        // Nobody looks at the keys: only the active cycle can find them.
        let mut got = Vec::new();
        sub.set_timeout(Duration::from_secs(5));
        while got.len() < 2 {
            let message = sub.read_reply();
            assert!(!message.is_empty(), "expired events missing; got {got:?}");
            got.push(show(&message));
        }
        got.sort();
        streams.push(got);
    }
    assert_eq!(streams[0], streams[1]);
}

#[test]
fn config_parses_and_normalises_like_redis() {
    let redis = RedisServer::start();
    let velo = TestServer::start();
    for value in ["KEA", "AKE", "", "Elg", "mnKx$", "g$lshzxetdK", "KEAm", "xE", "KEA?", "a", "KA n"] {
        let mut replies = Vec::new();
        for port in [redis.port, velo.port] {
            let mut conn = Conn::connect(port);
            let set = conn.cmd(&["CONFIG", "SET", "notify-keyspace-events", value]);
            let get = conn.cmd(&["CONFIG", "GET", "notify-keyspace-events"]);
            replies.push((show(&set), show(&get)));
        }
        assert_eq!(replies[0], replies[1], "value {value:?}");
    }
}

/// The keymiss tests' seeds: fixed, or from `VELO_DIFF_SEED` to explore new ones.
fn seed_base(fixed: u64) -> u64 {
    std::env::var("VELO_DIFF_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(fixed)
}

/// A random read over the same key space (reads of missing keys emit `keymiss`; reads of present ones,
/// of another type or not, emit nothing).
fn random_read(rng: &mut SmallRng) -> Vec<Step> {
    let any = pick(rng, &["s0", "s1", "l0", "l1", "h0", "h1", "S0", "S1", "z0", "z1", "x0", "x1", "none", "hll"]);
    let other = pick(rng, &["s0", "l1", "h0", "S1", "z0", "x1", "fresh"]);
    let line: Vec<&str> = match rng.gen_range(0..34) {
        0 => vec!["GET", any],
        1 => vec!["MGET", any, other, any],
        2 => vec!["EXISTS", any, other],
        3 => vec!["TYPE", any],
        4 => vec!["TTL", any],
        5 => vec!["STRLEN", any],
        6 => vec!["GETRANGE", any, "0", "3"],
        7 => vec!["LRANGE", any, "0", "-1"],
        8 => vec!["LLEN", any],
        9 => vec!["LINDEX", any, "0"],
        10 => vec!["HGET", any, "m1"],
        11 => vec!["HGETALL", any],
        12 => vec!["HMGET", any, "m1", "m2"],
        13 => vec!["SMEMBERS", any],
        14 => vec!["SISMEMBER", any, "m1"],
        15 => vec!["SUNION", any, other],
        16 => vec!["SINTER", any, other],
        17 => vec!["ZRANGE", any, "0", "-1"],
        18 => vec!["ZSCORE", any, "m1"],
        19 => vec!["ZUNION", "2", any, other],
        20 => vec!["XRANGE", any, "-", "+"],
        21 => vec!["XREAD", "STREAMS", any, other, "0", "0"],
        22 => vec!["PFCOUNT", any, other],
        23 => vec!["BITCOUNT", any],
        24 => vec!["DUMP", any],
        25 => vec!["TOUCH", any, other],
        26 => vec!["OBJECT", "ENCODING", any],
        27 => vec!["GETEX", any],
        28 => vec!["SET", any, "v", "GET"],
        29 => vec!["LCS", any, other],
        30 => vec!["SORT", any, "ALPHA"],
        31 => vec!["SORT", "l0", "BY", "nosort", "GET", "s*", "GET", "h*->m1"],
        32 => vec!["ZRANGE", any, "0", "-1", "BADOPTION"],
        _ => vec!["XINFO", "STREAM", any],
    };
    vec![cmd(&line)]
}

fn random_script_with_reads(seed: u64, len: usize) -> Vec<Step> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut steps = Vec::new();
    while steps.len() < len {
        if rng.gen_bool(0.5) {
            steps.extend(random_read(&mut rng));
        } else {
            steps.extend(random_command(&mut rng));
        }
    }
    steps
}

/// Every command that looks a key up, against a missing key (and a few present ones): `keymiss` exactly
/// where, as often and in the order Redis 7.0 emits it (MGET once per missing key, XREAD twice, SET ... GET
/// before `set`, none for OBJECT or the write lookups, none when the options are rejected first).
#[test]
fn keymiss_per_command_matches_redis() {
    let redis = RedisServer::start();
    let velo = TestServer::start();
    let lines = [
        "GET m1",
        "MGET m1 str m2 m1",
        "EXISTS m1 m2 str",
        "TYPE m1",
        "TTL m1",
        "PTTL m1",
        "EXPIRETIME m1",
        "OBJECT ENCODING m1",
        "OBJECT FREQ m1",
        "DUMP m1",
        "TOUCH m1 str m2",
        "STRLEN m1",
        "GETRANGE m1 0 1",
        "SUBSTR m1 0 1",
        "GETDEL m1",
        "GETEX m1",
        "GETEX m1 EX 100",
        "GETSET m1 v",
        "SET m1 v GET",
        "SET m1 v NX GET",
        "SET str v GET",
        "SET m1 v GET BADOPT",
        "SETNX m1 v",
        "APPEND m1 v",
        "INCR m1",
        "SETRANGE m1 0 v",
        "LCS m1 m2",
        "LCS m1 str",
        "LLEN m1",
        "LRANGE m1 0 -1",
        "LINDEX m1 0",
        "LPOS m1 a",
        "LPOS m1 a RANK 0",
        "LPOP m1",
        "RPOPLPUSH m1 m2",
        "LMOVE m1 m2 LEFT LEFT",
        "LMPOP 2 m1 m2 LEFT",
        "BLPOP m1 0.01",
        "LSET m1 0 v",
        "HGET m1 f",
        "HGETALL m1",
        "HMGET m1 f",
        "HLEN m1",
        "HEXISTS m1 f",
        "HKEYS m1",
        "HVALS m1",
        "HSTRLEN m1 f",
        "HRANDFIELD m1",
        "HSCAN m1 0",
        "HINCRBY m1 f 1",
        "HDEL m1 f",
        "SMEMBERS m1",
        "SISMEMBER m1 a",
        "SMISMEMBER m1 a",
        "SCARD m1",
        "SRANDMEMBER m1",
        "SPOP m1",
        "SSCAN m1 0",
        "SINTER m1 m2",
        "SINTER set m1",
        "SINTERCARD 2 m1 m2",
        "SINTERSTORE d m1 m2",
        "SUNION m1 m2",
        "SUNIONSTORE d m1 m2",
        "SDIFF m1 m2",
        "SDIFFSTORE d m1 m2",
        "SMOVE m1 m2 a",
        "ZRANGE m1 0 -1",
        "ZRANGE m1 0 -1 BAD",
        "ZRANGESTORE d m1 0 -1",
        "ZSCORE m1 a",
        "ZMSCORE m1 a",
        "ZRANK m1 a",
        "ZCARD m1",
        "ZCOUNT m1 0 1",
        "ZLEXCOUNT m1 - +",
        "ZRANGEBYSCORE m1 0 1",
        "ZREVRANGE m1 0 -1",
        "ZRANDMEMBER m1",
        "ZSCAN m1 0",
        "ZUNION 2 m1 m2",
        "ZUNIONSTORE d 2 m1 m2",
        "ZINTERSTORE d 2 m1 m2",
        "ZINTER 2 m1 m2",
        "ZINTERCARD 2 m1 m2",
        "ZDIFF 2 m1 m2",
        "ZDIFFSTORE d 2 m1 m2",
        "ZPOPMIN m1",
        "ZINCRBY m1 1 a",
        "ZREM m1 a",
        "XRANGE m1 - +",
        "XREVRANGE m1 + -",
        "XLEN m1",
        "XREAD STREAMS m1 m2 0 0",
        "XREAD STREAMS m1 stream 0 0",
        "XREADGROUP GROUP g c STREAMS m1 >",
        "XINFO STREAM m1",
        "XPENDING m1 g",
        "XACK m1 g 1-1",
        "XCLAIM m1 g c 0 1-1",
        "XAUTOCLAIM m1 g c 0 0",
        "XTRIM m1 MAXLEN 0",
        "XDEL m1 1-1",
        "XSETID m1 1-1",
        "PFCOUNT m1",
        "PFCOUNT m1 m2",
        "PFMERGE d m1 m2",
        "PFADD m1 a",
        "GETBIT m1 0",
        "BITCOUNT m1",
        "BITPOS m1 1",
        "BITFIELD m1 GET u8 0",
        "BITFIELD_RO m1 GET u8 0",
        "BITFIELD m1 INCRBY u8 0 1",
        "BITOP AND d m1 m2",
        "SETBIT m1 0 1",
        "GEOPOS m1 a",
        "GEODIST m1 a b",
        "GEOHASH m1 a",
        "GEOSEARCH m1 FROMLONLAT 0 0 BYRADIUS 1 km",
        "GEOSEARCHSTORE d m1 FROMLONLAT 0 0 BYRADIUS 1 km",
        "GEORADIUS m1 0 0 1 km",
        "GEORADIUS m1 0 0 1 km STORE d",
        "SORT m1",
        "SORT m1 STORE d",
        "SORT list BY m_* GET m_*",
        "SORT list BY nosort GET m_*",
        "SORT list BY nosort GET hash->f GET m->f",
        "SORT_RO m1",
        "COPY m1 d",
        "COPY str m1",
        "RENAME m1 d",
        "MOVE m1 1",
        "DEL m1",
        "UNLINK m1",
        "EXPIRE m1 10",
        "PERSIST m1",
        "MEMORY USAGE m1",
        "OBJECT IDLETIME m1",
    ];
    let setup = ["SET str v", "RPUSH list a b", "HSET hash f v", "SADD set a", "ZADD zset 1 a", "XADD stream 1-1 f v"];
    let mut steps = Vec::new();
    for line in lines {
        steps.push(cmd(&["FLUSHALL"]));
        for command in setup {
            steps.push(cmd(&command.split(' ').collect::<Vec<_>>()));
        }
        steps.push(cmd(&line.split(' ').collect::<Vec<_>>()));
    }
    compare(&redis, &velo, "per command", "KEAm", &steps, false);
    // Inside MULTI/EXEC, and an expired key: `expired` first, then `keymiss`.
    let steps = vec![
        cmd(&["MULTI"]),
        cmd(&["GET", "m1"]),
        cmd(&["MGET", "m2", "m3"]),
        cmd(&["SET", "m1", "v", "GET"]),
        cmd(&["EXEC"]),
        cmd(&["SET", "e", "v", "PX", "20"]),
        Step::Sleep(60),
        cmd(&["GET", "e"]),
    ];
    compare(&redis, &velo, "multi and expired", "KEAm", &steps, false);
}

/// Random writes and reads with class `m` on (alone and with the others).
#[test]
fn keymiss_random_sequences_emit_what_redis_emits() {
    let redis = RedisServer::start();
    let velo = TestServer::start();
    let base = seed_base(40);
    for seed in base..base + 4 {
        let flags = if seed % 2 == 0 { "KEAm" } else { "Em" };
        let steps = random_script_with_reads(seed, 200);
        compare(&redis, &velo, &format!("seed {seed} (VELO_DIFF_SEED={base})"), flags, &steps, false);
    }
}
