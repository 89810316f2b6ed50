/* deploy.h - the delivery history in the daemon: recording each push's
 * actions, following their outcomes, confirming redeploys from the engines.
 *
 * The pure parts are in src/history/ (the ring, the confirmation rule);
 * this file is the glue: what the webhook handler, the forwarder, the
 * engine updater, the docker watchers and (later) the notifier call, and
 * the one timer that turns an unconfirmed redeploy into `unconfirmed`. */
#ifndef WR_DEPLOY_H
#define WR_DEPLOY_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>
#include "docker_watch.h"
#include "engine_update.h"
#include "event.h"
#include "forward.h"
#include "history.h"
#include "log.h"
#include "routes.h"

struct deploy_opts {
    size_t history_size;          /* HISTORY_SIZE */
    int confirm_secs;             /* DEPLOY_CONFIRM_SECS; 0: no confirmation */
    struct route_table *routes;   /* the objects of a route, what they run */
    const char *label_prefix;
    const struct logger *log;
    /* A redeploy's confirmation settled: deployed (true) or unconfirmed
     * (false); the entry has the push, target_key names the route URL.
     * Optional (the notifier tells the routes' targets). */
    void (*on_settled)(void *ud, const struct history_entry *e, bool deployed);
    void *settled_ud;
};

struct deploy;

struct deploy *deploy_new(uv_loop_t *loop, const struct deploy_opts *opts);
struct history *deploy_history(struct deploy *d);
int deploy_confirm_secs(const struct deploy *d);
/* Stops the timer; cb (may be NULL) once closed. Then deploy_free. */
void deploy_close(struct deploy *d, void (*cb)(void *ud), void *ud);
void deploy_free(struct deploy *d);

/* The webhook path: a redeploy POST of ev to url (the route's URL as in
 * its label, a secret: only its redacted form is kept) is queued. Returns
 * the entry's id, the tag of the POST's watcher (forward_submit_watched
 * with deploy_forward_done). */
uint64_t deploy_record_redeploy(struct deploy *d, const struct push_event *ev, const char *url);
/* A forward_done_fn (ud: the struct deploy, result->tag: the entry): the
 * POST was delivered (confirmation starts) or failed (also when it could
 * not even be queued). */
void deploy_forward_done(void *ud, const struct forward_result *r);

/* An engine update of src to ev's image was submitted. */
void deploy_record_update(struct deploy *d, const struct push_event *ev, const struct route_source *src);
/* engine_update_opts.on_outcome (ud: the struct deploy). */
void deploy_update_outcome(void *ud, const struct update_outcome *o);

/* docker_watch_opts.on_started (ud: the struct deploy). */
void deploy_observed(void *ud, const struct docker_started *s);

/* For the notifier: a notification of ev to target (shown as given: kind,
 * host and fingerprint, never the URL) is queued; then its end. */
uint64_t deploy_record_notify(struct deploy *d, const struct push_event *ev, const char *target,
                              const char *objects);
void deploy_notify_outcome(struct deploy *d, uint64_t id, bool delivered, int status, int attempts,
                           long long duration_ms, const char *error);

/* Wall clock in milliseconds (history times are wall-clock). */
long long deploy_now_ms(void);

#endif
