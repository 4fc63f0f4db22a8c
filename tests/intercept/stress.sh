#!/usr/bin/env bash
# Debian's stress-ng System V message and semaphore stressors under
# `krg run`, with --verify, workers on both nodes of a 2-node vcluster at
# once (issue 16, tests): every msgsnd/msgrcv/semop of theirs goes through
# the interception to the cluster IPC service. Each must report a
# successful run with bogo ops done, and both krgds stay up.
PREFIX=icstress
. "$KRG_SOURCE_DIR/tests/cluster/common.sh"
KRG=$KRG_BUILD_DIR/krg
[ "$(id -u)" = 0 ] || fail "cannot run: needs root"
command -v stress-ng >/dev/null || fail "cannot run: stress-ng missing (scripts/install-deps.sh)"
W=$(mktemp -d "$KRG_BUILD_DIR/intercept-stress.XXXXXX")
chmod 755 "$W"
start_cluster 2
trap 'rc=$?; [ $rc -ne 0 ] && dump_logs; "$ADM" vcluster down --prefix "$PREFIX" >/dev/null 2>&1 || true; rm -rf "$W"; exit $rc' EXIT
on 1 krgadm sched disable mosix >/dev/null
runs=()
for node in 1 2; do
	for s in msg sem-sysv; do
		on 1 sh -c "timeout 90 $KRG run -n $node -- stress-ng --$s 2 --verify -t 5 --metrics-brief >$W/$s.$node 2>&1; echo rc=\$? >>$W/$s.$node" &
		runs+=("$s.$node")
	done
done
wait
for r in "${runs[@]}"; do
	out=$(cat "$W/$r")
	assert_contains "$out" "successful run completed" "stress-ng ${r%.*} on node ${r##*.}"
	assert_contains "$out" "rc=0" "stress-ng ${r%.*} on node ${r##*.} exit status"
	ops=$(awk -v s="${r%.*}" '$4 == s {print $5}' "$W/$r")
	[ -n "$ops" ] && [ "$ops" -gt 0 ] || fail "stress-ng ${r%.*} on node ${r##*.}: no bogo ops: $out"
	echo "ok ${r%.*} on node ${r##*.}: $ops bogo ops in 5 s"
done
on 1 pgrep -x krgd >/dev/null && on 2 pgrep -x krgd >/dev/null || fail "a krgd died"
echo PASS
