/*
 * Unit tests of the Koji protonmsg -> Fedora buildsys.* translation
 * (bridge/koji_map.h), table-driven: for each Koji callback body (the
 * shapes koji's protonmsg.py sends) the Fedora topic and exact body, or
 * the skip and its reason.  Linked with the bridge's archive (Makefile
 * UNIT_BRIDGE).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "koji_map.h"

#define BUILD	"{\"id\":2456789,\"build_id\":2456789,\"name\":\"python-requests\"," \
		"\"version\":\"2.31.0\",\"release\":\"5.fc41\",\"epoch\":null," \
		"\"owner_id\":4321,\"owner_name\":\"jsmith\",\"state\":1," \
		"\"task_id\":118765432,\"nvr\":\"python-requests-2.31.0-5.fc41\"," \
		"\"completion_ts\":1714651234.5,\"creation_ts\":1714650000.1}"
#define TAG	"{\"id\":64512,\"name\":\"f41-signing-pending\",\"arches\":null}"
#define USER	"{\"id\":99,\"name\":\"bodhi\",\"krb_principal\":null}"

struct mapcase {
	const char	*name;
	const char	*type;		/* the "type" property */
	const char	*body;		/* Koji's body */
	const char	*topic;		/* NULL: skipped */
	const char	*want;		/* Fedora body, or a part of the reason */
};

