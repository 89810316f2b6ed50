/* registry_watch.c - watching registries that cannot call in (see
 * registry_watch.h).
 *
 * The watches are derived from the route table whenever its generation
 * moves (checked once per loop turn, an integer compare); each keeps its
 * own schedule. One timer serves them all: it fires at the earliest due
 * watch, and the due ones are sent while their registry has a free slot
 * (max_per_host, so a thousand watches share a few keep-alive
 * connections); a finished request frees its slot for the next due one.
 * Intervals are jittered by +-10 % so watches created together drift apart. */
#include "registry_watch.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "match.h"
#include "reference.h"
#include "strset.h"

#define DEFAULT_PER_HOST 4
#define BACKOFF_CAP 8           /* errors back off to interval x 8 at most */
#define RATELIMIT_STRETCH 4     /* a host near its rate limit: intervals x 4 */

struct host_state {
    char *host;
    unsigned in_flight;
    unsigned stretch;           /* 1, or RATELIMIT_STRETCH while the host is near its limit */
    bool warned;                /* the rate-limit warn, once */
};

struct tag_fetch {               /* a new tag's digest, for its push event */
    struct tag_fetch *next, *prev;
    struct watch *w;
    char *tag;
    struct registry_req *req;
};

struct watch {
    struct watch *next;
    struct registry_watcher *rw;
    struct watch_key key;
    struct host_state *hs;
    uint64_t due;                /* loop time of the next check */
    unsigned failures;
    bool wanted;                 /* seen in the last rebuild */
    bool baseline;               /* digest (or tags) holds what the next answer is compared with */
    char *digest;                /* last digest taken (or the baseline) */
    char *running;               /* the digest a subscriber runs, when known */
    struct docker_inspect *inspect;   /* reading running from an engine */
    /* A tag-list watch: the tags taken, and those whose digest is being
     * fetched. Sets, not lists: a list of 40,000 tags compared with itself
     * on every check stalled the loop for seconds. */
    struct strset known;
    struct strset fetching;
    struct tag_fetch *fetches;
    struct registry_req *req;
    long long last_check_ms;
    char *error;                 /* last check's error, NULL when it succeeded */
    char *logged;                /* the last error logged: each distinct one once */
};

struct registry_watcher {
    uv_loop_t *loop;
    struct registry_watch_opts o;
    uv_timer_t timer;
    uv_prepare_t follow;         /* rebuilds when the route table moved */
    unsigned long generation;
    bool built;
    struct watch *watches;
    size_t nwatches;
    struct host_state **hosts;   /* a few registries: an array */
    size_t nhosts;
    unsigned long changes;
    uint64_t rng;
    int open_handles;
    bool closing;
    struct close_cb closed;
};

/* ---- the key of a route on an object (pure) -------------------------------- */

static bool glob_is_exact(const char *glob)
{
    return glob && !strpbrk(glob, "*?[\\");
}

static void copy_span(char *out, size_t outlen, struct reference_span sp)
{
    size_t n = sp.n < outlen - 1 ? sp.n : outlen - 1;
    if (sp.p) memcpy(out, sp.p, n);
    out[sp.p ? n : 0] = '\0';
}

bool watch_key_of(const struct route *r, const struct route_source *src, uint64_t default_interval_ms,
                  struct watch_key *out)
{
    memset(out, 0, sizeof *out);
    if (r->poll_ms < 0 || (r->poll_ms == 0 && !default_interval_ms)) return false;
    out->interval_ms = r->poll_ms > 0 ? (uint64_t)r->poll_ms : default_interval_ms;

