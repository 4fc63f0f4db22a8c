#!/usr/bin/env bash
# krg run exit statuses: the command's code, 128+N for a signal, 127 not
# found, 126 not executable, 255 with one line for krg's own failures.
PREFIX=rst
. "$(dirname "$0")/common.sh"
start_run_cluster 3

st() { set +e; on 1 "$@" >"$TMPD/out" 2>"$TMPD/err"; echo $?; set -e; }

assert_eq "$(st krg run -n 3 -- true)" 0 "true"
assert_eq "$(st krg run -n 3 -- sh -c 'exit 3')" 3 "exit 3"
assert_eq "$(st krg run -n 2 -- sh -c 'exit 255')" 255 "exit 255"
assert_eq "$(st krg run -n 3 -- sh -c 'kill -SEGV $$')" 139 "SIGSEGV"
assert_eq "$(st krg run -n 3 -- sh -c 'kill -KILL $$')" 137 "SIGKILL"
assert_eq "$(st krg run -n 3 -- krg-no-such-command)" 127 "not found"
assert_eq "$(cat "$TMPD/err")" "krg run: krg-no-such-command: command not found" "not found message"
printf 'echo hi\n' >"$TMPD/noexec"
chmod 644 "$TMPD/noexec"
assert_eq "$(st krg run -n 3 -- "$TMPD/noexec")" 126 "not executable"
assert_eq "$(st krg run -n 3 -- "$TMPD")" 126 "directory"
assert_eq "$(st krg run -n 9 -- true)" 255 "unknown node"
assert_eq "$(cat "$TMPD/err")" "krg run: no node 9 in this cluster" "unknown node message"
assert_eq "$(st krg run -n 3 --cwd /no/such/dir -- true)" 255 "bad cwd"
assert_eq "$(wc -l <"$TMPD/err")" 1 "bad cwd: one line"
assert_contains "$(cat "$TMPD/err")" "/no/such/dir" "bad cwd message"
# Local target and the same node through the loopback path.
assert_eq "$(st krg run -n 1 -- sh -c 'exit 7')" 7 "local exit 7"
assert_eq "$(st krg run -- sh -c 'kill -TERM $$')" 143 "local SIGTERM"
# A script without #! runs with /bin/sh, as with execvp.
printf 'exit 5\n' >"$TMPD/script"
chmod 755 "$TMPD/script"
assert_eq "$(st krg run -n 2 -- "$TMPD/script")" 5 "script without #!"
# Node down: refused with one line.
"$ADM" vcluster krgd 3 kill --prefix "$PREFIX"
wait_for 10 "node 3 down" state_is 1 3 down
assert_eq "$(st krg run -n 3 -- true)" 255 "node down"
assert_contains "$(cat "$TMPD/err")" "node 3" "node down message"
echo PASS
