/* forward.c - the delivery queue for redeploy POSTs.
 *
 * A job is one target URL and the last event for it. Its life:
 *
 *   submit -> [debounce wait] -> ready (per origin) -> in flight -> done
 *                                    ^                     |
 *                                    +---- retry wait <----+  (5xx, 429, network)
 *
 * Both waits live in one list sorted by due time, driven by one timer. While
 * a job waits out DEBOUNCE_MS, further events for the same URL replace its
 * event instead of making a second POST (a CI job pushing :latest and :sha
 * redeploys once). Ready jobs queue per origin (scheme, host, port): at most
 * FORWARD_CONCURRENCY jobs are in flight, and at most per_origin of them to
 * one origin, so a target that hangs holds its own slots, not everyone's.
 * Origins with work and a free slot take turns (round robin). Jobs accepted
 * but not in flight are bounded by FORWARD_QUEUE_MAX. Every job ends in
 * exactly one info or error line.
 *
 * Notifications (forward_send) are jobs too, with their own method,
 * headers and log label: they go through the same attempts and waits, but
 * to origins of their own, with their own queue bound and at most half of
 * the slots, so redeploys never wait behind a chat service. */
#include "forward.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "buf.h"
#include "json.h"
#include "notify_request.h"
#include "url.h"

#define BACKOFF_BASE_MS 500
#define BACKOFF_MAX_MS 30000
#define DEBOUNCE_BUCKETS 256
/* Redeploy targets remembered, parsed and redacted (direct-mapped by hash). */
#define TARGET_SLOTS 32
#define ORIGIN_BUCKETS 64
/* What a notification's answer body is read for (Discord's retry_after). */
#define NOTIFY_BODY_MAX 4096
/* Past the last attempt's deadline, what shutdown still waits for. */
#define DRAIN_GRACE_MS 1000

enum stage { ST_DEBOUNCE, ST_READY, ST_IN_FLIGHT, ST_RETRY_WAIT };

/* Where forwards go: scheme, host and port. */
struct origin {
    struct origin *hnext;      /* hash chain */
    struct origin *rnext;      /* the runnable list */
    char *host;                /* as url_parse gives it: lower-cased */
    uint16_t port;
    bool tls;
    struct job *ready_head, *ready_tail;
    size_t in_flight;
    size_t refs;               /* jobs pointing here */
    bool runnable;             /* in the runnable list */
    bool notify;               /* notifications only (see pump) */
};

/* Someone told how a job ends (forward_submit_watched, forward_send). */
struct watcher {
    struct watcher *next;
    struct forward_watch w;
};

struct job {
    struct forwarder *f;
    struct origin *origin;
    struct job *next;          /* in its origin's ready queue, the wait list or the in-flight list */
    struct job *prev;          /* in the in-flight list only */
    struct job *hnext;         /* debounce index chain */
    enum stage stage;
    char *url;                 /* placeholders expanded; secret: log with F_URL only */
    size_t slot;               /* url's place among the known targets (redeploys) */
    struct url target;
    char *body;
    size_t body_len;
    const char *repository, *tag, *event_id;   /* inside body's block, after it (job_set_event) */
    int merged;                /* events this POST stands for */
    int attempt;
    uint64_t due_ms;
    uint64_t started_ms;
    uint64_t retry_after_ms;   /* from this attempt's response, 0 if none */
    struct http_call *call;    /* while in flight */
    char cause[160];           /* the client's words for a failure */
    struct watcher *watchers;
    /* Notifications only: */
    bool notify;
    const char *method;        /* static */
    char *headers;
    char *label;               /* the target as logs show it */
    struct buf answer;         /* the start of the answer body */
};

/* A redeploy target URL, parsed, and how logs show it: a flood of pushes
 * for a stack sends them all to one URL, and parsing it (a fifth of a
 * forward's setup) and its SHA-256 fingerprint (a tenth) were done again
 * for every one. */
struct known_target {
    char *url;                 /* secret, like the job's */
    char *shown;               /* url_redact(url) */
    int parsed_rc;             /* url_parse's: 0, or -EINVAL with why */
    const char *why;
    struct url parsed;
};

