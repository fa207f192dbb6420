//! [`Args`]: the cursor handlers read their arguments with, with Redis's exact parse errors.

use bytes::Bytes;

use super::CmdError;

/// A command's arguments after its name (and subcommand). Arity was checked by the dispatcher.
#[derive(Debug, Clone)]
pub struct Args {
    argv: Vec<Bytes>,
    pos: usize,
}

/// Parses an integer as Redis's `string2ll` does (strict: no spaces, no `+`, no leading zeros). The one
/// implementation lives with the protocol decoder, which needs it for lengths.
pub use crate::resp::decode::parse_int as parse_i64;

/// Parses a float as Redis's `string2ld` (`strtold`): no spaces, no NaN; `inf`, `-inf` and C hex floats
/// (`0x1.8p3`) accepted.
pub fn parse_f64(bytes: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(bytes).ok()?;
    if text.is_empty() || text.starts_with(|c: char| c.is_whitespace()) || text.ends_with(|c: char| c.is_whitespace()) {
        return None;
    }
    let value: f64 = match text.parse() {
        Ok(value) => value,
        Err(_) => parse_hex_float(text)?,
    };
    (!value.is_nan()).then_some(value)
}

/// C's hexadecimal floating constants: `[+-]0x<hex>[.<hex>][p[+-]<dec>]`.
fn parse_hex_float(text: &str) -> Option<f64> {
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let rest = rest.strip_prefix("0x").or_else(|| rest.strip_prefix("0X"))?;
    let (mantissa, exponent) = match rest.find(['p', 'P']) {
        Some(i) => (&rest[..i], rest[i + 1..].parse::<i32>().ok()?),
        None => (rest, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let mut value = 0f64;
    for c in int_part.chars() {
        value = value * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for c in frac_part.chars() {
        value += f64::from(c.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    let value = value * 2f64.powi(exponent);
    Some(if negative { -value } else { value })
}

impl Args {
    /// Arguments `argv[start..]`.
    pub fn new(argv: Vec<Bytes>, start: usize) -> Args {
        Args { argv, pos: start }
    }

    /// The whole request, name included.
    pub fn argv(&self) -> &[Bytes] {
        &self.argv
    }

    /// How many arguments are left.
    pub fn remaining(&self) -> usize {
        self.argv.len().saturating_sub(self.pos)
    }

    /// True when no argument is left.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The next argument without consuming it.
    pub fn peek(&self) -> Option<&Bytes> {
        self.argv.get(self.pos)
    }

    /// The next argument; a syntax error if there is none.
    pub fn next_bytes(&mut self) -> Result<Bytes, CmdError> {
        let arg = self.argv.get(self.pos).cloned().ok_or(CmdError::Syntax)?;
        self.pos += 1;
        Ok(arg)
    }

    /// The next argument as an integer.
    pub fn next_i64(&mut self) -> Result<i64, CmdError> {
        parse_i64(&self.next_bytes()?).ok_or(CmdError::NotInteger)
    }

    /// The next argument as a float.
    pub fn next_f64(&mut self) -> Result<f64, CmdError> {
        parse_f64(&self.next_bytes()?).ok_or(CmdError::NotFloat)
    }

    /// The next argument upper-cased, for keyword matching.
    pub fn next_upper(&mut self) -> Result<String, CmdError> {
        Ok(String::from_utf8_lossy(&self.next_bytes()?).to_ascii_uppercase())
    }

    /// Consumes the next argument if it equals `keyword` (case-insensitively).
    pub fn eat(&mut self, keyword: &str) -> bool {
        if self.peek().is_some_and(|arg| arg.eq_ignore_ascii_case(keyword.as_bytes())) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Every argument left.
    pub fn rest(&mut self) -> Vec<Bytes> {
        let rest = self.argv.get(self.pos..).unwrap_or_default().to_vec();
        self.pos = self.argv.len();
        rest
    }

    /// A syntax error if arguments are left.
    pub fn finish(&self) -> Result<(), CmdError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(CmdError::Syntax)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_strict() {
        assert_eq!(parse_i64(b"-12"), Some(-12));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [&b"+1"[..], b" 1", b"01", b"1.0", b"", b"-", b"-0", b"9223372036854775808"] {
            assert_eq!(parse_i64(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn floats() {
        assert_eq!(parse_f64(b"1.5"), Some(1.5));
        assert_eq!(parse_f64(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b"nan"), None);
        assert_eq!(parse_f64(b" 1"), None);
        assert_eq!(parse_f64(b"0x10"), Some(16.0));
        assert_eq!(parse_f64(b"-0x1.8p1"), Some(-3.0));
        assert_eq!(parse_f64(b"0x"), None);
    }
}

/// The cursor and options of SCAN, HSCAN and SSCAN.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// The cursor argument.
    pub cursor: u64,
    /// MATCH pattern.
    pub pattern: Option<Bytes>,
    /// COUNT (10 when absent).
    pub count: usize,
    /// TYPE (SCAN only), lower case.
    pub kind: Option<String>,
}

/// Parses `cursor [MATCH pattern] [COUNT count]` (and `[TYPE type]` when `allow_type`) with Redis's errors.
pub fn scan_options(args: &mut Args, allow_type: bool) -> Result<ScanOptions, CmdError> {
    let cursor_arg = args.next_bytes()?;
    let cursor: u64 = std::str::from_utf8(&cursor_arg)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| CmdError::err("invalid cursor"))?;
    let mut options = ScanOptions { cursor, pattern: None, count: 10, kind: None };
    while !args.is_empty() {
        if args.eat("MATCH") && !args.is_empty() {
            options.pattern = Some(args.next_bytes()?);
        } else if args.eat("COUNT") && !args.is_empty() {
            let n = args.next_i64()?;
            if n < 1 {
                return Err(CmdError::Syntax);
            }
            options.count = n as usize;
        } else if allow_type && args.eat("TYPE") && !args.is_empty() {
            options.kind = Some(String::from_utf8_lossy(&args.next_bytes()?).to_ascii_lowercase());
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok(options)
}
