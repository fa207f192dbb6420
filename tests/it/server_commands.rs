//! Server commands whose replies depend on the server (INFO, CLIENT LIST, COMMAND, CONFIG REWRITE, the
//! active-expire cycle): checked for shape and meaning rather than against redis-server's bytes.

use std::time::Duration;

use crate::support::resp::{parse, show, Value};
use crate::support::TestServer;

fn text(reply: &[u8]) -> String {
    match parse(reply) {
        Some((Value::Blob(_, Some(bytes)), _)) => String::from_utf8(bytes).unwrap(),
        _ => panic!("not a bulk reply: {}", show(reply)),
    }
}

fn int(reply: &[u8]) -> i64 {
    match parse(reply) {
        Some((Value::Line(b':', digits), _)) => String::from_utf8(digits).unwrap().parse().unwrap(),
        _ => panic!("not an integer reply: {}", show(reply)),
    }
}

#[test]
fn info_sections() {
    let server = TestServer::start();
    let mut conn = server.connect();
    conn.cmd(&["SET", "a", "1"]);
    conn.cmd(&["GET", "a"]);
    conn.cmd(&["GET", "nokey"]);
    let info = text(&conn.cmd(&["INFO"]));
    for section in [
        "# Server",
        "# Clients",
        "# Memory",
        "# Persistence",
        "# Stats",
        "# Replication",
        "# CPU",
        "# Keyspace",
        "# Velo",
    ] {
        assert!(info.contains(section), "{section} missing from {info}");
    }
    assert!(info.contains("redis_version:7.0.0\r\n"));
    assert!(info.contains(&format!("tcp_port:{}\r\n", server.port)));
    assert!(info.contains("db0:keys=1,expires=0,avg_ttl=0\r\n"), "{info}");
    assert!(info.contains("keyspace_hits:1\r\n") && info.contains("keyspace_misses:1\r\n"), "{info}");
    assert!(info.contains("slot0:keys="), "{info}");
    assert!(!info.contains("# Commandstats"));
    let stats = text(&conn.cmd(&["INFO", "commandstats"]));
    assert!(stats.starts_with("# Commandstats\r\n"), "{stats}");
    assert!(stats.contains("cmdstat_get:calls=2,"), "{stats}");
    assert!(stats.contains("cmdstat_set:calls=1,"), "{stats}");
    conn.cmd(&["CONFIG", "RESETSTAT"]);
    let stats = text(&conn.cmd(&["INFO", "commandstats"]));
    assert!(!stats.contains("cmdstat_get"), "{stats}");
    conn.cmd(&["INCR", "nokey", "extra"]);
    conn.cmd(&["SET", "s", "x"]);
    conn.cmd(&["INCR", "s"]);
    let errors = text(&conn.cmd(&["INFO", "errorstats"]));
    assert_eq!(errors, "# Errorstats\r\nerrorstat_ERR:count=2\r\n");
    let all = text(&conn.cmd(&["INFO", "everything"]));
    assert!(all.contains("# Commandstats") && all.contains("# Keyspace"));
}

#[test]
fn client_list_and_info() {
    let server = TestServer::start();
    let mut conn = server.connect();
    let mut other = server.connect();
    other.cmd(&["CLIENT", "SETNAME", "worker"]);
    other.cmd(&["SELECT", "3"]);
    other.cmd(&["SUBSCRIBE", "ch"]);
    // The readiness probe's connection may still be closing on the server side: wait for it to go.
    let mut list = text(&conn.cmd(&["CLIENT", "LIST"]));
    for _ in 0..100 {
        if list.lines().count() == 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        list = text(&conn.cmd(&["CLIENT", "LIST"]));
    }
    assert_eq!(list.lines().count(), 2, "{list}");
    let worker = list.lines().find(|l| l.contains("name=worker")).expect("worker listed");
    assert!(worker.contains(" db=3 ") && worker.contains(" sub=1 ") && worker.contains(" flags=P "), "{worker}");
    assert!(worker.contains(" cmd=subscribe "), "{worker}");
    let pubsub_only = text(&conn.cmd(&["CLIENT", "LIST", "TYPE", "pubsub"]));
    assert_eq!(pubsub_only.lines().count(), 1);
    let info = text(&conn.cmd(&["CLIENT", "INFO"]));
    let id = int(&conn.cmd(&["CLIENT", "ID"]));
    assert!(info.starts_with(&format!("id={id} ")), "{info}");
    assert!(info.contains(" cmd=client|info "), "{info}");
    assert!(conn.cmd(&["CLIENT", "LIST", "ID", &id.to_string()]).len() > 10);
    assert_eq!(conn.cmd(&["CLIENT", "KILL", "127.0.0.1:1"]), b"-ERR No such client\r\n");
}

#[test]
fn command_introspection() {
    let server = TestServer::start();
    let mut conn = server.connect();
    let count = int(&conn.cmd(&["COMMAND", "COUNT"]));
    let all = conn.cmd(&["COMMAND"]);
    let (Value::Agg(b'*', Some(entries)), _) = parse(&all).unwrap() else { panic!() };
    assert_eq!(entries.len() as i64, count);
    let get = conn.cmd(&["COMMAND", "INFO", "get"]);
    let prefix = b"*1\r\n*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n*3\r\n+@read\r\n";
    assert!(get.starts_with(prefix), "{}", show(&get));
    let list = conn.cmd(&["COMMAND", "LIST", "FILTERBY", "PATTERN", "config*"]);
    let (Value::Agg(_, Some(names)), _) = parse(&list).unwrap() else { panic!() };
    assert!(names.contains(&Value::Blob(b'$', Some(b"config|get".to_vec()))), "{}", show(&list));
    let strings = conn.cmd(&["COMMAND", "LIST", "FILTERBY", "ACLCAT", "string"]);
    assert!(show(&strings).contains("incrbyfloat") && !show(&strings).contains("$4⏎ping"));
    let docs = conn.cmd(&["COMMAND", "DOCS", "set"]);
    assert!(show(&docs).contains("summary") && show(&docs).contains("$6⏎string⏎"), "{}", show(&docs));
    assert_eq!(conn.cmd(&["COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"]), b"*2\r\n$1\r\na\r\n$1\r\nb\r\n");
}

