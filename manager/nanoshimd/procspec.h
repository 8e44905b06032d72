/* The JSON nanoshimd hands to shims beside config.json: an exec's process
 * spec (the container's process with the exec's args, env, cwd and terminal),
 * a given bundle's config.json with its root made absolute, and an update's
 * LinuxResources. Read with yajl_tree, written with yajl_gen. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct procspec_override {
	const char *const *args;
	size_t n_args;
	const char *const *env; /* K=V, each replacing the container's K */
	size_t n_env;
	const char *cwd; /* NULL: the container's */
	bool terminal;
	unsigned console_width, console_height; /* with terminal: process.consoleSize */
};

/* *out: malloc'd, NUL-terminated JSON; -errno with a message in err. */
int procspec_from_config(const char *config_path, const struct procspec_override *ov, char **out,
			 size_t *outlen, char *err, size_t errlen);
int procspec_absolute_root(const char *json, size_t len, const char *bundle_dir, char **out,
			   size_t *outlen, char *err, size_t errlen);
int procspec_resources(int64_t memory, double cpus, char **out, size_t *outlen);
