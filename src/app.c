/* app.c - building, starting and stopping the daemon's parts.
 *
 * The app owns every part and is the loop's only context. Shutdown order
 * matters: stop accepting webhooks, let the forwarder drain what was already
 * accepted (each forward bounded by its timeout) and a running container
 * recreate reach a safe point (engine_updater_drain), then close in stages
 * (close_stage): the HTTP client's users and the listener, then the client
 * and the resolver, then the log's and the signals' handles. When the last
 * handle is closed uv_run returns. */
#include "app.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "handlers.h"

/* Limits of the listener that the SPEC leaves to us. */
#define MAX_HEADER_BYTES (16 * 1024)
#define REQUEST_TIMEOUT_MS (10 * 1000)
#define IDLE_TIMEOUT_MS (60 * 1000)
/* File descriptors kept for everything but client connections: the Docker
 * sockets, forwards (FORWARD_CONCURRENCY more), DNS, the log. */
#define RESERVED_FDS 64
/* Event ids remembered against redelivery: hours of pushes for most hosts. */
#define DEDUPE_IDS 10000
/* The shortest aggregation window of notifications (see notifier.h). */
#define NOTIFY_WINDOW_MIN_MS 500

static void on_forwards_queued(void *ud)
{
    struct app *a = ud;
    if (!a->stopping) intake_pressure(a->intake);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct app *a = h->data;
    LOG(&a->log, LOG_INFO, "shutting down", F_STR("signal", signum == SIGTERM ? "SIGTERM" : "SIGINT"),
        F_INT("queued", forward_queued(a->fwd)), F_INT("in_flight", forward_in_flight(a->fwd)));
    app_stop(a);
}

/* An engine update's outcome, into the delivery history and told to the
 * object's notify targets: completed is deployed, rolled back or failed is
 * failed. */
static void on_update_outcome(void *ud, const struct update_outcome *o)
{
    struct app *a = ud;
    if (a->deploy) deploy_update_outcome(a->deploy, o);
    bool ok = strcmp(o->outcome, "completed") == 0;
    if (!ok && strcmp(o->outcome, "rolled_back") != 0 && strcmp(o->outcome, "failed") != 0) return;
    struct push_event ev = {.format = "update", .registry = o->registry, .repository = o->repository,
                            .tag = o->tag, .digest = o->digest};
    notifier_object_outcome(a->notifier, a->routes, o->engine, o->id, ok ? NO_DEPLOYED : NO_FAILED, &ev, o->error);
}

/* A redeploy confirmed (deployed) or not (unconfirmed): told to the notify
 * targets of the routes whose URL received the POST. */
struct settled_ctx {
    struct notifier *n;
    const struct history_entry *e;
    enum notify_outcome_kind outcome;
    struct push_event ev;
    struct forward_result r;
};

static void settled_route(void *ud, const struct route *r, const struct route_source *const *src, size_t nsrc)
{
    struct settled_ctx *c = ud;
    if (!r->notify || !r->url || hash_str(HASH_INIT, r->url) != c->e->target_key) return;
    struct route_hit hit = {.route = r, .sources = src, .nsources = nsrc};
    notifier_route_outcome(c->n, c->outcome, &c->ev, &hit, &c->r);
}

static void on_redeploy_settled(void *ud, const struct history_entry *e, bool deployed)
{
    struct app *a = ud;
    if (!a->notifier) return;
    struct settled_ctx c = {
        .n = a->notifier,
        .e = e,
        .outcome = deployed ? NO_DEPLOYED : NO_UNCONFIRMED,
        .ev = {.format = e->source, .id = e->event_id[0] ? e->event_id : NULL, .registry = e->registry[0] ? e->registry : NULL,
               .repository = e->repository, .tag = e->tag, .digest = e->digest[0] ? e->digest : NULL},
        .r = {.delivered = true, .status = e->status, .attempts = e->attempts, .duration_ms = e->duration_ms,
              .error = deployed ? NULL : e->error},
    };
    routes_foreach(a->routes, settled_route, &c);
}

/* A notification's delivery, into the delivery history (action notify). */
static void on_notify_delivery(void *ud, const struct notify_delivery *nd)
{
    struct app *a = ud;
    if (!a->deploy) return;
    struct push_event ev = {.format = nd->source, .id = nd->event_id, .registry = nd->registry,
                            .repository = nd->repository, .tag = nd->tag, .digest = nd->digest};
    uint64_t id = deploy_record_notify(a->deploy, &ev, nd->target, nd->objects);
    const struct forward_result *r = nd->result;
    deploy_notify_outcome(a->deploy, id, r->delivered, r->status, r->attempts, r->duration_ms, r->error);
}

