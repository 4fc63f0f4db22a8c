#!/usr/bin/env bash
# Second half of install.sh, in its private mount namespace: build the
# root, make it the namespace's root, run install_root.sh in it.
set -euo pipefail
debs=$1
here=$(cd "$(dirname "$0")" && pwd)
base=$(mktemp -d /tmp/krg-pkgroot.XXXXXX)
mount -t tmpfs -o size=2g tmpfs "$base"
mkdir "$base/upper" "$base/work" "$base/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$base/upper,workdir=$base/work" "$base/root"
r=$base/root
# A fresh root: nothing of krg from this machine (a `make install` or an
# earlier package) in it.
rm -rf "$r"/usr/local/sbin/krg* "$r"/usr/local/bin/krg "$r"/etc/krg "$r"/var/lib/krg
if chroot "$r" dpkg-query -W krg >/dev/null 2>&1; then
	chroot "$r" dpkg --purge krg libdrmaa-krg1 libkrg-dev libkrg0 >/dev/null
fi
mount -t proc proc "$r/proc"
mount --rbind /sys "$r/sys"
mount --rbind /dev "$r/dev"
mount -t tmpfs tmpfs "$r/run"
mount -t tmpfs tmpfs "$r/tmp"
mkdir -p "$r/debs" "$r/test"
mount --bind "$debs" "$r/debs"
cp "$here/install_root.sh" "$here/prom.py" "$r/test/"
# pivot_root, not chroot: vcluster exec enters the nodes' mount namespaces
# (setns), which sets the root to the namespace's own, so the private root
# must be that. What lives in this namespace ends with its last process.
cd "$r"
mkdir -p .oldroot
pivot_root . .oldroot
exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb bash -c '
	cd /
	umount -l /.oldroot && rmdir /.oldroot
	rc=0
	bash /test/install_root.sh || rc=$?
	krgadm vcluster down --prefix pkgi >/dev/null 2>&1 || true
	exit $rc'
