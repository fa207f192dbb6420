//! One file per `velo` subcommand: parse nothing more than clap already did, call library code
//! (`crate::inspect` for the offline tools), print. `main.rs` dispatches here; each `run` returns the
//! process exit code: 0 ok, 1 findings (damage found; for `serve` a runtime failure), 2 usage or I/O
//! error. [`output`] holds what they share (tables, JSON, progress bars, `NO_COLOR`, broken pipes).

pub mod bigkeys;
pub mod check;
pub mod completions;
pub mod huge_pages;
pub mod ingest_parquet;
pub mod inspect_bucket;
pub mod inspect_segment;
pub mod output;
pub mod rdb_dump;
pub mod rdb_dump_live;
pub mod rdb_restore;
pub mod serve;
pub mod train_dict;

/// Tells the allocator (mimalloc, `main.rs`) to keep the memory a batch tool frees instead of returning it
/// to the system after its purge delay. The offline tools free and reallocate large buffers at a steady
/// rate (decoded Parquet pages, record batches, segment payloads); purged memory comes back as fresh
/// pages the kernel must fault in and zero (transparent huge pages: 2 MiB at a time), which was a large
/// part of their system time. Their peak memory is bounded by design, so keeping it costs little. Not
/// for `serve`, whose idle memory should go back.
pub fn keep_freed_memory() {
    /// `mi_option_purge_delay` in mimalloc's `mi_option_t` (the C library the `mimalloc` crate links).
    const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;
    extern "C" {
        fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    }
    // The `mimalloc` crate links the C library (and with it `mi_option_set`) into whatever links this
    // crate, the test binaries included, as long as something here names it.
    use mimalloc as _;
    // SAFETY: mi_option_set only stores an integer option (thread-safe in mimalloc); -1 means "never
    // purge".
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}
