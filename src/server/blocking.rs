//! Blocking commands (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BZPOPMIN, BZPOPMAX; later BLMPOP, BZMPOP and
//! XREAD/XREADGROUP BLOCK): the registry of clients waiting for keys, the "key is ready" signal, and
//! serving the waiters.
//!
//! # How a command blocks
//! A blocking handler that finds nothing to serve calls [`crate::cmd::Ctx::block`] with its keys, its
//! timeout and a *serve* closure, and returns the reply it gives when blocking is not allowed (inside
//! MULTI/EXEC Redis answers as if the timeout had already passed). The top-level dispatch (never EXEC)
//! then registers a [`Waiter`] here, and the connection task awaits its outcome, a timeout, CLIENT
//! UNBLOCK or the connection's end.
//!
//! # How a waiter is served
//! As in Redis 7.0, the waiter is served by whoever made a key ready, right after that command and before
//! its reply is sent, so the writer (and anyone who hears from it) never sees an element a waiter took:
//! 1. `Ctx::touch` (called after every key change) signals `(logical db, key)` when a client waits for that
//!    key and the key now holds a type a client can wait for (list, sorted set, stream): Redis signals when
//!    such a key is created. Ready keys queue in signal order, once each.
//! 2. After the command, the dispatcher calls [`Blocking::serve_ready`]: for each ready key, in order, the
//!    clients waiting on it are tried in the order they blocked. The waiter's serve closure runs in the
//!    waiter's context (its database and protocol) with the ready key: a client waiting on several keys is
//!    served from the first key that became ready, not from the first in argument order (Redis 7.0).
//!    The closure pops and answers, or says the key cannot serve it (empty, or of another type): the
//!    waiter keeps waiting.
//! 3. Serving may make other keys ready (BLMOVE pushes to its destination); they join the queue and are
//!    served in the same pass.
//!
//! One pass runs at a time (`serving`), so waiters on one key are served in FIFO order. A client that
//! registers re-checks its keys under the same lock (they are queued as ready at registration), which
//! closes the gap between the handler finding nothing and the waiter being visible to writers.
//!
//! Keys are identified by *logical* database, as Redis does: after SWAPDB a waiter still waits in its
//! database number, and the keys that now exist there are signalled ([`Blocking::waited_keys`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::client::{Client, ClientHandle};
use super::Server;
use crate::cmd::{CmdError, Ctx};
use crate::engine::ValueKind;
use crate::resp::{Protocol, Reply};

/// Tries to serve a waiter from a ready key, in the waiter's context: `Ok(None)` when the key cannot
/// serve it (the waiter keeps waiting); `Ok(Some(reply))` or `Err` (sent as the error reply) ends the wait.
pub type Serve = Box<dyn Fn(&mut Ctx<'_>, &Bytes) -> Result<Option<Reply>, CmdError> + Send + Sync>;

/// What a blocking handler asks for when nothing is ready.
pub struct BlockRequest {
    /// Keys to wait on, in argument order.
    pub keys: Vec<Bytes>,
    /// How long to wait; `None` waits forever.
    pub timeout: Option<Duration>,
    /// How to serve the client from a ready key.
    pub serve: Serve,
    /// The reply on timeout or CLIENT UNBLOCK ... TIMEOUT: Redis 7.0 sends a null array for every
    /// list, sorted-set and stream wait (BLMOVE included, although its MULTI reply is a null bulk).
    pub timeout_reply: Reply,
    /// Served also when a key is deleted or changes type (XREADGROUP: its wait ends with UNBLOCKED).
    pub on_deletion: bool,
}

/// The unit of a timeout argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutUnit {
    /// A decimal number of seconds (BLPOP, BZPOPMIN, ...).
    Seconds,
    /// An integer number of milliseconds (XREAD BLOCK).
    Milliseconds,
}

