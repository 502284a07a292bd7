/*
 * robosignatory: signs the RPMs of a build tagged into a configured
 * "from" tag and moves the build to the "to" tag, in robosignatory's
 * order (spec: publishers-consumers.md section 3), over Koji's XML-RPC:
 *
 *   getBuild(build_id) -> listTags(build_id) -> listRPMs(build_id) ->
 *   queryRPMSigs(rpm_id=, sigkey=) per RPM -> the session (sslLogin,
 *   when there is something to sign: a failed login never runs the
 *   signer) -> the signing command for the unsigned ones ->
 *   writeSignedRPM(rpm_id, keyid) per RPM -> tagBuild(to, build_id,
 *   False, from)
 *
 * A "modular" tag: the RPMs are those of every build in the module
 * build's content tag (listTagged), all of which must be owned by the
 * instance's mbs_user; the module build is moved.
 *
 * A tag matching a "sidetags" template (sidetag.h) is a side tag: before
 * listTags, queryHistory(build=) must show its latest active tagging into
 * the side tag by one of trusted_taggers; it moves to the side tag's "to".
 *
 * listTags is ours: a build no longer in "from" but in "to" was already
 * moved (a replay, a redelivery, another hub on the same queue) and is
 * reported, not signed again.  Messages from a signer whose CN is not in
 * "trusted_publishers" never cause a Koji call.  Outcome: a message
 * robosignatory.build.sign {build, nvr, tag, to, key, status, reason,
 * duration}; RETRY on transient failures (Koji or the signer unreachable,
 * timeouts), DROP on permanent ones; after max_attempts the failure is
 * published too.
 *
 * Second handler, *.robosignatory.xml-sign: the body is a string that
 * must start with an XML declaration (so it cannot be used to sign RPM
 * headers); it is written to a file in xml.tmpdir, signed with the
 * xml.command template ({input}, {output}, {key}, {user}, {config_file})
 * and answered on robosignatory.xml-sign.finished with {body, signature}
 * or {body, error}.  Off unless "xml" is configured; its senders are
 * xml.trusted_publishers.
 *
 * Config (the consumer's "config"):
 *   trusted_publishers   [CN...]      required: who may send buildsys.tag
 *   max_attempts         the hub's    optional: the hub entry's max_attempts
 *                                     (given to plugins in config()); a
 *                                     different value is a config error
 *   koji_timeout         60           seconds per Koji call
 *   signing {command: [argv template], user, passphrase_file,
 *            config_file, timeout (s, 600)}
 *   koji_instances {NAME: {url, mbs_user, options: {authmethod: "ssl",
 *            cert, serverca | authmethod: "kerberos", principal, keytab,
 *            serverca}, tags: [{from, to, key, keyid,
 *            file_signing_key, type: "plain"|"modular", skip_untagging,
 *            sidetags: {pattern, from, to, trusted_taggers}}]}}
 *   xml {key, trusted_publishers, command, tmpdir (/var/tmp)}  optional
 * Template arguments that are exactly "{user}", "{config_file}",
 * "{instance}", "{key}", "{keyid}", "{file_signing_key}" are replaced,
 * "{rpms}" becomes one argument per RPM (N-V-R.A); nothing is substituted
 * inside an argument.  An unset one is left out, with the "--option"
 * right before it.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include <fedmsg/plugin.h>
#include <fedmsg/plugin_config.h>

#include "koji.h"
#include "sidetag.h"
#include "signer.h"
#include "xmlrpc.h"

#define MAX_RPMS	4096		/* RPMs of one build we sign */
#define MAX_ARGS	(MAX_RPMS + 64)
#define SEEN_IDS	256		/* msg_ids done, for cheap replays */
#define MSGID_LEN	80
#define FIELD_LEN	256		/* name, version, release, tag */
#define XML_MAX		(1024 * 1024)	/* bytes of an xml-sign body */
#define XML_SIG_MAX	(64 * 1024)	/* bytes of its signature */
#define XML_DECL	"<?xml version=\"1.0\" "

struct rtag {
	char	*from, *to, *key, *keyid, *file_signing_key;
	bool	 modular, skip_untagging;
	char	*side_pattern, *side_from, *side_to;
	char	**trusted_taggers;
};

struct instance {
	char		*name, *url, *cert, *serverca, *mbs_user;
	char		*principal, *keytab;	/* authmethod "kerberos" */
	bool		 kerberos;
	struct rtag	*tags;
	size_t		 ntags;
	struct koji	*koji;		/* consume() is single-threaded */
};

struct robosig {
	const struct fm_host	*host;
	void			*hctx;
	char			**trusted;	/* signer CNs for buildsys.tag */
	long long		 max_attempts, koji_timeout, sign_timeout;
	char			**command;	/* argv template */
	char			*user, *passphrase_file, *config_file;
	struct instance		*inst;
	size_t			 ninst;
	char			*xml_key, *xml_tmpdir;	/* NULL: no xml-sign */
	char			**xml_trusted, **xml_command;
	pthread_mutex_t		 lock;
	char			 seen[SEEN_IDS][MSGID_LEN];
	size_t			 seen_next;
	unsigned long long	 untrusted, unknown, skipped, signed_builds,
				 moved_before, failed, retried;
};

static const char *const default_command[] = {
	"sigul", "--batch", "--user-name", "{user}", "--config-file",
	"{config_file}", "sign-rpms", "--store-in-koji", "--koji-only", "-k",
	"{instance}", "--v3-signature", "{key}", "{rpms}", NULL,
};

static const char *const default_xml_command[] = {
	"sigul", "--batch", "--user-name", "{user}", "--config-file",
	"{config_file}", "sign-data", "--armor", "--output", "{output}",
	"{key}", "{input}", NULL,
};

/* ---- config ----------------------------------------------------------- */

/* A reader of the object at an explicit pointer (array items). */
static void
config_at(const struct fm_config *c, const char *ptr, struct fm_config *sub)
{
	memset(sub, 0, sizeof(*sub));
	sub->host = c->host;
	sub->hctx = c->hctx;
	sub->doc = c->doc;
	snprintf(sub->base, sizeof(sub->base), "%s", ptr);
}

static int
cfg_err(struct robosig *r, const char *where, const char *what)
{
	r->host->log(r->hctx, FM_LOG_ERR, "config: %s%s%s", where,
	    where[0] ? ": " : "", what);
	return -1;
}

