//! Differential tests: the same command sequences go to `redis-server` and to `velo serve`, and the raw
//! reply bytes must be identical (errors included), in RESP2 and in RESP3. A line starting with `~` has an
//! unordered reply (its elements are sorted before comparing); `!` runs on both without comparing; `-` expects
//! no reply at all (CLIENT REPLY OFF/SKIP).

use crate::support::differential::{compare, servers};
use crate::support::resp::{command, show};
use crate::support::Conn;

#[test]
fn strings() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "set and get",
        &[
            "SET k v",
            "GET k",
            "GET missing",
            "SET k v2 GET",
            "SET k v3 NX",
            "SET k v3 XX",
            "GET k",
            "SET n v XX",
            "SET n v NX GET",
            "SET k v NX XX",
            "SET k v EX",
            "SET k v EX 0",
            "SET k v EX -5",
            "SET k v EX abc",
            "SET k v PX 100000 KEEPTTL",
            "SET k v EX 100 PX 100",
            "SET k v FOO",
            "SET k v KEEPTTL",
            "SET k v GET GET",
            "SETNX k x",
            "SETNX k2 x",
            "GETSET k2 y",
            "GETSET none y",
            "GETDEL k2",
            "GETDEL k2",
            "GETEX k",
            "GETEX nokey",
            "GETEX k PERSIST",
            "GETEX k EX 0",
            "GETEX k EX 10 PX 10",
            "GETEX k FOO",
            "MSET a 1 b 2 c 3",
            "MGET a b c d",
            "MSET a 1 b",
            "MSETNX a 1 z 2",
            "MSETNX y 1 z 2",
            "MGET y z",
            "SETEX se 0 v",
            "SETEX se -1 v",
            "SETEX se x v",
            "PSETEX pe 0 v",
            "SETEX se 100 v",
            "GET se",
            "APPEND ap hello",
            "APPEND ap \" world\"",
            "GET ap",
            "STRLEN ap",
            "STRLEN none",
            "GETRANGE ap 0 4",
            "GETRANGE ap -5 -1",
            "GETRANGE ap 5 1",
            "GETRANGE ap -1 -5",
            "GETRANGE ap 0 100",
            "GETRANGE none 0 1",
            "GETRANGE ap x 1",
            "SUBSTR ap 1 3",
            "SETRANGE sr 5 abc",
            "GET sr",
            "SETRANGE sr 0 XY",
            "GET sr",
            "SETRANGE sr -1 x",
            "SETRANGE none 0 \"\"",
            "SETRANGE sr 1 \"\"",
            "SETRANGE sr 536870912 x",
            "EXISTS none",
        ],
    );
    compare(
        &redis,
        &velo,
        "counters",
        &[
            "INCR i",
            "INCRBY i 10",
            "DECR i",
            "DECRBY i 5",
            "INCRBY i x",
            "SET s abc",
            "INCR s",
            "SET big 9223372036854775807",
            "INCR big",
            "SET small -9223372036854775808",
            "DECR small",
            "DECRBY i -9223372036854775808",
            "SET sp \" 1\"",
            "INCR sp",
            "INCRBYFLOAT f 10.5",
            "INCRBYFLOAT f 0.1",
            "INCRBYFLOAT f -5",
            "INCRBYFLOAT f abc",
            "INCRBYFLOAT s 1",
            "INCRBYFLOAT f inf",
            "SET fl 3",
            "INCRBYFLOAT fl 1.5",
            "GET fl",
            "INCR fl",
            "SET t v EX 100",
            "INCR t2",
            "SET num 5 EX 100",
            "INCR num",
            "TTL num",
        ],
    );
    compare(
        &redis,
        &velo,
        "lcs",
        &[
            "MSET key1 ohmytext key2 mynewtext",
            "LCS key1 key2",
            "LCS key1 key2 LEN",
            "LCS key1 key2 IDX",
            "LCS key1 key2 IDX MINMATCHLEN 4",
            "LCS key1 key2 IDX MINMATCHLEN 4 WITHMATCHLEN",
            "LCS key1 key2 IDX LEN",
            "LCS key1 nokey",
            "LCS key1 key2 FOO",
        ],
    );
}

#[test]
fn edge_cases() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "overflowing times",
        &[
            "SET k v EX 9223372036854775807",
            "SET k v PX 9223372036854775807",
            "SET k v EXAT 9223372036854775807",
            "SET k v PXAT 9223372036854775807",
            "SETEX k 9223372036854775807 v",
            "PSETEX k 9223372036854775807 v",
            "SET k v",
            "GETEX k EX 9223372036854775807",
            "GETEX k PXAT 1",
            "EXISTS k",
            "SET k v",
            "EXPIREAT k -1",
            "EXISTS k",
            "SET k v",
            "EXPIRE k -9223372036854775808",
            "SET k v",
            "PEXPIRE k -9223372036854775808",
            "SET k v EXAT 1",
            "EXISTS k",
            "SET k v EX 1.5",
            "SET k v EX 01",
        ],
    );
    compare(
        &redis,
        &velo,
        "reset and hello",
        &[
            "CLIENT SETNAME before",
            "MULTI",
            "SET a 1",
            "RESET",
            "GET a",
            "CLIENT GETNAME",
            "SELECT 2",
            "RESET",
            "SET here 1",
            "SELECT 0",
            "GET here",
            "!HELLO 3 SETNAME viahello",
            "CLIENT GETNAME",
            "!HELLO 2",
            "HELLO 3 SETNAME \"bad name\"",
            "HELLO 3 AUTH default",
            "QUIT",
        ],
    );
    compare(
        &redis,
        &velo,
        "strings at the edges",
        &[
            "SET e \"\"",
            "GET e",
            "STRLEN e",
            "APPEND e \"\"",
            "GETRANGE e 0 -1",
            "SETRANGE e 3 x",
            "GET e",
            "INCRBY n 9223372036854775807",
            "INCR n",
            "INCRBYFLOAT n 1",
            "SET n 1e3",
            "INCRBYFLOAT n 1",
            "SET n 0x10",
            "INCRBYFLOAT n 1",
            "SET n \"1 \"",
            "INCRBYFLOAT n 1",
            "MGET",
            "MSET",
            "GETRANGE e 9223372036854775807 1",
            "SET sp \"a b\"",
            "GET sp",
            "SET bin \"\\x00\\x01\\xff\"",
            "GET bin",
            "STRLEN bin",
        ],
    );
}

