/* shimcall: one containerd.task.v2.Task call on a shim's ttrpc socket, as containerd
 * makes it (metadata containerd-namespace-ttrpc: <namespace>), for the e2e tests.
 *
 *   shimcall [-n NS] [-t SECONDS] SOCKET METHOD [FIELD=VALUE...]
 *   shimcall [-n NS] [-t SECONDS] [-e N] SOCKET raw-request SERVICE/METHOD HEX-PAYLOAD [STREAM-ID]
 *   shimcall [-t SECONDS] [-e N] SOCKET raw-bytes HEX|@FILE
 *
 * SOCKET: a socket path, "unix://PATH", or a bundle directory (its `address` file).
 * METHOD: a Task method, any case, '_' or '-' ignored (state, Kill, resize_pty, ...).
 * A name the service does not have is still sent, with an empty payload (to see the
 * server refuse it).
 * FIELD=VALUE: fields of the method's request by their proto names, set by pbjson
 * (manager/nanoctl/pbjson.h, as `nanoctl shim call` does): strings as given, bools
 * (true/false/1/0), integers, enums by name or number. A google.protobuf.Any field
 * (exec's spec, update's resources, checkpoint's options) takes VALUE as JSON, or
 * @FILE to read it from FILE; its type URL defaults to the runtime-spec type
 * containerd uses for that field and can be set with FIELD.type_url=URL.
 *
 * Output: on success "OK" then the response, one "field=value" line per field (nested
 * fields dotted, repeated ones indexed: processes[0].pid=...), exit 0. On an error
 * status: "<CodeName>: <message>" (gRPC code names: NotFound, FailedPrecondition,
 * ...), exit 1 (a connection lost during the call is "Unavailable: ttrpc: closed").
 * Usage errors or a failed connect: a message on stderr, exit 2.
 *
 * The raw modes write bytes on a fresh connection (raw-bytes: verbatim, from HEX or
 * FILE; raw-request: a well-formed Request frame around an arbitrary payload), then
 * print each frame the server sends back ("frame stream=S type=T flags=F len=L", a
 * Response's status as "<CodeName>: <message>") until the server closes the
 * connection ("closed") or the timeout (default 1 s) passes with it still open
 * ("open"); exit 0. With -e N, no silence window decides: after N frames have come back,
 * a probe request (an unknown service on stream 0x7fffffff, which every ttrpc server
 * answers) is sent on the same connection, and "open" is printed only when its answer
 * arrives; "closed" on EOF, "timeout" when -t (default 10 s) passes first. */
#include "pbjson.h"
#include "ttrpc.h"

#include "containerd/task/v2/shim.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "ttrpc/ttrpc.pb-c.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define SERVICE "containerd.task.v2.Task"
#define NS_KEY "containerd-namespace-ttrpc"

static const char *prog = "shimcall";

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%s: ", prog);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: %s [-n NS] [-t SECONDS] SOCKET METHOD [FIELD=VALUE...]\n"
		"       %s [-n NS] [-t SECONDS] [-e N] SOCKET raw-request SERVICE/METHOD HEX [STREAM-ID]\n"
		"       %s [-t SECONDS] [-e N] SOCKET raw-bytes HEX|@FILE\n",
		prog, prog, prog);
	exit(2);
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		die("%s: %s", path, strerror(errno));
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap + 1);
	size_t r;
	while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
		n += r;
		if (n == cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
		}
	}
	if (!buf)
		die("out of memory");
	if (ferror(f))
		die("%s: read error", path);
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* SOCKET argument -> address for ttrpc_client_connect / ttrpc_sockaddr */
static char *resolve_socket(const char *arg)
{
	struct stat st;
	if (stat(arg, &st) == 0 && S_ISDIR(st.st_mode)) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/address", arg);
		size_t n;
		char *a = read_file(path, &n);
		while (n > 0 && isspace((unsigned char)a[n - 1]))
			a[--n] = '\0';
		if (n == 0)
			die("%s is empty", path);
		return a;
	}
	return strdup(arg);
}

static uint8_t *parse_hex(const char *s, size_t *len)
{
	size_t cap = strlen(s) / 2 + 1, n = 0;
	uint8_t *out = malloc(cap);
	if (!out)
		die("out of memory");
	int hi = -1;
	for (; *s; s++) {
		if (isspace((unsigned char)*s) || *s == ':')
			continue;
		int v;
		if (*s >= '0' && *s <= '9')
			v = *s - '0';
		else if (*s >= 'a' && *s <= 'f')
			v = *s - 'a' + 10;
		else if (*s >= 'A' && *s <= 'F')
			v = *s - 'A' + 10;
		else
			die("bad hex digit '%c'", *s);
		if (hi < 0) {
			hi = v;
		} else {
			out[n++] = (uint8_t)(hi << 4 | v);
			hi = -1;
		}
	}
	if (hi >= 0)
		die("odd number of hex digits");
	*len = n;
	return out;
}

