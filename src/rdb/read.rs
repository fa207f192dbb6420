//! Reading RDB files (versions 1 to 12) and DUMP payloads. [`RdbReader`] walks a file item by item (aux
//! fields, database switches, keys with their expiry/idle/frequency, function libraries, skipped module
//! values) and checks the CRC64 at the end; [`read_payload`] decodes a DUMP payload after checking its
//! version and checksum. Every read is bounds-checked; errors carry the byte offset and the key.

use std::collections::{BTreeMap, HashSet};

use bytes::Bytes;

use super::packed::{self, Elem, Malformed};
use super::{RdbError, Value, CRC64, MAX_READ_VERSION};
use crate::types::stream::{Consumer, Group, Node, NodeEntry, Pending, StreamId, StreamValue};

type Result<T> = std::result::Result<T, RdbError>;

// Opcodes (rdb.h).
const OP_SLOT_INFO: u8 = 244;
const OP_FUNCTION2: u8 = 245;
const OP_FUNCTION_PRE_GA: u8 = 246;
const OP_MODULE_AUX: u8 = 247;
const OP_IDLE: u8 = 248;
const OP_FREQ: u8 = 249;
const OP_AUX: u8 = 250;
const OP_RESIZEDB: u8 = 251;
const OP_EXPIRETIME_MS: u8 = 252;
const OP_EXPIRETIME: u8 = 253;
const OP_SELECTDB: u8 = 254;
const OP_EOF: u8 = 255;

// Value types (rdb.h).
/// Plain string.
pub const T_STRING: u8 = 0;
/// Linked list (pre-3.2).
pub const T_LIST: u8 = 1;
/// Hash-table set.
pub const T_SET: u8 = 2;
/// Sorted set with scores as decimal strings (pre-RDB 8).
pub const T_ZSET: u8 = 3;
/// Hash-table hash.
pub const T_HASH: u8 = 4;
/// Sorted set with binary double scores.
pub const T_ZSET_2: u8 = 5;
const T_MODULE_PRE_GA: u8 = 6;
const T_MODULE_2: u8 = 7;
const T_HASH_ZIPMAP: u8 = 9;
const T_LIST_ZIPLIST: u8 = 10;
/// Intset set.
pub const T_SET_INTSET: u8 = 11;
const T_ZSET_ZIPLIST: u8 = 12;
const T_HASH_ZIPLIST: u8 = 13;
const T_LIST_QUICKLIST: u8 = 14;
const T_STREAM_LISTPACKS: u8 = 15;
/// Listpack hash (7.0).
pub const T_HASH_LISTPACK: u8 = 16;
/// Listpack sorted set (7.0).
pub const T_ZSET_LISTPACK: u8 = 17;
/// Quicklist of listpacks (7.0).
pub const T_LIST_QUICKLIST_2: u8 = 18;
/// Stream, listpacks v2 (7.0).
pub const T_STREAM_LISTPACKS_2: u8 = 19;
const T_SET_LISTPACK: u8 = 20;
const T_STREAM_LISTPACKS_3: u8 = 21;
const T_HASH_METADATA_PRE_GA: u8 = 22;
const T_HASH_LISTPACK_EX_PRE_GA: u8 = 23;
const T_HASH_METADATA: u8 = 24;
const T_HASH_LISTPACK_EX: u8 = 25;

const STREAM_ITEM_DELETED: i64 = 1;
const STREAM_ITEM_SAMEFIELDS: i64 = 2;

