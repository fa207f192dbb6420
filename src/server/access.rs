//! The per-key access clock behind OBJECT IDLETIME, OBJECT FREQ, TOUCH and RESTORE's IDLETIME/FREQ.
//!
//! Redis keeps a 24-bit LRU clock (or, under an LFU `maxmemory-policy`, a log counter and its last
//! decrement time) in every object, updated by every key lookup except those flagged "no touch" (TYPE,
//! TTL, EXISTS, OBJECT, ...). Velo's keys live on disk, and recording reads there would turn every read
//! into a write, so the clock is kept here, in RAM only, for the keys commands named since the server
//! started:
//! - under LRU semantics (every `maxmemory-policy` but the LFU ones, the default), a direct-mapped table of
//!   [`RECENT_SLOTS`] atomic words, each holding 32 bits of a (physical database, key) hash and the Unix
//!   second of that key's last access. An access is one load and, at most once a second per key, one
//!   compare-and-swap: no lock, no allocation (a sharded map here cost a fifth of a GET's CPU). A key that
//!   takes a slot another key held pushes the *horizon* (below) up to the evicted key's time;
//! - under an LFU policy, a sharded map of per-key entries holding the LFU counter and the minute it was
//!   last decremented (Redis's 8 + 16 bits) with the access time, each shard bounded ([`SHARD_CAP`]): a
//!   full shard drops its older half and moves its horizon to the newest access it dropped.
//!
//! A key with no entry (never named by a command since the start, or evicted) was not accessed since the
//! horizon (at first the server's start): OBJECT IDLETIME reports the time since then, a lower bound of
//! its true idle time, and OBJECT FREQ reports the counter a new key gets (5) decayed over that time, as
//! if the key had been created then. The clock is lost on restart (Redis reloads neither LRU nor LFU
//! data from an RDB unless it holds LFU/idle fields; Velo's RESTORE accepts them). Entries are touched by
//! name: a command on a missing key also makes one, which is harmless since every way of creating a key
//! names it (MOVE and COPY ... DB touch the target database too). Under an LFU policy a key created anew
//! must start its counter again, so there each key a command names is looked up first (one lookup per
//! key, under LFU policies only): a missing key loses its entry and gets a new one after the command.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;

use crate::cmd::{CommandSpec, Ctx};

/// Shards (a power of two).
const SHARDS: usize = 64;
/// Entries a shard holds before it drops its older half (about a million keys for all shards).
pub const SHARD_CAP: usize = 16 * 1024;
/// Slots of the LRU table (a power of two; 512 KiB, small enough to stay in the CPU caches: 4 MiB cost a
/// cache and TLB miss per command, 9% of a GET).
pub const RECENT_SLOTS: usize = 1 << 16;
/// The counter a new key starts with (Redis's `LFU_INIT_VAL`).
pub const LFU_INIT_VAL: u8 = 5;

/// True if `spec`'s key lookups count as accesses: not those Redis looks up with `LOOKUP_NOTOUCH` (or
/// without a lookup).
pub fn touches(spec: &CommandSpec) -> bool {
    !matches!(
        spec.fullname,
        "type"
            | "ttl"
            | "pttl"
            | "expiretime"
            | "pexpiretime"
            | "exists"
            | "object|encoding"
            | "object|freq"
            | "object|idletime"
            | "object|refcount"
            | "memory|usage"
            | "debug"
    )
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Unix second of the last access.
    at: u32,
    /// Unix minute (mod 65536) of the counter's last decrement.
    ldt: u16,
    counter: u8,
}

#[derive(Default)]
struct Shard {
    entries: HashMap<u64, Entry, BuildHasherDefault<IdentityHasher>>,
    /// Unix second before which accesses may have been forgotten (the server's start, then the newest
    /// access a full shard dropped).
    horizon: u32,
}

/// The keys are already hashes.
#[derive(Default)]
struct IdentityHasher(u64);

