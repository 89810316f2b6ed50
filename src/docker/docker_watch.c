/* docker_watch.c - one Docker engine's labels, kept exact.
 *
 * States: connecting -> syncing -> live, and reconnecting after any failure.
 * A sync is: GET /version (pick the API version), GET /events (the stream
 * stays open), and once the stream is live GET /containers/json. Events that
 * arrive while the list is in flight are kept and replayed on top of it:
 * create and destroy are idempotent against a list taken before or after
 * them, so replaying in order converges on the engine's state. */
#include "docker_watch.h"

#include <assert.h>
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "docker_engine.h"
#include "docker_events.h"
#include "json_parse.h"
#include "json_split.h"
#include "url.h"

#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000
#define REQUEST_TIMEOUT_MS 30000   /* default of docker_watch_opts.request_timeout_ms */
/* TCP keepalive of the /events stream on tcp:// engines: idle seconds
 * before the first probe. A quiet engine is normal; a half-open one (its
 * host died, a NAT forgot us) is only ever noticed this way. */
#define EVENTS_KEEPALIVE_SECS 30
#define CAUSE_LEN 128
#define MAX_EVENT_LINE (1024 * 1024)
#define MAX_BUFFERED_EVENTS 10000
#define MAX_LIST_BYTES (256 * 1024 * 1024)
#define MAX_LISTED_CONTAINER (4 * 1024 * 1024)   /* one container's JSON in the list */
/* A failed GET /services/<id> is asked again after 0.5 s, 1 s and 2 s. */
#define SVC_FETCH_RETRIES 3
#define SVC_RETRY_MIN_MS 500
/* Container create times remembered for their start event: a recreate
 * creates and starts within seconds, so a few suffice. */
#define RECENT_CREATES 64

/* One container of GET /containers/json: what a sync needs of it. */
struct listed {
    char *id, *name, *image, *image_id;
    json_t *labels;   /* its keys under the prefix and the stack's; NULL: none under the prefix */
};

/* GET /containers/json as it arrives: one container parsed at a time,
 * kept as a struct listed, so a sync holds neither the megabytes of the
 * list nor their parse, only the few fields and labels that route. */
struct list_read {
    struct json_split split;
    struct listed *items;
    size_t n, cap;
    int status;
    size_t bytes;
    uint64_t started_ms;   /* the request was sent */
    uint64_t engine_ms;    /* from then to its last byte: the engine's share of a sync */
};

enum state { ST_CONNECTING, ST_SYNCING, ST_LIVE, ST_RECONNECTING };
static const char *const state_names[] = {"connecting", "syncing", "live", "reconnecting"};

struct docker_watch {
    uv_loop_t *loop;
    struct docker_engine *eng;       /* not owned: the app's, shared with the updater */
    const char *host;                /* its DOCKER_HOST entry; names this engine */
    char *prefix;
    int cache_ttl_secs;
    uint64_t request_timeout_ms;     /* one API call, connect to last byte; every response head */
    struct route_table *routes;
    const struct logger *log;
    docker_started_fn on_started;
    void *started_ud;
    struct recent_create {
        char id[72];
        long long ms;
    } creates[RECENT_CREATES];       /* a ring, by create event */
    size_t ncreates;

    bool tcp;                        /* a tcp:// engine: keepalive on the stream */

    enum state state;
    bool synced;
    char *last_error;
    uint64_t backoff_ms;
    uint64_t sync_started_ms;
    bool resync;                     /* the list in flight is a background resync */

    struct http_call *version_call, *events_call, *list_call;
    /* The client's one-line cause of a failed call ("no response head
     * within 30000 ms"), one buffer per call slot since they overlap. */
    char version_cause[CAUSE_LEN], events_cause[CAUSE_LEN], list_cause[CAUSE_LEN];
    bool swarm_manager;              /* services are read too (from /info) */
    unsigned long reconnects;
    struct list_read listed;         /* the containers: read, then held while the services list is in flight */
    struct svc_fetch *fetches;        /* GET /services/<id> in flight */
    struct docker_inspect *inspects;  /* GET /images/<ref>/json in flight */
    struct line_splitter lines;
    char **pending;                  /* event lines received while listing */
    size_t npending;
    bool listing;

    uv_timer_t retry_timer;
    uv_timer_t resync_timer;
    int open_handles;
    bool closing;
    struct close_cb closed;     /* docker_watch_close's, once freed */
};

/* Service events carry no labels: each create/update is followed by a GET
 * of that one service. A newer event for the same service cancels the
 * older fetch, so a slow answer can never resurrect a removed service.
 * A failed GET is retried on its own (the engine connection is fine: the
 * /events stream says so), and only after the last retry does a list
 * resync the table. */
struct svc_fetch {
    struct docker_watch *w;
    char *id;
    struct http_call *call;
    unsigned attempts;               /* GETs sent so far */
    char cause[CAUSE_LEN];
    uv_timer_t retry;                /* the backoff before the next one */
    struct svc_fetch *next;
};

struct docker_inspect {
    struct docker_watch *w;
    struct http_call *call;
    docker_image_fn cb;
    void *ud;
    char cause[CAUSE_LEN];
    struct docker_inspect *next;
};

static void connect_engine(struct docker_watch *w);

/* ---- small helpers ------------------------------------------------------ */

static void clear_pending(struct docker_watch *w)
{
    for (size_t i = 0; i < w->npending; i++) free(w->pending[i]);
    free(w->pending);
    w->pending = NULL;
    w->npending = 0;
}

static void on_fetch_closed(uv_handle_t *h)
{
    struct svc_fetch *f = h->data;   /* touches nothing else: w may be gone by now */
    free(f->id);
    free(f);
}

/* Unlinks f; it is freed once its timer is closed. */
static void fetch_drop(struct docker_watch *w, struct svc_fetch *f)
{
    for (struct svc_fetch **pp = &w->fetches; *pp; pp = &(*pp)->next)
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    uv_close((uv_handle_t *)&f->retry, on_fetch_closed);
}

