/* The listener's protocol layer against real loopback sockets: keep-alive,
 * pipelining, chunked bodies, 100-continue, limits, timeouts, the cap,
 * backpressure, stop and close.
 *
 * The server runs on the test's loop in the main thread; each scenario's
 * client runs in a thread with blocking sockets (bounded by SO_RCVTIMEO).
 * When the client needs the server side to act (stop, close, report its
 * counters) it asks the loop through an async handle and waits for it. */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "http_server.h"
#include "json.h"

#define BIG_BODY 4096   /* reply size for /big/... */

struct run {
    uv_loop_t loop;
    uv_async_t done;
    uv_async_t ctl;
    sem_t ctl_sem;
    void (*ctl_fn)(struct run *r);   /* run on the loop thread, then ctl_sem is posted */
    struct http_server *srv;
    bool srv_closed;                 /* http_server_close already called */
    int closed_cbs;                  /* times the close callback ran */
    int port;
    void (*client)(struct run *r);
    /* Loop-thread state, read by the client only through a ctl function. */
    size_t handled;
    size_t snap_handled, snap_conns, snap_buffered;
    size_t heads;                    /* head_handler calls */
    char head_seen[256];             /* what the last one saw */
    char failure[256];               /* set by the client thread; checked on the main thread */
};

/* Echoes the request as JSON. /missing is 404; /big/... is padded to
 * BIG_BODY bytes so a few requests ask for a lot of reply. */
static void echo(void *ud, const struct http_request *req, struct http_response *res)
{
    struct run *r = ud;
    r->handled++;
    res->status = strcmp(req->path, "/missing") == 0 ? 404 : 200;
    int first = 1;
    buf_putc(&res->body, '{');
    json_put_key(&res->body, "method", &first);
    json_put_str(&res->body, req->method);
    json_put_key(&res->body, "path", &first);
    json_put_str(&res->body, req->path);
    json_put_key(&res->body, "query", &first);
    json_put_str(&res->body, req->query);
    json_put_key(&res->body, "len", &first);
    buf_printf(&res->body, "%zu", req->body_len);
    json_put_key(&res->body, "body", &first);
    json_put_strn(&res->body, req->body, req->body_len);
    json_put_key(&res->body, "x", &first);
    json_put_str(&res->body, http_request_header(req, "X-Test"));
    json_put_key(&res->body, "empty", &first);
    json_put_str(&res->body, http_request_header(req, "x-empty"));
    json_put_key(&res->body, "peer", &first);
    json_put_str(&res->body, req->peer);
    if (strncmp(req->path, "/big/", 5) == 0) {
        json_put_key(&res->body, "pad", &first);
        buf_putc(&res->body, '"');
        while (res->body.len < BIG_BODY - 2) buf_putc(&res->body, 'p');
        buf_putc(&res->body, '"');
    }
    buf_putc(&res->body, '}');
    buf_puts(&res->headers, "X-Echo: 1\r\n");
}

/* The head stage: POST /locked needs "X-Token: ok"; everything else goes on
 * to echo. Records what it saw, which must be everything but a body. */
static void lock_head(void *ud, const struct http_request *req, struct http_response *res)
{
    struct run *r = ud;
    r->heads++;
    snprintf(r->head_seen, sizeof r->head_seen, "%s %s ?%s len=%zu body=[%s] x=%s peer=%s", req->method,
             req->path, req->query, req->body_len, req->body, http_request_header(req, "x-test"),
             strncmp(req->peer, "127.0.0.1:", 10) == 0 ? "ok" : req->peer);
    if (strcmp(req->path, "/locked") != 0) return;
    const char *tok = http_request_header(req, "x-token");
    if (tok && strcmp(tok, "ok") == 0) return;
    http_response_error(res, 401, "no entry");
    buf_puts(&res->headers, "WWW-Authenticate: Bearer\r\n");
}

static void on_closed(void *ud)
{
    struct run *r = ud;
    r->closed_cbs++;
}

static void on_done(uv_async_t *a)
{
    struct run *r = a->data;
    if (!r->srv_closed) http_server_close(r->srv, on_closed, r);
    r->srv_closed = true;
    uv_close((uv_handle_t *)&r->done, NULL);
    uv_close((uv_handle_t *)&r->ctl, NULL);
}

static void on_ctl(uv_async_t *a)
{
    struct run *r = a->data;
    r->ctl_fn(r);
    sem_post(&r->ctl_sem);
}

static void *client_main(void *arg)
{
    struct run *r = arg;
    r->client(r);
    uv_async_send(&r->done);
    return NULL;
}

static struct http_server_opts default_opts(void)
{
    static struct logger lg;
    logger_init(&lg, LOG_ERROR, LOG_FORMAT_JSON, 2);
    return (struct http_server_opts){
        .addr = "127.0.0.1", .port = 0, .max_header_bytes = 4096, .max_body_bytes = 1024,
        .request_timeout_ms = 2000, .idle_timeout_ms = 2000, .max_connections = 16,
        .handler = echo, .ud = NULL, .log = &lg,
    };
}

