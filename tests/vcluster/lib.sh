# lib.sh — shell helpers for tests on a vcluster (sourced; bash).
#
#   vc_up PREFIX N [up args]      start a vcluster (downing a stale one of
#                                 the same prefix first); registers PREFIX so
#                                 the EXIT trap downs it even on failure.
#                                 Call it in the test's shell, not in $(...)
#   vc_exec PREFIX I -- CMD...    run CMD in node I, its exit status
#   vc_down PREFIX                tear down (idempotent)
#   vc_state PREFIX               state dir; vc_init_pid / vc_addr / vc_cgroup PREFIX I
#   vc_assert_gone PREFIX [PIDS]  nothing of PREFIX left on the host
#   fail MSG, assert_eq A B MSG, assert_ne A B MSG, assert_contains HAY NEEDLE MSG,
#   assert_not_contains HAY NEEDLE MSG, pid_alive PID
#
# Needs KRG_BUILD_DIR (meson test sets it); KRGADM overrides the binary.
: "${KRG_BUILD_DIR:?run through meson test (KRG_BUILD_DIR unset)}"
KRGADM=${KRGADM:-$KRG_BUILD_DIR/krgadm}
VC_PREFIXES=${VC_PREFIXES:-}

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

assert_eq() {
	[ "$1" = "$2" ] || fail "$3: got '$1', expected '$2'"
}

assert_ne() {
	[ "$1" != "$2" ] || fail "$3: both are '$1'"
}

assert_contains() {
	case "$1" in *"$2"*) ;; *) fail "$3: '$2' not found in: $1" ;; esac
}

assert_not_contains() {
	case "$1" in *"$2"*) fail "$3: '$2' found in: $1" ;; esac
}

# A zombie counts as gone: on these machines orphans are never reaped.
pid_alive() {
	[ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*[ZX]' "/proc/$1/status" 2>/dev/null
}

krgadm() { "$KRGADM" "$@"; }

vc_cleanup() {
	local p
	for p in $VC_PREFIXES; do
		"$KRGADM" vcluster down --prefix "$p" >/dev/null 2>&1 ||
			echo "warning: vcluster down --prefix $p failed" >&2
	done
}

# Called from the EXIT trap: keep the test's exit status; on failure show
# the node logs, which usually say why.
vc_on_exit() {
	local rc=$? p f
	# Set inside a $(...) subshell: not the test's end, leave it running.
	[ "$BASHPID" = "$$" ] || return $rc
	if [ $rc -ne 0 ]; then
		for p in $VC_PREFIXES; do
			for f in /run/krg-vcluster/"$p"/node*/krgd.log; do
				[ -s "$f" ] || continue
				echo "----- $f (last 20 lines)" >&2
				tail -n 20 "$f" >&2
			done
		done
	fi
	vc_cleanup
	exit $rc
}

vc_up() {
	local prefix=$1 n=$2
	shift 2
	case " $VC_PREFIXES " in *" $prefix "*) ;; *) VC_PREFIXES="$VC_PREFIXES $prefix" ;; esac
	trap vc_on_exit EXIT
	"$KRGADM" vcluster down --prefix "$prefix" >/dev/null 2>&1 || true
	"$KRGADM" vcluster up "$n" --prefix "$prefix" "$@" || fail "vcluster up $n --prefix $prefix $* failed"
}

vc_exec() {
	local prefix=$1 node=$2
	shift 2
	[ "${1:-}" = "--" ] && shift
	"$KRGADM" vcluster exec "$node" --prefix "$prefix" -- "$@"
}

vc_down() {
	"$KRGADM" vcluster down --prefix "$1"
}

vc_state() { echo "/run/krg-vcluster/$1"; }
vc_init_pid() { cat "/run/krg-vcluster/$1/node$2/init.pid"; }
vc_cgroup() { cat "/run/krg-vcluster/$1/node$2/cgroup"; }
vc_addr() { echo "10.77.$(cat "/run/krg-vcluster/$1/subnet").$2"; }

# CPU quota of node I in microseconds per 100 ms period (v1 or v2).
vc_cpu_quota() {
	local cg
	cg=$(vc_cgroup "$1" "$2")
	if [ -f "$cg/cpu.max" ]; then
		cut -d' ' -f1 "$cg/cpu.max"
	else
		cat "$cg/cpu.cfs_quota_us"
	fi
}

vc_assert_gone() {
	local prefix=$1 pid links
	shift
	! ip link show "krgbr-$prefix" >/dev/null 2>&1 || fail "bridge krgbr-$prefix is left"
	links=$(ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -E "^krg$prefix-[0-9]+$" || true)
	[ -z "$links" ] || fail "links left: $links"
	for d in /sys/fs/cgroup/krg-"$prefix" /sys/fs/cgroup/cpu/krg-"$prefix" /sys/fs/cgroup/cpu,cpuacct/krg-"$prefix"; do
		[ ! -e "$d" ] || fail "cgroup $d is left"
	done
	[ ! -e "/run/krg-vcluster/$prefix" ] || fail "state dir /run/krg-vcluster/$prefix is left"
	for pid in "$@"; do
		! pid_alive "$pid" || fail "process $pid ($(cat /proc/"$pid"/comm 2>/dev/null)) is left"
	done
}