/// A bounds-checked cursor over RDB bytes.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Cursor<'a> {
        Cursor { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn pos(&self) -> usize {
        self.pos
    }

    fn corrupt(&self, what: impl Into<String>) -> RdbError {
        RdbError::Corrupt { offset: self.pos as u64, key: None, what: what.into() }
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|end| *end <= self.buf.len());
        let out =
            end.and_then(|end| self.buf.get(self.pos..end)).ok_or_else(|| self.corrupt("unexpected end of input"))?;
        self.pos += n;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?.first().copied().unwrap_or(0))
    }

    fn le(&mut self, n: usize) -> Result<u64> {
        Ok(self.take(n)?.iter().rev().fold(0u64, |acc, b| (acc << 8) | *b as u64))
    }

    fn be(&mut self, n: usize) -> Result<u64> {
        Ok(self.take(n)?.iter().fold(0u64, |acc, b| (acc << 8) | *b as u64))
    }

    /// A length, or (second field true) the code of a special string encoding.
    fn len_or_enc(&mut self) -> Result<(u64, bool)> {
        let first = self.u8()?;
        Ok(match first >> 6 {
            0 => ((first & 0x3f) as u64, false),
            1 => ((((first & 0x3f) as u64) << 8) | self.u8()? as u64, false),
            2 => match first {
                0x80 => (self.be(4)?, false),
                0x81 => (self.be(8)?, false),
                _ => return Err(self.corrupt(format!("unknown length encoding {first:#04x}"))),
            },
            _ => ((first & 0x3f) as u64, true),
        })
    }

    /// A length.
    pub fn length(&mut self) -> Result<u64> {
        let at = self.pos;
        match self.len_or_enc()? {
            (len, false) => Ok(len),
            (_, true) => Err(RdbError::Corrupt { offset: at as u64, key: None, what: "expected a length".into() }),
        }
    }

    /// A count of items each at least `min_size` bytes: one the rest of the input cannot hold is
    /// corrupt (so a damaged count never makes us allocate).
    fn count(&mut self, min_size: usize) -> Result<usize> {
        let at = self.pos;
        let count = self.length()?;
        if count.saturating_mul(min_size as u64) > self.remaining() as u64 {
            return Err(RdbError::Corrupt {
                offset: at as u64,
                key: None,
                what: format!("count {count} exceeds the remaining input"),
            });
        }
        Ok(count as usize)
    }

    /// A string in any encoding (raw, integer, LZF), owned.
    pub fn string(&mut self) -> Result<Bytes> {
        let mut scratch = Vec::new();
        self.string_ref(&mut scratch).map(Bytes::copy_from_slice)
    }

    /// [`Cursor::string`] without an allocation: a raw string is borrowed from the input, an encoded
    /// one (integer, LZF) is decoded into `scratch`.
    pub fn string_ref<'s>(&mut self, scratch: &'s mut Vec<u8>) -> Result<&'s [u8]>
    where
        'a: 's,
    {
        use std::io::Write as _;
        let at = self.pos;
        let (len, encoded) = self.len_or_enc()?;
        if !encoded {
            return self.take(usize::try_from(len).unwrap_or(usize::MAX));
        }
        scratch.clear();
        // (Writing a number into a vector cannot fail.)
        let _ = match len {
            0 => write!(scratch, "{}", self.le(1)? as u8 as i8),
            1 => write!(scratch, "{}", self.le(2)? as u16 as i16),
            2 => write!(scratch, "{}", self.le(4)? as u32 as i32),
            3 => {
                let compressed = self.length()?;
                let plain = self.length()?;
                if plain > (1 << 40) {
                    return Err(self.corrupt("LZF string too long"));
                }
                let data = self.take(usize::try_from(compressed).unwrap_or(usize::MAX))?;
                super::lzf::decompress_to(data, plain as usize, scratch).ok_or_else(|| RdbError::Corrupt {
                    offset: at as u64,
                    key: None,
                    what: "invalid LZF data".into(),
                })?;
                Ok(())
            }
            other => return Err(self.corrupt(format!("unknown string encoding {other}"))),
        };
        Ok(scratch)
    }

    /// A string read where a number is expected (stream IDs and counters are lengths).
    fn double_string(&mut self) -> Result<f64> {
        let len = self.u8()?;
        match len {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            _ => {
                let at = self.pos;
                let text = self.take(len as usize)?;
                parse_double(text).ok_or(RdbError::Corrupt {
                    offset: at as u64,
                    key: None,
                    what: "invalid score".into(),
                })
            }
        }
    }

    fn binary_double(&mut self) -> Result<f64> {
        Ok(f64::from_bits(self.le(8)?))
    }

    /// A blob string decoded by `decode`; a malformed blob reports the offset inside it.
    fn blob<T>(&mut self, what: &str, decode: impl FnOnce(&[u8]) -> std::result::Result<T, Malformed>) -> Result<T> {
        let start = self.pos;
        let blob = self.string()?;
        let data_start = self.pos.saturating_sub(blob.len());
        decode(&blob).map_err(|Malformed(inner, why)| RdbError::Corrupt {
            offset: (data_start.max(start) + inner) as u64,
            key: None,
            what: format!("{what}: {why}"),
        })
    }
}

fn parse_double(text: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(text).ok()?;
    match text {
        "inf" | "+inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        _ => text.parse::<f64>().ok(),
    }
}

fn now_ms() -> u64 {
    crate::engine::system_clock_ms()
}

/// One key read from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Database number as stored (before any mapping).
    pub db: u64,
    /// The key.
    pub key: Bytes,
    /// The value.
    pub value: Value,
    /// Absolute expiry, Unix ms.
    pub expire_ms: Option<i64>,
    /// LRU idle seconds, if stored.
    pub idle: Option<u64>,
    /// LFU frequency, if stored.
    pub freq: Option<u8>,
    /// Offset of the record in the file.
    pub offset: u64,
}

