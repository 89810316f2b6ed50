/* http_client.c - one non-blocking HTTP/1.1 client for the whole program.
 *
 * Two objects: a connection (a socket, unix or TCP, and its TLS state) and a
 * call (one request and its response). A call gets a connection from the
 * idle pool of its origin or opens one (trying each resolved address in
 * turn); after a complete keep-alive response the connection goes back to
 * the pool. The response goes through llhttp, so callers see the status,
 * headers and the de-framed body, streamed (the endless Docker /events) or
 * collected (forwards). Below it: stream.c writes (at once, or a queued
 * copy) and tls.c, TLS over memory, so the socket stays libuv's.
 *
 * Lifetime: a call ends exactly once (call_finish), which closes its timer
 * and closes or pools its connection; memory goes when the close callbacks
 * ran. Callbacks into the caller may cancel the call; the struct stays valid
 * until then, so code after a callback only checks call->done. */
#include "http_client.h"

#include <assert.h>
#include <errno.h>
#include <llhttp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "buf.h"
#include "stream.h"
#include "tls.h"

#define READ_BUF_SIZE (64 * 1024)
#define DEFAULT_MAX_BODY (1024 * 1024)
/* Status line and headers of a response: past this a peer is not an HTTP
 * server we want to talk to (an endless header would otherwise grow
 * without bound on the /events stream, which has no deadline). */
#define MAX_RESPONSE_HEAD (64 * 1024)
#define MAX_RESPONSE_HEADERS 64
#define IDLE_LIMIT_MS 30000          /* a pooled connection unused this long is closed */
#define MAX_IDLE_CONNS 256
/* A connection pooled for less than this is reused without a look at its
 * socket (conn_is_idle_clean: a syscall per request under a flood). Servers
 * close idle connections after seconds (nginx 75 s, Node 5 s), not
 * milliseconds; the rare FIN or 408 that still races a reuse is caught by
 * retry_fresh and the 408 check, so the look only saves a retry. */
#define PEEK_AFTER_IDLE_MS 1000
#define RETRY_AFTER_MAX_MS 60000

/* A response header: offsets of its NUL-terminated name and value in the
 * call's `heads` (one buffer for all of them, not two allocations each). */
struct header {
    size_t name, value;
};

enum { HDR_BETWEEN, HDR_NAME, HDR_VALUE };

struct conn {
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;
    struct http_client *client;
    struct http_call *call;       /* the call using it; NULL while idle in the pool */
    struct conn *next_idle;
    char *host;                   /* origin; NULL for a unix socket */
    uint16_t port;
    bool tls;
    struct tls_session *session;  /* https: made once the socket is up */
    bool closing;
    uint64_t idle_since;
    /* Here, not in the call: a cancelled call may be freed before libuv
     * reports its connect as cancelled, which happens while this closes. */
    uv_connect_t connect_req;
};

struct http_client {
    uv_loop_t *loop;
    struct dns *dns;
    const struct logger *log;
    struct http_call *calls;      /* every call not yet freed */
    struct conn *idle;            /* the pool, most recently used first */
    size_t nidle;
    size_t open_conns;            /* connections not yet freed */
    unsigned long opened;
    uv_timer_t sweep;             /* closes pooled connections past the idle limit */
    bool sweep_closed;
    bool closing;
    struct close_cb closed;  /* http_client_close's, once freed */
    llhttp_settings_t settings;   /* the same callbacks for every call */
    struct tls_config *tls;       /* NULL until http_client_tls_setup */
    struct http_call *spare;      /* freed calls kept for the next ones (SPARE_CALLS at most) */
    size_t nspare;
    char read_buf[READ_BUF_SIZE]; /* one loop thread: reads are consumed before the next */
};

struct http_call {
    struct http_client *client;
    struct http_call *prev, *next;
    struct http_client_opts o;    /* callbacks, ud, timeouts; string fields unused after start */

    char *unix_path;
    char *host;
    uint16_t port;
    bool tls;
    struct buf request;

    struct conn *conn;
    bool reused;                  /* conn came from the pool */
    bool fresh_only;              /* a pooled conn failed us: the next one is new */
    bool got_bytes;               /* any response byte arrived on conn */
    bool connected;               /* conn is up (new or pooled) and the request went out */
    bool head_done;               /* the final response head arrived */
    bool interim;                 /* the head being parsed is a 1xx: skipped */
    bool stale;                   /* a pooled conn answered 408: it had timed out */
    uv_timer_t timer;             /* deferred errors, then the nearest deadline */
    uint64_t timer_due;           /* when the timer, if active, fires (loop time) */
    uint64_t started_ms;          /* http_client_request */
    uint64_t connect_started_ms;  /* the current connection attempt (DNS included) */
    uint64_t connected_ms;

