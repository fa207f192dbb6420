//! Metadata: the data directory's `velo.meta` (slot count, creation id), its `LOCK` file, and each slot's
//! `meta` (checkpoint sequence, bucket-table shape, chunk files, key counts). Layout: docs/format.md
//! §"Data-directory metadata" and §"Slot metadata". Both metadata files are replaced atomically (write a
//! temporary file, fsync, rename, fsync the directory).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::error::{Error, Result};
use super::format::{self, ByteReader, PutLe, FILE_HEADER_LEN};
use super::io::FileSystem;

/// Name of the data-directory metadata file.
pub const DIR_META_FILE: &str = "velo.meta";
/// Name of the lock file.
pub const LOCK_FILE: &str = "LOCK";

/// Reads a whole file.
pub fn read_whole(fs: &dyn FileSystem, path: &Path) -> Result<Vec<u8>> {
    let file = fs.open_read(path).map_err(|e| Error::io("open", path, e))?;
    let len = file.len().map_err(|e| Error::io("stat", path, e))?;
    let mut bytes = vec![0u8; len as usize];
    file.read_exact_at(&mut bytes, 0).map_err(|e| Error::io("read", path, e))?;
    Ok(bytes)
}

/// Atomically replaces `path` with `bytes`: temporary file, fsync, rename, directory fsync.
pub fn write_atomically(fs: &dyn FileSystem, path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let file = fs.open(&tmp, true).map_err(|e| Error::io("create", &tmp, e))?;
    file.set_len(0).map_err(|e| Error::io("truncate", &tmp, e))?;
    file.write_all_at(bytes, 0).map_err(|e| Error::io("write", &tmp, e))?;
    file.sync().map_err(|e| Error::io("fsync", &tmp, e))?;
    fs.rename(&tmp, path).map_err(|e| Error::io("rename", path, e))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    fs.sync_dir(dir).map_err(|e| Error::io("fsync", dir, e))
}

/// The data directory's identity: slot count and creation id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataDirMeta {
    /// Number of internal slots (power of two, 1..=1024), fixed at creation.
    pub slot_count: u32,
    /// Random id chosen at creation.
    pub creation_id: u64,
}

impl DataDirMeta {
    /// Encodes `velo.meta`.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = format::file_header(format::MAGIC_DIR_META, 0).to_vec();
        bytes.put_u32(self.slot_count);
        bytes.put_u32(0);
        bytes.put_u64(self.creation_id);
        format::seal(bytes)
    }

    /// Decodes `velo.meta`.
    pub fn decode(bytes: &[u8], path: &Path) -> Result<Self> {
        let body = format::unseal(bytes, format::MAGIC_DIR_META, 0, "metadata", path)?;
        let mut reader = ByteReader::new(body);
        let bad = || Error::corrupt(path, FILE_HEADER_LEN as u64, "metadata body truncated");
        let slot_count = reader.u32().ok_or_else(bad)?;
        let _reserved = reader.u32().ok_or_else(bad)?;
        let creation_id = reader.u64().ok_or_else(bad)?;
        check_slot_count(slot_count).map_err(|what| Error::corrupt(path, FILE_HEADER_LEN as u64, what))?;
        Ok(Self { slot_count, creation_id })
    }

    /// Opens the directory's metadata, creating the directory when it is new (and not read-only).
    pub fn open_or_create(fs: &dyn FileSystem, dir: &Path, wanted: Option<u32>, read_only: bool) -> Result<Self> {
        let path = dir.join(DIR_META_FILE);
        if fs.exists(&path) {
            let meta = Self::decode(&read_whole(fs, &path)?, &path)?;
            if let Some(wanted) = wanted {
                if wanted != meta.slot_count {
                    return Err(Error::Config(format!(
                        "data directory {} was created with {} slots, but {wanted} are configured; \
                         the slot count cannot change (use the directory's count or a new directory)",
                        dir.display(),
                        meta.slot_count
                    )));
                }
            }
            return Ok(meta);
        }
        if read_only {
            return Err(Error::Config(format!("{} is not a Velo data directory (no {DIR_META_FILE})", dir.display())));
        }
        let slot_count = wanted.unwrap_or(super::DEFAULT_SLOT_COUNT);
        check_slot_count(slot_count).map_err(Error::Config)?;
        fs.create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
        let creation_id = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ ((std::process::id() as u64) << 32);
        let meta = Self { slot_count, creation_id };
        write_atomically(fs, &path, &meta.encode())?;
        Ok(meta)
    }
}

/// Checks that a slot count is a power of two in 1..=1024.
pub fn check_slot_count(count: u32) -> std::result::Result<(), String> {
    if count == 0 || count > 1024 || !count.is_power_of_two() {
        return Err(format!("invalid slot count {count}: must be a power of two from 1 to 1024"));
    }
    Ok(())
}

