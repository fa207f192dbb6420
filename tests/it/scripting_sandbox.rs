//! The script sandbox and its bounds, against redis-server where Redis has the same behaviour: the
//! read-only globals and library tables (the "trick global protection" cases of Redis's own test suite),
//! refused binary chunks, the caller's position in library errors, SORT's order in scripts, FUNCTION
//! LOAD's 500 ms timeout; and Velo's own bounds: a script that allocates without end gets "not enough
//! memory" and leaves the interpreter usable, huge replies, `redis.call` with too many arguments.

use std::time::{Duration, Instant};

use crate::support::differential::{compare, servers};
use crate::support::{Conn, RedisServer, TestServer};

#[test]
fn sandbox_tricks_and_binary_chunks() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "sandbox",
        &[
            "EVAL \"setmetatable(_G, {})\" 0",
            "EVAL \"local g = getmetatable(_G) g.__index = {}\" 0",
            "EVAL \"return type(getmetatable(_G).__index)\" 0",
            "EVAL \"redis = function() return 1 end\" 0",
            "EVAL \"_G = {}\" 0",
            "EVAL \"rawset(_G, 'a', 1)\" 0",
            "EVAL \"return a\" 0",
            "EVAL \"rawset(redis, 'call', 1)\" 0",
            "EVAL \"return redis.call('ping')\" 0",
            "EVAL \"redis.call = function() return 1 end\" 0",
            "EVAL \"cjson.encode = function() return 1 end\" 0",
            "EVAL \"cmsgpack.pack = function() return 1 end\" 0",
            "EVAL \"bit.lshift = function() return 1 end\" 0",
            // Strings share one metatable: changing it would change every later script's strings.
            "EVAL \"local m = getmetatable('') m.__index = {}\" 0",
            "EVAL \"return type(getmetatable('').__index)\" 0",
            "EVAL \"return ('abc'):upper()\" 0",
            // No way to the real globals.
            "EVAL \"return getfenv\" 0",
            "EVAL \"return setfenv\" 0",
            "EVAL \"return newproxy\" 0",
            "EVAL \"loadstring('x = 1')()\" 0",
            "EVAL \"return x\" 0",
            "EVAL \"return loadstring('return 7')()\" 0",
            "EVAL \"return load(function() return nil end)()\" 0",
            // Binary chunks are parsed as text: a syntax error, not bytecode run.
            "EVAL \"return loadstring(string.dump(function() return 1 end))()\" 0",
            "EVAL \"return select(2, loadstring(string.dump(function() return 1 end)))\" 0",
            "EVAL \"local parts = {string.dump(function() return 1 end)} \
             return select(2, load(function() return table.remove(parts) end))\" 0",
            "EVAL \"\\x1bLuaQ\" 0",
            "SCRIPT LOAD \"\\x1bLuaQ\\x00\"",
            // The replaced functions check their arguments as the C ones do.
            "EVAL \"setmetatable()\" 0",
            "EVAL \"setmetatable({}, 1)\" 0",
            "EVAL \"local t = setmetatable({}, {__metatable = 1}) setmetatable(t, {})\" 0",
            "EVAL \"return setmetatable({}, nil) ~= nil\" 0",
            "EVAL \"local t = setmetatable({}, {__index = function() return 5 end}) return t.x\" 0",
            "EVAL \"rawset({}, nil, 1)\" 0",
            "EVAL \"rawset({})\" 0",
            "EVAL \"rawset({}, 1)\" 0",
            "EVAL \"rawset(1, 1, 1)\" 0",
            "EVAL \"local t = {} rawset(t, 'k', 'v') return t.k\" 0",
            "EVAL \"local f = loadstring()\" 0",
            "EVAL \"local f = loadstring({})\" 0",
            "EVAL \"local f = loadstring('return 1', {})\" 0",
            "EVAL \"local f = load('x')\" 0",
            "EVAL \"local f = load()\" 0",
            "EVAL \"return loadstring(12)\" 0",
            "EVAL \"return loadstring('return 1', 'chunk')()\" 0",
        ],
    );
}

/// Scripts that assign no global read the globals directly in Velo (`script::bytecode`); what they see and
/// what they may change is the same as through the read-only proxy.
#[test]
fn scripts_without_global_assignments_keep_the_sandbox() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "direct globals",
        &[
            "EVAL \"return nope\" 0",
            "EVAL \"local f = function() return nope end return f()\" 0",
            "EVAL \"local g = _G g.x = 1\" 0",
            "EVAL \"_G.x = 1\" 0",
            "EVAL \"rawset(_G, 'x', 1)\" 0",
            "EVAL \"return x\" 0",
            "EVAL \"local r = redis r.call = nil\" 0",
            "EVAL \"string.upper = nil\" 0",
            "EVAL \"return string.upper('a')\" 0",
            "EVAL \"local co = coroutine.create(function() return KEYS[1], ARGV[1] end) return {coroutine.resume(co)}\" 1 k a",
            "EVAL \"return {type(_G), type(getmetatable(_G)), rawequal(_G, _G._G)}\" 0",
            "EVAL \"return loadstring('y = 2 return y')()\" 0",
            "EVAL \"return y\" 0",
            "EVAL \"local t = {} for i = 1, #KEYS do t[i] = redis.call('get', KEYS[i]) end return t\" 2 a b",
            "EVAL \"if false then z = 1 end return 'assigns, never runs'\" 0",
            "EVAL \"return z\" 0",
        ],
    );
}