struct forwarder {
    uv_loop_t *loop;
    struct http_client *http;
    const struct logger *log;
    struct forward_opts opts;
    struct origin *origins[ORIGIN_BUCKETS];
    struct origin *runnable_head, *runnable_tail;
    struct job *waiting;       /* sorted by due_ms */
    struct job *flying;        /* in flight: owned here, so forward_free can free them */
    size_t nready, nwaiting, in_flight;
    size_t notify_queued, notify_in_flight;   /* of the above, notifications */
    struct job *debounce[DEBOUNCE_BUCKETS];
    struct known_target targets[TARGET_SLOTS];
    uv_timer_t wake;           /* the wait list; while draining, the drain deadline */
    uint64_t rng;              /* jitter; xorshift state */
    struct forward_stats stats;
    bool draining;
    uint64_t drain_deadline;
    void (*drained)(void *ud);
    void *drained_ud;
    bool closed;
};

static void pump(struct forwarder *f);

void forward_build_body(struct buf *out, const struct push_event *ev)
{
    int first = 1;
    buf_putc(out, '{');
    json_put_member(out, "repository", ev->repository, &first);
    json_put_member(out, "tag", ev->tag, &first);
    json_put_member(out, "digest", ev->digest, &first);
    json_put_member(out, "registry", ev->registry, &first);
    json_put_member(out, "event_id", ev->id, &first);
    buf_putc(out, '}');
}

/* Expands {repository}, {tag} and {digest}, percent-encoded. */
static char *expand_url(const char *tmpl, const struct push_event *ev)
{
    static const char *const names[] = {"{repository}", "{tag}", "{digest}"};
    const char *values[] = {ev->repository, ev->tag, ev->digest};
    struct buf b;
    buf_init(&b);
    for (const char *p = tmpl; *p;) {
        size_t run = strcspn(p, "{");   /* plain text up to the next brace in one copy */
        buf_append(&b, p, run);
        p += run;
        if (!*p) break;
        size_t i;
        for (i = 0; i < 3; i++)
            if (strncmp(p, names[i], strlen(names[i])) == 0) break;
        if (i < 3) {
            url_encode(&b, values[i] ? values[i] : "");
            p += strlen(names[i]);
        } else {
            buf_putc(&b, *p++);
        }
    }
    return buf_steal(&b);
}

/* The job now stands for ev (the last event wins the body). */
static void job_set_event(struct job *j, const struct push_event *ev)
{
    /* One block: the body, then the repository, tag and event id (for the
     * log lines), each after a NUL. Four allocations a push were one. */
    free(j->body);
    const char *const v[3] = {ev->repository, ev->tag, ev->id};
    size_t len[3], at[3], total = 0;
    for (size_t i = 0; i < 3; i++) total += len[i] = v[i] ? strlen(v[i]) : 0;
    struct buf b;
    buf_init(&b);
    buf_reserve(&b, 2 * total + (ev->digest ? strlen(ev->digest) : 0) + (ev->registry ? strlen(ev->registry) : 0) + 96);
    forward_build_body(&b, ev);
    j->body_len = b.len;
    for (size_t i = 0; i < 3; i++) {
        at[i] = b.len + 1;
        buf_append(&b, "", 1);
        buf_append(&b, v[i] ? v[i] : "", len[i]);
    }
    j->body = buf_steal(&b);
    j->repository = v[0] ? j->body + at[0] : NULL;
    j->tag = v[1] ? j->body + at[1] : NULL;
    j->event_id = v[2] ? j->body + at[2] : NULL;
    j->merged++;
}

/* ---- origins ------------------------------------------------------------- */

static size_t origin_hash(const char *host, bool tls, uint16_t port, bool notify)
{
    return hash_str(HASH_INIT, host) ^ ((size_t)port << 2 | (size_t)tls << 1 | (size_t)notify);
}

