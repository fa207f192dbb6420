//! Trained compression dictionaries: their files in the data directory, the in-memory map the read and
//! write paths use, and compression of one value with a dictionary.
//!
//! Each dictionary is one file `dict-NNNNNNNN.vdct` at the top of the data directory (layout:
//! docs/format.md §"Dictionary file"), written atomically (temporary file, fsync, rename, directory fsync)
//! *before* any value can use it, so a crash never leaves a value naming a dictionary that is not on disk.
//! Ids start at 2 (1 means plain zstd), grow, and are never reused (the highest id is always its family's
//! active dictionary, so it is never removed). A dictionary that is no longer its family's active one is
//! *retired*: dictionary compaction (`engine::recode`) re-encodes the values that name it with their
//! family's current dictionary, commits them, and only then removes its file, so every stored value can
//! always be decoded.
//!
//! Dictionaries are prepared once (zstd `EncoderDictionary`/`DecoderDictionary`) when loaded or
//! installed; a value is then compressed or decompressed with a per-thread context and no table set-up.
//! A family's newest dictionary is its active one: new writes of that family use it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use zstd::dict::{DecoderDictionary, EncoderDictionary};

use super::envelope::{self, CompressionPolicy, ValueKind};
use super::error::{Error, Result};
use super::family::FamilyRules;
use super::format::{self, ByteReader, PutLe, FILE_HEADER_LEN};
use super::io::FileSystem;
use super::train::Sampler;

/// Magic of a dictionary file.
pub const MAGIC_DICTIONARY: &[u8; 4] = b"VDCT";
/// The first id a trained dictionary gets (1 is plain zstd).
pub const FIRST_DICT_ID: u32 = 2;
/// Largest dictionary accepted (zstd dictionaries are a few KiB to a few hundred KiB).
pub const MAX_DICT_LEN: usize = 4 << 20;
/// Values shorter than this are stored as they are even when their family has a dictionary.
pub const DICT_MIN_VALUE_LEN: usize = 16;
/// Values longer than this use plain zstd or segment compression instead (a dictionary helps little).
pub const DICT_MAX_VALUE_LEN: usize = 64 << 10;
/// The first four payload bytes of a split collection's header (docs/format.md §"Split collections";
/// `elements::SPLIT_MARKER` is this constant).
pub const SPLIT_HEADER_MARKER: [u8; 4] = [0xff; 4];
/// zstd's magic at the start of a trained dictionary; bytes 4..8 after it are the dictionary's own id.
const ZDICT_MAGIC: [u8; 4] = [0x37, 0xa4, 0x30, 0xec];

/// True for a collection's split header (as opposed to a compact collection or any other value).
fn is_split_header(kind: ValueKind, value: &[u8]) -> bool {
    matches!(kind, ValueKind::Hash | ValueKind::List | ValueKind::Set | ValueKind::SortedSet | ValueKind::Stream)
        && value.starts_with(&SPLIT_HEADER_MARKER)
}

/// The file name of dictionary `id`.
pub fn dict_file_name(id: u32) -> String {
    format!("dict-{id:08}.vdct")
}

/// The id of a dictionary file from its name.
pub fn parse_dict_file_name(name: &str) -> Option<u32> {
    name.strip_prefix("dict-")?.strip_suffix(".vdct")?.parse().ok()
}

/// A dictionary as stored in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDictionary {
    /// Its id (≥ 2).
    pub id: u32,
    /// When it was installed, Unix milliseconds.
    pub created_ms: u64,
    /// The key family it was trained for (empty: the default family).
    pub family: Vec<u8>,
    /// The zstd dictionary.
    pub bytes: Vec<u8>,
}

/// Encodes a dictionary file.
pub fn encode_dict_file(dict: &StoredDictionary) -> Vec<u8> {
    let mut out = format::file_header(MAGIC_DICTIONARY, 0).to_vec();
    out.put_u32(dict.id);
    out.put_u64(dict.created_ms);
    out.put_u16(dict.family.len() as u16);
    out.extend_from_slice(&dict.family);
    out.put_u32(dict.bytes.len() as u32);
    out.extend_from_slice(&dict.bytes);
    format::seal(out)
}

