/* webhook.c - the webhook handler (see webhook.h). */
#include "webhook.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "deploy.h"
#include "engine_update.h"
#include "json.h"
#include "notifier.h"

/* Targets looked up per event; more distinct URLs for one image is not a
 * deployment, it is a mistake. */
#define MAX_TARGETS 64

static void count(struct webhook_ctx *w, const char *format, int status)
{
    struct webhook_counts *c = &w->counts;
    for (size_t i = 0; i < c->n; i++)
        if (c->by_status[i].status == status && strcmp(c->by_status[i].format, format) == 0) {
            c->by_status[i].n++;
            return;
        }
    /* Formats and statuses are few and fixed: the table cannot fill up in
     * practice; if it did, the newest combination goes uncounted. */
    if (c->n < sizeof c->by_status / sizeof c->by_status[0])
        c->by_status[c->n++] = (struct webhook_counter){format, status, 1};
}

/* token_only: the head stage, where there is no body to check a signature
 * against; the token alone decides. The full check runs again with the body. */
static int check_auth(struct webhook_ctx *w, const struct http_request *req, const char *path_token,
                      bool token_only, struct http_response *res)
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
    if (auth_check(w->token, token_only ? NULL : w->hmac_secret, &in, &why) == 0) return 0;
    LOG(w->log, LOG_WARN, "webhook unauthorized", F_STR("peer", req->peer), F_STR("error", why));
    http_response_error(res, 401, why);
    return -1;
}

bool webhook_token_path_ok(const struct webhook_ctx *w, const char *token)
{
    return !token || (w->token && *token && !strchr(token, '/'));
}

void webhook_head(struct webhook_ctx *w, const struct http_request *req, const char *path_token,
                  struct http_response *res)
{
    /* With WEBHOOK_TOKEN the token decides before a byte of the body is
     * read. With only WEBHOOK_HMAC_SECRET the signature covers the body,
     * which must be read (within MAX_BUFFERED_BYTES). */
    if (!w->token || !webhook_token_path_ok(w, path_token)) return;
    if (check_auth(w, req, path_token, true, res) < 0) count(w, "none", res->status);
}

/* ---- the plan --------------------------------------------------------------- */

static bool forwarded_earlier(const struct payload *p, const struct webhook_plan *plan, size_t i)
{
    const char *id = p->events[i].id;
    if (!id) return false;
    for (size_t k = 0; k < i; k++)
        if (plan->decision[k] == WEBHOOK_FORWARD && p->events[k].id && strcmp(p->events[k].id, id) == 0)
            return true;
    return false;
}

/* The key under which a route remembers the digest it was sent:
 * "<digest>|<route url>|<host>/<path>:<tag>", ref being ev's canonical
 * reference (routes_match_all works it out). Empty when ev has no digest
 * or no reference (ref NULL), or when the key does not fit (never deduped
 * then). */
static void delivered_key(char *out, size_t outlen, const struct push_event *ev, const struct repo_ref *ref,
                          const char *url)
{
    out[0] = '\0';
    if (!ev->digest || !ref) return;
    /* Joined by hand: snprintf was a tenth of the plan. */
    const char *parts[] = {ev->digest, "|", url, "|", ref->host, "/", ref->path, ":", ev->tag ? ev->tag : ""};
    size_t at = 0;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        size_t n = strlen(parts[i]);
        if (at + n >= outlen) {
            out[0] = '\0';
            return;
        }
        memcpy(out + at, parts[i], n + 1);
        at += n;
    }
}

/* The key under which a notify-only route remembers the digest it told
 * of: a webhook and a poll seeing one push make one "new image" message.
 * (A route that redeploys follows its URL's memory, or the updater's.) */
static void notify_key(char *out, size_t outlen, const struct push_event *ev, const struct repo_ref *ref,
                       const struct route *r)
{
    out[0] = '\0';
    if (r->url || r->update) return;
    char who[900];
    int n = snprintf(who, sizeof who, "notify\x1f%s", r->notify);
    if (n > 0 && (size_t)n < sizeof who) delivered_key(out, outlen, ev, ref, who);   /* else too long to remember */
}

