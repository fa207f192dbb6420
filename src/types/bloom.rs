//! Scalable bloom filters with RedisBloom's semantics (`BF.RESERVE`, `BF.ADD`, `BF.EXISTS`,
//! `BF.INFO`, `BF.SCANDUMP`/`BF.LOADCHUNK`), stored in Velo's own versioned, checksummed layout.
//!
//! Written from RedisBloom's documented behaviour and the textbook scalable bloom filter (Almeida
//! et al., "Scalable Bloom Filters"); no code was copied from RedisBloom or any other project.
//!
//! # Semantics
//!
//! A chain starts with one sub-filter sized for `capacity` items. When the newest sub-filter holds
//! as many items as it was sized for, a new one is added with `expansion` times the capacity and
//! half the error rate, so the chain's overall false-positive rate stays below the requested one.
//! For a scaling chain the first sub-filter already uses half the requested rate (the series
//! `e/2 + e/4 + …` stays below `e`); a `NONSCALING` chain uses the full rate and refuses items
//! once full. Sub-filter sizing: `bits per entry = -ln(error) / ln(2)²`, `bits = capacity × bpe`
//! rounded up to whole 64-bit words, `hashes = ceil(ln(2) × bpe)`. Positions come from double
//! hashing of two MurmurHash64A values (`h1 + i·h2 mod bits`), bit `i` living in byte `i / 8` at
//! bit `i % 8`. An item already reported present is not added again (the item count counts
//! distinct-looking items), as in RedisBloom.
//!
//! # Encoding (version 1, little-endian)
//!
//! ```text
//! header   "VBLM" | version u8 = 1 | flags u8 (bit 0 = nonscaling) | reserved u16 = 0
//!          expansion u32 | filter count u32 | items u64                        (24 bytes)
//! filters  per sub-filter: capacity u64 | error f64 | bits u64 | hashes u32 |
//!          reserved u32 = 0 | items u64                                        (40 bytes each)
//! bitmaps  each sub-filter's bits / 8 bytes, in filter order
//! crc      CRC-32 (IEEE, crc32fast) of everything before it, u32
//! ```
//!
//! `BF.SCANDUMP` chunks: cursor 0 asks for the first chunk, which is the header and filter table
//! followed by their own CRC-32; then each chunk is a slice of the concatenated bitmaps (never
//! crossing a sub-filter) and its cursor is `1 + end offset` in the bitmaps; cursor 0 in a reply
//! means done. `BF.LOADCHUNK` takes the same pairs: a chunk whose cursor is 1 is the header,
//! any other is written at offset `cursor - 1 - len`.

use thiserror::Error;

use super::hll::murmur_hash64a;

/// Default error rate when `BF.ADD` creates a filter.
pub const DEFAULT_ERROR_RATE: f64 = 0.01;
/// Default capacity when `BF.ADD` creates a filter.
pub const DEFAULT_CAPACITY: u64 = 100;
/// Default expansion factor.
pub const DEFAULT_EXPANSION: u32 = 2;
/// Each new sub-filter's error rate relative to the previous one.
const ERROR_TIGHTENING: f64 = 0.5;
/// Largest total bitmap size accepted, so that a hostile header cannot demand absurd memory.
pub const MAX_TOTAL_BYTES: u64 = 1 << 32;
/// Largest number of sub-filters accepted when decoding.
pub const MAX_FILTERS: u32 = 1024;
/// Default largest `BF.SCANDUMP` data chunk.
pub const DEFAULT_CHUNK_BYTES: usize = 16 << 20;

const MAGIC: &[u8; 4] = b"VBLM";
/// Encoding versions: stored on disk, never renumber.
const VERSION_1: u8 = 1;
const FLAG_NONSCALING: u8 = 0x01;
const HEADER_LEN: usize = 24;
const FILTER_ENTRY_LEN: usize = 40;
const CRC_LEN: usize = 4;
/// ln(2)² — bits per entry is -ln(error) over this.
const LN2_SQUARED: f64 = std::f64::consts::LN_2 * std::f64::consts::LN_2;
/// Seed of the first of the two item hashes; the second is seeded with the first's value.
const HASH_SEED: u64 = 0xc6a4_a793_5bd1_e995;

