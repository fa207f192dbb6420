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
//!
//! Both directions run on the raw Lua stack in [`super::capi`] (they are the hot path of every
//! script); this module keeps the pieces that need no stack.

use mlua::{Lua, Table};

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

/// C's `(long long)` cast of a double as x86-64 performs it: truncation, with NaN and out-of-range
/// values giving `i64::MIN`.
pub fn number_to_i64(n: f64) -> i64 {
    if n.is_nan() || n >= 9.223_372_036_854_776e18 || n < -9.223_372_036_854_776e18 {
        i64::MIN
    } else {
        n as i64
    }
}

/// The verbatim formats Velo's reply type can carry (three letters, as RESP3 requires); others are sent
/// as `txt`.
pub fn verbatim_format(format: &[u8]) -> &'static str {
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
