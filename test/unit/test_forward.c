/* The forwarder against a receiver in the same loop: the POST it sends
 * (line, headers, body), one log line per outcome with the target redacted,
 * the queue bound, no retry on 4xx, coalescing, and drain. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "buf.h"
#include "dns.h"
#include "forward.h"
#include "http_client.h"
#include "testutil.h"
#include "url.h"

#define DEADLINE_MS 5000

/* ---- a tiny HTTP receiver on 127.0.0.1 ------------------------------------ */

struct receiver;

struct rx_conn {
    uv_tcp_t h;                /* first member: the handle pointer is the struct */
    struct receiver *rx;
    struct rx_conn *next;
    struct buf in;
    bool answered;
    bool closing;
};

struct receiver {
    uv_tcp_t srv;
    int port;
    int status;                /* answer with this; 0: never answer */
    bool keep;                 /* keep-alive: answer and wait for the next request */
    const char *headers;       /* extra header lines of the answer, or NULL */
    size_t body_bytes;         /* answer body of this many bytes; 0: "ok" */
    int nrequests;
    char last[4096];           /* the last complete request, head and body */
    struct rx_conn *conns;
    int open_handles;
};

static void rx_srv_closed(uv_handle_t *h)
{
    struct receiver *rx = h->data;
    rx->open_handles--;
}

static void rx_conn_closed(uv_handle_t *h)
{
    struct rx_conn *c = h->data;
    struct receiver *rx = c->rx;
    for (struct rx_conn **pp = &rx->conns; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    buf_free(&c->in);
    free(c);
    rx->open_handles--;
}

static void rx_conn_close(struct rx_conn *c)
{
    if (c->closing) return;
    c->closing = true;
    uv_close((uv_handle_t *)&c->h, rx_conn_closed);
}

static void rx_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)h;
    b->base = malloc(suggested);
    b->len = suggested;
}

struct rx_write {
    uv_write_t req;
    char data[];
};

static void rx_written(uv_write_t *req, int status)
{
    struct rx_conn *c = req->handle->data;
    free(req);
    if (status < 0 || !c->rx->keep) rx_conn_close(c);
}

/* Complete once the head is in and Content-Length bytes of body follow it. */
static bool rx_complete(const struct buf *in)
{
    const char *s = buf_cstr(in);
    const char *end = strstr(s, "\r\n\r\n");
    if (!end) return false;
    const char *cl = strcasestr(s, "\r\ncontent-length:");
    size_t want = cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
    return in->len >= (size_t)(end + 4 - s) + want;
}

static void rx_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct rx_conn *c = s->data;
    if (nread > 0) buf_append(&c->in, b->base, (size_t)nread);
    free(b->base);
    if (nread < 0) {
        rx_conn_close(c);
        return;
    }
    if (c->answered || !rx_complete(&c->in)) return;
    c->answered = true;
    struct receiver *rx = c->rx;
    rx->nrequests++;
    snprintf(rx->last, sizeof rx->last, "%s", buf_cstr(&c->in));
    if (!rx->status) return;   /* hold the connection: the client's timeout ends it */
    if (rx->keep) {
        /* One request per read is enough here: the client sends the next
         * one only after this answer. */
        buf_reset(&c->in);
        c->answered = false;
    }
    size_t blen = rx->body_bytes ? rx->body_bytes : 2;
    struct rx_write *w = malloc(sizeof *w + 256 + blen);
    int n = snprintf(w->data, 256, "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n%s%s\r\n", rx->status, blen,
                     rx->keep ? "" : "Connection: close\r\n", rx->headers ? rx->headers : "");
    if (rx->body_bytes) memset(w->data + n, 'x', blen);
    else memcpy(w->data + n, "ok", 2);
    uv_buf_t out = uv_buf_init(w->data, (unsigned)((size_t)n + blen));
    uv_write(&w->req, s, &out, 1, rx_written);
}

static void rx_accept(uv_stream_t *srv, int status)
{
    struct receiver *rx = srv->data;
    if (status < 0) return;
    struct rx_conn *c = calloc(1, sizeof *c);
    c->rx = rx;
    buf_init(&c->in);
    uv_tcp_init(srv->loop, &c->h);
    c->h.data = c;
    rx->open_handles++;
    c->next = rx->conns;
    rx->conns = c;
    if (uv_accept(srv, (uv_stream_t *)&c->h) == 0) uv_read_start((uv_stream_t *)&c->h, rx_alloc, rx_read);
    else rx_conn_close(c);
}

static void rx_start(struct receiver *rx, uv_loop_t *loop, int status)
{
    memset(rx, 0, sizeof *rx);
    rx->status = status;
    rx->port = tu_uv_tcp_listen(loop, &rx->srv, 16, rx_accept);
    rx->srv.data = rx;
    rx->open_handles = 1;
}

/* Closes every accepted connection, as a server ending idle keep-alives does. */
static void rx_drop_conns(struct receiver *rx)
{
    for (struct rx_conn *c = rx->conns; c; c = c->next) rx_conn_close(c);
}

