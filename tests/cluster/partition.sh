#!/usr/bin/env bash
# Partitions (issue 19 item 5; docs/reconfiguration.md "Partitions"): a
# counter checkpointed every second runs on node 2 of a 3-node vcluster,
# a second one without checkpoints runs there too. Node 2's link is cut:
# node 2 loses its quorum and stops (fences) the checkpointed counter
# before the majority declares it down; node 3 restarts that counter from
# its copy of the checkpoint; the other counter runs on, on node 2 (no
# other node could restart it). The link comes back: node 2 kills its
# stopped copy, since the cluster state records the one on node 3. The
# counter's steps show it never ran twice: they go back once (to the
# checkpoint it resumed from) and then run to the end once, with the
# result of an uninterrupted run. Without the fence both copies write
# steps and the check fails. Two migrants too: one on node 2 whose home
# is node 1, one homed on node 2 running on node 3; the majority takes
# both for killed when it declares node 2 down, and node 2, healed, kills
# its migrant and ends its deputy (neither runs on unknown to the
# cluster).
PREFIX=part
. "$(dirname "$0")/common.sh"
KRG=$KRG_BUILD_DIR/krg
PROG=$KRG_BUILD_DIR/tests/cluster/recover_counter
[ "$(id -u)" = 0 ] || { echo "FAIL: cannot run: needs root"; exit 1; }
[ -x "$PROG" ] || { echo "FAIL: cannot run: $PROG not built"; exit 1; }
STEPS=150

W=$(mktemp -d "$KRG_BUILD_DIR/partition.XXXXXX")
chmod 755 "$W"
mkdir "$W/ref" "$W/run" "$W/plain"
chmod 777 "$W/run" "$W/plain"
"$PROG" "$W/ref" "$STEPS" 0
[ -s "$W/ref/result" ] || fail "reference run wrote no result"

start_cluster 3
on 1 krgadm sched disable mosix >/dev/null
# Heal whatever happens (the vcluster goes down after this anyway).
trap 'rc=$?; "$ADM" vcluster link 2 up --prefix "$PREFIX" >/dev/null 2>&1; [ $rc -ne 0 ] && dump_logs; "$ADM" vcluster down --prefix "$PREFIX" >/dev/null 2>&1 || true; exit $rc' EXIT

# Started from node 2 itself: a process started from another node is also
# ended by node 2's exec service once its caller is unreachable for long
# (exec_back.c), which would hide what the fence does.
on 2 "$KRG" run -n 2 --checkpoint-every 1s -- sh -c "exec $PROG $W/run $STEPS 100 >/dev/null 2>&1 </dev/null" \
	>"$W/krg-run.log" 2>&1 &
