/* ws_frame.h - counts WebSocket messages in one direction of an upgraded connection by
 * walking frame headers (RFC 6455 §5.2) as the bytes pass: the relay forwards the bytes
 * untouched and learns how many messages and payload bytes went by. Pure parsing of untrusted
 * bytes; no allocation, no I/O; any split of the stream gives the same counts. */
#ifndef MITMD_SHARED_WS_FRAME_H
#define MITMD_SHARED_WS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* struct ws_frame_count is the state of one direction. Zero it to start at a frame boundary
 * (then set on_message/arg if wanted). */
struct ws_frame_count {
    uint8_t hdr[14];   /* the frame header being collected (2 to 14 bytes) */
    uint8_t hdr_len;
    uint8_t hdr_need;  /* its full length, once known (0: not yet) */
    bool fin;          /* the frame being skipped ends a message */
    bool data;         /* ... and is a data frame (text, binary, continuation) */
    uint64_t left;     /* payload bytes of the current frame still to skip */
    uint64_t messages; /* complete data messages (text or binary, fragments joined) */
    uint64_t bytes;    /* payload bytes of data frames */
    uint64_t control;  /* control frames (close, ping, pong) */
    bool invalid;      /* a reserved opcode or a control frame that breaks RFC 6455 §5.5: the
                        * walk stopped (the bytes are still relayed) */
    uint8_t msg_opcode; /* 1 text, 2 binary: the first frame of the message in progress */
    uint64_t msg_bytes; /* payload bytes of the message in progress */
    /* on_message (NULL: none) is called as each data message completes, with its opcode (1
     * text, 2 binary) and payload length, from inside ws_frame_count_feed */
    void (*on_message)(void *arg, int opcode, uint64_t len);
    void *arg;
};

/* ws_frame_count_feed walks the next `n` bytes (`p` may be NULL when n == 0). */
void ws_frame_count_feed(struct ws_frame_count *w, const uint8_t *p, size_t n);

#endif
