//! Client state: the connection-local [`Client`] and the shared [`ClientHandle`] other connections see
//! (CLIENT LIST/KILL, pub/sub delivery, WATCH invalidation), plus the [`ClientRegistry`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU16, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::{mpsc, Notify};

use crate::cmd::CommandSpec;
use crate::resp::{Protocol, Reply};

/// Whether replies are sent (CLIENT REPLY).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyMode {
    /// Normal.
    On,
    /// No replies until CLIENT REPLY ON.
    Off,
    /// Skip the reply to the next command.
    SkipNext,
    /// Skip this command's reply (the state SkipNext turns into).
    Skip,
}

/// A key watched by WATCH.
#[derive(Debug, Clone)]
pub struct WatchedKey {
    /// Logical database.
    pub db: u16,
    /// The key.
    pub key: Bytes,
    /// True if the key was live with an expiry when watched (its expiring later aborts EXEC).
    pub had_expiry: bool,
}

/// An open MULTI.
#[derive(Debug, Default)]
pub struct Multi {
    /// Queued commands with their resolved spec and the index their arguments start at.
    pub queued: Vec<(&'static CommandSpec, Vec<Bytes>, usize)>,
    /// A queued command was rejected: EXEC will fail with EXECABORT.
    pub aborted: bool,
}

/// What other connections may see or do to a client.
pub struct ClientHandle {
    /// Unique id (CLIENT ID).
    pub id: u64,
    /// Peer address.
    pub addr: String,
    /// Local address.
    pub laddr: String,
    /// Connection time.
    pub created: Instant,
    /// CLIENT SETNAME.
    pub name: Mutex<Option<Bytes>>,
    /// Selected logical database.
    pub db: AtomicU16,
    /// Last command's full name.
    pub last_cmd: Mutex<&'static str>,
    /// When the last command ran.
    pub last_active: Mutex<Instant>,
    /// Channel subscriptions.
    pub subs: AtomicUsize,
    /// Pattern subscriptions.
    pub psubs: AtomicUsize,
    /// Shard channel subscriptions.
    pub ssubs: AtomicUsize,
    /// Commands queued in MULTI, -1 outside MULTI.
    pub multi: AtomicI64,
    /// 2 or 3.
    pub resp: AtomicU8,
    /// CLIENT NO-EVICT.
    pub no_evict: AtomicBool,
    /// CLIENT NO-TOUCH.
    pub no_touch: AtomicBool,
    /// A watched key changed.
    pub watch_dirty: AtomicBool,
    /// Blocked by a blocking command (CLIENT LIST flag `b`).
    pub blocked: AtomicBool,
    /// Introspection state: CLIENT SETINFO, buffers, MONITOR, tracking.
    pub intro: super::introspection::ClientIntro,
    /// Output buffer limit state (`client-output-buffer-limit`).
    pub obuf: super::obuf::ClientObuf,
    killed: AtomicBool,
    kill: Notify,
    push: mpsc::UnboundedSender<Reply>,
    pending_push: AtomicUsize,
}

impl ClientHandle {
    /// A handle and the receiving end of its push channel.
    pub fn new(id: u64, addr: String, laddr: String) -> (Arc<ClientHandle>, mpsc::UnboundedReceiver<Reply>) {
        let (push, receiver) = mpsc::unbounded_channel();
        let handle = ClientHandle {
            id,
            addr,
            laddr,
            created: Instant::now(),
            name: Mutex::new(None),
            db: AtomicU16::new(0),
            last_cmd: Mutex::new("NULL"),
            last_active: Mutex::new(Instant::now()),
            subs: AtomicUsize::new(0),
            psubs: AtomicUsize::new(0),
            ssubs: AtomicUsize::new(0),
            multi: AtomicI64::new(-1),
            resp: AtomicU8::new(2),
            no_evict: AtomicBool::new(false),
            no_touch: AtomicBool::new(false),
            watch_dirty: AtomicBool::new(false),
            blocked: AtomicBool::new(false),
            intro: Default::default(),
            obuf: Default::default(),
            killed: AtomicBool::new(false),
            kill: Notify::new(),
            push,
            pending_push: AtomicUsize::new(0),
        };
        (Arc::new(handle), receiver)
    }

    /// Asks the connection to close.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        // Every waiter: the connection task may wait for the kill in two places at once (its idle wait's
        // future stays registered while a flush to a client that does not read waits too); `notify_one`
        // alone woke only the first, and the flush never ended. The permit serves later waits.
        self.kill.notify_waiters();
        self.kill.notify_one();
    }