/// Parses a timeout argument as Redis 7.0 does: seconds are a float (hex floats included) rounded up to
/// whole milliseconds; 0 (or anything that rounds to 0, such as -0.0001) waits forever; a negative value,
/// or one whose milliseconds do not fit in a 64-bit signed integer (inf, 1e16), is "negative".
pub fn parse_timeout(arg: &[u8], unit: TimeoutUnit) -> Result<Option<Duration>, CmdError> {
    let millis: i64 = match unit {
        TimeoutUnit::Seconds => {
            let seconds = crate::cmd::args::parse_f64(arg)
                .ok_or_else(|| CmdError::err("timeout is not a float or out of range"))?;
            let millis = (seconds * 1000.0).ceil();
            // Redis converts with a C cast, which yields i64::MIN for anything out of range.
            if millis.is_finite() && millis < 9_223_372_036_854_775_807.0 {
                millis as i64
            } else {
                i64::MIN
            }
        }
        TimeoutUnit::Milliseconds => crate::cmd::args::parse_i64(arg)
            .ok_or_else(|| CmdError::err("timeout is not an integer or out of range"))?,
    };
    if millis < 0 {
        return Err(CmdError::err("timeout is negative"));
    }
    Ok((millis > 0).then(|| Duration::from_millis(millis as u64)))
}

/// True for the types a client can wait for: a key that comes to hold one of them is "ready".
pub fn wakes(kind: ValueKind) -> bool {
    matches!(kind, ValueKind::List | ValueKind::SortedSet | ValueKind::Stream)
}

/// True if `key` (in the context's database) holds a value of `kind`: serve closures check this first,
/// because Redis never serves a waiter from a key of another type (the waiter keeps waiting).
pub fn holds(ctx: &Ctx<'_>, key: &[u8], kind: ValueKind) -> Result<bool, CmdError> {
    Ok(ctx.engine.key_info(ctx.db(), key)?.is_some_and(|info| info.kind == kind))
}

enum State {
    /// Registered, not being served.
    Waiting,
    /// A serve pass is running its closure.
    Serving,
    /// Finished; the reply is waiting for the connection task.
    Done(Reply),
    /// The connection task took the reply.
    Taken,
}

/// One blocked client.
pub struct Waiter {
    handle: Arc<ClientHandle>,
    db: u16,
    proto: Protocol,
    keys: Vec<Bytes>,
    on_deletion: bool,
    deadline: Option<Instant>,
    serve: Serve,
    timeout_reply: Reply,
    state: Mutex<State>,
    notify: Notify,
}

impl Waiter {
    /// When the wait times out, if ever.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Resolves when the waiter's state may have changed.
    pub async fn changed(&self) {
        self.notify.notified().await;
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Default)]
struct Inner {
    /// Waiters per (logical db, key), in blocking order.
    keys: HashMap<(u16, Bytes), VecDeque<Arc<Waiter>>>,
    /// Waiters by client id.
    clients: HashMap<u64, Arc<Waiter>>,
    /// Keys signalled ready, in signal order, and the same as a set.
    ready: VecDeque<(u16, Bytes)>,
    ready_set: HashSet<(u16, Bytes)>,
}

impl Inner {
    /// Forgets a waiter (it is no longer blocked).
    fn remove(&mut self, waiter: &Arc<Waiter>) {
        for key in &waiter.keys {
            let id = (waiter.db, key.clone());
            if let Some(queue) = self.keys.get_mut(&id) {
                queue.retain(|w| !Arc::ptr_eq(w, waiter));
                if queue.is_empty() {
                    self.keys.remove(&id);
                }
            }
        }
        if self.clients.get(&waiter.handle.id).is_some_and(|w| Arc::ptr_eq(w, waiter)) {
            self.clients.remove(&waiter.handle.id);
        }
        waiter.handle.blocked.store(false, Ordering::Relaxed);
    }