/* ---- arguments ---------------------------------------------------------- */

static uint64_t parse_uint(const char *v, uint64_t hi)
{
	char *end;
	errno = 0;
	if (*v == '-')
		die("not an unsigned integer: %s", v);
	unsigned long long x = strtoull(v, &end, 0);
	if (errno || end == v || *end || x > hi)
		die("not an unsigned integer in range: %s", v);
	return x;
}

/* ---- printing a response ------------------------------------------------ */

static void print_string(const char *s)
{
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '\n')
			fputs("\\n", stdout);
		else if (c < 0x20 || c == 0x7f)
			printf("\\x%02x", c);
		else
			putchar(c);
	}
}

static void print_message(const ProtobufCMessage *m, const char *prefix);

static void print_value(const ProtobufCFieldDescriptor *f, const void *p, const char *name)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING:
		printf("%s=", name);
		print_string(*(char *const *)p);
		putchar('\n');
		break;
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *b = p;
		printf("%s=<%zu bytes>\n", name, b->len);
		break;
	}
	case PROTOBUF_C_TYPE_BOOL:
		printf("%s=%s\n", name, *(const protobuf_c_boolean *)p ? "true" : "false");
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		printf("%s=%" PRIu32 "\n", name, *(const uint32_t *)p);
		break;
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		printf("%s=%" PRId32 "\n", name, *(const int32_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		printf("%s=%" PRIu64 "\n", name, *(const uint64_t *)p);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		printf("%s=%" PRId64 "\n", name, *(const int64_t *)p);
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		printf("%s=%g\n", name, (double)*(const float *)p);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		printf("%s=%g\n", name, *(const double *)p);
		break;
	case PROTOBUF_C_TYPE_ENUM: {
		int v = *(const int *)p;
		const ProtobufCEnumValue *ev =
			protobuf_c_enum_descriptor_get_value(f->descriptor, v);
		if (ev)
			printf("%s=%s\n", name, ev->name);
		else
			printf("%s=%d\n", name, v);
		break;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
		if (sub)
			print_message(sub, name);
		break;
	}
	}
}

static void print_message(const ProtobufCMessage *m, const char *prefix)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		char name[512];
		snprintf(name, sizeof(name), "%s%s%s", prefix, *prefix ? "." : "", f->name);
		const char *base = (const char *)m + f->offset;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
			const char *arr = *(char *const *)base;
			printf("%s.count=%zu\n", name, n);
			for (size_t k = 0; k < n; k++) {
				char iname[560];
				snprintf(iname, sizeof(iname), "%s[%zu]", name, k);
				print_value(f, arr + k * pbjson_elem_size(f), iname);
			}
			continue;
		}
		if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
		    f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING &&
		    !*(const protobuf_c_boolean *)((const char *)m + f->quantifier_offset))
			continue;
		print_value(f, base, name);
	}
}

/* ---- raw modes ------------------------------------------------------------ */

static int raw_connect(const char *address)
{
	struct sockaddr_un sa;
	int len = ttrpc_sockaddr(address, &sa);
	if (len < 0)
		die("bad address %s: %s", address, strerror(-len));
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, (socklen_t)len) < 0)
		die("connect %s: %s", address, strerror(errno));
	return fd;
}

static void write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			/* the server may drop us mid-write: that is an outcome, not an error */
			printf("write: %s\n", strerror(errno));
			return;
		}
		p += w;
		n -= (size_t)w;
	}
}

static void print_frame(const struct ttrpc_frame *f)
{
	printf("frame stream=%" PRIu32 " type=%u flags=%u len=%" PRIu32 "\n", f->hdr.stream_id,
	       f->hdr.type, f->hdr.flags, f->hdr.length);
	if (f->hdr.type != TTRPC_TYPE_RESPONSE || f->oversized)
		return;
	Ttrpc__Response *r = ttrpc__response__unpack(NULL, f->hdr.length, f->data);
	if (!r) {
		printf("undecodable response\n");
		return;
	}
	if (r->status && r->status->code != 0) {
		printf("%s: ", ttrpc_code_name(r->status->code));
		print_string(r->status->message);
		putchar('\n');
	} else {
		printf("OK payload=%zu bytes\n", r->payload.len);
	}
	ttrpc__response__free_unpacked(r, NULL);
}

