//! The pub/sub registry: channel, pattern and shard-channel subscribers, and message delivery.
//!
//! Shard channels (SSUBSCRIBE/SPUBLISH) are a namespace of their own: outside cluster mode they behave
//! like channels without patterns, with separate subscriptions and counts (as Redis 7.0).
//!
//! Delivery pushes a [`Reply::Push`] into each subscriber's channel; the subscriber's connection task
//! encodes it for its own protocol (an array in RESP2, a `>` push in RESP3). A subscriber that does not
//! read is disconnected once its output passes the `pubsub` class's `client-output-buffer-limit`
//! (`server::obuf`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::client::ClientHandle;
use crate::resp::Reply;

type Subscribers = HashMap<Bytes, Vec<Arc<ClientHandle>>>;

/// Channels and patterns.
#[derive(Default)]
pub struct PubSub {
    channels: Mutex<Subscribers>,
    patterns: Mutex<Subscribers>,
    shard_channels: Mutex<Subscribers>,
}

fn lock(map: &Mutex<Subscribers>) -> std::sync::MutexGuard<'_, Subscribers> {
    map.lock().unwrap_or_else(|p| p.into_inner())
}

fn add(map: &Mutex<Subscribers>, name: Bytes, client: &Arc<ClientHandle>) {
    let mut map = lock(map);
    let list = map.entry(name).or_default();
    if !list.iter().any(|c| c.id == client.id) {
        list.push(client.clone());
    }
}

fn remove(map: &Mutex<Subscribers>, name: &Bytes, client_id: u64) {
    let mut map = lock(map);
    if let Some(list) = map.get_mut(name) {
        list.retain(|c| c.id != client_id);
        if list.is_empty() {
            map.remove(name);
        }
    }
}

/// The names in `map` matching `pattern` (all if `None`).
fn active(map: &Mutex<Subscribers>, pattern: Option<&[u8]>) -> Vec<Bytes> {
    let matcher = pattern.map(|p| crate::glob::Pattern::new(p, false));
    lock(map).keys().filter(|c| matcher.as_ref().is_none_or(|m| m.matches(c))).cloned().collect()
}

impl PubSub {
    /// Subscribes a client to a channel.
    pub fn subscribe(&self, channel: Bytes, client: &Arc<ClientHandle>) {
        add(&self.channels, channel, client);
    }

    /// Unsubscribes a client from a channel.
    pub fn unsubscribe(&self, channel: &Bytes, client_id: u64) {
        remove(&self.channels, channel, client_id);
    }

    /// Subscribes a client to a pattern.
    pub fn psubscribe(&self, pattern: Bytes, client: &Arc<ClientHandle>) {
        add(&self.patterns, pattern, client);
    }

    /// Unsubscribes a client from a pattern.
    pub fn punsubscribe(&self, pattern: &Bytes, client_id: u64) {
        remove(&self.patterns, pattern, client_id);
    }

    /// Subscribes a client to a shard channel.
    pub fn ssubscribe(&self, channel: Bytes, client: &Arc<ClientHandle>) {
        add(&self.shard_channels, channel, client);
    }

    /// Unsubscribes a client from a shard channel.
    pub fn sunsubscribe(&self, channel: &Bytes, client_id: u64) {
        remove(&self.shard_channels, channel, client_id);
    }

    /// Delivers a shard message (`smessage`); returns the number of receivers.
    pub fn spublish(&self, channel: &Bytes, message: &Bytes) -> usize {
        let map = lock(&self.shard_channels);
        let Some(list) = map.get(channel) else { return 0 };
        for client in list {
            let push =
                Reply::Push(vec![Reply::bulk("smessage"), Reply::Bulk(channel.clone()), Reply::Bulk(message.clone())]);
            client.push(push);
        }
        list.len()
    }

    /// Active shard channels matching `pattern` (all if `None`).
    pub fn shard_channels(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        active(&self.shard_channels, pattern)
    }

    /// Subscribers of a shard channel.
    pub fn shard_numsub(&self, channel: &Bytes) -> usize {
        lock(&self.shard_channels).get(channel).map_or(0, Vec::len)
    }

    /// Delivers a message; returns the number of receivers (Redis counts a client once per match).
    pub fn publish(&self, channel: &Bytes, message: &Bytes) -> usize {
        let mut receivers = 0;
        if let Some(list) = lock(&self.channels).get(channel) {
            for client in list {
                let push = Reply::Push(vec![
                    Reply::bulk("message"),
                    Reply::Bulk(channel.clone()),
                    Reply::Bulk(message.clone()),
                ]);
                client.push(push);
                receivers += 1;
            }
        }
        for (pattern, list) in lock(&self.patterns).iter() {
            if crate::glob::matches(pattern, channel, false) {
                for client in list {
                    let push = Reply::Push(vec![
                        Reply::bulk("pmessage"),
                        Reply::Bulk(pattern.clone()),
                        Reply::Bulk(channel.clone()),
                        Reply::Bulk(message.clone()),
                    ]);
                    client.push(push);
                    receivers += 1;
                }
            }
        }
        receivers
    }

    /// Active channels (with at least one subscriber) matching `pattern` (all if `None`).
    pub fn channels(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let matcher = pattern.map(|p| crate::glob::Pattern::new(p, false));
        lock(&self.channels).keys().filter(|c| matcher.as_ref().is_none_or(|m| m.matches(c))).cloned().collect()
    }

    /// Subscribers of a channel.
    pub fn numsub(&self, channel: &Bytes) -> usize {
        lock(&self.channels).get(channel).map_or(0, Vec::len)
    }

    /// Number of distinct patterns subscribed.
    pub fn numpat(&self) -> usize {
        lock(&self.patterns).len()
    }
}
