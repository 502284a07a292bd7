/*
 * Running the signing command: argv only (no shell), the passphrase on
 * stdin followed by a NUL (sigul --batch's convention), stdout and stderr
 * captured (bounded) for the log, a deadline after which the whole
 * process group is killed.
 */
#ifndef ROBOSIG_SIGNER_H
#define ROBOSIG_SIGNER_H

#include <stddef.h>

enum signer_rc {
	SIGNER_OK = 0,
	SIGNER_FAILED = 1,	/* ran and exited non-zero: the signer refuses */
	SIGNER_TIMEOUT = 2,	/* killed at the deadline */
	SIGNER_ERROR = 3,	/* could not run it */
};

/*
 * Run argv[0] (searched in PATH) with argv.  pass (plen bytes, may be
 * NULL) is written to its stdin.  out gets up to outsz-1 bytes of its
 * output, NUL-terminated.  *status: the exit status or the signal.
 */
enum signer_rc signer_run(char *const argv[], const char *pass, size_t plen,
	    int timeout_ms, char *out, size_t outsz, int *status);

#endif /* ROBOSIG_SIGNER_H */
