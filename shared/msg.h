/* msg.h - the wire format of master <-> worker messages on the SOCK_SEQPACKET socketpair.
 * Types, limits and static_asserts only: encoding and decoding live in msgcodec.h. One
 * message is one datagram; every integer is host byte order (both ends are one binary). */
#ifndef MITMD_SHARED_MSG_H
#define MITMD_SHARED_MSG_H

#include <assert.h>
#include <stdint.h>

#define MSG_VERSION 1
#define MSG_MAX_SIZE 65536   /* largest datagram either side sends or accepts */
#define MSG_MAX_NAMES 64     /* names in one certificate request (= NAMESET_MAX_NAMES) */
#define MSG_MAX_NAME_LEN 253 /* RFC 1035 §2.3.4 presentation form */
#define MSG_MAX_ORG_LEN 64   /* X.520 ub-organization-name */
#define MSG_MAX_REASON 256   /* human reason in an error reply */
#define MSG_MAX_DER 16384    /* one DER certificate or key */
#define MSG_TICKET_KEY_LEN 48 /* TLS session ticket key shared by all workers */

enum msg_type {
    MSG_HELLO = 1,      /* master -> worker, once after start: CA cert + leaf key */
    MSG_CERT_REQ = 2,   /* worker -> master: forge (or fetch) a leaf for a name set */
    MSG_CERT_REPLY = 3, /* master -> worker: the leaf DER, or a status and reason */
    MSG_STATS = 4,      /* worker -> master, periodically: counters */
    MSG_READY = 5,      /* worker -> master, once: set-up done, serving (header only) */
    MSG_TYPE_COUNT
};

/* struct msg_hdr starts every message. `len` is the whole datagram including the header;
 * `id` pairs a CERT_REPLY with its CERT_REQ (chosen by the worker, echoed by the master). */
struct msg_hdr {
    uint16_t version;
    uint16_t type;
    uint32_t len;
    uint64_t id;
};
static_assert(sizeof(struct msg_hdr) == 16, "msg_hdr layout");

/* MSG_HELLO body: fixed part, then ca_der_len bytes of CA certificate DER, then
 * key_der_len bytes of the leaf private key (PKCS#8 DER). Workers never see the CA key.
 * `ticket_key` is the run's TLS session ticket key, the same for every worker, so that a
 * client resumes its session whichever worker accepts its next connection. */
struct msg_hello {
    uint32_t worker_id;
    uint32_t ca_der_len;
    uint32_t key_der_len;
    uint32_t reserved;
    uint8_t ticket_key[MSG_TICKET_KEY_LEN];
};
static_assert(sizeof(struct msg_hello) == 16 + MSG_TICKET_KEY_LEN, "msg_hello layout");

/* MSG_CERT_REQ body: fixed part, then org_len bytes of organization (may be 0), then
 * n_names entries of { uint8_t len; char name[len]; } with 1 <= len <= MSG_MAX_NAME_LEN. */
struct msg_cert_req {
    uint16_t n_names;
    uint16_t org_len;
};
static_assert(sizeof(struct msg_cert_req) == 4, "msg_cert_req layout");

/* MSG_CERT_REPLY body: fixed part, then reason_len bytes of reason (status != 0), then
 * der_len bytes of leaf DER (status == 0). `not_after` is the leaf's expiry (Unix time). */
struct msg_cert_reply {
    int32_t status; /* 0 or -errno */
    uint16_t reason_len;
    uint16_t reserved;
    uint32_t der_len;
    uint32_t reserved2;
    int64_t not_after;
};
static_assert(sizeof(struct msg_cert_reply) == 24, "msg_cert_reply layout");