#[test]
fn config_file_and_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("velo.conf");
    std::fs::write(&config, "# test\nmaxclients 77\ndatabases 4\n").unwrap();
    let data = dir.path().join("data");
    let server = TestServer::start_in(&data, &["--config", config.to_str().unwrap()]);
    let mut conn = server.connect();
    assert_eq!(conn.cmd(&["CONFIG", "GET", "maxclients"]), b"*2\r\n$10\r\nmaxclients\r\n$2\r\n77\r\n");
    assert_eq!(conn.cmd(&["SELECT", "4"]), b"-ERR DB index is out of range\r\n");
    assert_eq!(conn.cmd(&["CONFIG", "SET", "maxclients", "88"]), b"+OK\r\n");
    assert_eq!(conn.cmd(&["CONFIG", "REWRITE"]), b"+OK\r\n");
    let rewritten = std::fs::read_to_string(&config).unwrap();
    assert!(rewritten.contains("maxclients 88\n") && rewritten.contains("databases 4\n"), "{rewritten}");
}

#[test]
fn active_expire_removes_keys() {
    let server = TestServer::start();
    let mut conn = server.connect();
    for i in 0..20 {
        conn.cmd(&["SET", &format!("k{i}"), "v", "PX", "50"]);
    }
    conn.cmd(&["SET", "stays", "v"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while int(&conn.cmd(&["DBSIZE"])) > 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(int(&conn.cmd(&["DBSIZE"])), 1);
    let stats = text(&conn.cmd(&["INFO", "stats"]));
    assert!(stats.contains("expired_keys:20\r\n"), "{stats}");
}

#[test]
fn watch_sees_writes_from_every_kind_of_command() {
    let server = TestServer::start();
    let mut first = server.connect();
    let mut second = server.connect();
    let writes: &[&[&str]] = &[
        &["DEL", "w"],
        &["MSET", "x", "1", "w", "2"],
        &["APPEND", "w", "x"],
        &["EXPIRE", "w", "100"],
        &["RENAME", "w", "w2"],
        // Bit 4 of "1" (0x31) is clear: a SETBIT that changes nothing signals nothing, in Redis too.
        &["SETBIT", "w", "4", "1"],
        &["FLUSHDB"],
        &["SWAPDB", "0", "1"],
    ];
    for write in writes {
        first.cmd(&["FLUSHALL"]);
        first.cmd(&["SET", "w", "1"]);
        first.cmd(&["WATCH", "w"]);
        second.cmd(write);
        first.cmd(&["MULTI"]);
        first.cmd(&["PING"]);
        assert_eq!(first.cmd(&["EXEC"]), b"*-1\r\n", "{write:?}");
    }
    // A read does not break it, and neither does a write to another key.
    first.cmd(&["SET", "w", "1"]);
    first.cmd(&["WATCH", "w"]);
    second.cmd(&["GET", "w"]);
    second.cmd(&["SET", "other", "1"]);
    first.cmd(&["MULTI"]);
    first.cmd(&["PING"]);
    assert_eq!(first.cmd(&["EXEC"]), b"*1\r\n+PONG\r\n");
}

/// ROLE, MODULE and LOLWUT, which client libraries call at start-up or in their own test suites (redis-py's
/// `module_list`, `role`, `lolwut`), answer as redis-server 7.0 does with its default configuration.
#[test]
fn role_module_and_lolwut_as_redis() {
    let (redis, velo) = crate::support::differential::servers();
    crate::support::differential::compare(
        &redis,
        &velo,
        "role/module",
        &[
            "ROLE",
            "ROLE extra",
            "MODULE LIST",
            "MODULE LIST extra",
            "MODULE HELP",
            "MODULE LOAD /nonexistent/module.so",
            "MODULE LOADEX /nonexistent/module.so ARGS a",
            "MODULE UNLOAD json",
            "MODULE",
            "MODULE nosuch",
            "LOLWUT VERSION notanumber",
        ],
    );
    let mut conn = velo.connect();
    for args in [&["LOLWUT"][..], &["LOLWUT", "VERSION", "7"], &["LOLWUT", "anything", "else"]] {
        assert_eq!(conn.cmd(args), b"$17\r\nRedis ver. 7.0.0\n\r\n", "{args:?}");
    }
}

/// With `enable-module-command yes`, loading is attempted, and it fails as Redis's does for a library it
/// cannot load (Velo loads none); unloading names no loaded module.
#[test]
fn module_load_when_enabled_fails_with_redis_errors() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("velo.conf");
    std::fs::write(&config, "enable-module-command yes\n").unwrap();
    let server = TestServer::start_in(&dir.path().join("data"), &["--config", config.to_str().unwrap()]);
    let mut conn = server.connect();
    assert_eq!(
        conn.cmd(&["MODULE", "LOAD", "/nonexistent/module.so"]),
        b"-ERR Error loading the extension. Please check the server logs.\r\n"
    );
    assert_eq!(
        conn.cmd(&["MODULE", "UNLOAD", "json"]),
        b"-ERR Error unloading module: no such module with that name\r\n"
    );
    assert_eq!(conn.cmd(&["MODULE", "LIST"]), b"*0\r\n");
}
