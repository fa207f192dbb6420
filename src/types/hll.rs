//! HyperLogLog in Redis's exact `HYLL` string format, so that `GET`, `DUMP`/`RESTORE` and
//! replication see the same bytes a Redis 7 server would produce.
//!
//! Written from the documented format and the published algorithms (MurmurHash64A, Ertl's
//! "New cardinality estimation algorithms for HyperLogLog sketches", arXiv:1702.01284); no code
//! was copied from Redis or any other project.
//!
//! # Format (all multi-byte integers little-endian)
//!
//! ```text
//! offset 0  "HYLL"              magic
//! offset 4  encoding: u8        0 = dense, 1 = sparse
//! offset 5  3 unused bytes      (kept as found)
//! offset 8  card: [u8; 8]       cached cardinality, u64 LE; the MSB of byte 15 set = cache invalid
//! offset 16 registers           dense: 16384 6-bit registers, LSB first (12288 bytes)
//!                               sparse: run-length opcodes covering exactly 16384 registers
//! ```
//!
//! Sparse opcodes:
//! - `ZERO`  `00xxxxxx`: `xxxxxx + 1` (1..=64) registers set to 0;
//! - `XZERO` `01xxxxxx yyyyyyyy`: 14-bit `len - 1` (1..=16384) registers set to 0;
//! - `VAL`   `1vvvvvxx`: `xx + 1` (1..=4) registers set to `vvvvv + 1` (1..=32).
//!
//! A sparse HLL turns dense when an update would make it longer than
//! [`SPARSE_MAX_BYTES`] (Redis's default `hll-sparse-max-bytes`) or a register needs a value
//! above 32. The byte-level editing of the sparse form follows Redis's documented steps (split the
//! covering opcode, then merge adjacent equal `VAL`s), because the exact bytes are observable.
//!
//! Invalidating the cache sets only the top bit: the other seven bytes keep the last cached value,
//! exactly as Redis leaves them.

use thiserror::Error;

/// Registers index bits (Redis `HLL_P`).
const P: u32 = 14;
/// Bits of the hash left for the zero-run count (Redis `HLL_Q`).
const Q: u32 = 64 - P;
/// Number of registers.
pub const REGISTERS: usize = 1 << P;
/// Bits per dense register.
const REGISTER_BITS: usize = 6;
/// Largest value a register can hold.
const REGISTER_MAX: u8 = (1 << REGISTER_BITS) - 1;
/// Header length: magic (4) + encoding (1) + unused (3) + cached cardinality (8).
pub const HEADER_LEN: usize = 16;
/// Total length of a dense HLL string.
pub const DENSE_LEN: usize = HEADER_LEN + (REGISTERS * REGISTER_BITS).div_ceil(8);
/// Redis's default `hll-sparse-max-bytes`: beyond it (header included) the HLL turns dense.
pub const SPARSE_MAX_BYTES: usize = 3000;
/// Seed Redis passes to MurmurHash64A for HLL elements.
const HASH_SEED: u64 = 0xadc8_3b19;
/// 0.5 / ln(2): the estimator's constant for an infinite number of registers.
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

const MAGIC: &[u8; 4] = b"HYLL";
/// Encoding byte values: stored in every HLL string, never renumber.
const ENCODING_DENSE: u8 = 0;
const ENCODING_SPARSE: u8 = 1;
/// Offset of the byte carrying the cache-invalid flag in its top bit.
const CARD_FLAG_BYTE: usize = 15;
const CARD_INVALID_BIT: u8 = 0x80;

const SPARSE_VAL_MAX_VALUE: u8 = 32;
const SPARSE_VAL_MAX_LEN: usize = 4;
const SPARSE_ZERO_MAX_LEN: usize = 64;
const SPARSE_XZERO_MAX_LEN: usize = 16384;