#[test]
fn keys_and_expiry() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "keys",
        &[
            "MSET a 1 b 2 c 3",
            "DEL a b x",
            "DEL a",
            "EXISTS c c x",
            "TYPE c",
            "TYPE none",
            "UNLINK c",
            "DBSIZE",
            "MSET k1 1 k2 2 other 3",
            "~KEYS *",
            "~KEYS k*",
            "~KEYS k[12]",
            "~KEYS ?ther",
            "KEYS nomatch*",
            "RENAME k1 k3",
            "GET k3",
            "RENAME nokey x",
            "RENAME k3 k3",
            "RENAMENX k3 k2",
            "RENAMENX k3 k4",
            "RENAMENX k4 k4",
            "COPY k4 k5",
            "COPY k4 k5",
            "COPY k4 k5 REPLACE",
            "COPY k4 k4",
            "COPY k4 k4 DB 1",
            "COPY k4 x DB 99",
            "COPY k4 x DB x",
            "COPY nokey x",
            "COPY k4 x FOO",
            "MOVE k4 1",
            "MOVE k4 1",
            "MOVE k5 0",
            "MOVE k5 99",
            "MOVE k5 x",
            "SELECT 1",
            "GET k4",
            "SELECT 99",
            "SELECT x",
            "SELECT 0",
            "TOUCH k2 other nokey",
            "DBSIZE",
            "SET o 12345",
            "OBJECT ENCODING o",
            "SET o abc",
            "OBJECT ENCODING o",
            "SET o aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "OBJECT ENCODING o",
            "OBJECT ENCODING nokey",
            "OBJECT REFCOUNT nokey",
            "OBJECT FOO o",
            "OBJECT",
            "!RANDOMKEY",
            "FLUSHDB",
            "RANDOMKEY",
            "SET only 1",
            "RANDOMKEY",
            "FLUSHDB FOO",
            "FLUSHALL SYNC",
            "FLUSHALL ASYNC",
        ],
    );
    compare(
        &redis,
        &velo,
        "expiry",
        &[
            "SET k v",
            "TTL k",
            "PTTL k",
            "EXPIRETIME k",
            "TTL nokey",
            "PEXPIRETIME nokey",
            "EXPIRE k 100",
            "TTL k",
            "EXPIRE k 200 NX",
            "EXPIRE k 200 XX",
            "TTL k",
            "EXPIRE k 100 GT",
            "EXPIRE k 300 GT",
            "TTL k",
            "EXPIRE k 400 LT",
            "EXPIRE k 50 LT",
            "TTL k",
            "EXPIRE k 10 NX XX",
            "EXPIRE k 10 GT LT",
            "EXPIRE k 10 FOO",
            "EXPIRE k x",
            "EXPIRE nokey 10",
            "PERSIST k",
            "PERSIST k",
            "TTL k",
            "EXPIRE k 10 LT",
            "TTL k",
            "SET k2 v",
            "EXPIRE k2 10 GT",
            "EXPIREAT k 99999999999",
            "EXPIRETIME k",
            "PEXPIREAT k 99999999999000",
            "PEXPIRETIME k",
            "EXPIRE k 9223372036854775807",
            "PEXPIRE k 9223372036854775807",
            "EXPIRE k -1",
            "EXISTS k",
            "SET k v",
            "PEXPIRE k 0",
            "GET k",
            "SET k v PXAT 1",
            "GET k",
            "SET k v EXAT 99999999999",
            "EXPIRETIME k",
            "SET k v PX 100000",
            "SET k w KEEPTTL",
            "TTL k",
        ],
    );
}

#[test]
fn errors_and_connection() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "errors",
        &[
            "FOO",
            "FOO a b",
            "GET",
            "GET a b",
            "SET k",
            "CONFIG",
            "CONFIG FOO",
            "CONFIG GET",
            "CLIENT FOO",
            "OBJECT HELP",
            "CONFIG HELP",
            "PING",
            "PING hello",
            "PING a b",
            "ECHO hi",
            "ECHO",
            "HELLO 4",
            "HELLO x",
            "HELLO 3 FOO",
            "CLIENT SETNAME \"a b\"",
            "CLIENT SETNAME myname",
            "CLIENT GETNAME",
            "CLIENT SETNAME \"\"",
            "CLIENT GETNAME",
            "CLIENT NO-EVICT on",
            "CLIENT NO-EVICT maybe",
            "COMMAND GETKEYS SET k v",
            "COMMAND GETKEYS MSET a 1 b 2",
            "COMMAND GETKEYS PING",
            "COMMAND GETKEYS PING x",
            "COMMAND GETKEYS FOO x",
            "COMMAND GETKEYS GET",
            "COMMAND GETKEYS GET a b",
            "COMMAND INFO nosuchcommand",
            "SWAPDB 0 x",
            "SWAPDB x 0",
            "SWAPDB 0 99",
            "LASTSAVE x",
            "TIME x",
            "DBSIZE x",
            "SHUTDOWN ABORT",
            "CONFIG SET databases 5",
            "CONFIG SET nosuch 1",
            "CONFIG SET maxclients",
            "SCAN x",
            "SCAN 0 COUNT 0",
            "SCAN 0 FOO",
            "MULTI",
            "MULTI",
            "EXEC",
            "EXEC",
            "DISCARD",
        ],
    );
    compare(
        &redis,
        &velo,
        "client reply",
        &["-CLIENT REPLY OFF", "-SET a 1", "CLIENT REPLY ON", "-CLIENT REPLY SKIP", "-GET a", "GET a", "PING"],
    );
}

#[test]
fn transactions() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "multi exec",
        &[
            "MULTI",
            "SET a 1",
            "INCR a",
            "GET a",
            "EXEC",
            "MULTI",
            "SET b 1",
            "INCR a b",
            "FOO",
            "EXEC",
            "GET b",
            "MULTI",
            "SET s abc",
            "INCR s",
            "GET s",
            "EXEC",
            "MULTI",
            "DISCARD",
            "DISCARD",
            "MULTI",
            "WATCH x",
            "EXEC",
            "WATCH a",
            "MULTI",
            "INCR a",
            "EXEC",
            "WATCH a",
            "SET a 10",
            "MULTI",
            "INCR a",
            "EXEC",
            "WATCH a",
            "UNWATCH",
            "SET a 20",
            "MULTI",
            "INCR a",
            "EXEC",
            "MULTI",
            "SELECT 1",
            "SET x 1",
            "EXEC",
            "GET x",
            "SELECT 1",
            "GET x",
            "MULTI",
            "SHUTDOWN",
            "EXEC",
        ],
    );
    // WATCH is broken by another client's write.
    for port in [redis.port, velo.port] {
        let mut first = Conn::connect(port);
        let mut second = Conn::connect(port);
        first.cmd(&["FLUSHALL"]);
        first.cmd(&["SET", "w", "1"]);
        assert_eq!(first.cmd(&["WATCH", "w"]), b"+OK\r\n");
        second.cmd(&["SET", "w", "2"]);
        first.cmd(&["MULTI"]);
        first.cmd(&["SET", "w", "3"]);
        assert_eq!(first.cmd(&["EXEC"]), b"*-1\r\n", "port {port}");
        assert_eq!(first.cmd(&["GET", "w"]), b"$1\r\n2\r\n");
        // Expiry of a watched key breaks the transaction too.
        first.cmd(&["SET", "e", "1", "PX", "50"]);
        first.cmd(&["WATCH", "e"]);
        std::thread::sleep(std::time::Duration::from_millis(120));
        first.cmd(&["MULTI"]);
        first.cmd(&["SET", "other", "1"]);
        assert_eq!(first.cmd(&["EXEC"]), b"*-1\r\n", "port {port}");
    }
}

