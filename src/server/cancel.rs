//! Cooperative cancellation of long commands: [`Ctx::checkpoint`], called from loops whose length
//! depends on the data (KEYS, SCAN, ...), ends the command once the server is shutting down, the client
//! was killed, or its peer has hung up, so that SIGTERM/SHUTDOWN stop the server within a few seconds
//! and a disconnected client's KEYS stops burning a core.
//!
//! A command cannot be preempted, so the loops poll. A checkpoint costs a clock read (items of a loop
//! can be expensive, e.g. a long pattern against a long key, so counting items would not bound the
//! time between checks); every [`CHECK_INTERVAL`] it looks at the shutdown flag, the kill switch and the
//! socket (one non-blocking `poll` for a hang-up).

use std::cell::Cell;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use crate::cmd::{CmdError, Ctx};

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

    /// True when the peer closed its side of the connection (or it failed).
    fn peer_gone(&self) -> bool {
        if self.fd < 0 {
            return false;
        }
        let mut poll = libc::pollfd { fd: self.fd, events: libc::POLLRDHUP, revents: 0 };
        // SAFETY: one valid pollfd, zero timeout; the fd stays open while its connection runs commands.
        let ready = unsafe { libc::poll(&mut poll, 1, 0) };
        ready > 0 && poll.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0
    }
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
        self.check_cancelled()
    }

    /// The real check behind [`Ctx::checkpoint`], done at once.
    pub fn check_cancelled(&self) -> Result<(), CmdError> {
        if self.server.shutting_down() {
            return Err(CmdError::err("command aborted: the server is shutting down"));
        }
        if self.client.handle.is_killed() || self.client.cancel.peer_gone() {
            return Err(CmdError::err("command aborted: the client is gone"));
        }
        Ok(())
    }
}
