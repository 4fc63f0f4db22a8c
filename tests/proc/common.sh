# common.sh — helpers for the process table tests (sourced): the cluster
# helpers of tests/cluster plus a few for krg ps / kill.
. "$KRG_SOURCE_DIR/tests/cluster/common.sh"

# cg_cpus I: quota / period of node I's cgroup, read from its files (host side)
cg_cpus() {
	local cg
	cg=$(vc_cgroup "$PREFIX" "$1")
	if [ -f "$cg/cpu.max" ]; then
		awk '{ if ($1 == "max") print "max"; else printf "%.4f\n", $1 / $2 }' "$cg/cpu.max"
	else
		awk -v q="$(cat "$cg/cpu.cfs_quota_us")" -v p="$(cat "$cg/cpu.cfs_period_us")" \
			'BEGIN { if (q < 0) print "max"; else printf "%.4f\n", q / p }'
	fi
}

# set_cpus I X: give node I a capacity of X cpus by its cgroup quota
set_cpus() {
	local cg quota
	cg=$(vc_cgroup "$PREFIX" "$1")
	quota=$(awk -v x="$2" 'BEGIN { printf "%d", x * 100000 }')
	if [ -f "$cg/cpu.max" ]; then
		echo "$quota 100000" >"$cg/cpu.max"
	else
		echo 100000 >"$cg/cpu.cfs_period_us"
		echo "$quota" >"$cg/cpu.cfs_quota_us"
	fi
}

# ps_json NODE [krg ps args]: krg ps --json on NODE (as root)
ps_json() {
	local n=$1
	shift
	on "$n" krg ps --json "$@"
}

# as USER NODE CMD...: run CMD in NODE as USER (real, effective and saved uid)
as() {
	local u=$1 n=$2
	shift 2
	on "$n" setpriv --reuid "$u" --regid "$(id -g "$u")" --clear-groups -- "$@"
}