#[test]
fn pubsub() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "pubsub commands",
        &[
            "PUBLISH ch hello",
            "PUBSUB NUMSUB ch other",
            "PUBSUB NUMPAT",
            "PUBSUB CHANNELS",
            "UNSUBSCRIBE",
            "PUNSUBSCRIBE",
            "SUBSCRIBE a b",
            "!PING",
            "PSUBSCRIBE p*",
            "UNSUBSCRIBE a",
            "PUNSUBSCRIBE",
            "UNSUBSCRIBE",
            "PING",
            "MULTI",
            "SUBSCRIBE x y",
            "PING",
            "EXEC",
            "PING",
            "PING",
        ],
    );
    for resp3 in [false, true] {
        let mut outputs = Vec::new();
        for port in [redis.port, velo.port] {
            let mut subscriber = Conn::connect(port);
            let mut publisher = Conn::connect(port);
            if resp3 {
                subscriber.cmd(&["HELLO", "3"]);
            }
            let out = vec![
                subscriber.cmd(&["SUBSCRIBE", "news"]),
                subscriber.cmd(&["PSUBSCRIBE", "n*"]),
                subscriber.cmd(&["GET", "x"]),
                publisher.cmd(&["PUBLISH", "news", "hi"]),
                subscriber.read_reply(),
                subscriber.read_reply(),
                publisher.cmd(&["PUBSUB", "NUMSUB", "news"]),
                publisher.cmd(&["PUBSUB", "CHANNELS", "n*"]),
                publisher.cmd(&["PUBSUB", "NUMPAT"]),
                subscriber.cmd(&["PING"]),
                subscriber.cmd(&["UNSUBSCRIBE", "news"]),
                subscriber.cmd(&["PUNSUBSCRIBE", "n*"]),
                publisher.cmd(&["PUBLISH", "news", "hi"]),
            ];
            outputs.push(out);
        }
        for (i, (r, v)) in outputs[0].iter().zip(&outputs[1]).enumerate() {
            assert!(r == v, "pubsub step {i} (resp3 {resp3}):\n  redis: {}\n  velo:  {}", show(r), show(v));
        }
    }
}

#[test]
fn swapdb_and_scan() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "swapdb",
        &[
            "SET a 0",
            "SELECT 1",
            "SET b 1",
            "SWAPDB 0 1",
            "GET a",
            "GET b",
            "SELECT 0",
            "GET b",
            "SWAPDB 0 1",
            "GET a",
            "DBSIZE",
        ],
    );
    // SCAN: cursors differ by design; the set of keys found by a full iteration must not.
    let mut found = Vec::new();
    for port in [redis.port, velo.port] {
        let mut conn = Conn::connect(port);
        conn.cmd(&["FLUSHALL"]);
        for i in 0..300 {
            conn.cmd(&["SET", &format!("key:{i}"), "v"]);
        }
        conn.cmd(&["SET", "other", "v"]);
        let mut keys = Vec::new();
        let mut cursor = "0".to_string();
        loop {
            let reply = conn.cmd(&["SCAN", &cursor, "MATCH", "key:*", "COUNT", "50", "TYPE", "string"]);
            let (value, _) = crate::support::resp::parse(&reply).expect("scan reply");
            let crate::support::resp::Value::Agg(_, Some(parts)) = value else { panic!("scan reply {}", show(&reply)) };
            let crate::support::resp::Value::Blob(_, Some(next)) = &parts[0] else { panic!() };
            let crate::support::resp::Value::Agg(_, Some(batch)) = &parts[1] else { panic!() };
            keys.extend(batch.iter().cloned());
            cursor = String::from_utf8(next.clone()).unwrap();
            if cursor == "0" {
                break;
            }
        }
        keys.sort();
        keys.dedup();
        found.push(keys);
    }
    assert_eq!(found[0].len(), 300);
    assert_eq!(found[0], found[1]);
}

#[test]
fn bitmaps() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "setbit getbit",
        &[
            "SETBIT b 7 1",
            "SETBIT b 7 0",
            "SETBIT b 100 1",
            "GET b",
            "GETBIT b 100",
            "GETBIT b 1000",
            "GETBIT none 0",
            "SETBIT b -1 1",
            "SETBIT b x 1",
            "SETBIT b 1 2",
            "SETBIT b 4294967296 1",
            "GETBIT b x",
            "SET s foobar",
            "SETBIT s 2 1",
            "GET s",
        ],
    );
    compare(
        &redis,
        &velo,
        "bitcount bitpos",
        &[
            "SET mykey foobar",
            "BITCOUNT mykey",
            "BITCOUNT mykey 0 0",
            "BITCOUNT mykey 1 1",
            "BITCOUNT mykey 1 1 BYTE",
            "BITCOUNT mykey 5 30 BIT",
            "BITCOUNT mykey -3 -1 BIT",
            "BITCOUNT mykey 0",
            "BITCOUNT mykey 0 1 FOO",
            "BITCOUNT mykey a b",
            "BITCOUNT none",
            "BITCOUNT mykey 4 2",
            "SET p \"\\xff\\xf0\\x00\"",
            "BITPOS p 0",
            "BITPOS p 1",
            "BITPOS p 0 2 -1",
            "BITPOS p 1 2 -1",
            "BITPOS p 0 0 1",
            "BITPOS p 1 7 15 BIT",
            "BITPOS p 0 3 12 BIT",
            "SET ones \"\\xff\\xff\"",
            "BITPOS ones 0",
            "BITPOS ones 0 0 -1",
            "BITPOS ones 0 1",
            "BITPOS none 1",
            "BITPOS none 0",
            "BITPOS p 2",
            "BITPOS p x",
            "BITPOS p 1 a",
            "BITPOS p 1 0 1 FOO",
            "SET z \"\\x00\"",
            "BITPOS z 1",
        ],
    );
    compare(
        &redis,
        &velo,
        "bitop",
        &[
            "SET a foof",
            "SET b obar",
            "BITOP AND d a b",
            "GET d",
            "BITOP OR d a b",
            "GET d",
            "BITOP XOR d a b",
            "GET d",
            "BITOP NOT d a",
            "GET d",
            "BITOP NOT d a b",
            "BITOP FOO d a",
            "BITOP AND d a none",
            "GET d",
            "BITOP OR d none1 none2",
            "EXISTS d",
            "SET short ab",
            "BITOP OR d a short",
            "GET d",
        ],
    );
    compare(
        &redis,
        &velo,
        "bitfield",
        &[
            "BITFIELD f SET i8 0 100 GET i8 0",
            "BITFIELD f INCRBY i8 0 100",
            "BITFIELD f OVERFLOW SAT INCRBY i8 0 100",
            "BITFIELD f OVERFLOW FAIL INCRBY i8 0 100",
            "BITFIELD f OVERFLOW WRAP INCRBY u4 #1 20 GET u4 #1",
            "BITFIELD f SET u63 10 12345 GET u63 10",
            "BITFIELD f GET i64 0",
            "BITFIELD f GET u64 0",
            "BITFIELD f GET i0 0",
            "BITFIELD f GET x8 0",
            "BITFIELD f OVERFLOW FOO",
            "BITFIELD f FOO",
            "BITFIELD f GET i8",
            "BITFIELD f GET i8 -1",
            "BITFIELD f SET i8 #x 1",
            "BITFIELD f SET i8 0 x",
            "BITFIELD f",
            "BITFIELD_RO f GET u8 0 GET i16 4",
            "BITFIELD_RO f SET u8 0 1",
            "BITFIELD g OVERFLOW FAIL SET u2 0 9",
            "GET g",
            "BITFIELD g SET i3 0 9 GET i3 0",
            "BITFIELD h OVERFLOW SAT SET i4 0 -100",
            "GET f",
        ],
    );
}

