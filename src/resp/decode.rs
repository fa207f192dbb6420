//! Request decoding: RESP multibulk frames and inline (telnet-style) commands.
//!
//! [`decode_request`] looks at the start of the read buffer. A complete frame is split off the buffer
//! and its arguments are returned as [`Bytes`] slices of it (no copy of bulk payloads). An incomplete
//! frame leaves the buffer untouched and returns [`DecodeError::Incomplete`]; the caller reads more and
//! calls again. A frame that can never become valid returns [`DecodeError::Invalid`] with Redis's text
//! (without the `ERR Protocol error: ` prefix); the connection replies and closes.
//!
//! Never panics on hostile input: every index is checked.

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

use bytes::{Bytes, BytesMut};

/// Longest count line or inline request Redis accepts before a newline (`PROTO_INLINE_MAX_SIZE`).
pub const INLINE_MAX: usize = 64 * 1024;

/// Size limits applied while decoding.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest bulk argument (`proto-max-bulk-len`, 512 MiB by default).
    pub max_bulk: usize,
    /// Largest number of arguments in one multibulk (Redis: `INT_MAX`).
    pub max_args: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_bulk: 512 * 1024 * 1024, max_args: i32::MAX as usize }
    }
}

/// Why a request could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The frame is not complete yet: read more bytes and try again.
    Incomplete,
    /// The bytes can never form a valid frame; the text follows `Protocol error: `.
    Invalid(String),
}

/// Decodes one request from the start of `buf`. `Ok` with an empty vector means a frame that carries no
/// command (an empty inline line, `*0` or `*-1`) and was consumed.
pub fn decode_request(buf: &mut BytesMut, limits: &Limits) -> Result<Vec<Bytes>, DecodeError> {
    Decoder::default().decode(buf, limits)
}

/// A request decoder that remembers how far it got into an incomplete multibulk frame, so that a large
/// frame arriving in many reads is scanned once rather than from its start on every read. The buffer must
/// only grow between calls until a frame is returned (the connection never consumes it meanwhile).
#[derive(Debug, Default)]
pub struct Decoder {
    /// Arguments of the current frame found so far (start, end offsets in the buffer).
    spans: Vec<(usize, usize)>,
    /// Where the next argument header starts; 0 when no frame is in progress.
    pos: usize,
    /// Number of arguments the current frame announced.
    count: usize,
}

impl Decoder {
    /// Decodes one request from the start of `buf` (see [`decode_request`]).
    pub fn decode(&mut self, buf: &mut BytesMut, limits: &Limits) -> Result<Vec<Bytes>, DecodeError> {
        let result = match buf.first() {
            None => Err(DecodeError::Incomplete),
            Some(b'*') => self.decode_multibulk(buf, limits),
            Some(_) => decode_inline(buf),
        };
        if !matches!(result, Err(DecodeError::Incomplete)) {
            self.spans.clear();
            // A frame of very many arguments must not leave its span list's memory with the connection.
            if self.spans.capacity() > 1024 {
                self.spans = Vec::new();
            }
            self.pos = 0;
            self.count = 0;
        }
        result
    }
}

/// Parses a decimal like Redis's `string2ll`: optional `-`, no leading zeros, no `+`, no spaces.
pub fn parse_int(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    if digits.len() > 1 && digits.first() == Some(&b'0') {
        return None;
    }
    if negative && digits == b"0" {
        return None;
    }
    let mut value: i64 = 0;
    for &digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        let d = i64::from(digit - b'0');
        value = value.checked_mul(10)?;
        value = if negative { value.checked_sub(d)? } else { value.checked_add(d)? };
    }
    Some(value)
}

/// Finds the `\r` ending the line starting at `from`, as Redis does (`strchr(...,'\r')`).
fn find_cr(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?.iter().position(|&b| b == b'\r').map(|p| p + from)
}