    /* The object's own reference, when it names the route's repository:
     * it says which registry (a host-less label) and which tag. */
    struct reference own;
    struct repo_ref own_ref;
    bool own_ok = false;
    if (src && src->image && reference_split(src->image, strlen(src->image), &own) == 0) {
        char host[256], path[512];
        copy_span(host, sizeof host, own.host);
        copy_span(path, sizeof path, own.path);
        own_ok = repo_ref_from_event(host[0] ? host : "docker.io", path, &own_ref) == 0 &&
                 repo_ref_match(&r->ref, &own_ref);
    }
    if (r->ref.host[0]) {
        snprintf(out->host, sizeof out->host, "%s", r->ref.host);
        snprintf(out->repository, sizeof out->repository, "%s", r->ref.path);
    } else if (own_ok) {
        snprintf(out->host, sizeof out->host, "%s", own_ref.host);
        snprintf(out->repository, sizeof out->repository, "%s", own_ref.path);
    } else {
        struct repo_ref hub;
        if (repo_ref_from_event("docker.io", r->ref.path, &hub) < 0) return false;
        snprintf(out->host, sizeof out->host, "%s", hub.host);
        snprintf(out->repository, sizeof out->repository, "%s", hub.path);
    }

    const char *glob = r->tag_glob ? r->tag_glob : "*";
    char own_tag[129] = "";
    if (own_ok) copy_span(own_tag, sizeof own_tag, own.tag);
    if (glob_is_exact(glob)) snprintf(out->tag, sizeof out->tag, "%s", glob);
    else if (own_tag[0] && tag_glob_match(glob, own_tag)) snprintf(out->tag, sizeof out->tag, "%s", own_tag);
    else snprintf(out->glob, sizeof out->glob, "%s", glob);
    return true;
}

static bool same_key(const struct watch_key *a, const struct watch_key *b)
{
    return strcmp(a->host, b->host) == 0 && strcmp(a->repository, b->repository) == 0 &&
           strcmp(a->tag, b->tag) == 0 && strcmp(a->glob, b->glob) == 0;
}

/* ---- small helpers ------------------------------------------------------------ */

static long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_str(char **slot, const char *v)
{
    if (*slot && v && strcmp(*slot, v) == 0) return;
    free(*slot);
    *slot = xstrdup_or_null(v);
}

/* interval +- 10 %. */
static uint64_t jittered(struct registry_watcher *rw, uint64_t ms)
{
    rw->rng ^= rw->rng << 13;
    rw->rng ^= rw->rng >> 7;
    rw->rng ^= rw->rng << 17;
    uint64_t span = ms / 5;
    return ms - ms / 10 + (span ? rw->rng % (span + 1) : 0);
}

static struct host_state *host_get(struct registry_watcher *rw, const char *host)
{
    for (size_t i = 0; i < rw->nhosts; i++)
        if (strcmp(rw->hosts[i]->host, host) == 0) return rw->hosts[i];
    struct host_state *h = xcalloc(1, sizeof *h);
    h->host = xstrdup(host);
    h->stretch = 1;
    rw->hosts = xrealloc(rw->hosts, (rw->nhosts + 1) * sizeof *rw->hosts);
    rw->hosts[rw->nhosts++] = h;
    return h;
}

static const char *watch_tag(const struct watch *w)
{
    return w->key.tag[0] ? w->key.tag : NULL;
}

/* ---- changes: into the webhook path ---------------------------------------- */

/* Offers the push of digest on tag; true when the webhook path took it. */
static bool offer(struct watch *w, const char *tag, const char *digest)
{
    struct registry_watcher *rw = w->rw;
    struct buf id;
    buf_init(&id);
    buf_printf(&id, "%s/%s:%s@%s", w->key.host, w->key.repository, tag, digest ? digest : "");
    struct push_event ev = {
        .format = "poll",
        .id = buf_cstr(&id),
        .registry = w->key.host,
        .repository = w->key.repository,
        .tag = tag,
        .digest = digest,
    };
    int rc = rw->o.on_push(rw->o.ud, &ev);
    buf_free(&id);
    if (rc == 0) rw->changes++;
    return rc == 0;
}

/* ---- scheduling ------------------------------------------------------------------ */

static void pump(struct registry_watcher *rw);
static void on_digest(void *ud, const struct registry_result *r);
static void on_tags(void *ud, const struct registry_result *r);

static void on_timer(uv_timer_t *t)
{
    pump(t->data);
}

