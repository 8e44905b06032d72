#!/bin/bash
# Runs containerd's own integration suite (integration/client of the installed
# containerd, 1.6.20 on Debian 12) against a shim, the way containerd's CI runs
# it against containerd-shim-runc-v2 — but offline and away from the host:
#   - the suite's source comes from Debian's containerd source package and its
#     test binary is built offline (GOPATH mode over /usr/share/gocode);
#   - every run of the test binary is in its own mount, pid and network
#     namespaces, with the suite's fixed paths bind-mounted from a temp dir and
#     its image names (ghcr.io/..., registry.k8s.io/...) resolved to a local
#     docker-registry serving images built here from busybox-static;
#   - a watchdog records a test that hangs as failed and resumes the rest in a
#     fresh containerd (test/containerd-suite/slow.txt: tests allowed longer
#     silences); failed and hung tests get one retry at the end.
#
#   scripts/containerd-suite.sh [SHIM]            # our shim, io.containerd.nano.v2
#   RUNTIME=io.containerd.runc.v2 scripts/containerd-suite.sh   # Debian's Go shim
#
# SHIM defaults to build/shim/containerd-shim-nano-v2; it is put on PATH as
# containerd-shim-<name>-<version> for RUNTIME io.containerd.<name>.<version>.
# Environment: SUITE_CACHE (build/containerd-suite), SUITE_STALL (seconds
# without output before a run is declared hung, 60), SUITE_MAX (seconds for
# the whole suite, 900), SUITE_RUN (regex: only tests matching it).
# Prints "N passed, M failed" last; exits non-zero if any test not listed in
# test/containerd-suite/skip.txt fails.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
self="$root/scripts/$(basename "$0")"

# ---------------------------------------------------------------------------
# Inside the namespaces (pid 1 of the new pid namespace): set up the private
# paths, start the registry and run the test binary once.
#   __inner ATTEMPT_DIR CACHE RUNTIME BINDIR REGEX
if [ "${1:-}" = __inner ]; then
	adir=$2 cache=$3 runtime=$4 bindir=$5 regex=$6
	# unshare already made propagation private; say so anyway so that no
	# mount below can leak to the host whatever unshare's defaults are.
	mount --make-rprivate /
	ip link set lo up
	# The suite's fixed paths. /run as a whole (not only /run/containerd and
	# /run/containerd-test) so runc's state (/run/runc) is private too.
	mount --bind "$adir/varlib" /var/lib/containerd-test
	mount --bind "$adir/run" /run
	# A private /tmp; what of ours lives under the real one (a checkout in /tmp: this
	# script, the cache, the shim) is bound into it at the same path first.
	for keep in "$root" "$cache" "$bindir"; do
		case $keep in
		/tmp/?*)
			keep=/tmp/$(cut -d/ -f3 <<<"$keep")
			if ! mountpoint -q "$adir/tmp${keep#/tmp}"; then
				mkdir -p "$adir/tmp${keep#/tmp}"
				mount --bind "$keep" "$adir/tmp${keep#/tmp}"
			fi
			;;
		esac
	done
	mount --rbind "$adir/tmp" /tmp
	mount --bind "$cache/hosts" /etc/hosts

	# The registry answers for every registry name in /etc/hosts, over TLS
	# (the client only speaks plain HTTP to localhost) with a certificate of
	# our own CA, which the test binary trusts through SSL_CERT_FILE.
	docker-registry serve "$cache/registry.yml" >"$adir/registry.log" 2>&1 &
	for _ in $(seq 100); do
		if (exec 3<>/dev/tcp/127.0.0.1/443) 2>/dev/null; then break; fi
		sleep 0.1
	done
	if [ ! -e "$cache/registry-store/pushed" ]; then
		# The store outlives the namespace: push once, serve it to every run.
		while read -r tag ref; do
			skopeo --insecure-policy copy -q --all --dest-tls-verify=false \
				"oci:$cache/images/oci:$tag" "docker://127.0.0.1:443/$ref"
		done <"$cache/images/refs"
		touch "$cache/registry-store/pushed"
	fi

	cd /tmp
	# bash stays pid 1 (no exec): shims are re-parented to pid 1 when their
	# starter exits, and bash reaps them.
	env PATH="$bindir:$PATH" TMPDIR=/tmp SSL_CERT_FILE="$cache/certs/ca.crt" \
		TEST_RUNTIME="$runtime" \
		"$cache/client.test" -test.root -test.v -test.run "$regex"
	exit $?
