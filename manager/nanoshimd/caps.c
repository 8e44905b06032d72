/* Capability names (see caps.h): libcap-ng owns the name table, so a name is valid
 * here exactly when libcap-ng knows it, and every name we write is spelled as
 * runc and crun expect ("CAP_" + upper case). */
#include "caps.h"

#include "quote.h"

#include <cap-ng.h>
#include <ctype.h>
#include <errno.h>
#include <linux/capability.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* containerd 1.6 oci.defaultUnixCaps, in its order */
static const char *const default_caps[] = {
	"CAP_CHOWN",	  "CAP_DAC_OVERRIDE",	  "CAP_FSETID",	    "CAP_FOWNER",
	"CAP_MKNOD",	  "CAP_NET_RAW",	  "CAP_SETGID",	    "CAP_SETUID",
	"CAP_SETFCAP",	  "CAP_SETPCAP",	  "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
	"CAP_KILL",	  "CAP_AUDIT_WRITE",
};

#define N_DEFAULT (sizeof(default_caps) / sizeof(default_caps[0]))
/* a result never holds more than every capability there is */
#define CAPS_SET_MAX (CAP_LAST_CAP + 1)

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || !errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

int caps_canonical(const char *name, char *out, size_t outlen)
{
	const char *bare;
	int cap, n;

	if (!name || !*name || !out)
		return -EINVAL;
	if (strcasecmp(name, "ALL") == 0) {
		n = snprintf(out, outlen, "ALL");
		return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
	}
	bare = strncasecmp(name, "CAP_", 4) == 0 ? name + 4 : name;
	/* libcap-ng compares names case-insensitively; refuse anything that is not a
	 * plain name (a number, spaces) before asking it */
	if (!*bare)
		return -EINVAL;
	for (const char *p = bare; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_')
			return -EINVAL;
	cap = capng_name_to_capability(bare);
	if (cap < 0 || cap > CAP_LAST_CAP)
		return -EINVAL;
	const char *lower = capng_capability_to_name((unsigned int)cap);
	if (!lower)
		return -EINVAL;
	n = snprintf(out, outlen, "CAP_%s", lower);
	if (n < 0 || (size_t)n >= outlen)
		return -ENAMETOOLONG;
	for (char *p = out + 4; *p; p++)
		*p = (char)toupper((unsigned char)*p);
	return 0;
}

/* A set of canonical names, in insertion order, bounded by the number of
 * capabilities there are. */
struct capset {
	char names[CAPS_SET_MAX][CAPS_NAME_MAX];
	size_t n;
};

static bool capset_has(const struct capset *set, const char *name)
{
	for (size_t i = 0; i < set->n; i++)
		if (strcmp(set->names[i], name) == 0)
			return true;
	return false;
}

static void capset_add(struct capset *set, const char *name)
{
	/* canonical names are distinct capabilities, so n never passes CAPS_SET_MAX */
	if (set->n < CAPS_SET_MAX && !capset_has(set, name))
		snprintf(set->names[set->n++], CAPS_NAME_MAX, "%s", name);
}

/* Canonicalizes every name of list into out; 1 if "ALL" was among them. */
static int canonical_list(const char *const *list, struct capset *out, char *err, size_t errlen)
{
	char name[CAPS_NAME_MAX];
	int all = 0;

	for (size_t i = 0; list && list[i]; i++) {
		if (caps_canonical(list[i], name, sizeof(name)) < 0) {
			char q[BUNDLE_QUOTE_MAX];
			set_err(err, errlen, "unknown capability %s", bundle_quote(q, sizeof(q), list[i]));
			return -EINVAL;
		}
		if (strcmp(name, "ALL") == 0)
			all = 1;
		else
			capset_add(out, name);
	}
	return all;
}

char **caps_effective(const char *const *add, const char *const *drop, char *err, size_t errlen)
{
	struct capset *adds, *drops, *result;
	char **caps = NULL;
	int add_all, drop_all;

	/* three sets of ~2 KiB each: off the stack, which a daemon's callbacks share */
	adds = calloc(3, sizeof(*adds));
	if (!adds) {
		set_err(err, errlen, "capabilities: out of memory");
		errno = ENOMEM;
		return NULL;
	}
	drops = adds + 1;
	result = adds + 2;

	add_all = canonical_list(add, adds, err, errlen);
	drop_all = add_all < 0 ? add_all : canonical_list(drop, drops, err, errlen);
	if (add_all < 0 || drop_all < 0) {
		free(adds);
		errno = EINVAL;
		return NULL;
	}

	if (add_all) {
		for (unsigned int c = 0; c <= CAP_LAST_CAP; c++) {
			char name[CAPS_NAME_MAX];
			const char *lower = capng_capability_to_name(c);
			if (!lower || caps_canonical(lower, name, sizeof(name)) < 0)
				continue;
			if (!capset_has(drops, name))
				capset_add(result, name);
		}
	} else {
		if (!drop_all)
			for (size_t i = 0; i < N_DEFAULT; i++)
				if (!capset_has(drops, default_caps[i]))
					capset_add(result, default_caps[i]);
		for (size_t i = 0; i < adds->n; i++)
			capset_add(result, adds->names[i]);
	}

	caps = calloc(result->n + 1, sizeof(*caps));
	for (size_t i = 0; caps && i < result->n; i++) {
		caps[i] = strdup(result->names[i]);
		if (!caps[i]) {
			caps_free(caps);
			caps = NULL;
		}
	}
	free(adds);
	if (!caps) {
		set_err(err, errlen, "capabilities: out of memory");
		errno = ENOMEM;
	}
	return caps;
}

void caps_free(char **caps)
{
	if (!caps)
		return;
	for (size_t i = 0; caps[i]; i++)
		free(caps[i]);
	free(caps);
}
