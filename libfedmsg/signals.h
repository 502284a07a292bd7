/* Stopping long-running tools cleanly on SIGINT/SIGTERM. */
#ifndef FM_SIGNALS_H
#define FM_SIGNALS_H

#include <signal.h>

/*
 * Make SIGINT and SIGTERM set *flag to 1.  Without SA_RESTART, so that a
 * blocking zmq_poll() returns EINTR and the loop sees the flag.  SIGPIPE
 * is ignored.
 */
void catch_stop_signals(volatile sig_atomic_t *flag);

#endif
