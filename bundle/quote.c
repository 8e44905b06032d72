/* Quoted, escaped and bounded rendering of untrusted strings (see quote.h).
 * The output is always valid UTF-8 (status messages travel in protobuf
 * strings): invalid bytes are shown as \xNN and a cut never splits a
 * multi-byte character. */
#include "quote.h"

#include <stdio.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if p starts none. */
static size_t utf8_len(const unsigned char *p)
{
	size_t n;
	unsigned int cp;
	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* The rendering of the character at p into esc (at least 5 bytes); sets
 * *used to the input bytes consumed and returns the output length. */
static size_t render(const unsigned char *p, char *esc, size_t *used)
{
	*used = 1;
	switch (p[0]) {
	case '"':
		return (size_t)snprintf(esc, 5, "\\\"");
	case '\\':
		return (size_t)snprintf(esc, 5, "\\\\");
	case '\n':
		return (size_t)snprintf(esc, 5, "\\n");
	case '\r':
		return (size_t)snprintf(esc, 5, "\\r");
	case '\t':
		return (size_t)snprintf(esc, 5, "\\t");
	}
	size_t n = utf8_len(p);
	if (n == 0 || p[0] < 0x20 || p[0] == 0x7f)
		return (size_t)snprintf(esc, 5, "\\x%02x", p[0]);
	memcpy(esc, p, n);
	*used = n;
	return n;
}

const char *bundle_quote(char *buf, size_t buflen, const char *s)
{
	static const char ellipsis[] = "...\"";
	char esc[5];
	size_t used, n, o = 0, total = 2;
	const unsigned char *p;

	if (buflen < 8) {
		if (buflen)
			buf[0] = '\0';
		return buf;
	}
	if (!s)
		s = "";
	for (p = (const unsigned char *)s; *p; p += used)
		total += render(p, esc, &used);
	/* when it does not all fit, keep room for the ellipsis and the NUL */
	size_t limit = total < buflen ? buflen : buflen - sizeof(ellipsis);
	buf[o++] = '"';
	for (p = (const unsigned char *)s; *p; p += used) {
		n = render(p, esc, &used);
		if (o + n > limit) {
			memcpy(buf + o, ellipsis, sizeof(ellipsis));
			return buf;
		}
		memcpy(buf + o, esc, n);
		o += n;
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

void bundle_one_line(char *s)
{
	for (char *p = s; *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	for (size_t n = strlen(s); n > 0 && s[n - 1] == ' '; n--)
		s[n - 1] = '\0';
}