/// Why bytes are not a usable HLL. The two kinds map to the two replies Redis gives.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HllError {
    /// Not an HLL at all: too short, wrong magic, unknown encoding or a dense string of the wrong
    /// length. Redis replies [`HllError::NOT_HLL_REPLY`].
    #[error("not a HyperLogLog string: {0}")]
    NotHll(&'static str),
    /// Looks like an HLL but the sparse opcodes do not cover exactly 16384 registers. Redis
    /// replies [`HllError::CORRUPTED_REPLY`].
    #[error("corrupted HyperLogLog: {0}")]
    Corrupted(&'static str),
}

impl HllError {
    /// Redis's reply text (without the leading `-`) for [`HllError::NotHll`].
    pub const NOT_HLL_REPLY: &'static str = "WRONGTYPE Key is not a valid HyperLogLog string value.";
    /// Redis's reply text (without the leading `-`) for [`HllError::Corrupted`].
    pub const CORRUPTED_REPLY: &'static str = "INVALIDOBJ Corrupted HLL object detected";

    /// The error line Redis sends for this error (without `-` and CRLF).
    pub fn redis_reply(&self) -> &'static str {
        match self {
            HllError::NotHll(_) => Self::NOT_HLL_REPLY,
            HllError::Corrupted(_) => Self::CORRUPTED_REPLY,
        }
    }
}

/// MurmurHash64A (Austin Appleby's 64-bit variant), as Redis uses it, little-endian reads.
pub fn murmur_hash64a(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut blocks = data.chunks_exact(8);
    for block in &mut blocks {
        let mut word = [0u8; 8];
        word.copy_from_slice(block);
        let mut k = u64::from_le_bytes(word);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        for (i, &byte) in tail.iter().enumerate() {
            h ^= u64::from(byte) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element lands in and the value it offers: the low 14 bits of the hash pick
/// the register; the value is 1 + the number of trailing zeros of the remaining 50 bits (at most
/// 51, a sentinel bit bounds the scan).
pub fn register_and_value(element: &[u8]) -> (usize, u8) {
    let hash = murmur_hash64a(element, HASH_SEED);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    let rest = (hash >> P) | (1u64 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

/// One decoded sparse opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opcode {
    /// A run of zero registers, from a `ZERO` (1 byte) or `XZERO` (2 bytes).
    Zero { len: usize, wide: bool },
    /// A run of `len` registers with `value`.
    Val { value: u8, len: usize },
}

impl Opcode {
    fn byte_len(self) -> usize {
        match self {
            Opcode::Zero { wide: true, .. } => 2,
            _ => 1,
        }
    }
    fn span(self) -> usize {
        match self {
            Opcode::Zero { len, .. } | Opcode::Val { len, .. } => len,
        }
    }
}

/// Decodes the opcode starting at `ops[at]`; `None` when an `XZERO` is cut off.
fn decode_opcode(ops: &[u8], at: usize) -> Option<Opcode> {
    let first = *ops.get(at)?;
    Some(match first >> 6 {
        0b00 => Opcode::Zero { len: usize::from(first & 0x3f) + 1, wide: false },
        0b01 => {
            let second = *ops.get(at + 1)?;
            let len = ((usize::from(first & 0x3f) << 8) | usize::from(second)) + 1;
            Opcode::Zero { len, wide: true }
        }
        _ => Opcode::Val { value: ((first >> 2) & 0x1f) + 1, len: usize::from(first & 0x3) + 1 },
    })
}

fn zero_op(len: usize) -> u8 {
    debug_assert!((1..=SPARSE_ZERO_MAX_LEN).contains(&len));
    (len - 1) as u8
}

fn xzero_op(len: usize) -> [u8; 2] {
    debug_assert!((1..=SPARSE_XZERO_MAX_LEN).contains(&len));
    let l = len - 1;
    [0x40 | ((l >> 8) as u8 & 0x3f), (l & 0xff) as u8]
}

fn val_op(value: u8, len: usize) -> u8 {
    debug_assert!((1..=SPARSE_VAL_MAX_VALUE).contains(&value));
    debug_assert!((1..=SPARSE_VAL_MAX_LEN).contains(&len));
    0x80 | ((value - 1) << 2) | (len - 1) as u8
}

/// Appends the shortest zero-run opcode Redis would pick for `len` registers.
fn push_zero_run(seq: &mut Vec<u8>, len: usize) {
    if len > SPARSE_ZERO_MAX_LEN {
        seq.extend_from_slice(&xzero_op(len));
    } else {
        seq.push(zero_op(len));
    }
}

fn dense_get(registers: &[u8], index: usize) -> u8 {
    let bit = index * REGISTER_BITS;
    let (byte, shift) = (bit / 8, bit % 8);
    let low = u16::from(registers.get(byte).copied().unwrap_or(0));
    let high = u16::from(registers.get(byte + 1).copied().unwrap_or(0));
    (((low | (high << 8)) >> shift) as u8) & REGISTER_MAX
}

fn dense_set(registers: &mut [u8], index: usize, value: u8) {
    let bit = index * REGISTER_BITS;
    let (byte, shift) = (bit / 8, bit % 8);
    let mask = u16::from(REGISTER_MAX) << shift;
    let bits = u16::from(value & REGISTER_MAX) << shift;
    if let Some(b) = registers.get_mut(byte) {
        *b = (*b & !(mask as u8)) | bits as u8;
    }
    // The last register never spills into a next byte (its shift is 2), so this is skipped there.
    if mask >> 8 != 0 {
        if let Some(b) = registers.get_mut(byte + 1) {
            *b = (*b & !((mask >> 8) as u8)) | (bits >> 8) as u8;
        }
    }
}

/// Ertl's sigma function (converges by iterating until the sum stops changing).
fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let previous = z;
        z += x * y;
        y += y;
        if previous == z {
            return z;
        }
    }
}

/// Ertl's tau function.
fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let previous = z;
        y *= 0.5;
        let d = 1.0 - x;
        z -= d * d * y;
        if previous == z {
            return z / 3.0;
        }
    }
}

