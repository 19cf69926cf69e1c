/* tls_alert.c - see tls_alert.h. */
#include "worker/tls_alert.h"

#include <string.h>

#define TLS_ALERT_REC_MAX (16384 + 2048) /* RFC 8446 §5.2: ciphertext record limit */

void tls_alert_walk_init(struct tls_alert_walk *w)
{
    memset(w, 0, sizeof(*w));
    w->alert = -1;
    w->level = -1;
}

/* tls_alert_walk_header checks a complete header and starts its record. */
static void tls_alert_walk_header(struct tls_alert_walk *w)
{
    uint8_t type = w->hdr[0];

    w->rec_type = type;
    w->rec_len = (uint16_t)((w->hdr[3] << 8) | w->hdr[4]);
    if (type < 20 || type > 24 || w->hdr[1] != 3 || w->hdr[2] > 4 ||
        w->rec_len > TLS_ALERT_REC_MAX) {
        w->invalid = 1;
        return;
    }
    w->rec_left = w->rec_len;
    w->body_len = 0;
    w->hdr_len = 0;
}

void tls_alert_walk_feed(struct tls_alert_walk *w, const uint8_t *p, size_t n)
{
    size_t i = 0;

    while (i < n && !w->invalid) {
        if (w->rec_left == 0 && w->hdr_len < 5) {
            w->hdr[w->hdr_len++] = p[i++];
            if (w->hdr_len == 5)
                tls_alert_walk_header(w);
            continue;
        }
        /* inside a record body */
        if (w->rec_type == 21 && w->rec_len == 2) {
            w->body[w->body_len++] = p[i++];
            w->rec_left--;
            if (w->body_len == 2) {
                w->level = w->body[0];
                w->alert = w->body[1];
            }
        } else {
            size_t k = n - i < w->rec_left ? n - i : w->rec_left;

            i += k;
            w->rec_left -= (uint16_t)k;
        }
        if (w->rec_left == 0)
            w->hdr_len = 0;
    }
}

const char *tls_alert_name(int desc)
{
    switch (desc) {
    case 0: return "close_notify";
    case 10: return "unexpected_message";
    case 20: return "bad_record_mac";
    case 22: return "record_overflow";
    case 40: return "handshake_failure";
    case 42: return "bad_certificate";
    case 43: return "unsupported_certificate";
    case 44: return "certificate_revoked";
    case 45: return "certificate_expired";
    case 46: return "certificate_unknown";
    case 47: return "illegal_parameter";
    case 48: return "unknown_ca";
    case 49: return "access_denied";
    case 50: return "decode_error";
    case 51: return "decrypt_error";
    case 70: return "protocol_version";
    case 71: return "insufficient_security";
    case 80: return "internal_error";
    case 86: return "inappropriate_fallback";
    case 90: return "user_canceled";
    case 109: return "missing_extension";
    case 110: return "unsupported_extension";
    case 112: return "unrecognized_name";
    case 113: return "bad_certificate_status_response";
    case 115: return "unknown_psk_identity";
    case 116: return "certificate_required";
    case 120: return "no_application_protocol";
    default: return "unknown alert";
    }
}

int tls_alert_is_untrusted(int desc)
{
    return desc == 42 || desc == 43 || desc == 44 || desc == 45 || desc == 46 || desc == 48;
}
