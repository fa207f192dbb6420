//! The key-bucket table of a slot: linear hashing over 4 KiB pages, so the table grows one bucket at a time
//! with no ceiling. Bucket `b` is page `b + 1` of the `buckets` file; a bucket whose cells do not fit in one
//! page continues in a chain of pages in the `overflow` file. Page 0 of each file is its header page.
//! Reads go through a byte-bounded page cache. In-place writes happen only during a checkpoint, after the
//! double-write batch holding the same pages is durable (see [`super::dwb`]). Layout: docs/format.md
//! §"Key-bucket files".

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::cache::ByteLru;
use super::error::{Error, Result};
use super::format::{self, FILE_HEADER_LEN};
use super::io::{FileHandle, FileSystem};
use super::page::{self, PAGE_SIZE};

/// File of primary bucket pages.
pub const BUCKETS_FILE: &str = "buckets";
/// File of overflow pages.
pub const OVERFLOW_FILE: &str = "overflow";

/// Which page file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum PageFile {
    /// `buckets`: page `b + 1` is bucket `b`.
    Primary = 0,
    /// `overflow`: chain continuation pages.
    Overflow = 1,
}

/// A page's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PageId {
    /// Which file.
    pub file: PageFile,
    /// Page number in the file (0 is the header page).
    pub number: u64,
}

impl PageId {
    /// The primary page of a bucket.
    pub fn bucket(bucket: u64) -> Self {
        PageId { file: PageFile::Primary, number: bucket + 1 }
    }
    /// An overflow page.
    pub fn overflow(number: u64) -> Self {
        PageId { file: PageFile::Overflow, number }
    }
}

/// A page image shared between the cache and readers.
pub type PageBuf = Arc<[u8; PAGE_SIZE]>;

/// A page in the cache, with the index of its cells that point lookups use ([`page::index_cells`]).
#[derive(Clone)]
struct CachedPage {
    bytes: PageBuf,
    index: Arc<[u32]>,
    /// The page's overflow link, kept here so that a lookup reads no header line of the page.
    next: u64,
}

impl CachedPage {
    fn new(bytes: PageBuf) -> CachedPage {
        let index = page::index_cells(&bytes[..]).into();
        CachedPage { next: page::next_overflow(&bytes[..]), bytes, index }
    }

    /// Bytes it holds, for the cache's bound.
    fn size(&self) -> usize {
        PAGE_SIZE + 4 * self.index.len()
    }

    fn find_cell(&self, hash: u64, db: u16, key: &[u8]) -> (Option<page::Cell>, u64) {
        (page::find_cell_indexed(&self.bytes[..], &self.index, hash, db, key), self.next)
    }

    fn find_cell_ref(&self, hash: u64, db: u16, key: &[u8]) -> (Option<page::CellRef<'_>>, u64) {
        (page::find_cell_ref_indexed(&self.bytes[..], &self.index, hash, db, key), self.next)
    }
}

/// The bucket a key hash belongs to, under linear hashing with `level` and `split`.
pub fn bucket_of(hash: u64, level: u8, split: u64) -> u64 {
    let low = hash & ((1u64 << level) - 1);
    if low < split {
        hash & ((1u64 << (level + 1)) - 1)
    } else {
        low
    }
}

/// Hash bits used by a bucket (its level).
pub fn bucket_level(bucket: u64, level: u8, split: u64) -> u8 {
    if bucket < split || bucket >= (1u64 << level) {
        level + 1
    } else {
        level
    }
}

/// The header page of a page file.
fn header_page() -> [u8; PAGE_SIZE] {
    let mut page = [0u8; PAGE_SIZE];
    page[..FILE_HEADER_LEN].copy_from_slice(&format::file_header(format::MAGIC_BUCKETS, 0));
    page
}

/// The two page files of a slot and their cache.
pub struct BucketStore {
    primary_path: PathBuf,
    overflow_path: PathBuf,
    primary: Arc<dyn FileHandle>,
    overflow: Arc<dyn FileHandle>,
    cache: ByteLru<PageId, CachedPage>,
    /// Page images that win over the files: a read-only open puts a pending double-write batch here
    /// instead of applying it.
    overrides: std::collections::HashMap<PageId, PageBuf>,
}

