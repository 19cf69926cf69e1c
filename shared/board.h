/* board.h - the accept board: one cache line per worker slot in a small shared memfd, where
 * each worker publishes how many client connections it holds. The workers share one
 * listening socket; a worker that holds more than its share leaves new connections to a less
 * loaded sibling for a moment (worker.c), so a few long-lived connections (a load generator's
 * keep-alive or HTTP/2 connections) spread evenly over the workers instead of by hash.
 * Created by the master (board_create), mapped read-write by every worker (board_map).
 * Lock-free: each slot has one writer (its worker; the master only when the worker is dead),
 * readers use relaxed atomic loads, and a stale figure costs balance, never correctness. */
#ifndef MITMD_SHARED_BOARD_H
#define MITMD_SHARED_BOARD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* BOARD_MAX_SLOTS bounds the workers (SUPERVISE_MAX_WORKERS). */
#define BOARD_MAX_SLOTS 256
/* BOARD_SLACK: a worker defers accepting while it holds more than this many connections
 * above the least loaded live sibling. */
#define BOARD_SLACK 1

struct board_slot {
    _Atomic int32_t active; /* client connections the worker holds */
    _Atomic int32_t alive;  /* 1 while a worker runs in this slot */
    char _pad[56];          /* one cache line per slot: no false sharing */
};

/* board_create makes a memfd of `n` zeroed slots (1 <= n <= BOARD_MAX_SLOTS), close-on-exec,
 * sealed against shrinking, and maps it. Returns 0 with *fd and *slots set, or -errno. */
int board_create(int n, int *fd, struct board_slot **slots);

/* board_map maps the board in `fd` (made by board_create with `n` slots) read-write. Returns
 * 0 with *slots set, or -errno (-EINVAL when the file is smaller than n slots). */
int board_map(int fd, int n, struct board_slot **slots);

/* board_unmap undoes board_create's or board_map's mapping (not the fd). */
void board_unmap(struct board_slot *slots, int n);

/* board_publish stores `active` for slot `self`. */
void board_publish(struct board_slot *slots, int self, int active);

/* board_set_alive marks slot `self` as running (with 0 connections) or not. */
void board_set_alive(struct board_slot *slots, int self, bool alive);

/* board_should_defer is true when slot `self` holds more than BOARD_SLACK connections above
 * the least loaded other live slot of the `n`; false when it has no live sibling. */
bool board_should_defer(const struct board_slot *slots, int n, int self);

#endif
