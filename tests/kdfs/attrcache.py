#!/usr/bin/env python3
"""The attribute cache's invalidation (docs/kdfs.md, "Attribute cache").

    attrcache.py watch FILE ROUNDS   (node A: holds FILE open)
    attrcache.py change FILE ROUNDS  (node B: changes it)

Round k: the watcher caches FILE's attributes (a stat: the kernel keeps
them up to 1 s), then creates FILE.r<k>; the changer sees it, sets mode
0600 or 0640 and appends k+1 bytes (the size is published at close), then
creates FILE.d<k>; the watcher sees that name (a lookup: its node's
replica has applied both changes first) and fstat()s its open file, which
asks no one while the cached attributes are valid: it must show the new
mode and size, so the kernel's cached ones were dropped. A round that took
0.9 s or more proves nothing (the cache may have run out by itself) and
does not count; the watcher exits 1 unless 3 rounds counted and all were
right. Conditions only: each side waits for the other's name."""
import os
import sys
import time


def wait_name(path, limit=30.0):
    end = time.monotonic() + limit
    while not os.path.exists(path):
        if time.monotonic() > end:
            sys.exit("attrcache: %s did not appear in %.0f s" % (path, limit))
        time.sleep(0.005)


def mode_of(k):
    return 0o600 if k % 2 == 0 else 0o640


def watch(path, rounds):
    fd = os.open(path, os.O_RDONLY)
    counted = 0
    size = os.fstat(fd).st_size
    for k in range(rounds):
        os.stat(path)  # a lookup: the attributes, cached
        t0 = time.monotonic()
        open(path + ".r%d" % k, "w").close()
        wait_name(path + ".d%d" % k)
        st = os.fstat(fd)
        took = time.monotonic() - t0
        size += k + 1
        got = (st.st_mode & 0o7777, st.st_size)
        want = (mode_of(k), size)
        if took >= 0.9:
            print("round %d: %.2f s, not counted" % (k, took))
            continue
        if got != want:
            sys.exit("attrcache: round %d: fstat on this node shows mode %o size %d after the change "
                     "(mode %o size %d) was applied here: stale cached attributes" % (k, got[0], got[1], want[0], want[1]))
        counted += 1
    os.close(fd)
    if counted < 3:
        sys.exit("attrcache: only %d of %d rounds were quick enough to count" % (counted, rounds))
    print("attrcache: %d rounds counted, every fstat current" % counted)


def change(path, rounds):
    for k in range(rounds):
        wait_name(path + ".r%d" % k)
        os.chmod(path, mode_of(k))
        with open(path, "ab") as f:
            f.write(b"a" * (k + 1))
        open(path + ".d%d" % k, "w").close()


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("watch", "change"):
        sys.exit("usage: attrcache.py watch|change FILE ROUNDS")
    (watch if sys.argv[1] == "watch" else change)(sys.argv[2], int(sys.argv[3]))


main()
