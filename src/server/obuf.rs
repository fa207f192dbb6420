//! Output buffer limits: `client-output-buffer-limit` enforced for normal and pub/sub clients, as Redis 7.0
//! enforces it (`checkClientOutputBufferLimits`).
//!
//! A client's output is what it has not read yet: messages pushed to it and not yet encoded (pub/sub,
//! MONITOR, tracking invalidations: `ClientHandle::push`), the write buffer while a flush is pending, and
//! the replies its connection is encoding. As in Redis, the first [`STATIC_BUF`] bytes are the client's fixed
//! reply buffer and do not count: what passes it is CLIENT LIST's `omem` and what the limits compare.
//!
//! The class is `pubsub` while the client has any subscription (channel, pattern or shard channel),
//! `normal` otherwise (a MONITOR client too, as Redis classes it). A client at or past its class's hard
//! limit, or past the soft limit for more than its seconds (or, in a class with no hard limit, with more
//! than [`PUSH_BOUND`] of pushed messages unread), is closed at once with nothing more sent
//! (its unsent output is dropped, as Redis frees it), and Redis's log line. The checks run where output
//! grows (each push, each reply encoded past [`STATIC_BUF`]) and, for a soft limit reached while nothing
//! new arrives, in [`watch`] four times a second (Redis's `clientsCron`).
//!
//! A normal client's replies are written after each batch of requests it sent; while a write waits for the
//! client to read, nothing more of its requests is read, so a normal client that does not read is held
//! there (its output bounded by a batch's replies) rather than closed, unless one batch's replies pass its
//! limit. With a hard limit set, a batch's replies are not flushed early at [`super::connection`]'s
//! threshold: they accumulate up to the limit, so a pipeline whose replies pass it gets none of them, as
//! in Redis.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;

use super::client::{Client, ClientHandle};
use super::Server;
use crate::resp::Reply;

/// Bytes of a client's output that do not count against its limits: Redis's fixed reply buffer
/// (`PROTO_REPLY_CHUNK_BYTES`).
pub const STATIC_BUF: usize = 16 * 1024;

/// How often [`watch`] looks for clients past a soft limit with no new output.
const WATCH_PERIOD: Duration = Duration::from_millis(250);

/// Redis's default: normal none, replica 256mb/64mb/60, pubsub 32mb/8mb/60.
const DEFAULTS: [u64; 9] = [0, 0, 0, 256 << 20, 64 << 20, 60, 32 << 20, 8 << 20, 60];

/// A client class of `client-output-buffer-limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Every client not in another class.
    Normal = 0,
    /// Replicas (Velo's SYNC transfers are bounded by their own stall limit instead).
    Replica = 1,
    /// Clients with a subscription.
    Pubsub = 2,
}

/// One class's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClassLimit {
    /// Bytes at which the client is closed at once (0: none).
    pub hard: u64,
    /// Bytes the client may stay at or past for `soft_seconds` only (0: none).
    pub soft: u64,
    /// Seconds.
    pub soft_seconds: u64,
}

/// The server's limits, by class: hard, soft, soft seconds, in atomics read on every check.
pub struct Limits([AtomicU64; 9]);

impl Default for Limits {
    fn default() -> Limits {
        Limits(DEFAULTS.map(AtomicU64::new))
    }
}

impl Limits {
    /// Takes the normalised value of `client-output-buffer-limit` (`normal H S T slave H S T pubsub H S T`,
    /// in bytes and seconds); classes it does not name keep their limits.
    pub fn load(&self, value: &str) {
        let words: Vec<&str> = value.split_whitespace().collect();
        for chunk in words.chunks(4) {
            let [class, hard, soft, seconds] = chunk else { continue };
            let index = match class.to_ascii_lowercase().as_str() {
                "normal" => Class::Normal,
                "slave" | "replica" => Class::Replica,
                "pubsub" => Class::Pubsub,
                _ => continue,
            } as usize;
            for (offset, word) in [hard, soft, seconds].into_iter().enumerate() {
                if let Ok(number) = word.parse::<u64>() {
                    self.0[index * 3 + offset].store(number, Ordering::Relaxed);
                }
            }
        }
    }

    /// A class's limits.
    pub fn get(&self, class: Class) -> ClassLimit {
        let at = class as usize * 3;
        let load = |i: usize| self.0[at + i].load(Ordering::Relaxed);
        ClassLimit { hard: load(0), soft: load(1), soft_seconds: load(2) }
    }
}

/// A client's output-limit state, in its [`ClientHandle`].
#[derive(Default)]
pub struct ClientObuf {
    limits: OnceLock<Arc<Limits>>,
    /// Bytes of the write buffer not yet written while a flush waits for the client.
    unsent: AtomicUsize,
    /// When the soft limit was first seen reached, in milliseconds of `now_ms` (0: not reached).
    soft_since: AtomicU64,
    /// Closed for its output: nothing more is written.
    closing: AtomicBool,
}

impl ClientObuf {
    /// Makes the client follow the server's limits (a handle without them follows Redis's defaults).
    pub fn attach(&self, limits: Arc<Limits>) {
        let _ = self.limits.set(limits);
    }

