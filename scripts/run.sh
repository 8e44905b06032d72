#!/usr/bin/env bash
# The main job: installs what is missing, builds, and runs containers through
# containerd-shim-nano-v2 on a private containerd 1.6 (scripts/demo.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"${JOBS:-2}"
exec scripts/demo.sh
