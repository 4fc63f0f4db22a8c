#!/usr/bin/env bash
# The scheduler on a 3-node vcluster (docs/sched.md): probes and policies
# in `krgadm sched status` on every node; enable/disable/set persisted in
# the cluster state and seen from another node; `krg run --auto` follows
# the enabled policy (round-robin spreads 6 runs over 3 nodes); the sample
# plugin loads and shows; capabilities: refusals, a non-root user cannot
# grant what was dropped, and krg migrate refuses a process without
# CAN_MIGRATE.
PREFIX=sched
. "$KRG_SOURCE_DIR/tests/cluster/common.sh"
KRG=$KRG_BUILD_DIR/krg
[ "$(id -u)" = 0 ] || { echo "FAIL: cannot run: needs root"; exit 1; }
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
BUILT_PLUGIN=$KRG_BUILD_DIR/src/proc/sched/libkrg_sched_fixed_node.so
# krgd loads plugins only from root-only directories (docs/sched.md), and
# the build tree may be anywhere (under /tmp in a CI clone): each node gets
# the same copy in its own /var/lib/krg (a node-local tmpfs, 0700 root).
PLUGIN=/var/lib/krg/plug/libkrg_sched_fixed_node.so
start_cluster 3 --cpus 0.5
for n in 1 2 3; do
	on "$n" sh -c "install -d -m 700 /var/lib/krg/plug && install -m 644 '$BUILT_PLUGIN' '$PLUGIN'"
done

sj() { # sj NODE EXPR: a python expression on `sched status --json` as s
	on "$1" krgadm sched status --json | python3 -c "import json,sys; s=json.load(sys.stdin); print($2)"
}
pol() { sj "$1" "[p for p in s['policies'] if p['name']=='$2'][0]$3"; }
sj_is() { [ "$(sj "$1" "$2")" = "$3" ]; }         # sj_is NODE EXPR VALUE
pol_is() { [ "$(pol "$1" "$2" "$3")" = "$4" ]; }  # pol_is NODE POLICY SUFFIX VALUE

# 1. Probes on every node, with the node's capacity.
for n in 1 2 3; do
	wait_for 10 "node $n sees 3 nodes" sj_is $n "len(s['nodes'])" 3
	assert_eq "$(sj $n "s['node'], round(s['probes']['cpus'], 2), 'cpu_load_norm' in s['probes'], 'io_kbps' in s['probes'], 'mem_available_kb' in s['probes']")" \
		"$n 0.5 True True True" "probes of node $n"
done
text=$(on 2 krgadm sched status)
for w in cpu.load_norm mem.available_mib io.node_kbps least_loaded round_robin Policies; do
	assert_contains "$text" "$w" "sched status text"
done
# Per-process probes: a CPU-bound krg process shows CPU use.
on 1 "$KRG" run -n 1 -- python3 -c 'while True: pass' </dev/null >/dev/null 2>&1 &
busy=$!
wait_for 10 "the busy process shows CPU use" sj_is 1 "any(p['cpu_pct'] > 10 and p['comm']=='python3' for p in s['processes'])" True
# ... and node 1's cpu.used reaches the other nodes with its load broadcast.
wait_for 10 "node 2 sees node 1's cpu_used" sj_is 2 "[n['cpu_used'] > 0.1 and 'io_kbps' in n for n in s['nodes'] if n['id']==1][0]" True
kill $busy 2>/dev/null || true
# The balancer (on by default) may have moved it meanwhile: look everywhere.
for n in 1 2 3; do
	bid=$(sj $n "([p['id'] for p in s['processes'] if p['comm']=='python3'] + [''])[0]")
	[ -n "$bid" ] && break
done
[ -n "$bid" ] || fail "the busy process is on no node"
on 1 "$KRG" kill -9 "$bid" || true

