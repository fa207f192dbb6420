//! Libraries Redis bundles for scripts, written in Rust: `bit` (LuaBitOp), `cjson` (encode/decode), and
//! Redis's `math.random` (a 48-bit linear congruential generator like `redisLrand48`).
//!
//! Each function returns `ok, values...` (see `vm`): `false, message` raises `message` in the script.
//! `cmsgpack` and `struct` are in [`super::pack`].

use std::sync::atomic::{AtomicU64, Ordering};

use mlua::{Lua, Table, Value, Variadic};

use super::vm::number_of;

/// The library tables: name → table of functions.
pub fn create(lua: &Lua) -> mlua::Result<Table> {
    let libs = lua.create_table()?;
    for (name, lib) in [("bit", bit(lua)?), ("cjson", cjson(lua)?)] {
        let shells = lua.create_table()?;
        for pair in lib.pairs::<Value, Value>() {
            let (key, value) = pair?;
            match value {
                Value::Function(f) => shells.raw_set(key, shell(lua, f)?)?,
                other => shells.raw_set(key, other)?,
            }
        }
        libs.raw_set(name, shells)?;
    }
    Ok(libs)
}

/// `f` (returning `ok, values...`) as a C function that returns the values or raises the message with
/// the caller's position (`luaL_error`), as Redis's C libraries raise theirs: "user_script:1: bad
/// argument ...". A C function and not a Lua wrapper, so that a script's `return cjson.encode(...)` is no
/// tail call hiding the script's line.
pub fn shell(lua: &Lua, f: mlua::Function) -> mlua::Result<mlua::Function> {
    // SAFETY: `exec_raw` leaves `f` on the stack for `lua_pushcclosure` to take as upvalue 1; the closure
    // only uses the Lua stack API on its own state and owns nothing when it raises.
    unsafe {
        lua.exec_raw(f, |state| {
            mlua::ffi::lua_pushcclosure(state, shell_call, 1);
        })
    }
}

/// In a C closure: calls its upvalue 1 with the closure's arguments, leaving every result on the stack.
///
/// # Safety
/// `state` must be the running state of a C closure whose upvalue 1 is a function.
pub(super) unsafe fn call_upvalue(state: *mut mlua::ffi::lua_State) {
    use mlua::ffi;
    let n = ffi::lua_gettop(state);
    if ffi::lua_checkstack(state, 3) == 0 {
        ffi::luaL_error(state, c"reached lua stack limit".as_ptr());
    }
    ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
    ffi::lua_insert(state, 1);
    ffi::lua_call(state, n, ffi::LUA_MULTRET);
}

unsafe extern "C-unwind" fn shell_call(state: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    use mlua::ffi;
    call_upvalue(state);
    let top = ffi::lua_gettop(state);
    if top >= 1 && ffi::lua_toboolean(state, 1) != 0 {
        // The values above the `ok` flag.
        return top - 1;
    }
    if ffi::lua_type(state, 2) == ffi::LUA_TSTRING {
        ffi::luaL_where(state, 1);
        ffi::lua_pushvalue(state, 2);
        ffi::lua_concat(state, 2);
    } else {
        ffi::lua_pushvalue(state, 2);
    }
    ffi::lua_error(state)
}

fn fail(lua: &Lua, message: String) -> mlua::Result<Variadic<Value>> {
    Ok(Variadic::from_iter([Value::Boolean(false), Value::String(lua.create_string(message)?)]))
}

fn values(values: impl IntoIterator<Item = Value>) -> Variadic<Value> {
    std::iter::once(Value::Boolean(true)).chain(values).collect()
}

/// LuaBitOp's argument conversion: the number modulo 2^32 as a signed 32-bit integer.
fn tobit(value: f64) -> i32 {
    // LuaBitOp adds 2^52+2^51 and takes the low word, which rounds to nearest; do the same.
    let rounded = value.round_ties_even();
    (rounded.rem_euclid(4_294_967_296.0) as u64 as u32) as i32
}

