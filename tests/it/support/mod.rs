//! Test support: spawning `velo serve` and `redis-server`, and a raw RESP client.

pub mod diff;
pub mod resp;
pub mod server;

pub use resp::Conn;
pub use server::{RedisServer, TestServer};
