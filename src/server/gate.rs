//! Where a command runs: inline on a runtime worker (the fast path) or on a thread of its own, and the
//! gate that keeps the two from ever waiting on each other.
//!
//! # Why
//! Commands are synchronous. Run on a tokio worker (2 workers on 2 cores), a command that takes seconds
//! (KEYS over millions of keys, SORT of a huge list) holds that worker; two of them and nothing else is
//! served, not even PING. Running every command off the workers (`block_in_place`) fixes that but costs a
//! thread hand-off per read, which measured 3-5× slower for pipelined and single GET/SET.
//!
//! # How
//! - Commands whose cost is bounded by their own arguments ([`runs_inline`]: Redis's FAST commands and a
//!   few argument-bounded writes such as SET and MSET) run inline on the worker, a pipeline at a time.
//! - Everything else runs in `block_in_place`: the worker's other tasks move to another thread while it
//!   runs, so however long it takes, the runtime keeps serving.
//! - The gate: an inline batch is admitted only while no off-worker command runs, and an off-worker
//!   command starts only once the inline batches in progress have finished (a few microseconds). So an
//!   inline command never waits for a slot lock, the command lock or anything else held by a long
//!   command: it would run off the worker instead. While a long command runs, every request takes the
//!   (slower, never stalling) off-worker path.
//! - Scripts (EVAL, EVALSHA, FCALL and their `_RO` forms) run inline too, since nearly all are short;
//!   one that runs past `script::current::HANDOFF_AFTER` hands its worker's other tasks off
//!   (`block_in_place` from the Lua count hook) and turns its batch into off-worker work
//!   ([`leave_inline_batch`]), so from then on it is a long command like any other.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::cmd::spec::Flags;
use crate::cmd::CommandSpec;

/// Commands without Redis's FAST flag whose work is still bounded by their arguments in Velo (a value
/// of any size is one engine operation; a split collection is deleted in O(1)).
const ARGUMENT_BOUNDED: &[&str] = &[
    "set",
    "setex",
    "psetex",
    "mset",
    "msetnx",
    "setrange",
    "setbit",
    "getrange",
    "substr",
    "bitfield",
    "del",
    "unlink",
    "subscribe",
    "unsubscribe",
    "psubscribe",
    "punsubscribe",
    "ssubscribe",
    "sunsubscribe",
    "geoadd",
    "geopos",
    "geohash",
    "geodist",
    "bf.add",
    "bf.madd",
    "bf.exists",
    "bf.mexists",
    "bf.card",
];

/// True if `spec` (a top-level command) may run inline on a runtime worker.
pub fn runs_inline(spec: &CommandSpec) -> bool {
    spec.has(Flags::FAST) || ARGUMENT_BOUNDED.contains(&spec.fullname) || crate::script::runs_script(spec)
}

/// The largest LRANGE index (either sign) that still runs inline: the reply then holds at most this many
/// items and the walk to the first one reads at most this many chunks.
const INLINE_RANGE_INDEX: i64 = 1024;

/// [`runs_inline`] for one request: also an LRANGE whose indexes (both from the head or both from the
/// tail, within `INLINE_RANGE_INDEX`, 1024) bound its work as a GETRANGE's are bounded. Off the worker, each
/// such request cost a thread hand-off and, while it ran, took every other client's requests off the
/// workers as well (redis-benchmark's LRANGE_100 and LRANGE_600 are `LRANGE mylist 0 99` / `0 599`).
pub fn request_runs_inline(spec: &CommandSpec, argv: &[bytes::Bytes]) -> bool {
    runs_inline(spec) || (spec.fullname == "lrange" && bounded_range(argv))
}

/// True for `LRANGE key start stop` with both indexes on one side and at most [`INLINE_RANGE_INDEX`].
fn bounded_range(argv: &[bytes::Bytes]) -> bool {
    let [_, _, start, stop] = argv else { return false };
    let index =
        |raw: &[u8]| crate::resp::decode::parse_int(raw).filter(|at| at.unsigned_abs() <= INLINE_RANGE_INDEX as u64);
    match (index(start), index(stop)) {
        (Some(start), Some(stop)) => (start >= 0) == (stop >= 0),
        _ => false,
    }
}

