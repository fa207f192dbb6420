//! Hash commands (the whole hash group of Redis 7.0). Every hash is one compact value today
//! ([`crate::types::hash`]); replies follow Redis's byte for byte (field order is insertion order, as for
//! Redis's small hashes).

use bytes::Bytes;

use super::collection::{modify, read};
use super::{Args, CmdError, Ctx};
use crate::resp::Reply;
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
    modify(ctx, &key, |hash: &mut HashValue, _| {
        let added = pairs.into_iter().filter(|(field, value)| hash.set(field.clone(), value.clone())).count();
        Ok((Reply::Int(added as i64), true))
    })
}

/// ```text
/// HMSET key field value [field value ...]
/// ```
pub fn hmset(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let pairs = field_value_pairs(args, "hmset")?;
    modify(ctx, &key, |hash: &mut HashValue, _| {
        for (field, value) in pairs {
            hash.set(field, value);
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
    modify(ctx, &key, |hash: &mut HashValue, _| {
        if hash.get(&field).is_some() {
            return Ok((Reply::Int(0), false));
        }
        hash.set(field, value);
        Ok((Reply::Int(1), true))
    })
}

/// ```text
/// HGET key field
/// ```
pub fn hget(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let field = args.next_bytes()?;
    Ok(read::<HashValue>(ctx, &key)?.and_then(|hash| hash.get(&field).cloned()).map_or(Reply::Nil, Reply::Bulk))
}

/// ```text
/// HMGET key field [field ...]
/// ```
pub fn hmget(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let fields = args.rest();
    let hash = read::<HashValue>(ctx, &key)?;
    Ok(Reply::Array(
        fields
            .iter()
            .map(|field| hash.as_ref().and_then(|h| h.get(field).cloned()).map_or(Reply::Nil, Reply::Bulk))
            .collect(),
    ))
}

/// ```text
/// HDEL key field [field ...]
/// ```
pub fn hdel(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let fields = args.rest();
    modify(ctx, &key, |hash: &mut HashValue, _| {
        let removed = fields.iter().filter(|field| hash.remove(field)).count();
        Ok((Reply::Int(removed as i64), removed > 0))
    })
}

/// ```text
/// HLEN key
/// ```
pub fn hlen(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    Ok(Reply::Int(read::<HashValue>(ctx, &key)?.map_or(0, |hash| hash.len() as i64)))
}

/// ```text
/// HSTRLEN key field
/// ```
pub fn hstrlen(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let field = args.next_bytes()?;
    Ok(Reply::Int(read::<HashValue>(ctx, &key)?.and_then(|hash| hash.get(&field).map(|v| v.len() as i64)).unwrap_or(0)))
}

/// ```text
/// HEXISTS key field
/// ```
pub fn hexists(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let field = args.next_bytes()?;
    Ok(Reply::Int(read::<HashValue>(ctx, &key)?.is_some_and(|hash| hash.get(&field).is_some()).into()))
}

/// ```text
/// HKEYS key
/// ```
pub fn hkeys(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let hash = read::<HashValue>(ctx, &key)?.unwrap_or_default();
    Ok(Reply::Array(hash.pairs().iter().map(|(f, _)| Reply::Bulk(f.clone())).collect()))
}

/// ```text
/// HVALS key
/// ```
pub fn hvals(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let hash = read::<HashValue>(ctx, &key)?.unwrap_or_default();
    Ok(Reply::Array(hash.pairs().iter().map(|(_, v)| Reply::Bulk(v.clone())).collect()))
}

/// ```text
/// HGETALL key
/// ```
pub fn hgetall(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let hash = read::<HashValue>(ctx, &key)?.unwrap_or_default();
    Ok(Reply::Map(hash.pairs().iter().map(|(f, v)| (Reply::Bulk(f.clone()), Reply::Bulk(v.clone()))).collect()))
}

/// ```text
/// HINCRBY key field increment
/// ```
pub fn hincrby(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let field = args.next_bytes()?;
    let delta = args.next_i64()?;
    modify(ctx, &key, |hash: &mut HashValue, _| {
        let current = match hash.get(&field) {
            Some(value) => {
                super::args::parse_i64(value).ok_or_else(|| CmdError::err("hash value is not an integer"))?
            }
            None => 0,
        };
        let value = current.checked_add(delta).ok_or(CmdError::Overflow)?;
        hash.set(field, Bytes::from(value.to_string()));
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
    modify(ctx, &key, |hash: &mut HashValue, _| {
        let current = match hash.get(&field) {
            Some(value) => Ext::parse(value).ok_or_else(|| CmdError::err("hash value is not a float"))?,
            None => Ext::parse(b"0").ok_or(CmdError::NotFloat)?,
        };
        let value = current.plus(delta);
        if current.is_infinite() || value.is_infinite() {
            return Err(CmdError::err("increment would produce NaN or Infinity"));
        }
        let text = value.to_human();
        hash.set(field, Bytes::from(text.clone()));
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
    let hash = read::<HashValue>(ctx, &key)?;
    let Some(count) = count else {
        return Ok(match hash {
            Some(hash) if !hash.is_empty() => {
                let at = (ctx.random(0) % hash.len() as u64) as usize;
                Reply::Bulk(hash.pairs()[at].0.clone())
            }
            _ => Reply::Nil,
        });
    };
    let hash = hash.unwrap_or_default();
    if count == 0 || hash.is_empty() {
        return Ok(Reply::Array(Vec::new()));
    }
    let pairs = hash.pairs();
    let picks: Vec<usize> = if count > 0 {
        // Distinct fields: all of them when the count covers the hash, else a random subset.
        let mut indexes: Vec<usize> = (0..pairs.len()).collect();
        let wanted = (count as usize).min(pairs.len());
        for i in 0..wanted {
            let j = i + (ctx.random(i as u64) % (pairs.len() - i) as u64) as usize;
            indexes.swap(i, j);
        }
        indexes.truncate(wanted);
        indexes
    } else {
        (0..count.unsigned_abs()).map(|i| (ctx.random(i) % pairs.len() as u64) as usize).collect()
    };
    let protocol3 = ctx.client.proto == crate::resp::Protocol::Resp3;
    let mut out = Vec::with_capacity(picks.len());
    for at in picks {
        let (field, value) = &pairs[at];
        match (with_values, protocol3) {
            (false, _) => out.push(Reply::Bulk(field.clone())),
            (true, true) => out.push(Reply::Array(vec![Reply::Bulk(field.clone()), Reply::Bulk(value.clone())])),
            (true, false) => {
                out.push(Reply::Bulk(field.clone()));
                out.push(Reply::Bulk(value.clone()));
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
    let super::args::ScanOptions { cursor, pattern, .. } = super::args::scan_options(args, false)?;
    // A compact hash is returned whole in one step (as Redis does for its listpack hashes).
    let hash = read::<HashValue>(ctx, &key)?.unwrap_or_default();
    let mut items = Vec::new();
    if cursor == 0 {
        for (field, value) in hash.pairs() {
            if pattern.as_ref().is_none_or(|p| crate::glob::matches(p, field, false)) {
                items.push(Reply::Bulk(field.clone()));
                items.push(Reply::Bulk(value.clone()));
            }
        }
    }
    Ok(Reply::Array(vec![Reply::bulk("0"), Reply::Array(items)]))
}