    struct dns_query *dns_query;
    size_t naddrs, next_addr;
    int last_err;
    int deferred_err;

    llhttp_t parser;
    size_t nheaders;
    int hstate;                   /* HDR_*: where the header being read is */
    struct header hcur;
    size_t head_bytes;
    struct buf heads;             /* "name\0value\0" for each header */
    struct buf body;
    int status;
    int parse_err;                /* set by parser callbacks */
    bool complete;
    bool done;
    bool cancelled;

    /* Last, and not zeroed (http_client_request): 2.5 KiB read only below
     * naddrs and nheaders; clearing them was a tenth of a forward. */
    struct sockaddr_storage addrs[DNS_MAX_ADDRS];
    struct header headers[MAX_RESPONSE_HEADERS];
};

static void call_finish(struct http_call *call, int err);
static void start_connect(struct http_call *call);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);
static bool retry_fresh(struct http_call *call);

/* ---- lifetime ----------------------------------------------------------- */

static void call_release(struct http_call *call)
{
    buf_free(&call->heads);
    buf_free(&call->body);
    buf_free(&call->request);
    free(call);
}

static void client_maybe_free(struct http_client *c)
{
    if (!c->closing || c->calls || c->open_conns || !c->sweep_closed) return;
    while (c->spare) {
        struct http_call *next = c->spare->next;
        call_release(c->spare);
        c->spare = next;
    }
    tls_config_free(c->tls);
    close_cb_free(c, c->closed);
}

/* A few freed calls are kept, buffers and all: a call is 2.7 KiB, past
 * glibc's per-thread cache, and with its three buffers it was five
 * mallocs and frees a forward. A buffer that grew large goes. */
#define SPARE_CALLS 4
#define SPARE_BUF_MAX 4096

static void call_free(struct http_call *call)
{
    struct http_client *c = call->client;
    if (call->prev) call->prev->next = call->next;
    else c->calls = call->next;
    if (call->next) call->next->prev = call->prev;
    free(call->unix_path);
    free(call->host);
    if (c->closing || c->nspare >= SPARE_CALLS) {
        call_release(call);
    } else {
        /* The request held the target's path (a webhook token) and maybe an
         * Authorization header: a kept buffer does not keep them. */
        if (call->request.data) memset(call->request.data, 0, call->request.len);
        struct buf *bufs[] = {&call->heads, &call->body, &call->request};
        for (size_t i = 0; i < 3; i++) {
            if (bufs[i]->cap > SPARE_BUF_MAX) buf_free(bufs[i]);
            else buf_reset(bufs[i]);
        }
        call->next = c->spare;
        c->spare = call;
        c->nspare++;
    }
    client_maybe_free(c);
}

/* A spare call, or a new one; zeroed up to addrs, its buffers empty. */
static struct http_call *call_new(struct http_client *c)
{
    struct http_call *call = c->spare;
    struct buf kept[3];
    if (call) {
        c->spare = call->next;
        c->nspare--;
        kept[0] = call->heads;
        kept[1] = call->body;
        kept[2] = call->request;
    } else {
        call = xmalloc(sizeof *call);
        buf_init(&kept[0]);
        buf_init(&kept[1]);
        buf_init(&kept[2]);
    }
    memset(call, 0, offsetof(struct http_call, addrs));
    call->heads = kept[0];
    call->body = kept[1];
    call->request = kept[2];
    return call;
}

static void on_timer_closed(uv_handle_t *h)
{
    call_free(h->data);
}

static void on_conn_closed(uv_handle_t *h)
{
    struct conn *conn = (struct conn *)h;
    struct http_client *c = conn->client;
    tls_session_free(conn->session);
    free(conn->host);
    free(conn);
    c->open_conns--;
    client_maybe_free(c);
}

static void conn_close(struct conn *conn)
{
    if (conn->closing) return;
    conn->closing = true;
    conn->call = NULL;
    uv_close(&conn->h.handle, on_conn_closed);
}

static void pool_remove(struct http_client *c, struct conn *conn)
{
    for (struct conn **pp = &c->idle; *pp; pp = &(*pp)->next_idle)
        if (*pp == conn) {
            *pp = conn->next_idle;
            c->nidle--;
            return;
        }
}

