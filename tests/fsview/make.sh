#!/usr/bin/env bash
# The classic demo (issue 21): `krg capset -e DISTANT_FORK -- make -j6` of
# a small C project with the default TMPDIR on a 3-node vcluster. gcc's
# cc1 writes /tmp/ccXXXX.s and `as` reads it, each wherever it was placed:
# the build succeeds only if every node sees home's /tmp. DISTANT_FORK
# places each compiler at its execve (docs/sched.md), away from node 1
# (the smallest node). Checked: make succeeds, the program gives the
# answer a local build gives, and the compilers started on at least 2
# nodes, placed at their exec.
PREFIX=fsm${KRG_VC_SUFFIX:-}
. "$KRG_SOURCE_DIR/tests/cluster/common.sh"
KRG=$KRG_BUILD_DIR/krg
[ "$(id -u)" = 0 ] || { echo "FAIL: cannot run: needs root"; exit 1; }
command -v gcc >/dev/null && command -v make >/dev/null || { echo "FAIL: cannot run: needs gcc and make"; exit 1; }
W=$(mktemp -d "$KRG_BUILD_DIR/fsview-make.XXXXXX")
chmod 755 "$W"
start_cluster 3
trap 'rc=$?; [ $rc -ne 0 ] && dump_logs; "$ADM" vcluster down --prefix "$PREFIX" >/dev/null 2>&1; rm -rf "$W"; exit $rc' EXIT
on 1 krgadm sched disable mosix >/dev/null

python3 - "$W" <<'PY'
import sys
w = sys.argv[1]
for i in range(6):
    with open("%s/u%d.c" % (w, i), "w") as f:
        f.write("int f%d(int x) {\n" % i)
        for j in range(4000):
            f.write("  x = x * %d + (x >> %d) ^ %d;\n" % (j + 3, j % 7 + 1, j * 7 + i))
        f.write("  return x;\n}\n")
with open(w + "/main.c", "w") as f:
    f.write("#include <stdio.h>\n")
    f.write("".join("int f%d(int);\n" % i for i in range(6)))
    f.write("int main(void) { int x = 1; %s printf(\"%%d\\n\", x); return 0; }\n"
            % " ".join("x = f%d(x);" % i for i in range(6)))
with open(w + "/Makefile", "w") as f:
    objs = " ".join("u%d.o" % i for i in range(6))
    f.write("prog: main.o %s\n\t$(CC) -o $@ $^\n" % objs)
    f.write("%.o: %.c\n\t$(CC) -O2 -c $< -o $@\n")
PY
# The compiler: records the node it runs on (the build tree is shared by
# every node; /tmp is not), then becomes gcc there. make execs it: placed
# at that exec, before it has run an instruction; gcc and its cc1 and as
# then run where it was placed.
cat >"$W/cc.sh" <<'SH'
#!/bin/sh
read h </proc/sys/kernel/hostname
echo "$h" >>"${0%/*}/where"
exec gcc "$@"
SH
chmod 755 "$W/cc.sh"
cp -r "$W" "$W.ref"
make -s -C "$W.ref" CC=gcc prog >/dev/null
want=$("$W.ref/prog")
rm -rf "$W.ref"

cg=$(vc_cgroup "$PREFIX" 1)
if [ -f "$cg/cpu.max" ]; then echo "25000 100000" >"$cg/cpu.max"; else echo 25000 >"$cg/cpu.cfs_quota_us"; fi
# Placement is decided at each exec, at once: node 1 must know it is small.
small1() { [ "$(on 1 krgadm sched status --json | python3 -c "import json,sys; print([round(n['cpus'], 2) for n in json.load(sys.stdin)['nodes'] if n['id']==1][0])")" = 0.25 ]; }
wait_for 10 "node 1 sees its smaller capacity" small1
on 1 "$KRG" run -n 1 -- "$KRG" capset -e DISTANT_FORK -- make -s -C "$W" -j6 CC="$W/cc.sh" prog </dev/null ||
	fail "make -j6 with DISTANT_FORK failed"
got=$(on 1 "$W/prog")
assert_eq "$got" "$want" "the program built across the cluster"
nodes=$(sort -u "$W/where" | tr '\n' ' ')
echo "compilers started on: $(sort "$W/where" | uniq -c | tr '\n' ';')"
[ "$(sort -u "$W/where" | wc -l)" -ge 2 ] || fail "the compilers all ran on one node ($nodes)"
df=$(on 1 krgadm sched status --json | python3 -c "import json,sys; print(json.load(sys.stdin)['probes']['distant_forks'])")
echo "distant forks from node 1: $df"
[ "$df" -ge 1 ] || fail "no distant fork counted"
at_exec=$(grep -c "placed on node .* at its exec" "$(log_of 1)" || true)
echo "placed at their exec: $at_exec"
[ "$at_exec" -ge 1 ] || fail "no child placed at its exec"

# A gcc moved while it waits for its cc1 (issue 21): cc1 stays home as
# the deputy's child, gcc gets a ghost of it on node 2 under the same pid
# (each node's pids in its own range, docs/migration.md), so gcc's
# waitpid(cc1) gets cc1's status; then gcc runs as on node 2, which reads
# cc1's /tmp/ccXXXX.s from node 1 through the view.
rm -f "$W/u0.o"
on 1 "$KRG" run -n 1 -- gcc -O2 -c "$W/u0.c" -o "$W/u0.o" </dev/null >"$W/gcc.out" 2>&1 &
gccrun=$!
ps_json() { on 1 "$KRG" ps -a --json; }
has_cc1() { ps_json | python3 -c "import json,sys; sys.exit(0 if any('/cc1 ' in p['command'] and 'u0.c' in p['command'] for p in json.load(sys.stdin)['processes']) else 1)"; }
wait_for 30 "gcc's cc1 runs" has_cc1
gid=$(ps_json | python3 -c "import json,sys; print([p['id'] for p in json.load(sys.stdin)['processes'] if p['command'].startswith('gcc ')][0])")
on 1 "$KRG" migrate "$gid" 2 || fail "krg migrate of gcc waiting for cc1"
wait $gccrun || fail "gcc moved while waiting for its cc1 failed: $(cat "$W/gcc.out")"
[ -s "$W/u0.o" ] || fail "gcc moved while waiting for its cc1 wrote no u0.o"
echo "ok   gcc moved to node 2 while waiting for its cc1 finished the compile"
echo "PASS"
