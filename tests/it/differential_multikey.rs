//! Differential tests (redis-server 7.0 vs Velo, RESP2 and RESP3) for the commands with movable keys and
//! the multi-key set, sorted-set, list, geo and SORT commands: LMPOP, ZMPOP, SINTERCARD, ZINTERCARD,
//! ZUNION/ZINTER/ZDIFF and their STORE forms, ZRANDMEMBER, GEOSEARCHSTORE, the GEORADIUS family, SORT and
//! SORT_RO, and COMMAND GETKEYS on all of them.

use crate::support::differential::{compare, servers};

#[test]
fn getkeys_movable() {
    let (redis, velo) = servers();
    let script = [
        "COMMAND GETKEYS ZUNION 2 a b",
        "COMMAND GETKEYS ZUNION 2 a b WEIGHTS 1 2",
        "COMMAND GETKEYS ZUNION 0 a b",
        "COMMAND GETKEYS ZUNION -1 a b",
        "COMMAND GETKEYS ZUNION 3 a b",
        "COMMAND GETKEYS ZUNION x a b",
        "COMMAND GETKEYS ZUNION 99999999999999999999 a",
        "COMMAND GETKEYS ZUNION 2",
        "COMMAND GETKEYS ZINTER 1 a",
        "COMMAND GETKEYS ZDIFF 2 a b",
        "COMMAND GETKEYS ZUNIONSTORE d 2 a b",
        "COMMAND GETKEYS ZUNIONSTORE d 3 a b",
        "COMMAND GETKEYS ZUNIONSTORE d 0 a b",
        "COMMAND GETKEYS ZUNIONSTORE d 1",
        "COMMAND GETKEYS ZINTERSTORE d 1 a",
        "COMMAND GETKEYS ZDIFFSTORE d 2 a b",
        "COMMAND GETKEYS ZINTERCARD 2 a b LIMIT 1",
        "COMMAND GETKEYS SINTERCARD 2 a b",
        "COMMAND GETKEYS SINTERCARD 3 a b",
        "COMMAND GETKEYS SINTERCARD 1 a limit",
        "COMMAND GETKEYS LMPOP 2 a b LEFT",
        "COMMAND GETKEYS LMPOP 3 a b LEFT",
        "COMMAND GETKEYS LMPOP 0 a LEFT",
        "COMMAND GETKEYS LMPOP 1 a",
        "COMMAND GETKEYS ZMPOP 2 a b MIN COUNT 2",
        "COMMAND GETKEYS ZMPOP 1 a",
        "COMMAND GETKEYS ZRANDMEMBER a",
        "COMMAND GETKEYS ZRANGESTORE d s 0 -1",
        "COMMAND GETKEYS GET a b",
        "COMMAND GETKEYS PING x",
        "COMMAND GETKEYS ECHO a b",
        "COMMAND GETKEYS CONFIG GET a",
        "COMMAND GETKEYS CONFIG nosuch a",
        "COMMAND GETKEYS nosuch a b",
        "COMMAND GETKEYS OBJECT ENCODING k",
        "COMMAND GETKEYS OBJECT ENCODING k j",
        "COMMAND GETKEYS MSET a 1 b 2",
        "COMMAND GETKEYS GET",
    ];
    compare(&redis, &velo, "getkeys_movable", &script);
}

