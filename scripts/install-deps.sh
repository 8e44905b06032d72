#!/usr/bin/env bash
# Installs, from Debian's archive, whatever nanoshim needs to build, test and
# benchmark that is not already on the machine. Idempotent; needs root.
set -euo pipefail

# The -dev packages also carry the archives the default (NANOSHIM_STATIC) build links:
# libprotobuf-c.a, libyajl_s.a, libnl-3.a, libnl-route-3.a, libcap-ng.a; libc.a is
# libc6-dev's (build-essential).
pkgs=(
	build-essential cmake pkg-config clang libclang-rt-14-dev
	libprotobuf-c-dev protobuf-c-compiler
	libnl-3-dev libnl-route-3-dev libcap-ng-dev libyajl-dev libcriterion-dev
	golang-go golang-github-containerd-ttrpc-dev golang-github-containerd-containerd-dev
	containerd runc crun busybox-static
	util-linux procps iproute2 psmisc
	criu docker-registry umoci skopeo dpkg-dev strace python3 jq openssl
)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
	exit 0
fi
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Debian's containerd package would start the system daemon; nanoshim's tests
# run their own private containerd, so keep package scripts from starting it.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod +x "$policy"
	created_policy=1
fi
trap '[ "$created_policy" = 1 ] && rm -f "$policy"' EXIT
if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; then
	apt-get update -q >/dev/null
	apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
