/* The log (loop/log.c): logrus text lines with the fields set at init, the level
 * filter, logrus' quoting of the message and of field values, fields too long
 * refused without a change, and a line that would block dropped and counted. */
#include "log.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int p[2];

static void setup(void)
{
	cr_assert_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	log_set_fd(p[1]);
}

static void teardown(void)
{
	close(p[0]);
	close(p[1]);
}

TestSuite(log, .init = setup, .fini = teardown, .timeout = 10);

static const char *read_lines(void)
{
	static char buf[65536];
	ssize_t n = read(p[0], buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

Test(log, logrus_text_with_fields_in_order)
{
	const struct log_field f[] = {{"namespace", "default"}, {"id", "web-1"}};
	cr_assert_eq(log_init(LOG_LEVEL_INFO, f, 2), 0);
	log_info("started %d", 42);
	const char *line = read_lines();
	regex_t re;
	cr_assert_eq(regcomp(&re,
			     "^time=\"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{9}Z\" "
			     "level=info msg=\"started 42\" namespace=default id=web-1\n$",
			     REG_EXTENDED),
		     0);
	cr_assert_eq(regexec(&re, line, 0, NULL, 0), 0, "%s", line);
	regfree(&re);
}

Test(log, level_filters_lines)
{
	cr_assert_eq(log_init(LOG_LEVEL_WARN, NULL, 0), 0);
	log_debug("no");
	log_info("no");
	log_warn("yes");
	log_error("yes too");
	const char *lines = read_lines();
	cr_assert_not_null(strstr(lines, "level=warning msg=\"yes\"\n"), "%s", lines);
	cr_assert_not_null(strstr(lines, "level=error msg=\"yes too\"\n"), "%s", lines);
	cr_assert_null(strstr(lines, "\"no\""), "%s", lines);
	cr_assert(!log_enabled(LOG_LEVEL_INFO));
	cr_assert(log_enabled(LOG_LEVEL_ERROR));
}

Test(log, message_and_values_quoted_as_logrus_does)
{
	const struct log_field f[] = {{"path", "/run/x"}, {"name", "a b\"c"}, {"empty", ""}};
	cr_assert_eq(log_init(LOG_LEVEL_DEBUG, f, 3), 0);
	log_debug("say \"hi\"\\\nbye");
	const char *line = read_lines();
	cr_assert_not_null(strstr(line, " level=debug msg=\"say \\\"hi\\\"\\\\\\nbye\" path=/run/x "
					"name=\"a b\\\"c\" empty=\n"),
			   "%s", line);
}

Test(log, fields_too_long_are_refused_and_change_nothing)
{
	const struct log_field ok[] = {{"id", "kept"}};
	cr_assert_eq(log_init(LOG_LEVEL_INFO, ok, 1), 0);
	char big[LOG_FIELDS_MAX];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	const struct log_field f[] = {{"id", big}};
	cr_assert_eq(log_init(LOG_LEVEL_DEBUG, f, 1), -ENAMETOOLONG);
	log_debug("filtered: the level did not change");
	log_info("line");
	const char *line = read_lines();
	cr_assert_not_null(strstr(line, "msg=\"line\" id=kept\n"), "%s", line);
	cr_assert_null(strstr(line, "filtered"), "%s", line);
}

Test(log, a_line_that_would_block_is_dropped_and_counted)
{
	cr_assert_eq(log_init(LOG_LEVEL_INFO, NULL, 0), 0);
	int sz = fcntl(p[1], F_GETPIPE_SZ);
	cr_assert_gt(sz, 0);
	unsigned long before = log_dropped();
	for (int i = 0; i < sz / 64 + 100; i++)
		log_info("filling the pipe nobody reads, line %d", i);
	cr_assert_gt(log_dropped(), before);
	int saved = errno = 1234;
	log_info("errno survives");
	cr_assert_eq(errno, saved);
}
