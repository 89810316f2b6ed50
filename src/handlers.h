/* handlers.h - the routing layer: which path does what.
 *   POST /webhook, /webhook/<token>  payload -> routes -> forward queue
 *   GET  /health, /ready, /routes, /metrics, /history, /status and /
 *   (all but /health and /ready behind ADMIN_TOKEN when it is set) */
#ifndef WR_HANDLERS_H
#define WR_HANDLERS_H

#include <stddef.h>
#include "http_server.h"

struct deploy;
struct docker_watch;
struct engine_updater;
struct forwarder;
struct intake;
struct logger;
struct notifier;
struct registry_client;
struct registry_watcher;
struct route_table;
struct webhook_ctx;

/* What the endpoints read: the parts they report on, owned by the app (as
 * the webhook handler has its own struct webhook_ctx). Any part may be NULL
 * while it does not exist. */
struct handlers_ctx {
    struct webhook_ctx *webhook;
    struct route_table *routes;
    struct forwarder *fwd;
    struct notifier *notifier;
    const struct intake *intake;
    const struct engine_updater *updater;
    struct registry_client *registry;
    struct registry_watcher *registry_watch;
    const struct logger *log;
    struct docker_watch *const *watchers;   /* one per DOCKER_HOST entry */
    size_t nwatchers;
    struct deploy *deploy;                  /* the delivery history */
    const char *admin_token;                /* ADMIN_TOKEN, or NULL: the endpoints are open */
};

/* An http_handler_fn; ud is a struct handlers_ctx. */
void handlers_dispatch(void *ud, const struct http_request *req, struct http_response *res);
/* An http_head_fn: with WEBHOOK_TOKEN, a webhook POST without the right
 * token is answered 401 from its head, its body never read. */
void handlers_head(void *ud, const struct http_request *req, struct http_response *res);

#endif
