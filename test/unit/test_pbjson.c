/* pbjson's contract: every field kind containerd.task.v2 requests and replies use
 * goes to JSON and back unchanged (compared as packed protobuf), the JSON has the
 * documented shape, and bad input is refused with a message naming the field. */
#include "pbjson.h"

#include "cgroups/v2/metrics.pb-c.h"
#include "containerd/runc/v1/oci.pb-c.h"
#include "containerd/task/v2/shim.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *json_of(const ProtobufCMessage *m)
{
	struct pbjson_error err = {""};
	char *out = NULL;
	int rc = pbjson_format(m, false, &out, &err);
	cr_assert_eq(rc, 0, "pbjson_format: %s", err.msg);
	return out;
}

/* packed bytes of a, b equal */
static void assert_same(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
	size_t la = protobuf_c_message_get_packed_size(a);
	size_t lb = protobuf_c_message_get_packed_size(b);
	cr_assert_eq(la, lb, "packed sizes %zu and %zu", la, lb);
	uint8_t *pa = malloc(la + 1), *pb = malloc(lb + 1);
	protobuf_c_message_pack(a, pa);
	protobuf_c_message_pack(b, pb);
	cr_assert(memcmp(pa, pb, la) == 0, "packed bytes differ");
	free(pa);
	free(pb);
}

/* JSON of m, parsed into a new message of m's type: same bytes, same JSON. Returns
 * the JSON (caller frees). */
static char *round_trip(const ProtobufCMessage *m)
{
	char *json = json_of(m);
	ProtobufCMessage *back = pbjson_new(m->descriptor);
	struct pbjson_error err = {""};
	cr_assert_eq(pbjson_parse(back, json, &err), 0, "parse %s: %s", json, err.msg);
	assert_same(m, back);
	char *again = json_of(back);
	cr_assert_str_eq(again, json);
	free(again);
	protobuf_c_message_free_unpacked(back, NULL);
	return json;
}

/* the error pbjson_set_arg / pbjson_parse give for bad input */
static void assert_arg_error(const ProtobufCMessageDescriptor *d, const char *arg, const char *want)
{
	ProtobufCMessage *m = pbjson_new(d);
	struct pbjson_error err = {""};
	int rc = pbjson_set_arg(m, arg, &err);
	cr_assert_lt(rc, 0, "%s accepted", arg);
	cr_assert_str_eq(err.msg, want, "message for %s", arg);
	protobuf_c_message_free_unpacked(m, NULL);
}

static void assert_json_error(const ProtobufCMessageDescriptor *d, const char *json,
                              const char *want)
{
	ProtobufCMessage *m = pbjson_new(d);
	struct pbjson_error err = {""};
	int rc = pbjson_parse(m, json, &err);
	cr_assert_lt(rc, 0, "%s accepted", json);
	cr_assert_str_eq(err.msg, want, "message for %s", json);
	protobuf_c_message_free_unpacked(m, NULL);
}

static ProtobufCMessage *from_args(const ProtobufCMessageDescriptor *d, const char *const *args)
{
	ProtobufCMessage *m = pbjson_new(d);
	cr_assert(m);
	for (; *args; args++) {
		struct pbjson_error err = {""};
		cr_assert_eq(pbjson_set_arg(m, *args, &err), 0, "%s: %s", *args, err.msg);
	}
	return m;
}

Test(pbjson, state_response_enum_and_timestamp)
{
	const char *args[] = {"id=c1",           "bundle=/run/b/c1",
	                      "pid=4242",        "status=RUNNING",
	                      "stdin=/fifo/in",  "terminal=true",
	                      "exit_status=143", "exited_at=2026-12-06T05:44:24.5Z",
	                      "exec_id=e1",      NULL};
	ProtobufCMessage *m = from_args(&containerd__task__v2__state_response__descriptor, args);
	Containerd__Task__V2__StateResponse *s = (void *)m;
	cr_assert_eq(s->status, CONTAINERD__V1__TYPES__STATUS__RUNNING);
	cr_assert_eq(s->exited_at->seconds, 1796535864);
	cr_assert_eq(s->exited_at->nanos, 500000000);
	char *json = round_trip(m);
	cr_assert_str_eq(json, "{\"id\":\"c1\",\"bundle\":\"/run/b/c1\",\"pid\":4242,"
	                       "\"status\":\"RUNNING\",\"stdin\":\"/fifo/in\",\"stdout\":\"\","
	                       "\"stderr\":\"\",\"terminal\":true,\"exit_status\":143,"
	                       "\"exited_at\":\"2026-12-06T05:44:24.500Z\",\"exec_id\":\"e1\"}");
	free(json);
	protobuf_c_message_free_unpacked(m, NULL);
}

