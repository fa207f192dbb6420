//! Lua scripting and functions: differential corpus against redis-server (RESP2 and RESP3), FUNCTION
//! DUMP/RESTORE across servers, realistic scripts under contention, atomicity across slots, BUSY and
//! SCRIPT KILL, functions surviving a restart.

use std::time::{Duration, Instant};

use crate::support::differential::{compare, servers};
use crate::support::resp::{command, show};
use crate::support::{Conn, TestServer};

#[test]
fn eval_conversions_and_errors() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "eval",
        &[
            "EVAL \"return 1\" 0",
            "EVAL \"return 3.99\" 0",
            "EVAL \"return -3.99\" 0",
            "EVAL \"return 'str'\" 0",
            "EVAL \"return true\" 0",
            "EVAL \"return false\" 0",
            "EVAL \"return nil\" 0",
            "EVAL \"return {1,2,3,'x',nil,5}\" 0",
            "EVAL \"return {1,{2,{3}},false,true}\" 0",
            "EVAL \"return {ok='fine'}\" 0",
            "EVAL \"return {err='bad thing'}\" 0",
            "EVAL \"return {err='-CODE bad thing'}\" 0",
            "EVAL \"return redis.error_reply('MY err')\" 0",
            "EVAL \"return redis.error_reply('plain')\" 0",
            "EVAL \"return redis.status_reply('PONG')\" 0",
            "EVAL \"return {double=3.25}\" 0",
            "EVAL \"return {map={a=1}}\" 0",
            "EVAL \"return {set={a=true}}\" 0",
            "EVAL \"return {big_number='123456789012345678901234567890'}\" 0",
            "EVAL \"return {KEYS[1], KEYS[2], ARGV[1], #KEYS, #ARGV}\" 2 k1 k2 a1 a2",
            "EVAL \"return redis.call('set', KEYS[1], ARGV[1])\" 1 k v",
            "EVAL \"return redis.call('get', KEYS[1])\" 1 k",
            "EVAL \"return redis.call('get', 'missing')\" 0",
            "EVAL \"return redis.call('incr', 'k')\" 0",
            "EVAL \"return redis.pcall('incr', 'k')\" 0",
            "EVAL \"local r = redis.pcall('incr', 'k'); return type(r) .. r.err\" 0",
            "EVAL \"return redis.call('nosuch')\" 0",
            "EVAL \"return redis.call('get')\" 0",
            "EVAL \"return redis.call()\" 0",
            "EVAL \"return redis.call({})\" 0",
            "EVAL \"return redis.call('watch', 'k')\" 0",
            "EVAL \"return redis.call('incrbyfloat', 'f', 1.5)\" 0",
            "EVAL \"return redis.call('set', 'n', 1e20)\" 0",
            "GET n",
            "EVAL \"return pcall(redis.call, 'nosuch')\" 0",
            "EVAL \"local ok, e = pcall(redis.call, 'nosuch'); return e\" 0",
            "EVAL \"return x\" 0",
            "EVAL \"x = 1\" 0",
            "EVAL \"redis.call = nil\" 0",
            "EVAL \"string.x = 1\" 0",
            "EVAL \"error('boom')\" 0",
            "EVAL \"error({err='TABLE boom'})\" 0",
            "EVAL \"local a = nil; return a.b\" 0",
            "EVAL \"return 'x' ..\" 0",
            "EVAL \"return print\" 0",
            "EVAL \"return os\" 0",
            "EVAL \"return io\" 0",
            "EVAL \"return dofile\" 0",
            "EVAL \"return loadfile\" 0",
            "EVAL \"return redis.sha1hex('abc')\" 0",
            "EVAL \"return redis.sha1hex()\" 0",
            "EVAL \"return redis.REDIS_VERSION_NUM > 0\" 0",
            "EVAL \"redis.log(redis.LOG_WARNING, 'from a script'); return 1\" 0",
            "EVAL \"redis.log(redis.LOG_WARNING)\" 0",
            "EVAL \"redis.log('x', 'y')\" 0",
            "EVAL \"redis.log(9, 'y')\" 0",
            "EVAL \"redis.setresp(3); return redis.call('hgetall', 'nohash')\" 0",
            "EVAL \"redis.setresp(4)\" 0",
            "EVAL \"redis.setresp(3); return true\" 0",
            "EVAL \"redis.setresp(3); return false\" 0",
            "EVAL \"return redis.set_repl(redis.REPL_ALL)\" 0",
            "EVAL \"return redis.set_repl(9)\" 0",
            "EVAL \"return redis.replicate_commands()\" 0",
            "EVAL \"return 1\" -1",
            "EVAL \"return 1\" 3 a",
            "EVAL \"return 1\" x",
            "EVALSHA e0e1f9fabfc9d4800c877a703b823ac0578ff8db 0",
            "EVALSHA short 0",
            "SCRIPT LOAD \"return 'loaded'\"",
            "EVALSHA 7b2ae4ac8fd6a6f2ec8e1b1b2b0b5dfe35f3d5bd 0",
            "SCRIPT EXISTS 7b2ae4ac8fd6a6f2ec8e1b1b2b0b5dfe35f3d5bd ffffffffffffffffffffffffffffffffffffffff",
            "SCRIPT LOAD \"return (\"",
            "SCRIPT FLUSH",
            "SCRIPT FLUSH SYNC",
            "SCRIPT FLUSH bogus",
            "SCRIPT KILL",
            "EVAL_RO \"return redis.call('get', 'k')\" 0",
            "EVAL_RO \"return redis.call('set', 'k', 'v')\" 0",
            "EVAL \"#!lua flags=no-writes\nreturn redis.call('set', 'k', 'v')\" 0",
            "EVAL \"#!lua flags=no-writes\nreturn redis.call('get', 'k')\" 0",
            "EVAL_RO \"#!lua\nreturn 1\" 0",
            "EVAL \"#!lua flags=bogus\nreturn 1\" 0",
            "EVAL \"#!lua bogus\nreturn 1\" 0",
            "EVAL \"#!python\nreturn 1\" 0",
            "EVAL \"#!lua\" 0",
            "EVAL \"#!lua flags=allow-oom,allow-stale,no-cluster,allow-cross-slot-keys\nreturn 2\" 0",
            "MULTI",
            "EVAL \"return redis.call('incr', 'm')\" 0",
            "EVAL \"return redis.call('incr', 'm')\" 0",
            "EXEC",
            "EVAL \"return redis.call('blpop', 'nolist', 0)\" 0",
        ],
    );
}

