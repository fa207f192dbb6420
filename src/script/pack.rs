//! `struct` (Roberto Ierusalimschy's struct library) and `cmsgpack` (lua-cmsgpack 0.4.0) as Redis 7.0
//! loads them for scripts, written in Rust from their documented behaviour, quirks included: sizes are
//! those of x86-64 (`long` and `size_t` 8 bytes, `int` 4, native order little-endian, maximum alignment
//! 8); out-of-range float to integer casts give what x86-64 gives (`INT64_MIN`); a msgpack `uint 64`
//! above `i64::MAX` decodes negative (Redis pushes it as a `lua_Integer`); `unpack`'s error for a negative
//! offset prints the input length where it says "limit", as Redis's does.
//!
//! Each function is a C closure (see `native`) around a Rust function that returns `ok, values...`:
//! `true`, a table of the results and their count; `false, message` raises `message` with the caller's position
//! (`luaL_error`); `n, message` raises "bad argument #n to 'name' (message)" (`luaL_argerror`, the name
//! from the call site, `?` through `pcall`); `nil, message` raises the message as it is (`lua_error`).

use mlua::{Lua, Table, Value, Variadic};

/// Deepest nesting `cmsgpack.pack` encodes; deeper tables (and cycles) are encoded as nil.
const MAX_NESTING: usize = 16;
type Raw = fn(&Lua, Variadic<Value>) -> mlua::Result<Variadic<Value>>;

/// The library tables that are globals as they are: `struct` and `cmsgpack`.
pub fn create(lua: &Lua) -> mlua::Result<Table> {
    let libs = lua.create_table()?;
    let structlib = lua.create_table()?;
    let functions: [(&str, Raw); 3] = [("pack", struct_pack), ("unpack", struct_unpack), ("size", struct_size)];
    for (name, f) in functions {
        structlib.raw_set(name, native(lua, f)?)?;
    }
    libs.raw_set("struct", structlib)?;
    let msgpack = lua.create_table()?;
    let functions: [(&str, Raw); 4] =
        [("pack", mp_pack), ("unpack", mp_unpack), ("unpack_one", mp_unpack_one), ("unpack_limit", mp_unpack_limit)];
    for (name, f) in functions {
        msgpack.raw_set(name, native(lua, f)?)?;
    }
    msgpack.raw_set("_NAME", "cmsgpack")?;
    msgpack.raw_set("_VERSION", "lua-cmsgpack 0.4.0")?;
    msgpack.raw_set("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo")?;
    msgpack.raw_set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
    libs.raw_set("cmsgpack", msgpack)?;
    Ok(libs)
}

/// A C closure calling `f` (its upvalue) and raising as the module comment says. A C function, so that
/// the error's position and the argument errors' function name are the caller's, as in Redis.
fn native(lua: &Lua, f: Raw) -> mlua::Result<mlua::Function> {
    let inner = lua.create_function(f)?;
    // SAFETY: the closure only uses the Lua stack API on its own state; `exec_raw` leaves the inner
    // function on the stack for `lua_pushcclosure` to take as upvalue 1.
    unsafe {
        lua.exec_raw(inner, |state| {
            mlua::ffi::lua_pushcclosure(state, trampoline, 1);
        })
    }
}

unsafe extern "C-unwind" fn trampoline(state: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    use mlua::ffi;
    super::libs::call_upvalue(state);
    match ffi::lua_type(state, 1) {
        ffi::LUA_TBOOLEAN if ffi::lua_toboolean(state, 1) != 0 => {
            let count = ffi::lua_tointeger(state, 3) as std::ffi::c_int;
            ffi::lua_settop(state, 2);
            ffi::lua_remove(state, 1);
            if ffi::lua_checkstack(state, count) == 0 {
                ffi::luaL_error(state, c"stack overflow (too many results)".as_ptr());
            }
            for index in 1..=count {
                ffi::lua_rawgeti(state, 1, ffi::lua_Integer::from(index));
            }
            count
        }
        ffi::LUA_TNUMBER => {
            let narg = ffi::lua_tointeger(state, 1) as std::ffi::c_int;
            let message = ffi::lua_tolstring(state, 2, std::ptr::null_mut());
            ffi::luaL_argerror(state, narg, message)
        }
        ffi::LUA_TNIL => {
            ffi::lua_pushvalue(state, 2);
            ffi::lua_error(state)
        }
        _ => {
            ffi::luaL_where(state, 1);
            ffi::lua_pushvalue(state, 2);
            ffi::lua_concat(state, 2);
            ffi::lua_error(state)
        }
    }
}

