/* modes.c - see modes.h. */
#include "worker/modes.h"

#include "worker/proxy_req.h"
#include "worker/reverse.h"
#include "worker/socks5.h"
#include "worker/transparent.h"

conn_start_fn *modes_start_fn(const struct config *cfg)
{
    switch (cfg->proxy_mode.kind) {
    case MODE_SPEC_SOCKS5:
        return socks5_start;
    case MODE_SPEC_REVERSE:
        return reverse_start;
    case MODE_SPEC_TRANSPARENT:
        return transparent_start;
    case MODE_SPEC_UPSTREAM: /* regular; every dial goes through the next proxy (w->via) */
    case MODE_SPEC_REGULAR:
    default:
        return proxy_req_start;
    }
}
