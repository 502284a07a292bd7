/*
 * CRC-32C (Castagnoli, reflected polynomial 0x82f63b78): the spool's
 * record and state checksums.  The SSE 4.2 crc32 instruction where the
 * CPU has it (chosen once, at the first call), else a slice-by-8 table;
 * both give the same values.
 */
#ifndef FEDMSG_BROKERS_CRC32C_H
#define FEDMSG_BROKERS_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/*
 * Adds n bytes at p to a running CRC without the pre- and post-inversion:
 * a whole CRC-32C of a buffer is ~crc32c_add(~0U, p, n).  Thread-safe.
 */
uint32_t crc32c_add(uint32_t crc, const void *p, size_t n);

/* The table version, whatever the CPU (for tests: the same values). */
uint32_t crc32c_add_table(uint32_t crc, const void *p, size_t n);

/* Whether crc32c_add uses the CPU's instruction. */
int crc32c_hardware(void);

#endif
