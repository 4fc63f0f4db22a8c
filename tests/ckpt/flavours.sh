#!/usr/bin/env bash
# The "other node" flavour of the tests/ckpt programs (issue 4, acceptance
# 3; run.sh has the same-node and new-pid-namespace flavours): on a 2-node
# vcluster each program is started on node 2 by `krg run` from node 1, sets
# up its state and says it is ready; `krg checkpoint ID --kill` from node 1
# dumps it into node 2's store, `krg restart ID -n 1` from node 2 streams
# the image into node 1's store and restores it there; `krg kill -USR1`
# makes it verify: PASS in its out.log, no FAIL, and it is gone from `krg
# ps` afterwards. One ok/FAIL line per program.
# Usage: flavours.sh [PROGRAM...]
PREFIX=ckflav
. "$KRG_SOURCE_DIR/tests/cluster/common.sh"
KRG=$KRG_BUILD_DIR/krg
T=$KRG_BUILD_DIR/tests/ckpt
[ "$(id -u)" = 0 ] || { echo "FAIL: cannot run: needs root"; exit 1; }
progs=("$@")
if [ ${#progs[@]} = 0 ]; then
	# Every program of meson.build's ckpt_tests but unsupported (io_uring and
	# a TCP socket: refused at checkpoint, run.sh checks that), and the
	# -static builds. Each works in its cwd (data.txt, append.txt, sub/,
	# gone.dat, fifo, tree-shared-*, log.txt, data.bin), a directory of the
	# build tree, which every node sees at the same path; none uses /tmp
	# (private per node).
	# pipe_data's FIFO is one object for both nodes (vcluster nodes share a
	# kernel), but --kill closed the original's ends before the restart.
	progs=(anon_mem heap stack fpu file_offset signals pipe_data eventfd deleted_file deleted_wronly leader_exit deleted_cwd memfd madvise socketpair dev_files
		threads pending itimer tree snapshot locks posix_timer shared_mem shared_big cow fpu_static anon_mem_static threads_static
		stopped zombie_sig fsids timerfd signalfd epoll inotify unix_sockets pipe_reopen)
fi
start_cluster 2
# Where processes run is checked here: no balancer moving them meanwhile.
on 1 krgadm sched disable mosix >/dev/null
# Nodes have their own /tmp, /run and /var/lib/krg; the build tree is shared.
W=$(mktemp -d "$KRG_BUILD_DIR/ckpt-flavours.XXXXXX")
chmod 755 "$W"
failures=0

# poll SECONDS COMMAND...: until COMMAND succeeds; 1 on timeout.
poll() {
	local end=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $end ] || return 1
		sleep 0.1
	done
}
# ps_py NODE PYTHON: PYTHON run on `krg ps -a --json` of NODE as ps.
ps_py() {
	on "$1" "$KRG" ps -a --json | python3 -c "import json, sys; ps = json.load(sys.stdin)['processes']; $2"
}
gone() { ps_py 1 "sys.exit(any(p['id'] == $1 for p in ps))"; }

# one NAME: 0 and an ok line, or 1 and why.
one() {
	local name=$1 bin=$T/ckpt_$1 d=$W/$1
	mkdir -p "$d"
	on 1 "$KRG" run -n 2 -- sh -c "cd $d && exec $bin $d/ready >$d/out.log 2>&1 </dev/null" &
	local run=$!
	poll 15 test -e "$d/ready" || { kill $run; wait $run; why="never ready on node 2: $(cat "$d/out.log")"; return 1; }
	# The root: the lowest id of the processes running in $d (tree forks).
	local id; id=$(ps_py 1 "print(min(p['id'] for p in ps if '$d/' in p['command'] and p['node'] == 2))") ||
		{ why="not listed on node 2 by krg ps"; return 1; }
	local err
	err=$(on 1 "$KRG" checkpoint "$id" --kill 2>&1) || { why="checkpoint $id: $err"; return 1; }
	local rc=0
	wait $run || rc=$?
	[ $rc = 137 ] || { why="krg run exit $rc, not 137 (killed after the checkpoint)"; return 1; }
	local new
	new=$(on 2 "$KRG" restart "$id" -n 1 2>&1) || { why="restart $id -n 1 from node 2: $new"; return 1; }
	local node; node=$(ps_py 2 "print([p['node'] for p in ps if p['id'] == $new][0])") || { why="$new not listed"; return 1; }
	[ "$node" = 1 ] || { why="$new runs on node $node, not 1"; return 1; }
	err=$(on 1 "$KRG" kill -USR1 "$new" 2>&1) || { why="krg kill -USR1 $new: $err"; return 1; }
	poll 15 grep -q '^PASS' "$d/out.log" || { why="no PASS: $(tr '\n' ' ' <"$d/out.log")"; return 1; }
	poll 15 gone "$new" || { why="PASS but $new still runs"; return 1; }
	! grep -q FAIL "$d/out.log" || { why="$(tr '\n' ' ' <"$d/out.log")"; return 1; }
	why="$id on node 2 -> $new on node 1, PASS"
}

for name in "${progs[@]}"; do
	if [ ! -x "$T/ckpt_$name" ]; then
		echo "skip $name (not built)"
		continue
	fi
	why=""
	if one "$name"; then
		echo "ok   $name: $why"
	else
		echo "FAIL $name: ${why//$'\n'/ }"
		failures=$((failures + 1))
	fi
done
rm -rf "$W"
[ $failures = 0 ] || fail "$failures program(s) failed"
echo PASS
