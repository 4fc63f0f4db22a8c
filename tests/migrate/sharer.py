# sharer.py DIR TAG anon|memfd|posix (tests/migrate/sharedmem.sh): a parent
# and its child share 1 MiB (MAP_SHARED anonymous, a memfd mapped shared,
# or a POSIX shm file of /dev/shm mapped shared: its path in TAG.shm).
# The parent writes its pid's child into TAG.child and says TAG.ready.
# On TAG.childgo the child writes "child" into it and exits; the parent,
# once it reads that (so the memory is still one object), reaps the child
# and says TAG.alone; on TAG.go it checks both writes and exits 0.
import mmap, os, sys, time
d, tag, kind = sys.argv[1:4]
f = lambda s: os.path.join(d, tag + "." + s)
SZ = 1 << 20
shm = None
if kind == "memfd":
    fd = os.memfd_create("krgshared")
    os.ftruncate(fd, SZ)
    m = mmap.mmap(fd, SZ, flags=mmap.MAP_SHARED)
elif kind == "posix":
    # what shm_open does: a file of /dev/shm, mapped shared
    shm = "/dev/shm/krgshared-%d" % os.getpid()
    fd = os.open(shm, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    os.ftruncate(fd, SZ)
    m = mmap.mmap(fd, SZ, flags=mmap.MAP_SHARED)
    os.close(fd)
    open(f("shm"), "w").write(shm)
else:
    m = mmap.mmap(-1, SZ, flags=mmap.MAP_SHARED)
m[0:5] = b"hello"
kid = os.fork()
if kid == 0:
    while not os.path.exists(f("childgo")):
        time.sleep(0.02)
    m[100:105] = b"child"
    os._exit(0)
open(f("child"), "w").write(str(kid))
open(f("ready"), "w").close()
while m[100:105] != b"child":
    time.sleep(0.02)
_, st = os.waitpid(kid, 0)
open(f("alone"), "w").close()
while not os.path.exists(f("go")):
    time.sleep(0.02)
if shm:
    os.unlink(shm)
sys.exit(0 if m[0:5] == b"hello" and m[100:105] == b"child" and st == 0 else 1)
