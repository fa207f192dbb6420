//! The packed encodings Redis nests inside RDB strings: listpack (7.0), ziplist (3.2–6.2), intset and
//! zipmap (2.x). Readers validate every length against the blob (a damaged blob is an error with its
//! offset, never a panic); writers produce exactly what Redis 7.0 produces for listpacks and intsets.

use bytes::Bytes;

/// A packed blob is malformed: the offset inside it and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub usize, pub &'static str);

type Result<T> = std::result::Result<T, Malformed>;

/// One element of a listpack or ziplist: bytes, or an integer stored as such.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Elem {
    /// A byte string.
    Str(Bytes),
    /// An integer.
    Int(i64),
}

impl Elem {
    /// The element as Redis returns it: integers in decimal.
    pub fn into_bytes(self) -> Bytes {
        match self {
            Elem::Str(bytes) => bytes,
            Elem::Int(number) => Bytes::from(number.to_string()),
        }
    }

    /// The element as an integer, if it is one (or a string holding one).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Elem::Int(number) => Some(*number),
            Elem::Str(bytes) => canonical_int(bytes),
        }
    }
}

/// `value` as an integer when it is exactly the decimal form of one (Redis's `string2ll` round trip).
pub fn canonical_int(value: &[u8]) -> Option<i64> {
    crate::engine::envelope::canonical_int(value)
}

fn slice(blob: &[u8], at: usize, len: usize) -> Result<&[u8]> {
    at.checked_add(len).and_then(|end| blob.get(at..end)).ok_or(Malformed(at, "element runs past the end"))
}

fn le(bytes: &[u8]) -> u64 {
    bytes.iter().rev().fold(0u64, |acc, b| (acc << 8) | *b as u64)
}

/// Sign-extends the low `bits` bits of `raw`.
fn signed(raw: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((raw << shift) as i64) >> shift
}

// ---------------------------------------------------------------------------------------------------
// Listpack
// ---------------------------------------------------------------------------------------------------

/// Size of the backlen field that follows an entry of `len` bytes (encoding + data).
fn backlen_size(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..=16_382 => 2,
        16_383..=2_097_150 => 3,
        2_097_151..=268_435_454 => 4,
        _ => 5,
    }
}

fn put_backlen(out: &mut Vec<u8>, len: usize) {
    let size = backlen_size(len);
    // Stored so that it reads backwards: the last byte holds the lowest 7 bits; every byte but the first
    // has its top bit set.
    for i in (0..size).rev() {
        let bits = ((len >> (7 * i)) & 0x7f) as u8;
        out.push(if i + 1 == size { bits } else { bits | 0x80 });
    }
}

/// The elements of a listpack, checked from header to terminator.
pub fn listpack(blob: &[u8]) -> Result<Vec<Elem>> {
    let header = slice(blob, 0, 6)?;
    let total = le(header.get(0..4).unwrap_or_default()) as usize;
    let count = le(header.get(4..6).unwrap_or_default()) as usize;
    if total != blob.len() {
        return Err(Malformed(0, "listpack total size does not match its length"));
    }
    let mut out = Vec::with_capacity(count.min(blob.len()));
    let mut at = 6;
    loop {
        let first = *blob.get(at).ok_or(Malformed(at, "listpack has no terminator"))?;
        if first == 0xff {
            if at + 1 != blob.len() {
                return Err(Malformed(at, "bytes after the listpack terminator"));
            }
            break;
        }
        let (elem, len) = listpack_entry(blob, at)?;
        let back = slice(blob, at + len, backlen_size(len))?;
        let mut expected = Vec::with_capacity(5);
        put_backlen(&mut expected, len);
        if back != expected.as_slice() {
            return Err(Malformed(at + len, "listpack entry back-length is wrong"));
        }
        out.push(elem);
        at += len + back.len();
    }
    if count != 0xffff && count != out.len() {
        return Err(Malformed(4, "listpack element count is wrong"));
    }
    Ok(out)
}

