#!/usr/bin/env bash
# Checkpoint images on kdfs (issue 18 item 5, issue 19 item 3; docs/checkpoint.md
# "Images on kdfs"). On a 3-node vcluster with kdfs:
# - app A runs on node 3; `krg checkpoint --kill` writes its image into
#   /run/kdfs/.krg/chkpt/<A>/v1 (root's store dirs 0711, the image 0700);
# - app B runs on node 3 with a checkpoint every second: its entry says
#   on_kdfs, no copy to a second node;
# - node 3's krgd is killed. Once it is declared down, node 1 (the lowest
#   up node) restarts B from its kdfs image, and `krg restart A -n 1`
#   restores A on node 1 from kdfs: no image is sent between nodes. Both
#   finish with the result of an uninterrupted run;
# - a tampered image (mode 0755, another owner) is refused in one line, a
#   user cannot plant anything in the store; B's images go once it ends.
set -euo pipefail
: "${KRG_SOURCE_DIR:?run through meson test}"
PREFIX=kdfsck
. "$KRG_SOURCE_DIR/tests/cluster/common.sh"
KRG=$KRG_BUILD_DIR/krg
PROG=$KRG_BUILD_DIR/tests/cluster/recover_counter
M=/run/kdfs
S=$M/.krg/chkpt
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
STEPS=80
[ "$(id -u)" = 0 ] || { echo "FAIL: cannot run: needs root"; exit 1; }
[ -x "$PROG" ] || { echo "FAIL: cannot run: $PROG not built"; exit 1; }

W=$(mktemp -d "$KRG_BUILD_DIR/kdfsck.XXXXXX")
chmod 755 "$W"
mkdir "$W/ref" "$W/a" "$W/b"
chmod 777 "$W/a" "$W/b"
counter_reference "$PROG" "$W/ref" "$STEPS"

start_cluster 3 --kdfs
for n in 1 2 3; do wait_for 30 "node $n mounts kdfs" on "$n" findmnt -n "$M"; done
on 1 krgadm sched disable mosix >/dev/null

# id_of DIR: the krg id of the counter writing into DIR
id_of() {
	on 1 "$KRG" ps -a --json | python3 -c "
import json, sys
print([p['id'] for p in json.load(sys.stdin)['processes'] if '$1 ' in p['command']][0])"
}
on 1 "$KRG" run -n 3 -- sh -c "exec $PROG $W/a $STEPS 100 >/dev/null 2>&1 </dev/null" >"$W/run-a.log" 2>&1 &
on 1 "$KRG" run -n 3 --checkpoint-every 1s -- sh -c "exec $PROG $W/b $STEPS 100 >/dev/null 2>&1 </dev/null" \
	>"$W/run-b.log" 2>&1 &
wait_for 15 "A runs on node 3" test -s "$W/a/progress"
wait_for 15 "B runs on node 3" test -s "$W/b/progress"
a=$(id_of "$W/a") || fail "A is not listed by krg ps"
b=$(id_of "$W/b") || fail "B is not listed by krg ps"

# A: one checkpoint, into kdfs, and the process ends.
sleep 1 # a few steps done: the restart resumes past the start
before_a=$(cat "$W/a/progress")
img=$(on 1 "$KRG" checkpoint --kill "$a") || fail "checkpoint of A failed: $img"
[ "$img" = "$S/$a/v1" ] || fail "A's image is $img, not $S/$a/v1"
# Seen from node 2 (another node than the writer): root's store, the user's image 0700.
modes=$(on 2 stat -c '%n %a %U' "$M/.krg" "$S" "$S/$a" "$S/$a/v1" | tr '\n' ' ')
[ "$modes" = "$M/.krg 711 root $S 711 root $S/$a 700 root $S/$a/v1 700 root " ] || fail "store modes: $modes"
echo "ok   A checkpointed on node 3 into $img (modes: $modes)"
one_line_error 1 "Permission denied" on 2 "${NOBODY[@]}" mkdir "$S/4194999"
one_line_error 2 "Permission denied" on 2 "${NOBODY[@]}" ls "$S"

# B: periodic, on kdfs, no second holder.
wait_for 15 "B's checkpoints in kdfs" entry_is "len(a) == 1 and a[0]['version'] >= 2 and a[0]['on_kdfs'] and a[0]['holders'] == []" True
on 1 "$KRG" checkpoint --list
# (the version listed may be superseded and removed meanwhile: any will do)
b_images() { on 2 ls "$S/$b" | grep -q '^v[0-9]*$'; }
wait_for 5 "B's images seen in kdfs from node 2" b_images
echo "ok   B checkpointed every second into kdfs, no copy"
# Incremental there too: the recorded version builds on the one before,
# its chain next to it and whole (krg image show checks every link),
# read from node 2.
incr_in_kdfs() {
	local v
	v=$(entry "a[0]['version']") || return 1
	grep -q "app $b: checkpoint v$v is incremental on v" "$(log_of 3)" || return 1
	on 2 "$KRG" image show "$S/$b/v$v" 2>/dev/null | grep -q "^incremental: "
}
wait_for 20 "an incremental version of B recorded in kdfs" incr_in_kdfs
echo "ok   B's recorded version in kdfs is incremental, its chain whole seen from node 2"

