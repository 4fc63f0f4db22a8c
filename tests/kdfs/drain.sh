#!/usr/bin/env bash
# kdfs drain (docs/kdfs.md, "Drain"): `krgadm nodes del -n 3` on a 3-node
# vcluster returns only once every chunk replica node 3 held has its
# copies on nodes 1 and 2 — also a file whose only copy was on node 3, and
# a file a writer on node 2 appends to (fsync after each record) while the
# node leaves. Then node 3's krgd is killed: every file still reads whole
# on nodes 1 and 2, and nothing is under-replicated or lost.
set -euo pipefail
: "${KRG_SOURCE_DIR:?run through meson test}"
PREFIX=kdfsdr
. "$KRG_SOURCE_DIR/tests/cluster/common.sh"
M=/run/kdfs
AK="python3 $KRG_SOURCE_DIR/tests/kdfs/acked.py"
status() { on 1 krgadm kdfs status --json; }
st() { status | python3 -c "import json,sys; s=json.load(sys.stdin); print($1)"; }

start_cluster 3 --kdfs
wait_for 30 "node 3 mounts kdfs" on 3 findmnt -n "$M"

echo "== files with copies on node 3 t=${SECONDS}s"
# Written on node 3: each chunk's first copy is the writer's.
on 3 sh -c "head -c 3000000 /dev/urandom > $M/big"
on 3 mkdir "$M/solo"
on 3 krg kdfs set "$M/solo" --replicas 1
on 3 sh -c "head -c 200000 /dev/urandom > $M/solo/only"
assert_eq "$(on 1 krg kdfs show "$M/solo/only" --json | python3 -c "import json,sys; print([n['node'] for n in json.load(sys.stdin)['chunks'][0]['nodes']])")" \
	"[3]" "the solo file's only copy is on node 3"
for k in 1 2 3 4 5; do on 3 sh -c "head -c $((k * 70000)) /dev/urandom > $M/f$k"; done
# Striped over 3 groups: node 3 holds a copy of each group's chunk.
on 3 mkdir "$M/st"
on 3 krg kdfs set "$M/st" --stripe-count 3 --stripe-size 64K
on 3 sh -c "head -c 500000 /dev/urandom > $M/st/f"
# A writer on node 2 with a copy on every node, going on through the drain.
on 2 mkdir "$M/acked"
on 2 krg kdfs set "$M/acked" --replicas 3
on 2 $AK write "$M/acked/f" /tmp/acked /tmp/acked.stop &
acker=$!
acked() { on 2 cat /tmp/acked 2>/dev/null || echo 0; }
acked_ge() { [ "$(acked)" -ge "$1" ]; }
wait_for 20 "node 2's writer under way" acked_ge 5
declare -A sum
for f in big solo/only f1 f2 f3 f4 f5 st/f; do sum[$f]=$(on 1 md5sum "$M/$f" | cut -d' ' -f1); done
held=$(st "[n['replicas'] for n in s['nodes'] if n['node'] == 3][0]")
[ "$held" -ge 8 ] || fail "node 3 holds $held replicas, expected at least 8"
assert_eq "$(st "s['under_replicated'], s['lost'], s['draining']")" "0 0 0" "healthy before the drain"

echo "== krgadm nodes del -n 3 t=${SECONDS}s"
out=$(timeout 60 "$ADM" vcluster exec 1 --prefix "$PREFIX" -- krgadm nodes del -n 3) ||
	fail "nodes del failed: $out; $(status); $(grep -h "kdfs: \|evict" "$(log_of 3)" | tail -n 20)"
echo "$out"
assert_eq "$(node_state 1 3)" absent "node 3 left"
n=$(echo "$out" | sed -n 's/.*kdfs: \([0-9]*\) chunk replica(s) handed over.*/\1/p')
[ -n "$n" ] && [ "$n" -ge "$held" ] || fail "nodes del did not report node 3's $held replicas handed over: $out"
grep -q "leaves: dropping its replica" "$(log_of 3)" || fail "node 3's log shows no replica dropped"
n=$(acked)
wait_for 30 "node 2's writer goes on after node 3 left" acked_ge $((n + 5))
on 2 touch /tmp/acked.stop
wait $acker || fail "the writer on node 2 failed during the drain"
assert_eq "$(st "[n['replicas'] for n in s['nodes'] if n['node'] == 3][0], s['under_replicated'], s['lost'], s['draining']")" \
	"0 0 0 0" "no chunk lists node 3; nothing under-replicated or lost"
assert_eq "$(on 1 krg kdfs show "$M/solo/only" --json | python3 -c "import json,sys; print(len(json.load(sys.stdin)['chunks'][0]['nodes']))")" \
	"1" "the solo file has its one copy, elsewhere"
left=$(on 3 find /var/lib/krg/kdfs/chunks -type f)
[ -z "$left" ] || fail "node 3 did not delete the chunk files it handed over: $(echo $left); $(grep -h "kdfs: " "$(log_of 3)" | tail -n 30)"

echo "== node 3 gone for good t=${SECONDS}s"
"$ADM" vcluster krgd 3 kill --prefix "$PREFIX"
for i in 1 2; do
	for f in big solo/only f1 f2 f3 f4 f5 st/f; do
		assert_eq "$(on "$i" md5sum "$M/$f" | cut -d' ' -f1)" "${sum[$f]}" "node $i reads $f without node 3"
	done
done
n=$(acked)
have=$(on 1 $AK check "$M/acked/f" "$n") || fail "an acknowledged record is lost: $have"
echo "$n records acknowledged, $have in the file"

echo "== bad input t=${SECONDS}s"
out=$(on 1 krgadm kdfs status --bogus 2>&1) && fail "status --bogus succeeded"
assert_eq "$(echo "$out" | wc -l)" 1 "one line for a bad option"
echo "kdfs drain: all checks passed t=${SECONDS}s"
