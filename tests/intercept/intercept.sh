#!/usr/bin/env bash
# IPC interception (docs/ipc.md, "Interception"), on a 2-node vcluster:
#  1. unmodified programs under `krg run` (and their children after fork
#     and exec) share krg's queues and semaphores; a process outside krg
#     on the same node has the node's own IPC and sees none of them, nor
#     do krg processes see its objects;
#  2. the x32 and i386 entry points are refused (ENOSYS), everything else
#     of i386 still runs; garbage pointers give EFAULT and krgd serves on;
#  3. a signal during a blocked msgrcv: EINTR, the handler ran, nothing
#     consumed; with SA_RESTART too (Linux never restarts msgrcv);
#  4. SEM_UNDO is applied when the process exits; System V shm: a segment
#     made by shmget on node 2 is seen by shmctl on node 1; two processes
#     attached on node 1 share it exactly; node 2 attaches it too and
#     reads their total (krgd's DSM; tests/dsm/krgd.sh tests it further);
#  5. Debian's python3-sysv-ipc, producer on node 2, consumer on node 1;
#  6. checkpoint/restart of a process blocked in msgrcv: it comes back
#     with krg's filter and receives what is sent after; a queue the
#     application created itself is checkpointed with it;
#  7. migration of an intercepted process: it runs on with the filter, its
#     calls served on the new node;
#  8. migration in the middle of msgrcv: the call completes on the new
#     node with what a process on the old one sends.
PREFIX=icpt
. "$KRG_SOURCE_DIR/tests/cluster/common.sh"
KRG=$KRG_BUILD_DIR/krg
I=$KRG_BUILD_DIR/tests/intercept/icpt
PY=/usr/bin/python3
ipc_test_dir intercept
start_cluster 2
trap 'rc=$?; [ $rc -ne 0 ] && dump_logs; "$ADM" vcluster down --prefix "$PREFIX" >/dev/null 2>&1 || true; rm -rf "$W"; exit $rc' EXIT
on 1 krgadm sched disable mosix >/dev/null
kr() { on 1 timeout 20 "$KRG" run -n "$@"; }
krgd_alive() { on "$1" pgrep -x krgd >/dev/null; }

echo "== 1. shared by krg processes, invisible outside"
assert_eq "$(kr 1 -- "$I" send 0x1234 1 hello)" sent "krg run send"
assert_eq "$(kr 1 -- "$I" qnum 0x1234)" "qnum 1" "another krg process sees the message"
assert_eq "$(on 1 "$I" exists 0x1234)" "errno ENOENT" "a process outside krg on the same node"
assert_eq "$(on 1 "$I" send 0x5678 1 native)" sent "native send outside krg"
assert_eq "$(kr 1 -- "$I" exists 0x5678)" "errno ENOENT" "krg process looking for a native object"
on 1 "$I" rm 0x5678 >/dev/null
out=$(kr 1 -- sh -c "$I send 0x1234 2 fromchild && $I qnum 0x1234")
assert_contains "$out" "qnum 2" "children of a krg process after fork and exec"
assert_eq "$(kr 1 -- "$I" recv 0x1234 0)" "got hello type 1" "krg run recv"
assert_eq "$(kr 1 -- "$I" recv 0x1234 2)" "got fromchild type 2" "krg run recv by type"
st=$(kr 1 -- sh -c 'grep ^Seccomp: /proc/self/status' | awk '{print $2}')
assert_eq "$st" 2 "a krg process carries a seccomp filter"
st=$(on 1 sh -c 'grep ^Seccomp: /proc/self/status' | awk '{print $2}')
assert_eq "$st" 0 "a process outside krg carries none"

echo "== 2. other ABIs, garbage pointers"
assert_eq "$(kr 1 -- "$I" abi)" "abi ok" "x32/i386 refused"
assert_eq "$(kr 1 -- "$I" fault)" "faults ok" "EFAULT for garbage pointers"
krgd_alive 1 || fail "krgd died"

echo "== 3. signals during a blocked msgrcv"
for mode in norestart restart; do
	on 1 sh -c "timeout 30 $KRG run -n 1 -- $I recv-sig 0x2222 $mode >$W/sig-$mode.out 2>&1 &"
	wait_for 10 "receiver ready ($mode)" grep -q ready "$W/sig-$mode.out"
	pid=$(on 1 pgrep -f "^$I recv-sig 0x2222 $mode")
	[ -n "$pid" ] || fail "receiver not found"
	sleep 0.3  # in msgrcv by now
	on 1 kill -USR1 "$pid"
	wait_for 10 "receiver ends ($mode)" grep -q handled= "$W/sig-$mode.out"
	assert_contains "$(cat "$W/sig-$mode.out")" "eintr handled=1" "msgrcv interrupted by a handler ($mode)"
