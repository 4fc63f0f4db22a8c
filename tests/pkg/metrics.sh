#!/usr/bin/env bash
# krgd's metrics page (docs/monitoring.md) on a 3-node vcluster: local only
# by default, on the configured address otherwise; a valid Prometheus page;
# Raft, membership, node figures and transport counters right after start;
# then processes, a migration, a checkpoint, a restart and a DRMAA job each
# move the figures they should.
set -euo pipefail
. "$KRG_SOURCE_DIR/tests/vcluster/lib.sh"
PROM="python3 $KRG_SOURCE_DIR/tests/pkg/prom.py"
KRG=$KRG_BUILD_DIR/krg
P=pkgm
on() { vc_exec $P "$@"; }

# A bad value is one line and exit 1, before anything else starts.
bad=$(mktemp "$KRG_BUILD_DIR/pkgm-conf.XXXXXX")
printf 'node_id = 1\nnode = 1 127.0.0.1\nmetrics_listen = 127.0.0.1:http\n' >"$bad"
rc=0; out=$("$KRG_BUILD_DIR/krgd" --config "$bad" 2>&1) || rc=$?
rm -f "$bad"
[ $rc = 1 ] || fail "krgd with a bad metrics_listen: exit $rc, not 1 ($out)"
assert_contains "$out" "metrics_listen: want off, PORT or ADDRESS:PORT" "bad metrics_listen line"

vc_up $P 3 --no-krgd >/dev/null
on 1 sh -c 'echo "metrics_listen = 9480" >>/run/krg/krgd.conf'
for n in 2 3; do on $n sh -c 'echo "metrics_listen = 0.0.0.0:9480" >>/run/krg/krgd.conf'; done
for n in 1 2 3; do krgadm vcluster krgd $n start --prefix $P >/dev/null; done
on 1 krgadm cluster wait --timeout 30 >/dev/null || fail "no quorum with metrics on"

# Node 1 is reached from inside only; nodes 2 and 3 from the host too.
scrape() {
	if [ "$1" = 1 ]; then
		on 1 curl -sf --max-time 10 http://127.0.0.1:9480/metrics
	else
		curl -sf --max-time 10 "http://$(vc_addr $P "$1"):9480/metrics"
	fi
}
val() { $PROM get "$2" <<<"$1"; }
sum() { $PROM sum "${@:2}" <<<"$1"; }
gt() { python3 -c "import sys; sys.exit(0 if float('$1') > float('$2') else 1)"; }
! curl -sf --max-time 3 "http://$(vc_addr $P 1):9480/metrics" >/dev/null ||
	fail "node 1's metrics answer on its network address; metrics_listen = PORT is 127.0.0.1 only"
on 1 curl -s --max-time 5 -o /dev/null -w '%{http_code}' http://127.0.0.1:9480/ | grep -qx 404 ||
	fail "/ is not 404"

declare -A M
for n in 1 2 3; do M[$n]=$(scrape $n) || fail "scrape node $n"; done
for n in 1 2 3; do echo "node $n: $($PROM check <<<"${M[$n]}")"; done
leaders=0
for n in 1 2 3; do leaders=$((leaders + $(val "${M[$n]}" 'krg_raft_role{role="leader"}'))); done
[ $leaders = 1 ] || fail "$leaders nodes say they lead"
gt "$(val "${M[1]}" krg_raft_term)" 0 || fail "raft term 0"
gt "$(val "${M[1]}" krg_raft_commit_index)" 0 || fail "raft commit index 0"
[ "$(sum "${M[1]}" krg_cluster_node_state state=up)" = 3 ] || fail "node 1 does not see 3 nodes up"
[ "$(val "${M[1]}" krg_cluster_quorum)" = 1 ] || fail "no quorum on the page"
gt "$(val "${M[1]}" 'krg_transport_frames_total{peer="2",channel="control",direction="rx"}')" 0 ||
	fail "no frames from node 2 counted"
