#!/usr/bin/env bash
# stdio through krg run: 100 MiB through a remote cat keeps its bytes and
# order with krgd memory bounded on both nodes; stdin EOF reaches the
# remote; stderr stays separate.
PREFIX=rstd
. "$(dirname "$0")/common.sh"
start_run_cluster 3

head -c 100M /dev/urandom >"$TMPD/big"

# sample_rss PID: both krgds' largest VmRSS (max1, max3) over 15 samples
# 0.2 s apart while PID runs, then wait for it.
sample_rss() {
	max1=0 max3=0
	for _ in $(seq 1 15); do
		r=$(krgd_rss 1); [ "$r" -gt "$max1" ] && max1=$r
		r=$(krgd_rss 3); [ "$r" -gt "$max3" ] && max3=$r
		sleep 0.2
	done
	wait "$1"
}

want=$(sha256sum <"$TMPD/big" | cut -d' ' -f1)
rss1=$(krgd_rss 1)
rss3=$(krgd_rss 3)
# A slow reader on the output too: credits must hold the sender back.
got=$(on 1 sh -c "krg run -n 3 -- cat <'$TMPD/big' | sha256sum" | cut -d' ' -f1)
assert_eq "$got" "$want" "sha256 through remote cat"
on 1 sh -c "krg run -n 3 -- cat <'$TMPD/big' | (sleep 2; sha256sum) >'$TMPD/sum2'" &
sample_rss $!
assert_eq "$(cut -d' ' -f1 <"$TMPD/sum2")" "$want" "sha256 with a slow reader"
r=$(krgd_rss 1); [ "$r" -gt "$max1" ] && max1=$r
r=$(krgd_rss 3); [ "$r" -gt "$max3" ] && max3=$r
echo "krgd VmRSS node1 ${rss1}->${max1} KiB, node3 ${rss3}->${max3} KiB"
# ASan keeps freed memory in quarantine (256 MiB): RSS says nothing there.
if ldd "$KRG_BUILD_DIR/krgd" | grep -q libasan; then
	echo "ASan build: RSS bound not checked"
else
	[ $((max1 - rss1)) -lt 65536 ] || fail "krgd on node 1 grew by $((max1 - rss1)) KiB"
	[ $((max3 - rss3)) -lt 65536 ] || fail "krgd on node 3 grew by $((max3 - rss3)) KiB"
fi

# A slow reader of stdin on the remote side: stdin waits in the window
# (the target's pipe full, the rest queued), every byte arrives in order,
# and neither krgd grows by more than a few windows.
on 1 sh -c "krg run -n 3 -- sh -c 'sleep 2; sha256sum' <'$TMPD/big' >'$TMPD/sum3'" &
sample_rss $!
assert_eq "$(cut -d' ' -f1 <"$TMPD/sum3")" "$want" "sha256 of stdin with a slow remote reader"
echo "slow stdin reader: krgd VmRSS node1 ${rss1}->${max1} KiB, node3 ${rss3}->${max3} KiB"
if ! ldd "$KRG_BUILD_DIR/krgd" | grep -q libasan; then
	[ $((max1 - rss1)) -lt 65536 ] || fail "krgd on node 1 grew by $((max1 - rss1)) KiB (slow stdin reader)"
	[ $((max3 - rss3)) -lt 65536 ] || fail "krgd on node 3 grew by $((max3 - rss3)) KiB (slow stdin reader)"
fi

# stdout and stderr both in bulk at once: each keeps its bytes and order.
on 1 krg run -n 3 -- sh -c "cat '$TMPD/big' & cat '$TMPD/big' >&2; wait" >"$TMPD/o2" 2>"$TMPD/e2"
assert_eq "$(sha256sum <"$TMPD/o2" | cut -d' ' -f1)" "$want" "stdout in bulk beside stderr"
assert_eq "$(sha256sum <"$TMPD/e2" | cut -d' ' -f1)" "$want" "stderr in bulk beside stdout"
rm -f "$TMPD/o2" "$TMPD/e2"

# stdin EOF propagates: cat ends, then the script goes on.
out=$(echo hello | on 1 krg run -n 3 -- sh -c 'cat; echo after-eof')
assert_eq "$out" "hello
after-eof" "stdin EOF"
# No stdin at all (closed): EOF at once.
out=$(on 1 sh -c 'krg run -n 2 -- sh -c "cat; echo closed-ok" <&-')
assert_eq "$out" "closed-ok" "closed stdin"
# stderr separate from stdout, each in order.
on 1 krg run -n 3 -- sh -c 'for i in 1 2 3; do echo out$i; echo err$i >&2; done' >"$TMPD/o" 2>"$TMPD/e"
assert_eq "$(cat "$TMPD/o")" "out1
out2
out3" "stdout"
assert_eq "$(cat "$TMPD/e")" "err1
err2
err3" "stderr"
# Output of a process whose orphan keeps the pipe open is not lost.
out=$(on 1 krg run -n 3 -- sh -c 'echo first; (sleep 1; echo late) & exit 0')
assert_contains "$out" "first" "output before exit"
echo PASS
