//! The key-bucket page: 4 KiB, self-describing (kind, split level, bucket number, overflow link), holding
//! cells of sequence, expiry, database, key, type, and the value inline or its location. A CRC covers the
//! whole page. Pages are written with compact cells (a one-byte tag; database, expiry and the sequence's
//! top bytes only when they are needed); pages written before that (no compact flag in their kind byte)
//! keep 24-byte cell headers and are read as they are until a checkpoint rewrites them. Layout:
//! docs/format.md §"Key-bucket page", §"Cell".

use std::path::Path;

use super::envelope::ValueKind;
use super::error::{Error, Result};
use super::format::{self, ByteReader, PutLe};
use super::key::key_hash;

/// Size of a page.
pub const PAGE_SIZE: usize = 4096;
/// Bytes of the page header.
pub const PAGE_HEADER_LEN: usize = 32;
/// Bytes available for cells.
pub const CELL_AREA: usize = PAGE_SIZE - PAGE_HEADER_LEN;
/// The most bytes a cell header (before key and value) takes: the original layout's fixed 24; a compact
/// header takes 9 to 23 ([`cell_len`]).
pub const CELL_HEADER_LEN: usize = 24;
/// Bytes of a value location or big-value reference in a cell (the long form of a location).
pub const LOCATION_LEN: usize = 16;
/// Bytes of a short segment location in a compact cell (storage 3): written whenever the location's fields
/// fit it ([`SegmentLocation::packed`]), which they do for every segment of the default 4 KiB size.
pub const SHORT_LOCATION_LEN: usize = 8;
/// Longest key a cell can hold.
pub const MAX_KEY_LEN: usize = CELL_AREA - CELL_HEADER_LEN - LOCATION_LEN;
/// Largest envelope ever stored inline.
pub const MAX_INLINE_ENVELOPE: usize = 1024;

/// Page kinds. Stored on disk, never renumber.
pub const PAGE_KIND_PRIMARY: u8 = 1;
/// An overflow page of a bucket chain.
pub const PAGE_KIND_OVERFLOW: u8 = 2;

/// Set in a page's kind byte when its cells use the compact layout (every page written since the layout
/// was introduced); [`Page::kind`] and [`PageHeader::kind`] are without it.
pub const PAGE_FLAG_COMPACT: u8 = 0x10;

const STORAGE_INLINE: u8 = 0;
const STORAGE_SEGMENT: u8 = 1;
const STORAGE_BIG: u8 = 2;
/// A segment location packed in 8 bytes (compact cells only; docs/format.md §"Cell").
const STORAGE_SHORT_SEGMENT: u8 = 3;

/// Compact cell tag: the value's type (bits 0-2), storage (bits 3-4), and which optional fields follow.
const TAG_KIND: u8 = 0x07;
const TAG_STORAGE_SHIFT: u8 = 3;
const TAG_EXPIRY: u8 = 0x20;
const TAG_LONG_SEQ: u8 = 0x40;
const TAG_DB: u8 = 0x80;
/// Sequences up to this take 6 bytes in a compact cell (at a million writes a second, 9 years of them).
const SHORT_SEQ_MAX: u64 = (1 << 48) - 1;

/// Bytes a cell takes in a page (compact layout): `inline_len` is the envelope's length for an inline
/// value, `None` for a big-value reference or a location in its long form (a location that fits the short
/// form: [`segment_cell_len`]).
pub fn cell_len(seq: u64, expire_at: u64, db: u16, key_len: usize, inline_len: Option<usize>) -> usize {
    let header = 1
        + 2
        + (if db != 0 { 2 } else { 0 })
        + (if seq > SHORT_SEQ_MAX { 8 } else { 6 })
        + (if inline_len.is_some() { 2 } else { 0 })
        + (if expire_at != 0 { 8 } else { 0 });
    header + key_len + inline_len.unwrap_or(LOCATION_LEN)
}

/// Bytes a cell holding segment location `location` takes in a page (compact layout): the short form of the
/// location when its fields fit it, else the long one.
pub fn segment_cell_len(seq: u64, expire_at: u64, db: u16, key_len: usize, location: &SegmentLocation) -> usize {
    cell_len(seq, expire_at, db, key_len, None) - LOCATION_LEN + location.encoded_len()
}

/// Bytes the value of a cell written by [`write_cell_parts`] takes: `value` as given, except a long segment
/// location that fits the short form.
pub(crate) fn parts_value_len(storage: u8, value: &[u8]) -> usize {
    match storage {
        STORAGE_SEGMENT => SegmentLocation::from_long(value).map_or(value.len(), |l| l.encoded_len()),
        _ => value.len(),
    }
}

/// Writes one compact cell (docs/format.md §"Cell") into `out` from its parts and returns its length
/// ([`cell_len`] with [`parts_value_len`]): `storage` is 0 inline, 1 segment, 2 big value; `value` is the
/// envelope (inline) or the 16 bytes of the location (written in its short form when it fits, as storage 3)
/// or big-value reference. For writers that hold cells as bytes rather than [`Cell`]s (the bulk loader).
#[allow(clippy::too_many_arguments)]
pub(crate) fn write_cell_parts(
    out: &mut [u8],
    seq: u64,
    expire_at: u64,
    db: u16,
    kind: u8,
    storage: u8,
    key: &[u8],
    value: &[u8],
) -> usize {
    let packed = match storage {
        STORAGE_SEGMENT => SegmentLocation::from_long(value).and_then(|l| l.packed()),
        _ => None,
    };
    let storage = if packed.is_some() { STORAGE_SHORT_SEGMENT } else { storage };
    let long_seq = seq > SHORT_SEQ_MAX;
    let mut tag = (kind & TAG_KIND) | (storage << TAG_STORAGE_SHIFT);
    if expire_at != 0 {
        tag |= TAG_EXPIRY;
    }
    if long_seq {
        tag |= TAG_LONG_SEQ;
    }
    if db != 0 {
        tag |= TAG_DB;
    }
    let mut at = 0;
    let mut put = |bytes: &[u8]| {
        out[at..at + bytes.len()].copy_from_slice(bytes);
        at += bytes.len();
    };
    put(&[tag]);
    if db != 0 {
        put(&db.to_le_bytes());
    }
    put(&(key.len() as u16).to_le_bytes());
    let seq_bytes = seq.to_le_bytes();
    put(if long_seq { &seq_bytes[..] } else { &seq_bytes[..6] });
    if storage == STORAGE_INLINE {
        put(&(value.len() as u16).to_le_bytes());
    }
    if expire_at != 0 {
        put(&expire_at.to_le_bytes());
    }
    put(key);
    match packed {
        Some(packed) => put(&packed.to_le_bytes()),
        None => put(value),
    }
    at
}

/// Where a record lives in a chunk file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SegmentLocation {
    /// Chunk file id.
    pub file: u32,
    /// Byte offset of the segment in the file.
    pub segment_offset: u32,
    /// Byte offset of the record in the segment's decompressed payload.
    pub record_offset: u32,
    /// Length of the record's envelope.
    pub envelope_len: u32,
}

