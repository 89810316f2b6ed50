/* engine_job.h - inside the engine updater (src/update only, not for other
 * folders): the objects, the job and the engine calls that engine_update.c
 * (jobs, services, the public calls) and engine_container.c (the container
 * recreate, its rollback, and the recovery of unfinished ones) share. A job
 * is a chain of engine API calls, each callback (a step_fn) starting the
 * next. */
#ifndef WR_ENGINE_JOB_H
#define WR_ENGINE_JOB_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "buf.h"
#include "engine_update.h"
#include "engine_update_pick.h"
#include "engine_update_plan.h"

#define CALL_TIMEOUT_MS 60000           /* one ordinary API call */
#define PULL_TIMEOUT_MS (30 * 60000)    /* a pull, start to end */
#define POLL_MS 500
#define DEFAULT_STOP_SECS 10
#define CAUSE_LEN 256
#define RB_RETRY_MS 60000               /* rollback steps retried while the engine is away */
#define RB_BACKOFF_MS 500
#define RB_BACKOFF_MAX_MS 5000

struct engine {
    struct docker_engine *de;    /* the app's, shared with the watcher: endpoint, API version */
    struct job *scan;            /* the start-up look for unfinished recreates, or NULL */
};

struct job;

struct object {
    char *engine, *kind, *id, *name;
    bool warned;                 /* the ENGINE_UPDATES=0 (or own container) warn was given */
    bool recover;                /* its next job finishes or undoes an unfinished recreate */
    struct job *job;             /* running, or NULL */
    bool has_next;               /* one follow-up queued */
    char *next_registry, *next_repository, *next_tag, *next_digest;
    long long finished_ms;
    const char *outcome;         /* static */
    char *digest;
    struct object *next;
};

struct counter {
    const char *kind, *outcome;  /* static */
    unsigned long n;
    struct counter *next;
};

typedef void (*step_fn)(struct job *j, int err, int status, const char *body, size_t len);

struct job {
    struct engine_updater *u;
    struct object *obj;
    struct engine *eng;
    char *registry, *repository, *tag, *digest;
    char *ref;                   /* <repo>:<tag>: the push's until the object is read, then
                                  * the object's own repository at the pushed tag */
    struct engine_pick pick;     /* what is installed (engine_update_pick) */
    step_fn next;
    struct http_call *call;
    char cause[CAUSE_LEN];
    uv_timer_t timer;
    void (*on_timer)(struct job *j);
    uint64_t started, phase_started, deadline;
    /* container */
    json_t *inspect;
    char *old_id, *new_id, *name, *aside;
    char *new_image_id;
    json_t *old_image_config;
    json_t *new_image_health;    /* the pulled image's Config.Healthcheck */
    uint64_t health_wait_ms;     /* engine_update_health_wait_ms of the check in force */
    bool was_running, has_health;
    struct engine_create_plan plan;
    size_t connect_i;
    long long pull_ms, create_ms, stop_ms, start_ms, health_ms;
    char *why;                   /* the failure being rolled back */
    json_t *restart_policy;      /* the old container's HostConfig.RestartPolicy */
    bool policy_changed;         /* the old one's policy is "no" for now */
    bool changed;                /* the old container was touched (renamed aside): drain waits */
    bool renamed_back;
    bool recovering;             /* an unfinished recreate found at start-up */
    uint64_t rb_deadline, rb_backoff;
    struct buf rb_notes;         /* rollback steps that failed for good */
    long long old_image_size;
    bool streaming;              /* the call being made is the pull */
    bool with_auth;              /* the call being made sends X-Registry-Auth */
    char *auth_header;           /* registry_auth_header for the pushed registry, or NULL */
    struct buf pull_lines;       /* pull progress not yet split into lines */
    char *pull_error;
    /* service */
    json_t *service;
    unsigned conflicts;
    char *prior_update;          /* UpdateStatus.StartedAt before our update */
    char s_what[64];             /* a failed service update: "UpdateStatus <state>" */
    const char *s_outcome;       /* static */
    bool done;
};

struct engine_updater {
    uv_loop_t *loop;
    bool enabled;
    struct engine *engines;
    size_t nengines;
    const struct logger *log;
    const struct registry_auth *auth;
    char *self_id;
    char *tag_label;             /* "<prefix>.tag" */
    char *replaces_label;        /* "<prefix>.replaces": on a new container, the id of the one it replaces */
    bool cleanup;                /* ENGINE_UPDATE_CLEANUP */
    bool draining;
    uv_timer_t drain_timer;
    uint64_t drain_by;
    void (*drained_cb)(void *ud);
    void *drained_ud;
    uint64_t health_ms, service_ms, exit_check_ms;
    update_outcome_fn on_outcome;   /* the history's and the notifier's; optional */
    void *on_outcome_ud;
    struct object *objects;
    struct counter *counters;
    int open_handles;
    bool closing;
    void (*closed_cb)(void *ud);
    void *closed_ud;
};

static inline const char *str(json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static inline void set_str(char **slot, const char *v)
{
    free(*slot);
    *slot = xstrdup_or_null(v);
}

static inline long long since(const struct job *j, uint64_t t)
{
    return (long long)(uv_now(j->u->loop) - t);
}

/* The engine's own words for a failed call: its {"message"} when it sent
 * one, else the client's cause or the status. */
void eu_describe(const struct job *j, int err, int status, const char *body, size_t len, char *out, size_t n);
/* An engine call; path is relative to the API version ("/containers/x/json");
 * body (may be NULL) is sent as JSON; next gets the answer. */
void eu_call(struct job *j, const char *method, const char *path, json_t *body, uint64_t timeout_ms, step_fn next);
/* eu_call with the path formatted: "/containers/%s/start", id. */
void eu_call_at(struct job *j, const char *method, json_t *body, uint64_t timeout_ms, step_fn next, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* One line of a pull's progress stream: an "error" (or an error answer's
 * "message") becomes j->pull_error. */
void eu_scan_pull_line(struct job *j, const char *line, size_t len);
/* fn(j) after ms, on the job's timer. */
void eu_after(struct job *j, uint64_t ms, void (*fn)(struct job *j));
/* The job is over: outcome (static; NULL: none to record) recorded and
 * counted, the follow-up (if any) started. */
void eu_finish(struct job *j, const char *outcome);
/* What the push installs on this object (engine_update_pick), into j->pick
 * and j->ref. 0: go on; otherwise the job is finished (1 skipped, -EINVAL
 * failed). */
int eu_pick_own(struct job *j, const char *own_image, json_t *labels);

/* engine_container.c: a container's update, and the finishing or undoing of
 * an unfinished recreate found at start-up (j->recovering). */
void engine_container_begin(struct job *j);
void engine_container_recover(struct job *j);

#endif
