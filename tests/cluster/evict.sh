#!/usr/bin/env bash
# Eviction (docs/reconfiguration.md): `nodes del -n 3` on a node that runs
# 5 krg processes returns once they all moved to other nodes; each goes on
# with its output still reaching the `krg run` that started it, and its
# exact exit status. A process that may not migrate but may be
# checkpointed is checkpointed, ended and restarted on another node, where
# it finishes with an uninterrupted run's result. A process that allows
# neither makes nodes del refuse by name; --force ends it. Deleting a node
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
# 8 MiB mixed at each step): nodes del checkpoints it with kill and
# restarts it on node 1 or 2, where it runs on to the result of a run that
# was never interrupted.
W=$(mktemp -d "$KRG_BUILD_DIR/evict.XXXXXX")
chmod 755 "$W"
mkdir "$W/ref" "$W/run"
chmod 777 "$W/run"
"$PROG" "$W/ref" 60 0
on 1 krg run -n 3 -- krg capset -d CAN_MIGRATE -- "$PROG" "$W/run" 60 100 >/dev/null 2>&1 &
ckpt_run=$!
wait_for 10 "the counter runs on node 3" test -s "$W/run/progress"
out=$(on 1 krgadm nodes del -n 3)
echo "$out"
echo "$out" | grep -q "node 3: left: empty, 1 process(es) moved away (1 checkpointed and restarted elsewhere)" ||
	fail "nodes del said: $out"
# The image may still be on its way when the node is absent.
wait_for 10 "node 3's log to say where the counter was restarted" \
	grep -q "evict: [0-9]* restarted on node [0-9]* as [0-9]*" "$(log_of 3)"
line=$(grep -o "evict: [0-9]* restarted on node [0-9]* as [0-9]*" "$(log_of 3)")
echo "$line"
set -- $line
[ "$6" = 1 ] || [ "$6" = 2 ] || fail "restarted on node $6"
on 1 krg ps -a --json | python3 -c "
import json, sys
assert any(p['id'] == $8 and p['node'] == $6 for p in json.load(sys.stdin)['processes'])" ||
	[ -s "$W/run/result" ] || fail "$8 is not running on node $6"
wait_for 20 "the restarted counter to finish" test -s "$W/run/result"
diff "$W/ref/result" "$W/run/result" || fail "result differs from the uninterrupted run"
wait "$ckpt_run" || true
rm -rf "$W"
on 1 krgadm nodes add -n 3 >/dev/null
wait_for 10 "node 3 back" state_is 1 3 up

# A process that allows neither (CAN_MIGRATE and CHECKPOINTABLE dropped):
# nodes del refuses at once, naming it, and node 3 stays a member; --force
# ends it and the node leaves.
on 1 krg run -n 3 -- krg capset -d CAN_MIGRATE -- krg capset -d CHECKPOINTABLE -- sleep 60 >/dev/null 2>&1 &
stuck=$!
wait_for 10 "the process without CAN_MIGRATE runs on node 3" "$ADM" vcluster exec 3 --prefix "$PREFIX" -- pgrep -x sleep
rc=0
out=$(on 1 krgadm nodes del -n 3 2>&1) || rc=$?
echo "$out"
[ $rc -ne 0 ] || fail "nodes del succeeded with a process that cannot migrate"
echo "$out" | grep -q "^krgadm: node 3 refused to leave: [0-9]* (sleep) cannot migrate nor be checkpointed; del --force ends it$" ||
	fail "nodes del said: $out"
wait_for 5 "node 3 stays a member" state_is 1 3 up
"$ADM" vcluster exec 3 --prefix "$PREFIX" -- pgrep -x sleep >/dev/null || fail "the refusal ended the process"
out=$(on 1 krgadm nodes del -n 3 --force)
echo "$out"
assert_contains "$out" "node 3: left" "nodes del --force"
rc=0
wait "$stuck" || rc=$?
[ $rc -ne 0 ] || fail "the process --force ended exited 0"
grep -q "nodes del --force: ending [0-9]* (sleep)" "$(log_of 3)" || fail "node 3's log does not name the ended process"
on 1 krgadm nodes add -n 3 >/dev/null
wait_for 10 "node 3 back again" state_is 1 3 up

# A checkpoint-only process that made a System V queue and filled it:
# the queue outlives the process on its leaving node (handed over), and
# the restart elsewhere keeps it, with its message, instead of refusing
# because its own queue still holds the id.
S=$(mktemp -d "$KRG_BUILD_DIR/evict-sysv.XXXXXX")
chmod 777 "$S"
on 1 krg run -n 3 -- krg capset -d CAN_MIGRATE -- python3 "$KRG_SOURCE_DIR/tests/cluster/evict_sysv.py" "$S" \
	>/dev/null 2>"$S.err" &
sysv_run=$!
wait_for 20 "the queue user made its queue on node 3" test -s "$S/qid"
before=$(grep -c "evict: [0-9]* restarted on node" "$(log_of 3)" || true)
out=$(on 1 krgadm nodes del -n 3)
echo "$out"
echo "$out" | grep -q "node 3: left: empty, 1 process(es) moved away (1 checkpointed and restarted elsewhere)" ||
	fail "nodes del said: $out"
wait_for 10 "node 3's log to say where the queue user was restarted" \
	test "$(grep -c "evict: [0-9]* restarted on node" "$(log_of 3)")" -gt "$before"
touch "$S/go"
wait_for 20 "the restarted queue user to receive its message (stderr: $(cat "$S.err"))" test -s "$S/result"
assert_eq "$(cat "$S/result")" "sent before the eviction" "the message sent before the eviction"
wait "$sysv_run" || true  # krg run saw its process end at the checkpoint
rm -rf "$S" "$S.err"
on 1 krgadm nodes add -n 3 >/dev/null
wait_for 10 "node 3 back after the queue user" state_is 1 3 up

out=$(on 1 krgadm nodes del -n 9 2>&1) && fail "del -n 9 succeeded"
assert_eq "$(echo "$out" | wc -l)" 1 "one line for an unknown node"
assert_contains "$out" "unknown node 9" "unknown node"
echo PASS