/// A string key read from a file without copies: key and value borrowed from the input, or decoded into
/// a [`Scratch`] when they were encoded ([`RdbReader::next_with`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StringRecord<'s> {
    /// Database number as stored (before any mapping).
    pub db: u64,
    /// The key.
    pub key: &'s [u8],
    /// The value.
    pub value: &'s [u8],
    /// Absolute expiry, Unix ms.
    pub expire_ms: Option<i64>,
    /// LRU idle seconds, if stored.
    pub idle: Option<u64>,
    /// LFU frequency, if stored.
    pub freq: Option<u8>,
    /// Offset of the record in the file.
    pub offset: u64,
}

impl StringRecord<'_> {
    /// The record with its own copies of key and value.
    pub fn to_record(&self) -> Record {
        Record {
            db: self.db,
            key: Bytes::copy_from_slice(self.key),
            value: Value::String(Bytes::copy_from_slice(self.value)),
            expire_ms: self.expire_ms,
            idle: self.idle,
            freq: self.freq,
            offset: self.offset,
        }
    }
}

/// Buffers [`RdbReader::next_with`] decodes encoded keys and values into, reused from key to key.
#[derive(Debug, Default)]
pub struct Scratch {
    key: Vec<u8>,
    value: Vec<u8>,
}

/// What [`RdbReader::next_with`] read: a string key (borrowed), or any other item.
#[derive(Debug, Clone, PartialEq)]
pub enum Next<'s> {
    /// A key holding a string.
    String(StringRecord<'s>),
    /// Anything else (other keys included).
    Item(Item),
}

/// What a file holds, item by item.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// An aux field.
    Aux {
        /// Its name.
        name: Bytes,
        /// Its value.
        value: Bytes,
    },
    /// Keys that follow belong to this database.
    SelectDb(u64),
    /// Size hints of the current database.
    ResizeDb {
        /// Keys.
        keys: u64,
        /// Keys with an expiry.
        expires: u64,
    },
    /// A function library (its source code).
    Function(Bytes),
    /// Module auxiliary data, skipped.
    ModuleAux {
        /// The module's name.
        module: String,
    },
    /// A key.
    Key(Record),
    /// A key holding a module value, skipped.
    ModuleKey {
        /// Database number.
        db: u64,
        /// The key.
        key: Bytes,
        /// The module's name.
        module: String,
    },
    /// A key holding an empty collection (as some Redis versions wrote), skipped as Redis skips it.
    EmptyKey {
        /// Database number.
        db: u64,
        /// The key.
        key: Bytes,
    },
    /// The end of the file.
    End {
        /// True when a checksum was stored and matched; false when none was stored (zero or pre-v5).
        checksum_verified: bool,
    },
}

/// Reads an RDB file item by item.
pub struct RdbReader<'a> {
    cur: Cursor<'a>,
    version: u16,
    db: u64,
    done: bool,
    /// The CRC64 of `cur.buf[..crc_upto]`, kept up as items are read, so that checking it at the end
    /// does not read the whole file again: a caller that maps the file can drop the pages behind the
    /// reader (`velo rdb-restore` does), and they stay dropped.
    crc: super::Crc64Digest,
    crc_upto: usize,
}

impl std::fmt::Debug for RdbReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RdbReader")
            .field("pos", &self.cur.pos)
            .field("version", &self.version)
            .field("db", &self.db)
            .field("done", &self.done)
            .field("crc_upto", &self.crc_upto)
            .finish()
    }
}

/// The running CRC64 is brought up to the reader's position once this many bytes are behind it.
const CRC_STEP: usize = 256 << 10;

