//! Redis 7.0's sticky encodings (`cmd::encoding`): a hash, set or sorted set promoted to hashtable /
//! skiplist keeps it after removals, through RENAME, MOVE and COPY, and across a restart (Velo's choice,
//! documented), while results written whole (STORE commands) choose from their content; and the SCAN
//! family pages a promoted collection however small. Plus the connection's buffers (`server::bufsize`):
//! an idle client's query buffer is freed, a large one shrinks, a large reply's write buffer does not stay.

use std::time::{Duration, Instant};

use crate::support::differential::{compare, servers};
use crate::support::resp::Value;
use crate::support::{Conn, TestServer};

/// Adds and removes around lowered thresholds, then OBJECT ENCODING, against redis-server.
#[test]
fn encodings_stay_promoted_as_in_redis() {
    let (redis, velo) = servers();
    let long = "x".repeat(70);
    let hash_long = format!("HSET hl f {long}");
    let zset_long = format!("ZADD zl 1 {long}");
    let zrem_long = format!("ZREM zl {long}");
    compare(
        &redis,
        &velo,
        "sticky encodings",
        &[
            "CONFIG SET hash-max-listpack-entries 4",
            "CONFIG SET set-max-intset-entries 4",
            "CONFIG SET zset-max-listpack-entries 4",
            // Hashes: past the entry count, and a long value; neither comes back after HDEL / HSET.
            "HSET h a 1 b 2 c 3 d 4",
            "OBJECT ENCODING h",
            "HSET h e 5",
            "OBJECT ENCODING h",
            "HDEL h a b c d",
            "OBJECT ENCODING h",
            "HGETALL h",
            "HSCAN h 0 COUNT 100",
            &hash_long,
            "OBJECT ENCODING hl",
            "HSET hl f short",
            "OBJECT ENCODING hl",
            "HSET small a 1",
            "OBJECT ENCODING small",
            // The object moves with RENAME, MOVE and COPY.
            "RENAME h h2",
            "OBJECT ENCODING h2",
            "COPY h2 h3",
            "OBJECT ENCODING h3",
            "MOVE h3 1",
            "SELECT 1",
            "OBJECT ENCODING h3",
            "SELECT 0",
            // Sets: a non-integer member or past set-max-intset-entries; SREM does not go back.
            "SADD s 1 2 3",
            "OBJECT ENCODING s",
            "SADD s a",
            "OBJECT ENCODING s",
            "SREM s a",
            "OBJECT ENCODING s",
            "SADD s2 1 2 3 4 5",
            "OBJECT ENCODING s2",
            "SREM s2 2 3 4 5",
            "OBJECT ENCODING s2",
            "SSCAN s2 0 COUNT 100",
            "SMOVE s2 s3 1",
            "OBJECT ENCODING s3",
            // A result written whole chooses from its content.
            "SUNIONSTORE s4 s",
            "OBJECT ENCODING s4",
            "SADD s5 1 2 3 4 5",
            "!SPOP s5",
            "OBJECT ENCODING s5",
            "SINTERSTORE s6 s s",
            "OBJECT ENCODING s6",
            // Sorted sets: past the entry count, a long member.
            "ZADD z 1 a 2 b 3 c 4 d",
            "OBJECT ENCODING z",
            "ZADD z 5 e",
            "OBJECT ENCODING z",
            "DUMP z",
            "DUMP zr",
            "DUMP sr",
            "ZREM z a b c d",
            "OBJECT ENCODING z",
            "ZSCAN z 0 COUNT 100",
            "ZREMRANGEBYSCORE z 0 10",
            "EXISTS z",
            &zset_long,
            "OBJECT ENCODING zl",
            "ZADD zl 2 m",
            &zrem_long,
            "OBJECT ENCODING zl",
            "ZADD z2 1 a 2 b 3 c 4 d 5 e",
            "ZREMRANGEBYRANK z2 0 2",
            "OBJECT ENCODING z2",
            "ZRANGESTORE z3 z2 0 -1",
            "OBJECT ENCODING z3",
            "ZUNIONSTORE z4 1 z2",
            "OBJECT ENCODING z4",
            // Emptied and made again: a new object.
            "DEL z2",
            "ZADD z2 1 a",
            "OBJECT ENCODING z2",
            "CONFIG SET hash-max-listpack-entries 512",
            "CONFIG SET set-max-intset-entries 512",
            "CONFIG SET zset-max-listpack-entries 128",
        ],
    );
}

