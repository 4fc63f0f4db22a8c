#!/usr/bin/env bash
# An image directory holds regular files only: a FIFO or a symbolic link
# in place of a part makes `krg image show` and `krg restart --dir` fail at
# once with one line, instead of blocking forever in open() (a FIFO with no
# writer) or reading whatever the link names.
set -euo pipefail
: "${KRG_BUILD_DIR:?run through meson test}"
KRG=$KRG_BUILD_DIR/krg
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

check() { # check WHAT CMD...: fails within 10 s, one line, "not a regular file"
	local what=$1 out rc=0
	shift
	out=$(timeout 10 "$@" 2>&1 </dev/null) || rc=$?
	[ $rc -ne 124 ] || fail "$what: still blocked after 10 s"
	[ $rc -ne 0 ] || fail "$what: exit 0"
	[ "$(printf '%s\n' "$out" | wc -l)" = 1 ] || fail "$what: not one line: $out"
	case "$out" in *"inventory.img"*"not a regular file"*) ;; *) fail "$what: said: $out" ;; esac
	echo "ok: $what: $out"
}

mkdir "$W/fifo" "$W/link"
mkfifo "$W/fifo/inventory.img"
ln -s /etc/passwd "$W/link/inventory.img"
for kind in fifo link; do
	check "image show, $kind" "$KRG" image show "$W/$kind"
	check "image show --json, $kind" "$KRG" image show --json "$W/$kind"
	check "restart --dir, $kind" "$KRG" restart --dir "$W/$kind"
done
echo PASS
