/* dedupe.h - remembers recent registry event ids, in bounded memory.
 * Registries redeliver notifications (a timeout on their side, a restart);
 * an id seen recently is a redelivery, not a new push. Pure: no I/O. */
#ifndef WR_DEDUPE_H
#define WR_DEDUPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DEDUPE_KEY_LEN 16

struct dedupe;

/* Keeps the last `capacity` ids; older ones are forgotten first. key: the
 * secret of the ids' tags, random in the daemon (NULL: zeros, for tests):
 * known, someone sending webhooks could make an id look seen. */
struct dedupe *dedupe_new(size_t capacity, const uint8_t key[DEDUPE_KEY_LEN]);
void dedupe_free(struct dedupe *d);
bool dedupe_seen(const struct dedupe *d, const char *id);
/* Remembers id (no-op if already known). */
void dedupe_add(struct dedupe *d, const char *id);

/* The same, by an id's tag: a caller that asks before it remembers hashes
 * the id once. A tag is never 0, so 0 can stand for "no id". */
uint64_t dedupe_tag(const struct dedupe *d, const char *id);
bool dedupe_seen_tag(const struct dedupe *d, uint64_t tag);
void dedupe_add_tag(struct dedupe *d, uint64_t tag);

#endif