impl BucketStore {
    /// Opens the page files of a slot directory, creating them (header page only) when `create` is set.
    pub fn open(fs: &dyn FileSystem, dir: &Path, create: bool, read_only: bool, cache_bytes: usize) -> Result<Self> {
        let primary_path = dir.join(BUCKETS_FILE);
        let overflow_path = dir.join(OVERFLOW_FILE);
        let open = |path: &Path| -> Result<Arc<dyn FileHandle>> {
            let file = if read_only { fs.open_read(path) } else { fs.open(path, create) }
                .map_err(|e| Error::io("open", path, e))?;
            if create {
                file.set_len(0).map_err(|e| Error::io("truncate", path, e))?;
                file.write_all_at(&header_page(), 0).map_err(|e| Error::io("write", path, e))?;
                file.sync().map_err(|e| Error::io("fsync", path, e))?;
            } else {
                let mut header = [0u8; FILE_HEADER_LEN];
                file.read_exact_at(&mut header, 0).map_err(|e| Error::io("read", path, e))?;
                format::check_file_header(&header, format::MAGIC_BUCKETS, path)?;
            }
            Ok(file)
        };
        let primary = open(&primary_path)?;
        let overflow = open(&overflow_path)?;
        Ok(Self {
            primary_path,
            overflow_path,
            primary,
            overflow,
            cache: ByteLru::new(cache_bytes),
            overrides: Default::default(),
        })
    }

    /// The path of a page file.
    pub fn path(&self, file: PageFile) -> &Path {
        match file {
            PageFile::Primary => &self.primary_path,
            PageFile::Overflow => &self.overflow_path,
        }
    }

    fn handle(&self, file: PageFile) -> &Arc<dyn FileHandle> {
        match file {
            PageFile::Primary => &self.primary,
            PageFile::Overflow => &self.overflow,
        }
    }

    /// Reads and verifies a page (through the cache).
    pub fn read_page(&mut self, id: PageId) -> Result<PageBuf> {
        if let Some(page) = self.overrides.get(&id) {
            return Ok(page.clone());
        }
        if let Some(page) = self.cache.get_ref(&id) {
            return Ok(page.bytes.clone());
        }
        Ok(self.load_page(id)?.bytes)
    }

    /// Finds a key's cell in one page of its bucket chain (through the cache and the cached page's cell
    /// index): the cell if the page holds it, and the page's overflow link. `hash` is `key_hash(db, key)`.
    pub fn find_cell(&mut self, id: PageId, hash: u64, db: u16, key: &[u8]) -> Result<(Option<page::Cell>, u64)> {
        if let Some(page) = self.overrides.get(&id) {
            return Ok(page::find_cell(&page[..], db, key));
        }
        if let Some(page) = self.cache.get_ref(&id) {
            return Ok(page.find_cell(hash, db, key));
        }
        Ok(self.load_page(id)?.find_cell(hash, db, key))
    }

    /// [`BucketStore::find_cell`] that hands the cell, borrowed from the page, to `found` (which runs only if
    /// the key is in this page) instead of copying it out. Returns `found`'s result and the overflow link.
    pub fn with_cell<R>(
        &mut self,
        id: PageId,
        hash: u64,
        db: u16,
        key: &[u8],
        found: impl FnOnce(page::CellRef<'_>) -> R,
    ) -> Result<(Option<R>, u64)> {
        if let Some(page) = self.overrides.get(&id) {
            let (cell, next) = page::find_cell_ref(&page[..], db, key);
            return Ok((cell.map(found), next));
        }
        if let Some(page) = self.cache.get_ref(&id) {
            let (cell, next) = page.find_cell_ref(hash, db, key);
            return Ok((cell.map(found), next));
        }
        let page = self.load_page(id)?;
        let (cell, next) = page.find_cell_ref(hash, db, key);
        Ok((cell.map(found), next))
    }

    /// Reads a page from its file, verifies it and puts it in the cache.
    fn load_page(&mut self, id: PageId) -> Result<CachedPage> {
        let offset = id.number * PAGE_SIZE as u64;
        let mut page: PageBuf = Arc::new([0u8; PAGE_SIZE]);
        let Some(buffer) = Arc::get_mut(&mut page) else {
            return Err(Error::corrupt(self.path(id.file), offset, "page buffer shared"));
        };
        if let Err(e) = self.handle(id.file).read_exact_at(&mut buffer[..], offset) {
            let path = self.path(id.file);
            return Err(if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::corrupt(path, offset, "page missing: file is shorter than the bucket table")
            } else {
                Error::io("read", path, e)
            });
        }
        page::verify(&buffer[..], self.path(id.file), offset)?;
        let cached = CachedPage::new(page);
        self.cache.insert(id, cached.clone(), cached.size());
        Ok(cached)
    }

