/* `nanoctl shim`: a shim v2 binary started, called and deleted by hand, the
 * way containerd 1.6 does it (start/delete invocations, Task calls over ttrpc
 * with the namespace in the metadata), for ours or any other shim. */
#include "duration.h"
#include "files.h"
#include "nanoctl.h"
#include "pbjson.h"
#include "capture.h"
#include "ttrpc.h"

#include "containerd/task/v2/shim.pb-c.h"
#include "nanoshim/shim/v1/upgrade.pb-c.h"
#include "google/protobuf/empty.pb-c.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define SHIM_DEFAULT_BINARY "containerd-shim-nano-v2"
#define SHIM_DEFAULT_NAMESPACE "default"
#define TASK_SERVICE "containerd.task.v2.Task"
#define NAMESPACE_KEY "containerd-namespace-ttrpc"
/* start and delete are short: the Go shim's take tens of ms. A start whose
 * daemon keeps the output pipe would hang containerd; we say so instead. */
#define SHIM_ACTION_TIMEOUT_MS 30000
#define SHIM_ENV_MAX 1024 /* environment entries passed on */

/* ---- usage ---------------------------------------------------------------- */

static const char start_usage[] =
    "usage: nanoctl shim start [OPTIONS] --bundle DIR ID\n"
    "\n"
    "Runs `BINARY -namespace NS -address ADDR -publish-binary NANOCTL -id ID [-debug] start`\n"
    "in the bundle directory, as containerd 1.6 does (environment: ours plus\n"
    "TTRPC_ADDRESS=ADDR, NAMESPACE=NS, GOMAXPROCS=2), and prints the address the\n"
    "shim answered (its stdout and stderr together, trimmed). Our shim goes on its own\n"
    "when no Create comes within 5 s (30 s while a connection that sent nothing is\n"
    "open): call Create soon after, or keep a connection open.\n"
    "\n"
    "Options:\n"
    "  --bundle DIR       the task's bundle (config.json, rootfs); required\n"
    "  --binary PATH      the shim (default: " SHIM_DEFAULT_BINARY " beside nanoctl,\n"
    "                     else on PATH); any shim v2 binary, e.g. containerd-shim-runc-v2\n"
    "  -n, --namespace NS namespace (default \"" SHIM_DEFAULT_NAMESPACE "\")\n"
    "  --address ADDR     where the shim publishes events (-address and TTRPC_ADDRESS;\n"
    "                     default: nanoctl's --address, " NANOCTL_DEFAULT_ADDRESS ").\n"
    "                     When nothing listens there, the shim's events are not\n"
    "                     delivered: fine by hand (the Go shim then tries each event\n"
    "                     for 5 s and can take tens of seconds to exit after Shutdown).\n"
    "  --socket-dir DIR   NANOSHIM_SOCKET_DIR=DIR: where " SHIM_DEFAULT_BINARY " puts\n"
    "                     its socket, instead of /run/containerd/s (other shims ignore it)\n"
    "  --debug            pass -debug\n"
    "  -h, --help         this text\n"
    "\n"
    "The shim daemon logs to BUNDLE/log: containerd makes it a FIFO and reads it;\n"
    "nanoctl, when there is none, creates a regular file, where the log then stays.\n"
    "The start action gets no runtime options (stdin is /dev/null).\n"
    "\n"
    "Exit status: 0 with the address on stdout; 1 when the shim's start failed\n"
    "(its output, or exit status, in the message).\n";

