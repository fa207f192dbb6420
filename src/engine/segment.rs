//! Chunk segments and big values: values too large to sit inline in a bucket cell are packed as records
//! into segments (about 4 KiB of payload, zstd-compressed as a whole when that pays), appended to chunk
//! files; values too large for a segment get a file of their own. Segments are written only by a
//! checkpoint, before the pages that point at them, and are immutable afterwards; space is reclaimed by
//! compacting whole chunk files. Reads go through a byte-bounded cache of decoded segment payloads.
//! Layout: docs/format.md §"Chunk file", §"Segment", §"Big-value file".

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::cache::ByteLru;
use super::dictionary::{DictionaryMap, Prepared};
use super::error::{Error, Result};
use super::format::{self, ByteReader, PutLe, FILE_HEADER_LEN};
use super::io::{FileHandle, FileSystem};
use super::page::SegmentLocation;

/// Bytes of a segment header.
pub const SEGMENT_HEADER_LEN: usize = 16;
/// Bytes of a record header inside a segment payload.
pub const RECORD_HEADER_LEN: usize = 16;
/// A chunk file stops taking segments past this size.
pub const CHUNK_FILE_MAX: u64 = 16 << 20;

const SEGMENT_FLAG_ZSTD: u8 = 1;
/// With [`SEGMENT_FLAG_ZSTD`]: the stored bytes are a trained dictionary's id (u32) and then a zstd frame
/// compressed with that dictionary (docs/format.md §"Segment").
const SEGMENT_FLAG_DICT: u8 = 2;
/// Bytes of the dictionary id that starts the stored bytes of a dictionary-compressed segment.
const SEGMENT_DICT_ID_LEN: usize = 4;

/// The file name of a chunk file.
pub fn chunk_file_name(id: u32) -> String {
    format!("chunk-{id:08}.dat")
}

/// The file name of a big-value file.
pub fn big_file_name(id: u64) -> String {
    format!("big-{id:016x}.val")
}

/// The id of a big-value file from its name.
pub fn parse_big_file_name(name: &str) -> Option<u64> {
    u64::from_str_radix(name.strip_prefix("big-")?.strip_suffix(".val")?, 16).ok()
}

/// The id of a chunk file from its name.
pub fn parse_chunk_file_name(name: &str) -> Option<u32> {
    name.strip_prefix("chunk-")?.strip_suffix(".dat")?.parse().ok()
}

/// One record of a segment payload, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// Sequence of the write.
    pub seq: u64,
    /// Database number.
    pub db: u16,
    /// The key.
    pub key: &'a [u8],
    /// The value envelope.
    pub envelope: &'a [u8],
}

/// Encoded size of a record.
pub fn record_len(key_len: usize, envelope_len: usize) -> usize {
    RECORD_HEADER_LEN + key_len + envelope_len
}

pub(crate) fn encode_record(seq: u64, db: u16, key: &[u8], envelope: &[u8], out: &mut Vec<u8>) {
    out.put_u64(seq);
    out.put_u16(db);
    out.put_u16(key.len() as u16);
    out.put_u32(envelope.len() as u32);
    out.extend_from_slice(key);
    out.extend_from_slice(envelope);
}

/// Decodes the record at `offset` of a decoded payload.
pub fn record_at(payload: &[u8], offset: usize) -> Option<RecordRef<'_>> {
    let mut reader = ByteReader::new(payload.get(offset..)?);
    let seq = reader.u64()?;
    let db = reader.u16()?;
    let key_len = reader.u16()? as usize;
    let envelope_len = reader.u32()? as usize;
    let key = reader.take(key_len)?;
    let envelope = reader.take(envelope_len)?;
    Some(RecordRef { seq, db, key, envelope })
}

/// Every record of a decoded payload with its offset; `Err(offset)` where the payload stops making sense.
pub fn records(payload: &[u8], count: u16) -> std::result::Result<Vec<(usize, RecordRef<'_>)>, usize> {
    let mut out = Vec::with_capacity(count as usize);
    let mut offset = 0;
    for _ in 0..count {
        let record = record_at(payload, offset).ok_or(offset)?;
        out.push((offset, record));
        offset += record_len(record.key.len(), record.envelope.len());
    }
    if offset != payload.len() {
        return Err(offset);
    }
    Ok(out)
}

/// Checks that a payload holds exactly `count` well-formed records, without allocating; `Err(offset)` where
/// it stops making sense.
fn check_records(payload: &[u8], count: u16) -> std::result::Result<(), usize> {
    let mut offset = 0;
    for _ in 0..count {
        let record = record_at(payload, offset).ok_or(offset)?;
        offset += record_len(record.key.len(), record.envelope.len());
    }
    if offset != payload.len() {
        return Err(offset);
    }
    Ok(())
}

/// A decoded segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Number of records.
    pub record_count: u16,
    /// True if stored zstd-compressed.
    pub compressed: bool,
    /// The trained dictionary the payload is compressed with, if any.
    pub dictionary: Option<u32>,
    /// Stored (possibly compressed) length of the payload.
    pub stored_len: u32,
    /// The decompressed payload.
    pub payload: Vec<u8>,
}

impl Segment {
    /// Bytes the segment occupies in its file.
    pub fn encoded_len(&self) -> usize {
        SEGMENT_HEADER_LEN + self.stored_len as usize
    }
}

