/* http_server.c - HTTP/1.1 listener: sockets, llhttp, limits, timeouts.
 *
 * Each connection parses with its own llhttp instance. Handlers are
 * synchronous, so a response is written the moment its request completes;
 * pipelined requests in one read are therefore answered in order without a
 * queue. A client that pipelines without reading its replies has its parser
 * paused (the unparsed input kept aside) until the replies drain, so a read
 * of tiny requests cannot queue unbounded reply bytes.
 *
 * One timer per connection: while a request is being received it is the
 * request deadline (slow clients get 408 however they trickle), between
 * requests the keep-alive idle limit, and once the last reply is decided a
 * bound on how long the connection may take to go away. */
#include "http_server.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <llhttp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json.h"
#include "stream.h"

#define READ_BUF_SIZE (64 * 1024)
#define MAX_PENDING_WRITE (1024 * 1024)   /* pause a client that does not read its replies */
#define LINGER_MS 2000                    /* to write a last reply, then to drain input */

struct conn {
    struct http_server *srv;
    struct conn *prev, *next;
    uv_tcp_t tcp;
    uv_timer_t timer;
    int open_handles;
    bool closing;
    bool lingering;               /* reply sent, write side shut, discarding input */
    bool in_request;              /* first byte of a request seen, not yet complete */
    bool headers_done;            /* later header callbacks are chunked trailers */
    bool close_after;             /* the reply in flight is the last; input is discarded */
    bool reading;
    bool paused;                  /* parser paused: too many replies queued unwritten */
    int pending_writes;
    char peer[64];

    llhttp_t parser;
    struct buf url;
    struct buf hstore;            /* "name\0value\0name\0value\0..." */
    size_t *hoffs;                /* offsets of names and values in hstore */
    size_t nhoffs, capoffs;
    bool in_value;
    size_t header_bytes;
    struct buf body;              /* its len counts in srv->buffered */
    size_t query_at;              /* offset of the query in url once split; 0: none */
    struct buf stash;             /* received but not yet parsed while paused */
    int error_status;             /* set by a parser callback that refuses the request */
    const char *error_msg;
    uint64_t deadline;            /* loop time when the running phase times out; 0: none */
    uint64_t timer_due;           /* when the timer, if lazily armed, fires */
    bool timer_lazy;              /* the timer runs on_timer and may fire before deadline */
};

struct http_server {
    uv_loop_t *loop;
    struct http_server_opts o;
    char *addr;
    uv_tcp_t listener;
    bool listener_open;
    int port;
    struct conn *conns;
    size_t nconns;
    bool stopping;
    bool closing;
    bool cap_warned;              /* one warning per episode of hitting max_connections */
    size_t buffered;              /* request-body bytes held by all connections */
    bool buffer_warned;           /* one warning per episode of hitting max_buffered_bytes */
    bool paused;                  /* http_server_pause: no connection reads */
    int open_handles;             /* listener + every connection's handles */
    struct close_cb closed;
    llhttp_settings_t settings;
    /* Handlers run one at a time, so one response and one header array
     * serve every connection; reused, they cost no allocation per request. */
    struct http_response res;
    struct buf out;
    struct http_header *hdrs;
    size_t caphdrs;
    char read_buf[READ_BUF_SIZE];
};


static void conn_close(struct conn *c);

/* ---- helpers for handlers ---------------------------------------------- */

const char *http_request_header(const struct http_request *req, const char *name)
{
    /* Handlers look up several headers per request: reject on the first
     * letter before the full comparison. */
    unsigned char first = (unsigned char)(*name | 0x20);
    for (size_t i = 0; i < req->nheaders; i++)
        if (((unsigned char)*req->headers[i].name | 0x20) == first && strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}

const char *http_status_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}

void http_response_error(struct http_response *res, int status, const char *msg)
{
    res->status = status;
    res->content_type = "application/json";
    buf_reset(&res->body);
    buf_puts(&res->body, "{\"error\":");
    json_put_str(&res->body, msg);
    buf_putc(&res->body, '}');
}