/// `redis.call`'s argument and reply conversions and the script's return conversion, which run on the raw
/// Lua stack (script::capi): every reply type in both protocols, numbers as `%.17g`, error codes, nesting.
#[test]
fn call_conversions_on_the_stack() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "call_conversions",
        &[
            "EVAL \"redis.call('set', 'n', 123456789012345678); return redis.call('get', 'n')\" 0",
            "EVAL \"redis.call('set', 'n', 1e17); return redis.call('get', 'n')\" 0",
            "EVAL \"redis.call('set', 'n', 99999999999999999); return redis.call('get', 'n')\" 0",
            "EVAL \"redis.call('set', 'n', 1e16); return redis.call('get', 'n')\" 0",
            "EVAL \"redis.call('set', 'n', -0.0); return redis.call('get', 'n')\" 0",
            "EVAL \"redis.call('set', 'n', 0.1); return redis.call('get', 'n')\" 0",
            "EVAL \"redis.call('set', 'n', -12.5); return redis.call('get', 'n')\" 0",
            "EVAL \"redis.call('set', 'n', 2^63); return redis.call('get', 'n')\" 0",
            "EVAL \"redis.call('set', 'n', 1/0); return redis.call('get', 'n')\" 0",
            "EVAL \"redis.call('set', 'n', -1/0); return redis.call('get', 'n')\" 0",
            "EVAL \"redis.call('set', 'n', 0/0); return redis.call('get', 'n')\" 0",
            "EVAL \"redis.call('set', 'e', ''); return redis.call('get', 'e')\" 0",
            "EVAL \"return redis.call('set', 'k', true)\" 0",
            "EVAL \"return redis.call('set', 'k', nil)\" 0",
            "EVAL \"return redis.pcall('get', {})\" 0",
            "EVAL \"return redis.call('ping')\" 0",
            "EVAL \"local r = redis.call('set', 'a', 'b'); return {type(r), r.ok}\" 0",
            "EVAL \"return redis.call('get', 'a', 'extra')\" 0",
            "EVAL \"return redis.pcall('get', 'a', 'extra')\" 0",
            "EVAL \"local r = redis.pcall('lpush', 'a', 'x'); return {r.err, tostring(r.ignore_error_stats_update)}\" 0",
            "EVAL \"return redis.call('lpush', 'a', 'x')\" 0",
            "EVAL \"return redis.pcall('lpush', 'a', 'x')\" 0",
            "EVAL \"local r = redis.pcall('nosuch'); return {r.err, tostring(r.ignore_error_stats_update)}\" 0",
            "EVAL \"return {redis.call('exists', 'a'), type(redis.call('exists', 'a'))}\" 0",
            "RPUSH l a b c",
            "EVAL \"return redis.call('lrange', 'l', 0, -1)\" 0",
            "EVAL \"return redis.call('mget', 'a', 'nosuch', 'a')\" 0",
            "EVAL \"local r = redis.call('mget', 'nosuch'); return {type(r[1]), tostring(r[1])}\" 0",
            "EVAL \"redis.setresp(3); local r = redis.call('mget', 'nosuch'); return {type(r[1]), #r}\" 0",
            "HSET h f1 v1 f2 v2",
            "EVAL \"return redis.call('hgetall', 'h')\" 0",
            "EVAL \"redis.setresp(3); local r = redis.call('hgetall', 'h'); return {r.map.f1, r.map.f2}\" 0",
            "EVAL \"redis.setresp(3); return redis.call('hgetall', 'h')\" 0",
            "SADD s m1",
            "EVAL \"return redis.call('smembers', 's')\" 0",
            "EVAL \"redis.setresp(3); local r = redis.call('smembers', 's'); return tostring(r.set.m1)\" 0",
            "EVAL \"redis.setresp(3); return redis.call('smembers', 's')\" 0",
            "ZADD z 1.5 m",
            "EVAL \"return redis.call('zscore', 'z', 'm')\" 0",
            "EVAL \"redis.setresp(3); local r = redis.call('zscore', 'z', 'm'); return {type(r), tostring(r.double)}\" 0",
            "EVAL \"redis.setresp(3); return redis.call('zscore', 'z', 'm')\" 0",
            "EVAL \"return redis.call('zrange', 'z', 0, -1, 'withscores')\" 0",
            "EVAL \"redis.setresp(3); return redis.call('zrange', 'z', 0, -1, 'withscores')\" 0",
            "EVAL \"redis.setresp(3); return redis.call('hexists', 'h', 'f1')\" 0",
            "XADD x 1-1 f v",
            "EVAL \"return redis.call('xrange', 'x', '-', '+')\" 0",
            "EVAL \"return {err=5}\" 0",
            "EVAL \"return {ok=5}\" 0",
            "EVAL \"return {double='x'}\" 0",
            "EVAL \"return {double=2}\" 0",
            "EVAL \"return {big_number='12\\r\\n34'}\" 0",
            "EVAL \"return {verbatim_string={format='txt', string='hello'}}\" 0",
            "EVAL \"return {map={a={1,2}}, set={}}\" 0",
            "EVAL \"return {set={x=true}}\" 0",
            "EVAL \"return {1, {2, {3, {4, {5}}}}, 'x'}\" 0",
            "EVAL \"local t = {}; for i = 1, 100 do t[i] = i end; return t\" 0",
            "EVAL \"return {1, 2, nil, 4}\" 0",
            "EVAL \"return {[2] = 'x'}\" 0",
            "EVAL \"return function() end\" 0",
            "EVAL \"error({err=5})\" 0",
            "EVAL \"error(7)\" 0",
            "EVAL \"\nlocal x = 1\nreturn redis.call('nosuch')\" 0",
            "EVAL \"local c = coroutine.create(function() return redis.call('get', 'a') end); return {coroutine.resume(c)}\" 0",
            "EVAL \"local ok, e = pcall(redis.call, 'lpush', 'a', 'x'); return {tostring(ok), e}\" 0",
            "EVAL \"return redis.call('set', KEYS[1], ARGV[1], ARGV[2], ARGV[3])\" 1 kx vx EX 100",
            "EVAL \"return redis.call('ttl', KEYS[1])\" 1 kx",
        ],
    );
}

