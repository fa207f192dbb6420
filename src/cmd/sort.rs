//! SORT and SORT_RO: sorting the elements of a list, set or sorted set numerically or by bytes, by the
//! elements themselves or by weights read from other keys (`BY pattern`), returning the elements or
//! values read from other keys (`GET pattern`), optionally stored as a list (`STORE`).
//!
//! The keys named by BY and GET patterns derive from the data, so SORT reads the source once without a
//! lock to learn them, then locks the slots of all the keys involved and re-reads; if the elements now
//! name a key of a slot it does not hold, it starts over. Everything it answers or stores is therefore
//! read under the same locks, as atomic as Redis's single-threaded SORT.

use std::cmp::Ordering;

use bytes::Bytes;

use super::collection::{load, Handle};
use super::{guard_for, Args, CmdError, Ctx};
use crate::engine::{Slot, SlotGuard, ValueKind};
use crate::resp::Reply;
use crate::types::hash::HashValue;
use crate::types::list::ListValue;
use crate::types::set::SetValue;
use crate::types::zset_index::ZsetIndex;

/// A parsed SORT request.
struct SortRequest {
    key: Bytes,
    by: Option<Bytes>,
    /// `BY` with a pattern without `*` (`nosort`): keep the collection's order.
    dont_sort: bool,
    limit: Option<(i64, i64)>,
    gets: Vec<Bytes>,
    desc: bool,
    alpha: bool,
    store: Option<Bytes>,
}

