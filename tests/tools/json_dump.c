/*
 * json_dump: a test-only helper that shows how fedmsg-c parses files, for
 * tests/integration/test_json_differential.py to compare with Python's
 * json.loads.  For each FILE argument, one line:
 *
 *   ok <dup> <env> <canonical JSON of the value>
 *   error <jv_parse()'s reason>
 *
 * dup is 1 when an object held a key twice (the last copy is kept, as in
 * Python), env is what fm_msg_parse() says of the same bytes as a message
 * body: "envelope", "refused" (a duplicate key) or "other" (another
 * refusal: not an object, ...).  The canonical text is ASCII on one line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fedmsg/message.h>

#include "buf.h"
#include "canon.h"
#include "json.h"

static char *
slurp(const char *path, size_t *len)
{
	struct buf b = BUF_INIT;
	char chunk[65536];
	size_t n;
	FILE *f = fopen(path, "rb");

	if (f == NULL)
		return NULL;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_add(&b, chunk, n);
	fclose(f);
	if (b.oom)
		return NULL;
	if (b.data == NULL) {		/* an empty file */
		*len = 0;
		return strdup("");
	}
	return buf_steal(&b, len);
}

int
main(int argc, char **argv)
{
	struct fm_limits lim = { SIZE_MAX, 0 };
	int i;

	for (i = 1; i < argc; i++) {
		char err[FM_ERRLEN], *text, *c;
		size_t len = 0, clen;
		struct jv_doc *doc;
		struct fm_msg *m = NULL;
		struct buf b = BUF_INIT;
		const char *env;

		if ((text = slurp(argv[i], &len)) == NULL) {
			perror(argv[i]);
			return 2;
		}
		if ((doc = jv_parse(text, len, NULL, err)) == NULL) {
			printf("error %s\n", err);
			free(text);
			continue;
		}
		if (fm_msg_parse(text, len, &lim, &m, err) == 0)
			env = "envelope";
		else
			env = strstr(err, "duplicate key") ? "refused" : "other";
		fm_msg_unref(m);
		canon_value(&b, jv_doc_root(doc));
		if ((c = buf_steal(&b, &clen)) == NULL) {
			fprintf(stderr, "%s: out of memory\n", argv[i]);
			return 2;
		}
		printf("ok %d %s %s\n", jv_doc_duplicate(doc, NULL, NULL, NULL),
		    env, c);
		free(c);
		jv_doc_free(doc);
		free(text);
	}
	return fflush(stdout) == 0 ? 0 : 2;
}
