//! placeholder
pub const MAX_INLINE_ENVELOPE: usize = 1024;
