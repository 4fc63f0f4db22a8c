#!/usr/bin/env bash
# Checkpoint and restart through krgd on a 2-node vcluster: a program
# started on node 2 by `krg run` from node 1 is checkpointed by id from
# node 1 (--kill) into node 2's store, restarted from node 1 (on node 2,
# the image's node) as a krg process, signalled by `krg kill` and checks
# its memory (PASS); then restarted from node 2 on node 1 (the image is
# streamed into node 1's store first), PASS again. Another user is refused
# both, in one line.
PREFIX=ckpt
. "$KRG_SOURCE_DIR/tests/cluster/common.sh"
KRG=$KRG_BUILD_DIR/krg
PROG=$KRG_BUILD_DIR/tests/ckpt/ckpt_heap
[ "$(id -u)" = 0 ] || { echo "FAIL: cannot run: needs root"; exit 1; }
[ -x "$PROG" ] || { echo "FAIL: cannot run: $PROG not built"; exit 1; }
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)

start_cluster 2
# Where processes run is checked here: no balancer moving them meanwhile.
on 1 krgadm sched disable mosix >/dev/null
# Nodes have their own /tmp and /var/lib/krg; the build tree is shared.
W=$(mktemp -d "$KRG_BUILD_DIR/ckpt-cluster.XXXXXX")
chmod 755 "$W"