static void rx_stop(struct receiver *rx)
{
    rx_drop_conns(rx);
    uv_close((uv_handle_t *)&rx->srv, rx_srv_closed);
}

/* ---- fixture: loop, logger into a file, resolver, client, forwarder ------- */

struct fx {
    uv_loop_t loop;
    uv_timer_t tick;           /* keeps UV_RUN_ONCE from blocking past a deadline */
    struct logger lg;
    char logpath[64];
    int logfd;
    struct dns *dns;
    struct http_client *http;
    struct forwarder *f;
    struct receiver rx;
    int drained;
    char log[65536];
};

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

static void fx_start(struct fx *x, int status, const struct forward_opts *opts)
{
    memset(x, 0, sizeof *x);
    assert_int_equal(uv_loop_init(&x->loop), 0);
    uv_timer_init(&x->loop, &x->tick);
    uv_timer_start(&x->tick, on_tick, 20, 20);
    snprintf(x->logpath, sizeof x->logpath, "/tmp/wr-test-forward-XXXXXX");
    x->logfd = mkstemp(x->logpath);
    assert_true(x->logfd >= 0);
    unlink(x->logpath);
    logger_init(&x->lg, LOG_DEBUG, LOG_FORMAT_JSON, x->logfd);
    x->dns = dns_new(&x->loop, &x->lg);
    x->http = http_client_new(&x->loop, x->dns, &x->lg);
    x->f = forward_new(&x->loop, x->http, &x->lg, opts);
    rx_start(&x->rx, &x->loop, status);
}

/* Everything logged so far, in x->log. */
static const char *fx_log(struct fx *x)
{
    ssize_t n = pread(x->logfd, x->log, sizeof x->log - 1, 0);
    x->log[n > 0 ? n : 0] = '\0';
    return x->log;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle)) n++;
    return n;
}

#define RUN_UNTIL(x, cond)                                                            \
    do {                                                                              \
        uint64_t t0_ = uv_now(&(x)->loop);                                            \
        while (!(cond) && uv_now(&(x)->loop) - t0_ < DEADLINE_MS)                     \
            uv_run(&(x)->loop, UV_RUN_ONCE);                                          \
        assert_true(cond);                                                            \
    } while (0)

static void on_drained(void *ud)
{
    struct fx *x = ud;
    x->drained++;
    /* Allowed right here: the forwarder holds no open handle any more. */
    forward_free(x->f);
    x->f = NULL;
}

/* Drains, closes everything and checks that nothing is left in the loop. */
static void fx_finish(struct fx *x)
{
    if (x->f) {
        forward_drain(x->f, on_drained, x);
        assert_int_equal(x->drained, 0);   /* reported from the loop, not from in here */
        RUN_UNTIL(x, x->drained == 1);
    }
    http_client_close(x->http, NULL, NULL);
    dns_close(x->dns, NULL, NULL);
    rx_stop(&x->rx);
    uv_close((uv_handle_t *)&x->tick, NULL);
    uv_run(&x->loop, UV_RUN_DEFAULT);
    assert_int_equal(x->rx.open_handles, 0);
    assert_int_equal(uv_loop_close(&x->loop), 0);
    close(x->logfd);
}

static struct push_event event(const char *tag, const char *id)
{
    struct push_event ev = {.format = "generic", .id = (char *)id, .registry = "reg.local:5000",
                            .repository = "team/app", .tag = (char *)tag, .digest = "sha256:abc"};
    return ev;
}

static const struct forward_opts plain_opts = {
    .timeout_secs = 2, .retries = 0, .concurrency = 4, .queue_max = 16, .debounce_ms = 0,
};

/* ---- tests ------------------------------------------------------------------ */

static void test_build_body(void **s)
{
    (void)s;
    struct push_event ev = {.repository = "team/\"x\"\\y", .tag = "v1\t", .digest = NULL,
                            .registry = "r:5000", .id = "e\n1\x01"};
    struct buf b;
    buf_init(&b);
    forward_build_body(&b, &ev);
    assert_string_equal(buf_cstr(&b), "{\"repository\":\"team/\\\"x\\\"\\\\y\",\"tag\":\"v1\\t\","
                                      "\"digest\":null,\"registry\":\"r:5000\",\"event_id\":\"e\\n1\\u0001\"}");
    buf_reset(&b);
    struct push_event empty = {0};
    forward_build_body(&b, &empty);
    assert_string_equal(buf_cstr(&b), "{\"repository\":null,\"tag\":null,\"digest\":null,"
                                      "\"registry\":null,\"event_id\":null}");
    buf_free(&b);
}

