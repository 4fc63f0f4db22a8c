#!/usr/bin/env bash
# Two vclusters at once: distinct subnets, both work, neither reaches the
# other, and downing one leaves the other intact.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
A=para
B=parb

vc_up $A 2 --no-krgd
vc_up $B 2 --no-krgd --cpus 0.25
sa=$(cat "$(vc_state $A)/subnet")
sb=$(cat "$(vc_state $B)/subnet")
assert_ne "$sa" "$sb" "subnets of $A and $B"
a_inits="$(vc_init_pid $A 1) $(vc_init_pid $A 2)"
assert_eq "$(vc_exec $A 2 -- hostname)" "$A-node2" "hostname in $A"
assert_eq "$(vc_exec $B 2 -- hostname)" "$B-node2" "hostname in $B"
assert_eq "$(vc_cpu_quota $A 1)" 100000 "default CPU quota of $A"
assert_eq "$(vc_cpu_quota $B 1)" 25000 "CPU quota of $B (--cpus 0.25)"

# Starting a second cluster under a live prefix must fail and keep it.
if "$KRGADM" vcluster up 1 --prefix $B --no-krgd 2>/dev/null; then
	fail "up of an existing prefix succeeded"
fi
vc_exec $B 1 -- true || fail "$B broken by a refused up"

# Node 1 of A cannot reach node 1 of B (other bridge, no route).
vc_exec $A 1 -- python3 - "$(vc_addr $B 1)" <<'PY'
import socket, sys
try:
    socket.create_connection((sys.argv[1], 9), timeout=1)
    sys.exit("reached the other vcluster")
except OSError:
    pass
PY

"$KRGADM" vcluster status --prefix $A --json | python3 -c '
import json, sys
s = json.load(sys.stdin)
assert [n["id"] for n in s["nodes"]] == [1, 2], s
assert all(n["running"] and n["link"] == "up" for n in s["nodes"]), s'

vc_down $A >/dev/null
# shellcheck disable=SC2086
vc_assert_gone $A $a_inits
for i in 1 2; do
	pid_alive "$(vc_init_pid $B $i)" || fail "node $i of $B died with $A"
	assert_eq "$(vc_exec $B $i -- hostname)" "$B-node$i" "node $i of $B after down of $A"
done
ip link show "krgbr-$B" >/dev/null || fail "bridge of $B removed with $A"
# Refused (not unreachable/timeout) proves node 2 answered.
vc_exec $B 1 -- python3 - "$(vc_addr $B 2)" <<'PY' || fail "node 1 of $B no longer reaches node 2"
import socket, sys
try:
    socket.create_connection((sys.argv[1], 9), timeout=2)
except ConnectionRefusedError:
    sys.exit(0)
sys.exit(1)
PY
b_inits="$(vc_init_pid $B 1) $(vc_init_pid $B 2)"
vc_down $B >/dev/null
# shellcheck disable=SC2086
vc_assert_gone $B $b_inits
echo PASS
