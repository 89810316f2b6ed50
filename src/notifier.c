/* notifier.c - see notifier.h.
 *
 * Pending messages live in one list in the order they were opened, which
 * is also the order of their deadlines (the window is the same for all),
 * so one timer serves them: it fires for the head, sends every message
 * that is due and re-arms for the next. */
#include "notifier.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json.h"
#include "notify_request.h"

/* Objects named in one message; more are summed up as "and N more". */
#define MAX_OBJECTS 50

struct health {
    long long last_ok_ms, last_fail_ms;
    unsigned long consecutive_failures;
    char last_error[96];
};

/* A URL written in a label, parsed once. */
struct inline_target {
    struct inline_target *next;
    char *word;
    struct notify_target t;
    struct health health;
};

struct pending {
    struct pending *next;
    const struct notify_target *target;
    enum notify_outcome_kind outcome;
    char *key;                    /* registry "\x1f" repository: the image */
    char *v[TV_COUNT];            /* the placeholders' values, objects excepted */
    char *objs[MAX_OBJECTS];
    size_t nobjs, more;
    uint64_t due;
};

struct notifier {
    uv_loop_t *loop;
    struct forwarder *fwd;
    const struct logger *log;
    struct notifier_opts opts;
    struct inline_target *inlines;
    struct pending *head, *tail;
    size_t npending;
    uv_timer_t timer;
    unsigned long counts[NK_COUNT][2];
    unsigned long dropped;
    struct health *health;        /* per environment target, in config order */
    /* What any known target tells, on a route that redeploys and on a
     * notify-only one: an outcome no target takes costs one test. */
    unsigned wants_redeploy, wants_notify_only;
    bool closing;
    struct close_cb closed;
};

/* One request on its way: what its end is told with. */
struct sent {
    struct notifier *n;
    const struct notify_target *target;
    enum notify_outcome_kind outcome;
    char *v[TV_COUNT];
};

/* ---- targets -------------------------------------------------------------- */

static bool is_url(const char *word)
{
    return strstr(word, "://") != NULL;
}

static void learn(struct notifier *n, const struct notify_target *t)
{
    n->wants_redeploy |= t->on ? t->on : NOTIFY_ON_REDEPLOY;
    n->wants_notify_only |= t->on ? t->on : NOTIFY_ON_NOTIFY_ONLY;
}

/* Runs per outcome: no allocation unless a label URL is seen the first time. */
static const struct notify_target *resolve(struct notifier *n, const char *word, size_t len)
{
    if (!memmem(word, len, "://", 3)) return notify_config_find(n->opts.config, word, len);
    for (struct inline_target *it = n->inlines; it; it = it->next)
        if (strlen(it->word) == len && memcmp(it->word, word, len) == 0) return &it->t;
    struct inline_target *it = xcalloc(1, sizeof *it);
    char err[200];
    char *w = xstrndup(word, len);
    if (notify_target_from_url(w, -1, &it->t, err, sizeof err) < 0) {
        free_n(2, w, it);
        return NULL;
    }
    it->word = w;
    it->next = n->inlines;
    n->inlines = it;
    learn(n, &it->t);
    return &it->t;
}

int notifier_check_word(void *ud, const char *word, char *err, size_t errlen)
{
    struct notifier *n = ud;
    if (!is_url(word)) {
        if (notify_config_find(n->opts.config, word, strlen(word))) return 0;
        /* The name is not a secret: it says which variable is missing. */
        char upper[64];
        size_t i;
        for (i = 0; word[i] && i < sizeof upper - 1; i++)
            upper[i] = word[i] >= 'a' && word[i] <= 'z' ? (char)(word[i] - 'a' + 'A') : word[i];
        upper[i] = '\0';
        snprintf(err, errlen, "unknown notification target \"%.40s\" (no NOTIFY_%.40s_URL is set)", word, upper);
        return -EINVAL;
    }
    /* Parsed once and kept: its _ON is known from now on. */
    if (resolve(n, word, strlen(word))) return 0;
    /* The same parse fails again, this time saying why. */
    struct notify_target t;
    char why[160] = "not a target URL";
    if (notify_target_from_url(word, -1, &t, why, sizeof why) == 0) notify_target_free(&t);
    struct buf d;
    buf_init(&d);
    notify_display(&d, NULL, word);
    snprintf(err, errlen, "invalid target URL (%s): %s", buf_cstr(&d), why);
    buf_free(&d);
    return -EINVAL;
}