/// A failure of a library function, raised by [`trampoline`].
enum Fail {
    /// `luaL_error`: the caller's position, then the message.
    Error(String),
    /// `luaL_argerror` for argument n.
    Arg(i64, String),
    /// `lua_error` of the message as it is.
    Raw(String),
}

type Outcome<T> = Result<T, Fail>;

fn finish(lua: &Lua, outcome: Outcome<Vec<Value>>) -> mlua::Result<Variadic<Value>> {
    Ok(match outcome {
        Ok(values) => {
            // The values go in a table that the C side unpacks onto its own stack: a Rust callback
            // cannot return as many values as a C function may (`cmsgpack.unpack` returns up to 7,999).
            let count = values.len();
            let table = lua.create_table_with_capacity(count, 0)?;
            for (index, value) in values.into_iter().enumerate() {
                table.raw_set(index + 1, value)?;
            }
            Variadic::from_iter([Value::Boolean(true), Value::Table(table), Value::Integer(count as i64)])
        }
        Err(Fail::Error(message)) => {
            Variadic::from_iter([Value::Boolean(false), Value::String(lua.create_string(message)?)])
        }
        Err(Fail::Arg(n, message)) => {
            Variadic::from_iter([Value::Integer(n), Value::String(lua.create_string(message)?)])
        }
        Err(Fail::Raw(message)) => Variadic::from_iter([Value::Nil, Value::String(lua.create_string(message)?)]),
    })
}

/// `luaL_typename` of argument `index` (0-based here).
fn type_name(args: &[Value], index: usize) -> &'static str {
    match args.get(index) {
        None => "no value",
        Some(Value::LightUserData(_)) => "userdata",
        Some(value) => value.type_name(),
    }
}

fn type_error(args: &[Value], index: usize, expected: &str) -> Fail {
    Fail::Arg(index as i64 + 1, format!("{expected} expected, got {}", type_name(args, index)))
}

/// `lua_tonumber`: numbers, and strings `strtod` reads whole (surrounding spaces allowed, hex too).
fn to_number(value: &Value) -> Option<f64> {
    match value {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        Value::String(s) => {
            let text = s.to_str().ok()?;
            let text = text.trim_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
            let (negative, digits) = match text.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, text.strip_prefix('+').unwrap_or(text)),
            };
            if let Some(hex) = digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
                let value = u64::from_str_radix(hex, 16).ok()? as f64;
                return Some(if negative { -value } else { value });
            }
            text.parse::<f64>().ok()
        }
        _ => None,
    }
}

/// `luaL_checknumber` of argument `index` (0-based).
fn check_number(args: &[Value], index: usize) -> Outcome<f64> {
    args.get(index).and_then(to_number).ok_or_else(|| type_error(args, index, "number"))
}

/// `luaL_checkinteger`: the number truncated (x86-64 `cvttsd2si`).
fn check_integer(args: &[Value], index: usize) -> Outcome<i64> {
    check_number(args, index).map(c_i64)
}

/// `luaL_optinteger`.
fn opt_integer(args: &[Value], index: usize, default: i64) -> Outcome<i64> {
    match args.get(index) {
        None | Some(Value::Nil) => Ok(default),
        Some(_) => check_integer(args, index),
    }
}

/// `luaL_checklstring`: strings, and numbers as `%.14g`.
fn check_bytes(args: &[Value], index: usize) -> Outcome<Vec<u8>> {
    match args.get(index) {
        Some(Value::String(s)) => Ok(s.as_bytes().to_vec()),
        Some(Value::Integer(i)) => Ok(i.to_string().into_bytes()),
        Some(Value::Number(n)) => Ok(crate::resp::reply::format_g(*n, 14).into_bytes()),
        _ => Err(type_error(args, index, "string")),
    }
}

