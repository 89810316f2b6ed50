/* dns.c - c-ares driven by the libuv loop.
 *
 * c-ares tells us which sockets it wants watched (sock_state_cb); each gets
 * a uv_poll_t. One timer drives c-ares's own timeouts. Every answer, even an
 * immediate one for a numeric address, is queued and delivered from a
 * zero-delay timer, so callers are never called back from inside
 * dns_resolve. */
#include "dns.h"

#include <arpa/inet.h>
#include <ares.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

struct dns_poll {
    uv_poll_t handle;             /* first member: the handle pointer is the struct */
    ares_socket_t fd;
    struct dns *dns;
    struct dns_poll *next;
};

#define CACHE_MAX 256
#define CACHE_TTL_MAX_MS (300 * 1000)

/* One resolved name. Ports are filled in per query. */
struct cache_entry {
    char *host;
    struct sockaddr_storage addrs[DNS_MAX_ADDRS];
    size_t n;
    uint64_t expires_ms;
    struct cache_entry *next;
};

struct dns_query {
    struct dns *dns;
    char *host;
    dns_cb cb;
    void *ud;
    uint16_t port;
    bool cancelled;
    int status;
    struct sockaddr_storage addrs[DNS_MAX_ADDRS];
    size_t naddrs;
    struct dns_query *next_done;
};

struct dns {
    uv_loop_t *loop;
    const struct logger *log;
    ares_channel channel;
    uv_timer_t timeout;           /* c-ares's retransmit/timeout clock */
    uv_timer_t deliver;           /* hands finished queries to their callers */
    struct dns_poll *polls;
    struct dns_query *done_head, *done_tail;
    struct cache_entry *cache;
    size_t ncache;
    unsigned long cache_hits;
    int open_handles;
    bool closing;
    struct close_cb closed;      /* dns_close's, once freed */
};

static void cache_free_all(struct dns *d)
{
    while (d->cache) {
        struct cache_entry *e = d->cache;
        d->cache = e->next;
        free(e->host);
        free(e);
    }
    d->ncache = 0;
}

/* Drops expired entries; returns the live one for host, if any. */
static struct cache_entry *cache_find(struct dns *d, const char *host)
{
    uint64_t now = uv_now(d->loop);
    struct cache_entry *found = NULL;
    for (struct cache_entry **pp = &d->cache; *pp;) {
        struct cache_entry *e = *pp;
        if (e->expires_ms <= now) {
            *pp = e->next;
            free(e->host);
            free(e);
            d->ncache--;
            continue;
        }
        if (strcmp(e->host, host) == 0) found = e;
        pp = &e->next;
    }
    return found;
}

static void cache_put(struct dns *d, const char *host, const struct sockaddr_storage *addrs, size_t n,
                      uint64_t ttl_ms)
{
    if (ttl_ms == 0 || n == 0 || cache_find(d, host)) return;
    if (d->ncache >= CACHE_MAX) {
        /* Full: forget the oldest insertion (the tail). */
        struct cache_entry **pp = &d->cache;
        while ((*pp)->next) pp = &(*pp)->next;
        free((*pp)->host);
        free(*pp);
        *pp = NULL;
        d->ncache--;
    }
    struct cache_entry *e = xcalloc(1, sizeof *e);
    e->host = xstrdup(host);
    memcpy(e->addrs, addrs, n * sizeof *addrs);
    e->n = n;
    e->expires_ms = uv_now(d->loop) + (ttl_ms > CACHE_TTL_MAX_MS ? CACHE_TTL_MAX_MS : ttl_ms);
    e->next = d->cache;
    d->cache = e;
    d->ncache++;
}

static void on_timeout(uv_timer_t *t);

static void handle_closed(uv_handle_t *h)
{
    struct dns *d = h->data;
    if (h->type == UV_POLL) free(h);   /* the dns_poll, handle is its first member */
    if (--d->open_handles == 0) {
        ares_library_cleanup();
        close_cb_free(d, d->closed);
    }
}

