#!/bin/sh
# Stands in for gopeer when it was not built: fails every Go interop pairing, saying why.
echo "gopeer not built: go or golang-github-containerd-ttrpc-dev is missing (scripts/install-deps.sh installs both), or NANOSHIM_GOPEER=OFF" >&2
exit 1
