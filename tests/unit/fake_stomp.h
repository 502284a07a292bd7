/*
 * A small fake STOMP server for the unit tests, run in a thread of the
 * test on 127.0.0.1 (plain, or TLS with the certificates given): it
 * answers CONNECT, SEND and SUBSCRIBE receipts, delivers MESSAGEs per
 * SUBSCRIBE, and misbehaves as fake_cfg says (refused logins, ERRORs,
 * silence, stalls, endless headers).  What it received is logged one
 * line per frame (fake_saw, fake_count).  Header-only, as testutil.h:
 * include after <cmocka.h>.
 */
#ifndef FM_FAKE_STOMP_H
#define FM_FAKE_STOMP_H

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "buf.h"
#include "stomp_frame.h"

struct fake_cfg {
	const char	*version;	/* CONNECTED version; NULL = none (1.0) */
	const char	*hb;		/* CONNECTED heart-beat; NULL = none */
	int		 refuse_connects; /* first N CONNECTs get ERROR */
	int		 error_after_sub; /* first N connections: ERROR */
	int		 msgs_per_sub;	/* MESSAGEs per SUBSCRIBE */
	bool		 silent_connect; /* never answer CONNECT */
	int		 stall_conns;	/* first N: send stall, then silence */
	const char	*stall;
	size_t		 stall_len;
	bool		 endless;	/* after CONNECTED, an endless header */
	unsigned	 send_hb_ms;	/* server heart-beats (0 = none) */
	bool		 no_receipts;
	size_t		 big_body;	/* with msgs_per_sub: bodies of this
					   many octets */
	const char	*tls_cert, *tls_key;	/* set: TLS with these */
	const char	*client_ca;	/* set: client certificates from it */
};

struct fake {
	struct fake_cfg	 cfg;
	int		 lfd;
	int		 port;
	pthread_t	 th;
	atomic_bool	 stop;
	SSL_CTX		*ctx;
	pthread_mutex_t	 mu;
	struct buf	 log;		/* one line per frame received */
	atomic_int	 conns, connects, tls_failures, closed;
	atomic_ulong	 hb_in;
	atomic_size_t	 endless_bytes;
	char		 client_cn[64];
	int		 msgno;
};

struct conn {
	int	 fd;
	SSL	*ssl;
};

static inline int64_t
now_ms(void)
{
	return stomp_now_ms();
}

/* >0 read, 0 EOF, -1 timeout, -2 error */
static inline ssize_t
c_read(struct conn *c, char *p, size_t n)
{
	ssize_t r;

	if (c->ssl) {
		int e;

		ERR_clear_error();
		r = SSL_read(c->ssl, p, (int)n);
		if (r > 0)
			return r;
		e = SSL_get_error(c->ssl, (int)r);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			return -1;
		if (e == SSL_ERROR_ZERO_RETURN)
			return 0;
		return -2;
	}
	r = recv(c->fd, p, n, 0);
	if (r >= 0)
		return r;
	return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ?
	    -1 : -2;
}

