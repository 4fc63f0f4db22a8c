#!/usr/bin/env python3
"""ops.py VIEW: the forwarded calls, run inside a view (tests/fsview/pair.sh).
Prints one line per check; exits 1 on the first failure."""
import errno
import hashlib
import os
import stat
import sys

v = sys.argv[1]


def check(cond, what):
    if not cond:
        print("FAIL: " + what)
        sys.exit(1)
    print("ok   " + what)


with open(v + "/f", "w") as f:
    f.write("one\n")
with open(v + "/f", "a") as f:
    f.write("two\n")
check(open(v + "/f").read() == "one\ntwo\n", "create, append, read")
os.rename(v + "/f", v + "/g")
check(not os.path.exists(v + "/f") and os.path.exists(v + "/g"), "rename")
os.link(v + "/g", v + "/h")
check(os.stat(v + "/h").st_nlink == 2, "link")
os.symlink("g", v + "/l")
check(os.readlink(v + "/l") == "g" and open(v + "/l").read().startswith("one"), "symlink, readlink")
os.mkdir(v + "/d", 0o750)
check(stat.S_IMODE(os.stat(v + "/d").st_mode) == 0o750, "mkdir with its mode")
names = sorted(n for n in os.listdir(v) if n not in ("kept", "socks"))  # pair.sh's mount point, its sockets
check(names == ["d", "g", "h", "l", "secret"], "readdir: " + " ".join(names))
os.rmdir(v + "/d")
os.truncate(v + "/g", 2)
check(open(v + "/g").read() == "on", "truncate")
os.chmod(v + "/g", 0o600)
os.utime(v + "/g", (1, 2))
st = os.stat(v + "/g")
check(stat.S_IMODE(st.st_mode) == 0o600 and st.st_mtime == 2, "chmod, utimes")
os.mkfifo(v + "/p")
check(stat.S_ISFIFO(os.stat(v + "/p").st_mode), "mkfifo")
check(os.statvfs(v).f_bsize > 0, "statfs")
t = open(v + "/t", "w+")
os.unlink(v + "/t")
t.write("x" * 1000)
t.flush()
check(os.fstat(t.fileno()).st_size == 1000, "fstat of an open file unlinked")
t.close()
data = os.urandom(1 << 20) * 16
with open(v + "/big", "wb") as f:
    f.write(data)
with open(v + "/big", "rb") as f:
    got = f.read()
check(hashlib.sha256(got).digest() == hashlib.sha256(data).digest(), "16 MiB written and read back")
# Writes stream home without waiting for each other (write-behind):
# home still does them in order. Overlapping writes: the last one wins.
fd = os.open(v + "/over", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
for i in range(12):
    os.pwrite(fd, bytes([65 + i]) * (1 << 20), (i % 3) * 4096)
os.close(fd)
fd = os.open(v + "/over", os.O_RDONLY)  # an open drops the node's cache: home's bytes
check(os.pread(fd, 1 << 20, 2 * 4096) == b"L" * (1 << 20) and os.pread(fd, 4096, 0) == b"J" * 4096,
      "overlapping writes in flight at once done in order at home")
os.close(fd)
# Appends: each lands after the one before, as sent.
fd = os.open(v + "/app", os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o600)
for i in range(20):
    os.write(fd, bytes([97 + i]) * 300000)
os.close(fd)
got = open(v + "/app", "rb").read()
check(got == b"".join(bytes([97 + i]) * 300000 for i in range(20)), "O_APPEND writes in flight land in order")
# A write home refuses (past the server's RLIMIT_FSIZE, pair.py: EFBIG)
# is reported at the latest by fsync, or by close, never lost.
for how in ("fsync", "close"):
    fd = os.open(v + "/efbig", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    err = None
    try:
        os.pwrite(fd, b"z" * (1 << 20), 64 << 20)
        if how == "fsync":
            os.fsync(fd)
    except OSError as e:
        err = e.errno
    try:
        os.close(fd)
    except OSError as e:
        err = err or e.errno
    check(err == errno.EFBIG, "a write refused at home (EFBIG) reported by write or " + how + ": " + str(err))
# A write(2) larger than one request goes home as several; when home
# refuses a later one, its error must not vanish in the short count the
# kernel then returns for the call: reported by write, else by close.
for i in range(5):
    fd = os.open(v + "/efbig", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    err = None
    try:
        os.pwrite(fd, b"y" * (8 << 20), 64 << 20)
    except OSError as e:
        err = e.errno
    try:
        os.close(fd)
    except OSError as e:
        err = err or e.errno
    check(err == errno.EFBIG, "a write(2) of several requests, home refusing its end: EFBIG reported (%d): %s" % (i, err))
os.unlink(v + "/efbig")
for n in ("g", "h", "l", "p", "big", "over", "app"):
    os.unlink(v + "/" + n)
try:
    open(v + "/secret").read()
    check(False, "root's 0600 file read by the server's user")
except PermissionError:
    check(True, "root's 0600 file refused to the server's user (EACCES at home)")
