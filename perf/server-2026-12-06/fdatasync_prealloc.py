#!/usr/bin/env python3
"""fdatasync time of a log written three ways: appended, pwritten into a posix_fallocate'd file
(64 MiB, size set), pwritten over 64 MiB of zeros written and synced ahead. Usage:
fdatasync_prealloc.py [DIR=/tmp] [BYTES_PER_WRITE=4096 40960]"""
import os, statistics, sys, time

def run(path, mode, size, n=200):
    if os.path.exists(path):
        os.unlink(path)
    fd = os.open(path, os.O_CREAT | os.O_RDWR)
    if mode == "fallocate":
        os.posix_fallocate(fd, 0, 64 << 20)
    elif mode == "zeros":
        os.write(fd, b"\0" * (64 << 20))
    os.fsync(fd)
    buf, times = b"x" * size, []
    for i in range(n):
        if mode == "append":
            os.write(fd, buf)
        else:
            os.pwrite(fd, buf, i * size)
        t = time.perf_counter()
        os.fdatasync(fd)
        times.append((time.perf_counter() - t) * 1000)
    os.close(fd)
    os.unlink(path)
    return statistics.median(times), sorted(times)[int(n * 0.9)]

d = sys.argv[1] if len(sys.argv) > 1 else "/tmp"
sizes = [int(s) for s in sys.argv[2:]] or [4096, 40960]
for size in sizes:
    for mode in ["append", "fallocate", "zeros"]:
        med, p90 = run(os.path.join(d, "fdatasync.test"), mode, size)
        print(f"{size:6d} B {mode:9s} fdatasync median {med:.2f} ms p90 {p90:.2f} ms")