/// Errors of the C libraries carry the caller's position (`user_script:1:`), as `luaL_error` gives them.
#[test]
fn library_errors_carry_the_callers_position() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "library errors",
        &[
            "EVAL \"return cjson.encode()\" 0",
            "EVAL \"cjson.encode()\" 0",
            "EVAL \"return cjson.decode()\" 0",
            "EVAL \"return cjson.decode({})\" 0",
            "EVAL \"return cjson.decode(123)\" 0",
            "EVAL \"return cjson.decode('x')\" 0",
            "EVAL \"return cjson.encode(function() end)\" 0",
            "EVAL \"return bit.band()\" 0",
            "EVAL \"return bit.bor(1, 'x')\" 0",
            "EVAL \"return math.random(0)\" 0",
            "EVAL \"return math.random(1, 2, 3)\" 0",
            "EVAL \"return cmsgpack.pack()\" 0",
            "FUNCTION LOAD \"#!lua name=lib\\nredis.register_function('f', function() return cjson.encode() end)\"",
            "FCALL f 0",
        ],
    );
}

/// A set has no order; Redis sorts `SORT ... BY <constant>` of a set by bytes inside scripts so that the
/// reply is the same everywhere (Redis's suite: "SORT BY <constant> output gets ordered for scripting").
#[test]
fn sort_by_constant_is_ordered_in_scripts() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "sort in scripts",
        &[
            "SADD myset a b c d e f g h i l m n o p q r s t u v z aa aaa azz 10 2",
            "EVAL \"return redis.call('sort', KEYS[1], 'by', '_')\" 1 myset",
            "EVAL \"return redis.call('sort', KEYS[1], 'by', '_', 'get', '#', 'get', '_:*')\" 1 myset",
            "EVAL \"return redis.call('sort', KEYS[1], 'by', 'nosort', 'limit', 0, 3)\" 1 myset",
            "~SORT myset BY _",
            "RPUSH mylist c a b",
            "EVAL \"return redis.call('sort', KEYS[1], 'by', '_')\" 1 mylist",
        ],
    );
}

/// FUNCTION LOAD stops a library whose top-level code does not end after 500 ms, with Redis's error.
#[test]
fn function_load_timeout() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "function load timeout",
        &[
            "FUNCTION LOAD \"#!lua name=endless\\nlocal a = 1\\nwhile 1 do a = a + 1 end\"",
            "FUNCTION LOAD \"#!lua name=grows\\nlocal t = {} local i = 0 while true do i = i + 1 t[i] = {i} end\"",
            "FUNCTION LIST",
            "FUNCTION LOAD \"#!lua name=fine\\nredis.register_function('f', function() return 1 end)\"",
            "FCALL f 0",
        ],
    );
    let mut conn = velo.connect();
    let started = Instant::now();
    let reply = conn.cmd(&["FUNCTION", "LOAD", "#!lua name=endless\nwhile true do end"]);
    let took = started.elapsed();
    assert_eq!(reply, b"-ERR Error registering functions: ERR FUNCTION LOAD timeout\r\n");
    assert!(took >= Duration::from_millis(500) && took < Duration::from_secs(10), "took {took:?}");
    assert_eq!(conn.cmd(&["FCALL", "f", "0"]), b":1\r\n");
}

/// `redis.call` with more arguments than Lua 5.1 can pass (its C stack holds 8000 values): the same error
/// as Redis's; 7999 arguments work.
#[test]
fn redis_call_with_a_million_arguments() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "many arguments",
        &[
            "EVAL \"local t = {} for i = 1, 1000000 do t[i] = i end return redis.call('del', unpack(t))\" 0",
            "EVAL \"local t = {} for i = 1, 7999 do t[i] = i end return redis.call('lpush', 'l', unpack(t))\" 0",
            "EVAL \"local t = {} for i = 1, 1000000 do t[i] = 'x' end return redis.call('del', unpack(t, 1, 7999))\" 0",
        ],
    );
}

/// Large replies from a script: a 20 MB string and a 200,000-element array, byte for byte as Redis's.
#[test]
fn huge_script_replies() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "huge replies",
        &[
            "EVAL \"return string.rep(string.rep('x', 1000), 20000)\" 0",
            "EVAL \"local t = {} for i = 1, 200000 do t[i] = i end return t\" 0",
            "EVAL \"local t = {} for i = 1, 200000 do t[i] = tostring(i) end return t\" 0",
        ],
    );
}

