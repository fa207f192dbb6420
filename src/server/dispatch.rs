//! The dispatch gate: lookup → arity → MULTI queueing → pub/sub context → handler, with statistics.
//!
//! Policy lives here once (Redis's `processCommand`); handlers assume it passed. Later gates (AUTH, ACL,
//! read-only replica, OOM, loading) slot in between arity and queueing.
//!
//! Blocking: a handler that asks to block ([`Ctx::block`]) only blocks when run from here directly; run by
//! EXEC its reply stands (Redis's "deny blocking"). After every top-level command the clients blocked on
//! keys it made ready are served (`server::blocking`), before the command's own reply goes out.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use crate::cmd::table::lookup;
use crate::cmd::{Args, CmdError, CommandSpec, Ctx};
use crate::resp::{Protocol, Reply};
use crate::server::blocking::Waiter;
use crate::server::client::Multi;
use crate::server::stats::Stats;

/// Commands that run instead of being queued inside MULTI.
const NOT_QUEUED: &[&str] = &["exec", "discard", "multi", "watch", "quit", "reset"];

/// Commands allowed in a RESP2 connection that has subscriptions.
const SUBSCRIBED_ALLOWED: &[&str] =
    &["subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ssubscribe", "sunsubscribe", "ping", "quit", "reset"];

/// Commands that need the command lock exclusively (everything else takes it shared).
const EXCLUSIVE: &[&str] = &["exec", "swapdb", "save"];

/// Resolves `argv` to a command (or subcommand) spec; the index where its arguments start.
pub fn resolve(argv: &[Bytes]) -> Result<(&'static CommandSpec, usize), CmdError> {
    let name = argv.first().ok_or(CmdError::Syntax)?;
    let spec = lookup(name).ok_or_else(|| CmdError::unknown_command(argv))?;
    if spec.subcommands.is_empty() {
        if !spec.arity_ok(argv.len()) {
            return Err(CmdError::WrongArity(spec.fullname));
        }
        return Ok((spec, 1));
    }
    match argv.get(1) {
        None if spec.handler.is_some() => Ok((spec, 1)),
        None => Err(CmdError::WrongArity(spec.fullname)),
        Some(sub_name) => {
            let sub = spec.subcommand(sub_name).ok_or_else(|| CmdError::unknown_subcommand(sub_name, spec.name))?;
            if !sub.arity_ok(argv.len()) {
                return Err(CmdError::WrongArity(sub.fullname));
            }
            Ok((sub, 2))
        }
    }
}

/// What a request came to.
pub enum Outcome {
    /// Send this reply.
    Reply(Reply),
    /// The client is blocked: send the waiter's reply once its wait ends.
    Blocked(std::sync::Arc<Waiter>),
    /// Not run: a script command that may wait for the script turn as a task
    /// ([`Client::may_wait_turn`](crate::server::client::Client)) found a long script running. The
    /// request, to run once the turn is taken.
    WaitTurn(Vec<Bytes>),
}

impl From<Reply> for Outcome {
    fn from(reply: Reply) -> Outcome {
        Outcome::Reply(reply)
    }
}

