/* libFuzzer: arbitrary bytes on a server connection — frame decoding, Request
 * decoding, dispatch and payload decoding of the Bench service. The server
 * must answer or ignore, never crash or leak. */
#include "../unit/testsrv.h"

#include <fcntl.h>
#include <signal.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool once;
	if (!once) {
		signal(SIGPIPE, SIG_IGN);
		once = true;
	}
	struct testsrv ts;
	ts_init(&ts);
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
		abort();
	ttrpc_server_add_conn(ts.srv, sv[0]);
	size_t off = 0;
	uint8_t sink[65536];
	for (int rounds = 0; rounds < 1000 && off < size; rounds++) {
		ssize_t w = write(sv[1], data + off, size - off);
		if (w > 0)
			off += (size_t)w;
		ttrpc_server_dispatch(ts.srv);
		while (read(sv[1], sink, sizeof(sink)) > 0)
			;
	}
	shutdown(sv[1], SHUT_WR);
	for (int i = 0; i < 4; i++) {
		ttrpc_server_dispatch(ts.srv);
		while (read(sv[1], sink, sizeof(sink)) > 0)
			;
	}
	close(sv[1]);
	ts_stop(&ts);
	return 0;
}
