//! DEBUG (src/cmd/debug.rs) against `redis-server --enable-debug-command yes`: digests computed from the
//! data (byte-identical to Redis's for every type), PROTOCOL's RESP3 shapes, the error texts, RELOAD
//! keeping every key, and the list behaviours Redis's own test suite found (LPOP arity, packed threshold).

use crate::support::differential::compare;
use crate::support::{Conn, RedisServer, TestServer};

fn redis_with_debug() -> (tempfile::TempDir, RedisServer) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let redis = RedisServer::start_in(dir.path(), &["--enable-debug-command", "yes"]);
    (dir, redis)
}

#[test]
fn debug_subcommands_match_redis() {
    let (_dir, redis) = redis_with_debug();
    let velo = TestServer::start();
    compare(
        &redis,
        &velo,
        "debug",
        &[
            "SET foo 20000",
            "SET big:str aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "RPUSH l a b c 12 -5",
            "SADD s a b 1",
            "SADD ints 1 2 3 100000",
            "ZADD z 1.5 a 2 b -inf c 0.1 d",
            "HSET h f v g w",
            "XADD x 1-1 a b",
            "XADD x 2-5 c d e f",
            "SET e v EX 100",
            "DEBUG DIGEST-VALUE foo big:str l s ints z h x e nokey",
            "DEBUG DIGEST-VALUE",
            "DEBUG DIGEST",
            "SELECT 3",
            "SET foo 20000",
            "DEBUG DIGEST",
            "SELECT 0",
            "DEBUG OBJECT nokey",
            "DEBUG RELOAD",
            "DEBUG DIGEST",
            "DEBUG RELOAD foo",
            "DEBUG QUICKLIST-PACKED-THRESHOLD 5gb",
            "DEBUG QUICKLIST-PACKED-THRESHOLD -1",
            "DEBUG QUICKLIST-PACKED-THRESHOLD 1b",
            "DEBUG QUICKLIST-PACKED-THRESHOLD 0",
            "DEBUG SET-ACTIVE-EXPIRE 1",
            "DEBUG SLEEP 0",
            "DEBUG LOG hello",
            "DEBUG ERROR \"FOO bar\"",
            "DEBUG foo",
            "DEBUG SLEEP",
            "DEBUG PROTOCOL string",
            "DEBUG PROTOCOL integer",
            "DEBUG PROTOCOL double",
            "DEBUG PROTOCOL bignum",
            "DEBUG PROTOCOL null",
            "DEBUG PROTOCOL array",
            "DEBUG PROTOCOL set",
            "DEBUG PROTOCOL map",
            "DEBUG PROTOCOL true",
            "DEBUG PROTOCOL false",
            "DEBUG PROTOCOL verbatim",
            "DEBUG PROTOCOL nothing",
            "LPOP l 1 2",
            "RPOP l a b",
            "LPOP l x",
            "LPOP l 2",
        ],
    );
}

/// Every reply of `args` on a RESP3 connection, as the raw bytes of `replies` top-level frames.
fn raw_resp3(port: u16, args: &[&str], replies: usize) -> Vec<u8> {
    let mut conn = Conn::connect(port);
    assert!(!conn.cmd(&["HELLO", "3"]).is_empty());
    conn.send(&crate::support::resp::command(&args.iter().map(|a| a.as_bytes()).collect::<Vec<_>>()));
    (0..replies).flat_map(|_| conn.read_reply()).collect()
}

#[test]
fn debug_protocol_attribute_and_push_match_redis() {
    let (_dir, redis) = redis_with_debug();
    let velo = TestServer::start();
    // An attribute (`|1`, its key, its value) then the reply it describes; a push then a normal reply.
    for (args, frames) in [(&["DEBUG", "PROTOCOL", "attrib"], 4), (&["DEBUG", "PROTOCOL", "push"], 2)] {
        let expected = raw_resp3(redis.port, args, frames);
        assert_eq!(raw_resp3(velo.port, args, frames), expected, "{args:?}");
    }
    let mut conn = Conn::connect(velo.port);
    assert_eq!(conn.cmd(&["DEBUG", "PROTOCOL", "attrib"]), b"$39\r\nSome real reply following the attribute\r\n");
    assert_eq!(conn.cmd(&["DEBUG", "PROTOCOL", "push"]), b"-ERR RESP2 is not supported by this command\r\n");
}

