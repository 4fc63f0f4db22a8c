#!/usr/bin/env bash
# krg restart --foreground through krgd (2-node vcluster, tmux): an
# interactive python3 started by `krg run -n 2` on a terminal is
# checkpointed by id with --kill, then restarted on node 1 from another
# terminal with `krg restart ID -n 1 --foreground`: the image is copied
# to node 1, restored under an exec stream, and the program answers on
# the new terminal with its state, its new node's name, that terminal's
# size; krg exits with its status. Without a terminal, its terminal fds
# cannot be given one: one clear line, non-zero.
PREFIX=fg
. "$KRG_SOURCE_DIR/tests/cluster/common.sh"
KRG=$KRG_BUILD_DIR/krg
[ "$(id -u)" = 0 ] || { echo "FAIL: cannot run: needs root"; exit 1; }
command -v tmux >/dev/null || { echo "FAIL: cannot run: no tmux"; exit 1; }
start_cluster 2
# Where processes run is checked here: no balancer moving them meanwhile.
on 1 krgadm sched disable mosix >/dev/null
W=$(mktemp -d "$KRG_BUILD_DIR/ckpt-fg.XXXXXX")
chmod 755 "$W"
s1=krgfg1-$$ s2=krgfg2-$$
cleanup_fg() { tmux kill-session -t $s1 2>/dev/null; tmux kill-session -t $s2 2>/dev/null; rm -rf "$W"; }
trap 'rc=$?; cleanup_fg; [ $rc -ne 0 ] && dump_logs; "$ADM" vcluster down --prefix "$PREFIX" >/dev/null 2>&1 || true; exit $rc' EXIT
has() { tmux capture-pane -p -t "$1" | grep -q -- "$2"; }
screens() { for s in $s1 $s2; do echo "--- $s"; tmux capture-pane -p -t $s 2>/dev/null; done; }

cat >"$W/inter.py" <<'PYEOF'
import os, socket, sys
n, total = 0, 0
while True:
    sys.stdout.write("prompt%d> " % n)
    sys.stdout.flush()
    line = sys.stdin.readline().strip()
    if line == "quit":
        print("bye total=%d" % total)
        sys.exit(3)
    if line == "size":
        sz = os.get_terminal_size(0)
        print("size %dx%d" % (sz.columns, sz.lines))
    elif line == "host":
        print("host", socket.gethostname())
    else:
        n += 1
        total += len(line)
        print("got %s total=%d" % (line, total))
PYEOF

tmux new-session -d -s $s1 -x 80 -y 20 "$ADM vcluster exec 1 --prefix $PREFIX -- krg run -n 2 -- /usr/bin/python3 $W/inter.py; echo rc1=\$?; sleep 60"
wait_for 15 "first prompt" has $s1 'prompt0>'
tmux send-keys -t $s1 "hello" Enter
wait_for 5 "first answer" has $s1 'got hello total=5'
id=$(on 1 "$KRG" ps -a --json | python3 -c '
import json, sys
print([p["id"] for p in json.load(sys.stdin)["processes"] if "inter.py" in p["command"] and p["node"] == 2 and "python3" in p["command"].split()[0]][0])')
path=$(on 1 "$KRG" checkpoint "$id" --kill) || { screens; fail "checkpoint failed"; }
wait_for 10 "krg run ends with the kill" has $s1 'rc1=137'
echo "ok   interactive python3 on node 2 checkpointed as $path"

out=$(on 1 "$KRG" restart "$id" -n 1 --foreground </dev/null 2>&1) && fail "a terminal program restarted without a terminal"
[ "$(echo "$out" | wc -l)" = 1 ] && echo "$out" | grep -q 'terminal' || fail "unclear error: $out"
echo "ok   no terminal to give it: $out"

tmux new-session -d -s $s2 -x 70 -y 15 "$ADM vcluster exec 1 --prefix $PREFIX -- krg restart $id -n 1 --foreground; echo rc2=\$?; sleep 60"
sleep 2
tmux send-keys -t $s2 "world" Enter
wait_for 10 "state kept after the restart" has $s2 'got world total=10' || { screens; exit 1; }
tmux send-keys -t $s2 "host" Enter
wait_for 5 "now on node 1" has $s2 "host $PREFIX-node1"
tmux send-keys -t $s2 "size" Enter
wait_for 5 "the new terminal's size" has $s2 'size 70x15'
tmux send-keys -t $s2 "quit" Enter
wait_for 10 "its exit status through krg" has $s2 'rc2=3'
echo "ok   restarted on node 1 in the foreground: state, node, terminal, exit status"

# A pipeline on pipes (no terminal): bash waiting for seq | gzip | wc, its
# stdout the krg run stream. Checkpointed mid-way, restarted on node 1 in
# the foreground: the streams are inherited from the new stream, and the
# count is the uninterrupted one.
# (a loop with pauses, ~3 s whatever the machine: still running at the checkpoint)
PIPE='for i in $(seq 1 30); do seq 1 $((i * 20000)); sleep 0.1; done | gzip -1 | wc -c'
want=$(bash -c "$PIPE")
on 1 "$KRG" run -n 2 -- bash -c "$PIPE" </dev/null >"$W/pipe.out" 2>&1 &
run=$!
pid_of_bash() { on 1 "$KRG" ps -a --json | python3 -c '
import json, sys
ps = [p for p in json.load(sys.stdin)["processes"] if p["node"] == 2 and p["command"].startswith("bash -c for i")]
print(ps[0]["id"] if ps else "")'; }
pipeline_runs() { [ -n "$(pid_of_bash)" ]; }
wait_for 10 "the pipeline runs on node 2" pipeline_runs
sleep 0.5
pid=$(pid_of_bash)
on 1 "$KRG" checkpoint "$pid" --kill >/dev/null || fail "pipeline checkpoint failed"
wait $run || true
# The tree comes back with its own pids, from node 2's range: node 1's own
# processes (the restart's helpers, its file view's server) take theirs
# from node 1's (issue 14 item 12), so they are free there.
got=$(on 1 "$KRG" restart "$pid" -n 1 --foreground </dev/null) || fail "pipeline restart failed: $got"
[ "$got" = "$want" ] || fail "the restarted pipeline counted '$got', uninterrupted $want"
echo "ok   a loop | gzip | wc checkpointed on node 2 and finished on node 1 in the foreground: $got bytes, as uninterrupted"
echo PASS