    /// True once the client was closed for passing a limit.
    pub fn closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
    }

    fn limit(&self, class: Class) -> ClassLimit {
        match self.limits.get() {
            Some(limits) => limits.get(class),
            None => {
                let at = class as usize * 3;
                ClassLimit { hard: DEFAULTS[at], soft: DEFAULTS[at + 1], soft_seconds: DEFAULTS[at + 2] }
            }
        }
    }
}

/// Milliseconds since the first call, plus one (so that 0 can mean "never").
fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

/// The client's class.
pub fn class_of(handle: &ClientHandle) -> Class {
    let subscriptions = handle.subs.load(Ordering::Relaxed)
        + handle.psubs.load(Ordering::Relaxed)
        + handle.ssubs.load(Ordering::Relaxed);
    if subscriptions > 0 {
        Class::Pubsub
    } else {
        Class::Normal
    }
}

/// The output that counts against the limits (CLIENT LIST's `omem`), with `encoding` bytes of replies
/// the connection holds besides what the handle knows of.
pub fn used(handle: &ClientHandle, encoding: usize) -> usize {
    (encoding + handle.obuf.unsent.load(Ordering::Relaxed) + handle.pending_push()).saturating_sub(STATIC_BUF)
}

/// Whether `used` bytes of output put the client past a limit of its class (Redis's
/// `checkClientOutputBufferLimits`, including its soft-limit timer).
pub fn reached(handle: &ClientHandle, used: usize) -> bool {
    let limit = handle.obuf.limit(class_of(handle));
    let used = used as u64;
    let hard = limit.hard > 0 && used >= limit.hard;
    let mut soft = limit.soft > 0 && used >= limit.soft;
    let since = &handle.obuf.soft_since;
    if soft {
        let now = now_ms();
        match since.compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed) {
            // First seen: the time starts now.
            Ok(_) => soft = false,
            Err(first) => soft = now.saturating_sub(first) > limit.soft_seconds.saturating_mul(1000),
        }
    } else if since.load(Ordering::Relaxed) != 0 {
        since.store(0, Ordering::Relaxed);
    }
    hard || soft
}

/// Closes a client for its output, once: its connection ends without writing anything more. `scheduled`:
/// found where output grew (Redis's asynchronous free and its log line), otherwise by [`watch`].
pub fn close(handle: &ClientHandle, scheduled: bool) {
    if handle.obuf.closing.swap(true, Ordering::Relaxed) {
        return;
    }
    let info = handle.info_line();
    if scheduled {
        tracing::warn!("Client {info} scheduled to be closed ASAP for overcoming of output buffer limits.");
    } else {
        tracing::warn!("Client {info} closed for overcoming of output buffer limits.");
    }
    handle.kill();
}

/// Pushed messages a client whose class has no hard limit may leave unread: Redis's pubsub hard limit.
/// Redis buffers a normal client's output without bound by default; Velo keeps this bound for the
/// messages it pushes (MONITOR lines, tracking invalidations to a client that does not read).
pub const PUSH_BOUND: u64 = 32 << 20;

/// After a push was queued for `handle`: closes it if that put it past a limit (or, for a class with no
/// hard limit, past [`PUSH_BOUND`]).
pub fn after_push(handle: &ClientHandle) -> bool {
    let used = used(handle, 0);
    let unbounded = handle.obuf.limit(class_of(handle)).hard == 0;
    if reached(handle, used) || (unbounded && used as u64 >= PUSH_BOUND) {
        close(handle, true);
        return true;
    }
    false
}

/// After a reply was encoded into the write buffer: if the client is now past a limit, drops the buffer
/// (nothing of it is sent, as Redis frees the client with its output) and marks the client to close. A
/// buffer within [`STATIC_BUF`] is never checked (Redis does not check a reply that fits its fixed
/// buffer): the usual reply costs one comparison. Past it, the replies count in full: Redis counts in
/// full a reply whose length it does not know when it starts (KEYS, XRANGE, COMMAND: its deferred
/// length sends everything after it to the reply list) and less its fixed buffer's 16 KiB one whose length
/// it knows; Velo, which has built the reply by then, cannot tell them apart.
#[inline]
pub fn after_reply(client: &mut Client, wbuf: &mut BytesMut) {
    if wbuf.len() > STATIC_BUF && reached(&client.handle, used(&client.handle, wbuf.len()) + STATIC_BUF) {
        close(&client.handle, true);
        wbuf.clear();
        client.close = true;
    }
}

/// Whether a write buffer of `buffered` bytes that passed the connection's flush threshold may keep
/// growing before it is written: while the client's class has a hard limit it has not reached (the limit
/// bounds the buffer, and the replies of a batch go out together as Redis sends them).
pub fn holds(handle: &ClientHandle, buffered: usize) -> bool {
    let hard = handle.obuf.limit(class_of(handle)).hard;
    hard > 0 && (used(handle, buffered) as u64) < hard
}