/// Encodes a segment from a payload of `record_count` records, compressing it when that pays.
pub fn encode_segment(payload: &[u8], record_count: u16, zstd_level: Option<i32>) -> Vec<u8> {
    let compressed = zstd_level
        .and_then(|level| super::envelope::compress(payload, level))
        .filter(|compressed| compressed.len() + 64 < payload.len());
    match &compressed {
        Some(bytes) => frame_segment(SEGMENT_FLAG_ZSTD, None, bytes, payload.len(), record_count),
        None => frame_segment(0, None, payload, payload.len(), record_count),
    }
}

/// Encodes a segment whose payload is compressed with a trained dictionary (flags 3), when that saves
/// more than 64 bytes; else as [`encode_segment`] at `zstd_level`.
pub fn encode_segment_with_dictionary(
    payload: &[u8],
    record_count: u16,
    dict: &Prepared,
    zstd_level: Option<i32>,
) -> Vec<u8> {
    let mut frame = Vec::new();
    if super::envelope::compress_frame_with_dictionary(payload, dict, &mut frame)
        && frame.len() + SEGMENT_DICT_ID_LEN + 64 < payload.len()
    {
        return frame_segment(
            SEGMENT_FLAG_ZSTD | SEGMENT_FLAG_DICT,
            Some(dict.id),
            &frame,
            payload.len(),
            record_count,
        );
    }
    encode_segment(payload, record_count, zstd_level)
}

/// The bytes of a segment: header, the dictionary id when there is one, the stored payload; the CRC
/// covers everything after itself.
fn frame_segment(flags: u8, dict: Option<u32>, stored: &[u8], raw_len: usize, record_count: u16) -> Vec<u8> {
    let stored_len = stored.len() + if dict.is_some() { SEGMENT_DICT_ID_LEN } else { 0 };
    let mut out = Vec::with_capacity(SEGMENT_HEADER_LEN + stored_len);
    out.put_u32(0);
    out.push(flags);
    out.push(0);
    out.put_u16(record_count);
    out.put_u32(raw_len as u32);
    out.put_u32(stored_len as u32);
    if let Some(id) = dict {
        out.put_u32(id);
    }
    out.extend_from_slice(stored);
    let crc = format::crc32(&out[4..]);
    out[0..4].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes the segment at the start of `bytes` (read from `file` at `offset`), verifying its CRC; a
/// segment compressed with a trained dictionary needs `dictionaries` to hold it ([`Error::DictMissing`]
/// otherwise). `Ok(None)` means `bytes` is too short to hold it (read more).
pub fn decode_segment(
    bytes: &[u8],
    file: &Path,
    offset: u64,
    dictionaries: Option<&DictionaryMap>,
) -> Result<Option<Segment>> {
    let mut payload = Vec::new();
    Ok(decode_segment_into(bytes, file, offset, &mut payload, dictionaries)?.map(|header| Segment {
        record_count: header.record_count,
        compressed: header.compressed,
        dictionary: header.dictionary,
        stored_len: header.stored_len,
        payload,
    }))
}

/// A segment's header fields (see [`Segment`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Number of records.
    pub record_count: u16,
    /// True if stored zstd-compressed.
    pub compressed: bool,
    /// The trained dictionary the payload is compressed with, if any.
    pub dictionary: Option<u32>,
    /// Stored (possibly compressed) length of the payload (with the dictionary id, if any).
    pub stored_len: u32,
    /// Decompressed length of the payload.
    pub raw_len: u32,
}

impl SegmentHeader {
    /// Bytes the segment occupies in its file.
    pub fn encoded_len(&self) -> usize {
        SEGMENT_HEADER_LEN + self.stored_len as usize
    }
}

/// Verifies the segment at the start of `bytes` (header and CRC over the stored bytes) without
/// decompressing it. `Ok(None)`: `bytes` is too short to hold it.
pub fn verify_segment(bytes: &[u8], file: &Path, offset: u64) -> Result<Option<SegmentHeader>> {
    let mut reader = ByteReader::new(bytes);
    let (Some(expected), Some(flags), Some(_), Some(record_count), Some(raw_len), Some(stored_len)) =
        (reader.u32(), reader.u8(), reader.u8(), reader.u16(), reader.u32(), reader.u32())
    else {
        return Ok(None);
    };
    let known = SEGMENT_FLAG_ZSTD | SEGMENT_FLAG_DICT;
    let dict_flags_bad = flags & SEGMENT_FLAG_DICT != 0
        && (flags & SEGMENT_FLAG_ZSTD == 0 || (stored_len as usize) < SEGMENT_DICT_ID_LEN);
    if flags & !known != 0 || dict_flags_bad || raw_len as usize > (64 << 20) || stored_len as usize > (64 << 20) {
        return Err(Error::corrupt(
            file,
            offset,
            format!("segment header is impossible (flags {flags}, lengths {raw_len}/{stored_len})"),
        ));
    }
    if reader.remaining() < stored_len as usize {
        return Ok(None);
    }
    let actual = format::crc32(&bytes[4..SEGMENT_HEADER_LEN + stored_len as usize]);
    if expected != actual {
        return Err(Error::ChecksumMismatch { file: file.to_path_buf(), offset, expected, actual });
    }
    let dictionary = (flags & SEGMENT_FLAG_DICT != 0).then(|| {
        let at = SEGMENT_HEADER_LEN;
        u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
    });
    Ok(Some(SegmentHeader {
        record_count,
        compressed: flags & SEGMENT_FLAG_ZSTD != 0,
        dictionary,
        stored_len,
        raw_len,
    }))
}

