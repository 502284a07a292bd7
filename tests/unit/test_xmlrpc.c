/*
 * consumers/robosignatory/xmlrpc.c: what Python's xmlrpc.client/server
 * (Koji's hub) sends decodes to the right tree; malformed, unbounded or
 * hostile documents are refused with a reason; requests encode Koji's
 * keyword arguments.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../consumers/robosignatory/xmlrpc.c"

static struct xr_value *
ok(const char *text, int want)
{
	struct xr_value *v = NULL;
	char err[200];
	int rc = xr_parse_response(text, strlen(text), &v, err, sizeof(err));

	if (rc != want)
		fail_msg("rc %d (%s) for %s", rc, err, text);
	return v;
}

static void
test_python_shapes(void **state)
{
	struct xr_value *v;
	int64_t i;

	(void)state;
	v = ok("<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n"
	    "<value><struct>\n<member>\n<name>id</name>\n<value><int>42</int>"
	    "</value>\n</member>\n<member>\n<name>name</name>\n<value><string>"
	    "a&amp;b&lt;c&#233;</string></value>\n</member>\n<member>\n<name>n"
	    "</name>\n<value><nil/></value></member><member><name>big</name>"
	    "<value><i8>9000000000</i8></value></member><member><name>u</name>"
	    "<value>plain</value></member><member><name>e</name><value>"
	    "<string/></value></member></struct></value>\n</param>\n</params>\n"
	    "</methodResponse>\n", 0);
	assert_int_equal(v->type, XR_STRUCT);
	assert_int_equal(xr_get_int(v, "id", &i), 0);
	assert_int_equal(i, 42);
	assert_string_equal(xr_get_str(v, "name"), "a&b<c\xc3\xa9");
	assert_int_equal(xr_get(v, "n")->type, XR_NIL);
	assert_int_equal(xr_get_int(v, "big", &i), 0);
	assert_true(i == 9000000000LL);
	assert_string_equal(xr_get_str(v, "u"), "plain");
	assert_string_equal(xr_get_str(v, "e"), "");
	xr_free(v);

	v = ok("<methodResponse><params><param><value><array><data>"
	    "<value><boolean>1</boolean></value><value><double>1.5</double>"
	    "</value></data></array></value></param></params></methodResponse>",
	    0);
	assert_int_equal(v->n, 2);
	assert_int_equal(v->items[0]->i, 1);
	xr_free(v);

	v = ok("<methodResponse><fault><value><struct><member><name>faultCode"
	    "</name><value><int>1000</int></value></member><member><name>"
	    "faultString</name><value><string>GenericError</string></value>"
	    "</member></struct></value></fault></methodResponse>", 1);
	assert_string_equal(xr_get_str(v, "faultString"), "GenericError");
	xr_free(v);
}

static void
test_refused(void **state)
{
	static const char *const bad[] = {
		"", "<html>502 Bad Gateway</html>",
		"<!DOCTYPE x [<!ENTITY a 'b'>]><methodResponse/>",
		"<methodResponse><params><param><value><int>1</i4></value>"
		"</param></params></methodResponse>",
		"<methodResponse><params><param><value><int>x</int></value>"
		"</param></params></methodResponse>",
		"<methodResponse><params><param><value><int>99999999999999999999"
		"</int></value></param></params></methodResponse>",
		"<methodResponse><params><param><value>&bogus;</value></param>"
		"</params></methodResponse>",
		"<methodResponse><params><param><value>&#0;</value></param>"
		"</params></methodResponse>",
		"<methodResponse><params><param><value><blob>1</blob></value>"
		"</param></params></methodResponse>",
		"<methodResponse><params><param><value>1</value></param>"
		"</params></methodResponse>trailing",
		"<methodResponse><fault><value><int>1</int></value></fault>"
		"</methodResponse>",
		"<methodResponse><params><param><value><array><data>",
	};
	char deep[4096] = "<methodResponse><params><param>";
	struct xr_value *v;
	char err[200];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (xr_parse_response(bad[i], strlen(bad[i]), &v, err,
		    sizeof(err)) != -1)
			fail_msg("accepted: %s", bad[i]);
		assert_null(v);
		assert_true(err[0] != '\0');
	}
	for (i = 0; i < XR_MAX_DEPTH + 2; i++)
		strcat(deep, "<value><array><data>");
	assert_int_equal(xr_parse_response(deep, strlen(deep), &v, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "nested deeper"));
}

static void
test_encode_kwargs(void **state)
{
	struct xr_buf b;

	(void)state;
	xr_call_begin(&b, "queryRPMSigs");
	xr_kwargs_begin(&b);
	xr_kw_int(&b, "rpm_id", 7);
	xr_kw_string(&b, "sigkey", "<&>");
	xr_kwargs_end(&b);
	assert_int_equal(xr_call_end(&b), 0);
	assert_non_null(strstr(b.s, "<methodName>queryRPMSigs</methodName>"));
	assert_non_null(strstr(b.s, "<name>rpm_id</name><value><int>7</int>"));
	assert_non_null(strstr(b.s, "<string>&lt;&amp;&gt;</string>"));
	assert_non_null(strstr(b.s, "<name>__starstar</name><value><boolean>1"));
	xr_buf_free(&b);
	xr_call_begin(&b, "tagBuild");
	xr_param_int(&b, 5000000000LL);
	xr_param_bool(&b, 0);
	xr_param_nil(&b);
	assert_int_equal(xr_call_end(&b), 0);
	assert_non_null(strstr(b.s, "<i8>5000000000</i8>"));
	assert_non_null(strstr(b.s, "<nil/>"));
	xr_buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_python_shapes),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_encode_kwargs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
