//! Helpers of the RDB tests: random data of every type written through RESP, and a key-by-key snapshot
//! of a server's databases that two servers (Redis and Velo) can be compared by.

use std::collections::BTreeMap;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::support::resp::{parse, show, Value};
use crate::support::Conn;

/// Runs a command, panicking on an error reply.
pub fn ok(conn: &mut Conn, args: &[&str]) -> Vec<u8> {
    let reply = conn.cmd(args);
    assert!(!reply.starts_with(b"-"), "{args:?}: {}", show(&reply));
    reply
}

/// Writes random data of every type and size class into databases 0, 1 and 5: strings (integers,
/// short, compressible, binary), small and large lists, sets (integers and strings), sorted sets and
/// hashes, streams with consumer groups and pending entries, and far-future expiries.
pub fn populate(conn: &mut Conn, seed: u64) {
    let mut rng = SmallRng::seed_from_u64(seed);
    for db in ["0", "1", "5"] {
        ok(conn, &["SELECT", db]);
        for i in 0..20 {
            let value = match i % 5 {
                0 => rng.gen_range(-100_000i64..100_000).to_string(),
                1 => format!("short-{}", rng.gen::<u32>()),
                2 => "abc".repeat(rng.gen_range(10..400)),
                3 => (0..rng.gen_range(1..60)).map(|_| char::from(rng.gen_range(b'!'..b'~'))).collect(),
                _ => rng.gen::<i64>().to_string(),
            };
            ok(conn, &["SET", &format!("str:{i}"), &value]);
        }
        conn.cmd_bytes(&[b"SET", b"str:bin", b"\x00\xff\r\n\x01binary"]);
        for (name, len) in [("list:small", 7), ("list:big", 1500)] {
            for chunk in (0..len).collect::<Vec<_>>().chunks(100) {
                let mut args = vec!["RPUSH".to_string(), name.to_string()];
                args.extend(chunk.iter().map(|i| {
                    if i % 3 == 0 {
                        i.to_string()
                    } else {
                        format!("item-{i}-{}", rng.gen::<u16>())
                    }
                }));
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                ok(conn, &args);
            }
        }
        for (name, len, ints) in
            [("set:ints", 50, true), ("set:strs", 40, false), ("set:big", 900, false), ("set:bigints", 700, true)]
        {
            for chunk in (0..len).collect::<Vec<_>>().chunks(100) {
                let mut args = vec!["SADD".to_string(), name.to_string()];
                args.extend(chunk.iter().map(|i| if ints { (i * 7919 - 3000).to_string() } else { format!("m{i}") }));
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                ok(conn, &args);
            }
        }
        for (name, len) in [("zset:small", 20), ("zset:big", 800)] {
            for chunk in (0..len).collect::<Vec<_>>().chunks(100) {
                let mut args = vec!["ZADD".to_string(), name.to_string()];
                for i in chunk {
                    let score = match i % 4 {
                        0 => (*i as f64).to_string(),
                        1 => format!("{}", rng.gen_range(-1e6..1e6)),
                        2 => "0.1".to_string(),
                        _ => format!("{}", rng.gen::<f64>()),
                    };
                    args.push(score);
                    args.push(format!("member:{i}"));
                }
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                ok(conn, &args);
            }
        }
        ok(conn, &["ZADD", "zset:inf", "-inf", "a", "inf", "b", "1e300", "c"]);
        for (name, len, width) in [("hash:small", 10, 10), ("hash:big", 700, 10), ("hash:wide", 5, 100)] {
            for chunk in (0..len).collect::<Vec<_>>().chunks(100) {
                let mut args = vec!["HSET".to_string(), name.to_string()];
                for i in chunk {
                    args.push(format!("f{i}"));
                    args.push(if i % 2 == 0 { i.to_string() } else { "v".repeat(width) });
                }
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                ok(conn, &args);
            }
        }
        for (name, len) in [("stream:cg", 30), ("stream:big", 1200)] {
            for i in 1..=len {
                let id = format!("{}-{}", 1_700_000_000_000u64 + i / 3, i % 3);
                if i % 7 == 0 {
                    ok(conn, &["XADD", name, &id, "other", &i.to_string()]);
                } else {
                    ok(conn, &["XADD", name, &id, "n", &i.to_string(), "pad", "xxxxxxxxxxxxxxxxx"]);
                }
            }
            ok(conn, &["XDEL", name, "1700000000001-0"]);
            ok(conn, &["XGROUP", "CREATE", name, "g1", "0"]);
            ok(conn, &["XGROUP", "CREATE", name, "g2", "$"]);
            ok(conn, &["XREADGROUP", "GROUP", "g1", "alice", "COUNT", "5", "STREAMS", name, ">"]);
            ok(conn, &["XREADGROUP", "GROUP", "g1", "bob", "COUNT", "3", "STREAMS", name, ">"]);
            ok(conn, &["XACK", name, "g1", "1700000000000-1"]);
            ok(conn, &["XGROUP", "CREATECONSUMER", name, "g2", "idle"]);
        }
        ok(conn, &["XADD", "stream:gone", "5-5", "a", "1"]);
        ok(conn, &["XDEL", "stream:gone", "5-5"]);
        for (i, key) in ["str:1", "list:small", "set:ints", "zset:small", "hash:small", "stream:cg"].iter().enumerate()
        {
            ok(conn, &["PEXPIREAT", key, &(4_102_444_800_000u64 + i as u64 * 1000 + 123).to_string()]);
        }
    }
    ok(conn, &["SELECT", "0"]);
}

