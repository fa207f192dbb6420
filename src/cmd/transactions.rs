//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! Queueing happens in the dispatch gate; a command rejected there (unknown, wrong arity) marks the
//! transaction aborted, and EXEC then answers EXECABORT. EXEC runs under the exclusive command lock, so
//! no other client's command interleaves with the transaction. WATCH is invalidated by any change to a
//! watched key (by any client, `server::watch`) and by the expiry of a key that had a TTL when watched.

use std::sync::atomic::Ordering;

use super::{Args, CmdError, Ctx};
use crate::resp::Reply;
use crate::server::client::WatchedKey;
use crate::server::dispatch;

/// ```text
/// MULTI
/// ```
pub fn multi(ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    if ctx.client.multi.is_some() {
        return Err(CmdError::err("MULTI calls can not be nested"));
    }
    dispatch::begin_multi(ctx);
    Ok(Reply::Ok)
}

/// Leaves MULTI state without running anything.
pub fn discard_state(ctx: &mut Ctx<'_>) {
    ctx.client.multi = None;
    ctx.client.handle.multi.store(-1, Ordering::Relaxed);
}

/// Forgets every watched key.
pub fn unwatch_all(ctx: &mut Ctx<'_>) {
    let watched = std::mem::take(&mut ctx.client.watched);
    ctx.server.watches.unwatch(ctx.client.id(), watched.into_iter().map(|w| (w.db, w.key)));
    ctx.client.handle.watch_dirty.store(false, Ordering::Release);
}

/// The keys watched in logical database `db` that exist in it or in logical database `other`: what FLUSHDB,
/// FLUSHALL and SWAPDB invalidate (Redis's `touchAllWatchedKeysInDb`).
pub fn existing_watched_keys(ctx: &Ctx<'_>, db: u16, other: u16) -> Result<Vec<bytes::Bytes>, CmdError> {
    let (physical, other_physical) = (ctx.server.dbmap.physical(db), ctx.server.dbmap.physical(other));
    let mut keys = Vec::new();
    for key in ctx.server.watches.keys_in(db) {
        if ctx.engine.exists(physical, &key)? || (other != db && ctx.engine.exists(other_physical, &key)?) {
            keys.push(key);
        }
    }
    Ok(keys)
}

/// Marks the watchers of `keys` in logical database `db` dirty.
pub fn touch_logical(ctx: &Ctx<'_>, db: u16, keys: &[bytes::Bytes]) {
    keys.iter().for_each(|key| ctx.server.watches.touch(db, key));
}

/// ```text
/// DISCARD
/// ```
pub fn discard(ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    if ctx.client.multi.is_none() {
        return Err(CmdError::err("DISCARD without MULTI"));
    }
    discard_state(ctx);
    unwatch_all(ctx);
    Ok(Reply::Ok)
}

/// True if a watched key changed or expired since WATCH.
fn watch_broken(ctx: &Ctx<'_>) -> Result<bool, CmdError> {
    if ctx.client.handle.watch_dirty.load(Ordering::Acquire) {
        return Ok(true);
    }
    for watched in ctx.client.watched.iter().filter(|w| w.had_expiry) {
        if ctx.engine.key_info(ctx.server.dbmap.physical(watched.db), &watched.key)?.is_none() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// ```text
/// EXEC
/// ```
pub fn exec(ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    let Some(multi) = ctx.client.multi.take() else {
        return Err(CmdError::err("EXEC without MULTI"));
    };
    if multi.aborted {
        ctx.client.handle.multi.store(-1, Ordering::Relaxed);
        unwatch_all(ctx);
        return Err(CmdError::ExecAbort);
    }
    let broken = watch_broken(ctx);
    unwatch_all(ctx);
    if !matches!(broken, Ok(false)) {
        ctx.client.handle.multi.store(-1, Ordering::Relaxed);
        return broken.map(|_| Reply::NilArray);
    }
    // While the queued commands run, CLIENT LIST/INFO still show the client in MULTI (flag `x`, `multi=`
    // the queue's length), as Redis keeps its MULTI state until EXEC ends.
    let mut replies = Vec::with_capacity(multi.queued.len());
    ctx.client.in_exec = true;
    for (spec, argv, start) in multi.queued {
        replies.push(dispatch::call(ctx, spec, argv, start));
    }
    ctx.client.in_exec = false;
    ctx.client.handle.multi.store(-1, Ordering::Relaxed);
    Ok(Reply::Array(replies))
}

/// ```text
/// WATCH key [key ...]
/// ```
pub fn watch(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    if ctx.client.multi.is_some() {
        return Err(CmdError::err("WATCH inside MULTI is not allowed"));
    }
    let (db, physical) = (ctx.client.db, ctx.db());
    for key in args.rest() {
        if ctx.client.watched.iter().any(|w| w.db == db && w.key == key) {
            continue;
        }
        let had_expiry = ctx.engine.key_info(physical, &key)?.is_some_and(|i| i.expire_at_ms.is_some());
        ctx.server.watches.watch(db, key.clone(), &ctx.client.handle);
        ctx.client.watched.push(WatchedKey { db, key, had_expiry });
    }
    Ok(Reply::Ok)
}

/// ```text
/// UNWATCH
/// ```
pub fn unwatch(ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    unwatch_all(ctx);
    Ok(Reply::Ok)
}
