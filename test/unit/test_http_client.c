/* The outbound HTTP client and resolver against scripted loopback peers:
 * framing (length, chunked, EOF), malformed answers, refused, timeouts,
 * unix sockets, cancellation, and the forward body. */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "dns.h"
#include "forward.h"
#include "http_client.h"
#include "testutil.h"

/* A peer that accepts one connection, reads the request head, then sends
 * its script: parts separated by '|' with a 30 ms pause between them. A
 * script of "" means: never answer (hold the connection ~1 s). */
struct peer {
    int lfd;
    int port;
    char dir[64];
    char sun_path[108];
    const char *script;
    char request[4096];
    pthread_t th;
};

static void *peer_main(void *arg)
{
    struct peer *p = arg;
    int fd = accept(p->lfd, NULL, NULL);
    if (fd < 0) return NULL;
    size_t n = 0;
    while (n + 1 < sizeof p->request && !strstr(p->request, "\r\n\r\n")) {
        ssize_t got = recv(fd, p->request + n, sizeof p->request - n - 1, 0);
        if (got <= 0) break;
        n += (size_t)got;
        p->request[n] = '\0';
    }
    if (!*p->script) {
        usleep(1000000);
    } else {
        for (const char *s = p->script; *s;) {
            size_t len = strcspn(s, "|");
            send(fd, s, len, MSG_NOSIGNAL);
            s += len;
            if (*s == '|') {
                s++;
                usleep(30000);
            }
        }
    }
    close(fd);
    return NULL;
}

static void peer_start_tcp(struct peer *p, const char *script)
{
    memset(p, 0, sizeof *p);
    p->script = script;
    p->lfd = tu_tcp_listen(4, &p->port);
    pthread_create(&p->th, NULL, peer_main, p);
}

static void peer_start_unix(struct peer *p, const char *script)
{
    memset(p, 0, sizeof *p);
    p->script = script;
    snprintf(p->dir, sizeof p->dir, "/tmp/wr-test-http-XXXXXX");
    assert_non_null(mkdtemp(p->dir));
    snprintf(p->sun_path, sizeof p->sun_path, "%s/docker.sock", p->dir);
    p->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un su = {.sun_family = AF_UNIX};
    snprintf(su.sun_path, sizeof su.sun_path, "%s", p->sun_path);
    bind(p->lfd, (struct sockaddr *)&su, sizeof su);
    listen(p->lfd, 4);
    pthread_create(&p->th, NULL, peer_main, p);
}

static void peer_stop(struct peer *p)
{
    shutdown(p->lfd, SHUT_RDWR);
    pthread_join(p->th, NULL);
    close(p->lfd);
    if (p->sun_path[0]) unlink(p->sun_path);
    if (p->dir[0]) rmdir(p->dir);
}

/* ---- running one call ---------------------------------------------------- */

struct outcome {
    int done;
    int err;
    int status;
    char body[1024];
    char streamed[1024];
    char api_version[16];
    char cause[160];
    int cancel_on_head;
    struct http_call *call;
};

static void on_head(void *ud, int status, const char *(*get)(void *, const char *), void *ctx)
{
    struct outcome *o = ud;
    (void)status;
    const char *v = get(ctx, "api-version");
    if (v) snprintf(o->api_version, sizeof o->api_version, "%s", v);
    if (o->cancel_on_head) http_call_cancel(o->call);
}

static void on_body_stream(void *ud, const char *data, size_t len)
{
    struct outcome *o = ud;
    strncat(o->streamed, data, len < sizeof o->streamed - strlen(o->streamed) - 1 ? len : 0);
}

static void on_done(void *ud, int err, int status, const char *body, size_t len)
{
    struct outcome *o = ud;
    o->done++;
    o->err = err;
    o->status = status;
    snprintf(o->body, sizeof o->body, "%.*s", (int)len, body);
}

