/* forward.c - the delivery queue for redeploy POSTs.
 *
 * A job is one (event, target URL). Jobs wait in a FIFO until one of the
 * FORWARD_CONCURRENCY slots is free, then go out through http_client. Every
 * job ends in exactly one log line. The job keeps its attempt count and the
 * parsed URL so retries and connection reuse can be added here without
 * touching the callers. */
#include "forward.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "json.h"
#include "url.h"

struct job {
    struct forwarder *f;
    struct job *next;
    char *url;                 /* placeholders expanded; secret: log with F_URL only */
    struct url target;
    char *body;
    size_t body_len;
    char *repository, *tag, *event_id;
    int attempt;
    uint64_t started_ms;
    struct http_call *call;
};

struct forwarder {
    uv_loop_t *loop;
    struct http_client *http;
    const struct logger *log;
    struct forward_opts opts;
    struct job *head, *tail;   /* waiting */
    size_t queued;
    size_t in_flight;
    bool draining;
    void (*drained)(void *ud);
    void *drained_ud;
    uv_timer_t later;          /* reports "drained" from the loop, not from inside a call */
    bool later_closed;
};

static void pump(struct forwarder *f);

void forward_build_body(struct buf *out, const struct push_event *ev)
{
    int first = 1;
    buf_putc(out, '{');
    json_put_key(out, "repository", &first);
    json_put_str(out, ev->repository);
    json_put_key(out, "tag", &first);
    json_put_str(out, ev->tag);
    json_put_key(out, "digest", &first);
    json_put_str(out, ev->digest);
    json_put_key(out, "registry", &first);
    json_put_str(out, ev->registry);
    json_put_key(out, "event_id", &first);
    json_put_str(out, ev->id);
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

static void job_free(struct job *j)
{
    free(j->url);
    url_free(&j->target);
    free(j->body);
    free(j->repository);
    free(j->tag);
    free(j->event_id);
    free(j);
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

struct forwarder *forward_new(uv_loop_t *loop, struct http_client *http, const struct logger *lg,
                              const struct forward_opts *opts)
{
    struct forwarder *f = xcalloc(1, sizeof *f);
    f->loop = loop;
    f->http = http;
    f->log = lg;
    f->opts = *opts;
    uv_timer_init(loop, &f->later);
    f->later.data = f;
    return f;
}

bool forward_has_room(const struct forwarder *f, size_t n)
{
    return !f->draining && f->queued + n <= (size_t)f->opts.queue_max;
}

int forward_submit(struct forwarder *f, const char *url, const struct push_event *ev)
{
    if (!forward_has_room(f, 1)) return -EAGAIN;
    struct job *j = xcalloc(1, sizeof *j);
    j->f = f;
    j->url = expand_url(url, ev);
    const char *why;
    if (url_parse(j->url, &j->target, &why) < 0 || j->target.tls) {
        LOG(f->log, LOG_ERROR, "forward failed", F_URL("target", j->url),
            F_STR("error", j->target.tls ? "https targets are not supported yet" : why),
            F_STR("repository", ev->repository), F_STR("tag", ev->tag), F_STR("event_id", ev->id));
        job_free(j);
        return -EINVAL;
    }
    struct buf body;
    buf_init(&body);
    forward_build_body(&body, ev);
    j->body_len = body.len;
    j->body = buf_steal(&body);
    j->repository = dup_or_null(ev->repository);
    j->tag = dup_or_null(ev->tag);
    j->event_id = dup_or_null(ev->id);
    if (f->tail) f->tail->next = j;
    else f->head = j;
    f->tail = j;
    f->queued++;
    pump(f);
    return 0;
}

static void on_later(uv_timer_t *t)
{
    struct forwarder *f = t->data;
    if (f->draining && f->drained && f->queued == 0 && f->in_flight == 0) {
        void (*cb)(void *) = f->drained;
        f->drained = NULL;
        uv_close((uv_handle_t *)&f->later, NULL);
        f->later_closed = true;
        cb(f->drained_ud);
    }
}

static void check_drained(struct forwarder *f)
{
    if (f->draining && f->queued == 0 && f->in_flight == 0 && !f->later_closed)
        uv_timer_start(&f->later, on_later, 0, 0);
}

static void on_done(void *ud, int err, int status, const char *body, size_t len)
{
    (void)body;
    (void)len;
    struct job *j = ud;
    struct forwarder *f = j->f;
    long long ms = (long long)(uv_now(f->loop) - j->started_ms);
    if (err == 0 && status >= 200 && status < 300) {
        LOG(f->log, LOG_INFO, "forwarded", F_URL("target", j->url), F_INT("status", status),
            F_INT("duration_ms", ms), F_INT("attempt", j->attempt), F_STR("repository", j->repository),
            F_STR("tag", j->tag), F_STR("event_id", j->event_id));
    } else {
        char cause[64];
        if (err) snprintf(cause, sizeof cause, "%s", uv_strerror(err));
        else snprintf(cause, sizeof cause, "HTTP %d", status);
        LOG(f->log, LOG_ERROR, "forward failed", F_URL("target", j->url), F_INT("status", status),
            F_STR("error", cause), F_INT("duration_ms", ms), F_INT("attempt", j->attempt),
            F_STR("repository", j->repository), F_STR("tag", j->tag), F_STR("event_id", j->event_id));
    }
    f->in_flight--;
    job_free(j);
    pump(f);
    check_drained(f);
}

static void start(struct forwarder *f, struct job *j)
{
    char headers[128];
    snprintf(headers, sizeof headers,
             "Content-Type: application/json\r\nUser-Agent: webhook-router/%s\r\n", WR_VERSION);
    struct http_endpoint ep = {.host = j->target.host, .port = j->target.port, .tls = j->target.tls};
    struct http_client_opts o = {
        .method = "POST",
        .host_header = j->target.authority,
        .path = j->target.path,
        .headers = headers,
        .body = j->body,
        .body_len = j->body_len,
        .connect_timeout_ms = (uint64_t)f->opts.timeout_secs * 1000,
        .response_timeout_ms = (uint64_t)f->opts.timeout_secs * 1000,
        .max_body = 64 * 1024,
        .on_done = on_done,
        .ud = j,
    };
    j->attempt++;
    j->started_ms = uv_now(f->loop);
    f->in_flight++;
    j->call = http_client_request(f->http, &ep, &o);
}

static void pump(struct forwarder *f)
{
    while (f->head && f->in_flight < (size_t)f->opts.concurrency) {
        struct job *j = f->head;
        f->head = j->next;
        if (!f->head) f->tail = NULL;
        j->next = NULL;
        f->queued--;
        start(f, j);
    }
}

size_t forward_queued(const struct forwarder *f)
{
    return f->queued;
}

size_t forward_in_flight(const struct forwarder *f)
{
    return f->in_flight;
}

void forward_drain(struct forwarder *f, void (*done)(void *ud), void *ud)
{
    f->draining = true;
    f->drained = done;
    f->drained_ud = ud;
    check_drained(f);
}

void forward_free(struct forwarder *f)
{
    if (!f) return;
    /* Jobs still queued here were never started (the loop stopped early). */
    struct job *j = f->head;
    while (j) {
        struct job *next = j->next;
        job_free(j);
        j = next;
    }
    free(f);
}
