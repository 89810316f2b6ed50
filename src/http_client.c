/* http_client.c - one non-blocking HTTP/1.1 client for the whole program.
 *
 * A call is one request and its response on its own connection (unix socket
 * or TCP, trying each resolved address in turn). The response goes through
 * llhttp, so the caller sees the status, headers and the de-framed body,
 * either streamed (the endless Docker /events) or collected (forwards).
 *
 * Lifetime: a call ends exactly once (finish), which closes its handles; the
 * memory goes when the last close callback ran. Callbacks into the caller
 * may cancel the call; the struct stays valid until then, so code after a
 * callback only checks call->done. */
#include "http_client.h"

#include <errno.h>
#include <arpa/inet.h>
#include <llhttp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"

#define READ_BUF_SIZE (64 * 1024)
#define DEFAULT_MAX_BODY (1024 * 1024)
#define MAX_RESPONSE_HEADERS 64

struct header {
    char *name;
    char *value;
};

struct http_client {
    uv_loop_t *loop;
    struct dns *dns;
    const struct logger *log;
    struct http_call *calls;      /* every call not yet freed */
    bool closing;
    llhttp_settings_t settings;   /* the same callbacks for every call */
    SSL_CTX *tls;                 /* NULL until http_client_tls_setup */
    bool tls_insecure;
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

    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } conn;
    bool conn_open;               /* conn initialised and not yet closed */
    uv_timer_t timer;             /* deferred errors, then connect, then response timeout */
    uv_connect_t connect_req;
    int open_handles;

    /* TLS runs over memory BIOs: OpenSSL never touches the socket, so the
     * socket stays libuv's and nothing blocks. */
    SSL *ssl;
    bool handshake_done;

    struct dns_query *dns_query;
    struct sockaddr_storage addrs[DNS_MAX_ADDRS];
    size_t naddrs, next_addr;
    int last_err;
    int deferred_err;

    llhttp_t parser;
    struct header headers[MAX_RESPONSE_HEADERS];
    size_t nheaders;
    bool in_value;
    struct buf field, value;
    struct buf body;
    int status;
    int parse_err;                /* set by parser callbacks */
    bool complete;
    bool done;
    bool cancelled;
};

static void call_finish(struct http_call *call, int err);
static void try_next_addr(struct http_call *call);

struct wreq {
    uv_write_t req;
    struct http_call *call;
    char data[];
};

/* ---- lifetime ----------------------------------------------------------- */

static void client_free(struct http_client *c)
{
    if (c->tls) SSL_CTX_free(c->tls);
    free(c);
}

static void call_free(struct http_call *call)
{
    struct http_client *c = call->client;
    if (call->prev) call->prev->next = call->next;
    else c->calls = call->next;
    if (call->next) call->next->prev = call->prev;
    for (size_t i = 0; i < call->nheaders; i++) {
        free(call->headers[i].name);
        free(call->headers[i].value);
    }
    buf_free(&call->field);
    buf_free(&call->value);
    buf_free(&call->body);
    buf_free(&call->request);
    if (call->ssl) SSL_free(call->ssl);
    free(call->unix_path);
    free(call->host);
    free(call);
    if (c->closing && !c->calls) client_free(c);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct http_call *call = h->data;
    if (--call->open_handles == 0 && call->done) call_free(call);
}

static void close_conn(struct http_call *call, uv_close_cb cb)
{
    if (!call->conn_open) return;
    call->conn_open = false;
    uv_close(&call->conn.handle, cb);
}

/* Ends the call once: stop everything, tell the caller (unless cancelled). */
static void call_finish(struct http_call *call, int err)
{
    if (call->done) return;
    call->done = true;
    if (call->dns_query) dns_cancel(call->dns_query);
    call->dns_query = NULL;
    uv_timer_stop(&call->timer);
    close_conn(call, on_handle_closed);
    uv_close((uv_handle_t *)&call->timer, on_handle_closed);
    if (!call->cancelled && call->o.on_done)
        call->o.on_done(call->o.ud, err, call->status, call->body.data ? call->body.data : "",
                        call->body.len);
}

/* ---- response parsing --------------------------------------------------- */

static struct http_call *parser_call(llhttp_t *p)
{
    return p->data;
}

static void push_header(struct http_call *call)
{
    if (!call->field.len) return;
    if (call->nheaders < MAX_RESPONSE_HEADERS) {
        call->headers[call->nheaders].name = buf_steal(&call->field);
        call->headers[call->nheaders].value = buf_steal(&call->value);
        call->nheaders++;
    }
    buf_reset(&call->field);
    buf_reset(&call->value);
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct http_call *call = parser_call(p);
    if (call->in_value) {
        push_header(call);
        call->in_value = false;
    }
    buf_append(&call->field, at, len);
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct http_call *call = parser_call(p);
    call->in_value = true;
    buf_append(&call->value, at, len);
    return 0;
}