static const char call_usage[] =
    "usage: nanoctl shim call [OPTIONS] SOCKET|BUNDLE METHOD [FIELD=VALUE...|JSON]\n"
    "\n"
    "One containerd.task.v2.Task call, as containerd makes it (metadata\n"
    "containerd-namespace-ttrpc: NS); the reply is printed as JSON.\n"
    "\n"
    "  SOCKET|BUNDLE  a socket path, unix://PATH, or a bundle directory (its address file)\n"
    "  METHOD         State, Create, Start, Delete, Pids, Pause, Resume, Checkpoint, Kill,\n"
    "                 Exec, ResizePty, CloseIO, Update, Wait, Stats, Connect, Shutdown\n"
    "                 (any case; '_' and '-' ignored: resize_pty)\n"
    "  FIELD=VALUE    request fields by proto name: strings, bools (true/false), integers,\n"
    "                 enums by name; a timestamp as RFC 3339; bytes as text or @FILE;\n"
    "                 an Any (exec's spec, update's resources) as JSON or @FILE, its URL\n"
    "                 with FIELD.type_url=URL; map entries as FIELD.KEY=VALUE; repeated\n"
    "                 fields once per element (messages as JSON: rootfs='{\"type\":...}')\n"
    "  JSON           the whole request as one JSON object: '{\"id\":\"c1\",\"signal\":9}'\n"
    "\n"
    "Options:\n"
    "  -n, --namespace NS    namespace in the metadata (default \"" SHIM_DEFAULT_NAMESPACE "\")\n"
    "  -t, --timeout DUR     deadline, sent as timeout_nano (500ms, 2s, 1m, 1.5s;\n"
    "                        default none: Wait blocks until the process exits)\n"
    "  -h, --help            this text\n"
    "\n"
    "Output: the reply as JSON (proto field names, enums by name, timestamps RFC 3339,\n"
    "bytes and Any values base64).\n"
    "Exit status: 0 on success; 1 on an error status (\"nanoctl: shim call METHOD:\n"
    "<Code>: <message>\") or bad arguments; 2 when the shim cannot be reached (connect\n"
    "failed, no address file, or the connection closed before the answer).\n";

static const char delete_usage[] =
    "usage: nanoctl shim delete [OPTIONS] --bundle DIR ID\n"
    "\n"
    "Runs `BINARY -namespace NS -address ADDR -publish-binary NANOCTL -id ID -bundle DIR\n"
    "[-debug] delete` in the bundle directory, as containerd does after a task is gone\n"
    "(the shim cleans up what a dead daemon left), and prints the\n"
    "containerd.task.v2.DeleteResponse it writes on stdout as JSON. Its stderr, if any,\n"
    "follows on stderr as warnings.\n"
    "\n"
    "Options:\n"
    "  --bundle DIR       the task's bundle; required\n"
    "  --binary PATH      the shim (default: " SHIM_DEFAULT_BINARY " beside nanoctl,\n"
    "                     else on PATH)\n"
    "  -n, --namespace NS namespace (default \"" SHIM_DEFAULT_NAMESPACE "\")\n"
    "  --address ADDR     -address and TTRPC_ADDRESS (default: nanoctl's --address,\n"
    "                     " NANOCTL_DEFAULT_ADDRESS ")\n"
    "  --debug            pass -debug\n"
    "  -h, --help         this text\n"
    "\n"
    "Exit status: 0 with the JSON on stdout; 1 when the delete action failed (its\n"
    "stderr, or exit status, in the message).\n";

/* ---- common pieces ---------------------------------------------------------- */

/* The first "-h"/"--help" before a "--" */
static bool wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			return false;
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return true;
	}
	return false;
}

/* A copy of s on one line: trimmed, line breaks as "; ". malloc'ed. */
static char *one_line(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc(2 * n + 1), *p = out;
	if (!out)
		return NULL;
	while (*s && isspace((unsigned char)*s))
		s++;
	for (; *s; s++) {
		if (*s == '\r')
			continue;
		if (*s == '\n') {
			while (s[1] && isspace((unsigned char)s[1]))
				s++;
			if (s[1]) {
				*p++ = ';';
				*p++ = ' ';
			}
			continue;
		}
		*p++ = *s;
	}
	while (p > out && isspace((unsigned char)p[-1]))
		p--;
	*p = '\0';
	return out;
}

static int self_path(char *out, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", out, len - 1);
	if (n < 0)
		return -errno;
	if ((size_t)n >= len - 1)
		return -ENAMETOOLONG;
	out[n] = '\0';
	return 0;
}

