/*
 * Logging to stderr, one line per event: "<program>: <level>: <text>".
 * Under systemd (JOURNAL_STREAM set) lines start with "<N>", the syslog
 * priority, so journald files each line at its level.  Control characters
 * in the text are escaped.  Thread-safe (one write(2) per line).
 */
#ifndef FM_LOG_H
#define FM_LOG_H

/* The levels are the plugin ABI's: FM_LOG_ERR, _WARN, _INFO, _DEBUG (not
 * <syslog.h>'s LOG_*, which clash). */
#include <fedmsg/plugin.h>

/* Program name used as the prefix; verbosity (default FM_LOG_INFO). */
void log_init(const char *progname, enum fm_log_level max);
void log_msg(enum fm_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_err(...)	log_msg(FM_LOG_ERR, __VA_ARGS__)
#define log_warn(...)	log_msg(FM_LOG_WARN, __VA_ARGS__)
#define log_info(...)	log_msg(FM_LOG_INFO, __VA_ARGS__)
#define log_debug(...)	log_msg(FM_LOG_DEBUG, __VA_ARGS__)

#endif
