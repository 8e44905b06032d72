/* Process specs and small JSON documents for the shim (see procspec.h). */
#include "procspec.h"
#include "atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#define CONFIG_MAX (4u << 20)

static void gen_str(yajl_gen g, const char *s)
{
	yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

static void gen_value(yajl_gen g, yajl_val v)
{
	switch (v->type) {
	case yajl_t_string:
		gen_str(g, v->u.string);
		break;
	case yajl_t_number:
		yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r));
		break;
	case yajl_t_object:
		yajl_gen_map_open(g);
		for (size_t i = 0; i < v->u.object.len; i++) {
			gen_str(g, v->u.object.keys[i]);
			gen_value(g, v->u.object.values[i]);
		}
		yajl_gen_map_close(g);
		break;
	case yajl_t_array:
		yajl_gen_array_open(g);
		for (size_t i = 0; i < v->u.array.len; i++)
			gen_value(g, v->u.array.values[i]);
		yajl_gen_array_close(g);
		break;
	case yajl_t_true:
		yajl_gen_bool(g, 1);
		break;
	case yajl_t_false:
		yajl_gen_bool(g, 0);
		break;
	default:
		yajl_gen_null(g);
		break;
	}
}

static int take(yajl_gen g, char **out, size_t *outlen)
{
	const unsigned char *buf;
	size_t len;
	if (yajl_gen_get_buf(g, &buf, &len) != yajl_gen_status_ok) {
		yajl_gen_free(g);
		return -EINVAL;
	}
	*out = malloc(len + 1);
	if (!*out) {
		yajl_gen_free(g);
		return -ENOMEM;
	}
	memcpy(*out, buf, len);
	(*out)[len] = '\0';
	*outlen = len;
	yajl_gen_free(g);
	return 0;
}

static bool env_overridden(const char *kv, const struct procspec_override *ov)
{
	const char *eq = strchr(kv, '=');
	size_t klen = eq ? (size_t)(eq - kv) : strlen(kv);
	for (size_t i = 0; i < ov->n_env; i++)
		if (strncmp(ov->env[i], kv, klen) == 0 && ov->env[i][klen] == '=')
			return true;
	return false;
}

static yajl_val parse(const char *json, char *err, size_t errlen)
{
	char ebuf[256];
	yajl_val v = yajl_tree_parse(json, ebuf, sizeof(ebuf));
	if (!v || v->type != yajl_t_object) {
		snprintf(err, errlen, "config.json: %s", v ? "not a JSON object" : ebuf);
		yajl_tree_free(v);
		return NULL;
	}
	return v;
}

int procspec_from_config(const char *config_path, const struct procspec_override *ov, char **out,
			 size_t *outlen, char *err, size_t errlen)
{
	char *json;
	int rc = bundle_read_file(AT_FDCWD, config_path, &json, NULL, CONFIG_MAX);
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s", config_path, strerror(-rc));
		return rc;
	}
	yajl_val root = parse(json, err, errlen);
	free(json);
	if (!root)
		return -EINVAL;
	const char *path[] = {"process", NULL};
	yajl_val p = yajl_tree_get(root, path, yajl_t_object);
	if (!p) {
		snprintf(err, errlen, "config.json has no process");
		yajl_tree_free(root);
		return -EINVAL;
	}
	yajl_gen g = yajl_gen_alloc(NULL);
	if (!g) {
		yajl_tree_free(root);
		return -ENOMEM;
	}
	yajl_gen_map_open(g);
	bool had_cwd = false, had_env = false;
	for (size_t i = 0; i < p->u.object.len; i++) {
		const char *k = p->u.object.keys[i];
		yajl_val v = p->u.object.values[i];
		if (strcmp(k, "args") == 0 || strcmp(k, "terminal") == 0 ||
		    strcmp(k, "consoleSize") == 0)
			continue;
		gen_str(g, k);
		if (strcmp(k, "cwd") == 0 && ov->cwd) {
			gen_str(g, ov->cwd);
			had_cwd = true;
		} else if (strcmp(k, "env") == 0 && YAJL_IS_ARRAY(v)) {
			had_env = true;
			yajl_gen_array_open(g);
			for (size_t j = 0; j < v->u.array.len; j++) {
				yajl_val e = v->u.array.values[j];
				if (YAJL_IS_STRING(e) && !env_overridden(e->u.string, ov))
					gen_str(g, e->u.string);
			}
			for (size_t j = 0; j < ov->n_env; j++)
				gen_str(g, ov->env[j]);
			yajl_gen_array_close(g);
		} else {
			gen_value(g, v);
		}
	}
	if (!had_cwd) {
		gen_str(g, "cwd");
		gen_str(g, ov->cwd ? ov->cwd : "/");
	}
	if (!had_env && ov->n_env) {
		gen_str(g, "env");
		yajl_gen_array_open(g);
		for (size_t j = 0; j < ov->n_env; j++)
			gen_str(g, ov->env[j]);
		yajl_gen_array_close(g);
	}
	gen_str(g, "args");
	yajl_gen_array_open(g);
	for (size_t j = 0; j < ov->n_args; j++)
		gen_str(g, ov->args[j]);
	yajl_gen_array_close(g);
	gen_str(g, "terminal");
	yajl_gen_bool(g, ov->terminal);
	if (ov->terminal && ov->console_width && ov->console_height) {
		gen_str(g, "consoleSize");
		yajl_gen_map_open(g);
		gen_str(g, "height");
		yajl_gen_integer(g, ov->console_height);
		gen_str(g, "width");
		yajl_gen_integer(g, ov->console_width);
		yajl_gen_map_close(g);
	}
	yajl_gen_map_close(g);
	yajl_tree_free(root);
	rc = take(g, out, outlen);
	if (rc < 0)
		snprintf(err, errlen, "process spec: %s", strerror(-rc));
	return rc;
}

