/*
 * consumers/resultsdb/mapping.c: a few message shapes per format become
 * the payloads ResultsDB-Updater POSTs (test case, outcome, ref_url,
 * note, groups without their uuid, data), or its rejection with its
 * reason.  The expectations follow resultsdb-updater's utils.py and its
 * tests/test_consumer.py assertions (and were checked against its
 * consumer); JSON is written with ' for " to keep the table readable.
 * Compiled with the public headers only, as the plugin is.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../consumers/resultsdb/mapping.c"

#define UMB	"/topic/VirtualTopic.eng.ci."
#define CI	"'ci':{'name':'C','team':'T','email':'e@x'}"
#define CI_OUT	"'ci_name':'C','ci_team':'T','ci_url':'not available'," \
		"'ci_irc':'not available','ci_email':'e@x','recipients':[]"

struct mcase {
	const char	*name;
	const char	*topic;
	const char	*body;		/* the message's "msg" */
	const char	*headers;	/* or NULL */
	enum rdb_map_rc	 rc;
	const char	*want;		/* RDB_MAP_OK: the payloads, an array */
	const char	*why;		/* otherwise: the reason */
	int		 lookup_group;
};

static const struct mcase cases[] = {
	/* CI messages 0.1: brew-build, "scratch" as a string; None kept */
	{ "umb 0.1 brew-build", UMB "osci.brew-build.test.complete",
	  "{'version':'0.1.0'," CI ",'run':{'url':'https://r/1','log':'L'},"
	  "'artifact':{'type':'brew-build','nvr':'foo-1-1','component':'foo',"
	  "'scratch':'True','id':7,'issuer':'me'},'category':'functional',"
	  "'namespace':'osci','type':'tier1','status':'pass'}", NULL,
	  RDB_MAP_OK,
	  "[{'testcase':{'name':'osci.tier1.functional'},'outcome':'PASSED',"
	  "'ref_url':'https://r/1','note':'','groups':[{'url':'https://r/1'}],"
	  "'data':{'item':'foo-1-1','type':'brew-build_scratch',"
	  "'brew_task_id':7,'category':'functional','component':'foo',"
	  "'scratch':true,'issuer':'me','rebuild':null,'log':'L',"
	  "'system_os':null,'system_provider':null," CI_OUT "}}]", NULL, 0 },
	/* 0.2.0 (test.*): .error -> ERROR with the reason, module NSVC */
	{ "umb 0.2 redhat-module error", UMB
	  "baseos-ci.redhat-module.test.error",
	  "{'version':'0.2.0'," CI ",'run':{'url':'U','log':'L'},"
	  "'artifact':{'type':'redhat-module','nsvc':'n:s-1:1:c',"
	  "'context':'c','name':'n','stream':'s-1','version':'1'},"
	  "'test':{'category':'functional','namespace':'baseos-ci',"
	  "'type':'tier1','docs':'D'},'error':{'reason':'boom',"
	  "'issue_url':'I'},'notification':{'recipients':['a']}}", NULL,
	  RDB_MAP_OK,
	  "[{'testcase':{'name':'baseos-ci.tier1.functional','ref_url':'D'},"
	  "'outcome':'ERROR','ref_url':'U','note':'','groups':[{'url':'U'}],"
	  "'data':{'item':'n-s_1-1.c','type':'redhat-module','mbs_id':null,"
	  "'category':'functional','context':'c','name':'n',"
	  "'nsvc':'n-s_1-1.c','stream':'s-1','version':'1','issuer':null,"
	  "'rebuild':null,'log':'L','system_os':null,'system_provider':null,"
	  "'ci_name':'C','ci_team':'T','ci_url':'not available',"
	  "'ci_irc':'not available','ci_email':'e@x','recipients':['a'],"
	  "'error_reason':'boom','issue_url':'I'}}]", NULL, 0 },
	/* 0.2.1 (contact.*): compose, a system list, None left out */
	{ "umb 0.2.1 compose queued", UMB "osci.productmd-compose.test.queued",
	  "{'version':'0.2.1','contact':{'name':'C','team':'T','email':'e@x'},"
	  "'run':{'url':'U','log':'L'},'artifact':{'type':'productmd-compose',"
	  "'id':'RHEL-8'},'system':[{'architecture':'x86_64','provider':'p'}],"
	  "'test':{'category':'c','namespace':'osci','type':'t'}}",
	  "{'JMSXUserID':'bot'}", RDB_MAP_OK,
	  "[{'testcase':{'name':'osci.t.c'},'outcome':'QUEUED','ref_url':'U',"
	  "'note':'','groups':[{'url':'U'}],'data':{'item':'RHEL-8/unknown/"
	  "x86_64','log':'L','type':'productmd-compose',"
	  "'productmd.compose.id':'RHEL-8','system_provider':'p',"
	  "'system_architecture':'x86_64','category':'c'," CI_OUT ","
	  "'publisher_id':'bot'}}]", NULL, 0 },
	/* rejections, with ResultsDB-Updater's reasons */
	{ "umb 0.2 complete without result", UMB "osci.brew-build.test."
	  "complete", "{'version':'0.2.0'," CI ",'run':{'url':'U','log':'L'},"
	  "'artifact':{'type':'brew-build','nvr':'n','component':'c'},"
	  "'test':{'category':'c','namespace':'osci','type':'t'}}", NULL,
	  RDB_MAP_REJECTED, NULL, "Missing field \"test.result\"", 0 },
	{ "unknown artifact type", UMB "osci.x.test.complete",
	  "{" CI ",'run':{'url':'U'},'artifact':{'type':'nope'},"
	  "'status':'passed'}", NULL, RDB_MAP_REJECTED, NULL,
	  "Unknown artifact type \"nope\"", 0 },
	{ "unsupported version", UMB "osci.x.test.complete",
	  "{'version':'1.0.0'," CI ",'run':{'url':'U'},'artifact':{'type':"
	  "'brew-build'}}", NULL, RDB_MAP_REJECTED, NULL,
	  "Unsupported version: 1.0.0 (supported are only versions less than "
	  "1.0.0)", 0 },
	{ "bad nsvc", UMB "osci.redhat-module.test.complete",
	  "{" CI ",'run':{'url':'U'},'artifact':{'type':'redhat-module',"
	  "'nsvc':'x'},'status':'passed'}", NULL, RDB_MAP_REJECTED, NULL,
	  "Invalid nsvc \"x\" encountered", 0 },
	{ "status not a string", UMB "osci.brew-build.test.complete",
	  "{" CI ",'run':{'url':'U'},'artifact':{'type':'brew-build'},"
	  "'status':5}", NULL, RDB_MAP_REJECTED, NULL,
	  "Unexpected result status/outcome, expected a string, got: 5", 0 },
	/* the old platformci metrics: one result per test, then overall */
	{ "platformci tier1", "/topic/VirtualTopic.eng.platformci.tier1.result",
	  "{'team':'baseos','job_name':'J','jenkins_job_url':'JU',"
	  "'jenkins_build_url':'B/5/','brew_task_id':9,'component':'p-1-1',"
	  "'recipients':'a,b','CI_tier':1,'tests':[{'executor':'E',"
	  "'failed':0},{'failed':1}]}", NULL, RDB_MAP_OK,
	  "[{'testcase':{'name':'baseos.J.E','ref_url':'JU'},'outcome':"
	  "'PASSED','ref_url':'B/5/console','note':'','groups':[{'ref_url':"
	  "'B/5/'}],'data':{'executor':'E','failed':0,'item':'p-1-1','type':"
	  "'koji_build','recipients':['a','b'],'CI_tier':1,'job_name':'J',"
	  "'artifact':'unknown','brew_task_id':9}},"
	  "{'testcase':{'name':'baseos.J.unknown','ref_url':'JU'},'outcome':"
	  "'FAILED','ref_url':'B/5/console','note':'','groups':[{'ref_url':"
	  "'B/5/'}],'data':{'failed':1,'item':'p-1-1','type':'koji_build',"
	  "'recipients':['a','b'],'CI_tier':1,'job_name':'J','artifact':"
	  "'unknown','brew_task_id':9}},"
	  "{'testcase':{'name':'baseos.J','ref_url':'JU'},'outcome':'FAILED',"
	  "'ref_url':'B/5/console','note':'','groups':[{'ref_url':'B/5/'}],"
	  "'data':{'item':'p-1-1','type':'koji_build','recipients':['a','b'],"
	  "'CI_tier':1,'job_name':'J','artifact':'unknown','brew_task_id':9}}"
	  "]", NULL, 0 },
	/* the "resultsdb" formats: bulk (one group), single (looked up) */
	{ "resultsdb bulk", "/topic/VirtualTopic.eng.x",
	  "{'ref_url':'G','results':{'t.a':{'outcome':'PASSED','data':"
	  "{'item':'i'}}}}", NULL, RDB_MAP_OK,
	  "[{'testcase':'t.a','outcome':'PASSED','ref_url':'','note':'',"
	  "'groups':[{'ref_url':'G'}],'data':{'item':'i'}}]", NULL, 0 },
	{ "resultsdb rpmdiff single", "/topic/VirtualTopic.eng.x",
	  "{'ref_url':'https://h/run/12/34','testcase':{'name':'dist.rpmdiff."
	  "x'},'outcome':'PASSED','data':{'item':'i'},'note':'n'}",
	  "{'JMSXUserID':'rpmdiff'}", RDB_MAP_OK,
	  "[{'testcase':{'name':'dist.rpmdiff.x'},'outcome':'PASSED',"
	  "'ref_url':'https://h/run/12/34','note':'n','groups':[{'ref_url':"
	  "'https://h/run/12','description':'https://h/run/12'}],'data':"
	  "{'item':'i','publisher_id':'rpmdiff'}}]", NULL, 1 },
	{ "rpmdiff bad ref_url", "/topic/VirtualTopic.eng.x",
	  "{'ref_url':'ftp://h','testcase':{'name':'dist.rpmdiff.x'},"
	  "'outcome':'PASSED','data':{}}", NULL, RDB_MAP_REJECTED, NULL,
	  "The ref_url \"ftp://h\" did not match the rpmdiff URL scheme", 0 },
	/* what is not a CI result is ignored, not rejected */
	{ "unhandled", "/topic/VirtualTopic.eng.x", "{'a':1}", NULL,
	  RDB_MAP_IGNORED, NULL, "Received unhandled message", 0 },
	{ "not an object", "/topic/VirtualTopic.eng.x", "[1]", NULL,
	  RDB_MAP_IGNORED, NULL, "Dropping non-dict message.", 0 },
};