#[test]
fn zset_algebra() {
    let (redis, velo) = servers();
    let script = [
        "ZADD z1 1 a 2 b 3 c",
        "ZADD z2 10 b 20 c 30 d",
        "SADD s1 a d x",
        "SET str x",
        "ZUNION 2 z1 z2",
        "ZUNION 2 z1 z2 WITHSCORES",
        "ZUNION 3 z1 z2 s1 WITHSCORES",
        "ZUNION 2 z1 z2 WEIGHTS 2 0.5 WITHSCORES",
        "ZUNION 2 z1 z2 AGGREGATE MIN WITHSCORES",
        "ZUNION 2 z1 z2 AGGREGATE max WITHSCORES",
        "ZUNION 2 z1 z2 WEIGHTS 1 -1 AGGREGATE SUM WITHSCORES",
        "ZUNION 2 z1 nokey WITHSCORES",
        "ZUNION 1 nokey",
        "ZUNION 2 z1 z1 WITHSCORES",
        "ZUNION 1 z1 WITHSCORES WITHSCORES",
        "ZUNION 1 z1 WEIGHTS inf WITHSCORES",
        "ZUNION 2 z1 z2 WEIGHTS 0 inf WITHSCORES",
        // float rounding depends on the order of accumulation (smallest input first)
        "ZADD fa 0.1 m",
        "ZADD fb 0.2 m 1 x",
        "ZADD fc 0.3 m 1 x 2 y",
        "ZUNION 3 fc fb fa WITHSCORES",
        "ZINTER 3 fc fb fa WITHSCORES",
        "ZUNIONSTORE fd 3 fc fb fa",
        "ZSCORE fd m",
        "ZINTER 2 z1 z2",
        "ZINTER 2 z1 z2 WITHSCORES",
        "ZINTER 3 z1 z2 s1 WITHSCORES",
        "ZINTER 2 z1 s1 WEIGHTS 3 4 WITHSCORES",
        "ZINTER 2 z1 z2 AGGREGATE MAX WITHSCORES",
        "ZINTER 2 z1 nokey WITHSCORES",
        "ZINTER 2 z1 z1 AGGREGATE MIN WITHSCORES",
        "ZDIFF 2 z1 z2",
        "ZDIFF 2 z1 z2 WITHSCORES",
        "ZDIFF 2 z1 s1 WITHSCORES",
        "ZDIFF 1 nokey",
        "ZDIFF 2 nokey z1",
        "ZDIFF 3 z2 z1 nokey WITHSCORES",
        // errors
        "ZUNION 0 z1",
        "ZUNION -1 z1",
        "ZUNION x z1",
        "ZUNION 99999999999999999999 z1",
        "ZUNION 3 z1 z2",
        "ZUNION 2 z1 z2 WEIGHTS 1",
        "ZUNION 2 z1 z2 WEIGHTS 1 x",
        "ZUNION 2 z1 z2 WEIGHTS 1 nan",
        "ZUNION 2 z1 z2 WEIGHTS 1 2 3",
        "ZUNION 1 z1 AGGREGATE",
        "ZUNION 1 z1 AGGREGATE avg",
        "ZUNION 1 z1 foo",
        "ZINTER 0 z1",
        "ZDIFF 0 z1",
        "ZDIFF 1 z1 WEIGHTS 1",
        "ZDIFF 1 z1 AGGREGATE SUM",
        "ZUNION 2 z1 str",
        "ZINTER 2 nokey str",
        "ZDIFF 2 z1 str",
        "ZUNION",
        "ZUNION 1",
        // STORE forms
        "ZUNIONSTORE d 2 z1 z2",
        "ZRANGE d 0 -1 WITHSCORES",
        "ZUNIONSTORE d 2 z1 s1 WEIGHTS 2 3 AGGREGATE MAX",
        "ZRANGE d 0 -1 WITHSCORES",
        "ZINTERSTORE d 2 z1 z2",
        "ZRANGE d 0 -1 WITHSCORES",
        "ZINTERSTORE d 2 z1 nokey",
        "EXISTS d",
        "ZDIFFSTORE d 2 z1 z2",
        "ZRANGE d 0 -1 WITHSCORES",
        "ZDIFFSTORE d 2 z1 z1",
        "EXISTS d",
        "SET d x",
        "ZUNIONSTORE d 1 z1",
        "TYPE d",
        "ZUNIONSTORE z1 2 z1 z2",
        "ZRANGE z1 0 -1 WITHSCORES",
        "ZUNIONSTORE d 1 z1 WITHSCORES",
        "ZUNIONSTORE d 0 z1",
        "ZINTERSTORE d -1 z1",
        "ZDIFFSTORE d x z1",
        "ZUNIONSTORE d 3 z1 z2",
        "ZUNIONSTORE d 2 z1 str",
        "ZDIFFSTORE d 1 z1 WEIGHTS 1",
        "ZUNIONSTORE d 1",
        "SET d2 x",
        "ZINTERSTORE d2 2 z1 nokey",
        "EXISTS d2",
        "ZUNIONSTORE s1 1 z2",
        "TYPE s1",
    ];
    compare(&redis, &velo, "zset_algebra", &script);
}

