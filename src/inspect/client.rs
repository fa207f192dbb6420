//! A small blocking RESP2 client for `bigkeys --host`: commands as arrays of bulk strings, pipelined in
//! batches; replies parsed into [`Reply`]. Enough for SCAN, TYPE, MEMORY USAGE and length commands
//! against Velo or Redis, nothing more.

use std::io::{self, BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`.
    Status(String),
    /// `-ERR ...`.
    Error(String),
    /// `:1`.
    Integer(i64),
    /// `$3\r\nfoo`.
    Bulk(Vec<u8>),
    /// `$-1` / `*-1`.
    Nil,
    /// `*2 ...`.
    Array(Vec<Reply>),
}

/// A connection.
pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    /// Connects (10 s timeouts).
    pub fn connect(host: &str, port: u16) -> io::Result<Client> {
        let stream = TcpStream::connect((host, port))
            .map_err(|e| io::Error::new(e.kind(), format!("connect to {host}:{port}: {e}")))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.set_write_timeout(Some(Duration::from_secs(30)))?;
        stream.set_nodelay(true)?;
        Ok(Client { reader: BufReader::new(stream.try_clone()?), writer: stream })
    }

    /// Sends one command and reads its reply.
    pub fn call(&mut self, args: &[&[u8]]) -> io::Result<Reply> {
        let mut out = Vec::new();
        encode(args.iter().copied(), &mut out);
        self.writer.write_all(&out)?;
        self.read_reply()
    }

    /// Sends several commands at once and reads their replies in order.
    pub fn pipeline(&mut self, commands: Vec<Vec<Vec<u8>>>) -> io::Result<Vec<Reply>> {
        let mut out = Vec::new();
        for command in &commands {
            encode(command.iter().map(Vec::as_slice), &mut out);
        }
        self.writer.write_all(&out)?;
        commands.iter().map(|_| self.read_reply()).collect()
    }

    fn read_line(&mut self) -> io::Result<Vec<u8>> {
        let mut line = Vec::new();
        self.reader.read_until(b'\n', &mut line)?;
        if !line.ends_with(b"\r\n") {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed mid-reply"));
        }
        line.truncate(line.len() - 2);
        Ok(line)
    }

    fn read_reply(&mut self) -> io::Result<Reply> {
        let line = self.read_line()?;
        let (&tag, rest) = line.split_first().ok_or_else(|| bad("empty reply line"))?;
        let text = String::from_utf8_lossy(rest).into_owned();
        let number = || text.parse::<i64>().map_err(|_| bad("bad length in reply"));
        Ok(match tag {
            b'+' => Reply::Status(text),
            b'-' => Reply::Error(text),
            b':' => Reply::Integer(number()?),
            b'$' => {
                let len = number()?;
                if len < 0 {
                    return Ok(Reply::Nil);
                }
                let mut bytes = vec![0u8; len as usize + 2];
                io::Read::read_exact(&mut self.reader, &mut bytes)?;
                bytes.truncate(len as usize);
                Reply::Bulk(bytes)
            }
            b'*' => {
                let len = number()?;
                if len < 0 {
                    return Ok(Reply::Nil);
                }
                let mut items = Vec::with_capacity(len.min(1 << 16) as usize);
                for _ in 0..len {
                    items.push(self.read_reply()?);
                }
                Reply::Array(items)
            }
            other => return Err(bad(&format!("unexpected reply type byte {other:#04x}"))),
        })
    }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

fn encode<'a>(args: impl ExactSizeIterator<Item = &'a [u8]>, out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}