static bool executable(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* name on $PATH into out: 0 or -ENOENT. */
static int find_in_path(const char *name, char *out, size_t len)
{
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	while (*path) {
		const char *end = strchrnul(path, ':');
		int n = snprintf(out, len, "%.*s%s%s", (int)(end - path), path,
		                 end == path ? "" : "/", name);
		if (n > 0 && (size_t)n < len && executable(out))
			return 0;
		path = *end ? end + 1 : end;
	}
	return -ENOENT;
}

/* p made absolute against our cwd into out, as the shim runs in the bundle and
 * takes paths from us: 0, or -ENAMETOOLONG / -errno. Addresses with a scheme
 * ("unix://...") or abstract ones ("@...") are kept as they are. */
static int absolute(const char *p, char *out, size_t len)
{
	if (p[0] == '/' || p[0] == '@' || strstr(p, "://")) {
		if (strlen(p) >= len)
			return -ENAMETOOLONG;
		strcpy(out, p);
		return 0;
	}
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd)))
		return -errno;
	int n = snprintf(out, len, "%s/%s", strcmp(cwd, "/") ? cwd : "", p);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* --binary, or containerd-shim-nano-v2 beside nanoctl's executable, else on
 * $PATH. Prints the error itself. */
static int resolve_binary(const char *what, const char *given, const char *self, char *out,
                          size_t len)
{
	if (given && strchr(given, '/')) {
		if (!executable(given))
			return nanoctl_err("%s: shim binary %s: %s", what, given,
			                   access(given, F_OK) ? strerror(errno)
			                                       : "not an executable file");
		/* it runs in the bundle: a relative path would be taken from there */
		int rc = absolute(given, out, len);
		if (rc < 0)
			return nanoctl_err("%s: shim binary %s: %s", what, given, strerror(-rc));
		return 0;
	}
	if (given) {
		if (find_in_path(given, out, len) < 0)
			return nanoctl_err("%s: shim binary %s: not found on PATH", what, given);
		return 0;
	}
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", self);
	char *slash = strrchr(dir, '/');
	if (slash) {
		*slash = '\0';
		int n = snprintf(out, len, "%s/%s", dir, SHIM_DEFAULT_BINARY);
		if (n > 0 && (size_t)n < len && executable(out))
			return 0;
	}
	if (find_in_path(SHIM_DEFAULT_BINARY, out, len) == 0)
		return 0;
	return nanoctl_err("%s: %s not found beside %s nor on PATH (--binary PATH)", what,
	                   SHIM_DEFAULT_BINARY, self);
}

/* Our environment without the variables in set[] (NAME=VALUE), then set[]. */
static char **make_env(char *const *set, size_t n_set)
{
	size_t n = 0;
	while (environ[n])
		n++;
	if (n + n_set >= SHIM_ENV_MAX)
		return NULL;
	char **env = calloc(n + n_set + 1, sizeof(char *));
	if (!env)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		bool replaced = false;
		for (size_t j = 0; j < n_set && !replaced; j++) {
			size_t klen = strcspn(set[j], "=") + 1;
			replaced = strncmp(environ[i], set[j], klen) == 0;
		}
		if (!replaced)
			env[k++] = environ[i];
	}
	for (size_t j = 0; j < n_set; j++)
		env[k++] = set[j];
	env[k] = NULL;
	return env;
}

/* "exit status N" / "killed by signal N" */
static void describe_status(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status),
		         strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "wait status 0x%x", status);
}

static bool bundle_dir_ok(const char *what, const char *bundle)
{
	struct stat st;
	if (stat(bundle, &st) < 0) {
		nanoctl_err("%s: bundle %s: %s", what, bundle, strerror(errno));
		return false;
	}
	if (!S_ISDIR(st.st_mode)) {
		nanoctl_err("%s: bundle %s: not a directory", what, bundle);
		return false;
	}
	return true;
}

/* Options start and delete share; paths absolute. */
struct action_opts {
	const char *binary, *ns, *id;
	char bundle[PATH_MAX], address[PATH_MAX];
	char socket_dir[PATH_MAX]; /* "" when not given */
	bool debug;
};

static const struct option action_long[] = {
    {"binary", required_argument, NULL, 'b'},
    {"namespace", required_argument, NULL, 'n'},
    {"address", required_argument, NULL, 'a'},
    {"bundle", required_argument, NULL, 'B'},
    {"socket-dir", required_argument, NULL, 'S'},
    {"debug", no_argument, NULL, 'd'},
    {"help", no_argument, NULL, 'h'},
    {0},
};