fn bit_args(lua: &Lua, args: &[Value], name: &str) -> Result<Vec<i32>, mlua::Result<Variadic<Value>>> {
    let mut out = Vec::with_capacity(args.len());
    for (index, arg) in args.iter().enumerate() {
        match number_of(arg) {
            Some(n) => out.push(tobit(n)),
            None => {
                let got = match arg {
                    Value::Nil => "no value".to_string(),
                    other => other.type_name().to_string(),
                };
                return Err(fail(lua, format!("bad argument #{} to '{name}' (number expected, got {got})", index + 1)));
            }
        }
    }
    if out.is_empty() {
        return Err(fail(lua, format!("bad argument #1 to '{name}' (number expected, got no value)")));
    }
    Ok(out)
}

fn bit(lua: &Lua) -> mlua::Result<Table> {
    let table = lua.create_table()?;
    type Op = fn(&[i32]) -> i32;
    let ops: [(&str, Op); 12] = [
        ("tobit", |a| a[0]),
        ("bnot", |a| !a[0]),
        ("band", |a| a.iter().fold(-1, |x, y| x & y)),
        ("bor", |a| a.iter().fold(0, |x, y| x | y)),
        ("bxor", |a| a.iter().fold(0, |x, y| x ^ y)),
        ("lshift", |a| ((a[0] as u32).wrapping_shl(a.get(1).copied().unwrap_or(0) as u32 & 31)) as i32),
        ("rshift", |a| ((a[0] as u32).wrapping_shr(a.get(1).copied().unwrap_or(0) as u32 & 31)) as i32),
        ("arshift", |a| a[0].wrapping_shr(a.get(1).copied().unwrap_or(0) as u32 & 31)),
        ("rol", |a| (a[0] as u32).rotate_left(a.get(1).copied().unwrap_or(0) as u32 & 31) as i32),
        ("ror", |a| (a[0] as u32).rotate_right(a.get(1).copied().unwrap_or(0) as u32 & 31) as i32),
        ("bswap", |a| a[0].swap_bytes()),
        ("tohex", |a| a[0]),
    ];
    for (name, op) in ops {
        let function = lua.create_function(move |lua, args: Variadic<Value>| {
            let numbers = match bit_args(lua, &args, name) {
                Ok(numbers) => numbers,
                Err(failure) => return failure,
            };
            if name == "tohex" {
                let mut digits = if args.len() > 1 { numbers.get(1).copied().unwrap_or(8) } else { 8 };
                let upper = digits < 0;
                if upper {
                    digits = -digits;
                }
                let digits = digits.clamp(1, 8) as usize;
                let value = (numbers[0] as u32) as u64 & ((1u64 << (4 * digits)) - 1);
                let text = if upper { format!("{value:0digits$X}") } else { format!("{value:0digits$x}") };
                return Ok(values([Value::String(lua.create_string(text)?)]));
            }
            Ok(values([Value::Number(f64::from(op(&numbers)))]))
        })?;
        table.raw_set(name, function)?;
    }
    Ok(table)
}

/// lua-cjson's settings, per interpreter as in Redis (each Lua state has its own).
#[derive(Debug, Clone, Copy)]
struct JsonConfig {
    encode_max_depth: i64,
    decode_max_depth: i64,
    /// 0 `off` (an error), 1 `on` (`nan`, `inf`), 2 `null`.
    encode_invalid_numbers: u8,
    encode_keep_buffer: bool,
    encode_number_precision: i64,
}

impl Default for JsonConfig {
    fn default() -> JsonConfig {
        JsonConfig {
            encode_max_depth: 1000,
            decode_max_depth: 1000,
            encode_invalid_numbers: 0,
            encode_keep_buffer: true,
            encode_number_precision: 14,
        }
    }
}

type SharedJsonConfig = std::sync::Arc<std::sync::Mutex<JsonConfig>>;

fn json_config(shared: &SharedJsonConfig) -> std::sync::MutexGuard<'_, JsonConfig> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

/// lua-cjson's integer setting (`json_integer_option`): sets it when given, returns it.
fn json_integer_setting(
    lua: &Lua,
    name: &str,
    args: &Variadic<Value>,
    range: (i64, i64),
    setting: &mut i64,
) -> mlua::Result<Variadic<Value>> {
    match args.first() {
        None | Some(Value::Nil) => {}
        Some(value @ (Value::Integer(_) | Value::Number(_))) => {
            let n = number_of(value).unwrap_or(0.0) as i64;
            if n < range.0 || n > range.1 {
                return fail(
                    lua,
                    format!("bad argument #1 to '{name}' (expected integer between {} and {})", range.0, range.1),
                );
            }
            *setting = n;
        }
        Some(other) => {
            return fail(lua, format!("bad argument #1 to '{name}' (number expected, got {})", other.type_name()))
        }
    }
    Ok(values([Value::Integer(*setting)]))
}

