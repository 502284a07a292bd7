/*
 * Unit tests for fedmsg-tail's renderings (tools/terse.h): the --terse
 * summaries for each topic family, --pretty, --really-pretty and --query
 * renderings, and a sweep over the signed test vectors under the
 * sanitizers.  Linked with the tools' archive (Makefile UNIT_TOOLS).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <fedmsg/message.h>

#include "json.h"
#include "terse.h"

#include "testutil.h"

/* 1714658591 is 2024-05-02 14:03:11 UTC; the tests run with TZ=UTC. */
#define ENV_USER(topic, user, msg)					\
	"{\"crypto\":\"x509\",\"i\":1,\"msg_id\":\"2024-6b4f2c1e\","	\
	"\"timestamp\":1714658591,\"topic\":\"" topic "\","		\
	"\"username\":\"" user "\",\"msg\":" msg "}"
#define ENV(topic, msg)	ENV_USER(topic, "apache", msg)
#define PROD		"org.fedoraproject.prod."

static struct fm_msg *
parse(const char *json)
{
	char err[FM_ERRLEN];
	struct fm_msg *m = NULL;

	if (fm_msg_parse(json, strlen(json), NULL, &m, err) < 0)
		fail_msg("test message does not parse: %s\n%s", err, json);
	return m;
}

static void
check_line(const char *json, const char *want)
{
	struct fm_msg *m = parse(json);
	char *got = terse_line(m);

	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
	fm_msg_unref(m);
}

static int
setup_tz(void **state)
{
	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	return 0;
}

/* ---- dist-git ----------------------------------------------------------- */

/* The envelope of dist-git's legacy git.receive hook. */
static const char git_legacy[] = ENV_USER(PROD "git.receive", "jsmith",
    "{\"commit\":{\"name\":\"Jane Smith\",\"email\":\"jsmith@example.com\","
    "\"username\":\"jsmith\",\"agent\":\"jsmith\","
    "\"summary\":\"Update to 2.21.0 (#1701234)\","
    "\"message\":\"Update to 2.21.0 (#1701234)\\n\\n"
    "Drop upstreamed patch.\\n\","
    "\"stats\":{\"files\":{\".gitignore\":{\"additions\":1,\"deletions\":0,"
    "\"lines\":1},\"python-requests.spec\":{\"additions\":6,\"deletions\":9,"
    "\"lines\":15},\"sources\":{\"additions\":1,\"deletions\":1,\"lines\":2}},"
    "\"total\":{\"additions\":8,\"deletions\":10,\"files\":3,\"lines\":18}},"
    "\"rev\":\"9f1c4be07d2a6e35c8b1f0a4e7d93c21b6a58e0f\","
    "\"path\":\"/srv/git/repositories/rpms/python-requests.git\","
    "\"repo\":\"python-requests\",\"namespace\":\"rpms\","
    "\"branch\":\"master\",\"seen\":false}}");

