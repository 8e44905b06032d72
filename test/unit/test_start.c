/* `containerd-shim-nano-v2 start` (shim/start.c) as containerd runs it, with
 * each stdin it may be given: containerd 2.3's BootstrapParams (the socket
 * goes to its socket_dir), 1.6 to 2.2's options Any, nothing, and garbage
 * (refused on one line, exit 1, nothing made). The answer is always the plain
 * address, and the shim behind it serves containerd.task.v3.Task. */
#include "containerd/runc/v1/oci.pb-c.h"
#include "containerd/runtime/bootstrap/v1/bootstrap.pb-c.h"
#include "containerd/task/v2/shim.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "run_captured.h"
#include "ttrpc.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[] = "/tmp/nanoshim-start-XXXXXX";
static char shim_bin[PATH_MAX], bundle[PATH_MAX + 16], sockdir[PATH_MAX + 16],
    envdir[PATH_MAX + 16];
static pid_t daemon_pid;

static void setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	cr_assert_gt(n, 0);
	self[n] = '\0';
	snprintf(shim_bin, sizeof(shim_bin), "%s/../shim/containerd-shim-nano-v2", dirname(self));
	cr_assert_eq(access(shim_bin, X_OK), 0, "%s: not built", shim_bin);
	snprintf(bundle, sizeof(bundle), "%s/bundle", dir);
	snprintf(sockdir, sizeof(sockdir), "%s/s", dir);
	snprintf(envdir, sizeof(envdir), "%s/env-s", dir);
	cr_assert_eq(mkdir(bundle, 0700), 0);
	char p[PATH_MAX + 32];
	snprintf(p, sizeof(p), "%s/config.json", bundle);
	FILE *f = fopen(p, "w");
	fputs("{\"ociVersion\":\"1.0.2\",\"annotations\":{}}", f);
	fclose(f);
}