impl std::hash::Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 << 8) | u64::from(byte);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The server's access clock (see the module docs).
pub struct AccessClock {
    /// The LRU table: `hash >> 32` in the high half, the access second in the low half; 0 is empty.
    recent: Box<[AtomicU64]>,
    /// No key without a slot in `recent` was accessed after this second (the start, then the newest
    /// access an eviction lost).
    recent_horizon: AtomicU32,
    shards: Vec<Mutex<Shard>>,
    /// An LFU `maxmemory-policy` is selected: accesses count in the LFU counters, OBJECT FREQ answers
    /// and OBJECT IDLETIME refuses.
    lfu: AtomicBool,
    log_factor: AtomicU64,
    decay_minutes: AtomicU64,
    /// State of the random numbers LFU increments draw.
    random: AtomicU64,
}

impl Default for AccessClock {
    fn default() -> AccessClock {
        let start = unix_seconds();
        AccessClock {
            recent: zeroed_slots(RECENT_SLOTS),
            recent_horizon: AtomicU32::new(start),
            shards: (0..SHARDS).map(|_| Mutex::new(Shard { horizon: start, ..Shard::default() })).collect(),
            lfu: AtomicBool::new(false),
            log_factor: AtomicU64::new(10),
            decay_minutes: AtomicU64::new(1),
            random: AtomicU64::new(u64::from(start) | 1),
        }
    }
}

/// A table of zeroed atomic words whose pages the kernel maps only when first written (a table written
/// at start-up would cost its whole size in RSS on a server that never needs it).
fn zeroed_slots(count: usize) -> Box<[AtomicU64]> {
    let zeroed = Box::<[AtomicU64]>::new_zeroed_slice(count);
    // SAFETY: an `AtomicU64` of all-zero bytes is a valid 0.
    unsafe { zeroed.assume_init() }
}

/// The Unix second, from the kernel's coarse clock (a few nanoseconds: read for every command; a second's
/// resolution needs no better).
fn unix_seconds() -> u32 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid timespec for the call to fill.
    if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut now) } == 0 && now.tv_sec > 0 {
        return (now.tv_sec as u64).min(u64::from(u32::MAX)) as u32;
    }
    (crate::engine::system_clock_ms() / 1000).min(u64::from(u32::MAX)) as u32
}

fn minutes(seconds: u32) -> u16 {
    ((seconds / 60) & 0xffff) as u16
}

/// Minutes from `ldt` to `now`, both mod 65536 (Redis's `LFUTimeElapsed`).
fn minutes_since(ldt: u16, now: u16) -> u64 {
    if now >= ldt {
        u64::from(now - ldt)
    } else {
        65535 - u64::from(ldt) + u64::from(now)
    }
}