/// Bits of each field of a short location, from the low end of its `u64`: file, segment offset, record
/// offset, envelope length (docs/format.md §"Cell").
const SHORT_FILE_BITS: u32 = 16;
const SHORT_SEGMENT_BITS: u32 = 24;
const SHORT_RECORD_BITS: u32 = 12;
const SHORT_ENVELOPE_BITS: u32 = 12;

impl SegmentLocation {
    /// The location packed in a `u64` (storage 3 of a compact cell) if every field fits its bits: file id
    /// below 2^16, segment offset below 2^24 (16 MiB: a chunk file stops taking segments there), record
    /// offset and envelope length below 2^12 (4 KiB, the default segment size).
    pub fn packed(&self) -> Option<u64> {
        let fits = |value: u32, bits: u32| u64::from(value) < 1 << bits;
        (fits(self.file, SHORT_FILE_BITS)
            && fits(self.segment_offset, SHORT_SEGMENT_BITS)
            && fits(self.record_offset, SHORT_RECORD_BITS)
            && fits(self.envelope_len, SHORT_ENVELOPE_BITS))
        .then(|| {
            u64::from(self.file)
                | u64::from(self.segment_offset) << SHORT_FILE_BITS
                | u64::from(self.record_offset) << (SHORT_FILE_BITS + SHORT_SEGMENT_BITS)
                | u64::from(self.envelope_len) << (SHORT_FILE_BITS + SHORT_SEGMENT_BITS + SHORT_RECORD_BITS)
        })
    }

    /// The location a [`SegmentLocation::packed`] value holds.
    pub fn unpack(packed: u64) -> SegmentLocation {
        let field = |shift: u32, bits: u32| ((packed >> shift) & ((1 << bits) - 1)) as u32;
        SegmentLocation {
            file: field(0, SHORT_FILE_BITS),
            segment_offset: field(SHORT_FILE_BITS, SHORT_SEGMENT_BITS),
            record_offset: field(SHORT_FILE_BITS + SHORT_SEGMENT_BITS, SHORT_RECORD_BITS),
            envelope_len: field(SHORT_FILE_BITS + SHORT_SEGMENT_BITS + SHORT_RECORD_BITS, SHORT_ENVELOPE_BITS),
        }
    }

    /// Bytes the location takes in a compact cell: [`SHORT_LOCATION_LEN`] when it fits the short form,
    /// else [`LOCATION_LEN`].
    pub fn encoded_len(&self) -> usize {
        if self.packed().is_some() {
            SHORT_LOCATION_LEN
        } else {
            LOCATION_LEN
        }
    }

    /// The location in its long form's 16 bytes (`file u32 | segment_offset u32 | record_offset u32 |
    /// envelope_len u32`), `None` if `bytes` is not 16 bytes long.
    pub fn from_long(bytes: &[u8]) -> Option<SegmentLocation> {
        let word = |at: usize| bytes.get(at..at + 4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes);
        if bytes.len() != LOCATION_LEN {
            return None;
        }
        Some(SegmentLocation {
            file: word(0)?,
            segment_offset: word(4)?,
            record_offset: word(8)?,
            envelope_len: word(12)?,
        })
    }
}

/// A cell's value: inline, in a segment, or in its own file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CellValue {
    /// The envelope itself.
    Inline(Vec<u8>),
    /// A record in a chunk segment.
    Segment(SegmentLocation),
    /// A big-value file, named by the sequence of the write that made it.
    Big {
        /// Sequence (and file name) of the big value.
        id: u64,
        /// Length of its envelope.
        envelope_len: u64,
    },
}

/// One key's entry in a bucket page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    /// Key hash (engine::key::key_hash). Not stored: recomputed from the key when a page is decoded.
    pub hash: u64,
    /// Sequence of the write that produced this cell's current state.
    pub seq: u64,
    /// Absolute expiry in Unix ms, 0 for none.
    pub expire_at: u64,
    /// Database number.
    pub db: u16,
    /// The key.
    pub key: Vec<u8>,
    /// The value's Redis type.
    pub kind: ValueKind,
    /// The value or where it is.
    pub value: CellValue,
}

impl Cell {
    /// Encoded size in a page.
    pub fn encoded_len(&self) -> usize {
        let inline_len = match &self.value {
            CellValue::Inline(envelope) => Some(envelope.len()),
            CellValue::Segment(location) => {
                return segment_cell_len(self.seq, self.expire_at, self.db, self.key.len(), location)
            }
            CellValue::Big { .. } => None,
        };
        cell_len(self.seq, self.expire_at, self.db, self.key.len(), inline_len)
    }

    /// Encodes the cell in the compact layout (docs/format.md §"Cell"); `short_locations` false writes
    /// every location in its long form, as builds before the short form did (tests of reading them).
    fn encode(&self, out: &mut Vec<u8>, short_locations: bool) {
        let packed = match &self.value {
            CellValue::Segment(location) if short_locations => location.packed(),
            _ => None,
        };
        let storage = match &self.value {
            CellValue::Inline(_) => STORAGE_INLINE,
            CellValue::Segment(_) if packed.is_some() => STORAGE_SHORT_SEGMENT,
            CellValue::Segment(_) => STORAGE_SEGMENT,
            CellValue::Big { .. } => STORAGE_BIG,
        };
        let long_seq = self.seq > SHORT_SEQ_MAX;
        let mut tag = (self.kind as u8 & TAG_KIND) | (storage << TAG_STORAGE_SHIFT);
        if self.expire_at != 0 {
            tag |= TAG_EXPIRY;
        }
        if long_seq {
            tag |= TAG_LONG_SEQ;
        }
        if self.db != 0 {
            tag |= TAG_DB;
        }
        out.push(tag);
        if self.db != 0 {
            out.put_u16(self.db);
        }
        out.put_u16(self.key.len() as u16);
        if long_seq {
            out.put_u64(self.seq);
        } else {
            out.extend_from_slice(&self.seq.to_le_bytes()[..6]);
        }
        if let CellValue::Inline(envelope) = &self.value {
            out.put_u16(envelope.len() as u16);
        }
        if self.expire_at != 0 {
            out.put_u64(self.expire_at);
        }
        out.extend_from_slice(&self.key);
        match &self.value {
            CellValue::Inline(envelope) => out.extend_from_slice(envelope),
            CellValue::Segment(location) => {
                if let Some(packed) = packed {
                    out.put_u64(packed);
                    return;
                }
                out.put_u32(location.file);
                out.put_u32(location.segment_offset);
                out.put_u32(location.record_offset);
                out.put_u32(location.envelope_len);
            }
            CellValue::Big { id, envelope_len } => {
                out.put_u64(*id);
                out.put_u64(*envelope_len);
            }
        }
    }

    /// Encodes the cell in the original layout (24-byte header), as pages written before the compact
    /// layout hold it: tests of reading such pages.
    #[cfg(test)]
    fn encode_original(&self, out: &mut Vec<u8>) {
        out.put_u64(self.seq);
        out.put_u64(self.expire_at);
        out.put_u16(self.db);
        out.put_u16(self.key.len() as u16);
        out.push(self.kind as u8);
        match &self.value {
            CellValue::Inline(envelope) => {
                out.push(STORAGE_INLINE);
                out.put_u16(envelope.len() as u16);
                out.extend_from_slice(&self.key);
                out.extend_from_slice(envelope);
            }
            CellValue::Segment(location) => {
                out.push(STORAGE_SEGMENT);
                out.put_u16(LOCATION_LEN as u16);
                out.extend_from_slice(&self.key);
                out.put_u32(location.file);
                out.put_u32(location.segment_offset);
                out.put_u32(location.record_offset);
                out.put_u32(location.envelope_len);
            }
            CellValue::Big { id, envelope_len } => {
                out.push(STORAGE_BIG);
                out.put_u16(LOCATION_LEN as u16);
                out.extend_from_slice(&self.key);
                out.put_u64(*id);
                out.put_u64(*envelope_len);
            }
        }
    }
}

