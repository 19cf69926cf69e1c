/* answer.c - see answer.h. */
#include "worker/answer.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "shared/h1_parse.h"
#include "shared/proxyauth.h"

static bool answer_has(const char *why, const char *word)
{
    return why != NULL && strstr(why, word) != NULL;
}

const char *answer_error_type(int status, const char *why)
{
    if (status == 503)
        return ANSWER_CONNECTION_LIMIT;
    if (status == 504)
        return answer_has(why, "connect") ? ANSWER_CONNECTION_TIMEOUT
                                          : ANSWER_HTTP_RESPONSE_TIMEOUT;
    if (status == 401 || status == 403 || status == 407)
        return ANSWER_HTTP_REQUEST_DENIED;
    if (status < 500)
        return ANSWER_HTTP_REQUEST_ERROR;
    if (answer_has(why, "proxy loop"))
        return ANSWER_PROXY_LOOP_DETECTED;
    if (answer_has(why, "DNS") || answer_has(why, "resolve") || answer_has(why, "name"))
        return answer_has(why, "not found") || answer_has(why, "NXDOMAIN") ||
                       answer_has(why, "does not exist")
                   ? ANSWER_DESTINATION_NOT_FOUND
                   : ANSWER_DNS_ERROR;
    if (answer_has(why, "refused"))
        return ANSWER_CONNECTION_REFUSED;
    if (answer_has(why, "connect timeout") || answer_has(why, "timed out"))
        return ANSWER_CONNECTION_TIMEOUT;
    if (answer_has(why, "unreachable"))
        return ANSWER_DESTINATION_UNAVAILABLE;
    if (answer_has(why, "certificate required")) /* the upstream wants a client certificate */
        return ANSWER_TLS_PROTOCOL_ERROR;
    if (answer_has(why, "certificate"))
        return ANSWER_TLS_CERTIFICATE_ERROR;
    if (answer_has(why, "TLS") || answer_has(why, "tls") || answer_has(why, "handshake") ||
        answer_has(why, "alert"))
        return ANSWER_TLS_PROTOCOL_ERROR;
    if (answer_has(why, "bad response"))
        return ANSWER_HTTP_PROTOCOL_ERROR;
    if (answer_has(why, "closed") || answer_has(why, "reset"))
        return answer_has(why, "responding") ? ANSWER_HTTP_RESPONSE_INCOMPLETE
                                              : ANSWER_CONNECTION_TERMINATED;
    return ANSWER_PROXY_INTERNAL_ERROR;
}

const char *answer_hint(const char *type)
{
    if (type != NULL && strcmp(type, ANSWER_TLS_CERTIFICATE_ERROR) == 0)
        return "mitmd could not verify the upstream server's certificate. If you trust that "
               "server, add its CA with --upstream-ca FILE, or skip verification with -k "
               "(--ssl-insecure).\n";
    return "";
}

/* answer_sf_string copies `why` as the inside of an RFC 8941 sf-string: printable ASCII
 * only (others become '?'), with '"' and '\' escaped. Returns the length written. */
static size_t answer_sf_string(char *out, size_t cap, const char *why, size_t len)
{
    size_t o = 0;

    for (size_t i = 0; i < len && o + 2 < cap; i++) {
        unsigned char ch = (unsigned char)why[i];

        if (ch == '"' || ch == '\\')
            out[o++] = '\\';
        out[o++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    out[o] = '\0';
    return o;
}

int answer_proxy_status(char *out, size_t cap, int status, const char *why)
{
    char details[2 * ANSWER_WHY_MAX + 1];
    int n;

    if (why == NULL || why[0] == '\0')
        why = h1_status_reason(status);
    answer_sf_string(details, sizeof(details), why, strnlen(why, ANSWER_WHY_MAX));
    n = snprintf(out, cap, "mitmd; error=%s; details=\"%s\"", answer_error_type(status, why),
                 details);
    return n < 0 || (size_t)n >= cap ? -ENOSPC : n;
}

ssize_t answer_format(char *out, size_t cap, int status, const char *why, const char *type,
                      const char *body, size_t *body_len)
{
    char details[2 * ANSWER_WHY_MAX + 1], dflt[ANSWER_WHY_MAX + 2];
    const char *reason = h1_status_reason(status);
    size_t wlen, blen;
    int n;

    if (reason == NULL || reason[0] == '\0')
        reason = "Error";
    if (why == NULL || why[0] == '\0')
        why = reason;
    if (type == NULL)
        type = answer_error_type(status, why);
    wlen = strnlen(why, ANSWER_WHY_MAX);
    answer_sf_string(details, sizeof(details), why, wlen);
    if (body == NULL) {
        snprintf(dflt, sizeof(dflt), "%.*s\n", (int)wlen, why);
        blen = strlen(dflt) + strlen(answer_hint(type));
    } else {
        blen = strlen(body);
    }
    n = snprintf(out, cap,
                 "HTTP/1.1 %d %s\r\nContent-Type: " FLOW_ANSWER_CTYPE "\r\n"
                 "Content-Length: %zu\r\nConnection: close\r\n%s"
                 "Proxy-Status: mitmd; error=%s; details=\"%s\"\r\n\r\n%s%s",
                 status, reason, blen,
                 status == 407   ? PROXYAUTH_CHALLENGE "\r\n" /* RFC 9110 §15.5.8 */
                 : status == 401 ? PROXYAUTH_WWW_CHALLENGE "\r\n" /* §15.5.2 */
                                 : "",
                 type, details, body != NULL ? body : dflt,
                 body != NULL ? "" : answer_hint(type));
    if (n < 0 || (size_t)n >= cap)
        return -ENOSPC;
    if (body_len != NULL)
        *body_len = blen;
    return n;
}

void answer_record(struct flow *f, int status, const char *why, size_t body_len)
{
    char clen[24];
    const char *reason = h1_status_reason(status);

    snprintf(clen, sizeof(clen), "%zu", body_len);
    flow_set_answer(f, status, reason != NULL ? reason : "Error", clen, body_len, why);
}
