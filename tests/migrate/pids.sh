#!/usr/bin/env bash
# Pids across migrations (issue 14 item 12, docs/migration.md "Pids"):
# mig_ids (four threads) is started by a shell on node 1 and moved
# 1 -> 2 -> 3; after each move getpid(), every thread's gettid() and
# getppid() must be what they were at home. Before it is moved, a process
# on node 2 forks the way programs do until the kernel gives it the
# migrant's pid or goes past it (taker.py): with every node counting
# from the same low pids it got it, and the migrant came back on node 2
# under another pid. With per-node pid ranges node 2 never hands it out.
# A second mig_ids started by krg run itself (its parent is home's krgd,
# whose pid is from node 1's range too) keeps its getppid() as well.
PREFIX=migpid${KRG_VC_SUFFIX:-}
. "$KRG_SOURCE_DIR/tests/cluster/common.sh"
KRG=$KRG_BUILD_DIR/krg
IDS=$KRG_BUILD_DIR/tests/migrate/mig_ids
[ "$(id -u)" = 0 ] || { echo "FAIL: cannot run: needs root"; exit 1; }
[ -x "$IDS" ] || { echo "FAIL: cannot run: no $IDS"; exit 1; }
start_cluster 3
on 1 krgadm sched disable mosix >/dev/null
W=$(mktemp -d "$KRG_BUILD_DIR/migrate-pids.XXXXXX")
chmod 755 "$W"
cp "$KRG_SOURCE_DIR/tests/migrate/taker.py" "$W/"
H=$((1 << 22))  # ids of node 1's processes: 1 << 22 | pid

# The pid ranges are logged by each krgd.
for n in 1 2 3; do
	grep -q "pids: node $n allocates pids" "$(log_of $n)" || fail "node $n's krgd has no pid range"
done

# A shell on node 1 (the migrant's parent, which stays home) starts it.
on 1 "$KRG" run -n 1 -- bash -c "$IDS $W/ids.txt & echo \$! >$W/ids.pid; wait \$!" >"$W/run.out" 2>&1 &
run=$!
lines() { [ -e "$W/ids.txt" ] && wc -l <"$W/ids.txt" || echo 0; }
has_lines() { [ "$(lines)" -ge "$1" ]; }
wait_for 15 "mig_ids started" test -s "$W/ids.pid"
pid=$(cat "$W/ids.pid")
id=$((H + pid))
ask() { # ask N: ask for line N (krg kill reaches it wherever it runs)
	on 1 "$KRG" kill -USR1 "$id" || fail "krg kill -USR1 $id"
	wait_for 10 "line $1 of mig_ids" has_lines "$1"
}
wait_for 10 "mig_ids's first line" has_lines 1
home=$(sed -n 1p "$W/ids.txt")
echo "     at home: $home"
case "$home" in "pid=$pid ppid="*) ;; *) fail "mig_ids reports '$home', its pid is $pid" ;; esac