/// [`decode_segment`] into a caller's buffer (reused across segments by scans of whole files): the
/// payload, decompressed, lands in `payload`.
pub fn decode_segment_into(
    bytes: &[u8],
    file: &Path,
    offset: u64,
    payload: &mut Vec<u8>,
    dictionaries: Option<&DictionaryMap>,
) -> Result<Option<SegmentHeader>> {
    let Some(header) = verify_segment(bytes, file, offset)? else {
        return Ok(None);
    };
    let stored = &bytes[SEGMENT_HEADER_LEN..header.encoded_len()];
    let raw_len = header.raw_len;
    payload.clear();
    if let Some(id) = header.dictionary {
        let dict = dictionaries.and_then(|map| map.get(id)).ok_or(Error::DictMissing(id))?;
        super::envelope::decompress_frame_with_dictionary(
            &stored[SEGMENT_DICT_ID_LEN..],
            raw_len as usize,
            &dict,
            payload,
        )
        .map_err(|e| Error::corrupt(file, offset, format!("segment does not decompress with dictionary {id}: {e}")))?;
    } else if header.compressed {
        super::envelope::decompress_into(stored, raw_len as usize, payload)
            .map_err(|e| Error::corrupt(file, offset, format!("segment does not decompress: {e}")))?;
    } else {
        payload.extend_from_slice(stored);
    }
    if payload.len() != raw_len as usize {
        return Err(Error::corrupt(
            file,
            offset,
            format!("segment payload is {} bytes, header says {raw_len}", payload.len()),
        ));
    }
    if let Err(at) = check_records(payload, header.record_count) {
        return Err(Error::corrupt(file, offset, format!("segment record at payload offset {at} is malformed")));
    }
    Ok(Some(header))
}

/// Encodes a big-value file.
pub fn encode_big_value(seq: u64, db: u16, key: &[u8], envelope: &[u8]) -> Vec<u8> {
    let mut out = format::file_header(format::MAGIC_BIG_VALUE, 0).to_vec();
    encode_record(seq, db, key, envelope, &mut out);
    format::seal(out)
}

/// Decodes a big-value file: sequence, database, key and envelope.
pub fn decode_big_value(bytes: &[u8], file: &Path) -> Result<(u64, u16, Vec<u8>, Vec<u8>)> {
    let body = format::unseal(bytes, format::MAGIC_BIG_VALUE, RECORD_HEADER_LEN, "big value", file)?;
    let record = record_at(body, 0)
        .filter(|r| record_len(r.key.len(), r.envelope.len()) == body.len())
        .ok_or_else(|| Error::corrupt(file, FILE_HEADER_LEN as u64, "big value record malformed"))?;
    Ok((record.seq, record.db, record.key.to_vec(), record.envelope.to_vec()))
}

/// The chunk files and big values of a slot, with the value cache.
pub struct ChunkStore {
    dir: PathBuf,
    fs: Arc<dyn FileSystem>,
    read_only: bool,
    files: HashMap<u32, Arc<dyn FileHandle>>,
    /// Read-only maps of chunk files (real file systems only): a cold read then costs no system call.
    maps: HashMap<u32, memmap2::Mmap>,
    cache: ByteLru<(u32, u32), Arc<Vec<u8>>>,
    /// Payload buffers of evicted cache entries, reused by the next misses: a cold read otherwise
    /// allocates a fresh buffer for every segment it decompresses (and the allocator keeps returning pages
    /// to the system and faulting new, zeroed ones in).
    spare: Vec<Vec<u8>>,
    max_segment_len: usize,
    /// The trained dictionaries, for segments compressed with one.
    dictionaries: Option<Arc<DictionaryMap>>,
}

/// A cached segment payload as the owner of the [`bytes::Bytes`] values sliced from it.
struct SharedPayload(Arc<Vec<u8>>);

impl AsRef<[u8]> for SharedPayload {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Evicted payload buffers kept for reuse per slot.
const SPARE_PAYLOADS: usize = 4;

impl ChunkStore {
    /// A store over the slot directory `dir`.
    pub fn new(fs: Arc<dyn FileSystem>, dir: &Path, read_only: bool, cache_bytes: usize, segment_size: usize) -> Self {
        Self {
            dir: dir.to_path_buf(),
            fs,
            read_only,
            files: HashMap::new(),
            maps: HashMap::new(),
            cache: ByteLru::new(cache_bytes),
            spare: Vec::new(),
            max_segment_len: segment_size + SEGMENT_HEADER_LEN + 256,
            dictionaries: None,
        }
    }

    /// Gives the store the engine's dictionaries: segments compressed with a trained dictionary are
    /// decoded with them (without, reading one fails with [`Error::DictMissing`]).
    pub fn set_dictionaries(&mut self, dictionaries: Arc<DictionaryMap>) {
        self.dictionaries = Some(dictionaries);
    }

    /// The trained dictionary the segment at `offset` of chunk file `id` is compressed with, from its
    /// header (the segment is not verified or decompressed).
    pub fn segment_dictionary(&mut self, id: u32, offset: u32, file_len: u64) -> Result<Option<u32>> {
        let path = self.chunk_path(id);
        let file = self.chunk_file(id, false)?;
        let mut head = [0u8; SEGMENT_HEADER_LEN + SEGMENT_DICT_ID_LEN];
        if (offset as u64 + head.len() as u64) > file_len {
            return Ok(None);
        }
        file.read_exact_at(&mut head, offset as u64).map_err(|e| Error::io("read", &path, e))?;
        Ok((head[4] & SEGMENT_FLAG_DICT != 0).then(|| u32::from_le_bytes([head[16], head[17], head[18], head[19]])))
    }

