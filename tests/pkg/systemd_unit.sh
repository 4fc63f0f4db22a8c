#!/usr/bin/env bash
# krgd.service: `systemd-analyze verify` accepts it, and its ExecStart line
# run by hand as systemd runs a Type=notify service (notify_run.py) in a
# 1-node vcluster: READY=1 once the API serves, STOPPING=1 and exit 0 on
# SIGTERM, log lines for the journal. CI has no running systemd.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$KRG_SOURCE_DIR/tests/vcluster/lib.sh"

command -v systemd-analyze >/dev/null || fail "systemd-analyze missing (package systemd; scripts/install-deps.sh)"
# Under the build dir: a node sees it (its /run and /tmp are its own).
tmp=$(mktemp -d "$KRG_BUILD_DIR/pkgtest.XXXXXX")
# The unit as installed, but with this build's krgd and a config dir the
# test owns (inside the node: its /run is private).
etc=/run/pkgtest-etc
sed "s|@sbindir@|$KRG_BUILD_DIR|g; s|@sysconfdir@|$etc|g" "$KRG_SOURCE_DIR/systemd/krgd.service.in" >"$tmp/krgd.service"
out=$(systemd-analyze verify --man=no "$tmp/krgd.service" 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify printed: $out"
echo "systemd-analyze verify: clean"

vc_up pkgsd 1 --no-krgd
trap 'rm -rf "$tmp"; vc_on_exit' EXIT  # after vc_up, which sets its own
addr=$(vc_addr pkgsd 1)
vc_exec pkgsd 1 -- bash -c "mkdir -p $etc && krgadm cluster init --name pkgtest --node 1=$addr --dir $etc/krg" >/dev/null
vc_exec pkgsd 1 -- python3 "$here/notify_run.py" "$tmp/krgd.service" "$KRG_BUILD_DIR/krgadm" "$tmp/krgd.log"