/* A required string: present and non-empty. */
static int
need_string(struct robosig *r, struct fm_config *c, const char *where,
    const char *key, char **out)
{
	char msg[FM_CONFIG_ERRLEN + 64];
	int rc = fm_config_string(c, key, out);

	if (rc < 0)
		return cfg_err(r, where, c->err);
	if (rc == 1 || (*out)[0] == '\0') {
		snprintf(msg, sizeof(msg), "'%s' is required", key);
		return cfg_err(r, where, msg);
	}
	return 0;
}

static int
read_tag(struct robosig *r, struct fm_config *c, const char *where,
    struct rtag *t)
{
	struct fm_config side;
	char *type = NULL;
	size_t i;
	int rc;

	if (need_string(r, c, where, "from", &t->from) < 0 ||
	    need_string(r, c, where, "to", &t->to) < 0 ||
	    need_string(r, c, where, "key", &t->key) < 0 ||
	    need_string(r, c, where, "keyid", &t->keyid) < 0 ||
	    fm_config_string(c, "file_signing_key", &t->file_signing_key) < 0 ||
	    fm_config_bool(c, "skip_untagging", &t->skip_untagging) < 0 ||
	    fm_config_string(c, "type", &type) < 0)
		return cfg_err(r, where, c->err);
	/* koji's sigkey: 8 lowercase hex digits */
	for (i = 0; t->keyid[i] != '\0'; i++)
		if (!((t->keyid[i] >= '0' && t->keyid[i] <= '9') ||
		    (t->keyid[i] >= 'a' && t->keyid[i] <= 'f')))
			break;
	if (i != 8 || t->keyid[i] != '\0')
		return cfg_err(r, where, "'keyid' must be 8 lowercase hex "
		    "digits");
	if (type != NULL && strcmp(type, "modular") == 0)
		t->modular = true;
	else if (type != NULL && strcmp(type, "plain") != 0) {
		free(type);
		return cfg_err(r, where, "'type' must be \"plain\" or "
		    "\"modular\"");
	}
	free(type);
	if ((rc = fm_config_object(c, "sidetags", &side)) < 0)
		return cfg_err(r, where, c->err);
	if (rc == 0) {
		if (need_string(r, &side, where, "pattern", &t->side_pattern) < 0 ||
		    need_string(r, &side, where, "from", &t->side_from) < 0 ||
		    need_string(r, &side, where, "to", &t->side_to) < 0)
			return -1;
		if (strstr(t->side_pattern, "<seq_id>") == NULL)
			return cfg_err(r, where, "'sidetags.pattern' must "
			    "contain <seq_id>");
		if (fm_config_strings(&side, "trusted_taggers",
		    &t->trusted_taggers, NULL) != 0)
			return cfg_err(r, where, side.err[0] ? side.err :
			    "'sidetags.trusted_taggers' is required");
		fm_config_warn_unknown(&side);
	}
	fm_config_warn_unknown(c);
	return 0;
}

static int
read_instance(struct robosig *r, struct fm_config *insts, size_t idx,
    struct instance *in)
{
	struct fm_config c, opt, tc;
	char where[160], ptr[FM_CONFIG_MAX_PTR], *auth = NULL;
	size_t i, n = 0;
	int rc;

	if ((in->name = fm_config_key(insts, idx)) == NULL)
		return cfg_err(r, "koji_instances", insts->err);
	snprintf(where, sizeof(where), "koji_instances.%.100s", in->name);
	if (fm_config_object(insts, in->name, &c) != 0)
		return cfg_err(r, where, "must be an object");
	if (need_string(r, &c, where, "url", &in->url) < 0 ||
	    fm_config_string(&c, "mbs_user", &in->mbs_user) < 0)
		return cfg_err(r, where, c.err);
	if (fm_config_object(&c, "options", &opt) != 0 ||
	    need_string(r, &opt, where, "authmethod", &auth) < 0)
		return cfg_err(r, where, "'options' with an 'authmethod' is "
		    "required");
	if (strcmp(auth, "ssl") == 0) {
		if (need_string(r, &opt, where, "cert", &in->cert) < 0 ||
		    need_string(r, &opt, where, "serverca", &in->serverca) < 0) {
			free(auth);
			return -1;
		}
	} else if (strcmp(auth, "kerberos") == 0) {
		/* koji's gssapi_login: principal and keytab may be left out
		   (the keytab's first principal; kinit's tickets) */
		in->kerberos = true;
		if (fm_config_string(&opt, "principal", &in->principal) < 0 ||
		    fm_config_string(&opt, "keytab", &in->keytab) < 0 ||
		    fm_config_string(&opt, "serverca", &in->serverca) < 0) {
			free(auth);
			return cfg_err(r, where, opt.err);
		}
		if (strncmp(in->url, "https://", 8) != 0) {
			free(auth);
			return cfg_err(r, where, "authmethod \"kerberos\" needs "
			    "an https:// 'url' (the session key travels on "
			    "it)");
		}
	} else {
		free(auth);
		return cfg_err(r, where, "options.authmethod must be \"ssl\" "
		    "or \"kerberos\"");
	}
	free(auth);
	fm_config_warn_unknown(&opt);
	if ((rc = fm_config__find(&c, "tags", FM_JSON_ARRAY, "an array", ptr))
	    != 0)
		return cfg_err(r, where, rc < 0 ? c.err : "'tags' is required");
	r->host->json_length(c.doc, ptr, &n);
	if ((in->tags = calloc(n ? n : 1, sizeof(*in->tags))) == NULL)
		return cfg_err(r, where, "out of memory");
	for (i = 0; i < n; i++) {
		char item[FM_CONFIG_MAX_PTR + 24], w[200];
		size_t j;

		snprintf(item, sizeof(item), "%s/%zu", ptr, i);
		snprintf(w, sizeof(w), "%s.tags[%zu]", where, i);
		if (r->host->json_type(c.doc, item) != FM_JSON_OBJECT)
			return cfg_err(r, w, "must be an object");
		config_at(&c, item, &tc);
		in->ntags++;
		if (read_tag(r, &tc, w, &in->tags[i]) < 0)
			return -1;
		if (in->tags[i].modular && in->mbs_user == NULL)
			return cfg_err(r, w, "a \"modular\" tag needs the "
			    "instance's 'mbs_user'");
		for (j = 0; j < i; j++)
			if (strcmp(in->tags[j].from, in->tags[i].from) == 0)
				return cfg_err(r, w, "'from' tag appears twice "
				    "in this instance");
	}
	fm_config_warn_unknown(&c);
	in->koji = koji_new(in->url, in->cert, in->serverca,
	    (long)r->koji_timeout);
	if (in->koji != NULL && in->kerberos &&
	    koji_set_kerberos(in->koji, in->principal, in->keytab) < 0) {
		koji_free(in->koji);
		in->koji = NULL;
	}
	return in->koji == NULL ? cfg_err(r, where, "out of memory") : 0;
}