#[test]
fn intercard_and_mpop() {
    let (redis, velo) = servers();
    let script = [
        "SADD s1 a b c d",
        "SADD s2 b c d e",
        "SADD s3 c d",
        "ZADD z1 1 a 2 b 3 c",
        "ZADD z2 1 b 2 c 3 d",
        "SET str x",
        "SINTERCARD 1 s1",
        "SINTERCARD 2 s1 s2",
        "SINTERCARD 3 s1 s2 s3",
        "SINTERCARD 2 s1 s2 LIMIT 1",
        "SINTERCARD 2 s1 s2 LIMIT 0",
        "SINTERCARD 2 s1 s2 LIMIT 100",
        "SINTERCARD 2 s1 s2 LIMIT 1 LIMIT 2",
        "SINTERCARD 2 s1 nokey",
        "SINTERCARD 2 nokey str",
        "SINTERCARD 2 s1 str",
        "SINTERCARD 0 s1",
        "SINTERCARD -1 s1",
        "SINTERCARD x s1",
        "SINTERCARD 99999999999999999999 s1",
        "SINTERCARD 3 s1 s2",
        "SINTERCARD 1 s1 LIMIT",
        "SINTERCARD 1 s1 LIMIT -1",
        "SINTERCARD 1 s1 LIMIT x",
        "SINTERCARD 1 s1 foo",
        "SINTERCARD 1",
        "ZINTERCARD 1 z1",
        "ZINTERCARD 2 z1 z2",
        "ZINTERCARD 2 z1 z2 LIMIT 1",
        "ZINTERCARD 2 z1 s1",
        "ZINTERCARD 2 z1 nokey",
        "ZINTERCARD 2 z1 str",
        "ZINTERCARD 0 z1",
        "ZINTERCARD x z1",
        "ZINTERCARD 3 z1 z2",
        "ZINTERCARD 1 z1 LIMIT -1",
        "ZINTERCARD 1 z1 LIMIT",
        "ZINTERCARD 1 z1 foo",
        // LMPOP
        "RPUSH l1 a b c d e",
        "RPUSH l2 x",
        "LMPOP 1 l1 LEFT",
        "LMPOP 1 l1 RIGHT COUNT 2",
        "LMPOP 2 nokey l1 left COUNT 10",
        "EXISTS l1",
        "LMPOP 2 l1 l2 RIGHT",
        "LMPOP 2 l1 l2 RIGHT",
        "LMPOP 1 nokey LEFT",
        "RPUSH l3 q",
        "LMPOP 2 l3 str LEFT",
        "LMPOP 2 nokey str LEFT",
        "LMPOP 0 l1 LEFT",
        "LMPOP -1 l1 LEFT",
        "LMPOP x l1 LEFT",
        "LMPOP 2 l1 LEFT",
        "LMPOP 3 a b LEFT",
        "LMPOP 1 l1 MIDDLE",
        "LMPOP 1 l1 LEFT COUNT 0",
        "LMPOP 1 l1 LEFT COUNT -1",
        "LMPOP 1 l1 LEFT COUNT x",
        "LMPOP 1 l1 LEFT COUNT",
        "LMPOP 1 l1 LEFT COUNT 1 COUNT 2",
        "LMPOP 1 l1 LEFT foo",
        "LMPOP 1 l1",
        // ZMPOP
        "ZADD z3 1 a 2 b 3 c 4 d",
        "ZMPOP 1 z3 MIN",
        "ZMPOP 1 z3 MAX COUNT 2",
        "ZMPOP 2 nokey z3 min COUNT 5",
        "EXISTS z3",
        "ZMPOP 1 nokey MIN",
        "ZADD z4 1.5 m",
        "ZMPOP 2 z4 str MAX",
        "ZMPOP 2 nokey str MAX",
        "ZMPOP 0 z1 MIN",
        "ZMPOP x z1 MIN",
        "ZMPOP 2 z1 MIN",
        "ZMPOP 1 z1 MID",
        "ZMPOP 1 z1 MIN COUNT 0",
        "ZMPOP 1 z1 MIN COUNT 1 COUNT 2",
        "ZMPOP 1 z1 MIN foo",
        "ZMPOP 1 z1",
    ];
    compare(&redis, &velo, "intercard_and_mpop", &script);
}

#[test]
fn zrandmember() {
    let (redis, velo) = servers();
    let script = [
        "ZADD z 3 c 1 a 2 b 2 aa",
        "ZADD one 5 only",
        "SET str x",
        "ZRANDMEMBER nokey",
        "ZRANDMEMBER nokey 3",
        "ZRANDMEMBER nokey -3 WITHSCORES",
        "ZRANDMEMBER one",
        "ZRANDMEMBER one 1",
        "ZRANDMEMBER one -3",
        "ZRANDMEMBER one -3 WITHSCORES",
        "ZRANDMEMBER one 5 WITHSCORES",
        "ZRANDMEMBER z 4",
        "ZRANDMEMBER z 10 WITHSCORES",
        "ZRANDMEMBER z 0",
        "ZRANDMEMBER z 0 WITHSCORES",
        "~ZRANDMEMBER z 4",
        "ZRANDMEMBER str",
        "ZRANDMEMBER str 1",
        "ZRANDMEMBER z x",
        "ZRANDMEMBER z 1 foo",
        "ZRANDMEMBER z 1 WITHSCORES x",
        "ZRANDMEMBER z -9223372036854775808",
        "ZRANDMEMBER z -4611686018427387904 WITHSCORES",
        "ZRANDMEMBER z 4611686018427387904 WITHSCORES",
        "ZRANDMEMBER",
    ];
    compare(&redis, &velo, "zrandmember", &script);
}