Test(pbjson, zero_time_and_unknown_enum_value)
{
	/* containerd 1.6 always writes exited_at, the zero time when unset */
	Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	ts.seconds = -62135596800LL;
	Containerd__Task__V2__StateResponse s = CONTAINERD__TASK__V2__STATE_RESPONSE__INIT;
	s.exited_at = &ts;
	s.status = 77; /* not a value of the enum: kept as a number */
	char *json = round_trip(&s.base);
	cr_assert(strstr(json, "\"exited_at\":\"0001-01-01T00:00:00Z\""), "%s", json);
	cr_assert(strstr(json, "\"status\":77"), "%s", json);
	free(json);
}

Test(pbjson, pids_response_repeated_messages_with_any)
{
	Containerd__Task__V2__PidsResponse r = CONTAINERD__TASK__V2__PIDS_RESPONSE__INIT;
	Containerd__V1__Types__ProcessInfo p1 = CONTAINERD__V1__TYPES__PROCESS_INFO__INIT;
	Containerd__V1__Types__ProcessInfo p2 = CONTAINERD__V1__TYPES__PROCESS_INFO__INIT;
	Containerd__V1__Types__ProcessInfo *ps[] = {&p1, &p2};
	Google__Protobuf__Any info = GOOGLE__PROTOBUF__ANY__INIT;
	uint8_t details[] = {0x0a, 0x02, 'e', '1'}; /* ProcessDetails{exec_id: "e1"} */
	p1.pid = 1;
	p2.pid = 2;
	info.type_url = "containerd.runc.v1.ProcessDetails";
	info.value.data = details;
	info.value.len = sizeof(details);
	p2.info = &info;
	r.processes = ps;
	r.n_processes = 2;
	char *json = round_trip(&r.base);
	cr_assert_str_eq(json, "{\"processes\":[{\"pid\":1},{\"pid\":2,\"info\":{\"type_url\":"
	                       "\"containerd.runc.v1.ProcessDetails\",\"value\":\"CgJlMQ==\"}}]}");
	free(json);

	Containerd__Task__V2__PidsResponse empty = CONTAINERD__TASK__V2__PIDS_RESPONSE__INIT;
	json = round_trip(&empty.base);
	cr_assert_str_eq(json, "{\"processes\":[]}");
	free(json);
}

Test(pbjson, exec_request_any_spec_from_argument_and_json)
{
	const char *spec = "{\"args\":[\"sh\",\"-c\",\"echo hi\"],\"cwd\":\"/\"}";
	char arg[256];
	snprintf(arg, sizeof(arg), "spec=%s", spec);
	const char *args[] = {"id=c1", "exec_id=e1", "terminal=false", "stdout=/fifo/out",
	                      arg,     NULL};
	ProtobufCMessage *m =
	    from_args(&containerd__task__v2__exec_process_request__descriptor, args);
	Containerd__Task__V2__ExecProcessRequest *e = (void *)m;
	cr_assert_str_eq(e->spec->type_url,
	                 "types.containerd.io/opencontainers/runtime-spec/1/Process");
	cr_assert_eq(e->spec->value.len, strlen(spec));
	cr_assert(memcmp(e->spec->value.data, spec, strlen(spec)) == 0);
	free(round_trip(m));

	/* the same request as one JSON object, spec given as JSON: the same bytes */
	ProtobufCMessage *j = pbjson_new(&containerd__task__v2__exec_process_request__descriptor);
	struct pbjson_error err = {""};
	cr_assert_eq(pbjson_parse(j,
	                          "{\"id\":\"c1\",\"exec_id\":\"e1\",\"stdout\":\"/fifo/out\","
	                          "\"spec\":{\"args\":[\"sh\",\"-c\",\"echo hi\"],\"cwd\":\"/\"}}",
	                          &err),
	             0, "%s", err.msg);
	assert_same(m, j);
	protobuf_c_message_free_unpacked(j, NULL);

	/* type URL set by hand, value from a file */
	char path[] = "/tmp/pbjson-spec-XXXXXX";
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, spec, strlen(spec)), (ssize_t)strlen(spec));
	close(fd);
	char farg[64];
	snprintf(farg, sizeof(farg), "spec=@%s", path);
	const char *fargs[] = {
	    "spec.type_url=example.com/T", farg, "id=c1", "exec_id=e1", "stdout=/fifo/out", NULL};
	ProtobufCMessage *f =
	    from_args(&containerd__task__v2__exec_process_request__descriptor, fargs);
	unlink(path);
	Containerd__Task__V2__ExecProcessRequest *fe = (void *)f;
	cr_assert_str_eq(fe->spec->type_url, "example.com/T");
	cr_assert_eq(fe->spec->value.len, strlen(spec));
	free(round_trip(f));
	protobuf_c_message_free_unpacked(f, NULL);
	protobuf_c_message_free_unpacked(m, NULL);
}

