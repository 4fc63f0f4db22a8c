#!/bin/bash
# Runs every System V IPC conformance program (tests/ipc) on this
# machine's kernel, each in a fresh IPC namespace (isolated from other
# IPC users; limits tests get small limits there). Programs with a peer
# role run twice: alone (forking their peer) and as two processes,
# creator and peer, sharing a key, as a runner on two nodes would start
# them. One line per run; exit 0 only if every run passed. Needs root.
set -u
dir=${1:?usage: run_native.sh BUILD_DIR_OF_tests/ipc}
[ "$(id -u)" = 0 ] || { echo "run_native.sh: needs root (unshare --ipc, setuid nobody)"; exit 1; }
command -v unshare >/dev/null || { echo "run_native.sh: unshare (util-linux) missing"; exit 1; }

# Programs whose checks involve a second process that can be elsewhere.
roles="msgget01 msgsnd01 msgsnd02 msgsnd03 msgrcv01 msgrcv04 msgrcv05 msgctl01
       semget01 semop02 semop03 semop04 semop05 semop06 semctl01"
single="msgget02 msgget03 msgrcv02 msgrcv03 msgctl02 msgctl03 semget02 semop01
        semctl02 semctl03"

# Limits lowered inside the namespace for the programs that fill them.
setup_for() {
	case $1 in
	msgget03) echo 'echo 40 > /proc/sys/kernel/msgmni' ;;
	semget02) echo 'echo "250 400 32 30" > /proc/sys/kernel/sem' ;;
	*) echo ':' ;;
	esac
}

fails=0
runs=0
run() { # name label command...
	local name=$1 label=$2; shift 2
	local out rc
	out=$(timeout 120 unshare --ipc bash -c "$(setup_for "$name"); $*" 2>&1)
	rc=$?
	runs=$((runs + 1))
	if [ $rc -eq 0 ]; then
		echo "PASS $name ($label)"
	else
		fails=$((fails + 1))
		echo "FAIL $name ($label): exit $rc"
		[ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/    /'
	fi
}

n=0
for p in $single $roles; do
	[ -x "$dir/$p" ] || { echo "FAIL $p: not built in $dir"; fails=$((fails + 1)); continue; }
	run "$p" alone "'$dir/$p'"
done
for p in $roles; do
	n=$((n + 1))
	key=$(printf '0x5a%06x' $((($$ * 64 + n) & 0xffffff)))
	run "$p" "creator + peer, key $key" \
		"'$dir/$p' --role=creator $key & c=\$!; '$dir/$p' --role=peer $key; pr=\$?; wait \$c; cr=\$?; [ \$pr = 0 ] && [ \$cr = 0 ]"
done
# Bad arguments: one line, status 2, no crash.
out=$("$dir/msgget01" --role=bogus 2>&1); rc=$?
runs=$((runs + 1))
if [ $rc -eq 2 ] && [ "$(printf '%s\n' "$out" | wc -l)" = 1 ]; then echo "PASS bad arguments"; else
	echo "FAIL bad arguments: exit $rc, output: $out"; fails=$((fails + 1)); fi

echo "ipc-native: $((runs - fails)) of $runs runs passed"
[ $fails -eq 0 ]
