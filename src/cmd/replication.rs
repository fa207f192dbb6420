//! The replication commands Velo serves before it replicates: REPLCONF and SYNC as a snapshot client
//! (`redis-cli --rdb`, backup tools) uses them, ROLE, and REPLICAOF/SLAVEOF's `NO ONE`. The transfer itself is
//! `server::fullsync`.

use super::args::Args;
use super::{CmdError, Ctx};
use crate::resp::Reply;
use crate::server::fullsync;

/// ```text
/// REPLCONF [option value] ...
/// ```
pub fn replconf(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    if args.remaining() % 2 == 1 {
        return Err(CmdError::Syntax);
    }
    let mut conf = ctx.client.replica.clone();
    while !args.is_empty() {
        let option = args.next_bytes()?;
        let value = args.next_bytes()?;
        match option.to_ascii_lowercase().as_slice() {
            b"listening-port" => {
                std::str::from_utf8(&value).ok().and_then(|v| v.parse::<i64>().ok()).ok_or(CmdError::NotInteger)?;
            }
            b"ip-address" => {}
            b"capa" => {
                if value.eq_ignore_ascii_case(b"eof") {
                    conf.capa_eof = true;
                }
            }
            b"rdb-only" => {
                let flag =
                    std::str::from_utf8(&value).ok().and_then(|v| v.parse::<i64>().ok()).ok_or(CmdError::NotInteger)?;
                if !(0..=1).contains(&flag) {
                    return Err(CmdError::err("value is out of range, value must between 0 and 1"));
                }
                conf.rdb_only = flag == 1;
            }
            b"rdb-filter-only" => {
                // Space-separated filters; Redis 7.0 knows one.
                let text = String::from_utf8_lossy(&value).into_owned();
                let mut functions_only = false;
                for filter in text.split_ascii_whitespace() {
                    if filter.eq_ignore_ascii_case("functions") {
                        functions_only = true;
                    } else {
                        return Err(CmdError::err(format!("Unsupported rdb-filter-only option: {filter}")));
                    }
                }
                conf.functions_only = functions_only;
            }
            // A replica's acknowledgements: a client that is not one gets no reply, as from Redis.
            b"ack" | b"getack" => return Ok(Reply::Many(Vec::new())),
            _ => {
                let option = String::from_utf8_lossy(&option).into_owned();
                return Err(CmdError::err(format!("Unrecognized REPLCONF option: {option}")));
            }
        }
    }
    ctx.client.replica = conf;
    Ok(Reply::Ok)
}

/// ```text
/// SYNC
/// ```
///
/// Starts the transfer of a snapshot; the connection sends it and closes (`server::connection`).
pub fn sync(ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    if ctx.client.output_pending {
        return Err(CmdError::err("SYNC and PSYNC are invalid with pending output"));
    }
    let transfer = fullsync::start(ctx.server, &ctx.client.replica, ctx.client.id())
        .map_err(|error| CmdError::err(error.to_string()))?;
    ctx.client.transfer = Some(transfer);
    Ok(Reply::Many(Vec::new()))
}

/// ```text
/// REPLICAOF host port | NO ONE
/// SLAVEOF host port | NO ONE
/// ```
///
/// `NO ONE` asks the server to be a master, which Velo always is, so it succeeds as on a Redis master.
/// Following a master is refused with a clear error until Velo replicates; the port is checked first, with
/// Redis's error, so a script's typo is named as such.
pub fn replicaof(_ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let host = args.next_bytes()?;
    let port = args.next_bytes()?;
    if host.eq_ignore_ascii_case(b"no") && port.eq_ignore_ascii_case(b"one") {
        return Ok(Reply::Ok);
    }
    let valid_port =
        std::str::from_utf8(&port).ok().and_then(|p| p.parse::<i64>().ok()).is_some_and(|p| (0..=65535).contains(&p));
    if !valid_port {
        return Err(CmdError::err("Invalid master port"));
    }
    Err(CmdError::err(
        "Velo does not replicate yet: it cannot follow a master (REPLICAOF NO ONE, to stay a master, is accepted)",
    ))
}

/// ```text
/// ROLE
/// ```
///
/// The master form: Velo has no replicas yet (a SYNC snapshot client is not one), and its replication offset
/// is the one INFO replication reports.
pub fn role(_ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    Ok(Reply::Array(vec![Reply::bulk("master"), Reply::Int(MASTER_REPL_OFFSET), Reply::Array(Vec::new())]))
}

/// The replication offset ROLE and INFO replication report: no command stream is produced for replicas yet.
pub const MASTER_REPL_OFFSET: i64 = 0;