/// Why a filter cannot be created, grown, or decoded.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum BloomError {
    /// The error rate is not strictly between 0 and 1.
    #[error("ERR (0 < error rate range < 1)")]
    BadErrorRate,
    /// The capacity is zero.
    #[error("ERR (capacity should be larger than 0)")]
    BadCapacity,
    /// The expansion factor is zero.
    #[error("ERR expansion should be greater or equal to 1")]
    BadExpansion,
    /// A `NONSCALING` filter is full.
    #[error("ERR non scaling filter is full")]
    Full,
    /// Growing would need more capacity or memory than supported.
    #[error("ERR filter would exceed the maximum size")]
    TooLarge,
    /// Bytes that are not a valid encoded filter or chunk.
    #[error("corrupt bloom filter encoding: {0}")]
    Corrupt(&'static str),
    /// An encoding version this build does not know.
    #[error("unsupported bloom filter encoding version {0}")]
    UnsupportedVersion(u8),
    /// The checksum does not match the content.
    #[error("bloom filter checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    ChecksumMismatch {
        /// CRC stored in the bytes.
        stored: u32,
        /// CRC of the content.
        computed: u32,
    },
}

/// One fixed-size bloom filter of the chain.
#[derive(Debug, Clone, PartialEq)]
struct SubFilter {
    /// Items it is sized for.
    capacity: u64,
    /// Target false-positive rate.
    error: f64,
    /// Number of hash positions per item.
    hashes: u32,
    /// Items added to this sub-filter.
    items: u64,
    /// The bitmap; its length × 8 is the bit count, a multiple of 64.
    bitmap: Vec<u8>,
}

impl SubFilter {
    fn new(capacity: u64, error: f64) -> Result<SubFilter, BloomError> {
        let bits_per_entry = -error.ln() / LN2_SQUARED;
        let wanted_bits = capacity as f64 * bits_per_entry;
        if !wanted_bits.is_finite() || wanted_bits > (MAX_TOTAL_BYTES * 8) as f64 {
            return Err(BloomError::TooLarge);
        }
        // Whole 64-bit words, at least one.
        let words = ((wanted_bits as u64).div_ceil(64)).max(1);
        let hashes = ((std::f64::consts::LN_2 * bits_per_entry).ceil() as u32).max(1);
        Ok(SubFilter { capacity, error, hashes, items: 0, bitmap: vec![0; words as usize * 8] })
    }

    fn bit_count(&self) -> u64 {
        self.bitmap.len() as u64 * 8
    }

    fn positions(&self, hash: ItemHash) -> impl Iterator<Item = u64> {
        let bits = self.bit_count();
        (0..u64::from(self.hashes)).map(move |i| hash.0.wrapping_add(i.wrapping_mul(hash.1)) % bits)
    }

    fn contains(&self, hash: ItemHash) -> bool {
        self.positions(hash)
            .all(|bit| self.bitmap.get((bit / 8) as usize).is_some_and(|byte| byte & (1 << (bit % 8)) != 0))
    }

    fn insert(&mut self, hash: ItemHash) {
        let bits = self.bit_count();
        for i in 0..u64::from(self.hashes) {
            let bit = hash.0.wrapping_add(i.wrapping_mul(hash.1)) % bits;
            if let Some(byte) = self.bitmap.get_mut((bit / 8) as usize) {
                *byte |= 1 << (bit % 8);
            }
        }
        self.items += 1;
    }
}

/// The two hashes an item's positions are derived from.
#[derive(Debug, Clone, Copy)]
struct ItemHash(u64, u64);

