//! MIGRATE: moves (or copies) keys to another Redis or Velo server as Redis 7.0's `migrateCommand`
//! does: DUMP payloads of the keys, sent as `AUTH` (optional), `SELECT db` and one `RESTORE key ttl
//! payload [REPLACE]` per key, then the source keys the target acknowledged are deleted (unless COPY).
//!
//! The keys are read under their slot locks, which are released before the network: the exchange runs
//! as a task on the server's runtime (an async connection, each step bounded by the timeout) while the
//! command's thread waits for it and watches for cancellation (client gone, shutdown), so no worker
//! thread, slot or other client waits on the target. A key is deleted afterwards only if it still holds
//! the value that was sent (another client may have changed it meanwhile). Velo opens a connection per
//! MIGRATE (Redis caches one per target for 10 s and skips SELECT when the database is unchanged).

use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::args::{parse_i64, Args};
use super::{CmdError, Ctx};
use crate::rdb::store::{self, ExportError};
use crate::rdb::write;
use crate::resp::Reply;
use crate::server::notify;

/// One key to send: its name, DUMP payload and remaining time to live in ms (0: none).
struct Outgoing {
    key: Bytes,
    payload: Vec<u8>,
    ttl: i64,
}

/// What the exchange with the target came to.
#[derive(Debug, PartialEq)]
enum Exchange {
    /// One reply line per key; `preamble_error` is the AUTH or SELECT error (without its `-`), if any.
    Replies { preamble_error: Option<String>, lines: Vec<String> },
    /// Connecting failed or timed out.
    ConnectFailed,
    /// A socket error after `lines` RESTORE replies were read; `timeout` if it was a timeout.
    SocketError { writing: bool, timeout: bool, preamble_error: Option<String>, lines: Vec<String> },
}

/// Options after the fifth argument.
#[derive(Default)]
struct Options {
    copy: bool,
    replace: bool,
    username: Option<Bytes>,
    password: Option<Bytes>,
}

