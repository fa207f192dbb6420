//! Grouped WAL writes: while a group is open on a thread (the server opens one around each pass over a
//! connection's pipelined requests), the single-key WAL appends that thread makes in `everysec`/`no` slots
//! are held in each slot's WAL buffer and written with one `pwrite` per slot when the group closes, before
//! the server sends any reply of the pass. Redis does the same with its AOF: one write per event-loop turn,
//! before the replies.
//!
//! The promise stays as in docs/recovery.md: a write is acknowledged only once its record is in the OS.
//! Held records are visible to later commands of the same pass (whose replies wait for the same write), and
//! any other thread that locks the slot writes them out first (`WalWriter::flush_foreign`), so no other
//! client can read a value whose record is not yet in the OS. A transaction's records are held too (a
//! script's writes and their `Commit` record go out in one write); a commit that goes to the transaction
//! log first writes what the group holds in its slots, so the log never names a record the OS lacks.
//! `fsync always` never holds. A non-held write goes out after anything held before it, so a slot's WAL
//! stays in append order. A reply that leaves before the pass ends (a blocked client that this thread's
//! write served answers from its own connection) is preceded by `Engine::write_group_now`.
//!
//! A group holds at most about [`HELD_CAP`] bytes: a script or EXEC of many large writes would otherwise
//! keep all its records in memory until its pass ends. Between commands (no slot locked) the server calls
//! `Engine::write_group_if_over_cap`, which writes what the group holds once past the cap and keeps the
//! group open. That is what an ungrouped write does at once, so the rules above still hold: records reach
//! each slot's WAL in append order, a transaction's `Commit` record (or its `txlog` commit, which writes
//! its slots' held records first) still comes after its records, and records of a transaction without its
//! commit are ignored by recovery (docs/recovery.md §"Transactions").

use std::cell::{Cell, RefCell};
use std::thread::ThreadId;

thread_local! {
    /// This thread's id (`std::thread::current` clones a handle at every call).
    static ME: ThreadId = std::thread::current().id();
    /// The engine whose group is open on this thread (its slot configuration's address), or 0.
    static OPEN: Cell<usize> = const { Cell::new(0) };
    /// Slots of that engine holding records of this group.
    static HELD: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
    /// Bytes of records this thread's group holds (an upper bound: another thread that writes them out
    /// for it does not lower it).
    static HELD_BYTES: Cell<usize> = const { Cell::new(0) };
}

/// Past this many held bytes a group's records are written out between commands (see the module comment).
pub const HELD_CAP: usize = 4 << 20;

/// Opens a group for `engine` on this thread; false if one is already open (the outer one writes).
pub(crate) fn open(engine: usize) -> bool {
    OPEN.with(|open| {
        if open.get() != 0 {
            return false;
        }
        open.set(engine);
        true
    })
}

/// The calling thread's id (the WAL writer asks for it on every slot lock).
pub(crate) fn this_thread() -> ThreadId {
    // During the thread's exit the cached id may be gone already.
    ME.try_with(|me| *me).unwrap_or_else(|_| std::thread::current().id())
}

/// Closes this thread's group, returning the slots whose held records must now be written.
pub(crate) fn close() -> Vec<usize> {
    OPEN.with(|open| open.set(0));
    HELD_BYTES.with(|bytes| bytes.set(0));
    HELD.with(|held| std::mem::take(&mut *held.borrow_mut()))
}

/// True if a group of `engine` is open on this thread; then notes `slot` as holding records of it.
pub(crate) fn hold(engine: usize, slot: usize) -> bool {
    if OPEN.with(|open| open.get()) != engine {
        return false;
    }
    HELD.with(|held| {
        let mut held = held.borrow_mut();
        if !held.contains(&slot) {
            held.push(slot);
        }
    });
    true
}

/// Counts `bytes` more held by this thread's group.
pub(crate) fn note_held(bytes: usize) {
    HELD_BYTES.with(|held| held.set(held.get().saturating_add(bytes)));
}

/// Counts `bytes` of this thread's group as written.
pub(crate) fn note_written(bytes: usize) {
    HELD_BYTES.with(|held| held.set(held.get().saturating_sub(bytes)));
}

/// Bytes this thread's group holds for `engine` (0 if no group of it is open).
pub(crate) fn held_bytes(engine: usize) -> usize {
    if OPEN.with(|open| open.get()) != engine {
        return 0;
    }
    HELD_BYTES.with(|held| held.get())
}

/// The slots holding records of this thread's group (they stay listed: the close checks them all).
pub(crate) fn held_slots() -> Vec<usize> {
    HELD.with(|held| held.borrow().clone())
}
