/* registry_watch.h - watching registries that cannot call in (SPEC:
 * Registry watch).
 *
 * A route is watched when it has <prefix>.poll=<interval>, or when
 * POLL_INTERVAL is set (then every route without <prefix>.poll=off). What
 * is watched is a (registry host, repository, tag), or a repository's tag
 * list for a glob the object's own tag does not settle; routes that share
 * one share its requests. The set of watches follows the route table
 * (routes_generation): no polling of Docker, only of the registries.
 *
 * A changed digest (or a new matching tag) becomes a push event of format
 * "poll", id "<host>/<repo>:<tag>@<digest>", handed to on_push: from there
 * it takes the webhook path (matching, dedupe per route by digest,
 * coalescing, forwarding). The first poll is compared with the digest the
 * object runs when that is known (a service's pinned digest, a container
 * image's RepoDigests), else it is the baseline. */
#ifndef WR_REGISTRY_WATCH_H
#define WR_REGISTRY_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "docker_watch.h"
#include "event.h"
#include "log.h"
#include "registry.h"
#include "routes.h"

/* What one route on one object watches (pure: watch_key_of). */
struct watch_key {
    char host[256];         /* registry as a label names it: "docker.io", "reg.local:5000" */
    char repository[512];   /* "library/redis", "team/app" */
    char tag[129];          /* "" for a tag-list watch */
    char glob[129];         /* a tag-list watch: the tags it wants ("*" for every tag) */
    uint64_t interval_ms;
};

/* The watch of route r on src, given POLL_INTERVAL (0: off). Returns
 * false when the route is not watched. */
bool watch_key_of(const struct route *r, const struct route_source *src, uint64_t default_interval_ms,
                  struct watch_key *out);

struct registry_watch_opts {
    struct route_table *routes;
    struct registry_client *client;
    const struct logger *log;
    uint64_t default_interval_ms;   /* POLL_INTERVAL; 0: labelled routes only */
    /* A change found: 0 when the webhook path took it, else negative (the
     * forward queue is full: the same change is offered again later). */
    int (*on_push)(void *ud, const struct push_event *ev);
    void *ud;
    /* The engines, to read a container image's RepoDigests (optional). */
    struct docker_watch **engines;
    size_t nengines;
    unsigned max_per_host;          /* requests in flight to one registry; 0: 4 */
};

struct registry_watcher;

struct registry_watcher *registry_watch_new(uv_loop_t *loop, const struct registry_watch_opts *opts);

/* For /routes: the watch of route r as it is on src. */
struct watch_status {
    const struct watch_key *key;
    long long last_check_ms;   /* wall clock; 0: not yet */
    const char *digest;        /* last digest seen; NULL before the first answer */
    const char *error;         /* last check's error; NULL when it succeeded */
    size_t ntags;              /* a tag-list watch: tags known */
};
bool registry_watch_status(struct registry_watcher *rw, const struct route *r, const struct route_source *src,
                           struct watch_status *out);

size_t registry_watch_count(const struct registry_watcher *rw);
unsigned long registry_watch_changes(const struct registry_watcher *rw);

/* Cancels what is in flight; cb (may be NULL) once every handle is closed. */
void registry_watch_close(struct registry_watcher *rw, void (*cb)(void *ud), void *ud);

#endif
