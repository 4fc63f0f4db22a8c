#!/usr/bin/env bash
# The MOSIX-like balancer on a 4-node vcluster of 0.5 CPU each
# (docs/sched.md): 8 CPU-bound processes with a fixed amount of work, all
# started on node 1, spread over the 4 nodes and finish within 1.25x the
# ideal makespan (total work / total capacity); a process doing heavy I/O
# stays on its node while CPU-bound ones beside it move away, and so does
# one without CAN_MIGRATE.
PREFIX=sbal
. "$KRG_SOURCE_DIR/tests/cluster/common.sh"
KRG=$KRG_BUILD_DIR/krg
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
start_cluster 4 --cpus 0.5
W=$(mktemp -d "$KRG_BUILD_DIR/sched-test.XXXXXX")
chmod 755 "$W"
trap 'rc=$?; [ $rc -ne 0 ] && dump_logs; "$ADM" vcluster down --prefix "$PREFIX" >/dev/null 2>&1 || true; rm -rf "$W"; exit $rc' EXIT
N=${SCHED_TEST_ITERS:-100000000}
work="for i in range($N): pass"

# Calibrate: the CPU time of a tenth of the work, here (a whole CPU, idle).
cpu_s=$(python3 -c "
import time
t = time.process_time()
for i in range($((N / 10))): pass
print((time.process_time() - t) * 10)")                  # CPU-seconds of one process
ideal=$(python3 -c "print(8 * $cpu_s / 2.0)")           # 8 processes, 4 x 0.5 CPU
echo "one process: ${cpu_s} CPU-s; ideal makespan ${ideal}s"

on 1 krgadm sched enable mosix
t0=$(date +%s.%N)
pids=()
for i in 1 2 3 4 5 6 7 8; do
	on 1 "$KRG" run -n 1 -- python3 -c "$work" </dev/null &
	pids+=($!)
done
check_spread() {
	on 1 "$KRG" ps -a --json | python3 -c "
import json, sys
ns = sorted({p['node'] for p in json.load(sys.stdin)['processes'] if 'range($N)' in p['command']})
sys.exit(0 if ns == [1, 2, 3, 4] else 1)"
}
# Polled gently: the polling runs on node 1 too and would steal its CPU.
spread=no
for i in $(seq 1 12); do
	sleep 1
	if check_spread; then spread=yes; break; fi
done
[ $spread = yes ] || fail "the 8 processes did not spread over the 4 nodes"
for p in "${pids[@]}"; do wait "$p" || fail "a worker failed"; done
t1=$(date +%s.%N)
makespan=$(python3 -c "print(round($t1 - $t0, 2))")
migs=$(for n in 1 2 3 4; do on $n krgadm sched status --json | python3 -c "import json,sys; print(json.load(sys.stdin)['probes']['migrations'])"; done | paste -sd+ | bc)
echo "makespan ${makespan}s, ideal ${ideal}s, migrations $migs"
# The target is 1.25x (bench/sched measures it on an idle machine); this
# 2-core host also runs the 4 krgd's and the test itself, and other jobs,
# so the test only fails beyond 2x (without balancing it would be 4x).
python3 -c "import sys; sys.exit(0 if $makespan <= ${SCHED_TEST_FACTOR:-2.0} * $ideal else 1)" ||
	fail "makespan ${makespan}s > ${SCHED_TEST_FACTOR:-2.0} x ideal ${ideal}s"

# I/O-aware: on node 1 one process re-reads a local file, two burn CPU.
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
nodes_of() { on 1 "$KRG" ps -a --json | python3 -c "
import json, sys
print(' '.join(str(p['node']) for p in json.load(sys.stdin)['processes'] if '$1' in p['command']))"; }
cpu_moved() { local w; w=$(nodes_of 'while True: pass'); [ "$(echo "$w" | wc -w)" = 2 ] && ! echo "$w" | grep -qw 1; }
wait_for 15 "both CPU-bound processes leave node 1" cpu_moved
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
