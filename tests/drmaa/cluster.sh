#!/usr/bin/env bash
# DRMAA on a 3-node vcluster: the C suite (test_drmaa, every function and
# error path) inside node 1; then Debian's python3-drmaa, unmodified, submits to a 3-node vcluster through
# krg's libdrmaa (integration.py: single and bulk jobs, exit status and
# rusage, suspend/resume/terminate, hold/release, bad input, reattach),
# then another user sees none of those jobs.
PREFIX=drpy
. "$KRG_SOURCE_DIR/tests/run/common.sh"
PY=/usr/bin/python3
LIB="$KRG_BUILD_DIR/src/drmaa/libdrmaa.so"
start_run_cluster 3 --cpus 0.5

mkdir -p "$TMPD/c"
on 1 env KRG_DRMAA_CLUSTER=1 KRG_DRMAA_SCRATCH="$TMPD/c" "$KRG_BUILD_DIR/tests/drmaa/test_drmaa" ||
	fail "test_drmaa failed"

if ! DRMAA_LIBRARY_PATH="$LIB" "$PY" -c 'import drmaa' 2>/dev/null; then
	# scripts/install-deps.sh installs it; try once more here.
	[ "$(id -u)" -eq 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-drmaa >/dev/null 2>&1
	if ! DRMAA_LIBRARY_PATH="$LIB" "$PY" -c 'import drmaa' 2>/dev/null; then
		echo "FAIL: cannot run: python3-drmaa (Debian) is not installed and could not be installed"
		exit 1
	fi
fi

on 1 env DRMAA_LIBRARY_PATH="$LIB" KRG="$KRG_BUILD_DIR/krg" "$PY" "$KRG_SOURCE_DIR/tests/drmaa/integration.py" "$TMPD" ||
	fail "integration.py failed"
read -r contact job <"$TMPD/session"

# Another user: an empty job list, and our job ids mean nothing to their sessions.
as_nobody() { on 1 setpriv --reuid=65534 --regid=65534 --clear-groups env -u KRG_DRMAA_DIR -u XDG_RUNTIME_DIR HOME=/ PATH="$KRG_BUILD_DIR:$PATH" "$@"; }
n=$(as_nobody krg jobs --json | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["jobs"]))')
[ "$n" = 0 ] || fail "nobody sees $n DRMAA jobs"
echo "ok: another user's krg jobs is empty"
out=$(as_nobody env DRMAA_LIBRARY_PATH="$LIB" "$PY" -c "
import drmaa
s = drmaa.Session(); s.initialize('$contact')
try:
    s.jobStatus('$job'); print('visible')
except drmaa.errors.InvalidJobException:
    print('invisible')
s.exit()" 2>&1) || fail "nobody's session failed: $out"
[ "$out" = invisible ] || fail "nobody's session under contact $contact: $out"
echo "ok: another user's session does not see job $job"
out=$(as_nobody env KRG_DRMAA_DIR=/tmp/krg-drmaa-0 krg jobs 2>&1) && fail "nobody read root's job directory: $out"
echo "$out" | grep -q "refused\|Permission denied" || fail "unexpected: $out"
echo "ok: root's job directory refused to nobody: $out"
# krg jobs: bad input is one line and exit 2.
for args in "--session a/b" "extra" "--frobnicate"; do
	# shellcheck disable=SC2086
	out=$(on 1 krg jobs $args 2>&1) && fail "krg jobs $args succeeded"
	[ "$(echo "$out" | wc -l)" = 1 ] || fail "krg jobs $args: $out"
done
out=$(on 1 krg jobs --session no-such-session 2>&1) && fail "krg jobs of a missing session succeeded"
echo "ok: krg jobs refuses bad input in one line ($out)"

# krg jobs --forget: reaped jobs go, nothing else.
count() { on 1 krg jobs --json | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["jobs"]))'; }
before=$(count)
out=$(on 1 krg jobs --forget)
after=$(count)
echo "$out" | grep -q "^forgot [1-9][0-9]* reaped jobs" || fail "krg jobs --forget: $out"
[ "$after" -lt "$before" ] || fail "krg jobs --forget: $before jobs before, $after after"
echo "ok: krg jobs --forget: $out ($before -> $after jobs)"
echo PASS
