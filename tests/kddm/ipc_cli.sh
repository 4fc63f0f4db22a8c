#!/usr/bin/env bash
# The cluster IPC space through the CLIs on a 3-node vcluster: a queue
# made on node 1 is the one node 2 gets for the same key; every node lists
# it with its home; a user does not see root's 0600 objects; removal from
# node 3 is seen everywhere and frees the key; a semaphore array likewise.
PREFIX=kddmipc
. "$KRG_SOURCE_DIR/tests/cluster/common.sh"
start_cluster 3

mk() { on "$1" krg ipcmk "${@:2}" | sed -n 's/.*id: \([0-9]*\)$/\1/p'; }
ipcs_json() { on "$1" krgadm ipc status --json; }
count() { python3 -c "import json,sys; print(len(json.load(sys.stdin)['objects']))"; }

q1=$(mk 1 -Q -k 0x1234 -p 600)
[ -n "$q1" ] || fail "krg ipcmk -Q on node 1 printed no id"
q2=$(mk 2 -Q -k 0x1234 -p 600)
assert_eq "$q2" "$q1" "the same key from node 2 gives node 1's queue"
s1=$(mk 3 -S 4 -k 0x777 -p 644)
[ -n "$s1" ] || fail "krg ipcmk -S on node 3 printed no id"
p1=$(mk 2 -Q -p 600)   # IPC_PRIVATE: a new queue, homed on node 2
[ -n "$p1" ] && [ "$p1" != "$q1" ] || fail "a private queue got no id of its own"

for i in 1 2 3; do
	out=$(ipcs_json $i)
	assert_eq "$(echo "$out" | count)" 3 "objects listed on node $i"
	echo "$out" | python3 -c "
import json,sys
o={x['id']:x for x in json.load(sys.stdin)['objects']}
q=o[$q1]; s=o[$s1]; p=o[$p1]
assert q['kind']=='msg' and q['key']=='0x00001234' and q['mode']==0o600, q
assert s['kind']=='sem' and s['nsems']==4, s
assert p['home']==2 and p['key']=='0x00000000', p
assert 1 in q['nodes'] and 2 in q['nodes'], q
" || fail "node $i's listing: $out"
done
on 1 krg ipcs -q | grep -q "0x00001234" || fail "krg ipcs -q on node 1 does not show the queue"
on 2 krg ipcs -s | grep -q "0x00000777" || fail "krg ipcs -s on node 2 does not show the array"

# A user sees only what they may read (the 0644 array), and cannot remove it.
n=$(on 1 setpriv --reuid 65534 --regid 65534 --clear-groups krgadm ipc status --json | count)
assert_eq "$n" 1 "objects nobody may read"
if on 1 setpriv --reuid 65534 --regid 65534 --clear-groups krg ipcrm -s "$s1" 2>/dev/null; then
	fail "nobody removed root's semaphore array"
fi

# Removal from node 3, by id and by key, is seen everywhere.
on 3 krg ipcrm -q "$q1" -S 0x777 || fail "krg ipcrm on node 3"
for i in 1 2 3; do
	assert_eq "$(ipcs_json $i | count)" 1 "objects left on node $i"
done
if on 1 krg ipcrm -q "$q1" 2>/dev/null; then fail "removing a removed queue succeeded"; fi
q3=$(mk 1 -Q -k 0x1234 -p 600)
[ -n "$q3" ] && [ "$q3" != "$q1" ] || fail "the key was not free again after removal ($q3)"
on 2 krg ipcrm -Q 0x1234 -q "$p1" || fail "final removal"
assert_eq "$(ipcs_json 3 | count)" 0 "objects at the end"
on 1 krg ipcmk -Q -S 2 >/dev/null 2>&1 && fail "ipcmk with both -Q and -S accepted"
echo PASS
