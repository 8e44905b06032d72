/* Event loop (see loop.h): epoll + timerfd, sorted timer list, deferred work.
 * Freed sources stay allocated until the batch that may still name them ends. */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 32

struct loop_source {
	struct loop *loop;
	int fd;
	uint32_t events;
	bool parked; /* events == 0: out of the epoll set */
	loop_io_fn fn;
	void *userdata;
	bool dead;
	struct loop_source *next_dead;
};

struct loop_timer {
	struct loop *loop;
	int64_t deadline;
	loop_timer_fn fn;
	void *userdata;
	struct loop_timer *next;
};

struct deferred {
	loop_defer_fn fn;
	void *userdata;
	struct deferred *next;
};

struct loop {
	int epfd;
	int tfd;
	int64_t armed;
	struct loop_timer *timers; /* sorted by deadline */
	struct deferred *defer_head, *defer_tail;
	struct loop_source *dead;
	bool quit;
	int code;
	char timer_tag; /* epoll data.ptr of the timerfd */
};

int64_t loop_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct loop *loop_new(void)
{
	struct loop *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	struct epoll_event e = {.events = EPOLLIN, .data.ptr = &l->timer_tag};
	if (l->epfd < 0 || l->tfd < 0 || epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->tfd, &e) < 0) {
		loop_free(l);
		return NULL;
	}
	return l;
}

static void reap_dead(struct loop *l)
{
	while (l->dead) {
		struct loop_source *s = l->dead;
		l->dead = s->next_dead;
		free(s);
	}
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	while (l->timers) {
		struct loop_timer *t = l->timers;
		l->timers = t->next;
		free(t);
	}
	while (l->defer_head) {
		struct deferred *d = l->defer_head;
		l->defer_head = d->next;
		free(d);
	}
	reap_dead(l);
	if (l->epfd >= 0)
		close(l->epfd);
	if (l->tfd >= 0)
		close(l->tfd);
	free(l);
}

struct loop_source *loop_add_io(struct loop *l, int fd, uint32_t events, loop_io_fn fn,
				void *userdata)
{
	struct loop_source *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	*s = (struct loop_source){.loop = l, .fd = fd, .events = events, .fn = fn,
				  .userdata = userdata};
	s->parked = !events; /* see loop_io_set_events */
	struct epoll_event e = {.events = events, .data.ptr = s};
	if (events && epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &e) < 0) {
		int err = errno;
		free(s);
		errno = err;
		return NULL;
	}
	return s;
}

int loop_io_set_events(struct loop_source *s, uint32_t events)
{
	if (s->events == events)
		return 0;
	/* epoll reports EPOLLHUP and EPOLLERR whatever the mask says, so a
	 * hung-up fd watched for nothing would wake every iteration: a source
	 * that wants no events leaves the epoll set until it wants some. */
	struct epoll_event e = {.events = events, .data.ptr = s};
	int op = !events ? EPOLL_CTL_DEL : s->parked ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
	if (epoll_ctl(s->loop->epfd, op, s->fd, &e) < 0)
		return -errno;
	s->events = events;
	s->parked = !events;
	return 0;
}

uint32_t loop_io_events(const struct loop_source *s)
{
	return s->events;
}

void loop_io_remove(struct loop_source *s)
{
	if (!s || s->dead)
		return;
	if (!s->parked)
		epoll_ctl(s->loop->epfd, EPOLL_CTL_DEL, s->fd, NULL);
	s->dead = true;
	s->next_dead = s->loop->dead;
	s->loop->dead = s;
}

static void rearm(struct loop *l)
{
	int64_t want = l->timers ? l->timers->deadline : 0;
	if (want == l->armed)
		return;
	struct itimerspec its = {0};
	if (want) {
		its.it_value.tv_sec = want / 1000000000;
		its.it_value.tv_nsec = want % 1000000000;
		if (!its.it_value.tv_sec && !its.it_value.tv_nsec)
			its.it_value.tv_nsec = 1;
	}
	timerfd_settime(l->tfd, TFD_TIMER_ABSTIME, &its, NULL);
	l->armed = want;
}

struct loop_timer *loop_add_timer(struct loop *l, int64_t deadline_ns, loop_timer_fn fn,
				  void *userdata)
{
	struct loop_timer *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	*t = (struct loop_timer){.loop = l, .deadline = deadline_ns > 0 ? deadline_ns : 1,
				 .fn = fn, .userdata = userdata};
	struct loop_timer **pp = &l->timers;
	while (*pp && (*pp)->deadline <= t->deadline)
		pp = &(*pp)->next;
	t->next = *pp;
	*pp = t;
	rearm(l);
	return t;
}

struct loop_timer *loop_add_timer_ms(struct loop *l, int64_t after_ms, loop_timer_fn fn,
				     void *userdata)
{
	return loop_add_timer(l, loop_now_ns() + after_ms * 1000000, fn, userdata);
}

void loop_timer_cancel(struct loop_timer *t)
{
	if (!t)
		return;
	struct loop *l = t->loop;
	for (struct loop_timer **pp = &l->timers; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			free(t);
			rearm(l);
			return;
		}
	}
}

int loop_defer(struct loop *l, loop_defer_fn fn, void *userdata)
{
	struct deferred *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->fn = fn;
	d->userdata = userdata;
	if (l->defer_tail)
		l->defer_tail->next = d;
	else
		l->defer_head = d;
	l->defer_tail = d;
	return 0;
}

static void run_timers(struct loop *l)
{
	uint64_t n;
	while (read(l->tfd, &n, sizeof(n)) < 0 && errno == EINTR)
		;
	l->armed = 0;
	int64_t now = loop_now_ns();
	while (l->timers && l->timers->deadline <= now) {
		struct loop_timer *t = l->timers;
		l->timers = t->next;
		loop_timer_fn fn = t->fn;
		void *ud = t->userdata;
		free(t); /* fired timers are gone before their callback runs */
		fn(ud);
	}
	rearm(l);
}

static void run_deferred(struct loop *l)
{
	while (l->defer_head) {
		struct deferred *d = l->defer_head;
		l->defer_head = d->next;
		if (!l->defer_head)
			l->defer_tail = NULL;
		d->fn(d->userdata);
		free(d);
	}
}

int loop_iterate(struct loop *l, int timeout_ms)
{
	if (l->defer_head)
		timeout_ms = 0;
	struct epoll_event ev[MAX_EVENTS];
	int n = epoll_wait(l->epfd, ev, MAX_EVENTS, timeout_ms);
	if (n < 0) {
		if (errno != EINTR)
			return -errno;
		n = 0;
	}
	for (int i = 0; i < n; i++) {
		if (ev[i].data.ptr == &l->timer_tag) {
			run_timers(l);
			continue;
		}
		struct loop_source *s = ev[i].data.ptr;
		if (s->dead)
			continue;
		s->fn(s, s->fd, ev[i].events, s->userdata);
	}
	run_deferred(l);
	reap_dead(l);
	return n;
}

int loop_run(struct loop *l)
{
	while (!l->quit) {
		int rc = loop_iterate(l, -1);
		if (rc < 0)
			return rc;
	}
	return l->code;
}

void loop_quit(struct loop *l, int code)
{
	l->quit = true;
	l->code = code;
}

bool loop_quitting(const struct loop *l)
{
	return l->quit;
}