#[test]
fn sort() {
    let (redis, velo) = servers();
    let script = [
        "RPUSH l 3 1 2 10 \"\"",
        "SORT l",
        "SORT l DESC",
        "SORT l ALPHA",
        "SORT l ALPHA DESC",
        "SORT l ASC DESC",
        "SORT l DESC ASC",
        "RPUSH l2 a 1",
        "SORT l2",
        "SORT l2 ALPHA",
        "RPUSH l3 \" 5\" 0x10 1e2 inf -inf +3 .5",
        "SORT l3",
        "RPUSH l4 nan",
        "SORT l4",
        "RPUSH l5 \"5 \"",
        "SORT l5",
        "RPUSH q4 infinity -INF 0x1p3 0.0e5 -0.0 0x0p9",
        "SORT q4",
        "RPUSH l6 2 1 1.0 01 -0",
        "SORT l6",
        "SORT l6 DESC",
        // Redis's strtod sees a C string: the value ends at its first NUL byte.
        "RPUSH n1 \"\\x00\\xff\" 2 \"1\\x00x\"",
        "SORT n1",
        "RPUSH n2 \" \\x00\"",
        "SORT n2",
        "RPUSH n3 \"\\x00 \"",
        "SORT n3",
        "MSET w_a \"3\\x00z\" w_b 2",
        "RPUSH n4 a b",
        "SORT n4 BY w_*",
        "SORT l BY nosort",
        "SORT l BY nosort DESC",
        "SORT l BY nosort LIMIT 1 2",
        "SORT l BY nosort DESC LIMIT 1 2",
        "ZADD z 3 a 1 b 2 c",
        "SORT z BY nosort",
        "SORT z BY nosort DESC",
        "SORT z BY nosort LIMIT 1 1",
        "SORT z BY nosort DESC LIMIT 0 2",
        "SORT z ALPHA",
        "SORT z",
        "SORT z BY nosort ALPHA DESC LIMIT 0 2",
        "SORT l LIMIT 1 2",
        "SORT l LIMIT -1 2",
        "SORT l LIMIT 2 -1",
        "SORT l LIMIT 10 2",
        "SORT l LIMIT 0 0",
        "SORT l LIMIT 4 9223372036854775807",
        "SORT l LIMIT x 1",
        "SORT l LIMIT 1 x",
        "SORT l LIMIT 1",
        // BY and GET
        "MSET w_1 10 w_2 -5 w_3 7 o_1 one o_2 two w_10 abc",
        "HSET h_1 f 3 g x",
        "HSET h_2 f 1",
        "HSET h_3 f 2",
        "SORT l BY w_*",
        "SORT l BY w_* ALPHA DESC",
        "SET w_10 0",
        "SORT l BY w_*",
        "SORT l BY w_* DESC",
        "SORT l BY w_* GET # GET o_* GET h_*->f GET nopattern",
        "SORT l BY h_*->f GET h_*->f GET h_*->g",
        "SORT l GET o_*->f",
        "SORT l BY h_*->",
        "SORT l GET o_*->",
        "SORT l GET *",
        "SORT l GET h_*",
        "SORT l GET # GET #",
        "SORT l BY nosort GET o_* GET #",
        "SORT l BY w_* LIMIT 1 2 GET o_*",
        "SORT l BY x*y->f",
        "SET w_10 notanumber",
        "SORT l BY w_*",
        "SORT l BY w_* ALPHA",
        // sets
        "SADD s 5 3 9 1",
        "SORT s",
        "SORT s DESC LIMIT 1 2",
        "SORT s BY nosort STORE d3",
        "LRANGE d3 0 -1",
        "SADD s2 b a c",
        "SORT s2",
        "SORT s2 ALPHA",
        "SORT s2 BY nosort STORE d4",
        "LRANGE d4 0 -1",
        "~SORT s2 BY nosort",
        // STORE
        "SORT l BY w_* GET o_* STORE dst",
        "LRANGE dst 0 -1",
        "SORT l STORE dst",
        "LRANGE dst 0 -1",
        "SORT z BY nosort DESC STORE dst",
        "LRANGE dst 0 -1",
        "SORT nokey STORE dst",
        "EXISTS dst",
        "SET dst x",
        "SORT l LIMIT 10 1 STORE dst",
        "EXISTS dst",
        "SET dst x",
        "SORT l STORE dst",
        "TYPE dst",
        "SORT l STORE l",
        "LRANGE l 0 -1",
        "SORT l STORE",
        "SORT l STORE a STORE b",
        "LRANGE b 0 -1",
        "EXISTS a",
        // errors and types
        "SET str x",
        "SORT str",
        "SORT str foo",
        "SORT nokey",
        "SORT nokey BY w_* GET o_*",
        "SORT l foo",
        "SORT l GET",
        "SORT l BY",
        "HSET hash a b",
        "SORT hash",
        "SORT_RO l",
        "SORT_RO l BY w_* GET o_* DESC LIMIT 0 3",
        "SORT_RO l STORE d",
        "SORT_RO str",
        "SORT",
        "SORT_RO",
        // COMMAND GETKEYS on SORT
        "COMMAND GETKEYS SORT k LIMIT 0 1 STORE d",
        "COMMAND GETKEYS SORT k GET store",
        "COMMAND GETKEYS SORT k GET store STORE x",
        "COMMAND GETKEYS SORT k STORE a STORE b",
        "COMMAND GETKEYS SORT k BY store",
        "COMMAND GETKEYS SORT k STORE",
        "COMMAND GETKEYS SORT k LIMIT store x y STORE z",
        "COMMAND GETKEYS SORT k LIMIT 0 STORE x",
        "COMMAND GETKEYS SORT k STORE x BY",
        "COMMAND GETKEYS SORT_RO k STORE x",
        "COMMAND GETKEYS SORT k foo STORE x",
        // Out-of-range weights (strtod's ERANGE) last: Redis does not clear errno before parsing, so one
        // such error can leak into its next numeric SORT.
        "RPUSH q1 1e400",
        "SORT q1",
        "RPUSH q2 1e-400",
        "SORT q2",
        "RPUSH q3 1e-310",
        "SORT q3",
        "RPUSH q5 0x1p-1080",
        "SORT q5",
    ];
    compare(&redis, &velo, "sort", &script);
}

