//! A cheap stopwatch for the dispatcher's per-command timing (INFO commandstats `usec`, the latency
//! histograms, the slow log, LATENCY events).
//!
//! # Why
//! Every command reads the clock twice (start and end, as Redis's `call()` does), and so does every
//! command a script calls: EVAL of a 10-GET script reads it 22 times. On this project's VMs the vDSO
//! `clock_gettime` behind [`Instant::now`] costs ~60 ns, a `rdtsc` ~25 ns; a profile of EVAL 10×GET put
//! `clock_gettime` at 4-8% of the server's samples (docs/performance.md §"Scripting").
//!
//! # How
//! On x86_64, when the kernel itself keeps time with the TSC (`current_clocksource` is `tsc`: it found the
//! counter invariant and synchronized across CPUs), a [`Stamp`] is a TSC reading, turned into time with a
//! rate measured once against [`Instant`] by a short background calibration (two bracketed pairs of
//! readings 20 ms apart; a pair whose readings a preemption split is taken again). Until that rate is
//! known, and everywhere else, a stamp is an [`Instant`]. A stamp remembers which it is, so a duration
//! never mixes the two.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

/// Picoseconds per TSC tick, once calibrated; 0 before (or when the TSC is not used).
static PICOS_PER_TICK: AtomicU64 = AtomicU64::new(0);
static CALIBRATE: Once = Once::new();

/// A point in time taken by [`now`].
#[derive(Debug, Clone, Copy)]
pub enum Stamp {
    /// A TSC reading (the rate is known).
    Tsc(u64),
    /// The standard clock.
    Std(Instant),
}

/// Now, for timing a command.
#[inline]
pub fn now() -> Stamp {
    match PICOS_PER_TICK.load(Ordering::Relaxed) {
        0 => {
            CALIBRATE.call_once(start_calibration);
            Stamp::Std(Instant::now())
        }
        _ => Stamp::Tsc(ticks()),
    }
}

impl Stamp {
    /// The time since this stamp was taken (zero if the counter went backwards).
    #[inline]
    pub fn elapsed(&self) -> Duration {
        match *self {
            Stamp::Std(instant) => instant.elapsed(),
            Stamp::Tsc(start) => {
                let picos = u128::from(PICOS_PER_TICK.load(Ordering::Relaxed));
                let ticks = u128::from(ticks().saturating_sub(start));
                Duration::from_nanos(u64::try_from(ticks * picos / 1000).unwrap_or(u64::MAX))
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn ticks() -> u64 {
    // SAFETY: `rdtsc` has no preconditions on x86_64; it is only used once `tsc_is_kernel_clock` said the
    // kernel trusts the counter.
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn ticks() -> u64 {
    0
}

/// True if the kernel keeps its own time with the TSC (so it found it invariant and in step on every CPU).
fn tsc_is_kernel_clock() -> bool {
    cfg!(target_arch = "x86_64")
        && std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .is_ok_and(|source| source.trim() == "tsc")
}

/// Starts the calibration on a thread of its own (the first command must not wait 20 ms for it).
fn start_calibration() {
    if !tsc_is_kernel_clock() {
        return;
    }
    let _ = std::thread::Builder::new().name("velo-clock".into()).spawn(|| {
        if let Some(picos) = calibrate(Duration::from_millis(20)) {
            PICOS_PER_TICK.store(picos, Ordering::Relaxed);
        }
    });
}

/// Measures picoseconds per tick over about `window`; `None` if no clean reading was had.
fn calibrate(window: Duration) -> Option<u64> {
    let (tsc0, at0) = paired_reading()?;
    std::thread::sleep(window);
    let (tsc1, at1) = paired_reading()?;
    let ticks = tsc1.checked_sub(tsc0).filter(|&t| t > 0)?;
    let picos = at1.duration_since(at0).as_nanos() * 1000 / u128::from(ticks);
    u64::try_from(picos).ok().filter(|&p| p > 0)
}

/// A TSC reading and an [`Instant`] taken together: the instant is bracketed by two TSC readings,
/// retried until they are close (no preemption in between).
fn paired_reading() -> Option<(u64, Instant)> {
    let mut best: Option<(u64, u64, Instant)> = None;
    for _ in 0..100 {
        let before = ticks();
        let at = Instant::now();
        let after = ticks();
        let gap = after.wrapping_sub(before);
        if best.is_none_or(|(best_gap, _, _)| gap < best_gap) {
            best = Some((gap, before + gap / 2, at));
        }
        // Well under a microsecond at any TSC rate: this pair was not split by a preemption.
        if gap < 2_000 {
            break;
        }
    }
    best.map(|(_, tsc, at)| (tsc, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_follow_the_standard_clock() {
        // Before or after calibration, a stamp's elapsed time matches the standard clock's.
        for _ in 0..2 {
            let stamp = now();
            let reference = Instant::now();
            std::thread::sleep(Duration::from_millis(30));
            let (measured, expected) = (stamp.elapsed(), reference.elapsed());
            assert!(measured >= Duration::from_millis(25), "{measured:?} for {expected:?}");
            assert!(measured <= expected + Duration::from_millis(5), "{measured:?} for {expected:?}");
            // Give the calibration thread time to finish for the second round.
            std::thread::sleep(Duration::from_millis(40));
        }
    }

    #[test]
    fn calibration_measures_a_plausible_rate() {
        if !tsc_is_kernel_clock() {
            return;
        }
        let picos = calibrate(Duration::from_millis(10)).expect("a rate");
        // Between 100 MHz and 10 GHz.
        assert!((100..=10_000).contains(&picos), "{picos} ps per tick");
    }
}