static void fetch_cancel_id(struct docker_watch *w, const char *id)
{
    for (struct svc_fetch *f = w->fetches, *next; f; f = next) {
        next = f->next;
        if (!id || strcmp(f->id, id) == 0) {
            http_call_cancel(f->call);
            fetch_drop(w, f);
        }
    }
}

static void listed_clear(struct list_read *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].id);
        free(l->items[i].name);
        free(l->items[i].image);
        free(l->items[i].image_id);
        json_decref(l->items[i].labels);
    }
    free(l->items);
    json_split_free(&l->split);
    *l = (struct list_read){0};
    json_split_init(&l->split, MAX_LISTED_CONTAINER);
}

static void cancel_calls(struct docker_watch *w)
{
    http_call_cancel(w->version_call);
    http_call_cancel(w->events_call);
    http_call_cancel(w->list_call);
    w->version_call = w->events_call = w->list_call = NULL;
    fetch_cancel_id(w, NULL);
    listed_clear(&w->listed);
}

/* What every request to the engine has: GET only, and a deadline on the
 * response head, /events included (an engine or proxy that accepts and
 * never answers must not leave the watcher waiting forever). */
static struct http_client_opts engine_get(const struct docker_watch *w, char *cause)
{
    cause[0] = '\0';
    return (struct http_client_opts){
        .connect_timeout_ms = w->request_timeout_ms,
        .head_timeout_ms = w->request_timeout_ms,
        .errbuf = cause,
        .errbuf_len = CAUSE_LEN,
    };
}

static void start_get(struct docker_watch *w, struct http_call **slot, char *cause, const char *path,
                      uint64_t response_timeout_ms, size_t max_body,
                      void (*on_head)(void *, int, const char *(*)(void *, const char *), void *),
                      void (*on_body)(void *, const char *, size_t),
                      void (*on_done)(void *, int, int, const char *, size_t))
{
    struct http_client_opts o = engine_get(w, cause);
    o.response_timeout_ms = response_timeout_ms;
    o.on_head = on_head;
    o.on_body = on_body;
    o.max_body = max_body;
    o.on_done = on_done;
    o.ud = w;
    /* Only ever GET: the watcher never changes the engine. */
    *slot = docker_engine_call(w->eng, "GET", path, &o);
}

/* ---- failure and reconnect ---------------------------------------------- */

static void on_retry(uv_timer_t *t)
{
    connect_engine(t->data);
}

static void fail(struct docker_watch *w, const char *what, const char *detail)
{
    char msg[512];
    snprintf(msg, sizeof msg, "%s %s: %s", what, w->host, detail);
    /* Say it plainly once; repeats of the same problem go to debug. */
    bool repeat = w->last_error && strcmp(w->last_error, msg) == 0;
    LOG(w->log, repeat ? LOG_DEBUG : LOG_WARN,
        w->synced ? "docker connection lost" : "docker unreachable", F_STR("engine", w->host),
        F_STR("error", msg), F_INT("retry_ms", w->backoff_ms),
        F_STR("note", w->synced ? "routing continues with the last known labels" : NULL));
    free(w->last_error);
    w->last_error = xstrdup(msg);
    cancel_calls(w);
    clear_pending(w);
    w->listing = false;
    w->resync = false;
    w->state = ST_RECONNECTING;
    w->reconnects++;
    uv_timer_stop(&w->resync_timer);
    uv_timer_start(&w->retry_timer, on_retry, w->backoff_ms, 0);
    w->backoff_ms = w->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : w->backoff_ms * 2;
}

/* Errors that mean the socket was never reached (before any response). */
static bool is_connect_error(int err)
{
    return err == -ENOENT || err == -ECONNREFUSED || err == -EACCES || err == -EPERM ||
           err == -ENOTSOCK || err == -EHOSTUNREACH || err == -ENETUNREACH ||
           err == -EADDRNOTAVAIL;
}

/* The cause of a failed call in words: "malformed HTTP response", "HTTP 500",
 * or the client's own when it gave one ("no response head within 30000 ms"). */
static void describe_error(int err, int status, const char *cause, char *detail, size_t n)
{
    if (err && cause && cause[0]) snprintf(detail, n, "%s", cause);
    else if (err == -E2BIG) snprintf(detail, n, "the response is too large");
    else if (err == -EPROTO) snprintf(detail, n, "malformed HTTP response");
    else if (err) snprintf(detail, n, "%s", uv_strerror(err));
    else snprintf(detail, n, "HTTP %d", status);
}

/* what: the request, e.g. "GET /version"; a failure to connect is named
 * "connect" instead, since that is what an operator has to fix. */
static void fail_errno(struct docker_watch *w, const char *what, int err, int status, const char *cause)
{
    char detail[CAUSE_LEN];
    if (status == 0 && is_connect_error(err)) what = "connect";
    describe_error(err, status, cause, detail, sizeof detail);
    fail(w, what, detail);
}

/* ---- applying state ----------------------------------------------------- */

