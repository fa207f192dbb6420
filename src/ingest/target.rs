//! Where validated records go: a data directory opened offline through the engine, or a running Velo or
//! Redis server over a small blocking, pipelined RESP connection.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::net::TcpStream;
use std::path::Path;

use bytes::Bytes;

use super::{IngestError, Record, Value};
use crate::cmd::collection;
use crate::engine::{
    BatchOp, BulkLoad, Engine, EngineOptions, Error as EngineError, FsyncPolicy, Transaction, ValueKind,
};
use crate::types::hash::HashValue;

/// A place to load records into.
pub trait Target {
    /// Whether each key exists now.
    fn exists(&mut self, keys: &[Vec<u8>]) -> Result<Vec<bool>, IngestError>;
    /// Writes records (distinct keys); `replace` frees whatever the keys held first.
    fn write(&mut self, records: Vec<Record>, replace: bool) -> Result<(), IngestError>;
    /// Makes everything written durable and lets go.
    fn finish(self: Box<Self>) -> Result<(), IngestError>;
    /// True when the target held no key and its writes are staged until [`Target::finish`] (an engine bulk
    /// load): a load may then write while it still validates, since [`Target::discard`] drops the writes.
    fn is_bulk(&self) -> bool {
        false
    }
    /// Drops everything written so far, for a load that validation failed (only when [`Target::is_bulk`]).
    fn discard(&mut self) {}
}

/// A data directory opened with the engine (offline: no server may hold it). The write pass is atomic:
/// into a directory without keys it is an engine bulk load (staged, then published at once); otherwise
/// every write runs in one engine transaction, committed by [`Target::finish`].
pub struct EngineTarget<'e> {
    engine: &'e Engine,
    db: u16,
    /// The directory held no key when the target was opened.
    empty: bool,
    mode: Option<WriteMode<'e>>,
}

enum WriteMode<'e> {
    Bulk(BulkLoad),
    Transaction(Transaction<'e>),
}

/// Opens (or creates) a data directory for [`EngineTarget`]. A directory a server holds fails with the
/// holder's pid.
pub fn open_engine(dir: &Path) -> Result<Engine, IngestError> {
    // The load syncs once at the end (Engine::close checkpoints); a per-second fsync thread would only
    // slow it down.
    let options = EngineOptions { fsync: FsyncPolicy::No, background_sync: false, ..EngineOptions::default() };
    match Engine::open(dir, options) {
        Ok(engine) => Ok(engine),
        Err(EngineError::Locked { dir, pid }) => Err(IngestError::Target(format!(
            "data directory {} is in use by a running server (pid {pid}); stop it, or load through it with --host/--port",
            dir.display()
        ))),
        Err(error) => Err(IngestError::Target(format!("cannot open data directory {}: {error}", dir.display()))),
    }
}

impl<'e> EngineTarget<'e> {
    /// A target writing into `engine`'s database `db`.
    pub fn new(engine: &'e Engine, db: u16) -> Result<EngineTarget<'e>, IngestError> {
        let empty = engine.is_empty_for_bulk().map_err(engine_error)?;
        Ok(EngineTarget { engine, db, empty, mode: None })
    }
}

fn engine_error(error: impl std::fmt::Display) -> IngestError {
    IngestError::Target(format!("write failed: {error}"))
}

impl Drop for EngineTarget<'_> {
    fn drop(&mut self) {
        // Not finished (a failed load): nothing of it may survive. A bulk load deletes its staged files; a
        // transaction ends without its commit record.
        if let Some(WriteMode::Transaction(transaction)) = self.mode.take() {
            transaction.abandon();
        }
    }
}