/// The estimate from a histogram of register values (index = value, 0..=Q+1), computed in the
/// same floating-point order as Redis 7 so the result is identical.
fn estimate(histogram: &[u32; 64]) -> u64 {
    let m = REGISTERS as f64;
    let q = Q as usize;
    let mut z = m * tau((m - f64::from(histogram[q + 1])) / m);
    for j in (1..=q).rev() {
        z += f64::from(histogram[j]);
        z *= 0.5;
    }
    z += m * sigma(f64::from(histogram[0]) / m);
    // Round half away from zero, like llroundl; an empty HLL gives z = inf and so 0.
    (ALPHA_INF * m * m / z).round() as u64
}

/// A HyperLogLog held as its Redis string bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hll {
    /// The full Redis string: header, then dense registers or sparse opcodes. Always valid.
    bytes: Vec<u8>,
}

impl Default for Hll {
    fn default() -> Self {
        Self::new_sparse()
    }
}

impl Hll {
    /// An empty HLL as Redis creates it: sparse, one `XZERO` covering every register, cached
    /// cardinality 0 (valid). Note: `PFADD` on a missing key counts the creation as an update and
    /// so also calls [`Hll::invalidate_cache`], even with no elements; `PFMERGE` invalidates too.
    pub fn new_sparse() -> Hll {
        let mut bytes = Vec::with_capacity(HEADER_LEN + 2);
        bytes.extend_from_slice(MAGIC);
        bytes.push(ENCODING_SPARSE);
        bytes.extend_from_slice(&[0; 11]);
        bytes.extend_from_slice(&xzero_op(REGISTERS));
        Hll { bytes }
    }

    /// Parses and validates a Redis HLL string. Checks, in Redis's order: length ≥ header,
    /// magic, encoding, dense length; then that the sparse opcodes cover exactly 16384 registers.
    pub fn from_bytes(bytes: &[u8]) -> Result<Hll, HllError> {
        if bytes.len() < HEADER_LEN {
            return Err(HllError::NotHll("shorter than the header"));
        }
        if bytes.get(..4) != Some(MAGIC.as_slice()) {
            return Err(HllError::NotHll("bad magic"));
        }
        match bytes[4] {
            ENCODING_DENSE if bytes.len() != DENSE_LEN => {
                return Err(HllError::NotHll("dense HLL of the wrong length"))
            }
            ENCODING_DENSE => {}
            ENCODING_SPARSE => validate_sparse(&bytes[HEADER_LEN..])?,
            _ => return Err(HllError::NotHll("unknown encoding")),
        }
        Ok(Hll { bytes: bytes.to_vec() })
    }

