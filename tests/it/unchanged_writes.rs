//! HSET of a field to the value it already holds writes nothing to the engine, in a small hash (one
//! compact value) and in a split one (one bucket): redis-benchmark's HSET rewrites one field of a
//! one-field hash with the same value, and each rewrite cost a WAL record and a dictionary compression
//! (docs/performance.md, branch `hotkey`). For clients it stays a write, as in Redis: WATCH aborts, the
//! keyspace event goes out, and the reply counts no new field.

use crate::support::{Conn, TestServer};

fn changes(conn: &mut Conn) -> u64 {
    let info = String::from_utf8(conn.cmd(&["INFO", "persistence"])).expect("INFO is text");
    info.lines()
        .find_map(|line| line.strip_prefix("rdb_changes_since_last_save:"))
        .expect("INFO persistence has rdb_changes_since_last_save")
        .trim()
        .parse()
        .expect("a number")
}

#[test]
fn hset_of_the_held_value_writes_nothing_yet_is_a_write_for_clients() {
    let velo = TestServer::start();
    let mut conn = velo.connect();
    let mut other = velo.connect();
    assert_eq!(conn.cmd(&["HSET", "small", "f", "v"]), b":1\r\n");
    // Past the split threshold (512 fields): a split hash.
    for chunk in (0..1000).collect::<Vec<_>>().chunks(250) {
        let mut args = vec!["HSET".to_string(), "big".into()];
        for i in chunk {
            args.push(format!("f{i}"));
            args.push(format!("v{i}"));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(conn.cmd(&args), b":250\r\n");
    }
    let before = changes(&mut conn);
    assert_eq!(conn.cmd(&["HSET", "small", "f", "v"]), b":0\r\n");
    assert_eq!(conn.cmd(&["HSET", "big", "f7", "v7"]), b":0\r\n");
    assert_eq!(conn.cmd(&["HMSET", "small", "f", "v"]), b"+OK\r\n");
    assert_eq!(changes(&mut conn), before, "an unchanged HSET wrote to the engine");

    // Still a write for WATCH and keyspace events.
    conn.cmd(&["CONFIG", "SET", "notify-keyspace-events", "Eh"]);
    let mut subscriber = velo.connect();
    subscriber.cmd(&["SUBSCRIBE", "__keyevent@0__:hset"]);
    for key in ["small", "big"] {
        let (field, value) = if key == "small" { ("f", "v") } else { ("f7", "v7") };
        conn.cmd(&["WATCH", key]);
        conn.cmd(&["MULTI"]);
        conn.cmd(&["HGET", key, field]);
        assert_eq!(other.cmd(&["HSET", key, field, value]), b":0\r\n");
        assert_eq!(conn.cmd(&["EXEC"]), b"*-1\r\n", "WATCH of {key} survived an HSET");
        let event = subscriber.read_reply();
        let expected = format!("*3\r\n$7\r\nmessage\r\n$19\r\n__keyevent@0__:hset\r\n${}\r\n{key}\r\n", key.len());
        assert_eq!(String::from_utf8_lossy(&event), expected);
    }

    // A changed value is written, and both values read back.
    assert_eq!(conn.cmd(&["HSET", "small", "f", "w"]), b":0\r\n");
    assert_eq!(conn.cmd(&["HSET", "big", "f7", "w7"]), b":0\r\n");
    assert!(changes(&mut conn) > before, "a changed HSET was not written");
    assert_eq!(conn.cmd(&["HGET", "small", "f"]), b"$1\r\nw\r\n");
    assert_eq!(conn.cmd(&["HGET", "big", "f7"]), b"$2\r\nw7\r\n");
    assert_eq!(conn.cmd(&["HGET", "big", "f8"]), b"$2\r\nv8\r\n");
}
