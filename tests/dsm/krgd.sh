#!/usr/bin/env bash
# System V shared memory across nodes through krgd's DSM (docs/dsm.md,
# "shmat through krgd"), on a 3-node vcluster with krgd: unmodified
# programs (tests/dsm/shmc.c) under `krg run -n N` attach one segment:
#  1. a counter bumped with __atomic_fetch_add by processes on 3 nodes at
#     once ends exact on every node (each waits for all the others through
#     the segment itself: a node-local copy would never see them);
#  2. Peterson's lock between nodes 1 and 2 (node 3 homes some of its
#     pages) admits one at a time, its plain counter ends exact;
#  3. a process-shared pthread mutex in the segment guards a critical
#     section of processes on 3 nodes (futex waits held by krgd, woken by
#     a FUTEX_WAKE on any node);
#  4. shm_nattch counts attaches from every node and those a fork
#     inherits; shmdt, exec and exit uncount them; IPC_RMID destroys the
#     segment at the last detach anywhere;
#     an attached process migrates: its attachment follows (counted on
#     the target, uncounted at the source), its pages come on demand;
#     a checkpoint of one is refused by name;
#  5. bad arguments: one line, exit 2;
#  6. IPC_RMID of a segment attached nowhere frees its pages on every node.
PREFIX=dsmk
. "$KRG_SOURCE_DIR/tests/cluster/common.sh"
KRG=$KRG_BUILD_DIR/krg
S=$KRG_BUILD_DIR/tests/dsm/shmc
I=$KRG_BUILD_DIR/tests/intercept/icpt
[ "$(id -u)" = 0 ] || fail "cannot run: needs root"
W=$(mktemp -d "$KRG_BUILD_DIR/dsm-krgd.XXXXXX")
chmod 755 "$W"
start_cluster 3
trap 'rc=$?; [ $rc -ne 0 ] && dump_logs; "$ADM" vcluster down --prefix "$PREFIX" >/dev/null 2>&1 || true; rm -rf "$W"; exit $rc' EXIT
on 1 krgadm sched disable mosix >/dev/null
kr() { on 1 timeout 60 "$KRG" run -n "$@"; }
# par NAME CMD...: CMD on nodes 1..3 at once (each: node N as first argument), outputs in $W/NAME.N
par() {
	local name=$1 nodes=$2 pids= i rc=0
	shift 2
	for i in $nodes; do
		kr "$i" -- "$@" >"$W/$name.$i" 2>&1 &
		pids="$pids $!"
	done
	for i in $pids; do wait "$i" || rc=1; done
	[ $rc = 0 ] || { tail -n 5 "$W/$name".*; fail "$name: a process failed (outputs above)"; }
}

echo "== 5. bad arguments"
out=$("$S" 2>&1 && echo rc=0 || echo "rc=$?")
assert_contains "$out" "usage: shmc" "no arguments"
assert_contains "$out" "rc=2" "no arguments: exit 2"

