//! Transparent huge pages for `velo serve`, sized from use (issue 14): off while the process is small, on
//! once its resident memory passes [`HUGE_PAGES_FROM`].
//!
//! mimalloc asks for huge pages on its whole arena (`madvise(MADV_HUGEPAGE)`), so every 2 MiB region the
//! threads' small pages touch becomes resident whole: an empty server held 21.5 MB instead of 12.3, and
//! 100k keys 72 MB instead of 47 (docs/performance.md, "Memory floor"). A large heap needs them: without
//! huge pages a GET over a 1M-key memtable cost 15% more CPU (page-table walks that miss the caches once a
//! heap's page tables outgrow them), while a small heap's page tables stay cached. So the server starts
//! with them off (`prctl(PR_SET_THP_DISABLE)`, which covers memory already advised) and a small thread
//! turns them on for good once RSS passes the threshold (the kernel's `khugepaged` then also collapses the
//! memory faulted before, slowly). `MIMALLOC_ALLOW_THP=0` keeps them off at any size.

use std::time::Duration;

/// Resident bytes from which the process uses transparent huge pages. It was 96 MiB; a 300k-key load
/// passed it for a moment while its idle checkpoints ran, and with huge pages on the server then kept
/// 56-68 MB where it kept 27-38 without (1M keys: 244 MB against 76), the memory freed by the checkpoints
/// staying resident (docs/performance.md, "Memory floor, round 3"). A memtable that large no longer stays
/// in memory once writes stop, so the heaps that need huge pages for CPU are the larger ones.
pub const HUGE_PAGES_FROM: u64 = 512 << 20;

/// Turns huge pages off for this process. For `velo serve` the binary calls it from an ELF constructor that
/// runs before mimalloc's (on glibc), and again first thing in `main`: the memory touched before it would
/// stay in huge pages (4-6 MB of an empty server when it was first called in `main`).
pub fn disable() -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_SET_THP_DISABLE only sets a flag of this process's memory map.
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) == 0 }
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// Turns huge pages off for this process (if [`disable`] has not yet) and starts the thread that turns them
/// on once it is large. Does nothing where the kernel has no such switch.
pub fn start() {
    #[cfg(target_os = "linux")]
    {
        if !disable() || huge_pages_refused() {
            return;
        }
        let watcher = std::thread::Builder::new().name("velo-thp".into()).stack_size(64 << 10).spawn(|| loop {
            std::thread::sleep(Duration::from_secs(1));
            if resident_bytes().is_some_and(|bytes| bytes >= HUGE_PAGES_FROM) {
                // SAFETY: as above.
                unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 0, 0, 0, 0) };
                tracing::info!(resident_mb = HUGE_PAGES_FROM >> 20, "transparent huge pages on");
                return;
            }
        });
        if watcher.is_err() {
            // No thread to turn them back on: keep the large heap's CPU over the small one's memory.
            // SAFETY: as above.
            unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 0, 0, 0, 0) };
        }
    }
}

/// True when the environment asks mimalloc for no huge pages at all (`MIMALLOC_ALLOW_THP=0`, or off, no,
/// false, as mimalloc reads it): they then stay off, whatever the system's default.
#[cfg(target_os = "linux")]
fn huge_pages_refused() -> bool {
    std::env::var("MIMALLOC_ALLOW_THP")
        .is_ok_and(|value| matches!(value.trim().to_ascii_lowercase().as_str(), "0" | "off" | "no" | "false"))
}

/// The process's resident bytes (`/proc/self/statm`'s second field, in pages).
#[cfg(target_os = "linux")]
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page_size).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The figure the watcher compares is this process's RSS: more than nothing, less than the machine.
    #[cfg(target_os = "linux")]
    #[test]
    fn resident_bytes_reads_this_process() {
        let bytes = resident_bytes().expect("statm");
        assert!(bytes > 1 << 20 && bytes < 1 << 50, "{bytes}");
    }
}