/// COMMAND INFO's first seven fields (name, arity, flags, key positions, ACL categories) for every command
/// Velo has must equal Redis's, except where `commands/*.json` documents a difference.
#[test]
fn command_info_matches_redis() {
    use crate::support::resp::{encode, parse, Value};
    let (redis, velo) = servers();
    let mut velo_conn = Conn::connect(velo.port);
    let mut redis_conn = Conn::connect(redis.port);
    let names = velo_conn.cmd(&["COMMAND", "LIST"]);
    let (Value::Agg(_, Some(names)), _) = parse(&names).unwrap() else { panic!() };
    let mut mismatches = Vec::new();
    for name in names {
        let Value::Blob(_, Some(name)) = name else { panic!() };
        let name = String::from_utf8(name).unwrap();
        let head = |conn: &mut Conn| {
            let reply = conn.cmd(&["COMMAND", "INFO", &name]);
            match parse(&reply) {
                Some((Value::Agg(_, Some(mut entries)), _)) => match entries.remove(0) {
                    Value::Agg(_, Some(fields)) => {
                        let mut out = Vec::new();
                        fields.iter().take(7).for_each(|f| encode(f, &mut out));
                        out
                    }
                    other => format!("{other:?}").into_bytes(),
                },
                _ => reply,
            }
        };
        let (expected, actual) = (head(&mut redis_conn), head(&mut velo_conn));
        if expected == format!("{:?}", Value::Blob(b'$', None)).into_bytes() {
            continue; // newer than Redis 7.0 (CLIENT NO-TOUCH is 7.2)
        }
        if expected != actual {
            mismatches.push(format!("{name}:\n  redis: {}\n  velo:  {}", show(&expected), show(&actual)));
        }
    }
    assert!(mismatches.is_empty(), "{} commands differ:\n{}", mismatches.len(), mismatches.join("\n"));
}

