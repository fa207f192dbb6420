//! Lua scripting and functions (EVAL, EVALSHA, SCRIPT, FUNCTION, FCALL) as Redis 7.0 runs them.
//!
//! # Layout
//! - [`vm`]: one Lua 5.1 interpreter with Redis's environment (the `redis` API, sandbox, error handler).
//! - [`bytecode`]: whether a compiled script assigns globals (if not, it reads them without the proxy).
//! - [`capi`]: `redis.call` on the raw Lua stack and the C shells of the `redis.*` helpers (the unsafe
//!   Lua code, with its invariants).
//! - [`convert`]: Lua values ↔ replies.
//! - [`libs`]: `cjson`, `bit`, `math.random`, written in Rust.
//! - [`pack`]: `struct` and `cmsgpack`, written in Rust.
//! - [`info`]: the scripting fields of INFO.
//! - [`current`]: the running script's state, reached by `redis.call` and the count hook.
//! - [`functions`]: function libraries: FUNCTION LOAD, the registry, DUMP/RESTORE payloads, the file
//!   that keeps them in the data directory.
//! - [`turn`]: which connection runs the next script; waiting connections free their worker.
//!
//! # Running a script
//! The dispatcher takes [`crate::server::Server::command_lock`] exclusively for EVAL/EVALSHA/FCALL and
//! their `_RO` forms, so a script runs as one step with respect to every other client whichever slots its
//! keys are in (inside MULTI, EXEC already holds it). `redis.call` goes through
//! [`crate::server::dispatch::call`], the path EXEC uses: handlers lock their slots, commit, and
//! [`crate::cmd::Ctx::touch`] keys (WATCH, blocked clients); blocking commands answer at once.
//! A script runs inline on its runtime worker; the count hook hands the worker off once it has used
//! [`current::HANDOFF_AFTER`] of CPU time (see [`current::hook`], [`current::Budget`] and `server::gate`).
//! Its writes run in one engine transaction (opened by the dispatcher), whose records and commit wait in
//! the connection's WAL write group and reach the OS in one write before the script's reply goes out
//! (`engine::group`).
//!
//! # Busy scripts
//! [`Scripting::running`] records the running script. Past `busy-reply-threshold` (`lua-time-limit`),
//! clients that would wait for the command lock get `-BUSY` instead ([`Scripting::shared_lock`]); SCRIPT
//! KILL / FUNCTION KILL set the interpreter's kill flag, which a count hook turns into an error inside the
//! script; SHUTDOWN NOSAVE (and SIGTERM) kill it whatever it did and shut down.

pub mod bytecode;
pub mod capi;
pub mod convert;
pub mod current;
pub mod functions;
pub mod info;
pub mod libs;
pub mod pack;
pub mod turn;
pub mod vm;

use hashbrown::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mlua::Function;

use crate::cmd::spec::Flags;
use crate::cmd::{CmdError, CommandSpec, Ctx};
use crate::resp::{Protocol, Reply};
use vm::Vm;

/// Default `busy-reply-threshold` in milliseconds (Redis's `lua-time-limit`).
pub const DEFAULT_BUSY_THRESHOLD_MS: u64 = 5000;

/// How long a client waits for the command lock on its worker before handing off, unless the script
/// has already handed off (see [`Scripting::wait_for_lock`]).
const WAITER_HANDOFF_AFTER: Duration = Duration::from_millis(100);

/// How long a client spins for the command lock held by a script before it sleeps.
const SPIN: Duration = Duration::from_micros(50);

/// How long a client spins on the command lock with only the CPU's pause hint before it starts yielding
/// its thread. A script holds the lock for a few µs, so most waits end within this: each `sched_yield`
/// costs a system call, and on an idle machine the waiting worker made ~1.7 of them per script
/// (docs/performance.md, issue 9, branch `script5`).
const PAUSE: Duration = Duration::from_micros(2);

/// `-BUSY` for clients while an EVAL script is busy.
pub const BUSY_EVAL: &str = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
/// `-BUSY` for clients while a function is busy.
pub const BUSY_FUNCTION: &str =
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";

/// Hex SHA-1 of `bytes` (script ids, `redis.sha1hex`).
pub fn sha1_hex(bytes: &[u8]) -> String {
    let sha = sha1_bytes(bytes);
    // Hex digits are ASCII.
    String::from_utf8_lossy(&sha).into_owned()
}