static void test_post_delivered(void **s)
{
    (void)s;
    struct fx x;
    fx_start(&x, 200, &plain_opts);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api/webhooks/s3cr3t-token?tag={tag}", x.rx.port);
    struct push_event ev = event("v1.2+b", "ev-1");
    assert_int_equal(forward_submit(x.f, url, &ev), 0);
    RUN_UNTIL(&x, strstr(fx_log(&x), "\"forwarded\""));

    char line[160];
    snprintf(line, sizeof line, "POST /api/webhooks/s3cr3t-token?tag=v1.2%%2Bb HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n",
             x.rx.port);
    assert_true(strncmp(x.rx.last, line, strlen(line)) == 0);
    assert_non_null(strstr(x.rx.last, "\r\nContent-Type: application/json\r\n"));
    assert_non_null(strstr(x.rx.last, "\r\nUser-Agent: webhook-router/" WR_VERSION "\r\n"));
    struct buf body;
    buf_init(&body);
    forward_build_body(&body, &ev);
    char cl[48];
    snprintf(cl, sizeof cl, "\r\nContent-Length: %zu\r\n", body.len);
    assert_non_null(strstr(x.rx.last, cl));
    const char *got = strstr(x.rx.last, "\r\n\r\n");
    assert_non_null(got);
    assert_string_equal(got + 4, buf_cstr(&body));
    buf_free(&body);

    const char *log = fx_log(&x);
    assert_int_equal(count(log, "\n"), 1);   /* one line per outcome */
    assert_non_null(strstr(log, "\"status\":200"));
    assert_non_null(strstr(log, "\"duration_ms\":"));
    assert_non_null(strstr(log, "\"repository\":\"team/app\""));
    assert_non_null(strstr(log, "\"tag\":\"v1.2+b\""));
    assert_non_null(strstr(log, "\"event_id\":\"ev-1\""));
    assert_null(strstr(log, "s3cr3t"));      /* the target is redacted */
    assert_int_equal(forward_in_flight(x.f), 0);
    fx_finish(&x);
}

/* The forwarder remembers the last URL it parsed: URLs taking turns, one
 * of them again and again, must each still go to their own path and Host. */
static void test_targets_taking_turns(void **s)
{
    (void)s;
    struct fx x;
    fx_start(&x, 200, &plain_opts);
    const char *const paths[] = {"/hooks/a", "/hooks/a", "/hooks/b?x=1", "/hooks/a", "/HOOKS/a", "/hooks/b?x=1"};
    const char *const hosts[] = {"127.0.0.1", "127.0.0.1", "localhost", "127.0.0.1", "LocalHost", "localhost"};
    struct push_event ev = event("latest", NULL);
    for (int i = 0; i < 6; i++) {
        char url[128], want[160];
        snprintf(url, sizeof url, "http://%s:%d%s", hosts[i], x.rx.port, paths[i]);
        assert_int_equal(forward_submit(x.f, url, &ev), 0);
        RUN_UNTIL(&x, x.rx.nrequests == i + 1);
        snprintf(want, sizeof want, "POST %s HTTP/1.1\r\nHost: %s:%d\r\n", paths[i],
                 strcmp(hosts[i], "127.0.0.1") ? "localhost" : "127.0.0.1", x.rx.port);
        assert_true(strncmp(x.rx.last, want, strlen(want)) == 0);
    }
    fx_finish(&x);
}

/* Log lines show each target as url_redact does, also when more targets
 * than the forwarder remembers redacted take turns (its slots are reused). */
static void test_log_target_redacted(void **s)
{
    (void)s;
    struct forward_opts o = plain_opts;
    o.queue_max = 200;
    struct fx x;
    fx_start(&x, 200, &o);
    enum { TARGETS = 40 };
    char urls[TARGETS][96];
    for (int i = 0; i < TARGETS; i++)
        snprintf(urls[i], sizeof urls[i], "http://127.0.0.1:%d/hooks/s3cr3t-%d", x.rx.port, i);
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < TARGETS; i++) {
            struct push_event ev = event("v1", "ev");
            assert_int_equal(forward_submit(x.f, urls[i], &ev), 0);
        }
        RUN_UNTIL(&x, count(fx_log(&x), "\"forwarded\"") == (round + 1) * TARGETS);
    }
    const char *log = fx_log(&x);
    assert_null(strstr(log, "s3cr3t"));
    for (int i = 0; i < TARGETS; i++) {
        struct buf want;
        buf_init(&want);
        buf_puts(&want, "\"target\":\"");
        url_redact(&want, urls[i]);
        buf_puts(&want, "\"");
        assert_int_equal(count(log, buf_cstr(&want)), 2);
        buf_free(&want);
    }
    fx_finish(&x);
}

static void test_queue_full(void **s)
{
    (void)s;
    struct forward_opts o = plain_opts;
    o.concurrency = 1;
    o.queue_max = 2;
    struct fx x;
    fx_start(&x, 204, &o);
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", x.rx.port);
    struct push_event ev = event("latest", NULL);
    assert_true(forward_has_room(x.f, 2));
    assert_false(forward_has_room(x.f, 3));
    /* The first goes in flight at once and leaves the waiting room free. */
    assert_int_equal(forward_submit(x.f, url, &ev), 0);
    assert_int_equal(forward_in_flight(x.f), 1);
    assert_true(forward_has_room(x.f, 2));
    assert_false(forward_has_room(x.f, 3));
    assert_int_equal(forward_submit(x.f, url, &ev), 0);
    assert_int_equal(forward_submit(x.f, url, &ev), 0);
    assert_false(forward_has_room(x.f, 1));
    assert_int_equal(forward_submit(x.f, url, &ev), -EAGAIN);
    assert_int_equal(forward_queued(x.f), 2);
    assert_int_equal(forward_in_flight(x.f), 1);
    /* One at a time, all three delivered. */
    RUN_UNTIL(&x, count(fx_log(&x), "\"forwarded\"") == 3);
    assert_int_equal(x.rx.nrequests, 3);
    assert_int_equal(forward_queued(x.f), 0);
    assert_true(forward_has_room(x.f, 2));
    fx_finish(&x);
}

