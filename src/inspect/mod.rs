//! Offline forensics of a data directory: the library behind `velo inspect-bucket`, `inspect-segment`,
//! `check` and `bigkeys` (the `tools::*` files only parse flags and print).
//!
//! Everything here reads the files directly through the engine's public decoders (`engine::page`,
//! `segment`, `wal`, `meta`, `dwb`) instead of opening an [`crate::engine::Engine`]: an engine open stops
//! at the first damaged file, while a forensic tool must walk past damage and name every file and offset.
//! Nothing is ever written, no lock is taken, so the tools work beside a running server (a page the server
//! rewrites while it is read can then show as a checksum mismatch; run again to tell).
//!
//! # Layout
//! - this file: [`DataDir`] and [`SlotView`] (a slot's metadata, with an interrupted checkpoint's
//!   double-write batch laid over it as recovery would, its pages, segments, big values and WAL), and
//!   [`escape`] (keys as redis-cli prints them).
//! - [`bucket`]: the path of a key, or one bucket's pages and cells.
//! - [`segment`]: a chunk file's segments and records with their liveness.
//! - [`check`]: verification of every file and of the references between them.
//! - [`bigkeys`]: the largest keys per type and the sizes of key families, offline and online.
//! - [`client`]: the small blocking RESP client `bigkeys --host` uses.

pub mod bigkeys;
pub mod bucket;
pub mod check;
pub mod client;
pub mod segment;

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::engine::buckets::{PageFile, PageId, BUCKETS_FILE, OVERFLOW_FILE};
use crate::engine::format::FILE_HEADER_LEN;
use crate::engine::meta::{DataDirMeta, SlotMeta, DIR_META_FILE};
use crate::engine::page::{Page, PAGE_SIZE};
use crate::engine::segment::{self as seg, Segment};
use crate::engine::wal::{self, WalRecord};
use crate::engine::{dwb, envelope, Error, ValueKind};

/// A key as redis-cli prints it (`sdscatrepr`): in double quotes, `\\`, `\"`, `\n`, `\r`, `\t`, `\a`,
/// `\b` escaped, other bytes outside printable ASCII as `\xhh`.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for &byte in bytes {
        match byte {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x07 => out.push_str("\\a"),
            0x08 => out.push_str("\\b"),
            0x20..=0x7e => out.push(byte as char),
            _ => out.push_str(&format!("\\x{byte:02x}")),
        }
    }
    out.push('"');
    out
}

/// The lower-case Redis type name of a value kind (`TYPE`'s reply; `element` for parts of split
/// collections, which no client sees).
pub fn kind_name(kind: ValueKind) -> &'static str {
    match kind {
        ValueKind::String => "string",
        ValueKind::Hash => "hash",
        ValueKind::List => "list",
        ValueKind::Set => "set",
        ValueKind::SortedSet => "zset",
        ValueKind::Stream => "stream",
        ValueKind::BloomFilter => "MBbloom--",
        ValueKind::Element => "element",
    }
}

/// What an envelope's header says (docs/format.md §"Value envelope"), without decoding its payload.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct EnvelopeInfo {
    /// Type name (see [`kind_name`]), or `unknown(N)`.
    pub kind: String,
    /// `raw`, `int`, `zstd` or `unknown(N)`.
    pub codec: String,
    /// The zstd dictionary id (1 = plain zstd), zstd only.
    pub dict_id: Option<u32>,
    /// Stored envelope bytes.
    pub stored_len: u64,
    /// Value bytes after decoding, when the header tells.
    pub raw_len: Option<u64>,
}

/// Reads an envelope's header.
pub fn envelope_info(envelope: &[u8]) -> EnvelopeInfo {
    let kind = match envelope.first().map(|&tag| (tag, ValueKind::try_from(tag))) {
        Some((_, Ok(kind))) => kind_name(kind).to_string(),
        Some((tag, Err(_))) => format!("unknown({tag})"),
        None => "empty".to_string(),
    };
    let mut codec = match envelope::codec(envelope) {
        Some(0) => "raw".to_string(),
        Some(1) => "int".to_string(),
        Some(2) => "zstd".to_string(),
        Some(3) => "zstd+dict".to_string(),
        Some(other) => format!("unknown({other})"),
        None => "missing".to_string(),
    };
    // A string's Redis encoding mark (docs/format.md §"Value envelope").
    match envelope::string_encoding(envelope) {
        envelope::StringEncoding::Content => {}
        envelope::StringEncoding::Raw => codec.push_str(", redis raw"),
        envelope::StringEncoding::NotInt => codec.push_str(", redis not int"),
    }
    let dict_id = envelope::dictionary_id(envelope);
    let raw_len = envelope::value_len(envelope).ok().map(|len| len as u64);
    EnvelopeInfo { kind, codec, dict_id, stored_len: envelope.len() as u64, raw_len }
}

