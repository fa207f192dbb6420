//! BGSAVE writes one instant of the data set while writers go on (checked by loading the file into the
//! real redis-server and testing invariants every transaction keeps), a kill -9 during BGSAVE keeps the
//! previous dump, and function libraries travel in RDB files both ways (BGSAVE → redis-server,
//! redis-server SAVE → `velo rdb-restore` → FCALL).

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::rdb_support::ok;
use crate::support::resp::show;
use crate::support::{Conn, RedisServer, TestServer};

fn info_field(conn: &mut Conn, field: &str) -> String {
    let reply = String::from_utf8_lossy(&conn.cmd(&["INFO", "persistence", "velo"])).into_owned();
    reply
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")).map(str::to_string))
        .unwrap_or_else(|| panic!("no {field} in {reply}"))
}

fn wait_bgsave(conn: &mut Conn) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while info_field(conn, "rdb_bgsave_in_progress") != "0" {
        assert!(Instant::now() < deadline, "BGSAVE did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn int(reply: &[u8]) -> i64 {
    let text = String::from_utf8_lossy(reply);
    let text = text.trim();
    if let Some(rest) = text.strip_prefix(':') {
        return rest.parse().unwrap();
    }
    // A bulk string: "$n\r\nvalue".
    text.lines().nth(1).unwrap_or_else(|| panic!("not a number: {text}")).parse().unwrap()
}

/// Filler so that the save takes long enough for writers to run during it: `count` keys of `size`
/// bytes of incompressible data, written with MSET.
fn fill(conn: &mut Conn, count: usize, size: usize) {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut args: Vec<Vec<u8>> = vec![b"MSET".to_vec()];
    for i in 0..count {
        args.push(format!("filler:{i}").into_bytes());
        let value: Vec<u8> = (0..size)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                b'!' + (state % 90) as u8
            })
            .collect();
        args.push(value);
        if args.len() > 200 || i + 1 == count {
            let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            assert_eq!(conn.cmd_bytes(&refs), b"+OK\r\n");
            args.truncate(1);
        }
    }
}

const ACCOUNTS: usize = 300;