void notifier_put_targets(struct notifier *n, struct buf *out, const char *label)
{
    buf_putc(out, '[');
    bool first = true;
    for (const char *p = label ? label : ""; *p;) {
        p += strspn(p, " \t\n");
        size_t len = strcspn(p, " \t\n");
        if (!len) break;
        const struct notify_target *t = resolve(n, p, len);
        if (!first) buf_putc(out, ',');
        first = false;
        if (t) {
            json_put_str(out, t->display);
        } else {
            char *w = xstrndup(p, len);
            struct buf d;
            buf_init(&d);
            notify_display(&d, NULL, w);
            json_put_str(out, buf_cstr(&d));
            buf_free(&d);
            free(w);
        }
        p += len;
    }
    buf_putc(out, ']');
}

/* ---- sending -------------------------------------------------------------- */

static void sent_free(struct sent *s)
{
    for (int i = 0; i < TV_COUNT; i++) free(s->v[i]);
    free(s);
}

static struct health *health_of(struct notifier *n, const struct notify_target *t)
{
    const struct notify_config *c = n->opts.config;
    if (c->n && t >= c->targets && t < c->targets + c->n) return &n->health[t - c->targets];
    for (struct inline_target *it = n->inlines; it; it = it->next)
        if (&it->t == t) return &it->health;
    return NULL;
}