static const char *attr(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The labels that name a container's stack, in order of preference:
 * Compose's project, then a Swarm stack's namespace. */
static const char *const stack_keys[] = {"com.docker.compose.project", "com.docker.stack.namespace"};
#define NSTACK_KEYS (sizeof stack_keys / sizeof stack_keys[0])

static const char *stack_of(json_t *labels)
{
    const char *s = NULL;
    for (size_t i = 0; i < NSTACK_KEYS && !s; i++) s = attr(labels, stack_keys[i]);
    return s;
}

/* One service from /services or /services/<id>: its Spec.Labels route. */
static int put_service(struct docker_watch *w, json_t *svc)
{
    const char *id = attr(svc, "ID");
    json_t *spec = json_object_get(svc, "Spec");
    json_t *labels = json_object_get(spec, "Labels");
    if (!id) return -1;
    if (!json_is_object(labels)) {
        routes_remove(w->routes, w->host, id);
        return 0;
    }
    json_t *cspec = json_object_get(json_object_get(spec, "TaskTemplate"), "ContainerSpec");
    struct route_source src = {.engine = w->host, .kind = "service", .id = id, .name = attr(spec, "Name"),
                               .stack = attr(labels, "com.docker.stack.namespace"), .image = attr(cspec, "Image")};
    return routes_put(w->routes, &src, labels, w->prefix, w->log);
}

static void start_list(struct docker_watch *w);
static void fetch_send(struct svc_fetch *f);

static long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A routed service was created or updated: its task image (pinned to a
 * digest when deployed with one) is what it runs from now on. */
static void report_service(struct docker_watch *w, json_t *svc)
{
    if (!w->on_started) return;
    json_t *spec = json_object_get(svc, "Spec");
    const char *image = attr(json_object_get(json_object_get(spec, "TaskTemplate"), "ContainerSpec"), "Image");
    const char *digests[1] = {image};
    struct docker_started s = {.engine = w->host, .kind = "service", .id = attr(svc, "ID"),
                               .name = attr(spec, "Name"), .labels = json_object_get(spec, "Labels"),
                               .image = image, .digests = digests, .ndigests = image ? 1 : 0,
                               .started_ms = wall_ms()};
    w->on_started(w->started_ud, &s);
}

static void on_fetch_retry(uv_timer_t *t)
{
    fetch_send(t->data);
}

/* A list taken now includes whatever the fetch would have told: unless one
 * is in flight already (it was started after the event, so it has it too). */
static void resync_now(struct docker_watch *w)
{
    if (w->state != ST_LIVE || w->list_call || w->listing) return;
    w->resync = true;
    start_list(w);
}

static void service_fetch_failed(struct svc_fetch *f, int err, int status)
{
    struct docker_watch *w = f->w;
    char detail[CAUSE_LEN];
    describe_error(err, status, f->cause, detail, sizeof detail);
    if (f->attempts <= SVC_FETCH_RETRIES) {
        uint64_t delay = (uint64_t)SVC_RETRY_MIN_MS << (f->attempts - 1);
        LOG(w->log, LOG_DEBUG, "service fetch failed, retrying", F_STR("engine", w->host),
            F_STR("service", f->id), F_STR("error", detail), F_INT("attempt", f->attempts),
            F_INT("retry_ms", delay));
        uv_timer_start(&f->retry, on_fetch_retry, delay, 0);
        return;
    }
    LOG(w->log, LOG_WARN, "service fetch failed", F_STR("engine", w->host), F_STR("service", f->id),
        F_STR("error", detail), F_INT("attempts", f->attempts),
        F_STR("note", "resyncing the engine's list instead"));
    fetch_drop(w, f);
    resync_now(w);
}

static void on_service_done(void *ud, int err, int status, const char *body, size_t len)
{
    struct svc_fetch *f = ud;
    struct docker_watch *w = f->w;
    f->call = NULL;
    if (status != 404 && (err || status != 200)) {
        service_fetch_failed(f, err, status);
        return;
    }
    char *id = xstrdup(f->id);
    fetch_drop(w, f);
    if (status == 404) {
        /* Gone before we asked: the remove event says the same. */
        if (routes_remove(w->routes, w->host, id))
            LOG(w->log, LOG_INFO, "route removed", F_STR("engine", w->host), F_STR("service", id),
                F_INT("routes", routes_count(w->routes)));
    } else {
        json_error_t jerr;
        json_t *svc = json_loadb(body, len, 0, &jerr);
        size_t before = routes_count(w->routes);
        bool known = routes_find(w->routes, w->host, id) != NULL;
        int n = put_service(w, svc);
        const char *name = attr(json_object_get(svc, "Spec"), "Name");
        if (n > 0) report_service(w, svc);
        /* A service update sends several events, each re-read: info only
         * when its routes appear or the map changes, not for each. */
        bool news = n > 0 && (!known || routes_count(w->routes) != before);
        LOG(w->log, news ? LOG_INFO : LOG_DEBUG, n > 0 ? "service routes set" : "service has no routes",
            F_STR("engine", w->host), F_STR("service", name), F_STR("id", id), F_INT("service_routes", n),
            F_INT("routes", routes_count(w->routes)), F_INT("routes_before", before));
        json_decref(svc);
    }
    free(id);
}

static void fetch_send(struct svc_fetch *f)
{
    struct docker_watch *w = f->w;
    f->attempts++;
    struct buf path;
    buf_init(&path);
    buf_puts(&path, "/services/");
    url_encode(&path, f->id);
    struct http_client_opts o = engine_get(w, f->cause);
    o.response_timeout_ms = w->request_timeout_ms;
    o.max_body = 4 * 1024 * 1024;
    o.on_done = on_service_done;
    o.ud = f;
    f->call = docker_engine_call(w->eng, "GET", buf_cstr(&path), &o);
    buf_free(&path);
}

static void fetch_service(struct docker_watch *w, const char *id)
{
    fetch_cancel_id(w, id);
    struct svc_fetch *f = xcalloc(1, sizeof *f);
    f->w = w;
    f->id = xstrdup(id);
    uv_timer_init(w->loop, &f->retry);
    f->retry.data = f;
    f->next = w->fetches;
    w->fetches = f;
    fetch_send(f);
}

static void apply_service_event(struct docker_watch *w, struct docker_event *ev)
{
    LOG(w->log, LOG_DEBUG, "docker event", F_STR("engine", w->host), F_STR("action", ev->action),
        F_STR("service", attr(ev->attributes, "name")), F_STR("id", ev->id));
    if (strcmp(ev->action, "create") == 0 || strcmp(ev->action, "update") == 0) {
        fetch_service(w, ev->id);
    } else if (strcmp(ev->action, "remove") == 0) {
        fetch_cancel_id(w, ev->id);
        if (routes_remove(w->routes, w->host, ev->id))
            LOG(w->log, LOG_INFO, "route removed", F_STR("engine", w->host),
                F_STR("service", attr(ev->attributes, "name")), F_STR("id", ev->id),
                F_INT("routes", routes_count(w->routes)));
    }
}

static long long event_ms(const struct docker_event *ev)
{
    return ev->time_nano > 0 ? ev->time_nano / 1000000 : wall_ms();
}

static void remember_create(struct docker_watch *w, const struct docker_event *ev)
{
    if (!w->on_started) return;
    struct recent_create *c = &w->creates[w->ncreates++ % RECENT_CREATES];
    snprintf(c->id, sizeof c->id, "%s", ev->id);
    c->ms = event_ms(ev);
}

static long long created_ms(const struct docker_watch *w, const char *id)
{
    for (size_t i = 0; i < RECENT_CREATES; i++)
        if (w->creates[i].id[0] && strcmp(w->creates[i].id, id) == 0) return w->creates[i].ms;
    return 0;
}

/* A routed container started: one inspect of its image for RepoDigests,
 * then the report. Holds the event's attributes until the answer. */
struct start_report {
    struct docker_watch *w;
    char *id;
    json_t *attributes;
    long long created_ms, started_ms;
};

static void start_report_free(struct start_report *r)
{
    json_decref(r->attributes);
    free_n(2, r->id, r);
}

static void on_start_image(void *ud, int err, json_t *image)
{
    struct start_report *r = ud;
    struct docker_watch *w = r->w;
    json_t *rd = json_object_get(image, "RepoDigests");
    size_t n = json_is_array(rd) ? json_array_size(rd) : 0;
    const char **digests = xcalloc(n + 1, sizeof *digests);
    for (size_t i = 0; i < n; i++) digests[i] = json_string_value(json_array_get(rd, i));
    if (err)
        LOG(w->log, LOG_DEBUG, "image inspect failed", F_STR("engine", w->host), F_STR("id", r->id),
            F_STR("error", uv_strerror(err)));
    const char *name = attr(r->attributes, "name");
    struct docker_started s = {.engine = w->host, .kind = "container", .id = r->id, .name = name,
                               .labels = r->attributes, .image = attr(r->attributes, "image"),
                               .digests = digests, .ndigests = n, .created_ms = r->created_ms,
                               .started_ms = r->started_ms};
    w->on_started(w->started_ud, &s);
    free(digests);
    start_report_free(r);
}

static void follow_start(struct docker_watch *w, const struct docker_event *ev)
{
    const char *image = attr(ev->attributes, "image");
    if (!w->on_started || !image || !routes_find(w->routes, w->host, ev->id)) return;
    struct start_report *r = xcalloc(1, sizeof *r);
    r->w = w;
    r->id = xstrdup(ev->id);
    r->attributes = json_incref(ev->attributes);
    r->created_ms = created_ms(w, ev->id);
    r->started_ms = event_ms(ev);
    docker_watch_inspect_image(w, image, on_start_image, r);
}

static void apply_event(struct docker_watch *w, struct docker_event *ev)
{
    if (ev->type == DOCKER_EVENT_SERVICE) {
        if (w->swarm_manager) apply_service_event(w, ev);
        return;
    }
    if (ev->type != DOCKER_EVENT_CONTAINER) return;
    const char *name = attr(ev->attributes, "name");
    char key[128];
    snprintf(key, sizeof key, "%s.image", w->prefix);
    const char *image = attr(ev->attributes, key);
    LOG(w->log, LOG_DEBUG, "docker event", F_STR("engine", w->host), F_STR("action", ev->action),
        F_STR("container", name), F_STR("id", ev->id), F_STR("image", image));
    if (strcmp(ev->action, "create") == 0) {
        /* The attributes are the labels plus image/name; routes_put only
         * reads the prefixed keys. A create replayed on top of a list that
         * already had the container replaces it: not news. */
        struct route_source src = {.engine = w->host, .kind = "container", .id = ev->id,
                                   .name = name, .stack = stack_of(ev->attributes),
                                   .image = attr(ev->attributes, "image")};
        size_t before = routes_source_count(w->routes);
        int n = routes_put(w->routes, &src, ev->attributes, w->prefix, w->log);
        if (n > 0 && routes_source_count(w->routes) > before)
            LOG(w->log, LOG_INFO, "route added", F_STR("engine", w->host), F_STR("container", name),
                F_STR("id", ev->id), F_STR("stack", src.stack), F_STR("image", image),
                F_INT("routes", routes_count(w->routes)));
        remember_create(w, ev);
    } else if (strcmp(ev->action, "start") == 0) {
        follow_start(w, ev);
    } else if (strcmp(ev->action, "destroy") == 0) {
        if (routes_remove(w->routes, w->host, ev->id))
            LOG(w->log, LOG_INFO, "route removed", F_STR("engine", w->host), F_STR("container", name),
                F_STR("id", ev->id), F_STR("image", image), F_INT("routes", routes_count(w->routes)));
    } else if (strcmp(ev->action, "rename") == 0) {
        /* Labels cannot change on a rename, only the name /routes shows.
         * A container without routes is not in the table: nothing to do. */
        const char *old = attr(ev->attributes, "oldName");
        if (old && old[0] == '/') old++;
        if (name && routes_rename(w->routes, w->host, ev->id, name))
            LOG(w->log, LOG_INFO, "container renamed", F_STR("engine", w->host), F_STR("container", name),
                F_STR("old_name", old), F_STR("id", ev->id));
    }
}

static void handle_line(struct docker_watch *w, const char *line, size_t len)
{
    struct docker_event ev;
    const char *err;
    if (docker_event_parse(line, len, &ev, &err) < 0) {
        LOG(w->log, LOG_WARN, "docker event skipped", F_STR("engine", w->host), F_STR("error", err));
        return;
    }
    apply_event(w, &ev);
    docker_event_free(&ev);
}

static void on_line(void *ud, const char *line, size_t len)
{
    struct docker_watch *w = ud;
    if (w->state == ST_RECONNECTING) return;   /* the stream failed mid-read */
    if (w->listing) {
        /* Hold it until the list is in: applied before, the list could undo it. */
        if (w->npending == MAX_BUFFERED_EVENTS) return;   /* checked in on_events_body */
        w->pending = xrealloc(w->pending, (w->npending + 1) * sizeof *w->pending);
        w->pending[w->npending++] = xstrndup(line, len);
        return;
    }
    handle_line(w, line, len);
}

/* ---- the list ----------------------------------------------------------- */

static void on_resync_timer(uv_timer_t *t);

static void arm_resync(struct docker_watch *w)
{
    if (w->cache_ttl_secs > 0)
        uv_timer_start(&w->resync_timer, on_resync_timer, (uint64_t)w->cache_ttl_secs * 1000, 0);
}

/* A listed source the table knows under another name (a rename the events
 * did not tell). Asked before the source is put. */
static bool renamed_since(struct docker_watch *w, const char *id, const char *name)
{
    const struct route_source *known = id ? routes_find(w->routes, w->host, id) : NULL;
    if (!known) return false;
    return (known->name == NULL) != (name == NULL) || (name && strcmp(known->name, name) != 0);
}

/* A parsed value as jansson would have read it: routes take labels as json_t. */
static json_t *jv_to_json(const struct jv *v)
{
    switch (v->type) {
    case JV_NULL: return json_null();
    case JV_FALSE: return json_false();
    case JV_TRUE: return json_true();
    case JV_NUMBER: return v->is_int ? json_integer((json_int_t)v->u.i) : json_real(v->u.num);
    case JV_STRING: return json_stringn(v->u.str, v->n);
    case JV_ARRAY: {
        json_t *a = json_array();
        for (size_t i = 0; i < v->n; i++) json_array_append_new(a, jv_to_json(&v->u.items[i]));
        return a;
    }
    default: {
        json_t *o = json_object();   /* a repeated key: the last one wins, as in jansson */
        for (size_t i = 0; i < v->n; i++)
            json_object_set_new(o, v->u.items[2 * i].u.str, jv_to_json(&v->u.items[2 * i + 1]));
        return o;
    }
    }
}

static bool is_stack_key(const char *key)
{
    for (size_t i = 0; i < NSTACK_KEYS; i++)
        if (strcmp(key, stack_keys[i]) == 0) return true;
    return false;
}

/* The labels that route, as json_t: the keys under the prefix, and the
 * stack's (stack_of); the others are not ours and are not copied. NULL
 * when no key is under the prefix: the container has no routes. */
static json_t *labels_of(const struct jv *labels, const char *prefix)
{
    size_t plen = strlen(prefix);
    json_t *o = NULL;
    bool ours = false;
    for (size_t i = 0; i < labels->n; i++) {
        const char *key = labels->u.items[2 * i].u.str;
        bool prefixed = strncmp(key, prefix, plen) == 0 && key[plen] == '.';
        if (!prefixed && !is_stack_key(key)) continue;
        ours = ours || prefixed;
        if (!o) o = json_object();   /* a repeated key: the last one wins, as in jansson */
        json_object_set_new(o, key, jv_to_json(&labels->u.items[2 * i + 1]));
    }
    if (!ours) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* One element of the container list, complete: parsed with the arena
 * parser (jansson's object per value was most of a sync's time and memory
 * on an engine with thousands of containers) and kept as a struct listed.
 * An element that is no container with labels is skipped, as the engine
 * never sends one; one that is not JSON fails the list. */
static int on_listed_container(void *ud, const char *text, size_t len)
{
    struct docker_watch *w = ud;
    if (text[0] != '{') return 0;
    struct jdoc d;
    char perr[96];
    if (jdoc_parse(&d, text, len, perr, sizeof perr) < 0) return -EINVAL;
    const struct jv *ct = d.root;
    const char *id = jv_str(jv_get(ct, "Id"));
    const struct jv *jlabels = jv_get(ct, "Labels");
    if (id && jv_is_object(jlabels)) {
        struct list_read *l = &w->listed;
        if (l->n == l->cap) {
            l->cap = l->cap ? l->cap * 2 : 64;
            l->items = xrealloc(l->items, l->cap * sizeof *l->items);
        }
        struct listed *it = &l->items[l->n++];
        const char *name = jv_str(jv_at(jv_get(ct, "Names"), 0));
        if (name && name[0] == '/') name++;
        *it = (struct listed){.id = xstrdup(id), .name = xstrdup_or_null(name), .labels = labels_of(jlabels, w->prefix)};
        if (it->labels) {
            it->image = xstrdup_or_null(jv_str(jv_get(ct, "Image")));
            it->image_id = xstrdup_or_null(jv_str(jv_get(ct, "ImageID")));
        }
    }
    jdoc_free(&d);
    return 0;
}

/* Both lists are in (services is NULL on a node that is no Swarm manager):
 * make the table equal to them in one go, then replay the held events. */
static void apply_sync(struct docker_watch *w, json_t *services)
{
    routes_mark(w->routes, w->host);
    size_t i, listed = 0, added = 0, renamed = 0;
    json_t *c;
    for (i = 0; i < w->listed.n; i++) {
        const struct listed *ct = &w->listed.items[i];
        if (renamed_since(w, ct->id, ct->name)) renamed++;
        if (!ct->labels) {
            routes_remove(w->routes, w->host, ct->id);   /* what routes_put does with such labels */
            continue;
        }
        struct route_source src = {.engine = w->host, .kind = "container", .id = ct->id, .name = ct->name,
                                   .stack = stack_of(ct->labels), .image = ct->image, .image_id = ct->image_id};
        size_t before = routes_source_count(w->routes);
        int n = routes_put(w->routes, &src, ct->labels, w->prefix, w->log);
        if (routes_source_count(w->routes) > before) added++;   /* not known before */
        if (n != 0) listed++;   /* labelled: routes, or labels ignored */
    }
    long long engine_ms = (long long)w->listed.engine_ms;
    listed_clear(&w->listed);
    size_t nservices = 0;
    json_array_foreach(services, i, c) {
        if (renamed_since(w, attr(c, "ID"), attr(json_object_get(c, "Spec"), "Name"))) renamed++;
        size_t before = routes_source_count(w->routes);
        int n = put_service(w, c);
        if (routes_source_count(w->routes) > before) added++;
        if (n != 0) nservices++;
    }
    size_t removed = routes_sweep(w->routes, w->host);

    /* Everything that happened while listing, in order, on top of the list. */
    w->listing = false;
    for (size_t k = 0; k < w->npending; k++) handle_line(w, w->pending[k], strlen(w->pending[k]));
    clear_pending(w);

    long long ms = (long long)(uv_now(w->loop) - w->sync_started_ms);
    if (w->resync) {
        /* The safety net caught something the events did not say. */
        if (removed || added || renamed)
            LOG(w->log, LOG_WARN, "resync found changes the events missed", F_STR("engine", w->host),
                F_INT("removed", removed), F_INT("added", added), F_INT("renamed", renamed),
                F_INT("routes", routes_count(w->routes)));
        else
            LOG(w->log, LOG_DEBUG, "resync: no change", F_STR("engine", w->host), F_INT("duration_ms", ms),
                F_INT("list_ms", engine_ms));
    } else {
        LOG(w->log, LOG_INFO, "docker synced", F_STR("engine", w->host), F_STR("api_version", docker_engine_api(w->eng)),
            F_BOOL("swarm_manager", w->swarm_manager), F_INT("containers", listed),
            F_INT("services", nservices), F_INT("removed", removed), F_INT("routes", routes_count(w->routes)),
            F_INT("duration_ms", ms), F_INT("list_ms", engine_ms));
    }
    w->resync = false;
    w->synced = true;
    w->state = ST_LIVE;
    w->backoff_ms = BACKOFF_MIN_MS;
    free(w->last_error);
    w->last_error = NULL;
    arm_resync(w);
}

/* A list of thousands of containers is megabytes of parsed JSON, freed by
 * now: hand it back to the system instead of keeping the peak for good. */
static void sync_done_trim(void)
{
    malloc_trim(0);
}

static json_t *parse_list(struct docker_watch *w, const char *what, int err, int status, const char *body,
                          size_t len)
{
    if (err || status != 200) {
        fail_errno(w, what, err, status, w->list_cause);
        return NULL;
    }
    json_error_t jerr;
    json_t *list = json_loadb(body, len, 0, &jerr);
    if (!json_is_array(list)) {
        json_decref(list);
        fail(w, what, "the answer is not a JSON array");
        return NULL;
    }
    return list;
}

static void on_services_done(void *ud, int err, int status, const char *body, size_t len)
{
    struct docker_watch *w = ud;
    w->list_call = NULL;
    json_t *services = parse_list(w, "GET /services", err, status, body, len);
    if (!services) return;
    apply_sync(w, services);
    json_decref(services);
    sync_done_trim();
}

/* GET /v<api>/<what>?<extra>: every container or service, into
 * w->list_call. Not filtered on the <prefix>.image label: an object whose
 * labels are misspelt (<prefix>.images) must be seen to be reported, and
 * the engine has no filter on a label key's prefix. routes_put skips the
 * objects without a key under the prefix. */
static void start_list_get(struct docker_watch *w, const char *what, const char *extra,
                           void (*on_head)(void *, int, const char *(*)(void *, const char *), void *),
                           void (*on_body)(void *, const char *, size_t),
                           void (*done)(void *, int, int, const char *, size_t))
{
    struct buf path;
    buf_init(&path);
    buf_printf(&path, "/%s%s", what, extra);
    start_get(w, &w->list_call, w->list_cause, buf_cstr(&path), w->request_timeout_ms, MAX_LIST_BYTES,
              on_head, on_body, done);
    buf_free(&path);
}

static void start_services_list(struct docker_watch *w)
{
    start_list_get(w, "services", "", NULL, NULL, on_services_done);
}

static void on_list_head(void *ud, int status, const char *(*get_header)(void *, const char *), void *ctx)
{
    (void)get_header;
    (void)ctx;
    struct docker_watch *w = ud;
    w->listed.status = status;
}

/* The list's bytes as they come: an error's body is not kept (the status
 * says enough), a list's goes through the splitter, past the bound not. */
static void on_list_body(void *ud, const char *data, size_t len)
{
    struct docker_watch *w = ud;
    struct list_read *l = &w->listed;
    if (l->status != 200 || l->bytes > MAX_LIST_BYTES) return;
    l->bytes += len;
    if (l->bytes > MAX_LIST_BYTES) return;
    json_split_feed(&l->split, data, len, on_listed_container, w);   /* an error waits for on_list_done */
}

static void on_list_done(void *ud, int err, int status, const char *body, size_t len)
{
    (void)body;   /* read by on_list_body */
    (void)len;
    struct docker_watch *w = ud;
    const char *what = "GET /containers/json";
    w->list_call = NULL;
    w->listed.engine_ms = uv_now(w->loop) - w->listed.started_ms;
    if (err || status != 200) {
        fail_errno(w, what, err, status, w->list_cause);
        return;
    }
    if (w->listed.bytes > MAX_LIST_BYTES) {
        fail(w, what, "the list is larger than 256 MiB");
        return;
    }
    if (json_split_finish(&w->listed.split) < 0) {
        fail(w, what, "the answer is not a JSON array");
        return;
    }
    if (w->swarm_manager) {
        start_services_list(w);   /* the containers are applied together with the services */
        return;
    }
    apply_sync(w, NULL);
    sync_done_trim();
}

static void start_list(struct docker_watch *w)
{
    w->listing = true;
    if (w->resync) w->sync_started_ms = uv_now(w->loop);   /* else: since GET /version */
    listed_clear(&w->listed);
    w->listed.started_ms = uv_now(w->loop);
    start_list_get(w, "containers/json", "?all=1", on_list_head, on_list_body, on_list_done);
}

static void on_info_done(void *ud, int err, int status, const char *body, size_t len);

/* GET /info, in the version_call slot: at a connect (after /version) and at each resync. */
static void start_info(struct docker_watch *w)
{
    start_get(w, &w->version_call, w->version_cause, "/info", w->request_timeout_ms, 4 * 1024 * 1024, NULL, NULL,
              on_info_done);
}

static void on_resync_timer(uv_timer_t *t)
{
    struct docker_watch *w = t->data;
    if (w->state != ST_LIVE || w->list_call || w->version_call) return;
    w->resync = true;
    w->sync_started_ms = uv_now(w->loop);
    start_info(w);
}

/* ---- the events stream ---------------------------------------------------- */

static void on_events_head(void *ud, int status, const char *(*get)(void *, const char *), void *ctx)
{
    (void)get;
    (void)ctx;
    struct docker_watch *w = ud;
    if (status != 200) {
        fail_errno(w, "GET /events", 0, status, NULL);
        return;
    }
    /* Subscribed: from here on no change is missed, so list now. */
    w->state = ST_SYNCING;
    start_list(w);
}

static void on_events_body(void *ud, const char *data, size_t len)
{
    struct docker_watch *w = ud;
    if (line_splitter_feed(&w->lines, data, len, on_line, w) < 0) {
        fail(w, "GET /events", "an event line is larger than 1 MiB");
        return;
    }
    if (w->npending == MAX_BUFFERED_EVENTS)
        fail(w, "GET /events", "too many events while listing containers");
}

static void on_events_done(void *ud, int err, int status, const char *body, size_t len)
{
    (void)body;
    (void)len;
    struct docker_watch *w = ud;
    w->events_call = NULL;
    if (err) fail_errno(w, "GET /events", err, status, w->events_cause);
    else fail(w, "GET /events", "the engine closed the event stream");
}

static void start_events(struct docker_watch *w)
{
    struct buf path;
    buf_init(&path);
    buf_reset(&w->lines.pending);   /* a line cut by the last connection is gone */
    buf_puts(&path, "/events?filters=");
    url_encode(&path, w->swarm_manager
                          ? "{\"type\":[\"container\",\"service\"],"
                            "\"event\":[\"create\",\"start\",\"destroy\",\"rename\",\"update\",\"remove\"]}"
                          : "{\"type\":[\"container\"],\"event\":[\"create\",\"start\",\"destroy\",\"rename\"]}");
    /* No deadline on the whole answer (the stream never ends), but one on
     * its head (engine_get), and keepalive on TCP: a silent engine is fine,
     * a vanished one must be noticed. Unix sockets cannot go half-open. */
    struct http_client_opts o = engine_get(w, w->events_cause);
    o.tcp_keepalive_secs = w->tcp ? EVENTS_KEEPALIVE_SECS : 0;
    o.on_head = on_events_head;
    o.on_body = on_events_body;
    o.on_done = on_events_done;
    o.ud = w;
    w->events_call = docker_engine_call(w->eng, "GET", buf_cstr(&path), &o);
    buf_free(&path);
}

/* ---- version ------------------------------------------------------------ */

/* The answer of a sync step (GET /version, GET /info) as JSON, or NULL when
 * the call failed (the watcher then reconnects). A body that is not JSON
 * is an empty document: the step's own checks name what is missing. */
static json_t *sync_answer(struct docker_watch *w, const char *what, int err, int status, const char *body,
                           size_t len)
{
    w->version_call = NULL;
    if (err || status != 200) {
        fail_errno(w, what, err, status, w->version_cause);
        return NULL;
    }
    json_t *doc = json_loadb(body, len, 0, NULL);
    return doc ? doc : json_object();
}

static void set_manager(struct docker_watch *w, bool manager)
{
    if (manager != w->swarm_manager)
        LOG(w->log, LOG_INFO, manager ? "swarm manager: watching services too" : "not a swarm manager",
            F_STR("engine", w->host));
    w->swarm_manager = manager;
}

/* GET /info, at a connect and at each background resync: is this engine a
 * Swarm manager? Then services carry routes too. `docker swarm init` (or
 * leave) after the start has no event of its own here, so the resync is
 * where a node that became a manager is noticed. */
static void on_info_done(void *ud, int err, int status, const char *body, size_t len)
{
    struct docker_watch *w = ud;
    json_t *info = sync_answer(w, "GET /info", err, status, body, len);
    if (!info) return;
    json_t *swarm = json_object_get(info, "Swarm");
    bool manager = json_is_true(json_object_get(swarm, "ControlAvailable")) &&
                   attr(swarm, "LocalNodeState") && strcmp(attr(swarm, "LocalNodeState"), "active") == 0;
    json_decref(info);
    if (w->resync && manager == w->swarm_manager) {
        start_list(w);   /* on the live subscription */
        return;
    }
    /* A connect, or the node's Swarm role changed: subscribe (again) with
     * the filter that fits, services too or not; the events' head starts a
     * full list, a sync of its own ("docker synced"). */
    set_manager(w, manager);
    w->resync = false;
    http_call_cancel(w->events_call);
    w->events_call = NULL;
    start_events(w);
}

static void on_version_done(void *ud, int err, int status, const char *body, size_t len)
{
    struct docker_watch *w = ud;
    json_t *v = sync_answer(w, "GET /version", err, status, body, len);
    if (!v) return;
    int rc = docker_engine_take_version(w->eng, attr(v, "ApiVersion"));
    json_decref(v);
    if (rc < 0) {
        fail(w, "GET /version", "no usable ApiVersion (need " DOCKER_MIN_API " or newer)");
        return;
    }
    start_info(w);
}

static void connect_engine(struct docker_watch *w)
{
    if (w->closing) return;
    if (w->state != ST_RECONNECTING) w->state = ST_CONNECTING;
    w->sync_started_ms = uv_now(w->loop);
    start_get(w, &w->version_call, w->version_cause, "/version", w->request_timeout_ms, 64 * 1024, NULL, NULL,
              on_version_done);
}

/* ---- public ------------------------------------------------------------- */

struct docker_watch *docker_watch_new(uv_loop_t *loop, const struct docker_watch_opts *opts)
{
    struct docker_watch *w = xcalloc(1, sizeof *w);
    w->loop = loop;
    w->eng = opts->engine;
    w->host = docker_engine_name(opts->engine);
    w->tcp = strncmp(w->host, "tcp://", 6) == 0;
    w->prefix = xstrdup(opts->label_prefix);
    w->cache_ttl_secs = opts->cache_ttl_secs;
    w->request_timeout_ms = opts->request_timeout_ms ? opts->request_timeout_ms : REQUEST_TIMEOUT_MS;
    w->routes = opts->routes;
    w->log = opts->log;
    w->on_started = opts->on_started;
    w->started_ud = opts->started_ud;
    w->backoff_ms = BACKOFF_MIN_MS;
    line_splitter_init(&w->lines, MAX_EVENT_LINE);
    uv_timer_init(loop, &w->retry_timer);
    uv_timer_init(loop, &w->resync_timer);
    w->retry_timer.data = w;
    w->resync_timer.data = w;
    w->open_handles = 2;
    return w;
}

void docker_watch_start(struct docker_watch *w)
{
    connect_engine(w);
}

bool docker_watch_synced(const struct docker_watch *w)
{
    return w->synced;
}

const char *docker_watch_state(const struct docker_watch *w)
{
    return state_names[w->state];
}

const char *docker_watch_last_error(const struct docker_watch *w)
{
    return w->last_error;
}

unsigned long docker_watch_reconnects(const struct docker_watch *w)
{
    return w->reconnects;
}

static void inspect_unlink(struct docker_inspect *q)
{
    for (struct docker_inspect **pp = &q->w->inspects; *pp; pp = &(*pp)->next)
        if (*pp == q) {
            *pp = q->next;
            break;
        }
    free(q);
}

static void on_inspect_done(void *ud, int err, int status, const char *body, size_t len)
{
    struct docker_inspect *q = ud;
    q->call = NULL;
    json_t *image = NULL;
    if (!err && status == 200) image = json_loadb(body, len, 0, NULL);
    if (!err && !json_is_object(image)) err = status == 404 ? -ENOENT : -EPROTO;
    q->cb(q->ud, err, err ? NULL : image);
    json_decref(image);
    inspect_unlink(q);
}

struct docker_inspect *docker_watch_inspect_image(struct docker_watch *w, const char *ref, docker_image_fn cb,
                                                  void *ud)
{
    struct docker_inspect *q = xcalloc(1, sizeof *q);
    q->w = w;
    q->cb = cb;
    q->ud = ud;
    q->next = w->inspects;
    w->inspects = q;
    struct buf path;
    buf_init(&path);
    /* Sent as the docker CLI sends it ("/images/reg:5000/team/app:v1/json");
     * anything outside a reference's characters is encoded. */
    buf_puts(&path, "/images/");
    for (const char *p = ref; *p; p++) {
        char ch = *p;
        bool plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                     strchr("._-:/@", ch);
        if (plain) buf_putc(&path, ch);
        else buf_printf(&path, "%%%02X", (unsigned char)ch);
    }
    buf_puts(&path, "/json");
    struct http_client_opts o = engine_get(w, q->cause);
    o.response_timeout_ms = w->request_timeout_ms;
    o.max_body = 1024 * 1024;
    o.on_done = on_inspect_done;
    o.ud = q;
    q->call = docker_engine_call(w->eng, "GET", buf_cstr(&path), &o);
    buf_free(&path);
    return q;
}

void docker_watch_inspect_cancel(struct docker_inspect *q)
{
    if (!q) return;
    http_call_cancel(q->call);
    inspect_unlink(q);
}

const char *docker_watch_host(const struct docker_watch *w)
{
    return w->host;
}

static void on_closed(uv_handle_t *h)
{
    struct docker_watch *w = h->data;
    if (--w->open_handles > 0) return;
    free(w->prefix);
    free(w->last_error);
    close_cb_free(w, w->closed);
}

void docker_watch_close(struct docker_watch *w, void (*cb)(void *ud), void *ud)
{
    if (CLOSE_BEGIN(w, cb, ud)) return;
    while (w->inspects) {
        /* A start report's inspect is this file's own: its report goes with
         * it. Each cancel unlinks the head: the analyzer does not follow the list. */
        if (w->inspects->cb == on_start_image) start_report_free(w->inspects->ud);   // NOLINT(clang-analyzer-unix.Malloc)
        docker_watch_inspect_cancel(w->inspects);
    }
    cancel_calls(w);
    clear_pending(w);
    line_splitter_free(&w->lines);
    uv_close((uv_handle_t *)&w->retry_timer, on_closed);
    uv_close((uv_handle_t *)&w->resync_timer, on_closed);
}