static void arm(struct registry_watcher *rw)
{
    if (rw->closing) return;
    uint64_t now = uv_now(rw->loop), next = UINT64_MAX;
    for (struct watch *w = rw->watches; w; w = w->next)
        if (!w->req && !w->inspect && w->due > now && w->due < next) next = w->due;
    if (next == UINT64_MAX) uv_timer_stop(&rw->timer);
    else uv_timer_start(&rw->timer, on_timer, next - now, 0);
}

static void send_check(struct watch *w)
{
    struct registry_watcher *rw = w->rw;
    w->hs->in_flight++;
    if (watch_tag(w))
        w->req = registry_get_digest(rw->o.client, w->key.host, w->key.repository, w->key.tag, on_digest, w);
    else
        w->req = registry_get_tags(rw->o.client, w->key.host, w->key.repository, on_tags, w);
}

/* Sends what is due while its registry has a free slot; then waits for the
 * next due one. A watch still reading what its object runs waits for that. */
static void pump(struct registry_watcher *rw)
{
    if (rw->closing) return;
    unsigned cap = rw->o.max_per_host ? rw->o.max_per_host : DEFAULT_PER_HOST;
    uint64_t now = uv_now(rw->loop);
    for (struct watch *w = rw->watches; w; w = w->next)
        if (!w->req && !w->inspect && w->due <= now && w->hs->in_flight < cap) send_check(w);
    arm(rw);
}

static void schedule(struct watch *w, uint64_t delay_ms)
{
    w->due = uv_now(w->rw->loop) + delay_ms;
}

/* After an answer: the next check, stretched by errors (doubling to x8)
 * or by a registry near its rate limit. */
static void schedule_next(struct watch *w)
{
    uint64_t ms = w->key.interval_ms * w->hs->stretch;
    for (unsigned i = 0; i < w->failures && i < 3; i++) ms *= 2;   /* 2, 4, 8 */
    if (w->failures && ms > w->key.interval_ms * BACKOFF_CAP * w->hs->stretch)
        ms = w->key.interval_ms * BACKOFF_CAP * w->hs->stretch;
    schedule(w, jittered(w->rw, ms));
}

/* Bookkeeping common to every answer; false when it was an error (handled). */
static bool answered(struct watch *w, const struct registry_result *r)
{
    struct registry_watcher *rw = w->rw;
    w->req = NULL;
    w->hs->in_flight--;
    w->last_check_ms = wall_ms();
    if (r->ratelimit_limit > 0 && r->ratelimit_remaining >= 0) {
        bool low = r->ratelimit_remaining * 10 < r->ratelimit_limit;
        if (low && w->hs->stretch == 1 && !w->hs->warned) {
            LOG(rw->o.log, LOG_WARN, "registry rate limit nearly used up: checking it less often",
                F_STR("registry", w->key.host), F_INT("remaining", r->ratelimit_remaining),
                F_INT("limit", r->ratelimit_limit), F_INT("stretch", RATELIMIT_STRETCH));
            w->hs->warned = true;
        }
        if (low) w->hs->stretch = RATELIMIT_STRETCH;
        else if (r->ratelimit_remaining * 5 > r->ratelimit_limit) w->hs->stretch = 1;
    }
    if (r->err == -EAGAIN) {
        /* The host is paused (a 429): not this watch's fault, no backoff. */
        schedule(w, r->retry_after_ms ? r->retry_after_ms : w->key.interval_ms);
        set_str(&w->error, r->error);
        return false;
    }
    if (r->err) {
        w->failures++;
        set_str(&w->error, r->error ? r->error : "registry check failed");
        /* Each distinct error once: wrong credentials are one line, not one
         * per interval. */
        if (!w->logged || strcmp(w->logged, w->error) != 0) {
            LOG(rw->o.log, r->err == -EACCES ? LOG_ERROR : LOG_WARN, "registry check failed",
                F_STR("registry", w->key.host), F_STR("repository", w->key.repository),
                F_STR("tag", watch_tag(w)), F_STR("error", w->error), F_INT("failures", w->failures));
            set_str(&w->logged, w->error);
        }
        schedule_next(w);
        return false;
    }
    if (w->logged) {
        LOG(rw->o.log, LOG_INFO, "registry check recovered", F_STR("registry", w->key.host),
            F_STR("repository", w->key.repository), F_STR("tag", watch_tag(w)), F_INT("failures", w->failures));
        set_str(&w->logged, NULL);
    }
    set_str(&w->error, NULL);
    w->failures = 0;
    schedule_next(w);
    return true;
}

