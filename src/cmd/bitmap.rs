//! Bitmaps: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD, BITFIELD_RO.
//!
//! Bits are numbered from the most significant bit of byte 0, as in Redis. Writes run under the key's
//! slot lock; BITOP locks the destination's and every source's slot in ascending order.

use bytes::Bytes;

use super::args::parse_i64;
use super::string::{as_string, check_length};
use super::{commit_all, guard_for, Args, CmdError, Ctx};
use crate::engine::StringEncoding;
use crate::resp::Reply;
use crate::server::notify as ev;

fn bit_offset_error() -> CmdError {
    CmdError::err("bit offset is not an integer or out of range")
}

/// Parses a bit offset (`#n` multiplies by `bits` when `hash_allowed`); Redis limits it to 512 MiB of bytes.
fn parse_offset(arg: &[u8], hash_allowed: bool, bits: u64) -> Result<u64, CmdError> {
    let (multiplier, digits) = match arg.split_first() {
        Some((b'#', rest)) if hash_allowed => (bits, rest),
        _ => (1, arg),
    };
    let value = parse_i64(digits).filter(|&n| n >= 0).ok_or_else(bit_offset_error)? as u64;
    let offset = value.checked_mul(multiplier).ok_or_else(bit_offset_error)?;
    if offset >> 3 >= super::string::MAX_STRING {
        return Err(bit_offset_error());
    }
    Ok(offset)
}

fn get_bit(value: &[u8], offset: u64) -> u8 {
    let byte = (offset >> 3) as usize;
    value.get(byte).map_or(0, |b| (b >> (7 - (offset & 7))) & 1)
}

fn set_bit(value: &mut [u8], offset: u64, bit: u8) {
    let byte = (offset >> 3) as usize;
    let mask = 1u8 << (7 - (offset & 7));
    if bit == 1 {
        value[byte] |= mask;
    } else {
        value[byte] &= !mask;
    }
}

/// ```text
/// SETBIT key offset value
/// ```
pub fn setbit(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let offset = parse_offset(&args.next_bytes()?, false, 1)?;
    let bit = match args.next_bytes()?.as_ref() {
        b"0" => 0,
        b"1" => 1,
        _ => return Err(CmdError::err("bit is not an integer or out of range")),
    };
    let db = ctx.db();
    let mut slot = ctx.engine.lock_key(&key);
    let existing = as_string(slot.get(db, &key)?)?;
    let (mut value, expire, created) = match &existing {
        Some(entry) => (entry.value.to_vec(), entry.expire_at_ms, false),
        None => (Vec::new(), None, true),
    };
    let needed = (offset >> 3) as usize + 1;
    let grown = value.len() < needed;
    if grown {
        value.resize(needed, 0);
    }
    let old = get_bit(&value, offset);
    // As Redis: a bit set to what it was, in a string that neither appeared nor grew, changes nothing
    // (no write, no WATCH signal, no event).
    if !created && !grown && old == bit {
        if let Some(entry) = &existing {
            super::string::unshare(&mut slot, db, &key, entry)?;
            slot.commit()?;
        }
        return Ok(Reply::Int(old.into()));
    }
    set_bit(&mut value, offset, bit);
    slot.set_string(db, &key, &value, StringEncoding::Raw, expire)?;
    slot.commit()?;
    ctx.touch(db, &key);
    ctx.notify_new(created, db, &key);
    ctx.notify(ev::STRING, "setbit", db, &key);
    Ok(Reply::Int(old.into()))
}

/// ```text
/// GETBIT key offset
/// ```
pub fn getbit(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let offset = parse_offset(&args.next_bytes()?, false, 1)?;
    let value = as_string(ctx.engine.get(ctx.db(), &key)?)?.map(|e| e.value).unwrap_or_default();
    Ok(Reply::Int(get_bit(&value, offset).into()))
}

/// A byte range with the bits to exclude from its first and last byte (BIT mode).
struct Range {
    start: usize,
    end: usize,
    first_mask: u8,
    last_mask: u8,
}

