#!/usr/bin/env bash
# krg-fsview's two halves wired straight together (no krgd, no vcluster):
# every forwarded call does at home what it does locally (ops.py), the
# server's user is what home checks permissions against, a file system
# mounted under the forwarded path stays the node's own, and unix sockets
# bound at home are reached by path from the view (sock.py: stream,
# seqpacket, datagrams, through the view's relay).
set -euo pipefail
: "${KRG_BUILD_DIR:?run through meson test}" "${KRG_SOURCE_DIR:?run through meson test}"
[ "$(id -u)" = 0 ] || { echo "FAIL: cannot run: needs root"; exit 1; }
W=$(mktemp -d "$KRG_BUILD_DIR/fsview-pair.XXXXXX")
srv=
trap 'rc=$?; [ -n "$srv" ] && kill "$srv" 2>/dev/null; rm -rf "$W"; exit $rc' EXIT
chmod 755 "$W"
mkdir -m 1777 "$W/view"
mkdir "$W/own"
echo secret >"$W/view/secret"
chmod 600 "$W/view/secret"
echo node-own >"$W/own/k"
T=$KRG_SOURCE_DIR/tests/fsview
# Home's unix sockets (bound by root here, reachable by the server's user).
mkdir -m 1777 "$W/view/socks"
python3 "$T/sock.py" serve "$W/view/socks" 2>"$W/serve.err" &
srv=$!
for _ in $(seq 100); do [ -e "$W/view/socks/ready" ] && break; sleep 0.1; done
[ -e "$W/view/socks/ready" ] || { echo "FAIL: the socket server did not start: $(cat "$W/serve.err")"; exit 1; }
chmod 666 "$W/view/socks/"*.sock
# In a private mount namespace: the bind under the view is this test's.
unshare -m --propagation private bash -c "
	set -e
	mkdir '$W/view/kept' && mount --bind '$W/own' '$W/view/kept'
	python3 '$T/pair.py' '$KRG_BUILD_DIR/krg-fsview' '$W/view' 65534 -- sh -c '
		set -e
		test \"\$(cat $W/view/kept/k)\" = node-own || { echo \"FAIL: the mount under the view was not kept\"; exit 1; }
		echo \"ok   a mount under the view stays the node'\"'\"'s\"
		umount $W/view/kept
		python3 $T/ops.py $W/view
		test -L $W/view/socks/s.sock || { echo \"FAIL: the socket bound at home is not shown as a link to its relay\"; exit 1; }
		python3 $T/sock.py client $W/view/socks > $W/sock.out
		for i in \$(seq 200); do [ \"\$(wc -l <$W/view/socks/dgram.log)\" = 3 ] && break; sleep 0.05; done'
"
# The view's relay forwards a datagram after sendto returns (relay.c): the
# command above waits, with a deadline, until home logged the 3, since
# pair.py kills the view (and what its relay still holds) once it ends.
exp="HELLO FROM $(hostname | tr a-z A-Z)
big 300000
eof True
seq cba
seq 54321
sent"
[ "$(cat "$W/sock.out")" = "$exp" ] || { echo "FAIL: through the view's socket relay: $(cat "$W/sock.out")"; exit 1; }
for _ in $(seq 50); do [ "$(wc -l <"$W/view/socks/dgram.log")" = 3 ] && break; sleep 0.1; done
[ "$(cat "$W/view/socks/dgram.log")" = "$(printf 'dgram %s %s\n' 0 "$(hostname)" 1 "$(hostname)" 2 "$(hostname)")" ] ||
	{ echo "FAIL: datagrams through the relay: $(cat "$W/view/socks/dgram.log")"; exit 1; }
echo "ok   home's stream, seqpacket and datagram sockets reached by path from the view"
echo PASS