static void
test_git_receive(void **state)
{
	(void)state;
	check_line(git_legacy, "14:03:11 org.fedoraproject.prod.git.receive "
	    "jsmith pushed 1 commit to rpms/python-requests (master): "
	    "Update to 2.21.0 (#1701234)");
	/* current hook (1.4): agent at the top level, commit.username the
	 * hook's user; no summary: the message's first line */
	check_line(ENV_USER(PROD "git.receive", "git",
	    "{\"agent\":\"pusher\",\"commit\":{\"name\":\"Jane Smith\","
	    "\"email\":\"jsmith@example.com\",\"username\":\"jsmith\","
	    "\"message\":\"Rebuilt for Python 3.13\\r\\nmore\\n\","
	    "\"rev\":\"3c0e2d9b7a1f48e6b5d4c3a2f1e0d9c8b7a6f5e4\","
	    "\"repo\":\"python-requests\",\"namespace\":null,"
	    "\"branch\":\"rawhide\",\"patch\":\"diff --git a/x b/x\\n\","
	    "\"date\":\"2024-05-02T16:02:58+02:00\",\"url\":null}}"),
	    "14:03:11 org.fedoraproject.prod.git.receive pusher pushed 1 "
	    "commit to python-requests (rawhide): Rebuilt for Python 3.13");
	/* before 2013: git.receive.<package>.<branch>, no repo/branch */
	check_line(ENV(PROD "git.receive.kernel.f19",
	    "{\"commit\":{\"email\":\"dev@example.com\",\"summary\":\"fix\"}}"),
	    "14:03:11 org.fedoraproject.prod.git.receive.kernel.f19 apache "
	    "pushed 1 commit to kernel (f19): fix");
	/* a count when the body carries one */
	check_line(ENV(PROD "git.receive",
	    "{\"commits\":[\"a\",\"b\",\"c\"],\"commit\":{\"agent\":\"x\","
	    "\"repo\":\"r\",\"branch\":\"b\"}}"),
	    "14:03:11 org.fedoraproject.prod.git.receive x pushed 3 commits "
	    "to r (b)");
	/* pagure's git.receive belongs to pagure, not dist-git */
	check_line(ENV(PROD "pagure.git.receive",
	    "{\"agent\":\"jsmith\",\"branch\":\"main\",\"total_commits\":2}"),
	    "14:03:11 org.fedoraproject.prod.pagure.git.receive agent=jsmith "
	    "branch=main total_commits=2");
}

static void
test_git_other(void **state)
{
	(void)state;
	check_line(ENV(PROD "git.branch", "{\"name\":\"python-requests\","
	    "\"branch\":\"f41\",\"agent\":\"releng\",\"namespace\":\"rpms\"}"),
	    "14:03:11 org.fedoraproject.prod.git.branch releng created branch "
	    "'f41' for rpms/python-requests");
	check_line(ENV(PROD "git.lookaside.new",
	    "{\"name\":\"python-requests\","
	    "\"filename\":\"requests-2.31.0.tar.gz\",\"agent\":\"jsmith\","
	    "\"md5sum\":\"0123456789abcdef0123456789abcdef\"}"),
	    "14:03:11 org.fedoraproject.prod.git.lookaside.new jsmith uploaded "
	    "requests-2.31.0.tar.gz for python-requests");
}

/* ---- koji --------------------------------------------------------------- */

#define BUILD_STATE(owner, state, instance)				\
	ENV(PROD "buildsys.build.state.change",				\
	"{\"build_id\":2456789,\"name\":\"python-requests\","		\
	"\"version\":\"2.31.0\",\"release\":\"5.fc41\",\"epoch\":null,"	\
	"\"owner\":" owner ",\"attribute\":\"state\",\"old\":0,"	\
	"\"new\":" state ",\"task_id\":118765432,\"request\":["		\
	"\"git+https://src.fedoraproject.org/rpms/python-requests.git#3c0e\","\
	"\"f41-candidate\",{}],\"instance\":\"" instance "\"}")

static void
test_build_state(void **state)
{
	static const char *const names[] = { "BUILDING", "COMPLETE", "DELETED",
	    "FAILED", "CANCELED" };
	static const char *const bodies[] = {
		BUILD_STATE("\"jsmith\"", "0", "primary"),
		BUILD_STATE("\"jsmith\"", "1", "primary"),
		BUILD_STATE("\"jsmith\"", "2", "primary"),
		BUILD_STATE("\"jsmith\"", "3", "primary"),
		BUILD_STATE("\"jsmith\"", "4", "primary"),
	};
	char want[256];
	size_t i;

	(void)state;
	for (i = 0; i < 5; i++) {
		snprintf(want, sizeof(want), "14:03:11 "
		    "org.fedoraproject.prod.buildsys.build.state.change "
		    "jsmith's python-requests-2.31.0-5.fc41 %s (build 2456789)",
		    names[i]);
		check_line(bodies[i], want);
	}
	/* no owner (imports), secondary hub, unknown code */
	check_line(BUILD_STATE("null", "1", "ppc"),
	    "14:03:11 org.fedoraproject.prod.buildsys.build.state.change "
	    "python-requests-2.31.0-5.fc41 COMPLETE (build 2456789) (ppc)");
	check_line(BUILD_STATE("\"jsmith\"", "7", "primary"),
	    "14:03:11 org.fedoraproject.prod.buildsys.build.state.change "
	    "jsmith's python-requests-2.31.0-5.fc41 state 7 (build 2456789)");
}