/// Resolves `start`/`end` (negative from the end) in bytes or bits over a string of `len` bytes; `None`
/// when the range is empty.
fn resolve_range(len: usize, mut start: i64, mut end: i64, bits: bool) -> Option<Range> {
    let total = if bits { len as i64 * 8 } else { len as i64 };
    if start < 0 {
        start += total;
    }
    if end < 0 {
        end += total;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= total {
        end = total - 1;
    }
    if start > end || total == 0 {
        return None;
    }
    if bits {
        let first_mask = !((1u16 << (8 - (start & 7))) - 1) as u8;
        let last_mask = ((1u16 << (7 - (end & 7))) - 1) as u8;
        Some(Range { start: (start >> 3) as usize, end: (end >> 3) as usize, first_mask, last_mask })
    } else {
        Some(Range { start: start as usize, end: end as usize, first_mask: 0, last_mask: 0 })
    }
}

fn bit_mode(args: &mut Args) -> Result<bool, CmdError> {
    if args.is_empty() {
        return Ok(false);
    }
    match args.next_upper()?.as_str() {
        "BYTE" => Ok(false),
        "BIT" => Ok(true),
        _ => Err(CmdError::Syntax),
    }
}

/// ```text
/// BITCOUNT key [start end [BYTE | BIT]]
/// ```
pub fn bitcount(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let Some(entry) = as_string(ctx.engine.get(ctx.db(), &key)?)? else {
        return Ok(Reply::Int(0));
    };
    let value = entry.value;
    let range = match args.remaining() {
        0 => resolve_range(value.len(), 0, -1, false),
        2 | 3 => {
            let start = args.next_i64()?;
            let end = args.next_i64()?;
            let bits = bit_mode(args)?;
            if start < 0 && end < 0 && start > end {
                return Ok(Reply::Int(0));
            }
            resolve_range(value.len(), start, end, bits)
        }
        _ => return Err(CmdError::Syntax),
    };
    let Some(range) = range else { return Ok(Reply::Int(0)) };
    let mut count: i64 = value[range.start..=range.end].iter().map(|b| b.count_ones() as i64).sum();
    count -= (value[range.start] & range.first_mask).count_ones() as i64;
    count -= (value[range.end] & range.last_mask).count_ones() as i64;
    Ok(Reply::Int(count))
}

/// ```text
/// BITPOS key bit [start [end [BYTE | BIT]]]
/// ```
pub fn bitpos(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let bit = args.next_i64()?;
    if bit != 0 && bit != 1 {
        return Err(CmdError::err("The bit argument must be 1 or 0."));
    }
    let Some(entry) = as_string(ctx.engine.get(ctx.db(), &key)?)? else {
        return Ok(Reply::Int(if bit == 1 { -1 } else { 0 }));
    };
    let value = entry.value;
    let mut end_given = false;
    let range = match args.remaining() {
        0 => resolve_range(value.len(), 0, -1, false),
        1..=3 => {
            let start = args.next_i64()?;
            let end = if args.is_empty() {
                None
            } else {
                end_given = true;
                Some(args.next_i64()?)
            };
            let bits = bit_mode(args)?;
            let end = end.unwrap_or(if bits { value.len() as i64 * 8 - 1 } else { value.len() as i64 - 1 });
            resolve_range(value.len(), start, end, bits)
        }
        _ => return Err(CmdError::Syntax),
    };
    let Some(range) = range else { return Ok(Reply::Int(-1)) };
    let mut bytes = value[range.start..=range.end].to_vec();
    let last = bytes.len() - 1;
    if bit == 1 {
        bytes[0] &= !range.first_mask;
        bytes[last] &= !range.last_mask;
    } else {
        bytes[0] |= range.first_mask;
        bytes[last] |= range.last_mask;
    }
    let skip = if bit == 1 { 0x00 } else { 0xFF };
    let found = bytes.iter().position(|&b| b != skip).map(|i| {
        let b = bytes[i];
        let within = if bit == 1 { b.leading_zeros() } else { b.leading_ones() };
        i as i64 * 8 + within as i64
    });
    Ok(Reply::Int(match found {
        Some(pos) => pos + range.start as i64 * 8,
        None if bit == 1 => -1,
        None if end_given => -1,
        None => (range.end as i64 + 1) * 8,
    }))
}

/// ```text
/// BITOP AND | OR | XOR | NOT destkey key [key ...]
/// ```
pub fn bitop(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let op = args.next_upper()?;
    if !["AND", "OR", "XOR", "NOT"].contains(&op.as_str()) {
        return Err(CmdError::Syntax);
    }
    let dest = args.next_bytes()?;
    let sources = args.rest();
    if op == "NOT" && sources.len() != 1 {
        return Err(CmdError::err("BITOP NOT must be called with a single source key."));
    }
    let db = ctx.db();
    let mut keys: Vec<&[u8]> = sources.iter().map(|k| k.as_ref()).collect();
    keys.push(&dest);
    let mut guards = ctx.lock_slots(&keys);
    let mut values = Vec::with_capacity(sources.len());
    for key in &sources {
        values.push(
            as_string(guard_for(&mut guards, ctx.engine, key).get(db, key)?)?.map(|e| e.value).unwrap_or_default(),
        );
    }
    let len = values.iter().map(Bytes::len).max().unwrap_or(0);
    let mut result = vec![0u8; len];
    for (i, out) in result.iter_mut().enumerate() {
        let byte = |v: &Bytes| v.get(i).copied().unwrap_or(0);
        *out = match op.as_str() {
            "NOT" => !byte(&values[0]),
            "AND" => values.iter().map(byte).fold(0xFF, |a, b| a & b),
            "OR" => values.iter().map(byte).fold(0, |a, b| a | b),
            _ => values.iter().map(byte).fold(0, |a, b| a ^ b),
        };
    }
    let dest_slot = guard_for(&mut guards, ctx.engine, &dest);
    let mut created = false;
    let event = if result.is_empty() {
        dest_slot.delete(db, &dest)?.then_some((ev::GENERIC, "del"))
    } else {
        created = ctx.wants_lookup() && dest_slot.key_info(db, &dest)?.is_none();
        dest_slot.set_string(db, &dest, &result, StringEncoding::Raw, None)?;
        Some((ev::STRING, "set"))
    };
    commit_all(guards)?;
    ctx.touch(db, &dest);
    ctx.notify_new(created, db, &dest);
    if let Some((class, event)) = event {
        ctx.notify(class, event, db, &dest);
    }
    Ok(Reply::Int(len as i64))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy)]