/// A collection is judged against the thresholds only when a write adds to it (a hash: sets a field), as
/// Redis converts: after CONFIG lowers a threshold, a collection that is only read or shrunk keeps its
/// small encoding (OBJECT ENCODING, and HSCAN/SSCAN/ZSCAN return it whole), against redis-server.
#[test]
fn lowered_thresholds_apply_on_the_next_growing_write_as_in_redis() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "lowered thresholds",
        &[
            "CONFIG SET hash-max-listpack-entries 512",
            "CONFIG SET set-max-intset-entries 512",
            "CONFIG SET zset-max-listpack-entries 128",
            "HSET h a 1 b 2 c 3 d 4",
            "HSET hd a 1 b 2 c 3 d 4",
            "SADD s 1 2 3 4",
            "SADD sr 1 2 3 4",
            "ZADD z 1 a 2 b 3 c 4 d",
            "ZADD zr 1 a 2 b 3 c 4 d",
            "RPUSH l a b c d",
            "CONFIG SET hash-max-listpack-entries 2",
            "CONFIG SET set-max-intset-entries 2",
            "CONFIG SET zset-max-listpack-entries 2",
            // Not written since: still small.
            "OBJECT ENCODING h",
            "OBJECT ENCODING s",
            "OBJECT ENCODING z",
            "OBJECT ENCODING l",
            "HGETALL h",
            "HSCAN h 0 COUNT 1",
            "SSCAN s 0 COUNT 1",
            "ZSCAN z 0 COUNT 1",
            // DUMP writes the encoding Redis holds: byte for byte (a hash table's order is Redis's own,
            // so only listpacks, intsets and skiplists are compared).
            "DUMP h",
            "DUMP s",
            "DUMP z",
            // Removals and updates of members never convert...
            "HDEL hd a",
            "OBJECT ENCODING hd",
            "SREM sr 1",
            "SADD sr 2",
            "OBJECT ENCODING sr",
            "ZREM zr a",
            "ZADD zr 9 b",
            "ZINCRBY zr 1 c",
            "OBJECT ENCODING zr",
            "LPOP l",
            "OBJECT ENCODING l",
            // ...a hash's field update does (Redis checks the length after every set), and an addition.
            "HSET h a 10",
            "OBJECT ENCODING h",
            "HINCRBY hd b 1",
            "OBJECT ENCODING hd",
            "SADD s 5",
            "OBJECT ENCODING s",
            "ZADD z 5 e",
            "OBJECT ENCODING z",
            "DUMP z",
            "DUMP zr",
            "DUMP sr",
            "~HGETALL h",
            // Raised again: what was promoted stays, what was not is judged on its next addition.
            "CONFIG SET hash-max-listpack-entries 512",
            "CONFIG SET set-max-intset-entries 512",
            "CONFIG SET zset-max-listpack-entries 128",
            "OBJECT ENCODING h",
            "OBJECT ENCODING sr",
            "SADD sr 7",
            "OBJECT ENCODING sr",
            "ZADD zr 1 x",
            "OBJECT ENCODING zr",
            // A set of strings is a hash table from its first member.
            "SADD strs a",
            "OBJECT ENCODING strs",
        ],
    );
}

