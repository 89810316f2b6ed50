/* deploy.c - recording pushes' actions and confirming redeploys (see deploy.h). */
#include "deploy.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "confirm.h"
#include "url.h"

/* Routes on one object's labels whose targets are compared at most. */
#define MAX_OBJECT_ROUTES 32
/* Targets whose redacted form and objects are remembered (direct-mapped). */
#define TARGET_CACHE 64

/* What a push records of its target: redacting a URL (a parse and a
 * SHA-256) and listing the route's objects (a walk of the route table) cost
 * more than the rest of the history together, and a target is pushed to
 * again and again. Valid while the route table's generation stays. */
struct target_cache {
    size_t key;
    unsigned long generation;
    char redacted[96];
    char objects[96];
};

struct deploy {
    uv_loop_t *loop;
    struct history *h;
    int confirm_secs;
    struct route_table *routes;
    char *prefix;
    const struct logger *log;
    void (*on_settled)(void *ud, const struct history_entry *e, bool deployed);
    void *settled_ud;
    struct buf scratch;           /* the redacted target: reused, no allocation per push */
    struct target_cache cache[TARGET_CACHE];
    uv_timer_t timer;             /* the earliest confirmation deadline */
    long long timer_due;          /* wall clock it is armed for; 0 disarmed */
    bool closed;
    struct close_cb on_closed;
};

long long deploy_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct deploy *deploy_new(uv_loop_t *loop, const struct deploy_opts *opts)
{
    struct deploy *d = xcalloc(1, sizeof *d);
    d->loop = loop;
    d->h = history_new(opts->history_size);
    d->confirm_secs = opts->confirm_secs;
    d->routes = opts->routes;
    d->prefix = xstrdup(opts->label_prefix ? opts->label_prefix : "webhook-router");
    d->log = opts->log;
    d->on_settled = opts->on_settled;
    d->settled_ud = opts->settled_ud;
    buf_init(&d->scratch);
    uv_timer_init(loop, &d->timer);
    d->timer.data = d;
    return d;
}

struct history *deploy_history(struct deploy *d)
{
    return d->h;
}

int deploy_confirm_secs(const struct deploy *d)
{
    return d->confirm_secs;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct deploy *d = h->data;
    close_cb_call(d->on_closed);
}

void deploy_close(struct deploy *d, void (*cb)(void *ud), void *ud)
{
    if (!d || d->closed) {
        if (cb) cb(ud);
        return;
    }
    d->closed = true;
    d->on_closed = (struct close_cb){cb, ud};
    uv_close((uv_handle_t *)&d->timer, on_timer_closed);
}

void deploy_free(struct deploy *d)
{
    if (!d) return;
    history_free(d->h);
    buf_free(&d->scratch);
    free_n(2, d->prefix, d);
}

/* ---- the objects of a route ---------------------------------------------------- */

struct objects_ctx {
    size_t key;
    bool images;        /* "name (image)" instead of names */
    char *out;
    size_t n, len;
};

static void objects_add(struct objects_ctx *c, const char *s, const char *image)
{
    char item[200];
    if (c->images) snprintf(item, sizeof item, "%s runs %s", s, image ? image : "?");
    else snprintf(item, sizeof item, "%s", s);
    /* Replicas name the same object more than once: list each once. */
    if (strstr(c->out, item)) return;
    int w = snprintf(c->out + c->len, c->n - c->len, "%s%s", c->len ? ", " : "", item);
    if (w > 0) c->len = c->len + (size_t)w < c->n ? c->len + (size_t)w : c->n - 1;
}

static void visit_objects(void *ud, const struct route *r, const struct route_source *const *src, size_t nsrc)
{
    struct objects_ctx *c = ud;
    if (!r->url || hash_str(HASH_INIT, r->url) != c->key) return;
    for (size_t i = 0; i < nsrc && c->len + 1 < c->n; i++)
        objects_add(c, src[i]->name ? src[i]->name : src[i]->id, src[i]->image);
}

