/* What containerd writes on the shim's stdin (shim/bootstrap.c), decided by
 * content: nothing, an Any of runc options (containerd 1.6 to 2.2, -info), a
 * BootstrapParams (2.3+, told apart by instance_id == -id and namespace ==
 * -namespace), or something else, refused with a message that says what. The
 * byte arrays are encoded by hand, field by field in number order as Go's
 * proto.Marshal writes them, not by our protoc-c code. */
#include "bootstrap.h"

#include "bundle/runcopts.h"
#include "containerd/runtime/bootstrap/v1/bootstrap.pb-c.h"
#include "google/protobuf/any.pb-c.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

TestSuite(bootstrap, .timeout = 10);

/* BootstrapParams{instance_id "web", namespace "default", log_level DEBUG (-4),
 * containerd_version "v2.3.4", the ttrpc and grpc addresses, containerd_binary,
 * extensions [Any containerd.runc.v1.Options{shim_cgroup "/pod", binary_name
 * "crun"}], socket_dir "/run/containerd/s"}, as containerd 2.3 sends it. */
/* clang-format off */
static const uint8_t bootstrap_params_2_3[] = {
	0x0a, 0x03, 0x77, 0x65, 0x62, 0x12, 0x07, 0x64, 0x65, 0x66, 0x61, 0x75,
	0x6c, 0x74, 0x18, 0xfc, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0x01, 0x22, 0x06, 0x76, 0x32, 0x2e, 0x33, 0x2e, 0x34, 0x2a, 0x25, 0x2f,
	0x72, 0x75, 0x6e, 0x2f, 0x63, 0x6f, 0x6e, 0x74, 0x61, 0x69, 0x6e, 0x65,
	0x72, 0x64, 0x2f, 0x63, 0x6f, 0x6e, 0x74, 0x61, 0x69, 0x6e, 0x65, 0x72,
	0x64, 0x2e, 0x73, 0x6f, 0x63, 0x6b, 0x2e, 0x74, 0x74, 0x72, 0x70, 0x63,
	0x32, 0x1f, 0x2f, 0x72, 0x75, 0x6e, 0x2f, 0x63, 0x6f, 0x6e, 0x74, 0x61,
	0x69, 0x6e, 0x65, 0x72, 0x64, 0x2f, 0x63, 0x6f, 0x6e, 0x74, 0x61, 0x69,
	0x6e, 0x65, 0x72, 0x64, 0x2e, 0x73, 0x6f, 0x63, 0x6b, 0x3a, 0x13, 0x2f,
	0x75, 0x73, 0x72, 0x2f, 0x62, 0x69, 0x6e, 0x2f, 0x63, 0x6f, 0x6e, 0x74,
	0x61, 0x69, 0x6e, 0x65, 0x72, 0x64, 0x42, 0x2c, 0x0a, 0x2a, 0x0a, 0x1a,
	0x63, 0x6f, 0x6e, 0x74, 0x61, 0x69, 0x6e, 0x65, 0x72, 0x64, 0x2e, 0x72,
	0x75, 0x6e, 0x63, 0x2e, 0x76, 0x31, 0x2e, 0x4f, 0x70, 0x74, 0x69, 0x6f,
	0x6e, 0x73, 0x12, 0x0c, 0x1a, 0x04, 0x2f, 0x70, 0x6f, 0x64, 0x32, 0x04,
	0x63, 0x72, 0x75, 0x6e, 0x4a, 0x11, 0x2f, 0x72, 0x75, 0x6e, 0x2f, 0x63,
	0x6f, 0x6e, 0x74, 0x61, 0x69, 0x6e, 0x65, 0x72, 0x64, 0x2f, 0x73,
};

/* Any{containerd.runc.v1.Options{shim_cgroup "/pod", binary_name "crun"}}, as
 * containerd 1.6 to 2.2 send it. */
static const uint8_t runc_options_any[] = {
	0x0a, 0x1a, 0x63, 0x6f, 0x6e, 0x74, 0x61, 0x69, 0x6e, 0x65, 0x72, 0x64,
	0x2e, 0x72, 0x75, 0x6e, 0x63, 0x2e, 0x76, 0x31, 0x2e, 0x4f, 0x70, 0x74,
	0x69, 0x6f, 0x6e, 0x73, 0x12, 0x0c, 0x1a, 0x04, 0x2f, 0x70, 0x6f, 0x64,
	0x32, 0x04, 0x63, 0x72, 0x75, 0x6e,
};
/* clang-format on */

static char err[SHIM_STDIN_ERR_MAX];

Test(bootstrap, empty_stdin_gives_default_options)
{
	struct shim_stdin in;
	cr_assert_eq(
	    shim_stdin_parse((const uint8_t *)"", 0, "web", "default", &in, err, sizeof(err)), 0,
	    "%s", err);
	cr_assert_eq(in.kind, SHIM_STDIN_EMPTY);
	cr_assert_null(in.options_type_url);
	cr_assert_null(in.socket_dir);
	cr_assert_not_null(in.options);
	cr_assert_str_eq(bundle_options_binary(in.options), BUNDLE_DEFAULT_RUNTIME);
	shim_stdin_free(&in);
}

