//! Bloom filter commands through the server. RedisBloom is not available here to compare with, so these
//! pin RedisBloom's documented replies and Velo's own guarantees (no false negatives, dumps that reload,
//! filters that survive a restart).

use crate::support::resp::show;
use crate::support::TestServer;

fn expect(conn: &mut crate::support::Conn, args: &[&str], reply: &[u8]) {
    let got = conn.cmd(args);
    assert_eq!(got, reply, "{args:?}: {}", show(&got));
}

#[test]
fn bloom_commands() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = TestServer::start_in(dir.path(), &["--fsync", "always"]);
    let mut conn = server.connect();
    expect(&mut conn, &["BF.ADD", "f", "apple"], b":1\r\n");
    expect(&mut conn, &["BF.ADD", "f", "apple"], b":0\r\n");
    expect(&mut conn, &["BF.EXISTS", "f", "apple"], b":1\r\n");
    expect(&mut conn, &["BF.EXISTS", "f", "pear"], b":0\r\n");
    expect(&mut conn, &["BF.EXISTS", "missing", "x"], b":0\r\n");
    expect(&mut conn, &["BF.MADD", "f", "pear", "apple", "plum"], b"*3\r\n:1\r\n:0\r\n:1\r\n");
    expect(&mut conn, &["BF.MEXISTS", "f", "pear", "kiwi"], b"*2\r\n:1\r\n:0\r\n");
    expect(&mut conn, &["BF.CARD", "f"], b":3\r\n");
    expect(&mut conn, &["BF.CARD", "missing"], b":0\r\n");
    expect(&mut conn, &["TYPE", "f"], b"+MBbloom--\r\n");
    expect(&mut conn, &["BF.RESERVE", "f", "0.01", "100"], b"-ERR item exists\r\n");
    expect(&mut conn, &["BF.RESERVE", "r", "1.5", "100"], b"-ERR (0 < error rate range < 1)\r\n");
    expect(&mut conn, &["BF.RESERVE", "r", "0.01", "0"], b"-ERR (capacity should be larger than 0)\r\n");
    expect(&mut conn, &["BF.RESERVE", "r", "abc", "100"], b"-ERR bad error rate\r\n");
    expect(&mut conn, &["BF.RESERVE", "r", "0.01", "100", "BOGUS"], b"-ERR syntax error\r\n");
    expect(&mut conn, &["BF.RESERVE", "small", "0.01", "2", "NONSCALING"], b"+OK\r\n");
    expect(&mut conn, &["BF.MADD", "small", "a", "b", "c"], b"*3\r\n:1\r\n:1\r\n-ERR non scaling filter is full\r\n");
    expect(&mut conn, &["BF.INFO", "small", "CAPACITY"], b"*1\r\n:2\r\n");
    expect(&mut conn, &["BF.INFO", "small", "EXPANSION"], b"*1\r\n$-1\r\n");
    expect(&mut conn, &["BF.INFO", "missing"], b"-ERR not found\r\n");
    expect(&mut conn, &["BF.INSERT", "missing", "NOCREATE", "ITEMS", "a"], b"-ERR not found\r\n");
    expect(
        &mut conn,
        &["BF.INSERT", "ins", "CAPACITY", "1000", "ERROR", "0.001", "ITEMS", "a", "a"],
        b"*2\r\n:1\r\n:0\r\n",
    );
    expect(&mut conn, &["SET", "s", "v"], b"+OK\r\n");
    expect(&mut conn, &["BF.ADD", "s", "x"], b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    let info = conn.cmd(&["BF.INFO", "ins"]);
    assert!(show(&info).contains("Capacity") && show(&info).contains("Number of items inserted"), "{}", show(&info));

    // Many items: no false negatives; a dump reloads into an identical filter.
    let items: Vec<String> = (0..2000).map(|n| format!("item-{n}")).collect();
    for chunk in items.chunks(100) {
        let mut args = vec!["BF.MADD", "big"];
        args.extend(chunk.iter().map(String::as_str));
        conn.cmd(&args);
    }
    let mut cursor = "0".to_string();
    let mut chunks: Vec<(String, Vec<u8>)> = Vec::new();
    loop {
        let reply = conn.cmd(&["BF.SCANDUMP", "big", &cursor]);
        let (value, _) = crate::support::resp::parse(&reply).expect("reply parses");
        let crate::support::resp::Value::Agg(_, Some(parts)) = value else { panic!("{}", show(&reply)) };
        let (crate::support::resp::Value::Line(b':', next), crate::support::resp::Value::Blob(_, Some(data))) =
            (&parts[0], &parts[1])
        else {
            panic!("{}", show(&reply))
        };
        let next = String::from_utf8_lossy(next).into_owned();
        if next == "0" {
            break;
        }
        cursor = next;
        chunks.push((cursor.clone(), data.clone()));
    }
    assert!(chunks.len() >= 2, "a header chunk and data");
    for (cursor, data) in &chunks {
        let reply = conn.cmd_bytes(&[b"BF.LOADCHUNK", b"copy", cursor.as_bytes(), data]);
        assert_eq!(reply, b"+OK\r\n", "{}", show(&reply));
    }
    for item in items.iter().step_by(37) {
        expect(&mut conn, &["BF.EXISTS", "copy", item], b":1\r\n");
    }
    let card = conn.cmd(&["BF.CARD", "big"]);
    expect(&mut conn, &["BF.CARD", "copy"], &card);

    // Everything acknowledged survives kill -9 (fsync always).
    server.kill9();
    let server = TestServer::start_in(dir.path(), &[]);
    let mut conn = server.connect();
    for item in items.iter().step_by(11) {
        expect(&mut conn, &["BF.EXISTS", "big", item], b":1\r\n");
    }
    expect(&mut conn, &["BF.CARD", "f"], b":3\r\n");
}