/// A script id: the lowercase hex SHA-1 of its body.
type Sha = [u8; 40];

/// Hex SHA-1 of `bytes`, without allocating (EVAL hashes its body on every call it has not seen).
fn sha1_bytes(bytes: &[u8]) -> Sha {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = sha1_smol::Sha1::from(bytes).digest().bytes();
    let mut sha = [0u8; 40];
    for (i, byte) in digest.iter().enumerate() {
        sha[2 * i] = HEX[usize::from(byte >> 4)];
        sha[2 * i + 1] = HEX[usize::from(byte & 15)];
    }
    sha
}

/// `sha` as an id, lowercased; `None` unless it is 40 bytes long.
fn sha_key(sha: &[u8]) -> Option<Sha> {
    let mut key: Sha = sha.try_into().ok()?;
    key.make_ascii_lowercase();
    Some(key)
}

/// Script flags (the `#!lua flags=` shebang, `redis.register_function` flags).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScriptFlags(pub u8);

impl ScriptFlags {
    /// No shebang: the EVAL compatibility mode (writes allowed, flags from the commands).
    pub const EVAL_COMPAT: ScriptFlags = ScriptFlags(1);
    /// `no-writes`.
    pub const NO_WRITES: ScriptFlags = ScriptFlags(2);
    /// `allow-oom`.
    pub const ALLOW_OOM: ScriptFlags = ScriptFlags(4);
    /// `allow-stale`.
    pub const ALLOW_STALE: ScriptFlags = ScriptFlags(8);
    /// `no-cluster`.
    pub const NO_CLUSTER: ScriptFlags = ScriptFlags(16);
    /// `allow-cross-slot-keys`.
    pub const ALLOW_CROSS_SLOT: ScriptFlags = ScriptFlags(32);

