/*
 * A Koji hub client: XML-RPC over HTTPS (libcurl), logged in with
 * sslLogin at .../ssllogin as koji's "ssl" authmethod does (the client
 * certificate), or as its "kerberos" one (gssapi_login: the same call
 * with HTTP Negotiate, negotiate.h); the session rides on every later
 * call's URL as session-id, session-key and callnum, and a session the
 * hub expired (AuthExpired) is logged in again once.  One per consumer
 * thread; not thread-safe.
 */
#ifndef ROBOSIG_KOJI_H
#define ROBOSIG_KOJI_H

#include "xmlrpc.h"

enum koji_rc {
	KOJI_OK = 0,
	KOJI_TRANSIENT = 1,	/* unreachable, timeout, HTTP 5xx, garbage */
	KOJI_FAULT = 2,		/* the hub answered with a fault, or the
				   login was refused (wrong principal,
				   keytab, no ticket, HTTP 401) */
};

struct koji;

/* url, cert (PEM with its key), serverca: copied.  timeout in seconds. */
struct koji *koji_new(const char *url, const char *cert, const char *serverca,
	    long timeout);
void	koji_free(struct koji *k);
/*
 * Log in with Kerberos (HTTP Negotiate) instead of the client certificate:
 * principal and keytab as negotiate_new() takes them.  0, or -1 (memory).
 */
int	koji_set_kerberos(struct koji *k, const char *principal,
	    const char *keytab);
/*
 * Send the encoded request; *out: the result (or the fault), to free with
 * xr_free.  err: a reason for anything but KOJI_OK.  auth: log in first
 * (once per client) and send the session.
 */
enum koji_rc koji_call(struct koji *k, const struct xr_buf *req, int auth,
	    struct xr_value **out, char *err, size_t errlen);
/*
 * Hold a session: log in now unless one is held already (the hub may
 * still have expired it; koji_call then logs in again).  For a caller
 * that must know the login works before it does something costly, as
 * robosignatory before its signing command.  err: a reason for anything
 * but KOJI_OK.
 */
enum koji_rc koji_login(struct koji *k, char *err, size_t errlen);
/* How many calls went out (for the bench and the logs). */
unsigned long koji_calls(const struct koji *k);

#endif /* ROBOSIG_KOJI_H */
