//! The script running on this thread: what `redis.call`, `redis.setresp` and the count hook reach while
//! it runs.
//!
//! A run publishes its state (the caller's [`Ctx`], the read-only flag, the chosen protocol, when it
//! started) through a thread-local pointer for exactly the length of the run, so that the interpreter's
//! functions are created once per interpreter instead of once per run (a scoped closure, a settings
//! userdata and two registry entries per script were a large part of a short script's cost). A script
//! runs start to end on the thread that started it (a hand-off to tokio's blocking pool moves the
//! worker's other tasks, not the script), so the thread-local is the script's.

use std::cell::{Cell, RefCell};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crate::cmd::Ctx;
use crate::resp::Protocol;

/// How much CPU time a script spends on its worker thread before the worker's other tasks are handed to
/// another thread (the count hook checks; see [`hook`] and [`Budget`]). Short scripts, nearly all of
/// them, pay no hand-off.
pub const HANDOFF_AFTER: Duration = Duration::from_millis(2);

/// Wall time after which a script hands off whatever CPU time it used: one that waits (for a slot lock,
/// or for a core on a loaded machine) that long holds its worker's other connections as long.
pub const HANDOFF_AFTER_WALL: Duration = Duration::from_millis(100);

/// The state of one run.
pub struct Current<'a> {
    /// The calling client's context (a `Ctx<'_>` with its lifetime erased, see [`Current::ctx`]).
    ctx: RefCell<*mut ()>,
    /// Called by a `_RO` command, or a `no-writes` script.
    pub read_only: bool,
    /// Set when the script calls a write command (it can no longer be killed).
    pub wrote: &'a AtomicBool,
    /// 2 or 3 (`redis.setresp`).
    pub resp: Cell<u8>,
    /// When the run started.
    pub started: Instant,
    /// The server (its shutdown flag, for the hook).
    server: &'a crate::server::Server,
    /// The worker's other tasks were handed off (or the run is not on a worker).
    handed_off: Cell<bool>,
    /// When the long-running script last asked for a hand-off (see [`hook`]).
    last_handoff: Cell<Option<Instant>>,
    /// Its time budget on the worker.
    budget: Cell<Budget>,
}

/// Decides when a script has run long enough to leave its worker: by the thread's CPU time, not wall
/// time, so that a short script preempted on a loaded machine (its wall time passing
/// [`HANDOFF_AFTER`] while it waits for a core) keeps its worker, since a hand-off turns every request
/// of the server into off-worker work while it lasts (`server::gate`). The thread's CPU clock is a
/// system call, so it is read only by the count hook (every 10,000 instructions, which a short script
/// never reaches): once at its first call, as the base, and again only once [`HANDOFF_AFTER`] of wall
/// time has passed. The CPU time before that first call is taken as the wall time it took, but at most
/// half the budget (10,000 instructions take tens of microseconds; more wall time than that is mostly
/// waiting). A script that has run for [`HANDOFF_AFTER_WALL`] hands off in any case.
#[derive(Debug, Clone, Copy, Default)]
pub struct Budget {
    /// At the hook's first call: the wall time since the script started, and the thread's CPU clock.
    base: Option<(Duration, Duration)>,
}

impl Budget {
    /// True if a script that has run for `wall` should hand off now; `cpu` reads the thread's CPU clock.
    pub fn spent(&mut self, wall: Duration, cpu: impl FnOnce() -> Duration) -> bool {
        let Some((wall_before, cpu_base)) = self.base else {
            self.base = Some((wall, cpu()));
            return wall >= HANDOFF_AFTER_WALL;
        };
        if wall >= HANDOFF_AFTER_WALL {
            return true;
        }
        if wall < HANDOFF_AFTER {
            return false;
        }
        wall_before.min(HANDOFF_AFTER / 2) + cpu().saturating_sub(cpu_base) >= HANDOFF_AFTER
    }
}