    /// Writes a page in place (checkpoint only, after its double-write copy is durable).
    pub fn write_page(&mut self, id: PageId, bytes: &[u8; PAGE_SIZE]) -> Result<()> {
        let offset = id.number * PAGE_SIZE as u64;
        let path = self.path(id.file).to_path_buf();
        self.handle(id.file).write_all_at(bytes, offset).map_err(|e| Error::io("write", &path, e))?;
        let cached = CachedPage::new(Arc::new(*bytes));
        let size = cached.size();
        self.cache.insert(id, cached, size);
        Ok(())
    }

    /// Makes a page image win over the file (read-only recovery).
    pub fn override_page(&mut self, id: PageId, page: PageBuf) {
        self.overrides.insert(id, page);
    }

    /// Serves `page` for `id` from memory, over the file and the cache, until [`BucketStore::clear_staged`]
    /// (a checkpoint's install: its tail writes the pages in place off the slot lock).
    pub fn stage_page(&mut self, id: PageId, page: PageBuf) {
        self.cache.remove(&id);
        self.overrides.insert(id, page);
    }

    /// Drops the staged pages once they are in place in the files.
    pub fn clear_staged(&mut self) {
        self.overrides = Default::default();
    }

    /// fsyncs both page files.
    pub fn sync(&self) -> Result<()> {
        self.primary.sync().map_err(|e| Error::io("fsync", &self.primary_path, e))?;
        self.overflow.sync().map_err(|e| Error::io("fsync", &self.overflow_path, e))
    }

    /// Drops every cached page (after a failed checkpoint, or a reset).
    pub fn clear_cache(&mut self) {
        self.cache.clear();
    }

    /// Changes the cache's byte bound (CONFIG SET maxmemory, page-cache, value-cache).
    pub fn set_cache_capacity(&mut self, bytes: usize) {
        self.cache.set_capacity(bytes);
    }

    /// Cache figures: hits, misses, bytes.
    pub fn cache_stats(&self) -> (u64, u64, u64) {
        (self.cache.hits, self.cache.misses, self.cache.bytes() as u64)
    }

    /// Cuts both files to the pages the table uses (after FLUSHALL shrank it back to one bucket).
    pub fn truncate_to(&mut self, buckets: u64, overflow_pages: u64) -> Result<()> {
        let primary_len = (buckets + 1) * PAGE_SIZE as u64;
        self.primary.set_len(primary_len).map_err(|e| Error::io("truncate", &self.primary_path, e))?;
        let overflow_len = overflow_pages.max(1) * PAGE_SIZE as u64;
        self.overflow.set_len(overflow_len).map_err(|e| Error::io("truncate", &self.overflow_path, e))?;
        self.cache.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_hashing_addresses() {
        // level 2, split 1: bucket 0 has split into 0 and 4.
        assert_eq!(bucket_of(0b000, 2, 1), 0);
        assert_eq!(bucket_of(0b100, 2, 1), 4);
        assert_eq!(bucket_of(0b101, 2, 1), 1);
        assert_eq!(bucket_of(0b111, 2, 1), 3);
        assert_eq!(bucket_level(0, 2, 1), 3);
        assert_eq!(bucket_level(4, 2, 1), 3);
        assert_eq!(bucket_level(1, 2, 1), 2);
        assert_eq!(bucket_of(12345, 0, 0), 0);
    }
}
