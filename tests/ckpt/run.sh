#!/bin/bash
# Checkpoint/restart tests (zdtm shape): each program sets up its state,
# says it is ready, gets checkpointed with --kill and restarted, is sent
# SIGUSR1, verifies and prints PASS. Then the image robustness cases: a
# truncated file, flipped bytes, a wrong version, a missing part, an
# unsupported fd: one clear error, exit non-zero, nothing left running.
# Usage: run.sh [TEST...]   (env KRG_CKPT_FLIPS: flipped-byte rounds, 200)
set -u
B=$(realpath "${KRG_BUILD_DIR:-$(dirname "$0")/../../build}")
KRG=$B/krg
T=$B/tests/ckpt
FLIPS=${KRG_CKPT_FLIPS:-200}
[ "$(id -u)" = 0 ] || { echo "FAIL: cannot run: needs root"; exit 1; }
WORK=$(mktemp -d /tmp/krg-ckpt.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
failures=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; failures=$((failures + 1)); }

# Wait up to 10 s for a file to appear (and, for a pidfile, hold something).
wait_file() { for _ in $(seq 100); do [ -e "$1" ] && return 0; sleep 0.1; done; return 1; }
wait_nonempty() { for _ in $(seq 100); do [ -s "$1" ] && return 0; sleep 0.1; done; return 1; }

# start NAME BIN: run BIN in $WORK/NAME, set $pid once it is ready.
start() {
	local d=$WORK/$1
	mkdir -p "$d"
	( cd "$d" && exec "$2" "$d/ready" </dev/null >"$d/out.log" 2>&1 ) &
	pid=$!
	wait_file "$d/ready" || { bad "$1: never got ready"; return 1; }
}

# save_files NAME: copy NAME's regular files (out.log, the program's own
# files; not the image) as they are at checkpoint. The image does not hold
# files on disk, and a restarted program changes them (file_offset appends
# to append.txt, every program writes PASS to out.log): restart_and_check
# puts them back, in place (same inodes), so one image restarts again and
# again from the same state.
save_files() {
	local d=$WORK/$1
	rm -rf "$d.files"
	mkdir "$d.files"
	(cd "$d" && find . -path ./img -prune -o -type f ! -name '*.err' -print0 | xargs -0r cp --parents -p -t "$d.files")
}

# restart_and_check NAME IMG [RESTART-OPTION...]: restart, signal, expect
# exit 0 and PASS.
restart_and_check() {
	local name=$1 d=$WORK/$1 img=$2
	shift 2
	rm -f "$d/rpid"
	[ -d "$d.files" ] && (cd "$d.files" && find . -type f -exec cp {} "$d/{}" \;)
	"$KRG" restart --dir "$img" --pidfile "$d/rpid" "$@" 2>"$d/restart.err" &
	local rk=$!
	if ! wait_nonempty "$d/rpid"; then
		wait $rk
		bad "$name: restart failed: $(cat "$d/restart.err")"
		return 1
	fi
	# Its pid is the original's ($pid) again: here, or inside the new pid
	# namespace (the last NSpid field; the pidfile has the one seen here).
	local rp; rp=$(cat "$d/rpid")
	local inner; inner=$(awk '/^NSpid:/ { print $NF }' "/proc/$rp/status")
	# An image of a stopped (frozen) application comes back stopped:
	# RESTARTED_STOPPED=1 checks that, then continues it (and lets its
	# threads get back into their syscalls before the signal).
	if [ "${RESTARTED_STOPPED:-0}" = 1 ]; then
		[ "$(ps -o stat= -p "$rp" | cut -c1)" = T ] || bad "$name: restarted running, it was stopped"
		"$KRG" checkpoint "$rp" --local --unfreeze >/dev/null
		sleep 0.2
	fi
	kill -USR1 "$rp"
	wait $rk
	local rc=$?
	if [ "$inner" != "$pid" ]; then
		bad "$name${*:+ ($*)}: pid $inner inside, was $pid"
		return 1
	fi
	if [ $rc = 0 ] && grep -q '^PASS' "$d/out.log"; then
		ok "$name${*:+ ($*)}"
	else
		bad "$name${*:+ ($*)}: exit $rc, output: $(tr '\n' ' ' <"$d/out.log") $(cat "$d/restart.err")"
		return 1
	fi
}

