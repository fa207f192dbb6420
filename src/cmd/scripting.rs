//! Scripting commands: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT *, FUNCTION *, FCALL, FCALL_RO.
//!
//! The runtime is `crate::script`; these handlers parse arguments and give Redis's replies. The
//! dispatcher runs the script-running commands under the exclusive command lock.

use bytes::Bytes;

use super::connection::help;
use super::{Args, CmdError, Ctx};
use crate::resp::Reply;
use crate::script::functions::RestorePolicy;
use crate::script::{Invocation, Scripting};

fn scripting<'a>(ctx: &Ctx<'a>) -> &'a Scripting {
    &ctx.server.scripting
}

/// `numkeys key... arg...` after the script or function name.
fn keys_and_args(args: &mut Args, numkeys_error: &'static str) -> Result<(Vec<Bytes>, Vec<Bytes>), CmdError> {
    let numkeys = args.next_bytes()?;
    let numkeys: i64 = std::str::from_utf8(&numkeys).ok().and_then(|s| s.parse().ok()).ok_or_else(|| {
        if numkeys_error.is_empty() {
            CmdError::NotInteger
        } else {
            CmdError::err(numkeys_error)
        }
    })?;
    let rest = args.rest();
    if numkeys > rest.len() as i64 {
        return Err(CmdError::err("Number of keys can't be greater than number of args"));
    }
    if numkeys < 0 {
        return Err(CmdError::err("Number of keys can't be negative"));
    }
    let mut keys = rest;
    let args = keys.split_off(numkeys as usize);
    Ok((keys, args))
}

fn eval_generic(ctx: &mut Ctx<'_>, args: &mut Args, by_sha: bool, read_only: bool) -> Result<Reply, CmdError> {
    crate::server::introspection::begin_script_command(ctx, args.argv());
    let script = args.next_bytes()?;
    let (keys, argv) = keys_and_args(args, "")?;
    scripting(ctx).eval(ctx, &script, by_sha, read_only, keys, argv)
}

/// ```text
/// EVAL script numkeys [key ...] [arg ...]
/// ```
pub fn eval(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    eval_generic(ctx, args, false, false)
}

/// ```text
/// EVAL_RO script numkeys [key ...] [arg ...]
/// ```
pub fn eval_ro(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    eval_generic(ctx, args, false, true)
}

/// ```text
/// EVALSHA sha1 numkeys [key ...] [arg ...]
/// ```
pub fn evalsha(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    eval_generic(ctx, args, true, false)
}

/// ```text
/// EVALSHA_RO sha1 numkeys [key ...] [arg ...]
/// ```
pub fn evalsha_ro(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    eval_generic(ctx, args, true, true)
}

/// ```text
/// SCRIPT LOAD script
/// ```
pub fn script_load(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let body = args.next_bytes()?;
    Ok(Reply::bulk(scripting(ctx).load(&body)?))
}

/// ```text
/// SCRIPT EXISTS sha1 [sha1 ...]
/// ```
pub fn script_exists(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let shas = args.rest();
    Ok(Reply::Array(shas.iter().map(|sha| Reply::Int(i64::from(scripting(ctx).exists(sha)))).collect()))
}

/// ```text
/// SCRIPT FLUSH [ASYNC|SYNC]
/// ```
pub fn script_flush(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let rest = args.rest();
    match rest.as_slice() {
        [] => {}
        [mode] if mode.eq_ignore_ascii_case(b"sync") || mode.eq_ignore_ascii_case(b"async") => {}
        _ => return Err(CmdError::err("SCRIPT FLUSH only support SYNC|ASYNC option")),
    }
    scripting(ctx).flush()?;
    Ok(Reply::Ok)
}

/// ```text
/// SCRIPT KILL
/// ```
pub fn script_kill(ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    scripting(ctx).kill(true)
}