#[test]
fn geo_store_and_radius() {
    let (redis, velo) = servers();
    let script = [
        "GEOADD g 13.361389 38.115556 Palermo 15.087269 37.502669 Catania 2.35 48.85 Paris",
        "SET str x",
        // GEORADIUS and GEORADIUS_RO
        "~GEORADIUS g 15 37 200 km",
        "GEORADIUS g 15 37 200 km WITHDIST WITHCOORD WITHHASH ASC",
        "GEORADIUS g 15 37 200 km COUNT 1",
        "GEORADIUS g 15 37 200 km COUNT 1 DESC WITHDIST",
        "GEORADIUS g 15 37 2000 km ASC",
        "GEORADIUS g 15 37 200 km ANY",
        "GEORADIUS_RO g 15 37 200 km ASC WITHDIST",
        "GEORADIUS_RO g 15 37 200 km STORE d",
        "GEORADIUS_RO g 15 37 200 km STOREDIST d",
        "GEORADIUS g 181 0 1 km",
        "GEORADIUS g 15 37 -1 km",
        "GEORADIUS g 15 37 1 parsec",
        "GEORADIUS g x 37 1 km",
        "GEORADIUS g 15 37 x km",
        "GEORADIUS g 15 37 1 km COUNT 0",
        "GEORADIUS g 15 37 1 km COUNT x",
        "GEORADIUS g 15 37 1 km COUNT",
        "GEORADIUS g 15 37 1 km foo",
        "GEORADIUS g 15 37 200 km FROMMEMBER Palermo",
        "GEORADIUS g 15 37 200 km BYBOX 1 1 km",
        "GEORADIUS g 15 37 1 km WITHDIST STORE",
        "GEORADIUS nokey 15 37 1 km",
        "GEORADIUS nokey 15 37 1 km foo",
        "GEORADIUS str 15 37 1 km",
        "GEORADIUS str x 37 1 km foo",
        // STORE / STOREDIST
        "GEORADIUS g 15 37 200 km STORE d",
        "ZRANGE d 0 -1 WITHSCORES",
        "GEORADIUS g 15 37 200 km STOREDIST d2",
        "ZRANGE d2 0 -1 WITHSCORES",
        "GEORADIUS g 15 37 200 km STORE d WITHDIST",
        "GEORADIUS g 15 37 200 km WITHCOORD STOREDIST d",
        "GEORADIUS g 15 37 200 km STORE f STOREDIST e",
        "EXISTS f",
        "ZRANGE e 0 -1 WITHSCORES",
        "GEORADIUS g 15 37 200 km STOREDIST f2 STORE e2",
        "EXISTS f2",
        "ZRANGE e2 0 -1 WITHSCORES",
        "GEORADIUS g 15 37 200 km COUNT 1 DESC STORE e3",
        "ZRANGE e3 0 -1",
        "SET d x",
        "GEORADIUS nokey 15 37 1 km STORE d",
        "EXISTS d",
        "SET d x",
        "GEORADIUS g 15 37 1 km STORE d",
        "EXISTS d",
        "GEORADIUS g 15 37 200 km STORE g",
        "ZRANGE g 0 -1 WITHSCORES",
        "GEOADD g 2.35 48.85 Paris",
        // GEORADIUSBYMEMBER and its _RO form
        "GEORADIUSBYMEMBER g Palermo 200 km ASC",
        "GEORADIUSBYMEMBER g Palermo 200 km WITHDIST WITHHASH WITHCOORD DESC",
        "GEORADIUSBYMEMBER g nosuch 200 km",
        "GEORADIUSBYMEMBER g nosuch x km",
        "GEORADIUSBYMEMBER g Palermo x km",
        "GEORADIUSBYMEMBER g Palermo -1 km",
        "GEORADIUSBYMEMBER g Palermo 200 km STOREDIST d3 DESC",
        "ZRANGE d3 0 -1 WITHSCORES",
        "GEORADIUSBYMEMBER g Palermo 200 km STORE d4 COUNT 1",
        "ZRANGE d4 0 -1 WITHSCORES",
        "GEORADIUSBYMEMBER_RO g Palermo 200 km WITHDIST ASC",
        "GEORADIUSBYMEMBER_RO g Palermo 200 km STORE d",
        "GEORADIUSBYMEMBER nokey m x km",
        "GEORADIUSBYMEMBER nokey m 1 km foo",
        "GEORADIUSBYMEMBER nokey m 1 km STORE d WITHDIST",
        "GEORADIUSBYMEMBER nokey m 1 km STORE d",
        "GEORADIUSBYMEMBER str m x km",
        // GEOSEARCHSTORE
        "GEOSEARCHSTORE d g FROMLONLAT 15 37 BYRADIUS 200 km",
        "ZRANGE d 0 -1 WITHSCORES",
        "GEOSEARCHSTORE d g FROMLONLAT 15 37 BYRADIUS 200 km STOREDIST",
        "ZRANGE d 0 -1 WITHSCORES",
        "GEOSEARCHSTORE d g FROMMEMBER Palermo BYBOX 400 400 km DESC COUNT 1",
        "ZRANGE d 0 -1 WITHSCORES",
        "GEOSEARCHSTORE d g FROMLONLAT 15 37 BYRADIUS 200 km COUNT 1 ANY STOREDIST",
        "GEOSEARCHSTORE d g FROMLONLAT 15 37 BYRADIUS 200 km STOREDIST STOREDIST",
        "GEOSEARCHSTORE d g FROMLONLAT 15 37 BYRADIUS 200 km WITHDIST",
        "GEOSEARCHSTORE d g FROMLONLAT 15 37 BYRADIUS 200 km WITHCOORD",
        "GEOSEARCHSTORE d g FROMLONLAT 15 37 BYRADIUS 200 km WITHHASH",
        "GEOSEARCHSTORE d g FROMLONLAT 15 37 BYRADIUS x km",
        "GEOSEARCHSTORE d g FROMLONLAT 15 37 BYRADIUS 1 km STORE e",
        "GEOSEARCHSTORE d g FROMMEMBER nosuch BYRADIUS 1 km",
        "geosearchstore d g asc asc asc asc asc",
        "GEOSEARCHSTORE d g FROMLONLAT 1 1 ASC ASC ASC",
        "GEOSEARCHSTORE d g FROMLONLAT 15 37 BYRADIUS 1 km ANY",
        "GEOSEARCHSTORE d nokey FROMLONLAT 15 37 BYRADIUS 1 km",
        "EXISTS d",
        "GEOSEARCHSTORE d str FROMLONLAT 15 37 BYRADIUS 1 km",
        "GEOSEARCHSTORE d g FROMLONLAT 15 37 BYRADIUS 1 km",
        "EXISTS d",
        "GEOSEARCHSTORE d g FROMLONLAT 15 37 BYRADIUS 200 km",
        // GEOSEARCH option rules shared with the above
        "GEOSEARCH str a b c d e f",
        "GEOSEARCH g FROMLONLAT 1 1 BYRADIUS x km",
        "GEOSEARCH g BYBOX x 1 km FROMLONLAT 1 1",
        "GEOSEARCH g FROMLONLAT 1 1 BYBOX 1 x km",
        "GEOSEARCH g FROMLONLAT 1 1 BYBOX -1 1 km",
        "GEOSEARCH g FROMMEMBER a FROMLONLAT 1 1 BYRADIUS 1 km",
        "GEOSEARCH g FROMLONLAT 1 1 FROMMEMBER a BYRADIUS 1 km",
        "GEOSEARCH g FROMMEMBER Palermo FROMMEMBER Catania BYRADIUS 100 km",
        "GEOSEARCH g FROMLONLAT 1 1 FROMLONLAT 15 37 BYRADIUS 200 km ASC",
        "GEOSEARCH g BYRADIUS 1 km BYRADIUS 200 km FROMLONLAT 15 37 ASC",
        "GEOSEARCH g BYBOX 1 1 km BYRADIUS 1 km FROMLONLAT 1 1",
        "GEOSEARCH g BYBOX 1 1 km BYBOX 400 400 km FROMLONLAT 15 37 ASC",
        "GeoSearch g ASC ASC ASC ASC ASC",
        "GEOSEARCH g FROMLONLAT 1 1 BYRADIUS 1 km STOREDIST",
        "GEOSEARCH nokey FROMLONLAT 1 1 BYRADIUS 1 km ANY",
        "GEOSEARCH g FROMMEMBER nosuch foo",
        // key extraction
        "COMMAND GETKEYS GEORADIUS k 0 0 1 m STORE a STOREDIST b",
        "COMMAND GETKEYS GEORADIUS k 0 0 1 m STOREDIST b STORE a",
        "COMMAND GETKEYS GEORADIUS k 0 0 1 m STORE",
        "COMMAND GETKEYS GEORADIUS k 0 0 1 m COUNT STORE a",
        "COMMAND GETKEYS GEORADIUS k 0 0 1 m STORE a STORE b",
        "COMMAND GETKEYS GEORADIUS k 0 0 1 m STORE a STOREDIST",
        "COMMAND GETKEYS GEORADIUS k 0 0 1 m STOREDIST b STORE",
        "COMMAND GETKEYS GEORADIUS k 0 0 1 m STORE STOREDIST",
        "COMMAND GETKEYS GEORADIUS k 0 0 1 m STOREDIST STORE STORE x",
        "COMMAND GETKEYS GEORADIUS k 0 0 1 m STORE x STOREDIST y STOREDIST",
        "COMMAND GETKEYS GEORADIUS k 0 0 STORE a m",
        "COMMAND GETKEYS GEORADIUS_RO k 0 0 1 m STORE a",
        "COMMAND GETKEYS GEORADIUSBYMEMBER k m 1 m STORE a",
        "COMMAND GETKEYS GEORADIUSBYMEMBER k STORE a 1 m",
        "COMMAND GETKEYS GEORADIUSBYMEMBER_RO k m 1 m STORE a",
        "COMMAND GETKEYS GEOSEARCHSTORE d s FROMLONLAT 0 0 BYRADIUS 1 m",
    ];
    compare(&redis, &velo, "geo_store_and_radius", &script);
}