/// A value shown with `--values`: escaped as redis-cli would, cut at 256 bytes. `dictionaries` are the
/// data directory's, for values compressed with one.
pub fn value_preview(envelope: &[u8], dictionaries: &envelope::DictionaryMap) -> String {
    match envelope::decode(envelope, dictionaries) {
        Ok((_, value)) => {
            let shown = &value[..value.len().min(256)];
            let mut text = escape(shown);
            if value.len() > shown.len() {
                text.push_str(&format!(" ... ({} bytes)", value.len()));
            }
            text
        }
        Err(err) => format!("<undecodable: {err:?}>"),
    }
}

/// Where an error points: its file and offset, when it names them.
pub fn error_location(err: &Error) -> (Option<PathBuf>, Option<u64>) {
    match err {
        Error::Corrupt { file, offset, .. } | Error::ChecksumMismatch { file, offset, .. } => {
            (Some(file.clone()), Some(*offset))
        }
        Error::BadMagic { file, .. } => (Some(file.clone()), Some(0)),
        Error::UnsupportedVersion { file, .. } => (Some(file.clone()), Some(4)),
        Error::Io { path, .. } => (Some(path.clone()), None),
        _ => (None, None),
    }
}

/// Reads a whole file (a missing file is an I/O error naming it).
pub fn read_file(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::io("read", path, e))
}

/// An opened data directory: its metadata and slot directories.
#[derive(Debug)]
pub struct DataDir {
    /// The directory.
    pub path: PathBuf,
    /// `velo.meta`, or why it could not be read.
    pub meta: Result<DataDirMeta, String>,
    /// Number of slots: from `velo.meta`, else the `slot-N` directories present.
    pub slot_count: u32,
}

impl DataDir {
    /// Opens a directory for inspection. Fails only when it is not a Velo directory at all.
    pub fn open(path: &Path) -> Result<DataDir, Error> {
        if !path.is_dir() {
            return Err(Error::Config(format!("{} is not a directory", path.display())));
        }
        let meta_path = path.join(DIR_META_FILE);
        let meta = read_file(&meta_path).and_then(|bytes| DataDirMeta::decode(&bytes, &meta_path));
        let slot_count = match &meta {
            Ok(meta) => meta.slot_count,
            Err(_) => (0..1024u32).take_while(|index| path.join(format!("slot-{index}")).is_dir()).count() as u32,
        };
        if meta.is_err() && slot_count == 0 {
            return Err(Error::Config(format!(
                "{} is not a Velo data directory (no velo.meta, no slot-0)",
                path.display()
            )));
        }
        Ok(DataDir { path: path.to_path_buf(), meta: meta.map_err(|e| e.to_string()), slot_count })
    }

    /// The internal slot a key routes to.
    pub fn slot_of(&self, key: &[u8]) -> usize {
        crate::engine::key::internal_slot(crate::engine::key::hash_slot(key), self.slot_count)
    }

    /// A slot's directory.
    pub fn slot_dir(&self, index: usize) -> PathBuf {
        self.path.join(format!("slot-{index}"))
    }

    /// Opens one slot for inspection.
    pub fn slot(&self, index: usize) -> Result<SlotView, Error> {
        if index >= self.slot_count as usize {
            return Err(Error::Config(format!("slot {index} does not exist (the directory has {})", self.slot_count)));
        }
        SlotView::open(index, &self.slot_dir(index))
    }
}

/// Where a slot's metadata came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetaSource {
    /// `slot-N/meta`.
    MetaFile,
    /// The complete double-write batch of an interrupted checkpoint (recovery would install it).
    DoubleWriteBatch,
}

/// One page as read: its address, and the decoded page or why it does not decode.
#[derive(Debug)]
pub struct PageRead {
    /// The page's address.
    pub id: PageId,
    /// The file it was read from.
    pub path: PathBuf,
    /// Its byte offset there.
    pub offset: u64,
    /// True when the image came from the double-write batch (an interrupted checkpoint).
    pub from_dwb: bool,
    /// The page, or the error (checksum, structure, missing).
    pub page: Result<Page, Error>,
}

