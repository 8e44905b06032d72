/* A bounded queue of bytes for an output stream whose reader is away or slow:
 * up to a few KiB in memory, the rest in an anonymous file (O_TMPFILE, so
 * nothing is left behind) made in a directory given, never more than a cap.
 * Bytes leave in the order they came; a byte read in is never lost, except
 * when the spool is freed with bytes still in it (spool_len says how many). */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* What a spool keeps in memory before it overflows into its file. */
#define SPOOL_MEM_MAX (64u << 10)

struct spool;

/* dir: where the overflow file is made (copied; NULL: memory only, the cap
 * then being at most mem_max). cap > 0. NULL on ENOMEM. */
struct spool *spool_new(const char *dir, size_t mem_max, size_t cap);
void spool_free(struct spool *s); /* NULL fine */
size_t spool_len(const struct spool *s);
/* What may still come in: cap - len, or what is left of memory when no file
 * can be made. */
size_t spool_room(const struct spool *s);
size_t spool_cap(const struct spool *s);
/* Bytes past memory (in the file, or read and waiting to be written there). */
size_t spool_file_len(const struct spool *s);
/* Reads from fd (a pipe, or anything read(2) works on) into the spool, at
 * most spool_room bytes. Returns the count read, 0 at EOF, -ENOSPC when the
 * spool is full, or -errno (-EAGAIN: nothing to read now). An error of the
 * overflow file (making it, writing it) returns its -errno with the bytes
 * left in fd, or kept in the spool to be written to the file later. */
ssize_t spool_fill(struct spool *s, int fd);
/* Writes the oldest bytes to fd. Returns the count written (0: the spool is
 * empty) or -errno (-EAGAIN: fd is full). */
ssize_t spool_drain(struct spool *s, int fd);