/// lua-cjson's enumerated setting (`json_enum_option`): `true`/`false` or one of `options`; returns a
/// boolean for the first two, else the option's name.
fn json_enum_setting(
    lua: &Lua,
    name: &str,
    args: &Variadic<Value>,
    options: &[&str],
    setting: &mut u8,
) -> mlua::Result<Variadic<Value>> {
    match args.first() {
        None | Some(Value::Nil) => {}
        Some(Value::Boolean(b)) => *setting = u8::from(*b),
        Some(Value::String(text)) => match options.iter().position(|o| o.as_bytes() == &text.as_bytes()[..]) {
            Some(index) => *setting = index as u8,
            None => {
                let text = String::from_utf8_lossy(&text.as_bytes()).into_owned();
                return fail(lua, format!("bad argument #1 to '{name}' (invalid option '{text}')"));
            }
        },
        Some(other) => {
            return fail(lua, format!("bad argument #1 to '{name}' (string expected, got {})", other.type_name()))
        }
    }
    Ok(values([if *setting <= 1 {
        Value::Boolean(*setting == 1)
    } else {
        Value::String(lua.create_string(options[*setting as usize])?)
    }]))
}

fn cjson(lua: &Lua) -> mlua::Result<Table> {
    let table = lua.create_table()?;
    let config = SharedJsonConfig::default();
    let shared = config.clone();
    table.raw_set(
        "encode",
        lua.create_function(move |lua, args: Variadic<Value>| {
            if args.len() != 1 {
                return fail(lua, "bad argument #1 to 'encode' (expected 1 argument)".into());
            }
            let config = *json_config(&shared);
            let mut out = String::new();
            match encode_json(&args[0], &mut out, 0, &config) {
                Ok(()) => Ok(values([Value::String(lua.create_string(out)?)])),
                Err(message) => fail(lua, message),
            }
        })?,
    )?;
    let shared = config.clone();
    table.raw_set(
        "decode",
        lua.create_function(move |lua, args: Variadic<Value>| {
            // lua-cjson: `luaL_argcheck(gettop == 1)`, then `luaL_checklstring` (numbers are strings).
            if args.len() != 1 {
                return fail(lua, "bad argument #1 to 'decode' (expected 1 argument)".into());
            }
            let text = match &args[0] {
                Value::String(text) => text.clone(),
                number @ (Value::Integer(_) | Value::Number(_)) => match lua.coerce_string(number.clone())? {
                    Some(text) => text,
                    None => return fail(lua, "bad argument #1 to 'decode' (string expected, got number)".into()),
                },
                other => {
                    let got = other.type_name();
                    return fail(lua, format!("bad argument #1 to 'decode' (string expected, got {got})"));
                }
            };
            let text = text.as_bytes();
            let max_depth = json_config(&shared).decode_max_depth;
            if let Some((depth, at)) = too_deep(&text, max_depth) {
                return fail(lua, format!("Found too many nested data structures ({depth}) at character {at}"));
            }
            match serde_json::from_slice::<serde_json::Value>(&text) {
                Ok(json) => Ok(values([decode_json(lua, &json)?])),
                Err(error) => {
                    fail(lua, format!("Expected value but found invalid token at character {}", error.column()))
                }
            }
        })?,
    )?;
    let shared = config.clone();
    table.raw_set(
        "encode_max_depth",
        lua.create_function(move |lua, args: Variadic<Value>| {
            let mut config = json_config(&shared);
            json_integer_setting(lua, "encode_max_depth", &args, (1, i64::from(i32::MAX)), &mut config.encode_max_depth)
        })?,
    )?;
    let shared = config.clone();
    table.raw_set(
        "decode_max_depth",
        lua.create_function(move |lua, args: Variadic<Value>| {
            let mut config = json_config(&shared);
            json_integer_setting(lua, "decode_max_depth", &args, (1, i64::from(i32::MAX)), &mut config.decode_max_depth)
        })?,
    )?;
    let shared = config.clone();
    table.raw_set(
        "encode_number_precision",
        lua.create_function(move |lua, args: Variadic<Value>| {
            let mut config = json_config(&shared);
            json_integer_setting(lua, "encode_number_precision", &args, (1, 14), &mut config.encode_number_precision)
        })?,
    )?;
    let shared = config.clone();
    table.raw_set(
        "encode_invalid_numbers",
        lua.create_function(move |lua, args: Variadic<Value>| {
            let mut config = json_config(&shared);
            let options = ["off", "on", "null"];
            json_enum_setting(lua, "encode_invalid_numbers", &args, &options, &mut config.encode_invalid_numbers)
        })?,
    )?;
    let shared = config;
    table.raw_set(
        "encode_keep_buffer",
        // Buffer reuse is lua-cjson's allocation detail; the setting is kept and reported.
        lua.create_function(move |lua, args: Variadic<Value>| {
            let mut config = json_config(&shared);
            let mut setting = u8::from(config.encode_keep_buffer);
            let reply = json_enum_setting(lua, "encode_keep_buffer", &args, &["off", "on"], &mut setting);
            config.encode_keep_buffer = setting == 1;
            reply
        })?,
    )?;
    table.raw_set("null", Value::LightUserData(mlua::LightUserData(std::ptr::null_mut())))?;
    Ok(table)
}

