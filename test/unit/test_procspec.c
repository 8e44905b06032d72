/* nanoshimd's small JSON documents: an exec's process spec made from the
 * container's config.json (args, env, cwd and terminal replaced, everything
 * else kept), a given bundle's config.json with its root made absolute, and an
 * update's LinuxResources; each parsed back with yajl. */
#include "procspec.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

static char dir[64], cfg[128];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test-procspec.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(cfg, sizeof(cfg), "%s/config.json", dir);
}

static void teardown(void)
{
	unlink(cfg);
	rmdir(dir);
}

TestSuite(procspec, .init = setup, .fini = teardown);

static void write_cfg(const char *json)
{
	FILE *f = fopen(cfg, "w");
	cr_assert_not_null(f);
	fputs(json, f);
	fclose(f);
}

static yajl_val parse(const char *json)
{
	char err[256];
	yajl_val v = yajl_tree_parse(json, err, sizeof(err));
	cr_assert_not_null(v, "not JSON (%s): %s", err, json);
	return v;
}

static const char *str_at(yajl_val v, const char *a, const char *b)
{
	const char *path[] = {a, b, NULL};
	yajl_val s = yajl_tree_get(v, path, yajl_t_string);
	return s ? YAJL_GET_STRING(s) : NULL;
}

static const char *CONFIG =
	"{\"ociVersion\":\"1.0.2\",\"process\":{\"terminal\":true,\"user\":{\"uid\":0,\"gid\":0},"
	"\"args\":[\"sh\"],\"env\":[\"PATH=/bin\",\"FOO=old\",\"KEEP=1\"],\"cwd\":\"/\","
	"\"capabilities\":{\"bounding\":[\"CAP_KILL\"]},\"noNewPrivileges\":true},"
	"\"root\":{\"path\":\"rootfs\",\"readonly\":true},\"hostname\":\"h\"}";

