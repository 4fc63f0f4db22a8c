#!/usr/bin/env bash
# A 32-node vcluster forms, runs and takes add/remove (issue 19 item 6,
# docs/reconfiguration.md "Scale"): 24 nodes in every krgd.conf (5 raft
# voters, 19 standbys) and 8 machines joining live. Links are lazy: a
# standby keeps a link to the raft leader (and, while it votes, a voter
# to the other voters) and opens others on first use; `krg run` and `krg
# ps -a` between far nodes work through on-demand links; a link idle for
# link_idle_ms (3 s here) is closed by agreement, also under a quiet job
# whose output and exit status then come back through a new link. So the
# links opened while the cluster forms (KDDM's READY round, each node to
# each node) close, and a node far from the leader keeps a few.
# 64 nodes are in bench/scale (too heavy for CI's 2 cores within a
# minute); this test runs ~40-70 s, its timeout is in meson.build.
PREFIX=scale
. "$(dirname "$0")/common.sh"
N0=24
N=32
# A --conf line that is no 'KEY = VALUE': one line, non-zero, nothing made.
rc=0
msg=$("$ADM" vcluster up 2 --prefix "$PREFIX" --conf 'link_idle_ms' 2>&1) || rc=$?
[ "$rc" -ne 0 ] && [ "$(echo "$msg" | wc -l)" -eq 1 ] && echo "$msg" | grep -q "invalid --conf" ||
	fail "vcluster up --conf 'link_idle_ms' exited $rc: $msg"
[ ! -e "/run/krg-vcluster/$PREFIX" ] || fail "a refused --conf left /run/krg-vcluster/$PREFIX"
start_cluster "$N0" --conf 'lazy_links = on' --conf 'link_idle_ms = 3000'
"$ADM" vcluster add $((N - N0)) --prefix "$PREFIX" >/dev/null
nodes_up() { json_get "$1" "s['nodes_up']"; }
up_is() { [ "$(nodes_up "$1")" -eq "$2" ]; }
wait_for 60 "node 1 sees $N nodes up" up_is 1 "$N"
wait_for 30 "node $N sees $N nodes up" up_is "$N" "$N"
echo "formed: $N nodes up"
# Machines joining at once get their ids in the order the cluster took
# them: vcluster node i is not node id i beyond the configured ones.
id_of() { json_get "$1" "s['self']"; }
idN=$(id_of "$N")

# Lazy links: a standby far from the leader is linked to few nodes, not to
# every other one (31 with a link per pair). The leader is linked to all.
leader=$(json_get 1 "s['leader']")
linked() { json_get "$1" "sum(1 for n in s['nodes'] if n.get('linked') and n['id'] != s['self'])"; }
far=$N
[ "$far" != "$leader" ] || far=$((N - 1))
echo "after formation node $far is linked to $(linked "$far") nodes"
far_lazy() { [ "$(linked "$far")" -le 6 ]; }
wait_for 30 "node $far keeps at most 6 of its $((N - 1)) links (lazy links)" far_lazy
echo "node $far is linked to $(linked "$far") nodes, the leader (node $leader) to $(linked "$leader")"
leader_linked_all() { [ "$(linked "$leader")" -eq $((N - 1)) ]; }
wait_for 20 "the leader is linked to every node" leader_linked_all

# Run on far nodes, from near and far ones.
assert_eq "$(on 1 krg run -n "$idN" -- hostname)" "$(on "$N" hostname)" "krg run -n $idN from node 1"
rc=0
on "$N" krg run -n $((N - 1)) -- sh -c 'exit 5' || rc=$?
assert_eq "$rc" 5 "krg run between two far standbys (a link on demand)"
assert_eq "$(on 29 krg run -n 2 -- echo far-to-voter)" far-to-voter "krg run from node 29 to node 2"

# krg ps -a from a far node asks every node (links on demand) and sees a
# process started on another far node.
on 1 krg run -n 27 -- sleep 30 >/dev/null 2>&1 &
sleeper=$!
ps_sees() { on "$N" krg ps -a | grep -q 'sleep 30'; }
wait_for 20 "krg ps -a on node $N sees the sleep on node 27" ps_sees
kill "$sleeper" 2>/dev/null || true
wait "$sleeper" 2>/dev/null || true

# A link idle for 3 s closes by agreement, also under a quiet job: its
# output and exit status come back through a new link.
out=$(mktemp)
rc=0
id30=$(id_of 30) id31=$(id_of 31)
on 30 krg run -n "$id31" -- sh -c 'echo begin; sleep 6; echo end; exit 9' >"$out" 2>&1 || rc=$?
assert_eq "$rc" 9 "exit status of a job whose link closed while it was quiet"
assert_eq "$(tr '\n' ' ' <"$out")" "begin end " "output of a job whose link closed while it was quiet"
rm -f "$out"
grep -q "link to node $id31 idle" "$(log_of 30)" || grep -q "link to node $id30 idle" "$(log_of 31)" ||
	fail "nodes $id30 and $id31 did not close their idle link under the quiet job"
assert_eq "$(on 30 krg run -n "$id31" -- echo again)" again "krg run after the idle link closed"

# Remove a far node, then add one: it gets a new id and runs work.
on 1 krgadm nodes del -n "$idN" >/dev/null
wait_for 30 "node $idN is absent for node 1" state_is 1 "$idN" absent
line=$("$ADM" vcluster add --prefix "$PREFIX")
vnew=$(echo "$line" | awk '{print $2}')
[ "$vnew" = $((N + 1)) ] || fail "vcluster add after the removal printed: $line"
new=$(id_of "$vnew")
[ "$new" -gt "$N" ] || fail "the machine added after the removal got id $new"
wait_for 30 "node 1 sees node $new up" state_is 1 "$new" up
wait_for 30 "node 2 sees node $new up" state_is 2 "$new" up
runs_on_new() { [ "$(on 2 krg run -n "$new" -- hostname)" = "$(on "$vnew" hostname)" ]; }
wait_for 15 "krg run from node 2 on the added node $new" runs_on_new
echo "removed node $idN, added node $new"
echo "ok"