/// COMMAND GETKEYS for every command Velo has (subcommands included), with argument lists of several
/// lengths and shapes (plain names, leading counts), must answer as Redis does.
#[test]
fn getkeys_every_command() {
    use crate::support::resp::{parse, show, Value};
    use crate::support::Conn;
    let (redis, velo) = servers();
    let mut velo_conn = Conn::connect(velo.port);
    let mut redis_conn = Conn::connect(redis.port);
    let (Value::Agg(_, Some(names)), _) = parse(&velo_conn.cmd(&["COMMAND", "LIST"])).unwrap() else { panic!() };
    let shapes: [&[&str]; 4] = [
        &["a", "b", "c", "d", "e", "f", "g", "h"],
        &["2", "a", "b", "c", "STORE", "d", "e", "f"],
        &["1", "1", "a", "b", "LEFT", "c", "d", "e"],
        &["a", "1", "2", "3", "m", "STORE", "d", "STOREDIST"],
    ];
    let mut mismatches = Vec::new();
    let mut checked = 0;
    for name in names {
        let Value::Blob(_, Some(name)) = name else { panic!() };
        let name = String::from_utf8(name).unwrap();
        if redis_conn.cmd(&["COMMAND", "INFO", &name]) == b"*1\r\n$-1\r\n" {
            continue; // not in Redis 7.0
        }
        let words: Vec<&str> = name.split('|').collect();
        for shape in shapes {
            for extra in 0..=shape.len() {
                let mut argv = vec!["COMMAND", "GETKEYS"];
                argv.extend(&words);
                argv.extend(&shape[..extra]);
                let expected = redis_conn.cmd(&argv);
                let actual = velo_conn.cmd(&argv);
                checked += 1;
                if expected != actual {
                    mismatches.push(format!(
                        "{}:\n  redis: {}\n  velo:  {}",
                        argv.join(" "),
                        show(&expected),
                        show(&actual)
                    ));
                }
            }
        }
    }
    assert!(checked > 1000, "only {checked} requests");
    assert!(mismatches.is_empty(), "{} differ:\n{}", mismatches.len(), mismatches.join("\n"));
}

