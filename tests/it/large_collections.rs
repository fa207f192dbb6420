//! Large collections: hashes, sets and lists past the split threshold behave exactly as Redis's (differential
//! scripts that grow them, read them, shrink them back below the join threshold), survive kill -9 under
//! `--fsync always`, and their parts are freed after DEL, overwrite and expiry.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::support::differential::compare;
use crate::support::resp::{parse, Value};
use crate::support::{Conn, RedisServer, TestServer};

/// `RPUSH`-style lines adding `count` generated members to `key`, `per_line` at a time.
fn bulk_lines(command: &str, key: &str, count: usize, per_line: usize, item: impl Fn(usize) -> String) -> Vec<String> {
    (0..count)
        .collect::<Vec<_>>()
        .chunks(per_line)
        .map(|chunk| {
            let items: Vec<String> = chunk.iter().map(|&i| item(i)).collect();
            format!("{command} {key} {}", items.join(" "))
        })
        .collect()
}

fn run(redis: &RedisServer, velo: &TestServer, name: &str, lines: &[String]) {
    let script: Vec<&str> = lines.iter().map(String::as_str).collect();
    compare(redis, velo, name, &script);
}

#[test]
fn large_hashes_match_redis() {
    let (redis, velo) = (RedisServer::start(), TestServer::start());
    let mut lines = bulk_lines("HSET", "h", 3000, 150, |i| format!("f{i} v{}", i * 7));
    lines.extend(
        [
            "HLEN h",
            "HGET h f0",
            "HGET h f2999",
            "HGET h nope",
            "HMGET h f1 f2 nope f1500",
            "HSTRLEN h f123",
            "HEXISTS h f2000",
            "HEXISTS h f3000",
            "HSETNX h f10 x",
            "HSETNX h new y",
            "HINCRBY h counter 5",
            "HINCRBY h counter -2",
            "HINCRBY h f5 1",
            "HINCRBYFLOAT h fl 1.5",
            "HSET h f7 changed f3001 added",
            "HGET h f7",
            "~HKEYS h",
            "~HVALS h",
            "~HGETALL h",
            "LPUSH h x",
            "OBJECT ENCODING h",
            "TYPE h",
            "HLEN h",
        ]
        .map(String::from),
    );
    // Shrink below the join threshold, then check every field again.
    lines.extend(bulk_lines("HDEL", "h", 2950, 100, |i| format!("f{i}")));
    lines.extend(["HLEN h", "~HGETALL h", "HDEL h f2950 f2951", "HLEN h"].map(String::from));
    lines.extend(bulk_lines("HDEL", "h", 3002, 500, |i| format!("f{i}")));
    lines.extend(["HDEL h new counter fl", "EXISTS h", "HLEN h"].map(String::from));
    run(&redis, &velo, "large hash", &lines);
}

#[test]
fn large_sets_match_redis() {
    let (redis, velo) = (RedisServer::start(), TestServer::start());
    let mut lines = bulk_lines("SADD", "s", 4000, 200, |i| format!("m{i}"));
    lines.extend(bulk_lines("SADD", "t", 1000, 200, |i| format!("m{}", i * 3)));
    lines.extend(
        [
            "SCARD s",
            "SISMEMBER s m3999",
            "SISMEMBER s m4000",
            "SMISMEMBER s m1 nope m2",
            "SADD s m1 m2 fresh",
            "SREM s m1 m2 gone",
            "SCARD s",
            "~SMEMBERS s",
            "~SINTER s t",
            "SINTERSTORE dest s t",
            "SCARD dest",
            "~SDIFF t s",
            "SMOVE s t m5",
            "SISMEMBER t m5",
            "SCARD s",
            "SCARD t",
            "OBJECT ENCODING s",
            "!SPOP s 10",
            "SCARD s",
            "!SPOP s",
            "SCARD s",
            "!SRANDMEMBER s 5",
            "SCARD s",
            "HSET s a b",
        ]
        .map(String::from),
    );
    run(&redis, &velo, "large set", &lines);
}

#[test]
fn large_lists_match_redis() {
    let (redis, velo) = (RedisServer::start(), TestServer::start());
    let mut lines = bulk_lines("RPUSH", "l", 5000, 250, |i| format!("item{i}"));
    lines.extend(bulk_lines("LPUSH", "l", 1000, 250, |i| format!("head{i}")));
    lines.extend(
        [
            "LLEN l",
            "LINDEX l 0",
            "LINDEX l -1",
            "LINDEX l 2999",
            "LINDEX l -3000",
            "LINDEX l 6000",
            "LRANGE l 0 9",
            "LRANGE l -10 -1",
            "LRANGE l 995 1130",
            "LRANGE l 5990 7000",
            "LSET l 3000 changed",
            "LINDEX l 3000",
            "LSET l 6000 x",
            "LPOS l item4000",
            "LPOS l changed",
            "LINSERT l BEFORE item10 inserted",
            "LINDEX l 1010",
            "LREM l 0 item11",
            "LLEN l",
            "LPOP l 300",
            "RPOP l 300",
            "LPOP l",
            "RPOP l",
            "LLEN l",
            "LMOVE l other LEFT RIGHT",
            "LMOVE l l RIGHT LEFT",
            "LINDEX l 0",
            "RPOPLPUSH l other",
            "LRANGE other 0 -1",
            "LTRIM l 100 -100",
            "LLEN l",
            "LRANGE l 0 4",
            "LRANGE l -5 -1",
            "OBJECT ENCODING l",
            "SADD l x",
            "LTRIM l 0 199",
            "LLEN l",
            "LRANGE l 0 -1",
            "LTRIM l 0 49",
            "LRANGE l 0 -1",
            "LTRIM l 5 1",
            "EXISTS l",
        ]
        .map(String::from),
    );
    // A queue: pushes and pops much larger than one chunk at a time, past the split threshold and back.
    for round in 0..4 {
        lines.extend(bulk_lines("RPUSH", "q", 700, 350, |i| format!("r{round}-{i}")));
        lines.push("LPOP q 600".into());
        lines.push("LLEN q".into());
        lines.push("LINDEX q 50".into());
    }
    lines.push("LRANGE q 0 -1".into());
    run(&redis, &velo, "large list", &lines);
}