/* ---- lifetime ----------------------------------------------------------- */

static void server_maybe_free(struct http_server *s)
{
    if (s->closing && s->open_handles == 0) {
        struct close_cb closed = s->closed;
        free(s->addr);
        free(s->hdrs);
        buf_free(&s->res.headers);
        buf_free(&s->res.body);
        buf_free(&s->out);
        free(s);
        close_cb_call(closed);
    }
}

static void conn_handle_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    struct http_server *s = c->srv;
    s->open_handles--;
    if (--c->open_handles > 0) return;
    if (c->prev) c->prev->next = c->next;
    else s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    s->nconns--;
    buf_free(&c->url);
    buf_free(&c->hstore);
    buf_free(&c->body);
    buf_free(&c->stash);
    free(c->hoffs);
    free(c);
    server_maybe_free(s);
}

/* A body is counted while it is held: whatever ends a request (handled,
 * refused, reset, the connection gone) gives its bytes back here. */
static void release_body(struct conn *c)
{
    c->srv->buffered -= c->body.len;
    if (c->body.cap > 64 * 1024) buf_free(&c->body);   /* a large body is not kept for the next */
    else buf_reset(&c->body);
}

static void conn_close(struct conn *c)
{
    if (c->closing) return;
    release_body(c);
    c->closing = true;
    uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

static void reset_request(struct conn *c)
{
    buf_reset(&c->url);
    buf_reset(&c->hstore);
    release_body(c);
    c->query_at = 0;
    c->nhoffs = 0;
    c->in_value = false;
    c->headers_done = false;
    c->header_bytes = 0;
    c->in_request = false;
}

/* ---- writing ------------------------------------------------------------ */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b);
static void conn_resume(struct conn *c);

static void start_reading(struct conn *c)
{
    if (c->reading || c->closing || c->srv->paused) return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0) c->reading = true;
}

static void stop_reading(struct conn *c)
{
    if (!c->reading) return;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
}

static void on_close_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    free(req);
}

/* Once the last reply is written: shut our side and keep discarding what the
 * client still sends for a moment, so a large refused upload does not turn
 * into a reset that destroys the reply before the client read it. */
static void finish_conn(struct conn *c)
{
    if (c->closing || c->lingering) return;
    c->lingering = true;
    uv_shutdown_t *req = xmalloc(sizeof *req);
    if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
        free(req);
        conn_close(c);
        return;
    }
    start_reading(c);
    c->timer_lazy = false;
    uv_timer_start(&c->timer, on_close_timeout, LINGER_MS, 0);
}

static void on_written(void *ud, int status)
{
    struct conn *c = ud;
    c->pending_writes--;
    if (c->closing) return;
    if (status < 0) {
        LOG(c->srv->o.log, LOG_DEBUG, "http write failed", F_STR("peer", c->peer),
            F_STR("error", uv_strerror(status)));
        conn_close(c);
        return;
    }
    if (c->close_after) {
        if (c->pending_writes == 0) finish_conn(c);
        return;
    }
    /* A client that stopped reading its replies was paused; go on once it
     * has caught up with half of them. */
    if (c->paused && uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) < MAX_PENDING_WRITE / 2)
        conn_resume(c);
}

static void conn_write(struct conn *c, const char *data, size_t len)
{
    if (c->closing) return;
    /* A closing reply takes the queued path: its completion callback ends
     * the connection. */
    int rc = stream_write((uv_stream_t *)&c->tcp, data, len, c->pending_writes == 0 && !c->close_after,
                          on_written, c);
    if (rc < 0) {
        LOG(c->srv->o.log, LOG_DEBUG, "http write failed", F_STR("peer", c->peer), F_STR("error", uv_strerror(rc)));
        conn_close(c);
    } else if (rc == 1) {
        c->pending_writes++;
    }
}

/* Big buffers are not kept between requests: one large /routes reply
 * must not pin its size for the life of the process. */
static void buf_recycle(struct buf *b)
{
    if (b->cap > 64 * 1024) buf_free(b);
    else buf_reset(b);
}