done
assert_eq "$(kr 1 -- "$I" send 0x2222 1 after)" sent "send after the interruptions"
assert_eq "$(kr 1 -- "$I" recv 0x2222 0)" "got after type 1" "nothing consumed by the interrupted calls"
# A stop and continue (no handler) restarts msgrcv transparently.
on 1 sh -c "timeout 30 $KRG run -n 1 -- $I recv 0x2223 0 >$W/stop.out 2>&1 &"
wait_for 10 "receiver started" on 1 pgrep -f "^$I recv 0x2223"
pid=$(on 1 pgrep -f "^$I recv 0x2223")
sleep 0.3
on 1 kill -STOP "$pid"
sleep 0.2
on 1 kill -CONT "$pid"
sleep 0.2
assert_eq "$(kr 1 -- "$I" send 0x2223 1 wakeup)" sent "send to the stopped-and-continued receiver"
wait_for 10 "receiver got it" grep -q "got wakeup" "$W/stop.out"

echo "== 4. SEM_UNDO at exit"
assert_eq "$(kr 1 -- "$I" undo 0x4321)" "val 1" "semop +1 SEM_UNDO"
assert_eq "$(kr 1 -- "$I" semval 0x4321)" "val 0" "undone at exit"

echo "== 4b. System V shm: shmget/shmctl cluster-wide, shmat on node 1 then node 2"
assert_contains "$(kr 2 -- "$I" shm-get 0x5353 8192)" "shm id " "shmget on node 2"
assert_eq "$(kr 1 -- "$I" shm-stat 0x5353)" "size 8192 nattch 0 cpid-is-me N" "node 1 sees node 2's segment"
assert_contains "$(on 1 "$I" shm-stat 0x5353 || true)" "FAIL shm-stat" "a process outside krg does not"
out=$(on 1 sh -c "timeout 30 $KRG run -n 1 -- $I shm-count 0x5353 200000 & timeout 30 $KRG run -n 1 -- $I shm-count 0x5353 200000 & wait")
assert_eq "$out" "count done
count done" "two krg processes on node 1 attached at once"
assert_eq "$(kr 1 -- "$I" shm-read 0x5353)" "value 400000" "their atomic increments on one shared word, none lost"
assert_eq "$(kr 2 -- "$I" shm-read 0x5353)" "value 400000" "shmat from node 2 sees node 1's bytes (the DSM)"
assert_eq "$(kr 1 -- "$I" shm-read 0x5353)" "value 400000" "node 1 attaches on after node 2"
assert_eq "$(kr 1 -- "$I" shm-atdt 0x5353)" "detached unmapped" "shmdt unmaps krgd's attach, a second one is EINVAL"
assert_eq "$(kr 2 -- "$I" shm-rm 0x5353)" removed "IPC_RMID from node 2"
assert_contains "$(kr 1 -- "$I" shm-stat 0x5353 || true)" "FAIL shm-stat" "removed for node 1 too"

echo "== 5. python3-sysv-ipc"
cat >"$W/cons.py" <<'PYEOF'
import sysv_ipc
q = sysv_ipc.MessageQueue(0x777, sysv_ipc.IPC_CREAT)
total = 0
for i in range(50):
    m, t = q.receive()
    total += int(m)
print("total", total)
PYEOF
on 1 sh -c "timeout 60 $KRG run -n 1 -- $PY $W/cons.py >$W/cons.out 2>&1 &"
kr 2 -- $PY -c "
import sysv_ipc
q = sysv_ipc.MessageQueue(0x777, sysv_ipc.IPC_CREAT)
for i in range(50):
    q.send(str(i).encode())
" || fail "python producer"
wait_for 30 "python consumer done" grep -q total "$W/cons.out"
assert_eq "$(cat "$W/cons.out")" "total 1225" "python consumer"