static void
test_tag(void **state)
{
	(void)state;
	check_line(ENV(PROD "buildsys.tag", "{\"build_id\":2456789,"
	    "\"name\":\"python-requests\",\"version\":\"2.31.0\","
	    "\"release\":\"5.fc41\",\"tag\":\"f41-signing-pending\","
	    "\"tag_id\":64512,\"user\":\"bodhi\",\"owner\":\"jsmith\","
	    "\"instance\":\"primary\"}"),
	    "14:03:11 org.fedoraproject.prod.buildsys.tag jsmith's "
	    "python-requests-2.31.0-5.fc41 tagged into f41-signing-pending "
	    "by bodhi");
	check_line(ENV(PROD "buildsys.untag", "{\"build_id\":2456789,"
	    "\"name\":\"python-requests\",\"version\":\"2.31.0\","
	    "\"release\":\"5.fc41\",\"tag\":\"f41-signing-pending\","
	    "\"tag_id\":64512,\"user\":\"autopen\",\"owner\":\"jsmith\","
	    "\"instance\":\"primary\"}"),
	    "14:03:11 org.fedoraproject.prod.buildsys.untag jsmith's "
	    "python-requests-2.31.0-5.fc41 untagged from f41-signing-pending "
	    "by autopen");
	/* too little to say: the generic line */
	check_line(ENV(PROD "buildsys.tag", "{\"tag\":\"f41\"}"),
	    "14:03:11 org.fedoraproject.prod.buildsys.tag tag=f41");
}

static void
test_task_state(void **state)
{
	(void)state;
	check_line(ENV(PROD "buildsys.task.state.change", "{\"id\":118766001,"
	    "\"method\":\"build\",\"attribute\":\"state\",\"old\":\"OPEN\","
	    "\"new\":\"FAILED\",\"owner\":\"jsmith\","
	    "\"srpm\":\"python-requests-2.31.0-5.fc41.src.rpm\","
	    "\"info\":{\"id\":118766001,\"parent\":null,\"method\":\"build\","
	    "\"arch\":\"noarch\",\"state\":5,\"owner\":4321,\"request\":["
	    "\"cli-build/1714650000.1234.AbCd/python-requests-2.31.0-5.fc41"
	    ".src.rpm\",\"rawhide\",{\"scratch\":true}],\"children\":[{\"id\":"
	    "118766010,\"parent\":118766001,\"method\":\"buildArch\","
	    "\"arch\":\"x86_64\",\"state\":5,\"label\":\"x86_64\"}]},"
	    "\"instance\":\"primary\"}"),
	    "14:03:11 org.fedoraproject.prod.buildsys.task.state.change "
	    "jsmith's scratch build of python-requests-2.31.0-5.fc41.src.rpm "
	    "FAILED (task 118766001)");
	/* other methods; a state given as a code */
	check_line(ENV(PROD "buildsys.task.state.change", "{\"id\":5,"
	    "\"method\":\"newRepo\",\"old\":1,\"new\":2,\"owner\":\"kojira\"}"),
	    "14:03:11 org.fedoraproject.prod.buildsys.task.state.change "
	    "kojira's newRepo task CLOSED (task 5)");
}