impl Decoder {
    fn decode_multibulk(&mut self, buf: &mut BytesMut, limits: &Limits) -> Result<Vec<Bytes>, DecodeError> {
        let invalid = |text: &str| DecodeError::Invalid(text.to_string());
        if self.pos == 0 {
            let Some(cr) = find_cr(buf, 1) else {
                return if buf.len() > INLINE_MAX {
                    Err(invalid("too big mbulk count string"))
                } else {
                    Err(DecodeError::Incomplete)
                };
            };
            if cr + 1 >= buf.len() {
                return Err(DecodeError::Incomplete);
            }
            let count = match buf.get(1..cr).and_then(parse_int) {
                Some(count) if count > limits.max_args as i64 => return Err(invalid("invalid multibulk length")),
                Some(count) => count,
                None => return Err(invalid("invalid multibulk length")),
            };
            if count <= 0 {
                let _ = buf.split_to(cr + 2);
                return Ok(Vec::new());
            }
            self.count = count as usize;
            self.pos = cr + 2;
            // The span list is reused from frame to frame (an allocation per request otherwise).
            self.spans.reserve(self.count.min(1024));
        }
        // Validate and find the extent of every argument without consuming anything.
        while self.spans.len() < self.count {
            let pos = self.pos;
            match buf.get(pos) {
                None => return Err(DecodeError::Incomplete),
                Some(b'$') => {}
                Some(&other) => return Err(DecodeError::Invalid(format!("expected '$', got '{}'", other as char))),
            }
            let Some(cr) = find_cr(buf, pos + 1) else {
                return if buf.len() - pos > INLINE_MAX {
                    Err(invalid("too big bulk count string"))
                } else {
                    Err(DecodeError::Incomplete)
                };
            };
            if cr + 1 >= buf.len() {
                return Err(DecodeError::Incomplete);
            }
            let len = match buf.get(pos + 1..cr).and_then(parse_int) {
                Some(len) if len >= 0 && len as u64 <= limits.max_bulk as u64 => len as usize,
                _ => return Err(invalid("invalid bulk length")),
            };
            let start = cr + 2;
            let end = start + len;
            if buf.len() < end + 2 {
                // Grow towards a big argument in steps (at most 1 MiB ahead), so a bare header cannot make
                // the server allocate the whole announced length.
                buf.reserve((end + 2 - buf.len()).min(1 << 20));
                return Err(DecodeError::Incomplete);
            }
            self.spans.push((start, end));
            self.pos = end + 2;
        }
        let frame = buf.split_to(self.pos).freeze();
        Ok(self.spans.drain(..).map(|(start, end)| frame.slice(start..end)).collect())
    }
}

fn decode_inline(buf: &mut BytesMut) -> Result<Vec<Bytes>, DecodeError> {
    // Redis finds the end of an inline request with `strchr` on its query buffer, which stops at a NUL:
    // a NUL before the newline hides it, so the request waits for more input (and fails past INLINE_MAX)
    // as if no newline had come. A TLS ClientHello sent to the plain port is such a request.
    let end = buf.iter().position(|&b| b == b'\n' || b == 0);
    let Some(newline) = end.filter(|&i| buf.get(i) == Some(&b'\n')) else {
        return if buf.len() > INLINE_MAX {
            Err(DecodeError::Invalid("too big inline request".into()))
        } else {
            Err(DecodeError::Incomplete)
        };
    };
    let line = buf.split_to(newline + 1);
    let mut text = line.get(..newline).unwrap_or_default();
    if let Some(stripped) = text.strip_suffix(b"\r") {
        text = stripped;
    }
    split_args(text).ok_or_else(|| DecodeError::Invalid("unbalanced quotes in request".into()))
}

