/* Internal: the one pollable fd a server or client exposes — an epoll set of
 * its sockets plus a timerfd armed for the earliest deadline. */
#pragma once

#include <stdint.h>

enum ttrpc_src_kind {
	TTRPC_SRC_TIMER = 1,
	TTRPC_SRC_LISTENER,
	TTRPC_SRC_CONN,
};

struct ttrpc_poller {
	int epfd;
	int tfd;
	int tfd_kind; /* epoll data.ptr of the timer points here */
	int64_t armed_ns; /* monotonic deadline the timer is set for, 0 = disarmed */
};

int ttrpc_poller_init(struct ttrpc_poller *p);
void ttrpc_poller_release(struct ttrpc_poller *p);
/* Make sure the timer fires no later than deadline_ns (monotonic ns). */
int ttrpc_poller_arm(struct ttrpc_poller *p, int64_t deadline_ns);
/* Set the timer to exactly deadline_ns, or disarm it for 0. */
int ttrpc_poller_set(struct ttrpc_poller *p, int64_t deadline_ns);
/* Consume a timer expiry. */
void ttrpc_poller_ack(struct ttrpc_poller *p);
