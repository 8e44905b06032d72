/* SHA-256 (FIPS 180-4), small and dependency-free: the shim's socket name is
 * the hex digest of "<containerd address>/<namespace>/<group id>". */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define BUNDLE_SHA256_LEN 32
#define BUNDLE_SHA256_HEX_LEN (2 * BUNDLE_SHA256_LEN) /* without the NUL */

struct bundle_sha256 {
	uint32_t h[8];
	uint64_t bytes; /* total fed so far */
	uint8_t block[64];
	size_t used; /* bytes waiting in block */
};

void bundle_sha256_init(struct bundle_sha256 *c);
void bundle_sha256_update(struct bundle_sha256 *c, const void *data, size_t len);
/* Writes the digest; c must be initialised again before reuse. */
void bundle_sha256_final(struct bundle_sha256 *c, uint8_t out[BUNDLE_SHA256_LEN]);

/* One-shot digest, raw and as lower-case hex (NUL-terminated). */
void bundle_sha256(const void *data, size_t len, uint8_t out[BUNDLE_SHA256_LEN]);
void bundle_sha256_hex(const void *data, size_t len, char out[BUNDLE_SHA256_HEX_LEN + 1]);
