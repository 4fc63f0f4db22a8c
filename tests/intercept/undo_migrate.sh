#!/usr/bin/env bash
# SEM_UNDO of a process that migrates twice (docs/ipc.md, "Processes,
# users, dead callers"), on a 3-node vcluster: a krg process raises a
# semaphore with SEM_UNDO on node 1, migrates to node 2, raises it again
# there, and migrates on to node 3. Its copy leaving node 2 is not its
# exit: the value stays. When it really ends (on node 3), both of its
# adjustments are undone exactly once, although its exit is reported by
# more than one node (home's deputy, and every node that followed it).
PREFIX=ipcum
. "$KRG_SOURCE_DIR/tests/cluster/common.sh"
KRG=$KRG_BUILD_DIR/krg
I=$KRG_BUILD_DIR/tests/intercept/icpt
PY=/usr/bin/python3
KEY=0x5e55
ipc_test_dir undo-migrate
start_cluster 3
trap 'rc=$?; [ $rc -ne 0 ] && dump_logs; "$ADM" vcluster down --prefix "$PREFIX" >/dev/null 2>&1 || true; rm -rf "$W"; exit $rc' EXIT
on 1 krgadm sched disable mosix >/dev/null

cat >"$W/hold.py" <<'PY'
import os, sys, time, sysv_ipc
key, w = int(sys.argv[1], 16), sys.argv[2]
s = sysv_ipc.Semaphore(key)
s.undo = True
def up(tag):
    s.release()
    open(f"{w}/{tag}", "w").close()
up("up1")
while not os.path.exists(f"{w}/step"):
    time.sleep(0.05)
up("up2")
while not os.path.exists(f"{w}/stop"):
    time.sleep(0.05)
PY
semval() { on 1 timeout 20 "$KRG" run -n 1 -- "$I" semval "$KEY"; }
where() { # where: the node the holder runs on now
	on 1 "$KRG" ps -a --json | $PY -c "import json,sys; print([p['node'] for p in json.load(sys.stdin)['processes'] if 'hold.py' in p['command']][0])"
}
# The set, at 5, raised by nobody's undo.
on 1 timeout 20 "$KRG" run -n 1 -- $PY -c "
import sysv_ipc
s = sysv_ipc.Semaphore($KEY, sysv_ipc.IPC_CREAT, 0o666, 5)" || fail "creating the set"
assert_eq "$(semval)" "val 5" "the set starts at 5"
on 1 sh -c "timeout 120 $KRG run -n 1 -- $PY $W/hold.py $KEY $W >$W/hold.out 2>&1; echo \$? >$W/hold.rc" &
hold=$!
wait_for 20 "first SEM_UNDO raise" test -e "$W/up1"
assert_eq "$(semval)" "val 6" "raised with SEM_UNDO on node 1"
id=$(on 1 "$KRG" ps -a --json | $PY -c "import json,sys; print([p['id'] for p in json.load(sys.stdin)['processes'] if 'hold.py' in p['command']][0])")
out=$(on 1 "$KRG" migrate "$id" 2 2>&1) || fail "migrate to node 2: $out"
touch "$W/step"
wait_for 20 "second SEM_UNDO raise, on node 2" test -e "$W/up2"
assert_eq "$(semval)" "val 7" "raised again with SEM_UNDO on node 2"
out=$(on 1 "$KRG" migrate "$id" 3 2>&1) || fail "migrate to node 3: $out"
wait_for 20 "the holder runs on node 3" test "$(where)" = 3
sleep 1  # node 2's krgd has seen its copy go by now
assert_eq "$(semval)" "val 7" "leaving node 2 is not an exit: nothing undone"
touch "$W/stop"
wait "$hold" || true
assert_eq "$(cat "$W/hold.rc")" 0 "the holder ended well ($(cat "$W/hold.out"))"
wait_for 10 "the undo applied" test "$(semval)" = "val 5"
sleep 1  # every node's exit report has arrived by now
assert_eq "$(semval)" "val 5" "both adjustments undone exactly once"
echo "PASS"
