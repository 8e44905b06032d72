/* The few things the shim reads from a bundle's config.json (the OCI spec
 * containerd wrote): annotations, whether the container has its own pid
 * namespace, its cgroups path, and the shim grouping key derived from
 * annotations. Each call parses the file again; they run once per container. */
#pragma once

#include "status.h"

#include <stdbool.h>
#include <stddef.h>

#define BUNDLE_SPEC_FILE "config.json"
/* specs are kilobytes; a seccomp profile makes them a few hundred */
#define BUNDLE_SPEC_MAX (8 * 1024 * 1024)
#define BUNDLE_CGROUPS_PATH_MAX 4096

/* Grouping annotations, in the order the Go runc shim tries them. */
#define BUNDLE_GROUP_ANNOTATION "io.containerd.runc.v2.group"
#define BUNDLE_SANDBOX_ANNOTATION "io.kubernetes.cri.sandbox-id"

struct bundle_spec_info {
	/* linux.namespaces holds a "pid" entry without a path: the container has
	 * a pid namespace of its own, and the kernel kills everything in it when
	 * init exits. Otherwise (host or joined pid namespace) the shim must kill
	 * the remaining processes itself when init exits. */
	bool private_pid_ns;
	char cgroups_path[BUNDLE_CGROUPS_PATH_MAX]; /* linux.cgroupsPath, "" if unset */
};

/* Copies annotation key of the spec in bundle directory dirfd into out.
 * Returns 1 if present, 0 if absent, or -errno: -ENOENT without config.json,
 * -EBADMSG if it is not a JSON object or annotations is not an object of
 * strings, -ENAMETOOLONG if out is too small. st (if not NULL) gets a message
 * on failure. */
int bundle_spec_annotation(int dirfd, const char *key, char *out, size_t outlen,
			   struct ttrpc_status *st);

/* Fills info from the spec; -errno as above. (The Go shim treats an
 * unreadable spec as "kill all on exit"; that choice is the caller's.) */
int bundle_spec_info(int dirfd, struct bundle_spec_info *info, struct ttrpc_status *st);

/* The shim grouping key, as the Go runc shim's `start` picks it: annotation
 * BUNDLE_GROUP_ANNOTATION, else BUNDLE_SANDBOX_ANNOTATION, else id. A present
 * but empty annotation is used as is (an empty group), as Go does. -errno as
 * above; config.json must exist, as in Go. */
int bundle_group_id(int dirfd, const char *id, char *out, size_t outlen,
		    struct ttrpc_status *st);

/* An exec's OCI Process (JSON, as containerd sends it) with "terminal" set to
 * terminal, as the Go shim overrides it from the request (containerd's client
 * sets the request's terminal, not always the spec's). Every other member is
 * kept, in order. *out is malloc'ed (the caller frees it). 0, or -EBADMSG (not
 * a JSON object; st says why), -ENOMEM. */
int bundle_process_set_terminal(const char *json, size_t len, bool terminal, char **out,
				size_t *outlen, struct ttrpc_status *st);