impl ItemHash {
    fn of(item: &[u8]) -> ItemHash {
        let first = murmur_hash64a(item, HASH_SEED);
        ItemHash(first, murmur_hash64a(item, first))
    }
}

/// What `BF.INFO` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BloomInfo {
    /// Items the chain can hold before it grows (sum of sub-filter capacities).
    pub capacity: u64,
    /// Memory used, in bytes: the bitmaps plus a fixed per-filter overhead.
    pub size: u64,
    /// Number of sub-filters.
    pub filters: u64,
    /// Items inserted.
    pub items: u64,
    /// Expansion factor; `None` for a `NONSCALING` filter (RedisBloom replies nil there).
    pub expansion: Option<u32>,
}

impl BloomInfo {
    /// The `BF.INFO` reply as `(field name, value)` pairs in RedisBloom's order; `None` is a nil
    /// reply (the expansion rate of a `NONSCALING` filter).
    pub fn fields(&self) -> [(&'static str, Option<u64>); 5] {
        [
            ("Capacity", Some(self.capacity)),
            ("Size", Some(self.size)),
            ("Number of filters", Some(self.filters)),
            ("Number of items inserted", Some(self.items)),
            ("Expansion rate", self.expansion.map(u64::from)),
        ]
    }
}

/// A scalable bloom filter (a chain of sub-filters).
#[derive(Debug, Clone, PartialEq)]
pub struct ScalableBloom {
    filters: Vec<SubFilter>,
    expansion: u32,
    nonscaling: bool,
    items: u64,
}

impl ScalableBloom {
    /// `BF.RESERVE key error_rate capacity [EXPANSION expansion] [NONSCALING]`.
    pub fn reserve(
        error_rate: f64,
        capacity: u64,
        expansion: u32,
        nonscaling: bool,
    ) -> Result<ScalableBloom, BloomError> {
        if !(error_rate > 0.0 && error_rate < 1.0) {
            return Err(BloomError::BadErrorRate);
        }
        if capacity == 0 {
            return Err(BloomError::BadCapacity);
        }
        if expansion == 0 {
            return Err(BloomError::BadExpansion);
        }
        let first_error = if nonscaling { error_rate } else { error_rate * ERROR_TIGHTENING };
        Ok(ScalableBloom { filters: vec![SubFilter::new(capacity, first_error)?], expansion, nonscaling, items: 0 })
    }

    /// The filter `BF.ADD` creates on a missing key: error 0.01, capacity 100, expansion 2.
    pub fn with_defaults() -> ScalableBloom {
        ScalableBloom {
            filters: vec![SubFilter {
                capacity: DEFAULT_CAPACITY,
                error: DEFAULT_ERROR_RATE * ERROR_TIGHTENING,
                // -ln(0.005)/ln(2)² × 100 = 1102.8 bits → 18 words; ceil(ln 2 × 11.03) = 8.
                hashes: 8,
                items: 0,
                bitmap: vec![0; 18 * 8],
            }],
            expansion: DEFAULT_EXPANSION,
            nonscaling: false,
            items: 0,
        }
    }

    /// Adds an item; `Ok(true)` if it was new, `Ok(false)` if it (probably) was present.
    /// A full `NONSCALING` filter answers [`BloomError::Full`].
    pub fn add(&mut self, item: &[u8]) -> Result<bool, BloomError> {
        let hash = ItemHash::of(item);
        if self.filters.iter().rev().any(|f| f.contains(hash)) {
            return Ok(false);
        }
        let full = self.filters.last().is_none_or(|f| f.items >= f.capacity);
        if full {
            if self.nonscaling {
                return Err(BloomError::Full);
            }
            self.grow()?;
        }
        let newest = self.filters.last_mut().ok_or(BloomError::Corrupt("no sub-filter"))?;
        newest.insert(hash);
        self.items += 1;
        Ok(true)
    }

