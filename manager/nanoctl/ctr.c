/* nanoctl's container commands: each one a call (or a few) to nanoshimd's
 * nanoshim.v1.Manager API. Output of a foreground process comes from the log
 * files the shim writes (stdout/stderr paths in the container's record), so a
 * client can come and go without a byte lost; stdin goes into the process's
 * FIFO. The exit status of `run` and `wait` is the container's. */
#include "nanoctl.h"
#include "pbjson.h"
#include "task_events.h"
#include "ttrpc.h"

#include "nanoshim/v1/manager.pb-c.h"
#include "cgroups/v1/metrics.pb-c.h"
#include "cgroups/v2/metrics.pb-c.h"
#include "google/protobuf/empty.pb-c.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define SERVICE "nanoshim.v1.Manager"

static const ProtobufCMessageDescriptor *known_any(const char *type_url);
#define MAX_LIST 256
#define FOLLOW_POLL_MS 50

static const char *ns_of(const struct nanoctl_global *g)
{
	return g->namespace_ && g->namespace_[0] ? g->namespace_ : "default";
}

static struct ttrpc_client *dial(const struct nanoctl_global *g)
{
	struct ttrpc_client *c;
	int rc = ttrpc_client_connect(g->address, &c);
	if (rc < 0) {
		nanoctl_err("cannot reach nanoshimd at %s: %s", g->address, strerror(-rc));
		return NULL;
	}
	return c;
}

/* One call; on failure prints "nanoctl: <what>: <message>". 0, 1 or 2. */
static int call(struct ttrpc_client *c, const char *what, const char *method,
		const ProtobufCMessage *req, const ProtobufCMessageDescriptor *out_desc,
		ProtobufCMessage **out)
{
	struct ttrpc_status st;
	ProtobufCMessage *reply = NULL;
	int rc = ttrpc_client_call(c, SERVICE, method, req, out_desc, NULL, &reply, &st);
	if (rc != 0) {
		if (st.code == TTRPC_UNAVAILABLE && ttrpc_client_closed(c))
			return nanoctl_errc(NANOCTL_EXIT_CONNECT, "%s: nanoshimd closed the connection",
					    what);
		return nanoctl_err("%s: %s", what, st.message);
	}
	if (out)
		*out = reply;
	else
		protobuf_c_message_free_unpacked(reply, NULL);
	return 0;
}

/* Dials, calls, prints nothing: the common shape of the simple commands. */
static int simple(const struct nanoctl_global *g, const char *what, const char *method,
		  const ProtobufCMessage *req, const ProtobufCMessageDescriptor *out_desc,
		  ProtobufCMessage **out)
{
	struct ttrpc_client *c = dial(g);
	if (!c)
		return NANOCTL_EXIT_CONNECT;
	int rc = call(c, what, method, req, out_desc, out);
	ttrpc_client_free(c);
	return rc;
}

static int print_json(const ProtobufCMessage *m)
{
	struct pbjson_error e;
	char *s;
	if (pbjson_format(m, true, &s, &e) < 0)
		return nanoctl_err("output: %s", e.msg);
	fputs(s, stdout);
	free(s);
	return 0;
}

static const char *status_name(Nanoshim__V1__Status s)
{
	switch (s) {
	case NANOSHIM__V1__STATUS__STATUS_CREATED: return "CREATED";
	case NANOSHIM__V1__STATUS__STATUS_RUNNING: return "RUNNING";
	case NANOSHIM__V1__STATUS__STATUS_STOPPED: return "STOPPED";
	case NANOSHIM__V1__STATUS__STATUS_PAUSED: return "PAUSED";
	case NANOSHIM__V1__STATUS__STATUS_PAUSING: return "PAUSING";
	default: return "UNKNOWN";
	}
}

static int parse_signal(const char *s, uint32_t *out)
{
	static const struct {
		const char *name;
		int sig;
	} names[] = {{"HUP", SIGHUP}, {"INT", SIGINT}, {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
		     {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"TERM", SIGTERM}, {"CONT", SIGCONT},
		     {"STOP", SIGSTOP}, {"WINCH", SIGWINCH}, {"ABRT", SIGABRT}, {"ALRM", SIGALRM}};
	char *end;
	long v = strtol(s, &end, 10);
	if (*s && !*end && v > 0 && v < 65) {
		*out = (uint32_t)v;
		return 0;
	}
	const char *n = strncasecmp(s, "SIG", 3) == 0 ? s + 3 : s;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(n, names[i].name) == 0) {
			*out = (uint32_t)names[i].sig;
			return 0;
		}
	return -EINVAL;
}

/* ---- following a process: its log files out, our stdin in ---------------------- */

struct follow {
	int out_fd, err_fd; /* log files, read as they grow */
	int in_fd;	    /* the process's stdin FIFO, or -1 */
	bool stdin_open;
	struct termios saved;
	bool raw;
};

/* Copies what fd has now; how many bytes. */
static size_t drain(int fd, int to)
{
	char buf[65536];
	ssize_t n;
	size_t moved = 0;
	while (fd >= 0 && (n = read(fd, buf, sizeof(buf))) > 0) {
		moved += (size_t)n;
		if (write(to, buf, (size_t)n) < 0)
			break;
	}
	return moved;
}

/* After an exit with no Delete to follow: the Go shim reports an exit before
 * its copy into the log is done (ours never does), so the logs are read
 * until they have been still for SETTLE_MS (at most a second). */
#define SETTLE_MS 50
static void follow_settle(struct follow *f)
{
	for (int quiet = 0, waited = 0; quiet < SETTLE_MS && waited < 1000; waited += 10) {
		if (drain(f->out_fd, STDOUT_FILENO) + drain(f->err_fd, STDERR_FILENO))
			quiet = 0;
		else
			quiet += 10;
		poll(NULL, 0, 10);
	}
}

