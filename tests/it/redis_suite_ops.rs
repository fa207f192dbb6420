//! Behaviours Redis 7.0's own tcl test suite checks (unit/introspection, pause, slowlog, pubsub,
//! tracking, scripting, functions ...) where Velo differed, each compared with redis-server here since
//! that suite is not part of CI (docs/compat.md, "Redis's own test suite").

use crate::introspection::compare;
use crate::support::{Conn, RedisServer, TestServer};

fn servers() -> (RedisServer, TestServer) {
    (RedisServer::start(), TestServer::start())
}

/// A command as RESP bytes.
fn request(args: &[&str]) -> Vec<u8> {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    crate::support::resp::command(&args)
}

/// unit/introspection "MONITOR can log commands issued by the scripting engine / by functions" and
/// "MONITOR supports redacting command arguments".
#[test]
fn monitor_shows_scripts_before_their_commands_and_redacts_secrets() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "monitor scripts",
        &[
            "2: FUNCTION LOAD REPLACE \"#!lua name=test\nredis.register_function('test', function() return redis.call('set', 'foo', 'bar') end)\"",
            "1: MONITOR",
            "2: EVAL \"redis.call('set',KEYS[1],ARGV[1])\" 1 foo bar",
            "1<",
            "1<",
            "2: FCALL test 0",
            "1<",
            "1<",
            "2: EVAL \"return 1\" 0",
            "1<",
            "2: EVAL \"return redis.call('nosuchcommand')\" 0",
            "1<",
        ],
    );
    // The comparison hides client addresses: a script's commands are shown as run by `lua`.
    for port in [redis.port, velo.port] {
        let mut monitor = Conn::connect(port);
        let mut client = Conn::connect(port);
        assert_eq!(monitor.cmd(&["MONITOR"]), b"+OK\r\n");
        client.cmd(&["EVAL", "redis.call('get', 'k')", "0"]);
        let eval = String::from_utf8_lossy(&monitor.read_reply()).into_owned();
        let call = String::from_utf8_lossy(&monitor.read_reply()).into_owned();
        assert!(
            eval.contains(" [0 127.0.0.1:") && eval.ends_with("\"EVAL\" \"redis.call('get', 'k')\" \"0\"\r\n"),
            "{port}: {eval}"
        );
        assert!(call.contains(" [0 lua] \"get\" \"k\"\r\n"), "{port}: {call}");
    }
    compare(
        &redis,
        &velo,
        "monitor redaction",
        &[
            "1: MONITOR",
            "2: MIGRATE 127.0.0.1 1 key 9 5000",
            "1<",
            "2: MIGRATE 127.0.0.1 1 key 9 5000 AUTH user",
            "1<",
            "2: MIGRATE 127.0.0.1 1 key 9 5000 COPY AUTH2 user password",
            "1<",
            "2: AUTH not-real",
            "1<",
            "2: AUTH not-real not-a-password",
            "1<",
            "2: HELLO 2 AUTH not-real not-a-password",
            "1<",
        ],
    );
}

/// unit/slowlog "SLOWLOG - Some commands can redact sensitive fields" (and CONFIG SET's sensitive
/// parameters).
#[test]
fn slowlog_redacts_secrets_as_redis() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "slowlog redaction",
        &[
            "1: CONFIG SET slowlog-log-slower-than 0",
            "1: SLOWLOG RESET",
            "1: MIGRATE 127.0.0.1 1 key 9 5000 AUTH2 user password",
            "1: CONFIG SET masterauth \"\"",
            "1: CONFIG SET slowlog-log-slower-than -1",
            "1: SLOWLOG LEN",
        ],
    );
    for port in [redis.port, velo.port] {
        let mut conn = Conn::connect(port);
        let log = String::from_utf8_lossy(&conn.cmd(&["SLOWLOG", "GET"])).into_owned();
        assert!(log.contains("$5\r\nAUTH2\r\n$10\r\n(redacted)\r\n$10\r\n(redacted)\r\n"), "{port}: {log}");
        assert!(log.contains("$10\r\nmasterauth\r\n$10\r\n(redacted)\r\n"), "{port}: {log}");
    }
}

