#!/usr/bin/env bash
# Checkpoint of krg applications and the cluster's System V objects
# (docs/ipc.md, "Checkpoint, restart, migration"), on a 3-node vcluster of
# 0.5-CPU nodes, as `make run` has it:
#  1. busy nodes: node 3 taken out and added back (same krgd), CPU hogs
#     on every node; a checkpoint through krgd of an application that
#     lives 20 s is made while it still runs (the query of which System V
#     objects it made waited ~40 s there: node 3 had left its own KDDM
#     live set and answered "not ready" until the asker gave up), and the
#     image restarts on another node;
#  2. an application's own queue and semaphore set (messages, value, a
#     SEM_UNDO record) are saved with its image: a restart refuses by name
#     while their ids are taken, and once they are removed brings them
#     back under the same ids on node 2, where the restarted program reads
#     the same messages and value; its undo is applied at its exit there.
PREFIX=ckipc
. "$KRG_SOURCE_DIR/tests/cluster/common.sh"
KRG=$KRG_BUILD_DIR/krg
I=$KRG_BUILD_DIR/tests/intercept/icpt
PY=/usr/bin/python3
[ "$(id -u)" = 0 ] || fail "cannot run: needs root"
$PY -c 'import sysv_ipc' || fail "cannot run: python3-sysv-ipc missing (scripts/install-deps.sh)"
W=$(mktemp -d "$KRG_BUILD_DIR/ckipc.XXXXXX")
chmod 755 "$W"
start_cluster 3 --cpus 0.5
hogs() { for n in 1 2 3; do on $n pkill -f "^sh -c while :; do :; done" >/dev/null 2>&1 || true; done; }
trap 'rc=$?; [ $rc -ne 0 ] && dump_logs; hogs; "$ADM" vcluster down --prefix "$PREFIX" >/dev/null 2>&1 || true; rm -rf "$W"; exit $rc' EXIT
on 1 krgadm sched disable mosix >/dev/null
appid() { # appid PATTERN: the krg id of the oldest process whose command has PATTERN
	on 1 "$KRG" ps -a --json | $PY -c "import json,sys; print(min(p['id'] for p in json.load(sys.stdin)['processes'] if '$1' in p['command']))"
}

echo "== 1. checkpoint on busy nodes, node 3 removed and added back"
on 1 krgadm nodes del -n 3
on 1 krgadm nodes add -n 3
for i in 1 2 3; do on $i krgadm cluster wait --timeout 30 >/dev/null; done
for n in 1 2 3; do
	for _ in 1 2; do on $n sh -c "nohup sh -c 'while :; do :; done' >/dev/null 2>&1 &"; done
done
# The application: lives 20 s, then says it ended. A checkpoint is far
# shorter; one that waits for the whole cluster too long finds it gone.
on 1 sh -c "$KRG run -n 1 -- sh -c 'sleep 20; echo ended' >$W/busy.out 2>&1 &"
wait_for 15 "application started" on 1 pgrep -f "^sh -c sleep 20; echo ended"
id=$(appid "sleep 20; echo ended")
out=$(on 1 "$KRG" checkpoint "$id" --kill -d busy 2>&1) || fail "checkpoint on busy nodes: $out"
[ -s "$W/busy.out" ] && fail "the application had ended before its checkpoint: $(cat "$W/busy.out")"
hogs
out=$(on 1 "$KRG" restart "$id" -n 2 --foreground 2>&1) || fail "restart on node 2: $out"
assert_eq "$out" ended "the restarted application ran to its end on node 2"

echo "== 2. the application's queue and semaphore set in its image"
cat >"$W/app.py" <<EOS
import os, sysv_ipc, time
q = sysv_ipc.MessageQueue(0x5151, sysv_ipc.IPC_CREX, 0o600)
s = sysv_ipc.Semaphore(0x5252, sysv_ipc.IPC_CREX, 0o600, initial_value=3)
s.undo = True
s.acquire()
for i in range(5):
    q.send(("m%d" % i).encode(), type=i + 1)
print("ready", q.id, s.id, flush=True)
while not os.path.exists("$W/go"):
    time.sleep(0.1)
got = [q.receive()[0].decode() for _ in range(q.current_messages)]
print("got", *got, "sem", s.value, "ids", q.id, s.id, flush=True)
EOS
on 1 sh -c "$KRG run -n 1 -- $PY $W/app.py >$W/app.out 2>&1 &"
wait_for 20 "application ready" grep -q ready "$W/app.out"
read -r _ qid sid <"$W/app.out"
id=$(appid "$W/app.py")
assert_eq "$(on 1 "$KRG" run -n 3 -- "$I" qnum 0x5151)" "qnum 5" "the queue before the checkpoint"
out=$(on 1 "$KRG" checkpoint "$id" --kill -d sysv 2>&1) || fail "checkpoint of an application with its own queue: $out"
touch "$W/go"
out=$(on 1 "$KRG" restart "$id" -n 2 --foreground 2>&1) && fail "restart while the ids are taken: $out"
assert_contains "$out" "message queue id $qid (key 0x00005151) is taken" "restart refused, naming the queue"
assert_eq "$(on 1 "$KRG" run -n 3 -- "$I" qnum 0x5151)" "qnum 5" "the queue untouched by the refused restart"
on 1 "$KRG" ipcrm -Q 0x5151 -S 0x5252 || fail "ipcrm"
out=$(on 1 "$KRG" restart "$id" -n 2 --foreground 2>&1) || fail "restart on node 2: $out"
assert_eq "$out" "got m0 m1 m2 m3 m4 sem 2 ids $qid $sid" "the restarted program on node 2 reads the saved queue and value"
assert_eq "$(on 1 "$KRG" run -n 1 -- "$I" semval 0x5252)" "val 3" "its SEM_UNDO applied at its exit on node 2"
assert_eq "$(on 1 "$KRG" run -n 1 -- "$I" qnum 0x5151)" "qnum 0" "the queue it emptied"
echo "PASS"
