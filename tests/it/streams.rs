//! Streams: differential scripts against redis-server 7.0 for every stream command and its errors (RESP2
//! and RESP3), replies carrying clocks compared with those fields masked, auto-generated IDs checked for
//! format and monotonicity, BLOCK's interim error, and streams with their groups surviving `kill -9`.

use crate::support::differential::{compare, servers};
use crate::support::resp::{encode, parse, show, Value};
use crate::support::{Conn, TestServer};

/// Fields whose values are clocks, masked before comparing.
const MASKED_KEYS: &[&[u8]] = &[b"idle", b"seen-time"];

/// Replaces clock values in a parsed reply: values after [`MASKED_KEYS`] in maps (RESP3 maps and RESP2 flat
/// key/value arrays), the idle time of XPENDING's `[id, consumer, idle, count]` entries and the delivery
/// time of XINFO STREAM FULL's `[id, consumer, time, count]` / `[id, time, count]` entries.
pub(crate) fn mask(value: &mut Value) {
    let Value::Agg(_, Some(items)) = value else { return };
    let is_int = |v: &Value| matches!(v, Value::Line(b':', _));
    let is_blob = |v: &Value| matches!(v, Value::Blob(_, Some(_)));
    if items.len() == 4 && is_blob(&items[0]) && is_blob(&items[1]) && is_int(&items[2]) && is_int(&items[3]) {
        items[2] = Value::Line(b':', b"T".to_vec());
    } else if items.len() == 3 && is_blob(&items[0]) && is_int(&items[1]) && is_int(&items[2]) {
        items[1] = Value::Line(b':', b"T".to_vec());
    }
    for i in 0..items.len() {
        let masked = matches!(&items[i], Value::Blob(_, Some(key)) if MASKED_KEYS.contains(&key.as_slice()));
        if masked && i + 1 < items.len() && is_int(&items[i + 1]) {
            items[i + 1] = Value::Line(b':', b"T".to_vec());
        }
    }
    items.iter_mut().for_each(mask);
}

/// Runs `setup` then `queries` on both servers (RESP2 and RESP3); setup replies must match exactly, query
/// replies after [`mask`].
fn compare_masked(name: &str, setup: &[&str], queries: &[&str]) {
    let (redis, velo) = servers();
    for resp3 in [false, true] {
        let mut outputs: Vec<Vec<Vec<u8>>> = Vec::new();
        for port in [redis.port, velo.port] {
            let mut conn = Conn::connect(port);
            assert_eq!(conn.cmd(&["FLUSHALL"]), b"+OK\r\n");
            if resp3 {
                conn.cmd(&["HELLO", "3"]);
            }
            let mut out = Vec::new();
            for line in setup.iter().chain(queries) {
                let args = velo::resp::decode::split_args(line.as_bytes()).expect("script line parses");
                let args: Vec<&[u8]> = args.iter().map(|a| a.as_ref()).collect();
                let reply = conn.cmd_bytes(&args);
                let (mut value, _) = parse(&reply).expect("reply parses");
                mask(&mut value);
                let mut bytes = Vec::new();
                encode(&value, &mut bytes);
                out.push(bytes);
            }
            outputs.push(out);
        }
        for (i, line) in setup.iter().chain(queries).enumerate() {
            assert!(
                outputs[0][i] == outputs[1][i],
                "{name} ({}), `{line}`:\n  redis: {}\n  velo:  {}",
                if resp3 { "RESP3" } else { "RESP2" },
                show(&outputs[0][i]),
                show(&outputs[1][i])
            );
        }
    }
}

#[test]
fn stream_basics_and_ranges() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "xadd xlen xrange xrevrange",
        &[
            "XLEN s",
            "XRANGE s - +",
            "XADD s 1-1 a 1 b 2",
            "XADD s 1-1 a 1",
            "XADD s 1-0 a 1",
            "XADD s 0-0 a 1",
            "XADD s 0 a 1",
            "XADD s 1-* c 3",
            "XADD s 1 c 3",
            "XADD s 2 d 4",
            "XADD s 5-* e 5",
            "XADD s 5-* f 6",
            "XADD s 4-* g 7",
            "XADD s \" 7\" h 8",
            "XADD s +8 i 9",
            "XADD s 9-abc j 1",
            "XADD s -1 j 1",
            "XADD s 9-- j 1",
            "XADD s 9--05 j 1",
            "XADD s 10 odd",
            "XADD s 10 a b c",
            "XADD s",
            "XADD s 10",
            "XLEN s",
            "TYPE s",
            "OBJECT ENCODING s",
            "XRANGE s - +",
            "XRANGE s - + COUNT 2",
            "XRANGE s - + COUNT 0",
            "XRANGE s - + COUNT -3",
            "XRANGE s - + COUNT 1 COUNT 3",
            "XRANGE s - + COUNT",
            "XRANGE s - + FOO 1",
            "XRANGE s - + COUNT x",
            "XRANGE s 1-2 5",
            "XRANGE s (1-1 (5-1",
            "XRANGE s (1 +",
            "XRANGE s 5 5",
            "XRANGE s + -",
            "XRANGE s (- +",
            "XRANGE s - (+",
            "XRANGE s ( +",
            "XRANGE s (18446744073709551615-18446744073709551615 +",
            "XRANGE s - (0-0",
            "XRANGE s abc +",
            "XRANGE s - 18446744073709551616",
            "XREVRANGE s + -",
            "XREVRANGE s + - COUNT 2",
            "XREVRANGE s (5-1 (1-1",
            "XREVRANGE s 5 1",
            "XREVRANGE s - +",
            "XREVRANGE s + - COUNT 0",
            "XRANGE missing - +",
            "XRANGE missing - + COUNT 0",
            "XREVRANGE missing + -",
            "XADD empty NOMKSTREAM * a 1",
            "EXISTS empty",
            "XADD s NOMKSTREAM 20-1 a 1",
            "XADD s NOMKSTREAM NOMKSTREAM 20-2 a 1",
            "SET str x",
            "XADD str * a 1",
            "XADD str 0-0 a 1",
            "XLEN str",
            "XRANGE str - +",
            "XREVRANGE str + -",
            "XRANGE str (+ +",
            "DEL s",
            "XADD s 18446744073709551615-18446744073709551615 a 1",
            "XADD s * a 1",
            "XADD s 18446744073709551615-* a 1",
            "XADD s 1-1 a 1",
            "XLEN s",
            "XADD t 18446744073709551615-18446744073709551614 a 1",
            "XADD t 18446744073709551615-* a 1",
            "XADD t 18446744073709551615-* a 1",
            "XADD u 5-18446744073709551615 a 1",
            "XADD u 5-* a 1",
            "XRANGE u - +",
        ],
    );
}

