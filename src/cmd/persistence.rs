//! SAVE and BGSAVE: RDB snapshots to `dbfilename` in `dir` (`server::rdbsave`).

use super::args::Args;
use super::{CmdError, Ctx};
use crate::resp::Reply;
use crate::server::rdbsave::{RdbSaves, SaveError};

fn save_error(error: SaveError) -> CmdError {
    match error {
        SaveError::InProgress => CmdError::err("Background save already in progress"),
        SaveError::Failed(_) => CmdError::err("Failed to save RDB file, check the server log"),
    }
}

/// ```text
/// SAVE
/// ```
///
/// Runs with every other command held off (the dispatcher takes the command lock exclusively), so the
/// file is a point-in-time snapshot. The WAL is also made durable and the engine checkpoints, as before.
pub fn save(ctx: &mut Ctx<'_>, _args: &mut Args) -> Result<Reply, CmdError> {
    ctx.engine.sync()?;
    RdbSaves::save(ctx.server).map_err(save_error)?;
    // Also move everything into the engine's final layers (as SAVE did before it wrote RDB files): the WAL
    // is emptied, restart replays nothing, and the part sweeper sees the checkpointed key counts.
    ctx.engine.checkpoint()?;
    Ok(Reply::Ok)
}

/// ```text
/// BGSAVE [SCHEDULE]
/// ```
pub fn bgsave(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let schedule = match args.remaining() {
        0 => false,
        1 if args.eat("SCHEDULE") => true,
        _ => return Err(CmdError::Syntax),
    };
    match ctx.server.rdb.bgsave(schedule).map_err(save_error)? {
        true => Ok(Reply::Simple("Background saving started".into())),
        false => Ok(Reply::Simple("Background saving scheduled".into())),
    }
}