on 1 "$KRG" run -n 2 -- sh -c "exec $PROG $W/ready >$W/out.log 2>&1 </dev/null" &
run=$!
wait_for 15 "ckpt_heap ready on node 2" test -e "$W/ready"
id=$(on 1 "$KRG" ps -a --json | python3 -c '
import json, sys
print([p["id"] for p in json.load(sys.stdin)["processes"] if "ckpt_heap" in p["command"] and p["node"] == 2][0])')
echo "ckpt_heap runs as $id"

out=$(on 1 "${NOBODY[@]}" "$KRG" checkpoint "$id" 2>&1) && fail "nobody could checkpoint $id"
[ "$(echo "$out" | wc -l)" = 1 ] && echo "$out" | grep -q "not permitted" || fail "unclear refusal: $out"
echo "ok   another user cannot checkpoint: $out"

path=$(on 1 "$KRG" checkpoint "$id" --kill -d "cluster test") || fail "checkpoint failed"
[ "$path" = "/var/lib/krg/chkpt/$id/v1" ] || fail "unexpected path '$path'"
rc=0; wait $run || rc=$?
[ $rc = 137 ] || fail "krg run exit $rc, not 137 (killed after the checkpoint)"
on 2 test -f "$path/inventory.img" || fail "no image on node 2"
on 2 grep -q "cluster test" "$path/description" || fail "no description"
on 1 test -e "$path" && fail "image on node 1 too"
echo "ok   checkpoint from node 1 into node 2's store: $path"

out=$(on 1 "${NOBODY[@]}" "$KRG" restart "$id" 2>&1) && fail "nobody could restart $id"
[ "$(echo "$out" | wc -l)" = 1 ] && echo "$out" | grep -q "permission denied" || fail "unclear refusal: $out"
echo "ok   another user cannot restart: $out"
out=$(on 1 "${NOBODY[@]}" "$KRG" restart "$id" -n 1 2>&1) && fail "nobody could restart $id on node 1"
[ "$(echo "$out" | wc -l)" = 1 ] && echo "$out" | grep -q "permission denied" || fail "unclear refusal: $out"
on 1 test -e "$path" && fail "image copied to node 1 for a refused restart"

new=$(on 1 "$KRG" restart "$id" -n 2) || fail "restart failed"
echo "restarted as $new"
on 1 "$KRG" ps -a --json | python3 -c "
import json, sys
assert any(p['id'] == $new and 'ckpt_heap' in p['command'] for p in json.load(sys.stdin)['processes'])" ||
	fail "$new not listed by krg ps"
on 1 "$KRG" kill -USR1 "$new" || fail "krg kill failed"
wait_for 15 "PASS from the restarted process" grep -q '^PASS' "$W/out.log"
echo "ok   restarted on node 2 from node 1, PASS"

# Again on node 1: node 2 streams v1 into node 1's store, node 1 restores.
new1=$(on 2 "$KRG" restart "$id" -n 1) || fail "restart on node 1 failed"
echo "restarted on node 1 as $new1"
on 1 test -f "$path/inventory.img" || fail "no copy of the image on node 1"
[ "$(on 1 stat -c %a "$path")" = 700 ] || fail "copy not 0700"
on 2 "$KRG" ps -a --json | python3 -c "
import json, sys
assert any(p['id'] == $new1 and p['node'] == 1 and 'ckpt_heap' in p['command'] for p in json.load(sys.stdin)['processes'])" ||
	fail "$new1 not listed on node 1 by krg ps"
on 2 "$KRG" kill -USR1 "$new1" || fail "krg kill failed"
# Same output file and offset as the first restart: wait for it to end.
gone() { on 1 "$KRG" ps -a --json | python3 -c "
import json, sys
sys.exit(any(p['id'] == $new1 for p in json.load(sys.stdin)['processes']))"; }
wait_for 15 "the process restarted on node 1 to finish" gone
grep -q '^PASS' "$W/out.log" && ! grep -q FAIL "$W/out.log" || fail "no PASS: $(cat "$W/out.log")"
echo "ok   restarted on node 1 (image streamed from node 2), PASS"
out=$(on 1 "$KRG" restart "$id" 1 -n 1 2>&1) && fail "second copy into node 1 accepted"
[ "$(echo "$out" | wc -l)" = 1 ] || fail "not one line: $out"
echo "ok   existing version on the target refused: $out"

# A process tree (tests/ckpt/tree.c: groups, a session, zombies, a pipe, a
# socketpair and a file shared between processes) started by krg run on
# node 2, checkpointed by id, restarted on node 1: every process checks
# its state and the root reaps them all (PASS).
TREE=$KRG_BUILD_DIR/tests/ckpt/ckpt_tree
mkdir -p "$W/tree"
on 1 "$KRG" run -n 2 -- sh -c "cd $W/tree && exec $TREE $W/tree/ready >$W/tree/out.log 2>&1 </dev/null" &
run=$!
wait_for 15 "ckpt_tree ready on node 2" test -e "$W/tree/ready"
tid=$(on 1 "$KRG" ps -a --json | python3 -c '
import json, sys
ps = json.load(sys.stdin)["processes"]
print(min(p["id"] for p in ps if "ckpt_tree" in p["command"] and p["node"] == 2))')
# Through krgd from node 1: --freeze stops the tree on node 2, --unfreeze
# continues it; -a on a child's id saves the whole tree under the root's id.
out=$(on 1 "$KRG" checkpoint "$tid" --freeze) || fail "--freeze through krgd failed"
echo "$out" | grep -q "4 processes frozen" || fail "--freeze said: $out"
[ "$(on 2 ps -o stat= -p $(( tid & 0x3fffff )) | cut -c1)" = T ] || fail "the tree's root is not stopped"
on 1 "$KRG" checkpoint "$tid" --unfreeze >/dev/null || fail "--unfreeze through krgd failed"
[ "$(on 2 ps -o stat= -p $(( tid & 0x3fffff )) | cut -c1)" = S ] || fail "the tree's root did not continue"
child=$(on 2 ps -o pid= --ppid $(( tid & 0x3fffff )) | head -1 | tr -d ' ')
apath=$(on 1 "$KRG" checkpoint -a $(( (2 << 22) | child ))) || fail "checkpoint -a of a child failed"
[ "$apath" = "/var/lib/krg/chkpt/$tid/v1" ] || fail "-a saved into $apath, not the root's store"
echo "ok   --freeze/--unfreeze and -a (child id $(( (2 << 22) | child )) -> app $tid) through krgd"
tpath=$(on 1 "$KRG" checkpoint "$tid" --kill) || fail "tree checkpoint failed"
wait $run || true
n=$(on 2 "$KRG" image show --json "$tpath" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["processes"]))')
[ "$n" = 6 ] || fail "tree image holds $n processes, not 6"
# The tree comes back with its own pids, from node 2's range: node 1's
# own processes (krgd's workers, the krg commands of this test, its file
# view's server) take theirs from node 1's (issue 14 item 12).
tnew=$(on 2 "$KRG" restart "$tid" -n 1) || fail "tree restart on node 1 failed"
on 1 "$KRG" kill -USR1 "$tnew" || fail "krg kill of the restarted tree failed"
wait_for 15 "PASS from the restarted tree" grep -q '^PASS' "$W/tree/out.log"
echo "ok   a tree of 6 processes from node 2 restarted on node 1, PASS"
# Again on node 2 (its own store), through krgd into a new pid namespace:
# the tree checks its pids inside; krg ps and krg kill use the outside id.
: >"$W/tree/out.log"
tns=$(on 1 "$KRG" restart "$tid" --new-pidns) || fail "tree restart --new-pidns failed"
on 2 "$KRG" ps -a --json | python3 -c "
import json, sys
assert any(p['id'] == $tns and 'ckpt_tree' in p['command'] for p in json.load(sys.stdin)['processes'])" || fail "$tns not listed"
nspid=$(on 2 awk '/^NSpid:/ { print $NF }' "/proc/$(( tns & 0x3fffff ))/status")
[ "$nspid" = "$(( tid & 0x3fffff ))" ] || fail "pid $nspid inside the new namespace, not $(( tid & 0x3fffff ))"
on 1 "$KRG" kill -USR1 "$tns" || fail "krg kill of the tree in its namespace failed"
wait_for 15 "PASS from the tree in a new pid namespace" grep -q '^PASS' "$W/tree/out.log"
echo "ok   the tree restarted through krgd into a new pid namespace on node 2 (pid $nspid inside), PASS"
rm -rf "$W"
echo PASS
