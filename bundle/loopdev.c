/* Loop device setup (see loopdev.h): LOOP_CTL_GET_FREE, then LOOP_CONFIGURE
 * (Linux 5.8) or LOOP_SET_FD + LOOP_SET_STATUS64 on older kernels. Another
 * process may take the same free device between the two calls: EBUSY means
 * ask for another one. */
#include "loopdev.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOOP_TRIES 64

static int configure(int lfd, int bfd, const char *backing, bool readonly)
{
	struct loop_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.fd = (unsigned int)bfd;
	cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR | (readonly ? LO_FLAGS_READ_ONLY : 0);
	snprintf((char *)cfg.info.lo_file_name, sizeof(cfg.info.lo_file_name), "%s", backing);
	if (ioctl(lfd, LOOP_CONFIGURE, &cfg) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOTTY)
		return -errno;

	/* before LOOP_CONFIGURE */
	if (ioctl(lfd, LOOP_SET_FD, bfd) < 0)
		return -errno;
	if (ioctl(lfd, LOOP_SET_STATUS64, &cfg.info) < 0) {
		int r = -errno;
		ioctl(lfd, LOOP_CLR_FD, 0);
		return r;
	}
	return 0;
}

int bundle_loop_attach(const char *backing, bool readonly, char *dev, size_t devlen)
{
	int r = 0;
	/* O_NONBLOCK: a FIFO (or a device whose open waits) must not hang the
	 * caller's loop; only a regular file or a block device can back a loop
	 * device, and anything else is refused before it is used. */
	int bfd = open(backing, (readonly ? O_RDONLY : O_RDWR) | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (bfd < 0)
		return -errno;
	struct stat sb;
	if (fstat(bfd, &sb) < 0) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(sb.st_mode) && !S_ISBLK(sb.st_mode)) {
		r = S_ISDIR(sb.st_mode) ? -EISDIR : -EINVAL;
		goto out;
	}
	/* the loop driver does its own I/O on the file: no need for O_NONBLOCK there */
	(void)fcntl(bfd, F_SETFL, fcntl(bfd, F_GETFL) & ~O_NONBLOCK);
	int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0) {
		r = -errno;
		goto out;
	}
	for (int i = 0; i < LOOP_TRIES; i++) {
		int n = ioctl(ctl, LOOP_CTL_GET_FREE);
		if (n < 0) {
			r = -errno;
			break;
		}
		int len = snprintf(dev, devlen, "/dev/loop%d", n);
		if (len < 0 || (size_t)len >= devlen) {
			r = -ENAMETOOLONG;
			break;
		}
		int lfd = open(dev, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
		if (lfd < 0) {
			r = -errno;
			if (r == -ENOENT || r == -ENXIO)
				continue; /* removed under us */
			break;
		}
		r = configure(lfd, bfd, backing, readonly);
		if (r == 0) {
			r = lfd;
			break;
		}
		close(lfd);
		if (r != -EBUSY)
			break;
	}
	close(ctl);
out:
	close(bfd);
	return r;
}
