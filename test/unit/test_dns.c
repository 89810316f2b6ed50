/* The resolver: numeric addresses, /etc/hosts, and the TTL cache against a
 * tiny UDP name server on 127.0.0.1 run by the test itself. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "dns.h"

/* Answers A queries with 127.0.0.1 and `ttl`; AAAA with no records. */
struct ns {
    int fd;
    int port;
    unsigned ttl;
    volatile int queries;
    volatile int stop;
    pthread_t th;
};

static void *ns_main(void *arg)
{
    struct ns *ns = arg;
    unsigned char q[512], r[600];
    while (!ns->stop) {
        struct pollfd p = {.fd = ns->fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0) continue;
        struct sockaddr_storage from;
        socklen_t flen = sizeof from;
        ssize_t n = recvfrom(ns->fd, q, sizeof q, 0, (struct sockaddr *)&from, &flen);
        if (n < 17) continue;
        ns->queries++;
        size_t qend = 12;
        while (qend < (size_t)n && q[qend]) qend += q[qend] + 1;
        qend += 5;   /* the root label, QTYPE, QCLASS */
        if (qend > (size_t)n) continue;
        int is_a = q[qend - 4] == 0 && q[qend - 3] == 1;
        memcpy(r, q, qend);
        r[2] = 0x81;
        r[3] = 0x80;                       /* response, recursion available, NOERROR */
        r[6] = 0;
        r[7] = is_a ? 1 : 0;               /* ANCOUNT */
        r[8] = r[9] = r[10] = r[11] = 0;
        size_t len = qend;
        if (is_a) {
            unsigned char ans[] = {0xc0, 0x0c, 0, 1, 0, 1, (unsigned char)(ns->ttl >> 24),
                                   (unsigned char)(ns->ttl >> 16), (unsigned char)(ns->ttl >> 8),
                                   (unsigned char)ns->ttl, 0, 4, 127, 0, 0, 1};
            memcpy(r + len, ans, sizeof ans);
            len += sizeof ans;
        }
        sendto(ns->fd, r, len, 0, (struct sockaddr *)&from, flen);
    }
    return NULL;
}

static void ns_start(struct ns *ns, unsigned ttl)
{
    memset(ns, 0, sizeof *ns);
    ns->ttl = ttl;
    ns->fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    bind(ns->fd, (struct sockaddr *)&sa, sizeof sa);
    socklen_t len = sizeof sa;
    getsockname(ns->fd, (struct sockaddr *)&sa, &len);
    ns->port = ntohs(sa.sin_port);
    pthread_create(&ns->th, NULL, ns_main, ns);
}

static void ns_stop(struct ns *ns)
{
    ns->stop = 1;
    pthread_join(ns->th, NULL);
    close(ns->fd);
}

struct result {
    int calls;
    int status;
    size_t n;
    char first[64];
    int port;
};

static void on_result(void *ud, int status, const struct sockaddr_storage *addrs, size_t n)
{
    struct result *r = ud;
    r->calls++;
    r->status = status;
    r->n = n;
    if (n) {
        const void *a = addrs[0].ss_family == AF_INET ? (const void *)&((const struct sockaddr_in *)&addrs[0])->sin_addr
                                                      : (const void *)&((const struct sockaddr_in6 *)&addrs[0])->sin6_addr;
        inet_ntop(addrs[0].ss_family, a, r->first, sizeof r->first);
        r->port = ntohs(addrs[0].ss_family == AF_INET ? ((const struct sockaddr_in *)&addrs[0])->sin_port
                                                      : ((const struct sockaddr_in6 *)&addrs[0])->sin6_port);
    }
}

struct fixture {
    uv_loop_t loop;
    struct logger lg;
    struct dns *dns;
};

static struct result resolve(struct fixture *f, const char *host, uint16_t port)
{
    struct result r = {0};
    dns_resolve(f->dns, host, port, on_result, &r);
    assert_int_equal(r.calls, 0);            /* never from inside dns_resolve */
    for (int i = 0; i < 500 && !r.calls; i++) uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(r.calls, 1);
    return r;
}

static void on_sleep_timer(uv_timer_t *t)
{
    uv_timer_stop(t);
}