/// The bytes a pushed message takes encoded (RESP2's form; RESP3's differs by a byte or so): what
/// `omem` counts for it while it waits.
pub fn encoded_len(reply: &Reply) -> usize {
    let digits = |n: usize| if n == 0 { 1 } else { n.ilog10() as usize + 1 };
    let aggregate = |parts: &[Reply]| 3 + digits(parts.len()) + parts.iter().map(encoded_len).sum::<usize>();
    match reply {
        Reply::Bulk(bytes) | Reply::BigNumber(bytes) | Reply::Verbatim(_, bytes) => {
            5 + digits(bytes.len()) + bytes.len()
        }
        Reply::Simple(text) | Reply::Error(text) | Reply::DoubleText(text) => 3 + text.len(),
        Reply::Array(parts) | Reply::Set(parts) | Reply::Push(parts) | Reply::Many(parts) => aggregate(parts),
        Reply::Map(pairs) | Reply::Attribute(pairs, _) => {
            3 + digits(pairs.len() * 2) + pairs.iter().map(|(k, v)| encoded_len(k) + encoded_len(v)).sum::<usize>()
        }
        Reply::Int(value) => 3 + value.to_string().len(),
        Reply::Ok => 5,
        Reply::Nil | Reply::NilArray => 5,
        Reply::Double(_) => 24,
        Reply::Bool(_) => 4,
        Reply::None => 0,
    }
}

/// Writes the whole buffer, keeping the handle's count of unwritten bytes (part of `omem` and of the
/// limits) up to date while the client does not read. A client closed for its output gets nothing more.
pub async fn write_all(
    handle: &ClientHandle,
    writer: &mut tokio::net::tcp::OwnedWriteHalf,
    buf: &[u8],
) -> std::io::Result<()> {
    if handle.obuf.closing() {
        return Err(std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "output buffer limit"));
    }
    let unsent = &handle.obuf.unsent;
    let mut written = 0;
    while written < buf.len() {
        unsent.store(buf.len() - written, Ordering::Relaxed);
        match writer.write(&buf[written..]).await {
            Ok(0) => {
                unsent.store(0, Ordering::Relaxed);
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            Ok(n) => written += n,
            Err(error) => {
                unsent.store(0, Ordering::Relaxed);
                return Err(error);
            }
        }
    }
    unsent.store(0, Ordering::Relaxed);
    Ok(())
}

/// Closes clients that stayed past a soft limit with no new output to trigger the check (Redis's
/// `clientsCron` check), until shutdown.
pub async fn watch(server: Arc<Server>) {
    let mut ticker = tokio::time::interval(WATCH_PERIOD);
    while !server.shutting_down() {
        ticker.tick().await;
        for handle in server.clients.all() {
            let used = used(&handle, 0);
            // As Redis: a client with nothing past its fixed buffer is not checked.
            if used > 0 && !handle.obuf.closing() && reached(&handle, used) {
                close(&handle, false);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_follow_the_normalised_value() {
        let limits = Limits::default();
        assert_eq!(limits.get(Class::Pubsub), ClassLimit { hard: 32 << 20, soft: 8 << 20, soft_seconds: 60 });
        limits.load("normal 100000 0 0");
        assert_eq!(limits.get(Class::Normal), ClassLimit { hard: 100000, soft: 0, soft_seconds: 0 });
        assert_eq!(limits.get(Class::Pubsub).hard, 32 << 20);
        limits.load("normal 1 2 3 slave 4 5 6 pubsub 7 8 9");
        assert_eq!(limits.get(Class::Replica), ClassLimit { hard: 4, soft: 5, soft_seconds: 6 });
        assert_eq!(limits.get(Class::Pubsub), ClassLimit { hard: 7, soft: 8, soft_seconds: 9 });
    }

    #[test]
    fn encoded_len_is_resp2_length() {
        let message = Reply::Push(vec![Reply::bulk("message"), Reply::bulk("foo"), Reply::bulk(vec![b'x'; 1000])]);
        let mut out = BytesMut::new();
        message.encode(crate::resp::Protocol::Resp2, &mut out);
        assert_eq!(encoded_len(&message), out.len());
        let line = Reply::simple("1 [0 1.2.3.4:5] \"get\"");
        let mut out = BytesMut::new();
        line.encode(crate::resp::Protocol::Resp2, &mut out);
        assert_eq!(encoded_len(&line), out.len());
    }

    #[test]
    fn soft_limit_needs_its_seconds_and_hard_limit_is_at_once() {
        let (handle, _pushes) = ClientHandle::new(1, String::new(), String::new());
        let limits = Arc::new(Limits::default());
        limits.load("normal 1000 100 0");
        handle.obuf.attach(limits.clone());
        assert!(!reached(&handle, 99));
        // Soft, first seen: not yet; 0 seconds: the next check after a millisecond closes.
        assert!(!reached(&handle, 100));
        std::thread::sleep(Duration::from_millis(5));
        assert!(reached(&handle, 100));
        // Back under the soft limit: the timer starts again.
        assert!(!reached(&handle, 10));
        assert!(!reached(&handle, 100));
        assert!(reached(&handle, 1000));
        limits.load("normal 0 100 60");
        assert!(!reached(&handle, 10));
        assert!(!reached(&handle, 500));
        std::thread::sleep(Duration::from_millis(5));
        assert!(!reached(&handle, 500));
    }
}
