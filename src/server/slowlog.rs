//! The slow log (SLOWLOG) and the latency monitor (LATENCY): what the dispatcher records after every
//! command, with Redis 7.0's rules.
//!
//! - Slow log: a command that took at least `slowlog-log-slower-than` microseconds (negative disables) is
//!   logged, newest first, at most `slowlog-max-len` entries. As Redis, an entry keeps at most 32 arguments
//!   (the last says how many more there were) and at most 128 bytes of each (with how many more bytes).
//! - Latency events: a command that took at least `latency-monitor-threshold` milliseconds (0 disables)
//!   adds a sample to the event `command`, or `fast-command` for commands flagged fast; one sample per
//!   second per event (the largest), 160 samples kept, plus the all-time maximum.
//! - Latency histograms: every command's duration goes into its cumulative distribution in power-of-two
//!   buckets, the shape Redis's `LATENCY HISTOGRAM` reports (see [`Histogram`]).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use bytes::Bytes;

/// Arguments kept per slow log entry.
pub const SLOWLOG_MAX_ARGC: usize = 32;
/// Bytes kept per slow log argument.
pub const SLOWLOG_MAX_STRING: usize = 128;
/// Samples kept per latency event.
pub const LATENCY_TS_LEN: usize = 160;

/// One slow log entry.
#[derive(Debug, Clone)]
pub struct SlowEntry {
    /// Unique, growing id.
    pub id: u64,
    /// Unix seconds when it was logged.
    pub time: u64,
    /// Duration in microseconds.
    pub duration: u64,
    /// The arguments, trimmed as Redis trims them.
    pub argv: Vec<Bytes>,
    /// Client address.
    pub peer: String,
    /// Client name (empty when unnamed).
    pub name: Bytes,
}

/// The slow log.
#[derive(Default)]
pub struct SlowLog {
    inner: Mutex<SlowLogInner>,
}

#[derive(Default)]
struct SlowLogInner {
    entries: VecDeque<SlowEntry>,
    next_id: u64,
}

/// The arguments a slow log entry keeps of `argv`.
pub fn trim_argv(argv: &[Bytes]) -> Vec<Bytes> {
    let kept = argv.len().min(SLOWLOG_MAX_ARGC);
    let mut out = Vec::with_capacity(kept);
    for (index, arg) in argv.iter().take(kept).enumerate() {
        if kept != argv.len() && index == kept - 1 {
            out.push(Bytes::from(format!("... ({} more arguments)", argv.len() - kept + 1)));
        } else if arg.len() > SLOWLOG_MAX_STRING {
            let mut trimmed = arg[..SLOWLOG_MAX_STRING].to_vec();
            trimmed.extend_from_slice(format!("... ({} more bytes)", arg.len() - SLOWLOG_MAX_STRING).as_bytes());
            out.push(Bytes::from(trimmed));
        } else {
            out.push(arg.clone());
        }
    }
    out
}

impl SlowLog {
    /// Logs a command if it was slow enough, keeping at most `max_len` entries. (Redis also trims when
    /// nothing is logged; here [`SlowLog::trim`] runs when `slowlog-max-len` changes, which is the same.)
    pub fn record(&self, threshold_us: i64, max_len: usize, duration_us: u64, entry: impl FnOnce() -> SlowEntry) {
        if threshold_us < 0 || duration_us < threshold_us as u64 {
            return;
        }
        let mut entry = entry();
        let mut inner = self.lock();
        entry.id = inner.next_id;
        inner.next_id += 1;
        inner.entries.push_front(entry);
        inner.entries.truncate(max_len);
    }

    /// Keeps the newest `max_len` entries.
    pub fn trim(&self, max_len: usize) {
        self.lock().entries.truncate(max_len);
    }

