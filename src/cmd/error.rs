//! [`CmdError`]: every error a client can see, each with Redis's exact prefix and text.

use std::borrow::Cow;

use crate::engine;
use crate::resp::Reply;

/// An error reply. `reply()` gives the exact line Redis sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CmdError {
    /// `WRONGTYPE Operation against a key holding the wrong kind of value`.
    WrongType,
    /// `ERR syntax error`.
    Syntax,
    /// `ERR value is not an integer or out of range`.
    NotInteger,
    /// `ERR value is not a valid float`.
    NotFloat,
    /// `ERR increment or decrement would overflow`.
    Overflow,
    /// `ERR no such key`.
    NoSuchKey,
    /// `ERR DB index is out of range`.
    DbIndexOutOfRange,
    /// `ERR wrong number of arguments for '<fullname>' command`.
    WrongArity(&'static str),
    /// `ERR unknown command '<name>', with args beginning with: ...`.
    UnknownCommand {
        /// The name as sent.
        name: String,
        /// The arguments, already quoted as Redis does.
        args: String,
    },
    /// `ERR unknown subcommand '<sub>'. Try <CONTAINER> HELP.`.
    UnknownSubcommand {
        /// The subcommand as sent.
        sub: String,
        /// The container, upper case.
        container: String,
    },
    /// `EXECABORT Transaction discarded because of previous errors.`.
    ExecAbort,
    /// `ERR <message>`.
    Err(Cow<'static, str>),
    /// A full error line with its own prefix (`NOPROTO ...`, `MISCONF ...`).
    Raw(Cow<'static, str>),
}

/// Redis truncates echoed names and arguments to 128 bytes.
fn truncate(bytes: &[u8], max: usize) -> String {
    String::from_utf8_lossy(bytes.get(..max.min(bytes.len())).unwrap_or_default()).into_owned()
}

impl CmdError {
    /// `ERR <message>`.
    pub fn err(message: impl Into<Cow<'static, str>>) -> CmdError {
        CmdError::Err(message.into())
    }

    /// The unknown-command error for `argv`, with Redis's argument excerpt.
    pub fn unknown_command(argv: &[bytes::Bytes]) -> CmdError {
        let name = argv.first().map(|n| truncate(n, 128)).unwrap_or_default();
        let mut args = String::new();
        for arg in argv.iter().skip(1) {
            if args.len() >= 128 {
                break;
            }
            let room = 128 - args.len();
            args.push_str(&format!("'{}' ", truncate(arg, room)));
        }
        CmdError::UnknownCommand { name, args }
    }

    /// The unknown-subcommand error.
    pub fn unknown_subcommand(sub: &[u8], container: &str) -> CmdError {
        CmdError::UnknownSubcommand { sub: truncate(sub, 128), container: container.to_ascii_uppercase() }
    }

    /// The error line, without the leading `-`.
    pub fn text(&self) -> Cow<'static, str> {
        match self {
            CmdError::WrongType => "WRONGTYPE Operation against a key holding the wrong kind of value".into(),
            CmdError::Syntax => "ERR syntax error".into(),
            CmdError::NotInteger => "ERR value is not an integer or out of range".into(),
            CmdError::NotFloat => "ERR value is not a valid float".into(),
            CmdError::Overflow => "ERR increment or decrement would overflow".into(),
            CmdError::NoSuchKey => "ERR no such key".into(),
            CmdError::DbIndexOutOfRange => "ERR DB index is out of range".into(),
            CmdError::WrongArity(fullname) => format!("ERR wrong number of arguments for '{fullname}' command").into(),
            CmdError::UnknownCommand { name, args } => {
                format!("ERR unknown command '{name}', with args beginning with: {args}").into()
            }
            CmdError::UnknownSubcommand { sub, container } => {
                format!("ERR unknown subcommand '{sub}'. Try {container} HELP.").into()
            }
            CmdError::ExecAbort => "EXECABORT Transaction discarded because of previous errors.".into(),
            CmdError::Err(message) => format!("ERR {message}").into(),
            CmdError::Raw(line) => line.clone(),
        }
    }

    /// The error as a reply.
    pub fn reply(&self) -> Reply {
        Reply::Error(self.text())
    }
}

/// The one place where engine errors become client replies. The full error goes to the log.
impl From<engine::Error> for CmdError {
    fn from(error: engine::Error) -> CmdError {
        match &error {
            engine::Error::Poisoned { .. } => {
                tracing::error!(%error, "write refused");
                CmdError::Raw(
                    format!(
                        "MISCONF Errors writing to disk: {error}. Commands that may modify the data set are disabled."
                    )
                    .into(),
                )
            }
            engine::Error::TooLarge(message) => CmdError::Err(message.clone().into()),
            _ => {
                tracing::error!(%error, "engine error");
                let what = if error.is_corruption() { "data corruption detected" } else { "storage failure" };
                CmdError::Err(format!("internal error: {what} (see the server log)").into())
            }
        }
    }
}

/// Split-collection errors: engine failures as above; damage is logged in full and reported like
/// engine corruption, never served as data.
impl From<crate::elements::ElementError> for CmdError {
    fn from(error: crate::elements::ElementError) -> CmdError {
        match error {
            crate::elements::ElementError::Engine(error) => error.into(),
            crate::elements::ElementError::Interrupted(reason) => CmdError::err(format!("command aborted: {reason}")),
            damaged => {
                tracing::error!(error = %damaged, "split collection damaged");
                CmdError::Err("internal error: data corruption detected (see the server log)".into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_redis_texts() {
        assert_eq!(CmdError::WrongArity("config|get").text(), "ERR wrong number of arguments for 'config|get' command");
        let argv = [bytes::Bytes::from("foo"), bytes::Bytes::from("a"), bytes::Bytes::from("b")];
        assert_eq!(
            CmdError::unknown_command(&argv).text(),
            "ERR unknown command 'foo', with args beginning with: 'a' 'b' "
        );
        assert_eq!(
            CmdError::unknown_subcommand(b"foo", "config").text(),
            "ERR unknown subcommand 'foo'. Try CONFIG HELP."
        );
        assert_eq!(CmdError::NotInteger.text(), "ERR value is not an integer or out of range");
        assert_eq!(CmdError::WrongType.text(), "WRONGTYPE Operation against a key holding the wrong kind of value");
    }
}
