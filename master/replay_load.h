/* replay_load.h - server replay's start in the master: reads the -S recording (JSON Lines
 * from -w with save_bodies) once, builds the index (shared/replay_layout.h) in a memfd and
 * hands it to every worker as --server-replay /dev/fd/N (worker/replay.h maps it). Called
 * by master/master.c at start-up; allocates and blocks while it reads the file. */
#ifndef MITMD_MASTER_REPLAY_LOAD_H
#define MITMD_MASTER_REPLAY_LOAD_H

#include <stddef.h>

#include "master/supervise.h"
#include "shared/config.h"

/* struct replay_load_stats says what a recording held. */
struct replay_load_stats {
    size_t lines, entries, keys;
    size_t no_response;  /* records without a response (errors before one) */
    size_t cut_bodies;   /* left out: a body cut by save_bodies, or not recorded at all */
    size_t bad_lines;    /* not JSON, or not a flow record */
};

/* replay_load_build reads `path` and returns a memfd holding the index (the caller owns it),
 * or -errno with a one-line reason in `err` (a file that cannot be read; server_replay_extra
 * not forward, kill or a status 100-599). Fills `st`. */
int replay_load_build(const struct config *cfg, const char *path, struct replay_load_stats *st,
                      char *err, size_t errlen);

/* replay_load_start does nothing without cfg->server_replay; otherwise builds the index,
 * logs what it holds, and passes it to the workers. Returns 0 or -errno (logged). */
int replay_load_start(struct supervise *s, const struct config *cfg);

#endif