static void send_response(struct conn *c, struct http_response *res, bool head_only)
{
    struct buf *out = &c->srv->out;
    buf_reset(out);
    buf_puts(out, "HTTP/1.1 ");
    buf_put_uint(out, (size_t)res->status);
    buf_putc(out, ' ');
    buf_puts(out, http_status_reason(res->status));
    buf_puts(out, "\r\nContent-Type: ");
    buf_puts(out, res->content_type ? res->content_type : "application/json");
    buf_puts(out, "\r\nContent-Length: ");
    buf_put_uint(out, res->body.len);
    buf_puts(out, "\r\n");
    if (res->headers.len) buf_append(out, res->headers.data, res->headers.len);
    /* Always explicit: an HTTP/1.0 client only keeps the connection when
     * told so, and a closing reply tells the client not to pipeline more. */
    buf_puts(out, c->close_after ? "Connection: close\r\n\r\n" : "Connection: keep-alive\r\n\r\n");
    if (!head_only && res->body.len) buf_append(out, res->body.data, res->body.len);
    conn_write(c, out->data, out->len);
    buf_recycle(out);
}

/* Refuses the request in progress and ends the connection. The reply gets a
 * bounded time to be written (finish_conn takes over once it is). */
static void send_error(struct conn *c, int status, const char *msg)
{
    struct http_response res = {0};
    buf_init(&res.headers);
    buf_init(&res.body);
    http_response_error(&res, status, msg);
    release_body(c);   /* the refused request's body is of no more use */
    c->close_after = true;
    send_response(c, &res, false);
    buf_free(&res.headers);
    buf_free(&res.body);
    if (!c->closing) {
        c->timer_lazy = false;
        uv_timer_start(&c->timer, on_close_timeout, LINGER_MS, 0);
    }
    LOG(c->srv->o.log, LOG_DEBUG, "http request refused", F_STR("peer", c->peer), F_INT("status", status),
        F_STR("error", msg));
}

/* ---- parsing ------------------------------------------------------------ */

static int refuse(struct conn *c, int status, const char *msg)
{
    c->error_status = status;
    c->error_msg = msg;
    return -1;
}

static int count_header_bytes(struct conn *c, size_t len)
{
    c->header_bytes += len;
    if (c->header_bytes > c->srv->o.max_header_bytes)
        return refuse(c, 431, "request headers too large");
    return 0;
}

static void push_off(struct conn *c, size_t off)
{
    if (c->nhoffs == c->capoffs) {
        c->capoffs = c->capoffs ? c->capoffs * 2 : 16;
        c->hoffs = xrealloc(c->hoffs, c->capoffs * sizeof *c->hoffs);
    }
    c->hoffs[c->nhoffs++] = off;
}

static void on_timer(uv_timer_t *t)
{
    struct conn *c = t->data;
    if (c->closing) return;
    uint64_t now = uv_now(c->srv->loop);
    if (c->deadline > now) {   /* armed lazily for an earlier deadline: wait for the rest */
        c->timer_due = c->deadline;
        uv_timer_start(&c->timer, on_timer, c->deadline - now, 0);
        return;
    }
    if (c->in_request && !c->close_after) {
        /* A request deadline, not an inactivity one: trickling bytes does
         * not buy a slow client more time. */
        stop_reading(c);
        send_error(c, 408, "request not received in time");
    } else {
        /* Idle keep-alive connection, or a last reply the client does not
         * read: nothing more to say on it. */
        conn_close(c);
    }
}

/* Called twice per request, so it avoids touching the timer heap: a timer
 * already due at or before the new deadline is left alone, and on_timer
 * re-arms for whatever remains when it fires early. */
