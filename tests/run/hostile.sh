#!/usr/bin/env bash
# A hostile local user against krgd's API socket (issue 13, items 1, 4, 5):
#  - identity comes from what the kernel recorded at connect time: a user
#    who holds a connection open after its connecting process exited, and
#    lets a root process take that pid, still runs as itself with its own
#    groups (was: root's groups, read from /proc/<pid>/status);
#  - per-user connection limit with a clear refusal, root still served;
#  - idle connections closed after api_idle_ms;
#  - half-sent large requests bounded by the per-user byte budget (krgd's
#    RSS does not grow by what a user announces or sends);
#  - the refusals are logged rate-limited, with a count.
PREFIX=rhost
. "$(dirname "$0")/common.sh"
ensure_user krghost1 krghostg1
start_run_cluster 2

as() { # as USER CMD...: run CMD in node 1 as USER with its groups
	local u=$1
	shift
	on 1 setpriv --reuid="$u" --regid="$(id -g "$u")" --init-groups -- "$@"
}

# Small limits on node 1, so that the probes stay small: restart its krgd.
on 1 sh -c 'printf "api_max_conns_per_user = 40\napi_max_mib_per_user = 16\napi_idle_ms = 3000\n" >> /run/krg/krgd.conf'
"$ADM" vcluster krgd 1 kill --prefix "$PREFIX"
"$ADM" vcluster krgd 1 start --prefix "$PREFIX"
on 1 krgadm cluster wait --timeout 30 >/dev/null

# ---- 1. groups from a recycled pid -------------------------------------
# krghost1's relay: a child connects to krgd.sock and hands the socket to
# the relay, then exits. Root then makes a process with groups 6 (disk) and
# 42 (shadow) take the child's pid. The relay forwards a krg run through
# the old connection.
cat >"$TMPD/relay.py" <<'PY'
import os, socket, sys, threading, array
krgd, relay_path, pidfile = sys.argv[1], sys.argv[2], sys.argv[3]
a, b = socket.socketpair()
pid = os.fork()
if pid == 0:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(krgd)
    socket.send_fds(b, [b"x"], [s.fileno()])
    os._exit(0)
msg, fds, _, _ = socket.recv_fds(a, 1, 1)
os.waitpid(pid, 0)
up = socket.socket(fileno=fds[0])
with open(pidfile + ".tmp", "w") as f:
    f.write(str(pid))
os.rename(pidfile + ".tmp", pidfile)
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(relay_path)
os.chmod(relay_path, 0o777)
srv.listen(1)
c, _ = srv.accept()
def pump(x, y):
    try:
        while True:
            d = x.recv(65536)
            if not d:
                break
            y.sendall(d)
    except OSError:
        pass
    try:
        y.shutdown(socket.SHUT_WR)
    except OSError:
        pass
t = threading.Thread(target=pump, args=(up, c), daemon=True)
t.start()
pump(c, up)
t.join(30)
PY
cat >"$TMPD/takepid.py" <<'PY'
# As root in the node's pid namespace: start `sleep` with groups 6,42 as
# the given pid (ns_last_pid), retrying if another fork got there first.
import os, sys, time
want = int(sys.argv[1])
for attempt in range(50):
    with open("/proc/sys/kernel/ns_last_pid", "w") as f:
        f.write(str(want - 1))
    pid = os.fork()
    if pid == 0:
        os.setgroups([6, 42])
        os.execvp("sleep", ["sleep", "120"])
    if pid == want:
        print(pid)
        sys.exit(0)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    time.sleep(0.01)