/* A notify route that redeploys is told of a push its URL is sent. */
static bool url_kept(const char *url, const char *const *urls, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (strcmp(urls[k], url) == 0) return true;
    return false;
}

/* An array of the plan that starts in the plan itself (small, small_n
 * items) and moves to the heap past that: cur holding have items, made
 * room for need. */
static void *grow_small(void *cur, void *small, size_t small_n, size_t have, size_t need, size_t size)
{
    if (need <= small_n) return small;
    if (cur != small) return xrealloc(cur, need * size);
    void *p = xmalloc(need * size);
    memcpy(p, small, have * size);
    return p;
}

void webhook_plan_make(struct route_table *routes, const struct dedupe *seen, const struct dedupe *delivered,
                       const struct payload *p, struct webhook_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    bool small = p->n <= sizeof plan->small_decision / sizeof plan->small_decision[0];
    plan->decision = small ? plan->small_decision : xcalloc(p->n + 1, sizeof *plan->decision);
    plan->first = small ? plan->small_first : xcalloc(p->n + 1, sizeof *plan->first);
    plan->ufirst = small ? plan->small_ufirst : xcalloc(p->n + 1, sizeof *plan->ufirst);
    plan->hfirst = small ? plan->small_hfirst : xcalloc(p->n + 1, sizeof *plan->hfirst);
    plan->id_tag = small ? plan->small_id_tag : xcalloc(p->n + 1, sizeof *plan->id_tag);
    const char *urls[MAX_TARGETS];
    const struct route_source *upd[MAX_TARGETS];
    struct route_hit hits[MAX_TARGETS];
    struct repo_ref ref;
    for (size_t i = 0; i < p->n; i++) {
        const struct push_event *ev = &p->events[i];
        plan->first[i] = plan->ntargets;
        plan->ufirst[i] = plan->nupdates;
        plan->hfirst[i] = plan->nhits;
        if (ev->ignored) {
            plan->decision[i] = WEBHOOK_IGNORED;
            continue;
        }
        /* A redelivery, or the same id twice in one request. */
        plan->id_tag[i] = ev->id ? dedupe_tag(seen, ev->id) : 0;
        if (dedupe_seen_tag(seen, plan->id_tag[i]) || forwarded_earlier(p, plan, i)) {
            plan->decision[i] = WEBHOOK_DUPLICATE;
            continue;
        }
        struct route_matches m = {.urls = urls, .max_urls = MAX_TARGETS, .updates = upd, .max_updates = MAX_TARGETS,
                                  .notifies = hits, .max_notifies = MAX_TARGETS, .ref = &ref};
        const struct repo_ref *canon = routes_match_all(routes, ev, &m) ? &ref : NULL;
        size_t n = m.nurls, nh = m.nnotifies;
        plan->decision[i] = n || m.nupdates || nh ? WEBHOOK_FORWARD : WEBHOOK_NO_ROUTE;
        if (!n && !m.nupdates && !nh) continue;
        uint64_t tags[MAX_TARGETS];   /* urls[k]'s delivered key, remembered once sent (0: none) */
        uint64_t htags[MAX_TARGETS];  /* hits[k]'s told key, the same for notify-only routes */
        for (size_t k = 0; k < n; k++) tags[k] = 0;   /* not "= {0}": 512 bytes cleared per event */
        for (size_t k = 0; k < nh; k++) htags[k] = 0;
        if ((n || nh) && delivered && ev->digest) {
            /* Routes already sent (or told) this digest, by a webhook or a
             * poll, are not sent (or told) it again. */
            size_t keep = 0;
            char key[1024];
            for (size_t k = 0; k < n; k++) {
                delivered_key(key, sizeof key, ev, canon, urls[k]);
                uint64_t tag = key[0] ? dedupe_tag(delivered, key) : 0;
                if (!dedupe_seen_tag(delivered, tag)) {
                    tags[keep] = tag;
                    urls[keep++] = urls[k];
                }
            }
            n = keep;
            keep = 0;
            for (size_t k = 0; k < nh; k++) {
                const struct route *r = hits[k].route;
                bool told;
                uint64_t tag = 0;
                if (r->url) {
                    told = !url_kept(r->url, urls, n);
                } else {
                    notify_key(key, sizeof key, ev, canon, r);
                    tag = key[0] ? dedupe_tag(delivered, key) : 0;
                    told = dedupe_seen_tag(delivered, tag);
                }
                if (!told) {
                    htags[keep] = tag;
                    hits[keep++] = hits[k];
                }
            }
            nh = keep;
            /* Updates need no such memory: the updater compares image IDs
             * (a container already on the pushed image is left alone). */
            if (!n && !m.nupdates && !nh) {
                plan->decision[i] = WEBHOOK_DUPLICATE;
                continue;
            }
        }
        if (n) {
            plan->targets = grow_small(plan->targets, plan->small_targets, 8, plan->ntargets, plan->ntargets + n,
                                       sizeof *plan->targets);
            memcpy(plan->targets + plan->ntargets, urls, n * sizeof *urls);
            plan->target_tags = grow_small(plan->target_tags, plan->small_target_tags, 8, plan->ntargets,
                                           plan->ntargets + n, sizeof *plan->target_tags);
            memcpy(plan->target_tags + plan->ntargets, tags, n * sizeof *tags);
            plan->ntargets += n;
        }
        if (m.nupdates) {
            plan->updates = xrealloc(plan->updates, (plan->nupdates + m.nupdates) * sizeof *plan->updates);
            memcpy(plan->updates + plan->nupdates, upd, m.nupdates * sizeof *upd);
            plan->nupdates += m.nupdates;
        }
        if (nh) {
            plan->hits = xrealloc(plan->hits, (plan->nhits + nh) * sizeof *plan->hits);
            memcpy(plan->hits + plan->nhits, hits, nh * sizeof *hits);
            plan->hit_tags = xrealloc(plan->hit_tags, (plan->nhits + nh) * sizeof *plan->hit_tags);
            memcpy(plan->hit_tags + plan->nhits, htags, nh * sizeof *htags);
            plan->nhits += nh;
        }
    }
    plan->first[p->n] = plan->ntargets;
    plan->ufirst[p->n] = plan->nupdates;
    plan->hfirst[p->n] = plan->nhits;
}

