//! WATCH bookkeeping: which clients watch which keys, and marking them dirty when a key changes.
//! Keys are identified by *logical* database, as in Redis: after SWAPDB a watch follows the database
//! number, not the data.
//!
//! Every handler that changes a key calls `Ctx::touch`, under the shared command lock; EXEC checks the
//! flag under the exclusive lock, so a change either happens before EXEC's check or after the whole
//! transaction. Expiry is handled at EXEC (a key watched with a TTL that has since expired aborts it).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::client::ClientHandle;

type WatchMap = HashMap<(u16, Bytes), Vec<Arc<ClientHandle>>>;

/// Watched keys → watching clients.
#[derive(Default)]
pub struct Watches {
    keys: Mutex<WatchMap>,
    count: AtomicUsize,
}

impl Watches {
    fn lock(&self) -> std::sync::MutexGuard<'_, WatchMap> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `client` watches `key` in logical database `db`.
    pub fn watch(&self, db: u16, key: Bytes, client: &Arc<ClientHandle>) {
        let mut keys = self.lock();
        let watchers = keys.entry((db, key)).or_default();
        if !watchers.iter().any(|c| c.id == client.id) {
            watchers.push(client.clone());
        }
        self.count.store(keys.len(), Ordering::Release);
    }

    /// Forgets `client`'s watch on these keys.
    pub fn unwatch(&self, client_id: u64, keys: impl IntoIterator<Item = (u16, Bytes)>) {
        let mut map = self.lock();
        for key in keys {
            if let Some(watchers) = map.get_mut(&key) {
                watchers.retain(|c| c.id != client_id);
                if watchers.is_empty() {
                    map.remove(&key);
                }
            }
        }
        self.count.store(map.len(), Ordering::Release);
    }

    /// Marks the watchers of a key dirty.
    pub fn touch(&self, db: u16, key: &[u8]) {
        if self.count.load(Ordering::Acquire) == 0 {
            return;
        }
        if let Some(watchers) = self.lock().get(&(db, Bytes::copy_from_slice(key))) {
            watchers.iter().for_each(|c| c.watch_dirty.store(true, Ordering::Release));
        }
    }

    /// The keys watched in logical database `db`.
    pub fn keys_in(&self, db: u16) -> Vec<Bytes> {
        if self.count.load(Ordering::Acquire) == 0 {
            return Vec::new();
        }
        self.lock().keys().filter(|(key_db, _)| *key_db == db).map(|(_, key)| key.clone()).collect()
    }

    /// Number of watched keys.
    pub fn watched_keys(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }
}
