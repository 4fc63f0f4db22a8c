#!/usr/bin/env bash
# Fds that stay home while their process migrates are forwarded, not
# replaced (issue 14 item 13, docs/migration.md "Forwarded fds"), on a
# 3-node vcluster with fwd.py: a parent stays on node 1, its child is
# migrated to node 2 (and in a second run on to node 3), then
#   pipes:   end of file and EPIPE go through both ways, exactly when the
#            last end closes (before: the reader at home hung for ever);
#   sockets: seqpacket, datagram and stream socketpairs keep their type,
#            their message boundaries, both directions, shutdown and close
#            (before: a one-way FIFO, read gave EBADF);
#   tcp:     a TCP connection whose client moved, likewise;
#   names:   its getsockname/getpeername, and a unix connection's, give
#            home's addresses after the moves, SO_DOMAIN/SO_PROTOCOL
#            home's family and protocol (before: the local socketpair
#            end's, AF_UNIX and unnamed);
#   creds:   a user's process connected over unix to another user's: its
#            SO_PEERCRED, SO_PEERGROUPS and SO_PEERSEC after the moves are
#            what home's kernel gave (before: the holder's, root); also
#            with KRG_FWD_NOFILTER=1 (migrate-fwd-nofilter: every krgd has
#            ipc_intercept = off, no trap, the kernel answers from the
#            socketpair the holder made with the peer's pid and ids;
#            before: uid 0, gid 0, root's groups);
#   fdpass:  a message passing fds (SCM_RIGHTS) over a forwarded socket
#            is not delivered without them (before: delivered, its fds
#            dropped); the socket is shut at both ends, logged by name;
#   listen:  a listening TCP socket cannot be forwarded: krg migrate
#            refuses, naming the process and the fd, and it goes on at
#            home, accepting;
#   udp:     nor can an unconnected UDP socket: refused likewise, it goes
#            on sending and receiving.
#   fdqueued: nor a unix socket with fds passed to it (SCM_RIGHTS) that
#            wait unread: refused likewise (before: it moved, the message
#            was dropped and the socket shut), it reads them at home.
# Usage (root, under the vcluster lock): fwd.sh [CASE...]
PREFIX=mfwd${KRG_VC_SUFFIX:-}
. "$KRG_SOURCE_DIR/tests/cluster/common.sh"
KRG=$KRG_BUILD_DIR/krg
HERE=$KRG_SOURCE_DIR/tests/migrate
[ "$(id -u)" = 0 ] || { echo "FAIL: cannot run: needs root"; exit 1; }
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(pipes sockets tcp names creds fdpass fdqueued listen udp)
if [ "${KRG_FWD_NOFILTER:-}" = 1 ]; then
	# ipc_intercept = off: migrants carry no seccomp filter, so krgd's
	# trap answers nothing; the kernel alone answers their calls.
	PREFIX=mfwn${KRG_VC_SUFFIX:-}
	trap 'rc=$?; [ $rc -ne 0 ] && dump_logs; "$ADM" vcluster down --prefix "$PREFIX" >/dev/null 2>&1 || true; exit $rc' EXIT
	start_cluster_conf 3 'ipc_intercept = off'
else
	start_cluster 3
fi
on 1 krgadm sched disable mosix >/dev/null
W=$(mktemp -d "$KRG_BUILD_DIR/migrate-fwd.XXXXXX")
chmod 755 "$W"
trap 'rc=$?; rm -rf "$W"; [ $rc -ne 0 ] && dump_logs; "$ADM" vcluster down --prefix "$PREFIX" >/dev/null 2>&1 || true; exit $rc' EXIT