static const char *get_header(void *ctx, const char *name)
{
    struct http_call *call = ctx;
    for (size_t i = 0; i < call->nheaders; i++)
        if (strcasecmp(call->headers[i].name, name) == 0) return call->headers[i].value;
    return NULL;
}

static int on_headers_complete(llhttp_t *p)
{
    struct http_call *call = parser_call(p);
    push_header(call);
    call->status = p->status_code;
    if (call->o.on_head) call->o.on_head(call->o.ud, call->status, get_header, call);
    return call->done ? -1 : 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    struct http_call *call = parser_call(p);
    if (call->o.on_body) {
        call->o.on_body(call->o.ud, at, len);
        return call->done ? -1 : 0;
    }
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
    struct http_call *call = parser_call(p);
    call->complete = true;
    /* One response per call: anything after it is not ours to read. */
    return HPE_PAUSED;
}

/* ---- I/O ---------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    struct http_call *call = h->data;
    b->base = call->client->read_buf;
    b->len = sizeof call->client->read_buf;
}

static void on_write(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct http_call *call = w->call;
    free(w);
    if (status < 0 && !call->done) call_finish(call, status);
}

static int conn_write(struct http_call *call, const char *data, size_t len)
{
    struct wreq *w = xmalloc(sizeof *w + len);
    w->call = call;
    memcpy(w->data, data, len);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
    int rc = uv_write(&w->req, &call->conn.stream, &b, 1, on_write);
    if (rc < 0) free(w);
    return rc;
}

/* Sends whatever OpenSSL queued for the network. */
static int tls_flush(struct http_call *call)
{
    BIO *wbio = SSL_get_wbio(call->ssl);
    char tmp[16 * 1024];
    int n;
    while ((n = BIO_read(wbio, tmp, sizeof tmp)) > 0) {
        int rc = conn_write(call, tmp, (size_t)n);
        if (rc < 0) return rc;
    }
    return 0;
}

/* Why a handshake failed, as an errno and a line for the log. */
static int tls_failure(struct http_call *call)
{
    long vr = SSL_get_verify_result(call->ssl);
    char detail[256];
    int err;
    if (vr != X509_V_OK) {
        snprintf(detail, sizeof detail, "certificate verification failed: %s",
                 X509_verify_cert_error_string(vr));
        err = -EKEYREJECTED;
    } else {
        unsigned long e = ERR_peek_last_error();
        const char *why = e ? ERR_reason_error_string(e) : NULL;
        snprintf(detail, sizeof detail, "%s", why ? why : "handshake failed");
        err = -ECONNABORTED;
    }
    ERR_clear_error();
    LOG(call->client->log, LOG_WARN, "tls handshake failed", F_STR("host", call->host),
        F_INT("port", call->port), F_STR("error", detail));
    return err;
}

static void send_request(struct http_call *call)
{
    int rc;
    if (call->ssl)
        rc = SSL_write(call->ssl, call->request.data, (int)call->request.len) > 0 ? tls_flush(call)
                                                                                   : -ECONNABORTED;
    else
        rc = conn_write(call, call->request.data, call->request.len);
    if (rc < 0) call_finish(call, rc);
}

/* Drives the handshake; sends the request once it completed. */
static void tls_step(struct http_call *call)
{
    int r = SSL_do_handshake(call->ssl);
    if (tls_flush(call) < 0) {
        call_finish(call, -ECONNRESET);
        return;
    }
    if (r == 1) {
        call->handshake_done = true;
        send_request(call);
        return;
    }
    int e = SSL_get_error(call->ssl, r);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) call_finish(call, tls_failure(call));
}

/* Hands response bytes to llhttp; returns false once the call is over. */
static bool parse_bytes(struct http_call *call, const char *data, size_t len)
{
    llhttp_errno_t e = llhttp_execute(&call->parser, data, len);
    if (call->done) return false;   /* a callback cancelled or finished the call */
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

/* EOF (or TLS close_notify) completes a body that has no framing:
 * llhttp_finish then runs on_message_complete (and returns its
 * HPE_PAUSED). Anywhere else it is a cut. */
static void on_eof(struct http_call *call)
{
    llhttp_finish(&call->parser);
    call_finish(call, call->complete ? 0 : -ECONNRESET);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct http_call *call = s->data;
    if (call->done) return;
    if (nread < 0) {
        if (nread != UV_EOF) call_finish(call, (int)nread);
        else if (call->ssl && !call->handshake_done) call_finish(call, tls_failure(call));
        else on_eof(call);
        return;
    }
    if (nread == 0) return;
    if (!call->ssl) {
        parse_bytes(call, b->base, (size_t)nread);
        return;
    }
    BIO_write(SSL_get_rbio(call->ssl), b->base, (int)nread);
    if (!call->handshake_done) {
        tls_step(call);
        if (call->done || !call->handshake_done) return;
    }
    char plain[16 * 1024];
    int n;
    while ((n = SSL_read(call->ssl, plain, sizeof plain)) > 0)
        if (!parse_bytes(call, plain, (size_t)n)) return;
    int e = SSL_get_error(call->ssl, n);
    if (e == SSL_ERROR_ZERO_RETURN) on_eof(call);
    else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) call_finish(call, -ECONNABORTED);
    else if (tls_flush(call) < 0) call_finish(call, -ECONNRESET);
}

