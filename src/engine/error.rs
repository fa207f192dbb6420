//! The engine's error type. Corruption variants carry the file and offset because `inspect-*`, the logs
//! and the operator need to know where to look; the server turns every variant into a client reply in
//! exactly one place (`cmd::CmdError::from`).

use std::path::PathBuf;

/// Everything the storage engine can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call on `path` failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("open", "write", "fsync", ...).
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A record, page or file is structurally wrong.
    #[error("corrupt {file} at offset {offset}: {what}")]
    Corrupt {
        /// The file concerned.
        file: PathBuf,
        /// Byte offset of the bad record or page.
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// A checksum did not match its data.
    #[error("checksum mismatch in {file} at offset {offset}: stored {expected:#010x}, computed {actual:#010x}")]
    ChecksumMismatch {
        /// The file concerned.
        file: PathBuf,
        /// Byte offset of the record or page.
        offset: u64,
        /// CRC stored on disk.
        expected: u32,
        /// CRC of the bytes read.
        actual: u32,
    },
    /// A file starts with the wrong magic: it is not the file it claims to be.
    #[error("{file}: bad magic {found:02x?}, expected {expected:?}")]
    BadMagic {
        /// The file concerned.
        file: PathBuf,
        /// What the file starts with.
        found: Vec<u8>,
        /// The magic for this file type.
        expected: &'static str,
    },
    /// A file was written by a format version this build does not read.
    #[error("{file}: unsupported format version {found}")]
    UnsupportedVersion {
        /// The file concerned.
        file: PathBuf,
        /// The version byte found.
        found: u8,
    },
    /// Another process holds the data directory's lock.
    #[error("data directory {dir} is locked by another process (pid {pid})")]
    Locked {
        /// The data directory.
        dir: PathBuf,
        /// Holder's pid as written in the lock file, or "unknown".
        pid: String,
    },
    /// The configuration disagrees with what the data directory was created with.
    #[error("{0}")]
    Config(String),
    /// A previous write or fsync failed on this slot; writes are refused until restart.
    #[error("slot {slot} is poisoned after a failed {op}; restart the server to recover from the WAL")]
    Poisoned {
        /// The slot index.
        slot: usize,
        /// The operation that failed.
        op: &'static str,
    },
    /// The engine was opened read-only.
    #[error("the data directory is open read-only")]
    ReadOnly,
    /// A key or value exceeds what the format can store.
    #[error("{0}")]
    TooLarge(String),
    /// A point-in-time snapshot could not be taken or was aborted (`engine::snapshot`).
    #[error("snapshot: {0}")]
    Snapshot(String),
    /// A value references a compression dictionary that is not in the dictionary map.
    #[error("value uses compression dictionary {0}, which is not installed")]
    DictMissing(u32),
    /// A dictionary offered for install is not usable.
    #[error("invalid dictionary: {0}")]
    InvalidDictionary(String),
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with the operation and path.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { op, path: path.into(), source }
    }

    /// A structural corruption at `offset` of `file`.
    pub fn corrupt(file: impl Into<PathBuf>, offset: u64, what: impl Into<String>) -> Self {
        Error::Corrupt { file: file.into(), offset, what: what.into() }
    }

    /// True for errors that mean the bytes on disk are wrong (as opposed to the OS failing).
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            Error::Corrupt { .. }
                | Error::ChecksumMismatch { .. }
                | Error::BadMagic { .. }
                | Error::UnsupportedVersion { .. }
        )
    }
}