#[test]
fn libraries() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "libraries",
        &[
            "EVAL \"return cjson.encode({1, 2, 'three', {a=false}})\" 0",
            "EVAL \"return cjson.encode({})\" 0",
            "EVAL \"return cjson.encode('a\\\"b/c')\" 0",
            "EVAL \"return cjson.encode(1.5)\" 0",
            "EVAL \"local t = cjson.decode('[1,2,{\\\"x\\\":\\\"y\\\"}]'); return {t[1], t[2], t[3].x}\" 0",
            "EVAL \"return cjson.decode('{\\\"a\\\":[true,false]}').a[1]\" 0",
            "EVAL \"return bit.band(0xff, 0x0f, 0x3)\" 0",
            "EVAL \"return bit.bor(1, 2, 4)\" 0",
            "EVAL \"return bit.bxor(5, 3)\" 0",
            "EVAL \"return bit.bnot(0)\" 0",
            "EVAL \"return bit.lshift(1, 31)\" 0",
            "EVAL \"return bit.rshift(-1, 28)\" 0",
            "EVAL \"return bit.arshift(-256, 4)\" 0",
            "EVAL \"return bit.rol(0x12345678, 8)\" 0",
            "EVAL \"return bit.ror(0x12345678, 8)\" 0",
            "EVAL \"return bit.tohex(255)\" 0",
            "EVAL \"return bit.tohex(255, -4)\" 0",
            "EVAL \"return bit.tobit(2^32 + 5)\" 0",
            "EVAL \"return bit.bswap(0x12345678)\" 0",
            "EVAL \"return string.format('%d-%s', 5, 'x')\" 0",
            "EVAL \"return table.concat({'a','b'}, ',')\" 0",
            "EVAL \"return math.floor(3.7)\" 0",
            "EVAL \"return type(math.random())\" 0",
            "EVAL \"return tonumber('12') + 1\" 0",
        ],
    );
}

#[test]
fn functions() {
    let (redis, velo) = servers();
    let library = "#!lua name=mylib\n\
        redis.register_function('echo_keys', function(keys, args) return {keys[1], args[1]} end)\n\
        redis.register_function{function_name='ro_get', callback=function(keys) return redis.call('get', keys[1]) end, flags={'no-writes'}, description='reads'}\n\
        redis.register_function('setter', function(keys, args) return redis.call('set', keys[1], args[1]) end)\n\
        redis.register_function('fails', function() return redis.call('nosuch') end)";
    let load = format!("FUNCTION LOAD \"{}\"", library.replace('\'', "\\'").replace('\n', "\\n"));
    compare(
        &redis,
        &velo,
        "functions",
        &[
            "FUNCTION FLUSH",
            &load,
            &load,
            &format!("FUNCTION LOAD REPLACE \"{}\"", library.replace('\'', "\\'").replace('\n', "\\n")),
            "FCALL echo_keys 1 k a",
            "FCALL setter 1 k v",
            "FCALL ro_get 1 k",
            "FCALL_RO ro_get 1 k",
            "FCALL_RO setter 1 k v",
            "FCALL fails 0",
            "FCALL nosuch 0",
            "FCALL echo_keys x",
            "FCALL echo_keys -1",
            "FCALL echo_keys 5 a",
            // Redis lists a library's functions in its hash table's order; Velo sorts them by name.
            "!FUNCTION LIST",
            "!FUNCTION LIST WITHCODE",
            "!FUNCTION LIST LIBRARYNAME my*",
            "FUNCTION LIST LIBRARYNAME nomatch*",
            "FUNCTION LIST LIBRARYNAME",
            "FUNCTION LIST bogus",
            "FUNCTION LOAD \"#!lua name=other\\nredis.register_function('echo_keys', function() end)\"",
            "FUNCTION LOAD \"#!lua name=bad\\nx = 1\"",
            "FUNCTION LOAD \"#!lua name=bad\\nredis.call('ping')\"",
            "FUNCTION LOAD \"#!lua name=bad\\nreturn 1\"",
            "FUNCTION LOAD \"#!lua name=bad\\nlocal a =\"",
            "FUNCTION LOAD \"#!lua name=bad-name\\nreturn 1\"",
            "FUNCTION LOAD \"#!lua\\nreturn 1\"",
            "FUNCTION LOAD \"#!js name=x\\nreturn 1\"",
            "FUNCTION LOAD \"no shebang\"",
            "FUNCTION LOAD \"#!lua name=x foo=bar\\nreturn 1\"",
            "FUNCTION LOAD \"#!lua name=bad\\nredis.register_function('f')\"",
            "FUNCTION LOAD \"#!lua name=bad\\nredis.register_function('f', 1)\"",
            "FUNCTION LOAD \"#!lua name=bad\\nredis.register_function{function_name='f'}\"",
            "FUNCTION LOAD \"#!lua name=bad\\nredis.register_function{function_name='f', callback=function() end, flags={'bogus'}}\"",
            "FUNCTION LOAD \"#!lua name=bad\\nredis.register_function('f', function() end)\\nredis.register_function('f', function() end)\"",
            "FUNCTION LOAD BOGUS \"#!lua name=x\\n\"",
            "FUNCTION DELETE nolib",
            "FUNCTION DELETE mylib",
            "FCALL echo_keys 1 k a",
            "FUNCTION LOAD \"#!lua name=one\\nredis.register_function{function_name='only', callback=function() return 1 end, flags={'no-writes', 'allow-stale'}}\"",
            "FUNCTION LIST",
            "FUNCTION LIST WITHCODE LIBRARYNAME on*",
            "FUNCTION FLUSH bogus",
            "FUNCTION RESTORE garbage",
            "FUNCTION RESTORE garbage BOGUS",
            "FUNCTION KILL",
        ],
    );
}

fn bulk(reply: &[u8]) -> Vec<u8> {
    let text = reply.iter().position(|&b| b == b'\n').expect("bulk header") + 1;
    reply[text..reply.len() - 2].to_vec()
}

#[test]
fn function_dump_restore_across_servers() {
    let (redis, velo) = servers();
    let (mut r, mut v) = (Conn::connect(redis.port), Conn::connect(velo.port));
    // Short and unrepetitive: Redis stores it without LZF compression, so the payloads match byte for byte.
    let code = "#!lua name=l1\nredis.register_function('f1', function() return 1 end)";
    for conn in [&mut r, &mut v] {
        conn.cmd(&["FUNCTION", "FLUSH"]);
        assert_eq!(conn.cmd(&["FUNCTION", "LOAD", code]), b"$2\r\nl1\r\n");
    }
    let (redis_dump, velo_dump) = (bulk(&r.cmd(&["FUNCTION", "DUMP"])), bulk(&v.cmd(&["FUNCTION", "DUMP"])));
    assert_eq!(redis_dump, velo_dump, "FUNCTION DUMP payloads differ");
    // A larger library Redis compresses: Velo restores Redis's payload, and Redis restores Velo's.
    let big = format!(
        "#!lua name=big\n{}",
        (0..20).map(|i| format!("redis.register_function('g{i}', function() return {i} end)\n")).collect::<String>()
    );
    r.cmd(&["FUNCTION", "FLUSH"]);
    assert_eq!(r.cmd(&["FUNCTION", "LOAD", &big]), b"$3\r\nbig\r\n");
    let redis_big = bulk(&r.cmd(&["FUNCTION", "DUMP"]));
    assert_eq!(v.cmd_bytes(&[b"FUNCTION", b"RESTORE", &redis_big, b"FLUSH"]), b"+OK\r\n");
    assert_eq!(v.cmd(&["FCALL", "g7", "0"]), b":7\r\n");
    assert_eq!(v.cmd_bytes(&[b"FUNCTION", b"RESTORE", &redis_big]), b"-ERR Library big already exists\r\n");
    assert_eq!(v.cmd_bytes(&[b"FUNCTION", b"RESTORE", &redis_big, b"REPLACE"]), b"+OK\r\n");
    let velo_big = bulk(&v.cmd(&["FUNCTION", "DUMP"]));
    r.cmd(&["FUNCTION", "FLUSH"]);
    assert_eq!(r.cmd_bytes(&[b"FUNCTION", b"RESTORE", &velo_big]), b"+OK\r\n");
    assert_eq!(r.cmd(&["FCALL", "g19", "0"]), b":19\r\n");
    let mut corrupt = velo_big.clone();
    corrupt[5] ^= 1;
    assert_eq!(
        v.cmd_bytes(&[b"FUNCTION", b"RESTORE", &corrupt]),
        b"-ERR DUMP payload version or checksum are wrong\r\n"
    );
}

