//! CONFIG GET, SET and REWRITE over the parameter table (`crate::config::params`), as Redis 7.0 does them:
//! GET takes several names or glob patterns (patterns skip hidden parameters; an alias is listed under
//! its own name too); SET takes several pairs and changes all or none of them; REWRITE keeps the config
//! file's comments and lines in place and appends what changed.

use bytes::Bytes;

use super::{Args, CmdError, Ctx};
use crate::config::params::{self, Found, FIXED, HIDDEN, IMMUTABLE, PROTECTED};
use crate::resp::Reply;

/// ```text
/// CONFIG GET parameter [parameter ...]
/// ```
pub fn get(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let config = ctx.server.lock_config().clone();
    let mut pairs: Vec<(Bytes, String)> = Vec::new();
    for pattern in args.rest() {
        if !pattern.iter().any(|b| matches!(b, b'[' | b'*' | b'?')) {
            // A plain name is looked up (case-insensitively) and answered under the name as given.
            if pairs.iter().any(|(name, _)| *name == pattern) {
                continue;
            }
            if let Some(found) = params::lookup(&String::from_utf8_lossy(&pattern)) {
                pairs.push((pattern.clone(), config.get(found.param.name).unwrap_or_default()));
            }
            continue;
        }
        for (name, param) in params::all_names() {
            if param.has(HIDDEN) || pairs.iter().any(|(n, _)| n.as_ref() == name.as_bytes()) {
                continue;
            }
            if crate::glob::matches(&pattern, name.as_bytes(), true) {
                pairs.push((Bytes::from_static(name.as_bytes()), config.get(param.name).unwrap_or_default()));
            }
        }
    }
    Ok(Reply::Map(pairs.into_iter().map(|(name, value)| (Reply::Bulk(name), Reply::bulk(value))).collect()))
}

fn failed(name: &str, why: &str) -> CmdError {
    CmdError::err(format!("CONFIG SET failed (possibly related to argument '{name}') - {why}"))
}

/// True if setting `found` to `value` leaves its value as it is (compared as CONFIG GET shows it).
fn keeps_value(ctx: &Ctx<'_>, found: &Found, value: &[u8]) -> bool {
    let mut config = ctx.server.lock_config().clone();
    let before = config.get(found.name);
    config.set_param(found.name, &String::from_utf8_lossy(value)).is_ok() && config.get(found.name) == before
}

/// ```text
/// CONFIG SET parameter value [parameter value ...]
/// ```
pub fn set(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let rest = args.rest();
    if !rest.len().is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    // First pass, as Redis: the first unknown, immutable or repeated name fails the whole command.
    let mut chosen: Vec<(Found, String)> = Vec::new();
    for pair in rest.chunks(2) {
        let given = String::from_utf8_lossy(&pair[0]).into_owned();
        let Some(found) = params::lookup(&given) else {
            return Err(CmdError::err(format!("Unknown option or number of arguments for CONFIG SET - '{given}'")));
        };
        if found.param.has(IMMUTABLE) && !(found.param.has(FIXED) && keeps_value(ctx, &found, &pair[1])) {
            return Err(failed(&given, "can't set immutable config"));
        }
        if found.param.has(PROTECTED) {
            return Err(failed(&given, "can't set protected config"));
        }
        if chosen.iter().any(|(f, _)| f.name == found.name) {
            return Err(failed(&given, "duplicate parameter"));
        }
        chosen.push((found, String::from_utf8_lossy(&pair[1]).into_owned()));
    }
    // Second pass on a copy: every value is validated before any takes effect, so a bad one leaves the
    // configuration as it was (Redis restores its backup).
    let mut config = ctx.server.lock_config().clone();
    for (found, value) in &chosen {
        config.set_param(found.name, value).map_err(|why| failed(found.name, &why))?;
    }
    if chosen.iter().any(|(found, _)| found.param.name == "maxclients") {
        let wanted = config.maxclients as u64;
        let fits = crate::server::settings::clients_the_fd_limit_fits(wanted);
        if fits < wanted {
            let why =
                format!("The operating system is not able to handle the specified number of clients, try with {fits}");
            return Err(failed("maxclients", &why));
        }
    }
    if config.tls_enabled() {
        // Redis fails here when it cannot set up TLS (no usable certificate); Velo has no TLS at all.
        tracing::warn!("CONFIG SET refused: Velo has no TLS (tls-port, tls-replication, tls-cluster stay off)");
        let (found, _) = chosen.iter().find(|(f, _)| f.param.name.starts_with("tls-")).unwrap_or(&chosen[0]);
        return Err(failed(found.name, "Unable to update TLS configuration. Check server logs."));
    }
    *ctx.server.lock_config() = config;
    ctx.server.apply_config();
    Ok(Reply::Ok)
}

/// ```text
/// CONFIG REWRITE
/// ```
pub fn rewrite(ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    let config = ctx.server.lock_config().clone();
    let Some(path) = &config.config_file else {
        return Err(CmdError::err("The server is running without a config file"));
    };
    let old = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(CmdError::err(format!("Rewriting config file: {e}"))),
    };
    let tmp = path.with_extension("rewrite.tmp");
    let write = || -> std::io::Result<()> {
        use std::io::Write as _;
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(config.rewrite_file_text(&old).as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| CmdError::err(format!("Rewriting config file: {e}")))?;
    Ok(Reply::Ok)
}
