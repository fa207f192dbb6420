//! RESP2/RESP3: the wire protocol.
//!
//! - [`decode`]: request frames (multibulk and inline) out of a read buffer, zero-copy, telling an
//!   incomplete frame (read more) from an invalid one (reply `-ERR Protocol error: ...` and close).
//! - [`reply`]: the [`Reply`] value every handler returns, and its protocol-version-aware encoder.

pub mod decode;
pub mod reply;

pub use decode::{decode_request, DecodeError, Decoder, Limits};
pub use reply::{Protocol, Reply};
