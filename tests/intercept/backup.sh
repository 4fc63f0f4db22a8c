#!/usr/bin/env bash
# The home of a queue and of a semaphore set dies under traffic
# (docs/ipc-service.md, "Nodes coming and going"), on a 3-node vcluster
# with krgd.conf's ipc_backup = on:
#  - a producer under krg run on node 1 sends numbered messages to a queue
#    homed on node 3 and posts a semaphore homed on node 3 for each;
#  - a consumer under krg run on node 2 receives them (blocking msgrcv,
#    blocking semop P);
#  - node 3's krgd is killed in the middle. Both programs end, the
#    consumer got every number exactly once and in order, every semaphore
#    P completed, and the objects live on at their backup (node 1 or 2).
# Then with ipc_backup = off (the default), the same death: a caller
# blocked there gets EIDRM and nobody hangs (the documented failure mode).
# Last, backups off, node 3 leaves cleanly (krgadm nodes del) under the
# same traffic: it hands its objects over, nothing is lost or duplicated.
PREFIX=ipcbk
. "$KRG_SOURCE_DIR/tests/cluster/common.sh"
KRG=$KRG_BUILD_DIR/krg
PY=/usr/bin/python3
N=300
ipc_test_dir ipc-backup
trap 'rc=$?; [ $rc -ne 0 ] && dump_logs; "$ADM" vcluster down --prefix "$PREFIX" >/dev/null 2>&1 || true; rm -rf "$W"; exit $rc' EXIT

# up BACKUP: a fresh 3-node vcluster whose krgd.conf says ipc_backup = BACKUP.
up() {
	start_cluster_conf 3 "ipc_backup = $1"
	on 1 krgadm sched disable mosix >/dev/null
}

# A key whose queue and set are both homed on node 3: the homes come from
# a hash, so try keys until one fits (each try made with krg ipcmk, then
# removed when it does not fit).
pick_key() {
	local k
	for k in $(seq $((0x5100)) $((0x5100 + 200))); do
		on 1 "$KRG" ipcmk -Q -k "$k" -p 0666 >/dev/null
		on 1 "$KRG" ipcmk -S 1 -k "$k" -p 0666 >/dev/null
		if [ "$(ipc_home_of msg "$k")" = 3 ] && [ "$(ipc_home_of sem "$k")" = 3 ]; then
			echo "$k"
			return
		fi
		on 1 "$KRG" ipcrm -Q "$k" -S "$k" >/dev/null
	done
	fail "no key among 200 has both its queue and its set homed on node 3"
}

cat >"$W/producer.py" <<'PY'
import sys, time, sysv_ipc
key, n = int(sys.argv[1]), int(sys.argv[2])
q, s = sysv_ipc.MessageQueue(key), sysv_ipc.Semaphore(key)
for i in range(1, n + 1):
    q.send(str(i).encode(), type=1)
    s.release()
    time.sleep(0.01)
print("produced", n, flush=True)
PY
cat >"$W/consumer.py" <<'PY'
import sys, sysv_ipc
key, n, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
q, s = sysv_ipc.MessageQueue(key), sysv_ipc.Semaphore(key)
with open(out, "w") as f:
    for i in range(n):
        try:
            m, _ = q.receive(type=1)
        except sysv_ipc.ExistentialError:
            print("EIDRM", flush=True)
            sys.exit(3)
        s.acquire()
        f.write(m.decode() + "\n")
        f.flush()
print("consumed", n, flush=True)
PY

# traffic WHAT CMD...: a producer on node 1 and a consumer on node 2 of a
# queue and a set homed on node 3; CMD (node 3's end) runs once a third of
# the messages arrived; then everything must have arrived once, in order,
# and the objects must be served by node 1 or 2.
traffic() {
	local what=$1
	shift
	rm -f "$W/got"
	key=$(pick_key)
	echo "key $key: queue and set homed on node 3"
	on 2 sh -c "timeout 120 $KRG run -n 2 -- $PY $W/consumer.py $key $N $W/got >$W/cons.out 2>&1; echo \$? >$W/cons.rc" &
	cons=$!
	on 1 sh -c "timeout 120 $KRG run -n 1 -- $PY $W/producer.py $key $N >$W/prod.out 2>&1; echo \$? >$W/prod.rc" &
	prod=$!
	wait_for 60 "a third of the messages received" sh -c "[ \$(wc -l <$W/got 2>/dev/null || echo 0) -ge $((N / 3)) ]"
	"$@" >/dev/null
	echo "node 3: $what after $(wc -l <"$W/got") messages"
	wait "$prod" "$cons" || true
	assert_eq "$(cat "$W/prod.rc")" 0 "$what: the producer on node 1 ended well ($(cat "$W/prod.out"))"
	assert_eq "$(cat "$W/cons.rc")" 0 "$what: the consumer on node 2 ended well ($(cat "$W/cons.out"))"
	assert_eq "$(cat "$W/got")" "$(seq 1 $N)" "$what: every message received once, in order"
	h=$(ipc_home_of msg "$key")
	[ "$h" = 1 ] || [ "$h" = 2 ] || fail "$what: the queue lives on at a live node (home: $h)"
	h=$(ipc_home_of sem "$key")
	[ "$h" = 1 ] || [ "$h" = 2 ] || fail "$what: the set lives on at a live node (home: $h)"
	assert_eq "$(on 1 "$KRG" ipcs -q --json | $PY -c "import json,sys; print([o['messages'] for o in json.load(sys.stdin) if o['key']==$key])")" "[0]" "$what: the queue is empty at its new home"
}

echo "== 1. ipc_backup = on: the home dies under traffic"
up on
traffic "krgd killed" "$ADM" vcluster krgd 3 kill --prefix "$PREFIX"

echo "== 2. ipc_backup = off: a caller blocked at the dead home gets EIDRM"
up off
key=$(pick_key)
on 2 sh -c "timeout 60 $KRG run -n 2 -- $PY $W/consumer.py $key 1 $W/got2 >$W/cons2.out 2>&1; echo \$? >$W/cons2.rc" &
cons=$!
sleep 1  # the consumer is in msgrcv, parked at node 3
"$ADM" vcluster krgd 3 kill --prefix "$PREFIX" >/dev/null
wait "$cons" || true
assert_eq "$(cat "$W/cons2.out")" EIDRM "the blocked receiver got EIDRM ($(cat "$W/cons2.rc"))"
assert_eq "$(ipc_home_of msg "$key")" none "the queue is gone with its home"

echo "== 3. ipc_backup = off: the home leaves cleanly under traffic"
up off
traffic "left (nodes del)" on 1 krgadm nodes del -n 3
echo "PASS"
