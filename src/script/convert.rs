//! Conversions between Lua values and replies, both ways, as Redis 7.0's `script_lua.c` does them.
//!
//! Command reply → Lua (what `redis.call` returns), by the protocol the script chose with `redis.setresp`:
//! integers become numbers, bulk strings strings, status replies `{ok=...}`, errors `{err=...}`, arrays
//! tables; RESP2 nulls become `false`, RESP3's `nil`; RESP3 maps, sets, doubles, big numbers and verbatim
//! strings become `{map=...}`, `{set=...}`, `{double=...}`, `{big_number=...}`,
//! `{verbatim_string={format=..., string=...}}` (in RESP2 they arrive in their RESP2 forms).
//!
//! Lua → reply (what a script returns): strings are bulk strings, numbers integers (truncated), `true` is
//! 1 (RESP2) or `#t`, `false` is a null (RESP2) or `#f`; a table is an error if it has a string `err`, a
//! status if it has a string `ok`, then `double`, `big_number`, `verbatim_string`, `map`, `set`, and
//! otherwise an array of its elements 1, 2, ... up to the first nil. Anything else is a null.

use bytes::Bytes;
use mlua::{Lua, Table, Value};

use crate::resp::reply::format_double;
use crate::resp::{Protocol, Reply};

/// Builds the error table `{err="CODE message"}` from an error line, the way `luaPushErrorBuff` does:
/// a line starting with `-` has its first word as the code; anything else gets `ERR`; trailing CR/LF go.
pub fn error_table(lua: &Lua, line: &str) -> mlua::Result<Table> {
    let text = if let Some(rest) = line.strip_prefix('-') {
        match rest.split_once(' ') {
            Some((code, message)) => format!("{code} {}", message.trim_matches(['\r', '\n'])),
            None => format!("ERR {}", rest.trim_matches(['\r', '\n'])),
        }
    } else {
        format!("ERR {}", line.trim_matches(['\r', '\n']))
    };
    let table = lua.create_table()?;
    table.raw_set("err", text)?;
    Ok(table)
}

/// A command's reply as the Lua value `redis.call` returns, for a script speaking `proto`.
pub fn reply_to_lua(lua: &Lua, reply: &Reply, proto: Protocol) -> mlua::Result<Value> {
    let resp3 = proto == Protocol::Resp3;
    Ok(match reply {
        Reply::Ok => status(lua, "OK")?,
        Reply::Simple(text) => status(lua, text)?,
        Reply::Error(text) => {
            // The reply's own first word is its code (Redis prefixes `-` and parses it back).
            let table = error_table(lua, &format!("-{text}"))?;
            table.raw_set("ignore_error_stats_update", true)?;
            Value::Table(table)
        }
        Reply::Int(value) => Value::Number(*value as f64),
        Reply::Bulk(bytes) => Value::String(lua.create_string(bytes)?),
        Reply::Nil | Reply::NilArray if resp3 => Value::Nil,
        Reply::Nil | Reply::NilArray => Value::Boolean(false),
        Reply::Array(items) | Reply::Push(items) => array(lua, items, proto)?,
        Reply::Set(items) if resp3 => {
            let set = lua.create_table()?;
            for item in items {
                set.raw_set(reply_to_lua(lua, item, proto)?, true)?;
            }
            wrapped(lua, "set", Value::Table(set))?
        }
        Reply::Set(items) => array(lua, items, proto)?,
        Reply::Map(pairs) if resp3 => {
            let map = lua.create_table()?;
            for (key, value) in pairs {
                map.raw_set(reply_to_lua(lua, key, proto)?, reply_to_lua(lua, value, proto)?)?;
            }
            wrapped(lua, "map", Value::Table(map))?
        }
        Reply::Map(pairs) => {
            let table = lua.create_table_with_capacity(pairs.len() * 2, 0)?;
            for (index, (key, value)) in pairs.iter().enumerate() {
                table.raw_set(2 * index + 1, reply_to_lua(lua, key, proto)?)?;
                table.raw_set(2 * index + 2, reply_to_lua(lua, value, proto)?)?;
            }
            Value::Table(table)
        }
        Reply::Double(value) if resp3 => wrapped(lua, "double", Value::Number(*value))?,
        Reply::Double(value) => Value::String(lua.create_string(format_double(*value))?),
        Reply::DoubleText(text) if resp3 => {
            wrapped(lua, "double", Value::Number(text.parse::<f64>().unwrap_or(f64::NAN)))?
        }
        Reply::DoubleText(text) => Value::String(lua.create_string(text.as_bytes())?),
        Reply::Bool(value) if resp3 => Value::Boolean(*value),
        Reply::Bool(value) => Value::Number(f64::from(u8::from(*value))),
        Reply::Verbatim(format, bytes) if resp3 => {
            let inner = lua.create_table()?;
            inner.raw_set("string", lua.create_string(bytes)?)?;
            inner.raw_set("format", *format)?;
            wrapped(lua, "verbatim_string", Value::Table(inner))?
        }
        Reply::Verbatim(_, bytes) => Value::String(lua.create_string(bytes)?),
        Reply::BigNumber(digits) if resp3 => wrapped(lua, "big_number", Value::String(lua.create_string(digits)?))?,
        Reply::BigNumber(digits) => Value::String(lua.create_string(digits)?),
        // Several replies to one command only come from (P)SUBSCRIBE, which scripts cannot call.
        Reply::Many(items) => array(lua, items, proto)?,
        Reply::None => Value::Nil,
    })
}