    /// The newest `count` entries.
    pub fn get(&self, count: usize) -> Vec<SlowEntry> {
        self.lock().entries.iter().take(count).cloned().collect()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every entry (ids keep growing).
    pub fn reset(&self) {
        self.lock().entries.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SlowLogInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One latency event's history.
#[derive(Debug, Clone)]
pub struct EventSeries {
    /// (unix seconds, milliseconds), oldest first, at most [`LATENCY_TS_LEN`].
    pub samples: VecDeque<(u64, u64)>,
    /// All-time maximum, in milliseconds.
    pub max: u64,
}

/// Latency events by name.
#[derive(Default)]
pub struct LatencyEvents {
    events: Mutex<BTreeMap<String, EventSeries>>,
}

impl LatencyEvents {
    /// Adds a sample (Redis's `latencyAddSample`): within one second only the largest sample is kept.
    pub fn add(&self, event: &str, now_s: u64, latency_ms: u64) {
        let mut events = self.lock();
        let series = events
            .entry(event.to_string())
            .or_insert_with(|| EventSeries { samples: VecDeque::with_capacity(LATENCY_TS_LEN), max: 0 });
        series.max = series.max.max(latency_ms);
        if let Some(last) = series.samples.back_mut() {
            if last.0 == now_s {
                last.1 = last.1.max(latency_ms);
                return;
            }
        }
        if series.samples.len() == LATENCY_TS_LEN {
            series.samples.pop_front();
        }
        series.samples.push_back((now_s, latency_ms));
    }

    /// Every event with its series.
    pub fn all(&self) -> Vec<(String, EventSeries)> {
        self.lock().iter().map(|(name, series)| (name.clone(), series.clone())).collect()
    }

    /// One event's series.
    pub fn get(&self, event: &[u8]) -> Option<(String, EventSeries)> {
        let name = std::str::from_utf8(event).ok()?;
        self.lock().get(name).map(|series| (name.to_string(), series.clone()))
    }

    /// Removes one event (or all with `None`); how many were removed.
    pub fn reset(&self, event: Option<&[u8]>) -> usize {
        let mut events = self.lock();
        match event {
            None => {
                let count = events.len();
                events.clear();
                count
            }
            Some(name) => std::str::from_utf8(name).ok().and_then(|name| events.remove(name)).map_or(0, |_| 1),
        }
    }

    /// True when no event has been recorded.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, EventSeries>> {
        self.events.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Buckets of a [`Histogram`]: level `k` holds durations up to about `1024 << k` nanoseconds; the last
/// one reaches past one second, where Redis clamps.
pub const HISTOGRAM_LEVELS: usize = 21;

/// A command's latency distribution, as Redis's HDR histogram (1 ns .. 1 s, 2 significant digits) read
/// by its log-2 iterator from 1024 ns: level `k` counts durations whose HDR bucket lies at or below
/// `L + L/128 - 1` ns with `L = 1024 << k`, and is reported as `(L + L/128 - 1) / 1000` microseconds.
#[derive(Default)]
pub struct Histogram {
    levels: [AtomicU64; HISTOGRAM_LEVELS],
}

impl Histogram {
    /// Records a duration in microseconds.
    pub fn record(&self, duration_us: u64) {
        let nanos = duration_us.saturating_mul(1000).clamp(1, 1_000_000_000);
        let level = (0..HISTOGRAM_LEVELS)
            .find(|&k| {
                let start = 1024u64 << k;
                nanos < start + start / 128
            })
            .unwrap_or(HISTOGRAM_LEVELS - 1);
        self.levels[level].fetch_add(1, Ordering::Relaxed);
    }

    /// Total count.
    pub fn calls(&self) -> u64 {
        self.levels.iter().map(|l| l.load(Ordering::Relaxed)).sum()
    }

    /// (upper bound in microseconds, cumulative count) for every level that adds to the count.
    pub fn cumulative(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut total = 0;
        for (k, level) in self.levels.iter().enumerate() {
            let count = level.load(Ordering::Relaxed);
            if count > 0 {
                total += count;
                let start = 1024u64 << k;
                out.push(((start + start / 128 - 1) / 1000, total));
            }
        }
        out
    }

    /// Forgets everything (CONFIG RESETSTAT).
    pub fn reset(&self) {
        for level in &self.levels {
            level.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_arguments_and_strings_as_redis() {
        let argv: Vec<Bytes> = (0..40).map(|i| Bytes::from(format!("a{i}"))).collect();
        let trimmed = trim_argv(&argv);
        assert_eq!(trimmed.len(), 32);
        assert_eq!(trimmed[31], Bytes::from("... (9 more arguments)"));
        let long = vec![Bytes::from(vec![b'x'; 200])];
        let trimmed = trim_argv(&long);
        assert_eq!(trimmed[0].len(), 128 + "... (72 more bytes)".len());
        assert!(trimmed[0].ends_with(b"... (72 more bytes)"));
    }

    #[test]
    fn histogram_levels_match_redis_bucket_labels() {
        let histogram = Histogram::default();
        for us in [0, 1, 2, 3, 40, 2_000_000] {
            histogram.record(us);
        }
        let labels: Vec<u64> = histogram.cumulative().iter().map(|(us, _)| *us).collect();
        // 0 and 1 µs (≤ 1031 ns) in the first level; 2 µs ≤ 2063 ns; 3 µs ≤ 4127 ns; 40 µs ≤ 66047 ns;
        // more than a second is clamped to one second (≤ 1082130431 ns).
        assert_eq!(labels, vec![1, 2, 4, 66, 1082130]);
        assert_eq!(histogram.cumulative().last().unwrap().1, 6);
    }

    #[test]
    fn latency_keeps_the_largest_sample_per_second() {
        let events = LatencyEvents::default();
        events.add("command", 10, 5);
        events.add("command", 10, 7);
        events.add("command", 10, 3);
        events.add("command", 11, 1);
        let (_, series) = events.get(b"command").unwrap();
        assert_eq!(series.samples, VecDeque::from(vec![(10, 7), (11, 1)]));
        assert_eq!(series.max, 7);
        assert_eq!(events.reset(Some(b"command")), 1);
        assert!(events.is_empty());
    }
}
