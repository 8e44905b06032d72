/* libFuzzer: the frame reader fed arbitrary bytes in arbitrary chunk sizes
 * (the first input byte picks the chunking), and the Response parser run over
 * every complete frame body. */
#include "envelope.h"
#include "frame.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t chunk = (size_t)data[0] % 64 + 1;
	data++;
	size--;
	struct ttrpc_reader r;
	ttrpc_reader_init(&r);
	r.max_data = 1 << 16; /* keep oversize paths reachable with small inputs */
	size_t off = 0;
	while (off < size) {
		size_t want = size - off < chunk ? size - off : chunk, used;
		if (ttrpc_reader_feed(&r, data + off, want, &used) < 0)
			break;
		off += used;
		struct ttrpc_frame f;
		while (ttrpc_reader_next(&r, &f) == 1) {
			if (f.data) {
				const uint8_t *p;
				size_t n;
				struct ttrpc_status st;
				ttrpc_env_parse_response(f.data, f.hdr.length, &p, &n, &st);
				struct ttrpc_env_req req;
				char err[96];
				ttrpc_env_parse_request(f.data, f.hdr.length, &req, err, sizeof(err));
			}
		}
	}
	ttrpc_reader_release(&r);
	return 0;
}
