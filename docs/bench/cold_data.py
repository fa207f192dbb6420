#!/usr/bin/env python3
"""Helpers of docs/bench/cold.sh (run by it, not on their own).

    cold_data.py gen KEYS FILE     writes KEYS pipelined SETs (RESP) to FILE: keys key:%012d (16 bytes, the
                                   names redis-benchmark's key:__rand_int__ reads), 100-byte values of
                                   JSON-ish text (compressible like real data, distinct per key)
    cold_data.py evict DIR         drops every file under DIR from the OS page cache (posix_fadvise
                                   DONTNEED after an fsync), touching nothing else on the shared machine;
                                   prints the bytes still cached before and after (mincore through mmap)
"""
import mmap
import os
import sys


def gen(keys, path):
    alphabet = b'abcdefghijklmnopqrstuvwxyz0123456789 :,{}"'
    # A pool of 4096 pseudo-random tails, picked per key by a hash of its number: values differ per key
    # (number prefix, tail choice) but compress like text, not like noise.
    state = 0x9E3779B97F4A7C15
    tails = []
    for _ in range(4096):
        tail = bytearray()
        while len(tail) < 86:
            state ^= (state << 13) & 0xFFFFFFFFFFFFFFFF
            state ^= state >> 7
            state ^= (state << 17) & 0xFFFFFFFFFFFFFFFF
            tail.append(alphabet[state % len(alphabet)])
        tails.append(bytes(tail))
    with open(path, "wb") as out:
        batch = []
        for n in range(keys):
            digits = b"%012d" % n
            value = b"{" + digits + b":" + tails[(n * 2654435761) & 4095]
            batch.append(b"*3\r\n$3\r\nSET\r\n$16\r\nkey:" + digits + b"\r\n$100\r\n" + value + b"\r\n")
            if len(batch) == 65536:
                out.write(b"".join(batch))
                batch.clear()
        out.write(b"".join(batch))


def cached_bytes(path):
    """Bytes of `path` in the OS page cache (mincore over a shared read-only map)."""
    import ctypes

    size = os.path.getsize(path)
    if size == 0:
        return 0
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if addr in (None, ctypes.c_void_p(-1).value):
            return 0
        page = mmap.PAGESIZE
        pages = (size + page - 1) // page
        vec = ctypes.create_string_buffer(pages)
        libc.mincore(addr, size, vec)
        libc.munmap(addr, size)
        return sum(b & 1 for b in vec.raw) * page
    finally:
        os.close(fd)


def evict(directory):
    files = [os.path.join(root, name) for root, _, names in os.walk(directory) for name in names]
    before = sum(cached_bytes(f) for f in files)
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)  # dirty pages are not dropped: write them first
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    after = sum(cached_bytes(f) for f in files)
    print(f"{before} {after}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "gen":
        gen(int(sys.argv[2]), sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "evict":
        evict(sys.argv[2])
    else:
        sys.exit(__doc__)