# 2. Defaults, then changes from node 1 seen on node 3.
assert_eq "$(pol 3 least_loaded "['enabled']")" True "least_loaded on by default"
assert_eq "$(pol 3 round_robin "['enabled']")" False "round_robin off by default"
on 1 krgadm sched enable round_robin
wait_for 5 "round_robin enabled on node 3" pol_is 3 round_robin "['enabled']" True
wait_for 5 "least_loaded disabled on node 3" pol_is 3 least_loaded "['enabled']" False
# --auto from node 2 spreads over the 3 nodes.
hosts=$(for i in 1 2 3 4 5 6; do on 2 "$KRG" run --auto -- hostname; done | sort | uniq -c | awk '{print $1}' | tr '\n' ' ')
assert_eq "$hosts" "2 2 2 " "round_robin: 6 runs over 3 nodes"

# 3. The plugin: loaded from node 2, seen on node 1, its parameter set.
on 2 krgadm sched load "$PLUGIN"
for n in 1 2 3; do
	wait_for 5 "fixed_node loaded on node $n" pol_is $n fixed_node "['source']" "$PLUGIN"
done
on 3 krgadm sched set fixed_node.node 3
wait_for 5 "fixed_node.node = 3 on node 1" pol_is 1 fixed_node "['params']['node']" 3.0
on 1 krgadm sched enable fixed_node
wait_for 5 "round_robin off once fixed_node is on" pol_is 2 round_robin "['enabled']" False
for n in 1 2; do
	wait_for 5 "fixed_node on, seen on node $n" pol_is $n fixed_node "['enabled']" True
	assert_eq "$(on $n "$KRG" run --auto -- hostname)" "$PREFIX-node3" "fixed_node places on node 3 from node $n"
done
on 1 krgadm sched disable fixed_node
wait_for 5 "fixed_node off" pol_is 2 fixed_node "['enabled']" False
assert_eq "$(on 2 "$KRG" run --auto -- hostname)" "$PREFIX-node2" "no placement policy: --auto runs here"
on 1 krgadm sched enable least_loaded

# Bad input: one line, non-zero.
expect_fail() { # expect_fail WHAT WORD CMD...
	local what=$1 word=$2 out rc=0
	shift 2
	out=$("$@" 2>&1) || rc=$?
	[ $rc -ne 0 ] || fail "$what: exit 0"
	[ "$(printf '%s\n' "$out" | wc -l)" = 1 ] || fail "$what: not one line: $out"
	assert_contains "$out" "$word" "$what"
}
expect_fail "unknown policy" "no policy 'nope'" on 1 krgadm sched enable nope
expect_fail "unknown param" "no parameter 'x'" on 1 krgadm sched set fixed_node.x 1
expect_fail "param out of range" "not a number in" on 1 krgadm sched set fixed_node.node 999
expect_fail "set without dot" "POLICY.PARAM" on 1 krgadm sched set fixed_node 1
expect_fail "load twice" "already loaded" on 1 krgadm sched load "$PLUGIN"
expect_fail "load missing" "no such file" on 1 krgadm sched load /nonexistent.so
expect_fail "load not a plugin" "cannot load" on 1 krgadm sched load /etc/hostname
expect_fail "non-root change" "ermi" on 1 "${NOBODY[@]}" krgadm sched enable round_robin
expect_fail "unknown sched command" "unknown command" on 1 krgadm sched frob

