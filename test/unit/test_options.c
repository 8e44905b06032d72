/* Runtime options of the three types a shim is sent (bundle/options.c), each
 * decoded into one containerd.runc.v1.Options by its type URL; an unknown type
 * is refused by name, malformed bytes are refused, no type gives defaults. */
#include "options.h"
#include "runcopts.h"

#include "containerd/linux/runc/runc.pb-c.h"
#include "runtimeoptions/v1/api.pb-c.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

TestSuite(options, .timeout = 10);

Test(options, runc_v1_options)
{
	Containerd__Runc__V1__Options in = CONTAINERD__RUNC__V1__OPTIONS__INIT, *o = NULL;
	in.binary_name = "crun";
	in.root = "/run/r";
	in.systemd_cgroup = 1;
	in.shim_cgroup = "/pod";
	uint8_t buf[256];
	size_t len = containerd__runc__v1__options__pack(&in, buf);
	struct ttrpc_status st = {0};
	cr_assert_eq(bundle_options_decode("containerd.runc.v1.Options", buf, len, &o, &st), 0,
		     "%s", st.message);
	cr_assert_str_eq(o->binary_name, "crun");
	cr_assert_str_eq(bundle_options_root(o), "/run/r");
	cr_assert(o->systemd_cgroup);
	cr_assert_str_eq(o->shim_cgroup, "/pod");
	bundle_options_free(o);
}

Test(options, linux_runc_create_options)
{
	Containerd__Linux__Runc__CreateOptions in = CONTAINERD__LINUX__RUNC__CREATE_OPTIONS__INIT;
	in.no_pivot_root = 1;
	in.shim_cgroup = "/cg";
	in.io_uid = 7;
	in.io_gid = 8;
	in.criu_work_path = "/w";
	uint8_t buf[256];
	size_t len = containerd__linux__runc__create_options__pack(&in, buf);
	Containerd__Runc__V1__Options *o = NULL;
	struct ttrpc_status st = {0};
	cr_assert_eq(bundle_options_decode("containerd.linux.runc.CreateOptions", buf, len, &o, &st),
		     0, "%s", st.message);
	cr_assert(o->no_pivot_root);
	cr_assert_str_eq(o->shim_cgroup, "/cg");
	cr_assert_eq(o->io_uid, 7);
	cr_assert_eq(o->io_gid, 8);
	cr_assert_str_eq(o->criu_work_path, "/w");
	cr_assert_str_eq(o->binary_name, "");
	cr_assert_str_eq(bundle_options_binary(o), BUNDLE_DEFAULT_RUNTIME);
	bundle_options_free(o);
}

Test(options, runtimeoptions_config_path_is_read)
{
	char path[] = "/tmp/nanoshim-options-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	const char *json = "{\"binary_name\":\"crun\",\"systemd_cgroup\":true}";
	cr_assert_eq(write(fd, json, strlen(json)), (ssize_t)strlen(json));
	close(fd);
	Runtimeoptions__V1__Options in = RUNTIMEOPTIONS__V1__OPTIONS__INIT;
	in.config_path = path;
	uint8_t buf[256];
	size_t len = runtimeoptions__v1__options__pack(&in, buf);
	Containerd__Runc__V1__Options *o = NULL;
	struct ttrpc_status st = {0};
	int rc = bundle_options_decode("runtimeoptions.v1.Options", buf, len, &o, &st);
	unlink(path);
	cr_assert_eq(rc, 0, "%s", st.message);
	cr_assert_str_eq(o->binary_name, "crun");
	cr_assert(o->systemd_cgroup);
	bundle_options_free(o);

	/* no config_path: defaults; a missing file: an error */
	in.config_path = "";
	len = runtimeoptions__v1__options__pack(&in, buf);
	cr_assert_eq(bundle_options_decode("runtimeoptions.v1.Options", buf, len, &o, &st), 0);
	cr_assert_str_eq(bundle_options_binary(o), BUNDLE_DEFAULT_RUNTIME);
	bundle_options_free(o);
	in.config_path = "/nonexistent/nanoshim.toml";
	len = runtimeoptions__v1__options__pack(&in, buf);
	o = NULL;
	cr_assert_lt(bundle_options_decode("runtimeoptions.v1.Options", buf, len, &o, &st), 0);
	bundle_options_free(o);
}

Test(options, no_type_gives_defaults)
{
	Containerd__Runc__V1__Options *o = NULL;
	struct ttrpc_status st = {0};
	cr_assert_eq(bundle_options_decode(NULL, NULL, 0, &o, &st), 0);
	cr_assert_not_null(o);
	cr_assert_str_eq(bundle_options_binary(o), BUNDLE_DEFAULT_RUNTIME);
	bundle_options_free(o);
	cr_assert_eq(bundle_options_decode("", NULL, 0, &o, &st), 0);
	bundle_options_free(o);
}

Test(options, unknown_type_is_named_and_malformed_bytes_refused)
{
	Containerd__Runc__V1__Options *o = NULL;
	struct ttrpc_status st = {0};
	cr_assert_eq(bundle_options_decode("example.com/Other", (const uint8_t *)"", 0, &o, &st),
		     -EINVAL);
	cr_assert_null(o);
	cr_assert_not_null(strstr(st.message, "example.com/Other"), "%s", st.message);
	const uint8_t junk[] = {0xff, 0xff, 0xff};
	const char *const urls[] = {"containerd.runc.v1.Options", "containerd.linux.runc.CreateOptions",
				    "runtimeoptions.v1.Options"};
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(bundle_options_decode(urls[i], junk, sizeof(junk), &o, &st), -EBADMSG,
			     "%s", urls[i]);
		cr_assert_null(o);
	}
}