static void arm_timer(struct conn *c)
{
    const struct http_server_opts *o = &c->srv->o;
    uint64_t ms = c->in_request ? o->request_timeout_ms : o->idle_timeout_ms;
    if (!ms) {
        c->deadline = 0;
        c->timer_lazy = false;
        uv_timer_stop(&c->timer);
        return;
    }
    c->deadline = uv_now(c->srv->loop) + ms;
    if (c->timer_lazy && uv_is_active((uv_handle_t *)&c->timer) && c->timer_due <= c->deadline) return;
    c->timer_lazy = true;
    c->timer_due = c->deadline;
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

static int on_message_begin(llhttp_t *p)
{
    struct conn *c = p->data;
    reset_request(c);
    c->in_request = true;
    arm_timer(c);
    return 0;
}

/* Header bytes are counted as they would appear on the wire, separators
 * included, so many tiny headers cannot slip past max_header_bytes. */
static int on_method(llhttp_t *p, const char *at, size_t len)
{
    return count_header_bytes(p->data, len + 1);   /* "GET " */
}

static int on_version(llhttp_t *p, const char *at, size_t len)
{
    return count_header_bytes(p->data, len + 8);   /* " HTTP/" "1.1" "\r\n" */
}

static int on_header_value_complete(llhttp_t *p)
{
    return count_header_bytes(p->data, 4);          /* ": " "\r\n" */
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    buf_append(&c->url, at, len);
    return count_header_bytes(c, len);
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    /* Chunked trailers are counted but not kept: the request the handler
     * sees is the one announced before the body. */
    if (c->headers_done) return count_header_bytes(c, len);
    if (c->in_value || c->nhoffs == 0) {
        if (c->in_value) buf_putc(&c->hstore, '\0');
        push_off(c, c->hstore.len);
        c->in_value = false;
    }
    buf_append(&c->hstore, at, len);
    return count_header_bytes(c, len);
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    if (c->headers_done) return count_header_bytes(c, len);
    if (!c->in_value) {
        buf_putc(&c->hstore, '\0');
        push_off(c, c->hstore.len);
        c->in_value = true;
    }
    buf_append(&c->hstore, at, len);
    return count_header_bytes(c, len);
}

static const char *stored_header(struct conn *c, const char *name)
{
    for (size_t i = 0; i + 1 < c->nhoffs; i += 2)
        if (strcasecmp(c->hstore.data + c->hoffs[i], name) == 0) return c->hstore.data + c->hoffs[i + 1];
    return NULL;
}

/* Splits the target once the head is complete: path, query, no fragment. */
static void split_url(struct conn *c)
{
    buf_putc(&c->url, '\0');
    char *path = c->url.data;
    char *q = strchr(path, '?');
    if (q) {
        *q++ = '\0';
        c->query_at = (size_t)(q - path);
    }
    char *hash = strchr(q ? q : path, '#');
    if (hash) *hash = '\0';
}

/* Trims header value whitespace in place (llhttp leaves trailing blanks). */
static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = '\0';
    return s;
}

/* The request as handlers see it, from the head and what body there is
 * (none yet at the head stage). Safe to call twice: trimming is idempotent. */
static void build_request(struct conn *c, const llhttp_t *p, struct http_request *req)
{
    struct http_server *s = c->srv;
    size_t nh = c->nhoffs / 2;
    if (nh > s->caphdrs) {
        s->caphdrs = nh < 32 ? 32 : nh;
        s->hdrs = xrealloc(s->hdrs, s->caphdrs * sizeof *s->hdrs);
    }
    struct http_header *hs = s->hdrs;
    for (size_t i = 0; i < nh; i++) {
        hs[i].name = c->hstore.data + c->hoffs[2 * i];
        hs[i].value = trim(c->hstore.data + c->hoffs[2 * i + 1]);
    }
    *req = (struct http_request){
        .method = llhttp_method_name((llhttp_method_t)p->method),
        .path = c->url.data,
        .query = c->query_at ? c->url.data + c->query_at : "",
        .headers = hs,
        .nheaders = nh,
        .body = c->body.data ? c->body.data : "",
        .body_len = c->body.len,
        .peer = c->peer,
    };
}

/* Whether n more body bytes fit under the server-wide cap. Bodies being
 * received cost memory before anyone knows whether they are wanted: many
 * slow uploads must not add up to more than the operator allowed. */