/// Writers run MULTI/EXEC transfers between accounts in different slots, each also pushing onto a list
/// that becomes a split collection and counting in a key, while BGSAVE runs: in the saved file (loaded
/// by redis-server) the accounts' total is unchanged and the list's length equals the counter.
#[test]
fn bgsave_under_writers_is_one_instant() {
    let velo = TestServer::start();
    let mut conn = velo.connect();
    for i in 0..ACCOUNTS {
        ok(&mut conn, &["SET", &format!("account:{i}"), "100"]);
    }
    ok(&mut conn, &["SET", "transfers", "0"]);
    fill(&mut conn, 3000, 4096);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for w in 0..3u64 {
        let (stop, done, port) = (stop.clone(), done.clone(), velo.port);
        writers.push(std::thread::spawn(move || {
            let mut conn = Conn::connect(port);
            let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ (w + 1);
            while !stop.load(Ordering::Relaxed) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let a = format!("account:{}", state % ACCOUNTS as u64);
                let b = format!("account:{}", (state >> 24) % ACCOUNTS as u64);
                assert_eq!(conn.cmd(&["MULTI"]), b"+OK\r\n");
                for args in [
                    &["DECRBY", &a, "1"][..],
                    &["INCRBY", &b, "1"][..],
                    &["RPUSH", "log", &format!("{a}->{b}")][..],
                    &["INCR", "transfers"][..],
                ] {
                    assert_eq!(conn.cmd(args), b"+QUEUED\r\n");
                }
                let reply = conn.cmd(&["EXEC"]);
                assert!(reply.starts_with(b"*4\r\n"), "{}", show(&reply));
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // Let the list pass 512 elements (split) before saving.
    let deadline = Instant::now() + Duration::from_secs(60);
    while done.load(Ordering::Relaxed) < 800 {
        assert!(Instant::now() < deadline, "writers too slow");
        std::thread::sleep(Duration::from_millis(10));
    }
    let before = done.load(Ordering::Relaxed);
    assert_eq!(conn.cmd(&["BGSAVE"]), b"+Background saving started\r\n");
    assert_eq!(conn.cmd(&["BGSAVE"]), b"-ERR Background save already in progress\r\n");
    wait_bgsave(&mut conn);
    let during = done.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.join().unwrap();
    }
    assert_eq!(info_field(&mut conn, "rdb_last_bgsave_status"), "ok");
    let pause_us: f64 = info_field(&mut conn, "snapshot_last_pause_us").parse().unwrap();
    eprintln!("transactions during BGSAVE: {during}; registration pause: {pause_us} µs");
    assert!(pause_us < 1_000_000.0);
    let redis = RedisServer::start_in(&velo.dir, &["--dbfilename", "dump.rdb"]);
    let mut rconn = Conn::connect(redis.port);
    let mut total = 0;
    for i in 0..ACCOUNTS {
        total += int(&rconn.cmd(&["GET", &format!("account:{i}")]));
    }
    assert_eq!(total, 100 * ACCOUNTS as i64, "accounts' total in the dump");
    let transfers = int(&rconn.cmd(&["GET", "transfers"]));
    assert_eq!(int(&rconn.cmd(&["LLEN", "log"])), transfers, "list length vs counter in the dump");
    assert!(transfers as u64 >= before, "the dump is older than BGSAVE");
    assert_eq!(int(&rconn.cmd(&["DBSIZE"])), (ACCOUNTS + 3000 + 2) as i64);
}

/// kill -9 while BGSAVE writes: the previous dump stays whole, and the restarted server removes the
/// interrupted save's temporary file and starts with every acknowledged write.
#[test]
fn kill9_during_bgsave_keeps_the_previous_dump() {
    let dir = tempfile::tempdir().unwrap();
    let mut velo = TestServer::start_in(dir.path(), &[]);
    let mut conn = velo.connect();
    ok(&mut conn, &["SET", "before", "1"]);
    ok(&mut conn, &["SAVE"]);
    let previous = std::fs::read(dir.path().join("dump.rdb")).unwrap();
    fill(&mut conn, 1200, 32 << 10);
    ok(&mut conn, &["SET", "after", "1"]);
    assert_eq!(conn.cmd(&["BGSAVE"]), b"+Background saving started\r\n");
    assert_eq!(info_field(&mut conn, "rdb_bgsave_in_progress"), "1");
    velo.kill9();
    assert_eq!(std::fs::read(dir.path().join("dump.rdb")).unwrap(), previous, "the previous dump changed");
    let velo = TestServer::start_in(dir.path(), &[]);
    let mut conn = velo.connect();
    assert_eq!(conn.cmd(&["GET", "after"]), b"$1\r\n1\r\n");
    let leftovers: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".tmp-") || name.starts_with("snapshot-"))
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
    let redis = RedisServer::start_in(dir.path(), &["--dbfilename", "dump.rdb"]);
    let mut rconn = Conn::connect(redis.port);
    assert_eq!(rconn.cmd(&["GET", "before"]), b"$1\r\n1\r\n");
    assert_eq!(rconn.cmd(&["EXISTS", "after"]), b":0\r\n");
}

const LIBRARY: &str = "#!lua name=mylib\nredis.register_function('echo_first', function(keys, args) return args[1] end)\n\
                       redis.register_function{function_name='getkey', callback=function(keys) return redis.call('GET', keys[1]) end, flags={'no-writes'}}";

/// Function libraries: Velo's BGSAVE writes them (redis-server loads and runs them), and a Redis dump
/// restored by `velo rdb-restore` brings them into Velo's FUNCTION store.
#[test]
fn function_libraries_travel_in_rdb_files() {
    let velo = TestServer::start();
    let mut conn = velo.connect();
    assert_eq!(conn.cmd(&["FUNCTION", "LOAD", LIBRARY]), b"$5\r\nmylib\r\n");
    ok(&mut conn, &["SET", "k", "v"]);
    assert_eq!(conn.cmd(&["BGSAVE"]), b"+Background saving started\r\n");
    wait_bgsave(&mut conn);
    {
        let redis = RedisServer::start_in(&velo.dir, &["--dbfilename", "dump.rdb"]);
        let mut rconn = Conn::connect(redis.port);
        assert_eq!(rconn.cmd(&["FCALL", "echo_first", "0", "hello"]), b"$5\r\nhello\r\n");
        assert_eq!(rconn.cmd(&["FCALL_RO", "getkey", "1", "k"]), b"$1\r\nv\r\n");
    }
    // The other way: redis-server's SAVE, restored offline.
    let redis_dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start_in(redis_dir.path(), &["--dbfilename", "dump.rdb"]);
    let mut rconn = Conn::connect(redis.port);
    assert_eq!(rconn.cmd(&["FUNCTION", "LOAD", LIBRARY]), b"$5\r\nmylib\r\n");
    ok(&mut rconn, &["SET", "k", "from redis"]);
    ok(&mut rconn, &["SAVE"]);
    let target = tempfile::tempdir().unwrap();
    let data = target.path().join("velo");
    let file = redis_dir.path().join("dump.rdb");
    let out = Command::new(env!("CARGO_BIN_EXE_velo"))
        .args(["rdb-restore".as_ref(), file.as_os_str(), "--dir".as_ref(), data.as_os_str(), "--json".as_ref()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["functions_loaded"], 1);
    let restored = TestServer::start_in(&data, &[]);
    let mut vconn = restored.connect();
    assert_eq!(vconn.cmd(&["FCALL", "echo_first", "0", "hi"]), b"$2\r\nhi\r\n");
    assert_eq!(vconn.cmd(&["FCALL_RO", "getkey", "1", "k"]), b"$10\r\nfrom redis\r\n");
    // rdb-dump of that directory carries the library on (offline, so no server on it).
    drop(vconn);
    drop(restored);
    let dumped = target.path().join("out.rdb");
    let out = Command::new(env!("CARGO_BIN_EXE_velo"))
        .args(["rdb-dump".as_ref(), "--dir".as_ref(), data.as_os_str(), "-o".as_ref(), dumped.as_os_str()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let redis2 = RedisServer::start_in(target.path(), &["--dbfilename", "out.rdb"]);
    assert_eq!(Conn::connect(redis2.port).cmd(&["FCALL", "echo_first", "0", "x"]), b"$1\r\nx\r\n");
}
