//! One Lua 5.1 interpreter set up as Redis 7.0 sets up its own: the libraries Redis loads, the `redis`
//! API, the error handler that adds `source`/`line`, Redis's `pcall`, and the protected globals.
//!
//! Redis patches Lua with read-only tables; stock Lua 5.1 has none, so the protection is built from
//! proxies: user code runs with an environment that is an empty table whose metatable reads through to
//! the real globals (a missing name raises "Script attempted to access nonexistent global variable") and
//! refuses every assignment ("Attempt to modify a readonly table"). Library tables (`redis`, `string`,
//! `cjson`, ...) are proxied the same way, so `redis.call = nil` fails as in Redis. An EVAL script whose
//! code has no global assignment at all (`SETGLOBAL`, found by [`super::bytecode`]) runs with the real
//! globals as its environment instead: its reads find the same values and the same "nonexistent global"
//! error one lookup sooner, and there is no assignment for the proxy to refuse (no script can reach the
//! real globals table: `_G` is the proxy, and chunks it loads run in the proxy).
//!
//! Rust functions never raise Lua errors themselves (mlua would raise them as userdata, not Redis's
//! error tables): they return `ok, value` and a small C function (`redis.call`, `redis.log`, ...; for
//! `cjson`, `bit` and `math.random`, `libs::shell`) raises `value` when `ok` is false. C functions keep
//! the script's frame (a Lua wrapper reached by `return f(...)` is a tail call), so errors point at the
//! user's line.
//!
//! Beyond the proxies, the sandbox closes what stock Lua 5.1 leaves open and Redis's does not have:
//! `getfenv`/`setfenv`/`newproxy` (the real globals), chunks from `loadstring`/`load` (run in the
//! read-only globals), bytecode (parsed as text, as Redis's patched loader does), `setmetatable`/`rawset`
//! on a protected table, and the strings' shared metatable.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mlua::{Function, HookTriggers, Lua, LuaOptions, StdLib, Table, Value, Variadic, VmState};

use super::capi::{self, c_acl_check, c_log, c_set_repl, c_setresp, c_sha1};
use super::convert;
use crate::resp::reply::format_g;

/// Lua source of the environment. Runs once per interpreter with the Rust helpers as arguments; chunk
/// name `=velo` marks its frames for the error handler.
const PRELUDE: &str = r#"
local c_call, c_pcall, raw_log, raw_sha1, raw_setresp, raw_set_repl, raw_acl_check, errmsg, libs = ...
local dbg = debug
debug = nil
local getinfo, type, tostring, error, rawget, rawset, select, unpack, setmetatable, rawpcall =
  dbg.getinfo, type, tostring, error, rawget, rawset, select, unpack, setmetatable, pcall

local function raise(ok, ...)
  if ok then return ... end
  error((...), 0)
end

function __redis__err__handler(err)
  local level = 2
  local i = getinfo(level, 'nSl')
  while i and (i.what == 'C' or i.source == '=velo') do
    level = level + 1
    i = getinfo(level, 'nSl')
  end
  if type(err) == 'userdata' then err = errmsg(err) end
  if type(err) ~= 'table' then
    err = {err='ERR ' .. tostring(err)}
  end
  if i then
    err['source'] = i.source
    err['line'] = i.currentline
  end
  return err
end

-- SCRIPT KILL (and a shutdown) raise from the count hook; a script must not be able to catch that and
-- carry on, so a protected call that failed while the kill is set passes the error on.
local killed, rawxpcall = libs.killed, xpcall
local function pass_kill(ok, ...)
  if not ok and killed() then error((...), 0) end
  return ok, ...
end
xpcall = function(f, handler) return pass_kill(rawxpcall(f, handler)) end
if coroutine and coroutine.resume then
  local rawresume = coroutine.resume
  coroutine.resume = function(co, ...) return pass_kill(rawresume(co, ...)) end
end

