//! SYNC for snapshot clients: the RDB of one instant sent over the connection as a Redis master sends
//! it to a new replica, which is how `redis-cli --rdb FILE` and backup tools take a copy of a running
//! server. Velo does not replicate yet, so no command stream follows: the connection closes once the
//! file is sent, as Redis closes it for a client that said `REPLCONF rdb-only 1`.
//!
//! Two framings, as Redis 7.0 uses them: a client that announced `REPLCONF capa eof` gets
//! `$EOF:<40-character mark>\r\n`, the file and the mark again, streamed straight from the snapshot
//! (diskless); any other client gets `$<length>\r\n` and the file, which must therefore be written to a
//! temporary file in `dir` first. While the transfer waits for a BGSAVE to finish (one snapshot at a
//! time), newlines go out every second, as Redis sends them and clients skip them.
//!
//! Memory is bounded by the channel between the writing thread and the connection ([`CHANNEL_CHUNKS`]
//! chunks of [`CHUNK`] bytes): a slow reader slows the writer down. A client that goes away, or a
//! shutdown, drops the channel's receiver, which ends the writer at its next chunk.

use std::io::{Read, Seek, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

use super::Server;
use crate::rdb::export;
use crate::rdb::write::RdbWriter;

/// Bytes per chunk handed to the connection.
pub const CHUNK: usize = 64 * 1024;
/// Chunks in flight between the writing thread and the connection.
pub const CHANNEL_CHUNKS: usize = 16;
const EOF_MARK_LEN: usize = 40;

/// What a client announced with REPLCONF before SYNC.
#[derive(Debug, Default, Clone)]
pub struct ReplicaConf {
    /// `capa eof`: it reads the EOF-marked (diskless) framing.
    pub capa_eof: bool,
    /// `rdb-only 1`: it wants the file and nothing after it.
    pub rdb_only: bool,
    /// `rdb-filter-only functions`: the file carries the function libraries and no keys.
    pub functions_only: bool,
}

/// A transfer under way: the chunks to write to the client, in order; the connection closes after the
/// last one (the sender is dropped).
pub struct Transfer {
    /// The framed file, chunk by chunk.
    pub chunks: mpsc::Receiver<Bytes>,
}

/// Why SYNC was refused.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// `rdb-filter-only` needs the EOF framing (Redis's rule: the length of a filtered file is not known
    /// before it is written).
    #[error("Filtered replica requires EOF capability")]
    FilterNeedsEof,
    /// The writing thread could not start.
    #[error("cannot start the transfer: {0}")]
    Spawn(String),
}

/// Starts sending a snapshot to client `client_id`. Called by the SYNC handler, which holds the command
/// lock shared: when no save runs, the snapshot is registered here, at this instant; otherwise the
/// writing thread waits for the save and registers it then, under the command lock itself.
pub fn start(server: &Server, conf: &ReplicaConf, client_id: u64) -> Result<Transfer, SyncError> {
    if conf.functions_only && !conf.capa_eof {
        return Err(SyncError::FilterNeedsEof);
    }
    let server = server.rdb.server().ok_or_else(|| SyncError::Spawn("server not attached".into()))?;
    let server = &server;
    let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
    let claimed = server.rdb.claim();
    let registered = if claimed && !conf.functions_only { Some(server.rdb.register_transfer(server)) } else { None };
    let server = server.clone();
    let conf = conf.clone();
    let spawned = std::thread::Builder::new().name("velo-sync".into()).spawn(move || {
        let mut out = ChannelWriter { tx, buf: BytesMut::with_capacity(CHUNK) };
        let result = send(&server, &conf, client_id, claimed, registered, &mut out);
        if let Err(error) = result {
            // The client sees its connection close before the end of the file, as with Redis.
            tracing::warn!(client = client_id, %error, "SYNC transfer ended early");
        }
    });
    spawned.map_err(|error| SyncError::Spawn(error.to_string()))?;
    Ok(Transfer { chunks: rx })
}

type Registered = Result<super::rdbsave::TransferSnapshot, super::rdbsave::SaveError>;