static struct outcome run_call(const struct http_endpoint *ep, uint64_t timeout_ms, bool stream,
                               int cancel_on_head)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct logger lg;
    logger_init(&lg, LOG_ERROR, LOG_FORMAT_JSON, 2);
    struct dns *dns = dns_new(&loop, &lg);
    struct http_client *c = http_client_new(&loop, dns, &lg);
    struct outcome o;
    memset(&o, 0, sizeof o);
    o.cancel_on_head = cancel_on_head;
    struct http_client_opts opts = {
        .method = "POST", .host_header = "peer", .path = "/p?q=1", .headers = "X-A: b\r\n",
        .body = "{}", .body_len = 2, .connect_timeout_ms = 2000, .response_timeout_ms = timeout_ms,
        .on_head = on_head, .on_body = stream ? on_body_stream : NULL, .max_body = 512,
        .on_done = on_done, .ud = &o, .errbuf = o.cause, .errbuf_len = sizeof o.cause,
    };
    o.call = http_client_request(c, ep, &opts);
    assert_int_equal(o.done, 0);   /* never called back from inside the request */
    /* Run until the call ended (or was cancelled), then close everything. */
    for (int i = 0; i < 400 && !o.done && !(cancel_on_head && o.api_version[0]); i++)
        uv_run(&loop, UV_RUN_ONCE);
    http_client_close(c, NULL, NULL);
    dns_close(dns, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    return o;
}

static struct outcome call_script(const char *script, uint64_t timeout_ms, bool stream)
{
    struct peer p;
    peer_start_tcp(&p, script);
    struct http_endpoint ep = {.host = "127.0.0.1", .port = (uint16_t)p.port};
    struct outcome o = run_call(&ep, timeout_ms, stream, 0);
    peer_stop(&p);
    if (strstr(script, "HTTP")) {
        assert_non_null(strstr(p.request, "POST /p?q=1 HTTP/1.1\r\nHost: peer\r\nX-A: b\r\n"));
        assert_non_null(strstr(p.request, "Content-Length: 2\r\n"));
    }
    return o;
}

static void test_content_length(void **s)
{
    (void)s;
    struct outcome o = call_script("HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: 5\r\n\r\nhe|llo", 2000, false);
    assert_int_equal(o.done, 1);
    assert_int_equal(o.err, 0);
    assert_int_equal(o.status, 200);
    assert_string_equal(o.body, "hello");
    assert_string_equal(o.api_version, "1.41");
}

/* Headers in one buffer: names and values cut across reads, an empty
 * value, and 70 headers before the one asked for (past the 64 kept, so it
 * is not found, and nothing breaks). */
static void test_headers_across_reads(void **s)
{
    (void)s;
    struct outcome o = call_script("HTTP/1.1 200 OK\r\nX-Empty:\r\nApi-Ver|sion: 1.|44\r\nX-B|: |\r\n"
                                   "Content-Length: 2\r\n\r\nok",
                                   2000, false);
    assert_int_equal(o.err, 0);
    assert_string_equal(o.api_version, "1.44");
    assert_string_equal(o.body, "ok");
    char script[4096] = "HTTP/1.1 200 OK\r\n";
    for (int i = 0; i < 70; i++) snprintf(script + strlen(script), sizeof script - strlen(script), "X-%d: v\r\n", i);
    strcat(script, "Api-Version: 1.45\r\nContent-Length: 2\r\n\r\nok");
    o = call_script(script, 2000, false);
    assert_int_equal(o.err, 0);
    assert_int_equal(o.status, 200);
    assert_string_equal(o.api_version, "");
}

static void test_chunked_streamed(void **s)
{
    (void)s;
    struct outcome o = call_script("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab|c\r\n|4\r\ndefg\r\n0\r\n\r\n",
                                   2000, true);
    assert_int_equal(o.err, 0);
    assert_string_equal(o.streamed, "abcdefg");
}

static void test_eof_body(void **s)
{
    (void)s;
    struct outcome o = call_script("HTTP/1.1 202 Accepted\r\n\r\nuntil|eof", 2000, false);
    assert_int_equal(o.err, 0);
    assert_int_equal(o.status, 202);
    assert_string_equal(o.body, "untileof");
}

