#!/usr/bin/env bash
# make check's package test (issue 20): build the Debian packages from this
# tree (scripts/build-deb.sh: dpkg-buildpackage + lintian, ~1 min), then
# install, upgrade and purge them in a private root and run a 3-node
# vcluster from the installed binaries (install.sh). A missing tool fails
# the test: it never skips.
set -euo pipefail
src=${KRG_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
for tool in dpkg-buildpackage dh lintian fakeroot; do
	command -v "$tool" >/dev/null || { echo "FAIL: $tool missing (scripts/install-deps.sh installs it)" >&2; exit 1; }
done
out=$(mktemp -d /tmp/krg-pkgtest.XXXXXX)
trap 'rm -rf "$out"' EXIT
bash "$src/scripts/build-deb.sh" "$out/deb"
bash "$src/tests/pkg/install.sh" "$out/deb"