static void start_updater(struct app *a)
{
    const struct config *c = a->cfg;
    char self[65];
    engine_update_self_id(self);
    struct engine_update_opts o = {
        .enabled = c->engine_updates,
        .engines = a->engines,
        .nengines = c->nengines,
        .log = &a->log,
        .auth = a->auth,   /* X-Registry-Auth for pulls of private images */
        .self_id = self[0] ? self : NULL,
        .label_prefix = c->label_prefix,
        .health_timeout_ms = (uint64_t)c->engine_update_health_timeout_secs * 1000,
        .on_outcome = on_update_outcome,
        .on_outcome_ud = a,
        .cleanup = c->engine_update_cleanup,
    };
    a->updater = engine_updater_new(a->loop, &o);
    engine_updater_recover(a->updater);
    if (c->engine_updates)
        LOG(&a->log, LOG_INFO, "engine updates on: <prefix>.update=true containers and services are redeployed on a push",
            F_STR("self_id", self[0] ? self : NULL));
}

/* One watcher per DOCKER_HOST entry, as config parsed them (docker_host.h). */
static int on_registry_push(void *ud, const struct push_event *ev)
{
    struct app *a = ud;
    return webhook_inject(&a->webhook, ev);
}

/* The registry watcher follows the route table; with no route watched it
 * only compares a generation number once per loop turn. */
static void start_registry_watch(struct app *a)
{
    struct registry_client_opts ro = {
        .http = a->http,
        .log = &a->log,
        .auth = a->auth,
        .insecure = a->cfg->insecure_registries,
    };
    a->registry = registry_client_new(a->loop, &ro);
    struct registry_watch_opts wo = {
        .routes = a->routes,
        .client = a->registry,
        .log = &a->log,
        .default_interval_ms = a->cfg->poll_interval_ms,
        .on_push = on_registry_push,
        .ud = a,
        .engines = a->watchers,
        .nengines = a->nwatchers,
    };
    a->registry_watch = registry_watch_new(a->loop, &wo);
}

static void start_watchers(struct app *a)
{
    const struct config *c = a->cfg;
    a->watchers = xcalloc(c->nengines, sizeof *a->watchers);
    for (size_t i = 0; i < c->nengines; i++) {
        struct docker_watch_opts o = {
            .engine = a->engines[i],
            .label_prefix = c->label_prefix,
            .cache_ttl_secs = c->cache_ttl_secs,
            .routes = a->routes,
            .log = &a->log,
            /* Container starts are followed only to confirm redeploys. */
            .on_started = c->deploy_confirm_secs > 0 ? deploy_observed : NULL,
            .started_ud = a->deploy,
        };
        struct docker_watch *w = docker_watch_new(a->loop, &o);
        a->watchers[a->nwatchers++] = w;
        docker_watch_start(w);
    }
}

/* The starting line (the settings that differ from their defaults, secrets
 * as "set") and the warnings about the configuration as a whole. */
static void say_starting(struct app *a)
{
    const struct config *cfg = a->cfg;
    struct buf changed;
    buf_init(&changed);
    config_describe_changes(cfg, &changed);
    LOG(&a->log, LOG_INFO, "starting", F_STR("version", WR_VERSION),
        F_STR("listen_addr", cfg->listen_addr), F_INT("listen_port", cfg->listen_port),
        F_STR("docker_host", cfg->docker_host), F_STR("label_prefix", cfg->label_prefix),
        F_STR("settings", buf_cstr(&changed)));
    buf_free(&changed);
    for (size_t i = 0; i < cfg->nunknown; i++)
        /* Set by the operator for the router, yet read by nothing: most
         * likely a typo that silently leaves a default in force. */
        LOG(&a->log, LOG_WARN, "unknown setting ignored (see --help for the names)",
            F_STR("variable", cfg->unknown[i].name), F_STR("did_you_mean", cfg->unknown[i].meant));
    if (!cfg->webhook_token && !cfg->webhook_hmac_secret)
        LOG(&a->log, LOG_WARN,
            "webhook authentication is off: anyone who can reach the port can trigger "
            "redeploys; set WEBHOOK_TOKEN or WEBHOOK_HMAC_SECRET");
    if (!cfg->admin_token)
        LOG(&a->log, LOG_WARN,
            "ADMIN_TOKEN is not set: /status, /history, /routes and /metrics are open to anyone who can reach "
            "the port");

}

