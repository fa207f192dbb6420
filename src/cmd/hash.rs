//! Hash commands (the whole hash group of Redis 7.0), element by element through
//! [`super::collection::Handle`]: a small hash is one compact value ([`crate::types::hash`], field order
//! is insertion order as for Redis's small hashes), a large one is split into buckets whose order is
//! arbitrary, as Redis's hashtable's is.

use bytes::Bytes;

use super::collection::{inspect, update_notify, Handle};
use super::{Args, CmdError, Ctx};
use crate::resp::Reply;
use crate::server::notify::HASH;
use crate::types::hash::HashValue;

use super::extfloat::Ext;

fn field_value_pairs(args: &mut Args, command: &'static str) -> Result<Vec<(Bytes, Bytes)>, CmdError> {
    let rest = args.rest();
    if rest.is_empty() || !rest.len().is_multiple_of(2) {
        return Err(CmdError::WrongArity(command));
    }
    Ok(rest.chunks(2).map(|pair| (pair[0].clone(), pair[1].clone())).collect())
}

/// ```text
/// HSET key field value [field value ...]
/// ```
pub fn hset(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let pairs = field_value_pairs(args, "hset")?;
    update_notify(ctx, &key, (HASH, "hset"), |hash: &mut Handle<HashValue>, slot| {
        let mut added = 0;
        for (field, value) in pairs {
            added += i64::from(hash.insert(slot, field, value)?);
        }
        Ok((Reply::Int(added), true))
    })
}

/// ```text
/// HMSET key field value [field value ...]
/// ```
pub fn hmset(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let pairs = field_value_pairs(args, "hmset")?;
    update_notify(ctx, &key, (HASH, "hset"), |hash: &mut Handle<HashValue>, slot| {
        for (field, value) in pairs {
            hash.insert(slot, field, value)?;
        }
        Ok((Reply::Ok, true))
    })
}

/// ```text
/// HSETNX key field value
/// ```
pub fn hsetnx(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let field = args.next_bytes()?;
    let value = args.next_bytes()?;
    update_notify(ctx, &key, (HASH, "hset"), |hash: &mut Handle<HashValue>, slot| {
        if hash.get(slot, &field)?.is_some() {
            return Ok((Reply::Int(0), false));
        }
        hash.insert(slot, field, value)?;
        Ok((Reply::Int(1), true))
    })
}

/// ```text
/// HGET key field
/// ```
pub fn hget(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let field = args.next_bytes()?;
    inspect(ctx, &key, |hash: &mut Handle<HashValue>, slot| Ok(hash.get(slot, &field)?.map_or(Reply::Nil, Reply::Bulk)))
}

/// ```text
/// HMGET key field [field ...]
/// ```
pub fn hmget(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let fields = args.rest();
    inspect(ctx, &key, |hash: &mut Handle<HashValue>, slot| {
        let mut out = Vec::with_capacity(fields.len());
        for field in &fields {
            out.push(hash.get(slot, field)?.map_or(Reply::Nil, Reply::Bulk));
        }
        Ok(Reply::Array(out))
    })
}

/// ```text
/// HDEL key field [field ...]
/// ```
pub fn hdel(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let fields = args.rest();
    update_notify(ctx, &key, (HASH, "hdel"), |hash: &mut Handle<HashValue>, slot| {
        let mut removed = 0;
        for field in &fields {
            removed += i64::from(hash.remove(slot, field)?);
        }
        Ok((Reply::Int(removed), removed > 0))
    })
}

/// ```text
/// HLEN key
/// ```
pub fn hlen(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    inspect(ctx, &key, |hash: &mut Handle<HashValue>, _| Ok(Reply::Int(hash.len() as i64)))
}

/// ```text
/// HSTRLEN key field
/// ```
pub fn hstrlen(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let field = args.next_bytes()?;
    inspect(ctx, &key, |hash: &mut Handle<HashValue>, slot| {
        Ok(Reply::Int(hash.get(slot, &field)?.map_or(0, |value| value.len() as i64)))
    })
}

/// ```text
/// HEXISTS key field
/// ```
pub fn hexists(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let field = args.next_bytes()?;
    inspect(ctx, &key, |hash: &mut Handle<HashValue>, slot| Ok(Reply::Int(hash.get(slot, &field)?.is_some().into())))
}

/// ```text
/// HKEYS key
/// ```
pub fn hkeys(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let entries = inspect(ctx, &key, |hash: &mut Handle<HashValue>, slot| hash.entries(slot))?;
    Ok(Reply::Array(entries.into_iter().map(|(field, _)| Reply::Bulk(field)).collect()))
}

/// ```text
/// HVALS key
/// ```
pub fn hvals(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let entries = inspect(ctx, &key, |hash: &mut Handle<HashValue>, slot| hash.entries(slot))?;
    Ok(Reply::Array(entries.into_iter().map(|(_, value)| Reply::Bulk(value)).collect()))
}

/// ```text
/// HGETALL key
/// ```
pub fn hgetall(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let entries = inspect(ctx, &key, |hash: &mut Handle<HashValue>, slot| hash.entries(slot))?;
    Ok(Reply::Map(entries.into_iter().map(|(field, value)| (Reply::Bulk(field), Reply::Bulk(value))).collect()))
}