static bool body_fits(struct conn *c, uint64_t n)
{
    struct http_server *s = c->srv;
    size_t cap = s->o.max_buffered_bytes;
    if (!cap || (s->buffered <= cap && n <= cap - s->buffered)) return true;
    /* Under a flood one warning says it all; the rest go to debug. */
    LOG(s->o.log, s->buffer_warned ? LOG_DEBUG : LOG_WARN, "request refused: request bodies at the buffer cap",
        F_STR("peer", c->peer), F_INT("buffered", s->buffered), F_INT("max_buffered_bytes", cap));
    s->buffer_warned = true;
    return false;
}

#define BUSY_MSG "server busy receiving other request bodies, retry later"

/* Offers the head to the head handler; true when it answered (the
 * connection then ends without reading the body). */
static bool answer_head(struct conn *c, const llhttp_t *p)
{
    struct http_server *s = c->srv;
    struct http_request req;
    build_request(c, p, &req);
    struct http_response *res = &s->res;
    res->status = 0;
    res->content_type = NULL;
    s->o.head_handler(s->o.ud, &req, res);
    bool answered = res->status != 0;
    if (answered) {
        c->close_after = true;
        send_response(c, res, strcmp(req.method, "HEAD") == 0);
        LOG(s->o.log, LOG_DEBUG, "http request answered at its head", F_STR("peer", c->peer),
            F_INT("status", res->status));
    }
    buf_recycle(&res->headers);
    buf_recycle(&res->body);
    if (answered) {
        reset_request(c);
        if (!c->closing) {   /* a bounded time to write the reply, as send_error */
            c->timer_lazy = false;
            uv_timer_start(&c->timer, on_close_timeout, LINGER_MS, 0);
        }
    }
    return answered;
}

static int on_headers_complete(llhttp_t *p)
{
    struct conn *c = p->data;
    if (c->nhoffs % 2) {   /* a name without a value */
        buf_putc(&c->hstore, '\0');
        push_off(c, c->hstore.len);
    }
    buf_putc(&c->hstore, '\0');
    split_url(c);
    c->headers_done = true;
    bool has_length = p->flags & F_CONTENT_LENGTH;
    if (has_length && p->content_length > c->srv->o.max_body_bytes)
        return refuse(c, 413, "request body too large");
    /* Before 100 Continue and before any body byte is kept. A paused parser
     * stops here; conn_parse then ends the connection once the reply is out. */
    if (c->srv->o.head_handler && answer_head(c, p)) return HPE_PAUSED;
    if (has_length && !body_fits(c, p->content_length)) return refuse(c, 503, BUSY_MSG);
    const char *expect = stored_header(c, "expect");
    if (expect && strcasecmp(expect, "100-continue") == 0 && p->http_minor >= 1) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        conn_write(c, cont, sizeof cont - 1);
    }
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    if (c->body.len + len > c->srv->o.max_body_bytes) return refuse(c, 413, "request body too large");
    if (!body_fits(c, len)) return refuse(c, 503, BUSY_MSG);
    buf_append(&c->body, at, len);
    c->srv->buffered += len;
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct conn *c = p->data;
    struct http_server *s = c->srv;
    struct http_request req;
    build_request(c, p, &req);
    if (req.body_len) s->buffer_warned = false;   /* a body was taken whole: the episode is over */
    struct http_response *res = &s->res;
    res->status = 500;
    res->content_type = NULL;
    /* We never switch protocols: an Upgrade or CONNECT request gets its
     * reply and the connection ends, as llhttp stops parsing there anyway. */
    if (!llhttp_should_keep_alive(p) || p->upgrade || s->stopping) c->close_after = true;
    s->o.handler(s->o.ud, &req, res);
    send_response(c, res, strcmp(req.method, "HEAD") == 0);
    buf_recycle(&res->headers);
    buf_recycle(&res->body);
    reset_request(c);
    arm_timer(c);
    /* After a closing reply nothing else on this connection is parsed. */
    if (c->close_after || c->closing) return HPE_PAUSED;
    /* Pipelined requests can ask for far more than they weigh (a 30-byte
     * GET for a large reply): stop parsing, not just reading, while the
     * client leaves its replies unread. */
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > MAX_PENDING_WRITE) {
        c->paused = true;
        return HPE_PAUSED;
    }
    return 0;
}

