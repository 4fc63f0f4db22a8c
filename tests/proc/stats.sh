#!/usr/bin/env bash
# Node load: krgadm cluster status --json on node 1 shows, for every node,
# the figures that node sees itself: cpus from its cgroup quota (one node
# is given another quota while running), memory from its /proc/meminfo,
# load1 from its /proc/loadavg, procs = its /proc/[0-9]* count; the total
# object is the sum. The human table has a TOTAL line.
PREFIX=ptstat
. "$(dirname "$0")/common.sh"
start_cluster 3 --cpus 0.5
set_cpus 3 0.25

# What each node sees, read inside it.
facts() {
	on "$1" python3 -c '
import json, glob, re
m = {l.split(":")[0]: int(l.split()[1]) for l in open("/proc/meminfo") if l.split()[0][:-1] in ("MemTotal","MemFree","MemAvailable")}
print(json.dumps({"load1": float(open("/proc/loadavg").read().split()[0]),
  "procs": len([p for p in glob.glob("/proc/[0-9]*")]), "mem_total": m["MemTotal"], "mem_free": m["MemFree"],
  "mem_avail": m["MemAvailable"]}))'
}

check() {
	local status
	status=$(on 1 krgadm cluster status --json)
	for i in 1 2 3; do
		local f want
		f=$(facts "$i")
		want=$(cg_cpus "$i")
		STATUS="$status" FACTS="$f" WANT="$want" NODE=$i python3 - <<'PY' || return 1
import json, os, sys
s = json.loads(os.environ["STATUS"]); f = json.loads(os.environ["FACTS"]); i = int(os.environ["NODE"])
want = os.environ["WANT"]
n = [x for x in s["nodes"] if x["id"] == i][0]
def bad(msg):
    print(f"node {i}: {msg}", file=sys.stderr); sys.exit(1)
for k in ("cpus", "load1", "load5", "load15", "mem_total_kb", "mem_free_kb", "mem_available_kb", "procs", "krg_procs", "stats_age_ms"):
    if n.get(k) is None: bad(f"no {k}")
if want != "max" and abs(n["cpus"] - float(want)) > 0.01: bad(f"cpus {n['cpus']} != cgroup quota {want}")
if n["stats_age_ms"] > 2500: bad(f"stats {n['stats_age_ms']} ms old")
# total: a cgroup memory limit may lower it, never raise it
if not (0 < n["mem_total_kb"] <= f["mem_total"]): bad(f"mem_total {n['mem_total_kb']} vs MemTotal {f['mem_total']}")
if n["mem_total_kb"] == f["mem_total"]:
    tol = f["mem_total"] * 0.03
    if abs(n["mem_free_kb"] - f["mem_free"]) > tol: bad(f"mem_free {n['mem_free_kb']} vs {f['mem_free']}")
    if abs(n["mem_available_kb"] - f["mem_avail"]) > tol: bad(f"mem_available {n['mem_available_kb']} vs {f['mem_avail']}")
if abs(n["load1"] - f["load1"]) > 0.5 + 0.2 * f["load1"]: bad(f"load1 {n['load1']} vs /proc/loadavg {f['load1']}")
if abs(n["procs"] - f["procs"]) > 3: bad(f"procs {n['procs']} vs /proc count {f['procs']}")
PY
	done
	STATUS="$status" python3 - <<'PY' || return 1
import json, os, sys
s = json.loads(os.environ["STATUS"]); t = s["total"]
up = [n for n in s["nodes"] if n["state"] == "up"]
assert t["nodes"] == len(up) == 3, t
for k in ("cpus", "load1", "mem_total_kb", "mem_free_kb", "mem_available_kb", "procs", "krg_procs"):
    tot = sum(n[k] for n in up)
    # each node's figure and the total come from one reply: exact
    if abs(t[k] - tot) > 0.01: print(f"total {k} {t[k]} != sum {tot}", file=sys.stderr); sys.exit(1)
# old keys are still there
for k in ("cluster", "self", "quorum", "leader", "role", "term", "epoch", "nodes_up"): assert k in s, k
PY
}

# Loads arrive every second; the quota change of node 3 within ~2 s.
ok=0
for _ in $(seq 1 20); do
	if check 2>/tmp/ptstat.err; then
		ok=1
		break
	fi
	sleep 0.5
done
[ $ok = 1 ] || fail "cluster status figures: $(cat /tmp/ptstat.err)"
rm -f /tmp/ptstat.err

# Human output: a per-node load table and a TOTAL line, on every node.
for i in 1 2 3; do
	out=$(on "$i" krgadm cluster status)
	assert_contains "$out" "LOAD1" "load table on node $i"
	echo "$out" | grep -qE '^TOTAL +1\.25 ' || fail "TOTAL line with 1.25 cpus on node $i: $out"
	echo "$out" | grep -qE '^3 +0\.25 ' || fail "node 3 with 0.25 cpus on node $i: $out"
done
# krg top --once: nodes and the processes header
out=$(on 2 krg top --once)
assert_contains "$out" "krg top" "top header"
echo "$out" | grep -qE '^3 +up +0\.25' || fail "krg top shows node 3 with 0.25 cpus: $out"
echo PASS
