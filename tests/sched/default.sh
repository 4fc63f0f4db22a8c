#!/usr/bin/env bash
# Load balancing out of the box (issue 14 item 18, docs/sched.md): on a
# fresh 3-node vcluster, with no sched command at all, the mosix balancer
# is enabled on every node and 8 busy loops started on node 1 spread to
# the other nodes; `krgadm sched disable mosix` turns it off on every
# node, after which busy loops started on node 1 stay there.
PREFIX=sdef
. "$KRG_SOURCE_DIR/tests/cluster/common.sh"
KRG=$KRG_BUILD_DIR/krg
[ "$(id -u)" = 0 ] || { echo "FAIL: cannot run: needs root"; exit 1; }
start_cluster 3 --cpus 0.5

mosix_on() { # mosix_on NODE: True|False as the node's sched status says
	on "$1" krgadm sched status --json |
		python3 -c "import json,sys; print([p['enabled'] for p in json.load(sys.stdin)['policies'] if p['name']=='mosix'][0])"
}
nodes_of() { on 1 "$KRG" ps -a --json | python3 -c "
import json, sys
print(' '.join(str(p['node']) for p in json.load(sys.stdin)['processes'] if '$1' in p['command']))"; }
kill_all() { for id in $(on 1 "$KRG" ps -a --json | python3 -c "
import json, sys
print(' '.join(str(p['id']) for p in json.load(sys.stdin)['processes'] if '$1' in p['command']))"); do
	on 1 "$KRG" kill -9 "$id" || true
done; }

for n in 1 2 3; do assert_eq "$(mosix_on $n)" True "mosix enabled by default on node $n"; done

for i in 1 2 3 4 5 6 7 8; do
	on 1 "$KRG" run -n 1 -- python3 -c "while 'dflt': pass" </dev/null >/dev/null 2>&1 &
done
seen=" "
spread() { # every node other than 1 that has run one of them
	local n
	for n in $(nodes_of dflt); do
		case "$seen" in *" $n "*) ;; *) seen="$seen$n " ;; esac
	done
	case "$seen" in *" 2 "*) ;; *) return 1 ;; esac
	case "$seen" in *" 3 "*) ;; *) return 1 ;; esac
}
ok=no
for i in $(seq 1 90); do  # polled gently: the polling runs on node 1 too
	if spread; then ok=yes; break; fi
	sleep 2
done
echo "nodes that ran the 8 busy loops:$seen"
[ $ok = yes ] || fail "8 busy loops on node 1 of a fresh cluster did not reach nodes 2 and 3 (seen on:$seen)"
kill_all dflt
gone() { [ -z "$(nodes_of dflt)" ]; }
wait_for 20 "the busy loops are gone" gone

on 1 krgadm sched disable mosix
for n in 1 2 3; do wait_for 10 "mosix disabled on node $n" eval '[ "$(mosix_on '$n')" = False ]'; done
for i in 1 2 3 4; do
	on 1 "$KRG" run -n 1 -- python3 -c "while 'stay': pass" </dev/null >/dev/null 2>&1 &
done
sleep 12  # several balancer periods
assert_eq "$(nodes_of stay)" "1 1 1 1" "busy loops stay on node 1 with mosix disabled"
kill_all stay
wait 2>/dev/null || true
echo PASS
