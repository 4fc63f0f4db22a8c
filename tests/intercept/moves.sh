#!/usr/bin/env bash
# Message queues that follow their receivers (krgd.conf ipc_moves = on;
# docs/ipc-service.md, "Owners") on a 3-node vcluster, unmodified python3
# programs (python3-sysv-ipc) under krg run:
#  1. a ping-pong between node 1 and node 2 through one queue homed on
#     node 3: 300 numbered round trips, each side checks every number it
#     gets (nothing lost, duplicated or out of order), and the queue is
#     then served by node 1 or 2 (it moved);
#  2. receivers on every node at once (node 1: type 0 and type -2; node
#     2: type 1 and an IPC_NOWAIT poller; node 3: type 0) and a producer
#     on node 3: every one of 600 messages is received exactly once over
#     all of them;
#  3. the queue removed (krg ipcrm) while a receiver waits on it wherever
#     it is: the receiver gets EIDRM, the key is free.
PREFIX=ipcmv
. "$KRG_SOURCE_DIR/tests/cluster/common.sh"
KRG=$KRG_BUILD_DIR/krg
PY=/usr/bin/python3
ipc_test_dir ipc-moves
trap 'rc=$?; [ $rc -ne 0 ] && dump_logs; "$ADM" vcluster down --prefix "$PREFIX" >/dev/null 2>&1 || true; rm -rf "$W"; exit $rc' EXIT

start_cluster_conf 3 'ipc_moves = on'
on 1 krgadm sched disable mosix >/dev/null

# A key whose queue is homed on node 3 (homes come from a hash).
pick_key() {
	local k
	for k in $(seq $(($1)) $(($1 + 200))); do
		on 1 "$KRG" ipcmk -Q -k "$k" -p 0666 >/dev/null
		if [ "$(ipc_home_of msg "$k")" = 3 ]; then
			echo "$k"
			return
		fi
		on 1 "$KRG" ipcrm -Q "$k" >/dev/null
	done
	fail "no key among 200 has its queue homed on node 3"
}

cat >"$W/pingpong.py" <<'PY'
import sys, sysv_ipc
key, n, side = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
q = sysv_ipc.MessageQueue(key)
for i in range(n):
    if side == "a":
        q.send(str(i).encode(), type=1)
        m, t = q.receive(type=2)
    else:
        m, t = q.receive(type=1)
        q.send(m, type=2)
    if m.decode() != str(i):
        sys.exit(f"{side}: round {i} got {m.decode()!r} (type {t})")
print("ok", n, flush=True)
PY
cat >"$W/recv.py" <<'PY'
import sys, time, sysv_ipc
key, mode, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
q = sysv_ipc.MessageQueue(key)
print("ready", flush=True)
with open(out, "w") as f:
    while True:
        if mode == "nowait":
            try:
                m, t = q.receive(block=False)
            except sysv_ipc.BusyError:
                time.sleep(0.002)
                continue
        else:
            m, t = q.receive(type=int(mode))
        if m == b"stop":
            break
        f.write(m.decode() + "\n")
        f.flush()
print("done", flush=True)
PY
cat >"$W/produce.py" <<'PY'
import sys, sysv_ipc
key, n, stops = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
q = sysv_ipc.MessageQueue(key)
for i in range(1, n + 1):
    q.send(str(i).encode(), type=1 + i % 2)
for _ in range(stops):
    q.send(b"stop", type=1)
print("produced", n, flush=True)
PY

echo "== 1. ping-pong between nodes 1 and 2, queue homed on node 3"
key=$(pick_key 0x5300)
on 2 sh -c "timeout 120 $KRG run -n 2 -- $PY $W/pingpong.py $key 300 b >$W/b.out 2>&1; echo \$? >$W/b.rc" &
b=$!
on 1 sh -c "timeout 120 $KRG run -n 1 -- $PY $W/pingpong.py $key 300 a >$W/a.out 2>&1; echo \$? >$W/a.rc"
wait "$b" || true
assert_eq "$(cat "$W/a.rc") $(cat "$W/b.rc")" "0 0" "both sides ended well ($(cat "$W/a.out") / $(cat "$W/b.out"))"
h=$(ipc_home_of msg "$key")
[ "$h" = 1 ] || [ "$h" = 2 ] || fail "the queue moved to a node of its receivers (served by: $h)"
echo "queue served by node $h after the ping-pong"
on 1 "$KRG" ipcrm -Q "$key" >/dev/null