    /// The flags with their names, in Redis's order (FUNCTION LIST shows them in this order).
    pub const NAMED: [(ScriptFlags, &'static str); 5] = [
        (ScriptFlags::NO_WRITES, "no-writes"),
        (ScriptFlags::ALLOW_OOM, "allow-oom"),
        (ScriptFlags::ALLOW_STALE, "allow-stale"),
        (ScriptFlags::NO_CLUSTER, "no-cluster"),
        (ScriptFlags::ALLOW_CROSS_SLOT, "allow-cross-slot-keys"),
    ];

    /// True if every flag of `other` is set.
    pub fn has(self, other: ScriptFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// The flag named `name`.
    pub fn named(name: &[u8]) -> Option<ScriptFlags> {
        Self::NAMED.iter().find(|(_, n)| n.as_bytes() == name).map(|(f, _)| *f)
    }
}

/// Reads a body's `#!` line: the flags and how many bytes to skip (the line without its `\n`, so that
/// line numbers stay the user's). No shebang: EVAL compatibility mode.
pub fn shebang(body: &[u8]) -> Result<(ScriptFlags, usize), String> {
    if !body.starts_with(b"#!") {
        return Ok((ScriptFlags::EVAL_COMPAT, 0));
    }
    let Some(end) = body.iter().position(|&b| b == b'\n') else {
        return Err("Invalid script shebang".into());
    };
    // Split as Redis splits it (`sdssplitargs`): quotes group, unbalanced quotes are invalid.
    let Some(parts) = crate::resp::decode::split_args(&body[..end]) else {
        return Err("Invalid engine in script shebang".into());
    };
    let parts: Vec<String> = parts.iter().map(|p| String::from_utf8_lossy(p).into_owned()).collect();
    let Some(engine) = parts.first() else {
        return Err("Invalid engine in script shebang".into());
    };
    if engine != "#!lua" {
        return Err(format!("Unexpected engine in script shebang: {engine}"));
    }
    let mut flags = ScriptFlags(0);
    for part in &parts[1..] {
        let Some(list) = part.strip_prefix("flags=") else {
            return Err(format!("Unknown lua shebang option: {part}"));
        };
        for name in list.split(',') {
            match ScriptFlags::named(name.as_bytes()) {
                Some(flag) => flags.0 |= flag.0,
                None => return Err(format!("Unexpected flag in script shebang: {name}")),
            }
        }
    }
    Ok((flags, end))
}

/// A cached EVAL script.
struct Script {
    function: Function,
    /// The function's registry slot (`capi::register`), for runs without mlua's entry.
    registered: std::ffi::c_int,
    flags: ScriptFlags,
    /// The body's length (INFO's `used_memory_scripts_eval`).
    body_len: usize,
}

/// The EVAL interpreter and its script cache (SCRIPT FLUSH replaces both).
struct EvalState {
    vm: Vm,
    scripts: HashMap<Sha, Script>,
    /// Each cached body's id, so that an EVAL of a body already seen skips its SHA-1 (a map probe of the
    /// body costs a fraction of hashing it).
    by_body: HashMap<Bytes, Sha>,
}

impl EvalState {
    fn new(vm: Vm) -> EvalState {
        EvalState { vm, scripts: HashMap::new(), by_body: HashMap::new() }
    }
}

/// Why [`Scripting::exclusive_lock`] returned without the lock.
#[derive(Debug)]
pub enum LockWait {
    /// `-BUSY`: a script runs past `busy-reply-threshold`.
    Busy(CmdError),
    /// The running script is long: wait for the script turn as a task instead (see `may_wait_turn`).
    Turn,
}

/// The script that is running, for BUSY and SCRIPT/FUNCTION KILL.
#[derive(Debug, Clone)]
pub struct Running {
    /// When it started.
    pub started: Instant,
    /// EVAL (true) or FCALL.
    pub eval: bool,
    /// Its interpreter's kill flag.
    pub kill: Arc<AtomicBool>,
    /// It called a write command (it can no longer be killed).
    pub wrote: Arc<AtomicBool>,
    /// The function name (FUNCTION STATS) or the script's sha.
    pub name: String,
    /// The command that started it (FUNCTION STATS).
    pub command: Vec<Bytes>,
}

/// Everything about scripting the server shares.
pub struct Scripting {
    eval: Mutex<EvalState>,
    /// Function libraries and their interpreter.
    pub functions: Mutex<functions::Functions>,
    running: Mutex<RunningSlot>,
    /// Set by a run that called a write command; one flag reused by every run (reset when one starts).
    wrote: Arc<AtomicBool>,
    /// A script is running (the fast path of [`Scripting::busy_error`], checked for every command).
    active: AtomicBool,
    /// The running script has handed off (it is long): clients waiting for it hand off too.
    long: AtomicBool,
    /// Signalled when a script ends, for clients waiting for the command lock.
    ended: Condvar,
    /// How many clients wait on [`Scripting::ended`] (no signal, a system call, when none do).
    waiters: AtomicU64,
    busy_threshold_ms: AtomicU64,
    /// Which connection on a runtime worker dispatches the next script command (see [`turn`]).
    pub turn: turn::Turn,
}

/// The running script, and the last one's record kept for the next run to fill (its name and command
/// buffers are reused: no allocation per run).
#[derive(Default)]
struct RunningSlot {
    current: Option<Running>,
    spare: Option<Running>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Scripting {
    /// Scripting state with the function libraries found in `dir` (see [`functions::FILE_NAME`]).
    pub fn open(dir: &std::path::Path) -> anyhow::Result<Scripting> {
        let vm = Vm::new().map_err(|e| anyhow::anyhow!("cannot create the Lua interpreter: {e}"))?;
        Ok(Scripting {
            eval: Mutex::new(EvalState::new(vm)),
            functions: Mutex::new(functions::Functions::open(dir)?),
            running: Mutex::default(),
            wrote: Arc::new(AtomicBool::new(false)),
            active: AtomicBool::new(false),
            long: AtomicBool::new(false),
            ended: Condvar::new(),
            waiters: AtomicU64::new(0),
            busy_threshold_ms: AtomicU64::new(DEFAULT_BUSY_THRESHOLD_MS),
            turn: turn::Turn::default(),
        })
    }

    /// `busy-reply-threshold` in milliseconds (0: never busy).
    pub fn busy_threshold_ms(&self) -> u64 {
        self.busy_threshold_ms.load(Ordering::Relaxed)
    }

    /// Sets `busy-reply-threshold`.
    pub fn set_busy_threshold_ms(&self, ms: u64) {
        self.busy_threshold_ms.store(ms, Ordering::Relaxed);
    }

    /// The running script, if any.
    pub fn running(&self) -> Option<Running> {
        lock(&self.running).current.clone()
    }

    /// `-BUSY` if a script has run past the threshold and `spec` may not run meanwhile.
    pub fn busy_error(&self, spec: &CommandSpec) -> Option<CmdError> {
        if !self.active.load(Ordering::Acquire) {
            return None;
        }
        let threshold = self.busy_threshold_ms();
        let running = lock(&self.running);
        let running = running.current.as_ref()?;
        if threshold == 0 || running.started.elapsed() < Duration::from_millis(threshold) {
            return None;
        }
        if spec.has(Flags::ALLOW_BUSY) {
            return None;
        }
        Some(CmdError::Raw(if running.eval { BUSY_EVAL } else { BUSY_FUNCTION }.into()))
    }

    /// When the running script passes `busy-reply-threshold` (`None`: no script runs, or no threshold).
    pub fn busy_at(&self) -> Option<Instant> {
        if !self.active.load(Ordering::Acquire) {
            return None;
        }
        let threshold = self.busy_threshold_ms();
        if threshold == 0 {
            return None;
        }
        let started = lock(&self.running).current.as_ref()?.started;
        Some(started + Duration::from_millis(threshold))
    }

    /// The command lock taken shared, or `-BUSY` when a script holds it past the threshold.
    pub fn shared_lock<'s>(
        &self,
        lock: &'s RwLock<()>,
        spec: &CommandSpec,
    ) -> Result<RwLockReadGuard<'s, ()>, CmdError> {
        let waited = self.wait_for_lock(
            spec,
            false,
            || match lock.try_read() {
                Ok(guard) => Some(guard),
                Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            },
            || lock.read().unwrap_or_else(|p| p.into_inner()),
        );
        waited.map_err(|wait| match wait {
            LockWait::Busy(error) => error,
            LockWait::Turn => unreachable!("a shared lock's wait never gives up for the script turn"),
        })
    }

    /// The command lock taken exclusively, or `-BUSY` (as [`Scripting::shared_lock`]). `may_wait_turn`:
    /// a script command that holds no script turn, run inline on a worker; rather than leave its worker
    /// when the running script turns out long, it gives up ([`LockWait::Turn`]) and waits for the turn as
    /// a task.
    pub fn exclusive_lock<'s>(
        &self,
        lock: &'s RwLock<()>,
        spec: &CommandSpec,
        may_wait_turn: bool,
    ) -> Result<RwLockWriteGuard<'s, ()>, LockWait> {
        self.wait_for_lock(
            spec,
            may_wait_turn,
            || match lock.try_write() {
                Ok(guard) => Some(guard),
                Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            },
            || lock.write().unwrap_or_else(|p| p.into_inner()),
        )
    }

    /// Takes a lock with `try_take`, waiting while a script holds it: the wait is on [`Scripting::ended`]
    /// (woken as soon as the script ends, no polling) with a timeout so that the waiter notices the
    /// busy threshold passing; once the script has handed off (see [`current::hook`]) the wait is a
    /// blocking section for tokio (the waiter's worker hands its other tasks off). When no script holds
    /// the lock (EXEC, SAVE), `take` blocks as any lock does.
    fn wait_for_lock<G>(
        &self,
        spec: &CommandSpec,
        may_wait_turn: bool,
        try_take: impl Fn() -> Option<G>,
        take: impl FnOnce() -> G,
    ) -> Result<G, LockWait> {
        // Scripts last microseconds: spin a little before sleeping on the condition variable, since a
        // sleep and a wake-up cost more than most scripts (and much more on a loaded machine). The spin
        // also covers the lock held by a script's command before its run starts and after it ends (no
        // script `active` then): blocking on the lock there cost a futex sleep and wake-up per contended
        // script on an idle machine (docs/performance.md, issue 9). The first `PAUSE` of it only
        // pauses the CPU between tries: most waits end there, without a `sched_yield` system call.
        let start = Instant::now();
        let spin_until = start + SPIN;
        let pause_until = start + PAUSE;
        loop {
            if let Some(guard) = try_take() {
                return Ok(guard);
            }
            let now = Instant::now();
            if now < pause_until {
                for _ in 0..8 {
                    std::hint::spin_loop();
                }
                continue;
            }
            if now < spin_until {
                std::hint::spin_loop();
                std::thread::yield_now();
                continue;
            }
            if let Some(error) = self.busy_error(spec) {
                return Err(LockWait::Busy(error));
            }
            let running = lock(&self.running);
            let Some(started) = running.current.as_ref().map(|r| r.started) else {
                drop(running);
                return Ok(take());
            };
            let threshold = Duration::from_millis(self.busy_threshold_ms());
            let elapsed = started.elapsed();
            let mut wait = Duration::from_millis(100);
            if !threshold.is_zero() && threshold > elapsed {
                wait = wait.min(threshold - elapsed + Duration::from_millis(1));
            }
            // Hand off once the script is known to be long (it handed off itself), or has held the lock
            // for long whatever the reason (a preempted script is not long: waiting on the worker is
            // cheaper than a hand-off, which costs a thread).
            let handed_off = self.long.load(Ordering::Acquire) || elapsed >= WAITER_HANDOFF_AFTER;
            if handed_off && may_wait_turn {
                return Err(LockWait::Turn);
            }
            if !handed_off {
                wait = wait.min(Duration::from_millis(1));
            }
            self.waiters.fetch_add(1, Ordering::SeqCst);
            let wait_once = move || {
                let _ = self.ended.wait_timeout(running, wait).unwrap_or_else(|p| p.into_inner());
            };
            if handed_off {
                crate::server::gate::leave_inline_batch();
                blocking(wait_once);
            } else {
                wait_once();
            }
            self.waiters.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Marks the running script as long (it has handed off its worker).
    pub fn mark_long(&self) {
        self.long.store(true, Ordering::SeqCst);
        // Connections waiting for the script turn wait for the lock instead (BUSY, hand-off).
        self.turn.release_waiters();
    }

    /// Set while the running script is long (it handed its worker off), for [`turn::Turn::take`].
    pub fn long_flag(&self) -> &AtomicBool {
        &self.long
    }

    /// SCRIPT KILL (`eval`) or FUNCTION KILL.
    pub fn kill(&self, eval: bool) -> Result<Reply, CmdError> {
        let running = lock(&self.running);
        let Some(running) = running.current.as_ref() else {
            return Err(CmdError::Raw("NOTBUSY No scripts in execution right now.".into()));
        };
        if running.wrote.load(Ordering::Relaxed) {
            return Err(CmdError::Raw("UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.".into()));
        }
        if eval && !running.eval {
            return Err(CmdError::Raw(BUSY_FUNCTION.into()));
        }
        if !eval && running.eval {
            return Err(CmdError::Raw(BUSY_EVAL.into()));
        }
        running.kill.store(true, Ordering::Relaxed);
        Ok(Reply::Ok)
    }

    /// Stops the running script whatever it did (SHUTDOWN NOSAVE while busy).
    pub fn force_kill(&self) {
        if let Some(running) = lock(&self.running).current.as_ref() {
            running.kill.store(true, Ordering::Relaxed);
        }
    }

    /// SCRIPT LOAD: compiles and caches `body`; its sha.
    pub fn load(&self, body: &[u8]) -> Result<String, CmdError> {
        let mut eval = lock(&self.eval);
        let sha = sha1_bytes(body);
        compile_cached(&mut eval, sha, body)?;
        Ok(String::from_utf8_lossy(&sha).into_owned())
    }

    /// SCRIPT EXISTS for one sha.
    pub fn exists(&self, sha: &[u8]) -> bool {
        sha_key(sha).is_some_and(|sha| lock(&self.eval).scripts.contains_key(&sha))
    }

    /// SCRIPT FLUSH: a new interpreter, an empty cache.
    pub fn flush(&self) -> Result<(), CmdError> {
        let vm = Vm::new().map_err(|e| CmdError::err(format!("cannot create the Lua interpreter: {e}")))?;
        *lock(&self.eval) = EvalState::new(vm);
        Ok(())
    }

    /// Number of cached scripts, the interpreter's memory and the bodies' lengths (INFO).
    pub fn eval_stats(&self) -> (usize, usize, usize) {
        let eval = lock(&self.eval);
        let bodies = eval.scripts.values().map(|s| s.body_len).sum();
        (eval.scripts.len(), eval.vm.lua.used_memory(), bodies)
    }

    /// EVAL / EVALSHA and their `_RO` forms. `script` is the body, or the sha for EVALSHA.
    pub fn eval(
        &self,
        ctx: &mut Ctx<'_>,
        script: &Bytes,
        by_sha: bool,
        read_only: bool,
        keys: Vec<Bytes>,
        args: Vec<Bytes>,
    ) -> Result<Reply, CmdError> {
        let mut eval = lock(&self.eval);
        let noscript = || CmdError::Raw("NOSCRIPT No matching script. Please use EVAL.".into());
        let sha = if by_sha {
            sha_key(script).ok_or_else(noscript)?
        } else if let Some(sha) = eval.by_body.get(script.as_ref()) {
            *sha
        } else {
            let sha = sha1_bytes(script);
            compile_cached(&mut eval, sha, script)?;
            sha
        };
        let eval = &*eval;
        let Some(cached) = eval.scripts.get(&sha) else {
            return Err(noscript());
        };
        // Hex digits are ASCII.
        let sha = std::str::from_utf8(&sha).unwrap_or_default();
        let command = [Bytes::from_static(if by_sha { b"evalsha" } else { b"eval" })];
        // The cached function is borrowed, not cloned: a clone and its drop are two trips through mlua's
        // lock and reference slots per run.
        let call = Call {
            name: sha,
            function: &cached.function,
            registered: Some(cached.registered),
            flags: cached.flags,
            read_only,
            keys: &keys,
            args: &args,
            eval: true,
            command: &command,
        };
        self.run_call(&eval.vm, ctx, &call)
    }

    /// Runs a compiled script or function in `vm` for `ctx`'s client.
    pub fn run(&self, vm: &Vm, ctx: &mut Ctx<'_>, invocation: Invocation<'_>) -> Result<Reply, CmdError> {
        let call = Call {
            name: invocation.name,
            function: &invocation.function,
            registered: None,
            flags: invocation.flags,
            read_only: invocation.read_only,
            keys: &invocation.keys,
            args: &invocation.args,
            eval: invocation.eval,
            command: &invocation.command,
        };
        self.run_call(vm, ctx, &call)
    }

    fn run_call(&self, vm: &Vm, ctx: &mut Ctx<'_>, call: &Call<'_>) -> Result<Reply, CmdError> {
        let flags = call.flags;
        let compat = flags.has(ScriptFlags::EVAL_COMPAT);
        if !compat && !flags.has(ScriptFlags::NO_WRITES) && call.read_only {
            return Err(CmdError::err("Can not execute a script with write flag using *_ro command."));
        }
        // A script that may write needs the replicas `min-replicas-to-write` asks for (Velo has none).
        if !compat && !flags.has(ScriptFlags::NO_WRITES) && ctx.server.live.too_few_replicas() {
            return Err(CmdError::Raw(crate::server::settings::NOREPLICAS.into()));
        }
        let read_only = call.read_only || (!compat && flags.has(ScriptFlags::NO_WRITES));
        vm.kill.store(false, Ordering::Relaxed);
        let wrote = &*self.wrote;
        wrote.store(false, Ordering::Relaxed);
        // One clock read per run: the busy threshold and the hand-off budget count from it.
        let started = Instant::now();
        {
            let mut slot = lock(&self.running);
            let running = match slot.spare.take() {
                Some(mut running) => {
                    running.started = started;
                    running.eval = call.eval;
                    if !Arc::ptr_eq(&running.kill, &vm.kill) {
                        running.kill = vm.kill.clone();
                    }
                    running.name.clear();
                    running.name.push_str(call.name);
                    running.command.clear();
                    running.command.extend_from_slice(call.command);
                    running
                }
                None => Running {
                    started,
                    eval: call.eval,
                    kill: vm.kill.clone(),
                    wrote: self.wrote.clone(),
                    name: call.name.to_string(),
                    command: call.command.to_vec(),
                },
            };
            slot.current = Some(running);
        }
        self.active.store(true, Ordering::Release);
        let (db, proto) = (ctx.client.db, ctx.client.proto);
        let result = run_in_vm(vm, ctx, call, read_only, wrote, started);
        ctx.client.db = db;
        ctx.client.proto = proto;
        {
            let mut slot = lock(&self.running);
            slot.spare = slot.current.take();
            self.active.store(false, Ordering::Release);
            self.long.store(false, Ordering::Release);
            if self.waiters.load(Ordering::SeqCst) > 0 {
                self.ended.notify_all();
            }
        }
        let killed = vm.kill.swap(false, Ordering::Relaxed);
        vm.after_run();
        match result {
            Ok(reply) => Ok(reply),
            Err(error) if killed => {
                tracing::debug!(%error, "script killed");
                Err(CmdError::err("Script killed by user with SCRIPT KILL..."))
            }
            Err(error) => Err(CmdError::err(format!("Error running script {}, {:.100}", call.name, error))),
        }
    }
}

/// One run, everything borrowed (see [`Invocation`]).
struct Call<'a> {
    name: &'a str,
    function: &'a Function,
    /// The function's registry slot, if it has one (EVAL scripts; `capi::run_script`).
    registered: Option<std::ffi::c_int>,
    flags: ScriptFlags,
    read_only: bool,
    keys: &'a [Bytes],
    args: &'a [Bytes],
    eval: bool,
    command: &'a [Bytes],
}

