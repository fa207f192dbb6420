//! Transactions: several write batches, in one slot or many, durable all together or not at all.
//!
//! A caller opens a [`Transaction`] on its thread (EXEC, a multi-key command, a script). While it is open,
//! every WAL record the thread appends carries the transaction's id (WAL op bit 6), and each slot it wrote
//! remembers it as open. Closing it writes the commit: a `Commit` record in the slot's own WAL when one
//! slot was written, or a record in the data directory's transaction log (`txlog`) naming every slot and
//! the sequence range and record count it wrote there. Recovery applies a transaction's records only if
//! its commit is there and, for a logged commit, every slot still holds all of its records (or has
//! checkpointed past them). docs/recovery.md §"Transactions" has the crash reasoning; docs/format.md
//! §"Transaction log" the bytes.
//!
//! Costs: a single-key command opens no transaction and pays nothing (one thread-local read per append).
//! A slot with an open transaction defers its checkpoint and is skipped by the background part sweeper
//! and active expiry, so nothing of an uncommitted transaction reaches the layers below.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use super::error::{Error, Result};
use super::format::{self, ByteReader, PutLe, FILE_HEADER_LEN};
use super::io::{FileHandle, FileSystem};
use super::meta;
use super::wal::{WalOp, WalRecord, WalSync};
use super::{FsyncCell, FsyncPolicy};

/// File name of the transaction log, at the root of the data directory.
pub const TXLOG_FILE: &str = "txlog";
/// Magic of the transaction log.
pub const MAGIC_TXLOG: &[u8; 4] = b"VTXL";
/// Past this size the log is rewritten with only the commits recovery may still need.
const COMPACT_BYTES: u64 = 4 << 20;
/// Bytes of a commit record before its participants: length, CRC, txid, synced length, participant count.
const COMMIT_FIXED_LEN: usize = 4 + 4 + 8 + 8 + 4;
/// Bytes of one participant: slot, first and last sequence, record count.
const PARTICIPANT_LEN: usize = 4 + 8 + 8 + 4;
/// Most participants a commit may name (a data directory has at most 1024 slots).
const MAX_PARTICIPANTS: usize = 1024;

/// What one slot holds of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Participant {
    /// The slot.
    pub slot: u32,
    /// Sequence of its first record of the transaction.
    pub first_seq: u64,
    /// Sequence of its last record of the transaction.
    pub last_seq: u64,
    /// How many records of the transaction it holds.
    pub records: u32,
}

/// A commit in the transaction log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitRecord {
    /// The transaction.
    pub txid: u64,
    /// Bytes of the log known durable when this record was written: recovery tells a torn tail (never
    /// synced) from damage to synced records with it, as the WAL's `synced_offset`.
    pub synced_len: u64,
    /// Every slot it wrote. A record with none only carries a transaction-id floor.
    pub participants: Vec<Participant>,
}

