//! Bounds on replies whose size the client chooses rather than the data: the repeated random picks of a
//! negative COUNT (SRANDMEMBER, HRANDFIELD, ZRANDMEMBER). `HRANDFIELD h -999999999` on a one-field hash
//! asks for a billion entries; built in memory, that reply took the whole machine's RAM and the kernel
//! killed the server. Redis streams such a reply into the client's output buffer and, when
//! `client-output-buffer-limit normal` sets a hard limit, closes the client once the buffer passes it.
//! Velo builds a reply before writing it, so it checks first:
//! - past the client's configured hard limit (normal class), the client is closed as Redis closes it, with
//!   Redis's log line, and nothing is built;
//! - otherwise, past [`MAX_ENTRIES`] entries or [`MAX_BYTES`] of reply, the command fails with an error
//!   (Redis's default limit for normal clients is none; Velo keeps every client bounded).
//!
//! The checks run only for counts that could matter (more than [`CHECKED_FROM`] entries), so a usual call
//! costs nothing.

use bytes::Bytes;

use super::{CmdError, Ctx, Reply};

/// Entries a client-chosen reply may hold (about 0.5 GB of reply structures at the worst).
pub const MAX_ENTRIES: u64 = 4 << 20;
/// Bytes a client-chosen reply may take encoded (as `proto-max-bulk-len`'s default bounds a request).
pub const MAX_BYTES: u64 = 512 << 20;
/// Smaller replies are never checked.
pub const CHECKED_FROM: u64 = 1024;
/// The fewest bytes an entry takes in the reply (`$0\r\n\r\n`): a lower bound, so a client is closed only
/// when its reply certainly passes its limit.
const MIN_ENTRY_BYTES: u64 = 6;

/// What to do instead of building the reply, if anything: `Ok(None)` builds it.
pub fn check_entries(ctx: &mut Ctx<'_>, entries: u64) -> Result<Option<Reply>, CmdError> {
    if entries <= CHECKED_FROM {
        return Ok(None);
    }
    if let Some(hard) = normal_hard_limit(ctx) {
        if entries.saturating_mul(MIN_ENTRY_BYTES) > hard {
            return Ok(Some(close(ctx, entries.saturating_mul(MIN_ENTRY_BYTES))));
        }
    }
    if entries > MAX_ENTRIES {
        return Err(too_large(entries));
    }
    Ok(None)
}

/// The same check on picked entries, by their encoded size.
pub fn check_bytes<'a>(
    ctx: &mut Ctx<'_>,
    entries: impl Iterator<Item = &'a Bytes>,
    count: u64,
) -> Result<Option<Reply>, CmdError> {
    if count <= CHECKED_FROM {
        return Ok(None);
    }
    let bytes: u64 = entries.map(|entry| entry.len() as u64 + MIN_ENTRY_BYTES + 10).sum();
    if let Some(hard) = normal_hard_limit(ctx) {
        if bytes > hard {
            return Ok(Some(close(ctx, bytes)));
        }
    }
    if bytes > MAX_BYTES {
        return Err(too_large(count));
    }
    Ok(None)
}

fn too_large(entries: u64) -> CmdError {
    CmdError::err(format!(
        "reply too large: {entries} entries asked, at most {MAX_ENTRIES} entries or {MAX_BYTES} bytes (a negative count repeats picks)"
    ))
}

/// Closes the calling client after this command, with no reply, as Redis closes a client past its output
/// buffer limit.
fn close(ctx: &mut Ctx<'_>, bytes: u64) -> Reply {
    tracing::warn!(
        client = ctx.client.id(),
        bytes,
        "client scheduled to be closed ASAP for overcoming of output buffer limits"
    );
    ctx.client.close = true;
    Reply::None
}

/// The `normal` class's hard limit of `client-output-buffer-limit`, if set (0 means none).
fn normal_hard_limit(ctx: &Ctx<'_>) -> Option<u64> {
    let limits = ctx.server.lock_config().get("client-output-buffer-limit")?;
    let mut words = limits.split_whitespace();
    while let Some(class) = words.next() {
        let hard = words.next()?;
        words.next();
        words.next();
        if class.eq_ignore_ascii_case("normal") {
            return hard.parse::<u64>().ok().filter(|&hard| hard > 0);
        }
    }
    None
}
