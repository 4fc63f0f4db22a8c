#!/usr/bin/env bash
# Memory shared with a process that stays home (issue 14 item 14): a
# parent and its child share a MAP_SHARED anonymous region, a memfd
# mapped shared, or a POSIX shm file of /dev/shm (sharer.py; node-local:
# docs/dsm.md). `krg migrate` of either refuses in one line
# naming the mapping and the other process, before touching it: it runs on
# at home, not stopped, and the two still see each other's writes. Once
# the child has exited the parent is the only user of its region, and
# migrates (its memory intact on node 2).
PREFIX=migsh${KRG_VC_SUFFIX:-}
. "$KRG_SOURCE_DIR/tests/cluster/common.sh"
KRG=$KRG_BUILD_DIR/krg
[ "$(id -u)" = 0 ] || { echo "FAIL: cannot run: needs root"; exit 1; }
start_cluster 2
W=$(mktemp -d "$KRG_BUILD_DIR/migrate-sharedmem.XXXXXX")
chmod 755 "$W"
cp "$KRG_SOURCE_DIR/tests/migrate/sharer.py" "$W/"
H=$((1 << 22))  # ids of node 1's processes: 1 << 22 | pid

state_of() { on 1 awk '/^State:/ { print $2 }' "/proc/$1/status"; }

# refused WHAT ID PATTERN: krg migrate ID 2 fails in one line matching PATTERN.
refused() {
	local out
	out=$(on 1 "$KRG" migrate "$2" 2 2>&1) && fail "$1: migrated"
	[ "$(echo "$out" | wc -l)" = 1 ] || fail "$1: not one line: $out"
	echo "$out" | grep -qE "$3" || fail "$1: '$out' does not match '$3'"
	echo "ok   refused ($1): $out"
}

for kind in anon memfd posix; do
	on 1 "$KRG" run -n 1 -- python3 "$W/sharer.py" "$W" "$kind" "$kind" >"$W/$kind.out" 2>&1 &
	run=$!
	wait_for 15 "$kind ready" test -e "$W/$kind.ready"
	kid=$(cat "$W/$kind.child")
	ppid=$(on 1 awk '/^PPid:/ { print $2 }' "/proc/$kid/status")
	what="MAP_SHARED anonymous"
	[ $kind = memfd ] && what="memfd krgshared"
	[ $kind = posix ] && what="POSIX shm $(cat "$W/$kind.shm")"
	refused "$kind, the parent" $((H + ppid)) \
		"process $((H + ppid)): mapping [0-9a-f]+-[0-9a-f]+ \\($what\\) is shared with process $((H + kid)), which stays on node 1\$"
	refused "$kind, the child" $((H + kid)) \
		"process $((H + kid)): mapping [0-9a-f]+-[0-9a-f]+ \\($what\\) is shared with process $((H + ppid)), which stays on node 1\$"
	# Untouched: running (not stopped by a freeze), and still one object.
	for p in "$ppid" "$kid"; do
		st=$(state_of "$p")
		[ "$st" = S ] || [ "$st" = R ] || fail "$kind: process $p is in state $st after the refusal"
	done
	touch "$W/$kind.childgo"
	wait_for 15 "$kind: the parent to read the child's write" test -e "$W/$kind.alone"
	if [ $kind = anon ]; then
		# The sole user of its region now: it migrates, memory intact.
		on 1 "$KRG" migrate $((H + ppid)) 2 || fail "$kind: the parent alone did not migrate"
		echo "ok   $kind: the parent, sole user of its region once the child is gone, migrated to node 2"
	fi
	touch "$W/$kind.go"
	rc=0
	wait $run || rc=$?
	[ $rc = 0 ] || fail "$kind: exit $rc: $(cat "$W/$kind.out")"
	echo "ok   $kind: shared memory intact after the refusals (exit 0)"
done
rm -rf "$W"
echo PASS
