#!/bin/sh
# Builds the Go interop peer offline, in GOPATH mode, against Debian's packaged
# containerd/ttrpc 1.1.1 and its dependencies under /usr/share/gocode.
#   build-gopeer.sh OUTDIR   ->  prints OUTDIR/gopeer
set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 OUTDIR" >&2
	exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
gocode=${NANOSHIM_GOCODE:-/usr/share/gocode}
go=${GO:-go}

if [ ! -d "$gocode/src/github.com/containerd/ttrpc" ]; then
	echo "build-gopeer: $gocode/src/github.com/containerd/ttrpc missing" \
		"(apt install golang-github-containerd-ttrpc-dev)" >&2
	exit 1
fi

# A private GOPATH entry holding a copy of the sources: GOPATH mode needs the
# package under <gopath>/src, and a copy keeps the source tree free of build
# output. cp -p keeps mtimes so unchanged files stay cached.
pkg="$out/gopath/src/nanoshim/gopeer"
mkdir -p "$pkg"
rm -f "$pkg"/*.go
cp -p "$here"/gopeer/*.go "$pkg"/

cd "$pkg"
env GO111MODULE=off GOPATH="$out/gopath:$gocode" GOCACHE="$out/gocache" \
	GOFLAGS= GOPROXY=off GOSUMDB=off GOTOOLCHAIN=local CGO_ENABLED=0 \
	"$go" build -trimpath -o "$out/gopeer.tmp" .
mv -f "$out/gopeer.tmp" "$out/gopeer"
echo "$out/gopeer"
