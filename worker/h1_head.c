/* h1_head.c - see h1_head.h. */
#include "worker/h1_head.h"

#include <stdio.h>
#include <string.h>

static void h1_emit(struct h1_emitter *e, const void *p, size_t n)
{
    const uint8_t *s = p;
    size_t w;

    if (e->full)
        return;
    if (e->skip >= n) {
        e->skip -= n;
        return;
    }
    s += e->skip;
    n -= e->skip;
    e->skip = 0;
    w = buf_append(e->out, s, n);
    e->written += w;
    if (w < n)
        e->full = true;
}

static void h1_emit_str(struct h1_emitter *e, const char *s)
{
    h1_emit(e, s, strlen(s));
}

bool h1_head_field_is_forwarded(const struct h1_header *headers, size_t num_headers,
                                const struct h1_header *h, bool upgrade)
{
    char name[128];
    bool named = false;

    if (h1_header_name_is(h, "Transfer-Encoding"))
        return true; /* the body goes in the framing it came in */
    if (h1_header_name_is(h, "Upgrade"))
        return upgrade;
    if (h1_header_is_hop_by_hop(h->name, h->name_len))
        return false;
    if (h->name_len >= sizeof(name))
        return true; /* longer than any name a Connection token could carry here */
    for (size_t i = 0; i < num_headers; i++) {
        if (!h1_header_name_is(&headers[i], "Connection"))
            continue;
        if (!named) { /* the name as a C string, once a Connection field is seen */
            memcpy(name, h->name, h->name_len);
            name[h->name_len] = '\0';
            named = true;
        }
        if (h1_token_list_has(headers[i].value, headers[i].value_len, name))
            return false; /* RFC 9110 §7.6.1: a field Connection names is for this hop only */
    }
    return true;
}

static void h1_head_fields(struct h1_emitter *e, const struct h1_header *headers, size_t n,
                           bool skip_host, enum h1_head_conn conn,
                           const struct rules_verdict *edits)
{
    size_t first_conn = n; /* the first Connection field: is_forwarded looks from there on */

    for (size_t i = 0; i < n && first_conn == n; i++)
        if (h1_header_name_is(&headers[i], "Connection"))
            first_conn = i;
    for (size_t i = 0; i < n; i++) {
        const struct h1_header *h = &headers[i];

        if ((skip_host && h1_header_name_is(h, "Host")) ||
            !h1_head_field_is_forwarded(headers + first_conn, n - first_conn, h,
                                        conn == H1_HEAD_CONN_UPGRADE) ||
            (edits != NULL && rules_verdict_drops(edits, h->name, h->name_len)))
            continue;
        h1_emit(e, h->name, h->name_len);
        h1_emit_str(e, ": ");
        h1_emit(e, h->value, h->value_len);
        h1_emit_str(e, "\r\n");
    }
    for (int i = 0; edits != NULL && i < edits->n_edits; i++) {
        const struct rules_header *m = edits->edits[i];

        if (m->value_len == 0)
            continue; /* a removal only */
        h1_emit(e, m->name, m->name_len);
        h1_emit_str(e, ": ");
        h1_emit(e, m->value, m->value_len);
        h1_emit_str(e, "\r\n");
    }
    switch (conn) {
    case H1_HEAD_CONN_CLOSE:
        h1_emit_str(e, "Connection: close\r\n");
        break;
    case H1_HEAD_CONN_KEEP_ALIVE:
        h1_emit_str(e, "Connection: keep-alive\r\n");
        break;
    case H1_HEAD_CONN_UPGRADE:
        h1_emit_str(e, "Connection: upgrade\r\n");
        break;
    default:
        break;
    }
    h1_emit_str(e, "\r\n");
}

void h1_head_request(struct h1_emitter *e, const struct h1_request *req, const struct target *abs,
                     const char *host_field, enum h1_head_conn conn,
                     const struct rules_verdict *edits)
{
    bool new_host = host_field != NULL && host_field[0] != '\0';

    h1_emit(e, req->method, req->method_len);
    h1_emit_str(e, " ");
    if (abs != NULL) {
        h1_emit(e, abs->path, abs->path_len);
        if (abs->query != NULL)
            h1_emit(e, abs->query, abs->query_len);
    } else {
        h1_emit(e, req->target, req->target_len);
    }
    h1_emit_str(e, req->minor_version == 0 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
    if (new_host) {
        h1_emit_str(e, "Host: ");
        h1_emit_str(e, host_field);
        h1_emit_str(e, "\r\n");
    }
    h1_head_fields(e, req->headers, req->num_headers, new_host, conn, edits);
}

void h1_head_request_via(struct h1_emitter *e, const struct h1_request *req,
                         const struct target *abs, const char *authority, const char *proxy_auth,
                         enum h1_head_conn conn, const struct rules_verdict *edits)
{
    h1_emit(e, req->method, req->method_len);
    h1_emit_str(e, " http://");
    h1_emit_str(e, authority);
    h1_emit(e, abs->path, abs->path_len);
    if (abs->query != NULL)
        h1_emit(e, abs->query, abs->query_len);
    h1_emit_str(e, req->minor_version == 0 ? " HTTP/1.0\r\nHost: " : " HTTP/1.1\r\nHost: ");
    h1_emit_str(e, authority);
    h1_emit_str(e, "\r\n");
    if (proxy_auth != NULL && proxy_auth[0] != '\0') {
        h1_emit_str(e, "Proxy-Authorization: ");
        h1_emit_str(e, proxy_auth);
        h1_emit_str(e, "\r\n");
    }
    h1_head_fields(e, req->headers, req->num_headers, true, conn, edits);
}

void h1_head_response(struct h1_emitter *e, const struct h1_response *resp, enum h1_head_conn conn,
                      const struct rules_verdict *edits)
{
    char line[32];
    int st = resp->status;

    if (st >= 0 && st <= 999) { /* "HTTP/1.x %03d " by hand: once per response */
        memcpy(line, resp->minor_version == 0 ? "HTTP/1.0 " : "HTTP/1.1 ", 9);
        line[9] = (char)('0' + st / 100);
        line[10] = (char)('0' + st / 10 % 10);
        line[11] = (char)('0' + st % 10);
        line[12] = ' ';
        h1_emit(e, line, 13);
    } else {
        snprintf(line, sizeof(line), "HTTP/1.%d %03d ", resp->minor_version == 0 ? 0 : 1, st);
        h1_emit_str(e, line);
    }
    h1_emit(e, resp->reason, resp->reason_len);
    h1_emit_str(e, "\r\n");
    h1_head_fields(e, resp->headers, resp->num_headers, false, conn, edits);
}
