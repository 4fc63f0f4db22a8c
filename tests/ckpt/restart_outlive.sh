#!/usr/bin/env bash
# A restarted application never outlives the process that stays its
# parent (issue 13 item 7, docs/checkpoint.md "Through krgd"): a sleeper
# checkpointed on node 1 of a 2-node vcluster is restarted there
#   (a) with --foreground, and its exec child (the stand-in krg's stream
#       waits for) is killed;
#   (b) with --foreground, and only krgd's own process is killed (what
#       the OOM killer or a crash does; `vcluster krgd 1 kill` would also
#       kill every fork of krgd, the stand-in among them);
#   (c) with --new-pidns, and the restart worker (parent of the
#       namespace's init and of the process) is killed;
#   (d) with --new-pidns, and only krgd's own process is killed;
#   (e) in the background (plain `krg restart ID`), and only krgd's own
#       process is killed: the worker stays its parent, tied to krgd.
# Each time the restored program must be gone from node 1 within a few
# seconds: found by a unique marker in its argv with pgrep inside node 1
# (krg ps cannot see one that escaped under the node's init).
PREFIX=ckro${KRG_VC_SUFFIX:-}
. "$KRG_SOURCE_DIR/tests/cluster/common.sh"
KRG=$KRG_BUILD_DIR/krg
[ "$(id -u)" = 0 ] || fail "cannot run: needs root"
start_cluster 2
W=$(mktemp -d "$KRG_BUILD_DIR/restart-outlive-test.XXXXXX")
chmod 755 "$W"

# id_of MARK: the krg id of the process whose command line has MARK
id_of() { on 1 "$KRG" ps -a --json | python3 -c "
import json, sys
print([p['id'] for p in json.load(sys.stdin)['processes'] if '$1' in p['command']][0])"; }
on_node() { on "$1" pgrep -f "$2" >/dev/null; }
off_node() { ! on "$1" pgrep -f "$2" >/dev/null; }
ppid_of() { on 1 ps -o ppid= -p "$1" | tr -d ' '; }
comm_of() { on 1 cat "/proc/$1/comm"; }
gone() { ! on 1 test -e "/proc/$1"; }

MARK=krg-rsoutlive-$$
on 1 "$KRG" run -n 1 -- python3 -c 'import sys, time; time.sleep(600)' "$MARK" &
run=$!
wait_for 15 "$MARK started" id_of "$MARK"
id=$(id_of "$MARK")
path=$(on 1 "$KRG" checkpoint "$id" --kill) || fail "checkpoint: $path"
wait "$run" 2>/dev/null || true
wait_for 5 "the checkpointed sleeper killed" off_node 1 "$MARK"

# restored_and_parent: sets mpid (the restored sleeper, node 1's pid),
# mid (its parent, the process that stays) and krgd (mid's parent).
restored_and_parent() {
	wait_for 15 "$MARK restored" on_node 1 "$MARK"
	mpid=$(on 1 pgrep -f "$MARK")
	mid=$(ppid_of "$mpid")
	krgd=$(ppid_of "$mid")
	[ "$(comm_of "$mid")" = krgd ] || fail "the restored $mpid's parent $mid is $(comm_of "$mid"), not a fork of krgd"
	[ "$(comm_of "$krgd")" = krgd ] || fail "$mid's parent $krgd is $(comm_of "$krgd"), not krgd"
}

# kill_krgd_only: SIGKILL to krgd's own process (not its forks), wait
# until it is reaped.
kill_krgd_only() {
	on 1 kill -KILL "$krgd"
	wait_for 10 "krgd ($krgd) reaped" gone "$krgd"
}

restart_krgd() {
	"$ADM" vcluster krgd 1 start --prefix "$PREFIX" >/dev/null
	wait_for 30 "node 1 up again" state_is 2 1 up
	on 1 krgadm cluster wait --timeout 30 >/dev/null
}

# (a) --foreground, its stand-in killed.
on 1 "$KRG" restart "$id" --foreground </dev/null >"$W/a.out" 2>&1 &
fg=$!
restored_and_parent
on 1 kill -KILL "$mid"
wait_for 5 "the restored sleeper to die with its stand-in ($mid)" off_node 1 "$MARK"
wait "$fg" 2>/dev/null || true
echo "ok   --foreground: stand-in killed, the restored process died with it"

# (b) --foreground, krgd killed.
on 1 "$KRG" restart "$id" --foreground </dev/null >"$W/b.out" 2>&1 &
fg=$!
restored_and_parent
kill_krgd_only
wait_for 5 "the restored sleeper to die with krgd" off_node 1 "$MARK"
wait_for 5 "the stand-in ($mid) to die with krgd" gone "$mid"
wait "$fg" 2>/dev/null || true
restart_krgd
echo "ok   --foreground: krgd killed, the stand-in and the restored process died with it"

# (c) --new-pidns, the restart worker killed.
new=$(on 1 "$KRG" restart "$id" --new-pidns) || fail "restart --new-pidns: $new"
restored_and_parent
on 1 kill -KILL "$mid"
wait_for 5 "the restored sleeper to die with its worker ($mid)" off_node 1 "$MARK"
echo "ok   --new-pidns: worker killed, the restored process died with it"

# (d) --new-pidns, krgd killed.
new=$(on 1 "$KRG" restart "$id" --new-pidns) || fail "restart --new-pidns: $new"
restored_and_parent
kill_krgd_only
wait_for 5 "the restored sleeper to die with krgd" off_node 1 "$MARK"
wait_for 5 "the worker ($mid) to die with krgd" gone "$mid"
restart_krgd
echo "ok   --new-pidns: krgd killed, the worker and the restored process died with it"

# (e) background, krgd killed.
new=$(on 1 "$KRG" restart "$id") || fail "restart: $new"
restored_and_parent
kill_krgd_only
wait_for 5 "the restored sleeper to die with krgd" off_node 1 "$MARK"
wait_for 5 "the worker ($mid) to die with krgd" gone "$mid"
restart_krgd
echo "ok   background restart: krgd killed, the worker and the restored process died with it"
rm -rf "$W"
echo PASS
