/* Mount option parsing and overlay lowerdir compaction (see mountopt.h). */
#include "mountopt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#define LOWERDIR "lowerdir="
/* containerd leaves this much of a page for what the kernel adds */
#define PAGE_SLACK 512

static const struct flag_option {
	const char *name;
	bool clear;
	unsigned long flag;
} flag_options[] = {
	{"async", true, MS_SYNCHRONOUS},
	{"atime", true, MS_NOATIME},
	{"bind", false, MS_BIND},
	{"dev", true, MS_NODEV},
	{"diratime", true, MS_NODIRATIME},
	{"dirsync", false, MS_DIRSYNC},
	{"exec", true, MS_NOEXEC},
	{"mand", false, MS_MANDLOCK},
	{"noatime", false, MS_NOATIME},
	{"nodev", false, MS_NODEV},
	{"nodiratime", false, MS_NODIRATIME},
	{"noexec", false, MS_NOEXEC},
	{"nomand", true, MS_MANDLOCK},
	{"norelatime", true, MS_RELATIME},
	{"nostrictatime", true, MS_STRICTATIME},
	{"nosuid", false, MS_NOSUID},
	{"rbind", false, MS_BIND | MS_REC},
	{"relatime", false, MS_RELATIME},
	{"remount", false, MS_REMOUNT},
	{"ro", false, MS_RDONLY},
	{"rw", true, MS_RDONLY},
	{"strictatime", false, MS_STRICTATIME},
	{"suid", true, MS_NOSUID},
	{"sync", false, MS_SYNCHRONOUS},
};

/* Propagation changes need a mount(2) call of their own. */
static const struct flag_option propagation_options[] = {
	{"private", false, MS_PRIVATE},
	{"rprivate", false, MS_PRIVATE | MS_REC},
	{"shared", false, MS_SHARED},
	{"rshared", false, MS_SHARED | MS_REC},
	{"slave", false, MS_SLAVE},
	{"rslave", false, MS_SLAVE | MS_REC},
	{"unbindable", false, MS_UNBINDABLE},
	{"runbindable", false, MS_UNBINDABLE | MS_REC},
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct flag_option *lookup(const struct flag_option *t, size_t n, const char *o)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(t[i].name, o) == 0)
			return &t[i];
	return NULL;
}

/* Index of the first "lowerdir=" option, or -1. */
static long find_lowerdir(char *const *options, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (options[i] && strncmp(options[i], LOWERDIR, strlen(LOWERDIR)) == 0)
			return (long)i;
	return -1;
}

/* The parent directory (with its trailing '/') that every ':'-separated entry
 * of dirs starts with, as compactLowerdirOption finds it: the directory part
 * of the longest common prefix. 0 and its length in *len, or -1 when there is
 * none worth using (one entry, relative paths, or only "/" in common). */
static int common_parent(const char *dirs, size_t *len)
{
	const char *first = dirs, *colon = strchr(dirs, ':');
	if (!colon)
		return -1;
	size_t common = (size_t)(colon - first);
	for (const char *e = colon + 1;; e = colon + 1) {
		colon = strchr(e, ':');
		size_t elen = colon ? (size_t)(colon - e) : strlen(e);
		size_t i = 0;
		while (i < common && i < elen && first[i] == e[i])
			i++;
		common = i;
		if (!colon)
			break;
	}
	/* back to the last '/' of the common part (path.Dir): snapshot dirs are
	 * numbered, and "snapshots/1" must not be taken for the parent of
	 * "snapshots/12" */
	while (common > 0 && first[common - 1] != '/')
		common--;
	if (first[0] != '/' || common <= 1)
		return -1;
	*len = common; /* includes the '/' */
	return 0;
}

/* "lowerdir=" with each entry stripped of its first plen bytes. */
static char *compact_lowerdir(const char *dirs, size_t plen)
{
	char *out = malloc(strlen(LOWERDIR) + strlen(dirs) + 1), *w = out;
	if (!out)
		return NULL;
	w = stpcpy(w, LOWERDIR);
	for (const char *e = dirs;;) {
		const char *colon = strchr(e, ':');
		size_t elen = colon ? (size_t)(colon - e) : strlen(e);
		memcpy(w, e + plen, elen - plen);
		w += elen - plen;
		if (!colon)
			break;
		*w++ = ':';
		e = colon + 1;
	}
	*w = '\0';
	return out;
}

static int append(char **data, size_t *len, const char *opt)
{
	size_t ol = strlen(opt);
	char *n = realloc(*data, *len + ol + 2);
	if (!n)
		return -ENOMEM;
	if (*len)
		n[(*len)++] = ',';
	memcpy(n + *len, opt, ol + 1);
	*len += ol;
	*data = n;
	return 0;
}

int bundle_mount_plan(const char *type, char *const *options, size_t n_options,
		      struct bundle_mount_plan *plan)
{
	long pagesize = sysconf(_SC_PAGESIZE);
	char *lower = NULL;
	long lower_idx = -1;
	size_t dlen = 0;
	int r = 0;

	memset(plan, 0, sizeof(*plan));
	if (pagesize <= 0)
		pagesize = 4096;

	if (type && strcmp(type, "overlay") == 0) {
		size_t total = 0;
		for (size_t i = 0; i < n_options; i++)
			total += options[i] ? strlen(options[i]) : 0;
		lower_idx = find_lowerdir(options, n_options);
		size_t plen;
		if (total >= (size_t)(pagesize - PAGE_SLACK) && lower_idx >= 0 &&
		    common_parent(options[lower_idx] + strlen(LOWERDIR), &plen) == 0) {
			const char *dirs = options[lower_idx] + strlen(LOWERDIR);
			plan->chdir = strndup(dirs, plen);
			lower = compact_lowerdir(dirs, plen);
			if (!plan->chdir || !lower) {
				r = -ENOMEM;
				goto fail;
			}
		} else {
			lower_idx = -1;
		}
	}

	plan->data = calloc(1, 1);
	if (!plan->data) {
		r = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < n_options; i++) {
		const char *o = options[i];
		const struct flag_option *f;
		if (!o || (long)i == lower_idx)
			continue;
		if ((f = lookup(flag_options, N(flag_options), o))) {
			if (f->clear)
				plan->flags &= ~f->flag;
			else
				plan->flags |= f->flag;
		} else if ((f = lookup(propagation_options, N(propagation_options), o))) {
			plan->propagation = f->flag;
		} else if (strcmp(o, "loop") == 0) {
			plan->loop = true;
		} else if (strcmp(o, "defaults") != 0 && *o) {
			if ((r = append(&plan->data, &dlen, o)) < 0)
				goto fail;
		}
	}
	/* the compacted lowerdir goes last, as containerd appends it */
	if (lower && (r = append(&plan->data, &dlen, lower)) < 0)
		goto fail;
	if (dlen > (size_t)pagesize) {
		r = -E2BIG;
		goto fail;
	}
	free(lower);
	return 0;
fail:
	free(lower);
	bundle_mount_plan_release(plan);
	return r;
}

void bundle_mount_plan_release(struct bundle_mount_plan *plan)
{
	free(plan->data);
	free(plan->chdir);
	plan->data = plan->chdir = NULL;
}