static void
test_koji_other(void **state)
{
	(void)state;
	check_line(ENV(PROD "buildsys.rpm.sign", "{\"sigkey\":\"105ef944\","
	    "\"sighash\":\"0f2a7c5e9b1d3f4a6c8e0b2d4f6a8c0e\",\"rpm\":{"
	    "\"id\":41234567,\"build_id\":2456789,"
	    "\"name\":\"python3-requests\","
	    "\"version\":\"2.31.0\",\"release\":\"5.fc41\",\"epoch\":null,"
	    "\"arch\":\"noarch\",\"size\":154210,\"buildtime\":1714651234},"
	    "\"build\":{\"id\":2456789,"
	    "\"nvr\":\"python-requests-2.31.0-5.fc41\","
	    "\"name\":\"python-requests\",\"owner_name\":\"jsmith\"},"
	    "\"instance\":\"primary\"}"),
	    "14:03:11 org.fedoraproject.prod.buildsys.rpm.sign Koji build "
	    "python3-requests-2.31.0-5.fc41.noarch.rpm signed with sigkey "
	    "'105ef944'");
	/* koji <= 1.10 */
	check_line(ENV(PROD "buildsys.rpm.sign", "{\"attribute\":\"sighash\","
	    "\"old\":null,\"new\":\"0f2a\",\"info\":{\"name\":\"bash\","
	    "\"version\":\"5.2\",\"release\":\"1.fc41\",\"arch\":\"x86_64\","
	    "\"sigkey\":\"e99d6ad1\"},\"instance\":\"primary\"}"),
	    "14:03:11 org.fedoraproject.prod.buildsys.rpm.sign Koji build "
	    "bash-5.2-1.fc41.x86_64.rpm signed with sigkey 'e99d6ad1'");
	check_line(ENV(PROD "buildsys.repo.init", "{\"tag\":\"f41-build\","
	    "\"tag_id\":64500,\"repo_id\":6203311,\"instance\":\"primary\"}"),
	    "14:03:11 org.fedoraproject.prod.buildsys.repo.init "
	    "Repo initialized: f41-build");
	check_line(ENV(PROD "buildsys.repo.done", "{\"instance\":\"s390\"}"),
	    "14:03:11 org.fedoraproject.prod.buildsys.repo.done "
	    "Repo done: ? (s390)");
	check_line(ENV(PROD "buildsys.package.list.change", "{\"tag\":\"f41\","
	    "\"package\":\"python-newlib\",\"action\":\"add\","
	    "\"owner\":\"jsmith\",\"block\":false,\"extra_arches\":null,"
	    "\"force\":null,\"update\":false,\"instance\":\"primary\"}"),
	    "14:03:11 org.fedoraproject.prod.buildsys.package.list.change "
	    "Package list change for python-newlib: 'f41' (add)");
}

/* ---- robosignatory ------------------------------------------------------ */