Test(procspec, exec_process_replaces_args_env_cwd_terminal_and_keeps_the_rest)
{
	write_cfg(CONFIG);
	const char *args[] = {"echo", "a b", ""};
	const char *env[] = {"FOO=new", "BAR=2"};
	struct procspec_override ov = {.args = args, .n_args = 3, .env = env, .n_env = 2,
				       .cwd = "/tmp", .terminal = false};
	char *out = NULL, err[256] = "";
	size_t len = 0;
	cr_assert_eq(procspec_from_config(cfg, &ov, &out, &len, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(strlen(out), len);
	yajl_val v = parse(out);
	const char *ap[] = {"args", NULL}, *ep[] = {"env", NULL}, *tp[] = {"terminal", NULL};
	yajl_val a = yajl_tree_get(v, ap, yajl_t_array);
	cr_assert_not_null(a);
	cr_assert_eq(a->u.array.len, 3);
	cr_assert_str_eq(YAJL_GET_STRING(a->u.array.values[1]), "a b");
	cr_assert_str_eq(YAJL_GET_STRING(a->u.array.values[2]), "");
	yajl_val e = yajl_tree_get(v, ep, yajl_t_array);
	cr_assert_not_null(e);
	char joined[256] = "";
	for (size_t i = 0; i < e->u.array.len; i++) {
		const char *kv = YAJL_GET_STRING(e->u.array.values[i]);
		cr_assert_not_null(kv);
		size_t n = strlen(joined);
		snprintf(joined + n, sizeof(joined) - n, "%s;", kv);
	}
	cr_assert_str_eq(joined, "PATH=/bin;KEEP=1;FOO=new;BAR=2;", "env: %s", joined);
	cr_assert_str_eq(str_at(v, "cwd", NULL), "/tmp");
	cr_assert(YAJL_IS_FALSE(yajl_tree_get(v, tp, yajl_t_any)));
	const char *np[] = {"noNewPrivileges", NULL};
	cr_assert(YAJL_IS_TRUE(yajl_tree_get(v, np, yajl_t_any)), "other fields kept");
	const char *cp[] = {"capabilities", "bounding", NULL};
	cr_assert_not_null(yajl_tree_get(v, cp, yajl_t_array), "capabilities kept");
	yajl_tree_free(v);
	free(out);
}

Test(procspec, exec_process_keeps_the_container_cwd_unless_given)
{
	write_cfg(CONFIG);
	const char *args[] = {"true"};
	struct procspec_override ov = {.args = args, .n_args = 1};
	char *out = NULL, err[256] = "";
	size_t len;
	cr_assert_eq(procspec_from_config(cfg, &ov, &out, &len, err, sizeof(err)), 0, "%s", err);
	yajl_val v = parse(out);
	cr_assert_str_eq(str_at(v, "cwd", NULL), "/");
	yajl_tree_free(v);
	free(out);
}

Test(procspec, exec_process_errors_name_the_cause)
{
	const char *args[] = {"true"};
	struct procspec_override ov = {.args = args, .n_args = 1};
	char *out = NULL, err[256] = "";
	size_t len;
	cr_assert_lt(procspec_from_config(cfg, &ov, &out, &len, err, sizeof(err)), 0);
	cr_assert(strstr(err, "No such file"), "missing config: %s", err);
	write_cfg("{\"root\":{\"path\":\"r\"}}");
	cr_assert_eq(procspec_from_config(cfg, &ov, &out, &len, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "no process"), "%s", err);
	write_cfg("{not json");
	cr_assert_eq(procspec_from_config(cfg, &ov, &out, &len, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "config.json"), "%s", err);
}

Test(procspec, absolute_root_rewrites_only_a_relative_path)
{
	char *out = NULL, err[256] = "";
	size_t len;
	cr_assert_eq(procspec_absolute_root(CONFIG, strlen(CONFIG), "/srv/b", &out, &len, err,
					    sizeof(err)),
		     0, "%s", err);
	yajl_val v = parse(out);
	cr_assert_str_eq(str_at(v, "root", "path"), "/srv/b/rootfs");
	const char *rp[] = {"root", "readonly", NULL};
	cr_assert(YAJL_IS_TRUE(yajl_tree_get(v, rp, yajl_t_any)));
	cr_assert_str_eq(str_at(v, "hostname", NULL), "h");
	yajl_tree_free(v);
	free(out);
	const char *abs = "{\"root\":{\"path\":\"/x/y\"}}";
	cr_assert_eq(procspec_absolute_root(abs, strlen(abs), "/srv/b", &out, &len, err, sizeof(err)), 0);
	v = parse(out);
	cr_assert_str_eq(str_at(v, "root", "path"), "/x/y");
	yajl_tree_free(v);
	free(out);
	const char *noroot = "{\"process\":{}}";
	cr_assert_eq(procspec_absolute_root(noroot, strlen(noroot), "/b", &out, &len, err, sizeof(err)),
		     -EINVAL);
	cr_assert(strstr(err, "no root"), "%s", err);
}

Test(procspec, resources)
{
	char *out = NULL;
	size_t len;
	cr_assert_eq(procspec_resources(64 << 20, 1.5, &out, &len), 0);
	yajl_val v = parse(out);
	const char *mp[] = {"memory", "limit", NULL}, *qp[] = {"cpu", "quota", NULL},
		   *pp[] = {"cpu", "period", NULL};
	cr_assert_eq(YAJL_GET_INTEGER(yajl_tree_get(v, mp, yajl_t_number)), 64 << 20);
	cr_assert_eq(YAJL_GET_INTEGER(yajl_tree_get(v, qp, yajl_t_number)), 150000);
	cr_assert_eq(YAJL_GET_INTEGER(yajl_tree_get(v, pp, yajl_t_number)), 100000);
	yajl_tree_free(v);
	free(out);
	cr_assert_eq(procspec_resources(0, 2, &out, &len), 0);
	v = parse(out);
	cr_assert_null(yajl_tree_get(v, mp, yajl_t_number), "no memory when 0: %s", out);
	yajl_tree_free(v);
	free(out);
}

Test(procspec, console_size_with_a_terminal_only)
{
	write_cfg(CONFIG);
	const char *args[] = {"sh"};
	struct procspec_override ov = {.args = args, .n_args = 1, .terminal = true,
				       .console_width = 91, .console_height = 33};
	char *out = NULL, err[256] = "";
	size_t len;
	cr_assert_eq(procspec_from_config(cfg, &ov, &out, &len, err, sizeof(err)), 0, "%s", err);
	yajl_val v = parse(out);
	const char *hp[] = {"consoleSize", "height", NULL}, *wp[] = {"consoleSize", "width", NULL};
	cr_assert_eq(YAJL_GET_INTEGER(yajl_tree_get(v, hp, yajl_t_number)), 33);
	cr_assert_eq(YAJL_GET_INTEGER(yajl_tree_get(v, wp, yajl_t_number)), 91);
	yajl_tree_free(v);
	free(out);
	ov.terminal = false;
	cr_assert_eq(procspec_from_config(cfg, &ov, &out, &len, err, sizeof(err)), 0, "%s", err);
	v = parse(out);
	const char *cp[] = {"consoleSize", NULL};
	cr_assert_null(yajl_tree_get(v, cp, yajl_t_any), "no consoleSize without a terminal: %s", out);
	yajl_tree_free(v);
	free(out);
}