/* The containers and services whose routes name the target, comma-separated. */
static void route_objects(struct deploy *d, size_t key, bool images, char *out, size_t n)
{
    out[0] = '\0';
    struct objects_ctx c = {.key = key, .images = images, .out = out, .n = n};
    routes_foreach(d->routes, visit_objects, &c);
}

/* ---- confirmation deadlines ------------------------------------------------------ */

static void arm(struct deploy *d);

static bool expire_one(void *ud, struct history_entry *e)
{
    struct deploy *d = ud;
    long long now = deploy_now_ms();
    if (!confirm_expired(e, now, d->confirm_secs)) return true;
    /* What the route's objects run: as last seen starting, else as the table has them. */
    char running[256];
    if (e->error[0]) history_copy(running, sizeof running, e->error);
    else route_objects(d, e->target_key, true, running, sizeof running);
    struct buf why;   /* cut to the entry's error field by history_set_outcome */
    buf_init(&why);
    buf_printf(&why, "not running it after %d s; %s", d->confirm_secs, running[0] ? running : "nothing runs");
    history_set_outcome(e, HISTORY_UNCONFIRMED, now, buf_cstr(&why));
    buf_free(&why);
    LOG(d->log, LOG_WARN, "redeploy unconfirmed: no object of the route runs the pushed image",
        F_STR("target", e->target), F_STR("repository", e->repository), F_STR("tag", e->tag),
        F_STR("digest", e->digest[0] ? e->digest : NULL), F_STR("objects", e->objects[0] ? e->objects : NULL),
        F_STR("running", running[0] ? running : "nothing"), F_INT("confirm_secs", d->confirm_secs),
        F_STR("event_id", e->event_id[0] ? e->event_id : NULL));
    if (d->on_settled) d->on_settled(d->settled_ud, e, false);
    return true;
}

static void on_deadline(uv_timer_t *t)
{
    struct deploy *d = t->data;
    d->timer_due = 0;
    history_foreach(d->h, expire_one, d);
    arm(d);
}

static void arm_at(struct deploy *d, long long due)
{
    d->timer_due = due;
    if (!due) {
        uv_timer_stop(&d->timer);
        return;
    }
    long long now = deploy_now_ms();
    uv_timer_start(&d->timer, on_deadline, due > now ? (uint64_t)(due - now) : 0, 0);
}

/* The timer follows the earliest deadline of the delivered redeploys: found
 * by a scan of the ring when it fired (once per deadline, not per push). */
static void arm(struct deploy *d)
{
    if (d->closed || d->confirm_secs <= 0) return;
    arm_at(d, confirm_next_deadline(d->h, d->confirm_secs));
}

/* One more deadline: the timer moves only if it comes first. A confirmed
 * entry leaves the timer as it is; it then fires early and finds less. */
static void arm_for(struct deploy *d, const struct history_entry *e)
{
    if (d->closed || d->confirm_secs <= 0) return;
    long long due = e->posted_ms + (long long)d->confirm_secs * 1000;
    if (!d->timer_due || due < d->timer_due) arm_at(d, due);
}

/* ---- redeploys ------------------------------------------------------------------------ */

static const struct target_cache *target_of(struct deploy *d, const char *url, size_t key)
{
    struct target_cache *c = &d->cache[key % TARGET_CACHE];
    unsigned long gen = routes_generation(d->routes) + 1;   /* + 1: never the 0 of an empty slot */
    if (c->generation == gen && c->key == key) return c;
    buf_reset(&d->scratch);
    url_redact(&d->scratch, url);
    history_copy(c->redacted, sizeof c->redacted, buf_cstr(&d->scratch));
    route_objects(d, key, false, c->objects, sizeof c->objects);
    c->key = key;
    c->generation = gen;
    return c;
}