#[test]
fn large_sorted_sets_match_redis() {
    let (redis, velo) = (RedisServer::start(), TestServer::start());
    // Scores repeat (every 7th), so members order ties; some are negative, some fractional.
    let mut lines =
        bulk_lines("ZADD", "z", 3000, 200, |i| format!("{} m{i}", (i % 7) as f64 * 1.5 - 3.0 + (i / 700) as f64));
    lines.extend(bulk_lines("ZADD", "lex", 1500, 250, |i| format!("0 w{i:05}")));
    lines.extend(
        [
            "ZCARD z",
            "ZSCORE z m123",
            "ZSCORE z nope",
            "ZMSCORE z m1 nope m2999",
            "ZRANK z m0",
            "ZRANK z m2999",
            "ZREVRANK z m1500",
            "ZRANK z nope",
            "ZCOUNT z -inf +inf",
            "ZCOUNT z (0 3",
            "ZCOUNT z 1.5 1.5",
            "ZRANGE z 0 9 WITHSCORES",
            "ZRANGE z -5 -1",
            "ZRANGE z 1000 1010 REV WITHSCORES",
            "ZREVRANGE z 0 4 WITHSCORES",
            "ZRANGE z 0 1 BYSCORE LIMIT 0 5",
            "ZRANGE z (0 3 BYSCORE LIMIT 100 7 WITHSCORES",
            "ZRANGE z 3 (0 BYSCORE REV LIMIT 100 7 WITHSCORES",
            "ZRANGEBYSCORE z -inf 0 LIMIT 5 3",
            "ZREVRANGEBYSCORE z +inf 6 LIMIT 2 4 WITHSCORES",
            "ZLEXCOUNT lex [w00100 (w00200",
            "ZRANGEBYLEX lex (w01000 + LIMIT 0 5",
            "ZREVRANGEBYLEX lex [w00500 - LIMIT 3 4",
            "ZRANGE lex [w00010 [w00015 BYLEX",
            "ZINCRBY z 100 m5",
            "ZRANK z m5",
            "ZADD z GT 0 m6",
            "ZADD z LT CH -50 m6",
            "ZADD z NX INCR 1 brand-new",
            "ZADD z XX 7 missing",
            "ZRANGE z 0 2 WITHSCORES",
            "ZREM z m1 m2 m3 nope",
            "ZPOPMIN z 3",
            "ZPOPMAX z",
            "ZPOPMAX z 2",
            "ZREMRANGEBYRANK z 0 9",
            "ZREMRANGEBYSCORE z (3 4.5",
            "ZREMRANGEBYLEX lex - (w00300",
            "ZCARD z",
            "ZCARD lex",
            "ZRANGESTORE dst z 100 199",
            "ZRANGE dst 0 -1 WITHSCORES",
            "OBJECT ENCODING z",
            "SADD z x",
            "ZRANGE z 500 520 WITHSCORES",
        ]
        .map(String::from),
    );
    // Shrink below the join threshold and check the order is intact.
    lines.push("ZREMRANGEBYRANK z 50 -1".into());
    lines.extend(
        ["ZCARD z", "ZRANGE z 0 -1 WITHSCORES", "ZREMRANGEBYRANK lex 0 -2", "ZRANGE lex 0 -1"].map(String::from),
    );
    run(&redis, &velo, "large sorted set", &lines);
}

fn value_to_strings(value: &Value) -> Vec<String> {
    match value {
        Value::Agg(_, Some(items)) => items.iter().flat_map(value_to_strings).collect(),
        Value::Blob(_, Some(bytes)) => vec![String::from_utf8_lossy(bytes).into_owned()],
        other => panic!("unexpected reply {other:?}"),
    }
}

/// The elements of an array reply.
fn array(value: Value) -> Vec<Value> {
    match value {
        Value::Agg(_, Some(items)) => items,
        other => panic!("expected an array, got {other:?}"),
    }
}

