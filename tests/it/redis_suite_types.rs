//! Behaviours Redis 7.0's own tcl test suite checks in its data-type and keyspace files (unit/type/*,
//! unit/expire, unit/pause, unit/type/stream-cgroups ...) where Velo differed, each compared with
//! redis-server here since that suite is not part of CI (docs/compat.md, "Redis's own test suite").

use std::time::{Duration, Instant};

use crate::support::differential::compare;
use crate::support::{Conn, RedisServer, TestServer};

fn servers() -> (RedisServer, TestServer) {
    (RedisServer::start(), TestServer::start())
}

/// A field of INFO (`blocked_clients`, `expired_keys` ...), as text.
fn info_field(conn: &mut Conn, field: &str) -> String {
    let info = String::from_utf8_lossy(&conn.cmd(&["INFO", "everything"])).into_owned();
    let prefix = format!("{field}:");
    info.lines().find_map(|line| line.strip_prefix(&prefix)).unwrap_or_else(|| panic!("no {field} in INFO")).to_string()
}

/// Waits until `count` clients are blocked (the tcl suite's `wait_for_blocked_client`).
fn wait_blocked(conn: &mut Conn, count: usize) {
    let start = Instant::now();
    while info_field(conn, "blocked_clients") != count.to_string() {
        assert!(start.elapsed() < Duration::from_secs(10), "never saw {count} blocked clients");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// unit/type/stream-cgroups (and applications) set `appendfsync` at run time: the three policies are
/// accepted as Redis does, with its error for anything else.
#[test]
fn config_set_appendfsync_at_run_time() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "appendfsync",
        &[
            "CONFIG SET appendfsync always",
            "CONFIG GET appendfsync",
            "CONFIG SET appendfsync NO",
            "CONFIG GET appendfsync",
            "CONFIG SET appendfsync sometimes",
            "CONFIG SET appendfsync everysec maxmemory-policy nope",
            "CONFIG GET appendfsync",
            "CONFIG SET appendfsync everysec",
            "CONFIG GET appendfsync",
        ],
    );
}

/// After `CONFIG SET appendfsync always`, an acknowledged write is in the WAL on disk and survives
/// `kill -9` (the engine test `engine_crash::fsync_policy_changes_at_run_time` shows the fsync itself,
/// with a file system that forgets unsynced writes). `CONFIG REWRITE` keeps the policy.
#[test]
fn appendfsync_always_set_at_run_time_keeps_acknowledged_writes() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config_dir = tempfile::tempdir().expect("temporary directory");
    let config = config_dir.path().join("velo.conf");
    std::fs::write(&config, "appendfsync no\n").expect("config file");
    let config_path = config.to_str().expect("utf-8 path");
    let mut velo = TestServer::start_in(dir.path(), &["--config", config_path]);
    let mut conn = velo.connect();
    assert_eq!(conn.cmd(&["CONFIG", "GET", "appendfsync"]), b"*2\r\n$11\r\nappendfsync\r\n$2\r\nno\r\n");
    assert_eq!(conn.cmd(&["CONFIG", "SET", "appendfsync", "always"]), b"+OK\r\n");
    assert_eq!(conn.cmd(&["SET", "acked", "1"]), b"+OK\r\n");
    assert_eq!(conn.cmd(&["RPUSH", "list", "a", "b"]), b":2\r\n");
    assert_eq!(conn.cmd(&["CONFIG", "REWRITE"]), b"+OK\r\n");
    velo.kill9();
    let text = std::fs::read_to_string(&config).expect("rewritten config");
    assert!(text.lines().any(|line| line == "appendfsync always"), "{text}");
    let velo = TestServer::start_in(dir.path(), &["--config", config_path]);
    let mut conn = velo.connect();
    assert_eq!(conn.cmd(&["GET", "acked"]), b"$1\r\n1\r\n");
    assert_eq!(conn.cmd(&["LRANGE", "list", "0", "-1"]), b"*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    assert_eq!(conn.cmd(&["CONFIG", "GET", "appendfsync"]), b"*2\r\n$11\r\nappendfsync\r\n$6\r\nalways\r\n");
}