#[test]
fn stream_trimming() {
    let (redis, velo) = servers();
    let mut script: Vec<String> = Vec::new();
    for i in 1..=250 {
        script.push(format!("XADD s {i}-1 f v{i}"));
    }
    for line in [
        "XTRIM s MAXLEN ~ 120",
        "XLEN s",
        "XTRIM s MAXLEN ~ 0 LIMIT 50",
        "XTRIM s MAXLEN ~ 0 LIMIT 100",
        "XLEN s",
        "XTRIM s MAXLEN = 40",
        "XRANGE s - + COUNT 1",
        "XTRIM s MINID 230",
        "XRANGE s - + COUNT 1",
        "XTRIM s MINID ~ 240",
        "XTRIM s MINID = 240-1",
        "XLEN s",
        "XTRIM s MAXLEN 0",
        "XLEN s",
        "EXISTS s",
        "XADD s 300-1 a 1",
        "XADD s MAXLEN 1 301-1 a 1",
        "XADD s MAXLEN = 1 302-1 a 1",
        "XADD s MAXLEN ~ 1 303-1 a 1",
        "XADD s MINID 303 304-1 a 1",
        "XADD s MINID ~ 304 LIMIT 10 305-1 a 1",
        "XRANGE s - +",
        "XADD s MAXLEN 5 MAXLEN 6 * a b",
        "XADD s MAXLEN 5 MINID 3 * a b",
        "XADD s MINID 5 MAXLEN 3 * a b",
        "XADD s LIMIT 5 * a b",
        "XADD s MAXLEN 5 LIMIT 5 * a b",
        "XADD s MAXLEN ~ 5 LIMIT -1 * a b",
        "XADD s MAXLEN ~ 5 LIMIT x * a b",
        "XADD s MAXLEN -1 * a b",
        "XADD s MAXLEN x * a b",
        "XADD s MINID - 400-1 a b",
        "XADD s MINID ~ + 400-1 a b",
        "XADD s MINID bad 400-1 a b",
        "XADD s MAXLEN ~ * a b",
        "XADD s NOMKSTREAM MAXLEN 5",
        "XTRIM s MAXLEN 5 foo",
        "XTRIM s LIMIT 5",
        "XTRIM s MAXLEN 5 LIMIT 5",
        "XTRIM s MAXLEN ~",
        "XTRIM s MAXLEN -1",
        "XTRIM s MINID -",
        "XTRIM s FOO 1",
        "XTRIM s NOMKSTREAM 1",
        "XTRIM missing MAXLEN 0",
        "SET str x",
        "XTRIM str MAXLEN 0",
        "XTRIM str MAXLEN x",
    ] {
        script.push(line.to_string());
    }
    // A long approximate trim: whole nodes only, the default limit of 10000 entries.
    for i in 1..=450 {
        script.push(format!("XADD big {i}-1 f v"));
    }
    script.push("XADD big MAXLEN ~ 10 451-1 f v".into());
    script.push("XLEN big".into());
    script.push("XDEL big 430-1 440-1".into());
    script.push("XTRIM big MINID ~ 445".into());
    script.push("XTRIM big MINID 445".into());
    script.push("XRANGE big - + COUNT 2".into());
    // A node is judged by the last entry placed in it, even deleted; a node emptied by trimming stays.
    for line in [
        "XADD n 1-1 a 1",
        "XADD n 2-1 a 1",
        "XADD n 3-1 a 1",
        "XDEL n 3-1",
        "XTRIM n MINID ~ 3",
        "XTRIM n MINID 3",
        "XLEN n",
        "XADD n 4-1 a 1",
        "XTRIM n MINID ~ 4",
        "XTRIM n MINID ~ 5",
        "XLEN n",
    ] {
        script.push(line.into());
    }
    let script: Vec<&str> = script.iter().map(String::as_str).collect();
    compare(&redis, &velo, "trimming", &script);
}

#[test]
fn stream_xdel_xsetid_and_info() {
    compare_masked(
        "xdel xsetid xinfo stream",
        &[
            "XADD s 1-1 a 1",
            "XADD s 2-1 b 2",
            "XADD s 3-1 c 3",
            "XDEL s 2-1 9-9",
            "XDEL s 2-1",
            "XDEL s bad",
            "XDEL s 1-1 bad",
            "XDEL s -",
            "XDEL s 3",
            "XLEN s",
            "XDEL missing 1-1",
            "XDEL missing bad",
            "SET str x",
            "XDEL str 1-1",
            "XSETID s 1-1",
            "XSETID s 3-0",
            "XSETID s 5-0",
            "XSETID s 6-0 ENTRIESADDED 0",
            "XSETID s 6-0 ENTRIESADDED -1",
            "XSETID s 6-0 ENTRIESADDED x",
            "XSETID s 6-0 MAXDELETEDID 7-0",
            "XSETID s 6-0 MAXDELETEDID 1-0",
            "XSETID s 6-0 MAXDELETEDID bad",
            "XSETID s 6-0 ENTRIESADDED 10 MAXDELETEDID 3-0",
            "XSETID s 6-0 FOO",
            "XSETID s 6-0 ENTRIESADDED",
            "XSETID s -",
            "XSETID missing 1-1",
            "XSETID str 1-1",
            "XADD s 1000-0 a 1",
            "XADD s 6-0 a 1",
            "XADD s 6-* a 1",
            "XDEL s 6-1",
            "XADD e 1-1 a 1",
            "XDEL e 1-1",
            "XSETID e 0-5",
            "XSETID e 1-1",
            "XADD d 1-1 a 1",
            "XADD d 2-1 a 1",
            "XDEL d 2-1",
            "XSETID d 1-5",
            "XSETID d 1-0",
            "XSETID d 1-2 MAXDELETEDID 1-1",
            "XINFO STREAM d",
            "XADD e 1-* a 1",
        ],
        &[
            "XINFO STREAM s",
            "XINFO STREAM e",
            "XINFO STREAM s FULL",
            "XINFO STREAM s FULL COUNT 1",
            "XINFO STREAM s FULL COUNT 0",
            "XINFO STREAM s FULL COUNT -1",
            "XINFO STREAM s FULL COUNT x",
            "XINFO STREAM s FULL COUNT",
            "XINFO STREAM s FOO",
            "XINFO STREAM s FULL FOO 1",
            "XINFO STREAM missing",
            "XINFO STREAM str",
            "XINFO GROUPS missing",
            "XINFO GROUPS str",
            "XINFO GROUPS s",
            "XINFO CONSUMERS s g",
            "XINFO FOO s",
            "XINFO HELP",
            "XINFO HELP x",
            "XGROUP HELP",
        ],
    );
}