static void on_sweep(uv_timer_t *t)
{
    struct http_client *c = t->data;
    uint64_t now = uv_now(c->loop);
    struct conn **pp = &c->idle;
    while (*pp) {
        struct conn *conn = *pp;
        if (now - conn->idle_since >= IDLE_LIMIT_MS) {
            *pp = conn->next_idle;
            c->nidle--;
            conn_close(conn);
        } else {
            pp = &conn->next_idle;
        }
    }
    if (c->idle) uv_timer_start(&c->sweep, on_sweep, IDLE_LIMIT_MS / 2, 0);
}

/* Keeps the connection for the next call to its origin. */
static void pool_put(struct http_client *c, struct conn *conn)
{
    if (c->closing || c->nidle >= MAX_IDLE_CONNS) {
        conn_close(conn);
        return;
    }
    conn->call = NULL;
    conn->idle_since = uv_now(c->loop);
    conn->next_idle = c->idle;
    c->idle = conn;
    c->nidle++;
    if (!uv_is_active((uv_handle_t *)&c->sweep)) uv_timer_start(&c->sweep, on_sweep, IDLE_LIMIT_MS / 2, 0);
}

static struct conn *pool_take(struct http_client *c, const char *host, uint16_t port, bool tls)
{
    for (struct conn **pp = &c->idle; *pp; pp = &(*pp)->next_idle) {
        struct conn *conn = *pp;
        if (conn->port == port && conn->tls == tls && strcmp(conn->host, host) == 0) {
            *pp = conn->next_idle;
            c->nidle--;
            return conn;
        }
    }
    return NULL;
}

