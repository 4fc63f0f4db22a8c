#!/usr/bin/env bash
# krg kill with bad input: a malformed id, an id on a node that is not in
# the cluster, a pid that is not a krg process (or is dead), a bad signal:
# each gives one clear line on stderr and a non-zero status. krg ps with
# a bad option is a usage error.
PREFIX=ptbad
. "$(dirname "$0")/common.sh"
start_cluster 3

# expect_fail NODE PATTERN CMD...: CMD fails with exactly one stderr line matching PATTERN
expect_fail() {
	local n=$1 pat=$2 err rc
	shift 2
	set +e
	err=$(on "$n" "$@" 2>&1 >/dev/null)
	rc=$?
	set -e
	[ $rc -ne 0 ] || fail "'$*' succeeded"
	[ "$(printf '%s\n' "$err" | wc -l)" = 1 ] || fail "'$*': not one line: $err"
	echo "$err" | grep -qE "$pat" || fail "'$*': '$err' does not match '$pat'"
}

expect_fail 1 "not a krg process id" krg kill abc
expect_fail 1 "not a krg process id" krg kill -- -5
expect_fail 1 "not a krg process id" krg kill 4194304          # node 1, pid 0
expect_fail 1 "not a krg process id" krg kill 99999999999      # beyond 256 nodes
expect_fail 1 "no node 200 in this cluster" krg kill $((200 << 22 | 5))
# pid 1 of node 2 (its init) exists but is not a krg process; 4000 is dead
expect_fail 1 "no such process" krg kill $((2 << 22 | 1))
expect_fail 2 "no such process" krg kill $((2 << 22 | 4000))
expect_fail 1 "no such process" krg kill $((1 << 22 | 4000))
# krgd itself is not a krg process either
krgd_pid=$(on 2 pgrep -x krgd)
expect_fail 1 "no such process" krg kill $((2 << 22 | krgd_pid))
on 2 pgrep -x krgd >/dev/null || fail "krgd of node 2 was signalled"
expect_fail 1 "unknown signal" krg kill -NOPE 4194305
expect_fail 1 "unknown signal" krg kill -s 99 4194305
expect_fail 1 "no process id" krg kill -9
# The other commands name what is wrong (issue 13, item 9).
expect_fail 1 "^krg run: empty command: nothing to run$" krg run -n 2 -- ""
expect_fail 1 "^krg run: no node 23 in this cluster$" krg run -n 23 -- true
expect_fail 1 "no node 23 in this cluster" krg migrate $((23 << 22 | 100)) 2
expect_fail 1 "no node 23 in this cluster" krg checkpoint $((23 << 22 | 100))
# krgd answers "no image": final, not a local restore that needs root
expect_fail 1 "no image of app|no version|not found" setpriv --reuid=65534 --regid=65534 --clear-groups krg restart $((1 << 22 | 4000))
# krgadm: exit 3 is "krgd unreachable" alone; krgd's refusals exit 1
set +e
on 1 krgadm nodes del -n 9 >/dev/null 2>&1
rc=$?
on 1 env KRG_SOCKET=/nonexistent.sock krgadm cluster status >/dev/null 2>&1
rc2=$?
set -e
assert_eq "$rc" 1 "krgadm nodes del -n 9 (refused by krgd) exit status"
assert_eq "$rc2" 3 "krgadm with no krgd exit status"
set +e
on 1 krg ps --bogus >/dev/null 2>&1
rc=$?
set -e
assert_eq "$rc" 2 "krg ps --bogus exit status"
on 1 krg ps --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["unreachable"] == [], d'
# a node whose krgd is dead: kill says the node is down (or unreachable)
# once the majority has noticed; krg ps still answers with the rest
"$ADM" vcluster krgd 3 kill --prefix "$PREFIX"
wait_for 15 "node 3 down" state_is 1 3 down
expect_fail 1 "node 3 is down" krg kill $((3 << 22 | 7))
on 1 krg ps -a >/dev/null || fail "krg ps with a node down"
echo PASS
