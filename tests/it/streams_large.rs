//! Large streams (split into parts past the split threshold): differential scripts against redis-server
//! 7.0 over streams of thousands of entries (ranges and reads at the start, middle and end, deletions,
//! exact and approximate trimming, XINFO's node counts, consumer groups, shrinking back below the join
//! threshold), a large stream surviving `kill -9` under `--fsync always`, and the parts of deleted,
//! overwritten, copied and joined streams being freed.

use std::time::{Duration, Instant};

use crate::streams::mask;
use crate::support::differential::servers;
use crate::support::resp::{command, encode, parse, show, Value};
use crate::support::{Conn, TestServer};

/// Sends `lines` pipelined (64 in flight) and returns their raw replies.
fn pipeline(conn: &mut Conn, lines: &[String]) -> Vec<Vec<u8>> {
    let mut replies = Vec::with_capacity(lines.len());
    for batch in lines.chunks(64) {
        for line in batch {
            let args = velo::resp::decode::split_args(line.as_bytes()).expect("script line parses");
            let args: Vec<&[u8]> = args.iter().map(|a| a.as_ref()).collect();
            conn.send(&command(&args));
        }
        for _ in batch {
            replies.push(conn.read_reply());
        }
    }
    replies
}

/// Runs `setup` pipelined, then `queries` one by one, on redis-server and Velo (RESP2 and RESP3): every
/// setup reply must match exactly, query replies after masking clocks.
fn compare_large(name: &str, setup: &[String], queries: &[String]) {
    let (redis, velo) = servers();
    for resp3 in [false, true] {
        // Per server: (setup replies, query replies).
        type Replies = (Vec<Vec<u8>>, Vec<Vec<u8>>);
        let mut outputs: Vec<Replies> = Vec::new();
        for port in [redis.port, velo.port] {
            let mut conn = Conn::connect(port);
            assert_eq!(conn.cmd(&["FLUSHALL"]), b"+OK\r\n");
            if resp3 {
                conn.cmd(&["HELLO", "3"]);
            }
            let setup_replies = pipeline(&mut conn, setup);
            let mut out = Vec::new();
            for line in queries {
                let args = velo::resp::decode::split_args(line.as_bytes()).expect("script line parses");
                let args: Vec<&[u8]> = args.iter().map(|a| a.as_ref()).collect();
                let (mut value, _) = parse(&conn.cmd_bytes(&args)).expect("reply parses");
                mask(&mut value);
                let mut bytes = Vec::new();
                encode(&value, &mut bytes);
                out.push(bytes);
            }
            outputs.push((setup_replies, out));
        }
        let protocol = if resp3 { "RESP3" } else { "RESP2" };
        for (i, line) in setup.iter().enumerate() {
            let (redis, velo) = (&outputs[0].0[i], &outputs[1].0[i]);
            assert!(
                redis == velo,
                "{name} ({protocol}), setup `{line}`:\n  redis: {}\n  velo:  {}",
                show(redis),
                show(velo)
            );
        }
        for (i, line) in queries.iter().enumerate() {
            let (redis, velo) = (&outputs[0].1[i], &outputs[1].1[i]);
            assert!(redis == velo, "{name} ({protocol}), `{line}`:\n  redis: {}\n  velo:  {}", show(redis), show(velo));
        }
    }
}

/// `count` XADDs to `key` with explicit, irregularly spaced IDs (several per millisecond now and then) and
/// fields that mostly repeat (Redis's master fields) with values of varying size; returns the lines and
/// the IDs.
fn xadds(key: &str, count: usize, seed: u64) -> (Vec<String>, Vec<String>) {
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};
    let mut rng = SmallRng::seed_from_u64(seed);
    let (mut lines, mut ids) = (Vec::with_capacity(count), Vec::with_capacity(count));
    let mut ms = 1_000u64;
    let mut seq = 0u64;
    for i in 0..count {
        if rng.gen_bool(0.7) {
            ms += rng.gen_range(1..40);
            seq = 0;
        } else {
            seq += 1;
        }
        let id = format!("{ms}-{seq}");
        let fields = match rng.gen_range(0..10) {
            0 => format!("other {i} extra {}", "x".repeat(rng.gen_range(1..90))),
            1 => format!("f {}", "v".repeat(rng.gen_range(100..400))),
            _ => format!("f {i} g {}", rng.gen_range(0..1_000_000)),
        };
        lines.push(format!("XADD {key} {id} {fields}"));
        ids.push(id);
    }
    (lines, ids)
}