# Node 3 dies: its krgd, B with it (A is already gone).
"$ADM" vcluster krgd 3 kill --prefix "$PREFIX"
t0=$SECONDS
wait_for 15 "node 3 declared down" state_is 1 3 down
wait_for 20 "B running again on node 1" entry_is "a[0]['node'] == 1 and a[0]['recoveries'] == 1" True
echo "ok   B restarted on node 1 $((SECONDS - t0)) s after node 3's krgd was killed"
grep -q "app $b: running again on node 1" "$(log_of 1)" || fail "node 1's log does not say B runs again"
rv=$(grep -o "ckpt: app $b found in kdfs: $S/$b/v[0-9]*" "$(log_of 1)" | tail -1 | sed 's/.*\/v//')
[ -n "$rv" ] || fail "node 1's log does not say which version of B it read from kdfs"
grep "app $b: checkpoint v$rv " "$(log_of 3)" | grep -q "is incremental on v" &&
	echo "ok   B restored from v$rv, an increment, and the chain under it" ||
	echo "ok   B restored from v$rv (a full one: its chain had just begun again)"

newa=$(on 1 "$KRG" restart "$a" -n 1) || fail "restart of A on node 1: $newa"
echo "ok   A restarted on node 1 from kdfs as $newa"
grep -q "ckpt: app $a found in kdfs: $S/$a/v1" "$(log_of 1)" || fail "node 1 did not read A from kdfs"
# No image travelled: nothing sent, nothing received.
! grep -E "ckpt: (received|sending) " "$(log_of 1)" "$(log_of 2)" || fail "an image was copied between nodes"

wait_for 40 "A and B to finish" test -s "$W/a/result" -a -s "$W/b/result"
diff "$W/ref/result" "$W/a/result" || fail "A's result differs from the uninterrupted run"
diff "$W/ref/result" "$W/b/result" || fail "B's result differs from the uninterrupted run"
# Resumed, not begun again. A, killed by its checkpoint, goes on at the
# next step (1..STEPS once each, past the step seen before); B, killed
# with node 3, goes back once, to its checkpoint's step, well past 1.
counter_steps_ok "$W/a" "$before_a" "$STEPS" 0 1
counter_steps_ok "$W/b" 2 "$STEPS" 1 1
echo "ok   both finished on node 1 with the uninterrupted run's result: $(cat "$W/a/result")"

# Tampered images are refused, in one line, and nothing starts.
on 2 chmod 0755 "$S/$a"
one_line_error 1 "has mode 0755 .*refused" on 2 "$KRG" restart "$a" -n 2
on 2 chmod 0700 "$S/$a"
on 2 chown 65534 "$S/$a/v1"
one_line_error 1 "belongs to uid 65534, the images of app $a to uid 0: refused" on 2 "$KRG" restart "$a" -n 2
on 2 chown 0 "$S/$a/v1"
on 2 chmod 0777 "$S"
one_line_error 1 "is not root's own directory" on 2 "$KRG" restart "$a" -n 2
on 2 chmod 0711 "$S"

# B's periodic images go once it ended (A's, a user's checkpoint, stay).
wait_for 10 "B's entry gone once it ended" entry_is "len(a)" 0
newb=$(grep -o "app $b: running again on node 1 as [0-9]*" "$(log_of 1)" | awk '{print $NF}')
[ -n "$newb" ] || fail "node 1's log does not give B's new id"
no_images() { on 1 test ! -e "$S/$b" && on 1 test ! -e "$S/$newb"; }
wait_for 10 "B's kdfs images removed" no_images
on 1 test -d "$S/$a/v1" || fail "A's own image was removed"
echo "ok   B's images removed from kdfs, A's kept"

# Periodic checkpoints stopped (--every 0) while the application runs on:
# its kdfs versions go, also one a dump under way writes after the stop.
# Temporary versions left by writers that are gone go with the first
# dump: node 3's (down), not node 1's (up: its own to judge).
on 1 mkdir -p "$S/.tmp/4242.n3.77" "$S/.tmp/4242.n1.1"
mkdir "$W/c"
chmod 777 "$W/c"
on 1 "$KRG" run -n 2 --checkpoint-every 1s -- sh -c "exec $PROG $W/c 600 100 >/dev/null 2>&1 </dev/null" \
	>"$W/run-c.log" 2>&1 &
wait_for 15 "C runs on node 2" test -s "$W/c/progress"
c=$(id_of "$W/c") || fail "C is not listed by krg ps"
wait_for 15 "C's checkpoints in kdfs" entry_is "len(a) == 1 and a[0]['version'] >= 2 and a[0]['on_kdfs']" True
on 1 test ! -e "$S/.tmp/4242.n3.77" || fail "node 3 is down: its temporary version should be gone"
on 1 test -d "$S/.tmp/4242.n1.1" || fail "node 1 is up: its temporary version is its own to judge"
on 1 rmdir "$S/.tmp/4242.n1.1"
echo "ok   a dump took the down node's temporary version for a leftover, not the up node's"
on 1 "$KRG" checkpoint --every 0 "$c" >/dev/null || fail "stopping C's periodic checkpoints"
c_gone() { entry_is "len(a)" 0 && on 1 test ! -e "$S/$c"; }
wait_for 15 "C's entry and kdfs versions gone" c_gone
step=$(cat "$W/c/progress")
wait_for 15 "C running on after the stop" sh -c "[ \"\$(cat $W/c/progress)\" != $step ]"
echo "ok   periodic checkpoints of C stopped: its kdfs versions removed, C runs on"
rm -rf "$W"
echo PASS