/// The first nesting deeper than `max` in JSON text: its depth and lua-cjson's character position
/// (just after the opening bracket). Brackets inside strings do not count.
fn too_deep(text: &[u8], max: i64) -> Option<(i64, usize)> {
    let (mut depth, mut in_string, mut escaped) = (0i64, false, false);
    for (at, &b) in text.iter().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return Some((depth, at + 1));
                }
            }
            b'}' | b']' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// cjson's number text: `%.14g` (the precision is `encode_number_precision`); NaN and infinities as
/// `encode_invalid_numbers` says.
fn json_number(n: f64, out: &mut String, config: &JsonConfig) -> Result<(), String> {
    if n.is_nan() || n.is_infinite() {
        match config.encode_invalid_numbers {
            0 => return Err("Cannot serialise number: must not be NaN or Inf".into()),
            2 => {
                out.push_str("null");
                return Ok(());
            }
            _ if n.is_nan() => {
                out.push_str("nan");
                return Ok(());
            }
            _ => {
                out.push_str(if n > 0.0 { "inf" } else { "-inf" });
                return Ok(());
            }
        }
    }
    out.push_str(&crate::resp::reply::format_g(n, config.encode_number_precision as usize));
    Ok(())
}

fn json_string(bytes: &[u8], out: &mut String) {
    out.push('"');
    for &b in bytes {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'/' => out.push_str("\\/"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            b if b < 0x20 || b == 0x7f => out.push_str(&format!("\\u{b:04x}")),
            b => out.push(b as char),
        }
    }
    out.push('"');
}

/// `depth`: the number of tables around `value`.
fn encode_json(value: &Value, out: &mut String, depth: i64, config: &JsonConfig) -> Result<(), String> {
    match value {
        Value::Nil => out.push_str("null"),
        Value::LightUserData(p) if p.0.is_null() => out.push_str("null"),
        Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Integer(i) => json_number(*i as f64, out, config)?,
        Value::Number(n) => json_number(*n, out, config)?,
        Value::String(s) => json_string(&s.as_bytes(), out),
        Value::Table(table) => {
            if depth + 1 > config.encode_max_depth {
                return Err(format!("Cannot serialise, excessive nesting ({})", depth + 1));
            }
            // An array when every key is a positive integer (cjson's sparse-array rules aside).
            let mut max = 0usize;
            let mut count = 0usize;
            let mut array = true;
            for pair in table.clone().pairs::<Value, Value>() {
                let (key, _) = pair.map_err(|e| e.to_string())?;
                count += 1;
                match number_of(&key) {
                    Some(n) if matches!(key, Value::Integer(_) | Value::Number(_)) && n >= 1.0 && n.fract() == 0.0 => {
                        max = max.max(n as usize)
                    }
                    _ => array = false,
                }
            }
            if array && count > 0 && max <= count * 2 + 10 {
                out.push('[');
                for index in 1..=max {
                    if index > 1 {
                        out.push(',');
                    }
                    let item: Value = table.raw_get(index).map_err(|e| e.to_string())?;
                    encode_json(&item, out, depth + 1, config)?;
                }
                out.push(']');
            } else if array && count > 0 && max > count * 2 + 10 {
                return Err("Cannot serialise table: excessively sparse array".into());
            } else {
                out.push('{');
                let mut first = true;
                for pair in table.clone().pairs::<Value, Value>() {
                    let (key, item) = pair.map_err(|e| e.to_string())?;
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    match &key {
                        Value::String(s) => json_string(&s.as_bytes(), out),
                        Value::Integer(_) | Value::Number(_) => {
                            let mut text = String::new();
                            json_number(number_of(&key).unwrap_or(0.0), &mut text, config)?;
                            json_string(text.as_bytes(), out);
                        }
                        _ => return Err("Cannot serialise table: table key must be a number or string".into()),
                    }
                    out.push(':');
                    encode_json(&item, out, depth + 1, config)?;
                }
                out.push('}');
            }
        }
        other => return Err(format!("Cannot serialise {}: type not supported", other.type_name())),
    }
    Ok(())
}

