//! The reply value and its encoder.
//!
//! Handlers return a [`Reply`]; the connection encodes it for the client's protocol version. RESP3 types
//! degrade to their RESP2 forms the way Redis does: maps and sets become flat arrays, doubles become bulk
//! strings, booleans become integers, verbatim strings become bulk strings, and both nulls become the
//! RESP2 null of their kind.

use std::borrow::Cow;

use bytes::{BufMut, Bytes, BytesMut};

/// The protocol a client speaks (`HELLO 2` / `HELLO 3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// RESP2, the default.
    #[default]
    Resp2,
    /// RESP3.
    Resp3,
}

/// A reply value.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK`.
    Ok,
    /// A simple string (`+...`).
    Simple(Cow<'static, str>),
    /// An error line, with its prefix (`ERR ...`, `WRONGTYPE ...`), without the leading `-`.
    Error(Cow<'static, str>),
    /// An integer.
    Int(i64),
    /// A bulk string.
    Bulk(Bytes),
    /// The null bulk string (`$-1` in RESP2, `_` in RESP3).
    Nil,
    /// The null array (`*-1` in RESP2, `_` in RESP3).
    NilArray,
    /// An array.
    Array(Vec<Reply>),
    /// A map (a flat array in RESP2).
    Map(Vec<(Reply, Reply)>),
    /// A set (an array in RESP2).
    Set(Vec<Reply>),
    /// A double (a bulk string in RESP2).
    Double(f64),
    /// A double already formatted (Redis's "human" long-double text, as GEOPOS sends): a RESP3 double
    /// with exactly this text, a bulk string in RESP2.
    DoubleText(Cow<'static, str>),
    /// A boolean (an integer in RESP2).
    Bool(bool),
    /// A verbatim string with its three-letter format (a bulk string in RESP2).
    Verbatim(&'static str, Bytes),
    /// A big number's decimal text (a bulk string in RESP2); scripts return these.
    BigNumber(Bytes),
    /// An out-of-band push message (an array in RESP2).
    Push(Vec<Reply>),
    /// A RESP3 attribute map followed by the reply it describes (RESP2 sends only the reply).
    Attribute(Vec<(Reply, Reply)>, Box<Reply>),
    /// Several top-level replies to one command (SUBSCRIBE with several channels).
    Many(Vec<Reply>),
    /// Nothing is sent (CLIENT REPLY OFF, SHUTDOWN).
    None,
}

impl Reply {
    /// A bulk string from anything byte-like.
    pub fn bulk(bytes: impl Into<Bytes>) -> Reply {
        Reply::Bulk(bytes.into())
    }

    /// A bulk string holding a number's decimal text.
    pub fn bulk_int(value: i64) -> Reply {
        Reply::Bulk(Bytes::from(value.to_string()))
    }

    /// A simple string.
    pub fn simple(text: impl Into<Cow<'static, str>>) -> Reply {
        Reply::Simple(text.into())
    }

    /// An error reply; `text` starts with its prefix (`ERR ...`).
    pub fn error(text: impl Into<Cow<'static, str>>) -> Reply {
        Reply::Error(text.into())
    }

    /// True for an error reply.
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    /// Appends the encoding of this reply for `proto` to `out`.
    pub fn encode(&self, proto: Protocol, out: &mut BytesMut) {
        let resp3 = proto == Protocol::Resp3;
        match self {
            Reply::Ok => out.put_slice(b"+OK\r\n"),
            Reply::Simple(text) => line(out, b'+', text.as_bytes()),
            Reply::Error(text) => line(out, b'-', text.as_bytes()),
            Reply::Int(value) => header(out, b':', *value),
            Reply::Bulk(bytes) => bulk(out, bytes),
            Reply::Nil if resp3 => out.put_slice(b"_\r\n"),
            Reply::Nil => out.put_slice(b"$-1\r\n"),
            Reply::NilArray if resp3 => out.put_slice(b"_\r\n"),
            Reply::NilArray => out.put_slice(b"*-1\r\n"),
            Reply::Array(items) => {
                header(out, b'*', items.len() as i64);
                items.iter().for_each(|item| item.encode(proto, out));
            }
            Reply::Map(pairs) => {
                if resp3 {
                    header(out, b'%', pairs.len() as i64);
                } else {
                    header(out, b'*', 2 * pairs.len() as i64);
                }
                for (key, value) in pairs {
                    key.encode(proto, out);
                    value.encode(proto, out);
                }
            }
            Reply::Set(items) => {
                header(out, if resp3 { b'~' } else { b'*' }, items.len() as i64);
                items.iter().for_each(|item| item.encode(proto, out));
            }
            Reply::Double(value) => {
                let text = format_double(*value);
                if resp3 {
                    line(out, b',', text.as_bytes());
                } else {
                    bulk(out, text.as_bytes());
                }
            }
            Reply::DoubleText(text) => {
                if resp3 {
                    line(out, b',', text.as_bytes());
                } else {
                    bulk(out, text.as_bytes());
                }
            }
            Reply::Bool(value) if resp3 => out.put_slice(if *value { b"#t\r\n" } else { b"#f\r\n" }),
            Reply::Bool(value) => header(out, b':', i64::from(*value)),
            Reply::Verbatim(format, bytes) if resp3 => {
                header(out, b'=', bytes.len() as i64 + 4);
                out.put_slice(format.as_bytes());
                out.put_u8(b':');
                out.put_slice(bytes);
                out.put_slice(b"\r\n");
            }
            Reply::Verbatim(_, bytes) => bulk(out, bytes),
            Reply::BigNumber(digits) if resp3 => line(out, b'(', digits),
            Reply::BigNumber(digits) => bulk(out, digits),
            Reply::Push(items) => {
                header(out, if resp3 { b'>' } else { b'*' }, items.len() as i64);
                items.iter().for_each(|item| item.encode(proto, out));
            }
            Reply::Attribute(pairs, reply) => {
                if resp3 {
                    header(out, b'|', pairs.len() as i64);
                    for (key, value) in pairs {
                        key.encode(proto, out);
                        value.encode(proto, out);
                    }
                }
                reply.encode(proto, out);
            }
            Reply::Many(replies) => replies.iter().for_each(|reply| reply.encode(proto, out)),
            Reply::None => {}
        }
    }
}

fn header(out: &mut BytesMut, kind: u8, value: i64) {
    let mut digits = itoa::Buffer::new();
    out.put_u8(kind);
    out.put_slice(digits.format(value).as_bytes());
    out.put_slice(b"\r\n");
}

fn bulk(out: &mut BytesMut, bytes: &[u8]) {
    header(out, b'$', bytes.len() as i64);
    out.put_slice(bytes);
    out.put_slice(b"\r\n");
}

/// A status or error line; CR and LF inside it become spaces so it cannot break the framing.
fn line(out: &mut BytesMut, kind: u8, text: &[u8]) {
    out.put_u8(kind);
    if text.iter().any(|&b| b == b'\r' || b == b'\n') {
        out.extend(text.iter().map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
    } else {
        out.put_slice(text);
    }
    out.put_slice(b"\r\n");
}

/// Formats a double as C's `%.17g` (what Redis 7.0 sends), with `inf`/`-inf`/`nan`.
pub fn format_double(value: f64) -> String {
    if value.is_nan() {
        return "nan".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf".into() } else { "-inf".into() };
    }
    format_g(value, 17)
}

/// C's `%.{precision}g`.
pub fn format_g(value: f64, precision: usize) -> String {
    if value == 0.0 {
        return if value.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let precision = precision.max(1);
    let scientific = format!("{:.*e}", precision - 1, value);
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let mut text = String::new();
    if negative {
        text.push('-');
    }
    if exponent < -4 || exponent >= precision as i32 {
        let (first, rest) = digits.split_at(1);
        text.push_str(first);
        let rest = rest.trim_end_matches('0');
        if !rest.is_empty() {
            text.push('.');
            text.push_str(rest);
        }
        text.push('e');
        text.push(if exponent < 0 { '-' } else { '+' });
        text.push_str(&format!("{:02}", exponent.abs()));
    } else if exponent < 0 {
        text.push_str("0.");
        text.push_str(&"0".repeat((-exponent - 1) as usize));
        text.push_str(digits.trim_end_matches('0'));
    } else {
        let split = (exponent + 1) as usize;
        let (int_part, frac_part) = digits.split_at(split.min(digits.len()));
        text.push_str(int_part);
        let frac_part = frac_part.trim_end_matches('0');
        if !frac_part.is_empty() {
            text.push('.');
            text.push_str(frac_part);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(reply: Reply, proto: Protocol) -> Vec<u8> {
        let mut out = BytesMut::new();
        reply.encode(proto, &mut out);
        out.to_vec()
    }

    #[test]
    fn resp2_and_resp3_shapes() {
        let map = Reply::Map(vec![(Reply::bulk("a"), Reply::Int(1))]);
        assert_eq!(enc(map.clone(), Protocol::Resp2), b"*2\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(map, Protocol::Resp3), b"%1\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(Reply::Nil, Protocol::Resp2), b"$-1\r\n");
        assert_eq!(enc(Reply::NilArray, Protocol::Resp3), b"_\r\n");
        assert_eq!(enc(Reply::Bool(true), Protocol::Resp2), b":1\r\n");
        assert_eq!(enc(Reply::Double(1.5), Protocol::Resp3), b",1.5\r\n");
        assert_eq!(enc(Reply::error("ERR a\r\nb"), Protocol::Resp2), b"-ERR a  b\r\n");
        assert_eq!(enc(Reply::Verbatim("txt", Bytes::from("hi")), Protocol::Resp3), b"=6\r\ntxt:hi\r\n");
    }

    #[test]
    fn percent_g() {
        assert_eq!(format_g(1.5, 17), "1.5");
        assert_eq!(format_g(0.1, 17), "0.10000000000000001");
        assert_eq!(format_g(1e20, 17), "1e+20");
        assert_eq!(format_g(123456.0, 17), "123456");
        assert_eq!(format_g(0.0001, 17), "0.0001");
        assert_eq!(format_g(0.00001, 17), "1.0000000000000001e-05");
        assert_eq!(format_g(-2.0, 17), "-2");
    }
}
