# common.sh — helpers for the membership tests (sourced). Builds on
# tests/vcluster/lib.sh: every test has its own prefix and always tears
# its vcluster down, also when it fails half-way.
set -euo pipefail
: "${KRG_BUILD_DIR:?run through meson test}"
: "${KRG_SOURCE_DIR:?run through meson test}"
ADM="$KRG_BUILD_DIR/krgadm"
# shellcheck source=../vcluster/lib.sh
. "$KRG_SOURCE_DIR/tests/vcluster/lib.sh"

# on NODE: run krgadm inside vcluster node NODE of $PREFIX
on() {
	local node=$1
	shift
	"$ADM" vcluster exec "$node" --prefix "$PREFIX" -- "$@"
}

# json_get NODE EXPR: evaluate a python expression on `cluster status --json` as s
json_get() {
	on "$1" krgadm cluster status --json | python3 -c "import json,sys; s=json.load(sys.stdin); print($2)"
}

node_state() { # node_state FROM NODE
	json_get "$1" "[n['state'] for n in s['nodes'] if n['id']==$2][0]"
}

# wait_for SECONDS DESCRIPTION COMMAND...: poll until COMMAND succeeds
wait_for() {
	local secs=$1 what=$2
	shift 2
	local end=$((SECONDS + secs))
	while ! "$@" >/dev/null 2>&1; do
		if [ $SECONDS -ge $end ]; then
			fail "timed out after ${secs}s waiting for: $what"
		fi
		sleep 0.1
	done
}

state_is() { [ "$(node_state "$1" "$2")" = "$3" ]; }

log_of() { echo "/run/krg-vcluster/$PREFIX/node$1/krgd.log"; }

start_cluster() { # start_cluster N [vcluster up args]
	local n=$1
	shift
	trap 'rc=$?; [ $rc -ne 0 ] && dump_logs; "$ADM" vcluster down --prefix "$PREFIX" >/dev/null 2>&1 || true; exit $rc' EXIT
	"$ADM" vcluster down --prefix "$PREFIX" >/dev/null 2>&1 || true
	"$ADM" vcluster up "$n" --prefix "$PREFIX" "$@"
	# Every node's own view: a follower applies the leader's decisions a
	# heartbeat later, and tests act from any node.
	local i
	for i in $(seq 1 "$n"); do
		on "$i" krgadm cluster wait --timeout 30 >/dev/null
	done
	echo "cluster ready on all $n nodes"
}

dump_logs() {
	for f in /run/krg-vcluster/"$PREFIX"/node*/krgd.log; do
		[ -f "$f" ] || continue
		echo "----- $f (last 40 lines)"
		tail -n 40 "$f"
	done
}