    /// The Redis string bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The Redis string bytes, copied.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.bytes.clone()
    }

    /// The Redis string bytes, without a copy.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// True when the registers are stored densely.
    pub fn is_dense(&self) -> bool {
        self.bytes[4] == ENCODING_DENSE
    }

    /// Adds an element; true when a register changed (`PFADD`'s "altered"). A change invalidates
    /// the cached cardinality.
    pub fn add(&mut self, element: &[u8]) -> bool {
        let (index, value) = register_and_value(element);
        let changed = self.raise_register(index, value);
        if changed {
            self.invalidate_cache();
        }
        changed
    }

    /// The estimated cardinality (`PFCOUNT key`): served from the cache when valid, otherwise
    /// computed and stored in the cache (which changes the bytes, as in Redis).
    pub fn count(&mut self) -> u64 {
        if let Some(cached) = self.cached_count() {
            return cached;
        }
        let card = estimate(&self.histogram());
        self.bytes[8..16].copy_from_slice(&card.to_le_bytes());
        card
    }

    /// The cached cardinality, if valid.
    pub fn cached_count(&self) -> Option<u64> {
        if self.bytes[CARD_FLAG_BYTE] & CARD_INVALID_BIT != 0 {
            return None;
        }
        let mut card = [0u8; 8];
        card.copy_from_slice(&self.bytes[8..16]);
        Some(u64::from_le_bytes(card))
    }

    /// Marks the cached cardinality stale (sets only the flag bit, as Redis does).
    pub fn invalidate_cache(&mut self) {
        self.bytes[CARD_FLAG_BYTE] |= CARD_INVALID_BIT;
    }

    /// The estimated cardinality of the union of several HLLs (`PFCOUNT k1 k2 …`), without
    /// touching any cache.
    pub fn count_union(hlls: &[&Hll]) -> u64 {
        let mut max = [0u8; REGISTERS];
        for hll in hlls {
            hll.max_into(&mut max);
        }
        let mut histogram = [0u32; 64];
        for &v in max.iter() {
            histogram[usize::from(v)] += 1;
        }
        estimate(&histogram)
    }

    /// `PFMERGE`: sets `self` (the destination, which counts as a source too) to the
    /// register-wise maximum of itself and `sources`, then invalidates its cache. The result is
    /// dense if any source or `self` is dense; otherwise it stays sparse unless it outgrows
    /// [`SPARSE_MAX_BYTES`], exactly as Redis 7 writes it.
    pub fn merge_into(&mut self, sources: &[&Hll]) {
        let mut max = [0u8; REGISTERS];
        self.max_into(&mut max);
        let mut use_dense = self.is_dense();
        for source in sources {
            source.max_into(&mut max);
            use_dense |= source.is_dense();
        }
        if use_dense {
            self.promote_to_dense();
        }
        for (index, &value) in max.iter().enumerate() {
            if value != 0 {
                self.raise_register(index, value);
            }
        }
        self.invalidate_cache();
    }

    /// The union of `sources` in a fresh HLL, as `PFMERGE` into a missing key produces it.
    pub fn merged(sources: &[&Hll]) -> Hll {
        let mut out = Hll::new_sparse();
        out.merge_into(sources);
        out
    }

    /// Every register value, in index order.
    pub fn registers(&self) -> Vec<u8> {
        let mut max = vec![0u8; REGISTERS];
        if let Ok(array) = <&mut [u8; REGISTERS]>::try_from(max.as_mut_slice()) {
            self.max_into(array);
        }
        max
    }

    /// Raises each of `max`'s registers to this HLL's value where this one is larger.
    fn max_into(&self, max: &mut [u8; REGISTERS]) {
        let body = &self.bytes[HEADER_LEN..];
        if self.is_dense() {
            for (index, slot) in max.iter_mut().enumerate() {
                *slot = (*slot).max(dense_get(body, index));
            }
            return;
        }
        let mut index = 0;
        for op in SparseOps::new(body) {
            if let Opcode::Val { value, len } = op {
                for slot in max.iter_mut().skip(index).take(len) {
                    *slot = (*slot).max(value);
                }
            }
            index += op.span();
        }
    }

    fn histogram(&self) -> [u32; 64] {
        let mut histogram = [0u32; 64];
        let body = &self.bytes[HEADER_LEN..];
        if self.is_dense() {
            for index in 0..REGISTERS {
                histogram[usize::from(dense_get(body, index))] += 1;
            }
        } else {
            for op in SparseOps::new(body) {
                let value = match op {
                    Opcode::Zero { .. } => 0,
                    Opcode::Val { value, .. } => usize::from(value),
                };
                histogram[value] += op.span() as u32;
            }
        }
        histogram
    }

    /// Sets register `index` to `value` if larger; true when it changed. Does not touch the
    /// cache flag (callers decide), except that a sparse edit invalidates it as Redis does.
    fn raise_register(&mut self, index: usize, value: u8) -> bool {
        if self.is_dense() {
            let registers = &mut self.bytes[HEADER_LEN..];
            if dense_get(registers, index) >= value {
                return false;
            }
            dense_set(registers, index, value);
            return true;
        }
        self.sparse_raise(index, value)
    }

    /// The sparse update, step by step as Redis documents it: find the covering opcode; leave it
    /// if its value is already ≥ `value`; rewrite a length-1 opcode in place; otherwise split it
    /// into up to three opcodes (promoting to dense if that would exceed the size limit); then
    /// merge adjacent equal `VAL` opcodes around the edit.
    fn sparse_raise(&mut self, index: usize, value: u8) -> bool {
        if value > SPARSE_VAL_MAX_VALUE {
            return self.promote_and_set(index, value);
        }
        // Locate the opcode covering `index` (the string is valid, so it exists).
        let mut at = HEADER_LEN;
        let mut first = 0;
        let mut prev = None;
        let mut op = None;
        while let Some(candidate) = decode_opcode(&self.bytes, at) {
            if index < first + candidate.span() {
                op = Some(candidate);
                break;
            }
            prev = Some(at);
            at += candidate.byte_len();
            first += candidate.span();
        }
        let Some(op) = op else { return false };
        let last = first + op.span() - 1;

        let edited_in_place = match op {
            Opcode::Val { value: old, .. } if old >= value => return false,
            Opcode::Val { len: 1, .. } | Opcode::Zero { len: 1, wide: false } => {
                self.bytes[at] = val_op(value, 1);
                true
            }
            _ => false,
        };
        if !edited_in_place {
            let mut seq = Vec::with_capacity(5);
            match op {
                Opcode::Zero { .. } => {
                    if index != first {
                        push_zero_run(&mut seq, index - first);
                    }
                    seq.push(val_op(value, 1));
                    if index != last {
                        push_zero_run(&mut seq, last - index);
                    }
                }
                Opcode::Val { value: old, .. } => {
                    if index != first {
                        seq.push(val_op(old, index - first));
                    }
                    seq.push(val_op(value, 1));
                    if index != last {
                        seq.push(val_op(old, last - index));
                    }
                }
            }
            let old_len = op.byte_len();
            if seq.len() > old_len && self.bytes.len() + seq.len() - old_len > SPARSE_MAX_BYTES {
                return self.promote_and_set(index, value);
            }
            self.bytes.splice(at..at + old_len, seq);
        }
        self.merge_adjacent_vals(prev.unwrap_or(HEADER_LEN));
        self.invalidate_cache();
        true
    }

    /// Scans up to five opcodes from `start`, merging neighbouring `VAL`s of equal value whose
    /// combined length still fits one opcode.
    fn merge_adjacent_vals(&mut self, start: usize) {
        let mut at = start;
        let mut budget = 5;
        while at < self.bytes.len() && budget > 0 {
            budget -= 1;
            let Some(op) = decode_opcode(&self.bytes, at) else {
                return;
            };
            let Opcode::Val { value, len } = op else {
                at += op.byte_len();
                continue;
            };
            if let Some(Opcode::Val { value: next_value, len: next_len }) = decode_opcode(&self.bytes, at + 1) {
                if next_value == value && len + next_len <= SPARSE_VAL_MAX_LEN {
                    self.bytes[at + 1] = val_op(value, len + next_len);
                    self.bytes.remove(at);
                    // Stay on the merged opcode: it may merge with the next one too.
                    continue;
                }
            }
            at += 1;
        }
    }

    fn promote_and_set(&mut self, index: usize, value: u8) -> bool {
        self.promote_to_dense();
        dense_set(&mut self.bytes[HEADER_LEN..], index, value);
        true
    }

    /// Rewrites a sparse HLL densely, keeping the header (magic, unused bytes, cache).
    fn promote_to_dense(&mut self) {
        if self.is_dense() {
            return;
        }
        let mut dense = vec![0u8; DENSE_LEN];
        dense[..HEADER_LEN].copy_from_slice(&self.bytes[..HEADER_LEN]);
        dense[4] = ENCODING_DENSE;
        let mut index = 0;
        for op in SparseOps::new(&self.bytes[HEADER_LEN..]) {
            if let Opcode::Val { value, len } = op {
                for i in index..index + len {
                    dense_set(&mut dense[HEADER_LEN..], i, value);
                }
            }
            index += op.span();
        }
        self.bytes = dense;
    }
}

