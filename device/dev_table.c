/*
 * Handle tables for sessions and keys. A handle is generation << 16 |
 * (index + 1): never 0, and a stale handle stops matching as soon as its
 * slot is freed. Free slots are handed out oldest-freed first (and fresh
 * slots before any reuse), so a generation comes round again only after
 * 65536 reuses of one slot.
 */
#include "dev.h"

#include <stdlib.h>
#include <string.h>

int dev_table_init(struct dev_table *t, uint32_t max)
{
    memset(t, 0, sizeof(*t));
    if (max == 0 || max > 0xFFFF)
        return -1;
    t->max = max;
    return 0;
}

void dev_table_free(struct dev_table *t)
{
    free(t->obj);
    free(t->gen);
    free(t->freeq);
    memset(t, 0, sizeof(*t));
}

static int grow(struct dev_table *t)
{
    uint32_t ncap = t->cap != 0 ? t->cap * 2 : 16;
    void **o;
    uint16_t *g;
    uint32_t *q;

    if (ncap > t->max)
        ncap = t->max;
    if (ncap <= t->cap)
        return -1;
    o = realloc(t->obj, ncap * sizeof(*o));
    if (o == NULL)
        return -1;
    t->obj = o;
    g = realloc(t->gen, ncap * sizeof(*g));
    if (g == NULL)
        return -1;
    t->gen = g;
    q = malloc(ncap * sizeof(*q));
    if (q == NULL)
        return -1;
    /* unroll the ring into the new array */
    for (uint32_t i = 0; i < t->fq_count; i++)
        q[i] = t->freeq[(t->fq_head + i) % t->cap];
    free(t->freeq);
    t->freeq = q;
    t->fq_head = 0;
    for (uint32_t i = t->cap; i < ncap; i++) {
        o[i] = NULL;
        g[i] = 1;
        q[t->fq_count++] = i;
    }
    t->cap = ncap;
    return 0;
}

uint32_t dev_table_add(struct dev_table *t, void *obj)
{
    uint32_t idx;

    if (t->used >= t->max)
        return 0;
    /* fresh slots before reuse: grow while the table may */
    if (t->fq_count == 0 || (t->cap < t->max && t->used * 2 >= t->cap)) {
        if (grow(t) != 0 && t->fq_count == 0)
            return 0;
    }
    idx = t->freeq[t->fq_head];
    t->fq_head = (t->fq_head + 1) % t->cap;
    t->fq_count--;
    t->obj[idx] = obj;
    t->used++;
    return (uint32_t)t->gen[idx] << 16 | (idx + 1);
}

static int lookup(const struct dev_table *t, uint32_t h, uint32_t *idx)
{
    uint32_t i = (h & 0xFFFF);

    if (i == 0 || i > t->cap)
        return -1;
    i--;
    if (t->obj[i] == NULL || t->gen[i] != (h >> 16))
        return -1;
    *idx = i;
    return 0;
}

void *dev_table_get(const struct dev_table *t, uint32_t h)
{
    uint32_t i;

    return lookup(t, h, &i) == 0 ? t->obj[i] : NULL;
}

void *dev_table_remove(struct dev_table *t, uint32_t h)
{
    uint32_t i;
    void *o;

    if (lookup(t, h, &i) != 0)
        return NULL;
    o = t->obj[i];
    t->obj[i] = NULL;
    t->gen[i] = (uint16_t)(t->gen[i] + 1);
    if (t->gen[i] == 0)
        t->gen[i] = 1;
    t->freeq[(t->fq_head + t->fq_count) % t->cap] = i;
    t->fq_count++;
    t->used--;
    return o;
}

void *dev_table_slot(const struct dev_table *t, uint32_t i, uint32_t *h)
{
    if (i >= t->cap || t->obj[i] == NULL)
        return NULL;
    if (h != NULL)
        *h = (uint32_t)t->gen[i] << 16 | (i + 1);
    return t->obj[i];
}
