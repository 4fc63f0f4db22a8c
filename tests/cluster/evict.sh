#!/usr/bin/env bash
# Eviction (docs/reconfiguration.md): `nodes del -n 3` on a node that runs
# 5 krg processes returns once they all moved to other nodes; each goes on
# with its output still reaching the `krg run` that started it, and its
# exact exit status. A process that may not migrate but may be
# checkpointed moves too, as a migration (a checkpoint restored at once):
# it keeps its id and krg run gets its exit status, and it finishes with
# an uninterrupted run's result. A process that allows
# neither makes nodes del refuse by name; --force ends it; so does one
# that may be checkpointed but can be neither migrated nor checkpointed
# (a listening socket). Deleting a node
# that does not exist is one line.
PREFIX=evict
. "$(dirname "$0")/common.sh"
PROG=$KRG_BUILD_DIR/tests/cluster/recover_counter
[ -x "$PROG" ] || { echo "FAIL: cannot run: $PROG not built"; exit 1; }
start_cluster 3

dir=$(mktemp -d)
pids=()
for k in 1 2 3 4 5; do
	on 1 krg run -n 3 -- sh -c "i=0; while [ \$i -lt 24 ]; do i=\$((i+1)); echo p$k line \$i; sleep 0.25; done; exit 1$k" \
		>"$dir/out$k" 2>"$dir/err$k" &
	pids+=($!)
done
# All five run on node 3 and printed.
for k in 1 2 3 4 5; do
	wait_for 10 "process $k printed" grep -q "p$k line 2" "$dir/out$k"
done
out=$(on 1 krgadm nodes del -n 3)
echo "$out"
assert_contains "$out" "node 3: leaving" "progress of nodes del"
# The 5 shells and whatever sleep each ran at the time.
echo "$out" | grep -Eq "node 3: left: empty, ([5-9]|10) process\(es\) moved away" || fail "nodes del said: $out"
assert_eq "$(node_state 1 3)" absent "node 3 left"
grep -q "evict: moving" "$(log_of 3)" || fail "node 3's log shows no eviction move"
for k in 1 2 3 4 5; do
	rc=0
	wait "${pids[$((k-1))]}" || rc=$?
	assert_eq "$rc" "1$k" "process $k's exit status through the eviction"
	assert_eq "$(grep -c "^p$k line" "$dir/out$k")" 24 "process $k's lines reached krg run"
	assert_eq "$(tail -n1 "$dir/out$k")" "p$k line 24" "process $k's output in order"
	[ ! -s "$dir/err$k" ] || fail "process $k: stderr: $(cat "$dir/err$k")"
done
rm -rf "$dir"
# Nothing runs on an absent node: krg run --auto places elsewhere.
for _ in 1 2 3; do
	assert_ne "$(on 1 krg run --auto -- hostname)" "$(on 3 hostname)" "placed on the evicted node"
done
on 1 krgadm nodes add -n 3 >/dev/null
wait_for 10 "node 3 back" state_is 1 3 up

# A process without CAN_MIGRATE but CHECKPOINTABLE (tests/cluster/counter.c,
# 8 MiB mixed at each step): nodes del migrates it (the eviction's
# mover may move a CHECKPOINTABLE process) to node 1 or 2, where it runs
# on, under the same id, to the result of a run that was never
# interrupted; the krg run that started it gets its exit status (0), not
# the end of a checkpoint with kill.
W=$(mktemp -d "$KRG_BUILD_DIR/evict.XXXXXX")
chmod 755 "$W"
mkdir "$W/ref" "$W/run"
chmod 777 "$W/run"
"$PROG" "$W/ref" 60 0
on 1 krg run -n 3 -- krg capset -d CAN_MIGRATE -- "$PROG" "$W/run" 60 100 >/dev/null 2>&1 &
ckpt_run=$!
wait_for 10 "the counter runs on node 3" test -s "$W/run/progress"
# counter_ids NODE: the ids of the counters running on NODE (krg ps -a)
counter_ids() {
	on 1 krg ps -a --json | python3 -c "
import json, sys
print(' '.join(str(p['id']) for p in json.load(sys.stdin)['processes'] if p['command'].split(' ')[0].endswith('/recover_counter') and p['node'] == $1))"
}
cid=$(counter_ids 3)
[ -n "$cid" ] || fail "the counter is not in krg ps on node 3"
out=$(on 1 krgadm nodes del -n 3)
echo "$out"
echo "$out" | grep -q "node 3: left: empty, 1 process(es) moved away$" ||
	fail "nodes del said: $out"
grep -q "evict: moving $cid (recover_counter) to node [12] (no CAN_MIGRATE, but CHECKPOINTABLE)" "$(log_of 3)" ||
	fail "node 3's log does not show the counter migrated"
[ -s "$W/run/result" ] || assert_contains " $(counter_ids 1) $(counter_ids 2) " " $cid " "the counter's id after the eviction"
wait_for 20 "the moved counter to finish" test -s "$W/run/result"
diff "$W/ref/result" "$W/run/result" || fail "result differs from the uninterrupted run"
rc=0
wait "$ckpt_run" || rc=$?
assert_eq "$rc" 0 "the counter's exit status through krg run after the eviction"
rm -rf "$W"
on 1 krgadm nodes add -n 3 >/dev/null
wait_for 10 "node 3 back" state_is 1 3 up

