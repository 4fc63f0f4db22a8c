#!/usr/bin/env bash
# Every path into the build tree that README.md and docs/*.md tell the
# reader to use (build/...) exists in the build: a moved or renamed target
# would otherwise leave the docs pointing at nothing.
set -euo pipefail
: "${KRG_BUILD_DIR:?run through meson test}" "${KRG_SOURCE_DIR:?run through meson test}"
cd "$KRG_SOURCE_DIR"
missing=0 n=0
while read -r doc path; do
	n=$((n + 1))
	if [ ! -e "$KRG_BUILD_DIR/${path#build/}" ]; then
		echo "FAIL: $doc names $path, which the build does not have" >&2
		missing=1
	fi
done < <(for f in README.md docs/*.md; do
	grep -ohE '(^|[ `(=])build/[A-Za-z0-9_./+-]+' "$f" | sed -E 's/^[ `(=]//; s/[.]$//' | sort -u |
		sed "s|^|$f |"
done)
[ "$n" -gt 0 ] || { echo "FAIL: no build/ path found in the docs (the pattern is wrong)" >&2; exit 1; }
echo "$n build paths checked"
exit $missing
