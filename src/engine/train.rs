//! Dictionary training: values are sampled per key family as they are written (one in a few writes,
//! never waiting on a lock, bounded memory), and a background thread trains a zstd dictionary for a family
//! once it has enough samples, keeps it only if it beats what is stored today (segment compression) on
//! held-out samples by a margin, and installs it. Nothing here runs on the request path except
//! [`Sampler::offer`]. A family with a dictionary keeps being sampled; it is retrained when its ratio on
//! new samples has degraded (drift), at most once per retrain interval.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::dictionary::{normalize, DictionaryMap, Prepared, StoredDictionary, DICT_MAX_VALUE_LEN};
use super::envelope::{self, ValueKind};
#[cfg(test)]
use super::{page, segment};

/// Total bytes of samples kept, all families together.
const SAMPLE_BYTES_MAX: usize = 32 << 20;
/// Families sampled at once; values of further families are not sampled until one is trained.
const FAMILIES_MAX: usize = 256;
/// Values longer than this are not sampled (they gain little from a dictionary and cost memory).
const SAMPLE_VALUE_MAX: usize = 16 << 10;

/// Training settings, changeable while the server runs (CONFIG SET `velo-dict-*`, docs/compat.md).
#[derive(Debug)]
pub struct TrainSettings {
    /// Sample and train at all.
    pub enabled: AtomicBool,
    /// Samples a family needs before it is trained.
    pub min_samples: AtomicU64,
    /// Dictionary size in bytes.
    pub dict_size: AtomicU64,
    /// Percent the dictionary must save over today's encoding (segment compression) on held-out samples to
    /// be kept; negative accepts a dictionary that costs that much more disk, for cheaper cold reads.
    pub min_gain_pct: std::sync::atomic::AtomicI64,
    /// Seconds between two trainings of one family.
    pub retrain_secs: AtomicU64,
    /// One write in this many is offered to the sampler.
    pub sample_every: AtomicU64,
}

impl Default for TrainSettings {
    fn default() -> Self {
        Self {
            enabled: AtomicBool::new(false),
            min_samples: AtomicU64::new(2000),
            dict_size: AtomicU64::new(16 << 10),
            min_gain_pct: std::sync::atomic::AtomicI64::new(10),
            retrain_secs: AtomicU64::new(3600),
            sample_every: AtomicU64::new(4),
        }
    }
}

/// Training counters for INFO.
#[derive(Debug, Default)]
pub struct TrainStats {
    /// Dictionaries trained and installed.
    pub installed: AtomicU64,
    /// Dictionaries trained and dropped (not enough gain).
    pub rejected: AtomicU64,
    /// Training or install failures.
    pub failed: AtomicU64,
}

#[derive(Default)]
struct Family {
    samples: Vec<Vec<u8>>,
    seen: u64,
    /// Key bytes and keys of the values offered and kept (the trainer's cost model needs the key length).
    key_bytes: u64,
    keys: u64,
}

#[derive(Default)]
struct Samples {
    families: HashMap<Vec<u8>, Family>,
    bytes: usize,
}

/// Collects sample values per family, bounded in memory.
#[derive(Default)]
pub struct Sampler {
    /// The settings (shared with the trainer thread).
    pub settings: TrainSettings,
    /// Counters.
    pub stats: TrainStats,
    counter: AtomicU64,
    samples: Mutex<Samples>,
}