/// A script that allocates without end must not take the server's memory: it gets Lua's "not enough
/// memory" at the interpreter's limit (1 GiB), other clients are served afterwards, and the interpreter
/// is usable again at once (its garbage collected: Lua 5.1 has no emergency collection, so without a
/// collection every later script of that interpreter failed the same way). The same for a function.
#[test]
fn runaway_script_memory_is_bounded() {
    let velo = TestServer::start();
    let mut conn = velo.connect();
    let runaway = "local s = string.rep('x', 10000000) local t = {} while true do t[#t + 1] = s .. #t end";
    let started = Instant::now();
    let reply = String::from_utf8(conn.cmd(&["EVAL", runaway, "0"])).unwrap();
    assert!(reply.starts_with("-ERR Error running script ") && reply.contains("not enough memory"), "{reply}");
    assert!(started.elapsed() < Duration::from_secs(120), "took {:?}", started.elapsed());
    let mut other = velo.connect();
    assert_eq!(other.cmd(&["PING"]), b"+PONG\r\n");
    // 60 MB: refused while the runaway's gigabyte was still uncollected.
    let big = "return #string.rep(string.rep('y', 1000), 60000)";
    assert_eq!(conn.cmd(&["EVAL", big, "0"]), b":60000000\r\n");
    let info = String::from_utf8(conn.cmd(&["INFO", "memory"])).unwrap();
    let lua: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory_lua:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("used_memory_lua");
    assert!(lua < 512 << 20, "used_memory_lua {lua} after the runaway");

    let library = format!("#!lua name=hog\nredis.register_function('hog', function() {runaway} end)");
    assert_eq!(conn.cmd(&["FUNCTION", "LOAD", &library]), b"$3\r\nhog\r\n");
    let reply = String::from_utf8(conn.cmd(&["FCALL", "hog", "0"])).unwrap();
    assert!(reply.starts_with("-ERR Error running script hog") && reply.contains("not enough memory"), "{reply}");
    let library = format!("#!lua name=big\nredis.register_function('big', function() {big} end)");
    assert_eq!(conn.cmd(&["FUNCTION", "LOAD", &library]), b"$3\r\nbig\r\n");
    assert_eq!(conn.cmd(&["FCALL", "big", "0"]), b":60000000\r\n");
    let mut fresh = Conn::connect(velo.port);
    assert_eq!(fresh.cmd(&["PING"]), b"+PONG\r\n");
}

/// Shebang lines are split as Redis splits them (`sdssplitargs`): quotes group and are removed, an
/// unbalanced quote or a closing quote not followed by a space makes the line invalid (Redis's suite:
/// "function test name with quotes").
#[test]
fn shebang_quotes() {
    let (redis, velo) = servers();
    compare(
        &redis,
        &velo,
        "shebang quotes",
        &[
            "FUNCTION LOAD REPLACE \"#!lua name=\\\"foo\\\"\\nredis.register_function('foo', function() return 1 end)\"",
            "FUNCTION LOAD REPLACE \"#!lua name='bar'\\nredis.register_function('bar', function() return 2 end)\"",
            "FUNCTION LOAD REPLACE \"#!\\\"lua\\\" \\\"name=q1\\\"\\nredis.register_function('q1', function() return 3 end)\"",
            "FUNCTION LOAD REPLACE \"#!lua name=\\\"ba\\\"z\\nredis.register_function('baz', function() return 1 end)\"",
            "FUNCTION LOAD REPLACE \"#!lua name=\\\"qq\\nredis.register_function('qq', function() return 1 end)\"",
            "FUNCTION LOAD REPLACE \"#!lua name=\\\"a b\\\"\\nredis.register_function('ab', function() return 1 end)\"",
            "FCALL foo 0",
            "FCALL bar 0",
            "FCALL q1 0",
            "EVAL \"#!lua flags=\\\"no-writes\\\"\\nreturn 1\" 0",
            "EVAL \"#!lua flags=\\\"no-writes\\nreturn 1\" 0",
            "EVAL \"#!lua \\\"flags=no-writes,allow-oom\\\"\\nreturn 1\" 0",
        ],
    );
}

/// `DEBUG SET-DISABLE-DENY-SCRIPTS 1` lets scripts call `noscript` commands (Redis's suite calls DEBUG
/// PROTOCOL from scripts with it to check the RESP2/RESP3 conversions); 0 refuses them again.
#[test]
fn debug_set_disable_deny_scripts() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let redis = RedisServer::start_in(dir.path(), &["--enable-debug-command", "yes"]);
    let velo = TestServer::start();
    compare(
        &redis,
        &velo,
        "set-disable-deny-scripts",
        &[
            "EVAL \"return redis.call('debug', 'protocol', 'map')\" 0",
            "DEBUG SET-DISABLE-DENY-SCRIPTS 1",
            "EVAL \"return redis.call('debug', 'protocol', 'map')\" 0",
            "EVAL \"redis.setresp(3) return redis.call('debug', 'protocol', 'map')\" 0",
            "EVAL \"redis.setresp(3) return redis.call('debug', 'protocol', 'bignum')\" 0",
            "EVAL \"redis.setresp(3) return redis.call('debug', 'protocol', 'double')\" 0",
            "EVAL \"return redis.call('debug', 'protocol', 'attrib')\" 0",
            "DEBUG SET-DISABLE-DENY-SCRIPTS 0",
            "EVAL \"return redis.call('debug', 'protocol', 'set')\" 0",
        ],
    );
}
