//! RDB round trips against the real redis-server 7.0: its SAVE restored by `velo rdb-restore`, Velo's
//! `rdb-dump` loaded by redis-server, and DUMP payloads RESTOREd across in both directions, for every
//! type including large (split) collections and streams with consumer groups.

use std::process::Command;

use crate::rdb_support::{assert_same, ok, populate, snapshot};
use crate::support::resp::{parse, show, Value};
use crate::support::{RedisServer, TestServer};

const DBS: &[u32] = &[0, 1, 5];

fn velo(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_velo")).args(args).output().expect("run velo")
}

#[test]
fn redis_save_restored_by_rdb_restore_matches_redis() {
    let redis_dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start_in(redis_dir.path(), &["--dbfilename", "dump.rdb"]);
    let mut rconn = crate::support::Conn::connect(redis.port);
    populate(&mut rconn, 1);
    ok(&mut rconn, &["SAVE"]);
    let data_dir = tempfile::tempdir().unwrap();
    let target = data_dir.path().join("velo");
    let file = redis_dir.path().join("dump.rdb");
    let out =
        velo(&["rdb-restore".as_ref(), file.as_os_str(), "--dir".as_ref(), target.as_os_str(), "--json".as_ref()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["files"][0]["checksum_verified"], true);
    let server = TestServer::start_in(&target, &[]);
    assert_same(&mut rconn, &mut server.connect(), DBS);
}

#[test]
fn velo_rdb_dump_loads_in_redis() {
    let source = TestServer::start();
    let mut vconn = source.connect();
    populate(&mut vconn, 2);
    let dir = source.dir.clone();
    let mut source = source;
    assert_eq!(source.terminate(), Some(0));
    let out_dir = tempfile::tempdir().unwrap();
    let file = out_dir.path().join("velo.rdb");
    let out = velo(&["rdb-dump".as_ref(), "--dir".as_ref(), dir.as_os_str(), "-o".as_ref(), file.as_os_str()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let redis = RedisServer::start_in(out_dir.path(), &["--dbfilename", "velo.rdb"]);
    let server = TestServer::start_in(&dir, &[]);
    let mut rconn = crate::support::Conn::connect(redis.port);
    assert_eq!(snapshot(&mut rconn, 0).len(), 36, "redis loaded the dump");
    assert_same(&mut rconn, &mut server.connect(), DBS);
    drop(source);
}

fn keys_and_expiry(conn: &mut crate::support::Conn, db: u32) -> Vec<(Vec<u8>, String)> {
    ok(conn, &["SELECT", &db.to_string()]);
    let Some((Value::Agg(_, Some(keys)), _)) = parse(&ok(conn, &["KEYS", "*"])) else { panic!() };
    keys.into_iter()
        .map(|key| {
            let Value::Blob(_, Some(key)) = key else { panic!() };
            let expire = conn.cmd_bytes(&[b"PEXPIRETIME", &key]);
            let expire = String::from_utf8_lossy(&expire[1..expire.len() - 2]).into_owned();
            (key, if expire == "-1" { "0".to_string() } else { expire })
        })
        .collect()
}

/// DUMPs every key of `from` and RESTOREs it into `to` (same database, absolute expiry).
fn transfer(from: &mut crate::support::Conn, to: &mut crate::support::Conn) {
    for &db in DBS {
        let keys = keys_and_expiry(from, db);
        ok(from, &["SELECT", &db.to_string()]);
        ok(to, &["SELECT", &db.to_string()]);
        for (key, expire) in keys {
            let payload = from.cmd_bytes(&[b"DUMP", &key]);
            let Some((Value::Blob(_, Some(payload)), _)) = parse(&payload) else { panic!("DUMP {}", show(&payload)) };
            let reply = to.cmd_bytes(&[b"RESTORE", &key, expire.as_bytes(), &payload, b"ABSTTL"]);
            assert_eq!(reply, b"+OK\r\n", "RESTORE {}: {}", String::from_utf8_lossy(&key), show(&reply));
        }
    }
    ok(from, &["SELECT", "0"]);
    ok(to, &["SELECT", "0"]);
}

#[test]
fn dump_and_restore_across_redis_and_velo() {
    let redis = RedisServer::start();
    let velo_server = TestServer::start();
    let mut rconn = crate::support::Conn::connect(redis.port);
    let mut vconn = velo_server.connect();
    populate(&mut rconn, 3);
    transfer(&mut rconn, &mut vconn);
    assert_same(&mut rconn, &mut vconn, DBS);
    // Uncompressed values are encoded byte for byte as Redis 7.0 encodes them (LZF output differs: the
    // compressor is Velo's own, its output decodes to the same bytes).
    for key in ["str:0", "str:1", "str:3", "str:4", "str:bin", "set:ints"] {
        let from_redis = rconn.cmd(&["DUMP", key]);
        let from_velo = vconn.cmd(&["DUMP", key]);
        assert_eq!(show(&from_velo), show(&from_redis), "DUMP {key}");
    }
    // And back: Velo's payloads restored into an empty Redis.
    ok(&mut rconn, &["FLUSHALL"]);
    transfer(&mut vconn, &mut rconn);
    assert_same(&mut rconn, &mut vconn, DBS);
}

#[test]
fn restore_errors_match_redis() {
    let redis = RedisServer::start();
    let velo_server = TestServer::start();
    let mut rconn = crate::support::Conn::connect(redis.port);
    let mut vconn = velo_server.connect();
    for conn in [&mut rconn, &mut vconn] {
        ok(conn, &["SET", "k", "v"]);
    }
    let payload = {
        let reply = rconn.cmd(&["DUMP", "k"]);
        let Some((Value::Blob(_, Some(p)), _)) = parse(&reply) else { panic!() };
        p
    };
    let mut damaged = payload.clone();
    damaged[1] ^= 0x20;
    // A payload whose checksum is right but whose value is not: a string of 60 bytes holding 1.
    let mut bad = vec![0u8, 60, b'a'];
    bad.extend_from_slice(&10u16.to_le_bytes());
    let crc = velo::rdb::CRC64.checksum(&bad);
    bad.extend_from_slice(&crc.to_le_bytes());
    let cases: Vec<Vec<&[u8]>> = vec![
        vec![b"RESTORE", b"k", b"0", &payload],
        vec![b"RESTORE", b"new", b"0", &damaged],
        vec![b"RESTORE", b"new", b"0", &bad],
        vec![b"RESTORE", b"new", b"-5", &payload],
        vec![b"RESTORE", b"new", b"x", &payload],
        vec![b"RESTORE", b"new", b"0", &payload, b"IDLETIME", b"-1"],
        vec![b"RESTORE", b"new", b"0", &payload, b"FREQ", b"256"],
        vec![b"RESTORE", b"new", b"0", &payload, b"IDLETIME", b"5", b"FREQ", b"5"],
        vec![b"RESTORE", b"new", b"0", &payload, b"BOGUS"],
        vec![b"RESTORE", b"k", b"0", &payload, b"REPLACE", b"IDLETIME", b"10"],
        vec![b"RESTORE", b"past", b"1", &payload, b"ABSTTL"],
        vec![b"EXISTS", b"past"],
        vec![b"RESTORE", b"ttl", b"100000", &payload, b"FREQ", b"3"],
        vec![b"PTTL", b"ttl"],
        vec![b"DUMP", b"missing"],
        vec![b"GET", b"k"],
    ];
    for args in cases {
        let expected = rconn.cmd_bytes(&args);
        let actual = vconn.cmd_bytes(&args);
        if args[0] == b"PTTL" {
            assert!(actual.starts_with(b":9") || actual.starts_with(b":100000"), "{}", show(&actual));
            continue;
        }
        assert_eq!(
            show(&actual),
            show(&expected),
            "{:?}",
            String::from_utf8_lossy(&args[..3.min(args.len())].concat())
        );
    }
}

#[test]
fn online_restore_into_redis_and_velo_gives_the_same_data() {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/rdb/r7-multidb.rdb");
    let redis = RedisServer::start();
    let velo_server = TestServer::start();
    for port in [redis.port, velo_server.port] {
        let out = velo(&[
            "rdb-restore".as_ref(),
            file.as_os_str(),
            "--host".as_ref(),
            "127.0.0.1".as_ref(),
            "--port".as_ref(),
            port.to_string().as_ref(),
            "--json".as_ref(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(summary["loaded"]["7"]["stream"], 1);
    }
    let mut rconn = crate::support::Conn::connect(redis.port);
    let mut vconn = velo_server.connect();
    assert_same(&mut rconn, &mut vconn, &[0, 1, 2, 7, 15]);
    // Again without REPLACE: every key is refused with BUSYKEY and counted as rejected (exit 1).
    let out = velo(&[
        "rdb-restore".as_ref(),
        file.as_os_str(),
        "--host".as_ref(),
        "127.0.0.1".as_ref(),
        "--port".as_ref(),
        velo_server.port.to_string().as_ref(),
        "--json".as_ref(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["rejected"], 14);
}

#[test]
fn offline_tools_refuse_a_directory_held_by_a_server() {
    let server = TestServer::start();
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/rdb/r7-multidb.rdb");
    let out = velo(&["rdb-restore".as_ref(), file.as_os_str(), "--dir".as_ref(), server.dir.as_os_str()]);
    assert_eq!(out.status.code(), Some(2));
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(message.contains(&format!("pid {}", server.pid())), "{message}");
    assert!(message.contains("--host H --port P"), "{message}");
    // rdb-dump asks the server (rdb_sync.rs); without the address file it cannot, and says so.
    std::fs::remove_file(server.dir.join("ADDRESS")).unwrap();
    let out = velo(&["rdb-dump".as_ref(), "--dir".as_ref(), server.dir.as_os_str(), "-o".as_ref(), "-".as_ref()]);
    assert_eq!(out.status.code(), Some(2));
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(message.contains(&format!("pid {}", server.pid())), "{message}");
    assert!(message.contains("--rdb"), "{message}");
}

/// `bytes` with the value of the `ctime` aux field (the second the file was written) zeroed and without
/// the CRC64 trailer: two dumps of the same data then compare equal.
fn without_ctime(mut bytes: Vec<u8>) -> Vec<u8> {
    let at = bytes.windows(6).position(|w| w == b"\x05ctime").expect("ctime aux field") + 6;
    let len = bytes[at] as usize;
    bytes[at + 1..at + 1 + len].fill(b'0');
    bytes.truncate(bytes.len() - 8);
    bytes
}

/// A bulk-loaded directory (values packed into segments in the RDB's order, read back in bucket order)
/// dumped offline, in large ranges that decompress each segment once per range, gives the bytes of a
/// server's SAVE of the same directory (short ranges under the slot lock), and redis-server loads it as
/// the data it came from.
#[test]
fn offline_dump_of_a_bulk_load_matches_the_servers_save() {
    let redis_dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start_in(redis_dir.path(), &["--dbfilename", "dump.rdb", "--enable-debug-command", "yes"]);
    let mut rconn = crate::support::Conn::connect(redis.port);
    populate(&mut rconn, 3);
    ok(&mut rconn, &["DEBUG", "POPULATE", "20000", "key", "100"]);
    ok(&mut rconn, &["SELECT", "5"]);
    ok(&mut rconn, &["DEBUG", "POPULATE", "3000", "five", "40"]);
    ok(&mut rconn, &["SELECT", "0"]);
    ok(&mut rconn, &["SAVE"]);
    let data_dir = tempfile::tempdir().unwrap();
    let target = data_dir.path().join("velo");
    let file = redis_dir.path().join("dump.rdb");
    let out = velo(&["rdb-restore".as_ref(), file.as_os_str(), "--dir".as_ref(), target.as_os_str()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let out_dir = tempfile::tempdir().unwrap();
    let dumped = out_dir.path().join("offline.rdb");
    let out = velo(&["rdb-dump".as_ref(), "--dir".as_ref(), target.as_os_str(), "-o".as_ref(), dumped.as_os_str()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let server = TestServer::start_in(&target, &["--dbfilename", "saved.rdb"]);
    let mut vconn = server.connect();
    assert_eq!(vconn.cmd(&["SAVE"]), b"+OK\r\n");
    let offline = std::fs::read(&dumped).unwrap();
    let saved = std::fs::read(target.join("saved.rdb")).unwrap();
    assert_eq!(offline.len(), saved.len());
    assert!(without_ctime(offline) == without_ctime(saved), "the offline dump differs from the server's SAVE");
    // redis-server loads the offline dump as the data the directory was restored from.
    let loaded =
        RedisServer::start_in(out_dir.path(), &["--dbfilename", "offline.rdb", "--enable-debug-command", "yes"]);
    let mut lconn = crate::support::Conn::connect(loaded.port);
    assert_eq!(show(&lconn.cmd(&["DBSIZE"])), ":20036⏎");
    assert_eq!(show(&ok(&mut lconn, &["DEBUG", "DIGEST"])), show(&ok(&mut rconn, &["DEBUG", "DIGEST"])));
}