/// A fast 64-bit hash of (database, key): 8 bytes at a time, multiply and rotate, then a final mix so
/// that every bit depends on every input bit (the shard comes from the middle bits, the map uses the
/// low and the top ones). Not keyed: a collision only merges two keys' access times.
fn hash(db: u16, key: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = (u64::from(db) ^ (key.len() as u64) << 16).wrapping_mul(K);
    let mut chunks = key.chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        h = (h.rotate_left(23) ^ word).wrapping_mul(K);
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = (h.rotate_left(23) ^ u64::from_le_bytes(tail)).wrapping_mul(K);
    // murmur3's finaliser.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

impl AccessClock {
    fn shard(&self, hash: u64) -> MutexGuard<'_, Shard> {
        // Middle bits: the map itself uses the low bits (bucket) and the top 7 (control byte).
        self.shards[(hash >> 32) as usize % SHARDS].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Follows `maxmemory-policy`, `lfu-log-factor` and `lfu-decay-time`.
    pub fn configure(&self, policy: &str, log_factor: u64, decay_minutes: u64) {
        let lfu = policy.ends_with("-lfu");
        if self.lfu.swap(lfu, Ordering::Relaxed) != lfu {
            // The structure now in use was not kept up to date: what it holds no longer bounds anything.
            let now = unix_seconds();
            if lfu {
                for shard in &self.shards {
                    let mut shard = shard.lock().unwrap_or_else(|p| p.into_inner());
                    shard.entries.clear();
                    shard.horizon = now;
                }
            } else {
                self.recent.iter().for_each(|slot| slot.store(0, Ordering::Relaxed));
                self.recent_horizon.store(now, Ordering::Relaxed);
            }
        }
        self.log_factor.store(log_factor, Ordering::Relaxed);
        self.decay_minutes.store(decay_minutes, Ordering::Relaxed);
    }

    /// True while an LFU policy is selected.
    pub fn lfu(&self) -> bool {
        self.lfu.load(Ordering::Relaxed)
    }

    /// A uniform number in [0, 1) (xorshift; LFU increments need no better).
    fn draw(&self) -> f64 {
        let mut x = self.random.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.random.store(x, Ordering::Relaxed);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The counter decayed to now (Redis's `LFUDecrAndReturn`).
    fn decayed(&self, counter: u8, ldt: u16, now: u32) -> u8 {
        let decay = self.decay_minutes.load(Ordering::Relaxed);
        let periods = if decay == 0 { 0 } else { minutes_since(ldt, minutes(now)) / decay };
        counter.saturating_sub(periods.min(255) as u8)
    }

    /// Records the accesses of a command about to run: each of its keys, in the client's database,
    /// unless the command does not touch (see [`touches`]). Under an LFU policy a key's counter must
    /// start again when the key is created anew, so each key is looked up: a missing key loses its entry
    /// and is returned, for [`AccessClock::after_command`] to give it a new one (under other policies an
    /// access and a creation both set the time to now, so nothing is looked up).
    pub fn before_command(&self, ctx: &Ctx<'_>, spec: &CommandSpec, argv: &[Bytes]) -> Vec<Bytes> {
        let mut missing = Vec::new();
        if !touches(spec) {
            return missing;
        }
        let (db, now, lfu) = (ctx.db(), unix_seconds(), self.lfu());
        // Most commands name one key, second: no need to run the key finders.
        if !lfu && spec.key_finders.is_empty() && spec.first_key == 1 && spec.last_key == 1 {
            if let Some(key) = argv.get(1) {
                self.touch_at(db, key, now);
            }
            return missing;
        }
        let Some(positions) = spec.key_positions(argv) else { return missing };
        for at in positions {
            let Some(key) = argv.get(at) else { continue };
            if lfu && !matches!(ctx.engine.exists(db, key), Ok(true)) {
                self.forget(db, key);
                missing.push(key.clone());
            } else {
                self.touch_at(db, key, now);
            }
        }
        missing
    }

    /// After a command, under an LFU policy: the keys that were missing before it start a new counter
    /// (a key the command did not create loses the entry again at its next access).
    pub fn after_command(&self, db: u16, missing: Vec<Bytes>) {
        let now = unix_seconds();
        for key in missing {
            let hash = hash(db, &key);
            let mut shard = self.shard(hash);
            // Unless the command set it itself (RESTORE ... FREQ).
            shard.entries.entry(hash).or_insert(Entry { at: now, ldt: minutes(now), counter: LFU_INIT_VAL });
            if shard.entries.len() > SHARD_CAP {
                shrink(&mut shard);
            }
        }
    }

    fn forget(&self, db: u16, key: &[u8]) {
        let hash = hash(db, key);
        self.shard(hash).entries.remove(&hash);
    }

    /// Records an access to `key` now.
    pub fn touch(&self, db: u16, key: &[u8]) {
        self.touch_at(db, key, unix_seconds());
    }

    /// An access to a key that exists: a key with no entry (not named since the start) counts as one
    /// with a new key's counter.
    fn touch_at(&self, db: u16, key: &[u8], now: u32) {
        let hash = hash(db, key);
        let lfu = self.lfu();
        if !lfu {
            self.set_recent(hash, now);
            return;
        }
        let mut shard = self.shard(hash);
        let entry = shard.entries.entry(hash).or_insert(Entry { at: now, ldt: minutes(now), counter: LFU_INIT_VAL });
        entry.at = now;
        if lfu {
            let counter = self.decayed(entry.counter, entry.ldt, now);
            let base = f64::from(counter.saturating_sub(LFU_INIT_VAL));
            let p = 1.0 / (base * self.log_factor.load(Ordering::Relaxed) as f64 + 1.0);
            entry.counter = if counter < 255 && self.draw() < p { counter + 1 } else { counter };
            entry.ldt = minutes(now);
        }
        if shard.entries.len() > SHARD_CAP {
            shrink(&mut shard);
        }
    }

    /// Records in the LRU table that the key of `hash` was last accessed at `at`.
    fn set_recent(&self, hash: u64, at: u32) {
        let slot = &self.recent[hash as usize & (RECENT_SLOTS - 1)];
        let word = (hash >> 32) << 32 | u64::from(at);
        let old = slot.load(Ordering::Relaxed);
        if old == word {
            return;
        }
        let lost = match slot.compare_exchange(old, word, Ordering::Relaxed, Ordering::Relaxed) {
            // Another key's time leaves the table: keys without a slot were accessed no later than it.
            Ok(old) if old != 0 && old >> 32 != hash >> 32 => old as u32,
            Ok(_) => return,
            // Another thread wrote the slot meanwhile: this access may be the one lost.
            Err(_) => at,
        };
        if lost > self.recent_horizon.load(Ordering::Relaxed) {
            self.recent_horizon.fetch_max(lost, Ordering::Relaxed);
        }
    }

    /// The key of `hash`'s last access per the LRU table, or the table's horizon.
    fn recent_at(&self, hash: u64) -> u32 {
        let word = self.recent[hash as usize & (RECENT_SLOTS - 1)].load(Ordering::Relaxed);
        if word != 0 && word >> 32 == hash >> 32 {
            word as u32
        } else {
            self.recent_horizon.load(Ordering::Relaxed)
        }
    }

    /// Sets a key's clock as RESTORE's IDLETIME (seconds idle) or FREQ (the counter) ask.
    pub fn restore(&self, db: u16, key: &[u8], idle: Option<u64>, freq: Option<u8>) {
        let now = unix_seconds();
        let hash = hash(db, key);
        if !self.lfu() {
            let idle = idle.unwrap_or(0).min(u64::from(now)) as u32;
            self.set_recent(hash, now - idle);
            return;
        }
        let mut shard = self.shard(hash);
        let entry = shard.entries.entry(hash).or_insert(Entry { at: now, ldt: minutes(now), counter: LFU_INIT_VAL });
        if let Some(idle) = idle {
            entry.at = now.saturating_sub(idle.min(u64::from(u32::MAX)) as u32);
        }
        if let Some(freq) = freq {
            entry.counter = freq;
            entry.ldt = minutes(now);
        }
        if shard.entries.len() > SHARD_CAP {
            shrink(&mut shard);
        }
    }

    /// Seconds since the key's last access (OBJECT IDLETIME); for a key with no entry, since the horizon.
    pub fn idle_seconds(&self, db: u16, key: &[u8]) -> u64 {
        let now = unix_seconds();
        let hash = hash(db, key);
        let at = if self.lfu() {
            let shard = self.shard(hash);
            shard.entries.get(&hash).map_or(shard.horizon, |entry| entry.at)
        } else {
            self.recent_at(hash)
        };
        u64::from(now.saturating_sub(at))
    }

    /// The key's LFU counter decayed to now (OBJECT FREQ); for a key with no entry, a new key's counter
    /// decayed since the horizon.
    pub fn frequency(&self, db: u16, key: &[u8]) -> u8 {
        let now = unix_seconds();
        let hash = hash(db, key);
        let shard = self.shard(hash);
        let (counter, ldt) =
            shard.entries.get(&hash).map_or((LFU_INIT_VAL, minutes(shard.horizon)), |e| (e.counter, e.ldt));
        self.decayed(counter, ldt, now)
    }

    /// Entries held (for tests and INFO-like figures).
    pub fn len(&self) -> usize {
        let recent = self.recent.iter().filter(|slot| slot.load(Ordering::Relaxed) != 0).count();
        recent
            + self
                .shards
                .iter()
                .map(|shard| shard.lock().unwrap_or_else(|p| p.into_inner()).entries.len())
                .sum::<usize>()
    }

    /// True when no key has an entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Drops the older half of a full shard; the newest access dropped becomes its horizon.
fn shrink(shard: &mut Shard) {
    let mut times: Vec<u32> = shard.entries.values().map(|entry| entry.at).collect();
    let middle = times.len() / 2;
    let (_, cutoff, _) = times.select_nth_unstable(middle);
    let cutoff = *cutoff;
    let mut dropped_newest = shard.horizon;
    shard.entries.retain(|_, entry| {
        let keep = entry.at > cutoff;
        if !keep {
            dropped_newest = dropped_newest.max(entry.at);
        }
        keep
    });
    shard.horizon = dropped_newest;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_shard_keeps_its_newer_half_and_moves_its_horizon() {
        let mut shard = Shard { horizon: 100, ..Shard::default() };
        for i in 0..=SHARD_CAP as u32 {
            shard.entries.insert(u64::from(i), Entry { at: 1000 + i, ldt: 0, counter: LFU_INIT_VAL });
        }
        shrink(&mut shard);
        assert!(shard.entries.len() <= SHARD_CAP / 2 + 1);
        assert!(shard.entries.values().all(|entry| entry.at > shard.horizon));
        assert_eq!(shard.horizon, 1000 + SHARD_CAP as u32 / 2);
    }

    #[test]
    fn lru_table_keeps_access_times_and_a_lower_bound_for_evicted_keys() {
        let clock = AccessClock::default();
        let start = clock.recent_horizon.load(Ordering::Relaxed);
        // Two keys' hashes sharing a slot: the second evicts the first, whose time becomes the horizon.
        let first = 7u64 << 32 | 5;
        let second = 9u64 << 32 | 5;
        clock.set_recent(first, start + 100);
        assert_eq!(clock.recent_at(first), start + 100);
        assert_eq!(clock.recent_at(second), start, "never accessed: the server's start");
        clock.set_recent(second, start + 200);
        assert_eq!(clock.recent_at(second), start + 200);
        assert_eq!(clock.recent_at(first), start + 100, "evicted: the horizon, its own last access");
        // RESTORE IDLETIME and an untouched key through the public calls.
        clock.restore(0, b"r", Some(1000), None);
        assert!((1000..=1001).contains(&clock.idle_seconds(0, b"r")));
        clock.touch(0, b"r");
        assert!(clock.idle_seconds(0, b"r") <= 1);
    }

    #[test]
    fn lfu_counter_grows_logarithmically_and_decays_per_period() {
        let clock = AccessClock::default();
        clock.configure("allkeys-lfu", 10, 1);
        assert_eq!(clock.frequency(0, b"k"), LFU_INIT_VAL);
        clock.touch(0, b"k");
        assert_eq!(clock.frequency(0, b"k"), LFU_INIT_VAL + 1, "up to the initial value plus one, p = 1");
        for _ in 0..1000 {
            clock.touch(0, b"k");
        }
        let counter = clock.frequency(0, b"k");
        // With factor 10, a thousand hits reach about 5 + 14 (Redis's table: 100 hits ≈ 10, 1K ≈ 18).
        assert!((12..=30).contains(&counter), "{counter}");
        assert_eq!(clock.decayed(counter, 0, 60 * 3), counter - 3);
        assert_eq!(minutes_since(65530, 4), 9);
        clock.restore(0, b"r", Some(1000), Some(100));
        assert_eq!(clock.frequency(0, b"r"), 100);
        assert!((1000..=1001).contains(&clock.idle_seconds(0, b"r")));
    }
}
