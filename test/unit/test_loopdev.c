/* bundle_loop_attach: a backing path that is not a regular file or a block
 * device is refused at once, without blocking in open() (a FIFO with no
 * writer would block a read-only open forever, and a read-write one on a
 * FIFO without a reader). */
#include "bundle/loopdev.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/nanoshim-loopdev-XXXXXX";

static void setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	(void)system(cmd);
}

TestSuite(loopdev, .init = setup, .fini = teardown, .timeout = 10);

Test(loopdev, fifo_source_is_refused_without_blocking)
{
	char fifo[128], dev[64];
	snprintf(fifo, sizeof(fifo), "%s/image", dir);
	cr_assert_eq(mkfifo(fifo, 0600), 0);
	/* read-only: blocks until a writer opens the FIFO, unless O_NONBLOCK */
	int r = bundle_loop_attach(fifo, true, dev, sizeof(dev));
	cr_assert_eq(r, -EINVAL, "got %d", r);
	r = bundle_loop_attach(fifo, false, dev, sizeof(dev));
	cr_assert_eq(r, -EINVAL, "got %d", r);
}

Test(loopdev, directory_source_is_refused)
{
	char dev[64];
	int r = bundle_loop_attach(dir, true, dev, sizeof(dev));
	cr_assert_eq(r, -EISDIR, "got %d", r);
}

Test(loopdev, missing_source_is_enoent)
{
	char path[128], dev[64];
	snprintf(path, sizeof(path), "%s/none", dir);
	cr_assert_eq(bundle_loop_attach(path, true, dev, sizeof(dev)), -ENOENT);
}
