# taker.py PID OUT — on the node it runs on, fork the way every program
# does until the kernel hands out PID (that child then holds it: it
# sleeps) or goes past it; write "took" or "passed FIRST..LAST" to OUT.
# Without per-node pid ranges every node counts from the same low pids,
# so a pid that a process has on one node is handed out on another too.
import os, sys, time
want, out = int(sys.argv[1]), sys.argv[2]
first = last = None
verdict = None
for _ in range(40000):
    pid = os.fork()
    if pid == 0:
        if os.getpid() == want:
            time.sleep(600)
        os._exit(0)
    if pid != want:
        os.waitpid(pid, 0)
    if first is None:
        first = pid
    if pid == want:
        verdict = "took"
        break
    if pid > want or (last is not None and pid < last):
        verdict = "passed %d..%d" % (first, pid)
        break
    last = pid
with open(out, "w") as f:
    f.write((verdict or "gave up %s..%s" % (first, last)) + "\n")
if verdict == "took":
    time.sleep(600)