/// Every writer here makes WATCH on its destination (or popped key) fail the transaction.
#[test]
fn watch_sees_the_new_writers() {
    use crate::support::TestServer;
    let server = TestServer::start();
    let mut first = server.connect();
    let mut second = server.connect();
    let setup: &[&[&str]] = &[
        &["ZADD", "z", "1", "a", "2", "b"],
        &["SADD", "s", "a"],
        &["RPUSH", "l", "3", "1", "2"],
        &["GEOADD", "g", "13.361389", "38.115556", "Palermo"],
    ];
    let writes: &[(&str, &[&str])] = &[
        ("w", &["ZUNIONSTORE", "w", "2", "z", "s"]),
        ("w", &["ZINTERSTORE", "w", "2", "z", "s"]),
        ("w", &["ZDIFFSTORE", "w", "1", "z"]),
        ("w", &["SORT", "l", "STORE", "w"]),
        ("w", &["GEOSEARCHSTORE", "w", "g", "FROMLONLAT", "13", "38", "BYRADIUS", "100", "km"]),
        ("w", &["GEORADIUS", "g", "13", "38", "100", "km", "STORE", "w"]),
        ("w", &["GEORADIUSBYMEMBER", "g", "Palermo", "100", "km", "STOREDIST", "w"]),
        ("l", &["LMPOP", "1", "l", "LEFT"]),
        ("z", &["ZMPOP", "1", "z", "MAX"]),
        // An empty result deletes the watched destination.
        ("w", &["ZINTERSTORE", "w", "2", "z", "nokey"]),
    ];
    for (watched, write) in writes {
        first.cmd(&["FLUSHALL"]);
        for command in setup {
            first.cmd(command);
        }
        first.cmd(&["SET", "w", "1"]);
        first.cmd(&["WATCH", watched]);
        second.cmd(write);
        first.cmd(&["MULTI"]);
        first.cmd(&["PING"]);
        assert_eq!(first.cmd(&["EXEC"]), b"*-1\r\n", "{write:?}");
    }
    // Reads and an empty store to a missing key leave the transaction alone.
    first.cmd(&["FLUSHALL"]);
    first.cmd(&["WATCH", "w"]);
    second.cmd(&["ZUNION", "1", "w"]);
    second.cmd(&["SORT_RO", "w"]);
    second.cmd(&["ZINTERSTORE", "w", "1", "nokey"]);
    second.cmd(&["SORT", "nokey", "STORE", "w"]);
    first.cmd(&["MULTI"]);
    first.cmd(&["PING"]);
    assert_eq!(first.cmd(&["EXEC"]), b"*1\r\n+PONG\r\n");
}

