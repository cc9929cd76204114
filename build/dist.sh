#!/bin/sh
# make dist: for each static target a tarball (the binary, the man page, the
# example config, contrib/, the README and the guide), a .deb for amd64, arm64 and armhf,
# and SHA256SUMS over them, in dist/. Reproducible: the same commit gives the
# same bytes (files dated at the commit, owned by root, sorted; gzip without
# names or times; the binaries built with their paths remapped).
set -eu
cd "$(dirname "$0")/.."
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
export SOURCE_DATE_EPOCH
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -rf dist && mkdir dist
for pair in x86_64-unknown-linux-musl:amd64 aarch64-unknown-linux-musl:arm64 \
            armv7-unknown-linux-musleabihf: arm-unknown-linux-musleabihf:armhf; do
	target=${pair%%:*} arch=${pair#*:}
	bin=target/$target/release/ysync
	[ -f "$bin" ] || { echo "make dist: $bin is missing; make static static-aarch64 static-armv7 static-armv6 builds it" >&2; exit 1; }
	name=ysync-$version-$target
	d=$work/$name
	install -d "$d/contrib"
	install -m 755 "$bin" "$d/ysync"
	install -m 644 ysync.1 ysync.conf.example README.md GUIDE.md "$d/"
	# contrib/ as the repository has it (scripts 755, the rest 644).
	git ls-files -s contrib | while read -r mode _ _ path; do
		install -D -m "$( [ "$mode" = 100755 ] && echo 755 || echo 644 )" "$path" "$d/$path"
	done
	find "$d" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
	tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner --format=gnu \
		-C "$work" -cf - "$name" | gzip -9n > "dist/$name.tar.gz"
	if [ -n "$arch" ]; then
		sh build/deb.sh "$bin" "$arch" "$version" dist >/dev/null
	fi
done
(cd dist && sha256sum -- *.tar.gz *.deb > SHA256SUMS)
cat dist/SHA256SUMS