    /// [`ChunkStore::read_segment`] for chunk compaction, with the segment's encoded length: `None` for a
    /// segment (CRC verified) compressed with a dictionary that is no longer installed. Dictionary
    /// compaction removes a dictionary only once no live value lies in a segment compressed with it
    /// (`engine::recode`), so such a segment holds dead records only.
    pub fn read_segment_for_compaction(
        &mut self,
        id: u32,
        offset: u32,
        file_len: u64,
    ) -> Result<(u64, Option<Segment>)> {
        match self.read_segment(id, offset, file_len) {
            Ok(segment) => Ok((segment.encoded_len() as u64, Some(segment))),
            Err(Error::DictMissing(dict)) => {
                let path = self.chunk_path(id);
                let file = self.chunk_file(id, false)?;
                let mut head = [0u8; SEGMENT_HEADER_LEN];
                let available = file_len.saturating_sub(offset as u64);
                if available < head.len() as u64 {
                    return Err(Error::corrupt(&path, offset as u64, "segment header runs past the end of the file"));
                }
                file.read_exact_at(&mut head, offset as u64).map_err(|e| Error::io("read", &path, e))?;
                let stored_len = u32::from_le_bytes([head[12], head[13], head[14], head[15]]) as u64;
                let mut bytes = vec![0u8; (SEGMENT_HEADER_LEN as u64 + stored_len).min(available) as usize];
                file.read_exact_at(&mut bytes, offset as u64).map_err(|e| Error::io("read", &path, e))?;
                match verify_segment(&bytes, &path, offset as u64)? {
                    Some(header) if header.dictionary == Some(dict) => Ok((header.encoded_len() as u64, None)),
                    _ => Err(Error::corrupt(&path, offset as u64, "segment runs past the end of the file")),
                }
            }
            Err(error) => Err(error),
        }
    }

    /// The path of a chunk file.
    pub fn chunk_path(&self, id: u32) -> PathBuf {
        self.dir.join(chunk_file_name(id))
    }

    /// The path of a big-value file.
    pub fn big_path(&self, id: u64) -> PathBuf {
        self.dir.join(big_file_name(id))
    }

    /// The open handle of a chunk file (creating it with its header if `create`).
    pub fn chunk_file(&mut self, id: u32, create: bool) -> Result<Arc<dyn FileHandle>> {
        if let Some(file) = self.files.get(&id) {
            return Ok(file.clone());
        }
        let path = self.chunk_path(id);
        let file = if self.read_only { self.fs.open_read(&path) } else { self.fs.open(&path, create) }
            .map_err(|e| Error::io("open", &path, e))?;
        if create && file.len().map_err(|e| Error::io("stat", &path, e))? < FILE_HEADER_LEN as u64 {
            file.write_all_at(&format::file_header(format::MAGIC_CHUNK, 0), 0)
                .map_err(|e| Error::io("write", &path, e))?;
        } else {
            let mut header = [0u8; FILE_HEADER_LEN];
            file.read_exact_at(&mut header, 0).map_err(|e| Error::io("read", &path, e))?;
            format::check_file_header(&header, format::MAGIC_CHUNK, &path)?;
        }
        self.files.insert(id, file.clone());
        Ok(file)
    }

    /// Forgets an open handle (the file is being deleted).
    pub fn forget(&mut self, id: u32) {
        self.files.remove(&id);
        self.maps.remove(&id);
    }

    /// Reads and decodes the segment at `offset` of chunk file `id`, whose committed length is `file_len`.
    pub fn read_segment(&mut self, id: u32, offset: u32, file_len: u64) -> Result<Segment> {
        let mut payload = Vec::new();
        let header = self.read_segment_into(id, offset, file_len, &mut payload)?;
        Ok(Segment {
            record_count: header.record_count,
            compressed: header.compressed,
            dictionary: header.dictionary,
            stored_len: header.stored_len,
            payload,
        })
    }

    /// [`ChunkStore::read_segment`] into a given payload buffer (cleared first), reusing its allocation.
    fn read_segment_into(
        &mut self,
        id: u32,
        offset: u32,
        file_len: u64,
        payload: &mut Vec<u8>,
    ) -> Result<SegmentHeader> {
        if let Some(header) = self.read_segment_mapped(id, offset, file_len, payload)? {
            return Ok(header);
        }
        let path = self.chunk_path(id);
        let file = self.chunk_file(id, false)?;
        let available = file_len.saturating_sub(offset as u64) as usize;
        let mut want = self.max_segment_len.min(available);
        loop {
            let mut bytes = vec![0u8; want];
            file.read_exact_at(&mut bytes, offset as u64).map_err(|e| Error::io("read", &path, e))?;
            match decode_segment_into(&bytes, &path, offset as u64, payload, self.dictionaries.as_deref())? {
                Some(header) => return Ok(header),
                None if want < available => want = available.min(want * 4),
                None => return Err(Error::corrupt(&path, offset as u64, "segment runs past the end of the file")),
            }
        }
    }

    /// Decodes a segment straight from the file's map, (re)mapping the file when it has grown past the map.
    /// `Ok(None)` when the backend cannot map.
    fn read_segment_mapped(
        &mut self,
        id: u32,
        offset: u32,
        file_len: u64,
        payload: &mut Vec<u8>,
    ) -> Result<Option<SegmentHeader>> {
        let mapped_len = self.maps.get(&id).map_or(0, |map| map.len() as u64);
        if mapped_len < file_len {
            let file = self.chunk_file(id, false)?;
            match file.map().map_err(|e| Error::io("mmap", self.chunk_path(id), e))? {
                Some(map) if map.len() as u64 >= file_len => {
                    self.maps.insert(id, map);
                }
                _ => return Ok(None),
            }
        }
        let Some(map) = self.maps.get(&id) else { return Ok(None) };
        let bytes = map.get(offset as usize..file_len as usize).unwrap_or_default();
        let dictionaries = self.dictionaries.as_deref();
        match decode_segment_into(bytes, Path::new(""), offset as u64, payload, dictionaries) {
            Ok(Some(header)) => Ok(Some(header)),
            Ok(None) => {
                Err(Error::corrupt(self.chunk_path(id), offset as u64, "segment runs past the end of the file"))
            }
            Err(error @ Error::DictMissing(_)) => Err(error),
            // Re-decode to name the file in the error.
            Err(_) => {
                decode_segment_into(bytes, &self.chunk_path(id), offset as u64, payload, dictionaries).map(|_| None)
            }
        }
    }