/// A string's encoding follows the command that wrote it, as Redis 7.0's `tryObjectEncoding` and its
/// in-place writers decide (`engine::StringEncoding`), against redis-server.
#[test]
fn string_encodings_follow_the_writing_command_as_in_redis() {
    let (redis, velo) = servers();
    let long = "y".repeat(50);
    let set_long = format!("SET long {long}");
    compare(
        &redis,
        &velo,
        "string encodings",
        &[
            // From the content: SET and its family, INCR.
            "SET n 123",
            "OBJECT ENCODING n",
            "OBJECT REFCOUNT n",
            "SET lead 0123",
            "OBJECT ENCODING lead",
            "SET e hello",
            "OBJECT ENCODING e",
            &set_long,
            "OBJECT ENCODING long",
            "MSET m1 7 m2 seven",
            "OBJECT ENCODING m1",
            "OBJECT ENCODING m2",
            "SETEX ex 100 42",
            "OBJECT ENCODING ex",
            "APPEND fresh 99",
            "OBJECT ENCODING fresh",
            // Changed in place: `raw` however short, even a number.
            "APPEND n 4",
            "OBJECT ENCODING n",
            "GET n",
            "OBJECT REFCOUNT n",
            "SET i 5",
            "SETRANGE i 0 7",
            "OBJECT ENCODING i",
            "SETRANGE i 0 \"\"",
            "SETRANGE sr 2 ab",
            "OBJECT ENCODING sr",
            "SETRANGE none 0 \"\"",
            "EXISTS none",
            // INCR makes an integer again.
            "INCR i",
            "OBJECT ENCODING i",
            "OBJECT REFCOUNT i",
            // SETBIT unshares even when the bit is already what it sets.
            "SET b 1",
            "SETBIT b 0 0",
            "OBJECT ENCODING b",
            "SETBIT nb 3 1",
            "OBJECT ENCODING nb",
            "SET bf 2",
            "BITFIELD bf GET u8 0",
            "OBJECT ENCODING bf",
            "BITFIELD bf SET u8 0 51",
            "OBJECT ENCODING bf",
            "GET bf",
            "BITOP OR dest e",
            "OBJECT ENCODING dest",
            // HyperLogLogs are written in place.
            "PFADD h a b c",
            "OBJECT ENCODING h",
            "PFMERGE h2 h",
            "OBJECT ENCODING h2",
            // INCRBYFLOAT's result is `embstr`, also when it reads as an integer.
            "INCRBYFLOAT f 3",
            "GET f",
            "OBJECT ENCODING f",
            "OBJECT REFCOUNT f",
            "SET f2 1.5",
            "INCRBYFLOAT f2 1.5",
            "OBJECT ENCODING f2",
            "INCRBY f2 1",
            "OBJECT ENCODING f2",
            // The object moves with RENAME, MOVE and COPY; SET and GETSET choose from the content again.
            "RENAME sr sr2",
            "OBJECT ENCODING sr2",
            "COPY sr2 sr3",
            "OBJECT ENCODING sr3",
            "COPY f f3",
            "OBJECT ENCODING f3",
            "MOVE sr3 1",
            "SELECT 1",
            "OBJECT ENCODING sr3",
            "SELECT 0",
            "SET sr2 77",
            "OBJECT ENCODING sr2",
            "GETSET b 8",
            "OBJECT ENCODING b",
            // An expiry change leaves the encoding alone.
            "EXPIRE f 100",
            "OBJECT ENCODING f",
            "PERSIST f",
            "OBJECT ENCODING f",
        ],
    );
}

/// Every element name of an HSCAN/SSCAN/ZSCAN iteration at COUNT 1, sorted, and the number of steps.
fn scan_all(conn: &mut Conn, command: &str, key: &str) -> (Vec<String>, usize) {
    let mut cursor = "0".to_string();
    let mut seen = Vec::new();
    let mut steps = 0;
    loop {
        let reply = conn.cmd(&[command, key, &cursor, "COUNT", "1"]);
        let (value, _) = crate::support::resp::parse(&reply).expect("a reply");
        let text = format!("{value:?}");
        steps += 1;
        let Value::Agg(_, Some(parts)) = value else { panic!("{text}") };
        let Value::Blob(_, Some(next)) = &parts[0] else { panic!("{text}") };
        cursor = String::from_utf8(next.clone()).expect("cursor");
        let Value::Agg(_, Some(items)) = &parts[1] else { panic!("{text}") };
        for item in items.iter().step_by(if command == "SSCAN" { 1 } else { 2 }) {
            if let Value::Blob(_, Some(name)) = item {
                seen.push(String::from_utf8_lossy(name).into_owned());
            }
        }
        if cursor == "0" || steps > 100 {
            break;
        }
    }
    seen.sort();
    (seen, steps)
}