#[test]
fn debug_object_reports_encoding_and_serialized_length() {
    let velo = TestServer::start();
    let mut conn = Conn::connect(velo.port);
    conn.cmd(&["HSET", "h", "f", "v", "g", "w"]);
    conn.cmd(&["SET", "n", "20000"]);
    let line = String::from_utf8(conn.cmd(&["DEBUG", "OBJECT", "h"])).unwrap();
    // Redis's figure for the same hash (a 20-byte listpack, as `redis-cli DEBUG OBJECT` shows).
    assert!(
        line.starts_with("+Value at:slot") && line.contains(" refcount:1 encoding:listpack serializedlength:20"),
        "{line}"
    );
    let line = String::from_utf8(conn.cmd(&["DEBUG", "OBJECT", "n"])).unwrap();
    assert!(line.contains(" encoding:int serializedlength:3"), "{line}");
    // HELP lists what Velo has, in Redis's help format.
    let help = conn.cmd(&["DEBUG", "HELP"]);
    let text = String::from_utf8_lossy(&help);
    assert!(text.contains("+DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"), "{text}");
    assert!(text.contains("+DIGEST-VALUE <key> [<key> ...]") && text.contains("+RELOAD"), "{text}");
}

#[test]
fn debug_reload_keeps_every_key_and_digest() {
    let velo = TestServer::start();
    let mut conn = Conn::connect(velo.port);
    for i in 0..600 {
        conn.cmd(&["RPUSH", "biglist", &format!("item-{i}")]);
        conn.cmd(&["HSET", "bighash", &format!("f{i}"), &format!("v{i}")]);
    }
    conn.cmd(&["SET", "s", "v"]);
    let before = conn.cmd(&["DEBUG", "DIGEST"]);
    assert_ne!(before, b"+0000000000000000000000000000000000000000\r\n");
    assert_eq!(conn.cmd(&["DEBUG", "RELOAD"]), b"+OK\r\n");
    assert_eq!(conn.cmd(&["DEBUG", "DIGEST"]), before);
    assert_eq!(conn.cmd(&["DBSIZE"]), b":3\r\n");
    assert_eq!(conn.cmd(&["LINDEX", "biglist", "599"]), b"$8\r\nitem-599\r\n");
}

/// With a low packed threshold every item of a split list is alone in its chunk (Redis's plain nodes);
/// the list answers as before through pushes, inserts, LSET, LREM and LTRIM, and digests as Redis's.
#[test]
fn packed_threshold_keeps_split_lists_correct() {
    let (_dir, redis) = redis_with_debug();
    let velo = TestServer::start();
    let mut script: Vec<String> = vec!["DEBUG QUICKLIST-PACKED-THRESHOLD 10b".into()];
    for i in 0..700 {
        let item = if i % 3 == 0 { format!("long-item-number-{i}") } else { format!("s{i}") };
        script.push(format!("RPUSH l {item}"));
    }
    script.extend(
        [
            "LINSERT l AFTER s1 another-long-item",
            "LINSERT l BEFORE long-item-number-3 x",
            "LSET l 5 yet-another-long-item",
            "LSET l 6 y",
            "LPUSH l head-long-item h",
            "LREM l 1 s2",
            "LTRIM l 1 -2",
            "LRANGE l 0 20",
            "LINDEX l 350",
            "LPOS l y",
            "LLEN l",
            "DEBUG DIGEST-VALUE l",
            "DEBUG QUICKLIST-PACKED-THRESHOLD 0",
        ]
        .map(String::from),
    );
    let script: Vec<&str> = script.iter().map(String::as_str).collect();
    compare(&redis, &velo, "packed threshold", &script);
}

