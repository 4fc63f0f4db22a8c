#!/usr/bin/env bash
# Faults: the target's krgd dies -> krg says which node and exits 255 in
# time; the caller dies -> the remote gets SIGHUP and is gone; the target
# cut off from the caller kills what it ran for it.
PREFIX=rflt
. "$(dirname "$0")/common.sh"
start_run_cluster 3

# 1. krgd on the target node dies.
on 1 sh -c "krg run -n 3 -- sleep 100 >'$TMPD/o1' 2>'$TMPD/e1'; echo \$? >'$TMPD/rc1'" &
wait_for 5 "remote sleep on node 3" bash -c "$ADM vcluster exec 3 --prefix $PREFIX -- pgrep -x sleep"
t0=$SECONDS
"$ADM" vcluster krgd 3 kill --prefix "$PREFIX"
wait_for 10 "krg exits" test -s "$TMPD/rc1"
dt=$((SECONDS - t0))
[ $dt -le 6 ] || fail "krg noticed after ${dt}s"
assert_eq "$(cat "$TMPD/rc1")" 255 "exit status when node 3 died"
assert_eq "$(wc -l <"$TMPD/e1")" 1 "one line"
assert_contains "$(cat "$TMPD/e1")" "node 3" "message names node 3"
# krgd took its process with it.
wait_for 5 "sleep gone with node 3's krgd" bash -c "! $ADM vcluster exec 3 --prefix $PREFIX -- pgrep -x sleep"
"$ADM" vcluster krgd 3 start --prefix "$PREFIX"
wait_for 15 "node 3 up again" state_is 1 3 up

# 2. The caller (krg) is killed: SIGHUP to the remote, nothing left behind.
cat >"$TMPD/hup.sh" <<'EOS'
trap 'echo hup >"$1"; exit 0' HUP
while :; do sleep 0.1; done
EOS
on 1 sh -c "krg run -n 2 -- bash '$TMPD/hup.sh' '$TMPD/hup' & echo \$! >'$TMPD/kpid'"
wait_for 5 "remote script" bash -c "$ADM vcluster exec 2 --prefix $PREFIX -- pgrep -f hup.sh"
on 1 kill -KILL "$(cat "$TMPD/kpid")"
wait_for 5 "remote got SIGHUP" test -s "$TMPD/hup"
wait_for 5 "remote gone" bash -c "! $ADM vcluster exec 2 --prefix $PREFIX -- pgrep -f hup.sh"
# Same with a plain sleep (default SIGHUP action).
on 1 sh -c "krg run -n 2 -- sleep 77 & echo \$! >'$TMPD/kpid'"
wait_for 5 "remote sleep 77" bash -c "$ADM vcluster exec 2 --prefix $PREFIX -- pgrep -f 'sleep 77'"
on 1 kill -KILL "$(cat "$TMPD/kpid")"
wait_for 5 "sleep 77 gone" bash -c "! $ADM vcluster exec 2 --prefix $PREFIX -- pgrep -f 'sleep 77'"

# 3. The link of the caller's node is cut: krg fails, the target kills
# the orphaned process after failure_timeout_ms.
on 3 krgadm cluster wait --timeout 15
wait_for 10 "node 3 linked to node 2" state_is 3 2 up
on 3 sh -c "krg run -n 2 -- sleep 88 >/dev/null 2>'$TMPD/e3'; echo \$? >'$TMPD/rc3'" &
wait_for 5 "remote sleep 88" bash -c "$ADM vcluster exec 2 --prefix $PREFIX -- pgrep -f 'sleep 88'"
"$ADM" vcluster link 3 down --prefix "$PREFIX"
wait_for 10 "krg on the cut node exits" test -s "$TMPD/rc3"
assert_eq "$(cat "$TMPD/rc3")" 255 "exit status on the cut node"
wait_for 10 "orphan killed on node 2" bash -c "! $ADM vcluster exec 2 --prefix $PREFIX -- pgrep -f 'sleep 88'"
"$ADM" vcluster link 3 up --prefix "$PREFIX"
# Nothing of ours left on any node.
for n in 1 2 3; do
	left=$(on "$n" sh -c 'pgrep -x sleep; pgrep -f "bash .*[h]up.sh"' || true)
	assert_eq "$left" "" "processes left on node $n"
done
echo PASS
