#!/usr/bin/env python3
"""fdatasync(2) latency on this machine's disk: 2,000 rounds of a 20,000-byte pwrite into a
preallocated 8 MiB file (as the log writers zero-fill ahead) followed by fdatasync; prints
p50, p90 and p99. Usage: fdatasync_latency.py [DIR] (default: the current directory)."""
import os, sys, time

path = os.path.join(sys.argv[1] if len(sys.argv) > 1 else ".", "fdatasync-latency.bin")
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
size = 8 << 20
os.pwrite(fd, b"\0" * size, 0)
os.fsync(fd)
took, off = [], 0
for _ in range(2000):
    os.pwrite(fd, b"x" * 20000, off)
    off = 0 if off + 40000 > size else off + 20000
    start = time.perf_counter()
    os.fdatasync(fd)
    took.append(time.perf_counter() - start)
os.close(fd)
os.unlink(path)
took.sort()
us = lambda q: took[int(q * len(took))] * 1e6
print(f"fdatasync after a 20,000-byte write: p50 {us(0.5):.1f} us, p90 {us(0.9):.1f} us, p99 {us(0.99):.1f} us")