/* MSG_STATS body: counters since the worker started (the master keeps the latest). */
enum msg_stat {
    MSG_STAT_ACCEPTED = 0,   /* client connections accepted */
    MSG_STAT_ACTIVE,         /* client connections open now (a gauge) */
    MSG_STAT_FLOWS,          /* exchanges completed (flow records) */
    MSG_STAT_CLIENT_ERRORS,  /* 400/408/431 answers and malformed client input */
    MSG_STAT_UPSTREAM_ERRORS,/* 502/504 answers */
    MSG_STAT_TIMEOUTS,       /* connections closed or answered by a timeout */
    MSG_STAT_CACHE_HITS,     /* certcache lookups that hit */
    MSG_STAT_CACHE_MISSES,   /* certcache lookups that missed */
    MSG_STAT_CERT_REQS,      /* CERT_REQ messages sent */
    MSG_STAT_FLOWS_DROPPED,  /* flow records dropped because the writer fell behind */
    MSG_STAT_H2_STREAMS,     /* HTTP/2 client streams accepted */
    MSG_STAT_H2_REFUSED,     /* HTTP/2 client streams refused (limits, GOAWAY) */
    MSG_STAT_H2_RESETS,      /* RST_STREAM received, from clients and upstreams */
    MSG_STAT_H2_CLIENT_ERRORS, /* HTTP/2 connections ended by a GOAWAY error to the client */
    MSG_STAT_H2_FLOODS,      /* of which floods (PING/SETTINGS/RST_STREAM rapid reset/...) */
    MSG_STAT_UP_TLS,         /* upstream TLS handshakes completed */
    MSG_STAT_UP_RESUMED,     /* of which resumed a cached session */
    MSG_STAT_UP_WILDCARD,    /* of which with another name's session (wildcard cert) */
    MSG_STAT_RECLAIMED,      /* idle or head-waiting connections closed to make room when the
                              * pool was nearly full (worker/conn.c conn_reclaim) */
    /* issue 13 (metrics): */
    MSG_STAT_REFUSED,        /* connections refused at accept (503: pool full, stopping) */
    MSG_STAT_CLIENT_RX_BYTES, /* bytes received from clients (on the wire, TLS included) */
    MSG_STAT_CLIENT_TX_BYTES, /* bytes sent to clients */
    MSG_STAT_UP_RX_BYTES,    /* bytes received from upstreams */
    MSG_STAT_UP_TX_BYTES,    /* bytes sent to upstreams */
    /* per-rule application counts (worker/rules.h rules_export_stats): the rules in
     * command-line order, kind by kind (modify_headers, map_remote, block_list,
     * inject_latency, inject_error, inject_fault, map_local); rules_format_stats names them */
    MSG_STAT_RULE_0,
    MSG_STAT_RULE_LAST = MSG_STAT_RULE_0 + 31,
    MSG_STAT_AUTH_FAILED,    /* --proxyauth: requests and SOCKS5 logins refused (407 / 0x01) */
    MSG_STAT_BLOCKED,        /* clients closed by block_global / block_private */
    MSG_STAT_COUNT
};

/* Requests (flows) are counted by method class and status class, in a table after the
 * scalar counters: slot MSG_REQ_SLOT(method, class). */
enum msg_method {
    MSG_METHOD_GET = 0,
    MSG_METHOD_HEAD,
    MSG_METHOD_POST,
    MSG_METHOD_PUT,
    MSG_METHOD_DELETE,
    MSG_METHOD_PATCH,
    MSG_METHOD_OPTIONS,
    MSG_METHOD_CONNECT,
    MSG_METHOD_OTHER,
    MSG_METHOD_COUNT
};
enum msg_status_class {
    MSG_STATUS_NONE = 0, /* no response (or a status outside 100..599) */
    MSG_STATUS_1XX,
    MSG_STATUS_2XX,
    MSG_STATUS_3XX,
    MSG_STATUS_4XX,
    MSG_STATUS_5XX,
    MSG_STATUS_COUNT
};

/* Histograms measured by the workers, after the request table. Each is MSG_HIST_STRIDE
 * slots: MSG_HIST_BUCKETS per-bucket counts (not cumulative; bucket b counts observations
 * <= MSG_HIST_BOUNDS_US[b] and > the previous bound), one +Inf bucket, then the sum of the
 * observations in microseconds. The bounds are shared/stats.h's. */
