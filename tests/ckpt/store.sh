#!/bin/bash
# The image store (docs/checkpoint.md): `krg checkpoint ID` saves into
# STORE/<ID>/v<N> with the next N, a description file, everything 0700 and
# owned by the process's owner; `krg restart ID [N]` restarts the latest or
# a given version; another user can neither read nor restart it; -n NODE
# is refused (the store is node-local). STORE is $WORK/store through
# KRG_CKPT_STORE, not /var/lib/krg/chkpt. Root; users created with
# useradd -M when absent (krgtest1, krgtest2).
set -u
B=$(realpath "${KRG_BUILD_DIR:-$(dirname "$0")/../../build}")
KRG=$B/krg
PROG=$B/tests/ckpt/ckpt_heap
[ "$(id -u)" = 0 ] || { echo "FAIL: cannot run: needs root"; exit 1; }
WORK=$(mktemp -d /tmp/krg-store.XXXXXX)
chmod 755 "$WORK"
export KRG_CKPT_STORE=$WORK/store
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$WORK"' EXIT
failures=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; failures=$((failures + 1)); }
wait_file() { for _ in $(seq 100); do [ -e "$1" ] && return 0; sleep 0.1; done; return 1; }
wait_nonempty() { for _ in $(seq 100); do [ -s "$1" ] && return 0; sleep 0.1; done; return 1; }
for u in krgtest1 krgtest2; do
	id "$u" >/dev/null 2>&1 || useradd -M -s /usr/sbin/nologin "$u" || { echo "FAIL: cannot run: cannot create user $u"; exit 1; }
done

# start NAME [USER]: run the heap test program in $WORK/NAME (as USER).
start() {
	local d=$WORK/$1
	mkdir -p "$d"
	if [ -n "${2:-}" ]; then
		chown "$2" "$d"
		setpriv --reuid="$2" --regid="$2" --init-groups bash -c 'cd "$1" && exec "$2" "$1/ready" </dev/null >"$1/out.log" 2>&1' _ "$d" "$PROG" &
	else
		( cd "$d" && exec "$PROG" "$d/ready" </dev/null >"$d/out.log" 2>&1 ) &
	fi
	pid=$!
	pids+=("$pid")
	wait_file "$d/ready" || { bad "$1: never got ready"; return 1; }
}

# restart_ok NAME ARGS...: krg restart ARGS, signal it, expect PASS.
restart_ok() {
	local name=$1 d=$WORK/$1
	shift
	rm -f "$d/rpid"
	: >"$d/out.log"  # PASS must come from this run (the file may get a hole)
	"$KRG" restart "$@" --pidfile "$d/rpid" 2>"$d/restart.err" &
	local rk=$!
	if ! wait_nonempty "$d/rpid"; then
		wait $rk
		bad "$name: restart $* failed: $(cat "$d/restart.err")"
		return 1
	fi
	local rp
	rp=$(cat "$d/rpid")
	echo "$(stat -c %U /proc/"$rp")" >"$d/ruser"
	kill -USR1 "$rp"
	wait $rk
	local rc=$?
	if [ $rc = 0 ] && tr -d '\0' <"$d/out.log" | grep -q '^PASS'; then
		ok "$name: restart $*"
	else
		bad "$name: restart $*: exit $rc, $(tr '\n' ' ' <"$d/out.log") $(cat "$d/restart.err")"
	fi
}

# Versions: two checkpoints of a running process, then restart each.
start ver || exit 1
id=$pid
out1=$("$KRG" checkpoint "$id" -d "first one" 2>"$WORK/ck.err")
out2=$("$KRG" checkpoint "$id" --kill 2>>"$WORK/ck.err")
wait "$id" 2>/dev/null
[ "$out1" = "$KRG_CKPT_STORE/$id/v1" ] && [ "$out2" = "$KRG_CKPT_STORE/$id/v2" ] && ok "versions v1, v2 printed" ||
	bad "versions: got '$out1' '$out2' ($(cat "$WORK/ck.err"))"
[ "$(cat "$KRG_CKPT_STORE/$id/v1/description" 2>/dev/null)" = "first one" ] && [ ! -e "$KRG_CKPT_STORE/$id/v2/description" ] &&
	ok "description file" || bad "description file"
"$KRG" image show "$KRG_CKPT_STORE/$id/v1" | grep -q "first one" && ok "description in the image" || bad "description not in the image"
modes=$(stat -c '%a %u' "$KRG_CKPT_STORE/$id" "$KRG_CKPT_STORE/$id/v1" "$KRG_CKPT_STORE/$id/v2" | sort -u)
[ "$modes" = "700 0" ] && ok "store dirs 0700 root" || bad "store dirs: $modes"
restart_ok ver "$id"            # the latest: v2
restart_ok ver "$id" 1
restart_ok ver "$id" v2

