#!/bin/bash
# Real programs checkpointed mid-work and restarted (issue 4): each runs
# once uninterrupted for the reference output, then again with stdin and
# stdout on regular files (no tty, no pipe to another process), is
# checkpointed with --kill once it has written some output, restarted
# with `krg restart --dir` (which waits for it), and its output must be
# byte for byte the reference (cmp). Cases: python3 with state (a dict
# and a running hash), sqlite3 with an open database (inserts in a loop
# of transactions, script on stdin), gzip on a large stream, mt_work.c
# (threads in rounds with barriers), bash in a pure-builtin loop, and in
# their natural form, as process trees: a bash loop running external
# commands (a command substitution with a pipeline, sleep), and gzip in a
# pipeline under bash (cat | gzip | cat: bytes in flight in two pipes).
# Usage: programs.sh [CASE...]   (python sqlite gzip mt bash bashfork gzpipe)
set -u
B=$(realpath "${KRG_BUILD_DIR:-$(dirname "$0")/../../build}")
KRG=$B/krg
T=$B/tests/ckpt
[ "$(id -u)" = 0 ] || { echo "FAIL: cannot run: needs root"; exit 1; }
WORK=$(mktemp -d /tmp/krg-ckpt-prog.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
failures=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; failures=$((failures + 1)); }

# size_at_least FILE BYTES PID: wait (10 s) until FILE holds BYTES or more
# while PID still runs.
size_at_least() {
	for _ in $(seq 200); do
		kill -0 "$3" 2>/dev/null || return 1
		[ "$(stat -c %s "$1" 2>/dev/null || echo 0)" -ge "$2" ] && return 0
		sleep 0.05
	done
	return 1
}

# closefds: close every fd above 2 (whatever the caller leaked, e.g. a
# pipe of the harness, would make the checkpoint refuse).
closefds() {
	local f n
	for f in /proc/$BASHPID/fd/*; do
		n=${f##*/}
		[ "$n" -gt 2 ] && eval "exec $n>&-"
	done 2>/dev/null
	return 0
}

# case NAME IN OUT MINBYTES CMD...: run CMD in $WORK/NAME/{ref,ck} with
# stdin IN (relative to that directory, or /dev/null) and stdout OUT;
# prep_NAME, if defined, is run in each directory first. Checkpoint the
# second run once OUT holds MINBYTES, restart, compare OUT (and the exit
# status) with the reference.
run_case() {
	local name=$1 in=$2 out=$3 min=$4; shift 4
	local d=$WORK/$name rc_ref rc pid
	mkdir -p "$d/ref" "$d/ck"
	for sub in ref ck; do
		if declare -F "prep_$name" >/dev/null; then (cd "$d/$sub" && "prep_$name") || { bad "$name: prep"; return; }; fi
	done
	( cd "$d/ref" && closefds && exec "$@" <"$in" >"$out" 2>err )
	rc_ref=$?
	( cd "$d/ck" && closefds && exec "$@" <"$in" >"$out" 2>err ) &
	pid=$!
	if ! size_at_least "$d/ck/$out" "$min" $pid; then
		bad "$name: finished or stalled before the checkpoint (output $(stat -c %s "$d/ck/$out") bytes, reference $(stat -c %s "$d/ref/$out"))"
		kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
		return
	fi
	# (stderr off meanwhile: bash reports the job it sees killed)
	exec 9>&2 2>/dev/null
	"$KRG" checkpoint $pid --dir "$d/img" --kill 2>"$d/ckpt.err"
	rc=$?
	[ $rc = 0 ] || kill -9 $pid
	wait $pid
	exec 2>&9 9>&-
	if [ $rc != 0 ]; then
		bad "$name: checkpoint: $(cat "$d/ckpt.err")"
		return
	fi
	local at; at=$(stat -c %s "$d/ck/$out")
	"$KRG" restart --dir "$d/img" 2>"$d/restart.err"
	rc=$?
	if [ $rc != "$rc_ref" ]; then
		bad "$name: exit $rc after restart, $rc_ref uninterrupted: $(cat "$d/restart.err" "$d/ck/err" | head -5)"
	elif ! cmp -s "$d/ref/$out" "$d/ck/$out"; then
		bad "$name: output differs: $(cmp "$d/ref/$out" "$d/ck/$out" 2>&1) (reference $(stat -c %s "$d/ref/$out") bytes, restarted $(stat -c %s "$d/ck/$out"))"
	elif [ -n "${check_extra:-}" ] && ! $check_extra "$d"; then
		bad "$name: extra check"
	else
		ok "$name: checkpointed at $at of $(stat -c %s "$d/ref/$out") bytes, same output ($(sha256sum <"$d/ref/$out" | cut -c1-16))"
	fi
}

