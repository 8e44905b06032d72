/* epoll + timerfd behind a single fd (see poller.h). */
#include "poller.h"
#include "ttrpc.h"

#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

int64_t ttrpc_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int ttrpc_poller_init(struct ttrpc_poller *p)
{
	p->tfd = -1;
	p->armed_ns = 0;
	p->tfd_kind = TTRPC_SRC_TIMER;
	p->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (p->epfd < 0)
		return -errno;
	p->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (p->tfd < 0)
		goto fail;
	struct epoll_event e = {.events = EPOLLIN, .data.ptr = &p->tfd_kind};
	if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->tfd, &e) < 0)
		goto fail;
	return 0;
fail:;
	int err = -errno;
	ttrpc_poller_release(p);
	return err;
}

void ttrpc_poller_release(struct ttrpc_poller *p)
{
	if (p->tfd >= 0)
		close(p->tfd);
	if (p->epfd >= 0)
		close(p->epfd);
	p->tfd = p->epfd = -1;
}

int ttrpc_poller_set(struct ttrpc_poller *p, int64_t deadline_ns)
{
	struct itimerspec its = {0};
	if (deadline_ns > 0) {
		its.it_value.tv_sec = deadline_ns / 1000000000;
		its.it_value.tv_nsec = deadline_ns % 1000000000;
		if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
			its.it_value.tv_nsec = 1;
	}
	if (timerfd_settime(p->tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		return -errno;
	p->armed_ns = deadline_ns;
	return 0;
}

int ttrpc_poller_arm(struct ttrpc_poller *p, int64_t deadline_ns)
{
	if (p->armed_ns != 0 && p->armed_ns <= deadline_ns)
		return 0;
	return ttrpc_poller_set(p, deadline_ns);
}

void ttrpc_poller_ack(struct ttrpc_poller *p)
{
	uint64_t n;
	while (read(p->tfd, &n, sizeof(n)) < 0 && errno == EINTR)
		;
	p->armed_ns = 0;
}