/// A C `(int64_t)` cast of a double as x86-64 does it: out of range (and NaN) gives `INT64_MIN`.
fn c_i64(x: f64) -> i64 {
    if x.is_nan() || x >= 9_223_372_036_854_775_808.0 || x < -9_223_372_036_854_775_808.0 {
        i64::MIN
    } else {
        x as i64
    }
}

/// A C `(int)` cast of a double as x86-64 does it.
fn c_i32(x: f64) -> i32 {
    if x.is_nan() || x >= 2_147_483_648.0 || x < -2_147_483_648.0 {
        i32::MIN
    } else {
        x as i32
    }
}

// ----------------------------------------------------------------------------------------------------
// struct

const MAX_INT_SIZE: i64 = 32;
const MAX_ALIGN: usize = 8;

#[derive(Clone, Copy, PartialEq)]
enum Endian {
    Big,
    Little,
}

struct Header {
    endian: Endian,
    align: usize,
}

impl Header {
    fn new() -> Header {
        Header { endian: Endian::Little, align: 1 }
    }
}

/// A format string being read (C string: it ends at the first NUL).
struct Format<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Format<'a> {
    fn new(bytes: &'a [u8]) -> Format<'a> {
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        Format { bytes: &bytes[..end], at: 0 }
    }

    fn next(&mut self) -> Option<u8> {
        let byte = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(byte)
    }

    /// `getnum`: the digits at the cursor, or `default`.
    fn number(&mut self, default: i64) -> Outcome<i64> {
        if !self.bytes.get(self.at).is_some_and(u8::is_ascii_digit) {
            return Ok(default);
        }
        let mut value: i64 = 0;
        while let Some(&digit) = self.bytes.get(self.at).filter(|b| b.is_ascii_digit()) {
            let digit = i64::from(digit - b'0');
            if value > i64::from(i32::MAX) / 10 || value * 10 > i64::from(i32::MAX) - digit {
                return Err(Fail::Error("integral size overflow".into()));
            }
            value = value * 10 + digit;
            self.at += 1;
        }
        Ok(value)
    }

    /// `optsize`.
    fn size(&mut self, option: u8) -> Outcome<usize> {
        Ok(match option {
            b'B' | b'b' | b'x' => 1,
            b'H' | b'h' => 2,
            b'L' | b'l' | b'T' | b'd' => 8,
            b'f' => 4,
            b'c' => self.number(1)? as usize,
            b'i' | b'I' => {
                let size = self.number(4)?;
                if size > MAX_INT_SIZE {
                    return Err(Fail::Error(format!("integral size {size} is larger than limit of {MAX_INT_SIZE}")));
                }
                size as usize
            }
            _ => 0,
        })
    }

    /// `controloptions`.
    fn control(&mut self, option: u8, header: &mut Header) -> Outcome<()> {
        match option {
            b' ' => {}
            b'>' => header.endian = Endian::Big,
            b'<' => header.endian = Endian::Little,
            b'!' => {
                let align = self.number(MAX_ALIGN as i64)?;
                if align <= 0 || align & (align - 1) != 0 {
                    return Err(Fail::Error(format!("alignment {align} is not a power of 2")));
                }
                header.align = align as usize;
            }
            other => {
                return Err(Fail::Arg(1, format!("invalid format option '{}'", other as char)));
            }
        }
        Ok(())
    }
}

/// `gettoalign`: padding before an item of `size` at `len`.
fn to_align(len: usize, header: &Header, option: u8, size: usize) -> usize {
    if size == 0 || option == b'c' {
        return 0;
    }
    let size = size.min(header.align);
    (size.wrapping_sub(len & (size - 1))) & (size - 1)
}

fn ordered(mut bytes: Vec<u8>, endian: Endian) -> Vec<u8> {
    if endian == Endian::Big {
        bytes.reverse();
    }
    bytes
}

