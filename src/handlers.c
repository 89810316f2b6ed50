/* handlers.c - the routing layer: paths to handlers.
 *
 * The webhook handler is the one place where the data flow meets:
 * payload -> push events -> route lookup -> forward queue. It answers before
 * any forward happens; from the 202 on, delivery is the forwarder's job. */
#include "handlers.h"

#include <stdio.h>
#include <string.h>

#include "app.h"
#include "auth.h"
#include "json.h"
#include "metrics.h"
#include "payload.h"
#include "url.h"

/* Targets looked up per event; more distinct URLs for one image is not a
 * deployment, it is a mistake, and the summary says how many were cut. */
#define MAX_TARGETS 64

static void method_not_allowed(struct http_response *res, const char *allow)
{
    http_response_error(res, 405, "method not allowed");
    buf_printf(&res->headers, "Allow: %s\r\n", allow);
}

static void handle_health(struct app *a, struct http_response *res)
{
    (void)a;
    res->status = 200;
    buf_puts(&res->body, "{\"status\":\"ok\"}");
}

static void handle_ready(struct app *a, struct http_response *res)
{
    bool ready = a->nwatchers > 0;
    const char *reason = NULL;
    struct buf engines;
    buf_init(&engines);
    for (size_t i = 0; i < a->nwatchers; i++) {
        struct docker_watch *w = a->watchers[i];
        int first = 1;
        buf_puts(&engines, i ? ",{" : "{");
        json_put_key(&engines, "engine", &first);
        json_put_str(&engines, docker_watch_host(w));
        json_put_key(&engines, "state", &first);
        json_put_str(&engines, docker_watch_state(w));
        json_put_key(&engines, "synced", &first);
        buf_puts(&engines, docker_watch_synced(w) ? "true" : "false");
        if (docker_watch_last_error(w)) {
            json_put_key(&engines, "error", &first);
            json_put_str(&engines, docker_watch_last_error(w));
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
    json_put_key(&res->body, "status", &first);
    json_put_str(&res->body, ready ? "ready" : "not ready");
    if (!ready) {
        char why[512];
        snprintf(why, sizeof why, "docker not synced yet%s%s", reason ? ": " : "",
                 reason ? reason : "");
        json_put_key(&res->body, "reason", &first);
        json_put_str(&res->body, why);
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
};

static void put_route(void *ud, const struct route *r, const struct route_source *const *src, size_t nsrc)
{
    struct routes_out *o = ud;
    struct buf *b = o->b;
    int first = 1;
    buf_puts(b, o->n++ ? ",{" : "{");
    json_put_key(b, "image", &first);
    json_put_str(b, r->image);
    json_put_key(b, "registry", &first);
    json_put_str(b, r->ref.host[0] ? r->ref.host : NULL);
    json_put_key(b, "repository", &first);
    json_put_str(b, r->ref.path);
    json_put_key(b, "tag", &first);
    json_put_str(b, r->tag_glob ? r->tag_glob : "*");
    /* The URL's token is the webhook's secret: only its redacted form. */
    struct buf red;
    buf_init(&red);
    url_redact(&red, r->url);
    json_put_key(b, "url", &first);
    json_put_str(b, buf_cstr(&red));
    buf_free(&red);
    json_put_key(b, "sources", &first);
    buf_putc(b, '[');
    for (size_t i = 0; i < nsrc; i++) {
        int f2 = 1;
        buf_puts(b, i ? ",{" : "{");
        json_put_key(b, "kind", &f2);
        json_put_str(b, src[i]->kind);
        json_put_key(b, "name", &f2);
        json_put_str(b, src[i]->name);
        json_put_key(b, "id", &f2);
        json_put_str(b, src[i]->id);
        json_put_key(b, "stack", &f2);
        json_put_str(b, src[i]->stack);
        json_put_key(b, "engine", &f2);
        json_put_str(b, src[i]->engine);
        buf_putc(b, '}');
    }
    buf_puts(b, "]}");
}

static void handle_routes(struct app *a, struct http_response *res)
{
    struct routes_out o = {.b = &res->body};
    buf_puts(&res->body, "{\"routes\":[");
    routes_foreach(a->routes, put_route, &o);
    buf_printf(&res->body, "],\"count\":%zu}", o.n);
    res->status = 200;
}

static void handle_metrics(struct app *a, struct http_response *res)
{
    struct buf *b = &res->body;
    char num[32], status[16];
    prom_family(b, "webhook_router_build_info", "gauge", "Version of the running router.");
    prom_sample(b, "webhook_router_build_info", (const char *const[]){"version", WR_VERSION, NULL}, 1);

    prom_family(b, "webhook_router_webhook_requests_total", "counter",
                "Webhook requests by detected payload format and HTTP status.");
    for (size_t i = 0; i < a->nwebhooks; i++) {
        snprintf(status, sizeof status, "%d", a->webhooks[i].status);
        prom_sample(b, "webhook_router_webhook_requests_total",
                    (const char *const[]){"format", a->webhooks[i].format, "status", status, NULL},
                    (double)a->webhooks[i].n);
    }
    prom_family(b, "webhook_router_events_total", "counter", "Push events by decision.");
    const char *const decisions[] = {"forwarded", "ignored", "duplicate"};
    const unsigned long counts[] = {a->events_forwarded, a->events_ignored, a->events_duplicate};
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
    prom_family(b, "webhook_router_forward_duration_seconds", "histogram",
                "Duration of one forward attempt (connect to full response).");
    for (size_t i = 0; i < FORWARD_LATENCY_BUCKETS; i++) {
        snprintf(num, sizeof num, "%g", forward_latency_bound(i));
        prom_sample(b, "webhook_router_forward_duration_seconds_bucket", (const char *const[]){"le", num, NULL},
                    (double)fs->latency_le[i]);
    }
    prom_sample(b, "webhook_router_forward_duration_seconds_bucket", (const char *const[]){"le", "+Inf", NULL},
                (double)fs->latency_count);
    prom_sample(b, "webhook_router_forward_duration_seconds_sum", NULL, fs->latency_sum);
    prom_sample(b, "webhook_router_forward_duration_seconds_count", NULL, (double)fs->latency_count);

    prom_family(b, "webhook_router_forward_queue_depth", "gauge", "Forwards accepted and waiting.");
    prom_sample(b, "webhook_router_forward_queue_depth", NULL, (double)forward_queued(a->fwd));
    prom_family(b, "webhook_router_intake_pauses_total", "counter",
                "Times webhook intake paused for the forward backlog to drain.");
    prom_sample(b, "webhook_router_intake_pauses_total", NULL, (double)a->intake_pauses);
    prom_family(b, "webhook_router_forwards_in_flight", "gauge", "Forwards being sent now.");
    prom_sample(b, "webhook_router_forwards_in_flight", NULL, (double)forward_in_flight(a->fwd));
    prom_family(b, "webhook_router_routes", "gauge", "Distinct routes in the label map.");
    prom_sample(b, "webhook_router_routes", NULL, (double)routes_count(a->routes));

    prom_family(b, "webhook_router_log_lines_dropped_total", "counter",
                "Log lines dropped because stdout was not being read (see the warn line when it recovers).");
    prom_sample(b, "webhook_router_log_lines_dropped_total", NULL, (double)log_dropped(&a->log));

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
    res->content_type = "text/plain; version=0.0.4; charset=utf-8";
    res->status = 200;
}

/* token_only: the head stage, where there is no body to check a signature
 * against; the token alone decides. The full check runs again with the body. */
static int check_auth(struct app *a, const struct http_request *req, const char *path_token, bool token_only,
                      struct http_response *res)
{
    const char *why;
    struct auth_input in = {
        .authorization = http_request_header(req, "authorization"),
        .path_token = path_token,
        .hub_signature = http_request_header(req, "x-hub-signature-256"),
        .gitea_signature = http_request_header(req, "x-gitea-signature"),
        .body = req->body,
        .body_len = req->body_len,
    };
    const char *secret = token_only ? NULL : a->cfg->webhook_hmac_secret;
    if (auth_check(a->cfg->webhook_token, secret, &in, &why) == 0) return 0;
    LOG(&a->log, LOG_WARN, "webhook unauthorized", F_STR("peer", req->peer), F_STR("error", why));
    http_response_error(res, 401, why);
    return -1;
}

static void put_event_head(struct buf *b, const struct push_event *ev, int *first)
{
    json_put_key(b, "format", first);
    json_put_str(b, ev->format);
    json_put_key(b, "id", first);
    json_put_str(b, ev->id);
    json_put_key(b, "repository", first);
    json_put_str(b, ev->repository);
    json_put_key(b, "tag", first);
    json_put_str(b, ev->tag);
}

static void count_webhook(struct app *a, const char *format, int status)
{
    for (size_t i = 0; i < a->nwebhooks; i++)
        if (a->webhooks[i].status == status && strcmp(a->webhooks[i].format, format) == 0) {
            a->webhooks[i].n++;
            return;
        }
    /* Formats and statuses are few and fixed: the table cannot fill up in
     * practice; if it did, the newest combination goes uncounted. */
    if (a->nwebhooks < sizeof a->webhooks / sizeof a->webhooks[0])
        a->webhooks[a->nwebhooks++] = (struct webhook_counter){format, status, 1};
}

static void handle_webhook(struct app *a, const struct http_request *req, const char *path_token,
                           struct http_response *res, const char **format)
{
    if (check_auth(a, req, path_token, false, res) < 0) return;

    struct payload_hints hints = {
        .content_type = http_request_header(req, "content-type"),
        .github_event = http_request_header(req, "x-github-event"),
        .gitea_event = http_request_header(req, "x-gitea-event"),
        .gitlab_event = http_request_header(req, "x-gitlab-event"),
    };
    struct payload p;
    struct buf err;
    buf_init(&err);
    if (payload_parse(req->body, req->body_len, &hints, &p, &err) < 0) {
        LOG(&a->log, LOG_WARN, "webhook rejected", F_STR("peer", req->peer),
            F_STR("error", buf_cstr(&err)));
        *format = "unknown";
        http_response_error(res, 400, buf_cstr(&err));
        buf_free(&err);
        return;
    }
    buf_free(&err);
    *format = p.format;

    /* Look every event up first: if the queue cannot take all of this
     * request's forwards, take none and let the registry retry (503), so
     * nothing that was answered 202 is ever dropped. */
    size_t *first_target = xcalloc(p.n + 1, sizeof *first_target);
    const char **targets = NULL;
    size_t total = 0;
    const char *urls[MAX_TARGETS];
    for (size_t i = 0; i < p.n; i++) {
        first_target[i] = total;
        if (p.events[i].ignored || dedupe_seen(a->seen, p.events[i].id)) continue;
        size_t n = routes_match(a->routes, &p.events[i], urls, MAX_TARGETS);
        if (!n) continue;
        targets = xrealloc(targets, (total + n) * sizeof *targets);
        memcpy(targets + total, urls, n * sizeof *urls);
        total += n;
    }
    first_target[p.n] = total;
    if (total && (a->stopping || !forward_has_room(a->fwd, total))) {
        LOG(&a->log, LOG_WARN, "webhook deferred: forward queue full", F_INT("targets", total),
            F_INT("queued", forward_queued(a->fwd)));
        http_response_error(res, 503, a->stopping ? "shutting down, retry later"
                                                  : "forward queue full, retry later");
        free(first_target);
        free(targets);
        payload_free(&p);
        return;
    }

    struct buf *b = &res->body;
    int top = 1;
    buf_putc(b, '{');
    json_put_key(b, "format", &top);
    json_put_str(b, p.format);
    json_put_key(b, "accepted", &top);
    buf_put_uint(b, p.n);
    json_put_key(b, "events", &top);
    buf_putc(b, '[');
    for (size_t i = 0; i < p.n; i++) {
        struct push_event *ev = &p.events[i];
        int first = 1;
        buf_puts(b, i ? ",{" : "{");
        put_event_head(b, ev, &first);
        json_put_key(b, "decision", &first);
        if (ev->ignored) {
            json_put_str(b, "ignored");
            json_put_key(b, "reason", &first);
            json_put_str(b, ev->ignored);
            a->events_ignored++;
            LOG(&a->log, LOG_DEBUG, "event ignored", F_STR("repository", ev->repository),
                F_STR("event_id", ev->id), F_STR("reason", ev->ignored));
        } else if (dedupe_seen(a->seen, ev->id)) {
            /* A redelivery (or the same id twice in one request). */
            json_put_str(b, "duplicate");
            a->events_duplicate++;
            LOG(&a->log, LOG_INFO, "duplicate event not forwarded", F_STR("repository", ev->repository),
                F_STR("tag", ev->tag), F_STR("event_id", ev->id));
        } else if (first_target[i + 1] == first_target[i]) {
            json_put_str(b, "ignored");
            json_put_key(b, "reason", &first);
            json_put_str(b, "no route matches");
            a->events_ignored++;
            LOG(&a->log, LOG_INFO, "push without route", F_STR("registry", ev->registry),
                F_STR("repository", ev->repository), F_STR("tag", ev->tag),
                F_STR("event_id", ev->id));
        } else {
            size_t n = first_target[i + 1] - first_target[i];
            for (size_t k = first_target[i]; k < first_target[i + 1]; k++)
                forward_submit(a->fwd, targets[k], ev);
            dedupe_add(a->seen, ev->id);
            json_put_str(b, "forwarded");
            a->events_forwarded++;
            json_put_key(b, "targets", &first);
            buf_put_uint(b, n);
            LOG(&a->log, LOG_INFO, "push matched", F_STR("registry", ev->registry),
                F_STR("repository", ev->repository), F_STR("tag", ev->tag),
                F_STR("event_id", ev->id), F_INT("targets", n));
        }
        buf_putc(b, '}');
    }
    buf_puts(b, "]}");
    res->status = 202;
    if (total) app_forward_pressure(a);
    free(first_target);
    free(targets);
    payload_free(&p);
}

/* The webhook endpoints: token is the path segment after /webhook/, or
 * NULL. False for any other path. */
static bool webhook_path(const char *path, const char **token)
{
    if (strcmp(path, "/webhook") != 0 && strncmp(path, "/webhook/", 9) != 0) return false;
    *token = path[8] == '/' ? path + 9 : NULL;
    return true;
}

/* /webhook/<token> exists only when a token is configured; a stray path
 * segment must not look like an accepted endpoint. */
static bool webhook_token_path_ok(const struct app *a, const char *token)
{
    return !token || (a->cfg->webhook_token && *token && !strchr(token, '/'));
}

void handlers_dispatch(void *ud, const struct http_request *req, struct http_response *res)
{
    struct app *a = ud;
    bool get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    bool post = strcmp(req->method, "POST") == 0;
    const char *token;

    if (webhook_path(req->path, &token)) {
        if (!webhook_token_path_ok(a, token)) {
            http_response_error(res, 404, "not found");
            return;
        }
        if (!post) {
            method_not_allowed(res, "POST");
            return;
        }
        const char *format = "none";   /* refused before the body was read */
        handle_webhook(a, req, token, res, &format);
        count_webhook(a, format, res->status);
    } else if (strcmp(req->path, "/health") == 0) {
        if (get) handle_health(a, res);
        else method_not_allowed(res, "GET, HEAD");
    } else if (strcmp(req->path, "/ready") == 0) {
        if (get) handle_ready(a, res);
        else method_not_allowed(res, "GET, HEAD");
    } else if (strcmp(req->path, "/metrics") == 0) {
        if (get) handle_metrics(a, res);
        else method_not_allowed(res, "GET, HEAD");
    } else if (strcmp(req->path, "/routes") == 0) {
        if (get) handle_routes(a, res);
        else method_not_allowed(res, "GET, HEAD");
    } else {
        http_response_error(res, 404, "not found");
    }
}

void handlers_head(void *ud, const struct http_request *req, struct http_response *res)
{
    struct app *a = ud;
    const char *token;
    /* Only a webhook POST with a valid token can need its body; with
     * WEBHOOK_TOKEN, the token decides before a byte of it is read. With
     * only WEBHOOK_HMAC_SECRET the signature covers the body, which must be
     * read (within MAX_BUFFERED_BYTES). */
    if (!a->cfg->webhook_token || strcmp(req->method, "POST") != 0 || !webhook_path(req->path, &token) ||
        !webhook_token_path_ok(a, token))
        return;
    if (check_auth(a, req, token, true, res) < 0) count_webhook(a, "none", res->status);
}