    /// The envelope of the record at `location`, checked against the key it must belong to.
    pub fn read_value(&mut self, location: SegmentLocation, file_len: u64, db: u16, key: &[u8]) -> Result<Vec<u8>> {
        let payload = self.payload(location, file_len)?;
        Ok(self.envelope_in(&payload, location, db, key)?.to_vec())
    }

    /// [`ChunkStore::read_value`] without copying: the envelope as a slice of the cached segment payload
    /// (which it keeps alive). The GET path; its reply then copies the value once, into the write buffer.
    pub fn read_value_shared(
        &mut self,
        location: SegmentLocation,
        file_len: u64,
        db: u16,
        key: &[u8],
    ) -> Result<bytes::Bytes> {
        let payload = self.payload(location, file_len)?;
        let envelope = self.envelope_in(&payload, location, db, key)?;
        let range = envelope.as_ptr() as usize - payload.as_ptr() as usize;
        let range = range..range + envelope.len();
        Ok(bytes::Bytes::from_owner(SharedPayload(payload)).slice(range))
    }

    /// The decompressed payload of the segment holding `location`, from the value cache or read (and
    /// cached).
    fn payload(&mut self, location: SegmentLocation, file_len: u64) -> Result<Arc<Vec<u8>>> {
        let cache_key = (location.file, location.segment_offset);
        if let Some(payload) = self.cache.get(&cache_key) {
            return Ok(payload);
        }
        let mut payload = self.spare.pop().unwrap_or_default();
        if let Err(error) = self.read_segment_into(location.file, location.segment_offset, file_len, &mut payload) {
            self.spare.push(payload);
            return Err(error);
        }
        let payload = Arc::new(payload);
        let spare = &mut self.spare;
        self.cache.insert_with_evicted(cache_key, payload.clone(), payload.len() + 64, |old| {
            // Only a buffer no reader holds, and not an outsized one.
            if let Ok(buffer) = Arc::try_unwrap(old) {
                if spare.len() < SPARE_PAYLOADS && buffer.capacity() <= 1 << 20 {
                    spare.push(buffer);
                }
            }
        });
        Ok(payload)
    }

    /// The decompressed payload of the segment at `offset` of chunk file `id` for a reader that takes
    /// every record it needs from it at once (a snapshot's scan): `Some` when the value cache holds it,
    /// else `None` with the payload read into `scratch`, not cached (the scan would only evict what other
    /// readers need for a segment it does not come back to).
    pub fn segment_payload_once(
        &mut self,
        id: u32,
        offset: u32,
        file_len: u64,
        scratch: &mut Vec<u8>,
    ) -> Result<Option<Arc<Vec<u8>>>> {
        if let Some(payload) = self.cache.get(&(id, offset)) {
            return Ok(Some(payload));
        }
        self.read_segment_into(id, offset, file_len, scratch)?;
        Ok(None)
    }

    /// The envelope of `(db, key)`'s record at `location` in its segment's payload, checked against the key.
    fn envelope_in<'a>(&self, payload: &'a [u8], location: SegmentLocation, db: u16, key: &[u8]) -> Result<&'a [u8]> {
        match record_at(payload, location.record_offset as usize) {
            Some(record)
                if record.db == db && record.key == key && record.envelope.len() == location.envelope_len as usize =>
            {
                Ok(record.envelope)
            }
            _ => Err(Error::corrupt(
                self.chunk_path(location.file),
                location.segment_offset as u64,
                format!(
                    "record at payload offset {} is not the value of key {:?}",
                    location.record_offset,
                    String::from_utf8_lossy(key)
                ),
            )),
        }
    }

    /// The envelope stored in big-value file `id`, checked against its key.
    pub fn read_big(&self, id: u64, db: u16, key: &[u8]) -> Result<Vec<u8>> {
        let path = self.big_path(id);
        let bytes = super::meta::read_whole(self.fs.as_ref(), &path)?;
        let (_, file_db, file_key, envelope) = decode_big_value(&bytes, &path)?;
        if file_db != db || file_key != key {
            return Err(Error::corrupt(&path, FILE_HEADER_LEN as u64, "big value belongs to another key"));
        }
        Ok(envelope)
    }

    /// Writes a big-value file and fsyncs it (the directory is synced by the checkpoint).
    pub fn write_big(&self, id: u64, db: u16, key: &[u8], envelope: &[u8]) -> Result<()> {
        let path = self.big_path(id);
        let file = self.fs.open(&path, true).map_err(|e| Error::io("create", &path, e))?;
        let bytes = encode_big_value(id, db, key, envelope);
        file.set_len(0).map_err(|e| Error::io("truncate", &path, e))?;
        file.write_all_at(&bytes, 0).map_err(|e| Error::io("write", &path, e))?;
        file.sync().map_err(|e| Error::io("fsync", &path, e))
    }

    /// Drops the cached payloads of a chunk file.
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
}