/// The entry at `at` and its length without the backlen.
fn listpack_entry(blob: &[u8], at: usize) -> Result<(Elem, usize)> {
    let first = *blob.get(at).ok_or(Malformed(at, "truncated listpack entry"))?;
    let int = |bytes: usize, bits: u32| -> Result<(Elem, usize)> {
        Ok((Elem::Int(signed(le(slice(blob, at + 1, bytes)?), bits)), 1 + bytes))
    };
    let string = |header: usize, len: usize| -> Result<(Elem, usize)> {
        Ok((Elem::Str(Bytes::copy_from_slice(slice(blob, at + header, len)?)), header + len))
    };
    match first {
        0x00..=0x7f => Ok((Elem::Int(first as i64), 1)),
        0x80..=0xbf => string(1, (first & 0x3f) as usize),
        0xc0..=0xdf => {
            let low = *slice(blob, at + 1, 1)?.first().unwrap_or(&0) as u64;
            Ok((Elem::Int(signed(((first & 0x1f) as u64) << 8 | low, 13)), 2))
        }
        0xe0..=0xef => {
            let low = *slice(blob, at + 1, 1)?.first().unwrap_or(&0) as usize;
            string(2, ((first & 0x0f) as usize) << 8 | low)
        }
        0xf0 => string(5, le(slice(blob, at + 1, 4)?) as usize),
        0xf1 => int(2, 16),
        0xf2 => int(3, 24),
        0xf3 => int(4, 32),
        0xf4 => int(8, 64),
        _ => Err(Malformed(at, "unknown listpack entry encoding")),
    }
}

/// Builds a listpack as Redis 7.0's `lpAppend` does (strings holding integers are stored as integers).
#[derive(Debug, Clone)]
pub struct ListpackBuilder {
    buf: Vec<u8>,
    count: usize,
}

impl Default for ListpackBuilder {
    fn default() -> Self {
        ListpackBuilder { buf: vec![0; 6], count: 0 }
    }
}

impl ListpackBuilder {
    /// Appends a string (as an integer when it is the decimal form of one).
    pub fn push(&mut self, value: &[u8]) {
        if value.len() <= 20 {
            if let Some(number) = canonical_int(value) {
                return self.push_int(number);
            }
        }
        let start = self.buf.len();
        let len = value.len();
        if len < 64 {
            self.buf.push(0x80 | len as u8);
        } else if len < 4096 {
            self.buf.push(0xe0 | (len >> 8) as u8);
            self.buf.push((len & 0xff) as u8);
        } else {
            self.buf.push(0xf0);
            self.buf.extend_from_slice(&(len as u32).to_le_bytes());
        }
        self.buf.extend_from_slice(value);
        let len = self.buf.len() - start;
        put_backlen(&mut self.buf, len);
        self.count += 1;
    }

    /// Appends an integer in the smallest encoding.
    pub fn push_int(&mut self, number: i64) {
        let start = self.buf.len();
        let bytes = number.to_le_bytes();
        match number {
            0..=127 => self.buf.push(number as u8),
            -4096..=4095 => {
                let raw = (number as u64) & 0x1fff;
                self.buf.push(0xc0 | (raw >> 8) as u8);
                self.buf.push((raw & 0xff) as u8);
            }
            -32_768..=32_767 => {
                self.buf.push(0xf1);
                self.buf.extend_from_slice(bytes.get(..2).unwrap_or_default());
            }
            -8_388_608..=8_388_607 => {
                self.buf.push(0xf2);
                self.buf.extend_from_slice(bytes.get(..3).unwrap_or_default());
            }
            -2_147_483_648..=2_147_483_647 => {
                self.buf.push(0xf3);
                self.buf.extend_from_slice(bytes.get(..4).unwrap_or_default());
            }
            _ => {
                self.buf.push(0xf4);
                self.buf.extend_from_slice(&bytes);
            }
        }
        let len = self.buf.len() - start;
        put_backlen(&mut self.buf, len);
        self.count += 1;
    }

    /// Size the finished listpack would have (with its terminator).
    pub fn size(&self) -> usize {
        self.buf.len() + 1
    }

