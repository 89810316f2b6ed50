/* strset.h - a set of strings (owned copies), by hash: membership in
 * constant time, for sets that reach tens of thousands (a registry's tag
 * list). Open addressing with linear probing, kept at most half full;
 * removal shifts the run back, so there are no tombstones. */
#ifndef WR_STRSET_H
#define WR_STRSET_H

#include <stdbool.h>
#include <stddef.h>

struct strset {
    char **slots;          /* NULL: empty slot */
    size_t cap;            /* 0 or a power of two */
    size_t n;
    unsigned long probes;  /* slots looked at so far (string compares at most): tests read it */
};

void strset_init(struct strset *s);
/* Adds a copy of v; false when it was there already. */
bool strset_add(struct strset *s, const char *v);
bool strset_has(struct strset *s, const char *v);
/* False when v was not there. */
bool strset_remove(struct strset *s, const char *v);
size_t strset_count(const struct strset *s);
void strset_free(struct strset *s);

#endif
