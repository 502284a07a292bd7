#include <string.h>

#include "signals.h"

static volatile sig_atomic_t *stop_flag, *reload_flag;

static void
on_stop(int sig)
{
	(void)sig;
	if (stop_flag)
		*stop_flag = 1;
}

static void
on_reload(int sig)
{
	(void)sig;
	if (reload_flag)
		*reload_flag = 1;
}

void
catch_signals(volatile sig_atomic_t *stop, volatile sig_atomic_t *reload,
    bool ignore_sigpipe)
{
	struct sigaction sa;

	stop_flag = stop;
	reload_flag = reload;
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (reload) {
		sa.sa_handler = on_reload;
		sigaction(SIGHUP, &sa, NULL);
	}
	if (ignore_sigpipe) {
		sa.sa_handler = SIG_IGN;
		sigaction(SIGPIPE, &sa, NULL);
	}
}

void
catch_stop_signals(volatile sig_atomic_t *flag)
{
	catch_signals(flag, NULL, true);
}