/// The held exclusive lock on a data directory; released on drop.
pub struct DirLock {
    _guard: Box<dyn std::any::Any + Send + Sync>,
}

impl DirLock {
    /// Takes the directory's lock and records this process's pid in it.
    pub fn acquire(fs: &dyn FileSystem, dir: &Path) -> Result<DirLock> {
        fs.create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
        let path = dir.join(LOCK_FILE);
        match fs.try_lock(&path).map_err(|e| Error::io("lock", &path, e))? {
            Some(guard) => {
                let file = fs.open(&path, true).map_err(|e| Error::io("open", &path, e))?;
                let pid = format!("{}\n", std::process::id());
                file.set_len(0).map_err(|e| Error::io("write", &path, e))?;
                file.write_all_at(pid.as_bytes(), 0).map_err(|e| Error::io("write", &path, e))?;
                Ok(DirLock { _guard: guard })
            }
            None => {
                let pid = read_whole(fs, &path)
                    .ok()
                    .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string())
                    .filter(|pid| !pid.is_empty())
                    .unwrap_or_else(|| "unknown".into());
                Err(Error::Locked { dir: dir.to_path_buf(), pid })
            }
        }
    }
}

/// A chunk file's entry in the slot metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChunkFileMeta {
    /// Bytes of the file that hold committed segments (anything past this is discarded on open).
    pub committed_len: u64,
    /// Sum of the encoded lengths of every record written to the file.
    pub written_bytes: u64,
    /// Sum of the encoded lengths of the records still referenced by a bucket cell.
    pub live_bytes: u64,
}

/// A slot's durable state as of its last checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SlotMeta {
    /// Every WAL record with a sequence up to this one is in the buckets and segments.
    pub checkpoint_seq: u64,
    /// Linear hashing: buckets `0..split` use `level + 1` hash bits, the others `level`.
    pub level: u8,
    /// Linear hashing: the next bucket to split.
    pub split: u64,
    /// Pages in the overflow file (including page 0, the file header page).
    pub overflow_pages: u64,
    /// Overflow pages free for reuse.
    pub free_overflow: Vec<u64>,
    /// Bytes used by cells across all pages.
    pub used_bytes: u64,
    /// Keys per database (cells not made dead by a database flush).
    pub key_counts: BTreeMap<u16, u64>,
    /// Per database: cells with a lower sequence were emptied by FLUSHDB.
    pub db_flush_seq: BTreeMap<u16, u64>,
    /// Chunk files by id.
    pub chunk_files: BTreeMap<u32, ChunkFileMeta>,
    /// The chunk file new segments are appended to.
    pub active_chunk: u32,
    /// Files to delete once this metadata is durable (dead big values, compacted chunk files).
    pub pending_deletes: Vec<String>,
}

impl SlotMeta {
    /// Number of primary buckets.
    pub fn bucket_count(&self) -> u64 {
        (1u64 << self.level) + self.split
    }