/* Parses a start/delete command line; 0, or the exit status to return. */
static int parse_action(const char *cmd, int argc, char **argv, bool with_socket_dir,
                        const struct nanoctl_global *g, struct action_opts *o)
{
	*o = (struct action_opts){.ns = SHIM_DEFAULT_NAMESPACE};
	const char *bundle = NULL, *address = g->address, *socket_dir = NULL;
	int c;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "n:h", action_long, NULL)) != -1) {
		switch (c) {
		case 'b':
			o->binary = optarg;
			break;
		case 'n':
			o->ns = optarg;
			break;
		case 'a':
			address = optarg;
			break;
		case 'B':
			bundle = optarg;
			break;
		case 'S':
			if (!with_socket_dir)
				return nanoctl_usage_err(cmd, "unknown option --socket-dir");
			socket_dir = optarg;
			break;
		case 'd':
			o->debug = true;
			break;
		case ':':
			return nanoctl_usage_err(cmd, "%s needs a value", argv[optind - 1]);
		default:
			if (optopt && strchr("nbaBS", optopt))
				return nanoctl_usage_err(cmd, "%s needs a value", argv[optind - 1]);
			return nanoctl_usage_err(cmd, "unknown option %s", argv[optind - 1]);
		}
	}
	if (argc - optind != 1)
		return nanoctl_usage_err(cmd, "one task ID expected, got %d arguments",
		                         argc - optind);
	o->id = argv[optind];
	if (!bundle)
		return nanoctl_usage_err(cmd, "--bundle DIR is required");
	if (!*o->ns)
		return nanoctl_usage_err(cmd, "--namespace must not be empty");
	const struct {
		const char *opt, *in;
		char *out;
	} paths[] = {
	    {"--bundle", bundle, o->bundle},
	    {"--address", address, o->address},
	    {"--socket-dir", socket_dir, o->socket_dir},
	};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		int rc = paths[i].in ? absolute(paths[i].in, paths[i].out, PATH_MAX) : 0;
		if (rc < 0)
			return nanoctl_err("%s %s: %s %s: %s", cmd, o->id, paths[i].opt,
			                   paths[i].in, strerror(-rc));
	}
	return 0;
}

/* Runs `<binary> -namespace NS -address ADDR -publish-binary SELF -id ID
 * [extra...] [-debug] ACTION` in the bundle, as containerd does. what: for
 * messages ("shim start ID"). */
static int run_action(const char *what, const struct action_opts *o, const char *action,
                      bool combined, struct nanoctl_spawn_result *r)
{
	char self[PATH_MAX], binary[PATH_MAX];
	int rc = self_path(self, sizeof(self));
	if (rc < 0)
		return nanoctl_err("%s: /proc/self/exe: %s", what, strerror(-rc));
	if (resolve_binary(what, o->binary, self, binary, sizeof(binary)))
		return NANOCTL_EXIT_FAIL;
	if (!bundle_dir_ok(what, o->bundle))
		return NANOCTL_EXIT_FAIL;

	char *argv[16];
	int n = 0;
	argv[n++] = binary;
	argv[n++] = "-namespace";
	argv[n++] = (char *)o->ns;
	argv[n++] = "-address";
	argv[n++] = (char *)o->address;
	argv[n++] = "-publish-binary";
	argv[n++] = self;
	argv[n++] = "-id";
	argv[n++] = (char *)o->id;
	if (!strcmp(action, "delete")) {
		argv[n++] = "-bundle";
		argv[n++] = (char *)o->bundle;
	}
	if (o->debug)
		argv[n++] = "-debug";
	argv[n++] = (char *)action;
	argv[n] = NULL;

	/* as containerd 1.7: TTRPC_ADDRESS, NAMESPACE, GOMAXPROCS=2 */
	char *set[4];
	size_t n_set = 0;
	char *ttrpc_env = NULL, *ns_env = NULL, *sock_env = NULL;
	if (asprintf(&ttrpc_env, "TTRPC_ADDRESS=%s", o->address) < 0 ||
	    asprintf(&ns_env, "NAMESPACE=%s", o->ns) < 0 ||
	    (*o->socket_dir && asprintf(&sock_env, "NANOSHIM_SOCKET_DIR=%s", o->socket_dir) < 0)) {
		free(ttrpc_env);
		free(ns_env);
		return nanoctl_err("%s: out of memory", what);
	}
	set[n_set++] = ttrpc_env;
	set[n_set++] = ns_env;
	set[n_set++] = "GOMAXPROCS=2";
	if (sock_env)
		set[n_set++] = sock_env;
	char **env = make_env(set, n_set);
	if (!env) {
		rc = nanoctl_err("%s: environment: out of memory or more than %d entries", what,
		                 SHIM_ENV_MAX);
	} else {
		char errbuf[512];
		struct nanoctl_spawn s = {.argv = argv,
		                          .envp = env,
		                          .cwd = o->bundle,
		                          .combined = combined,
		                          .timeout_ms = SHIM_ACTION_TIMEOUT_MS};
		rc = nanoctl_spawn_sync(&s, r, errbuf, sizeof(errbuf));
		if (rc < 0)
			rc = nanoctl_err("%s: %s", what, errbuf);
	}
	free(env);
	free(ttrpc_env);
	free(ns_env);
	free(sock_env);
	return rc;
}