Test(bootstrap, runc_options_any)
{
	struct shim_stdin in;
	cr_assert_eq(shim_stdin_parse(runc_options_any, sizeof(runc_options_any), "web", "default",
	                              &in, err, sizeof(err)),
	             0, "%s", err);
	cr_assert_eq(in.kind, SHIM_STDIN_OPTIONS);
	cr_assert_str_eq(in.options_type_url, "containerd.runc.v1.Options");
	cr_assert_str_eq(in.options->binary_name, "crun");
	cr_assert_str_eq(in.options->shim_cgroup, "/pod");
	cr_assert_null(in.socket_dir);
	/* the Any's value kept as received, for -info to echo */
	Containerd__Runc__V1__Options *o =
	    containerd__runc__v1__options__unpack(NULL, in.options_len, in.options_value);
	cr_assert_not_null(o);
	cr_assert_str_eq(o->binary_name, "crun");
	containerd__runc__v1__options__free_unpacked(o, NULL);
	shim_stdin_free(&in);
}

Test(bootstrap, bootstrap_params_of_containerd_2_3)
{
	struct shim_stdin in;
	cr_assert_eq(shim_stdin_parse(bootstrap_params_2_3, sizeof(bootstrap_params_2_3), "web",
	                              "default", &in, err, sizeof(err)),
	             0, "%s", err);
	cr_assert_eq(in.kind, SHIM_STDIN_BOOTSTRAP);
	cr_assert_str_eq(in.socket_dir, "/run/containerd/s");
	cr_assert_str_eq(in.options_type_url, "containerd.runc.v1.Options");
	cr_assert_str_eq(in.options->binary_name, "crun");
	cr_assert_str_eq(in.options->shim_cgroup, "/pod");
	shim_stdin_free(&in);

	/* and what our own .proto makes of the same bytes: every field */
	Containerd__Runtime__Bootstrap__V1__BootstrapParams *bp =
	    containerd__runtime__bootstrap__v1__bootstrap_params__unpack(
	        NULL, sizeof(bootstrap_params_2_3), bootstrap_params_2_3);
	cr_assert_not_null(bp);
	cr_assert_eq(bp->base.n_unknown_fields, 0);
	cr_assert_eq(bp->log_level, -4);
	cr_assert_str_eq(bp->containerd_version, "v2.3.4");
	cr_assert_str_eq(bp->containerd_ttrpc_address, "/run/containerd/containerd.sock.ttrpc");
	cr_assert_str_eq(bp->containerd_grpc_address, "/run/containerd/containerd.sock");
	cr_assert_str_eq(bp->containerd_binary, "/usr/bin/containerd");
	cr_assert_eq(bp->n_extensions, 1);
	/* re-encoded byte for byte */
	uint8_t out[sizeof(bootstrap_params_2_3)];
	cr_assert_eq(containerd__runtime__bootstrap__v1__bootstrap_params__get_packed_size(bp),
	             sizeof(out));
	containerd__runtime__bootstrap__v1__bootstrap_params__pack(bp, out);
	cr_assert_arr_eq(out, bootstrap_params_2_3, sizeof(out));
	containerd__runtime__bootstrap__v1__bootstrap_params__free_unpacked(bp, NULL);
}

/* The trap legacy shims fell into: these bytes also decode as an Any. */
Test(bootstrap, bootstrap_params_also_decode_as_an_any)
{
	Google__Protobuf__Any *any =
	    google__protobuf__any__unpack(NULL, sizeof(bootstrap_params_2_3), bootstrap_params_2_3);
	cr_assert_not_null(any);
	cr_assert_str_eq(any->type_url, "web");
	google__protobuf__any__free_unpacked(any, NULL);
}

static size_t pack_params(const char *id, const char *ns, const Google__Protobuf__Any *opts,
                          const char *socket_dir, uint8_t *buf)
{
	Containerd__Runtime__Bootstrap__V1__BootstrapParams bp =
	    CONTAINERD__RUNTIME__BOOTSTRAP__V1__BOOTSTRAP_PARAMS__INIT;
	Containerd__Runtime__Bootstrap__V1__Extension
	    ext = CONTAINERD__RUNTIME__BOOTSTRAP__V1__EXTENSION__INIT,
	    *exts[] = {&ext};
	bp.instance_id = (char *)id;
	bp.namespace_ = (char *)ns;
	if (socket_dir)
		bp.socket_dir = (char *)socket_dir;
	if (opts) {
		ext.value = (Google__Protobuf__Any *)opts;
		bp.n_extensions = 1;
		bp.extensions = exts;
	}
	return containerd__runtime__bootstrap__v1__bootstrap_params__pack(&bp, buf);
}

