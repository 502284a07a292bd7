/*
 * HTTP Negotiate (SPNEGO, RFC 4559) client tokens from GSS-API, for
 * koji's "kerberos" authmethod: the initiator credential is acquired
 * with gss_acquire_cred_from() from the configured client keytab and
 * principal into a ccache private to this client (so the process
 * environment, KRB5CCNAME and KRB5_CLIENT_KTNAME are never touched), and
 * the hub's answer token is checked (mutual authentication), as
 * requests-gssapi does for koji.ClientSession.gssapi_login.
 * One per Koji instance; not thread-safe.
 */
#ifndef ROBOSIG_NEGOTIATE_H
#define ROBOSIG_NEGOTIATE_H

#include <stddef.h>

enum neg_rc {
	NEG_OK = 0,
	NEG_TRANSIENT = 1,	/* KDC unreachable, credentials expired */
	NEG_PERMANENT = 2,	/* wrong principal or keytab, no ticket,
				   a hub that does not authenticate */
};

struct negotiate;

/*
 * principal (NULL: the keytab's first one, or the default ccache's),
 * keytab (NULL: the default ccache's tickets, as after kinit): copied.
 */
struct negotiate *negotiate_new(const char *principal, const char *keytab);
void	negotiate_free(struct negotiate *n);
/*
 * Start a context with HTTP@host; *b64: the token for
 * "Authorization: Negotiate <b64>" (free it).  err: why, otherwise.
 */
enum neg_rc negotiate_begin(struct negotiate *n, const char *host,
	    char **b64, char *err, size_t errlen);
/*
 * Finish it with the hub's "WWW-Authenticate: Negotiate <b64>" token
 * (NULL when it sent none: refused, since the hub did not prove who it
 * is).
 */
enum neg_rc negotiate_end(struct negotiate *n, const char *b64, char *err,
	    size_t errlen);

/* Base64 (RFC 4648, padded); exposed for the unit test. */
char	*neg_b64_encode(const unsigned char *p, size_t len);
/* NULL when s is not padded base64 or decodes to over max bytes. */
unsigned char *neg_b64_decode(const char *s, size_t max, size_t *len);

#endif /* ROBOSIG_NEGOTIATE_H */
