/* confirm.h - did the redeploy happen? The pure rule.
 *
 * A delivered redeploy POST is confirmed (deployed) when an object of its
 * route runs the pushed image:
 *   - a container carrying the route's labels, started after the POST,
 *     whose image's RepoDigests contain the pushed digest;
 *   - a service of the route whose task image is pinned to the digest;
 *   - without a digest in the event: a container of the route created and
 *     started after the POST (a service: updated after the POST).
 * "After the POST" is after the delivering attempt began: Portainer may
 * recreate the stack before it answers. An object of the route is one
 * whose labels name the entry's target (compared by target_key). */
#ifndef WR_CONFIRM_H
#define WR_CONFIRM_H

#include <stdbool.h>
#include <stddef.h>
#include "history.h"

enum confirm_kind { CONFIRM_CONTAINER, CONFIRM_SERVICE };

/* What the engine showed: a container started, or a service updated. */
struct confirm_observation {
    enum confirm_kind kind;
    const size_t *target_keys;      /* hash_str of each route URL on its labels */
    size_t nkeys;
    /* container: its image's RepoDigests ("repo@sha256:…"); service: its
     * task image ("repo:tag@sha256:…"). Matched by the "@<digest>" end. */
    const char *const *digests;
    size_t ndigests;
    long long created_ms;           /* wall clock; 0 unknown (before the router looked) */
    long long started_ms;           /* container start / service update */
};

/* Is the observed object one of the entry's route? */
bool confirm_of_route(const struct history_entry *e, const struct confirm_observation *o);
/* Does this observation confirm the entry? Only a delivered redeploy can be. */
bool confirm_matches(const struct history_entry *e, const struct confirm_observation *o);

/* A delivered redeploy past its deadline (secs after posted_ms; 0 = never). */
bool confirm_expired(const struct history_entry *e, long long now_ms, int secs);

/* The wall-clock time the first delivered entry expires (0: none waits). */
long long confirm_next_deadline(struct history *h, int secs);

#endif