# One zdtm test in two flavours from one image, after the original was
# killed: checkpoint --kill, restart on this node, verify; then restart the
# same image again with --new-pidns (its pid and tids identical inside a
# fresh pid namespace; /proc stays this namespace's, where /proc/self is
# still the process), verify. The third flavour, restart on another node,
# is tests/ckpt/flavours.sh (suite cluster).
run_one() {
	local name=$1 bin=$T/ckpt_$1
	[ -x "$bin" ] || { echo "skip $name (not built)"; return; }
	start "$name" "$bin" || return
	if ! "$KRG" checkpoint "$pid" --dir "$WORK/$name/img" --kill 2>"$WORK/$name/ckpt.err"; then
		bad "$name: checkpoint: $(cat "$WORK/$name/ckpt.err")"
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		return
	fi
	wait "$pid" 2>/dev/null
	save_files "$name"
	restart_and_check "$name" "$WORK/$name/img" || return
	restart_and_check "$name" "$WORK/$name/img" --new-pidns
}

# A process tree (tree.c), three ways from one image: same node after the
# original was killed, twice; then in a fresh pid namespace.
tree() {
	local name=tree bin=$T/ckpt_tree
	start "$name" "$bin" || return
	"$KRG" checkpoint "$pid" --dir "$WORK/$name/img" --kill 2>"$WORK/$name/ckpt.err" || { bad "$name: checkpoint: $(cat "$WORK/$name/ckpt.err")"; kill -9 "$pid"; return; }
	wait "$pid" 2>/dev/null
	local n; n=$("$KRG" image show --json "$WORK/$name/img" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["processes"]))')
	[ "$n" = 6 ] || bad "$name: the image holds $n processes, not 6"
	save_files "$name"
	restart_and_check "$name" "$WORK/$name/img" && restart_and_check "$name" "$WORK/$name/img" && \
		restart_and_check "$name" "$WORK/$name/img" --new-pidns
}

# The process runs on after a checkpoint without --kill, and the image
# restarts twice after the original is gone.
run_on_and_twice() {
	local name=runon bin=$T/ckpt_anon_mem
	start $name "$bin" || return
	"$KRG" checkpoint "$pid" --dir "$WORK/$name/img" 2>"$WORK/$name/ckpt.err" || { bad "$name: checkpoint: $(cat "$WORK/$name/ckpt.err")"; kill -9 "$pid"; return; }
	[ "$(stat -c %a "$WORK/$name/img")" = 700 ] || bad "$name: image dir mode $(stat -c %a "$WORK/$name/img")"
	kill -USR1 "$pid"
	wait "$pid"
	local rc=$?
	if [ $rc = 0 ] && grep -q '^PASS' "$WORK/$name/out.log"; then ok "$name: original ran on"; else bad "$name: original exit $rc"; fi
	restart_and_check $name "$WORK/$name/img" && restart_and_check $name "$WORK/$name/img"
}

# expect_error WHAT IMG PATTERN: restart must fail with one line matching
# PATTERN, and leave no process in its session.
expect_error() {
	local what=$1 img=$2 pat=$3 err=$WORK/err.txt
	setsid "$KRG" restart --dir "$img" 2>"$err" &
	local rk=$!
	wait $rk
	local rc=$?
	local lines; lines=$(wc -l <"$err")
	if [ $rc = 0 ] || [ "$lines" != 1 ] || ! grep -qE "$pat" "$err"; then
		bad "$what: exit $rc, $lines lines: $(cat "$err")"
		return 1
	fi
	if pgrep -s $rk >/dev/null; then
		bad "$what: processes left in session $rk: $(pgrep -s $rk)"
		pkill -9 -s $rk
		return 1
	fi
	return 0
}

