#!/usr/bin/env bash
# krg run --auto places on the least-loaded node: load per cpu from the
# nodes' load broadcasts. On a vcluster every node shares the host's load
# average, so capacity decides: the node given the biggest CPU quota wins,
# from any node; when it shrinks, another wins.
PREFIX=auto
. "$(dirname "$0")/common.sh"
start_cluster 3 --cpus 0.5
cpus_is() { [ "$(json_get 1 "abs([n['cpus'] for n in s['nodes'] if n['id']==$1][0] - $2) < 0.01")" = True ]; }

set_cpus 2 1.5
wait_for 5 "node 2's new capacity reaches node 1" cpus_is 2 1.5
for from in 1 2 3; do
	assert_eq "$(on "$from" krg run --auto -- hostname)" "$PREFIX-node2" "--auto from node $from"
done
# The placed process is a krg process on node 2 with a node-2 id.
on 1 krg run --auto -- sleep 30 &
bg=$!
wait_for 5 "sleep placed by --auto shows in krg ps" bash -c \
	"'$ADM' vcluster exec 3 --prefix $PREFIX -- krg ps -a --json | grep -q '\"node\":2'"
kill "$bg" 2>/dev/null || true
wait "$bg" 2>/dev/null || true

set_cpus 2 0.25
set_cpus 3 1.0
wait_for 5 "node 3's new capacity reaches node 1" cpus_is 3 1
wait_for 5 "node 2's smaller capacity reaches node 1" cpus_is 2 0.25
assert_eq "$(on 1 krg run --auto -- hostname)" "$PREFIX-node3" "--auto follows the capacity change"
echo PASS