static long long wall_ms(void)
{
    uv_timeval64_t tv;
    uv_gettimeofday(&tv);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void on_sent(void *ud, const struct forward_result *r)
{
    struct sent *s = ud;
    struct notifier *n = s->n;
    n->counts[s->target->kind][r->delivered ? 0 : 1]++;
    struct health *h = r->err == -ECANCELED ? NULL : health_of(n, s->target);
    if (h && r->delivered) {
        h->last_ok_ms = wall_ms();
        h->consecutive_failures = 0;
    } else if (h) {
        h->last_fail_ms = wall_ms();
        h->consecutive_failures++;
        snprintf(h->last_error, sizeof h->last_error, "%s", r->error ? r->error : "not delivered");
    }
    if (n->opts.on_delivery) {
        struct notify_delivery d = {
            .target = s->target->display, .kind = s->target->kind, .outcome = s->outcome,
            .registry = s->v[TV_REGISTRY], .repository = s->v[TV_REPOSITORY], .tag = s->v[TV_TAG],
            .digest = s->v[TV_DIGEST], .event_id = s->v[TV_EVENT_ID], .source = s->v[TV_SOURCE],
            .objects = s->v[TV_OBJECTS], .result = r,
        };
        n->opts.on_delivery(n->opts.on_delivery_ud, &d);
    }
    sent_free(s);
}

/* Builds the message's requests and hands them to the forwarder. */
static size_t send_message(struct notifier *n, const struct notify_target *t, const struct notify_message *m,
                           forward_done_fn done, void *done_ud)
{
    struct notify_request reqs[NOTIFY_MAX_REQUESTS];
    size_t nreq = notify_build(t, m, reqs, NOTIFY_MAX_REQUESTS);
    for (size_t i = 0; i < nreq; i++) {
        struct forward_request fr = {.method = reqs[i].method, .url = reqs[i].url, .headers = reqs[i].headers,
                                     .body = reqs[i].body, .body_len = reqs[i].body_len, .label = t->display};
        struct sent *s = NULL;
        if (!done) {
            s = xcalloc(1, sizeof *s);
            s->n = n;
            s->target = t;
            s->outcome = m->outcome;
            for (int v = 0; v < TV_COUNT; v++) s->v[v] = xstrdup_or_null(m->vars.v[v]);
        }
        int rc = forward_send(n->fwd, &fr, done ? done : on_sent, done ? done_ud : s);
        if (rc < 0) {
            LOG(n->log, LOG_WARN, "notification dropped", F_STR("target", t->display),
                F_STR("outcome", notify_outcome_name(m->outcome)),
                F_STR("error", rc == -EAGAIN ? "the notification queue is full" : "unusable URL"));
            struct forward_result r = {.err = rc, .error = rc == -EAGAIN ? "notification queue full" : "unusable URL"};
            if (done) done(done_ud, &r);
            else on_sent(s, &r);
        }
        notify_request_free(&reqs[i]);
    }
    return nreq;
}

static void put_objects(struct buf *b, const struct pending *p)
{
    for (size_t i = 0; i < p->nobjs; i++) {
        if (i) buf_puts(b, ", ");
        buf_puts(b, p->objs[i]);
    }
    if (p->more) buf_printf(b, " and %zu more", p->more);
}

static void pending_free(struct pending *p)
{
    free(p->key);
    for (int i = 0; i < TV_COUNT; i++) free(p->v[i]);
    for (size_t i = 0; i < p->nobjs; i++) free(p->objs[i]);
    free(p);
}

static void send_pending(struct notifier *n, struct pending *p)
{
    struct buf objects, time;
    buf_init(&objects);
    buf_init(&time);
    put_objects(&objects, p);
    log_put_time(&time, wall_ms());
    struct notify_message m = {.outcome = p->outcome};
    for (int i = 0; i < TV_COUNT; i++) m.vars.v[i] = p->v[i];
    m.vars.v[TV_OBJECTS] = buf_cstr(&objects);
    m.vars.v[TV_TIME] = buf_cstr(&time);
    m.vars.v[TV_OUTCOME] = notify_outcome_name(p->outcome);
    send_message(n, p->target, &m, NULL, NULL);
    buf_free(&objects);
    buf_free(&time);
}

static void on_timer(uv_timer_t *h);

static void arm(struct notifier *n)
{
    if (!n->head) return;
    uint64_t now = uv_now(n->loop);
    uv_timer_start(&n->timer, on_timer, n->head->due > now ? n->head->due - now : 0, 0);
}

static void send_due(struct notifier *n, bool all)
{
    uint64_t now = uv_now(n->loop);
    while (n->head && (all || n->head->due <= now)) {
        struct pending *p = n->head;
        n->head = p->next;
        if (!n->head) n->tail = NULL;
        n->npending--;
        send_pending(n, p);
        pending_free(p);
    }
}

static void on_timer(uv_timer_t *h)
{
    struct notifier *n = h->data;
    send_due(n, false);
    arm(n);
}

void notifier_flush(struct notifier *n)
{
    if (!n) return;
    uv_timer_stop(&n->timer);
    send_due(n, true);
}

/* ---- outcomes ------------------------------------------------------------- */

static void set(char **slot, const char *v)
{
    free(*slot);
    *slot = xstrdup_or_null(v);
}

static void add_object(struct pending *p, const char *name)
{
    for (size_t i = 0; i < p->nobjs; i++)
        if (strcmp(p->objs[i], name) == 0) return;
    if (p->nobjs < MAX_OBJECTS) p->objs[p->nobjs++] = xstrdup(name);
    else p->more++;
}

/* The outcome's values: the last outcome merged into a message names it. */
static void fill(struct pending *p, const struct notify_outcome *o)
{
    const struct push_event *ev = o->ev;
    set(&p->v[TV_REPOSITORY], ev->repository);
    set(&p->v[TV_TAG], ev->tag);
    set(&p->v[TV_DIGEST], ev->digest);
    set(&p->v[TV_REGISTRY], ev->registry);
    set(&p->v[TV_EVENT_ID], ev->id);
    set(&p->v[TV_SOURCE], ev->format);
    set(&p->v[TV_ERROR], o->error);
    struct buf b;
    buf_init(&b);
    buf_printf(&b, "%s%s%s:%s", ev->registry ? ev->registry : "", ev->registry ? "/" : "",
               ev->repository ? ev->repository : "", ev->tag ? ev->tag : "");
    free(p->v[TV_IMAGE]);
    p->v[TV_IMAGE] = buf_steal(&b);
    char num[32];
    snprintf(num, sizeof num, "%d", o->status);
    set(&p->v[TV_STATUS], o->status ? num : NULL);
    snprintf(num, sizeof num, "%d", o->attempts);
    set(&p->v[TV_ATTEMPTS], o->attempts ? num : NULL);
    snprintf(num, sizeof num, "%lld", o->duration_ms);
    set(&p->v[TV_DURATION_MS], o->attempts ? num : NULL);
    for (size_t i = 0; i < o->nobjects; i++) add_object(p, o->objects[i]);
}

static void add(struct notifier *n, const struct notify_target *t, const struct notify_outcome *o)
{
    struct buf key;
    buf_init(&key);
    buf_printf(&key, "%s\x1f%s", o->ev->registry ? o->ev->registry : "", o->ev->repository ? o->ev->repository : "");
    struct pending *p;
    for (p = n->head; p; p = p->next)
        if (p->target == t && p->outcome == o->outcome && strcmp(p->key, buf_cstr(&key)) == 0) break;
    if (!p) {
        if (n->npending >= n->opts.max_pending) {
            /* A storm of distinct images: the chat gets what fits, the
             * rest is counted and said once per window. */
            n->counts[t->kind][1]++;
            if (n->dropped++ == 0)
                LOG(n->log, LOG_WARN, "notifications dropped: too many pending", F_STR("target", t->display),
                    F_INT("pending", n->npending));
            buf_free(&key);
            return;
        }
        p = xcalloc(1, sizeof *p);
        p->target = t;
        p->outcome = o->outcome;
        p->key = buf_steal(&key);
        p->due = uv_now(n->loop) + (uint64_t)n->opts.window_ms;
        if (n->tail) n->tail->next = p;
        else n->head = p;
        n->tail = p;
        n->npending++;
        if (n->head == p) {
            n->dropped = 0;
            arm(n);
        }
    }
    buf_free(&key);
    fill(p, o);
}

void notifier_outcome(struct notifier *n, const struct notify_outcome *o)
{
    if (!n || n->closing || !o->notify || !o->ev) return;
    if (!((o->redeploys ? n->wants_redeploy : n->wants_notify_only) & NOTIFY_ON(o->outcome))) return;
    for (const char *p = o->notify; *p;) {
        p += strspn(p, " \t\n");
        size_t len = strcspn(p, " \t\n");
        if (!len) break;
        const struct notify_target *t = resolve(n, p, len);
        p += len;
        if (!t) continue;   /* the route's labels were checked: a target gone since */
        unsigned on = t->on ? t->on : o->redeploys ? NOTIFY_ON_REDEPLOY : NOTIFY_ON_NOTIFY_ONLY;
        if (on & NOTIFY_ON(o->outcome)) add(n, t, o);
    }
}

static const char *object_name(const struct route_source *s)
{
    return s->name ? s->name : s->id;
}

void notifier_route_outcome(struct notifier *n, enum notify_outcome_kind outcome, const struct push_event *ev,
                            const struct route_hit *hit, const struct forward_result *r)
{
    const char *objs[MAX_OBJECTS];
    size_t k = 0;
    for (size_t i = 0; i < hit->nsources && k < MAX_OBJECTS; i++) objs[k++] = object_name(hit->sources[i]);
    struct notify_outcome o = {
        .outcome = outcome, .ev = ev, .notify = hit->route->notify,
        .redeploys = hit->route->url || hit->route->update, .objects = objs, .nobjects = k,
        .error = r ? r->error : NULL, .status = r ? r->status : 0, .attempts = r ? r->attempts : 0,
        .duration_ms = r ? r->duration_ms : 0,
    };
    notifier_outcome(n, &o);
}

void notifier_object_outcome(struct notifier *n, struct route_table *routes, const char *engine, const char *id,
                             enum notify_outcome_kind outcome, const struct push_event *ev, const char *error)
{
    size_t nr;
    const struct route *r = routes_of_source(routes, engine, id, &nr);
    const struct route_source *src = routes_find(routes, engine, id);
    /* A source's routes share its labels: one notify label for all. */
    if (!n || !nr || !r[0].notify || !src) return;
    const char *name = object_name(src);
    struct notify_outcome o = {.outcome = outcome, .ev = ev, .notify = r[0].notify, .redeploys = true,
                               .objects = &name, .nobjects = 1, .error = error};
    notifier_outcome(n, &o);
}

/* ---- redeploy POSTs ------------------------------------------------------- */

/* What a watched POST must remember: the event and the routes, copied
 * (the route table may change before the POST ends), all in one block:
 * the struct, the routes, their object name pointers, then the strings. */
struct redeploy_watch {
    struct notifier *n;
    struct push_event ev;
    size_t nroutes;
    struct watched_route {
        const char *notify;
        const char **objects;
        size_t nobjects;
    } *routes;
};

static void on_redeploy_done(void *ud, const struct forward_result *r)
{
    struct redeploy_watch *w = ud;
    /* Shutting down: nobody left to send it. */
    for (size_t i = 0; i < w->nroutes && r->err != -ECANCELED; i++) {
        struct watched_route *wr = &w->routes[i];
        struct notify_outcome o = {
            .outcome = r->delivered ? NO_DELIVERED : NO_FAILED, .ev = &w->ev, .notify = wr->notify,
            .redeploys = true, .objects = wr->objects, .nobjects = wr->nobjects,
            .error = r->error, .status = r->status, .attempts = r->attempts, .duration_ms = r->duration_ms,
        };
        notifier_outcome(w->n, &o);
    }
    free(w);
}

static bool hit_is(const struct route_hit *h, const char *url)
{
    return h->route->url && strcmp(h->route->url, url) == 0;
}

static size_t str_size(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

/* Copies s to *at (NULL stays NULL) and moves *at past it. */
static const char *pack(char **at, const char *s)
{
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *p = memcpy(*at, s, n);
    *at += n;
    return p;
}

bool notifier_redeploy_watch(struct notifier *n, const char *url, const struct push_event *ev,
                             const struct route_hit *hits, size_t nhits, struct forward_watch *out)
{
    size_t nmatch = 0, nobjs = 0, bytes = 0;
    for (size_t i = 0; n && i < nhits; i++) {
        if (!hit_is(&hits[i], url)) continue;
        nmatch++;
        nobjs += hits[i].nsources;
        bytes += str_size(hits[i].route->notify);
        for (size_t k = 0; k < hits[i].nsources; k++) bytes += str_size(object_name(hits[i].sources[k]));
    }
    if (!n || !nmatch || !(n->wants_redeploy & (NOTIFY_ON(NO_DELIVERED) | NOTIFY_ON(NO_FAILED))))
        return false;   /* nobody to tell how it ends */
    bytes += str_size(ev->format) + str_size(ev->id) + str_size(ev->registry) + str_size(ev->repository) +
             str_size(ev->tag) + str_size(ev->digest);
    size_t head = sizeof(struct redeploy_watch) + nmatch * sizeof(struct watched_route) + nobjs * sizeof(char *);
    struct redeploy_watch *w = xmalloc(head + bytes);
    w->n = n;
    w->nroutes = 0;
    w->routes = (struct watched_route *)(w + 1);
    const char **objs = (const char **)(w->routes + nmatch);
    char *at = (char *)w + head;
    w->ev = (struct push_event){.format = pack(&at, ev->format), .id = pack(&at, ev->id),
                                .registry = pack(&at, ev->registry), .repository = pack(&at, ev->repository),
                                .tag = pack(&at, ev->tag), .digest = pack(&at, ev->digest)};
    for (size_t i = 0; i < nhits; i++) {
        const struct route_hit *h = &hits[i];
        if (!hit_is(h, url)) continue;
        struct watched_route *wr = &w->routes[w->nroutes++];
        wr->notify = pack(&at, h->route->notify);
        wr->objects = objs;
        wr->nobjects = h->nsources;
        for (size_t k = 0; k < h->nsources; k++) *objs++ = pack(&at, object_name(h->sources[k]));
    }
    *out = (struct forward_watch){.fn = on_redeploy_done, .ud = w};
    return true;
}

/* ---- the rest ------------------------------------------------------------- */

int notifier_test(struct notifier *n, const char *name, forward_done_fn done, void *ud)
{
    const struct notify_target *t = notify_config_find(n->opts.config, name, strlen(name));
    if (!t) return -ENOENT;
    struct notify_message m = {.outcome = NO_PUSH};
    m.vars.v[TV_REPOSITORY] = "example/app";
    m.vars.v[TV_TAG] = "notify-test";
    m.vars.v[TV_DIGEST] = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    m.vars.v[TV_REGISTRY] = "registry.example";
    m.vars.v[TV_IMAGE] = "registry.example/example/app:notify-test";
    m.vars.v[TV_EVENT_ID] = "notify-test";
    m.vars.v[TV_SOURCE] = "notify-test";
    m.vars.v[TV_OUTCOME] = "push";
    m.vars.v[TV_OBJECTS] = "a test message from webhook-router notify-test";
    return (int)send_message(n, t, &m, done, ud);
}

void notifier_foreach_target(struct notifier *n, notify_health_fn fn, void *ud)
{
    if (!n) return;
    const struct notify_config *c = n->opts.config;
    for (size_t i = 0; i < c->n; i++) {
        const struct health *h = &n->health[i];
        struct notify_target_health th = {c->targets[i].name, c->targets[i].display, c->targets[i].kind,
                                          h->last_ok_ms, h->last_fail_ms, h->consecutive_failures,
                                          h->last_error[0] ? h->last_error : NULL};
        fn(ud, &th);
    }
    for (const struct inline_target *it = n->inlines; it; it = it->next) {
        const struct health *h = &it->health;
        struct notify_target_health th = {NULL, it->t.display, it->t.kind, h->last_ok_ms, h->last_fail_ms,
                                          h->consecutive_failures, h->last_error[0] ? h->last_error : NULL};
        fn(ud, &th);
    }
}

unsigned long notifier_count(const struct notifier *n, enum notify_kind kind, int failed)
{
    return n ? n->counts[kind][failed ? 1 : 0] : 0;
}

struct notifier *notifier_new(uv_loop_t *loop, struct forwarder *fwd, const struct logger *lg,
                              const struct notifier_opts *opts)
{
    struct notifier *n = xcalloc(1, sizeof *n);
    n->loop = loop;
    n->fwd = fwd;
    n->log = lg;
    n->opts = *opts;
    if (!n->opts.max_pending) n->opts.max_pending = 1000;
    n->health = xcalloc(opts->config->n ? opts->config->n : 1, sizeof *n->health);
    for (size_t i = 0; i < opts->config->n; i++) learn(n, &opts->config->targets[i]);
    uv_timer_init(loop, &n->timer);
    n->timer.data = n;
    return n;
}

static void on_closed(uv_handle_t *h)
{
    struct notifier *n = h->data;
    close_cb_call(n->closed);
}

void notifier_close(struct notifier *n, void (*cb)(void *ud), void *ud)
{
    if (CLOSE_BEGIN(n, cb, ud)) return;
    uv_close((uv_handle_t *)&n->timer, on_closed);
}

void notifier_free(struct notifier *n)
{
    if (!n) return;
    while (n->head) {
        struct pending *p = n->head;
        n->head = p->next;
        pending_free(p);
    }
    while (n->inlines) {
        struct inline_target *it = n->inlines;
        n->inlines = it->next;
        notify_target_free(&it->t);
        free(it->word);
        free(it);
    }
    free(n->health);
    free(n);
}