/// A promoted collection shrunk back under the thresholds is paged like Redis's hash table (several steps
/// at COUNT 1, each element once), where one never promoted comes back whole; the promotion survives a
/// restart (the flag is stored with the value).
#[test]
fn a_promoted_small_collection_is_paged_and_stays_promoted_after_a_restart() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut velo = TestServer::start_in(dir.path(), &[]);
    let mut conn = velo.connect();
    for line in [
        "CONFIG SET hash-max-listpack-entries 4",
        "CONFIG SET set-max-intset-entries 4",
        "CONFIG SET zset-max-listpack-entries 4",
    ] {
        let args: Vec<&str> = line.split(' ').collect();
        assert_eq!(conn.cmd(&args), b"+OK\r\n");
    }
    conn.cmd(&["HSET", "h", "a", "1", "b", "2", "c", "3", "d", "4", "e", "5", "f", "6"]);
    conn.cmd(&["HDEL", "h", "a", "b", "c"]);
    conn.cmd(&["HSET", "listpack", "d", "4", "e", "5", "f", "6"]);
    conn.cmd(&["SADD", "s", "1", "2", "3", "4", "5", "6"]);
    conn.cmd(&["SREM", "s", "1", "2", "3"]);
    conn.cmd(&["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e", "6", "f"]);
    conn.cmd(&["ZREM", "z", "a", "b", "c"]);
    conn.cmd(&["SETRANGE", "r", "0", "12"]);
    conn.cmd(&["INCRBYFLOAT", "fl", "2"]);
    let three = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    let (fields, steps) = scan_all(&mut conn, "HSCAN", "h");
    assert_eq!((fields, steps > 1), (three(&["d", "e", "f"]), true));
    assert_eq!(scan_all(&mut conn, "HSCAN", "listpack"), (three(&["d", "e", "f"]), 1));
    let (members, steps) = scan_all(&mut conn, "SSCAN", "s");
    assert_eq!((members, steps > 1), (three(&["4", "5", "6"]), true));
    let (members, steps) = scan_all(&mut conn, "ZSCAN", "z");
    assert_eq!((members, steps > 1), (three(&["d", "e", "f"]), true));

    velo.terminate();
    let velo = TestServer::start_in(dir.path(), &[]);
    let mut conn = velo.connect();
    assert_eq!(conn.cmd(&["OBJECT", "ENCODING", "h"]), b"$9\r\nhashtable\r\n");
    assert_eq!(conn.cmd(&["OBJECT", "ENCODING", "listpack"]), b"$8\r\nlistpack\r\n");
    assert_eq!(conn.cmd(&["OBJECT", "ENCODING", "s"]), b"$9\r\nhashtable\r\n");
    assert_eq!(conn.cmd(&["OBJECT", "ENCODING", "z"]), b"$8\r\nskiplist\r\n");
    // A string written in place stays `raw`, INCRBYFLOAT's result `embstr` (the mark is in the value).
    assert_eq!(conn.cmd(&["OBJECT", "ENCODING", "r"]), b"$3\r\nraw\r\n");
    assert_eq!(conn.cmd(&["OBJECT", "ENCODING", "fl"]), b"$6\r\nembstr\r\n");
    // Still paged at the default thresholds: the object, not the configuration, decides.
    assert!(scan_all(&mut conn, "HSCAN", "h").1 > 1);
}