Test(pbjson, create_request_repeated_mounts_and_options)
{
	ProtobufCMessage *m = pbjson_new(&containerd__task__v2__create_task_request__descriptor);
	struct pbjson_error err = {""};
	cr_assert_eq(
	    pbjson_parse(m,
	                 "{\"id\":\"c1\",\"bundle\":\"/b\",\"rootfs\":[{\"type\":\"overlay\","
	                 "\"source\":\"overlay\",\"options\":[\"lowerdir=/l\",\"upperdir=/u\"]}],"
	                 "\"options\":{\"type_url\":\"containerd.runc.v1.Options\","
	                 "\"value\":\"MAE=\"}}",
	                 &err),
	    0, "%s", err.msg);
	Containerd__Task__V2__CreateTaskRequest *c = (void *)m;
	cr_assert_eq(c->n_rootfs, 1);
	cr_assert_eq(c->rootfs[0]->n_options, 2);
	cr_assert_str_eq(c->rootfs[0]->options[1], "upperdir=/u");
	cr_assert_eq(c->options->value.len, 2);
	free(round_trip(m));

	/* a repeated message from the command line: one JSON element per argument */
	const char *args[] = {"id=c1", "rootfs={\"type\":\"bind\",\"source\":\"/x\"}",
	                      "rootfs={\"type\":\"tmpfs\"}", NULL};
	ProtobufCMessage *a =
	    from_args(&containerd__task__v2__create_task_request__descriptor, args);
	Containerd__Task__V2__CreateTaskRequest *ca = (void *)a;
	cr_assert_eq(ca->n_rootfs, 2);
	cr_assert_str_eq(ca->rootfs[1]->type, "tmpfs");
	protobuf_c_message_free_unpacked(a, NULL);
	protobuf_c_message_free_unpacked(m, NULL);
}

Test(pbjson, update_request_map_annotations)
{
	const char *args[] = {"id=c1", "annotations.io.example/a=1", "annotations.b=two",
	                      "resources={\"pids\":{\"limit\":5}}", NULL};
	ProtobufCMessage *m =
	    from_args(&containerd__task__v2__update_task_request__descriptor, args);
	char *json = round_trip(m);
	cr_assert(strstr(json, "\"annotations\":{\"io.example/a\":\"1\",\"b\":\"two\"}"), "%s",
	          json);
	cr_assert(strstr(json, "\"type_url\":\"types.containerd.io/opencontainers/runtime-spec/1/"
	                       "LinuxResources\""),
	          "%s", json);
	free(json);
	protobuf_c_message_free_unpacked(m, NULL);
}

