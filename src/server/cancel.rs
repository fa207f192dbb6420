//! Cooperative cancellation of long commands: [`Ctx::checkpoint`], called from loops whose length
//! depends on the data (KEYS, SCAN, ...), ends the command once the server is shutting down, the client
//! was killed, or its peer has hung up, so that SIGTERM/SHUTDOWN stop the server within a few seconds
//! and a disconnected client's KEYS stops burning a core.
//!
//! A command cannot be preempted, so the loops poll. A checkpoint costs a clock read (items of a loop
//! can be expensive, e.g. a long pattern against a long key, so counting items would not bound the
//! time between checks); every [`CHECK_INTERVAL`] it looks at the shutdown flag, the kill switch and the
//! socket (one non-blocking `poll` for a hang-up).
//!
//! Walks inside split collections (reading one whole, freeing one) cannot see the command's context;
//! [`interruptible`] installs a hook for them ([`crate::elements::interrupt`]) around a top-level
//! command that may safely stop there: one that writes nothing, or a STORE command (which reads all its
//! sources, then writes its destination at once at its end, see `collection::store_destination`).

use std::cell::Cell;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use crate::cmd::spec::Flags;
use crate::cmd::{CmdError, CommandSpec, Ctx};
use crate::server::client::ClientHandle;
use crate::server::Server;

/// Time between two real checks.
pub const CHECK_INTERVAL: Duration = Duration::from_millis(5);

/// A connection's cancellation state.
#[derive(Debug)]
pub struct Cancel {
    /// The connection's socket (-1: none, e.g. in unit tests).
    fd: RawFd,
    last_check: Cell<Instant>,
}

impl Default for Cancel {
    fn default() -> Cancel {
        Cancel { fd: -1, last_check: Cell::new(Instant::now()) }
    }
}

impl Cancel {
    /// Cancellation that watches socket `fd` for a hang-up.
    pub fn with_socket(fd: RawFd) -> Cancel {
        Cancel { fd, ..Cancel::default() }
    }
}

/// True when the peer of socket `fd` closed its side of the connection (or it failed); false for -1.
fn peer_gone(fd: RawFd) -> bool {
    if fd < 0 {
        return false;
    }
    let mut poll = libc::pollfd { fd, events: libc::POLLRDHUP, revents: 0 };
    // SAFETY: one valid pollfd, zero timeout; the fd stays open while its connection runs commands.
    let ready = unsafe { libc::poll(&mut poll, 1, 0) };
    ready > 0 && poll.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0
}

/// Why a command must stop, if it must: the server is shutting down, or the client is gone.
fn stop_reason(server: &Server, handle: &ClientHandle, fd: RawFd) -> Option<&'static str> {
    if server.shutting_down() {
        Some("the server is shutting down")
    } else if handle.is_killed() || peer_gone(fd) {
        Some("the client is gone")
    } else {
        None
    }
}

/// Top-level commands that write only at their end, after reading every collection they read: a walk
/// inside them may stop the command without leaving anything half written.
const STOPPABLE_WRITERS: &[&str] = &[
    "sunionstore",
    "sinterstore",
    "sdiffstore",
    "zunionstore",
    "zinterstore",
    "zdiffstore",
    "zrangestore",
    "geosearchstore",
    "georadius",
    "georadiusbymember",
    "sort",
    "copy",
];

/// Runs a top-level command's `handler` with the split-collection walks watching for cancellation, when
/// stopping inside them is safe for `spec` (see `STOPPABLE_WRITERS`); other commands run unwatched.
pub fn interruptible<R>(ctx: &mut Ctx<'_>, spec: &CommandSpec, handler: impl FnOnce(&mut Ctx<'_>) -> R) -> R {
    if spec.has(Flags::WRITE) && !STOPPABLE_WRITERS.contains(&spec.fullname) {
        return crate::elements::interrupt::with_hook(None, || handler(ctx));
    }
    let server = ctx.server;
    let handle = ctx.client.handle.clone();
    let fd = ctx.client.cancel.fd;
    let last_check = Cell::new(Instant::now());
    let hook = move || {
        let now = Instant::now();
        if now.duration_since(last_check.get()) < CHECK_INTERVAL {
            return None;
        }
        last_check.set(now);
        stop_reason(server, &handle, fd)
    };
    crate::elements::interrupt::with_hook(Some(&hook), || handler(ctx))
}

impl Ctx<'_> {
    /// Call in every loop whose length depends on stored data. `Err` once the command should stop: the
    /// server is shutting down or the client is gone (its reply would never be read).
    pub fn checkpoint(&self) -> Result<(), CmdError> {
        let cancel = &self.client.cancel;
        let now = Instant::now();
        if now.duration_since(cancel.last_check.get()) < CHECK_INTERVAL {
            return Ok(());
        }
        cancel.last_check.set(now);
        // A command a script called (KEYS, SCAN...): leave the worker once the script is long.
        crate::script::current::hand_off_if_long();
        self.check_cancelled()
    }

    /// The real check behind [`Ctx::checkpoint`], done at once.
    pub fn check_cancelled(&self) -> Result<(), CmdError> {
        match stop_reason(self.server, &self.client.handle, self.client.cancel.fd) {
            Some(reason) => Err(CmdError::err(format!("command aborted: {reason}"))),
            None => Ok(()),
        }
    }
}
