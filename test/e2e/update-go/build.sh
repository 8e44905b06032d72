#!/bin/sh
# Builds update-go offline, in GOPATH mode, against Debian's packaged containerd 1.6
# client (golang-github-containerd-containerd-dev) and its dependencies under
# /usr/share/gocode.
#   build.sh OUTDIR   ->  prints OUTDIR/update-go
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

if [ ! -d "$gocode/src/github.com/containerd/containerd" ]; then
	echo "update-go: $gocode/src/github.com/containerd/containerd missing" \
		"(apt install golang-github-containerd-containerd-dev)" >&2
	exit 1
fi

# GOPATH mode needs the package under <gopath>/src: build a copy there (cp -p keeps
# mtimes, so an unchanged source stays cached).
pkg="$out/gopath/src/nanoshim/update-go"
mkdir -p "$pkg"
rm -f "$pkg"/*.go
cp -p "$here"/*.go "$pkg"/

cd "$pkg"
env GO111MODULE=off GOPATH="$out/gopath:$gocode" GOCACHE="$out/gocache" \
	GOFLAGS= GOPROXY=off GOSUMDB=off GOTOOLCHAIN=local CGO_ENABLED=0 \
	"$go" build -trimpath -o "$out/update-go.tmp" .
mv -f "$out/update-go.tmp" "$out/update-go"
echo "$out/update-go"
