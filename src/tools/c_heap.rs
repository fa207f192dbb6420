//! The C library's heap in `velo serve` (issue 14, memory): large blocks go straight back to the system.
//!
//! zstd's dictionary builder and compression contexts allocate with the C library's `malloc`, not the Rust
//! allocator. One dictionary training peaks near 11 MB, in blocks of 2-4 MiB, on the trainer thread. glibc
//! serves the first of them with `mmap`, then raises its mmap threshold to the largest block freed (its
//! "dynamic threshold"), so the next trainings' blocks come from the thread's malloc arena instead, and an
//! arena other than the main one keeps its top free chunk: `malloc_trim` does not shrink it. After 100k
//! SETs that was 6.3 MB of a 44-50 MB server holding 0.3 MB (docs/performance.md, "Memory floor").
//! Fixing the threshold at glibc's default turns the dynamic threshold off: blocks from 128 KiB up are
//! mapped and unmapped, a few system calls per training, none per request (the per-request compression
//! contexts are smaller and reused).

/// glibc's default mmap threshold, made fixed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 128 << 10;

/// Makes the C heap map its large blocks and return them once freed. Does nothing off glibc (musl
/// already maps large blocks and keeps no dynamic threshold).
pub fn release_large_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tunable of the C allocator; any thread may call it at any time.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    /// Whether glibc mapped the block at `ptr` on its own: the IS_MMAPPED bit (2) of the size word in
    /// front of it, a layout glibc has kept since its first ptmalloc.
    fn mapped(ptr: *mut libc::c_void) -> bool {
        // SAFETY: ptr is a live block from malloc, which keeps its chunk's size word just before it.
        unsafe { *(ptr as *const usize).sub(1) & 2 != 0 }
    }

    /// With glibc's dynamic threshold a second block as large as one just freed comes from the arena,
    /// whose top the thread then keeps; with the fixed threshold every such block is mapped.
    #[test]
    fn a_large_block_is_mapped_again_after_one_was_freed() {
        release_large_blocks();
        const SIZE: usize = 4 << 20;
        for _ in 0..2 {
            // SAFETY: a plain malloc/free pair.
            unsafe {
                let block = libc::malloc(SIZE);
                assert!(!block.is_null());
                assert!(mapped(block), "a 4 MiB block came from the arena");
                libc::free(block);
            }
        }
        // SAFETY: as above; a small block is never mapped.
        unsafe {
            let small = libc::malloc(64);
            assert!(!mapped(small));
            libc::free(small);
        }
    }
}
