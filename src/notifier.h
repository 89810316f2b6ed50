/* notifier.h - telling people: outcomes of pushes -> messages -> forwarder.
 *
 * Every outcome of a push that a route with a notify label reached comes
 * here (notifier_outcome): `push` from the webhook path, `delivered` and
 * `failed` from the forwarder's redeploy POSTs (notifier_watch_redeploy),
 * `deployed`, `unconfirmed` and `failed` from the deploy confirmation and
 * engine updates. For each target of the label whose _ON takes that
 * outcome, the outcome joins the message pending for (target, outcome,
 * image) for a short window: the routes and objects a push reached, and
 * pushes coalesced into one redeploy, become one message. Then the
 * message is built (notify_request.h) and sent through the forwarder,
 * which owns timeouts, retries and fairness. Bounded: at most
 * FORWARD_QUEUE_MAX messages pending; past it an outcome is dropped and
 * counted as failed. */
#ifndef WR_NOTIFIER_H
#define WR_NOTIFIER_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>
#include "buf.h"
#include "event.h"
#include "forward.h"
#include "log.h"
#include "notify_target.h"
#include "routes.h"

struct notifier;

/* One outcome of one push for one route. Strings are copied. */
struct notify_outcome {
    enum notify_outcome_kind outcome;
    const struct push_event *ev;
    const char *notify;         /* the route's notify label (names and URLs) */
    bool redeploys;             /* the route has url or update=true: decides the default _ON */
    const char *const *objects; /* container / service names the route reached */
    size_t nobjects;
    const char *error;          /* failed, unconfirmed: in words; else NULL */
    int status;                 /* HTTP status of the redeploy POST, 0 if none */
    int attempts;
    long long duration_ms;
};

/* What the history records of each notification delivery (action notify). */
struct notify_delivery {
    const char *target;         /* display: "discord discord.com #3f9a1c0e" */
    enum notify_kind kind;
    enum notify_outcome_kind outcome;   /* what the message told */
    const char *registry, *repository, *tag, *digest, *event_id, *source, *objects;
    const struct forward_result *result;
};
typedef void (*notify_delivery_fn)(void *ud, const struct notify_delivery *d);

struct notifier_opts {
    const struct notify_config *config;   /* borrowed: lives as long as the notifier */
    int window_ms;                        /* aggregation window */
    size_t max_pending;
    /* History hook: each delivery's end, optional. */
    notify_delivery_fn on_delivery;
    void *on_delivery_ud;
};

struct notifier *notifier_new(uv_loop_t *loop, struct forwarder *fwd, const struct logger *lg,
                              const struct notifier_opts *opts);
/* The entry point of every outcome. */
void notifier_outcome(struct notifier *n, const struct notify_outcome *o);
/* The same for a route and the sources the index gives with it. */
void notifier_route_outcome(struct notifier *n, enum notify_outcome_kind outcome, const struct push_event *ev,
                            const struct route_hit *hit, const struct forward_result *r);

/* An outcome for one object (an engine update: completed -> NO_DEPLOYED,
 * rolled back or failed -> NO_FAILED), told to the notify targets of its
 * routes. Nothing when the object has no notify label. */
void notifier_object_outcome(struct notifier *n, struct route_table *routes, const char *engine, const char *id,
                             enum notify_outcome_kind outcome, const struct push_event *ev, const char *error);

/* A redeploy POST to url for ev reached the routes hits[0..nhits): when
 * their notify targets want to hear how it ends (delivered, failed), fills
 * *out with the watcher to submit it with (forward_submit_watched) and
 * returns true; the watcher must then be told exactly once (also when the
 * submit fails). False: nobody to tell. */
bool notifier_redeploy_watch(struct notifier *n, const char *url, const struct push_event *ev,
                             const struct route_hit *hits, size_t nhits, struct forward_watch *out);

/* The routes' checker of notify label words (routes_set_notify_check). */
int notifier_check_word(void *ud, const char *word, char *err, size_t errlen);
/* Appends the label's targets as a JSON array of display strings. */
void notifier_put_targets(struct notifier *n, struct buf *out, const char *label);

/* `notify-test`: a sample message to the named target, at once; done is
 * told the result of each request. Returns -ENOENT for an unknown name,
 * else the number of requests (telegram: one per chat), each told once,
 * possibly before this returns. */
int notifier_test(struct notifier *n, const char *name, forward_done_fn done, void *ud);

/* Target health for the status page: every target (environment ones
 * first, then label URLs in use), with its last success and failure
 * (wall clock ms, 0: never), consecutive failures and the last error. */
struct notify_target_health {
    const char *name;      /* NULL for a label URL */
    const char *display;
    enum notify_kind kind;
    long long last_ok_ms, last_fail_ms;
    unsigned long consecutive_failures;
    const char *last_error;
};
typedef void (*notify_health_fn)(void *ud, const struct notify_target_health *h);
void notifier_foreach_target(struct notifier *n, notify_health_fn fn, void *ud);

/* /metrics: notifications by kind and delivery outcome (0 delivered, 1 failed). */
unsigned long notifier_count(const struct notifier *n, enum notify_kind kind, int failed);

/* Pending messages go out now (shutdown), before the forwarder drains. */
void notifier_flush(struct notifier *n);
void notifier_close(struct notifier *n, void (*cb)(void *ud), void *ud);
void notifier_free(struct notifier *n);   /* after close completed, or the loop stopped */

#endif