# flip FILE OFFSET: xor one byte with 0x5a, in place (twice restores it).
flip() {
	local b; b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	printf "$(printf '\\%03o' $((b ^ 0x5a)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

robustness() {
	local name=robust bin=$T/ckpt_anon_mem img=$WORK/robust/img
	start $name "$bin" || return
	"$KRG" checkpoint "$pid" --dir "$img" --kill 2>"$WORK/$name/ckpt.err" || { bad "$name: checkpoint: $(cat "$WORK/$name/ckpt.err")"; return; }
	wait "$pid" 2>/dev/null
	"$KRG" image show "$img" >"$WORK/show.txt" && grep -q '\[vdso\]' "$WORK/show.txt" && ok "image show" || bad "image show"
	if command -v python3 >/dev/null; then
		"$KRG" image show --json "$img" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["core"]["threads"][0]["xsave_bytes"] > 512 and d["mm"]["vmas"]' \
			&& ok "image show --json" || bad "image show --json"
	fi
	local pages; pages=$(ls "$img"/pages-*.img)
	local mmf; mmf=$(ls "$img"/mm-*.img)
	cp "$pages" "$WORK/pages.bak"
	truncate -s -4096 "$pages"
	expect_error "truncated pages" "$img" 'truncated' && ok "truncated image: one error"
	cp "$WORK/pages.bak" "$pages"
	# A wrong version, with everything else intact.
	cp "$mmf" "$WORK/mm.bak"
	printf '\x7f' | dd of="$mmf" bs=1 seek=8 conv=notrunc status=none
	expect_error "wrong version" "$img" 'format version 127' && ok "wrong version: one error"
	cp "$WORK/mm.bak" "$mmf"
	mv "$mmf" "$WORK/mm.bak"
	expect_error "missing part" "$img" 'mm-[0-9]+\.img: No such file' && ok "missing part: one error"
	mv "$WORK/mm.bak" "$mmf"
	# Flipped bytes anywhere in any part.
	local files=("$img"/*.img) n=0 f off size
	for ((i = 0; i < FLIPS; i++)); do
		f=${files[RANDOM % ${#files[@]}]}
		size=$(stat -c %s "$f")
		off=$(( (RANDOM * 32768 + RANDOM) % size ))
		flip "$f" $off
		expect_error "flip $(basename "$f")@$off" "$img" 'damaged|bad magic|format version|truncated|trailing|holds a' || n=$((n + 1))
		flip "$f" $off
	done
	[ $n = 0 ] && ok "$FLIPS flipped bytes: one error each"
	# And the image is still good after all that.
	restart_and_check $name "$img"
}

unsupported() {
	local name=unsup bin=$T/ckpt_anon_mem d=$WORK/unsup
	mkdir -p "$d"
	# stdin a pipe from outside the application (a sibling, not a child:
	# a child would be part of it): a standard stream, so inherited — the
	# restarting krg's own stdin takes its place.
	sleep 100 | ( cd "$d" && exec "$bin" "$d/ready" >"$d/out.log" 2>&1 ) &
	pid=$!
	wait_file "$d/ready" || { bad "$name: never ready"; return; }
	"$KRG" checkpoint "$pid" --dir "$d/img" --kill 2>"$d/err" || { bad "$name: stdin pipe: $(cat "$d/err")"; return; }
	# The pipe's writer (this script's child) would hold `wait` for its
	# 100 s: end it with the application.
	pkill -P $$ -x sleep
	wait "$pid" 2>/dev/null
	"$KRG" image show "$d/img" | grep -q 'fd 0 .*inherit .*pipe:' || bad "$name: fd 0 not saved as inherited"
	restart_and_check $name "$d/img" </dev/null || return
	ok "$name: a stdin pipe from outside is inherited"
	# Another fd on a pipe from outside: refused, naming pid, fd and kind;
	# nothing written; the process runs on.
	# fd 6: the same pipe opened again (through /proc): it goes with fd 5.
	sleep 100 | ( exec 5<&0 6</proc/self/fd/0 </dev/null; exec sleep 100 ) &
	local sl=$!
	sleep 0.3
	if "$KRG" checkpoint "$sl" --dir "$d/img2" 2>"$d/err"; then
		bad "$name: a pipe on fd 5 from outside was accepted"
	elif grep -q "process $sl fd 5: pipe" "$d/err" && [ ! -e "$d/img2" ] && kill -0 "$sl"; then
		ok "$name: pipe refused: $(head -1 "$d/err")"
	else
		bad "$name: $(cat "$d/err")"
	fi
	"$KRG" checkpoint "$sl" --dir "$d/img2" --kill --ignore-unsupported 2>"$d/err" || bad "$name: --ignore-unsupported: $(cat "$d/err")"
	"$KRG" image show "$d/img2" >"$d/show2" 2>&1 || bad "$name: image show after --ignore-unsupported: $(head -1 "$d/show2")"
	grep -q 'fd [56]' "$d/show2" && bad "$name: fd 5 or its reopened fd 6 kept with --ignore-unsupported"
	kill "$sl" 2>/dev/null
	pkill -P $$ -x sleep
	wait "$sl" 2>/dev/null
}

# Kinds not saved yet (io_uring, TCP socket): one line each, naming pid, fd
# and kind; --ignore-unsupported closes them.
unsupported_kinds() {
	local name=unsupk bin=$T/ckpt_unsupported d=$WORK/unsupk
	start $name "$bin" || return
	if "$KRG" checkpoint "$pid" --dir "$d/img" 2>"$d/err"; then
		bad "$name: io_uring and a TCP socket were accepted"
	elif grep -q "process $pid fd 7: anonymous inode.*io_uring" "$d/err" && grep -q "process $pid fd 8: socket" "$d/err" && [ ! -e "$d/img" ] && kill -0 "$pid"; then
		ok "$name: refused: $(grep -c "process $pid fd" "$d/err") lines"
	else
		bad "$name: $(cat "$d/err")"
	fi
	"$KRG" checkpoint "$pid" --dir "$d/img" --kill --ignore-unsupported 2>"$d/err" || { bad "$name: --ignore-unsupported: $(cat "$d/err")"; return; }
	wait "$pid" 2>/dev/null
	restart_and_check $name "$d/img"
}

# --new-pidns: restarted into a fresh pid namespace, the program sees its
# pid and its threads' tids as before (it checks getpid()/gettid()); from
# here it has another pid (the pidfile's), and in its NSpid the old one.
# An image whose pid is 1 is refused (the namespace's reaper holds 1).
pidns() {
	local name=pidns bin=$T/ckpt_pidns d=$WORK/pidns
	[ -x "$bin" ] || { echo "skip $name (not built)"; return; }
	start $name "$bin" || return
	"$KRG" checkpoint "$pid" --dir "$d/img" --kill 2>"$d/ckpt.err" || { bad "$name: checkpoint: $(cat "$d/ckpt.err")"; kill -9 "$pid"; return; }
	wait "$pid" 2>/dev/null
	local ids; ids=$(cat "$d/ids")
	rm -f "$d/rpid"
	"$KRG" restart --dir "$d/img" --new-pidns --pidfile "$d/rpid" 2>"$d/restart.err" &
	local rk=$!
	if ! wait_nonempty "$d/rpid"; then
		wait $rk
		bad "$name: restart failed: $(cat "$d/restart.err")"
		return
	fi
	local rp; rp=$(cat "$d/rpid")
	local nspid; nspid=$(awk '/^NSpid:/ { print $NF }' "/proc/$rp/status")
	local ntasks; ntasks=$(ls "/proc/$rp/task" | wc -l)
	kill -USR1 "$rp"
	wait $rk
	local rc=$?
	if [ $rc = 0 ] && grep -q '^PASS' "$d/out.log" && [ "$nspid" = "${ids%% *}" ] && [ "$ntasks" = 4 ]; then
		ok "$name: pid ${ids%% *} inside (here $rp), tids ${ids#* }"
	else
		bad "$name: exit $rc, NSpid $nspid (want ${ids%% *}), $ntasks tasks, output: $(tr '\n' ' ' <"$d/out.log") $(cat "$d/restart.err")"
	fi
}

# checkpoint's options on a tree: --freeze stops every process (T) and a
# checkpoint of the frozen application leaves it frozen; --unfreeze
# continues them; --stop leaves them stopped after the dump; --kill=TERM
# sends TERM to every process; each image restarts (PASS).
options() {
	local name=opts bin=$T/ckpt_tree d=$WORK/opts
	start $name "$bin" || return
	local out; out=$("$KRG" checkpoint "$pid" --local --freeze) || { bad "$name: --freeze failed"; kill -9 "$pid"; return; }
	local stopped; stopped=$(ps -o stat= --ppid "$pid" -p "$pid" | grep -c '^T')
	[ "$out" = "4 processes frozen" ] && [ "$stopped" = 3 ] || bad "$name: --freeze said '$out', $stopped of root and its live children stopped"
	"$KRG" checkpoint "$pid" --dir "$d/img1" 2>"$d/err" || bad "$name: checkpoint of a frozen tree: $(cat "$d/err")"
	[ "$(ps -o stat= -p "$pid" | cut -c1)" = T ] || bad "$name: not frozen any more after the checkpoint"
	out=$("$KRG" checkpoint "$pid" --local --unfreeze)
	[ "$(ps -o stat= -p "$pid" | cut -c1)" = S ] && [ "$out" = "4 processes thawed" ] || bad "$name: --unfreeze: '$out', state $(ps -o stat= -p "$pid")"
	"$KRG" checkpoint "$pid" --dir "$d/img2" --stop 2>"$d/err" || bad "$name: --stop: $(cat "$d/err")"
	[ "$(ps -o stat= -p "$pid" | cut -c1)" = T ] || bad "$name: running after --stop"
	"$KRG" checkpoint "$pid" --local --unfreeze >/dev/null
	"$KRG" checkpoint "$pid" --dir "$d/img3" --kill=TERM 2>"$d/err" || bad "$name: --kill=TERM: $(cat "$d/err")"
	wait "$pid" 2>/dev/null
	local rc=$?
	[ $rc = 143 ] || bad "$name: exit $rc after --kill=TERM, not 143"
	"$KRG" checkpoint "$pid" --kill=NOSUCH --dir "$d/x" 2>/dev/null; [ $? = 2 ] || bad "$name: --kill=NOSUCH accepted"
	RESTARTED_STOPPED=1 restart_and_check $name "$d/img1" || return
	for i in 2 3; do restart_and_check $name "$d/img$i" || return; done
	ok "$name: --freeze/--unfreeze/--stop/--kill=TERM"
}

# --snapshot-files: the files a program has open for writing are damaged
# after the checkpoint and come back as they were; without the flag they
# are not saved. A user's image reopens its files as that user: a file
# made root's and 0600 meanwhile refuses the restart, in one line.
snapshot_files() {
	local name=snap bin=$T/ckpt_snapshot d=$WORK/snap
	start $name "$bin" || return
	"$KRG" checkpoint "$pid" --dir "$d/img0" 2>"$d/err" || { bad "$name: plain checkpoint: $(cat "$d/err")"; kill -9 "$pid"; return; }
	"$KRG" image show --json "$d/img0" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert not any(f.get("data_bytes") for f in d["fds"])' ||
		bad "$name: file content saved without --snapshot-files"
	"$KRG" checkpoint "$pid" --dir "$d/img" --kill --snapshot-files 2>"$d/err" || { bad "$name: checkpoint: $(cat "$d/err")"; kill -9 "$pid"; return; }
	wait "$pid" 2>/dev/null
	echo garbage >"$d/log.txt"
	truncate -s 100 "$d/data.bin"
	restart_and_check $name "$d/img" || return
	grep -qx after "$d/log.txt" || bad "$name: the restarted program's append is missing"
	ok "$name: files open for writing put back"
	# The same program as a user: its image cannot open what the user cannot.
	id krgsnap >/dev/null 2>&1 || useradd -M -s /usr/sbin/nologin krgsnap
	local u=$WORK/snapu
	mkdir -p "$u" && chown krgsnap "$u" && chmod 755 "$WORK"
	setpriv --reuid=krgsnap --regid=krgsnap --init-groups bash -c 'cd "$1" && exec "$2" "$1/ready" </dev/null >"$1/out.log" 2>&1' _ "$u" "$bin" &
	pid=$!
	wait_file "$u/ready" || { bad "$name: user program never ready"; return; }
	"$KRG" checkpoint "$pid" --dir "$u/img" --kill 2>"$d/err" || { bad "$name: user checkpoint: $(cat "$d/err")"; kill -9 "$pid"; return; }
	wait "$pid" 2>/dev/null
	chown -R krgsnap "$u/img"
	chown root:root "$u/data.bin" && chmod 600 "$u/data.bin"
	if expect_error "$name: user image, root's file" "$u/img" 'data.bin.*(Permission denied|not permitted)'; then
		ok "$name: a user's image opens files as that user"
	fi
}

# A process of the application killed while the checkpoint holds it
# frozen (fault point ckpt-pause-ms: the dump waits that long after the
# freeze): one clear line naming it, exit 1, no image, the others thawed
# (running, not stopped or traced).
vanish() {
	local name=vanish bin=$T/ckpt_tree d=$WORK/vanish
	start $name "$bin" || return
	KRG_FAULT=ckpt-pause-ms:1500 "$KRG" checkpoint "$pid" --dir "$d/img" 2>"$d/err" &
	local ck=$!
	sleep 0.5
	local victim; victim=$(ps -o pid=,stat= --ppid "$pid" | awk '$2 ~ /^[St]/ { print $1; exit }')
	kill -9 "$victim"
	wait $ck
	local rc=$?
	local states; states=$(ps -o stat= -p "$pid" --ppid "$pid" | cut -c1 | sort | uniq | tr -d '\n')
	if [ $rc = 1 ] && [ "$(wc -l <"$d/err")" = 1 ] && grep -q "$victim" "$d/err" && [ ! -e "$d/img" ] && [ "${states//[SZ]/}" = "" ]; then
		ok "$name: $(cat "$d/err")"
	else
		bad "$name: exit $rc, states '$states', image $(ls "$d" | tr '\n' ' '), error: $(cat "$d/err")"
	fi
	# Every process of the tree, the victim's orphaned children too: all
	# of them have this test's ready file on their command line.
	pkill -9 -f "$d/ready"
	wait "$pid" 2>/dev/null
}

# A restore that fails once every process of a tree exists (fault
# injection): one line, non-zero, and none of them left (expect_error
# checks the session krg ran in), zombies included.
halfway() {
	local name=halfway bin=$T/ckpt_tree d=$WORK/halfway
	start $name "$bin" || return
	"$KRG" checkpoint "$pid" --dir "$d/img" --kill 2>"$d/err" || { bad "$name: checkpoint: $(cat "$d/err")"; return; }
	wait "$pid" 2>/dev/null
	KRG_FAULT=ckpt-restore-fail expect_error "$name" "$d/img" 'fault injected after rebuilding 6 processes' &&
		ok "$name: a tree restore failing half-way leaves nothing"
	restart_and_check $name "$d/img"
}

# Supplementary groups come back (root's image here: any groups; a user's
# image only gets groups its directory's owner has, store.sh).
groups_kept() {
	local name=groups bin=$T/ckpt_anon_mem d=$WORK/groups
	mkdir -p "$d"
	( cd "$d" && exec setpriv --groups 4,27,100 "$bin" "$d/ready" </dev/null >"$d/out.log" 2>&1 ) &
	pid=$!
	wait_file "$d/ready" || { bad "$name: never ready"; return; }
	"$KRG" checkpoint "$pid" --dir "$d/img" --kill 2>"$d/err" || { bad "$name: checkpoint: $(cat "$d/err")"; return; }
	wait "$pid" 2>/dev/null
	rm -f "$d/rpid"
	"$KRG" restart --dir "$d/img" --pidfile "$d/rpid" 2>"$d/restart.err" &
	local rk=$!
	wait_nonempty "$d/rpid" || { wait $rk; bad "$name: restart: $(cat "$d/restart.err")"; return; }
	local g; g=$(awk '/^Groups:/ { $1 = ""; print }' "/proc/$(cat "$d/rpid")/status" | xargs)
	kill -USR1 "$(cat "$d/rpid")"
	wait $rk
	[ "$g" = "4 27 100" ] && ok "$name: supplementary groups $g" || bad "$name: groups '$g' after restart, not '4 27 100'"
}

# cow (cow.c, issue 14 items 1 and 2): 64 MiB a parent shares
# copy-on-write with three children. Checkpointed without --kill, the
# original checks it still shares them (the dump un-shared them before:
# 4 x 64 MiB); the image restarted (here, then in a new pid namespace)
# checks the same: one copy for the tree, not four.
cow() {
	local name=cow bin=$T/ckpt_cow d=$WORK/cow
	start $name "$bin" || return
	"$KRG" checkpoint "$pid" --dir "$d/img" 2>"$d/ckpt.err" || { bad "$name: checkpoint: $(cat "$d/ckpt.err")"; kill -9 "$pid"; return; }
	save_files $name
	kill -USR1 "$pid"
	wait "$pid"
	local rc=$?
	if [ $rc = 0 ] && grep -q '^PASS' "$d/out.log"; then
		ok "$name: the original ran on, still sharing its pages"
	else
		bad "$name: the original: exit $rc, $(tr '\n' ' ' <"$d/out.log")"
	fi
	restart_and_check $name "$d/img" && restart_and_check $name "$d/img" --new-pidns
}

# shared_big (shared_big.c): 4 GiB of shared anonymous memory between a
# parent and its child with seven pages written; the image holds those
# pages once (under 1 MiB of pages in all), not the region per process.
shared_big() {
	run_one shared_big
	local img=$WORK/shared_big/img
	[ -d "$img" ] || return
	local kib; kib=$(du -sk "$img" | cut -f1)
	local pages; pages=$(cat "$img"/pages-*.img | wc -c)
	if [ "$pages" -lt $((1 << 20)) ] && [ "$kib" -lt 4096 ]; then
		ok "shared_big: image $kib KiB, $pages bytes of pages"
	else
		bad "shared_big: image $kib KiB, $pages bytes of pages (7 pages were written)"
	fi
}

if [ $# -gt 0 ]; then
	tests=("$@")
else
	tests=(anon_mem heap stack fpu file_offset signals pipe_data eventfd deleted_file deleted_wronly leader_exit deleted_cwd memfd socketpair dev_files threads pending itimer snapshot
	       fpu_static anon_mem_static threads_static runon robust unsup unsupk pidns tree opts snap vanish locks posix_timer shared_mem shared_big cow groups halfway
	       oldkernel stopped zombie_sig fsids madvise timerfd signalfd epoll inotify unix_sockets pipe_reopen)
fi
for t in "${tests[@]}"; do
	case $t in
	runon) run_on_and_twice ;;
	robust) robustness ;;
	unsup) unsupported ;;
	unsupk) unsupported_kinds ;;
	pidns) pidns ;;
	tree) tree ;;
	opts) options ;;
	snap) snapshot_files ;;
	vanish) vanish ;;
	groups) groups_kept ;;
	halfway) halfway ;;
	shared_big) shared_big ;;
	cow) cow ;;
	# The memory dump as on kernels without PAGEMAP_SCAN (before 6.7:
	# pagemap read page by page), its 1 TiB reservation included.
	oldkernel) rm -rf "$WORK/anon_mem"; KRG_FAULT=ckpt-no-pagemap-scan run_one anon_mem ;;
	*) run_one "$t" ;;
	esac
done
echo "$failures failure(s)"
[ $failures = 0 ]