static void test_http_error_not_retried(void **s)
{
    (void)s;
    struct forward_opts o = plain_opts;
    o.retries = 3;
    struct fx x;
    fx_start(&x, 404, &o);
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hooks/tok404", x.rx.port);
    struct push_event ev = event("v2", "e-404");
    assert_int_equal(forward_submit(x.f, url, &ev), 0);
    RUN_UNTIL(&x, strstr(fx_log(&x), "\"forward failed\""));
    const char *log = fx_log(&x);
    assert_non_null(strstr(log, "\"level\":\"error\""));
    assert_non_null(strstr(log, "\"error\":\"HTTP 404\""));
    assert_non_null(strstr(log, "\"event_id\":\"e-404\""));
    assert_null(strstr(log, "tok404"));
    assert_int_equal(count(log, "\n"), 1);
    assert_int_equal(x.rx.nrequests, 1);     /* a 4xx is final */
    fx_finish(&x);
}

static void test_unreachable_and_bad_urls(void **s)
{
    (void)s;
    struct fx x;
    fx_start(&x, 200, &plain_opts);
    int closed_port = tu_closed_port();

    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hooks/refused", closed_port);
    struct push_event ev = event("v3", "e-3");
    assert_int_equal(forward_submit(x.f, url, &ev), 0);
    /* https without TLS set up on the client: a clear failure, not a hang. */
    assert_int_equal(forward_submit(x.f, "https://127.0.0.1:1/hooks/tls", &ev), 0);
    /* Unusable URLs are refused at once, with one logged line each. */
    assert_int_equal(forward_submit(x.f, "ftp://example.com/x", &ev), -EINVAL);
    assert_int_equal(forward_submit(x.f, "http://user:pw@example.com/x", &ev), -EINVAL);
    RUN_UNTIL(&x, count(fx_log(&x), "\"forward failed\"") == 4);
    const char *log = fx_log(&x);
    assert_non_null(strstr(log, "\"error\":\"connection refused\""));
    assert_non_null(strstr(log, "\"error\":\"scheme must be http or https\""));
    assert_null(strstr(log, "pw@"));
    assert_int_equal(x.rx.nrequests, 0);
    fx_finish(&x);
}

static void test_timeout_logged(void **s)
{
    (void)s;
    struct forward_opts o = plain_opts;
    o.timeout_secs = 1;
    struct fx x;
    fx_start(&x, 0, &o);   /* the receiver reads the request and never answers */
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/slow", x.rx.port);
    struct push_event ev = event("v4", "e-4");
    uint64_t t0 = uv_now(&x.loop);
    assert_int_equal(forward_submit(x.f, url, &ev), 0);
    RUN_UNTIL(&x, strstr(fx_log(&x), "\"forward failed\""));
    uint64_t took = uv_now(&x.loop) - t0;
    assert_true(took >= 900 && took < 3000);
    assert_non_null(strstr(fx_log(&x), "\"error\":\"no complete answer within 1000 ms\""));
    assert_int_equal(x.rx.nrequests, 1);
    fx_finish(&x);
}

static void test_coalescing(void **s)
{
    (void)s;
    struct forward_opts o = plain_opts;
    o.debounce_ms = 50;
    struct fx x;
    fx_start(&x, 200, &o);
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hooks/stack", x.rx.port);
    struct push_event a = event("latest", "e-a"), b = event("sha-abc", "e-b");
    assert_int_equal(forward_submit(x.f, url, &a), 0);
    assert_int_equal(forward_submit(x.f, url, &b), 0);
    assert_int_equal(forward_queued(x.f), 1);
    RUN_UNTIL(&x, strstr(fx_log(&x), "\"forwarded\""));
    assert_int_equal(x.rx.nrequests, 1);
    assert_non_null(strstr(x.rx.last, "\"tag\":\"sha-abc\""));   /* the last event wins */
    fx_finish(&x);
}

/* Outcomes per watcher: every push coalesced into one POST is told its
 * outcome, under its own tag, as many watchers as it came with; a failure
 * has its status, attempts and cause. */
struct outcomes {
    int n, delivered;
    uint64_t tags;   /* the sum of the tags told */
    uint64_t last_tag;
    struct forward_result last;
    char error[64];   /* last.error is borrowed for the call only */
};

static void on_outcome(void *ud, const struct forward_result *r)
{
    struct outcomes *c = ud;
    c->n++;
    c->delivered += r->delivered;
    c->tags += r->tag;
    c->last_tag = r->tag;
    c->last = *r;
    snprintf(c->error, sizeof c->error, "%s", r->error ? r->error : "");
    c->last.error = NULL;
}