/* The resolver and the HTTP client every outgoing call uses. */
static int start_clients(struct app *a)
{
    const struct config *cfg = a->cfg;
    uv_loop_t *loop = a->loop;
    a->dns = dns_new(loop, &a->log);
    a->http = http_client_new(loop, a->dns, &a->log);
    const char *why;
    if (http_client_tls_setup(a->http, cfg->tls_ca_file, cfg->tls_insecure, &why) < 0) {
        LOG(&a->log, LOG_ERROR, "cannot set up TLS", F_STR("tls_ca_file", cfg->tls_ca_file),
            F_STR("error", why));
        return -EINVAL;
    }
    if (cfg->tls_insecure)
        LOG(&a->log, LOG_WARN,
            "TLS_INSECURE=1: certificates of https targets are not verified; anyone on the path "
            "can read the webhook tokens");
    return 0;
}

/* The label map, the engines, the dedupe memories and the registry credentials. */
static int start_state(struct app *a)
{
    const struct config *cfg = a->cfg;
    a->routes = routes_new();
    a->engines = xcalloc(cfg->nengines, sizeof *a->engines);
    for (size_t i = 0; i < cfg->nengines; i++) a->engines[i] = docker_engine_new(a->http, &cfg->engines[i]);
    /* The tags' key is secret and new each start: an id nobody has sent
     * cannot be made to look seen. */
    uint8_t key[DEDUPE_KEY_LEN];
    int rc = uv_random(NULL, NULL, key, sizeof key, 0, NULL);
    if (rc < 0) {
        LOG(&a->log, LOG_ERROR, "no random bytes for the dedupe key", F_STR("error", uv_strerror(rc)));
        return rc;
    }
    a->seen = dedupe_new(DEDUPE_IDS, key);
    a->delivered = dedupe_new(DEDUPE_IDS, key);
    if (cfg->registry_auth_file) {
        char err[256];
        a->auth = registry_auth_load(cfg->registry_auth_file, err, sizeof err);
        if (!a->auth) {
            LOG(&a->log, LOG_ERROR, "cannot use REGISTRY_AUTH_FILE", F_STR("error", err));
            return -EINVAL;
        }
        /* Updates send the credentials to the engine (X-Registry-Auth):
         * over plain tcp:// to another machine, anyone on the path reads them. */
        for (size_t i = 0; cfg->engine_updates && i < cfg->nengines; i++)
            if (docker_host_in_clear(&cfg->engines[i].ep))
                LOG(&a->log, LOG_WARN, "registry credentials go to this engine in clear with each update "
                    "(X-Registry-Auth over plain tcp://): use a unix socket or a loopback proxy",
                    F_STR("engine", cfg->engines[i].text));
    }
    return 0;
}

/* What carries out a plan and tells about it: the history, the forwarder,
 * the notifier, the intake pause and the webhook handler's context. */
static void start_delivery(struct app *a)
{
    const struct config *cfg = a->cfg;
    uv_loop_t *loop = a->loop;
    struct deploy_opts dopts = {
        .history_size = cfg->history_size,
        .confirm_secs = cfg->deploy_confirm_secs,
        .routes = a->routes,
        .label_prefix = cfg->label_prefix,
        .log = &a->log,
        .on_settled = on_redeploy_settled,
        .settled_ud = a,
    };
    a->deploy = deploy_new(loop, &dopts);
    struct forward_opts fo = {
        .timeout_secs = cfg->forward_timeout_secs,
        .retries = cfg->forward_retries,
        .concurrency = cfg->forward_concurrency,
        .per_origin = cfg->forward_origin_concurrency,
        .queue_max = cfg->forward_queue_max,
        .debounce_ms = cfg->debounce_ms,
    };
    a->fwd = forward_new(loop, a->http, &a->log, &fo);
    struct notifier_opts no = {
        .config = &cfg->notify,
        /* Outcomes of one push arrive within milliseconds of each other
         * (the routes' POSTs end together); a window of DEBOUNCE_MS, at
         * least half a second, makes them one message. */
        .window_ms = cfg->debounce_ms > NOTIFY_WINDOW_MIN_MS ? cfg->debounce_ms : NOTIFY_WINDOW_MIN_MS,
        .max_pending = (size_t)cfg->forward_queue_max,
        .on_delivery = on_notify_delivery,
        .on_delivery_ud = a,
    };
    a->notifier = notifier_new(loop, a->fwd, &a->log, &no);
    routes_set_notify_check(a->routes, notifier_check_word, a->notifier);
    for (size_t i = 0; i < cfg->notify.n; i++) {
        const struct notify_target *t = &cfg->notify.targets[i];
        LOG(&a->log, LOG_INFO, "notification target", F_STR("name", t->name), F_STR("target", t->display),
            F_STR("on", t->on ? NULL : "default"));
    }
    a->intake = intake_new(loop, a->fwd, &a->log);
    a->webhook = (struct webhook_ctx){
        .token = cfg->webhook_token,
        .hmac_secret = cfg->webhook_hmac_secret,
        .routes = a->routes,
        .seen = a->seen,
        .delivered = a->delivered,
        .fwd = a->fwd,
        .updater = NULL,
        .deploy = a->deploy,
        .notifier = a->notifier,
        .log = &a->log,
        .queued = on_forwards_queued,
        .queued_ud = a,
    };
}

