#!/usr/bin/env bash
# kdfs on a 3-node vcluster (docs/kdfs.md): POSIX cases on one node, then
# what another node sees (close-to-open, renames, attributes), then a
# node killed after close: its files still read whole from the replica.
# Each node has its own mount (/run/kdfs, its private /run) and its own
# share (/var/lib/krg/kdfs, its private tmpfs): nothing can pass through
# a directory or kernel object the nodes share.
set -euo pipefail
: "${KRG_SOURCE_DIR:?run through meson test}"
PREFIX=kdfst
. "$KRG_SOURCE_DIR/tests/cluster/common.sh"
M=/run/kdfs

start_cluster 3 --kdfs
for i in 1 2 3; do
	fs=$(on "$i" findmnt -n -o FSTYPE "$M") || fail "node $i: nothing mounted on $M"
	assert_eq "$fs" "fuse.kdfs" "node $i mount type"
done

# On a follower: its metadata calls go through the leader and wait for
# its own replica, the slow path (a leader answers from its own log).
leader=$(json_get 1 "s['leader']")
F=1
[ "$leader" = 1 ] && F=2
echo "== POSIX cases (node $F, leader $leader) t=${SECONDS}s"
on "$F" mkdir "$M/posix"
on "$F" python3 "$KRG_SOURCE_DIR/tests/kdfs/posix.py" "$M/posix" || fail "POSIX cases failed"

echo "== close-to-open across nodes t=${SECONDS}s"
on 1 sh -c "head -c 3000000 /dev/urandom > $M/c2o && sync"
want=$(on 1 md5sum "$M/c2o" | cut -d' ' -f1)
for i in 2 3; do
	got=$(on "$i" md5sum "$M/c2o" | cut -d' ' -f1)
	assert_eq "$got" "$want" "node $i reads what node 1 wrote and closed"
done
# Rewritten in place on node 2: node 3 and node 1 see the new bytes.
on 2 sh -c "printf 'NEW' | dd of=$M/c2o bs=1 seek=1000 conv=notrunc status=none"
want=$(on 2 md5sum "$M/c2o" | cut -d' ' -f1)
for i in 1 3; do
	got=$(on "$i" md5sum "$M/c2o" | cut -d' ' -f1)
	assert_eq "$got" "$want" "node $i sees node 2's rewrite"
done

echo "== namespace changes seen everywhere t=${SECONDS}s"
on 1 mkdir -p "$M/ns/a"
on 1 sh -c "echo one > $M/ns/a/f"
on 2 mv "$M/ns/a" "$M/ns/b"
for i in 1 3; do
	assert_eq "$(on "$i" cat "$M/ns/b/f")" "one" "node $i follows the rename"
	! on "$i" test -e "$M/ns/a" || fail "node $i still sees the old name"
done
on 3 chmod 600 "$M/ns/b/f"
on 3 chown 1234:4321 "$M/ns/b/f"
assert_eq "$(on 1 stat -c '%a %u %g' "$M/ns/b/f")" "600 1234 4321" "node 1 sees node 3's chmod/chown"
on 3 rm "$M/ns/b/f"
! on 2 test -e "$M/ns/b/f" || fail "node 2 still sees a file node 3 removed"
on 2 ln -s b "$M/ns/l"
assert_eq "$(on 1 readlink "$M/ns/l")" "b" "symlink from node 2 on node 1"
on 1 sh -c "echo appended >> $M/ns/log; echo again >> $M/ns/log"
on 2 sh -c "echo from2 >> $M/ns/log"
assert_eq "$(on 3 cat "$M/ns/log" | tr '\n' ' ')" "appended again from2 " "appends from two nodes"

echo "== a node killed after close t=${SECONDS}s"
on 1 sh -c "head -c 5000000 /dev/urandom > $M/survivor"
want=$(on 1 md5sum "$M/survivor" | cut -d' ' -f1)
# Node 1 holds a replica (writes place one on the writer) and another node
# the second; kill node 1's krgd: its share is gone with it.
"$ADM" vcluster krgd 1 kill --prefix "$PREFIX"
wait_for 30 "node 1 marked down" state_is 2 1 down
for i in 2 3; do
	got=$(on "$i" md5sum "$M/survivor" | cut -d' ' -f1)
	assert_eq "$got" "$want" "node $i reads the survivor from the replica"
done
# Writing on with one node down: the chunk's dead replica is dropped.
on 2 sh -c "head -c 300000 /dev/urandom > $M/after && cat $M/survivor >> $M/after"
assert_eq "$(on 3 md5sum "$M/after" | cut -d' ' -f1)" "$(on 2 md5sum "$M/after" | cut -d' ' -f1)" \
	"a file written with a node down reads the same elsewhere"

echo "== a flipped byte on disk is caught by its checksum t=${SECONDS}s"
# "after" was written on node 2 with node 1 down: its replicas are on
# nodes 2 and 3. Flip a byte of node 2's copy: node 2 must notice and
# read node 3's, never return the bad byte.
want=$(on 3 md5sum "$M/after" | cut -d' ' -f1)
ino=$(on 2 stat -c %i "$M/after")
dir=$(printf '/var/lib/krg/kdfs/chunks/%016x' "$ino")
chunk=$(on 2 sh -c "ls $dir/0-* | grep -v sum") || fail "node 2 has no replica of 'after' in $dir"
on 2 python3 -c "import sys; f=open(sys.argv[1],'r+b'); f.seek(100); b=f.read(1); f.seek(100); f.write(bytes([b[0]^0xff]))" "$chunk"
assert_eq "$(on 2 md5sum "$M/after" | cut -d' ' -f1)" "$want" "node 2 reads good data past its bad replica"
grep -q "checksum\|Bad message" "$(log_of 2)" || fail "node 2's log does not report the bad block"
echo "kdfs: all checks passed t=${SECONDS}s"
