//! The write-ahead log: every write is appended here (with a CRC per record) before it is acknowledged,
//! and stays authoritative until a checkpoint has made the layers below durable. Group commit for
//! `fsync always`, replay with torn-tail truncation, poisoning after a failed fsync. Layout: docs/format.md
//! §"WAL".
//!
//! A slot has two WAL files and appends to one of them. A checkpoint starts by *rotating*: appends switch
//! to the other, empty file, and the next fsync syncs the old file before the new one (so no write in the
//! new file is acknowledged as durable before every earlier one is; a crash that loses the end of the old
//! file drops the new file's records at recovery, see [`WalWriter::open`]); the checkpoint then covers
//! exactly the records of the file it froze, which is emptied once the checkpoint's metadata is durable.
//! Writers go on appending to the new file meanwhile.
//! Recovery replays both files, older first (docs/recovery.md). A record's *position* is its offset in
//! its file, with [`SECOND_FILE_BIT`] set for the second file.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use super::error::{Error, Result};
use super::format::{self, ByteReader, PutLe, FILE_HEADER_LEN};
use super::io::{FileHandle, FileSystem};

/// File name of a slot's first WAL file.
pub const WAL_FILE: &str = "wal.log";
/// File name of a slot's second WAL file (see the module docs).
pub const WAL_FILE_2: &str = "wal-1.log";
/// Both WAL files, by index.
pub const WAL_FILES: [&str; 2] = [WAL_FILE, WAL_FILE_2];
/// Bit of a record position that says the record is in the second file.
pub const SECOND_FILE_BIT: u64 = 1 << 63;
/// Format version of the WAL files' headers: 2 since a slot has two WAL files. Version 1 (one file) is read,
/// and its header is rewritten as version 2 on a writable open, so that an older build refuses the directory
/// instead of ignoring the second file.
pub const WAL_VERSION: u8 = 2;

/// The file index and offset of a record position.
pub fn split_position(position: u64) -> (usize, u64) {
    ((position >> 63) as usize, position & !SECOND_FILE_BIT)
}

/// The position of `offset` in WAL file `file` (0 or 1).
pub fn position(file: usize, offset: u64) -> u64 {
    if file == 1 {
        offset | SECOND_FILE_BIT
    } else {
        offset
    }
}

/// Bytes before a record's body: length and CRC.
pub const RECORD_PREFIX_LEN: usize = 8;
/// Fixed part of a record body before the key.
pub const RECORD_FIXED_LEN: usize = 8 + 8 + 1 + 2 + 8 + 4 + 4;
/// Largest record body accepted on replay (a value is at most 512 MiB in Redis).
pub const MAX_RECORD_LEN: usize = (512 << 20) + (64 << 10);

/// What a WAL record does. Stored on disk, never renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum WalOp {
    /// Set a key to an envelope with an expiry.
    Set = 1,
    /// Delete a key.
    Delete = 2,
    /// Change a key's expiry (0 = persist), keeping its value.
    Expire = 3,
    /// Empty one database.
    FlushDb = 4,
    /// Empty every database.
    FlushAll = 5,
    /// Commit of a transaction whose records are all in this WAL (docs/recovery.md §"Transactions").
    Commit = 6,
}

impl TryFrom<u8> for WalOp {
    type Error = u8;
    fn try_from(tag: u8) -> std::result::Result<Self, u8> {
        Ok(match tag {
            1 => WalOp::Set,
            2 => WalOp::Delete,
            3 => WalOp::Expire,
            4 => WalOp::FlushDb,
            5 => WalOp::FlushAll,
            6 => WalOp::Commit,
            other => return Err(other),
        })
    }
}

/// One decoded WAL record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalRecord {
    /// The slot's sequence number of this change.
    pub seq: u64,
    /// WAL bytes known durable (fsynced) when this record was appended: recovery uses it to tell a torn
    /// tail (never synced) from corruption of synced records.
    pub synced_offset: u64,
    /// What it does.
    pub op: WalOp,
    /// Database number.
    pub db: u16,
    /// Absolute expiry in Unix ms, 0 for none.
    pub expire_at: u64,
    /// The key (empty for flushes).
    pub key: Vec<u8>,
    /// The value envelope (Set only).
    pub envelope: Vec<u8>,
    /// More records of the same atomic batch follow this one (docs/format.md §"WAL", op bit 7).
    pub continues: bool,
    /// The transaction the record belongs to (op bit 6), 0 for none: replay applies it only if the
    /// transaction committed (docs/recovery.md §"Transactions").
    pub txid: u64,
}

/// Bit 7 of the op byte: the record is not the last of its batch. Replay applies a batch only whole.
pub const BATCH_CONTINUES: u8 = 0x80;
/// Bit 6 of the op byte: the record belongs to a transaction, whose id follows the envelope.
pub const IN_TRANSACTION: u8 = 0x40;
/// Bits of the op byte that hold the op itself.
const OP_MASK: u8 = 0x3f;

/// Encoded length of a record with this key and envelope (outside any transaction).
pub fn record_len(key_len: usize, envelope_len: usize) -> usize {
    RECORD_PREFIX_LEN + RECORD_FIXED_LEN + key_len + envelope_len
}