static const struct mapcase cases[] = {
	{ "build complete", "BuildStateChange",
	  "{\"attribute\":\"state\",\"old\":0,\"new\":1,\"info\":" BUILD
	  ",\"btypes\":{\"rpm\":null}}",
	  "build.state.change",
	  "{\"build_id\":2456789,\"name\":\"python-requests\",\"version\":"
	  "\"2.31.0\",\"release\":\"5.fc41\",\"epoch\":null,\"owner\":\"jsmith\","
	  "\"attribute\":\"state\",\"old\":0,\"new\":1,\"task_id\":118765432,"
	  "\"request\":null,\"instance\":\"primary\"}" },
	{ "build started (old null, import: no task)", "BuildStateChange",
	  "{\"attribute\":\"state\",\"old\":null,\"new\":0,\"info\":{\"id\":7,"
	  "\"name\":\"a\",\"version\":\"1\",\"release\":\"1\",\"epoch\":3,"
	  "\"task_id\":null}}",
	  "build.state.change",
	  "{\"build_id\":7,\"name\":\"a\",\"version\":\"1\",\"release\":\"1\","
	  "\"epoch\":3,\"owner\":null,\"attribute\":\"state\",\"old\":null,"
	  "\"new\":0,\"task_id\":null,\"request\":null,\"instance\":"
	  "\"primary\"}" },
	{ "build volume change", "BuildStateChange",
	  "{\"attribute\":\"volume_id\",\"old\":0,\"new\":1,\"info\":" BUILD "}",
	  NULL, "attribute is not \"state\"" },
	{ "build state as a name", "BuildStateChange",
	  "{\"attribute\":\"state\",\"old\":\"BUILDING\",\"new\":\"COMPLETE\","
	  "\"info\":" BUILD "}", NULL, "old/new" },
	{ "build without info", "BuildStateChange",
	  "{\"attribute\":\"state\",\"old\":0,\"new\":1}", NULL, "info.id" },
	{ "tag", "Tag",
	  "{\"tag\":" TAG ",\"build\":" BUILD ",\"user\":" USER ",\"force\":"
	  "false}", "tag",
	  "{\"tag\":\"f41-signing-pending\",\"tag_id\":64512,\"build_id\":"
	  "2456789,\"name\":\"python-requests\",\"version\":\"2.31.0\","
	  "\"release\":\"5.fc41\",\"user\":\"bodhi\",\"owner\":\"jsmith\","
	  "\"instance\":\"primary\"}" },
	{ "untag", "Untag",
	  "{\"tag\":" TAG ",\"build\":" BUILD ",\"user\":" USER "}", "untag",
	  "{\"tag\":\"f41-signing-pending\",\"tag_id\":64512,\"build_id\":"
	  "2456789,\"name\":\"python-requests\",\"version\":\"2.31.0\","
	  "\"release\":\"5.fc41\",\"user\":\"bodhi\",\"owner\":\"jsmith\","
	  "\"instance\":\"primary\"}" },
	{ "tag without user", "Tag",
	  "{\"tag\":" TAG ",\"build\":" BUILD "}", NULL, "user.name" },
	{ "tag with a string tag id", "Tag",
	  "{\"tag\":{\"id\":\"64512\",\"name\":\"t\"},\"build\":" BUILD
	  ",\"user\":" USER "}", NULL, "tag.id" },
	{ "scratch parent task failed", "TaskStateChange",
	  "{\"attribute\":\"state\",\"old\":\"OPEN\",\"new\":\"FAILED\","
	  "\"info\":{\"id\":118766001,\"parent\":null,\"method\":\"build\","
	  "\"owner\":4321,\"weight\":0.2,\"request\":[\"cli-build/1714650000."
	  "1234.AbCd/python-requests-2.31.0-5.fc41.src.rpm\",\"rawhide\","
	  "{\"scratch\":true}],\"children\":[{\"id\":118766010,\"start_ts\":"
	  "1.5,\"parent\":118766001}]}}",
	  "task.state.change",
	  "{\"id\":118766001,\"method\":\"build\",\"attribute\":\"state\","
	  "\"old\":\"OPEN\",\"new\":\"FAILED\",\"owner\":null,\"srpm\":"
	  "\"python-requests-2.31.0-5.fc41.src.rpm\",\"info\":{\"id\":"
	  "118766001,\"parent\":null,\"method\":\"build\",\"owner\":4321,"
	  "\"request\":[\"cli-build/1714650000.1234.AbCd/python-requests-"
	  "2.31.0-5.fc41.src.rpm\",\"rawhide\",{\"scratch\":true}],"
	  "\"children\":[{\"id\":118766010,\"parent\":118766001}]},"
	  "\"instance\":\"primary\"}" },
	{ "normal build task", "TaskStateChange",
	  "{\"attribute\":\"state\",\"old\":\"OPEN\",\"new\":\"CLOSED\","
	  "\"info\":{\"id\":5,\"parent\":null,\"method\":\"build\",\"request\":"
	  "[\"git+https://x/y.git#abc\",\"f41-candidate\",{}]}}",
	  NULL, "not a scratch" },
	{ "child task", "TaskStateChange",
	  "{\"attribute\":\"state\",\"old\":\"FREE\",\"new\":\"OPEN\",\"info\":"
	  "{\"id\":5678,\"parent\":1234,\"method\":\"buildArch\"}}",
	  NULL, "child task" },
	{ "repo init", "RepoInit",
	  "{\"tag\":" TAG ",\"repo_id\":6203311,\"with_src\":false,\"event\":"
	  "1,\"task_id\":null}", "repo.init",
	  "{\"tag\":\"f41-signing-pending\",\"tag_id\":64512,\"repo_id\":"
	  "6203311,\"instance\":\"primary\"}" },
	{ "repo done", "RepoDone",
	  "{\"repo\":{\"id\":6203311,\"tag_id\":64500,\"tag_name\":\"f41-build\","
	  "\"state\":1,\"task_id\":null},\"expire\":false,\"data\":{},"
	  "\"task_id\":null}", "repo.done",
	  "{\"tag\":\"f41-build\",\"tag_id\":64500,\"repo_id\":6203311,"
	  "\"instance\":\"primary\"}" },
	{ "package list add", "PackageListChange",
	  "{\"action\":\"add\",\"tag\":{\"id\":1,\"name\":\"f41\"},\"package\":"
	  "{\"id\":2,\"name\":\"python-newlib\"},\"owner\":1,\"block\":false,"
	  "\"extra_arches\":null,\"force\":null,\"update\":false,\"user\":"
	  "{\"name\":\"jsmith\"}}", "package.list.change",
	  "{\"tag\":\"f41\",\"package\":\"python-newlib\",\"action\":\"add\","
	  "\"owner\":null,\"block\":false,\"extra_arches\":null,\"force\":null,"
	  "\"update\":false,\"instance\":\"primary\"}" },
	{ "rpm signed", "RPMSign",
	  "{\"sigkey\":\"105ef944\",\"sighash\":\"0f2a\",\"rpm\":{\"id\":4,"
	  "\"name\":\"python3-requests\",\"arch\":\"noarch\"},\"build\":{\"id\":"
	  "2456789,\"nvr\":\"n-v-r\"}}", "rpm.sign",
	  "{\"sigkey\":\"105ef944\",\"sighash\":\"0f2a\",\"rpm\":{\"id\":4,"
	  "\"name\":\"python3-requests\",\"arch\":\"noarch\"},\"build\":{\"id\":"
	  "2456789,\"nvr\":\"n-v-r\"},\"instance\":\"primary\"}" },
	{ "rpm with an empty sigkey", "RPMSign",
	  "{\"sigkey\":\"\",\"sighash\":\"0f2a\",\"rpm\":{},\"build\":{}}",
	  NULL, "sigkey is empty" },
	{ "import (not published by Fedora)", "Import",
	  "{\"type\":\"build\",\"build\":" BUILD "}", NULL,
	  "\"Import\" has no Fedora" },
	{ "unknown event", "SomethingNew", "{}", NULL, "\"SomethingNew\"" },
	{ "no type property", NULL, "{}", NULL, "no \"type\" property" },
	{ "body not JSON", "Tag", "{\"tag\":", NULL, "not a JSON object" },
	{ "body a JSON string", "Tag", "\"x\"", NULL, "not a JSON object" },
};

