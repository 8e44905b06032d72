/* `containerd-shim-nano-v2 -info` (shim/info.c), run as containerd 2.x runs
 * it: options on stdin, a containerd.types.RuntimeInfo expected on stdout. The
 * runtime is a script that prints a features JSON and counts its calls, so the
 * cache can be seen working: a second -info does not run it, a changed binary
 * does. */
#include "info.h"
#include "run_captured.h"

#include "containerd/runc/v1/oci.pb-c.h"
#include "containerd/types/introspection.pb-c.h"
#include "google/protobuf/any.pb-c.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define FEATURES_JSON "{\"ociVersionMin\":\"1.0.0\",\"ociVersionMax\":\"1.1.0\"}"

static char dir[] = "/tmp/nanoshim-info-XXXXXX";
static char shim_bin[PATH_MAX], runtime[PATH_MAX + 16], count_file[PATH_MAX + 16],
    cache_dir[PATH_MAX + 16];

/* The shim next to this test in the build tree: <build>/test/.. /shim/. */
static void find_shim(void)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	cr_assert_gt(n, 0);
	self[n] = '\0';
	snprintf(shim_bin, sizeof(shim_bin), "%s/../shim/containerd-shim-nano-v2", dirname(self));
	cr_assert_eq(access(shim_bin, X_OK), 0, "%s: not built", shim_bin);
}

static void write_runtime(const char *name, const char *body)
{
	snprintf(runtime, sizeof(runtime), "%s/%s", dir, name);
	FILE *f = fopen(runtime, "w");
	cr_assert_not_null(f);
	fprintf(f, "#!/bin/sh\n[ \"$1\" = features ] || exit 3\necho call >> %s\n%s\n", count_file,
	        body);
	fclose(f);
	chmod(runtime, 0755);
}

static void setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
	find_shim();
	snprintf(count_file, sizeof(count_file), "%s/calls", dir);
	snprintf(cache_dir, sizeof(cache_dir), "%s/cache", dir);
	write_runtime("fake-runc", "echo '" FEATURES_JSON "'");
}