# pair MODE NODE...: the child migrated to each NODE in turn, then both
# sides check.
pair() {
	local mode=$1 d=$W/$1.$#
	shift
	mkdir -p "$d"
	on 1 "$KRG" run -n 1 -- python3 "$HERE/fwd.py" "$d" "$mode" &
	local run=$!
	wait_for 15 "fwd.py $mode ready" test -e "$d/ready"
	local id=$(((1 << 22) | $(cat "$d/pid"))) n at
	if [ "${KRG_FWD_NOFILTER:-}" = 1 ]; then
		# Not a pass by the trap: the process carries no filter.
		on 1 grep -q '^Seccomp:[[:space:]]*0' "/proc/$(cat "$d/pid")/status" ||
			fail "$mode: the process has a seccomp filter with ipc_intercept = off"
	fi
	for n in "$@"; do
		on 1 "$KRG" migrate "$id" "$n" || fail "$mode: migrate the child to node $n"
		at=$(on 1 "$KRG" ps -a --json | python3 -c "
import json, sys
print([p['node'] for p in json.load(sys.stdin)['processes'] if p['id'] == $id][0])")
		[ "$at" = "$n" ] || fail "$mode: the child runs on node '$at', not $n"
	done
	touch "$d/go"
	local rc=0
	wait $run || rc=$?
	grep -q '^PASS' "$d/result" 2>/dev/null || fail "$mode ($*): at home: $(cat "$d/result" 2>&1)"
	grep -q '^PASS' "$d/kid" 2>/dev/null || fail "$mode ($*): the migrant: $(cat "$d/kid" 2>&1)"
	[ $rc = 0 ] || fail "$mode ($*): exit $rc"
}

pipes() {
	pair pipes 2
	pair pipes 2 3
	echo "ok   pipes (child on node 2, then on node 3): the migrant's close is end of file at home, home's close end of file there, a reader gone EPIPE"
}

sockets() {
	pair sockets 2
	pair sockets 2 3
	echo "ok   (child on node 2, then on node 3) socketpairs (seqpacket, datagram, stream): types, boundaries, both directions, shutdown, close"
}

tcp() {
	pair tcp 2
	echo "ok   a TCP connection, the client moved: both directions, shutdown, close"
}

names() {
	pair names 2 3
	echo "ok   names (child on node 2, then on node 3): getsockname/getpeername of a TCP and a unix connection as at home"
}

creds() {
	# Two users (neither root) write in its directory.
	mkdir -p "$W/creds.3"
	chmod 1777 "$W/creds.3"
	pair creds 2 3
	echo "ok   creds (child on node 2, then on node 3): SO_PEERCRED/SO_PEERGROUPS/SO_PEERSEC of a unix connection between two users as at home, not the holder's"
}

fdpass() {
	pair fdpass 2
	local id=$(((1 << 22) | $(cat "$W/fdpass.2/pid")))
	grep -q "migrate: process $id: fd [0-9]*: the migrant passed 1 fd over it (SCM_RIGHTS), which cannot cross nodes" "$(log_of 2)" ||
		fail "fdpass: node 2's krgd does not name the fd the migrant passed"
	grep -q "migrate: process $id: fd [0-9]*: home passed 1 fd over it (SCM_RIGHTS), which cannot cross nodes" "$(log_of 1)" ||
		fail "fdpass: node 1's krgd does not name the fd passed from home"
	echo "ok   fdpass: a message passing an fd is not delivered without it, each way; the socket is shut at both ends, logged by name"
}

# refused MODE WHAT: krg migrate refuses fwd.py MODE's process in one
# line naming it, its fd and WHAT; it goes on at home (fwd.py checks).
refused() {
	local mode=$1 what=$2 d=$W/$1
	mkdir -p "$d"
	on 1 "$KRG" run -n 1 -- python3 "$HERE/fwd.py" "$d" "$mode" &
	local run=$!
	wait_for 15 "fwd.py $mode ready" test -e "$d/ready"
	local id=$(((1 << 22) | $(cat "$d/pid"))) fd=$(cat "$d/fd") out rc=0
	out=$(on 1 "$KRG" migrate "$id" 2 2>&1) || rc=$?
	[ $rc != 0 ] || fail "$mode: krg migrate succeeded"
	echo "$out" | grep -q "process $id: fd $fd ($what) stays on this node and cannot be forwarded" ||
		fail "$mode: krg migrate did not name the process, the fd and what it is: $out"
	[ "$(echo "$out" | wc -l)" = 1 ] || fail "$mode: more than one line: $out"
	touch "$d/go"
	if [ "$mode" = listen ]; then
		local got
		got=$(on 1 python3 -c "import socket; s = socket.create_connection(('127.0.0.1', $(cat "$d/port")), 10); print(s.recv(64).decode().strip())") ||
			fail "listen: cannot connect to it at home after the refusal"
		[ "$got" = served ] || fail "listen: the server answered '$got'"
	fi
	rc=0
	wait $run || rc=$?
	[ $rc = 0 ] && grep -q '^PASS' "$d/result" || fail "$mode: exit $rc: $(cat "$d/result" 2>&1)"
	echo "ok   $mode: refused by name ($out), it goes on at home"
}

listen() {
	refused listen 'TCP/IPv4 socket:\[[0-9]*\], listening'
}

udp() {
	refused udp 'UDP/IPv4 socket:\[[0-9]*\], not connected'
}

fdqueued() {
	refused fdqueued 'unix socket:\[[0-9]*\], 1 fd passed to it unread'
}

for c in "${cases[@]}"; do
	"$c"
done
echo PASS