#[test]
fn large_stream_reads_match_redis() {
    let (setup, ids) = xadds("s", 12_000, 1);
    let n = ids.len();
    let mut queries: Vec<String> = vec![
        "XLEN s".into(),
        "XINFO STREAM s".into(),
        "XRANGE s - + COUNT 5".into(),
        "XREVRANGE s + - COUNT 5".into(),
        format!("XRANGE s {} + COUNT 7", ids[5_000]),
        format!("XRANGE s ({} + COUNT 7", ids[5_000]),
        format!("XRANGE s {} {}", ids[4_990], ids[5_210]),
        format!("XREVRANGE s {} {}", ids[7_300], ids[7_020]),
        format!("XREVRANGE s {} - COUNT 9", ids[6_000]),
        format!("XREVRANGE s + ({} COUNT 20", ids[n - 10]),
        format!("XRANGE s {} + COUNT 20", ids[n - 3]),
        format!("XRANGE s - {} COUNT 4", ids[2]),
        "XRANGE s 1000 1000".into(),
        "XRANGE s 999999999 +".into(),
        "XREVRANGE s 999 -".into(),
        "XREAD COUNT 3 STREAMS s 0".into(),
        format!("XREAD COUNT 4 STREAMS s {}", ids[8_888]),
        format!("XREAD STREAMS s {}", ids[n - 3]),
        format!("XREAD COUNT 2 STREAMS s s {} {}", ids[100], ids[11_000]),
        format!("XREAD STREAMS s {}", ids[n - 1]),
        "XREAD STREAMS s $".into(),
        "XSETID s 1".into(),
        "XINFO STREAM s FULL COUNT 3".into(),
    ];
    // Deletions in the middle, one whole node's worth (Redis frees a node when its last entry goes).
    let middle: Vec<String> = ids[6_000..6_400].iter().step_by(3).cloned().collect();
    queries.push(format!("XDEL s {} 1-1 {}", middle.join(" "), ids[6_001]));
    queries.push(format!("XDEL s {}", ids[3_000..3_300].join(" ")));
    queries.push(format!("XRANGE s {} {} COUNT 30", ids[5_990], ids[6_100]));
    queries.push(format!("XREVRANGE s {} {} COUNT 30", ids[3_310], ids[2_990]));
    queries.push(format!("XREAD COUNT 3 STREAMS s {}", ids[2_999]));
    queries.push("XINFO STREAM s".into());
    queries.push("XLEN s".into());
    let setup: Vec<String> = setup.into_iter().collect();
    compare_large("large stream reads", &setup, &queries);
}

#[test]
fn large_stream_trimming_matches_redis() {
    let (mut setup, ids) = xadds("s", 15_000, 2);
    let (more, _) = xadds("t", 4_000, 3);
    setup.extend(more);
    let queries: Vec<String> = vec![
        "XTRIM s MAXLEN ~ 14000".into(),
        "XINFO STREAM s".into(),
        "XTRIM s MAXLEN 13555".into(),
        "XINFO STREAM s".into(),
        "XRANGE s - + COUNT 3".into(),
        format!("XTRIM s MINID ~ {}", ids[3_333]),
        "XINFO STREAM s".into(),
        format!("XTRIM s MINID {}", ids[4_321]),
        "XRANGE s - + COUNT 2".into(),
        "XINFO STREAM s".into(),
        "XTRIM s MAXLEN ~ 1000 LIMIT 250".into(),
        "XTRIM s MAXLEN ~ 1000 LIMIT 0".into(),
        "XINFO STREAM s".into(),
        format!("XADD s MAXLEN ~ 900 {} f v", "999999999-0"),
        "XADD s MAXLEN 700 999999999-1 f v".into(),
        "XLEN s".into(),
        "XRANGE s - + COUNT 2".into(),
        "XINFO STREAM s".into(),
        // Below the join threshold, back to one value: still the same stream.
        "XTRIM s MAXLEN 100".into(),
        "XINFO STREAM s".into(),
        "XRANGE s - + COUNT 3".into(),
        "XTRIM s MAXLEN 0".into(),
        "XLEN s".into(),
        "EXISTS s".into(),
        "XINFO STREAM s".into(),
        "XADD s 999999999-5 a b".into(),
        "XRANGE s - +".into(),
        // A stream emptied by deletions stays a key too.
        "XTRIM t MAXLEN 600".into(),
        "XTRIM t MAXLEN 10".into(),
        "XINFO STREAM t".into(),
    ];
    compare_large("large stream trimming", &setup, &queries);
}

