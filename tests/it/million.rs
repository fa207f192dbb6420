//! A collection of a million elements of each container type (hash, set, list, sorted set): created
//! through the server with pipelined commands, queried, the server restarted, queried again. Split
//! storage is what makes this feasible: no command rewrites a whole collection.

use crate::support::resp::command;
use crate::support::{Conn, TestServer};

const ELEMENTS: usize = 1_000_000;
const PER_COMMAND: usize = 2_000;

/// Sends `lines` pipelined in groups, checking every reply with `check`.
fn pipeline(conn: &mut Conn, commands: impl Iterator<Item = Vec<Vec<u8>>>, check: impl Fn(&[u8])) {
    let mut pending = 0;
    for args in commands {
        let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        conn.send(&command(&args));
        pending += 1;
        if pending == 16 {
            for _ in 0..pending {
                check(&conn.read_reply());
            }
            pending = 0;
        }
    }
    for _ in 0..pending {
        check(&conn.read_reply());
    }
}

/// One command per `PER_COMMAND` elements: `verb key` then each element's arguments.
fn fill(conn: &mut Conn, verb: &str, key: &str, element: impl Fn(usize) -> Vec<Vec<u8>>) {
    let commands = (0..ELEMENTS).step_by(PER_COMMAND).map(|start| {
        let mut args = vec![verb.as_bytes().to_vec(), key.as_bytes().to_vec()];
        for i in start..(start + PER_COMMAND).min(ELEMENTS) {
            args.extend(element(i));
        }
        args
    });
    pipeline(conn, commands, |reply| {
        assert!(reply.first() == Some(&b':'), "{verb}: {}", String::from_utf8_lossy(reply))
    });
}

fn bulk(text: &str) -> Vec<u8> {
    format!("${}\r\n{text}\r\n", text.len()).into_bytes()
}

fn query(conn: &mut Conn) {
    let count = format!(":{ELEMENTS}\r\n").into_bytes();
    assert_eq!(conn.cmd(&["HLEN", "hash"]), count);
    assert_eq!(conn.cmd(&["SCARD", "set"]), count);
    assert_eq!(conn.cmd(&["LLEN", "list"]), count);
    assert_eq!(conn.cmd(&["ZCARD", "zset"]), count);
    for i in [0, 1, 77_777, 500_000, 999_999] {
        assert_eq!(conn.cmd(&["HGET", "hash", &format!("field:{i}")]), bulk(&format!("value:{i}")));
        assert_eq!(conn.cmd(&["SISMEMBER", "set", &format!("member:{i}")]), b":1\r\n");
        assert_eq!(conn.cmd(&["LINDEX", "list", &i.to_string()]), bulk(&format!("item:{i}")));
        assert_eq!(conn.cmd(&["ZSCORE", "zset", &format!("m:{i}")]), bulk(&i.to_string()));
        assert_eq!(conn.cmd(&["ZRANK", "zset", &format!("m:{i}")]), format!(":{i}\r\n").into_bytes());
    }
    assert_eq!(conn.cmd(&["HGET", "hash", "field:1000000"]), b"$-1\r\n");
    assert_eq!(conn.cmd(&["SISMEMBER", "set", "member:-1"]), b":0\r\n");
    assert_eq!(
        conn.cmd(&["LRANGE", "list", "499999", "500001"]),
        [b"*3\r\n".to_vec(), bulk("item:499999"), bulk("item:500000"), bulk("item:500001")].concat()
    );
    assert_eq!(
        conn.cmd(&["ZRANGE", "zset", "999998", "999999"]),
        [b"*2\r\n".to_vec(), bulk("m:999998"), bulk("m:999999")].concat()
    );
    assert_eq!(conn.cmd(&["ZCOUNT", "zset", "(1000", "2000"]), b":1000\r\n");
}

#[test]
fn a_million_elements_of_each_container_type_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = TestServer::start_in(dir.path(), &[]);
    let mut conn = server.connect();
    fill(&mut conn, "HSET", "hash", |i| vec![format!("field:{i}").into_bytes(), format!("value:{i}").into_bytes()]);
    fill(&mut conn, "SADD", "set", |i| vec![format!("member:{i}").into_bytes()]);
    fill(&mut conn, "RPUSH", "list", |i| vec![format!("item:{i}").into_bytes()]);
    fill(&mut conn, "ZADD", "zset", |i| vec![i.to_string().into_bytes(), format!("m:{i}").into_bytes()]);
    query(&mut conn);
    drop(conn);
    assert_eq!(server.terminate(), Some(0));
    let server = TestServer::start_in(dir.path(), &[]);
    let mut conn = server.connect();
    query(&mut conn);
}
