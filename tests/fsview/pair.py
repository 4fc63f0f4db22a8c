#!/usr/bin/env python3
"""pair.py BIN VIEW SERVE_UID -- CMD...: krg-fsview's FUSE client (view of
VIEW, in its own mount namespace) wired straight to a home server running
as SERVE_UID (no krgd between them), then CMD run inside the client's
mount namespace (nsenter); exits with CMD's status. tests/fsview/pair.sh."""
import os
import resource
import signal
import socket
import subprocess
import sys
import time

b, view, uid = sys.argv[1], sys.argv[2], int(sys.argv[3])
cmd = sys.argv[5:]
a, s = socket.socketpair()
fa, fs = os.dup2(a.detach(), 10), os.dup2(s.detach(), 11)


def drop():
    # Home refuses writes past 64 MiB (EFBIG): ops.py checks that the
    # error of a write sent ahead reaches the program.
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 20, 64 << 20))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


srv = subprocess.Popen([b, "--fd", "11", "--serve"], pass_fds=(11,), preexec_fn=drop)
cli = subprocess.Popen([b, "--fd", "10", "--mount", view], pass_fds=(10,))
os.close(10)
os.close(11)
# The READY frame goes to the server, which answers it with an error
# nobody waits for: ready once the mount shows in the client's namespace.
end = time.time() + 10
while time.time() < end:
    try:
        with open("/proc/%d/mountinfo" % cli.pid) as f:
            if any(l.split()[4] == view and "fuse.krg" in l for l in f):
                break
    except OSError:
        pass
    time.sleep(0.05)
else:
    print("FAIL: the view did not mount", file=sys.stderr)
    sys.exit(1)
rc = subprocess.call(["nsenter", "-t", str(cli.pid), "-m", "--"] + cmd)
cli.kill()
srv.kill()
cli.wait()
srv.wait()
sys.exit(rc)