/// Random command sequences over a small keyspace, seeded (`VELO_DIFF_SEED` to reproduce): both servers
/// must answer every command identically.
#[test]
fn random_sequences() {
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};
    let (redis, velo) = servers();
    let base: u64 = crate::support::differential::seed_base(1_764_000_000);
    let keys = ["a", "b", "c", "{t}x", "{t}y", "n", "f"];
    let values = ["1", "-7", "42", "3.5", "abc", "\"\"", "\"\\x00\\xff\"", "hello world", "9223372036854775806", "0.1"];
    for seed in base..base + 5 {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut script: Vec<String> = Vec::new();
        let mut in_multi = false;
        for _ in 0..400 {
            let k = keys[rng.gen_range(0..keys.len())];
            let k2 = keys[rng.gen_range(0..keys.len())];
            let v = values[rng.gen_range(0..values.len())];
            let n: i64 = rng.gen_range(-20..40);
            let line = match rng.gen_range(0..95) {
                0 => format!("SET {k} {v}"),
                1 => format!("SET {k} {v} NX GET"),
                2 => format!("SET {k} {v} XX EX 1000"),
                3 => format!("SET {k} {v} KEEPTTL GET"),
                4 => format!("GET {k}"),
                5 => format!("DEL {k} {k2}"),
                6 => format!("EXISTS {k} {k2}"),
                7 => format!("INCR {k}"),
                8 => format!("INCRBY {k} {n}"),
                9 => format!("DECRBY {k} {n}"),
                10 => format!("APPEND {k} {v}"),
                11 => format!("STRLEN {k}"),
                12 => format!("GETRANGE {k} {n} {}", n + rng.gen_range(-5..10)),
                13 => format!("SETRANGE {k} {} {v}", rng.gen_range(0..12)),
                14 => format!("GETSET {k} {v}"),
                15 => format!("GETDEL {k}"),
                16 => format!("GETEX {k} PERSIST"),
                17 => format!("MSET {k} {v} {k2} {v}"),
                18 => format!("MGET {k} {k2} zz"),
                19 => format!("MSETNX {k} {v} {k2} {v}"),
                20 => format!("SETNX {k} {v}"),
                21 => format!("RENAME {k} {k2}"),
                22 => format!("RENAMENX {k} {k2}"),
                23 => format!("COPY {k} {k2}{}", if rng.gen_bool(0.5) { " REPLACE" } else { "" }),
                24 => format!("EXPIRE {k} {}", rng.gen_range(500..2000)),
                25 => format!("PERSIST {k}"),
                26 => format!("TTL {k}"),
                27 => format!("SETBIT {k} {} {}", rng.gen_range(0..40), rng.gen_range(0..2)),
                28 => format!("GETBIT {k} {}", rng.gen_range(0..40)),
                29 => format!("BITCOUNT {k} {n} {}", rng.gen_range(-3..5)),
                30 => format!("BITPOS {k} {} {}", rng.gen_range(0..2), rng.gen_range(-3..3)),
                31 => format!("BITOP {} {k} {k2} c", ["AND", "OR", "XOR"][rng.gen_range(0..3)]),
                32 => format!("INCRBYFLOAT {k} {}", ["0.1", "-1.5", "1e2", "3", "abc"][rng.gen_range(0..5)]),
                33 => format!("LCS {k} {k2}"),
                34 => format!("TYPE {k}"),
                35 => format!("STRLEN {k2}"),
                36 => format!("SELECT {}", rng.gen_range(0..2)),
                37 => format!("MOVE {k} {}", rng.gen_range(0..2)),
                38 => "SWAPDB 0 1".to_string(),
                39 => "DBSIZE".to_string(),
                40 if in_multi => "DBSIZE".to_string(),
                40 => "~KEYS *".to_string(),
                41 => format!("BITFIELD {k} INCRBY i8 {} {n} GET u4 0", rng.gen_range(0..16)),
                42 => {
                    format!("EXPIRE {k} {} {}", rng.gen_range(500..2000), ["NX", "XX", "GT", "LT"][rng.gen_range(0..4)])
                }
                43 => format!("PEXPIRE {k} {}", rng.gen_range(-1..1)),
                44 => "MULTI".to_string(),
                45 | 46 => "EXEC".to_string(),
                47 => "DISCARD".to_string(),
                48 => format!("WATCH {k}"),
                50 => format!("HSET {k} f{} {v}", n.rem_euclid(4)),
                51 => format!("HGET {k} f{}", n.rem_euclid(4)),
                52 => format!("HDEL {k} f{} f{}", n.rem_euclid(4), (n + 1).rem_euclid(4)),
                53 => format!("HINCRBY {k} f{} {n}", n.rem_euclid(4)),
                54 => format!("~HGETALL {k}"),
                55 => format!("HLEN {k}"),
                56 => format!("HMGET {k} f0 f1 f9"),
                57 => format!("HSETNX {k} f{} {v}", n.rem_euclid(4)),
                58 => format!("HEXISTS {k} f{}", n.rem_euclid(4)),
                59 => format!("HINCRBYFLOAT {k} f{} 1.5", n.rem_euclid(4)),
                60 => format!("SADD {k} m{} m{}", n.rem_euclid(5), (n + 2).rem_euclid(5)),
                61 => format!("SREM {k} m{}", n.rem_euclid(5)),
                62 => format!("SISMEMBER {k} m{}", n.rem_euclid(5)),
                63 => format!("~SMEMBERS {k}"),
                64 => format!("SCARD {k}"),
                65 => format!("~SUNION {k} {k2}"),
                66 => format!("RPUSH {k} {v} {v}"),
                67 => format!("LPUSH {k} {v}"),
                68 => format!("LRANGE {k} {} {}", rng.gen_range(-4..4), rng.gen_range(-4..4)),
                69 => format!("LPOP {k}"),
                70 => format!("RPOPLPUSH {k} {k2}"),
                71 => format!("LREM {k} {} {v}", rng.gen_range(-2..3)),
                72 => format!("LTRIM {k} {} {}", rng.gen_range(-3..3), rng.gen_range(-3..3)),
                73 => format!("ZADD {k} {} m{}", rng.gen_range(-3..4), n.rem_euclid(5)),
                74 => format!("ZINCRBY {k} 1.5 m{}", n.rem_euclid(5)),
                75 => format!("ZRANGE {k} 0 -1 WITHSCORES"),
                76 => format!("ZREM {k} m{}", n.rem_euclid(5)),
                77 => format!("ZRANGEBYSCORE {k} ({} +inf", rng.gen_range(-3..3)),
                78 => format!("ZPOPMIN {k}"),
                79 => format!("ZRANK {k} m{}", n.rem_euclid(5)),
                80 => format!("ZUNIONSTORE {k} 2 {k2} {k} WEIGHTS {} 2", rng.gen_range(-2..3)),
                81 => format!("ZINTER 2 {k} {k2} WITHSCORES"),
                82 => format!("ZDIFF 2 {k} {k2} WITHSCORES"),
                83 => format!("SINTERCARD 2 {k} {k2} LIMIT {}", rng.gen_range(0..3)),
                84 => {
                    format!("LMPOP 2 {k} {k2} {} COUNT {}", ["LEFT", "RIGHT"][rng.gen_range(0..2)], rng.gen_range(1..4))
                }
                85 => format!("ZMPOP 2 {k} {k2} {} COUNT {}", ["MIN", "MAX"][rng.gen_range(0..2)], rng.gen_range(1..4)),
                86 => format!("ZINTERCARD 2 {k} {k2}"),
                87 => format!("SORT {k}{}", [" ALPHA", " DESC", " LIMIT 1 2", ""][rng.gen_range(0..4)]),
                88 => format!("SORT {k} ALPHA DESC STORE {k2}"),
                89 => format!("ZRANDMEMBER {k} 100 WITHSCORES"),
                90 => format!("ZUNION 2 {k} {k2} AGGREGATE {} WITHSCORES", ["MIN", "MAX", "SUM"][rng.gen_range(0..3)]),
                91 => format!("SORT_RO {k} LIMIT 0 3 ALPHA"),
                92 => format!("GEOADD {k} {}.5 {}.25 m{}", rng.gen_range(0..3), rng.gen_range(0..3), n.rem_euclid(5)),
                93 => format!("GEORADIUS {k} 1 1 300 km ASC STORE {k2}"),
                94 => format!("GEOSEARCHSTORE {k2} {k} FROMLONLAT 1 1 BYRADIUS 200 km STOREDIST"),
                _ => format!("GET {k} extra"),
            };
            match line.as_str() {
                "MULTI" => in_multi = true,
                "EXEC" | "DISCARD" => in_multi = false,
                _ => {}
            }
            script.push(line);
        }
        let lines: Vec<&str> = script.iter().map(String::as_str).collect();
        if std::env::var_os("VELO_DIFF_DEBUG").is_some() {
            eprintln!("seed {seed}:\n{}", lines.join("\n"));
        }
        compare(&redis, &velo, &format!("random sequence, seed {seed} (VELO_DIFF_SEED={base})"), &lines);
    }
}

/// Two clients interleaved at random: one runs WATCH/MULTI/EXEC blocks, the other writes, flushes, swaps
/// databases and moves keys. Replies of both must match Redis's (seeded, `VELO_DIFF_SEED`).
#[test]
fn random_watch_between_two_clients() {
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};
    let (redis, velo) = servers();
    let base: u64 = crate::support::differential::seed_base(1_764_000_000);
    let keys = ["a", "b", "c"];
    for seed in base..base + 5 {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut script: Vec<(usize, String)> = Vec::new();
        for _ in 0..300 {
            let k = keys[rng.gen_range(0..keys.len())];
            let step = if rng.gen_bool(0.5) {
                (
                    0,
                    match rng.gen_range(0..7) {
                        0 => format!("WATCH {k}"),
                        1 => "MULTI".to_string(),
                        2 => format!("INCR {k}"),
                        3 | 4 => "EXEC".to_string(),
                        5 => "UNWATCH".to_string(),
                        _ => format!("GET {k}"),
                    },
                )
            } else {
                (
                    1,
                    match rng.gen_range(0..13) {
                        0 => format!("SET {k} 1"),
                        1 => format!("DEL {k}"),
                        2 => format!("GET {k}"),
                        3 => "FLUSHDB".to_string(),
                        4 => "SWAPDB 0 1".to_string(),
                        5 => format!("MOVE {k} 1"),
                        6 => format!("SELECT {}", rng.gen_range(0..2)),
                        7 => format!("SET {k} 2 NX"),
                        // Stores of an empty result: WATCH sees them only when they delete a key.
                        9 => format!("ZUNIONSTORE {k} 1 nokey"),
                        10 => format!("SORT nokey STORE {k}"),
                        11 => format!("GEOSEARCHSTORE {k} nokey FROMLONLAT 0 0 BYRADIUS 1 m"),
                        12 => format!("ZINTERSTORE {k} 2 {k} nokey"),
                        _ => format!("EXPIRE {k} 100"),
                    },
                )
            };
            script.push(step);
        }
        let mut outputs = Vec::new();
        for port in [redis.port, velo.port] {
            let mut clients = [Conn::connect(port), Conn::connect(port)];
            clients[0].cmd(&["FLUSHALL"]);
            let mut out = Vec::new();
            for (client, line) in &script {
                let args = velo::resp::decode::split_args(line.as_bytes()).unwrap();
                let args: Vec<&[u8]> = args.iter().map(|a| a.as_ref()).collect();
                clients[*client].send(&command(&args));
                out.push(clients[*client].read_reply());
            }
            outputs.push(out);
        }
        for (i, (client, line)) in script.iter().enumerate() {
            assert!(
                outputs[0][i] == outputs[1][i],
                "seed {seed} (VELO_DIFF_SEED={base}), client {client}, step {i} `{line}`:\n  redis: {}\n  velo:  {}",
                show(&outputs[0][i]),
                show(&outputs[1][i])
            );
        }
    }
}