/// unit/pause "Test RO scripts are not blocked by pause RO" and the MULTI/EXEC forms: a script that
/// declared `no-writes` is not held by a WRITE pause; one without (or with other flags) is.
#[test]
fn write_pause_lets_no_writes_scripts_through_as_redis() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "pause and script flags",
        &[
            "1: SET x y",
            "1: FUNCTION LOAD REPLACE \"#!lua name=f1\nredis.register_function{function_name='f1', callback=function() return 'hello' end, flags={'no-writes'}}\nredis.register_function('f2', function() return 'w' end)\"",
            "1: SCRIPT LOAD \"#!lua flags=no-writes\nreturn 2\"",
            "0: CLIENT PAUSE 100000 WRITE",
            "1: EVAL \"#!lua flags=no-writes\nreturn 'unique script'\" 0",
            "1: EVAL \"#!lua flags=no-writes\nreturn 'unique script'\" 0",
            "1: EVAL_RO \"return redis.call('GeT', 'x')..' unique script'\" 1 x",
            "1: EVALSHA ae33f9227913b24d053a555637f98260b23bd3a3 0",
            "1: FCALL f1 0",
            "1: FCALL_RO f1 0",
            "2: MULTI",
            "2: EVAL \"#!lua flags=no-writes\nreturn 12\" 0",
            "2: EVAL \"#!lua flags=no-writes\nreturn 13\" 0",
            "2: EXEC",
            "3> EVAL \"#!lua\nreturn 14\" 0",
            "3?",
            "4> FCALL f2 0",
            "4?",
            "5> EVAL \"return 15\" 0",
            "5?",
            "0: CLIENT UNPAUSE",
            "3<",
            "4<",
            "5<",
        ],
    );
}

/// unit/introspection "CLIENT KILL with illegal arguments": Velo's only user is `default`.
#[test]
fn client_kill_of_an_unknown_user_fails_as_redis() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "client kill user",
        &[
            "1: CLIENT KILL USER wrong_user",
            "1: CLIENT KILL USER default ID 999999",
            "1: CLIENT KILL USER nope SKIPME x",
        ],
    );
}

/// unit/introspection "CONFIG sanity" sets every parameter to the value it has: Velo accepts that for
/// the parameters it cannot change at run time (`port`, `bind`) and refuses other values.
#[test]
fn config_set_of_a_fixed_parameter_to_its_value_is_accepted() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "config set same value",
        &["1: CONFIG SET appendfsync everysec", "1: CONFIG GET appendfsync", "1: CONFIG SET daemonize no"],
    );
    let mut conn = Conn::connect(velo.port);
    let port = velo.port.to_string();
    assert_eq!(conn.cmd(&["CONFIG", "SET", "port", &port, "appendfsync", "everysec"]), b"+OK\r\n");
    let other = (velo.port ^ 1).to_string();
    assert_eq!(
        conn.cmd(&["CONFIG", "SET", "port", &other]),
        b"-ERR CONFIG SET failed (possibly related to argument 'port') - can't set immutable config\r\n"
    );
    assert_eq!(conn.cmd(&["CONFIG", "GET", "appendfsync"]), b"*2\r\n$11\r\nappendfsync\r\n$8\r\neverysec\r\n");
}

/// unit/tracking "Tracking only occurs for scripts when a command calls a read-only command": a script
/// that reads makes its caller track the keys the script declared; `_RO` script commands are not tracked
/// themselves.
#[test]
fn tracking_of_scripts_remembers_their_declared_keys_as_redis() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "tracking scripts",
        &[
            "1! HELLO 3",
            "1: CLIENT TRACKING on",
            "2: MSET key1 1 key2 1",
            "1: EVAL \"redis.call('set', 'key3', 'bar')\" 2 key1 key2",
            "2: MSET key2 2 key1 2",
            "1?",
            "1: EVAL \"redis.call('get', 'key3')\" 2 key1 key2",
            "2: MSET key2 2 key1 2",
            "1<",
            "1<",
            "2: SET key3 x",
            "1?",
            "1: EVAL_RO \"redis.call('ping')\" 2 key1 key2",
            "2: MSET key2 2 key1 2",
            "1?",
            "1: EVAL_RO \"redis.call('get', 'key1')\" 2 key1 key2",
            "2: MSET key2 3 key1 3",
            "1<",
            "1<",
            "1: PING",
        ],
    );
}

/// unit/scripting "Scripts can't run XREAD and XREADGROUP with BLOCK option" and unit/functions
/// "test function case insensitive".
#[test]
fn scripts_refuse_xread_block_and_function_names_ignore_case_as_redis() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "scripts and blocking reads",
        &[
            "1: XADD s 1-1 f v",
            "1: XGROUP CREATE s g $",
            "1: EVAL \"return redis.pcall('xread','BLOCK',0,'STREAMS','s','$')\" 1 s",
            "1: EVAL \"return redis.pcall('XREADGROUP','GROUP','g','c','BLOCK',0,'STREAMS','s','>')\" 1 s",
            "1: EVAL \"return redis.pcall('xread','COUNT',1,'STREAMS','s','0')\" 1 s",
            "1: FUNCTION LOAD REPLACE \"#!lua name=test\nredis.register_function('test', function() return 'hello1' end)\"",
            "1: FCALL TEST 0",
            "1: FCALL_RO tEsT 0",
            "1: FUNCTION LOAD \"#!lua name=other\nredis.register_function('TEST', function() return 2 end)\"",
            "1: FCALL test 0",
            "1: FUNCTION FLUSH bad_arg",
            "1: FUNCTION FLUSH sync extra_arg",
            "1: FUNCTION FLUSH SYNC",
        ],
    );
}