impl<'a> RdbReader<'a> {
    /// Checks the header (`REDIS` and a version from 1 to 12).
    pub fn new(buf: &'a [u8]) -> Result<RdbReader<'a>> {
        let mut cur = Cursor::new(buf);
        let magic = cur.take(5).map_err(|_| cur.corrupt("not an RDB file (too short)"))?;
        if magic != b"REDIS" {
            return Err(RdbError::Corrupt { offset: 0, key: None, what: "not an RDB file (no REDIS magic)".into() });
        }
        let digits = cur.take(4)?;
        let version = std::str::from_utf8(digits).ok().and_then(|text| text.parse::<u16>().ok()).unwrap_or(0);
        if version == 0 || version > MAX_READ_VERSION {
            return Err(RdbError::Unsupported {
                offset: 5,
                key: None,
                what: format!(
                    "RDB version {} is not supported (1 to {MAX_READ_VERSION})",
                    String::from_utf8_lossy(digits)
                ),
            });
        }
        Ok(RdbReader { cur, version, db: 0, done: false, crc: CRC64.digest(), crc_upto: 0 })
    }

    /// The file's RDB version.
    pub fn version(&self) -> u16 {
        self.version
    }

    /// Bytes consumed so far.
    pub fn pos(&self) -> usize {
        self.cur.pos
    }

    /// The next item; `None` after [`Item::End`].
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Item>> {
        let mut scratch = Scratch::default();
        Ok(self.next_with(&mut scratch)?.map(|next| match next {
            Next::String(record) => Item::Key(record.to_record()),
            Next::Item(item) => item,
        }))
    }

    /// [`RdbReader::next`], with string keys handed out borrowed (from the input, or from `scratch` when
    /// encoded): a bulk restore copies them once, into its own buffers, and allocates nothing per key.
    pub fn next_with<'s>(&mut self, scratch: &'s mut Scratch) -> Result<Option<Next<'s>>>
    where
        'a: 's,
    {
        if self.done {
            return Ok(None);
        }
        if self.cur.pos.saturating_sub(self.crc_upto) >= CRC_STEP {
            self.crc_to(self.cur.pos);
        }
        let mut expire_ms = None;
        let mut idle = None;
        let mut freq = None;
        loop {
            let at = self.cur.pos;
            let op = self.cur.u8()?;
            match op {
                OP_EOF => {
                    self.done = true;
                    let checksum_verified = if self.version >= 5 { self.check_crc()? } else { false };
                    return Ok(Some(Next::Item(Item::End { checksum_verified })));
                }
                OP_SELECTDB => {
                    self.db = self.cur.length()?;
                    return Ok(Some(Next::Item(Item::SelectDb(self.db))));
                }
                OP_RESIZEDB => {
                    let keys = self.cur.length()?;
                    let expires = self.cur.length()?;
                    return Ok(Some(Next::Item(Item::ResizeDb { keys, expires })));
                }
                OP_AUX => {
                    let name = self.cur.string()?;
                    let value = self.cur.string()?;
                    return Ok(Some(Next::Item(Item::Aux { name, value })));
                }
                OP_EXPIRETIME_MS => expire_ms = Some(self.cur.le(8)? as i64),
                OP_EXPIRETIME => expire_ms = Some(self.cur.le(4)? as u32 as i32 as i64 * 1000),
                OP_IDLE => idle = Some(self.cur.length()?),
                OP_FREQ => freq = Some(self.cur.u8()?),
                OP_SLOT_INFO => {
                    for _ in 0..3 {
                        self.cur.length()?;
                    }
                }
                OP_FUNCTION2 => return Ok(Some(Next::Item(Item::Function(self.cur.string()?)))),
                OP_FUNCTION_PRE_GA => {
                    return Err(RdbError::Unsupported {
                        offset: at as u64,
                        key: None,
                        what: "function library of a Redis 7.0 release candidate".into(),
                    })
                }
                OP_MODULE_AUX => {
                    let module = module_name(self.cur.length()?);
                    let _when_opcode = self.cur.length()?;
                    let _when = self.cur.length()?;
                    skip_module_value(&mut self.cur)?;
                    return Ok(Some(Next::Item(Item::ModuleAux { module })));
                }
                T_STRING => {
                    let Scratch { key: key_scratch, value: value_scratch } = scratch;
                    let key = self.cur.string_ref(key_scratch)?;
                    let value = self.cur.string_ref(value_scratch).map_err(|e| e.with_key(key))?;
                    let db = self.db;
                    return Ok(Some(Next::String(StringRecord {
                        db,
                        key,
                        value,
                        expire_ms,
                        idle,
                        freq,
                        offset: at as u64,
                    })));
                }
                kind => {
                    let key = self.cur.string()?;
                    let db = self.db;
                    if kind == T_MODULE_2 {
                        let module = module_name(self.cur.length().map_err(|e| e.with_key(&key))?);
                        skip_module_value(&mut self.cur).map_err(|e| e.with_key(&key))?;
                        return Ok(Some(Next::Item(Item::ModuleKey { db, key, module })));
                    }
                    let value = read_value(&mut self.cur, kind).map_err(|e| e.with_key(&key))?;
                    return Ok(Some(Next::Item(match value {
                        Some(value) => Item::Key(Record { db, key, value, expire_ms, idle, freq, offset: at as u64 }),
                        None => Item::EmptyKey { db, key },
                    })));
                }
            }
        }
    }

    /// Brings the running CRC64 up to `end`.
    fn crc_to(&mut self, end: usize) {
        if end > self.crc_upto {
            self.crc.update(self.cur.buf.get(self.crc_upto..end).unwrap_or_default());
            self.crc_upto = end;
        }
    }

    /// Reads the 8-byte CRC64 after EOF and checks it (zero: not computed).
    fn check_crc(&mut self) -> Result<bool> {
        let end = self.cur.pos;
        let stored = self.cur.le(8)?;
        if stored == 0 {
            return Ok(false);
        }
        self.crc_to(end);
        let computed = std::mem::replace(&mut self.crc, CRC64.digest()).finalize();
        if computed != stored {
            return Err(RdbError::Checksum { stored, computed });
        }
        Ok(true)
    }
}