fn send(
    server: &Arc<Server>,
    conf: &ReplicaConf,
    client_id: u64,
    mut claimed: bool,
    mut registered: Option<Registered>,
    out: &mut ChannelWriter,
) -> std::io::Result<()> {
    // Wait for a running save to end (newlines keep the client's read from timing out).
    let mut last_newline = Instant::now();
    while !claimed {
        if out.tx.is_closed() {
            return Ok(());
        }
        if last_newline.elapsed() >= Duration::from_secs(1) {
            out.send(Bytes::from_static(b"\n"))?;
            last_newline = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(10));
        claimed = server.rdb.claim();
        if claimed && !conf.functions_only {
            let _shared = server.command_lock.read().unwrap_or_else(|p| p.into_inner());
            registered = Some(server.rdb.register_transfer(server));
        }
    }
    let result = frame(server, conf, client_id, registered, out);
    server.rdb.release(server);
    result
}

/// Writes the framed file: the snapshot's keys (unless functions only) and the function libraries.
fn frame(
    server: &Arc<Server>,
    conf: &ReplicaConf,
    client_id: u64,
    registered: Option<Registered>,
    out: &mut ChannelWriter,
) -> std::io::Result<()> {
    let failed = |error: String| std::io::Error::other(error);
    if conf.functions_only {
        let mark = eof_mark(client_id);
        out.write_all(format!("$EOF:{mark}\r\n").as_bytes())?;
        let mut writer = RdbWriter::new(&mut *out, true)?;
        for library in server.rdb.function_codes(server) {
            writer.function(&library)?;
        }
        writer.finish()?;
        out.write_all(mark.as_bytes())?;
        return out.flush();
    }
    let snapshot = match registered {
        Some(Ok(snapshot)) => snapshot,
        Some(Err(error)) => return Err(failed(format!("{error:?}"))),
        None => return Err(failed("no snapshot registered".into())),
    };
    let no_progress = &mut |_| {};
    if conf.capa_eof {
        let mark = eof_mark(client_id);
        out.write_all(format!("$EOF:{mark}\r\n").as_bytes())?;
        export::dump_snapshot(&snapshot.snapshot, &snapshot.dbs, &mut *out, &snapshot.options, no_progress)
            .map_err(|error| failed(error.to_string()))?;
        out.write_all(mark.as_bytes())?;
        return out.flush();
    }
    // The length goes first: write the file aside, then send it. The name starts as an interrupted save's
    // temporary file does, so a crash's leftover is removed at the next start.
    let path = {
        let config = server.lock_config();
        config.dir.join(format!(".{}.tmp-sync-{client_id}", config.dbfilename))
    };
    let result = (|| {
        let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path)?;
        let writer = std::io::BufWriter::with_capacity(1 << 20, file);
        let (writer, _) =
            export::dump_snapshot(&snapshot.snapshot, &snapshot.dbs, writer, &snapshot.options, no_progress)
                .map_err(|error| failed(error.to_string()))?;
        let mut file = writer.into_inner().map_err(|error| error.into_error())?;
        let length = file.stream_position()?;
        file.rewind()?;
        out.write_all(format!("${length}\r\n").as_bytes())?;
        let mut chunk = vec![0; CHUNK];
        loop {
            let read = file.read(&mut chunk)?;
            if read == 0 {
                break;
            }
            out.write_all(chunk.get(..read).unwrap_or_default())?;
        }
        out.flush()
    })();
    let _ = std::fs::remove_file(&path);
    result
}

/// 40 hexadecimal characters no RDB file is likely to contain: a hash of the time, the process and the
/// client.
fn eof_mark(client_id: u64) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    let mut hasher = sha1_smol::Sha1::new();
    hasher.update(&nanos.to_le_bytes());
    hasher.update(&std::process::id().to_le_bytes());
    hasher.update(&client_id.to_le_bytes());
    let mark = hasher.digest().to_string();
    debug_assert_eq!(mark.len(), EOF_MARK_LEN);
    mark
}

/// An `io::Write` that hands [`CHUNK`]-sized pieces to the connection; fails once the connection has
/// dropped its end (client gone, shutdown).
struct ChannelWriter {
    tx: mpsc::Sender<Bytes>,
    buf: BytesMut,
}

impl ChannelWriter {
    fn send(&mut self, chunk: Bytes) -> std::io::Result<()> {
        self.tx
            .blocking_send(chunk)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client is gone"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            let chunk = self.buf.split().freeze();
            self.send(chunk)?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            let chunk = self.buf.split().freeze();
            self.send(chunk)?;
        }
        Ok(())
    }
}