static struct origin *origin_get(struct forwarder *f, const struct url *u, bool notify)
{
    /* Compared field by field, not as a formatted key: formatting one was
     * most of the cost of a lookup. */
    size_t h = origin_hash(u->host, u->tls, u->port, notify);
    struct origin **head = &f->origins[h % ORIGIN_BUCKETS];
    for (struct origin *o = *head; o; o = o->hnext)
        if (o->tls == u->tls && o->port == u->port && o->notify == notify && strcmp(o->host, u->host) == 0) {
            o->refs++;
            return o;
        }
    struct origin *o = xcalloc(1, sizeof *o);
    o->host = xstrdup(u->host);
    o->tls = u->tls;
    o->port = u->port;
    o->notify = notify;
    o->refs = 1;
    o->hnext = *head;
    *head = o;
    return o;
}

static void origin_unref(struct forwarder *f, struct origin *o)
{
    if (--o->refs) return;
    struct origin **pp = &f->origins[origin_hash(o->host, o->tls, o->port, o->notify) % ORIGIN_BUCKETS];
    while (*pp != o) pp = &(*pp)->hnext;
    *pp = o->hnext;
    free(o->host);
    free(o);
}

static size_t origin_cap(const struct forwarder *f)
{
    int cap = f->opts.per_origin > 0 ? f->opts.per_origin : f->opts.concurrency;
    return (size_t)cap;
}

/* An origin with ready jobs and a free slot waits its turn in the runnable list. */
static void origin_maybe_runnable(struct forwarder *f, struct origin *o)
{
    if (o->runnable || !o->ready_head || o->in_flight >= origin_cap(f)) return;
    o->runnable = true;
    o->rnext = NULL;
    if (f->runnable_tail) f->runnable_tail->rnext = o;
    else f->runnable_head = o;
    f->runnable_tail = o;
}

static struct origin *runnable_pop(struct forwarder *f)
{
    struct origin *o = f->runnable_head;
    if (!o) return NULL;
    f->runnable_head = o->rnext;
    if (!f->runnable_head) f->runnable_tail = NULL;
    o->rnext = NULL;
    o->runnable = false;
    return o;
}

/* Tells every watcher how the job ended (once: they are taken off). */
static void job_tell(struct job *j, int err, int status, long long ms, const char *cause)
{
    struct forward_result r = {
        .delivered = err == 0 && status >= 200 && status < 300,
        .err = err,
        .status = status,
        .attempts = j->attempt,
        .duration_ms = ms,
        .attempt_ms = j->started_ms ? (long long)(uv_now(j->f->loop) - j->started_ms) : 0,
    };
    r.error = r.delivered ? NULL : cause;
    struct watcher *w = j->watchers;
    j->watchers = NULL;
    while (w) {
        struct watcher *next = w->next;
        r.tag = w->w.tag;
        w->w.fn(w->w.ud, &r);
        free(w);
        w = next;
    }
}

static void job_watch(struct job *j, const struct forward_watch *watches, size_t n)
{
    struct watcher **pp = &j->watchers;   /* in submission order */
    while (*pp) pp = &(*pp)->next;
    for (size_t i = 0; i < n; i++) {
        if (!watches[i].fn) continue;
        struct watcher *w = xcalloc(1, sizeof *w);
        w->w = watches[i];
        *pp = w;
        pp = &w->next;
    }
}

static void job_free(struct job *j)
{
    /* A job freed unfinished (the loop stopped) still releases its watchers. */
    job_tell(j, -ECANCELED, 0, 0, "not delivered: shutting down");
    if (j->origin) origin_unref(j->f, j->origin);
    url_free(&j->target);
    buf_free(&j->answer);
    free_n(5, j->url, j->body, j->headers, j->label, j);   /* body holds repository, tag, event_id */
}

/* ---- lists ---------------------------------------------------------------- */

static size_t bucket(const char *url)
{
    return hash_str(HASH_INIT, url) % DEBOUNCE_BUCKETS;
}

static struct job *debounce_find(struct forwarder *f, const char *url)
{
    for (struct job *j = f->debounce[bucket(url)]; j; j = j->hnext)
        if (strcmp(j->url, url) == 0) return j;
    return NULL;
}