/// A slot opened for inspection.
#[derive(Debug)]
pub struct SlotView {
    /// Slot index.
    pub index: usize,
    /// Slot directory.
    pub dir: PathBuf,
    /// The metadata in force (see [`MetaSource`]).
    pub meta: SlotMeta,
    /// Where [`Self::meta`] came from.
    pub meta_source: MetaSource,
    dwb_pages: HashMap<PageId, Box<[u8; PAGE_SIZE]>>,
    buckets: Option<File>,
    overflow: Option<File>,
    /// The data directory's dictionaries (read-only; empty when they cannot be read: `check` names why),
    /// for segments compressed with one.
    dictionaries: std::sync::Arc<crate::engine::dictionary::DictionaryMap>,
}

impl SlotView {
    /// Reads the slot's metadata (and a complete double-write batch over it).
    pub fn open(index: usize, dir: &Path) -> Result<SlotView, Error> {
        let meta_path = crate::engine::meta::slot_meta_path(dir);
        let mut meta = SlotMeta::decode(&read_file(&meta_path)?, &meta_path)?;
        let mut meta_source = MetaSource::MetaFile;
        let mut dwb_pages = HashMap::new();
        let dwb_path = dir.join(dwb::DWB_FILE);
        if let Ok(bytes) = std::fs::read(&dwb_path) {
            if let Some(batch) = dwb::recover(&bytes, &dwb_path)? {
                meta = SlotMeta::decode(&batch.meta, &dwb_path)?;
                meta_source = MetaSource::DoubleWriteBatch;
                dwb_pages.extend(batch.pages);
            }
        }
        Ok(SlotView {
            index,
            dir: dir.to_path_buf(),
            meta,
            meta_source,
            dwb_pages,
            buckets: File::open(dir.join(BUCKETS_FILE)).ok(),
            overflow: File::open(dir.join(OVERFLOW_FILE)).ok(),
            dictionaries: std::sync::Arc::new(
                dir.parent()
                    .and_then(|data| {
                        let fs: std::sync::Arc<dyn crate::engine::io::FileSystem> =
                            std::sync::Arc::new(crate::engine::io::RealFs);
                        crate::engine::dictionary::DictionaryMap::open(fs, data, true, 3).ok()
                    })
                    .unwrap_or_default(),
            ),
        })
    }

    /// The data directory's dictionaries (see [`crate::engine::dictionary`]).
    pub fn dictionaries(&self) -> &crate::engine::dictionary::DictionaryMap {
        &self.dictionaries
    }

    /// The path of a page file.
    pub fn page_path(&self, file: PageFile) -> PathBuf {
        self.dir.join(match file {
            PageFile::Primary => BUCKETS_FILE,
            PageFile::Overflow => OVERFLOW_FILE,
        })
    }

    /// Reads and decodes one page.
    pub fn read_page(&self, id: PageId) -> PageRead {
        let path = self.page_path(id.file);
        let offset = id.number.saturating_mul(PAGE_SIZE as u64);
        let (page, from_dwb) = match self.dwb_pages.get(&id) {
            Some(image) => (Page::decode(&image[..], &path, offset), true),
            None => {
                (self.read_page_bytes(id, &path, offset).and_then(|bytes| Page::decode(&bytes, &path, offset)), false)
            }
        };
        PageRead { id, path, offset, from_dwb, page }
    }

