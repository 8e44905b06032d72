#!/usr/bin/env bash
# make-image.sh OUTDIR — builds the e2e tests' container content from the host's static
# busybox (Debian's busybox-static):
#   OUTDIR/rootfs/          a root filesystem: /bin/busybox, one /bin symlink per applet,
#                           /etc/passwd, /etc/group, empty /dev /proc /sys /tmp /root
#   OUTDIR/busybox-oci.tar  the same tree as an OCI image archive (oci-layout, index.json,
#                           manifest, config with a default Cmd, one gzipped tar layer)
#                           that `ctr images import` names docker.io/nanoshim/busybox:test
# Cached: nothing is rebuilt while OUTDIR/stamp matches busybox and this script.
# Concurrent callers are serialised with flock, results appear atomically (rename).
set -euo pipefail

out=${1:?usage: make-image.sh OUTDIR}
busybox=${BUSYBOX:-/bin/busybox}
image_name=${E2E_IMAGE:-docker.io/nanoshim/busybox:test}
default_cmd_marker="nanoshim e2e image"

die() { echo "make-image.sh: $*" >&2; exit 1; }

[ -x "$busybox" ] || die "$busybox not found (install busybox-static)"
ldd_out=$(LC_ALL=C ldd "$busybox" 2>&1 || true)
if ! grep -qE 'not a dynamic executable|statically linked' <<<"$ldd_out"; then
	die "$busybox is dynamically linked; the rootfs needs busybox-static"
fi

mkdir -p "$out"
exec 9>"$out/.lock"
flock 9

stamp="$(sha256sum "$busybox" "${BASH_SOURCE[0]}" | awk '{print $1}' | tr '\n' ' ')$image_name"
if [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp" ] &&
	[ -d "$out/rootfs" ] && [ -f "$out/busybox-oci.tar" ]; then
	exit 0
fi

case "$(uname -m)" in
x86_64) arch=amd64 ;;
aarch64) arch=arm64 ;;
armv7l | armv6l) arch=arm ;;
i?86) arch=386 ;;
ppc64le) arch=ppc64le ;;
s390x) arch=s390x ;;
riscv64) arch=riscv64 ;;
*) die "unknown machine $(uname -m)" ;;
esac

work=$(mktemp -d "$out/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT

# --- root filesystem --------------------------------------------------------------
r=$work/rootfs
mkdir -p "$r"/{bin,etc,dev,proc,sys,tmp,root,run,var/tmp}
chmod 1777 "$r/tmp" "$r/var/tmp"
chmod 0700 "$r/root"
cp "$busybox" "$r/bin/busybox"
chmod 0755 "$r/bin/busybox"
for applet in $("$busybox" --list); do
	case "$applet" in busybox | */*) continue ;; esac
	ln -sf busybox "$r/bin/$applet"
done
[ -e "$r/bin/sh" ] || ln -s busybox "$r/bin/sh"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$r/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
echo "$default_cmd_marker" >"$r/etc/nanoshim-image"

# --- OCI image layout ---------------------------------------------------------------
oci=$work/oci
blobs=$oci/blobs/sha256
mkdir -p "$blobs"

# put_blob FILE → prints "<hex digest> <size>" and stores FILE under blobs/sha256/<hex>
put_blob() {
	local hex size
	hex=$(sha256sum "$1" | awk '{print $1}')
	size=$(stat -c %s "$1")
	mv "$1" "$blobs/$hex"
	echo "$hex $size"
}

tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
	-C "$r" -cf "$work/layer.tar" .
diff_id=$(sha256sum "$work/layer.tar" | awk '{print $1}')
gzip -n -9 "$work/layer.tar"
read -r layer_hex layer_size < <(put_blob "$work/layer.tar.gz")

cat >"$work/config.json" <<EOF
{"architecture":"$arch","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["cat","/etc/nanoshim-image"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:$diff_id"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"test/e2e/make-image.sh"}]}
EOF
read -r config_hex config_size < <(put_blob "$work/config.json")

cat >"$work/manifest.json" <<EOF
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:$config_hex","size":$config_size},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:$layer_hex","size":$layer_size}]}
EOF
read -r manifest_hex manifest_size < <(put_blob "$work/manifest.json")

# containerd 1.6's importer names an image from io.containerd.image.name when present;
# org.opencontainers.image.ref.name alone is only a tag (it needs ctr's --base-name).
cat >"$oci/index.json" <<EOF
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:$manifest_hex","size":$manifest_size,"platform":{"architecture":"$arch","os":"linux"},"annotations":{"io.containerd.image.name":"$image_name","org.opencontainers.image.ref.name":"${image_name##*:}"}}]}
EOF
echo '{"imageLayoutVersion":"1.0.0"}' >"$oci/oci-layout"

tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
	-C "$oci" -cf "$work/busybox-oci.tar" oci-layout index.json blobs

# --- publish ------------------------------------------------------------------------
rm -rf "$out/rootfs" "$out/busybox-oci.tar" "$out/stamp"
mv "$r" "$out/rootfs"
mv "$work/busybox-oci.tar" "$out/busybox-oci.tar"
echo "$stamp" >"$out/stamp"
