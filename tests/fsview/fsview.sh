#!/usr/bin/env bash
# The file view (issue 21, docs/fsview.md) on a 3-node vcluster: processes
# of node 1 running elsewhere see node 1's /tmp.
#  1. krg run -n 2 from node 1 appends to node 1's /tmp file; --local-files
#     sees node 2's own /tmp; a mount under node 2's /tmp stays node 2's.
#  2. DISTANT_FORK: a shell script writes /tmp/x, its child placed on
#     another node appends to it, the script reads the result at home.
#  3. krg migrate 1 -> 2 -> 1: a program reopening its files by name finds
#     them each time, and the file it kept open goes on being home's.
#  4. Permission is checked at home: nobody cannot read root's 0600 file
#     nor write in root's 0755 directory through the view; what nobody
#     creates belongs to nobody at home.
#  5. Unix sockets bound in node 1's /tmp (stream, seqpacket, datagram):
#     a client run on node 2 connects by path; a client connected at home
#     and migrated to node 2 keeps talking, and connects again by path.
#  6. Restart (checkpointed on node 2 while in node 1's view, restarted
#     on node 3): it still sees node 1's /tmp; with node 1 down the
#     restart is refused in one line naming node 1 and the paths.
#  7. Reaping: once no process of a view is left on a node, its krg-fsview
#     (FUSE mounts, relays) ends there and home's server for it too; a
#     view a live process is still in stays, even idle, and works after.
#  8. A node's krgd killed: home's server for that node's view ends. The
#     reaping intervals come from krgd.conf: node 3's krgd, started again
#     with shorter ones, reaps its next view after its own grace.
#  9. Home's krgd killed: a forwarded open fails with EIO at once.
PREFIX=fsv${KRG_VC_SUFFIX:-}
. "$KRG_SOURCE_DIR/tests/cluster/common.sh"
KRG=$KRG_BUILD_DIR/krg
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
[ "$(id -u)" = 0 ] || { echo "FAIL: cannot run: needs root"; exit 1; }
start_cluster 3
on 1 krgadm sched disable mosix >/dev/null
# The view's helpers (FUSE clients and home's servers) and the processes
# that see a view's FUSE mount, per node: none before any application.
helpers() { on "$1" sh -c 'pgrep -c -x krg-fsview || true'; }
fusemounts() { on "$1" sh -c 'cat /proc/[0-9]*/mountinfo 2>/dev/null | grep -c " fuse.krg " || true'; }
base=()
for n in 1 2 3; do base[n]="$(helpers "$n") $(fusemounts "$n")"; done
W=$(mktemp -d "$KRG_BUILD_DIR/fsview-test.XXXXXX")
chmod 755 "$W"
trap 'rc=$?; [ $rc -ne 0 ] && dump_logs; "$ADM" vcluster down --prefix "$PREFIX" >/dev/null 2>&1; rm -rf "$W"; exit $rc' EXIT

# 1. Explicit remote execution. Node 2 has a file system of its own
# mounted under /tmp (a bind, as a cluster FS would be): it stays node 2's.
mkdir "$W/kept" && echo node-own >"$W/kept/k"
on 2 sh -c "mkdir /tmp/fsv-kept && mount --bind '$W/kept' /tmp/fsv-kept"
on 1 sh -c 'echo one > /tmp/fsv-a'
out=$(on 1 "$KRG" run -n 2 -- sh -c 'hostname; cat /tmp/fsv-a; echo two >> /tmp/fsv-a')
assert_eq "$out" "$(printf '%s-node2\none' "$PREFIX")" "krg run -n 2 reads node 1's /tmp/fsv-a"
assert_eq "$(on 1 cat /tmp/fsv-a)" "$(printf 'one\ntwo')" "node 1's file after node 2 appended"
on 2 test ! -e /tmp/fsv-a || fail "node 2's own /tmp got the file"
assert_eq "$(on 1 "$KRG" run -n 2 -- cat /tmp/fsv-kept/k)" node-own "a mount under /tmp on node 2 stays node 2's"
out=$(on 1 "$KRG" run -n 2 --local-files -- sh -c 'cat /tmp/fsv-a 2>&1; true')
assert_contains "$out" "No such file" "--local-files: node 2's own /tmp"
# Its working directory and its program in node 1's /tmp: node 2's krgd
# relays their lookups while it starts it (it must not wait on itself).
on 1 sh -c 'mkdir -p /tmp/fsv-w && printf "#!/bin/sh\necho \"\$(hostname) \$(pwd) \$(cat data)\"\n" >/tmp/fsv-w/prog.sh &&
	chmod 755 /tmp/fsv-w/prog.sh && echo home-data >/tmp/fsv-w/data'