fi

# ---------------------------------------------------------------------------
# Outside: prepare (cached), then run the tests in attempts under a watchdog.

RUNTIME=${RUNTIME:-io.containerd.nano.v2}
SHIM=${1:-${SHIM:-}}
cache=${SUITE_CACHE:-$root/build/containerd-suite}
stall=${SUITE_STALL:-60}
max=${SUITE_MAX:-900}
only=${SUITE_RUN:-}
skipfile="$root/test/containerd-suite/skip.txt"
slowfile="$root/test/containerd-suite/slow.txt"

log() { printf 'containerd-suite: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (namespaces, mounts, containers)"
for tool in containerd runc unshare ip go docker-registry umoci skopeo openssl jq busybox; do
	command -v "$tool" >/dev/null || die "$tool not found (scripts/install-deps.sh installs it)"
done

# RUNTIME io.containerd.<name>.<version> -> binary containerd-shim-<name>-<version>
case $RUNTIME in
io.containerd.*.*) ;;
*) die "RUNTIME $RUNTIME is not of the form io.containerd.<name>.<version>" ;;
esac
shimname=${RUNTIME#io.containerd.}
shimname="containerd-shim-${shimname%.*}-${shimname##*.}"
if [ -z "$SHIM" ] && [ "$RUNTIME" = io.containerd.nano.v2 ]; then
	SHIM="$root/build/shim/containerd-shim-nano-v2"
fi
if [ -n "$SHIM" ]; then
	[ -x "$SHIM" ] || die "shim $SHIM not found (build the project first)"
	SHIM=$(cd "$(dirname "$SHIM")" && pwd)/$(basename "$SHIM")
else
	command -v "$shimname" >/dev/null || die "$shimname not on PATH"
fi
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

# --- containerd's source, from Debian's source package of the installed containerd
version=$(dpkg-query -W -f='${Version}' containerd)
upstream=${version%-*}
upstream=${upstream#*:}
src="$cache/src/containerd-$upstream"
if [ ! -d "$src/integration/client" ]; then
	command -v dpkg-source >/dev/null || die "dpkg-dev is needed for apt-get source"
	# This machine may have no deb-src entry: add one (once) for bookworm.
	if ! grep -rqs '^Types:.*deb-src\|^deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/; then
		log "adding a deb-src entry for bookworm"
		cat >/etc/apt/sources.list.d/nanoshim-deb-src.sources <<-'EOF'
			Types: deb-src
			URIs: http://deb.debian.org/debian
			Suites: bookworm bookworm-updates
			Components: main
			Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
		EOF
		apt-get update -q >&2
	fi
	log "fetching containerd $version source"
	rm -rf "$cache/src.tmp" && mkdir -p "$cache/src.tmp"
	(cd "$cache/src.tmp" && apt-get source -q "containerd=$version" >&2) ||
		(apt-get update -q >&2 && cd "$cache/src.tmp" && apt-get source -q "containerd=$version" >&2)
	[ -d "$cache/src.tmp/containerd-$upstream/integration/client" ] ||
		die "apt-get source gave no containerd-$upstream/integration/client"
	rm -rf "$src" && mkdir -p "$cache/src"
	mv "$cache/src.tmp/containerd-$upstream" "$src"
	rm -rf "$cache/src.tmp"
fi

# --- the test binary, offline. The suite imports containerd's own packages at
# the version being tested, so a private GOPATH maps github.com/containerd/
# containerd to the unpacked source (its vendor/ then applies too); the other
# dependencies come from Debian's /usr/share/gocode.
if [ ! -x "$cache/client.test" ] || [ -n "$(find "$src" -newer "$cache/client.test" -name '*.go' -print -quit)" ]; then
	log "building integration/client test binary (offline, takes a few minutes)"
	mkdir -p "$cache/gopath/src/github.com/containerd"
	ln -sfn "$src" "$cache/gopath/src/github.com/containerd/containerd"
	(cd "$cache/gopath/src/github.com/containerd/containerd/integration/client" &&
		env GO111MODULE=off GOPATH="$cache/gopath:/usr/share/gocode" \
			GOCACHE="$cache/gocache" GOFLAGS= GOPROXY=off GOSUMDB=off \
			GOTOOLCHAIN=local go test -c -o "$cache/client.test.tmp" .)
	mv -f "$cache/client.test.tmp" "$cache/client.test"
fi

# --- TLS for the local registry: our own CA, one certificate for every name
# the suite pulls from.
registries="ghcr.io k8s.gcr.io registry.k8s.io gcr.io docker.io registry-1.docker.io"
if [ ! -s "$cache/certs/registry.crt" ]; then
	log "making a CA and a certificate for the local registry"
	rm -rf "$cache/certs" && mkdir -p "$cache/certs"
	(
		cd "$cache/certs"
		openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=nanoshim-suite-ca \
			-keyout ca.key -out ca.crt 2>/dev/null
		openssl req -newkey rsa:2048 -nodes -subj /CN=ghcr.io \
			-keyout registry.key -out registry.csr 2>/dev/null
		# shellcheck disable=SC2086 # one name a word
		san=$(printf 'DNS:%s,' $registries localhost)
		printf 'subjectAltName=%sIP:127.0.0.1\n' "$san" >ext.cnf
		openssl x509 -req -in registry.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
			-days 3650 -extfile ext.cnf -out registry.crt 2>/dev/null
	)
fi
printf '127.0.0.1 localhost %s\n::1 localhost\n' "$registries" >"$cache/hosts"
mkdir -p "$cache/registry-store"
cat >"$cache/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $cache/registry-store
  delete:
    enabled: true
http:
  addr: 127.0.0.1:443
  tls:
    certificate: $cache/certs/registry.crt
    key: $cache/certs/registry.key
EOF

# --- images, from busybox-static: a rootfs with every applet and the users
# the suite expects (www-data is uid 33 in its busybox image). Each name gets
# content of its own (a marker file): the suite deletes, leases and unpacks
# images one by one and checks the blobs and snapshots go away, which shared
# layers would keep. refs: OCI tag -> repository:tag in the registry.
images_version=6 # bump when the images below change
oci="$cache/images/oci"
# new_image TAG MARKER [EXTRA-LAYER-FILE]
new_image() {
	local b="$cache/images/bundle" r
	rm -rf "$b"
	umoci new --image "$oci:$1"
	umoci unpack --image "$oci:$1" "$b"
	r="$b/rootfs"
	# proc, sys, dev and run as in any image: runc cannot make the default
	# spec's mount points in a read-only rootfs (TestUserNamespaces/ReadonlyRootFS)
	mkdir -p "$r/bin" "$r/sbin" "$r/usr/bin" "$r/usr/sbin" "$r/etc" "$r/tmp" "$r/root" "$r/home" \
		"$r/var/www" "$r/proc" "$r/sys" "$r/dev" "$r/run"
	chmod 1777 "$r/tmp"
	cp /bin/busybox "$r/bin/busybox"
	busybox --list-full | while read -r applet; do
		[ -e "$r/$applet" ] || ln -s /bin/busybox "$r/$applet"
	done
	# busybox-static's nc is busybox's small one, with no SIGTERM handler:
	# as a container's pid 1 it never gets the SIGTERM the suite sends
	# (TestBindLowPortNonOpt waits for 143). The suite's busybox image has
	# the full nc, which catches it; a shell that does stands in for it.
	rm -f "$r/usr/bin/nc"
	cat >"$r/usr/bin/nc" <<-'EOF'
		#!/bin/sh
		trap 'kill -TERM $pid; wait $pid; exit 143' TERM
		/bin/busybox nc "$@" &
		pid=$!
		wait $pid
	EOF
	chmod 755 "$r/usr/bin/nc"
	cat >"$r/etc/passwd" <<-'EOF'
		root:x:0:0:root:/root:/bin/sh
		daemon:x:1:1:daemon:/usr/sbin:/bin/false
		bin:x:2:2:bin:/bin:/bin/false
		sys:x:3:3:sys:/dev:/bin/false
		sync:x:4:100:sync:/bin:/bin/sync
		mail:x:8:8:mail:/var/spool/mail:/bin/false
		www-data:x:33:33:www-data:/var/www:/bin/false
		operator:x:37:37:Operator:/var:/bin/false
		nobody:x:65534:65534:nobody:/home:/bin/false
	EOF
	cat >"$r/etc/group" <<-'EOF'
		root:x:0:
		daemon:x:1:
		bin:x:2:
		sys:x:3:
		adm:x:4:
		tty:x:5:
		disk:x:6:
		mail:x:8:
		www-data:x:33:
		operator:x:37:
		users:x:100:
		nogroup:x:65534:
	EOF
	echo "$2" >"$r/etc/nanoshim-test-image"
	umoci repack --image "$oci:$1" "$b"
	if [ -n "${3:-}" ]; then
		# a second layer, for the suite's multi-layer image
		mkdir -p "$r/volume"
		echo "$3" >"$r/volume/file"
		umoci repack --image "$oci:$1" "$b"
	fi
	rm -rf "$b"
	umoci config --image "$oci:$1" --os linux --architecture amd64 --config.cmd sh \
		--config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
}
# new_index TAG MARKER OS/ARCH[/VARIANT]...: an image index with one image
# per platform, each with layers of its own (the suite sums the sizes of
# every platform's layers), the shape of the multi-platform images the suite
# pulls by platform.
new_index() {
	local tag=$1 marker=$2 plat os arch variant m entries=() blob digest
	shift 2
	for plat in "$@"; do
		IFS=/ read -r os arch variant <<<"$plat"
		new_image "$tag-${plat//\//-}" "$marker $plat"
		umoci config --image "$oci:$tag-${plat//\//-}" --os "$os" --architecture "$arch"
		m=$(jq -c --arg t "$tag-${plat//\//-}" \
			'.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t)
			| {mediaType, digest, size}' "$oci/index.json")
		entries+=("$(jq -c --arg os "$os" --arg arch "$arch" --arg v "${variant:-}" \
			'. + {platform: ({os: $os, architecture: $arch} + (if $v == "" then {} else {variant: $v} end))}' <<<"$m")")
	done
	blob=$(printf '%s\n' "${entries[@]}" | jq -cs \
		'{schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: .}')
	digest=$(printf '%s' "$blob" | sha256sum | cut -d' ' -f1)
	printf '%s' "$blob" >"$oci/blobs/sha256/$digest"
	jq --arg t "$tag" --arg d "sha256:$digest" --argjson s "${#blob}" \
		'.manifests += [{mediaType: "application/vnd.oci.image.index.v1+json", digest: $d, size: $s,
		  annotations: {"org.opencontainers.image.ref.name": $t}}]' "$oci/index.json" >"$oci/index.json.tmp"
	mv "$oci/index.json.tmp" "$oci/index.json"
}
if [ "$(cat "$cache/images/version" 2>/dev/null)" != "$images_version" ]; then
	log "building test images from busybox-static"
	rm -rf "$cache/images" "$cache/registry-store"
	mkdir -p "$cache/images" "$cache/registry-store"
	umoci init --layout "$oci"
	new_image busybox "ghcr.io/containerd/busybox:1.32"
	new_image alpine "ghcr.io/containerd/alpine:3.14.0"
	new_image multi "ghcr.io/containerd/volume-copy-up:2.1" "copy-up"
	new_index pause "k8s.gcr.io/pause:3.6" linux/amd64 linux/arm64/v8 linux/arm/v7 linux/s390x
	new_index e2e "registry.k8s.io/e2e-test-images/busybox:1.29-2" linux/amd64 linux/arm64/v8 linux/arm/v7 linux/s390x linux/ppc64le
	cat >"$cache/images/refs" <<-'EOF'
		busybox containerd/busybox:1.32
		alpine containerd/alpine:3.14.0
		multi containerd/volume-copy-up:2.1
		pause pause:3.6
		e2e e2e-test-images/busybox:1.29-2
	EOF
	echo "$images_version" >"$cache/images/version"
fi

# --- the tests to run: all of the binary's tests minus the skip list.
# -test.short makes TestMain skip the daemon, so -test.list just lists.
mapfile -t all < <("$cache/client.test" -test.short -test.list '^Test')
declare -A skipped_reason=()
if [ -f "$skipfile" ]; then
	while IFS= read -r line; do
		line=${line%%#*}
		read -r name reason <<<"$line" || true
		[ -n "${name:-}" ] && skipped_reason[$name]=${reason:-"(no reason given)"}
	done <"$skipfile"
fi
# Tests that legitimately print nothing for longer than $stall seconds get
# their own allowance (seconds) before the watchdog calls them hung.
declare -A allowance=()
if [ -f "$slowfile" ]; then
	while IFS= read -r line; do
		line=${line%%#*}
		read -r name secs _ <<<"$line" || true
		[ -n "${name:-}" ] && allowance[$name]=$secs
	done <"$slowfile"
fi
queue=()
for t in "${all[@]}"; do
	[ -n "${skipped_reason[$t]:-}" ] && continue
	if [ -n "$only" ] && ! [[ $t =~ $only ]]; then continue; fi
	queue+=("$t")
done
[ ${#queue[@]} -gt 0 ] || die "no test to run"

# The shim goes on PATH under the name containerd derives from RUNTIME.
work=$(mktemp -d "$cache/run.XXXXXX")
mkdir -p "$work/bin"
[ -n "$SHIM" ] && ln -s "$SHIM" "$work/bin/$shimname"
# The suite's /var/lib path must exist to be a mount point (an empty directory
# is all the host ever sees of it).
mkdir -p /var/lib/containerd-test

ns_pid=
cleanup() {
	# Only the namespace's own process tree is ours to kill; SIGKILL of
	# unshare takes its child (pid 1 of the namespace, --kill-child) and with
	# it everything in the namespace.
	if [ -n "$ns_pid" ] && kill -0 "$ns_pid" 2>/dev/null; then
		kill -KILL "$ns_pid" 2>/dev/null || true
		wait "$ns_pid" 2>/dev/null || true
	fi
	if [ -z "${SUITE_KEEP:-}" ]; then
		rm -rf "$work"
	else
		log "kept $work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

declare -A status=() # test -> PASS FAIL SKIP HUNG
declare -A message=()
results="$cache/results-$RUNTIME"
: >"$results"

# The namespaces do not cover cgroups: containerd puts each container in
# /sys/fs/cgroup[/<controller>]/testing/<id>, and a container that outlives
# its test (a failed or killed run) leaves that cgroup behind on the host when
# the namespace dies. Its ids are the suite's test names (maybe with a
# suffix); rmdir removes only empty cgroups, never one in use. Some tests make
# cgroups of their own and leave empty ones behind even when they pass:
# testing-<Test> (TestRegressionIssue4769, 6429) and the parent of
# TestShimInCgroup's /containerd/shim; /containerd only where this script
# found none (it may be a host containerd's).
declare -A host_cg=()
for d in /sys/fs/cgroup/containerd /sys/fs/cgroup/*/containerd; do
	[ -d "$d" ] && host_cg[$d]=1
done
remove_cgroups() {
	local t d
	for t in "$@"; do
		for d in /sys/fs/cgroup/testing/"$t" /sys/fs/cgroup/testing/"$t"[-_]* \
			/sys/fs/cgroup/*/testing/"$t" /sys/fs/cgroup/*/testing/"$t"[-_]* \
			/sys/fs/cgroup/testing-"$t" /sys/fs/cgroup/*/testing-"$t"; do
			[ -d "$d" ] && { find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true; }
		done
	done
	rmdir /sys/fs/cgroup/testing /sys/fs/cgroup/*/testing 2>/dev/null || true
	for d in /sys/fs/cgroup/containerd /sys/fs/cgroup/*/containerd; do
		[ -d "$d" ] && [ -z "${host_cg[$d]:-}" ] && rmdir "$d" 2>/dev/null || true
	done
}

# The test binary's -v output as "EVENT Test" lines, top-level tests only
# (subtests are indented or named Test/sub): RUN, PAUSE, CONT, PASS, FAIL, SKIP.
events() {
	sed -n -E 's/^=== (RUN|CONT|PAUSE) +([^/ ]+)$/\1 \2/p; s/^--- (PASS|FAIL|SKIP): ([^/ ]+) .*/\1 \2/p' "$1"
}

# The longest silence allowed while the tests in output file $1 run: $stall,
# or more while a test of slow.txt is running.
silence_allowed() {
	local limit=$stall st t
	declare -A on=()
	while read -r st t; do
		case $st in
		RUN | CONT) on[$t]=1 ;;
		*) unset "on[$t]" ;;
		esac
	done < <(events "$1")
	for t in "${!on[@]}"; do
		[ "${allowance[$t]:-0}" -gt "$limit" ] && limit=${allowance[$t]}
	done
	echo "$limit"
}

# One run of the test binary over the tests in $@, in fresh namespaces and a
# fresh containerd, killed when its output stalls for $stall s. Sets
# `outstanding` to the tests started but not finished when it ended.
attempt=0
started=$(date +%s)
run_once() {
	attempt=$((attempt + 1))
	local adir="$work/a$attempt"
	mkdir -p "$adir/varlib" "$adir/run" "$adir/tmp"
	local regex
	regex="^($(IFS='|'; echo "$*"))\$"
	log "run $attempt: ${#} test(s)"
	unshare --mount --pid --net --fork --kill-child --mount-proc \
		"$self" __inner "$adir" "$cache" "$RUNTIME" "$work/bin" "$regex" \
		>"$adir/out" 2>"$adir/err" &
	ns_pid=$!
	local size=-1 idle=0 now
	hung=0 limit=$stall # (global: the report names the limit that fired)
	# stderr to /dev/null: bash reports a SIGKILLed job as soon as it reaps it
	{ while kill -0 "$ns_pid" 2>/dev/null; do
		sleep 1
		now=$(stat -c %s "$adir/out")
		if [ "$now" != "$size" ]; then
			size=$now idle=0 limit=$stall
		else
			idle=$((idle + 1))
		fi
		if [ $idle -eq "$stall" ] && [ ${#allowance[@]} -gt 0 ]; then
			limit=$(silence_allowed "$adir/out")
		fi
		if [ $idle -ge "$limit" ] || [ $(($(date +%s) - started)) -ge "$max" ]; then
			hung=1
			kill -KILL "$ns_pid" 2>/dev/null || true
		fi
	done; } 2>/dev/null
	# (quietly: bash would report the SIGKILLed job)
	{ wait "$ns_pid"; } 2>/dev/null || true
	ns_pid=
	rm -rf "$adir/varlib" "$adir/run" "$adir/tmp"
	remove_cgroups "$@"

	# Top-level results only (subtests are indented). A test runs from its
	# === RUN (or === CONT, for a parallel test) to its --- line; a parallel
	# test that is paused has not really started. The tests still running
	# when the run ended are the ones that hung (or were running when the
	# binary died).
	local t st
	declare -A running=()
	outstanding=()
	ran=0
	while read -r st t; do
		case $st in
		RUN) running[$t]=1 ran=1 ;;
		CONT) running[$t]=1 ;;
		PAUSE) unset "running[$t]" ;;
		PASS | FAIL | SKIP) status[$t]=$st; unset "running[$t]" ;;
		esac
	done < <(events "$adir/out")
	for t in "$@"; do
		[ -n "${running[$t]:-}" ] && outstanding+=("$t")
	done
	if [ $hung = 1 ]; then
		log "run $attempt: no output for ${limit}s (or the suite's ${max}s are up): killed"
	fi
	# Failure messages: the last of the test's log lines (file.go:NN: ...,
	# but not the client's debug log the suite pipes through log_hook.go) and
	# panics, attributed to the test named by the last === header.
	for t in "$@"; do
		[ "${status[$t]:-}" = FAIL ] || continue
		message[$t]=$(awk -v t="$t" '
			/^=== (RUN|CONT|PAUSE|NAME) / { split($3, p, "/"); cur = p[1]; next }
			/^ *--- (FAIL|PASS|SKIP): / { split($3, p, "/"); cur = p[1]; next }
			cur == t && ((/^ +[^ ]+\.go:[0-9]+: / && !/log_hook\.go:/) || /^panic:/) { sub(/^ +/, ""); line[n++ % 6] = $0 }
			END { for (i = (n > 6 ? n - 6 : 0); i < n; i++) print line[i % 6] }' "$adir/out")
	done
	cp "$adir/out" "$cache/last-run$attempt.out"
	cp "$adir/err" "$cache/last-run$attempt.err"
}

rm -f "$cache"/last-run*.out "$cache"/last-run*.err
# Failed and hung tests get one more chance, together in a fresh containerd
# at the end: some of the suite's tests are timing-sensitive (100 ms to see a
# killed container's children gone) and fail now and then on a loaded 2-core
# machine with either shim. A pass on retry is reported as such.
retried=0
declare -A first_message=()
while [ ${#queue[@]} -gt 0 ]; do
	run_once "${queue[@]}"
	if [ $ran = 0 ]; then
		# Nothing started: TestMain itself failed (daemon, seed image pull).
		log "run $attempt started no test; its output:"
		tail -n 30 "$work/a$attempt/out" "$work/a$attempt/err" >&2 || true
		for t in "${queue[@]}"; do
			status[$t]=FAIL
			message[$t]="not run: the suite could not start (see $cache/last-run$attempt.err)"
		done
		break
	fi
	# Each test still running made no progress for $stall s: hung. (Tests
	# run in parallel are independent containers and shims, so one hung test
	# does not hold another up.)
	for t in "${outstanding[@]}"; do
		if [ $hung = 1 ]; then
			status[$t]=HUNG
			message[$t]="hung: killed after ${limit}s without output"
		else
			status[$t]=FAIL
			message[$t]="never ended: the test binary exited during it (see $cache/last-run$attempt.out)"
		fi
	done
	rest=()
	for t in "${queue[@]}"; do
		[ -z "${status[$t]:-}" ] && rest+=("$t")
	done
	if [ ${#rest[@]} -eq 0 ] && [ $retried = 0 ]; then
		retried=1
		for t in "${all[@]}"; do
			case ${status[$t]:-} in FAIL | HUNG) ;; *) continue ;; esac
			first_message[$t]=${message[$t]:-}
			unset "status[$t]"
			rest+=("$t")
		done
		[ ${#rest[@]} -gt 0 ] && log "retrying the ${#rest[@]} failed test(s) once"
	fi
	if [ ${#rest[@]} -gt 0 ] && [ $(($(date +%s) - started)) -ge "$max" ]; then
		for t in "${rest[@]}"; do
			status[$t]=FAIL
			message[$t]=${first_message[$t]:-"not run: the suite's ${max}s were up"}
		done
		break
	fi
	queue=("${rest[@]}")
done

# --- report
passed=0 failed=0 skipped=() flaky=()
failures=()
for t in "${all[@]}"; do
	if [ -n "${skipped_reason[$t]:-}" ]; then
		echo "SKIPLIST $t" >>"$results"
		continue
	fi
	st=${status[$t]:-}
	[ -z "$st" ] && continue # filtered out by SUITE_RUN
	echo "$st $t" >>"$results"
	case $st in
	PASS)
		passed=$((passed + 1))
		[ -n "${first_message[$t]+set}" ] && flaky+=("$t")
		;;
	SKIP) skipped+=("$t") ;;
	*) failed=$((failed + 1)) failures+=("$t") ;;
	esac
done
elapsed=$(($(date +%s) - started))
log "runtime $RUNTIME: $attempt run(s), ${elapsed}s; results in $results, logs in $cache/last-run*"
for t in "${failures[@]}"; do
	echo "${status[$t]} $t"
	msg=${message[$t]:-${first_message[$t]:-}}
	[ -n "$msg" ] && printf '%s\n' "$msg" | sed 's/^/    /'
done
for t in "${flaky[@]}"; do
	echo "PASS on retry $t"
	printf '%s\n' "${first_message[$t]}" | sed 's/^/    first run: /'
done
# Against our shim, name the tests that passed with the Go shim's last run
# here (RUNTIME=io.containerd.runc.v2) but not now: the ones that matter.
gores="$cache/results-io.containerd.runc.v2"
if [ "$RUNTIME" != io.containerd.runc.v2 ] && [ -s "$gores" ]; then
	worse=()
	for t in "${failures[@]}"; do
		grep -qx "PASS $t" "$gores" && worse+=("$t")
	done
	echo "failing here but passing with io.containerd.runc.v2 ($(date -r "$gores" -u +%FT%TZ)): ${#worse[@]}${worse:+ (${worse[*]})}"
fi
listed=()
for t in "${all[@]}"; do
	[ -n "${skipped_reason[$t]:-}" ] && listed+=("$t")
done
echo "skipped: ${#listed[@]} on test/containerd-suite/skip.txt${listed:+ (${listed[*]})}, ${#skipped[@]} by the suite itself${skipped:+ (${skipped[*]})}"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