void webhook_plan_free(struct webhook_plan *plan)
{
    if (plan->decision != plan->small_decision) free(plan->decision);
    if (plan->first != plan->small_first) free(plan->first);
    if (plan->targets != plan->small_targets) free(plan->targets);
    if (plan->target_tags != plan->small_target_tags) free(plan->target_tags);
    if (plan->id_tag != plan->small_id_tag) free(plan->id_tag);
    if (plan->ufirst != plan->small_ufirst) free(plan->ufirst);
    free(plan->updates);
    if (plan->hfirst != plan->small_hfirst) free(plan->hfirst);
    free(plan->hits);
    free(plan->hit_tags);
    memset(plan, 0, sizeof *plan);
}

/* ---- carrying it out ---------------------------------------------------------- */

static void put_event_head(struct buf *b, const struct push_event *ev, int *first)
{
    json_put_member(b, "format", ev->format, first);
    json_put_member(b, "id", ev->id, first);
    json_put_member(b, "repository", ev->repository, first);
    json_put_member(b, "tag", ev->tag, first);
}

/* One event: its forwards queued (when planned), its line in the summary,
 * its log line and its count. */
static void carry_out(struct webhook_ctx *w, const struct payload *p, const struct webhook_plan *plan, size_t i,
                      struct buf *b)
{
    const struct push_event *ev = &p->events[i];
    int first = 1;
    buf_puts(b, i ? ",{" : "{");
    put_event_head(b, ev, &first);
    json_put_key(b, "decision", &first);
    switch (plan->decision[i]) {
    case WEBHOOK_IGNORED:
    case WEBHOOK_NO_ROUTE: {
        /* Recognised but not routed: the parser's reason, or no route. */
        bool parser = plan->decision[i] == WEBHOOK_IGNORED;
        const char *reason = parser ? ev->ignored : "no route matches";
        json_put_str(b, "ignored");
        json_put_member(b, "reason", reason, &first);
        w->counts.ignored++;
        LOG(w->log, parser ? LOG_DEBUG : LOG_INFO, parser ? "event ignored" : "push without route",
            F_STR("registry", ev->registry), F_STR("repository", ev->repository), F_STR("tag", ev->tag),
            F_STR("event_id", ev->id), F_STR("reason", parser ? reason : NULL));
        break;
    }
    case WEBHOOK_DUPLICATE:
        json_put_str(b, "duplicate");
        w->counts.duplicate++;
        LOG(w->log, LOG_INFO, "duplicate event not forwarded", F_STR("repository", ev->repository),
            F_STR("tag", ev->tag), F_STR("event_id", ev->id));
        break;
    case WEBHOOK_FORWARD: {
        size_t n = plan->first[i + 1] - plan->first[i];
        const struct route_hit *hits = plan->hits + plan->hfirst[i];
        size_t nh = plan->hfirst[i + 1] - plan->hfirst[i];
        for (size_t k = plan->first[i]; k < plan->first[i + 1]; k++) {
            /* Watched by the history (the POST's outcome, then the
             * confirmation) and by the notifier when a route of that URL
             * tells its outcome. A POST that cannot be queued is told so. */
            struct forward_watch watch[2];
            size_t nw = 0;
            if (w->deploy)
                watch[nw++] = (struct forward_watch){.fn = deploy_forward_done, .ud = w->deploy,
                                                     .tag = deploy_record_redeploy(w->deploy, ev, plan->targets[k])};
            if (nh && notifier_redeploy_watch(w->notifier, plan->targets[k], ev, hits, nh, &watch[nw])) nw++;
            int rc = forward_submit_watched(w->fwd, plan->targets[k], ev, watch, nw);
            if (rc < 0) {
                struct forward_result r = {.err = rc, .error = "the target URL cannot be used"};
                for (size_t x = 0; x < nw; x++) {
                    r.tag = watch[x].tag;
                    watch[x].fn(watch[x].ud, &r);
                }
            }
            if (w->delivered) dedupe_add_tag(w->delivered, plan->target_tags[k]);
        }
        /* Updates start (or queue behind the object's running one) now;
         * with ENGINE_UPDATES off the updater warns once per object. */
        size_t nu = 0;
        for (size_t k = plan->ufirst[i]; k < plan->ufirst[i + 1]; k++) {
            const struct route_source *src = plan->updates[k];
            struct update_target t = {.engine = src->engine, .kind = src->kind, .id = src->id, .name = src->name};
            if (w->updater && engine_updater_submit(w->updater, &t, ev) == 0) {
                nu++;
                if (w->deploy) deploy_record_update(w->deploy, ev, src);
            }
        }
        w->counts.updates += nu;
        for (size_t k = 0; k < nh; k++) {
            notifier_route_outcome(w->notifier, NO_PUSH, ev, &hits[k], NULL);
            if (w->delivered) dedupe_add_tag(w->delivered, plan->hit_tags[plan->hfirst[i] + k]);
        }
        dedupe_add_tag(w->seen, plan->id_tag[i]);
        json_put_str(b, "forwarded");
        w->counts.forwarded++;
        json_put_key(b, "targets", &first);
        buf_put_uint(b, n);
        json_put_key(b, "updates", &first);
        buf_put_uint(b, nu);
        if (nh) {   /* routes that tell (their messages follow the outcomes) */
            json_put_key(b, "notify", &first);
            buf_put_uint(b, nh);
        }
        LOG(w->log, LOG_INFO, "push matched", F_STR("registry", ev->registry),
            F_STR("repository", ev->repository), F_STR("tag", ev->tag), F_STR("event_id", ev->id),
            F_INT("targets", n), F_INT("updates", nu),
            nh ? (struct log_field)F_INT("notify", nh) : (struct log_field)F_STR("notify", NULL));
        break;
    }
    }
    buf_putc(b, '}');
}