fn struct_pack(lua: &Lua, args: Variadic<Value>) -> mlua::Result<Variadic<Value>> {
    let outcome = (|| {
        let format = check_bytes(&args, 0)?;
        let mut format = Format::new(&format);
        let mut header = Header::new();
        let mut arg = 1;
        let mut out = Vec::new();
        while let Some(option) = format.next() {
            let mut size = format.size(option)?;
            let pad = to_align(out.len(), &header, option, size);
            out.resize(out.len() + pad, 0);
            match option {
                b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                    let n = pack_number(&args, arg)?;
                    arg += 1;
                    let mut value = if n < 0.0 { c_i64(n) as u64 } else { c_u64(n) };
                    let mut bytes = vec![0u8; size];
                    for byte in bytes.iter_mut() {
                        *byte = value as u8;
                        value >>= 8;
                    }
                    out.extend(ordered(bytes, header.endian));
                }
                b'x' => out.push(0),
                b'f' => {
                    let n = pack_number(&args, arg)? as f32;
                    arg += 1;
                    out.extend(ordered(n.to_le_bytes().to_vec(), header.endian));
                }
                b'd' => {
                    let n = pack_number(&args, arg)?;
                    arg += 1;
                    out.extend(ordered(n.to_le_bytes().to_vec(), header.endian));
                }
                b'c' | b's' => {
                    if arg == args.len() {
                        return Err(Fail::Arg(arg as i64 + 1, "string expected, got nil".into()));
                    }
                    let text = check_bytes(&args, arg)?;
                    arg += 1;
                    if size == 0 {
                        size = text.len();
                    }
                    if text.len() < size {
                        // Redis's check names the argument after the string (its counter has moved on).
                        return Err(Fail::Arg(arg as i64 + 1, "string too short".into()));
                    }
                    out.extend_from_slice(&text[..size]);
                    if option == b's' {
                        out.push(0);
                    }
                }
                other => format.control(other, &mut header)?,
            }
        }
        Ok(vec![Value::String(lua.create_string(&out).map_err(|e| Fail::Raw(e.to_string()))?)])
    })();
    finish(lua, outcome)
}

/// `luaL_checknumber` in `struct.pack`, which pushes a nil after its arguments (the first missing one
/// is "nil", not "no value").
fn pack_number(args: &[Value], index: usize) -> Outcome<f64> {
    if index == args.len() {
        return Err(Fail::Arg(index as i64 + 1, "number expected, got nil".into()));
    }
    check_number(args, index)
}

/// A C `(unsigned long)` cast of a double as x86-64 compilers do it.
fn c_u64(x: f64) -> u64 {
    if x < 0.0 {
        // Below 2^63 the conversion is the signed one.
        c_i64(x) as u64
    } else if x >= 18_446_744_073_709_551_616.0 || x.is_nan() {
        // The conversion subtracts 2^63 and converts again, which overflows to INT64_MIN; flipping
        // the top bit back gives 0.
        0
    } else {
        x as u64
    }
}

