#!/usr/bin/env bash
# Signals sent to the krg process reach the remote process; SIGSTOP and
# SIGCONT of krg stop and continue it.
PREFIX=rsig
. "$(dirname "$0")/common.sh"
start_run_cluster 3

cat >"$TMPD/trap.sh" <<'EOS'
for s in INT TERM HUP USR1 USR2; do trap "echo got-$s" $s; done
echo ready
i=0; while [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
EOS
# Run krg in node 1 in the background; its pid in node 1 goes to a file.
on 1 sh -c "krg run -n 3 -- bash '$TMPD/trap.sh' >'$TMPD/out' 2>&1 & echo \$! >'$TMPD/pid'"
kpid=$(cat "$TMPD/pid")
wait_for 10 "remote ready" grep -q ready "$TMPD/out"
for s in INT TERM HUP USR1 USR2; do
	on 1 kill -$s "$kpid"
	wait_for 5 "remote got $s" grep -q "got-$s" "$TMPD/out"
done
rpid=$(on 3 pgrep -f "bash $TMPD/trap.sh")
[ -n "$rpid" ] || fail "remote process not found"
state() { on 3 sh -c "grep '^State:' /proc/$rpid/status" | awk '{print $2}'; }
on 1 kill -STOP "$kpid"
wait_for 5 "remote stopped" bash -c "[ \"\$($ADM vcluster exec 3 --prefix $PREFIX -- sh -c 'grep ^State: /proc/$rpid/status' | awk '{print \$2}')\" = T ]"
on 1 kill -CONT "$kpid"
wait_for 5 "remote running again" bash -c "[ \"\$($ADM vcluster exec 3 --prefix $PREFIX -- sh -c 'grep ^State: /proc/$rpid/status' | awk '{print \$2}')\" != T ]"
# Still alive and serving signals after the stop.
on 1 kill -USR1 "$kpid"
wait_for 5 "second USR1" bash -c "[ \$(grep -c got-USR1 '$TMPD/out') -ge 2 ]"
# SIGKILL ends the remote script: exit status back through krg.
on 3 kill -KILL "$rpid"
wait_for 5 "krg gone" bash -c "! $ADM vcluster exec 1 --prefix $PREFIX -- kill -0 $kpid 2>/dev/null"
# A remote that does not trap SIGTERM dies of it: 143.
set +e
on 1 sh -c "krg run -n 2 -- sleep 30 & k=\$!; sleep 0.5; kill -TERM \$k; wait \$k"
rc=$?
set -e
assert_eq "$rc" 143 "SIGTERM to krg kills remote sleep"
# Signals do not queue behind stdin: the remote does not read its stdin,
# krg's stdin is an endless flood (every window full), and SIGTERM must
# still reach it at once. A watchdog SIGKILLs a stuck krg (137).
for n in 2 1; do
	set +e
	on 1 sh -c "yes | krg run -n $n -- sleep 100 >/dev/null 2>&1 & k=\$!
		sleep 1; kill -TERM \$k; (sleep 5; kill -KILL \$k) >/dev/null 2>&1 & w=\$!
		wait \$k; rc=\$?; kill \$w 2>/dev/null; exit \$rc"
	rc=$?
	set -e
	assert_eq "$rc" 143 "SIGTERM to krg -n $n with stdin back-pressured"
done
echo PASS