static void test_cut_stream(void **s)
{
    (void)s;
    /* A chunked stream that ends without its last chunk: a cut, not success. */
    struct outcome o = call_script("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", 2000, true);
    assert_int_equal(o.err, -ECONNRESET);
    assert_int_equal(o.status, 200);
}

static void test_garbage_and_big(void **s)
{
    (void)s;
    struct outcome o = call_script("SSH-2.0-OpenSSH\r\n\r\n", 2000, false);
    assert_int_equal(o.err, -EPROTO);
    char big[800];
    snprintf(big, sizeof big, "HTTP/1.1 200 OK\r\nContent-Length: 600\r\n\r\n%0600d", 0);
    o = call_script(big, 2000, false);
    assert_int_equal(o.err, -E2BIG);
}

static void test_timeout(void **s)
{
    (void)s;
    struct outcome o = call_script("", 200, false);
    assert_int_equal(o.err, -ETIMEDOUT);
    assert_int_equal(o.status, 0);
}

static void test_refused_and_unknown(void **s)
{
    (void)s;
    struct http_endpoint ep = {.host = "127.0.0.1", .port = (uint16_t)tu_closed_port()};
    struct outcome o = run_call(&ep, 1000, false, 0);
    assert_int_equal(o.err, -ECONNREFUSED);
    struct http_endpoint unix_ep = {.unix_path = "/tmp/wr-no-such-dir/x.sock"};
    o = run_call(&unix_ep, 1000, false, 0);
    assert_int_equal(o.err, -ENOENT);
    /* Not "unknown host (DNS: no such name)", as http_client_strerror(-ENOENT) says. */
    assert_string_equal(o.cause, "engine socket /tmp/wr-no-such-dir/x.sock missing");
    struct http_endpoint bad = {.host = "no-such-host.invalid", .port = 80};
    o = run_call(&bad, 1000, false, 0);
    assert_int_equal(o.done, 1);
    assert_true(o.err < 0);
    struct http_endpoint tls = {.host = "127.0.0.1", .port = 443, .tls = true};
    o = run_call(&tls, 1000, false, 0);
    assert_int_equal(o.err, -EPROTONOSUPPORT);
}

static void test_unix_and_cancel(void **s)
{
    (void)s;
    struct peer p;
    peer_start_unix(&p, "HTTP/1.1 200 OK\r\nApi-Version: 1.45\r\nContent-Length: 2\r\n\r\nok");
    struct http_endpoint ep = {.unix_path = p.sun_path};
    struct outcome o = run_call(&ep, 2000, false, 0);
    peer_stop(&p);
    assert_int_equal(o.err, 0);
    assert_string_equal(o.body, "ok");
    /* Cancelled from inside its own callback: on_done never comes. */
    peer_start_unix(&p, "HTTP/1.1 200 OK\r\nApi-Version: 1.45\r\nContent-Length: 2\r\n\r\nok");
    o = run_call(&ep, 2000, false, 1);
    peer_stop(&p);
    assert_int_equal(o.done, 0);
}

static void test_localhost_resolves(void **s)
{
    (void)s;
    struct peer p;
    peer_start_tcp(&p, "HTTP/1.1 204 No Content\r\n\r\n");
    struct http_endpoint ep = {.host = "localhost", .port = (uint16_t)p.port};
    struct outcome o = run_call(&ep, 2000, false, 0);
    peer_stop(&p);
    assert_int_equal(o.err, 0);
    assert_int_equal(o.status, 204);
}

static void test_forward_body(void **s)
{
    (void)s;
    struct push_event ev = {.repository = "team/\"x\"", .tag = "v1", .digest = NULL, .registry = "r:5000",
                            .id = "e\n1"};
    struct buf b;
    buf_init(&b);
    forward_build_body(&b, &ev);
    assert_string_equal(buf_cstr(&b), "{\"repository\":\"team/\\\"x\\\"\",\"tag\":\"v1\",\"digest\":null,"
                                      "\"registry\":\"r:5000\",\"event_id\":\"e\\n1\"}");
    buf_free(&b);
}

