//! Point-in-time snapshots: a view of every slot as of one instant, read while writers go on (BGSAVE,
//! `velo rdb-dump`, later a replica's full resync).
//!
//! Registering a snapshot takes every slot lock once (ascending order) and installs a `SlotCapture` in
//! each slot: that is the only pause writers see. From then on, the slot's write path, before it changes
//! a key the reader has not read yet, saves the key's *before-image* (its value, kind and expiry as they
//! were, or "absent") into the capture, once per key. A key with no memtable entry then has its state
//! in the bucket pages, which only a checkpoint changes: its image is only a mark ("in the pages"), and
//! the writer reads nothing; the slot's checkpoint reads the marked keys' cells before it rewrites
//! pages, while the reader takes them from the cells it scans anyway. The reader walks each database of
//! each slot in scan-position order, a bounded range at a time under the slot lock: [`Snapshot::read_values`]
//! hands out each key with its value as the scan meets its cell (one read of each page), keys changed
//! since the instant from their images; [`Snapshot::read`] lists keys for a *view* (`Slot::get`
//! answering as of the instant). Keys deleted since the instant are found among the before-images of
//! the range.
//!
//! Split collections keep their elements in parts (ordinary keys of a hidden database), read through the
//! same view when their owner is read; parts of any database the reader does not walk (hidden or
//! filtered) are captured until the reader has finished the slot, which covers the sweeper's deletes and
//! a collection rewritten after the instant.
//!
//! Memory: before-images of keys already read are dropped as the reader passes them, and a slot's
//! capture is dropped when the reader finishes the slot. Values beyond the RAM budget go to a spill file
//! in the data directory, unlinked as soon as it is created (a crash leaves nothing; a leftover from an
//! unlink that never happened is removed at the next open). Keys of captured entries stay in RAM.
//! Dropping the [`Snapshot`] releases everything.
//!
//! FLUSHDB and FLUSHALL during a snapshot abort it (as Redis's FLUSHALL kills a saving child): copying
//! every unread key of a flushed database into the capture would stall the flush for as long as a save.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::ops::Bound;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::buckets::PageId;
use super::envelope::{self, ValueKind};
use super::error::{Error, Result};
use super::key::key_hash;
use super::memtable::MemKeyBytes;
use super::page::{self, CellValueRef, SegmentLocation};
use super::segment;
use super::slot::{position_of, MemKey, MemValue, Slot, POSITION_BITS};
use super::{Entry, KeyInfo};

/// Prefix of spill files in the data directory (`snapshot-<id>.spill`).
const SPILL_PREFIX: &str = "snapshot-";
const SPILL_SUFFIX: &str = ".spill";

/// RAM accounted for one captured key beyond its bytes.
const IMAGE_OVERHEAD: usize = 96;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A slot's lock as every reader takes it: the records another thread's write group holds there go to the
/// OS first, so a snapshot never hands out (to an RDB file or a replica) a write a `kill -9` would then lose.
fn lock_slot(slot: &Mutex<Slot>) -> MutexGuard<'_, Slot> {
    super::lock(slot)
}

/// Where a before-image's envelope is held.
enum Held {
    Ram(Bytes),
    Spilled { offset: u64, len: usize },
}

/// A key as it was at the snapshot's instant.
enum Image {
    Absent,
    Present {
        kind: ValueKind,
        expire_at: u64,
        envelope: Held,
    },
    /// Its state then is the bucket layer's (it had no memtable entry when first changed), which only a
    /// checkpoint changes: read from the pages when needed, or by [`before_checkpoint`] first. A writer
    /// changing a key thus reads nothing (the old value is often cold: a page and a segment to read).
    InPages,
}

/// What every slot's capture of one snapshot shares.
struct Shared {
    id: u64,
    dir: PathBuf,
    /// Why the snapshot can no longer be read (a flush, a read error while capturing).
    failed: Mutex<Option<String>>,
    ram: AtomicUsize,
    ram_limit: usize,
    /// The spill file (already unlinked) and its length.
    spill: Mutex<Option<(File, u64)>>,
    captured_keys: AtomicU64,
    captured_bytes: AtomicU64,
    spilled_bytes: AtomicU64,
    /// Time writers spent saving before-images, nanoseconds.
    capture_nanos: AtomicU64,
}

impl Shared {
    fn fail(&self, why: String) {
        let mut failed = lock(&self.failed);
        if failed.is_none() {
            tracing::warn!(snapshot = self.id, reason = %why, "snapshot aborted");
            *failed = Some(why);
        }
    }

    fn check(&self) -> Result<()> {
        match &*lock(&self.failed) {
            Some(why) => Err(Error::Snapshot(why.clone())),
            None => Ok(()),
        }
    }

