#!/usr/bin/env bash
# An interactive program on a terminal across migrations (issue 5,
# acceptance 3), driven through tmux: `krg run` in a tmux pane runs
# inter.py on node 1 with a pty; it is moved to node 2 and back home while
# we type lines (read back upper-cased), one of them while it does not
# read (it moves with it), resize the window (the program reads the new
# size with TIOCGWINSZ on its SIGWINCH) and press Ctrl-C.
# The migrant has a terminal again on every node (isatty).
PREFIX=migtty${KRG_VC_SUFFIX:-} # KRG_VC_SUFFIX: two builds' runs at once do not share a vcluster (prefix <= 8 chars)
. "$KRG_SOURCE_DIR/tests/cluster/common.sh"
KRG=$KRG_BUILD_DIR/krg
[ "$(id -u)" = 0 ] || { echo "FAIL: cannot run: needs root"; exit 1; }
command -v tmux >/dev/null || { echo "FAIL: cannot run: no tmux"; exit 1; }
start_cluster 2
# Where processes run is checked here: no balancer moving them meanwhile.
on 1 krgadm sched disable mosix >/dev/null
W=$(mktemp -d "$KRG_BUILD_DIR/migrate-tty.XXXXXX")
chmod 755 "$W"
S=krg-$PREFIX-$$
export TMUX_TMPDIR=$W
trap 'rc=$?; tmux kill-server 2>/dev/null; [ $rc -ne 0 ] && dump_logs; "$ADM" vcluster down --prefix "$PREFIX" >/dev/null 2>&1; rm -rf "$W"; exit $rc' EXIT
cat >"$W/inter.py" <<'PY'
import fcntl, os, signal, struct, sys, termios, time
def size():
    r, c = struct.unpack("hh", fcntl.ioctl(1, termios.TIOCGWINSZ, b"0000"))
    return "%dx%d" % (r, c)
signal.signal(signal.SIGWINCH, lambda s, f: print("winch", size(), flush=True))
print("tty", os.isatty(0), os.isatty(1), size(), flush=True)
for line in sys.stdin:
    print("got", line.strip().upper(), os.isatty(0), os.isatty(1), flush=True)
    if line.strip() == "pause":
        while not os.path.exists(sys.argv[1] + "/resume"):
            time.sleep(0.02)
PY
tmux new-session -d -s "$S" -x 120 -y 40 "$ADM vcluster exec 1 --prefix $PREFIX -- $KRG run -n 1 -- python3 $W/inter.py $W; echo krg-run-exit \$?; sleep 30"
screen() { tmux capture-pane -p -J -t "$S"; }
shows() { screen | grep -q "$1"; }
wait_for 20 "the program's first line" shows "tty True True 40x120"
type_line() { tmux send-keys -t "$S" "$1" Enter; }
type_line hello
wait_for 10 "hello read at home" shows "got HELLO True True"
id=$(on 1 "$KRG" ps -a --json | python3 -c "
import json, sys
print([p['id'] for p in json.load(sys.stdin)['processes'] if 'inter.py' in p['command']][0])")
on 1 "$KRG" migrate "$id" 2 || fail "migrate to node 2"
type_line world
wait_for 10 "a line typed at home read on node 2, on a terminal" shows "got WORLD True True" || { screen; false; }
tmux resize-window -t "$S" -x 100 -y 30
wait_for 10 "the new size on node 2" shows "winch 30x100"
# A line typed while it does not read sits in node 2's terminal: it moves too.
type_line pause
wait_for 10 "pause" shows "got PAUSE True True"
type_line later
on 1 "$KRG" migrate "$id" 1 || fail "migrate home"
touch "$W/resume"
wait_for 10 "the line it had not read on node 2, read back home" shows "got LATER True True"
type_line again
wait_for 10 "a line read back home" shows "got AGAIN True True"
tmux send-keys -t "$S" C-c
wait_for 10 "Ctrl-C to end it" shows "krg-run-exit 130"
echo "ok   typed, read, resized and interrupted across 1 -> 2 -> 1 on a terminal"
echo PASS
