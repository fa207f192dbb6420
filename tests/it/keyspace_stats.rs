//! INFO stats `keyspace_hits`/`keyspace_misses` against redis-server: the same commands on both, the
//! two counters compared after every command (so a difference names its command).

use crate::support::resp::{command, show};
use crate::support::{Conn, RedisServer, TestServer};

/// `keyspace_hits` and `keyspace_misses` of INFO stats.
fn counters(conn: &mut Conn) -> (u64, u64) {
    let info = String::from_utf8_lossy(&conn.cmd(&["INFO", "stats"])).into_owned();
    let field = |name: &str| {
        info.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("INFO stats has no {name}"))
    };
    (field("keyspace_hits:"), field("keyspace_misses:"))
}

const SCRIPT: &[&str] = &[
    // Setup: writes look keys up for writing, which Redis does not count.
    "SET s hello",
    "RPUSH l c a b",
    "SADD st a b c",
    "SADD st2 b",
    "ZADD z 1 a 2 b",
    "HSET h f v g w",
    "XADD x 1-1 f v",
    "PFADD hl a b",
    "SETBIT bm 3 1",
    "GEOADD g 13.361389 38.115556 p1 15.087269 37.502669 p2",
    "SET w_a 3",
    "INCR counter",
    "APPEND s2 x",
    "LPUSH l2 x",
    "DEL nothing",
    // Reads.
    "GET s",
    "GET missing",
    "MGET s missing s",
    "EXISTS s missing",
    "TYPE s",
    "TYPE missing",
    "STRLEN s",
    "GETRANGE s 0 1",
    "SUBSTR missing 0 1",
    "LRANGE l 0 -1",
    "LRANGE missing 0 -1",
    "LLEN l",
    "LINDEX l 0",
    "LPOS l a",
    "SMEMBERS st",
    "SISMEMBER st a",
    "SMISMEMBER st a x",
    "SCARD missing",
    "SRANDMEMBER st",
    "SINTER st missing",
    "SINTER st st2",
    "SUNION st l",
    "SDIFF missing st",
    "SINTERCARD 2 st missing",
    "SUNIONSTORE d st missing",
    "SDIFFSTORE d st st2",
    "ZRANGE z 0 -1",
    "ZSCORE z a",
    "ZMSCORE z a x",
    "ZRANK z a",
    "ZCOUNT z 0 10",
    "ZCARD missing",
    "ZRANDMEMBER z",
    "ZUNIONSTORE zd 2 z missing",
    "ZINTER 2 z st",
    "ZDIFF 2 z missing",
    "ZRANGESTORE zr z 0 -1",
    "ZRANGESTORE zr missing 0 -1",
    "HGET h f",
    "HGETALL missing",
    "HMGET h f x",
    "HEXISTS h f",
    "HLEN h",
    "HRANDFIELD h",
    "HSTRLEN h f",
    "XRANGE x - +",
    "XLEN missing",
    "XREAD STREAMS x missing 0 0",
    "XINFO STREAM x",
    "PFCOUNT hl",
    "PFCOUNT hl missing",
    "PFCOUNT s",
    "PFMERGE hl2 hl missing",
    "BITCOUNT bm",
    "GETBIT bm 3",
    "BITPOS bm 1",
    "BITFIELD bm GET u8 0",
    "BITFIELD bm INCRBY u8 0 1",
    "BITFIELD_RO bm GET u8 0",
    "BITOP OR bd bm missing",
    "GEOPOS g p1 nope",
    "GEODIST g p1 p2",
    "GEOHASH missing p1",
    "GEOSEARCH g FROMMEMBER p1 BYRADIUS 300 km",
    "GEOSEARCHSTORE gs g FROMMEMBER p1 BYRADIUS 300 km",
    "GEORADIUS g 15 37 200 km",
    "OBJECT ENCODING s",
    "OBJECT ENCODING missing",
    "OBJECT REFCOUNT s",
    "MEMORY USAGE s",
    "MEMORY USAGE missing",
    "DUMP s",
    "DUMP missing",
    "TTL s",
    "PTTL missing",
    "EXPIRETIME s",
    "TOUCH s missing",
    "SORT l ALPHA",
    "SORT l BY w_* GET # GET w_*",
    "SORT missing",
    "SORT_RO l ALPHA",
    "SET s v GET",
    "SET s v",
    "GETSET s w",
    "GETDEL missing",
    "GETEX s",
    "COPY s s3",
    "COPY missing s4",
    "RENAME s3 s5",
    "LCS s s5",
    "RANDOMKEY",
    "DBSIZE",
    "SCAN 0",
    "KEYS *",
    "GET l",
    "LRANGE s 0 -1",
    "XREVRANGE x + -",
    "LMOVE l l3 LEFT RIGHT",
    "SMOVE st st2 a",
    "HINCRBY h n 1",
    "ZINCRBY z 1 a",
    "MIGRATE 127.0.0.1 1 missing 0 10",
    "EVAL \"return redis.call('GET', KEYS[1])\" 1 s",
    "EVAL \"return redis.call('EXISTS', KEYS[1])\" 1 missing",
    "MULTI",
    "GET s",
    "HGET h missing",
    "EXEC",
];

#[test]
fn keyspace_hits_and_misses_match_redis() {
    let redis = RedisServer::start();
    let velo = TestServer::start();
    let mut conns = [Conn::connect(redis.port), velo.connect()];
    for conn in conns.iter_mut() {
        assert_eq!(conn.cmd(&["CONFIG", "RESETSTAT"]), b"+OK\r\n");
    }
    let mut in_multi = false;
    for line in SCRIPT {
        let args = velo::resp::decode::split_args(line.as_bytes()).expect("script line parses");
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_ref()).collect();
        in_multi = (in_multi || *line == "MULTI") && *line != "EXEC";
        let mut replies = Vec::new();
        let mut figures = Vec::new();
        for conn in conns.iter_mut() {
            conn.send(&command(&args));
            replies.push(conn.read_reply());
            // Inside MULTI, INFO would be queued: compare after EXEC.
            figures.push(if in_multi { (0, 0) } else { counters(conn) });
        }
        assert_eq!(
            figures[0],
            figures[1],
            "after `{line}` (hits, misses): redis {:?}, velo {:?}; replies {} / {}",
            figures[0],
            figures[1],
            show(&replies[0]),
            show(&replies[1])
        );
    }
    let (hits, misses) = counters(&mut conns[1]);
    assert!(hits > 50 && misses > 30, "the script exercised the counters ({hits} hits, {misses} misses)");
}