static void arm_timeout(struct dns *d)
{
    if (d->closing) return;
    struct timeval tv, *tvp = ares_timeout(d->channel, NULL, &tv);
    if (!tvp) {
        uv_timer_stop(&d->timeout);
        return;
    }
    uint64_t ms = (uint64_t)tvp->tv_sec * 1000 + (uint64_t)tvp->tv_usec / 1000;
    uv_timer_start(&d->timeout, on_timeout, ms ? ms : 1, 0);
}

static void on_timeout(uv_timer_t *t)
{
    struct dns *d = t->data;
    ares_process_fd(d->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    arm_timeout(d);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct dns_poll *p = (struct dns_poll *)h;
    struct dns *d = p->dns;
    /* On a poll error let c-ares try both directions and find out itself. */
    ares_socket_t rfd = (status < 0 || (events & UV_READABLE)) ? p->fd : ARES_SOCKET_BAD;
    ares_socket_t wfd = (status < 0 || (events & UV_WRITABLE)) ? p->fd : ARES_SOCKET_BAD;
    ares_process_fd(d->channel, rfd, wfd);
    arm_timeout(d);
}

static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct dns *d = data;
    struct dns_poll **pp = &d->polls;
    while (*pp && (*pp)->fd != fd) pp = &(*pp)->next;
    struct dns_poll *p = *pp;
    if (!readable && !writable) {
        if (p) {
            *pp = p->next;
            uv_poll_stop(&p->handle);
            uv_close((uv_handle_t *)&p->handle, handle_closed);
        }
        return;
    }
    if (!p) {
        p = xcalloc(1, sizeof *p);
        p->fd = fd;
        p->dns = d;
        if (uv_poll_init_socket(d->loop, &p->handle, fd) < 0) {
            free(p);
            return;
        }
        p->handle.data = d;
        d->open_handles++;
        p->next = d->polls;
        d->polls = p;
    }
    uv_poll_start(&p->handle, (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0), on_poll);
}

static void on_deliver(uv_timer_t *t)
{
    struct dns *d = t->data;
    /* Take the whole list first: callbacks may start new queries. */
    struct dns_query *q = d->done_head;
    d->done_head = d->done_tail = NULL;
    while (q) {
        struct dns_query *next = q->next_done;
        if (!q->cancelled) q->cb(q->ud, q->status, q->addrs, q->naddrs);
        free(q->host);
        free(q);
        q = next;
    }
}

static void finish(struct dns_query *q)
{
    struct dns *d = q->dns;
    q->next_done = NULL;
    if (d->done_tail) d->done_tail->next_done = q;
    else d->done_head = q;
    d->done_tail = q;
    if (!d->closing) uv_timer_start(&d->deliver, on_deliver, 0, 0);
}

static int map_status(int status)
{
    switch (status) {
    case ARES_SUCCESS: return 0;
    case ARES_ENOTFOUND:
    case ARES_ENODATA:
    case ARES_ENONAME: return -ENOENT;
    case ARES_ETIMEOUT: return -ETIMEDOUT;
    case ARES_ECANCELLED:
    case ARES_EDESTRUCTION: return -ECANCELED;
    case ARES_ECONNREFUSED: return -ECONNREFUSED;
    case ARES_ENOMEM: return -ENOMEM;
    default: return -EIO;
    }
}

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
    if (ss->ss_family == AF_INET) ((struct sockaddr_in *)ss)->sin_port = htons(port);
    else ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

static void on_addrinfo(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    (void)timeouts;
    struct dns_query *q = arg;
    q->status = map_status(status);
    int ttl = -1;
    if (status == ARES_SUCCESS && res) {
        for (struct ares_addrinfo_node *n = res->nodes; n && q->naddrs < DNS_MAX_ADDRS; n = n->ai_next) {
            if (ttl < 0 || n->ai_ttl < ttl) ttl = n->ai_ttl;
            if (n->ai_family != AF_INET && n->ai_family != AF_INET6) continue;
            if ((size_t)n->ai_addrlen > sizeof q->addrs[0]) continue;
            memcpy(&q->addrs[q->naddrs], n->ai_addr, (size_t)n->ai_addrlen);
            set_port(&q->addrs[q->naddrs], q->port);
            q->naddrs++;
        }
        if (q->naddrs == 0) q->status = -ENOENT;
        /* The shortest TTL of the answer; /etc/hosts answers carry none. */
        if (q->naddrs && ttl > 0 && !q->dns->closing)
            cache_put(q->dns, q->host, q->addrs, q->naddrs, (uint64_t)ttl * 1000);
    }
    if (res) ares_freeaddrinfo(res);
    finish(q);
}