    fn read_page_bytes(&self, id: PageId, path: &Path, offset: u64) -> Result<Vec<u8>, Error> {
        let file = match id.file {
            PageFile::Primary => self.buckets.as_ref(),
            PageFile::Overflow => self.overflow.as_ref(),
        };
        let file = file.ok_or_else(|| Error::io("open", path, std::io::Error::from(std::io::ErrorKind::NotFound)))?;
        let mut bytes = vec![0u8; PAGE_SIZE];
        file.read_exact_at(&mut bytes, offset).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::corrupt(path, offset, "page missing: file is shorter than the bucket table")
            } else {
                Error::io("read", path, e)
            }
        })?;
        Ok(bytes)
    }

    /// The pages of bucket `bucket`'s chain, primary first. Stops at the first page that does not decode,
    /// at a link out of the overflow file, or at a cycle (reported in `problem`).
    pub fn chain(&self, bucket: u64) -> Chain {
        let mut chain = Chain::default();
        let mut id = PageId::bucket(bucket);
        let mut seen = std::collections::HashSet::new();
        loop {
            let read = self.read_page(id);
            let next = match &read.page {
                Ok(page) => page.next_overflow,
                Err(_) => 0,
            };
            chain.pages.push(read);
            if next == 0 {
                return chain;
            }
            if next >= self.meta.overflow_pages.max(1) || !seen.insert(next) {
                let last = chain.pages.last().map(|p| (p.path.clone(), p.offset)).unwrap_or_default();
                chain.problem = Some(Error::corrupt(
                    last.0,
                    last.1,
                    if next >= self.meta.overflow_pages {
                        format!("overflow link {next} is past the {} overflow pages", self.meta.overflow_pages)
                    } else {
                        format!("overflow link {next} closes a cycle")
                    },
                ));
                return chain;
            }
            id = PageId::overflow(next);
        }
    }

    /// The bucket a key hash falls in.
    pub fn bucket_of(&self, hash: u64) -> u64 {
        crate::engine::buckets::bucket_of(hash, self.meta.level, self.meta.split)
    }

    /// The path of chunk file `id`.
    pub fn chunk_path(&self, id: u32) -> PathBuf {
        self.dir.join(seg::chunk_file_name(id))
    }

    /// The path of big-value file `id`.
    pub fn big_path(&self, id: u64) -> PathBuf {
        self.dir.join(seg::big_file_name(id))
    }

    /// The committed length of chunk file `id`, if the metadata lists it.
    pub fn committed_len(&self, id: u32) -> Option<u64> {
        self.meta.chunk_files.get(&id).map(|chunk| chunk.committed_len)
    }

    /// Reads and decodes the segment at `offset` of chunk file `id` (bounded by its committed length, or
    /// its file length when the metadata does not list it).
    pub fn read_segment(&self, id: u32, offset: u64) -> Result<Segment, Error> {
        let path = self.chunk_path(id);
        let file = File::open(&path).map_err(|e| Error::io("open", &path, e))?;
        let file_len = file.metadata().map_err(|e| Error::io("stat", &path, e))?.len();
        let end = self.committed_len(id).unwrap_or(file_len).min(file_len);
        if offset < FILE_HEADER_LEN as u64 || offset >= end {
            return Err(Error::corrupt(
                &path,
                offset,
                format!("no segment at offset {offset} (committed length {end})"),
            ));
        }
        let mut header = [0u8; seg::SEGMENT_HEADER_LEN];
        let available = end - offset;
        if available < header.len() as u64 {
            return Err(Error::corrupt(&path, offset, "segment header runs past the end of the file"));
        }
        file.read_exact_at(&mut header, offset).map_err(|e| Error::io("read", &path, e))?;
        let stored_len = u32::from_le_bytes([header[12], header[13], header[14], header[15]]) as u64;
        let want = (seg::SEGMENT_HEADER_LEN as u64 + stored_len).min(available);
        let mut bytes = vec![0u8; want as usize];
        file.read_exact_at(&mut bytes, offset).map_err(|e| Error::io("read", &path, e))?;
        match seg::decode_segment(&bytes, &path, offset, Some(self.dictionaries()))? {
            Some(segment) => Ok(segment),
            None => Err(Error::corrupt(&path, offset, "segment runs past the end of the file")),
        }
    }

    /// Reads big-value file `id`: sequence, database, key, envelope.
    pub fn read_big(&self, id: u64) -> Result<(u64, u16, Vec<u8>, Vec<u8>), Error> {
        let path = self.big_path(id);
        seg::decode_big_value(&read_file(&path)?, &path)
    }

    /// The WAL's records newer than the checkpoint, from both WAL files in sequence order, read
    /// leniently: decoding a file stops at its first bad record, which is returned with its offset (a torn
    /// tail or damage; `check` tells which). Records carry positions (`wal::SECOND_FILE_BIT` set for the
    /// second file).
    pub fn wal(&self) -> WalScan {
        let mut scan = self.scan_wal_file(0);
        if self.dir.join(wal::WAL_FILE_2).exists() {
            let second = self.scan_wal_file(1);
            scan.records.extend(second.records);
            scan.records.sort_by_key(|(_, record)| record.seq);
            scan.len += second.len;
            if scan.stop.is_none() {
                scan.stop = second.stop;
            }
        }
        self.drop_uncommitted(&mut scan);
        scan
    }

    fn scan_wal_file(&self, file: usize) -> WalScan {
        let path = self.dir.join(wal::WAL_FILES[file]);
        let bytes = match read_file(&path) {
            Ok(bytes) => bytes,
            Err(err) => return WalScan { path, records: Vec::new(), stop: Some(err), len: 0, uncommitted: 0 },
        };
        let mut scan =
            WalScan { path: path.clone(), records: Vec::new(), stop: None, len: bytes.len() as u64, uncommitted: 0 };
        if let Err(err) = crate::engine::format::check_file_header_versions(
            &bytes,
            crate::engine::format::MAGIC_WAL,
            &[1, wal::WAL_VERSION],
            &path,
        ) {
            scan.stop = Some(err);
            return scan;
        }
        let mut offset = FILE_HEADER_LEN;
        while offset < bytes.len() {
            match wal::decode_record(&bytes[offset..]) {
                Ok((record, len)) => {
                    if record.seq > self.meta.checkpoint_seq {
                        scan.records.push((wal::position(file, offset as u64), record));
                    }
                    offset += len;
                }
                Err(err) => {
                    let what = match err {
                        wal::RecordError::Truncated => "record truncated".to_string(),
                        wal::RecordError::Checksum { expected, actual } => {
                            format!("checksum mismatch (stored {expected:#010x}, computed {actual:#010x})")
                        }
                        wal::RecordError::Malformed(what) => what,
                    };
                    scan.stop = Some(Error::corrupt(&path, offset as u64, what));
                    break;
                }
            }
        }
        scan
    }

    /// Removes the records of transactions with no commit (neither a Commit record in this WAL nor one in
    /// the data directory's transaction log): recovery would not apply them (docs/recovery.md
    /// §"Transactions"). The completeness check of logged commits is left to recovery.
    fn drop_uncommitted(&self, scan: &mut WalScan) {
        if scan.records.iter().all(|(_, record)| record.txid == 0) {
            return;
        }
        let mut committed: std::collections::HashSet<u64> =
            scan.records.iter().filter(|(_, r)| r.op == wal::WalOp::Commit).map(|(_, r)| r.txid).collect();
        if let Some(root) = self.dir.parent() {
            let path = root.join(crate::engine::txn::TXLOG_FILE);
            if let Ok(bytes) = std::fs::read(&path) {
                if let Ok((commits, _)) = crate::engine::txn::decode_log(&bytes, &path) {
                    committed.extend(commits.iter().map(|commit| commit.txid));
                }
            }
        }
        let before = scan.records.len();
        scan.records.retain(|(_, r)| r.txid == 0 || committed.contains(&r.txid));
        scan.uncommitted = before - scan.records.len();
    }
}