/// The calling thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`); zero if the clock cannot be read.
pub fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid, writable timespec for the call's duration.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(u64::try_from(now.tv_sec).unwrap_or(0), u32::try_from(now.tv_nsec).unwrap_or(0))
}

/// How often a script that has run past [`HANDOFF_AFTER`] asks for the hand-off again. `block_in_place`
/// takes the worker's core back if the new thread has not claimed it by the time the pause ends (a busy
/// machine can delay that thread's start), and nothing tells us which happened; asking again costs a
/// pause of a few microseconds when the core is already gone, and makes an endless script release its
/// worker on a loaded machine too.
const HANDOFF_RETRY: Duration = Duration::from_millis(50);

thread_local! {
    static CURRENT: Cell<*const ()> = const { Cell::new(std::ptr::null()) };
    /// The running script's start in Unix milliseconds (0: no script runs on this thread).
    static TIME_SNAPSHOT: Cell<u64> = const { Cell::new(0) };
}

/// The clock the server's engine reads for key expiry: inside a script, the time the script started, as
/// Redis 7.0's `keyIsExpired` uses the script's time snapshot (a key cannot expire half way through a
/// script, whose effects must not depend on when each command ran); elsewhere the system clock. TTL and
/// PTTL read the live clock in both (`Ctx::now_ms`).
pub fn engine_clock_ms() -> u64 {
    match TIME_SNAPSHOT.with(Cell::get) {
        0 => crate::engine::system_clock_ms(),
        snapshot => snapshot,
    }
}

/// Runs `f` with key expiry judged at the Unix epoch: keys past their expiry but not yet deleted are
/// seen (and not deleted on the way), as Redis's DEBUG OBJECT looks its key up in the keyspace's table
/// without checking expiry.
pub fn ignoring_expiry<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(u64);
    impl Drop for Restore {
        fn drop(&mut self) {
            TIME_SNAPSHOT.with(|t| t.set(self.0));
        }
    }
    let _restore = Restore(TIME_SNAPSHOT.with(|t| t.replace(1)));
    f()
}