#[test]
fn stream_xread() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "xread",
        &[
            "XREAD STREAMS s 0",
            "XADD s 1-1 a 1",
            "XADD s 2-1 b 2",
            "XADD t 1-5 c 3",
            "XREAD STREAMS s 0",
            "XREAD STREAMS s t 0 0",
            "XREAD STREAMS s t 1-1 0",
            "XREAD STREAMS s t 2-1 1-5",
            "XREAD STREAMS s missing 0 0",
            "XREAD COUNT 1 STREAMS s t 0 0",
            "XREAD COUNT 0 STREAMS s 0",
            "XREAD COUNT -5 STREAMS s 0",
            "XREAD COUNT x STREAMS s 0",
            "XREAD STREAMS s $",
            "XREAD STREAMS s 1",
            "XREAD STREAMS s 18446744073709551615-18446744073709551615",
            "XREAD BLOCK 0 STREAMS s 0",
            "XREAD BLOCK 100 COUNT 1 STREAMS s 1-1",
            "XREAD BLOCK -1 STREAMS s 0",
            "XREAD BLOCK x STREAMS s 0",
            "XREAD STREAMS s",
            "XREAD STREAMS s t 0",
            "XREAD STREAMS s >",
            "XREAD STREAMS s -",
            "XREAD STREAMS s bad",
            "XREAD NOACK STREAMS s 0",
            "XREAD GROUP g c STREAMS s 0",
            "XREAD FOO STREAMS s 0",
            "XREAD COUNT 1 s 0",
            "XREAD COUNT 1 BLOCK",
            "SET str x",
            "XREAD STREAMS str 0",
            "XREAD STREAMS s str 0 0",
            "XREAD STREAMS s s 0 1-1",
        ],
    );
}

#[test]
fn stream_groups() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "xgroup and xreadgroup",
        &[
            "XGROUP CREATE s g $",
            "XGROUP DESTROY s g",
            "XGROUP SETID s g 0",
            "XGROUP CREATECONSUMER s g c",
            "XGROUP DELCONSUMER s g c",
            "XGROUP CREATE s g $ MKSTREAM",
            "EXISTS s",
            "XLEN s",
            "XGROUP CREATE s g $",
            "XGROUP CREATE s g2 0 FOO",
            "XGROUP CREATE s g2 0 ENTRIESREAD",
            "XGROUP CREATE s g2 0 ENTRIESREAD -2",
            "XGROUP CREATE s g2 0 ENTRIESREAD x",
            "XGROUP CREATE s g2 0 ENTRIESREAD 5 MKSTREAM MKSTREAM",
            "XGROUP CREATE s g2 bad",
            "XGROUP CREATE s g2 -",
            "XGROUP CREATE m g2 bad MKSTREAM",
            "EXISTS m",
            "XGROUP SETID s nog 0",
            "XGROUP SETID s g 0 MKSTREAM",
            "XGROUP SETID s g bad",
            "XGROUP SETID s g (1",
            "XGROUP SETID s g 0 ENTRIESREAD 1 ENTRIESREAD 2",
            "XGROUP SETID s g 0 ENTRIESREAD",
            "XGROUP CREATECONSUMER s nog c",
            "XGROUP DELCONSUMER s nog c",
            "XGROUP DELCONSUMER s g c",
            "XGROUP FOO s g",
            "XGROUP CREATE s",
            "XGROUP DESTROY s",
            "SET str x",
            "XGROUP CREATE str g $",
            "XGROUP CREATE str g $ MKSTREAM",
            "XGROUP DESTROY str g",
            "XGROUP SETID str g 0",
            "XADD s 1-1 a 1",
            "XADD s 2-1 b 2",
            "XADD s 3-1 c 3",
            "XGROUP CREATE s g0 0",
            "XGROUP CREATE s g1 1-1",
            "XGROUP CREATE s g9 0-5",
            "XGROUP CREATE s ge 0 ENTRIESREAD 2",
            "XINFO GROUPS s",
            "XREADGROUP GROUP nog c STREAMS s >",
            "XREADGROUP GROUP g0 c STREAMS missing >",
            "XREADGROUP GROUP g0 c STREAMS str >",
            "XREADGROUP GROUP g0 c STREAMS s $",
            "XREADGROUP GROUP g0 c STREAMS s bad",
            "XREADGROUP GROUP g0 c STREAMS s (1",
            "XREADGROUP GROUP g0 c STREAMS s t >",
            "XREADGROUP GROUP g0 c FOO STREAMS s >",
            "XREADGROUP COUNT 1 NOACK STREAMS s >",
            "XREADGROUP GROUP g0 c COUNT x STREAMS s >",
            "XREADGROUP GROUP g0 c BLOCK -1 STREAMS s >",
            "XREADGROUP GROUP g0 c BLOCK x STREAMS s >",
            "XREADGROUP GROUP g0 c COUNT 1 STREAMS s >",
            "XREADGROUP GROUP g0 c COUNT -1 STREAMS s >",
            "XREADGROUP GROUP g0 c STREAMS s >",
            "XREADGROUP GROUP g0 c2 STREAMS s >",
            "XREADGROUP GROUP g0 c STREAMS s 0",
            "XREADGROUP GROUP g0 c COUNT 1 STREAMS s 1-1",
            "XREADGROUP GROUP g0 c2 STREAMS s 0",
            "XREADGROUP GROUP g1 c NOACK STREAMS s >",
            "XREADGROUP GROUP g1 c STREAMS s 0",
            "XREADGROUP GROUP g9 c BLOCK 0 STREAMS s s > >",
            "XREADGROUP GROUP g9 c STREAMS s s 0 0",
            "XINFO GROUPS s",
            "XDEL s 2-1",
            "XREADGROUP GROUP g0 c STREAMS s 0",
            "XINFO GROUPS s",
            "XADD s 4-1 d 4",
            "XREADGROUP GROUP ge c STREAMS s >",
            "XINFO GROUPS s",
            "XGROUP SETID s g0 0 ENTRIESREAD 3",
            "XGROUP SETID s g1 $",
            "XGROUP SETID s g9 -",
            "XINFO GROUPS s",
            "XREADGROUP GROUP g0 other COUNT 2 STREAMS s >",
            "XPENDING s g0",
            "XGROUP CREATECONSUMER s g0 c3",
            "XGROUP CREATECONSUMER s g0 c3",
            "XGROUP DELCONSUMER s g0 c",
            "XGROUP DELCONSUMER s g0 c",
            "XPENDING s g0",
            "XGROUP DESTROY s g0",
            "XGROUP DESTROY s g0",
            "XINFO GROUPS s",
            "XADD e 1-1 a 1",
            "XGROUP CREATE e g 0",
            "XADD e 2-1 a 1",
            "XADD e 3-1 a 1",
            "XDEL e 3-1",
            "XINFO GROUPS e",
            "XREADGROUP GROUP g c COUNT 1 STREAMS e >",
            "XINFO GROUPS e",
            "XREADGROUP GROUP g c STREAMS e >",
            "XINFO GROUPS e",
            "XADD e 4-1 a 1",
            "XREADGROUP GROUP g c STREAMS e >",
            "XINFO GROUPS e",
        ],
    );
}

