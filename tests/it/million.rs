//! A collection of a million elements of each container type (hash, set, list, sorted set) and a stream of
//! a million entries: created through the server with pipelined commands, queried, the server restarted,
//! queried again. Split storage is what makes this feasible: no command rewrites a whole collection.

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
    // Sharing 2 cores with the rest of the suite, a pipeline of 16 × 2,000-element commands can take longer
    // than the default 30 s read timeout.
    conn.set_timeout(std::time::Duration::from_secs(180));
    fill(&mut conn, "HSET", "hash", |i| vec![format!("field:{i}").into_bytes(), format!("value:{i}").into_bytes()]);
    fill(&mut conn, "SADD", "set", |i| vec![format!("member:{i}").into_bytes()]);
    fill(&mut conn, "RPUSH", "list", |i| vec![format!("item:{i}").into_bytes()]);
    fill(&mut conn, "ZADD", "zset", |i| vec![i.to_string().into_bytes(), format!("m:{i}").into_bytes()]);
    query(&mut conn);
    drop(conn);
    assert_eq!(server.terminate(), Some(0));
    let server = TestServer::start_in(dir.path(), &[]);
    let mut conn = server.connect();
    // Sharing 2 cores with the rest of the suite, a pipeline of 16 × 2,000-element commands can take longer
    // than the default 30 s read timeout.
    conn.set_timeout(std::time::Duration::from_secs(180));
    query(&mut conn);
}

/// The reply of XRANGE/XREVRANGE for the stream's entries `ids` (entry `i` is `{i + 1}-0 f {i}`).
fn stream_entries(ids: impl Iterator<Item = usize>) -> Vec<u8> {
    let entries: Vec<Vec<u8>> = ids
        .map(|i| {
            [b"*2\r\n".to_vec(), bulk(&format!("{}-0", i + 1)), b"*2\r\n".to_vec(), bulk("f"), bulk(&i.to_string())]
                .concat()
        })
        .collect();
    [format!("*{}\r\n", entries.len()).into_bytes(), entries.concat()].concat()
}

fn query_stream(conn: &mut Conn) {
    assert_eq!(conn.cmd(&["XLEN", "stream"]), format!(":{ELEMENTS}\r\n").into_bytes());
    assert_eq!(conn.cmd(&["XRANGE", "stream", "-", "+", "COUNT", "2"]), stream_entries(0..2));
    assert_eq!(conn.cmd(&["XRANGE", "stream", "500000", "500002"]), stream_entries(499_999..500_002));
    assert_eq!(
        conn.cmd(&["XREVRANGE", "stream", "+", "-", "COUNT", "3"]),
        stream_entries((ELEMENTS - 3..ELEMENTS).rev())
    );
    assert_eq!(
        conn.cmd(&["XREVRANGE", "stream", "77777", "-", "COUNT", "2"]),
        stream_entries([77_776, 77_775].into_iter())
    );
    let read = conn.cmd(&["XREAD", "COUNT", "2", "STREAMS", "stream", "999998"]);
    assert_eq!(read, [b"*1\r\n*2\r\n".to_vec(), bulk("stream"), stream_entries(999_998..1_000_000)].concat());
    // 100 entries per node, as Redis would lay them out.
    let info = String::from_utf8_lossy(&conn.cmd(&["XINFO", "STREAM", "stream"])).into_owned();
    assert!(info.contains("radix-tree-keys\r\n:10000\r\n"), "{info}");
}

#[test]
fn a_million_entry_stream_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = TestServer::start_in(dir.path(), &[]);
    let mut conn = server.connect();
    // Sharing 2 cores with the rest of the suite, a pipeline of 16 × 2,000-element commands can take longer
    // than the default 30 s read timeout.
    conn.set_timeout(std::time::Duration::from_secs(180));
    // One XADD per entry, 256 in flight.
    let mut batch = Vec::new();
    for start in (0..ELEMENTS).step_by(256) {
        batch.clear();
        let end = (start + 256).min(ELEMENTS);
        for i in start..end {
            let id = format!("{}-0", i + 1);
            let value = i.to_string();
            batch.extend(command(&[b"XADD", b"stream", id.as_bytes(), b"f", value.as_bytes()]));
        }
        conn.send(&batch);
        for _ in start..end {
            let reply = conn.read_reply();
            assert_eq!(reply.first(), Some(&b'$'), "XADD: {}", String::from_utf8_lossy(&reply));
        }
    }
    query_stream(&mut conn);
    drop(conn);
    assert_eq!(server.terminate(), Some(0));
    let server = TestServer::start_in(dir.path(), &[]);
    let mut conn = server.connect();
    // Sharing 2 cores with the rest of the suite, a pipeline of 16 × 2,000-element commands can take longer
    // than the default 30 s read timeout.
    conn.set_timeout(std::time::Duration::from_secs(180));
    query_stream(&mut conn);
}
