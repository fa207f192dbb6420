//! Measurements behind INFO that need more than a counter: the instantaneous rates (ops/sec and network
//! kbps, sampled 10 times a second over the last 16 samples, as Redis), per-command latency histograms
//! (INFO latencystats), socket read/write counts, and the memory peak.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use crate::cmd::table::COMMAND_COUNT;

/// Samples kept per instantaneous metric (Redis's STATS_METRIC_SAMPLES).
const SAMPLES: usize = 16;
/// Sub-buckets per power of two in a latency histogram (about 9% resolution).
const SUB_BUCKETS: usize = 8;
/// Powers of two a histogram covers (nanoseconds up to 2^48, over three days).
const POWERS: usize = 48;

/// One command's latency histogram, in nanoseconds, log-linear.
pub struct Histogram {
    counts: Vec<AtomicU64>,
}

impl Histogram {
    fn new() -> Histogram {
        Histogram { counts: (0..POWERS * SUB_BUCKETS).map(|_| AtomicU64::new(0)).collect() }
    }

    fn index(ns: u64) -> usize {
        let ns = ns.max(1);
        let power = 63 - ns.leading_zeros() as usize;
        if power < 3 {
            return ns as usize;
        }
        let sub = ((ns >> (power - 3)) & (SUB_BUCKETS as u64 - 1)) as usize;
        (power * SUB_BUCKETS + sub).min(POWERS * SUB_BUCKETS - 1)
    }

    /// The largest value that falls in bucket `index`.
    fn upper(index: usize) -> u64 {
        if index < SUB_BUCKETS {
            return index as u64;
        }
        let (power, sub) = (index / SUB_BUCKETS, (index % SUB_BUCKETS) as u64);
        // Bucket `sub` of power `power` holds [(8 + sub) * step, (9 + sub) * step).
        let step = 1u64 << (power - 3);
        (9 + sub) * step - 1
    }

    fn record(&self, ns: u64) {
        self.counts[Self::index(ns)].fetch_add(1, Ordering::Relaxed);
    }

    /// The latency (ns) below which `percentile` percent of the calls fall; `None` if nothing was recorded.
    pub fn percentile(&self, percentile: f64) -> Option<u64> {
        let counts: Vec<u64> = self.counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let wanted = ((percentile / 100.0) * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (index, count) in counts.iter().enumerate() {
            seen += count;
            if seen >= wanted {
                return Some(Self::upper(index));
            }
        }
        Some(Self::upper(counts.len() - 1))
    }

    fn reset(&self) {
        for count in &self.counts {
            count.store(0, Ordering::Relaxed);
        }
    }
}

struct Rates {
    last: Option<(Instant, [u64; 3])>,
    samples: [[f64; SAMPLES]; 3],
    next: usize,
}

/// Everything this module measures.
pub struct Metrics {
    histograms: Vec<OnceLock<Histogram>>,
    rates: Mutex<Rates>,
    /// Socket reads that returned data.
    pub reads: AtomicU64,
    /// Socket writes (flushes).
    pub writes: AtomicU64,
    /// Highest resident set size seen, bytes.
    pub peak_rss: AtomicU64,
    /// Resident set size when the server started, bytes.
    pub startup_rss: u64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            histograms: (0..COMMAND_COUNT).map(|_| OnceLock::new()).collect(),
            rates: Mutex::new(Rates { last: None, samples: [[0.0; SAMPLES]; 3], next: 0 }),
            reads: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            peak_rss: AtomicU64::new(rss_bytes()),
            startup_rss: rss_bytes(),
        }
    }
}

/// The process's resident set size in bytes (Linux `/proc/self/statm`; 0 elsewhere).
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * if page > 0 { page as u64 } else { 4096 }
}

impl Metrics {
    /// Records one call's duration for its command (by `CommandSpec::id`).
    pub fn record_latency(&self, command: usize, ns: u64) {
        if let Some(slot) = self.histograms.get(command) {
            slot.get_or_init(Histogram::new).record(ns);
        }
    }

    /// A command's histogram, if it was ever called.
    pub fn histogram(&self, command: usize) -> Option<&Histogram> {
        self.histograms.get(command).and_then(OnceLock::get)
    }

    /// Adds a sample of the counters (commands, bytes in, bytes out); the server calls this 10 times a second.
    pub fn sample(&self, counters: [u64; 3]) {
        let now = Instant::now();
        let mut rates = self.rates.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((then, before)) = rates.last {
            let seconds = now.duration_since(then).as_secs_f64().max(1e-3);
            let at = rates.next;
            for (i, (value, old)) in counters.iter().zip(before).enumerate() {
                rates.samples[i][at] = value.saturating_sub(old) as f64 / seconds;
            }
            rates.next = (at + 1) % SAMPLES;
        }
        rates.last = Some((now, counters));
        let rss = rss_bytes();
        self.peak_rss.fetch_max(rss, Ordering::Relaxed);
    }

    /// Per-second averages over the recent samples: commands, bytes in, bytes out.
    pub fn instantaneous(&self) -> [f64; 3] {
        let rates = self.rates.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = [0.0; 3];
        for (i, samples) in rates.samples.iter().enumerate() {
            out[i] = samples.iter().sum::<f64>() / SAMPLES as f64;
        }
        out
    }

    /// CONFIG RESETSTAT: latency histograms and the peak.
    pub fn reset(&self) {
        for histogram in self.histograms.iter().filter_map(OnceLock::get) {
            histogram.reset();
        }
        self.peak_rss.store(rss_bytes(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_bound_their_values() {
        for ns in [1u64, 7, 8, 9, 15, 16, 100, 1000, 3007, 123_456_789] {
            let upper = Histogram::upper(Histogram::index(ns));
            assert!(upper >= ns && (upper as f64) <= ns as f64 * 1.13 + 1.0, "{ns} -> {upper}");
        }
        let h = Histogram::new();
        for ns in 1..=100u64 {
            h.record(ns * 1000);
        }
        let p50 = h.percentile(50.0).unwrap();
        assert!((50_000..=56_000).contains(&p50), "{p50}");
        assert!(h.percentile(100.0).unwrap() >= 100_000);
    }
}
