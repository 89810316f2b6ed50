/* handlers.c - the routing layer: paths to handlers.
 *
 * POST /webhook goes to the webhook handler (webhook.c), which sees only
 * its own narrow context; the operational endpoints (/health, /ready,
 * /routes, /metrics) read theirs, struct handlers_ctx: the parts they report
 * on, never the app that owns them. */
#include "handlers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "deploy.h"
#include "docker_watch.h"
#include "engine_update.h"
#include "forward.h"
#include "registry.h"
#include "registry_watch.h"
#include "routes.h"
#include "webhook.h"
#include "intake.h"
#include "json.h"
#include "metrics.h"
#include "notifier.h"
#include "url.h"
#include "status_page.h"

static void method_not_allowed(struct http_response *res, const char *allow)
{
    http_response_error(res, 405, "method not allowed");
    buf_printf(&res->headers, "Allow: %s\r\n", allow);
}

static void handle_health(struct handlers_ctx *a, const struct http_request *req, struct http_response *res)
{
    (void)req;
    (void)a;
    res->status = 200;
    buf_puts(&res->body, "{\"status\":\"ok\"}");
}

static void handle_ready(struct handlers_ctx *a, const struct http_request *req, struct http_response *res)
{
    (void)req;
    bool ready = a->nwatchers > 0;
    const char *reason = NULL;
    struct buf engines;
    buf_init(&engines);
    for (size_t i = 0; i < a->nwatchers; i++) {
        struct docker_watch *w = a->watchers[i];
        int first = 1;
        buf_puts(&engines, i ? ",{" : "{");
        json_put_member(&engines, "engine", docker_watch_host(w), &first);
        json_put_member(&engines, "state", docker_watch_state(w), &first);
        json_put_key(&engines, "synced", &first);
        buf_puts(&engines, docker_watch_synced(w) ? "true" : "false");
        if (docker_watch_last_error(w)) {
            json_put_member(&engines, "error", docker_watch_last_error(w), &first);
        }
        buf_putc(&engines, '}');
        if (!docker_watch_synced(w)) {
            ready = false;
            if (!reason) reason = docker_watch_last_error(w);
        }
    }
    res->status = ready ? 200 : 503;
    int first = 1;
    buf_putc(&res->body, '{');
    json_put_member(&res->body, "status", ready ? "ready" : "not ready", &first);
    if (!ready) {
        char why[512];
        snprintf(why, sizeof why, "docker not synced yet%s%s", reason ? ": " : "",
                 reason ? reason : "");
        json_put_member(&res->body, "reason", why, &first);
    }
    json_put_key(&res->body, "docker", &first);
    buf_putc(&res->body, '[');
    buf_append(&res->body, engines.data, engines.len);
    buf_puts(&res->body, "]}");
    buf_free(&engines);
}

struct routes_out {
    struct buf *b;
    size_t n;
    struct registry_watcher *rw;
    struct notifier *notifier;
};

/* The route's registry watch (as seen on its first source that has one). */
static void put_watch(struct buf *b, struct registry_watcher *rw, const struct route *r,
                      const struct route_source *const *src, size_t nsrc, int *first)
{
    struct watch_status st;
    size_t i = 0;
    while (i < nsrc && !registry_watch_status(rw, r, src[i], &st)) i++;
    if (i == nsrc) return;
    int f = 1;
    json_put_key(b, "watch", first);
    buf_putc(b, '{');
    json_put_member(b, "registry", st.key->host, &f);
    json_put_member(b, "repository", st.key->repository, &f);
    json_put_key(b, st.key->tag[0] ? "tag" : "tags", &f);
    json_put_str(b, st.key->tag[0] ? st.key->tag : st.key->glob);
    json_put_key(b, "interval_s", &f);
    buf_put_uint(b, st.key->interval_ms / 1000);
    log_put_time_member(b, "last_check", st.last_check_ms, &f);
    json_put_member(b, "last_digest", st.digest, &f);
    if (!st.key->tag[0]) {
        json_put_key(b, "tags_known", &f);
        buf_put_uint(b, st.ntags);
    }
    json_put_member(b, "error", st.error, &f);
    buf_putc(b, '}');
}

