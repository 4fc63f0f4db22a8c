#!/usr/bin/env bash
# DRMAA jobs of a dead node (docs/drmaa.md, "A job's node dies"; issue 19
# item 3): on a 3-node vcluster, Debian's python3-drmaa submits three
# jobs placed round-robin (one per node) and one bound to node 3
# (-n 3), then node 3's krgd is killed. The job that ran on node 3 is
# run again from the start on an up node once the cluster marks node 3
# down: it ends DONE with exit 0, `krg jobs` shows it requeued once with
# the reason, and its output file holds one whole run (what the lost run
# wrote is gone). The bound job fails with a reason that says so; the
# jobs on nodes 1 and 2 are not disturbed.
PREFIX=drrq
. "$KRG_SOURCE_DIR/tests/run/common.sh"
PY=/usr/bin/python3
LIB="$KRG_BUILD_DIR/src/drmaa/libdrmaa.so"
DRMAA_LIBRARY_PATH="$LIB" "$PY" -c 'import drmaa' 2>/dev/null ||
	fail "cannot run: python3-drmaa (Debian) is not installed (scripts/install-deps.sh installs it)"
start_run_cluster 3
on 1 krgadm sched disable mosix >/dev/null
on 1 krgadm sched enable round_robin >/dev/null

# Each job prints 16 numbered lines, one every 0.4 s (about 6.5 s).
cat >"$TMPD/submit.py" <<'PY'
import sys, drmaa
d = sys.argv[1]
s = drmaa.Session(); s.initialize()
jt = s.createJobTemplate()
jt.remoteCommand = "/bin/sh"
jt.args = ["-c", "for i in $(seq 1 16); do echo line $i; sleep 0.4; done"]
jt.joinFiles = True
ids = []
for k in range(3):
    jt.outputPath = ":%s/out.%d" % (d, k)
    jt.nativeSpecification = "--auto"
    ids.append(s.runJob(jt))
jt.outputPath = ":%s/out.bound" % d
jt.nativeSpecification = "-n 3"
ids.append(s.runJob(jt))
open(d + "/session", "w").write(s.contact + " " + " ".join(ids) + "\n")
s.exit()
PY
on 1 env DRMAA_LIBRARY_PATH="$LIB" KRG_DRMAA_REQUEUE_GRACE_MS=1000 "$PY" "$TMPD/submit.py" "$TMPD" ||
	fail "submitting failed"
read -r contact ids <"$TMPD/session"
echo "session $contact, jobs $ids"
jobs_json() { on 1 krg jobs --json; }
jobs_py() { jobs_json | "$PY" -c "import json,sys; J={j['id']: j for j in json.load(sys.stdin)['jobs']}; print($1)"; }
all_on_nodes() { [ "$(jobs_py "sorted(j['node'] or 0 for j in J.values() if j['state'] == 'running')")" = "[1, 2, 3, 3]" ]; }
wait_for 30 "the four jobs running on nodes 1, 2, 3 and 3" all_on_nodes
victim=$(jobs_py "[i for i, j in J.items() if j['node'] == 3 and j['native'] == '--auto'][0]")
bound=$(jobs_py "[i for i, j in J.items() if j['native'] == '-n 3'][0]")
others=$(jobs_py "' '.join(i for i, j in J.items() if j['node'] != 3)")
old_id=$(jobs_py "J['$victim']['krg_id']")
k=0
for j in $ids; do [ "$j" = "$victim" ] && break; k=$((k + 1)); done
wait_for 10 "the job on node 3 wrote its first lines" grep -q "line 2" "$TMPD/out.$k"

echo "== node 3's krgd killed t=${SECONDS}s"
"$ADM" vcluster krgd 3 kill --prefix "$PREFIX"
wait_for 30 "node 3 marked down" state_is 1 3 down
requeued() { [ "$(jobs_py "J['$victim']['requeued'], J['$victim']['state']")" = "1 running" ]; }
wait_for 30 "the job of node 3 running again elsewhere" requeued
new=$(jobs_py "J['$victim']['krg_id'], J['$victim']['node']")
echo "requeued: was krg id $old_id on node 3, now (id, node) $new"
[ "${new#* }" != 3 ] || fail "requeued onto the dead node"
reason=$(jobs_py "J['$victim']['requeue_reason']")
echo "$reason" | grep -q "node 3 died" || fail "requeue reason: $reason"

all_done() { [ "$(jobs_py "sorted(set(j['state'] for j in J.values()))")" = "['done', 'failed']" ]; }
wait_for 40 "every job ended" all_done
cat >"$TMPD/wait.py" <<'PY'
import sys, drmaa
contact, ids = sys.argv[1], sys.argv[2:]
s = drmaa.Session(); s.initialize(contact)
for j in ids:
    i = s.wait(j, 30)
    print(j, i.hasExited, i.exitStatus if i.hasExited else -1)
s.exit()
PY
# shellcheck disable=SC2086
out=$(on 1 env DRMAA_LIBRARY_PATH="$LIB" "$PY" "$TMPD/wait.py" $contact $ids) || fail "waiting failed: $out"
echo "$out"
for j in $others $victim; do
	echo "$out" | grep -q "^$j True 0$" || fail "job $j did not end with exit 0: $out"
done
echo "$out" | grep -q "^$bound True 0$" && fail "the job bound to node 3 succeeded"
err=$(jobs_py "J['$bound']['error']")
echo "$err" | grep -q "bound to node 3" || fail "the bound job's error: $err"
echo "ok: the job bound to node 3 failed: $err"
expect=$(seq 1 16 | sed 's/^/line /')
for k in 0 1 2; do
	[ "$(cat "$TMPD/out.$k")" = "$expect" ] || fail "out.$k is not one whole run: $(tr '\n' ' ' <"$TMPD/out.$k")"
done
[ "$(jobs_py "[J[i]['requeued'] for i in '$others'.split()]")" = "[0, 0]" ] || fail "a job of nodes 1-2 was requeued"
echo "ok: the job of node 3 ran again once and its output is one whole run; the others were not disturbed"
echo "drmaa requeue: all checks passed t=${SECONDS}s"