local function pcall_result(ok, ...)
  if ok then return ok, ... end
  if killed() then error((...), 0) end
  local e = ...
  if type(e) == 'table' then
    local m = e.err
    if type(m) == 'string' or type(m) == 'number' then return false, m end
  end
  return false, e
end
pcall = function(f, ...) return pcall_result(rawpcall(f, ...)) end

local redis = {}
redis.call = c_call
redis.pcall = c_pcall
redis.log = raw_log
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.setresp = raw_setresp
redis.sha1hex = raw_sha1
redis.error_reply = function(...)
  if select('#', ...) ~= 1 or type((...)) ~= 'string' then
    return {err='ERR wrong number or type of arguments'}
  end
  local e = ...
  if e:sub(1, 1) ~= '-' then e = '-' .. e end
  local code, msg = e:match('^%-(%S*) (.*)$')
  if not code then code, msg = 'ERR', e:sub(2) end
  msg = msg:gsub('^[\r\n]+', ''):gsub('[\r\n]+$', '')
  return {err=code .. ' ' .. msg}
end
redis.status_reply = function(...)
  if select('#', ...) ~= 1 or type((...)) ~= 'string' then
    return {err='ERR wrong number or type of arguments'}
  end
  return {ok=(...)}
end
redis.set_repl = raw_set_repl
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
redis.replicate_commands = function() return true end
redis.breakpoint = function() return false end
redis.debug = function() end
redis.acl_check_cmd = raw_acl_check
redis.REDIS_VERSION = libs.version
redis.REDIS_VERSION_NUM = libs.version_num

-- The library functions are C shells already (their errors carry the caller's position, as Redis's do).
for name, lib in pairs(libs.wrapped) do _G[name] = lib end
for name, lib in pairs(libs.native) do _G[name] = lib end
math.random = libs.random
math.randomseed = libs.randomseed

-- Redis's Lua has neither these nor a way to reach the real globals: getfenv(0) returned them (a script
-- could then set globals that every later script sees), setfenv could replace them.
local getfenv, setfenv = getfenv, setfenv
rawset(_G, 'getfenv', nil)
rawset(_G, 'setfenv', nil)
rawset(_G, 'newproxy', nil)

-- Every proxy made read-only here; setmetatable and rawset refuse them as Redis's patched Lua refuses
-- its read-only tables (the error has no position: Redis raises it from C).
local readonly_tables = setmetatable({}, {__mode = 'k'})
local function readonly() error('Attempt to modify a readonly table', 2) end
local function protect(t, meta_view)
  local proxy = setmetatable({}, {__index = t, __newindex = readonly, __metatable = meta_view or false})
  readonly_tables[proxy] = true
  return proxy
end
for _, name in ipairs({'string', 'math', 'table', 'coroutine', 'cjson', 'bit', 'struct', 'cmsgpack'}) do
  if rawget(_G, name) then rawset(_G, name, protect(rawget(_G, name))) end
end
rawset(_G, 'redis', redis)
-- These replacements check their arguments as the C functions do and raise at the caller's level, so
-- their errors read as Redis's ("user_script:1: bad argument #1 to 'setmetatable' ...") rather than
-- pointing into this prelude.
local function argtype(n, ...)
  if select('#', ...) < n then return 'no value' end
  return type((select(n, ...)))
end
-- Both are called by the replacement itself: level 3 is the replacement's caller.
local function check(ok, n, fname, message)
  if not ok then
    error('bad argument #' .. n .. " to '" .. fname .. "' (" .. message .. ')', 3)
  end
end
local function expected(n, fname, what, ...)
  error('bad argument #' .. n .. " to '" .. fname .. "' (" .. what .. ' expected, got ' .. argtype(n, ...) .. ')', 3)
