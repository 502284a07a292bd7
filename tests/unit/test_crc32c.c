/*
 * crc32c_add(): CRC-32C's published check values, and the CPU's
 * instruction (where crc32c_add uses it) equal to the table at every
 * length, alignment and split of a buffer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "crc32c.h"

static uint32_t
whole(uint32_t (*add)(uint32_t, const void *, size_t), const void *p,
    size_t n)
{
	return ~add(~0U, p, n);
}

/* RFC 3720 B.4 and the usual "123456789" check value */
static void
test_known_values(void **state)
{
	unsigned char zeros[32], ones[32], inc[32], dec[32];
	uint32_t (*fns[2])(uint32_t, const void *, size_t) = { crc32c_add,
	    crc32c_add_table };
	int i, f;

	(void)state;
	for (i = 0; i < 32; i++) {
		zeros[i] = 0;
		ones[i] = 0xff;
		inc[i] = (unsigned char)i;
		dec[i] = (unsigned char)(31 - i);
	}
	for (f = 0; f < 2; f++) {
		assert_int_equal(whole(fns[f], "123456789", 9), 0xe3069283U);
		assert_int_equal(whole(fns[f], zeros, 32), 0x8a9136aaU);
		assert_int_equal(whole(fns[f], ones, 32), 0x62a8ab43U);
		assert_int_equal(whole(fns[f], inc, 32), 0x46dd794eU);
		assert_int_equal(whole(fns[f], dec, 32), 0x113fdb5cU);
		assert_int_equal(whole(fns[f], "", 0), 0);
	}
}

/* the dispatched version and the table agree everywhere */
static void
test_paths_agree(void **state)
{
	unsigned char buf[300];
	size_t off, len, cut;
	uint32_t x = 2463534242U;

	(void)state;
	for (off = 0; off < sizeof(buf); off++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[off] = (unsigned char)x;
	}
	printf("crc32c: %s\n", crc32c_hardware() ? "the CPU's instruction" :
	    "the table");
	for (off = 0; off < 9; off++)
		for (len = 0; len + off <= sizeof(buf); len += 7) {
			uint32_t t = crc32c_add_table(~0U, buf + off, len);

			assert_int_equal(crc32c_add(~0U, buf + off, len), t);
			for (cut = 0; cut <= len; cut += 5)
				assert_int_equal(crc32c_add(crc32c_add(~0U,
				    buf + off, cut), buf + off + cut, len - cut),
				    t);
		}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_values),
		cmocka_unit_test(test_paths_agree),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