/* Returns the format to count the request under. */
static const char *handle(struct webhook_ctx *w, const struct http_request *req, const char *path_token,
                          struct http_response *res)
{
    if (check_auth(w, req, path_token, false, res) < 0) return "none";

    struct payload_hints hints = {
        .content_type = http_request_header(req, "content-type"),
        .github_event = http_request_header(req, "x-github-event"),
        .gitea_event = http_request_header(req, "x-gitea-event"),
        .gitlab_event = http_request_header(req, "x-gitlab-event"),
    };
    /* The parsed body lives in this frame while it fits: most
     * notifications are 1-3 KiB of JSON, their document about twice that. */
    unsigned char docmem[8192];
    struct payload p;
    struct buf err;
    buf_init(&err);
    if (payload_parse_in(req->body, req->body_len, &hints, docmem, sizeof docmem, &p, &err) < 0) {
        LOG(w->log, LOG_WARN, "webhook rejected", F_STR("peer", req->peer), F_STR("error", buf_cstr(&err)));
        http_response_error(res, 400, buf_cstr(&err));
        buf_free(&err);
        return "unknown";
    }
    buf_free(&err);
    const char *format = p.format;

    /* Every event is decided first: if the queue cannot take all of this
     * request's forwards, none is taken and the registry retries (503), so
     * nothing that was answered 202 is ever dropped. */
    struct webhook_plan plan;
    webhook_plan_make(w->routes, w->seen, w->delivered, &p, &plan);
    if (plan.ntargets && (w->stopping || !forward_has_room(w->fwd, plan.ntargets))) {
        LOG(w->log, LOG_WARN, "webhook deferred: forward queue full", F_INT("targets", plan.ntargets),
            F_INT("queued", forward_queued(w->fwd)));
        http_response_error(res, 503, w->stopping ? "shutting down, retry later" : "forward queue full, retry later");
    } else {
        struct buf *b = &res->body;
        int top = 1;
        buf_putc(b, '{');
        json_put_member(b, "format", p.format, &top);
        json_put_key(b, "accepted", &top);
        buf_put_uint(b, p.n);
        json_put_key(b, "events", &top);
        buf_putc(b, '[');
        for (size_t i = 0; i < p.n; i++) carry_out(w, &p, &plan, i, b);
        buf_puts(b, "]}");
        res->status = 202;
        if (plan.ntargets && w->queued) w->queued(w->queued_ud);
    }
    webhook_plan_free(&plan);
    payload_free(&p);
    return format;
}