end
local rawsetmetatable, realmetatable = setmetatable, dbg.getmetatable
rawset(_G, 'setmetatable', function(...)
  local t, mt = ...
  if type(t) ~= 'table' then expected(1, 'setmetatable', 'table', ...) end
  check(mt == nil or type(mt) == 'table', 2, 'setmetatable', 'nil or table expected')
  if readonly_tables[t] then error('Attempt to modify a readonly table', 0) end
  local current = realmetatable(t)
  if current and rawget(current, '__metatable') ~= nil then error('cannot change a protected metatable', 2) end
  return rawsetmetatable(t, mt)
end)
rawset(_G, 'rawset', function(...)
  local t, k, v = ...
  if type(t) ~= 'table' then expected(1, 'rawset', 'table', ...) end
  check(select('#', ...) >= 2, 2, 'rawset', 'value expected')
  check(select('#', ...) >= 3, 3, 'rawset', 'value expected')
  if readonly_tables[t] then error('Attempt to modify a readonly table', 0) end
  return rawset(t, k, v)
end)
-- Strings share one metatable: getmetatable('') gives a read-only view of it, so a script cannot change
-- string methods for the scripts after it.
do
  local string_meta = getmetatable('')
  string_meta.__metatable = protect({__index = rawget(_G, 'string')})
end

-- Scripts see the globals through a read-only proxy whose __index is the globals table itself, and a
-- missing global raises from the globals' own metatable (set last, below): a global read is a table walk
-- in the VM, not a Lua call per access.
local G = _G
local function nonexistent(_, name)
  error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
end
-- getmetatable(_G) gives a read-only view of a metatable like Redis's (its __index raises for a missing
-- name), not the real one, whose __index is the globals table itself.
local env = setmetatable({}, {__index = G, __newindex = readonly,
  __metatable = protect({__index = nonexistent, __newindex = readonly})})
readonly_tables[env] = true
rawset(G, '_G', env)

-- Redis's Lua parses every chunk as text, so a precompiled (binary) chunk is a syntax error; a leading
-- space makes stock Lua's loader take it as text too and report the same error. Chunks loaded by a
-- script run in the scripts' read-only environment, not in the real globals.
local rawloadstring, rawload = loadstring, load
local function as_text(s)
  if type(s) == 'string' and s:byte(1) == 27 then return ' ' .. s end
  return s
end
local function in_env(f, ...)
  if f then setfenv(f, env) end
  return f, ...
end
local function stringlike(v) return type(v) == 'string' or type(v) == 'number' end
rawset(G, 'loadstring', function(...)
  local s, name = ...
  if not stringlike(s) then expected(1, 'loadstring', 'string', ...) end
  if name ~= nil and not stringlike(name) then expected(2, 'loadstring', 'string', ...) end
  if type(s) ~= 'string' then return rawloadstring(s, name) end
  if name == nil then name = s end
  return in_env(rawloadstring(as_text(s), name))
end)
rawset(G, 'load', function(...)
  local reader, name = ...
  -- luaB_load reads the chunk name first.
  if name ~= nil and not stringlike(name) then expected(2, 'load', 'string', ...) end
  if type(reader) ~= 'function' then expected(1, 'load', 'function', ...) end
  local first = true
  local function read()
    local piece = reader()
    if first then
      first = false
      piece = as_text(piece)
    end
    return piece
  end
  return in_env(rawload(read, name))
end)
local redis_proxy = protect(redis)
rawset(G, 'redis', redis_proxy)

-- FUNCTION LOAD runs library code with only the load API visible; functions then run with the globals.
local function missing(name)
  error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 3)
end
local load_redis = setmetatable({
  register_function = function(...) return raise(libs.register(...)) end,
  log = redis.log, LOG_DEBUG = 0, LOG_VERBOSE = 1, LOG_NOTICE = 2, LOG_WARNING = 3,
  REDIS_VERSION = libs.version, REDIS_VERSION_NUM = libs.version_num,
}, {__index = function(_, name) missing(name) end})
local load_api = setmetatable(
  {redis = setmetatable({}, {__index = load_redis, __newindex = readonly, __metatable = false})},
  {__index = nonexistent, __metatable = false})