static void debounce_remove(struct forwarder *f, struct job *j)
{
    struct job **pp = &f->debounce[bucket(j->url)];
    while (*pp && *pp != j) pp = &(*pp)->hnext;
    if (*pp) *pp = j->hnext;
    j->hnext = NULL;
}

static void ready_push(struct forwarder *f, struct job *j)
{
    struct origin *o = j->origin;
    j->stage = ST_READY;
    j->next = NULL;
    if (o->ready_tail) o->ready_tail->next = j;
    else o->ready_head = j;
    o->ready_tail = j;
    f->nready++;
    f->notify_queued += j->notify;
    origin_maybe_runnable(f, o);
}

static struct job *ready_pop(struct forwarder *f, struct origin *o)
{
    struct job *j = o->ready_head;
    if (!j) return NULL;
    o->ready_head = j->next;
    if (!o->ready_head) o->ready_tail = NULL;
    j->next = NULL;
    f->nready--;
    f->notify_queued -= j->notify;
    return j;
}

static void on_wake(uv_timer_t *t);

static void arm_wake(struct forwarder *f)
{
    if (f->closed || f->draining) return;   /* draining: the timer is the drain deadline */
    if (!f->waiting) {
        uv_timer_stop(&f->wake);
        return;
    }
    uint64_t now = uv_now(f->loop);
    uint64_t due = f->waiting->due_ms;
    uv_timer_start(&f->wake, on_wake, due > now ? due - now : 0, 0);
}

static void wait_insert(struct forwarder *f, struct job *j, uint64_t delay_ms)
{
    j->due_ms = uv_now(f->loop) + delay_ms;
    struct job **pp = &f->waiting;
    while (*pp && (*pp)->due_ms <= j->due_ms) pp = &(*pp)->next;
    j->next = *pp;
    *pp = j;
    f->nwaiting++;
    f->notify_queued += j->notify;
    arm_wake(f);
}

/* Moves waiting jobs to the ready queues: the due ones, or all of them. */
static void release_waiting(struct forwarder *f, bool all)
{
    uint64_t now = uv_now(f->loop);
    while (f->waiting && (all || f->waiting->due_ms <= now)) {
        struct job *j = f->waiting;
        f->waiting = j->next;
        f->nwaiting--;
        f->notify_queued -= j->notify;
        if (j->stage == ST_DEBOUNCE) debounce_remove(f, j);
        ready_push(f, j);
    }
}

static void check_drained(struct forwarder *f);

static void on_wake(uv_timer_t *t)
{
    struct forwarder *f = t->data;
    release_waiting(f, false);
    pump(f);
    arm_wake(f);
}

/* ---- outcomes ------------------------------------------------------------- */

static bool retryable(int err, int status)
{
    /* A certificate that failed verification will fail the same way next
     * time; an unusable URL or request likewise. */
    if (err == -EINVAL || err == -EPROTONOSUPPORT || err == -EKEYREJECTED) return false;
    if (err) return true;              /* refused, reset, timeout, DNS, other TLS trouble... */
    return status >= 500 || status == 429;
}

/* Exponential with full jitter in its upper half: spreads a burst of
 * retries to one recovering target instead of synchronising them. */
static uint64_t backoff_ms(struct forwarder *f, int attempt)
{
    uint64_t d = BACKOFF_BASE_MS;
    for (int i = 1; i < attempt && d < BACKOFF_MAX_MS; i++) d *= 2;
    if (d > BACKOFF_MAX_MS) d = BACKOFF_MAX_MS;
    f->rng ^= f->rng << 13;
    f->rng ^= f->rng >> 7;
    f->rng ^= f->rng << 17;
    return d / 2 + f->rng % (d / 2 + 1);
}

/* done runs from the timer's close callback: by then the forwarder holds no
 * open handle, so the caller may forward_free it right there. */
static void on_wake_closed(uv_handle_t *h)
{
    struct forwarder *f = h->data;
    void (*cb)(void *) = f->drained;
    f->drained = NULL;
    if (cb) cb(f->drained_ud);
}