/// BF.DEBUG in RedisBloom's line format, following the chain as it scales; BF.RESERVE refuses EXPANSION
/// with NONSCALING as RedisBloom does (redis-py's bloom tests use both).
#[test]
fn bloom_debug_lines_and_nonscaling_expansion() {
    let server = TestServer::start();
    let mut conn = server.connect();
    expect(&mut conn, &["BF.RESERVE", "f", "0.01", "100", "EXPANSION", "2"], b"+OK\r\n");
    for i in 0..3 {
        conn.cmd(&["BF.ADD", "f", &format!("item{i}")]);
    }
    // First sub-filter of a scaling chain: half the error, -ln(0.005)/ln(2)^2 = 11.03 bits per entry, 1103
    // bits rounded up to 18 words, ceil(ln(2) x 11.03) = 8 hashes.
    expect(
        &mut conn,
        &["BF.DEBUG", "f"],
        b"*2\r\n$6\r\nsize:3\r\n$73\r\nbytes:144 bits:1152 hashes:8 hashwidth:64 capacity:100 size:3 ratio:0.005\r\n",
    );
    for i in 3..150 {
        conn.cmd(&["BF.ADD", "f", &format!("item{i}")]);
    }
    let lines = conn.cmd(&["BF.DEBUG", "f"]);
    let text = String::from_utf8_lossy(&lines);
    assert!(text.starts_with("*3\r\n"), "{text}");
    assert!(text.contains("capacity:200 ") && text.contains("ratio:0.0025"), "{text}");
    expect(&mut conn, &["BF.DEBUG", "missing"], b"-ERR not found\r\n");
    expect(
        &mut conn,
        &["BF.RESERVE", "g", "0.01", "100", "EXPANSION", "2", "NONSCALING"],
        b"-Nonscaling filters cannot expand\r\n",
    );
    expect(
        &mut conn,
        &["BF.RESERVE", "g", "0.01", "100", "NONSCALING", "EXPANSION", "2"],
        b"-Nonscaling filters cannot expand\r\n",
    );
    expect(&mut conn, &["EXISTS", "g"], b":0\r\n");
}