#[test]
fn stream_group_counters_and_keys() {
    let (redis, velo) = servers();
    let mut script: Vec<String> = Vec::new();
    for i in 1..=12 {
        script.push(format!("XADD s {i}-1 f v{i}"));
    }
    for line in [
        "XGROUP CREATE s early 0",
        "XGROUP CREATE s mid 6-1",
        "XGROUP CREATE s last $",
        "XGROUP CREATE s future 99-0",
        "XGROUP CREATE s counted 0 ENTRIESREAD 0",
        "XINFO GROUPS s",
        "XREADGROUP GROUP counted c COUNT 3 STREAMS s >",
        "XREADGROUP GROUP mid c COUNT 1 STREAMS s >",
        "XINFO GROUPS s",
        "XTRIM s MAXLEN 8",
        "XINFO GROUPS s",
        "XREADGROUP GROUP early c COUNT 2 STREAMS s >",
        "XINFO GROUPS s",
        "XDEL s 12-1",
        "XINFO GROUPS s",
        "XADD s 13-1 f v",
        "XREADGROUP GROUP counted c STREAMS s >",
        "XINFO GROUPS s",
        "XGROUP SETID s counted 0",
        "XREADGROUP GROUP counted other COUNT 2 STREAMS s >",
        "XPENDING s counted",
        "XREADGROUP GROUP counted other STREAMS s 0",
        "XGROUP SETID s counted +",
        "XGROUP SETID s counted 5",
        "XINFO GROUPS s",
        "XCLAIM s early c 0 5-1 LASTID 50-0 JUSTID",
        "XINFO GROUPS s",
        "XSETID s 60-0",
        "XINFO GROUPS s",
        "XTRIM s MAXLEN 0",
        "XINFO GROUPS s",
        "XADD s 61-1 f v",
        "XINFO GROUPS s",
        "XREADGROUP GROUP last c STREAMS s >",
        "XINFO GROUPS s",
        // Streams as keys.
        "TYPE s",
        "OBJECT ENCODING s",
        "COPY s s2",
        "XRANGE s2 - +",
        "XINFO GROUPS s2",
        "RENAME s2 s3",
        "XLEN s3",
        "EXISTS s2 s3",
        "~KEYS *",
        "EXPIRE s3 100",
        "TTL s3",
        "XADD s3 62-1 a b",
        "TTL s3",
        "DEL s3",
        "XLEN s3",
        "SET plain x",
        "SCAN 0 TYPE stream",
        "SCAN 0 TYPE string",
        "XADD bin 1-1 \"\\x00\\xff\" \"\" \"\" \"x y\"",
        "XRANGE bin - +",
        "XADD bin 2-1 a 1 a 2 a 3",
        "XREVRANGE bin + - COUNT 1",
    ] {
        script.push(line.to_string());
    }
    let script: Vec<&str> = script.iter().map(String::as_str).collect();
    compare(&redis, &velo, "group counters", &script);
}

