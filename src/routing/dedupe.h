/* dedupe.h - remembers recent registry event ids, in bounded memory.
 * Registries redeliver notifications (a timeout on their side, a restart);
 * an id seen recently is a redelivery, not a new push. Pure: no I/O. */
#ifndef WR_DEDUPE_H
#define WR_DEDUPE_H

#include <stdbool.h>
#include <stddef.h>

struct dedupe;

/* Keeps the last `capacity` ids; older ones are forgotten first. */
struct dedupe *dedupe_new(size_t capacity);
void dedupe_free(struct dedupe *d);
bool dedupe_seen(const struct dedupe *d, const char *id);
/* Remembers id (no-op if already known). */
void dedupe_add(struct dedupe *d, const char *id);

#endif