fn struct_unpack(lua: &Lua, args: Variadic<Value>) -> mlua::Result<Variadic<Value>> {
    let outcome = (|| {
        let format = check_bytes(&args, 0)?;
        let data = check_bytes(&args, 1)?;
        let start = opt_integer(&args, 2, 1)? as u64 as usize;
        if start == 0 {
            return Err(Fail::Arg(3, "offset must be 1 or greater".into()));
        }
        let mut pos = start - 1;
        let mut format = Format::new(&format);
        let mut header = Header::new();
        let mut results: Vec<Value> = Vec::new();
        let too_short = || Fail::Arg(2, "data string too short".into());
        let len = data.len();
        while let Some(option) = format.next() {
            let mut size = format.size(option)?;
            pos = pos.wrapping_add(to_align(pos, &header, option, size));
            if !(size <= len && pos <= len - size) {
                return Err(too_short());
            }
            match option {
                b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                    let bytes = &data[pos..pos + size];
                    let mut value: u64 = 0;
                    let mut push = |b: u8| value = (value << 8) | u64::from(b);
                    match header.endian {
                        Endian::Big => bytes.iter().for_each(|&b| push(b)),
                        Endian::Little => bytes.iter().rev().for_each(|&b| push(b)),
                    }
                    let number = if option.is_ascii_lowercase() {
                        let mask = u64::MAX.wrapping_shl((size as u32).wrapping_mul(8).wrapping_sub(1));
                        if value & mask != 0 {
                            value |= mask;
                        }
                        value as i64 as f64
                    } else {
                        value as f64
                    };
                    results.push(Value::Number(number));
                }
                b'x' => {}
                b'f' => {
                    let mut bytes: [u8; 4] = data[pos..pos + 4].try_into().unwrap_or_default();
                    if header.endian == Endian::Big {
                        bytes.reverse();
                    }
                    results.push(Value::Number(f64::from(f32::from_le_bytes(bytes))));
                }
                b'd' => {
                    let mut bytes: [u8; 8] = data[pos..pos + 8].try_into().unwrap_or_default();
                    if header.endian == Endian::Big {
                        bytes.reverse();
                    }
                    results.push(Value::Number(f64::from_le_bytes(bytes)));
                }
                b'c' => {
                    if size == 0 {
                        let previous = results.last().and_then(to_number);
                        let Some(previous) = previous else {
                            return Err(Fail::Error("format 'c0' needs a previous size".into()));
                        };
                        size = c_u64(previous) as usize;
                        results.pop();
                        if !(size <= len && pos <= len - size) {
                            return Err(too_short());
                        }
                    }
                    results.push(Value::String(lua.create_string(&data[pos..pos + size]).map_err(raw)?));
                }
                b's' => {
                    let Some(end) = data[pos..].iter().position(|&b| b == 0) else {
                        return Err(Fail::Error("unfinished string in data".into()));
                    };
                    size = end + 1;
                    results.push(Value::String(lua.create_string(&data[pos..pos + end]).map_err(raw)?));
                }
                other => format.control(other, &mut header)?,
            }
            pos += size;
        }
        results.push(Value::Integer(pos as i64 + 1));
        Ok(results)
    })();
    finish(lua, outcome)
}

fn struct_size(lua: &Lua, args: Variadic<Value>) -> mlua::Result<Variadic<Value>> {
    let outcome = (|| {
        let format = check_bytes(&args, 0)?;
        let mut format = Format::new(&format);
        let mut header = Header::new();
        let mut pos = 0usize;
        while let Some(option) = format.next() {
            let size = format.size(option)?;
            pos = pos.wrapping_add(to_align(pos, &header, option, size));
            if option == b's' {
                return Err(Fail::Arg(1, "option 's' has no fixed size".into()));
            } else if option == b'c' && size == 0 {
                return Err(Fail::Arg(1, "option 'c0' has no fixed size".into()));
            }
            if !option.is_ascii_alphanumeric() {
                format.control(option, &mut header)?;
            }
            pos = pos.wrapping_add(size);
        }
        Ok(vec![Value::Integer(pos as i64)])
    })();
    finish(lua, outcome)
}

fn raw(error: mlua::Error) -> Fail {
    Fail::Raw(error.to_string())
}

// ----------------------------------------------------------------------------------------------------
// cmsgpack

fn mp_pack(lua: &Lua, args: Variadic<Value>) -> mlua::Result<Variadic<Value>> {
    let outcome = (|| {
        if args.is_empty() {
            return Err(Fail::Arg(0, "MessagePack pack needs input.".into()));
        }
        let mut out = Vec::new();
        for value in args.iter() {
            encode(value, 0, &mut out).map_err(raw)?;
        }
        Ok(vec![Value::String(lua.create_string(&out).map_err(raw)?)])
    })();
    finish(lua, outcome)
}

fn encode_length(out: &mut Vec<u8>, n: usize, fix: u8, fix_max: usize, tag16: u8, tag32: u8) {
    if n <= fix_max {
        out.push(fix | n as u8);
    } else if n <= 0xffff {
        out.push(tag16);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(tag32);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn encode_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = bytes.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0xd9, len as u8]);
    } else if len <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(bytes);
}