    fn mark_ready(&mut self, db: u16, key: &Bytes) {
        let id = (db, key.clone());
        if self.keys.contains_key(&id) && self.ready_set.insert(id.clone()) {
            self.ready.push_back(id);
        }
    }
}

/// The registry (one per server).
#[derive(Default)]
pub struct Blocking {
    inner: Mutex<Inner>,
    /// Held for a whole serve pass, and by CLIENT UNBLOCK.
    serving: Mutex<()>,
    /// Number of blocked clients (INFO `blocked_clients`); lets `is_waited` skip the lock when zero.
    blocked: AtomicUsize,
    /// True while the ready queue may be non-empty; lets `serve_ready` skip the locks.
    has_ready: AtomicBool,
}

impl Blocking {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Number of blocked clients.
    pub fn blocked_clients(&self) -> usize {
        self.blocked.load(Ordering::Acquire)
    }

    /// True if some client waits for `key` in logical database `db`.
    pub fn is_waited(&self, db: u16, key: &[u8]) -> bool {
        if self.blocked.load(Ordering::Acquire) == 0 {
            return false;
        }
        self.lock().keys.contains_key(&(db, Bytes::copy_from_slice(key)))
    }

    /// Signals that `key` in logical database `db` may serve its waiters (the caller checked its type).
    pub fn signal(&self, db: u16, key: &[u8]) {
        let mut inner = self.lock();
        inner.mark_ready(db, &Bytes::copy_from_slice(key));
        if !inner.ready.is_empty() {
            self.has_ready.store(true, Ordering::Release);
        }
    }

    /// True if a client that must hear of the key's deletion (XREADGROUP) waits for `key`.
    pub fn waited_on_deletion(&self, db: u16, key: &[u8]) -> bool {
        self.lock()
            .keys
            .get(&(db, Bytes::copy_from_slice(key)))
            .is_some_and(|queue| queue.iter().any(|w| w.on_deletion))
    }

    /// The keys clients wait for in logical database `db`.
    pub fn waited_keys(&self, db: u16) -> Vec<Bytes> {
        if self.blocked.load(Ordering::Acquire) == 0 {
            return Vec::new();
        }
        self.lock().keys.keys().filter(|(key_db, _)| *key_db == db).map(|(_, key)| key.clone()).collect()
    }

    /// Signals every waited-for key of logical database `db` that now holds a type a client can wait for,
    /// or that an XREADGROUP waits for (it may be gone): SWAPDB brings other keys under the waiters of
    /// both databases (Redis's `scanDatabaseForReadyKeys`), FLUSHDB/FLUSHALL delete them (its
    /// `scanDatabaseForDeletedKeys`).
    pub fn signal_existing(&self, server: &Server, db: u16) {
        let physical = server.dbmap.physical(db);
        for key in self.waited_keys(db) {
            let wakes_now = matches!(server.engine.key_info(physical, &key), Ok(Some(info)) if wakes(info.kind));
            if wakes_now || self.waited_on_deletion(db, &key) {
                self.signal(db, &key);
            }
        }
    }

    /// Blocks `client` as `request` asks. Its keys are queued as ready so that the next serve pass
    /// re-checks them: an element pushed between the handler's check and now is not missed.
    pub fn register(&self, client: &Client, request: BlockRequest) -> Arc<Waiter> {
        let mut keys = request.keys;
        let mut seen = HashSet::new();
        keys.retain(|key| seen.insert(key.clone()));
        let waiter = Arc::new(Waiter {
            handle: client.handle.clone(),
            db: client.db,
            proto: client.proto,
            keys,
            // A deadline too far to represent is as good as none.
            deadline: request.timeout.and_then(|timeout| Instant::now().checked_add(timeout)),
            serve: request.serve,
            on_deletion: request.on_deletion,
            timeout_reply: request.timeout_reply,
            state: Mutex::new(State::Waiting),
            notify: Notify::new(),
        });
        let mut inner = self.lock();
        for key in &waiter.keys {
            inner.keys.entry((waiter.db, key.clone())).or_default().push_back(waiter.clone());
        }
        inner.clients.insert(waiter.handle.id, waiter.clone());
        for key in &waiter.keys {
            inner.mark_ready(waiter.db, key);
        }
        waiter.handle.blocked.store(true, Ordering::Relaxed);
        self.blocked.fetch_add(1, Ordering::AcqRel);
        self.has_ready.store(true, Ordering::Release);
        waiter
    }