/* containerd 2.x reserved field 8 (criu_path) and added 12 and 13
 * (task_api_address, task_api_version): 1.6 sends 8, 2.x sends 12/13 and
 * never 8. Every form decodes, hand-encoded as Go writes them. */
Test(options, criu_path_present_or_absent)
{
	static const uint8_t with_8[] = {
		0x32, 0x04, 'c', 'r', 'u', 'n',			/* 6 binary_name */
		0x3a, 0x02, '/', 'r',				/* 7 root */
		0x42, 0x0e, '/', 'u', 's', 'r', '/', 's', 'b', 'i', 'n', '/', 'c', 'r', 'i', 'u',
		0x48, 0x01,					/* 9 systemd_cgroup */
	};
	static const uint8_t without_8[] = {
		0x32, 0x04, 'c', 'r', 'u', 'n', 0x3a, 0x02, '/', 'r', 0x48, 0x01,
	};
	static const uint8_t v2x[] = {
		0x32, 0x04, 'c', 'r', 'u', 'n', 0x3a, 0x02, '/', 'r', 0x48, 0x01,
		0x62, 0x03, '/', 't', 'a',			/* 12 task_api_address */
		0x68, 0x03,					/* 13 task_api_version */
	};
	const struct {
		const uint8_t *b;
		size_t len;
		const char *criu;
	} cases[] = {
		{with_8, sizeof(with_8), "/usr/sbin/criu"},
		{without_8, sizeof(without_8), ""},
		{v2x, sizeof(v2x), ""},
	};
	for (int i = 0; i < 3; i++) {
		Containerd__Runc__V1__Options *o = NULL;
		struct ttrpc_status st = {0};
		cr_assert_eq(bundle_options_decode("containerd.runc.v1.Options", cases[i].b,
						   cases[i].len, &o, &st),
			     0, "case %d: %s", i, st.message);
		cr_assert_str_eq(o->binary_name, "crun", "case %d", i);
		cr_assert_str_eq(bundle_options_root(o), "/r", "case %d", i);
		cr_assert(o->systemd_cgroup, "case %d", i);
		cr_assert_str_eq(o->criu_path, cases[i].criu, "case %d", i);
		bundle_options_free(o);
	}
}

/* spool_max_bytes of a runtime config file: the runc keys beside it do not
 * mind it, a whole number of bytes is taken (0 too), anything else fails; no
 * config file, or options of another type: the default. */
static int spool_max_of(const char *json, uint64_t *out, struct ttrpc_status *st)
{
	char path[] = "/tmp/nanoshim-options-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, json, strlen(json)), (ssize_t)strlen(json));
	close(fd);
	Runtimeoptions__V1__Options in = RUNTIMEOPTIONS__V1__OPTIONS__INIT;
	in.config_path = path;
	uint8_t buf[256];
	size_t len = runtimeoptions__v1__options__pack(&in, buf);
	Containerd__Runc__V1__Options *o = NULL;
	cr_assert_eq(bundle_options_decode("runtimeoptions.v1.Options", buf, len, &o, st), 0);
	bundle_options_free(o);
	int rc = bundle_options_spool_max("runtimeoptions.v1.Options", buf, len, out, st);
	unlink(path);
	return rc;
}

Test(options, spool_max_bytes)
{
	uint64_t v = 1;
	struct ttrpc_status st = {0};
	cr_assert_eq(spool_max_of("{\"binary_name\":\"crun\",\"spool_max_bytes\":16777216}", &v, &st),
		     0);
	cr_assert_eq(v, 16777216);
	cr_assert_eq(spool_max_of("{\"spool_max_bytes\":0}", &v, &st), 0);
	cr_assert_eq(v, 0, "0 turns the spool off");
	cr_assert_eq(spool_max_of("{\"binary_name\":\"crun\"}", &v, &st), 0);
	cr_assert_eq(v, BUNDLE_SPOOL_MAX_DEFAULT);
	cr_assert_eq(spool_max_of("{\"spool_max_bytes\":null}", &v, &st), 0);
	cr_assert_eq(v, BUNDLE_SPOOL_MAX_DEFAULT);
	const char *bad[] = {"{\"spool_max_bytes\":\"lots\"}", "{\"spool_max_bytes\":-1}",
			     "{\"spool_max_bytes\":1.5}", "{\"spool_max_bytes\":1e6}",
			     "{\"spool_max_bytes\":99999999999999999999}"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(spool_max_of(bad[i], &v, &st), -EINVAL, "%s", bad[i]);
		cr_assert(strstr(st.message, "spool_max_bytes must be a number of bytes"), "%s",
			  st.message);
	}
	cr_assert_eq(bundle_options_spool_max(NULL, NULL, 0, &v, &st), 0);
	cr_assert_eq(v, BUNDLE_SPOOL_MAX_DEFAULT);
	cr_assert_eq(bundle_options_spool_max("containerd.runc.v1.Options", NULL, 0, &v, &st), 0);
	cr_assert_eq(v, BUNDLE_SPOOL_MAX_DEFAULT);
}
