#!/bin/sh
# make test-dist: build/dist.sh twice gives the same bytes, and each tarball
# and .deb holds what a user needs. Run by make test after the static builds.
set -eu
cd "$(dirname "$0")/.."
sh build/dist.sh > /dev/null
first=$(mktemp)
trap 'rm -f "$first"' EXIT
cp dist/SHA256SUMS "$first"
sh build/dist.sh > /dev/null
cmp -s "$first" dist/SHA256SUMS || { echo "test-dist: a second make dist gave other bytes:"; diff "$first" dist/SHA256SUMS; exit 1; }
(cd dist && sha256sum -c --quiet SHA256SUMS)
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
for t in x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf arm-unknown-linux-musleabihf; do
	list=$(tar tzvf "dist/ysync-$version-$t.tar.gz")
	for f in ysync ysync.1 ysync.conf.example README.md GUIDE.md contrib/systemd/ysync@.service contrib/openwrt/ysync \
	         contrib/entware/S99ysync contrib/openrc/ysync contrib/cron/ysync.cron contrib/container/Dockerfile; do
		echo "$list" | grep -q " ysync-$version-$t/$f\$" || { echo "test-dist: $f is not in the $t tarball"; exit 1; }
	done
	echo "$list" | grep -q "^-rwxr-xr-x 0/0 .* ysync-$version-$t/ysync\$" || { echo "test-dist: the $t binary is not 755, owned by 0/0"; exit 1; }
done
for a in amd64 arm64 armhf; do
	dpkg-deb -f "dist/ysync_${version}_$a.deb" Architecture | grep -qx "$a" || { echo "test-dist: the $a .deb says another architecture"; exit 1; }
done
# The armhf package carries the ARMv6 binary (Raspberry Pi OS's armhf is ARMv6).
dpkg-deb --fsys-tarfile "dist/ysync_${version}_armhf.deb" | tar -xO ./usr/bin/ysync | cmp -s - target/arm-unknown-linux-musleabihf/release/ysync \
	|| { echo "test-dist: the armhf .deb does not hold the ARMv6 binary"; exit 1; }
echo "test-dist: dist/ is the same twice over, $(wc -l < dist/SHA256SUMS) files, each complete"
