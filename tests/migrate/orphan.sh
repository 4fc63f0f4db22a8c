#!/usr/bin/env bash
# A migrant outlives its home node (issue 19 item 4, migrant_outlives_home
# = on; docs/reconfiguration.md "A migrant's home dies"): two programs
# started from node 1 and moved to node 2; node 1's krgd killed and node 1
# declared down. Both run on, adopted by node 2: the first, told to end
# (a file appears), finishes and its exit status (7) and output are in
# node 2's state dir; the second is ended by `krg kill` typed on node 3,
# whose home (node 1) is down, and its status says SIGTERM.
# KRG_ORPHAN_OFF=1 runs it with the switch off (as before: both killed,
# so it fails at "runs on").
PREFIX=migorph${KRG_VC_SUFFIX:-}
. "$KRG_SOURCE_DIR/tests/cluster/common.sh"
KRG=$KRG_BUILD_DIR/krg
[ "$(id -u)" = 0 ] || { echo "FAIL: cannot run: needs root"; exit 1; }
W=$(mktemp -d "$KRG_BUILD_DIR/orphan-test.XXXXXX")
chmod 755 "$W"
trap 'rc=$?; [ $rc -ne 0 ] && dump_logs; "$ADM" vcluster down --prefix "$PREFIX" >/dev/null 2>&1 || true; rm -rf "$W"; exit $rc' EXIT
if [ "${KRG_ORPHAN_OFF:-}" = 1 ]; then
	start_cluster_conf 3 "migrant_outlives_home = off"
else
	start_cluster_conf 3 "migrant_outlives_home = on"
fi
# Where processes run is checked here: no balancer moving them meanwhile.
on 1 krgadm sched disable mosix >/dev/null

id_of() { on 2 "$KRG" ps -a --json | python3 -c "
import json, sys
print([p['id'] for p in json.load(sys.stdin)['processes'] if '$1' in p['command']][0])"; }
on_node() { on "$1" pgrep -f "$2" >/dev/null; }
off_node() { ! on "$1" pgrep -f "$2" >/dev/null; }

# start_migrant MARK: a program run from node 1 that prints a line and
# ends with 7 once $W/MARK exists, moved to node 2; sets the id in ids[MARK]
declare -A ids
start_migrant() {
	local mark=$1
	on 1 "$KRG" run -n 1 -- python3 -c '
import os, sys, time
print("started", flush=True)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.1)
print("finished", sys.argv[2], flush=True)
sys.exit(7)' "$W/$mark" "$mark" >/dev/null 2>&1 &
	wait_for 15 "$mark started" id_of "$mark"
	ids[$mark]=$(id_of "$mark")
	on 1 "$KRG" migrate "${ids[$mark]}" 2 || fail "migrate $mark to node 2"
	wait_for 10 "$mark running on node 2" on_node 2 "$mark"
}

MA=krg-orphan-$$-a
MB=krg-orphan-$$-b
start_migrant "$MA"
start_migrant "$MB"
"$ADM" vcluster krgd 1 kill --prefix "$PREFIX" >/dev/null
wait_for 20 "node 1 declared down" state_is 2 1 down
wait_for 10 "node 3 sees node 1 down" state_is 3 1 down
# The "down" is applied: a killed migrant would be gone by now (its
# holder is signalled at once); give node 2's log the last word.
wait_for 10 "node 2 to act on its migrants" grep -q "home node 1 of ${ids[$MA]} is down" "$(log_of 2)"
on_node 2 "$MA" || fail "$MA was killed with its home node"
on_node 2 "$MB" || fail "$MB was killed with its home node"
echo "ok   both migrants run on after their home node went down"

# The first finishes: its status and output are node 2's.
touch "$W/$MA"
wait_for 15 "$MA to end" off_node 2 "$MA"
dir=/var/lib/krg/orphans
wait_for 5 "$MA's status recorded" on 2 test -s "$dir/${ids[$MA]}.status"
st=$(on 2 cat "$dir/${ids[$MA]}.status")
assert_eq "$st" "exited 7" "$MA's recorded status"
out=$(on 2 cat "$dir/${ids[$MA]}.out")
assert_eq "$out" "finished $MA" "$MA's output after home went down"
mode=$(on 2 stat -c %a "$dir/${ids[$MA]}.out")
assert_eq "$mode" 600 "its output file's mode"
echo "ok   $MA finished on node 2: $st, its output in $dir"

# The second: killed from node 3, whose home for its id is down.
on 3 "$KRG" kill "${ids[$MB]}" || fail "krg kill ${ids[$MB]} from node 3"
wait_for 15 "$MB to end" off_node 2 "$MB"
wait_for 5 "$MB's status recorded" on 2 test -s "$dir/${ids[$MB]}.status"
st=$(on 2 cat "$dir/${ids[$MB]}.status")
assert_eq "$st" "killed by signal 15" "$MB's recorded status"
echo "ok   $MB killed from node 3 with its home down: $st"
echo PASS
