/* engine_update.h - redeploying a labelled container or service with the
 * engine's own machinery (SPEC: Engine updates).
 *
 * Only with ENGINE_UPDATES=1; otherwise a route asking for it is skipped
 * with one warn per object. A Swarm service gets POST /services/<id>/update
 * with its image pinned to <repo>:<tag>@<digest> (its update_config and
 * rollback do the rest; the outcome is followed). A standalone container is
 * pulled, recreated with everything it had, and rolled back when the new
 * one exits at once or turns unhealthy. One update per object at a time;
 * a push during an update queues exactly one follow-up. Never the router's
 * own container. Nothing here blocks the loop.
 *
 * What is installed is the object's own repository at the pushed digest
 * (engine_update_pick.h). A new container carries <prefix>.replaces=<old
 * id>; at start (ENGINE_UPDATES=1) each engine is searched for containers
 * renamed aside ("<name>-old-<id>"), and each such unfinished recreate is
 * finished or undone (engine_update_recover_decide), with one warn. */
#ifndef WR_ENGINE_UPDATE_H
#define WR_ENGINE_UPDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "docker_engine.h"
#include "event.h"
#include "http_client.h"
#include "log.h"
#include "registry_auth.h"

/* An update's end, for whoever tells people (the notifier). */
struct update_outcome {
    const char *engine, *kind, *id, *name;   /* the object; id: the new container after a recreate */
    const char *outcome;                     /* "completed", "rolled_back", "failed", "unchanged" */
    const char *registry, *repository, *tag, *digest;   /* the push it installed (or tried to) */
    const char *error;                       /* in words for rolled_back / failed, else NULL */
};
typedef void (*update_outcome_fn)(void *ud, const struct update_outcome *o);

struct engine_update_opts {
    bool enabled;                          /* ENGINE_UPDATES=1 */
    struct docker_engine *const *engines;  /* one per DOCKER_HOST entry (not owned: the app's, shared
                                            * with the watchers, outlive the updater) */
    size_t nengines;
    const struct logger *log;
    const struct registry_auth *auth;      /* for X-Registry-Auth; may be NULL */
    const char *self_id;                   /* the router's own container id (prefix), or NULL */
    const char *label_prefix;              /* LABEL_PREFIX: an object's <prefix>.tag label; NULL: "webhook-router" */
    uint64_t health_timeout_ms;            /* waiting for "healthy"; 0: 60 s */
    uint64_t service_timeout_ms;           /* following a Swarm update; 0: 10 min */
    bool cleanup;                          /* ENGINE_UPDATE_CLEANUP: remove the old image when unused */
    uint64_t exit_check_ms;                /* a new container still running after this is up; 0: 2 s */
    update_outcome_fn on_outcome;          /* each update's outcome; optional */
    void *on_outcome_ud;
};

/* One labelled object to update (as in struct route_source). */
struct update_target {
    const char *engine;   /* the DOCKER_HOST entry's text */
    const char *kind;     /* "container" or "service" */
    const char *id;
    const char *name;     /* may be NULL */
};

struct engine_updater;

/* The router's own container id (64 hex digits, or 12 from Docker's default
 * hostname), read from /proc/self/mountinfo and /proc/self/cgroup with
 * engine_update_find_container_id; "" outside a container. An update never
 * touches it (engine_update_opts.self_id). */
void engine_update_self_id(char out[65]);

struct engine_updater *engine_updater_new(uv_loop_t *loop, const struct engine_update_opts *opts);
/* Looks on every engine for recreates a previous run did not finish (a
 * container renamed aside, "<name>-old-<id>") and finishes or undoes each
 * (one warn). Only with updates enabled; call once after start. */
void engine_updater_recover(struct engine_updater *u);
/* Updates target to the pushed image of ev (repository, tag, digest,
 * registry are copied). Returns 0, or -EPERM when updates are off (the one
 * warn per object is logged), -ENOENT for an unknown engine. */
int engine_updater_submit(struct engine_updater *u, const struct update_target *target,
                          const struct push_event *ev);

/* Each object's last update, for /routes. */
struct update_status {
    const char *engine, *kind, *id, *name;
    long long finished_ms;    /* wall clock; 0 while none finished */
    const char *outcome;      /* "completed", "rolled_back", "failed", "unchanged", or NULL */
    const char *digest;
    bool running;
};
typedef void (*update_status_fn)(void *ud, const struct update_status *s);
void engine_updater_foreach(const struct engine_updater *u, update_status_fn fn, void *ud);
/* webhook_router_updates_total{kind,outcome} */
typedef void (*update_count_fn)(void *ud, const char *kind, const char *outcome, unsigned long n);
void engine_updater_counts(const struct engine_updater *u, update_count_fn fn, void *ud);

/* Shutdown, first step: no new updates or follow-ups; an update that has
 * not changed anything yet (reading, pulling) or a Swarm service's (the
 * swarm finishes it) is abandoned; a container recreate goes on to a safe
 * point (done, or rolled back), bounded by its stop timeout plus its
 * health wait (plus slack for the API calls). cb (from the loop) when none
 * runs any more. NULL u: cb at once. */
void engine_updater_drain(struct engine_updater *u, void (*cb)(void *ud), void *ud);

/* Stops (updates still in progress are abandoned where they stand, logged);
 * cb (may be NULL) once every handle is closed. */
void engine_updater_close(struct engine_updater *u, void (*cb)(void *ud), void *ud);

#endif