static void put_route(void *ud, const struct route *r, const struct route_source *const *src, size_t nsrc)
{
    struct routes_out *o = ud;
    struct buf *b = o->b;
    int first = 1;
    buf_puts(b, o->n++ ? ",{" : "{");
    json_put_member(b, "image", r->image, &first);
    json_put_member(b, "registry", r->ref.host[0] ? r->ref.host : NULL, &first);
    json_put_member(b, "repository", r->ref.path, &first);
    json_put_member(b, "tag", r->tag_glob ? r->tag_glob : "*", &first);
    /* The URL's token is the webhook's secret: only its redacted form. */
    struct buf red;
    buf_init(&red);
    if (r->url) url_redact(&red, r->url);
    json_put_member(b, "url", r->url ? buf_cstr(&red) : NULL, &first);
    buf_free(&red);
    json_put_key(b, "update", &first);
    buf_puts(b, r->update ? "true" : "false");
    if (r->notify) {
        /* Targets as kind, host and fingerprint: their URLs and tokens are secrets. */
        json_put_key(b, "notify", &first);
        if (o->notifier) notifier_put_targets(o->notifier, b, r->notify);
        else buf_puts(b, "[]");
    }
    json_put_key(b, "sources", &first);
    buf_putc(b, '[');
    for (size_t i = 0; i < nsrc; i++) {
        int f2 = 1;
        buf_puts(b, i ? ",{" : "{");
        json_put_member(b, "kind", src[i]->kind, &f2);
        json_put_member(b, "name", src[i]->name, &f2);
        json_put_member(b, "id", src[i]->id, &f2);
        json_put_member(b, "stack", src[i]->stack, &f2);
        json_put_member(b, "engine", src[i]->engine, &f2);
        buf_putc(b, '}');
    }
    buf_putc(b, ']');
    put_watch(b, o->rw, r, src, nsrc, &first);
    buf_putc(b, '}');
}

/* Each object's last engine update. */
static void put_update(void *ud, const struct update_status *s)
{
    struct routes_out *o = ud;
    struct buf *b = o->b;
    int first = 1;
    buf_puts(b, o->n++ ? ",{" : "{");
    json_put_members(b, (const char *const[]){"engine", s->engine, "kind", s->kind, "name", s->name, "id", s->id,
                                              NULL},
                     &first);
    json_put_key(b, "running", &first);
    buf_puts(b, s->running ? "true" : "false");
    json_put_key(b, "finished_ms", &first);
    if (s->finished_ms) buf_put_int(b, s->finished_ms);
    else buf_puts(b, "null");
    json_put_member(b, "outcome", s->outcome, &first);
    json_put_member(b, "digest", s->digest, &first);
    buf_putc(b, '}');
}

/* A container or service whose labels gave no route, and why. */
static void put_ignored(void *ud, const struct route_source *src, const char *reason)
{
    struct routes_out *o = ud;
    struct buf *b = o->b;
    int first = 1;
    buf_puts(b, o->n++ ? ",{" : "{");
    json_put_members(b, (const char *const[]){"kind", src->kind, "name", src->name, "id", src->id, "stack",
                                              src->stack, "engine", src->engine, "reason", reason, NULL},
                     &first);
    buf_putc(b, '}');
}