impl std::fmt::Debug for Sampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sampler").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl Sampler {
    /// True when writes are sampled.
    pub fn enabled(&self) -> bool {
        self.settings.enabled.load(Ordering::Relaxed)
    }

    /// Offers a value written under `key`, of `family`. Cheap: most calls return after one atomic add, and
    /// a call never waits for the lock (a busy sampler skips the value).
    pub fn offer(&self, family: &[u8], key: &[u8], value: &[u8]) {
        let every = self.settings.sample_every.load(Ordering::Relaxed).max(1);
        if self.counter.fetch_add(1, Ordering::Relaxed) % every != 0 || value.len() > SAMPLE_VALUE_MAX {
            return;
        }
        let Ok(mut samples) = self.samples.try_lock() else { return };
        let capacity = (self.settings.min_samples.load(Ordering::Relaxed) as usize).max(16) * 2;
        let full = samples.bytes + value.len() > SAMPLE_BYTES_MAX;
        if !samples.families.contains_key(family) && (samples.families.len() >= FAMILIES_MAX || full) {
            return;
        }
        let entry = samples.families.entry(family.to_vec()).or_default();
        entry.seen += 1;
        entry.key_bytes += key.len() as u64;
        entry.keys += 1;
        if entry.samples.len() < capacity && !full {
            entry.samples.push(value.to_vec());
            samples.bytes += value.len();
        } else if !entry.samples.is_empty() {
            // Keep the set fresh: replace a pseudo-random earlier sample.
            let at = (entry.seen.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 33) as usize % entry.samples.len();
            let old = std::mem::replace(&mut entry.samples[at], value.to_vec());
            samples.bytes = samples.bytes + value.len() - old.len();
        }
    }

    /// Families holding at least `min` samples.
    fn ready(&self, min: usize) -> Vec<Vec<u8>> {
        let samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        samples.families.iter().filter(|(_, f)| f.samples.len() >= min).map(|(name, _)| name.clone()).collect()
    }

    /// Takes a family's samples and the mean length of their keys (it starts collecting afresh).
    fn take(&self, family: &[u8]) -> (Vec<Vec<u8>>, usize) {
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        let Some(taken) = samples.families.remove(family) else { return (Vec::new(), DEFAULT_KEY_LEN) };
        samples.bytes -= taken.samples.iter().map(Vec::len).sum::<usize>();
        let key_len = if taken.keys == 0 { DEFAULT_KEY_LEN } else { (taken.key_bytes / taken.keys) as usize };
        (taken.samples, key_len)
    }

    /// Number of samples held per family (INFO, tests).
    pub fn counts(&self) -> Vec<(Vec<u8>, usize)> {
        let samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        samples.families.iter().map(|(name, f)| (name.clone(), f.samples.len())).collect()
    }
}

/// What training one family produced, measured on held-out samples.
#[derive(Debug, Clone)]
pub struct TrainResult {
    /// The dictionary (normalized: no zstd dictionary id), if training succeeded.
    pub dictionary: Option<Vec<u8>>,
    /// Samples used for training.
    pub trained_on: usize,
    /// Held-out samples measured.
    pub held_out: usize,
    /// Raw bytes of the held-out samples.
    pub raw_bytes: u64,
    /// What they cost stored without a dictionary ([`stored_cost`]).
    pub baseline_bytes: u64,
    /// What they cost stored with the new dictionary ([`stored_cost_with`]: inline ones each compressed
    /// with it, the others in segments compressed with it).
    pub dict_bytes: u64,
}

impl TrainResult {
    /// Fraction saved by the dictionary over the baseline (negative when it is worse).
    pub fn gain(&self) -> f64 {
        if self.baseline_bytes == 0 {
            return 0.0;
        }
        1.0 - self.dict_bytes as f64 / self.baseline_bytes as f64
    }
}

/// Largest envelope a checkpoint stores inline in a bucket cell by default (`EngineOptions::inline_max`).
const INLINE_MAX: usize = 64;
/// Payload bytes of a segment by default (`EngineOptions::segment_size`).
const SEGMENT_SIZE: usize = 4096;
/// Key length assumed when the real one is not known (a family name, a separator and an id).
pub const DEFAULT_KEY_LEN: usize = 16;

/// Bytes a set of values costs on disk as a checkpoint stores it, beyond what every cell pays whatever the
/// encoding (its header and the key): an envelope of up to `INLINE_MAX` bytes inline in the cell; a
/// larger one as an 8-byte short location in the cell plus its record (16-byte header, key, envelope) in a
/// segment of about 4 KiB with a 16-byte header, compressed as `segment::SegmentWriter` decides (not when
/// most of it is dictionary-compressed values, nor when zstd saves 64 bytes or less). Records are packed in
/// the given order with keys of `key_len` bytes (a separator and decimal digits derived from each envelope,
/// so that they compress as unrelated ids do). docs/format.md §"Cell" and §"Segment".
pub fn stored_cost(envelopes: &[Vec<u8>], key_len: usize, level: i32) -> u64 {
    stored_cost_with(envelopes, key_len, level, None)
}

