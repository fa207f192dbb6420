//! Client-side caching (CLIENT TRACKING): which clients read which keys, and the invalidation messages
//! sent when those keys change, as Redis 7.0's `tracking.c` does.
//!
//! - Default mode: after a read-only command of a tracking client, the command's keys are remembered
//!   with the client's id (OPTIN: only after `CLIENT CACHING yes`; OPTOUT: unless `CLIENT CACHING no`).
//!   When such a key is changed ([`crate::cmd::Ctx::touch`], the one place writers signal), every client
//!   remembered for it is sent `invalidate [key]` once and forgotten until it reads the key again. Keys
//!   are not per database (as in Redis).
//! - BCAST mode: a client registers prefixes (none means every key); the changed keys matching a prefix
//!   are collected and sent to its clients after the command ([`Tracking::flush_broadcasts`]), one
//!   message per prefix with every key changed meanwhile.
//! - NOLOOP: changes made by the client itself are not sent to it.
//! - FLUSHDB/FLUSHALL send every tracking client a null ("everything") invalidation.
//! - A key that expires (active cycle or found on access) is invalidated as changed by no client
//!   (`notify::ExpiredSink`), so NOLOOP does not hold it back.
//! - Delivery: a RESP3 client gets a push `>2 invalidate <keys>`; with REDIRECT the message goes to the
//!   other client instead: as a push if it speaks RESP3, as a `message` on `__redis__:invalidate` if it
//!   is a RESP2 subscriber (otherwise nothing can be sent). A redirect to a client that is gone marks
//!   the tracking client `broken_redirect` and, in RESP3, tells it `tracking-redir-broken <id>`.
//!
//! Messages are queued on the receiving connection's push channel, which the connection writes after
//! the reply it is producing: so a client invalidating its own key sees the reply first, as in Redis.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::client::{ClientHandle, ClientRegistry};
use crate::resp::Reply;

/// A client's tracking settings (CLIENT TRACKING, CLIENT CACHING).
#[derive(Debug, Clone, Default)]
pub struct TrackingState {
    /// Tracking is on.
    pub on: bool,
    /// BCAST mode.
    pub bcast: bool,
    /// OPTIN mode.
    pub optin: bool,
    /// OPTOUT mode.
    pub optout: bool,
    /// NOLOOP.
    pub noloop: bool,
    /// CLIENT CACHING yes (OPTIN) or no (OPTOUT) was given for the next command or transaction.
    pub caching: bool,
    /// The redirect client has gone.
    pub broken_redirect: bool,
    /// Client id invalidations are redirected to (0: none).
    pub redirect: u64,
    /// BCAST prefixes, sorted.
    pub prefixes: BTreeSet<Bytes>,
}

/// The channel RESP2 redirect targets receive invalidations on.
pub const INVALIDATE_CHANNEL: &str = "__redis__:invalidate";

#[derive(Default)]
struct Prefix {
    clients: BTreeSet<u64>,
    /// Changed keys since the last broadcast, with the client that changed each last (0: none).
    keys: BTreeMap<Bytes, u64>,
}

#[derive(Default)]
struct Tables {
    /// key → ids of the clients that read it.
    keys: HashMap<Bytes, BTreeSet<u64>>,
    /// BCAST prefix → its clients and pending keys.
    prefixes: BTreeMap<Bytes, Prefix>,
}

/// The tracking tables.
#[derive(Default)]
pub struct Tracking {
    tables: Mutex<Tables>,
    clients: AtomicUsize,
    /// The tables hold a key or a prefix (kept under the lock): writers skip the lock otherwise. Not the
    /// client count: remembered keys outlive their clients' tracking, and a change still removes them
    /// (INFO `tracking_total_keys` shows it, as in Redis).
    populated: AtomicBool,
    /// Calls of [`Tracking::limit`] in a row that left the table over the limit.
    limit_misses: AtomicUsize,
}

impl Tracking {
    /// Number of clients with tracking on.
    pub fn clients(&self) -> usize {
        self.clients.load(Ordering::Relaxed)
    }

    /// Number of keys remembered (INFO `tracking_total_keys`).
    pub fn total_keys(&self) -> usize {
        self.lock().keys.len()
    }

    /// Number of (key, client) pairs remembered (INFO `tracking_total_items`).
    pub fn total_items(&self) -> usize {
        self.lock().keys.values().map(BTreeSet::len).sum()
    }

    /// Number of BCAST prefixes (INFO `tracking_total_prefixes`).
    pub fn total_prefixes(&self) -> usize {
        self.lock().prefixes.len()
    }

    /// Turns tracking on for `handle` (options already validated).
    pub fn enable(&self, handle: &ClientHandle, new: TrackingState) {
        let mut state = handle.intro.tracking();
        if !state.on {
            self.clients.fetch_add(1, Ordering::Relaxed);
        }
        let mut tables = self.lock();
        let mut prefixes = std::mem::take(&mut state.prefixes);
        if new.bcast {
            let wanted: Vec<Bytes> =
                if new.prefixes.is_empty() { vec![Bytes::new()] } else { new.prefixes.iter().cloned().collect() };
            for prefix in wanted {
                tables.prefixes.entry(prefix.clone()).or_default().clients.insert(handle.id);
                prefixes.insert(prefix);
            }
        }
        *state = TrackingState { on: true, caching: state.caching, prefixes, ..new };
        self.note_population(&tables);
    }

    fn note_population(&self, tables: &Tables) {
        self.populated.store(!tables.keys.is_empty() || !tables.prefixes.is_empty(), Ordering::Relaxed);
    }