# Another one started by krg run itself: its parent is home's krgd.
on 1 "$KRG" run -n 1 -- "$IDS" "$W/top.txt" >"$W/top.out" 2>&1 &
toprun=$!
top_started() { test -s "$W/top.txt"; }
wait_for 15 "the second mig_ids started" top_started
top=$(sed -n 1p "$W/top.txt")
tpid=${top#pid=}; tpid=${tpid%% *}
tid_=$((H + tpid))
echo "     started by krg run, at home: $top"

# Node 2 hands out pids as programs fork, up to the migrant's.
on 1 "$KRG" run -n 2 -- python3 "$W/taker.py" "$pid" "$W/taker.out" >/dev/null 2>&1 &
taker=$!
wait_for 60 "taker.py's verdict" test -s "$W/taker.out"
echo "     node 2 forking up to pid $pid: $(cat "$W/taker.out")"

top_has() { [ "$(wc -l <"$W/top.txt")" -ge "$1" ]; }
n=1
for node in 2 3; do
	on 1 "$KRG" migrate "$id" "$node" || fail "migrate $id to node $node"
	n=$((n + 1))
	ask $n
	got=$(sed -n ${n}p "$W/ids.txt")
	[ "$got" = "$home" ] || fail "on node $node mig_ids reports '$got', at home '$home'"
	echo "ok   on node $node: $got, as at home"
	on 1 "$KRG" migrate "$tid_" "$node" || fail "migrate $tid_ to node $node"
	on 1 "$KRG" kill -USR1 "$tid_" || fail "krg kill -USR1 $tid_"
	wait_for 10 "line $n of the second mig_ids" top_has $n
	got=$(sed -n ${n}p "$W/top.txt")
	[ "$got" = "$top" ] || fail "on node $node the second mig_ids (parent: krgd) reports '$got', at home '$top'"
	echo "ok   on node $node: $got, as at home (parent: home's krgd)"
done

# Two children of one shell moved to the same node: the first one's
# holder has their parent's pid there, and the second is restored as
# that holder's child (a shell it forks with the migrant's pid), so both
# keep pid, tids and getppid(). Before, the second's getppid() was its
# own holder's, another pid. Their parent's waits see how each ended.
on 1 "$KRG" run -n 1 -- bash -c "$IDS $W/s1.txt & echo \$! >$W/s1.pid; $IDS $W/s2.txt & echo \$! >$W/s2.pid;
	wait \$(cat $W/s1.pid); echo s1=\$? >>$W/sib.st; wait \$(cat $W/s2.pid); echo s2=\$? >>$W/sib.st" >"$W/sib.out" 2>&1 &
sibrun=$!
wait_for 15 "the two siblings started" test -s "$W/s2.pid" -a -s "$W/s1.txt" -a -s "$W/s2.txt"
for s in 1 2; do
	spid=$(cat "$W/s$s.pid")
	sline=$(sed -n 1p "$W/s$s.txt")
	on 1 "$KRG" migrate "$((H + spid))" 2 || fail "migrate sibling $s ($((H + spid))) to node 2"
	eval "s${s}line=\$sline"
done
for s in 1 2; do
	spid=$(cat "$W/s$s.pid")
	on 1 "$KRG" kill -USR1 "$((H + spid))" || fail "krg kill -USR1 sibling $s"
	sib_has() { [ "$(wc -l <"$W/s$1.txt")" -ge 2 ]; }
	wait_for 10 "line 2 of sibling $s" sib_has $s
	got=$(sed -n 2p "$W/s$s.txt")
	eval "want=\$s${s}line"
	[ "$got" = "$want" ] || fail "sibling $s on node 2 reports '$got', at home '$want'"
	echo "ok   sibling $s on node 2: $got, as at home"
done
grep -q "parent pid .* is a sibling's holder here: restored as its child" "$(log_of 2)" || fail "node 2 did not adopt the second sibling"
# The first one ends first: its holder stays the second one's parent.
on 1 "$KRG" kill -TERM "$((H + $(cat "$W/s1.pid")))" || fail "krg kill -TERM sibling 1"
wait_for 10 "sibling 1's end seen by its parent" grep -q s1= "$W/sib.st"
on 1 "$KRG" kill -USR1 "$((H + $(cat "$W/s2.pid")))" || fail "krg kill -USR1 sibling 2"
sib3() { [ "$(wc -l <"$W/s2.txt")" -ge 3 ]; }
wait_for 10 "line 3 of sibling 2" sib3
[ "$(sed -n 3p "$W/s2.txt")" = "$s2line" ] || fail "sibling 2 after sibling 1 ended reports '$(sed -n 3p "$W/s2.txt")'"
on 1 "$KRG" kill -TERM "$((H + $(cat "$W/s2.pid")))" || fail "krg kill -TERM sibling 2"
wait "$sibrun" || true
[ "$(tr '\n' ' ' <"$W/sib.st")" = "s1=143 s2=143 " ] || fail "the siblings' parent saw '$(cat "$W/sib.st")', not 143 twice"
echo "ok   their parent's waits: 143 and 143"

# Back home: restored into its deputy, it is the original process again
# (same pid, tids, parent), with no deputy or holder left around it.
# Before, it came back beside the deputy under another pid (pid=N ppid=
# the holder's).
n=$((n + 1))
on 1 "$KRG" migrate "$id" 1 || fail "migrate $id back to node 1"
ask $n
got=$(sed -n ${n}p "$W/ids.txt")
[ "$got" = "$home" ] || fail "back home mig_ids reports '$got', before it left '$home'"
echo "ok   back home: $got, as before it left"
comm=$(on 1 cat "/proc/$pid/comm")
[ "$comm" = mig_ids ] || fail "back home, pid $pid is '$comm', not mig_ids"
cmd=$(on 1 cat "/proc/$pid/cmdline" | tr '\0' ' ')
case "$cmd" in *krg-deputy*) fail "back home, pid $pid still runs krg-deputy: $cmd" ;; esac
bash_pid=$(on 1 awk '/^PPid:/ {print $2}' "/proc/$pid/status")
on 1 grep -qw "$pid" "/proc/$bash_pid/task/$bash_pid/children" || fail "back home, pid $pid is not among its parent's children"
on 1 pgrep -f "krg-deputy.* $id " >/dev/null && fail "a deputy is left for $id"
grep -q "migrate: $id is home again as itself (pid $pid)" "$(log_of 1)" || fail "node 1's krgd does not say $id is home as itself"
echo "ok   back home: no deputy, its parent's child again"

# The one started by krg run itself comes back home likewise.
on 1 "$KRG" migrate "$tid_" 1 || fail "migrate $tid_ back to node 1"
on 1 "$KRG" kill -USR1 "$tid_" || fail "krg kill -USR1 $tid_"
wait_for 10 "line $n of the second mig_ids" top_has $n
got=$(sed -n ${n}p "$W/top.txt")
[ "$got" = "$top" ] || fail "back home the second mig_ids reports '$got', before it left '$top'"
echo "ok   back home: $got, as before it left (parent: home's krgd)"

# Its parent's wait() sees its own end: the shell's wait gives 143.
on 1 kill -TERM "$pid" || fail "kill -TERM $pid at home"
rc=0
wait "$run" || rc=$?
[ "$rc" = 143 ] || fail "the parent shell's wait gave $rc, not 143 ($(cat "$W/run.out"))"
echo "ok   its parent's wait: 143 after kill -TERM at home"

on 1 "$KRG" kill -TERM "$tid_" || true
wait "$toprun" 2>/dev/null || true
kill "$taker" 2>/dev/null || true
rm -rf "$W"
echo PASS