/* ---- reading ------------------------------------------------------------ */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    struct conn *c = h->data;
    b->base = c->srv->read_buf;   /* consumed before the next read: one buffer for all */
    b->len = sizeof c->srv->read_buf;
}

/* Feeds input to the parser and acts on how it stopped. data is either the
 * shared read buffer or the connection's own stash (from_stash). */
static void conn_parse(struct conn *c, const char *data, size_t len, bool from_stash)
{
    llhttp_errno_t e = llhttp_execute(&c->parser, data, len);
    if (c->closing) return;
    if (e == HPE_PAUSED && c->paused) {
        /* Keep the unparsed rest until the replies drain (conn_resume). */
        size_t used = (size_t)(llhttp_get_error_pos(&c->parser) - data);
        if (from_stash) buf_consume(&c->stash, used);
        else buf_append(&c->stash, data + used, len - used);
        stop_reading(c);
        return;
    }
    if (from_stash) buf_reset(&c->stash);
    if (e == HPE_PAUSED || e == HPE_PAUSED_UPGRADE) {
        /* The reply was marked closing; stop reading and finish once written. */
        stop_reading(c);
        if (c->pending_writes == 0) finish_conn(c);
        return;
    }
    if (e != HPE_OK) {
        stop_reading(c);
        if (c->error_status) {
            send_error(c, c->error_status, c->error_msg);
        } else {
            char msg[160];
            snprintf(msg, sizeof msg, "malformed HTTP request: %s", llhttp_get_error_reason(&c->parser));
            send_error(c, 400, msg);
        }
    }
}

/* The client caught up with its replies: parse what was held back, then
 * read again. */
static void conn_resume(struct conn *c)
{
    c->paused = false;
    llhttp_resume(&c->parser);
    if (c->stash.len) conn_parse(c, c->stash.data, c->stash.len, true);
    if (c->closing || c->close_after || c->paused) return;
    start_reading(c);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b)
{
    struct conn *c = stream->data;
    if (c->closing) return;
    if (nread < 0) {
        /* EOF or error. A client that half-closes after its request still
         * gets the reply: only close once nothing is being written. */
        if (nread != UV_EOF && !c->lingering)
            LOG(c->srv->o.log, LOG_DEBUG, "http read failed", F_STR("peer", c->peer),
                F_STR("error", uv_strerror((int)nread)));
        stop_reading(c);
        if (c->lingering || c->pending_writes == 0) conn_close(c);
        else c->close_after = true;
        return;
    }
    if (nread == 0 || c->lingering || c->close_after) return;   /* discard */
    if (c->paused) {   /* not expected: reading stops with the parser */
        buf_append(&c->stash, b->base, (size_t)nread);
        stop_reading(c);
        return;
    }
    conn_parse(c, b->base, (size_t)nread, false);
}

/* ---- accepting ---------------------------------------------------------- */

static void peer_name(uv_tcp_t *t, char *out, size_t n)
{
    struct sockaddr_storage ss = {0};   /* read below even if getpeername fails */
    int len = sizeof ss;
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (uv_tcp_getpeername(t, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        }
    }
    snprintf(out, n, ss.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", ip, port);
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct http_server *s = listener->data;
    if (status < 0) {
        LOG(s->o.log, LOG_WARN, "accept failed", F_STR("error", uv_strerror(status)));
        return;
    }
    struct conn *c = xcalloc(1, sizeof *c);
    c->srv = s;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->open_handles = 2;
    s->open_handles += 2;
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    buf_init(&c->url);
    buf_init(&c->hstore);
    buf_init(&c->body);
    buf_init(&c->stash);
    llhttp_init(&c->parser, HTTP_REQUEST, &s->settings);
    c->parser.data = c;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) < 0) {
        conn_close(c);
        return;
    }
    peer_name(&c->tcp, c->peer, sizeof c->peer);
    /* Replies are written whole; Nagle would only hold the last segment of
     * a large one back waiting for an ACK. */
    uv_tcp_nodelay(&c->tcp, 1);
    if (s->nconns > s->o.max_connections) {
        /* Under a flood one warning says it all; the rest go to debug. */
        LOG(s->o.log, s->cap_warned ? LOG_DEBUG : LOG_WARN, "connection refused: too many connections",
            F_STR("peer", c->peer), F_INT("max_connections", s->o.max_connections));
        s->cap_warned = true;
        send_error(c, 503, "too many connections");
        return;
    }
    s->cap_warned = false;
    arm_timer(c);
    start_reading(c);
}