    fn hold(&self, envelope: Bytes) -> Result<Held> {
        let len = envelope.len();
        if self.ram.load(Ordering::Relaxed) + len <= self.ram_limit {
            self.ram.fetch_add(len, Ordering::Relaxed);
            return Ok(Held::Ram(envelope));
        }
        let mut spill = lock(&self.spill);
        if spill.is_none() {
            let path = spill_path(&self.dir, self.id);
            let file = File::options()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(|e| Error::io("create", &path, e))?;
            // Unlinked at once: the open handle keeps the space, and a crash leaves no file behind.
            std::fs::remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
            *spill = Some((file, 0));
        }
        let Some((file, end)) = spill.as_mut() else { unreachable!("spill file just created") };
        let offset = *end;
        let path = spill_path(&self.dir, self.id);
        file.write_all_at(&envelope, offset).map_err(|e| Error::io("write", &path, e))?;
        *end += len as u64;
        self.spilled_bytes.fetch_add(len as u64, Ordering::Relaxed);
        Ok(Held::Spilled { offset, len })
    }

    fn load(&self, held: &Held) -> Result<Bytes> {
        match held {
            Held::Ram(bytes) => Ok(bytes.clone()),
            Held::Spilled { offset, len } => {
                let spill = lock(&self.spill);
                let path = spill_path(&self.dir, self.id);
                let Some((file, _)) = spill.as_ref() else {
                    return Err(Error::corrupt(&path, *offset, "snapshot spill file missing"));
                };
                let mut buf = vec![0; *len];
                file.read_exact_at(&mut buf, *offset).map_err(|e| Error::io("read", &path, e))?;
                Ok(Bytes::from(buf))
            }
        }
    }

    fn release(&self, image: &Image, key_len: usize) {
        let mut bytes = key_len + IMAGE_OVERHEAD;
        if let Image::Present { envelope: Held::Ram(envelope), .. } = image {
            bytes += envelope.len();
        }
        let _ = self.ram.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |ram| Some(ram.saturating_sub(bytes)));
    }
}

fn spill_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{SPILL_PREFIX}{}-{id}{SPILL_SUFFIX}", std::process::id()))
}