echo "== 6. checkpoint/restart while blocked in msgrcv"
# A queue the application created goes with its image (ipc-ckpt restarts
# one), and stays in the cluster: the receiver runs on with it.
on 1 sh -c "$KRG run -n 1 -- $I recv 0x3334 0 >$W/own.out 2>&1 &"
wait_for 10 "receiver with its own queue started" on 1 pgrep -f "^$I recv 0x3334"
sleep 0.3
id=$(on 1 "$KRG" ps -a --json | $PY -c "import json,sys; print([p['id'] for p in json.load(sys.stdin)['processes'] if 'icpt recv 0x3334' in p['command']][0])")
out=$(on 1 "$KRG" checkpoint "$id" 2>&1) || fail "checkpoint of an application with its own queue: $out"
out=$(on 1 "$KRG" checkpoint "$id" --ignore-unsupported 2>&1) || fail "checkpoint --ignore-unsupported: $out"
assert_eq "$(kr 1 -- "$I" send 0x3334 1 own)" sent "send to the receiver checkpointed without its queue"
wait_for 10 "receiver got it" grep -q "got own" "$W/own.out"
# A queue made outside the application (krg ipcmk) is not its own.
on 1 "$KRG" ipcmk -Q -k 0x3333 >/dev/null
on 1 sh -c "$KRG run -n 1 -- $I recv 0x3333 0 >$W/ck.out 2>&1 &"
wait_for 10 "receiver started" on 1 pgrep -f "^$I recv 0x3333"
sleep 0.3
pid=$(on 1 pgrep -f "^$I recv 0x3333")
id=$(on 1 "$KRG" ps -a --json | $PY -c "import json,sys; print([p['id'] for p in json.load(sys.stdin)['processes'] if 'icpt recv 0x3333' in p['command']][0])")
out=$(on 1 "$KRG" checkpoint "$id" --kill 2>&1) || fail "checkpoint of an intercepted process: $out"
new=$(on 1 "$KRG" restart "$id" 2>&1) || fail "restart: $new"
wait_for 10 "restarted" on 1 pgrep -f "^$I recv 0x3333"
pid=$(on 1 pgrep -f "^$I recv 0x3333")
st=$(on 1 sh -c "grep ^Seccomp: /proc/$pid/status" | awk '{print $2}')
assert_eq "$st" 2 "the restarted process has krg's filter"
assert_eq "$(kr 1 -- "$I" send 0x3333 1 torestarted)" sent "send to the restarted receiver"
wait_for 10 "restarted receiver got it" bash -c "! $ADM vcluster exec 1 --prefix $PREFIX -- pgrep -f '^$I recv 0x3333'"
assert_eq "$(kr 1 -- "$I" qnum 0x3333)" "qnum 0" "the restarted receiver took the message"

echo "== 7. migration of an intercepted process"
cat >"$W/mig.sh" <<EOS
while [ ! -e $W/go ]; do sleep 0.1; done
$I send 0x9999 1 migrated && $I recv 0x9999 0 && grep ^Seccomp: /proc/self/status
EOS
on 1 sh -c "$KRG run -n 1 -- sh $W/mig.sh >$W/mig.out 2>&1 &"
wait_for 10 "script started" on 1 pgrep -f "^sh $W/mig.sh"
id=$(on 1 "$KRG" ps -a --json | $PY -c "import json,sys; print([p['id'] for p in json.load(sys.stdin)['processes'] if 'mig.sh' in p['command']][0])")
out=$(on 1 "$KRG" migrate "$id" 2 2>&1) || fail "migrate: $out"
touch "$W/go"
wait_for 20 "migrated script done" grep -q Seccomp "$W/mig.out"
assert_contains "$(cat "$W/mig.out")" "got migrated type 1" "IPC calls after the migration"
assert_contains "$(cat "$W/mig.out")" "Seccomp:	2" "children of the migrant carry the filter"

echo "== 8. migration in the middle of msgrcv"
on 1 sh -c "$KRG run -n 1 -- $I recv 0x7777 0 >$W/mid.out 2>&1 &"
wait_for 10 "receiver started" on 1 pgrep -f "^$I recv 0x7777"
sleep 0.3
id=$(on 1 "$KRG" ps -a --json | $PY -c "import json,sys; print([p['id'] for p in json.load(sys.stdin)['processes'] if '$I recv 0x7777' in p['command']][0])")
out=$(on 1 "$KRG" migrate "$id" 2 2>&1) || fail "migrate a process blocked in msgrcv: $out"
wait_for 10 "receiver runs on node 2" on 2 pgrep -f "^$I recv 0x7777"
assert_eq "$(kr 1 -- "$I" send 0x7777 1 crossed)" sent "send from node 1"
wait_for 15 "migrated receiver got it" grep -q "got crossed" "$W/mid.out"
assert_eq "$(kr 2 -- "$I" qnum 0x7777)" "qnum 0" "taken once"
krgd_alive 1 && krgd_alive 2 || fail "a krgd died"
echo "PASS"