impl Target for EngineTarget<'_> {
    fn exists(&mut self, keys: &[Vec<u8>]) -> Result<Vec<bool>, IngestError> {
        if self.empty {
            return Ok(vec![false; keys.len()]);
        }
        keys.iter().map(|key| self.engine.exists(self.db, key).map_err(engine_error)).collect()
    }

    fn write(&mut self, records: Vec<Record>, replace: bool) -> Result<(), IngestError> {
        if self.mode.is_none() {
            self.mode = Some(if self.empty {
                WriteMode::Bulk(self.engine.bulk_load().map_err(engine_error)?)
            } else {
                WriteMode::Transaction(self.engine.transaction())
            });
        }
        if let Some(WriteMode::Bulk(load)) = &mut self.mode {
            // Keys are distinct (pass 1 kept one row per key) and none existed: plain creations.
            for record in records {
                let slot = self.engine.slot_of(&record.key);
                match record.value {
                    // One op, handed over without a vector of its own.
                    Value::String(value) => load
                        .write_op(
                            slot,
                            BatchOp::Set {
                                db: self.db,
                                key: record.key,
                                kind: ValueKind::String,
                                value,
                                expire_at_ms: record.expire_at_ms,
                            },
                        )
                        .map_err(engine_error)?,
                    Value::Hash(pairs) => {
                        let mut ops = Vec::new();
                        let pairs = pairs.into_iter().map(|(f, v)| (Bytes::from(f), Bytes::from(v))).collect();
                        collection::create_ops(
                            &mut ops,
                            self.db,
                            &record.key,
                            &HashValue::from_pairs(pairs),
                            record.expire_at_ms,
                        );
                        load.write_slot(slot, ops).map_err(engine_error)?;
                    }
                }
            }
            return Ok(());
        }
        let mut per_slot: HashMap<usize, Vec<Record>> = HashMap::new();
        for record in records {
            per_slot.entry(self.engine.slot_of(&record.key)).or_default().push(record);
        }
        for (slot_index, records) in per_slot {
            let mut guard = self.engine.lock_slot(slot_index);
            let mut ops = Vec::with_capacity(records.len());
            for record in records {
                match record.value {
                    Value::String(value) => {
                        if replace {
                            // A split collection's parts go with it, as SET over it would do.
                            collection::replace_ops(&mut guard, self.db, &record.key, &mut ops)
                                .map_err(|e| engine_error(e.text()))?;
                        }
                        ops.push(BatchOp::Set {
                            db: self.db,
                            key: record.key,
                            kind: ValueKind::String,
                            value,
                            expire_at_ms: record.expire_at_ms,
                        });
                    }
                    Value::Hash(pairs) => {
                        // The same writes HSET into an empty key would make: compact, or split when large.
                        let pairs = pairs.into_iter().map(|(f, v)| (Bytes::from(f), Bytes::from(v))).collect();
                        collection::store_ops(
                            &mut guard,
                            self.db,
                            &record.key,
                            &HashValue::from_pairs(pairs),
                            record.expire_at_ms,
                            &mut ops,
                        )
                        .map_err(|e| engine_error(e.text()))?;
                    }
                }
            }
            guard.write_batch(ops).map_err(engine_error)?;
            guard.commit().map_err(engine_error)?;
        }
        Ok(())
    }

    fn is_bulk(&self) -> bool {
        self.empty
    }

    fn discard(&mut self) {
        // Dropping a bulk load deletes its staged files; an abandoned transaction leaves no commit record.
        if let Some(WriteMode::Transaction(transaction)) = self.mode.take() {
            transaction.abandon();
        }
    }

    fn finish(mut self: Box<Self>) -> Result<(), IngestError> {
        match self.mode.take() {
            Some(WriteMode::Bulk(load)) => self.engine.commit_bulk(load).map_err(engine_error)?,
            Some(WriteMode::Transaction(transaction)) => transaction.commit().map_err(engine_error)?,
            None => {}
        }
        self.engine.sync().map_err(engine_error)
    }
}

/// A running server reached over TCP; commands are pipelined per batch.
pub struct RespTarget {
    writer: BufWriter<TcpStream>,
    reader: BufReader<TcpStream>,
    address: String,
}

impl RespTarget {
    /// Connects, authenticates and selects `db`.
    pub fn connect(host: &str, port: u16, password: Option<&str>, db: u16) -> Result<RespTarget, IngestError> {
        let address = format!("{host}:{port}");
        let stream = TcpStream::connect(&address)
            .map_err(|e| IngestError::Target(format!("cannot connect to {address}: {e}")))?;
        let _ = stream.set_nodelay(true);
        let reader = BufReader::new(stream.try_clone().map_err(|e| IngestError::Target(e.to_string()))?);
        let mut target = RespTarget { writer: BufWriter::with_capacity(1 << 20, stream), reader, address };
        let mut expected = 0;
        if let Some(password) = password {
            target.command(&[b"AUTH", password.as_bytes()])?;
            expected += 1;
        }
        if db != 0 {
            target.command(&[b"SELECT", db.to_string().as_bytes()])?;
            expected += 1;
        }
        target.replies(expected)?;
        Ok(target)
    }

