#!/usr/bin/env bash
# nodes add/del with Kerrighed's selectors, through raft; errors are one
# clear line with a non-zero status; only root may change membership.
PREFIX=nodes
. "$(dirname "$0")/common.sh"
start_cluster 4

# Views of other nodes follow the leader's commit within a heartbeat or two:
# poll them instead of asserting at once.
up_count() { [ "$(json_get "$1" "s['nodes_up']")" = "$2" ]; }

on 1 krgadm nodes del -n 3-4
wait_for 5 "node 2 sees node 3 absent" state_is 2 3 absent
wait_for 5 "node 2 sees node 4 absent" state_is 2 4 absent
on 2 krgadm nodes add -c 1
wait_for 5 "add -c 1 takes the lowest present node (3)" state_is 1 3 up
assert_eq "$(node_state 1 4)" absent "add -c 1 leaves node 4 out"
on 1 krgadm nodes add -t 4
wait_for 5 "add -t 4 brings node 4 up" state_is 1 4 up
on 1 krgadm nodes del -t 2
wait_for 5 "del -t 2 leaves 2 members" up_count 1 2
on 1 krgadm nodes add -a
wait_for 5 "add -a brings all 4 up" up_count 3 4
on 2 krgadm nodes del -a
wait_for 5 "del -a keeps only the current node" up_count 2 1
assert_eq "$(node_state 2 2)" up "the node that ran del -a stays"
on 2 krgadm nodes add -a
wait_for 5 "all 4 up again" up_count 1 4

# errors: one line, non-zero
expect_fail() { # expect_fail PATTERN CMD...
	local pat=$1 out rc=0
	shift
	out=$("$@" 2>&1) || rc=$?
	[ $rc -ne 0 ] || fail "'$*' succeeded"
	echo "$out" | grep -q "$pat" || fail "'$*' said: $out (want /$pat/)"
	[ "$(echo "$out" | wc -l)" -eq 1 ] || fail "'$*' said more than one line: $out"
}
expect_fail "unknown node 9" on 1 krgadm nodes del -n 9
expect_fail "already a member" on 1 krgadm nodes add -n 2
expect_fail "bad node list" on 1 krgadm nodes add -n 2-x
expect_fail "exactly one of" on 1 krgadm nodes add -n 2 -a
expect_fail "permission denied" on 1 setpriv --reuid=65534 --regid=65534 --clear-groups krgadm nodes del -n 2
# a del that takes the caller's own node or every member needs --force
expect_fail "refusing to remove every member node (4 of 4), this one included; add --force" on 1 krgadm nodes del -t 0
expect_fail "refusing to remove node 4, the node this command runs on; add --force" on 4 krgadm nodes del -n 3-4
expect_fail "refusing to remove node 2, the node this command runs on" on 2 krgadm nodes del -c 3
expect_fail "is for del only" on 1 krgadm nodes add -n 2 --force
assert_eq "$(json_get 1 "s['nodes_up']")" 4 "no node removed by the refused dels"
on 4 krgadm nodes del -n 4 --force
wait_for 5 "node 4 removed with --force" state_is 1 4 absent
on 1 krgadm nodes add -n 4
wait_for 5 "node 4 back" up_count 1 4
# an unprivileged user may still look
on 1 setpriv --reuid=65534 --regid=65534 --clear-groups krgadm cluster status >/dev/null
echo PASS