static char **
strv_dup(const char *const *v)
{
	size_t i, n;
	char **out;

	for (n = 0; v[n] != NULL; n++)
		;
	if ((out = calloc(n + 1, sizeof(char *))) == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		if ((out[i] = strdup(v[i])) == NULL) {
			fm_config_strv_free(out);
			return NULL;
		}
	return out;
}

/* The optional "xml" object: the xml-sign handler. */
static int
read_xml(struct robosig *r, struct fm_config *c)
{
	struct fm_config x;
	size_t n = 0;
	int rc;

	if ((rc = fm_config_object(c, "xml", &x)) != 0)
		return rc < 0 ? cfg_err(r, "", c->err) : 0;
	if (need_string(r, &x, "xml", "key", &r->xml_key) < 0 ||
	    fm_config_string(&x, "tmpdir", &r->xml_tmpdir) < 0 ||
	    (rc = fm_config_strings(&x, "command", &r->xml_command, &n)) < 0)
		return cfg_err(r, "xml", x.err);
	if (rc == 0 && n == 0)
		return cfg_err(r, "xml", "'command' must not be empty");
	if (rc == 1 && (r->xml_command = strv_dup(default_xml_command))
	    == NULL)
		return cfg_err(r, "", "out of memory");
	if (r->xml_tmpdir == NULL && (r->xml_tmpdir = strdup("/var/tmp"))
	    == NULL)
		return cfg_err(r, "", "out of memory");
	if ((rc = fm_config_strings(&x, "trusted_publishers", &r->xml_trusted,
	    &n)) < 0)
		return cfg_err(r, "xml", x.err);
	if (rc == 1 || n == 0)
		return cfg_err(r, "xml", "'trusted_publishers' (the "
		    "certificate CNs allowed to send xml-sign) is required");
	fm_config_warn_unknown(&x);
	return 0;
}

/*
 * max_attempts is the hub entry's (config()'s FM_HUB_CONFIG_MEMBER): on
 * that attempt a transient failure is published, not retried.  Our own
 * "max_attempts" may only repeat it (a copy that differs would publish
 * the failure too early or never); alone (a hub that does not hand its
 * value over) it is used.  0, or -1 with c->err.
 */
static int
hub_max_attempts(struct robosig *r, struct fm_config *c)
{
	struct fm_config hub;
	long long mine = 0, hubs = 0;
	int rc;

	r->max_attempts = 3;	/* the hub's default */
	if (fm_config_int(c, "max_attempts", 1, 1000000, &mine) < 0)
		return -1;
	if ((rc = fm_config_object(c, FM_HUB_CONFIG_MEMBER, &hub)) < 0)
		return -1;
	if (rc == 0 && fm_config_int(&hub, "max_attempts", 1, UINT32_MAX,
	    &hubs) < 0) {
		snprintf(c->err, sizeof(c->err), "%s", hub.err);
		return -1;
	}
	if (hubs && mine && mine != hubs) {
		snprintf(c->err, sizeof(c->err), "'max_attempts' (%lld) differs "
		    "from the hub entry's max_attempts (%lld): leave it out, "
		    "the hub's is used", mine, hubs);
		return -1;
	}
	if (hubs || mine)
		r->max_attempts = hubs ? hubs : mine;
	return 0;
}

static int
read_config(struct robosig *r)
{
	struct fm_config c, sig, insts;
	size_t i, n = 0;
	int rc;

	r->koji_timeout = 60;
	r->sign_timeout = 600;
	if (fm_config_open(&c, r->host, r->hctx) != 0 ||
	    hub_max_attempts(r, &c) < 0 ||
	    fm_config_int(&c, "koji_timeout", 1, 3600, &r->koji_timeout) < 0)
		return cfg_err(r, "", c.err);
	if ((rc = fm_config_strings(&c, "trusted_publishers", &r->trusted, &n))
	    < 0)
		return cfg_err(r, "", c.err);
	if (rc == 1 || n == 0)
		return cfg_err(r, "", "'trusted_publishers' (the certificate "
		    "CNs allowed to send buildsys.tag) is required");
	if ((rc = fm_config_object(&c, "signing", &sig)) != 0)
		return cfg_err(r, "", rc < 0 ? c.err : "'signing' is required");
	if (need_string(r, &sig, "signing", "user", &r->user) < 0 ||
	    fm_config_string(&sig, "passphrase_file", &r->passphrase_file) < 0 ||
	    fm_config_string(&sig, "config_file", &r->config_file) < 0 ||
	    fm_config_int(&sig, "timeout", 1, 86400, &r->sign_timeout) < 0 ||
	    (rc = fm_config_strings(&sig, "command", &r->command, &n)) < 0)
		return cfg_err(r, "signing", sig.err);
	if (rc == 0 && n == 0)
		return cfg_err(r, "signing", "'command' must not be empty");
	if (rc == 1 && (r->command = strv_dup(default_command)) == NULL)
		return cfg_err(r, "", "out of memory");
	fm_config_warn_unknown(&sig);
	if (read_xml(r, &c) < 0)
		return -1;
	if ((rc = fm_config_object(&c, "koji_instances", &insts)) != 0)
		return cfg_err(r, "", rc < 0 ? c.err :
		    "'koji_instances' is required");
	n = fm_config_size(&insts);
	if (n == 0)
		return cfg_err(r, "koji_instances", "no instance configured");
	if ((r->inst = calloc(n, sizeof(*r->inst))) == NULL)
		return cfg_err(r, "", "out of memory");
	for (i = 0; i < n; i++) {
		r->ninst++;
		if (read_instance(r, &insts, i, &r->inst[i]) < 0)
			return -1;
	}
	fm_config_warn_unknown(&c);
	return 0;
}

static void
free_tag(struct rtag *t)
{
	free(t->from); free(t->to); free(t->key); free(t->keyid);
	free(t->file_signing_key); free(t->side_pattern); free(t->side_from);
	free(t->side_to);
	fm_config_strv_free(t->trusted_taggers);
}

static void
robosig_free(struct robosig *r)
{
	size_t i, j;

	for (i = 0; i < r->ninst; i++) {
		struct instance *in = &r->inst[i];

		for (j = 0; j < in->ntags; j++)
			free_tag(&in->tags[j]);
		free(in->tags);
		free(in->name); free(in->url); free(in->cert);
		free(in->serverca); free(in->mbs_user);
		free(in->principal); free(in->keytab);
		koji_free(in->koji);
	}
	free(r->inst);
	fm_config_strv_free(r->trusted);
	fm_config_strv_free(r->command);
	free(r->user);
	free(r->passphrase_file);
	free(r->config_file);
	free(r->xml_key);
	free(r->xml_tmpdir);
	fm_config_strv_free(r->xml_trusted);
	fm_config_strv_free(r->xml_command);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

/* ---- one message ------------------------------------------------------ */

enum outcome { DONE, MOVED_BEFORE, TRANSIENT, PERMANENT };

struct job {
	struct robosig		*r;
	struct instance		*in;
	const struct rtag	*t;
	bool			 side;		/* t's side tag, from -> to */
	const char		*input, *output;	/* xml-sign files */
	char			 from[SIDETAG_MAX], to[SIDETAG_MAX];
	int64_t			 build_id;
	char			 nvr[512];
	unsigned		 nsigned;
	char			 reason[512];
};

static enum outcome why(struct job *j, enum outcome o, const char *fmt, ...)
    FM_PRINTF(3, 4);

static enum outcome
why(struct job *j, enum outcome o, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(j->reason, sizeof(j->reason), fmt, ap);
	va_end(ap);
	return o;
}

static bool
in_list(char **list, const char *s)
{
	for (; list != NULL && s != NULL && *list != NULL; list++)
		if (strcmp(*list, s) == 0)
			return true;
	return false;
}

/* One Koji call; a fault is permanent, the rest transient. */
static enum outcome
call(struct job *j, struct xr_buf *req, int auth, struct xr_value **v)
{
	char err[300];
	enum koji_rc rc;

	*v = NULL;
	if (xr_call_end(req) < 0) {
		xr_buf_free(req);
		return why(j, TRANSIENT, "%s", "out of memory");
	}
	rc = koji_call(j->in->koji, req, auth, v, err, sizeof(err));
	xr_buf_free(req);
	if (rc == KOJI_OK)
		return DONE;
	xr_free(*v);
	*v = NULL;
	return why(j, rc == KOJI_FAULT ? PERMANENT : TRANSIENT, "%s", err);
}

/*
 * The session the signed copies are written with, got before the
 * signing command runs: a login that fails (DROP or RETRY) must not cost
 * a signing run, nor one per retry.
 */
static enum outcome
session(struct job *j)
{
	char err[300];
	enum koji_rc rc = koji_login(j->in->koji, err, sizeof(err));

	if (rc == KOJI_OK)
		return DONE;
	return why(j, rc == KOJI_FAULT ? PERMANENT : TRANSIENT, "%s", err);
}

/* An RPM name safe as one argv item: no option, no odd bytes. */
static bool
safe_arg(const char *s)
{
	if (s == NULL || s[0] == '\0' || s[0] == '-' || strlen(s) > 255)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || strchr("._+~^-", *s)))
			return false;
	return true;
}

