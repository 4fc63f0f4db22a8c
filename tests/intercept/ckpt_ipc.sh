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
#     `krg image show` lists them;
#  3. a recovery: an application checkpointed every second on node 2 with
#     a private queue (homed on node 2) and a keyed one; node 2's krgd is
#     killed; the node that restarts it brings the private queue back from
#     the image under its id, keeps the keyed one if it lived on, and the
#     program reads every message once; a semaphore set homed on a node
#     that lives on is kept, and the SEM_UNDO record the process made
#     before node 2 died is applied at the restarted process's exit.
PREFIX=ckipc
. "$KRG_SOURCE_DIR/tests/cluster/common.sh"
KRG=$KRG_BUILD_DIR/krg
I=$KRG_BUILD_DIR/tests/intercept/icpt
PY=/usr/bin/python3
ipc_test_dir ckipc
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
img=$(on 1 sh -c "ls -d /var/lib/krg/chkpt/$id/v* | tail -1")
show=$(on 1 "$KRG" image show "$img") || fail "image show $img: $show"
assert_contains "$show" "2 System V objects" "image show counts the saved objects"
assert_contains "$show" "message queue id $qid key 0x00005151 owner 0:0 mode 0600: 5 messages, 10 bytes" "image show lists the queue"
assert_contains "$show" "semaphore set id $sid key 0x00005252 owner 0:0 mode 0600: 1 semaphore, values 2, 1 undo record" \
	"image show lists the set"
on 1 "$KRG" image show --json "$img" | $PY -c "
import json, sys
s = {o['kind']: o for o in json.load(sys.stdin)['sysv']}
assert s['msg']['id'] == $qid and s['msg']['messages'] == 5 and s['msg']['key'] == 0x5151, s
assert s['sem']['id'] == $sid and s['sem']['values'] == [2] and s['sem']['undo_records'] == 1, s" ||
	fail "image show --json does not list the saved objects"
touch "$W/go"
out=$(on 1 "$KRG" restart "$id" -n 2 --foreground 2>&1) && fail "restart while the ids are taken: $out"
assert_contains "$out" "message queue id $qid (key 0x00005151) is taken" "restart refused, naming the queue"
assert_eq "$(on 1 "$KRG" run -n 3 -- "$I" qnum 0x5151)" "qnum 5" "the queue untouched by the refused restart"
on 1 "$KRG" ipcrm -Q 0x5151 -S 0x5252 || fail "ipcrm"
out=$(on 1 "$KRG" restart "$id" -n 2 --foreground 2>&1) || fail "restart on node 2: $out"
assert_eq "$out" "got m0 m1 m2 m3 m4 sem 2 ids $qid $sid" "the restarted program on node 2 reads the saved queue and value"
assert_eq "$(on 1 "$KRG" run -n 1 -- "$I" semval 0x5252)" "val 3" "its SEM_UNDO applied at its exit on node 2"
assert_eq "$(on 1 "$KRG" run -n 1 -- "$I" qnum 0x5151)" "qnum 0" "the queue it emptied"

echo "== 3. a recovery brings back the queue that died with its node"
# A semaphore key homed on node 1 or 3 (a hash: tried with krg ipcmk):
# the set outlives node 2, is kept by the recovery, and the SEM_UNDO
# record the process left there under its node 2 id goes by its new id.
sem_home() {
	on 1 krgadm ipc status --json | $PY -c "
import json, sys
o = [o for o in json.load(sys.stdin)['objects'] if o['kind'] == 'sem' and int(o['key'], 16) == $1]
print(o[0]['home'] if o else 'none')"
}
skey=
for k in $(seq $((0x5400)) $((0x5400 + 60))); do
	on 1 "$KRG" ipcmk -S 1 -k "$k" -p 0600 >/dev/null
	h=$(sem_home "$k")
	on 1 "$KRG" ipcrm -S "$k" >/dev/null
	if [ "$h" = 1 ] || [ "$h" = 3 ]; then skey=$k; break; fi
done
[ -n "$skey" ] || fail "no semaphore key among 60 homed on node 1 or 3"
cat >"$W/rec.py" <<EOS
import os, sysv_ipc, time
q = sysv_ipc.MessageQueue(sysv_ipc.IPC_PRIVATE, sysv_ipc.IPC_CREX, 0o600)
k = sysv_ipc.MessageQueue(0x5353, sysv_ipc.IPC_CREX, 0o600)
s = sysv_ipc.Semaphore($skey, sysv_ipc.IPC_CREX, 0o600, initial_value=0)
s.undo = True
s.release()
for i in range(3):
    q.send(("p%d" % i).encode())
    k.send(("k%d" % i).encode())
with open("$W/rec.ready.tmp", "w") as f:
    print(q.id, k.id, file=f)
os.rename("$W/rec.ready.tmp", "$W/rec.ready")
while not os.path.exists("$W/rec.go"):
    time.sleep(0.1)
got = [q.receive(block=False)[0].decode() for _ in range(3)] + [k.receive(block=False)[0].decode() for _ in range(3)]
rest = q.current_messages + k.current_messages
with open("$W/rec.out.tmp", "w") as f:
    print(*got, "left", rest, "ids", q.id, k.id, "sem", s.value, file=f)
os.rename("$W/rec.out.tmp", "$W/rec.out")
EOS
on 1 sh -c "$KRG run -n 2 --checkpoint-every 1s -- $PY $W/rec.py >$W/rec.log 2>&1 &"
wait_for 30 "the recovery application ready on node 2" test -s "$W/rec.ready"
read -r rq rk <"$W/rec.ready"
home=$(on 1 krgadm ipc status --json | $PY -c "
import json, sys
print([o['home'] for o in json.load(sys.stdin)['objects'] if o['id'] == $rq][0])")
assert_eq "$home" 2 "the private queue is homed on node 2 (dies with it)"
# entry, entry_is: common.sh.
# A checkpoint begun after the messages were sent, copied to a second node.
v0=$(entry "a[0]['version'] if a else 0")
wait_for 40 "a checkpoint of the queues, copied to a second node" \
	entry_is "len(a) == 1 and a[0]['version'] >= $v0 + 2 and len(a[0]['holders']) == 2" True
"$ADM" vcluster krgd 2 kill --prefix "$PREFIX"
wait_for 40 "the application restarted on another node" entry_is "len(a) == 1 and a[0]['node'] != 2 and a[0]['recoveries'] == 1" True
touch "$W/rec.go"
wait_for 30 "the restarted application read its queues" test -s "$W/rec.out"
assert_eq "$(cat "$W/rec.out")" "p0 p1 p2 k0 k1 k2 left 0 ids $rq $rk sem 1" \
	"the private queue back under its id with its messages, the keyed one once"
semval_is() { [ "$(on 1 "$KRG" run -n 1 -- "$I" semval "$skey")" = "val $1" ]; }
wait_for 20 "the restarted process's SEM_UNDO applied at its exit (the set kept on node 1 or 3)" semval_is 0
echo "PASS"