local fenv_meta = {__index = G, __newindex = readonly, __metatable = false}
local fenv = setmetatable({}, fenv_meta)
readonly_tables[fenv] = true
local function set_loading(flag)
  if flag then fenv_meta.__index = load_api else fenv_meta.__index = G end
end

local function run(f, ...)
  local n = select('#', ...)
  if n == 0 then return rawxpcall(f, __redis__err__handler) end
  local args = {...}
  return rawxpcall(function() return f(unpack(args, 1, n)) end, __redis__err__handler)
end
setmetatable(G, {__index = nonexistent, __metatable = false})
return env, redis, run, fenv, set_loading
"#;

/// The Redis version scripts see (`redis.REDIS_VERSION`), the one Velo reports everywhere.
const VERSION: &str = crate::cmd::connection::REDIS_VERSION;

/// Redis's `REDIS_VERSION_NUM` for [`VERSION`]: 0x00MMmmpp.
fn version_num() -> f64 {
    let mut parts = VERSION.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor, patch) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    f64::from((major << 16) | (minor << 8) | patch)
}

/// How long FUNCTION LOAD lets a library's top-level code run (Redis's `LOAD_TIMEOUT_MS`).
pub const LOAD_TIMEOUT: Duration = Duration::from_millis(500);

thread_local! {
    /// While a library's code runs on this thread (FUNCTION LOAD, RESTORE, start-up): when the count hook
    /// stops it with "FUNCTION LOAD timeout".
    static LOAD_DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Runs `f` (a library's top-level code) with the [`LOAD_TIMEOUT`] deadline set for the count hook.
pub fn with_load_deadline<R>(f: impl FnOnce() -> R) -> R {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            LOAD_DEADLINE.set(None);
        }
    }
    LOAD_DEADLINE.set(Some(Instant::now() + LOAD_TIMEOUT));
    let _reset = Reset;
    f()
}

/// Upper bound of a script interpreter's memory (Lua allocations), so that a runaway script gets a Lua
/// "not enough memory" error instead of taking the server's memory.
pub const MEMORY_LIMIT: usize = 1 << 30;

/// Interpreter memory above which a finished script is followed by a full collection (see
/// [`Vm::after_run`]).
pub const GC_ABOVE: usize = MEMORY_LIMIT / 8;

/// Runs between two garbage collection steps of [`GC_PERIOD`] KiB (Redis's `LUA_GC_CYCLE_PERIOD`).
pub const GC_PERIOD: u32 = 50;

/// Interpreter memory above what the last completed collection cycle left, below which the periodic step
/// is skipped (see [`Vm::after_run`]).
pub const GC_GARBAGE: usize = GC_PERIOD as usize * 1024;

/// A set-up interpreter.
pub struct Vm {
    /// The interpreter.
    pub lua: Lua,
    /// The protected environment user code runs in.
    pub env: Table,
    /// The unprotected `redis` table (FUNCTION LOAD adds `register_function` to it).
    pub redis: Table,
    /// `run(f, ...)`: calls `f` under the error handler; returns `ok, result` (FUNCTION LOAD).
    pub runner: Function,
    /// The error handler (adds `source` and `line` to what a script raises).
    pub handler: Function,
    /// The main state and registry slots for running registered scripts (`capi::run_script`).
    pub entry: capi::Entry,
    /// The environment of function libraries (the load API while loading, the globals after).
    pub function_env: Table,
    /// `set_loading(bool)`: switches [`Vm::function_env`].
    pub set_loading: Function,
    /// Set by SCRIPT KILL / FUNCTION KILL; the count hook raises while it is set.
    pub kill: Arc<AtomicBool>,
    /// Runs so far, for [`Vm::after_run`]'s collection steps.
    runs: AtomicU32,
    /// Interpreter memory when a periodic step last ended a collection cycle (about the live data).
    gc_floor: AtomicUsize,
}

