#!/usr/bin/env bash
# State a migrant has queued in kernel objects (issue 14), on a 3-node
# vcluster: pipes holding unread data (a full 64 KiB pipe, a 1 MiB one, a
# child's pipe left at home) read back byte for byte after 1 -> 2 -> 3 -> 1;
# a parent's stopped child: after the parent moved, waitpid(WUNTRACED)
# reports the stop it had not reaped (or nothing, if it had), then the
# continue and the exit.
# Usage (root, under the vcluster lock): queued.sh [CASE...]  (pipes, stopped)
PREFIX=mque${KRG_VC_SUFFIX:-}
. "$KRG_SOURCE_DIR/tests/cluster/common.sh"
KRG=$KRG_BUILD_DIR/krg
HERE=$KRG_SOURCE_DIR/tests/migrate
[ "$(id -u)" = 0 ] || { echo "FAIL: cannot run: needs root"; exit 1; }
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(pipes stopped)
start_cluster 3
W=$(mktemp -d "$KRG_BUILD_DIR/migrate-queued.XXXXXX")
chmod 755 "$W"
trap 'rc=$?; rm -rf "$W"; [ $rc -ne 0 ] && dump_logs; "$ADM" vcluster down --prefix "$PREFIX" >/dev/null 2>&1 || true; exit $rc' EXIT

# migrate_path ID NODE...: krg migrate ID to each NODE in turn.
migrate_path() {
	local id=$1 n
	shift
	for n in "$@"; do
		on 1 "$KRG" migrate "$id" "$n" || fail "migrate $id to node $n"
	done
}

# Item 15: unread pipe data, including a pipe filled to exactly its default
# 64 KiB and one grown to 1 MiB with F_SETPIPE_SZ.
pipes() {
	local d=$W/pipes
	mkdir -p "$d"
	on 1 "$KRG" run -n 1 -- python3 "$HERE/pipefill.py" "$d" &
	local run=$!
	wait_for 15 "pipefill.py ready" test -e "$d/ready"
	local id=$(((1 << 22) | $(cat "$d/pid")))  # the parent (its child has its command line)
	migrate_path "$id" 2 3 1
	touch "$d/go"
	local rc=0
	wait $run || rc=$?
	[ $rc = 0 ] && grep -q '^PASS' "$d/result" || fail "pipes: exit $rc: $(cat "$d/result" 2>&1)"
	echo "ok   pipes holding 64 KiB, 1 MiB and a child's 64 KiB read back whole after 1 -> 2 -> 3 -> 1"
}

# Item 16: a parent moves while two children it left at home are stopped,
# one stop not yet reaped (waitpid(WUNTRACED) reports it after the move),
# one reaped before (nothing to report after); both continue and exit.
stopped() {
	local d=$W/stopped
	mkdir -p "$d"
	on 1 "$KRG" run -n 1 -- python3 "$HERE/stopkid.py" "$d" &
	local run=$!
	wait_for 15 "stopkid.py ready" test -e "$d/ready"
	local id=$(((1 << 22) | $(cat "$d/pid")))  # the parent (its children have its command line)
	migrate_path "$id" 2
	touch "$d/go"
	local rc=0
	wait $run || rc=$?
	[ $rc = 0 ] && grep -q '^PASS' "$d/result" || fail "stopped: exit $rc: $(cat "$d/result" 2>&1)"
	echo "ok   a parent moved to node 2: waitpid(WUNTRACED) of its stopped children left home as on one machine, then their exits"
}

for c in "${cases[@]}"; do
	"$c"
done
echo PASS
