/*
 * How a fuzz target reports a broken invariant: one line on stderr, the
 * target's name first, then abort(), which libFuzzer records as a crash
 * with the input that caused it.  Included by each tests/fuzz/fuzz_*.c.
 */
#ifndef FUZZ_DIE_H
#define FUZZ_DIE_H

#include <errno.h>	/* program_invocation_short_name (_GNU_SOURCE) */
#include <stdio.h>
#include <stdlib.h>

static void die(const char *, const char *) __attribute__((noreturn));

static void
die(const char *what, const char *detail)
{
	fprintf(stderr, "%s: %s: %.300s\n", program_invocation_short_name,
	    what, detail);
	abort();
}

#endif
