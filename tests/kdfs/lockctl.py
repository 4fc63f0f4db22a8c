#!/usr/bin/env python3
"""lockctl.py — one lock operation on a kdfs file, for the cross-node lock
checks of kdfs.sh. KIND is posix (fcntl F_SETLK), ofd (F_OFD_SETLK) or
flock; TYPE is r or w; LEN 0 means to the end of the file.

  lockctl.py try KIND PATH START LEN TYPE      prints "ok" or "busy", releases
  lockctl.py getlk PATH START LEN TYPE         prints the F_GETLK answer: "unlck" or "TYPE START LEN"
  lockctl.py hold KIND PATH START LEN TYPE GO  takes the lock (waiting), writes GO,
                                               holds until GO.release exists, prints "held"
"""
import errno
import fcntl
import os
import struct
import sys
import time

F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW = 36, 37, 38
TYPES = {"r": fcntl.F_RDLCK, "w": fcntl.F_WRLCK}


def flock_struct(typ, start, length):
    # struct flock on x86_64: short type, short whence, off_t start, off_t len, pid_t pid
    return struct.pack("hhqqi4x", typ, os.SEEK_SET, start, length, 0)


def lock(kind, fd, typ, start, length, wait):
    if kind == "flock":
        op = (fcntl.LOCK_SH if typ == fcntl.F_RDLCK else fcntl.LOCK_EX) | (0 if wait else fcntl.LOCK_NB)
        fcntl.flock(fd, op)
    elif kind == "posix":
        fcntl.fcntl(fd, fcntl.F_SETLKW if wait else fcntl.F_SETLK, flock_struct(typ, start, length))
    elif kind == "ofd":
        fcntl.fcntl(fd, F_OFD_SETLKW if wait else F_OFD_SETLK, flock_struct(typ, start, length))
    else:
        sys.exit(f"lockctl: unknown kind {kind}")


def main(a):
    cmd = a[0]
    if cmd == "getlk":
        path, start, length, typ = a[1], int(a[2]), int(a[3]), TYPES[a[4]]
        fd = os.open(path, os.O_RDWR)
        r = fcntl.fcntl(fd, fcntl.F_GETLK, flock_struct(typ, start, length))
        t, _, s, n, _ = struct.unpack("hhqqi4x", r)
        print("unlck" if t == fcntl.F_UNLCK else f"{'r' if t == fcntl.F_RDLCK else 'w'} {s} {n}")
        return 0
    kind, path, start, length, typ = a[1], a[2], int(a[3]), int(a[4]), TYPES[a[5]]
    fd = os.open(path, os.O_RDWR)
    if cmd == "try":
        try:
            lock(kind, fd, typ, start, length, False)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            print("busy")
            return 0
        print("ok")
        return 0
    if cmd == "hold":
        go = a[6]
        lock(kind, fd, typ, start, length, True)
        with open(go, "w") as f:
            f.write(f"{time.time()}\n")
        print("held", flush=True)
        while not os.path.exists(go + ".release"):
            time.sleep(0.05)
        return 0
    sys.exit(f"lockctl: unknown command {cmd}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1:]))
