/*
 * resultsdb: CI messages -> ResultsDB results, as ResultsDB-Updater maps
 * them (release-engineering/resultsdb-updater: the CI messages 0.x
 * formats of every artifact type, the "resultsdb" single and bulk
 * formats, the old platformci tier1 metrics).  Pure: no I/O.
 */
#ifndef RESULTSDB_MAPPING_H
#define RESULTSDB_MAPPING_H

#include <stddef.h>

#include <jansson.h>

#define RDB_MAX_RESULTS	256	/* results one message may produce */
#define RDB_WHYLEN	512

/* One result to POST: {"testcase", "outcome", "ref_url", "note", "data",
 * "groups": [group]}.  The group's "uuid" is left for the caller (see
 * resultsdb.c: derived from the message id, or looked up). */
struct rdb_result {
	json_t	*payload;	/* owned */
	json_t	*group;		/* borrowed from payload: groups[0] */
	const char *testcase;	/* borrowed from payload: its name */
};

struct rdb_results {
	size_t		 n;
	struct rdb_result r[RDB_MAX_RESULTS];
	/* the "resultsdb" single format reuses a group found by this
	 * description (GET /groups?description=...), else a new one */
	int		 lookup_group;
};

/* A private test case glob and the JMSXUserID allowed to publish it. */
struct rdb_private {
	char	*glob;
	char	*publisher;
};

struct rdb_input {
	const char	*topic;		/* as on the bus ("/topic/VirtualTopic..") */
	json_t		*body;		/* the CI message (fedmsg "msg") */
	json_t		*headers;	/* STOMP/JMS headers, or NULL */
	const struct rdb_private *priv;	/* private test cases */
	size_t		 npriv;
	/* warnings (ResultsDB-Updater logs and goes on) */
	void		(*warn)(void *arg, const char *fmt, ...);
	void		*warn_arg;
};

enum rdb_map_rc {
	RDB_MAP_OK = 0,		/* out holds 1..n results */
	RDB_MAP_IGNORED = 1,	/* not a format handled (why says so) */
	RDB_MAP_REJECTED = 2,	/* invalid: why has ResultsDB-Updater's reason */
	RDB_MAP_NOMEM = 3,
};

/* Map one message; on RDB_MAP_OK the caller frees out with
 * rdb_results_free().  why gets the reason of any other outcome. */
enum rdb_map_rc rdb_map(const struct rdb_input *in, struct rdb_results *out,
    char why[RDB_WHYLEN]);
void rdb_results_free(struct rdb_results *out);

#endif
