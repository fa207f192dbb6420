//! Shared helpers for the engine tests: small-threshold options that force checkpoints, splits,
//! segments, big values and compaction early; a controllable clock; random keys and values.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rand::rngs::SmallRng;
use rand::Rng;
use velo::engine::io::CrashFs;
use velo::engine::{EngineOptions, FsyncPolicy};

/// A clock the test moves by hand.
#[derive(Clone, Default)]
pub struct TestClock(pub Arc<AtomicU64>);

impl TestClock {
    pub fn new(start: u64) -> Self {
        Self(Arc::new(AtomicU64::new(start)))
    }
    pub fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
    pub fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

/// Options with tiny thresholds so that every mechanism runs within a few thousand operations.
pub fn small_options(fs: &CrashFs, clock: &TestClock, fsync: FsyncPolicy) -> EngineOptions {
    let clock = clock.clone();
    EngineOptions {
        slot_count: Some(2),
        fsync,
        wal_flush_bytes: Some(24 << 10),
        segment_size: 1024,
        inline_max: 24,
        page_cache_bytes: 128 << 10,
        value_cache_bytes: 128 << 10,
        fs: Arc::new(fs.clone()),
        clock: Arc::new(move || clock.now()),
        background_sync: false,
        ..Default::default()
    }
}

/// A key from a small space, so that overwrites, deletes and misses all happen.
pub fn random_key(rng: &mut SmallRng, space: u32) -> Vec<u8> {
    let n = rng.gen_range(0..space);
    match n % 4 {
        0 => format!("user:{n}").into_bytes(),
        1 => format!("{{tag}}:{n}").into_bytes(),
        2 => format!("k{n}").into_bytes(),
        _ => format!("session:{n}:{}", "x".repeat((n % 17) as usize)).into_bytes(),
    }
}

/// A value of a random size class: tiny (inline), integer, medium (segment), compressible, big.
pub fn random_value(rng: &mut SmallRng) -> Vec<u8> {
    match rng.gen_range(0..10) {
        0..=2 => (0..rng.gen_range(0..12)).map(|_| rng.gen::<u8>()).collect(),
        3 => rng.gen_range(-100_000i64..100_000).to_string().into_bytes(),
        4..=6 => (0..rng.gen_range(30..600)).map(|_| rng.gen::<u8>()).collect(),
        7 | 8 => format!("{{\"name\":\"user\",\"n\":{}}}", rng.gen::<u32>()).repeat(rng.gen_range(1..40)).into_bytes(),
        _ => (0..rng.gen_range(1100..6000)).map(|_| rng.gen::<u8>()).collect(),
    }
}
