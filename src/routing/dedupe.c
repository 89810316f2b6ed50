/* dedupe.c - a FIFO ring of ids with an open-addressing index into it.
 * The index has twice the ring's slots, so probes stay short; eviction
 * deletes with backward-shift so no tombstones accumulate. */
#include "dedupe.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"

struct dedupe {
    char **ring;         /* ring[i]: an id, oldest at `head` once full */
    size_t cap, head, count;
    size_t *index;       /* ring position + 1; 0 = empty */
    size_t nindex;       /* a power of two */
};

static size_t hash(const char *s)
{
    return hash_str(HASH_INIT, s);
}

struct dedupe *dedupe_new(size_t capacity)
{
    struct dedupe *d = xcalloc(1, sizeof *d);
    d->cap = capacity ? capacity : 1;
    d->ring = xcalloc(d->cap, sizeof *d->ring);
    d->nindex = 2;
    while (d->nindex < d->cap * 2) d->nindex *= 2;
    d->index = xcalloc(d->nindex, sizeof *d->index);
    return d;
}

void dedupe_free(struct dedupe *d)
{
    if (!d) return;
    for (size_t i = 0; i < d->cap; i++) free(d->ring[i]);
    free(d->ring);
    free(d->index);
    free(d);
}

/* Slot of id in the index, or of the empty slot where it would go. */
static size_t find(const struct dedupe *d, const char *id)
{
    size_t mask = d->nindex - 1, i = hash(id) & mask;
    while (d->index[i] && strcmp(d->ring[d->index[i] - 1], id) != 0) i = (i + 1) & mask;
    return i;
}

bool dedupe_seen(const struct dedupe *d, const char *id)
{
    return id && d->index[find(d, id)] != 0;
}

static void index_remove(struct dedupe *d, size_t slot)
{
    size_t mask = d->nindex - 1;
    d->index[slot] = 0;
    /* Backward-shift: pull later members of the probe run into the hole. */
    for (size_t j = (slot + 1) & mask; d->index[j]; j = (j + 1) & mask) {
        size_t home = hash(d->ring[d->index[j] - 1]) & mask;
        bool movable = slot <= j ? (home <= slot || home > j) : (home <= slot && home > j);
        if (movable) {
            d->index[slot] = d->index[j];
            d->index[j] = 0;
            slot = j;
        }
    }
}

void dedupe_add(struct dedupe *d, const char *id)
{
    if (!id || dedupe_seen(d, id)) return;
    size_t pos;
    if (d->count < d->cap) {
        pos = (d->head + d->count++) % d->cap;
    } else {
        pos = d->head;
        d->head = (d->head + 1) % d->cap;
        index_remove(d, find(d, d->ring[pos]));
        free(d->ring[pos]);
    }
    d->ring[pos] = xstrdup(id);
    d->index[find(d, id)] = pos + 1;
}
