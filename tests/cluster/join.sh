#!/usr/bin/env bash
# A machine joins a running cluster (docs/reconfiguration.md): `vcluster
# add` starts a node whose krgd.conf has no node id and no node list; the
# cluster gives it id 4 while a job runs, every node learns its address,
# raft takes it as a standby, and `krg run -n 4` runs there. Bad joins
# (another cluster key, an address nobody answers) fail with one line.
# Then `nodes add --address`, three concurrent joiners, and a voter that
# leaves raft's configuration when deleted.
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

one_line_fail() { # one_line_fail PATTERN CMD...
	local pat=$1 out rc=0
	shift
	out=$("$@" 2>&1) || rc=$?
	[ $rc -ne 0 ] || fail "'$*' succeeded: $out"
	[ "$(echo "$out" | wc -l)" -eq 1 ] || fail "'$*' said more than one line: $out"
	echo "$out" | grep -q "$pat" || fail "'$*' said: $out (want /$pat/)"
}

# The admin's side: `nodes add --address` gives a machine that does not run
# krgd yet its id (joining); the same address again (from a follower, port
# left out) is the same id; bad addresses are one line.
a5="10.77.$sub.5:7480"
out=$(on 1 krgadm nodes add --address "$a5")
echo "$out"
assert_contains "$out" "node 5: $a5, joining" "nodes add --address gives the next id"
wait_for 5 "node 2 lists node 5 joining" state_is 2 5 joining
assert_contains "$(on 2 krgadm nodes add --address "10.77.$sub.5")" "node 5: $a5" "the same address, the same id"
one_line_fail "configured node 1's address" on 1 krgadm nodes add --address "10.77.$sub.1:7480"
one_line_fail "not an IPv4 address" on 1 krgadm nodes add --address nowhere:7480
one_line_fail "bad port" on 1 krgadm nodes add --address "10.77.$sub.9:0"
one_line_fail "for add only" on 1 krgadm nodes del --address "$a5"
one_line_fail "exactly one of" on 1 krgadm nodes add --address "$a5" -n 5

# Three machines join at once (`vcluster add 3` starts their krgd together):
# each gets its own id (concurrent joiners were refused as duplicates),
# node 5 the one given to its address. With 7 nodes raft has 5 voters
# (3 configured + 2 promoted) and 2 standbys.
out=$("$ADM" vcluster add 3 --prefix "$PREFIX")
echo "$out"
ids=""
for i in 5 6 7; do
	assert_contains "$out" "node $i 10.77.$sub.$i" "vcluster add 3 started node $i"
	ids="$ids $(json_get "$i" "s['self']")"
	wait_for 10 "node 1 sees node $i up" state_is 1 "$i" up
done
# Ids go in the order the joins arrive, but the reserved one is kept.
assert_eq "$(echo $ids | tr ' ' '\n' | sort | tr '\n' ' ')" "5 6 7 " "three joiners, three ids"
assert_eq "$(json_get 5 "s['self']")" 5 "the machine at $a5 got the id given to its address"
! grep -q "already running\|already in use" /run/krg-vcluster/"$PREFIX"/node*/krgd.log ||
	fail "a concurrent joiner was refused as a duplicate"
promoted() { [ "$(cat /run/krg-vcluster/"$PREFIX"/node*/krgd.log | grep -c "raft configuration: promote node")" -ge "$1" ]; }
wait_for 15 "two standbys promoted (5 voters)" promoted 2
on 6 krg run -n 7 -- true

# A voter deleted for good leaves raft's configuration (demoted, then
# removed) and a standby takes its seat: voters stay 5.
out=$(on 1 krgadm nodes del -n 2)
assert_contains "$out" "node 2: left" "nodes del -n 2"
# (Demoted while leaving, as a voter that is not up, or once absent.)
for step in "demote \((down|left)\) node 2" "remove \(left\) node 2"; do
	wait_for 10 "raft configuration: $step" grep -Eq "raft configuration: $step" \
		/run/krg-vcluster/"$PREFIX"/node{1,3,4,5,6,7}/krgd.log
done
wait_for 10 "a standby took node 2's seat" promoted 3
assert_eq "$(json_get 7 "s['quorum']")" True "quorum after node 2 left raft"
on 7 krg run -n 5 -- true
# ... and comes back as a member that raft adds again.
on 1 krgadm nodes add -n 2 >/dev/null
wait_for 10 "node 2 is in raft again" bash -c "[ \$(cat /run/krg-vcluster/$PREFIX/node*/krgd.log | grep -c 'raft configuration: add node 2') -ge 1 ]"
wait_for 10 "node 2 has quorum again" bash -c "[ \"\$('$ADM' vcluster exec 2 --prefix $PREFIX -- krgadm cluster status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"quorum\"])')\" = True ]"

# `nodes del` of a node that does not exist: one line.
out=$(on 1 krgadm nodes del -n 9 2>&1) && fail "del -n 9 succeeded"
assert_eq "$(echo "$out" | wc -l)" 1 "one line for an unknown node"
assert_contains "$out" "unknown node 9" "unknown node"
echo PASS
