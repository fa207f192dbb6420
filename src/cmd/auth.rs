//! AUTH with the default user and its `requirepass` password (the full ACL comes later). The gate that
//! answers `-NOAUTH` is in `server::dispatch`.

use super::{Args, CmdError, Ctx};
use crate::resp::Reply;

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// HELLO's answer to a client that is not authenticated and gave no AUTH.
pub const HELLO_NOAUTH: &str = "NOAUTH HELLO must be called with the client already authenticated, otherwise the \
                                HELLO AUTH <user> <pass> option can be used to authenticate the client and select \
                                the RESP protocol version at the same time";

/// Authenticates the client as `user` (only `default` exists) with `password`.
pub fn authenticate(ctx: &mut Ctx<'_>, user: &[u8], password: &[u8]) -> Result<(), CmdError> {
    if user != b"default" || !ctx.server.live.check_password(password) {
        return Err(CmdError::Raw(WRONGPASS.into()));
    }
    ctx.client.authenticated = true;
    Ok(())
}

/// ```text
/// AUTH [username] password
/// ```
pub fn auth(ctx: &mut Ctx<'_>, args: &mut Args) -> Result<Reply, CmdError> {
    let words = args.rest();
    let (user, password): (&[u8], &[u8]) = match words.as_slice() {
        [password] => {
            if !ctx.server.live.auth_required() {
                return Err(CmdError::err(
                    "AUTH <password> called without any password configured for the default user. Are you sure \
                     your configuration is correct?",
                ));
            }
            (b"default", password)
        }
        [user, password] => (user, password),
        _ => return Err(CmdError::Syntax),
    };
    authenticate(ctx, user, password)?;
    Ok(Reply::Ok)
}