/// Appends the encoding of a commit record (docs/format.md §"Transaction log").
pub fn encode_commit(commit: &CommitRecord, out: &mut Vec<u8>) {
    let start = out.len();
    let body_len = COMMIT_FIXED_LEN - 8 + commit.participants.len() * PARTICIPANT_LEN;
    out.put_u32(body_len as u32);
    out.put_u32(0);
    out.put_u64(commit.txid);
    out.put_u64(commit.synced_len);
    out.put_u32(commit.participants.len() as u32);
    for participant in &commit.participants {
        out.put_u32(participant.slot);
        out.put_u64(participant.first_seq);
        out.put_u64(participant.last_seq);
        out.put_u32(participant.records);
    }
    let crc = format::crc32(&out[start + 8..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Decodes the commit record at the start of `bytes`; `None` if it is short, damaged or malformed.
pub fn decode_commit(bytes: &[u8]) -> Option<(CommitRecord, usize)> {
    let mut reader = ByteReader::new(bytes);
    let body_len = reader.u32()? as usize;
    let crc = reader.u32()?;
    if !(COMMIT_FIXED_LEN - 8..=COMMIT_FIXED_LEN - 8 + MAX_PARTICIPANTS * PARTICIPANT_LEN).contains(&body_len) {
        return None;
    }
    let body = reader.take(body_len)?;
    if format::crc32(body) != crc {
        return None;
    }
    let mut body = ByteReader::new(body);
    let txid = body.u64()?;
    let synced_len = body.u64()?;
    let count = body.u32()? as usize;
    if count * PARTICIPANT_LEN != body.remaining() {
        return None;
    }
    let mut participants = Vec::with_capacity(count);
    for _ in 0..count {
        participants.push(Participant {
            slot: body.u32()?,
            first_seq: body.u64()?,
            last_seq: body.u64()?,
            records: body.u32()?,
        });
    }
    Some((CommitRecord { txid, synced_len, participants }, 8 + body_len))
}

/// Decodes a whole transaction log. A bad record is a torn tail (never synced, so never acknowledged as
/// durable) unless a later valid record says the log was synced past it: then it is damage, an error naming
/// the offset.
pub fn decode_log(bytes: &[u8], path: &Path) -> Result<(Vec<CommitRecord>, u64)> {
    format::check_file_header(bytes, MAGIC_TXLOG, path)?;
    let mut commits = Vec::new();
    let mut offset = FILE_HEADER_LEN;
    while offset < bytes.len() {
        match decode_commit(&bytes[offset..]) {
            Some((commit, len)) => {
                commits.push(commit);
                offset += len;
            }
            None => {
                let synced_past = (offset + 1..bytes.len()).any(|start| {
                    decode_commit(&bytes[start..]).is_some_and(|(commit, _)| commit.synced_len > offset as u64)
                });
                if synced_past {
                    return Err(Error::corrupt(path, offset as u64, "damaged commit record before valid ones"));
                }
                tracing::warn!(
                    path = %path.display(),
                    offset,
                    bytes = bytes.len() - offset,
                    "transaction log ends in a torn commit record; dropping it"
                );
                break;
            }
        }
    }
    Ok((commits, offset as u64))
}

/// The open transaction log file.
struct TxLog {
    path: PathBuf,
    file: Option<Arc<dyn FileHandle>>,
    end: u64,
    synced_end: u64,
    /// Size past which the log is next rewritten: twice what the last rewrite kept (at least
    /// [`COMPACT_BYTES`]), so that a log whose commits are all still needed is not rewritten per commit.
    compact_at: u64,
    /// Commits written since the log was last rewritten (what a rewrite filters).
    commits: Vec<CommitRecord>,
}

/// Transaction state shared by the slots of one engine.
pub struct TxRegistry {
    fs: Arc<dyn FileSystem>,
    fsync: Arc<FsyncCell>,
    read_only: bool,
    next_txid: AtomicU64,
    /// Highest transaction id whose records and commit are known durable.
    durable_through: AtomicU64,
    /// Highest transaction id committed.
    committed_through: AtomicU64,
    log: Mutex<TxLog>,
    wal_syncs: OnceLock<Vec<Arc<WalSync>>>,
    /// Each slot's checkpoint sequence, as of its last checkpoint.
    checkpoint_seqs: Vec<AtomicU64>,
}

impl std::fmt::Debug for TxRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxRegistry").field("next_txid", &self.next_txid).finish()
    }
}

/// What recovery decided about the transactions found in the WALs.
#[derive(Debug, Default)]
pub struct Decisions {
    /// Transactions committed through the log, with all their records present.
    logged: HashSet<u64>,
    /// (slot, txid) pairs committed by a `Commit` record in that slot's own WAL.
    local: HashSet<(usize, u64)>,
    /// Transactions whose records were found but which did not commit (for the log).
    pub dropped: usize,
}

impl Decisions {
    /// Whether a record of `txid` in `slot` is to be applied.
    pub fn applies(&self, slot: usize, txid: u64) -> bool {
        txid == 0 || self.logged.contains(&txid) || self.local.contains(&(slot, txid))
    }
}

impl TxRegistry {
    /// Reads the data directory's transaction log (an empty registry if there is none yet).
    pub(crate) fn open(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        slot_count: usize,
        fsync: Arc<FsyncCell>,
        read_only: bool,
    ) -> Result<(TxRegistry, Vec<CommitRecord>)> {
        let path = dir.join(TXLOG_FILE);
        let commits =
            if fs.exists(&path) { decode_log(&meta::read_whole(fs.as_ref(), &path)?, &path)?.0 } else { vec![] };
        let floor = commits.iter().map(|c| c.txid).max().unwrap_or(0);
        let registry = TxRegistry {
            fs,
            fsync,
            read_only,
            next_txid: AtomicU64::new(floor + 1),
            durable_through: AtomicU64::new(floor),
            committed_through: AtomicU64::new(floor),
            log: Mutex::new(TxLog {
                path,
                file: None,
                end: 0,
                synced_end: 0,
                compact_at: COMPACT_BYTES,
                commits: Vec::new(),
            }),
            wal_syncs: OnceLock::new(),
            checkpoint_seqs: (0..slot_count).map(|_| AtomicU64::new(0)).collect(),
        };
        Ok((registry, commits))
    }

    /// Decides, from the log's commits and every slot's replayed records, which transactions apply; then
    /// (unless read-only) rewrites the log with the commits that recovery may still need, so that a
    /// transaction dropped now can never be applied by a later recovery. `replays[slot]` holds the
    /// slot's records newer than its checkpoint; `checkpoint_seqs[slot]` its checkpoint sequence.
    pub fn recover(
        &self,
        commits: Vec<CommitRecord>,
        replays: &[&[(u64, u32, WalRecord)]],
        checkpoint_seqs: &[u64],
    ) -> Result<Decisions> {
        let mut counts: HashMap<(usize, u64), u32> = HashMap::new();
        let mut decisions = Decisions::default();
        let mut highest = self.next_txid.load(Ordering::Relaxed).saturating_sub(1);
        let mut found = HashSet::new();
        for (slot, records) in replays.iter().enumerate() {
            for (_, _, record) in records.iter() {
                if record.txid == 0 || record.seq <= checkpoint_seqs[slot] {
                    continue;
                }
                highest = highest.max(record.txid);
                if record.op == WalOp::Commit {
                    decisions.local.insert((slot, record.txid));
                } else {
                    *counts.entry((slot, record.txid)).or_default() += 1;
                    found.insert((slot, record.txid));
                }
            }
        }
        let mut kept = Vec::new();
        for commit in commits {
            if commit.participants.is_empty() {
                continue;
            }
            let complete = commit.participants.iter().all(|p| {
                let slot = p.slot as usize;
                slot < checkpoint_seqs.len()
                    && (p.last_seq <= checkpoint_seqs[slot]
                        || counts.get(&(slot, commit.txid)).copied().unwrap_or(0) == p.records)
            });
            if !complete {
                tracing::warn!(txid = commit.txid, "a logged transaction lost records in a crash; dropping all of it");
                continue;
            }
            decisions.logged.insert(commit.txid);
            let needed = commit.participants.iter().any(|p| p.last_seq > checkpoint_seqs[p.slot as usize]);
            if needed {
                kept.push(commit);
            }
        }
        let mut dropped = HashSet::new();
        for (slot, txid) in &found {
            if !decisions.applies(*slot, *txid) {
                dropped.insert(*txid);
            }
        }
        decisions.dropped = dropped.len();
        self.next_txid.store(highest + 1, Ordering::Relaxed);
        // What was read back may still sit in the OS cache only (after a kill -9): the first checkpoint
        // that makes recovered transaction records permanent fsyncs every WAL first.
        self.durable_through.store(0, Ordering::Relaxed);
        self.committed_through.store(highest, Ordering::Relaxed);
        for (seq, slot_seq) in self.checkpoint_seqs.iter().zip(checkpoint_seqs) {
            seq.store(*slot_seq, Ordering::Relaxed);
        }
        let mut log = self.lock_log();
        if self.read_only {
            return Ok(decisions);
        }
        // The floor record keeps transaction ids increasing even when every commit has been filtered out.
        kept.insert(0, CommitRecord { txid: highest, synced_len: 0, participants: Vec::new() });
        self.rewrite(&mut log, kept)?;
        Ok(decisions)
    }

    fn lock_log(&self) -> std::sync::MutexGuard<'_, TxLog> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the log with `commits` (temporary file, fsync, rename) and reopens it for appending.
    fn rewrite(&self, log: &mut TxLog, commits: Vec<CommitRecord>) -> Result<()> {
        let mut bytes = format::file_header(MAGIC_TXLOG, 0).to_vec();
        for commit in &commits {
            // The whole new file is synced before it replaces the old one.
            let commit = CommitRecord { synced_len: 0, ..commit.clone() };
            encode_commit(&commit, &mut bytes);
        }
        meta::write_atomically(self.fs.as_ref(), &log.path, &bytes)?;
        let file = self.fs.open(&log.path, false).map_err(|e| Error::io("open", &log.path, e))?;
        log.end = bytes.len() as u64;
        log.synced_end = log.end;
        log.compact_at = COMPACT_BYTES.max(2 * log.end);
        log.file = Some(file);
        log.commits = commits;
        Ok(())
    }

    /// Gives the registry every slot's WAL durability handle (after the slots are open).
    pub fn set_wal_syncs(&self, syncs: Vec<Arc<WalSync>>) {
        let _ = self.wal_syncs.set(syncs);
    }

    /// Records a slot's checkpoint: its transactions' commits up to `seq` are no longer needed by it.
    pub fn note_checkpoint(&self, slot: usize, seq: u64) {
        if let Some(entry) = self.checkpoint_seqs.get(slot) {
            entry.store(seq, Ordering::Relaxed);
        }
    }

    /// True if every transaction up to `txid` is durable (its records and its commit).
    pub fn is_durable(&self, txid: u64) -> bool {
        self.durable_through.load(Ordering::Acquire) >= txid
    }

    /// Makes every committed transaction durable: fsyncs every slot's WAL, then the log. A slot calls this
    /// before a checkpoint would make records of a not-yet-durable transaction permanent below the WAL, so
    /// that a power loss can never leave part of a transaction in one slot's layers while another slot's
    /// WAL lost the rest.
    pub fn make_durable(&self) -> Result<()> {
        let target = self.committed_through.load(Ordering::Acquire);
        let mut first_error = None;
        if let Some(syncs) = self.wal_syncs.get() {
            for sync in syncs {
                // One poisoned slot must not keep the others' writes from becoming durable.
                if let Err(error) = sync.sync_now() {
                    first_error.get_or_insert(error);
                }
            }
        }
        if let Some(error) = first_error {
            return Err(error);
        }
        let mut log = self.lock_log();
        if let Some(file) = &log.file {
            file.sync().map_err(|e| Error::io("fsync", &log.path, e))?;
            log.synced_end = log.end;
        }
        self.durable_through.fetch_max(target, Ordering::AcqRel);
        Ok(())
    }

    fn new_txid(&self) -> u64 {
        self.next_txid.fetch_add(1, Ordering::Relaxed)
    }

    /// Writes the commit of a transaction that wrote several slots. Under `fsync always`, the slots'
    /// records are made durable first and the commit after, so an acknowledged transaction survives whole.
    fn log_commit(&self, mut commit: CommitRecord) -> Result<()> {
        let always = self.fsync.get() == FsyncPolicy::Always;
        if always {
            if let Some(syncs) = self.wal_syncs.get() {
                for participant in &commit.participants {
                    if let Some(sync) = syncs.get(participant.slot as usize) {
                        sync.wait_durable(participant.last_seq)?;
                    }
                }
            }
        }
        let mut log = self.lock_log();
        commit.synced_len = log.synced_end;
        let mut bytes = Vec::with_capacity(COMMIT_FIXED_LEN + commit.participants.len() * PARTICIPANT_LEN);
        encode_commit(&commit, &mut bytes);
        let Some(file) = log.file.clone() else {
            return Err(Error::Config("the transaction log is not open for writing".into()));
        };
        if let Err(err) = file.write_all_at(&bytes, log.end) {
            let _ = file.set_len(log.end);
            return Err(Error::io("write", &log.path, err));
        }
        log.end += bytes.len() as u64;
        if always {
            file.sync().map_err(|e| Error::io("fsync", &log.path, e))?;
            log.synced_end = log.end;
            self.durable_through.fetch_max(commit.txid, Ordering::AcqRel);
        }
        self.committed_through.fetch_max(commit.txid, Ordering::AcqRel);
        log.commits.push(commit);
        if log.end > log.compact_at {
            self.compact(&mut log)?;
        }
        Ok(())
    }

    /// Rewrites the log without the commits every participant of which has checkpointed past.
    fn compact(&self, log: &mut TxLog) -> Result<()> {
        // Everything in the log must be durable before it is rewritten without the old file.
        if let Some(syncs) = self.wal_syncs.get() {
            for sync in syncs {
                sync.sync_now()?;
            }
        }
        let floor = self.committed_through.load(Ordering::Acquire);
        let mut kept = vec![CommitRecord { txid: floor, synced_len: 0, participants: Vec::new() }];
        kept.extend(log.commits.drain(..).filter(|commit| {
            commit.participants.iter().any(|p| {
                self.checkpoint_seqs.get(p.slot as usize).is_some_and(|seq| p.last_seq > seq.load(Ordering::Relaxed))
            })
        }));
        self.rewrite(log, kept)?;
        self.durable_through.fetch_max(floor, Ordering::AcqRel);
        Ok(())
    }
}

/// The calling thread's open transaction.
struct Active {
    registry: Arc<TxRegistry>,
    txid: u64,
    depth: u32,
    participants: BTreeMap<usize, Participant>,
}

thread_local! {
    static CURRENT: RefCell<Option<Active>> = const { RefCell::new(None) };
}

/// The id of the calling thread's open transaction of `registry`'s engine, or 0.
pub(crate) fn current_txid(registry: &Arc<TxRegistry>) -> u64 {
    CURRENT.with(|current| match &*current.borrow() {
        Some(active) if Arc::ptr_eq(&active.registry, registry) => active.txid,
        _ => 0,
    })
}

/// True if the calling thread has a transaction open (its durability wait happens at the commit).
pub(crate) fn in_transaction() -> bool {
    CURRENT.with(|current| current.borrow().is_some())
}

/// Records that `slot` appended `records` records of the open transaction, `first..=last`.
pub(crate) fn note_appended(slot: usize, first: u64, last: u64, records: u32) {
    CURRENT.with(|current| {
        if let Some(active) = current.borrow_mut().as_mut() {
            let participant = active.participants.entry(slot).or_insert(Participant {
                slot: slot as u32,
                first_seq: first,
                last_seq: last,
                records: 0,
            });
            participant.last_seq = last;
            participant.records += records;
        }
    });
}

/// An open transaction on the calling thread: see the module docs. Nested opens join the outer one.
/// Commit with [`Transaction::commit`]; dropping it commits too (a transaction is never rolled back: as in
/// Redis, what ran stays, and the commit only decides what survives a crash).
pub struct Transaction<'e> {
    engine: &'e super::Engine,
    done: bool,
}