static void
test_robosignatory(void **state)
{
	(void)state;
	check_line(ENV_USER("/topic/VirtualTopic.eng.robosignatory."
	    "container.sign", "fedmsg", "{\"errors\":[],"
	    "\"manifest_digest\":\"sha256:0123\",\"pub_task_id\":12345,"
	    "\"repo\":\"rhel9/httpd-24\",\"request_id\":\"6f1c\","
	    "\"sig_key_id\":\"FD431D51\",\"signing_status\":\"success\"}"),
	    "14:03:11 /topic/VirtualTopic.eng.robosignatory.container.sign "
	    "robosignatory signed rhel9/httpd-24 (pub task 12345) with key "
	    "FD431D51");
	check_line(ENV_USER("/topic/VirtualTopic.eng.robosignatory."
	    "container.sign", "fedmsg", "{\"errors\":[\"key unavailable\"],"
	    "\"pub_task_id\":12346,\"repo\":\"rhel9/httpd-24\","
	    "\"sig_key_id\":\"FD431D51\",\"signing_status\":\"failure\"}"),
	    "14:03:11 /topic/VirtualTopic.eng.robosignatory.container.sign "
	    "robosignatory failed to sign rhel9/httpd-24 (pub task 12346) "
	    "with key FD431D51: failure: key unavailable");
	check_line(ENV_USER("/topic/VirtualTopic.eng.robosignatory.art.sign",
	    "fedmsg", "{\"request_id\":\"a1b2\",\"signing_status\":"
	    "\"success\",\"errors\":[],\"signed_artifact\":\"AAAA\","
	    "\"artifact_meta\":{\"product\":\"openshift\",\"name\":"
	    "\"sha256=abcd\",\"type\":\"json-digest\"}}"),
	    "14:03:11 /topic/VirtualTopic.eng.robosignatory.art.sign "
	    "robosignatory signed sha256=abcd (request a1b2)");
	check_line(ENV(PROD "robosignatory.xml-sign.finished",
	    "{\"body\":\"<?xml version=\\\"1.0\\\" ?><repomd/>\","
	    "\"signature\":\"-----BEGIN PGP SIGNATURE-----\\n...\"}"),
	    "14:03:11 org.fedoraproject.prod.robosignatory.xml-sign.finished "
	    "robosignatory signed XML metadata");
	check_line(ENV(PROD "robosignatory.xml-sign.finished",
	    "{\"body\":\"<?xml version=\\\"1.0\\\" ?>\","
	    "\"error\":\"Signing failed\"}"),
	    "14:03:11 org.fedoraproject.prod.robosignatory.xml-sign.finished "
	    "robosignatory failed to sign XML metadata: Signing failed");
	check_line(ENV(PROD "coreos.build.request.artifacts-sign.finished",
	    "{\"build_id\":\"40.20240501.3.0\",\"basearch\":\"x86_64\","
	    "\"artifacts\":[{\"file\":\"s3://fcos-builds/prod/streams/stable/"
	    "builds/40.20240501.3.0/x86_64/fedora-coreos-40.20240501.3.0-qemu"
	    ".x86_64.qcow2.xz\",\"checksum\":\"sha256:9b74c9897bac770ffc0291"
	    "02a200c5de9b2f6a0c6f7d6a8e1f2a3b4c5d6e7f80\"}],"
	    "\"status\":\"SUCCESS\"}"),
	    "14:03:11 org.fedoraproject.prod.coreos.build.request."
	    "artifacts-sign.finished robosignatory signed 1 artifact of "
	    "40.20240501.3.0 (x86_64)");
	check_line(ENV(PROD "coreos.build.request.ostree-sign.finished",
	    "{\"build_id\":\"40.20240501.3.0\",\"basearch\":\"aarch64\","
	    "\"commit_object\":\"s3://b/c.commit\",\"checksum\":\"sha256:00\","
	    "\"status\":\"FAILURE\","
	    "\"failure-message\":\"checksum mismatch\"}"),
	    "14:03:11 org.fedoraproject.prod.coreos.build.request.ostree-sign."
	    "finished robosignatory failed to sign the OSTree commit of "
	    "40.20240501.3.0 (aarch64): FAILURE: checksum mismatch");
	/* other robosignatory topics, and a topic that is just the name */
	check_line(ENV(PROD "robosignatory.xml-sign", "{\"body\":\"x\"}"),
	    "14:03:11 org.fedoraproject.prod.robosignatory.xml-sign body=x");
	check_line(ENV("a.b.c.robosignatory", "{\"k\":1}"),
	    "14:03:11 a.b.c.robosignatory k=1");
}

/* ---- logger and the rest ------------------------------------------------ */

