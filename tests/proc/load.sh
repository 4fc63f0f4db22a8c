#!/usr/bin/env bash
# Load on a starved cluster (issue 13, item 6): nodes of 0.5 CPU each.
#  - 50 concurrent `krg migrate` of 50 processes from node 1 to node 2:
#    every migration succeeds and every process lives on (was: krgd on the
#    target starved by ~50 workers, links closed on one second of silence,
#    all 50 processes killed); the moves queued behind the per-node bound
#    say so (krg migrate --progress);
#  - LOAD_RUNS concurrent `krg run` (default 600) spread over the nodes: every
#    one succeeds with its own output (was: 296 of 600 failed).
# Prints the time each load took; asserts only success, never a duration.
PREFIX=pload
. "$(dirname "$0")/common.sh"
RUNS=${LOAD_RUNS:-600}
MIGS=${LOAD_MIGS:-50}
start_cluster 3 --cpus 0.5
# Where processes run is checked here: no balancer moving them meanwhile.
on 1 krgadm sched disable mosix >/dev/null
W=$(mktemp -d "$KRG_BUILD_DIR/load-test.XXXXXX")
chmod 755 "$W"
trap 'rc=$?; [ $rc -ne 0 ] && dump_logs; "$ADM" vcluster down --prefix "$PREFIX" >/dev/null 2>&1 || true; rm -rf "$W"; exit $rc' EXIT

# ---- 50 concurrent migrations -------------------------------------------
cat >"$W/sleeper.py" <<'PY'
import os, sys, time
d, tag = sys.argv[1], sys.argv[2]
buf = bytearray(os.urandom(1 << 20))  # 1 MiB of its own to carry
open(os.path.join(d, tag + ".ready"), "w").close()
while not os.path.exists(os.path.join(d, "go")):
    time.sleep(0.05)
sys.exit(int(tag) % 100)
PY
pids=()
for i in $(seq 1 "$MIGS"); do
	on 1 krg run -n 1 -- python3 "$W/sleeper.py" "$W" "$i" >/dev/null 2>&1 &
	pids+=($!)
done
wait_for 60 "$MIGS sleepers ready" bash -c "[ \$(ls $W/*.ready 2>/dev/null | wc -l) -ge $MIGS ]"
ids=$(on 1 krg ps --json | python3 -c "
import json, sys
print(' '.join(str(p['id']) for p in json.load(sys.stdin)['processes'] if 'sleeper.py' in p['command'] and p['command'].split()[0].endswith('python3')))")
n=$(echo "$ids" | wc -w)
assert_eq "$n" "$MIGS" "sleepers listed by krg ps"
t0=$(date +%s.%N)
mpids=()
for id in $ids; do
	on 1 krg migrate --progress "$id" 2 >"$W/mig.$id" 2>&1 &
	mpids+=($!)
done
failed=0
for i in "${!mpids[@]}"; do
	wait "${mpids[$i]}" || failed=$((failed + 1))
done
t1=$(date +%s.%N)
echo "$MIGS concurrent migrations: $failed failed, $(awk -v a="$t0" -v b="$t1" "BEGIN { printf \"%.1f\", b - a }") s"
[ "$failed" = 0 ] || fail "$failed of $MIGS concurrent migrations failed: $(cat "$W"/mig.* | sort | uniq -c | head -5)"
on_2=$(on 1 krg ps --json | python3 -c "
import json, sys
print(sum(1 for p in json.load(sys.stdin)['processes'] if 'sleeper.py' in p['command'] and p['command'].split()[0].endswith('python3') and p['node'] == 2))")
assert_eq "$on_2" "$MIGS" "sleepers on node 2 after the migrations"
touch "$W/go"
bad=0
for i in "${!pids[@]}"; do
	rc=0
	wait "${pids[$i]}" || rc=$?
	[ "$rc" = $(((i + 1) % 100)) ] || bad=$((bad + 1))
done
[ "$bad" = 0 ] || fail "$bad of $MIGS migrated processes did not end with their own status"
grep -q "queued" "$(log_of 1)" || fail "no migration was queued behind the per-node bound"
# A queued move tells its caller so (krg migrate --progress, mig.status).
grep -qE "^.*krg migrate: [0-9]+: queued on node 1, [0-9]+ before it, [1-4] migrating" "$W"/mig.* ||
	fail "no krg migrate --progress said its move was queued: $(head -c 300 "$W"/mig.* | head -5)"
echo "ok   $MIGS concurrent migrations 1 -> 2 on 0.5-CPU nodes: all moved, all ended with their status"

# ---- 600 concurrent krg run ---------------------------------------------
t0=$(date +%s.%N)
for i in $(seq 1 "$RUNS"); do
	from=$(((i % 3) + 1))
	to=$((((i + 1) % 3) + 1))
	on "$from" krg run -n "$to" -- echo "run $i" >"$W/run.$i" 2>&1 &
done
failed=0
for j in $(jobs -p); do
	wait "$j" || failed=$((failed + 1))
done
t1=$(date +%s.%N)
wrong=0
for i in $(seq 1 "$RUNS"); do
	[ "$(cat "$W/run.$i")" = "run $i" ] || wrong=$((wrong + 1))
done
echo "$RUNS concurrent krg run: $failed failed, $wrong wrong output, $(awk -v a="$t0" -v b="$t1" "BEGIN { printf \"%.1f\", b - a }") s"
[ "$failed" = 0 ] && [ "$wrong" = 0 ] || fail "$RUNS concurrent runs: $failed failed, $wrong wrong: $(cat "$W"/run.* | grep -v '^run ' | sort | uniq -c | head -5)"
echo "ok   $RUNS concurrent krg run across 3 nodes of 0.5 CPU: all succeeded"
echo PASS