/// [`stored_cost`] where the keys' family (the default family: the keys have nothing before their
/// separator) has `dictionaries`' active dictionary: segments are then compressed with it, and values
/// compressed on their own with it go into them raw, as a checkpoint does.
pub fn stored_cost_with(
    envelopes: &[Vec<u8>],
    key_len: usize,
    level: i32,
    dictionaries: Option<Arc<DictionaryMap>>,
) -> u64 {
    let mut writer = super::segment::SegmentWriter::new(SEGMENT_SIZE, Some(level));
    if let Some(map) = dictionaries {
        writer = writer.with_dictionaries(map);
    }
    let (mut total, mut key) = (0u64, Vec::with_capacity(key_len));
    for (index, env) in envelopes.iter().enumerate() {
        if env.len() <= INLINE_MAX {
            total += env.len() as u64;
            continue;
        }
        key.clear();
        key.push(b':');
        let mut id = xxhash_rust::xxh3::xxh3_64(env);
        while key.len() < key_len.max(2) {
            key.push(b'0' + (id % 10) as u8);
            id /= 10;
        }
        if !writer.fits(key.len(), env.len()) {
            // A big-value file: its own file header and record, never compressed.
            total += (super::page::LOCATION_LEN + 16 + super::segment::record_len(key.len(), env.len()) + 4) as u64;
            continue;
        }
        let record = writer.prepare(&key, env);
        if writer.must_seal_before_record(key.len(), &record) {
            total += writer.seal(0, 0).bytes.len() as u64;
        }
        writer.add_record(index as u64 + 1, 0, &key, record);
        total += super::page::SHORT_LOCATION_LEN as u64;
    }
    if writer.has_pending() {
        total += writer.seal(0, 0).bytes.len() as u64;
    }
    total
}

/// Trains a dictionary of at most `dict_size` bytes on nine in ten samples and measures it on the tenth:
/// what the held-out values cost stored ([`stored_cost`], keys of `key_len` bytes) without a dictionary and
/// with it.
pub fn train(samples: &[Vec<u8>], dict_size: usize, level: i32, key_len: usize) -> TrainResult {
    let (mut training, mut held) = (Vec::new(), Vec::new());
    for (index, sample) in samples.iter().enumerate() {
        if index % 10 == 9 {
            held.push(sample.as_slice());
        } else {
            training.push(sample.as_slice());
        }
    }
    // Segments hold records in key-hash order, so neighbours in a segment are unrelated values: measure
    // in a hash order too (sample order would let sequential ids compress unrealistically).
    held.sort_by_key(|v| xxhash_rust::xxh3::xxh3_64(v));
    let plain: Vec<Vec<u8>> = held.iter().map(|v| envelope::encode(ValueKind::String, v, Default::default())).collect();
    let mut result = TrainResult {
        dictionary: None,
        trained_on: training.len(),
        held_out: held.len(),
        raw_bytes: held.iter().map(|v| v.len() as u64).sum(),
        baseline_bytes: stored_cost(&plain, key_len, level),
        dict_bytes: 0,
    };
    let Ok(dictionary) = zstd::dict::from_samples(&training, dict_size.max(256)) else { return result };
    let dictionary = normalize(dictionary);
    let stored = StoredDictionary { id: u32::MAX, created_ms: 0, family: Vec::new(), bytes: dictionary.clone() };
    let Ok(prepared) = Prepared::new(&stored, level) else { return result };
    let prepared = Arc::new(prepared);
    let with_dict: Vec<Vec<u8>> = held
        .iter()
        .zip(plain)
        .map(|(value, plain)| envelope::encode_with_dictionary(ValueKind::String, value, &prepared).unwrap_or(plain))
        .collect();
    // The dictionary as the default family's: the model's keys belong to that family.
    let map = DictionaryMap::default();
    map.add(prepared);
    result.dict_bytes = stored_cost_with(&with_dict, key_len, level, Some(Arc::new(map)));
    result.dictionary = Some(dictionary);
    result
}

/// The ratio a dictionary achieves on samples (stored envelope bytes / raw bytes).
fn ratio_with(samples: &[Vec<u8>], dict: &Prepared) -> f64 {
    let raw: usize = samples.iter().map(Vec::len).sum();
    let stored: usize = samples
        .iter()
        .map(|v| envelope::encode_with_dictionary(ValueKind::String, v, dict).map_or(v.len() + 2, |e| e.len()))
        .sum();
    stored as f64 / raw.max(1) as f64
}

/// Dictionary compaction as the trainer runs it (`engine::recode::run` over the engine's slots); its
/// argument says when to stop early.
pub type Compactor = Box<dyn Fn(&dyn Fn() -> bool) -> super::Result<super::recode::RecodeReport> + Send>;

/// Least time between two dictionary compaction passes that an install did not ask for (a pass that left
/// a retired dictionary, e.g. because a snapshot was being read, is tried again after this).
const COMPACT_RETRY: Duration = Duration::from_secs(600);

/// The background training thread; stopped and joined on drop.
pub struct Trainer {
    stop: Arc<(Mutex<bool>, Condvar)>,
    handle: Option<JoinHandle<()>>,
}

