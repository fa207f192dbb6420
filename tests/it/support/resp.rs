//! A raw RESP client for tests: sends commands or raw bytes and returns replies as raw bytes, so that
//! replies can be compared byte for byte; plus a small reply parser to find reply boundaries and to sort
//! unordered replies.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A parsed reply (only as much structure as comparisons need).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Value {
    /// A one-line reply (`+ - : , # _ (`): its type byte and text.
    Line(u8, Vec<u8>),
    /// A length-prefixed blob (`$ = !`); `None` for `$-1`.
    Blob(u8, Option<Vec<u8>>),
    /// An aggregate (`* % ~ >`); `None` for `*-1`.
    Agg(u8, Option<Vec<Value>>),
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?.windows(2).position(|w| w == b"\r\n").map(|p| p + from)
}

/// Parses one reply at the start of `buf`; `None` if incomplete.
pub fn parse(buf: &[u8]) -> Option<(Value, usize)> {
    let kind = *buf.first()?;
    let end = find_crlf(buf, 1)?;
    let line = &buf[1..end];
    let after = end + 2;
    match kind {
        b'$' | b'=' | b'!' => {
            let len: i64 = std::str::from_utf8(line).ok()?.parse().ok()?;
            if len < 0 {
                return Some((Value::Blob(kind, None), after));
            }
            let stop = after + len as usize;
            if buf.len() < stop + 2 {
                return None;
            }
            Some((Value::Blob(kind, Some(buf[after..stop].to_vec())), stop + 2))
        }
        b'*' | b'%' | b'~' | b'>' => {
            let count: i64 = std::str::from_utf8(line).ok()?.parse().ok()?;
            if count < 0 {
                return Some((Value::Agg(kind, None), after));
            }
            let items = if kind == b'%' { count * 2 } else { count };
            let mut pos = after;
            let mut children = Vec::new();
            for _ in 0..items {
                let (child, used) = parse(&buf[pos..])?;
                children.push(child);
                pos += used;
            }
            Some((Value::Agg(kind, Some(children)), pos))
        }
        _ => Some((Value::Line(kind, line.to_vec()), after)),
    }
}

/// Encodes a value back to bytes.
pub fn encode(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Line(kind, text) => {
            out.push(*kind);
            out.extend_from_slice(text);
            out.extend_from_slice(b"\r\n");
        }
        Value::Blob(kind, None) => out.extend_from_slice(format!("{}-1\r\n", *kind as char).as_bytes()),
        Value::Blob(kind, Some(bytes)) => {
            out.extend_from_slice(format!("{}{}\r\n", *kind as char, bytes.len()).as_bytes());
            out.extend_from_slice(bytes);
            out.extend_from_slice(b"\r\n");
        }
        Value::Agg(kind, None) => out.extend_from_slice(format!("{}-1\r\n", *kind as char).as_bytes()),
        Value::Agg(kind, Some(children)) => {
            let count = if *kind == b'%' { children.len() / 2 } else { children.len() };
            out.extend_from_slice(format!("{}{}\r\n", *kind as char, count).as_bytes());
            children.iter().for_each(|c| encode(c, out));
        }
    }
}

/// Sorts the elements of a top-level array or set reply (for replies whose order Redis leaves open).
pub fn sorted(reply: &[u8]) -> Vec<u8> {
    let Some((mut value, _)) = parse(reply) else { return reply.to_vec() };
    if let Value::Agg(kind, Some(children)) = &mut value {
        if *kind == b'%' {
            // A map: sort its (key, value) pairs.
            let mut pairs: Vec<Vec<Value>> = children.chunks(2).map(<[Value]>::to_vec).collect();
            pairs.sort();
            *children = pairs.into_iter().flatten().collect();
        } else {
            children.sort();
        }
    }
    let mut out = Vec::new();
    encode(&value, &mut out);
    out
}

/// Encodes a command as a RESP multibulk.
pub fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A raw connection.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Connects, or fails.
    pub fn try_connect(port: u16) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.set_nodelay(true)?;
        Ok(Conn { stream, buf: Vec::new() })
    }

    /// Connects, or panics.
    pub fn connect(port: u16) -> Conn {
        Conn::try_connect(port).unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"))
    }

    /// Changes the read timeout.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.stream.set_read_timeout(Some(timeout)).expect("set timeout");
    }

    /// Sends raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Sends raw bytes; false if the connection is gone (the server was killed).
    pub fn try_send(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).is_ok()
    }

    /// Reads one complete reply; empty if the connection closed or timed out first.
    pub fn read_reply(&mut self) -> Vec<u8> {
        loop {
            if let Some((_, used)) = parse(&self.buf) {
                return self.buf.drain(..used).collect();
            }
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return Vec::new(),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Reads everything until the server closes the connection (or the timeout passes).
    pub fn read_to_close(&mut self) -> Vec<u8> {
        let mut all = std::mem::take(&mut self.buf);
        let mut chunk = [0u8; 65536];
        while let Ok(n) = self.stream.read(&mut chunk) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&chunk[..n]);
        }
        all
    }

    /// True if the server closed the connection (reads EOF within the timeout).
    pub fn is_closed(&mut self) -> bool {
        let mut chunk = [0u8; 1];
        matches!(self.stream.read(&mut chunk), Ok(0))
            || matches!(self.stream.read(&mut chunk), Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset)
    }

    /// Sends a command and returns its raw reply.
    pub fn cmd(&mut self, args: &[&str]) -> Vec<u8> {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.send(&command(&args));
        self.read_reply()
    }

    /// Sends a command with binary arguments and returns its raw reply.
    pub fn cmd_bytes(&mut self, args: &[&[u8]]) -> Vec<u8> {
        self.send(&command(args));
        self.read_reply()
    }
}

/// Shows reply bytes readably in assertion messages.
pub fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace("\r\n", "⏎")
}