out=$(kr 1 -- "$S" create 0x5d5 65536)
assert_contains "$out" "id " "shmget on node 1"
ID=${out#id }

echo "== 1. atomic counter from 3 nodes"
N=3000
par count "1 2 3" "$S" count 0x5d5 3 $N
for i in 1 2 3; do
	assert_eq "$(cat "$W/count.$i")" "count $((3 * N))" "node $i sees the exact total"
done

echo "== 2. Peterson's lock between nodes 1 and 2"
P=300
for me in 0 1; do
	kr $((me + 1)) -- "$S" peterson 0x5d5 $me $P >"$W/pet.$me" 2>&1 &
	eval "pet$me=\$!"
done
wait "$pet0" && wait "$pet1" || { cat "$W"/pet.*; fail "a Peterson process failed"; }
for me in 0 1; do
	assert_eq "$(cat "$W/pet.$me")" "peterson $((2 * P)) violations 0" "Peterson seen by process $me"
done

echo "== 3. process-shared pthread mutex from 3 nodes"
M=400
par mutex "1 2 3" "$S" mutex 0x5d5 3 $M
for i in 1 2 3; do
	assert_eq "$(cat "$W/mutex.$i")" "mutex $((3 * M))" "node $i: the mutex kept the section exact"
done

echo "== 4. shm_nattch cluster-wide, detach and removal"
wait_for 20 "every attach above uncounted at its exit (nattch 0)" sh -c "[ \"\$($ADM vcluster exec 1 --prefix $PREFIX -- timeout 20 $KRG run -n 1 -- $S nattch 0x5d5)\" = 'nattch 0' ]"
# fork inherits the attach (counted at the home, served by the DSM on the
# child's side); the child's shmdt, exec and exit, and the parent's own
# exec, each end one (shmc forks waits on shm_nattch at every step).
out=$(kr 2 -- "$S" forks 0x5d5 2>&1) || fail "fork, exec and exit of attached processes: $out"
assert_eq "$out" "$(printf 'fork counted, child shmdt uncounted\nchild exec uncounted\nchild exit uncounted\nexec uncounted')" \
	"fork counted; shmdt, exec and exit uncounted"
echo "ok   forks: $(echo "$out" | paste -sd, -)"
# An attached process migrates (docs/dsm.md, "Checkpoint and migration"):
# its attachment follows it (counted on the target, uncounted at the
# source), and its pages come on demand: it reads what it wrote before
# the move, sees a word written on node 1 after it, and node 1 sees its
# answer.
on 1 sh -c "timeout 60 $KRG run -n 2 -- $S mover 0x5d5 41 >$W/mover 2>&1 &"
assert_eq "$(kr 1 -- "$S" peek 0x5d5 3 1)" "peek 1" "the mover attached on node 2 and wrote"
wait_for 20 "the mover attached (nattch 1)" sh -c "[ \"\$($ADM vcluster exec 1 --prefix $PREFIX -- timeout 20 $KRG run -n 1 -- $S nattch 0x5d5)\" = 'nattch 1' ]"
mp=$(on 2 pgrep -f "shmc mover 0x5d5" | head -1)
[ -n "$mp" ] || fail "no mover process on node 2"
out=$(on 2 "$KRG" migrate $(((2 << 22) + mp)) 3 2>&1) || fail "migration of an attached process: $out"
on 3 pgrep -f "shmc mover 0x5d5" >/dev/null || fail "the mover does not run on node 3 after its migration"
wait_for 20 "node 3 counted the mover's attach" grep -q "its attach of System V segment $ID at .* followed its migration here" "$(log_of 3)"
assert_eq "$(kr 1 -- "$S" poke 0x5d5 4 41)" poked "the go written on node 1"
assert_eq "$(kr 1 -- "$S" peek 0x5d5 5 42)" "peek 42" "node 1 sees the migrated process's answer"
wait_for 20 "the mover's output" grep -q "^mover" "$W/mover"
assert_eq "$(cat "$W/mover")" "mover saw 41 own 123" "the migrated process saw node 1's word and its own write from before the move"
# Its exit uncounts its attach on node 3 and its source's went with its
# deputy's exec on node 2: none left.
wait_for 20 "the mover's attaches all uncounted (nattch 0)" sh -c "[ \"\$($ADM vcluster exec 1 --prefix $PREFIX -- timeout 20 $KRG run -n 1 -- $S nattch 0x5d5)\" = 'nattch 0' ]"
echo "ok   an attached process migrated from node 2 to node 3, its attachment followed"
for i in 2 3; do
	on 1 sh -c "timeout 60 $KRG run -n $i -- $S hold 0x5d5 14 >$W/hold.$i 2>&1 &"
done
wait_for 20 "holders attached on nodes 2 and 3" sh -c "[ \"\$($ADM vcluster exec 1 --prefix $PREFIX -- timeout 20 $KRG run -n 1 -- $S nattch 0x5d5)\" = 'nattch 2' ]"
# A checkpoint does not save a segment yet: refused by name, in one line,
# and the process runs on (docs/dsm.md, "Migration of an attached process").
hp=$(on 2 pgrep -f "shmc hold 0x5d5" | head -1)
[ -n "$hp" ] || fail "no holder process on node 2"
out=$(on 2 "$KRG" checkpoint $(((2 << 22) + hp)) 2>&1) && fail "an attached process was checkpointed: $out"
[ "$(echo "$out" | wc -l)" = 1 ] || fail "checkpoint refusal not one line: $out"
assert_contains "$out" "(System V segment $ID, shared across nodes): a checkpoint does not save it yet" "checkpoint of an attached process refused by name"
echo "ok   refused: $out"
st=$(on 2 awk '/^State:/ { print $2 }' "/proc/$hp/status")
[ "$st" = S ] || [ "$st" = R ] || fail "the holder is in state '$st' after the refused checkpoint"
assert_eq "$(kr 1 -- "$I" shm-atdt 0x5d5)" "detached unmapped" "shmdt through krgd"
wait_for 10 "the shmdt above uncounted (nattch 2)" sh -c "[ \"\$($ADM vcluster exec 1 --prefix $PREFIX -- timeout 20 $KRG run -n 1 -- $S nattch 0x5d5)\" = 'nattch 2' ]"
assert_eq "$(kr 2 -- "$S" rm 0x5d5)" removed "IPC_RMID while attached on nodes 2 and 3"
assert_eq "$(kr 1 -- "$S" idstat "$ID")" "nattch 2 dest 1" "marked for removal, still attached"
wait_for 30 "the segment destroyed at the last detach" sh -c "[ \"\$($ADM vcluster exec 1 --prefix $PREFIX -- timeout 20 $KRG run -n 1 -- $S idstat $ID)\" = gone ]"
# Every node forgot its pages (the last detacher told them all).
# The pages really moved between the nodes (or the exact totals above
# prove nothing): each node installed many grants.
for i in 1 2 3; do
	wait_for 10 "node $i dropped the segment's pages" grep -q "dsm: segment .* destroyed" "$(log_of "$i")"
	line=$(grep "dsm: segment .* destroyed" "$(log_of "$i")" | tail -1)
	echo "node $i: ${line#*dsm: }"
	g=$(echo "$line" | sed -n 's/.* \([0-9]*\) grants.*/\1/p')
	[ -n "$g" ] && [ "$g" -ge 30 ] || fail "node $i installed only '$g' grants of the segment's pages (< 30)"
done
echo "== 6. IPC_RMID with nothing attached: the pages go on every node at once"
out=$(kr 1 -- "$S" create 0x5d6 $((16 * 4096)))
assert_contains "$out" "id " "shmget of a second segment"
ID2=${out#id }
assert_contains "$(kr 1 -- "$S" write 0x5d6 4)" "written" "4 pages written on node 1"
assert_contains "$(kr 2 -- "$S" readmiss 0x5d6 4)" "readmiss" "and read on node 2"
assert_eq "$(kr 2 -- "$S" rm 0x5d6)" removed "IPC_RMID of the unattached segment"
assert_eq "$(kr 1 -- "$S" idstat "$ID2")" gone "removed at once"
for i in 1 2 3; do
	wait_for 10 "node $i dropped the unattached segment's pages" \
		grep -qE "dsm: segment $(printf %x "$ID2")[0-9a-f]{8} destroyed" "$(log_of "$i")"
done
echo "dsm-krgd: ok"