static void check_drained(struct forwarder *f)
{
    if (!f->draining || f->closed || f->nready || f->nwaiting || f->in_flight) return;
    f->closed = true;
    uv_timer_stop(&f->wake);
    uv_close((uv_handle_t *)&f->wake, on_wake_closed);
}

static void flying_add(struct forwarder *f, struct job *j)
{
    j->prev = NULL;
    j->next = f->flying;
    if (f->flying) f->flying->prev = j;
    f->flying = j;
    f->in_flight++;
    f->notify_in_flight += j->notify;
    j->origin->in_flight++;
}

static void flying_remove(struct forwarder *f, struct job *j)
{
    if (j->prev) j->prev->next = j->next;
    else f->flying = j->next;
    if (j->next) j->next->prev = j->prev;
    j->next = j->prev = NULL;
    f->in_flight--;
    f->notify_in_flight -= j->notify;
    j->origin->in_flight--;
    origin_maybe_runnable(f, j->origin);
}

/* The failure in words: the client's own account when it gave one
 * ("certificate verify failed: self-signed certificate"), else its errno
 * in plain terms, else the HTTP status. */
static const char *cause_of(struct job *j, int err, int status)
{
    if (err && j->cause[0]) return j->cause;
    if (err) return http_client_strerror(err);
    snprintf(j->cause, sizeof j->cause, "HTTP %d", status);
    return j->cause;
}

static void on_head(void *ud, int status, const char *(*get)(void *, const char *), void *ctx)
{
    struct job *j = ud;
    const char *ra = (status == 429 || status == 503) ? get(ctx, "retry-after") : NULL;
    long long ms = ra ? http_retry_after_ms(ra, (long long)time(NULL)) : -1;
    j->retry_after_ms = ms > 0 ? (uint64_t)ms : 0;
}

/* A notification's answer: its start is kept for a 429's JSON retry_after. */
static void on_body(void *ud, const char *data, size_t len)
{
    struct job *j = ud;
    if (j->answer.len < NOTIFY_BODY_MAX)
        buf_append(&j->answer, data, len < NOTIFY_BODY_MAX - j->answer.len ? len : NOTIFY_BODY_MAX - j->answer.len);
}

/* url_redact(url), from the slot its hash picks when the slot holds it. */
static size_t target_slot(const char *url)
{
    return hash_str(HASH_INIT, url) % TARGET_SLOTS;
}

/* url as a known target, from its slot (target_slot), made there if
 * another URL held it. */
static const struct known_target *known_target(struct forwarder *f, const char *url, size_t slot)
{
    struct known_target *t = &f->targets[slot];
    if (t->url && strcmp(t->url, url) == 0) return t;
    free_n(2, t->url, t->shown);
    url_free(&t->parsed);
    struct buf b;
    buf_init(&b);
    url_redact(&b, url);
    t->url = xstrdup(url);
    t->shown = buf_steal(&b);
    t->parsed_rc = url_parse(url, &t->parsed, &t->why);
    return t;
}

/* Notifications log their target by label (kind, host, fingerprint);
 * redeploys by their redacted URL (what F_URL would write). */
static struct log_field target_field(struct job *j)
{
    if (j->notify) return (struct log_field)F_STR("target", j->label);
    return (struct log_field)F_STR("target", known_target(j->f, j->url, j->slot)->shown);
}

static const double latency_bounds[FORWARD_LATENCY_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                                 0.5, 1, 2.5, 5, 10};

double forward_latency_bound(size_t i)
{
    return latency_bounds[i];
}

const struct forward_stats *forward_stats(const struct forwarder *f)
{
    return &f->stats;
}

static void observe(struct forwarder *f, long long ms)
{
    double s = (double)ms / 1000.0;
    for (size_t i = 0; i < FORWARD_LATENCY_BUCKETS; i++)
        if (s <= latency_bounds[i]) f->stats.latency_le[i]++;
    f->stats.latency_count++;
    f->stats.latency_sum += s;
}

