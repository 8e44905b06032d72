/* SHA-256: the FIPS 180-2 appendix B vectors, every split of the input across
 * update calls, and agreement with sha256sum(1) on inputs around the block and
 * padding boundaries. */
#include "sha256.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void hex_of(const uint8_t d[BUNDLE_SHA256_LEN], char out[BUNDLE_SHA256_HEX_LEN + 1])
{
	for (int i = 0; i < BUNDLE_SHA256_LEN; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

Test(sha256, fips_180_2_vectors)
{
	char hex[BUNDLE_SHA256_HEX_LEN + 1];
	bundle_sha256_hex("abc", 3, hex);
	cr_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

	const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	bundle_sha256_hex(two, strlen(two), hex);
	cr_assert_str_eq(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");

	/* one million 'a' */
	struct bundle_sha256 c;
	uint8_t d[BUNDLE_SHA256_LEN], block[1000];
	memset(block, 'a', sizeof(block));
	bundle_sha256_init(&c);
	for (int i = 0; i < 1000; i++)
		bundle_sha256_update(&c, block, sizeof(block));
	bundle_sha256_final(&c, d);
	hex_of(d, hex);
	cr_assert_str_eq(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");

	bundle_sha256_hex("", 0, hex);
	cr_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

Test(sha256, any_split_gives_the_same_digest)
{
	uint8_t data[300], want[BUNDLE_SHA256_LEN], got[BUNDLE_SHA256_LEN];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + 3);
	bundle_sha256(data, sizeof(data), want);
	for (size_t a = 0; a <= sizeof(data); a += 13) {
		for (size_t b = a; b <= sizeof(data); b += 29) {
			struct bundle_sha256 c;
			bundle_sha256_init(&c);
			bundle_sha256_update(&c, data, a);
			bundle_sha256_update(&c, data + a, 0);
			bundle_sha256_update(&c, data + a, b - a);
			bundle_sha256_update(&c, data + b, sizeof(data) - b);
			bundle_sha256_final(&c, got);
			cr_assert(memcmp(want, got, sizeof(want)) == 0, "split at %zu, %zu", a, b);
		}
	}
}

/* Digest of len bytes of pattern data according to sha256sum(1). */
static void sha256sum_of(const uint8_t *data, size_t len, char out[BUNDLE_SHA256_HEX_LEN + 1])
{
	char path[] = "/tmp/nanoshim-sha256-XXXXXX", cmd[128], line[256];
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
	snprintf(cmd, sizeof(cmd), "sha256sum %s", path);
	FILE *p = popen(cmd, "r");
	cr_assert(p);
	cr_assert(fgets(line, sizeof(line), p));
	pclose(p);
	unlink(path);
	cr_assert(strlen(line) > BUNDLE_SHA256_HEX_LEN && line[BUNDLE_SHA256_HEX_LEN] == ' ');
	memcpy(out, line, BUNDLE_SHA256_HEX_LEN);
	out[BUNDLE_SHA256_HEX_LEN] = '\0';
}

Test(sha256, agrees_with_sha256sum_around_block_boundaries)
{
	static const size_t lens[] = {1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 4097};
	uint8_t *data = malloc(4097);
	cr_assert(data);
	for (size_t i = 0; i < 4097; i++)
		data[i] = (uint8_t)(i ^ (i >> 8));
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		char want[BUNDLE_SHA256_HEX_LEN + 1], got[BUNDLE_SHA256_HEX_LEN + 1];
		sha256sum_of(data, lens[i], want);
		bundle_sha256_hex(data, lens[i], got);
		cr_assert_str_eq(got, want, "length %zu", lens[i]);
	}
	free(data);
}
