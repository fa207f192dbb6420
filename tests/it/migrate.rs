//! MIGRATE from Velo to redis-server and to Velo: values, TTLs, COPY, REPLACE, the KEYS form, and the
//! replies (+OK, +NOKEY, IOERR, the target's errors) compared with a redis-server doing the same
//! MIGRATE to the same target. A slow target does not hold up other clients.

use std::net::TcpListener;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::resp::{command, show};
use crate::support::server::free_port;
use crate::support::{Conn, RedisServer, TestServer};

fn int(reply: &[u8]) -> i64 {
    String::from_utf8_lossy(reply).trim_start_matches(':').trim().parse().expect("an integer reply")
}

#[test]
fn migrate_to_redis_moves_values_and_ttls() {
    let target = RedisServer::start();
    let velo = TestServer::start();
    let mut conn = velo.connect();
    let mut t = Conn::connect(target.port);
    let port = target.port.to_string();
    conn.cmd(&["SET", "s", "hello"]);
    conn.cmd(&["PEXPIRE", "s", "100000"]);
    conn.cmd(&["RPUSH", "l", "a", "b", "c"]);
    let fields: Vec<String> = (0..2000).flat_map(|i| [format!("f{i}"), format!("v{i}")]).collect();
    let mut hset = vec!["HSET", "big"];
    hset.extend(fields.iter().map(String::as_str));
    assert_eq!(int(&conn.cmd(&hset)), 2000);

    assert_eq!(conn.cmd(&["MIGRATE", "127.0.0.1", &port, "s", "0", "5000"]), b"+OK\r\n");
    assert_eq!(conn.cmd(&["EXISTS", "s"]), b":0\r\n", "the source key is deleted");
    assert_eq!(t.cmd(&["GET", "s"]), b"$5\r\nhello\r\n");
    let pttl = int(&t.cmd(&["PTTL", "s"]));
    assert!((90_000..=100_000).contains(&pttl), "TTL arrived as {pttl}");

    // COPY keeps the source; a split hash arrives whole, in database 3.
    assert_eq!(conn.cmd(&["MIGRATE", "127.0.0.1", &port, "big", "3", "5000", "COPY"]), b"+OK\r\n");
    assert_eq!(conn.cmd(&["HLEN", "big"]), b":2000\r\n");
    t.cmd(&["SELECT", "3"]);
    assert_eq!(t.cmd(&["HLEN", "big"]), b":2000\r\n");
    assert_eq!(t.cmd(&["HGET", "big", "f1999"]), b"$5\r\nv1999\r\n");
    assert_eq!(t.cmd(&["TTL", "big"]), b":-1\r\n");

    // Existing on the target: Redis's BUSYKEY passed on, the source kept; REPLACE overwrites.
    assert_eq!(
        show(&conn.cmd(&["MIGRATE", "127.0.0.1", &port, "big", "3", "5000"])),
        show(b"-ERR Target instance replied with error: BUSYKEY Target key name already exists.\r\n")
    );
    assert_eq!(conn.cmd(&["EXISTS", "big"]), b":1\r\n");
    conn.cmd(&["HSET", "big", "extra", "x"]);
    assert_eq!(conn.cmd(&["MIGRATE", "127.0.0.1", &port, "big", "3", "5000", "REPLACE"]), b"+OK\r\n");
    assert_eq!(t.cmd(&["HLEN", "big"]), b":2001\r\n");
    assert_eq!(conn.cmd(&["EXISTS", "big"]), b":0\r\n");

    // KEYS form: the missing key is skipped; all missing is NOKEY.
    conn.cmd(&["SET", "k1", "1"]);
    conn.cmd(&["SET", "k2", "2"]);
    assert_eq!(
        conn.cmd(&["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS", "k1", "nokey", "k2", "l"]),
        b"+OK\r\n"
    );
    assert_eq!(conn.cmd(&["EXISTS", "k1", "k2", "l"]), b":0\r\n");
    t.cmd(&["SELECT", "0"]);
    assert_eq!(t.cmd(&["MGET", "k1", "k2", "nokey"]), b"*3\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n");
    assert_eq!(t.cmd(&["LRANGE", "l", "0", "-1"]), b"*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n");
    assert_eq!(conn.cmd(&["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS", "nokey", "k1"]), b"+NOKEY\r\n");
    assert_eq!(conn.cmd(&["MIGRATE", "127.0.0.1", &port, "nokey", "0", "5000"]), b"+NOKEY\r\n");
}