#[test]
fn stream_ack_pending_claim() {
    compare_masked(
        "xack xpending xclaim xautoclaim",
        &[
            "XADD s 1-1 a 1",
            "XADD s 2-1 b 2",
            "XADD s 3-1 c 3",
            "XADD s 4-1 d 4",
            "XADD s 5-1 e 5",
            "XGROUP CREATE s g 0",
            "XPENDING s g",
            "XPENDING s nog",
            "XPENDING missing g",
            "SET str x",
            "XPENDING str g",
            "XREADGROUP GROUP g alice COUNT 2 STREAMS s >",
            "XREADGROUP GROUP g bob COUNT 2 STREAMS s >",
            "XREADGROUP GROUP g carol STREAMS s >",
            "XPENDING s g",
            "XPENDING s g - + 10",
            "XPENDING s g - + 10 bob",
            "XPENDING s g - + 10 nobody",
            "XPENDING s g (1-1 (5-1 10",
            "XPENDING s g - + 2",
            "XPENDING s g - + 0",
            "XPENDING s g - + -1",
            "XPENDING s g + - 10",
            "XPENDING s g - + x",
            "XPENDING s g bad + 10",
            "XPENDING s g - bad 10",
            "XPENDING s g (+ + 10",
            "XPENDING s g - +",
            "XPENDING s g - + 10 bob extra",
            "XPENDING s g IDLE 0 - + 10",
            "XPENDING s g IDLE 100000 - + 10",
            "XPENDING s g IDLE x - + 10",
            "XPENDING s g IDLE 10 - +",
            "XPENDING s g IDLE 10 - + 10 bob extra",
            "XPENDING s nog - + 10",
            "XPENDING s g (18446744073709551615-18446744073709551615 + 10",
            "XACK s g 1-1 9-9",
            "XACK s g 1-1",
            "XACK s g bad",
            "XACK s g 2-1 bad",
            "XACK s nog bad",
            "XACK missing g bad",
            "XACK str g 1-1",
            "XPENDING s g",
            "XCLAIM s g dave 0 2-1 3-1",
            "XPENDING s g - + 10",
            "XCLAIM s g dave 100000 4-1",
            "XCLAIM s g dave 0 4-1 JUSTID",
            "XPENDING s g - + 10",
            "XCLAIM s g dave 0 4-1 RETRYCOUNT 7",
            "XCLAIM s g erin 0 4-1 IDLE 500000 JUSTID",
            "XPENDING s g IDLE 400000 - + 10",
            "XCLAIM s g erin 0 5-1 TIME 1000",
            "XPENDING s g IDLE 400000 - + 10",
            "XCLAIM s g erin 0 5-1 TIME -5 RETRYCOUNT 1",
            "XPENDING s g IDLE 400000 - + 10",
            "XCLAIM s g dave 0 1-1",
            "XCLAIM s g dave 0 1-1 FORCE",
            "XCLAIM s g dave 0 1-1 FORCE",
            "XCLAIM s g frank 0 9-9 FORCE",
            "XCLAIM s g dave x 1-1",
            "XCLAIM s g dave -5 1-1 JUSTID",
            "XCLAIM s g dave 0 1-1 IDLE x",
            "XCLAIM s g dave 0 1-1 TIME x",
            "XCLAIM s g dave 0 1-1 RETRYCOUNT x",
            "XCLAIM s g dave 0 1-1 LASTID bad",
            "XCLAIM s g dave 0 1-1 FOO",
            "XCLAIM s g dave 0 1-1 IDLE",
            "XCLAIM s g dave 0 bad",
            "XCLAIM s g dave 0 1-1 LASTID 9-9 JUSTID",
            "XCLAIM s nog dave 0 1-1",
            "XCLAIM missing g dave 0 1-1",
            "XCLAIM str g dave 0 1-1",
            "XDEL s 3-1",
            "XCLAIM s g erin 0 3-1 2-1",
            "XPENDING s g",
            "XREADGROUP GROUP g dave STREAMS s 0",
            "XAUTOCLAIM s g zed 100000 0",
            "XAUTOCLAIM s g zed 0 0 COUNT 1",
            "XAUTOCLAIM s g zed 0 0 COUNT 1 JUSTID",
            "XAUTOCLAIM s g zed 0 (1-1 JUSTID",
            "XAUTOCLAIM s g zed 0 - COUNT 10",
            "XDEL s 4-1",
            "XAUTOCLAIM s g yan 0 0",
            "XAUTOCLAIM s g yan 0 0",
            "XAUTOCLAIM s g yan 0 0 COUNT 0",
            "XAUTOCLAIM s g yan 0 0 COUNT -1",
            "XAUTOCLAIM s g yan 0 0 COUNT x",
            "XAUTOCLAIM s g yan 0 0 COUNT",
            "XAUTOCLAIM s g yan 0 0 FOO",
            "XAUTOCLAIM s g yan x 0",
            "XAUTOCLAIM s g yan 0 bad",
            "XAUTOCLAIM s g yan 0 (18446744073709551615-18446744073709551615",
            "XAUTOCLAIM s nog yan 0 0",
            "XAUTOCLAIM missing g yan 0 0",
            "XAUTOCLAIM str g yan 0 0",
            "XAUTOCLAIM str g yan 0 0 FOO",
            "XPENDING s g",
        ],
        &[
            "XPENDING s g - + 10",
            "XINFO CONSUMERS s g",
            "XINFO CONSUMERS s nog",
            "XINFO CONSUMERS missing g",
            "XINFO GROUPS s",
            "XINFO STREAM s",
            "XINFO STREAM s FULL",
            "XINFO STREAM s FULL COUNT 1",
        ],
    );
}

#[test]
fn stream_autoclaim_many() {
    // More pending entries than COUNT: the cursor, the attempts limit and deleted entries.
    let mut setup: Vec<String> = Vec::new();
    for i in 1..=30 {
        setup.push(format!("XADD s {i}-1 f v"));
    }
    setup.push("XGROUP CREATE s g 0".into());
    setup.push("XREADGROUP GROUP g a STREAMS s >".into());
    for i in (2..=30).step_by(3) {
        setup.push(format!("XDEL s {i}-1"));
    }
    for line in [
        "XAUTOCLAIM s g b 0 0 COUNT 4",
        "XAUTOCLAIM s g b 0 5-1 COUNT 4 JUSTID",
        "XAUTOCLAIM s g b 100000 0 COUNT 1",
        "XAUTOCLAIM s g b 0 0 COUNT 100",
        "XPENDING s g",
    ] {
        setup.push(line.into());
    }
    let setup: Vec<&str> = setup.iter().map(String::as_str).collect();
    compare_masked(
        "xautoclaim cursor",
        &setup,
        &[
            "XINFO CONSUMERS s g",
            "XPENDING s g - + 100",
            "XINFO STREAM s FULL",
            "XINFO STREAM s FULL COUNT 3",
            "XINFO STREAM s FULL COUNT 0",
        ],
    );
}