/// Runs `setup` on a fresh server's db 9, blocks a client with `block` (in db `block_db`), runs `wake`
/// in db 9 and returns the blocked client's reply (empty if it stayed blocked for 5 s).
fn blocked_reply(port: u16, setup: &[&[&str]], block_db: &str, block: &[&str], wake: &[&[&str]]) -> Vec<Vec<u8>> {
    let mut conn = Conn::connect(port);
    assert_eq!(conn.cmd(&["FLUSHALL"]), b"+OK\r\n");
    conn.cmd(&["SELECT", "9"]);
    for command in setup {
        conn.cmd(command);
    }
    let mut waiter = Conn::connect(port);
    waiter.cmd(&["SELECT", block_db]);
    let args: Vec<&[u8]> = block.iter().map(|a| a.as_bytes()).collect();
    waiter.send(&crate::support::resp::command(&args));
    wait_blocked(&mut conn, 1);
    let mut out: Vec<Vec<u8>> = wake.iter().map(|command| conn.cmd(command)).collect();
    waiter.set_timeout(Duration::from_secs(5));
    out.push(waiter.read_reply());
    out
}

/// unit/type/list "BLPOP when new key is moved into place" and "... created by SORT..STORE", and every
/// other command that creates a key a client waits on: RENAME, COPY, MOVE, RESTORE, SORT STORE, LMOVE,
/// ZUNIONSTORE, ZRANGESTORE, GEOSEARCHSTORE, SWAPDB, EXEC and a script. Each wakes the waiter as in Redis.
#[test]
fn key_moved_or_stored_into_place_wakes_blocked_clients() {
    let (redis, velo) = servers();
    type Case<'a> = (&'a str, Vec<&'a [&'a str]>, &'a str, Vec<&'a str>, Vec<&'a [&'a str]>);
    let cases: Vec<Case> = vec![
        (
            "rename",
            vec![],
            "9",
            vec!["BLPOP", "foo", "0"],
            vec![&["LPUSH", "bob", "abc", "def", "hij"], &["RENAME", "bob", "foo"]],
        ),
        (
            "blmpop rename",
            vec![],
            "9",
            vec!["BLMPOP", "0", "1", "foo", "LEFT"],
            vec![&["LPUSH", "bob", "abc", "def", "hij"], &["RENAMENX", "bob", "foo"]],
        ),
        (
            "sort store",
            vec![],
            "9",
            vec!["BLPOP", "foo", "5"],
            vec![&["LPUSH", "notfoo", "hello", "hola", "aguacate"], &["SORT", "notfoo", "ALPHA", "STORE", "foo"]],
        ),
        ("copy", vec![&["RPUSH", "src", "x", "y"]], "9", vec!["BRPOP", "foo", "0"], vec![&["COPY", "src", "foo"]]),
        (
            "copy to another db",
            vec![&["RPUSH", "src", "x", "y"]],
            "3",
            vec!["BLPOP", "foo", "0"],
            vec![&["COPY", "src", "foo", "DB", "3"]],
        ),
        ("move", vec![&["RPUSH", "foo", "x", "y"]], "4", vec!["BLPOP", "foo", "0"], vec![&["MOVE", "foo", "4"]]),
        (
            "lmove",
            vec![&["RPUSH", "src", "x", "y"]],
            "9",
            vec!["BLPOP", "foo", "0"],
            vec![&["LMOVE", "src", "foo", "LEFT", "RIGHT"]],
        ),
        (
            "zunionstore",
            vec![&["ZADD", "a", "1", "m", "2", "n"]],
            "9",
            vec!["BZPOPMIN", "foo", "0"],
            vec![&["ZUNIONSTORE", "foo", "1", "a"]],
        ),
        (
            "zrangestore",
            vec![&["ZADD", "a", "1", "m", "2", "n"]],
            "9",
            vec!["BZPOPMAX", "foo", "0"],
            vec![&["ZRANGESTORE", "foo", "a", "0", "-1"]],
        ),
        (
            "geosearchstore",
            vec![&["GEOADD", "g", "13.361389", "38.115556", "Palermo"]],
            "9",
            vec!["BZPOPMIN", "foo", "0"],
            vec![&["GEOSEARCHSTORE", "foo", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km"]],
        ),
        ("swapdb", vec![&["RPUSH", "foo", "x"]], "5", vec!["BLPOP", "foo", "0"], vec![&["SWAPDB", "9", "5"]]),
        (
            "exec",
            vec![],
            "9",
            vec!["BLPOP", "foo", "0"],
            vec![&["MULTI"], &["RPUSH", "tmp", "q"], &["RENAME", "tmp", "foo"], &["EXEC"]],
        ),
        (
            "script",
            vec![&["RPUSH", "tmp", "q"]],
            "9",
            vec!["BLPOP", "foo", "0"],
            vec![&["EVAL", "return redis.call('rename', KEYS[1], KEYS[2])", "2", "tmp", "foo"]],
        ),
        (
            "xread after rename",
            vec![&["XADD", "s", "1-1", "f", "v"]],
            "9",
            vec!["XREAD", "BLOCK", "0", "STREAMS", "foo", "$"],
            vec![&["RENAME", "s", "foo"], &["XADD", "foo", "2-1", "g", "w"]],
        ),
    ];
    for (name, setup, db, block, wake) in &cases {
        let expected = blocked_reply(redis.port, setup, db, block, wake);
        let got = blocked_reply(velo.port, setup, db, block, wake);
        assert!(!expected.last().is_some_and(Vec::is_empty), "{name}: redis-server did not wake the client");
        assert_eq!(
            got.iter().map(|r| crate::support::resp::show(r)).collect::<Vec<_>>(),
            expected.iter().map(|r| crate::support::resp::show(r)).collect::<Vec<_>>(),
            "{name}"
        );
    }
}

/// unit/pause "Test both active and passive expires are skipped during client pause": keys that expire
/// during a pause read as missing but are not deleted (INFO `expired_keys` unchanged) until it ends.
#[test]
fn expired_keys_are_kept_during_client_pause() {
    let (redis, velo) = servers();
    for port in [redis.port, velo.port] {
        let mut conn = Conn::connect(port);
        let before: u64 = info_field(&mut conn, "expired_keys").parse().expect("expired_keys");
        assert_eq!(conn.cmd(&["MULTI"]), b"+OK\r\n");
        conn.cmd(&["SET", "foo", "bar", "PX", "10"]);
        conn.cmd(&["SET", "bar", "foo", "PX", "10"]);
        conn.cmd(&["CLIENT", "PAUSE", "50000", "WRITE"]);
        assert_eq!(conn.cmd(&["EXEC"]), b"*3\r\n+OK\r\n+OK\r\n+OK\r\n", "{port}");
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(conn.cmd(&["GET", "foo"]), b"$-1\r\n", "{port}");
        assert_eq!(conn.cmd(&["GET", "bar"]), b"$-1\r\n", "{port}");
        assert_eq!(conn.cmd(&["EXISTS", "foo", "bar"]), b":0\r\n", "{port}");
        assert_eq!(info_field(&mut conn, "expired_keys"), before.to_string(), "{port}: deleted during the pause");
        assert_eq!(conn.cmd(&["CLIENT", "UNPAUSE"]), b"+OK\r\n");
        conn.cmd(&["GET", "foo"]);
        conn.cmd(&["GET", "bar"]);
        assert_eq!(info_field(&mut conn, "expired_keys"), (before + 2).to_string(), "{port}: after the pause");
    }
}

/// unit/type/stream-cgroups "XGROUP DESTROY should unblock XREADGROUP with -NOGROUP" and unit/info's
/// CLIENT UNBLOCK ... ERROR: a blocked command that ends with an error counts in its `failed_calls`
/// and in errorstats, as in Redis.
#[test]
fn blocked_command_ended_by_an_error_counts_as_failed() {
    let (redis, velo) = servers();
    for port in [redis.port, velo.port] {
        let mut conn = Conn::connect(port);
        assert_eq!(conn.cmd(&["CONFIG", "RESETSTAT"]), b"+OK\r\n");
        assert_eq!(conn.cmd(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]), b"+OK\r\n");
        let mut waiter = Conn::connect(port);
        waiter.send(&crate::support::resp::command(&[
            b"XREADGROUP",
            b"GROUP",
            b"g",
            b"a",
            b"BLOCK",
            b"0",
            b"STREAMS",
            b"s",
            b">",
        ]));
        wait_blocked(&mut conn, 1);
        assert_eq!(conn.cmd(&["XGROUP", "DESTROY", "s", "g"]), b":1\r\n");
        assert!(waiter.read_reply().starts_with(b"-NOGROUP"), "{port}");
        let stat = info_field(&mut conn, "cmdstat_xreadgroup");
        assert!(stat.starts_with("calls=1,") && stat.ends_with(",rejected_calls=0,failed_calls=1"), "{port}: {stat}");
        assert!(info_field(&mut conn, "errorstat_NOGROUP").starts_with("count=1"), "{port}");
        let id = String::from_utf8_lossy(&waiter.cmd(&["CLIENT", "ID"]))[1..].trim().to_string();
        waiter.send(&crate::support::resp::command(&[b"BLPOP", b"nolist", b"0"]));
        wait_blocked(&mut conn, 1);
        assert_eq!(conn.cmd(&["CLIENT", "UNBLOCK", &id, "ERROR"]), b":1\r\n");
        assert!(waiter.read_reply().starts_with(b"-UNBLOCKED"), "{port}");
        let stat = info_field(&mut conn, "cmdstat_blpop");
        assert!(stat.starts_with("calls=1,") && stat.ends_with(",rejected_calls=0,failed_calls=1"), "{port}: {stat}");
        assert_eq!(info_field(&mut conn, "total_error_replies"), "2", "{port}");
    }
}

