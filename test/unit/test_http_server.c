/* The listener's protocol layer against real loopback sockets: keep-alive,
 * pipelining, chunked bodies, 100-continue, limits, timeouts, the cap.
 * The server runs on the test's loop; each scenario's client runs in a
 * thread with blocking sockets (bounded by SO_RCVTIMEO). */
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
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "http_server.h"
#include "json.h"

struct run {
    uv_loop_t loop;
    uv_async_t done;
    struct http_server *srv;
    int port;
    void (*client)(struct run *r);
    char failure[256];             /* set by the client thread; checked on the main thread */
};

static void echo(void *ud, const struct http_request *req, struct http_response *res)
{
    (void)ud;
    res->status = strcmp(req->path, "/missing") == 0 ? 404 : 200;
    int first = 1;
    buf_putc(&res->body, '{');
    json_put_key(&res->body, "method", &first);
    json_put_str(&res->body, req->method);
    json_put_key(&res->body, "path", &first);
    json_put_str(&res->body, req->path);
    json_put_key(&res->body, "query", &first);
    json_put_str(&res->body, req->query);
    json_put_key(&res->body, "body", &first);
    json_put_strn(&res->body, req->body, req->body_len);
    json_put_key(&res->body, "x", &first);
    json_put_str(&res->body, http_request_header(req, "X-Test"));
    buf_putc(&res->body, '}');
}

static void on_done(uv_async_t *a)
{
    struct run *r = a->data;
    http_server_close(r->srv, NULL, NULL);
    uv_close((uv_handle_t *)&r->done, NULL);
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
    struct run r;
    memset(&r, 0, sizeof r);
    uv_loop_init(&r.loop);
    uv_async_init(&r.loop, &r.done, on_done);
    r.done.data = &r;
    r.client = client;
    r.srv = http_server_new(&r.loop, &opts);
    assert_int_equal(http_server_listen(r.srv), 0);
    r.port = http_server_port(r.srv);
    pthread_t th;
    pthread_create(&th, NULL, client_main, &r);
    uv_run(&r.loop, UV_RUN_DEFAULT);
    pthread_join(th, NULL);
    assert_int_equal(uv_loop_close(&r.loop), 0);   /* every handle closed */
    if (r.failure[0]) fail_msg("%s", r.failure);
}

/* ---- client helpers (thread side) ---------------------------------------- */

static int dial(struct run *r)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)r->port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    return fd;
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

#define CHECK(r, cond)                                                                  \
    do {                                                                                \
        if (!(cond) && !(r)->failure[0])                                                \
            snprintf((r)->failure, sizeof (r)->failure, "line %d: %s", __LINE__, #cond); \
    } while (0)

/* ---- scenarios ------------------------------------------------------------- */

static void c_keepalive_pipelining(struct run *r)
{
    char buf[8192];
    int fd = dial(r);
    send_all(fd, "GET /a?x=1 HTTP/1.1\r\nHost: t\r\nX-Test:  spaced  \r\n\r\n");
    read_until(fd, buf, sizeof buf, "\"x\":\"spaced\"}");
    CHECK(r, strstr(buf, "HTTP/1.1 200 OK"));
    CHECK(r, strstr(buf, "\"query\":\"x=1\""));
    /* Same connection, three pipelined requests in one write. */
    send_all(fd, "GET /1 HTTP/1.1\r\nHost: t\r\n\r\nGET /missing HTTP/1.1\r\nHost: t\r\n\r\n"
                 "POST /3 HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
    read_until(fd, buf, sizeof buf, NULL);
    const char *a = strstr(buf, "\"path\":\"/1\""), *b = strstr(buf, "404 Not Found"),
               *c = strstr(buf, "\"body\":\"hello\"");
    CHECK(r, a && b && c && a < b && b < c);
    CHECK(r, strstr(buf, "Connection: close"));
    close(fd);
}

static void c_chunked_continue(struct run *r)
{
    char buf[4096];
    int fd = dial(r);
    send_all(fd, "POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n");
    read_until(fd, buf, sizeof buf, "\r\n\r\n");
    CHECK(r, strncmp(buf, "HTTP/1.1 100 Continue\r\n\r\n", 25) == 0);
    send_all(fd, "3\r\nabc\r\n");
    usleep(20000);
    send_all(fd, "4\r\ndefg\r\n0\r\n\r\n");
    read_until(fd, buf, sizeof buf, "}");
    CHECK(r, strstr(buf, "\"body\":\"abcdefg\""));
    close(fd);
}

static void c_limits(struct run *r)
{
    char buf[4096];
    int fd = dial(r);
    send_all(fd, "POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n");
    read_until(fd, buf, sizeof buf, NULL);
    CHECK(r, strstr(buf, "HTTP/1.1 413 ") && !strstr(buf, "100 Continue"));
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
    /* Headers too large. */
    fd = dial(r);
    send_all(fd, "GET / HTTP/1.1\r\nHost: t\r\nX-Big: ");
    char big[5000];
    memset(big, 'b', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    send_all(fd, big);
    send_all(fd, "\r\n\r\n");
    read_until(fd, buf, sizeof buf, NULL);
    CHECK(r, strstr(buf, "HTTP/1.1 431 ") && strstr(buf, "{\"error\":"));
    close(fd);
    /* Garbage, and garbage pipelined after a valid request. */
    fd = dial(r);
    send_all(fd, "\x01\x02garbage\r\n\r\n");
    read_until(fd, buf, sizeof buf, NULL);
    CHECK(r, strstr(buf, "HTTP/1.1 400 ") && strstr(buf, "malformed HTTP request"));
    close(fd);
    fd = dial(r);
    send_all(fd, "GET /ok HTTP/1.1\r\nHost: t\r\n\r\n\x7f\x7fjunk\r\n\r\n");
    read_until(fd, buf, sizeof buf, NULL);
    CHECK(r, strstr(buf, "HTTP/1.1 200 ") && strstr(buf, "HTTP/1.1 400 "));
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
    CHECK(r, strstr(buf, "HTTP/1.1 408 "));
    CHECK(r, s < 1.5);
    close(slow);
    /* An idle keep-alive connection is closed after the idle limit. */
    int idle = dial(r);
    ssize_t got = recv(idle, buf, sizeof buf, 0);
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
    CHECK(r, strstr(buf, "HTTP/1.1 503 ") && strstr(buf, "too many connections"));
    close(c);
    close(a);
    usleep(50000);
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
    for (int i = 0; i < 20; i++) {
        int fd = dial(r);
        send_all(fd, "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 500\r\n\r\npartial");
        if (i % 2) {
            struct linger l = {1, 0};   /* reset instead of a clean close */
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        }
        close(fd);
    }
    usleep(200000);   /* let the loop see those closes; the cap is 16 */
    int fd = dial(r);
    send_all(fd, "GET /alive HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    read_until(fd, buf, sizeof buf, NULL);
    CHECK(r, strstr(buf, "\"path\":\"/alive\""));
    close(fd);
}

static void test_keepalive_pipelining(void **s) { (void)s; run_scenario(default_opts(), c_keepalive_pipelining); }
static void test_chunked_continue(void **s) { (void)s; run_scenario(default_opts(), c_chunked_continue); }
static void test_limits(void **s) { (void)s; run_scenario(default_opts(), c_limits); }
static void test_disconnects(void **s) { (void)s; run_scenario(default_opts(), c_disconnects); }

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keepalive_pipelining), cmocka_unit_test(test_chunked_continue),
        cmocka_unit_test(test_limits),               cmocka_unit_test(test_slowloris),
        cmocka_unit_test(test_cap),                  cmocka_unit_test(test_disconnects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