out=$(on 1 sh -c "cd /tmp/fsv-w && '$KRG' run -n 2 -- ./prog.sh")
assert_eq "$out" "$PREFIX-node2 /tmp/fsv-w home-data" "run from node 1's /tmp, a program that is only there"
out=$(on 1 sh -c "cd /tmp/fsv-w && '$KRG' run -n 2 -- ./missing 2>&1") && fail "a missing program ran"
assert_contains "$out" "./missing: command not found" "a missing program in the view, said by name"
ps2=$(on 2 "$KRG" ps -a)
assert_not_contains "$ps2" "krg-fsview" "the view's helpers are krgd's, not listed"
echo "ok   krg run -n 2 sees node 1's /tmp; --local-files sees node 2's"

# 2. DISTANT_FORK: the child is placed on another node at its exec (node 1
# made the smallest, so least_loaded sends it away), then appends.
cg=$(vc_cgroup "$PREFIX" 1)
if [ -f "$cg/cpu.max" ]; then echo "25000 100000" >"$cg/cpu.max"; else echo 25000 >"$cg/cpu.cfs_quota_us"; fi
# Placement is decided at the exec, at once: node 1 must know it is small.
small1() { [ "$(on 1 krgadm sched status --json | python3 -c "import json,sys; print([round(n['cpus'], 2) for n in json.load(sys.stdin)['nodes'] if n['id']==1][0])")" = 0.25 ]; }
wait_for 10 "node 1 sees its smaller capacity" small1
cat >"$W/df.sh" <<'SH'
echo one > /tmp/fsv-x
python3 -c '
import socket, time
time.sleep(5)
open("/tmp/fsv-x", "a").write("two\n")
open("/tmp/fsv-x.where", "w").write(socket.gethostname())
'
cat /tmp/fsv-x
SH
out=$(on 1 "$KRG" run -n 1 -- "$KRG" capset -e DISTANT_FORK -- sh "$W/df.sh" </dev/null)
assert_eq "$out" "$(printf 'one\ntwo')" "the script read what its distant child appended"
where=$(on 1 cat /tmp/fsv-x.where)
assert_ne "$where" "$PREFIX-node1" "the child ran on another node (DISTANT_FORK)"
echo "ok   DISTANT_FORK child on $where appended to node 1's /tmp/fsv-x"
if [ -f "$cg/cpu.max" ]; then echo "max 100000" >"$cg/cpu.max"; else echo -1 >"$cg/cpu.cfs_quota_us"; fi

