/* containerd identifier validation (see id.h), written as a scan rather than a
 * regex: alphanumeric runs separated by single '.', '_' or '-'. */
#include "id.h"

#include "quote.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_separator(char c)
{
	return c == '.' || c == '_' || c == '-';
}

static bool matches(const char *id)
{
	/* every separator must sit between two alphanumerics */
	bool prev_alnum = false;
	for (const char *p = id; *p; p++) {
		if (is_alnum(*p))
			prev_alnum = true;
		else if (is_separator(*p) && prev_alnum)
			prev_alnum = false;
		else
			return false;
	}
	return prev_alnum;
}

int bundle_validate_id(const char *kind, const char *id, struct ttrpc_status *st)
{
	char q[BUNDLE_QUOTE_MAX];
	if (!kind)
		kind = "identifier";
	if (!id || !*id) {
		if (st)
			ttrpc_status_set(st, TTRPC_INVALID_ARGUMENT, "%s must not be empty", kind);
		return -EINVAL;
	}
	size_t len = strnlen(id, BUNDLE_ID_MAX + 1);
	if (len > BUNDLE_ID_MAX) {
		if (st)
			ttrpc_status_set(st, TTRPC_INVALID_ARGUMENT,
					 "%s %s is longer than %d characters", kind,
					 bundle_quote(q, sizeof(q), id), BUNDLE_ID_MAX);
		return -EINVAL;
	}
	if (!matches(id)) {
		if (st)
			ttrpc_status_set(st, TTRPC_INVALID_ARGUMENT, "%s %s must match %s", kind,
					 bundle_quote(q, sizeof(q), id), BUNDLE_ID_PATTERN);
		return -EINVAL;
	}
	return 0;
}
