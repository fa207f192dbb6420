//! The Lua C API side of scripting: `redis.call` and `redis.pcall` working on the raw Lua stack, and the
//! C shells of the other `redis.*` helpers. Scripting's Lua stack code lives here.
//!
//! `redis.call` is what every script spends its time in. Going through mlua (a Rust callback per call)
//! cost a new C closure per protected section (and the GC work to collect it), mlua's state lock, a
//! `MultiValue` of argument references and a protected `create_string` per reply value; like Redis, this
//! module reads the arguments straight off the stack, runs the command, and pushes its reply as Lua
//! values inside one `lua_pcall` of a C function created once per interpreter (an upvalue of
//! `redis.call`, so no closure is made per call).
//!
//! A cached EVAL script is started the same way: its function and the error handler are kept in the
//! registry, and [`run_script`] calls a C function registered once per interpreter with `lua_pcall`,
//! instead of mlua's `exec_raw`, which takes mlua's lock and makes two C closures (garbage for the
//! collector) for every run.
//!
//! # Invariants (why the unsafe code here is sound)
//! - **No `longjmp` over a destructor.** The vendored Lua 5.1 is built as C and raises errors with
//!   `longjmp`, which skips Rust frames without running their destructors. So:
//!   - each `extern "C-unwind"` function here is a shell that owns nothing: it calls a Rust function
//!     that does the work and returns plain data (`Step`); only once that function has returned (and
//!     its owned values, the argument vector and the reply, are dropped) does the shell raise with
//!     `lua_error`;
//!   - while owned values are live, only Lua calls that cannot raise are made: reading the stack
//!     (`lua_gettop`, `lua_type`, `lua_tolstring` on a string, `lua_tonumber`), pushing a light userdata or
//!     a value already on the stack or an upvalue, and `lua_pcall`;
//!   - everything that allocates in Lua (strings and tables; "not enough memory" raises) runs inside that
//!     one `lua_pcall`, in `push_reply`, which owns nothing: it borrows the outcome through a light
//!     userdata and formats numbers into fixed stack buffers. Its errors stop at the `lua_pcall`.
//! - **No unwinding through Lua's C frames.** The command runs under `catch_unwind`; a panic is kept in
//!   `PANIC`, Lua sees an error, and [`resume_panic`] re-raises it once the script is back in Rust (as
//!   mlua does for its callbacks). `push_reply` catches panics too and turns them into Lua errors.
//! - **Stack discipline.** A C function is called with `LUA_MINSTACK` (20) free slots; the shells push at
//!   most two values outside the protected call. `push_reply` checks for room (`lua_checkstack`) at each
//!   nesting level and raises "reached lua stack limit" (inside the protected call) when there is none.
//!   Each function returns exactly the values it leaves on top of its own frame.

use std::any::Any;
use std::cell::RefCell;
use std::ffi::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

use bytes::Bytes;
use mlua::ffi;
use mlua::{Function, Lua};

use crate::resp::{Protocol, Reply};

thread_local! {
    /// A panic caught in a command run by `redis.call`, to be resumed once Lua has unwound.
    static PANIC: RefCell<Option<Box<dyn Any + Send>>> = const { RefCell::new(None) };
}

/// Re-raises a panic caught inside `redis.call` during the script that just returned, if any.
pub fn resume_panic() {
    if let Some(payload) = PANIC.with(|p| p.borrow_mut().take()) {
        std::panic::resume_unwind(payload);
    }
}

