//! Keyspace notifications (`notify-keyspace-events`): the class flags, their parsing and normal form as
//! Redis 7.0 has them, and publishing `__keyspace@<db>__:<key>` / `__keyevent@<db>__:<event>` messages
//! through the ordinary pub/sub registry.
//!
//! Handlers call [`Ctx::notify`] after each change with Redis's event name and class, in the order Redis
//! emits them. With notifications off (the default) that is one relaxed atomic load. Expirations found by
//! the active-expire cycle and on access are published by [`ExpiredSink`], the engine's expire listener.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use bytes::{BufMut, Bytes, BytesMut};

use crate::cmd::Ctx;
use crate::server::Server;

/// `K`: publish on `__keyspace@<db>__:<key>`.
pub const KEYSPACE: u32 = 1 << 0;
/// `E`: publish on `__keyevent@<db>__:<event>`.
pub const KEYEVENT: u32 = 1 << 1;
/// `g`: generic commands (DEL, EXPIRE, RENAME, ...).
pub const GENERIC: u32 = 1 << 2;
/// `$`: string commands.
pub const STRING: u32 = 1 << 3;
/// `l`: list commands.
pub const LIST: u32 = 1 << 4;
/// `s`: set commands.
pub const SET: u32 = 1 << 5;
/// `h`: hash commands.
pub const HASH: u32 = 1 << 6;
/// `z`: sorted set commands.
pub const ZSET: u32 = 1 << 7;
/// `x`: expirations.
pub const EXPIRED: u32 = 1 << 8;
/// `e`: evictions (Velo never evicts: data lives on disk).
pub const EVICTED: u32 = 1 << 9;
/// `t`: stream commands.
pub const STREAM: u32 = 1 << 10;
/// `m`: key misses (not part of `A`).
pub const KEY_MISS: u32 = 1 << 11;
/// `d`: module key type events (Velo has no modules; accepted and kept).
pub const MODULE: u32 = 1 << 13;
/// `n`: a new key was created (not part of `A`).
pub const NEW: u32 = 1 << 14;
/// `A`: alias for `g$lshzxetd`.
pub const ALL: u32 = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// Parses a `notify-keyspace-events` value; `None` if a character is not a class.
pub fn parse_flags(text: &[u8]) -> Option<u32> {
    let mut flags = 0;
    for &c in text {
        flags |= match c {
            b'A' => ALL,
            b'g' => GENERIC,
            b'$' => STRING,
            b'l' => LIST,
            b's' => SET,
            b'h' => HASH,
            b'z' => ZSET,
            b'x' => EXPIRED,
            b'e' => EVICTED,
            b'K' => KEYSPACE,
            b'E' => KEYEVENT,
            b't' => STREAM,
            b'm' => KEY_MISS,
            b'd' => MODULE,
            b'n' => NEW,
            _ => return None,
        };
    }
    Some(flags)
}

/// The error text of a value with a character that is not a class.
pub const INVALID_FLAGS: &str = "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.";

/// The normal form CONFIG GET reports: `A` when every class of `A` is set, else the classes in Redis's
/// order; then `K`, `E`, `m`.
pub fn flags_to_string(flags: u32) -> String {
    let mut text = String::new();
    if flags & ALL == ALL {
        text.push('A');
    } else {
        for (flag, c) in [
            (GENERIC, 'g'),
            (STRING, '$'),
            (LIST, 'l'),
            (SET, 's'),
            (HASH, 'h'),
            (ZSET, 'z'),
            (EXPIRED, 'x'),
            (EVICTED, 'e'),
            (STREAM, 't'),
            (MODULE, 'd'),
            (NEW, 'n'),
        ] {
            if flags & flag != 0 {
                text.push(c);
            }
        }
    }
    // With `A`, `n` is not printed: Redis's normal form drops it there too.
    for (flag, c) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')] {
        if flags & flag != 0 {
            text.push(c);
        }
    }
    text
}

/// The server's notification setting.
#[derive(Default)]
pub struct Notify {
    flags: AtomicU32,
    expired: Arc<ExpiredSink>,
}

/// The engine's [`crate::engine::ExpireListener`]: counts each expired key (INFO `expired_keys`),
/// publishes its `expired` event and invalidates it for tracking clients. It reaches the server through a weak reference set once the server is
/// shared ([`Notify::attach`]); the engine it is given to belongs to that server.
#[derive(Default)]
pub struct ExpiredSink {
    server: OnceLock<Weak<Server>>,
}