#[test]
fn migrate_between_velo_servers() {
    let source = TestServer::start();
    let target = TestServer::start();
    let mut conn = source.connect();
    let mut t = target.connect();
    let port = target.port.to_string();
    let members: Vec<String> = (0..3000).flat_map(|i| [i.to_string(), format!("m{i}")]).collect();
    let mut zadd = vec!["ZADD", "z"];
    zadd.extend(members.iter().map(String::as_str));
    assert_eq!(int(&conn.cmd(&zadd)), 3000);
    conn.cmd(&["EXPIRE", "z", "1000"]);
    conn.cmd(&["XADD", "x", "1-1", "f", "v"]);
    assert_eq!(conn.cmd(&["MIGRATE", "127.0.0.1", &port, "", "5", "5000", "KEYS", "z", "x"]), b"+OK\r\n");
    assert_eq!(conn.cmd(&["EXISTS", "z", "x"]), b":0\r\n");
    t.cmd(&["SELECT", "5"]);
    assert_eq!(t.cmd(&["ZCARD", "z"]), b":3000\r\n");
    assert_eq!(t.cmd(&["ZSCORE", "z", "m2999"]), b"$4\r\n2999\r\n");
    let ttl = int(&t.cmd(&["TTL", "z"]));
    assert!((990..=1000).contains(&ttl), "TTL arrived as {ttl}");
    assert_eq!(t.cmd(&["XLEN", "x"]), b":1\r\n");

    // A target with a password: AUTH (and AUTH2 with the default user) get through; a wrong one is
    // the target's error.
    assert_eq!(t.cmd(&["CONFIG", "SET", "requirepass", "pw"]), b"+OK\r\n");
    conn.cmd(&["SET", "a", "1"]);
    assert_eq!(
        show(&conn.cmd(&["MIGRATE", "127.0.0.1", &port, "a", "0", "5000"])),
        show(b"-ERR Target instance replied with error: NOAUTH Authentication required.\r\n")
    );
    assert_eq!(
        show(&conn.cmd(&["MIGRATE", "127.0.0.1", &port, "a", "0", "5000", "AUTH", "bad"])),
        show(b"-ERR Target instance replied with error: WRONGPASS invalid username-password pair or user is disabled.\r\n")
    );
    assert_eq!(conn.cmd(&["EXISTS", "a"]), b":1\r\n");
    assert_eq!(conn.cmd(&["MIGRATE", "127.0.0.1", &port, "a", "0", "5000", "AUTH", "pw", "COPY"]), b"+OK\r\n");
    assert_eq!(
        conn.cmd(&["MIGRATE", "127.0.0.1", &port, "a", "0", "5000", "AUTH2", "default", "pw", "REPLACE"]),
        b"+OK\r\n"
    );
    assert_eq!(conn.cmd(&["EXISTS", "a"]), b":0\r\n");
}

