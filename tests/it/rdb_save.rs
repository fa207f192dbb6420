//! SAVE and BGSAVE write an RDB file (`dbfilename` in `dir`) that redis-server 7.0 loads with the same
//! contents; LASTSAVE, INFO persistence and CONFIG dbfilename behave as in Redis.

use std::time::{Duration, Instant};

use crate::rdb_support::{assert_same, ok, populate};
use crate::support::resp::show;
use crate::support::{Conn, RedisServer, TestServer};

fn info_field(conn: &mut Conn, field: &str) -> String {
    let reply = String::from_utf8_lossy(&conn.cmd(&["INFO", "persistence"])).into_owned();
    reply
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")).map(str::to_string))
        .unwrap_or_else(|| panic!("no {field} in {reply}"))
}

#[test]
fn save_and_bgsave_write_files_redis_loads() {
    let dir = tempfile::tempdir().unwrap();
    let velo = TestServer::start_in(dir.path(), &["--dbfilename", "snap.rdb"]);
    let mut conn = velo.connect();
    populate(&mut conn, 4);
    let before: i64 = String::from_utf8_lossy(&conn.cmd(&["LASTSAVE"]))[1..].trim().parse().unwrap();
    assert_eq!(show(&conn.cmd(&["CONFIG", "GET", "dbfilename"])), "*2⏎$10⏎dbfilename⏎$8⏎snap.rdb⏎");
    assert_eq!(conn.cmd(&["SAVE"]), b"+OK\r\n");
    assert!(velo.dir.join("snap.rdb").exists());
    let after: i64 = String::from_utf8_lossy(&conn.cmd(&["LASTSAVE"]))[1..].trim().parse().unwrap();
    assert!(after >= before);
    assert_eq!(info_field(&mut conn, "rdb_saves"), "1");
    assert_eq!(info_field(&mut conn, "rdb_last_bgsave_status"), "ok");
    {
        let redis = RedisServer::start_in(&velo.dir, &["--dbfilename", "snap.rdb"]);
        assert_same(&mut Conn::connect(redis.port), &mut conn, &[0, 1, 5]);
    }
    // BGSAVE after more writes: a new file holding them.
    ok(&mut conn, &["SET", "after-save", "1"]);
    std::fs::rename(velo.dir.join("snap.rdb"), velo.dir.join("first.rdb")).unwrap();
    assert_eq!(conn.cmd(&["BGSAVE"]), b"+Background saving started\r\n");
    let deadline = Instant::now() + Duration::from_secs(60);
    while info_field(&mut conn, "rdb_bgsave_in_progress") != "0" {
        assert!(Instant::now() < deadline, "BGSAVE did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(info_field(&mut conn, "rdb_saves"), "2");
    let redis = RedisServer::start_in(&velo.dir, &["--dbfilename", "snap.rdb"]);
    let mut rconn = Conn::connect(redis.port);
    assert_eq!(rconn.cmd(&["GET", "after-save"]), b"$1\r\n1\r\n");
    assert_same(&mut rconn, &mut conn, &[0, 1, 5]);
}

#[test]
fn save_errors_match_redis() {
    let redis = RedisServer::start();
    let velo = TestServer::start();
    let mut rconn = Conn::connect(redis.port);
    let mut vconn = velo.connect();
    for args in [
        &["CONFIG", "SET", "dbfilename", "a/b.rdb"][..],
        &["BGSAVE", "NOW"][..],
        &["BGSAVE", "SCHEDULE", "x"][..],
        &["SAVE", "x"][..],
    ] {
        assert_eq!(show(&vconn.cmd(args)), show(&rconn.cmd(args)), "{args:?}");
    }
}
