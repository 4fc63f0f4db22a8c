#!/usr/bin/env bash
# A migrant never outlives its holder or its node's krgd (issue 13 item 7,
# docs/migration.md "Faults"): a sleeper moved 1 -> 2, then (a) node 2's
# krgd killed (SIGKILL), (b) only the migrant's holder on node 2 killed.
# Each time the program must be gone from node 2 within a few seconds
# (found by a unique marker in its argv, with pgrep inside node 2: krg ps
# cannot see an escaped one) and home's `krg run` must end as killed
# (137), the one story home tells.
PREFIX=migo${KRG_VC_SUFFIX:-}
. "$KRG_SOURCE_DIR/tests/cluster/common.sh"
KRG=$KRG_BUILD_DIR/krg
[ "$(id -u)" = 0 ] || { echo "FAIL: cannot run: needs root"; exit 1; }
start_cluster 3
# Where processes run is checked here: no balancer moving them meanwhile.
on 1 krgadm sched disable mosix >/dev/null
W=$(mktemp -d "$KRG_BUILD_DIR/outlive-test.XXXXXX")
chmod 755 "$W"

# id_of MARK: the krg id of the process whose command line has MARK
id_of() { on 1 "$KRG" ps -a --json | python3 -c "
import json, sys
print([p['id'] for p in json.load(sys.stdin)['processes'] if '$1' in p['command']][0])"; }
on_node() { on "$1" pgrep -f "$2" >/dev/null; }
off_node() { ! on "$1" pgrep -f "$2" >/dev/null; }

# start_migrant MARK: a sleeper run from node 1, moved to node 2; sets run
start_migrant() {
	local mark=$1
	on 1 "$KRG" run -n 1 -- python3 -c 'import sys, time; time.sleep(600)' "$mark" &
	run=$!
	wait_for 15 "$mark started" id_of "$mark"
	id=$(id_of "$mark")
	on 1 "$KRG" migrate "$id" 2 || fail "migrate $mark to node 2"
	wait_for 10 "$mark running on node 2" on_node 2 "$mark"
}

# home_ends_killed: home's krg run ends within SECS as killed by SIGKILL
home_ends_killed() {
	local secs=$1 end=$((SECONDS + $1)) rc=0
	while kill -0 "$run" 2>/dev/null; do
		[ $SECONDS -lt $end ] || fail "home's krg run still running ${secs}s later"
		sleep 0.2
	done
	wait "$run" || rc=$?
	assert_eq "$rc" 137 "home's krg run exit status"
}

# (a) node 2's krgd killed.
MA=krg-outlive-$$-a
start_migrant "$MA"
"$ADM" vcluster krgd 2 kill --prefix "$PREFIX" >/dev/null
wait_for 5 "the migrant to die with node 2's krgd" off_node 2 "$MA"
home_ends_killed 30
echo "ok   node 2's krgd killed: its migrant died with it, home's krg run ended 137"
"$ADM" vcluster krgd 2 start --prefix "$PREFIX" >/dev/null
wait_for 30 "node 2 up again" state_is 1 2 up

# (b) only the holder killed (the migrant's parent on node 2).
MB=krg-outlive-$$-b
start_migrant "$MB"
mpid=$(on 2 pgrep -f "$MB")
holder=$(on 2 ps -o ppid= -p "$mpid" | tr -d ' ')
[ -n "$holder" ] && [ "$holder" != 1 ] || fail "no holder for the migrant $mpid on node 2"
on 2 kill -KILL "$holder"
wait_for 5 "the migrant to die with its holder" off_node 2 "$MB"
home_ends_killed 15
echo "ok   holder killed: its migrant died with it, home's krg run ended 137"
rm -rf "$W"
echo PASS