#[test]
fn hyperloglog() {
    let (redis, velo) = servers();
    let mut script: Vec<String> = vec![
        "PFADD empty".into(),
        "GET empty".into(),
        "PFCOUNT empty".into(),
        "GET empty".into(),
        "PFCOUNT missing".into(),
        "PFADD h a b c d e f g".into(),
        "PFADD h a b".into(),
        "PFCOUNT h".into(),
        "GET h".into(),
        "SET plain hello".into(),
        "PFADD plain x".into(),
        "PFCOUNT plain".into(),
        "PFMERGE plain h".into(),
        "SET bad HYLLgarbage".into(),
        "PFCOUNT bad".into(),
        "PFADD".into(),
        "PFCOUNT".into(),
        "PFMERGE".into(),
        "PFMERGE fresh h missing".into(),
        "GET fresh".into(),
        "PFCOUNT h fresh missing".into(),
        "EXPIRE h 100".into(),
        "PFADD h z".into(),
        "TTL h".into(),
        "TYPE h".into(),
    ];
    // Grow one HLL past the sparse limit so that it turns dense, a few elements at a time.
    for batch in 0..40 {
        let elements: Vec<String> = (0..100).map(|n| format!("e{}", batch * 100 + n)).collect();
        script.push(format!("PFADD big {}", elements.join(" ")));
        if batch % 8 == 0 {
            script.push("PFCOUNT big".into());
            script.push("GET big".into());
        }
    }
    script.extend(["PFCOUNT big".into(), "GET big".into(), "PFMERGE big h fresh".into(), "GET big".into()]);
    script.extend(["PFMERGE small h fresh".into(), "GET small".into(), "PFCOUNT small big h".into()]);
    let lines: Vec<&str> = script.iter().map(String::as_str).collect();
    compare(&redis, &velo, "hyperloglog", &lines);
}

#[test]
fn hashes() {
    let (redis, velo) = servers();
    let script = [
        "HSET h a 1 b 2 c 3",
        "HSET h a 10 d 4",
        "HGET h a",
        "HGET h missing",
        "HGET nokey a",
        "HMGET h a b missing",
        "HMGET nokey a",
        "HLEN h",
        "HLEN nokey",
        "HSTRLEN h a",
        "HSTRLEN h missing",
        "HEXISTS h b",
        "HEXISTS h zz",
        "HKEYS h",
        "HVALS h",
        "HGETALL h",
        "HGETALL nokey",
        "HKEYS nokey",
        "HSETNX h a 99",
        "HSETNX h e 5",
        "HMSET h f 6 g 7",
        "HDEL h a b missing",
        "HGETALL h",
        "HINCRBY h counter 5",
        "HINCRBY h counter -7",
        "HINCRBY h c notanumber",
        "HSET h text hello",
        "HINCRBY h text 1",
        "HSET h big 9223372036854775807",
        "HINCRBY h big 1",
        "HINCRBYFLOAT h f 1.5",
        "HINCRBYFLOAT h newf 0.1",
        "HINCRBYFLOAT h newf 3.0e3",
        "HINCRBYFLOAT h text 1",
        "HINCRBYFLOAT h f abc",
        "HINCRBYFLOAT h f inf",
        "HSET h odd",
        "HSET h odd 1 even",
        "HMSET h odd",
        "HSET",
        "HGET h",
        "SET s v",
        "HGET s a",
        "HSET s a 1",
        "HLEN s",
        "GET h",
        "TYPE h",
        "OBJECT ENCODING h",
        "HRANDFIELD nokey",
        "HRANDFIELD nokey 5",
        "HRANDFIELD h 0",
        "~HRANDFIELD h 100",
        "~HRANDFIELD h 100 WITHVALUES",
        "HRANDFIELD h 5 WITHVALUES EXTRA",
        "HRANDFIELD h notnum",
        "HRANDFIELD h WITHVALUES",
        "~HSCAN h 0",
        "~HSCAN h 0 MATCH e*",
        "HSCAN h 0 COUNT 0",
        "HSCAN h abc",
        "HSCAN nokey 0",
        "EXPIRE h 100",
        "HSET h x 1",
        "TTL h",
        "HDEL h c d e f g counter text big newf x",
        "EXISTS h",
        "HDEL h nothing",
        "HSET e f ''",
        "HGETALL e",
        "HSET long k 01234567890123456789012345678901234567890123456789012345678901234567890123456789",
        "OBJECT ENCODING long",
    ];
    compare(&redis, &velo, "hashes", &script);
}