/// Runs one request through the gate.
pub fn execute(ctx: &mut Ctx<'_>, argv: Vec<Bytes>) -> Outcome {
    let (spec, start) = match resolve(&argv) {
        Ok(found) => found,
        Err(error) => {
            if let Some(multi) = ctx.client.multi.as_mut() {
                multi.aborted = true;
            }
            if let Ok(spec) = argv.first().and_then(|n| lookup(n)).ok_or(()) {
                Stats::bump(&ctx.server.stats.commands_by_id[spec.id].rejected);
            }
            let reply = error.reply();
            ctx.server.stats.error(&error.text());
            return reply.into();
        }
    };
    *ctx.client.handle.last_cmd.lock().unwrap_or_else(|p| p.into_inner()) = spec.fullname;
    if !ctx.client.authenticated && !spec.has(crate::cmd::spec::Flags::NO_AUTH) && ctx.server.live.auth_required() {
        if let Some(multi) = ctx.client.multi.as_mut() {
            multi.aborted = true;
        }
        return rejected(ctx, spec, CmdError::Raw("NOAUTH Authentication required.".into())).into();
    }
    if let Some(error) = crate::server::introspection::gate(ctx, spec) {
        return rejected(ctx, spec, error).into();
    }
    if spec.has(crate::cmd::spec::Flags::WRITE) && ctx.server.live.too_few_replicas() {
        if let Some(multi) = ctx.client.multi.as_mut() {
            multi.aborted = true;
        }
        return rejected(ctx, spec, CmdError::Raw(crate::server::settings::NOREPLICAS.into())).into();
    }
    if let Some(multi) = ctx.client.multi.as_mut() {
        if !NOT_QUEUED.contains(&spec.fullname) {
            if spec.has(crate::cmd::spec::Flags::NO_MULTI) {
                multi.aborted = true;
                return rejected(ctx, spec, CmdError::err("Command not allowed inside a transaction")).into();
            }
            // Redis's multi-mem: the arguments' bytes and a pointer for each.
            let mem = argv.iter().map(|a| a.len() + 8).sum::<usize>();
            ctx.client.handle.intro.multi_mem.fetch_add(mem, Ordering::Relaxed);
            multi.queued.push((spec, argv, start));
            ctx.client.handle.multi.store(multi.queued.len() as i64, Ordering::Relaxed);
            return Reply::simple("QUEUED").into();
        }
    }
    if ctx.client.proto == Protocol::Resp2
        && ctx.client.in_pubsub_context()
        && !SUBSCRIBED_ALLOWED.contains(&spec.fullname)
    {
        let error = CmdError::err(format!(
            "Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            spec.fullname
        ));
        return rejected(ctx, spec, error).into();
    }
    let scripting = &ctx.server.scripting;
    if let Some(error) = scripting.busy_error(spec) {
        return rejected(ctx, spec, error).into();
    }
    if crate::script::bypasses_lock(spec) || (spec.fullname == "shutdown" && scripting.running().is_some()) {
        // SCRIPT/FUNCTION KILL, FUNCTION STATS and SHUTDOWN must get through while a script holds the lock.
        if spec.fullname == "shutdown" {
            scripting.force_kill();
        }
        return run_and_serve(ctx, spec, argv, start);
    }
    if EXCLUSIVE.contains(&spec.fullname) || crate::script::runs_script(spec) {
        let may_wait_turn = ctx.client.may_wait_turn && crate::script::runs_script(spec);
        let _exclusive = match scripting.exclusive_lock(&ctx.server.command_lock, spec, may_wait_turn) {
            Ok(guard) => guard,
            Err(crate::script::LockWait::Busy(error)) => return rejected(ctx, spec, error).into(),
            Err(crate::script::LockWait::Turn) => return Outcome::WaitTurn(argv),
        };
        if crate::script::runs_script(spec) {
            // A script runs on the worker; past a time budget its count hook hands the worker's other
            // tasks off (script::current::hook), so short scripts pay no thread hand-off.
            run_and_serve(ctx, spec, argv, start)
        } else {
            crate::script::blocking(|| run_and_serve(ctx, spec, argv, start))
        }
    } else {
        let _shared = match scripting.shared_lock(&ctx.server.command_lock, spec) {
            Ok(guard) => guard,
            Err(error) => return rejected(ctx, spec, error).into(),
        };
        run_and_serve(ctx, spec, argv, start)
    }
}

/// Runs a top-level command (blocking allowed), then serves the blocked clients of the keys it made ready.
fn run_and_serve(ctx: &mut Ctx<'_>, spec: &'static CommandSpec, argv: Vec<Bytes>, start: usize) -> Outcome {
    let (reply, block) = run(ctx, spec, argv, start, true);
    let outcome = match block {
        Some(request) => Outcome::Blocked(ctx.server.blocking.register(ctx.client, request)),
        None => Outcome::Reply(reply),
    };
    ctx.server.blocking.serve_ready(ctx.server);
    outcome
}

/// Calls a resolved command's handler (no gate, no locking: EXEC uses this for queued commands). A
/// blocking command does not block here: its reply is the one for a timeout already reached.
pub fn call(ctx: &mut Ctx<'_>, spec: &'static CommandSpec, argv: Vec<Bytes>, start: usize) -> Reply {
    let _in_exec = crate::server::introspection::InExec::enter(ctx.client.handle.clone());
    run(ctx, spec, argv, start, false).0
}

