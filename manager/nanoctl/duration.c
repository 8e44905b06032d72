/* Go's time.ParseDuration, without a sign: a sequence of decimal numbers, each
 * with an optional fraction and a unit. */
#include "duration.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>

static const struct {
	const char *name;
	int64_t ns;
} units[] = {
    {"ns", 1},       {"us", 1000},        {"\xc2\xb5s", 1000}, /* µs */
    {"ms", 1000000}, {"s", 1000000000LL}, {"m", 60000000000LL}, {"h", 3600000000000LL},
};

int nanoctl_parse_duration(const char *s, int64_t *ns)
{
	if (strcmp(s, "0") == 0) {
		*ns = 0;
		return 0;
	}
	if (!*s)
		return -EINVAL;
	long double total = 0;
	while (*s) {
		long double v = 0, scale = 1;
		bool any = false;
		while (isdigit((unsigned char)*s)) {
			v = v * 10 + (*s++ - '0');
			any = true;
		}
		if (*s == '.') {
			s++;
			while (isdigit((unsigned char)*s)) {
				scale /= 10;
				v += (*s++ - '0') * scale;
				any = true;
			}
		}
		if (!any)
			return -EINVAL;
		int64_t unit = 0;
		size_t best = 0;
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			size_t n = strlen(units[i].name);
			/* longest match: "ms" before "m" */
			if (n > best && strncmp(s, units[i].name, n) == 0) {
				best = n;
				unit = units[i].ns;
			}
		}
		if (!best)
			return -EINVAL;
		s += best;
		total += v * unit;
		if (total > (long double)INT64_MAX)
			return -ERANGE;
	}
	*ns = (int64_t)total;
	return 0;
}