/// ```text
/// SCRIPT DEBUG YES|SYNC|NO
/// ```
/// `NO` (debugging off, the only mode Velo runs scripts in) is accepted as Redis accepts it; `YES` and
/// `SYNC` would start the Lua debugger (LDB) on the next EVAL, which Velo does not have, so they are
/// refused rather than accepted and ignored (docs/compat.md).
pub fn script_debug(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let mode = args.next_bytes()?;
    if ctx.client.handle.intro.in_exec.load(std::sync::atomic::Ordering::Relaxed) {
        // Redis refuses it while replies are pending, which inside EXEC they always are.
        return Err(CmdError::err("SCRIPT DEBUG must be called outside a pipeline"));
    }
    if mode.eq_ignore_ascii_case(b"no") {
        Ok(Reply::Ok)
    } else if mode.eq_ignore_ascii_case(b"yes") || mode.eq_ignore_ascii_case(b"sync") {
        Err(CmdError::err(
            "SCRIPT DEBUG YES/SYNC is not supported: Velo has no Lua debugger (LDB); use SCRIPT DEBUG NO",
        ))
    } else {
        Err(CmdError::err("Use SCRIPT DEBUG YES/SYNC/NO"))
    }
}

/// ```text
/// SCRIPT HELP
/// ```
pub fn script_help(_ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    Ok(help(&[
        "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "DEBUG (YES|SYNC|NO)",
        "    Set the debug mode for subsequent scripts executed.",
        "EXISTS <sha1> [<sha1> ...]",
        "    Return information about the existence of the scripts in the script cache.",
        "FLUSH [ASYNC|SYNC]",
        "    Flush the Lua scripts cache. Very dangerous on replicas.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the scripts cache.",
        "    * SYNC: Synchronously flush the scripts cache.",
        "KILL",
        "    Kill the currently executing Lua script.",
        "LOAD <script>",
        "    Load a script into the scripts cache without executing it.",
        "HELP",
        "    Prints this help.",
    ]))
}

fn fcall_generic(ctx: &mut Ctx<'_>, args: &mut Args, read_only: bool) -> Result<Reply, CmdError> {
    crate::server::introspection::begin_script_command(ctx, args.argv());
    let command = args.argv().to_vec();
    let name = args.next_bytes()?;
    let name = String::from_utf8_lossy(&name).into_owned();
    let functions = scripting(ctx).functions.lock().unwrap_or_else(|p| p.into_inner());
    let Some(function) = functions.function(&name) else {
        return Err(CmdError::err("Function not found"));
    };
    let (keys, argv) = keys_and_args(args, "Bad number of keys provided")?;
    let invocation = Invocation {
        name: &name,
        function: function.callback.clone(),
        flags: function.flags,
        read_only,
        keys,
        args: argv,
        eval: false,
        command,
    };
    scripting(ctx).run(&functions.vm, ctx, invocation)
}

/// ```text
/// FCALL function numkeys [key ...] [arg ...]
/// ```
pub fn fcall(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    fcall_generic(ctx, args, false)
}

/// ```text
/// FCALL_RO function numkeys [key ...] [arg ...]
/// ```
pub fn fcall_ro(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    fcall_generic(ctx, args, true)
}

fn persist(functions: &crate::script::functions::Functions) -> Result<(), CmdError> {
    functions.persist().map_err(|error| {
        tracing::error!(%error, "cannot persist function libraries");
        CmdError::err(format!("cannot persist function libraries: {error}"))
    })
}

/// ```text
/// FUNCTION LOAD [REPLACE] function-code
/// ```
pub fn function_load(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let rest = args.rest();
    let mut replace = false;
    let mut at = 0;
    while at + 1 < rest.len() {
        if rest[at].eq_ignore_ascii_case(b"replace") {
            replace = true;
            at += 1;
            continue;
        }
        return Err(CmdError::err(format!("Unknown option given: {}", String::from_utf8_lossy(&rest[at]))));
    }
    let Some(code) = rest.get(at) else {
        return Err(CmdError::err("Function code is missing"));
    };
    let mut functions = scripting(ctx).functions.lock().unwrap_or_else(|p| p.into_inner());
    let name = functions.load(code, replace).map_err(CmdError::err)?;
    persist(&functions)?;
    Ok(Reply::bulk(name))
}

