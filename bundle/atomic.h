/* Small files in a bundle: written atomically (a reader sees the old content or
 * the new, never a mix, even across a crash) and read with a size bound. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* Writes len bytes to name inside dirfd (AT_FDCWD or any directory fd, O_PATH
 * included): a temp file created O_EXCL in the same directory, written, given
 * mode (exactly, umask aside), fsync'd, renamed over name, then the directory
 * fsync'd. name must be a single path component. On failure the temp file is
 * removed and name is untouched. Returns 0 or -errno. */
int bundle_write_file_atomic(int dirfd, const char *name, const void *data, size_t len,
			     mode_t mode);

/* The same without the two fsyncs: still atomic for readers, and a process
 * crash (the shim's, containerd's) keeps what the page cache has; only a
 * machine crash could lose it, and that ends the containers a bundle under
 * /run describes anyway. For what the start path writes (address, shim.pid,
 * options.json, runtime) and what a reader takes right away (an exec's
 * process.json, an update's resources): no request waits on a busy disk.
 * The exit record keeps its fsyncs. */
int bundle_write_file_volatile(int dirfd, const char *name, const void *data, size_t len,
			       mode_t mode);

/* Reads the regular file name (resolved like openat) into a new NUL-terminated
 * buffer *out (free() it), its length (without the NUL) in *len if len is not
 * NULL. Files larger than max bytes are refused with -EFBIG; a non-regular file
 * (FIFO, directory, device) with -EINVAL, without blocking. Returns 0 or
 * -errno (-ENOENT when it does not exist). */
int bundle_read_file(int dirfd, const char *name, char **out, size_t *len, size_t max);

/* The small typed files (address, pid files), whose readers check what they
 * read: one read() into buf (cap bytes, NUL-terminated, the length in *len)
 * with no stat and no allocation; a read that comes short is the file's end.
 * A file of cap - 1 bytes or more is -EFBIG; a directory -EINVAL. A FIFO is
 * read without waiting: what it holds, nothing (0, empty) when it has no
 * writer, -EINVAL when its writer wrote nothing; its reader refuses that as
 * it would a bad file. Returns 0 or -errno (-ENOENT when it does not exist). */
int bundle_read_small(int dirfd, const char *name, char *buf, size_t cap, size_t *len);

/* Reads fd to its end the same way: a new NUL-terminated *out, its length in
 * *len; more than max bytes is -EFBIG. hint: the expected size (a regular
 * file's st_size) or 0. Returns 0 or -errno. */
int bundle_read_fd(int fd, size_t hint, size_t max, char **out, size_t *len);
