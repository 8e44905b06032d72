/* A state directory of bundles, laid out as containerd's runtime v2 and the
 * manager keep them: <state>/<namespace>/<id>. The scanner lists them, opens
 * each as a directory fd and says what it holds, without following a symlink
 * or trusting a name; removal takes a bundle away file by file, never
 * crossing into a mount (a rootfs still mounted is refused, not emptied). */
#pragma once

#include <stdbool.h>

#include "id.h"

enum bundle_kind {
	BUNDLE_EMPTY,	  /* a directory with nothing in it */
	BUNDLE_HALF_MADE, /* files, but no shim address: a create that never finished */
	BUNDLE_LIVE,	  /* an address file: a shim was (or is) serving it */
};

struct bundle_entry {
	char ns[BUNDLE_ID_MAX + 1];
	char id[BUNDLE_ID_MAX + 1];
	enum bundle_kind kind;
};

/* Called per bundle with its directory fd (closed after fn returns); a
 * non-zero return stops the scan and is returned by it. Entries that are not
 * directories, or whose names are not valid ids, are skipped. */
typedef int (*bundle_scan_fn)(const struct bundle_entry *e, int dirfd, void *userdata);

/* Scans state_dir: 0, fn's non-zero return, or -errno (-ENOENT when state_dir
 * does not exist). The order is the directory's. */
int bundle_state_scan(const char *state_dir, bundle_scan_fn fn, void *userdata);
/* What the bundle dirfd holds. */
enum bundle_kind bundle_classify(int dirfd);
/* Removes <state_dir>/<ns>/<id> and everything in it: 0 (also when it did not
 * exist), -EINVAL for an invalid ns or id, -EBUSY if a mount sits inside it,
 * or another -errno. The namespace directory stays. */
int bundle_state_remove(const char *state_dir, const char *ns, const char *id);
