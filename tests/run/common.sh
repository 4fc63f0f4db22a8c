# common.sh — helpers for the krg run tests (sourced; bash). Builds on
# tests/cluster/common.sh (start_cluster, on, wait_for, fail, assert_*).
# Set PREFIX before sourcing. TMPD is a directory every node sees (node
# /tmp is private), removed at exit.
# shellcheck source=../cluster/common.sh
. "$KRG_SOURCE_DIR/tests/cluster/common.sh"
TMPD=$(mktemp -d "$KRG_BUILD_DIR/run-test.XXXXXX")
chmod 755 "$TMPD"

run_cleanup() {
	rm -rf "$TMPD"
}

# start_run_cluster N: start_cluster plus our own cleanup in the EXIT trap
start_run_cluster() {
	start_cluster "$@"
	trap 'rc=$?; [ "$BASHPID" = "$$" ] || exit $rc; [ $rc -ne 0 ] && dump_logs; "$ADM" vcluster down --prefix "$PREFIX" >/dev/null 2>&1 || true; run_cleanup; exit $rc' EXIT
}

# krgd_rss NODE: VmRSS of krgd in node NODE, in KiB
krgd_rss() {
	on "$1" sh -c 'grep VmRSS /proc/$(pgrep -x krgd)/status' | awk '{print $2}'
}

# remote_pids NODE PATTERN: pids matching PATTERN (pgrep -f) in node NODE
remote_pids() {
	on "$1" pgrep -f "$2" || true
}

# ensure_user NAME GROUP: unprivileged user (no home) with a supplementary group
ensure_user() {
	getent group "$2" >/dev/null || groupadd "$2"
	getent passwd "$1" >/dev/null || useradd -M -s /bin/sh "$1"
	usermod -a -G "$2" "$1"
}