/* Read the passphrase file (bounded); NULL when none is configured. */
static int
read_pass(struct robosig *r, char *buf, size_t size, size_t *len)
{
	FILE *f;

	*len = 0;
	if (r->passphrase_file == NULL)
		return 0;
	if ((f = fopen(r->passphrase_file, "re")) == NULL)
		return -1;
	*len = fread(buf, 1, size, f);
	fclose(f);
	if (*len == size)
		return -1;
	while (*len > 0 && (buf[*len - 1] == '\n' || buf[*len - 1] == '\r'))
		(*len)--;
	return 0;
}

static enum outcome
run_signer(struct job *j, char **tmpl, char **rpms, size_t nrpms)
{
	struct robosig *r = j->r;
	const char *argv[MAX_ARGS + 1];
	char out[2048], pass[4096];
	size_t n = 0, i, k, plen;
	int status;
	enum signer_rc rc;

	for (i = 0; tmpl[i] != NULL; i++) {
		const char *a = tmpl[i], *v = a;

		if (strcmp(a, "{rpms}") == 0) {
			for (k = 0; k < nrpms && n < MAX_ARGS; k++)
				argv[n++] = rpms[k];
			continue;
		}
		if (strcmp(a, "{user}") == 0)
			v = r->user;
		else if (strcmp(a, "{config_file}") == 0)
			v = r->config_file;
		else if (strcmp(a, "{instance}") == 0)
			v = j->in ? j->in->name : NULL;
		else if (strcmp(a, "{key}") == 0)
			v = j->t ? j->t->key : r->xml_key;
		else if (strcmp(a, "{keyid}") == 0)
			v = j->t ? j->t->keyid : NULL;
		else if (strcmp(a, "{file_signing_key}") == 0)
			v = j->t ? j->t->file_signing_key : NULL;
		else if (strcmp(a, "{input}") == 0)
			v = j->input;
		else if (strcmp(a, "{output}") == 0)
			v = j->output;
		if (v == NULL) {
			/*
			 * An unset optional: drop the item, and the option
			 * that names it ("--config-file {config_file}"), as
			 * robosignatory adds the pair only when it is set.
			 */
			if (i > 0 && n > 0 && argv[n - 1] == tmpl[i - 1] &&
			    strncmp(tmpl[i - 1], "--", 2) == 0)
				n--;
			continue;
		}
		if (n < MAX_ARGS)
			argv[n++] = v;
	}
	argv[n] = NULL;
	if (read_pass(r, pass, sizeof(pass), &plen) < 0)
		return why(j, TRANSIENT, "cannot read passphrase_file %s",
		    r->passphrase_file);
	rc = signer_run((char *const *)argv, plen ? pass : NULL, plen,
	    (int)r->sign_timeout * 1000, out, sizeof(out), &status);
	memset(pass, 0, sizeof(pass));
	if (out[0] != '\0')
		r->host->log(r->hctx, FM_LOG_INFO, "%s: signer said: %.1000s",
		    j->nvr, out);
	switch (rc) {
	case SIGNER_OK:
		return DONE;
	case SIGNER_FAILED:
		return why(j, PERMANENT, "Signing failed (%s)", status >= 0 ?
		    "non-zero exit" : "killed");
	case SIGNER_TIMEOUT:
		return why(j, TRANSIENT, "%s", "signer timed out");
	default:
		return why(j, TRANSIENT, "cannot run the signer %s",
		    tmpl[0]);
	}
}

