#!/bin/sh
# Builds the Go interop peer offline against Debian's containerd/ttrpc 1.1.1.
#   build-gopeer.sh OUTDIR   ->  prints OUTDIR/gopeer
set -eu
[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/../../scripts/go-build-offline.sh" "$here/gopeer" gopeer "$1" github.com/containerd/ttrpc
