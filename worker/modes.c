/* modes.c - see modes.h. */
#include "worker/modes.h"

#include "worker/next_hop.h"
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
    case MODE_SPEC_UPSTREAM:
        return next_hop_start;
    case MODE_SPEC_TRANSPARENT:
        return transparent_start;
    case MODE_SPEC_REGULAR:
    default:
        return proxy_req_start;
    }
}