/* The listener, with a connection cap the open file limit can honour. */
static int start_listener(struct app *a)
{
    const struct config *cfg = a->cfg;
    /* A cap the file descriptor limit cannot honour would turn into accept
     * errors instead of clean 503s: lower it, and say so. */
    size_t max_conns = (size_t)cfg->max_connections;
    struct rlimit rl;
    size_t reserve = RESERVED_FDS + (size_t)cfg->forward_concurrency;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < max_conns + reserve) {
        size_t fit = rl.rlim_cur > reserve + 16 ? (size_t)rl.rlim_cur - reserve : 16;
        LOG(&a->log, LOG_WARN, "MAX_CONNECTIONS lowered to fit the open file limit",
            F_INT("max_connections", cfg->max_connections), F_INT("nofile", rl.rlim_cur), F_INT("now", fit));
        max_conns = fit;
    }
    if (cfg->max_buffered_bytes < cfg->max_body_bytes)
        LOG(&a->log, LOG_WARN, "MAX_BUFFERED_BYTES is below MAX_BODY_BYTES: bodies larger than it always get 503",
            F_INT("max_buffered_bytes", cfg->max_buffered_bytes), F_INT("max_body_bytes", cfg->max_body_bytes));
    struct http_server_opts so = {
        .addr = cfg->listen_addr,
        .port = cfg->listen_port,
        .max_header_bytes = MAX_HEADER_BYTES,
        .max_body_bytes = cfg->max_body_bytes,
        .request_timeout_ms = REQUEST_TIMEOUT_MS,
        .idle_timeout_ms = IDLE_TIMEOUT_MS,
        .max_connections = max_conns,
        .max_buffered_bytes = cfg->max_buffered_bytes,
        .handler = handlers_dispatch,
        .head_handler = handlers_head,
        .ud = &a->ops,
        .log = &a->log,
    };
    a->server = http_server_new(a->loop, &so);
    int rc = http_server_listen(a->server);
    if (rc < 0) {
        LOG(&a->log, LOG_ERROR, "cannot listen", F_STR("listen_addr", cfg->listen_addr),
            F_INT("listen_port", cfg->listen_port), F_STR("error", uv_strerror(rc)));
        return rc;
    }
    intake_attach(a->intake, a->server);
    LOG(&a->log, LOG_INFO, "listening", F_STR("listen_addr", cfg->listen_addr),
        F_INT("listen_port", http_server_port(a->server)));

    return 0;
}

int app_start(struct app *a, uv_loop_t *loop, const struct config *cfg)
{
    memset(a, 0, sizeof *a);
    a->loop = loop;
    a->cfg = cfg;
    logger_init(&a->log, cfg->log_level, cfg->log_format, 1);
    log_batch_start(&a->log);
    /* A log consumer that stops reading must not stop the loop (/health
     * included): stdout becomes non-blocking and lines wait in memory. */
    log_loop_attach(&a->log, loop);
    say_starting(a);
    int rc;
    if ((rc = start_clients(a)) < 0 || (rc = start_state(a)) < 0) return rc;
    start_delivery(a);
    if ((rc = start_listener(a)) < 0) return rc;
    start_updater(a);
    a->webhook.updater = a->updater;
    start_watchers(a);
    start_registry_watch(a);
    /* The endpoints see the parts, not the app; nothing is served before the
     * loop runs, and close_stage closes the server with the parts. */
    a->ops = (struct handlers_ctx){
        .webhook = &a->webhook,
        .routes = a->routes,
        .fwd = a->fwd,
        .notifier = a->notifier,
        .intake = a->intake,
        .updater = a->updater,
        .registry = a->registry,
        .registry_watch = a->registry_watch,
        .log = &a->log,
        .watchers = a->watchers,
        .nwatchers = a->nwatchers,
        .deploy = a->deploy,
        .admin_token = cfg->admin_token,
    };

    uv_signal_init(loop, &a->sigterm);
    uv_signal_init(loop, &a->sigint);
    a->sigterm.data = a;
    a->sigint.data = a;
    uv_signal_start(&a->sigterm, on_signal, SIGTERM);
    uv_signal_start(&a->sigint, on_signal, SIGINT);
    return 0;
}