#[test]
fn functions_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut velo = TestServer::start_in(dir.path(), &["--fsync", "always"]);
    let mut conn = velo.connect();
    let code = "#!lua name=keep\nredis.register_function('kept', function(keys, args) return args[1] end)";
    assert_eq!(conn.cmd(&["FUNCTION", "LOAD", code]), b"$4\r\nkeep\r\n");
    assert_eq!(conn.cmd(&["SCRIPT", "LOAD", "return 1"]), b"$40\r\ne0e1f9fabfc9d4800c877a703b823ac0578ff8db\r\n");
    velo.kill9();
    let velo = TestServer::start_in(dir.path(), &[]);
    let mut conn = velo.connect();
    assert_eq!(conn.cmd(&["FCALL", "kept", "0", "hello"]), b"$5\r\nhello\r\n");
    // The script cache is not persisted, as in Redis.
    assert_eq!(conn.cmd(&["SCRIPT", "EXISTS", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"]), b"*1\r\n:0\r\n");
    assert_eq!(conn.cmd(&["FUNCTION", "DELETE", "keep"]), b"+OK\r\n");
    drop(velo);
    let velo = TestServer::start_in(dir.path(), &[]);
    assert_eq!(velo.connect().cmd(&["FCALL", "kept", "0"]), b"-ERR Function not found\r\n");
}

#[test]
fn watch_sees_script_writes() {
    let velo = TestServer::start();
    let (mut a, mut b) = (velo.connect(), velo.connect());
    a.cmd(&["WATCH", "w"]);
    a.cmd(&["MULTI"]);
    a.cmd(&["SET", "w", "from-a"]);
    b.cmd(&["EVAL", "return redis.call('set', 'w', 'from-script')", "0"]);
    assert_eq!(a.cmd(&["EXEC"]), b"*-1\r\n");
}

/// Transfers between keys in different slots from many clients; a reader never sees the total change.
#[test]
fn scripts_are_atomic_across_slots() {
    let velo = TestServer::start();
    let keys = ["acct:{a}", "acct:{b}", "acct:{c}", "acct:{d}"];
    let mut setup = velo.connect();
    for key in keys {
        setup.cmd(&["SET", key, "1000"]);
    }
    let transfer = "local from = tonumber(redis.call('get', KEYS[1])); redis.call('set', KEYS[1], from - ARGV[1]); \
                    redis.call('incrby', KEYS[2], ARGV[1]); return 1";
    let port = velo.port;
    let writers: Vec<_> = (0..4)
        .map(|w| {
            std::thread::spawn(move || {
                let mut conn = Conn::connect(port);
                for i in 0..150 {
                    let (from, to) = (keys[(w + i) % 4], keys[(w + i + 1) % 4]);
                    assert_eq!(conn.cmd(&["EVAL", transfer, "2", from, to, "7"]), b":1\r\n");
                }
            })
        })
        .collect();
    let mut reader = velo.connect();
    let mut checks = 0;
    while !writers.iter().all(|w| w.is_finished()) {
        let reply = String::from_utf8(reader.cmd(&["MGET", keys[0], keys[1], keys[2], keys[3]])).unwrap();
        let total: i64 = reply.lines().filter_map(|l| l.parse::<i64>().ok()).sum();
        assert_eq!(total, 4000, "a reader saw a script half done: {reply}");
        checks += 1;
    }
    writers.into_iter().for_each(|w| w.join().unwrap());
    assert!(checks > 0);
}

/// A lock with an owner token: acquire (SET NX PX), extend and release only by the owner, contended.
#[test]
fn lock_under_contention() {
    let velo = TestServer::start();
    let release = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
    let extend = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";
    let port = velo.port;
    let workers: Vec<_> = (0..4)
        .map(|w| {
            std::thread::spawn(move || {
                let mut conn = Conn::connect(port);
                let mut held = 0;
                for i in 0..100 {
                    let token = format!("owner-{w}-{i}");
                    if conn.cmd(&["SET", "lock", &token, "NX", "PX", "10000"]) == b"+OK\r\n" {
                        held += 1;
                        // Inside the critical section: the counter is only ever changed by the holder.
                        let before = conn.cmd(&["GET", "guarded"]);
                        assert_eq!(conn.cmd(&["EVAL", extend, "1", "lock", &token, "10000"]), b":1\r\n");
                        assert_eq!(conn.cmd(&["EVAL", release, "1", "lock", "someone-else"]), b":0\r\n");
                        assert_eq!(conn.cmd(&["GET", "guarded"]), before);
                        conn.cmd(&["INCR", "guarded"]);
                        assert_eq!(conn.cmd(&["EVAL", release, "1", "lock", &token]), b":1\r\n");
                    }
                }
                held
            })
        })
        .collect();
    let held: i64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert_eq!(
        velo.connect().cmd(&["GET", "guarded"]),
        format!("${}\r\n{held}\r\n", held.to_string().len()).into_bytes()
    );
}

/// A sliding-window rate limiter on a sorted set and a job queue with a visibility timeout.
#[test]
fn rate_limiter_and_job_queue() {
    let velo = TestServer::start();
    let mut conn = velo.connect();
    let limiter = "local now = tonumber(ARGV[1]); local window = tonumber(ARGV[2]); local limit = tonumber(ARGV[3]); \
        redis.call('zremrangebyscore', KEYS[1], '-inf', now - window); \
        if redis.call('zcard', KEYS[1]) < limit then redis.call('zadd', KEYS[1], now, ARGV[4]); \
        redis.call('pexpire', KEYS[1], window); return 1 end; return 0";
    let mut allowed = 0;
    for i in 0..20 {
        let now = (1000 + i * 10).to_string();
        let reply = conn.cmd(&["EVAL", limiter, "1", "rl", &now, "100", "5", &format!("req{i}")]);
        allowed += i64::from(reply == b":1\r\n");
    }
    // 20 requests 10 ms apart in a 100 ms window of 5: 5 allowed per 100 ms, so 10 in 200 ms.
    assert_eq!(allowed, 10);
    let claim = "local job = redis.call('rpoplpush', KEYS[1], KEYS[2]); if job then \
        redis.call('zadd', KEYS[3], ARGV[1] + ARGV[2], job) end; return job";
    let requeue =
        "local expired = redis.call('zrangebyscore', KEYS[3], '-inf', ARGV[1]); for _, job in ipairs(expired) do \
        redis.call('lrem', KEYS[2], 1, job); redis.call('zrem', KEYS[3], job); redis.call('lpush', KEYS[1], job) end; \
        return #expired";
    conn.cmd(&["RPUSH", "jobs", "j1", "j2"]);
    assert_eq!(conn.cmd(&["EVAL", claim, "3", "jobs", "working", "deadlines", "100", "50"]), b"$2\r\nj2\r\n");
    assert_eq!(conn.cmd(&["EVAL", requeue, "3", "jobs", "working", "deadlines", "120"]), b":0\r\n");
    assert_eq!(conn.cmd(&["EVAL", requeue, "3", "jobs", "working", "deadlines", "151"]), b":1\r\n");
    assert_eq!(conn.cmd(&["LRANGE", "jobs", "0", "-1"]), b"*2\r\n$2\r\nj2\r\n$2\r\nj1\r\n");
    assert_eq!(conn.cmd(&["LLEN", "working"]), b":0\r\n");
}

#[test]
fn busy_script_and_script_kill() {
    let velo = TestServer::start();
    let mut admin = velo.connect();
    assert_eq!(admin.cmd(&["CONFIG", "SET", "lua-time-limit", "100"]), b"+OK\r\n");
    let port = velo.port;
    let runner = std::thread::spawn(move || Conn::connect(port).cmd(&["EVAL", "while true do end", "0"]));
    std::thread::sleep(Duration::from_millis(300));
    let mut other = velo.connect();
    assert_eq!(
        other.cmd(&["GET", "x"]),
        b"-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n"
    );
    assert_eq!(
        other.cmd(&["FUNCTION", "KILL"]),
        b"-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n"
    );
    assert_eq!(other.cmd(&["SCRIPT", "KILL"]), b"+OK\r\n");
    let reply = String::from_utf8(runner.join().unwrap()).unwrap();
    assert!(reply.starts_with("-ERR Script killed by user with SCRIPT KILL..."), "{reply}");
    assert_eq!(other.cmd(&["SCRIPT", "KILL"]), b"-NOTBUSY No scripts in execution right now.\r\n");
    // A script that wrote cannot be killed; it ends on its own (at the second boundary after next: it runs
    // 1 to 2 s whenever it starts, so the kill 300 ms in always finds it running).
    let started = Instant::now();
    let runner = std::thread::spawn(move || {
        Conn::connect(port).cmd(&[
            "EVAL",
            "redis.call('set', 'w', 1); local t = redis.call('time'); local s = tonumber(t[1]) + 2; \
             while tonumber(redis.call('time')[1]) < s do end; return 'done'",
            "0",
        ])
    });
    std::thread::sleep(Duration::from_millis(300));
    let reply = other.cmd(&["SCRIPT", "KILL"]);
    assert!(reply.starts_with(b"-UNKILLABLE Sorry the script already executed write commands"), "{reply:?}");
    assert_eq!(runner.join().unwrap(), b"$4\r\ndone\r\n");
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert_eq!(other.cmd(&["GET", "w"]), b"$1\r\n1\r\n");
}

/// A script cannot catch SCRIPT KILL: a loop of protected calls (pcall, xpcall, a coroutine) that swallows
/// every error still dies when killed, as Redis's makes sure (its hook then fires on every line).
#[test]
fn script_kill_cannot_be_caught() {
    let velo = TestServer::start();
    let mut admin = velo.connect();
    assert_eq!(admin.cmd(&["CONFIG", "SET", "lua-time-limit", "100"]), b"+OK\r\n");
    let port = velo.port;
    let work = "local x = 0 for i = 1, 1000 do x = x + i end";
    for catcher in [
        format!("while true do pcall(function() {work} end) end"),
        format!("while true do xpcall(function() {work} end, function(e) return e end) end"),
        format!("while true do coroutine.resume(coroutine.create(function() {work} end)) end"),
    ] {
        let script = catcher.clone();
        let runner = std::thread::spawn(move || Conn::connect(port).cmd(&["EVAL", &script, "0"]));
        std::thread::sleep(Duration::from_millis(300));
        let mut other = velo.connect();
        assert_eq!(other.cmd(&["SCRIPT", "KILL"]), b"+OK\r\n", "{catcher}");
        let reply = String::from_utf8(runner.join().unwrap()).unwrap();
        assert!(reply.starts_with("-ERR Script killed by user with SCRIPT KILL..."), "{catcher}: {reply}");
        assert_eq!(other.cmd(&["PING"]), b"+PONG\r\n");
    }
    // Errors the script raises itself are still caught while nobody kills it.
    assert_eq!(admin.cmd(&["EVAL", "local ok = pcall(error, 'x') return ok and 1 or 0", "0"]), b":0\r\n");
}

/// An endless script under the default busy threshold (5 s) must not take its worker with it: other
/// clients are answered BUSY once the threshold passes (not left waiting for ever), new connections are
/// accepted, and SIGTERM stops the server. The script starts on a worker thread and hands that worker's
/// other tasks off from the Lua hook; a lost hand-off would leave them stuck.
#[test]
fn endless_script_under_the_default_threshold_leaves_the_server_answering() {
    let mut velo = TestServer::start();
    let port = velo.port;
    let _runner = std::thread::spawn(move || Conn::connect(port).cmd(&["EVAL", "while true do end", "0"]));
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..3 {
        let started = Instant::now();
        let mut other = velo.connect();
        assert_eq!(
            other.cmd(&["PING"]),
            b"-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n"
        );
        assert!(started.elapsed() < Duration::from_secs(10), "BUSY took {:?}", started.elapsed());
    }
    let started = Instant::now();
    assert!(velo.terminate().is_some(), "SIGTERM did not stop the server within 20 s");
    assert!(started.elapsed() < Duration::from_secs(10), "SIGTERM took {:?}", started.elapsed());
}

#[test]
fn struct_and_cmsgpack() {
    let (redis, velo) = servers();
    // h(s): the bytes of s in hex, so that packed strings compare as text.
    compare(
        &redis,
        &velo,
        "struct_and_cmsgpack",
        &[
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return h(struct.pack('>i4', 1))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return h(struct.pack('<i4', -2))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return h(struct.pack('bBhHlLT', -1, 255, -300, 65535, -5, 2^40, 7))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return h(struct.pack('>I3i2', 70000, -1))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return h(struct.pack('!4 b i', 1, 2))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return h(struct.pack('!b d', 1, 1.5))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return h(struct.pack('>f d', 1.25, -0.1))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return h(struct.pack('c3 s c0', 'abcdef', 'zz', 'q'))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return h(struct.pack('xxb', 9))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return h(struct.pack('i12', -3))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return h(struct.pack('>i9', 2^62))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return h(struct.pack('i', '42'))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return h(struct.pack('l', 2^63))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return h(struct.pack('l', -2^63))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return {struct.unpack('>i4', struct.pack('>i4', -123456))}\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return {struct.unpack('bBhHlL', struct.pack('bBhHlL', -1, 255, -300, 65535, -5, 2^40))}\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return {struct.unpack('<I2', 'ab')}\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return {struct.unpack('>I2', 'ab', 1)}\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return {struct.unpack('i1', 'abc', 3)}\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return {struct.unpack('i1', 'abc', -1)}\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return {struct.unpack('s c2 c0', 'hi' .. string.char(0) .. '03xyzw')}\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return {struct.unpack('b c0', string.char(2) .. 'hello')}\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return {struct.unpack('!4 b i', struct.pack('!4 b i', 1, 2))}\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return tostring(struct.unpack('d', struct.pack('d', 0.1)))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return tostring(struct.unpack('f', struct.pack('f', 0.1)))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return {struct.unpack('i12', struct.pack('i12', -3))}\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return {struct.unpack('I9', string.rep(string.char(255), 9))}\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return struct.size('bhilLdf')\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return struct.size('!8 b d')\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return struct.size('c10 x i3')\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return struct.size('z')\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return struct.size('s')\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return struct.size('c0')\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return struct.pack('z', 1)\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return struct.pack('i', 'x')\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return struct.pack('i')\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return struct.pack('c5', 'ab')\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return struct.pack('!3i', 1)\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return struct.pack('i40', 1)\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return struct.pack('i99999999999', 1)\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return struct.pack({}, 1)\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return struct.unpack('>i4', 'ab')\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return struct.unpack('i', 'abcd', 0)\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return struct.unpack('c0', 'abc')\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return struct.unpack('s', 'abc')\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return struct.unpack('i', 'abcd', 'x')\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; local ok, e = pcall(struct.pack, 'z'); return e\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; local ok, e = pcall(struct.unpack, 'i'); return e\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return h(cmsgpack.pack(0, 127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return h(cmsgpack.pack(-1, -32, -33, -128, -129, -32768, -32769, -2147483648, -2147483649))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return h(cmsgpack.pack(2^53, -2^53, 2^63, -2^63, 2^64))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return h(cmsgpack.pack(1.5, 0.1, -0.25, 1/0, -1/0, 3.4e38, 1e300))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return h(cmsgpack.pack('', 'abc', string.rep('x', 31), string.rep('y', 32)))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return h(cmsgpack.pack(string.rep('z', 300)))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return #cmsgpack.pack(string.rep('z', 70000))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return h(cmsgpack.pack(true, false, nil))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return h(cmsgpack.pack({}))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return h(cmsgpack.pack({1, 2, 3}))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return h(cmsgpack.pack({a=1}))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return h(cmsgpack.pack({1, 2, nil, 4}))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return h(cmsgpack.pack({[1]=1, [3]=3}))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return h(cmsgpack.pack({[1.5]='x'}))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return h(cmsgpack.pack({[0]='x'}))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return h(cmsgpack.pack({x={y={z={1,2}}}, n=5}))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; local t = {}; for i = 1, 20 do t[i] = i end; return h(cmsgpack.pack(t))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; local t = {}; for i = 1, 70000 do t[i] = i % 3 end; return #cmsgpack.pack(t)\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; local t = {}; for i = 1, 20 do t['k' .. i] = i end; return #cmsgpack.pack(t)\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; local t = {}; t.self = t; return h(cmsgpack.pack(t))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; local t = {}; local c = t; for i = 1, 20 do c[1] = {}; c = c[1] end; return h(cmsgpack.pack(t))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return h(cmsgpack.pack(function() end))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return cmsgpack.pack()\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return {cmsgpack.unpack(cmsgpack.pack(1, 'two', {3, {4}}, true))}\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; local t = cmsgpack.unpack(cmsgpack.pack({a=1, b={c='d'}})); return {t.a, t.b.c}\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return {cmsgpack.unpack(cmsgpack.pack(-2^63, 2^53, 4294967296, -129, 1.5))}\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; local a, b = cmsgpack.unpack(cmsgpack.pack(0.1, 1e300)); return {tostring(a), tostring(b)}\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return tostring(cmsgpack.unpack(string.char(0xcf, 255,255,255,255,255,255,255,255)))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return tostring(cmsgpack.unpack(string.char(0xcf, 0,0,0,0,0,0,0,1)))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return tostring(cmsgpack.unpack(string.char(0xd3, 128,0,0,0,0,0,0,0)))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return {cmsgpack.unpack(string.char(0xd0, 200, 0xd1, 255, 0, 0xd2, 255, 255, 255, 0, 0xe0, 0x7f))}\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return cmsgpack.unpack(string.char(0xd9, 3) .. 'abc' .. string.char(0xda, 0, 2) .. 'de')\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return {cmsgpack.unpack(string.char(0xc2, 0xc3))}\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return {cmsgpack.unpack(string.char(0xc0, 5))}\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return cmsgpack.unpack('')\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return cmsgpack.unpack(string.char(0xc1))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return cmsgpack.unpack(string.char(0xc4, 1, 65))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return cmsgpack.unpack(string.char(0xdc, 0))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return cmsgpack.unpack(string.char(0xcd, 1))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return cmsgpack.unpack(string.char(0xa5) .. 'ab')\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return cmsgpack.unpack(string.char(0xdb, 0, 0, 0, 9) .. 'ab')\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return cmsgpack.unpack(string.char(0x81, 0xc0, 1))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return cmsgpack.unpack(1)\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return cmsgpack.unpack({})\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return {cmsgpack.unpack_one(cmsgpack.pack(1, 2), 0)}\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return {cmsgpack.unpack_one(cmsgpack.pack(1, 2), 1)}\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return {cmsgpack.unpack_one(cmsgpack.pack(1, 2))}\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return {cmsgpack.unpack_one(cmsgpack.pack(1, 2), -1)}\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return {cmsgpack.unpack_one(cmsgpack.pack(1, 2), 5)}\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return {cmsgpack.unpack_one(cmsgpack.pack(1, 2), 2)}\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return {cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3, 4), 2)}\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return {cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3, 4), 2, 2)}\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return {cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3, 4), 0, 0)}\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return {cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3, 4), 10, 1)}\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return {cmsgpack.unpack_limit(cmsgpack.pack(1, 2), -1)}\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return cmsgpack.unpack_limit('a')\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return cmsgpack.unpack_limit('a', 'x')\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return {cmsgpack._NAME, cmsgpack._VERSION, cmsgpack._COPYRIGHT, cmsgpack._DESCRIPTION}\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; local ok, e = pcall(cmsgpack.unpack, string.char(0xc1)); return e\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; cmsgpack.pack = nil\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; struct.x = 1\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return struct.pack('ii', 1)\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return struct.pack('c2')\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return type(cmsgpack.unpack(string.rep(string.char(0x91), 3999) .. string.char(1)))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return type(cmsgpack.unpack(string.rep(string.char(0x91), 4000) .. string.char(1)))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return type(cmsgpack.unpack(string.rep(string.char(0x81, 1), 3999) .. string.char(1)))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return type(cmsgpack.unpack(string.rep(string.char(0x81, 1), 4000) .. string.char(1)))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return select('#', cmsgpack.unpack(string.rep(string.char(1), 7999)))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return select('#', cmsgpack.unpack(string.rep(string.char(1), 8000)))\" 0",
            "EVAL \"local function h(s) return (string.gsub(s, '.', function(c) return string.format('%02x', string.byte(c)) end)) end; return select('#', cmsgpack.unpack_limit(string.rep(string.char(1), 9000), 100, 10))\" 0",
        ],
    );
}

#[test]
fn script_debug() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "script_debug",
        &[
            "SCRIPT DEBUG NO",
            "SCRIPT DEBUG no",
            "SCRIPT DEBUG maybe",
            "SCRIPT DEBUG",
            "SCRIPT DEBUG NO extra",
            "MULTI",
            "SCRIPT DEBUG NO",
            "EXEC",
            "EVAL \"return 1\" 0",
        ],
    );
    // No Lua debugger: YES and SYNC are refused, not accepted and ignored.
    let mut conn = velo.connect();
    for mode in ["YES", "sync"] {
        assert_eq!(
            conn.cmd(&["SCRIPT", "DEBUG", mode]),
            b"-ERR SCRIPT DEBUG YES/SYNC is not supported: Velo has no Lua debugger (LDB); use SCRIPT DEBUG NO\r\n"
        );
    }
}

/// INFO's scripting fields follow the caches and the interpreters.
#[test]
fn info_scripting_memory() {
    let velo = TestServer::start();
    let mut conn = velo.connect();
    let field = |conn: &mut Conn, name: &str| -> u64 {
        let info = String::from_utf8(conn.cmd(&["INFO", "memory"])).unwrap();
        let line = info.lines().find(|l| l.starts_with(&format!("{name}:"))).unwrap_or_else(|| panic!("{name}"));
        line[name.len() + 1..].trim().parse().unwrap()
    };
    assert_eq!(field(&mut conn, "number_of_cached_scripts"), 0);
    let lua_before = field(&mut conn, "used_memory_lua");
    assert!(lua_before > 10_000, "the interpreter's own memory: {lua_before}");
    assert_eq!(field(&mut conn, "used_memory_vm_eval"), lua_before);
    let scripts_before = field(&mut conn, "used_memory_scripts_eval");
    conn.cmd(&["SCRIPT", "LOAD", "return 1"]);
    conn.cmd(&["SCRIPT", "LOAD", &format!("return '{}'", "x".repeat(5000))]);
    assert_eq!(field(&mut conn, "number_of_cached_scripts"), 2);
    assert!(field(&mut conn, "used_memory_scripts_eval") > scripts_before + 5000);
    assert!(field(&mut conn, "used_memory_lua") > lua_before);
    let functions_before = field(&mut conn, "used_memory_functions");
    let library = "#!lua name=lib\nredis.register_function('f1', function() return 1 end)\n\
                   redis.register_function('f2', function() return 2 end)";
    assert!(conn.cmd(&["FUNCTION", "LOAD", library]).starts_with(b"$3"));
    assert_eq!(field(&mut conn, "number_of_functions"), 2);
    assert_eq!(field(&mut conn, "number_of_libraries"), 1);
    assert!(field(&mut conn, "used_memory_functions") > functions_before);
    assert!(field(&mut conn, "used_memory_vm_functions") > 0);
    assert_eq!(
        field(&mut conn, "used_memory_vm_total"),
        field(&mut conn, "used_memory_vm_eval") + field(&mut conn, "used_memory_vm_functions")
    );
    assert_eq!(
        field(&mut conn, "used_memory_scripts"),
        field(&mut conn, "used_memory_scripts_eval") + field(&mut conn, "used_memory_functions")
    );
    conn.cmd(&["SCRIPT", "FLUSH"]);
    conn.cmd(&["FUNCTION", "FLUSH"]);
    assert_eq!(field(&mut conn, "number_of_cached_scripts"), 0);
    assert_eq!(field(&mut conn, "number_of_functions"), 0);
    assert_eq!(field(&mut conn, "number_of_libraries"), 0);
    assert_eq!(field(&mut conn, "used_memory_functions"), functions_before);
}

/// Redis 7.0 judges key expiry inside a script against the time the script started (`keyIsExpired` with
/// the script's time snapshot; scripting.tcl's "Script block the time during execution"): a key whose
/// TTL passes while the script runs is still there for the script, PTTL reading the live clock says 0;
/// once the script has ended it is gone. Replies checked against redis-server 7.0.15.
#[test]
fn keys_do_not_expire_while_a_script_runs() {
    let server = TestServer::start();
    let mut conn = server.connect();
    let script = "redis.call('set', KEYS[1], '1', 'px', 5) \
        local t0 = redis.call('time') \
        while true do \
            local t = redis.call('time') \
            if (t[1] - t0[1]) * 1000000 + (t[2] - t0[2]) > 20000 then break end \
        end \
        return {redis.call('exists', KEYS[1]), redis.call('pttl', KEYS[1]), redis.call('get', KEYS[1])}";
    assert_eq!(crate::support::resp::show(&conn.cmd(&["EVAL", script, "1", "x"])), "*3⏎:1⏎:0⏎$1⏎1⏎");
    assert_eq!(conn.cmd(&["EXISTS", "x"]), b":0\r\n");
}

/// Pipelines of scripts and plain commands from connections on both runtime workers: a script that finds
/// another connection's script running waits for the script turn as a task (`script::turn`) and resumes
/// its pipeline where it stopped. Every reply comes back in order, each script sees its own writes
/// whole, and no increment is lost.
#[test]
fn pipelined_scripts_from_many_connections_wait_their_turn_in_order() {
    let velo = TestServer::start();
    // Two keys in different slots, changed together: a script never sees them apart.
    let bump = "local a = redis.call('incr', KEYS[1]); local b = redis.call('incr', KEYS[2]); \
                if a ~= b then return redis.error_reply('apart ' .. a .. ' ' .. b) end; return a";
    let port = velo.port;
    let (clients, rounds, depth) = (8, 40, 16);
    let workers: Vec<_> = (0..clients)
        .map(|c| {
            std::thread::spawn(move || {
                let mut conn = Conn::connect(port);
                let mine = format!("own:{c}");
                for round in 0..rounds {
                    let mut batch = Vec::new();
                    for i in 0..depth {
                        if i % 4 == 3 {
                            batch.extend(command(&[b"INCR", mine.as_bytes()]));
                        } else {
                            batch.extend(command(&[b"EVAL", bump.as_bytes(), b"2", b"pair:{x}", b"pair:{y}"]));
                        }
                    }
                    conn.send(&batch);
                    for i in 0..depth {
                        let reply = conn.read_reply();
                        assert_eq!(reply.first(), Some(&b':'), "client {c} round {round} reply {i}: {}", show(&reply));
                        if i % 4 == 3 {
                            let expected = round * depth / 4 + i / 4 + 1;
                            assert_eq!(reply, format!(":{expected}\r\n").into_bytes(), "client {c}: out of order");
                        }
                    }
                }
            })
        })
        .collect();
    workers.into_iter().for_each(|w| w.join().unwrap());
    let scripts = clients * rounds * depth * 3 / 4;
    let mut conn = velo.connect();
    assert_eq!(conn.cmd(&["GET", "pair:{x}"]), format!("${}\r\n{scripts}\r\n", scripts.to_string().len()).into_bytes());
    assert_eq!(conn.cmd(&["GET", "pair:{y}"]), format!("${}\r\n{scripts}\r\n", scripts.to_string().len()).into_bytes());
}

/// A script's command on a named key runs on the worker (no hand-off before it, see `script_call`), and
/// a long walk inside it still hands the worker off once the script has used its budget
/// (`script::current::walk_hook`), with too few Lua instructions for the count hook to see: on a server
/// with one worker thread, another client gets `-BUSY` past the threshold while a script reads a split
/// list of 200,000 elements again and again (without the hand-off it would wait for the script's end).
#[test]
fn a_script_walking_a_huge_collection_hands_its_worker_off() {
    let dir = tempfile::tempdir().unwrap();
    let velo = TestServer::start_in(dir.path(), &["--worker-threads", "1"]);
    let mut conn = velo.connect();
    for batch in 0..20 {
        let mut args = vec!["RPUSH".to_string(), "big".to_string()];
        args.extend((0..10_000).map(|i| format!("element-{batch}-{i}")));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        conn.cmd(&args);
    }
    assert_eq!(conn.cmd(&["LLEN", "big"]), b":200000\r\n");
    assert_eq!(conn.cmd(&["CONFIG", "SET", "busy-reply-threshold", "100"]), b"+OK\r\n");
    let port = velo.port;
    let script = std::thread::spawn(move || {
        let mut conn = Conn::connect(port);
        conn.set_timeout(Duration::from_secs(120));
        let began = Instant::now();
        let reply = conn.cmd(&[
            "EVAL",
            "local n = 0; for i = 1, 40 do n = n + #redis.call('lrange', KEYS[1], 0, -1) end; return n",
            "1",
            "big",
        ]);
        (reply, began.elapsed())
    });
    std::thread::sleep(Duration::from_millis(150));
    let began = Instant::now();
    let reply = conn.cmd(&["PING"]);
    let waited = began.elapsed();
    let script_done = script.is_finished();
    let (script_reply, took) = script.join().unwrap();
    assert_eq!(script_reply, b":8000000\r\n");
    if script_done || took < Duration::from_millis(1000) {
        // Too fast a machine to tell: the script ended before the PING could wait for it.
        return;
    }
    assert!(reply.starts_with(b"-BUSY"), "PING during a long script: {}", show(&reply));
    assert!(waited < took / 2, "PING waited {waited:?} for a script of {took:?}");
}

/// The server's thread count (tokio's blocking pool keeps a thread ten seconds after its last use, so a
/// burst of hand-offs shows here for a while).
fn thread_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map(|tasks| tasks.count()).unwrap_or(0)
}

/// 50 clients sending short scripts while another client's scripts run long (each hands its worker
/// off): the short scripts wait for the script turn as tasks, not each in a thread of its own. Before,
/// every connection whose request came while the gate was closed went through `block_in_place`, and
/// the server grew to 100+ threads (and, on a loaded machine, stayed in that state at 25–280 scripts a
/// second: docs/performance.md, branch `script3`). All scripts complete, and PING answers meanwhile.
#[test]
fn short_scripts_from_many_clients_wait_for_a_long_one_as_tasks() {
    let velo = TestServer::start();
    let (port, pid) = (velo.port, velo.pid());
    let mut conn = velo.connect();
    let short = "return redis.call('incr', KEYS[1])";
    let sha = String::from_utf8(conn.cmd(&["SCRIPT", "LOAD", short])).unwrap();
    let sha = sha.lines().nth(1).unwrap().to_string();
    let threads_before = thread_count(pid);
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let long = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut conn = Conn::connect(port);
            conn.set_timeout(Duration::from_secs(120));
            let mut runs = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) || runs < 3 {
                let reply = conn.cmd(&["EVAL", "local i = 0; while i < 3000000 do i = i + 1 end; return i", "0"]);
                assert_eq!(reply, b":3000000\r\n");
                runs += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            runs
        })
    };
    let (clients, calls) = (50, 40);
    let workers: Vec<_> = (0..clients)
        .map(|c| {
            let sha = sha.clone();
            std::thread::spawn(move || {
                let mut conn = Conn::connect(port);
                conn.set_timeout(Duration::from_secs(120));
                for call in 0..calls {
                    let reply = conn.cmd(&["EVALSHA", &sha, "1", "counter"]);
                    assert_eq!(reply.first(), Some(&b':'), "client {c} call {call}: {}", show(&reply));
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        })
        .collect();
    let began = Instant::now();
    let mut most_threads = 0;
    while !workers.iter().all(|w| w.is_finished()) {
        assert!(began.elapsed() < Duration::from_secs(120), "the short scripts did not finish in 2 minutes");
        assert_eq!(conn.cmd(&["PING"]), b"+PONG\r\n");
        most_threads = most_threads.max(thread_count(pid));
        std::thread::sleep(Duration::from_millis(20));
    }
    workers.into_iter().for_each(|w| w.join().unwrap());
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let long_runs = long.join().unwrap();
    let total = clients * calls;
    assert_eq!(conn.cmd(&["GET", "counter"]), format!("${}\r\n{total}\r\n", total.to_string().len()).into_bytes());
    // Each long script hands off (a thread or two); one thread per waiting connection would be 50 more.
    assert!(
        most_threads < threads_before + 30,
        "{most_threads} threads (from {threads_before}) during {long_runs} long scripts and {total} short ones"
    );
}
