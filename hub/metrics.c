/*
 * HTTP metrics and status (metrics.h), served by libmicrohttpd so that no
 * HTTP parsing of our own faces the network.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include <fedmsg/message.h>

#include "hub.h"
#include "metrics.h"

struct metrics {
	struct MHD_Daemon	*d;
	struct hub		*hub;
};

static enum MHD_Result
answer(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_len, void **con_cls)
{
	struct metrics *m = cls;
	struct MHD_Response *r;
	const char *type = "application/json";
	char *body;
	unsigned status = MHD_HTTP_OK;
	enum MHD_Result rc;

	(void)version; (void)upload; (void)upload_len; (void)con_cls;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		body = strdup("{\"error\": \"method not allowed\"}\n");
		status = MHD_HTTP_METHOD_NOT_ALLOWED;
	} else if (strcmp(url, "/metrics") == 0) {
		body = hub_metrics_text(m->hub);
		type = "text/plain; version=0.0.4";
	} else if (strcmp(url, "/status") == 0) {
		body = hub_status_json(m->hub, false);
	} else if (strcmp(url, "/live") == 0) {
		body = strdup("{\"status\": \"OK\"}\n");
	} else {
		body = strdup("{\"error\": \"not found: try /metrics, /status "
		    "or /live\"}\n");
		status = MHD_HTTP_NOT_FOUND;
	}
	if (body == NULL)
		return MHD_NO;
	r = MHD_create_response_from_buffer(strlen(body), body,
	    MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", type);
	rc = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return rc;
}

struct metrics *
metrics_start(struct hub *hub, const char *addr, char *err)
{
	struct sockaddr_in sin;
	struct metrics *m;
	const char *colon = strrchr(addr, ':'), *d;
	char host[64];
	long port = 0;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	/* the port is 1 to 5 digits and nothing else ("47313junk" is not) */
	for (d = colon ? colon + 1 : ""; *d >= '0' && *d <= '9' &&
	    d - colon <= 5; d++)
		port = port * 10 + (*d - '0');
	if (colon == NULL || (size_t)(colon - addr) >= sizeof(host) ||
	    d == colon + 1 || *d != '\0' || port <= 0 || port > 65535) {
		snprintf(err, FM_ERRLEN, "hub.metrics '%s': want HOST:PORT", addr);
		return NULL;
	}
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1 ||
	    (ntohl(sin.sin_addr.s_addr) >> 24) != 127) {
		snprintf(err, FM_ERRLEN, "hub.metrics '%s': the host must be a "
		    "loopback IPv4 address such as 127.0.0.1", addr);
		return NULL;
	}
	sin.sin_port = htons((uint16_t)port);
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		snprintf(err, FM_ERRLEN, "out of memory");
		return NULL;
	}
	m->hub = hub;
	m->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
	    MHD_USE_ERROR_LOG, 0, NULL, NULL, answer, m,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)16,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
	if (m->d == NULL) {
		snprintf(err, FM_ERRLEN, "hub.metrics: cannot listen on %s", addr);
		free(m);
		return NULL;
	}
	return m;
}

void
metrics_stop(struct metrics *m)
{
	if (m == NULL)
		return;
	MHD_stop_daemon(m->d);
	free(m);
}