impl Trainer {
    /// Starts the thread that trains dictionaries for `map`'s families as samples arrive, and runs
    /// `compact` when an install has retired a dictionary (and again every ten minutes while one is left).
    pub fn spawn(map: Arc<DictionaryMap>, level: i32, compact: Option<Compactor>) -> Option<Trainer> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let thread_stop = stop.clone();
        let handle = std::thread::Builder::new()
            .name("velo-dict-train".into())
            .spawn(move || {
                let mut trained: HashMap<Vec<u8>, (Instant, f64)> = HashMap::new();
                let mut compacted: Option<(Instant, u32)> = None;
                let (flag, condvar) = &*thread_stop;
                let stopping = || *flag.lock().unwrap_or_else(|p| p.into_inner());
                let mut stopped = flag.lock().unwrap_or_else(|p| p.into_inner());
                while !*stopped {
                    let (guard, _) =
                        condvar.wait_timeout(stopped, Duration::from_millis(500)).unwrap_or_else(|p| p.into_inner());
                    stopped = guard;
                    if *stopped {
                        break;
                    }
                    drop(stopped);
                    if map.sampler().enabled() {
                        train_ready(&map, level, &mut trained);
                    }
                    if let Some(compact) = &compact {
                        let installs = map.next_id();
                        let due = compacted.is_none_or(|(at, seen)| seen != installs || at.elapsed() >= COMPACT_RETRY);
                        if due && !map.retired().is_empty() {
                            match compact(&stopping) {
                                Ok(report) => tracing::info!(?report, "dictionary compaction"),
                                Err(error) => tracing::warn!(%error, "dictionary compaction failed"),
                            }
                            compacted = Some((Instant::now(), installs));
                        }
                    }
                    stopped = flag.lock().unwrap_or_else(|p| p.into_inner());
                }
            })
            .ok()?;
        Some(Trainer { stop, handle: Some(handle) })
    }
}