/* The failure of an action: its output on one line, else its exit status. */
static int action_failed(const char *what, int status, const char *output)
{
	char st[64];
	describe_status(status, st, sizeof(st));
	char *line = output ? one_line(output) : NULL;
	int rc = line && *line ? nanoctl_err("%s: %s (%s)", what, line, st)
	                       : nanoctl_err("%s: %s", what, st);
	free(line);
	return rc;
}

/* ---- shim start ------------------------------------------------------------- */

/* The shim daemon writes its log to the bundle's `log`, which containerd makes a
 * FIFO and reads for the shim's lifetime. Nothing would read one once nanoctl
 * exits (and the Go shim blocks opening a FIFO without a reader, or exits when
 * there is no `log` at all), so a missing `log` becomes a regular file: the
 * shim's log is then in it. An existing one is left as it is. */
static int make_log_file(const char *what, const char *bundle)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/%s", bundle, BUNDLE_LOG_FILE) >= (int)sizeof(path))
		return nanoctl_err("%s: bundle path too long: %s", what, bundle);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 && errno != EEXIST)
		return nanoctl_err("%s: create %s: %s", what, path, strerror(errno));
	if (fd >= 0)
		close(fd);
	return 0;
}

static int cmd_start(int argc, char **argv, const struct nanoctl_global *g)
{
	if (wants_help(argc, argv))
		return nanoctl_usage(start_usage);
	struct action_opts o;
	int rc = parse_action("shim start", argc, argv, true, g, &o);
	if (rc)
		return rc;
	char what[512];
	snprintf(what, sizeof(what), "shim start %s", o.id);
	if (!bundle_dir_ok(what, o.bundle))
		return NANOCTL_EXIT_FAIL;
	rc = make_log_file(what, o.bundle);
	if (rc)
		return rc;
	struct nanoctl_spawn_result r = {0};
	rc = run_action(what, &o, "start", true, &r);
	if (rc == 0) {
		if (WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0) {
			char *addr = one_line(r.out ? r.out : "");
			if (!addr || !*addr)
				rc = nanoctl_err("%s: the shim exited 0 but printed no address",
				                 what);
			else
				printf("%s\n", addr);
			free(addr);
		} else {
			rc = action_failed(what, r.status, r.out);
		}
	}
	nanoctl_spawn_result_free(&r);
	return rc;
}

/* ---- shim delete ------------------------------------------------------------ */

static int print_json(const char *what, const ProtobufCMessage *m)
{
	struct pbjson_error err;
	char *json;
	if (pbjson_format(m, true, &json, &err) < 0)
		return nanoctl_err("%s: %s", what, err.msg);
	fputs(json, stdout);
	free(json);
	return fflush(stdout) == 0 ? 0 : nanoctl_err("%s: stdout: %s", what, strerror(errno));
}

