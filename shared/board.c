/* board.c - see board.h. */
#include "shared/board.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static size_t board_size(int n)
{
    return (size_t)n * sizeof(struct board_slot);
}

int board_create(int n, int *fd, struct board_slot **slots)
{
    int f, err;

    if (n < 1 || n > BOARD_MAX_SLOTS)
        return -EINVAL;
    f = memfd_create("mitmd-board", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (f == -1)
        return -errno;
    if (ftruncate(f, (off_t)board_size(n)) == -1 ||
        fcntl(f, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_SEAL) == -1) {
        err = -errno;
        goto out_close;
    }
    err = board_map(f, n, slots);
    if (err)
        goto out_close;
    *fd = f;
    return 0;
out_close:
    close(f);
    return err;
}

int board_map(int fd, int n, struct board_slot **slots)
{
    struct stat st;
    void *p;

    if (n < 1 || n > BOARD_MAX_SLOTS)
        return -EINVAL;
    if (fstat(fd, &st) == -1)
        return -errno;
    if (st.st_size < (off_t)board_size(n))
        return -EINVAL;
    p = mmap(NULL, board_size(n), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return -errno;
    *slots = p;
    return 0;
}

void board_unmap(struct board_slot *slots, int n)
{
    if (slots != NULL)
        munmap(slots, board_size(n));
}

void board_publish(struct board_slot *slots, int self, int active)
{
    atomic_store_explicit(&slots[self].active, active, memory_order_relaxed);
}

void board_set_alive(struct board_slot *slots, int self, bool alive)
{
    atomic_store_explicit(&slots[self].active, 0, memory_order_relaxed);
    atomic_store_explicit(&slots[self].alive, alive ? 1 : 0, memory_order_relaxed);
}

bool board_should_defer(const struct board_slot *slots, int n, int self)
{
    int32_t mine = atomic_load_explicit(&slots[self].active, memory_order_relaxed);
    int32_t least = INT32_MAX;

    for (int i = 0; i < n; i++) {
        if (i == self || atomic_load_explicit(&slots[i].alive, memory_order_relaxed) == 0)
            continue;
        int32_t a = atomic_load_explicit(&slots[i].active, memory_order_relaxed);
        if (a < least)
            least = a;
    }
    return least != INT32_MAX && mine > least + BOARD_SLACK;
}