    /// True once killed.
    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }

    /// Resolves when the client is killed.
    pub async fn killed(&self) {
        if !self.is_killed() {
            self.kill.notified().await;
        }
    }

    /// Queues a push message (pub/sub, MONITOR, tracking); closes the client if that puts its output past
    /// its `client-output-buffer-limit` (`server::obuf`).
    pub fn push(&self, message: Reply) {
        if self.is_killed() {
            return;
        }
        self.pending_push.fetch_add(super::obuf::encoded_len(&message), Ordering::Relaxed);
        if super::obuf::after_push(self) {
            return;
        }
        // Counted before sending, so that the receiver's decrement never comes first.
        self.intro.queued_pushes.fetch_add(1, Ordering::Relaxed);
        if self.push.send(message).is_err() {
            self.intro.queued_pushes.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Bytes of push messages queued and not yet encoded for the connection.
    pub fn pending_push(&self) -> usize {
        self.pending_push.load(Ordering::Relaxed)
    }

    /// Marks one push message of `size` bytes ([`super::obuf::encoded_len`]) as delivered.
    pub fn delivered(&self, size: usize) {
        self.pending_push.fetch_sub(size.min(self.pending_push.load(Ordering::Relaxed)), Ordering::Relaxed);
        let _ = self.intro.queued_pushes.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// True while subscribed to anything, shard channels included: Redis's `CLIENT_PUBSUB` flag, which
    /// makes the client a `pubsub` one for CLIENT LIST/KILL TYPE.
    pub fn in_pubsub_context(&self) -> bool {
        self.subs.load(Ordering::Relaxed) + self.psubs.load(Ordering::Relaxed) + self.ssubs.load(Ordering::Relaxed) > 0
    }

    /// Name as text.
    pub fn name_text(&self) -> String {
        self.name
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .unwrap_or_default()
    }

    /// The CLIENT LIST / CLIENT INFO line (without newline): Redis 7.0's fields, then 7.2's `lib-name` and
    /// `lib-ver`. Buffer fields are the connection's own buffers as of its last command.
    pub fn info_line(&self) -> String {
        let age = self.created.elapsed().as_secs();
        let idle = self.last_active.lock().unwrap_or_else(|p| p.into_inner()).elapsed().as_secs();
        let subs = self.subs.load(Ordering::Relaxed);
        let psubs = self.psubs.load(Ordering::Relaxed);
        let multi = self.multi.load(Ordering::Relaxed);
        let intro = &self.intro;
        let tracking = intro.tracking().clone();
        let mut flags = String::new();
        let ssubs = self.ssubs.load(Ordering::Relaxed);
        let mut push_if = |on: bool, flag: char| {
            if on {
                flags.push(flag)
            }
        };
        push_if(intro.monitor.load(Ordering::Relaxed), 'O');
        push_if(subs + psubs + ssubs > 0, 'P');
        push_if(multi >= 0, 'x');
        push_if(self.blocked.load(Ordering::Relaxed), 'b');
        push_if(tracking.on, 't');
        push_if(tracking.broken_redirect, 'R');
        push_if(tracking.bcast, 'B');
        push_if(self.watch_dirty.load(Ordering::Relaxed), 'd');
        push_if(self.no_evict.load(Ordering::Relaxed), 'e');
        push_if(self.no_touch.load(Ordering::Relaxed), 'T');
        if flags.is_empty() {
            flags.push('N');
        }
        let load = |value: &AtomicUsize| value.load(Ordering::Relaxed);
        let (qbuf, qbuf_free, argv_mem, multi_mem) =
            (load(&intro.qbuf), load(&intro.qbuf_free), load(&intro.argv_mem), load(&intro.multi_mem));
        let (obl, rbs, rbp) = (load(&intro.obl), load(&intro.rbs), load(&intro.rbp));
        let (omem, oll) = (super::obuf::used(self, 0), load(&intro.queued_pushes));
        let fd = intro.fd.get().copied().unwrap_or(-1);
        // What the connection holds: its buffers, the command being run, the MULTI queue, pending pushes
        // and the handle itself.
        let tot_mem = qbuf + qbuf_free + rbs + argv_mem + multi_mem + omem + std::mem::size_of::<ClientHandle>();
        let redir = if tracking.on { tracking.redirect as i64 } else { -1 };
        format!(
            "id={} addr={} laddr={} fd={fd} name={} age={age} idle={idle} flags={flags} db={} sub={subs} psub={psubs} ssub={ssubs} \
             multi={multi} qbuf={qbuf} qbuf-free={qbuf_free} argv-mem={argv_mem} multi-mem={multi_mem} rbs={rbs} rbp={rbp} \
             obl={obl} oll={oll} omem={omem} tot-mem={tot_mem} events=r cmd={} user=default redir={redir} resp={} \
             lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            self.name_text(),
            self.db.load(Ordering::Relaxed),
            *self.last_cmd.lock().unwrap_or_else(|p| p.into_inner()),
            self.resp.load(Ordering::Relaxed),
            super::introspection::ClientIntro::text(&intro.lib_name),
            super::introspection::ClientIntro::text(&intro.lib_ver),
        )
    }
}

/// A connection's own state, touched only by its task.
pub struct Client {
    /// Shared handle.
    pub handle: Arc<ClientHandle>,
    /// Protocol version.
    pub proto: Protocol,
    /// Selected logical database.
    pub db: u16,
    /// Open transaction.
    pub multi: Option<Multi>,
    /// Watched keys.
    pub watched: Vec<WatchedKey>,
    /// CLIENT REPLY state.
    pub reply_mode: ReplyMode,
    /// Close the connection once pending replies are written.
    pub close: bool,
    /// Subscribed channels.
    pub channels: BTreeSet<Bytes>,
    /// Subscribed patterns.
    pub patterns: BTreeSet<Bytes>,
    /// Subscribed shard channels.
    pub shard_channels: BTreeSet<Bytes>,
    /// Running the commands of an EXEC (SSUBSCRIBE refuses: Redis's "deny blocking").
    pub in_exec: bool,
    /// Set by a blocking handler that found nothing ready ([`crate::cmd::Ctx::block`]); taken by the dispatcher.
    pub block: Option<super::blocking::BlockRequest>,
    /// Authenticated as the default user (always, while it has no password).
    pub authenticated: bool,
    /// Lets long commands notice shutdown or a vanished peer ([`crate::cmd::Ctx::checkpoint`]).
    pub cancel: super::cancel::Cancel,
    /// `keymiss` events found before the running command, not yet published (`server::keymiss`).
    pub keymiss: std::sync::Mutex<Vec<Bytes>>,
    /// What REPLCONF announced (`server::fullsync`).
    pub replica: super::fullsync::ReplicaConf,
    /// A SYNC transfer its connection must send, then close.
    pub transfer: Option<super::fullsync::Transfer>,
    /// Replies of earlier requests wait unsent in the write buffer (SYNC refuses then, as Redis does).
    pub output_pending: bool,
    /// Set around the dispatch of a script command that runs inline without the script turn: waiting
    /// for the command lock behind a long script, it goes back to waiting for the turn as a task
    /// (`dispatch::Outcome::WaitTurn`) instead of leaving its worker.
    pub may_wait_turn: bool,
}

impl Client {
    /// Fresh state for a new connection.
    pub fn new(handle: Arc<ClientHandle>) -> Client {
        Client {
            handle,
            proto: Protocol::Resp2,
            db: 0,
            multi: None,
            watched: Vec::new(),
            reply_mode: ReplyMode::On,
            close: false,
            channels: BTreeSet::new(),
            patterns: BTreeSet::new(),
            shard_channels: BTreeSet::new(),
            in_exec: false,
            block: None,
            authenticated: true,
            cancel: Default::default(),
            keymiss: Default::default(),
            replica: Default::default(),
            transfer: None,
            output_pending: false,
            may_wait_turn: false,
        }
    }

    /// The client id.
    pub fn id(&self) -> u64 {
        self.handle.id
    }

    /// Channel and pattern subscriptions (the count SUBSCRIBE and PSUBSCRIBE confirmations report).
    pub fn subscription_count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// True while subscribed to anything, shard channels included (RESP2's pub/sub context).
    pub fn in_pubsub_context(&self) -> bool {
        self.subscription_count() + self.shard_channels.len() > 0
    }
}

/// Every connected client.
#[derive(Default)]
pub struct ClientRegistry {
    clients: Mutex<BTreeMap<u64, Arc<ClientHandle>>>,
    next_id: AtomicU64,
}

impl ClientRegistry {
    /// The next client id (starting at 1... as Redis, ids only grow).
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Adds a client.
    pub fn add(&self, handle: Arc<ClientHandle>) {
        self.lock().insert(handle.id, handle);
    }

    /// Removes a client.
    pub fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Number of connected clients.
    pub fn count(&self) -> usize {
        self.lock().len()
    }

    /// The client with `id`, if connected.
    pub fn get(&self, id: u64) -> Option<Arc<ClientHandle>> {
        self.lock().get(&id).cloned()
    }

    /// A snapshot of every client, by id.
    pub fn all(&self) -> Vec<Arc<ClientHandle>> {
        self.lock().values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<ClientHandle>>> {
        self.clients.lock().unwrap_or_else(|p| p.into_inner())
    }
}