static void
test_table(void **state)
{
	const struct mapcase *c;
	char *topic, *body, why[KOJI_WHYLEN];
	enum koji_verdict v;

	(void)state;
	for (c = cases; c < cases + sizeof(cases) / sizeof(cases[0]); c++) {
		v = koji_to_fedora(c->type, c->body, strlen(c->body), "primary",
		    &topic, &body, why);
		if (c->topic == NULL) {
			if (v != KOJI_SKIPPED || topic || body)
				fail_msg("%s: translated, expected a skip",
				    c->name);
			if (strstr(why, c->want) == NULL)
				fail_msg("%s: reason \"%s\" lacks \"%s\"",
				    c->name, why, c->want);
			continue;
		}
		if (v != KOJI_MAPPED)
			fail_msg("%s: skipped: %s", c->name, why);
		if (strcmp(topic, c->topic))
			fail_msg("%s: topic %s, expected %s", c->name, topic,
			    c->topic);
		{
			json_t *got = json_loads(body, 0, NULL);
			json_t *want = json_loads(c->want, 0, NULL);

			assert_non_null(want);
			if (!json_equal(got, want))
				fail_msg("%s: body\n  %s\nexpected\n  %s",
				    c->name, body, c->want);
			json_decref(got);
			json_decref(want);
		}
		free(topic);
		free(body);
	}
}

/* The instance value is the configured one. */
static void
test_instance(void **state)
{
	const char *b = "{\"tag\":" TAG ",\"repo_id\":1}";
	char *topic, *body, why[KOJI_WHYLEN];
	json_t *j;

	(void)state;
	assert_int_equal(koji_to_fedora("RepoInit", b, strlen(b), "ppc",
	    &topic, &body, why), KOJI_MAPPED);
	j = json_loads(body, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(j, "instance")),
	    "ppc");
	json_decref(j);
	free(topic);
	free(body);
}

/* Deep nesting is bounded, not a stack overflow. */
static void
test_deep_body(void **state)
{
	size_t depth = 5000, i, n = 0;
	char *b = malloc(depth * 2 + 200), *topic, *body, why[KOJI_WHYLEN];

	(void)state;
	assert_non_null(b);
	n += (size_t)sprintf(b, "{\"sigkey\":\"ab\",\"rpm\":{},\"build\":");
	for (i = 0; i < depth; i++)
		b[n++] = '[';
	for (i = 0; i < depth; i++)
		b[n++] = ']';
	b[n++] = '}';
	b[n] = '\0';
	/* jansson refuses the depth (or "build" is not an object): a skip */
	assert_int_equal(koji_to_fedora("RPMSign", b, n, "primary", &topic,
	    &body, why), KOJI_SKIPPED);
	free(b);
}

/*
 * Fedora -> Koji -> Fedora gives the Fedora body back, for every Fedora
 * body the table produces: nothing the reverse keeps is lost or changed.
 */
