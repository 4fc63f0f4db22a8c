#!/usr/bin/env bash
# Failure recovery (issue 19 item 3): two applications started with
# `krg run --checkpoint-every 1s` on node 2 of a 3-node vcluster (one from
# node 1, one from node 2 itself, which sees node 2's node-local files) are
# checkpointed every second into node 2's store and copied to node 3
# (images 0700, superseded ones removed); node 2's krgd is killed; once
# the leader declares node 2 down, node 3 restarts both from their latest
# checkpoint, keeping their app ids, and they finish with the same result
# as an uninterrupted run. Checkpoints after the first are incremental:
# node 3 restarts from a chain (a full image and increments) it received
# one version at a time. Bad input is refused in one line.
PREFIX=recov
. "$(dirname "$0")/common.sh"
KRG=$KRG_BUILD_DIR/krg
PROG=$KRG_BUILD_DIR/tests/cluster/recover_counter
[ "$(id -u)" = 0 ] || { echo "FAIL: cannot run: needs root"; exit 1; }
[ -x "$PROG" ] || { echo "FAIL: cannot run: $PROG not built"; exit 1; }
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
STEPS=100

# The reference: the same computation, uninterrupted, outside krg.
W=$(mktemp -d "$KRG_BUILD_DIR/recover.XXXXXX")
chmod 755 "$W"
mkdir "$W/ref" "$W/run" "$W/run2"
chmod 777 "$W/run" "$W/run2"
counter_reference "$PROG" "$W/ref" "$STEPS"

start_cluster 3
on 1 krgadm sched disable mosix >/dev/null

# Bad input, before anything runs.
one_line_error 2 "not a duration" on 1 "$KRG" checkpoint --every 1x 33554433
one_line_error 2 "not a duration" on 1 "$KRG" run --checkpoint-every soon -- true
one_line_error 1 "no krg process" on 1 "$KRG" checkpoint --every 2s $(( (1 << 22) + 4000000 ))

on 1 "$KRG" run -n 2 --checkpoint-every 1s -- sh -c "exec $PROG $W/run $STEPS 100 >/dev/null 2>&1 </dev/null" \
	>"$W/krg-run.log" 2>&1 &
# A second one started on node 2 itself: it sees node 2's node-local
# files, gone with node 2, and is restarted all the same.
on 2 "$KRG" run --checkpoint-every 1s -- sh -c "exec $PROG $W/run2 $STEPS 100 >/dev/null 2>&1 </dev/null" \
	>"$W/krg-run2.log" 2>&1 &