/// Packs records into segments appended to a chunk file during a checkpoint. Locations become known when
/// a segment is sealed; [`SegmentWriter::seal`] seals each one.
pub struct SegmentWriter {
    segment_size: usize,
    zstd_level: Option<i32>,
    payload: Vec<u8>,
    count: u16,
    pending: Vec<(usize, u32, u32)>,
    /// Record bytes of the current segment whose values are already compressed with a dictionary.
    dict_bytes: usize,
    /// Resolved locations, by the ticket `add` returned.
    pub locations: Vec<Option<SegmentLocation>>,
    /// The engine's dictionaries: segments of a family that has one are compressed with it.
    dictionaries: Option<Arc<DictionaryMap>>,
    /// The family rules when the writer was made.
    rules: super::family::FamilyRules,
    /// The last family looked up and its active dictionary (records come grouped by family).
    last_family: Option<(Vec<u8>, Option<Arc<Prepared>>)>,
    /// The dictionary the current segment is to be compressed with.
    dict: Option<Arc<Prepared>>,
}

/// A record as it goes into a segment ([`SegmentWriter::prepare`]): its envelope (a value compressed on its
/// own with a dictionary is stored raw in a segment compressed with one) and the segment's dictionary.
pub struct SegmentRecord<'e> {
    envelope: Cow<'e, [u8]>,
    dict: Option<Arc<Prepared>>,
}

impl SegmentRecord<'_> {
    /// The envelope the record carries.
    pub fn envelope(&self) -> &[u8] {
        &self.envelope
    }
}

/// A sealed segment ready to be appended.
pub struct SealedSegment {
    /// Encoded bytes.
    pub bytes: Vec<u8>,
    /// Raw record bytes it holds.
    pub record_bytes: u64,
}

impl SegmentWriter {
    /// A writer producing segments of about `segment_size` payload bytes.
    pub fn new(segment_size: usize, zstd_level: Option<i32>) -> Self {
        Self {
            segment_size,
            zstd_level,
            payload: Vec::new(),
            count: 0,
            pending: Vec::new(),
            dict_bytes: 0,
            locations: Vec::new(),
            dictionaries: None,
            rules: super::family::FamilyRules::default(),
            last_family: None,
            dict: None,
        }
    }

    /// Compresses the segments of each key family that has a trained dictionary with it (when segments are
    /// compressed at all): see [`SegmentWriter::prepare`].
    pub fn with_dictionaries(mut self, dictionaries: Arc<DictionaryMap>) -> Self {
        self.rules = dictionaries.rules();
        self.dictionaries = Some(dictionaries);
        self
    }

    /// The active dictionary of `key`'s family, looked up once per run of one family's records.
    fn dictionary_for(&mut self, key: &[u8]) -> Option<Arc<Prepared>> {
        self.zstd_level?;
        let map = self.dictionaries.as_ref()?;
        let family = self.rules.family_of(key);
        match &self.last_family {
            Some((last, dict)) if last[..] == *family => dict.clone(),
            _ => {
                let dict = map.active(family);
                self.last_family = Some((family.to_vec(), dict.clone()));
                dict
            }
        }
    }

