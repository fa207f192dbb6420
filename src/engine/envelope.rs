//! The value envelope: the bytes stored for a value wherever it lives (WAL record, inline in a bucket cell,
//! segment record, big-value file). It records the Redis type and the encoding: raw bytes, a compact
//! integer, or zstd with a dictionary id (1 = plain zstd, >1 = a trained dictionary from the dictionary
//! map). Expiry and sequence live in the record or cell that holds the envelope. Layout: docs/format.md
//! §"Value envelope".

use bytes::Bytes;

pub use super::dictionary::DictionaryMap;
use super::dictionary::Prepared;
use super::format::{ByteReader, PutLe};

/// The Redis type of a stored value. Stored on disk, never renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ValueKind {
    /// A string.
    String = 0,
    /// A hash.
    Hash = 1,
    /// A list.
    List = 2,
    /// A set.
    Set = 3,
    /// A sorted set.
    SortedSet = 4,
    /// A stream.
    Stream = 5,
    /// A RedisBloom-style bloom filter.
    BloomFilter = 6,
    /// An internal element of a large collection, not visible as a key.
    Element = 7,
}

impl TryFrom<u8> for ValueKind {
    type Error = u8;
    fn try_from(tag: u8) -> Result<Self, u8> {
        Ok(match tag {
            0 => ValueKind::String,
            1 => ValueKind::Hash,
            2 => ValueKind::List,
            3 => ValueKind::Set,
            4 => ValueKind::SortedSet,
            5 => ValueKind::Stream,
            6 => ValueKind::BloomFilter,
            7 => ValueKind::Element,
            other => return Err(other),
        })
    }
}

/// Envelope codec tags. Stored on disk, never renumber.
const CODEC_RAW: u8 = 0;
const CODEC_INT: u8 = 1;
const CODEC_ZSTD: u8 = 2;
/// zstd with a trained dictionary, compact header (docs/format.md §"Value envelope").
pub const CODEC_ZSTD_DICT: u8 = 3;
/// The 4 bytes every zstd frame starts with; codec 3 leaves them out.
const ZSTD_FRAME_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// The codec byte's low bits name the codec; its two high bits are the string marks below.
const CODEC_MASK: u8 = 0x3f;
/// Codec-byte mark of a string Redis holds `raw` (changed in place).
const MARK_RAW: u8 = 0x80;
/// Codec-byte mark of a string Redis holds `embstr`/`raw` by length, never `int`.
const MARK_NOT_INT: u8 = 0x40;

/// Redis 7.0's in-memory encoding of a string depends on the command that wrote it, not only on its
/// bytes; this is the part of that history OBJECT ENCODING needs (docs/format.md §"Value envelope",
/// string marks). Only strings carry a mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StringEncoding {
    /// Chosen from the content as Redis's `tryObjectEncoding` chooses (SET, INCR, RESTORE...): `int` for
    /// a canonical integer of up to 20 bytes, `embstr` up to 44 bytes, `raw` above.
    #[default]
    Content,
    /// `raw` whatever the content: written in place (APPEND, SETRANGE, SETBIT, BITFIELD, BITOP, PFADD...).
    Raw,
    /// `embstr` up to 44 bytes, `raw` above, never `int`: INCRBYFLOAT's result.
    NotInt,
}

impl StringEncoding {
    fn bits(self) -> u8 {
        match self {
            StringEncoding::Content => 0,
            StringEncoding::Raw => MARK_RAW,
            StringEncoding::NotInt => MARK_NOT_INT,
        }
    }

    /// Redis's OBJECT ENCODING name for the string `value` written with this encoding.
    pub fn name(self, value: &[u8]) -> &'static str {
        match self {
            StringEncoding::Raw => "raw",
            StringEncoding::Content if canonical_int(value).is_some() => "int",
            _ if value.len() <= 44 => "embstr",
            _ => "raw",
        }
    }
}

/// Sets the string mark of an encoded envelope (a no-op for [`StringEncoding::Content`]).
pub fn mark_string(envelope: &mut [u8], encoding: StringEncoding) {
    if let Some(codec) = envelope.get_mut(1) {
        *codec = (*codec & CODEC_MASK) | encoding.bits();
    }
}