# python3 with state: a dict of counters and a running sha256, one progress
# line per step, a pause between steps (time.sleep: an interrupted
# nanosleep comes back as EINTR, which Python retries).
PY=$(command -v /usr/bin/python3 python3 | head -1)
case_python() {
	cat >"$WORK/prog.py" <<'PYEOF'
import hashlib, sys, time
counts = {}
h = hashlib.sha256()
x = 1
for step in range(60):
    for i in range(20000):
        x = (x * 1103515245 + 12345) % 2147483648
        k = "k%d" % (x % 997)
        counts[k] = counts.get(k, 0) + 1
    h.update(repr(sorted(counts.items())[:50]).encode())
    print(step, len(counts), h.hexdigest()[:16], flush=True)
    time.sleep(0.03)
print("done", sum(counts.values()), h.hexdigest())
PYEOF
	run_case python /dev/null out.txt 600 "$PY" "$WORK/prog.py"
}

# sqlite3 with an open database: a script on stdin, 24 transactions of
# 20000 inserts each (an index, so each costs something), a count after
# each, a digest of the whole table at the end.
prep_sqlite() { rm -f test.db; }
case_sqlite() {
	local s=$WORK/sqlite.sql i
	{
		echo "CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, v TEXT); CREATE INDEX tk ON t(k);"
		for ((i = 0; i < 24; i++)); do
			echo "BEGIN;"
			echo "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM c WHERE n < 20000)"
			echo "  INSERT INTO t(k, v) SELECT (n * 7919 + $i) % 10007, printf('row-%d-%d', $i, n) FROM c;"
			echo "COMMIT;"
			echo "SELECT $i, count(*), sum(k) FROM t;"
		done
		echo "SELECT count(*), sum(k), sum(length(v)), max(v) FROM t;"
	} >"$s"
	run_case sqlite "$s" out.txt 100 sqlite3 test.db
}

# gzip on a large stream, stdin and stdout regular files.
case_gzip() {
	seq 1 6000000 >"$WORK/big.in"
	run_case gzip "$WORK/big.in" out.gz 1000000 gzip -9 -n -c
}

case_mt() { run_case mt /dev/null out.txt 200 "$T/mt_work" 60 5000000; }

# bash, only builtins in the loop (no fork): one process.
case_bash() {
	run_case bash /dev/null out.txt 1000 bash -c '
		declare -A seen; i=0; s=7
		while ((i < 400000)); do
			s=$(( (s * 31 + i) % 1000003 )); seen[$((s % 1000))]=$i
			((i % 2000 == 0)) && echo "$i $s ${#seen[@]}"
			((i++))
		done
		echo "done $s ${#seen[@]} ${seen[17]}"'
}

# bash running external commands: checkpointed with children (a sleep, a
# subshell with a pipeline) under it, which come back with their pids.
case_bashfork() {
	run_case bashfork /dev/null out.txt 300 bash -c '
		s=0
		for i in $(seq 1 400); do
			h=$(printf "%d-%d" "$i" "$s" | sha256sum | cut -c1-12)
			s=$(( (s * 7 + i) % 100003 ))
			echo "$i $s $h"
			((i % 20 == 0)) && sleep 0.05
		done
		echo done $s'
}

# gzip in a pipeline: bash waits for cat | gzip | cat, two pipes between
# three processes with bytes in flight at the checkpoint.
case_gzpipe() {
	[ -e "$WORK/big.in" ] || seq 1 6000000 >"$WORK/big.in"
	run_case gzpipe "$WORK/big.in" out.gz 1000000 bash -c 'cat | gzip -6 -n -c | cat; echo "status ${PIPESTATUS[*]}" >&2'
}

cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(python sqlite gzip mt bash bashfork gzpipe)
for c in "${cases[@]}"; do "case_$c"; done
echo "$failures failure(s)"
[ $failures = 0 ]