/// One script or function call.
pub struct Invocation<'a> {
    /// The sha (EVAL) or the function name (FCALL), for error messages.
    pub name: &'a str,
    /// The compiled body (EVAL) or the registered callback (FCALL).
    pub function: Function,
    /// Its flags.
    pub flags: ScriptFlags,
    /// Called by a `_RO` command.
    pub read_only: bool,
    /// KEYS.
    pub keys: Vec<Bytes>,
    /// ARGV.
    pub args: Vec<Bytes>,
    /// EVAL (KEYS and ARGV are globals) or FCALL (they are the callback's arguments).
    pub eval: bool,
    /// The command that started the call.
    pub command: Vec<Bytes>,
}

/// Compiles and caches `body` under `sha` unless it is cached already.
fn compile_cached(eval: &mut EvalState, sha: Sha, body: &[u8]) -> Result<(), CmdError> {
    if eval.scripts.contains_key(&sha) {
        return Ok(());
    }
    let (flags, skip) = shebang(body).map_err(CmdError::err)?;
    let function = eval
        .vm
        .compile(&body[skip..], "@user_script", &eval.vm.env)
        .map_err(|message| CmdError::err(format!("Error compiling script (new function): {message}")))?;
    let failed = |error: mlua::Error| CmdError::err(format!("Error compiling script (new function): {error}"));
    // A script that assigns no global reads the globals directly (see `bytecode`): one table lookup per
    // global read instead of three through the read-only proxy, which has nothing to refuse it.
    if bytecode::assigns_globals(&function.dump(true)) == Some(false) {
        function.set_environment(eval.vm.lua.globals()).map_err(failed)?;
    }
    let registered = capi::register(&eval.vm.lua, &function).map_err(failed)?;
    eval.scripts.insert(sha, Script { function, registered, flags, body_len: body.len() });
    // A copy: a slice of the request would keep its whole read buffer alive.
    eval.by_body.insert(Bytes::copy_from_slice(body), sha);
    Ok(())
}