Test(pbjson, wait_kill_connect_delete_shutdown)
{
	const char *kill[] = {"id=c1", "exec_id=e1", "signal=0xf", "all=1", NULL};
	ProtobufCMessage *k = from_args(&containerd__task__v2__kill_request__descriptor, kill);
	char *json = round_trip(k);
	cr_assert_str_eq(json, "{\"id\":\"c1\",\"exec_id\":\"e1\",\"signal\":15,\"all\":true}");
	free(json);
	protobuf_c_message_free_unpacked(k, NULL);

	Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	ts.seconds = 1;
	ts.nanos = 1;
	Containerd__Task__V2__WaitResponse w = CONTAINERD__TASK__V2__WAIT_RESPONSE__INIT;
	w.exit_status = UINT32_MAX;
	w.exited_at = &ts;
	json = round_trip(&w.base);
	cr_assert_str_eq(json, "{\"exit_status\":4294967295,"
	                       "\"exited_at\":\"1970-01-01T00:00:01.000000001Z\"}");
	free(json);

	Containerd__Task__V2__ConnectResponse c = CONTAINERD__TASK__V2__CONNECT_RESPONSE__INIT;
	c.shim_pid = 10;
	c.task_pid = 11;
	c.version = "v1.6";
	free(round_trip(&c.base));

	Containerd__Task__V2__DeleteResponse d = CONTAINERD__TASK__V2__DELETE_RESPONSE__INIT;
	d.pid = 7;
	d.exit_status = 137;
	free(round_trip(&d.base));

	Containerd__Task__V2__ShutdownRequest s = CONTAINERD__TASK__V2__SHUTDOWN_REQUEST__INIT;
	s.now = 1;
	free(round_trip(&s.base));
}

Test(pbjson, sixty_four_bit_numbers_and_strings_as_numbers)
{
	Io__Containerd__Cgroups__V2__PidsStat p = IO__CONTAINERD__CGROUPS__V2__PIDS_STAT__INIT;
	p.current = UINT64_MAX;
	p.limit = 1;
	char *json = round_trip(&p.base);
	cr_assert_str_eq(json, "{\"current\":18446744073709551615,\"limit\":1}");
	free(json);

	ProtobufCMessage *m = pbjson_new(&io__containerd__cgroups__v2__pids_stat__descriptor);
	struct pbjson_error err = {""};
	cr_assert_eq(
	    pbjson_parse(m, "{\"current\":\"18446744073709551615\",\"limit\":\"1\"}", &err), 0,
	    "%s", err.msg);
	assert_same(&p.base, m);
	protobuf_c_message_free_unpacked(m, NULL);

	/* a Timestamp as its fields, and a negative int64 */
	ProtobufCMessage *t = pbjson_new(&containerd__task__v2__wait_response__descriptor);
	cr_assert_eq(pbjson_parse(t, "{\"exited_at\":{\"seconds\":-1,\"nanos\":5}}", &err), 0, "%s",
	             err.msg);
	Containerd__Task__V2__WaitResponse *w = (void *)t;
	cr_assert_eq(w->exited_at->seconds, -1);
	char *tj = json_of(t);
	cr_assert_str_eq(tj,
	                 "{\"exit_status\":0,\"exited_at\":\"1969-12-31T23:59:59.000000005Z\"}");
	free(tj);
	protobuf_c_message_free_unpacked(t, NULL);
}

Test(pbjson, bytes_as_base64)
{
	Containerd__Runc__V1__ProcessDetails pd = CONTAINERD__RUNC__V1__PROCESS_DETAILS__INIT;
	pd.exec_id = "x";
	free(round_trip(&pd.base));
	Google__Protobuf__Any a = GOOGLE__PROTOBUF__ANY__INIT;
	uint8_t bin[] = {0, 0xff, 0x10, 0x80, 0x7f};
	a.type_url = "t";
	a.value.data = bin;
	a.value.len = sizeof(bin);
	char *json = round_trip(&a.base);
	cr_assert_str_eq(json, "{\"type_url\":\"t\",\"value\":\"AP8QgH8=\"}");
	free(json);
	for (size_t n = 0; n <= sizeof(bin); n++) {
		char *s;
		uint8_t *back;
		size_t len;
		cr_assert_eq(pbjson_base64_encode(bin, n, &s), 0);
		cr_assert_eq(pbjson_base64_decode(s, &back, &len), 0, "%s", s);
		cr_assert_eq(len, n);
		cr_assert(n == 0 || memcmp(back, bin, n) == 0);
		free(s);
		free(back);
	}
	uint8_t *out;
	size_t len;
	cr_assert_eq(pbjson_base64_decode("AP8QgH8", &out, &len), 0, "no padding");
	cr_assert_eq(len, 5);
	free(out);
	cr_assert_eq(pbjson_base64_decode("A*==", &out, &len), -EINVAL);
}

