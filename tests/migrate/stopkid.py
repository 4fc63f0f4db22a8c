# stopkid.py DIR: a parent with two stopped children (issue 14 item 16),
# moved between the ready and go files. Child A's stop is not yet reaped
# when it moves: after, waitpid(A, WUNTRACED) reports it (stopped by
# SIGSTOP). Child B's stop was reaped before: after, waitpid(B,
# WUNTRACED|WNOHANG) reports nothing. Then both are continued (SIGCONT
# from the parent) and exit 5 and 6: waitpid reports each exit. Writes
# DIR/result: PASS or FAIL: why.
import os, signal, sys, time
d = sys.argv[1]
def kids():
    """This process's children now, pid:comm:state (a failure says them)."""
    out = []
    for t in os.listdir("/proc/self/task"):
        try:
            for c in open("/proc/self/task/%s/children" % t).read().split():
                st = open("/proc/%s/stat" % c).read()
                out.append("%s:%s:%s" % (c, st[st.index("(") + 1:st.rindex(")")], st[st.rindex(")") + 2]))
        except OSError:
            pass
    return " ".join(out) or "none"
def result(s):
    if s != "PASS":
        s += " (A=%d B=%d; children now: %s)" % (a, b, kids())
    open(os.path.join(d, "result"), "w").write(s + "\n")
    sys.exit(0 if s == "PASS" else 1)
def child(code):
    pid = os.fork()
    if pid == 0:
        while not os.path.exists(os.path.join(d, "end")):
            time.sleep(0.02)
        os._exit(code)
    return pid
def state(pid):
    s = open("/proc/%d/stat" % pid).read()
    return s[s.rindex(")") + 2]
a, b = child(5), child(6)
for k in (a, b):
    os.kill(k, signal.SIGSTOP)
    while state(k) != "T":
        time.sleep(0.01)
p, st = os.waitpid(b, os.WUNTRACED)
if p != b or not os.WIFSTOPPED(st):
    result("FAIL: before: B's stop not reported")
open(os.path.join(d, "pid"), "w").write("%d\n" % os.getpid())
open(os.path.join(d, "ready"), "w").close()
while not os.path.exists(os.path.join(d, "go")):
    time.sleep(0.02)
try:
    p, st = os.waitpid(b, os.WUNTRACED | os.WNOHANG)
except OSError as e:
    result("FAIL: waitpid(B, WUNTRACED|WNOHANG): %s" % e)
if (p, st) != (0, 0):
    result("FAIL: B's stop, reaped before, reported again: %d %#x" % (p, st))
try:
    p, st = os.waitpid(a, os.WUNTRACED)
except OSError as e:
    result("FAIL: waitpid(A, WUNTRACED): %s" % e)
if p != a or not os.WIFSTOPPED(st) or os.WSTOPSIG(st) != signal.SIGSTOP:
    result("FAIL: A's stop: %d %#x" % (p, st))
open(os.path.join(d, "end"), "w").close()
for k in (a, b):
    os.kill(k, signal.SIGCONT)
for k, code in ((a, 5), (b, 6)):
    try:
        p, st = os.waitpid(k, 0)
    except OSError as e:
        result("FAIL: waitpid for the exit of %d: %s" % (k, e))
    if p != k or not os.WIFEXITED(st) or os.WEXITSTATUS(st) != code:
        result("FAIL: exit of %d: %#x, expected %d" % (k, st, code))
result("PASS")
