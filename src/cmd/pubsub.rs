//! Pub/Sub: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH, PUBSUB, and sharded pub/sub
//! (SSUBSCRIBE, SUNSUBSCRIBE, SPUBLISH, PUBSUB SHARDCHANNELS/SHARDNUMSUB) as Redis 7.0 runs it outside
//! cluster mode.
//!
//! Confirmations are push frames (arrays in RESP2, `>` in RESP3), one per channel, as Redis sends them
//! (even under CLIENT REPLY OFF: the connection lets pushes through). SUBSCRIBE and PSUBSCRIBE confirm
//! with the count of channels plus patterns; the shard commands with the count of shard channels.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::{Args, CmdError, Ctx};
use crate::resp::Reply;

fn confirmation(kind: &'static str, name: Option<Bytes>, count: usize) -> Reply {
    Reply::Push(vec![Reply::bulk(kind), name.map_or(Reply::Nil, Reply::Bulk), Reply::Int(count as i64)])
}

fn update_counts(ctx: &Ctx<'_>) {
    ctx.client.handle.subs.store(ctx.client.channels.len(), Ordering::Relaxed);
    ctx.client.handle.psubs.store(ctx.client.patterns.len(), Ordering::Relaxed);
    ctx.client.handle.ssubs.store(ctx.client.shard_channels.len(), Ordering::Relaxed);
}

/// ```text
/// SUBSCRIBE channel [channel ...]
/// ```
pub fn subscribe(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let mut replies = Vec::new();
    for channel in args.rest() {
        if ctx.client.channels.insert(channel.clone()) {
            ctx.server.pubsub.subscribe(channel.clone(), &ctx.client.handle);
        }
        replies.push(confirmation("subscribe", Some(channel), ctx.client.subscription_count()));
    }
    update_counts(ctx);
    Ok(Reply::Many(replies))
}

/// ```text
/// PSUBSCRIBE pattern [pattern ...]
/// ```
pub fn psubscribe(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let mut replies = Vec::new();
    for pattern in args.rest() {
        if ctx.client.patterns.insert(pattern.clone()) {
            ctx.server.pubsub.psubscribe(pattern.clone(), &ctx.client.handle);
        }
        replies.push(confirmation("psubscribe", Some(pattern), ctx.client.subscription_count()));
    }
    update_counts(ctx);
    Ok(Reply::Many(replies))
}

/// ```text
/// UNSUBSCRIBE [channel [channel ...]]
/// ```
pub fn unsubscribe(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let mut channels = args.rest();
    if channels.is_empty() {
        channels = ctx.client.channels.iter().cloned().collect();
        if channels.is_empty() {
            return Ok(confirmation("unsubscribe", None, ctx.client.subscription_count()));
        }
    }
    let mut replies = Vec::new();
    for channel in channels {
        if ctx.client.channels.remove(&channel) {
            ctx.server.pubsub.unsubscribe(&channel, ctx.client.id());
        }
        replies.push(confirmation("unsubscribe", Some(channel), ctx.client.subscription_count()));
    }
    update_counts(ctx);
    Ok(Reply::Many(replies))
}

/// ```text
/// PUNSUBSCRIBE [pattern [pattern ...]]
/// ```
pub fn punsubscribe(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let mut patterns = args.rest();
    if patterns.is_empty() {
        patterns = ctx.client.patterns.iter().cloned().collect();
        if patterns.is_empty() {
            return Ok(confirmation("punsubscribe", None, ctx.client.subscription_count()));
        }
    }
    let mut replies = Vec::new();
    for pattern in patterns {
        if ctx.client.patterns.remove(&pattern) {
            ctx.server.pubsub.punsubscribe(&pattern, ctx.client.id());
        }
        replies.push(confirmation("punsubscribe", Some(pattern), ctx.client.subscription_count()));
    }
    update_counts(ctx);
    Ok(Reply::Many(replies))
}

/// Drops every subscription of the client (RESET, disconnect).
pub fn unsubscribe_all(ctx: &mut Ctx<'_>) {
    let id = ctx.client.id();
    for channel in std::mem::take(&mut ctx.client.channels) {
        ctx.server.pubsub.unsubscribe(&channel, id);
    }
    for pattern in std::mem::take(&mut ctx.client.patterns) {
        ctx.server.pubsub.punsubscribe(&pattern, id);
    }
    for channel in std::mem::take(&mut ctx.client.shard_channels) {
        ctx.server.pubsub.sunsubscribe(&channel, id);
    }
    update_counts(ctx);
}

