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

# start_cluster_conf N LINE...: start_cluster's fresh N-node vcluster,
# with each LINE added to every node's krgd.conf before its krgd starts
# (no trap set: the caller's tears it down).
start_cluster_conf() {
	local n=$1 i line
	shift
	"$ADM" vcluster down --prefix "$PREFIX" >/dev/null 2>&1 || true
	"$ADM" vcluster up "$n" --prefix "$PREFIX" --no-krgd >/dev/null
	for i in $(seq 1 "$n"); do
		for line in "$@"; do
			on "$i" sh -c "echo '$line' >>/run/krg/krgd.conf"
		done
	done
	for i in $(seq 1 "$n"); do "$ADM" vcluster krgd "$i" start --prefix "$PREFIX" >/dev/null; done
	for i in $(seq 1 "$n"); do on "$i" krgadm cluster wait --timeout 30 >/dev/null; done
}

# ipc_test_dir NAME: what the System V IPC tests need (root, Debian's
# python3-sysv-ipc) and their work directory W, NAME.XXXXXX under the
# build directory, readable by the users their programs run as.
ipc_test_dir() {
	[ "$(id -u)" = 0 ] || fail "cannot run: needs root"
	"${PY:-python3}" -c 'import sysv_ipc' || fail "cannot run: python3-sysv-ipc missing (scripts/install-deps.sh)"
	W=$(mktemp -d "$KRG_BUILD_DIR/$1.XXXXXX")
	chmod 755 "$W"
}

# ipc_home_of KIND KEY: the node serving the System V object of KIND
# (msg, sem, shm) and KEY, as node 1's `krgadm ipc status` says; none.
ipc_home_of() {
	on 1 krgadm ipc status --json | "${PY:-python3}" -c "
import json, sys
o = [o for o in json.load(sys.stdin)['objects'] if o['kind'] == '$1' and int(o['key'], 16) == $2]
print(o[0]['home'] if o else 'none')"
}

dump_logs() {
	for f in /run/krg-vcluster/"$PREFIX"/node*/krgd.log; do
		[ -f "$f" ] || continue
		echo "----- $f (last 40 lines)"
		tail -n 40 "$f"
	done
}

# one_line_error RC PATTERN CMD...: CMD fails with exit status RC (any:
# any non-zero one), saying exactly one line, which matches PATTERN
one_line_error() {
	local want=$1 pat=$2 out rc=0
	shift 2
	out=$("$@" 2>&1) || rc=$?
	if [ "$want" = any ]; then
		[ "$rc" != 0 ] || fail "'$*' succeeded: $out"
	else
		[ "$rc" = "$want" ] || fail "'$*' exit $rc, not $want: $out"
	fi
	[ "$(printf '%s\n' "$out" | wc -l)" = 1 ] || fail "'$*' said more than one line: $out"
	printf '%s\n' "$out" | grep -q -- "$pat" || fail "'$*' said '$out', not /$pat/"
	echo "ok   refused: $*: $out"
}

# ---- periodic checkpoints and the counter (tests/cluster/counter.c),
# for the recovery tests; they need KRG (the krg binary) set.

# entry EXPR: a python expression on the periodic checkpoints as node 1 lists them (a)
entry() { on 1 "$KRG" checkpoint --list --json | "${PY:-python3}" -c "import json,sys; a=json.load(sys.stdin)['apps']; print($1)"; }
entry_is() { [ "$(entry "$1")" = "$2" ]; }

# chain_of NODE APP V: V and the versions it builds on, as NODE has them
# (`krg image show` checks the whole chain, every page, on that node)
chain_of() {
	local n=$1 app=$2 v=$3 out=$3 p
	while p=$(on "$n" "$KRG" image show "/var/lib/krg/chkpt/$app/v$v" | sed -n 's/^incremental: .* come from v\([0-9]*\) .*/\1/p') &&
		[ -n "$p" ]; do
		v=$p out="$out $p"
	done
	echo "$out"
}

# only_the_chain NODE APP MIN: the latest checkpoint of APP builds on a
# chain of MIN versions or more (itself included), and NODE keeps nothing
# outside that chain (but at most one version not recorded yet)
only_the_chain() {
	local n=$1 app=$2 min=$3 v c k newer=0
	v=$(entry "[x['version'] for x in a if x['appid'] == $app][0]")
	c=" $(chain_of "$n" "$app" "$v") "
	[ "$(echo $c | wc -w)" -ge "$min" ] || return 1
	for k in $(on "$n" ls "/var/lib/krg/chkpt/$app" | sed -n 's/^v//p'); do
		if [ "$k" -gt "$v" ]; then newer=$((newer + 1))
		elif [[ "$c" != *" $k "* ]]; then return 1; fi
	done
	[ "$newer" -le 1 ]
}

# counter_reference PROG DIR STEPS: the counter's uninterrupted run, its
# result in DIR/result, to compare a checkpointed run's with
counter_reference() {
	"$1" "$2" "$3" 0
	[ -s "$2/result" ] || fail "reference run wrote no result"
}

# counter_steps_ok DIR STEP_SEEN_BEFORE STEPS BACKS LOW: the counter in
# DIR ran steps 1..STEPS, going back BACKS times (0 or 1): resumed from a
# checkpoint at a step above LOW, after STEP_SEEN_BEFORE had been reached,
# not begun again
counter_steps_ok() {
	python3 - "$1/steps" "$2" "$3" "$4" "$5" <<'PY' || fail "$1: the steps do not show a resume from a checkpoint: $(tr '\n' ' ' <"$1/steps")"
import sys
s = [int(x) for x in open(sys.argv[1])]
before, steps, backs, low = (int(x) for x in sys.argv[2:6])
back = [i for i in range(1, len(s)) if s[i] != s[i - 1] + 1]
assert len(back) == backs, back
assert s[0] == 1 and s[-1] == steps and before > 1, (s[0], s[-1], before)
if backs:
    i = back[0]
    assert s[i - 1] >= before and low < s[i] <= s[i - 1], (s[i - 1], s[i])
    assert s[i:] == list(range(s[i], steps + 1))
    print("resumed at step %d after step %d had been reached" % (s[i], s[i - 1]))
PY
}
