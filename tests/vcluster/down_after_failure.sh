#!/usr/bin/env bash
# down cleans up after a crashed test or a half-done up: state dir deleted,
# state corrupt, krgadm SIGKILLed in the middle of up, and up failing by
# itself (which must tear down on its own and say why in one line).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
P=daf

# 1. state dir removed under a running cluster: found by name.
vc_up $P 2 --no-krgd >/dev/null
inits="$(vc_init_pid $P 1) $(vc_init_pid $P 2)"
vc_exec $P 1 -- sh -c 'sleep 1000 >/dev/null 2>&1 </dev/null &'
rm -rf "$(vc_state $P)"
vc_down $P >/dev/null
# shellcheck disable=SC2086
vc_assert_gone $P $inits
pgrep -f 'sleep 1000' >/dev/null && [ -n "$(for p in $(pgrep -x sleep); do pid_alive "$p" && grep -q "krg-$P" /proc/"$p"/cgroup && echo "$p"; done)" ] &&
	fail "a node process survived down"

# 2. corrupt state.
vc_up $P 2 --no-krgd >/dev/null
inits="$(vc_init_pid $P 1) $(vc_init_pid $P 2)"
echo garbage >"$(vc_state $P)/subnet"
echo garbage >"$(vc_state $P)/node1/init.pid"
vc_down $P >/dev/null
# shellcheck disable=SC2086
vc_assert_gone $P $inits

# 3. krgadm SIGKILLed during up, at several points.
for delay in 0 0.01 0.03 0.06 0.1; do
	"$KRGADM" vcluster up 4 --prefix $P --no-krgd >/dev/null 2>&1 &
	up=$!
	sleep $delay
	kill -9 $up 2>/dev/null || true
	wait $up 2>/dev/null || true
	vc_down $P >/dev/null || fail "down after up killed at ${delay}s"
	vc_assert_gone $P
done

# 4. up fails by itself (node 2's veth name is taken): non-zero, one line,
#    nothing left.
ip link add krg$P-2 type veth peer name krg${P}x
err=$("$KRGADM" vcluster up 3 --prefix $P --no-krgd 2>&1 >/dev/null) && fail "up succeeded despite a taken link name"
assert_eq "$(printf '%s\n' "$err" | wc -l)" 1 "lines of error output ($err)"
assert_contains "$err" "krg$P-2" "error names the link"
vc_assert_gone $P
! ip link show krg${P}x >/dev/null 2>&1 || fail "peer krg${P}x is left"

# 5. nothing there: down is a no-op that succeeds.
vc_down $P >/dev/null || fail "down of nothing failed"
echo PASS
