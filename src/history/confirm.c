/* confirm.c - the confirmation rule (see confirm.h). */
#include "confirm.h"

#include <string.h>

static bool waiting(const struct history_entry *e)
{
    return e->action == HISTORY_REDEPLOY && e->outcome == HISTORY_DELIVERED;
}

bool confirm_of_route(const struct history_entry *e, const struct confirm_observation *o)
{
    for (size_t i = 0; i < o->nkeys; i++)
        if (o->target_keys[i] == e->target_key) return true;
    return false;
}

/* "registry/repo@sha256:…" ends with "@" + the pushed digest. */
static bool runs_digest(const char *digest, const struct confirm_observation *o)
{
    size_t dl = strlen(digest);
    for (size_t i = 0; i < o->ndigests; i++) {
        const char *at = o->digests[i] ? strrchr(o->digests[i], '@') : NULL;
        if (at && strlen(at + 1) == dl && memcmp(at + 1, digest, dl) == 0) return true;
    }
    return false;
}

bool confirm_matches(const struct history_entry *e, const struct confirm_observation *o)
{
    if (!waiting(e) || !confirm_of_route(e, o)) return false;
    if (e->digest[0]) {
        /* A service pinned to the digest runs it whenever it changed; a
         * container must have been started since the POST (an old one
         * restarted from a cached image of the same digest still counts:
         * it runs what was pushed). */
        if (o->kind == CONFIRM_CONTAINER && o->started_ms < e->posted_ms) return false;
        return runs_digest(e->digest, o);
    }
    /* No digest to compare: only something new since the POST says the
     * redeploy happened (a restarted old container does not). */
    if (o->kind == CONFIRM_SERVICE) return o->started_ms >= e->posted_ms;
    return o->created_ms >= e->posted_ms && o->started_ms >= e->posted_ms;
}

bool confirm_expired(const struct history_entry *e, long long now_ms, int secs)
{
    return secs > 0 && waiting(e) && now_ms >= e->posted_ms + (long long)secs * 1000;
}

struct next_ctx {
    int secs;
    long long next;
};

static bool find_next(void *ud, struct history_entry *e)
{
    struct next_ctx *c = ud;
    if (!waiting(e)) return true;
    long long due = e->posted_ms + (long long)c->secs * 1000;
    if (!c->next || due < c->next) c->next = due;
    return true;
}

long long confirm_next_deadline(struct history *h, int secs)
{
    struct next_ctx c = {secs, 0};
    if (secs > 0) history_foreach(h, find_next, &c);
    return c.next;
}