static void on_done(void *ud, int err, int status, const char *body, size_t len)
{
    (void)body;
    (void)len;
    struct job *j = ud;
    struct forwarder *f = j->f;
    long long ms = (long long)(uv_now(f->loop) - j->started_ms);
    j->call = NULL;
    flying_remove(f, j);
    if (!j->notify) observe(f, ms);
    if (j->notify && status == 429 && !j->retry_after_ms) {
        long long ra = notify_body_retry_after_ms(j->answer.data, j->answer.len);
        if (ra > 0) j->retry_after_ms = (uint64_t)ra;
    }
    buf_reset(&j->answer);
    if (err == 0 && status >= 200 && status < 300) {
        LOG(f->log, LOG_INFO, j->notify ? "notification sent" : "forwarded", target_field(j), F_INT("status", status),
            F_INT("duration_ms", ms), F_INT("attempt", j->attempt),
            j->merged > 1 ? (struct log_field)F_INT("merged", j->merged) : (struct log_field)F_STR("merged", NULL),
            F_STR("repository", j->repository), F_STR("tag", j->tag), F_STR("event_id", j->event_id));
        if (!j->notify) f->stats.delivered[j->attempt >= 4 ? 3 : j->attempt - 1]++;
        job_tell(j, err, status, ms, NULL);
        job_free(j);
    } else if (retryable(err, status) && j->attempt <= f->opts.retries && !f->draining) {
        uint64_t delay = j->retry_after_ms ? j->retry_after_ms : backoff_ms(f, j->attempt);
        LOG(f->log, LOG_WARN, j->notify ? "notification attempt failed, retrying" : "forward attempt failed, retrying",
            target_field(j),
            F_INT("status", status), F_STR("error", cause_of(j, err, status)), F_INT("attempt", j->attempt),
            F_INT("retry_in_ms", delay), F_INT("duration_ms", ms), F_STR("event_id", j->event_id));
        j->stage = ST_RETRY_WAIT;
        if (!j->notify) f->stats.retried++;
        wait_insert(f, j, delay);
    } else {
        const char *cause = cause_of(j, err, status);
        LOG(f->log, LOG_ERROR, j->notify ? "notification failed" : "forward failed", target_field(j),
            F_INT("status", status), F_STR("error", cause), F_INT("attempts", j->attempt), F_INT("duration_ms", ms),
            F_STR("repository", j->repository), F_STR("tag", j->tag), F_STR("event_id", j->event_id));
        if (!j->notify) f->stats.failed++;
        job_tell(j, err, status, ms, cause);
        job_free(j);
    }
    pump(f);
    check_drained(f);
}

static void start(struct forwarder *f, struct job *j)
{
    static const char headers[] = "Content-Type: application/json\r\nUser-Agent: webhook-router/" WR_VERSION "\r\n";
    struct http_endpoint ep = {.host = j->target.host, .port = j->target.port, .tls = j->target.tls};
    struct http_client_opts o = {
        .method = j->notify ? j->method : "POST",
        .host_header = j->target.authority,
        .path = j->target.path,
        .headers = j->notify ? j->headers : headers,
        .body = j->body,
        .body_len = j->body_len,
        /* One deadline for the whole attempt, whatever phase it is in. */
        .total_timeout_ms = (uint64_t)f->opts.timeout_secs * 1000,
        .on_head = on_head,
        .discard_body = !j->notify,   /* a 2xx is a success whatever it says */
        .on_body = j->notify ? on_body : NULL,
        .keep_alive = true,
        .errbuf = j->cause,
        .errbuf_len = sizeof j->cause,
        .on_done = on_done,
        .ud = j,
    };
    assert(j->stage == ST_READY && !j->call && "a forward started twice");
    j->stage = ST_IN_FLIGHT;
    j->attempt++;
    j->started_ms = uv_now(f->loop);
    j->retry_after_ms = 0;   /* a Retry-After counts for the attempt that got it only */
    j->cause[0] = '\0';
    flying_add(f, j);
    j->call = http_client_request(f->http, &ep, &o);   /* never calls on_done from in here */
}