static void test_outcomes_per_tag(void **s)
{
    (void)s;
    struct outcomes c = {0}, c2 = {0};
    struct forward_opts o = plain_opts;
    o.debounce_ms = 50;
    struct fx x;
    fx_start(&x, 200, &o);
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hooks/tags", x.rx.port);
    struct push_event ev = event("latest", "e-t");
    for (uint64_t t = 1; t <= 10; t++) {
        struct forward_watch w[2] = {{on_outcome, &c, t}, {on_outcome, &c2, 100 + t}};
        assert_int_equal(forward_submit_watched(x.f, url, &ev, w, 2), 0);
    }
    assert_int_equal(forward_submit(x.f, url, &ev), 0);   /* unwatched: tells nobody */
    assert_int_equal(c.n, 0);   /* never from inside the submit */
    RUN_UNTIL(&x, c.n == 10 && c2.n == 10);
    assert_int_equal(c.delivered, 10);
    assert_int_equal(c.tags, 55);
    assert_int_equal(c2.tags, 1055);
    assert_int_equal(c.last.status, 200);
    assert_int_equal(c.last.attempts, 1);
    assert_string_equal(c.error, "");
    assert_int_equal(x.rx.nrequests, 1);
    fx_finish(&x);

    struct outcomes f = {0};
    o = plain_opts;
    o.retries = 1;
    fx_start(&x, 503, &o);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hooks/down", x.rx.port);
    assert_int_equal(forward_submit_watched(x.f, url, &ev, &(struct forward_watch){on_outcome, &f, 77}, 1), 0);
    assert_int_equal(f.n, 0);
    RUN_UNTIL(&x, f.n == 1);
    assert_int_equal(f.last_tag, 77);
    assert_false(f.last.delivered);
    assert_int_equal(f.last.status, 503);
    assert_int_equal(f.last.attempts, 2);
    assert_string_equal(f.error, "HTTP 503");
    assert_true(f.last.attempt_ms >= 0);
    fx_finish(&x);
}

static void test_keep_alive_reuse(void **s)
{
    (void)s;
    struct fx x;
    fx_start(&x, 200, &plain_opts);
    x.rx.keep = true;
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hooks/ka", x.rx.port);
    struct push_event ev = event("v6", "e-6");
    assert_int_equal(forward_submit(x.f, url, &ev), 0);
    RUN_UNTIL(&x, count(fx_log(&x), "\"forwarded\"") == 1);
    assert_int_equal(forward_submit(x.f, url, &ev), 0);
    RUN_UNTIL(&x, count(fx_log(&x), "\"forwarded\"") == 2);
    assert_int_equal(http_client_connections_opened(x.http), 1);   /* the second reused it */

    /* The server closes its idle connections and the client notices before
     * the next forward: a fresh connection. */
    rx_drop_conns(&x.rx);
    RUN_UNTIL(&x, x.rx.conns == NULL);
    for (int i = 0; i < 5; i++) uv_run(&x.loop, UV_RUN_NOWAIT);
    assert_int_equal(forward_submit(x.f, url, &ev), 0);
    RUN_UNTIL(&x, count(fx_log(&x), "\"forwarded\"") == 3);
    assert_int_equal(http_client_connections_opened(x.http), 2);

    /* Closed while the client still holds it as idle: the request is sent
     * again on a fresh connection, not lost or failed. */
    rx_drop_conns(&x.rx);
    assert_int_equal(forward_submit(x.f, url, &ev), 0);
    RUN_UNTIL(&x, count(fx_log(&x), "\"forwarded\"") == 4);
    assert_int_equal(http_client_connections_opened(x.http), 3);
    assert_int_equal(x.rx.nrequests, 4);
    assert_null(strstr(fx_log(&x), "\"forward failed\""));
    fx_finish(&x);
}

static void test_drain(void **s)
{
    (void)s;
    /* Nothing queued: done still comes from the loop, not from forward_drain. */
    struct fx x;
    fx_start(&x, 200, &plain_opts);
    fx_finish(&x);

    /* Work queued: drain lets it finish first, and refuses new work. */
    struct forward_opts o = plain_opts;
    o.debounce_ms = 10000;   /* drain must not wait out a coalescing window */
    fx_start(&x, 200, &o);
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hooks/d", x.rx.port);
    struct push_event ev = event("v5", "e-5");
    assert_int_equal(forward_submit(x.f, url, &ev), 0);
    forward_drain(x.f, on_drained, &x);
    assert_false(forward_has_room(x.f, 1));
    assert_int_equal(forward_submit(x.f, url, &ev), -EAGAIN);
    uint64_t t0 = uv_now(&x.loop);
    RUN_UNTIL(&x, x.drained == 1);
    assert_true(uv_now(&x.loop) - t0 < 2000);
    assert_int_equal(x.rx.nrequests, 1);
    assert_non_null(strstr(fx_log(&x), "\"forwarded\""));
    fx_finish(&x);
}


