//! What every engine file shares: the 16-byte file header (magic, format version, flags, header CRC), CRC32
//! helpers, and a bounds-checked little-endian reader that decoders use so that hostile bytes can never
//! panic. Layout: docs/format.md §"File header".

use std::path::Path;

use super::error::{Error, Result};

/// Length of the header every engine file starts with.
pub const FILE_HEADER_LEN: usize = 16;

/// The format version this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;

/// Magic of the data-directory metadata file `velo.meta`.
pub const MAGIC_DIR_META: &[u8; 4] = b"VDIR";
/// Magic of a slot's metadata file `slot-N/meta`.
pub const MAGIC_SLOT_META: &[u8; 4] = b"VSMT";
/// Magic of a WAL file.
pub const MAGIC_WAL: &[u8; 4] = b"VWAL";
/// Magic of a key-bucket page file (`buckets` and `overflow`).
pub const MAGIC_BUCKETS: &[u8; 4] = b"VKBK";
/// Magic of a chunk file of segments.
pub const MAGIC_CHUNK: &[u8; 4] = b"VSEG";
/// Magic of a big-value file.
pub const MAGIC_BIG_VALUE: &[u8; 4] = b"VBIG";
/// Magic of the double-write batch file.
pub const MAGIC_DOUBLE_WRITE: &[u8; 4] = b"VDWB";

/// CRC32 (IEEE, hardware-accelerated by crc32fast) of `bytes`.
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

/// Encodes a file header: magic, version, flags, two reserved bytes, CRC32 of the first 8 bytes, and four
/// reserved bytes.
pub fn file_header(magic: &[u8; 4], flags: u8) -> [u8; FILE_HEADER_LEN] {
    file_header_version(magic, FORMAT_VERSION, flags)
}

/// [`file_header`] with another format version (the WAL's, `wal::WAL_VERSION`).
pub fn file_header_version(magic: &[u8; 4], version: u8, flags: u8) -> [u8; FILE_HEADER_LEN] {
    let mut header = [0u8; FILE_HEADER_LEN];
    header[0..4].copy_from_slice(magic);
    header[4] = version;
    header[5] = flags;
    let crc = crc32(&header[0..8]);
    header[8..12].copy_from_slice(&crc.to_le_bytes());
    header
}

/// Checks a file header and returns its flags byte.
pub fn check_file_header(bytes: &[u8], magic: &'static [u8; 4], file: &Path) -> Result<u8> {
    check_file_header_versions(bytes, magic, &[FORMAT_VERSION], file)
}

/// [`check_file_header`] accepting any of `versions`.
pub fn check_file_header_versions(bytes: &[u8], magic: &'static [u8; 4], versions: &[u8], file: &Path) -> Result<u8> {
    let expected = std::str::from_utf8(magic).unwrap_or("?");
    if bytes.len() < FILE_HEADER_LEN {
        return Err(Error::corrupt(
            file,
            0,
            format!("file header truncated ({} of {FILE_HEADER_LEN} bytes)", bytes.len()),
        ));
    }
    if &bytes[0..4] != magic {
        return Err(Error::BadMagic { file: file.to_path_buf(), found: bytes[0..4].to_vec(), expected });
    }
    let stored = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    let actual = crc32(&bytes[0..8]);
    if stored != actual {
        return Err(Error::ChecksumMismatch { file: file.to_path_buf(), offset: 0, expected: stored, actual });
    }
    if bytes[6..8] != [0, 0] || bytes[12..16] != [0, 0, 0, 0] {
        return Err(Error::corrupt(file, 6, "reserved header bytes are not zero"));
    }
    if !versions.contains(&bytes[4]) {
        return Err(Error::UnsupportedVersion { file: file.to_path_buf(), found: bytes[4] });
    }
    Ok(bytes[5])
}

/// Appends the CRC32 of everything after the file header: the trailer of every file written whole
/// (metadata, dictionaries, big values, the bulk-load commit; docs/format.md).
pub fn seal(mut bytes: Vec<u8>) -> Vec<u8> {
    let crc = crc32(&bytes[FILE_HEADER_LEN..]);
    bytes.put_u32(crc);
    bytes
}

/// Checks a file written by [`seal`]: its header (`magic`), at least `min_body` bytes between the header
/// and the CRC (else "`what` truncated"), and the CRC. Returns the body.
pub fn unseal<'a>(
    bytes: &'a [u8],
    magic: &'static [u8; 4],
    min_body: usize,
    what: &str,
    file: &Path,
) -> Result<&'a [u8]> {
    check_file_header(bytes, magic, file)?;
    if bytes.len() < FILE_HEADER_LEN + min_body + 4 {
        return Err(Error::corrupt(file, bytes.len() as u64, format!("{what} truncated")));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    let expected = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    let actual = crc32(&body[FILE_HEADER_LEN..]);
    if expected != actual {
        return Err(Error::ChecksumMismatch {
            file: file.to_path_buf(),
            offset: FILE_HEADER_LEN as u64,
            expected,
            actual,
        });
    }
    Ok(&body[FILE_HEADER_LEN..])
}

/// A little-endian cursor over a byte slice; every read returns `None` past the end instead of panicking.
#[derive(Debug, Clone)]
pub struct ByteReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> ByteReader<'a> {
    /// A reader at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }
    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }
    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }
    /// The next `len` bytes.
    pub fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(len)?;
        let slice = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(slice)
    }
    /// The next fixed-size array.
    pub fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N).and_then(|slice| slice.try_into().ok())
    }
    /// The next byte.
    pub fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|[byte]| byte)
    }
    /// The next little-endian u16.
    pub fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_le_bytes)
    }
    /// The next little-endian u32.
    pub fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }
    /// The next little-endian u64.
    pub fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_le_bytes)
    }
}

/// Appends little-endian integers to a buffer.
pub trait PutLe {
    /// Appends a u16.
    fn put_u16(&mut self, value: u16);
    /// Appends a u32.
    fn put_u32(&mut self, value: u32);
    /// Appends a u64.
    fn put_u64(&mut self, value: u64);
}

impl PutLe for Vec<u8> {
    fn put_u16(&mut self, value: u16) {
        self.extend_from_slice(&value.to_le_bytes());
    }
    fn put_u32(&mut self, value: u32) {
        self.extend_from_slice(&value.to_le_bytes());
    }
    fn put_u64(&mut self, value: u64) {
        self.extend_from_slice(&value.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_golden_bytes() {
        // docs/format.md §"File header" shows these bytes.
        let header = file_header(MAGIC_WAL, 0);
        let crc = crc32(b"VWAL\x01\x00\x00\x00").to_le_bytes();
        let mut expected = b"VWAL\x01\x00\x00\x00".to_vec();
        expected.extend_from_slice(&crc);
        expected.extend_from_slice(&[0; 4]);
        assert_eq!(header.to_vec(), expected);
        assert_eq!(check_file_header(&header, MAGIC_WAL, Path::new("x")).ok(), Some(0));
    }

    #[test]
    fn header_rejects_every_flip_and_truncation() {
        let header = file_header(MAGIC_CHUNK, 0);
        for len in 0..FILE_HEADER_LEN {
            assert!(check_file_header(&header[..len], MAGIC_CHUNK, Path::new("x")).is_err());
        }
        for index in 0..FILE_HEADER_LEN {
            let mut bad = header;
            bad[index] ^= 0x40;
            assert!(check_file_header(&bad, MAGIC_CHUNK, Path::new("x")).is_err(), "flip at {index}");
        }
    }
}