static void run_scenario(struct http_server_opts opts, void (*client)(struct run *r))
{
    struct run *r = calloc(1, sizeof *r);   /* heap: the stack frame is not shared with threads */
    assert_non_null(r);
    uv_loop_init(&r->loop);
    uv_async_init(&r->loop, &r->done, on_done);
    uv_async_init(&r->loop, &r->ctl, on_ctl);
    sem_init(&r->ctl_sem, 0, 0);
    r->done.data = r;
    r->ctl.data = r;
    r->client = client;
    opts.ud = r;
    r->srv = http_server_new(&r->loop, &opts);
    int rc = http_server_listen(r->srv);
    if (rc == -EAFNOSUPPORT || rc == -EADDRNOTAVAIL) {
        /* e.g. "::" on a host without IPv6: nothing to test here. */
        http_server_close(r->srv, NULL, NULL);
        uv_close((uv_handle_t *)&r->done, NULL);
        uv_close((uv_handle_t *)&r->ctl, NULL);
        uv_run(&r->loop, UV_RUN_DEFAULT);
        uv_loop_close(&r->loop);
        sem_destroy(&r->ctl_sem);
        free(r);
        skip();
    }
    assert_int_equal(rc, 0);
    r->port = http_server_port(r->srv);
    assert_true(r->port > 0);
    pthread_t th;
    pthread_create(&th, NULL, client_main, r);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    pthread_join(th, NULL);
    int closed = uv_loop_close(&r->loop);   /* 0: every handle closed */
    int cbs = r->closed_cbs;
    char failure[sizeof r->failure];
    memcpy(failure, r->failure, sizeof failure);
    sem_destroy(&r->ctl_sem);
    free(r);
    assert_int_equal(closed, 0);
    assert_int_equal(cbs, 1);
    if (failure[0]) fail_msg("%s", failure);
}

/* ---- client helpers (thread side) ---------------------------------------- */

static void on_loop(struct run *r, void (*fn)(struct run *r))
{
    r->ctl_fn = fn;
    uv_async_send(&r->ctl);
    while (sem_wait(&r->ctl_sem) < 0 && errno == EINTR) {
    }
}

static void ctl_snapshot(struct run *r)
{
    r->snap_handled = r->handled;
    r->snap_conns = http_server_connections(r->srv);
    r->snap_buffered = http_server_buffered(r->srv);
}

static void ctl_stop(struct run *r)
{
    http_server_stop(r->srv);
}

static void ctl_close(struct run *r)
{
    http_server_close(r->srv, on_closed, r);
    r->srv_closed = true;
}

static int dial_opt(struct run *r, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)r->port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (rcvbuf) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int dial(struct run *r)
{
    return dial_opt(r, 0);
}

static void send_all(int fd, const char *s)
{
    size_t n = strlen(s);
    while (n) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w <= 0) return;
        s += w;
        n -= (size_t)w;
    }
}

/* Reads until `until` appears (NULL: until the peer closes) or the timeout. */
static size_t read_until(int fd, char *out, size_t cap, const char *until)
{
    size_t n = 0;
    out[0] = '\0';
    while (n + 1 < cap) {
        ssize_t got = recv(fd, out + n, cap - n - 1, 0);
        if (got <= 0) break;
        n += (size_t)got;
        out[n] = '\0';
        if (until && strstr(out, until)) break;
    }
    return n;
}