# 4. Capabilities.
on 1 "$KRG" run -n 1 -- sleep 60 </dev/null >/dev/null 2>&1 &
sleeper=$!
on 1 "${NOBODY[@]}" "$KRG" run -n 1 -- sleep 61 </dev/null >/dev/null 2>&1 &
nsleeper=$!
sid() { on 1 "$KRG" ps -a --json | python3 -c "import json,sys; print([p['id'] for p in json.load(sys.stdin)['processes'] if p['command']=='sleep $1'][0])"; }
wait_for 10 "sleepers listed" sid 61
id=$(sid 60)
nid=$(sid 61)
show=$(on 1 "$KRG" capset -p "$id")
assert_contains "$show" "effective CAN_MIGRATE,DISTANT_FORK,CHECKPOINTABLE" "every capability by default"
on 1 "$KRG" capset -d CAN_MIGRATE -p "$id"
assert_contains "$(on 1 "$KRG" capset -p "$id")" "effective DISTANT_FORK,CHECKPOINTABLE" "CAN_MIGRATE dropped"
expect_fail "migrate without CAN_MIGRATE" "lacks the CAN_MIGRATE capability" on 1 "$KRG" migrate "$id" 2
on 1 "$KRG" capset -e CAN_MIGRATE -p "$id"
on 1 "$KRG" migrate "$id" 2 || fail "migrate once CAN_MIGRATE is back"
# A user drops a capability of their own process and cannot take it back;
# they cannot touch another user's process; root can give it back.
on 1 "${NOBODY[@]}" "$KRG" capset -d CAN_MIGRATE -p "$nid"
expect_fail "user re-grants" "not in its permitted set" on 1 "${NOBODY[@]}" "$KRG" capset -e CAN_MIGRATE -p "$nid"
expect_fail "user migrates it" "lacks the CAN_MIGRATE" on 1 "${NOBODY[@]}" "$KRG" migrate "$nid" 3
expect_fail "another user's process" "not permitted" on 2 "${NOBODY[@]}" "$KRG" capset -d CHECKPOINTABLE -p "$id"
# From any node: the request goes to the process's home node.
on 3 "$KRG" capset -d CHECKPOINTABLE -p "$id"
assert_contains "$(on 2 "$KRG" capset -p "$id")" "effective CAN_MIGRATE,DISTANT_FORK" "capset from node 3, seen from node 2"
assert_not_contains "$(on 2 "$KRG" capset -p "$id")" "CHECKPOINTABLE" "CHECKPOINTABLE dropped from node 3"
expect_fail "user re-grants from node 2" "not in its permitted set" on 2 "${NOBODY[@]}" "$KRG" capset -e CAN_MIGRATE -p "$nid"
on 1 "$KRG" capset -e CAN_MIGRATE -p "$nid"
assert_contains "$(on 1 "$KRG" capset -p "$nid")" "permitted CAN_MIGRATE" "root gives it back"
# -- CMD: the command and its children inherit; a user cannot grant in them.
out=$(on 1 "${NOBODY[@]}" "$KRG" capset -d CAN_MIGRATE -- sh -c "\"$KRG\" capset -e CAN_MIGRATE -- true" 2>&1) && fail "child re-granted: $out"
assert_contains "$out" "not in its permitted set" "inherited drop"
expect_fail "bad capability" "unknown capability" on 1 "$KRG" capset -e FLY -p "$id"
expect_fail "bad id" "not a krg process id" on 1 "$KRG" capset -e CAN_MIGRATE -p abc
expect_fail "no target" "either -p ID or -- COMMAND" on 1 "$KRG" capset -e CAN_MIGRATE
on 1 "$KRG" kill -9 "$id" "$nid" || true
wait $sleeper $nsleeper 2>/dev/null || true

# Inheritance (Kerrighed's rules): a child gets its parent's inheritable
# sets as its effective and permitted sets, and so do its children. (The
# shell drops DISTANT_FORK too, or its child would be placed elsewhere.)
on 1 "$KRG" run -n 1 -- "$KRG" capset -d DISTANT_FORK -- "$KRG" capset -d CHECKPOINTABLE -- sh -c 'sleep 62; true' </dev/null >/dev/null 2>&1 &
cks=$!
wait_for 10 "the child of the capset'd shell listed" sid 62
cid=$(sid 62)
show=$(on 2 "$KRG" capset -p "$cid")
for set in effective permitted inheritable_effective inheritable_permitted; do
	assert_eq "$(echo "$show" | awk -v s=$set '$1==s {print $2}')" CAN_MIGRATE "inherited $set of the child"
done
# CHECKPOINTABLE: krg checkpoint refuses, naming the process, from any node.
expect_fail "checkpoint without CHECKPOINTABLE" "process $cid lacks the CHECKPOINTABLE capability" on 2 "$KRG" checkpoint "$cid"
expect_fail "checkpoint without CHECKPOINTABLE, its node" "lacks the CHECKPOINTABLE capability" on 1 "$KRG" checkpoint "$cid"
# Root grants it back; then the checkpoint is taken.
on 1 "$KRG" capset -e CHECKPOINTABLE -p "$cid"
on 2 "$KRG" checkpoint "$cid" --ignore-unsupported >/dev/null || fail "checkpoint once root granted CHECKPOINTABLE"
on 1 "$KRG" kill -9 "$cid" || true
wait $cks 2>/dev/null || true