#[test]
fn large_stream_groups_match_redis() {
    let (mut setup, ids) = xadds("s", 6_000, 4);
    setup.insert(0, "XGROUP CREATE s g 0 MKSTREAM".into());
    setup.push("XGROUP CREATE s late $".into());
    let queries: Vec<String> = vec![
        "XREADGROUP GROUP g alice COUNT 50 STREAMS s >".into(),
        "XREADGROUP GROUP g bob COUNT 1500 STREAMS s >".into(),
        "XINFO GROUPS s".into(),
        "XPENDING s g".into(),
        format!("XPENDING s g {} + 5", ids[1_200]),
        format!("XACK s g {} {} {}", ids[0], ids[60], ids[1_549]),
        format!("XDEL s {} {}", ids[70], ids[71]),
        "XREADGROUP GROUP g alice COUNT 0 STREAMS s 0".into(),
        format!("XREADGROUP GROUP g bob COUNT 3 STREAMS s {}", ids[65]),
        format!("XCLAIM s g carol 0 {} {} {}", ids[70], ids[80], ids[1_000]),
        format!("XCLAIM s g carol 0 {} {} JUSTID", ids[81], ids[82]),
        format!("XAUTOCLAIM s g dave 0 {} COUNT 25", ids[90]),
        format!("XAUTOCLAIM s g dave 0 {} COUNT 5 JUSTID", ids[1_400]),
        "XINFO GROUPS s".into(),
        "XINFO STREAM s FULL COUNT 4".into(),
        "XINFO CONSUMERS s g".into(),
        "XREADGROUP GROUP g alice NOACK COUNT 4000 STREAMS s >".into(),
        "XREADGROUP GROUP g alice STREAMS s >".into(),
        "XREADGROUP GROUP late zed STREAMS s >".into(),
        "XADD s 99999999-0 k v".into(),
        "XREADGROUP GROUP late zed STREAMS s >".into(),
        format!("XGROUP SETID s g {} ENTRIESREAD 2000", ids[2_000]),
        "XINFO GROUPS s".into(),
        "XTRIM s MAXLEN 50".into(),
        "XINFO GROUPS s".into(),
        "XPENDING s g - + 3".into(),
        "XREADGROUP GROUP g alice COUNT 3 STREAMS s 0".into(),
    ];
    compare_large("large stream groups", &setup, &queries);
}

/// Random long scripts at split scale: bursts of hundreds of entries, trims, deletions and group reads.
#[test]
fn large_stream_random_scripts_match_redis() {
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};
    let base: u64 = crate::support::differential::seed_base(1_764_000_000);
    let mut rng = SmallRng::seed_from_u64(base);
    let mut setup: Vec<String> = vec!["XGROUP CREATE s g 0 MKSTREAM".into()];
    let mut queries: Vec<String> = Vec::new();
    let mut next: u64 = 1;
    for round in 0..60 {
        let around = rng.gen_range(next.saturating_sub(3_000)..=next);
        let n: u64 = rng.gen_range(0..2_500);
        let approx = if rng.gen_bool(0.5) { "~ " } else { "" };
        let lines = if round < 5 { &mut setup } else { &mut queries };
        match rng.gen_range(0..12) {
            0..=3 => {
                for _ in 0..rng.gen_range(100..1_500) {
                    lines.push(format!("XADD s {next}-{} f {next}", rng.gen_range(0..2)));
                    next += rng.gen_range(1..3);
                }
            }
            4 => lines.push(format!("XTRIM s MAXLEN {approx}{n}")),
            5 => lines.push(format!("XTRIM s MINID {approx}{around}")),
            6 => {
                let from = rng.gen_range(next.saturating_sub(3_000)..next);
                let ids: Vec<String> = (0..rng.gen_range(1..150)).map(|k| format!("{}-0", from + k)).collect();
                lines.push(format!("XDEL s {}", ids.join(" ")));
            }
            7 => lines.push(format!("XREADGROUP GROUP g c COUNT {n} STREAMS s >")),
            8 => lines.push(format!("XRANGE s {around} + COUNT 5")),
            9 => lines.push(format!("XREVRANGE s {around} - COUNT 5")),
            10 => lines.push("XINFO STREAM s".into()),
            _ => lines.push(format!("XACK s g {around}-0 {around}-1")),
        }
    }
    queries.push("XINFO STREAM s".into());
    queries.push("XINFO GROUPS s".into());
    queries.push("XLEN s".into());
    compare_large(&format!("large random scripts (VELO_DIFF_SEED={base})"), &setup, &queries);
}