/* ---- issue 11: what the review found ---------------------------------------- */

static void test_retry_after_values(void **s)
{
    (void)s;
    long long now = 784111777;   /* Sun, 06 Nov 1994 08:49:37 GMT */
    assert_int_equal(http_retry_after_ms("2", now), 2000);
    assert_int_equal(http_retry_after_ms("  7\t", now), 7000);
    assert_int_equal(http_retry_after_ms("0", now), 0);
    assert_int_equal(http_retry_after_ms("61", now), 60000);
    assert_int_equal(http_retry_after_ms("9223372036854776", now), 60000);
    assert_int_equal(http_retry_after_ms("99999999999999999999999999999", now), 60000);
    assert_int_equal(http_retry_after_ms("Sun, 06 Nov 1994 08:49:47 GMT", now), 10000);
    assert_int_equal(http_retry_after_ms(" Sun, 06 Nov 1994 08:49:30 GMT ", now), 0);   /* past */
    assert_int_equal(http_retry_after_ms("Mon, 07 Nov 1994 08:49:37 GMT", now), 60000);
    const char *bad[] = {"", "  ", "-1", "1.5", "2s", "soon", "Sun, 06 Nov 1994", NULL};
    for (size_t i = 0; bad[i]; i++) assert_int_equal(http_retry_after_ms(bad[i], now), -1);
    assert_int_equal(http_retry_after_ms(NULL, now), -1);
}

/* Item 2: a Retry-After of 2^63 ms must not overflow into a retry that
 * never comes (it held a slot forever and blocked shutdown). */
static void test_retry_after_huge_clamped(void **s)
{
    (void)s;
    struct forward_opts o = plain_opts;
    o.retries = 1;
    struct fx x;
    fx_start(&x, 503, &o);
    x.rx.headers = "Retry-After: 9223372036854776\r\n";
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hooks/ra", x.rx.port);
    struct push_event ev = event("v7", "e-7");
    assert_int_equal(forward_submit(x.f, url, &ev), 0);
    RUN_UNTIL(&x, strstr(fx_log(&x), "retrying"));
    assert_non_null(strstr(fx_log(&x), "\"retry_in_ms\":60000"));
    fx_finish(&x);
}

/* Item 2: the Retry-After of one attempt says nothing about the next one,
 * which got no answer at all: that one backs off normally. */
static void test_retry_after_not_reused(void **s)
{
    (void)s;
    struct forward_opts o = plain_opts;
    o.retries = 2;
    o.timeout_secs = 1;
    struct fx x;
    fx_start(&x, 503, &o);
    x.rx.headers = "Retry-After: 2\r\n";
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hooks/ra2", x.rx.port);
    struct push_event ev = event("v8", "e-8");
    assert_int_equal(forward_submit(x.f, url, &ev), 0);
    RUN_UNTIL(&x, count(fx_log(&x), "retrying") == 1);
    assert_non_null(strstr(fx_log(&x), "\"retry_in_ms\":2000"));
    x.rx.status = 0;   /* the next attempt gets no answer */
    uint64_t t0 = uv_now(&x.loop);
    while (count(fx_log(&x), "retrying") < 2 && uv_now(&x.loop) - t0 < 6000) uv_run(&x.loop, UV_RUN_ONCE);
    const char *second = strstr(strstr(fx_log(&x), "retrying") + 1, "retrying");
    assert_non_null(second);
    const char *ms = strstr(second, "\"retry_in_ms\":");
    assert_non_null(ms);
    assert_true(atoi(ms + 14) <= 1000);   /* backoff of attempt 2, not the old 2000 */
    fx_finish(&x);
}

/* Item 3: shutdown is bounded even with a retry scheduled far ahead; the
 * waiting job gets its last attempt now, and what is not delivered in
 * time is one error line. */
static void test_drain_bounded(void **s)
{
    (void)s;
    struct forward_opts o = plain_opts;
    o.retries = 3;
    o.timeout_secs = 1;
    struct fx x;
    fx_start(&x, 503, &o);
    x.rx.headers = "Retry-After: 60\r\n";
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hooks/far", x.rx.port);
    struct push_event ev = event("v9", "e-9");
    assert_int_equal(forward_submit(x.f, url, &ev), 0);
    RUN_UNTIL(&x, strstr(fx_log(&x), "\"retry_in_ms\":60000"));
    x.rx.status = 0;   /* the last attempt hangs */
    uint64_t t0 = uv_now(&x.loop);
    forward_drain(x.f, on_drained, &x);
    RUN_UNTIL(&x, x.drained == 1);
    uint64_t took = uv_now(&x.loop) - t0;
    assert_true(took < 2600);   /* timeout (1 s) + grace (1 s) + slack */
    assert_int_equal(x.rx.nrequests, 2);   /* the last attempt went out at once */
    const char *log = fx_log(&x);
    assert_int_equal(count(log, "\"level\":\"error\""), 1);
    assert_non_null(strstr(log, "\"repository\":\"team/app\",\"tag\":\"v9\""));
    assert_non_null(strstr(log, "\"attempts\":2"));
    assert_null(strstr(log, "/hooks/far"));   /* redacted */
    fx_finish(&x);
}

