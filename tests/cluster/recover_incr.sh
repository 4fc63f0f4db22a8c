#!/usr/bin/env bash
# Failure recovery from incremental checkpoints (issue 19 item 3;
# docs/checkpoint.md "Incremental images", docs/reconfiguration.md): an
# application (tests/ckpt/incr_app.c, 16 MiB) started with `krg run
# --checkpoint-every 1s` on node 2 of a 3-node vcluster does two rounds
# of writes (1% of its pages, a zapped page, a new area...) while it is
# checkpointed: a full checkpoint, then increments, each copied to node 3
# alone (node 3 holds the chain, checked page by page by `krg image`).
# With the checkpoints paused, `krg restart` of the latest increment by
# hand on node 2 gives a process whose memory is exact, and so does `krg
# restart -n 1` (node 2 sends the chain to node 1, oldest first); then,
# checkpointed every second again, node 2's krgd is killed and node 3 restarts
# the application from its copy of the chain: a third round there, and
# its memory is exactly what the three rounds leave. A node's store holds
# the chain of the latest checkpoint only.
PREFIX=recinc
. "$(dirname "$0")/common.sh"
KRG=$KRG_BUILD_DIR/krg
APP=$KRG_BUILD_DIR/tests/ckpt/ckpt_incr_app
[ "$(id -u)" = 0 ] || { echo "FAIL: cannot run: needs root"; exit 1; }
[ -x "$APP" ] || { echo "FAIL: cannot run: $APP not built"; exit 1; }
W=$(mktemp -d "$KRG_BUILD_DIR/recover-incr.XXXXXX")
chmod 777 "$W"
ST=$W/status

start_cluster 3
on 1 krgadm sched disable mosix >/dev/null

on 1 "$KRG" run -n 2 --checkpoint-every 1s -- sh -c "exec $APP 16 $ST 1 >/dev/null 2>&1 </dev/null" >"$W/krg-run.log" 2>&1 &
status_is() { [ "$(cat "$ST" 2>/dev/null)" = "$1" ]; }
wait_check() { # wait_check WHAT: until the application wrote its check's result into $ST
	local end=$((SECONDS + 20))
	until [ "$(cut -c1-5 "$ST" 2>/dev/null)" = check ]; do
		if [ $SECONDS -ge $end ]; then
			on 1 "$KRG" ps -a || true
			grep -h "restart\|ckpt" "$(log_of 1)" "$(log_of 2)" "$(log_of 3)" |
				grep -v "received\|sending\|removing\|dump worker\|dumped into\|every.list" | tail -30 || true
			fail "timed out waiting for $1 (status: $(cat "$ST" 2>/dev/null))"
		fi
		sleep 0.1
	done
}
wait_for 15 "the application runs on node 2" status_is 0
wait_for 10 "a checkpoint copied to node 3" entry_is "len(a) == 1 and a[0]['version'] >= 1 and a[0]['holders'] == [2, 3]" True
id=$(entry "a[0]['id']")
# Two rounds of writes, each seen by a checkpoint after it.
for k in 1 2; do
	v=$(entry "a[0]['version']")
	on 1 "$KRG" kill -s USR1 "$id"
	wait_for 10 "round $k done" status_is "$k"
	wait_for 10 "a checkpoint after round $k" entry_is "a[0]['version'] > $v + 1 and a[0]['holders'] == [2, 3]" True
done
for n in 2 3; do
	wait_for 15 "node $n to hold the latest checkpoint's chain (and nothing older)" only_the_chain "$n" "$id" 3
done
v=$(entry "a[0]['version']")
echo "ok   v$v builds on:$(chain_of 3 "$id" "$v" | cut -d' ' -f2-) on node 3"
grep -q "app $id: checkpoint v2 is incremental on v1" "$(log_of 2)" || fail "node 2's log shows no incremental checkpoint"
grep "app $id: checkpoint v[0-9]* is incremental" "$(log_of 2)" | tail -1

