//! Writing RDB version 10 as Redis 7.0 writes it: strings integer-encoded or LZF-compressed as Redis
//! decides, hashes and small sorted sets as listpacks and integer sets as intsets by Redis 7.0's default
//! thresholds, lists as quicklist 2 nodes of at most 8 KiB, streams as listpacks v2 with their groups,
//! and the CRC64. [`payload`] builds a DUMP payload; [`RdbWriter`] a whole file.

use std::io::Write;

use bytes::Bytes;

use super::packed::{build_intset, canonical_int, ListpackBuilder};
use super::read::{
    T_HASH, T_HASH_LISTPACK, T_LIST_QUICKLIST_2, T_SET, T_SET_INTSET, T_STREAM_LISTPACKS_2, T_STRING, T_ZSET_2,
    T_ZSET_LISTPACK,
};
use super::{Value, CRC64, WRITE_VERSION};
use crate::types::stream::{StreamId, StreamValue};

/// Redis 7.0's `hash-max-listpack-entries`.
const HASH_MAX_LISTPACK_ENTRIES: usize = 512;
/// Redis 7.0's `hash-max-listpack-value` (also `zset-max-listpack-value`).
const MAX_LISTPACK_VALUE: usize = 64;
/// Redis 7.0's `zset-max-listpack-entries`.
const ZSET_MAX_LISTPACK_ENTRIES: usize = 128;
/// Redis 7.0's `set-max-intset-entries`.
const SET_MAX_INTSET_ENTRIES: usize = 512;
/// `list-max-listpack-size -2`: 8 KiB per quicklist node.
const LIST_NODE_BYTES: usize = 8 << 10;