fn parsed(reply: &[u8]) -> Value {
    parse(reply).map(|(v, _)| v).unwrap_or_else(|| panic!("unparsable reply {}", show(reply)))
}

fn blob(value: &Value) -> Vec<u8> {
    match value {
        Value::Blob(_, Some(bytes)) | Value::Line(_, bytes) => bytes.clone(),
        other => format!("{other:?}").into_bytes(),
    }
}

/// Removes the fields whose values depend on node layout (radix tree sizes) from XINFO STREAM FULL.
fn strip_layout(value: Value) -> Value {
    match value {
        Value::Agg(kind, Some(items)) => {
            let mut out = Vec::new();
            let mut it = items.into_iter().peekable();
            while let Some(item) = it.next() {
                if let Value::Blob(_, Some(name)) = &item {
                    if name == b"radix-tree-keys" || name == b"radix-tree-nodes" {
                        it.next();
                        continue;
                    }
                }
                out.push(strip_layout(item));
            }
            Value::Agg(kind, Some(out))
        }
        other => other,
    }
}

/// Every key of database `db` with its type, value (in a canonical order) and absolute expiry.
pub fn snapshot(conn: &mut Conn, db: u32) -> BTreeMap<Vec<u8>, String> {
    ok(conn, &["SELECT", &db.to_string()]);
    let mut keys = Vec::new();
    let mut cursor = "0".to_string();
    loop {
        let reply = parsed(&ok(conn, &["SCAN", &cursor, "COUNT", "1000"]));
        let Value::Agg(_, Some(parts)) = reply else { panic!("bad SCAN reply") };
        cursor = String::from_utf8(blob(&parts[0])).expect("cursor");
        if let Value::Agg(_, Some(found)) = &parts[1] {
            keys.extend(found.iter().map(blob));
        }
        if cursor == "0" {
            break;
        }
    }
    let mut out = BTreeMap::new();
    for key in keys {
        let k: &[u8] = &key;
        let kind = String::from_utf8(blob(&parsed(&conn.cmd_bytes(&[b"TYPE", k])))).expect("type");
        let value = match kind.as_str() {
            "string" => show(&conn.cmd_bytes(&[b"GET", k])),
            "list" => show(&conn.cmd_bytes(&[b"LRANGE", k, b"0", b"-1"])),
            "set" => {
                let Value::Agg(_, Some(mut members)) = parsed(&conn.cmd_bytes(&[b"SMEMBERS", k])) else { panic!() };
                members.sort();
                format!("{members:?}")
            }
            "zset" => show(&conn.cmd_bytes(&[b"ZRANGE", k, b"0", b"-1", b"WITHSCORES"])),
            "hash" => {
                let Value::Agg(_, Some(flat)) = parsed(&conn.cmd_bytes(&[b"HGETALL", k])) else { panic!() };
                let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = flat.chunks(2).map(|p| (blob(&p[0]), blob(&p[1]))).collect();
                pairs.sort();
                format!("{pairs:?}")
            }
            "stream" => {
                let full = strip_layout(parsed(&conn.cmd_bytes(&[b"XINFO", b"STREAM", k, b"FULL", b"COUNT", b"0"])));
                format!("{full:?}")
            }
            other => panic!("unexpected type {other}"),
        };
        let expire = show(&conn.cmd_bytes(&[b"PEXPIRETIME", k]));
        out.insert(key.clone(), format!("{kind} {expire} {value}"));
    }
    ok(conn, &["SELECT", "0"]);
    out
}

/// Asserts that two servers hold the same keys and values in databases `dbs`.
pub fn assert_same(redis: &mut Conn, velo: &mut Conn, dbs: &[u32]) {
    for &db in dbs {
        let expected = snapshot(redis, db);
        let actual = snapshot(velo, db);
        let expected_keys: Vec<_> = expected.keys().map(|k| String::from_utf8_lossy(k).into_owned()).collect();
        let actual_keys: Vec<_> = actual.keys().map(|k| String::from_utf8_lossy(k).into_owned()).collect();
        assert_eq!(expected_keys, actual_keys, "keys of db {db}");
        for (key, value) in &expected {
            assert_eq!(Some(value), actual.get(key), "db {db} key {}", String::from_utf8_lossy(key));
        }
    }
}
