/* modes.h - the proxy modes a listener serves (mitmproxy's --mode): which protocol starts each
 * accepted connection. Today: regular (the explicit proxy, worker/proxy_req). A new mode is a
 * new protocol file and one entry here. Never allocates. */
#ifndef MITMD_WORKER_MODES_H
#define MITMD_WORKER_MODES_H

#include "shared/config.h"
#include "worker/conn.h"

/* modes_start_fn returns the protocol that starts connections accepted in `cfg`'s mode. */
conn_start_fn *modes_start_fn(const struct config *cfg);

#endif
