#!/usr/bin/env bash
# The main job: installs what is missing, builds, and runs containers through
# containerd-shim-nano-v2 on a private containerd 1.6 (scripts/demo.sh), then through
# nanoshimd, crashed and restarted with the container recovered (scripts/demo-manager.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"${JOBS:-2}"
scripts/demo.sh
exec scripts/demo-manager.sh
