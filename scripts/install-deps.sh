#!/usr/bin/env bash
# Install what krg needs to build and test, from Debian's archive only.
# Does nothing when everything is already there, so `make check` stays fast.
set -euo pipefail
pkgs=(meson ninja-build pkg-config gcc libuv1-dev libraft-dev libprotobuf-c-dev
      protobuf-c-compiler libsodium-dev libxxhash-dev libssl-dev libcmocka-dev libfuse3-dev fuse3 liblmdb-dev iproute2
      procps util-linux python3 sqlite3 tmux clang
      python3-drmaa   # tests/drmaa: Debian's DRMAA binding against krg's libdrmaa
      python3-sysv-ipc   # tests/intercept: System V IPC from Python under krg run
      stress-ng   # tests/intercept/stress.sh: its System V stressors with workers on several nodes
      postgresql-15 postgresql-client-15   # tests/intercept/postgres.sh: its System V shm under krg run
      libsystemd-dev systemd   # krgd.service: sd_notify; tests/pkg: systemd-analyze verify
      libmicrohttpd-dev curl   # krgd's metrics endpoint (docs/monitoring.md) and its test
      scdoc bash-completion    # man pages from man/*.scd; completions/
      debhelper dpkg-dev fakeroot lintian)  # make deb (docs/packaging.md)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "krg: missing packages: ${missing[*]} (run as root or install them)" >&2
	exit 1
fi
echo "krg: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || true
apt-get install -y -qq --no-install-recommends "${missing[@]}"
