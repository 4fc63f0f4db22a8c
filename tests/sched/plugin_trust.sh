#!/usr/bin/env bash
# Which plugin files krgd loads (docs/sched.md, "Which files krgd loads"):
# a plugin runs as root in every node's krgd, so krgd loads only a regular
# file owned by root and writable by root alone, in directories with the
# same property up to /, and on every node only the file whose SHA-256 the
# loading node recorded. Refused here: under sticky /tmp, owned by nobody,
# group-writable, in a group-writable directory; refused on other nodes: a
# different file at the same path (node 2), one owned by nobody (node 3),
# also when replayed at a krgd restart. A refused plugin's constructor
# never ran (it would leave /run/krg-test-plugin-ran on its node); each
# refusal is in the node's log and in `sched status` of every node; a
# refused file fixed is loaded without a restart.
PREFIX=splug
. "$KRG_SOURCE_DIR/tests/cluster/common.sh"
[ "$(id -u)" = 0 ] || fail "needs root"
SRC=$KRG_BUILD_DIR/tests/sched/libkrg_test_plugin_marker.so
MARK=/run/krg-test-plugin-ran
D=/var/lib/krg/plug   # /var/lib/krg: the node's own tmpfs, 0700 root
start_cluster 3

sj() { on "$1" krgadm sched status --json | python3 -c "import json,sys; s=json.load(sys.stdin); print($2)"; }
refusal() { # refusal FROM NODE PATH: why NODE refused PATH, seen from FROM
	sj "$1" "([r['reason'] for p in s['plugins'] if p['path']=='$3' for r in p['refused'] if r['node']==$2] + [''])[0]"
}
refused_with() { case "$(refusal "$1" "$2" "$3")" in *"$4"*) return 0 ;; esac; return 1; }
not_refused() { [ -z "$(refusal "$1" "$2" "$3")" ]; }
loaded() { [ "$(sj "$1" "' '.join(p['source'] for p in s['policies'] if p['name']=='test_marker')")" = "$2" ]; }
ran() { on "$1" test -e $MARK; }
no_marker() { # no_marker NODE...: no constructor ran there
	for n in "$@"; do ! ran "$n" || fail "the plugin's constructor ran on node $n"; done
}
expect_fail() { # expect_fail WHAT WORD CMD...: non-zero, one line containing WORD
	local what=$1 word=$2 out rc=0
	shift 2
	out=$("$@" 2>&1) || rc=$?
	[ $rc -ne 0 ] || fail "$what: exit 0"
	[ "$(printf '%s\n' "$out" | wc -l)" = 1 ] || fail "$what: not one line: $out"
	assert_contains "$out" "$word" "$what"
}

for n in 1 2 3; do
	on $n sh -c "mkdir -m 755 $D && install -m 644 $SRC $D/m.so && install -m 644 $SRC /tmp/m.so &&
		install -m 644 -o 65534 $SRC $D/nobody.so && install -m 664 $SRC $D/gw.so &&
		mkdir -m 775 $D/gwdir && install -m 644 $SRC $D/gwdir/m.so"
done

# 1. Refused by the loading node: nothing reaches the cluster state.
expect_fail "plugin under /tmp" "directory /tmp is writable by group or others (mode 1777)" \
	on 1 krgadm sched load /tmp/m.so
expect_fail "plugin owned by nobody" "file $D/nobody.so is owned by uid 65534, not root" \
	on 1 krgadm sched load $D/nobody.so
expect_fail "group-writable plugin" "file $D/gw.so is writable by group or others (mode 0664)" \
	on 1 krgadm sched load $D/gw.so
expect_fail "plugin in a group-writable directory" "directory $D/gwdir is writable by group or others" \
	on 1 krgadm sched load $D/gwdir/m.so
no_marker 1 2 3
assert_contains "$(cat "$(log_of 1)")" "plugin refused: directory /tmp is writable" "refusal logged on node 1"
assert_eq "$(sj 1 "s['plugins']")" "[]" "no plugin in the cluster state"

# 2. Loaded on node 1; node 2 has other bytes at the path, node 3's copy is nobody's.
on 2 sh -c "printf x >> $D/m.so"
on 3 chown 65534 $D/m.so
on 1 krgadm sched load $D/m.so
ran 1 || fail "the plugin did not load on node 1"
wait_for 10 "node 2's refusal seen from node 1" refused_with 1 2 $D/m.so "differs from the file loaded by the cluster"
wait_for 10 "node 3's refusal seen from node 1" refused_with 1 3 $D/m.so "owned by uid 65534, not root"
not_refused 1 1 $D/m.so || fail "node 1 says it refused its own plugin"
no_marker 2 3
loaded 2 "" || fail "node 2 lists the refused policy"
assert_contains "$(on 2 krgadm sched status)" "REFUSED on node 3: file $D/m.so is owned by uid 65534" "text status"
assert_contains "$(cat "$(log_of 2)")" "plugin refused: $D/m.so differs" "refusal logged on node 2"

# 3. Node 3's file fixed: loaded within a second or two, no restart.
on 3 chown 0 $D/m.so
wait_for 10 "node 3 loads the fixed file" loaded 3 $D/m.so
ran 3 || fail "node 3 lists the plugin but its constructor did not run"
wait_for 10 "node 3's refusal withdrawn" not_refused 1 3 $D/m.so

# 4. Replayed at a krgd restart: still refused on node 2 (other bytes), then
# loaded once its file is the cluster's.
"$ADM" vcluster krgd 2 kill --prefix "$PREFIX"
krgd_gone() { ! on 2 krgadm cluster status >/dev/null 2>&1; }
wait_for 10 "node 2's krgd gone" krgd_gone   # its socket can outlive the kill by a moment
"$ADM" vcluster krgd 2 start --prefix "$PREFIX"
on 2 krgadm cluster wait --timeout 30 >/dev/null
wait_for 10 "node 2 refuses again after its restart" refused_with 2 2 $D/m.so "differs from the file"
no_marker 2
on 2 install -m 644 "$SRC" $D/m.so
wait_for 10 "node 2 loads the cluster's file" loaded 2 $D/m.so
ran 2 || fail "node 2 lists the plugin but its constructor did not run"
none_left() { [ "$(sj 1 "[p['refused'] for p in s['plugins']]")" = "[[]]" ]; }
wait_for 10 "no refusal left" none_left
echo "PASS"
