/* replay_layout.h - the server replay index in a memfd (master/replay_load.c writes it once,
 * workers map it with worker/replay.c): types and static asserts only. The index part is
 * mapped read-only by workers; the counters page that follows is mapped shared-writable and
 * holds one pop cursor per key (atomic). Offsets are from the start of the memfd; readers
 * re-check every offset and length against `size`. */
#ifndef MITMD_SHARED_REPLAY_LAYOUT_H
#define MITMD_SHARED_REPLAY_LAYOUT_H

#include <assert.h>
#include <stdint.h>

#define REPLAY_MAGIC 0x3149524dU /* "MRI1" */
#define REPLAY_VERSION 2U
#define REPLAY_NONE UINT32_MAX

struct replay_hdr {
    uint32_t magic, version;
    uint32_t n_groups;     /* distinct request keys */
    uint32_t n_entries;    /* recorded responses */
    uint32_t n_buckets;    /* power of two */
    uint32_t _pad;
    uint8_t hash_key[16];  /* shorthash64 key of the bucket hash */
    uint64_t buckets_off;  /* uint32_t[n_buckets]: first group, REPLAY_NONE = empty */
    uint64_t groups_off;   /* struct replay_group[n_groups] */
    uint64_t entries_off;  /* struct replay_entry[n_entries], a group's contiguous */
    uint64_t fields_off;   /* struct replay_field[] */
    uint64_t data_off, data_len; /* keys, response heads and bodies */
    uint64_t counters_off; /* page-aligned: uint32_t[n_groups] pop cursors (shared, writable) */
    uint64_t size;         /* bytes of the memfd */
};
static_assert(sizeof(struct replay_hdr) == 104, "replay_hdr layout");

/* struct replay_group is one request key and its responses, in recording order. */
struct replay_group {
    uint64_t hash;
    uint64_t key_off;
    uint32_t key_len;
    uint32_t first;  /* index of its first entry */
    uint32_t count;  /* entries */
    uint32_t next;   /* next group in the bucket, REPLAY_NONE = last */
};
static_assert(sizeof(struct replay_group) == 32, "replay_group layout");

/* struct replay_entry is one recorded response: the HTTP/1.1 bytes (status line, fields,
 * Content-Length, body) for the HTTP/1.1 relay, and status, fields and body for HTTP/2. */
struct replay_entry {
    uint64_t h1_off;
    uint32_t h1_len;
    uint32_t status;
    uint64_t body_off;    /* inside the h1 bytes: the body is their tail */
    uint32_t body_len;
    uint32_t n_fields;
    uint32_t first_field; /* index into the fields */
    uint32_t reason_len;
    uint64_t reason_off;
    int64_t recorded_s;   /* Unix seconds the exchange was recorded (startedDateTime), 0 =
                           * unknown: server_replay_refresh shifts dates by now - this */
};
static_assert(sizeof(struct replay_entry) == 56, "replay_entry layout");

struct replay_field {
    uint64_t name_off;
    uint64_t value_off;
    uint32_t name_len;
    uint32_t value_len;
};
static_assert(sizeof(struct replay_field) == 24, "replay_field layout");

#endif