/// What `redis.call`'s Rust side decided: the value to give the script, and whether to raise it.
pub enum Outcome {
    /// The command ran: its reply, converted for a script speaking the protocol.
    Reply(Reply, Protocol),
    /// Refused before the command was looked up (no arguments, an argument neither string nor number):
    /// the error table of this line.
    Refused(&'static str),
    /// Refused once looked up (unknown command, wrong arity, NOSCRIPT, a write from a read-only script):
    /// the error table of this line, flagged `ignore_error_stats_update` as Redis flags it (the
    /// rejection was already counted in the error statistics).
    Rejected(&'static str),
    /// Not inside a script (the error is raised by `redis.pcall` too).
    Outside,
}

/// What the shell does once the work is done and its owned values are dropped.
#[derive(Clone, Copy)]
enum Step {
    /// Return the value on top of the stack.
    Return,
    /// Raise the value on top of the stack.
    Raise,
}

/// Table fields the conversions look up by name; kept alive in the registry so that pushing one finds
/// the interned string instead of allocating it each time.
const FIELD_NAMES: [&str; 14] = [
    "err",
    "ok",
    "double",
    "big_number",
    "verbatim_string",
    "format",
    "string",
    "map",
    "set",
    "source",
    "line",
    "ignore_error_stats_update",
    "KEYS",
    "ARGV",
];

/// `redis.call` and `redis.pcall` for an interpreter: C closures over `push_reply`.
pub fn redis_call_functions(lua: &Lua) -> mlua::Result<(Function, Function)> {
    lua.set_named_registry_value("velo.field_names", lua.create_sequence_from(FIELD_NAMES)?)?;
    // SAFETY: `exec_raw` runs the closure protected, with room for the three values it pushes; each
    // closure takes the pushed `push_reply` as its upvalue 1.
    unsafe {
        let call = lua.exec_raw((), |state| {
            ffi::lua_pushcfunction(state, push_reply);
            ffi::lua_pushcclosure(state, redis_call, 1);
        })?;
        let pcall = lua.exec_raw((), |state| {
            ffi::lua_pushcfunction(state, push_reply);
            ffi::lua_pushcclosure(state, redis_pcall, 1);
        })?;
        Ok((call, pcall))
    }
}

/// `redis.call`: runs a command; raises its error reply. A C function, not a Lua wrapper, so that a
/// script's `return redis.call(...)` is no tail call that would hide the script's line from the error
/// handler (Redis's is C too).
unsafe extern "C-unwind" fn redis_call(state: *mut ffi::lua_State) -> c_int {
    match call(state, true) {
        Step::Return => 1,
        Step::Raise => ffi::lua_error(state),
    }
}

/// `redis.pcall`: as [`redis_call`], but an error reply is returned as its error table.
unsafe extern "C-unwind" fn redis_pcall(state: *mut ffi::lua_State) -> c_int {
    match call(state, false) {
        Step::Return => 1,
        Step::Raise => ffi::lua_error(state),
    }
}

/// The work of [`redis_call`]: owns the arguments and the reply; leaves the value to return or raise on
/// top of the stack.
unsafe fn call(state: *mut ffi::lua_State, raise: bool) -> Step {
    let argc = ffi::lua_gettop(state);
    let ran = catch_unwind(AssertUnwindSafe(|| {
        let args = arguments(state, argc);
        super::call_for_script(args)
    }));
    let outcome = match ran {
        Ok(outcome) => outcome,
        Err(payload) => {
            PANIC.with(|p| *p.borrow_mut() = Some(payload));
            Outcome::Refused("command panicked")
        }
    };
    let raises = match &outcome {
        Outcome::Reply(reply, _) => raise && reply.is_error(),
        Outcome::Refused(_) | Outcome::Rejected(_) => raise,
        Outcome::Outside => true,
    };
    // Neither push allocates: the function is an upvalue, the outcome a light userdata.
    ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
    ffi::lua_pushlightuserdata(state, (&outcome as *const Outcome).cast_mut().cast::<c_void>());
    let status = ffi::lua_pcall(state, 1, 1, 0);
    drop(outcome);
    if status != 0 || raises {
        Step::Raise
    } else {
        Step::Return
    }
}

/// The command arguments on the stack: strings as they are, numbers as `%.17g` (Redis does not use
/// Lua's `%.14g`, which loses precision); `Err` if one is neither. Reads only: never raises.
unsafe fn arguments(state: *mut ffi::lua_State, argc: c_int) -> Result<Vec<Bytes>, ()> {
    let mut args = Vec::with_capacity(argc.max(0) as usize);
    // All the arguments in one buffer, split into shared views of it: one allocation for the bytes, and a
    // handler's clone of an argument (its key) is a reference count, where a `Bytes` copied on its own
    // allocates a shared block at its first clone. Numbers take at most 24 bytes as `%.17g`.
    let mut total = 0;
    for index in 1..=argc {
        total += match ffi::lua_type(state, index) {
            ffi::LUA_TSTRING => ffi::lua_objlen(state, index),
            ffi::LUA_TNUMBER => 24,
            _ => return Err(()),
        };
    }
    let mut buffer = bytes::BytesMut::with_capacity(total);
    for index in 1..=argc {
        match ffi::lua_type(state, index) {
            ffi::LUA_TSTRING => {
                let mut len = 0;
                let data = ffi::lua_tolstring(state, index, &mut len);
                buffer.extend_from_slice(std::slice::from_raw_parts(data.cast::<u8>(), len));
            }
            _ => buffer.extend_from_slice(&number_arg(ffi::lua_tonumber(state, index))),
        }
        args.push(buffer.split().freeze());
    }
    Ok(args)
}

/// `%.17g` of a command argument (integers, the common case, without going through the formatter).
pub fn number_arg(n: f64) -> Vec<u8> {
    if n.fract() == 0.0 && n.abs() < 1e17 && !(n == 0.0 && n.is_sign_negative()) {
        return (n as i64).to_string().into_bytes();
    }
    if n.is_nan() {
        return if n.is_sign_negative() { b"-nan".to_vec() } else { b"nan".to_vec() };
    }
    if n.is_infinite() {
        return if n > 0.0 { b"inf".to_vec() } else { b"-inf".to_vec() };
    }
    crate::resp::reply::format_g(n, 17).into_bytes()
}

/// Pushes the outcome (a light userdata, argument 1) as the Lua value `redis.call` returns or raises.
/// Called only through `lua_pcall` by [`call`]; owns nothing (see the module comment).
unsafe extern "C-unwind" fn push_reply(state: *mut ffi::lua_State) -> c_int {
    let outcome = &*ffi::lua_touserdata(state, 1).cast::<Outcome>();
    let converted = catch_unwind(AssertUnwindSafe(|| match outcome {
        Outcome::Reply(reply, proto) => push_value(state, reply, *proto == Protocol::Resp3),
        Outcome::Refused(line) => {
            push_error_table(state, line.as_bytes());
            true
        }
        Outcome::Rejected(line) => {
            push_error_table(state, line.as_bytes());
            ffi::lua_pushboolean(state, 1);
            set_field(state, "ignore_error_stats_update");
            true
        }
        Outcome::Outside => {
            push_error_table(state, b"redis.call/pcall can only be called inside a script invocation");
            true
        }
    }));
    // Plain data only past this point: a panic's payload is dropped before `lua_error`.
    let failure: Option<&[u8]> = match converted {
        Ok(true) => None,
        Ok(false) => Some(b"reached lua stack limit"),
        Err(payload) => {
            drop(payload);
            Some(b"panic while converting a reply")
        }
    };
    match failure {
        None => 1,
        Some(message) => {
            push_bytes(state, message);
            ffi::lua_error(state)
        }
    }
}

unsafe fn push_bytes(state: *mut ffi::lua_State, bytes: &[u8]) {
    ffi::lua_pushlstring(state, bytes.as_ptr().cast(), bytes.len());
}

/// Sets `table[name] = value on top` for the table just below the value.
unsafe fn set_field(state: *mut ffi::lua_State, name: &str) {
    push_bytes(state, name.as_bytes());
    ffi::lua_insert(state, -2);
    ffi::lua_rawset(state, -3);
}

/// Pushes `{name = value on top}` in place of the value.
unsafe fn wrap(state: *mut ffi::lua_State, name: &str) {
    ffi::lua_createtable(state, 0, 1);
    ffi::lua_insert(state, -2);
    set_field(state, name);
}

/// Pushes a number's `%.17g` text (a RESP2 double reply) from a stack buffer.
unsafe fn push_double_text(state: *mut ffi::lua_State, value: f64) {
    let mut buf = [0u8; 64];
    let len = {
        let text = crate::resp::reply::format_double(value);
        let len = text.len().min(buf.len());
        buf[..len].copy_from_slice(&text.as_bytes()[..len]);
        len
    };
    push_bytes(state, &buf[..len]);
}

/// Pushes a reply as the Lua value a script speaking RESP3 (`resp3`) or RESP2 gets (the conversions of
/// the module comment of [`super::convert`]). False when the stack has no room for it.
unsafe fn push_value(state: *mut ffi::lua_State, reply: &Reply, resp3: bool) -> bool {
    // Room for a table, a key and a value at this level.
    if ffi::lua_checkstack(state, 4) == 0 {
        return false;
    }
    match reply {
        Reply::Ok => {
            push_bytes(state, b"OK");
            wrap(state, "ok");
        }
        Reply::Simple(text) => {
            push_bytes(state, text.as_bytes());
            wrap(state, "ok");
        }
        Reply::Error(text) => {
            // The reply's own first word is its code (Redis prefixes `-` and parses it back).
            push_error_line(state, text.as_bytes(), true);
            wrap(state, "err");
            ffi::lua_pushboolean(state, 1);
            set_field(state, "ignore_error_stats_update");
        }
        Reply::Int(value) => ffi::lua_pushnumber(state, *value as f64),
        Reply::Bulk(bytes) => push_bytes(state, bytes),
        Reply::Nil | Reply::NilArray if resp3 => ffi::lua_pushnil(state),
        Reply::Nil | Reply::NilArray => ffi::lua_pushboolean(state, 0),
        Reply::Array(items) | Reply::Push(items) | Reply::Many(items) => return push_array(state, items, resp3),
        // Redis gives scripts no attributes: only the reply they describe.
        Reply::Attribute(_, inner) => return push_value(state, inner, resp3),
        // Sets and maps start from an empty table, as Redis's `lua_newtable`: a presized table lays its
        // keys out differently, and `pairs` (and the reply made from the table) would give them in
        // another order than Redis's (integer keys move to the array part as they come).
        Reply::Set(items) if resp3 => {
            ffi::lua_createtable(state, 0, 0);
            for item in items {
                if !push_value(state, item, resp3) {
                    return false;
                }
                ffi::lua_pushboolean(state, 1);
                ffi::lua_rawset(state, -3);
            }
            wrap(state, "set");
        }
        Reply::Set(items) => return push_array(state, items, resp3),
        Reply::Map(pairs) if resp3 => {
            ffi::lua_createtable(state, 0, 0);
            for (key, value) in pairs {
                if !push_value(state, key, resp3) || !push_value(state, value, resp3) {
                    return false;
                }
                ffi::lua_rawset(state, -3);
            }
            wrap(state, "map");
        }
        Reply::Map(pairs) => {
            ffi::lua_createtable(state, (pairs.len() * 2).min(c_int::MAX as usize) as c_int, 0);
            let mut index: c_int = 0;
            for (key, value) in pairs {
                for item in [key, value] {
                    if !push_value(state, item, resp3) {
                        return false;
                    }
                    index = index.saturating_add(1);
                    ffi::lua_rawseti_(state, -2, index);
                }
            }
        }
        Reply::Double(value) if resp3 => {
            ffi::lua_pushnumber(state, *value);
            wrap(state, "double");
        }
        Reply::Double(value) => push_double_text(state, *value),
        Reply::DoubleText(text) if resp3 => {
            ffi::lua_pushnumber(state, text.parse::<f64>().unwrap_or(f64::NAN));
            wrap(state, "double");
        }
        Reply::DoubleText(text) => push_bytes(state, text.as_bytes()),
        Reply::Bool(value) if resp3 => ffi::lua_pushboolean(state, c_int::from(*value)),
        Reply::Bool(value) => ffi::lua_pushnumber(state, f64::from(u8::from(*value))),
        Reply::Verbatim(format, bytes) if resp3 => {
            ffi::lua_createtable(state, 0, 2);
            push_bytes(state, bytes);
            set_field(state, "string");
            push_bytes(state, format.as_bytes());
            set_field(state, "format");
            wrap(state, "verbatim_string");
        }
        Reply::Verbatim(_, bytes) => push_bytes(state, bytes),
        Reply::BigNumber(digits) if resp3 => {
            push_bytes(state, digits);
            wrap(state, "big_number");
        }
        Reply::BigNumber(digits) => push_bytes(state, digits),
        Reply::None => ffi::lua_pushnil(state),
    }
    true
}

unsafe fn push_array(state: *mut ffi::lua_State, items: &[Reply], resp3: bool) -> bool {
    ffi::lua_createtable(state, items.len().min(c_int::MAX as usize) as c_int, 0);
    let mut index: c_int = 0;
    for item in items {
        if !push_value(state, item, resp3) {
            return false;
        }
        index = index.saturating_add(1);
        ffi::lua_rawseti_(state, -2, index);
    }
    true
}

/// Pushes `{err = ...}` for an error line (see [`push_error_line`]; a leading `-` marks a code).
unsafe fn push_error_table(state: *mut ffi::lua_State, line: &[u8]) {
    match line.strip_prefix(b"-") {
        Some(rest) => push_error_line(state, rest, true),
        None => push_error_line(state, line, false),
    }
    wrap(state, "err");
}

/// Pushes the `err` text for an error line the way `luaPushErrorBuff` builds it: when the line came as
/// `-CODE message` (`coded`, given without its `-`), its first word is the code, else the code is `ERR`;
/// CR and LF around the message go.
unsafe fn push_error_line(state: *mut ffi::lua_State, line: &[u8], coded: bool) {
    let trim = |bytes: &[u8]| -> (usize, usize) {
        let start = bytes.iter().position(|&b| b != b'\r' && b != b'\n').unwrap_or(bytes.len());
        let end = bytes.iter().rposition(|&b| b != b'\r' && b != b'\n').map_or(start, |i| i + 1);
        (start, end.max(start))
    };
    let space = if coded { line.iter().position(|&b| b == b' ') } else { None };
    match space {
        Some(space) => {
            let message = &line[space + 1..];
            let (start, end) = trim(message);
            if start == 0 {
                // `CODE message` is one slice of the line.
                push_bytes(state, &line[..space + 1 + end]);
            } else {
                push_bytes(state, &line[..space + 1]);
                push_bytes(state, &message[start..end]);
                ffi::lua_concat(state, 2);
            }
        }
        None => {
            let (start, end) = trim(line);
            push_bytes(state, b"ERR ");
            push_bytes(state, &line[start..end]);
            ffi::lua_concat(state, 2);
        }
    }
}

/// Defines C functions calling the registry function of the same key through [`raise_generic`].
macro_rules! raising_c {
    ($($name:ident => $key:expr),* $(,)?) => {$(
        #[doc = concat!("The C shell of `", $key, "` (it calls that registry function and raises its error).")]
        pub unsafe extern "C-unwind" fn $name(state: *mut ffi::lua_State) -> c_int {
            raise_generic(state, $key)
        }
    )*};
}

raising_c! {
    c_log => "velo.raw_log",
    c_sha1 => "velo.raw_sha1",
    c_setresp => "velo.raw_setresp",
    c_set_repl => "velo.raw_set_repl",
    c_acl_check => "velo.raw_acl_check",
}

/// Calls the registry function `key` (a Rust function returning `ok, value`, made with mlua) with the
/// arguments; raises its second result when its first is false, else returns it. The `redis.*` helpers
/// other than `call` are not hot, so they keep mlua's conversions; this owns nothing (`key` is
/// borrowed), so `lua_error`'s `longjmp` skips no destructor.
unsafe fn raise_generic(state: *mut ffi::lua_State, key: &str) -> c_int {
    let n = ffi::lua_gettop(state);
    if ffi::lua_checkstack(state, 3) == 0 {
        ffi::luaL_error(state, c"reached lua stack limit".as_ptr());
    }
    ffi::lua_pushlstring(state, key.as_ptr().cast(), key.len());
    ffi::lua_rawget(state, ffi::LUA_REGISTRYINDEX);
    ffi::lua_insert(state, 1);
    ffi::lua_call(state, n, 2);
    if ffi::lua_toboolean(state, -2) == 0 {
        ffi::lua_error(state);
    }
    1
}

/// A script's return value read off the stack, in order (a table's children follow its entry), before
/// it is built into a [`Reply`]: reading the stack must not own a reply tree while a Lua call could
/// raise, so the reading appends plain items to a vector its caller owns, and [`build`] makes the tree
/// once Lua is done.
enum Item {
    Bulk(Bytes),
    Int(i64),
    Bool(bool),
    Nil,
    Error(String),
    Status(String),
    Double(f64),
    BigNumber(Bytes),
    Verbatim(&'static str, Bytes),
    /// The next `n` items (trees) are its elements.
    Array(usize),
    /// The next `2 n` trees are its keys and values.
    Map(usize),
    /// The next `n` trees are its members.
    Set(usize),
}

/// What a script raised, read off the stack (see [`error_line`]).
enum Raised {
    /// An error table's `err`, `source` and `line` fields, as text.
    Table { err: Option<String>, source: Option<String>, line: Option<String> },
    /// A string (an error the handler did not see, such as "not enough memory").
    Text(String),
    /// Anything else.
    Other,
}

/// Nesting beyond this is answered with an error instead of overflowing the stack (Redis fails on its
/// Lua stack limit at a similar depth).
const MAX_DEPTH: usize = 1000;

/// A compiled script or function, as [`run_script`] starts it.
#[derive(Clone, Copy)]
pub enum ScriptFunction<'a> {
    /// Its registry slot ([`register`]): the run starts with a `lua_pcall` of its own rather than through
    /// mlua (see the module comment).
    Registered(c_int),
    /// Not registered (a library's function): the run starts through mlua.
    Unregistered(&'a Function),
}

/// Runs a script's compiled `function` under the interpreter's error handler (it adds `source`/`line`) with
/// KEYS and ARGV: as globals (`as_globals`, EVAL) or as its two arguments (FCALL). The reply for its
/// return value (`proto` is asked once the script is done: `redis.setresp` decides what booleans
/// become), or the error reply for what it raised; `Err` if the interpreter itself failed (out of
/// memory while setting up). The caller holds the interpreter exclusively.
pub fn run_script(
    vm: &super::vm::Vm,
    function: ScriptFunction<'_>,
    keys: &[Bytes],
    args: &[Bytes],
    as_globals: bool,
    name: &str,
    proto: impl FnOnce() -> Protocol,
) -> mlua::Result<Reply> {
    let mut items: Vec<Item> = Vec::new();
    let mut raised: Option<Raised> = None;
    match function {
        // SAFETY: see `run_registered`: the caller holds the interpreter exclusively (the EVAL state's lock)
        // and runs scripts from Rust, never from inside a Lua call.
        ScriptFunction::Registered(function) => unsafe {
            let mut run = Run {
                handler: vm.entry.handler,
                function,
                keys,
                args,
                as_globals,
                items: &mut items,
                raised: &mut raised,
            };
            run_registered(&vm.entry, &mut run)?;
        },
        // SAFETY: `exec_raw` runs the closure under `lua_pcall` with the handler and the function on the
        // stack; the closure captures only references (nothing it would own is skipped by a `longjmp`) and
        // appends to `items`/`raised`, which this frame owns, with no Lua call between making an owned
        // value and storing it. The stack is restored by `exec_raw`.
        ScriptFunction::Unregistered(function) => unsafe {
            vm.lua.exec_raw::<()>((&vm.handler, function), |state| {
                let handler_index = ffi::lua_gettop(state) - 1;
                run_on_stack(state, handler_index, keys, args, as_globals, &mut items, &mut raised);
            })?;
        },
    }
    resume_panic();
    Ok(match raised {
        Some(raised) => Reply::Error(error_line(raised, name).into()),
        None => build(&mut items.into_iter(), proto() == Protocol::Resp3),
    })
}

/// With the error handler at `handler_index` and the script's function on top: sets KEYS and ARGV (or
/// pushes them as arguments), calls the function under the handler, and reads what it returned or raised.
unsafe fn run_on_stack(
    state: *mut ffi::lua_State,
    handler_index: c_int,
    keys: &[Bytes],
    args: &[Bytes],
    as_globals: bool,
    items: &mut Vec<Item>,
    raised: &mut Option<Raised>,
) {
    let nargs = if as_globals {
        push_strings(state, keys);
        set_global(state, "KEYS");
        push_strings(state, args);
        set_global(state, "ARGV");
        0
    } else {
        push_strings(state, keys);
        push_strings(state, args);
        2
    };
    if ffi::lua_pcall(state, nargs, 1, handler_index) == 0 {
        read_value(state, ffi::lua_gettop(state), items, 0);
    } else {
        read_raised(state, ffi::lua_gettop(state), raised);
    }
}

/// An interpreter's main state with the registry slots of its error handler and of the C function that
/// starts a registered script, for running registered scripts without mlua's `exec_raw` ([`run_script`]).
#[derive(Debug)]
pub struct Entry {
    state: *mut ffi::lua_State,
    handler: c_int,
    runner: c_int,
}

// SAFETY: the state is used only by whoever holds the interpreter (`Vm`) exclusively, as mlua's own handle.
unsafe impl Send for Entry {}
unsafe impl Sync for Entry {}

/// Registers `handler` and the C function that starts registered scripts in `lua`'s registry, and keeps
/// its main state.
pub fn entry(lua: &Lua, handler: &Function) -> mlua::Result<Entry> {
    let mut entry = Entry { state: std::ptr::null_mut(), handler: 0, runner: 0 };
    // SAFETY: `exec_raw` runs the closure protected on the interpreter's main state (the state mlua calls
    // it with is the one `lua_pcall` ran on), with the handler pushed as its one argument, on top.
    unsafe {
        lua.exec_raw::<()>(handler, |state| {
            entry.state = state;
            entry.handler = ffi::luaL_ref(state, ffi::LUA_REGISTRYINDEX);
            ffi::lua_pushcfunction(state, run_entry);
            entry.runner = ffi::luaL_ref(state, ffi::LUA_REGISTRYINDEX);
        })?;
    }
    Ok(entry)
}

/// Registers a compiled script in `lua`'s registry (for the life of the interpreter: SCRIPT FLUSH
/// replaces the interpreter) so that [`run_script`] can push it without mlua.
pub fn register(lua: &Lua, function: &Function) -> mlua::Result<c_int> {
    let mut slot = 0;
    // SAFETY: as in `entry`: the function is the closure's one argument, on top.
    unsafe {
        lua.exec_raw::<()>(function, |state| slot = ffi::luaL_ref(state, ffi::LUA_REGISTRYINDEX))?;
    }
    Ok(slot)
}

/// What [`run_entry`] runs, passed as a light userdata.
struct Run<'a> {
    handler: c_int,
    function: c_int,
    keys: &'a [Bytes],
    args: &'a [Bytes],
    as_globals: bool,
    items: &'a mut Vec<Item>,
    raised: &'a mut Option<Raised>,
}

/// Runs a registered script as `exec_raw` would, without its cost per call: mlua's lock, and the two C
/// closures it creates for every protected section (garbage for the collector on every run). Outside the
/// protected call only calls that neither allocate nor raise are made (a registry read, a light
/// userdata, `lua_pcall` itself); everything else runs inside it, in [`run_entry`].
///
/// # Safety
/// The caller holds the interpreter exclusively (nothing else uses its state meanwhile) and is not inside
/// a call from Lua.
unsafe fn run_registered(entry: &Entry, run: &mut Run<'_>) -> mlua::Result<()> {
    let state = entry.state;
    let top = ffi::lua_gettop(state);
    // Room for the two values below without growing the stack (which could raise outside protection).
    if ffi::lua_checkstack(state, 2) == 0 {
        return Err(mlua::Error::RuntimeError("Lua stack overflow".into()));
    }
    ffi::lua_rawgeti(state, ffi::LUA_REGISTRYINDEX, entry.runner as _);
    ffi::lua_pushlightuserdata(state, (run as *mut Run<'_>).cast::<c_void>());
    let status = ffi::lua_pcall(state, 1, 0, 0);
    let result = if status == 0 {
        Ok(())
    } else if ffi::lua_type(state, -1) == ffi::LUA_TSTRING {
        Err(mlua::Error::RuntimeError(String::from_utf8_lossy(string_at(state, -1)).into_owned()))
    } else {
        Err(mlua::Error::RuntimeError("error running the script".into()))
    };
    ffi::lua_settop(state, top);
    result
}

/// The protected side of [`run_registered`]: pushes the handler and the script, then runs it.
unsafe extern "C-unwind" fn run_entry(state: *mut ffi::lua_State) -> c_int {
    let run = &mut *ffi::lua_touserdata(state, 1).cast::<Run<'_>>();
    ffi::lua_settop(state, 0);
    ffi::lua_rawgeti(state, ffi::LUA_REGISTRYINDEX, run.handler as _);
    ffi::lua_rawgeti(state, ffi::LUA_REGISTRYINDEX, run.function as _);
    run_on_stack(state, 1, run.keys, run.args, run.as_globals, run.items, run.raised);
    0
}

/// Pushes a table of strings (KEYS, ARGV).
unsafe fn push_strings(state: *mut ffi::lua_State, items: &[Bytes]) {
    ffi::lua_createtable(state, items.len().min(c_int::MAX as usize) as c_int, 0);
    let mut index: c_int = 0;
    for item in items {
        push_bytes(state, item);
        index = index.saturating_add(1);
        ffi::lua_rawseti_(state, -2, index);
    }
}

/// Sets the real global `name` (under the read-only proxy) to the value on top, popping it.
unsafe fn set_global(state: *mut ffi::lua_State, name: &str) {
    push_bytes(state, name.as_bytes());
    ffi::lua_insert(state, -2);
    ffi::lua_rawset(state, ffi::LUA_GLOBALSINDEX);
}

/// The bytes of the string at `index` (the caller checked its type: no conversion in place).
unsafe fn string_at<'a>(state: *mut ffi::lua_State, index: c_int) -> &'a [u8] {
    let mut len = 0;
    let data = ffi::lua_tolstring(state, index, &mut len);
    std::slice::from_raw_parts(data.cast::<u8>(), len)
}

/// Pushes `table[name]` (raw) for the table at the absolute `index`; its type.
unsafe fn push_field(state: *mut ffi::lua_State, index: c_int, name: &str) -> c_int {
    push_bytes(state, name.as_bytes());
    ffi::lua_rawget(state, index);
    ffi::lua_type(state, -1)
}

/// Appends the value at the absolute `index` (Redis's Lua → reply conversion; see [`super::convert`]).
unsafe fn read_value(state: *mut ffi::lua_State, index: c_int, items: &mut Vec<Item>, depth: usize) {
    if depth > MAX_DEPTH {
        items.push(Item::Error("ERR reached lua stack limit".into()));
        return;
    }
    match ffi::lua_type(state, index) {
        ffi::LUA_TSTRING => items.push(Item::Bulk(Bytes::copy_from_slice(string_at(state, index)))),
        ffi::LUA_TBOOLEAN => items.push(Item::Bool(ffi::lua_toboolean(state, index) != 0)),
        ffi::LUA_TNUMBER => items.push(Item::Int(super::convert::number_to_i64(ffi::lua_tonumber(state, index)))),
        ffi::LUA_TTABLE => read_table(state, index, items, depth),
        _ => items.push(Item::Nil),
    }
}

unsafe fn read_table(state: *mut ffi::lua_State, index: c_int, items: &mut Vec<Item>, depth: usize) {
    // A field, a key and a value at this level.
    if ffi::lua_checkstack(state, 4) == 0 {
        items.push(Item::Error("ERR reached lua stack limit".into()));
        return;
    }
    let top = ffi::lua_gettop(state);
    if push_field(state, index, "err") == ffi::LUA_TSTRING {
        items.push(Item::Error(String::from_utf8_lossy(string_at(state, -1)).into_owned()));
        ffi::lua_settop(state, top);
        return;
    }
    ffi::lua_settop(state, top);
    if push_field(state, index, "ok") == ffi::LUA_TSTRING {
        items.push(Item::Status(String::from_utf8_lossy(string_at(state, -1)).into_owned()));
        ffi::lua_settop(state, top);
        return;
    }
    ffi::lua_settop(state, top);
    if push_field(state, index, "double") == ffi::LUA_TNUMBER {
        items.push(Item::Double(ffi::lua_tonumber(state, -1)));
        ffi::lua_settop(state, top);
        return;
    }
    ffi::lua_settop(state, top);
    if push_field(state, index, "big_number") == ffi::LUA_TSTRING {
        let digits: Vec<u8> =
            string_at(state, -1).iter().map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }).collect();
        items.push(Item::BigNumber(Bytes::from(digits)));
        ffi::lua_settop(state, top);
        return;
    }
    ffi::lua_settop(state, top);
    if push_field(state, index, "verbatim_string") == ffi::LUA_TTABLE {
        let verbatim = top + 1;
        if push_field(state, verbatim, "format") == ffi::LUA_TSTRING
            && push_field(state, verbatim, "string") == ffi::LUA_TSTRING
        {
            let format = super::convert::verbatim_format(string_at(state, -2));
            items.push(Item::Verbatim(format, Bytes::copy_from_slice(string_at(state, -1))));
            ffi::lua_settop(state, top);
            return;
        }
    }
    ffi::lua_settop(state, top);
    if push_field(state, index, "map") == ffi::LUA_TTABLE {
        let (map, at) = (top + 1, items.len());
        items.push(Item::Map(0));
        let mut count = 0;
        ffi::lua_pushnil(state);
        while ffi::lua_next(state, map) != 0 {
            read_value(state, top + 2, items, depth + 1);
            read_value(state, top + 3, items, depth + 1);
            count += 1;
            ffi::lua_settop(state, top + 2);
        }
        items[at] = Item::Map(count);
        ffi::lua_settop(state, top);
        return;
    }
    ffi::lua_settop(state, top);
    if push_field(state, index, "set") == ffi::LUA_TTABLE {
        let (set, at) = (top + 1, items.len());
        items.push(Item::Set(0));
        let mut count = 0;
        ffi::lua_pushnil(state);
        while ffi::lua_next(state, set) != 0 {
            read_value(state, top + 2, items, depth + 1);
            count += 1;
            ffi::lua_settop(state, top + 2);
        }
        items[at] = Item::Set(count);
        ffi::lua_settop(state, top);
        return;
    }
    ffi::lua_settop(state, top);
    let at = items.len();
    items.push(Item::Array(0));
    let mut count: usize = 0;
    loop {
        ffi::lua_rawgeti_(state, index, (count + 1).min(c_int::MAX as usize) as c_int);
        if ffi::lua_type(state, -1) == ffi::LUA_TNIL || count >= c_int::MAX as usize {
            break;
        }
        read_value(state, top + 1, items, depth + 1);
        ffi::lua_settop(state, top);
        count += 1;
    }
    items[at] = Item::Array(count);
    ffi::lua_settop(state, top);
}

/// Reads what a script raised (the value at the absolute `index`) into `raised`, which the caller
/// owns: each field is stored there as soon as it is read, before the next Lua call that could raise
/// (pushing the next field's name).
unsafe fn read_raised(state: *mut ffi::lua_State, index: c_int, raised: &mut Option<Raised>) {
    match ffi::lua_type(state, index) {
        ffi::LUA_TTABLE => {
            *raised = Some(Raised::Table { err: None, source: None, line: None });
            for name in ["err", "source", "line"] {
                let top = ffi::lua_gettop(state);
                let text = match push_field(state, index, name) {
                    ffi::LUA_TSTRING => Some(String::from_utf8_lossy(string_at(state, -1)).into_owned()),
                    ffi::LUA_TNUMBER => {
                        let n = ffi::lua_tonumber(state, -1);
                        Some(if n.fract() == 0.0 { format!("{}", n as i64) } else { n.to_string() })
                    }
                    _ => None,
                };
                if let Some(Raised::Table { err, source, line }) = raised.as_mut() {
                    *match name {
                        "err" => err,
                        "source" => source,
                        _ => line,
                    } = text;
                }
                ffi::lua_settop(state, top);
            }
        }
        ffi::LUA_TSTRING => *raised = Some(Raised::Text(String::from_utf8_lossy(string_at(state, index)).into_owned())),
        _ => *raised = Some(Raised::Other),
    }
}

/// The error line for a script that raised (Redis's `luaCallFunction`): the `err` text, then
/// ` script: <name>, on <source>:<line>.` when the handler found where.
fn error_line(raised: Raised, name: &str) -> String {
    match raised {
        Raised::Table { err, source, line } => {
            let mut text = err.unwrap_or_else(|| "(null)".into());
            if let (Some(source), Some(line)) = (source, line) {
                text.push_str(&format!(" script: {name}, on {source}:{line}."));
            }
            text
        }
        Raised::Text(text) => format!("ERR Error running script {name}, {text:.100}"),
        Raised::Other => format!("ERR Error running script {name}, execution failure"),
    }
}

/// Builds the reply tree of the next item (see [`Item`]); `resp3` decides what booleans become.
fn build(items: &mut std::vec::IntoIter<Item>, resp3: bool) -> Reply {
    let Some(item) = items.next() else {
        return Reply::Nil;
    };
    match item {
        Item::Bulk(bytes) => Reply::Bulk(bytes),
        Item::Int(value) => Reply::Int(value),
        Item::Bool(value) if resp3 => Reply::Bool(value),
        Item::Bool(true) => Reply::Int(1),
        Item::Bool(false) | Item::Nil => Reply::Nil,
        Item::Error(text) => Reply::Error(text.into()),
        Item::Status(text) => Reply::Simple(text.into()),
        Item::Double(value) => Reply::Double(value),
        Item::BigNumber(digits) => Reply::BigNumber(digits),
        Item::Verbatim(format, text) => Reply::Verbatim(format, text),
        Item::Array(n) => Reply::Array((0..n).map(|_| build(items, resp3)).collect()),
        Item::Map(n) => Reply::Map((0..n).map(|_| (build(items, resp3), build(items, resp3))).collect()),
        Item::Set(n) => Reply::Set((0..n).map(|_| build(items, resp3)).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_arguments_are_percent_17g() {
        let text = |n: f64| String::from_utf8(number_arg(n)).unwrap();
        assert_eq!(text(3.0), "3");
        assert_eq!(text(-42.0), "-42");
        assert_eq!(text(1e16), "10000000000000000");
        assert_eq!(text(1e17), "1e+17");
        assert_eq!(text(123456789012345678.0), "1.2345678901234568e+17");
        assert_eq!(text(-0.0), "-0");
        assert_eq!(text(0.1), "0.10000000000000001");
        assert_eq!(text(f64::INFINITY), "inf");
        assert_eq!(text(f64::NEG_INFINITY), "-inf");
        assert_eq!(text(-f64::NAN), "-nan");
    }
}