/* ' -> " */
static json_t *
j(const char *text)
{
	char *s = strdup(text), *p;
	json_error_t e;
	json_t *v;

	assert_non_null(s);
	for (p = s; *p; p++)
		if (*p == '\'')
			*p = '"';
	v = json_loads(s, JSON_DECODE_ANY, &e);
	if (v == NULL)
		fail_msg("bad test JSON (%s): %s", e.text, s);
	free(s);
	return v;
}

static void
run_case(const struct mcase *k)
{
	struct rdb_results *out = calloc(1, sizeof(*out));
	struct rdb_input in = { 0 };
	char why[RDB_WHYLEN];
	enum rdb_map_rc rc;
	json_t *want, *got;
	size_t i;

	assert_non_null(out);
	in.topic = k->topic;
	in.body = j(k->body);
	in.headers = k->headers ? j(k->headers) : NULL;
	rc = rdb_map(&in, out, why);
	if (rc != k->rc)
		fail_msg("%s: rc %d (%s), want %d", k->name, rc, why, k->rc);
	if (rc != RDB_MAP_OK) {
		if (strcmp(why, k->why) != 0)
			fail_msg("%s: why \"%s\", want \"%s\"", k->name, why,
			    k->why);
	} else {
		want = j(k->want);
		got = json_array();
		for (i = 0; i < out->n; i++) {
			/* the group's uuid is the caller's (resultsdb.c) */
			json_t *p = json_deep_copy(out->r[i].payload);

			json_object_del(json_array_get(json_object_get(p,
			    "groups"), 0), "uuid");
			json_array_append_new(got, p);
		}
		if (!json_equal(got, want)) {
			char *g = json_dumps(got, JSON_SORT_KEYS);
			char *w = json_dumps(want, JSON_SORT_KEYS);

			fail_msg("%s:\n got %s\nwant %s", k->name, g, w);
		}
		assert_int_equal(out->lookup_group, k->lookup_group);
		json_decref(got);
		json_decref(want);
		rdb_results_free(out);
	}
	json_decref(in.body);
	json_decref(in.headers);
	free(out);
}