fn collection_parts(conn: &mut Conn) -> u64 {
    let reply = conn.cmd(&["INFO", "velo"]);
    let Value::Blob(_, Some(info)) = parse(&reply).expect("INFO parses").0 else {
        panic!("INFO is a bulk string: {}", show(&reply))
    };
    String::from_utf8_lossy(&info)
        .lines()
        .find_map(|line| line.strip_prefix("collection_parts:"))
        .expect("INFO velo has collection_parts")
        .trim()
        .parse()
        .expect("a number")
}

fn fill(conn: &mut Conn, key: &str, count: usize) {
    let (lines, _) = xadds(key, count, 9);
    for reply in pipeline(conn, &lines) {
        assert_eq!(reply.first(), Some(&b'$'), "{}", show(&reply));
    }
}

/// Waits until the parts count is `want`, or fails after `limit`.
fn wait_for_parts(conn: &mut Conn, want: u64, limit: Duration) {
    let start = Instant::now();
    loop {
        let parts = collection_parts(conn);
        if parts == want {
            return;
        }
        assert!(start.elapsed() < limit, "collection_parts stayed at {parts}, expected {want}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn parts_of_large_streams_are_freed_and_copies_are_independent() {
    let velo = TestServer::start();
    let mut conn = velo.connect();
    fill(&mut conn, "kept", 3_000);
    let kept = collection_parts(&mut conn);
    assert!(kept > 30, "a split stream of 3000 entries has its parts ({kept})");
    // Joining back frees the parts in the same command.
    fill(&mut conn, "joined", 3_000);
    assert!(collection_parts(&mut conn) > kept);
    assert_eq!(conn.cmd(&["XTRIM", "joined", "MAXLEN", "5"]), b":2995\r\n");
    assert_eq!(collection_parts(&mut conn), kept);
    assert_eq!(conn.cmd(&["XLEN", "joined"]), b":5\r\n");
    // COPY, RENAME and MOVE carry the whole stream; the copy is a stream of its own.
    assert_eq!(conn.cmd(&["COPY", "kept", "copy"]), b":1\r\n");
    assert_eq!(conn.cmd(&["XADD", "copy", "99999999-0", "only", "here"]), b"$10\r\n99999999-0\r\n");
    assert_eq!(conn.cmd(&["XLEN", "kept"]), b":3000\r\n");
    assert_eq!(conn.cmd(&["XLEN", "copy"]), b":3001\r\n");
    assert_eq!(
        conn.cmd(&["XRANGE", "kept", "-", "+", "COUNT", "2"]),
        conn.cmd(&["XRANGE", "copy", "-", "+", "COUNT", "2"])
    );
    assert_eq!(conn.cmd(&["RENAME", "copy", "renamed"]), b"+OK\r\n");
    assert_eq!(conn.cmd(&["MOVE", "renamed", "3"]), b":1\r\n");
    assert_eq!(conn.cmd(&["SELECT", "3"]), b"+OK\r\n");
    assert_eq!(conn.cmd(&["XLEN", "renamed"]), b":3001\r\n");
    assert!(conn.cmd(&["XREVRANGE", "renamed", "+", "-", "COUNT", "1"]).ends_with(b"here\r\n"));
    assert_eq!(conn.cmd(&["DEL", "renamed"]), b":1\r\n");
    assert_eq!(conn.cmd(&["SELECT", "0"]), b"+OK\r\n");
    // Deleted and overwritten streams leave their parts to the sweeper.
    fill(&mut conn, "deleted", 2_000);
    fill(&mut conn, "overwritten", 2_000);
    assert_eq!(conn.cmd(&["DEL", "deleted"]), b":1\r\n");
    assert_eq!(conn.cmd(&["SET", "overwritten", "a string"]), b"+OK\r\n");
    // Once, under the whole suite, a SAVE here outlasted the connection's 30 s read timeout (its reply
    // then showed up as INFO's): allow more, and say how long it took if it fails.
    let saving = Instant::now();
    conn.set_timeout(Duration::from_secs(120));
    assert_eq!(show(&conn.cmd(&["SAVE"])), "+OK⏎", "SAVE after {:?}", saving.elapsed());
    if saving.elapsed() > Duration::from_secs(5) {
        eprintln!("slow SAVE: {:?}", saving.elapsed());
    }
    wait_for_parts(&mut conn, kept, Duration::from_secs(20));
    assert_eq!(conn.cmd(&["XLEN", "kept"]), b":3000\r\n");
    conn.cmd(&["FLUSHALL"]);
    assert_eq!(collection_parts(&mut conn), 0);
}

#[test]
fn large_stream_survives_kill_9_under_fsync_always() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = TestServer::start_in(dir.path(), &["--fsync", "always"]);
    let mut conn = server.connect();
    let (mut lines, ids) = xadds("s", 5_000, 5);
    lines.push("XGROUP CREATE s g 0".into());
    lines.push("XREADGROUP GROUP g alice COUNT 700 STREAMS s >".into());
    lines.push(format!("XACK s g {} {}", ids[3], ids[4]));
    lines.push(format!("XDEL s {} {}", ids[2_500], ids[2_501]));
    lines.push("XTRIM s MAXLEN 4321".into());
    pipeline(&mut conn, &lines);
    let queries: Vec<Vec<&str>> = vec![
        vec!["XLEN", "s"],
        vec!["XINFO", "STREAM", "s"],
        vec!["XRANGE", "s", "-", "+", "COUNT", "3"],
        vec!["XREVRANGE", "s", "+", "-", "COUNT", "3"],
        vec!["XRANGE", "s", &ids[2_498], &ids[2_503]],
        vec!["XPENDING", "s", "g"],
        vec!["XINFO", "GROUPS", "s"],
    ];
    let before: Vec<Vec<u8>> = queries.iter().map(|q| conn.cmd(q)).collect();
    assert_eq!(before[0], b":4321\r\n");
    server.kill9();
    let server = TestServer::start_in(dir.path(), &[]);
    let mut conn = server.connect();
    for (query, expected) in queries.iter().zip(&before) {
        assert_eq!(show(&conn.cmd(query)), show(expected), "{query:?} after kill -9");
    }
}

#[test]
fn blocking_reads_wake_up_on_a_large_stream() {
    let velo = TestServer::start();
    let mut conn = velo.connect();
    fill(&mut conn, "big", 2_000);
    conn.cmd(&["XGROUP", "CREATE", "big", "g", "$"]);
    let mut reader = velo.connect();
    let mut group_reader = velo.connect();
    reader.send(&command(&[b"XREAD", b"BLOCK", b"0", b"STREAMS", b"big", b"$"]));
    group_reader.send(&command(&[b"XREADGROUP", b"GROUP", b"g", b"c", b"BLOCK", b"0", b"STREAMS", b"big", b">"]));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(conn.cmd(&["XADD", "big", "99999999-0", "late", "entry"]), b"$10\r\n99999999-0\r\n");
    let expected = b"*1\r\n*2\r\n$3\r\nbig\r\n*1\r\n*2\r\n$10\r\n99999999-0\r\n*2\r\n$4\r\nlate\r\n$5\r\nentry\r\n";
    assert_eq!(show(&reader.read_reply()), show(expected));
    assert_eq!(show(&group_reader.read_reply()), show(expected));
    assert_eq!(conn.cmd(&["XLEN", "big"]), b":2001\r\n");
}