sys.exit(1)
PY
chmod 644 "$TMPD"/*.py
as krghost1 sh -c "python3 $TMPD/relay.py /run/krg/krgd.sock /tmp/relay.sock /tmp/relay.pid >/dev/null 2>&1 &"
wait_for 10 "relay ready" on 1 test -S /tmp/relay.sock
cpid=$(on 1 cat /tmp/relay.pid)
on 1 sh -c "python3 $TMPD/takepid.py $cpid >/tmp/taken 2>&1 &"
wait_for 10 "a root process takes pid $cpid" on 1 grep -qx "$cpid" /tmp/taken
assert_eq "$(on 1 sh -c "grep ^Groups: /proc/$cpid/status | tr -s '\t ' ' '")" "Groups: 6 42 " \
	"groups of the process that took pid $cpid"
out=$(as krghost1 env KRG_SOCKET=/tmp/relay.sock krg run -n 2 -- id)
echo "relayed krg run: $out"
want=$(as krghost1 id)
assert_eq "$out" "$want" "identity through a connection whose pid was recycled"
on 1 pkill -f 'sleep 120' || true

# ---- 4. per-user connections, root reserve, idle deadline ---------------
cat >"$TMPD/hold.py" <<'PY'
# Open N connections and hold them until killed; print how many were kept
# open by krgd after a moment, and the first refusal's text.
import socket, sys, time, struct
path, n = sys.argv[1], int(sys.argv[2])
conns = []
for i in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    conns.append(s)
time.sleep(0.5)
alive, refusal = 0, ""
for s in conns:
    s.setblocking(False)
    try:
        d = s.recv(4096)
        if d and not refusal:
            refusal = d[4:].decode("latin-1")
    except BlockingIOError:
        alive += 1
print(alive, flush=True)
print(repr(refusal), flush=True)
sys.stdout.flush()
time.sleep(float(sys.argv[3]))
PY
chmod 644 "$TMPD/hold.py"
as krghost1 sh -c "python3 $TMPD/hold.py /run/krg/krgd.sock 100 60 >/tmp/hold.out 2>&1 &"
wait_for 10 "connections held" on 1 sh -c 'test $(wc -l </tmp/hold.out) -ge 2'
assert_eq "$(on 1 head -1 /tmp/hold.out)" 40 "connections krgd keeps for one user (limit 40)"
on 1 grep -q "too many connections to krgd for uid" /tmp/hold.out || fail "no refusal text: $(on 1 cat /tmp/hold.out)"
# The user's next command is refused in one line; root is served.
set +e
err=$(as krghost1 krg ps 2>&1)
rc=$?
set -e
assert_ne "$rc" 0 "krg ps of a user at its connection limit"
case "$err" in *"too many connections to krgd for uid"*) ;; *) fail "unclear refusal: $err" ;; esac
on 1 krgadm cluster status >/dev/null || fail "root refused while a user is at its limit"
# Idle deadline: the held connections are closed after 3 s, then the user
# is served again.
wait_for 15 "idle connections closed" as krghost1 krg ps
grep -q "closing an idle connection of uid" "$(log_of 1)" || fail "idle close not logged"
on 1 pkill -f hold.py || true

# ---- 4. byte budget: half-sent 4 MiB requests ---------------------------
cat >"$TMPD/big.py" <<'PY'
# Connections that each announce a 4 MiB request and send all but a byte.
import socket, sys, time
path, n = sys.argv[1], int(sys.argv[2])
conns = []
for i in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.settimeout(2)
    try:
        s.sendall((4 << 20).to_bytes(4, "big") + b"\x08" * ((4 << 20) - 1))
    except OSError:
        pass
    conns.append(s)
time.sleep(float(sys.argv[3]))
PY
chmod 644 "$TMPD/big.py"
rss0=$(krgd_rss 1)
as krghost1 sh -c "python3 $TMPD/big.py /run/krg/krgd.sock 30 20 >/dev/null 2>&1 &"
sleep 4
rss1=$(krgd_rss 1)
echo "krgd RSS before $rss0 KiB, with 30 half-sent 4 MiB requests $rss1 KiB"
[ $((rss1 - rss0)) -lt $((40 * 1024)) ] || fail "krgd grew by $(((rss1 - rss0) / 1024)) MiB for one user's half-sent requests (budget 16 MiB)"
grep -q "bytes of requests buffered (limit" "$(log_of 1)" || fail "byte budget refusal not logged"
on 1 krgadm cluster status >/dev/null || fail "root refused during the byte probe"
on 1 pkill -f big.py || true

# ---- 5. log flood: refusals are rate-limited with a count ---------------
as krghost1 sh -c "python3 $TMPD/hold.py /run/krg/krgd.sock 400 15 >/dev/null 2>&1 &"
sleep 2
wait_for 30 "suppressed count logged" grep -q "more like this in" "$(log_of 1)"
lines=$(grep -c "api: refused a connection of uid" "$(log_of 1)")
echo "refusal lines logged: $lines"
[ "$lines" -le 110 ] || fail "$lines refusal lines: not rate-limited"
on 1 pkill -f hold.py || true
echo PASS
