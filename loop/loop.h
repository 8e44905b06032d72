/* The event loop of a nanoshim process: one epoll set, one timerfd for every
 * timer, deferred callbacks, no threads. Sources and timers may be freed from
 * inside their own callbacks. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct loop;
struct loop_source;
struct loop_timer;

/* events: EPOLLIN/EPOLLOUT/... as reported by epoll. */
typedef void (*loop_io_fn)(struct loop_source *src, int fd, uint32_t events, void *userdata);
/* A fired timer is already gone (freed) when its callback runs. */
typedef void (*loop_timer_fn)(void *userdata);
typedef void (*loop_defer_fn)(void *userdata);

struct loop *loop_new(void);
void loop_free(struct loop *l);

/* Watches fd (not owned) for events (EPOLLIN, EPOLLOUT). NULL with errno on failure. */
struct loop_source *loop_add_io(struct loop *l, int fd, uint32_t events, loop_io_fn fn,
				void *userdata);
/* events 0 stops watching fd altogether, hangups and errors included (epoll
 * reports those whatever the mask), until events are set again. */
int loop_io_set_events(struct loop_source *src, uint32_t events);
uint32_t loop_io_events(const struct loop_source *src);
/* Stops watching; the fd is not closed. NULL is fine. */
void loop_io_remove(struct loop_source *src);

/* One-shot timer at a monotonic deadline (ns). */
struct loop_timer *loop_add_timer(struct loop *l, int64_t deadline_ns, loop_timer_fn fn,
				  void *userdata);
struct loop_timer *loop_add_timer_ms(struct loop *l, int64_t after_ms, loop_timer_fn fn,
				     void *userdata);
void loop_timer_cancel(struct loop_timer *t); /* NULL is fine */

/* Runs fn after the current batch of events; returns -ENOMEM on failure. */
int loop_defer(struct loop *l, loop_defer_fn fn, void *userdata);

/* Runs until loop_quit(); returns the code given to it. */
int loop_run(struct loop *l);
/* One iteration, waiting at most timeout_ms (-1 forever). */
int loop_iterate(struct loop *l, int timeout_ms);
void loop_quit(struct loop *l, int code);
bool loop_quitting(const struct loop *l);
int64_t loop_now_ns(void);
