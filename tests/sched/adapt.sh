#!/usr/bin/env bash
# Self-adaptation of the mosix balancer (docs/sched.md) on a 3-node
# vcluster of 0.5 CPU each: migrations whose migrant ends as soon as it
# arrives are judged useless and raise the adapted threshold and interval
# above the configured ones; a migrant that keeps running is judged useful
# and brings them back down; with mosix.adaptive 0 the configured values
# rule; the moves' cost sets a minimum age. Behaviour only: every wait is for a verdict or a value, however
# long this host takes.
PREFIX=sadapt
. "$KRG_SOURCE_DIR/tests/cluster/common.sh"
KRG=$KRG_BUILD_DIR/krg
[ "$(id -u)" = 0 ] || { echo "FAIL: cannot run: needs root"; exit 1; }
start_cluster 3 --cpus 0.5

mosix() { # mosix NODE SUFFIX: a field of the mosix policy in sched status --json
	on "$1" krgadm sched status --json |
		python3 -c "import json,sys; s=json.load(sys.stdin); print([p for p in s['policies'] if p['name']=='mosix'][0]$2)"
}
ids_of() { on 1 "$KRG" ps -a --json | python3 -c "
import json, sys
print(' '.join(str(p['id']) for p in json.load(sys.stdin)['processes'] if '$1' in p['command']))"; }
kill_all() { for id in $(ids_of "$1"); do on 1 "$KRG" kill -9 "$id" || true; done; }
gt() { python3 -c "import sys; sys.exit(0 if $1 > $2 else 1)"; }

# A low configured threshold, so that even the highest bar adaptation can
# raise (4x) still lets 3 busy processes on one node move.
on 1 krgadm sched set mosix.threshold 0.5
on 1 krgadm sched enable mosix
is() { [ "$(mosix 1 "$1")" = "$2" ]; }  # is SUFFIX VALUE, on node 1
wait_for 10 "mosix enabled on node 1" is "['enabled']" True
wait_for 10 "threshold 0.5 on node 1" is "['params']['threshold']" 0.5
assert_eq "$(mosix 1 "['adapted']['threshold']")" 0.5 "adapted threshold before any move"
assert_eq "$(mosix 1 "['adapted']['min_interval_ms']")" 1000.0 "adapted interval before any move"
assert_eq "$(mosix 1 "['params']['adaptive']")" 1.0 "adaptation on by default"

# 1. Useless moves: each of these burns CPU until it finds itself on
# another node (another host name: every vcluster node has its own UTS
# namespace), then exits at once.
hop="import os
h = os.uname().nodename
while os.uname().nodename == h: pass"
for i in 1 2 3; do on 1 "$KRG" run -n 1 -- python3 -c "$hop" </dev/null >/dev/null 2>&1 & done
useless() { [ "$(mosix 1 "['verdicts']['useless']")" -ge 1 ]; }
wait_for 240 "a move judged useless on node 1" useless
# The balancer may have moved more than one: their verdicts (and any for
# a process killed right after its move) must all be in before the
# adapted values are read, or one landing later raises them during part 2.
kill_all "uname().nodename"
prev=
for _ in $(seq 20); do
	cur=$(mosix 1 "['verdicts']")
	[ "$cur" = "$prev" ] && break
	prev=$cur
	sleep 1.5
done
t1=$(mosix 1 "['adapted']['threshold']")
i1=$(mosix 1 "['adapted']['min_interval_ms']")
echo "after useless moves: $(mosix 1 "['verdicts']"), threshold $t1, min_interval_ms $i1"
gt "$t1" 0.5 || fail "useless moves did not raise the threshold (adapted $t1, configured 0.5)"
gt "$i1" 1000 || fail "useless moves did not lengthen the interval (adapted $i1 ms, configured 1000)"
a1=$(mosix 1 "['adapted']['min_age_ms']")
gt "$a1" 0 || fail "the moves' cost did not raise the minimum age (adapted $a1 ms, configured 0)"
on 1 krgadm sched status | grep -A4 "Self-adaptation of mosix"

# 2. Useful moves: processes that keep running where they were sent.
useful0=$(mosix 1 "['verdicts']['useful']")
for i in 1 2 3; do on 1 "$KRG" run -n 1 -- python3 -c "while 'adapt': pass" </dev/null >/dev/null 2>&1 & done
useful() { [ "$(mosix 1 "['verdicts']['useful']")" -gt "$useful0" ]; }
wait_for 300 "a move judged useful on node 1" useful
t2=$(mosix 1 "['adapted']['threshold']")
i2=$(mosix 1 "['adapted']['min_interval_ms']")
echo "after a useful move: $(mosix 1 "['verdicts']"), threshold $t2, min_interval_ms $i2"
gt "$t1" "$t2" || fail "a useful move did not relax the threshold ($t1 -> $t2)"
gt "$i1" "$i2" || fail "a useful move did not shorten the interval ($i1 -> $i2)"
gt "$t2" 0.4999 || fail "the threshold went below the configured one ($t2)"

# 3. Off: the configured values.
on 1 krgadm sched set mosix.adaptive 0
wait_for 10 "adaptation off on node 1" is "['params']['adaptive']" 0.0
assert_eq "$(mosix 1 "['adapted']['threshold']")" 0.5 "adapted threshold with adaptive 0"
assert_eq "$(mosix 1 "['adapted']['min_interval_ms']")" 1000.0 "adapted interval with adaptive 0"
assert_eq "$(mosix 1 "['adapted']['min_age_ms']")" 0.0 "adapted minimum age with adaptive 0"
kill_all adapt
wait 2>/dev/null || true
echo PASS