uint64_t deploy_record_redeploy(struct deploy *d, const struct push_event *ev, const char *url)
{
    size_t key = hash_str(HASH_INIT, url);
    const struct target_cache *t = target_of(d, url, key);
    struct history_add a = {
        .now_ms = deploy_now_ms(),
        .action = HISTORY_REDEPLOY,
        .ev = ev,
        .target = t->redacted,
        .target_key = key,
        .objects = t->objects,
    };
    return history_add(d->h, &a);
}

void deploy_forward_done(void *ud, const struct forward_result *r)
{
    struct deploy *d = ud;
    struct history_entry *e = history_get(d->h, r->tag);
    if (!e) return;   /* overwritten since: the ring moved on */
    long long now = deploy_now_ms();
    e->status = r->status;
    e->attempts = r->attempts;
    e->duration_ms = r->duration_ms;
    if (!r->delivered) {
        history_set_outcome(e, HISTORY_FAILED, now, r->error);
        return;
    }
    e->posted_ms = now - r->attempt_ms;
    history_set_outcome(e, HISTORY_DELIVERED, now, NULL);
    arm_for(d, e);
}

/* ---- what the engines show ---------------------------------------------------------------- */

struct observed_ctx {
    struct deploy *d;
    const struct confirm_observation *o;
    const struct docker_started *s;
    long long now;
};

/* What an object of the route started on instead: its digest when it has
 * one, else its image reference. */
static void note_instead(struct history_entry *e, const struct docker_started *s)
{
    const char *runs = s->image ? s->image : "?";
    for (size_t i = 0; i < s->ndigests; i++) {
        const char *at = s->digests[i] ? strrchr(s->digests[i], '@') : NULL;
        if (at) {
            runs = at + 1;
            break;
        }
    }
    char digest[20];   /* "sha256:" and 12 hex digits tell digests apart */
    history_copy(digest, sizeof digest, runs);
    snprintf(e->error, sizeof e->error, "%s %s runs %s%s", s->kind, s->name ? s->name : s->id, digest,
             strlen(runs) >= sizeof digest ? "..." : "");
}

static bool confirm_one(void *ud, struct history_entry *e)
{
    struct observed_ctx *c = ud;
    if (!confirm_matches(e, c->o)) {
        /* Kept in the entry until it is confirmed: what the unconfirmed warn says runs instead. */
        if (e->action == HISTORY_REDEPLOY && e->outcome == HISTORY_DELIVERED && confirm_of_route(e, c->o))
            note_instead(e, c->s);
        return true;
    }
    struct deploy *d = c->d;
    history_deployed(d->h, e, c->now);
    LOG(d->log, LOG_INFO, "redeploy confirmed", F_STR("target", e->target), F_STR("repository", e->repository),
        F_STR("tag", e->tag), F_STR("digest", e->digest[0] ? e->digest : NULL), F_STR(c->s->kind, c->s->name),
        F_STR("engine", c->s->engine), F_INT("deployed_ms", e->deployed_ms),
        F_STR("event_id", e->event_id[0] ? e->event_id : NULL));
    if (d->on_settled) d->on_settled(d->settled_ud, e, true);
    return true;
}

void deploy_observed(void *ud, const struct docker_started *s)
{
    struct deploy *d = ud;
    if (!s->labels) return;
    struct route *routes = NULL;
    char err[256];
    int n = route_parse_labels(d->prefix, s->labels, &routes, err, sizeof err);
    size_t keys[MAX_OBJECT_ROUTES], nkeys = 0;
    for (int i = 0; i < n && nkeys < MAX_OBJECT_ROUTES; i++)
        if (routes[i].url) keys[nkeys++] = hash_str(HASH_INIT, routes[i].url);
    if (n > 0) route_list_free(routes, (size_t)n);
    if (!nkeys) return;
    struct confirm_observation o = {
        .kind = strcmp(s->kind, "service") == 0 ? CONFIRM_SERVICE : CONFIRM_CONTAINER,
        .target_keys = keys,
        .nkeys = nkeys,
        .digests = s->digests,
        .ndigests = s->ndigests,
        .created_ms = s->created_ms,
        .started_ms = s->started_ms,
    };
    struct observed_ctx c = {d, &o, s, deploy_now_ms()};
    history_foreach(d->h, confirm_one, &c);
}