/// The same MIGRATEs from a redis-server and from Velo to one redis-server target give the same replies.
#[test]
fn migrate_replies_match_redis() {
    let target = RedisServer::start();
    let redis = RedisServer::start();
    let velo = TestServer::start();
    let mut sources = [Conn::connect(redis.port), velo.connect()];
    let port = target.port.to_string();
    let mut t = Conn::connect(target.port);
    // Runs `args` on both sources, `prepare` putting the target in the same state before each.
    let mut both = |args: &[&str], prepare: &dyn Fn(&mut Conn)| {
        let mut replies = Vec::new();
        for source in sources.iter_mut() {
            prepare(&mut t);
            replies.push(source.cmd(args));
        }
        assert_eq!(show(&replies[0]), show(&replies[1]), "{args:?}");
    };
    let busy_on_target = |t: &mut Conn| {
        t.cmd(&["FLUSHALL"]);
        t.cmd(&["SET", "busy", "x"]);
    };
    let empty_target = |t: &mut Conn| {
        t.cmd(&["FLUSHALL"]);
    };
    both(&["SET", "busy", "1"], &empty_target);
    for args in [
        vec!["MIGRATE", "127.0.0.1", &port, "busy", "0", "5000"],
        vec!["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS", "nokey", "busy"],
        vec!["MIGRATE", "127.0.0.1", &port, "busy", "0", "5000", "KEYS", "busy"],
        vec!["MIGRATE", "127.0.0.1", &port, "busy", "0", "5000", "COPY", "BOGUS"],
        vec!["MIGRATE", "127.0.0.1", &port, "busy", "0", "5000", "AUTH"],
        vec!["MIGRATE", "127.0.0.1", &port, "busy", "0", "5000", "AUTH2", "u"],
        vec!["MIGRATE", "127.0.0.1", &port, "busy", "0", "x"],
        vec!["MIGRATE", "127.0.0.1", &port, "busy", "x", "5000"],
        vec!["MIGRATE", "127.0.0.1", &port, "nokey", "0", "5000"],
        vec!["MIGRATE", "127.0.0.1", &port],
        vec!["EXISTS", "busy"],
    ] {
        both(&args, &busy_on_target);
    }
    for args in [
        vec!["MIGRATE", "127.0.0.1", &port, "busy", "0", "5000", "AUTH", "pw"],
        vec!["MIGRATE", "127.0.0.1", &port, "busy", "99", "5000"],
        vec!["MIGRATE", "127.0.0.1", &port, "busy", "1", "5000", "COPY"],
        vec!["EXISTS", "busy"],
        vec!["MIGRATE", "127.0.0.1", &port, "busy", "0", "5000", "REPLACE"],
        vec!["EXISTS", "busy"],
    ] {
        both(&args, &empty_target);
    }
    // A target that is down: Redis's non-blocking connect "succeeds", its first write fails.
    let down = free_port().to_string();
    both(&["SET", "busy", "1"], &empty_target);
    both(&["MIGRATE", "127.0.0.1", &down, "busy", "0", "1000"], &empty_target);
    both(&["EXISTS", "busy"], &empty_target);
}

/// A target that accepts and never answers: MIGRATE waits its timeout and answers Redis's IOERR, and
/// other clients are served meanwhile.
#[test]
fn a_silent_target_times_out_without_holding_up_others() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("listener");
    let port = listener.local_addr().expect("address").port().to_string();
    let held = thread::spawn(move || {
        let mut held = Vec::new();
        listener.set_nonblocking(true).expect("nonblocking");
        let until = Instant::now() + Duration::from_secs(20);
        while Instant::now() < until {
            if let Ok((stream, _)) = listener.accept() {
                held.push(stream);
            }
            thread::sleep(Duration::from_millis(10));
        }
    });
    let redis = RedisServer::start();
    let velo = TestServer::start();
    let mut r = Conn::connect(redis.port);
    let mut v = velo.connect();
    r.cmd(&["SET", "k", "v"]);
    v.cmd(&["SET", "k", "v"]);
    let r_reply = r.cmd(&["MIGRATE", "127.0.0.1", &port, "k", "0", "1500"]);
    v.send(&command(&[b"MIGRATE", b"127.0.0.1", port.as_bytes(), b"k", b"0", b"1500"]));
    let began = Instant::now();
    let mut other = velo.connect();
    for _ in 0..10 {
        let t = Instant::now();
        assert_eq!(other.cmd(&["PING"]), b"+PONG\r\n");
        assert_eq!(other.cmd(&["GET", "k"]), b"$1\r\nv\r\n");
        assert!(t.elapsed() < Duration::from_millis(300), "a PING waited {:?} during MIGRATE", t.elapsed());
        thread::sleep(Duration::from_millis(50));
    }
    let v_reply = v.read_reply();
    let took = began.elapsed();
    assert_eq!(show(&r_reply), show(&v_reply));
    assert_eq!(show(&v_reply), show(b"-IOERR error or timeout reading to target instance\r\n"));
    assert!(took >= Duration::from_millis(1000) && took < Duration::from_secs(5), "MIGRATE took {took:?}");
    assert_eq!(v.cmd(&["EXISTS", "k"]), b":1\r\n");
    drop(held);
}