/// A decoded page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// [`PAGE_KIND_PRIMARY`] or [`PAGE_KIND_OVERFLOW`].
    pub kind: u8,
    /// Hash bits the bucket uses (linear hashing level of this bucket).
    pub level: u8,
    /// The bucket this page belongs to.
    pub bucket: u64,
    /// Next overflow page of the chain, 0 for none.
    pub next_overflow: u64,
    /// Sequence of the checkpoint that wrote the page.
    pub checkpoint_seq: u64,
    /// The cells.
    pub cells: Vec<Cell>,
}

impl Page {
    /// Bytes used by the cells.
    pub fn used(&self) -> usize {
        self.cells.iter().map(Cell::encoded_len).sum()
    }

    /// Encodes the page, with compact cells; the cells must fit in [`CELL_AREA`].
    pub fn encode(&self) -> Box<[u8; PAGE_SIZE]> {
        self.encode_with(true, true)
    }

    /// The page as written before the compact cell layout (tests of reading old directories).
    #[cfg(test)]
    pub(crate) fn encode_original(&self) -> Box<[u8; PAGE_SIZE]> {
        self.encode_with(false, false)
    }

    /// The page as written before short locations: compact cells, every location in its long form (tests
    /// of reading old directories).
    #[cfg(test)]
    pub(crate) fn encode_long_locations(&self) -> Box<[u8; PAGE_SIZE]> {
        self.encode_with(true, false)
    }

    fn encode_with(&self, compact: bool, short_locations: bool) -> Box<[u8; PAGE_SIZE]> {
        let mut out = Vec::with_capacity(PAGE_SIZE);
        out.put_u32(0);
        out.push(if compact { self.kind | PAGE_FLAG_COMPACT } else { self.kind });
        out.push(self.level);
        out.put_u16(self.cells.len() as u16);
        out.put_u64(self.bucket);
        out.put_u64(self.next_overflow);
        out.put_u64(self.checkpoint_seq);
        for cell in &self.cells {
            #[cfg(test)]
            if !compact {
                cell.encode_original(&mut out);
                continue;
            }
            cell.encode(&mut out, short_locations);
        }
        debug_assert!(out.len() <= PAGE_SIZE, "cells overflow the page");
        out.resize(PAGE_SIZE, 0);
        let crc = format::crc32(&out[4..]);
        out[0..4].copy_from_slice(&crc.to_le_bytes());
        let mut page = Box::new([0u8; PAGE_SIZE]);
        page.copy_from_slice(&out);
        page
    }

    /// Decodes and verifies a page read from `file` at `offset`.
    pub fn decode(bytes: &[u8], file: &Path, offset: u64) -> Result<Page> {
        verify(bytes, file, offset)?;
        let mut reader = ByteReader::new(bytes);
        reader.u32();
        let corrupt = |what: &str| Error::corrupt(file, offset, what.to_string());
        let kind_byte = reader.u8().ok_or_else(|| corrupt("page header truncated"))?;
        let (kind, compact) = split_kind(kind_byte);
        let level = reader.u8().ok_or_else(|| corrupt("page header truncated"))?;
        let count = reader.u16().ok_or_else(|| corrupt("page header truncated"))?;
        let bucket = reader.u64().ok_or_else(|| corrupt("page header truncated"))?;
        let next_overflow = reader.u64().ok_or_else(|| corrupt("page header truncated"))?;
        let checkpoint_seq = reader.u64().ok_or_else(|| corrupt("page header truncated"))?;
        if kind != PAGE_KIND_PRIMARY && kind != PAGE_KIND_OVERFLOW {
            return Err(corrupt(&format!("unknown page kind {kind_byte}")));
        }
        let mut cells = Vec::with_capacity(count as usize);
        for index in 0..count {
            let cell = decode_cell(&mut reader, compact)
                .ok_or_else(|| Error::corrupt(file, offset, format!("cell {index} of {count} is malformed")))?;
            cells.push(cell);
        }
        Ok(Page { kind, level, bucket, next_overflow, checkpoint_seq, cells })
    }
}

/// Checks a page's CRC.
pub fn verify(bytes: &[u8], file: &Path, offset: u64) -> Result<()> {
    if bytes.len() != PAGE_SIZE {
        return Err(Error::corrupt(file, offset, format!("page is {} bytes, expected {PAGE_SIZE}", bytes.len())));
    }
    let expected = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let actual = format::crc32(&bytes[4..]);
    if expected != actual {
        return Err(Error::ChecksumMismatch { file: file.to_path_buf(), offset, expected, actual });
    }
    Ok(())
}

/// A page's kind byte as its kind (without the layout flag) and whether its cells are compact.
fn split_kind(byte: u8) -> (u8, bool) {
    (byte & !PAGE_FLAG_COMPACT, byte & PAGE_FLAG_COMPACT != 0)
}

/// Whether the page image's cells use the compact layout.
fn is_compact(bytes: &[u8]) -> bool {
    bytes.get(4).is_some_and(|&byte| split_kind(byte).1)
}

fn decode_cell(reader: &mut ByteReader<'_>, compact: bool) -> Option<Cell> {
    decode_cell_ref(reader, compact).map(|cell| cell.to_cell())
}

/// A cell's value borrowed from a page image (see [`CellValue`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellValueRef<'a> {
    /// The envelope itself.
    Inline(&'a [u8]),
    /// A record in a chunk segment.
    Segment(SegmentLocation),
    /// A big-value file.
    Big {
        /// Sequence (and file name) of the big value.
        id: u64,
        /// Length of its envelope.
        envelope_len: u64,
    },
}

/// A cell borrowed from a page image: what [`Cell`] holds, without allocating (for scans of every
/// page, such as `velo check`) and without the key hash (computed on demand).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellRef<'a> {
    /// Sequence of the write that produced this cell's current state.
    pub seq: u64,
    /// Absolute expiry in Unix ms, 0 for none.
    pub expire_at: u64,
    /// Database number.
    pub db: u16,
    /// The key.
    pub key: &'a [u8],
    /// The value's Redis type.
    pub kind: ValueKind,
    /// The value or where it is.
    pub value: CellValueRef<'a>,
}