/* Item 5: a 2xx with a large body is a success. */
static void test_large_answer_is_success(void **s)
{
    (void)s;
    struct fx x;
    fx_start(&x, 200, &plain_opts);
    x.rx.body_bytes = 300 * 1024;
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hooks/big", x.rx.port);
    struct push_event ev = event("v10", "e-10");
    assert_int_equal(forward_submit(x.f, url, &ev), 0);
    RUN_UNTIL(&x, strstr(fx_log(&x), "\"forwarded\"") || strstr(fx_log(&x), "\"forward failed\""));
    assert_non_null(strstr(fx_log(&x), "\"forwarded\""));
    assert_null(strstr(fx_log(&x), "argument list"));
    fx_finish(&x);
}

/* Item 6: one deadline for a whole attempt. The target's accept queue is
 * full, so our SYN is dropped and retransmitted after ~1 s: the connect
 * alone takes about 1 s, then the target never answers. The attempt must
 * end at FORWARD_TIMEOUT_SECS (2 s), not connect + 2 s. */
static void test_one_deadline_per_attempt(void **s)
{
    (void)s;
    struct forward_opts o = plain_opts;
    o.timeout_secs = 2;
    struct fx x;
    fx_start(&x, 200, &o);
    int port;
    int lfd = tu_tcp_listen(0, &port);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    /* Fill the accept queue (backlog 0 holds one) with connections nobody accepts. */
    int fillers[2];
    for (int i = 0; i < 2; i++) {
        fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fillers[i], (struct sockaddr *)&sa, sizeof sa);
    }
    usleep(50000);
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hooks/slow", ntohs(sa.sin_port));
    struct push_event ev = event("v11", "e-11");
    uint64_t t0 = uv_now(&x.loop);
    assert_int_equal(forward_submit(x.f, url, &ev), 0);
    /* Make room after 0.7 s so the retransmitted SYN gets in. */
    while (uv_now(&x.loop) - t0 < 700) uv_run(&x.loop, UV_RUN_ONCE);
    int a1 = accept(lfd, NULL, NULL);
    int a2 = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
    RUN_UNTIL(&x, strstr(fx_log(&x), "\"forward failed\""));
    uint64_t took = uv_now(&x.loop) - t0;
    assert_true(took >= 1900 && took < 2500);
    int a3 = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
    for (int i = 0; i < 2; i++) close(fillers[i]);
    if (a1 >= 0) close(a1);
    if (a2 >= 0) close(a2);
    if (a3 >= 0) close(a3);
    close(lfd);
    fx_finish(&x);
}

/* Item 8: a target that hangs holds its own slots only: forwards to a
 * healthy target go out at once. */
static void test_dead_target_does_not_block_others(void **s)
{
    (void)s;
    struct forward_opts o = plain_opts;
    o.concurrency = 4;
    o.per_origin = 2;
    o.queue_max = 64;
    o.timeout_secs = 5;
    struct fx x;
    fx_start(&x, 0, &o);   /* x.rx hangs */
    struct receiver good;
    rx_start(&good, &x.loop, 204);
    char dead[96], ok[96];
    struct push_event ev = event("v12", "e-12");
    for (int i = 0; i < 10; i++) {
        snprintf(dead, sizeof dead, "http://127.0.0.1:%d/hooks/dead-%d", x.rx.port, i);
        assert_int_equal(forward_submit(x.f, dead, &ev), 0);
    }
    uint64_t t0 = uv_now(&x.loop);
    for (int i = 0; i < 3; i++) {
        snprintf(ok, sizeof ok, "http://127.0.0.1:%d/hooks/ok-%d", good.port, i);
        assert_int_equal(forward_submit(x.f, ok, &ev), 0);
    }
    RUN_UNTIL(&x, good.nrequests == 3 && count(fx_log(&x), "\"forwarded\"") == 3);
    assert_true(uv_now(&x.loop) - t0 < 1000);
    assert_true(x.rx.nrequests <= 2);   /* the dead one never had more than its share */
    rx_stop(&good);
    /* Shutting down gives up the hanging ones, one error line each. */
    forward_drain(x.f, on_drained, &x);
    uint64_t t1 = uv_now(&x.loop);
    while (x.drained == 0 && uv_now(&x.loop) - t1 < 8000) uv_run(&x.loop, UV_RUN_ONCE);
    assert_int_equal(x.drained, 1);
    assert_int_equal(count(fx_log(&x), "\"level\":\"error\""), 10);
    fx_finish(&x);
}

/* ---- notifications and watchers --------------------------------------------- */

struct told {
    int n;
    struct forward_result last;
};

static void on_told(void *ud, const struct forward_result *r)
{
    struct told *t = ud;
    t->n++;
    t->last = *r;
    t->last.error = NULL;
}

/* A prepared request goes out as it is (method, headers, body); the log
 * shows its label, never its URL; done is told once. */