/// Removes spill files a crashed process left (it unlinks them at creation, so only a crash between
/// creating and unlinking leaves one). Called when the engine opens its directory for writing.
pub(crate) fn remove_leftovers(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(SPILL_PREFIX) && name.ends_with(SPILL_SUFFIX) {
            tracing::info!(path = %entry.path().display(), "removing a snapshot spill file left by a crash");
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// One slot's part of a snapshot: the reader's progress and the before-images of keys changed since.
pub(crate) struct SlotCapture {
    shared: Arc<Shared>,
    /// Databases the reader walks, in its order.
    ranks: Arc<BTreeMap<u16, u32>>,
    /// (rank, scan position) the reader has read up to in this slot.
    progress: (u32, u64),
    images: BTreeMap<MemKey, Image>,
    /// Memtable entries per database when the reader first came to the slot: (entries, of which
    /// writes). Counted once: asking the memtable per database walks all of it each time.
    census: Option<BTreeMap<u16, (u64, u64)>>,
}

impl SlotCapture {
    /// Whether a change to this key must save its before-image first.
    fn wants(&self, db: u16, reversed: u64) -> bool {
        match self.ranks.get(&db) {
            Some(rank) => (*rank, position_of(reversed.reverse_bits())) >= self.progress,
            // Parts (hidden databases) and databases not walked: until the slot is finished.
            None => true,
        }
    }

    fn drop_images(&mut self) {
        for ((_, _, key), image) in std::mem::take(&mut self.images) {
            self.shared.release(&image, key.len());
        }
    }
}

impl Drop for SlotCapture {
    fn drop(&mut self) {
        self.drop_images();
    }
}

/// The write path's hook: called before a key's state changes (`Slot::remember`).
pub(crate) fn capture(slot: &mut Slot, db: u16, key: &[u8]) {
    let reversed = key_hash(db, key).reverse_bits();
    let Some(capture) = slot.snapshot.as_ref() else { return };
    if !capture.wants(db, reversed) {
        return;
    }
    let mem_key: MemKey = (reversed, db, key.into());
    if capture.images.contains_key(&mem_key) {
        return;
    }
    let shared = capture.shared.clone();
    let started = Instant::now();
    let image = if slot.mem_entry(reversed, db, key).is_none() {
        Ok(Image::InPages)
    } else {
        before_image(slot, db, key, reversed).and_then(|image| held_image(&shared, image))
    };
    match image {
        Ok(image) => {
            shared.ram.fetch_add(key.len() + IMAGE_OVERHEAD, Ordering::Relaxed);
            shared.captured_keys.fetch_add(1, Ordering::Relaxed);
            if let Some(capture) = slot.snapshot.as_mut() {
                capture.images.insert(mem_key, image);
            }
            shared.capture_nanos.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        }
        Err(error) => {
            shared.fail(format!("saving a key's state for the snapshot failed: {error}"));
            slot.snapshot = None;
        }
    }
}

/// A state read for a before-image, held (in RAM or spilled) and counted.
fn held_image(shared: &Shared, state: Option<(ValueKind, u64, Bytes)>) -> Result<Image> {
    Ok(match state {
        None => Image::Absent,
        Some((kind, expire_at, envelope)) => {
            shared.captured_bytes.fetch_add(envelope.len() as u64, Ordering::Relaxed);
            Image::Present { kind, expire_at, envelope: shared.hold(envelope)? }
        }
    })
}

/// The checkpoint's hook (`Slot::checkpoint`, before it moves the memtable into the pages): the
/// before-images still in the pages are read now, while the pages hold them. One pass in bucket order.
pub(crate) fn before_checkpoint(slot: &mut Slot) {
    let Some(capture) = slot.snapshot.as_ref() else { return };
    let shared = capture.shared.clone();
    let pending: Vec<MemKey> = capture
        .images
        .iter()
        .filter(|(_, image)| matches!(image, Image::InPages))
        .map(|(key, _)| key.clone())
        .collect();
    if pending.is_empty() {
        return;
    }
    let started = Instant::now();
    for mem_key in pending {
        let (_, db, key) = &mem_key;
        let image = page_state(slot, *db, key).and_then(|state| held_image(&shared, state));
        match image {
            Ok(image) => {
                if let Some(capture) = slot.snapshot.as_mut() {
                    capture.images.insert(mem_key, image);
                }
            }
            Err(error) => {
                shared.fail(format!("saving a key's state for the snapshot failed: {error}"));
                slot.snapshot = None;
                return;
            }
        }
    }
    shared.capture_nanos.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
}

/// A key's state in the bucket layer alone (the memtable ignored): (kind, expire_at, envelope).
fn page_state(slot: &mut Slot, db: u16, key: &[u8]) -> Result<Option<(ValueKind, u64, Bytes)>> {
    let Some(cell) = slot.find_cell(db, key)? else { return Ok(None) };
    let envelope = slot.cell_envelope(&cell)?;
    Ok(Some((cell.kind, cell.expire_at, Bytes::from(envelope))))
}

/// The write path's hook for FLUSHDB and FLUSHALL: the snapshot cannot be completed.
pub(crate) fn abort_on_flush(slot: &mut Slot) {
    if let Some(capture) = slot.snapshot.take() {
        capture.shared.fail("the data set was flushed (FLUSHDB/FLUSHALL) during the snapshot".into());
    }
}

/// The key's stored state right now, ignoring expiry: (kind, expire_at, envelope), or `None` if absent.
fn before_image(slot: &mut Slot, db: u16, key: &[u8], reversed: u64) -> Result<Option<(ValueKind, u64, Bytes)>> {
    let entry = slot.mem_entry(reversed, db, key).map(|entry| (entry.expire_at, entry.value.clone()));
    let retimed = match entry {
        Some((expire_at, MemValue::Set { kind, envelope })) => {
            return Ok(Some((kind, expire_at, slot.load_envelope(&envelope)?)))
        }
        Some((_, MemValue::Delete)) => return Ok(None),
        Some((expire_at, MemValue::Retime)) => Some(expire_at),
        None => None,
    };
    let Some(cell) = slot.find_cell(db, key)? else { return Ok(None) };
    let envelope = slot.cell_envelope(&cell)?;
    Ok(Some((cell.kind, retimed.unwrap_or(cell.expire_at), Bytes::from(envelope))))
}

/// The reader's view of a key (`Slot::get` while `snapshot_view` is set): `Some(state)` when the key
/// has a before-image, `None` when the slot's current state is the snapshot's.
pub(crate) fn view_get(slot: &mut Slot, db: u16, key: &[u8]) -> Result<Option<Option<Entry>>> {
    let Some(capture) = slot.snapshot.as_ref() else { return Ok(None) };
    let mem_key: MemKey = (key_hash(db, key).reverse_bits(), db, key.into());
    match capture.images.get(&mem_key) {
        None => Ok(None),
        Some(Image::Absent) => Ok(Some(None)),
        Some(Image::InPages) => match page_state(slot, db, key)? {
            None => Ok(Some(None)),
            Some((kind, expire_at, envelope)) => Ok(Some(Some(decoded(slot, kind, expire_at, &envelope)?))),
        },
        Some(Image::Present { kind, expire_at, envelope: held }) => {
            let bytes = capture.shared.load(held)?;
            let (decoded_kind, value) = envelope::decode(&bytes, &slot.config.dictionaries).map_err(|e| match e {
                envelope::EnvelopeError::DictMissing(id) => Error::DictMissing(id),
                envelope::EnvelopeError::Malformed(what) => Error::Snapshot(format!("captured value envelope: {what}")),
            })?;
            debug_assert_eq!(decoded_kind, *kind);
            Ok(Some(Some(Entry {
                kind: *kind,
                value,
                expire_at_ms: (*expire_at != 0).then_some(*expire_at),
                string_encoding: envelope::string_encoding(&bytes),
            })))
        }
    }
}

/// As [`view_get`], for `Slot::key_info`.
pub(crate) fn view_key_info(slot: &mut Slot, db: u16, key: &[u8]) -> Result<Option<Option<KeyInfo>>> {
    let Some(capture) = slot.snapshot.as_ref() else { return Ok(None) };
    let mem_key: MemKey = (key_hash(db, key).reverse_bits(), db, key.into());
    let info = |kind: ValueKind, expire_at: u64| KeyInfo { kind, expire_at_ms: (expire_at != 0).then_some(expire_at) };
    Ok(match capture.images.get(&mem_key) {
        None => None,
        Some(Image::Absent) => Some(None),
        Some(Image::Present { kind, expire_at, .. }) => Some(Some(info(*kind, *expire_at))),
        Some(Image::InPages) => Some(slot.find_cell(db, key)?.map(|cell| info(cell.kind, cell.expire_at))),
    })
}

/// Figures of a snapshot so far.
#[derive(Debug, Clone, Default)]
pub struct SnapshotStats {
    /// Keys whose before-image was saved.
    pub captured_keys: u64,
    /// Value bytes of saved before-images (the analogue of Redis's copy-on-write size).
    pub captured_bytes: u64,
    /// Of those, bytes written to the spill file.
    pub spilled_bytes: u64,
    /// RAM the captures hold now (keys and values in memory).
    pub ram_bytes: u64,
    /// Time writers spent saving before-images (reading old values), in microseconds.
    pub capture_us: u64,
}

/// A point-in-time view of an engine. See the module docs. `Send`: it may be read on another thread;
/// it holds the slots, not the engine, so it may outlive a borrow of it. Dropping it releases every
/// capture.
pub struct Snapshot {
    slots: Vec<Arc<Mutex<Slot>>>,
    shared: Arc<Shared>,
    ranks: Arc<BTreeMap<u16, u32>>,
    seqs: Vec<u64>,
    pause: Duration,
    /// [`Snapshot::read_values_within`]'s lists, kept for the next range.
    scratch: Mutex<ReadScratch>,
}

/// A range's entries and its values still to read from segments.
type ReadScratch = (Vec<(Vec<u8>, Entry)>, Vec<Pending>);

impl Snapshot {
    /// Registers a snapshot of `slots` under all their locks. `dbs` are the databases the reader will
    /// walk, in order; `ram_limit` bounds the before-images kept in memory.
    pub(crate) fn register(slots: &[Arc<Mutex<Slot>>], dir: &Path, dbs: &[u16], ram_limit: usize) -> Result<Snapshot> {
        let shared = Arc::new(Shared {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            dir: dir.to_path_buf(),
            failed: Mutex::new(None),
            ram: AtomicUsize::new(0),
            ram_limit,
            spill: Mutex::new(None),
            captured_keys: AtomicU64::new(0),
            captured_bytes: AtomicU64::new(0),
            spilled_bytes: AtomicU64::new(0),
            capture_nanos: AtomicU64::new(0),
        });
        let ranks: Arc<BTreeMap<u16, u32>> =
            Arc::new(dbs.iter().enumerate().map(|(rank, db)| (*db, rank as u32)).collect());
        let mut guards = Vec::with_capacity(slots.len());
        let mut first_locked = None;
        for slot in slots {
            guards.push(lock_slot(slot));
            first_locked.get_or_insert_with(Instant::now);
        }
        if guards.iter().any(|slot| slot.snapshot.is_some()) {
            return Err(Error::Snapshot("another snapshot is being read".into()));
        }
        let mut seqs = Vec::with_capacity(guards.len());
        for slot in guards.iter_mut() {
            seqs.push(slot.next_seq - 1);
            slot.snapshot = Some(SlotCapture {
                shared: shared.clone(),
                ranks: ranks.clone(),
                progress: (0, 0),
                images: BTreeMap::new(),
                census: None,
            });
        }
        drop(guards);
        let pause = first_locked.map_or(Duration::ZERO, |at| at.elapsed());
        Ok(Snapshot { slots: slots.to_vec(), shared, ranks, seqs, pause, scratch: Mutex::default() })
    }

    /// How long writers were held off while the snapshot was registered (first slot lock taken to all
    /// released).
    pub fn pause(&self) -> Duration {
        self.pause
    }

    /// Each slot's last sequence number at the snapshot's instant.
    pub fn sequences(&self) -> &[u64] {
        &self.seqs
    }

    /// Number of slots.
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// Figures so far.
    pub fn stats(&self) -> SnapshotStats {
        SnapshotStats {
            captured_keys: self.shared.captured_keys.load(Ordering::Relaxed),
            captured_bytes: self.shared.captured_bytes.load(Ordering::Relaxed),
            spilled_bytes: self.shared.spilled_bytes.load(Ordering::Relaxed),
            ram_bytes: self.shared.ram.load(Ordering::Relaxed) as u64,
            capture_us: self.shared.capture_nanos.load(Ordering::Relaxed) / 1000,
        }
    }

    /// An error if the snapshot was aborted (a flush, a failed capture).
    pub fn check(&self) -> Result<()> {
        self.shared.check()
    }

    /// Keys of `db` the slot held at the instant, estimated (a size hint, such as RDB's RESIZEDB): its
    /// checkpointed count plus the writes in its memtable when the reader came to it (an overwrite
    /// counts twice, a delete not at all), without the exact count's lookup of every memtable key.
    pub fn size_hint(&self, slot: usize, db: u16) -> Result<u64> {
        let mut guard = lock_slot(&self.slots[slot]);
        let checkpointed = guard.meta.key_counts.get(&db).copied().unwrap_or(0);
        let written = census(&mut guard).get(&db).map_or(0, |counts| counts.1);
        Ok(checkpointed + written)
    }

    /// Reads the keys of database `db` in slot `slot` from scan `position` on, at least `want` of them
    /// (whole buckets at a time), as they were at the snapshot's instant: `visit` is called under the slot
    /// lock for each key that may have existed then, with the slot in *view* mode (`Slot::get` and
    /// `Slot::key_info` answer as of the instant, for the key and for the parts of a split collection);
    /// it finds `None` for a key created since. Returns the position to continue from, or `None` when
    /// the slot's part of `db` is done. Databases must be read in the order given at registration, and
    /// each from position 0 to the end.
    pub fn read(
        &self,
        slot: usize,
        db: u16,
        position: u64,
        want: usize,
        visit: &mut dyn FnMut(&mut Slot, &[u8]),
    ) -> Result<Option<u64>> {
        let (mut guard, rank) = self.enter(slot, db, position)?;
        let mut keys = Vec::new();
        // A database the slot holds no key of, and held none of at the instant (a key deleted since would
        // have a before-image), is done without a scan: a scan for it would walk every bucket page of
        // the slot under its lock looking for a key, once per empty database (15 of the 16 by default).
        let next = if position == 0 && !may_hold(&guard, db) {
            None
        } else {
            guard.scan(Some(db), position, want, &mut keys)?
        };
        let mut keys: Vec<Vec<u8>> = keys.into_iter().map(|(_, key)| key).collect();
        let range_keys = range_images(&guard, db, position, next)?;
        // Keys deleted since the instant are only among the before-images.
        let seen: HashSet<&[u8]> = keys.iter().map(Vec::as_slice).collect();
        let deleted: Vec<Vec<u8>> = range_keys.iter().filter(|key| !seen.contains(key.as_slice())).cloned().collect();
        drop(seen);
        keys.extend(deleted);
        guard.snapshot_view = true;
        for key in &keys {
            visit(&mut guard, key);
        }
        guard.snapshot_view = false;
        self.leave(guard, db, rank, next, range_keys)?;
        Ok(next)
    }

    /// As [`Snapshot::read`], handing out each key with its state at the instant (`visit` is not called
    /// for a key absent then): the bucket pages are read once, each cell's value taken as the scan meets
    /// it, and keys changed since the instant come from their before-images. The slot is in view mode
    /// during `visit`, for the parts of a split collection.
    pub fn read_values(
        &self,
        slot: usize,
        db: u16,
        position: u64,
        want: usize,
        visit: &mut dyn FnMut(&mut Slot, &[u8], Entry),
    ) -> Result<Option<u64>> {
        self.read_values_within(slot, db, position, want, usize::MAX, &mut |slot, key, entry| visit(slot, &key, entry))
    }

    /// As [`Snapshot::read_values`], the range ending (after whole buckets) once it holds `want` keys or
    /// `want_bytes` bytes of keys and stored values, whichever comes first. The values of a range that
    /// lie in chunk segments are read segment by segment, each segment decompressed once for all of its
    /// records in the range: a reader that can hold a large range (an offline dump, with no writer
    /// waiting for the slot lock) reads a bulk-loaded slot with few decompressions per segment. `visit`
    /// is handed each key's bytes to keep.
    pub fn read_values_within(
        &self,
        slot: usize,
        db: u16,
        position: u64,
        want: usize,
        want_bytes: usize,
        visit: &mut dyn FnMut(&mut Slot, Vec<u8>, Entry),
    ) -> Result<Option<u64>> {
        let (mut guard, rank) = self.enter(slot, db, position)?;
        let (mut found, mut pending) = std::mem::take(&mut *lock(&self.scratch));
        found.clear();
        let next = if position == 0 && !may_hold_counted(&mut guard, db) {
            None
        } else {
            scan_values(&mut guard, db, position, want, want_bytes, &mut found, &mut pending)?
        };
        let range_keys = range_images(&guard, db, position, next)?;
        for key in &range_keys {
            let in_pages = guard.snapshot.as_ref().is_some_and(|capture| {
                let mem_key: MemKey = (key_hash(db, key).reverse_bits(), db, key.as_slice().into());
                matches!(capture.images.get(&mem_key), Some(Image::InPages))
            });
            // A key whose state was the pages' came with the scan.
            if in_pages {
                continue;
            }
            if let Some(Some(entry)) = view_get(&mut guard, db, key)? {
                found.push((key.clone(), entry));
            }
        }
        guard.snapshot_view = true;
        for (key, entry) in found.drain(..) {
            visit(&mut guard, key, entry);
        }
        guard.snapshot_view = false;
        self.leave(guard, db, rank, next, range_keys)?;
        *lock(&self.scratch) = (found, pending);
        Ok(next)
    }

    /// Locks a slot for reading `db` from `position`, checking the order of reads; returns the guard and
    /// the database's rank.
    fn enter(&self, slot: usize, db: u16, position: u64) -> Result<(MutexGuard<'_, Slot>, u32)> {
        let rank = *self
            .ranks
            .get(&db)
            .ok_or_else(|| Error::Snapshot(format!("database {db} is not part of the snapshot")))?;
        let guard = lock_slot(&self.slots[slot]);
        self.shared.check()?;
        match guard.snapshot.as_ref() {
            Some(capture) if Arc::ptr_eq(&capture.shared, &self.shared) => {
                if (rank, position) < capture.progress {
                    return Err(Error::Snapshot(format!("slot {slot} database {db} was already read there")));
                }
            }
            _ => return Err(Error::Snapshot(format!("slot {slot} is no longer part of the snapshot"))),
        }
        Ok((guard, rank))
    }

    /// Records that the range up to `next` is read: its before-images are dropped, and the slot's
    /// capture once the slot is done.
    fn leave(
        &self,
        mut guard: MutexGuard<'_, Slot>,
        db: u16,
        rank: u32,
        next: Option<u64>,
        range_keys: Vec<Vec<u8>>,
    ) -> Result<()> {
        let last_rank = self.ranks.len() as u32 - 1;
        let Some(capture) = guard.snapshot.as_mut() else { return Err(Error::Snapshot("capture vanished".into())) };
        capture.progress = match next {
            Some(end) => (rank, end),
            None => (rank + 1, 0),
        };
        for key in range_keys {
            let mem_key: MemKey = (key_hash(db, &key).reverse_bits(), db, key.into());
            if let Some(image) = capture.images.remove(&mem_key) {
                self.shared.release(&image, mem_key.2.len());
            }
        }
        if next.is_none() && rank == last_rank {
            // The slot is done: stop capturing there and free its parts' images.
            guard.snapshot = None;
        }
        drop(guard);
        self.shared.check()
    }
}

/// Keys of `db` with a before-image at scan positions from `position` up to `next` (the end if `None`).
fn range_images(slot: &Slot, db: u16, position: u64, next: Option<u64>) -> Result<Vec<Vec<u8>>> {
    let capture = slot.snapshot.as_ref().ok_or_else(|| Error::Snapshot("capture vanished".into()))?;
    let low: MemKey = (position << (64 - POSITION_BITS), 0u16, MemKeyBytes::new());
    let in_range = |key: &MemKey| next.is_none_or(|end| key.0 < end << (64 - POSITION_BITS));
    Ok(capture
        .images
        .range(low..)
        .take_while(|(key, _)| in_range(key))
        .filter(|(key, _)| key.1 == db)
        .map(|(key, _)| key.2.to_vec())
        .collect())
}

/// Appends to `out` the keys of `db` at scan positions from `position` on that were live at the
/// snapshot's instant and have no before-image, with their values, whole buckets at a time until at
/// least `want` were added; returns the position to continue from, or `None` when the slot is done.
///
/// One pass over each bucket's pages: a cell's value is read from the page image (or the segment it
/// points at) as the cell is met, instead of listing keys and looking each up again. Keys with a
/// before-image in the range are skipped here (the caller serves them from their images); the memtable
/// wins over the pages, as in `Slot::scan`.
///
/// `pending` is scratch space (reused across ranges: a large range's lists cost page faults to grow).
fn scan_values(
    slot: &mut Slot,
    db: u16,
    position: u64,
    want: usize,
    want_bytes: usize,
    out: &mut Vec<(Vec<u8>, Entry)>,
    pending: &mut Vec<Pending>,
) -> Result<Option<u64>> {
    let added_before = out.len();
    pending.clear();
    let next = scan_cells(slot, db, position, want, want_bytes, out, pending)?;
    resolve_pending(slot, db, &mut out[added_before..], pending)?;
    Ok(next)
}

/// A value [`scan_cells`] left to read from its segment: where it is, the committed length of its chunk
/// file, its key's hash (the record is checked against it: reading the key itself, in `out` at a random
/// index, would cost a cache miss) and its index among the range's entries.
pub(crate) struct Pending {
    location: SegmentLocation,
    file_len: u64,
    hash: u64,
    index: usize,
}

/// Reads the values of a range that lie in segments, each segment once: the range's values are sorted by
/// (chunk file, segment, record) and each segment is decompressed once for all of its records in the
/// range. A bulk load packs values into segments in arrival order while the scan goes in bucket order,
/// so reading value by value decompressed each segment about once per record it holds.
fn resolve_pending(slot: &mut Slot, db: u16, out: &mut [(Vec<u8>, Entry)], pending: &mut [Pending]) -> Result<()> {
    pending.sort_unstable_by_key(|p| (p.location.file, p.location.segment_offset, p.location.record_offset));
    let mut scratch = Vec::new();
    let mut at = 0;
    while let Some(first) = pending.get(at) {
        let (file, segment_offset, file_len) = (first.location.file, first.location.segment_offset, first.file_len);
        let end = at
            + pending[at..]
                .iter()
                .take_while(|p| p.location.file == file && p.location.segment_offset == segment_offset)
                .count();
        let cached = slot.chunks.segment_payload_once(file, segment_offset, file_len, &mut scratch)?;
        let payload: &[u8] = match &cached {
            Some(payload) => payload,
            None => &scratch,
        };
        for record in &pending[at..end] {
            let location = record.location;
            let found = segment::record_at(payload, location.record_offset as usize).filter(|found| {
                found.db == db
                    && found.envelope.len() == location.envelope_len as usize
                    && key_hash(db, found.key) == record.hash
            });
            let (key, entry) = &mut out[record.index];
            let Some(found) = found else {
                return Err(Error::corrupt(
                    slot.chunks.chunk_path(file),
                    segment_offset as u64,
                    format!(
                        "record at payload offset {} is not the value of key {:?}",
                        location.record_offset,
                        String::from_utf8_lossy(key)
                    ),
                ));
            };
            *entry = decoded(slot, entry.kind, entry.expire_at_ms.unwrap_or(0), found.envelope)?;
        }
        at = end;
    }
    Ok(())
}

/// [`scan_values`]'s pass over the pages: values inline, in big-value files and in the memtable are
/// read as met; those in segments are placeholders in `out` (kind and expiry set) listed in `pending`.
/// Stops after whole buckets once `want` keys or `want_bytes` key and value bytes were added.
fn scan_cells(
    slot: &mut Slot,
    db: u16,
    mut position: u64,
    want: usize,
    want_bytes: usize,
    out: &mut Vec<(Vec<u8>, Entry)>,
    pending: &mut Vec<Pending>,
) -> Result<Option<u64>> {
    let mut taken = 0usize;
    let now = slot.now();
    let space_end = 1u64 << POSITION_BITS;
    let flushed_below = slot.flush_marker(db);
    let alive = |expire_at: u64| expire_at == 0 || expire_at > now;
    let added_before = out.len();
    while position < space_end {
        let (bucket, range_end) = slot.bucket_range(position);
        let low: MemKey = (position << (64 - POSITION_BITS), 0, MemKeyBytes::new());
        let high: Option<MemKey> =
            (range_end < space_end).then(|| (range_end << (64 - POSITION_BITS), 0, MemKeyBytes::new()));
        let in_range = |key: &MemKey| high.as_ref().is_none_or(|high| key < high);
        // Keys of the range with a before-image: served from it by the caller, except those whose
        // state at the instant is still the pages' (`true`), read here from their cells.
        let imaged: HashMap<Vec<u8>, bool> = match slot.snapshot.as_ref() {
            Some(capture) => capture
                .images
                .range(low.clone()..)
                .take_while(|(key, _)| in_range(key))
                .filter(|(key, _)| key.1 == db)
                .map(|(key, image)| (key.2.to_vec(), matches!(image, Image::InPages)))
                .collect(),
            None => HashMap::new(),
        };
        let mut id = PageId::bucket(bucket);
        for _ in 0..=slot.meta.overflow_pages {
            let bytes = slot.buckets.read_page(id)?;
            let offset = id.number * page::PAGE_SIZE as u64;
            let header = page::decode_header(&bytes[..], slot.buckets.path(id.file), offset)?;
            for cell in page::cell_refs(&bytes[..]) {
                if cell.db != db || cell.seq < flushed_below {
                    continue;
                }
                let hash = key_hash(db, cell.key);
                let cell_position = position_of(hash);
                if cell_position < position || cell_position >= range_end {
                    continue;
                }
                let expire_at = match imaged.get(cell.key) {
                    // Changed since the instant, when this cell was its state: the cell as it is.
                    Some(true) => cell.expire_at,
                    Some(false) => continue,
                    None => {
                        let expire_at = match slot.mem_entry(hash.reverse_bits(), db, cell.key) {
                            None => cell.expire_at,
                            Some(entry) if matches!(entry.value, MemValue::Retime) => entry.expire_at,
                            // A write or a delete since the last checkpoint: the memtable's turn below.
                            Some(_) => continue,
                        };
                        if !alive(expire_at) {
                            continue;
                        }
                        expire_at
                    }
                };
                taken += cell.key.len();
                let entry = match cell.value {
                    CellValueRef::Inline(envelope) => {
                        taken += envelope.len();
                        decoded(slot, cell.kind, expire_at, envelope)?
                    }
                    CellValueRef::Segment(location) => {
                        let file_len =
                            slot.meta.chunk_files.get(&location.file).map(|c| c.committed_len).ok_or_else(|| {
                                Error::corrupt(
                                    slot.chunks.chunk_path(location.file),
                                    0,
                                    "cell points into a chunk file the slot does not have",
                                )
                            })?;
                        taken += location.envelope_len as usize;
                        pending.push(Pending { location, file_len, hash, index: out.len() - added_before });
                        Entry {
                            kind: cell.kind,
                            value: Bytes::new(),
                            expire_at_ms: (expire_at != 0).then_some(expire_at),
                            string_encoding: Default::default(),
                        }
                    }
                    CellValueRef::Big { id, .. } => {
                        let envelope = slot.chunks.read_big(id, db, cell.key)?;
                        taken += envelope.len();
                        decoded(slot, cell.kind, expire_at, &envelope)?
                    }
                };
                out.push((cell.key.to_vec(), entry));
            }
            if header.next_overflow == 0 {
                break;
            }
            id = PageId::overflow(header.next_overflow);
        }
        // Keys written since the last checkpoint.
        let mut written = Vec::new();
        for ((_, key_db, key), entry) in
            slot.memtable.range((Bound::Included(low), high.map_or(Bound::Unbounded, Bound::Excluded)))
        {
            if *key_db != db || !alive(entry.expire_at) || imaged.contains_key(key.as_slice()) {
                continue;
            }
            if let MemValue::Set { kind, envelope } = &entry.value {
                written.push((key.to_vec(), *kind, entry.expire_at, slot.load_envelope(envelope)?));
            }
        }
        for (key, kind, expire_at, envelope) in written {
            taken += key.len() + envelope.len();
            let entry = decoded(slot, kind, expire_at, &envelope)?;
            out.push((key, entry));
        }
        position = range_end;
        if (out.len() - added_before >= want || taken >= want_bytes) && position < space_end {
            return Ok(Some(position));
        }
    }
    Ok(None)
}

/// An envelope decoded into the entry the reader hands out.
fn decoded(slot: &Slot, kind: ValueKind, expire_at: u64, envelope: &[u8]) -> Result<Entry> {
    let (decoded_kind, value) = envelope::decode(envelope, &slot.config.dictionaries).map_err(|e| match e {
        envelope::EnvelopeError::DictMissing(id) => Error::DictMissing(id),
        envelope::EnvelopeError::Malformed(what) => Error::Snapshot(format!("value envelope: {what}")),
    })?;
    debug_assert_eq!(decoded_kind, kind);
    Ok(Entry {
        kind,
        value,
        expire_at_ms: (expire_at != 0).then_some(expire_at),
        string_encoding: envelope::string_encoding(envelope),
    })
}

/// Whether the slot may hold keys of `db` now or may have held some at the snapshot's instant: its
/// checkpointed count, its memtable, and the before-images captured for `db`.
fn may_hold(slot: &Slot, db: u16) -> bool {
    slot.meta.key_counts.get(&db).is_some_and(|count| *count > 0)
        || slot.memtable.has_db(db)
        || slot.snapshot.as_ref().is_some_and(|capture| capture.images.keys().any(|(_, key_db, _)| *key_db == db))
}

/// The slot's memtable census (see `SlotCapture::census`), counted at the first call.
fn census(slot: &mut Slot) -> BTreeMap<u16, (u64, u64)> {
    let Some(capture) = slot.snapshot.as_mut() else { return BTreeMap::new() };
    capture
        .census
        .get_or_insert_with(|| {
            let mut census: BTreeMap<u16, (u64, u64)> = BTreeMap::new();
            for ((_, db, _), entry) in slot.memtable.iter() {
                let counts = census.entry(*db).or_default();
                counts.0 += 1;
                counts.1 += matches!(entry.value, MemValue::Set { .. }) as u64;
            }
            census
        })
        .clone()
}

/// As [`may_hold`], asking the memtable through the census: a key of `db` in the memtable at the
/// instant is either in it at the census or was checkpointed since (then in `key_counts`).
fn may_hold_counted(slot: &mut Slot, db: u16) -> bool {
    slot.meta.key_counts.get(&db).is_some_and(|count| *count > 0)
        || census(slot).contains_key(&db)
        || slot.snapshot.as_ref().is_some_and(|capture| capture.images.keys().any(|(_, key_db, _)| *key_db == db))
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        for slot in &self.slots {
            let mut slot = lock_slot(slot);
            if slot.snapshot.as_ref().is_some_and(|capture| Arc::ptr_eq(&capture.shared, &self.shared)) {
                slot.snapshot = None;
            }
        }
    }
}