impl CellRef<'_> {
    /// Size of the cell in a page written now (compact layout; a cell of an older page took
    /// [`CELL_HEADER_LEN`] bytes of header).
    pub fn encoded_len(&self) -> usize {
        let inline_len = match self.value {
            CellValueRef::Inline(envelope) => Some(envelope.len()),
            CellValueRef::Segment(location) => {
                return segment_cell_len(self.seq, self.expire_at, self.db, self.key.len(), &location)
            }
            CellValueRef::Big { .. } => None,
        };
        cell_len(self.seq, self.expire_at, self.db, self.key.len(), inline_len)
    }

    /// The owned cell.
    pub fn to_cell(&self) -> Cell {
        let value = match self.value {
            CellValueRef::Inline(envelope) => CellValue::Inline(envelope.to_vec()),
            CellValueRef::Segment(location) => CellValue::Segment(location),
            CellValueRef::Big { id, envelope_len } => CellValue::Big { id, envelope_len },
        };
        Cell {
            hash: key_hash(self.db, self.key),
            seq: self.seq,
            expire_at: self.expire_at,
            db: self.db,
            key: self.key.to_vec(),
            kind: self.kind,
            value,
        }
    }
}

fn decode_cell_ref<'a>(reader: &mut ByteReader<'a>, compact: bool) -> Option<CellRef<'a>> {
    if compact {
        return decode_compact_cell_ref(reader);
    }
    let seq = reader.u64()?;
    let expire_at = reader.u64()?;
    let db = reader.u16()?;
    let key_len = reader.u16()? as usize;
    let kind = ValueKind::try_from(reader.u8()?).ok()?;
    let storage = reader.u8()?;
    let value_len = reader.u16()? as usize;
    let key = reader.take(key_len)?;
    let value = match storage {
        STORAGE_INLINE => CellValueRef::Inline(reader.take(value_len)?),
        STORAGE_SEGMENT if value_len == LOCATION_LEN => CellValueRef::Segment(SegmentLocation {
            file: reader.u32()?,
            segment_offset: reader.u32()?,
            record_offset: reader.u32()?,
            envelope_len: reader.u32()?,
        }),
        STORAGE_BIG if value_len == LOCATION_LEN => {
            CellValueRef::Big { id: reader.u64()?, envelope_len: reader.u64()? }
        }
        _ => return None,
    };
    Some(CellRef { seq, expire_at, db, key, kind, value })
}

fn decode_compact_cell_ref<'a>(reader: &mut ByteReader<'a>) -> Option<CellRef<'a>> {
    let tag = reader.u8()?;
    let kind = ValueKind::try_from(tag & TAG_KIND).ok()?;
    let storage = (tag >> TAG_STORAGE_SHIFT) & 3;
    let db = if tag & TAG_DB != 0 { reader.u16()? } else { 0 };
    let key_len = reader.u16()? as usize;
    let seq = if tag & TAG_LONG_SEQ != 0 {
        reader.u64()?
    } else {
        let low = reader.take(6)?;
        let mut bytes = [0u8; 8];
        bytes[..6].copy_from_slice(low);
        u64::from_le_bytes(bytes)
    };
    let value_len = if storage == STORAGE_INLINE { reader.u16()? as usize } else { 0 };
    let expire_at = if tag & TAG_EXPIRY != 0 { reader.u64()? } else { 0 };
    let key = reader.take(key_len)?;
    let value = match storage {
        STORAGE_INLINE => CellValueRef::Inline(reader.take(value_len)?),
        STORAGE_SEGMENT => CellValueRef::Segment(SegmentLocation {
            file: reader.u32()?,
            segment_offset: reader.u32()?,
            record_offset: reader.u32()?,
            envelope_len: reader.u32()?,
        }),
        STORAGE_BIG => CellValueRef::Big { id: reader.u64()?, envelope_len: reader.u64()? },
        STORAGE_SHORT_SEGMENT => CellValueRef::Segment(SegmentLocation::unpack(reader.u64()?)),
        _ => return None,
    };
    Some(CellRef { seq, expire_at, db, key, kind, value })
}

/// A page's header, read without decoding its cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageHeader {
    /// [`PAGE_KIND_PRIMARY`] or [`PAGE_KIND_OVERFLOW`].
    pub kind: u8,
    /// True if the cells use the compact layout ([`PAGE_FLAG_COMPACT`]).
    pub compact: bool,
    /// Hash bits the bucket uses.
    pub level: u8,
    /// Number of cells.
    pub cell_count: u16,
    /// The bucket this page belongs to.
    pub bucket: u64,
    /// Next overflow page of the chain, 0 for none.
    pub next_overflow: u64,
    /// Sequence of the checkpoint that wrote the page.
    pub checkpoint_seq: u64,
}

/// Verifies a page and checks that every cell is well-formed, as [`Page::decode`] does, without
/// allocating; the cells are then read with [`cell_refs`].
pub fn decode_header(bytes: &[u8], file: &Path, offset: u64) -> Result<PageHeader> {
    verify(bytes, file, offset)?;
    let (kind, compact) = split_kind(bytes[4]);
    let header = PageHeader {
        kind,
        compact,
        level: bytes[5],
        cell_count: u16::from_le_bytes([bytes[6], bytes[7]]),
        bucket: u64::from_le_bytes(bytes[8..16].try_into().unwrap_or_default()),
        next_overflow: u64::from_le_bytes(bytes[16..24].try_into().unwrap_or_default()),
        checkpoint_seq: u64::from_le_bytes(bytes[24..32].try_into().unwrap_or_default()),
    };
    if header.kind != PAGE_KIND_PRIMARY && header.kind != PAGE_KIND_OVERFLOW {
        return Err(Error::corrupt(file, offset, format!("unknown page kind {}", bytes[4])));
    }
    let mut reader = ByteReader::new(&bytes[PAGE_HEADER_LEN..]);
    for index in 0..header.cell_count {
        if decode_cell_ref(&mut reader, compact).is_none() {
            let count = header.cell_count;
            return Err(Error::corrupt(file, offset, format!("cell {index} of {count} is malformed")));
        }
    }
    Ok(header)
}

/// The cells of a page that [`decode_header`] accepted, borrowed.
pub fn cell_refs(bytes: &[u8]) -> impl Iterator<Item = CellRef<'_>> {
    let count = bytes.get(6..8).map_or(0, |b| u16::from_le_bytes([b[0], b[1]]));
    let compact = is_compact(bytes);
    let mut reader = ByteReader::new(bytes.get(PAGE_HEADER_LEN..).unwrap_or_default());
    (0..count).map_while(move |_| decode_cell_ref(&mut reader, compact))
}

/// Key equality that rejects most non-matches with one 8-byte compare of the keys' tails (keys of a
/// family share their prefix, so tails differ first), before comparing whole keys.
fn keys_equal(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    if a.len() >= 8 {
        let tail = |k: &[u8]| k.get(k.len() - 8..).and_then(|t| <[u8; 8]>::try_from(t).ok()).map(u64::from_ne_bytes);
        if tail(a) != tail(b) {
            return false;
        }
    }
    a == b
}

/// Finds the cell for `(db, key)` in a verified page without decoding the others. Returns the cell and
/// the page's overflow link.
///
/// Every read that misses the memtable walks a page this way (about 40 cells at 256-byte values), so the
/// walk reads the three length fields it needs at fixed offsets of each cell header instead of parsing
/// every field, and compares a key only when its database and length match.
pub fn find_cell(bytes: &[u8], db: u16, key: &[u8]) -> (Option<Cell>, u64) {
    let (cell, next) = find_cell_ref(bytes, db, key);
    (cell.map(|cell| cell.to_cell()), next)
}