/// A large hash (split into parts) keeps its promotion when it shrinks back to one compact value.
#[test]
fn a_split_hash_joined_back_stays_promoted() {
    let (redis, velo) = servers();
    let mut fill = vec!["HSET".to_string(), "big".to_string()];
    let mut trim = vec!["HDEL".to_string(), "big".to_string()];
    for i in 0..600 {
        fill.push(format!("f{i}"));
        fill.push(i.to_string());
        if i >= 3 {
            trim.push(format!("f{i}"));
        }
    }
    let (fill, trim) = (fill.join(" "), trim.join(" "));
    compare(
        &redis,
        &velo,
        "split then joined",
        &[&fill, "OBJECT ENCODING big", &trim, "HLEN big", "OBJECT ENCODING big", "HGET big f2"],
    );
}

/// The `name=` line of CLIENT LIST.
fn client_line(observer: &mut Conn, name: &str) -> String {
    let reply = observer.cmd(&["CLIENT", "LIST"]);
    let text = String::from_utf8_lossy(&reply).into_owned();
    text.lines().find(|line| line.contains(&format!("name={name} "))).unwrap_or_default().to_string()
}

fn field(line: &str, name: &str) -> u64 {
    line.split(' ')
        .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {line}"))
}

/// `qbuf + qbuf-free` of the client named `name`: its query buffer's allocation.
fn query_buffer(observer: &mut Conn, name: &str) -> u64 {
    let line = client_line(observer, name);
    field(&line, "qbuf") + field(&line, "qbuf-free")
}

/// Redis's unit/querybuf, on both servers: an idle client's query buffer is freed after 2 s; one grown
/// by a 400 KB request shrinks once small requests follow. And a 1 MB reply leaves no large reply
/// buffer (`rbs`) behind.
#[test]
fn query_buffer_is_freed_when_idle_and_buffers_shrink_after_large_requests() {
    let (redis, velo) = servers();
    for (server, port) in [("redis", redis.port), ("velo", velo.port)] {
        let mut observer = Conn::connect(port);
        let mut client = Conn::connect(port);
        assert_eq!(client.cmd(&["CLIENT", "SETNAME", "qb"]), b"+OK\r\n", "{server}");
        let first = query_buffer(&mut observer, "qb");
        assert!((16384..32768).contains(&first), "{server}: query buffer after SETNAME {first}");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let line = client_line(&mut observer, "qb");
            if field(&line, "idle") >= 3 && field(&line, "qbuf") + field(&line, "qbuf-free") == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "{server}: idle query buffer not freed: {line}");
            std::thread::sleep(Duration::from_millis(50));
        }

        let big = "A".repeat(400_000);
        assert_eq!(client.cmd(&["SET", "x", &big]), b"+OK\r\n", "{server}");
        let grown = query_buffer(&mut observer, "qb");
        assert!(grown > 32768, "{server}: query buffer after a 400 KB request {grown}");
        let small = "A".repeat(100);
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut now = grown;
        while now >= grown && Instant::now() < deadline {
            client.cmd(&["SET", "x", &small]);
            now = query_buffer(&mut observer, "qb");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(now > 0 && now < grown, "{server}: query buffer {now} after small requests, {grown} before");

        client.cmd(&["SET", "x", &"B".repeat(1 << 20)]);
        assert_eq!(client.cmd(&["GET", "x"]).len(), (1 << 20) + 12, "{server}");
        assert_eq!(client.cmd(&["PING"]), b"+PONG\r\n");
        let rbs = field(&client_line(&mut observer, "qb"), "rbs");
        assert!(rbs <= 16384, "{server}: reply buffer after a 1 MB reply {rbs}");
    }
}

