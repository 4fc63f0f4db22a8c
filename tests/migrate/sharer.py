# sharer.py DIR TAG anon|memfd (tests/migrate/sharedmem.sh): a parent and
# its child share 1 MiB (MAP_SHARED anonymous, or a memfd mapped shared).
# The parent writes its pid's child into TAG.child and says TAG.ready.
# On TAG.childgo the child writes "child" into it and exits; the parent,
# once it reads that (so the memory is still one object), reaps the child
# and says TAG.alone; on TAG.go it checks both writes and exits 0.
import mmap, os, sys, time
d, tag, kind = sys.argv[1:4]
f = lambda s: os.path.join(d, tag + "." + s)
SZ = 1 << 20
if kind == "memfd":
    fd = os.memfd_create("krgshared")
    os.ftruncate(fd, SZ)
    m = mmap.mmap(fd, SZ, flags=mmap.MAP_SHARED)
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
sys.exit(0 if m[0:5] == b"hello" and m[100:105] == b"child" and st == 0 else 1)