# Started on node 2 itself, no checkpoint: nobody else could run it.
on 2 "$KRG" run -n 2 -- sh -c "exec $PROG $W/plain 100000 100 >/dev/null 2>&1 </dev/null" >"$W/krg-plain.log" 2>&1 &
wait_for 15 "the counter runs on node 2" test -s "$W/run/progress"
wait_for 15 "the plain counter runs on node 2" test -s "$W/plain/progress"
wait_for 15 "a checkpoint copied to node 3" entry_is "len(a) == 1 and a[0]['version'] >= 2 and a[0]['holders'] == [2, 3]" True
appid=$(entry "a[0]['appid']")
oldpid=$(on 2 pgrep -f "^$PROG $W/run ") || fail "no counter process on node 2"
plainpid=$(on 2 pgrep -f "^$PROG $W/plain ") || fail "no plain counter process on node 2"
echo "ok   app $appid runs on node 2 (pid $oldpid there), checkpointed every second, copies on node 3"
# The migrants: 6061 from node 1 to node 2, 6062 from node 2 to node 3.
on 1 "$KRG" run -n 1 -- sleep 6061 >/dev/null 2>&1 &
on 2 "$KRG" run -n 2 -- sleep 6062 >/dev/null 2>&1 &
krg_id() { on 1 "$KRG" ps -a --json | python3 -c "
import json, sys
print([p['id'] for p in json.load(sys.stdin)['processes'] if p['command'] == '$1'][0])"; }
wait_for 10 "sleep 6061 listed" krg_id "sleep 6061"
wait_for 10 "sleep 6062 listed" krg_id "sleep 6062"
dep2=$(on 2 pgrep -f "^sleep 6062\$") || fail "no sleep 6062 on node 2"
on 1 "$KRG" migrate "$(krg_id "sleep 6061")" 2 || fail "cannot migrate sleep 6061 to node 2"
on 1 "$KRG" migrate "$(krg_id "sleep 6062")" 3 || fail "cannot migrate sleep 6062 to node 3"
mig1=$(on 2 pgrep -f "^sleep 6061\$") || fail "sleep 6061 does not run on node 2"
on 3 pgrep -f "^sleep 6062\$" >/dev/null || fail "sleep 6062 does not run on node 3"
echo "ok   migrants: sleep 6061 on node 2 (home 1), sleep 6062 on node 3 (home 2, deputy pid $dep2)"

# The partition.
"$ADM" vcluster link 2 down --prefix "$PREFIX"
t0=$SECONDS
stopped() { [[ "$(on 2 ps -o stat= -p "$1")" == T* ]]; }
wait_for 10 "node 2 to stop (fence) the checkpointed counter" stopped "$oldpid"
grep -q "fence: app $appid .* stopped: checkpoint v[0-9]* of it is held by another node" "$(log_of 2)" ||
	fail "node 2's log does not say it fenced app $appid"
echo "ok   node 2 stopped app $appid $((SECONDS - t0)) s after its link was cut"
wait_for 20 "app $appid running again on node 3" entry_is "a[0]['node'] == 3 and a[0]['recoveries'] == 1" True
echo "ok   node 3 restarted it $((SECONDS - t0)) s after the cut"
stopped "$oldpid" || fail "node 2's copy runs again while node 2 is cut off"
# The counter nobody else could restart runs on.
p1=$(cat "$W/plain/progress")
went_on() { [ "$(cat "$W/plain/progress")" -gt "$((p1 + 3))" ]; }
wait_for 10 "the plain counter to go on on node 2 while cut off" went_on
stopped "$plainpid" && fail "the plain counter was stopped"
echo "ok   the counter without checkpoints ran on on node 2"

# Heal: node 2 hears the cluster again and kills its stopped copy.
"$ADM" vcluster link 2 up --prefix "$PREFIX"
wait_for 20 "node 2 up again" state_is 1 2 up
gone() { ! on 2 kill -0 "$1"; }
wait_for 15 "node 2's copy of app $appid killed" gone "$oldpid"
grep -q "fence: app $appid was restarted on node 3 as [0-9]* while this node was cut off: this copy ([0-9]*), stopped since, is killed" "$(log_of 2)" ||
	fail "node 2's log does not say why it killed its copy"
wait_for 15 "node 2 to kill the migrant node 1 took for killed" gone "$mig1"
wait_for 15 "node 2 to end the deputy of the migrant node 3 killed" gone "$dep2"
grep -q "migrate: this node was declared down, so home node 1 took [0-9]* for killed: killing it" "$(log_of 2)" ||
	fail "node 2's log does not say why it killed its migrant"
on 2 kill -0 "$plainpid" || fail "the plain counter did not survive the partition"
stopped "$plainpid" && fail "the plain counter is stopped after the heal"
echo "ok   healed: node 2 killed its copy, the plain counter still runs"

wait_for 40 "the counter to finish on node 3" test -s "$W/run/result"
diff "$W/ref/result" "$W/run/result" || fail "result differs from the uninterrupted run"
# Never twice: the steps go back once (to the checkpoint node 3 resumed
# from) and then run once each to the end; two copies writing would
# interleave their steps.
python3 - "$W/run/steps" "$STEPS" <<'PY' || fail "the steps show the counter ran twice or did not resume: $(tr '\n' ' ' <"$W/run/steps")"
import sys
s = [int(x) for x in open(sys.argv[1])]
steps = int(sys.argv[2])
back = [i for i in range(1, len(s)) if s[i] != s[i - 1] + 1]
assert len(back) == 1, back
i = back[0]
assert s[:i] == list(range(1, s[i - 1] + 1)) and 1 < s[i] <= s[i - 1], (s[i - 1], s[i])
assert s[i:] == list(range(s[i], steps + 1))
print("ok   ran once: resumed at step %d after step %d, then once to step %d" % (s[i], s[i - 1], steps))
PY
on 2 kill "$plainpid" || true
wait_for 10 "the entry gone once the counter ended" entry_is "len(a)" 0
rm -rf "$W"
echo PASS
