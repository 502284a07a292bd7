/*
 * CRC-32C (crc32c.h).  The spool checksums every record when it appends
 * it and again when it reads it back: with a byte-wise table that was
 * some 30 % of fedmsg-bridge's CPU on ZeroMQ -> broker paths (issue 18),
 * hence the CPU's instruction, and slice-by-8 where there is none.
 */
#include <pthread.h>
#include <string.h>

#include "crc32c.h"

#define POLY	0x82f63b78U

/* table[k][b]: the CRC of byte b followed by k zero bytes */
static uint32_t table[8][256];
static int use_hw;
static pthread_once_t once = PTHREAD_ONCE_INIT;

#if defined(__x86_64__) && defined(__GNUC__)
#include <nmmintrin.h>

__attribute__((target("sse4.2")))
static uint32_t
add_hw(uint32_t crc, const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t c = crc, w;

	for (; n >= 8; n -= 8, s += 8) {
		memcpy(&w, s, 8);	/* any alignment */
		c = _mm_crc32_u64(c, w);
	}
	crc = (uint32_t)c;
	while (n--)
		crc = _mm_crc32_u8(crc, *s++);
	return crc;
}

static int
have_hw(void)
{
	__builtin_cpu_init();
	return __builtin_cpu_supports("sse4.2");
}
#else
static uint32_t
add_hw(uint32_t crc, const void *p, size_t n)
{
	return crc32c_add_table(crc, p, n);
}

static int
have_hw(void)
{
	return 0;
}
#endif

static void
init(void)
{
	uint32_t c;
	int i, k;

	for (i = 0; i < 256; i++) {
		c = (uint32_t)i;
		for (k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
		table[0][i] = c;
	}
	for (i = 0; i < 256; i++)
		for (k = 1; k < 8; k++)
			table[k][i] = (table[k - 1][i] >> 8) ^
			    table[0][table[k - 1][i] & 0xff];
	use_hw = have_hw();
}

uint32_t
crc32c_add_table(uint32_t crc, const void *p, size_t n)
{
	const unsigned char *s = p;

	pthread_once(&once, init);
	for (; n >= 8; n -= 8, s += 8) {
		/* the bytes in order, whatever the host's byte order */
		uint32_t lo = crc ^ ((uint32_t)s[0] | (uint32_t)s[1] << 8 |
		    (uint32_t)s[2] << 16 | (uint32_t)s[3] << 24);

		crc = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^
		    table[5][(lo >> 16) & 0xff] ^ table[4][lo >> 24] ^
		    table[3][s[4]] ^ table[2][s[5]] ^ table[1][s[6]] ^
		    table[0][s[7]];
	}
	while (n--)
		crc = table[0][(crc ^ *s++) & 0xff] ^ (crc >> 8);
	return crc;
}

uint32_t
crc32c_add(uint32_t crc, const void *p, size_t n)
{
	pthread_once(&once, init);
	return use_hw ? add_hw(crc, p, n) : crc32c_add_table(crc, p, n);
}

int
crc32c_hardware(void)
{
	pthread_once(&once, init);
	return use_hw;
}