    /// Turns tracking off for `handle` (and forgets its prefixes).
    pub fn disable(&self, handle: &ClientHandle) {
        let mut state = handle.intro.tracking();
        if state.bcast {
            let mut tables = self.lock();
            for prefix in &state.prefixes {
                if let Some(entry) = tables.prefixes.get_mut(prefix) {
                    entry.clients.remove(&handle.id);
                    if entry.clients.is_empty() {
                        tables.prefixes.remove(prefix);
                    }
                }
            }
            self.note_population(&tables);
        }
        if state.on {
            self.clients.fetch_sub(1, Ordering::Relaxed);
        }
        *state = TrackingState::default();
    }

    /// Remembers that `id` read `keys` (after a read-only command of a tracking client in default mode).
    pub fn remember(&self, id: u64, keys: impl IntoIterator<Item = Bytes>) {
        let mut tables = self.lock();
        for key in keys {
            tables.keys.entry(key).or_default().insert(id);
        }
        self.note_population(&tables);
    }

    /// `key` changed (by client `writer`, 0 for none): invalidates it for the clients that read it and
    /// queues it for the BCAST prefixes it matches.
    pub fn invalidate(&self, registry: &ClientRegistry, writer: u64, key: &[u8]) {
        // Cheap for the common case: nothing remembered (entries of clients gone are dropped lazily).
        if !self.populated.load(Ordering::Relaxed) {
            return;
        }
        let readers = {
            let mut tables = self.lock();
            for (prefix, entry) in tables.prefixes.iter_mut() {
                if key.starts_with(prefix) {
                    entry.keys.insert(Bytes::copy_from_slice(key), writer);
                }
            }
            let readers = tables.keys.remove(key);
            self.note_population(&tables);
            readers
        };
        for id in readers.into_iter().flatten() {
            let Some(target) = registry.get(id) else { continue };
            let state = target.intro.tracking().clone();
            if !state.on || state.bcast || (state.noloop && id == writer) {
                continue;
            }
            send(registry, &target, &state, Reply::Array(vec![Reply::Bulk(Bytes::copy_from_slice(key))]));
        }
    }

    /// `tracking-table-max-keys` (0: no limit): while more keys are remembered, invalidates remembered
    /// keys (arbitrary ones, as Redis's random walk) for their readers, with an effort that grows each
    /// time the table is still over the limit afterwards (Redis's `trackingLimitUsedSlots`).
    pub fn limit(&self, registry: &ClientRegistry, max_keys: usize) {
        if max_keys == 0 || !self.populated.load(Ordering::Relaxed) {
            return;
        }
        let mut effort = 100 * (self.limit_misses.load(Ordering::Relaxed) + 1);
        while effort > 0 {
            effort -= 1;
            let victim = {
                let tables = self.lock();
                if tables.keys.len() <= max_keys {
                    self.limit_misses.store(0, Ordering::Relaxed);
                    return;
                }
                tables.keys.keys().next().cloned()
            };
            let Some(key) = victim else { break };
            self.invalidate(registry, 0, &key);
        }
        if self.lock().keys.len() <= max_keys {
            self.limit_misses.store(0, Ordering::Relaxed);
        } else {
            self.limit_misses.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A database was flushed: every tracking client is told that everything is invalid.
    pub fn invalidate_all(&self, registry: &ClientRegistry) {
        if self.clients() > 0 {
            for target in registry.all() {
                let state = target.intro.tracking().clone();
                if state.on {
                    send(registry, &target, &state, Reply::Nil);
                }
            }
        }
    }

    /// FLUSHALL also forgets every remembered key (Redis frees the table).
    pub fn forget_all_keys(&self) {
        let mut tables = self.lock();
        tables.keys.clear();
        self.note_population(&tables);
    }

    /// Sends the keys collected for each BCAST prefix to its clients (after a command).
    pub fn flush_broadcasts(&self, registry: &ClientRegistry) {
        if self.clients() == 0 {
            return;
        }
        let pending: Vec<(BTreeSet<u64>, BTreeMap<Bytes, u64>)> = {
            let mut tables = self.lock();
            tables
                .prefixes
                .values_mut()
                .filter(|entry| !entry.keys.is_empty())
                .map(|entry| (entry.clients.clone(), std::mem::take(&mut entry.keys)))
                .collect()
        };
        for (clients, keys) in pending {
            for id in clients {
                let Some(target) = registry.get(id) else { continue };
                let state = target.intro.tracking().clone();
                let list: Vec<Reply> = keys
                    .iter()
                    .filter(|(_, writer)| !(state.noloop && **writer == id))
                    .map(|(key, _)| Reply::Bulk(key.clone()))
                    .collect();
                if !list.is_empty() {
                    send(registry, &target, &state, Reply::Array(list));
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Delivers an invalidation (`keys`: an array of keys, or null for all) for `client` (Redis's
/// `sendTrackingMessage`).
fn send(registry: &ClientRegistry, client: &Arc<ClientHandle>, state: &TrackingState, keys: Reply) {
    let mut receiver = client.clone();
    let redirected = state.redirect != 0;
    if redirected {
        match registry.get(state.redirect) {
            Some(target) => receiver = target,
            None => {
                client.intro.tracking().broken_redirect = true;
                if client.resp.load(Ordering::Relaxed) > 2 {
                    let message =
                        Reply::Push(vec![Reply::bulk("tracking-redir-broken"), Reply::Int(state.redirect as i64)]);
                    client.push(message);
                }
                return;
            }
        }
    }
    if receiver.resp.load(Ordering::Relaxed) > 2 {
        receiver.push(Reply::Push(vec![Reply::bulk("invalidate"), keys]));
    } else if redirected && receiver.subs.load(Ordering::Relaxed) + receiver.psubs.load(Ordering::Relaxed) > 0 {
        receiver.push(Reply::Push(vec![Reply::bulk("message"), Reply::bulk(INVALIDATE_CHANNEL), keys]));
    }
}