/* 1 when the peer has closed (EOF or reset) within the receive timeout. */
static int peer_closed(int fd)
{
    char c;
    ssize_t got = recv(fd, &c, 1, 0);
    return got == 0 || (got < 0 && errno == ECONNRESET);
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

static void reset_close(int fd)
{
    struct linger l = {1, 0};   /* RST instead of FIN */
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(fd);
}

#define CHECK(r, cond)                                                                  \
    do {                                                                                \
        if (!(cond) && !(r)->failure[0])                                                \
            snprintf((r)->failure, sizeof (r)->failure, "line %d: %s", __LINE__, #cond); \
    } while (0)

/* ---- scenarios ------------------------------------------------------------- */

static void c_simple(struct run *r)
{
    char buf[8192];
    int fd = dial(r);
    send_all(fd, "GET /hello?a=b&c HTTP/1.1\r\nHost: t\r\nx-test: lower\r\nX-Empty:\r\nX-After: 1\r\n\r\n");
    read_until(fd, buf, sizeof buf, "}");
    CHECK(r, strncmp(buf, "HTTP/1.1 200 OK\r\n", 17) == 0);
    CHECK(r, strstr(buf, "\r\nContent-Type: application/json\r\n"));
    CHECK(r, strstr(buf, "\r\nConnection: keep-alive\r\n"));
    CHECK(r, strstr(buf, "\r\nX-Echo: 1\r\n"));
    CHECK(r, strstr(buf, "{\"method\":\"GET\",\"path\":\"/hello\",\"query\":\"a=b&c\",\"len\":0,"));
    CHECK(r, strstr(buf, "\"x\":\"lower\",\"empty\":\"\",\"peer\":\"127.0.0.1:"));
    /* Content-Length is the exact body size. */
    const char *cl = strstr(buf, "Content-Length: "), *body = strstr(buf, "\r\n\r\n");
    CHECK(r, cl && body && (size_t)atoi(cl + 16) == strlen(body + 4));

    /* Keep-alive: a POST with a body on the same connection. */
    send_all(fd, "POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world");
    read_until(fd, buf, sizeof buf, "}");
    CHECK(r, strstr(buf, "\"method\":\"POST\",\"path\":\"/p\",\"query\":\"\",\"len\":11,\"body\":\"hello world\""));

    /* HEAD: headers (with the length the body would have) but no body. */
    send_all(fd, "HEAD /h HTTP/1.1\r\nHost: t\r\n\r\n");
    read_until(fd, buf, sizeof buf, "\r\n\r\n");
    CHECK(r, strstr(buf, "HTTP/1.1 200 OK") && strstr(buf, "Content-Length: "));
    send_all(fd, "GET /after-head HTTP/1.1\r\nHost: t\r\n\r\n");
    read_until(fd, buf, sizeof buf, "}");
    CHECK(r, strncmp(buf, "HTTP/1.1 200 OK", 15) == 0 && strstr(buf, "\"path\":\"/after-head\""));
    close(fd);

    /* HTTP/1.0 closes by default, keeps the connection only when asked. */
    fd = dial(r);
    send_all(fd, "GET /old HTTP/1.0\r\n\r\n");
    read_until(fd, buf, sizeof buf, NULL);
    CHECK(r, strstr(buf, "HTTP/1.1 200 OK") && strstr(buf, "Connection: close\r\n"));
    close(fd);
    fd = dial(r);
    send_all(fd, "GET /old1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    read_until(fd, buf, sizeof buf, "}");
    CHECK(r, strstr(buf, "Connection: keep-alive\r\n") && strstr(buf, "\"path\":\"/old1\""));
    send_all(fd, "GET /old2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    read_until(fd, buf, sizeof buf, "}");
    CHECK(r, strstr(buf, "\"path\":\"/old2\""));
    close(fd);

    /* An Upgrade request gets its reply, then the connection ends: no
     * protocol switch and no second (error) reply. */
    fd = dial(r);
    send_all(fd, "GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
    read_until(fd, buf, sizeof buf, NULL);
    CHECK(r, count(buf, "HTTP/1.1 ") == 1 && strstr(buf, "HTTP/1.1 200 OK") && strstr(buf, "Connection: close"));
    close(fd);
}

static void c_keepalive_pipelining(struct run *r)
{
    char buf[8192];
    int fd = dial(r);
    send_all(fd, "GET /a?x=1 HTTP/1.1\r\nHost: t\r\nX-Test:  spaced  \r\n\r\n");
    read_until(fd, buf, sizeof buf, "}");
    CHECK(r, strstr(buf, "HTTP/1.1 200 OK"));
    CHECK(r, strstr(buf, "\"query\":\"x=1\""));
    CHECK(r, strstr(buf, "\"x\":\"spaced\""));
    /* Same connection, three pipelined requests in one write. */
    send_all(fd, "GET /1 HTTP/1.1\r\nHost: t\r\n\r\nGET /missing HTTP/1.1\r\nHost: t\r\n\r\n"
                 "POST /3 HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
    read_until(fd, buf, sizeof buf, NULL);
    const char *a = strstr(buf, "\"path\":\"/1\""), *b = strstr(buf, "404 Not Found"),
               *c = strstr(buf, "\"body\":\"hello\"");
    CHECK(r, a && b && c && a < b && b < c);
    CHECK(r, count(buf, "HTTP/1.1 ") == 3);
    CHECK(r, count(buf, "Connection: keep-alive") == 2 && count(buf, "Connection: close") == 1);
    close(fd);
}

static void c_chunked_continue(struct run *r)
{
    char buf[4096];
    int fd = dial(r);
    send_all(fd, "POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n");
    read_until(fd, buf, sizeof buf, "\r\n\r\n");
    CHECK(r, strcmp(buf, "HTTP/1.1 100 Continue\r\n\r\n") == 0);
    send_all(fd, "3\r\nabc\r\n");
    usleep(20000);
    /* A trailer is accepted but is not a request header. */
    send_all(fd, "4;ext=1\r\ndefg\r\n0\r\nX-Test: trailer\r\n\r\n");
    read_until(fd, buf, sizeof buf, "}");
    CHECK(r, strncmp(buf, "HTTP/1.1 200 OK", 15) == 0);
    CHECK(r, strstr(buf, "\"len\":7,\"body\":\"abcdefg\",\"x\":null"));
    /* 100-continue with a Content-Length body, on the same connection. */
    send_all(fd, "PUT /d HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
    read_until(fd, buf, sizeof buf, "\r\n\r\n");
    CHECK(r, strcmp(buf, "HTTP/1.1 100 Continue\r\n\r\n") == 0);
    send_all(fd, "xyz");
    read_until(fd, buf, sizeof buf, "}");
    CHECK(r, strstr(buf, "HTTP/1.1 200 OK") && strstr(buf, "\"body\":\"xyz\""));
    close(fd);
}

static void c_limits(struct run *r)
{
    char buf[4096];
    /* Declared too large: refused at once, before any body is sent. */
    int fd = dial(r);
    send_all(fd, "POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n");
    read_until(fd, buf, sizeof buf, NULL);
    CHECK(r, strstr(buf, "HTTP/1.1 413 ") && !strstr(buf, "100 Continue"));
    CHECK(r, strstr(buf, "Content-Type: application/json") && strstr(buf, "Connection: close"));
    CHECK(r, strstr(buf, "{\"error\":\"request body too large\"}"));
    close(fd);
    /* A chunked body that grows past the limit. */
    fd = dial(r);
    send_all(fd, "POST /big HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    char msg[700];
    memcpy(msg, "258\r\n", 5);          /* 0x258 = 600 bytes of data follow */
    memset(msg + 5, 'a', 600);
    memcpy(msg + 605, "\r\n", 3);      /* with its NUL */
    send_all(fd, msg);
    send_all(fd, msg);                  /* 1200 > 1024 */
    read_until(fd, buf, sizeof buf, NULL);
    CHECK(r, strstr(buf, "HTTP/1.1 413 "));
    close(fd);
    /* Headers too large: one big one... */
    fd = dial(r);
    send_all(fd, "GET / HTTP/1.1\r\nHost: t\r\nX-Big: ");
    char big[5000];
    memset(big, 'b', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    send_all(fd, big);
    send_all(fd, "\r\n\r\n");
    read_until(fd, buf, sizeof buf, NULL);
    CHECK(r, strstr(buf, "HTTP/1.1 431 ") && strstr(buf, "{\"error\":") && strstr(buf, "Connection: close"));
    close(fd);
    /* ...or very many tiny ones (the separators count too). */
    fd = dial(r);
    send_all(fd, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < 1000; i++) send_all(fd, "a:\r\n");
    send_all(fd, "\r\n");
    read_until(fd, buf, sizeof buf, NULL);
    CHECK(r, strstr(buf, "HTTP/1.1 431 "));
    close(fd);
    /* A long URL counts as header bytes. */
    fd = dial(r);
    send_all(fd, "GET /");
    send_all(fd, big);
    send_all(fd, " HTTP/1.1\r\n\r\n");
    read_until(fd, buf, sizeof buf, NULL);
    CHECK(r, strstr(buf, "HTTP/1.1 431 "));
    close(fd);
    /* Garbage, and garbage pipelined after a valid request. */
    fd = dial(r);
    send_all(fd, "\x01\x02garbage\r\n\r\n");
    read_until(fd, buf, sizeof buf, NULL);
    CHECK(r, strstr(buf, "HTTP/1.1 400 ") && strstr(buf, "{\"error\":\"malformed HTTP request: "));
    CHECK(r, strstr(buf, "Content-Type: application/json") && strstr(buf, "Connection: close"));
    close(fd);
    fd = dial(r);
    send_all(fd, "GET /ok HTTP/1.1\r\nHost: t\r\n\r\n\x7f\x7fjunk\r\n\r\n");
    read_until(fd, buf, sizeof buf, NULL);
    CHECK(r, strstr(buf, "HTTP/1.1 200 ") && strstr(buf, "HTTP/1.1 400 "));
    close(fd);
    /* Conflicting framing is malformed, not guessed at. */
    fd = dial(r);
    send_all(fd, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
    read_until(fd, buf, sizeof buf, NULL);
    CHECK(r, strstr(buf, "HTTP/1.1 400 "));
    close(fd);
}

static void c_slowloris(struct run *r)
{
    char buf[4096];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int slow = dial(r);
    const char *req = "GET /slow HTTP/1.1\r\nHost: t\r\nX-A: b\r\n\r\n";
    /* One byte every 40 ms: it would take 1.5 s, the deadline is 300 ms. */
    for (size_t i = 0; i < 8; i++) {
        char one[2] = {req[i], 0};
        send_all(slow, one);
        usleep(40000);
        /* Meanwhile another client is served at once. */
        if (i == 3) {
            int fast = dial(r);
            send_all(fast, "GET /fast HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
            read_until(fast, buf, sizeof buf, NULL);
            CHECK(r, strstr(buf, "\"path\":\"/fast\""));
            close(fast);
        }
    }
    read_until(slow, buf, sizeof buf, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    CHECK(r, strstr(buf, "HTTP/1.1 408 ") && strstr(buf, "Connection: close"));
    CHECK(r, count(buf, "HTTP/1.1 ") == 1);
    CHECK(r, s < 1.5);
    close(slow);
    /* A body that trickles is held to the same deadline. */
    slow = dial(r);
    send_all(slow, "POST /slow HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n");
    for (int i = 0; i < 10; i++) {
        send_all(slow, "x");
        usleep(40000);
    }
    read_until(slow, buf, sizeof buf, NULL);
    CHECK(r, strstr(buf, "HTTP/1.1 408 "));
    close(slow);
    /* An idle keep-alive connection is closed silently after the idle limit,
     * whether it never sent anything or already had a reply. */
    int idle = dial(r);
    ssize_t got = recv(idle, buf, sizeof buf, 0);
    CHECK(r, got == 0);
    close(idle);
    idle = dial(r);
    send_all(idle, "GET /once HTTP/1.1\r\nHost: t\r\n\r\n");
    read_until(idle, buf, sizeof buf, "}");
    CHECK(r, strstr(buf, "\"path\":\"/once\""));
    got = recv(idle, buf, sizeof buf, 0);
    CHECK(r, got == 0);
    close(idle);
}

static void c_cap(struct run *r)
{
    char buf[4096];
    int a = dial(r), b = dial(r);
    usleep(50000);
    int c = dial(r);
    read_until(c, buf, sizeof buf, NULL);
    CHECK(r, strstr(buf, "HTTP/1.1 503 ") && strstr(buf, "{\"error\":\"too many connections\"}"));
    CHECK(r, strstr(buf, "Connection: close"));
    close(c);
    /* The two admitted ones still work. */
    send_all(b, "GET /b HTTP/1.1\r\nHost: t\r\n\r\n");
    read_until(b, buf, sizeof buf, "}");
    CHECK(r, strstr(buf, "\"path\":\"/b\""));
    close(a);
    /* Once the server has seen a (and the refused c) go, there is room again. */
    for (int i = 0; i < 100; i++) {
        on_loop(r, ctl_snapshot);
        if (r->snap_conns < 2) break;
        usleep(20000);
    }
    int d = dial(r);
    send_all(d, "GET /after HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    read_until(d, buf, sizeof buf, NULL);
    CHECK(r, strstr(buf, "HTTP/1.1 200 "));
    close(d);
    close(b);
}

static void c_disconnects(struct run *r)
{
    char buf[4096];
    /* Mid-headers, mid-body, cleanly and with a reset. */
    for (int i = 0; i < 20; i++) {
        int fd = dial(r);
        if (i % 4 < 2) send_all(fd, "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 500\r\n\r\npartial");
        else send_all(fd, "POST /x HTTP/1.1\r\nHo");
        if (i % 2) reset_close(fd);
        else close(fd);
    }
    /* With replies queued and unread: many pipelined requests for large
     * replies, then gone. */
    for (int i = 0; i < 4; i++) {
        int fd = dial_opt(r, 4096);
        struct buf reqs;
        buf_init(&reqs);
        for (int k = 0; k < 600; k++) buf_printf(&reqs, "GET /big/%d HTTP/1.1\r\nHost: t\r\n\r\n", k);
        send_all(fd, reqs.data);
        buf_free(&reqs);
        usleep(50000);
        if (i % 2) reset_close(fd);
        else close(fd);
    }
    /* A client that half-closes after its request still gets the reply. */
    int fd = dial(r);
    send_all(fd, "GET /half HTTP/1.1\r\nHost: t\r\n\r\n");
    shutdown(fd, SHUT_WR);
    read_until(fd, buf, sizeof buf, NULL);
    CHECK(r, strstr(buf, "\"path\":\"/half\""));
    close(fd);

    usleep(300000);   /* let the loop see those closes (lingering ones take longer) */
    fd = dial(r);
    send_all(fd, "GET /alive HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    read_until(fd, buf, sizeof buf, NULL);
    CHECK(r, strstr(buf, "\"path\":\"/alive\""));
    close(fd);
    /* Every connection is gone from the server's books. */
    for (int i = 0; i < 50; i++) {
        on_loop(r, ctl_snapshot);
        if (r->snap_conns == 0) break;
        usleep(50000);
    }
    CHECK(r, r->snap_conns == 0);
}

/* A client pipelining requests for large replies without reading them is
 * paused; once it reads, every reply arrives, in order. */
#define BP_REQUESTS 4000
static void c_backpressure(struct run *r)
{
    int fd = dial_opt(r, 8192);
    struct buf reqs;
    buf_init(&reqs);
    for (int k = 0; k < BP_REQUESTS; k++)
        buf_printf(&reqs, "GET /big/%d HTTP/1.1\r\n%s\r\n", k, k == BP_REQUESTS - 1 ? "Connection: close\r\n" : "");
    send_all(fd, reqs.data);   /* ~100 KB: fits in the socket buffers */
    buf_free(&reqs);
    usleep(300000);
    on_loop(r, ctl_snapshot);
    /* Unpaused, all 4000 (16 MB of replies) would have been handled by now. */
    CHECK(r, r->snap_handled < BP_REQUESTS / 2);

    size_t cap = (size_t)BP_REQUESTS * (BIG_BODY + 512), n = 0;
    char *all = malloc(cap + 1);
    for (;;) {
        ssize_t got = recv(fd, all + n, cap - n, 0);
        if (got <= 0) break;
        n += (size_t)got;
        if (n == cap) break;
    }
    all[n] = '\0';
    close(fd);
    /* Walk the replies one by one (bounded searches: sanitizer-intercepted
     * strstr over 16 MB per reply would take minutes). */
    size_t off = 0;
    int next = 0, ok = 1;
    while (ok && off < n) {
        const char *p = all + off;
        size_t window = n - off < 1024 ? n - off : 1024;
        const char *end = memmem(p, window, "\r\n\r\n", 4);
        const char *cl = memmem(p, window, "Content-Length: ", 16);
        char want[64];
        int wn = snprintf(want, sizeof want, "{\"method\":\"GET\",\"path\":\"/big/%d\"", next);
        ok = end && cl && strncmp(p, "HTTP/1.1 200 OK\r\n", 17) == 0 && (size_t)(end + 4 - all) + (size_t)wn <= n &&
             memcmp(end + 4, want, (size_t)wn) == 0;
        if (ok) {
            off = (size_t)(end + 4 - all) + strtoul(cl + 16, NULL, 10);
            next++;
        }
    }
    CHECK(r, ok && off == n && next == BP_REQUESTS);
    free(all);
}

/* stop: idle connections close, a request in progress is finished with
 * Connection: close, new connections are refused. Then close (after stop). */
static void c_stop(struct run *r)
{
    char buf[4096];
    int idle = dial(r);
    send_all(idle, "GET /idle HTTP/1.1\r\nHost: t\r\n\r\n");
    read_until(idle, buf, sizeof buf, "}");
    CHECK(r, strstr(buf, "\"path\":\"/idle\""));
    int busy = dial(r);
    send_all(busy, "POST /busy HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n12345");
    usleep(50000);
    on_loop(r, ctl_stop);
    CHECK(r, peer_closed(idle));
    send_all(busy, "67890");
    read_until(busy, buf, sizeof buf, NULL);
    CHECK(r, strstr(buf, "HTTP/1.1 200 OK") && strstr(buf, "\"body\":\"1234567890\""));
    CHECK(r, strstr(buf, "Connection: close"));
    CHECK(r, dial(r) < 0);
    close(idle);
    close(busy);
}

static void ctl_pause(struct run *r)
{
    http_server_pause(r->srv, true);
}

static void ctl_resume(struct run *r)
{
    http_server_pause(r->srv, false);
}

/* Paused: nothing is read - not from open connections, not from new ones -
 * but nothing is lost either; resumed, every request is answered. */
static void c_pause(struct run *r)
{
    char buf[4096];
    int a = dial(r);
    send_all(a, "GET /before HTTP/1.1\r\nHost: t\r\n\r\n");
    read_until(a, buf, sizeof buf, "}");
    CHECK(r, strstr(buf, "\"path\":\"/before\""));
    on_loop(r, ctl_pause);
    on_loop(r, ctl_pause);   /* twice is once */
    on_loop(r, ctl_snapshot);
    size_t handled = r->snap_handled;
    send_all(a, "GET /held HTTP/1.1\r\nHost: t\r\n\r\n");
    int b = dial(r);
    CHECK(r, b >= 0);
    send_all(b, "POST /new HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc");
    usleep(200000);
    on_loop(r, ctl_snapshot);
    CHECK(r, r->snap_handled == handled);   /* nothing read meanwhile */
    CHECK(r, r->snap_conns == 2);
    on_loop(r, ctl_resume);
    read_until(a, buf, sizeof buf, "}");
    CHECK(r, strstr(buf, "\"path\":\"/held\""));
    read_until(b, buf, sizeof buf, "}");
    CHECK(r, strstr(buf, "\"path\":\"/new\"") && strstr(buf, "\"body\":\"abc\""));
    close(a);
    close(b);
}

/* close with connections open mid-request: everything is released and the
 * callback runs once (checked by run_scenario). */
static void c_close_busy(struct run *r)
{
    int a = dial(r), b = dial(r), c = dial(r);
    send_all(a, "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc");
    send_all(b, "GET /y HTTP/1.1\r\nHo");
    usleep(50000);
    on_loop(r, ctl_close);
    CHECK(r, peer_closed(a));
    CHECK(r, peer_closed(b));
    CHECK(r, peer_closed(c));
    close(a);
    close(b);
    close(c);
}

static void c_dual_stack(struct run *r)
{
    char buf[4096];
    int fd = dial(r);   /* 127.0.0.1 reaches a "::" listener */
    CHECK(r, fd >= 0);
    send_all(fd, "GET /v4 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    read_until(fd, buf, sizeof buf, NULL);
    CHECK(r, strstr(buf, "\"path\":\"/v4\""));
    close(fd);
}

/* A request refused at its head: the reply comes at once, without 100
 * Continue, with Connection: close; its body is never buffered or handled. */
static void c_head_refusal(struct run *r)
{
    char buf[4096];
    int fd = dial(r);
    send_all(fd, "POST /locked?q=1 HTTP/1.1\r\nHost: t\r\nX-Test: seen\r\nContent-Length: 1000\r\n"
                 "Expect: 100-continue\r\n\r\n");
    read_until(fd, buf, sizeof buf, "}");
    CHECK(r, strncmp(buf, "HTTP/1.1 401 Unauthorized\r\n", 27) == 0);
    CHECK(r, !strstr(buf, "100 Continue"));
    CHECK(r, strstr(buf, "Connection: close\r\n") && strstr(buf, "WWW-Authenticate: Bearer\r\n"));
    CHECK(r, strstr(buf, "{\"error\":\"no entry\"}"));
    /* The client sends its body anyway, and another request: both are
     * discarded, nothing is held, and the connection ends. */
    char body[1001];
    memset(body, 'b', 1000);
    body[1000] = '\0';
    send_all(fd, body);
    send_all(fd, "GET /after HTTP/1.1\r\nHost: t\r\n\r\n");
    usleep(50000);
    on_loop(r, ctl_snapshot);
    CHECK(r, r->snap_handled == 0 && r->snap_buffered == 0);
    CHECK(r, peer_closed(fd));
    close(fd);
    CHECK(r, r->heads == 1);
    CHECK(r, strcmp(r->head_seen, "POST /locked ?q=1 len=0 body=[] x=seen peer=ok") == 0);

    /* Body and head in one write: the same, the body is not buffered. */
    fd = dial(r);
    send_all(fd, "POST /locked HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n");
    send_all(fd, body);
    read_until(fd, buf, sizeof buf, NULL);
    CHECK(r, strncmp(buf, "HTTP/1.1 401 ", 13) == 0 && count(buf, "HTTP/1.1 ") == 1);
    close(fd);

    /* Allowed at the head: 100 Continue, the body, the handler. */
    fd = dial(r);
    send_all(fd, "POST /locked HTTP/1.1\r\nHost: t\r\nX-Token: ok\r\nContent-Length: 3\r\n"
                 "Expect: 100-continue\r\n\r\n");
    read_until(fd, buf, sizeof buf, "\r\n\r\n");
    CHECK(r, strcmp(buf, "HTTP/1.1 100 Continue\r\n\r\n") == 0);
    send_all(fd, "abc");
    read_until(fd, buf, sizeof buf, "}");
    CHECK(r, strstr(buf, "HTTP/1.1 200 OK") && strstr(buf, "\"body\":\"abc\"") && strstr(buf, "keep-alive"));
    /* Other paths are not the hook's business; keep-alive goes on. */
    send_all(fd, "GET /open HTTP/1.1\r\nHost: t\r\n\r\n");
    read_until(fd, buf, sizeof buf, "}");
    CHECK(r, strstr(buf, "HTTP/1.1 200 OK") && strstr(buf, "\"path\":\"/open\""));
    close(fd);
    on_loop(r, ctl_snapshot);
    CHECK(r, r->snap_handled == 2 && r->heads == 4);
}

/* Bodies being received count against one cap for the whole server; past
 * it a request gets 503 and its connection ends; bytes are released when
 * a request is handled or its connection goes. (Cap 2000, bodies <= 1024.) */
static void c_buffer_cap(struct run *r)
{
    char buf[4096], part[901];
    memset(part, 'p', 900);
    part[900] = '\0';
    int a = dial(r), b = dial(r);
    send_all(a, "POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n");
    send_all(a, part);
    send_all(b, "POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n");
    send_all(b, part);
    for (int i = 0; i < 100; i++) {
        on_loop(r, ctl_snapshot);
        if (r->snap_buffered == 1800) break;
        usleep(10000);
    }
    CHECK(r, r->snap_buffered == 1800);
    /* Announced too large for what is left: 503 at once, no 100 Continue. */
    int c = dial(r);
    send_all(c, "POST /c HTTP/1.1\r\nHost: t\r\nContent-Length: 300\r\nExpect: 100-continue\r\n\r\n");
    read_until(c, buf, sizeof buf, NULL);
    CHECK(r, strncmp(buf, "HTTP/1.1 503 ", 13) == 0 && !strstr(buf, "100 Continue"));
    CHECK(r, strstr(buf, "Connection: close") && strstr(buf, "retry later"));
    close(c);
    /* Chunked, so unannounced: refused when it would pass the cap. */
    c = dial(r);
    send_all(c, "POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    send_all(c, "64\r\n");   /* 100 bytes fit */
    send_all(c, part + 800);
    send_all(c, "\r\n12c\r\n");   /* 300 more do not */
    send_all(c, part + 600);
    read_until(c, buf, sizeof buf, NULL);
    CHECK(r, strncmp(buf, "HTTP/1.1 503 ", 13) == 0);
    close(c);
    on_loop(r, ctl_snapshot);
    CHECK(r, r->snap_buffered == 1800);   /* the refused one's 100 bytes were released */
    /* a completes: its bytes are released once handled. */
    send_all(a, part + 800);
    read_until(a, buf, sizeof buf, "}");
    CHECK(r, strstr(buf, "HTTP/1.1 200 OK") && strstr(buf, "\"len\":1000"));
    on_loop(r, ctl_snapshot);
    CHECK(r, r->snap_buffered == 900);
    /* b goes away mid-body: released too. */
    reset_close(b);
    for (int i = 0; i < 100; i++) {
        on_loop(r, ctl_snapshot);
        if (r->snap_buffered == 0) break;
        usleep(10000);
    }
    CHECK(r, r->snap_buffered == 0);
    /* Room again for full-sized bodies, on a kept-alive connection too. */
    c = dial(r);
    for (int i = 0; i < 3; i++) {
        send_all(c, "POST /d HTTP/1.1\r\nHost: t\r\nContent-Length: 900\r\n\r\n");
        send_all(c, part);
        read_until(c, buf, sizeof buf, "}");
        CHECK(r, strstr(buf, "HTTP/1.1 200 OK") && strstr(buf, "\"len\":900"));
    }
    close(c);
    close(a);
    on_loop(r, ctl_snapshot);
    CHECK(r, r->snap_buffered == 0);
}

static void test_simple(void **s) { (void)s; run_scenario(default_opts(), c_simple); }
static void test_keepalive_pipelining(void **s) { (void)s; run_scenario(default_opts(), c_keepalive_pipelining); }
static void test_chunked_continue(void **s) { (void)s; run_scenario(default_opts(), c_chunked_continue); }
static void test_limits(void **s) { (void)s; run_scenario(default_opts(), c_limits); }
static void test_disconnects(void **s) { (void)s; run_scenario(default_opts(), c_disconnects); }
static void test_backpressure(void **s) { (void)s; run_scenario(default_opts(), c_backpressure); }
static void test_stop(void **s) { (void)s; run_scenario(default_opts(), c_stop); }
static void test_close_busy(void **s) { (void)s; run_scenario(default_opts(), c_close_busy); }
static void test_pause(void **s) { (void)s; run_scenario(default_opts(), c_pause); }

static void test_slowloris(void **s)
{
    (void)s;
    struct http_server_opts o = default_opts();
    o.request_timeout_ms = 300;
    o.idle_timeout_ms = 300;
    run_scenario(o, c_slowloris);
}

static void test_cap(void **s)
{
    (void)s;
    struct http_server_opts o = default_opts();
    o.max_connections = 2;
    run_scenario(o, c_cap);
}

static void test_dual_stack(void **s)
{
    (void)s;
    struct http_server_opts o = default_opts();
    o.addr = "::";
    run_scenario(o, c_dual_stack);
}

static void test_head_refusal(void **s)
{
    (void)s;
    struct http_server_opts o = default_opts();
    o.head_handler = lock_head;
    run_scenario(o, c_head_refusal);
}

static void test_buffer_cap(void **s)
{
    (void)s;
    struct http_server_opts o = default_opts();
    o.max_buffered_bytes = 2000;
    run_scenario(o, c_buffer_cap);
}

static void count_close(void *ud)
{
    (*(int *)ud)++;
}

/* Bind errors come back as negative errno; a failed server still closes. */
static void test_listen_errors(void **s)
{
    (void)s;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct http_server_opts o = default_opts();
    struct http_server *a = http_server_new(&loop, &o);
    assert_int_equal(http_server_listen(a), 0);
    o.port = http_server_port(a);
    struct http_server *b = http_server_new(&loop, &o);
    assert_int_equal(http_server_listen(b), -EADDRINUSE);
    o.addr = "not-an-address";
    struct http_server *c = http_server_new(&loop, &o);
    assert_true(http_server_listen(c) < 0);
    struct http_server *never = http_server_new(&loop, &o);   /* closed without listening */
    int closed = 0;
    http_server_stop(a);   /* close after stop is fine */
    http_server_close(a, count_close, &closed);
    http_server_close(b, count_close, &closed);
    http_server_close(c, count_close, &closed);
    http_server_close(never, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(closed, 3);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_helpers(void **s)
{
    (void)s;
    static const int codes[] = {200, 202, 400, 401, 404, 405, 408, 413, 431, 500, 503};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        assert_string_not_equal(http_status_reason(codes[i]), "Unknown");
    assert_string_equal(http_status_reason(404), "Not Found");

    struct http_response res = {.status = 200, .content_type = "text/plain"};
    buf_init(&res.headers);
    buf_init(&res.body);
    buf_puts(&res.body, "previous");
    http_response_error(&res, 400, "bad \"x\"\n\\");
    assert_int_equal(res.status, 400);
    assert_string_equal(res.content_type, "application/json");
    assert_string_equal(buf_cstr(&res.body), "{\"error\":\"bad \\\"x\\\"\\n\\\\\"}");
    buf_free(&res.headers);
    buf_free(&res.body);

    const struct http_header hs[] = {{"Content-Type", "a/b"}, {"X-One", "1"}};
    const struct http_request req = {.headers = hs, .nheaders = 2};
    assert_string_equal(http_request_header(&req, "content-type"), "a/b");
    assert_string_equal(http_request_header(&req, "X-ONE"), "1");
    assert_null(http_request_header(&req, "X-Two"));
}

int main(void)
{
    /* As in main.c: a write to a client that reset must be an error
     * return, not a signal. libuv leaves this to the application. */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_helpers),
        cmocka_unit_test(test_listen_errors),
        cmocka_unit_test(test_simple),
        cmocka_unit_test(test_keepalive_pipelining),
        cmocka_unit_test(test_chunked_continue),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_slowloris),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_disconnects),
        cmocka_unit_test(test_backpressure),
        cmocka_unit_test(test_stop),
        cmocka_unit_test(test_close_busy),
        cmocka_unit_test(test_pause),
        cmocka_unit_test(test_dual_stack),
        cmocka_unit_test(test_head_refusal),
        cmocka_unit_test(test_buffer_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