static void follow_open(struct follow *f, const Nanoshim__V1__Process *p, bool attach_stdin,
			bool tty)
{
	f->out_fd = p->stdout_path && p->stdout_path[0] ? open(p->stdout_path, O_RDONLY | O_CLOEXEC) : -1;
	f->err_fd = p->stderr_path && p->stderr_path[0] ? open(p->stderr_path, O_RDONLY | O_CLOEXEC) : -1;
	f->in_fd = -1;
	f->stdin_open = false;
	f->raw = false;
	if (attach_stdin && p->stdin_path && p->stdin_path[0]) {
		f->in_fd = open(p->stdin_path, O_WRONLY | O_CLOEXEC);
		f->stdin_open = f->in_fd >= 0;
	}
	if (tty && isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &f->saved) == 0) {
		struct termios raw = f->saved;
		cfmakeraw(&raw);
		f->raw = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
	}
}

static void follow_close(struct follow *f)
{
	drain(f->out_fd, STDOUT_FILENO);
	drain(f->err_fd, STDERR_FILENO);
	if (f->raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &f->saved);
	for (int *fd = &f->out_fd; fd <= &f->in_fd; fd++)
		if (*fd >= 0)
			close(*fd);
}

/* Forwards until the Wait reply is in; returns its exit status or -1. The
 * caller closes f: after its Delete, if it makes one, since a shim may still
 * be writing the last output when the exit is reported (the Go shim's copy
 * to a file:// log is done by the time it answers Delete). */
struct wait_state {
	bool done;
	int code;
	char msg[TTRPC_STATUS_MSG_MAX];
	uint32_t status;
};

static void on_wait_reply(const struct ttrpc_status *st, ProtobufCMessage *reply, void *ud)
{
	struct wait_state *w = ud;
	w->done = true;
	w->code = st->code;
	snprintf(w->msg, sizeof(w->msg), "%s", st->message);
	if (reply) {
		w->status = ((Nanoshim__V1__ExitStatus *)reply)->exit_status;
		protobuf_c_message_free_unpacked(reply, NULL);
	}
}

static void on_closeio_reply(const struct ttrpc_status *st, ProtobufCMessage *reply, void *ud)
{
	if (reply)
		protobuf_c_message_free_unpacked(reply, NULL);
}

static int follow_until_exit(struct ttrpc_client *c, struct follow *f, const char *ns,
			     const char *id, const char *exec_id, const char *what)
{
	Nanoshim__V1__ProcessRef ref = NANOSHIM__V1__PROCESS_REF__INIT;
	ref.namespace_ = (char *)ns;
	ref.id = (char *)id;
	ref.exec_id = (char *)(exec_id ? exec_id : "");
	struct wait_state w = {0};
	if (ttrpc_client_call_async(c, SERVICE, "Wait", &ref.base, &nanoshim__v1__exit_status__descriptor,
				    NULL, on_wait_reply, &w) < 0)
		return nanoctl_err("%s: wait: cannot send", what);
	while (!w.done) {
		struct pollfd p[2] = {{ttrpc_client_fd(c), POLLIN, 0},
				      {f->stdin_open ? STDIN_FILENO : -1, POLLIN, 0}};
		poll(p, 2, FOLLOW_POLL_MS);
		if (p[0].revents)
			ttrpc_client_dispatch(c);
		if (f->stdin_open && (p[1].revents & (POLLIN | POLLHUP))) {
			char buf[4096];
			ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
			if (n <= 0 || write(f->in_fd, buf, (size_t)n) < 0) {
				close(f->in_fd);
				f->in_fd = -1;
				f->stdin_open = false;
				Nanoshim__V1__ProcessRef cr = ref;
				ttrpc_client_call_async(c, SERVICE, "CloseIO", &cr.base,
							&google__protobuf__empty__descriptor, NULL,
							on_closeio_reply, NULL);
			}
		}
		drain(f->out_fd, STDOUT_FILENO);
		drain(f->err_fd, STDERR_FILENO);
		if (ttrpc_client_closed(c) && !w.done)
			ttrpc_client_dispatch(c);
	}
	if (w.code != TTRPC_OK)
		return nanoctl_errc(w.code == TTRPC_UNAVAILABLE ? NANOCTL_EXIT_CONNECT : NANOCTL_EXIT_FAIL,
				    "%s: wait: %s", what, w.msg);
	return (int)(w.status > 255 ? 255 : w.status);
}

static void resize(struct ttrpc_client *c, const char *ns, const char *id, const char *exec_id)
{
	struct winsize ws;
	if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) < 0)
		return;
	Nanoshim__V1__ResizePtyRequest r = NANOSHIM__V1__RESIZE_PTY_REQUEST__INIT;
	r.namespace_ = (char *)ns;
	r.id = (char *)id;
	r.exec_id = (char *)(exec_id ? exec_id : "");
	r.width = ws.ws_col;
	r.height = ws.ws_row;
	call(c, "resize", "ResizePty", &r.base, &google__protobuf__empty__descriptor, NULL);
}

/* ---- create / run ------------------------------------------------------------------ */

struct strv {
	char **v;
	size_t n;
};

static void strv_add(struct strv *s, char *x)
{
	char **nv = realloc(s->v, (s->n + 1) * sizeof(char *));
	if (!nv)
		abort();
	s->v = nv;
	s->v[s->n++] = x;
}

enum { O_RM = 256, O_ROOTFS, O_BUNDLE, O_ENV, O_CWD, O_USER, O_NET, O_CAP_ADD, O_CAP_DROP,
       O_MEMORY, O_CPUS, O_RUNTIME, O_HOSTNAME, O_READONLY, O_EXEC_ID, O_ALL, O_SINCE,
       O_NO_FOLLOW };

