/* replay_load.h - server replay's start in the master: reads the -S recording (JSON Lines
 * from -w with save_bodies, or mitmproxy's flow file through master/mitmflow.h) once, builds the index (shared/replay_layout.h) in a memfd and
 * hands it to every worker as --server-replay /dev/fd/N (worker/replay.h maps it). Called
 * by master/master.c at start-up; allocates and blocks while it reads the file. */
#ifndef MITMD_MASTER_REPLAY_LOAD_H
#define MITMD_MASTER_REPLAY_LOAD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "master/supervise.h"
#include "shared/config.h"
#include "shared/replay_layout.h"

/* struct replay_load_stats says what a recording held. */
struct replay_load_stats {
    size_t lines, entries, keys;
    size_t no_response;  /* records without a response (errors before one) */
    size_t cut_bodies;   /* left out: a body cut by save_bodies, or not recorded at all */
    size_t bad_lines;    /* not JSON, or not a flow record */
    bool mitmproxy;      /* the file was mitmproxy's flow format: `lines` counts flows */
};

/* replay_load_fn handles one record line (`line` may be changed); returns 0, or -errno to
 * stop reading. */
typedef int replay_load_fn(void *arg, char *line, size_t len);

/* replay_load_each reads `in` - JSON Lines records, or mitmproxy's flow file (sniffed; each
 * HTTP flow converted to a record line by master/mitmflow.h) - and calls `fn` for every
 * record line. It counts the lines (flows) into *lines and what is not a record into *bad
 * (a cut mitmproxy file is warned about, naming `what` and `path`, and ends the read), and
 * sets *mitmproxy. Returns 0, or the first error `fn` returned. Used by -S and -C. */
int replay_load_each(FILE *in, const char *what, const char *path, replay_load_fn *fn, void *arg,
                     size_t *lines, size_t *bad, bool *mitmproxy);

/* replay_load_body returns the bytes of a record's request_body / response_body (malloc'ed,
 * *len set), NULL with *len 0 when there is none, or sets *cut when it was cut or is
 * unreadable (or NULL on no memory, *cut set). */
uint8_t *replay_load_body(json_t *body, size_t *len, bool *cut);

/* replay_load_is_token returns whether `s` is a non-empty RFC 9110 token (a method, a field
 * name). */
bool replay_load_is_token(const char *s);

/* replay_load_field_ok returns whether a recorded field may be replayed: a token name, a
 * value without CR, LF or NUL, and not a field of the connection or of the framing (RFC 9110
 * §7.6.1; the replayer frames a body with Content-Length itself). */
bool replay_load_field_ok(const char *n, const char *v);

/* replay_load_memfd creates memfd `name` of `size` bytes (zeroed) and maps it writable into
 * *map for the master to lay a list out (munmap it after). Returns the descriptor or -errno. */
int replay_load_memfd(const char *name, size_t size, void **map);

/* replay_load_map_ro maps the whole of memfd `fd` read-only (the master's watch of a list it
 * handed to the workers). Returns 0 with *map and *size set, -EINVAL when it is smaller than
 * `min` bytes, or -errno. */
int replay_load_map_ro(int fd, size_t min, void **map, size_t *size);

/* replay_load_build reads `path` and returns a memfd holding the index (the caller owns it),
 * or -errno with a one-line reason in `err` (a file that cannot be read; server_replay_extra
 * not forward, kill or a status 100-599). Fills `st`. */
int replay_load_build(const struct config *cfg, const char *path, struct replay_load_stats *st,
                      char *err, size_t errlen);

/* struct replay_watch lets the master see how many recorded responses are left: the
 * index mapped read-only, the workers' pop cursors included (mitmdump exits once server
 * replay has used every response, unless keepserving). */
struct replay_watch {
    void *map; /* NULL: not watching */
    size_t size;
    const struct replay_group *groups;
    const uint32_t *cursors; /* read with relaxed atomic loads */
    uint32_t n_groups;
};

/* replay_load_start does nothing without cfg->server_replay; otherwise builds the index,
 * logs what it holds, and passes it to the workers. With `watch` (may be NULL) and
 * neither cfg->keepserving nor server_replay_reuse (whose responses are never used up), it
 * also maps the index into `watch`; otherwise watch->map stays NULL. Returns 0 or -errno
 * (logged). */
int replay_load_start(struct supervise *s, const struct config *cfg, struct replay_watch *watch);

/* replay_watch_left returns how many recorded responses no request has taken yet. */
uint64_t replay_watch_left(const struct replay_watch *w);

/* replay_watch_close unmaps the index (a watch that is not watching is left as it is). */
void replay_watch_close(struct replay_watch *w);

#endif