    /// Encodes the slot metadata file.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = format::file_header(format::MAGIC_SLOT_META, 0).to_vec();
        bytes.put_u64(self.checkpoint_seq);
        bytes.push(self.level);
        bytes.extend_from_slice(&[0; 7]);
        bytes.put_u64(self.split);
        bytes.put_u64(self.overflow_pages);
        bytes.put_u64(self.used_bytes);
        bytes.put_u32(self.active_chunk);
        bytes.put_u32(self.free_overflow.len() as u32);
        for page in &self.free_overflow {
            bytes.put_u64(*page);
        }
        bytes.put_u32(self.key_counts.len() as u32);
        for (db, count) in &self.key_counts {
            bytes.put_u16(*db);
            bytes.put_u64(*count);
        }
        bytes.put_u32(self.db_flush_seq.len() as u32);
        for (db, seq) in &self.db_flush_seq {
            bytes.put_u16(*db);
            bytes.put_u64(*seq);
        }
        bytes.put_u32(self.chunk_files.len() as u32);
        for (id, chunk) in &self.chunk_files {
            bytes.put_u32(*id);
            bytes.put_u64(chunk.committed_len);
            bytes.put_u64(chunk.written_bytes);
            bytes.put_u64(chunk.live_bytes);
        }
        bytes.put_u32(self.pending_deletes.len() as u32);
        for name in &self.pending_deletes {
            bytes.put_u16(name.len() as u16);
            bytes.extend_from_slice(name.as_bytes());
        }
        format::seal(bytes)
    }

    /// Decodes the slot metadata file.
    pub fn decode(bytes: &[u8], path: &Path) -> Result<Self> {
        let body = format::unseal(bytes, format::MAGIC_SLOT_META, 0, "metadata", path)?;
        let mut r = ByteReader::new(body);
        let bad = |r: &ByteReader<'_>| {
            Error::corrupt(path, (FILE_HEADER_LEN + r.position()) as u64, "slot metadata truncated")
        };
        let mut meta = SlotMeta { checkpoint_seq: r.u64().ok_or_else(|| bad(&r))?, ..Default::default() };
        meta.level = r.u8().ok_or_else(|| bad(&r))?;
        r.take(7).ok_or_else(|| bad(&r))?;
        meta.split = r.u64().ok_or_else(|| bad(&r))?;
        meta.overflow_pages = r.u64().ok_or_else(|| bad(&r))?;
        meta.used_bytes = r.u64().ok_or_else(|| bad(&r))?;
        meta.active_chunk = r.u32().ok_or_else(|| bad(&r))?;
        let count = r.u32().ok_or_else(|| bad(&r))?;
        for _ in 0..count {
            meta.free_overflow.push(r.u64().ok_or_else(|| bad(&r))?);
        }
        let count = r.u32().ok_or_else(|| bad(&r))?;
        for _ in 0..count {
            let db = r.u16().ok_or_else(|| bad(&r))?;
            meta.key_counts.insert(db, r.u64().ok_or_else(|| bad(&r))?);
        }
        let count = r.u32().ok_or_else(|| bad(&r))?;
        for _ in 0..count {
            let db = r.u16().ok_or_else(|| bad(&r))?;
            meta.db_flush_seq.insert(db, r.u64().ok_or_else(|| bad(&r))?);
        }
        let count = r.u32().ok_or_else(|| bad(&r))?;
        for _ in 0..count {
            let id = r.u32().ok_or_else(|| bad(&r))?;
            let chunk = ChunkFileMeta {
                committed_len: r.u64().ok_or_else(|| bad(&r))?,
                written_bytes: r.u64().ok_or_else(|| bad(&r))?,
                live_bytes: r.u64().ok_or_else(|| bad(&r))?,
            };
            meta.chunk_files.insert(id, chunk);
        }
        let count = r.u32().ok_or_else(|| bad(&r))?;
        for _ in 0..count {
            let len = r.u16().ok_or_else(|| bad(&r))? as usize;
            let name = r.take(len).ok_or_else(|| bad(&r))?;
            meta.pending_deletes.push(String::from_utf8_lossy(name).into_owned());
        }
        if r.remaining() != 0 {
            return Err(Error::corrupt(
                path,
                (FILE_HEADER_LEN + r.position()) as u64,
                "trailing bytes in slot metadata",
            ));
        }
        if meta.level > 50 || meta.split >= (1u64 << meta.level) {
            return Err(Error::corrupt(
                path,
                FILE_HEADER_LEN as u64,
                format!("impossible bucket table (level {}, split {})", meta.level, meta.split),
            ));
        }
        Ok(meta)
    }
}

/// The path of a slot's metadata file.
pub fn slot_meta_path(slot_dir: &Path) -> PathBuf {
    slot_dir.join("meta")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_meta_roundtrip_and_every_truncation_fails() {
        let meta = DataDirMeta { slot_count: 8, creation_id: 0x0123_4567_89ab_cdef };
        let bytes = meta.encode();
        assert_eq!(bytes.len(), 16 + 16 + 4);
        assert_eq!(DataDirMeta::decode(&bytes, Path::new("m")).ok(), Some(meta));
        for len in 0..bytes.len() {
            assert!(DataDirMeta::decode(&bytes[..len], Path::new("m")).is_err());
        }
    }

    #[test]
    fn slot_meta_roundtrip_and_every_truncation_fails() {
        let mut meta = SlotMeta {
            checkpoint_seq: 42,
            level: 3,
            split: 2,
            overflow_pages: 5,
            used_bytes: 999,
            ..Default::default()
        };
        meta.free_overflow = vec![3, 4];
        meta.key_counts.insert(0, 10);
        meta.db_flush_seq.insert(2, 7);
        meta.chunk_files.insert(1, ChunkFileMeta { committed_len: 4096, written_bytes: 100, live_bytes: 50 });
        meta.pending_deletes.push("big-7.val".into());
        let bytes = meta.encode();
        assert_eq!(SlotMeta::decode(&bytes, Path::new("m")).ok(), Some(meta));
        for len in 0..bytes.len() {
            assert!(SlotMeta::decode(&bytes[..len], Path::new("m")).is_err(), "truncation to {len}");
        }
        for index in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[index] ^= 1;
            assert!(SlotMeta::decode(&bad, Path::new("m")).is_err(), "flip at {index}");
        }
    }

    #[test]
    fn slot_counts_are_checked() {
        assert!(check_slot_count(0).is_err());
        assert!(check_slot_count(3).is_err());
        assert!(check_slot_count(2048).is_err());
        assert!(check_slot_count(1).is_ok());
        assert!(check_slot_count(1024).is_ok());
    }
}