# 3. Migration away and back.
on 1 "$KRG" run -n 1 -- python3 "$KRG_SOURCE_DIR/tests/fsview/reopen.py" /tmp/fsv-c </dev/null >/dev/null 2>&1 &
runner=$!
id_of() { on 1 "$KRG" ps -a --json | python3 -c "
import json, sys
print([p['id'] for p in json.load(sys.stdin)['processes'] if 'reopen.py' in p['command']][0])"; }
wait_for 15 "reopen.py started" on 1 test -e /tmp/fsv-c/log
id=$(id_of)
on 1 "$KRG" migrate "$id" 2 || fail "migrate reopen.py to node 2"
on 1 touch /tmp/fsv-c/go1
wait_for 15 "result1 at home" on 1 test -e /tmp/fsv-c/result1
assert_eq "$(on 1 cat /tmp/fsv-c/result1)" "$PREFIX-node2 payload" "on node 2 it reopened node 1's data by name"
on 1 "$KRG" migrate "$id" 1 || fail "migrate reopen.py back to node 1"
on 1 touch /tmp/fsv-c/go2
wait_for 15 "result2 at home" on 1 test -e /tmp/fsv-c/result2
assert_eq "$(on 1 cat /tmp/fsv-c/result2)" "$PREFIX-node1 payload" "back on node 1 it reopened its data by name"
assert_eq "$(on 1 cat /tmp/fsv-c/log)" "$(printf '1 %s-node2\n2 %s-node1' "$PREFIX" "$PREFIX")" "the log it kept open, written from both nodes"
on 1 "$KRG" kill -9 "$id" || true
wait "$runner" 2>/dev/null || true
echo "ok   migrated 1 -> 2 -> 1, it found its files by name each time"

# 4. Another user's files.
on 1 sh -c 'mkdir -p /tmp/fsv-d && chmod 755 /tmp/fsv-d && echo secret > /tmp/fsv-d/root-only &&
	chmod 600 /tmp/fsv-d/root-only && echo pub > /tmp/fsv-d/public && chmod 644 /tmp/fsv-d/public'
out=$(on 1 "${NOBODY[@]}" "$KRG" run -n 2 -- sh -c 'hostname; cat /tmp/fsv-d/public; cat /tmp/fsv-d/root-only 2>&1;
	echo x 2>&1 > /tmp/fsv-d/new; echo mine > /tmp/fsv-nobody; true' 2>&1)
assert_contains "$out" "$PREFIX-node2" "nobody's process ran on node 2"
assert_contains "$out" "pub" "nobody reads a 0644 file"
assert_not_contains "$out" "secret" "nobody must not read root's 0600 file"
assert_contains "$out" "Permission denied" "the view refuses as home would"
on 1 test ! -e /tmp/fsv-d/new || fail "nobody wrote into root's 0755 directory"
assert_eq "$(on 1 stat -c %U /tmp/fsv-nobody)" nobody "what nobody creates belongs to nobody at home"
echo "ok   permissions checked at home with the caller's credentials"

# 5. Unix sockets bound at home, reached by path from node 2 (the view
# shows them as symlinks to its relay sockets), and a client migrated away.
on 1 mkdir -p /tmp/fsv-s
on 1 python3 "$KRG_SOURCE_DIR/tests/fsview/sock.py" serve /tmp/fsv-s </dev/null >/dev/null 2>&1 &
sserv=$!
wait_for 15 "the socket server at home" on 1 test -e /tmp/fsv-s/ready
out=$(on 1 "$KRG" run -n 2 -- python3 "$KRG_SOURCE_DIR/tests/fsview/sock.py" client /tmp/fsv-s 2>&1)
N2=$(echo "$PREFIX-node2" | tr a-z A-Z)
assert_eq "$out" "$(printf 'HELLO FROM %s\nbig 300000\neof True\nseq cba\nseq 54321\nsent' "$N2")" \
	"node 2's client through home's stream and seqpacket sockets"
dgrams3() { [ "$(on 1 cat /tmp/fsv-s/dgram.log | wc -l)" = 3 ]; }
wait_for 10 "3 datagrams at home" dgrams3
assert_eq "$(on 1 cat /tmp/fsv-s/dgram.log)" "$(printf 'dgram %s %s\n' 0 "$PREFIX-node2" 1 "$PREFIX-node2" 2 "$PREFIX-node2")" \
	"node 2's datagrams reached home's socket"
echo "ok   a client on node 2 reaches home's unix sockets by path (stream, seqpacket, datagram)"
on 1 "$KRG" run -n 1 -- python3 "$KRG_SOURCE_DIR/tests/fsview/sock.py" keep /tmp/fsv-s </dev/null >/dev/null 2>&1 &
keeper=$!
wait_for 15 "the keeping client connected" on 1 test -e /tmp/fsv-s/kept
kid=$(on 1 "$KRG" ps -a --json | python3 -c "
import json, sys
print([p['id'] for p in json.load(sys.stdin)['processes'] if 'sock.py keep' in p['command']][0])")
on 1 "$KRG" migrate "$kid" 2 || fail "migrate the socket client to node 2"
on 1 touch /tmp/fsv-s/go1
wait_for 15 "the migrated client's answers" on 1 test -e /tmp/fsv-s/result1
assert_eq "$(on 1 cat /tmp/fsv-s/result1)" "$(printf '1 %s\nNEW 1 %s' "$N2" "$N2")" \
	"migrated to node 2, it talks on its connection and connects again by path"
on 1 "$KRG" kill -9 "$kid" || true
wait "$keeper" 2>/dev/null || true
kill "$sserv" 2>/dev/null || true
echo "ok   a client migrated to node 2 keeps talking to home's socket"

# 6. Restart elsewhere: dumped on node 2 while in node 1's view, restarted
# on node 3, it reopens node 1's files by name.
on 1 "$KRG" run -n 2 -- python3 "$KRG_SOURCE_DIR/tests/fsview/reopen.py" /tmp/fsv-r </dev/null >/dev/null 2>&1 &
rrun=$!
wait_for 15 "reopen.py started on node 2" on 1 test -e /tmp/fsv-r/log
rid=$(on 1 "$KRG" ps -a --json | python3 -c "
import json, sys
print([p['id'] for p in json.load(sys.stdin)['processes'] if 'reopen.py' in p['command'] and p['node'] == 2][0])")
on 1 "$KRG" checkpoint "$rid" --kill >/dev/null || fail "checkpoint reopen.py on node 2"
wait "$rrun" 2>/dev/null || true
on 2 test -e /var/lib/krg/chkpt/$rid/v1/view || fail "the image does not say whose files it saw"
new=$(on 1 "$KRG" restart "$rid" -n 3) || fail "restart reopen.py on node 3"
on 1 touch /tmp/fsv-r/go1
wait_for 15 "result1 at home" on 1 test -e /tmp/fsv-r/result1
assert_eq "$(on 1 cat /tmp/fsv-r/result1)" "$PREFIX-node3 payload" "restarted on node 3, it reopened node 1's data by name"
assert_eq "$(on 1 cat /tmp/fsv-r/log)" "1 $PREFIX-node3" "the log it had open, restored from node 1's /tmp"
on 3 test ! -e /tmp/fsv-r || fail "node 3's own /tmp got its files"
on 1 "$KRG" checkpoint "$new" --kill >/dev/null || fail "checkpoint the restarted reopen.py on node 3"
echo "ok   checkpointed on node 2, restarted on node 3: node 1's files still"

# 7. Reaping. A process holds a forwarded file open on node 2 and waits
# (on node 2's own /run): its view must stay. Node 3's view, whose
# processes all ended, goes; twice, so that node 2's reaper has looked at
# the held view well past its grace period meanwhile.
counts() { echo "$(helpers "$1") $(fusemounts "$1")"; }
at_base() { [ "$(counts "$1")" = "${base[$1]}" ]; }
helpers_are() { [ "$(helpers "$1")" = "$2" ]; }
on 1 sh -c 'echo held > /tmp/fsv-h'
on 1 "$KRG" run -n 2 -- sh -c 'exec 3</tmp/fsv-h; until [ -e /run/fsv-hold ]; do sleep 0.2; done; cat <&3 >/tmp/fsv-h.out' \
	</dev/null >/dev/null 2>&1 &
holder=$!
wait_for 15 "the holder running on node 2" on 2 pgrep -f fsv-hold
for round in 1 2; do
	assert_eq "$(on 1 "$KRG" run -n 3 -- cat /tmp/fsv-h)" held "node 3 reads node 1's file (round $round)"
	wait_for 30 "node 3's view reaped (round $round): helpers and mounts back to ${base[3]}" at_base 3
done
h2=${base[2]%% *}
h1=${base[1]%% *}
wait_for 30 "node 2: only the held view left" helpers_are 2 $((h2 + 1))
wait_for 30 "node 1: only the held view's server left" helpers_are 1 $((h1 + 1))
on 2 touch /run/fsv-hold
wait_for 15 "the holder's copy at home" on 1 grep -q held /tmp/fsv-h.out
wait "$holder" 2>/dev/null || true
for n in 1 2 3; do
	wait_for 30 "node $n: the view's helpers and mounts back to ${base[n]}" at_base "$n"
done
echo "ok   views reaped once their processes ended (helpers and mounts per node: ${base[*]}); a held one kept"

# 8. Node 3's krgd dies while a process there holds a forwarded file open
# (node 1 serves its view): node 1's server for it ends once node 3 has
# been down for node 1's grace (its FUSE client died with krgd 3; nothing
# will ever ask that server again, and it holds home's file open).
on 1 sh -c 'echo held3 > /tmp/fsv-k'
on 1 "$KRG" run -n 3 -- sh -c 'exec 3</tmp/fsv-k; touch /run/fsv-opened3; until [ -e /run/fsv-hold3 ]; do sleep 0.2; done' \
	</dev/null >/dev/null 2>&1 &
k3=$!
wait_for 15 "the holder on node 3 opened node 1's file" on 3 test -e /run/fsv-opened3
helpers_are 1 $((h1 + 1)) || fail "node 1 does not serve node 3's view: $(helpers 1) helpers, base $h1"
"$ADM" vcluster krgd 3 kill --prefix "$PREFIX" >/dev/null
wait_for 30 "node 1's server for node 3 ended (helpers back to $h1)" helpers_are 1 "$h1"
grep -q "node 3 has been down for [0-9]* ms: krg-fsview" "$(log_of 1)" || fail "node 1's log does not say why its server ended"
on 3 touch /run/fsv-hold3
kill "$k3" 2>/dev/null || true
wait "$k3" 2>/dev/null || true
wait_for 30 "node 3's holder gone, helpers and mounts back to ${base[3]}" at_base 3
echo "ok   node 3's krgd killed: node 1's server for its view ended"
# Node 3's krgd again, with shorter reaping intervals in its krgd.conf.
on 3 sh -c "printf 'fsview_reap_tick_ms = 300\nfsview_reap_grace_ms = 1500\n' >>/run/krg/krgd.conf"
"$ADM" vcluster krgd 3 start --prefix "$PREFIX" >/dev/null
on 3 krgadm cluster wait --timeout 30 >/dev/null
wait_for 30 "node 1 sees node 3 up" state_is 1 3 up
grep -q "views unused for 1500 ms are ended (looked for every 300 ms)" "$(log_of 3)" ||
	fail "node 3's krgd did not take the reaping intervals of its krgd.conf"
assert_eq "$(on 1 "$KRG" run -n 3 -- cat /tmp/fsv-k)" held3 "node 3 reads node 1's file through a new view"
wait_for 30 "node 3's new view reaped" at_base 3
line=$(grep "reaping the view of node 1" "$(log_of 3)" | tail -n 1)
assert_contains "$line" "(grace 1500 ms)" "node 3 reaps with the grace of its krgd.conf"
ms=$(echo "$line" | sed -n 's/.*been in it for \([0-9]*\) ms.*/\1/p')
{ [ -n "$ms" ] && [ "$ms" -ge 1500 ] && [ "$ms" -lt 6000 ]; } || fail "reaped after '$ms' ms, not after the configured 1500: $line"
wait_for 30 "node 1's server for node 3's new view ended" helpers_are 1 "$h1"
echo "ok   node 3's krgd.conf reaping intervals (300/1500 ms): its view reaped after $ms ms"

# 9. Home dies: EIO, no hang. The reader on node 2 waits for a go file on
# node 2's own /run (not forwarded), then opens a forwarded file.
on 1 sh -c 'echo alive > /tmp/fsv-e'
on 1 "$KRG" run -n 2 -- sh -c 'until [ -e /run/fsv-go ]; do sleep 0.1; done; cat /tmp/fsv-e > /run/fsv-e.out 2>&1;
	echo "rc=$?" >> /run/fsv-e.out' </dev/null >/dev/null 2>&1 &
eio=$!
wait_for 15 "the reader running on node 2" on 2 pgrep -f fsv-go
"$ADM" vcluster krgd 1 kill --prefix "$PREFIX" >/dev/null
on 2 touch /run/fsv-go
wait_for 10 "the reader's verdict" on 2 grep -q rc= /run/fsv-e.out
out=$(on 2 cat /run/fsv-e.out)
assert_contains "$out" "Input/output error" "a forwarded open with home down"
assert_not_contains "$out" "alive" "nothing read with home down"
wait "$eio" 2>/dev/null || true
echo "ok   home's krgd killed: EIO at once"
wait_for 15 "node 3 sees node 1 down" state_is 3 1 down
out=$(on 3 "$KRG" restart "$new" -n 3 2>&1) && fail "restarted with the files' node down"
[ "$(echo "$out" | wc -l)" = 1 ] || fail "not one line: $out"
assert_contains "$out" "node 1's node-local files (/tmp" "the refusal names the node and its paths"
echo "ok   with node 1 down, the restart is refused: $out"
echo "PASS"