    /// Ends a wait with `reply`.
    fn finish(&self, inner: &mut Inner, waiter: &Arc<Waiter>, state: &mut State, reply: Reply) {
        inner.remove(waiter);
        self.blocked.fetch_sub(1, Ordering::AcqRel);
        *state = State::Done(reply);
        waiter.notify.notify_one();
    }

    /// The waiter's reply if its wait is over; with `expired`, ends a wait still pending with the timeout
    /// reply. `None` while it waits (or while a serve pass is trying it: it is told when that ends).
    pub fn outcome(&self, waiter: &Arc<Waiter>, expired: bool) -> Option<Reply> {
        let mut inner = self.lock();
        let mut state = waiter.state();
        match &mut *state {
            State::Waiting if expired => {
                let reply = waiter.timeout_reply.clone();
                inner.remove(waiter);
                self.blocked.fetch_sub(1, Ordering::AcqRel);
                *state = State::Taken;
                Some(reply)
            }
            State::Waiting | State::Serving | State::Taken => None,
            State::Done(_) => match std::mem::replace(&mut *state, State::Taken) {
                State::Done(reply) => Some(reply),
                _ => None,
            },
        }
    }

    /// Removes a waiter whose connection ended; false while a serve pass is trying it (call again once
    /// [`Waiter::changed`] resolves).
    pub fn cancel(&self, waiter: &Arc<Waiter>) -> bool {
        let mut inner = self.lock();
        let mut state = waiter.state();
        match *state {
            State::Serving => false,
            State::Waiting => {
                inner.remove(waiter);
                self.blocked.fetch_sub(1, Ordering::AcqRel);
                *state = State::Taken;
                true
            }
            State::Done(_) | State::Taken => true,
        }
    }

    /// CLIENT UNBLOCK: ends client `id`'s wait with the timeout reply, or with the UNBLOCKED error; false if
    /// it is not blocked.
    pub fn unblock(&self, id: u64, error: bool) -> bool {
        // No serve pass runs meanwhile, so the waiter is not half-served.
        let _serving = self.serving.lock().unwrap_or_else(|p| p.into_inner());
        let mut inner = self.lock();
        let Some(waiter) = inner.clients.get(&id).cloned() else {
            return false;
        };
        let mut state = waiter.state();
        if !matches!(*state, State::Waiting) {
            return false;
        }
        let reply = if error {
            CmdError::Raw("UNBLOCKED client unblocked via CLIENT UNBLOCK".into()).reply()
        } else {
            waiter.timeout_reply.clone()
        };
        self.finish(&mut inner, &waiter, &mut state, reply);
        true
    }