gt "$(val "${M[1]}" krg_node_memory_total_bytes)" 0 || fail "no memory figure"
gt "$(val "${M[1]}" 'krg_node_cpu_seconds_total{mode="user"}')" 0 || fail "no CPU time"
wait_figs() {  # every node's load figures, broadcast each second
	for _ in $(seq 50); do
		[ "$(scrape 1 | grep -c '^krg_cluster_node_cpus{')" = 3 ] && return 0
		sleep 0.2
	done
	fail "node 1 does not show the 3 nodes' load figures"
}
wait_figs
echo "ok   page valid; one leader; term, commit index, 3 nodes up, frames, node and cluster figures"

ops() {  # sum of a counter over the 3 nodes
	local t=0 n
	for n in 1 2 3; do t=$(python3 -c "print($t + $(sum "$(scrape $n)" "$@"))"); done
	echo "$t"
}
procs0=$(sum "$(scrape 2)" krg_processes)
mig0=$(ops krg_migrations_total result=ok)
ck0=$(ops krg_checkpoints_total result=ok)
rs0=$(ops krg_restarts_total result=ok)
tx0=$(sum "$(scrape 1)" krg_transport_bytes_total)

on 1 "$KRG" run -n 2 -- python3 -c 'import time
while True: time.sleep(0.05)' </dev/null >/dev/null 2>&1 &
id=""
for _ in $(seq 50); do
	id=$(on 1 "$KRG" ps -a --json | python3 -c "
import json, sys
print(*[p['id'] for p in json.load(sys.stdin)['processes'] if 'time.sleep(0.05)' in p['command']][:1])") && [ -n "$id" ] && break
	sleep 0.2
done
[ -n "$id" ] || fail "the krg process did not show in krg ps"
gt "$(sum "$(scrape 2)" krg_processes)" "$procs0" || fail "krg_processes on node 2 did not grow"
on 1 "$KRG" migrate "$id" 3 >/dev/null || fail "migrate $id to node 3"
m2=$(scrape 2)
# Kept for docs/monitoring.md's sample and screenshot.
echo "$m2" >"$KRG_BUILD_DIR/pkg-metrics-node2.txt"
[ "$(ops krg_migrations_total result=ok)" = "$(python3 -c "print($mig0 + 1)")" ] || fail "migrations_total did not count 1"
gt "$(val "$m2" krg_migration_bytes_total)" 0 || fail "no migration bytes on node 2"
gt "$(val "$m2" krg_migration_duration_seconds_count)" 0 || fail "no migration duration"
gt "$(val "$m2" krg_migration_frozen_seconds_count)" 0 || fail "no frozen time"
echo "ok   a process on node 2 shows in krg_processes; its migration counted (bytes $(val "$m2" krg_migration_bytes_total), $(val "$m2" krg_migration_duration_seconds_sum) s)"

on 1 "$KRG" checkpoint "$id" --kill --ignore-unsupported >/dev/null || fail "checkpoint $id"
[ "$(ops krg_checkpoints_total result=ok)" = "$(python3 -c "print($ck0 + 1)")" ] || fail "checkpoints_total did not count 1"
gt "$(ops krg_checkpoint_bytes_total)" 0 || fail "no checkpoint bytes"
on 1 "$KRG" restart "$id" -n 2 >/dev/null || fail "restart $id on node 2"
[ "$(ops krg_restarts_total result=ok)" = "$(python3 -c "print($rs0 + 1)")" ] || fail "restarts_total did not count 1"
echo "ok   checkpoint and restart counted (image $(ops krg_checkpoint_bytes_total) bytes)"

dr0=$(val "$(scrape 1)" 'krg_drmaa_jobs{state="done"}')
on 1 env DRMAA_LIBRARY_PATH="$KRG_BUILD_DIR/src/drmaa/libdrmaa.so" /usr/bin/python3 -c '
import drmaa
with drmaa.Session() as s:
    jt = s.createJobTemplate(); jt.remoteCommand = "/bin/true"
    j = s.runJob(jt); s.wait(j, 30)' || fail "DRMAA job"
# wait() reaps the job; its files stay (krg jobs lists it) as done.
[ "$(val "$(scrape 1)" 'krg_drmaa_jobs{state="done"}')" = "$(python3 -c "print(int($dr0) + 1)")" ] ||
	fail "krg_drmaa_jobs{state=done} did not count the job"
gt "$(sum "$(scrape 1)" krg_transport_bytes_total)" "$tx0" || fail "transport bytes did not grow"
echo "ok   a DRMAA job counted as done; transport bytes grew"