int procspec_absolute_root(const char *json, size_t len, const char *bundle_dir, char **out,
			   size_t *outlen, char *err, size_t errlen)
{
	(void)len;
	yajl_val root = parse(json, err, errlen);
	if (!root)
		return -EINVAL;
	yajl_gen g = yajl_gen_alloc(NULL);
	if (!g) {
		yajl_tree_free(root);
		return -ENOMEM;
	}
	yajl_gen_map_open(g);
	bool had_root = false;
	for (size_t i = 0; i < root->u.object.len; i++) {
		const char *k = root->u.object.keys[i];
		yajl_val v = root->u.object.values[i];
		gen_str(g, k);
		if (strcmp(k, "root") != 0 || !YAJL_IS_OBJECT(v)) {
			gen_value(g, v);
			continue;
		}
		had_root = true;
		yajl_gen_map_open(g);
		for (size_t j = 0; j < v->u.object.len; j++) {
			const char *rk = v->u.object.keys[j];
			yajl_val rv = v->u.object.values[j];
			gen_str(g, rk);
			if (strcmp(rk, "path") == 0 && YAJL_IS_STRING(rv) && rv->u.string[0] != '/') {
				char abs[8192];
				snprintf(abs, sizeof(abs), "%s/%s", bundle_dir, rv->u.string);
				gen_str(g, abs);
			} else {
				gen_value(g, rv);
			}
		}
		yajl_gen_map_close(g);
	}
	yajl_gen_map_close(g);
	yajl_tree_free(root);
	if (!had_root) {
		yajl_gen_free(g);
		snprintf(err, errlen, "config.json has no root");
		return -EINVAL;
	}
	int rc = take(g, out, outlen);
	if (rc < 0)
		snprintf(err, errlen, "config.json: %s", strerror(-rc));
	return rc;
}

int procspec_resources(int64_t memory, double cpus, char **out, size_t *outlen)
{
	yajl_gen g = yajl_gen_alloc(NULL);
	if (!g)
		return -ENOMEM;
	yajl_gen_map_open(g);
	if (memory > 0) {
		gen_str(g, "memory");
		yajl_gen_map_open(g);
		gen_str(g, "limit");
		yajl_gen_integer(g, memory);
		yajl_gen_map_close(g);
	}
	if (cpus > 0) {
		gen_str(g, "cpu");
		yajl_gen_map_open(g);
		gen_str(g, "quota");
		yajl_gen_integer(g, (long long)(cpus * 100000));
		gen_str(g, "period");
		yajl_gen_integer(g, 100000);
		yajl_gen_map_close(g);
	}
	yajl_gen_map_close(g);
	return take(g, out, outlen);
}
