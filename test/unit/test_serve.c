/* The task service as the serving shim registers it (shim/serve.c): under
 * containerd.task.v2.Task and containerd.task.v3.Task (containerd 2.x), the
 * same handlers behind both names; and Pids for a task whose init has exited
 * (shim/task.c), which containerd 2.0 to 2.3.3 ask on reload to tell a
 * live task from a leaked shim. The server runs in a child process, with
 * containers planted in its task table the way Create and the reaper leave
 * them; the client is ours, on a socketpair. */
#include "process.h"
#include "shim.h"

#include "containerd/task/v2/shim.pb-c.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define V2 "containerd.task.v2.Task"
#define V3 "containerd.task.v3.Task"

static pid_t server_pid = -1;
static struct ttrpc_client *client;

static struct container *plant(const char *id, enum proc_state state, pid_t pid, int status)
{
	struct container *c = calloc(1, sizeof(*c));
	c->id = strdup(id);
	c->bundle = strdup("/run/containerd/io.containerd.runtime.v2.task/default/web");
	c->bundle_fd = -1;
	c->init.c = c;
	c->init.state = state;
	c->init.pid = pid;
	c->init.pidfd = -1;
	c->init.exit_status = status;
	c->init.exited_at.tv_sec = 1700000000;
	c->init.stdin_path = c->init.stdout_path = c->init.stderr_path = "";
	c->next = shim.containers;
	shim.containers = c;
	return c;
}

/* The shim's task table, as after:
 *   web:  Create, Start, and an exit with status 3 (stopped, not deleted);
 *   gone: a Delete (deleted, still freed later). */
static void serve(int fd)
{
	shim.ns = "default";
	shim.id = "web";
	plant("web", PROC_STOPPED, 4242, 3);
	plant("gone", PROC_STOPPED, 4343, 0)->deleted = true;
	struct ttrpc_server *s = ttrpc_server_new();
	if (!s || shim_register_task_services(s) < 0 || ttrpc_server_add_conn(s, fd) < 0)
		_exit(2);
	ttrpc_server_run(s, 15000);
	_exit(0);
}

static void setup(void)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	server_pid = fork();
	cr_assert_geq(server_pid, 0);
	if (server_pid == 0) {
		close(sv[0]);
		serve(sv[1]);
	}
	close(sv[1]);
	client = ttrpc_client_new(sv[0]);
	cr_assert_not_null(client);
}

static void teardown(void)
{
	ttrpc_client_free(client);
	if (server_pid > 0) {
		kill(server_pid, SIGKILL);
		waitpid(server_pid, NULL, 0);
	}
}

TestSuite(serve, .init = setup, .fini = teardown, .timeout = 20);

static int call(const char *service, const char *method, const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *reply_desc, ProtobufCMessage **reply,
                struct ttrpc_status *st)
{
	struct ttrpc_call_opts opts = {.timeout_ns = 5000000000};
	memset(st, 0, sizeof(*st));
	*reply = NULL;
	return ttrpc_client_call(client, service, method, req, reply_desc, &opts, reply, st);
}

Test(serve, connect_answers_on_v2_and_v3)
{
	const char *const services[] = {V2, V3};
	for (int i = 0; i < 2; i++) {
		Containerd__Task__V2__ConnectRequest req =
		    CONTAINERD__TASK__V2__CONNECT_REQUEST__INIT;
		req.id = "web";
		ProtobufCMessage *r;
		struct ttrpc_status st;
		cr_assert_eq(call(services[i], "Connect", &req.base,
		                  &containerd__task__v2__connect_response__descriptor, &r, &st),
		             0, "%s: %s", services[i], st.message);
		Containerd__Task__V2__ConnectResponse *cr = (void *)r;
		cr_assert_eq(cr->shim_pid, (uint32_t)server_pid, "%s", services[i]);
		cr_assert_eq(cr->task_pid, 4242, "%s", services[i]);
		protobuf_c_message_free_unpacked(r, NULL);
	}
}

Test(serve, state_on_v3_is_the_v2_answer)
{
	Containerd__Task__V2__StateRequest req = CONTAINERD__TASK__V2__STATE_REQUEST__INIT;
	req.id = "web";
	ProtobufCMessage *r;
	struct ttrpc_status st;
	cr_assert_eq(call(V3, "State", &req.base, &containerd__task__v2__state_response__descriptor,
	                  &r, &st),
	             0, "%s", st.message);
	Containerd__Task__V2__StateResponse *sr = (void *)r;
	cr_assert_str_eq(sr->id, "web");
	cr_assert_eq(sr->status, CONTAINERD__V1__TYPES__STATUS__STOPPED);
	cr_assert_eq(sr->exit_status, 3);
	protobuf_c_message_free_unpacked(r, NULL);
}

Test(serve, other_services_unimplemented)
{
	Containerd__Task__V2__ConnectRequest req = CONTAINERD__TASK__V2__CONNECT_REQUEST__INIT;
	ProtobufCMessage *r;
	struct ttrpc_status st;
	cr_assert_lt(call("containerd.task.v4.Task", "Connect", &req.base,
	                  &containerd__task__v2__connect_response__descriptor, &r, &st),
	             0);
	cr_assert_eq(st.code, TTRPC_UNIMPLEMENTED, "%d %s", st.code, st.message);
	cr_assert_lt(call(V3, "Sandbox", &req.base,
	                  &containerd__task__v2__connect_response__descriptor, &r, &st),
	             0);
	cr_assert_eq(st.code, TTRPC_UNIMPLEMENTED, "%d %s", st.code, st.message);
}

/* The init has exited, the task is not deleted: Pids lists the init's pid,
 * so containerd 2.x's reload keeps the task (STOPPED, status 3) instead of
 * deleting it as a leaked shim. */
Test(serve, pids_of_an_exited_init_is_its_pid)
{
	const char *const services[] = {V2, V3};
	for (int i = 0; i < 2; i++) {
		Containerd__Task__V2__PidsRequest req = CONTAINERD__TASK__V2__PIDS_REQUEST__INIT;
		req.id = "web";
		ProtobufCMessage *r;
		struct ttrpc_status st;
		cr_assert_eq(call(services[i], "Pids", &req.base,
		                  &containerd__task__v2__pids_response__descriptor, &r, &st),
		             0, "%s: %s", services[i], st.message);
		Containerd__Task__V2__PidsResponse *pr = (void *)r;
		cr_assert_eq(pr->n_processes, 1);
		cr_assert_eq(pr->processes[0]->pid, 4242);
		cr_assert_null(pr->processes[0]->info);
		protobuf_c_message_free_unpacked(r, NULL);
	}
}

/* No task (never created, or deleted): NotFound, which containerd's reload
 * takes as a leaked shim to clean up. */
Test(serve, pids_without_a_task_is_not_found)
{
	const char *const ids[] = {"never-created", "gone"};
	for (int i = 0; i < 2; i++) {
		Containerd__Task__V2__PidsRequest req = CONTAINERD__TASK__V2__PIDS_REQUEST__INIT;
		req.id = (char *)ids[i];
		ProtobufCMessage *r;
		struct ttrpc_status st;
		cr_assert_lt(call(V3, "Pids", &req.base,
		                  &containerd__task__v2__pids_response__descriptor, &r, &st),
		             0, "%s answered", ids[i]);
		cr_assert_eq(st.code, TTRPC_NOT_FOUND, "%s: %d %s", ids[i], st.code, st.message);
	}
}