    fn command(&mut self, args: &[&[u8]]) -> Result<(), IngestError> {
        let mut head = Vec::with_capacity(16);
        write!(head, "*{}\r\n", args.len()).expect("Vec write");
        self.writer.write_all(&head).map_err(|e| self.io(e))?;
        for arg in args {
            let mut line = Vec::with_capacity(16);
            write!(line, "${}\r\n", arg.len()).expect("Vec write");
            self.writer.write_all(&line).map_err(|e| self.io(e))?;
            self.writer.write_all(arg).map_err(|e| self.io(e))?;
            self.writer.write_all(b"\r\n").map_err(|e| self.io(e))?;
        }
        Ok(())
    }

    fn io(&self, error: std::io::Error) -> IngestError {
        IngestError::Target(format!("{}: {error}", self.address))
    }

    /// Flushes and reads `count` replies; an error reply fails the load with the server's text. Returns the
    /// integer replies (0 for the others).
    fn replies(&mut self, count: usize) -> Result<Vec<i64>, IngestError> {
        self.writer.flush().map_err(|e| self.io(e))?;
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            out.push(self.reply()?);
        }
        Ok(out)
    }

    fn line(&mut self) -> Result<String, IngestError> {
        let mut line = String::new();
        let read = self.reader.read_line(&mut line).map_err(|e| self.io(e))?;
        if read == 0 {
            return Err(IngestError::Target(format!("{}: connection closed by the server", self.address)));
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }

    fn reply(&mut self) -> Result<i64, IngestError> {
        let line = self.line()?;
        let (kind, rest) = line.split_at(line.len().min(1));
        match kind {
            "+" => Ok(0),
            "-" => Err(IngestError::Target(format!("{} replied: {rest}", self.address))),
            ":" => Ok(rest.parse().unwrap_or(0)),
            "$" => {
                let len: i64 = rest.parse().unwrap_or(-1);
                if len >= 0 {
                    let mut skip = vec![0u8; len as usize + 2];
                    std::io::Read::read_exact(&mut self.reader, &mut skip).map_err(|e| self.io(e))?;
                }
                Ok(0)
            }
            "*" => {
                let len: i64 = rest.parse().unwrap_or(-1);
                for _ in 0..len.max(0) {
                    self.reply()?;
                }
                Ok(0)
            }
            _ => Err(IngestError::Target(format!("{}: unexpected reply {line:?}", self.address))),
        }
    }
}

impl Target for RespTarget {
    fn exists(&mut self, keys: &[Vec<u8>]) -> Result<Vec<bool>, IngestError> {
        for key in keys {
            self.command(&[b"EXISTS", key])?;
        }
        Ok(self.replies(keys.len())?.into_iter().map(|n| n > 0).collect())
    }

    fn write(&mut self, records: Vec<Record>, replace: bool) -> Result<(), IngestError> {
        let mut expected = 0;
        for record in &records {
            match &record.value {
                Value::String(value) => {
                    // SET replaces any type, expiry included; PXAT sets the absolute expiry in the same command.
                    match record.expire_at_ms {
                        Some(at) => self.command(&[b"SET", &record.key, value, b"PXAT", at.to_string().as_bytes()])?,
                        None => self.command(&[b"SET", &record.key, value])?,
                    }
                    expected += 1;
                }
                Value::Hash(pairs) => {
                    if replace {
                        // HSET merges into an existing hash: the old key goes first.
                        self.command(&[b"DEL", &record.key])?;
                        expected += 1;
                    }
                    let mut args: Vec<&[u8]> = Vec::with_capacity(2 + pairs.len() * 2);
                    args.push(b"HSET");
                    args.push(&record.key);
                    for (field, value) in pairs {
                        args.push(field);
                        args.push(value);
                    }
                    self.command(&args)?;
                    expected += 1;
                    if let Some(at) = record.expire_at_ms {
                        self.command(&[b"PEXPIREAT", &record.key, at.to_string().as_bytes()])?;
                        expected += 1;
                    }
                }
            }
        }
        self.replies(expected)?;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), IngestError> {
        self.writer.flush().map_err(|e| self.io(e))
    }
}
