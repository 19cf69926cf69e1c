/* proxy_proto.h - the PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and 2)
 * that an L4 balancer writes before a connection's first byte: its parser and a formatter.
 * Pure functions over caller buffers, callable from any process or test. Never allocates,
 * never blocks, never reads or writes outside the lengths it is given. */
#ifndef MITMD_SHARED_PROXY_PROTO_H
#define MITMD_SHARED_PROXY_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define PROXY_PROTO_V1_MAX 107            /* the longest v1 line, CRLF included (spec §2.1) */
#define PROXY_PROTO_V2_FIXED 16           /* signature, ver_cmd, fam, len (spec §2.2) */
#define PROXY_PROTO_V2_MAX (16 + 65535)   /* the longest v2 header */
#define PROXY_PROTO_V2_SIG "\r\n\r\n\0\r\nQUIT\n" /* 12 bytes; use PROXY_PROTO_V2_SIG_LEN */
#define PROXY_PROTO_V2_SIG_LEN 12
#define PROXY_PROTO_V2_TLV_NOOP 0x04      /* PP2_TYPE_NOOP: padding */

/* struct proxy_proto_hdr is what a header says. When `local` is false, `src` is the original
 * client (what mitmd records as the client) and `dst` the address it connected to, both
 * AF_INET or both AF_INET6 with their ports, `addr_len` bytes each. When `local` is true the
 * header carries no usable address (v1 UNKNOWN; v2 LOCAL; v2 PROXY over UNSPEC, UDP or UNIX,
 * which the spec lets a receiver treat as UNSPEC): the socket's own endpoints stand, and
 * `src`/`dst` are zeroed. */
struct proxy_proto_hdr {
    int version; /* 1 or 2 */
    bool local;
    struct sockaddr_storage src, dst;
    socklen_t addr_len;
    uint16_t tlv_len; /* v2: bytes of TLVs after the address block (each one length-checked) */
};

/* proxy_proto_parse parses the PROXY protocol header at the start of `buf` (`len` bytes), in
 * either version (told apart by the first byte). It fills `hdr` (on success only). Returns the
 * header's length in bytes (what the caller consumes; the connection's own bytes follow), or
 * -EAGAIN when every byte so far is a valid beginning of a header but it is not complete, or
 * -EPROTO with `*why` set to a static string as soon as the bytes cannot begin a valid header
 * (not a PROXY header at all, a bad token or address, a v1 line without CRLF in its first 107
 * bytes, an unknown v2 version, command, family or protocol, an address block shorter than
 * its family needs, a TLV running past the header). No allocation, no locale. */
ssize_t proxy_proto_parse(const uint8_t *buf, size_t len, struct proxy_proto_hdr *hdr,
                          const char **why);

/* proxy_proto_format writes a header saying what `hdr` says, in `version` 1 or 2 (v2: no TLVs;
 * v1 local: "PROXY UNKNOWN\r\n"; v2 local: the LOCAL command), into `out`. Returns its length,
 * -ENOSPC when `cap` is too small, or -EINVAL for another version or an address family other
 * than AF_INET/AF_INET6 (src and dst must match). For tests, fuzzing and a future send-proxy. */
ssize_t proxy_proto_format(int version, const struct proxy_proto_hdr *hdr, uint8_t *out,
                           size_t cap);

#endif
