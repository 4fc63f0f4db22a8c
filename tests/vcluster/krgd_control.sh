#!/usr/bin/env bash
# krgd inside nodes: up waits for every API socket; `krgd I kill|start`
# stops and restarts it (reaped by the node init, same log); `link I
# down|up` cuts and heals the node's network; status reports all of it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
P=kctl

out=$(mktemp)
vc_up $P 2 >"$out"
assert_eq "$(wc -l <"$out")" 2 "lines printed by up"
rm -f "$out"
for i in 1 2; do
	vc_exec $P $i -- test -S /run/krg/krgd.sock || fail "no API socket on node $i after up"
done
krgd_pid() {
	"$KRGADM" vcluster status --prefix $P --json |
		python3 -c "import json,sys; print([n['krgd_pid'] for n in json.load(sys.stdin)['nodes'] if n['id']==$1][0])"
}
link_of() {
	"$KRGADM" vcluster status --prefix $P --json |
		python3 -c "import json,sys; print([n['link'] for n in json.load(sys.stdin)['nodes'] if n['id']==$1][0])"
}
old=$(krgd_pid 1)
[ "$old" != 0 ] || fail "status shows no krgd on node 1"

"$KRGADM" vcluster krgd 1 kill --prefix $P >/dev/null
assert_eq "$(krgd_pid 1)" 0 "krgd pid of node 1 after kill"
! pid_alive "$old" || fail "krgd $old survived kill"
if "$KRGADM" vcluster krgd 1 kill --prefix $P 2>/dev/null; then
	fail "kill with no krgd running succeeded"
fi
lines=$(wc -l <"$(vc_state $P)/node1/krgd.log")
"$KRGADM" vcluster krgd 1 start --prefix $P >/dev/null
new=$(krgd_pid 1)
[ "$new" != 0 ] || fail "no krgd on node 1 after start"
assert_eq "$(awk '/^PPid:/ {print $2}' /proc/"$new"/status)" "$(vc_init_pid $P 1)" "parent of restarted krgd"
vc_exec $P 1 -- test -S /run/krg/krgd.sock || fail "no API socket after krgd start"
[ "$(wc -l <"$(vc_state $P)/node1/krgd.log")" -gt "$lines" ] || fail "restarted krgd does not log to node1/krgd.log"
if "$KRGADM" vcluster krgd 1 start --prefix $P 2>/dev/null; then
	fail "second start succeeded"
fi

# Cut node 2 off: node 1 can no longer reach it; heal: it can again.
reach() { # reach FROM TO: exit 0 iff TO answers (refused counts) within 1 s
	vc_exec $P "$1" -- python3 - "$(vc_addr $P "$2")" <<'PY'
import socket, sys
try:
    socket.create_connection((sys.argv[1], 9), timeout=1)
except ConnectionRefusedError:
    sys.exit(0)
except OSError:
    sys.exit(1)
PY
}
reach 1 2 || fail "node 1 does not reach node 2"
"$KRGADM" vcluster link 2 down --prefix $P
assert_eq "$(link_of 2)" down "link of node 2 in status"
! reach 1 2 || fail "node 1 reaches node 2 across a cut link"
"$KRGADM" vcluster link 2 up --prefix $P
assert_eq "$(link_of 2)" up "link of node 2 in status"
ok=
for _ in $(seq 50); do
	if reach 1 2; then ok=1; break; fi
	sleep 0.1
done
[ -n "$ok" ] || fail "node 1 does not reach node 2 after the link is healed"

for cmd in up exec down status krgd link; do
	"$KRGADM" vcluster $cmd --help | grep -q "usage: krgadm vcluster $cmd" || fail "$cmd --help"
done
inits="$(vc_init_pid $P 1) $(vc_init_pid $P 2)"
vc_down $P >/dev/null
# shellcheck disable=SC2086
vc_assert_gone $P $inits $new
echo PASS
