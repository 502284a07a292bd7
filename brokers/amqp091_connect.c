/*
 * One AMQP 0-9-1 connection attempt on a thread of its own (see
 * amqp091_connect.h for why).  The thread touches nothing but its
 * struct a091_connect; the loop reads the results only after `done`.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>

#include <fedmsg/message.h>

#include "amqp091_connect.h"
#include "amqp091_table.h"

#define FRAME_MAX	131072

struct a091_connect {
	struct a091_connect_req	 req;
	int			 wake[2];	/* thread writes, loop polls */
	atomic_bool		 done;
	atomic_int		 refs;		/* the thread and the loop */
	/* results, written by the thread before done */
	amqp_connection_state_t	 conn;
	char		       **queues;
	char			 err[FM_ERRLEN];
};

void
a091_reply_text(amqp_rpc_reply_t r, const char *what, char *out, size_t len)
{
	switch (r.reply_type) {
	case AMQP_RESPONSE_NORMAL:
		snprintf(out, len, "%s: ok", what);
		break;
	case AMQP_RESPONSE_NONE:
		snprintf(out, len, "%s: no reply", what);
		break;
	case AMQP_RESPONSE_LIBRARY_EXCEPTION:
		snprintf(out, len, "%s: %s", what,
		    amqp_error_string2(r.library_error));
		break;
	case AMQP_RESPONSE_SERVER_EXCEPTION:
		if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
			amqp_connection_close_t *c = r.reply.decoded;

			snprintf(out, len, "%s: broker closed the connection: "
			    "%u %.*s", what, c->reply_code,
			    (int)c->reply_text.len,
			    (char *)c->reply_text.bytes);
		} else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
			amqp_channel_close_t *c = r.reply.decoded;

			snprintf(out, len, "%s: broker closed the channel: "
			    "%u %.*s", what, c->reply_code,
			    (int)c->reply_text.len,
			    (char *)c->reply_text.bytes);
		} else {
			snprintf(out, len, "%s: broker error (method 0x%08x)",
			    what, r.reply.id);
		}
		break;
	}
}

static bool
rpc_ok(amqp_connection_state_t conn, const char *what, char *err)
{
	amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);

	if (r.reply_type == AMQP_RESPONSE_NORMAL)
		return true;
	a091_reply_text(r, what, err, FM_ERRLEN);
	return false;
}

static bool
jbool(json_t *o, const char *k, bool dflt)
{
	json_t *v = json_object_get(o, k);

	return v ? json_is_true(v) : dflt;
}

/*
 * exchanges {name: {type, durable, auto_delete, arguments}}, queues
 * {name: {durable, auto_delete, exclusive, arguments}}, bindings
 * [{queue, exchange, routing_keys}]; passive_declares checks only.
 */