fn parse(args: &mut Args, read_only: bool) -> Result<SortRequest, CmdError> {
    let key = args.next_bytes()?;
    let mut request = SortRequest {
        key,
        by: None,
        dont_sort: false,
        limit: None,
        gets: Vec::new(),
        desc: false,
        alpha: false,
        store: None,
    };
    while !args.is_empty() {
        if args.eat("ASC") {
            request.desc = false;
        } else if args.eat("DESC") {
            request.desc = true;
        } else if args.eat("ALPHA") {
            request.alpha = true;
        } else if args.remaining() >= 3 && args.eat("LIMIT") {
            let offset = args.next_i64()?;
            let count = args.next_i64()?;
            request.limit = Some((offset, count));
        } else if !read_only && args.remaining() >= 2 && args.eat("STORE") {
            request.store = Some(args.next_bytes()?);
        } else if args.remaining() >= 2 && args.eat("BY") {
            let pattern = args.next_bytes()?;
            // A pattern that names no key per element means "do not sort".
            request.dont_sort = !pattern.contains(&b'*');
            request.by = Some(pattern);
        } else if args.remaining() >= 2 && args.eat("GET") {
            request.gets.push(args.next_bytes()?);
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok(request)
}

/// Where a pattern points for one element: `Some((key, field))`, or `None` for a pattern without `*`
/// (which names nothing). `#` is handled by the caller.
fn pattern_target(pattern: &[u8], element: &[u8]) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    let star = pattern.iter().position(|b| *b == b'*')?;
    // `->field` after the `*` selects a hash field; a trailing `->` is part of the key name.
    let arrow = pattern[star + 1..].windows(2).position(|w| w == b"->").map(|i| i + star + 1);
    let (key_pattern, field) = match arrow {
        Some(at) if at + 2 < pattern.len() => (&pattern[..at], Some(pattern[at + 2..].to_vec())),
        _ => (pattern, None),
    };
    let mut key = key_pattern[..star].to_vec();
    key.extend_from_slice(element);
    key.extend_from_slice(&key_pattern[star + 1..]);
    Some((key, field))
}

/// Every key the patterns of `request` name for `elements`.
fn pattern_keys(request: &SortRequest, elements: &[Bytes]) -> Vec<Vec<u8>> {
    let patterns =
        request.by.iter().filter(|_| !request.dont_sort).chain(request.gets.iter().filter(|g| &g[..] != b"#"));
    let mut keys = Vec::new();
    for pattern in patterns {
        for element in elements {
            if let Some((key, _)) = pattern_target(pattern, element) {
                keys.push(key);
            }
        }
    }
    keys
}

/// The elements of the list, set or sorted set at `key`, in the collection's order; WRONGTYPE for other
/// types. Also says whether it is a set (for the set-specific rule below).
fn elements_of(slot: &mut Slot, db: u16, key: &[u8]) -> Result<(Vec<Bytes>, bool), CmdError> {
    let Some(info) = slot.key_info(db, key)? else { return Ok((Vec::new(), false)) };
    let elements = match info.kind {
        ValueKind::List => load::<ListValue>(slot, db, key)?.map(|(list, _)| list.items.into_iter().collect()),
        ValueKind::Set => load::<SetValue>(slot, db, key)?.map(|(set, _)| set.members().to_vec()),
        _ => load::<ZsetIndex>(slot, db, key)?
            .map(|(index, _)| index.iter().map(|(m, _)| Bytes::copy_from_slice(m)).collect()),
    };
    Ok((elements.unwrap_or_default(), info.kind == ValueKind::Set))
}

/// The value a pattern names for `element` (a string, or a hash field), read under the held locks;
/// `None` when the key is missing or of another type, as in Redis.
fn lookup(
    guards: &mut [(usize, SlotGuard<'_>)],
    ctx: &Ctx<'_>,
    pattern: &[u8],
    element: &Bytes,
) -> Result<Option<Bytes>, CmdError> {
    if pattern == b"#" {
        return Ok(Some(element.clone()));
    }
    let Some((key, field)) = pattern_target(pattern, element) else { return Ok(None) };
    let db = ctx.db();
    let slot = guard_for(guards, ctx.engine, &key);
    let value = match field {
        None => match slot.get(db, &key)? {
            None => None,
            Some(entry) => Some((entry.kind == ValueKind::String).then_some(entry.value)),
        },
        Some(field) => match slot.key_info(db, &key)? {
            None => None,
            Some(info) if info.kind == ValueKind::Hash => {
                Some(Handle::<HashValue>::open(slot, db, &Bytes::from(key.clone()))?.get(slot, &field)?)
            }
            Some(_) => Some(None),
        },
    };
    // Redis looks pattern keys up for reading: a keyspace hit or miss, and a missing one is a `keymiss`.
    ctx.server.stats.hit(value.is_some());
    if value.is_none() {
        ctx.keymiss(db, &key);
    }
    Ok(value.flatten())
}

/// Parses a sort weight as C's `strtod` on the whole text: leading spaces allowed, trailing ones not, no
/// NaN, and no out-of-range value (`ERANGE`: a finite text that overflows, or a nonzero one that
/// underflows to zero or a subnormal); the empty string is 0. Redis hands `strtod` the value as a C
/// string, so the text ends at its first NUL byte (`"\0\xff"` sorts as 0, `"1\0x"` as 1).
fn parse_weight(bytes: &[u8]) -> Option<f64> {
    let bytes = bytes.iter().position(|b| *b == 0).map_or(bytes, |nul| &bytes[..nul]);
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(bytes.len());
    if start == bytes.len() {
        return (start == 0).then_some(0.0);
    }
    let text = &bytes[start..];
    let value = super::args::parse_f64(text)?;
    let unsigned = text.strip_prefix(b"-").or_else(|| text.strip_prefix(b"+")).unwrap_or(text);
    let spelled_infinite = unsigned.first().is_some_and(|b| b.eq_ignore_ascii_case(&b'i'));
    if value.is_infinite() && !spelled_infinite {
        return None;
    }
    let tiny = value != 0.0 && value.abs() < f64::MIN_POSITIVE;
    if tiny || (value == 0.0 && !mantissa_is_zero(unsigned)) {
        return None;
    }
    Some(value)
}

/// True if the digits before the exponent of a decimal or hex float text are all zero.
fn mantissa_is_zero(unsigned: &[u8]) -> bool {
    let (digits, exponent) = match unsigned.strip_prefix(b"0x").or_else(|| unsigned.strip_prefix(b"0X")) {
        Some(hex) => (hex, [b'p', b'P']),
        None => (unsigned, [b'e', b'E']),
    };
    digits.iter().take_while(|b| !exponent.contains(b)).all(|b| *b == b'0' || *b == b'.')
}

/// One element with what it sorts by.
struct Item {
    element: Bytes,
    score: f64,
    by: Option<Bytes>,
}

fn run(ctx: &mut Ctx<'_>, request: SortRequest) -> Result<Reply, CmdError> {
    let db = ctx.db();
    // A first look, only to learn which keys the patterns name (none without BY or GET patterns).
    let names_keys = (request.by.is_some() && !request.dont_sort) || request.gets.iter().any(|g| &g[..] != b"#");
    let mut elements = if !names_keys {
        Vec::new()
    } else {
        let mut guards = ctx.lock_slots(&[&request.key]);
        elements_of(guard_for(&mut guards, ctx.engine, &request.key), db, &request.key)?.0
    };
    let (mut guards, source_is_set) = loop {
        let mut keys: Vec<Vec<u8>> = vec![request.key.to_vec()];
        keys.extend(request.store.iter().map(|k| k.to_vec()));
        keys.extend(pattern_keys(&request, &elements));
        let refs: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
        let mut guards = ctx.lock_slots(&refs);
        let (now, source_is_set) = elements_of(guard_for(&mut guards, ctx.engine, &request.key), db, &request.key)?;
        let held: Vec<usize> = guards.iter().map(|(i, _)| *i).collect();
        if pattern_keys(&request, &now).iter().all(|k| held.contains(&ctx.engine.slot_of(k))) {
            elements = now;
            break (guards, source_is_set);
        }
        elements = now;
    };
    let mut dont_sort = request.dont_sort;
    let (mut alpha, mut by) = (request.alpha, request.by.clone());
    // An unsorted set has no defined order; stored or sorted for a script, it is sorted by bytes so that
    // the result is stable (as Redis does for scripts and replication).
    let in_script = ctx.client.handle.intro.in_script.load(std::sync::atomic::Ordering::Relaxed);
    if dont_sort && source_is_set && (request.store.is_some() || in_script) {
        dont_sort = false;
        alpha = true;
        by = None;
    }
    let mut items = Vec::with_capacity(elements.len());
    for element in elements {
        ctx.checkpoint()?;
        let mut item = Item { element, score: 0.0, by: None };
        if !dont_sort {
            let weight = match &by {
                Some(pattern) => lookup(&mut guards, ctx, pattern, &item.element)?,
                None => None,
            };
            if alpha {
                item.by = weight;
            } else {
                let text = match (&by, &weight) {
                    (Some(_), Some(value)) => Some(&value[..]),
                    (Some(_), None) => None,
                    (None, _) => Some(&item.element[..]),
                };
                if let Some(text) = text {
                    item.score = parse_weight(text)
                        .ok_or_else(|| CmdError::err("One or more scores can't be converted into double"))?;
                }
            }
        }
        items.push(item);
    }
    if dont_sort {
        if request.desc {
            items.reverse();
        }
    } else {
        let by_pattern = by.is_some();
        items.sort_by(|a, b| {
            let order = if !alpha {
                a.score.partial_cmp(&b.score).unwrap_or(Ordering::Equal).then_with(|| a.element.cmp(&b.element))
            } else if by_pattern {
                // A missing weight sorts first; equal weights keep no particular order (as in Redis).
                a.by.cmp(&b.by)
            } else {
                a.element.cmp(&b.element)
            };
            if request.desc {
                order.reverse()
            } else {
                order
            }
        });
    }
    let (start, end) = match request.limit {
        None => (0, items.len()),
        Some((offset, count)) => {
            let start = offset.max(0) as u64;
            let end = if count < 0 { items.len() as u64 } else { start.saturating_add(count as u64) };
            (start.min(items.len() as u64) as usize, end.min(items.len() as u64) as usize)
        }
    };
    let mut output: Vec<Option<Bytes>> = Vec::new();
    for item in &items[start..end.max(start)] {
        ctx.checkpoint()?;
        if request.gets.is_empty() {
            output.push(Some(item.element.clone()));
        }
        for pattern in &request.gets {
            output.push(lookup(&mut guards, ctx, pattern, &item.element)?);
        }
    }
    let Some(destination) = request.store else {
        drop(guards);
        return Ok(Reply::Array(output.into_iter().map(|v| v.map_or(Reply::Nil, Reply::Bulk)).collect()));
    };
    let mut list = ListValue::default();
    list.items.extend(output.into_iter().map(Option::unwrap_or_default));
    super::collection::store_destination(ctx, guards, &destination, &list, (crate::server::notify::LIST, "sortstore"))
}

/// ```text
/// SORT key [BY pattern] [LIMIT offset count] [GET pattern [GET pattern ...]] [ASC | DESC] [ALPHA]
///   [STORE destination]
/// ```
pub fn sort(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let request = parse(args, false)?;
    run(ctx, request)
}

/// ```text
/// SORT_RO key [BY pattern] [LIMIT offset count] [GET pattern [GET pattern ...]] [ASC | DESC] [ALPHA]
/// ```
pub fn sort_ro(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let request = parse(args, true)?;
    run(ctx, request)
}
