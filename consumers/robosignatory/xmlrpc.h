/*
 * A small XML-RPC encoder and decoder, enough for Koji's hub protocol:
 * methodCall with string, int, boolean, nil and struct parameters (Koji's
 * keyword arguments are a last struct with "__starstar": true), and
 * methodResponse with one value or a fault.  No DTDs, no entities beyond
 * the five predefined ones and character references; input, depth and
 * node count are bounded before anything is allocated per node.
 * Depends on libc only (unit-tested and fuzzed on its own).
 */
#ifndef ROBOSIG_XMLRPC_H
#define ROBOSIG_XMLRPC_H

#include <stddef.h>
#include <stdint.h>

#define XR_MAX_INPUT	(16u * 1024 * 1024)	/* bytes of a response */
#define XR_MAX_DEPTH	32			/* nested arrays/structs */
#define XR_MAX_NODES	200000			/* values in a response */

enum xr_type {
	XR_NIL, XR_INT, XR_BOOL, XR_DOUBLE, XR_STRING, XR_ARRAY, XR_STRUCT,
};

/* A decoded value; a tree owned by its root (free it with xr_free). */
struct xr_value {
	enum xr_type	  type;
	int64_t		  i;		/* XR_INT, XR_BOOL (0/1) */
	double		  d;		/* XR_DOUBLE */
	char		 *s;		/* XR_STRING (also dateTime, base64
					   text), NUL-terminated */
	size_t		  slen;
	size_t		  n;		/* items or members */
	struct xr_value	**items;	/* XR_ARRAY, XR_STRUCT values */
	char		**keys;		/* XR_STRUCT member names */
};

/* A request being encoded: a growing buffer; err sticks (out of memory). */
struct xr_buf {
	char	*s;
	size_t	 len, cap;
	int	 err;
	int	 in_kwargs;
};

void	xr_call_begin(struct xr_buf *b, const char *method);
void	xr_param_string(struct xr_buf *b, const char *s);
void	xr_param_int(struct xr_buf *b, int64_t v);
void	xr_param_bool(struct xr_buf *b, int v);
void	xr_param_nil(struct xr_buf *b);
/* Keyword arguments: begin, then xr_kw_* pairs, then end (one, last). */
void	xr_kwargs_begin(struct xr_buf *b);
void	xr_kw_int(struct xr_buf *b, const char *key, int64_t v);
void	xr_kw_string(struct xr_buf *b, const char *key, const char *s);
void	xr_kwargs_end(struct xr_buf *b);
/* Finish; 0, or -1 when the buffer is in error.  b->s is NUL-terminated. */
int	xr_call_end(struct xr_buf *b);
void	xr_buf_free(struct xr_buf *b);

/*
 * Decode a methodResponse of len bytes.  Returns 0 and *out (the value),
 * 1 and *out (a fault: a struct with faultCode and faultString), or -1
 * with a reason in err (errlen bytes) for anything that is not a
 * well-formed, bounded XML-RPC response.
 */
int	xr_parse_response(const char *text, size_t len, struct xr_value **out,
	    char *err, size_t errlen);
void	xr_free(struct xr_value *v);

/* A struct's member, or NULL. */
const struct xr_value *xr_get(const struct xr_value *v, const char *key);
/* Typed reads of a member: 0, or -1 when absent or of another type. */
int	xr_get_int(const struct xr_value *v, const char *key, int64_t *out);
const char *xr_get_str(const struct xr_value *v, const char *key);

#endif /* ROBOSIG_XMLRPC_H */
