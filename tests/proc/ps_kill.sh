#!/usr/bin/env bash
# krg ps / krg kill across nodes, with processes started by `krg run`:
# every node lists them (right node, home, user, command, ids that decode
# to the home node); krg kill from node 3 kills a process on node 2.
# Permissions: user B sees user A's processes without their arguments and
# cannot signal them; A can; root can.
PREFIX=ptps
. "$(dirname "$0")/common.sh"
KRG="$KRG_BUILD_DIR/krg"
if ! "$KRG" run --help >/dev/null 2>&1; then
	echo "FAIL: cannot run: 'krg run --help' fails in this build"
	exit 1
fi
UA=krgpta UB=krgptb
made_users=()
for u in $UA $UB; do
	if ! id "$u" >/dev/null 2>&1; then
		useradd -M -N -s /bin/sh "$u"
		made_users+=("$u")
	fi
done
start_cluster 3
trap 'rc=$?; [ $rc -ne 0 ] && dump_logs; "$ADM" vcluster down --prefix "$PREFIX" >/dev/null 2>&1 || true
      for u in "${made_users[@]}"; do userdel "$u" 2>/dev/null || true; done; exit $rc' EXIT

# run_bg NODE USER TARGET CMD...: krg run from NODE as USER onto TARGET, in the background
run_bg() {
	local n=$1 u=$2 t=$3
	shift 3
	if [ "$u" = root ]; then
		(cd / && on "$n" krg run -n "$t" -- "$@" </dev/null >/dev/null 2>&1) &
	else
		(cd / && as "$u" "$n" krg run -n "$t" -- "$@" </dev/null >/dev/null 2>&1) &
	fi
}

# find_proc NODE_TO_ASK JSON_FILTER: the ids of matching processes in krg ps -a --json
ids_where() {
	on "$1" krg ps -a --json | python3 -c "import json,sys
for p in json.load(sys.stdin)['processes']:
    if $2: print(p['id'])"
}

run_bg 1 root 2 sleep 100
run_bg 1 root 3 sleep 101
t0=$SECONDS
wait_for 10 "both sleeps in krg ps" bash -c "[ \$('$ADM' vcluster exec 1 --prefix $PREFIX -- krg ps --json | grep -o '\"sleep 10[01]\"' | wc -l) = 2 ]"
echo "listed after $((SECONDS - t0)) s (krg run start included)"
for i in 1 2 3; do
	ps_json "$i" | python3 -c '
import json, sys
procs = json.load(sys.stdin)["processes"]
for node, cmd in ((2, "sleep 100"), (3, "sleep 101")):
    m = [p for p in procs if p["command"] == cmd]
    assert len(m) == 1, (cmd, m)
    p = m[0]
    assert p["node"] == node and p["home"] == node, p
    assert p["id"] >> 22 == node and p["id"] & ((1 << 22) - 1) == p["pid"], p
    assert p["user"] == "root" and p["uid"] == 0 and p["args_visible"], p
    assert p["state"] in "RSD", p
' || fail "krg ps --json on node $i: $(ps_json "$i")"
done
id2=$(ids_where 1 "p['command'] == 'sleep 100'")
id3=$(ids_where 1 "p['command'] == 'sleep 101'")
# human output has both
out=$(on 2 krg ps)
assert_contains "$out" "sleep 100" "krg ps table"
assert_contains "$out" "$id3" "krg ps table shows the id of node 3's sleep"
# kill from node 3 a process on node 2
on 3 krg kill "$id2" || fail "krg kill $id2 from node 3"
wait_for 5 "sleep 100 gone" bash -c "! '$ADM' vcluster exec 2 --prefix $PREFIX -- pgrep -x -f 'sleep 100'"
[ -z "$(ids_where 1 "p['id'] == $id2")" ] || fail "killed process still listed"
on 1 krg kill -s KILL "$id3" || fail "krg kill -s KILL $id3"

# --- permissions ---
run_bg 1 "$UA" 2 sleep 199 1 # arguments B must not see: "199 1"
a_sees_it() { as "$UA" 1 krg ps --json | grep -q '"sleep 199 1"'; }
wait_for 10 "A's process listed" a_sees_it
ida=$(ids_where 1 "p['user'] == '$UA'")
[ -n "$ida" ] || fail "no process of $UA"
# B without -a: not listed; with -a: listed, command name only
out=$(as "$UB" 3 krg ps --json)
assert_not_contains "$out" "sleep" "B's krg ps without -a lists A's process"
out=$(as "$UB" 3 krg ps -a --json)
echo "$out" | python3 -c "
import json, sys
p = [p for p in json.load(sys.stdin)['processes'] if p['id'] == $ida][0]
assert p['command'] == '[sleep]' and not p['args_visible'] and p['user'] == '$UA', p
" || fail "B sees A's process with arguments: $out"
assert_not_contains "$out" "sleep 199" "B's view of A's arguments"
# A sees the arguments
as "$UA" 2 krg ps --json | grep -q '"sleep 199 1"' || fail "A does not see its own arguments"
# B cannot signal it
set +e
err=$(as "$UB" 3 krg kill "$ida" 2>&1)
rc=$?
set -e
[ $rc -ne 0 ] || fail "B killed A's process"
assert_contains "$err" "not permitted" "B's kill error"
[ "$(echo "$err" | wc -l)" = 1 ] || fail "kill error is not one line: $err"
[ -n "$(ids_where 1 "p['id'] == $ida")" ] || fail "A's process died after B's kill"
# A can (signal 0: existence), root can kill
as "$UA" 1 krg kill -0 "$ida" || fail "A cannot signal its own process"
on 3 krg kill -9 "$ida" || fail "root cannot kill A's process"
wait_for 5 "A's process gone" bash -c "[ -z \"\$('$ADM' vcluster exec 1 --prefix $PREFIX -- krg ps -a --json | grep -o 'sleep')\" ]"
wait
echo PASS
