#!/usr/bin/env bash
# Nodes come and go on lazy links, and every node still reaches every
# other (issue 19 item 6, docs/reconfiguration.md "Scale"): 10 nodes in
# every krgd.conf and 6 joining live, then two rounds of `nodes del` and
# `vcluster add` (a standby, then a voter). After each step every node up
# asks every other one for its processes (`krg ps -a`, a request on a link
# dialed on demand): none may be unreachable. Links idle for 2 s close by
# agreement meanwhile, so the checks also dial again. A node added after a
# removal used to stay unreachable from the nodes other than the leader.
PREFIX=churn
. "$(dirname "$0")/common.sh"
N0=10
start_cluster "$N0" --conf 'lazy_links = on' --conf 'link_idle_ms = 2000'
"$ADM" vcluster add 6 --prefix "$PREFIX" >/dev/null
n=16

# The ids node 1 sees up, one a line.
up_ids() { json_get 1 "'\n'.join(str(n['id']) for n in s['nodes'] if n['state'] == 'up')"; }
nodes_up_is() { [ "$(json_get "$1" "s['nodes_up']")" -eq "$2" ]; }
# reaches NODE COUNT: NODE sees COUNT nodes up and each of them answered
# its `krg ps -a` (none unreachable).
reaches() {
	nodes_up_is "$1" "$2" &&
		[ "$(on "$1" krg ps -a --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["unreachable"]))')" = 0 ]
}
# all_pairs WHAT VNODES: every node up (of vcluster nodes 1..VNODES)
# reaches every node up.
all_pairs() {
	local ids count v id seen=0
	ids=" $(up_ids | tr '\n' ' ') "
	count=$(echo $ids | wc -w)
	for v in $(seq 1 "$2"); do
		id=$(json_get "$v" "s['self']" 2>/dev/null) || continue # its krgd left
		[[ "$ids" == *" $id "* ]] || continue
		wait_for 30 "$1: node $id (vcluster node $v) reaches the $count nodes up" reaches "$v" "$count"
		seen=$((seen + 1))
	done
	[ "$seen" = "$count" ] || fail "$1: $seen vcluster nodes are among the $count nodes up"
	echo "$1: each of the $count nodes up reaches every other one"
}

# add_one: `vcluster add` of one machine; prints the id it got (the
# lowest never used), which is not always its vcluster index.
add_one() {
	local line
	line=$("$ADM" vcluster add --prefix "$PREFIX")
	json_get "$(echo "$line" | awk '{print $2}')" "s['self']"
}

wait_for 60 "node 1 sees $n nodes up" nodes_up_is 1 "$n"
all_pairs "formed" 16

# Round 1: a standby leaves, a machine joins.
on 1 krgadm nodes del -n "$n" >/dev/null
wait_for 30 "node $n is absent for node 1" state_is 1 "$n" absent
new=$(add_one)
[ "$new" = $((n + 1)) ] || fail "the machine added after removing node $n got id $new"
wait_for 30 "node 1 sees node $new up" state_is 1 "$new" up
all_pairs "standby $n removed, node $new added" 17

# Round 2: a voter leaves (raft promotes a standby), a machine joins.
# Nodes 1..5 are the voters of a cluster formed with 10 configured nodes.
voter=2
[ "$(json_get 1 "s['leader']")" != 2 ] || voter=3
on 1 krgadm nodes del -n "$voter" >/dev/null
wait_for 30 "node $voter is absent for node 1" state_is 1 "$voter" absent
new=$(add_one)
[ "$new" = $((n + 2)) ] || fail "the machine added after removing node $voter got id $new"
wait_for 30 "node 1 sees node $new up" state_is 1 "$new" up
all_pairs "voter $voter removed, node $new added" 18
echo "ok"