impl<'a> Current<'a> {
    /// The state of a run for `ctx`'s client, started at `started`.
    pub fn new(ctx: &'a mut Ctx<'_>, read_only: bool, wrote: &'a AtomicBool, started: Instant) -> Current<'a> {
        let server = ctx.server;
        Current {
            server,
            ctx: RefCell::new((ctx as *mut Ctx<'_>).cast()),
            read_only,
            wrote,
            resp: Cell::new(2),
            started,
            handed_off: Cell::new(false),
            last_handoff: Cell::new(None),
            budget: Cell::new(Budget::default()),
        }
    }

    /// The protocol `redis.call` replies are converted from.
    pub fn proto(&self) -> Protocol {
        if self.resp.get() == 3 {
            Protocol::Resp3
        } else {
            Protocol::Resp2
        }
    }

    /// Runs `f` with the caller's context; `None` if it is already in use (a re-entrant call).
    pub fn with_ctx<R>(&self, f: impl FnOnce(&mut Ctx<'_>) -> R) -> Option<R> {
        let guard = self.ctx.try_borrow_mut().ok()?;
        // SAFETY: the pointer was made from a `&'a mut Ctx<'_>` that `self` borrows for 'a, so the context
        // outlives `self`; the RefCell guard makes this the only live reborrow. The erased lifetime only
        // shortens here (to the closure's call), and handlers never store references into the context.
        let ctx = unsafe { &mut *guard.cast::<Ctx<'_>>() };
        Some(f(ctx))
    }

    /// Runs `f` with `self` published as this thread's running script.
    pub fn enter<R>(&self, f: impl FnOnce() -> R) -> R {
        struct Reset(*const (), u64);
        impl Drop for Reset {
            fn drop(&mut self) {
                CURRENT.with(|c| c.set(self.0));
                TIME_SNAPSHOT.with(|t| t.set(self.1));
            }
        }
        let previous = CURRENT.with(|c| c.replace((self as *const Current<'_>).cast()));
        let previous_time = TIME_SNAPSHOT.with(|t| t.replace(crate::engine::system_clock_ms()));
        let _reset = Reset(previous, previous_time);
        f()
    }
}

/// Runs `f` with this thread's running script, if any.
pub fn with<R>(f: impl FnOnce(Option<&Current<'_>>) -> R) -> R {
    let pointer = CURRENT.with(|c| c.get());
    if pointer.is_null() {
        return f(None);
    }
    // SAFETY: a non-null pointer is set only by `Current::enter`, which resets it before the `Current` it
    // points to can be dropped (it borrows it for the whole call).
    f(Some(unsafe { &*pointer.cast::<Current<'_>>() }))
}

/// The count hook's duties besides SCRIPT KILL: raise when the server is shutting down (SIGTERM while
/// a script loops: SHUTDOWN kills it through [`super::Scripting::force_kill`]), and hand off once the
/// script has used its [`Budget`]: tell tokio the thread is blocking, so that the worker's other
/// connections and the listener move to another thread, and count the script's batch as off-worker
/// work (`server::gate`). `block_in_place` hands the worker's core to a new thread; when it returns the
/// script keeps running without the core (the runtime takes this thread out of the worker pool once the
/// task's poll ends). An error message when the script must stop.
pub fn hook() -> Option<&'static str> {
    with(|current| {
        let current = current?;
        if current.server.shutting_down() {
            return Some("Script killed by user with SCRIPT KILL...");
        }
        current.hand_off_if_long();
        None
    })
}

/// Hands the running script's worker off once the script has used its [`Budget`] (as the count hook
/// does), for a command the script called that loops over stored data: [`crate::cmd::Ctx::checkpoint`]
/// and the split-collection walks (through [`walk_hook`]) call it. Such a command runs inline like any
/// other the script calls, so a script calling ZRANGEBYSCORE or LREM on a small key pays no hand-off,
/// and one walking a collection of millions still leaves its worker after [`HANDOFF_AFTER`]. Nothing if
/// no script runs on this thread.
pub fn hand_off_if_long() {
    with(|current| {
        if let Some(current) = current {
            current.hand_off_if_long();
        }
    })
}

/// The hook [`crate::elements::interrupt::with_hook`] installs around a command a script calls: the
/// walks hand the worker off once the script is long ([`hand_off_if_long`]), and never stop (the
/// command may already have written; the script ends it). `None` when no script runs on this thread
/// (EXEC's commands: nothing watches their walks).
pub fn walk_hook() -> Option<&'static crate::elements::interrupt::Hook<'static>> {
    fn check() -> Option<&'static str> {
        hand_off_if_long();
        None
    }
    let running = CURRENT.with(|c| !c.get().is_null());
    running.then_some(&check)
}

/// Hands the running script's worker off now (see [`hook`]); nothing if no script runs on this thread.
pub fn hand_off() {
    with(|current| {
        if let Some(current) = current {
            current.hand_off();
        }
    })
}

impl Current<'_> {
    /// [`hand_off_if_long`] for this run.
    fn hand_off_if_long(&self) {
        let long = match self.last_handoff.get() {
            // Once long, it stays long: ask again now and then (see HANDOFF_RETRY).
            Some(at) => at.elapsed() >= HANDOFF_RETRY,
            None => {
                let mut budget = self.budget.get();
                let spent = budget.spent(self.started.elapsed(), thread_cpu_time);
                self.budget.set(budget);
                spent
            }
        };
        if long {
            self.last_handoff.set(Some(Instant::now()));
            self.handed_off.set(false);
            self.hand_off();
        }
    }

    fn hand_off(&self) {
        if self.handed_off.get() {
            return;
        }
        self.server.scripting.mark_long();
        crate::server::gate::leave_inline_batch();
        // The pause lets the new thread take the worker's core before `block_in_place` returns. If it has
        // not, this worker keeps its core until the hook asks again ([`HANDOFF_RETRY`]). Only long scripts
        // and scripts calling a keyless command that may take long (KEYS, SCAN) pay it: on a loaded
        // machine the pause lasts milliseconds (docs/performance.md, BullMQ's removal scripts).
        super::blocking(|| std::thread::sleep(Duration::from_micros(20)));
        self.handed_off.set(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// A fake thread CPU clock that counts its reads.
    struct Clock {
        now: Cell<Duration>,
        reads: Cell<u32>,
    }

    impl Clock {
        fn read(&self) -> Duration {
            self.reads.set(self.reads.get() + 1);
            self.now.get()
        }
    }

    #[test]
    fn a_preempted_short_script_keeps_its_worker() {
        let clock = Clock { now: Cell::new(Duration::from_secs(7)), reads: Cell::new(0) };
        let mut budget = Budget::default();
        // First hook call: 60 µs in, all of it on the CPU.
        assert!(!budget.spent(Duration::from_micros(60), || clock.read()));
        assert_eq!(clock.reads.get(), 1, "the base is read once");
        // Still under 2 ms of wall time: the CPU clock is not read.
        clock.now.set(clock.now.get() + Duration::from_micros(500));
        assert!(!budget.spent(Duration::from_micros(700), || clock.read()));
        assert_eq!(clock.reads.get(), 1);
        // Preempted: 30 ms of wall time, 0.8 ms of CPU time in all. A wall-clock budget hands off here.
        clock.now.set(clock.now.get() + Duration::from_micros(300));
        assert!(!budget.spent(30 * MS, || clock.read()));
        assert_eq!(clock.reads.get(), 2);
    }

    #[test]
    fn a_script_that_computes_hands_off_after_its_cpu_budget() {
        let clock = Clock { now: Cell::new(Duration::ZERO), reads: Cell::new(0) };
        let mut budget = Budget::default();
        assert!(!budget.spent(Duration::from_micros(80), || clock.read()));
        clock.now.set(Duration::from_micros(1800));
        assert!(!budget.spent(Duration::from_micros(1900), || clock.read()), "under 2 ms of wall time");
        clock.now.set(Duration::from_micros(1850));
        assert!(!budget.spent(Duration::from_micros(2010), || clock.read()), "80 µs + 1.85 ms of CPU");
        clock.now.set(Duration::from_micros(1950));
        assert!(budget.spent(Duration::from_micros(2100), || clock.read()), "80 µs + 1.95 ms of CPU");
    }

    #[test]
    fn a_long_wait_before_the_first_check_counts_as_half_the_budget_at_most() {
        let clock = Clock { now: Cell::new(Duration::ZERO), reads: Cell::new(0) };
        let mut budget = Budget::default();
        assert!(!budget.spent(40 * MS, || clock.read()));
        clock.now.set(Duration::from_micros(900));
        assert!(!budget.spent(41 * MS, || clock.read()));
        clock.now.set(Duration::from_micros(1000));
        assert!(budget.spent(42 * MS, || clock.read()));
    }

    #[test]
    fn any_script_hands_off_after_the_wall_time_bound() {
        let clock = Clock { now: Cell::new(Duration::ZERO), reads: Cell::new(0) };
        let mut first = Budget::default();
        assert!(first.spent(HANDOFF_AFTER_WALL, || clock.read()), "at the first check");
        let mut later = Budget::default();
        assert!(!later.spent(MS, || clock.read()));
        assert!(later.spent(HANDOFF_AFTER_WALL + MS, || clock.read()), "at a later check");
    }

    #[test]
    fn the_thread_cpu_clock_counts_this_threads_work_only() {
        let before = thread_cpu_time();
        std::thread::sleep(Duration::from_millis(20));
        let slept = thread_cpu_time() - before;
        assert!(slept < Duration::from_millis(10), "a sleep is not CPU time: {slept:?}");
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(20) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(thread_cpu_time() - before > Duration::ZERO, "a busy loop is");
    }
}