static inline int
c_write(struct conn *c, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w;

		if (c->ssl) {
			ERR_clear_error();
			w = SSL_write(c->ssl, p, (int)n);
			if (w <= 0) {
				int e = SSL_get_error(c->ssl, (int)w);

				if (e == SSL_ERROR_WANT_WRITE ||
				    e == SSL_ERROR_WANT_READ)
					continue;
				return -1;
			}
		} else {
			w = send(c->fd, p, n, MSG_NOSIGNAL);
			if (w < 0) {
				if (errno == EAGAIN || errno == EINTR)
					continue;
				return -1;
			}
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static inline int
c_frame(struct conn *c, const char *cmd, const char *const *hdrs,
    const char *body)
{
	struct buf b = BUF_INIT;
	int r;

	assert_int_equal(stomp_frame_build(&b, cmd, hdrs, body,
	    body ? strlen(body) : 0, body ? STOMP_W_CONTENT_LENGTH : 0,
	    NULL), 0);
	r = c_write(c, b.data, b.len);
	buf_free(&b);
	return r;
}

static inline void
log_frame(struct fake *fk, const struct stomp_frame *f)
{
	size_t i;

	pthread_mutex_lock(&fk->mu);
	buf_adds(&fk->log, f->command);
	for (i = 0; i < f->nheaders; i++) {
		buf_addc(&fk->log, ' ');
		buf_add(&fk->log, f->headers[i].name, f->headers[i].name_len);
		buf_addc(&fk->log, '=');
		buf_add(&fk->log, f->headers[i].value, f->headers[i].value_len);
	}
	buf_addc(&fk->log, '|');
	for (i = 0; i < f->body_len; i++)
		if (f->body[i] == '\0')
			buf_adds(&fk->log, "\\0");
		else
			buf_addc(&fk->log, f->body[i]);
	buf_addc(&fk->log, '\n');
	pthread_mutex_unlock(&fk->mu);
}

static inline bool
fake_saw(struct fake *fk, const char *text)
{
	bool r;

	pthread_mutex_lock(&fk->mu);
	r = fk->log.data && strstr(fk->log.data, text) != NULL;
	pthread_mutex_unlock(&fk->mu);
	return r;
}

static inline int
fake_count(struct fake *fk, const char *text)
{
	const char *p;
	int n = 0;

	pthread_mutex_lock(&fk->mu);
	for (p = fk->log.data; p && (p = strstr(p, text)) != NULL; p++)
		n++;
	pthread_mutex_unlock(&fk->mu);
	return n;
}

enum { GO_ON, CLOSE };

static inline int
fake_frame(struct fake *fk, struct conn *c, int idx,
    const struct stomp_frame *f, bool *connected, bool *silent)
{
	const char *v;
	char mid[64], ack[64], body[64];
	int i;

	log_frame(fk, f);
	if (*silent)
		return GO_ON;
	if (strcmp(f->command, "CONNECT") == 0 ||
	    strcmp(f->command, "STOMP") == 0) {
		int k = ++fk->connects;

		if (fk->cfg.silent_connect) {
			*silent = true;
			return GO_ON;
		}
		if (k <= fk->cfg.refuse_connects) {
			const char *h[] = {
				"message", "Access refused for user 'guest'",
				"content-type", "text/plain", NULL,
			};

			c_frame(c, "ERROR", h, "Login was refused for user "
			    "'guest'\n");
			return CLOSE;
		} else {
			const char *h[] = {
				"server", "fake/1.0", "session", "sess-1",
				"version", fk->cfg.version,
				"heart-beat", fk->cfg.hb, NULL,
			};

			c_frame(c, "CONNECTED", h, NULL);
		}
		*connected = true;
		if (fk->cfg.endless)
			c_write(c, "MESSAGE\nk:", 10);
		if (idx < fk->cfg.stall_conns) {
			c_write(c, fk->cfg.stall, fk->cfg.stall_len);
			*silent = true;
		}
		return GO_ON;
	}
	if (strcmp(f->command, "SUBSCRIBE") == 0) {
		const char *sid = stomp_frame_value(f, "id");
		const char *dest = stomp_frame_value(f, "destination");
		const char *mode = stomp_frame_value(f, "ack");
		bool v12 = fk->cfg.version && strcmp(fk->cfg.version, "1.2") == 0;

		if (idx < fk->cfg.error_after_sub) {
			const char *h[] = { "message", "boom", NULL };

			c_frame(c, "ERROR", h, "subscription refused");
			return CLOSE;
		}
		if ((v = stomp_frame_value(f, "receipt")) != NULL) {
			const char *h[] = { "receipt-id", v, NULL };

			c_frame(c, "RECEIPT", h, NULL);
		}
		for (i = 0; i < fk->cfg.msgs_per_sub; i++) {
			int m = ++fk->msgno;
			bool acks = v12 && mode && strcmp(mode, "auto") != 0;
			const char *h[] = {
				"destination", dest, "message-id", mid,
				"subscription", sid, "x-test", "a\nb:c",
				"ack", acks ? ack : NULL, NULL,
			};

			snprintf(mid, sizeof(mid), "ID:fake-1:%d", m);
			snprintf(ack, sizeof(ack), "ack:%d|x", m);
			if (fk->cfg.big_body) {
				char *big = malloc(fk->cfg.big_body + 1);

				assert_non_null(big);
				memset(big, 'x', fk->cfg.big_body);
				big[fk->cfg.big_body] = '\0';
				c_frame(c, "MESSAGE", h, big);
				free(big);
				continue;
			}
			snprintf(body, sizeof(body), "{\"n\":%d}", m);
			c_frame(c, "MESSAGE", h, body);
		}
		return GO_ON;
	}
	if (strcmp(f->command, "SEND") == 0) {
		if ((v = stomp_frame_value(f, "receipt")) != NULL &&
		    !fk->cfg.no_receipts) {
			const char *h[] = { "receipt-id", v, NULL };

			c_frame(c, "RECEIPT", h, NULL);
		}
		return GO_ON;
	}
	if (strcmp(f->command, "DISCONNECT") == 0) {
		if ((v = stomp_frame_value(f, "receipt")) != NULL) {
			const char *h[] = { "receipt-id", v, NULL };

			c_frame(c, "RECEIPT", h, NULL);
		}
		return CLOSE;
	}
	return GO_ON;
}

static inline void
fake_serve(struct fake *fk, int fd)
{
	struct timeval tv = { 0, 20000 };
	struct conn c = { fd, NULL };
	struct stomp_parser *p = stomp_parser_new(NULL);
	struct stomp_frame f;
	enum stomp_result r;
	bool connected = false, silent = false;
	int64_t last_hb = now_ms(), hs_end = now_ms() + 3000;
	int idx = fk->conns++;
	char buf[8192];
	ssize_t n;

	assert_non_null(p);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	tv.tv_sec = 2;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (fk->ctx) {
		int rr;

		c.ssl = SSL_new(fk->ctx);
		SSL_set_fd(c.ssl, fd);
		while ((rr = SSL_accept(c.ssl)) != 1) {
			int e = SSL_get_error(c.ssl, rr);

			if ((e != SSL_ERROR_WANT_READ &&
			    e != SSL_ERROR_WANT_WRITE) || atomic_load(&fk->stop) ||
			    now_ms() > hs_end) {
				fk->tls_failures++;
				goto out;
			}
		}
		{
			X509 *pc = SSL_get1_peer_certificate(c.ssl);

			if (pc) {
				X509_NAME_get_text_by_NID(
				    X509_get_subject_name(pc), NID_commonName,
				    fk->client_cn, sizeof(fk->client_cn));
				X509_free(pc);
			}
		}
	}
	while (!atomic_load(&fk->stop)) {
		if (fk->cfg.endless && connected) {
			memset(buf, 'v', sizeof(buf));
			if (c_write(&c, buf, sizeof(buf)) < 0)
				break;
			fk->endless_bytes += sizeof(buf);
		}
		n = c_read(&c, buf, sizeof(buf));
		if (n == 0 || n == -2)
			break;
		if (n > 0) {
			if (stomp_parser_feed(p, buf, (size_t)n) < 0)
				break;
			while ((r = stomp_parser_next(p, &f)) == STOMP_FRAME)
				if (fake_frame(fk, &c, idx, &f, &connected,
				    &silent) == CLOSE)
					goto out;
			fk->hb_in = stomp_parser_heartbeats(p);
			if (r == STOMP_ERROR)
				break;
		}
		if (fk->cfg.send_hb_ms && connected && !silent &&
		    now_ms() - last_hb >= fk->cfg.send_hb_ms) {
			c_write(&c, "\n", 1);
			last_hb = now_ms();
		}
	}
out:
	if (c.ssl) {
		SSL_shutdown(c.ssl);
		SSL_free(c.ssl);
	}
	close(fd);
	fk->closed++;
	stomp_parser_free(p);
}

static inline void *
fake_main(void *arg)
{
	struct fake *fk = arg;
	sigset_t set;

	/* a client that goes away must not kill the test with SIGPIPE */
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	while (!atomic_load(&fk->stop)) {
		struct pollfd pfd = { fk->lfd, POLLIN, 0 };
		int fd;

		if (poll(&pfd, 1, 20) <= 0)
			continue;
		if ((fd = accept(fk->lfd, NULL, NULL)) < 0)
			continue;
		fake_serve(fk, fd);
	}
	return NULL;
}

static inline struct fake *
fake_start(const struct fake_cfg *cfg)
{
	struct fake *fk = calloc(1, sizeof(*fk));
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	int one = 1;

	assert_non_null(fk);
	fk->cfg = *cfg;
	pthread_mutex_init(&fk->mu, NULL);
	fk->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fk->lfd >= 0);
	setsockopt(fk->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fk->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fk->lfd, 8), 0);
	assert_int_equal(getsockname(fk->lfd, (struct sockaddr *)&a, &al), 0);
	fk->port = ntohs(a.sin_port);
	if (cfg->tls_cert) {
		fk->ctx = SSL_CTX_new(TLS_server_method());
		assert_non_null(fk->ctx);
		assert_int_equal(SSL_CTX_use_certificate_file(fk->ctx,
		    cfg->tls_cert, SSL_FILETYPE_PEM), 1);
		assert_int_equal(SSL_CTX_use_PrivateKey_file(fk->ctx,
		    cfg->tls_key, SSL_FILETYPE_PEM), 1);
		if (cfg->client_ca) {
			assert_int_equal(SSL_CTX_load_verify_locations(fk->ctx,
			    cfg->client_ca, NULL), 1);
			SSL_CTX_set_verify(fk->ctx, SSL_VERIFY_PEER |
			    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
		}
	}
	assert_int_equal(pthread_create(&fk->th, NULL, fake_main, fk), 0);
	return fk;
}

static inline void
fake_stop(struct fake *fk)
{
	atomic_store(&fk->stop, true);
	pthread_join(fk->th, NULL);
	close(fk->lfd);
	if (fk->ctx)
		SSL_CTX_free(fk->ctx);
	buf_free(&fk->log);
	pthread_mutex_destroy(&fk->mu);
	free(fk);
}

/* A port nothing listens on. */
static inline int
free_port(void)
{
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

#endif