/* A Request frame (header + envelope) for SERVICE/METHOD with PAYLOAD; malloc'ed. */
static uint8_t *request_frame(const char *ns, char *service, char *method, uint8_t *payload,
			      size_t plen, uint32_t stream_id, size_t *out_len)
{
	Ttrpc__Request req = TTRPC__REQUEST__INIT;
	Ttrpc__KeyValue kv = TTRPC__KEY_VALUE__INIT;
	Ttrpc__KeyValue *kvs[1] = {&kv};
	req.service = service;
	req.method = method;
	req.payload.data = payload;
	req.payload.len = plen;
	if (ns && *ns) {
		kv.key = (char *)NS_KEY;
		kv.value = (char *)ns;
		req.metadata = kvs;
		req.n_metadata = 1;
	}
	size_t len = ttrpc__request__get_packed_size(&req);
	uint8_t *buf = malloc(TTRPC_HEADER_LEN + len);
	if (!buf)
		die("out of memory");
	struct ttrpc_frame_hdr h = {.length = (uint32_t)len, .stream_id = stream_id,
				    .type = TTRPC_TYPE_REQUEST, .flags = 0};
	ttrpc_frame_hdr_encode(buf, &h);
	ttrpc__request__pack(&req, buf + TTRPC_HEADER_LEN);
	*out_len = TTRPC_HEADER_LEN + len;
	return buf;
}

#define PROBE_STREAM 0x7fffffffu

/* Reads and prints frames until EOF ("closed") or, with expect < 0, timeout_ms of
 * silence ("open"). With expect >= 0: after that many frames, sends the probe and prints
 * "open" when its answer comes (not printed itself), "timeout" at the deadline. */
static int raw_read(int fd, int timeout_ms, int expect)
{
	struct ttrpc_reader rd;
	ttrpc_reader_init(&rd);
	int64_t deadline = ttrpc_now_ns() + (int64_t)timeout_ms * 1000000;
	int frames = 0;
	bool probed = false, done = false;
	while (!done) {
		if (expect >= 0 && !probed && frames >= expect) {
			size_t n;
			uint8_t *probe = request_frame(NULL, "nanoshim.shimcall.Probe", "Probe", NULL, 0,
						       PROBE_STREAM, &n);
			write_all(fd, probe, n);
			free(probe);
			probed = true;
		}
		int64_t left = (deadline - ttrpc_now_ns()) / 1000000;
		if (left <= 0) {
			printf(expect >= 0 ? "timeout\n" : "open\n");
			break;
		}
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int pr = poll(&p, 1, (int)left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0) {
			printf(expect >= 0 ? "timeout\n" : "open\n");
			break;
		}
		uint8_t *ptr;
		size_t len;
		if (ttrpc_reader_space(&rd, &ptr, &len) < 0)
			die("out of memory");
		ssize_t n = read(fd, ptr, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n < 0)
				printf("read: %s\n", strerror(errno));
			printf("closed\n");
			break;
		}
		ttrpc_reader_commit(&rd, (size_t)n);
		struct ttrpc_frame f;
		int r;
		while ((r = ttrpc_reader_next(&rd, &f)) == 1) {
			if (probed && f.hdr.stream_id == PROBE_STREAM) {
				printf("open\n");
				done = true;
			} else {
				print_frame(&f); /* f.data is the reader's */
				frames++;
			}
		}
		if (r < 0)
			die("out of memory");
	}
	ttrpc_reader_release(&rd);
	fflush(stdout);
	return 0;
}

static int raw_bytes(const char *address, const char *hex, int timeout_ms, int expect)
{
	size_t n;
	uint8_t *bytes = hex[0] == '@' ? (uint8_t *)read_file(hex + 1, &n) : parse_hex(hex, &n);
	int fd = raw_connect(address);
	write_all(fd, bytes, n);
	free(bytes);
	int rc = raw_read(fd, timeout_ms, expect);
	close(fd);
	return rc;
}

