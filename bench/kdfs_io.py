#!/usr/bin/env python3
"""bench/kdfs's measuring program, the same on every file system it runs on.

  kdfs_io.py seq DIR MIB STREAMS   -> "WRITE_MBps READ_MBps REREAD_MBps": STREAMS
        processes each write then read MIB/STREAMS MiB in 1 MiB calls (fsync
        before close: the bytes are where the file system keeps them); read
        twice: what the file system's cache keeps over a reopen shows in
        the second
  kdfs_io.py rand DIR MIB SECONDS  -> "WRITE_IOPS READ_IOPS": 4 KiB pwrite then
        pread at random 4 KiB-aligned offsets of a MIB MiB file, SECONDS each
  kdfs_io.py meta DIR N            -> "CREATE_s STAT_s UNLINK_s": N empty files
        created (O_CREAT|O_EXCL, close), stat()ed, unlinked, in one directory
"""
import os
import random
import sys
import time

MIB = 1 << 20


def seq(d, mib, streams):
    per = max(1, mib // streams)
    buf = bytes(range(256)) * (MIB // 256)

    def parallel(fn):
        t = time.perf_counter()
        pids = []
        for i in range(streams):
            pid = os.fork()
            if pid == 0:
                try:
                    fn(os.path.join(d, "seq.%d" % i))
                    os._exit(0)
                except BaseException as e:  # the parent reports it
                    print("kdfs_io: %s" % e, file=sys.stderr)
                    os._exit(1)
            pids.append(pid)
        for pid in pids:
            _, st = os.waitpid(pid, 0)
            if st != 0:
                sys.exit("kdfs_io: a stream failed")
        return per * streams * MIB / 1e6 / (time.perf_counter() - t)

    def write(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        for _ in range(per):
            if os.write(fd, buf) != MIB:
                raise OSError("short write")
        os.fsync(fd)
        os.close(fd)

    def read(path):
        fd = os.open(path, os.O_RDONLY)
        n = 0
        while True:
            b = os.read(fd, MIB)
            if not b:
                break
            n += len(b)
        os.close(fd)
        if n != per * MIB:
            raise OSError("read %d bytes of %d" % (n, per * MIB))

    w = parallel(write)
    r = parallel(read)
    c = parallel(read)
    for i in range(streams):
        os.unlink(os.path.join(d, "seq.%d" % i))
    print("%.0f %.0f %.0f" % (w, r, c))


def rand(d, mib, secs):
    path = os.path.join(d, "rand")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    buf = b"\xa5" * MIB
    for _ in range(mib):
        os.write(fd, buf)
    os.fsync(fd)
    os.close(fd)
    rng = random.Random(7)
    blocks = mib * MIB // 4096
    page = b"\x3c" * 4096

    def run(op):
        fd = os.open(path, os.O_RDWR)
        n = 0
        t = time.perf_counter()
        end = t + secs
        while True:
            for _ in range(64):
                off = rng.randrange(blocks) * 4096
                if op == "w":
                    os.pwrite(fd, page, off)
                elif len(os.pread(fd, 4096, off)) != 4096:
                    raise OSError("short read")
            n += 64
            now = time.perf_counter()
            if now >= end:
                break
        if op == "w":
            os.fsync(fd)
        os.close(fd)
        return n / (time.perf_counter() - t)

    w = run("w")
    r = run("r")
    os.unlink(path)
    print("%.0f %.0f" % (w, r))


def meta(d, n):
    sub = os.path.join(d, "meta")
    os.mkdir(sub)
    names = [os.path.join(sub, "f%05d" % i) for i in range(n)]
    rates = []
    t = time.perf_counter()
    for p in names:
        os.close(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    rates.append(n / (time.perf_counter() - t))
    t = time.perf_counter()
    for p in names:
        os.stat(p)
    rates.append(n / (time.perf_counter() - t))
    t = time.perf_counter()
    for p in names:
        os.unlink(p)
    rates.append(n / (time.perf_counter() - t))
    os.rmdir(sub)
    print("%.0f %.0f %.0f" % tuple(rates))


def main():
    if len(sys.argv) < 4 or sys.argv[1] not in ("seq", "rand", "meta"):
        sys.exit("usage: kdfs_io.py seq DIR MIB STREAMS | rand DIR MIB SECONDS | meta DIR N")
    mode, d = sys.argv[1], sys.argv[2]
    if mode == "seq":
        seq(d, int(sys.argv[3]), int(sys.argv[4]))
    elif mode == "rand":
        rand(d, int(sys.argv[3]), float(sys.argv[4]))
    else:
        meta(d, int(sys.argv[3]))


main()