/// Decodes and verifies a dictionary file read from `file`.
pub fn decode_dict_file(bytes: &[u8], file: &Path) -> Result<StoredDictionary> {
    let body = format::unseal(bytes, MAGIC_DICTIONARY, 4 + 8 + 2 + 4, "dictionary file", file)?;
    let mut reader = ByteReader::new(body);
    let malformed = || Error::corrupt(file, FILE_HEADER_LEN as u64, "dictionary record malformed");
    let id = reader.u32().ok_or_else(malformed)?;
    let created_ms = reader.u64().ok_or_else(malformed)?;
    let family_len = reader.u16().ok_or_else(malformed)? as usize;
    let family = reader.take(family_len).ok_or_else(malformed)?.to_vec();
    let dict_len = reader.u32().ok_or_else(malformed)? as usize;
    let dict = reader.take(dict_len).ok_or_else(malformed)?.to_vec();
    if reader.remaining() != 0 || id < FIRST_DICT_ID || dict.is_empty() || dict.len() > MAX_DICT_LEN {
        return Err(malformed());
    }
    if parse_dict_file_name(&file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default())
        .is_some_and(|named| named != id)
    {
        return Err(Error::corrupt(
            file,
            FILE_HEADER_LEN as u64,
            format!("file holds dictionary {id}, its name another"),
        ));
    }
    Ok(StoredDictionary { id, created_ms, family, bytes: dict })
}

/// Reads every dictionary file of a data directory, in id order.
pub fn load_dir(fs: &dyn FileSystem, dir: &Path) -> Result<Vec<StoredDictionary>> {
    let mut ids: Vec<u32> = match fs.list(dir) {
        Ok(names) => names.iter().filter_map(|name| parse_dict_file_name(name)).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::io("list", dir, e)),
    };
    ids.sort_unstable();
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let path = dir.join(dict_file_name(id));
        let bytes = super::meta::read_whole(fs, &path)?;
        out.push(decode_dict_file(&bytes, &path)?);
    }
    Ok(out)
}

/// Clears a trained dictionary's own zstd id, so that frames compressed with it carry no dictionary id
/// (4 bytes saved per value; the envelope names the dictionary).
pub fn normalize(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.len() >= 8 && bytes[0..4] == ZDICT_MAGIC {
        bytes[4..8].fill(0);
    }
    bytes
}

/// A dictionary ready for use: its bytes prepared for compression and decompression.
pub struct Prepared {
    /// Its id.
    pub id: u32,
    /// Its family.
    pub family: Vec<u8>,
    /// When installed, Unix milliseconds.
    pub created_ms: u64,
    /// Length of the dictionary in bytes.
    pub len: usize,
    pub(crate) encoder: EncoderDictionary<'static>,
    pub(crate) decoder: DecoderDictionary<'static>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared").field("id", &self.id).field("family", &self.family).field("len", &self.len).finish()
    }
}

impl Prepared {
    /// Prepares a dictionary for compression at `level`.
    pub fn new(dict: &StoredDictionary, level: i32) -> std::io::Result<Prepared> {
        Ok(Prepared {
            id: dict.id,
            family: dict.family.clone(),
            created_ms: dict.created_ms,
            len: dict.bytes.len(),
            encoder: EncoderDictionary::try_copy(&dict.bytes, level)?,
            decoder: DecoderDictionary::try_copy(&dict.bytes)?,
        })
    }
}

/// One dictionary as listed by [`DictionaryMap::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DictionaryInfo {
    /// Its id.
    pub id: u32,
    /// Its family.
    pub family: Vec<u8>,
    /// Its size in bytes.
    pub len: usize,
    /// When installed, Unix milliseconds.
    pub created_ms: u64,
    /// True if new writes of its family use it.
    pub active: bool,
}

#[derive(Default)]
struct Inner {
    by_id: HashMap<u32, Arc<Prepared>>,
    active: HashMap<Vec<u8>, Arc<Prepared>>,
    next_id: u32,
}

/// Where installed dictionaries are written (absent for a read-only open).
struct Store {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
}