fn encode_int(out: &mut Vec<u8>, n: i64) {
    if n >= 0 {
        if n <= 127 {
            out.push(n as u8);
        } else if n <= 0xff {
            out.extend_from_slice(&[0xcc, n as u8]);
        } else if n <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2_147_483_648 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn encode_number(out: &mut Vec<u8>, n: f64) {
    if !n.is_infinite() && c_i64(n) as f64 == n {
        encode_int(out, c_i64(n));
    } else if f64::from(n as f32) == n {
        out.push(0xca);
        out.extend_from_slice(&(n as f32).to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// True if the table's keys are exactly 1..N (numbers that are C `int`s, all positive).
fn is_array(table: &Table) -> mlua::Result<bool> {
    let (mut count, mut max) = (0i64, 0i32);
    for pair in table.pairs::<Value, Value>() {
        let (key, _) = pair?;
        let n = match key {
            Value::Integer(i) => i as f64,
            Value::Number(n) => n,
            _ => return Ok(false),
        };
        if n <= 0.0 || n.is_infinite() || f64::from(c_i32(n)) != n {
            return Ok(false);
        }
        max = max.max(c_i32(n));
        count += 1;
    }
    Ok(i64::from(max) == count)
}

fn encode(value: &Value, level: usize, out: &mut Vec<u8>) -> mlua::Result<()> {
    match value {
        Value::String(s) => encode_bytes(out, &s.as_bytes()),
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(i) => encode_number(out, *i as f64),
        Value::Number(n) => encode_number(out, *n),
        Value::Table(table) if level < MAX_NESTING => {
            if is_array(table)? {
                let len = table.raw_len();
                encode_length(out, len, 0x90, 15, 0xdc, 0xdd);
                for index in 1..=len {
                    encode(&table.get::<Value>(index)?, level + 1, out)?;
                }
            } else {
                // Counted, then encoded pair by pair: holding every pair at once would keep a Lua reference
                // per key and value, and a map of 100000 entries overflows the Lua stack mlua keeps them on.
                let count = table.pairs::<Value, Value>().count();
                encode_length(out, count, 0x80, 15, 0xde, 0xdf);
                for pair in table.pairs::<Value, Value>() {
                    let (key, value) = pair?;
                    encode(&key, level + 1, out)?;
                    encode(&value, level + 1, out)?;
                }
            }
        }
        _ => out.push(0xc0),
    }
    Ok(())
}

/// Why decoding stopped.
enum DecodeError {
    Eof,
    BadFormat,
    Fail(Fail),
}

impl From<mlua::Error> for DecodeError {
    fn from(error: mlua::Error) -> DecodeError {
        DecodeError::Fail(raw(error))
    }
}

struct Cursor<'a> {
    data: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn left(&self) -> usize {
        self.data.len() - self.at
    }

    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        if self.left() < n {
            return Err(DecodeError::Eof);
        }
        let bytes = &self.data[self.at..self.at + n];
        self.at += n;
        Ok(bytes)
    }

    fn be(&mut self, n: usize) -> Result<u64, DecodeError> {
        Ok(self.take(n)?.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }
}

/// A table being filled by [`decode`].
enum Frame {
    /// An array: the next index to set (from 1) and its length.
    Array { table: Table, next: usize, len: usize },
    /// A map: pairs done, pairs in all, and the key read whose value comes next.
    Map { table: Table, done: usize, len: usize, key: Option<Value> },
}

/// Lua's limit on a C function's stack slots (`LUAI_MAXCSTACK`): Redis's decoder fails where it would
/// pass it, with the messages of its two `luaL_checkstack` calls.
const MAX_C_STACK: usize = 8000;

const TOO_MANY: &str = "stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)";

/// Decodes one object. `used` is how many stack slots Redis's decoder would have in use when it starts
/// (the input string and the results so far); nested tables use more (a table and an index or key each),
/// so the limits fall where Redis's do. Iterative, so that nesting cannot exhaust the thread's stack.
fn decode(lua: &Lua, cursor: &mut Cursor<'_>, mut used: usize) -> Result<Value, DecodeError> {
    let mut stack: Vec<Frame> = Vec::new();
    loop {
        if cursor.left() == 0 {
            return Err(DecodeError::Eof);
        }
        if used + 1 > MAX_C_STACK {
            return Err(DecodeError::Fail(Fail::Error(TOO_MANY.into())));
        }
        let tag = cursor.data[cursor.at];
        // Every form but the fixed ones needs its whole head before anything is consumed.
        let head = |size: usize, cursor: &mut Cursor<'_>| -> Result<u64, DecodeError> {
            if cursor.left() < size {
                return Err(DecodeError::Eof);
            }
            cursor.at += 1;
            cursor.be(size - 1)
        };
        let container = match tag {
            0xdc | 0xdd => Some((true, head(if tag == 0xdc { 3 } else { 5 }, cursor)? as usize)),
            0xde | 0xdf => Some((false, head(if tag == 0xde { 3 } else { 5 }, cursor)? as usize)),
            _ if tag & 0xf0 == 0x90 || tag & 0xf0 == 0x80 => {
                cursor.at += 1;
                Some((tag & 0xf0 == 0x90, usize::from(tag & 0xf)))
            }
            _ => None,
        };
        let mut value = match container {
            Some((array, len)) => {
                if array && used + 2 > MAX_C_STACK {
                    return Err(DecodeError::Fail(Fail::Error(
                        "stack overflow (in function mp_decode_to_lua_array)".into(),
                    )));
                }
                let table = lua.create_table()?;
                if len > 0 {
                    if array {
                        stack.push(Frame::Array { table, next: 1, len });
                        used += 2;
                    } else {
                        stack.push(Frame::Map { table, done: 0, len, key: None });
                        used += 1;
                    }
                    continue;
                }
                Value::Table(table)
            }
            None => scalar(lua, cursor, tag, head)?,
        };
        // Hand the finished value to the tables it completes.
        loop {
            match stack.last_mut() {
                None => return Ok(value),
                Some(Frame::Array { table, next, len }) => {
                    table.raw_set(*next, value)?;
                    *next += 1;
                    if *next <= *len {
                        break;
                    }
                    used -= 2;
                }
                Some(Frame::Map { table, done, len, key }) => {
                    let Some(k) = key.take() else {
                        *key = Some(value);
                        used += 1;
                        break;
                    };
                    used -= 1;
                    match &k {
                        Value::Nil => return Err(DecodeError::Fail(Fail::Raw("table index is nil".into()))),
                        Value::Number(n) if n.is_nan() => {
                            return Err(DecodeError::Fail(Fail::Raw("table index is NaN".into())));
                        }
                        _ => table.raw_set(k, value)?,
                    }
                    *done += 1;
                    if *done < *len {
                        break;
                    }
                    used -= 1;
                }
            }
            value = match stack.pop() {
                Some(Frame::Array { table, .. } | Frame::Map { table, .. }) => Value::Table(table),
                None => unreachable!("the loop returns when the stack is empty"),
            };
        }
    }
}

/// A non-container object at the cursor (its first byte `tag`).
fn scalar(
    lua: &Lua,
    cursor: &mut Cursor<'_>,
    tag: u8,
    head: impl Fn(usize, &mut Cursor<'_>) -> Result<u64, DecodeError>,
) -> Result<Value, DecodeError> {
    Ok(match tag {
        0xcc | 0xcd | 0xce => Value::Number(head(1 + (1 << (tag - 0xcc)), cursor)? as f64),
        // Redis pushes a uint 64 as a `lua_Integer`: above i64::MAX it is negative.
        0xcf => Value::Number(head(9, cursor)? as i64 as f64),
        0xd0 => Value::Number(f64::from(head(2, cursor)? as u8 as i8)),
        0xd1 => Value::Number(f64::from(head(3, cursor)? as u16 as i16)),
        0xd2 => Value::Number(f64::from(head(5, cursor)? as u32 as i32)),
        0xd3 => Value::Number(head(9, cursor)? as i64 as f64),
        0xc0 => {
            cursor.at += 1;
            Value::Nil
        }
        0xc2 | 0xc3 => {
            cursor.at += 1;
            Value::Boolean(tag == 0xc3)
        }
        0xca => Value::Number(f64::from(f32::from_bits(head(5, cursor)? as u32))),
        0xcb => Value::Number(f64::from_bits(head(9, cursor)?)),
        0xd9 | 0xda | 0xdb => {
            let size = 1 + (1 << (tag - 0xd9));
            if cursor.left() < size {
                return Err(DecodeError::Eof);
            }
            let len = cursor.data[cursor.at + 1..cursor.at + size].iter().fold(0usize, |a, &b| (a << 8) | b as usize);
            cursor.at += size;
            Value::String(lua.create_string(cursor.take(len)?)?)
        }
        _ if tag & 0x80 == 0 => {
            cursor.at += 1;
            Value::Number(f64::from(tag))
        }
        _ if tag & 0xe0 == 0xe0 => {
            cursor.at += 1;
            Value::Number(f64::from(tag as i8))
        }
        _ if tag & 0xe0 == 0xa0 => {
            let len = usize::from(tag & 0x1f);
            if cursor.left() < 1 + len {
                return Err(DecodeError::Eof);
            }
            cursor.at += 1;
            Value::String(lua.create_string(cursor.take(len)?)?)
        }
        _ => return Err(DecodeError::BadFormat),
    })
}

/// `mp_unpack_full`: `limit` 0 and `offset` 0 decode everything; otherwise the next offset (-1 at the
/// end) comes first.
fn unpack_full(lua: &Lua, args: &[Value], limit: i64, offset: i64) -> Outcome<Vec<Value>> {
    let data = check_bytes(args, 0)?;
    let len = data.len();
    if offset < 0 || limit < 0 {
        return Err(Fail::Error(format!(
            "Invalid request to unpack with offset of {} and limit of {}.",
            offset as i32, len as i32
        )));
    }
    if offset as u64 > len as u64 {
        return Err(Fail::Error(format!("Start offset {} greater than input length {}.", offset as i32, len as i32)));
    }
    let decode_all = limit == 0 && offset == 0;
    let limit = if decode_all { i64::from(i32::MAX) } else { limit };
    let mut cursor = Cursor { data: &data, at: offset as usize };
    let mut results = Vec::new();
    while cursor.left() > 0 && (results.len() as i64) < limit {
        // The input string, then the results so far, occupy Redis's stack.
        match decode(lua, &mut cursor, 1 + results.len()) {
            Ok(value) => results.push(value),
            Err(DecodeError::Eof) => return Err(Fail::Error("Missing bytes in input.".into())),
            Err(DecodeError::BadFormat) => return Err(Fail::Error("Bad data format in input.".into())),
            Err(DecodeError::Fail(fail)) => return Err(fail),
        }
    }
    if !decode_all {
        let next = if cursor.left() == 0 { -1 } else { cursor.at as i64 };
        results.insert(0, Value::Integer(next));
    }
    Ok(results)
}

fn mp_unpack(lua: &Lua, args: Variadic<Value>) -> mlua::Result<Variadic<Value>> {
    let outcome = unpack_full(lua, &args, 0, 0);
    finish(lua, outcome)
}

fn mp_unpack_one(lua: &Lua, args: Variadic<Value>) -> mlua::Result<Variadic<Value>> {
    let outcome = opt_integer(&args, 1, 0).and_then(|offset| unpack_full(lua, &args[..1.min(args.len())], 1, offset));
    finish(lua, outcome)
}

fn mp_unpack_limit(lua: &Lua, args: Variadic<Value>) -> mlua::Result<Variadic<Value>> {
    let outcome = check_integer(&args, 1).and_then(|limit| {
        let offset = opt_integer(&args, 2, 0)?;
        unpack_full(lua, &args[..1.min(args.len())], limit, offset)
    });
    finish(lua, outcome)
}