/// SMOVE of a member the destination already holds leaves a WATCH on the destination intact (Redis's
/// set.tcl "SMOVE only notify dstset when the addition is successful").
#[test]
fn smove_of_a_present_member_does_not_touch_the_destination() {
    let (_dir, redis) = redis_with_debug();
    let velo = TestServer::start();
    for port in [redis.port, velo.port] {
        let mut watcher = Conn::connect(port);
        let mut other = Conn::connect(port);
        watcher.cmd(&["FLUSHALL"]);
        watcher.cmd(&["SADD", "src{t}", "a", "b"]);
        watcher.cmd(&["SADD", "dst{t}", "a"]);
        watcher.cmd(&["WATCH", "dst{t}"]);
        watcher.cmd(&["MULTI"]);
        watcher.cmd(&["SADD", "dst{t}", "c"]);
        assert_eq!(other.cmd(&["SMOVE", "src{t}", "dst{t}", "a"]), b":1\r\n");
        assert_eq!(watcher.cmd(&["EXEC"]), b"*1\r\n:1\r\n", "port {port}");
        assert_eq!(watcher.cmd(&["SCARD", "dst{t}"]), b":2\r\n");
        // A member new to the destination does abort the transaction.
        watcher.cmd(&["WATCH", "dst{t}"]);
        watcher.cmd(&["MULTI"]);
        watcher.cmd(&["SCARD", "dst{t}"]);
        assert_eq!(other.cmd(&["SMOVE", "src{t}", "dst{t}", "b"]), b":1\r\n");
        assert_eq!(watcher.cmd(&["EXEC"]), b"*-1\r\n", "port {port}");
    }
}

/// DEBUG POPULATE makes the same keys and values as Redis (names, padding, cutting, existing keys kept,
/// long prefixes cut at 127 bytes) and refuses the same arguments.
#[test]
fn debug_populate_matches_redis() {
    let (_dir, redis) = redis_with_debug();
    let velo = TestServer::start();
    let long_prefix = "p".repeat(130);
    let populate_long = format!("DEBUG POPULATE 3 {long_prefix}");
    let get_long = format!("GET {}", &long_prefix[..127]);
    compare(
        &redis,
        &velo,
        "debug populate",
        &[
            "SET key:5 mine",
            "DEBUG POPULATE 1000",
            "DBSIZE",
            "GET key:0",
            "GET key:999",
            "GET key:5",
            "GET key:1000",
            "DEBUG POPULATE 10 pre 20",
            "GET pre:3",
            "STRLEN pre:9",
            "DEBUG POPULATE 10 cut 3",
            "GET cut:7",
            "DEBUG POPULATE 10 zero 0",
            "GET zero:4",
            "DEBUG POPULATE 1010",
            "DBSIZE",
            "GET key:1005",
            "DEBUG POPULATE 0",
            &populate_long,
            &get_long,
            "DBSIZE",
            "DEBUG POPULATE -1",
            "DEBUG POPULATE abc",
            "DEBUG POPULATE 5 x -3",
            "DEBUG POPULATE 5 x y",
            "DEBUG POPULATE",
            "DEBUG POPULATE 1 a 1 extra",
            "~KEYS cut:*",
        ],
    );
}

/// `enable-debug-command` is applied as in Redis: `no` refuses DEBUG with Redis's text (after the arity
/// check), `local` allows it from loopback connections; CONFIG GET reports the setting. Velo's default is
/// `yes`. Found by the issue-8 audit (branch `parity6`): the parameter was stored only, and CONFIG GET
/// reported `no` while DEBUG ran.
#[test]
fn enable_debug_command_is_applied_as_redis() {
    let dir = tempfile::tempdir().expect("temporary directory");
    for setting in ["no", "local"] {
        let redis = RedisServer::start_in(dir.path(), &["--enable-debug-command", setting]);
        let file = dir.path().join(format!("{setting}.conf"));
        std::fs::write(&file, format!("enable-debug-command {setting}\n")).expect("write config");
        let velo = TestServer::start_in(&dir.path().join(setting), &["--config", file.to_str().expect("utf-8")]);
        compare(
            &redis,
            &velo,
            setting,
            &[
                "DEBUG",
                "DEBUG SLEEP 0",
                "DEBUG NOSUCH",
                "CONFIG GET enable-debug-command",
                "CONFIG SET enable-debug-command yes",
            ],
        );
    }
    assert_eq!(TestServer::start().connect().cmd(&["DEBUG", "SLEEP", "0"]), b"+OK\r\n", "Velo's default");
}
