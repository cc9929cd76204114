#!/bin/sh
# Builds ysync_VERSION_ARCH.deb with dpkg-deb from the install layout
# (make install-files with PREFIX=/usr), no other build tool.
#   build/deb.sh BINARY DEB_ARCH VERSION OUTDIR
# DEB_ARCH: amd64 (x86_64 musl), arm64 (aarch64), armhf (the ARMv6 binary:
# it runs on Raspberry Pi OS's armhf, which is ARMv6, and on Debian's, ARMv7).
set -eu
bin=$1 arch=$2 version=$3 out=$4
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pkg=$work/ysync
make -s -C "$here" install-files DESTDIR="$pkg" PREFIX=/usr SYSCONFDIR=/etc BIN="$bin" >/dev/null
# The units where systemd looks for a package's units; the rest stays in
# /usr/share/ysync (OpenRC, cron, OpenWrt, Entware examples).
install -d "$pkg/usr/lib/systemd/system"
mv "$pkg"/usr/share/ysync/systemd/* "$pkg/usr/lib/systemd/system/"
rmdir "$pkg/usr/share/ysync/systemd"
gzip -9n "$pkg/usr/share/man/man1/ysync.1"
install -d -m 755 "$pkg/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" "$here/build/deb/control" > "$pkg/DEBIAN/control"
echo /etc/ysync.conf > "$pkg/DEBIAN/conffiles"
for s in postinst prerm postrm; do install -m 755 "$here/build/deb/$s" "$pkg/DEBIAN/$s"; done
# Reproducible: every file dated at the last commit, owned by root.
stamp=${SOURCE_DATE_EPOCH:-$(git -C "$here" log -1 --format=%ct 2>/dev/null || echo 0)}
find "$pkg" -exec touch -h -d "@$stamp" {} +
mkdir -p "$out"
SOURCE_DATE_EPOCH=$stamp dpkg-deb --root-owner-group -Zgzip --build "$pkg" "$out/ysync_${version}_${arch}.deb" >/dev/null
echo "$out/ysync_${version}_${arch}.deb"