fn decode_json(lua: &Lua, json: &serde_json::Value) -> mlua::Result<Value> {
    Ok(match json {
        serde_json::Value::Null => Value::LightUserData(mlua::LightUserData(std::ptr::null_mut())),
        serde_json::Value::Bool(b) => Value::Boolean(*b),
        serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(s) => Value::String(lua.create_string(s)?),
        serde_json::Value::Array(items) => {
            let table = lua.create_table_with_capacity(items.len(), 0)?;
            for (index, item) in items.iter().enumerate() {
                table.raw_set(index + 1, decode_json(lua, item)?)?;
            }
            Value::Table(table)
        }
        serde_json::Value::Object(map) => {
            let table = lua.create_table()?;
            for (key, item) in map {
                table.raw_set(lua.create_string(key)?, decode_json(lua, item)?)?;
            }
            Value::Table(table)
        }
    })
}

/// The generator's state (48 bits), shared by every interpreter as Redis's is process-wide.
static RAND_STATE: AtomicU64 = AtomicU64::new(0x1234_ABCD_330E);

fn next_random() -> i32 {
    let x = RAND_STATE.load(Ordering::Relaxed);
    let next = (x.wrapping_mul(0x5_DEEC_E66D).wrapping_add(0xB)) & 0xFFFF_FFFF_FFFF;
    RAND_STATE.store(next, Ordering::Relaxed);
    (next >> 17) as i32
}

/// `math.random([m [, n]])` with Redis's generator.
pub fn random(lua: &Lua, args: Variadic<Value>) -> mlua::Result<Variadic<Value>> {
    let r = f64::from(next_random() % i32::MAX) / f64::from(i32::MAX);
    let int = |i: usize| number_of(&args[i]).map(|n| n as i64);
    let value = match args.len() {
        0 => r,
        1 => match int(0) {
            Some(u) if u >= 1 => (r * u as f64).floor() + 1.0,
            Some(_) => return fail(lua, "bad argument #1 to 'random' (interval is empty)".into()),
            None => return fail(lua, "bad argument #1 to 'random' (number expected)".into()),
        },
        2 => match (int(0), int(1)) {
            (Some(l), Some(u)) if l <= u => (r * (u - l + 1) as f64).floor() + l as f64,
            (Some(_), Some(_)) => return fail(lua, "bad argument #2 to 'random' (interval is empty)".into()),
            _ => return fail(lua, "bad argument #1 to 'random' (number expected)".into()),
        },
        _ => return fail(lua, "wrong number of arguments".into()),
    };
    Ok(values([Value::Number(value)]))
}

/// `math.randomseed(n)`.
pub fn randomseed(lua: &Lua, args: Variadic<Value>) -> mlua::Result<Variadic<Value>> {
    let Some(seed) = args.first().and_then(number_of) else {
        return fail(lua, "bad argument #1 to 'randomseed' (number expected, got no value)".into());
    };
    let seed = seed as i32 as u32 as u64;
    RAND_STATE.store((seed << 16) | 0x330E, Ordering::Relaxed);
    Ok(values([]))
}