int
a091_declare(amqp_connection_state_t conn, json_t *t, char *err)
{
	json_t *v, *b;
	bool passive = jbool(t, "passive_declares", false);
	const char *name;
	char what[300];
	size_t i, k;

	json_object_foreach(json_object_get(t, "exchanges"), name, v) {
		amqp_pool_t pool;
		amqp_table_t args;
		const char *type = json_string_value(json_object_get(v,
		    "type"));

		init_amqp_pool(&pool, 1024);
		if (amqp091_table_from_json(json_object_get(v, "arguments"),
		    &pool, &args) < 0) {
			empty_amqp_pool(&pool);
			snprintf(err, FM_ERRLEN, "exchanges.%s.arguments: not "
			    "an object of JSON values", name);
			return -1;
		}
		amqp_exchange_declare(conn, A091_CHANNEL,
		    amqp_cstring_bytes(name),
		    amqp_cstring_bytes(type ? type : "topic"), passive,
		    jbool(v, "durable", true), jbool(v, "auto_delete", false),
		    0, args);
		empty_amqp_pool(&pool);
		snprintf(what, sizeof(what), "%s exchange '%s'", passive ?
		    "checking" : "declaring", name);
		if (!rpc_ok(conn, what, err))
			return -1;
	}
	json_object_foreach(json_object_get(t, "queues"), name, v) {
		amqp_pool_t pool;
		amqp_table_t args;

		init_amqp_pool(&pool, 1024);
		if (amqp091_table_from_json(json_object_get(v, "arguments"),
		    &pool, &args) < 0) {
			empty_amqp_pool(&pool);
			snprintf(err, FM_ERRLEN, "queues.%s.arguments: not an "
			    "object of JSON values", name);
			return -1;
		}
		amqp_queue_declare(conn, A091_CHANNEL, amqp_cstring_bytes(name),
		    passive, jbool(v, "durable", true),
		    jbool(v, "exclusive", false), jbool(v, "auto_delete", false),
		    args);
		empty_amqp_pool(&pool);
		snprintf(what, sizeof(what), "%s queue '%s'", passive ?
		    "checking" : "declaring", name);
		if (!rpc_ok(conn, what, err))
			return -1;
	}
	if (passive)
		return 0;	/* bindings cannot be checked, only made */
	json_array_foreach(json_object_get(t, "bindings"), i, b) {
		const char *q = json_string_value(json_object_get(b, "queue"));
		const char *x = json_string_value(json_object_get(b,
		    "exchange"));
		json_t *keys = json_object_get(b, "routing_keys"), *key;

		if (q == NULL || x == NULL || !json_is_array(keys)) {
			snprintf(err, FM_ERRLEN, "bindings[%zu]: want queue, "
			    "exchange and routing_keys (a list)", i);
			return -1;
		}
		json_array_foreach(keys, k, key) {
			if (!json_is_string(key)) {
				snprintf(err, FM_ERRLEN, "bindings[%zu]: "
				    "routing_keys must be strings", i);
				return -1;
			}
			amqp_queue_bind(conn, A091_CHANNEL,
			    amqp_cstring_bytes(q), amqp_cstring_bytes(x),
			    amqp_cstring_bytes(json_string_value(key)),
			    amqp_empty_table);
			snprintf(what, sizeof(what), "binding queue '%s' to "
			    "exchange '%s' with '%s'", q, x,
			    json_string_value(key));
			if (!rpc_ok(conn, what, err))
				return -1;
		}
	}
	return 0;
}

/*
 * "/exchange/X[/KEY]": a private server-named queue bound to X, gone
 * with the connection; "/queue/Q" or "Q": queue Q.
 */
