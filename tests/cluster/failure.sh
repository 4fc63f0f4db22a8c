#!/usr/bin/env bash
# Failure detection: SIGKILLed krgd and a cut link are marked down by the
# majority within 5 s and up again when they return; the minority side
# makes no decision and says so.
PREFIX=fail
. "$(dirname "$0")/common.sh"
start_cluster 3

# 1. SIGKILL krgd on node 3
"$ADM" vcluster krgd 3 kill --prefix "$PREFIX"
t0=$SECONDS
wait_for 8 "node 3 down after SIGKILL" state_is 1 3 down
dt=$((SECONDS - t0))
[ $dt -le 5 ] || fail "node 3 marked down after ${dt}s (> 5 s)"
# Followers learn the decision at the next heartbeat/append, so allow
# node 2 a moment to apply the committed entry.
wait_for 3 "node 2's view of node 3 is down" state_is 2 3 down
epoch_down=$(json_get 1 "s['epoch']")
"$ADM" vcluster krgd 3 start --prefix "$PREFIX"
wait_for 10 "node 3 up again" state_is 1 3 up
[ "$(json_get 1 "s['epoch']")" -gt "$epoch_down" ] || fail "epoch did not advance"
grep -q 'node 3 up -> down' "$(log_of 1)" || fail "log of node 1 does not say why node 3 went down"

# 2. Kill the leader: the rest elect a new one and mark it down.
leader=$(json_get 1 "s['leader']")
other=1
[ "$leader" = 1 ] && other=2
"$ADM" vcluster krgd "$leader" kill --prefix "$PREFIX"
t0=$SECONDS
wait_for 10 "old leader $leader down" state_is "$other" "$leader" down
dt=$((SECONDS - t0))
[ $dt -le 5 ] || fail "leader marked down after ${dt}s (> 5 s)"
"$ADM" vcluster krgd "$leader" start --prefix "$PREFIX"
wait_for 10 "node $leader up again" state_is "$other" "$leader" up

# 3. Cut node 3's link: majority marks it down, node 3 has no quorum.
on 1 krgadm cluster wait --timeout 10
"$ADM" vcluster link 3 down --prefix "$PREFIX"
t0=$SECONDS
wait_for 8 "node 3 down after link cut" state_is 1 3 down
dt=$((SECONDS - t0))
[ $dt -le 5 ] || fail "cut node marked down after ${dt}s (> 5 s)"
wait_for 8 "node 3 reports no quorum" bash -c "[ \"\$('$ADM' vcluster exec 3 --prefix $PREFIX -- krgadm cluster status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"quorum\"])')\" = False ]"
on 3 krgadm cluster status | grep -q 'makes no membership decision' || fail "minority status does not say it decides nothing"
# The minority cannot change membership.
if out=$(on 3 krgadm nodes del -n 2 2>&1); then fail "minority accepted nodes del"; fi
echo "$out" | grep -q 'no quorum' || fail "minority refusal unclear: $out"
"$ADM" vcluster link 3 up --prefix "$PREFIX"
wait_for 10 "node 3 up after heal" state_is 1 3 up
wait_for 10 "node 3 has quorum again" bash -c "[ \"\$('$ADM' vcluster exec 3 --prefix $PREFIX -- krgadm cluster status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"quorum\"])')\" = True ]"
echo PASS