impl crate::engine::ExpireListener for ExpiredSink {
    fn on_expired(&self, db: u16, key: &[u8]) {
        let Some(server) = self.server.get().and_then(Weak::upgrade) else { return };
        if crate::elements::is_hidden_db(db) {
            return;
        }
        server.stats.expired_keys.fetch_add(1, Ordering::Relaxed);
        let notify = &server.notify;
        if notify.enabled(EXPIRED) {
            notify.publish(&server, EXPIRED, "expired", server.dbmap.logical(db), key);
        }
        // Then, as Redis's deleteExpiredKeyAndPropagate, the key counts as modified by no client: its
        // tracking clients are told (BCAST keys go out after the command or the active-expire pass).
        server.intro.tracking.invalidate(&server.clients, 0, key);
    }

    /// During a CLIENT PAUSE (WRITE or ALL) an expired key found by a read stays stored until the pause
    /// ends, as in Redis 7.0 (it reads as missing meanwhile); the active cycle waits too.
    fn deletes_now(&self) -> bool {
        self.server.get().and_then(Weak::upgrade).is_none_or(|server| !server.intro.pause.is_paused())
    }
}

impl Notify {
    /// The listener to give the engine (see [`ExpiredSink`]).
    pub fn expire_listener(&self) -> Arc<ExpiredSink> {
        self.expired.clone()
    }

    /// Connects the expiry listener to the shared server.
    pub fn attach(server: &Arc<Server>) {
        let _ = server.notify.expired.server.set(Arc::downgrade(server));
    }

    /// The current classes.
    pub fn flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }

    /// Replaces the classes (CONFIG SET, start-up).
    pub fn set_flags(&self, flags: u32) {
        self.flags.store(flags, Ordering::Relaxed);
    }

    /// True if events of `class` are published.
    #[inline]
    pub fn enabled(&self, class: u32) -> bool {
        self.flags() & class != 0
    }

    /// Publishes `event` of `class` for `key` in logical database `db`, if that class is on.
    #[inline]
    pub fn publish(&self, server: &Server, class: u32, event: &str, db: u16, key: &[u8]) {
        let flags = self.flags();
        if flags & class != 0 {
            publish_slow(server, flags, event, db, key);
        }
    }
}

#[cold]
fn publish_slow(server: &Server, flags: u32, event: &str, db: u16, key: &[u8]) {
    let db = db.to_string();
    let event_bytes = Bytes::copy_from_slice(event.as_bytes());
    if flags & KEYSPACE != 0 {
        let mut channel = BytesMut::with_capacity(16 + db.len() + key.len());
        channel.put_slice(b"__keyspace@");
        channel.put_slice(db.as_bytes());
        channel.put_slice(b"__:");
        channel.put_slice(key);
        server.pubsub.publish(&channel.freeze(), &event_bytes);
    }
    if flags & KEYEVENT != 0 {
        let mut channel = BytesMut::with_capacity(16 + db.len() + event.len());
        channel.put_slice(b"__keyevent@");
        channel.put_slice(db.as_bytes());
        channel.put_slice(b"__:");
        channel.put_slice(event.as_bytes());
        server.pubsub.publish(&channel.freeze(), &Bytes::copy_from_slice(key));
    }
}

impl Ctx<'_> {
    /// Publishes keyspace event `event` of `class` for `key` in physical database `db` (see
    /// [`crate::server::notify`]). Call it after the change, in Redis's order of events.
    #[inline]
    pub fn notify(&self, class: u32, event: &str, db: u16, key: &[u8]) {
        let notify = &self.server.notify;
        // The command's read misses come before its own events (`server::keymiss`).
        if notify.enabled(KEY_MISS) {
            self.flush_keymiss();
        }
        if notify.enabled(class) {
            notify.publish(self.server, class, event, self.server.dbmap.logical(db), key);
        }
    }

    /// Publishes `new` (class `n`) for `key` if `created`: Redis emits it when a command adds a key that
    /// did not exist, before the command's own event.
    #[inline]
    pub fn notify_new(&self, created: bool, db: u16, key: &[u8]) {
        if created {
            self.notify(NEW, "new", db, key);
        }
    }

    /// True if `new` or `expired` events are wanted: a handler that writes a key blindly looks it up
    /// first only then, as Redis always does (which finds an expired key, reporting it, and tells whether
    /// the key is new).
    #[inline]
    pub fn wants_lookup(&self) -> bool {
        self.server.notify.enabled(NEW | EXPIRED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_normal_form() {
        assert_eq!(flags_to_string(parse_flags(b"KEA").unwrap()), "AKE");
        assert_eq!(flags_to_string(parse_flags(b"").unwrap()), "");
        assert_eq!(flags_to_string(parse_flags(b"Elg").unwrap()), "glE");
        assert_eq!(flags_to_string(parse_flags(b"mnKx$").unwrap()), "$xnKm");
        assert_eq!(flags_to_string(parse_flags(b"g$lshzxetdK").unwrap()), "AK");
        assert_eq!(parse_flags(b"KEA?"), None);
        assert_eq!(parse_flags(b"a"), None);
    }
}
