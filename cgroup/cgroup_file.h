/* Reading cgroup and proc files without stdio buffers: bounded line
 * iteration, small whole-file reads, containerd's integer parsing, and
 * directory listing. Every name is resolved against a directory fd (or
 * AT_FDCWD for absolute paths). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest line accepted from any file (mountinfo lines carry paths and
 * options; cpuacct.usage_percpu carries one number per CPU). */
#define CGROUP_LINE_MAX (64u << 10)

/* Buffer for files holding one value ("12345", "max"). */
#define CGROUP_VALUE_MAX 64

/* Called with each line, '\n' removed and NUL-terminated; the line may be
 * modified. Return 0 to go on, >0 to stop (cgroup_file_lines returns it),
 * <0 to fail (returned as well). */
typedef int (*cgroup_line_fn)(char *line, void *ctx);

int cgroup_file_lines(int dirfd, const char *name, cgroup_line_fn fn, void *ctx);

/* Reads the whole file into buf (NUL-terminated, trailing whitespace
 * removed) and returns its length; -EFBIG if it does not fit. */
int cgroup_file_read(int dirfd, const char *name, char *buf, size_t size);

/* Parses a decimal uint64 the way containerd/cgroups does: negative numbers
 * read as 0 (the kernel prints -1 for "unlimited" in some files). */
int cgroup_parse_u64(const char *s, uint64_t *out);

int cgroup_file_u64(int dirfd, const char *name, uint64_t *out);

/* As cgroup_file_u64, but the word "max" reads as max_value. */
int cgroup_file_u64_or_max(int dirfd, const char *name, uint64_t max_value, uint64_t *out);

/* Splits "key value" in place; -EINVAL unless there are exactly two
 * whitespace-separated fields. */
int cgroup_split_kv(char *line, char **key, char **value);

/* Calls fn for each entry of the directory name (relative to dirfd), "." and
 * ".." left out, in kernel order. fn's non-zero result stops and is returned. */
typedef int (*cgroup_dirent_fn)(const char *name, void *ctx);
int cgroup_dir_list(int dirfd, const char *name, cgroup_dirent_fn fn, void *ctx);

/* True for the errors that mean "this file or cgroup is not there":
 * ENOENT, and ENODEV, which reads return once the cgroup was removed. */
bool cgroup_err_missing(int err);