static void
test_round_trip(void **state)
{
	const struct mapcase *c;
	char *topic, *body, *addr, *kbody, *props, *t2, *b2;
	char why[KOJI_WHYLEN];
	int n = 0;

	(void)state;
	for (c = cases; c < cases + sizeof(cases) / sizeof(cases[0]); c++) {
		json_t *a, *z, *pj;

		if (c->topic == NULL)
			continue;
		assert_int_equal(koji_to_fedora(c->type, c->body,
		    strlen(c->body), "primary", &topic, &body, why),
		    KOJI_MAPPED);
		if (koji_from_fedora(topic, body, strlen(body), &addr, &kbody,
		    &props, why) != KOJI_MAPPED)
			fail_msg("%s: no Koji form: %s", c->name, why);
		pj = json_loads(props, 0, NULL);
		if (koji_to_fedora(json_string_value(json_object_get(pj,
		    "type")), kbody, strlen(kbody), "primary", &t2, &b2, why) !=
		    KOJI_MAPPED)
			fail_msg("%s: Koji form %s not translated back: %s",
			    c->name, kbody, why);
		a = json_loads(body, 0, NULL);
		z = json_loads(b2, 0, NULL);
		assert_string_equal(topic, t2);
		if (!json_equal(a, z))
			fail_msg("%s: round trip\n  %s\nvia\n  %s\ngave\n  %s",
			    c->name, body, kbody, b2);
		json_decref(a);
		json_decref(z);
		json_decref(pj);
		free(topic);
		free(body);
		free(addr);
		free(kbody);
		free(props);
		free(t2);
		free(b2);
		n++;
	}
	assert_int_equal(n, 9);
}

struct revcase {
	const char	*event, *msg;
	const char	*address;	/* NULL: skipped */
	const char	*props;		/* expected properties, or reason */
};

static const struct revcase revcases[] = {
	{ "build.state.change",
	  "{\"build_id\":7,\"name\":\"a\",\"version\":\"1\",\"release\":\"2\","
	  "\"owner\":\"me\",\"attribute\":\"state\",\"old\":0,\"new\":3,"
	  "\"task_id\":9,\"request\":null,\"instance\":\"primary\"}",
	  "build.failed",
	  "{\"type\":\"BuildStateChange\",\"name\":\"a\",\"version\":\"1\","
	  "\"release\":\"2\",\"attribute\":\"state\",\"old\":\"BUILDING\","
	  "\"new\":\"FAILED\"}" },
	{ "tag",
	  "{\"tag\":\"f41\",\"tag_id\":1,\"build_id\":7,\"name\":\"a\","
	  "\"version\":\"1\",\"release\":\"2\",\"user\":\"bodhi\","
	  "\"owner\":\"me\",\"instance\":\"primary\"}",
	  "build.tag",
	  "{\"type\":\"Tag\",\"name\":\"a\",\"version\":\"1\",\"release\":"
	  "\"2\",\"tag\":\"f41\",\"user\":\"bodhi\"}" },
	{ "task.state.change",
	  "{\"id\":5,\"method\":\"build\",\"old\":\"OPEN\",\"new\":"
	  "\"CLOSED\",\"info\":{\"id\":5,\"parent\":null,\"method\":"
	  "\"build\"}}",
	  "task.closed",
	  "{\"type\":\"TaskStateChange\",\"id\":5,\"method\":\"build\","
	  "\"attribute\":\"state\",\"old\":\"OPEN\",\"new\":\"CLOSED\"}" },
	{ "package.list.change",
	  "{\"tag\":\"f41\",\"package\":\"p\",\"action\":\"block\"}",
	  "package.block",
	  "{\"type\":\"PackageListChange\",\"tag\":\"f41\",\"package\":"
	  "\"p\",\"action\":\"block\"}" },
	{ "build.state.change", "{\"build_id\":7,\"name\":\"a\",\"version\":"
	  "\"1\",\"release\":\"2\",\"old\":0,\"new\":9}", NULL,
	  "not Koji build states" },
	{ "rpm.sign", "{\"attribute\":\"sighash\",\"old\":null,\"new\":\"x\","
	  "\"info\":{}}", NULL, "koji <= 1.10" },
	{ "package.list.change", "{\"tag\":\"f41\",\"package\":\"p\","
	  "\"action\":\"../x\"}", NULL, "action" },
	{ "build.promote", "{}", NULL, "no Koji protonmsg form" },
	{ "tag", "[1]", NULL, "not a JSON object" },
};

