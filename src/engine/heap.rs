//! Giving freed heap memory back to the system (issue 14, memory).
//!
//! A checkpoint frees a whole memtable at once: tens of MB of entries that the connection workers
//! allocated, freed on a checkpoint thread. mimalloc hands a block freed by another thread back to the
//! page's owner only when the owner next allocates from that page's size class, and purges (returns to the
//! system) a free page only during some later allocation or free. Idle workers do neither, so after a
//! load and its checkpoints the freed memory stayed resident: 300k keys, SAVE, RSS 88 → 112-148 MB with
//! an empty memtable (docs/performance.md). So a thread that freed a memtable collects its own heap, and
//! bumps an epoch; each worker collects its heap once per epoch, when it next goes idle
//! ([`collect_if_released`], a tokio `on_thread_park` hook: one atomic load per park otherwise).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bumped whenever a thread freed a large amount of memory that other threads allocated.
static RELEASE_EPOCH: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The epoch this thread last collected its heap at.
    static COLLECTED_AT: Cell<u64> = const { Cell::new(0) };
}

extern "C" {
    /// mimalloc's `mi_collect(force)`: frees the calling thread's empty pages (taking in the blocks other
    /// threads freed) and, forced, purges the arenas' free memory at once.
    fn mi_collect(force: bool);
}

fn collect() {
    // The `mimalloc` crate links the C library (and with it `mi_collect`) into whatever links this crate.
    use mimalloc as _;
    // SAFETY: mi_collect only walks and trims the calling thread's own heap and the shared arenas, under
    // mimalloc's own synchronisation; it is callable from any thread at any time.
    unsafe { mi_collect(true) };
}

/// Called by a thread that has just freed memory other threads allocated (an emptied memtable): collects
/// its own heap and asks every worker to collect its own when next idle.
pub fn released() {
    RELEASE_EPOCH.fetch_add(1, Ordering::Relaxed);
    collect();
}

/// A worker about to go idle: collects its heap if memory was released since it last did.
pub fn collect_if_released() {
    let epoch = RELEASE_EPOCH.load(Ordering::Relaxed);
    if COLLECTED_AT.with(|seen| seen.replace(epoch)) != epoch {
        collect();
    }
}