/*
 * A side tag: the latest active tagging of the build into it (Koji's
 * queryHistory tag_listing) must be by one of trusted_taggers.
 */
static enum outcome
trusted_tagging(struct job *j)
{
	struct xr_buf req;
	struct xr_value *v = NULL;
	const struct xr_value *rows, *best = NULL;
	int64_t best_ev = -1, ev;
	const char *who;
	size_t i;
	enum outcome o;

	xr_call_begin(&req, "queryHistory");
	xr_kwargs_begin(&req);
	xr_kw_int(&req, "build", j->build_id);
	xr_kwargs_end(&req);
	if ((o = call(j, &req, 0, &v)) != DONE)
		return o;
	rows = xr_get(v, "tag_listing");
	for (i = 0; rows != NULL && rows->type == XR_ARRAY && i < rows->n;
	    i++) {
		const struct xr_value *row = rows->items[i],
		    *active = xr_get(row, "active");
		const char *tn = xr_get_str(row, "tag.name");

		if (tn == NULL || strcmp(tn, j->from) != 0 || active == NULL ||
		    active->type != XR_BOOL || active->i != 1 ||
		    xr_get_int(row, "create_event", &ev) < 0)
			continue;
		if (ev > best_ev) {
			best_ev = ev;
			best = row;
		}
	}
	if (best == NULL)
		o = why(j, PERMANENT, "Tag not found in build history: %s",
		    j->from);
	else if (!in_list(j->t->trusted_taggers,
	    (who = xr_get_str(best, "creator_name"))))
		o = why(j, PERMANENT, "Side tag build tagged by untrusted "
		    "user %.100s", who ? who : "(none)");
	xr_free(v);
	return o;
}

/* The RPMs of the builds a job signs: every id, the unsigned ones' names. */
struct rpmset {
	int64_t	 ids[MAX_RPMS];
	char	*names[MAX_RPMS + 1];	/* NULL-terminated */
	size_t	 nids, nnames;
};

/* listRPMs, queryRPMSigs: add build_id's RPMs to set. */
static enum outcome
collect_rpms(struct job *j, int64_t build_id, struct rpmset *set)
{
	struct xr_buf req;
	struct xr_value *v = NULL, *rpms = NULL;
	size_t i;
	enum outcome o;

	xr_call_begin(&req, "listRPMs");
	xr_param_int(&req, build_id);
	if ((o = call(j, &req, 0, &rpms)) != DONE)
		return o;
	if (rpms->type != XR_ARRAY || rpms->n > MAX_RPMS - set->nids) {
		xr_free(rpms);
		return why(j, PERMANENT, "%s", "listRPMs: not a list of RPMs "
		    "(or too many)");
	}
	for (i = 0; i < rpms->n; i++) {
		const struct xr_value *rpm = rpms->items[i];
		const char *rn = xr_get_str(rpm, "name"),
		    *rv = xr_get_str(rpm, "version"),
		    *rr = xr_get_str(rpm, "release"),
		    *ra = xr_get_str(rpm, "arch");
		int64_t id;
		char nvra[1100];

		if (xr_get_int(rpm, "id", &id) < 0 || !rn || !rv || !rr || !ra) {
			o = why(j, PERMANENT, "%s", "listRPMs: an RPM without "
			    "id, name, version, release or arch");
			break;
		}
		snprintf(nvra, sizeof(nvra), "%s-%s-%s.%s", rn, rv, rr, ra);
		if (!safe_arg(nvra)) {
			o = why(j, PERMANENT, "unsafe RPM name %.200s", nvra);
			break;
		}
		xr_call_begin(&req, "queryRPMSigs");
		xr_kwargs_begin(&req);
		xr_kw_int(&req, "rpm_id", id);
		xr_kw_string(&req, "sigkey", j->t->keyid);
		xr_kwargs_end(&req);
		if ((o = call(j, &req, 0, &v)) != DONE)
			break;
		set->ids[set->nids++] = id;
		if ((v->type != XR_ARRAY || v->n == 0) &&
		    (set->names[set->nnames++] = strdup(nvra)) == NULL)
			o = why(j, TRANSIENT, "%s", "out of memory");
		xr_free(v);
		if (o != DONE)
			break;
	}
	xr_free(rpms);
	return o;
}

/*
 * A modular build: every build in its content tag (the module build's
 * extra.typeinfo.module.content_koji_tag) must be owned by mbs_user;
 * their RPMs are signed.
 */
static enum outcome
collect_module(struct job *j, const char *content_tag, struct rpmset *set)
{
	struct xr_buf req;
	struct xr_value *v = NULL;
	const char *owner;
	int64_t id;
	size_t i;
	enum outcome o;

	if (content_tag == NULL)
		return why(j, PERMANENT, "%s is not a module build (no "
		    "extra.typeinfo.module.content_koji_tag)", j->nvr);
	xr_call_begin(&req, "listTagged");
	xr_param_string(&req, content_tag);
	if ((o = call(j, &req, 0, &v)) != DONE)
		return o;
	if (v->type != XR_ARRAY)
		o = why(j, PERMANENT, "listTagged %.200s: not a list",
		    content_tag);
	for (i = 0; o == DONE && i < v->n; i++) {
		owner = xr_get_str(v->items[i], "owner_name");
		if (owner == NULL || strcmp(owner, j->in->mbs_user) != 0)
			o = why(j, PERMANENT, "module content tag %.200s has a "
			    "build owned by %.100s, not %.100s", content_tag,
			    owner ? owner : "(none)", j->in->mbs_user);
		else if (xr_get_int(v->items[i], "build_id", &id) < 0)
			o = why(j, PERMANENT, "listTagged %.200s: a build "
			    "without build_id", content_tag);
		else
			o = collect_rpms(j, id, set);
	}
	xr_free(v);
	return o;
}

