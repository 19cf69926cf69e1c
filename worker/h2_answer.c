/* h2_answer.c - see h2_answer.h. */
#include "worker/h2_answer.h"

#include <stdio.h>
#include <string.h>

#include "shared/proxyauth.h"

size_t h2_answer_init(struct h2_answer *a, int status, const char *why, char *body, size_t cap)
{
    static const char ctype[] = FLOW_ANSWER_CTYPE;
    static const char www[] = "Basic realm=\"" PROXYAUTH_REALM "\"";
    int n = snprintf(body, cap, "%s\n", why);
    size_t len = n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
    int psl = answer_proxy_status(a->ps, sizeof(a->ps), status, why);

    snprintf(a->status, sizeof(a->status), "%03d", status >= 100 && status <= 999 ? status : 502);
    snprintf(a->clen, sizeof(a->clen), "%zu", len);
    a->nv = 0;
    a->nva[a->nv++] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)a->status, 7, 3,
                                   NGHTTP2_NV_FLAG_NONE};
    a->nva[a->nv++] = (nghttp2_nv){(uint8_t *)"content-type", (uint8_t *)ctype, 12,
                                   sizeof(ctype) - 1, NGHTTP2_NV_FLAG_NONE};
    a->nva[a->nv++] = (nghttp2_nv){(uint8_t *)"content-length", (uint8_t *)a->clen, 14,
                                   strlen(a->clen), NGHTTP2_NV_FLAG_NONE};
    if (psl > 0)
        a->nva[a->nv++] = (nghttp2_nv){(uint8_t *)"proxy-status", (uint8_t *)a->ps, 12,
                                       (size_t)psl, NGHTTP2_NV_FLAG_NONE};
    if (status == 401) /* reverse, transparent --proxyauth */
        a->nva[a->nv++] = (nghttp2_nv){(uint8_t *)"www-authenticate", (uint8_t *)www, 16,
                                       sizeof(www) - 1, NGHTTP2_NV_FLAG_NONE};
    return len;
}
