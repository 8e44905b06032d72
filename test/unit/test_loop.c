/* Event loop: timers fire in deadline order and can be cancelled, io sources
 * can remove themselves (and others) from their own callbacks, deferred work
 * runs after the batch. */
#include "loop.h"

#include <criterion/criterion.h>
#include <sys/epoll.h>
#include <unistd.h>

static int order[16], n_order;

static void record(void *ud)
{
	order[n_order++] = (int)(intptr_t)ud;
}

Test(loop, timers_fire_in_deadline_order)
{
	struct loop *l = loop_new();
	n_order = 0;
	loop_add_timer_ms(l, 30, record, (void *)3);
	loop_add_timer_ms(l, 10, record, (void *)1);
	struct loop_timer *t = loop_add_timer_ms(l, 20, record, (void *)99);
	loop_add_timer_ms(l, 20, record, (void *)2);
	loop_timer_cancel(t);
	while (n_order < 3)
		loop_iterate(l, 1000);
	cr_assert_eq(order[0], 1);
	cr_assert_eq(order[1], 2);
	cr_assert_eq(order[2], 3);
	loop_free(l);
}

struct pair {
	struct loop_source *a, *b;
	int fired_a, fired_b;
};

static void on_a(struct loop_source *s, int fd, uint32_t ev, void *ud)
{
	struct pair *p = ud;
	p->fired_a++;
	loop_io_remove(s);    /* itself */
	loop_io_remove(p->b); /* and the other, which is ready in this same batch */
}

static void on_b(struct loop_source *s, int fd, uint32_t ev, void *ud)
{
	struct pair *p = ud;
	p->fired_b++;
	loop_io_remove(s);
	loop_io_remove(p->a);
}

Test(loop, sources_removed_inside_callbacks)
{
	struct loop *l = loop_new();
	int p1[2], p2[2];
	cr_assert_eq(pipe(p1), 0);
	cr_assert_eq(pipe(p2), 0);
	cr_assert_eq(write(p1[1], "x", 1), 1);
	cr_assert_eq(write(p2[1], "y", 1), 1);
	struct pair p = {0};
	p.a = loop_add_io(l, p1[0], EPOLLIN, on_a, &p);
	p.b = loop_add_io(l, p2[0], EPOLLIN, on_b, &p);
	for (int i = 0; i < 3; i++)
		loop_iterate(l, 50);
	cr_assert_eq(p.fired_a + p.fired_b, 1, "only the first ready source ran");
	loop_free(l);
	close(p1[0]);
	close(p1[1]);
	close(p2[0]);
	close(p2[1]);
}

static void deferred(void *ud)
{
	(*(int *)ud)++;
}

static void quit_cb(void *ud)
{
	loop_quit(ud, 7);
}

Test(loop, defer_and_quit)
{
	struct loop *l = loop_new();
	int count = 0;
	loop_defer(l, deferred, &count);
	loop_defer(l, deferred, &count);
	loop_add_timer_ms(l, 5, quit_cb, l);
	cr_assert_eq(loop_run(l), 7);
	cr_assert_eq(count, 2);
	loop_free(l);
}

static int io_calls;

static void count_io(struct loop_source *s, int fd, uint32_t events, void *ud)
{
	io_calls++;
}

/* epoll reports a hangup whatever the mask: a source set to no events must
 * leave the epoll set, or a hung-up pipe wakes every iteration; set back to
 * EPOLLIN, it is watched (and reported) again. */
Test(loop, source_with_no_events_ignores_hangups)
{
	struct loop *l = loop_new();
	int p[2];
	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(write(p[1], "x", 1), 1);
	close(p[1]); /* hung up, one byte left */
	io_calls = 0;
	struct loop_source *s = loop_add_io(l, p[0], EPOLLIN, count_io, NULL);
	cr_assert_eq(loop_iterate(l, 100), 1);
	cr_assert_eq(io_calls, 1);
	cr_assert_eq(loop_io_set_events(s, 0), 0);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(loop_iterate(l, 20), 0, "a source watched for nothing woke the loop");
	cr_assert_eq(io_calls, 1);
	cr_assert_eq(loop_io_set_events(s, EPOLLIN), 0);
	cr_assert_eq(loop_iterate(l, 100), 1);
	cr_assert_eq(io_calls, 2);
	loop_io_set_events(s, 0);
	loop_io_remove(s); /* removing a parked source is fine */
	loop_iterate(l, 0);
	close(p[0]);
	loop_free(l);
}