/// After CONFIG lowers `hash-max-listpack-value` / `zset-max-listpack-value`, a write of short elements
/// into a listpack that holds a long one (written while the threshold was higher) keeps the listpack:
/// Redis weighs only the elements a command writes (`hashTypeTryConversion`, `hashTypeSet`, `zsetAdd`)
/// and the count, never what the collection already holds. Against redis-server.
#[test]
fn only_the_written_elements_are_weighed_as_in_redis() {
    let (redis, velo) = servers();
    let long = "x".repeat(100);
    let hset_old = format!("HSET h old {long}");
    let zadd_old = format!("ZADD z 1 {long}");
    let hset_long_again = format!("HSET h2 f {long}");
    let zadd_long_new = format!("ZADD z2 5 {long}y");
    compare(
        &redis,
        &velo,
        "written elements weighed",
        &[
            "CONFIG SET hash-max-listpack-value 1000",
            "CONFIG SET zset-max-listpack-value 1000",
            &hset_old,
            "HSET h2 a 1",
            &hset_long_again,
            &zadd_old,
            "ZADD z2 1 a",
            "CONFIG SET hash-max-listpack-value 64",
            "CONFIG SET zset-max-listpack-value 64",
            "OBJECT ENCODING h",
            "OBJECT ENCODING z",
            // Short writes: the old long element does not count.
            "HSET h new short",
            "HSETNX h nx 1",
            "HINCRBY h n 5",
            "HINCRBYFLOAT h f 1.5",
            "OBJECT ENCODING h",
            "ZADD z 2 short",
            "ZINCRBY z 1 other",
            "ZADD z 7 short",
            "OBJECT ENCODING z",
            "HGETALL h",
            "ZRANGE z 0 -1 WITHSCORES",
            // An update of the long member's score is no addition either.
            &zadd_old,
            "OBJECT ENCODING z",
            // A long element written now converts.
            "HSET h2 f short",
            "OBJECT ENCODING h2",
            &hset_long_again,
            "OBJECT ENCODING h2",
            &zadd_long_new,
            "OBJECT ENCODING z2",
            // The count still converts.
            "CONFIG SET hash-max-listpack-entries 6",
            "HSET h a1 1",
            "OBJECT ENCODING h",
            "HSET h a2 1",
            "OBJECT ENCODING h",
            "CONFIG SET hash-max-listpack-entries 512",
            "CONFIG SET zset-max-listpack-entries 128",
        ],
    );
}

/// Each key's RDB type byte in `file` (`velo::rdb::read`), by key.
fn rdb_types(file: &[u8]) -> std::collections::BTreeMap<Vec<u8>, u8> {
    let mut reader = velo::rdb::read::RdbReader::new(file).expect("an RDB file");
    let mut types = std::collections::BTreeMap::new();
    while let Some(item) = reader.next().expect("a readable RDB file") {
        if let velo::rdb::read::Item::Key(record) = item {
            types.insert(record.key.to_vec(), file[record.offset as usize]);
        }
    }
    types
}

/// The file a server's SAVE wrote (its `dir` and `dbfilename`).
fn saved_file(conn: &mut Conn) -> std::path::PathBuf {
    let field = |conn: &mut Conn, name: &str| {
        let reply = String::from_utf8_lossy(&conn.cmd(&["CONFIG", "GET", name])).into_owned();
        reply.lines().nth(4).expect("CONFIG GET reply").to_string()
    };
    assert_eq!(conn.cmd(&["SAVE"]), b"+OK\r\n");
    std::path::Path::new(&field(conn, "dir")).join(field(conn, "dbfilename"))
}

/// OBJECT ENCODING and DEBUG DIGEST-VALUE of every key of `file`, as a fresh redis-server loads it.
fn loaded_by_redis(file: &std::path::Path, keys: &[Vec<u8>]) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(file, dir.path().join("load.rdb")).unwrap();
    let redis = crate::support::RedisServer::start_in(dir.path(), &["--dbfilename", "load.rdb"]);
    let mut conn = Conn::connect(redis.port);
    keys.iter()
        .map(|key| {
            let name = String::from_utf8_lossy(key).into_owned();
            let encoding = conn.cmd_bytes(&[b"OBJECT", b"ENCODING", key]);
            let digest = conn.cmd_bytes(&[b"DEBUG", b"DIGEST-VALUE", key]);
            (name, encoding, digest)
        })
        .collect()
}