/// Auto IDs use the clock: checked for format, monotonicity and closeness to now instead of compared.
#[test]
fn stream_auto_ids() {
    let velo = TestServer::start();
    let mut conn = velo.connect();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let mut last = (0u64, 0u64);
    for _ in 0..200 {
        let reply = conn.cmd(&["XADD", "s", "*", "f", "v"]);
        let text = String::from_utf8(reply).unwrap();
        let id = text.trim_end().rsplit("\r\n").next().unwrap().to_string();
        let (ms, seq) = id.split_once('-').expect("ms-seq");
        let id = (ms.parse::<u64>().unwrap(), seq.parse::<u64>().unwrap());
        assert!(id > last, "{id:?} after {last:?}");
        assert!(id.0 >= now && id.0 < now + 60_000, "{id:?} near {now}");
        last = id;
    }
    // After an explicit ID from the future, `*` keeps counting up from it.
    let future = format!("{}-5", now + 10_000_000);
    assert_eq!(conn.cmd(&["XADD", "s", &future, "f", "v"]), format!("${}\r\n{future}\r\n", future.len()).into_bytes());
    let next = format!("{}-6", now + 10_000_000);
    assert_eq!(conn.cmd(&["XADD", "s", "*", "f", "v"]), format!("${}\r\n{next}\r\n", next.len()).into_bytes());
    assert_eq!(conn.cmd(&["XLEN", "s"]), b":202\r\n");
}

/// A stream with its groups, consumers and pending entries survives `kill -9` under `--fsync always`.
#[test]
fn stream_survives_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = TestServer::start_in(dir.path(), &["--fsync", "always"]);
    let mut conn = server.connect();
    for i in 1..=150 {
        conn.cmd(&["XADD", "s", &format!("{i}-1"), "field", &format!("value-{i}")]);
    }
    conn.cmd(&["XDEL", "s", "7-1"]);
    conn.cmd(&["XGROUP", "CREATE", "s", "g", "0"]);
    conn.cmd(&["XGROUP", "CREATE", "s", "h", "$", "ENTRIESREAD", "150"]);
    conn.cmd(&["XREADGROUP", "GROUP", "g", "alice", "COUNT", "10", "STREAMS", "s", ">"]);
    conn.cmd(&["XREADGROUP", "GROUP", "g", "bob", "COUNT", "5", "STREAMS", "s", ">"]);
    conn.cmd(&["XACK", "s", "g", "3-1"]);
    conn.cmd(&["XGROUP", "CREATECONSUMER", "s", "g", "carol"]);
    conn.cmd(&["XADD", "e", "1-1", "a", "b"]);
    conn.cmd(&["XDEL", "e", "1-1"]);
    let queries: &[&[&str]] = &[
        &["XRANGE", "s", "-", "+"],
        &["XINFO", "GROUPS", "s"],
        &["XPENDING", "s", "g"],
        &["XINFO", "STREAM", "s"],
        &["XINFO", "STREAM", "e"],
        &["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", "0"],
    ];
    let before: Vec<Vec<u8>> = queries.iter().map(|q| conn.cmd(q)).collect();
    assert!(show(&before[2]).contains("alice"), "{}", show(&before[2]));
    server.kill9();
    let server = TestServer::start_in(dir.path(), &[]);
    let mut conn = server.connect();
    for (query, expected) in queries.iter().zip(&before) {
        assert_eq!(show(&conn.cmd(query)), show(expected), "{query:?}");
    }
    let consumers = show(&conn.cmd(&["XINFO", "CONSUMERS", "s", "g"]));
    assert!(consumers.contains("alice") && consumers.contains("bob") && consumers.contains("carol"), "{consumers}");
    assert_eq!(conn.cmd(&["TYPE", "e"]), b"+stream\r\n");
}

/// Random stream command sequences with explicit IDs over two keys, seeded (`VELO_DIFF_SEED` to
/// reproduce): both servers must answer identically, clocks masked.
#[test]
fn stream_random_sequences() {
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};
    let base: u64 = crate::support::differential::seed_base(1_764_000_000);
    let keys = ["s", "t"];
    let groups = ["g", "h"];
    let consumers = ["alice", "bob", "carol"];
    for seed in base..base + 3 {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut script: Vec<String> = Vec::new();
        for _ in 0..300 {
            let k = keys[rng.gen_range(0..keys.len())];
            let g = groups[rng.gen_range(0..groups.len())];
            let c = consumers[rng.gen_range(0..consumers.len())];
            let mut id = || {
                let ms: u64 = rng.gen_range(0..40);
                match rng.gen_range(0..4) {
                    0 => format!("{ms}"),
                    1 => format!("{ms}-*"),
                    _ => format!("{ms}-{}", rng.gen_range(0..3)),
                }
            };
            let a = id();
            let b = id();
            let n: i64 = rng.gen_range(-1..12);
            let approx = if rng.gen_bool(0.3) { "~ " } else { "" };
            let line = match rng.gen_range(0..38) {
                0..=5 => format!("XADD {k} {a} f {n} x y"),
                6 => format!("XADD {k} MAXLEN {approx}{} {a} f v", n.max(0)),
                7 => format!("XDEL {k} {} {}", a.replace("-*", ""), b.replace("-*", "")),
                8 => format!("XTRIM {k} MAXLEN {approx}{n}"),
                9 => format!("XTRIM {k} MINID {approx}{}", a.replace("-*", "")),
                10 => format!("XRANGE {k} {} + COUNT {n}", a.replace("-*", "")),
                11 => format!("XREVRANGE {k} + ({} COUNT {n}", b.replace("-*", "")),
                12 => format!("XREAD COUNT {n} STREAMS s t {} {}", a.replace("-*", ""), b.replace("-*", "")),
                13 => format!(
                    "XGROUP CREATE {k} {g} {} MKSTREAM",
                    if n % 2 == 0 { "$".into() } else { a.replace("-*", "") }
                ),
                14 => format!("XGROUP SETID {k} {g} {}", b.replace("-*", "")),
                15 => format!("XGROUP DESTROY {k} {g}"),
                16 => format!("XGROUP CREATECONSUMER {k} {g} {c}"),
                17 => format!("XGROUP DELCONSUMER {k} {g} {c}"),
                18 | 19 => format!("XREADGROUP GROUP {g} {c} COUNT {n} STREAMS {k} >"),
                20 => format!("XREADGROUP GROUP {g} {c} NOACK STREAMS {k} >"),
                21 => format!("XREADGROUP GROUP {g} {c} STREAMS {k} {}", a.replace("-*", "")),
                22 => format!("XACK {k} {g} {} {}", a.replace("-*", ""), b.replace("-*", "")),
                23 => format!("XPENDING {k} {g}"),
                24 => format!("XPENDING {k} {g} - + {n} {c}"),
                25 => format!("XCLAIM {k} {g} {c} 0 {} {} JUSTID", a.replace("-*", ""), b.replace("-*", "")),
                26 => format!("XAUTOCLAIM {k} {g} {c} 0 {} COUNT {}", a.replace("-*", ""), n.max(1)),
                27 => format!("XINFO GROUPS {k}"),
                28 => format!("XINFO STREAM {k}"),
                30 => format!("XCLAIM {k} {g} {c} 0 {} FORCE RETRYCOUNT {n}", a.replace("-*", "")),
                31 => format!("XCLAIM {k} {g} {c} 0 {} LASTID {}", a.replace("-*", ""), b.replace("-*", "")),
                32 => format!("XGROUP SETID {k} {g} $ ENTRIESREAD {n}"),
                33 => {
                    format!("XSETID {k} {} ENTRIESADDED {n} MAXDELETEDID {}", a.replace("-*", ""), b.replace("-*", ""))
                }
                34 => format!("XREADGROUP GROUP {g} {c} COUNT {n} STREAMS s t 0 {}", b.replace("-*", "")),
                35 => format!("XINFO CONSUMERS {k} {g}"),
                36 => format!("XGROUP CREATE {k} {g} {} ENTRIESREAD {n}", a.replace("-*", "")),
                37 => format!("XINFO STREAM {k} FULL COUNT {n}"),
                _ => format!("XSETID {k} {}", a.replace("-*", "")),
            };
            script.push(line);
        }
        let script: Vec<&str> = script.iter().map(String::as_str).collect();
        compare_masked(&format!("random streams, seed {seed} (VELO_DIFF_SEED={base})"), &[], &script);
    }
}