/// Trained dictionaries by id, the active one per family, the family rules and the value sampler. Shared
/// by every slot of an engine.
pub struct DictionaryMap {
    inner: RwLock<Inner>,
    rules: RwLock<FamilyRules>,
    any_active: AtomicBool,
    /// Counts changes of the active dictionaries: a value encoded before its slot was locked
    /// (`Slot::set_encoded`) is encoded again under the lock if this moved meanwhile, so that no write
    /// names a dictionary a compaction pass has already retired (`engine::recode`).
    generation: AtomicU64,
    installing: std::sync::Mutex<()>,
    level: i32,
    store: Option<Store>,
    sampler: Sampler,
    families: RwLock<HashMap<Vec<u8>, Arc<FamilyCounters>>>,
    evaluations: std::sync::Mutex<HashMap<Vec<u8>, Evaluation>>,
}

impl Default for DictionaryMap {
    fn default() -> Self {
        Self {
            inner: RwLock::new(Inner { next_id: FIRST_DICT_ID, ..Inner::default() }),
            rules: RwLock::new(FamilyRules::default()),
            any_active: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            installing: std::sync::Mutex::new(()),
            level: CompressionPolicy::default().level,
            store: None,
            sampler: Sampler::default(),
            families: RwLock::default(),
            evaluations: std::sync::Mutex::default(),
        }
    }
}

impl std::fmt::Debug for DictionaryMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DictionaryMap").field("dictionaries", &self.list().len()).finish_non_exhaustive()
    }
}

impl DictionaryMap {
    /// Loads the dictionaries of data directory `dir`; installs are written there unless `read_only`.
    /// Leftover temporary files of an interrupted install are removed (writable opens only).
    pub fn open(fs: Arc<dyn FileSystem>, dir: &Path, read_only: bool, level: i32) -> Result<DictionaryMap> {
        let stored = load_dir(fs.as_ref(), dir)?;
        if !read_only {
            if let Ok(names) = fs.list(dir) {
                for name in names.iter().filter(|n| n.starts_with("dict-") && n.ends_with(".tmp")) {
                    let _ = fs.remove_file(&dir.join(name));
                }
            }
        }
        let map = DictionaryMap {
            level,
            store: (!read_only).then(|| Store { fs: fs.clone(), dir: dir.to_path_buf() }),
            ..DictionaryMap::default()
        };
        for dict in &stored {
            let prepared = Prepared::new(dict, level).map_err(|e| {
                Error::corrupt(
                    dir.join(dict_file_name(dict.id)),
                    FILE_HEADER_LEN as u64,
                    format!("zstd rejects the dictionary: {e}"),
                )
            })?;
            map.add(Arc::new(prepared));
        }
        Ok(map)
    }

