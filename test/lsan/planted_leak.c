/* A Criterion test that leaks on purpose, built only in the sanitizer configuration.
 * expect-leak.sh runs it with CI's ASAN/LSAN options and the suppressions file and
 * passes only if LeakSanitizer reports this leak: proof that test/lsan.supp does not
 * hide leaks made on a test's call path (as "leak:libcriterion.so" did). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static void *volatile keep;

/* Through a helper, as library code called from a test would allocate. */
__attribute__((noinline)) static char *planted_leak_alloc(size_t n)
{
	char *p = malloc(n);
	if (p)
		memset(p, 'x', n);
	return p;
}

Test(lsan, planted_leak)
{
	keep = planted_leak_alloc(64);
	cr_assert_not_null(keep);
	keep = NULL; /* the only reference is gone: a definite leak */
}

/* Straight from the test body: the allocation's caller is the test itself, one frame
 * above Criterion's runner. */
Test(lsan, planted_leak_in_test_body)
{
	keep = malloc(48);
	cr_assert_not_null(keep);
	memset(keep, 'y', 48);
	keep = NULL;
}