enum msg_hist {
    MSG_HIST_REQUEST = 0, /* client's first request byte to the last response byte */
    MSG_HIST_UP_CONNECT,  /* upstream TCP connect */
    MSG_HIST_UP_TLS,      /* upstream TLS handshake */
    MSG_HIST_UP_TTFB,     /* request sent upstream to the first response byte */
    MSG_HIST_COUNT
};
#define MSG_HIST_BUCKETS 17
#define MSG_HIST_INF MSG_HIST_BUCKETS        /* index of the +Inf bucket */
#define MSG_HIST_SUM (MSG_HIST_BUCKETS + 1)  /* index of the sum (microseconds) */
#define MSG_HIST_STRIDE (MSG_HIST_BUCKETS + 2)

#define MSG_REQ_BASE MSG_STAT_COUNT
#define MSG_REQ_SLOT(method, sclass) (MSG_REQ_BASE + (method) * MSG_STATUS_COUNT + (sclass))
#define MSG_HIST_BASE (MSG_REQ_BASE + MSG_METHOD_COUNT * MSG_STATUS_COUNT)
#define MSG_HIST_SLOT(h, i) (MSG_HIST_BASE + (h) * MSG_HIST_STRIDE + (i))
/* Rule applications (flows a rule applied to) by rule kind, after the histograms, in the
 * order of worker/rules.h enum rules_kind (worker.c asserts the count). */
#define MSG_RULE_KINDS 8
#define MSG_RULE_BASE (MSG_HIST_BASE + MSG_HIST_COUNT * MSG_HIST_STRIDE)
/* Connections by listener (the --mode index, cfg->modes[i]; at most MSG_MAX_LISTENERS, which
 * worker.c asserts covers CONFIG_MAX_MODES), after the rule kinds: MSG_LSTN_STRIDE slots each.
 * ACCEPTED and REFUSED are counters; ACTIVE is a gauge (msg_stat_is_gauge). */
#define MSG_MAX_LISTENERS 16
enum msg_lstn {
    MSG_LSTN_ACCEPTED = 0, /* client connections accepted on the listener (refused included) */
    MSG_LSTN_REFUSED,      /* of which refused at accept (503) */
    MSG_LSTN_ACTIVE,       /* open now (a gauge) */
    MSG_LSTN_STRIDE
};
#define MSG_LSTN_BASE (MSG_RULE_BASE + MSG_RULE_KINDS)
#define MSG_LSTN_SLOT(l, k) (MSG_LSTN_BASE + (l) * MSG_LSTN_STRIDE + (k))
#define MSG_STAT_SLOTS (MSG_LSTN_BASE + MSG_MAX_LISTENERS * MSG_LSTN_STRIDE)

/* msg_stat_is_gauge returns whether slot `k` of struct msg_stats is a gauge (a value now, not
 * a count since the start): those are not kept in the totals of exited workers. */
static inline int msg_stat_is_gauge(int k)
{
    return k == MSG_STAT_ACTIVE ||
           (k >= MSG_LSTN_BASE && k < MSG_STAT_SLOTS &&
            (k - MSG_LSTN_BASE) % MSG_LSTN_STRIDE == MSG_LSTN_ACTIVE);
}

/* struct msg_stats is every counter of one worker since it started: v[0..MSG_STAT_COUNT)
 * the scalars above, then the request table, the histograms, the rule kinds and the listeners.
 * All are counters except the gauges of msg_stat_is_gauge. */
struct msg_stats {
    uint64_t v[MSG_STAT_SLOTS];
};
static_assert(sizeof(struct msg_stats) == 8 * MSG_STAT_SLOTS, "msg_stats layout");

/* MSG_CERT_REQ_MAX is the largest well-formed CERT_REQ datagram. */
#define MSG_CERT_REQ_MAX                                                                           \
    (sizeof(struct msg_hdr) + sizeof(struct msg_cert_req) + MSG_MAX_ORG_LEN +                      \
     MSG_MAX_NAMES * (1 + MSG_MAX_NAME_LEN))
static_assert(MSG_CERT_REQ_MAX <= MSG_MAX_SIZE, "largest CERT_REQ fits a datagram");
static_assert(sizeof(struct msg_hdr) + sizeof(struct msg_hello) + 2 * MSG_MAX_DER <= MSG_MAX_SIZE,
              "largest HELLO fits a datagram");

#endif