/// unit/introspection-2 "TTL, TYPE and EXISTS do not alter the last access time of a key" and "TOUCH
/// alters the last access time of a key"; unit/dump "RESTORE can set LRU" and "RESTORE can set LFU";
/// OBJECT FREQ and IDLETIME under each kind of `maxmemory-policy`, compared with redis-server.
#[test]
fn object_idletime_and_freq_follow_accesses_as_redis() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "lfu",
        &[
            "CONFIG SET maxmemory-policy allkeys-lfu",
            "SET k v",
            "OBJECT FREQ k",
            "OBJECT IDLETIME k",
            "GET k",
            "OBJECT FREQ k",
            "OBJECT FREQ missing",
            "RESTORE r 0 \"\\x00\\x01v\\x0a\\x00\\x91\\x08\\xce\\xb2\\x198\\x8a\\xce\" FREQ 100",
            "OBJECT FREQ r",
            "RESTORE r2 0 \"\\x00\\x01v\\x0a\\x00\\x91\\x08\\xce\\xb2\\x198\\x8a\\xce\" IDLETIME 1000",
            "OBJECT FREQ r2",
            "CONFIG SET maxmemory-policy volatile-lru",
            "OBJECT FREQ k",
            "OBJECT IDLETIME missing",
            "CONFIG SET maxmemory-policy noeviction",
        ],
    );
    for port in [redis.port, velo.port] {
        let mut conn = Conn::connect(port);
        conn.cmd(&["SET", "foo", "bar"]);
        conn.cmd(&["SET", "bar", "foo"]);
        let dump = conn.cmd(&["DUMP", "foo"]);
        let dump = &dump[dump.iter().position(|&b| b == b'\n').unwrap() + 1..dump.len() - 2];
        conn.cmd(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]);
        conn.cmd_bytes(&[b"RESTORE", b"old", b"0", dump, b"IDLETIME", b"1000"]);
        let idle = |conn: &mut Conn, key: &str| -> i64 {
            let reply = conn.cmd(&["OBJECT", "IDLETIME", key]);
            String::from_utf8_lossy(&reply)[1..].trim().parse().unwrap_or_else(|_| panic!("{port}: {reply:?}"))
        };
        assert!((1000..=1010).contains(&idle(&mut conn, "old")), "{port}");
        std::thread::sleep(Duration::from_millis(2100));
        conn.cmd(&["TTL", "foo"]);
        conn.cmd(&["TYPE", "foo"]);
        conn.cmd(&["EXISTS", "foo"]);
        conn.cmd(&["OBJECT", "ENCODING", "foo"]);
        assert!(idle(&mut conn, "foo") >= 2, "{port}: TTL, TYPE, EXISTS, OBJECT do not touch");
        assert_eq!(conn.cmd(&["TOUCH", "foo", "nokey"]), b":1\r\n");
        assert!(idle(&mut conn, "foo") < 2, "{port}: TOUCH touches");
        conn.cmd(&["GET", "bar"]);
        assert!(idle(&mut conn, "bar") < 2, "{port}: GET touches");
        conn.cmd(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    }
}