static void
test_logger(void **state)
{
	(void)state;
	check_line(ENV_USER(PROD "logger.log", "root",
	    "{\"log\":\"rebooting koji01\"}"),
	    "14:03:11 org.fedoraproject.prod.logger.log root: "
	    "rebooting koji01");
	/* fedmsg-logger --json-input may send any value */
	check_line(ENV_USER("org.fedoraproject.dev.logger.log", "vecgen",
	    "\"a plain string\""),
	    "14:03:11 org.fedoraproject.dev.logger.log vecgen: a plain string");
	/* several lines and an escape sequence stay on one safe line */
	check_line(ENV_USER(PROD "logger.log", "root",
	    "{\"log\":\"one\\ntwo \\u001b[31mred\\u001b[0m\"}"),
	    "14:03:11 org.fedoraproject.prod.logger.log root: one\\ntwo "
	    "\\x1b[31mred\\x1b[0m");
	check_line(ENV(PROD "logger.log", "{\"other\":true}"),
	    "14:03:11 org.fedoraproject.prod.logger.log other=true");
}

static void
test_generic(void **state)
{
	struct fm_msg *m;
	char *got, body[2048], json[4096];
	size_t i;

	(void)state;
	check_line(ENV(PROD "bodhi.update.comment", "{\"agent\":\"carol\","
	    "\"comment\":{\"text\":\"works\",\"karma\":1},\"empty\":\"\","
	    "\"list\":[],\"n\":null,\"f\":0.1,\"big\":123456789012345678901234,"
	    "\"text\":\"two words\",\"q\":\"say \\\"hi\\\"\"}"),
	    "14:03:11 org.fedoraproject.prod.bodhi.update.comment agent=carol "
	    "big=123456789012345678901234 comment={...} empty=\"\" f=0.1 "
	    "list=[] n=null q=\"say \\\"hi\\\"\" text=\"two words\"");
	/* nothing to say: no trailing blank */
	check_line(ENV(PROD "misc.empty", "{}"),
	    "14:03:11 org.fedoraproject.prod.misc.empty");
	check_line(ENV(PROD "pkgdb.acl.bulk", "[1,2]"),
	    "14:03:11 org.fedoraproject.prod.pkgdb.acl.bulk [...]");
	/* no timestamp */
	check_line("{\"topic\":\"t\",\"msg\":{\"a\":\"\\u00e9\"}}",
	    "--:--:-- t a=\xc3\xa9");
	/* lone surrogates and C1 controls */
	check_line("{\"topic\":\"t\",\"msg\":{\"a\":\"x\\ud800y\\u009bz\"}}",
	    "--:--:-- t a=x\xef\xbf\xbdy\\u009bz");

	/* a long payload is cut at about 200 bytes, on a character boundary */
	strcpy(body, "{");
	for (i = 0; i < 40; i++)
		snprintf(body + strlen(body), sizeof(body) - strlen(body),
		    "%s\"k%02zu\":\"\xc3\xa9\xc3\xa9\xc3\xa9\"",
		    i ? "," : "", i);
	strcat(body, "}");
	snprintf(json, sizeof(json), "{\"topic\":\"t\",\"msg\":%s}", body);
	m = parse(json);
	got = terse_line(m);
	assert_non_null(got);
	assert_true(strlen(got) <= strlen("--:--:-- t ") + GENERIC_MAX + 3);
	assert_string_equal(got + strlen(got) - 3, "...");
	/* the byte before "..." ends a character */
	assert_true(((unsigned char)got[strlen(got) - 4] & 0xc0) != 0xc0);
	free(got);
	fm_msg_unref(m);
}

