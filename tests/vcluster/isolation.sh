#!/usr/bin/env bash
# Isolation: two nodes of one vcluster share no kernel object that krg
# must carry itself — SysV IPC, /dev/shm, /tmp, /var/lib/krg, processes,
# hostname, loopback — yet reach each other over the bridge; the node's
# cgroup has the asked CPU quota; down leaves nothing behind.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
P=iso

vc_up $P 2 --no-krgd --cpus 0.5
init1=$(vc_init_pid $P 1)
init2=$(vc_init_pid $P 2)
a1=$(vc_addr $P 1)
a2=$(vc_addr $P 2)

# --- SysV IPC: a queue made on node 1 exists only there
vc_exec $P 1 -- ipcmk -Q >/dev/null
key=$(vc_exec $P 1 -- ipcs -q | awk '$1 ~ /^0x/ {print $1; exit}')
[ -n "$key" ] || fail "no message queue visible on node 1 after ipcmk -Q"
assert_not_contains "$(vc_exec $P 2 -- ipcs -q)" "$key" "queue of node 1 on node 2"
assert_not_contains "$(ipcs -q)" "$key" "queue of node 1 on the host"

# --- files in the per-node tmpfs mounts
vc_exec $P 1 -- sh -c 'echo 1 >/dev/shm/krg-iso; echo 1 >/tmp/krg-iso; echo 1 >/var/lib/krg/krg-iso'
vc_exec $P 1 -- test -e /dev/shm/krg-iso || fail "node 1 lost its /dev/shm file"
vc_exec $P 1 -- test -e /tmp/krg-iso || fail "node 1 lost its /tmp file"
for f in /dev/shm/krg-iso /tmp/krg-iso /var/lib/krg/krg-iso; do
	! vc_exec $P 2 -- test -e $f || fail "$f of node 1 is visible on node 2"
	[ ! -e $f ] || fail "$f of node 1 is visible on the host"
done
assert_eq "$(vc_exec $P 1 -- stat -c %a /dev/shm)" 1777 "mode of /dev/shm in node"
assert_eq "$(vc_exec $P 1 -- stat -c %a /run/krg/cluster.key)" 600 "mode of cluster.key in node"
! vc_exec $P 1 -- test -e /run/krg-vcluster || fail "node 1 sees the host's /run/krg-vcluster"

# --- processes: node 2 can neither see nor touch node 1's
vc_exec $P 1 -- sh -c 'sleep 1000 >/dev/null 2>&1 </dev/null &'
ns1=$(readlink /proc/"$init1"/ns/pid)
spid=
for d in /proc/[0-9]*; do
	if [ "$(readlink "$d"/ns/pid 2>/dev/null)" = "$ns1" ] && [ "$(cat "$d"/comm 2>/dev/null)" = sleep ]; then
		spid=${d#/proc/}
	fi
done
[ -n "$spid" ] || fail "sleep started on node 1 not found from the host"
assert_eq "$(awk '/^PPid:/ {print $2}' /proc/"$spid"/status)" "$init1" "parent of the orphaned sleep (node 1 init)"
assert_contains "$(vc_exec $P 1 -- ps -e -o comm)" sleep "ps on node 1"
assert_not_contains "$(vc_exec $P 2 -- ps -e -o comm)" sleep "ps on node 2"
assert_eq "$(vc_exec $P 1 -- cat /proc/1/comm)" krg-node-init "pid 1 of node 1"
# From node 2, try every way: the host pid, then every pid it can see.
vc_exec $P 2 -- python3 - "$spid" <<'PY'
import ctypes, errno, os, signal, sys
hostpid = int(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
PTRACE_ATTACH = 16
if libc.ptrace(PTRACE_ATTACH, hostpid, 0, 0) != -1 or ctypes.get_errno() != errno.ESRCH:
    sys.exit("ptrace of node 1's sleep by host pid from node 2 did not fail with ESRCH")
try:
    os.kill(hostpid, signal.SIGKILL)
    sys.exit("kill of node 1's sleep by host pid from node 2 succeeded")
except ProcessLookupError:
    pass
me = os.getpid()
for p in os.listdir("/proc"):
    if p.isdigit() and int(p) not in (1, me):
        try:
            os.kill(int(p), signal.SIGKILL)
        except ProcessLookupError:
            pass
PY
sleep 0.2
pid_alive "$spid" || fail "node 1's sleep died from node 2's kills"

# --- hostnames
h1=$(vc_exec $P 1 -- hostname)
h2=$(vc_exec $P 2 -- hostname)
assert_ne "$h1" "$h2" "hostnames of node 1 and node 2"
assert_ne "$h1" "$(hostname)" "hostname of node 1 and the host"

# --- network: node 1 reaches node 2's address over TCP; loopbacks are separate
vc_exec $P 2 -- python3 - "$a2" <<'PY' &
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 5555))
s.listen(1)
s.settimeout(20)
c, _ = s.accept()
c.sendall(b"hello from " + socket.gethostname().encode())
c.close()
PY
server=$!
got=$(vc_exec $P 1 -- python3 - "$a2" <<'PY'
import socket, sys, time
end = time.time() + 10
while True:
    try:
        # Node 2 listens on all its addresses: node 1's own loopback must
        # not reach it.
        try:
            socket.create_connection(("127.0.0.1", 5555), timeout=1).close()
            sys.exit("node 1 reached port 5555 on its own loopback")
        except ConnectionRefusedError:
            pass
        c = socket.create_connection((sys.argv[1], 5555), timeout=2)
        print(c.recv(100).decode())
        break
    except (ConnectionRefusedError, OSError) as e:
        if isinstance(e, SystemExit) or time.time() > end:
            raise
        time.sleep(0.1)
PY
)
wait $server || fail "TCP server on node 2 failed"
assert_eq "$got" "hello from $h2" "TCP from node 1 to node 2 ($a2)"
assert_eq "$(vc_exec $P 1 -- cat /sys/class/net/eth0/operstate)" up "eth0 state on node 1"
assert_contains "$(vc_exec $P 1 -- ip -4 -o addr show dev eth0)" "$a1/24" "address of node 1"

# --- cgroup: quota from --cpus, and exec'd commands run inside it
assert_eq "$(vc_cpu_quota $P 1)" 50000 "CPU quota of node 1 (--cpus 0.5)"
cg=$(vc_cgroup $P 2)
assert_contains "$(vc_exec $P 2 -- cat /proc/self/cgroup)" "${cg##*/krg-}" "cgroup of a command on node 2"

# --- exec: exit status and signals
set +e
vc_exec $P 1 -- sh -c 'exit 7'
assert_eq $? 7 "exit status through exec"
vc_exec $P 1 -- sh -c 'kill -TERM $$'
assert_eq $? 143 "status of a command killed by SIGTERM"
set -e

# --- down removes everything, the node processes included
vc_down $P >/dev/null
vc_assert_gone $P "$init1" "$init2" "$spid"
echo PASS