    /// Adds a prepared dictionary to the map (memory only), the active one of its family if it is the
    /// newest.
    pub(crate) fn add(&self, prepared: Arc<Prepared>) {
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        inner.next_id = inner.next_id.max(prepared.id.saturating_add(1));
        let newer = inner.active.get(&prepared.family).is_none_or(|current| current.id < prepared.id);
        if newer {
            inner.active.insert(prepared.family.clone(), prepared.clone());
        }
        inner.by_id.insert(prepared.id, prepared);
        self.any_active.store(true, Ordering::Release);
        // After the active map changed (an encoder that reads the new generation then finds the new
        // dictionary), before any compaction pass can visit a slot.
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The count of active-dictionary changes so far (see the field): read before encoding a value off
    /// its slot's lock, compared under it.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Installs a dictionary for `family` (tests and tools without a data directory: memory only).
    pub fn insert(&self, id: u32, family: &[u8], bytes: Vec<u8>) -> std::io::Result<()> {
        let dict = StoredDictionary { id, created_ms: super::system_clock_ms(), family: family.to_vec(), bytes };
        self.add(Arc::new(Prepared::new(&dict, self.level)?));
        Ok(())
    }

    /// Installs a new dictionary for `family`: writes its file durably, then makes it the family's active
    /// dictionary. Returns its id.
    pub fn install(&self, family: &[u8], bytes: Vec<u8>) -> Result<u32> {
        let store = self.store.as_ref().ok_or(Error::ReadOnly)?;
        let bytes = normalize(bytes);
        if bytes.is_empty() || bytes.len() > MAX_DICT_LEN || family.len() > u16::MAX as usize {
            return Err(Error::InvalidDictionary(format!("it must be 1..={MAX_DICT_LEN} bytes")));
        }
        // Installs are serialized so that two never take the same id; readers are not held up by the
        // file write (the map is only locked to add the prepared dictionary).
        let _installing = self.installing.lock().unwrap_or_else(|p| p.into_inner());
        let id = self.inner.read().unwrap_or_else(|p| p.into_inner()).next_id;
        let dict = StoredDictionary { id, created_ms: super::system_clock_ms(), family: family.to_vec(), bytes };
        let prepared = Prepared::new(&dict, self.level)
            .map_err(|e| Error::InvalidDictionary(format!("zstd rejects the dictionary: {e}")))?;
        let path = store.dir.join(dict_file_name(id));
        super::meta::write_atomically(store.fs.as_ref(), &path, &encode_dict_file(&dict))?;
        self.add(Arc::new(prepared));
        Ok(id)
    }

    /// Ids of the dictionaries that are not their family's active one: no new write uses them, and once
    /// no stored value names them (`engine::recode`) their files can go.
    pub fn retired(&self) -> Vec<u32> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<u32> = inner
            .by_id
            .values()
            .filter(|p| inner.active.get(&p.family).is_none_or(|a| a.id != p.id))
            .map(|p| p.id)
            .collect();
        out.sort_unstable();
        out
    }

