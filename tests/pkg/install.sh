#!/usr/bin/env bash
# The Debian packages in a private root: a copy-on-write copy of this
# machine's root (overlayfs, in a private mount namespace: the machine
# itself is never changed) without krg, where the packages install,
# reinstall (the upgrade path of the maintainer scripts) and purge, and a
# 3-node vcluster runs from the installed binaries.
# usage: install.sh DEBDIR   (make check-pkg; root; under the vcluster lock)
set -euo pipefail
debs=$(cd "${1:?usage: install.sh DEBDIR}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
ls "$debs"/krg_*.deb "$debs"/libdrmaa-krg1_*.deb "$debs"/libkrg0_*.deb "$debs"/libkrg-dev_*.deb >/dev/null
[ "$(id -u)" = 0 ] || { echo "FAIL: needs root" >&2; exit 1; }
exec unshare --mount --propagation private bash "$here/install_inside.sh" "$debs"
