//! Commands: the table, the handler context, and one file per Redis command group.
//!
//! # Layout
//! - [`spec`]: [`CommandSpec`] and its flag sets; [`table`]: the entries, @generated from `commands/*.json`
//!   by [`codegen`]; [`keyspecs`]: Redis 7.0's key specs and their flags (COMMAND GETKEYSANDFLAGS, INFO).
//! - [`collection`]: loading, storing and modifying the collection types stored as one value.
//! - [`args`]: the argument cursor; `error`: [`CmdError`] with Redis's exact texts.
//! - Handlers, one file per group: [`connection`], [`string`], [`bitmap`], [`generic`] (keys),
//!   [`server`], [`transactions`], [`pubsub`], [`hyperloglog`], [`bloom`], [`hash`], [`set`], [`list`], [`zset`], [`geo`],
//!   [`sort`], [`stream`], [`introspection`] (CLIENT tracking/pause/setinfo, WAIT, SLOWLOG, LATENCY,
//!   MONITOR), [`memory`] (MEMORY), [`scripting`].
//!
//! A handler is `fn(&mut Ctx, &mut Args) -> Result<Reply, CmdError>`: it holds only the command's meaning.
//! Lookup, arity, MULTI queueing and the pub/sub context check happen before, in `server::dispatch`.
//! Atomicity: a read-modify-write handler works under `engine.lock_key`; a multi-key one locks the slots
//! involved in ascending order ([`Ctx::lock_slots`]). After changing a key (and committing), a handler
//! calls [`Ctx::touch`] so that WATCH and blocked clients see it. A blocking handler that finds nothing
//! ready calls [`Ctx::block`].

pub mod args;
pub mod auth;
pub mod bitmap;
pub mod bloom;
pub mod codegen;
pub mod collection;
pub mod config;
pub mod connection;
pub mod debug;
pub mod dump;
pub mod encoding;
mod error;
pub mod extfloat;
pub mod generic;
pub mod geo;
pub mod hash;
pub mod hyperloglog;
pub mod info;
pub mod introspection;
pub mod keyspecs;
pub mod list;
pub mod memory;
pub mod migrate;
pub mod module;
pub mod persistence;
pub mod pubsub;
pub mod reference;
pub mod replication;
pub mod reply_bound;
pub mod scan_page;
pub mod scripting;
pub mod server;
pub mod set;
pub mod sort;
mod sparkline;
pub mod spec;
pub mod stream;
pub mod string;
#[rustfmt::skip]
pub mod table;
pub mod transactions;
pub mod velo;
pub mod zset;

use bytes::Bytes;

pub use args::Args;
pub use error::CmdError;
pub use spec::CommandSpec;

use crate::engine::{Engine, SlotGuard};
use crate::resp::Reply;
use crate::server::client::Client;
use crate::server::Server;

/// What a handler sees: the server, the engine and the calling client.
pub struct Ctx<'a> {
    /// Shared server state.
    pub server: &'a Server,
    /// The storage engine.
    pub engine: &'a Engine,
    /// The calling connection's state.
    pub client: &'a mut Client,
}

impl<'a> Ctx<'a> {
    /// The physical database behind the client's selected (logical) database.
    pub fn db(&self) -> u16 {
        self.server.dbmap.physical(self.client.db)
    }

    /// Now, in Unix milliseconds.
    pub fn now_ms(&self) -> u64 {
        crate::engine::system_clock_ms()
    }

    /// A pseudo-random u64 for RANDOMKEY, SPOP, SRANDMEMBER, HRANDFIELD (not for anything that must be
    /// unpredictable): std's per-process random hasher keys over the time, the client and `salt`.
    pub fn random(&self, salt: u64) -> u64 {
        let state = std::collections::hash_map::RandomState::new();
        std::hash::BuildHasher::hash_one(&state, (self.now_ms(), self.client.id(), salt))
    }

    /// Records that `key` in physical database `db` changed: for WATCH, and for the clients blocked on it
    /// (both follow logical databases). This is the one place writers signal blocked clients: a waited-for
    /// key that now holds a list, sorted set or stream is ready (Redis signals when such a key is created).
    /// Call it after committing: it may read the key.
    pub fn touch(&self, db: u16, key: &[u8]) {
        let logical = self.server.dbmap.logical(db);
        self.server.watches.touch(logical, key);
        self.server.intro.tracking.invalidate(&self.server.clients, self.client.id(), key);
        if self.server.blocking.is_waited(logical, key) {
            let wakes =
                matches!(self.engine.key_info(db, key), Ok(Some(info)) if crate::server::blocking::wakes(info.kind));
            // A key gone or of another type matters to XREADGROUP waiters only (Redis 7.0 signals deleted
            // streams: their wait ends with UNBLOCKED).
            if wakes || self.server.blocking.waited_on_deletion(logical, key) {
                self.server.blocking.signal(logical, key);
            }
        }
    }