/// A bucket's chain as read.
#[derive(Debug, Default)]
pub struct Chain {
    /// The pages, primary first.
    pub pages: Vec<PageRead>,
    /// A broken link (out of range or a cycle) that ended the walk early.
    pub problem: Option<Error>,
}

/// A WAL read leniently.
#[derive(Debug)]
pub struct WalScan {
    /// The WAL file.
    pub path: PathBuf,
    /// Records newer than the checkpoint, with their offsets.
    pub records: Vec<(u64, WalRecord)>,
    /// Where and why decoding stopped early.
    pub stop: Option<Error>,
    /// File length.
    pub len: u64,
    /// Records left out because their transaction did not commit.
    pub uncommitted: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_matches_redis_cli() {
        assert_eq!(escape(b"user:1"), "\"user:1\"");
        assert_eq!(escape(b"a\"b\\c\n\r\t\x07\x08"), "\"a\\\"b\\\\c\\n\\r\\t\\a\\b\"");
        assert_eq!(escape(&[0, 0xff, b' ']), "\"\\x00\\xff \"");
    }

    #[test]
    fn envelope_info_reads_headers() {
        let info = envelope_info(&[0, 0, b'h', b'i']);
        assert_eq!((info.kind.as_str(), info.codec.as_str(), info.raw_len), ("string", "raw", Some(2)));
        let info = envelope_info(&[9]);
        assert_eq!(info.kind, "unknown(9)");
    }
}