/* No summary lets raw control characters through. */
static void
test_no_raw_controls(void **state)
{
	static const char *const topics[] = {
		PROD "git.receive", PROD "logger.log", PROD "buildsys.tag",
		PROD "robosignatory.container.sign", PROD "x.y",
	};
	static const char evil[] = "\\u001b]0;pwned\\u0007\\r\\u009b2J";
	char json[2048];
	size_t i, k;

	(void)state;
	for (i = 0; i < sizeof(topics) / sizeof(topics[0]); i++) {
		struct fm_msg *m;
		char *got;

		snprintf(json, sizeof(json), "{\"topic\":\"%s\",\"username\":"
		    "\"%s\",\"msg\":{\"commit\":{\"agent\":\"%s\",\"repo\":"
		    "\"%s\",\"summary\":\"%s\"},\"log\":\"%s\",\"tag\":\"%s\","
		    "\"name\":\"%s\",\"owner\":\"%s\",\"repo\":\"%s\","
		    "\"signing_status\":\"%s\"}}", topics[i], evil, evil, evil,
		    evil, evil, evil, evil, evil, evil, evil);
		m = parse(json);
		got = terse_line(m);
		assert_non_null(got);
		for (k = 0; got[k]; k++) {
			unsigned char c = (unsigned char)got[k];

			assert_false(c < 0x20 || c == 0x7f);
			assert_false(c == 0xc2 && (unsigned char)got[k + 1] >=
			    0x80 && (unsigned char)got[k + 1] < 0xa0);
		}
		free(got);
		fm_msg_unref(m);
	}
}

/* ---- --pretty, --really-pretty, --query --------------------------------- */

static const char signed_env[] =
    "{\"certificate\":\"Q0VSVA==\",\"crypto\":\"x509\",\"i\":3,"
    "\"msg\":{\"big\":18446744073709551617,\"e\":[],\"f\":1e-07,"
    "\"n\":null,\"o\":{},\"s\":\"caf\\u00e9 \\u001b \\ud83d\","
    "\"t\":[true,false]},\"msg_id\":\"2024-x\",\"signature\":\"U0lH\","
    "\"timestamp\":1714658591.75,\"topic\":\"org.fedoraproject.dev.x\","
    "\"username\":\"me\"}";

static void
test_pretty(void **state)
{
	struct fm_msg *m = parse(signed_env);
	char *got;

	(void)state;
	got = tail_pretty(m, TAIL_CTIME);
	assert_non_null(got);
	assert_string_equal(got,
	    "{\n"
	    "  \"crypto\": \"x509\",\n"
	    "  \"i\": 3,\n"
	    "  \"msg\": {\n"
	    "    \"big\": 18446744073709551617,\n"
	    "    \"e\": [],\n"
	    "    \"f\": 1e-07,\n"
	    "    \"n\": null,\n"
	    "    \"o\": {},\n"
	    "    \"s\": \"caf\xc3\xa9 \\u001b \\ud83d\",\n"
	    "    \"t\": [\n"
	    "      true,\n"
	    "      false\n"
	    "    ]\n"
	    "  },\n"
	    "  \"msg_id\": \"2024-x\",\n"
	    "  \"timestamp\": \"Thu May  2 14:03:11 2024\",\n"
	    "  \"topic\": \"org.fedoraproject.dev.x\",\n"
	    "  \"username\": \"me\"\n"
	    "}");
	free(got);

	/* --really-pretty: the number stays; colours only on request */
	got = tail_pretty(m, 0);
	assert_non_null(strstr(got, "\"timestamp\": 1714658591.75,\n"));
	assert_null(strchr(got, '\033'));
	assert_null(strstr(got, "signature"));
	assert_null(strstr(got, "certificate"));
	free(got);
	got = tail_pretty(m, TAIL_COLOR);
	assert_non_null(strstr(got, C_KEY "\"crypto\"" C_OFF ": "
	    C_STR "\"x509\"" C_OFF));
	assert_non_null(strstr(got, C_NUM "3" C_OFF));
	assert_non_null(strstr(got, C_LIT "null" C_OFF));
	free(got);
	fm_msg_unref(m);

	/* an envelope of credentials only */
	m = parse("{\"signature\":\"x\",\"certificate\":\"y\"}");
	got = tail_pretty(m, TAIL_CTIME);
	assert_string_equal(got, "{}");
	free(got);
	fm_msg_unref(m);
}

