//! The double-write batch: every page a checkpoint will rewrite in place, plus the new slot metadata, is
//! first written here and fsynced. Only then are the pages written in place and the metadata replaced.
//! A crash while writing in place leaves a complete batch that recovery applies again (idempotently); a
//! crash while writing the batch leaves an incomplete one (no trailer) that recovery discards, because no
//! in-place write has started. Layout: docs/format.md §"Double-write batch".

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::buckets::{PageFile, PageId};
use super::error::{Error, Result};
use super::format::{self, ByteReader, PutLe, FILE_HEADER_LEN};
use super::io::{FileHandle, FileSystem};
use super::page::PAGE_SIZE;

/// File name of a slot's double-write batch.
pub const DWB_FILE: &str = "dwb";
/// Bytes of one page entry: file, reserved, page number, page image.
pub const ENTRY_LEN: usize = 16 + PAGE_SIZE;
/// Magic closing a complete batch.
pub const TRAILER_MAGIC: &[u8; 8] = b"VDWBDONE";
/// Bytes after the metadata image: metadata length, entry count, CRC, trailer magic.
pub const TRAILER_LEN: usize = 4 + 4 + 4 + 8;

/// A batch being written during a checkpoint.
pub struct DwbWriter {
    path: PathBuf,
    file: Arc<dyn FileHandle>,
    end: u64,
    crc: crc32fast::Hasher,
    count: u32,
    index: HashMap<PageId, u64>,
}

impl DwbWriter {
    /// Opens the batch file and empties it.
    pub fn begin(fs: &dyn FileSystem, dir: &Path) -> Result<Self> {
        let path = dir.join(DWB_FILE);
        let existed = fs.exists(&path);
        let file = fs.open(&path, true).map_err(|e| Error::io("open", &path, e))?;
        if !existed {
            // The batch is only a safety net if its directory entry survives a crash too.
            fs.sync_dir(dir).map_err(|e| Error::io("fsync", dir, e))?;
        }
        file.set_len(0).map_err(|e| Error::io("truncate", &path, e))?;
        file.write_all_at(&format::file_header(format::MAGIC_DOUBLE_WRITE, 0), 0)
            .map_err(|e| Error::io("write", &path, e))?;
        Ok(Self {
            path,
            file,
            end: FILE_HEADER_LEN as u64,
            crc: crc32fast::Hasher::new(),
            count: 0,
            index: HashMap::new(),
        })
    }

    /// Appends a page image; a later image of the same page supersedes it.
    pub fn add_page(&mut self, id: PageId, page: &[u8; PAGE_SIZE]) -> Result<()> {
        let mut entry = Vec::with_capacity(ENTRY_LEN);
        entry.push(id.file as u8);
        entry.extend_from_slice(&[0; 7]);
        entry.put_u64(id.number);
        entry.extend_from_slice(page);
        self.file.write_all_at(&entry, self.end).map_err(|e| Error::io("write", &self.path, e))?;
        self.crc.update(&entry);
        self.index.insert(id, self.end + 16);
        self.end += ENTRY_LEN as u64;
        self.count += 1;
        Ok(())
    }

    /// The latest image of a page in this batch, if it has one.
    pub fn page(&self, id: PageId) -> Result<Option<Box<[u8; PAGE_SIZE]>>> {
        let Some(offset) = self.index.get(&id) else {
            return Ok(None);
        };
        let mut page = Box::new([0u8; PAGE_SIZE]);
        self.file.read_exact_at(&mut page[..], *offset).map_err(|e| Error::io("read", &self.path, e))?;
        Ok(Some(page))
    }

    /// The pages of the batch (latest image of each).
    pub fn page_ids(&self) -> Vec<PageId> {
        let mut ids: Vec<PageId> = self.index.keys().copied().collect();
        ids.sort();
        ids
    }

    /// Seals the batch with the new slot metadata and makes it durable. The pages and metadata are synced
    /// before the 20-byte trailer is written (and synced): a trailer on disk therefore proves the batch
    /// complete, and a batch with a trailer but a bad CRC is corruption, not a torn write.
    pub fn commit(&mut self, meta: &[u8]) -> Result<()> {
        let mut body = meta.to_vec();
        body.put_u32(meta.len() as u32);
        body.put_u32(self.count);
        self.crc.update(&body);
        self.file.write_all_at(&body[..meta.len()], self.end).map_err(|e| Error::io("write", &self.path, e))?;
        self.end += meta.len() as u64;
        self.file.sync().map_err(|e| Error::io("fsync", &self.path, e))?;
        let mut trailer = body[meta.len()..].to_vec();
        trailer.put_u32(self.crc.clone().finalize());
        trailer.extend_from_slice(TRAILER_MAGIC);
        self.file.write_all_at(&trailer, self.end).map_err(|e| Error::io("write", &self.path, e))?;
        self.end += trailer.len() as u64;
        self.file.sync().map_err(|e| Error::io("fsync", &self.path, e))
    }