/// ```text
/// FUNCTION LIST [LIBRARYNAME library-name-pattern] [WITHCODE]
/// ```
pub fn function_list(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let rest = args.rest();
    let (mut with_code, mut pattern) = (false, None);
    let mut at = 0;
    while at < rest.len() {
        let arg = &rest[at];
        if !with_code && arg.eq_ignore_ascii_case(b"withcode") {
            with_code = true;
        } else if pattern.is_none() && arg.eq_ignore_ascii_case(b"libraryname") {
            if at + 1 >= rest.len() {
                return Err(CmdError::err("library name argument was not given"));
            }
            at += 1;
            pattern = Some(rest[at].clone());
        } else {
            return Err(CmdError::err(format!("Unknown argument {}", String::from_utf8_lossy(arg))));
        }
        at += 1;
    }
    let functions = scripting(ctx).functions.lock().unwrap_or_else(|p| p.into_inner());
    let mut libraries = Vec::new();
    for library in functions.libraries.values() {
        if let Some(pattern) = &pattern {
            if !crate::glob::matches(pattern, library.name.as_bytes(), true) {
                continue;
            }
        }
        let list = library
            .functions
            .values()
            .map(|f| {
                let flags = crate::script::ScriptFlags::NAMED
                    .iter()
                    .filter(|(flag, _)| f.flags.has(*flag))
                    .map(|(_, name)| Reply::simple(*name))
                    .collect();
                Reply::Map(vec![
                    (Reply::bulk("name"), Reply::bulk(f.name.clone())),
                    (Reply::bulk("description"), f.description.clone().map(Reply::Bulk).unwrap_or(Reply::Nil)),
                    (Reply::bulk("flags"), Reply::Set(flags)),
                ])
            })
            .collect();
        let mut map = vec![
            (Reply::bulk("library_name"), Reply::bulk(library.name.clone())),
            (Reply::bulk("engine"), Reply::bulk("LUA")),
            (Reply::bulk("functions"), Reply::Array(list)),
        ];
        if with_code {
            map.push((Reply::bulk("library_code"), Reply::Bulk(library.code.clone())));
        }
        libraries.push(Reply::Map(map));
    }
    Ok(Reply::Array(libraries))
}

/// ```text
/// FUNCTION DELETE library-name
/// ```
pub fn function_delete(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let name = args.next_bytes()?;
    let mut functions = scripting(ctx).functions.lock().unwrap_or_else(|p| p.into_inner());
    if !functions.delete(&String::from_utf8_lossy(&name)) {
        return Err(CmdError::err("Library not found"));
    }
    persist(&functions)?;
    Ok(Reply::Ok)
}

/// ```text
/// FUNCTION FLUSH [ASYNC|SYNC]
/// ```
pub fn function_flush(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let rest = args.rest();
    match rest.as_slice() {
        [] => {}
        [mode] if mode.eq_ignore_ascii_case(b"sync") || mode.eq_ignore_ascii_case(b"async") => {}
        [_] => return Err(CmdError::err("FUNCTION FLUSH only supports SYNC|ASYNC option")),
        _ => {
            let sub = String::from_utf8_lossy(&args.argv()[1]).into_owned();
            return Err(CmdError::err(format!(
                "unknown subcommand or wrong number of arguments for '{sub}'. Try FUNCTION HELP."
            )));
        }
    }
    let mut functions = scripting(ctx).functions.lock().unwrap_or_else(|p| p.into_inner());
    functions.flush().map_err(CmdError::err)?;
    persist(&functions)?;
    Ok(Reply::Ok)
}

/// ```text
/// FUNCTION DUMP
/// ```
pub fn function_dump(ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    let functions = scripting(ctx).functions.lock().unwrap_or_else(|p| p.into_inner());
    Ok(Reply::bulk(functions.dump()))
}