/* Writes the caller's one-line cause, when it asked for one. */
static void set_cause(struct http_call *call, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_cause(struct http_call *call, const char *fmt, ...)
{
    if (!call->o.errbuf || !call->o.errbuf_len) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(call->o.errbuf, call->o.errbuf_len, fmt, ap);
    va_end(ap);
}

static void on_timer(uv_timer_t *t);

/* The deadlines that apply in the call's phase; the nearest one arms the
 * timer. Recomputed at each phase change (start, connected, head). */
static uint64_t next_deadline(const struct http_call *call, const char **what, uint64_t *limit)
{
    const struct http_client_opts *o = &call->o;
    uint64_t due = UINT64_MAX;
#define CONSIDER(cond, at, ms, name)                       \
    if ((cond) && (ms) && (at) + (ms) < due) {            \
        due = (at) + (ms);                                \
        *what = (name);                                   \
        *limit = (ms);                                    \
    }
    CONSIDER(!call->connected, call->connect_started_ms, o->connect_timeout_ms, "no connection");
    CONSIDER(call->connected, call->connected_ms, o->response_timeout_ms, "no complete answer");
    CONSIDER(!call->head_done, call->started_ms, o->head_timeout_ms, "no response head");
    CONSIDER(true, call->started_ms, o->total_timeout_ms, "no complete answer");
#undef CONSIDER
    return due;
}

/* Called as a call moves on (started, connected, head read), and each
 * step's deadline usually lies past the one before it: a timer already due
 * at or before the new deadline is left alone, and on_timer arms again for
 * what remains when it fires early. A restart was two timer-heap changes a
 * forward. */
static void arm_deadline(struct http_call *call)
{
    const char *what;
    uint64_t limit;
    uint64_t due = next_deadline(call, &what, &limit);
    if (due == UINT64_MAX) {
        uv_timer_stop(&call->timer);
        return;
    }
    if (uv_is_active((uv_handle_t *)&call->timer) && call->timer_due <= due) return;
    uint64_t now = uv_now(call->client->loop);
    call->timer_due = due;
    uv_timer_start(&call->timer, on_timer, due > now ? due - now : 0, 0);
}

/* Ends the call once: stop everything, tell the caller (unless cancelled). */
static void call_finish(struct http_call *call, int err)
{
    if (call->done) return;
    call->done = true;
    if (call->dns_query) dns_cancel(call->dns_query);
    call->dns_query = NULL;
    struct conn *conn = call->conn;
    call->conn = NULL;
    if (conn) {
        bool reusable = err == 0 && call->o.keep_alive && conn->host &&
                        llhttp_should_keep_alive(&call->parser);
        if (reusable) pool_put(call->client, conn);
        else conn_close(conn);
    }
    uv_timer_stop(&call->timer);
    uv_close((uv_handle_t *)&call->timer, on_timer_closed);
    if (!call->cancelled && call->o.on_done)
        call->o.on_done(call->o.ud, err, call->status, call->body.data ? call->body.data : "",
                        call->body.len);
}

/* ---- response parsing --------------------------------------------------- */

/* The name being read is complete: its NUL, and the value starts. */
static void end_name(struct http_call *call)
{
    if (call->hstate != HDR_NAME) return;
    buf_putc(&call->heads, '\0');
    call->hcur.value = call->heads.len;
    call->hstate = HDR_VALUE;
}

/* The header being read is complete (its value may be empty). */
static void end_header(struct http_call *call)
{
    end_name(call);
    if (call->hstate != HDR_VALUE) return;
    buf_putc(&call->heads, '\0');
    if (call->nheaders < MAX_RESPONSE_HEADERS) call->headers[call->nheaders++] = call->hcur;
    call->hstate = HDR_BETWEEN;
}

static int count_head(struct http_call *call, size_t len)
{
    call->head_bytes += len;
    if (call->head_bytes <= MAX_RESPONSE_HEAD) return 0;
    call->parse_err = -E2BIG;
    return -1;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct http_call *call = p->data;
    if (count_head(call, len) < 0) return -1;
    if (call->hstate == HDR_VALUE) end_header(call);
    if (call->hstate == HDR_BETWEEN) {
        call->hcur.name = call->heads.len;
        call->hstate = HDR_NAME;
    }
    buf_append(&call->heads, at, len);
    return 0;
}

static int on_header_field_complete(llhttp_t *p)
{
    end_name(p->data);
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct http_call *call = p->data;
    if (count_head(call, len) < 0) return -1;
    end_name(call);
    if (call->hstate != HDR_VALUE) return 0;   /* a value with no name: nothing to file it under */
    buf_append(&call->heads, at, len);
    return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    end_header(p->data);
    return 0;
}

static const char *get_header(void *ctx, const char *name)
{
    struct http_call *call = ctx;
    for (size_t i = 0; i < call->nheaders; i++)
        if (strcasecmp(call->heads.data + call->headers[i].name, name) == 0)
            return call->heads.data + call->headers[i].value;
    return NULL;
}

static void drop_headers(struct http_call *call)
{
    call->nheaders = 0;
    call->hstate = HDR_BETWEEN;
    buf_reset(&call->heads);
}

/* Forgets what was read of an answer, for a retry on a fresh connection. */
static void reset_response(struct http_call *call)
{
    drop_headers(call);
    buf_reset(&call->body);
    llhttp_init(&call->parser, HTTP_RESPONSE, &call->client->settings);
    call->parser.data = call;
    call->status = 0;
    call->head_bytes = 0;
    call->head_done = call->interim = call->complete = call->got_bytes = false;
}

static int on_headers_complete(llhttp_t *p)
{
    struct http_call *call = p->data;
    end_header(call);
    int status = p->status_code;
    if (status >= 100 && status < 200 && status != 101) {
        /* 100 Continue, 103 Early Hints: not the answer. llhttp ends this
         * bodiless message and goes on to the next on the same bytes. */
        call->interim = true;
        drop_headers(call);
        return 0;
    }
    if (status == 408 && call->reused) {
        /* The server gave up on the idle connection before our request
         * reached it: the 408 answers nothing we sent. */
        call->stale = true;
        return -1;
    }
    call->status = status;
    call->head_done = true;
    arm_deadline(call);
    if (call->o.on_head) call->o.on_head(call->o.ud, call->status, get_header, call);
    if (call->done) return -1;
    /* 1: the message ends here, without a body (F_SKIPBODY). */
    return call->o.head_request ? 1 : 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct http_call *call = p->data;
    if (call->o.on_body) {
        call->o.on_body(call->o.ud, at, len);
        return call->done ? -1 : 0;
    }
    if (call->o.discard_body) return 0;
    size_t max = call->o.max_body ? call->o.max_body : DEFAULT_MAX_BODY;
    if (call->body.len + len > max) {
        call->parse_err = -E2BIG;
        return -1;
    }
    buf_append(&call->body, at, len);
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct http_call *call = p->data;
    if (call->interim) {
        call->interim = false;
        return 0;
    }
    call->complete = true;
    /* One response per call: anything after it is not ours to read. */
    return HPE_PAUSED;
}

/* ---- writing and TLS ------------------------------------------------------ */

static void on_written(void *ud, int status)
{
    struct conn *conn = ud;
    struct http_call *call = conn->call;
    if (status < 0 && call && !call->done && !retry_fresh(call)) call_finish(call, status);
}

static int conn_write(struct conn *conn, const char *data, size_t len)
{
    int rc = stream_write(&conn->h.stream, data, len, true, on_written, conn);
    return rc < 0 ? rc : 0;
}

static int conn_sink(void *ud, const char *data, size_t len)
{
    return conn_write(ud, data, len);
}

/* Sends whatever TLS queued for the network. */
static int tls_flush(struct conn *conn)
{
    return tls_session_flush(conn->session, conn_sink, conn);
}

/* A handshake that failed: the caller gets the reason in words. */
static void tls_failed(struct http_call *call, int err, const char *why)
{
    set_cause(call, "%s", why);
    /* A caller that takes the cause reports it in its own line. */
    LOG(call->client->log, call->o.errbuf ? LOG_DEBUG : LOG_WARN, "tls handshake failed",
        F_STR("host", call->host), F_INT("port", call->port), F_STR("error", why));
    call_finish(call, err);
}

static void send_request(struct http_call *call)
{
    struct conn *conn = call->conn;
    int rc;
    if (conn->session) {
        rc = tls_session_write(conn->session, call->request.data, call->request.len);
        if (rc == 0) rc = tls_flush(conn);
    } else
        rc = conn_write(conn, call->request.data, call->request.len);
    /* A pooled connection the server closed can fail the write at once. */
    if (rc < 0 && !retry_fresh(call)) call_finish(call, rc);
}

/* Drives the handshake; sends the request once it completed. */
static void tls_step(struct http_call *call)
{
    struct conn *conn = call->conn;
    char why[256];
    int r = tls_session_handshake(conn->session, why, sizeof why);
    if (tls_flush(conn) < 0) {
        call_finish(call, -ECONNRESET);
        return;
    }
    if (r == 1) send_request(call);
    else if (r < 0) tls_failed(call, r, why);
}

/* ---- reading -------------------------------------------------------------- */

/* Hands response bytes to llhttp; returns false once the call is over. */
static bool parse_bytes(struct http_call *call, const char *data, size_t len)
{
    call->got_bytes = true;
    llhttp_errno_t e = llhttp_execute(&call->parser, data, len);
    if (call->done) return false;   /* a callback cancelled or finished the call */
    if (call->stale) {
        call->stale = false;
        reset_response(call);
        if (!retry_fresh(call)) call_finish(call, -ECONNRESET);
        return false;
    }
    if (call->complete) {
        call_finish(call, 0);
        return false;
    }
    if (e != HPE_OK) {
        call_finish(call, call->parse_err ? call->parse_err : -EPROTO);
        return false;
    }
    return true;
}

/* A pooled connection the server had closed: send the request again on a
 * fresh one. Only before any byte of the answer, so nothing runs twice. */
static bool retry_fresh(struct http_call *call)
{
    if (!call->reused || call->got_bytes) return false;
    struct conn *conn = call->conn;
    call->conn = NULL;
    call->reused = false;
    call->fresh_only = true;
    conn_close(conn);
    start_connect(call);
    return true;
}

/* EOF (or TLS close_notify) completes a body that has no framing:
 * llhttp_finish then runs on_message_complete (and returns its
 * HPE_PAUSED). Anywhere else it is a cut. */
static void on_eof(struct http_call *call)
{
    if (retry_fresh(call)) return;
    llhttp_finish(&call->parser);
    call_finish(call, call->complete ? 0 : -ECONNRESET);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    struct conn *conn = (struct conn *)h;
    b->base = conn->client->read_buf;
    b->len = sizeof conn->client->read_buf;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct conn *conn = (struct conn *)s;
    struct http_call *call = conn->call;
    if (conn->closing) return;
    if (!call) {
        /* Idle in the pool: the server closed it, or sent what nobody asked for. */
        if (nread != 0) {
            pool_remove(conn->client, conn);
            conn_close(conn);
        }
        return;
    }
    if (call->done) return;
    if (nread < 0) {
        if (nread != UV_EOF && retry_fresh(call)) return;
        if (nread != UV_EOF) call_finish(call, (int)nread);
        else if (conn->session && !tls_session_established(conn->session))
            tls_failed(call, -ECONNABORTED, "TLS handshake failed: connection closed");
        else on_eof(call);
        return;
    }
    if (nread == 0) return;
    if (!conn->session) {
        parse_bytes(call, b->base, (size_t)nread);
        return;
    }
    tls_session_feed(conn->session, b->base, (size_t)nread);
    if (!tls_session_established(conn->session)) {
        tls_step(call);
        if (call->done || !tls_session_established(conn->session)) return;
    }
    char plain[16 * 1024];
    int n;
    while ((n = tls_session_read(conn->session, plain, sizeof plain)) > 0)
        if (!parse_bytes(call, plain, (size_t)n)) return;
    if (n == TLS_SESSION_EOF) on_eof(call);
    else if (n < 0) call_finish(call, n);
    else if (tls_flush(conn) < 0) call_finish(call, -ECONNRESET);
}

/* ---- connecting ----------------------------------------------------------- */

static void on_connected(struct http_call *call);

static void on_timer(uv_timer_t *t)
{
    struct http_call *call = t->data;
    if (call->deferred_err) {
        call_finish(call, call->deferred_err);
        return;
    }
    const char *what = "timed out";
    uint64_t limit = 0;
    uint64_t due = next_deadline(call, &what, &limit), now = uv_now(call->client->loop);
    if (due == UINT64_MAX) return;   /* no deadline left (all timeouts 0) */
    if (due > now) {   /* armed for an earlier step's deadline: wait for the rest */
        call->timer_due = due;
        uv_timer_start(&call->timer, on_timer, due - now, 0);
        return;
    }
    set_cause(call, "%s within %llu ms", what, (unsigned long long)limit);
    call_finish(call, -ETIMEDOUT);
}

/* The connection is up (new or from the pool): start the exchange. */
static void on_connected(struct http_call *call)
{
    struct conn *conn = call->conn;
    call->connected = true;
    call->connected_ms = uv_now(call->client->loop);
    arm_deadline(call);
    if (!call->reused) {
        /* Here, not before connecting: libuv applies the delay only to a
         * socket that exists (before, it silently uses its own 60 s). */
        if (conn->host && call->o.tcp_keepalive_secs) uv_tcp_keepalive(&conn->h.tcp, 1, call->o.tcp_keepalive_secs);
        int rc = uv_read_start(&conn->h.stream, on_alloc, on_read);
        if (rc == 0 && conn->tls) {
            conn->session = tls_session_new(call->client->tls, conn->host);
            if (!conn->session) rc = -ENOMEM;
        }
        if (rc < 0) {
            call_finish(call, rc);
            return;
        }
    }
    if (conn->session && !tls_session_established(conn->session)) tls_step(call);
    else send_request(call);
}

static struct conn *conn_new(struct http_call *call)
{
    struct http_client *c = call->client;
    struct conn *conn = xcalloc(1, sizeof *conn);
    conn->client = c;
    conn->call = call;
    conn->host = xstrdup_or_null(call->host);
    conn->port = call->port;
    conn->tls = call->tls;
    c->open_conns++;
    c->opened++;
    return conn;
}

static void try_next_addr(struct http_call *call);

static void on_connect(uv_connect_t *req, int status)
{
    struct conn *conn = req->data;
    struct http_call *call = conn->call;
    if (conn->closing || !call || call->done) return;
    if (status == 0) {
        on_connected(call);
        return;
    }
    call->last_err = status;
    call->conn = NULL;
    conn_close(conn);
    if (call->unix_path) {
        /* Unix sockets are Docker engines here. ENOENT from connect() is a
         * missing socket file, not the unknown host http_client_strerror
         * would call it. */
        if (status == UV_ENOENT) set_cause(call, "engine socket %s missing", call->unix_path);
        else set_cause(call, "engine socket %s: %s", call->unix_path, uv_strerror(status));
        call_finish(call, status);
    } else {
        try_next_addr(call);
    }
}

static void try_next_addr(struct http_call *call)
{
    if (call->next_addr >= call->naddrs) {
        call_finish(call, call->last_err ? call->last_err : -ECONNREFUSED);
        return;
    }
    const struct sockaddr *sa = (const struct sockaddr *)&call->addrs[call->next_addr++];
    struct conn *conn = conn_new(call);
    uv_tcp_init(call->client->loop, &conn->h.tcp);
    uv_tcp_nodelay(&conn->h.tcp, 1);
    call->conn = conn;
    conn->connect_req.data = conn;
    int rc = uv_tcp_connect(&conn->connect_req, &conn->h.tcp, sa, on_connect);
    if (rc < 0) {
        call->last_err = rc;
        call->conn = NULL;
        conn_close(conn);
        try_next_addr(call);
    }
}

static void on_resolved(void *ud, int status, const struct sockaddr_storage *addrs, size_t n)
{
    struct http_call *call = ud;
    call->dns_query = NULL;
    if (status < 0) {
        call_finish(call, status);
        return;
    }
    memcpy(call->addrs, addrs, n * sizeof *addrs);
    call->naddrs = n;
    call->next_addr = 0;
    try_next_addr(call);
}

/* Whether a pooled connection can carry a request: nothing may be waiting
 * on it, neither the server's FIN nor bytes nobody asked for (a 408 sent
 * when it timed the connection out). Either would otherwise be read as
 * the answer, or the start of it, to the request about to be written. */
static bool conn_is_idle_clean(struct conn *conn)
{
    uv_os_fd_t fd;
    if (uv_fileno(&conn->h.handle, &fd) < 0) return false;
    char byte;
    ssize_t n = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* Takes a usable pooled connection for the call's origin and sends the
 * request on it, in one step: nothing can happen to the connection
 * between the check and the write. Returns false when none is left. */
static bool start_pooled(struct http_call *call)
{
    struct http_client *c = call->client;
    struct conn *conn;
    while ((conn = pool_take(c, call->host, call->port, call->tls))) {
        if (uv_now(c->loop) - conn->idle_since < PEEK_AFTER_IDLE_MS || conn_is_idle_clean(conn)) break;
        conn_close(conn);
    }
    if (!conn) return false;
    conn->call = call;
    call->conn = conn;
    call->reused = true;
    /* A failing write retries on a fresh connection (retry_fresh), so
     * on_done is never called from inside http_client_request. */
    on_connected(call);
    return true;
}

static void start_connect(struct http_call *call)
{
    struct http_client *c = call->client;
    assert(!call->conn && !call->dns_query && !call->done && "a call connecting twice");
    call->connected = false;
    call->connect_started_ms = uv_now(c->loop);
    arm_deadline(call);
    if (call->unix_path) {
        struct conn *conn = conn_new(call);
        uv_pipe_init(c->loop, &conn->h.pipe, 0);
        call->conn = conn;
        conn->connect_req.data = conn;
        /* uv_pipe_connect reports every failure through the callback. */
        uv_pipe_connect(&conn->connect_req, &conn->h.pipe, call->unix_path, on_connect);
        return;
    }
    if (call->o.keep_alive && !call->fresh_only && start_pooled(call)) return;
    call->dns_query = dns_resolve(c->dns, call->host, call->port, on_resolved, call);
}

/* ---- public ------------------------------------------------------------- */

struct http_client *http_client_new(uv_loop_t *loop, struct dns *dns, const struct logger *lg)
{
    struct http_client *c = xcalloc(1, sizeof *c);
    c->loop = loop;
    c->dns = dns;
    c->log = lg;
    llhttp_settings_init(&c->settings);
    c->settings.on_header_field = on_header_field;
    c->settings.on_header_field_complete = on_header_field_complete;
    c->settings.on_header_value = on_header_value;
    c->settings.on_header_value_complete = on_header_value_complete;
    c->settings.on_headers_complete = on_headers_complete;
    c->settings.on_body = on_body;
    c->settings.on_message_complete = on_message_complete;
    uv_timer_init(loop, &c->sweep);
    c->sweep.data = c;
    return c;
}

int http_client_tls_setup(struct http_client *c, const char *ca_file, bool insecure, const char **err)
{
    tls_config_free(c->tls);
    c->tls = tls_config_new(ca_file, insecure);
    /* A CA file the operator named is loaded now: a wrong path must stop
     * start-up, not the first redeploy. Otherwise on the first https call. */
    return ca_file && !insecure ? tls_config_load(c->tls, err) : 0;
}

static void build_request(struct http_call *call, const struct http_client_opts *o)
{
    struct buf *r = &call->request;
    /* One allocation: the line, Host, the caller's headers, framing, body. */
    buf_reserve(r, strlen(o->method) + strlen(o->path) + strlen(o->host_header) + (o->headers ? strlen(o->headers) : 0) +
                       (o->body ? o->body_len : 0) + 96);
    buf_puts(r, o->method);
    buf_putc(r, ' ');
    buf_puts(r, o->path);
    buf_puts(r, " HTTP/1.1\r\nHost: ");
    buf_puts(r, o->host_header);
    buf_puts(r, "\r\n");
    if (o->headers) buf_puts(r, o->headers);
    if (o->body) {
        buf_puts(r, "Content-Length: ");
        buf_put_uint(r, o->body_len);
        buf_puts(r, "\r\n");
    }
    buf_puts(r, o->keep_alive ? "\r\n" : "Connection: close\r\n\r\n");
    if (o->body) buf_append(r, o->body, o->body_len);
}

struct http_call *http_client_request(struct http_client *c, const struct http_endpoint *ep,
                                      const struct http_client_opts *opts)
{
    struct http_call *call = call_new(c);
    call->client = c;
    call->o = *opts;
    call->o.head_request = opts->head_request || strcmp(opts->method, "HEAD") == 0;
    call->o.method = call->o.host_header = call->o.path = call->o.headers = call->o.body = NULL;
    call->next = c->calls;
    if (c->calls) c->calls->prev = call;
    c->calls = call;
    build_request(call, opts);
    llhttp_init(&call->parser, HTTP_RESPONSE, &c->settings);
    call->parser.data = call;
    uv_timer_init(c->loop, &call->timer);
    call->timer.data = call;

    if (c->closing) call->deferred_err = -ECANCELED;
    else if (ep->tls && (!c->tls || ep->unix_path)) call->deferred_err = -EPROTONOSUPPORT;
    else if (!ep->unix_path && !ep->host) call->deferred_err = -EINVAL;
    const char *why;
    if (!call->deferred_err && ep->tls && tls_config_load(c->tls, &why) < 0) {
        LOG(c->log, LOG_ERROR, "cannot set up TLS", F_STR("error", why));
        call->deferred_err = -EPROTO;
    }
    if (call->deferred_err) {
        /* Reported from the loop, never from inside this call. */
        uv_timer_start(&call->timer, on_timer, 0, 0);
        return call;
    }
    call->started_ms = uv_now(c->loop);
    call->unix_path = xstrdup_or_null(ep->unix_path);
    call->host = ep->host && !ep->unix_path ? xstrdup(ep->host) : NULL;
    call->port = ep->port;
    call->tls = ep->tls;
    if (call->unix_path) call->o.keep_alive = false;
    start_connect(call);
    return call;
}

void http_call_cancel(struct http_call *call)
{
    if (!call || call->done) return;
    call->cancelled = true;
    call_finish(call, -ECANCELED);
}

static void on_sweep_closed(uv_handle_t *h)
{
    struct http_client *c = h->data;
    c->sweep_closed = true;
    client_maybe_free(c);
}

void http_client_close(struct http_client *c, void (*cb)(void *ud), void *ud)
{
    if (CLOSE_BEGIN(c, cb, ud)) return;
    for (struct http_call *call = c->calls; call; call = call->next) http_call_cancel(call);
    while (c->idle) {
        struct conn *conn = c->idle;
        c->idle = conn->next_idle;
        c->nidle--;
        conn_close(conn);
    }
    /* The timer lives inside c: c may go only after its close callback
     * (libuv still touches a closing handle on the next loop turn). */
    uv_timer_stop(&c->sweep);
    uv_close((uv_handle_t *)&c->sweep, on_sweep_closed);
}

const char *http_client_strerror(int err)
{
    switch (err) {
    case 0: return "ok";
    case -ETIMEDOUT: return "timed out";
    case -ECONNREFUSED: return "connection refused";
    case -ECONNRESET: return "connection closed before the answer was complete";
    case -EPROTO: return "malformed HTTP response";
    case -E2BIG: return "response too large";
    case -ENOENT: return "unknown host (DNS: no such name)";
    case -EKEYREJECTED: return "certificate verify failed";
    case -ECONNABORTED: return "TLS handshake failed";
    case -EPROTONOSUPPORT: return "https is not set up";
    case -ECANCELED: return "cancelled";
    case -EINVAL: return "invalid request";
    default: return uv_strerror(err);
    }
}

unsigned long http_client_connections_opened(const struct http_client *c)
{
    return c->opened;
}

void http_endpoint_free(struct http_endpoint *ep)
{
    free(ep->unix_path);
    free(ep->host);
    memset(ep, 0, sizeof *ep);
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

long long http_retry_after_ms(const char *value, long long now)
{
    if (!value) return -1;
    while (is_blank(*value)) value++;
    size_t n = strlen(value);
    while (n && is_blank(value[n - 1])) n--;
    if (!n) return -1;
    char v[64];
    if (n >= sizeof v) return -1;
    memcpy(v, value, n);
    v[n] = '\0';
    if (v[0] >= '0' && v[0] <= '9') {
        /* delay-seconds: clamped digit by digit, so no value can overflow. */
        long long ms = 0;
        for (const char *p = v; *p; p++) {
            if (*p < '0' || *p > '9') return -1;
            if (ms < RETRY_AFTER_MAX_MS) ms = ms * 10 + (*p - '0') * 1000;
        }
        return ms > RETRY_AFTER_MAX_MS ? RETRY_AFTER_MAX_MS : ms;
    }
    /* HTTP-date, IMF-fixdate form: "Sun, 06 Nov 1994 08:49:37 GMT". */
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end) return -1;
    long long at = (long long)timegm(&tm);
    if (at <= now) return 0;
    long long secs = at - now;
    return secs >= RETRY_AFTER_MAX_MS / 1000 ? RETRY_AFTER_MAX_MS : secs * 1000;
}