/// ```text
/// MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE] [AUTH password]
///     [AUTH2 username password] [KEYS key [key ...]]
/// ```
pub fn migrate(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let argv = args.rest();
    let mut options = Options::default();
    let mut keys = vec![argv[2].clone()];
    let mut j = 5;
    while j < argv.len() {
        let more = argv.len() - 1 - j;
        let arg = &argv[j];
        if arg.eq_ignore_ascii_case(b"copy") {
            options.copy = true;
        } else if arg.eq_ignore_ascii_case(b"replace") {
            options.replace = true;
        } else if arg.eq_ignore_ascii_case(b"auth") {
            if more == 0 {
                return Err(CmdError::Syntax);
            }
            j += 1;
            options.password = Some(argv[j].clone());
        } else if arg.eq_ignore_ascii_case(b"auth2") {
            if more < 2 {
                return Err(CmdError::Syntax);
            }
            options.username = Some(argv[j + 1].clone());
            options.password = Some(argv[j + 2].clone());
            j += 2;
        } else if arg.eq_ignore_ascii_case(b"keys") {
            if !argv[2].is_empty() {
                return Err(CmdError::err(
                    "When using MIGRATE KEYS option, the key argument must be set to the empty string",
                ));
            }
            keys = argv[j + 1..].to_vec();
            break;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let timeout = parse_i64(&argv[4]).ok_or(CmdError::NotInteger)?;
    let target_db = parse_i64(&argv[3]).ok_or(CmdError::NotInteger)?;
    let timeout = Duration::from_millis(if timeout <= 0 { 1000 } else { timeout as u64 });

    let outgoing = read_keys(ctx, &keys)?;
    if outgoing.is_empty() {
        return Ok(Reply::simple("NOKEY"));
    }
    let request = request_bytes(&options, target_db, &outgoing);
    let address = format!("{}:{}", String::from_utf8_lossy(&argv[0]), String::from_utf8_lossy(&argv[1]));
    let has_auth = options.password.is_some();
    let mut exchange = run_exchange(ctx, &address, request.clone(), has_auth, outgoing.len(), timeout)?;
    // Redis retries once on a socket error that is not a timeout when no RESTORE reply was read
    // (its cached socket may have been stale).
    if let Exchange::SocketError { timeout: false, preamble_error: None, lines, .. } = &exchange {
        if lines.is_empty() {
            exchange = run_exchange(ctx, &address, request, has_auth, outgoing.len(), timeout)?;
        }
    }
    let (preamble_error, lines, socket_error) = match exchange {
        Exchange::ConnectFailed => return Err(CmdError::Raw("IOERR error or timeout connecting to the client".into())),
        Exchange::Replies { preamble_error, lines } => (preamble_error, lines, None),
        Exchange::SocketError { writing: true, .. } => {
            return Err(CmdError::Raw("IOERR error or timeout writing to target instance".into()))
        }
        Exchange::SocketError { preamble_error, lines, .. } => (preamble_error, lines, Some(())),
    };
    let mut target_error = None;
    let mut acknowledged = Vec::new();
    for (sent, line) in outgoing.iter().zip(&lines) {
        match preamble_error.as_deref().or_else(|| line.strip_prefix('-')) {
            Some(error) => {
                target_error.get_or_insert_with(|| error.to_string());
            }
            None => acknowledged.push(sent),
        }
    }
    if !options.copy {
        delete_sent(ctx, &acknowledged)?;
    }
    if let Some(error) = target_error {
        return Err(CmdError::err(format!("Target instance replied with error: {error}")));
    }
    if socket_error.is_some() {
        return Err(CmdError::Raw("IOERR error or timeout reading to target instance".into()));
    }
    Ok(Reply::Ok)
}

/// The keys that exist, with their payloads and times to live (Redis skips a key that expired between
/// its lookup and its serialisation; here both happen under the key's slot lock).
fn read_keys(ctx: &Ctx<'_>, keys: &[Bytes]) -> Result<Vec<Outgoing>, CmdError> {
    let db = ctx.db();
    let mut out = Vec::new();
    for key in keys {
        ctx.checkpoint()?;
        let found = {
            let mut slot = ctx.engine.lock_key(key);
            store::read(&mut slot, db, key)?
        };
        let Some((value, expire_at)) = found else { continue };
        let value = match value {
            Ok(value) => value,
            Err(ExportError::Module) => {
                return Err(CmdError::err("DUMP of a bloom filter is not supported (it is a module type in Redis)"))
            }
            Err(ExportError::Unreadable(why)) => {
                return Err(CmdError::err(format!("stored value is unreadable: {why}")))
            }
        };
        let ttl = match expire_at {
            None => 0,
            Some(at) => {
                let left = at as i64 - ctx.now_ms() as i64;
                if left < 0 {
                    continue;
                }
                left.max(1)
            }
        };
        out.push(Outgoing { key: key.clone(), payload: write::payload(&value), ttl });
    }
    Ok(out)
}

/// The request sent to the target: AUTH, SELECT and one RESTORE per key, in RESP.
fn request_bytes(options: &Options, target_db: i64, outgoing: &[Outgoing]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut command = |args: &[&[u8]]| {
        out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for arg in args {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
    };
    match (&options.username, &options.password) {
        (Some(user), Some(password)) => command(&[b"AUTH", user, password]),
        (None, Some(password)) => command(&[b"AUTH", password]),
        _ => {}
    }
    command(&[b"SELECT", target_db.to_string().as_bytes()]);
    for key in outgoing {
        let ttl = key.ttl.to_string();
        let mut args: Vec<&[u8]> = vec![b"RESTORE", &key.key, ttl.as_bytes(), &key.payload];
        if options.replace {
            args.push(b"REPLACE");
        }
        command(&args);
    }
    out
}

/// Runs one exchange with the target as a task on the runtime; this thread waits for it, checking for
/// cancellation.
fn run_exchange(
    ctx: &Ctx<'_>,
    address: &str,
    request: Vec<u8>,
    has_auth: bool,
    keys: usize,
    timeout: Duration,
) -> Result<Exchange, CmdError> {
    let runtime =
        tokio::runtime::Handle::try_current().map_err(|_| CmdError::err("MIGRATE needs the server's runtime"))?;
    let (send, receive) = std::sync::mpsc::channel();
    let address = address.to_string();
    let task = runtime.spawn(async move {
        let _ = send.send(exchange(&address, &request, has_auth, keys, timeout).await);
    });
    loop {
        match receive.recv_timeout(crate::server::cancel::CHECK_INTERVAL) {
            Ok(exchange) => return Ok(exchange),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if let Err(cancelled) = ctx.check_cancelled() {
                    task.abort();
                    return Err(cancelled);
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Ok(Exchange::SocketError {
                    writing: false,
                    timeout: false,
                    preamble_error: None,
                    lines: Vec::new(),
                })
            }
        }
    }
}

/// Connects, writes the request in 64 KiB pieces and reads one line per reply, each step within
/// `timeout`, as Redis's synchronous socket calls do.
async fn exchange(address: &str, request: &[u8], has_auth: bool, keys: usize, timeout: Duration) -> Exchange {
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
        Ok(Ok(stream)) => stream,
        // Redis connects without blocking and waits for the socket to be writable, which a refused
        // connection also makes it: its first write fails instead ("writing", then one retry).
        Ok(Err(error)) if error.kind() == std::io::ErrorKind::ConnectionRefused => {
            return Exchange::SocketError { writing: true, timeout: false, preamble_error: None, lines: Vec::new() }
        }
        _ => return Exchange::ConnectFailed,
    };
    let _ = stream.set_nodelay(true);
    let (reader, mut writer) = stream.into_split();
    for piece in request.chunks(64 * 1024) {
        match tokio::time::timeout(timeout, writer.write_all(piece)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => {
                return Exchange::SocketError { writing: true, timeout: false, preamble_error: None, lines: Vec::new() }
            }
            Err(_) => {
                return Exchange::SocketError { writing: true, timeout: true, preamble_error: None, lines: Vec::new() }
            }
        }
    }
    let mut reader = BufReader::new(reader);
    let mut preamble_error = None;
    let preamble = usize::from(has_auth) + 1;
    for _ in 0..preamble {
        match read_line(&mut reader, timeout).await {
            Ok(line) => {
                if preamble_error.is_none() {
                    preamble_error = line.strip_prefix('-').map(str::to_string);
                }
            }
            Err(timeout) => {
                return Exchange::SocketError { writing: false, timeout, preamble_error, lines: Vec::new() }
            }
        }
    }
    let mut lines = Vec::with_capacity(keys);
    for _ in 0..keys {
        match read_line(&mut reader, timeout).await {
            Ok(line) => lines.push(line),
            Err(timeout) => return Exchange::SocketError { writing: false, timeout, preamble_error, lines },
        }
    }
    Exchange::Replies { preamble_error, lines }
}

/// One reply line without its CR LF (cut to Redis's 1024-byte buffer); `Err(true)` on a timeout,
/// `Err(false)` on a socket error or end of stream.
async fn read_line(reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>, timeout: Duration) -> Result<String, bool> {
    let mut line = Vec::new();
    match tokio::time::timeout(timeout, reader.read_until(b'\n', &mut line)).await {
        Ok(Ok(n)) if n > 0 && line.ends_with(b"\n") => {
            while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                line.pop();
            }
            line.truncate(1023);
            Ok(String::from_utf8_lossy(&line).into_owned())
        }
        Ok(_) => Err(false),
        Err(_) => Err(true),
    }
}

/// Deletes the keys the target acknowledged, each only if it still holds the value that was sent.
fn delete_sent(ctx: &Ctx<'_>, sent: &[&Outgoing]) -> Result<(), CmdError> {
    let db = ctx.db();
    for key in sent {
        let deleted = {
            let mut slot = ctx.engine.lock_key(&key.key);
            let unchanged = match store::read(&mut slot, db, &key.key)? {
                Some((Ok(value), _)) => write::payload(&value) == key.payload,
                _ => false,
            };
            let deleted = unchanged && slot.delete(db, &key.key)?;
            slot.commit()?;
            deleted
        };
        if deleted {
            ctx.touch(db, &key.key);
            ctx.notify(notify::GENERIC, "del", db, &key.key);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_is_auth_select_then_restores() {
        let options = Options {
            replace: true,
            username: Some(Bytes::from("u")),
            password: Some(Bytes::from("p")),
            ..Options::default()
        };
        let keys = [Outgoing { key: Bytes::from("k"), payload: b"xy".to_vec(), ttl: 5 }];
        assert_eq!(
            request_bytes(&options, 3, &keys),
            b"*3\r\n$4\r\nAUTH\r\n$1\r\nu\r\n$1\r\np\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n\
              *5\r\n$7\r\nRESTORE\r\n$1\r\nk\r\n$1\r\n5\r\n$2\r\nxy\r\n$7\r\nREPLACE\r\n"
                .to_vec()
        );
    }
}