    /// The id the next install will take (it changes with every install).
    pub fn next_id(&self) -> u32 {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).next_id
    }

    /// True when dictionaries can be installed and removed (a writable open with a data directory).
    pub fn is_writable(&self) -> bool {
        self.store.is_some()
    }

    /// Removes a retired dictionary: its file first (then the directory is fsynced), then its entry in the
    /// map. Only `engine::recode` calls this, after a complete count found no stored value naming it and
    /// the re-encoded values were committed; an active dictionary is never removed.
    pub(crate) fn remove(&self, id: u32) -> Result<()> {
        let store = self.store.as_ref().ok_or(Error::ReadOnly)?;
        let _installing = self.installing.lock().unwrap_or_else(|p| p.into_inner());
        if !self.retired().contains(&id) {
            return Err(Error::InvalidDictionary(format!("dictionary {id} is active or unknown")));
        }
        let path = store.dir.join(dict_file_name(id));
        if store.fs.exists(&path) {
            store.fs.remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
        }
        store.fs.sync_dir(&store.dir).map_err(|e| Error::io("fsync", &store.dir, e))?;
        self.inner.write().unwrap_or_else(|p| p.into_inner()).by_id.remove(&id);
        Ok(())
    }

    /// The dictionary with this id.
    pub fn get(&self, id: u32) -> Option<Arc<Prepared>> {
        self.inner.read().ok().and_then(|inner| inner.by_id.get(&id).cloned())
    }

    /// The active dictionary of a family.
    pub fn active(&self, family: &[u8]) -> Option<Arc<Prepared>> {
        if !self.any_active.load(Ordering::Acquire) {
            return None;
        }
        self.inner.read().ok().and_then(|inner| inner.active.get(family).cloned())
    }

    /// Every dictionary, by id.
    pub fn list(&self) -> Vec<DictionaryInfo> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<DictionaryInfo> = inner
            .by_id
            .values()
            .map(|p| DictionaryInfo {
                id: p.id,
                family: p.family.clone(),
                len: p.len,
                created_ms: p.created_ms,
                active: inner.active.get(&p.family).is_some_and(|a| a.id == p.id),
            })
            .collect();
        out.sort_by_key(|d| d.id);
        out
    }

    /// The family rules in force.
    pub fn rules(&self) -> FamilyRules {
        self.rules.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the family rules (CONFIG SET); later writes are grouped by the new rules.
    pub fn set_rules(&self, rules: FamilyRules) {
        *self.rules.write().unwrap_or_else(|p| p.into_inner()) = rules;
    }

    /// The family of a key under the rules in force.
    pub fn family_of(&self, key: &[u8]) -> Vec<u8> {
        self.rules.read().unwrap_or_else(|p| p.into_inner()).family_of(key).to_vec()
    }

    /// The sampler that collects values for training.
    pub fn sampler(&self) -> &Sampler {
        &self.sampler
    }

    /// Encodes a value written under `key`: with its family's dictionary when it has one and that pays,
    /// else as [`envelope::encode`]. Offers the value to the sampler when sampling is on.
    pub fn encode(&self, kind: ValueKind, key: &[u8], value: &[u8], policy: CompressionPolicy) -> Vec<u8> {
        self.encode_inner(kind, key, value, policy, true)
    }

    /// [`DictionaryMap::encode`] without offering the value to the sampler: for values that are not new
    /// writes (re-encoding by `engine::recode`), which would skew the samples towards old data.
    pub fn encode_quiet(&self, kind: ValueKind, key: &[u8], value: &[u8], policy: CompressionPolicy) -> Vec<u8> {
        self.encode_inner(kind, key, value, policy, false)
    }

    fn encode_inner(
        &self,
        kind: ValueKind,
        key: &[u8],
        value: &[u8],
        policy: CompressionPolicy,
        fresh: bool,
    ) -> Vec<u8> {
        let sampling = fresh && self.sampler.enabled();
        // A split collection's header is rewritten by nearly every command on the collection (its count
        // changes) and read back by the next one: a dictionary frame each way cost LPUSH on a split list
        // about a fifth of its user CPU for a few dozen bytes of counts and part numbers, and headers are
        // not the values a family's dictionary should be trained on.
        let eligible = kind != ValueKind::Element
            && (DICT_MIN_VALUE_LEN..=DICT_MAX_VALUE_LEN).contains(&value.len())
            && !is_split_header(kind, value);
        if eligible && (sampling || self.any_active.load(Ordering::Acquire)) {
            // The family is a prefix of the key: the rules are only read to find it.
            let family = self.rules.read().unwrap_or_else(|p| p.into_inner()).family_of(key);
            if sampling {
                self.sampler.offer(family, key, value);
            }
            let with_dict = self.active(family).and_then(|dict| envelope::encode_with_dictionary(kind, value, &dict));
            let used_dict = with_dict.is_some();
            let envelope = with_dict.unwrap_or_else(|| envelope::encode(kind, value, policy));
            if fresh {
                self.count_write(family, value.len(), envelope.len(), used_dict);
            }
            return envelope;
        }
        envelope::encode(kind, value, policy)
    }

    /// Adds a written value to its family's counters (new families up to [`FAMILIES_TRACKED`]).
    fn count_write(&self, family: &[u8], raw: usize, stored: usize, used_dict: bool) {
        let counters = self.families.read().unwrap_or_else(|p| p.into_inner()).get(family).cloned();
        let counters = match counters {
            Some(counters) => counters,
            None => {
                let mut families = self.families.write().unwrap_or_else(|p| p.into_inner());
                if families.len() >= FAMILIES_TRACKED && !families.contains_key(family) {
                    return;
                }
                families.entry(family.to_vec()).or_default().clone()
            }
        };
        counters.writes.fetch_add(1, Ordering::Relaxed);
        counters.raw_bytes.fetch_add(raw as u64, Ordering::Relaxed);
        counters.stored_bytes.fetch_add(stored as u64, Ordering::Relaxed);
        if used_dict {
            counters.dict_writes.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records what the last training of a family measured (the trainer, after each training).
    pub fn record_evaluation(&self, family: &[u8], evaluation: Evaluation) {
        self.evaluations.lock().unwrap_or_else(|p| p.into_inner()).insert(family.to_vec(), evaluation);
    }

    /// Per-family figures (VELO FAMILIES, INFO `velo`): every family that has written values counted, samples
    /// held, a dictionary or an evaluation; largest raw bytes first.
    pub fn families(&self) -> Vec<FamilyInfo> {
        let mut out: HashMap<Vec<u8>, FamilyInfo> = HashMap::new();
        let entry = |out: &mut HashMap<Vec<u8>, FamilyInfo>, family: &[u8]| {
            out.entry(family.to_vec())
                .or_insert_with(|| FamilyInfo { family: family.to_vec(), ..FamilyInfo::default() });
        };
        for (family, counters) in self.families.read().unwrap_or_else(|p| p.into_inner()).iter() {
            entry(&mut out, family);
            if let Some(info) = out.get_mut(family) {
                info.writes = counters.writes.load(Ordering::Relaxed);
                info.raw_bytes = counters.raw_bytes.load(Ordering::Relaxed);
                info.stored_bytes = counters.stored_bytes.load(Ordering::Relaxed);
                info.dict_writes = counters.dict_writes.load(Ordering::Relaxed);
            }
        }
        for (family, samples) in self.sampler.counts() {
            entry(&mut out, &family);
            if let Some(info) = out.get_mut(&family) {
                info.samples = samples as u64;
            }
        }
        for dict in self.list() {
            entry(&mut out, &dict.family);
            if let Some(info) = out.get_mut(&dict.family) {
                if dict.active {
                    info.dictionary = Some(dict.id);
                    info.dictionary_bytes = dict.len as u64;
                } else {
                    info.retired.push(dict.id);
                }
            }
        }
        for (family, evaluation) in self.evaluations.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            entry(&mut out, family);
            if let Some(info) = out.get_mut(family) {
                info.evaluation = Some(evaluation.clone());
            }
        }
        let mut out: Vec<FamilyInfo> = out.into_values().collect();
        out.sort_by(|a, b| b.raw_bytes.cmp(&a.raw_bytes).then_with(|| a.family.cmp(&b.family)));
        out
    }
}

/// Families whose writes are counted (the rest are not, to bound memory).
pub const FAMILIES_TRACKED: usize = 1024;

/// Counters of one family's writes since the engine opened.
#[derive(Debug, Default)]
struct FamilyCounters {
    writes: AtomicU64,
    raw_bytes: AtomicU64,
    stored_bytes: AtomicU64,
    dict_writes: AtomicU64,
}

/// What the last training of a family measured on its held-out samples.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evaluation {
    /// When, Unix milliseconds.
    pub at_ms: u64,
    /// Held-out samples measured.
    pub held_out: usize,
    /// Their raw bytes.
    pub raw_bytes: u64,
    /// What they cost stored without a dictionary (`train::stored_cost`: inline, or a location and a
    /// record in a zstd-compressed segment; cell headers and keys left out).
    pub without_dict_bytes: u64,
    /// What they cost stored each compressed with the trained dictionary (0 if training failed).
    pub with_dict_bytes: u64,
    /// Whether the dictionary was installed.
    pub installed: bool,
}