static bool is_ip_literal(const char *host)
{
    unsigned char tmp[16];
    return inet_pton(AF_INET, host, tmp) == 1 || inet_pton(AF_INET6, host, tmp) == 1;
}

static int tls_start(struct http_call *call)
{
    struct http_client *c = call->client;
    call->ssl = SSL_new(c->tls);
    if (!call->ssl) return -ENOMEM;
    SSL_set_bio(call->ssl, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
    SSL_set_connect_state(call->ssl);
    if (is_ip_literal(call->host)) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(call->ssl), call->host);
    } else {
        SSL_set_tlsext_host_name(call->ssl, call->host);   /* SNI */
        SSL_set1_host(call->ssl, call->host);              /* hostname verification */
    }
    SSL_set_verify(call->ssl, c->tls_insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    return 0;
}

static void on_timer(uv_timer_t *t)
{
    struct http_call *call = t->data;
    call_finish(call, call->deferred_err ? call->deferred_err : -ETIMEDOUT);
}

static void on_connected(struct http_call *call)
{
    uv_timer_stop(&call->timer);
    if (call->o.response_timeout_ms)
        uv_timer_start(&call->timer, on_timer, call->o.response_timeout_ms, 0);
    int rc = uv_read_start(&call->conn.stream, on_alloc, on_read);
    if (rc < 0) {
        call_finish(call, rc);
        return;
    }
    if (!call->tls) {
        send_request(call);
        return;
    }
    rc = tls_start(call);
    if (rc < 0) call_finish(call, rc);
    else tls_step(call);
}

static void on_retry_closed(uv_handle_t *h)
{
    struct http_call *call = h->data;
    call->open_handles--;
    if (call->done) {
        if (call->open_handles == 0) call_free(call);
        return;
    }
    try_next_addr(call);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct http_call *call = req->data;
    if (call->done) return;
    if (status == 0) {
        on_connected(call);
        return;
    }
    call->last_err = status;
    if (call->unix_path || call->next_addr >= call->naddrs) {
        call_finish(call, status);
        return;
    }
    /* Another address to try: a handle cannot be reused before it closed. */
    close_conn(call, on_retry_closed);
}