/// Runs the invocation with `redis.call` bound to `ctx` (through [`current`]); the reply (errors
/// included) or a failure of the interpreter itself.
fn run_in_vm(
    vm: &Vm,
    ctx: &mut Ctx<'_>,
    call: &Call<'_>,
    read_only: bool,
    wrote: &AtomicBool,
    started: Instant,
) -> mlua::Result<Reply> {
    let current = current::Current::new(ctx, read_only, wrote, started);
    let function = match call.registered {
        Some(slot) => capi::ScriptFunction::Registered(slot),
        None => capi::ScriptFunction::Unregistered(call.function),
    };
    current.enter(|| capi::run_script(vm, function, call.keys, call.args, call.eval, call.name, || current.proto()))
}

/// `redis.call` / `redis.pcall` of `args` (`Err` if one is not a string or number) for this thread's
/// running script: the command's reply, or why it did not run.
pub fn call_for_script(args: Result<Vec<Bytes>, ()>) -> capi::Outcome {
    current::with(|current| {
        let Some(current) = current else {
            return capi::Outcome::Outside;
        };
        let proto = current.proto();
        current
            .with_ctx(|ctx| match script_call(ctx, args, current.read_only, current.wrote, proto) {
                Ok(reply) => capi::Outcome::Reply(reply, proto),
                Err(ScriptCallError::Arguments(message)) => capi::Outcome::Refused(message),
                Err(ScriptCallError::Command(message)) => capi::Outcome::Rejected(message),
            })
            .unwrap_or(capi::Outcome::Outside)
    })
}

