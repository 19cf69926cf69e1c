/* log.h - diagnostics to stderr for master and workers, one write per line.
 * Owns the process's log prefix and level. Callers pass a connection id where they have one.
 * Never allocates; a line longer than LOG_LINE_MAX is truncated. */
#ifndef MITMD_SHARED_LOG_H
#define MITMD_SHARED_LOG_H

#include <stdbool.h>

#define LOG_LINE_MAX 1024

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* log_setup sets the prefix ("mitmd" / "mitmd[w3]") and the most verbose level printed. */
void log_setup(const char *prefix, enum log_level max_level);

/* log_msg formats one line and writes it to stderr with a single write(2); it does not block
 * on anything but that write and never fails visibly. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