/// ```text
/// SSUBSCRIBE shardchannel [shardchannel ...]
/// ```
pub fn ssubscribe(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    if ctx.client.in_exec {
        return Err(CmdError::err("SSUBSCRIBE isn't allowed for a DENY BLOCKING client"));
    }
    let mut replies = Vec::new();
    for channel in args.rest() {
        if ctx.client.shard_channels.insert(channel.clone()) {
            ctx.server.pubsub.ssubscribe(channel.clone(), &ctx.client.handle);
        }
        replies.push(confirmation("ssubscribe", Some(channel), ctx.client.shard_channels.len()));
    }
    update_counts(ctx);
    Ok(Reply::Many(replies))
}

/// ```text
/// SUNSUBSCRIBE [shardchannel [shardchannel ...]]
/// ```
pub fn sunsubscribe(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let mut channels = args.rest();
    if channels.is_empty() {
        channels = ctx.client.shard_channels.iter().cloned().collect();
        if channels.is_empty() {
            return Ok(confirmation("sunsubscribe", None, 0));
        }
    }
    let mut replies = Vec::new();
    for channel in channels {
        if ctx.client.shard_channels.remove(&channel) {
            ctx.server.pubsub.sunsubscribe(&channel, ctx.client.id());
        }
        replies.push(confirmation("sunsubscribe", Some(channel), ctx.client.shard_channels.len()));
    }
    update_counts(ctx);
    Ok(Reply::Many(replies))
}

/// ```text
/// SPUBLISH shardchannel message
/// ```
pub fn spublish(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let channel = args.next_bytes()?;
    let message = args.next_bytes()?;
    ctx.server.stats.pubsub_messages.fetch_add(1, Ordering::Relaxed);
    Ok(Reply::Int(ctx.server.pubsub.spublish(&channel, &message) as i64))
}

/// ```text
/// PUBSUB SHARDCHANNELS [pattern]
/// ```
pub fn pubsub_shardchannels(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    if args.remaining() > 1 {
        let sub = String::from_utf8_lossy(&args.argv()[1]).into_owned();
        return Err(CmdError::err(format!(
            "unknown subcommand or wrong number of arguments for '{sub}'. Try PUBSUB HELP."
        )));
    }
    let pattern = args.rest().pop();
    let channels = ctx.server.pubsub.shard_channels(pattern.as_deref());
    Ok(Reply::Array(channels.into_iter().map(Reply::Bulk).collect()))
}

/// ```text
/// PUBSUB SHARDNUMSUB [shardchannel [shardchannel ...]]
/// ```
pub fn pubsub_shardnumsub(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let mut reply = Vec::new();
    for channel in args.rest() {
        let count = ctx.server.pubsub.shard_numsub(&channel);
        reply.push(Reply::Bulk(channel));
        reply.push(Reply::Int(count as i64));
    }
    Ok(Reply::Array(reply))
}

/// ```text
/// PUBLISH channel message
/// ```
pub fn publish(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let channel = args.next_bytes()?;
    let message = args.next_bytes()?;
    ctx.server.stats.pubsub_messages.fetch_add(1, Ordering::Relaxed);
    Ok(Reply::Int(ctx.server.pubsub.publish(&channel, &message) as i64))
}

/// ```text
/// PUBSUB CHANNELS [pattern]
/// ```
pub fn pubsub_channels(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    if args.remaining() > 1 {
        let sub = String::from_utf8_lossy(&args.argv()[1]).into_owned();
        return Err(CmdError::err(format!(
            "unknown subcommand or wrong number of arguments for '{sub}'. Try PUBSUB HELP."
        )));
    }
    let pattern = args.rest().pop();
    Ok(Reply::Array(ctx.server.pubsub.channels(pattern.as_deref()).into_iter().map(Reply::Bulk).collect()))
}

/// ```text
/// PUBSUB NUMSUB [channel [channel ...]]
/// ```
pub fn pubsub_numsub(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let mut reply = Vec::new();
    for channel in args.rest() {
        let count = ctx.server.pubsub.numsub(&channel);
        reply.push(Reply::Bulk(channel));
        reply.push(Reply::Int(count as i64));
    }
    Ok(Reply::Array(reply))
}

/// ```text
/// PUBSUB NUMPAT
/// ```
pub fn pubsub_numpat(ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    Ok(Reply::Int(ctx.server.pubsub.numpat() as i64))
}

/// ```text
/// PUBSUB HELP
/// ```
pub fn pubsub_help(_ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    Ok(super::connection::help(&[
        "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CHANNELS [<pattern>]",
        "    Return the currently active channels matching a <pattern> (default: '*').",
        "NUMPAT",
        "    Return number of subscriptions to patterns.",
        "NUMSUB [<channel> ...]",
        "    Return the number of subscribers for the specified channels, excluding",
        "    pattern subscriptions(default: no channels).",
        "SHARDCHANNELS [<pattern>]",
        "    Return the currently active shard level channels matching a <pattern> (default: '*').",
        "SHARDNUMSUB [<shardchannel> ...]",
        "    Return the number of subscribers for the specified shard level channel(s)",
        "HELP",
        "    Prints this help.",
    ]))
}
