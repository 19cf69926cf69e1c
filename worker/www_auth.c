/* www_auth.c - see www_auth.h: the HTTP/1.1 relay's part (www_auth_h2.c has HTTP/2's). */
#include "worker/www_auth.h"

#include <errno.h>
#include <string.h>

#include "worker/h1_relay.h"

bool www_auth_h1_passes(struct h1_relay *r, const struct h1_request *req, const char **why)
{
    const struct h1_header *first = NULL;
    size_t n = 0;

    for (size_t i = 0; i < req->num_headers; i++)
        if (h1_header_name_is(&req->headers[i], "Authorization") && n++ == 0)
            first = &req->headers[i];
    return r->_opts.www_auth(r->_opts.www_auth_arg, first != NULL ? first->value : NULL,
                             first != NULL ? first->value_len : 0, n, why);
}

int www_auth_h1_drop(struct h1_relay *r)
{
    static const struct rules_header drop = {.name = "Authorization",
                                             .lname = "authorization",
                                             .name_len = 13};

    if (!r->_edits_on)
        r->_verdict.n_edits = 0;
    if (r->_verdict.n_edits >= RULES_MAX_PER_KIND)
        return -ENOSPC;
    r->_verdict.edits[r->_verdict.n_edits++] = &drop;
    r->_edits_on = true;
    return 0;
}