/// unit/pause "Test may-replicate commands are rejected in RO scripts".
#[test]
fn read_only_scripts_refuse_may_replicate_commands_as_redis() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "ro scripts and publish",
        &[
            "1: EVAL_RO \"return redis.call('publish','ch','msg')\" 0",
            "1: EVAL \"#!lua flags=no-writes\nreturn redis.call('publish','ch','msg')\" 0",
            "1: EVAL \"#!lua flags=no-writes\nreturn redis.pcall('pfcount','hll')\" 0",
            "1: EVAL \"return redis.call('publish','ch','msg')\" 0",
        ],
    );
}

/// unit/introspection "CLIENT KILL SKIPME YES/NO will kill all clients": a client that kills itself
/// still gets its reply.
#[test]
fn client_killing_itself_gets_its_reply() {
    let velo = TestServer::start();
    for _ in 0..20 {
        let mut conn = Conn::connect(velo.port);
        let id = String::from_utf8_lossy(&conn.cmd(&["CLIENT", "ID"])).trim_matches([':', '\r', '\n']).to_string();
        assert_eq!(conn.cmd(&["CLIENT", "KILL", "ID", &id, "SKIPME", "no"]), b":1\r\n");
    }
}

/// unit/scripting "EVAL - cmsgpack pack/unpack smoke test" and "JSON smoke test": a map of 100000
/// entries packs and unpacks; lua-cjson's settings (`encode_keep_buffer`, `encode_max_depth`,
/// `decode_max_depth`, `encode_invalid_numbers`) exist and act as in Redis.
#[test]
fn cmsgpack_big_maps_and_cjson_settings_as_redis() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "lua libraries",
        &[
            "1: EVAL \"local m = {} for i=1,100000 do m[tostring(i)] = i end local d = cmsgpack.unpack(cmsgpack.pack({m2=m})) return d.m2['99999']\" 0",
            "1: EVAL \"return {tostring(cjson.encode_keep_buffer(false)), tostring(cjson.encode_keep_buffer())}\" 0",
            "1: EVAL \"cjson.encode_max_depth(1) return {pcall(cjson.encode, {a={1}})}\" 0",
            "1: EVAL \"return cjson.encode_max_depth()\" 0",
            "1: EVAL \"cjson.encode_max_depth(1000) return cjson.encode({a={1}})\" 0",
            "1: EVAL \"cjson.decode_max_depth(1) return {pcall(cjson.decode, '{\\\"obj\\\": {\\\"array\\\": [1,2,3,4]}}')}\" 0",
            "1: EVAL \"cjson.decode_max_depth(2) return {pcall(cjson.decode, '[[\\\"]]]\\\"]]')}\" 0",
            "1: EVAL \"return {pcall(cjson.encode, {num1=0/0})}\" 0",
            "1: EVAL \"return tostring(cjson.encode_invalid_numbers(true))\" 0",
            "1: EVAL \"return cjson.encode({1/0, -1/0})\" 0",
            "1: EVAL \"return cjson.encode_invalid_numbers('null')\" 0",
            "1: EVAL \"return cjson.encode({0/0, 1/0})\" 0",
        ],
    );
}

/// unit/tracking "Tracking gets notification on tracking table key eviction": over
/// `tracking-table-max-keys`, remembered keys are invalidated until the table fits.
#[test]
fn tracking_table_max_keys_invalidates_keys_as_redis() {
    let (redis, velo) = servers();
    for port in [redis.port, velo.port] {
        let mut conn = Conn::connect(port);
        conn.set_timeout(std::time::Duration::from_secs(5));
        conn.cmd(&["HELLO", "3"]);
        assert_eq!(conn.cmd(&["CLIENT", "TRACKING", "on"]), b"+OK\r\n");
        assert_eq!(conn.cmd(&["MSET", "key1", "1", "key2", "2"]), b"+OK\r\n");
        assert_eq!(conn.cmd(&["MGET", "key1", "key2"]), b"*2\r\n$1\r\n1\r\n$1\r\n2\r\n");
        conn.send(&request(&["CONFIG", "SET", "tracking-table-max-keys", "1"]));
        // The +OK, and (before or after it, or at the next command) one key's invalidation.
        let mut seen = Vec::new();
        while !seen.iter().any(|r: &Vec<u8>| r.starts_with(b">2\r\n$10\r\ninvalidate")) {
            let reply = conn.read_reply();
            assert!(!reply.is_empty(), "{port}: no invalidation; got {seen:?}");
            seen.push(reply);
            if seen.len() == 1 {
                conn.send(&request(&["PING"]));
            }
        }
        let push = String::from_utf8_lossy(seen.iter().find(|r| r.starts_with(b">2")).expect("push")).into_owned();
        assert!(push.ends_with("*1\r\n$4\r\nkey1\r\n") || push.ends_with("*1\r\n$4\r\nkey2\r\n"), "{port}: {push}");
        let info = String::from_utf8_lossy(&Conn::connect(port).cmd(&["INFO", "stats"])).into_owned();
        assert!(info.contains("tracking_total_keys:1\r\n"), "{port}: {info}");
    }
}
