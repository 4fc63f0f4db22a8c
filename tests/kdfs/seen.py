#!/usr/bin/env python3
"""A change seen on another node as soon as it returned (docs/kdfs.md,
"Read leases").

    seen.py check DIR PORT           (node B: answers what it sees)
    seen.py drive DIR HOST PORT N    (node A: changes, then asks B)

The driver makes a change in DIR (create, chmod, rename, unlink, mkdir,
in turn) and, the moment the call returned, tells the checker over TCP
(between the nodes' own addresses, not through kdfs), which looks at once
from its own mount: it must see the change. With read leases the checker
answers from its own replica without asking the leader, so this holds only
because the leader hands out no result before every lease holder applied
it. Conditions only: no sleeps, no timing."""
import os
import socket
import stat
import sys


def look(d, line):
    """What the checker sees of the names a request lists."""
    out = []
    for name in line.split():
        p = os.path.join(d, name)
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            out.append("%s:absent" % name)
            continue
        kind = "dir" if stat.S_ISDIR(st.st_mode) else "file"
        out.append("%s:%s:%o" % (name, kind, stat.S_IMODE(st.st_mode)))
    return " ".join(out)


def check(d, port):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", port))
    srv.listen(1)
    print("listening", flush=True)
    conn, _ = srv.accept()
    f = conn.makefile("rw")
    for line in f:
        if line.strip() == "done":
            break
        f.write(look(d, line) + "\n")
        f.flush()


def drive(d, host, port, n):
    conn = socket.create_connection((host, port), timeout=60)
    f = conn.makefile("rw")
    bad = 0

    def ask(names, want):
        nonlocal bad
        f.write(" ".join(names) + "\n")
        f.flush()
        got = f.readline().strip()
        if got != want:
            bad += 1
            print("seen: asked %s: want '%s', got '%s'" % (names, want, got))

    for k in range(n):
        a, b, s = "a%d" % k, "b%d" % k, "s%d" % k
        pa, pb, ps = (os.path.join(d, x) for x in (a, b, s))
        os.close(os.open(pa, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        ask([a], "%s:file:644" % a)
        os.chmod(pa, 0o600)
        ask([a], "%s:file:600" % a)
        os.rename(pa, pb)
        ask([a, b], "%s:absent %s:file:600" % (a, b))
        os.unlink(pb)
        ask([b], "%s:absent" % b)
        os.mkdir(ps, 0o755)
        ask([s], "%s:dir:755" % s)
        os.rmdir(ps)
        ask([s], "%s:absent" % s)
    f.write("done\n")
    f.flush()
    print("seen: %d changes, %d not seen at once on the other node" % (6 * n, bad))
    sys.exit(1 if bad else 0)


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "check":
        check(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) == 6 and sys.argv[1] == "drive":
        drive(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        sys.exit("usage: seen.py check DIR PORT | drive DIR HOST PORT N")


main()
