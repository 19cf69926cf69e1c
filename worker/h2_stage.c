/* h2_stage.c - a stream direction's body staging (fixed base + chain of pool chunks) and the
 * worker's chunk pool. See h2_stage.h. Called only by worker/h2_*.c; never does I/O. */
#include "worker/h2_stage.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

/* H2_CHUNKS_HOT: chunks kept resident when the pool falls idle; the pages of the others go back
 * to the kernel then, so one burst of large transfers does not pin its memory for good. */
#define H2_CHUNKS_HOT 64

/* ---- chunk pool ---------------------------------------------------------------------- */

int h2_chunks_init(struct h2_chunks *c, size_t n)
{
    void *mem;

    memset(c, 0, sizeof(*c));
    if (n == 0 || n > SIZE_MAX / H2_CHUNK_SIZE)
        return -EINVAL;
    mem = mmap(NULL, n * H2_CHUNK_SIZE, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED)
        return -ENOMEM;
    c->mem = mem;
    c->n = n;
    return 0;
}

void h2_chunks_dispose(struct h2_chunks *c)
{
    if (c->mem != NULL)
        munmap(c->mem, c->n * H2_CHUNK_SIZE);
    memset(c, 0, sizeof(*c));
}

bool h2_chunks_reserve(struct h2_chunks *c, size_t k)
{
    if (k > c->n - c->resv)
        return false;
    c->resv += k;
    return true;
}

void h2_chunks_unreserve(struct h2_chunks *c, size_t k)
{
    c->resv -= k <= c->resv ? k : c->resv;
}

/* chunk_get takes a chunk; the caller's reservation guarantees one. NULL only if the
 * accounting broke. */
static struct h2_chunk *chunk_get(struct h2_chunks *c)
{
    struct h2_chunk *k;

    if (c->free_list != NULL) {
        k = c->free_list;
        c->free_list = k->next;
    } else if (c->hw < c->n) {
        k = (struct h2_chunk *)(c->mem + c->hw * H2_CHUNK_SIZE);
        c->hw++;
    } else {
        return NULL;
    }
    c->used++;
    k->next = NULL;
    k->off = 0;
    k->len = 0;
    return k;
}

static void chunk_put(struct h2_chunks *c, struct h2_chunk *k)
{
    k->next = c->free_list;
    c->free_list = k;
    c->used--;
    if (c->used == 0 && c->hw > H2_CHUNKS_HOT) {
        /* idle: restart bump allocation and drop the pages beyond the hot ones */
        madvise(c->mem + H2_CHUNKS_HOT * H2_CHUNK_SIZE, (c->hw - H2_CHUNKS_HOT) * H2_CHUNK_SIZE,
                MADV_DONTNEED);
        c->free_list = NULL;
        c->hw = 0;
    }
}

static uint8_t *chunk_data(struct h2_chunk *k) { return (uint8_t *)(k + 1); }

/* ---- stage --------------------------------------------------------------------------- */

void h2_stage_init(struct h2_stage *s, uint8_t *base, size_t cap)
{
    memset(s, 0, sizeof(*s));
    buf_init(&s->base, base, cap);
    s->win = (uint32_t)cap;
}

/* chain_append copies `n` bytes to the chain's tail, taking chunks within the reservation. */
static int chain_append(struct h2_stage *s, struct h2_chunks *c, const uint8_t *p, size_t n)
{
    while (n > 0) {
        struct h2_chunk *t = s->tail;
        size_t k;

        if (t == NULL || t->len == H2_CHUNK_PAYLOAD) {
            if (s->chain_chunks >= s->resv || (t = chunk_get(c)) == NULL)
                return -ENOSPC;
            if (s->tail != NULL)
                s->tail->next = t;
            else
                s->head = t;
            s->tail = t;
            s->chain_chunks++;
        }
        k = H2_CHUNK_PAYLOAD - t->len;
        if (k > n)
            k = n;
        memcpy(chunk_data(t) + t->len, p, k);
        t->len += (uint32_t)k;
        s->chain_len += k;
        p += k;
        n -= k;
    }
    return 0;
}

int h2_stage_append(struct h2_stage *s, struct h2_chunks *c, const uint8_t *p, size_t n)
{
    if (n > (size_t)s->win - h2_stage_used(s))
        return -ENOSPC;
    while (s->head == NULL && n > 0) { /* a second append finds the base compacted */
        size_t k = buf_append(&s->base, p, n);

        if (k == 0)
            break;
        p += k;
        n -= k;
    }
    return n == 0 ? 0 : chain_append(s, c, p, n);
}

size_t h2_stage_peek(const struct h2_stage *s, const uint8_t **p)
{
    if (buf_used(&s->base) > 0) {
        *p = buf_head(&s->base);
        return buf_used(&s->base);
    }
    if (s->head != NULL) {
        *p = chunk_data(s->head) + s->head->off;
        return s->head->len - s->head->off;
    }
    *p = NULL;
    return 0;
}

void h2_stage_consume(struct h2_stage *s, struct h2_chunks *c, size_t n)
{
    size_t k = buf_used(&s->base) < n ? buf_used(&s->base) : n;

    buf_consume(&s->base, k);
    n -= k;
    while (n > 0 && s->head != NULL) {
        struct h2_chunk *h = s->head;

        k = h->len - h->off;
        if (k > n)
            k = n;
        h->off += (uint32_t)k;
        s->chain_len -= k;
        n -= k;
        if (h->off == h->len) {
            s->head = h->next;
            if (s->head == NULL)
                s->tail = NULL;
            s->chain_chunks--;
            chunk_put(c, h);
        }
    }
}

size_t h2_stage_read(struct h2_stage *s, struct h2_chunks *c, uint8_t *out, size_t len)
{
    size_t done = 0;

    while (done < len) {
        const uint8_t *p;
        size_t k = h2_stage_peek(s, &p);

        if (k == 0)
            break;
        if (k > len - done)
            k = len - done;
        memcpy(out + done, p, k);
        h2_stage_consume(s, c, k);
        done += k;
    }
    return done;
}

size_t h2_stage_dispose(struct h2_stage *s, struct h2_chunks *c)
{
    size_t resv = s->resv;

    h2_stage_consume(s, c, h2_stage_used(s));
    h2_chunks_unreserve(c, resv);
    s->resv = 0;
    s->win = (uint32_t)s->base.cap;
    return resv;
}
