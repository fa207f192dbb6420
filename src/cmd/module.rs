//! MODULE: what Velo answers to clients that look for, load or unload Redis modules. Redis modules are C
//! code built against Redis's in-memory objects, so Velo loads none; clients that probe `MODULE LIST` at
//! start-up (to find RedisJSON, RediSearch, ...) get the honest empty list.

use super::args::Args;
use super::{CmdError, Ctx};
use crate::resp::Reply;

/// ```text
/// MODULE LIST
/// ```
pub fn list(_ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    Ok(Reply::Array(Vec::new()))
}

/// ```text
/// MODULE LOAD path [arg ...]
/// ```
pub fn load(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    refuse_load(ctx, args)
}

/// ```text
/// MODULE LOADEX path [CONFIG name value ...] [ARGS arg ...]
/// ```
pub fn loadex(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    refuse_load(ctx, args)
}

/// ```text
/// MODULE UNLOAD name
/// ```
pub fn unload(ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    check_allowed(ctx)?;
    // No module is ever loaded, so every name is unknown.
    Err(CmdError::err("Error unloading module: no such module with that name"))
}

/// ```text
/// MODULE HELP
/// ```
pub fn help(_ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    Ok(super::connection::help(&[
        "MODULE <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "LIST",
        "    Return a list of loaded modules.",
        "LOAD <path> [<arg> ...]",
        "    Load a module library from <path>, passing to it any optional arguments.",
        "LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
        "    Load a module library from <path>, while passing it module configurations and optional arguments.",
        "UNLOAD <name>",
        "    Unload a module.",
        "HELP",
        "    Prints this help.",
    ]))
}

fn refuse_load(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    check_allowed(ctx)?;
    let path = args.next_bytes()?;
    tracing::warn!(
        path = %String::from_utf8_lossy(&path),
        "MODULE LOAD refused: Velo cannot load Redis modules (they are built against Redis's in-memory objects)"
    );
    Err(CmdError::err("Error loading the extension. Please check the server logs."))
}

/// Redis's `enable-module-command` (default `no`, as Redis).
fn check_allowed(ctx: &Ctx<'_>) -> Result<(), CmdError> {
    super::protected_action_allowed(ctx, "enable-module-command", "no", "MODULE")
}