/// SAVE (and the offline `velo rdb-dump`) write each hash, set and sorted set in the encoding OBJECT
/// ENCODING reports, as Redis writes the encoding it holds: the same RDB type per key as redis-server's
/// SAVE after the same commands (promotions, removals, lowered and raised thresholds), and each file
/// loads into a fresh redis-server with the same encodings and contents.
#[test]
fn saves_write_the_encoding_object_encoding_reports() {
    let (redis, mut velo) = servers();
    let long = "x".repeat(100);
    let script: Vec<String> = vec![
        "CONFIG SET hash-max-listpack-value 1000".into(),
        "CONFIG SET zset-max-listpack-value 1000".into(),
        format!("HSET hlong f {long}"),
        format!("ZADD zlong 1 {long}"),
        format!("HSET hmix old {long}"),
        format!("ZADD zmix 1 {long}"),
        "CONFIG SET hash-max-listpack-value 64".into(),
        "CONFIG SET zset-max-listpack-value 64".into(),
        "HSET hmix new short".into(),
        "ZADD zmix 2 short".into(),
        "CONFIG SET hash-max-listpack-entries 2".into(),
        "CONFIG SET set-max-intset-entries 2".into(),
        "CONFIG SET zset-max-listpack-entries 2".into(),
        "HSET hp a 1 b 2 c 3".into(),
        "HDEL hp a b".into(),
        "SADD sp 1 2 3".into(),
        "SREM sp 1 2".into(),
        "ZADD zp 1 a 2 b 3 c".into(),
        "ZREM zp a b".into(),
        "SADD sstr x".into(),
        "SADD sint 5".into(),
        "HSET hsmall a 1".into(),
        "ZADD zsmall 1 a".into(),
        "CONFIG SET hash-max-listpack-entries 512".into(),
        "CONFIG SET set-max-intset-entries 512".into(),
        "CONFIG SET zset-max-listpack-entries 128".into(),
        // Raised again: the unpromoted keep their small encoding until judged.
        "SADD sbig 1 2 3".into(),
        "RPUSH l a b c".into(),
        "SET s 1".into(),
    ];
    let mut rconn = Conn::connect(redis.port);
    let mut vconn = velo.connect();
    for line in &script {
        let args = velo::resp::decode::split_args(line.as_bytes()).unwrap();
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_ref()).collect();
        let (r, v) = (rconn.cmd_bytes(&args), vconn.cmd_bytes(&args));
        assert_eq!(v, r, "`{line}`");
    }
    let keys: Vec<Vec<u8>> =
        ["hlong", "zlong", "hmix", "zmix", "hp", "sp", "zp", "sstr", "sint", "hsmall", "zsmall", "l", "s"]
            .iter()
            .map(|k| k.as_bytes().to_vec())
            .collect();
    for key in &keys {
        let args: [&[u8]; 3] = [b"OBJECT", b"ENCODING", key];
        assert_eq!(vconn.cmd_bytes(&args), rconn.cmd_bytes(&args), "OBJECT ENCODING {}", String::from_utf8_lossy(key));
    }
    let redis_file = saved_file(&mut rconn);
    let velo_file = saved_file(&mut vconn);
    let redis_types = rdb_types(&std::fs::read(&redis_file).unwrap());
    assert_eq!(redis_types.len(), keys.len() + 1, "{redis_types:?}");
    assert_eq!(rdb_types(&std::fs::read(&velo_file).unwrap()), redis_types, "SAVE: RDB type per key");
    let from_redis = loaded_by_redis(&redis_file, &keys);
    assert_eq!(loaded_by_redis(&velo_file, &keys), from_redis, "SAVE loaded by redis-server");
    // Offline, `velo rdb-dump` reads the marks stored with each value: the same types.
    drop(vconn);
    assert_eq!(velo.terminate(), Some(0));
    let dumped = velo.dir.join("offline.rdb");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_velo"))
        .args(["rdb-dump".as_ref(), "--dir".as_ref(), velo.dir.as_os_str(), "-o".as_ref(), dumped.as_os_str()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(rdb_types(&std::fs::read(&dumped).unwrap()), redis_types, "rdb-dump: RDB type per key");
    assert_eq!(loaded_by_redis(&dumped, &keys), from_redis, "rdb-dump loaded by redis-server");
}