static void test_send_prepared(void **s)
{
    (void)s;
    struct fx x;
    fx_start(&x, 200, &plain_opts);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/rooms/s3cr3t/send/txn1", x.rx.port);
    struct forward_request req = {.method = "PUT", .url = url, .headers = "X-Key: k\r\n", .body = "{\"a\":1}",
                                  .body_len = 7, .label = "matrix 127.0.0.1 #0badf00d"};
    struct told t = {0};
    assert_int_equal(forward_send(x.f, &req, on_told, &t), 0);
    RUN_UNTIL(&x, t.n == 1);
    assert_true(t.last.delivered);
    assert_int_equal(t.last.status, 200);
    assert_int_equal(t.last.attempts, 1);
    assert_true(strncmp(x.rx.last, "PUT /rooms/s3cr3t/send/txn1 HTTP/1.1\r\n", 38) == 0);
    assert_non_null(strstr(x.rx.last, "\r\nX-Key: k\r\n"));
    assert_non_null(strstr(x.rx.last, "\r\n\r\n{\"a\":1}"));
    const char *log = fx_log(&x);
    assert_non_null(strstr(log, "\"notification sent\""));
    assert_non_null(strstr(log, "matrix 127.0.0.1 #0badf00d"));
    assert_null(strstr(log, "s3cr3t"));
    /* Not a forward: the redeploy counters did not move. */
    assert_int_equal(forward_stats(x.f)->delivered[0], 0);
    fx_finish(&x);
    assert_int_equal(t.n, 1);
}

/* Notifications have their own bound: a full notification queue leaves the
 * redeploy queue's room alone, and the other way round. */
static void test_send_own_bound(void **s)
{
    (void)s;
    struct forward_opts o = plain_opts;
    o.concurrency = 2;   /* one slot for notifications */
    o.queue_max = 3;
    struct fx x;
    fx_start(&x, 0, &o);   /* never answers: everything stays queued or in flight */
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/n", x.rx.port);
    struct forward_request req = {.method = "POST", .url = url, .body = "x", .body_len = 1, .label = "generic n"};
    struct told t = {0};
    int accepted = 0;
    for (int i = 0; i < 10; i++) accepted += forward_send(x.f, &req, on_told, &t) == 0;
    assert_int_equal(accepted, 4);   /* one in flight (half the slots) + queue_max waiting */
    assert_int_equal(forward_notify_queued(x.f), 3);
    assert_int_equal(forward_queued(x.f), 0);
    assert_true(forward_has_room(x.f, 3));
    assert_int_equal(forward_in_flight(x.f), 1);
    /* A redeploy still gets the other slot at once. */
    struct push_event ev = event("v1", "e-1");
    assert_int_equal(forward_submit(x.f, url, &ev), 0);
    assert_int_equal(forward_in_flight(x.f), 2);
    fx_finish(&x);
    assert_int_equal(t.n, 4);   /* each told once, also when given up */
}

/* Coalesced events are each told the outcome of the one POST. */
static void test_watched_coalesced(void **s)
{
    (void)s;
    struct forward_opts o = plain_opts;
    o.debounce_ms = 50;
    struct fx x;
    fx_start(&x, 500, &o);
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hooks/c", x.rx.port);
    struct told a = {0}, b = {0};
    struct push_event e1 = event("v1", "e-1"), e2 = event("v2", "e-2");
    assert_int_equal(forward_submit_watched(x.f, url, &e1, &(struct forward_watch){on_told, &a, 0}, 1), 0);
    assert_int_equal(forward_submit_watched(x.f, url, &e2, &(struct forward_watch){on_told, &b, 0}, 1), 0);
    RUN_UNTIL(&x, a.n == 1 && b.n == 1);
    assert_int_equal(x.rx.nrequests, 1);
    assert_false(a.last.delivered);
    assert_int_equal(a.last.status, 500);
    assert_int_equal(b.last.status, 500);
    fx_finish(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_body),
        cmocka_unit_test(test_post_delivered),
        cmocka_unit_test(test_targets_taking_turns),
        cmocka_unit_test(test_log_target_redacted),
        cmocka_unit_test(test_queue_full),
        cmocka_unit_test(test_http_error_not_retried),
        cmocka_unit_test(test_unreachable_and_bad_urls),
        cmocka_unit_test(test_timeout_logged),
        cmocka_unit_test(test_coalescing),
        cmocka_unit_test(test_outcomes_per_tag),
        cmocka_unit_test(test_keep_alive_reuse),
        cmocka_unit_test(test_drain),
        cmocka_unit_test(test_retry_after_values),
        cmocka_unit_test(test_retry_after_huge_clamped),
        cmocka_unit_test(test_retry_after_not_reused),
        cmocka_unit_test(test_drain_bounded),
        cmocka_unit_test(test_large_answer_is_success),
        cmocka_unit_test(test_one_deadline_per_attempt),
        cmocka_unit_test(test_dead_target_does_not_block_others),
        cmocka_unit_test(test_send_prepared),
        cmocka_unit_test(test_send_own_bound),
        cmocka_unit_test(test_watched_coalesced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