int webhook_inject(struct webhook_ctx *w, const struct push_event *ev)
{
    struct payload p = {.format = ev->format, .events = (struct push_event *)ev, .n = 1};
    struct webhook_plan plan;
    webhook_plan_make(w->routes, w->seen, w->delivered, &p, &plan);
    int rc = 0;
    if (plan.ntargets && (w->stopping || !forward_has_room(w->fwd, plan.ntargets))) {
        LOG(w->log, LOG_WARN, "change deferred: forward queue full", F_STR("repository", ev->repository),
            F_STR("tag", ev->tag), F_INT("queued", forward_queued(w->fwd)));
        rc = -EAGAIN;
    } else {
        struct buf summary;   /* nobody to answer: the decision is in the log */
        buf_init(&summary);
        carry_out(w, &p, &plan, 0, &summary);
        buf_free(&summary);
        if (plan.ntargets && w->queued) w->queued(w->queued_ud);
    }
    webhook_plan_free(&plan);
    return rc;
}

void webhook_handle(struct webhook_ctx *w, const struct http_request *req, const char *path_token,
                    struct http_response *res)
{
    /* Two statements: C leaves the order of a call's arguments open, and
     * the status must be read after handle() set it. */
    const char *format = handle(w, req, path_token, res);
    count(w, format, res->status);
}