    /// Serves the waiters of every ready key (see the module comment). Called by the dispatcher after each
    /// top-level command; cheap when nothing is ready.
    pub fn serve_ready(&self, server: &Server) {
        if !self.has_ready.load(Ordering::Acquire) {
            return;
        }
        let _serving = self.serving.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let next = {
                let mut inner = self.lock();
                let next = inner.ready.pop_front();
                match &next {
                    Some(id) => {
                        inner.ready_set.remove(id);
                    }
                    None => self.has_ready.store(false, Ordering::Release),
                }
                next
            };
            let Some((db, key)) = next else { return };
            self.serve_key(server, db, &key);
        }
    }

    /// Tries the waiters of one ready key in blocking order until the key is gone.
    fn serve_key(&self, server: &Server, db: u16, key: &Bytes) {
        let waiters: Vec<Arc<Waiter>> =
            self.lock().keys.get(&(db, key.clone())).map(|queue| queue.iter().cloned().collect()).unwrap_or_default();
        let mut gone = false;
        for waiter in waiters {
            // Once the key is gone nobody else can be served from it; only those that must hear of the
            // deletion (XREADGROUP) are still tried.
            if gone && !waiter.on_deletion {
                continue;
            }
            {
                let _inner = self.lock();
                let mut state = waiter.state();
                if !matches!(*state, State::Waiting) {
                    continue;
                }
                *state = State::Serving;
            }
            // The waiter's own context: its database, its protocol, its identity.
            let mut client = Client::new(waiter.handle.clone());
            client.db = waiter.db;
            client.proto = waiter.proto;
            let mut ctx = Ctx { server, engine: &server.engine, client: &mut client };
            // A served BLMOVE pops here and pushes there: durable together.
            let transaction = server.engine.transaction();
            let result = (waiter.serve)(&mut ctx, key);
            // The waiter's reply leaves from its own connection at once, not after this thread's pass:
            // its records (and the write that woke it) must be in the OS first, or a kill -9 could give
            // the same element out again after restart.
            let result = match transaction.commit().and_then(|()| server.engine.write_group_now()) {
                Ok(()) => result,
                Err(error) => Err(error.into()),
            };
            let physical = ctx.db();
            let mut inner = self.lock();
            let mut state = waiter.state();
            match result {
                Ok(None) => {
                    *state = State::Waiting;
                    waiter.notify.notify_one();
                }
                Ok(Some(reply)) => {
                    if let Reply::Error(text) = &reply {
                        server.stats.error(text);
                        count_failed(server, &waiter.handle);
                    }
                    self.finish(&mut inner, &waiter, &mut state, reply)
                }
                Err(error) => {
                    server.stats.error(&error.text());
                    count_failed(server, &waiter.handle);
                    self.finish(&mut inner, &waiter, &mut state, error.reply());
                }
            }
            drop(state);
            drop(inner);
            gone = !server.engine.exists(physical, key).unwrap_or(false);
        }
    }
}

