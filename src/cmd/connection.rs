//! Connection commands: PING, ECHO, HELLO, QUIT, RESET, SELECT, CLIENT.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::{Args, CmdError, Ctx};
use crate::resp::{Protocol, Reply};
use crate::server::client::ReplyMode;

/// The Redis version Velo's command set follows (HELLO, INFO `redis_version`).
pub const REDIS_VERSION: &str = "7.0.0";

/// ```text
/// PING [message]
/// ```
pub fn ping(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    if args.remaining() > 1 {
        return Err(CmdError::WrongArity("ping"));
    }
    let message = args.rest().pop();
    if ctx.client.proto == Protocol::Resp2 && ctx.client.in_pubsub_context() {
        return Ok(Reply::Array(vec![Reply::bulk("pong"), Reply::Bulk(message.unwrap_or_default())]));
    }
    Ok(match message {
        Some(message) => Reply::Bulk(message),
        None => Reply::simple("PONG"),
    })
}

/// ```text
/// ECHO message
/// ```
pub fn echo(_ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    Ok(Reply::Bulk(args.next_bytes()?))
}

/// ```text
/// HELLO [protover [AUTH username password] [SETNAME clientname]]
/// ```
pub fn hello(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let mut proto = ctx.client.proto;
    if !args.is_empty() {
        let version =
            args.next_i64().map_err(|_| CmdError::err("Protocol version is not an integer or out of range"))?;
        proto = match version {
            2 => Protocol::Resp2,
            3 => Protocol::Resp3,
            _ => return Err(CmdError::Raw("NOPROTO unsupported protocol version".into())),
        };
    }
    // Options take effect in order, as Redis's: a SETNAME before a failing AUTH has named the client.
    while !args.is_empty() {
        let option = args.next_bytes()?;
        if option.eq_ignore_ascii_case(b"AUTH") && args.remaining() >= 2 {
            let user = args.next_bytes()?;
            let password = args.next_bytes()?;
            super::auth::authenticate(ctx, &user, &password)?;
        } else if option.eq_ignore_ascii_case(b"SETNAME") && args.remaining() >= 1 {
            let candidate = args.next_bytes()?;
            validate_name(&candidate)?;
            set_name(ctx, candidate);
        } else {
            return Err(CmdError::err(format!("Syntax error in HELLO option '{}'", String::from_utf8_lossy(&option))));
        }
    }
    if !ctx.client.authenticated && ctx.server.live.auth_required() {
        return Err(CmdError::Raw(super::auth::HELLO_NOAUTH.into()));
    }
    ctx.client.proto = proto;
    ctx.client.handle.resp.store(if proto == Protocol::Resp3 { 3 } else { 2 }, Ordering::Relaxed);
    Ok(Reply::Map(vec![
        (Reply::bulk("server"), Reply::bulk("redis")),
        (Reply::bulk("version"), Reply::bulk(REDIS_VERSION)),
        (Reply::bulk("proto"), Reply::Int(if proto == Protocol::Resp3 { 3 } else { 2 })),
        (Reply::bulk("id"), Reply::Int(ctx.client.id() as i64)),
        (Reply::bulk("mode"), Reply::bulk("standalone")),
        (Reply::bulk("role"), Reply::bulk("master")),
        (Reply::bulk("modules"), Reply::Array(Vec::new())),
    ]))
}

/// ```text
/// QUIT
/// ```
pub fn quit(ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    ctx.client.close = true;
    Ok(Reply::Ok)
}

/// ```text
/// RESET
/// ```
pub fn reset(ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    super::transactions::discard_state(ctx);
    super::transactions::unwatch_all(ctx);
    super::pubsub::unsubscribe_all(ctx);
    super::introspection::reset_client(ctx);
    ctx.client.proto = Protocol::Resp2;
    ctx.client.handle.resp.store(2, Ordering::Relaxed);
    ctx.client.db = 0;
    ctx.client.handle.db.store(0, Ordering::Relaxed);
    ctx.client.reply_mode = ReplyMode::On;
    ctx.client.authenticated = !ctx.server.live.auth_required();
    *ctx.client.handle.name.lock().unwrap_or_else(|p| p.into_inner()) = None;
    ctx.client.handle.no_evict.store(false, Ordering::Relaxed);
    ctx.client.handle.no_touch.store(false, Ordering::Relaxed);
    Ok(Reply::simple("RESET"))
}