static int cmd_delete(int argc, char **argv, const struct nanoctl_global *g)
{
	if (wants_help(argc, argv))
		return nanoctl_usage(delete_usage);
	struct action_opts o;
	int rc = parse_action("shim delete", argc, argv, false, g, &o);
	if (rc)
		return rc;
	char what[512];
	snprintf(what, sizeof(what), "shim delete %s", o.id);
	struct nanoctl_spawn_result r = {0};
	rc = run_action(what, &o, "delete", false, &r);
	if (rc == 0 && !(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0)) {
		rc = action_failed(what, r.status, r.err);
	} else if (rc == 0) {
		Containerd__Task__V2__DeleteResponse *resp =
		    containerd__task__v2__delete_response__unpack(NULL, r.out_len,
		                                                  (const uint8_t *)r.out);
		if (!resp) {
			rc = nanoctl_err("%s: its stdout (%zu bytes) is not a "
			                 "containerd.task.v2.DeleteResponse",
			                 what, r.out_len);
		} else {
			rc = print_json(what, &resp->base);
			containerd__task__v2__delete_response__free_unpacked(resp, NULL);
		}
		if (rc == 0 && r.err_len) {
			/* containerd logs these as "cleanup warnings" */
			char *line = one_line(r.err);
			if (line && *line)
				nanoctl_err("%s: warnings: %s", what, line);
			free(line);
		}
	}
	nanoctl_spawn_result_free(&r);
	return rc;
}

/* ---- shim call -------------------------------------------------------------- */

/* SOCKET|BUNDLE -> an address for ttrpc_client_connect; prints the error. */
static int resolve_target(const char *what, const char *arg, char *out, size_t len)
{
	struct stat st;
	if (stat(arg, &st) == 0 && S_ISDIR(st.st_mode)) {
		int dfd = open(arg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0)
			return nanoctl_errc(NANOCTL_EXIT_CONNECT, "%s: bundle %s: %s", what, arg,
			                    strerror(errno));
		int rc = bundle_read_address(dfd, out, len);
		close(dfd);
		if (rc < 0)
			return nanoctl_errc(NANOCTL_EXIT_CONNECT, "%s: bundle %s: %s file: %s",
			                    what, arg, BUNDLE_ADDRESS_FILE,
			                    rc == -EBADMSG ? "empty or not one line"
			                                   : strerror(-rc));
		return 0;
	}
	if (strlen(arg) >= len)
		return nanoctl_err("%s: socket address too long: %s", what, arg);
	strcpy(out, arg);
	return 0;
}

