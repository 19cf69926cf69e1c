/* modes.c - see modes.h. */
#include "worker/modes.h"

#include "worker/proxy_req.h"

conn_start_fn *modes_start_fn(const struct config *cfg)
{
    (void)cfg;
    return proxy_req_start; /* regular */
}