fn hex_value(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// C's `isspace` (the "C" locale), which `sdssplitargs` uses: ASCII whitespace and vertical tab.
fn is_c_space(c: u8) -> bool {
    c.is_ascii_whitespace() || c == 0x0b
}

/// Splits an inline request like Redis's `sdssplitargs`: spaces separate arguments; `"..."` supports
/// `\n \r \t \b \a \\ \" \xHH`; `'...'` supports `\'`. A closing quote must be followed by a space or the
/// end. `None` means unbalanced quotes. As `sdssplitargs` reads a C string, the line ends at its first NUL.
pub fn split_args(line: &[u8]) -> Option<Vec<Bytes>> {
    let line = line.iter().position(|&b| b == 0).and_then(|nul| line.get(..nul)).unwrap_or(line);
    let mut args = Vec::new();
    let mut i = 0;
    let at = |i: usize| line.get(i).copied();
    loop {
        while at(i).is_some_and(is_c_space) {
            i += 1;
        }
        if i >= line.len() {
            return Some(args);
        }
        let mut current = Vec::new();
        let mut in_double = false;
        let mut in_single = false;
        loop {
            if in_double {
                match at(i) {
                    None => return None,
                    Some(b'\\')
                        if at(i + 1) == Some(b'x')
                            && at(i + 2).and_then(hex_value).is_some()
                            && at(i + 3).and_then(hex_value).is_some() =>
                    {
                        let high = at(i + 2).and_then(hex_value).unwrap_or(0);
                        let low = at(i + 3).and_then(hex_value).unwrap_or(0);
                        current.push(high * 16 + low);
                        i += 3;
                    }
                    Some(b'\\') if at(i + 1).is_some() => {
                        i += 1;
                        current.push(match at(i).unwrap_or(b'\\') {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 8,
                            b'a' => 7,
                            other => other,
                        });
                    }
                    Some(b'"') => {
                        if at(i + 1).is_some_and(|c| !is_c_space(c)) {
                            return None;
                        }
                        i += 1;
                        break;
                    }
                    Some(c) => current.push(c),
                }
            } else if in_single {
                match at(i) {
                    None => return None,
                    Some(b'\\') if at(i + 1) == Some(b'\'') => {
                        i += 1;
                        current.push(b'\'');
                    }
                    Some(b'\'') => {
                        if at(i + 1).is_some_and(|c| !is_c_space(c)) {
                            return None;
                        }
                        i += 1;
                        break;
                    }
                    Some(c) => current.push(c),
                }
            } else {
                match at(i) {
                    None => break,
                    Some(b' ' | b'\n' | b'\r' | b'\t') => break,
                    Some(b'"') => in_double = true,
                    Some(b'\'') => in_single = true,
                    Some(c) => current.push(c),
                }
            }
            i += 1;
        }
        args.push(Bytes::from(current));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> Result<Vec<Bytes>, DecodeError> {
        decode_request(&mut BytesMut::from(bytes), &Limits::default())
    }

    #[test]
    fn multibulk_and_pipelining() {
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n"[..]);
        let limits = Limits::default();
        assert_eq!(decode_request(&mut buf, &limits).unwrap(), vec![Bytes::from("GET"), Bytes::from("k")]);
        assert_eq!(decode_request(&mut buf, &limits).unwrap(), vec![Bytes::from("PING")]);
        assert_eq!(decode_request(&mut buf, &limits), Err(DecodeError::Incomplete));
    }

    #[test]
    fn every_truncation_is_incomplete() {
        let frame = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n";
        for cut in 0..frame.len() {
            assert_eq!(decode(&frame[..cut]), Err(DecodeError::Incomplete), "cut at {cut}");
        }
        assert_eq!(decode(frame).unwrap().len(), 3);
    }

    #[test]
    fn invalid_frames() {
        assert_eq!(decode(b"*x\r\n"), Err(DecodeError::Invalid("invalid multibulk length".into())));
        assert_eq!(decode(b"*1\r\n+x\r\n"), Err(DecodeError::Invalid("expected '$', got '+'".into())));
        assert_eq!(decode(b"*1\r\n$-1\r\n"), Err(DecodeError::Invalid("invalid bulk length".into())));
        assert_eq!(decode(b"*1\r\n$536870913\r\n"), Err(DecodeError::Invalid("invalid bulk length".into())));
        assert_eq!(decode(b"SET \"a\r\n"), Err(DecodeError::Invalid("unbalanced quotes in request".into())));
        assert_eq!(decode(b"*0\r\n").unwrap(), Vec::<Bytes>::new());
    }

    #[test]
    fn resumes_a_frame_split_over_many_reads() {
        let frame = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n*1\r\n$4\r\nPING\r\n";
        let mut decoder = Decoder::default();
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for &byte in frame.iter() {
            buf.extend_from_slice(&[byte]);
            loop {
                match decoder.decode(&mut buf, &Limits::default()) {
                    Ok(args) => frames.push(args),
                    Err(DecodeError::Incomplete) => break,
                    Err(other) => panic!("{other:?}"),
                }
            }
        }
        assert_eq!(
            frames,
            vec![vec![Bytes::from("SET"), Bytes::from("k"), Bytes::from("hello")], vec![Bytes::from("PING")]]
        );
    }

    #[test]
    fn inline() {
        assert_eq!(
            decode(b"set  \"a\\x41\\n\" 'b\\'c'\r\n").unwrap(),
            vec![Bytes::from("set"), Bytes::from("aA\n"), Bytes::from("b'c")]
        );
        assert_eq!(decode(b"\r\n").unwrap(), Vec::<Bytes>::new());
        assert_eq!(decode(b"PING"), Err(DecodeError::Incomplete));
        // A NUL hides the newline after it (Redis's `strchr`): no request until INLINE_MAX is passed.
        assert_eq!(decode(b"PING\0x\r\n"), Err(DecodeError::Incomplete));
        let mut long = b"PING\0".to_vec();
        long.resize(INLINE_MAX + 10, b'x');
        long.extend_from_slice(b"\r\n");
        assert_eq!(decode(&long), Err(DecodeError::Invalid("too big inline request".into())));
        // C's isspace: a vertical tab separates arguments and may follow a closing quote.
        assert_eq!(decode(b"ECHO \x0b \"a\"\x0b\r\n").unwrap(), vec![Bytes::from("ECHO"), Bytes::from("a")]);
        assert_eq!(decode(b"ECHO a\x0bb\x0c\r\n").unwrap(), vec![Bytes::from("ECHO"), Bytes::from("a\x0bb\x0c")]);
    }

    #[test]
    fn split_args_ends_at_nul() {
        // Used to loop for ever on the NUL, pushing empty arguments until the server ran out of memory.
        assert_eq!(split_args(b"a\0b c").unwrap(), vec![Bytes::from("a")]);
        assert_eq!(split_args(b"\0").unwrap(), Vec::<Bytes>::new());
        assert_eq!(split_args(b"\"a\0b\""), None);
        assert_eq!(split_args(b"\"\\x00\"").unwrap(), vec![Bytes::from(&b"\0"[..])]);
    }

    #[test]
    fn random_bytes_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        let alphabet = b"*$\r\n0123456789-\"' ab\\x\0\x0b";
        for _ in 0..20000 {
            let len = rng.gen_range(0..40);
            let bytes: Vec<u8> = (0..len).map(|_| alphabet[rng.gen_range(0..alphabet.len())]).collect();
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(args) = decode_request(&mut buf, &Limits::default()) {
                if buf.is_empty() && args.is_empty() {
                    break;
                }
            }
        }
    }
}