/* Notifications hold at most half of the slots (at least one). */
static size_t notify_cap(const struct forwarder *f)
{
    size_t half = (size_t)f->opts.concurrency / 2;
    return half ? half : 1;
}

static void pump(struct forwarder *f)
{
    struct origin *held = NULL, **held_tail = &held;   /* notification origins past their cap */
    while (f->in_flight < (size_t)f->opts.concurrency) {
        struct origin *o = runnable_pop(f);
        if (!o) break;
        if (o->notify && f->notify_in_flight >= notify_cap(f)) {
            *held_tail = o;
            held_tail = &o->rnext;
            continue;
        }
        struct job *j = ready_pop(f, o);
        start(f, j);   /* takes a slot of o: it re-enters the list only with one free */
        origin_maybe_runnable(f, o);
    }
    /* Back in the list, in their turn, for when a slot frees. */
    while (held) {
        struct origin *o = held;
        held = o->rnext;
        origin_maybe_runnable(f, o);
    }
}

/* ---- public --------------------------------------------------------------- */

struct forwarder *forward_new(uv_loop_t *loop, struct http_client *http, const struct logger *lg,
                              const struct forward_opts *opts)
{
    struct forwarder *f = xcalloc(1, sizeof *f);
    f->loop = loop;
    f->http = http;
    f->log = lg;
    f->opts = *opts;
    f->rng = uv_hrtime() | 1;
    uv_timer_init(loop, &f->wake);
    f->wake.data = f;
    return f;
}

bool forward_has_room(const struct forwarder *f, size_t n)
{
    return !f->draining && f->nready + f->nwaiting - f->notify_queued + n <= (size_t)f->opts.queue_max;
}

int forward_submit(struct forwarder *f, const char *url, const struct push_event *ev)
{
    return forward_submit_watched(f, url, ev, NULL, 0);
}

int forward_submit_watched(struct forwarder *f, const char *url, const struct push_event *ev,
                           const struct forward_watch *watches, size_t n)
{
    char *expanded = expand_url(url, ev);
    struct job *pending = f->opts.debounce_ms > 0 ? debounce_find(f, expanded) : NULL;
    if (pending) {
        job_set_event(pending, ev);
        job_watch(pending, watches, n);
        free(expanded);
        return 0;
    }
    if (!forward_has_room(f, 1)) {
        free(expanded);
        return -EAGAIN;
    }
    struct job *j = xcalloc(1, sizeof *j);
    j->f = f;
    j->url = expanded;
    j->slot = target_slot(j->url);
    const struct known_target *t = known_target(f, j->url, j->slot);
    if (t->parsed_rc < 0) {
        LOG(f->log, LOG_ERROR, "forward failed", F_STR("target", t->shown), F_STR("error", t->why),
            F_STR("repository", ev->repository), F_STR("tag", ev->tag), F_STR("event_id", ev->id));
        job_free(j);
        return -EINVAL;
    }
    url_copy(&j->target, &t->parsed);
    j->origin = origin_get(f, &j->target, false);
    job_set_event(j, ev);
    job_watch(j, watches, n);
    if (f->opts.debounce_ms > 0) {
        j->stage = ST_DEBOUNCE;
        size_t b = bucket(j->url);
        j->hnext = f->debounce[b];
        f->debounce[b] = j;
        wait_insert(f, j, (uint64_t)f->opts.debounce_ms);
    } else {
        ready_push(f, j);
        pump(f);
    }
    return 0;
}

