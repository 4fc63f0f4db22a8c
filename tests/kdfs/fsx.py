#!/usr/bin/env python3
"""fsx.py FILE SEED OPS — random operations on FILE checked against an
in-memory model, in the manner of fsx: writes, reads, truncates (down and
up), fallocate (allocate, keep size, punch, zero range) and writes through
a shared mmap, each read and every 50th operation compared with the model
byte for byte. Prints the md5 of the final contents (so other nodes can
check what they read after close) and exits 1 at the first difference,
with the operation log's tail."""
import ctypes
import hashlib
import mmap
import os
import random
import sys

MAXLEN = 3 * 1024 * 1024 + 12345   # past a few 64 KiB blocks; a chunk is 64 MiB
libc = ctypes.CDLL(None, use_errno=True)
KEEP, PUNCH, ZERO = 1, 2, 16


def fallocate(fd, mode, off, length):
    if libc.fallocate(fd, mode, ctypes.c_long(off), ctypes.c_long(length)) < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def main():
    path, seed, nops = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rnd = random.Random(seed)
    model = bytearray()
    log = []
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)

    def check(what):
        size = os.fstat(fd).st_size
        if size != len(model):
            fail(f"{what}: size {size}, model {len(model)}")
        got = os.pread(fd, size, 0) if size else b""
        if got != bytes(model):
            at = next(i for i in range(size) if got[i] != model[i])
            fail(f"{what}: byte {at} is {got[at]:#x}, model {model[at]:#x}")

    def fail(msg):
        print("fsx: " + msg)
        for line in log[-15:]:
            print("  " + line)
        sys.exit(1)

    for n in range(nops):
        op = rnd.choice(["write", "write", "read", "truncate", "falloc", "mapwrite"])
        off = rnd.randrange(0, MAXLEN)
        length = rnd.choice([1, 7, 4096, 65536, 65537, rnd.randrange(1, 200000)])
        length = min(length, MAXLEN - off) or 1
        if op == "write":
            data = rnd.randbytes(length)
            os.pwrite(fd, data, off)
            if off > len(model):
                model.extend(b"\0" * (off - len(model)))
            model[off:off + length] = data
        elif op == "read":
            got = os.pread(fd, length, off)
            want = bytes(model[off:off + length])
            if got != want:
                fail(f"op {n} read {off}+{length}: {len(got)} bytes differ from the model's {len(want)}")
        elif op == "truncate":
            size = rnd.randrange(0, MAXLEN)
            os.ftruncate(fd, size)
            model = model[:size] if size < len(model) else model + bytearray(size - len(model))
        elif op == "falloc":
            mode = rnd.choice([0, KEEP, PUNCH | KEEP, ZERO, ZERO | KEEP])
            fallocate(fd, mode, off, length)
            end = off + length
            if mode & (PUNCH | ZERO):
                z = min(end, len(model))
                if off < z:
                    model[off:z] = b"\0" * (z - off)
            if not (mode & KEEP) and end > len(model):
                model.extend(b"\0" * (end - len(model)))
        elif op == "mapwrite":
            if not model:
                continue
            off %= len(model)
            length = min(length, len(model) - off)
            data = rnd.randbytes(length)
            with mmap.mmap(fd, len(model)) as m:
                m[off:off + length] = data
                m.flush()
            model[off:off + length] = data
        log.append(f"{n} {op} off={off} len={length} size={len(model)}")
        if n % 50 == 0:
            check(f"after op {n} ({op})")
    check("at the end")
    os.fsync(fd)
    os.close(fd)
    with open(path, "rb") as f:
        if f.read() != bytes(model):
            fail("reopened: contents differ from the model")
    print(hashlib.md5(model).hexdigest())


if __name__ == "__main__":
    main()
