/* flow_body.c - see flow_body.h. */
#include "worker/flow_body.h"

#include <stdlib.h>
#include <string.h>

void flow_body_cfg_init(struct flow_body_cfg *c, uint64_t limit)
{
    memset(c, 0, sizeof(*c));
    c->limit = (uint32_t)(limit > FLOW_BODY_MAX ? FLOW_BODY_MAX : limit);
    c->budget = FLOW_BODY_BUDGET;
}

static void side_free(struct flow_body_cfg *c, struct flow_body_side *s)
{
    if (s->data != NULL && c != NULL)
        c->in_use -= s->cap;
    free(s->data);
    memset(s, 0, sizeof(*s));
}

/* capture returns `f`'s capture for the current exchange, allocating or recycling it. */
static struct flow_body *capture(struct flow *f)
{
    struct flow_body *b = f->body;

    if (b == NULL) {
        b = calloc(1, sizeof(*b));
        if (b == NULL)
            return NULL;
        f->body = b;
        b->t_start = f->t_start;
    }
    if (b->t_start != f->t_start) { /* a body of an earlier exchange that was not recorded */
        side_free(f->bodies, &b->side[FLOW_REQUEST]);
        side_free(f->bodies, &b->side[FLOW_RESPONSE]);
        b->t_start = f->t_start;
    }
    return b;
}

/* side_room grows `s` so that `want` more bytes fit, within the limit and the budget.
 * Returns how many of them fit. */
static size_t side_room(struct flow_body_cfg *c, struct flow_body_side *s, size_t want)
{
    uint32_t need, ncap;
    uint8_t *p;

    if (s->len >= c->limit)
        return 0;
    if (want > c->limit - s->len)
        want = c->limit - s->len;
    if (want <= s->cap - s->len)
        return want;
    need = s->len + (uint32_t)want;
    ncap = s->cap == 0 ? FLOW_BODY_FIRST : s->cap;
    while (ncap < need)
        ncap *= 2;
    if (ncap > c->limit)
        ncap = c->limit;
    if (c->in_use - s->cap + ncap > c->budget) {
        c->not_kept++;
        return s->cap - s->len;
    }
    p = realloc(s->data, ncap);
    if (p == NULL) {
        c->not_kept++;
        return s->cap - s->len;
    }
    c->in_use = c->in_use - s->cap + ncap;
    s->data = p;
    s->cap = ncap;
    return want;
}

static void side_add(struct flow_body_cfg *c, struct flow_body_side *s, const uint8_t *p,
                     size_t n)
{
    size_t k = side_room(c, s, n);

    if (k > 0) {
        memcpy(s->data + s->len, p, k);
        s->len += (uint32_t)k;
    }
    s->total += n;
}

void flow_body_feed(struct flow *f, enum flow_side side, const void *p, size_t n)
{
    struct flow_body *b;

    if (f->bodies == NULL || f->bodies->limit == 0 || n == 0)
        return;
    b = capture(f);
    if (b != NULL)
        side_add(f->bodies, &b->side[side], p, n);
}

void flow_body_feed_chunked(struct flow *f, enum flow_side side, const void *p, size_t n)
{
    const uint8_t *in = p;
    struct flow_body_side *s;
    struct flow_body *b;
    const char *why = NULL;

    if (f->bodies == NULL || f->bodies->limit == 0 || n == 0)
        return;
    b = capture(f);
    if (b == NULL)
        return;
    s = &b->side[side];
    if (!s->chunked_on) {
        h1_chunk_decoder_init(&s->dec, H1_HEAD_MAX_DEFAULT);
        s->chunked_on = true;
    }
    while (n > 0 && !h1_chunk_decoder_is_done(&s->dec)) {
        size_t off = 0, len = 0;
        ssize_t c = h1_chunk_decode(&s->dec, in, n, &off, &len, &why);

        if (c <= 0) /* the relay's own decoder reports bad framing; keep what we have */
            return;
        if (len > 0)
            side_add(f->bodies, s, in + off, len);
        in += c;
        n -= (size_t)c;
    }
}

const struct flow_body_side *flow_body_get(const struct flow *f, enum flow_side side)
{
    const struct flow_body *b = f->body;

    if (b == NULL || b->t_start != f->t_start || b->side[side].total == 0)
        return NULL;
    return &b->side[side];
}

void flow_body_release(struct flow *f)
{
    struct flow_body *b = f->body;

    if (b == NULL)
        return;
    side_free(f->bodies, &b->side[FLOW_REQUEST]);
    side_free(f->bodies, &b->side[FLOW_RESPONSE]);
    free(b);
    f->body = NULL;
}