static char *
content_tag_of(const struct xr_value *build)
{
	const struct xr_value *v = xr_get(build, "extra");
	const char *tag;

	v = v ? xr_get(v, "typeinfo") : NULL;
	v = v ? xr_get(v, "module") : NULL;
	tag = v ? xr_get_str(v, "content_koji_tag") : NULL;
	return tag ? strdup(tag) : NULL;
}

static enum outcome
process(struct job *j, const char *name, const char *version,
    const char *release)
{
	const struct rtag *t = j->t;
	struct xr_buf req;
	struct xr_value *v = NULL;
	struct rpmset *set;
	char *content_tag = NULL;
	size_t i;
	bool in_from = false, in_to = false;
	enum outcome o;

	/* getBuild: the build exists and is the one the message names */
	xr_call_begin(&req, "getBuild");
	xr_param_int(&req, j->build_id);
	if ((o = call(j, &req, 0, &v)) != DONE)
		return o;
	if (v->type != XR_STRUCT) {
		xr_free(v);
		return why(j, PERMANENT, "unknown build %s", j->nvr);
	}
	if (!xr_get_str(v, "name") || strcmp(xr_get_str(v, "name"), name) ||
	    !xr_get_str(v, "version") ||
	    strcmp(xr_get_str(v, "version"), version) ||
	    !xr_get_str(v, "release") ||
	    strcmp(xr_get_str(v, "release"), release)) {
		xr_free(v);
		return why(j, PERMANENT, "build_id is not %s in koji", j->nvr);
	}
	if (t->modular)
		content_tag = content_tag_of(v);
	xr_free(v);

	if (j->side && (o = trusted_tagging(j)) != DONE)
		goto out_tag;

	/* listTags: still in "from"?  Already moved to "to"? */
	xr_call_begin(&req, "listTags");
	xr_param_int(&req, j->build_id);
	if ((o = call(j, &req, 0, &v)) != DONE)
		goto out_tag;
	for (i = 0; v->type == XR_ARRAY && i < v->n; i++) {
		const char *tn = xr_get_str(v->items[i], "name");

		in_from |= tn != NULL && strcmp(tn, j->from) == 0;
		in_to |= tn != NULL && strcmp(tn, j->to) == 0;
	}
	xr_free(v);
	if (!in_from) {
		o = in_to ? why(j, MOVED_BEFORE, "already in %s", j->to) :
		    why(j, PERMANENT, "build is not tagged into %s", j->from);
		goto out_tag;
	}

	/* which RPMs still need the key */
	if ((set = calloc(1, sizeof(*set))) == NULL) {
		o = why(j, TRANSIENT, "%s", "out of memory");
		goto out_tag;
	}
	o = t->modular ? collect_module(j, content_tag, set) :
	    collect_rpms(j, j->build_id, set);
	if (o != DONE)
		goto out;

	/* log in, sign what is not signed yet, record the signed copies
	   (with nothing to sign, the first call that needs it logs in) */
	if (set->nnames > 0 && ((o = session(j)) != DONE ||
	    (o = run_signer(j, j->r->command, set->names, set->nnames)) != DONE))
		goto out;
	j->nsigned = (unsigned)set->nnames;
	for (i = 0; i < set->nids; i++) {
		xr_call_begin(&req, "writeSignedRPM");
		xr_param_int(&req, set->ids[i]);
		xr_param_string(&req, t->keyid);
		if ((o = call(j, &req, 1, &v)) != DONE)
			goto out;
		xr_free(v);
	}

	/* the move: Bodhi's "signed" signal */
	o = DONE;
	if (strcmp(j->from, j->to) != 0) {
		xr_call_begin(&req, "tagBuild");
		xr_param_string(&req, j->to);
		xr_param_int(&req, j->build_id);
		xr_param_bool(&req, 0);
		if (t->skip_untagging)
			xr_param_nil(&req);
		else
			xr_param_string(&req, j->from);
		if ((o = call(j, &req, 1, &v)) == DONE)
			xr_free(v);
	}
	if (o == DONE)
		snprintf(j->reason, sizeof(j->reason), "%s", set->nnames ?
		    "signed" : "already signed");
out:
	for (i = 0; i < set->nnames; i++)
		free(set->names[i]);
	free(set);
out_tag:
	free(content_tag);
	return o;
}

static void
publish_result(struct job *j, const char *tag, const char *status,
    double duration)
{
	const struct fm_host *h = j->r->host;
	struct fm_builder *b = h->builder_new();

#define KEY(k)	h->build_key(b, k, strlen(k))
#define STR(s)	h->build_string(b, s, strlen(s))
	h->build_object_begin(b);
	KEY("build_id");	h->build_int(b, j->build_id);
	KEY("build");		STR(j->nvr);
	KEY("instance");	STR(j->in->name);
	KEY("tag");		STR(tag);
	KEY("to");		STR(j->to);
	KEY("key");		STR(j->t->key);
	KEY("keyid");		STR(j->t->keyid);
	KEY("status");		STR(status);
	KEY("reason");		STR(j->reason);
	KEY("rpms_signed");	h->build_int(b, j->nsigned);
	KEY("duration");	h->build_double(b, duration);
	h->build_object_end(b);
#undef KEY
#undef STR
	if (h->publish_built(j->r->hctx, "robosignatory", "build.sign", b) != 0)
		h->log(j->r->hctx, FM_LOG_WARN, "%s: result not published",
		    j->nvr);
}