/// Parses a database index as SELECT, MOVE and COPY do.
pub fn parse_db(ctx: &Ctx<'_>, arg: &[u8]) -> Result<u16, CmdError> {
    let db = super::args::parse_i64(arg).filter(|&n| i32::try_from(n).is_ok()).ok_or(CmdError::NotInteger)?;
    if db < 0 || db >= i64::from(ctx.server.databases()) {
        return Err(CmdError::DbIndexOutOfRange);
    }
    Ok(db as u16)
}

/// ```text
/// SELECT index
/// ```
pub fn select(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let db = parse_db(ctx, &args.next_bytes()?)?;
    ctx.client.db = db;
    ctx.client.handle.db.store(db, Ordering::Relaxed);
    Ok(Reply::Ok)
}

fn validate_name(name: &[u8]) -> Result<(), CmdError> {
    if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        return Err(CmdError::err("Client names cannot contain spaces, newlines or special characters."));
    }
    Ok(())
}

fn set_name(ctx: &mut Ctx<'_>, name: Bytes) {
    *ctx.client.handle.name.lock().unwrap_or_else(|p| p.into_inner()) = (!name.is_empty()).then_some(name);
}

/// ```text
/// CLIENT SETNAME connection-name
/// ```
pub fn client_setname(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let name = args.next_bytes()?;
    validate_name(&name)?;
    set_name(ctx, name);
    Ok(Reply::Ok)
}

/// ```text
/// CLIENT GETNAME
/// ```
pub fn client_getname(ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    Ok(match ctx.client.handle.name.lock().unwrap_or_else(|p| p.into_inner()).clone() {
        Some(name) => Reply::Bulk(name),
        None => Reply::Nil,
    })
}

/// ```text
/// CLIENT ID
/// ```
pub fn client_id(ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    Ok(Reply::Int(ctx.client.id() as i64))
}

