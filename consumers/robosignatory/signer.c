/*
 * signer.h.  The child gets its stdin from a socketpair, so that writing
 * the passphrase to a child that already exited is EPIPE with
 * MSG_NOSIGNAL, not a SIGPIPE for the whole hub.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "signer.h"

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

enum signer_rc
signer_run(char *const argv[], const char *pass, size_t plen, int timeout_ms,
    char *out, size_t outsz, int *status)
{
	int in[2], o[2], st = 0, timed_out = 0;
	size_t olen = 0;
	long long deadline = now_ms() + timeout_ms;
	pid_t pid;

	out[0] = '\0';
	*status = -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) < 0)
		return SIGNER_ERROR;
	if (pipe2(o, O_CLOEXEC) < 0) {
		close(in[0]);
		close(in[1]);
		return SIGNER_ERROR;
	}
	if ((pid = fork()) < 0) {
		close(in[0]); close(in[1]); close(o[0]); close(o[1]);
		return SIGNER_ERROR;
	}
	if (pid == 0) {
		sigset_t none;

		/*
		 * Async-signal-safe calls only: the hub has threads.  The
		 * signer (it gets the key's passphrase) starts clean: no
		 * signal the hub blocks or ignores (SIGPIPE), and no
		 * descriptor of the hub's but stdin, stdout and stderr.
		 */
		setpgid(0, 0);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		if (dup2(in[1], 0) < 0 || dup2(o[1], 1) < 0 || dup2(o[1], 2) < 0)
			_exit(126);
		if (close_range(3, ~0U, 0) < 0)
			for (int fd = 3; fd < 65536; fd++)
				close(fd);
		execvp(argv[0], argv);
		_exit(127);
	}
	setpgid(pid, pid);	/* (both sides: no race with the kill) */
	close(in[1]);
	close(o[1]);
	if (pass != NULL && plen > 0) {
		/* small enough for the socket buffer; a dead child: EPIPE */
		if (send(in[0], pass, plen, MSG_NOSIGNAL) >= 0)
			(void)send(in[0], "", 1, MSG_NOSIGNAL);
	}
	shutdown(in[0], SHUT_WR);
	for (;;) {
		struct pollfd p = { o[0], POLLIN, 0 };
		long long left = deadline - now_ms();
		char buf[4096];
		ssize_t n;

		if (left <= 0) {
			timed_out = 1;
			break;
		}
		if (poll(&p, 1, (int)left) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p.revents == 0)
			continue;
		n = read(o[0], buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;		/* EOF: every writer closed */
		if (olen + 1 < outsz) {
			size_t k = (size_t)n < outsz - 1 - olen ? (size_t)n :
			    outsz - 1 - olen;

			memcpy(out + olen, buf, k);
			olen += k;
			out[olen] = '\0';
		}
	}
	if (!timed_out) {
		/* output closed; the exit may still take until the deadline */
		while (waitpid(pid, &st, WNOHANG) == 0) {
			if (now_ms() >= deadline) {
				timed_out = 1;
				break;
			}
			usleep(2000);
		}
	}
	/* the group: a signer's helpers die with it */
	if (timed_out) {
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
	}
	close(in[0]);
	close(o[0]);
	if (timed_out)
		return SIGNER_TIMEOUT;
	if (WIFEXITED(st)) {
		*status = WEXITSTATUS(st);
		return *status == 0 ? SIGNER_OK : *status == 127 ?
		    SIGNER_ERROR : SIGNER_FAILED;
	}
	*status = WTERMSIG(st);
	return SIGNER_FAILED;
}
