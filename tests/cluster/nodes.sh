#!/usr/bin/env bash
# nodes add/del with Kerrighed's selectors, through raft; errors are one
# clear line with a non-zero status; only root may change membership.
PREFIX=nodes
. "$(dirname "$0")/common.sh"
start_cluster 4

on 1 krgadm nodes del -n 3-4
assert_eq "$(node_state 2 3),$(node_state 2 4)" "absent,absent" "after del -n 3-4"
on 2 krgadm nodes add -c 1
assert_eq "$(node_state 1 3),$(node_state 1 4)" "up,absent" "add -c 1 takes the lowest present node"
on 1 krgadm nodes add -t 4
assert_eq "$(node_state 1 4)" up "add -t 4"
on 4 krgadm nodes del -t 2
assert_eq "$(json_get 1 "s['nodes_up']")" 2 "del -t 2 leaves 2 members"
on 1 krgadm nodes add -a
assert_eq "$(json_get 3 "s['nodes_up']")" 4 "add -a"
on 2 krgadm nodes del -a
assert_eq "$(json_get 2 "s['nodes_up']")" 1 "del -a keeps only the current node"
assert_eq "$(node_state 1 2)" up "the node that ran del -a stays"
on 2 krgadm nodes add -a

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
# an unprivileged user may still look
on 1 setpriv --reuid=65534 --regid=65534 --clear-groups krgadm cluster status >/dev/null
echo PASS
