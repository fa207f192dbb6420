//! A throwaway `redis-server` for differential tests of `velo::types`, spoken to in raw RESP.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A RESP2 reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

impl Reply {
    pub fn int(&self) -> i64 {
        match self {
            Reply::Int(n) => *n,
            other => panic!("expected an integer, got {other:?}"),
        }
    }
    pub fn bulk(&self) -> Option<Vec<u8>> {
        match self {
            Reply::Bulk(b) => b.clone(),
            other => panic!("expected a bulk string, got {other:?}"),
        }
    }
    pub fn text(&self) -> Option<String> {
        self.bulk().map(|b| String::from_utf8(b).expect("utf-8 reply"))
    }
    pub fn array(&self) -> Vec<Reply> {
        match self {
            Reply::Array(Some(items)) => items.clone(),
            other => panic!("expected an array, got {other:?}"),
        }
    }
}

/// A `redis-server` child on a free port, killed on drop.
pub struct RedisServer {
    child: Child,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--save", "", "--appendonly", "no"])
            .args(["--bind", "127.0.0.1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("install redis-server: apt-get install redis-server");
        let deadline = Instant::now() + Duration::from_secs(10);
        let stream = loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(s) => break s,
                Err(e) if Instant::now() > deadline => panic!("redis-server did not start: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        let mut server =
            RedisServer { child, reader: BufReader::new(stream.try_clone().expect("clone stream")), writer: stream };
        assert_eq!(server.cmd(&[b"PING"]), Reply::Status("PONG".into()));
        server
    }

    /// Sends one command and reads its reply.
    pub fn cmd(&mut self, args: &[&[u8]]) -> Reply {
        self.send(args);
        self.read_reply()
    }

    /// Sends many commands in one pipeline and reads every reply.
    pub fn pipeline(&mut self, commands: &[Vec<Vec<u8>>]) -> Vec<Reply> {
        let mut buf = Vec::new();
        for command in commands {
            let args: Vec<&[u8]> = command.iter().map(Vec::as_slice).collect();
            encode(&mut buf, &args);
        }
        self.writer.write_all(&buf).expect("write to redis");
        (0..commands.len()).map(|_| self.read_reply()).collect()
    }

    fn send(&mut self, args: &[&[u8]]) {
        let mut buf = Vec::new();
        encode(&mut buf, args);
        self.writer.write_all(&buf).expect("write to redis");
    }

    fn read_line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read from redis");
        line.trim_end_matches("\r\n").to_string()
    }

    fn read_reply(&mut self) -> Reply {
        let line = self.read_line();
        let (kind, rest) = line.split_at(1);
        match kind {
            "+" => Reply::Status(rest.to_string()),
            "-" => Reply::Error(rest.to_string()),
            ":" => Reply::Int(rest.parse().expect("integer reply")),
            "$" => {
                let len: i64 = rest.parse().expect("bulk length");
                if len < 0 {
                    return Reply::Bulk(None);
                }
                let mut data = vec![0u8; len as usize + 2];
                self.reader.read_exact(&mut data).expect("bulk body");
                data.truncate(len as usize);
                Reply::Bulk(Some(data))
            }
            "*" => {
                let len: i64 = rest.parse().expect("array length");
                if len < 0 {
                    return Reply::Array(None);
                }
                Reply::Array(Some((0..len).map(|_| self.read_reply()).collect()))
            }
            other => panic!("unexpected RESP type {other:?} in {line:?}"),
        }
    }
}

fn encode(buf: &mut Vec<u8>, args: &[&[u8]]) {
    buf.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        buf.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        buf.extend_from_slice(arg);
        buf.extend_from_slice(b"\r\n");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