impl Vm {
    /// A new interpreter with Redis's environment.
    pub fn new() -> mlua::Result<Vm> {
        // SAFETY-relevant: the debug library is loaded only for the prelude, which keeps `getinfo` in a
        // local for the error handler and removes the global before any user code runs (as Redis does).
        let lua = unsafe {
            Lua::unsafe_new_with(StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::DEBUG, LuaOptions::default())
        };
        lua.set_memory_limit(MEMORY_LIMIT)?;
        let globals = lua.globals();
        for name in ["dofile", "loadfile", "print"] {
            globals.raw_set(name, Value::Nil)?;
        }
        let libs = lua.create_table()?;
        libs.raw_set("version", VERSION)?;
        libs.raw_set("version_num", version_num())?;
        libs.raw_set("wrapped", super::libs::create(&lua)?)?;
        libs.raw_set("native", super::pack::create(&lua)?)?;
        libs.raw_set("random", super::libs::shell(&lua, lua.create_function(super::libs::random)?)?)?;
        libs.raw_set("randomseed", super::libs::shell(&lua, lua.create_function(super::libs::randomseed)?)?)?;
        libs.raw_set("register", lua.create_function(super::functions::register_function)?)?;
        let kill = Arc::new(AtomicBool::new(false));
        let kill_seen = kill.clone();
        libs.raw_set("killed", lua.create_function(move |_, ()| Ok(kill_seen.load(Ordering::Relaxed)))?)?;
        let (c_call, c_pcall) = capi::redis_call_functions(&lua)?;
        let helpers = (
            c_call,
            c_pcall,
            raising(&lua, "velo.raw_log", raw_log, c_log)?,
            raising(&lua, "velo.raw_sha1", raw_sha1, c_sha1)?,
            raising(&lua, "velo.raw_setresp", raw_setresp, c_setresp)?,
            raising(&lua, "velo.raw_set_repl", raw_set_repl, c_set_repl)?,
            raising(&lua, "velo.raw_acl_check", raw_acl_check, c_acl_check)?,
            lua.create_function(error_message)?,
            libs,
        );
        let (env, redis, runner, function_env, set_loading): (Table, Table, Function, Table, Function) =
            lua.load(PRELUDE).set_name("=velo").call(helpers)?;
        let flag = kill.clone();
        lua.set_hook(HookTriggers::new().every_nth_instruction(10_000), move |_, _| {
            if flag.load(Ordering::Relaxed) {
                tracing::warn!("Lua script killed by user with SCRIPT KILL.");
                return Err(mlua::Error::RuntimeError("Script killed by user with SCRIPT KILL...".into()));
            }
            if LOAD_DEADLINE.get().is_some_and(|deadline| Instant::now() >= deadline) {
                // Raised again at every later check: library code has no pcall to catch it with.
                return Err(mlua::Error::RuntimeError("FUNCTION LOAD timeout".into()));
            }
            match super::current::hook() {
                Some(message) => {
                    flag.store(true, Ordering::Relaxed);
                    Err(mlua::Error::RuntimeError(message.into()))
                }
                None => Ok(VmState::Continue),
            }
        })?;
        let handler: Function = lua.globals().raw_get("__redis__err__handler")?;
        let entry = capi::entry(&lua, &handler)?;
        Ok(Vm {
            entry,
            lua,
            env,
            redis,
            runner,
            handler,
            function_env,
            set_loading,
            kill,
            runs: AtomicU32::new(0),
            gc_floor: AtomicUsize::new(0),
        })
    }