/// ```text
/// CLIENT LIST [TYPE normal|master|replica|pubsub] [ID client-id ...]
/// ```
pub fn client_list(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let mut kind: Option<String> = None;
    let mut ids: Option<Vec<u64>> = None;
    while !args.is_empty() {
        if args.eat("TYPE") {
            let wanted = args.next_upper()?;
            if !["NORMAL", "MASTER", "REPLICA", "SLAVE", "PUBSUB"].contains(&wanted.as_str()) {
                return Err(CmdError::err(format!("Unknown client type '{}'", wanted.to_ascii_lowercase())));
            }
            kind = Some(wanted);
        } else if args.eat("ID") {
            let mut list = Vec::new();
            while !args.is_empty() {
                let id = args.next_i64().ok().filter(|&n| n > 0).ok_or_else(|| CmdError::err("Invalid client ID"))?;
                list.push(id as u64);
            }
            ids = Some(list);
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let mut text = String::new();
    for client in ctx.server.clients.all() {
        let pubsub = client.in_pubsub_context();
        let keep_kind = match kind.as_deref() {
            None => true,
            Some("NORMAL") => !pubsub,
            Some("PUBSUB") => pubsub,
            Some(_) => false,
        };
        if keep_kind && ids.as_ref().is_none_or(|ids| ids.contains(&client.id)) {
            text.push_str(&client.info_line());
            text.push('\n');
        }
    }
    Ok(Reply::Verbatim("txt", Bytes::from(text)))
}

/// ```text
/// CLIENT INFO
/// ```
pub fn client_info(ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    Ok(Reply::Verbatim("txt", Bytes::from(format!("{}\n", ctx.client.handle.info_line()))))
}

/// ```text
/// CLIENT KILL ip:port
/// CLIENT KILL [ID client-id] [ADDR ip:port] [LADDR ip:port] [SKIPME yes|no] [TYPE normal|pubsub] [USER name]
/// ```
pub fn client_kill(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    if args.remaining() == 1 {
        let addr = String::from_utf8_lossy(&args.next_bytes()?).into_owned();
        let target = ctx.server.clients.all().into_iter().find(|c| c.addr == addr);
        return match target {
            Some(client) => {
                kill(ctx, &client);
                Ok(Reply::Ok)
            }
            None => Err(CmdError::err("No such client")),
        };
    }
    let (mut id, mut addr, mut laddr, mut kind, mut user, mut skipme) = (None, None, None, None, None, true);
    while !args.is_empty() {
        let option = args.next_upper()?;
        let value = args.next_bytes()?;
        let text = String::from_utf8_lossy(&value).into_owned();
        match option.as_str() {
            "ID" => {
                id = Some(
                    super::args::parse_i64(&value)
                        .filter(|&n| n > 0)
                        .ok_or_else(|| CmdError::err("client-id should be greater than 0"))? as u64,
                )
            }
            "ADDR" => addr = Some(text),
            "LADDR" => laddr = Some(text),
            "TYPE" => {
                let wanted = text.to_ascii_lowercase();
                if !["normal", "master", "replica", "slave", "pubsub"].contains(&wanted.as_str()) {
                    return Err(CmdError::err(format!("Unknown client type '{text}'")));
                }
                kind = Some(wanted);
            }
            // Velo has only Redis's `default` user (the ACL comes later).
            "USER" if text == "default" => user = Some(text),
            "USER" => return Err(CmdError::err(format!("No such user '{text}'"))),
            "SKIPME" => {
                skipme = match text.to_ascii_lowercase().as_str() {
                    "yes" => true,
                    "no" => false,
                    _ => return Err(CmdError::Syntax),
                }
            }
            _ => return Err(CmdError::Syntax),
        }
    }
    let mut killed = 0;
    for client in ctx.server.clients.all() {
        let pubsub = client.in_pubsub_context();
        let matches = id.is_none_or(|id| id == client.id)
            && addr.as_ref().is_none_or(|a| *a == client.addr)
            && laddr.as_ref().is_none_or(|a| *a == client.laddr)
            && user.as_ref().is_none_or(|u| u == "default")
            && kind.as_deref().is_none_or(|k| match k {
                "normal" => !pubsub,
                "pubsub" => pubsub,
                _ => false,
            })
            && !(skipme && client.id == ctx.client.id());
        if matches {
            kill(ctx, &client);
            killed += 1;
        }
    }
    Ok(Reply::Int(killed))
}

/// Kills `client`. A client killing itself is closed once its reply is written, as Redis does
/// (`CLIENT_CLOSE_AFTER_COMMAND`): marking its handle killed would race the reply's write.
fn kill(ctx: &mut Ctx<'_>, client: &crate::server::client::ClientHandle) {
    if client.id == ctx.client.id() {
        ctx.client.close = true;
    } else {
        client.kill();
    }
}

/// ```text
/// CLIENT UNBLOCK client-id [TIMEOUT | ERROR]
/// ```
pub fn client_unblock(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    if args.remaining() > 2 {
        let sub = String::from_utf8_lossy(&args.argv()[1]).into_owned();
        return Err(CmdError::err(format!(
            "unknown subcommand or wrong number of arguments for '{sub}'. Try CLIENT HELP."
        )));
    }
    let id = args.next_i64()?;
    // The reason is checked before the client is looked up, as in Redis.
    let error = match args.peek() {
        None => false,
        Some(reason) if reason.eq_ignore_ascii_case(b"TIMEOUT") => false,
        Some(reason) if reason.eq_ignore_ascii_case(b"ERROR") => true,
        Some(_) => return Err(CmdError::err("CLIENT UNBLOCK reason should be TIMEOUT or ERROR")),
    };
    let unblocked = u64::try_from(id).is_ok_and(|id| ctx.server.blocking.unblock(id, error));
    if unblocked && error {
        // The error reply the unblocked client gets counts in INFO errorstats and its command's
        // `failed_calls`, as in Redis.
        ctx.server.stats.error("UNBLOCKED client unblocked via CLIENT UNBLOCK");
        if let Some(handle) = ctx.server.clients.get(id as u64) {
            crate::server::blocking::count_failed(ctx.server, &handle);
        }
    }
    Ok(Reply::Int(i64::from(unblocked)))
}

fn on_off(args: &mut Args) -> Result<bool, CmdError> {
    match args.next_upper()?.as_str() {
        "ON" => Ok(true),
        "OFF" => Ok(false),
        _ => Err(CmdError::Syntax),
    }
}

/// ```text
/// CLIENT NO-EVICT ON|OFF
/// ```
pub fn client_no_evict(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let on = on_off(args)?;
    ctx.client.handle.no_evict.store(on, Ordering::Relaxed);
    Ok(Reply::Ok)
}

/// ```text
/// CLIENT NO-TOUCH ON|OFF
/// ```
pub fn client_no_touch(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let on = on_off(args)?;
    ctx.client.handle.no_touch.store(on, Ordering::Relaxed);
    Ok(Reply::Ok)
}

/// ```text
/// CLIENT REPLY ON|OFF|SKIP
/// ```
pub fn client_reply(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    match args.next_upper()?.as_str() {
        "ON" => {
            ctx.client.reply_mode = ReplyMode::On;
            Ok(Reply::Ok)
        }
        "OFF" => {
            ctx.client.reply_mode = ReplyMode::Off;
            Ok(Reply::None)
        }
        "SKIP" => {
            if ctx.client.reply_mode != ReplyMode::Off {
                ctx.client.reply_mode = ReplyMode::SkipNext;
            }
            Ok(Reply::None)
        }
        _ => Err(CmdError::Syntax),
    }
}

/// Lines of a HELP reply.
pub fn help(lines: &[&str]) -> Reply {
    Reply::Array(lines.iter().map(|line| Reply::simple(line.to_string())).collect())
}

/// ```text
/// CLIENT HELP
/// ```
pub fn client_help(_ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    // Redis 7.0's lines in its order, then the two Redis 7.2 subcommands Velo also has (SETINFO, which
    // redis-py sends on connect, and NO-TOUCH) just before HELP, where 7.2 lists them.
    Ok(help(&[
        "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CACHING (YES|NO)",
        "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
        "GETREDIR",
        "    Return the client ID we are redirecting to when tracking is enabled.",
        "GETNAME",
        "    Return the name of the current connection.",
        "ID",
        "    Return the ID of the current connection.",
        "INFO",
        "    Return information about the current client connection.",
        "KILL <ip:port>",
        "    Kill connection made from <ip:port>.",
        "KILL <option> <value> [<option> <value> [...]]",
        "    Kill connections. Options are:",
        "    * ADDR (<ip:port>|<unixsocket>:0)",
        "      Kill connections made from the specified address",
        "    * LADDR (<ip:port>|<unixsocket>:0)",
        "      Kill connections made to specified local address",
        "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
        "      Kill connections by type.",
        "    * USER <username>",
        "      Kill connections authenticated by <username>.",
        "    * SKIPME (YES|NO)",
        "      Skip killing current connection (default: yes).",
        "LIST [options ...]",
        "    Return information about client connections. Options:",
        "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
        "      Return clients of specified type.",
        "UNPAUSE",
        "    Stop the current client pause, resuming traffic.",
        "PAUSE <timeout> [WRITE|ALL]",
        "    Suspend all, or just write, clients for <timeout> milliseconds.",
        "REPLY (ON|OFF|SKIP)",
        "    Control the replies sent to the current connection.",
        "SETNAME <name>",
        "    Assign the name <name> to the current connection.",
        "UNBLOCK <clientid> [TIMEOUT|ERROR]",
        "    Unblock the specified blocked client.",
        "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
        "         [OPTIN] [OPTOUT] [NOLOOP]",
        "    Control server assisted client side caching.",
        "TRACKINGINFO",
        "    Report tracking status for the current connection.",
        "NO-EVICT (ON|OFF)",
        "    Protect current client connection from eviction.",
        "NO-TOUCH (ON|OFF)",
        "    Will not touch LRU/LFU stats when this mode is on.",
        "SETINFO <option> <value>",
        "    Set client meta attr. Options are:",
        "    * LIB-NAME: the client lib name.",
        "    * LIB-VER: the client lib version.",
        "HELP",
        "    Prints this help.",
    ]))
}