#[test]
fn sets() {
    let (redis, velo) = servers();
    let script = [
        "SADD s a b c",
        "SADD s a d",
        "SCARD s",
        "SCARD nokey",
        "SISMEMBER s a",
        "SISMEMBER s zz",
        "SISMEMBER nokey a",
        "SMISMEMBER s a zz d",
        "~SMEMBERS s",
        "SMEMBERS nokey",
        "SREM s a zz",
        "SREM nokey a",
        "~SMEMBERS s",
        "SADD t c d e",
        "SADD u 1 2 3",
        "~SINTER s t",
        "~SUNION s t u",
        "~SDIFF s t",
        "~SDIFF t s nokey",
        "SINTER s nokey",
        "SINTERSTORE dst s t",
        "~SMEMBERS dst",
        "SUNIONSTORE dst s t u",
        "SCARD dst",
        "SDIFFSTORE dst s s",
        "EXISTS dst",
        "SMOVE s t b",
        "SMOVE s t zz",
        "SMOVE nokey t a",
        "SMOVE t t c",
        "SMOVE t t zz",
        "~SMEMBERS t",
        "SET str v",
        "SADD str a",
        "SMOVE s str d",
        "SINTER s str",
        "SUNIONSTORE str s",
        "TYPE str",
        "OBJECT ENCODING u",
        "OBJECT ENCODING t",
        "SPOP nokey",
        "SPOP nokey 3",
        "SPOP u -1",
        "SPOP u 0",
        "~SPOP u 10",
        "EXISTS u",
        "SRANDMEMBER nokey",
        "SRANDMEMBER nokey 3",
        "SRANDMEMBER t 0",
        "~SRANDMEMBER t 100",
        "SRANDMEMBER t 1 2",
        "SRANDMEMBER t notnum",
        "SADD single only",
        "SSCAN single 0",
        "SSCAN t 0 MATCH c*",
        "SSCAN t 0 COUNT 0",
        "SSCAN t x",
        "SADD",
        "SADD s",
        "SINTERSTORE",
        "EXPIRE t 100",
        "SADD t q",
        "TTL t",
        "SADD one x",
        "SPOP one",
        "EXISTS one",
    ];
    compare(&redis, &velo, "sets", &script);
}

#[test]
fn lists() {
    let (redis, velo) = servers();
    let script = [
        "RPUSH l a b c",
        "LPUSH l z y",
        "LRANGE l 0 -1",
        "LRANGE l 1 2",
        "LRANGE l -2 -1",
        "LRANGE l 5 10",
        "LRANGE l -100 100",
        "LRANGE l 3 1",
        "LRANGE nokey 0 -1",
        "LLEN l",
        "LLEN nokey",
        "LINDEX l 0",
        "LINDEX l -1",
        "LINDEX l 99",
        "LINDEX l notnum",
        "LPUSHX nokey a",
        "RPUSHX l d",
        "LSET l 1 Y",
        "LSET l 99 x",
        "LSET nokey 0 x",
        "LINSERT l BEFORE a A",
        "LINSERT l AFTER d D",
        "LINSERT l AFTER missing q",
        "LINSERT nokey AFTER a b",
        "LINSERT l SIDEWAYS a b",
        "LRANGE l 0 -1",
        "RPUSH r x a x b x c x",
        "LREM r 2 x",
        "LRANGE r 0 -1",
        "LREM r -1 x",
        "LRANGE r 0 -1",
        "LREM r 0 x",
        "LRANGE r 0 -1",
        "LREM nokey 0 x",
        "RPUSH p a b c a b c a",
        "LPOS p a",
        "LPOS p a RANK 2",
        "LPOS p a RANK -1",
        "LPOS p a COUNT 0",
        "LPOS p a COUNT 2 RANK -1",
        "LPOS p a MAXLEN 3 COUNT 0",
        "LPOS p zz",
        "LPOS p zz COUNT 2",
        "LPOS nokey a",
        "LPOS nokey a COUNT 1",
        "LPOS p a RANK 0",
        "LPOS p a COUNT -1",
        "LPOS p a MAXLEN -1",
        "LPOS p a BOGUS",
        "LPOP p",
        "RPOP p",
        "LPOP p 2",
        "RPOP p 0",
        "LPOP p -1",
        "LPOP nokey",
        "LPOP nokey 2",
        "RPOP p 100",
        "EXISTS p",
        "LTRIM l 1 -2",
        "LRANGE l 0 -1",
        "LTRIM l 5 1",
        "EXISTS l",
        "LTRIM nokey 0 1",
        "RPUSH m 1 2 3",
        "LMOVE m n LEFT RIGHT",
        "LMOVE m n RIGHT LEFT",
        "LRANGE n 0 -1",
        "LMOVE m m LEFT RIGHT",
        "LRANGE m 0 -1",
        "LMOVE nokey n LEFT LEFT",
        "LMOVE m n UP LEFT",
        "RPOPLPUSH m n",
        "RPOPLPUSH m n",
        "EXISTS m",
        "LRANGE n 0 -1",
        "SET s v",
        "LPUSH s a",
        "LRANGE s 0 1",
        "RPOPLPUSH n s",
        "LRANGE n 0 -1",
        "TYPE n",
        "OBJECT ENCODING n",
        "EXPIRE n 100",
        "RPUSH n z",
        "TTL n",
        "LPUSH",
        "RPUSH k",
        "LPUSH e ''",
        "LRANGE e 0 -1",
    ];
    compare(&redis, &velo, "lists", &script);
}