/// A module's 9-character name from its 64-bit type id (the low 10 bits are its encoding version).
pub fn module_name(id: u64) -> String {
    const CHARSET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..9)
        .map(|i| {
            let index = (id >> (64 - 6 * (i + 1))) & 63;
            CHARSET.get(index as usize).copied().unwrap_or(b'?') as char
        })
        .collect()
}

/// Skips a module value written with annotations (RDB_TYPE_MODULE_2 and module aux data).
fn skip_module_value(cur: &mut Cursor<'_>) -> Result<()> {
    loop {
        let at = cur.pos;
        match cur.length()? {
            0 => return Ok(()),
            1 | 2 => {
                cur.length()?;
            }
            3 => {
                cur.take(4)?;
            }
            4 => {
                cur.take(8)?;
            }
            5 => {
                cur.string()?;
            }
            other => {
                return Err(RdbError::Corrupt {
                    offset: at as u64,
                    key: None,
                    what: format!("unknown module value opcode {other}"),
                })
            }
        }
    }
}

/// Checks a DUMP payload's footer (RDB version and CRC64) and decodes its value. `Ok(None)`: an empty
/// collection, which Redis also refuses.
pub fn read_payload(payload: &[u8]) -> Result<Option<Value>> {
    let body_len = payload.len().checked_sub(10).ok_or(RdbError::Corrupt {
        offset: 0,
        key: None,
        what: "payload too short".into(),
    })?;
    let footer = payload.get(body_len..).unwrap_or_default();
    let version = footer.first().copied().unwrap_or(0) as u16 | (footer.get(1).copied().unwrap_or(0) as u16) << 8;
    if version > MAX_READ_VERSION {
        return Err(RdbError::Unsupported {
            offset: body_len as u64,
            key: None,
            what: format!("payload RDB version {version}"),
        });
    }
    let stored = footer.get(2..10).unwrap_or_default().iter().rev().fold(0u64, |acc, b| (acc << 8) | *b as u64);
    let computed = CRC64.checksum(payload.get(..body_len + 2).unwrap_or_default());
    if stored != computed {
        return Err(RdbError::Checksum { stored, computed });
    }
    // Like Redis, the value is read from the whole payload: it is not required to end where the footer
    // starts (what follows it is not looked at).
    let mut cur = Cursor::new(payload);
    let kind = cur.u8()?;
    if kind == T_MODULE_2 || kind == T_MODULE_PRE_GA {
        return Err(RdbError::Unsupported { offset: 0, key: None, what: "module value".into() });
    }
    read_value(&mut cur, kind)
}

fn malformed_at(cur: &Cursor<'_>, what: impl Into<String>) -> RdbError {
    cur.corrupt(what)
}

fn distinct<T>(cur: &Cursor<'_>, items: &[T], name: impl Fn(&T) -> &[u8], what: &str) -> Result<()> {
    let mut seen: HashSet<&[u8]> = HashSet::with_capacity(items.len());
    for item in items {
        if !seen.insert(name(item)) {
            return Err(malformed_at(cur, format!("duplicate {what}")));
        }
    }
    Ok(())
}

fn pairs(cur: &Cursor<'_>, elems: Vec<Elem>) -> Result<Vec<(Bytes, Bytes)>> {
    if !elems.len().is_multiple_of(2) {
        return Err(malformed_at(cur, "odd number of elements in a hash"));
    }
    let mut out = Vec::with_capacity(elems.len() / 2);
    let mut it = elems.into_iter();
    while let (Some(field), Some(value)) = (it.next(), it.next()) {
        out.push((field.into_bytes(), value.into_bytes()));
    }
    Ok(out)
}

fn scored(cur: &Cursor<'_>, elems: Vec<Elem>) -> Result<Vec<(Bytes, f64)>> {
    if !elems.len().is_multiple_of(2) {
        return Err(malformed_at(cur, "odd number of elements in a sorted set"));
    }
    let mut out = Vec::with_capacity(elems.len() / 2);
    let mut it = elems.into_iter();
    while let (Some(member), Some(score)) = (it.next(), it.next()) {
        let score = match score {
            Elem::Int(n) => n as f64,
            Elem::Str(text) => parse_double(&text).ok_or_else(|| malformed_at(cur, "invalid score"))?,
        };
        if score.is_nan() {
            return Err(malformed_at(cur, "NaN score"));
        }
        out.push((member.into_bytes(), score));
    }
    Ok(out)
}