/// ```text
/// FUNCTION RESTORE serialized-value [FLUSH|APPEND|REPLACE]
/// ```
pub fn function_restore(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let payload = args.next_bytes()?;
    let policy = match args.rest().as_slice() {
        [] => RestorePolicy::Append,
        [p] if p.eq_ignore_ascii_case(b"append") => RestorePolicy::Append,
        [p] if p.eq_ignore_ascii_case(b"replace") => RestorePolicy::Replace,
        [p] if p.eq_ignore_ascii_case(b"flush") => RestorePolicy::Flush,
        [_] => {
            return Err(CmdError::err("Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE."))
        }
        _ => {
            return Err(CmdError::err(
                "unknown subcommand or wrong number of arguments for 'restore'. Try FUNCTION HELP.",
            ))
        }
    };
    let mut functions = scripting(ctx).functions.lock().unwrap_or_else(|p| p.into_inner());
    functions.restore(&payload, policy).map_err(CmdError::err)?;
    persist(&functions)?;
    Ok(Reply::Ok)
}

/// ```text
/// FUNCTION STATS
/// ```
pub fn function_stats(ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    let running = scripting(ctx).running();
    if running.as_ref().is_some_and(|r| r.eval) {
        return Err(CmdError::Raw(crate::script::BUSY_EVAL.into()));
    }
    let running = match running {
        None => Reply::Nil,
        Some(running) => Reply::Map(vec![
            (Reply::bulk("name"), Reply::bulk(running.name)),
            (Reply::bulk("command"), Reply::Array(running.command.into_iter().map(Reply::Bulk).collect())),
            (Reply::bulk("duration_ms"), Reply::Int(running.started.elapsed().as_millis() as i64)),
        ]),
    };
    // The libraries lock is held by a running function: count from a snapshot only when free.
    let (libraries, functions) = match scripting(ctx).functions.try_lock() {
        Ok(f) => (f.libraries.len() as i64, f.index.len() as i64),
        Err(_) => (0, 0),
    };
    Ok(Reply::Map(vec![
        (Reply::bulk("running_script"), running),
        (
            Reply::bulk("engines"),
            Reply::Map(vec![(
                Reply::bulk("LUA"),
                Reply::Map(vec![
                    (Reply::bulk("libraries_count"), Reply::Int(libraries)),
                    (Reply::bulk("functions_count"), Reply::Int(functions)),
                ]),
            )]),
        ),
    ]))
}

/// ```text
/// FUNCTION KILL
/// ```
pub fn function_kill(ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    scripting(ctx).kill(false)
}

/// ```text
/// FUNCTION HELP
/// ```
pub fn function_help(_ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    Ok(help(&[
        "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "LOAD [REPLACE] <FUNCTION CODE>",
        "    Create a new library with the given library name and code.",
        "DELETE <LIBRARY NAME>",
        "    Delete the given library.",
        "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
        "    Return general information on all the libraries:",
        "    * Library name",
        "    * The engine used to run the Library",
        "    * Library description",
        "    * Functions list",
        "    * Library code (if WITHCODE is given)",
        "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
        "STATS",
        "    Return information about the current function running:",
        "    * Function name",
        "    * Command used to run the function",
        "    * Duration in MS that the function is running",
        "    If no function is running, return nil",
        "    In addition, returns a list of available engines.",
        "KILL",
        "    Kill the current running function.",
        "FLUSH [ASYNC|SYNC]",
        "    Delete all the libraries.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the libraries.",
        "    * SYNC: Synchronously flush the libraries.",
        "DUMP",
        "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
        "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
        "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
        "    control how to handle existing libraries (default APPEND):",
        "    * FLUSH: delete all existing libraries.",
        "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
        "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
        "      libraries with the new libraries (notice that even on this option there is a chance of failure",
        "      in case of functions name collision with another library).",
        "HELP",
        "    Prints this help.",
    ]))
}