echo "== 2. receivers on every node at once, a producer on node 3"
key=$(pick_key 0x5500)
N=600
# receivers: node 1 type 0 and type -2, node 2 type 1 and IPC_NOWAIT
# polling, node 3 type 0. Each ends at its "stop" (type 1: every mode
# takes it).
i=0
for spec in "1 0" "1 -2" "2 1" "2 nowait" "3 0"; do
	set -- $spec
	i=$((i + 1))
	on "$1" sh -c "timeout 120 $KRG run -n $1 -- $PY $W/recv.py $key $2 $W/r$i >$W/r$i.out 2>&1; echo \$? >$W/r$i.rc" &
done
# every receiver has the queue open (and is about to receive) before
# the first message
for j in 1 2 3 4 5; do
	wait_for 30 "receiver $j is ready" grep -q ready "$W/r$j.out"
done
on 3 sh -c "timeout 120 $KRG run -n 3 -- $PY $W/produce.py $key $N 5 >$W/p.out 2>&1; echo \$? >$W/p.rc"
assert_eq "$(cat "$W/p.rc")" 0 "the producer ended well ($(cat "$W/p.out"))"
for j in 1 2 3 4 5; do
	wait_for 60 "receiver $j ended" test -s "$W/r$j.rc"
	assert_eq "$(cat "$W/r$j.rc")" 0 "receiver $j ended well ($(cat "$W/r$j.out"))"
done
assert_eq "$(cat "$W"/r[1-5] | sort -n | tr '\n' ' ')" "$(seq 1 $N | tr '\n' ' ')" \
	"every message received exactly once over the five receivers"
echo "received: $(for j in 1 2 3 4 5; do printf '%s ' "$(wc -l <"$W/r$j")"; done)(per receiver)"
wait

echo "== 3. removed while a receiver waits wherever the queue is"
cat >"$W/waitone.py" <<'PY'
import sys, sysv_ipc
q = sysv_ipc.MessageQueue(int(sys.argv[1]))
print("waiting", flush=True)
try:
    q.receive(type=9)
except sysv_ipc.ExistentialError:
    print("EIDRM", flush=True)
    sys.exit(0)
sys.exit("a message came")
PY
cat >"$W/one.py" <<'PY'
import sys, sysv_ipc
q = sysv_ipc.MessageQueue(int(sys.argv[1]))
print("waiting", flush=True)
m, t = q.receive(type=1)
print("got", m.decode(), flush=True)
PY
on 2 "$KRG" ipcmk -Q -k 0x5700 -p 0666 >/dev/null
# to node 1 (usually): a receiver there, served by a sender on node 2
on 1 sh -c "timeout 60 $KRG run -n 1 -- $PY $W/one.py $((0x5700)) >$W/o.out 2>&1" &
r=$!
wait_for 30 "a receiver on node 1 waits" grep -q waiting "$W/o.out"
on 2 "$KRG" run -n 2 -- $PY -c 'import sysv_ipc; sysv_ipc.MessageQueue(0x5700).send(b"x", type=1)'
wait "$r"
assert_eq "$(tail -1 "$W/o.out")" "got x" "the receiver on node 1 got its message"
echo "queue served by node $(ipc_home_of msg $((0x5700)))"
on 2 sh -c "timeout 60 $KRG run -n 2 -- $PY $W/waitone.py $((0x5700)) >$W/w.out 2>&1; echo \$? >$W/w.rc" &
w=$!
wait_for 30 "the receiver on node 2 waits" grep -q waiting "$W/w.out"
on 3 "$KRG" ipcrm -Q $((0x5700)) >/dev/null
wait "$w" || true
assert_eq "$(cat "$W/w.out" | tail -1) $(cat "$W/w.rc")" "EIDRM 0" "the waiting receiver got EIDRM"
assert_eq "$(ipc_home_of msg $((0x5700)))" none "the queue is gone everywhere"
echo "PASS"
