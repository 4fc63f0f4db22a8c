#!/usr/bin/env bash
# What a killed krgd was writing never survives it (issue 13 item 8,
# docs/krgd.md "At start"): on a 2-node vcluster,
# 1. a user's 64 MiB process is checkpointed through krgd, and node 1's
#    krgd is killed (SIGKILL, with its worker) while the image's pages
#    part is written in full under its temporary name (a test hook holds
#    it there, image.c); after krgd starts again no *.tmp is left in the
#    store, the app has no version (none is half there), krgd logged what
#    it removed, and the user checkpoints and restarts a process again;
# 2. a migration's source (node 1) killed while its worker holds the
#    dumped process (worker.c's hold): after a restart, /run/krg/mig-out
#    and /run/krg/mig are empty there, and logged;
# 3. `krg restart ID -n 2` of an image in node 1's store, node 2's krgd
#    killed while it receives the version (a test hook holds the transfer
#    after its first piece, ckpt_service.c): after a restart node 2's
#    store shows no version of the app and has nothing left in .tmp, the
#    removal is logged, and the same remote restart then works.
PREFIX=ckle${KRG_VC_SUFFIX:-}
. "$KRG_SOURCE_DIR/tests/cluster/common.sh"
KRG=$KRG_BUILD_DIR/krg
[ "$(id -u)" = 0 ] || fail "cannot run: needs root"
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
W=$(mktemp -d "$KRG_BUILD_DIR/leftovers-test.XXXXXX")
chmod 777 "$W" # the user's processes say they are ready there
HOLD_COMMIT=$W/commit.hold
HOLD_RECV=$W/recv.hold
mkdir -p "$W/mig"
export KRG_FAULT="ckpt-hold-commit:$HOLD_COMMIT,ckpt-hold-recv:$HOLD_RECV,mig-hold:$W/mig"
start_cluster 2
STORE=/var/lib/krg/chkpt