/// Why `redis.call` did not run a command.
enum ScriptCallError {
    /// The arguments are not a command line.
    Arguments(&'static str),
    /// The command may not run (unknown, wrong arity, NOSCRIPT, a write from a read-only script).
    Command(&'static str),
}

/// `redis.call` of `args` for the running script: the reply, or the error message Redis gives before a
/// command runs.
fn script_call(
    ctx: &mut Ctx<'_>,
    args: Result<Vec<Bytes>, ()>,
    read_only: bool,
    wrote: &AtomicBool,
    proto: Protocol,
) -> Result<Reply, ScriptCallError> {
    use ScriptCallError::{Arguments, Command};
    let argv = match args {
        Ok(argv) if argv.is_empty() => {
            return Err(Arguments("Please specify at least one argument for this redis lib call"));
        }
        Ok(argv) => argv,
        Err(()) => return Err(Arguments("Lua redis lib command arguments must be strings or integers")),
    };
    let (spec, start) = match crate::server::dispatch::resolve(&argv) {
        Ok(found) => found,
        Err(CmdError::WrongArity(_)) => return Err(Command("Wrong number of args calling Redis command from script")),
        Err(_) => return Err(Command("Unknown Redis command called from script")),
    };
    if spec.has(Flags::NOSCRIPT) && !ctx.server.debug.noscript_allowed() {
        return Err(Command("This Redis command is not allowed from script"));
    }
    if !crate::server::gate::runs_inline(spec) && !names_keys(spec) {
        // A keyless command that may take long (KEYS, SCAN, FLUSHALL...): leave the worker first. A command
        // on named keys runs inline: its walks over stored data hand off once the script is long
        // (`current::walk_hook`, `Ctx::checkpoint`). Handing off before every non-fast command (ZRANGEBYSCORE,
        // LREM...) cost a pause per script that a loaded machine stretched to milliseconds, while the server
        // took every request off its workers (docs/performance.md, BullMQ's removal scripts).
        current::hand_off();
    }
    // May-replicate commands (PUBLISH, ...) count as writes here, as in Redis: a read-only script may
    // then run during CLIENT PAUSE WRITE.
    if read_only && crate::server::pause::may_write(spec) {
        return Err(Command("Write commands are not allowed from read-only scripts."));
    }
    if spec.has(Flags::WRITE) && ctx.server.live.too_few_replicas() {
        return Err(Command("-NOREPLICAS Not enough good replicas to write."));
    }
    if spec.has(Flags::WRITE) {
        wrote.store(true, Ordering::Relaxed);
    }
    let caller_proto = ctx.client.proto;
    ctx.client.proto = proto;
    let in_script = crate::server::introspection::InScript::enter(ctx.client.handle.clone());
    let reply = crate::server::dispatch::call(ctx, spec, argv, start);
    drop(in_script);
    ctx.client.proto = caller_proto;
    Ok(reply)
}

/// True if `spec` names keys in its arguments (its cost is bounded by the collections it names).
fn names_keys(spec: &CommandSpec) -> bool {
    spec.first_key > 0 || !spec.key_finders.is_empty()
}

/// Runs `f`, which may block for long (a script, a wait for one), telling tokio first so that the
/// worker's other tasks (other connections, the listener) move to another thread.
pub fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

impl Scripting {
    /// The flags a script command's script declared (a shebang, or a function's flags), as Redis's
    /// `evalGetCommandFlags`/`fcallGetCommandFlags` find them before the command runs (CLIENT PAUSE
    /// WRITE lets a `no-writes` script through). `None`: no declared flags (EVAL compatibility mode, an
    /// unknown sha or function), or the cache is locked by a running script: the command's own flags
    /// apply.
    pub fn declared_flags(&self, spec: &CommandSpec, argv: &[Bytes]) -> Option<ScriptFlags> {
        let body_or_name = argv.get(1)?;
        let flags = match spec.fullname {
            "eval" | "eval_ro" => shebang(body_or_name).ok()?.0,
            "evalsha" | "evalsha_ro" => {
                let sha = sha_key(body_or_name)?;
                self.eval.try_lock().ok()?.scripts.get(&sha)?.flags
            }
            "fcall" | "fcall_ro" => {
                let name = String::from_utf8_lossy(body_or_name);
                self.functions.try_lock().ok()?.function(&name)?.flags
            }
            _ => return None,
        };
        (!flags.has(ScriptFlags::EVAL_COMPAT)).then_some(flags)
    }
}

/// Commands that run a script: they take the command lock exclusively.
pub fn runs_script(spec: &CommandSpec) -> bool {
    matches!(spec.fullname, "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro")
}

/// Commands that run without the command lock while a script holds it (they only look at or stop the
/// script).
pub fn bypasses_lock(spec: &CommandSpec) -> bool {
    matches!(spec.fullname, "script|kill" | "function|kill" | "function|stats")
}