static void teardown(void)
{
	if (daemon_pid > 0)
		kill(daemon_pid, SIGKILL); /* the serving shim this test started */
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(start, .init = setup, .fini = teardown, .timeout = 30);

static void start_setup(void *ud)
{
	const char *socket_env = ud;
	if (chdir(bundle) < 0)
		_exit(126);
	if (socket_env)
		setenv("NANOSHIM_SOCKET_DIR", socket_env, 1);
	else
		unsetenv("NANOSHIM_SOCKET_DIR");
	setenv("TTRPC_ADDRESS", "/nonexistent/containerd.sock.ttrpc", 1);
}

/* Runs `start` for task "web" in the bundle; out/err get stdout/stderr. */
static int run_start(const uint8_t *in, size_t len, const char *socket_env, char *out,
		     size_t outlen, char *err, size_t errlen)
{
	char *argv[] = {(char *)shim_bin, "-namespace", "default", "-address",
			"/run/nanoshim-test/containerd.sock", "-publish-binary",
			"/usr/bin/containerd", "-id", "web", "start", NULL};
	char *o;
	size_t olen;
	int rc = run_captured(dir, argv, in, len, start_setup, (void *)socket_env, &o, &olen, err,
			      errlen);
	snprintf(out, outlen, "%s", o);
	free(o);
	char p[PATH_MAX + 32];
	snprintf(p, sizeof(p), "%s/shim.pid", bundle);
	FILE *f = fopen(p, "r");
	if (f) {
		if (fscanf(f, "%d", &daemon_pid) != 1)
			daemon_pid = 0;
		fclose(f);
	}
	return rc;
}

static size_t options_any(uint8_t *buf, uint8_t *value)
{
	Containerd__Runc__V1__Options o = CONTAINERD__RUNC__V1__OPTIONS__INIT;
	o.binary_name = "runc";
	Google__Protobuf__Any a = GOOGLE__PROTOBUF__ANY__INIT;
	a.type_url = "containerd.runc.v1.Options";
	a.value.data = value;
	a.value.len = containerd__runc__v1__options__pack(&o, value);
	return google__protobuf__any__pack(&a, buf);
}

static size_t bootstrap_params(uint8_t *buf, const char *socket_dir)
{
	uint8_t value[64], anyb[128];
	Containerd__Runtime__Bootstrap__V1__BootstrapParams bp =
	    CONTAINERD__RUNTIME__BOOTSTRAP__V1__BOOTSTRAP_PARAMS__INIT;
	Containerd__Runtime__Bootstrap__V1__Extension
	    ext = CONTAINERD__RUNTIME__BOOTSTRAP__V1__EXTENSION__INIT,
	    *exts[] = {&ext};
	Google__Protobuf__Any *a =
	    google__protobuf__any__unpack(NULL, options_any(anyb, value), anyb);
	bp.instance_id = "web";
	bp.namespace_ = "default";
	bp.log_level = -4;
	bp.containerd_version = "v2.3.4";
	bp.containerd_ttrpc_address = "/nonexistent/containerd.sock.ttrpc";
	bp.socket_dir = (char *)socket_dir;
	ext.value = a;
	bp.n_extensions = 1;
	bp.extensions = exts;
	size_t n = containerd__runtime__bootstrap__v1__bootstrap_params__pack(&bp, buf);
	google__protobuf__any__free_unpacked(a, NULL);
	return n;
}

/* The address is plain (shim protocol 2), in want_dir, and the shim behind
 * it answers containerd.task.v3.Task's Connect and then Shutdown. */
static void check_served(const char *out, const char *want_dir)
{
	char prefix[PATH_MAX + 32];
	snprintf(prefix, sizeof(prefix), "unix://%s/", want_dir);
	cr_assert_eq(strncmp(out, prefix, strlen(prefix)), 0, "address %s, want it in %s", out,
	             want_dir);
	cr_assert_null(strchr(out, '\n'));
	struct ttrpc_client *c = NULL;
	cr_assert_eq(ttrpc_client_connect(out, &c), 0, "connect %s", out);
	Containerd__Task__V2__ConnectRequest req = CONTAINERD__TASK__V2__CONNECT_REQUEST__INIT;
	req.id = "web";
	ProtobufCMessage *r = NULL;
	struct ttrpc_status st = {0};
	struct ttrpc_call_opts opts = {.timeout_ns = 5000000000};
	cr_assert_eq(ttrpc_client_call(c, "containerd.task.v3.Task", "Connect", &req.base,
	                               &containerd__task__v2__connect_response__descriptor, &opts,
	                               &r, &st),
	             0, "%s", st.message);
	cr_assert_eq(((Containerd__Task__V2__ConnectResponse *)r)->shim_pid, (uint32_t)daemon_pid);
	protobuf_c_message_free_unpacked(r, NULL);
	Containerd__Task__V2__ShutdownRequest sreq = CONTAINERD__TASK__V2__SHUTDOWN_REQUEST__INIT;
	sreq.id = "web";
	cr_assert_eq(ttrpc_client_call(c, "containerd.task.v3.Task", "Shutdown", &sreq.base,
	                               &google__protobuf__empty__descriptor, &opts, &r, &st),
	             0, "%s", st.message);
	protobuf_c_message_free_unpacked(r, NULL);
	ttrpc_client_free(c);
	/* gone within 5 s, its socket removed */
	for (int i = 0; i < 500 && kill(daemon_pid, 0) == 0; i++)
		nanosleep(&(struct timespec){0, 10000000}, NULL);
	cr_assert_neq(kill(daemon_pid, 0), 0, "shim %d still running after Shutdown", daemon_pid);
	daemon_pid = 0;
	cr_assert_neq(access(out + strlen("unix://"), F_OK), 0);
}

Test(start, bootstrap_params_socket_dir)
{
	uint8_t in[512];
	char out[512], err[1024];
	size_t len = bootstrap_params(in, sockdir);
	cr_assert_eq(run_start(in, len, NULL, out, sizeof(out), err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(err, "");
	check_served(out, sockdir);
}

/* nanoshimd's NANOSHIM_SOCKET_DIR wins over BootstrapParams' socket_dir */
Test(start, socket_dir_env_first)
{
	uint8_t in[512];
	char out[512], err[1024];
	size_t len = bootstrap_params(in, sockdir);
	cr_assert_eq(run_start(in, len, envdir, out, sizeof(out), err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(err, "");
	check_served(out, envdir);
}

Test(start, options_any_and_empty_stdin)
{
	uint8_t in[512], value[64];
	char out[512], err[1024];
	size_t len = options_any(in, value);
	cr_assert_eq(run_start(in, len, envdir, out, sizeof(out), err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(err, "");
	check_served(out, envdir);
	cr_assert_eq(run_start(in, 0, envdir, out, sizeof(out), err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(err, "");
	check_served(out, envdir);
}

Test(start, garbage_refused_before_anything_is_made)
{
	char out[512], err[1024];
	cr_assert_eq(run_start((const uint8_t *)"\xff\xfe garbage", 10, NULL, out, sizeof(out), err,
	                       sizeof(err)),
	             1);
	cr_assert_str_eq(out, "");
	cr_assert_not_null(strstr(err, "start web: stdin (10 bytes) is neither"), "%s", err);
	cr_assert_eq(strchr(err, '\n'), err + strlen(err) - 1, "more than one line: %s", err);
	cr_assert_eq(daemon_pid, 0);
	cr_assert_neq(access(sockdir, F_OK), 0, "socket dir made");
	char p[PATH_MAX + 32];
	snprintf(p, sizeof(p), "%s/address", bundle);
	cr_assert_neq(access(p, F_OK), 0, "address written");
}