/// One family's figures (see [`DictionaryMap::families`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FamilyInfo {
    /// The family (empty: the default family).
    pub family: Vec<u8>,
    /// Values of 16 B to 64 KiB written since the engine opened (counted while training is on or a
    /// dictionary is installed).
    pub writes: u64,
    /// Their raw bytes.
    pub raw_bytes: u64,
    /// Their envelope bytes as encoded on write (before segment compression).
    pub stored_bytes: u64,
    /// How many of them were compressed with the family's dictionary.
    pub dict_writes: u64,
    /// Samples held for training.
    pub samples: u64,
    /// The active dictionary's id.
    pub dictionary: Option<u32>,
    /// Its size in bytes.
    pub dictionary_bytes: u64,
    /// Older dictionaries of the family still on disk (values naming them wait for dictionary compaction).
    pub retired: Vec<u32>,
    /// The last training's measurement.
    pub evaluation: Option<Evaluation>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::io::RealFs;

    fn sample_dict() -> StoredDictionary {
        StoredDictionary {
            id: 7,
            created_ms: 1_700_000_000_000,
            family: b"user".to_vec(),
            bytes: b"dictionary bytes".to_vec(),
        }
    }

    #[test]
    fn dict_file_roundtrip_and_every_corruption_caught() {
        let dict = sample_dict();
        let bytes = encode_dict_file(&dict);
        let path = Path::new("dict-00000007.vdct");
        assert_eq!(decode_dict_file(&bytes, path).ok(), Some(dict.clone()));
        for len in 0..bytes.len() {
            assert!(decode_dict_file(&bytes[..len], path).is_err(), "truncation {len}");
        }
        for index in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[index] ^= 0x10;
            assert!(decode_dict_file(&bad, path).is_err(), "flip {index}");
        }
        // A file renamed to another id is caught too.
        assert!(decode_dict_file(&bytes, Path::new("dict-00000008.vdct")).is_err());
        assert_eq!(parse_dict_file_name(&dict_file_name(12)), Some(12));
    }

    fn trained() -> Vec<u8> {
        let samples: Vec<Vec<u8>> = (0..2000)
            .map(|i| {
                format!(
                    "{{\"name\":\"user{i}\",\"email\":\"user{i}@example.com\",\"plan\":\"{}\",\"age\":{}}}",
                    ["free", "pro", "team"][i % 3],
                    18 + i % 50
                )
                .into_bytes()
            })
            .collect();
        zstd::dict::from_samples(&samples, 4096).expect("trains")
    }

    #[test]
    fn split_headers_are_stored_raw_under_a_dictionary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fs: Arc<dyn FileSystem> = Arc::new(RealFs);
        let map = DictionaryMap::open(fs, dir.path(), false, 3).expect("open");
        map.install(b"user", trained()).expect("install");
        let value = br#"{"name":"user77","email":"user77@example.com","plan":"pro","age":33}"#;
        let mut header = SPLIT_HEADER_MARKER.to_vec();
        header.extend_from_slice(value);
        for kind in [ValueKind::Hash, ValueKind::List, ValueKind::Set, ValueKind::SortedSet, ValueKind::Stream] {
            let envelope = map.encode(kind, b"user:77", &header, CompressionPolicy::default());
            assert_eq!(envelope[1], 0, "{kind:?}: a split header stays raw");
            assert_eq!(envelope::decode(&envelope, &map).map(|(_, v)| v.to_vec()), Ok(header.clone()));
        }
        // The same bytes as a string value, and a compact collection, still use the dictionary.
        assert_eq!(map.encode(ValueKind::String, b"user:77", &header, CompressionPolicy::default())[1], 3);
        assert_eq!(map.encode(ValueKind::Hash, b"user:77", value, CompressionPolicy::default())[1], 3);
    }

    #[test]
    fn install_load_and_ids_grow() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fs: Arc<dyn FileSystem> = Arc::new(RealFs);
        let map = DictionaryMap::open(fs.clone(), dir.path(), false, 3).expect("open");
        let dict = trained();
        assert_eq!(map.install(b"user", dict.clone()).ok(), Some(2));
        assert_eq!(map.install(b"user", dict.clone()).ok(), Some(3));
        assert_eq!(map.install(b"event", dict).ok(), Some(4));
        assert_eq!(map.active(b"user").map(|d| d.id), Some(3));
        let value = br#"{"name":"user77","email":"user77@example.com","plan":"pro","age":33}"#;
        let envelope = map.encode(ValueKind::String, b"user:77", value, CompressionPolicy::default());
        assert_eq!(envelope[1], 3, "dictionary codec");
        assert!(envelope.len() < value.len() / 2, "{} bytes", envelope.len());
        let reopened = DictionaryMap::open(fs.clone(), dir.path(), true, 3).expect("reopen");
        assert_eq!(reopened.list().len(), 3);
        assert_eq!(envelope::decode(&envelope, &reopened).map(|(_, v)| v.to_vec()), Ok(value.to_vec()));
        assert_eq!(
            envelope::decode(&envelope, &DictionaryMap::default()),
            Err(envelope::EnvelopeError::DictMissing(3))
        );
        // A corrupt file fails the open and names the file.
        let path = dir.path().join(dict_file_name(3));
        let mut bytes = std::fs::read(&path).expect("read");
        let at = bytes.len() / 2;
        bytes[at] ^= 1;
        std::fs::write(&path, bytes).expect("write");
        let err = DictionaryMap::open(fs, dir.path(), true, 3).expect_err("corrupt");
        assert!(err.to_string().contains("dict-00000003.vdct"), "{err}");
    }
}