    /// Garbage collection after a run. A full collection if the interpreter holds more than
    /// [`GC_ABOVE`]: a script that ran out of memory leaves its garbage behind, and Lua 5.1 has no
    /// emergency collection, so every later script would fail with "not enough memory" until the
    /// collector caught up. Else, as Redis does, a collection step every [`GC_PERIOD`] runs, so that
    /// the garbage of short scripts (their KEYS and ARGV tables, reply strings) is collected as it comes
    /// rather than piling up to twice the live memory before a cycle starts; but only once the
    /// interpreter holds [`GC_GARBAGE`] more than the last completed cycle left. A step of 50 KiB walks
    /// about a whole cycle of this interpreter (~95 KiB live, against Redis's ~32 KiB), and scripts that
    /// make little garbage (an EVALSHA of two writes: a few hundred bytes) paid that every 50 runs: 7% of
    /// the server's CPU at `-P 16` (docs/performance.md, branch `script4`).
    pub fn after_run(&self) {
        let used = self.lua.used_memory();
        let collected = if used > GC_ABOVE {
            let collected = self.lua.gc_collect();
            self.gc_floor.store(self.lua.used_memory(), Ordering::Relaxed);
            collected
        } else if self.runs.fetch_add(1, Ordering::Relaxed) % GC_PERIOD == GC_PERIOD - 1
            && used >= self.gc_floor.load(Ordering::Relaxed) + GC_GARBAGE
        {
            let mut cycle_ended = 0;
            // SAFETY: `exec_raw` runs the closure protected (a finalizer's error stops there); `lua_gc`
            // touches no stack slot, and the closure only stores an integer.
            let stepped = unsafe {
                self.lua.exec_raw::<()>((), |state| {
                    cycle_ended = mlua::ffi::lua_gc(state, mlua::ffi::LUA_GCSTEP, GC_PERIOD as std::ffi::c_int);
                })
            };
            if cycle_ended == 1 {
                self.gc_floor.store(self.lua.used_memory(), Ordering::Relaxed);
            }
            stepped
        } else {
            Ok(())
        };
        if let Err(error) = collected {
            tracing::warn!(%error, "Lua garbage collection failed");
        }
    }

    /// Compiles `code` as chunk `name` (`@user_script`, `@user_function`) in the protected environment.
    /// A precompiled (binary) chunk is parsed as text, as Redis's Lua parses every chunk: a syntax error.
    pub fn compile(&self, code: &[u8], name: &str, env: &Table) -> Result<Function, String> {
        let spaced;
        let code = if code.first() == Some(&0x1b) {
            // A leading space keeps the loader from taking the chunk as bytecode; lines are unchanged.
            spaced = [b" ", code].concat();
            &spaced[..]
        } else {
            code
        };
        self.lua.load(code).set_name(name).set_environment(env.clone()).into_function().map_err(|error| match error {
            mlua::Error::SyntaxError { message, .. } => message,
            other => other.to_string(),
        })
    }
}

/// A `redis.*` helper as a C function (no tail call hides the script's line, see
/// [`capi`]): the Rust function `raw` is kept in the registry under `key`; `c` is the C
/// function that calls it.
fn raising(
    lua: &Lua,
    key: &str,
    raw: fn(&Lua, Variadic<Value>) -> mlua::Result<(bool, Value)>,
    c: mlua::ffi::lua_CFunction,
) -> mlua::Result<Function> {
    lua.set_named_registry_value(key, lua.create_function(raw)?)?;
    // SAFETY: the C functions only use the Lua stack API on their own state (see `capi::raise_generic`).
    unsafe { lua.create_c_function(c) }
}

/// `ok, value` for the Lua wrappers: ok.
fn ok(lua: &Lua, value: impl mlua::IntoLua) -> mlua::Result<(bool, Value)> {
    Ok((true, value.into_lua(lua)?))
}

/// `ok, value` for the Lua wrappers: raise Redis's error table for `message` (no code: `ERR`).
fn fail(lua: &Lua, message: &str) -> mlua::Result<(bool, Value)> {
    Ok((false, Value::Table(convert::error_table(lua, message)?)))
}