static void teardown(void)
{
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(info, .init = setup, .fini = teardown, .timeout = 20);

static int calls(void)
{
	FILE *f = fopen(count_file, "r");
	if (!f)
		return 0;
	int n = 0, c;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

struct info_env {
	const char *path; /* PATH for the shim, or NULL: ours */
};

static void info_setup(void *ud)
{
	const struct info_env *e = ud;
	setenv(SHIM_FEATURES_CACHE_ENV, cache_dir, 1);
	if (e->path)
		setenv("PATH", e->path, 1);
}

/* Runs `shim -info` with in[0..len) on stdin and PATH=path_env (NULL: as
 * ours); *out gets stdout (malloc'd), err its stderr. Returns the exit code. */
static int run_info(const uint8_t *in, size_t len, const char *path_env, uint8_t **out,
		    size_t *out_len, char *err, size_t errlen)
{
	struct info_env e = {path_env};
	char *argv[] = {(char *)shim_bin, "-info", NULL};
	return run_captured(dir, argv, in, len, info_setup, &e, (char **)out, out_len, err,
			    errlen);
}

static size_t options_any(const char *binary, uint8_t *buf, uint8_t *value, size_t *vlen)
{
	Containerd__Runc__V1__Options o = CONTAINERD__RUNC__V1__OPTIONS__INIT;
	o.binary_name = (char *)binary;
	o.systemd_cgroup = 1;
	*vlen = containerd__runc__v1__options__pack(&o, value);
	Google__Protobuf__Any a = GOOGLE__PROTOBUF__ANY__INIT;
	a.type_url = "containerd.runc.v1.Options";
	a.value.data = value;
	a.value.len = *vlen;
	return google__protobuf__any__pack(&a, buf);
}

static Containerd__Types__RuntimeInfo *decode(const uint8_t *out, size_t len)
{
	Containerd__Types__RuntimeInfo *ri =
	    containerd__types__runtime_info__unpack(NULL, len, out);
	cr_assert_not_null(ri, "stdout (%zu bytes) is not a RuntimeInfo", len);
	cr_assert_eq(ri->base.n_unknown_fields, 0);
	cr_assert_str_eq(ri->name, SHIM_RUNTIME_NAME);
	cr_assert_not_null(ri->version);
	cr_assert_str_neq(ri->version->version, "");
	cr_assert_not_null(ri->features);
	cr_assert_str_eq(ri->features->type_url, SHIM_FEATURES_TYPE_URL);
	cr_assert_eq(ri->features->value.len, strlen(FEATURES_JSON "\n"));
	cr_assert_arr_eq(ri->features->value.data, FEATURES_JSON "\n", ri->features->value.len);
	return ri;
}

Test(info, runtime_info_with_options_features_and_cache)
{
	uint8_t in[512], value[512], *out;
	size_t vlen, outlen;
	char err[1024];
	size_t len = options_any(runtime, in, value, &vlen);

	cr_assert_eq(run_info(in, len, NULL, &out, &outlen, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(err, "");
	Containerd__Types__RuntimeInfo *ri = decode(out, outlen);
	/* the options echoed as received */
	cr_assert_not_null(ri->options);
	cr_assert_str_eq(ri->options->type_url, "containerd.runc.v1.Options");
	cr_assert_eq(ri->options->value.len, vlen);
	cr_assert_arr_eq(ri->options->value.data, value, vlen);
	containerd__types__runtime_info__free_unpacked(ri, NULL);
	free(out);
	cr_assert_eq(calls(), 1);

	/* cached: the runtime is not run again, the answer is the same */
	cr_assert_eq(run_info(in, len, NULL, &out, &outlen, err, sizeof(err)), 0, "%s", err);
	ri = decode(out, outlen);
	containerd__types__runtime_info__free_unpacked(ri, NULL);
	free(out);
	cr_assert_eq(calls(), 1);

	/* a replaced binary is asked again */
	write_runtime("fake-runc", "echo '" FEATURES_JSON "' # v2");
	cr_assert_eq(run_info(in, len, NULL, &out, &outlen, err, sizeof(err)), 0, "%s", err);
	ri = decode(out, outlen);
	containerd__types__runtime_info__free_unpacked(ri, NULL);
	free(out);
	cr_assert_eq(calls(), 2);
}

/* No options: runc, looked up in PATH; nothing to echo. */
Test(info, no_options_runs_runc_from_path)
{
	write_runtime("runc", "echo '" FEATURES_JSON "'");
	uint8_t *out;
	size_t outlen;
	char err[1024], path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s:/usr/bin:/bin", dir);
	cr_assert_eq(run_info((const uint8_t *)"", 0, path, &out, &outlen, err, sizeof(err)), 0,
	             "%s", err);
	Containerd__Types__RuntimeInfo *ri = decode(out, outlen);
	cr_assert_null(ri->options);
	containerd__types__runtime_info__free_unpacked(ri, NULL);
	free(out);
	cr_assert_eq(calls(), 1);
}

Test(info, failing_runtime_is_an_error_not_cached)
{
	write_runtime("broken", "echo 'no features here' >&2; exit 1");
	uint8_t in[512], value[512], *out;
	size_t vlen, outlen;
	char err[1024];
	size_t len = options_any(runtime, in, value, &vlen);
	for (int i = 1; i <= 2; i++) {
		cr_assert_eq(run_info(in, len, NULL, &out, &outlen, err, sizeof(err)), 1);
		cr_assert_eq(outlen, 0);
		cr_assert_not_null(strstr(err, "broken features: failed"), "%s", err);
		free(out);
		cr_assert_eq(calls(), i);
	}
	/* and a runtime that does not exist is named */
	len = options_any("/nonexistent/runc", in, value, &vlen);
	cr_assert_eq(run_info(in, len, NULL, &out, &outlen, err, sizeof(err)), 1);
	cr_assert_not_null(strstr(err, "/nonexistent/runc"), "%s", err);
	free(out);
}

Test(info, garbage_on_stdin_refused)
{
	uint8_t *out;
	size_t outlen;
	char err[1024];
	cr_assert_eq(
	    run_info((const uint8_t *)"\xff\xff", 2, NULL, &out, &outlen, err, sizeof(err)), 1);
	cr_assert_eq(outlen, 0);
	cr_assert_not_null(strstr(err, "info: stdin"), "%s", err);
	free(out);
	cr_assert_eq(calls(), 0);
}