/* ---- public ------------------------------------------------------------- */

struct http_server *http_server_new(uv_loop_t *loop, const struct http_server_opts *opts)
{
    struct http_server *s = xcalloc(1, sizeof *s);
    s->loop = loop;
    s->o = *opts;
    s->addr = xstrdup(opts->addr);
    s->o.addr = s->addr;
    llhttp_settings_init(&s->settings);
    s->settings.on_message_begin = on_message_begin;
    s->settings.on_method = on_method;
    s->settings.on_version = on_version;
    s->settings.on_header_value_complete = on_header_value_complete;
    s->settings.on_url = on_url;
    s->settings.on_header_field = on_header_field;
    s->settings.on_header_value = on_header_value;
    s->settings.on_headers_complete = on_headers_complete;
    s->settings.on_body = on_body;
    s->settings.on_message_complete = on_message_complete;
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    s->listener_open = true;
    s->open_handles = 1;
    return s;
}

int http_server_listen(struct http_server *s)
{
    struct sockaddr_storage ss;
    int rc;
    if (strchr(s->addr, ':')) rc = uv_ip6_addr(s->addr, s->o.port, (struct sockaddr_in6 *)&ss);
    else rc = uv_ip4_addr(s->addr, s->o.port, (struct sockaddr_in *)&ss);
    if (rc < 0) return rc;
    rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&ss, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&s->listener, 1024, on_connection);
    if (rc < 0) return rc;
    int len = sizeof ss;
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len);
    s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    return 0;
}

int http_server_port(const struct http_server *s)
{
    return s->port;
}

size_t http_server_connections(const struct http_server *s)
{
    return s->nconns;
}

size_t http_server_buffered(const struct http_server *s)
{
    return s->buffered;
}

static void listener_closed(uv_handle_t *h)
{
    struct http_server *s = h->data;
    s->open_handles--;
    server_maybe_free(s);
}

void http_server_pause(struct http_server *s, bool pause)
{
    if (s->paused == pause) return;
    s->paused = pause;
    for (struct conn *c = s->conns; c; c = c->next) {
        if (pause) stop_reading(c);
        /* Resume what would be reading now: a lingering connection drains,
         * one waiting to write its last reply or its queued replies does not. */
        else if (c->lingering || (!c->close_after && !c->paused)) start_reading(c);
    }
}

void http_server_stop(struct http_server *s)
{
    if (s->stopping) return;
    s->stopping = true;
    if (s->listener_open) {
        s->listener_open = false;
        uv_close((uv_handle_t *)&s->listener, listener_closed);
    }
    /* A request being received is still answered (on_message_complete sees
     * s->stopping and sends Connection: close); a reply being written is
     * finished; idle keep-alive connections have nothing left to do. */
    for (struct conn *c = s->conns; c; c = c->next) {
        if (c->in_request) continue;
        if (c->pending_writes == 0) conn_close(c);
        else c->close_after = true;
    }
}

void http_server_close(struct http_server *s, void (*cb)(void *ud), void *ud)
{
    if (CLOSE_BEGIN(s, cb, ud)) return;
    http_server_stop(s);
    for (struct conn *c = s->conns; c; c = c->next) conn_close(c);
    server_maybe_free(s);
}