    /// True if the item may have been added; false means it certainly was not.
    pub fn exists(&self, item: &[u8]) -> bool {
        let hash = ItemHash::of(item);
        self.filters.iter().rev().any(|f| f.contains(hash))
    }

    fn grow(&mut self) -> Result<(), BloomError> {
        let newest = self.filters.last().ok_or(BloomError::Corrupt("no sub-filter"))?;
        let capacity = newest.capacity.checked_mul(u64::from(self.expansion)).ok_or(BloomError::TooLarge)?;
        let next = SubFilter::new(capacity, newest.error * ERROR_TIGHTENING)?;
        if self.total_bitmap_bytes() + next.bitmap.len() as u64 > MAX_TOTAL_BYTES
            || self.filters.len() as u32 >= MAX_FILTERS
        {
            return Err(BloomError::TooLarge);
        }
        self.filters.push(next);
        Ok(())
    }

    fn total_bitmap_bytes(&self) -> u64 {
        self.filters.iter().map(|f| f.bitmap.len() as u64).sum()
    }

    /// `BF.INFO`'s fields.
    pub fn info(&self) -> BloomInfo {
        BloomInfo {
            capacity: self.filters.iter().map(|f| f.capacity).sum(),
            size: (HEADER_LEN + self.filters.len() * FILTER_ENTRY_LEN) as u64 + self.total_bitmap_bytes(),
            filters: self.filters.len() as u64,
            items: self.items,
            expansion: (!self.nonscaling).then_some(self.expansion),
        }
    }

    /// `BF.DEBUG`'s lines, in RedisBloom's format: the item count, then per sub-filter its bitmap bytes and
    /// bits, hash count, hash width, capacity, items and error rate.
    pub fn debug_lines(&self) -> Vec<String> {
        let mut lines = vec![format!("size:{}", self.items)];
        for filter in &self.filters {
            lines.push(format!(
                "bytes:{} bits:{} hashes:{} hashwidth:64 capacity:{} size:{} ratio:{}",
                filter.bitmap.len(),
                filter.bitmap.len() as u64 * 8,
                filter.hashes,
                filter.capacity,
                filter.items,
                crate::resp::reply::format_g(filter.error, 6)
            ));
        }
        lines
    }

    /// Items inserted (`BF.CARD`).
    pub fn items(&self) -> u64 {
        self.items
    }