/// Iterates the opcodes of a (validated) sparse body.
struct SparseOps<'a> {
    ops: &'a [u8],
    at: usize,
}

impl<'a> SparseOps<'a> {
    fn new(ops: &'a [u8]) -> Self {
        SparseOps { ops, at: 0 }
    }
}

impl Iterator for SparseOps<'_> {
    type Item = Opcode;
    fn next(&mut self) -> Option<Opcode> {
        let op = decode_opcode(self.ops, self.at)?;
        self.at += op.byte_len();
        Some(op)
    }
}

fn validate_sparse(ops: &[u8]) -> Result<(), HllError> {
    let mut at = 0;
    let mut covered = 0usize;
    while at < ops.len() {
        let op = decode_opcode(ops, at).ok_or(HllError::Corrupted("truncated XZERO opcode"))?;
        covered += op.span();
        if covered > REGISTERS {
            return Err(HllError::Corrupted("sparse opcodes cover more than 16384 registers"));
        }
        at += op.byte_len();
    }
    if covered != REGISTERS {
        return Err(HllError::Corrupted("sparse opcodes cover fewer than 16384 registers"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_hll_bytes_and_count() {
        let mut hll = Hll::new_sparse();
        let mut expected = b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\0".to_vec();
        expected.extend_from_slice(&[0x7f, 0xff]);
        assert_eq!(hll.as_bytes(), expected.as_slice());
        assert_eq!(hll.count(), 0);
        assert_eq!(Hll::from_bytes(&expected), Ok(hll));
    }

    #[test]
    fn murmur_known_values() {
        // Values from the reference implementation (Appleby's MurmurHash64A).
        assert_eq!(murmur_hash64a(b"", 0), 0);
        let h1 = murmur_hash64a(b"hello", HASH_SEED);
        let h2 = murmur_hash64a(b"hello", HASH_SEED);
        assert_eq!(h1, h2);
        assert_ne!(murmur_hash64a(b"hello", 0), h1);
    }

    #[test]
    fn dense_register_round_trip() {
        let mut registers = vec![0u8; DENSE_LEN - HEADER_LEN];
        for i in 0..REGISTERS {
            dense_set(&mut registers, i, (i % 64) as u8);
        }
        for i in 0..REGISTERS {
            assert_eq!(dense_get(&registers, i), (i % 64) as u8, "register {i}");
        }
        dense_set(&mut registers, REGISTERS - 1, 0);
        assert_eq!(dense_get(&registers, REGISTERS - 1), 0);
        assert_eq!(dense_get(&registers, REGISTERS - 2), ((REGISTERS - 2) % 64) as u8);
    }

    #[test]
    fn sparse_and_dense_agree() {
        let mut sparse = Hll::new_sparse();
        let mut dense = Hll::new_sparse();
        dense.promote_to_dense();
        for i in 0..2000u32 {
            let element = i.to_le_bytes();
            assert_eq!(sparse.add(&element), dense.add(&element));
            assert_eq!(sparse.registers(), dense.registers(), "after {i}");
        }
        assert!(sparse.is_dense(), "2000 elements outgrow 3000 bytes");
        assert_eq!(sparse.count(), dense.count());
    }

    #[test]
    fn count_is_close() {
        let mut hll = Hll::new_sparse();
        for i in 0..100_000u32 {
            hll.add(format!("element:{i}").as_bytes());
        }
        let count = hll.count() as f64;
        assert!((count - 100_000.0).abs() / 100_000.0 < 0.03, "count {count}");
        assert_eq!(hll.cached_count(), Some(count as u64));
        assert!(!hll.add(b"element:5"));
        assert_eq!(hll.cached_count(), Some(count as u64));
    }

    #[test]
    fn rejects_bad_headers() {
        assert!(matches!(Hll::from_bytes(b"HYLL"), Err(HllError::NotHll(_))));
        let mut bytes = Hll::new_sparse().to_bytes();
        bytes[0] = b'X';
        assert!(matches!(Hll::from_bytes(&bytes), Err(HllError::NotHll(_))));
        let mut bytes = Hll::new_sparse().to_bytes();
        bytes[4] = 2;
        assert!(matches!(Hll::from_bytes(&bytes), Err(HllError::NotHll(_))));
        let mut bytes = Hll::new_sparse().to_bytes();
        bytes[4] = ENCODING_DENSE;
        assert!(matches!(Hll::from_bytes(&bytes), Err(HllError::NotHll(_))));
    }

    #[test]
    fn rejects_bad_sparse_bodies() {
        let header = &Hll::new_sparse().to_bytes()[..HEADER_LEN];
        let with = |ops: &[u8]| [header, ops].concat();
        // Too few registers, truncated XZERO, too many registers.
        for ops in [&[][..], &[0x7f][..], &[0x7f, 0xfe][..], &[0x7f, 0xff, 0x00][..]] {
            assert!(matches!(Hll::from_bytes(&with(ops)), Err(HllError::Corrupted(_))), "{ops:?}");
        }
        // A VAL that overflows the end.
        assert!(matches!(Hll::from_bytes(&with(&[0x7f, 0xfe, 0x81])), Err(HllError::Corrupted(_))));
        assert!(Hll::from_bytes(&with(&[0x7f, 0xfe, 0x80])).is_ok());
    }

    #[test]
    fn every_truncation_of_a_sparse_hll_is_rejected_or_valid() {
        let mut hll = Hll::new_sparse();
        for i in 0..200u32 {
            hll.add(&i.to_be_bytes());
        }
        let bytes = hll.to_bytes();
        for cut in 0..bytes.len() {
            assert!(Hll::from_bytes(&bytes[..cut]).is_err(), "cut {cut}");
        }
        let dense = {
            let mut d = hll.clone();
            d.promote_to_dense();
            d.to_bytes()
        };
        for cut in 0..dense.len() {
            assert!(Hll::from_bytes(&dense[..cut]).is_err(), "cut {cut}");
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        for _ in 0..20_000 {
            let len = rng.gen_range(16..80);
            let mut bytes: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            bytes[..4].copy_from_slice(MAGIC);
            bytes[4] = ENCODING_SPARSE;
            if let Ok(mut hll) = Hll::from_bytes(&bytes) {
                hll.add(b"x");
                hll.count();
                hll.merge_into(&[&Hll::new_sparse()]);
            }
        }
    }

    #[test]
    fn sparse_value_above_32_promotes() {
        let mut hll = Hll::new_sparse();
        hll.add(b"a");
        hll.add(b"b");
        let before = hll.registers();
        assert!(hll.raise_register(5, 33));
        assert!(hll.is_dense());
        let mut expected = before;
        expected[5] = 33;
        assert_eq!(hll.registers(), expected);
    }

    #[test]
    fn sparse_promotes_past_max_bytes() {
        let mut hll = Hll::new_sparse();
        let mut i = 0u32;
        while !hll.is_dense() {
            let sparse_len = hll.as_bytes().len();
            assert!(sparse_len <= SPARSE_MAX_BYTES, "{sparse_len}");
            hll.add(&i.to_le_bytes());
            i += 1;
        }
        assert_eq!(hll.as_bytes().len(), DENSE_LEN);
    }

    #[test]
    fn merge_takes_the_maximum() {
        let mut a = Hll::new_sparse();
        let mut b = Hll::new_sparse();
        for i in 0..500u32 {
            a.add(format!("a{i}").as_bytes());
            b.add(format!("b{i}").as_bytes());
        }
        let mut both = Hll::new_sparse();
        for i in 0..500u32 {
            both.add(format!("a{i}").as_bytes());
            both.add(format!("b{i}").as_bytes());
        }
        let mut merged = a.clone();
        merged.merge_into(&[&b]);
        assert_eq!(merged.registers(), both.registers());
        assert_eq!(merged.count(), both.count());
        assert_eq!(Hll::count_union(&[&a, &b]), both.count());
    }
}