impl<'e> Transaction<'e> {
    pub(crate) fn begin(engine: &'e super::Engine, registry: &Arc<TxRegistry>) -> Transaction<'e> {
        CURRENT.with(|current| {
            let mut current = current.borrow_mut();
            match current.as_mut() {
                Some(active) => active.depth += 1,
                None => {
                    *current = Some(Active {
                        registry: registry.clone(),
                        txid: registry.new_txid(),
                        depth: 1,
                        participants: BTreeMap::new(),
                    })
                }
            }
        });
        Transaction { engine, done: false }
    }

    /// Commits: writes the commit record and, under `fsync always`, waits until the whole transaction is
    /// durable. An inner (nested) transaction only returns to its outer one.
    pub fn commit(mut self) -> Result<()> {
        self.done = true;
        self.finish()
    }

    /// Ends the (outermost) transaction without a commit record: recovery drops every record it wrote,
    /// in every slot. Those slots are poisoned (writes refused) until the directory is reopened, because
    /// their memtables hold records that must never be checkpointed. For loads that fail midway.
    pub fn abandon(mut self) {
        self.done = true;
        let abandoned = CURRENT.with(|current| current.borrow_mut().take());
        if let Some(active) = abandoned {
            for participant in active.participants.values() {
                self.engine.lock_slot(participant.slot as usize).poison_transaction();
            }
        }
    }

    fn finish(&mut self) -> Result<()> {
        let finished = CURRENT.with(|current| {
            let mut current = current.borrow_mut();
            let active = current.as_mut()?;
            active.depth -= 1;
            if active.depth > 0 {
                return None;
            }
            current.take()
        });
        let Some(active) = finished else { return Ok(()) };
        let participants: Vec<Participant> = active.participants.into_values().collect();
        match participants.as_slice() {
            [] => Ok(()),
            [only] => {
                let mut guard = self.engine.lock_slot(only.slot as usize);
                let result = guard.commit_transaction(active.txid);
                let durable = guard.commit();
                result.and(durable)
            }
            _ => {
                // The log's commit must never reach the OS before a record it counts: write what this
                // thread's write group holds of the transaction first (`engine::group`).
                let held_written = participants.iter().try_for_each(|participant| {
                    let mut guard = self.engine.lock_slot(participant.slot as usize);
                    if guard.wal.holds_for_this_thread() {
                        guard.wal.write_held()?;
                    }
                    Ok(())
                });
                let commit = CommitRecord { txid: active.txid, synced_len: 0, participants: participants.clone() };
                let logged = held_written.and_then(|()| active.registry.log_commit(commit));
                for participant in &participants {
                    let mut guard = self.engine.lock_slot(participant.slot as usize);
                    if logged.is_ok() {
                        guard.end_transaction(active.txid);
                    } else {
                        guard.poison_transaction();
                    }
                }
                logged
            }
        }
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if !self.done {
            if let Err(error) = self.finish() {
                tracing::error!(%error, "committing a transaction failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_records_round_trip_and_reject_damage() {
        let commit = CommitRecord {
            txid: 42,
            synced_len: 16,
            participants: vec![
                Participant { slot: 1, first_seq: 10, last_seq: 12, records: 3 },
                Participant { slot: 5, first_seq: 7, last_seq: 7, records: 1 },
            ],
        };
        let mut bytes = Vec::new();
        encode_commit(&commit, &mut bytes);
        assert_eq!(bytes.len(), COMMIT_FIXED_LEN + 2 * PARTICIPANT_LEN);
        assert_eq!(decode_commit(&bytes), Some((commit.clone(), bytes.len())));
        for cut in 0..bytes.len() {
            assert_eq!(decode_commit(&bytes[..cut]), None, "cut at {cut}");
        }
        for flip in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[flip] ^= 0x10;
            assert_ne!(decode_commit(&bad).map(|c| c.0), Some(commit.clone()), "flip at {flip}");
        }
    }

    #[test]
    fn a_torn_tail_is_dropped_but_damage_before_valid_records_is_an_error() {
        let mut file = format::file_header(MAGIC_TXLOG, 0).to_vec();
        for txid in 1..=3 {
            encode_commit(
                &CommitRecord {
                    txid,
                    synced_len: 16 + (txid - 1) * 60,
                    participants: vec![Participant { slot: 0, first_seq: txid, last_seq: txid, records: 1 }],
                },
                &mut file,
            );
        }
        let whole = file.len();
        let (commits, _) = decode_log(&file[..whole - 5], Path::new("txlog")).expect("torn tail tolerated");
        assert_eq!(commits.len(), 2);
        let mut bad = file.clone();
        bad[FILE_HEADER_LEN + 10] ^= 1;
        assert!(decode_log(&bad, Path::new("txlog")).is_err());
    }
}