fn status(lua: &Lua, text: &str) -> mlua::Result<Value> {
    wrapped(lua, "ok", Value::String(lua.create_string(text)?))
}

fn wrapped(lua: &Lua, field: &str, value: Value) -> mlua::Result<Value> {
    let table = lua.create_table()?;
    table.raw_set(field, value)?;
    Ok(Value::Table(table))
}

fn array(lua: &Lua, items: &[Reply], proto: Protocol) -> mlua::Result<Value> {
    let table = lua.create_table_with_capacity(items.len(), 0)?;
    for (index, item) in items.iter().enumerate() {
        table.raw_set(index + 1, reply_to_lua(lua, item, proto)?)?;
    }
    Ok(Value::Table(table))
}

/// The reply for a script's return value. `script_proto` is the protocol the script last chose
/// (`redis.setresp`): it decides what booleans become, as in Redis.
pub fn lua_to_reply(value: &Value, script_proto: Protocol) -> Reply {
    lua_to_reply_depth(value, script_proto, 0)
}

/// Nesting beyond this is answered with an error instead of overflowing the stack (Redis fails on its
/// Lua stack limit at a similar depth).
const MAX_DEPTH: usize = 1000;

fn lua_to_reply_depth(value: &Value, proto: Protocol, depth: usize) -> Reply {
    if depth > MAX_DEPTH {
        return Reply::error("ERR reached lua stack limit");
    }
    match value {
        Value::String(s) => Reply::Bulk(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Boolean(b) if proto == Protocol::Resp3 => Reply::Bool(*b),
        Value::Boolean(true) => Reply::Int(1),
        Value::Boolean(false) => Reply::Nil,
        Value::Integer(i) => Reply::Int(*i as i64),
        Value::Number(n) => Reply::Int(number_to_i64(*n)),
        Value::Table(table) => table_to_reply(table, proto, depth),
        _ => Reply::Nil,
    }
}

/// C's `(long long)` cast of a double as x86-64 performs it: truncation, with NaN and out-of-range
/// values giving `i64::MIN`.
pub fn number_to_i64(n: f64) -> i64 {
    if n.is_nan() || n >= 9.223_372_036_854_776e18 || n < -9.223_372_036_854_776e18 {
        i64::MIN
    } else {
        n as i64
    }
}

fn table_to_reply(table: &Table, proto: Protocol, depth: usize) -> Reply {
    let field = |name: &str| table.raw_get::<Value>(name).unwrap_or(Value::Nil);
    if let Value::String(err) = field("err") {
        return Reply::Error(String::from_utf8_lossy(&err.as_bytes()).into_owned().into());
    }
    if let Value::String(ok) = field("ok") {
        return Reply::Simple(String::from_utf8_lossy(&ok.as_bytes()).into_owned().into());
    }
    match field("double") {
        Value::Number(n) => return Reply::Double(n),
        Value::Integer(n) => return Reply::Double(n as f64),
        _ => {}
    }
    if let Value::String(digits) = field("big_number") {
        let text: Vec<u8> =
            digits.as_bytes().iter().map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }).collect();
        return Reply::BigNumber(Bytes::from(text));
    }
    if let Value::Table(verbatim) = field("verbatim_string") {
        if let (Ok(Value::String(format)), Ok(Value::String(text))) =
            (verbatim.raw_get::<Value>("format"), verbatim.raw_get::<Value>("string"))
        {
            return Reply::Verbatim(verbatim_format(&format.as_bytes()), Bytes::copy_from_slice(&text.as_bytes()));
        }
    }
    if let Value::Table(map) = field("map") {
        let pairs = map
            .pairs::<Value, Value>()
            .filter_map(Result::ok)
            .map(|(k, v)| (lua_to_reply_depth(&k, proto, depth + 1), lua_to_reply_depth(&v, proto, depth + 1)))
            .collect();
        return Reply::Map(pairs);
    }
    if let Value::Table(set) = field("set") {
        let members =
            set.pairs::<Value, Value>().filter_map(Result::ok).map(|(k, _)| lua_to_reply_depth(&k, proto, depth + 1));
        return Reply::Set(members.collect());
    }
    let mut items = Vec::new();
    for index in 1.. {
        match table.raw_get::<Value>(index) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(item) => items.push(lua_to_reply_depth(&item, proto, depth + 1)),
        }
    }
    Reply::Array(items)
}

/// The verbatim formats Velo's reply type can carry (three letters, as RESP3 requires); others are sent
/// as `txt`.
fn verbatim_format(format: &[u8]) -> &'static str {
    match format {
        b"mkd" => "mkd",
        _ => "txt",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_lines_get_a_code() {
        let lua = Lua::new();
        let text = |line: &str| error_table(&lua, line).unwrap().raw_get::<String>("err").unwrap();
        assert_eq!(text("-WRONGTYPE Operation"), "WRONGTYPE Operation");
        assert_eq!(text("-boom"), "ERR boom");
        assert_eq!(text("plain message\r\n"), "ERR plain message");
    }

    #[test]
    fn numbers_truncate_like_c() {
        assert_eq!(number_to_i64(3.99), 3);
        assert_eq!(number_to_i64(-3.99), -3);
        assert_eq!(number_to_i64(f64::NAN), i64::MIN);
        assert_eq!(number_to_i64(1e300), i64::MIN);
    }
}
