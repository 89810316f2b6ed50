/* app.h - the loop's context: everything the daemon owns, in one place.
 * There is no other mutable global state. */
#ifndef WR_APP_H
#define WR_APP_H

#include <stdbool.h>
#include <uv.h>
#include "config.h"
#include "dedupe.h"
#include "deploy.h"
#include "dns.h"
#include "docker_watch.h"
#include "engine_update.h"
#include "forward.h"
#include "handlers.h"
#include "http_client.h"
#include "http_server.h"
#include "intake.h"
#include "log.h"
#include "notifier.h"
#include "registry.h"
#include "registry_auth.h"
#include "registry_watch.h"
#include "routes.h"
#include "webhook.h"

struct app {
    uv_loop_t *loop;
    const struct config *cfg;
    struct logger log;
    struct dns *dns;
    struct http_client *http;
    struct route_table *routes;
    struct dedupe *seen;              /* ids of recently forwarded events */
    struct forwarder *fwd;
    struct notifier *notifier;        /* <prefix>.notify routes and NOTIFY_* targets */
    struct engine_updater *updater;   /* <prefix>.update=true routes (ENGINE_UPDATES) */
    struct docker_engine **engines;   /* one per DOCKER_HOST entry, shared by watchers and updater */
    struct docker_watch **watchers;   /* one per DOCKER_HOST entry */
    size_t nwatchers;
    struct http_server *server;
    struct webhook_ctx webhook;       /* the webhook handler's own context and counters */
    struct handlers_ctx ops;          /* what the operational endpoints read */
    struct intake *intake;            /* pauses the listener on a deep forward backlog */
    struct dedupe *delivered;         /* per route, the digests it was sent */
    struct registry_auth *auth;       /* REGISTRY_AUTH_FILE; NULL: anonymous */
    struct registry_client *registry;
    struct registry_watcher *registry_watch;
    struct deploy *deploy;            /* the delivery history and deploy confirmation */
    uv_signal_t sigterm;
    uv_signal_t sigint;
    bool stopping;
    int close_stage;                  /* the next stage of close_stage (app.c) */
    size_t closing;                   /* closes of the current stage not yet called back */
    int draining;                     /* parts still draining at shutdown (forwarder, updater) */
    int exit_code;
};

/* Builds every part and starts listening / watching. Returns 0 or a negative
 * errno (already logged). */
int app_start(struct app *a, uv_loop_t *loop, const struct config *cfg);
/* Graceful stop: stop accepting, drain forwards, close everything. The loop
 * then runs out and uv_run returns. */
void app_stop(struct app *a);
/* Frees what is left after uv_run returned. */
void app_free(struct app *a);

#endif
