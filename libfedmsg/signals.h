/* Signal handling of the long-running programs: the one place it is set up. */
#ifndef FM_SIGNALS_H
#define FM_SIGNALS_H

#include <signal.h>
#include <stdbool.h>

/*
 * SIGINT and SIGTERM set *stop to 1; SIGHUP sets *reload to 1 when reload
 * is not NULL (else SIGHUP keeps its default action).  Without SA_RESTART,
 * so that a blocking zmq_poll() returns EINTR and the loop sees the flag.
 * SIGPIPE is ignored when ignore_sigpipe (writes to a closed socket fail
 * with EPIPE instead); else it keeps its default, so that a filter such as
 * `fedmsg-tail | head` ends when its reader does.
 */
void catch_signals(volatile sig_atomic_t *stop, volatile sig_atomic_t *reload,
    bool ignore_sigpipe);

/* catch_signals(flag, NULL, true): the daemons and relays. */
void catch_stop_signals(volatile sig_atomic_t *flag);

#endif