/// A command argument from Lua: strings as they are, numbers as `%.17g` (Redis does not use Lua's
/// `%.14g`, which loses precision). Anything else is refused.
pub fn command_arg(value: &Value) -> Option<bytes::Bytes> {
    match value {
        Value::String(s) => Some(bytes::Bytes::copy_from_slice(&s.as_bytes())),
        Value::Integer(i) => Some(bytes::Bytes::from(i.to_string())),
        Value::Number(n) => Some(bytes::Bytes::from(format_number_arg(*n))),
        _ => None,
    }
}

fn format_number_arg(n: f64) -> String {
    if n.is_nan() {
        return if n.is_sign_negative() { "-nan".into() } else { "nan".into() };
    }
    if n.is_infinite() {
        return if n > 0.0 { "inf".into() } else { "-inf".into() };
    }
    format_g(n, 17)
}

fn raw_log(lua: &Lua, args: Variadic<Value>) -> mlua::Result<(bool, Value)> {
    if args.len() < 2 {
        return fail(lua, "redis.log() requires two arguments or more.");
    }
    let level = match &args[0] {
        Value::Integer(i) => *i as f64,
        Value::Number(n) => *n,
        Value::String(s) => match s.to_str().ok().and_then(|s| s.trim().parse::<f64>().ok()) {
            Some(n) => n,
            None => return fail(lua, "First argument must be a number (log level)."),
        },
        _ => return fail(lua, "First argument must be a number (log level)."),
    };
    let level = level as i64;
    if !(0..=3).contains(&level) {
        return fail(lua, "Invalid debug level.");
    }
    let text: Vec<String> = args[1..]
        .iter()
        .filter_map(|v| match v {
            Value::String(s) => Some(String::from_utf8_lossy(&s.as_bytes()).into_owned()),
            Value::Integer(_) | Value::Number(_) => command_arg(v).map(|b| String::from_utf8_lossy(&b).into_owned()),
            _ => None,
        })
        .collect();
    let text = text.join(" ");
    match level {
        0 => tracing::debug!(target: "velo::script", "{text}"),
        1 => tracing::debug!(target: "velo::script", "{text}"),
        2 => tracing::info!(target: "velo::script", "{text}"),
        _ => tracing::warn!(target: "velo::script", "{text}"),
    }
    Ok((true, Value::Nil))
}

fn raw_sha1(lua: &Lua, args: Variadic<Value>) -> mlua::Result<(bool, Value)> {
    if args.len() != 1 {
        return fail(lua, "wrong number of arguments");
    }
    let bytes = match &args[0] {
        Value::String(s) => s.as_bytes().to_vec(),
        v @ (Value::Integer(_) | Value::Number(_)) => {
            lua.coerce_string(v.clone())?.map(|s| s.as_bytes().to_vec()).unwrap_or_default()
        }
        _ => Vec::new(),
    };
    ok(lua, super::sha1_hex(&bytes))
}

fn raw_setresp(lua: &Lua, args: Variadic<Value>) -> mlua::Result<(bool, Value)> {
    if !super::current::with(|c| c.is_some()) {
        return fail(lua, "redis.setresp can only be called inside a script invocation");
    }
    if args.len() != 1 {
        return fail(lua, "redis.setresp() requires one argument.");
    }
    let resp = number_of(&args[0]).unwrap_or(0.0) as i64;
    if resp != 2 && resp != 3 {
        return fail(lua, "RESP version must be 2 or 3.");
    }
    super::current::with(|c| c.map(|c| c.resp.set(resp as u8)));
    Ok((true, Value::Nil))
}

fn raw_set_repl(lua: &Lua, args: Variadic<Value>) -> mlua::Result<(bool, Value)> {
    if !super::current::with(|c| c.is_some()) {
        return fail(lua, "redis.set_repl can only be called inside a script invocation");
    }
    if args.len() != 1 {
        return fail(lua, "redis.set_repl() requires two arguments.");
    }
    let flags = number_of(&args[0]).unwrap_or(0.0) as i64;
    if flags & !3 != 0 {
        return fail(lua, "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.");
    }
    // Velo has no replication or AOF yet: the setting is accepted and has nothing to steer.
    Ok((true, Value::Nil))
}

