//! CLIENT PAUSE / UNPAUSE: the server-wide pause and the gate that holds commands while it lasts.
//!
//! As Redis 7.0: `ALL` holds every command of every client (monitors excepted, which Redis treats as
//! replicas); `WRITE` holds the commands that may change data or be propagated (flag `WRITE`, plus
//! PUBLISH, PFCOUNT, EVAL, EVALSHA, FCALL: Redis's `MAY_REPLICATE`) and an EXEC whose queue holds
//! one, while reads go on. A held command runs when the pause ends (timeout or CLIENT UNPAUSE). Pausing
//! again keeps the later end and the stricter mode. The active expire cycle does not run while paused.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::watch;
use tokio::time::Instant;

use super::client::{Client, ClientHandle};
use super::Server;
use crate::cmd::spec::Flags;
use crate::cmd::CommandSpec;

/// Commands Redis 7.0 flags `MAY_REPLICATE` (held by a WRITE pause although not writes).
const MAY_REPLICATE: &[&str] = &["publish", "pfcount", "eval", "evalsha", "fcall", "spublish"];

/// What a pause holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PauseKind {
    /// Commands that may write.
    Write,
    /// Every command.
    All,
}

/// The server's pause state.
pub struct Pause {
    /// A pause may be in force (checked before the lock: every request asks).
    active: AtomicBool,
    /// Clients whose command is held (Redis counts them in INFO `blocked_clients`).
    held: AtomicUsize,
    state: Mutex<Option<(PauseKind, Instant)>>,
    changed: watch::Sender<u64>,
}

impl Default for Pause {
    fn default() -> Pause {
        Pause {
            active: AtomicBool::new(false),
            held: AtomicUsize::new(0),
            state: Mutex::new(None),
            changed: watch::channel(0).0,
        }
    }
}

/// True if `spec` is a command a WRITE pause holds.
pub fn may_write(spec: &CommandSpec) -> bool {
    spec.has(Flags::WRITE) || MAY_REPLICATE.contains(&spec.fullname)
}

/// [`may_write`] of one command line: a script command whose script declared flags writes unless it
/// declared `no-writes` (Redis's `scriptFlagsToCmdFlags`, which also drops `MAY_REPLICATE`).
pub fn command_writes(server: &Server, spec: &CommandSpec, argv: &[Bytes]) -> bool {
    if crate::script::runs_script(spec) {
        if let Some(flags) = server.scripting.declared_flags(spec, argv) {
            return !flags.has(crate::script::ScriptFlags::NO_WRITES);
        }
    }
    may_write(spec)
}

impl Pause {
    /// Pauses until `end` (merged with a pause in force).
    pub fn pause(&self, kind: PauseKind, end: Instant) {
        let mut state = self.lock();
        let merged = match *state {
            Some((old_kind, old_end)) if old_end > Instant::now() => (old_kind.max(kind), old_end.max(end)),
            _ => (kind, end),
        };
        *state = Some(merged);
        self.active.store(true, Ordering::Release);
        drop(state);
        self.changed.send_modify(|generation| *generation += 1);
    }

    /// Ends the pause.
    pub fn unpause(&self) {
        *self.lock() = None;
        self.active.store(false, Ordering::Release);
        self.changed.send_modify(|generation| *generation += 1);
    }

    /// The pause in force, if any (an expired one is cleared).
    pub fn current(&self) -> Option<(PauseKind, Instant)> {
        if !self.active.load(Ordering::Acquire) {
            return None;
        }
        let mut state = self.lock();
        match *state {
            Some((_, end)) if end <= Instant::now() => {
                *state = None;
                self.active.store(false, Ordering::Release);
                None
            }
            other => other,
        }
    }

    /// True while a pause (of either kind) is in force: the active expire cycle waits.
    pub fn is_paused(&self) -> bool {
        self.current().is_some()
    }

    /// True if a command that `writes` (see [`may_write`]) must wait now.
    pub fn holds(&self, writes: bool) -> bool {
        match self.current() {
            Some((PauseKind::All, _)) => true,
            Some((PauseKind::Write, _)) => writes,
            None => false,
        }
    }

    /// Number of clients whose command is held now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// A receiver that changes whenever the pause is set or lifted.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(PauseKind, Instant)>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// True if `argv` from `client` must wait for the pause to end now (monitors are never held, as Redis
/// never holds replicas; a command that fails lookup or arity is answered at once by the dispatcher).
pub fn must_wait(server: &Server, client: &Client, argv: &[Bytes]) -> bool {
    if !server.intro.pause.is_paused() || client.handle.intro.monitor.load(Ordering::Relaxed) {
        return false;
    }
    request_writes(server, client, argv).is_some_and(|writes| server.intro.pause.holds(writes))
}

/// Whether a request counts as a write for CLIENT PAUSE WRITE (`None`: not a command at all).
pub fn request_writes(server: &Server, client: &Client, argv: &[Bytes]) -> Option<bool> {
    let (spec, _) = crate::server::dispatch::resolve(argv).ok()?;
    Some(
        command_writes(server, spec, argv)
            || (spec.fullname == "exec"
                && client.multi.as_ref().is_some_and(|m| {
                    m.queued.iter().any(|(queued, queued_argv, _)| command_writes(server, queued, queued_argv))
                })),
    )
}

/// Holds a client's command while [`must_wait`] says so: until the pause ends or is lifted. The socket is
/// still read meanwhile (into `rbuf`, executed later) so that a client that disconnects is noticed.
/// False when the connection must end.
/// `writes` is [`request_writes`] of the held request.
pub async fn wait(
    server: &Server,
    handle: &ClientHandle,
    writes: bool,
    reader: &mut OwnedReadHalf,
    rbuf: &mut BytesMut,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let mut changes = server.intro.pause.subscribe();
    handle.blocked.store(true, Ordering::Relaxed);
    server.intro.pause.held.fetch_add(1, Ordering::Relaxed);
    let mut alive = true;
    while alive && !handle.intro.monitor.load(Ordering::Relaxed) && server.intro.pause.holds(writes) {
        let end = server.intro.pause.current().map(|(_, end)| end).unwrap_or_else(Instant::now);
        tokio::select! {
            _ = changes.changed() => {}
            _ = tokio::time::sleep_until(end) => {}
            read = reader.read_buf(rbuf) => alive = matches!(read, Ok(n) if n > 0),
            _ = handle.killed() => alive = false,
            _ = shutdown.wait_for(|stopping| *stopping) => alive = false,
        }
    }
    handle.blocked.store(false, Ordering::Relaxed);
    server.intro.pause.held.fetch_sub(1, Ordering::Relaxed);
    alive
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn pauses_merge_and_expire() {
        let pause = Pause::default();
        assert!(!pause.holds(true));
        pause.pause(PauseKind::Write, Instant::now() + Duration::from_secs(60));
        assert!(pause.holds(true));
        assert!(!pause.holds(false));
        pause.pause(PauseKind::All, Instant::now() + Duration::from_millis(1));
        // The stricter kind and the later end win.
        assert!(pause.holds(false));
        pause.unpause();
        assert!(!pause.is_paused());
        pause.pause(PauseKind::All, Instant::now());
        assert!(!pause.is_paused());
    }
}
