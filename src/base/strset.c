/* strset.c - a set of strings by hash (see strset.h). */
#include "strset.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"

#define MIN_CAP 16

void strset_init(struct strset *s)
{
    memset(s, 0, sizeof *s);
}

/* The slot holding v, or the empty slot where it would go. */
static size_t find(struct strset *s, const char *v)
{
    size_t mask = s->cap - 1;
    size_t i = hash_str(HASH_INIT, v) & mask;
    for (;;) {
        s->probes++;
        if (!s->slots[i] || strcmp(s->slots[i], v) == 0) return i;
        i = (i + 1) & mask;
    }
}

static void grow(struct strset *s)
{
    char **old = s->slots;
    size_t oldcap = s->cap;
    s->cap = oldcap ? oldcap * 2 : MIN_CAP;
    s->slots = xcalloc(s->cap, sizeof *s->slots);
    for (size_t i = 0; i < oldcap; i++)
        if (old[i]) s->slots[find(s, old[i])] = old[i];
    free(old);
}

bool strset_add(struct strset *s, const char *v)
{
    if ((s->n + 1) * 2 > s->cap) grow(s);
    size_t i = find(s, v);
    if (s->slots[i]) return false;
    s->slots[i] = xstrdup(v);
    s->n++;
    return true;
}

bool strset_has(struct strset *s, const char *v)
{
    return s->cap && s->slots[find(s, v)];
}

bool strset_remove(struct strset *s, const char *v)
{
    if (!s->cap) return false;
    size_t mask = s->cap - 1;
    size_t i = find(s, v);
    if (!s->slots[i]) return false;
    free(s->slots[i]);
    s->slots[i] = NULL;
    s->n--;
    /* Every entry after the hole in its run that could sit in the hole
     * moves there, so lookups never stop early at it. */
    for (size_t j = (i + 1) & mask; s->slots[j]; j = (j + 1) & mask) {
        size_t home = hash_str(HASH_INIT, s->slots[j]) & mask;
        /* j's entry may move to i unless its home lies cyclically in (i, j]. */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (stays) continue;
        s->slots[i] = s->slots[j];
        s->slots[j] = NULL;
        i = j;
    }
    return true;
}

size_t strset_count(const struct strset *s)
{
    return s->n;
}

void strset_free(struct strset *s)
{
    for (size_t i = 0; i < s->cap; i++) free(s->slots[i]);
    free(s->slots);
    memset(s, 0, sizeof *s);
}