/// [`find_cell`], borrowing the cell from the page.
pub fn find_cell_ref<'a>(bytes: &'a [u8], db: u16, key: &[u8]) -> (Option<CellRef<'a>>, u64) {
    let next = next_overflow(bytes);
    let compact = is_compact(bytes);
    for span in cell_spans(bytes) {
        if span.db == db && span.key_len == key.len() && keys_equal(span.key(bytes), key) {
            let mut reader = ByteReader::new(&bytes[span.at..span.end]);
            return (decode_cell_ref(&mut reader, compact), next);
        }
    }
    (None, next)
}

/// Where one cell lies in a page, from its length fields alone.
struct CellSpan {
    /// Offset of the cell header.
    at: usize,
    db: u16,
    /// Offset of the key.
    key_at: usize,
    key_len: usize,
    /// Offset just past the cell.
    end: usize,
}

impl CellSpan {
    fn key<'a>(&self, bytes: &'a [u8]) -> &'a [u8] {
        &bytes[self.key_at..self.key_at + self.key_len]
    }
}

/// The bounds of the cell at `at` of a page image, from its length fields alone; `None` if they run past
/// the page.
fn span_at(bytes: &[u8], at: usize, compact: bool) -> Option<CellSpan> {
    let le16 = |p: usize| bytes.get(p..p + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let (db, key_at, key_len, value_len) = if compact {
        // Tag u8, [db u16], key_len u16, seq u48 or u64, [value_len u16 if inline], [expire_at u64].
        let tag = *bytes.get(at)?;
        let mut p = at + 1;
        let db = if tag & TAG_DB != 0 {
            p += 2;
            le16(p - 2)?
        } else {
            0
        };
        let key_len = le16(p)? as usize;
        p += 2 + if tag & TAG_LONG_SEQ != 0 { 8 } else { 6 };
        let value_len = match (tag >> TAG_STORAGE_SHIFT) & 3 {
            STORAGE_INLINE => {
                p += 2;
                le16(p - 2)? as usize
            }
            STORAGE_SHORT_SEGMENT => SHORT_LOCATION_LEN,
            _ => LOCATION_LEN,
        };
        if tag & TAG_EXPIRY != 0 {
            p += 8;
        }
        (db, p, key_len, value_len)
    } else {
        // Seq u64, expire_at u64, db u16, key_len u16, kind u8, storage u8, value_len u16.
        (le16(at + 16)?, at + CELL_HEADER_LEN, le16(at + 18)? as usize, le16(at + 22)? as usize)
    };
    let end = key_at + key_len + value_len;
    (end <= bytes.len()).then_some(CellSpan { at, db, key_at, key_len, end })
}

/// The cells of a page in order, reading only the three length fields each needs at fixed offsets of its
/// header (the page walks of lookups and of the cell index share these bounds); stops at the first cell
/// that does not fit in the page.
fn cell_spans(bytes: &[u8]) -> impl Iterator<Item = CellSpan> + '_ {
    // Header: crc u32, kind u8, level u8, count u16, bucket u64, next_overflow u64, checkpoint_seq u64.
    let mut left = bytes.get(6..8).map_or(0, |b| u16::from_le_bytes([b[0], b[1]]));
    let compact = is_compact(bytes);
    let mut at = PAGE_HEADER_LEN;
    std::iter::from_fn(move || {
        if left == 0 || at >= PAGE_SIZE {
            return None;
        }
        left -= 1;
        let span = span_at(bytes, at, compact)?;
        at = span.end;
        Some(span)
    })
}

/// One entry of a cached page's cell index ([`index_cells`]): the top 20 bits of the cell's key hash above
/// the cell's byte offset in the page (12 bits: a page is 4 KiB).
fn index_entry(hash: u64, at: usize) -> u32 {
    ((hash >> 44) as u32) << 12 | (at as u32 & 0xFFF)
}

/// The overflow link in a page's header.
pub fn next_overflow(bytes: &[u8]) -> u64 {
    bytes.get(16..24).and_then(|b| <[u8; 8]>::try_from(b).ok()).map_or(0, u64::from_le_bytes)
}

/// Builds the in-memory index of a verified page's cells that [`find_cell_indexed`] uses: one `u32` per
/// cell, in page order. Built once when a page enters the page cache; never stored on disk.
pub fn index_cells(bytes: &[u8]) -> Vec<u32> {
    cell_spans(bytes).map(|span| index_entry(key_hash(span.db, span.key(bytes)), span.at)).collect()
}

/// [`find_cell`] (without the overflow link: see [`next_overflow`]) through the page's cell index
/// (`index_cells` of the same bytes): compares the key only at the cells whose hash bits match `hash` (`key_hash(db,
/// key)`), instead of walking the cells one by one (a walk reads about half of the page's cache lines,
/// each at an offset the previous cell decides).
pub fn find_cell_indexed(bytes: &[u8], index: &[u32], hash: u64, db: u16, key: &[u8]) -> Option<Cell> {
    find_cell_ref_indexed(bytes, index, hash, db, key).map(|cell| cell.to_cell())
}