struct FieldType {
    signed: bool,
    bits: u32,
}

enum FieldOp {
    Get(FieldType, u64),
    Set(FieldType, u64, i64, Overflow),
    IncrBy(FieldType, u64, i64, Overflow),
}

fn parse_type(arg: &[u8]) -> Result<FieldType, CmdError> {
    let invalid = || {
        CmdError::err("Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.")
    };
    let (signed, digits) = match arg.split_first() {
        Some((b'i' | b'I', rest)) => (true, rest),
        Some((b'u' | b'U', rest)) => (false, rest),
        _ => return Err(invalid()),
    };
    let bits = parse_i64(digits).ok_or_else(invalid)?;
    if bits < 1 || (signed && bits > 64) || (!signed && bits > 63) {
        return Err(invalid());
    }
    Ok(FieldType { signed, bits: bits as u32 })
}

fn read_field(value: &[u8], offset: u64, ty: FieldType) -> i64 {
    let mut raw: u64 = 0;
    for i in 0..u64::from(ty.bits) {
        raw = (raw << 1) | u64::from(get_bit(value, offset + i));
    }
    if ty.signed && ty.bits < 64 && raw & (1 << (ty.bits - 1)) != 0 {
        (raw | (u64::MAX << ty.bits)) as i64
    } else {
        raw as i64
    }
}

fn write_field(value: &mut [u8], offset: u64, ty: FieldType, field: i64) {
    let raw = field as u64;
    for i in 0..u64::from(ty.bits) {
        let bit = ((raw >> (u64::from(ty.bits) - 1 - i)) & 1) as u8;
        set_bit(value, offset + i, bit);
    }
}

/// Applies `increment` to `old` within the type's range; `None` on overflow with FAIL.
fn add_with_overflow(old: i64, increment: i64, ty: FieldType, overflow: Overflow) -> Option<i64> {
    let (min, max): (i128, i128) =
        if ty.signed { (-(1i128 << (ty.bits - 1)), (1i128 << (ty.bits - 1)) - 1) } else { (0, (1i128 << ty.bits) - 1) };
    let exact = i128::from(old) + i128::from(increment);
    if (min..=max).contains(&exact) {
        return Some(exact as i64);
    }
    match overflow {
        Overflow::Fail => None,
        Overflow::Sat => Some(if exact > max { max as i64 } else { min as i64 }),
        Overflow::Wrap => {
            let modulus = 1i128 << ty.bits;
            let mut wrapped = exact.rem_euclid(modulus);
            if ty.signed && wrapped > max {
                wrapped -= modulus;
            }
            Some(wrapped as i64)
        }
    }
}

fn parse_field_ops(args: &mut Args, read_only: bool) -> Result<Vec<FieldOp>, CmdError> {
    let mut ops = Vec::new();
    let mut overflow = Overflow::Wrap;
    while !args.is_empty() {
        let op = args.next_upper()?;
        let needs = match op.as_str() {
            "GET" => 2,
            "SET" | "INCRBY" => 3,
            "OVERFLOW" => 1,
            _ => return Err(CmdError::Syntax),
        };
        if args.remaining() < needs {
            return Err(CmdError::Syntax);
        }
        if op == "OVERFLOW" {
            overflow = match args.next_upper()?.as_str() {
                "WRAP" => Overflow::Wrap,
                "SAT" => Overflow::Sat,
                "FAIL" => Overflow::Fail,
                _ => return Err(CmdError::err("Invalid OVERFLOW type specified")),
            };
            continue;
        }
        let ty = parse_type(&args.next_bytes()?)?;
        let offset = parse_offset(&args.next_bytes()?, true, u64::from(ty.bits))?;
        if op == "GET" {
            ops.push(FieldOp::Get(ty, offset));
            continue;
        }
        if read_only {
            return Err(CmdError::err("BITFIELD_RO only supports the GET subcommand"));
        }
        let number = args.next_i64()?;
        ops.push(if op == "SET" {
            FieldOp::Set(ty, offset, number, overflow)
        } else {
            FieldOp::IncrBy(ty, offset, number, overflow)
        });
    }
    Ok(ops)
}