int forward_send(struct forwarder *f, const struct forward_request *req, forward_done_fn done, void *ud)
{
    if (f->draining || f->notify_queued >= (size_t)f->opts.queue_max) return -EAGAIN;
    struct job *j = xcalloc(1, sizeof *j);
    j->f = f;
    j->notify = true;
    j->url = xstrdup(req->url);
    j->label = xstrdup(req->label ? req->label : "notification");
    const char *why;
    if (url_parse(j->url, &j->target, &why) < 0) {
        LOG(f->log, LOG_ERROR, "notification failed", F_STR("target", j->label), F_STR("error", why));
        job_free(j);
        return -EINVAL;
    }
    j->method = strcmp(req->method, "PUT") == 0 ? "PUT" : "POST";
    j->headers = xstrdup(req->headers ? req->headers : "");
    j->body = xmalloc(req->body_len + 1);
    memcpy(j->body, req->body, req->body_len);
    j->body[req->body_len] = '\0';
    j->body_len = req->body_len;
    j->merged = 1;
    j->origin = origin_get(f, &j->target, true);
    job_watch(j, &(struct forward_watch){.fn = done, .ud = ud}, 1);
    ready_push(f, j);
    pump(f);
    return 0;
}

size_t forward_notify_queued(const struct forwarder *f)
{
    return f->notify_queued;
}

size_t forward_queued(const struct forwarder *f)
{
    return f->nready + f->nwaiting - f->notify_queued;
}

size_t forward_in_flight(const struct forwarder *f)
{
    return f->in_flight;
}

static void give_up(struct forwarder *f, struct job *j)
{
    LOG(f->log, LOG_ERROR, j->notify ? "notification not delivered: shutting down" : "forward not delivered: shutting down",
        target_field(j), F_INT("attempts", j->attempt), F_STR("repository", j->repository), F_STR("tag", j->tag),
        F_STR("event_id", j->event_id));
    if (!j->notify) f->stats.failed++;
    job_free(j);   /* tells the watchers */
}

/* Past the drain deadline: what is still queued or in flight is given up,
 * each job with its own error line, so nothing disappears silently. */
static void on_drain_deadline(uv_timer_t *t)
{
    struct forwarder *f = t->data;
    if (uv_now(f->loop) < f->drain_deadline) {
        uv_timer_start(&f->wake, on_drain_deadline, f->drain_deadline - uv_now(f->loop), 0);
        check_drained(f);
        return;
    }
    while (f->flying) {
        struct job *j = f->flying;
        http_call_cancel(j->call);   /* on_done will not come */
        j->call = NULL;
        flying_remove(f, j);
        give_up(f, j);
    }
    struct origin *o;
    while ((o = runnable_pop(f))) {
        /* Held while its jobs go: the last job's free would free it. */
        o->refs++;
        struct job *j;
        while ((j = ready_pop(f, o))) give_up(f, j);
        origin_unref(f, o);
    }
    check_drained(f);
}

void forward_drain(struct forwarder *f, void (*done)(void *ud), void *ud)
{
    if (f->draining) return;   /* once: the first caller is told */
    f->draining = true;
    f->drained = done;
    f->drained_ud = ud;
    /* Coalescing windows close now, and a retry waits no longer: each gets
     * its last attempt at once (a failure is then final). */
    release_waiting(f, true);
    pump(f);
    f->drain_deadline = uv_now(f->loop) + (uint64_t)f->opts.timeout_secs * 1000 + DRAIN_GRACE_MS;
    /* Report from the loop, never from inside the caller. */
    uv_timer_start(&f->wake, on_drain_deadline, 0, 0);
}

static void free_list(struct job *j)
{
    while (j) {
        struct job *next = j->next;
        job_free(j);
        j = next;
    }
}

void forward_free(struct forwarder *f)
{
    if (!f) return;
    /* Jobs left here were never finished: the loop stopped early (their
     * calls can no longer call back). Origins go with their last job. */
    free_list(f->waiting);
    free_list(f->flying);
    for (size_t i = 0; i < ORIGIN_BUCKETS; i++) {
        struct origin *o = f->origins[i];
        while (o) {
            struct origin *next = o->hnext;
            struct job *j = o->ready_head;
            o->ready_head = NULL;
            free_list(j);   /* may free o once its last job goes */
            o = next;
        }
    }
    for (size_t i = 0; i < TARGET_SLOTS; i++) {
        free_n(2, f->targets[i].url, f->targets[i].shown);
        url_free(&f->targets[i].parsed);
    }
    free(f);
}
