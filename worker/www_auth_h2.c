/* www_auth_h2.c - see www_auth.h: the HTTP/2 relay's part (apart from www_auth.c so that the
 * HTTP/1.1 relay's unit test links without nghttp2). */
#include "worker/www_auth.h"

#include <string.h>

#include <nghttp2/nghttp2.h>

#include "worker/h2_relay_internal.h"

bool www_auth_h2_passes(struct h2_relay *r, struct h2_stream *st)
{
    struct h2_half *h = &st->half[H2_REQ];
    nghttp2_vec first = {NULL, 0};
    const char *why = NULL;
    size_t n = 0;

    for (uint16_t i = 0; i < h->n_fields; i++) {
        nghttp2_vec nm = nghttp2_rcbuf_get_buf(h->fields[i].name);

        if (nm.len == 13 && memcmp(nm.base, "authorization", 13) == 0 && n++ == 0)
            first = nghttp2_rcbuf_get_buf(h->fields[i].value);
    }
    if (r->_opts.www_auth(r->_opts.www_auth_arg, (const char *)first.base, first.len, n, &why))
        return true;
    h2_fields_clear(h);
    h2_stream_answer(r, st, 401, why);
    return false;
}
