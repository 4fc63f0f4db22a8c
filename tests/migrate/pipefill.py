# pipefill.py DIR: pipes holding unread data across migrations (issue 14
# item 15). Three pipes: one to itself holding exactly 65536 bytes (a full
# pipe of the default size), one to itself grown to 1 MiB (F_SETPIPE_SZ)
# and full, one whose write end is a child's (left at home) holding 65536
# bytes; and a FIFO (DIR/fifo, both ends its own) full with 65536 bytes,
# which must come back once, not twice (vcluster nodes share one kernel:
# the FIFO is one pipe on every node). Writes DIR/ready, waits for DIR/go, reads them all and checks
# every byte and the sizes; writes DIR/result: PASS or FAIL: why.
import fcntl, os, sys, time
d = sys.argv[1]
def pattern(n, seed):
    return bytes((i * 7 + seed) % 251 for i in range(n))
r1, w1 = os.pipe()
os.write(w1, pattern(65536, 1))
r2, w2 = os.pipe()
fcntl.fcntl(w2, fcntl.F_SETPIPE_SZ, 1 << 20)
big = pattern(1 << 20, 2)
done = 0
while done < len(big):
    done += os.write(w2, big[done:])
fifo = os.path.join(d, "fifo")
os.mkfifo(fifo)
r4 = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
w4 = os.open(fifo, os.O_WRONLY)
os.write(w4, pattern(65536, 4))
r3, w3 = os.pipe()
kid = os.fork()
if kid == 0:
    os.close(r3)
    os.write(w3, pattern(65536, 3))
    while not os.path.exists(os.path.join(d, "go")):
        time.sleep(0.05)
    os._exit(0)
os.close(w3)
open(os.path.join(d, "pid"), "w").write("%d\n" % os.getpid())
open(os.path.join(d, "ready"), "w").close()
while not os.path.exists(os.path.join(d, "go")):
    time.sleep(0.05)
def result(s):
    open(os.path.join(d, "result"), "w").write(s + "\n")
    sys.exit(0 if s == "PASS" else 1)
def drain(fd, n):
    os.set_blocking(fd, False)
    out = b""
    while True:
        try:
            b = os.read(fd, 1 << 20)
        except BlockingIOError:
            break
        if not b:
            break
        out += b
    return out
size = fcntl.fcntl(r2, fcntl.F_GETPIPE_SZ)
if size != 1 << 20:
    result("FAIL: the 1 MiB pipe is %d bytes" % size)
for fd, n, seed, what in ((r1, 65536, 1, "64 KiB pipe"), (r2, 1 << 20, 2, "1 MiB pipe"), (r4, 65536, 4, "64 KiB FIFO")):
    got = drain(fd, n)
    if got != pattern(n, seed):
        result("FAIL: %s: %d bytes read, %s" % (what, len(got), "equal" if got == pattern(n, seed)[:len(got)] else "different"))
# The child's pipe: its data, then EOF once the child exits (after go).
got = b""
while True:
    b = os.read(r3, 65536)
    if not b:
        break
    got += b
if got != pattern(65536, 3):
    result("FAIL: the child's pipe: %d bytes read" % len(got))
# wait(), not waitpid(kid): back home the migrant's ghost of the child
# has another pid (docs/migration.md, "Limits now").
os.wait()
result("PASS")