static void
test_reverse_table(void **state)
{
	const struct revcase *c;
	char *addr, *body, *props, why[KOJI_WHYLEN];
	enum koji_verdict v;

	(void)state;
	for (c = revcases; c < revcases + sizeof(revcases) /
	    sizeof(revcases[0]); c++) {
		v = koji_from_fedora(c->event, c->msg, strlen(c->msg), &addr,
		    &body, &props, why);
		if (c->address == NULL) {
			if (v != KOJI_SKIPPED || addr || body || props)
				fail_msg("%s %s: mapped, expected a skip",
				    c->event, c->msg);
			if (strstr(why, c->props) == NULL)
				fail_msg("%s: reason \"%s\" lacks \"%s\"",
				    c->event, why, c->props);
			continue;
		}
		if (v != KOJI_MAPPED)
			fail_msg("%s: skipped: %s", c->event, why);
		assert_string_equal(addr, c->address);
		{
			json_t *got = json_loads(props, 0, NULL);
			json_t *want = json_loads(c->props, 0, NULL);

			assert_non_null(want);
			if (!json_equal(got, want))
				fail_msg("%s: props %s, expected %s", c->event,
				    props, c->props);
			json_decref(got);
			json_decref(want);
		}
		free(addr);
		free(body);
		free(props);
	}
}

/* An envelope's Koji form has its properties as text. */
static void
test_umb_from_envelope(void **state)
{
	const char *env = "{\"topic\":\"x.buildsys.repo.done\",\"msg\":"
	    "{\"tag\":\"f41-build\",\"tag_id\":64500,\"repo_id\":6203311}}";
	struct koji_umb u;
	char why[KOJI_WHYLEN];
	size_t i;
	int seen = 0;

	(void)state;
	assert_int_equal(koji_umb_from_envelope("repo.done", env, strlen(env),
	    &u, why), KOJI_MAPPED);
	assert_string_equal(u.address, "repo.done");
	for (i = 0; i < u.nprops; i++)
		if (strcmp(u.props[i].name, "repo_id") == 0) {
			assert_string_equal(u.props[i].value, "6203311");
			seen++;
		} else if (strcmp(u.props[i].name, "type") == 0) {
			assert_string_equal(u.props[i].value, "RepoDone");
			seen++;
		}
	assert_int_equal(seen, 2);
	koji_umb_free(&u);
	assert_int_equal(koji_umb_from_envelope("repo.done", "{}", 2, &u, why),
	    KOJI_SKIPPED);
	assert_null(u.address);
	koji_umb_free(&u);
}

static void
test_settings(void **state)
{
	struct koji_settings ks;
	const char *unknown;
	char err[200];
	json_t *j;

	(void)state;
	assert_int_equal(koji_settings_parse(NULL, &ks, &unknown, err,
	    sizeof(err)), 0);
	assert_null(ks.topic);
	j = json_loads("{\"instance\":\"ppc\",\"x\":1}", 0, NULL);
	assert_int_equal(koji_settings_parse(j, &ks, &unknown, err,
	    sizeof(err)), 0);
	assert_string_equal(ks.topic, "org.fedoraproject.prod.buildsys");
	assert_string_equal(ks.instance, "ppc");
	assert_string_equal(unknown, "x");
	koji_settings_free(&ks);
	json_decref(j);
	j = json_loads("{\"topic\":3}", 0, NULL);
	assert_int_equal(koji_settings_parse(j, &ks, &unknown, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "koji must be an object"));
	json_decref(j);
	j = json_string("yes");
	assert_int_equal(koji_settings_parse(j, &ks, &unknown, err,
	    sizeof(err)), -1);
	json_decref(j);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_instance),
		cmocka_unit_test(test_deep_body),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_reverse_table),
		cmocka_unit_test(test_umb_from_envelope),
		cmocka_unit_test(test_settings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