static const struct option create_opts[] = {
	{"detach", no_argument, NULL, 'd'},
	{"tty", no_argument, NULL, 't'},
	{"interactive", no_argument, NULL, 'i'},
	{"rm", no_argument, NULL, O_RM},
	{"rootfs", required_argument, NULL, O_ROOTFS},
	{"bundle", required_argument, NULL, O_BUNDLE},
	{"env", required_argument, NULL, O_ENV},
	{"cwd", required_argument, NULL, O_CWD},
	{"user", required_argument, NULL, O_USER},
	{"net", required_argument, NULL, O_NET},
	{"cap-add", required_argument, NULL, O_CAP_ADD},
	{"cap-drop", required_argument, NULL, O_CAP_DROP},
	{"memory", required_argument, NULL, O_MEMORY},
	{"cpus", required_argument, NULL, O_CPUS},
	{"runtime-binary", required_argument, NULL, O_RUNTIME},
	{"hostname", required_argument, NULL, O_HOSTNAME},
	{"read-only", no_argument, NULL, O_READONLY},
	{"help", no_argument, NULL, 'h'},
	{0},
};

static int parse_size(const char *s, int64_t *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return -EINVAL;
	double mult = 1;
	switch (*end) {
	case 'k': case 'K': mult = 1024.0; end++; break;
	case 'm': case 'M': mult = 1024.0 * 1024; end++; break;
	case 'g': case 'G': mult = 1024.0 * 1024 * 1024; end++; break;
	}
	if (*end == 'b' || *end == 'B')
		end++;
	if (*end)
		return -EINVAL;
	*out = (int64_t)(v * mult);
	return 0;
}