Test(pbjson, timestamps)
{
	int64_t s;
	int32_t ns;
	cr_assert_eq(pbjson_parse_timestamp("1970-01-01T00:00:00Z", &s, &ns), 0);
	cr_assert_eq(s, 0);
	cr_assert_eq(pbjson_parse_timestamp("1970-01-01T02:00:00.25+02:00", &s, &ns), 0);
	cr_assert_eq(s, 0);
	cr_assert_eq(ns, 250000000);
	cr_assert_eq(pbjson_parse_timestamp("2024-02-29T12:00:00Z", &s, &ns), 0);
	cr_assert_eq(pbjson_parse_timestamp("2023-02-29T12:00:00Z", &s, &ns), -EINVAL);
	cr_assert_eq(pbjson_parse_timestamp("2024-01-01 00:00:00", &s, &ns), -EINVAL);
	cr_assert_eq(pbjson_parse_timestamp("9999-12-31T23:59:59.999999999Z", &s, &ns), 0);
	char buf[64];
	cr_assert_eq(pbjson_format_timestamp(s, ns, buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "9999-12-31T23:59:59.999999999Z");
	cr_assert_eq(pbjson_format_timestamp(253402300800LL, 0, buf, sizeof(buf)), -ERANGE);
	cr_assert_eq(pbjson_format_timestamp(0, 1000, buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "1970-01-01T00:00:00.000001Z");
}

Test(pbjson, bad_input_says_which_field_and_why)
{
	const ProtobufCMessageDescriptor *kill = &containerd__task__v2__kill_request__descriptor;
	const ProtobufCMessageDescriptor *state = &containerd__task__v2__state_response__descriptor;
	assert_arg_error(kill, "sig=9", "containerd.task.v2.KillRequest has no field \"sig\"");
	assert_arg_error(kill, "signal=nine",
	                 "field signal: not an unsigned integer in [0, 4294967295]: \"nine\"");
	assert_arg_error(kill, "signal=-1",
	                 "field signal: not an unsigned integer in [0, 4294967295]: \"-1\"");
	assert_arg_error(
	    kill, "signal=4294967296",
	    "field signal: not an unsigned integer in [0, 4294967295]: \"4294967296\"");
	assert_arg_error(kill, "all=yes", "field all: not a bool (true, false, 1, 0): \"yes\"");
	assert_arg_error(kill, "id.x=1", "field id has no subfields");
	assert_arg_error(kill, "signal", "FIELD=VALUE expected, got \"signal\"");
	assert_arg_error(state, "status=RUNNIN",
	                 "field status: \"RUNNIN\" is not a value of containerd.v1.types.Status "
	                 "(UNKNOWN, CREATED, RUNNING, STOPPED, PAUSED, PAUSING)");
	assert_arg_error(state, "exited_at=yesterday",
	                 "field exited_at: not an RFC 3339 time in years 0001-9999: \"yesterday\"");
	assert_arg_error(state, "exited_at.secs=1",
	                 "google.protobuf.Timestamp has no field \"secs\"");
	assert_arg_error(&containerd__task__v2__exec_process_request__descriptor,
	                 "spec=@/nonexistent/pbjson",
	                 "spec: /nonexistent/pbjson: No such file or directory");

	assert_json_error(kill, "{\"id\":\"c1\",\"sig\":9}",
	                  "containerd.task.v2.KillRequest has no field \"sig\"");
	assert_json_error(kill, "{\"signal\":\"nine\"}",
	                  "field signal: not an unsigned integer in [0, 4294967295]: \"nine\"");
	assert_json_error(kill, "{\"signal\":1.5}",
	                  "field signal: not an unsigned integer in [0, 4294967295]: \"1.5\"");
	assert_json_error(kill, "{\"id\":9}", "field id: a string expected, not a number");
	assert_json_error(kill, "{\"all\":\"true\"}",
	                  "field all: true or false expected, not a string");
	assert_json_error(kill, "[1]",
	                  "containerd.task.v2.KillRequest: a JSON object expected, not an array");
	assert_json_error(state, "{\"status\":\"BOGUS\"}",
	                  "field status: \"BOGUS\" is not a value of containerd.v1.types.Status "
	                  "(UNKNOWN, CREATED, RUNNING, STOPPED, PAUSED, PAUSING)");
	assert_json_error(
	    &containerd__task__v2__pids_response__descriptor,
	    "{\"processes\":[{\"pid\":1},{\"pid\":\"x\"}]}",
	    "field processes[1].pid: not an unsigned integer in [0, 4294967295]: \"x\"");
	assert_json_error(&containerd__task__v2__pids_response__descriptor, "{\"processes\":{}}",
	                  "field processes: repeated, so a JSON array, not an object");
	assert_json_error(&google__protobuf__any__descriptor, "{\"value\":\"@@\"}",
	                  "field value: not base64: \"@@\"");

	ProtobufCMessage *m = pbjson_new(kill);
	struct pbjson_error err = {""};
	cr_assert_eq(pbjson_parse(m, "{\"id\":", &err), -EINVAL);
	cr_assert(strncmp(err.msg, "containerd.task.v2.KillRequest: not JSON: ", 42) == 0, "%s",
	          err.msg);
	cr_assert_null(strchr(err.msg, '\n'), "one line: %s", err.msg);
	protobuf_c_message_free_unpacked(m, NULL);
}

Test(pbjson, pretty_output)
{
	struct pbjson_error err = {""};
	char *out;
	Containerd__Task__V2__PidsResponse p = CONTAINERD__TASK__V2__PIDS_RESPONSE__INIT;
	cr_assert_eq(pbjson_format(&p.base, true, &out, &err), 0, "%s", err.msg);
	cr_assert_str_eq(out, "{\n  \"processes\": []\n}\n");
	free(out);
	Containerd__Task__V2__ShutdownRequest s = CONTAINERD__TASK__V2__SHUTDOWN_REQUEST__INIT;
	s.id = "{ } [\n]\"{ }";
	cr_assert_eq(pbjson_format(&s.base, true, &out, &err), 0, "%s", err.msg);
	cr_assert_str_eq(out, "{\n  \"id\": \"{ } [\\n]\\\"{ }\",\n  \"now\": false\n}\n");
	free(out);
	Containerd__Task__V2__ExecProcessResponse e =
	    CONTAINERD__TASK__V2__EXEC_PROCESS_RESPONSE__INIT;
	cr_assert_eq(pbjson_format(&e.base, true, &out, &err), 0, "%s", err.msg);
	cr_assert_str_eq(out, "{}\n");
	free(out);
}

static const ProtobufCMessageDescriptor *resolve_v2_metrics(const char *type_url)
{
	return strcmp(type_url, "io.containerd.cgroups.v2.Metrics") == 0
		       ? &io__containerd__cgroups__v2__metrics__descriptor
		       : NULL;
}

Test(pbjson, any_of_a_known_type_as_json)
{
	Io__Containerd__Cgroups__V2__Metrics m = IO__CONTAINERD__CGROUPS__V2__METRICS__INIT;
	Io__Containerd__Cgroups__V2__PidsStat pids = IO__CONTAINERD__CGROUPS__V2__PIDS_STAT__INIT;
	pids.current = 7;
	m.pids = &pids;
	uint8_t buf[64];
	size_t n = io__containerd__cgroups__v2__metrics__pack(&m, buf);
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	any.type_url = "io.containerd.cgroups.v2.Metrics";
	any.value.data = buf;
	any.value.len = n;
	struct pbjson_error err;
	char *out = NULL;
	pbjson_set_any_resolver(resolve_v2_metrics);
	cr_assert_eq(pbjson_format(&any.base, false, &out, &err), 0, "%s", err.msg);
	cr_assert(strstr(out, "\"value\":{\"pids\":{\"current\":7"), "%s", out);
	free(out);
	any.type_url = "example.Unknown"; /* a type it does not know: base64 as before */
	cr_assert_eq(pbjson_format(&any.base, false, &out, &err), 0, "%s", err.msg);
	cr_assert(strstr(out, "\"value\":\""), "%s", out);
	free(out);
	pbjson_set_any_resolver(NULL);
	any.type_url = "io.containerd.cgroups.v2.Metrics";
	cr_assert_eq(pbjson_format(&any.base, false, &out, &err), 0, "%s", err.msg);
	cr_assert(strstr(out, "\"value\":\""), "without a resolver: %s", out);
	free(out);
}