# refused_then_forced PID COMM REFUSAL LOGLINE: with COMM running on node
# 3 (krg run's pid PID), nodes del refuses with REFUSAL (a grep pattern
# after "refused to leave: ID (COMM) "), node 3 stays a member and COMM
# runs on; --force ends it (PID exits non-zero, node 3's log says LOGLINE
# after "ending ID (COMM)") and the node leaves.
refused_then_forced() {
	local pid=$1 comm=$2 refusal=$3 logline=$4 out rc=0
	out=$(on 1 krgadm nodes del -n 3 2>&1) || rc=$?
	echo "$out"
	[ $rc -ne 0 ] || fail "nodes del succeeded with $comm, which can neither migrate nor be checkpointed"
	echo "$out" | grep -q "^krgadm: node 3 refused to leave: [0-9]* ($comm) $refusal" || fail "nodes del said: $out"
	wait_for 5 "node 3 stays a member" state_is 1 3 up
	"$ADM" vcluster exec 3 --prefix "$PREFIX" -- pgrep -x "$comm" >/dev/null || fail "the refusal ended $comm"
	out=$(on 1 krgadm nodes del -n 3 --force)
	echo "$out"
	assert_contains "$out" "node 3: left" "nodes del --force ending $comm"
	rc=0
	wait "$pid" || rc=$?
	[ $rc -ne 0 ] || fail "$comm, ended by --force, exited 0"
	grep -q "nodes del --force: ending [0-9]* ($comm)$logline" "$(log_of 3)" ||
		fail "node 3's log does not name the ended $comm"
}

# A process that allows neither (CAN_MIGRATE and CHECKPOINTABLE dropped):
# nodes del refuses at once, naming it, and node 3 stays a member; --force
# ends it and the node leaves.
on 1 krg run -n 3 -- krg capset -d CAN_MIGRATE -- krg capset -d CHECKPOINTABLE -- sleep 60 >/dev/null 2>&1 &
stuck=$!
wait_for 10 "the process without CAN_MIGRATE runs on node 3" "$ADM" vcluster exec 3 --prefix "$PREFIX" -- pgrep -x sleep
refused_then_forced "$stuck" sleep "cannot migrate nor be checkpointed; del --force ends it$" ""
on 1 krgadm nodes add -n 3 >/dev/null
wait_for 10 "node 3 back again" state_is 1 3 up

# A process without CAN_MIGRATE that may be checkpointed but cannot be
# (a listening TCP socket: the migration refuses it, and so does the
# checkpoint): nodes del refuses, naming it and why, once both failed;
# node 3 stays a member and the process runs on. --force ends it.
on 1 krg run -n 3 -- krg capset -d CAN_MIGRATE -- python3 -c "
import socket, time
s = socket.socket()
s.bind(('127.0.0.1', 0))
s.listen()
time.sleep(120)" >/dev/null 2>&1 &
lis=$!
wait_for 10 "the listener runs on node 3" "$ADM" vcluster exec 3 --prefix "$PREFIX" -- pgrep -x python3
refused_then_forced "$lis" python3 "can neither migrate nor be checkpointed; del --force ends it: .*socket" \
	", which could neither migrate nor be checkpointed"
on 1 krgadm nodes add -n 3 >/dev/null
wait_for 10 "node 3 back after the listener" state_is 1 3 up

# A checkpoint-only process that made a System V queue and filled it:
# it migrates with the queue's id, and the queue (a cluster object,
# handed over by the leaving node) keeps its message.
S=$(mktemp -d "$KRG_BUILD_DIR/evict-sysv.XXXXXX")
chmod 777 "$S"
on 1 krg run -n 3 -- krg capset -d CAN_MIGRATE -- python3 "$KRG_SOURCE_DIR/tests/cluster/evict_sysv.py" "$S" \
	>/dev/null 2>"$S.err" &
sysv_run=$!
wait_for 20 "the queue user made its queue on node 3" test -s "$S/qid"
out=$(on 1 krgadm nodes del -n 3)
echo "$out"
echo "$out" | grep -q "node 3: left: empty, 1 process(es) moved away$" ||
	fail "nodes del said: $out"
touch "$S/go"
wait_for 20 "the moved queue user to receive its message (stderr: $(cat "$S.err"))" test -s "$S/result"
assert_eq "$(cat "$S/result")" "sent before the eviction" "the message sent before the eviction"
rc=0
wait "$sysv_run" || rc=$?
assert_eq "$rc" 0 "the queue user's exit status through krg run"
rm -rf "$S" "$S.err"
on 1 krgadm nodes add -n 3 >/dev/null
wait_for 10 "node 3 back after the queue user" state_is 1 3 up

out=$(on 1 krgadm nodes del -n 9 2>&1) && fail "del -n 9 succeeded"
assert_eq "$(echo "$out" | wc -l)" 1 "one line for an unknown node"
assert_contains "$out" "unknown node 9" "unknown node"
echo PASS
