//! Test support: spawning `velo serve` and `redis-server`, and a raw RESP client.

pub mod differential;
pub mod resp;
pub mod server;

pub use resp::Conn;
pub use server::{RedisServer, TestServer};

/// `len` pseudo-random bytes (xorshift64*) from `seed`: incompressible.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}
