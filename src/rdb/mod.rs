//! Redis RDB files and DUMP payloads: a reader for RDB versions 1 to 12 (Redis 2.x to 7.4) and a writer
//! of version 10 (what Redis 7.0 writes). Shared by `velo rdb-restore`/`rdb-dump` and the server's DUMP,
//! RESTORE, SAVE and BGSAVE; synchronous, no async runtime.
//!
//! - [`lzf`]: the LZF codec of compressed strings.
//! - [`packed`]: listpack, ziplist, intset and zipmap (the encodings nested in RDB strings).
//! - [`read`]: the file and payload reader: opcodes, every type and encoding, CRC64.
//! - [`mod@write`]: the version-10 writer with Redis 7.0's encodings and thresholds.
//! - [`load`]: loading files offline into an engine (two passes, batched) or online with RESTORE.
//! - [`export`]: writing an engine's keys as an RDB file.
//! - [`store`]: RDB values to and from Velo's stored forms (compact or split collections).
//!
//! Reading never panics: every length is checked against the input, and an error names the byte offset
//! and the key being read. A key is only returned whole.

#![deny(clippy::unwrap_used, clippy::indexing_slicing)]

pub mod export;
pub mod load;
pub mod lzf;
pub mod packed;
pub mod read;
pub mod store;
pub mod write;

use bytes::Bytes;

use crate::types::stream::StreamValue;

/// The RDB version this writer produces (Redis 7.0).
pub const WRITE_VERSION: u16 = 10;
/// The newest RDB version the reader accepts (Redis 7.4).
pub const MAX_READ_VERSION: u16 = 12;

/// CRC-64/Jones as Redis computes it over files and DUMP payloads, with 16 lookup tables (slice-by-16):
/// several times faster than the byte-wise default over a whole RDB file, for 32 KiB of tables.
pub static CRC64: crc::Crc<u64, crc::Table<16>> = crc::Crc::<u64, crc::Table<16>>::new(&crc::CRC_64_REDIS);

/// A running CRC64 ([`CRC64`]).
pub type Crc64Digest = crc::Digest<'static, u64, crc::Table<16>>;

/// Why RDB input could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RdbError {
    /// The input is damaged or not RDB.
    #[error("{what} at byte {offset}{}", key_note(key))]
    Corrupt {
        /// Offset in the file (or payload) where reading failed.
        offset: u64,
        /// The key being read, if any.
        key: Option<Bytes>,
        /// What was wrong.
        what: String,
    },
    /// Valid RDB that Velo cannot hold (a module type it cannot skip, hash fields with expiries, ...).
    #[error("{what} at byte {offset}{}", key_note(key))]
    Unsupported {
        /// Offset in the file (or payload).
        offset: u64,
        /// The key concerned, if any.
        key: Option<Bytes>,
        /// What cannot be held.
        what: String,
    },
    /// The CRC64 at the end does not match the content.
    #[error("RDB checksum mismatch: stored {stored:016x}, computed {computed:016x}")]
    Checksum {
        /// The stored checksum.
        stored: u64,
        /// The checksum of the content.
        computed: u64,
    },
}

fn key_note(key: &Option<Bytes>) -> String {
    match key {
        Some(key) => format!(" (key \"{}\")", String::from_utf8_lossy(key).escape_debug()),
        None => String::new(),
    }
}

impl RdbError {
    /// The same error, naming `key` if it names none yet.
    pub fn with_key(self, name: &[u8]) -> RdbError {
        match self {
            RdbError::Corrupt { offset, key: None, what } => {
                RdbError::Corrupt { offset, key: Some(Bytes::copy_from_slice(name)), what }
            }
            RdbError::Unsupported { offset, key: None, what } => {
                RdbError::Unsupported { offset, key: Some(Bytes::copy_from_slice(name)), what }
            }
            other => other,
        }
    }
}

/// A value as RDB carries it, decoded from whatever encoding held it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string.
    String(Bytes),
    /// A list, head first.
    List(Vec<Bytes>),
    /// A set's members.
    Set(Vec<Bytes>),
    /// A sorted set's members with their scores.
    SortedSet(Vec<(Bytes, f64)>),
    /// A hash's field/value pairs.
    Hash(Vec<(Bytes, Bytes)>),
    /// A stream with its groups.
    Stream(Box<StreamValue>),
}

impl Value {
    /// Redis's TYPE name of the value.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::SortedSet(_) => "zset",
            Value::Hash(_) => "hash",
            Value::Stream(_) => "stream",
        }
    }
}