static void handle_routes(struct handlers_ctx *a, const struct http_request *req, struct http_response *res)
{
    (void)req;
    struct routes_out o = {.b = &res->body, .rw = a->registry_watch, .notifier = a->notifier};
    buf_puts(&res->body, "{\"routes\":[");
    routes_foreach(a->routes, put_route, &o);
    buf_printf(&res->body, "],\"count\":%zu", o.n);
    struct routes_out u = {.b = &res->body};
    buf_puts(&res->body, ",\"updates\":[");
    if (a->updater) engine_updater_foreach(a->updater, put_update, &u);
    struct routes_out ig = {.b = &res->body};
    buf_puts(&res->body, "],\"ignored\":[");
    routes_foreach_ignored(a->routes, put_ignored, &ig);
    buf_puts(&res->body, "]}");
    res->status = 200;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The value of name in a query string, percent-decoded into out; false if absent. */
static bool query_param(const char *query, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    for (const char *p = query; p && *p;) {
        const char *end = strchr(p, '&');
        if (!end) end = p + strlen(p);
        if ((size_t)(end - p) > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
            size_t k = 0;
            for (const char *q = p + nl + 1; q < end && k + 1 < n; q++) {
                int hi, lo;
                if (*q == '%' && q + 2 < end && (hi = hex_digit(q[1])) >= 0 && (lo = hex_digit(q[2])) >= 0) {
                    out[k++] = (char)(hi * 16 + lo);
                    q += 2;
                } else {
                    out[k++] = *q == '+' ? ' ' : *q;
                }
            }
            out[k] = '\0';
            return true;
        }
        p = *end ? end + 1 : end;
    }
    return false;
}

static void handle_history(struct handlers_ctx *a, const struct http_request *req, struct http_response *res)
{
    struct history *h = a->deploy ? deploy_history(a->deploy) : NULL;
    char v[256], repo[256];
    struct history_filter f = {.limit = 100, .outcome = HISTORY_NOUTCOMES};
    if (query_param(req->query, "limit", v, sizeof v)) {
        char *end;
        long long n = strtoll(v, &end, 10);
        if (!v[0] || *end || n < 1) {
            http_response_error(res, 400, "limit: a positive number");
            return;
        }
        f.limit = (size_t)n;
    }
    if (query_param(req->query, "repository", repo, sizeof repo)) f.repository = repo;
    if (query_param(req->query, "outcome", v, sizeof v)) {
        f.outcome = history_outcome_parse(v);
        if (f.outcome == HISTORY_NOUTCOMES) {
            http_response_error(res, 400,
                                "outcome: queued, delivered, deployed, unconfirmed, failed or unchanged");
            return;
        }
    }
    buf_puts(&res->body, "{\"entries\":[");
    if (h) {
        size_t max = history_size(h) < f.limit ? history_size(h) : f.limit;
        const struct history_entry **e = xcalloc(max ? max : 1, sizeof *e);
        size_t n = history_query(h, &f, e, max);
        for (size_t i = 0; i < n; i++) {
            if (i) buf_putc(&res->body, ',');
            history_entry_json(&res->body, e[i]);
        }
        free(e);
    }
    buf_puts(&res->body, "]}");
    res->status = 200;
}

static void handle_status(struct handlers_ctx *a, const struct http_request *req, struct http_response *res)
{
    (void)req;
    status_page_render(&res->body, a, deploy_now_ms());
    res->content_type = "text/html; charset=utf-8";
    /* The page itself allows no script, no outside resource, no framing. */
    buf_puts(&res->headers, "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; "
                            "frame-ancestors 'none'\r\nCache-Control: no-store\r\n");
    res->status = 200;
}

static void put_update_count(void *ud, const char *kind, const char *outcome, unsigned long n)
{
    prom_sample(ud, "webhook_router_updates_total", (const char *const[]){"kind", kind, "outcome", outcome, NULL},
                (double)n);
}

static void put_registry_stat(void *ud, const char *registry, const char *outcome, unsigned long n)
{
    prom_sample(ud, "webhook_router_registry_requests_total",
                (const char *const[]){"registry", registry, "outcome", outcome, NULL}, (double)n);
}

/* One histogram: cumulative counts per upper bound (seconds), +Inf, sum, count. */
static void put_histogram(struct buf *b, const char *name, const char *help, double (*bound)(size_t i),
                          const unsigned long *le, size_t n, unsigned long count, double sum)
{
    char metric[96], num[32];
    prom_family(b, name, "histogram", help);
    snprintf(metric, sizeof metric, "%s_bucket", name);
    for (size_t i = 0; i < n; i++) {
        snprintf(num, sizeof num, "%g", bound(i));
        prom_sample(b, metric, (const char *const[]){"le", num, NULL}, (double)le[i]);
    }
    prom_sample(b, metric, (const char *const[]){"le", "+Inf", NULL}, (double)count);
    snprintf(metric, sizeof metric, "%s_sum", name);
    prom_sample(b, metric, NULL, sum);
    snprintf(metric, sizeof metric, "%s_count", name);
    prom_sample(b, metric, NULL, (double)count);
}

static void handle_metrics(struct handlers_ctx *a, const struct http_request *req, struct http_response *res)
{
    (void)req;
    struct buf *b = &res->body;
    char status[16];
    prom_family(b, "webhook_router_build_info", "gauge", "Version of the running router.");
    prom_sample(b, "webhook_router_build_info", (const char *const[]){"version", WR_VERSION, NULL}, 1);

    prom_family(b, "webhook_router_webhook_requests_total", "counter",
                "Webhook requests by detected payload format and HTTP status.");
    const struct webhook_counts *wc = &a->webhook->counts;
    for (size_t i = 0; i < wc->n; i++) {
        snprintf(status, sizeof status, "%d", wc->by_status[i].status);
        prom_sample(b, "webhook_router_webhook_requests_total",
                    (const char *const[]){"format", wc->by_status[i].format, "status", status, NULL},
                    (double)wc->by_status[i].n);
    }
    prom_family(b, "webhook_router_events_total", "counter", "Push events by decision.");
    const char *const decisions[] = {"forwarded", "ignored", "duplicate"};
    const unsigned long counts[] = {wc->forwarded, wc->ignored, wc->duplicate};
    for (size_t i = 0; i < 3; i++)
        prom_sample(b, "webhook_router_events_total", (const char *const[]){"decision", decisions[i], NULL},
                    (double)counts[i]);

    const struct forward_stats *fs = forward_stats(a->fwd);
    prom_family(b, "webhook_router_forwards_total", "counter",
                "Forward outcomes: delivered (by the attempt that succeeded), retried attempts, final failures.");
    const char *const attempts[] = {"1", "2", "3", "4+"};
    for (size_t i = 0; i < 4; i++)
        prom_sample(b, "webhook_router_forwards_total",
                    (const char *const[]){"outcome", "delivered", "attempt", attempts[i], NULL},
                    (double)fs->delivered[i]);
    prom_sample(b, "webhook_router_forwards_total", (const char *const[]){"outcome", "retried", NULL},
                (double)fs->retried);
    prom_sample(b, "webhook_router_forwards_total", (const char *const[]){"outcome", "failed", NULL},
                (double)fs->failed);
    put_histogram(b, "webhook_router_forward_duration_seconds",
                  "Duration of one forward attempt (connect to full response).", forward_latency_bound,
                  fs->latency_le, FORWARD_LATENCY_BUCKETS, fs->latency_count, fs->latency_sum);

    prom_single(b, "webhook_router_forward_queue_depth", "gauge", "Forwards accepted and waiting.", (double)forward_queued(a->fwd));
    prom_single(b, "webhook_router_intake_pauses_total", "counter", "Times webhook intake paused for the forward backlog to drain.", (double)intake_pauses(a->intake));
    prom_single(b, "webhook_router_forwards_in_flight", "gauge", "Forwards being sent now.", (double)forward_in_flight(a->fwd));
    prom_family(b, "webhook_router_registry_requests_total", "counter",
                "Registry watch requests by registry and outcome.");
    if (a->registry) registry_client_stats(a->registry, put_registry_stat, b);
    prom_single(b, "webhook_router_watches", "gauge", "Registry watches (registry, repository, tag or tag list).", (double)registry_watch_count(a->registry_watch));
    prom_single(b, "webhook_router_watch_changes_total", "counter", "New digests or tags a registry watch found and handed to the webhook path.", (double)registry_watch_changes(a->registry_watch));
    prom_single(b, "webhook_router_routes", "gauge", "Distinct routes in the label map.", (double)routes_count(a->routes));

    prom_family(b, "webhook_router_notifications_total", "counter",
                "Notification requests by target kind and outcome (delivered, failed).");
    for (int k = 0; k < NK_COUNT; k++)
        for (int failed = 0; failed < 2; failed++) {
            unsigned long n = notifier_count(a->notifier, (enum notify_kind)k, failed);
            if (n)
                prom_sample(b, "webhook_router_notifications_total",
                            (const char *const[]){"kind", notify_kind_name((enum notify_kind)k), "outcome",
                                                  failed ? "failed" : "delivered", NULL},
                            (double)n);
        }
    prom_single(b, "webhook_router_notify_queue_depth", "gauge", "Notification requests accepted and waiting.",
                (double)forward_notify_queued(a->fwd));
    prom_family(b, "webhook_router_updates_total", "counter",
                "Engine updates (ENGINE_UPDATES) by kind (container, service) and outcome.");
    if (a->updater) engine_updater_counts(a->updater, put_update_count, b);

    prom_family(b, "webhook_router_log_lines_dropped_total", "counter",
                "Log lines dropped because stdout was not being read (see the warn line when it recovers).");
    prom_sample(b, "webhook_router_log_lines_dropped_total", NULL, (double)log_dropped(a->log));

    prom_family(b, "webhook_router_docker_connected", "gauge", "1 while the engine's event stream is live.");
    for (size_t i = 0; i < a->nwatchers; i++)
        prom_sample(b, "webhook_router_docker_connected",
                    (const char *const[]){"engine", docker_watch_host(a->watchers[i]), NULL},
                    strcmp(docker_watch_state(a->watchers[i]), "live") == 0 ? 1 : 0);
    prom_family(b, "webhook_router_docker_reconnects_total", "counter", "Connections to the engine lost or refused.");
    for (size_t i = 0; i < a->nwatchers; i++)
        prom_sample(b, "webhook_router_docker_reconnects_total",
                    (const char *const[]){"engine", docker_watch_host(a->watchers[i]), NULL},
                    (double)docker_watch_reconnects(a->watchers[i]));
    if (a->deploy) {
        const struct history_deploy_stats *ds = history_deploy_stats(deploy_history(a->deploy));
        put_histogram(b, "webhook_router_deployed_seconds",
                      "From the push answered to an object of the route running the pushed image.",
                      history_deploy_bound, ds->le, HISTORY_DEPLOY_BUCKETS, ds->count, ds->sum);
    }
    res->content_type = "text/plain; version=0.0.4; charset=utf-8";
    res->status = 200;
}

/* The webhook endpoints: token is the path segment after /webhook/, or
 * NULL. False for any other path. */
static bool webhook_path(const char *path, const char **token)
{
    if (strcmp(path, "/webhook") != 0 && strncmp(path, "/webhook/", 9) != 0) return false;
    *token = path[8] == '/' ? path + 9 : NULL;
    return true;
}

/* The operational endpoints, by exact path (as h2o registers a handler per
 * path). The webhook, with its token segment, is matched before them. */
static const struct endpoint {
    const char *path;
    void (*fn)(struct handlers_ctx *a, const struct http_request *req, struct http_response *res);
    bool admin;   /* behind ADMIN_TOKEN */
} endpoints[] = {
    {"/health", handle_health, false},
    {"/ready", handle_ready, false},
    {"/metrics", handle_metrics, true},
    {"/routes", handle_routes, true},
    {"/history", handle_history, true},
    {"/status", handle_status, true},
    {"/", handle_status, true},
};

/* ADMIN_TOKEN: 401 with a Basic challenge, so a browser asks for it. */
static bool admin_ok(struct handlers_ctx *a, const struct http_request *req, struct http_response *res)
{
    const char *why;
    if (auth_admin_check(a->admin_token, http_request_header(req, "authorization"), &why) == 0) return true;
    http_response_error(res, 401, why);
    buf_puts(&res->headers, "WWW-Authenticate: Basic realm=\"webhook-router\"\r\n");
    return false;
}

void handlers_dispatch(void *ud, const struct http_request *req, struct http_response *res)
{
    struct handlers_ctx *a = ud;
    const char *token;
    if (webhook_path(req->path, &token)) {
        if (!webhook_token_path_ok(a->webhook, token)) http_response_error(res, 404, "not found");
        else if (strcmp(req->method, "POST") != 0) method_not_allowed(res, "POST");
        else webhook_handle(a->webhook, req, token, res);
        return;
    }
    for (size_t i = 0; i < sizeof endpoints / sizeof endpoints[0]; i++) {
        if (strcmp(req->path, endpoints[i].path) != 0) continue;
        if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) method_not_allowed(res, "GET, HEAD");
        else if (!endpoints[i].admin || admin_ok(a, req, res)) endpoints[i].fn(a, req, res);
        return;
    }
    http_response_error(res, 404, "not found");
}

void handlers_head(void *ud, const struct http_request *req, struct http_response *res)
{
    struct handlers_ctx *a = ud;
    const char *token;
    /* Only a webhook POST can need its body; the webhook handler decides. */
    if (strcmp(req->method, "POST") == 0 && webhook_path(req->path, &token))
        webhook_head(a->webhook, req, token, res);
}