    /// The blocking pops' shape (BLPOP, BZPOPMIN, BLMPOP, ...): `pop` tries `keys` in order now (a key
    /// of another type met first is its error); when none has anything, the client waits until one of
    /// them holds a `kind`, and `pop` is tried with that key alone. Replies `*-1` on timeout or in MULTI.
    pub fn pop_or_block(
        &mut self,
        keys: Vec<Bytes>,
        timeout: Option<std::time::Duration>,
        kind: crate::engine::ValueKind,
        pop: impl Fn(&mut Ctx<'_>, &[Bytes]) -> Result<Option<Reply>, CmdError> + Send + Sync + 'static,
    ) -> Result<Reply, CmdError> {
        if let Some(reply) = pop(self, &keys)? {
            return Ok(reply);
        }
        let serve = move |ctx: &mut Ctx<'_>, key: &Bytes| {
            if !crate::server::blocking::holds(ctx, key, kind)? {
                return Ok(None);
            }
            pop(ctx, std::slice::from_ref(key))
        };
        Ok(self.block(keys, timeout, serve, Reply::NilArray))
    }

    /// Asks to block the client on `keys` (a blocking handler that found nothing ready): `serve` is tried
    /// with each key that becomes ready, in the client's context, until it answers (see `server::blocking`).
    /// Returns `instead`, the handler's reply where blocking is not allowed (inside MULTI/EXEC, where Redis
    /// answers as if the timeout had passed); the dispatcher drops it when the client does block.
    pub fn block(
        &mut self,
        keys: Vec<Bytes>,
        timeout: Option<std::time::Duration>,
        serve: impl Fn(&mut Ctx<'_>, &Bytes) -> Result<Option<Reply>, CmdError> + Send + Sync + 'static,
        instead: Reply,
    ) -> Reply {
        self.client.block = Some(crate::server::blocking::BlockRequest {
            keys,
            timeout,
            serve: Box::new(serve),
            timeout_reply: Reply::NilArray,
            on_deletion: false,
        });
        instead
    }

    /// Locks the slots of `keys` in ascending index order (deadlock-free); returns the guards with their
    /// slot indexes.
    pub fn lock_slots(&self, keys: &[&[u8]]) -> Vec<(usize, SlotGuard<'a>)> {
        let engine: &'a Engine = self.engine;
        let mut indexes: Vec<usize> = keys.iter().map(|key| engine.slot_of(key)).collect();
        indexes.sort_unstable();
        indexes.dedup();
        indexes.into_iter().map(|index| (index, engine.lock_slot(index))).collect()
    }
}

/// The value in `entry` decoded by `decode` with its expiry, if it is of `kind`; WRONGTYPE for any other
/// type; a stored value that does not decode is an error naming `what` (it never reaches a client as
/// data).
pub fn load_typed<T, E: std::fmt::Display>(
    entry: Option<crate::engine::Entry>,
    kind: crate::engine::ValueKind,
    what: &str,
    decode: impl FnOnce(&[u8]) -> Result<T, E>,
) -> Result<Option<(T, Option<u64>)>, CmdError> {
    match entry {
        None => Ok(None),
        Some(entry) if entry.kind != kind => Err(CmdError::WrongType),
        Some(entry) => decode(&entry.value)
            .map(|value| Some((value, entry.expire_at_ms)))
            .map_err(|err| CmdError::err(format!("stored {what} is unreadable: {err}"))),
    }
}

/// Commits every guard of [`Ctx::lock_slots`] (waits for durability under `fsync always`).
pub fn commit_all(guards: Vec<(usize, SlotGuard<'_>)>) -> Result<(), CmdError> {
    let mut first_error = None;
    for (_, guard) in guards {
        if let Err(error) = guard.commit() {
            first_error.get_or_insert(error);
        }
    }
    match first_error {
        Some(error) => Err(error.into()),
        None => Ok(()),
    }
}

/// The guard for `key` among those of [`Ctx::lock_slots`].
pub fn guard_for<'g, 'a>(
    guards: &'g mut [(usize, SlotGuard<'a>)],
    engine: &Engine,
    key: &[u8],
) -> &'g mut SlotGuard<'a> {
    let index = engine.slot_of(key);
    let position = guards.iter().position(|(i, _)| *i == index).expect("the key's slot was locked by lock_slots");
    &mut guards[position].1
}

/// Redis's protected actions (`enable-debug-command`, `enable-module-command`): `yes` allows every caller,
/// `local` only loopback connections, `no` (or anything else) none, with Redis's text naming `command`.
pub fn protected_action_allowed(ctx: &Ctx<'_>, parameter: &str, default: &str, command: &str) -> Result<(), CmdError> {
    let setting = ctx.server.config_value(parameter).unwrap_or_else(|| default.into());
    let local = || ctx.client.handle.addr.parse::<std::net::SocketAddr>().is_ok_and(|addr| addr.ip().is_loopback());
    match setting.as_str() {
        "yes" => Ok(()),
        "local" if local() => Ok(()),
        _ => Err(CmdError::err(format!(
            "{command} command not allowed. If the {parameter} option is set to \"local\", you can run it from a \
             local connection, otherwise you need to set this option in the configuration file, and then restart \
             the server."
        ))),
    }
}

/// Upper-cased text of an argument, for messages.
pub fn upper(arg: &Bytes) -> String {
    String::from_utf8_lossy(arg).to_ascii_uppercase()
}
