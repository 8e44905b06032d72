/* Linked into every unit test binary. Criterion counts a skipped test (cr_skip) as a
 * pass in its exit status and says nothing about it without --verbose: print one line
 * per skipped test, "SKIP unit.<binary>/<suite>::<test>: <reason>" (unit-asan.* in the
 * sanitizer build), which scripts/test.sh
 * counts against test/allowed-skips.txt. With NANOSHIM_SKIP_LOG set, the line is also
 * appended to that file. */
#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* Skips of the sanitizer build are listed apart (unit-asan.*): a test may skip there for
 * a reason that must not excuse a skip in the release build. */
#if defined(__SANITIZE_ADDRESS__)
#define SKIP_PREFIX "unit-asan"
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SKIP_PREFIX "unit-asan"
#endif
#endif
#ifndef SKIP_PREFIX
#define SKIP_PREFIX "unit"
#endif

ReportHook(POST_TEST)(struct criterion_test_stats *stats)
{
	if (stats->test_status != CR_STATUS_SKIPPED)
		return;
	const char *reason = stats->message && *stats->message ? stats->message : "(no reason)";
	char line[1024];
	snprintf(line, sizeof line, "SKIP " SKIP_PREFIX ".%s/%s::%s: %s\n", program_invocation_short_name,
		 stats->test->category, stats->test->name, reason);
	fputs(line, stderr);
	const char *log = getenv("NANOSHIM_SKIP_LOG");
	if (log && *log) {
		FILE *f = fopen(log, "ae");
		if (f) {
			fputs(line, f);
			fclose(f);
		}
	}
}
