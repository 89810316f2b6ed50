/* app.h - the loop's context: everything the daemon owns, in one place.
 * There is no other mutable global state. */
#ifndef WR_APP_H
#define WR_APP_H

#include <stdbool.h>
#include <uv.h>
#include "config.h"
#include "dedupe.h"
#include "dns.h"
#include "docker_watch.h"
#include "forward.h"
#include "http_client.h"
#include "http_server.h"
#include "log.h"
#include "routes.h"

struct app {
    uv_loop_t *loop;
    const struct config *cfg;
    struct logger log;
    struct dns *dns;
    struct http_client *http;
    struct route_table *routes;
    struct dedupe *seen;              /* ids of recently forwarded events */
    struct forwarder *fwd;
    struct docker_watch **watchers;   /* one per DOCKER_HOST entry */
    size_t nwatchers;
    struct http_server *server;
    /* Counters for /metrics that belong to the webhook handler. */
    struct webhook_counter {
        const char *format;   /* static: a payload format name, or "none" */
        int status;
        unsigned long n;
    } webhooks[48];
    size_t nwebhooks;
    unsigned long events_forwarded, events_ignored, events_duplicate;
    uv_signal_t sigterm;
    uv_signal_t sigint;
    uv_prepare_t log_flush;           /* writes the batched log lines once per loop turn */
    uv_poll_t log_poll;               /* stdout writable again, while lines wait for it */
    bool log_poll_ready;              /* log_poll initialised (stdout a pipe or socket) */
    bool log_polling;
    /* Webhook intake paused while the forward backlog is deep (app_forward_pressure). */
    uv_timer_t intake_timer;
    bool intake_paused;
    bool intake_armed;                /* false after a pause ran out: until the backlog is low again */
    uint64_t intake_paused_at;
    unsigned long intake_pauses;
    bool stopping;
    int exit_code;
};

/* Builds every part and starts listening / watching. Returns 0 or a negative
 * errno (already logged). */
int app_start(struct app *a, uv_loop_t *loop, const struct config *cfg);
/* Graceful stop: stop accepting, drain forwards, close everything. The loop
 * then runs out and uv_run returns. */
void app_stop(struct app *a);
/* Called by the webhook handler after queuing forwards. When the backlog
 * is deep because the router itself is the bottleneck (forwards are being
 * made as fast as it can), reading more webhooks only grows memory: the
 * listener pauses until the backlog is low again, for at most 50 ms at a
 * time, so a stuck target still ends in 503s rather than a deaf router. */
void app_forward_pressure(struct app *a);
/* Frees what is left after uv_run returned. */
void app_free(struct app *a);

#endif
