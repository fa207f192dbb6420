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

/// How long a script runs on its worker thread before the worker's other tasks are handed to another
/// thread (the count hook checks; see [`hook`]). Short scripts, nearly all of them, pay no hand-off.
pub const HANDOFF_AFTER: Duration = Duration::from_millis(2);

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
}

/// How often a script that has run past [`HANDOFF_AFTER`] asks for the hand-off again. `block_in_place`
/// takes the worker's core back if the new thread has not claimed it by the time the pause ends (a busy
/// machine can delay that thread's start), and nothing tells us which happened; asking again costs a
/// pause of a few microseconds when the core is already gone, and makes an endless script release its
/// worker on a loaded machine too.
const HANDOFF_RETRY: Duration = Duration::from_millis(50);

thread_local! {
    static CURRENT: Cell<*const ()> = const { Cell::new(std::ptr::null()) };
}

impl<'a> Current<'a> {
    /// The state of a run for `ctx`'s client.
    pub fn new(ctx: &'a mut Ctx<'_>, read_only: bool, wrote: &'a AtomicBool) -> Current<'a> {
        let server = ctx.server;
        Current {
            server,
            ctx: RefCell::new((ctx as *mut Ctx<'_>).cast()),
            read_only,
            wrote,
            resp: Cell::new(2),
            started: Instant::now(),
            handed_off: Cell::new(false),
            last_handoff: Cell::new(None),
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
        struct Reset(*const ());
        impl Drop for Reset {
            fn drop(&mut self) {
                CURRENT.with(|c| c.set(self.0));
            }
        }
        let previous = CURRENT.with(|c| c.replace((self as *const Current<'_>).cast()));
        let _reset = Reset(previous);
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
/// script has run for [`HANDOFF_AFTER`]: tell tokio the thread is blocking, so that the worker's other
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
        if current.started.elapsed() >= HANDOFF_AFTER
            && current.last_handoff.get().is_none_or(|at| at.elapsed() >= HANDOFF_RETRY)
        {
            current.last_handoff.set(Some(Instant::now()));
            current.handed_off.set(false);
            current.hand_off();
        }
        None
    })
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
    fn hand_off(&self) {
        if self.handed_off.get() {
            return;
        }
        self.server.scripting.mark_long();
        crate::server::gate::leave_inline_batch();
        // The pause lets the new thread take the worker's core before `block_in_place` returns. If it has
        // not, this worker keeps its core until the hook asks again ([`HANDOFF_RETRY`]); a script calling
        // non-fast commands pays the pause once per run.
        super::blocking(|| std::thread::sleep(Duration::from_micros(20)));
        self.handed_off.set(true);
    }
}
