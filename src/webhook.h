/* webhook.h - the webhook handler: payload -> push events -> route lookup
 * -> forward queue.
 *
 * It sees only what it needs (struct webhook_ctx): the auth settings, the
 * route table, the dedupe memories, the forwarder, the updater, the logger,
 * and its own counters. The decisions are a pure plan (webhook_plan_make),
 * tested without sockets (test_webhook.c); webhook_handle turns the plan
 * into forwards, update submissions and the 202 summary. The registry
 * watcher hands its changes to the same plan. It answers before any forward happens; from the 202 on,
 * delivery is the forwarder's job. */
#ifndef WR_WEBHOOK_H
#define WR_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include "dedupe.h"
#include "forward.h"
#include "http_server.h"
#include "log.h"
#include "payload.h"
#include "routes.h"

/* What /metrics reports of the webhook endpoint. */
struct webhook_counts {
    struct webhook_counter {
        const char *format;   /* static: a payload format name, "unknown" or "none" */
        int status;
        unsigned long n;
    } by_status[48];
    size_t n;
    unsigned long forwarded, ignored, duplicate;   /* events by decision */
    unsigned long updates;                         /* engine updates submitted */
};

struct engine_updater;
struct deploy;
struct notifier;

struct webhook_ctx {
    const char *token;                /* WEBHOOK_TOKEN, or NULL */
    const char *hmac_secret;          /* WEBHOOK_HMAC_SECRET, or NULL */
    struct route_table *routes;
    struct dedupe *seen;              /* ids of recently forwarded events */
    /* Per route, the digests already delivered: one digest redeploys a
     * route once, whether a webhook or a registry poll saw it first.
     * Optional. */
    struct dedupe *delivered;
    struct forwarder *fwd;
    struct engine_updater *updater;   /* <prefix>.update=true routes; NULL: none */
    struct deploy *deploy;            /* the delivery history; NULL: none kept */
    struct notifier *notifier;        /* <prefix>.notify routes; NULL: none */
    const struct logger *log;
    bool stopping;                    /* shutting down: 503 for anything to forward */
    /* Called after forwards were queued (the intake may pause); optional. */
    void (*queued)(void *ud);
    void *queued_ud;
    struct webhook_counts counts;
};

enum webhook_decision { WEBHOOK_IGNORED, WEBHOOK_DUPLICATE, WEBHOOK_NO_ROUTE, WEBHOOK_FORWARD };

/* Per event of a payload: its decision, and for WEBHOOK_FORWARD its
 * targets targets[first[i]] .. targets[first[i + 1] - 1] and the sources
 * to update updates[ufirst[i]] .. updates[ufirst[i + 1] - 1]. An event
 * whose routes only ask for updates is WEBHOOK_FORWARD with no target. */
struct webhook_plan {
    enum webhook_decision *decision;
    size_t *first;
    const char **targets;    /* URLs owned by the route table: valid until it changes */
    uint64_t *target_tags;   /* each target's delivered key, as a dedupe tag (0: none) */
    size_t ntargets;
    size_t *ufirst;
    const struct route_source **updates;   /* owned by the route table too */
    size_t nupdates;
    /* The matching routes with a notify label: hits[hfirst[i]] ..
     * hits[hfirst[i + 1] - 1] (an event with only these is WEBHOOK_FORWARD
     * too: a notify-only route tells, and redeploys nothing). */
    size_t *hfirst;
    struct route_hit *hits;
    uint64_t *hit_tags;      /* each notify-only hit's told key, as a dedupe tag (0: none) */
    size_t nhits;
    uint64_t *id_tag;        /* each event id's dedupe tag (0: no id): hashed once */
    /* A request's few events need no allocation (most carry one or two). */
    enum webhook_decision small_decision[8];
    uint64_t small_id_tag[8];
    size_t small_first[9];
    size_t small_ufirst[9];
    size_t small_hfirst[9];
    const char *small_targets[8];
    uint64_t small_target_tags[8];
};

/* Decides every event: ignored by its parser, a redelivery (seen before,
 * or earlier in the same payload; or, per route, a digest that route was
 * already sent: delivered may be NULL), no route, or forward to its
 * targets. Reads, changes nothing. */
void webhook_plan_make(struct route_table *routes, const struct dedupe *seen, const struct dedupe *delivered,
                       const struct payload *p, struct webhook_plan *plan);
void webhook_plan_free(struct webhook_plan *plan);

/* /webhook/<token> exists only with a token configured. */
bool webhook_token_path_ok(const struct webhook_ctx *w, const char *token);
/* The head stage (headers complete, body unread): with a token configured
 * a missing or wrong one is answered 401 here. Leaves res alone otherwise. */
void webhook_head(struct webhook_ctx *w, const struct http_request *req, const char *path_token,
                  struct http_response *res);
/* An event from elsewhere (the registry watcher's "poll" pushes) down the
 * same path from the plan on. Returns 0 when it was decided (forwarded,
 * duplicate or no route), -EAGAIN when the forward queue cannot take it
 * now (nothing was done: offer it again later). */
int webhook_inject(struct webhook_ctx *w, const struct push_event *ev);

/* POST /webhook[/<token>]: auth, parse, plan, queue, answer; counts it. */
void webhook_handle(struct webhook_ctx *w, const struct http_request *req, const char *path_token,
                    struct http_response *res);

#endif
