/* master.h - the master process: CA, forging service, certcache, listeners, supervision.
 * Owns `struct master` (everything the master process holds) and its poll loop. Called by
 * main() only. The master never handles client traffic and never links the worker. */
#ifndef MITMD_MASTER_MASTER_H
#define MITMD_MASTER_MASTER_H

#include "shared/config.h"

/* master_run runs the proxy until SIGTERM/SIGINT: loads or creates the CA in the confdir,
 * creates the certcache, opens the listeners, starts cfg->workers workers with fork+exec
 * of /proc/self/exe (passing `argv` through) and supervises them. Prints "listening on"
 * once every worker has reported ready. Returns the process exit status: 0 after a clean
 * stop, 1 when start-up failed or a worker failed its set-up twice in a row (the reason is
 * logged once). */
int master_run(const struct config *cfg, int argc, char **argv);

#endif