static void try_next_addr(struct http_call *call)
{
    if (call->next_addr >= call->naddrs) {
        call_finish(call, call->last_err ? call->last_err : -ECONNREFUSED);
        return;
    }
    const struct sockaddr *sa = (const struct sockaddr *)&call->addrs[call->next_addr++];
    uv_tcp_init(call->client->loop, &call->conn.tcp);
    call->conn.handle.data = call;
    call->conn_open = true;
    call->open_handles++;
    uv_tcp_nodelay(&call->conn.tcp, 1);
    call->connect_req.data = call;
    int rc = uv_tcp_connect(&call->connect_req, &call->conn.tcp, sa, on_connect);
    if (rc < 0) {
        call->last_err = rc;
        close_conn(call, on_retry_closed);
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
    try_next_addr(call);
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
    c->settings.on_header_value = on_header_value;
    c->settings.on_headers_complete = on_headers_complete;
    c->settings.on_body = on_body;
    c->settings.on_message_complete = on_message_complete;
    return c;
}

static void build_request(struct http_call *call, const struct http_client_opts *o)
{
    struct buf *r = &call->request;
    buf_printf(r, "%s %s HTTP/1.1\r\nHost: %s\r\n", o->method, o->path, o->host_header);
    if (o->headers) buf_puts(r, o->headers);
    if (o->body) buf_printf(r, "Content-Length: %zu\r\n", o->body_len);
    buf_puts(r, "Connection: close\r\n\r\n");
    if (o->body) buf_append(r, o->body, o->body_len);
}

struct http_call *http_client_request(struct http_client *c, const struct http_endpoint *ep,
                                      const struct http_client_opts *opts)
{
    struct http_call *call = xcalloc(1, sizeof *call);
    call->client = c;
    call->o = *opts;
    call->o.method = call->o.host_header = call->o.path = call->o.headers = call->o.body = NULL;
    call->next = c->calls;
    if (c->calls) c->calls->prev = call;
    c->calls = call;
    buf_init(&call->request);
    buf_init(&call->field);
    buf_init(&call->value);
    buf_init(&call->body);
    build_request(call, opts);

    llhttp_init(&call->parser, HTTP_RESPONSE, &c->settings);
    call->parser.data = call;

    uv_timer_init(c->loop, &call->timer);
    call->timer.data = call;
    call->open_handles = 1;

    if (c->closing) {
        call->deferred_err = -ECANCELED;
    } else if (ep->tls && (!c->tls || ep->unix_path)) {
        call->deferred_err = -EPROTONOSUPPORT;   /* TLS was never set up */
    } else if (!ep->unix_path && !ep->host) {
        call->deferred_err = -EINVAL;
    }
    if (call->deferred_err) {
        uv_timer_start(&call->timer, on_timer, 0, 0);
        return call;
    }
    if (opts->connect_timeout_ms) uv_timer_start(&call->timer, on_timer, opts->connect_timeout_ms, 0);

    if (ep->unix_path) {
        call->unix_path = xstrdup(ep->unix_path);
        uv_pipe_init(c->loop, &call->conn.pipe, 0);
        call->conn.handle.data = call;
        call->conn_open = true;
        call->open_handles++;
        call->connect_req.data = call;
        /* uv_pipe_connect reports every failure through the callback. */
        uv_pipe_connect(&call->connect_req, &call->conn.pipe, call->unix_path, on_connect);
    } else {
        call->host = xstrdup(ep->host);
        call->port = ep->port;
        call->tls = ep->tls;
        call->dns_query = dns_resolve(c->dns, call->host, call->port, on_resolved, call);
    }
    return call;
}

int http_client_tls_setup(struct http_client *c, const char *ca_file, bool insecure, const char **err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        *err = "cannot create a TLS context";
        return -EINVAL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    int ok = ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                     : SSL_CTX_set_default_verify_paths(ctx);
    if (!ok) {
        ERR_clear_error();
        SSL_CTX_free(ctx);
        *err = ca_file ? "TLS_CA_FILE holds no usable PEM certificate" : "cannot load the system CA bundle";
        return -EINVAL;
    }
    if (c->tls) SSL_CTX_free(c->tls);
    c->tls = ctx;
    c->tls_insecure = insecure;
    return 0;
}

void http_call_cancel(struct http_call *call)
{
    if (!call || call->done) return;
    call->cancelled = true;
    call_finish(call, -ECANCELED);
}

void http_client_close(struct http_client *c)
{
    if (!c) return;
    c->closing = true;
    for (struct http_call *call = c->calls; call; call = call->next) http_call_cancel(call);
    if (!c->calls) client_free(c);
}

/* ---- DOCKER_HOST -------------------------------------------------------- */

int http_endpoint_parse_docker_host(const char *s, struct http_endpoint *ep, const char **err)
{
    memset(ep, 0, sizeof *ep);
    if (strncmp(s, "unix://", 7) == 0) {
        if (s[7] != '/') {
            *err = "unix:// needs an absolute socket path";
            return -EINVAL;
        }
        ep->unix_path = xstrdup(s + 7);
        return 0;
    }
    if (strncmp(s, "tcp://", 6) == 0) {
        const char *hp = s + 6;
        const char *colon = strrchr(hp, ':');
        const char *close = strchr(hp, ']');
        if (hp[0] == '[' && (!close || (colon && colon < close))) colon = NULL;
        size_t hl = colon ? (size_t)(colon - hp) : strlen(hp);
        if (hp[0] == '[' && close) {
            ep->host = xstrndup(hp + 1, (size_t)(close - hp - 1));
        } else {
            ep->host = xstrndup(hp, hl);
        }
        long port = 2375;
        if (colon) {
            char *end;
            port = strtol(colon + 1, &end, 10);
            if (*end || port < 1 || port > 65535) {
                http_endpoint_free(ep);
                *err = "tcp:// port must be 1-65535";
                return -EINVAL;
            }
        }
        if (!ep->host[0] || strchr(ep->host, '/')) {
            http_endpoint_free(ep);
            *err = "tcp:// needs host:port";
            return -EINVAL;
        }
        ep->port = (uint16_t)port;
        return 0;
    }
    *err = "expected unix:///path or tcp://host:port";
    return -EINVAL;
}

void http_endpoint_free(struct http_endpoint *ep)
{
    free(ep->unix_path);
    free(ep->host);
    memset(ep, 0, sizeof *ep);
}