fn raw_acl_check(lua: &Lua, args: Variadic<Value>) -> mlua::Result<(bool, Value)> {
    if !super::current::with(|c| c.is_some()) {
        return fail(lua, "redis.acl_check_cmd can only be called inside a script invocation");
    }
    if args.is_empty() {
        return fail(lua, "Please specify at least one argument for this redis lib call");
    }
    let argv: Option<Vec<bytes::Bytes>> = args.iter().map(command_arg).collect();
    let Some(argv) = argv else {
        return fail(lua, "Lua redis lib command arguments must be strings or integers");
    };
    if crate::cmd::table::lookup(&argv[0]).is_none() {
        return fail(lua, "Invalid command passed to redis.acl_check_cmd()");
    }
    // Every user is the default user with every permission until ACLs exist.
    ok(lua, true)
}

/// The message of an error raised from Rust (a userdata in Lua), for the error handler.
fn error_message(_: &Lua, value: Value) -> mlua::Result<String> {
    fn innermost(error: &mlua::Error) -> String {
        match error {
            mlua::Error::RuntimeError(message) => message.clone(),
            mlua::Error::MemoryError(message) => message.clone(),
            mlua::Error::CallbackError { cause, .. } => innermost(cause),
            other => other.to_string(),
        }
    }
    Ok(match value {
        Value::Error(error) => innermost(&error),
        other => format!("{other:?}"),
    })
}

/// A Lua number argument (numbers and numeric strings, as `lua_tonumber`).
pub fn number_of(value: &Value) -> Option<f64> {
    match value {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        Value::String(s) => s.to_str().ok().and_then(|s| s.trim().parse::<f64>().ok()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Makes about `bytes` of garbage in `vm` (tables of 16 numbers, dropped at once).
    fn make_garbage(vm: &Vm, bytes: usize) {
        let tables = bytes / 200;
        vm.lua.load(format!("for i = 1, {tables} do local t = {{}} for j = 1, 16 do t[j] = j end end")).exec().unwrap();
    }

    #[test]
    fn periodic_steps_wait_for_garbage_over_the_last_cycle() {
        let vm = Vm::new().unwrap();
        vm.lua.gc_collect().unwrap();
        // Steps run until one ends a cycle and sets the floor.
        for _ in 0..50 * GC_PERIOD {
            vm.after_run();
            if vm.gc_floor.load(Ordering::Relaxed) > 0 {
                break;
            }
        }
        let floor = vm.gc_floor.load(Ordering::Relaxed);
        assert!(floor > 0, "no step ended a cycle");
        // Only the periodic steps collect from here on (a step restarts the allocation-driven collector,
        // which is then far from its threshold).
        vm.lua.gc_stop();
        // A little garbage: a period of runs leaves it in place.
        make_garbage(&vm, GC_GARBAGE / 4);
        let with_some = vm.lua.used_memory();
        assert!(with_some > floor && with_some < floor + GC_GARBAGE, "{with_some} over {floor}");
        for _ in 0..GC_PERIOD {
            vm.after_run();
        }
        assert_eq!(vm.lua.used_memory(), with_some, "a step ran below the garbage threshold");
        // Past the threshold the next period's step collects.
        make_garbage(&vm, GC_GARBAGE);
        let with_more = vm.lua.used_memory();
        assert!(with_more >= floor + GC_GARBAGE, "{with_more} over {floor}");
        for _ in 0..GC_PERIOD {
            vm.after_run();
        }
        assert!(vm.lua.used_memory() < with_more, "no step after {} bytes of garbage", with_more - floor);
    }
}