static int raw_request(const char *address, const char *ns, const char *svc_method,
		       const char *hex, uint32_t stream_id, int timeout_ms, int expect)
{
	char svc[512];
	snprintf(svc, sizeof(svc), "%s", svc_method[0] == '/' ? svc_method + 1 : svc_method);
	char *slash = strrchr(svc, '/');
	if (!slash)
		die("raw-request: SERVICE/METHOD expected, got %s", svc_method);
	*slash = '\0';
	size_t plen, len;
	uint8_t *payload = parse_hex(hex, &plen);
	uint8_t *buf = request_frame(ns, svc, slash + 1, payload, plen, stream_id, &len);
	free(payload);
	int fd = raw_connect(address);
	write_all(fd, buf, len);
	free(buf);
	int rc = raw_read(fd, timeout_ms, expect);
	close(fd);
	return rc;
}

/* ---- main ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
	const char *ns = getenv("NAMESPACE");
	double timeout_s = 10;
	bool timeout_set = false;
	int expect = -1;
	int opt;
	while ((opt = getopt(argc, argv, "+n:t:e:h")) != -1) {
		switch (opt) {
		case 'e':
			expect = (int)parse_uint(optarg, 1000);
			break;
		case 'n':
			ns = optarg;
			break;
		case 't':
			timeout_s = strtod(optarg, NULL);
			timeout_set = true;
			if (timeout_s <= 0)
				die("bad timeout %s", optarg);
			break;
		default:
			usage();
		}
	}
	if (argc - optind < 2)
		usage();
	char *address = resolve_socket(argv[optind]);
	const char *method = argv[optind + 1];
	char **fields = argv + optind + 2;
	int n_fields = argc - optind - 2;

	if (strcmp(method, "raw-bytes") == 0) {
		if (n_fields != 1)
			usage();
		int rc = raw_bytes(address, fields[0],
				   (int)((timeout_set || expect >= 0 ? timeout_s : 1) * 1000), expect);
		free(address);
		return rc;
	}
	if (strcmp(method, "raw-request") == 0) {
		if (n_fields < 2 || n_fields > 3)
			usage();
		uint32_t sid = n_fields == 3 ? (uint32_t)parse_uint(fields[2], UINT32_MAX) : 1;
		int rc = raw_request(address, ns, fields[0], fields[1], sid,
				     (int)((timeout_set || expect >= 0 ? timeout_s : 1) * 1000), expect);
		free(address);
		return rc;
	}

	const ProtobufCServiceDescriptor *sd = &containerd__task__v2__task__descriptor;
	const ProtobufCMessageDescriptor *in = &google__protobuf__empty__descriptor;
	const ProtobufCMessageDescriptor *out = &google__protobuf__empty__descriptor;
	const char *mname = method;
	for (unsigned i = 0; i < sd->n_methods; i++) {
		if (pbjson_same_method(sd->methods[i].name, method)) {
			mname = sd->methods[i].name;
			in = sd->methods[i].input;
			out = sd->methods[i].output;
			break;
		}
	}

	if (in == &google__protobuf__empty__descriptor && n_fields > 0)
		die("%s is not a method of %s: it is sent with an empty payload, without fields",
		    method, SERVICE);
	ProtobufCMessage *req = pbjson_new(in);
	if (!req)
		die("out of memory");
	for (int i = 0; i < n_fields; i++) {
		struct pbjson_error err;
		if (pbjson_set_arg(req, fields[i], &err) < 0)
			die("%s", err.msg);
	}

	struct ttrpc_client *c;
	int rc = ttrpc_client_connect(address, &c);
	if (rc < 0)
		die("connect %s: %s", address, strerror(-rc));
	struct ttrpc_kv md[1] = {{NS_KEY, ns}};
	struct ttrpc_call_opts opts = {.timeout_ns = (int64_t)(timeout_s * 1e9),
				       .metadata = md,
				       .n_metadata = ns && *ns ? 1 : 0};
	ProtobufCMessage *reply = NULL;
	struct ttrpc_status st;
	rc = ttrpc_client_call(c, SERVICE, mname, req, out, &opts, &reply, &st);
	int ret;
	if (rc == 0 && st.code == TTRPC_OK) {
		printf("OK\n");
		if (reply)
			print_message(reply, "");
		ret = 0;
	} else if (rc == 0 || rc == -EIO) {
		printf("%s: ", ttrpc_code_name(st.code));
		print_string(st.message);
		putchar('\n');
		ret = 1;
	} else {
		fprintf(stderr, "%s: call %s: %s (%s)\n", prog, mname, strerror(-rc), st.message);
		ret = 2;
	}
	if (reply)
		protobuf_c_message_free_unpacked(reply, NULL);
	ttrpc_client_free(c);
	protobuf_c_message_free_unpacked(req, NULL);
	free(address);
	return ret;
}