/// Encoded length of a record with this key and envelope, belonging to transaction `txid` (0: none).
pub fn record_len_in(key_len: usize, envelope_len: usize, txid: u64) -> usize {
    record_len(key_len, envelope_len) + if txid != 0 { 8 } else { 0 }
}

/// Appends the encoding of one record, a batch of its own, to `out`.
#[allow(clippy::too_many_arguments)]
pub fn encode_record(
    seq: u64,
    synced_offset: u64,
    op: WalOp,
    db: u16,
    expire_at: u64,
    key: &[u8],
    envelope: &[u8],
    out: &mut Vec<u8>,
) {
    encode_batch_record(seq, synced_offset, op, false, db, expire_at, key, envelope, 0, out)
}

/// Appends the encoding of one record to `out`; `continues` when more records of its batch follow;
/// `txid` the transaction it belongs to (0: none).
#[allow(clippy::too_many_arguments)]
pub fn encode_batch_record(
    seq: u64,
    synced_offset: u64,
    op: WalOp,
    continues: bool,
    db: u16,
    expire_at: u64,
    key: &[u8],
    envelope: &[u8],
    txid: u64,
    out: &mut Vec<u8>,
) {
    let body_len = record_len_in(key.len(), envelope.len(), txid) - RECORD_PREFIX_LEN;
    let start = out.len();
    out.put_u32(body_len as u32);
    out.put_u32(0);
    out.put_u64(seq);
    out.put_u64(synced_offset);
    let flags = if continues { BATCH_CONTINUES } else { 0 } | if txid != 0 { IN_TRANSACTION } else { 0 };
    out.push(op as u8 | flags);
    out.put_u16(db);
    out.put_u64(expire_at);
    out.put_u32(key.len() as u32);
    out.put_u32(envelope.len() as u32);
    out.extend_from_slice(key);
    out.extend_from_slice(envelope);
    if txid != 0 {
        out.put_u64(txid);
    }
    let crc = format::crc32(&out[start + RECORD_PREFIX_LEN..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordError {
    /// The bytes end before the record does.
    Truncated,
    /// The CRC does not match.
    Checksum {
        /// Stored CRC.
        expected: u32,
        /// Computed CRC.
        actual: u32,
    },
    /// The body is inconsistent.
    Malformed(String),
}

/// Decodes the record at the start of `bytes`; returns it and its encoded length.
pub fn decode_record(bytes: &[u8]) -> std::result::Result<(WalRecord, usize), RecordError> {
    let mut reader = ByteReader::new(bytes);
    let body_len = reader.u32().ok_or(RecordError::Truncated)? as usize;
    let expected = reader.u32().ok_or(RecordError::Truncated)?;
    if !(RECORD_FIXED_LEN..=MAX_RECORD_LEN).contains(&body_len) {
        return Err(RecordError::Malformed(format!("record length {body_len} out of range")));
    }
    let body = reader.take(body_len).ok_or(RecordError::Truncated)?;
    let actual = format::crc32(body);
    if expected != actual {
        return Err(RecordError::Checksum { expected, actual });
    }
    let mut body_reader = ByteReader::new(body);
    let malformed = || RecordError::Malformed("record body truncated".into());
    let seq = body_reader.u64().ok_or_else(malformed)?;
    let synced_offset = body_reader.u64().ok_or_else(malformed)?;
    let op_tag = body_reader.u8().ok_or_else(malformed)?;
    let continues = op_tag & BATCH_CONTINUES != 0;
    let transactional = op_tag & IN_TRANSACTION != 0;
    let op = WalOp::try_from(op_tag & OP_MASK).map_err(|tag| RecordError::Malformed(format!("unknown op {tag}")))?;
    let db = body_reader.u16().ok_or_else(malformed)?;
    let expire_at = body_reader.u64().ok_or_else(malformed)?;
    let key_len = body_reader.u32().ok_or_else(malformed)? as usize;
    let envelope_len = body_reader.u32().ok_or_else(malformed)? as usize;
    let txid_len = if transactional { 8 } else { 0 };
    if key_len.checked_add(envelope_len).and_then(|n| n.checked_add(txid_len)) != Some(body_reader.remaining()) {
        return Err(RecordError::Malformed("key and value lengths disagree with the record length".into()));
    }
    let key = body_reader.take(key_len).ok_or_else(malformed)?.to_vec();
    let envelope = body_reader.take(envelope_len).ok_or_else(malformed)?.to_vec();
    let txid = if transactional { body_reader.u64().ok_or_else(malformed)? } else { 0 };
    if transactional && txid == 0 {
        return Err(RecordError::Malformed("transaction id 0".into()));
    }
    if op == WalOp::Commit && (!transactional || key_len != 0 || envelope_len != 0) {
        return Err(RecordError::Malformed("commit record without a transaction id, or with a key".into()));
    }
    Ok((
        WalRecord { seq, synced_offset, op, db, expire_at, key, envelope, continues, txid },
        RECORD_PREFIX_LEN + body_len,
    ))
}

/// What replaying a WAL found.
#[derive(Debug, Default)]
pub struct Replay {
    /// The valid records, in order, with the file offset and encoded length of each.
    pub records: Vec<(u64, u32, WalRecord)>,
    /// Length of the valid prefix of the file (header plus good records).
    pub valid_len: u64,
    /// Where a torn tail started and why, if there was one.
    pub torn_tail: Option<(u64, String)>,
}

/// The first valid record found at any byte offset of `bytes` that claims the WAL was durable past
/// `bad_offset` when it was written: proof that the bad record at `bad_offset` had been synced.
fn synced_record_after(bytes: &[u8], bad_offset: u64) -> bool {
    (0..bytes.len())
        .any(|start| matches!(decode_record(&bytes[start..]), Ok((record, _)) if record.synced_offset > bad_offset))
}

/// Replays a WAL file's bytes. A bad record is a torn tail (reported, to be truncated, with everything
/// after it) unless a later valid record says the WAL had been fsynced past it: then synced data is
/// damaged, and that is an error naming the offset. Writes after an unsynced hole were never synced
/// either (an fsync covers everything before it), so dropping them loses nothing acknowledged as durable.
pub fn replay(bytes: &[u8], path: &Path) -> Result<Replay> {
    format::check_file_header_versions(bytes, format::MAGIC_WAL, &[1, WAL_VERSION], path)?;
    let mut replay = Replay { valid_len: FILE_HEADER_LEN as u64, ..Default::default() };
    let mut offset = FILE_HEADER_LEN;
    let mut last_seq = 0u64;
    // Records of the batch being read; they join `replay.records` only once its last record is read.
    let mut batch: Vec<(u64, u32, WalRecord)> = Vec::new();
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        match decode_record(rest) {
            Ok((record, len)) => {
                if record.seq <= last_seq {
                    return Err(Error::corrupt(
                        path,
                        offset as u64,
                        format!("sequence {} does not follow {last_seq}", record.seq),
                    ));
                }
                last_seq = record.seq;
                let continues = record.continues;
                batch.push((offset as u64, len as u32, record));
                offset += len;
                if !continues {
                    replay.records.append(&mut batch);
                    replay.valid_len = offset as u64;
                }
            }
            Err(err) => {
                let reason = match &err {
                    RecordError::Truncated => "record truncated".to_string(),
                    RecordError::Checksum { expected, actual } => {
                        format!("checksum mismatch (stored {expected:#010x}, computed {actual:#010x})")
                    }
                    RecordError::Malformed(what) => what.clone(),
                };
                if !synced_record_after(rest.get(1..).unwrap_or_default(), offset as u64) {
                    // An unfinished batch before the bad record goes with it: batches apply whole or not at all.
                    let reason = if batch.is_empty() {
                        reason
                    } else {
                        format!("{reason} at offset {offset}, inside a batch of {} earlier records", batch.len())
                    };
                    replay.torn_tail = Some((replay.valid_len, reason));
                    return Ok(replay);
                }
                return Err(match err {
                    RecordError::Checksum { expected, actual } => {
                        Error::ChecksumMismatch { file: path.to_path_buf(), offset: offset as u64, expected, actual }
                    }
                    _ => Error::corrupt(path, offset as u64, reason),
                });
            }
        }
    }
    if !batch.is_empty() {
        // The file ends inside a batch: its last record was never written, so none of it counts.
        replay.torn_tail =
            Some((replay.valid_len, format!("batch of {} records without its last record", batch.len())));
    }
    Ok(replay)
}

#[derive(Default)]
struct SyncState {
    written: u64,
    written_offset: u64,
    synced: u64,
    synced_offset: u64,
    syncing: bool,
    failed: bool,
    /// The file appends go to (swapped by a rotation) and its path.
    file: Option<Arc<dyn FileHandle>>,
    path: PathBuf,
    /// The file a rotation left with writes not yet synced: the next sync syncs it first.
    pending_old: Option<Arc<dyn FileHandle>>,
}

/// Durability bookkeeping of one slot's WAL, shared between writers, waiters and the `everysec` thread.
/// Concurrent waiters share one fsync: the first becomes the leader and syncs everything written so far.
/// Sequence numbers run on across a rotation; offsets are those of the current file.
pub struct WalSync {
    slot: usize,
    state: Mutex<SyncState>,
    synced: Condvar,
}

impl WalSync {
    fn new(slot: usize, file: Arc<dyn FileHandle>, path: PathBuf) -> WalSync {
        WalSync {
            slot,
            state: Mutex::new(SyncState { file: Some(file), path, ..Default::default() }),
            synced: Condvar::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SyncState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that everything up to `seq`, ending at file offset `end`, has been written (not yet synced).
    pub fn note_written(&self, seq: u64, end: u64) {
        let mut state = self.state();
        state.written = state.written.max(seq);
        state.written_offset = end;
    }

    /// Records that everything up to `seq`, ending at `end`, is durable (replay or a checkpoint's reset).
    pub fn note_synced(&self, seq: u64, end: u64) {
        let mut state = self.state();
        state.written = state.written.max(seq);
        state.synced = state.synced.max(seq);
        state.written_offset = end;
        state.synced_offset = end;
    }

    /// Switches to another (empty, durable) file: waits for a sync still running (its offsets are the old
    /// file's), then points later syncs at `file`, the old file first if it holds unsynced writes.
    fn switch_file(&self, file: Arc<dyn FileHandle>, path: PathBuf, end: u64) {
        let mut state = self.state();
        while state.syncing {
            state = self.synced.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        if state.synced < state.written {
            state.pending_old = state.file.take();
        }
        state.file = Some(file);
        state.path = path;
        state.written_offset = end;
        state.synced_offset = end;
    }

    /// File offset up to which the WAL is known durable.
    pub fn synced_offset(&self) -> u64 {
        self.state().synced_offset
    }

    /// True after a failed fsync.
    pub fn is_poisoned(&self) -> bool {
        self.state().failed
    }

    /// Marks the WAL as failed (after a write error that could not be undone).
    pub fn poison(&self) {
        self.state().failed = true;
        self.synced.notify_all();
    }

    fn poisoned_error(&self) -> Error {
        Error::Poisoned { slot: self.slot, op: "WAL fsync" }
    }

    /// Blocks until everything up to `seq` is durable, syncing as the leader if nobody else is.
    pub fn wait_durable(&self, seq: u64) -> Result<()> {
        let mut state = self.state();
        loop {
            if state.failed {
                return Err(self.poisoned_error());
            }
            if state.synced >= seq {
                return Ok(());
            }
            if !state.syncing {
                state = self.lead_sync(state)?;
                continue;
            }
            state = self.synced.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn lead_sync<'a>(
        &'a self,
        mut state: std::sync::MutexGuard<'a, SyncState>,
    ) -> Result<std::sync::MutexGuard<'a, SyncState>> {
        state.syncing = true;
        let target = state.written;
        let target_offset = state.written_offset;
        let file = state.file.clone();
        let old = state.pending_old.clone();
        drop(state);
        let outcome = match &old {
            Some(old) => old.sync(),
            None => Ok(()),
        }
        .and_then(|()| match &file {
            Some(file) => file.sync(),
            None => Ok(()),
        });
        let mut state = self.state();
        state.syncing = false;
        match outcome {
            Ok(()) => {
                if old.is_some() {
                    state.pending_old = None;
                }
                state.synced = state.synced.max(target);
                state.synced_offset = state.synced_offset.max(target_offset);
            }
            Err(err) => {
                // After a failed fsync the kernel may have dropped the dirty pages: nothing written since
                // the last good sync can be trusted, so refuse writes until a restart replays the WAL.
                tracing::error!(path = %state.path.display(), error = %err, "WAL fsync failed; slot poisoned");
                state.failed = true;
            }
        }
        self.synced.notify_all();
        if state.failed {
            return Err(self.poisoned_error());
        }
        Ok(state)
    }

    /// Syncs now if anything written is not yet durable (the `everysec` tick).
    pub fn sync_now(&self) -> Result<()> {
        let written = self.state().written;
        self.wait_durable(written)
    }
}

/// Reads envelopes back from a slot's WAL files without the writer (a checkpoint preparing off the slot
/// lock reads the file it froze).
#[derive(Clone)]
pub struct WalReader {
    files: [(Arc<dyn FileHandle>, PathBuf); 2],
}

impl WalReader {
    /// Reads back the envelope of the Set record at `position` (`len` bytes), verifying its CRC.
    pub fn read_envelope(&self, position: u64, len: u32) -> Result<Vec<u8>> {
        let (index, offset) = split_position(position);
        let (file, path) = &self.files[index];
        let mut bytes = vec![0u8; len as usize];
        file.read_exact_at(&mut bytes, offset).map_err(|e| Error::io("read", path, e))?;
        envelope_of(&bytes, path, offset)
    }

    /// Empties WAL file `index` (0 or 1) to its header, fsynced (a checkpoint's tail, for the file it froze).
    pub fn truncate(&self, index: usize) -> Result<()> {
        let (file, path) = &self.files[index];
        file.set_len(FILE_HEADER_LEN as u64).map_err(|e| Error::io("truncate", path, e))?;
        file.sync().map_err(|e| Error::io("fsync", path, e))
    }
}

/// The envelope of the encoded Set record `bytes` (read at `offset` of `path`), CRC verified.
fn envelope_of(bytes: &[u8], path: &Path, offset: u64) -> Result<Vec<u8>> {
    match decode_record(bytes) {
        Ok((record, _)) if record.op == WalOp::Set => Ok(record.envelope),
        Ok(_) => Err(Error::corrupt(path, offset, "expected a Set record")),
        Err(RecordError::Checksum { expected, actual }) => {
            Err(Error::ChecksumMismatch { file: path.to_path_buf(), offset, expected, actual })
        }
        Err(_) => Err(Error::corrupt(path, offset, "record unreadable")),
    }
}

/// The appending side of a slot's WAL (two files, see the module docs).
pub struct WalWriter {
    paths: [PathBuf; 2],
    files: [Arc<dyn FileHandle>; 2],
    /// Index of the file appends go to.
    current: usize,
    /// Length of the other file: more than a header while it holds the records of a checkpoint that is
    /// not yet durable (or, after a crash, records recovery replayed).
    previous_len: u64,
    /// The end of the log, records held for a group included: the offset the next record gets.
    end: u64,
    /// The end of what is in the file (`end` less the held records).
    written: u64,
    sync: Arc<WalSync>,
    buffer: Vec<u8>,
    /// Records of an open write group (see `engine::group`), not yet in the file.
    held: Vec<u8>,
    /// The last sequence number in `held`.
    held_last_seq: u64,
    /// The thread whose group holds them.
    held_by: Option<std::thread::ThreadId>,
}

/// One WAL file read at open.
struct OpenedFile {
    file: Arc<dyn FileHandle>,
    replay: Replay,
    /// Offset appends would continue from (the valid prefix; a torn tail is cut).
    end: u64,
}

impl WalWriter {
    /// Opens (creating if needed) the WAL files of a slot directory and replays them, older first. A torn
    /// tail is truncated (unless `read_only`) and logged. The returned records carry positions (see the
    /// module docs). When the older file still holds records above `checkpoint_seq` but does not end
    /// where the newer one begins (its end was lost: never synced), the newer file's records follow a hole
    /// and are dropped: none of them was acknowledged as durable, since every sync of the newer file
    /// syncs the older one first.
    pub fn open(
        fs: &dyn FileSystem,
        dir: &Path,
        slot: usize,
        read_only: bool,
        checkpoint_seq: u64,
    ) -> Result<(WalWriter, Replay)> {
        let paths = [dir.join(WAL_FILE), dir.join(WAL_FILE_2)];
        if read_only && !fs.exists(&paths[0]) {
            return Err(Error::Config(format!("{} is missing", paths[0].display())));
        }
        let mut opened = Vec::with_capacity(2);
        for path in &paths {
            opened.push(Self::open_file(fs, dir, path, read_only)?);
        }
        let first_seq = |file: &OpenedFile| file.replay.records.first().map(|(_, _, r)| r.seq);
        let last_seq = |file: &OpenedFile| file.replay.records.last().map_or(0, |(_, _, r)| r.seq);
        // The file with records is the current one; with both holding records, the newer one is.
        let current = match (first_seq(&opened[0]), first_seq(&opened[1])) {
            (Some(a), Some(b)) => usize::from(b > a),
            (None, Some(_)) => 1,
            _ => 0,
        };
        let previous = 1 - current;
        if !opened[previous].replay.records.is_empty() {
            let (older, newer) = (&opened[previous], &opened[current]);
            let hole = match first_seq(newer) {
                Some(first) => older.replay.torn_tail.is_some() || first != last_seq(older) + 1,
                None => false,
            };
            if hole && last_seq(older) > checkpoint_seq {
                tracing::warn!(
                    path = %paths[current].display(),
                    records = newer.replay.records.len(),
                    "WAL records after a hole at the end of {} dropped (never synced)",
                    paths[previous].display()
                );
                let dropped = &mut opened[current];
                dropped.replay = Replay { valid_len: FILE_HEADER_LEN as u64, ..Default::default() };
                dropped.end = FILE_HEADER_LEN as u64;
                if !read_only {
                    let file = &dropped.file;
                    file.set_len(FILE_HEADER_LEN as u64).map_err(|e| Error::io("truncate", &paths[current], e))?;
                    file.sync().map_err(|e| Error::io("fsync", &paths[current], e))?;
                }
            }
        }
        if !opened[previous].replay.records.is_empty() {
            let (older, newer) = (&opened[previous], &opened[current]);
            if first_seq(newer).is_some_and(|first| first <= last_seq(older)) {
                return Err(Error::corrupt(
                    &paths[current],
                    FILE_HEADER_LEN as u64,
                    format!("sequences overlap those of {}", paths[previous].display()),
                ));
            }
        }
        let mut replay = Replay::default();
        for index in [previous, current] {
            let part = std::mem::take(&mut opened[index].replay);
            replay
                .records
                .extend(part.records.into_iter().map(|(offset, len, record)| (position(index, offset), len, record)));
            if index == current {
                replay.valid_len = part.valid_len;
                replay.torn_tail = part.torn_tail;
            }
        }
        let end = opened[current].end;
        let previous_len = opened[previous].end;
        let sync = Arc::new(WalSync::new(slot, opened[current].file.clone(), paths[current].clone()));
        let last = replay.records.last().map_or(0, |(_, _, record)| record.seq);
        sync.note_synced(last, end);
        let files = [opened[0].file.clone(), opened[1].file.clone()];
        let writer = WalWriter {
            paths,
            files,
            current,
            previous_len,
            end,
            written: end,
            sync,
            buffer: Vec::new(),
            held: Vec::new(),
            held_last_seq: 0,
            held_by: None,
        };
        Ok((writer, replay))
    }

    /// Opens one WAL file: creates it (header only) if missing or empty, replays it, cuts a torn tail, and
    /// rewrites a version-1 header as version 2 (see [`WAL_VERSION`]).
    fn open_file(fs: &dyn FileSystem, dir: &Path, path: &Path, read_only: bool) -> Result<OpenedFile> {
        let header_only =
            || OpenedFile { file: Arc::new(NoFile) as Arc<dyn FileHandle>, replay: Replay::default(), end: 0 };
        let existed = fs.exists(path);
        if read_only && !existed {
            // A directory written before the second file existed.
            let mut opened = header_only();
            opened.end = FILE_HEADER_LEN as u64;
            opened.replay.valid_len = opened.end;
            return Ok(opened);
        }
        let file = if read_only {
            fs.open_read(path).map_err(|e| Error::io("open", path, e))?
        } else {
            fs.open(path, true).map_err(|e| Error::io("open", path, e))?
        };
        let len = file.len().map_err(|e| Error::io("stat", path, e))?;
        if !existed || len == 0 {
            if !read_only {
                file.write_all_at(&format::file_header_version(format::MAGIC_WAL, WAL_VERSION, 0), 0)
                    .map_err(|e| Error::io("write", path, e))?;
                file.sync().map_err(|e| Error::io("fsync", path, e))?;
                fs.sync_dir(dir).map_err(|e| Error::io("fsync", dir, e))?;
            }
            let end = FILE_HEADER_LEN as u64;
            return Ok(OpenedFile { file, replay: Replay { valid_len: end, ..Default::default() }, end });
        }
        let mut bytes = vec![0u8; len as usize];
        file.read_exact_at(&mut bytes, 0).map_err(|e| Error::io("read", path, e))?;
        let replay = replay(&bytes, path)?;
        if !read_only && bytes[4] != WAL_VERSION {
            file.write_all_at(&format::file_header_version(format::MAGIC_WAL, WAL_VERSION, bytes[5]), 0)
                .map_err(|e| Error::io("write", path, e))?;
            file.sync().map_err(|e| Error::io("fsync", path, e))?;
        }
        if let Some((offset, reason)) = &replay.torn_tail {
            tracing::warn!(path = %path.display(), offset, reason = %reason, dropped_bytes = len - offset, "WAL torn tail truncated");
            if !read_only {
                file.set_len(*offset).map_err(|e| Error::io("truncate", path, e))?;
                file.sync().map_err(|e| Error::io("fsync", path, e))?;
            }
        }
        let end = replay.torn_tail.as_ref().map_or(replay.valid_len, |(offset, _)| *offset);
        Ok(OpenedFile { file, replay, end })
    }

    /// The shared durability state.
    pub fn sync_handle(&self) -> Arc<WalSync> {
        self.sync.clone()
    }

    /// Bytes in the current file.
    pub fn len(&self) -> u64 {
        self.end
    }

    /// Bytes in both files.
    pub fn total_len(&self) -> u64 {
        self.end + self.previous_len
    }

    /// The position the next record gets (see the module docs).
    pub fn position(&self) -> u64 {
        position(self.current, self.end)
    }

    /// True if the current file holds no records.
    pub fn is_empty(&self) -> bool {
        self.end <= FILE_HEADER_LEN as u64
    }

    /// True if the other file holds no records: the WAL can rotate.
    pub fn previous_is_empty(&self) -> bool {
        self.previous_len <= FILE_HEADER_LEN as u64
    }

    /// True if `position` is in the other file (the one a rotation froze).
    pub fn in_previous(&self, position: u64) -> bool {
        split_position(position).0 != self.current
    }

    /// A reader of both files.
    pub fn reader(&self) -> WalReader {
        WalReader {
            files: [(self.files[0].clone(), self.paths[0].clone()), (self.files[1].clone(), self.paths[1].clone())],
        }
    }

    /// Starts a checkpoint's cut: writes the held records and switches appends to the other file, which
    /// must be empty (the next sync syncs the old file first). The frozen file's records are then exactly those up to the last
    /// sequence written.
    pub fn rotate(&mut self) -> Result<()> {
        if !self.previous_is_empty() {
            return Err(Error::Config("WAL rotation while the other file still holds records".into()));
        }
        self.write_held()?;
        self.previous_len = self.end;
        self.current = 1 - self.current;
        self.end = FILE_HEADER_LEN as u64;
        self.written = self.end;
        self.sync.switch_file(self.files[self.current].clone(), self.paths[self.current].clone(), self.end);
        Ok(())
    }

    /// Empties the other file once the checkpoint of its records is durable.
    pub fn truncate_previous(&mut self) -> Result<()> {
        self.reader().truncate(self.previous_index())?;
        self.previous_emptied();
        Ok(())
    }

    /// Index of the other file (the one a rotation froze).
    pub fn previous_index(&self) -> usize {
        1 - self.current
    }

    /// Notes that the other file was emptied (through a [`WalReader`], off the slot lock).
    pub fn previous_emptied(&mut self) {
        self.previous_len = FILE_HEADER_LEN as u64;
    }

    /// A reusable buffer to encode records into before [`WalWriter::append_buffer`], and the synced
    /// offset to record in them.
    pub fn buffer(&mut self) -> (&mut Vec<u8>, u64) {
        self.buffer.clear();
        (&mut self.buffer, self.sync.synced_offset())
    }

    fn path(&self) -> &Path {
        &self.paths[self.current]
    }

    fn file(&self) -> &Arc<dyn FileHandle> {
        &self.files[self.current]
    }

    /// Writes the buffered records (ending with sequence `last_seq`) to the file, after any held ones. On
    /// failure the file is cut back to its previous end, so a failed write leaves no partial record; if even
    /// that fails the WAL is poisoned.
    pub fn append_buffer(&mut self, last_seq: u64) -> Result<()> {
        if self.sync.is_poisoned() {
            return Err(Error::Poisoned { slot: self.sync.slot, op: "WAL fsync" });
        }
        self.write_held()?;
        if let Err(err) = self.file().write_all_at(&self.buffer, self.end) {
            if self.file().set_len(self.end).is_err() {
                self.sync.poison();
            }
            return Err(Error::io("write", self.path(), err));
        }
        self.end += self.buffer.len() as u64;
        self.written = self.end;
        self.sync.note_written(last_seq, self.end);
        Ok(())
    }

    /// Keeps the buffered records (ending with `last_seq`) for the calling thread's write group: they get
    /// their offsets now and reach the file with [`WalWriter::write_held`] (see `engine::group`).
    pub fn hold_buffer(&mut self, last_seq: u64) -> Result<()> {
        if self.sync.is_poisoned() {
            return Err(Error::Poisoned { slot: self.sync.slot, op: "WAL fsync" });
        }
        if self.held_by.is_some_and(|thread| thread != super::group::this_thread()) {
            self.write_held()?;
        }
        self.held.extend_from_slice(&self.buffer);
        self.end += self.buffer.len() as u64;
        self.held_last_seq = last_seq;
        self.held_by = Some(super::group::this_thread());
        Ok(())
    }

    /// Writes the held records, in one write. The memtable already holds them, so a failure poisons the
    /// WAL (writes refused until a restart replays what the file has): the commands that made them were
    /// never acknowledged, as the server sends their replies only after this succeeds.
    pub fn write_held(&mut self) -> Result<()> {
        if self.held.is_empty() {
            return Ok(());
        }
        let outcome = self.file().write_all_at(&self.held, self.written);
        if self.holds_for_this_thread() {
            super::group::note_written(self.held.len());
        }
        self.held.clear();
        self.held_by = None;
        if let Err(err) = outcome {
            let _ = self.file().set_len(self.written);
            self.end = self.written;
            self.sync.poison();
            tracing::error!(path = %self.path().display(), error = %err, "grouped WAL write failed; slot poisoned");
            return Err(Error::io("write", self.path(), err));
        }
        self.written = self.end;
        self.sync.note_written(self.held_last_seq, self.end);
        Ok(())
    }

    /// Writes records another thread's open group holds, before this thread uses the slot: nobody but that
    /// group's own commands may see a write that is not yet in the OS.
    pub fn write_foreign_held(&mut self) {
        if self.held_by.is_some_and(|thread| thread != super::group::this_thread()) {
            // A failure poisons the WAL; the holder's group close reports it to its client.
            let _ = self.write_held();
        }
    }

    /// True if this thread's group holds records here that are not in the file.
    pub fn holds_for_this_thread(&self) -> bool {
        self.held_by == Some(super::group::this_thread())
    }

    /// Reads back the envelope of the Set record at `position` (`len` bytes), verifying its CRC.
    pub fn read_envelope(&self, position: u64, len: u32) -> Result<Vec<u8>> {
        let (index, offset) = split_position(position);
        if index != self.current {
            return self.reader().read_envelope(position, len);
        }
        let mut bytes = vec![0u8; len as usize];
        if offset >= self.written {
            // Held for a write group: not in the file yet.
            let start = (offset - self.written) as usize;
            let held = self.held.get(start..start + bytes.len());
            bytes.copy_from_slice(held.ok_or_else(|| Error::corrupt(self.path(), offset, "past the end of the WAL"))?);
        } else {
            self.file().read_exact_at(&mut bytes, offset).map_err(|e| Error::io("read", self.path(), e))?;
        }
        envelope_of(&bytes, self.path(), offset)
    }

    /// Empties both files after a checkpoint made everything in them durable below (`checkpoint_seq`).
    pub fn reset(&mut self, checkpoint_seq: u64) -> Result<()> {
        // Held records are at or below `checkpoint_seq` (the checkpoint covered the whole log); they are
        // written anyway, as the cheapest way to keep `end`, `written` and the sync state in one story.
        self.write_held()?;
        if !self.previous_is_empty() {
            self.truncate_previous()?;
        }
        self.file().set_len(FILE_HEADER_LEN as u64).map_err(|e| Error::io("truncate", self.path(), e))?;
        self.file().sync().map_err(|e| Error::io("fsync", self.path(), e))?;
        self.end = FILE_HEADER_LEN as u64;
        self.written = self.end;
        self.sync.note_synced(checkpoint_seq, self.end);
        Ok(())
    }
}

/// The second WAL file of a directory written before it existed, opened read-only: empty.
struct NoFile;

impl FileHandle for NoFile {
    fn read_exact_at(&self, _buf: &mut [u8], _offset: u64) -> std::io::Result<()> {
        Err(std::io::ErrorKind::UnexpectedEof.into())
    }
    fn write_all_at(&self, _buf: &[u8], _offset: u64) -> std::io::Result<()> {
        Err(std::io::ErrorKind::PermissionDenied.into())
    }
    fn len(&self) -> std::io::Result<u64> {
        Ok(0)
    }
    fn set_len(&self, _len: u64) -> std::io::Result<()> {
        Err(std::io::ErrorKind::PermissionDenied.into())
    }
    fn sync(&self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record_bytes() -> Vec<u8> {
        let mut out = Vec::new();
        encode_record(7, 16, WalOp::Set, 1, 0, b"k", b"\x00\x00v", &mut out);
        out
    }

    #[test]
    fn golden_bytes() {
        // docs/format.md §"WAL" shows this record.
        let bytes = record_bytes();
        let body: &[u8] = b"\x07\x00\x00\x00\x00\x00\x00\x00\x10\x00\x00\x00\x00\x00\x00\x00\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x03\x00\x00\x00k\x00\x00v";
        assert_eq!(&bytes[0..4], b"\x27\x00\x00\x00");
        assert_eq!(&bytes[0..4], &(body.len() as u32).to_le_bytes());
        assert_eq!(&bytes[4..8], &format::crc32(body).to_le_bytes());
        assert_eq!(&bytes[8..], body);
        let (record, len) = decode_record(&bytes).expect("decodes");
        assert_eq!(len, bytes.len());
        assert_eq!(
            record,
            WalRecord {
                seq: 7,
                synced_offset: 16,
                op: WalOp::Set,
                db: 1,
                expire_at: 0,
                key: b"k".to_vec(),
                envelope: b"\x00\x00v".to_vec(),
                continues: false,
                txid: 0,
            }
        );
    }

    #[test]
    fn every_truncation_and_flip_is_rejected() {
        let bytes = record_bytes();
        for len in 0..bytes.len() {
            assert!(decode_record(&bytes[..len]).is_err(), "truncation to {len}");
        }
        for index in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[index] ^= 0x10;
            assert!(decode_record(&bad).is_err(), "flip at {index}");
        }
    }

    #[test]
    fn replay_truncates_torn_tail_but_rejects_middle_corruption() {
        let mut file = format::file_header(format::MAGIC_WAL, 0).to_vec();
        for seq in 1..=3 {
            // Each record claims everything before it was synced (as under fsync always).
            let synced = file.len() as u64;
            encode_record(seq, synced, WalOp::Delete, 0, 0, format!("key{seq}").as_bytes(), b"", &mut file);
        }
        let full = file.len();
        let replayed = replay(&file, Path::new("wal")).expect("clean");
        assert_eq!(replayed.records.len(), 3);
        assert_eq!(replayed.records[0].0, FILE_HEADER_LEN as u64);
        assert!(replayed.torn_tail.is_none());
        // Torn: the last record cut short.
        let torn = replay(&file[..full - 3], Path::new("wal")).expect("torn tail tolerated");
        assert_eq!(torn.records.len(), 2);
        assert!(torn.torn_tail.is_some());
        // Middle corruption: flip a byte of the first record's body.
        let mut bad = file.clone();
        bad[FILE_HEADER_LEN + 12] ^= 1;
        let err = replay(&bad, Path::new("wal")).expect_err("middle corruption");
        assert!(err.to_string().contains("offset 16"), "{err}");
        // An unsynced hole (zeros) followed by records that never saw a sync past it: a torn tail.
        let mut unsynced = format::file_header(format::MAGIC_WAL, 0).to_vec();
        encode_record(1, 16, WalOp::Delete, 0, 0, b"a", b"", &mut unsynced);
        let hole_at = unsynced.len();
        unsynced.extend_from_slice(&[0; 40]);
        encode_record(3, 16, WalOp::Delete, 0, 0, b"c", b"", &mut unsynced);
        let replayed = replay(&unsynced, Path::new("wal")).expect("hole tolerated");
        assert_eq!(replayed.records.len(), 1);
        assert_eq!(replayed.torn_tail.map(|(offset, _)| offset), Some(hole_at as u64));
    }

    #[test]
    fn a_batch_replays_whole_or_not_at_all() {
        let mut file = format::file_header(format::MAGIC_WAL, 0).to_vec();
        encode_record(1, 16, WalOp::Delete, 0, 0, b"alone", b"", &mut file);
        let batch_start = file.len();
        for seq in 2..=4 {
            let key = format!("key{seq}");
            encode_batch_record(seq, 16, WalOp::Delete, seq < 4, 0, 0, key.as_bytes(), b"", 0, &mut file);
        }
        let whole = replay(&file, Path::new("wal")).expect("clean");
        assert_eq!(whole.records.len(), 4);
        assert!(whole.records[1].2.continues && !whole.records[3].2.continues);
        // Every cut inside the batch, even one ending exactly between its records, drops all of it.
        for cut in batch_start + 1..file.len() {
            let torn = replay(&file[..cut], Path::new("wal")).expect("torn tail tolerated");
            assert_eq!(torn.records.len(), 1, "cut at {cut}");
            assert_eq!(torn.valid_len, batch_start as u64);
            assert_eq!(torn.torn_tail.map(|(offset, _)| offset), Some(batch_start as u64), "cut at {cut}");
        }
    }

    #[test]
    fn transaction_records_carry_their_id() {
        let mut out = Vec::new();
        encode_batch_record(9, 16, WalOp::Set, true, 2, 0, b"k", b"\x00\x00v", 77, &mut out);
        encode_batch_record(10, 16, WalOp::Commit, false, 0, 0, b"", b"", 77, &mut out);
        let (set, len) = decode_record(&out).expect("decodes");
        assert_eq!((set.txid, set.continues, set.op, set.key.as_slice()), (77, true, WalOp::Set, &b"k"[..]));
        assert_eq!(len, record_len_in(1, 3, 77));
        let (commit, _) = decode_record(&out[len..]).expect("decodes");
        assert_eq!((commit.op, commit.txid), (WalOp::Commit, 77));
        // A commit record must name its transaction.
        let mut bare = Vec::new();
        encode_record(11, 16, WalOp::Commit, 0, 0, b"", b"", &mut bare);
        assert!(matches!(decode_record(&bare), Err(RecordError::Malformed(_))));
    }
}
