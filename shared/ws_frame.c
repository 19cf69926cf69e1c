/* ws_frame.c - see ws_frame.h. */
#include "shared/ws_frame.h"

/* ws_frame_need returns the header length announced by its first two bytes. */
static uint8_t ws_frame_need(const uint8_t *h)
{
    uint8_t len7 = h[1] & 0x7f;
    uint8_t need = 2 + ((h[1] & 0x80) ? 4 : 0);

    if (len7 == 126)
        need += 2;
    else if (len7 == 127)
        need += 8;
    return need;
}

/* ws_frame_message_done counts a complete data message and reports it. */
static void ws_frame_message_done(struct ws_frame_count *w)
{
    w->messages++;
    if (w->on_message != NULL)
        w->on_message(w->arg, w->msg_opcode, w->msg_bytes);
    w->msg_bytes = 0;
}

/* ws_frame_start decodes a complete header and starts skipping its payload. */
static void ws_frame_start(struct ws_frame_count *w)
{
    const uint8_t *h = w->hdr;
    uint8_t op = h[0] & 0x0f, len7 = h[1] & 0x7f;
    uint64_t len = len7;

    if (len7 == 126) {
        len = ((uint64_t)h[2] << 8) | h[3];
    } else if (len7 == 127) {
        len = 0;
        for (int i = 2; i < 10; i++)
            len = (len << 8) | h[i];
        if (len >> 63) { /* RFC 6455 §5.2: the most significant bit must be 0 */
            w->invalid = true;
            return;
        }
    }
    if ((op >= 3 && op <= 7) || op >= 11 || (op >= 8 && (len > 125 || !(h[0] & 0x80)))) {
        w->invalid = true; /* reserved opcode, or a control frame too long or fragmented */
        return;
    }
    w->fin = (h[0] & 0x80) != 0;
    w->data = op < 8;
    if (op >= 8) {
        w->control++;
    } else {
        w->bytes += len;
        if (op != 0) { /* text or binary: a new message (0 continues one) */
            w->msg_opcode = op;
            w->msg_bytes = 0;
        }
        w->msg_bytes += len;
    }
    w->left = len;
    w->hdr_len = 0;
    w->hdr_need = 0;
    if (len == 0 && w->fin && w->data)
        ws_frame_message_done(w);
}

void ws_frame_count_feed(struct ws_frame_count *w, const uint8_t *p, size_t n)
{
    size_t i = 0;

    while (i < n && !w->invalid) {
        if (w->left > 0) {
            uint64_t k = (uint64_t)(n - i) < w->left ? (uint64_t)(n - i) : w->left;

            i += (size_t)k;
            w->left -= k;
            if (w->left == 0 && w->fin && w->data)
                ws_frame_message_done(w);
            continue;
        }
        w->hdr[w->hdr_len++] = p[i++];
        if (w->hdr_len == 2)
            w->hdr_need = ws_frame_need(w->hdr);
        if (w->hdr_len >= 2 && w->hdr_len == w->hdr_need)
            ws_frame_start(w);
    }
}
