# prod.py MIB DIR: write MIB MiB of deterministic data on stdout. After
# 20 MiB it creates DIR/at20 and waits for DIR/go1, after 60 MiB DIR/at60
# and DIR/go2 (the test migrates it meanwhile). --expect: print the sha256
# of what it would write, and nothing else.
import hashlib, os, sys, time
mib, d = int(sys.argv[1]), sys.argv[2]
block = bytearray(hashlib.sha256(b"krg").digest() * (1 << 15))  # 1 MiB
if len(sys.argv) > 3:
    h = hashlib.sha256()
    for i in range(mib):
        block[0:8] = i.to_bytes(8, "little")
        h.update(block)
    print(h.hexdigest())
    sys.exit(0)
out = sys.stdout.buffer
for i in range(mib):
    for at, go in ((20, "go1"), (60, "go2")):
        if i == at:
            out.flush()
            open(os.path.join(d, "at%d" % at), "w").close()
            while not os.path.exists(os.path.join(d, go)):
                time.sleep(0.01)
    block[0:8] = i.to_bytes(8, "little")
    out.write(block)
out.flush()