static void on_digest(void *ud, const struct registry_result *r)
{
    struct watch *w = ud;
    struct registry_watcher *rw = w->rw;
    if (answered(w, r) && r->digest) {
        const char *before = w->baseline ? w->digest : w->running;
        if (!before) {
            /* Nothing to compare with: this answer is the baseline. */
            set_str(&w->digest, r->digest);
            w->baseline = true;
        } else if (strcmp(before, r->digest) != 0) {
            LOG(rw->o.log, LOG_INFO, w->baseline ? "registry change" : "registry ahead of what runs: redeploying",
                F_STR("registry", w->key.host), F_STR("repository", w->key.repository), F_STR("tag", w->key.tag),
                F_STR("old", before), F_STR("new", r->digest));
            if (offer(w, w->key.tag, r->digest)) {
                set_str(&w->digest, r->digest);
                w->baseline = true;
            } else {
                /* The forward queue is full: the same change comes round again. */
                schedule(w, 1000);
            }
        } else {
            set_str(&w->digest, r->digest);
            w->baseline = true;
        }
    }
    pump(rw);
}

/* ---- tag lists -------------------------------------------------------------------- */

static void fetch_free(struct tag_fetch *f)
{
    struct watch *w = f->w;
    if (f->prev) f->prev->next = f->next;
    else w->fetches = f->next;
    if (f->next) f->next->prev = f->prev;
    strset_remove(&w->fetching, f->tag);
    free(f->tag);
    free(f);
}

static void on_tag_digest(void *ud, const struct registry_result *r);

static void fetch_new(struct watch *w, const char *tag)
{
    struct tag_fetch *f = xcalloc(1, sizeof *f);
    f->w = w;
    f->tag = xstrdup(tag);
    f->next = w->fetches;
    if (w->fetches) w->fetches->prev = f;
    w->fetches = f;
    strset_add(&w->fetching, tag);
    f->req = registry_get_digest(w->rw->o.client, w->key.host, w->key.repository, tag, on_tag_digest, f);
}

static void on_tag_digest(void *ud, const struct registry_result *r)
{
    struct tag_fetch *f = ud;
    struct watch *w = f->w;
    f->req = NULL;
    const char *digest = r->err ? NULL : r->digest;
    LOG(w->rw->o.log, LOG_INFO, "registry change: new tag", F_STR("registry", w->key.host),
        F_STR("repository", w->key.repository), F_STR("tag", f->tag), F_STR("new", digest));
    /* Not taken (queue full): it stays out of the known tags, and the next
     * check offers it again. */
    if (offer(w, f->tag, digest)) strset_add(&w->known, f->tag);
    fetch_free(f);
}

static void on_tags(void *ud, const struct registry_result *r)
{
    struct watch *w = ud;
    struct registry_watcher *rw = w->rw;
    if (answered(w, r)) {
        if (!w->baseline) {
            /* The tags present at the first check are the baseline. */
            for (size_t i = 0; i < r->ntags; i++)
                if (tag_glob_match(w->key.glob, r->tags[i])) strset_add(&w->known, r->tags[i]);
            w->baseline = true;
        } else {
            for (size_t i = 0; i < r->ntags; i++) {
                const char *t = r->tags[i];
                if (!tag_glob_match(w->key.glob, t) || strset_has(&w->known, t) || strset_has(&w->fetching, t))
                    continue;
                fetch_new(w, t);
            }
        }
    }
    pump(rw);
}

/* ---- what the objects run (the baseline) -------------------------------------------- */

/* Does ref name the watch's repository? Then its digest, if it has one,
 * in *digest (NULL when it has none). */