/// The string mark of an envelope (`Content` for anything unmarked, and for every non-string).
pub fn string_encoding(envelope: &[u8]) -> StringEncoding {
    match envelope.get(1).map(|codec| codec & !CODEC_MASK) {
        Some(MARK_RAW) => StringEncoding::Raw,
        Some(MARK_NOT_INT) => StringEncoding::NotInt,
        _ => StringEncoding::Content,
    }
}

/// The codec of an envelope, its string mark left out.
pub fn codec(envelope: &[u8]) -> Option<u8> {
    envelope.get(1).map(|codec| codec & CODEC_MASK)
}

/// Dictionary id meaning "plain zstd, no dictionary".
pub const DICT_PLAIN_ZSTD: u32 = 1;

/// When and how hard to compress.
#[derive(Debug, Clone, Copy)]
pub struct CompressionPolicy {
    /// Values shorter than this are never compressed.
    pub min_len: usize,
    /// zstd level.
    pub level: i32,
    /// Compress chunk segments as a whole (smaller on disk; a cold read then decompresses a segment).
    pub segments: bool,
}

impl Default for CompressionPolicy {
    fn default() -> Self {
        // Shorter values are compressed together with their neighbours when their segment is written;
        // compressing each on its own shrinks them less and makes every read of a recent value pay for a
        // zstd frame set-up.
        Self { min_len: 1024, level: 3, segments: true }
    }
}

thread_local! {
    /// One zstd context per thread: creating a context costs more than compressing a small value.
    static COMPRESSOR: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { std::cell::RefCell::new(None) };
}

thread_local! {
    /// One zstd decompression context per thread, for the same reason.
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// Decompresses plain zstd (no dictionary) with a reused per-thread context.
pub fn decompress(bytes: &[u8], capacity: usize) -> std::io::Result<Vec<u8>> {
    DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(zstd::bulk::Decompressor::new()?);
        }
        match slot.as_mut() {
            Some(decompressor) => decompressor.decompress(bytes, capacity),
            None => zstd::bulk::decompress(bytes, capacity),
        }
    })
}

/// [`decompress`] into `out` (cleared first), reusing its allocation.
pub fn decompress_into(bytes: &[u8], capacity: usize, out: &mut Vec<u8>) -> std::io::Result<()> {
    out.clear();
    out.reserve(capacity);
    DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(zstd::bulk::Decompressor::new()?);
        }
        match slot.as_mut() {
            Some(decompressor) => decompressor.decompress_to_buffer(bytes, out).map(|_| ()),
            None => zstd::bulk::Decompressor::new()?.decompress_to_buffer(bytes, out).map(|_| ()),
        }
    })
}

/// Compresses with a reused per-thread context.
pub fn compress(bytes: &[u8], level: i32) -> Option<Vec<u8>> {
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_none_or(|(current, _)| *current != level) {
            *slot = zstd::bulk::Compressor::new(level).ok().map(|compressor| (level, compressor));
        }
        slot.as_mut().and_then(|(_, compressor)| compressor.compress(bytes).ok())
    })
}

/// Why an envelope could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvelopeError {
    /// The bytes are not a valid envelope.
    Malformed(String),
    /// The envelope needs a dictionary that is not installed.
    DictMissing(u32),
}

/// The canonical i64 a string spells, if it spells exactly one (as Redis's `string2ll`: no sign on zero,
/// no leading zeros, no spaces).
pub fn canonical_int(value: &[u8]) -> Option<i64> {
    if value.is_empty() || value.len() > 20 {
        return None;
    }
    let text = std::str::from_utf8(value).ok()?;
    let number: i64 = text.parse().ok()?;
    (number.to_string().as_bytes() == value).then_some(number)
}