/// SORT reads the keys its GET patterns name under the same locks as the source: a concurrent MSET of
/// two weights that keeps their sum is never seen half done, while another client keeps changing the
/// list (and so the keys named).
#[test]
fn sort_reads_pattern_keys_atomically() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let server = crate::support::TestServer::start();
    let mut setup = server.connect();
    setup.cmd(&["RPUSH", "l", "1", "2"]);
    setup.cmd(&["MSET", "w_1", "0", "w_2", "100"]);
    let stop = Arc::new(AtomicBool::new(false));
    let port = server.port;
    let writers: Vec<_> = (0..2)
        .map(|which| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut conn = crate::support::Conn::connect(port);
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    if which == 0 {
                        let (a, b) = ((i % 100).to_string(), (100 - i % 100).to_string());
                        conn.cmd(&["MSET", "w_1", &a, "w_2", &b]);
                    } else {
                        let element = format!("e{}", i % 50);
                        conn.cmd(&["RPUSH", "l", &element]);
                        conn.cmd(&["SET", &format!("w_{element}"), "1"]);
                        if i.is_multiple_of(3) {
                            conn.cmd(&["LTRIM", "l", "0", "1"]);
                        }
                    }
                }
            })
        })
        .collect();
    let mut reader = server.connect();
    for round in 0..300 {
        let reply = if round % 2 == 0 {
            reader.cmd(&["SORT", "l", "BY", "nosort", "GET", "w_*", "LIMIT", "0", "2"])
        } else {
            reader.cmd(&["SORT", "l", "BY", "nosort", "GET", "w_*", "STORE", "dst"]);
            reader.cmd(&["LRANGE", "dst", "0", "1"])
        };
        let text = String::from_utf8_lossy(&reply).into_owned();
        let numbers: Vec<i64> = text.split("\r\n").filter_map(|line| line.parse().ok()).collect();
        assert_eq!(numbers.len(), 2, "{text:?}");
        assert_eq!(numbers[0] + numbers[1], 100, "{text:?}");
    }
    stop.store(true, Ordering::Relaxed);
    writers.into_iter().for_each(|w| w.join().unwrap());
}
