#!/usr/bin/env bash
# The MOSIX-like balancer on a 4-node vcluster of 0.5 CPU each
# (docs/sched.md): 8 CPU-bound processes, all started on node 1, spread:
# the balancer migrates some and at least 3 nodes run them. A process
# doing heavy I/O stays on its node while CPU-bound ones beside it move
# away, and so does one without CAN_MIGRATE.
#
# Behaviour only: the processes loop until the test has seen them spread
# (so how fast this shared 2-core host runs them cannot change the
# outcome), then are killed. The makespan is bench/sched's figure.
PREFIX=sbal
. "$KRG_SOURCE_DIR/tests/cluster/common.sh"
KRG=$KRG_BUILD_DIR/krg
[ "$(id -u)" = 0 ] || { echo "FAIL: cannot run: needs root"; exit 1; }
start_cluster 4 --cpus 0.5
W=$(mktemp -d "$KRG_BUILD_DIR/sched-test.XXXXXX")
chmod 755 "$W"
trap 'rc=$?; [ $rc -ne 0 ] && dump_logs; "$ADM" vcluster down --prefix "$PREFIX" >/dev/null 2>&1 || true; rm -rf "$W"; exit $rc' EXIT

ids_of() { on 1 "$KRG" ps -a --json | python3 -c "
import json, sys
print(' '.join(str(p['id']) for p in json.load(sys.stdin)['processes'] if '$1' in p['command']))"; }
nodes_of() { on 1 "$KRG" ps -a --json | python3 -c "
import json, sys
print(' '.join(str(p['node']) for p in json.load(sys.stdin)['processes'] if '$1' in p['command']))"; }
migrations() { for n in 1 2 3 4; do on $n krgadm sched status --json |
	python3 -c "import json,sys; print(json.load(sys.stdin)['probes']['migrations'])"; done | paste -sd+ | bc; }

on 1 krgadm sched enable mosix
pids=()
for i in 1 2 3 4 5 6 7 8; do
	on 1 "$KRG" run -n 1 -- python3 -c "while 'spread': pass" </dev/null >/dev/null 2>&1 &
	pids+=($!)
done
# Every node that has run one of them, over the whole wait: the balancer
# may still be moving some when others already arrived.
seen=" "
spread() {
	local n
	for n in $(nodes_of spread); do
		case "$seen" in *" $n "*) ;; *) seen="$seen$n " ;; esac
	done
	[ "$(echo $seen | wc -w)" -ge 3 ]
}
# Polled gently (every 2 s: the polling runs on node 1 too and steals its
# CPU) and generously: on a loaded host a move may take seconds.
ok=no
for i in $(seq 1 90); do
	if spread; then ok=yes; break; fi
	sleep 2
done
migs=$(migrations)
echo "nodes that ran the 8 processes:$seen; migrations by the balancer: $migs"
[ $ok = yes ] || fail "the 8 processes did not spread to 3 nodes or more (seen on:$seen)"
[ "$migs" -ge 2 ] || fail "the balancer migrated $migs processes, expected at least 2"
for id in $(ids_of spread); do on 1 "$KRG" kill -9 "$id" || true; done
for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done

# I/O-aware: on node 1 one process re-reads a local file, two burn CPU.
# The configured threshold, not one the spreading above adapted: this
# checks which processes move, not whether the bar was raised.
on 1 krgadm sched set mosix.adaptive 0
head -c 4M /dev/urandom >"$W/data"
on 1 "$KRG" run -n 1 -- python3 -c "
while True:
    with open('$W/data', 'rb') as f:
        f.read()" </dev/null >/dev/null 2>&1 &
iop=$!
sleep 2  # its I/O rate is sampled before the CPU-bound ones arrive
for i in 1 2; do on 1 "$KRG" run -n 1 -- python3 -c 'while True: pass' </dev/null >/dev/null 2>&1 & done
# ... and one CPU-bound without CAN_MIGRATE: no policy may move it.
on 1 "$KRG" run -n 1 -- "$KRG" capset -d CAN_MIGRATE -- python3 -c 'while 1: pass' </dev/null >/dev/null 2>&1 &
cpu_moved() { local w; w=$(nodes_of 'while True: pass'); [ "$(echo "$w" | wc -w)" = 2 ] && ! echo "$w" | grep -qw 1; }
wait_for 120 "both CPU-bound processes leave node 1" cpu_moved
sleep 3
assert_eq "$(nodes_of "f.read()")" 1 "the I/O-heavy process stays with its data"
assert_eq "$(nodes_of "while 1: pass")" 1 "the process without CAN_MIGRATE stays"
for id in $(on 1 "$KRG" ps -a --json | python3 -c "
import json, sys
print(' '.join(str(p['id']) for p in json.load(sys.stdin)['processes'] if 'while True' in p['command'] or 'while 1' in p['command']))"); do
	on 1 "$KRG" kill -9 "$id" || true
done
wait 2>/dev/null || true
echo PASS
