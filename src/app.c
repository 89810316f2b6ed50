/* app.c - building, starting and stopping the daemon's parts.
 *
 * Shutdown order matters: stop accepting webhooks, let the forwarder drain
 * what was already accepted (each forward bounded by its timeout) and a
 * running container recreate reach a safe point (engine_updater_drain), then close
 * the watchers, the HTTP client and the resolver. When the last handle is
 * closed uv_run returns. */
#include "app.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "engine_update_plan.h"
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

static void on_log_writable(uv_poll_t *h, int status, int events);

/* Lines wait only while stdout is full: watch it for room exactly then, so
 * they go out as soon as the consumer reads again, even on an idle loop
 * (retrying from the prepare handle would wait for some other event to
 * wake the loop). No watch otherwise: no wake-ups for nothing. */
static void log_watch(struct app *a)
{
    if (!a->log_poll_ready) return;
    bool want = log_pending(&a->log) > 0;
    if (want && !a->log_polling) a->log_polling = uv_poll_start(&a->log_poll, UV_WRITABLE, on_log_writable) == 0;
    else if (!want && a->log_polling) {
        uv_poll_stop(&a->log_poll);
        a->log_polling = false;
    }
}

static void on_log_writable(uv_poll_t *h, int status, int events)
{
    (void)status;   /* an error shows as a failed write: log_flush counts the loss */
    (void)events;
    struct app *a = h->data;
    log_flush(&a->log);
    log_watch(a);
}

/* Runs before the loop waits for I/O: the lines of this turn go out in one write. */
static void on_log_flush(uv_prepare_t *h)
{
    struct app *a = h->data;
    log_flush(&a->log);
    log_watch(a);
}

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

/* The router's own container id, so that it never recreates itself:
 * /proc/self/mountinfo names the engine's containers/<id>/ directory (its
 * hostname and resolv.conf mounts), cgroup v1 names it in
 * /proc/self/cgroup; failing both, Docker's default hostname is the short
 * id. Empty outside a container. */
static void find_self_id(char out[65])
{
    static const char *const files[] = {"/proc/self/mountinfo", "/proc/self/cgroup"};
    out[0] = '\0';
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        FILE *f = fopen(files[i], "r");
        if (!f) continue;
        struct buf b;
        buf_init(&b);
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && b.len < 4 * 1024 * 1024) buf_append(&b, chunk, n);
        fclose(f);
        bool found = b.len && engine_update_find_container_id(buf_cstr(&b), out);
        buf_free(&b);
        if (found) return;
    }
    const char *h = getenv("HOSTNAME");
    if (h && strlen(h) == 12 && strspn(h, "0123456789abcdef") == 12) snprintf(out, 65, "%s", h);
}