struct dns *dns_new(uv_loop_t *loop, const struct logger *lg)
{
    struct dns *d = xcalloc(1, sizeof *d);
    d->loop = loop;
    d->log = lg;
    ares_library_init(ARES_LIB_INIT_ALL);
    struct ares_options o;
    memset(&o, 0, sizeof o);
    o.sock_state_cb = on_sock_state;
    o.sock_state_cb_data = d;
    o.timeout = 2000;   /* ms per try: a redeploy should not wait on a dead resolver */
    o.tries = 2;
    int rc = ares_init_options(&d->channel, &o, ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
    if (rc != ARES_SUCCESS) {
        /* Without a resolver only numeric hosts work; say so once. */
        LOG(lg, LOG_ERROR, "dns: c-ares initialisation failed", F_STR("error", ares_strerror(rc)));
        d->channel = NULL;
    }
    uv_timer_init(loop, &d->timeout);
    uv_timer_init(loop, &d->deliver);
    d->timeout.data = d;
    d->deliver.data = d;
    d->open_handles = 2;
    return d;
}

struct dns_query *dns_resolve(struct dns *d, const char *host, uint16_t port, dns_cb cb, void *ud)
{
    struct dns_query *q = xcalloc(1, sizeof *q);
    q->dns = d;
    q->cb = cb;
    q->ud = ud;
    q->port = port;

    /* Numeric addresses need no resolver at all. */
    struct sockaddr_in *s4 = (struct sockaddr_in *)&q->addrs[0];
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&q->addrs[0];
    if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) s4->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) s6->sin6_family = AF_INET6;
    if (q->addrs[0].ss_family) {
        set_port(&q->addrs[0], port);
        q->naddrs = 1;
        finish(q);
        return q;
    }
    struct cache_entry *hit = d->closing ? NULL : cache_find(d, host);
    if (hit) {
        memcpy(q->addrs, hit->addrs, hit->n * sizeof *hit->addrs);
        q->naddrs = hit->n;
        for (size_t i = 0; i < q->naddrs; i++) set_port(&q->addrs[i], port);
        d->cache_hits++;
        finish(q);
        return q;
    }
    q->host = xstrdup(host);
    if (d->closing || !d->channel) {
        q->status = d->closing ? -ECANCELED : -EIO;
        finish(q);
        return q;
    }
    struct ares_addrinfo_hints hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    ares_getaddrinfo(d->channel, host, NULL, &hints, on_addrinfo, q);
    arm_timeout(d);
    return q;
}

void dns_cancel(struct dns_query *q)
{
    if (q) q->cancelled = true;   /* freed after delivery, which skips the callback */
}

void dns_close(struct dns *d, void (*cb)(void *ud), void *ud)
{
    if (!d) {
        if (cb) cb(ud);
        return;
    }
    assert(!d->closing && "dns_close called twice");
    d->closed = (struct close_cb){cb, ud};
    /* Let c-ares fail what is pending (ECANCELLED) while we can still
     * deliver, then deliver synchronously: nothing is left behind. */
    if (d->channel) ares_cancel(d->channel);
    on_deliver(&d->deliver);
    d->closing = true;
    if (d->channel) ares_destroy(d->channel);   /* closes its sockets via sock_state_cb */
    d->channel = NULL;
    on_deliver(&d->deliver);
    cache_free_all(d);
    uv_close((uv_handle_t *)&d->timeout, handle_closed);
    uv_close((uv_handle_t *)&d->deliver, handle_closed);
}

int dns_set_servers(struct dns *d, const char *csv)
{
    if (!d->channel || ares_set_servers_ports_csv(d->channel, csv) != ARES_SUCCESS) return -EINVAL;
    cache_free_all(d);
    return 0;
}

unsigned long dns_cache_hits(const struct dns *d)
{
    return d->cache_hits;
}
