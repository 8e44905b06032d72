#!/bin/sh
# Builds a small Go program of ours offline, in GOPATH mode, against Debian's
# packaged Go sources under /usr/share/gocode (no network, no modules).
#   go-build-offline.sh SRCDIR NAME OUTDIR NEEDS   ->  prints OUTDIR/NAME
# NEEDS: an import path that must be installed (named in the error if not).
set -eu

if [ $# -ne 4 ]; then
	echo "usage: $0 SRCDIR NAME OUTDIR NEEDS" >&2
	exit 2
fi
src=$(cd "$1" && pwd)
name=$2
mkdir -p "$3"
out=$(cd "$3" && pwd)
needs=$4
gocode=${NANOSHIM_GOCODE:-/usr/share/gocode}
go=${GO:-go}

if [ ! -d "$gocode/src/$needs" ]; then
	echo "$name: $gocode/src/$needs missing (install its golang-*-dev package)" >&2
	exit 1
fi

# GOPATH mode needs the package under <gopath>/src: build a copy there, which
# also keeps build output out of the source tree (cp -p keeps mtimes, so an
# unchanged source stays cached).
pkg="$out/gopath/src/nanoshim/$name"
mkdir -p "$pkg"
rm -f "$pkg"/*.go
cp -p "$src"/*.go "$pkg"/

cd "$pkg"
env GO111MODULE=off GOPATH="$out/gopath:$gocode" GOCACHE="$out/gocache" \
	GOFLAGS= GOPROXY=off GOSUMDB=off GOTOOLCHAIN=local CGO_ENABLED=0 \
	"$go" build -trimpath -o "$out/$name.tmp" .
mv -f "$out/$name.tmp" "$out/$name"
echo "$out/$name"