# id_of MARK: the krg id of the process whose command line has MARK
id_of() { on 1 "$KRG" ps -a --json | python3 -c "
import json, sys
print([p['id'] for p in json.load(sys.stdin)['processes'] if '$1' in p['command']][0])"; }
krgd_gone() { ! on "$1" krgadm cluster status >/dev/null 2>&1; }
# restart_krgd N: kill node N's krgd (and its forks), start it again
restart_krgd() {
	local n=$1 other=$((3 - $1))
	"$ADM" vcluster krgd "$n" kill --prefix "$PREFIX" >/dev/null
	# Its last threads may still hold the API socket for a moment.
	wait_for 10 "node $n's API socket closed" krgd_gone "$n"
	rm -f "$HOLD_COMMIT" "$HOLD_RECV" "$W"/mig/*
	"$ADM" vcluster krgd "$n" start --prefix "$PREFIX" >/dev/null
	wait_for 30 "node $n up again" state_is "$other" "$n" up
	on "$n" krgadm cluster wait --timeout 30 >/dev/null
}
restart_krgd1() { restart_krgd 1; }
# 64 MiB of the user's memory, held until killed.
PROG='import os, sys, time; m = bytearray(os.urandom(1 << 20)) * 64; open(sys.argv[1], "w").close(); time.sleep(600)'

# 1. Checkpoint interrupted with its pages written but not in place.
MA=krg-left-$$-a
on 1 "${NOBODY[@]}" "$KRG" run -n 1 -- python3 -c "$PROG" "$W/a.ready" "$MA" &
wait_for 30 "$MA ready" test -e "$W/a.ready"
ida=$(id_of "$MA")
touch "$HOLD_COMMIT"
on 1 "${NOBODY[@]}" "$KRG" checkpoint "$ida" >"$W/a.ckpt" 2>&1 &
wait_for 30 "the pages part written under its temporary name" \
	on 1 sh -c "find $STORE -name '.pages-*.img.tmp' -size +60M | grep -q ."
restart_krgd1
wait $! 2>/dev/null || true
left=$(on 1 find "$STORE" -type f -name '*.tmp')
[ -z "$left" ] || fail "left in the store after a restart of krgd: $left"
[ -z "$(on 1 sh -c "ls -A $STORE/.tmp 2>/dev/null")" ] || fail "a temporary version left: $(on 1 ls -lA "$STORE/.tmp")"
vers=$(on 1 sh -c "ls -A $STORE/$ida 2>/dev/null" || true)
[ -z "$vers" ] || fail "app $ida shows a version that was never complete: $vers"
grep -q "checkpoint service: removed .* ([1-9][0-9]* bytes)" "$(log_of 1)" || fail "krgd did not log what it removed"
out=$(on 1 "${NOBODY[@]}" "$KRG" restart "$ida" 2>&1) && fail "restarted an image never completed: $out"
echo "ok   krgd killed while writing a checkpoint: nothing half-written left or shown ($(grep -c 'checkpoint service: removed' "$(log_of 1)") removal logged)"

# ... and the user checkpoints and restarts again.
MB=krg-left-$$-b
on 1 "${NOBODY[@]}" "$KRG" run -n 1 -- python3 -c "$PROG" "$W/b.ready" "$MB" &
runb=$!
wait_for 30 "$MB ready" test -e "$W/b.ready"
idb=$(id_of "$MB")
path=$(on 1 "${NOBODY[@]}" "$KRG" checkpoint "$idb" --kill) || fail "checkpoint by the user after the restart: $path"
assert_eq "$path" "$STORE/$idb/v1" "the new version's path"
wait $runb 2>/dev/null || true
new=$(on 1 "${NOBODY[@]}" "$KRG" restart "$idb") || fail "restart by the user: $new"
wait_for 15 "the restarted process listed" id_of "$MB"
on 1 "$KRG" kill -KILL "$new" || fail "krg kill of the restarted process"
echo "ok   the user checkpoints and restarts again ($path)"

# 2. Migration source killed with the dumped image in mig-out.
MC=krg-left-$$-c
on 1 "$KRG" run -n 1 -- python3 -c "$PROG" "$W/c.ready" "$MC" &
wait_for 30 "$MC ready" test -e "$W/c.ready"
idc=$(id_of "$MC")
touch "$W/mig/$idc.hold"
on 1 "$KRG" migrate "$idc" 2 >/dev/null 2>&1 &
wait_for 30 "the dumped process held by the worker" test -e "$W/mig/$idc.frozen"
ls_out=$(on 1 sh -c 'ls -A /run/krg/mig-out')
[ -n "$ls_out" ] || fail "no image in /run/krg/mig-out during the move"
restart_krgd1
for d in /run/krg/mig-out /run/krg/mig; do
	[ -z "$(on 1 sh -c "ls -A $d 2>/dev/null")" ] || fail "left in $d on node 1: $(on 1 ls -lAR "$d")"
done
grep -q "migration service: removed /run/krg/mig-out/.* bytes" "$(log_of 1)" || fail "krgd did not log the removed image"
echo "ok   migration source's krgd killed mid-move: mig-out and its FIFOs removed at restart, logged"

# 3. A version received for a restart on another node, its krgd killed
# mid-transfer.
MD=krg-left-$$-d
on 1 "${NOBODY[@]}" "$KRG" run -n 1 -- python3 -c "$PROG" "$W/d.ready" "$MD" &
rund=$!
wait_for 30 "$MD ready" test -e "$W/d.ready"
idd=$(id_of "$MD")
path=$(on 1 "${NOBODY[@]}" "$KRG" checkpoint "$idd" --kill) || fail "checkpoint of $MD: $path"
wait $rund 2>/dev/null || true
touch "$HOLD_RECV"
on 1 "${NOBODY[@]}" "$KRG" restart "$idd" -n 2 >"$W/d.restart" 2>&1 &
wait_for 30 "node 2 writing the first piece of the version" \
	on 2 sh -c "find $STORE -type f | grep -q ."
restart_krgd 2
wait $! 2>/dev/null || true
vers=$(on 2 sh -c "ls -A $STORE/$idd 2>/dev/null" || true)
[ -z "$vers" ] || fail "node 2 shows a version of app $idd never received whole: $vers ($(on 2 find "$STORE/$idd" -type f -printf '%p %s\n'))"
[ -z "$(on 2 sh -c "ls -A $STORE/.tmp 2>/dev/null")" ] || fail "a temporary version left on node 2: $(on 2 ls -lA "$STORE/.tmp")"
grep -q "checkpoint service: removed .* ([1-9][0-9]* bytes)" "$(log_of 2)" || fail "node 2's krgd did not log what it removed"
new=$(on 1 "${NOBODY[@]}" "$KRG" restart "$idd" -n 2 2>&1) || fail "remote restart after node 2's krgd restarted: $new"
wait_for 15 "the process restarted on node 2 listed" id_of "$MD"
on 1 "$KRG" kill -KILL "$new" || fail "krg kill of the restarted process"
echo "ok   node 2's krgd killed receiving a version: none shown or left after its restart, logged; restarted there again ($new)"
rm -rf "$W"
echo PASS
