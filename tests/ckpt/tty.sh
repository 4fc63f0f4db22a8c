#!/usr/bin/env bash
# Terminals (tmux): an interactive python3 on a terminal is checkpointed
# with --kill mid-session, then restarted in another terminal with
# --replace-tty: it answers there with the state it had (a running sum),
# sees that terminal's size, Ctrl-C reaches it (the restarted root is a
# job of krg's terminal, krg only waits) and krg exits with its status.
# Without --replace-tty, once the original terminal is gone, restart says
# so in one line.
set -u
B=$(realpath "${KRG_BUILD_DIR:-$(dirname "$0")/../../build}")
KRG=$B/krg
[ "$(id -u)" = 0 ] || { echo "FAIL: cannot run: needs root"; exit 1; }
command -v tmux >/dev/null || { echo "FAIL: cannot run: no tmux"; exit 1; }
PY=/usr/bin/python3
W=$(mktemp -d /tmp/krg-ckpt-tty.XXXXXX)
s1=krgtty1-$$ s2=krgtty2-$$
trap 'tmux kill-session -t $s1 2>/dev/null; tmux kill-session -t $s2 2>/dev/null; pkill -9 -f "$W/inter.py" 2>/dev/null; rm -rf "$W"' EXIT
fail() { echo "FAIL: $*"; for s in $s1 $s2; do echo "--- $s"; tmux capture-pane -p -t $s 2>/dev/null; done; exit 1; }
wait_for() { local what=$1 i; shift; for i in $(seq 100); do "$@" && return 0; sleep 0.1; done; fail "timed out: $what"; }
has() { tmux capture-pane -p -t "$1" | grep -q -- "$2"; }

cat >"$W/inter.py" <<'PYEOF'
import os, sys
n, total = 0, 0
while True:
    sys.stdout.write("prompt%d> " % n)
    sys.stdout.flush()
    line = sys.stdin.readline()
    if not line or line.strip() == "quit":
        print("bye total=%d" % total)
        break
    if line.strip() == "size":
        sz = os.get_terminal_size(0)
        print("size %dx%d" % (sz.columns, sz.lines))
        continue
    n += 1
    total += len(line.strip())
    print("got %s total=%d tty=%s" % (line.strip(), total, os.isatty(0)))
PYEOF

tmux new-session -d -s $s1 -x 80 -y 20 "$PY $W/inter.py; sleep 60"
wait_for "first prompt" has $s1 'prompt0>'
tmux send-keys -t $s1 "hello" Enter
wait_for "first answer" has $s1 'got hello total=5'
pid=$(pgrep -f "^$PY $W/inter.py")
"$KRG" checkpoint "$pid" --dir "$W/img" --kill 2>"$W/err" || fail "checkpoint: $(cat "$W/err")"
"$KRG" image show "$W/img" | grep -q 'fd 0 .*tty .*/dev/pts/' || fail "fd 0 not saved as a terminal"

tmux new-session -d -s $s2 -x 70 -y 15 "$KRG restart --dir $W/img --replace-tty; echo rc=\$?; sleep 60"
sleep 1
tmux send-keys -t $s2 "world" Enter
wait_for "state kept on the new terminal" has $s2 'got world total=10 tty=True'
tmux send-keys -t $s2 "size" Enter
wait_for "the new terminal's size" has $s2 'size 70x15'
tmux send-keys -t $s2 C-c
wait_for "Ctrl-C reached the restarted job" has $s2 'KeyboardInterrupt'
wait_for "krg's exit status" has $s2 'rc=1\|rc=130'
echo "ok   restarted on another terminal with --replace-tty: state, size, Ctrl-C"

# Once its terminal is gone, a plain restart says so.
tmux kill-session -t $s1
for _ in $(seq 50); do [ -e /dev/pts/999999 ] || break; sleep 0.1; done
out=$(timeout 10 "$KRG" restart --dir "$W/img" </dev/null 2>&1 >/dev/null)
rc=$?
if [ $rc = 0 ] || [ $rc = 124 ]; then
	# the pts number was reused by another terminal meanwhile: not a failure of ours
	echo "skip terminal-gone check (pts reused)"
else
	[ "$(echo "$out" | wc -l)" = 1 ] && echo "$out" | grep -q 'terminal .*replace-tty' || fail "unclear error: $out"
	echo "ok   original terminal gone: $out"
fi
echo PASS