/// The text of a bulk reply.
fn text(value: &Value) -> String {
    match value {
        Value::Blob(_, Some(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
        other => panic!("expected a bulk string, got {other:?}"),
    }
}

fn reply(conn: &mut Conn, args: &[&str]) -> Value {
    parse(&conn.cmd(args)).expect("a whole reply").0
}

#[test]
fn hscan_and_sscan_return_every_element_of_a_split_collection_across_growth() {
    let velo = TestServer::start();
    let mut conn = velo.connect();
    for chunk in (0..3000).collect::<Vec<_>>().chunks(300) {
        let mut args = vec!["HSET".to_string(), "h".into()];
        for i in chunk {
            args.push(format!("f{i}"));
            args.push("v".into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        conn.cmd(&args);
    }
    let mut seen = BTreeSet::new();
    let mut cursor = "0".to_string();
    let mut grown = 3000;
    loop {
        let parts = array(reply(&mut conn, &["HSCAN", "h", &cursor, "COUNT", "50"]));
        let next = text(&parts[0]);
        let items = value_to_strings(&parts[1]);
        for pair in items.chunks(2) {
            seen.insert(pair[0].clone());
        }
        // Grow the hash between steps: buckets split under the scan.
        for _ in 0..20 {
            conn.cmd(&["HSET", "h", &format!("f{grown}"), "v"]);
            grown += 1;
        }
        cursor = next;
        if cursor == "0" {
            break;
        }
    }
    for i in 0..3000 {
        assert!(seen.contains(&format!("f{i}")), "HSCAN missed f{i}");
    }

    for chunk in (0..2000).collect::<Vec<_>>().chunks(500) {
        let mut args = vec!["SADD".to_string(), "s".into()];
        args.extend(chunk.iter().map(|i| format!("m{i}")));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        conn.cmd(&args);
    }
    let mut seen = BTreeSet::new();
    let mut cursor = "0".to_string();
    loop {
        let parts = array(reply(&mut conn, &["SSCAN", "s", &cursor, "MATCH", "m1*"]));
        let next = text(&parts[0]);
        seen.extend(value_to_strings(&parts[1]));
        cursor = next;
        if cursor == "0" {
            break;
        }
    }
    let expected: BTreeSet<String> = (0..2000).map(|i| format!("m{i}")).filter(|m| m.starts_with("m1")).collect();
    assert_eq!(seen, expected);
}

fn info_field(conn: &mut Conn, section: &str, field: &str) -> u64 {
    let info = text(&reply(conn, &["INFO", section]));
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("INFO {section} has no {field}"))
        .trim()
        .parse()
        .expect("a number")
}

/// Waits until the parts count is `want`, or fails after `limit`.
fn wait_for_parts(conn: &mut Conn, want: u64, limit: Duration) {
    let start = Instant::now();
    loop {
        let parts = info_field(conn, "velo", "collection_parts");
        if parts == want {
            return;
        }
        assert!(start.elapsed() < limit, "collection_parts stayed at {parts}, expected {want}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn parts_of_deleted_overwritten_and_expired_collections_are_freed() {
    let velo = TestServer::start();
    let mut conn = velo.connect();
    let fill = |conn: &mut Conn, command: &str, key: &str| {
        for chunk in (0..2000).collect::<Vec<_>>().chunks(500) {
            let mut args = vec![command.to_string(), key.to_string()];
            for i in chunk {
                args.push(format!("e{i}"));
                if command == "HSET" {
                    args.push("v".into());
                }
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            conn.cmd(&args);
        }
    };
    fill(&mut conn, "HSET", "deleted");
    fill(&mut conn, "SADD", "overwritten");
    fill(&mut conn, "RPUSH", "expiring");
    fill(&mut conn, "RPUSH", "kept");
    assert!(info_field(&mut conn, "velo", "collection_parts") > 0);
    let kept_parts = {
        // The parts of "kept" alone: everything else goes.
        assert_eq!(conn.cmd(&["DEL", "deleted"]), b":1\r\n");
        assert_eq!(conn.cmd(&["SET", "overwritten", "now a string"]), b"+OK\r\n");
        assert_eq!(conn.cmd(&["PEXPIRE", "expiring", "50"]), b":1\r\n");
        std::thread::sleep(Duration::from_millis(100));
        // Chunks of "kept": 2000 items of 4 or 5 bytes fit in 16 chunks of 128.
        16
    };
    // The sweeper starts a pass once a checkpoint has counted the hidden keys: force one with SAVE.
    conn.cmd(&["SAVE"]);
    wait_for_parts(&mut conn, kept_parts, Duration::from_secs(20));
    assert_eq!(conn.cmd(&["LLEN", "kept"]), b":2000\r\n");
    assert_eq!(conn.cmd(&["LINDEX", "kept", "1999"]), b"$5\r\ne1999\r\n");
    // FLUSHDB takes the parts with it.
    conn.cmd(&["FLUSHDB"]);
    assert_eq!(info_field(&mut conn, "velo", "collection_parts"), 0);
}

#[test]
fn large_collections_survive_kill_9_under_fsync_always() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut velo = TestServer::start_in(dir.path(), &["--fsync", "always"]);
    let mut conn = velo.connect();
    for chunk in (0..3000).collect::<Vec<_>>().chunks(250) {
        let mut hset = vec!["HSET".to_string(), "h".into()];
        let mut sadd = vec!["SADD".to_string(), "s".into()];
        let mut rpush = vec!["RPUSH".to_string(), "l".into()];
        let mut zadd = vec!["ZADD".to_string(), "z".into()];
        for i in chunk {
            hset.extend([format!("f{i}"), format!("v{i}")]);
            sadd.push(format!("m{i}"));
            rpush.push(format!("i{i}"));
            zadd.extend([format!("{}", i % 100), format!("z{i}")]);
        }
        for args in [hset, sadd, rpush, zadd] {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            conn.cmd(&args);
        }
    }
    conn.cmd(&["HDEL", "h", "f0", "f1"]);
    conn.cmd(&["LPOP", "l", "700"]);
    conn.cmd(&["SREM", "s", "m2999"]);
    conn.cmd(&["ZREM", "z", "z0", "z100"]);
    conn.cmd(&["ZINCRBY", "z", "1000", "z5"]);
    velo.kill9();
    let velo = TestServer::start_in(dir.path(), &["--fsync", "always"]);
    let mut conn = velo.connect();
    assert_eq!(conn.cmd(&["HLEN", "h"]), b":2998\r\n");
    assert_eq!(conn.cmd(&["HGET", "h", "f2999"]), b"$5\r\nv2999\r\n");
    assert_eq!(conn.cmd(&["HGET", "h", "f1"]), b"$-1\r\n");
    assert_eq!(conn.cmd(&["SCARD", "s"]), b":2999\r\n");
    assert_eq!(conn.cmd(&["SISMEMBER", "s", "m2998"]), b":1\r\n");
    assert_eq!(conn.cmd(&["LLEN", "l"]), b":2300\r\n");
    assert_eq!(conn.cmd(&["LINDEX", "l", "0"]), b"$4\r\ni700\r\n");
    assert_eq!(conn.cmd(&["LINDEX", "l", "-1"]), b"$5\r\ni2999\r\n");
    assert_eq!(array(reply(&mut conn, &["LRANGE", "l", "0", "-1"])).len(), 2300);
    assert_eq!(conn.cmd(&["ZCARD", "z"]), b":2998\r\n");
    assert_eq!(conn.cmd(&["ZSCORE", "z", "z5"]), b"$4\r\n1005\r\n");
    assert_eq!(conn.cmd(&["ZREVRANK", "z", "z5"]), b":0\r\n");
    assert_eq!(conn.cmd(&["ZRANK", "z", "z1000"]), b":0\r\n");
    assert_eq!(conn.cmd(&["ZRANK", "z", "z200"]), b":10\r\n");
    assert_eq!(conn.cmd(&["ZSCORE", "z", "z100"]), b"$-1\r\n");
}

/// Random sequences on four collections that grow past the split threshold and shrink back below the join
/// threshold, again and again (seeded, `VELO_DIFF_SEED` to reproduce): every reply must match Redis's
/// (unordered ones sorted).
#[test]
fn random_sequences_across_the_split_threshold() {
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};
    let (redis, velo) = (RedisServer::start(), TestServer::start());
    let base: u64 = crate::support::differential::seed_base(1_764_000_000);
    for seed in base..base + 2 {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut lines: Vec<String> = Vec::new();
        let member = |rng: &mut SmallRng| format!("e{}", rng.gen_range(0..1500));
        let many = |rng: &mut SmallRng, n: usize, with: &dyn Fn(&mut SmallRng, String) -> String| {
            (0..n)
                .map(|_| {
                    let m = format!("e{}", rng.gen_range(0..1500));
                    with(rng, m)
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        for _ in 0..300 {
            let n = rng.gen_range(1..300);
            let line = match rng.gen_range(0..24) {
                0 | 1 => format!("HSET h {}", many(&mut rng, n, &|rng, m| format!("{m} v{}", rng.gen_range(0..9)))),
                2 => format!("HDEL h {}", many(&mut rng, n, &|_, m| m)),
                3 => format!("HMGET h {} {}", member(&mut rng), member(&mut rng)),
                4 => "HLEN h".to_string(),
                5 => format!("HINCRBY h {} 3", member(&mut rng)),
                6 | 7 => format!("SADD s {}", many(&mut rng, n, &|_, m| m)),
                8 => format!("SREM s {}", many(&mut rng, n, &|_, m| m)),
                9 => format!("SMISMEMBER s {} {}", member(&mut rng), member(&mut rng)),
                10 => "SCARD s".to_string(),
                11 | 12 => {
                    format!("{} l {}", if rng.gen_bool(0.5) { "LPUSH" } else { "RPUSH" }, many(&mut rng, n, &|_, m| m))
                }
                13 => format!("{} l {}", if rng.gen_bool(0.5) { "LPOP" } else { "RPOP" }, n),
                14 => format!("LRANGE l {} {}", rng.gen_range(-800..800), rng.gen_range(-800..800)),
                15 => format!("LINDEX l {}", rng.gen_range(-900..900)),
                16 => format!("LTRIM l {} {}", rng.gen_range(0..50), rng.gen_range(-50..-1)),
                17 | 18 => format!("ZADD z {}", many(&mut rng, n, &|rng, m| format!("{} {m}", rng.gen_range(-20..20)))),
                19 => format!("ZREM z {}", many(&mut rng, n, &|_, m| m)),
                20 => format!("ZRANGE z {} {} WITHSCORES", rng.gen_range(-700..700), rng.gen_range(-700..700)),
                21 => format!(
                    "ZRANGEBYSCORE z ({} {} LIMIT {} 20",
                    rng.gen_range(-20..20),
                    rng.gen_range(-20..20),
                    rng.gen_range(0..30)
                ),
                22 => format!("ZRANK z {}", member(&mut rng)),
                _ => format!("ZPOPMIN z {}", rng.gen_range(1..200)),
            };
            lines.push(line);
            if rng.gen_bool(0.05) {
                lines.extend(
                    ["~HGETALL h", "~SMEMBERS s", "LRANGE l 0 -1", "ZRANGE z 0 -1 WITHSCORES"].map(String::from),
                );
            }
        }
        lines.extend(["~HGETALL h", "~SMEMBERS s", "LRANGE l 0 -1", "ZRANGE z 0 -1 WITHSCORES"].map(String::from));
        let script: Vec<&str> = lines.iter().map(String::as_str).collect();
        compare(&redis, &velo, &format!("random large sequence, seed {seed} (VELO_DIFF_SEED={base})"), &script);
    }
}

/// LINSERT, LREM, LPOS and LSET on a list far past the split threshold, at its ends and in its middle:
/// inserts that overflow and split a chunk (many small items, and one bigger than a chunk), removals that
/// empty whole chunks, and LPOS with every RANK/COUNT/MAXLEN shape. Then LREM shrinks it back to compact.
#[test]
fn large_list_element_edits_match_redis() {
    let (redis, velo) = (RedisServer::start(), TestServer::start());
    let mut lines = vec!["RPUSH L first".to_string()];
    lines.extend(bulk_lines("RPUSH", "L", 1500, 250, |i| format!("v{}", i % 50)));
    lines.push("RPUSH L mid".into());
    lines.extend(bulk_lines("RPUSH", "L", 1500, 250, |i| format!("v{}", i % 50)));
    lines.push("RPUSH L last".into());
    let big = "B".repeat(5000);
    lines.extend(
        [
            "LLEN L",
            "LPOS L v7",
            "LPOS L v7 RANK -1",
            "LPOS L v7 RANK 3 COUNT 5",
            "LPOS L v7 RANK -2 COUNT 4",
            "LPOS L v7 COUNT 0",
            "LPOS L v7 RANK -3 COUNT 0 MAXLEN 1000",
            "LPOS L v7 MAXLEN 5",
            "LPOS L v49 RANK 40 COUNT 3 MAXLEN 2900",
            "LPOS L mid",
            "LPOS L last RANK -1",
            "LPOS L first RANK 2",
            "LPOS L nope COUNT 0",
            "LINSERT L BEFORE first at-head",
            "LINSERT L AFTER last at-tail",
            "LINSERT L BEFORE nope x",
            "LINSERT missing BEFORE first x",
            "LINDEX L 0",
            "LINDEX L -1",
            "LPOS L mid",
        ]
        .map(String::from),
    );
    // Many inserts at one place split its chunk again and again.
    for i in 0..300 {
        lines.push(format!("LINSERT L {} mid ins{i}", if i % 2 == 0 { "AFTER" } else { "BEFORE" }));
    }
    lines.push(format!("LINSERT L AFTER v10 {big}"));
    lines.push(format!("LINSERT L BEFORE {big} small-before-big"));
    lines.extend(
        [
            "LLEN L",
            "LPOS L mid",
            "LRANGE L 1330 1680",
            "LRANGE L 0 20",
            "LRANGE L -20 -1",
            "LSET L 0 head-set",
            "LSET L -1 tail-set",
            "LSET L 1600 mid-set",
            "LINDEX L 1600",
            "LPOS L mid-set",
            "LREM L 5 v3",
            "LREM L -5 v4",
            "LREM L 0 v5",
            "LREM L 0 nope",
            "LREM missing 0 v1",
            "LLEN L",
            "LPOS L v3 COUNT 0",
            "LPOS L v4 RANK -1 COUNT 0",
            "LRANGE L 0 -1",
        ]
        .map(String::from),
    );
    // Remove every inserted item (a whole run of chunks), then whole values until the list is compact.
    for i in 0..300 {
        lines.push(format!("LREM L {} ins{i}", if i % 3 == 0 { -1 } else { 1 }));
    }
    lines.push(format!("LREM L 0 {big}"));
    lines.extend(["LLEN L", "LRANGE L 1300 1700", "OBJECT ENCODING L"].map(String::from));
    for v in 0..48 {
        lines.push(format!("LREM L {} v{v}", if v % 2 == 0 { 0 } else { -100 }));
        if v % 8 == 0 {
            lines.push("LLEN L".into());
            lines.push("LRANGE L 0 -1".into());
        }
    }
    lines.extend(
        [
            "LRANGE L 0 -1",
            "LPOS L v49 RANK -1",
            "LREM L 0 v48",
            "LREM L 0 v49",
            "LRANGE L 0 -1",
            "LREM L 0 at-head",
            "LREM L 0 mid",
            "LREM L 0 at-tail",
            "LREM L 0 first",
            "LREM L 0 last",
            "LREM L 0 head-set",
            "LREM L 0 tail-set",
            "LREM L 0 mid-set",
            "LREM L 0 small-before-big",
            "LRANGE L 0 -1",
            "EXISTS L",
        ]
        .map(String::from),
    );
    run(&redis, &velo, "large list edits", &lines);
}

/// The position of generated geo member `i`: spread over the whole map, deterministic.
fn geo_position(i: usize) -> (f64, f64) {
    let lon = ((i * 7919) % 35_900) as f64 / 100.0 - 179.5;
    let lat = ((i * 104_729) % 16_900) as f64 / 100.0 - 84.5;
    (lon, lat)
}

/// GEOADD (NX/XX/CH), GEOPOS, GEODIST, GEOHASH and searches on a 2000-member (split) geo set.
#[test]
fn large_geo_sets_match_redis() {
    let (redis, velo) = (RedisServer::start(), TestServer::start());
    let mut lines = bulk_lines("GEOADD", "g", 2000, 200, |i| {
        let (lon, lat) = geo_position(i);
        format!("{lon} {lat} p{i}")
    });
    lines.extend(
        [
            "ZCARD g",
            "OBJECT ENCODING g",
            "GEOPOS g p0 p1999 nope p1000",
            "GEOHASH g p0 p1999 nope p77",
            "GEODIST g p0 p1",
            "GEODIST g p10 p1500 km",
            "GEODIST g p10 p1500 mi",
            "GEODIST g p10 nope",
            "GEODIST nokey p1 p2",
            "GEOPOS nokey p1",
            "GEOHASH nokey p1",
            "GEOADD g NX 10 10 p0 11 11 fresh1",
            "GEOPOS g p0 fresh1",
            "GEOADD g XX 12 12 p0 13 13 fresh2",
            "GEOPOS g p0 fresh2",
            "GEOADD g XX CH 12 12 p0 14 14 p1",
            "GEOADD g CH 14 14 p1 15 15 p2 16 16 fresh3",
            "GEOADD g NX XX 1 1 x",
            "GEOADD g 200 10 bad",
            "GEOADD nokey XX 1 1 x",
            "EXISTS nokey",
            "ZCARD g",
            "ZSCORE g fresh3",
            "ZRANK g p2",
            "GEOSEARCH g FROMMEMBER p0 BYRADIUS 800 km ASC",
            "GEOSEARCH g FROMLONLAT 0 0 BYBOX 3000 3000 km DESC COUNT 10 WITHDIST WITHCOORD WITHHASH",
            "~GEOSEARCH g FROMLONLAT 100 45 BYRADIUS 1500 km",
            "GEOSEARCH g FROMMEMBER nope BYRADIUS 10 km",
            "GEORADIUSBYMEMBER g p5 1000 km ASC COUNT 5 WITHDIST",
            "GEORADIUS g -70 -30 2000 km ASC STORE dst",
            "ZRANGE dst 0 -1 WITHSCORES",
            "GEOSEARCHSTORE dst2 g FROMMEMBER p1 BYRADIUS 1200 km STOREDIST",
            "ZRANGE dst2 0 -1 WITHSCORES",
            "SET str x",
            "GEOADD str 1 1 m",
            "GEOPOS str m",
        ]
        .map(String::from),
    );
    run(&redis, &velo, "large geo set", &lines);
}

/// SMOVE between large sets (and the order of its checks), SINTERCARD with and without LIMIT.
#[test]
fn large_set_moves_and_intersection_counts_match_redis() {
    let (redis, velo) = (RedisServer::start(), TestServer::start());
    let mut lines = bulk_lines("SADD", "a", 3000, 250, |i| format!("m{i}"));
    lines.extend(bulk_lines("SADD", "b", 3000, 250, |i| format!("m{}", i * 2)));
    lines.extend(bulk_lines("SADD", "c", 600, 200, |i| format!("m{}", i * 3)));
    lines.extend(
        [
            "SINTERCARD 2 a b",
            "SINTERCARD 2 a b LIMIT 10",
            "SINTERCARD 2 a b LIMIT 0",
            "SINTERCARD 3 a b c",
            "SINTERCARD 3 a b c LIMIT 100",
            "SINTERCARD 3 a b c LIMIT 1000000",
            "SINTERCARD 2 a missing",
            "SET str x",
            "SINTERCARD 2 missing str",
            "SINTERCARD 2 a str",
            "SMOVE a b m1",
            "SMOVE a b m2",
            "SMOVE a b nope",
            "SMOVE a a m3",
            "SMOVE a a m1",
            "SMOVE missing str m",
            "SMOVE a str m5",
            "SISMEMBER a m5",
            "SMOVE a fresh m7",
            "SMEMBERS fresh",
            "SCARD a",
            "SCARD b",
            "SISMEMBER b m1",
            "SISMEMBER a m1",
            "SINTERCARD 2 a b",
        ]
        .map(String::from),
    );
    // Move most of a small set into a large one, and back until the source is gone.
    for i in 0..600 {
        lines.push(format!("SMOVE c a m{}", i * 3));
    }
    lines.extend(["EXISTS c", "SCARD a", "SINTERCARD 2 a b"].map(String::from));
    run(&redis, &velo, "large set moves", &lines);
}

/// Random picks on split collections: right counts, members of the collection, distinct when the count
/// is positive, values and scores matching their fields and members; SPOP removes what it returns; and
/// many single picks hit a spread of members (a picker stuck on few buckets would not).
#[test]
fn random_picks_on_split_collections_are_members_distinct_and_counted() {
    let velo = TestServer::start();
    let mut conn = velo.connect();
    let size = 5000usize;
    for chunk in (0..size).collect::<Vec<_>>().chunks(500) {
        let mut hset = vec!["HSET".to_string(), "h".into()];
        let mut sadd = vec!["SADD".to_string(), "s".into()];
        let mut zadd = vec!["ZADD".to_string(), "z".into()];
        for i in chunk {
            hset.extend([format!("f{i}"), format!("v{i}")]);
            sadd.push(format!("m{i}"));
            zadd.extend([format!("{i}"), format!("z{i}")]);
        }
        for args in [hset, sadd, zadd] {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            conn.cmd(&args);
        }
    }
    let number = |s: &str, prefix: &str| -> usize {
        s.strip_prefix(prefix).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{s} is not a {prefix} member"))
    };
    for count in [1i64, 7, 100, 1000, 1666, 1667, 3000, 4999, 5000, 7000, -1, -50, -1000, -4999, -5000, -9000] {
        let want = if count > 0 { (count as usize).min(size) } else { count.unsigned_abs() as usize };
        let n = count.to_string();
        for (key, prefix) in [("s", "m"), ("h", "f"), ("z", "z")] {
            let command = match key {
                "s" => "SRANDMEMBER",
                "h" => "HRANDFIELD",
                _ => "ZRANDMEMBER",
            };
            let picked = value_to_strings(&reply(&mut conn, &[command, key, &n]));
            assert_eq!(picked.len(), want, "{command} {key} {count}");
            let numbers: Vec<usize> = picked.iter().map(|m| number(m, prefix)).collect();
            assert!(numbers.iter().all(|&i| i < size), "{command} {count}: a stranger");
            if count > 0 {
                let distinct: BTreeSet<usize> = numbers.iter().copied().collect();
                assert_eq!(distinct.len(), want, "{command} {key} {count}: repeats");
            }
        }
        let pairs = value_to_strings(&reply(&mut conn, &["HRANDFIELD", "h", &n, "WITHVALUES"]));
        assert_eq!(pairs.len(), 2 * want);
        for pair in pairs.chunks(2) {
            assert_eq!(&pair[1][1..], &pair[0][1..], "HRANDFIELD WITHVALUES pairs a field with its value");
        }
        let scored = value_to_strings(&reply(&mut conn, &["ZRANDMEMBER", "z", &n, "WITHSCORES"]));
        assert_eq!(scored.len(), 2 * want);
        for pair in scored.chunks(2) {
            assert_eq!(&pair[0][1..], pair[1], "ZRANDMEMBER WITHSCORES pairs a member with its score");
        }
    }
    // Single picks are spread: 3000 independent picks of 5000 members hit about 2255 distinct ones when
    // uniform; a picker favouring a part of the buckets hits far fewer.
    for (command, key) in [("SRANDMEMBER", "s"), ("HRANDFIELD", "h"), ("ZRANDMEMBER", "z")] {
        let picked = value_to_strings(&reply(&mut conn, &[command, key, "-3000"]));
        let distinct: BTreeSet<&String> = picked.iter().collect();
        assert!(distinct.len() > 2000, "{command} -3000 hit only {} distinct members", distinct.len());
    }
    // SPOP: what it returns is gone, and the count drops by as much.
    let mut left = size;
    for count in ["1", "10", "200", "1000"] {
        let popped = value_to_strings(&reply(&mut conn, &["SPOP", "s", count]));
        let distinct: BTreeSet<&String> = popped.iter().collect();
        assert_eq!(distinct.len(), count.parse::<usize>().unwrap());
        left -= popped.len();
        for member in popped.iter().take(50) {
            assert_eq!(conn.cmd(&["SISMEMBER", "s", member]), b":0\r\n");
        }
        assert_eq!(conn.cmd(&["SCARD", "s"]), format!(":{left}\r\n").into_bytes());
    }
    let popped = value_to_strings(&reply(&mut conn, &["SPOP", "s", "10000"]));
    assert_eq!(popped.len(), left);
    assert_eq!(conn.cmd(&["EXISTS", "s"]), b":0\r\n");
}

/// kill -9 while clients write to large collections under `--fsync always`: every acknowledged write comes
/// back, nothing unacknowledged appears out of order, and each collection's count agrees with its contents.
#[test]
fn kill_9_under_load_keeps_every_acknowledged_element_and_consistent_collections() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut velo = TestServer::start_in(dir.path(), &["--fsync", "always"]);
    let port = velo.port;
    let stop = Arc::new(AtomicBool::new(false));
    // Each writer reports how many of its writes were acknowledged.
    let writer = |kind: &'static str| {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut conn = Conn::connect(port);
            conn.set_timeout(Duration::from_secs(5));
            let mut acked = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let batch: Vec<String> = (acked..acked + 50).map(|i| format!("{i:08}")).collect();
                let mut args: Vec<String> = match kind {
                    "list" => vec!["RPUSH".into(), "l".into()],
                    "hash" => vec!["HSET".into(), "h".into()],
                    _ => vec!["ZADD".into(), "z".into()],
                };
                for item in &batch {
                    match kind {
                        "list" => args.push(item.clone()),
                        "hash" => args.extend([item.clone(), "v".into()]),
                        _ => args.extend([item.clone(), item.clone()]),
                    }
                }
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                conn.send(&crate::support::resp::command(&args.iter().map(|a| a.as_bytes()).collect::<Vec<_>>()));
                let reply = conn.read_reply();
                if reply.first() != Some(&b':') {
                    break;
                }
                acked += 50;
            }
            acked
        })
    };
    let writers = [writer("list"), writer("hash"), writer("zset")];
    std::thread::sleep(Duration::from_millis(1500));
    velo.kill9();
    stop.store(true, Ordering::Relaxed);
    let acked: Vec<u64> = writers.into_iter().map(|w| w.join().expect("writer")).collect();
    assert!(acked.iter().all(|n| *n > 600), "writers too slow to reach the split form: {acked:?}");
    let velo = TestServer::start_in(dir.path(), &["--fsync", "always"]);
    let mut conn = velo.connect();
    let items: Vec<String> = value_to_strings(&reply(&mut conn, &["LRANGE", "l", "0", "-1"]));
    assert!(items.len() as u64 >= acked[0], "list lost acknowledged items: {} < {}", items.len(), acked[0]);
    for (i, item) in items.iter().enumerate() {
        assert_eq!(item, &format!("{i:08}"), "list out of order at {i}");
    }
    assert_eq!(conn.cmd(&["LLEN", "l"]), format!(":{}\r\n", items.len()).into_bytes());
    let fields = value_to_strings(&reply(&mut conn, &["HKEYS", "h"]));
    assert!(fields.len() as u64 >= acked[1], "hash lost acknowledged fields");
    assert_eq!(conn.cmd(&["HLEN", "h"]), format!(":{}\r\n", fields.len()).into_bytes());
    let mut sorted_fields = fields.clone();
    sorted_fields.sort();
    for (i, field) in sorted_fields.iter().enumerate() {
        assert_eq!(field, &format!("{i:08}"), "hash fields are not a prefix of the writes");
    }
    let members = value_to_strings(&reply(&mut conn, &["ZRANGE", "z", "0", "-1"]));
    assert!(members.len() as u64 >= acked[2], "sorted set lost acknowledged members");
    assert_eq!(conn.cmd(&["ZCARD", "z"]), format!(":{}\r\n", members.len()).into_bytes());
    for (i, member) in members.iter().enumerate() {
        assert_eq!(member, &format!("{i:08}"), "sorted set out of order at {i}");
    }
}

/// RENAME of a large collection within its slot moves only its header: the parts stay (and are not
/// swept), the renamed collection reads the same, and a large collection it replaces is freed.
#[test]
fn rename_within_a_slot_moves_the_header_and_keeps_the_parts() {
    let velo = TestServer::start();
    let mut conn = velo.connect();
    let fill = |conn: &mut Conn, command: &str, key: &str, offset: usize| {
        for chunk in (0..2000).collect::<Vec<_>>().chunks(500) {
            let mut args = vec![command.to_string(), key.to_string()];
            for i in chunk {
                match command {
                    "HSET" => args.extend([format!("f{}", i + offset), "v".into()]),
                    "ZADD" => args.extend([format!("{i}"), format!("m{}", i + offset)]),
                    _ => args.push(format!("e{}", i + offset)),
                }
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            conn.cmd(&args);
        }
    };
    fill(&mut conn, "HSET", "{t}h", 0);
    fill(&mut conn, "RPUSH", "{t}l", 0);
    fill(&mut conn, "ZADD", "{t}z", 0);
    fill(&mut conn, "SADD", "{t}old", 0);
    conn.cmd(&["SAVE"]);
    let before = info_field(&mut conn, "velo", "collection_parts");
    assert_eq!(conn.cmd(&["RENAME", "{t}h", "{t}h2"]), b"+OK\r\n");
    assert_eq!(conn.cmd(&["RENAME", "{t}l", "{t}l2"]), b"+OK\r\n");
    assert_eq!(conn.cmd(&["RENAMENX", "{t}z", "{t}z2"]), b":1\r\n");
    assert_eq!(info_field(&mut conn, "velo", "collection_parts"), before, "no part was copied or deleted");
    // Replacing a large set frees its parts (swept later): what is left are the three renamed collections'.
    let set_parts = {
        conn.cmd(&["RENAME", "{t}l2", "{t}old"]);
        conn.cmd(&["SAVE"]);
        before
    };
    assert_eq!(conn.cmd(&["TYPE", "{t}old"]), b"+list\r\n");
    assert_eq!(conn.cmd(&["HLEN", "{t}h2"]), b":2000\r\n");
    assert_eq!(conn.cmd(&["HGET", "{t}h2", "f1999"]), b"$1\r\nv\r\n");
    assert_eq!(conn.cmd(&["LINDEX", "{t}old", "1999"]), b"$5\r\ne1999\r\n");
    assert_eq!(conn.cmd(&["ZRANK", "{t}z2", "m1500"]), b":1500\r\n");
    assert_eq!(conn.cmd(&["EXISTS", "{t}h", "{t}l", "{t}z", "{t}l2"]), b":0\r\n");
    // The sweeper frees the replaced set's parts, and only those.
    let start = Instant::now();
    loop {
        let parts = info_field(&mut conn, "velo", "collection_parts");
        if parts < set_parts {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "the replaced set's parts were never freed");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(conn.cmd(&["HLEN", "{t}h2"]), b":2000\r\n");
    assert_eq!(conn.cmd(&["LLEN", "{t}old"]), b":2000\r\n");
    assert_eq!(conn.cmd(&["ZCARD", "{t}z2"]), b":2000\r\n");
    assert_eq!(conn.cmd(&["ZRANGE", "{t}z2", "0", "0"]), b"*1\r\n$2\r\nm0\r\n");
}