impl Drop for Trainer {
    fn drop(&mut self) {
        let (flag, condvar) = &*self.stop;
        *flag.lock().unwrap_or_else(|p| p.into_inner()) = true;
        condvar.notify_all();
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// One pass of the trainer: every family with enough samples is trained (or, if it has a dictionary,
/// checked for drift and retrained when due).
fn train_ready(map: &DictionaryMap, level: i32, trained: &mut HashMap<Vec<u8>, (Instant, f64)>) {
    let settings = &map.sampler().settings;
    let min = settings.min_samples.load(Ordering::Relaxed).max(16) as usize;
    let retrain = Duration::from_secs(settings.retrain_secs.load(Ordering::Relaxed));
    let mut worked = false;
    for family in map.sampler().ready(min) {
        let (samples, key_len) = map.sampler().take(&family);
        let due = trained.get(&family).is_none_or(|(at, _)| at.elapsed() >= retrain);
        if !due {
            continue;
        }
        if let Some(current) = map.active(&family) {
            // Drift: retrain only if the current dictionary does clearly worse than when it was made.
            let now = ratio_with(&samples, &current);
            let then = trained.get(&family).map_or(f64::MAX, |(_, ratio)| *ratio);
            if now <= then * 1.2 {
                trained.insert(family, (Instant::now(), then.min(now)));
                continue;
            }
        }
        train_one(map, level, &family, &samples, key_len, trained);
        worked = true;
    }
    if worked {
        release_c_heap();
    }
}

/// Gives the C heap's free memory back to the system after a training. zstd's dictionary builder and
/// compression contexts allocate with the C library's `malloc`, not the Rust allocator: one training
/// peaks at several MiB (docs/performance.md, issue 14). This returns the free chunks inside the arenas;
/// the top of a thread's arena, which `malloc_trim` leaves, stays small because `velo serve` has glibc
/// map the large blocks (`crate::tools::c_heap`).
fn release_c_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only hands free pages of the C heap back to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn train_one(
    map: &DictionaryMap,
    level: i32,
    family: &[u8],
    samples: &[Vec<u8>],
    key_len: usize,
    trained: &mut HashMap<Vec<u8>, (Instant, f64)>,
) {
    let settings = &map.sampler().settings;
    let size = settings.dict_size.load(Ordering::Relaxed) as usize;
    let margin = settings.min_gain_pct.load(Ordering::Relaxed) as f64 / 100.0;
    let samples: Vec<Vec<u8>> = samples.iter().filter(|v| v.len() <= DICT_MAX_VALUE_LEN).cloned().collect();
    let result = train(&samples, size, level, key_len);
    let stats = &map.sampler().stats;
    let family_name = super::family::display_family(family);
    let gain = result.gain();
    map.record_evaluation(
        family,
        super::dictionary::Evaluation {
            at_ms: super::system_clock_ms(),
            held_out: result.held_out,
            raw_bytes: result.raw_bytes,
            without_dict_bytes: result.baseline_bytes,
            with_dict_bytes: result.dict_bytes,
            installed: result.dictionary.is_some() && gain >= margin,
        },
    );
    match result.dictionary {
        Some(dictionary) if gain >= margin => match map.install(family, dictionary) {
            Ok(id) => {
                stats.installed.fetch_add(1, Ordering::Relaxed);
                let ratio = result.dict_bytes as f64 / result.raw_bytes.max(1) as f64;
                trained.insert(family.to_vec(), (Instant::now(), ratio));
                tracing::info!(family = %family_name, id, gain, "installed a trained dictionary");
            }
            Err(error) => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(family = %family_name, %error, "dictionary install failed");
            }
        },
        Some(_) => {
            stats.rejected.fetch_add(1, Ordering::Relaxed);
            // Do not try again for this family before the retrain interval.
            trained.insert(family.to_vec(), (Instant::now(), f64::MAX));
            tracing::info!(family = %family_name, gain, "trained dictionary not kept: too little gain");
        }
        None => {
            stats.failed.fetch_add(1, Ordering::Relaxed);
            trained.insert(family.to_vec(), (Instant::now(), f64::MAX));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(i: u64) -> Vec<u8> {
        let plans = ["free", "pro", "team"];
        format!(
            "{{\"id\":{i},\"name\":\"user{}\",\"email\":\"user{}@example.com\",\"plan\":\"{}\",\"created\":{},\"tags\":[\"beta\",\"newsletter\"],\"verified\":{}}}",
            i * 7919 % 100_003,
            i * 104_729 % 1_000_003,
            plans[(i % 3) as usize],
            1_700_000_000 + i * 7_777 % 30_000_000,
            i % 2 == 0
        )
        .into_bytes()
    }

    #[test]
    fn stored_cost_follows_the_checkpoint_layout() {
        // Inline envelopes cost their bytes, nothing else.
        assert_eq!(stored_cost(&vec![vec![0u8; 40]; 10], 16, 3), 400);
        // Larger ones cost a location each plus their segments, which compress here (repetitive records).
        let envelopes: Vec<Vec<u8>> =
            (0..100).map(|i| envelope::encode(ValueKind::String, &json(i), Default::default())).collect();
        let raw: usize = envelopes.iter().map(|e| segment::record_len(16, e.len())).sum();
        let cost = stored_cost(&envelopes, 16, 3);
        assert!(cost >= 100 * page::SHORT_LOCATION_LEN as u64, "{cost}");
        assert!(cost < (raw + 100 * page::SHORT_LOCATION_LEN) as u64 / 2, "{cost} of {raw}");
        // Longer keys cost more.
        assert!(stored_cost(&envelopes, 40, 3) > cost);
        // Dictionary-compressed envelopes fill segments that are stored uncompressed: every record byte counts.
        let mut dict_like = envelopes.clone();
        for env in &mut dict_like {
            env[1] = envelope::CODEC_ZSTD_DICT;
        }
        let expected: usize =
            dict_like.iter().map(|e| page::SHORT_LOCATION_LEN + segment::record_len(16, e.len())).sum();
        let segments = stored_cost(&dict_like, 16, 3) - expected as u64;
        assert_eq!(segments % segment::SEGMENT_HEADER_LEN as u64, 0, "only segment headers on top");
        assert!(segments > 0);
    }

    #[test]
    fn training_is_judged_on_stored_costs() {
        let samples: Vec<Vec<u8>> = (0..3000).map(json).collect();
        let result = train(&samples, 4096, 3, 16);
        assert_eq!((result.trained_on, result.held_out), (2700, 300));
        assert!(result.dictionary.is_some());
        // Both sides include the cell locations and record overheads of values stored out of line.
        let plain: Vec<Vec<u8>> = samples
            .iter()
            .skip(9)
            .step_by(10)
            .map(|v| envelope::encode(ValueKind::String, v, Default::default()))
            .collect();
        let mut ordered = plain.clone();
        ordered.sort_by_key(|e| xxhash_rust::xxh3::xxh3_64(&e[2..]));
        assert_eq!(result.baseline_bytes, stored_cost(&ordered, 16, 3));
        assert!(result.dict_bytes > 0 && result.dict_bytes < result.raw_bytes, "{result:?}");
        assert!(result.gain() > -1.0 && result.gain() < 1.0);
    }
}
