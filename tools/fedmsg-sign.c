/*
 * fedmsg-sign: sign one envelope from standard input with an x509
 * certificate and key, exactly as fedmsg would (but never over an old
 * signature: any signature/certificate is dropped first).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fedmsg/crypto.h>
#include <fedmsg/message.h>

#include "buf.h"
#include "config.h"
#include "log.h"

static const char usage[] =
"usage: fedmsg-sign --cert FILE --key FILE [--config PATH]\n"
"\n"
"Reads one fedmsg envelope (a JSON object) on standard input, drops any\n"
"signature/certificate, sets crypto to \"x509\", signs it with RSA/SHA-1\n"
"and prints the signed envelope as one line of canonical JSON.\n"
"\n"
"  --cert FILE    signer certificate (PEM; the first one is used)\n"
"  --key FILE     its unencrypted PEM RSA private key\n"
"  --config PATH  fedmsg-c config, for max_message_bytes/max_json_depth\n"
"  -h, --help     this text\n"
"\n"
"Exit status: 0 signed, 1 bad input, 2 usage or I/O error.\n";

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "cert", required_argument, NULL, 'c' },
		{ "key", required_argument, NULL, 'k' },
		{ "config", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *cert = NULL, *key = NULL, *config = NULL;
	struct fm_limits lim = { FM_DEFAULT_MAX_MESSAGE_BYTES, 0 };
	struct fm_config *cfg = NULL;
	struct fm_signer *s = NULL;
	struct fm_msg *in = NULL, *out = NULL;
	struct buf b = BUF_INIT;
	char err[FM_ERRLEN], chunk[65536];
	size_t n;
	int c, status = 2;

	log_init("fedmsg-sign", FM_LOG_WARN);
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': cert = optarg; break;
		case 'k': key = optarg; break;
		case 'C': config = optarg; break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (cert == NULL || key == NULL || optind != argc) {
		fputs(usage, stderr);
		return 2;
	}
	if (config) {
		if (fm_config_load(config, &cfg, err) < 0) {
			log_err("%s", err);
			return 2;
		}
		if (cfg->limits.max_message_bytes)
			lim = cfg->limits;
	}
	if ((s = fm_signer_load(cert, key, err)) == NULL) {
		log_err("%s", err);
		goto out;
	}
	/* Read at most one byte more than the limit: enough to refuse it. */
	while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0) {
		if (b.len <= lim.max_message_bytes)
			buf_add(&b, chunk, n);
	}
	if (ferror(stdin)) {
		log_err("stdin: %s", strerror(errno));
		goto out;
	}
	status = 1;
	if (fm_msg_parse(b.data ? b.data : "", b.len, &lim, &in, err) < 0) {
		log_err("not a fedmsg envelope: %s", err);
		goto out;
	}
	if (fm_signer_sign(s, in, &out, err) < 0) {
		log_err("%s", err);
		goto out;
	}
	{
		size_t len;
		const char *body = fm_msg_body(out, &len);

		fwrite(body, 1, len, stdout);
		putchar('\n');
	}
	status = fflush(stdout) == 0 ? 0 : 2;
out:
	buf_free(&b);
	fm_msg_unref(in);
	fm_msg_unref(out);
	fm_signer_free(s);
	fm_config_free(cfg);
	return status;
}
