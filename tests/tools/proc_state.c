/*
 * proc_state: a test-only stand-in for a program that fedmsg-c starts
 * (robosignatory's signer), to see what it was started with.
 *
 *   proc_state OUT [ARG...]
 *
 * Reads its stdin to the end, then writes to OUT one line:
 *
 *   fds <descriptors open above 2> blocked <signals> ignored <signals>
 *
 * each a comma-separated list of numbers ("-" for none).  Exits 0.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "buf.h"

static void
add_list(struct buf *b, const char *name, const int *v, int n)
{
	int i;

	buf_printf(b, "%s%s ", b->len ? " " : "", name);
	if (n == 0)
		buf_addc(b, '-');
	for (i = 0; i < n; i++)
		buf_printf(b, "%s%d", i ? "," : "", v[i]);
}

int
main(int argc, char **argv)
{
	int fds[1024], blocked[64], ignored[64], nf = 0, nb = 0, ni = 0, fd;
	struct buf b = BUF_INIT;
	char chunk[4096];
	sigset_t mask;
	FILE *out;

	if (argc < 2) {
		fprintf(stderr, "usage: proc_state OUT [ARG...]\n");
		return 2;
	}
	/* what was inherited, before this program opens anything */
	for (fd = 3; fd < 1024; fd++)
		if (fcntl(fd, F_GETFD) != -1)
			fds[nf++] = fd;
	sigprocmask(SIG_BLOCK, NULL, &mask);
	for (int s = 1; s < 64; s++) {
		struct sigaction sa;

		if (sigismember(&mask, s) == 1)
			blocked[nb++] = s;
		if (sigaction(s, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
			ignored[ni++] = s;
	}
	while (read(0, chunk, sizeof(chunk)) > 0)
		;
	add_list(&b, "fds", fds, nf);
	add_list(&b, "blocked", blocked, nb);
	add_list(&b, "ignored", ignored, ni);
	if ((out = fopen(argv[1], "w")) == NULL) {
		perror(argv[1]);
		return 1;
	}
	fprintf(out, "%s\n", b.data);
	buf_free(&b);
	return fclose(out) == 0 ? 0 : 1;
}