    /// Elements appended so far.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The listpack bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(0xff);
        let total = (self.buf.len() as u32).to_le_bytes();
        let count = (self.count.min(0xffff) as u16).to_le_bytes();
        for (at, byte) in total.iter().chain(count.iter()).enumerate() {
            if let Some(slot) = self.buf.get_mut(at) {
                *slot = *byte;
            }
        }
        self.buf
    }
}

// ---------------------------------------------------------------------------------------------------
// Ziplist
// ---------------------------------------------------------------------------------------------------

/// The elements of a ziplist, checked from header to terminator.
pub fn ziplist(blob: &[u8]) -> Result<Vec<Elem>> {
    let header = slice(blob, 0, 10)?;
    let total = le(header.get(0..4).unwrap_or_default()) as usize;
    let tail = le(header.get(4..8).unwrap_or_default()) as usize;
    let count = le(header.get(8..10).unwrap_or_default()) as usize;
    if total != blob.len() {
        return Err(Malformed(0, "ziplist total size does not match its length"));
    }
    let mut out = Vec::with_capacity(count.min(blob.len()));
    let mut at = 10;
    let mut prev_len = 0usize;
    let mut last_start = 10;
    loop {
        let first = *blob.get(at).ok_or(Malformed(at, "ziplist has no terminator"))?;
        if first == 0xff {
            if at + 1 != blob.len() {
                return Err(Malformed(at, "bytes after the ziplist terminator"));
            }
            break;
        }
        let start = at;
        let stored_prev = if first < 0xfe {
            at += 1;
            first as usize
        } else if first == 0xfe {
            at += 5;
            le(slice(blob, start + 1, 4)?) as usize
        } else {
            return Err(Malformed(at, "bad ziplist prevlen"));
        };
        if stored_prev != prev_len {
            return Err(Malformed(start, "ziplist prevlen does not match the previous entry"));
        }
        let enc = *blob.get(at).ok_or(Malformed(at, "truncated ziplist entry"))?;
        let string = |header: usize, len: usize| -> Result<(Elem, usize)> {
            Ok((Elem::Str(Bytes::copy_from_slice(slice(blob, at + header, len)?)), header + len))
        };
        let int = |bytes: usize, bits: u32| -> Result<(Elem, usize)> {
            Ok((Elem::Int(signed(le(slice(blob, at + 1, bytes)?), bits)), 1 + bytes))
        };
        let (elem, len) = match enc >> 6 {
            0 => string(1, (enc & 0x3f) as usize)?,
            1 => {
                let low = *slice(blob, at + 1, 1)?.first().unwrap_or(&0) as usize;
                string(2, ((enc & 0x3f) as usize) << 8 | low)?
            }
            2 => {
                if enc != 0x80 {
                    return Err(Malformed(at, "bad ziplist string encoding"));
                }
                let raw = slice(blob, at + 1, 4)?;
                let len = raw.iter().fold(0usize, |acc, b| (acc << 8) | *b as usize);
                string(5, len)?
            }
            _ => match enc {
                0xc0 => int(2, 16)?,
                0xd0 => int(4, 32)?,
                0xe0 => int(8, 64)?,
                0xf0 => int(3, 24)?,
                0xfe => int(1, 8)?,
                0xf1..=0xfd => (Elem::Int((enc & 0x0f) as i64 - 1), 1),
                _ => return Err(Malformed(at, "unknown ziplist entry encoding")),
            },
        };
        at += len;
        prev_len = at - start;
        last_start = start;
        out.push(elem);
    }
    if !out.is_empty() && tail != last_start {
        return Err(Malformed(4, "ziplist tail offset is wrong"));
    }
    if count != 0xffff && count != out.len() {
        return Err(Malformed(8, "ziplist element count is wrong"));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------------
// Intset
// ---------------------------------------------------------------------------------------------------

/// The members of an intset (strictly ascending, as Redis requires).
pub fn intset(blob: &[u8]) -> Result<Vec<i64>> {
    let header = slice(blob, 0, 8)?;
    let width = le(header.get(0..4).unwrap_or_default()) as usize;
    let count = le(header.get(4..8).unwrap_or_default()) as usize;
    if !matches!(width, 2 | 4 | 8) {
        return Err(Malformed(0, "bad intset encoding"));
    }
    if count.checked_mul(width).and_then(|n| n.checked_add(8)) != Some(blob.len()) {
        return Err(Malformed(4, "intset length does not match its count"));
    }
    let mut out: Vec<i64> = Vec::with_capacity(count);
    for (i, raw) in blob.get(8..).unwrap_or_default().chunks(width).enumerate() {
        let value = signed(le(raw), (width * 8) as u32);
        if out.last().is_some_and(|last| *last >= value) {
            return Err(Malformed(8 + i * width, "intset is not sorted"));
        }
        out.push(value);
    }
    Ok(out)
}

/// An intset of `members` (sorted and deduplicated here), in the narrowest width that holds them all.
pub fn build_intset(members: &[i64]) -> Vec<u8> {
    let mut sorted = members.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let width: usize = if sorted.iter().all(|n| i16::try_from(*n).is_ok()) {
        2
    } else if sorted.iter().all(|n| i32::try_from(*n).is_ok()) {
        4
    } else {
        8
    };
    let mut out = Vec::with_capacity(8 + sorted.len() * width);
    out.extend_from_slice(&(width as u32).to_le_bytes());
    out.extend_from_slice(&(sorted.len() as u32).to_le_bytes());
    for n in sorted {
        out.extend_from_slice(n.to_le_bytes().get(..width).unwrap_or_default());
    }
    out
}

// ---------------------------------------------------------------------------------------------------
// Zipmap
// ---------------------------------------------------------------------------------------------------

/// The field/value pairs of a zipmap (Redis 2.x small hashes).
pub fn zipmap(blob: &[u8]) -> Result<Vec<(Bytes, Bytes)>> {
    let mut at = 1;
    let mut out = Vec::new();
    let read_len = |at: &mut usize| -> Result<Option<usize>> {
        let first = *blob.get(*at).ok_or(Malformed(*at, "zipmap has no terminator"))?;
        match first {
            0xff => Ok(None),
            0xfe => {
                let len = le(slice(blob, *at + 1, 4)?) as usize;
                *at += 5;
                Ok(Some(len))
            }
            0xfd => Err(Malformed(*at, "bad zipmap length")),
            len => {
                *at += 1;
                Ok(Some(len as usize))
            }
        }
    };
    while let Some(field_len) = read_len(&mut at)? {
        let field = Bytes::copy_from_slice(slice(blob, at, field_len)?);
        at += field_len;
        let value_len = read_len(&mut at)?.ok_or(Malformed(at, "zipmap field without a value"))?;
        let free = *blob.get(at).ok_or(Malformed(at, "truncated zipmap entry"))? as usize;
        at += 1;
        let value = Bytes::copy_from_slice(slice(blob, at, value_len)?);
        at += value_len + free;
        out.push((field, value));
    }
    if at + 1 != blob.len() {
        return Err(Malformed(at, "bytes after the zipmap terminator"));
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn listpack_round_trip() {
        let values: Vec<Vec<u8>> = vec![
            b"0".to_vec(),
            b"127".to_vec(),
            b"-1".to_vec(),
            b"4095".to_vec(),
            b"-4096".to_vec(),
            b"32767".to_vec(),
            b"8388607".to_vec(),
            b"2147483647".to_vec(),
            b"-9223372036854775808".to_vec(),
            b"007".to_vec(),
            b"".to_vec(),
            vec![b'x'; 63],
            vec![b'y'; 64],
            vec![b'z'; 4095],
            vec![b'w'; 4096],
            vec![b'v'; 70_000],
        ];
        let mut builder = ListpackBuilder::default();
        for v in &values {
            builder.push(v);
        }
        let lp = builder.finish();
        let back: Vec<Bytes> = listpack(&lp).unwrap().into_iter().map(Elem::into_bytes).collect();
        assert_eq!(back, values.iter().map(|v| Bytes::from(v.clone())).collect::<Vec<_>>());
    }

    #[test]
    fn intset_round_trip() {
        let members = [5, -3, 70_000, i64::MIN];
        assert_eq!(intset(&build_intset(&members)).unwrap(), vec![i64::MIN, -3, 5, 70_000]);
        assert_eq!(build_intset(&[1, 2])[0], 2);
    }
}