static void
test_formats(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i]);
}

/* A private test case is refused to any other publisher. */
static void
test_private_testcase(void **state)
{
	struct rdb_private priv = { "osci.*", "ci-bot" };
	struct rdb_results *out = calloc(1, sizeof(*out));
	struct rdb_input in = { 0 };
	char why[RDB_WHYLEN];

	(void)state;
	assert_non_null(out);
	in.topic = "/topic/VirtualTopic.eng.x";
	in.body = j("{'ref_url':'G','results':{'osci.a':{'outcome':'PASSED'}}}");
	in.headers = j("{'JMSXUserID':'intruder'}");
	in.priv = &priv;
	in.npriv = 1;
	assert_int_equal(rdb_map(&in, out, why), RDB_MAP_REJECTED);
	assert_non_null(strstr(why, "\"osci.a\" is private"));
	json_decref(in.headers);
	in.headers = j("{'JMSXUserID':'ci-bot'}");
	assert_int_equal(rdb_map(&in, out, why), RDB_MAP_OK);
	assert_int_equal(out->n, 1);
	rdb_results_free(out);
	json_decref(in.body);
	json_decref(in.headers);
	free(out);
}

/* A long string is cropped to 8192 code points ("..." at the end); a
 * long non-string value rejects the message. */
static void
test_crop(void **state)
{
	struct rdb_results *out = calloc(1, sizeof(*out));
	struct rdb_input in = { 0 };
	char why[RDB_WHYLEN], *big = malloc(9001);
	json_t *d;

	(void)state;
	assert_non_null(out);
	assert_non_null(big);
	memset(big, 'x', 9000);
	big[9000] = '\0';
	in.topic = "/topic/VirtualTopic.eng.x";
	in.body = j("{'ref_url':'G','results':{'t':{'outcome':'PASSED'}}}");
	d = json_pack("{ss}", "log", big);
	json_object_set_new(json_object_get(json_object_get(in.body,
	    "results"), "t"), "data", d);
	assert_int_equal(rdb_map(&in, out, why), RDB_MAP_OK);
	d = json_object_get(json_object_get(out->r[0].payload, "data"), "log");
	assert_int_equal(json_string_length(d), 8192);
	assert_string_equal(json_string_value(d) + 8189, "...");
	rdb_results_free(out);
	json_object_set_new(json_object_get(json_object_get(in.body, "results"),
	    "t"), "data", json_pack("{s[s]}", "logs", big));
	assert_int_equal(rdb_map(&in, out, why), RDB_MAP_REJECTED);
	assert_string_equal(why, "Result value \"logs\" contains items that are "
	    "too large");
	json_decref(in.body);
	free(big);
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_formats),
		cmocka_unit_test(test_private_testcase),
		cmocka_unit_test(test_crop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