/// Appends an RDB length.
pub fn put_len(out: &mut Vec<u8>, len: u64) {
    if len < 64 {
        out.push(len as u8);
    } else if len < 16_384 {
        out.push(0x40 | (len >> 8) as u8);
        out.push((len & 0xff) as u8);
    } else if len <= u32::MAX as u64 {
        out.push(0x80);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// Appends a string as Redis's `rdbSaveRawString` does: short decimal integers integer-encoded, strings
/// over 20 bytes LZF-compressed when `compress` and that saves at least 4 bytes.
pub fn put_string(out: &mut Vec<u8>, bytes: &[u8], compress: bool) {
    if bytes.len() <= 11 {
        if let Some(number) = canonical_int(bytes) {
            if let Ok(small) = i8::try_from(number) {
                out.push(0xc0);
                out.push(small as u8);
                return;
            } else if let Ok(small) = i16::try_from(number) {
                out.push(0xc1);
                out.extend_from_slice(&small.to_le_bytes());
                return;
            } else if let Ok(small) = i32::try_from(number) {
                out.push(0xc2);
                out.extend_from_slice(&small.to_le_bytes());
                return;
            }
        }
    }
    if compress && bytes.len() > 20 {
        if let Some(packed) = super::lzf::compress(bytes, bytes.len() - 4) {
            out.push(0xc3);
            put_len(out, packed.len() as u64);
            put_len(out, bytes.len() as u64);
            out.extend_from_slice(&packed);
            return;
        }
    }
    put_len(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A score as Redis 7.0's `d2string` writes it into a listpack: integers plainly, others as `%.17g`.
pub fn score_text(score: f64) -> String {
    if score.is_infinite() {
        return if score > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if score == 0.0 {
        return if score.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    // d2string's "safe to cast" range: (-(2^52 - 1), 2^52).
    if score.fract() == 0.0 && score > -4_503_599_627_370_495.0 && score < 4_503_599_627_370_496.0 {
        return format!("{}", score as i64);
    }
    format_g17(score)
}

/// C's `%.17g`.
fn format_g17(value: f64) -> String {
    let sci = format!("{value:.16e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let sign = if negative { "-" } else { "" };
    if (-4..17).contains(&exp) {
        let text = if exp >= 0 {
            let point = exp as usize + 1;
            if digits.len() <= point {
                format!("{digits}{}", "0".repeat(point - digits.len()))
            } else {
                format!("{}.{}", digits.get(..point).unwrap_or(digits), digits.get(point..).unwrap_or(""))
            }
        } else {
            format!("0.{}{digits}", "0".repeat((-exp - 1) as usize))
        };
        format!("{sign}{text}")
    } else {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        let rest = if rest.is_empty() { String::new() } else { format!(".{rest}") };
        let exp_sign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{first}{rest}e{exp_sign}{:02}", exp.abs())
    }
}

/// Which of Redis's two encodings a hash, set or sorted set is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Chosen from the content by Redis 7.0's default thresholds (a value read from a file, whose
    /// history is unknown; what Redis itself does on load).
    Defaults,
    /// The small encoding Redis still holds a collection in until a write outgrows it (listpack, or
    /// intset for a set of integers): a Velo collection never promoted (`cmd::encoding`).
    Small,
    /// The large one (hash table, skiplist): a promoted Velo collection.
    Large,
}

impl Shape {
    /// The shape an RDB type byte records: a file's listpack or intset is [`Shape::Small`], its hash
    /// table or skiplist [`Shape::Large`] (rewriting a file keeps each key's encoding).
    pub fn of_rdb_type(kind: u8) -> Shape {
        match kind {
            T_HASH_LISTPACK | T_ZSET_LISTPACK | T_SET_INTSET => Shape::Small,
            T_HASH | T_SET | T_ZSET_2 => Shape::Large,
            _ => Shape::Defaults,
        }
    }
}

/// Appends `value` in Redis 7.0's encoding and returns its RDB type byte.
pub fn put_value(out: &mut Vec<u8>, value: &Value, compress: bool) -> u8 {
    put_value_shaped(out, value, compress, Shape::Defaults)
}

/// [`put_value`] with a collection's encoding given by `shape`, as Redis writes the encoding it holds.
pub fn put_value_shaped(out: &mut Vec<u8>, value: &Value, compress: bool, shape: Shape) -> u8 {
    match value {
        Value::String(bytes) => {
            put_string(out, bytes, compress);
            T_STRING
        }
        Value::List(items) => {
            put_list(out, items.iter().map(|item| item.as_ref()), compress);
            T_LIST_QUICKLIST_2
        }
        Value::Set(members) => put_set(out, members, compress, shape),
        Value::SortedSet(members) => put_zset(out, members, compress, shape),
        Value::Hash(pairs) => put_hash(out, pairs, compress, shape),
        Value::Stream(stream) => {
            put_stream(out, stream, compress);
            T_STREAM_LISTPACKS_2
        }
    }
}

/// Appends a list as quicklist 2 nodes of listpacks (a node holds at most 8 KiB).
pub fn put_list<'a>(out: &mut Vec<u8>, items: impl Iterator<Item = &'a [u8]>, compress: bool) {
    let mut nodes: Vec<Vec<u8>> = Vec::new();
    let mut builder = ListpackBuilder::default();
    for item in items {
        // Encoding overhead of one entry is at most 11 bytes.
        if builder.count() > 0 && builder.size() + item.len() + 11 > LIST_NODE_BYTES {
            nodes.push(std::mem::take(&mut builder).finish());
        }
        builder.push(item);
    }
    if builder.count() > 0 {
        nodes.push(builder.finish());
    }
    put_len(out, nodes.len() as u64);
    for node in nodes {
        put_len(out, 2); // QUICKLIST_NODE_CONTAINER_PACKED
        put_string(out, &node, compress);
    }
}

fn put_set(out: &mut Vec<u8>, members: &[Bytes], compress: bool, shape: Shape) -> u8 {
    let intset_allowed = match shape {
        Shape::Defaults => members.len() <= SET_MAX_INTSET_ENTRIES,
        Shape::Small => true,
        Shape::Large => false,
    };
    if intset_allowed {
        let numbers: Option<Vec<i64>> = members.iter().map(|m| canonical_int(m)).collect();
        if let Some(numbers) = numbers {
            put_string(out, &build_intset(&numbers), compress);
            return T_SET_INTSET;
        }
    }
    put_len(out, members.len() as u64);
    for member in members {
        put_string(out, member, compress);
    }
    T_SET
}

fn put_zset(out: &mut Vec<u8>, members: &[(Bytes, f64)], compress: bool, shape: Shape) -> u8 {
    let mut sorted: Vec<&(Bytes, f64)> = members.iter().collect();
    sorted.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    let listpack = match shape {
        Shape::Defaults => {
            members.len() <= ZSET_MAX_LISTPACK_ENTRIES && members.iter().all(|(m, _)| m.len() <= MAX_LISTPACK_VALUE)
        }
        Shape::Small => true,
        Shape::Large => false,
    };
    if listpack {
        let mut builder = ListpackBuilder::default();
        for (member, score) in sorted {
            builder.push(member);
            builder.push(score_text(*score).as_bytes());
        }
        put_string(out, &builder.finish(), compress);
        return T_ZSET_LISTPACK;
    }
    // Redis writes the skiplist from its tail, so that loading inserts at the head.
    put_len(out, members.len() as u64);
    for (member, score) in sorted.into_iter().rev() {
        put_string(out, member, compress);
        out.extend_from_slice(&score.to_bits().to_le_bytes());
    }
    T_ZSET_2
}

fn put_hash(out: &mut Vec<u8>, pairs: &[(Bytes, Bytes)], compress: bool, shape: Shape) -> u8 {
    let small = match shape {
        Shape::Defaults => {
            pairs.len() <= HASH_MAX_LISTPACK_ENTRIES
                && pairs.iter().all(|(f, v)| f.len() <= MAX_LISTPACK_VALUE && v.len() <= MAX_LISTPACK_VALUE)
        }
        Shape::Small => true,
        Shape::Large => false,
    };
    if small {
        let mut builder = ListpackBuilder::default();
        for (field, value) in pairs {
            builder.push(field);
            builder.push(value);
        }
        put_string(out, &builder.finish(), compress);
        return T_HASH_LISTPACK;
    }
    put_len(out, pairs.len() as u64);
    for (field, value) in pairs {
        put_string(out, field, compress);
        put_string(out, value, compress);
    }
    T_HASH
}

fn raw_id(id: StreamId) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (slot, byte) in out.iter_mut().zip(id.ms.to_be_bytes().iter().chain(id.seq.to_be_bytes().iter())) {
        *slot = *byte;
    }
    out
}

fn put_id(out: &mut Vec<u8>, id: StreamId) {
    put_len(out, id.ms);
    put_len(out, id.seq);
}

/// Appends a stream as RDB_TYPE_STREAM_LISTPACKS_2: one listpack per node (live entries only, each
/// delta-encoded against the node's master entry), the counters, then the groups in name order.
pub fn put_stream(out: &mut Vec<u8>, stream: &StreamValue, compress: bool) {
    let nodes = stream.node_entries();
    let nodes: Vec<_> = nodes.into_iter().filter(|(_, entries)| !entries.is_empty()).collect();
    put_len(out, nodes.len() as u64);
    for (node, entries) in &nodes {
        let master = entries.first().map_or(node.master_id, |(first, _)| node.master_id.min(*first));
        let mut lp = ListpackBuilder::default();
        lp.push_int(entries.len() as i64);
        lp.push_int(0);
        lp.push_int(node.master_fields.len() as i64);
        for field in &node.master_fields {
            lp.push(field);
        }
        lp.push_int(0);
        for (id, fields) in entries {
            let same = fields.len() == node.master_fields.len()
                && fields.iter().zip(&node.master_fields).all(|((f, _), m)| f == m);
            lp.push_int(if same { 2 } else { 0 });
            lp.push_int(id.ms.wrapping_sub(master.ms) as i64);
            lp.push_int(id.seq.wrapping_sub(master.seq) as i64);
            if same {
                for (_, value) in fields {
                    lp.push(value);
                }
                lp.push_int(fields.len() as i64 + 3);
            } else {
                lp.push_int(fields.len() as i64);
                for (field, value) in fields {
                    lp.push(field);
                    lp.push(value);
                }
                lp.push_int(2 * fields.len() as i64 + 4);
            }
        }
        put_string(out, &raw_id(master), compress);
        put_string(out, &lp.finish(), compress);
    }
    put_len(out, stream.len() as u64);
    put_id(out, stream.last_id);
    put_id(out, stream.first_id());
    put_id(out, stream.max_deleted_id);
    put_len(out, stream.entries_added);
    put_len(out, stream.groups.len() as u64);
    for (name, group) in &stream.groups {
        put_string(out, name, compress);
        put_id(out, group.last_id);
        put_len(out, group.entries_read.unwrap_or(u64::MAX));
        put_len(out, group.pel.len() as u64);
        for (id, pending) in &group.pel {
            out.extend_from_slice(&raw_id(*id));
            out.extend_from_slice(&pending.delivery_time.to_le_bytes());
            put_len(out, pending.delivery_count);
        }
        put_len(out, group.consumers.len() as u64);
        for (consumer_name, consumer) in &group.consumers {
            put_string(out, consumer_name, compress);
            out.extend_from_slice(&consumer.seen_time.to_le_bytes());
            let owned: Vec<&StreamId> = group.pending_of(consumer_name).map(|(id, _)| id).collect();
            put_len(out, owned.len() as u64);
            for id in owned {
                out.extend_from_slice(&raw_id(*id));
            }
        }
    }
}

/// A DUMP payload of `value`: type byte, value, RDB version (2 bytes LE), CRC64 (8 bytes LE).
pub fn payload(value: &Value) -> Vec<u8> {
    payload_shaped(value, Shape::Defaults)
}

/// [`payload`] with a collection's encoding given by `shape` (DUMP of a stored key).
pub fn payload_shaped(value: &Value, shape: Shape) -> Vec<u8> {
    let mut out = vec![0u8];
    let kind = put_value_shaped(&mut out, value, true, shape);
    if let Some(first) = out.first_mut() {
        *first = kind;
    }
    out.extend_from_slice(&WRITE_VERSION.to_le_bytes());
    let crc = CRC64.checksum(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Writes an RDB file: header, aux fields, databases, keys, EOF and CRC64.
pub struct RdbWriter<W: Write> {
    out: W,
    digest: super::Crc64Digest,
    written: u64,
    buf: Vec<u8>,
    compress: bool,
}

impl<W: Write> RdbWriter<W> {
    /// Starts a file (`REDIS0010` and the aux fields Redis writes first). `compress`: Redis's
    /// `rdbcompression`.
    pub fn new(out: W, compress: bool) -> std::io::Result<RdbWriter<W>> {
        let mut writer = RdbWriter { out, digest: CRC64.digest(), written: 0, buf: Vec::new(), compress };
        writer.buf.extend_from_slice(format!("REDIS{WRITE_VERSION:04}").as_bytes());
        writer.aux(b"velo-ver", env!("CARGO_PKG_VERSION").as_bytes())?;
        writer.aux(b"redis-bits", b"64")?;
        let ctime = crate::engine::system_clock_ms() / 1000;
        writer.aux(b"ctime", ctime.to_string().as_bytes())?;
        writer.aux(b"aof-base", b"0")?;
        Ok(writer)
    }

    fn flush_buf(&mut self, force: bool) -> std::io::Result<()> {
        if force || self.buf.len() >= 1 << 16 {
            self.digest.update(&self.buf);
            self.out.write_all(&self.buf)?;
            self.written += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written + self.buf.len() as u64
    }

    /// An aux field.
    pub fn aux(&mut self, name: &[u8], value: &[u8]) -> std::io::Result<()> {
        self.buf.push(0xfa);
        put_string(&mut self.buf, name, false);
        put_string(&mut self.buf, value, false);
        self.flush_buf(false)
    }

    /// Switches to database `db`, with its size hints.
    pub fn select_db(&mut self, db: u64, keys: u64, expires: u64) -> std::io::Result<()> {
        self.buf.push(0xfe);
        put_len(&mut self.buf, db);
        self.buf.push(0xfb);
        put_len(&mut self.buf, keys);
        put_len(&mut self.buf, expires);
        self.flush_buf(false)
    }

    /// A function library (its source code).
    pub fn function(&mut self, code: &[u8]) -> std::io::Result<()> {
        self.buf.push(0xf5);
        put_string(&mut self.buf, code, self.compress);
        self.flush_buf(false)
    }

    /// A key with its value and absolute expiry (Unix ms), a collection's encoding chosen from its content
    /// by Redis 7.0's default thresholds.
    pub fn key(&mut self, key: &[u8], value: &Value, expire_ms: Option<u64>) -> std::io::Result<()> {
        self.key_shaped(key, value, expire_ms, Shape::Defaults)
    }

    /// [`RdbWriter::key`] with a collection's encoding given by `shape`: SAVE, BGSAVE, SYNC and
    /// `velo rdb-dump` write the encoding OBJECT ENCODING reports, as Redis writes the one it holds.
    pub fn key_shaped(
        &mut self,
        key: &[u8],
        value: &Value,
        expire_ms: Option<u64>,
        shape: Shape,
    ) -> std::io::Result<()> {
        if let Some(at) = expire_ms {
            self.buf.push(0xfc);
            self.buf.extend_from_slice(&at.to_le_bytes());
        }
        let type_at = self.buf.len();
        self.buf.push(0);
        put_string(&mut self.buf, key, self.compress);
        let kind = put_value_shaped(&mut self.buf, value, self.compress, shape);
        if let Some(slot) = self.buf.get_mut(type_at) {
            *slot = kind;
        }
        self.flush_buf(false)
    }

    /// Ends the file (EOF opcode and CRC64) and returns the output.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.buf.push(0xff);
        self.flush_buf(true)?;
        let crc = self.digest.finalize();
        self.out.write_all(&crc.to_le_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn g17_matches_c() {
        assert_eq!(format_g17(0.1), "0.10000000000000001");
        assert_eq!(format_g17(2.5), "2.5");
        assert_eq!(format_g17(1e308), "1.0000000000000000e+308".replace(".0000000000000000", ""));
        assert_eq!(format_g17(5e-324), "4.9406564584124654e-324");
        assert_eq!(format_g17(-0.5), "-0.5");
        assert_eq!(format_g17(0.30000000000000004), "0.30000000000000004");
        assert_eq!(format_g17(1e-5), "1.0000000000000001e-05");
        assert_eq!(score_text(1e10), "10000000000");
    }

    #[test]
    fn lengths() {
        let mut out = Vec::new();
        put_len(&mut out, 63);
        put_len(&mut out, 64);
        put_len(&mut out, 16_384);
        assert_eq!(out, vec![63, 0x40, 64, 0x80, 0, 0, 0x40, 0]);
    }
}