# Errors: unknown app, unknown version, -n, bad usage.
"$KRG" restart 4194000 2>"$WORK/e1"; [ $? = 1 ] && grep -q "no image of app 4194000" "$WORK/e1" && ok "unknown app: one line" ||
	bad "unknown app: $(cat "$WORK/e1")"
"$KRG" restart "$id" 9 2>"$WORK/e2"; [ $? = 1 ] && grep -q "has no version 9" "$WORK/e2" && ok "unknown version" || bad "unknown version: $(cat "$WORK/e2")"
"$KRG" restart "$id" -n 2 2>/dev/null; [ $? = 2 ] && ok "-n refused (node-local store)" || bad "-n not refused"
"$KRG" checkpoint 2>/dev/null; [ $? = 2 ] && ok "checkpoint without id: usage" || bad "checkpoint without id"
"$KRG" checkpoint 4194000 2>"$WORK/e3"; [ $? = 1 ] && grep -q "no process" "$WORK/e3" && ok "checkpoint of a missing process" ||
	bad "checkpoint of a missing process: $(cat "$WORK/e3")"
[ "$(ls "$KRG_CKPT_STORE/4194000" 2>/dev/null)" = "" ] && ok "nothing stored for it" || bad "a version was left for a missing process"

# Permissions: a user can neither read nor restart root's image.
chmod 755 "$KRG_CKPT_STORE"
if setpriv --reuid=krgtest1 --regid=krgtest1 --init-groups ls "$KRG_CKPT_STORE/$id" >/dev/null 2>&1; then
	bad "krgtest1 can list root's images"
else
	ok "krgtest1 cannot list root's images"
fi
setpriv --reuid=krgtest1 --regid=krgtest1 --init-groups env KRG_CKPT_STORE="$KRG_CKPT_STORE" "$KRG" restart "$id" 2>"$WORK/e4"
rc=$?
[ $rc = 1 ] && grep -q "belong to uid 0: permission denied" "$WORK/e4" && ok "krgtest1 cannot restart root's image" ||
	bad "krgtest1 restarting root's image: exit $rc, $(cat "$WORK/e4")"

# A user's process: its images are its owner's; another user is refused;
# root restarts it with the owner's credentials.
start usr krgtest1 || exit 1
uid1=$(id -u krgtest1)
"$KRG" checkpoint "$pid" --kill >/dev/null 2>"$WORK/e5" || bad "checkpoint of krgtest1's process: $(cat "$WORK/e5")"
wait "$pid" 2>/dev/null
own=$(stat -c '%a %u' "$KRG_CKPT_STORE/$pid" "$KRG_CKPT_STORE/$pid/v1" "$KRG_CKPT_STORE/$pid/v1/pages-$pid.img" | sort -u | tr '\n' ' ')
[ "$own" = "700 $uid1 " ] || [ "$own" = "600 $uid1 700 $uid1 " ] && ok "user's image owned by the user, 0700/0600" || bad "user's image: $own"
setpriv --reuid=krgtest2 --regid=krgtest2 --init-groups env KRG_CKPT_STORE="$KRG_CKPT_STORE" "$KRG" restart "$pid" 2>"$WORK/e6"
[ $? = 1 ] && grep -q "permission denied" "$WORK/e6" && ok "krgtest2 cannot restart krgtest1's image" || bad "krgtest2: $(cat "$WORK/e6")"
restart_ok usr "$pid"
[ "$(cat "$WORK/usr/ruser")" = krgtest1 ] && ok "restored as krgtest1" || bad "restored as $(cat "$WORK/usr/ruser")"

# An image never gets more than its directory's owner: a root process's
# image handed to krgtest1 (who could have written any uid into it) is
# refused, with one line, and nothing is left running.
start evil || exit 1
"$KRG" checkpoint "$pid" --dir "$WORK/evil/img" --kill >/dev/null 2>"$WORK/e7" || bad "checkpoint into --dir: $(cat "$WORK/e7")"
wait "$pid" 2>/dev/null
chown -R krgtest1: "$WORK/evil/img"
"$KRG" restart --dir "$WORK/evil/img" >/dev/null 2>"$WORK/e8"
rc=$?
[ $rc != 0 ] && grep -q "owned by uid $uid1 but asks for uid 0: refused" "$WORK/e8" && [ "$(wc -l <"$WORK/e8")" = 1 ] &&
	ok "root image in a user's directory refused" || bad "root image in a user's directory: exit $rc, $(cat "$WORK/e8")"
pgrep -f "$PROG $WORK/evil/ready" >/dev/null && bad "a process was left running" || ok "nothing left running"

echo "store: $failures failure(s)"
[ $failures = 0 ]