# DISTANT_FORK: the young children of a process whose sets give it
# DISTANT_FORK are placed by least_loaded (krgd moves them at once); with
# no setting, children stay with their parent.
# On a vcluster every node shares the host's load average, so capacity
# decides where least_loaded places: node 1 the smallest.
cg=$(vc_cgroup "$PREFIX" 1)
if [ -f "$cg/cpu.max" ]; then echo "25000 100000" >"$cg/cpu.max"; else echo 25000 >"$cg/cpu.cfs_quota_us"; fi
small1() { [ "$(sj 1 "[round(n['cpus'], 2) for n in s['nodes'] if n['id']==1][0]")" = 0.25 ]; }
wait_for 10 "node 1 sees its smaller capacity" small1
df() { on 1 "$KRG" ps -a --json | python3 -c "
import json, sys
print(' '.join(sorted(str(p['node']) for p in json.load(sys.stdin)['processes'] if p['command'] in ('sleep $1', 'sleep $2'))))"; }
on 1 "$KRG" run -n 1 -- sh -c 'sleep 71 & sleep 72 & wait' </dev/null >/dev/null 2>&1 &
plain=$!
on 1 "$KRG" run -n 1 -- "$KRG" capset -e DISTANT_FORK -- sh -c 'sleep 73 & sleep 74 & wait' </dev/null >/dev/null 2>&1 &
dfork=$!
left() { local w; w=$(df 73 74); [ "$(echo "$w" | wc -w)" = 2 ] && ! echo "$w" | grep -qw 1; }
wait_for 60 "the DISTANT_FORK children leave node 1" left
echo "DISTANT_FORK children on nodes: $(df 73 74); distant forks: $(sj 1 "s['probes']['distant_forks']")"
[ "$(sj 1 "s['probes']['distant_forks']")" -ge 2 ] || fail "distant_forks not counted"
assert_eq "$(df 71 72)" "1 1" "children without DISTANT_FORK set stay with their parent"
# krg run carries the caller's sets (as its child's) to the other node.
on 1 "${NOBODY[@]}" "$KRG" capset -d CAN_MIGRATE -- "$KRG" run -n 2 -- sleep 81 </dev/null >/dev/null 2>&1 &
carried=$!
wait_for 10 "sleep 81 listed" sid 81
rid=$(sid 81)
assert_eq "$(on 1 "$KRG" ps -a --json | python3 -c "import json,sys; print([p['node'] for p in json.load(sys.stdin)['processes'] if p['command']=='sleep 81'][0])")" 2 "sleep 81 runs on node 2"
has_carried() { on 3 "$KRG" capset -p "$rid" | grep -qx "effective DISTANT_FORK,CHECKPOINTABLE"; }
wait_for 10 "the caller's sets reach the process krg run started on node 2" has_carried
assert_contains "$(on 3 "$KRG" capset -p "$rid")" "permitted DISTANT_FORK,CHECKPOINTABLE" "carried permitted set"
expect_fail "user re-grants on the other node" "not in its permitted set" on 2 "${NOBODY[@]}" "$KRG" capset -e CAN_MIGRATE -p "$rid"
on 2 "$KRG" kill -9 "$rid" || true
wait $carried 2>/dev/null || true

on 1 "$KRG" run -n 1 -- "$KRG" capset -d CHECKPOINTABLE -- sleep 75 </dev/null >/dev/null 2>&1 &
live=$!
for c in 71 72 73 74; do on 1 "$KRG" kill -9 "$(sid $c)" || true; done
wait $plain $dfork 2>/dev/null || true

# The entries of exited processes leave the caps registry (their home node
# drops them); a live process keeps its own.
collected() { [ "$(sj 1 "s['probes']['caps_collected']")" -ge 3 ]; }
wait_for 60 "node 1 drops the caps entries of its exited processes" collected
wait_for 10 "sleep 75 listed" sid 75
assert_contains "$(on 2 "$KRG" capset -p "$(sid 75)")" "effective CAN_MIGRATE,DISTANT_FORK
" "a live process keeps its entry"
on 1 "$KRG" kill -9 "$(sid 75)" || true
wait $live 2>/dev/null || true
echo PASS