static bool
seen_id(struct robosig *r, const char *id, bool add)
{
	size_t i;
	bool found = false;

	if (id == NULL || strlen(id) >= MSGID_LEN)
		return false;
	pthread_mutex_lock(&r->lock);
	for (i = 0; i < SEEN_IDS && !found; i++)
		found = strcmp(r->seen[i], id) == 0;
	if (add && !found) {
		snprintf(r->seen[r->seen_next], MSGID_LEN, "%s", id);
		r->seen_next = (r->seen_next + 1) % SEEN_IDS;
	}
	pthread_mutex_unlock(&r->lock);
	return found;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- xml-sign ------------------------------------------------------- */

static void
publish_xml(struct robosig *r, const char *body, size_t len, const char *k,
    const char *v)
{
	const struct fm_host *h = r->host;
	struct fm_builder *b = h->builder_new();

	h->build_object_begin(b);
	h->build_key(b, "body", 4);
	h->build_string(b, body, len);
	h->build_key(b, k, strlen(k));
	h->build_string(b, v, strlen(v));
	h->build_object_end(b);
	if (h->publish_built(r->hctx, "robosignatory", "xml-sign.finished", b)
	    != 0)
		h->log(r->hctx, FM_LOG_WARN, "xml-sign: reply not published");
}

/* Write body to a new file in xml_tmpdir; its name in path. */
static int
xml_input(struct robosig *r, const char *body, size_t len, char *path,
    size_t size)
{
	int fd;
	size_t off = 0;
	ssize_t n;

	if ((size_t)snprintf(path, size, "%s/robosignatory-xml-XXXXXX",
	    r->xml_tmpdir) >= size || (fd = mkstemp(path)) < 0)
		return -1;
	while (off < len) {
		if ((n = write(fd, body + off, len - off)) <= 0) {
			close(fd);
			unlink(path);
			return -1;
		}
		off += (size_t)n;
	}
	return close(fd);
}

/* The signature file: bounded, text only; NULL when missing or odd. */
static char *
xml_signature(const char *path)
{
	FILE *f = fopen(path, "re");
	char *sig = calloc(1, XML_SIG_MAX + 1);
	size_t n = 0;

	if (f != NULL && sig != NULL)
		n = fread(sig, 1, XML_SIG_MAX + 1, f);
	if (f != NULL)
		fclose(f);
	if (sig == NULL || n == 0 || n > XML_SIG_MAX || strlen(sig) != n) {
		free(sig);
		return NULL;
	}
	return sig;
}

static int
xml_consume(struct robosig *r, struct fm_msg *msg)
{
	const struct fm_host *h = r->host;
	const struct fm_json *d = h->msg_json(msg);
	const char *signer = h->msg_signer(msg), *id = h->msg_id(msg), *body;
	char in[4096], out[4200], *sig;
	struct job j = { .r = r };
	size_t len = 0;
	enum outcome o;

	if (r->xml_key == NULL) {
		r->skipped++;		/* no "xml" configured */
		return FM_CONSUME_OK;
	}
	if (!in_list(r->xml_trusted, signer)) {
		h->log(r->hctx, FM_LOG_WARN, "%s: signer '%s' is not in "
		    "xml.trusted_publishers: ignored", id ? id : "?",
		    signer ? signer : "(unsigned)");
		r->untrusted++;
		return FM_CONSUME_DROP;
	}
	if (seen_id(r, id, false))
		return FM_CONSUME_OK;
	if (h->json_string(d, "/msg", &body, &len) != FM_JSON_OK ||
	    len > XML_MAX || len < strlen(XML_DECL) ||
	    memcmp(body, XML_DECL, strlen(XML_DECL)) != 0 ||
	    memchr(body, '\0', len) != NULL) {
		r->unknown++;
		h->log(r->hctx, FM_LOG_WARN, "%s: xml-sign: the body is not "
		    "an XML document (a string starting with %s)",
		    id ? id : "?", XML_DECL);
		if (h->json_string(d, "/msg", &body, &len) != FM_JSON_OK ||
		    len > XML_MAX)
			body = "", len = 0;
		publish_xml(r, body, len, "error", "not an XML document");
		seen_id(r, id, true);
		return FM_CONSUME_OK;
	}
	snprintf(j.nvr, sizeof(j.nvr), "xml-sign %s", id ? id : "?");
	if (xml_input(r, body, len, in, sizeof(in)) < 0) {
		o = why(&j, TRANSIENT, "cannot write a file in %s",
		    r->xml_tmpdir);
	} else {
		snprintf(out, sizeof(out), "%s.asc", in);
		j.input = in;
		j.output = out;
		o = run_signer(&j, r->xml_command, NULL, 0);
		if (o == DONE && (sig = xml_signature(out)) != NULL) {
			publish_xml(r, body, len, "signature", sig);
			free(sig);
		} else if (o == DONE)
			o = why(&j, PERMANENT, "%s", "the signer wrote no "
			    "signature");
		unlink(in);
		unlink(out);
	}
	if (o == DONE) {
		r->signed_builds++;
		seen_id(r, id, true);
		h->log(r->hctx, FM_LOG_INFO, "%s: signed", j.nvr);
		return FM_CONSUME_OK;
	}
	if (o == TRANSIENT && h->msg_attempt(msg) < (unsigned)r->max_attempts) {
		r->retried++;
		h->log(r->hctx, FM_LOG_WARN, "%s: %s (will retry)", j.nvr,
		    j.reason);
		return FM_CONSUME_RETRY;
	}
	r->failed++;
	h->log(r->hctx, FM_LOG_ERR, "%s: %s", j.nvr, j.reason);
	publish_xml(r, body, len, "error", j.reason);
	return FM_CONSUME_DROP;
}

/* ---- dispatch --------------------------------------------------------- */

static bool
ends_with(const char *s, const char *tail)
{
	size_t n = s ? strlen(s) : 0, k = strlen(tail);

	return n >= k && strcmp(s + n - k, tail) == 0;
}

/*
 * The build and tag of a tag message: Fedora's flat buildsys.tag body
 * (id "/msg" means /msg/build_id) or Brew's protonmsg build.tag as the
 * bridge wraps it (build {id, name, version, release}, tag {name}).
 */
static bool
tag_body(const struct fm_host *h, const struct fm_json *d, const char *idp,
    const char *nvrp, const char *tagp, int64_t *build_id, char *name,
    char *version, char *release, char *tag)
{
	char p[64];

	if (strcmp(idp, "/msg") == 0)
		idp = "/msg/build_id";
#define NVR(field, buf)	(snprintf(p, sizeof(p), "%s/" field, nvrp), \
	h->json_string_copy(d, p, buf, FIELD_LEN, NULL) == FM_JSON_OK)
	return h->json_int(d, idp, build_id) == FM_JSON_OK &&
	    NVR("name", name) && NVR("version", version) &&
	    NVR("release", release) &&
	    h->json_string_copy(d, tagp, tag, FIELD_LEN, NULL) == FM_JSON_OK;
#undef NVR
}

