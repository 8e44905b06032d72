/* Quoting strings that came from a client or a file, for error messages: the
 * text is shown between double quotes with control bytes escaped, and cut
 * short (ending in ...") when it does not fit, so a hostile id can neither
 * forge log lines nor flood a status message. */
#pragma once

#include <stddef.h>

/* A buffer of this size shows up to about 120 bytes of the original. */
#define BUNDLE_QUOTE_MAX 128

/* Turns a library's multi-line error text (yajl's) into one line, in place:
 * line breaks and tabs become spaces, trailing spaces go. */
void bundle_one_line(char *s);

/* Writes the quoted form of s (NULL reads as "") into buf and returns buf.
 * buflen must be at least 8; a smaller buffer gets an empty string. */
const char *bundle_quote(char *buf, size_t buflen, const char *s);