    /// The storage encoding (see the module docs).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.encode_header();
        for filter in &self.filters {
            out.extend_from_slice(&filter.bitmap);
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes [`ScalableBloom::to_bytes`]'s output, checking structure, sizes and checksum.
    pub fn from_bytes(bytes: &[u8]) -> Result<ScalableBloom, BloomError> {
        let (content, stored) = split_crc(bytes)?;
        let (mut bloom, table_len) = decode_header(content)?;
        let bitmaps = &content[table_len..];
        if bitmaps.len() as u64 != bloom.total_bitmap_bytes() {
            return Err(BloomError::Corrupt("bitmap length does not match the filter table"));
        }
        check_crc(content, stored)?;
        let mut at = 0;
        for filter in &mut bloom.filters {
            let end = at + filter.bitmap.len();
            filter.bitmap.copy_from_slice(&bitmaps[at..end]);
            at = end;
        }
        Ok(bloom)
    }

    /// The header chunk: header and filter table, as in the storage encoding.
    fn encode_header(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.filters.len() * FILTER_ENTRY_LEN);
        out.extend_from_slice(MAGIC);
        out.push(VERSION_1);
        out.push(if self.nonscaling { FLAG_NONSCALING } else { 0 });
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&self.expansion.to_le_bytes());
        out.extend_from_slice(&(self.filters.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.items.to_le_bytes());
        for filter in &self.filters {
            out.extend_from_slice(&filter.capacity.to_le_bytes());
            out.extend_from_slice(&filter.error.to_bits().to_le_bytes());
            out.extend_from_slice(&filter.bit_count().to_le_bytes());
            out.extend_from_slice(&filter.hashes.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(&filter.items.to_le_bytes());
        }
        out
    }

    /// One `BF.SCANDUMP` step with chunks of at most [`DEFAULT_CHUNK_BYTES`].
    pub fn scandump(&self, cursor: u64) -> (u64, Vec<u8>) {
        self.scandump_with_chunk(cursor, DEFAULT_CHUNK_BYTES)
    }

    /// One `BF.SCANDUMP` step: cursor 0 gives `(1, header chunk)`; a cursor from a previous
    /// reply gives the next bitmap slice (at most `max_chunk` bytes) and its cursor; past the
    /// end (or for a cursor that is not a chunk boundary of this filter) it gives `(0, [])`.
    pub fn scandump_with_chunk(&self, cursor: u64, max_chunk: usize) -> (u64, Vec<u8>) {
        if cursor == 0 {
            let mut header = self.encode_header();
            let crc = crc32fast::hash(&header);
            header.extend_from_slice(&crc.to_le_bytes());
            return (1, header);
        }
        let offset = cursor - 1;
        let mut start = 0u64;
        for filter in &self.filters {
            let end = start + filter.bitmap.len() as u64;
            if offset >= start && offset < end {
                let from = (offset - start) as usize;
                let to = filter.bitmap.len().min(from + max_chunk.max(1));
                let chunk = filter.bitmap[from..to].to_vec();
                return (1 + start + to as u64, chunk);
            }
            start = end;
        }
        (0, Vec::new())
    }

    /// Every `BF.SCANDUMP` `(cursor, chunk)` pair in order, header first, without the final
    /// `(0, [])`.
    pub fn dump_chunks(&self, max_chunk: usize) -> impl Iterator<Item = (u64, Vec<u8>)> + '_ {
        let mut cursor = 0;
        std::iter::from_fn(move || {
            let (next, chunk) = self.scandump_with_chunk(cursor, max_chunk);
            if next == 0 {
                return None;
            }
            cursor = next;
            Some((next, chunk))
        })
    }

    /// `BF.LOADCHUNK` of a header chunk (cursor 1): a filter with empty bitmaps, to be filled by
    /// [`ScalableBloom::load_chunk`].
    pub fn from_header_chunk(chunk: &[u8]) -> Result<ScalableBloom, BloomError> {
        let (content, stored) = split_crc(chunk)?;
        let (bloom, table_len) = decode_header(content)?;
        if table_len != content.len() {
            return Err(BloomError::Corrupt("trailing bytes after the filter table"));
        }
        check_crc(content, stored)?;
        Ok(bloom)
    }

    /// `BF.LOADCHUNK` of a data chunk: writes `chunk` where `cursor` says it belongs.
    pub fn load_chunk(&mut self, cursor: u64, chunk: &[u8]) -> Result<(), BloomError> {
        let offset =
            cursor.checked_sub(1 + chunk.len() as u64).ok_or(BloomError::Corrupt("chunk cursor before its data"))?;
        let mut start = 0u64;
        for filter in &mut self.filters {
            let end = start + filter.bitmap.len() as u64;
            if offset >= start && offset < end {
                let from = (offset - start) as usize;
                let target = filter
                    .bitmap
                    .get_mut(from..from + chunk.len())
                    .ok_or(BloomError::Corrupt("chunk crosses the end of a sub-filter"))?;
                target.copy_from_slice(chunk);
                return Ok(());
            }
            start = end;
        }
        Err(BloomError::Corrupt("chunk offset outside the filter"))
    }