/* ---- pooled connections (issue 11, item 1) and interim answers (item 4) ---- */

/* A keep-alive peer driven step by step from the test: each step runs in
 * the peer's thread when the test posts it, so the test decides exactly
 * what the client's socket holds before the loop runs again. */
struct kpeer {
    int lfd, port;
    int fds[4];
    int nfds;
    int go[2];                  /* the test writes a step number here */
    volatile int got_requests;
    pthread_t th;
    void (*step)(struct kpeer *p, int n);
};

static void kpeer_read_request(struct kpeer *p, int fd)
{
    char buf[4096];
    size_t n = 0;
    while (n + 1 < sizeof buf) {
        ssize_t got = recv(fd, buf + n, sizeof buf - n - 1, 0);
        if (got <= 0) break;
        n += (size_t)got;
        buf[n] = '\0';
        if (strstr(buf, "\r\n\r\n")) break;
    }
    p->got_requests++;
}

static int kpeer_accept(struct kpeer *p)
{
    int fd = accept(p->lfd, NULL, NULL);
    p->fds[p->nfds++] = fd;
    return fd;
}

static void *kpeer_main(void *arg)
{
    struct kpeer *p = arg;
    int n;
    while (read(p->go[0], &n, sizeof n) == sizeof n && n >= 0) p->step(p, n);
    for (int i = 0; i < p->nfds; i++) close(p->fds[i]);
    return NULL;
}

static void kpeer_start(struct kpeer *p, void (*step)(struct kpeer *, int))
{
    memset(p, 0, sizeof *p);
    p->step = step;
    p->lfd = tu_tcp_listen(4, &p->port);
    assert_int_equal(pipe(p->go), 0);
    pthread_create(&p->th, NULL, kpeer_main, p);
}

static void kpeer_post(struct kpeer *p, int n)
{
    assert_int_equal(write(p->go[1], &n, sizeof n), (ssize_t)sizeof n);
}

static void kpeer_stop(struct kpeer *p)
{
    kpeer_post(p, -1);
    pthread_join(p->th, NULL);
    close(p->go[0]);
    close(p->go[1]);
    close(p->lfd);
}

static void send_str(int fd, const char *s)
{
    send(fd, s, strlen(s), MSG_NOSIGNAL);
}

struct pool_fx {
    uv_loop_t loop;
    struct logger lg;
    struct dns *dns;
    struct http_client *c;
};

static void pool_fx_start(struct pool_fx *x)
{
    uv_loop_init(&x->loop);
    logger_init(&x->lg, LOG_ERROR, LOG_FORMAT_JSON, 2);
    x->dns = dns_new(&x->loop, &x->lg);
    x->c = http_client_new(&x->loop, x->dns, &x->lg);
}

static void pool_fx_finish(struct pool_fx *x)
{
    http_client_close(x->c, NULL, NULL);
    dns_close(x->dns, NULL, NULL);
    uv_run(&x->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&x->loop), 0);
}

static void pool_get(struct pool_fx *x, int port, struct outcome *o,
                     void (*done)(void *, int, int, const char *, size_t))
{
    struct http_endpoint ep = {.host = "127.0.0.1", .port = (uint16_t)port};
    struct http_client_opts opts = {
        .method = "GET", .host_header = "peer", .path = "/", .total_timeout_ms = 3000,
        .keep_alive = true, .on_done = done ? done : on_done, .ud = o,
    };
    o->call = http_client_request(x->c, &ep, &opts);
}

static void run_until_done(struct pool_fx *x, const struct outcome *o)
{
    for (int i = 0; i < 500 && !o->done; i++) uv_run(&x->loop, UV_RUN_ONCE);
    assert_int_equal(o->done, 1);
}

/* Y: conn 1 answers keep-alive, then (step 1) closes, or (step 2) sends a
 * 408 the way a server timing out an idle connection does; conn 2 answers "ok". */
