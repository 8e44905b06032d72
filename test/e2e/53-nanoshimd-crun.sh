#!/usr/bin/env bash
# e2e 50-nanoshimd again with crun as nanoshimd's runtime (--runtime crun): every
# container command through crun instead of runc.
here=$(cd "$(dirname "$0")" && pwd)
command -v crun >/dev/null || { . "$here/lib.sh"; e2e_skip "crun not installed"; }
export MGR_RUNTIME
MGR_RUNTIME=$(type -P crun)
exec bash "$here/50-nanoshimd.sh"