/// Reads a value of RDB type `kind`; `None` for an empty collection.
pub fn read_value(cur: &mut Cursor<'_>, kind: u8) -> Result<Option<Value>> {
    let value = match kind {
        T_STRING => return Ok(Some(Value::String(cur.string()?))),
        T_LIST => {
            let count = cur.count(1)?;
            let mut items = Vec::with_capacity(count);
            for _ in 0..count {
                items.push(cur.string()?);
            }
            Value::List(items)
        }
        T_SET => {
            let count = cur.count(1)?;
            let mut items = Vec::with_capacity(count);
            for _ in 0..count {
                items.push(cur.string()?);
            }
            distinct(cur, &items, |m| m, "set member")?;
            Value::Set(items)
        }
        T_ZSET | T_ZSET_2 => {
            let count = cur.count(2)?;
            let mut items = Vec::with_capacity(count);
            for _ in 0..count {
                let member = cur.string()?;
                let score = if kind == T_ZSET { cur.double_string()? } else { cur.binary_double()? };
                if score.is_nan() {
                    return Err(cur.corrupt("NaN score"));
                }
                items.push((member, score));
            }
            distinct(cur, &items, |(m, _)| m, "sorted set member")?;
            Value::SortedSet(items)
        }
        T_HASH => {
            let count = cur.count(2)?;
            let mut items = Vec::with_capacity(count);
            for _ in 0..count {
                let field = cur.string()?;
                items.push((field, cur.string()?));
            }
            distinct(cur, &items, |(f, _)| f, "hash field")?;
            Value::Hash(items)
        }
        T_HASH_METADATA | T_HASH_METADATA_PRE_GA => read_hash_with_ttls(cur, kind)?,
        T_HASH_ZIPMAP => {
            let items = cur.blob("zipmap", packed::zipmap)?;
            distinct(cur, &items, |(f, _)| f, "hash field")?;
            Value::Hash(items)
        }
        T_LIST_ZIPLIST => {
            Value::List(cur.blob("ziplist", packed::ziplist)?.into_iter().map(Elem::into_bytes).collect())
        }
        T_SET_INTSET => {
            Value::Set(cur.blob("intset", packed::intset)?.into_iter().map(|n| Bytes::from(n.to_string())).collect())
        }
        T_SET_LISTPACK => {
            let items: Vec<Bytes> = cur.blob("listpack", packed::listpack)?.into_iter().map(Elem::into_bytes).collect();
            distinct(cur, &items, |m| m, "set member")?;
            Value::Set(items)
        }
        T_ZSET_ZIPLIST | T_ZSET_LISTPACK => {
            let elems = if kind == T_ZSET_ZIPLIST {
                cur.blob("ziplist", packed::ziplist)?
            } else {
                cur.blob("listpack", packed::listpack)?
            };
            let items = scored(cur, elems)?;
            distinct(cur, &items, |(m, _)| m, "sorted set member")?;
            Value::SortedSet(items)
        }
        T_HASH_ZIPLIST | T_HASH_LISTPACK => {
            let elems = if kind == T_HASH_ZIPLIST {
                cur.blob("ziplist", packed::ziplist)?
            } else {
                cur.blob("listpack", packed::listpack)?
            };
            let items = pairs(cur, elems)?;
            distinct(cur, &items, |(f, _)| f, "hash field")?;
            Value::Hash(items)
        }
        T_HASH_LISTPACK_EX | T_HASH_LISTPACK_EX_PRE_GA => {
            if kind == T_HASH_LISTPACK_EX {
                let _min_expire = cur.le(8)?;
            }
            let elems = cur.blob("listpack", packed::listpack)?;
            if !elems.len().is_multiple_of(3) {
                return Err(cur.corrupt("listpack of a hash with field expiries is not in triples"));
            }
            let mut items = Vec::with_capacity(elems.len() / 3);
            let mut it = elems.into_iter();
            while let (Some(field), Some(value), Some(ttl)) = (it.next(), it.next(), it.next()) {
                let ttl = ttl.as_int().ok_or_else(|| cur.corrupt("field expiry is not an integer"))?;
                if field_expiry_kept(cur, ttl.max(0) as u64)? {
                    items.push((field.into_bytes(), value.into_bytes()));
                }
            }
            distinct(cur, &items, |(f, _)| f, "hash field")?;
            Value::Hash(items)
        }
        T_LIST_QUICKLIST => {
            let nodes = cur.count(1)?;
            let mut items = Vec::new();
            for _ in 0..nodes {
                items.extend(cur.blob("ziplist", packed::ziplist)?.into_iter().map(Elem::into_bytes));
            }
            Value::List(items)
        }
        T_LIST_QUICKLIST_2 => {
            let nodes = cur.count(2)?;
            let mut items = Vec::new();
            for _ in 0..nodes {
                let container = cur.length()?;
                match container {
                    1 => items.push(cur.string()?),
                    2 => items.extend(cur.blob("listpack", packed::listpack)?.into_iter().map(Elem::into_bytes)),
                    _ => return Err(cur.corrupt(format!("unknown quicklist container {container}"))),
                }
            }
            Value::List(items)
        }
        T_STREAM_LISTPACKS | T_STREAM_LISTPACKS_2 | T_STREAM_LISTPACKS_3 => {
            return Ok(Some(Value::Stream(Box::new(read_stream(cur, kind)?))))
        }
        T_MODULE_PRE_GA | T_MODULE_2 => {
            return Err(RdbError::Unsupported { offset: cur.pos as u64, key: None, what: "module value".into() })
        }
        other => return Err(cur.corrupt(format!("unknown value type {other}"))),
    };
    let empty = match &value {
        Value::List(items) | Value::Set(items) => items.is_empty(),
        Value::SortedSet(items) => items.is_empty(),
        Value::Hash(items) => items.is_empty(),
        Value::String(_) | Value::Stream(_) => false,
    };
    Ok((!empty).then_some(value))
}