    /// What `key`'s record with `envelope` becomes in these segments. When its family has an active
    /// dictionary, its segment is compressed with that dictionary, and a value compressed on its own with a
    /// dictionary (codec 3) goes in raw (unless its raw record would not fit a segment): compressed with its
    /// neighbours and the dictionary, record header and key included, it takes about a third less than on
    /// its own (docs/performance.md §"Trained dictionaries").
    pub fn prepare<'e>(&mut self, key: &[u8], envelope: &'e [u8]) -> SegmentRecord<'e> {
        let dict = self.dictionary_for(key);
        let mut record = SegmentRecord { envelope: Cow::Borrowed(envelope), dict };
        if record.dict.is_some() {
            if let Some(map) = &self.dictionaries {
                if let Some(raw) = super::envelope::undo_dictionary_codec(envelope, map) {
                    if self.fits(key.len(), raw.len()) {
                        record.envelope = Cow::Owned(raw);
                    }
                }
            }
        }
        record
    }

    /// True if adding `record` would overflow the current segment or needs another dictionary than its.
    pub fn must_seal_before_record(&self, key_len: usize, record: &SegmentRecord<'_>) -> bool {
        self.must_seal_before(key_len, record.envelope.len())
            || (self.count > 0 && self.dict.as_ref().map(|d| d.id) != record.dict.as_ref().map(|d| d.id))
    }

    /// Adds a prepared record; returns a ticket for its location (resolved at seal time).
    pub fn add_record(&mut self, seq: u64, db: u16, key: &[u8], record: SegmentRecord<'_>) -> usize {
        if self.count == 0 {
            self.dict = record.dict;
        }
        self.add(seq, db, key, &record.envelope)
    }

    /// Largest record a segment takes; larger values become big values.
    pub fn fits(&self, key_len: usize, envelope_len: usize) -> bool {
        record_len(key_len, envelope_len) <= self.segment_size
    }

    /// True if adding a record of this size would overflow the current segment.
    pub fn must_seal_before(&self, key_len: usize, envelope_len: usize) -> bool {
        self.count > 0
            && (self.payload.len() + record_len(key_len, envelope_len) > self.segment_size || self.count == u16::MAX)
    }

    /// Adds a record; returns a ticket for its location (resolved at seal time).
    pub fn add(&mut self, seq: u64, db: u16, key: &[u8], envelope: &[u8]) -> usize {
        let ticket = self.locations.len();
        self.locations.push(None);
        self.pending.push((ticket, self.payload.len() as u32, envelope.len() as u32));
        encode_record(seq, db, key, envelope, &mut self.payload);
        if super::envelope::codec(envelope) == Some(super::envelope::CODEC_ZSTD_DICT) {
            self.dict_bytes += record_len(key.len(), envelope.len());
        }
        self.count += 1;
        ticket
    }

    /// True if records wait to be sealed.
    pub fn has_pending(&self) -> bool {
        self.count > 0
    }

    /// Seals the current segment, to be appended to chunk file `file` at `offset`.
    pub fn seal(&mut self, file: u32, offset: u32) -> SealedSegment {
        // A segment mostly of dictionary-compressed values is stored uncompressed: compressing it again
        // gains little, and a cold read then decompresses only the value it wants.
        let level = if self.dict_bytes * 2 > self.payload.len() { None } else { self.zstd_level };
        let bytes = match self.dict.take() {
            Some(dict) if self.zstd_level.is_some() => {
                encode_segment_with_dictionary(&self.payload, self.count, &dict, level)
            }
            _ => encode_segment(&self.payload, self.count, level),
        };
        self.dict_bytes = 0;
        for (ticket, record_offset, envelope_len) in self.pending.drain(..) {
            self.locations[ticket] =
                Some(SegmentLocation { file, segment_offset: offset, record_offset, envelope_len });
        }
        let record_bytes = self.payload.len() as u64;
        self.payload.clear();
        self.count = 0;
        SealedSegment { bytes, record_bytes }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_roundtrip_compressed_and_plain() {
        for level in [None, Some(3)] {
            let mut writer = SegmentWriter::new(4096, level);
            let a = writer.add(1, 0, b"alpha", &b"x".repeat(300));
            let b = writer.add(2, 3, b"beta", b"\x00\x00short");
            let sealed = writer.seal(7, 16);
            let segment = decode_segment(&sealed.bytes, Path::new("c"), 16, None).expect("valid").expect("complete");
            assert_eq!(segment.compressed, level.is_some());
            let loc_a = writer.locations[a].expect("resolved");
            let loc_b = writer.locations[b].expect("resolved");
            let record = record_at(&segment.payload, loc_b.record_offset as usize).expect("record");
            assert_eq!((record.seq, record.db, record.key), (2, 3, &b"beta"[..]));
            assert_eq!(record_at(&segment.payload, loc_a.record_offset as usize).map(|r| r.key), Some(&b"alpha"[..]));
        }
    }

    #[test]
    fn segment_truncations_and_flips_are_caught() {
        let mut writer = SegmentWriter::new(4096, Some(3));
        writer.add(1, 0, b"alpha", &b"xy".repeat(300));
        let bytes = writer.seal(1, 16).bytes;
        for len in 0..bytes.len() {
            assert!(!matches!(decode_segment(&bytes[..len], Path::new("c"), 0, None), Ok(Some(_))), "truncation {len}");
        }
        for index in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[index] ^= 4;
            assert!(!matches!(decode_segment(&bad, Path::new("c"), 0, None), Ok(Some(_))), "flip {index}");
        }
    }

    /// A `user` family dictionary (normalized, as installed) in a map as id 5, and a value of the family.
    fn user_dictionary() -> Arc<DictionaryMap> {
        let samples: Vec<Vec<u8>> = (0..2000).map(user_value).collect();
        let dict = zstd::dict::from_samples(&samples, 4096).expect("trains");
        let map = DictionaryMap::default();
        map.insert(5, b"user", super::super::dictionary::normalize(dict)).expect("prepares");
        Arc::new(map)
    }

    fn user_value(i: usize) -> Vec<u8> {
        format!(
            r#"{{"id":{i},"name":"user {i}","email":"user{i}@example.com","plan":"{}","city":"{}","age":{},"tags":["a","b{}"]}}"#,
            ["free", "pro", "team"][i % 3],
            ["Lisbon", "Oslo", "Quito", "Perth"][i % 4],
            18 + i % 50,
            i % 9
        )
        .into_bytes()
    }

    /// Segments of a family with a dictionary are compressed with it (flags 3, the dictionary id before
    /// the frame); values compressed on their own with it go in raw; the segment is smaller than plain
    /// zstd's; reading needs the dictionary; every flip and truncation is caught.
    #[test]
    fn dictionary_segment_golden_header_roundtrip_and_corruption() {
        use super::super::envelope::{self, CompressionPolicy, ValueKind};
        let map = user_dictionary();
        let mut with_dict = SegmentWriter::new(4096, Some(3)).with_dictionaries(map.clone());
        let mut plain = SegmentWriter::new(4096, Some(3));
        let mut tickets = Vec::new();
        for i in 0..20 {
            let key = format!("user:{i}").into_bytes();
            let value = user_value(i + 5000);
            let envelope = map.encode_quiet(ValueKind::String, &key, &value, CompressionPolicy::default());
            assert_eq!(envelope[1], envelope::CODEC_ZSTD_DICT, "compressed with the dictionary on its own");
            let record = with_dict.prepare(&key, &envelope);
            assert_eq!(&record.envelope()[..2], &[0, 0], "goes in raw");
            assert!(!with_dict.must_seal_before_record(key.len(), &record));
            tickets.push((with_dict.add_record(i as u64 + 1, 0, &key, record), key, value));
            plain.add(
                i as u64 + 1,
                0,
                &format!("user:{i}").into_bytes(),
                &envelope::encode(ValueKind::String, &user_value(i + 5000), CompressionPolicy::default()),
            );
        }
        // A record of a family without a dictionary needs a segment of its own.
        let other = with_dict.prepare(b"event:1", b"\x00\x00{\"kind\":\"click\"}");
        assert!(with_dict.must_seal_before_record(7, &other));
        let bytes = with_dict.seal(1, 16).bytes;
        let plain = plain.seal(1, 16).bytes;
        assert!(bytes.len() < plain.len(), "{} bytes with the dictionary, {} without", bytes.len(), plain.len());
        // Golden header: CRC32 over bytes 4.., flags 3 (zstd, dictionary), reserved 0, 20 records, the raw
        // length, the stored length (dictionary id and frame), the dictionary id 5, then a zstd frame.
        assert_eq!(bytes[4..8], [3, 0, 20, 0]);
        let raw_len = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize;
        assert_eq!(u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes")) as usize, bytes.len() - 16);
        assert_eq!(bytes[16..20], [5, 0, 0, 0]);
        assert_eq!(bytes[20..24], [0x28, 0xb5, 0x2f, 0xfd]);
        assert_eq!(u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes")), format::crc32(&bytes[4..]));
        let segment = decode_segment(&bytes, Path::new("c"), 16, Some(&map)).expect("valid").expect("complete");
        assert_eq!((segment.dictionary, segment.compressed, segment.payload.len()), (Some(5), true, raw_len));
        for (ticket, key, value) in &tickets {
            let location = with_dict.locations[*ticket].expect("resolved");
            let record = record_at(&segment.payload, location.record_offset as usize).expect("record");
            assert_eq!(record.key, &key[..]);
            assert_eq!(record.envelope.len(), location.envelope_len as usize);
            assert_eq!(envelope::decode(record.envelope, &map).map(|(_, v)| v.to_vec()), Ok(value.clone()));
        }
        assert!(matches!(decode_segment(&bytes, Path::new("c"), 16, None), Err(Error::DictMissing(5))));
        let other_map = DictionaryMap::default();
        assert!(matches!(decode_segment(&bytes, Path::new("c"), 16, Some(&other_map)), Err(Error::DictMissing(5))));
        for len in 0..bytes.len() {
            assert!(
                !matches!(decode_segment(&bytes[..len], Path::new("c"), 0, Some(&map)), Ok(Some(_))),
                "truncation {len}"
            );
        }
        for index in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[index] ^= 4;
            assert!(!matches!(decode_segment(&bad, Path::new("c"), 0, Some(&map)), Ok(Some(_))), "flip {index}");
        }
        // The dictionary flag alone (without zstd's) is impossible.
        let mut bad = bytes.clone();
        bad[4] = 2;
        let crc = format::crc32(&bad[4..]);
        bad[0..4].copy_from_slice(&crc.to_le_bytes());
        assert!(decode_segment(&bad, Path::new("c"), 0, Some(&map)).is_err());
    }

    /// Chunk compaction steps over a segment whose dictionary was removed (it holds dead records only),
    /// after verifying its CRC; with the dictionary it reads the segment.
    #[test]
    fn compaction_read_skips_a_segment_of_a_removed_dictionary() {
        let map = user_dictionary();
        let mut writer = SegmentWriter::new(4096, Some(3)).with_dictionaries(map.clone());
        for i in 0..10 {
            let key = format!("user:{i}").into_bytes();
            let mut envelope = vec![0, 0];
            envelope.extend_from_slice(&user_value(i));
            let record = writer.prepare(&key, &envelope);
            writer.add_record(1, 0, &key, record);
        }
        let bytes = writer.seal(1, FILE_HEADER_LEN as u32).bytes;
        let dir = tempfile::tempdir().expect("tempdir");
        let fs: Arc<dyn FileSystem> = Arc::new(super::super::io::RealFs);
        let mut store = ChunkStore::new(fs, dir.path(), false, 0, 4096);
        let file = store.chunk_file(1, true).expect("create");
        file.write_all_at(&bytes, FILE_HEADER_LEN as u64).expect("write");
        let end = (FILE_HEADER_LEN + bytes.len()) as u64;
        store.set_dictionaries(Arc::new(DictionaryMap::default()));
        let (len, segment) = store.read_segment_for_compaction(1, FILE_HEADER_LEN as u32, end).expect("skipped");
        assert_eq!((len, segment.is_none()), (bytes.len() as u64, true));
        store.set_dictionaries(map);
        let (len, segment) = store.read_segment_for_compaction(1, FILE_HEADER_LEN as u32, end).expect("read");
        assert_eq!((len, segment.map(|s| s.record_count)), (bytes.len() as u64, Some(10)));
        // A damaged segment is still an error, dictionary or not.
        store.set_dictionaries(Arc::new(DictionaryMap::default()));
        let mut bad = bytes.clone();
        bad[30] ^= 1;
        file.write_all_at(&bad, FILE_HEADER_LEN as u64).expect("write");
        store.clear_cache();
        assert!(store.read_segment_for_compaction(1, FILE_HEADER_LEN as u32, end).is_err());
    }

    #[test]
    fn big_value_roundtrip_and_corruption() {
        let bytes = encode_big_value(9, 1, b"key", b"\x00\x00value");
        assert_eq!(
            decode_big_value(&bytes, Path::new("b")).ok(),
            Some((9, 1, b"key".to_vec(), b"\x00\x00value".to_vec()))
        );
        for len in 0..bytes.len() {
            assert!(decode_big_value(&bytes[..len], Path::new("b")).is_err());
        }
        for index in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[index] ^= 2;
            assert!(decode_big_value(&bad, Path::new("b")).is_err(), "flip {index}");
        }
        assert_eq!(parse_big_file_name(&big_file_name(0xabc)), Some(0xabc));
        assert_eq!(parse_chunk_file_name(&chunk_file_name(12)), Some(12));
    }
}