static int cmd_call(int argc, char **argv, const struct nanoctl_global *g)
{
	static const struct option longopts[] = {
	    {"namespace", required_argument, NULL, 'n'},
	    {"timeout", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	if (wants_help(argc, argv))
		return nanoctl_usage(call_usage);
	const char *ns = SHIM_DEFAULT_NAMESPACE;
	int64_t timeout_ns = 0;
	int c;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "n:t:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
			ns = optarg;
			break;
		case 't':
			if (nanoctl_parse_duration(optarg, &timeout_ns) < 0)
				return nanoctl_usage_err(
				    "shim call",
				    "--timeout: not a duration (500ms, 2s, 1m, 1.5s): "
				    "\"%s\"",
				    optarg);
			break;
		default:
			if (optopt == 'n' || optopt == 't')
				return nanoctl_usage_err("shim call", "%s needs a value",
				                         argv[optind - 1]);
			return nanoctl_usage_err("shim call", "unknown option %s",
			                         argv[optind - 1]);
		}
	}
	if (argc - optind < 2)
		return nanoctl_usage_err("shim call", "SOCKET|BUNDLE and METHOD expected");
	const char *target = argv[optind], *method = argv[optind + 1];
	char **fields = argv + optind + 2;
	int n_fields = argc - optind - 2;

	const ProtobufCServiceDescriptor *sd = &containerd__task__v2__task__descriptor;
	const ProtobufCMethodDescriptor *md = NULL;
	for (unsigned i = 0; i < sd->n_methods && !md; i++)
		if (pbjson_same_method(sd->methods[i].name, method))
			md = &sd->methods[i];
	if (!md) {
		char names[512] = "";
		size_t off = 0;
		for (unsigned i = 0; i < sd->n_methods && off < sizeof(names); i++)
			off += (size_t)snprintf(names + off, sizeof(names) - off, "%s%s",
			                        i ? ", " : "", sd->methods[i].name);
		return nanoctl_err("shim call: \"%s\" is not a method of %s (%s)", method,
		                   TASK_SERVICE, names);
	}
	char what[128];
	snprintf(what, sizeof(what), "shim call %s", md->name);

	ProtobufCMessage *req = pbjson_new(md->input);
	if (!req)
		return nanoctl_err("%s: out of memory", what);
	struct pbjson_error perr;
	int rc = 0;
	if (n_fields == 1 && fields[0][0] == '{') {
		rc = pbjson_parse(req, fields[0], &perr);
	} else {
		for (int i = 0; i < n_fields && rc == 0; i++)
			rc = pbjson_set_arg(req, fields[i], &perr);
	}
	if (rc < 0) {
		protobuf_c_message_free_unpacked(req, NULL);
		return nanoctl_err("%s: %s", what, perr.msg);
	}

	char address[PATH_MAX];
	rc = resolve_target(what, target, address, sizeof(address));
	if (rc) {
		protobuf_c_message_free_unpacked(req, NULL);
		return rc;
	}
	struct ttrpc_client *client;
	rc = ttrpc_client_connect(address, &client);
	if (rc < 0) {
		protobuf_c_message_free_unpacked(req, NULL);
		return nanoctl_errc(NANOCTL_EXIT_CONNECT, "%s: connect %s: %s", what, address,
		                    strerror(-rc));
	}
	struct ttrpc_kv md_kv[1] = {{NAMESPACE_KEY, ns}};
	struct ttrpc_call_opts opts = {
	    .timeout_ns = timeout_ns, .metadata = md_kv, .n_metadata = *ns ? 1 : 0};
	ProtobufCMessage *reply = NULL;
	struct ttrpc_status st;
	rc = ttrpc_client_call(client, TASK_SERVICE, md->name, req, md->output, &opts, &reply, &st);
	bool lost = rc != 0 && st.code == TTRPC_UNAVAILABLE && ttrpc_client_closed(client);
	if (rc == 0) {
		rc = print_json(what, reply);
	} else if (lost && md->output == &google__protobuf__empty__descriptor &&
	           !strcmp(md->name, "Shutdown")) {
		/* a shim may exit before its answer is out: containerd takes that as done */
		fputs("{}\n", stdout);
		rc = 0;
	} else if (lost) {
		rc = nanoctl_errc(NANOCTL_EXIT_CONNECT,
		                  "%s: %s closed the connection before answering", what, address);
	} else if (rc == -EIO) {
		rc = nanoctl_err("%s: %s: %s", what, ttrpc_code_name(st.code), st.message);
	} else {
		rc = nanoctl_errc(NANOCTL_EXIT_CONNECT, "%s: %s: %s", what, address, st.message);
	}
	if (reply)
		protobuf_c_message_free_unpacked(reply, NULL);
	ttrpc_client_free(client);
	protobuf_c_message_free_unpacked(req, NULL);
	return rc;
}

/* ---- shim upgrade ------------------------------------------------------------ */

static const char upgrade_usage[] =
    "usage: nanoctl shim upgrade [OPTIONS] SOCKET|BUNDLE BINARY\n"
    "\n"
    "Live upgrade of a running " SHIM_DEFAULT_BINARY ": it re-execs itself as BINARY\n"
    "(same pid) keeping its socket, its connections (containerd's included) and its\n"
    "containers' stdio; no container restarts (nanoshim.shim.v1.Upgrade/Upgrade).\n"
    "Prints the reply as JSON: pid, binary, state_version, duration_ns.\n"
    "\n"
    "  SOCKET|BUNDLE  a socket path, unix://PATH, or a bundle directory (its address file)\n"
    "  BINARY         the new shim binary (made absolute)\n"
    "  -t, --timeout DURATION  give up waiting after this long (default 30s)\n"
    "  -h, --help     this text\n"
    "\n"
    "The shim holds new requests back until what is in flight (runtime calls, an exit\n"
    "being announced, an event being delivered) has ended; Waits and queued events\n"
    "are carried. Refused, the shim serving on unchanged, when that takes more than\n"
    "10 s (retry),\n"
    "or when BINARY cannot take the shim's state (its -upgrade-version).\n"
    "Exit status: 0 upgraded; 1 refused (the reason on stderr).\n";

