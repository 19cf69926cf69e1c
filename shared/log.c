/* log.c - see log.h. */
#include "shared/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The prefix and level are set once at process start-up, before any other thread or the
 * event loop exists; they are configuration, not mutable state shared between roles. */
static char log_prefix[32] = "mitmd";
static enum log_level log_max = LOG_INFO;

static const char *const log_level_names[] = {"error", "warn", "info", "debug"};

void log_setup(const char *prefix, enum log_level max_level)
{
    snprintf(log_prefix, sizeof(log_prefix), "%s", prefix);
    log_max = max_level;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    char line[LOG_LINE_MAX];
    va_list ap;
    int n, m;

    if (level > log_max)
        return;
    n = snprintf(line, sizeof(line), "%s: %s: ", log_prefix, log_level_names[level]);
    if (n < 0 || (size_t)n >= sizeof(line))
        return;
    va_start(ap, fmt);
    m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    n += m;
    if ((size_t)n >= sizeof(line) - 1)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    if (write(STDERR_FILENO, line, (size_t)n) == -1)
        return; /* nowhere left to report it */
}