thread_local! {
    /// The gate of the inline batch this thread runs, if any, and whether the batch has become
    /// off-worker work ([`leave_inline_batch`]).
    static BATCH: Cell<(*const Gate, bool)> = const { Cell::new((std::ptr::null(), false)) };
}

/// Turns this thread's inline batch, if it has one, into off-worker work: counted as off-worker (new
/// inline batches are refused, as for any long command) and no longer as inline (so that off-worker
/// commands such as SCRIPT KILL need not wait for it). For a command that found itself long after
/// starting inline (a script, see the module comment) and has left the worker.
pub fn leave_inline_batch() {
    BATCH.with(|batch| {
        let (gate, converted) = batch.get();
        if gate.is_null() || converted {
            return;
        }
        // SAFETY: the pointer is set by `try_inline` from the gate its guard borrows and cleared when that
        // guard drops, on this thread (the batch runs synchronously between the two).
        let gate = unsafe { &*gate };
        gate.off_worker.fetch_add(1, Ordering::SeqCst);
        gate.inline.fetch_sub(1, Ordering::SeqCst);
        batch.set((gate, true));
    });
}

/// Counts inline batches and off-worker commands in progress (see the module comment).
#[derive(Debug, Default)]
pub struct Gate {
    inline: AtomicUsize,
    off_worker: AtomicUsize,
}

/// An admitted inline batch; dropping it ends the batch.
pub struct InlineGuard<'a>(&'a Gate);

/// An off-worker command (or batch) in progress; dropping it ends it.
pub struct OffWorkerGuard<'a>(&'a Gate);

impl Gate {
    /// Admits an inline batch, unless an off-worker command is running.
    pub fn try_inline(&self) -> Option<InlineGuard<'_>> {
        // SeqCst on both sides (Dekker): either this sees the off-worker count, or the off-worker side
        // sees this batch and waits for it.
        self.inline.fetch_add(1, Ordering::SeqCst);
        if self.off_worker.load(Ordering::SeqCst) > 0 {
            self.inline.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        BATCH.with(|batch| batch.set((self, false)));
        Some(InlineGuard(self))
    }

    /// Starts off-worker work: waits until the inline batches in progress have finished. New ones are
    /// not admitted meanwhile, so this waits for at most one batch per worker. Call off the workers.
    pub fn off_worker(&self) -> OffWorkerGuard<'_> {
        self.off_worker.fetch_add(1, Ordering::SeqCst);
        let mut spins = 0u32;
        while self.inline.load(Ordering::SeqCst) > 0 {
            spins += 1;
            if spins < 100 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        OffWorkerGuard(self)
    }
}

impl Drop for InlineGuard<'_> {
    fn drop(&mut self) {
        let (_, converted) = BATCH.with(|batch| batch.replace((std::ptr::null(), false)));
        if converted {
            self.0.off_worker.fetch_sub(1, Ordering::SeqCst);
        } else {
            self.0.inline.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Drop for OffWorkerGuard<'_> {
    fn drop(&mut self) {
        self.0.off_worker.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn lrange(start: &str, stop: &str) -> bool {
        let argv: Vec<Bytes> =
            ["LRANGE", "mylist", start, stop].iter().map(|arg| Bytes::from(arg.to_string())).collect();
        bounded_range(&argv)
    }

    #[test]
    fn only_lranges_with_bounded_indexes_on_one_side_run_inline() {
        assert!(lrange("0", "99"));
        assert!(lrange("0", "599"));
        assert!(lrange("-100", "-1"));
        assert!(lrange("1024", "0"));
        assert!(!lrange("0", "-1"), "the whole list");
        assert!(!lrange("-1", "0"));
        assert!(!lrange("0", "1025"));
        assert!(!lrange("2000", "2001"), "a walk to the start");
        assert!(!lrange("0", "x"));
        assert!(!lrange("-9223372036854775808", "0"));
        assert!(!bounded_range(&[Bytes::from("LRANGE"), Bytes::from("k"), Bytes::from("0")]));
    }
}