    /// Empties the batch file after the in-place writes and the metadata are durable, durably: otherwise
    /// the next batch's unsynced writes could land inside this one's complete image.
    pub fn clear(&mut self) -> Result<()> {
        self.file.set_len(FILE_HEADER_LEN as u64).map_err(|e| Error::io("truncate", &self.path, e))?;
        self.file.sync().map_err(|e| Error::io("fsync", &self.path, e))
    }
}

/// A complete batch found at recovery.
#[derive(Debug)]
pub struct RecoveredBatch {
    /// Page images, in write order (later ones supersede earlier ones).
    pub pages: Vec<(PageId, Box<[u8; PAGE_SIZE]>)>,
    /// The slot metadata image.
    pub meta: Vec<u8>,
}

/// Reads a batch file. `Ok(None)` if it is empty or incomplete (torn: nothing was written in place yet).
pub fn recover(bytes: &[u8], path: &Path) -> Result<Option<RecoveredBatch>> {
    if bytes.len() <= FILE_HEADER_LEN {
        return Ok(None);
    }
    // Without its trailer the batch is incomplete, whatever else reached the disk: nothing was written in
    // place yet. The trailer is written only after everything before it (header included) was synced.
    if bytes.len() < FILE_HEADER_LEN + TRAILER_LEN || &bytes[bytes.len() - 8..] != TRAILER_MAGIC {
        return Ok(None);
    }
    format::check_file_header(bytes, format::MAGIC_DOUBLE_WRITE, path)?;
    let body = &bytes[FILE_HEADER_LEN..bytes.len() - 12];
    let trailer_at = bytes.len() - TRAILER_LEN;
    let mut trailer = ByteReader::new(&bytes[trailer_at..]);
    let meta_len = trailer.u32().unwrap_or(0) as usize;
    let count = trailer.u32().unwrap_or(0) as usize;
    let expected = trailer.u32().unwrap_or(0);
    let actual = format::crc32(body);
    if expected != actual {
        return Err(Error::ChecksumMismatch { file: path.to_path_buf(), offset: trailer_at as u64, expected, actual });
    }
    let entries_len = count.checked_mul(ENTRY_LEN);
    if entries_len.and_then(|len| len.checked_add(meta_len + 8)) != Some(body.len()) {
        return Err(Error::corrupt(path, trailer_at as u64, "batch lengths disagree"));
    }
    let mut pages = Vec::with_capacity(count);
    let mut reader = ByteReader::new(body);
    for index in 0..count {
        let offset = (FILE_HEADER_LEN + index * ENTRY_LEN) as u64;
        let file = match reader.u8() {
            Some(0) => PageFile::Primary,
            Some(1) => PageFile::Overflow,
            _ => return Err(Error::corrupt(path, offset, "unknown page file in batch")),
        };
        reader.take(7);
        let number = reader.u64().ok_or_else(|| Error::corrupt(path, offset, "batch entry truncated"))?;
        let image = reader.array::<PAGE_SIZE>().ok_or_else(|| Error::corrupt(path, offset, "batch entry truncated"))?;
        pages.push((PageId { file, number }, Box::new(image)));
    }
    let meta =
        reader.take(meta_len).ok_or_else(|| Error::corrupt(path, trailer_at as u64, "metadata truncated"))?.to_vec();
    Ok(Some(RecoveredBatch { pages, meta }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::io::CrashFs;

    #[test]
    fn complete_batches_recover_and_torn_ones_are_ignored() {
        let fs = CrashFs::new();
        let dir = Path::new("/slot");
        let mut writer = DwbWriter::begin(&fs, dir).expect("begin");
        writer.add_page(PageId::bucket(0), &[7u8; PAGE_SIZE]).expect("add");
        writer.add_page(PageId::overflow(3), &[9u8; PAGE_SIZE]).expect("add");
        assert_eq!(writer.page(PageId::overflow(3)).expect("read").map(|p| p[0]), Some(9));
        let before_commit = fs.read_file(&dir.join(DWB_FILE)).expect("file");
        writer.commit(b"META").expect("commit");
        let bytes = fs.read_file(&dir.join(DWB_FILE)).expect("file");
        let batch = recover(&bytes, Path::new("dwb")).expect("valid").expect("complete");
        assert_eq!(batch.pages.len(), 2);
        assert_eq!(batch.meta, b"META");
        assert!(recover(&before_commit, Path::new("dwb")).expect("torn is fine").is_none());
        for len in 0..bytes.len() {
            if len % 97 == 0 || len > bytes.len() - 40 {
                assert!(!matches!(recover(&bytes[..len], Path::new("dwb")), Ok(Some(_))), "truncation {len}");
            }
        }
        let mut bad = bytes.clone();
        bad[100] ^= 1;
        assert!(recover(&bad, Path::new("dwb")).is_err());
    }
}