static void y_step(struct kpeer *p, int n)
{
    if (n == 0) {
        int fd = kpeer_accept(p);
        kpeer_read_request(p, fd);
        send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    } else if (n == 1) {
        shutdown(p->fds[0], SHUT_RDWR);
    } else if (n == 2) {
        send_str(p->fds[0], "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        shutdown(p->fds[0], SHUT_RDWR);
    } else if (n == 3) {
        int fd = kpeer_accept(p);
        kpeer_read_request(p, fd);
        send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    }
}

/* X: answers one request when told (step 1). */
static void x_step(struct kpeer *p, int n)
{
    if (n == 0) {
        int fd = kpeer_accept(p);
        kpeer_read_request(p, fd);
    } else if (n == 1) {
        send_str(p->fds[0], "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    }
}

static struct pool_fx *g_pool;      /* for the callback below: the test's own fixture */
static struct outcome g_second;
static int g_y_port;

static void on_x_done_start_y(void *ud, int err, int status, const char *body, size_t len)
{
    on_done(ud, err, status, body, len);
    pool_get(g_pool, g_y_port, &g_second, NULL);
}

/* R: one kept-alive connection; each step answers the next request on it:
 * a header and a body, then neither, then a body past what a kept call's
 * buffer may keep, then a short one again. */
static void r_step(struct kpeer *p, int n)
{
    int fd = n == 0 ? kpeer_accept(p) : p->fds[0];
    kpeer_read_request(p, fd);
    if (n == 0) send_str(fd, "HTTP/1.1 200 OK\r\nApi-Version: 1.44\r\nContent-Length: 5\r\n\r\nhello");
    else if (n == 1) send_str(fd, "HTTP/1.1 204 No Content\r\n\r\n");
    else if (n == 2) {
        char big[6100];
        int h = snprintf(big, sizeof big, "HTTP/1.1 200 OK\r\nContent-Length: 6000\r\n\r\n");
        memset(big + h, 'x', 6000);
        send(fd, big, (size_t)h + 6000, MSG_NOSIGNAL);
    } else if (n == 3) send_str(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
}

/* Calls are kept for reuse once freed (buffers too): nothing of one call's
 * answer shows in the next one's. */
static void test_calls_reused_clean(void **s)
{
    (void)s;
    struct kpeer r;
    kpeer_start(&r, r_step);
    struct pool_fx x;
    pool_fx_start(&x);
    struct http_endpoint ep = {.host = "127.0.0.1", .port = (uint16_t)r.port};
    const int want_status[] = {200, 204, 200, 200};
    const char *const want_body[] = {"hello", "", NULL, "ok"};
    for (int i = 0; i < 4; i++) {
        struct outcome o;
        memset(&o, 0, sizeof o);
        struct http_client_opts opts = {.method = "GET", .host_header = "peer", .path = "/", .total_timeout_ms = 3000,
                                        .keep_alive = true, .max_body = 8192, .on_head = on_head,
                                        .on_done = on_done, .ud = &o};
        kpeer_post(&r, i);
        o.call = http_client_request(x.c, &ep, &opts);
        run_until_done(&x, &o);
        /* The call is freed on a later turn (its timer's close): let it go. */
        for (int k = 0; k < 3; k++) uv_run(&x.loop, UV_RUN_NOWAIT);
        assert_int_equal(o.err, 0);
        assert_int_equal(o.status, want_status[i]);
        assert_string_equal(o.api_version, i == 0 ? "1.44" : "");
        if (want_body[i]) assert_string_equal(o.body, want_body[i]);
        else assert_int_equal(strspn(o.body, "x"), sizeof o.body - 1);   /* on_done keeps the first 1023 */
    }
    assert_int_equal(r.got_requests, 4);
    pool_fx_finish(&x);
    kpeer_stop(&r);
}

/* Item 1: the server's FIN on an idle pooled connection is read in the same
 * loop turn in which a new request takes that connection. The request must
 * go out on a fresh connection and get its answer. */
static void test_pooled_conn_closed_same_turn(void **s)
{
    (void)s;
    struct kpeer y, xp;
    kpeer_start(&y, y_step);
    kpeer_start(&xp, x_step);
    struct pool_fx x;
    pool_fx_start(&x);
    g_pool = &x;
    g_y_port = y.port;
    memset(&g_second, 0, sizeof g_second);

    struct outcome first = {0}, other = {0};
    kpeer_post(&y, 0);
    pool_get(&x, y.port, &first, NULL);
    run_until_done(&x, &first);
    assert_int_equal(first.status, 200);   /* y's connection is now idle in the pool */

    /* A request to x whose answer starts the second request to y. */
    kpeer_post(&xp, 0);
    struct http_endpoint xep = {.host = "127.0.0.1", .port = (uint16_t)xp.port};
    struct http_client_opts xo = {.method = "GET", .host_header = "x", .path = "/", .total_timeout_ms = 3000,
                                  .on_done = on_x_done_start_y, .ud = &other};
    http_client_request(x.c, &xep, &xo);
    for (int i = 0; i < 200 && xp.got_requests == 0; i++) {
        uv_run(&x.loop, UV_RUN_NOWAIT);
        usleep(5000);
    }
    assert_int_equal(xp.got_requests, 1);
    /* x answers, then y closes its idle connection; with the loop stopped
     * both are waiting when it next polls, x's first. */
    kpeer_post(&xp, 1);
    usleep(50000);
    kpeer_post(&y, 1);
    kpeer_post(&y, 3);
    usleep(100000);
    for (int i = 0; i < 500 && !g_second.done; i++) uv_run(&x.loop, UV_RUN_ONCE);
    assert_int_equal(other.done, 1);
    assert_int_equal(g_second.done, 1);
    assert_int_equal(g_second.err, 0);
    assert_int_equal(g_second.status, 200);
    assert_string_equal(g_second.body, "ok");
    pool_fx_finish(&x);
    kpeer_stop(&y);
    kpeer_stop(&xp);
}

/* Item 1, variant: bytes the server sent on the idle connection (a 408)
 * are not the answer to a request sent after them. */
static void test_pooled_conn_stale_408(void **s)
{
    (void)s;
    struct kpeer y;
    kpeer_start(&y, y_step);
    struct pool_fx x;
    pool_fx_start(&x);
    struct outcome first = {0}, second = {0};
    kpeer_post(&y, 0);
    pool_get(&x, y.port, &first, NULL);
    run_until_done(&x, &first);
    kpeer_post(&y, 2);   /* 408 and close, while the loop does not run */
    kpeer_post(&y, 3);
    usleep(100000);
    pool_get(&x, y.port, &second, NULL);
    run_until_done(&x, &second);
    assert_int_equal(second.err, 0);
    assert_int_equal(second.status, 200);
    assert_string_equal(second.body, "ok");
    assert_int_equal(http_client_connections_opened(x.c), 2);
    pool_fx_finish(&x);
    kpeer_stop(&y);
}

/* Item 4: 100 Continue and 103 Early Hints come before the answer. */
static void test_interim_answers_skipped(void **s)
{
    (void)s;
    struct outcome o = call_script("HTTP/1.1 100 Continue\r\n\r\n|HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
                                   "|HTTP/1.1 201 Created\r\nApi-Version: 1.47\r\nContent-Length: 2\r\n\r\nok",
                                   2000, false);
    assert_int_equal(o.err, 0);
    assert_int_equal(o.status, 201);
    assert_string_equal(o.body, "ok");
    assert_string_equal(o.api_version, "1.47");
}

/* A call to a peer that accepts and never answers, with opts's deadlines:
 * it must time out after at least min_ms (and well before 3 * min_ms),
 * saying cause. */
static void expect_timeout(struct http_client_opts opts, uint64_t min_ms, const char *cause_want)
{
    struct peer p;
    peer_start_tcp(&p, "");
    struct pool_fx x;
    pool_fx_start(&x);
    struct outcome o = {0};
    char cause[128] = "";
    struct http_endpoint ep = {.host = "127.0.0.1", .port = (uint16_t)p.port};
    opts.on_done = on_done;
    opts.ud = &o;
    opts.errbuf = cause;
    opts.errbuf_len = sizeof cause;
    uint64_t t0 = uv_now(&x.loop);
    http_client_request(x.c, &ep, &opts);
    run_until_done(&x, &o);
    uint64_t took = uv_now(&x.loop) - t0;
    assert_int_equal(o.err, -ETIMEDOUT);
    assert_true(took + 10 >= min_ms && took < 3 * min_ms + 300);
    assert_string_equal(cause, cause_want);
    pool_fx_finish(&x);
    peer_stop(&p);
}

/* The head deadline ends a call that has no response deadline (the
 * /events stream). */
static void test_head_deadline(void **s)
{
    (void)s;
    expect_timeout((struct http_client_opts){.method = "GET", .host_header = "d", .path = "/events",
                                             .head_timeout_ms = 200, .on_body = on_body_stream,
                                             .tcp_keepalive_secs = 30},
                   200, "no response head within 200 ms");
}

/* The timer is armed for the connect deadline (100 ms) and, once connected,
 * left running although the answer may take 500 ms: when it fires early it
 * must arm again for the rest, not time the call out. */
static void test_later_deadline_waits_for_the_rest(void **s)
{
    (void)s;
    expect_timeout((struct http_client_opts){.method = "POST", .host_header = "d", .path = "/hook", .body = "{}",
                                             .body_len = 2, .connect_timeout_ms = 100,
                                             .response_timeout_ms = 500},
                   500, "no complete answer within 500 ms");
}

/* A response to HEAD has no body, whatever its Content-Length says (issue
 * 13: the registry's HEAD /v2/<name>/manifests/<tag>). The peer keeps the
 * connection open after the head: waiting for 1234 body bytes would be
 * a timeout, and the connection must go back to the pool. */
static void test_head_has_no_body(void **s)
{
    (void)s;
    struct peer p;
    peer_start_tcp(&p, "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nDocker-Content-Digest: sha256:ab\r\n\r\n|");
    struct pool_fx x;
    pool_fx_start(&x);
    struct outcome o = {0};
    struct http_endpoint ep = {.host = "127.0.0.1", .port = (uint16_t)p.port};
    struct http_client_opts opts = {
        .method = "HEAD", .host_header = "r", .path = "/v2/a/manifests/b", .total_timeout_ms = 600,
        .keep_alive = true, .on_done = on_done, .ud = &o,
    };
    http_client_request(x.c, &ep, &opts);
    run_until_done(&x, &o);
    assert_int_equal(o.err, 0);
    assert_int_equal(o.status, 200);
    assert_string_equal(o.body, "");
    assert_non_null(strstr(p.request, "HEAD /v2/a/manifests/b HTTP/1.1\r\n"));
    pool_fx_finish(&x);
    peer_stop(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_length),   cmocka_unit_test(test_chunked_streamed),
        cmocka_unit_test(test_eof_body),         cmocka_unit_test(test_cut_stream),
        cmocka_unit_test(test_garbage_and_big),  cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_refused_and_unknown), cmocka_unit_test(test_unix_and_cancel),
        cmocka_unit_test(test_localhost_resolves),
        cmocka_unit_test(test_forward_body),
        cmocka_unit_test(test_calls_reused_clean), cmocka_unit_test(test_pooled_conn_closed_same_turn),
        cmocka_unit_test(test_pooled_conn_stale_408),
        cmocka_unit_test(test_headers_across_reads),
        cmocka_unit_test(test_interim_answers_skipped),
        cmocka_unit_test(test_head_deadline),
        cmocka_unit_test(test_later_deadline_waits_for_the_rest),
        cmocka_unit_test(test_head_has_no_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