/// Calls the handler with statistics; also returns its request to block, if it made one. `top`: run by
/// the client itself (not by EXEC or a script), so it may stop inside split-collection walks
/// (`cancel::interruptible`).
fn run(
    ctx: &mut Ctx<'_>,
    spec: &'static CommandSpec,
    argv: Vec<Bytes>,
    start: usize,
    top: bool,
) -> (Reply, Option<crate::server::blocking::BlockRequest>) {
    let Some(handler) = spec.handler else {
        return (CmdError::WrongArity(spec.fullname).reply(), None);
    };
    // The cheap stopwatch (`server::clock`): scripts run this for every command they call.
    let began = crate::server::clock::now();
    // Writes that must survive a crash together run in an engine transaction (docs/recovery.md
    // §"Transactions"); a single-key command does not open one and pays nothing.
    let engine = ctx.engine;
    let transaction = needs_transaction(spec, &argv).then(|| engine.transaction());
    let keymiss = ctx.server.notify.enabled(crate::server::notify::KEY_MISS);
    let lookups = crate::server::keymiss::before(ctx, spec, &argv, keymiss);
    let (access_db, created) = (ctx.db(), ctx.server.access.before_command(ctx, spec, &argv));
    let mut args = Args::new(argv, start);
    let mut result = if top {
        crate::server::cancel::interruptible(ctx, spec, |ctx| handler(ctx, &mut args))
    } else {
        // Called by a script: long walks hand the worker off (never stop); by EXEC: no hook.
        crate::elements::interrupt::with_hook(crate::script::current::walk_hook(), || handler(ctx, &mut args))
    };
    crate::server::keymiss::after(ctx, &result, lookups, keymiss);
    if !created.is_empty() {
        ctx.server.access.after_command(access_db, created);
    }
    if let Some(transaction) = transaction {
        if let Err(error) = transaction.commit() {
            result = Err(error.into());
        }
    }
    // Between commands no slot is locked: a script or EXEC of many large writes has what its pass's write
    // group holds written out past a cap (a failure poisons the slot; the group's close reports it).
    if let Err(error) = engine.write_group_if_over_cap() {
        tracing::error!(%error, "writing a write group's held WAL records failed");
    }
    let block = ctx.client.block.take().filter(|_| result.is_ok());
    let stats = &ctx.server.stats;
    let command = &stats.commands_by_id[spec.id];
    Stats::bump(&command.calls);
    Stats::bump(&stats.commands);
    let elapsed = began.elapsed();
    command.usec.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    ctx.server.metrics.record_latency(spec.id, elapsed.as_nanos() as u64);
    crate::server::introspection::after_command(ctx, spec, args.argv(), elapsed, block.is_some());
    let block = block.map(|request| crate::server::introspection::on_block(spec, args.argv(), elapsed, request));
    let reply = match result {
        Ok(reply) => {
            if let Reply::Error(text) = &reply {
                Stats::bump(&command.failed);
                stats.error(text);
            }
            reply
        }
        Err(error) => {
            Stats::bump(&command.failed);
            stats.error(&error.text());
            error.reply()
        }
    };
    (reply, block)
}

/// True for the commands whose writes must be durable all together: EXEC, scripts, and a write command naming
/// two or more distinct keys (MSET, RENAME, SMOVE, the STORE forms, ...), whose writes may span slots or
/// several WAL batches of one slot.
fn needs_transaction(spec: &CommandSpec, argv: &[Bytes]) -> bool {
    // Scripts and functions may write any keys, declared or not.
    if matches!(spec.fullname, "exec" | "eval" | "evalsha" | "fcall") {
        return true;
    }
    if !spec.has(crate::cmd::spec::Flags::WRITE) {
        return false;
    }
    let one_key = spec.key_finders.is_empty() && spec.first_key > 0 && spec.first_key == spec.last_key;
    if one_key || (spec.key_finders.is_empty() && spec.first_key <= 0) {
        return false;
    }
    let Some(positions) = spec.key_positions(argv) else { return false };
    let mut keys = positions.iter().filter_map(|&at| argv.get(at));
    let Some(first) = keys.next() else { return false };
    keys.any(|key| key != first)
}

/// A command refused by the gate after lookup: counted as rejected, answered with `error`.
fn rejected(ctx: &Ctx<'_>, spec: &CommandSpec, error: CmdError) -> Reply {
    Stats::bump(&ctx.server.stats.commands_by_id[spec.id].rejected);
    ctx.server.stats.error(&error.text());
    error.reply()
}

/// Starts a MULTI (used by the MULTI handler).
pub fn begin_multi(ctx: &mut Ctx<'_>) {
    ctx.client.multi = Some(Multi::default());
    ctx.client.handle.multi.store(0, Ordering::Relaxed);
}