/* Shutdown closes in stages, each waiting for the close callbacks of the
 * one before: first what uses the HTTP client (the watchers, the registry
 * parts, the updater) and the listener, then the client and DNS under them,
 * then the log's and the signals' handles, so the closing parts' last lines
 * still go out with the loop. a->closing counts the closes not yet called
 * back, plus one while a stage is being started. */
static void close_stage(struct app *a);

static void on_part_closed(void *ud)
{
    struct app *a = ud;
    if (--a->closing == 0) close_stage(a);
}

static void close_stage(struct app *a)
{
    a->closing = 1;
    switch (a->close_stage++) {
    case 0:
        a->closing += 7 + a->nwatchers;
        registry_watch_close(a->registry_watch, on_part_closed, a);
        registry_client_close(a->registry, on_part_closed, a);
        for (size_t i = 0; i < a->nwatchers; i++) docker_watch_close(a->watchers[i], on_part_closed, a);
        engine_updater_close(a->updater, on_part_closed, a);
        deploy_close(a->deploy, on_part_closed, a);
        notifier_close(a->notifier, on_part_closed, a);
        intake_close(a->intake, on_part_closed, a);
        http_server_close(a->server, on_part_closed, a);
        a->registry_watch = NULL;
        a->registry = NULL;
        a->nwatchers = 0;
        a->webhook.updater = a->updater = NULL;
        a->webhook.notifier = NULL;
        a->intake = NULL;
        a->server = NULL;
        break;
    case 1:
        a->closing += 2;
        http_client_close(a->http, on_part_closed, a);
        dns_close(a->dns, on_part_closed, a);
        a->http = NULL;
        a->dns = NULL;
        break;
    case 2:
        log_loop_detach(&a->log);
        if (a->sigterm.data) {
            uv_close((uv_handle_t *)&a->sigterm, NULL);
            uv_close((uv_handle_t *)&a->sigint, NULL);
            a->sigterm.data = NULL;
        }
        return;   /* the last stage: the loop runs out */
    }
    on_part_closed(a);
}

static void on_drained(void *ud)
{
    struct app *a = ud;
    LOG(&a->log, LOG_INFO, "stopped");
    close_stage(a);
}

/* The forwarder and the updater drain side by side; the rest closes when
 * both are done. */
static void on_part_drained(void *ud)
{
    struct app *a = ud;
    if (--a->draining == 0) on_drained(a);
}

void app_stop(struct app *a)
{
    if (a->stopping) return;
    a->stopping = true;
    a->webhook.stopping = true;
    /* Requests being received must complete to be answered. */
    if (a->intake) intake_resume(a->intake);
    if (a->server) http_server_stop(a->server);
    /* Messages waiting for their window go now, to be drained with the rest. */
    notifier_flush(a->notifier);
    /* A container recreate goes on to a safe point (done or rolled back):
     * an app is never left down by a shutdown. */
    a->draining = 2;
    engine_updater_drain(a->updater, on_part_drained, a);
    if (a->fwd) forward_drain(a->fwd, on_part_drained, a);
    else on_part_drained(a);
}

void app_free(struct app *a)
{
    log_batch_free(&a->log);   /* the last lines (within a second), and stdout's flags restored */
    if (a->fwd) forward_free(a->fwd);   /* first: its jobs' watchers tell the notifier */
    notifier_free(a->notifier);
    routes_free(a->routes);
    dedupe_free(a->seen);
    dedupe_free(a->delivered);
    deploy_free(a->deploy);
    registry_auth_free(a->auth);
    free(a->watchers);
    /* Their calls were cancelled when the watchers and the updater closed. */
    for (size_t i = 0; a->engines && i < a->cfg->nengines; i++) docker_engine_free(a->engines[i]);
    free(a->engines);
    memset(a, 0, sizeof *a);
}
