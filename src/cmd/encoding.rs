//! Redis 7.0's sticky encodings of hashes, sets and sorted sets: which writes promote a collection to
//! the large encoding (hashtable / skiplist), and the thresholds those writes are judged by.
//!
//! Redis converts a listpack hash or sorted set, or an intset, to its large encoding when a write makes
//! it outgrow `hash-max-listpack-*`, `zset-max-listpack-*` or `set-max-intset-entries` (or, for a set, adds
//! a member that is not an integer), and never converts back: HDEL, SREM, ZREM leave it as it is, RENAME,
//! MOVE and COPY keep the object. Velo stores that state with the value (a flag, docs/format.md
//! "Encoding flag"): [`crate::cmd::collection::Handle`] sets it on save when the content calls for the
//! large encoding, and OBJECT ENCODING and the SCAN family read it. Values written whole from a result
//! (the STORE commands, RESTORE, `velo rdb-restore`) get it from their content, as Redis chooses the
//! encoding of those from the content.
//!
//! The thresholds are the server's live configuration, kept here too (set at start and on CONFIG SET)
//! because a save runs deep under a slot lock where no server context is at hand.

use std::sync::RwLock;

use crate::config::params::EncodingLimits;

static LIMITS: RwLock<EncodingLimits> = RwLock::new(EncodingLimits {
    hash_entries: 512,
    hash_value: 64,
    set_intset_entries: 512,
    zset_entries: 128,
    zset_value: 64,
    stream_nodes: crate::types::stream::NodeLimits {
        entries: crate::types::stream::NODE_MAX_ENTRIES,
        bytes: crate::types::stream::NODE_MAX_BYTES,
    },
});

/// The thresholds writes are judged by now.
pub fn limits() -> EncodingLimits {
    *LIMITS.read().unwrap_or_else(|p| p.into_inner())
}

/// Installs the configured thresholds (server start, CONFIG SET).
pub fn set_limits(limits: EncodingLimits) {
    *LIMITS.write().unwrap_or_else(|p| p.into_inner()) = limits;
}
