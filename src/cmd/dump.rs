//! DUMP and RESTORE: a key's value as a Redis 7.0 DUMP payload (RDB type byte, value in Redis 7.0's
//! encodings, RDB version 10, CRC64) and back, through `crate::rdb`. Payloads from Redis 2.6 to 7.4
//! (RDB versions up to 12) are accepted.

use bytes::Bytes;

use super::args::Args;
use super::{CmdError, Ctx};
use crate::rdb::store::{self, ExportError};
use crate::rdb::{read, write, RdbError};
use crate::resp::Reply;

/// ```text
/// DUMP key
/// ```
pub fn dump(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let db = ctx.db();
    let found = {
        let mut slot = ctx.engine.lock_key(&key);
        store::read_shaped(&mut slot, db, &key)?
    };
    // A collection in the encoding Redis would hold it in after the same commands (promoted or not).
    match found {
        None => Ok(Reply::Nil),
        Some(((Ok(value), _), shape)) => Ok(Reply::Bulk(Bytes::from(write::payload_shaped(&value, shape)))),
        Some(((Err(ExportError::Module), _), _)) => {
            Err(CmdError::err("DUMP of a bloom filter is not supported (it is a module type in Redis)"))
        }
        Some(((Err(ExportError::Unreadable(why)), _), _)) => {
            Err(CmdError::err(format!("stored value is unreadable: {why}")))
        }
    }
}

/// ```text
/// RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]
/// ```
///
/// IDLETIME and FREQ are checked as Redis checks them and set the key's access clock as Redis sets its
/// object's: FREQ under an LFU `maxmemory-policy`, IDLETIME under any other (`server::access`).
pub fn restore(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let key = args.next_bytes()?;
    let ttl_arg = args.next_bytes()?;
    let payload = args.next_bytes()?;
    let (mut replace, mut absttl) = (false, false);
    let (mut idle, mut freq): (Option<i64>, Option<i64>) = (None, None);
    while !args.is_empty() {
        if args.eat("REPLACE") {
            replace = true;
        } else if args.eat("ABSTTL") {
            absttl = true;
        } else if args.remaining() >= 2 && freq.is_none() && args.eat("IDLETIME") {
            let value = args.next_i64()?;
            if value < 0 {
                return Err(CmdError::err("Invalid IDLETIME value, must be >= 0"));
            }
            idle = Some(value);
        } else if args.remaining() >= 2 && idle.is_none() && args.eat("FREQ") {
            let value = args.next_i64()?;
            if !(0..=255).contains(&value) {
                return Err(CmdError::err("Invalid FREQ value, must be >= 0 and <= 255"));
            }
            freq = Some(value);
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let db = ctx.db();
    let mut slot = ctx.engine.lock_key(&key);
    if !replace && slot.key_info(db, &key)?.is_some() {
        return Err(CmdError::Raw("BUSYKEY Target key name already exists.".into()));
    }
    let ttl = super::args::parse_i64(&ttl_arg).ok_or(CmdError::NotInteger)?;
    if ttl < 0 {
        return Err(CmdError::err("Invalid TTL value, must be >= 0"));
    }
    let value = match read::read_payload(&payload) {
        Ok(Some(value)) => value,
        Err(RdbError::Checksum { .. }) => return Err(CmdError::err("DUMP payload version or checksum are wrong")),
        Err(RdbError::Unsupported { ref what, .. }) if what.starts_with("payload RDB version") => {
            return Err(CmdError::err("DUMP payload version or checksum are wrong"))
        }
        Ok(None) | Err(_) => return Err(CmdError::err("Bad data format")),
    };
    let now = ctx.now_ms() as i64;
    let expire_at = match ttl {
        0 => None,
        ttl if absttl => Some(ttl),
        ttl => Some(ttl.saturating_add(now)),
    };
    if expire_at.is_some_and(|at| at <= now) {
        // Already expired: like Redis, reply OK without creating the key (REPLACE still deletes it).
        if replace {
            let mut ops = Vec::new();
            crate::cmd::collection::replace_ops(&mut slot, db, &key, &mut ops)?;
            ops.push(crate::engine::BatchOp::Delete { db, key: key.to_vec() });
            slot.write_batch(ops)?;
            slot.commit()?;
            ctx.touch(db, &key);
        }
        return Ok(Reply::Ok);
    }
    store::write(&mut slot, db, &key, value, expire_at.map(|at| at as u64))?;
    slot.commit()?;
    ctx.touch(db, &key);
    let access = &ctx.server.access;
    if access.lfu() {
        access.restore(db, &key, None, freq.map(|f| f as u8));
    } else {
        access.restore(db, &key, idle.map(|i| i as u64), None);
    }
    Ok(Reply::Ok)
}
