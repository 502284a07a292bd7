/*
 * libFuzzer target: the JSON parser on any bytes.  Parsing with
 * borrow_input on and off must agree (same verdict and error text, or the
 * same canonical JSON), and the canonical text must parse again to itself.
 * Any difference calls abort().
 *
 *   make build/fuzz/fuzz_json
 *   build/fuzz/fuzz_json tests/fuzz/corpus/fuzz_json
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fedmsg/message.h>

#include "buf.h"
#include "canon.h"
#include "json.h"

#include "fuzz_die.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *
canon(const struct jv_doc *doc, size_t *len)
{
	struct buf b = BUF_INIT;
	char *s;

	canon_value(&b, jv_doc_root(doc));
	if ((s = buf_steal(&b, len)) == NULL)
		die("canon_value", "out of memory");
	return s;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jv_parse_opts borrow = { 0, true }, copy = { 0, false };
	char e1[FM_ERRLEN], e2[FM_ERRLEN], e3[FM_ERRLEN];
	struct jv_doc *d1, *d2, *d3;
	char *c1, *c2, *c3, *text;
	size_t n1, n2, n3;

	/* a private heap copy of exactly size bytes, so overreads show */
	if ((text = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	d1 = jv_parse(text, size, &borrow, e1);
	d2 = jv_parse(text, size, &copy, e2);
	if ((d1 == NULL) != (d2 == NULL))
		die("borrow_input changes the verdict", d1 ? e2 : e1);
	if (d1 == NULL) {
		if (strcmp(e1, e2) != 0)
			die("borrow_input changes the error", e1);
		if (strstr(e1, " at byte ") == NULL &&
		    strstr(e1, "out of memory") == NULL)
			die("error without an offset", e1);
		free(text);
		return 0;
	}
	c1 = canon(d1, &n1);
	c2 = canon(d2, &n2);
	if (n1 != n2 || memcmp(c1, c2, n1) != 0)
		die("borrow_input changes the value", c1);
	if (jv_is_falsy(jv_doc_root(d1)) != jv_is_falsy(jv_doc_root(d2)))
		die("borrow_input changes truthiness", c1);
	/* the copy must not depend on the input any more */
	memset(text, 'X', size);
	c3 = canon(d2, &n3);
	if (n3 != n2 || memcmp(c2, c3, n2) != 0)
		die("a copied doc still points into the input", c2);
	free(c3);
	/* fixed point */
	if ((d3 = jv_parse(c1, n1, &copy, e3)) == NULL)
		die("canonical text does not parse", e3);
	c3 = canon(d3, &n3);
	if (n3 != n1 || memcmp(c1, c3, n1) != 0)
		die("not idempotent", c1);
	free(c1);
	free(c2);
	free(c3);
	jv_doc_free(d1);
	jv_doc_free(d2);
	jv_doc_free(d3);
	free(text);
	return 0;
}