static void start_updater(struct app *a)
{
    const struct config *c = a->cfg;
    char self[65];
    find_self_id(self);
    struct engine_update_opts o = {
        .enabled = c->engine_updates,
        .engines = c->engines,
        .nengines = c->nengines,
        .http = a->http,
        .log = &a->log,
        .auth = a->auth,   /* X-Registry-Auth for pulls of private images */
        .self_id = self[0] ? self : NULL,
        .label_prefix = c->label_prefix,
        .health_timeout_ms = (uint64_t)c->engine_update_health_timeout_secs * 1000,
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
            .engine = &c->engines[i],
            .label_prefix = c->label_prefix,
            .cache_ttl_secs = c->cache_ttl_secs,
            .routes = a->routes,
            .http = a->http,
            .log = &a->log,
        };
        struct docker_watch *w = docker_watch_new(a->loop, &o);
        a->watchers[a->nwatchers++] = w;
        docker_watch_start(w);
    }
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
    if (log_nonblocking(&a->log) && uv_poll_init(loop, &a->log_poll, a->log.fd) == 0) {
        a->log_poll.data = a;
        a->log_poll_ready = true;
    }
    uv_prepare_init(loop, &a->log_flush);
    a->log_flush.data = a;
    uv_prepare_start(&a->log_flush, on_log_flush);

    LOG(&a->log, LOG_INFO, "starting", F_STR("version", WR_VERSION),
        F_STR("listen_addr", cfg->listen_addr), F_INT("listen_port", cfg->listen_port),
        F_STR("docker_host", cfg->docker_host), F_STR("label_prefix", cfg->label_prefix));
    if (!cfg->webhook_token && !cfg->webhook_hmac_secret)
        LOG(&a->log, LOG_WARN,
            "webhook authentication is off: anyone who can reach the port can trigger "
            "redeploys; set WEBHOOK_TOKEN or WEBHOOK_HMAC_SECRET");

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
    a->routes = routes_new();
    a->seen = dedupe_new(DEDUPE_IDS);
    a->delivered = dedupe_new(DEDUPE_IDS);
    if (cfg->registry_auth_file) {
        char err[256];
        a->auth = registry_auth_load(cfg->registry_auth_file, err, sizeof err);
        if (!a->auth) {
            LOG(&a->log, LOG_ERROR, "cannot use REGISTRY_AUTH_FILE", F_STR("error", err));
            return -EINVAL;
        }
    }
    struct forward_opts fo = {
        .timeout_secs = cfg->forward_timeout_secs,
        .retries = cfg->forward_retries,
        .concurrency = cfg->forward_concurrency,
        .per_origin = cfg->forward_origin_concurrency,
        .queue_max = cfg->forward_queue_max,
        .debounce_ms = cfg->debounce_ms,
    };
    a->fwd = forward_new(loop, a->http, &a->log, &fo);
    a->intake = intake_new(loop, a->fwd, &a->log);
    a->webhook = (struct webhook_ctx){
        .token = cfg->webhook_token,
        .hmac_secret = cfg->webhook_hmac_secret,
        .routes = a->routes,
        .seen = a->seen,
        .delivered = a->delivered,
        .fwd = a->fwd,
        .updater = NULL,
        .log = &a->log,
        .queued = on_forwards_queued,
        .queued_ud = a,
    };

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
    a->server = http_server_new(loop, &so);
    int rc = http_server_listen(a->server);
    if (rc < 0) {
        LOG(&a->log, LOG_ERROR, "cannot listen", F_STR("listen_addr", cfg->listen_addr),
            F_INT("listen_port", cfg->listen_port), F_STR("error", uv_strerror(rc)));
        return rc;
    }
    intake_attach(a->intake, a->server);
    LOG(&a->log, LOG_INFO, "listening", F_STR("listen_addr", cfg->listen_addr),
        F_INT("listen_port", http_server_port(a->server)));

    start_updater(a);
    a->webhook.updater = a->updater;
    start_watchers(a);
    start_registry_watch(a);
    /* The endpoints see the parts, not the app; nothing is served before the
     * loop runs, and close_rest closes the server with the parts. */
    a->ops = (struct handlers_ctx){
        .webhook = &a->webhook,
        .routes = a->routes,
        .fwd = a->fwd,
        .intake = a->intake,
        .updater = a->updater,
        .registry = a->registry,
        .registry_watch = a->registry_watch,
        .log = &a->log,
        .watchers = a->watchers,
        .nwatchers = a->nwatchers,
    };

    uv_signal_init(loop, &a->sigterm);
    uv_signal_init(loop, &a->sigint);
    a->sigterm.data = a;
    a->sigint.data = a;
    uv_signal_start(&a->sigterm, on_signal, SIGTERM);
    uv_signal_start(&a->sigint, on_signal, SIGINT);
    return 0;
}

static void close_rest(struct app *a)
{
    registry_watch_close(a->registry_watch, NULL, NULL);
    a->registry_watch = NULL;
    registry_client_close(a->registry, NULL, NULL);
    a->registry = NULL;
    for (size_t i = 0; i < a->nwatchers; i++) docker_watch_close(a->watchers[i], NULL, NULL);
    a->nwatchers = 0;
    a->webhook.updater = NULL;
    if (a->updater) engine_updater_close(a->updater, NULL, NULL);
    a->updater = NULL;
    if (a->intake) intake_close(a->intake);
    a->intake = NULL;
    if (a->server) http_server_close(a->server, NULL, NULL);
    a->server = NULL;
    if (a->http) http_client_close(a->http, NULL, NULL);
    a->http = NULL;
    if (a->dns) dns_close(a->dns, NULL, NULL);
    a->dns = NULL;
    if (a->log_flush.data) {
        uv_close((uv_handle_t *)&a->log_flush, NULL);
        a->log_flush.data = NULL;
    }
    if (a->log_poll_ready) {
        uv_close((uv_handle_t *)&a->log_poll, NULL);
        a->log_poll_ready = false;
        a->log_polling = false;
    }
    if (uv_is_active((uv_handle_t *)&a->sigterm) || a->sigterm.data) {
        uv_close((uv_handle_t *)&a->sigterm, NULL);
        uv_close((uv_handle_t *)&a->sigint, NULL);
        a->sigterm.data = NULL;
    }
}

static void on_drained(void *ud)
{
    struct app *a = ud;
    LOG(&a->log, LOG_INFO, "stopped");
    close_rest(a);
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
    if (a->fwd) forward_free(a->fwd);
    routes_free(a->routes);
    dedupe_free(a->seen);
    dedupe_free(a->delivered);
    registry_auth_free(a->auth);
    free(a->watchers);
    memset(a, 0, sizeof *a);
}