static int
rs_consume(void *state, struct fm_msg *msg)
{
	struct robosig *r = state;
	const struct fm_host *h = r->host;
	const struct fm_json *d = h->msg_json(msg);
	const char *signer = h->msg_signer(msg), *id = h->msg_id(msg);
	char name[FIELD_LEN], version[FIELD_LEN], release[FIELD_LEN],
	    tag[FIELD_LEN], inst[128];
	struct job j = { .r = r };
	enum outcome o;
	double t0 = now_s();
	size_t i;
	unsigned attempt;

	if (ends_with(h->msg_topic(msg), ".robosignatory.xml-sign"))
		return xml_consume(r, msg);
	/* second line behind the hub: only Koji's hub may ask us to sign */
	if (!in_list(r->trusted, signer)) {
		h->log(r->hctx, FM_LOG_WARN, "%s: signer '%s' is not in "
		    "trusted_publishers: ignored", id ? id : "?",
		    signer ? signer : "(unsigned)");
		r->untrusted++;
		return FM_CONSUME_DROP;
	}
	if (seen_id(r, id, false)) {
		h->log(r->hctx, FM_LOG_INFO, "%s: handled before", id);
		return FM_CONSUME_OK;
	}
	if (!tag_body(h, d, "/msg", "/msg", "/msg/tag", &j.build_id, name,
	    version, release, tag) &&
	    !tag_body(h, d, "/msg/build/id", "/msg/build", "/msg/tag/name",
	    &j.build_id, name, version, release, tag)) {
		h->log(r->hctx, FM_LOG_WARN, "%s: not a buildsys.tag body "
		    "(build_id, name, version, release, tag) nor Brew's "
		    "build.tag (build {id, name, version, release}, tag {name})",
		    id ? id : "?");
		r->unknown++;
		return FM_CONSUME_DROP;
	}
	if (h->json_string_copy(d, "/msg/instance", inst, sizeof(inst), NULL))
		snprintf(inst, sizeof(inst), "primary");
	snprintf(j.nvr, sizeof(j.nvr), "%s-%s-%s", name, version, release);
	for (i = 0; i < r->ninst && !j.in; i++)
		if (strcmp(r->inst[i].name, inst) == 0)
			j.in = &r->inst[i];
	if (j.in == NULL) {
		h->log(r->hctx, FM_LOG_INFO, "%s: unknown koji instance '%s'",
		    j.nvr, inst);
		r->skipped++;
		return FM_CONSUME_OK;
	}
	for (i = 0; i < j.in->ntags && !j.t; i++)
		if (strcmp(j.in->tags[i].from, tag) == 0) {
			j.t = &j.in->tags[i];
			snprintf(j.from, sizeof(j.from), "%s", j.t->from);
			snprintf(j.to, sizeof(j.to), "%s", j.t->to);
		}
	for (i = 0; i < j.in->ntags && !j.t; i++) {
		const struct rtag *t = &j.in->tags[i];

		if (t->side_pattern != NULL && sidetag_match(t->side_pattern,
		    t->side_from, t->side_to, t->from, t->to, tag, j.to,
		    sizeof(j.to)) == 1) {
			j.t = t;
			j.side = true;
			snprintf(j.from, sizeof(j.from), "%s", tag);
		}
	}
	if (j.t == NULL) {
		r->skipped++;	/* not a tag we sign for */
		return FM_CONSUME_OK;
	}
	o = process(&j, name, version, release);
	attempt = h->msg_attempt(msg);
	switch (o) {
	case DONE:
		r->signed_builds++;
		seen_id(r, id, true);
		h->log(r->hctx, FM_LOG_INFO, "%s: %s, %s -> %s", j.nvr,
		    j.reason, tag, j.to);
		publish_result(&j, tag, "success", now_s() - t0);
		return FM_CONSUME_OK;
	case MOVED_BEFORE:
		r->moved_before++;
		seen_id(r, id, true);
		h->log(r->hctx, FM_LOG_INFO, "%s: %s", j.nvr, j.reason);
		publish_result(&j, tag, "already-done", now_s() - t0);
		return FM_CONSUME_OK;
	case TRANSIENT:
		if (attempt < (unsigned)r->max_attempts) {
			r->retried++;
			h->log(r->hctx, FM_LOG_WARN, "%s: %s (attempt %u, will "
			    "retry)", j.nvr, j.reason, attempt);
			return FM_CONSUME_RETRY;
		}
		/* FALLTHROUGH */
	default:
		r->failed++;
		h->log(r->hctx, FM_LOG_ERR, "%s: %s", j.nvr, j.reason);
		publish_result(&j, tag, "failure", now_s() - t0);
		return FM_CONSUME_DROP;
	}
}

static int
rs_init(const struct fm_host *host, void *hctx, void **state)
{
	struct robosig *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return -1;
	r->host = host;
	r->hctx = hctx;
	pthread_mutex_init(&r->lock, NULL);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		host->log(hctx, FM_LOG_ERR, "libcurl failed to initialise");
		pthread_mutex_destroy(&r->lock);
		free(r);
		return -1;
	}
	if (read_config(r) != 0) {
		robosig_free(r);
		curl_global_cleanup();
		return -1;
	}
	*state = r;
	return 0;
}

static void
rs_fini(void *state)
{
	struct robosig *r = state;

	r->host->log(r->hctx, FM_LOG_INFO, "signed or moved %llu, already "
	    "done %llu, failed %llu, retried %llu, untrusted %llu, not ours "
	    "%llu, malformed %llu", r->signed_builds, r->moved_before,
	    r->failed, r->retried, r->untrusted, r->skipped, r->unknown);
	robosig_free(r);
	curl_global_cleanup();
}

static const char *const rs_topics[] = {
	"*.buildsys.tag", "*.robosignatory.xml-sign", NULL,
};

static const struct fm_plugin plugin = {
	FM_PLUGIN_ABI_MAJOR, FM_PLUGIN_ABI_MINOR, sizeof(struct fm_plugin),
	"robosignatory", "0.1.0", NULL, rs_topics,
	rs_init, rs_consume, NULL, rs_fini,
};

FM_PLUGIN_DEFINE(plugin)