    /// Rebuilds a filter from `BF.SCANDUMP` pairs given in order (header first).
    pub fn load_chunks<'a>(chunks: impl IntoIterator<Item = (u64, &'a [u8])>) -> Result<ScalableBloom, BloomError> {
        let mut chunks = chunks.into_iter();
        let (cursor, header) = chunks.next().ok_or(BloomError::Corrupt("no header chunk"))?;
        if cursor != 1 {
            return Err(BloomError::Corrupt("first chunk is not the header"));
        }
        let mut bloom = ScalableBloom::from_header_chunk(header)?;
        for (cursor, chunk) in chunks {
            bloom.load_chunk(cursor, chunk)?;
        }
        Ok(bloom)
    }
}

fn split_crc(bytes: &[u8]) -> Result<(&[u8], u32), BloomError> {
    let split = bytes.len().checked_sub(CRC_LEN).ok_or(BloomError::Corrupt("too short"))?;
    let (content, crc) = bytes.split_at(split);
    Ok((content, le_u32(crc, 0)?))
}

fn check_crc(content: &[u8], stored: u32) -> Result<(), BloomError> {
    let computed = crc32fast::hash(content);
    if computed != stored {
        return Err(BloomError::ChecksumMismatch { stored, computed });
    }
    Ok(())
}

fn le_u32(bytes: &[u8], at: usize) -> Result<u32, BloomError> {
    let slice = bytes.get(at..at + 4).ok_or(BloomError::Corrupt("truncated"))?;
    let mut word = [0u8; 4];
    word.copy_from_slice(slice);
    Ok(u32::from_le_bytes(word))
}

fn le_u64(bytes: &[u8], at: usize) -> Result<u64, BloomError> {
    let slice = bytes.get(at..at + 8).ok_or(BloomError::Corrupt("truncated"))?;
    let mut word = [0u8; 8];
    word.copy_from_slice(slice);
    Ok(u64::from_le_bytes(word))
}