fn bitfield_generic(ctx: &mut Ctx<'_>, args: &mut Args, read_only: bool) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let ops = parse_field_ops(args, read_only)?;
    let db = ctx.db();
    let mut slot = ctx.engine.lock_key(&key);
    let existing = as_string(slot.get(db, &key)?)?;
    let writes = ops.iter().any(|op| !matches!(op, FieldOp::Get(..)));
    // Redis creates the key for any write op, even one that OVERFLOW FAIL leaves undone.
    let created = writes && existing.is_none();
    let expire = existing.as_ref().and_then(|e| e.expire_at_ms);
    let mut value = existing.map(|e| e.value.to_vec()).unwrap_or_default();
    if writes {
        let highest = ops
            .iter()
            .filter_map(|op| match op {
                FieldOp::Set(ty, offset, ..) | FieldOp::IncrBy(ty, offset, ..) => Some(offset + u64::from(ty.bits) - 1),
                FieldOp::Get(..) => None,
            })
            .max()
            .unwrap_or(0);
        let needed = highest / 8 + 1;
        check_length(needed)?;
        if (value.len() as u64) < needed {
            value.resize(needed as usize, 0);
        }
    }
    let mut replies = Vec::with_capacity(ops.len());
    // Writes that happened (an OVERFLOW FAIL does not count): Redis notifies only if there were any.
    let mut changes = 0;
    for op in &ops {
        replies.push(match *op {
            FieldOp::Get(ty, offset) => Reply::Int(read_field(&value, offset, ty)),
            FieldOp::Set(ty, offset, number, overflow) => {
                let old = read_field(&value, offset, ty);
                match add_with_overflow(0, number, ty, overflow) {
                    Some(stored) => {
                        changes += 1;
                        write_field(&mut value, offset, ty, stored);
                        Reply::Int(old)
                    }
                    None => Reply::Nil,
                }
            }
            FieldOp::IncrBy(ty, offset, increment, overflow) => {
                let old = read_field(&value, offset, ty);
                match add_with_overflow(old, increment, ty, overflow) {
                    Some(new) => {
                        changes += 1;
                        write_field(&mut value, offset, ty, new);
                        Reply::Int(new)
                    }
                    None => Reply::Nil,
                }
            }
        });
    }
    if writes {
        // Redis unshares the string for any write op (`raw` from then on), even one OVERFLOW FAIL undoes.
        slot.set_string(db, &key, &value, StringEncoding::Raw, expire)?;
    }
    slot.commit()?;
    if writes {
        ctx.touch(db, &key);
    }
    ctx.notify_new(created, db, &key);
    if changes > 0 {
        ctx.notify(ev::STRING, "setbit", db, &key);
    }
    Ok(Reply::Array(replies))
}

/// ```text
/// BITFIELD key [GET encoding offset | [OVERFLOW WRAP | SAT | FAIL] SET encoding offset value |
///     INCRBY encoding offset increment ...]
/// ```
pub fn bitfield(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    bitfield_generic(ctx, args, false)
}

/// ```text
/// BITFIELD_RO key [GET encoding offset [GET encoding offset ...]]
/// ```
pub fn bitfield_ro(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    bitfield_generic(ctx, args, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_rules() {
        let u8t = FieldType { signed: false, bits: 8 };
        let i8t = FieldType { signed: true, bits: 8 };
        assert_eq!(add_with_overflow(250, 10, u8t, Overflow::Wrap), Some(4));
        assert_eq!(add_with_overflow(250, 10, u8t, Overflow::Sat), Some(255));
        assert_eq!(add_with_overflow(250, 10, u8t, Overflow::Fail), None);
        assert_eq!(add_with_overflow(127, 1, i8t, Overflow::Wrap), Some(-128));
        assert_eq!(add_with_overflow(-128, -1, i8t, Overflow::Sat), Some(-128));
    }

    #[test]
    fn fields_round_trip() {
        let mut value = vec![0u8; 4];
        let i5 = FieldType { signed: true, bits: 5 };
        write_field(&mut value, 3, i5, -3);
        assert_eq!(read_field(&value, 3, i5), -3);
        assert_eq!(read_field(&value, 3, FieldType { signed: false, bits: 5 }), 29);
    }
}
