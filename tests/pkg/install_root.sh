#!/usr/bin/env bash
# Runs inside the private root of install.sh: install, check, vcluster,
# reinstall, purge.
set -euo pipefail
fail() { echo "FAIL: $*" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
cd /debs
dpkg -i libkrg0_*.deb libdrmaa-krg1_*.deb krg_*.deb libkrg-dev_*.deb >/tmp/dpkg.log 2>&1 ||
	{ cat /tmp/dpkg.log >&2; fail "dpkg -i"; }
echo "ok   installed: $(dpkg-query -W -f='${Package} ${Version} ' krg libdrmaa-krg1 libkrg0 libkrg-dev)"

# Files where the packages promise them.
for f in /usr/sbin/krgd /usr/sbin/krgadm /usr/bin/krg /usr/sbin/krg-deputy /usr/sbin/krg-ghost /usr/sbin/krg-kdfs /usr/sbin/krg-fsview \
	/lib/systemd/system/krgd.service /etc/krg/krgd.conf.example /usr/share/krg/grafana/krg-dashboard.json \
	/usr/share/bash-completion/completions/krg /usr/share/bash-completion/completions/krgadm \
	/usr/lib/x86_64-linux-gnu/krg/libdrmaa.so.1 /usr/lib/x86_64-linux-gnu/krg/krg-drmaa-shepherd \
	/usr/include/krg/krg.h /usr/include/krg/sched_policy.h /usr/include/krg/drmaa.h; do
	[ -e "$f" ] || fail "$f missing"
done
for p in krg.1 krgadm.8 krgd.8 krgd.conf.5 libdrmaa-krg.3 krg-deputy.8 krg-ghost.8 krg-kdfs.8 krg-fsview.8; do
	f=$(ls /usr/share/man/man"${p##*.}"/"$p".gz 2>/dev/null) || fail "man page $p missing"
	zcat "$f" | grep -q '^\.SH NAME' || fail "man page $p is not a man page"
done
dpkg-query -W -f='${Conffiles}\n' krg | grep -q '/etc/krg/krgd.conf.example' || fail "krgd.conf.example is not a conffile"
[ "$(stat -c %a /var/lib/krg)" = 700 ] || fail "/var/lib/krg is $(stat -c %a /var/lib/krg), not 700"
echo "ok   binaries, unit, man pages, completion, dashboard, libdrmaa; conffile; /var/lib/krg 0700"

# libkrg-dev: a C program against libkrg and one against krg's DRMAA.
cat >/tmp/k.c <<'C'
#include <krg/krg.h>
#include <krg/sched_policy.h>
#include <drmaa.h>
#include <stdio.h>
int main(void) { char e[DRMAA_ERROR_STRING_BUFFER]; printf("%d\n", KRG_SCHED_API_VERSION); return drmaa_version(NULL, NULL, e, sizeof(e)) == DRMAA_ERRNO_INVALID_ARGUMENT ? 0 : 0; }
C
command -v cc >/dev/null || fail "no cc in the root (build-essential)"
{
	cc /tmp/k.c -o /tmp/k $(pkg-config --cflags --libs krg krg-drmaa) || fail "cc against krg.pc and krg-drmaa.pc"
	/tmp/k >/dev/null || fail "the program built against libkrg-dev does not run"
	echo "ok   a C program builds with pkg-config krg krg-drmaa and runs"
}

# Right after install: cluster init, then krgd from the unit's ExecStart.
krgadm cluster init --name pkg --node 1=10.0.0.1 >/dev/null || fail "krgadm cluster init right after install"
[ "$(stat -c %a /etc/krg/cluster.key)" = 600 ] || fail "cluster.key mode"
grep -q '^ExecStart=/usr/sbin/krgd --config /etc/krg/krgd.conf$' /lib/systemd/system/krgd.service || fail "ExecStart"
command -v systemd-analyze >/dev/null || fail "no systemd-analyze in the root (package systemd)"
{
	out=$(systemd-analyze verify /lib/systemd/system/krgd.service 2>&1) || fail "systemd-analyze verify: $out"
	[ -z "$out" ] || fail "systemd-analyze verify (man pages installed): $out"
	echo "ok   systemd-analyze verify on the installed unit (its man: references resolve)"
}

# A 3-node vcluster from the installed binaries.
krgadm vcluster up 3 --prefix pkgi >/dev/null || fail "vcluster up 3 from /usr/sbin/krgadm"
trap 'krgadm vcluster down --prefix pkgi >/dev/null 2>&1 || true' EXIT
krgadm vcluster exec 1 --prefix pkgi -- krgadm cluster wait --timeout 30 >/dev/null || fail "cluster wait"
st=$(krgadm vcluster exec 1 --prefix pkgi -- krgadm cluster status --json)
python3 -c "import json,sys; s=json.loads(sys.argv[1]); sys.exit(0 if s['quorum'] and s['nodes_up']==3 else 1)" "$st" ||
	fail "cluster status: $st"
out=$(krgadm vcluster exec 1 --prefix pkgi -- krg run -n 3 -- hostname)
[ "$out" = pkgi-node3 ] || fail "krg run -n 3 hostname: $out"
n=0
for p in /proc/[0-9]*; do
	[ "$(readlink "$p/exe" 2>/dev/null)" = /usr/sbin/krgd ] && n=$((n + 1))
done
[ $n -ge 3 ] || fail "$n krgd run from /usr/sbin/krgd, not 3"
# python3-drmaa (scripts/install-deps.sh) loads the library named by
# DRMAA_LIBRARY_PATH when imported.
DRMAA_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/krg/libdrmaa.so.1 python3 -c 'import drmaa' ||
	fail "python3-drmaa does not load the installed libdrmaa.so.1"
{
	krgadm vcluster exec 1 --prefix pkgi -- env DRMAA_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/krg/libdrmaa.so.1 python3 -c '
import drmaa
with drmaa.Session() as s:
    jt = s.createJobTemplate(); jt.remoteCommand = "/bin/true"; jt.nativeSpecification = "-n 2"
    j = s.runJob(jt); assert s.wait(j, 30).exitStatus == 0' || fail "a DRMAA job through the installed libdrmaa"
	echo "ok   a DRMAA job through /usr/lib/x86_64-linux-gnu/krg/libdrmaa.so.1 and its shepherd"
}
echo "ok   3-node vcluster from /usr/sbin: quorum, 3 up, krg run -n 3 hostname = pkgi-node3"
krgadm vcluster down --prefix pkgi >/dev/null
trap - EXIT

# Upgrade path: the same packages again (postinst configure with the old
# version); admin's files untouched.
sum=$(md5sum /etc/krg/krgd.conf /etc/krg/cluster.key)
dpkg -i libkrg0_*.deb libdrmaa-krg1_*.deb krg_*.deb libkrg-dev_*.deb >/tmp/dpkg.log 2>&1 ||
	{ cat /tmp/dpkg.log >&2; fail "dpkg -i again (upgrade)"; }
[ "$(md5sum /etc/krg/krgd.conf /etc/krg/cluster.key)" = "$sum" ] || fail "reinstall changed the admin's files"
echo "ok   reinstall (upgrade path) keeps krgd.conf and cluster.key"

# remove keeps the configuration; purge leaves nothing.
dpkg -r libkrg-dev krg >/tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log >&2; fail "dpkg -r"; }
[ -e /etc/krg/krgd.conf ] && [ -e /etc/krg/krgd.conf.example ] || fail "remove dropped the configuration"
dpkg --purge krg libdrmaa-krg1 libkrg0 >/tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log >&2; fail "dpkg --purge"; }
for p in /etc/krg /var/lib/krg /usr/sbin/krgd /lib/systemd/system/krgd.service /usr/lib/x86_64-linux-gnu/krg; do
	[ ! -e "$p" ] || fail "$p left after purge: $(ls -la "$p" 2>&1 | head -5)"
done
echo "ok   remove keeps /etc/krg; purge leaves no /etc/krg, /var/lib/krg, binaries or unit"
