#!/usr/bin/env bash
# `krgadm vcluster up N` returns once every node's krgd has quorum (the
# first election done), so the next command can change the cluster: right
# after up, each node's `cluster status` says quorum yes and a membership
# change is accepted at once, with no `cluster wait`.
set -euo pipefail
. "$KRG_SOURCE_DIR/tests/vcluster/lib.sh"
[ "$(id -u)" = 0 ] || fail "needs root"
P=vcq
vc_up $P 3
for i in 1 2 3; do
	q=$(vc_exec $P $i -- krgadm cluster status --json |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["quorum"])')
	assert_eq "$q" True "quorum on node $i right after vcluster up"
done
vc_exec $P 1 -- krgadm nodes del -n 3 --no-wait >/dev/null || fail "nodes del right after up refused"
vc_down $P
echo PASS
