//! One file per `velo` subcommand: parse nothing more than clap already did, call library code
//! (`crate::inspect` for the offline tools), print. `main.rs` dispatches here; each `run` returns the
//! process exit code: 0 ok, 1 findings (damage found; for `serve` a runtime failure), 2 usage or I/O
//! error. [`output`] holds what they share (tables, JSON, progress bars, `NO_COLOR`, broken pipes).

pub mod bigkeys;
pub mod c_heap;
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

/// Default `--nice` of the tools that read a data directory beside a running server (`check`,
/// `bigkeys`): measured on two cores, a SET/GET load lost about half its throughput while they ran at the
/// normal priority and nothing visible at 19 (docs/performance.md, "Offline tools"). On an idle machine a
/// nice value costs nothing: it only matters when something else wants the CPU.
pub const TOOL_NICE: i32 = 19;

/// Raises the calling thread's nice value to `nice` (never lowers it: that needs privileges), before
/// the tool starts its threads, which inherit it (Linux keeps a nice value per thread). On failure the
/// tool runs at its current priority.
pub fn lower_priority(nice: i32) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain system calls on the calling thread's own id; no memory is passed.
        unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            *libc::__errno_location() = 0;
            let current = libc::getpriority(libc::PRIO_PROCESS, tid);
            if *libc::__errno_location() == 0 && nice > current {
                libc::setpriority(libc::PRIO_PROCESS, tid, nice.min(19));
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}