/// Parses the header and filter table; returns the filter (empty bitmaps of the declared sizes)
/// and the table's end offset. Every field is range-checked before anything is allocated.
fn decode_header(bytes: &[u8]) -> Result<(ScalableBloom, usize), BloomError> {
    if bytes.len() < HEADER_LEN {
        return Err(BloomError::Corrupt("truncated header"));
    }
    if bytes.get(..4) != Some(MAGIC.as_slice()) {
        return Err(BloomError::Corrupt("bad magic"));
    }
    match bytes[4] {
        VERSION_1 => {}
        other => return Err(BloomError::UnsupportedVersion(other)),
    }
    let flags = bytes[5];
    if flags & !FLAG_NONSCALING != 0 || bytes[6..8] != [0, 0] {
        return Err(BloomError::Corrupt("unknown flags"));
    }
    let expansion = le_u32(bytes, 8)?;
    let count = le_u32(bytes, 12)?;
    let items = le_u64(bytes, 16)?;
    if expansion == 0 {
        return Err(BloomError::Corrupt("expansion 0"));
    }
    if count == 0 || count > MAX_FILTERS {
        return Err(BloomError::Corrupt("filter count out of range"));
    }
    let table_len = HEADER_LEN + count as usize * FILTER_ENTRY_LEN;
    if bytes.len() < table_len {
        return Err(BloomError::Corrupt("truncated filter table"));
    }
    let mut filters = Vec::with_capacity(count as usize);
    let mut total_bytes = 0u64;
    let mut item_sum = 0u64;
    for i in 0..count as usize {
        let at = HEADER_LEN + i * FILTER_ENTRY_LEN;
        let capacity = le_u64(bytes, at)?;
        let error = f64::from_bits(le_u64(bytes, at + 8)?);
        let bits = le_u64(bytes, at + 16)?;
        let hashes = le_u32(bytes, at + 24)?;
        let reserved = le_u32(bytes, at + 28)?;
        let filter_items = le_u64(bytes, at + 32)?;
        if capacity == 0 || !(error > 0.0 && error < 1.0) || reserved != 0 {
            return Err(BloomError::Corrupt("bad sub-filter parameters"));
        }
        if bits == 0 || bits % 64 != 0 || hashes == 0 || hashes > 4096 {
            return Err(BloomError::Corrupt("bad sub-filter size"));
        }
        total_bytes = total_bytes.saturating_add(bits / 8);
        item_sum = item_sum.saturating_add(filter_items);
        if total_bytes > MAX_TOTAL_BYTES {
            return Err(BloomError::Corrupt("filters larger than the supported maximum"));
        }
        filters.push((capacity, error, bits, hashes, filter_items));
    }
    if item_sum != items {
        return Err(BloomError::Corrupt("item counts disagree"));
    }
    let filters = filters
        .into_iter()
        .map(|(capacity, error, bits, hashes, items)| SubFilter {
            capacity,
            error,
            hashes,
            items,
            bitmap: vec![0; (bits / 8) as usize],
        })
        .collect();
    let bloom = ScalableBloom { filters, expansion, nonscaling: flags & FLAG_NONSCALING != 0, items };
    Ok((bloom, table_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(count: u32) -> ScalableBloom {
        let mut bloom = ScalableBloom::reserve(0.01, 100, 2, false).unwrap();
        for i in 0..count {
            bloom.add(format!("item:{i}").as_bytes()).unwrap();
        }
        bloom
    }

    #[test]
    fn defaults_match_reserve() {
        assert_eq!(ScalableBloom::with_defaults(), ScalableBloom::reserve(0.01, 100, 2, false).unwrap());
    }

    #[test]
    fn validates_parameters() {
        assert_eq!(ScalableBloom::reserve(0.0, 10, 2, false), Err(BloomError::BadErrorRate));
        assert_eq!(ScalableBloom::reserve(1.0, 10, 2, false), Err(BloomError::BadErrorRate));
        assert_eq!(ScalableBloom::reserve(f64::NAN, 10, 2, false), Err(BloomError::BadErrorRate));
        assert_eq!(ScalableBloom::reserve(0.1, 0, 2, false), Err(BloomError::BadCapacity));
        assert_eq!(ScalableBloom::reserve(0.1, 10, 0, false), Err(BloomError::BadExpansion));
        assert_eq!(ScalableBloom::reserve(1e-300, u64::MAX, 2, false), Err(BloomError::TooLarge));
    }

    #[test]
    fn grows_by_expansion() {
        let bloom = filled(1000);
        let info = bloom.info();
        // A few new items collide with earlier ones (false positives) and are not counted.
        assert!((990..=1000).contains(&info.items), "{}", info.items);
        // 100 + 200 + 400 < 1000 ≤ 100 + 200 + 400 + 800.
        assert_eq!(info.filters, 4);
        assert_eq!(info.capacity, 1500);
        assert_eq!(info.expansion, Some(2));
        let errors: Vec<f64> = bloom.filters.iter().map(|f| f.error).collect();
        assert_eq!(errors, vec![0.005, 0.0025, 0.00125, 0.000625]);
        for i in 0..1000 {
            assert!(bloom.exists(format!("item:{i}").as_bytes()));
        }
    }

    #[test]
    fn nonscaling_fills_up() {
        let mut bloom = ScalableBloom::reserve(0.01, 10, 2, true).unwrap();
        let mut added = 0;
        let mut i = 0;
        while added < 10 {
            if bloom.add(format!("x{i}").as_bytes()).unwrap() {
                added += 1;
            }
            i += 1;
        }
        let mut full = false;
        for j in i..i + 100 {
            match bloom.add(format!("x{j}").as_bytes()) {
                Err(BloomError::Full) => full = true,
                Ok(false) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(full);
        assert_eq!(bloom.info().expansion, None);
        assert_eq!(bloom.info().fields()[4], ("Expansion rate", None));
        assert_eq!(bloom.info().fields()[3], ("Number of items inserted", Some(10)));
        assert_eq!(bloom.info().filters, 1);
    }

    #[test]
    fn round_trip_and_golden_header() {
        let bloom = filled(300);
        let bytes = bloom.to_bytes();
        assert_eq!(ScalableBloom::from_bytes(&bytes), Ok(bloom));
        let empty = ScalableBloom::reserve(0.5, 1, 3, true).unwrap().to_bytes();
        // 1 item at 0.5 → 1.44 bits → one word; ceil(ln2 × 1.44) = 1 hash.
        let golden = [
            "56424c4d",
            "01",
            "01",
            "0000",
            "03000000",
            "01000000",
            "0000000000000000",
            "0100000000000000",
            "000000000000e03f",
            "4000000000000000",
            "01000000",
            "00000000",
            "0000000000000000",
            "0000000000000000",
        ]
        .concat();
        let hex: String = empty[..empty.len() - 4].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, golden);
    }

    #[test]
    fn every_truncation_and_flip_is_rejected() {
        let bytes = filled(150).to_bytes();
        for cut in 0..bytes.len() {
            assert!(ScalableBloom::from_bytes(&bytes[..cut]).is_err(), "cut {cut}");
        }
        for i in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[i] ^= 0x10;
            assert!(ScalableBloom::from_bytes(&flipped).is_err(), "flip {i}");
        }
        let mut wrong_version = bytes.clone();
        wrong_version[4] = 9;
        assert_eq!(ScalableBloom::from_bytes(&wrong_version), Err(BloomError::UnsupportedVersion(9)));
    }

    #[test]
    fn random_bytes_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(11);
        let valid = filled(10).to_bytes();
        for _ in 0..20_000 {
            let mut bytes = valid.clone();
            for _ in 0..rng.gen_range(1..4) {
                let i = rng.gen_range(0..bytes.len());
                bytes[i] = rng.gen();
            }
            // Re-seal the checksum so that the structural checks are what gets exercised.
            let n = bytes.len() - 4;
            let crc = crc32fast::hash(&bytes[..n]);
            bytes[n..].copy_from_slice(&crc.to_le_bytes());
            if let Ok(mut bloom) = ScalableBloom::from_bytes(&bytes) {
                let _ = bloom.add(b"x");
                bloom.exists(b"y");
            }
            let _ = ScalableBloom::from_header_chunk(&bytes);
        }
    }

    #[test]
    fn scandump_round_trip() {
        let bloom = filled(700);
        for chunk in [1, 7, 64, 1000, DEFAULT_CHUNK_BYTES] {
            let chunks: Vec<(u64, Vec<u8>)> = bloom.dump_chunks(chunk).collect();
            assert_eq!(chunks[0].0, 1);
            let loaded = ScalableBloom::load_chunks(chunks.iter().map(|(c, d)| (*c, d.as_slice()))).unwrap();
            assert_eq!(loaded, bloom, "chunk size {chunk}");
        }
        let (last_cursor, _) = bloom.dump_chunks(64).last().unwrap();
        assert_eq!(bloom.scandump_with_chunk(last_cursor, 64), (0, Vec::new()));
    }

    #[test]
    fn bad_chunks_are_rejected() {
        let bloom = filled(10);
        let (_, header) = bloom.scandump(0);
        for cut in 0..header.len() {
            assert!(ScalableBloom::from_header_chunk(&header[..cut]).is_err(), "cut {cut}");
        }
        let mut empty = ScalableBloom::from_header_chunk(&header).unwrap();
        assert!(empty.load_chunk(0, b"abc").is_err());
        assert!(empty.load_chunk(u64::MAX, b"abc").is_err());
        let size = bloom.total_bitmap_bytes();
        assert!(empty.load_chunk(size + 2, &[0xff; 2]).is_err(), "crosses the end");
        assert!(empty.load_chunk(size + 1, &[0xff; 2]).is_ok(), "the last two bytes");
        assert!(empty.load_chunk(size + 3, &[0xff; 2]).is_err(), "past the end");
        assert!(empty.load_chunk(3, &[0xff; 2]).is_ok());
    }
}