#[test]
fn sorted_sets() {
    let (redis, velo) = servers();
    let script = [
        "ZADD z 1 a 2 b 3 c",
        "ZADD z 1.5 a 2 b",
        "ZADD z CH 1 a 9 d",
        "ZADD z NX 100 a 5 e",
        "ZADD z XX 7 a 7 zz",
        "ZADD z GT 0 a",
        "ZADD z LT 0 a",
        "ZADD z GT CH 8 a",
        "ZADD z INCR 2.5 b",
        "ZADD z INCR NX 1 b",
        "ZADD z XX INCR 1 nope",
        "ZADD z NX XX 1 a",
        "ZADD z GT LT 1 a",
        "ZADD z GT NX 1 a",
        "ZADD z INCR 1 a 2 b",
        "ZADD z 1",
        "ZADD z abc a",
        "ZADD z nan a",
        "ZADD z inf big -inf small",
        "ZADD nokey XX 1 a",
        "ZADD nokey XX INCR 1 a",
        "EXISTS nokey",
        "ZCARD z",
        "ZCARD nokey",
        "ZSCORE z a",
        "ZSCORE z big",
        "ZSCORE z missing",
        "ZSCORE nokey a",
        "ZMSCORE z a small missing",
        "ZRANK z a",
        "ZREVRANK z a",
        "ZRANK z missing",
        "ZRANK nokey a",
        "ZINCRBY z 0.1 c",
        "ZINCRBY z 1 newm",
        "ZINCRBY z abc a",
        "ZADD inf_test inf x",
        "ZINCRBY inf_test -inf x",
        "ZRANGE z 0 -1",
        "ZRANGE z 0 -1 WITHSCORES",
        "ZRANGE z 1 2 REV WITHSCORES",
        "ZRANGE z -2 -1",
        "ZRANGE z 5 1",
        "ZRANGE z 0 -1 LIMIT 0 1",
        "ZRANGE z 1 5 BYSCORE WITHSCORES",
        "ZRANGE z (1 5 BYSCORE",
        "ZRANGE z -inf +inf BYSCORE LIMIT 1 2",
        "ZRANGE z +inf -inf BYSCORE REV LIMIT 0 3 WITHSCORES",
        "ZRANGE z 1 x BYSCORE",
        "ZRANGE z - + BYLEX",
        "ZRANGE z - + BYLEX WITHSCORES",
        "ZRANGE z a b BYLEX",
        "ZRANGE z 0 -1 BOGUS",
        "ZRANGE nokey 0 -1",
        "ZREVRANGE z 0 2 WITHSCORES",
        "ZRANGEBYSCORE z 2 8",
        "ZRANGEBYSCORE z 2 8 WITHSCORES LIMIT 1 10",
        "ZRANGEBYSCORE z (2 (8",
        "ZREVRANGEBYSCORE z 8 2 WITHSCORES",
        "ZRANGEBYSCORE z x 2",
        "ZCOUNT z 2 8",
        "ZCOUNT z -inf +inf",
        "ZCOUNT z (2 x",
        "ZCOUNT nokey 0 1",
        "ZADD lex 0 a 0 b 0 c 0 d 0 e",
        "ZRANGEBYLEX lex [b (d",
        "ZRANGEBYLEX lex - + LIMIT 1 2",
        "ZREVRANGEBYLEX lex + [c",
        "ZRANGEBYLEX lex b d",
        "ZLEXCOUNT lex [b +",
        "ZLEXCOUNT lex x y",
        "ZREMRANGEBYLEX lex [a [b",
        "ZRANGE lex 0 -1",
        "ZPOPMIN z",
        "ZPOPMAX z",
        "ZPOPMIN z 2",
        "ZPOPMAX z 0",
        "ZPOPMIN z -1",
        "ZPOPMIN nokey",
        "ZPOPMIN nokey 2",
        "ZREM z a missing",
        "ZREM nokey a",
        "ZRANGE z 0 -1 WITHSCORES",
        "ZREMRANGEBYRANK z 0 0",
        "ZREMRANGEBYSCORE z -inf 5",
        "ZRANGE z 0 -1 WITHSCORES",
        "ZREMRANGEBYSCORE z x 1",
        "ZADD one 1 only",
        "ZSCAN one 0",
        "ZSCAN one 0 MATCH o*",
        "ZSCAN one x",
        "SET s v",
        "ZADD s 1 a",
        "ZRANGE s 0 -1",
        "ZSCORE s a",
        "TYPE one",
        "OBJECT ENCODING one",
        "EXPIRE one 100",
        "ZADD one 2 two",
        "TTL one",
        "ZPOPMIN one 5",
        "EXISTS one",
        "ZADD src 1 a 2 b 3 c 4 d",
        "ZRANGESTORE dst src 1 2",
        "ZRANGE dst 0 -1 WITHSCORES",
        "ZRANGESTORE dst src (1 +inf BYSCORE REV LIMIT 0 2",
        "ZRANGE dst 0 -1 WITHSCORES",
        "ZRANGESTORE dst src 5 9",
        "EXISTS dst",
        "ZRANGESTORE dst src 0 -1 WITHSCORES",
        "ZRANGESTORE dst nokey 0 -1",
        "SET str v",
        "ZRANGESTORE dst str 0 -1",
        "ZRANGESTORE str src 0 0",
        "TYPE str",
        "ZADD f 0.1 a 1e30 b 123456789012345678 c -0.0 d",
        "ZRANGE f 0 -1 WITHSCORES",
        "ZADD",
        "ZRANGE z",
    ];
    compare(&redis, &velo, "sorted sets", &script);
}

#[test]
fn geo() {
    let (redis, velo) = servers();
    let script = [
        "GEOADD g 13.361389 38.115556 Palermo 15.087269 37.502669 Catania",
        "GEOADD g 13.361389 38.115556 Palermo",
        "GEOADD g CH 13.5 38.1 Palermo 2.35 48.85 Paris",
        "GEOADD g NX 0 0 Paris 1 1 Null",
        "GEOADD g XX 0 0 Nowhere",
        "GEOADD g NX XX 0 0 a",
        "GEOADD g 200 0 bad",
        "GEOADD g 0 90 bad",
        "GEOADD g abc 0 bad",
        "GEOADD g 1 2",
        "GEOADD nokey XX 1 1 a",
        "EXISTS nokey",
        "GEODIST g Palermo Catania",
        "GEODIST g Palermo Catania km",
        "GEODIST g Palermo Catania MI",
        "GEODIST g Palermo Catania ft",
        "GEODIST g Palermo missing",
        "GEODIST g Palermo Catania parsecs",
        "GEODIST nokey a b",
        "GEOHASH g Palermo Catania missing",
        "GEOHASH nokey a",
        "GEOHASH g",
        "GEOPOS g Palermo Catania missing",
        "GEOPOS nokey a",
        "ZSCORE g Catania",
        "ZRANGE g 0 -1",
        "TYPE g",
        "GEOADD sicily 13.361389 38.115556 Palermo 15.087269 37.502669 Catania 12.758489 38.788135 edge1 17.241510 38.222609 edge2 13.583333 37.316667 Agrigento",
        "GEOSEARCH sicily FROMLONLAT 15 37 BYRADIUS 200 km ASC",
        "GEOSEARCH sicily FROMLONLAT 15 37 BYRADIUS 200 km DESC WITHCOORD WITHDIST WITHHASH",
        "GEOSEARCH sicily FROMMEMBER Palermo BYRADIUS 100 km ASC WITHDIST",
        "GEOSEARCH sicily FROMLONLAT 15 37 BYBOX 400 400 km ASC WITHDIST",
        "GEOSEARCH sicily FROMLONLAT 15 37 BYRADIUS 400 km COUNT 2",
        "GEOSEARCH sicily FROMLONLAT 15 37 BYRADIUS 400 km COUNT 2 DESC WITHDIST",
        "~GEOSEARCH sicily FROMLONLAT 15 37 BYRADIUS 400 km",
        "GEOSEARCH sicily FROMLONLAT 15 37 BYRADIUS 1 m ASC",
        "GEOSEARCH sicily FROMMEMBER missing BYRADIUS 100 km",
        "GEOSEARCH nokey FROMMEMBER missing BYRADIUS 100 km",
        "GEOSEARCH sicily FROMMEMBER Palermo FROMLONLAT 1 1 BYRADIUS 1 km",
        "GEOSEARCH sicily BYRADIUS 1 km",
        "GEOSEARCH sicily FROMLONLAT 1 1",
        "GEOSEARCH sicily FROMLONLAT 1 1 BYRADIUS 1 km BYBOX 1 1 km",
        "GEOSEARCH sicily FROMLONLAT 1 1 BYRADIUS -1 km",
        "GEOSEARCH sicily FROMLONLAT 1 1 BYRADIUS 1 parsec",
        "GEOSEARCH sicily FROMLONLAT 1 1 BYRADIUS 1 km COUNT 0",
        "GEOSEARCH sicily FROMLONLAT 1 1 BYRADIUS 1 km ANY",
        "GEOSEARCH sicily FROMLONLAT 1 1 BYRADIUS 1 km BOGUS",
        "SET s v",
        "GEOADD s 1 1 a",
        "GEOPOS s a",
        "GEOSEARCH s FROMLONLAT 1 1 BYRADIUS 1 km",
    ];
    compare(&redis, &velo, "geo", &script);
}