/// Random sequences over long streams (bursts of growing IDs, so that entries span many nodes) with
/// trimming, deletions and group traffic, seeded (`VELO_DIFF_SEED`): replies must match, clocks masked.
#[test]
fn stream_random_long_streams() {
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};
    let base: u64 = crate::support::differential::seed_base(1_764_000_000);
    let consumers = ["alice", "bob"];
    for seed in base..base + 2 {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut script: Vec<String> = vec!["XGROUP CREATE s g 0 MKSTREAM".into(), "XGROUP CREATE s h $".into()];
        let mut next: u64 = 1;
        for _ in 0..120 {
            let c = consumers[rng.gen_range(0..consumers.len())];
            let around = rng.gen_range(next.saturating_sub(150)..=next);
            let n: u64 = rng.gen_range(0..160);
            let approx = if rng.gen_bool(0.5) { "~ " } else { "" };
            match rng.gen_range(0..16) {
                0..=3 => {
                    for _ in 0..rng.gen_range(1..80) {
                        script.push(format!("XADD s {next}-{} f {next}", rng.gen_range(0..2)));
                        next += rng.gen_range(1..3);
                    }
                }
                4 => {
                    script.push(format!("XADD s MAXLEN {approx}{n} {next}-0 f v"));
                    next += 1;
                }
                5 => {
                    script.push(if approx.is_empty() {
                        format!("XADD s MINID {around} {next}-* f v")
                    } else {
                        format!("XADD s MINID ~ {around} LIMIT {n} {next}-* f v")
                    });
                    next += 1;
                }
                6 => script.push(format!("XTRIM s MAXLEN {approx}{n}")),
                7 => script.push(format!("XTRIM s MINID {approx}{around}")),
                8 => {
                    let ids: Vec<String> = (0..rng.gen_range(1..6))
                        .map(|_| format!("{}-{}", rng.gen_range(next.saturating_sub(200)..next), rng.gen_range(0..2)))
                        .collect();
                    script.push(format!("XDEL s {}", ids.join(" ")));
                }
                9 => script.push(format!("XREADGROUP GROUP g {c} COUNT {n} STREAMS s >")),
                10 => script.push(format!("XACK s g {around}-0 {around}-1 {}-0", around + 1)),
                11 => script.push(format!("XAUTOCLAIM s g {c} 0 {around} COUNT {}", n.max(1))),
                12 => script.push(format!("XRANGE s {around} + COUNT 5")),
                13 => script.push("XINFO GROUPS s".into()),
                14 => script.push("XINFO STREAM s".into()),
                _ => script.push(format!("XREADGROUP GROUP h {c} NOACK COUNT {n} STREAMS s >")),
            }
        }
        script.push("XINFO STREAM s FULL COUNT 0".into());
        script.push("XPENDING s g - + 1000".into());
        let script: Vec<&str> = script.iter().map(String::as_str).collect();
        compare_masked(&format!("random long streams, seed {seed} (VELO_DIFF_SEED={base})"), &[], &script);
    }
}