static int cmd_upgrade(int argc, char **argv, const struct nanoctl_global *g)
{
	static const struct option longopts[] = {
	    {"timeout", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {0},
	};
	if (wants_help(argc, argv))
		return nanoctl_usage(upgrade_usage);
	int64_t timeout_ns = 30 * 1000000000LL;
	int c;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "t:h", longopts, NULL)) != -1) {
		if (c == 't' && nanoctl_parse_duration(optarg, &timeout_ns) == 0)
			continue;
		if (c == 't')
			return nanoctl_usage_err("shim upgrade",
			                         "--timeout: not a duration (500ms, 2s, 1m): \"%s\"",
			                         optarg);
		if (optopt == 't')
			return nanoctl_usage_err("shim upgrade", "%s needs a value", argv[optind - 1]);
		return nanoctl_usage_err("shim upgrade", "unknown option %s", argv[optind - 1]);
	}
	if (argc - optind != 2)
		return nanoctl_usage_err("shim upgrade", "SOCKET|BUNDLE and BINARY expected");
	const char *what = "shim upgrade";
	char address[PATH_MAX], binary[PATH_MAX];
	int rc = resolve_target(what, argv[optind], address, sizeof(address));
	if (rc)
		return rc;
	if (absolute(argv[optind + 1], binary, sizeof(binary)) < 0)
		return nanoctl_err("%s: %s: path too long", what, argv[optind + 1]);
	struct ttrpc_client *client;
	rc = ttrpc_client_connect(address, &client);
	if (rc < 0)
		return nanoctl_errc(NANOCTL_EXIT_CONNECT, "%s: connect %s: %s", what, address,
		                    strerror(-rc));
	Nanoshim__Shim__V1__UpgradeRequest req = NANOSHIM__SHIM__V1__UPGRADE_REQUEST__INIT;
	req.binary = binary;
	struct ttrpc_call_opts opts = {.timeout_ns = timeout_ns};
	ProtobufCMessage *reply = NULL;
	struct ttrpc_status st;
	rc = ttrpc_client_call(client, "nanoshim.shim.v1.Upgrade", "Upgrade", &req.base,
	                       &nanoshim__shim__v1__upgrade_response__descriptor, &opts, &reply, &st);
	if (rc == 0)
		rc = print_json(what, reply);
	else if (rc == -EIO)
		rc = nanoctl_err("%s: %s: %s", what, ttrpc_code_name(st.code), st.message);
	else
		rc = nanoctl_errc(NANOCTL_EXIT_CONNECT, "%s: %s: %s", what, address, st.message);
	if (reply)
		protobuf_c_message_free_unpacked(reply, NULL);
	ttrpc_client_free(client);
	return rc;
}

/* ---- the group ---------------------------------------------------------------- */

static const struct nanoctl_command shim_cmds[] = {
    {"start", cmd_start, "run a shim binary's start action; print the address it serves",
     start_usage},
    {"call", cmd_call, "make one containerd.task.v2.Task call on a shim; print the reply as JSON",
     call_usage},
    {"delete", cmd_delete, "run a shim binary's delete action; print its DeleteResponse as JSON",
     delete_usage},
    {"upgrade", cmd_upgrade, "replace a running nano shim's binary in place (live upgrade)",
     upgrade_usage},
};
static const size_t n_shim_cmds = sizeof(shim_cmds) / sizeof(shim_cmds[0]);

static int cmd_shim(int argc, char **argv, const struct nanoctl_global *g)
{
	return nanoctl_run_group("shim", shim_cmds, n_shim_cmds, argc, argv, g);
}

const struct nanoctl_command nanoctl_shim_command = {
    "shim", cmd_shim, "start, call and delete a shim v2 by hand (any shim v2 binary)",
    "usage: nanoctl shim start|call|delete|upgrade ...\n"};
