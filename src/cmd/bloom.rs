//! Bloom filter commands with RedisBloom's semantics (BF.RESERVE, BF.ADD, BF.MADD, BF.EXISTS, BF.MEXISTS,
//! BF.INSERT, BF.INFO, BF.CARD, BF.SCANDUMP, BF.LOADCHUNK) over [`crate::types::bloom`]. A filter is one
//! value of kind `BloomFilter` (TYPE answers `MBbloom--`, as RedisBloom's type name).

use bytes::Bytes;

use super::{Args, CmdError, Ctx};
use crate::engine::{Entry, SlotGuard, ValueKind};
use crate::resp::Reply;
use crate::types::bloom::{BloomError, ScalableBloom, DEFAULT_EXPANSION};

/// RedisBloom's reply when the key does not exist for commands that need it.
const NOT_FOUND: &str = "not found";

fn bloom_error(err: BloomError) -> CmdError {
    match err {
        // The helper's texts for caller errors are RedisBloom's, `ERR ...` included.
        BloomError::BadErrorRate
        | BloomError::BadCapacity
        | BloomError::BadExpansion
        | BloomError::Full
        | BloomError::TooLarge => CmdError::Raw(err.to_string().into()),
        other => CmdError::err(format!("invalid bloom filter data: {other}")),
    }
}

/// The filter stored in `entry` and its expiry; WRONGTYPE for any other type.
fn load(entry: Option<Entry>) -> Result<Option<(ScalableBloom, Option<u64>)>, CmdError> {
    super::load_typed(entry, ValueKind::BloomFilter, "bloom filter", ScalableBloom::from_bytes)
}

fn store(
    slot: &mut SlotGuard<'_>,
    db: u16,
    key: &[u8],
    bloom: &ScalableBloom,
    expire: Option<u64>,
) -> Result<(), CmdError> {
    slot.set(db, key, ValueKind::BloomFilter, &bloom.to_bytes(), expire)?;
    Ok(())
}

fn parse_error_rate(bytes: &[u8]) -> Result<f64, CmdError> {
    super::args::parse_f64(bytes).ok_or_else(|| CmdError::err("bad error rate"))
}

fn parse_capacity(bytes: &[u8]) -> Result<u64, CmdError> {
    super::args::parse_i64(bytes).filter(|n| *n >= 0).map(|n| n as u64).ok_or_else(|| CmdError::err("bad capacity"))
}

fn parse_expansion(bytes: &[u8]) -> Result<u32, CmdError> {
    super::args::parse_i64(bytes)
        .filter(|n| (0..=i64::from(u32::MAX)).contains(n))
        .map(|n| n as u32)
        .ok_or_else(|| CmdError::err("bad expansion"))
}