/// Node boundaries with large and varied entries (Redis closes a node at 4096 bytes of listpack): the node
/// count (`radix-tree-keys`) and approximate trimming must match.
#[test]
fn stream_node_bytes() {
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};
    let mut rng = SmallRng::seed_from_u64(7);
    let mut setup: Vec<String> = Vec::new();
    for i in 1..=60 {
        setup.push(format!("XADD big {i}-0 payload {}", "x".repeat(200)));
    }
    setup.push("XADD big 61-0 payload y".into());
    setup.push(format!("XADD huge 1-0 a {}", "z".repeat(5000)));
    setup.push("XADD huge 2-0 a b".into());
    setup.push(format!("XADD huge 3-0 a {}", "z".repeat(3000)));
    setup.push("XADD huge 4-0 a b".into());
    let mut ms = 1u64;
    for _ in 0..400 {
        let fields = match rng.gen_range(0..6) {
            0 => "f v".to_string(),
            1 => format!("f {}", rng.gen_range(-100_000i64..100_000)),
            2 => format!("n {} m {}", rng.gen_range(0..5_000_000_000i64), "w".repeat(rng.gen_range(0..70))),
            3 => format!("f {}", "q".repeat(rng.gen_range(60..300))),
            4 => format!("{} v", rng.gen_range(0..1000)),
            _ => format!("f v g {}", "e".repeat(rng.gen_range(0..20))),
        };
        ms += rng.gen_range(1..200_000);
        setup.push(format!("XADD mixed {ms}-{} {fields}", rng.gen_range(0..70_000)));
    }
    let mut queries: Vec<String> =
        vec!["XINFO STREAM big".into(), "XINFO STREAM huge".into(), "XINFO STREAM mixed".into()];
    for (i, keep) in [350, 300, 200, 120, 40].iter().enumerate() {
        queries.push(format!("XTRIM mixed MAXLEN ~ {keep}"));
        queries.push("XINFO STREAM mixed".into());
        queries.push(format!("XDEL big {}-0 {}-0", 20 + i, 40 + i));
    }
    queries.push("XTRIM big MAXLEN ~ 30".into());
    queries.push("XTRIM big MINID ~ 45".into());
    queries.push("XINFO STREAM big".into());
    let setup: Vec<&str> = setup.iter().map(String::as_str).collect();
    let queries: Vec<&str> = queries.iter().map(String::as_str).collect();
    compare_masked("node bytes", &setup, &queries);
}

/// `stream-node-max-entries` and `stream-node-max-bytes` changed at run time decide where new entries go
/// (nodes built before keep their shape), in small and split streams; 0 lifts a limit; the entry limit
/// also sets how much an approximate trim without LIMIT may remove (100 nodes' worth, 10000 for 0).
#[test]
fn stream_node_limits_follow_config() {
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};
    let mut rng = SmallRng::seed_from_u64(11);
    let mut setup: Vec<String> = Vec::new();
    let mut ms = 1u64;
    let limits = [("3", "4096"), ("0", "200"), ("7", "0"), ("1", "100"), ("0", "0"), ("25", "1kb"), ("100", "4096")];
    for (entries, bytes) in limits {
        setup.push(format!("CONFIG SET stream-node-max-entries {entries} stream-node-max-bytes {bytes}"));
        for key in ["small", "large"] {
            let count = if key == "small" { 20 } else { 150 };
            for _ in 0..count {
                let value = "v".repeat(rng.gen_range(0..40));
                setup.push(format!("XADD {key} {ms}-0 f {value}"));
                ms += 1;
            }
        }
        setup.push("XINFO STREAM small".into());
        setup.push("XINFO STREAM large".into());
    }
    let mut queries: Vec<String> = vec!["XINFO STREAM small FULL COUNT 3".into()];
    for (entries, keep) in [("2", 900), ("0", 500), ("1", 300), ("3", 10)] {
        queries.push(format!("CONFIG SET stream-node-max-entries {entries}"));
        queries.push(format!("XTRIM large MAXLEN ~ {keep}"));
        queries.push("XINFO STREAM large".into());
        queries.push(format!("XADD small MAXLEN ~ {} {ms}-0 f v", keep / 100));
        ms += 1;
        queries.push("XINFO STREAM small".into());
    }
    queries.push("CONFIG SET stream-node-max-entries 100".into());
    let setup: Vec<&str> = setup.iter().map(String::as_str).collect();
    let queries: Vec<&str> = queries.iter().map(String::as_str).collect();
    compare_masked("node limits", &setup, &queries);
}

/// WATCH sees a stream change only when entries are added or removed or the key is created, as in Redis
/// 7.0 (consumer-group bookkeeping and XSETID leave it alone): each command runs on a second connection
/// between WATCH/MULTI and EXEC, and EXEC's reply must match Redis's.
#[test]
fn stream_watch() {
    let (redis, velo) = servers();
    let commands: &[&str] = &[
        "XADD s 50-1 a 1",
        "XDEL s 50-1",
        "XREADGROUP GROUP g c COUNT 1 STREAMS s >",
        "XREADGROUP GROUP g c STREAMS s 0",
        "XACK s g 1-1",
        "XGROUP CREATECONSUMER s g zz",
        "XCLAIM s g c2 0 2-1",
        "XAUTOCLAIM s g c3 0 0",
        "XGROUP DELCONSUMER s g zz",
        "XGROUP SETID s g 0",
        "XREADGROUP GROUP g c NOACK STREAMS s >",
        "XREADGROUP GROUP g c STREAMS s >",
        "XREADGROUP GROUP g newc STREAMS s 0",
        "XDEL s 9-9",
        "XTRIM s MAXLEN 100",
        "XTRIM s MAXLEN 1",
        "XGROUP CREATE s g2 0",
        "XGROUP DESTROY s g2",
        "XSETID s 60-5",
        "XGROUP CREATE m g 0 MKSTREAM",
        "XADD s NOMKSTREAM 70-1 a b",
        "XADD n NOMKSTREAM 70-1 a b",
    ];
    let mut results: Vec<Vec<Vec<u8>>> = Vec::new();
    for port in [redis.port, velo.port] {
        let (mut a, mut b) = (Conn::connect(port), Conn::connect(port));
        for setup in [&["FLUSHALL"][..], &["XADD", "s", "1-1", "a", "1"], &["XADD", "s", "2-1", "a", "1"]] {
            a.cmd(setup);
        }
        a.cmd(&["XGROUP", "CREATE", "s", "g", "0"]);
        let mut out = Vec::new();
        for line in commands {
            let args: Vec<&str> = line.split(' ').collect();
            let key = if args[0] == "XGROUP" { args[2] } else { args[1] };
            let key = if key == "NOMKSTREAM" { args[1] } else { key };
            a.cmd(&["WATCH", key]);
            a.cmd(&["MULTI"]);
            a.cmd(&["PING"]);
            b.cmd(&args);
            out.push(a.cmd(&["EXEC"]));
        }
        results.push(out);
    }
    for (i, line) in commands.iter().enumerate() {
        assert_eq!(show(&results[0][i]), show(&results[1][i]), "EXEC after `{line}`");
    }
}
