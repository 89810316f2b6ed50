/* dedupe.c - a FIFO ring of id tags with an open-addressing index of them.
 *
 * An id is remembered by its keyed 64-bit tag (siphash24), not a copy: no
 * allocation per id, 8 bytes instead of a string (a delivered key, digest
 * and target URL, is some 160), and a tag is hashed once, never again.
 *
 * The index holds the tags themselves (0 = empty), so a lookup reads one
 * place in memory, not an index slot and then the ring: with 10,000 ids per
 * memory the tables outgrow the caches under a flood, and each miss cost
 * more than the hash. The ring only keeps the order for eviction (read and
 * written at its head, in sequence). About 1.6 slots per id keep probes
 * short; eviction deletes with backward-shift so no tombstones accumulate. */
#include "dedupe.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "siphash.h"

struct dedupe {
    uint64_t *ring;      /* ring[i]: an id's tag, oldest at `head` once full */
    size_t cap, head, count;
    uint64_t *index;     /* the tags, at (tag & mask) or the next free slot after; 0 = empty */
    size_t nindex;       /* a power of two, at least 1.5 x cap */
    uint8_t key[SIPHASH_KEY_LEN];
};

struct dedupe *dedupe_new(size_t capacity, const uint8_t key[DEDUPE_KEY_LEN])
{
    struct dedupe *d = xcalloc(1, sizeof *d);
    d->cap = capacity ? capacity : 1;
    if (d->cap > SIZE_MAX / 32) d->cap = SIZE_MAX / 32;   /* the index size below cannot overflow */
    d->ring = xcalloc(d->cap, sizeof *d->ring);
    d->nindex = 2;
    while (d->nindex < d->cap + d->cap / 2 + 1) d->nindex *= 2;
    d->index = xcalloc(d->nindex, sizeof *d->index);
    if (key) memcpy(d->key, key, sizeof d->key);
    return d;
}

void dedupe_free(struct dedupe *d)
{
    if (!d) return;
    free(d->ring);
    free(d->index);
    free(d);
}

uint64_t dedupe_tag(const struct dedupe *d, const char *id)
{
    uint64_t tag = siphash24(d->key, id, strlen(id));
    return tag ? tag : 1;
}

/* Slot of tag in the index, or of the empty slot where it would go. */
static size_t find(const struct dedupe *d, uint64_t tag)
{
    size_t mask = d->nindex - 1, i = (size_t)tag & mask;
    while (d->index[i] && d->index[i] != tag) i = (i + 1) & mask;
    return i;
}

bool dedupe_seen_tag(const struct dedupe *d, uint64_t tag)
{
    return tag && d->index[find(d, tag)] != 0;
}

bool dedupe_seen(const struct dedupe *d, const char *id)
{
    return id && dedupe_seen_tag(d, dedupe_tag(d, id));
}

static void index_remove(struct dedupe *d, size_t slot)
{
    size_t mask = d->nindex - 1;
    d->index[slot] = 0;
    /* Backward-shift: pull later members of the probe run into the hole. */
    for (size_t j = (slot + 1) & mask; d->index[j]; j = (j + 1) & mask) {
        size_t home = (size_t)d->index[j] & mask;
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
    if (id) dedupe_add_tag(d, dedupe_tag(d, id));
}

void dedupe_add_tag(struct dedupe *d, uint64_t tag)
{
    if (!tag || d->index[find(d, tag)]) return;
    size_t pos;
    if (d->count < d->cap) {
        pos = (d->head + d->count++) % d->cap;
    } else {
        pos = d->head;
        d->head = (d->head + 1) % d->cap;
        index_remove(d, find(d, d->ring[pos]));
    }
    d->ring[pos] = tag;
    /* Found again: the eviction may have shifted the empty slot. */
    d->index[find(d, tag)] = tag;
}
