/*
 * Logging to stderr, one line per event: "<program>: <level>: <text>".
 * Under systemd (JOURNAL_STREAM set) lines start with "<N>", the syslog
 * priority, so journald files each line at its level.  Control characters
 * in the text are escaped.  Thread-safe (one write(2) per line).
 */
#ifndef FM_LOG_H
#define FM_LOG_H

enum log_level { LOG_ERR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Program name used as the prefix; verbosity (default LOG_INFO). */
void log_init(const char *progname, enum log_level max);
void log_msg(enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_err(...)	log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)	log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
