#!/bin/sh
# Builds task-go offline against Debian's containerd 1.6 Go client.
#   build.sh OUTDIR   ->  prints OUTDIR/task-go
set -eu
[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/../../../scripts/go-build-offline.sh" "$here" task-go "$1" github.com/containerd/containerd
