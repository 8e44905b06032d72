/* Shim socket directory: its lock and the liveness probe (see sockdir.h). */
#include "sockdir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

bool shim_socket_connectable(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return false;
	bool ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EAGAIN;
	close(fd);
	return ok;
}

int shim_socket_lock(const char *socket_path)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", socket_path);
	char *slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return -EINVAL;
	*slash = '\0';
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* held only while a start binds and listens: microseconds */
	for (int waited_ms = 0; flock(fd, LOCK_EX | LOCK_NB) < 0;) {
		int err = errno;
		if (err == EINTR)
			continue;
		if (err != EWOULDBLOCK || waited_ms >= SOCKET_LOCK_WAIT_MS) {
			close(fd);
			return err == EWOULDBLOCK ? -ETIMEDOUT : -err;
		}
		nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
		waited_ms++;
	}
	return fd;
}
