#!/usr/bin/env bash
# make deb: build krg's Debian packages from debian/ with dpkg-buildpackage
# (debhelper, meson) on a copy of the tree, then check them with lintian.
# usage: build-deb.sh OUTDIR   -> OUTDIR/*.deb, OUTDIR/lintian.txt
# Fails on a lintian error; warnings are explained in docs/packaging.md.
set -euo pipefail
out=${1:?usage: build-deb.sh OUTDIR}
src=$(cd "$(dirname "$0")/.." && pwd)
version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
rm -rf "$out"
mkdir -p "$out/krg-$version"
out=$(cd "$out" && pwd)
# The files git knows (tracked, or new and not ignored): no build dirs.
(cd "$src" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$out/krg-$version")
cd "$out/krg-$version"
nice -n 10 dpkg-buildpackage -b -us -uc -j"$(nproc)" >"$out/build.log" 2>&1 || {
	tail -n 40 "$out/build.log" >&2
	echo "krg: dpkg-buildpackage failed, see $out/build.log" >&2
	exit 1
}
cd "$out"
changes=$(ls krg_"$version"_*.changes)
# --pedantic would add opinions; errors and warnings are what we answer for.
lintian --no-tag-display-limit --display-info "$changes" >lintian.txt 2>&1 || true
if grep -q '^E: ' lintian.txt; then
	grep '^E: ' lintian.txt >&2
	echo "krg: lintian errors (all of $out/lintian.txt)" >&2
	exit 1
fi
echo "krg: packages in $out:"
ls -1 "$out"/*.deb
echo "krg: lintian: $(grep -c '^W: ' lintian.txt || true) warnings, $(grep -c '^I: ' lintian.txt || true) infos (docs/packaging.md)"
