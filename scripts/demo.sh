#!/usr/bin/env bash
# `make run`: krg's main job on a local virtual cluster. Starts 3 nodes,
# shows them forming one cluster, survives a node failure, runs programs
# across nodes, then tears everything down (also on Ctrl-C or error).
set -euo pipefail
BUILD=${1:-build}
ADM="$BUILD/krgadm"
P=demo
[ "$(id -u)" -eq 0 ] || { echo "make run: needs root (namespaces, cgroups, bridge)" >&2; exit 1; }
trap '"$ADM" vcluster down --prefix $P >/dev/null 2>&1 || true' EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
on() { local n=$1; shift; "$ADM" vcluster exec "$n" --prefix $P -- "$@"; }

"$ADM" vcluster down --prefix $P >/dev/null 2>&1 || true
step "krgadm vcluster up 3: three nodes, each with its own net/mount/pid/ipc/uts namespaces and a 0.5-CPU cgroup"
"$ADM" vcluster up 3 --prefix $P --cpus 0.5
for i in 1 2 3; do on $i krgadm cluster wait --timeout 30; done

step "krgadm cluster status (on node 1)"
on 1 krgadm cluster status

step "krgadm nodes del -n 3, then nodes add -n 3 (through the raft leader)"
on 1 krgadm nodes del -n 3
on 2 krgadm nodes status -n 3
on 1 krgadm nodes add -n 3

step "kill -9 krgd on node 2: the majority marks it down"
"$ADM" vcluster krgd 2 kill --prefix $P
for _ in $(seq 60); do
	on 1 krgadm nodes status -n 2 --json | grep -q '"state":"down"' && break
	sleep 0.1
done
on 1 krgadm nodes status

step "restart krgd on node 2: it comes back up"
"$ADM" vcluster krgd 2 start --prefix $P
for i in 1 2 3; do on $i krgadm cluster wait --timeout 15 >/dev/null; done
on 3 krgadm nodes status --json

step "krg run: programs on other nodes, as you, with their stdio and exit status"
on 1 krg run -n 3 -- sh -c 'echo "hello from $(hostname), pid $$"'
on 1 krg run --auto -- python3 -c 'import socket; print("--auto chose", socket.gethostname())'
echo "gzip on node 2 of a stream from node 1:"
head -c 10000000 /dev/urandom | on 1 krg run -n 2 -- gzip -1 | wc -c
set +e
on 1 krg run -n 3 -- sh -c 'exit 3'
echo "exit status seen on node 1: $?"
set -e

step "krg ps / krg kill: one process table for the cluster"
on 2 krg run -n 3 -- sleep 60 &
sleep 1
on 1 krg ps -a
id=$(on 1 krg ps -a --json | python3 -c 'import json,sys; print([p["id"] for p in json.load(sys.stdin)["processes"] if "sleep" in p["command"]][0])')
on 1 krg kill "$id"
wait || true

step "krg checkpoint / krg restart: a pipeline saved on node 2, finished on node 3"
PIPE='for i in $(seq 1 20); do seq 1 $((i * 20000)); sleep 0.1; done | gzip -1 | wc -c'
echo "uninterrupted: $(bash -c "$PIPE") bytes"
on 1 krg run -n 2 -- bash -c "$PIPE" </dev/null >/dev/null 2>&1 &
sleep 1
app=$(on 1 krg ps -a --json | python3 -c 'import json,sys; print(min(p["id"] for p in json.load(sys.stdin)["processes"] if p["command"].startswith("bash -c for")))')
on 1 krg ps -a
on 1 krg checkpoint "$app" --kill -d "demo pipeline"
wait || true
on 1 krg restart "$app" -n 3 --foreground | sed 's/^/restarted on node 3: /; s/$/ bytes/'

step "krgadm cluster poweroff, krgadm vcluster down"
on 1 krgadm cluster poweroff
"$ADM" vcluster down --prefix $P
echo "done: nothing left behind"
