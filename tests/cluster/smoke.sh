#!/usr/bin/env bash
# Smoke: a 3-node vcluster forms one cluster; every node agrees on the
# leader and sees 3 nodes up; the CLIs answer --help; poweroff stops all.
PREFIX=smoke
. "$(dirname "$0")/common.sh"
"$ADM" --help | grep -q vcluster || fail "krgadm --help lists no vcluster"
"$KRG_BUILD_DIR/krgd" --help | grep -q -- --config || fail "krgd --help"
start_cluster 3
leader=$(json_get 1 "s['leader']")
for i in 1 2 3; do
	assert_eq "$(json_get $i "s['nodes_up']")" 3 "nodes up seen from node $i"
	assert_eq "$(json_get $i "s['quorum']")" True "quorum on node $i"
	assert_eq "$(json_get $i "s['leader']")" "$leader" "leader seen from node $i"
done
on 2 krgadm nodes status | grep -qE '^3 +up' || fail "nodes status on node 2 does not show node 3 up"
on 2 krgadm nodes status -n 1-2 --json | python3 -c 'import json,sys; n=json.load(sys.stdin); assert [x["id"] for x in n]==[1,2], n'
# poweroff from node 2 stops krgd on every node
on 2 krgadm cluster poweroff
for i in 1 2 3; do
	wait_for 10 "krgd on node $i to stop" bash -c "! '$ADM' vcluster exec $i --prefix $PREFIX -- pgrep -x krgd"
	grep -q 'stopped' "$(log_of $i)" || fail "node $i log has no clean 'stopped' line"
done
echo PASS