wait_for 15 "the counter runs on node 2" test -s "$W/run/progress"
wait_for 15 "the second counter runs on node 2" test -s "$W/run2/progress"
wait_for 10 "checkpoints copied to a second node" entry_is "len(a) == 2 and all(x['version'] >= 2 and len(x['holders']) == 2 for x in a)" True
# Which is which: by the directory on its command line (their ids come in
# no set order, both being made on node 2 at the same time).
appid2=$(on 1 "$KRG" ps -a --json | python3 -c "
import json, sys
print([p['id'] for p in json.load(sys.stdin)['processes'] if '$W/run2 ' in p['command']][0])") ||
	fail "the second counter is not listed by krg ps"
appid=$(entry "[x['appid'] for x in a if x['appid'] != $appid2][0]")
entry_is "sorted(x['appid'] for x in a) == sorted([$appid, $appid2])" True ||
	fail "the second counter's id $appid2 is not one of the periodic entries: $(entry a)"
entry_is "all(x['node'] == 2 and x['holders'] == [2, 3] for x in a)" True || fail "not on node 2, copies on 3: $(entry a)"
echo "ok   apps $appid and $appid2 checkpointed every second on node 2, copied to node 3"
on 1 "$KRG" checkpoint --list

# Another user: refused, and sees nothing.
one_line_error 1 "not permitted" on 1 "${NOBODY[@]}" "$KRG" checkpoint --every 5s "$appid"
one_line_error 1 "not permitted" on 1 "${NOBODY[@]}" "$KRG" checkpoint --every 0 "$appid"
[ "$(on 1 "${NOBODY[@]}" "$KRG" checkpoint --list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["apps"]))')" = 0 ] ||
	fail "another user sees the entry"
one_line_error 1 "too often" on 1 "$KRG" checkpoint --every 200ms "$appid"

# Images: not world-readable, superseded versions removed on both nodes.
v=$(entry "[x['version'] for x in a if x['appid'] == $appid][0]")
for n in 2 3; do
	[ "$(on "$n" stat -c %a "/var/lib/krg/chkpt/$appid/v$v")" = 700 ] || fail "node $n: image not 0700"
	[ "$(on "$n" stat -c %a /var/lib/krg/chkpt/.periodic)" = 700 ] || fail "node $n: index not 0700"
done
# Incremental (docs/checkpoint.md "Incremental images"): the second
# checkpoint builds on the first (this counter rewrites all its memory
# at each step, so a full one follows each increment: the increments
# add up to half the full size at once); each node keeps exactly the
# chain of the latest (plus at most one version not recorded yet), older
# ones pruned. `krg image` reads and checks the whole chain, every page,
# on each node. tests/cluster/recover_incr.sh restarts from increments.
for n in 2 3; do
	wait_for 15 "node $n to keep only the chain of the latest checkpoint" only_the_chain "$n" "$appid" 1
done
grep -q "app $appid: checkpoint v2 is incremental on v1" "$(log_of 2)" || fail "node 2's log shows no incremental checkpoint"
echo "ok   images 0700, incremental, each node keeps the latest one's chain only"

# Node 2 dies (its krgd, and the application with it).
before=$(cat "$W/run/progress")
before2=$(cat "$W/run2/progress")
"$ADM" vcluster krgd 2 kill --prefix "$PREFIX"
t0=$SECONDS
wait_for 20 "both applications running again on node 3" entry_is "len(a) == 2 and all(x['node'] == 3 and x['recoveries'] == 1 for x in a)" True
echo "ok   restarted on node 3 $((SECONDS - t0)) s after node 2's krgd was killed (progress then: $before)"
newid=$(entry "[x['id'] for x in a if x['appid'] == $appid][0]")
on 1 "$KRG" checkpoint --list
on 1 "$KRG" ps -a --json | python3 -c "
import json, sys
assert any(p['id'] == $newid and p['node'] == 3 for p in json.load(sys.stdin)['processes'])" ||
	fail "$newid not listed on node 3 by krg ps"
ps_shows() { on 1 "$KRG" ps -a | grep -q "app $appid, a checkpoint every 1 s; restarted here after node 2 died, from a"; }
wait_for 5 "krg ps to show the restart" ps_shows
on 1 "$KRG" ps -a | grep "app $appid"
grep -q "app $appid: node 2, where it ran, is down; restarting it on this node" "$(log_of 3)" ||
	fail "node 3's log does not say why it restarted app $appid"
grep -q "app $appid: running again on node 3" "$(log_of 3)" || fail "node 3's log does not say it runs again"
grep -q "app $appid2: running again on node 3" "$(log_of 3)" || fail "node 3's log does not say $appid2 runs again"
grep -q "app $appid2: its image sees node 2's node-local files" "$(log_of 3)" ||
	fail "node 3's log does not say app $appid2 lost node 2's node-local files"

wait_for 30 "the restarted applications to finish" test -s "$W/run/result" -a -s "$W/run2/result"
diff "$W/ref/result" "$W/run/result" || fail "result differs from the uninterrupted run"
diff "$W/ref/result" "$W/run2/result" || fail "second result differs from the uninterrupted run"
# Resumed, not begun again: the step numbers go back once, to a step
# well past the start (the checkpoint's), and go on to the end.
counter_steps_ok "$W/run" "$before" "$STEPS" 1 5
counter_steps_ok "$W/run2" "$before2" "$STEPS" 1 5
echo "ok   finished on node 3 with the uninterrupted run's result: $(cat "$W/run/result")"
wait_for 10 "the entries gone once they ended" entry_is "len(a)" 0
no_index() { [ -z "$(on 3 ls /var/lib/krg/chkpt/.periodic/)" ]; }
wait_for 10 "its images removed from node 3" no_index
rm -rf "$W"
echo PASS