int
a091_consume(amqp_connection_state_t conn, const char *addr, char **queue,
    char *err)
{
	char what[300];

	*queue = NULL;
	if (strncmp(addr, "/exchange/", 10) == 0) {
		const char *x = addr + 10, *slash = strchr(x, '/');
		amqp_queue_declare_ok_t *ok;
		char *xname;

		if ((xname = strndup(x, slash ? (size_t)(slash - x) :
		    strlen(x))) == NULL) {
			snprintf(err, FM_ERRLEN, "out of memory");
			return -1;
		}
		ok = amqp_queue_declare(conn, A091_CHANNEL, amqp_empty_bytes,
		    0, 0, 1, 1, amqp_empty_table);
		if (ok == NULL || !rpc_ok(conn, "declaring a private queue",
		    err)) {
			if (ok == NULL)
				rpc_ok(conn, "declaring a private queue", err);
			free(xname);
			return -1;
		}
		*queue = strndup(ok->queue.bytes, ok->queue.len);
		if (*queue == NULL) {
			free(xname);
			snprintf(err, FM_ERRLEN, "out of memory");
			return -1;
		}
		amqp_queue_bind(conn, A091_CHANNEL, amqp_cstring_bytes(*queue),
		    amqp_cstring_bytes(xname),
		    amqp_cstring_bytes(slash ? slash + 1 : "#"),
		    amqp_empty_table);
		snprintf(what, sizeof(what), "binding to exchange '%s'", xname);
		free(xname);
		if (!rpc_ok(conn, what, err))
			return -1;
	} else if ((*queue = strdup(strncmp(addr, "/queue/", 7) == 0 ?
	    addr + 7 : addr)) == NULL) {
		snprintf(err, FM_ERRLEN, "out of memory");
		return -1;
	}
	amqp_basic_consume(conn, A091_CHANNEL, amqp_cstring_bytes(*queue),
	    amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
	snprintf(what, sizeof(what), "consuming queue '%s'", *queue);
	return rpc_ok(conn, what, err) ? 0 : -1;
}

/* Socket, TLS, login, channel, confirms, declarations, qos, consumers. */
static int
open_ready(struct a091_connect *c, char *err)
{
	const struct a091_connect_req *r = &c->req;
	amqp_socket_t *sock;
	struct timeval tv;
	amqp_rpc_reply_t rr;
	int rc, i;

	tv.tv_sec = r->timeout_ms / 1000;
	tv.tv_usec = (r->timeout_ms % 1000) * 1000;
	if ((c->conn = amqp_new_connection()) == NULL) {
		snprintf(err, FM_ERRLEN, "out of memory");
		return -1;
	}
	amqp_set_handshake_timeout(c->conn, &tv);
	amqp_set_rpc_timeout(c->conn, &tv);
	if (r->tls) {
		if ((sock = amqp_ssl_socket_new(c->conn)) == NULL) {
			snprintf(err, FM_ERRLEN, "%s: cannot make a TLS socket",
			    r->url_text);
			return -1;
		}
		amqp_ssl_socket_set_verify_peer(sock, 1);
		amqp_ssl_socket_set_verify_hostname(sock, 1);
		if (r->ca && (rc = amqp_ssl_socket_set_cacert(sock, r->ca))) {
			snprintf(err, FM_ERRLEN, "tls.ca %s: %s", r->ca,
			    amqp_error_string2(rc));
			return -1;
		}
		if (r->cert && (rc = amqp_ssl_socket_set_key(sock, r->cert,
		    r->key ? r->key : r->cert))) {
			snprintf(err, FM_ERRLEN, "tls.cert %s: %s", r->cert,
			    amqp_error_string2(rc));
			return -1;
		}
	} else if ((sock = amqp_tcp_socket_new(c->conn)) == NULL) {
		snprintf(err, FM_ERRLEN, "out of memory");
		return -1;
	}
	rc = amqp_socket_open_noblock(sock, r->host, atoi(r->port), &tv);
	if (rc != AMQP_STATUS_OK) {
		snprintf(err, FM_ERRLEN, "%s: %s%s", r->url_text,
		    amqp_error_string2(rc),
		    rc == AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED ?
		    " (the certificate does not name this host)" :
		    rc == AMQP_STATUS_SSL_CONNECTION_FAILED ||
		    rc == AMQP_STATUS_SSL_PEER_VERIFY_FAILED ?
		    " (TLS: check tls.ca and the broker's certificate)" : "");
		return -1;
	}
	if (r->tls && r->cert && r->password == NULL)
		rr = amqp_login(c->conn, r->vhost, 0, FRAME_MAX,
		    (int)r->heartbeat_s, AMQP_SASL_METHOD_EXTERNAL,
		    r->user ? r->user : "");
	else
		rr = amqp_login(c->conn, r->vhost, 0, FRAME_MAX,
		    (int)r->heartbeat_s, AMQP_SASL_METHOD_PLAIN,
		    r->user ? r->user : "guest",
		    r->password ? r->password : "guest");
	if (rr.reply_type != AMQP_RESPONSE_NORMAL) {
		char why[FM_ERRLEN];

		a091_reply_text(rr, "login", why, sizeof(why));
		snprintf(err, FM_ERRLEN, "%s vhost '%s': %s", r->url_text,
		    r->vhost, why);
		return -1;
	}
	amqp_channel_open(c->conn, A091_CHANNEL);
	if (!rpc_ok(c->conn, "opening a channel", err))
		return -1;
	amqp_confirm_select(c->conn, A091_CHANNEL);
	if (!rpc_ok(c->conn, "confirm.select", err))
		return -1;
	if (a091_declare(c->conn, r->topology, err) < 0)
		return -1;
	amqp_basic_qos(c->conn, A091_CHANNEL, 0, r->prefetch, 0);
	if (!rpc_ok(c->conn, "basic.qos", err))
		return -1;
	if (r->nsources && (c->queues = calloc((size_t)r->nsources,
	    sizeof(*c->queues))) == NULL) {
		snprintf(err, FM_ERRLEN, "out of memory");
		return -1;
	}
	for (i = 0; i < r->nsources; i++)
		if (a091_consume(c->conn, r->sources[i], &c->queues[i],
		    err) < 0)
			return -1;
	return 0;
}

static void
free_queues(char **q, int n)
{
	int i;

	if (q == NULL)
		return;
	for (i = 0; i < n; i++)
		free(q[i]);
	free(q);
}

void
a091_connect_req_clear(struct a091_connect_req *r)
{
	int i;

	free(r->url_text);
	free(r->host);
	free(r->port);
	free(r->vhost);
	free(r->user);
	if (r->password)
		explicit_bzero(r->password, strlen(r->password));
	free(r->password);
	free(r->ca);
	free(r->cert);
	free(r->key);
	json_decref(r->topology);
	for (i = 0; i < r->nsources; i++)
		free(r->sources[i]);
	free(r->sources);
	memset(r, 0, sizeof(*r));
}

static void
unref(struct a091_connect *c)
{
	if (atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	if (c->conn)
		amqp_destroy_connection(c->conn);
	free_queues(c->queues, c->req.nsources);
	a091_connect_req_clear(&c->req);
	close(c->wake[0]);
	close(c->wake[1]);
	free(c);
}

static void *
attempt(void *arg)
{
	struct a091_connect *c = arg;
	char err[FM_ERRLEN];

	if (open_ready(c, err) < 0) {
		snprintf(c->err, sizeof(c->err), "%s", err);
		if (c->conn) {
			/* no close handshake: broken or refused */
			amqp_destroy_connection(c->conn);
			c->conn = NULL;
		}
		free_queues(c->queues, c->req.nsources);
		c->queues = NULL;
	}
	atomic_store(&c->done, true);
	if (write(c->wake[1], "", 1) < 0) {
		/* the pipe is non-blocking and written once: cannot fill */
	}
	unref(c);
	return NULL;
}

struct a091_connect *
a091_connect_start(struct a091_connect_req *r, char *err)
{
	struct a091_connect *c;
	pthread_attr_t attr;
	pthread_t t;
	sigset_t all, old;
	int rc;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		a091_connect_req_clear(r);
		snprintf(err, FM_ERRLEN, "out of memory");
		return NULL;
	}
	c->req = *r;
	memset(r, 0, sizeof(*r));
	if (pipe2(c->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		snprintf(err, FM_ERRLEN, "pipe: %s", strerror(errno));
		a091_connect_req_clear(&c->req);
		free(c);
		return NULL;
	}
	atomic_init(&c->done, false);
	atomic_init(&c->refs, 2);
	/* signals stay with the loop's thread */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&t, &attr, attempt, c);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		snprintf(err, FM_ERRLEN, "cannot start a connect thread: %s",
		    strerror(rc));
		atomic_store(&c->refs, 1);
		unref(c);
		return NULL;
	}
	return c;
}

int
a091_connect_fd(const struct a091_connect *c)
{
	return c->wake[0];
}

bool
a091_connect_done(const struct a091_connect *c)
{
	return atomic_load(&((struct a091_connect *)c)->done);
}

amqp_connection_state_t
a091_connect_finish(struct a091_connect *c, char ***queues, char *err)
{
	amqp_connection_state_t conn = c->conn;

	*queues = c->queues;
	c->conn = NULL;
	c->queues = NULL;
	if (conn == NULL)
		snprintf(err, FM_ERRLEN, "%s", c->err);
	unref(c);
	return conn;
}

void
a091_connect_abandon(struct a091_connect *c)
{
	unref(c);
}
