#!/usr/bin/env bash
# krg-fsview's two halves wired straight together (no krgd, no vcluster):
# every forwarded call does at home what it does locally (ops.py), the
# server's user is what home checks permissions against, and a file
# system mounted under the forwarded path stays the node's own.
set -euo pipefail
: "${KRG_BUILD_DIR:?run through meson test}" "${KRG_SOURCE_DIR:?run through meson test}"
[ "$(id -u)" = 0 ] || { echo "FAIL: cannot run: needs root"; exit 1; }
W=$(mktemp -d "$KRG_BUILD_DIR/fsview-pair.XXXXXX")
trap 'rm -rf "$W"' EXIT
chmod 755 "$W"
mkdir -m 1777 "$W/view"
mkdir "$W/own"
echo secret >"$W/view/secret"
chmod 600 "$W/view/secret"
echo node-own >"$W/own/k"
T=$KRG_SOURCE_DIR/tests/fsview
# In a private mount namespace: the bind under the view is this test's.
unshare -m --propagation private bash -c "
	set -e
	mkdir '$W/view/kept' && mount --bind '$W/own' '$W/view/kept'
	python3 '$T/pair.py' '$KRG_BUILD_DIR/krg-fsview' '$W/view' 65534 -- sh -c '
		set -e
		test \"\$(cat $W/view/kept/k)\" = node-own || { echo \"FAIL: the mount under the view was not kept\"; exit 1; }
		echo \"ok   a mount under the view stays the node'\"'\"'s\"
		umount $W/view/kept
		python3 $T/ops.py $W/view'
"
echo PASS