/* ---- engine updates -------------------------------------------------------------------------- */

/* An object across its recreations: the name stays, the container id does not. */
static size_t object_key(const char *engine, const char *kind, const char *id, const char *name)
{
    size_t h = hash_str(HASH_INIT, engine ? engine : "");
    h = hash_str(h, kind ? kind : "");
    return hash_str(h, name ? name : id ? id : "");
}

void deploy_record_update(struct deploy *d, const struct push_event *ev, const struct route_source *src)
{
    char target[128];
    snprintf(target, sizeof target, "%s %s", src->kind, src->name ? src->name : src->id);
    struct history_add a = {
        .now_ms = deploy_now_ms(),
        .action = HISTORY_UPDATE,
        .ev = ev,
        .target = target,
        .target_key = object_key(src->engine, src->kind, src->id, src->name),
        .objects = src->name ? src->name : src->id,
    };
    history_add(d->h, &a);
}

struct update_ctx {
    struct deploy *d;
    const struct update_outcome *o;
    size_t key;
    long long now;
};

static bool update_one(void *ud, struct history_entry *e)
{
    struct update_ctx *c = ud;
    const struct update_outcome *o = c->o;
    if (e->action != HISTORY_UPDATE || e->outcome != HISTORY_QUEUED || e->target_key != c->key) return true;
    /* Pushes of other digests queued behind this update get their own outcome. */
    if (o->digest && e->digest[0] && strcmp(o->digest, e->digest) != 0) return true;
    e->duration_ms = c->now - e->ts_ms;
    e->attempts = 1;
    if (!strcmp(o->outcome, "completed")) history_deployed(c->d->h, e, c->now);
    else if (!strcmp(o->outcome, "unchanged")) history_set_outcome(e, HISTORY_UNCHANGED, c->now, NULL);
    else {
        /* The updater's own words when it has them ("pull: no basic auth credentials"). */
        char why[256];
        snprintf(why, sizeof why, "%s%s%s",
                 !strcmp(o->outcome, "rolled_back") ? "update failed, rolled back" : "update failed",
                 o->error ? ": " : "", o->error ? o->error : "");
        history_set_outcome(e, HISTORY_FAILED, c->now, why);
    }
    return true;
}

void deploy_update_outcome(void *ud, const struct update_outcome *o)
{
    struct deploy *d = ud;
    struct update_ctx c = {d, o, object_key(o->engine, o->kind, o->id, o->name), deploy_now_ms()};
    history_foreach(d->h, update_one, &c);
}

/* ---- notifications ----------------------------------------------------------------------------- */

uint64_t deploy_record_notify(struct deploy *d, const struct push_event *ev, const char *target,
                              const char *objects)
{
    struct history_add a = {
        .now_ms = deploy_now_ms(),
        .action = HISTORY_NOTIFY,
        .ev = ev,
        .target = target,
        .target_key = hash_str(HASH_INIT, target ? target : ""),
        .objects = objects,
    };
    return history_add(d->h, &a);
}

void deploy_notify_outcome(struct deploy *d, uint64_t id, bool delivered, int status, int attempts,
                           long long duration_ms, const char *error)
{
    struct history_entry *e = history_get(d->h, id);
    if (!e) return;
    e->status = status;
    e->attempts = attempts;
    e->duration_ms = duration_ms;
    history_set_outcome(e, delivered ? HISTORY_DELIVERED : HISTORY_FAILED, deploy_now_ms(), delivered ? NULL : error);
}
