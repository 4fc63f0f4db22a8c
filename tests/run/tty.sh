#!/usr/bin/env bash
# krg run on a terminal (tmux): the remote sees a tty, follows window
# resizes, and Ctrl-C interrupts the remote foreground job.
PREFIX=rtty
. "$(dirname "$0")/common.sh"
start_run_cluster 2
sess=krgtty$$
tmux kill-session -t "$sess" 2>/dev/null || true
trap 'rc=$?; [ "$BASHPID" = "$$" ] || exit $rc; tmux kill-session -t "$sess" 2>/dev/null || true; [ $rc -ne 0 ] && dump_logs; "$ADM" vcluster down --prefix "$PREFIX" >/dev/null 2>&1 || true; run_cleanup; exit $rc' EXIT
tmux new-session -d -s "$sess" -x 100 -y 30 "$ADM vcluster exec 1 --prefix $PREFIX -- env PS1='krgprompt\$ ' TERM=xterm krg run -n 2 -- bash --norc -i; echo rc=\$?; sleep 30"
screen() { tmux capture-pane -p -t "$sess"; }
has() { screen | grep -q "$1"; }
wait_for 10 "remote prompt" has 'krgprompt'
tmux send-keys -t "$sess" "python3 -c 'import os; print(\"TTY\", os.isatty(0), os.isatty(1))'; hostname" Enter
wait_for 10 "isatty" has 'TTY True True'
wait_for 5 "remote host" has "$PREFIX-node2"
tmux send-keys -t "$sess" "stty size" Enter
wait_for 5 "size 30 100" has '^30 100'
tmux resize-window -t "$sess" -x 90 -y 25
sleep 0.5
tmux send-keys -t "$sess" "stty size" Enter
wait_for 5 "size after resize" has '^25 90'
tmux send-keys -t "$sess" "sleep 100" Enter
wait_for 5 "remote sleep" bash -c "$ADM vcluster exec 2 --prefix $PREFIX -- pgrep -x sleep"
tmux send-keys -t "$sess" C-c
wait_for 5 "sleep gone" bash -c "! $ADM vcluster exec 2 --prefix $PREFIX -- pgrep -x sleep"
# The prompt is back and says the job died of SIGINT.
tmux send-keys -t "$sess" "echo after-sleep-\$?" Enter
wait_for 5 "sleep interrupted" has 'after-sleep-130'
# The shell's exit status comes back through krg.
tmux send-keys -t "$sess" "exit 4" Enter
wait_for 5 "krg exit status" bash -c "tmux capture-pane -p -t $sess | grep -q 'rc=4'"
echo PASS