/// [`find_cell_indexed`], borrowing the cell from the page instead of copying its key and value out (the
/// GET path: the copies and the key's third hashing cost more than the lookup itself).
pub fn find_cell_ref_indexed<'a>(
    bytes: &'a [u8],
    index: &[u32],
    hash: u64,
    db: u16,
    key: &[u8],
) -> Option<CellRef<'a>> {
    let wanted = index_entry(hash, 0);
    let compact = is_compact(bytes);
    for &entry in index {
        if entry & !0xFFF != wanted {
            continue;
        }
        let Some(span) = span_at(bytes, (entry & 0xFFF) as usize, compact) else { continue };
        if span.db == db && span.key_len == key.len() && span.key(bytes) == key {
            let mut reader = ByteReader::new(&bytes[span.at..span.end]);
            return decode_cell_ref(&mut reader, compact);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Page {
        Page {
            kind: PAGE_KIND_PRIMARY,
            level: 3,
            bucket: 5,
            next_overflow: 0,
            checkpoint_seq: 9,
            cells: vec![
                Cell {
                    hash: key_hash(0, b"a"),
                    seq: 4,
                    expire_at: 0,
                    db: 0,
                    key: b"a".to_vec(),
                    kind: ValueKind::String,
                    value: CellValue::Inline(b"\x00\x00x".to_vec()),
                },
                Cell {
                    hash: key_hash(2, b"bb"),
                    seq: 5,
                    expire_at: 1_700_000_000_000,
                    db: 2,
                    key: b"bb".to_vec(),
                    kind: ValueKind::Hash,
                    value: CellValue::Segment(SegmentLocation {
                        file: 1,
                        segment_offset: 16,
                        record_offset: 0,
                        envelope_len: 200,
                    }),
                },
                Cell {
                    hash: key_hash(0, b"c"),
                    seq: 6,
                    expire_at: 0,
                    db: 0,
                    key: b"c".to_vec(),
                    kind: ValueKind::String,
                    value: CellValue::Big { id: 6, envelope_len: 1 << 20 },
                },
            ],
        }
    }

    #[test]
    fn borrowed_cells_match_the_decoded_page() {
        let page = sample();
        let bytes = page.encode();
        let header = decode_header(&bytes[..], Path::new("b"), 0).expect("verifies");
        assert_eq!((header.kind, header.bucket, header.cell_count), (PAGE_KIND_PRIMARY, 5, 3));
        let cells: Vec<Cell> = cell_refs(&bytes[..]).map(|c| c.to_cell()).collect();
        assert_eq!(cells, page.cells);
        assert_eq!(cell_refs(&bytes[..]).map(|c| c.encoded_len()).sum::<usize>(), page.used());
        let mut bad = bytes.clone();
        bad[PAGE_HEADER_LEN + 1..PAGE_HEADER_LEN + 3].copy_from_slice(&[0xff, 0xff]); // the first key runs off
        let crc = format::crc32(&bad[4..]);
        bad[0..4].copy_from_slice(&crc.to_le_bytes());
        let err = decode_header(&bad[..], Path::new("b"), 0).unwrap_err().to_string();
        assert!(err.contains("cell 0 of 3 is malformed"), "{err}");
        assert_eq!(err, Page::decode(&bad[..], Path::new("b"), 0).unwrap_err().to_string());
    }

    #[test]
    fn roundtrip_and_find() {
        let page = sample();
        let bytes = page.encode();
        assert_eq!(Page::decode(&bytes[..], Path::new("b"), 0).expect("decodes"), page);
        assert_eq!(find_cell(&bytes[..], 2, b"bb").0.as_ref(), Some(&page.cells[1]));
        assert_eq!(find_cell(&bytes[..], 0, b"c").0.as_ref(), Some(&page.cells[2]));
        assert_eq!(find_cell(&bytes[..], 0, b"a").0.as_ref(), Some(&page.cells[0]));
        assert!(find_cell(&bytes[..], 1, b"a").0.is_none());
        assert!(find_cell(&bytes[..], 0, b"zz").0.is_none());
    }

    #[test]
    fn indexed_find_agrees_with_the_walk() {
        let mut page = sample();
        // Many cells, including keys that share a tail and one key in two databases.
        for n in 0..30u32 {
            let key = format!("user:{n}:profile").into_bytes();
            let value = CellValue::Inline(vec![0, 0, n as u8]);
            let cell =
                Cell { hash: key_hash(0, &key), seq: 10, expire_at: 0, db: 0, key, kind: ValueKind::String, value };
            page.cells.push(cell);
        }
        let bytes = page.encode();
        let index = index_cells(&bytes[..]);
        assert_eq!(index.len(), page.cells.len());
        let mut probes: Vec<(u16, Vec<u8>)> = page.cells.iter().map(|c| (c.db, c.key.clone())).collect();
        probes.extend([(1, b"a".to_vec()), (0, b"zz".to_vec()), (0, b"user:99:profile".to_vec()), (2, b"b".to_vec())]);
        for (db, key) in probes {
            let walked = find_cell(&bytes[..], db, &key);
            let indexed = find_cell_indexed(&bytes[..], &index, key_hash(db, &key), db, &key);
            assert_eq!(walked, (indexed, next_overflow(&bytes[..])), "db {db} key {:?}", String::from_utf8_lossy(&key));
        }
        // A hostile count: the index stops where the walk stops.
        let mut bad = bytes.clone();
        bad[6] = 0xff;
        bad[7] = 0xff;
        let index = index_cells(&bad[..]);
        assert!(index.len() >= page.cells.len());
        assert_eq!(find_cell_indexed(&bad[..], &index, key_hash(0, b"zz"), 0, b"zz"), find_cell(&bad[..], 0, b"zz").0);
    }

    #[test]
    fn golden_cell() {
        // docs/format.md §"Cell" shows these bytes.
        let page = Page {
            kind: PAGE_KIND_PRIMARY,
            level: 0,
            bucket: 0,
            next_overflow: 0,
            checkpoint_seq: 0,
            cells: vec![sample().cells[0].clone()],
        };
        let bytes = page.encode();
        assert_eq!(
            &bytes[PAGE_HEADER_LEN..PAGE_HEADER_LEN + 15],
            b"\x00\x01\x00\x04\x00\x00\x00\x00\x00\x03\x00a\x00\x00x"
        );
        assert_eq!(page.cells[0].encoded_len(), 15);
        // A hash in database 2 with an expiry, in a segment: the short location (storage 3), 8 bytes.
        let page = Page { cells: vec![sample().cells[1].clone()], ..page };
        let bytes = page.encode();
        let golden: &[u8] = b"\xb9\x02\x00\x02\x00\x05\x00\x00\x00\x00\x00\x00\x68\xe5\xcf\x8b\x01\x00\x00bb\
            \x01\x00\x10\x00\x00\x00\x80\x0c";
        assert_eq!(&bytes[PAGE_HEADER_LEN..PAGE_HEADER_LEN + golden.len()], golden);
        assert_eq!(page.cells[0].encoded_len(), golden.len());
        assert_eq!(Page::decode(&bytes[..], Path::new("b"), 0).expect("decodes"), page);
        // The same with an envelope of 5,000 bytes, past the short form: the long location (storage 1).
        let mut cell = sample().cells[1].clone();
        cell.value =
            CellValue::Segment(SegmentLocation { file: 1, segment_offset: 16, record_offset: 0, envelope_len: 5000 });
        let page = Page { cells: vec![cell], ..page };
        let bytes = page.encode();
        let golden: &[u8] = b"\xa9\x02\x00\x02\x00\x05\x00\x00\x00\x00\x00\x00\x68\xe5\xcf\x8b\x01\x00\x00bb\
            \x01\x00\x00\x00\x10\x00\x00\x00\x00\x00\x00\x00\x88\x13\x00\x00";
        assert_eq!(&bytes[PAGE_HEADER_LEN..PAGE_HEADER_LEN + golden.len()], golden);
        assert_eq!(page.cells[0].encoded_len(), golden.len());
        assert_eq!(Page::decode(&bytes[..], Path::new("b"), 0).expect("decodes"), page);
        // The same first cell in the original layout (pages written before the compact one).
        let page = Page { cells: vec![sample().cells[0].clone()], ..page };
        let bytes = page.encode_original();
        assert_eq!(bytes[4], PAGE_KIND_PRIMARY);
        assert_eq!(
            &bytes[PAGE_HEADER_LEN..PAGE_HEADER_LEN + 28],
            b"\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x03\x00a\x00\x00x"
        );
    }

    /// A page with every optional field of a compact cell, and cells at the edges of the sequence and
    /// database ranges.
    fn varied() -> Page {
        let mut page = sample();
        for (n, (seq, db, expire_at)) in
            [(SHORT_SEQ_MAX, 0, 0), (SHORT_SEQ_MAX + 1, 1, 5), (u64::MAX, u16::MAX, u64::MAX), (0, 3, 0)]
                .into_iter()
                .enumerate()
        {
            let key = format!("k{n}").into_bytes();
            let value = if n % 2 == 0 {
                CellValue::Inline(vec![0, 0, n as u8])
            } else {
                CellValue::Big { id: seq, envelope_len: 9 }
            };
            page.cells.push(Cell {
                hash: key_hash(db, &key),
                seq,
                expire_at,
                db,
                key,
                kind: ValueKind::Element,
                value,
            });
        }
        page
    }

    #[test]
    fn short_locations_take_every_location_that_fits_and_only_those() {
        let fits = SegmentLocation {
            file: (1 << 16) - 1,
            segment_offset: (1 << 24) - 1,
            record_offset: 4095,
            envelope_len: 4095,
        };
        assert_eq!(SegmentLocation::unpack(fits.packed().expect("fits")), fits);
        let golden = SegmentLocation { file: 3, segment_offset: 4096, record_offset: 77, envelope_len: 120 };
        assert_eq!(golden.packed().map(u64::to_le_bytes), Some([0x03, 0x00, 0x00, 0x10, 0x00, 0x4d, 0x80, 0x07]));
        let past = [
            SegmentLocation { file: 1 << 16, ..fits },
            SegmentLocation { segment_offset: 1 << 24, ..fits },
            SegmentLocation { record_offset: 4096, ..fits },
            SegmentLocation { envelope_len: 4096, ..fits },
        ];
        let mut page = sample();
        for (n, location) in past.iter().chain([&fits, &golden]).enumerate() {
            let key = format!("segment:{n}").into_bytes();
            let cell = Cell {
                hash: key_hash(0, &key),
                seq: 100 + n as u64,
                expire_at: 0,
                db: 0,
                key,
                kind: ValueKind::String,
                value: CellValue::Segment(*location),
            };
            let long = n < past.len();
            assert_eq!(location.packed().is_none(), long);
            assert_eq!(cell.encoded_len(), 1 + 2 + 6 + cell.key.len() + if long { 16 } else { 8 });
            page.cells.push(cell);
        }
        let bytes = page.encode();
        assert_eq!(Page::decode(&bytes[..], Path::new("b"), 0).expect("decodes"), page);
        assert_eq!(cell_refs(&bytes[..]).map(|c| c.encoded_len()).sum::<usize>(), page.used());
        let index = index_cells(&bytes[..]);
        for cell in &page.cells {
            assert_eq!(find_cell(&bytes[..], cell.db, &cell.key).0.as_ref(), Some(cell));
            assert_eq!(find_cell_indexed(&bytes[..], &index, cell.hash, cell.db, &cell.key).as_ref(), Some(cell));
        }
        // The bulk loader's writer: the long form's bytes in, the short form out when it fits.
        for location in past.iter().chain([&fits, &golden]) {
            let mut long = Vec::new();
            for field in [location.file, location.segment_offset, location.record_offset, location.envelope_len] {
                long.put_u32(field);
            }
            let mut out = [0u8; 64];
            let len = write_cell_parts(&mut out, 7, 0, 0, 0, STORAGE_SEGMENT, b"k", &long);
            assert_eq!(len, cell_len(7, 0, 0, 1, None) - LOCATION_LEN + parts_value_len(STORAGE_SEGMENT, &long));
            assert_eq!(len, segment_cell_len(7, 0, 0, 1, location));
            let mut reader = ByteReader::new(&out[..len]);
            let cell = decode_compact_cell_ref(&mut reader).expect("decodes");
            assert_eq!(cell.value, CellValueRef::Segment(*location));
            assert_eq!(reader.remaining(), 0);
        }
    }

    #[test]
    fn compact_cells_take_what_encoded_len_says() {
        let page = varied();
        let bytes = page.encode();
        assert_eq!(bytes[4], PAGE_KIND_PRIMARY | PAGE_FLAG_COMPACT);
        assert_eq!(Page::decode(&bytes[..], Path::new("b"), 0).expect("decodes"), page);
        let end = cell_spans(&bytes[..]).last().map(|span| span.end);
        assert_eq!(end, Some(PAGE_HEADER_LEN + page.used()));
        assert!(bytes[PAGE_HEADER_LEN + page.used()..].iter().all(|&b| b == 0));
        for cell in &page.cells {
            assert_eq!(find_cell(&bytes[..], cell.db, &cell.key).0.as_ref(), Some(cell));
        }
    }

    #[test]
    fn pages_of_the_original_layout_still_read() {
        // Directories written before the compact layout: every reader takes their pages as they are.
        let page = varied();
        let bytes = page.encode_original();
        assert_eq!(Page::decode(&bytes[..], Path::new("b"), 0).expect("decodes"), page);
        let header = decode_header(&bytes[..], Path::new("b"), 0).expect("verifies");
        assert_eq!(
            (header.kind, header.compact, header.cell_count as usize),
            (PAGE_KIND_PRIMARY, false, page.cells.len())
        );
        let cells: Vec<Cell> = cell_refs(&bytes[..]).map(|c| c.to_cell()).collect();
        assert_eq!(cells, page.cells);
        let index = index_cells(&bytes[..]);
        for cell in &page.cells {
            assert_eq!(find_cell(&bytes[..], cell.db, &cell.key).0.as_ref(), Some(cell));
            let indexed = find_cell_indexed(&bytes[..], &index, key_hash(cell.db, &cell.key), cell.db, &cell.key);
            assert_eq!(indexed.as_ref(), Some(cell));
        }
        // Written again, the page is compact and smaller.
        let again = Page::decode(&bytes[..], Path::new("b"), 0).expect("decodes").encode();
        assert!(decode_header(&again[..], Path::new("b"), 0).expect("verifies").compact);
        let unknown = {
            let mut bad = bytes.clone();
            bad[4] = 0x13;
            let crc = format::crc32(&bad[4..]);
            bad[0..4].copy_from_slice(&crc.to_le_bytes());
            Page::decode(&bad[..], Path::new("b"), 0).unwrap_err().to_string()
        };
        assert!(unknown.contains("unknown page kind 19"), "{unknown}");
    }

    #[test]
    fn golden_header() {
        // docs/format.md §"Key-bucket page" shows this header.
        let page =
            Page { kind: PAGE_KIND_PRIMARY, level: 3, bucket: 5, next_overflow: 7, checkpoint_seq: 9, cells: vec![] };
        let bytes = page.encode();
        assert_eq!(&bytes[4..32], b"\x11\x03\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00\x07\x00\x00\x00\x00\x00\x00\x00\x09\x00\x00\x00\x00\x00\x00\x00");
        assert!(bytes[32..].iter().all(|&b| b == 0));
    }

    /// Bytes a cell takes in the original layout.
    fn original_len(cell: &Cell) -> usize {
        CELL_HEADER_LEN
            + cell.key.len()
            + match &cell.value {
                CellValue::Inline(envelope) => envelope.len(),
                _ => LOCATION_LEN,
            }
    }

    /// Rewrites, in place, every page of a data directory's bucket files for which `rewrite` gives a new
    /// image (a page as an older build would have written it); returns how many pages it rewrote.
    fn rewrite_pages(dir: &Path, rewrite: impl Fn(&Page) -> Option<Box<[u8; PAGE_SIZE]>>) -> usize {
        let mut rewritten = 0;
        for slot in std::fs::read_dir(dir).expect("read_dir").flatten().map(|e| e.path()).filter(|p| p.is_dir()) {
            for name in [super::super::buckets::BUCKETS_FILE, super::super::buckets::OVERFLOW_FILE] {
                let path = slot.join(name);
                let Ok(mut bytes) = std::fs::read(&path) else { continue };
                for at in (PAGE_SIZE..bytes.len()).step_by(PAGE_SIZE) {
                    let Some(image) = bytes.get_mut(at..at + PAGE_SIZE) else { break };
                    let Ok(page) = Page::decode(image, &path, at as u64) else { continue };
                    if let Some(old) = rewrite(&page) {
                        image.copy_from_slice(&old[..]);
                        rewritten += 1;
                    }
                }
                std::fs::write(&path, &bytes).expect("write pages");
            }
        }
        rewritten
    }

    /// Rewrites every page of a data directory's bucket files in the original cell layout, as a build from
    /// before the compact layout left them; returns how many pages it rewrote.
    fn downgrade_pages(dir: &Path) -> usize {
        // Only pages the original layout can hold (an old build packed them by its lengths).
        rewrite_pages(dir, |page| {
            let original: usize = page.cells.iter().map(original_len).sum();
            (original <= CELL_AREA).then(|| page.encode_original())
        })
    }

    #[test]
    fn a_directory_of_original_pages_opens_reads_and_converts() {
        use super::super::{Engine, EngineOptions};
        let dir = tempfile::tempdir().expect("tempdir");
        let options = || EngineOptions { slot_count: Some(2), background_sync: false, ..EngineOptions::default() };
        let value = |i: u32| format!("value-{i}-{}", "v".repeat((i % 7 * 40) as usize)).into_bytes();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let big: Vec<u8> = (0..70_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        {
            let engine = Engine::open(dir.path(), options()).expect("open");
            for i in 0..60u32 {
                let expire = (i % 5 == 0).then_some(4_000_000_000_000);
                engine
                    .set(i as u16 % 2, format!("k:{i}").as_bytes(), ValueKind::String, &value(i), expire)
                    .expect("set");
            }
            engine.set(0, b"big", ValueKind::String, &big, None).expect("set");
            engine.close().expect("close");
        }
        assert!(downgrade_pages(dir.path()) >= 2);
        let check = |engine: &Engine, upto: u32| {
            for i in 0..upto {
                let entry = engine.get(i as u16 % 2, format!("k:{i}").as_bytes()).expect("get").expect("present");
                assert_eq!(entry.value.to_vec(), value(i), "k:{i}");
            }
            assert_eq!(engine.get(0, b"big").expect("get").expect("present").value.to_vec(), big);
        };
        {
            let engine = Engine::open(dir.path(), options()).expect("opens a directory of original pages");
            check(&engine, 60);
            // New writes rewrite the buckets they touch (and split) in the compact layout.
            for i in 60..600u32 {
                engine.set(i as u16 % 2, format!("k:{i}").as_bytes(), ValueKind::String, &value(i), None).expect("set");
            }
            engine.checkpoint().expect("checkpoint");
            check(&engine, 600);
            engine.close().expect("close");
        }
        let engine = Engine::open(dir.path(), options()).expect("reopen");
        check(&engine, 600);
    }

    /// Rewrites every compact page of a data directory's bucket files with long locations, as a build from
    /// before short locations left them; returns how many pages now hold a long location.
    fn lengthen_locations(dir: &Path) -> usize {
        // Only pages an old build could have written (it packed them by the long lengths).
        rewrite_pages(dir, |page| {
            let segments = page.cells.iter().filter(|c| matches!(c.value, CellValue::Segment(_))).count();
            (segments > 0 && page.used() + segments * (LOCATION_LEN - SHORT_LOCATION_LEN) <= CELL_AREA)
                .then(|| page.encode_long_locations())
        })
    }

    /// Pages of a directory holding a long location: their cells end past what the page's cells take now.
    fn pages_with_long_locations(dir: &Path) -> usize {
        let mut count = 0;
        for slot in std::fs::read_dir(dir).expect("read_dir").flatten().map(|e| e.path()).filter(|p| p.is_dir()) {
            for name in [super::super::buckets::BUCKETS_FILE, super::super::buckets::OVERFLOW_FILE] {
                let Ok(bytes) = std::fs::read(slot.join(name)) else { continue };
                for image in bytes.chunks_exact(PAGE_SIZE).skip(1) {
                    let Ok(page) = Page::decode(image, Path::new("b"), 0) else { continue };
                    let end = cell_spans(image).last().map_or(PAGE_HEADER_LEN, |span| span.end);
                    count += usize::from(end - PAGE_HEADER_LEN > page.used());
                }
            }
        }
        count
    }

    #[test]
    fn a_directory_of_long_locations_opens_reads_and_converts() {
        use super::super::{Engine, EngineOptions};
        let dir = tempfile::tempdir().expect("tempdir");
        let options = || EngineOptions { slot_count: Some(2), background_sync: false, ..EngineOptions::default() };
        let value = |i: u32| format!("value-{i}-{}", "v".repeat((i % 7 * 40) as usize)).into_bytes();
        {
            let engine = Engine::open(dir.path(), options()).expect("open");
            for i in 0..200u32 {
                let expire = (i % 5 == 0).then_some(4_000_000_000_000);
                engine
                    .set(i as u16 % 2, format!("k:{i}").as_bytes(), ValueKind::String, &value(i), expire)
                    .expect("set");
            }
            engine.close().expect("close");
        }
        assert_eq!(pages_with_long_locations(dir.path()), 0, "a checkpoint writes short locations");
        let long_pages = lengthen_locations(dir.path());
        assert!(long_pages >= 2, "{long_pages}");
        assert_eq!(pages_with_long_locations(dir.path()), long_pages);
        let check = |engine: &Engine, upto: u32| {
            for i in 0..upto {
                let entry = engine.get(i as u16 % 2, format!("k:{i}").as_bytes()).expect("get").expect("present");
                assert_eq!(entry.value.to_vec(), value(i), "k:{i}");
            }
        };
        {
            let engine = Engine::open(dir.path(), options()).expect("opens a directory of long locations");
            check(&engine, 200);
            // New writes rewrite the buckets they touch (and split) with short locations.
            for i in 200..2000u32 {
                engine.set(i as u16 % 2, format!("k:{i}").as_bytes(), ValueKind::String, &value(i), None).expect("set");
            }
            engine.checkpoint().expect("checkpoint");
            check(&engine, 2000);
            engine.close().expect("close");
        }
        assert!(pages_with_long_locations(dir.path()) < long_pages);
        let engine = Engine::open(dir.path(), options()).expect("reopen");
        check(&engine, 2000);
    }

    #[test]
    fn every_flip_is_detected() {
        let bytes = sample().encode();
        for index in (0..PAGE_SIZE).step_by(7) {
            let mut bad = bytes.clone();
            bad[index] ^= 0x80;
            assert!(Page::decode(&bad[..], Path::new("b"), 4096).is_err(), "flip at {index}");
        }
        for len in [0, 1, 31, 32, 4095] {
            assert!(Page::decode(&bytes[..len], Path::new("b"), 0).is_err());
        }
    }

    #[test]
    fn hostile_cell_counts_do_not_panic() {
        let mut bytes = sample().encode();
        bytes[6] = 0xff;
        bytes[7] = 0xff;
        let crc = format::crc32(&bytes[4..]);
        bytes[0..4].copy_from_slice(&crc.to_le_bytes());
        assert!(Page::decode(&bytes[..], Path::new("b"), 0).is_err());
        let _ = find_cell(&bytes[..], 0, b"zz");
    }
}