/// Whether a hash field with absolute expiry `expire_at` (0: none) is kept: a field already expired is
/// dropped (as Redis drops it on load); one that would expire later cannot be held by Velo.
fn field_expiry_kept(cur: &Cursor<'_>, expire_at: u64) -> Result<bool> {
    if expire_at == 0 {
        return Ok(true);
    }
    if expire_at <= now_ms() {
        return Ok(false);
    }
    Err(RdbError::Unsupported {
        offset: cur.pos as u64,
        key: None,
        what: "hash field with an expiry (Redis 7.4 HEXPIRE); Velo has no per-field expiry".into(),
    })
}

fn read_hash_with_ttls(cur: &mut Cursor<'_>, kind: u8) -> Result<Value> {
    let min_expire = if kind == T_HASH_METADATA { cur.le(8)? } else { 0 };
    let count = cur.count(3)?;
    let mut items = Vec::with_capacity(count);
    for _ in 0..count {
        let ttl = cur.length()?;
        let expire_at = match (kind, ttl) {
            (_, 0) => 0,
            (T_HASH_METADATA, ttl) => ttl.saturating_add(min_expire).saturating_sub(1),
            (_, ttl) => ttl,
        };
        let field = cur.string()?;
        let value = cur.string()?;
        if field_expiry_kept(cur, expire_at)? {
            items.push((field, value));
        }
    }
    distinct(cur, &items, |(f, _)| f, "hash field")?;
    Ok(Value::Hash(items))
}

fn raw_id(cur: &mut Cursor<'_>) -> Result<StreamId> {
    Ok(StreamId::new(cur.be(8)?, cur.be(8)?))
}

fn len_id(cur: &mut Cursor<'_>) -> Result<StreamId> {
    Ok(StreamId::new(cur.length()?, cur.length()?))
}

