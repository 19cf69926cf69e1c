/* modes.h - the proxy modes a listener serves (mitmproxy's --mode): which protocol starts each
 * accepted connection. regular (worker/proxy_req), socks5 (worker/socks5), reverse
 * (worker/reverse), upstream (worker/next_hop). A new mode is a new protocol file and one
 * entry here. Never allocates. */
#ifndef MITMD_WORKER_MODES_H
#define MITMD_WORKER_MODES_H

#include "shared/config.h"
#include "worker/conn.h"

/* modes_start_fn returns the protocol that starts connections accepted in `cfg`'s mode
 * (cfg->proxy_mode; config_parse refuses the modes no protocol serves yet). */
conn_start_fn *modes_start_fn(const struct config *cfg);

#endif