/// ```text
/// BF.RESERVE key error_rate capacity [EXPANSION expansion] [NONSCALING]
/// ```
pub fn bf_reserve(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let error_rate = parse_error_rate(&args.next_bytes()?)?;
    let capacity = parse_capacity(&args.next_bytes()?)?;
    let mut expansion = None;
    let mut nonscaling = false;
    while !args.is_empty() {
        if args.eat("EXPANSION") {
            expansion = Some(parse_expansion(&args.next_bytes().map_err(|_| CmdError::Syntax)?)?);
        } else if args.eat("NONSCALING") {
            nonscaling = true;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    if nonscaling && expansion.is_some() {
        // RedisBloom's text, without an error code.
        return Err(CmdError::Raw("Nonscaling filters cannot expand".into()));
    }
    let expansion = expansion.unwrap_or(DEFAULT_EXPANSION);
    let bloom = ScalableBloom::reserve(error_rate, capacity, expansion, nonscaling).map_err(bloom_error)?;
    let db = ctx.db();
    let mut slot = ctx.engine.lock_key(&key);
    if slot.key_info(db, &key)?.is_some() {
        return Err(CmdError::err("item exists"));
    }
    store(&mut slot, db, &key, &bloom, None)?;
    slot.commit()?;
    ctx.touch(db, &key);
    Ok(Reply::Ok)
}

/// Adds `items` to the filter at `key` (created with `create` if missing, unless `create` is None);
/// one reply per item: 1 added, 0 probably present, or the error for that item.
fn add_items(
    ctx: &mut Ctx<'_>,
    key: &Bytes,
    items: &[Bytes],
    create: Option<ScalableBloom>,
) -> Result<Vec<Reply>, CmdError> {
    let db = ctx.db();
    let mut slot = ctx.engine.lock_key(key);
    let (mut bloom, expire, mut changed) = match (load(slot.get(db, key)?)?, create) {
        (Some((bloom, expire)), _) => (bloom, expire, false),
        (None, Some(fresh)) => (fresh, None, true),
        (None, None) => return Err(CmdError::err(NOT_FOUND)),
    };
    let mut replies = Vec::with_capacity(items.len());
    for item in items {
        match bloom.add(item) {
            Ok(added) => {
                changed |= added;
                replies.push(Reply::Int(i64::from(added)));
            }
            Err(err) => replies.push(Reply::Error(err.to_string().into())),
        }
    }
    if changed {
        store(&mut slot, db, key, &bloom, expire)?;
    }
    slot.commit()?;
    if changed {
        ctx.touch(db, key);
    }
    Ok(replies)
}

/// ```text
/// BF.ADD key item
/// ```
pub fn bf_add(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let item = args.next_bytes()?;
    let mut replies = add_items(ctx, &key, &[item], Some(ScalableBloom::with_defaults()))?;
    match replies.pop() {
        Some(Reply::Error(text)) => Err(CmdError::Raw(text)),
        Some(reply) => Ok(reply),
        None => Err(CmdError::Syntax),
    }
}

/// ```text
/// BF.MADD key item [item ...]
/// ```
pub fn bf_madd(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let items = args.rest();
    Ok(Reply::Array(add_items(ctx, &key, &items, Some(ScalableBloom::with_defaults()))?))
}

/// ```text
/// BF.INSERT key [CAPACITY capacity] [ERROR error] [EXPANSION expansion] [NOCREATE] [NONSCALING] ITEMS item [item ...]
/// ```
pub fn bf_insert(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let (mut capacity, mut error_rate, mut expansion) = (100u64, 0.01f64, DEFAULT_EXPANSION);
    let (mut nocreate, mut nonscaling, mut items) = (false, false, None);
    while !args.is_empty() {
        if args.eat("CAPACITY") {
            capacity = parse_capacity(&args.next_bytes().map_err(|_| CmdError::Syntax)?)?;
        } else if args.eat("ERROR") {
            error_rate = parse_error_rate(&args.next_bytes().map_err(|_| CmdError::Syntax)?)?;
        } else if args.eat("EXPANSION") {
            expansion = parse_expansion(&args.next_bytes().map_err(|_| CmdError::Syntax)?)?;
        } else if args.eat("NOCREATE") {
            nocreate = true;
        } else if args.eat("NONSCALING") {
            nonscaling = true;
        } else if args.eat("ITEMS") {
            items = Some(args.rest());
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let items = items.filter(|items| !items.is_empty()).ok_or(CmdError::Syntax)?;
    let create = if nocreate {
        None
    } else {
        Some(ScalableBloom::reserve(error_rate, capacity, expansion, nonscaling).map_err(bloom_error)?)
    };
    Ok(Reply::Array(add_items(ctx, &key, &items, create)?))
}

fn read(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Option<ScalableBloom>, CmdError> {
    Ok(load(ctx.engine.get(ctx.db(), key)?)?.map(|(bloom, _)| bloom))
}

/// ```text
/// BF.EXISTS key item
/// ```
pub fn bf_exists(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let item = args.next_bytes()?;
    Ok(Reply::Int(read(ctx, &key)?.is_some_and(|bloom| bloom.exists(&item)).into()))
}

/// ```text
/// BF.MEXISTS key item [item ...]
/// ```
pub fn bf_mexists(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let items = args.rest();
    let bloom = read(ctx, &key)?;
    Ok(Reply::Array(
        items.iter().map(|item| Reply::Int(bloom.as_ref().is_some_and(|b| b.exists(item)).into())).collect(),
    ))
}

/// ```text
/// BF.CARD key
/// ```
pub fn bf_card(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    Ok(Reply::Int(read(ctx, &key)?.map_or(0, |bloom| bloom.items() as i64)))
}

/// ```text
/// BF.INFO key [CAPACITY | SIZE | FILTERS | ITEMS | EXPANSION]
/// ```
pub fn bf_info(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let only = if args.is_empty() { None } else { Some(args.next_upper()?) };
    args.finish()?;
    let bloom = read(ctx, &key)?.ok_or_else(|| CmdError::err(NOT_FOUND))?;
    let fields = bloom.info().fields();
    let value = |v: Option<u64>| v.map_or(Reply::Nil, |n| Reply::Int(n as i64));
    match only.as_deref() {
        None => Ok(Reply::Map(fields.iter().map(|(name, v)| (Reply::simple(*name), value(*v))).collect())),
        Some(which) => {
            let index = ["CAPACITY", "SIZE", "FILTERS", "ITEMS", "EXPANSION"]
                .iter()
                .position(|field| *field == which)
                .ok_or_else(|| CmdError::err("Invalid information value"))?;
            Ok(Reply::Array(vec![value(fields[index].1)]))
        }
    }
}

/// ```text
/// BF.DEBUG key
/// ```
pub fn bf_debug(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let bloom = read(ctx, &key)?.ok_or_else(|| CmdError::err(NOT_FOUND))?;
    Ok(Reply::Array(bloom.debug_lines().into_iter().map(Reply::bulk).collect()))
}

/// ```text
/// BF.SCANDUMP key iterator
/// ```
pub fn bf_scandump(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let cursor = super::args::parse_i64(&args.next_bytes()?).filter(|n| *n >= 0).ok_or(CmdError::NotInteger)?;
    let bloom = read(ctx, &key)?.ok_or_else(|| CmdError::err(NOT_FOUND))?;
    let (next, chunk) = bloom.scandump(cursor as u64);
    Ok(Reply::Array(vec![Reply::Int(next as i64), Reply::bulk(chunk)]))
}

/// ```text
/// BF.LOADCHUNK key iterator data
/// ```
pub fn bf_loadchunk(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let cursor = super::args::parse_i64(&args.next_bytes()?).filter(|n| *n > 0).ok_or(CmdError::NotInteger)?;
    let data = args.next_bytes()?;
    let db = ctx.db();
    let mut slot = ctx.engine.lock_key(&key);
    let existing = load(slot.get(db, &key)?)?;
    let (bloom, expire) = if cursor == 1 {
        // The header chunk starts the filter over (RedisBloom replaces whatever was there).
        (ScalableBloom::from_header_chunk(&data).map_err(|e| CmdError::err(format!("invalid chunk: {e}")))?, None)
    } else {
        let (mut bloom, expire) = existing.ok_or_else(|| CmdError::err(NOT_FOUND))?;
        bloom.load_chunk(cursor as u64, &data).map_err(|e| CmdError::err(format!("invalid chunk: {e}")))?;
        (bloom, expire)
    };
    store(&mut slot, db, &key, &bloom, expire)?;
    slot.commit()?;
    ctx.touch(db, &key);
    Ok(Reply::Ok)
}