/// Reads a stream (listpacks v1, v2 or v3) into Velo's stream value, nodes as Redis had them.
fn read_stream(cur: &mut Cursor<'_>, kind: u8) -> Result<StreamValue> {
    let node_count = cur.count(2)?;
    let mut nodes: Vec<(Node, Vec<NodeEntry>)> = Vec::new();
    let mut previous_last: Option<StreamId> = None;
    for _ in 0..node_count {
        let key_at = cur.pos;
        let node_key = cur.string()?;
        if node_key.len() != 16 {
            return Err(RdbError::Corrupt {
                offset: key_at as u64,
                key: None,
                what: "stream node key is not 16 bytes".into(),
            });
        }
        let master_id = raw_id(&mut Cursor::new(&node_key))?;
        let lp_at = cur.pos;
        let raw = cur.string()?;
        let data_at = cur.pos.saturating_sub(raw.len());
        let elems = packed::listpack(&raw).map_err(|Malformed(inner, why)| RdbError::Corrupt {
            offset: (data_at + inner) as u64,
            key: None,
            what: format!("stream listpack: {why}"),
        })?;
        let bad =
            |what: &str| RdbError::Corrupt { offset: lp_at as u64, key: None, what: format!("stream node: {what}") };
        let mut it = elems.into_iter();
        let int = |it: &mut std::vec::IntoIter<Elem>, what: &str| -> Result<i64> {
            it.next().and_then(|e| e.as_int()).ok_or_else(|| bad(what))
        };
        let live = int(&mut it, "missing entry count")?;
        let deleted = int(&mut it, "missing deleted count")?;
        let field_count = int(&mut it, "missing master field count")?;
        if live < 0 || deleted < 0 || field_count < 0 {
            return Err(bad("negative count"));
        }
        let mut master_fields = Vec::new();
        for _ in 0..field_count {
            master_fields.push(it.next().ok_or_else(|| bad("missing master field"))?.into_bytes());
        }
        if int(&mut it, "missing master terminator")? != 0 {
            return Err(bad("bad master entry terminator"));
        }
        let mut entries: Vec<NodeEntry> = Vec::new();
        let mut placed = 0u64;
        let mut last_id = master_id;
        let mut seen_deleted = 0i64;
        while it.len() > 0 {
            let flags = int(&mut it, "missing entry flags")?;
            let ms_diff = int(&mut it, "missing entry id")?;
            let seq_diff = int(&mut it, "missing entry id")?;
            let id = StreamId::new(
                master_id.ms.checked_add(ms_diff as u64).ok_or_else(|| bad("entry id overflows"))?,
                master_id.seq.wrapping_add(seq_diff as u64),
            );
            let mut fields = Vec::new();
            let lp_count = if flags & STREAM_ITEM_SAMEFIELDS != 0 {
                for field in &master_fields {
                    fields.push((field.clone(), it.next().ok_or_else(|| bad("missing value"))?.into_bytes()));
                }
                master_fields.len() as i64 + 3
            } else {
                let n = int(&mut it, "missing field count")?;
                if n < 0 || n as usize > it.len() {
                    return Err(bad("bad field count"));
                }
                for _ in 0..n {
                    let field = it.next().ok_or_else(|| bad("missing field"))?.into_bytes();
                    fields.push((field, it.next().ok_or_else(|| bad("missing value"))?.into_bytes()));
                }
                2 * n + 4
            };
            if int(&mut it, "missing entry back-count")? != lp_count {
                return Err(bad("entry back-count is wrong"));
            }
            if previous_last.is_some_and(|prev| id <= prev) || (placed > 0 && id <= last_id) {
                return Err(bad("entry IDs are not ascending"));
            }
            placed += 1;
            last_id = id;
            if flags & STREAM_ITEM_DELETED != 0 {
                seen_deleted += 1;
            } else {
                entries.push((id, fields));
            }
        }
        if entries.len() as i64 != live || seen_deleted != deleted {
            return Err(bad("entry counts do not match the master entry"));
        }
        if placed == 0 {
            return Err(bad("empty listpack"));
        }
        previous_last = Some(last_id);
        if entries.is_empty() {
            continue;
        }
        let node =
            Node { master_id, master_fields, bytes: raw.len() as u64, last_id, placed, live: entries.len() as u64 };
        nodes.push((node, entries));
    }
    let length = cur.length()?;
    let last_id = len_id(cur)?;
    let mut meta = StreamValue::default();
    meta.last_id = last_id;
    if kind >= T_STREAM_LISTPACKS_2 {
        let _first_id = len_id(cur)?;
        meta.max_deleted_id = len_id(cur)?;
        meta.entries_added = cur.length()?;
    } else {
        meta.entries_added = length;
    }
    let live: u64 = nodes.iter().map(|(_, entries)| entries.len() as u64).sum();
    if live != length {
        return Err(cur.corrupt(format!("stream length {length} but {live} entries")));
    }
    if previous_last.is_some_and(|top| top > last_id) {
        return Err(cur.corrupt("stream last ID is below its entries"));
    }
    let mut value = StreamValue::from_node_entries(meta, nodes);
    let group_count = cur.count(3)?;
    for _ in 0..group_count {
        let name = cur.string()?;
        let group_last = len_id(cur)?;
        let entries_read = if kind >= T_STREAM_LISTPACKS_2 {
            match cur.length()? {
                u64::MAX => None,
                n => Some(n),
            }
        } else {
            value.estimate_entries_read(value.extent(), group_last)
        };
        let mut group = Group { last_id: group_last, entries_read, pel: BTreeMap::new(), consumers: BTreeMap::new() };
        let pel_count = cur.count(17)?;
        let mut unowned: BTreeMap<StreamId, (u64, u64)> = BTreeMap::new();
        for _ in 0..pel_count {
            let id = raw_id(cur)?;
            let delivery_time = cur.le(8)?;
            let delivery_count = cur.length()?;
            if unowned.insert(id, (delivery_time, delivery_count)).is_some() {
                return Err(cur.corrupt("duplicate pending entry"));
            }
        }
        let consumer_count = cur.count(9)?;
        for _ in 0..consumer_count {
            let consumer_name = cur.string()?;
            let seen_time = cur.le(8)?;
            let active_time = if kind >= T_STREAM_LISTPACKS_3 { Some(cur.le(8)?) } else { None };
            if group.consumers.insert(consumer_name.clone(), Consumer { seen_time, active_time }).is_some() {
                return Err(cur.corrupt("duplicate consumer"));
            }
            let owned = cur.count(16)?;
            for _ in 0..owned {
                let id = raw_id(cur)?;
                let (delivery_time, delivery_count) =
                    unowned.remove(&id).ok_or_else(|| cur.corrupt("consumer pending entry not in the group's list"))?;
                group.pel.insert(id, Pending { consumer: consumer_name.clone(), delivery_time, delivery_count });
            }
        }
        if !unowned.is_empty() {
            return Err(cur.corrupt("pending entry without a consumer"));
        }
        if value.groups.insert(name, group).is_some() {
            return Err(cur.corrupt("duplicate consumer group"));
        }
    }
    Ok(value)
}
