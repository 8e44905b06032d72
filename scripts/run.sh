#!/usr/bin/env bash
# The main job: installs what is missing, builds, and runs nanoshim's ttrpc
# server with containerd's own Go ttrpc client (1.1.1) against it, then the
# C client against the Go server. (Becomes a container run through the shim
# once containerd-shim-nano-v2 lands.)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"${JOBS:-2}"
gopeer=$(test/interop/build-gopeer.sh build/gopeer)
test/interop/run-interop.sh build/test/interop/cpeer "$gopeer"
test/interop/run-interop.sh "$gopeer" build/test/interop/cpeer