static void
test_query(void **state)
{
	static const char *const paths[] = { "msg.s", "i", "msg.t.1",
	    "msg.n", "msg.missing", "msg.o", "msg.t", "msg.big", "msg.f",
	    "topic.x", "msg.t.9" };
	struct fm_msg *m = parse(signed_env);
	char *got;

	(void)state;
	got = tail_query(m, paths, sizeof(paths) / sizeof(paths[0]));
	assert_non_null(got);
	assert_string_equal(got, "caf\xc3\xa9 \\x1b \xef\xbf\xbd\t3\tfalse\t"
	    "\t\t{}\t[true,false]\t18446744073709551617\t1e-07\t\t");
	free(got);
	fm_msg_unref(m);

	m = parse("{\"msg\":{\"p\":\"C:\\\\dir\\tx\\ny\"}}");
	got = tail_query(m, (const char *const[]){ "msg.p" }, 1);
	assert_string_equal(got, "C:\\\\dir\\tx\\ny");
	free(got);
	fm_msg_unref(m);
}

static void
test_iso_time(void **state)
{
	struct fm_msg *m = parse(signed_env);
	char out[TAIL_ISO_LEN];

	(void)state;
	tail_iso_time(m, out);
	assert_string_equal(out, "2024-05-02T14:03:11+00:00");
	setenv("TZ", "CET-1CEST,M3.5.0,M10.5.0/3", 1);
	tzset();
	tail_iso_time(m, out);
	assert_string_equal(out, "2024-05-02T16:03:11+02:00");
	setenv("TZ", "UTC", 1);
	tzset();
	fm_msg_unref(m);
}

/* Every vector, every rendering: no crash, no leak, no sanitizer report. */
static void
test_vectors(void **state)
{
	static const char *const paths[] = { "msg", "msg.a", "i", "x.y.z" };
	char *text = tu_read_file(tu_data_path("vectors/signed.jsonl"), NULL);
	char *line, *save = NULL, err[FM_ERRLEN];
	int n = 0;

	(void)state;
	for (line = strtok_r(text, "\n", &save); line;
	    line = strtok_r(NULL, "\n", &save)) {
		struct jv_doc *rec = jv_parse(line, strlen(line), NULL, err);
		const struct jv *body;
		struct fm_msg *m;
		char *out[5];
		size_t i;

		assert_non_null(rec);
		body = jv_get(jv_doc_root(rec), "wire_body");
		assert_true(body != NULL && body->type == JV_STRING);
		assert_int_equal(fm_msg_parse(body->u.str, body->len, NULL, &m,
		    err), 0);
		out[0] = terse_line(m);
		out[1] = tail_pretty(m, TAIL_CTIME);
		out[2] = tail_pretty(m, TAIL_COLOR);
		out[3] = tail_query(m, paths, 4);
		out[4] = tail_pretty(m, 0);
		for (i = 0; i < 5; i++)
			assert_non_null(out[i]);
		/* the terse line is one line */
		assert_null(strchr(out[0], '\n'));
		for (i = 0; i < 5; i++)
			free(out[i]);
		fm_msg_unref(m);
		jv_doc_free(rec);
		n++;
	}
	assert_true(n >= 50);
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_git_receive),
		cmocka_unit_test(test_git_other),
		cmocka_unit_test(test_build_state),
		cmocka_unit_test(test_tag),
		cmocka_unit_test(test_task_state),
		cmocka_unit_test(test_koji_other),
		cmocka_unit_test(test_robosignatory),
		cmocka_unit_test(test_logger),
		cmocka_unit_test(test_generic),
		cmocka_unit_test(test_no_raw_controls),
		cmocka_unit_test(test_pretty),
		cmocka_unit_test(test_query),
		cmocka_unit_test(test_iso_time),
		cmocka_unit_test(test_vectors),
	};

	return cmocka_run_group_tests(tests, setup_tz, NULL);
}