/// Counts a blocked command that ended with an error reply (served with one, or CLIENT UNBLOCK ...
/// ERROR) in its INFO commandstats `failed_calls`, as Redis 7.0 does when it unblocks a client. The
/// command is the client's last one: a blocked client runs nothing else.
pub fn count_failed(server: &Server, handle: &ClientHandle) {
    let name = *handle.last_cmd.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(spec) = crate::cmd::table::lookup(name.as_bytes()) {
        super::stats::Stats::bump(&server.stats.commands_by_id[spec.id].failed);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use super::*;

    fn server(dir: &std::path::Path) -> Server {
        let args = crate::config::ServeArgs { dir: Some(dir.display().to_string()), ..Default::default() };
        Server::open(crate::config::Config::load(&args).expect("config")).expect("server")
    }

    fn request(serve: Serve) -> BlockRequest {
        BlockRequest {
            keys: vec![Bytes::from("k"), Bytes::from("k")],
            timeout: None,
            serve,
            timeout_reply: Reply::NilArray,
            on_deletion: false,
        }
    }

    /// The races a serve pass settles: a timeout or a disconnection noticed while the waiter is being
    /// served neither answers it nor forgets it; the serve pass's answer wins.
    #[test]
    fn a_timeout_or_disconnection_during_a_serve_pass_waits_for_its_outcome() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let server = server(dir.path());
        let (handle, _pushes) = ClientHandle::new(7, String::new(), String::new());
        let client = Client::new(handle.clone());
        let me: Arc<OnceLock<Arc<Waiter>>> = Arc::default();
        let probe = me.clone();
        let during: Arc<Mutex<Vec<String>>> = Arc::default();
        let log = during.clone();
        let serve: Serve = Box::new(move |ctx, key| {
            let waiter = probe.get().expect("registered");
            let timed_out = ctx.server.blocking.outcome(waiter, true);
            let cancelled = ctx.server.blocking.cancel(waiter);
            let unblocked = ctx.server.blocking.lock().clients.contains_key(&7);
            log.lock().unwrap().push(format!("{timed_out:?} {cancelled} {unblocked}"));
            Ok(Some(Reply::Bulk(key.clone())))
        });
        let waiter = server.blocking.register(&client, request(serve));
        me.set(waiter.clone()).ok().expect("set once");
        assert_eq!(server.blocking.blocked_clients(), 1);
        assert!(handle.blocked.load(Ordering::Relaxed));
        server.blocking.serve_ready(&server);
        // Registered twice on the same key, served once.
        assert_eq!(*during.lock().unwrap(), vec!["None false true".to_string()]);
        assert_eq!(server.blocking.outcome(&waiter, true), Some(Reply::Bulk(Bytes::from("k"))));
        assert_eq!(server.blocking.outcome(&waiter, true), None);
        assert_eq!(server.blocking.blocked_clients(), 0);
        assert!(!handle.blocked.load(Ordering::Relaxed));
        assert!(server.blocking.waited_keys(0).is_empty());
    }

    /// A key that cannot serve leaves the waiter waiting; CLIENT UNBLOCK then ends the wait once.
    #[test]
    fn a_waiter_not_served_keeps_waiting_until_unblocked() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let server = server(dir.path());
        let (handle, _pushes) = ClientHandle::new(9, String::new(), String::new());
        let client = Client::new(handle);
        let waiter = server.blocking.register(&client, request(Box::new(|_, _| Ok(None))));
        server.blocking.serve_ready(&server);
        assert_eq!(server.blocking.outcome(&waiter, false), None);
        assert_eq!(server.blocking.waited_keys(0), vec![Bytes::from("k")]);
        assert!(server.blocking.is_waited(0, b"k") && !server.blocking.is_waited(1, b"k"));
        assert!(server.blocking.unblock(9, true));
        assert!(!server.blocking.unblock(9, true));
        let reply = server.blocking.outcome(&waiter, false).expect("unblocked");
        assert_eq!(reply, Reply::Error("UNBLOCKED client unblocked via CLIENT UNBLOCK".into()));
        assert_eq!(server.blocking.blocked_clients(), 0);
    }

    fn timeout(text: &str) -> Result<Option<Duration>, String> {
        parse_timeout(text.as_bytes(), TimeoutUnit::Seconds).map_err(|e| e.text().into_owned())
    }

    #[test]
    fn timeouts_parse_as_redis_7_0() {
        assert_eq!(timeout("0"), Ok(None));
        assert_eq!(timeout("-0.0001"), Ok(None));
        assert_eq!(timeout("0.0001"), Ok(Some(Duration::from_millis(1))));
        assert_eq!(timeout("1.5"), Ok(Some(Duration::from_millis(1500))));
        assert_eq!(timeout("0x10"), Ok(Some(Duration::from_secs(16))));
        assert_eq!(timeout("1e15"), Ok(Some(Duration::from_millis(1_000_000_000_000_000_000))));
        for negative in ["-1", "inf", "-inf", "1e16", "1e400", "9223372036854775807"] {
            assert_eq!(timeout(negative), Err("ERR timeout is negative".to_string()), "{negative}");
        }
        for bad in ["abc", " 1", "nan", ""] {
            assert_eq!(timeout(bad), Err("ERR timeout is not a float or out of range".to_string()), "{bad}");
        }
        assert_eq!(
            parse_timeout(b"1.5", TimeoutUnit::Milliseconds).map_err(|e| e.text().into_owned()),
            Err("ERR timeout is not an integer or out of range".to_string())
        );
        assert_eq!(parse_timeout(b"250", TimeoutUnit::Milliseconds), Ok(Some(Duration::from_millis(250))));
    }
}