static bool ref_names_watch(const struct watch *w, const char *ref, const char **digest)
{
    struct reference r;
    *digest = NULL;
    if (reference_split(ref, strlen(ref), &r) < 0) return false;
    char host[256], path[512];
    copy_span(host, sizeof host, r.host);
    copy_span(path, sizeof path, r.path);
    struct repo_ref a, b;
    if (repo_ref_from_event(host[0] ? host : "docker.io", path, &a) < 0 ||
        repo_ref_from_event(w->key.host, w->key.repository, &b) < 0)
        return false;
    if (strcmp(a.host, b.host) != 0 || strcmp(a.path, b.path) != 0) return false;
    *digest = r.digest.p;
    return true;
}

/* "reg:5000/team/app@sha256:..." names the watch's repository, with a digest? */
static bool digest_ref_is(const struct watch *w, const char *ref, const char **digest)
{
    return ref_names_watch(w, ref, digest) && *digest;
}

static void on_inspected(void *ud, int err, json_t *image)
{
    struct watch *w = ud;
    w->inspect = NULL;
    json_t *digests = err ? NULL : json_object_get(image, "RepoDigests");
    size_t i;
    json_t *d;
    json_array_foreach(digests, i, d) {
        const char *digest;
        if (json_is_string(d) && digest_ref_is(w, json_string_value(d), &digest)) {
            set_str(&w->running, digest);
            break;
        }
    }
    pump(w->rw);
}

/* What the object runs, when it can be known: a service's pinned digest at
 * once, a container's through its image's RepoDigests. */
static void read_running(struct watch *w, const struct route_source *src)
{
    if (!watch_tag(w) || w->running || w->inspect || !src || !src->image) return;
    const char *digest;
    bool names = ref_names_watch(w, src->image, &digest);
    if (names && digest) {
        set_str(&w->running, digest);
        return;
    }
    if (strcmp(src->kind, "container") != 0) return;
    /* A container whose image tag has moved since it was created (a new
     * image built and pushed on this host) is listed with its image id as
     * its image: its image's RepoDigests still say what it runs. Otherwise
     * an image of another repository cannot tell what this one runs: no
     * inspect (a thousand watched routes on one container would otherwise
     * ask the engine a thousand times at once). */
    bool by_id = src->image_id && strcmp(src->image, src->image_id) == 0;
    if (!names && !by_id) return;
    /* By what the container runs (its ImageID), never by its image name:
     * the name may point at another image by now. */
    const char *image = src->image_id ? src->image_id : src->image;
    for (size_t i = 0; i < w->rw->o.nengines; i++) {
        struct docker_watch *e = w->rw->o.engines[i];
        if (strcmp(docker_watch_host(e), src->engine) != 0) continue;
        w->inspect = docker_watch_inspect_image(e, image, on_inspected, w);
        return;
    }
}

/* ---- following the route table ------------------------------------------------------ */

static struct watch *find_watch(struct registry_watcher *rw, const struct watch_key *k)
{
    for (struct watch *w = rw->watches; w; w = w->next)
        if (same_key(&w->key, k)) return w;
    return NULL;
}

static void watch_free(struct watch *w)
{
    if (w->req) {
        registry_req_cancel(w->req);
        w->hs->in_flight--;
    }
    docker_watch_inspect_cancel(w->inspect);
    while (w->fetches) {
        /* fetch_free unlinks the head: the analyzer does not follow the list. */
        registry_req_cancel(w->fetches->req);   // NOLINT(clang-analyzer-unix.Malloc)
        fetch_free(w->fetches);
    }
    strset_free(&w->known);
    strset_free(&w->fetching);
    free_n(5, w->digest, w->running, w->error, w->logged, w);
}

struct rebuild {
    struct registry_watcher *rw;
    size_t added;
};