# krg restart of an increment by hand. The periodic checkpoints paused
# first (a period of an hour, seen by node 2's replica, and the last one
# recorded), so the version restarted stays in the store: a second copy
# of the application, which checks its memory and says so in the same
# status file (the original waits for signals and writes nothing).
period_on() { on "$1" "$KRG" checkpoint --list --json | python3 -c "import json,sys; a=json.load(sys.stdin)['apps']; print(a[0]['every_ms'])"; }
period_is() { [ "$(period_on "$1")" = "$2" ]; }
quiet() { # the latest checkpoint recorded, none in flight
	local v top
	v=$(entry "a[0]['version'] if a[0]['holders'] == [2, 3] else -1")
	top=$(on 2 ls "/var/lib/krg/chkpt/$id" | sed -n 's/^v//p' | sort -n | tail -1)
	[ "$v" = "$top" ] && [ -z "$(on 2 ls /var/lib/krg/chkpt/.tmp | grep "^$id\.")" ]
}
# Paused on an increment: a full one comes once the increments add up to
# half of it (about 20 of this idle application's); then once more.
for try in 1 2 3; do
	on 1 "$KRG" checkpoint --every 1h "$id" >/dev/null
	wait_for 10 "node 2 to see the hour-long period" period_is 2 3600000
	wait_for 15 "the last checkpoint recorded" quiet
	v=$(entry "a[0]['version']")
	[ "$(chain_of 2 "$id" "$v" | wc -w)" -ge 2 ] && break
	[ "$try" = 3 ] && fail "paused three times on a full checkpoint"
	on 1 "$KRG" checkpoint --every 1s "$id" >/dev/null
	wait_for 10 "a checkpoint after v$v" entry_is "a[0]['version'] > $v" True
done
rid=$(on 2 "$KRG" restart "$id" "$v")
[ -n "$rid" ] || fail "krg restart $id $v printed no new id"
on 1 "$KRG" kill -s USR2 "$rid"
wait_check "the copy restarted from v$v to check its memory"
status_is "check 0" || fail "the copy restarted from increment v$v found its memory wrong: $(cat "$ST")"
echo "ok   krg restart $id $v (an increment, on node 2): memory exact"
# On another node: node 2 sends the versions it builds on first.
echo 2 >"$ST"
rid=$(on 1 "$KRG" restart "$id" "$v" -n 1)
[ -n "$rid" ] || fail "krg restart $id $v -n 1 printed no new id"
on 1 "$KRG" kill -s USR2 "$rid"
wait_check "the copy restarted on node 1 to check its memory"
status_is "check 0" || fail "the copy restarted on node 1 from increment v$v found its memory wrong: $(cat "$ST")"
[ "$(on 1 ls "/var/lib/krg/chkpt/$id" | wc -l)" -ge 2 ] || fail "node 1 did not receive the chain: $(on 1 ls "/var/lib/krg/chkpt/$id")"
echo "ok   krg restart $id $v -n 1 (the chain sent to node 1 first): memory exact"
echo 2 >"$ST"
# Every second again.
on 1 "$KRG" checkpoint --every 1s "$id" >/dev/null
wait_for 15 "two checkpoints more" entry_is "a[0]['version'] >= $v + 2 and a[0]['holders'] == [2, 3]" True

# Node 2 dies: node 3 restarts the application from its chain.
"$ADM" vcluster krgd 2 kill --prefix "$PREFIX"
wait_for 20 "the application running again on node 3" entry_is "a[0]['node'] == 3 and a[0]['recoveries'] == 1" True
rv=$(sed -n "s/.*app $id: node 2, where it ran, is down; restarting it on this node from its checkpoint v\([0-9]*\) .*/\1/p" "$(log_of 3)" | head -1)
[ -n "$rv" ] || fail "node 3's log does not say which checkpoint it restarted"
grep -q "app $id: checkpoint v$rv is incremental on v" "$(log_of 2)" || fail "node 3 restarted v$rv, not an increment"
nid=$(entry "a[0]['id']")
echo "ok   node 3 restarted it from increment v$rv as $nid"
on 1 "$KRG" kill -s USR1 "$nid"
wait_for 10 "round 3 done on node 3" status_is 3
on 1 "$KRG" kill -s USR2 "$nid"
wait_check "the application to check its memory"
status_is "check 0" || fail "after its restart from increment v$rv and a third round, its memory is wrong: $(cat "$ST")"
echo "ok   restarted on node 3 from increment v$rv, a third round there: memory exact"
wait_for 10 "the entry gone once it ended" entry_is "len(a)" 0
rm -rf "$W"
echo PASS
