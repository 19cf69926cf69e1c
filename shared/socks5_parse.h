/* socks5_parse.h - the SOCKS version 5 wire format of RFC 1928: the client's method greeting
 * (§3), its request (§4) and the server's two replies (§3, §6), and the username/password
 * sub-negotiation of RFC 1929 (request and status reply). Owns that grammar only;
 * worker/socks5 drives the protocol. Never allocates, never resolves names, keeps no state:
 * parsers read a caller's buffer, formatters write into one. */
#ifndef MITMD_SHARED_SOCKS5_PARSE_H
#define MITMD_SHARED_SOCKS5_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shared/target_parse.h"

#define SOCKS5_VERSION 0x05
#define SOCKS5_GREETING_MAX (2 + 255) /* VER NMETHODS METHODS[1..255] */
#define SOCKS5_REQUEST_MAX (4 + 1 + 255 + 2) /* VER CMD RSV ATYP, longest DST.ADDR, DST.PORT */
#define SOCKS5_REPLY_LEN 10 /* VER REP RSV ATYP=IPv4 BND.ADDR(4) BND.PORT(2) */
#define SOCKS5_USERPASS_VERSION 0x01 /* RFC 1929 §2: the sub-negotiation's own version */
#define SOCKS5_USERPASS_MAX (3 + 255 + 255) /* VER ULEN UNAME PLEN PASSWD */

/* RFC 1928 §3 method numbers. */
enum socks5_method {
    SOCKS5_METHOD_NO_AUTH = 0x00,
    SOCKS5_METHOD_GSSAPI = 0x01,
    SOCKS5_METHOD_USERPASS = 0x02, /* RFC 1929 */
    SOCKS5_METHOD_NONE = 0xff,     /* "no acceptable methods" */
};

/* RFC 1928 §4 commands. */
enum socks5_cmd {
    SOCKS5_CMD_CONNECT = 0x01,
    SOCKS5_CMD_BIND = 0x02,
    SOCKS5_CMD_UDP_ASSOCIATE = 0x03,
};

/* RFC 1928 §4 address types. */
enum socks5_atyp {
    SOCKS5_ATYP_IPV4 = 0x01,
    SOCKS5_ATYP_DOMAIN = 0x03,
    SOCKS5_ATYP_IPV6 = 0x04,
};

/* RFC 1928 §6 reply codes. */
enum socks5_reply {
    SOCKS5_REP_SUCCEEDED = 0x00,
    SOCKS5_REP_GENERAL_FAILURE = 0x01,
    SOCKS5_REP_NOT_ALLOWED = 0x02,
    SOCKS5_REP_NET_UNREACHABLE = 0x03,
    SOCKS5_REP_HOST_UNREACHABLE = 0x04,
    SOCKS5_REP_CONN_REFUSED = 0x05,
    SOCKS5_REP_TTL_EXPIRED = 0x06,
    SOCKS5_REP_CMD_NOT_SUPPORTED = 0x07,
    SOCKS5_REP_ATYP_NOT_SUPPORTED = 0x08,
};

/* struct socks5_greeting is a parsed method greeting. */
struct socks5_greeting {
    uint8_t n_methods;
    bool offers_no_auth;  /* method 0x00 offered */
    bool offers_userpass; /* method 0x02 offered */
};

/* struct socks5_request is a parsed request. `host` is text in every case: the domain as
 * sent, or the IPv4 / IPv6 address in presentation form (no brackets), NUL-terminated. */
struct socks5_request {
    uint8_t cmd;  /* enum socks5_cmd, or any other value the client sent */
    uint8_t atyp; /* enum socks5_atyp */
    char host[TARGET_HOST_MAX + 1];
    size_t host_len;
    uint16_t port;
};

/* struct socks5_userpass is a parsed RFC 1929 request. The fields are bytes as sent (not
 * NUL-terminated; a client may send any octets). */
struct socks5_userpass {
    uint8_t user[255];
    size_t user_len;
    uint8_t pass[255];
    size_t pass_len;
};

/* socks5_parse_greeting parses the method greeting at the start of `buf` (`len` bytes).
 * Returns the bytes it takes (2 + NMETHODS), -EAGAIN when incomplete, or -EPROTO with `*why`
 * set to a static string (version not 5, no method offered). */
ssize_t socks5_parse_greeting(const uint8_t *buf, size_t len, struct socks5_greeting *out,
                              const char **why);

/* socks5_parse_request parses a request at the start of `buf` (`len` bytes). Any command is
 * returned as sent (the caller refuses what it does not serve, with the whole request read).
 * Returns the bytes it takes, -EAGAIN when incomplete, -EAFNOSUPPORT for an unknown address
 * type (its length cannot be known; reply SOCKS5_REP_ATYP_NOT_SUPPORTED), or -EPROTO with
 * `*why` set (version not 5, reserved byte not 0, an empty or invalid domain name, port 0). */
ssize_t socks5_parse_request(const uint8_t *buf, size_t len, struct socks5_request *out,
                             const char **why);

/* socks5_parse_userpass parses an RFC 1929 username/password request at the start of `buf`
 * (`len` bytes): VER 0x01, ULEN, UNAME, PLEN, PASSWD. Empty names and passwords are taken (as
 * mitmproxy does; RFC 1929 says 1..255, and the verifier refuses what it does not know).
 * Returns the bytes it takes, -EAGAIN when incomplete, or -EPROTO with `*why` set (version
 * not 1). */
ssize_t socks5_parse_userpass(const uint8_t *buf, size_t len, struct socks5_userpass *out,
                              const char **why);

/* socks5_format_userpass_reply writes the RFC 1929 status reply (VER 0x01, STATUS: 0x00 for
 * success, 0x01 for failure) into `out[2]`. */
void socks5_format_userpass_reply(uint8_t out[2], bool ok);

/* socks5_format_method writes the method selection reply (VER METHOD) into `out[2]`. */
void socks5_format_method(uint8_t out[2], uint8_t method);

/* socks5_format_reply writes a reply with code `rep` into `out[SOCKS5_REPLY_LEN]`, with
 * BND.ADDR 0.0.0.0 and BND.PORT 0 (as mitmproxy: clients of CONNECT do not use them). */
void socks5_format_reply(uint8_t out[SOCKS5_REPLY_LEN], uint8_t rep);

/* socks5_reply_for_errno maps a failed upstream dial (-errno) to a reply code: refused ->
 * connection refused, host/DNS unreachable and timeouts -> host unreachable, network
 * unreachable -> network unreachable, anything else -> general failure. */
uint8_t socks5_reply_for_errno(int err);

/* socks5_reply_name returns a short static name for reply code `rep`. */
const char *socks5_reply_name(uint8_t rep);

#endif
