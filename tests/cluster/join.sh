#!/usr/bin/env bash
# A machine joins a running cluster (docs/reconfiguration.md): `vcluster
# add` starts a node whose krgd.conf has no node id and no node list; the
# cluster gives it id 4 while a job runs, every node learns its address,
# raft takes it as a standby, and `krg run -n 4` runs there. Bad joins
# (another cluster key, an address nobody answers) fail with one line.
PREFIX=join
. "$(dirname "$0")/common.sh"
start_cluster 3

# A job runs across the change: it must finish with its output and status.
job_out=$(mktemp)
on 1 krg run -n 2 -- sh -c 'for i in 1 2 3 4 5 6; do echo tick $i; sleep 0.5; done; exit 7' >"$job_out" 2>&1 &
job=$!
sleep 0.7
out=$("$ADM" vcluster add --prefix "$PREFIX")
echo "$out"
assert_contains "$out" "node 4 10.77." "vcluster add prints the new node"
! grep -q '^node_id\|^node =' "/run/krg-vcluster/$PREFIX/node4/krgd.conf" 2>/dev/null ||
	fail "the new node's config lists ids"
for i in 1 2 3 4; do
	wait_for 10 "node $i sees node 4 up" state_is "$i" 4 up
done
grep -q "raft configuration: add node 4" /run/krg-vcluster/"$PREFIX"/node*/krgd.log ||
	fail "no leader added node 4 to the raft configuration"
wait_for 10 "node 4 is a raft standby" grep -q "raft configuration: standby node 4" \
	/run/krg-vcluster/"$PREFIX"/node1/krgd.log /run/krg-vcluster/"$PREFIX"/node2/krgd.log \
	/run/krg-vcluster/"$PREFIX"/node3/krgd.log
rc=0
wait "$job" || rc=$?
assert_eq "$rc" 7 "the job's exit status through the join"
assert_eq "$(grep -c '^tick' "$job_out")" 6 "the job's output through the join"
rm -f "$job_out"

# Run on the new node, from an old one and from itself.
assert_eq "$(on 1 krg run -n 4 -- hostname)" "$(on 4 hostname)" "krg run -n 4 runs on node 4"
rc=0
on 4 krg run -n 1 -- sh -c 'exit 3' || rc=$?
assert_eq "$rc" 3 "krg run from the new node"
on 2 krg run -n 4 -- true

# The new node comes back as itself after a krgd restart (state_dir/joined).
"$ADM" vcluster krgd 4 kill --prefix "$PREFIX" >/dev/null
"$ADM" vcluster krgd 4 start --prefix "$PREFIX" >/dev/null
on 4 krgadm cluster wait --timeout 30 >/dev/null
assert_eq "$(json_get 4 "s['self']")" 4 "node 4 keeps its id across a restart"
wait_for 10 "node 1 sees node 4 up again" state_is 1 4 up

# Bad joins: a config without node_id joining through node 2, inside node 1
# on another port; one line, non-zero, within the join timeout.
sub=$(cat "/run/krg-vcluster/$PREFIX/subnet")
bad_join() { # bad_join KEYFILE JOIN_ADDR PATTERN
	on 1 sh -c "rm -rf /tmp/bj && mkdir -p /tmp/bj && cat > /tmp/bj/krgd.conf <<EOT
cluster_name = $PREFIX
address = 10.77.$sub.1:7499
state_dir = /tmp/bj/state
key_file = $1
api_socket = /tmp/bj/krgd.sock
EOT"
	local out rc=0
	out=$(on 1 krgd --config /tmp/bj/krgd.conf --join "$2" 2>&1) || rc=$?
	[ $rc -eq 1 ] || fail "krgd --join $2 exited $rc: $out"
	[ "$(echo "$out" | grep -c '^krgd:')" -eq 1 ] || fail "krgd --join $2 said: $out"
	echo "$out" | grep '^krgd:' | grep -q "$3" || fail "krgd --join $2 said: $out (want /$3/)"
	echo "refused: $(echo "$out" | grep '^krgd:')"
}
on 1 sh -c 'umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d " \n" > /tmp/wrong.key'
bad_join /tmp/wrong.key "10.77.$sub.2:7480" "another cluster key"
bad_join /run/krg/cluster.key "10.77.$sub.99:7480" "no authenticated answer"
bad_join /run/krg/cluster.key "nowhere" "not an IPv4 address"
assert_eq "$(json_get 1 "len(s['nodes'])")" 4 "refused joins took no node id"

# `nodes del` of a node that does not exist: one line.
out=$(on 1 krgadm nodes del -n 9 2>&1) && fail "del -n 9 succeeded"
assert_eq "$(echo "$out" | wc -l)" 1 "one line for an unknown node"
assert_contains "$out" "unknown node 9" "unknown node"
echo PASS