static void visit(void *ud, const struct route *r, const struct route_source *const *src, size_t nsrc)
{
    struct rebuild *b = ud;
    struct registry_watcher *rw = b->rw;
    for (size_t i = 0; i < nsrc; i++) {
        struct watch_key k;
        if (!watch_key_of(r, src[i], rw->o.default_interval_ms, &k)) continue;
        struct watch *w = find_watch(rw, &k);
        if (!w) {
            w = xcalloc(1, sizeof *w);
            w->rw = rw;
            w->key = k;
            w->hs = host_get(rw, k.host);
            w->due = uv_now(rw->loop);   /* the first check at once: it is the baseline */
            w->next = rw->watches;
            rw->watches = w;
            rw->nwatches++;
            b->added++;
        } else if (!w->wanted || k.interval_ms < w->key.interval_ms) {
            /* Shared: the shortest interval asked for wins (a route gone
             * since the last rebuild no longer counts). */
            w->key.interval_ms = k.interval_ms;
        }
        w->wanted = true;
        read_running(w, src[i]);
    }
}

static void rebuild(struct registry_watcher *rw)
{
    for (struct watch *w = rw->watches; w; w = w->next) w->wanted = false;
    struct rebuild b = {.rw = rw};
    routes_foreach(rw->o.routes, visit, &b);
    size_t removed = 0;
    for (struct watch **pp = &rw->watches; *pp;) {
        struct watch *w = *pp;
        if (w->wanted) {
            pp = &w->next;
            continue;
        }
        *pp = w->next;
        rw->nwatches--;
        removed++;
        watch_free(w);
    }
    if (b.added || removed)
        LOG(rw->o.log, LOG_INFO, "registry watches", F_INT("watches", rw->nwatches), F_INT("added", b.added),
            F_INT("removed", removed));
    pump(rw);
}

static void on_follow(uv_prepare_t *h)
{
    struct registry_watcher *rw = h->data;
    unsigned long g = routes_generation(rw->o.routes);
    if (rw->built && g == rw->generation) return;
    rw->built = true;
    rw->generation = g;
    rebuild(rw);
}

/* ---- public -------------------------------------------------------------------------- */

struct registry_watcher *registry_watch_new(uv_loop_t *loop, const struct registry_watch_opts *opts)
{
    struct registry_watcher *rw = xcalloc(1, sizeof *rw);
    rw->loop = loop;
    rw->o = *opts;
    rw->rng = uv_hrtime() | 1;
    uv_timer_init(loop, &rw->timer);
    rw->timer.data = rw;
    uv_prepare_init(loop, &rw->follow);
    rw->follow.data = rw;
    uv_prepare_start(&rw->follow, on_follow);
    rw->open_handles = 2;
    return rw;
}

bool registry_watch_status(struct registry_watcher *rw, const struct route *r, const struct route_source *src,
                           struct watch_status *out)
{
    struct watch_key k;
    if (!rw || !watch_key_of(r, src, rw->o.default_interval_ms, &k)) return false;
    struct watch *w = find_watch(rw, &k);
    if (!w) return false;
    *out = (struct watch_status){.key = &w->key, .last_check_ms = w->last_check_ms, .digest = w->digest,
                                 .error = w->error, .ntags = strset_count(&w->known)};
    return true;
}

size_t registry_watch_count(const struct registry_watcher *rw)
{
    return rw ? rw->nwatches : 0;
}

unsigned long registry_watch_changes(const struct registry_watcher *rw)
{
    return rw ? rw->changes : 0;
}

static void on_closed(uv_handle_t *h)
{
    struct registry_watcher *rw = h->data;
    if (--rw->open_handles) return;
    close_cb_free(rw, rw->closed);
}

void registry_watch_close(struct registry_watcher *rw, void (*cb)(void *ud), void *ud)
{
    if (CLOSE_BEGIN(rw, cb, ud)) return;
    while (rw->watches) {
        struct watch *w = rw->watches;
        rw->watches = w->next;
        watch_free(w);
    }
    for (size_t i = 0; i < rw->nhosts; i++) {
        free(rw->hosts[i]->host);
        free(rw->hosts[i]);
    }
    free(rw->hosts);
    rw->hosts = NULL;
    rw->nhosts = 0;
    uv_close((uv_handle_t *)&rw->timer, on_closed);
    uv_close((uv_handle_t *)&rw->follow, on_closed);
}