/// ```text
/// HINCRBY key field increment
/// ```
pub fn hincrby(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let field = args.next_bytes()?;
    let delta = args.next_i64()?;
    update_notify(ctx, &key, (HASH, "hincrby"), |hash: &mut Handle<HashValue>, slot| {
        let current = match hash.get(slot, &field)? {
            Some(value) => {
                super::args::parse_i64(&value).ok_or_else(|| CmdError::err("hash value is not an integer"))?
            }
            None => 0,
        };
        let value = current.checked_add(delta).ok_or(CmdError::Overflow)?;
        hash.insert(slot, field, Bytes::from(value.to_string()))?;
        Ok((Reply::Int(value), true))
    })
}

/// ```text
/// HINCRBYFLOAT key field increment
/// ```
pub fn hincrbyfloat(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let field = args.next_bytes()?;
    let delta = Ext::parse(&args.next_bytes()?).ok_or(CmdError::NotFloat)?;
    if delta.is_infinite() {
        return Err(CmdError::err("value is NaN or Infinity"));
    }
    update_notify(ctx, &key, (HASH, "hincrbyfloat"), |hash: &mut Handle<HashValue>, slot| {
        let current = match hash.get(slot, &field)? {
            Some(value) => Ext::parse(&value).ok_or_else(|| CmdError::err("hash value is not a float"))?,
            None => Ext::parse(b"0").ok_or(CmdError::NotFloat)?,
        };
        let value = current.plus(delta);
        if current.is_infinite() || value.is_infinite() {
            return Err(CmdError::err("increment would produce NaN or Infinity"));
        }
        let text = value.to_human();
        hash.insert(slot, field, Bytes::from(text.clone()))?;
        Ok((Reply::bulk(text), true))
    })
}

/// ```text
/// HRANDFIELD key [count [WITHVALUES]]
/// ```
pub fn hrandfield(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let count = if args.is_empty() { None } else { Some(args.next_i64()?) };
    let with_values = args.eat("WITHVALUES");
    if !args.is_empty() || (with_values && count.is_none()) {
        return Err(CmdError::Syntax);
    }
    if count.is_some_and(|n| n < -(i64::MAX / 2)) {
        return Err(CmdError::err("value is out of range"));
    }
    let random = ctx.random(0);
    let Some(count) = count else {
        let picked = inspect(ctx, &key, |hash: &mut Handle<HashValue>, slot| hash.random(slot, random))?;
        return Ok(picked.map_or(Reply::Nil, |(field, _)| Reply::Bulk(field)));
    };
    // Repeated picks (a negative count) make a reply as large as the client asks: bounded first.
    if count < -(super::reply_bound::CHECKED_FROM as i64) {
        let len = inspect(ctx, &key, |hash: &mut Handle<HashValue>, _| Ok(hash.len()))?;
        let per_pick = if with_values { 2 } else { 1 };
        if len > 0 {
            if let Some(instead) = super::reply_bound::check_entries(ctx, count.unsigned_abs() * per_pick)? {
                return Ok(instead);
            }
        }
    }
    // A few picks of a large hash read a few buckets; only counts near its size read it whole.
    let seed = ctx.random(1);
    let picked = inspect(ctx, &key, |hash: &mut Handle<HashValue>, slot| hash.random_entries(slot, count, seed))?;
    let entries = picked.iter().flat_map(|(field, value)| std::iter::once(field).chain(with_values.then_some(value)));
    if let Some(instead) = super::reply_bound::check_bytes(ctx, entries, picked.len() as u64)? {
        return Ok(instead);
    }
    let protocol3 = ctx.client.proto == crate::resp::Protocol::Resp3;
    let mut out = Vec::with_capacity(picked.len());
    for (field, value) in picked {
        match (with_values, protocol3) {
            (false, _) => out.push(Reply::Bulk(field)),
            (true, true) => out.push(Reply::Array(vec![Reply::Bulk(field), Reply::Bulk(value)])),
            (true, false) => {
                out.push(Reply::Bulk(field));
                out.push(Reply::Bulk(value));
            }
        }
    }
    Ok(Reply::Array(out))
}

/// ```text
/// HSCAN key cursor [MATCH pattern] [COUNT count]
/// ```
pub fn hscan(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let super::args::ScanOptions { cursor, pattern, count, .. } = super::args::scan_options(args, false)?;
    // Redis 7.0 returns a listpack whole and pages a hash table: a hash never promoted is a listpack,
    // whatever the thresholds say now (Redis converts on writes only).
    let listpack = |_: &[(Bytes, Bytes)]| true;
    let (next, entries) =
        inspect(ctx, &key, |hash: &mut Handle<HashValue>, slot| hash.scan(slot, cursor, count, listpack))?;
    let mut items = Vec::new();
    for (field, value) in entries {
        if pattern.as_ref().is_none_or(|p| crate::glob::matches(p, &field, false)) {
            items.push(Reply::Bulk(field));
            items.push(Reply::Bulk(value));
        }
    }
    Ok(Reply::Array(vec![Reply::bulk(next.to_string()), Reply::Array(items)]))
}