static void sleep_loop(struct fixture *f, uint64_t ms)
{
    uv_timer_t t;
    uv_timer_init(&f->loop, &t);
    uv_timer_start(&t, on_sleep_timer, ms, 0);
    uv_run(&f->loop, UV_RUN_ONCE);
    while (uv_is_active((uv_handle_t *)&t)) uv_run(&f->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    uv_loop_init(&f->loop);
    logger_init(&f->lg, LOG_ERROR, LOG_FORMAT_JSON, 2);
    f->dns = dns_new(&f->loop, &f->lg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    dns_close(f->dns, NULL, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

static void test_numeric_and_hosts(void **state)
{
    struct fixture *f = *state;
    struct result r = resolve(f, "127.0.0.1", 80);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.first, "127.0.0.1");
    assert_int_equal(r.port, 80);
    r = resolve(f, "::1", 443);
    assert_string_equal(r.first, "::1");
    assert_int_equal(r.port, 443);
    r = resolve(f, "localhost", 8080);
    assert_int_equal(r.status, 0);
    assert_true(r.n >= 1);
    assert_int_equal(r.port, 8080);
}

static void test_ttl_cache(void **state)
{
    struct fixture *f = *state;
    struct ns ns;
    ns_start(&ns, 1);
    char csv[64];
    snprintf(csv, sizeof csv, "127.0.0.1:%d", ns.port);
    assert_int_equal(dns_set_servers(f->dns, csv), 0);
    struct result r = resolve(f, "hook.example.test", 9443);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.first, "127.0.0.1");
    assert_int_equal(r.port, 9443);
    int after_first = ns.queries;
    assert_true(after_first >= 1);
    /* Within the TTL: answered from the cache, with this query's port. */
    r = resolve(f, "hook.example.test", 80);
    assert_int_equal(r.port, 80);
    assert_int_equal(ns.queries, after_first);
    assert_int_equal(dns_cache_hits(f->dns), 1);
    /* After it: asked again. */
    sleep_loop(f, 1100);
    r = resolve(f, "hook.example.test", 80);
    assert_int_equal(r.status, 0);
    assert_true(ns.queries > after_first);
    ns_stop(&ns);
}

static void test_zero_ttl_not_cached_and_failure(void **state)
{
    struct fixture *f = *state;
    struct ns ns;
    ns_start(&ns, 0);
    char csv[64];
    snprintf(csv, sizeof csv, "127.0.0.1:%d", ns.port);
    assert_int_equal(dns_set_servers(f->dns, csv), 0);
    resolve(f, "zero.example.test", 80);
    int q = ns.queries;
    resolve(f, "zero.example.test", 80);
    assert_true(ns.queries > q);
    ns_stop(&ns);
    /* Nobody answers any more: an error in bounded time, not a hang. */
    struct result r = resolve(f, "gone.example.test", 80);
    assert_true(r.status < 0);
}

static void test_cancel_and_close(void **state)
{
    struct fixture *f = *state;
    struct result r = {0};
    struct dns_query *q = dns_resolve(f->dns, "127.0.0.1", 1, on_result, &r);
    dns_cancel(q);
    for (int i = 0; i < 5; i++) uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(r.calls, 0);
    /* Pending at close: the callback says so. */
    struct result pending = {0};
    dns_resolve(f->dns, "slow.example.test", 1, on_result, &pending);
    dns_close(f->dns, NULL, NULL);
    f->dns = dns_new(&f->loop, &f->lg);
    assert_int_equal(pending.calls, 1);
    assert_int_equal(pending.status, -ECANCELED);
}

/* A name server port where nothing listens: the loopback refuses at once. */
static int closed_udp_port(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    bind(fd, (struct sockaddr *)&sa, sizeof sa);
    socklen_t len = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &len);
    close(fd);
    return ntohs(sa.sin_port);
}

static void test_unknown_name_bounded(void **state)
{
    struct fixture *f = *state;
    char csv[64];
    snprintf(csv, sizeof csv, "127.0.0.1:%d", closed_udp_port());
    assert_int_equal(dns_set_servers(f->dns, csv), 0);
    uint64_t t0 = uv_now(&f->loop);
    struct result r = resolve(f, "no-such-host.invalid", 80);
    assert_true(r.status < 0);
    assert_int_equal(r.n, 0);
    assert_true(uv_now(&f->loop) - t0 < 10000);   /* c-ares's own tries, not forever */
    /* The resolver still works afterwards. */
    r = resolve(f, "127.0.0.1", 80);
    assert_int_equal(r.status, 0);
}

static void test_cancel_pending_query(void **state)
{
    struct fixture *f = *state;
    struct ns ns;
    ns_start(&ns, 60);
    char csv[64];
    snprintf(csv, sizeof csv, "127.0.0.1:%d", ns.port);
    assert_int_equal(dns_set_servers(f->dns, csv), 0);
    /* Cancelled while c-ares is asking: the answer arrives and is dropped
     * (the query is freed then; ASan checks that). */
    struct result r = {0};
    dns_cancel(dns_resolve(f->dns, "cancel.example.test", 80, on_result, &r));
    for (int i = 0; i < 100 && ns.queries < 1; i++) sleep_loop(f, 10);
    sleep_loop(f, 100);
    assert_true(ns.queries >= 1);
    assert_int_equal(r.calls, 0);
    /* A later query for another name is unaffected. */
    struct result ok = resolve(f, "other.example.test", 81);
    assert_int_equal(ok.status, 0);
    assert_int_equal(ok.port, 81);
    ns_stop(&ns);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_numeric_and_hosts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ttl_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zero_ttl_not_cached_and_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_and_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_name_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_pending_query, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