/* Only instance_id and namespace set: bytes that are a perfectly clean Any
 * (type_url "web"); the flags decide. */
Test(bootstrap, minimal_bootstrap_params_without_options)
{
	uint8_t buf[256];
	size_t len = pack_params("web", "default", NULL, NULL, buf);
	struct shim_stdin in;
	cr_assert_eq(shim_stdin_parse(buf, len, "web", "default", &in, err, sizeof(err)), 0, "%s",
	             err);
	cr_assert_eq(in.kind, SHIM_STDIN_BOOTSTRAP);
	cr_assert_null(in.options_type_url);
	cr_assert_null(in.socket_dir);
	cr_assert_str_eq(bundle_options_binary(in.options), BUNDLE_DEFAULT_RUNTIME);
	shim_stdin_free(&in);
}

Test(bootstrap, bootstrap_params_for_another_task_refused)
{
	struct shim_stdin in;
	cr_assert_eq(shim_stdin_parse(bootstrap_params_2_3, sizeof(bootstrap_params_2_3), "db",
	                              "default", &in, err, sizeof(err)),
	             -EINVAL);
	cr_assert_not_null(strstr(err, "task web in namespace default"), "%s", err);
	cr_assert_not_null(strstr(err, "task db in namespace default"), "%s", err);
	cr_assert_null(strchr(err, '\n'));
	shim_stdin_free(&in);
	cr_assert_eq(shim_stdin_parse(bootstrap_params_2_3, sizeof(bootstrap_params_2_3), "web",
	                              "k8s.io", &in, err, sizeof(err)),
	             -EINVAL);
	shim_stdin_free(&in);
}

Test(bootstrap, garbage_refused)
{
	static const struct {
		const char *what;
		const char *bytes;
		size_t len;
	} cases[] = {
	    {"text", "hello, shim\n", 12},
	    {"a plain address", "unix:///run/containerd/s/abc", 28},
	    {"JSON", "{\"version\":2}", 13},
	    {"truncated", "\x0a\x20web", 5},
	    {"bad wire type", "\xff\xff\xff\xff", 4},
	    {"a NUL", "\0", 1},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct shim_stdin in;
		int rc = shim_stdin_parse((const uint8_t *)cases[i].bytes, cases[i].len, "web",
		                          "default", &in, err, sizeof(err));
		cr_assert_lt(rc, 0, "%s accepted", cases[i].what);
		cr_assert_neq(err[0], '\0', "%s: no message", cases[i].what);
		cr_assert_null(strchr(err, '\n'), "%s: %s", cases[i].what, err);
		shim_stdin_free(&in);
	}
}

Test(bootstrap, options_of_unknown_type_named)
{
	Google__Protobuf__Any a = GOOGLE__PROTOBUF__ANY__INIT;
	a.type_url = "example.com/Other";
	uint8_t buf[64];
	size_t len = google__protobuf__any__pack(&a, buf);
	struct shim_stdin in;
	cr_assert_eq(shim_stdin_parse(buf, len, "web", "default", &in, err, sizeof(err)), -EINVAL);
	cr_assert_not_null(strstr(err, "example.com/Other"), "%s", err);
	shim_stdin_free(&in);
}

/* -info is run without -id and -namespace: options and BootstrapParams are
 * still told apart. */
Test(bootstrap, without_flags)
{
	struct shim_stdin in;
	cr_assert_eq(shim_stdin_parse(runc_options_any, sizeof(runc_options_any), NULL, NULL, &in,
	                              err, sizeof(err)),
	             0, "%s", err);
	cr_assert_eq(in.kind, SHIM_STDIN_OPTIONS);
	cr_assert_str_eq(in.options->binary_name, "crun");
	shim_stdin_free(&in);
	cr_assert_eq(shim_stdin_parse(bootstrap_params_2_3, sizeof(bootstrap_params_2_3), NULL,
	                              NULL, &in, err, sizeof(err)),
	             0, "%s", err);
	cr_assert_eq(in.kind, SHIM_STDIN_BOOTSTRAP);
	cr_assert_str_eq(in.options->binary_name, "crun");
	shim_stdin_free(&in);
}

Test(bootstrap, read_stdin)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(write(p[1], runc_options_any, sizeof(runc_options_any)),
	             (ssize_t)sizeof(runc_options_any));
	close(p[1]);
	uint8_t *buf;
	size_t len;
	cr_assert_eq(shim_stdin_read(p[0], &buf, &len), 0);
	close(p[0]);
	cr_assert_eq(len, sizeof(runc_options_any));
	cr_assert_arr_eq(buf, runc_options_any, len);
	free(buf);
	/* a closed stdin is an empty one */
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	cr_assert_eq(shim_stdin_read(fd, &buf, &len), 0);
	cr_assert_eq(len, 0);
	free(buf);
	close(fd);
}