thread_local! {
    /// Per-thread contexts for dictionary compression (the prepared dictionary is passed per call, so one
    /// context serves every dictionary) and a scratch buffer to put the frame magic back before decoding.
    static DICT_CONTEXTS: std::cell::RefCell<(zstd::zstd_safe::CCtx<'static>, zstd::zstd_safe::DCtx<'static>, Vec<u8>)> =
        std::cell::RefCell::new((zstd::zstd_safe::CCtx::create(), zstd::zstd_safe::DCtx::create(), Vec::new()));
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn read_varint(reader: &mut ByteReader<'_>) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = reader.u8()?;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// Encodes a value compressed on its own with a trained dictionary (codec 3), or `None` when that does not
/// pay (or the value is an integer, which has a shorter encoding).
pub fn encode_with_dictionary(kind: ValueKind, value: &[u8], dict: &Prepared) -> Option<Vec<u8>> {
    if kind == ValueKind::String && canonical_int(value).is_some() {
        return None;
    }
    // The frame goes to the thread's scratch buffer and the envelope is allocated once at its exact size:
    // a frame buffer of the compression bound per write, and the envelope's spare capacity given back when
    // the memtable keeps it (`Box<[u8]>`), were two allocator calls per SET.
    DICT_CONTEXTS.with(|cell| {
        let (cctx, _, scratch) = &mut *cell.borrow_mut();
        scratch.clear();
        scratch.reserve(zstd::zstd_safe::compress_bound(value.len()));
        cctx.compress_using_cdict(&mut *scratch, value, dict.encoder.as_cdict()).ok()?;
        let body = scratch.strip_prefix(&ZSTD_FRAME_MAGIC[..])?;
        let len = 2 + varint_len(u64::from(dict.id)) + varint_len(value.len() as u64) + body.len();
        // Stored raw, the value would take its length plus 2.
        if len >= value.len() + 2 {
            return None;
        }
        let mut out = Vec::with_capacity(len);
        out.push(kind as u8);
        out.push(CODEC_ZSTD_DICT);
        put_varint(&mut out, u64::from(dict.id));
        put_varint(&mut out, value.len() as u64);
        out.extend_from_slice(body);
        Some(out)
    })
}

/// Bytes [`put_varint`] writes for `value`.
fn varint_len(value: u64) -> usize {
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

fn decompress_with_dictionary(body: &[u8], raw_len: usize, dict: &Prepared) -> Result<Vec<u8>, String> {
    DICT_CONTEXTS.with(|cell| {
        let (_, dctx, scratch) = &mut *cell.borrow_mut();
        scratch.clear();
        scratch.extend_from_slice(&ZSTD_FRAME_MAGIC);
        scratch.extend_from_slice(body);
        let mut out = Vec::with_capacity(raw_len);
        dctx.decompress_using_ddict(&mut out, scratch, dict.decoder.as_ddict())
            .map_err(|code| zstd::zstd_safe::get_error_name(code).to_string())?;
        Ok(out)
    })
}

/// Compresses a whole segment payload with a prepared dictionary into `out` (cleared first): one zstd
/// frame, magic included, using the per-thread context and the dictionary's prepared tables (no table
/// set-up per segment). `false` if zstd failed.
pub(crate) fn compress_frame_with_dictionary(bytes: &[u8], dict: &Prepared, out: &mut Vec<u8>) -> bool {
    out.clear();
    out.reserve(zstd::zstd_safe::compress_bound(bytes.len()));
    DICT_CONTEXTS.with(|cell| cell.borrow_mut().0.compress_using_cdict(out, bytes, dict.encoder.as_cdict())).is_ok()
}

/// Decompresses a zstd frame written by [`compress_frame_with_dictionary`] into `out` (cleared first,
/// `capacity` reserved), with the per-thread context and the dictionary's prepared tables.
pub(crate) fn decompress_frame_with_dictionary(
    frame: &[u8],
    capacity: usize,
    dict: &Prepared,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    out.clear();
    out.reserve(capacity);
    DICT_CONTEXTS.with(|cell| {
        let (_, dctx, _) = &mut *cell.borrow_mut();
        dctx.decompress_using_ddict(out, frame, dict.decoder.as_ddict())
            .map(|_| ())
            .map_err(|code| zstd::zstd_safe::get_error_name(code).to_string())
    })
}

/// The raw form (codec 0) of an envelope compressed on its own with a trained dictionary (codec 3), for a
/// segment that is itself compressed with a dictionary: the segment's frame then compresses the value
/// together with its neighbours. `None` for other codecs, or when the value cannot be decoded.
pub fn undo_dictionary_codec(envelope: &[u8], dictionaries: &DictionaryMap) -> Option<Vec<u8>> {
    if codec(envelope) != Some(CODEC_ZSTD_DICT) {
        return None;
    }
    let (kind, value) = decode(envelope, dictionaries).ok()?;
    let mut out = Vec::with_capacity(value.len() + 2);
    out.push(kind as u8);
    out.push(CODEC_RAW | string_encoding(envelope).bits());
    out.extend_from_slice(&value);
    Some(out)
}

/// Encodes a value into an envelope, compressing it when that pays.
pub fn encode(kind: ValueKind, value: &[u8], policy: CompressionPolicy) -> Vec<u8> {
    if kind == ValueKind::String {
        if let Some(number) = canonical_int(value) {
            let mut out = Vec::with_capacity(10);
            out.push(kind as u8);
            out.push(CODEC_INT);
            out.put_u64(number as u64);
            return out;
        }
    }
    // Parts of split collections are rewritten on almost every command that touches them; compressing
    // each version would cost more CPU than it saves, and segments compress them at checkpoint anyway.
    if value.len() >= policy.min_len && kind != ValueKind::Element {
        if let Some(compressed) = compress(value, policy.level) {
            if compressed.len() + 8 < value.len() {
                let mut out = Vec::with_capacity(compressed.len() + 10);
                out.push(kind as u8);
                out.push(CODEC_ZSTD);
                out.put_u32(DICT_PLAIN_ZSTD);
                out.put_u32(value.len() as u32);
                out.extend_from_slice(&compressed);
                return out;
            }
        }
    }
    let mut out = Vec::with_capacity(value.len() + 2);
    out.push(kind as u8);
    out.push(CODEC_RAW);
    out.extend_from_slice(value);
    out
}

/// [`encode`] into `out` (cleared first), reusing its allocation: a bulk load encodes millions of small
/// values, and those (stored raw) then cost no allocation each. The bytes are exactly [`encode`]'s.
pub fn encode_into(kind: ValueKind, value: &[u8], policy: CompressionPolicy, out: &mut Vec<u8>) {
    out.clear();
    if !stays_raw(kind, value, policy) {
        out.extend_from_slice(&encode(kind, value, policy));
        return;
    }
    out.extend_from_slice(&raw_header(kind));
    out.extend_from_slice(value);
}

/// True when [`encode`] stores `value` as it is: its envelope is then [`raw_header`] followed by the
/// value, which a bulk load builds in place instead of encoding.
pub fn stays_raw(kind: ValueKind, value: &[u8], policy: CompressionPolicy) -> bool {
    let may_differ = (kind == ValueKind::String && canonical_int(value).is_some())
        || (value.len() >= policy.min_len && kind != ValueKind::Element);
    !may_differ
}

/// The first bytes of the envelope of a value stored raw.
pub fn raw_header(kind: ValueKind) -> [u8; 2] {
    [kind as u8, CODEC_RAW]
}

/// The type recorded in an envelope, without decoding the payload.
pub fn peek_kind(envelope: &[u8]) -> Result<ValueKind, EnvelopeError> {
    let tag = *envelope.first().ok_or_else(|| EnvelopeError::Malformed("empty envelope".into()))?;
    ValueKind::try_from(tag).map_err(|tag| EnvelopeError::Malformed(format!("unknown value kind {tag}")))
}

/// The dictionary an envelope's value is compressed with: 1 for plain zstd, a trained dictionary's id
/// above 1, `None` when it is not compressed.
pub fn dictionary_id(envelope: &[u8]) -> Option<u32> {
    let mut reader = ByteReader::new(envelope);
    reader.u8()?;
    match reader.u8()? & CODEC_MASK {
        CODEC_ZSTD => reader.u32(),
        CODEC_ZSTD_DICT => read_varint(&mut reader).and_then(|id| u32::try_from(id).ok()),
        _ => None,
    }
}

/// The decoded length of an envelope's value, without decompressing.
pub fn value_len(envelope: &[u8]) -> Result<usize, EnvelopeError> {
    let mut reader = ByteReader::new(envelope);
    let _kind = reader.u8();
    match reader.u8().map(|codec| codec & CODEC_MASK) {
        Some(CODEC_RAW) => Ok(reader.remaining()),
        Some(CODEC_INT) => {
            let number = reader.u64().ok_or_else(|| EnvelopeError::Malformed("integer truncated".into()))? as i64;
            Ok(number.to_string().len())
        }
        Some(CODEC_ZSTD) => {
            let _dict = reader.u32();
            reader.u32().map(|len| len as usize).ok_or_else(|| EnvelopeError::Malformed("zstd header truncated".into()))
        }
        Some(CODEC_ZSTD_DICT) => {
            let _dict = read_varint(&mut reader);
            read_varint(&mut reader)
                .and_then(|len| usize::try_from(len).ok())
                .ok_or_else(|| EnvelopeError::Malformed("dictionary header truncated".into()))
        }
        Some(other) => Err(EnvelopeError::Malformed(format!("unknown codec {other}"))),
        None => Err(EnvelopeError::Malformed("envelope truncated".into())),
    }
}

/// [`decode`] of an envelope held as [`Bytes`]: a raw value is returned as a slice of it, not copied.
pub fn decode_shared(envelope: &Bytes, dictionaries: &DictionaryMap) -> Result<(ValueKind, Bytes), EnvelopeError> {
    if codec(envelope) == Some(CODEC_RAW) {
        return Ok((peek_kind(envelope)?, envelope.slice(2..)));
    }
    decode(envelope, dictionaries)
}

/// Decodes an envelope into its type and value bytes.
pub fn decode(envelope: &[u8], dictionaries: &DictionaryMap) -> Result<(ValueKind, Bytes), EnvelopeError> {
    let kind = peek_kind(envelope)?;
    let mut reader = ByteReader::new(envelope);
    reader.u8();
    let codec = reader.u8().ok_or_else(|| EnvelopeError::Malformed("codec missing".into()))?;
    if codec & !CODEC_MASK != 0 && (kind != ValueKind::String || codec & !CODEC_MASK == MARK_RAW | MARK_NOT_INT) {
        return Err(EnvelopeError::Malformed(format!("string mark {codec:#04x} on a {kind:?} value")));
    }
    let value = match codec & CODEC_MASK {
        CODEC_RAW => Bytes::copy_from_slice(reader.take(reader.remaining()).unwrap_or_default()),
        CODEC_INT => {
            let number = reader.u64().ok_or_else(|| EnvelopeError::Malformed("integer truncated".into()))? as i64;
            if reader.remaining() != 0 {
                return Err(EnvelopeError::Malformed("trailing bytes after integer".into()));
            }
            Bytes::from(number.to_string())
        }
        CODEC_ZSTD => {
            let dict_id = reader.u32().ok_or_else(|| EnvelopeError::Malformed("zstd header truncated".into()))?;
            let raw_len =
                reader.u32().ok_or_else(|| EnvelopeError::Malformed("zstd header truncated".into()))? as usize;
            let payload = reader.take(reader.remaining()).unwrap_or_default();
            let decompressed = match dict_id {
                0 => return Err(EnvelopeError::Malformed("zstd envelope with dictionary id 0".into())),
                DICT_PLAIN_ZSTD => decompress(payload, raw_len),
                id => {
                    let dictionary = dictionaries.get(id).ok_or(EnvelopeError::DictMissing(id))?;
                    zstd::bulk::Decompressor::with_prepared_dictionary(&dictionary.decoder)
                        .and_then(|mut decompressor| decompressor.decompress(payload, raw_len))
                }
            }
            .map_err(|err| EnvelopeError::Malformed(format!("zstd: {err}")))?;
            if decompressed.len() != raw_len {
                return Err(EnvelopeError::Malformed(format!(
                    "zstd produced {} bytes, envelope says {raw_len}",
                    decompressed.len()
                )));
            }
            Bytes::from(decompressed)
        }
        CODEC_ZSTD_DICT => {
            let header = || EnvelopeError::Malformed("dictionary header truncated".into());
            let dict_id = read_varint(&mut reader).and_then(|id| u32::try_from(id).ok()).ok_or_else(header)?;
            let raw_len = read_varint(&mut reader).and_then(|len| usize::try_from(len).ok()).ok_or_else(header)?;
            if raw_len > super::dictionary::DICT_MAX_VALUE_LEN {
                return Err(EnvelopeError::Malformed(format!("dictionary-compressed value of {raw_len} bytes")));
            }
            let dictionary = dictionaries.get(dict_id).ok_or(EnvelopeError::DictMissing(dict_id))?;
            let body = reader.take(reader.remaining()).unwrap_or_default();
            let decompressed = decompress_with_dictionary(body, raw_len, &dictionary)
                .map_err(|err| EnvelopeError::Malformed(format!("zstd: {err}")))?;
            if decompressed.len() != raw_len {
                return Err(EnvelopeError::Malformed(format!(
                    "zstd produced {} bytes, envelope says {raw_len}",
                    decompressed.len()
                )));
            }
            Bytes::from(decompressed)
        }
        other => return Err(EnvelopeError::Malformed(format!("unknown codec {other}"))),
    };
    Ok((kind, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(kind: ValueKind, value: &[u8]) -> Vec<u8> {
        let envelope = encode(kind, value, CompressionPolicy::default());
        let (decoded_kind, decoded) = decode(&envelope, &DictionaryMap::default()).expect("decodes");
        assert_eq!(decoded_kind, kind);
        assert_eq!(&decoded[..], value);
        assert_eq!(value_len(&envelope).ok(), Some(value.len()));
        envelope
    }

    #[test]
    fn golden_bytes() {
        // docs/format.md §"Value envelope" shows these.
        assert_eq!(roundtrip(ValueKind::String, b"hi"), b"\x00\x00hi");
        assert_eq!(roundtrip(ValueKind::String, b"-2"), b"\x00\x01\xfe\xff\xff\xff\xff\xff\xff\xff");
        assert_eq!(roundtrip(ValueKind::Hash, b"12"), b"\x01\x0012");
    }

    #[test]
    fn string_marks_golden_bytes_and_every_codec_keeps_them() {
        // docs/format.md §"Value envelope": the marks are the codec byte's two high bits.
        let mut raw_int = encode(ValueKind::String, b"12", CompressionPolicy::default());
        mark_string(&mut raw_int, StringEncoding::Raw);
        assert_eq!(raw_int, b"\x00\x81\x0c\x00\x00\x00\x00\x00\x00\x00");
        let mut float = encode(ValueKind::String, b"3", CompressionPolicy::default());
        mark_string(&mut float, StringEncoding::NotInt);
        assert_eq!(float[1], 0x41);
        let mut big = encode(ValueKind::String, &b"xyz".repeat(500), CompressionPolicy::default());
        mark_string(&mut big, StringEncoding::Raw);
        for (envelope, encoding, value) in [
            (&raw_int, StringEncoding::Raw, b"12".to_vec()),
            (&float, StringEncoding::NotInt, b"3".to_vec()),
            (&big, StringEncoding::Raw, b"xyz".repeat(500)),
        ] {
            assert_eq!(string_encoding(envelope), encoding);
            let decoded = decode(envelope, &DictionaryMap::default()).expect("decodes");
            assert_eq!((decoded.0, decoded.1.to_vec()), (ValueKind::String, value.clone()));
            let shared = decode_shared(&Bytes::copy_from_slice(envelope), &DictionaryMap::default()).expect("decodes");
            assert_eq!(shared.1.to_vec(), value);
            assert_eq!(value_len(envelope), Ok(value.len()));
        }
        assert_eq!(StringEncoding::Raw.name(b"12"), "raw");
        assert_eq!(StringEncoding::NotInt.name(b"3"), "embstr");
        assert_eq!(StringEncoding::NotInt.name(&[b'1'; 45]), "raw");
        assert_eq!(StringEncoding::Content.name(b"12"), "int");
        assert_eq!(StringEncoding::Content.name(b"012"), "embstr");
        // Unmarked envelopes (everything written before the marks) read as before.
        assert_eq!(string_encoding(b"\x00\x00hi"), StringEncoding::Content);
        // Only strings carry a mark.
        let mut hash = encode(ValueKind::Hash, b"12", CompressionPolicy::default());
        mark_string(&mut hash, StringEncoding::Raw);
        assert!(decode(&hash, &DictionaryMap::default()).is_err());
    }

    #[test]
    fn integers_only_when_canonical() {
        for text in ["0", "-1", "9223372036854775807", "-9223372036854775808"] {
            assert_eq!(roundtrip(ValueKind::String, text.as_bytes())[1], CODEC_INT);
        }
        for text in ["01", "+1", "-0", " 1", "9223372036854775808", "1.0", ""] {
            assert_eq!(roundtrip(ValueKind::String, text.as_bytes())[1], CODEC_RAW, "{text}");
        }
    }

    #[test]
    fn compresses_when_it_pays() {
        let repetitive = b"abcdefgh".repeat(300);
        assert_eq!(roundtrip(ValueKind::String, &repetitive)[1], CODEC_ZSTD);
        let random: Vec<u8> = (0..200u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        roundtrip(ValueKind::String, &random);
    }

    #[test]
    fn every_truncation_is_rejected_or_shorter() {
        let envelope = encode(ValueKind::String, &b"xyz".repeat(500), CompressionPolicy::default());
        for len in 0..envelope.len() {
            // A truncated zstd or integer envelope must fail; a raw one decodes to a shorter value.
            match decode(&envelope[..len], &DictionaryMap::default()) {
                Ok((_, value)) => panic!("truncation to {len} decoded {} bytes", value.len()),
                Err(EnvelopeError::Malformed(_)) => {}
                Err(other) => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn dictionary_codec_roundtrip_and_truncations() {
        let samples: Vec<Vec<u8>> = (0..1000)
            .map(|i| format!("{{\"id\":{i},\"kind\":\"click\",\"page\":\"/home/{}\",\"ok\":true}}", i % 7).into_bytes())
            .collect();
        let dict = zstd::dict::from_samples(&samples, 2048).expect("trains");
        let map = DictionaryMap::default();
        map.insert(300, b"ev", super::super::dictionary::normalize(dict)).expect("prepares");
        let value = br#"{"id":4242,"kind":"click","page":"/home/3","ok":true}"#;
        let prepared = map.get(300).expect("installed");
        let envelope = encode_with_dictionary(ValueKind::Hash, value, &prepared).expect("pays");
        // kind, codec 3, varint 300 (2 bytes), varint length, frame without its magic.
        assert_eq!(&envelope[..5], &[1, CODEC_ZSTD_DICT, 0xac, 0x02, value.len() as u8]);
        assert_eq!(dictionary_id(&envelope), Some(300));
        assert_eq!(value_len(&envelope), Ok(value.len()));
        assert_eq!(decode(&envelope, &map).map(|(k, v)| (k, v.to_vec())), Ok((ValueKind::Hash, value.to_vec())));
        assert_eq!(decode(&envelope, &DictionaryMap::default()), Err(EnvelopeError::DictMissing(300)));
        for len in 2..envelope.len() {
            assert!(decode(&envelope[..len], &map).is_err(), "truncation {len}");
        }
        // Integers keep their own encoding.
        assert_eq!(encode_with_dictionary(ValueKind::String, b"12345678901234567", &prepared), None);
        // The envelope is allocated at its exact size (the memtable keeps it as a `Box<[u8]>`).
        assert_eq!(envelope.capacity(), envelope.len());
    }

    #[test]
    fn varint_len_is_what_put_varint_writes() {
        for value in [0, 1, 127, 128, 300, 16_383, 16_384, u64::from(u32::MAX), u64::MAX >> 1, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(varint_len(value), out.len(), "{value}");
        }
    }

    #[test]
    fn unknown_dictionary_is_reported() {
        let mut envelope = encode(ValueKind::String, &b"xyz".repeat(500), CompressionPolicy::default());
        envelope[2] = 9;
        assert_eq!(decode(&envelope, &DictionaryMap::default()), Err(EnvelopeError::DictMissing(9)));
    }
}