static int run_or_create(int argc, char **argv, const struct nanoctl_global *g, bool run,
			 const struct nanoctl_command *self)
{
	Nanoshim__V1__CreateRequest q = NANOSHIM__V1__CREATE_REQUEST__INIT;
	struct strv env = {0}, add = {0}, drop = {0};
	bool detach = !run, rm = false;
	int o;
	optind = 1;
	opterr = 0;
	while ((o = getopt_long(argc, argv, "+dtih", create_opts, NULL)) != -1) {
		switch (o) {
		case 'd': detach = true; break;
		case 't': q.terminal = true; break;
		case 'i': q.stdin = true; break;
		case O_RM: rm = true; break;
		case O_ROOTFS: q.rootfs = optarg; break;
		case O_BUNDLE: q.bundle = optarg; break;
		case O_ENV: strv_add(&env, optarg); break;
		case O_CWD: q.cwd = optarg; break;
		case O_USER: q.user = optarg; break;
		case O_NET:
			if (strcmp(optarg, "none") == 0)
				q.net = NANOSHIM__V1__NET_MODE__NET_NONE;
			else if (strcmp(optarg, "host") == 0)
				q.net = NANOSHIM__V1__NET_MODE__NET_HOST;
			else
				return nanoctl_usage_err(self->name, "--net %s: give none or host", optarg);
			break;
		case O_CAP_ADD: strv_add(&add, optarg); break;
		case O_CAP_DROP: strv_add(&drop, optarg); break;
		case O_MEMORY:
			if (parse_size(optarg, &q.memory) < 0)
				return nanoctl_usage_err(self->name, "--memory %s: a size (bytes, or 64m, 1g)", optarg);
			break;
		case O_CPUS: {
			char *end;
			q.cpus = strtod(optarg, &end);
			if (*end || q.cpus <= 0)
				return nanoctl_usage_err(self->name, "--cpus %s: a positive number", optarg);
			break;
		}
		case O_RUNTIME: q.runtime_binary = optarg; break;
		case O_HOSTNAME: q.hostname = optarg; break;
		case O_READONLY: q.readonly_rootfs = true; break;
		case 'h': return nanoctl_usage(self->usage);
		default: return nanoctl_usage_err(self->name, "unknown option %s", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return nanoctl_usage_err(self->name, "no container id");
	q.id = argv[optind++];
	/* the request's strings start as protobuf-c's "", never NULL */
	bool has_rootfs = q.rootfs && q.rootfs[0], has_bundle = q.bundle && q.bundle[0];
	if (!has_bundle && !has_rootfs)
		return nanoctl_usage_err(self->name, "give --rootfs DIR or --bundle DIR");
	char absbuf[2][4096];
	const char **paths[2] = {(const char **)&q.rootfs, (const char **)&q.bundle};
	for (int i = 0; i < 2; i++)
		if (*paths[i] && (*paths[i])[0] && (*paths[i])[0] != '/' && realpath(*paths[i], absbuf[i]))
			*paths[i] = absbuf[i];
	if (has_rootfs && optind >= argc)
		return nanoctl_usage_err(self->name, "no command to run in %s", q.id);
	q.n_args = (size_t)(argc - optind);
	q.args = argv + optind;
	q.namespace_ = (char *)ns_of(g);
	q.n_env = env.n;
	q.env = env.v;
	q.n_cap_add = add.n;
	q.cap_add = add.v;
	q.n_cap_drop = drop.n;
	q.cap_drop = drop.v;
	char what[300];
	snprintf(what, sizeof(what), "%s %s", self->name, q.id);
	struct ttrpc_client *c = dial(g);
	if (!c)
		return NANOCTL_EXIT_CONNECT;
	ProtobufCMessage *out = NULL;
	int rc = call(c, what, "Create", &q.base, &nanoshim__v1__container__descriptor, &out);
	free(env.v);
	free(add.v);
	free(drop.v);
	if (rc || !run) {
		if (out)
			protobuf_c_message_free_unpacked(out, NULL);
		ttrpc_client_free(c);
		return rc;
	}
	Nanoshim__V1__Container *ct = (void *)out;
	struct follow f;
	if (!detach)
		follow_open(&f, ct->init, q.stdin, q.terminal);
	Nanoshim__V1__ProcessRef ref = NANOSHIM__V1__PROCESS_REF__INIT;
	ref.namespace_ = (char *)ns_of(g);
	ref.id = q.id;
	/* the pty exists once created: sized before the process runs */
	if (q.terminal && !detach)
		resize(c, ns_of(g), q.id, NULL);
	rc = call(c, what, "Start", &ref.base, &nanoshim__v1__start_response__descriptor, NULL);
	if (rc == 0 && !detach)
		rc = follow_until_exit(c, &f, ns_of(g), q.id, NULL, what);
	protobuf_c_message_free_unpacked(out, NULL);
	if (rm && !detach) {
		Nanoshim__V1__DeleteRequest d = NANOSHIM__V1__DELETE_REQUEST__INIT;
		d.namespace_ = (char *)ns_of(g);
		d.id = q.id;
		d.force = true;
		int r2 = call(c, what, "Delete", &d.base, &nanoshim__v1__exit_status__descriptor, NULL);
		if (rc == 0)
			rc = r2;
	} else if (!detach) {
		follow_settle(&f);
	}
	if (!detach)
		follow_close(&f);
	ttrpc_client_free(c);
	return rc;
}

#define CREATE_FLAGS                                                                          \
	"  --rootfs DIR | --bundle DIR   a root filesystem (config.json generated) or an OCI bundle\n" \
	"  -t, --tty                     a terminal\n"                                            \
	"  -i, --interactive             keep stdin open (a FIFO)\n"                              \
	"  --env K=V                     add to the environment (repeatable)\n"                   \
	"  --cwd DIR, --user UID[:GID]|NAME, --hostname NAME, --read-only\n"                      \
	"  --net none|host               a new network namespace with lo up (default), or the host's\n" \
	"  --cap-add CAP, --cap-drop CAP capabilities by name (CAP_NET_ADMIN, net_admin, ALL)\n"  \
	"  --memory SIZE, --cpus N       limits (64m, 1g; 0.5)\n"                                 \
	"  --runtime-binary PATH         the OCI runtime for this container (default nanoshimd's)\n"

static int cmd_run(int argc, char **argv, const struct nanoctl_global *g);
static int cmd_create(int argc, char **argv, const struct nanoctl_global *g);

const struct nanoctl_command nanoctl_run_command = {
	"run", cmd_run, "create and start a container, and follow it unless -d",
	"usage: nanoctl run [-d] [-t] [-i] [--rm] [FLAGS] ID CMD [ARG...]\n\n"
	"Creates and starts container ID. In the foreground its output is copied here and\n"
	"nanoctl exits with its exit status; -d returns once it runs.\n\n"
	"  -d, --detach                  do not follow it\n"
	"  --rm                          delete it once it has exited (foreground only)\n" CREATE_FLAGS};

const struct nanoctl_command nanoctl_create_command = {
	"create", cmd_create, "create a container (start it with `start`)",
	"usage: nanoctl create [-t] [-i] [FLAGS] ID CMD [ARG...]\n\n" CREATE_FLAGS};

static int cmd_run(int argc, char **argv, const struct nanoctl_global *g)
{
	return run_or_create(argc, argv, g, true, &nanoctl_run_command);
}

static int cmd_create(int argc, char **argv, const struct nanoctl_global *g)
{
	return run_or_create(argc, argv, g, false, &nanoctl_create_command);
}

/* ---- the one-id commands ------------------------------------------------------------------ */

static const struct option id_opts[] = {
	{"signal", required_argument, NULL, 's'},
	{"all", no_argument, NULL, O_ALL},
	{"exec-id", required_argument, NULL, O_EXEC_ID},
	{"force", no_argument, NULL, 'f'},
	{"follow", no_argument, NULL, 'F'},
	{"memory", required_argument, NULL, O_MEMORY},
	{"cpus", required_argument, NULL, O_CPUS},
	{"tty", no_argument, NULL, 't'},
	{"interactive", no_argument, NULL, 'i'},
	{"detach", no_argument, NULL, 'd'},
	{"env", required_argument, NULL, O_ENV},
	{"cwd", required_argument, NULL, O_CWD},
	{"user", required_argument, NULL, O_USER},
	{"since", required_argument, NULL, O_SINCE},
	{"no-follow", no_argument, NULL, O_NO_FOLLOW},
	{"help", no_argument, NULL, 'h'},
	{0},
};

struct idargs {
	const char *id, *exec_id, *since;
	uint32_t signal;
	bool all, force, follow, tty, stdin, detach, no_follow;
	int64_t memory;
	double cpus;
	struct strv env;
	const char *cwd, *user;
	int first_arg; /* argv index after the id */
};

/* Parses the flags every one-id command shares; `allowed` lists the short
 * names of those this command takes. -1 on a usage error (printed). */
static int parse_id(int argc, char **argv, const struct nanoctl_command *self, const char *allowed,
		    bool need_id, struct idargs *a)
{
	memset(a, 0, sizeof(*a));
	int o;
	optind = 1;
	opterr = 0;
	while ((o = getopt_long(argc, argv, "+s:fFtidh", id_opts, NULL)) != -1) {
		if (o == 'h') {
			nanoctl_usage(self->usage);
			return 0;
		}
		if (o == 'f' && !strchr(allowed, 'f') && strchr(allowed, 'F'))
			o = 'F'; /* logs -f: follow, as docker's and ctr's */
		char key = o == O_ALL ? 'a' : o == O_EXEC_ID ? 'x' : o == O_MEMORY ? 'm' : o == O_CPUS ? 'c'
			 : o == O_ENV ? 'e' : o == O_CWD ? 'w' : o == O_USER ? 'u' : o == O_SINCE ? 'S'
			 : o == O_NO_FOLLOW ? 'N' : (char)o;
		if (o == '?' || !strchr(allowed, key)) {
			nanoctl_usage_err(self->name, "unknown option %s", argv[optind - 1]);
			return -1;
		}
		switch (o) {
		case 's':
			if (parse_signal(optarg, &a->signal) < 0) {
				nanoctl_usage_err(self->name, "-s %s: not a signal (TERM, KILL, 9, ...)", optarg);
				return -1;
			}
			break;
		case O_ALL: a->all = true; break;
		case O_EXEC_ID: a->exec_id = optarg; break;
		case 'f': a->force = true; break;
		case 'F': a->follow = true; break;
		case 't': a->tty = true; break;
		case 'i': a->stdin = true; break;
		case 'd': a->detach = true; break;
		case O_ENV: strv_add(&a->env, optarg); break;
		case O_CWD: a->cwd = optarg; break;
		case O_USER: a->user = optarg; break;
		case O_SINCE: a->since = optarg; break;
		case O_NO_FOLLOW: a->no_follow = true; break;
		case O_MEMORY:
			if (parse_size(optarg, &a->memory) < 0 || a->memory <= 0) {
				nanoctl_usage_err(self->name, "--memory %s: a size (bytes, or 64m, 1g)", optarg);
				return -1;
			}
			break;
		case O_CPUS: {
			char *end;
			a->cpus = strtod(optarg, &end);
			if (*end || a->cpus <= 0) {
				nanoctl_usage_err(self->name, "--cpus %s: a positive number", optarg);
				return -1;
			}
			break;
		}
		}
	}
	if (need_id) {
		if (optind >= argc) {
			nanoctl_usage_err(self->name, "no container id");
			return -1;
		}
		a->id = argv[optind++];
	}
	a->first_arg = optind;
	return 1;
}

#define ID_COMMAND(cname, fn, help, usage)                                                      \
	static int fn(int argc, char **argv, const struct nanoctl_global *g);                     \
	const struct nanoctl_command nanoctl_##cname##_command = {#cname, fn, help, usage};

ID_COMMAND(start, cmd_start, "start a created container", "usage: nanoctl start ID\n")
ID_COMMAND(kill, cmd_kill, "signal a container's process (default TERM)",
	   "usage: nanoctl kill [-s SIG] [--all] [--exec-id X] ID\n\n"
	   "  -s, --signal SIG  a name (TERM, KILL, SIGHUP) or number\n"
	   "  --all             every process of the container\n")
ID_COMMAND(pause, cmd_pause, "freeze a container", "usage: nanoctl pause ID\n")
ID_COMMAND(resume, cmd_resume, "thaw a paused container", "usage: nanoctl resume ID\n")
ID_COMMAND(update, cmd_update, "change a container's limits",
	   "usage: nanoctl update [--memory SIZE] [--cpus N] ID\n")
ID_COMMAND(stats, cmd_stats, "a container's cgroup and network counters, as JSON",
	   "usage: nanoctl stats ID\n")
ID_COMMAND(wait, cmd_wait, "wait for a process to exit; exits with its status",
	   "usage: nanoctl wait [--exec-id X] ID\n")
ID_COMMAND(rm, cmd_rm, "delete a stopped container (-f: kill it first)",
	   "usage: nanoctl rm [-f] [--exec-id X] ID\n")
ID_COMMAND(ps, cmd_ps, "the processes of a container", "usage: nanoctl ps ID\n")
ID_COMMAND(logs, cmd_logs, "a process's output (-f: follow it until it exits)",
	   "usage: nanoctl logs [-f] [--exec-id X] ID\n")
ID_COMMAND(get, cmd_get, "a container's record, as JSON", "usage: nanoctl get ID\n")
ID_COMMAND(exec, cmd_exec, "run another process in a running container",
	   "usage: nanoctl exec [-t] [-i] [-d] --exec-id X [--env K=V] [--cwd DIR] ID CMD [ARG...]\n\n"
	   "In the foreground its output is copied here and nanoctl exits with its status;\n"
	   "the exec is deleted once it has exited. -d leaves it running.\n")

#define ID_PARSE(allowed, need)                                                                 \
	struct idargs a;                                                                        \
	int prc = parse_id(argc, argv, &nanoctl_##allowed##_command, ALLOWED_##allowed, need, &a); \
	if (prc <= 0)                                                                           \
		return prc < 0 ? NANOCTL_EXIT_FAIL : NANOCTL_EXIT_OK;                           \
	char what[300];                                                                         \
	snprintf(what, sizeof(what), "%s %s", argv[0], a.id ? a.id : "");                       \
	if (a.first_arg < argc && !ALLOW_ARGS_##allowed)                                        \
		return nanoctl_usage_err(argv[0], "unexpected argument %s", argv[a.first_arg]);

#define ALLOWED_start ""
#define ALLOWED_kill "sax"
#define ALLOWED_pause ""
#define ALLOWED_resume ""
#define ALLOWED_update "mc"
#define ALLOWED_stats ""
#define ALLOWED_wait "x"
#define ALLOWED_rm "fx"
#define ALLOWED_ps ""
#define ALLOWED_logs "Fx"
#define ALLOWED_get ""
#define ALLOWED_exec "xtideuw"
#define ALLOWED_events "SN"
#define ALLOW_ARGS_events 0
#define ALLOW_ARGS_start 0
#define ALLOW_ARGS_kill 0
#define ALLOW_ARGS_pause 0
#define ALLOW_ARGS_resume 0
#define ALLOW_ARGS_update 0
#define ALLOW_ARGS_stats 0
#define ALLOW_ARGS_wait 0
#define ALLOW_ARGS_rm 0
#define ALLOW_ARGS_ps 0
#define ALLOW_ARGS_logs 0
#define ALLOW_ARGS_get 0
#define ALLOW_ARGS_exec 1

static int cmd_start(int argc, char **argv, const struct nanoctl_global *g)
{
	ID_PARSE(start, true)
	Nanoshim__V1__ProcessRef r = NANOSHIM__V1__PROCESS_REF__INIT;
	r.namespace_ = (char *)ns_of(g);
	r.id = (char *)a.id;
	return simple(g, what, "Start", &r.base, &nanoshim__v1__start_response__descriptor, NULL);
}

static int cmd_kill(int argc, char **argv, const struct nanoctl_global *g)
{
	ID_PARSE(kill, true)
	Nanoshim__V1__KillRequest r = NANOSHIM__V1__KILL_REQUEST__INIT;
	r.namespace_ = (char *)ns_of(g);
	r.id = (char *)a.id;
	r.exec_id = (char *)(a.exec_id ? a.exec_id : "");
	r.signal = a.signal ? a.signal : SIGTERM;
	r.all = a.all;
	return simple(g, what, "Kill", &r.base, &google__protobuf__empty__descriptor, NULL);
}

static int ref_call(const struct nanoctl_global *g, const char *what, const char *method,
		    const char *id)
{
	Nanoshim__V1__ContainerRef r = NANOSHIM__V1__CONTAINER_REF__INIT;
	r.namespace_ = (char *)ns_of(g);
	r.id = (char *)id;
	return simple(g, what, method, &r.base, &google__protobuf__empty__descriptor, NULL);
}

static int cmd_pause(int argc, char **argv, const struct nanoctl_global *g)
{
	ID_PARSE(pause, true)
	return ref_call(g, what, "Pause", a.id);
}

static int cmd_resume(int argc, char **argv, const struct nanoctl_global *g)
{
	ID_PARSE(resume, true)
	return ref_call(g, what, "Resume", a.id);
}

static int cmd_update(int argc, char **argv, const struct nanoctl_global *g)
{
	ID_PARSE(update, true)
	if (!a.memory && !a.cpus)
		return nanoctl_usage_err(argv[0], "give --memory or --cpus");
	Nanoshim__V1__UpdateRequest r = NANOSHIM__V1__UPDATE_REQUEST__INIT;
	r.namespace_ = (char *)ns_of(g);
	r.id = (char *)a.id;
	r.memory = a.memory;
	r.cpus = a.cpus;
	return simple(g, what, "Update", &r.base, &google__protobuf__empty__descriptor, NULL);
}

static int cmd_stats(int argc, char **argv, const struct nanoctl_global *g)
{
	ID_PARSE(stats, true)
	Nanoshim__V1__ContainerRef r = NANOSHIM__V1__CONTAINER_REF__INIT;
	r.namespace_ = (char *)ns_of(g);
	r.id = (char *)a.id;
	ProtobufCMessage *out;
	int rc = simple(g, what, "Stats", &r.base, &nanoshim__v1__stats_response__descriptor, &out);
	if (rc)
		return rc;
	pbjson_set_any_resolver(known_any); /* the metrics as JSON, not base64 */
	rc = print_json(out);
	protobuf_c_message_free_unpacked(out, NULL);
	return rc;
}

static int cmd_wait(int argc, char **argv, const struct nanoctl_global *g)
{
	ID_PARSE(wait, true)
	Nanoshim__V1__ProcessRef r = NANOSHIM__V1__PROCESS_REF__INIT;
	r.namespace_ = (char *)ns_of(g);
	r.id = (char *)a.id;
	r.exec_id = (char *)(a.exec_id ? a.exec_id : "");
	ProtobufCMessage *out;
	int rc = simple(g, what, "Wait", &r.base, &nanoshim__v1__exit_status__descriptor, &out);
	if (rc)
		return rc;
	uint32_t st = ((Nanoshim__V1__ExitStatus *)out)->exit_status;
	protobuf_c_message_free_unpacked(out, NULL);
	return (int)(st > 255 ? 255 : st);
}

static int cmd_rm(int argc, char **argv, const struct nanoctl_global *g)
{
	ID_PARSE(rm, true)
	Nanoshim__V1__DeleteRequest r = NANOSHIM__V1__DELETE_REQUEST__INIT;
	r.namespace_ = (char *)ns_of(g);
	r.id = (char *)a.id;
	r.exec_id = (char *)(a.exec_id ? a.exec_id : "");
	r.force = a.force;
	return simple(g, what, "Delete", &r.base, &nanoshim__v1__exit_status__descriptor, NULL);
}

static int cmd_ps(int argc, char **argv, const struct nanoctl_global *g)
{
	ID_PARSE(ps, true)
	Nanoshim__V1__ContainerRef r = NANOSHIM__V1__CONTAINER_REF__INIT;
	r.namespace_ = (char *)ns_of(g);
	r.id = (char *)a.id;
	ProtobufCMessage *out;
	int rc = simple(g, what, "Pids", &r.base, &nanoshim__v1__pids_response__descriptor, &out);
	if (rc)
		return rc;
	Nanoshim__V1__PidsResponse *p = (void *)out;
	printf("%-10s %s\n", "PID", "EXEC");
	for (size_t i = 0; i < p->n_processes; i++)
		printf("%-10" PRIu32 " %s\n", p->processes[i]->pid,
		       p->processes[i]->exec_id[0] ? p->processes[i]->exec_id : "-");
	protobuf_c_message_free_unpacked(out, NULL);
	return 0;
}

static Nanoshim__V1__Container *get(struct ttrpc_client *c, const struct nanoctl_global *g,
				    const char *id, const char *what, int *rc)
{
	Nanoshim__V1__ContainerRef r = NANOSHIM__V1__CONTAINER_REF__INIT;
	r.namespace_ = (char *)ns_of(g);
	r.id = (char *)id;
	ProtobufCMessage *out = NULL;
	*rc = call(c, what, "Get", &r.base, &nanoshim__v1__container__descriptor, &out);
	return (Nanoshim__V1__Container *)out;
}

static const Nanoshim__V1__Process *proc_of(const Nanoshim__V1__Container *ct, const char *exec_id)
{
	if (!exec_id || !exec_id[0])
		return ct->init;
	for (size_t i = 0; i < ct->n_execs; i++)
		if (strcmp(ct->execs[i]->exec_id, exec_id) == 0)
			return ct->execs[i];
	return NULL;
}

static int cmd_logs(int argc, char **argv, const struct nanoctl_global *g)
{
	ID_PARSE(logs, true)
	struct ttrpc_client *c = dial(g);
	if (!c)
		return NANOCTL_EXIT_CONNECT;
	int rc;
	Nanoshim__V1__Container *ct = get(c, g, a.id, what, &rc);
	const Nanoshim__V1__Process *p = ct ? proc_of(ct, a.exec_id) : NULL;
	if (ct && !p)
		rc = nanoctl_err("%s: no exec \"%s\"", what, a.exec_id);
	if (p) {
		struct follow f;
		follow_open(&f, p, false, false);
		if (a.follow && p->status != NANOSHIM__V1__STATUS__STATUS_STOPPED) {
			rc = follow_until_exit(c, &f, ns_of(g), a.id, a.exec_id, what) < 0;
			follow_settle(&f);
		}
		follow_close(&f);
		rc = rc > 1 ? 0 : rc; /* the exit status is not logs' */
	}
	if (ct)
		protobuf_c_message_free_unpacked(&ct->base, NULL);
	ttrpc_client_free(c);
	return rc;
}

static int cmd_get(int argc, char **argv, const struct nanoctl_global *g)
{
	ID_PARSE(get, true)
	Nanoshim__V1__ContainerRef r = NANOSHIM__V1__CONTAINER_REF__INIT;
	r.namespace_ = (char *)ns_of(g);
	r.id = (char *)a.id;
	ProtobufCMessage *out;
	int rc = simple(g, what, "Get", &r.base, &nanoshim__v1__container__descriptor, &out);
	if (rc)
		return rc;
	rc = print_json(out);
	protobuf_c_message_free_unpacked(out, NULL);
	return rc;
}

static int cmd_exec(int argc, char **argv, const struct nanoctl_global *g)
{
	ID_PARSE(exec, true)
	if (!a.exec_id)
		return nanoctl_usage_err(argv[0], "give --exec-id X");
	if (a.first_arg >= argc)
		return nanoctl_usage_err(argv[0], "no command to run in %s", a.id);
	Nanoshim__V1__ExecRequest r = NANOSHIM__V1__EXEC_REQUEST__INIT;
	r.namespace_ = (char *)ns_of(g);
	r.id = (char *)a.id;
	r.exec_id = (char *)a.exec_id;
	r.n_args = (size_t)(argc - a.first_arg);
	r.args = argv + a.first_arg;
	r.n_env = a.env.n;
	r.env = a.env.v;
	r.cwd = (char *)(a.cwd ? a.cwd : "");
	r.user = (char *)(a.user ? a.user : "");
	r.terminal = a.tty;
	r.stdin = a.stdin;
	struct winsize ws;
	if (a.tty && ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0) {
		r.console_width = ws.ws_col;
		r.console_height = ws.ws_row;
	}
	struct ttrpc_client *c = dial(g);
	if (!c) {
		free(a.env.v);
		return NANOCTL_EXIT_CONNECT;
	}
	int rc = call(c, what, "Exec", &r.base, &nanoshim__v1__start_response__descriptor, NULL);
	free(a.env.v);
	if (rc == 0 && !a.detach) {
		int grc;
		Nanoshim__V1__Container *ct = get(c, g, a.id, what, &grc);
		const Nanoshim__V1__Process *p = ct ? proc_of(ct, a.exec_id) : NULL;
		if (!p) {
			rc = grc ? grc : nanoctl_err("%s: exec %s vanished", what, a.exec_id);
		} else {
			struct follow f;
			follow_open(&f, p, a.stdin, a.tty);
			/* no resize here: the size went in the request (the process
			 * spec's consoleSize), and a quick exec may be gone already */
			rc = follow_until_exit(c, &f, ns_of(g), a.id, a.exec_id, what);
			Nanoshim__V1__DeleteRequest d = NANOSHIM__V1__DELETE_REQUEST__INIT;
			d.namespace_ = (char *)ns_of(g);
			d.id = (char *)a.id;
			d.exec_id = (char *)a.exec_id;
			call(c, what, "Delete", &d.base, &nanoshim__v1__exit_status__descriptor, NULL);
			follow_close(&f);
		}
		if (ct)
			protobuf_c_message_free_unpacked(&ct->base, NULL);
	}
	ttrpc_client_free(c);
	return rc;
}

/* ---- ls, events, info ----------------------------------------------------------------------- */

static int cmd_ls(int argc, char **argv, const struct nanoctl_global *g);
const struct nanoctl_command nanoctl_ls_command = {
	"ls", cmd_ls, "list containers (ID, PID, STATUS)", "usage: nanoctl ls [--quiet]\n"};

static int cmd_ls(int argc, char **argv, const struct nanoctl_global *g)
{
	bool quiet = argc > 1 && (strcmp(argv[1], "-q") == 0 || strcmp(argv[1], "--quiet") == 0);
	if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))
		return nanoctl_usage(nanoctl_ls_command.usage);
	if (argc > 1 + quiet)
		return nanoctl_usage_err("ls", "unexpected argument %s", argv[1 + quiet]);
	Nanoshim__V1__ListRequest r = NANOSHIM__V1__LIST_REQUEST__INIT;
	r.namespace_ = (char *)ns_of(g);
	ProtobufCMessage *out;
	int rc = simple(g, "ls", "List", &r.base, &nanoshim__v1__list_response__descriptor, &out);
	if (rc)
		return rc;
	Nanoshim__V1__ListResponse *l = (void *)out;
	if (!quiet)
		printf("%-32s %-10s %s\n", "ID", "PID", "STATUS");
	for (size_t i = 0; i < l->n_containers; i++) {
		const Nanoshim__V1__Container *ct = l->containers[i];
		if (quiet) {
			printf("%s\n", ct->id);
			continue;
		}
		char st[64];
		snprintf(st, sizeof(st), "%s", status_name(ct->init ? ct->init->status : 0));
		if (ct->init && ct->init->status == NANOSHIM__V1__STATUS__STATUS_STOPPED)
			snprintf(st, sizeof(st), "STOPPED (%" PRIu32 ")", ct->init->exit_status);
		printf("%-32s %-10" PRIu32 " %s\n", ct->id, ct->init ? ct->init->pid : 0, st);
	}
	protobuf_c_message_free_unpacked(out, NULL);
	return 0;
}

static int cmd_events(int argc, char **argv, const struct nanoctl_global *g);
const struct nanoctl_command nanoctl_events_command = {
	"events", cmd_events, "replay retained events, then follow new ones (JSON lines)",
	"usage: nanoctl events [--since TIME] [--no-follow]\n\n"
	"  --since TIME   replay events from TIME: RFC 3339 (2026-12-06T05:00:00Z), or a\n"
	"                 duration ago (10m, 1h); events nanoshimd learned while it was down\n"
	"                 are among them\n"
	"  --no-follow    stop after the replay\n"};

/* The containerd events a shim publishes, and the cgroup metrics of stats. */
static const ProtobufCMessageDescriptor *known_any(const char *type_url)
{
	const ProtobufCMessageDescriptor *d = containerd_task_event(type_url);
	if (d)
		return d;
	static const ProtobufCMessageDescriptor *const metrics[] = {
		&io__containerd__cgroups__v1__metrics__descriptor,
		&io__containerd__cgroups__v2__metrics__descriptor,
	};
	for (size_t i = 0; i < sizeof(metrics) / sizeof(metrics[0]); i++)
		if (strcmp(metrics[i]->name, containerd_type_name(type_url)) == 0)
			return metrics[i];
	return NULL;
}

static void on_event(ProtobufCMessage *msg, void *ud)
{
	struct pbjson_error e;
	char *s;
	if (pbjson_format(msg, false, &s, &e) == 0) {
		printf("%s\n", s);
		fflush(stdout);
		free(s);
	}
	protobuf_c_message_free_unpacked(msg, NULL);
}

static void on_events_done(const struct ttrpc_status *st, ProtobufCMessage *reply, void *ud)
{
	struct ttrpc_status *out = ud;
	*out = *st;
	out->code = st->code == TTRPC_OK ? -1 : st->code; /* -1: ended cleanly */
	if (reply)
		protobuf_c_message_free_unpacked(reply, NULL);
}

static int cmd_events(int argc, char **argv, const struct nanoctl_global *g)
{
	ID_PARSE(events, false)
	Nanoshim__V1__EventsRequest r = NANOSHIM__V1__EVENTS_REQUEST__INIT;
	Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	if (a.since) {
		int64_t sec;
		int32_t nsec;
		char *end;
		double v = strtod(a.since, &end);
		if (pbjson_parse_timestamp(a.since, &sec, &nsec) == 0) {
			ts.seconds = sec;
			ts.nanos = nsec;
		} else if (end != a.since && (*end == 's' || *end == 'm' || *end == 'h') && !end[1]) {
			double mult = *end == 's' ? 1 : *end == 'm' ? 60 : 3600;
			ts.seconds = (int64_t)time(NULL) - (int64_t)(v * mult);
		} else {
			return nanoctl_usage_err("events", "--since %s: RFC 3339 time or a duration (10m)",
						 a.since);
		}
		r.since = &ts;
	}
	r.no_follow = a.no_follow;
	pbjson_set_any_resolver(known_any); /* events as JSON, not base64 */
	struct ttrpc_client *c = dial(g);
	if (!c)
		return NANOCTL_EXIT_CONNECT;
	struct ttrpc_status st = {.code = 0};
	struct ttrpc_stream *s;
	int rc = ttrpc_client_stream(c, SERVICE, "Events", &r.base, &nanoshim__v1__event__descriptor, 0,
				     NULL, on_event, on_events_done, &st, &s);
	if (rc < 0) {
		ttrpc_client_free(c);
		return nanoctl_err("events: %s", strerror(-rc));
	}
	while (st.code == 0) {
		struct pollfd p = {ttrpc_client_fd(c), POLLIN, 0};
		if (poll(&p, 1, -1) > 0)
			ttrpc_client_dispatch(c);
	}
	ttrpc_client_free(c);
	if (st.code == -1)
		return 0;
	return nanoctl_errc(st.code == TTRPC_UNAVAILABLE ? NANOCTL_EXIT_CONNECT : NANOCTL_EXIT_FAIL,
			    "events: %s", st.message);
}

static int cmd_info(int argc, char **argv, const struct nanoctl_global *g);
const struct nanoctl_command nanoctl_info_command = {
	"info", cmd_info, "nanoshimd's version, uptime, machine, binaries, containers by state",
	"usage: nanoctl info\n"};

static int cmd_info(int argc, char **argv, const struct nanoctl_global *g)
{
	if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))
		return nanoctl_usage(nanoctl_info_command.usage);
	if (argc > 1)
		return nanoctl_usage_err("info", "unexpected argument %s", argv[1]);
	Google__Protobuf__Empty e = GOOGLE__PROTOBUF__EMPTY__INIT;
	ProtobufCMessage *out;
	int rc = simple(g, "info", "Info", &e.base, &nanoshim__v1__info_response__descriptor, &out);
	if (rc)
		return rc;
	Nanoshim__V1__InfoResponse *i = (void *)out;
	long up = i->started_at ? (long)(time(NULL) - i->started_at->seconds) : 0;
	printf("nanoshimd:   %s (pid %" PRIu32 "), up %ldd %02ld:%02ld:%02ld\n", i->version, i->pid,
	       up / 86400, up / 3600 % 24, up / 60 % 60, up % 60);
	printf("machine:     %" PRIu32 " CPUs, %.1f GiB memory\n", i->cpus,
	       (double)i->memory_bytes / (1024.0 * 1024 * 1024));
	printf("shim:        %s\nruntime:     %s\nstate:       %s\ncontainers: ", i->shim_binary,
	       i->runtime, i->state_dir);
	uint32_t total = 0;
	for (size_t k = 0; k < i->n_containers; k++) {
		printf(" %s %" PRIu32, status_name(i->containers[k]->status), i->containers[k]->count);
		total += i->containers[k]->count;
	}
	printf("%s\n", total ? "" : " none");
	protobuf_c_message_free_unpacked(out, NULL);
	return 0;
}
