/* http_client.h - non-blocking HTTP/1.1 client over TCP or a unix socket.
 *
 * One code path serves both the Docker watcher (GET over the Docker socket,
 * including the endless chunked /events stream) and the forwarder (POST to
 * webhook URLs). The response is parsed with llhttp, so chunked and
 * content-length bodies arrive de-framed. */
#ifndef WR_HTTP_CLIENT_H
#define WR_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "dns.h"
#include "log.h"

struct http_endpoint {
    char *unix_path;      /* non-NULL: connect to this unix socket */
    char *host;           /* else: DNS name or numeric address */
    uint16_t port;
    bool tls;             /* https: TLS with SNI and certificate + hostname verification */
};

struct http_client_opts {
    const char *method;         /* "GET", "POST" */
    const char *host_header;    /* value of Host: */
    const char *path;           /* request target, e.g. "/v1.41/events?..." */
    const char *headers;        /* extra raw header lines "Name: value\r\n", or NULL */
    const char *body;           /* NULL for none */
    size_t body_len;
    uint64_t connect_timeout_ms;  /* DNS + connect; 0 = none */
    uint64_t response_timeout_ms; /* from connect until the whole response; 0 = none (streams) */
    /* From the start of the call until the response head is complete; 0 =
     * none. An endless stream (Docker /events) has no response deadline,
     * but a peer that accepts and never answers must still be noticed. */
    uint64_t head_timeout_ms;
    /* From the start of the call until the whole response, whatever phase
     * it is in (connect, TLS, write, answer): one attempt, one deadline. */
    uint64_t total_timeout_ms;
    /* TCP keepalive on the connection (seconds of idle before probes; 0 =
     * off): a half-open peer of a long stream is noticed. */
    unsigned tcp_keepalive_secs;
    /* Optional: on failure a one-line cause is written here, more precise
     * than the errno (which TLS check failed, which deadline passed). */
    char *errbuf;
    size_t errbuf_len;
    /* Called once with the status when the response head is complete;
     * optional. get_header looks a response header up (case-insensitive). */
    void (*on_head)(void *ud, int status, const char *(*get_header)(void *ctx, const char *name),
                    void *ctx);
    /* Called with de-framed body bytes as they arrive. When NULL the body is
     * collected (up to max_body bytes, else the call fails with -E2BIG) and
     * handed to on_done, unless discard_body is set: then it is read to its
     * end and dropped (a forward needs the status, not a page of HTML). */
    void (*on_body)(void *ud, const char *data, size_t len);
    size_t max_body;
    bool discard_body;
    /* Reuse connections to this origin (scheme, host, port): the connection
     * goes back to an idle pool after a complete response that allows it.
     * A pooled connection the server closed is replaced without losing the
     * request. Not for unix sockets or endless streams. */
    bool keep_alive;
    /* The request is a HEAD: its response has no body, whatever its
     * Content-Length says (llhttp cannot know what was asked). Set by
     * itself when method is "HEAD". */
    bool head_request;
    /* Called exactly once, unless the call was cancelled: err is 0 when a
     * complete response was read, else a negative errno (-ECONNREFUSED,
     * -ETIMEDOUT, -ECONNRESET, -EPROTO for a malformed response, -ENOENT for
     * an unknown host, -EKEYREJECTED when the server's certificate failed
     * verification, -ECONNABORTED for another TLS failure, ...). status is 0
     * when no response head arrived; interim 1xx answers are skipped, so it
     * is the final status. */
    void (*on_done)(void *ud, int err, int status, const char *body, size_t body_len);
    void *ud;
};

struct http_client;
struct http_call;

struct http_client *http_client_new(uv_loop_t *loop, struct dns *dns, const struct logger *lg);
/* TLS for https endpoints: verify against ca_file (NULL: the system
 * bundle), or not at all when insecure. Called once, before requests. The
 * context is made on the first https request, except that a ca_file is
 * loaded at once. Returns 0, or -EINVAL with *err saying why (e.g. an
 * unreadable CA file). */
int http_client_tls_setup(struct http_client *c, const char *ca_file, bool insecure, const char **err);
/* Starts a request. Never calls on_done re-entrantly from inside this call.
 * The opts strings are copied. */
struct http_call *http_client_request(struct http_client *c, const struct http_endpoint *ep,
                                      const struct http_client_opts *opts);
/* on_done will not be called; resources are released asynchronously. */
void http_call_cancel(struct http_call *call);
/* Cancels every call (their on_done is not called); frees itself once all
 * handles are closed, then calls cb (may be NULL). Closing twice is a bug. */
void http_client_close(struct http_client *c, void (*cb)(void *ud), void *ud);

/* A short cause for an error of on_done ("connection refused", "timed
 * out", "unknown host", "response too large", ...), never errno jargon
 * like "argument list too long". */
const char *http_client_strerror(int err);

/* Connections opened so far (for tests and metrics: reuse shows here). */
unsigned long http_client_connections_opened(const struct http_client *c);

/* Frees the strings of an endpoint (docker_host.c parses DOCKER_HOST into one). */
void http_endpoint_free(struct http_endpoint *ep);

/* Milliseconds a Retry-After value asks for (delay-seconds or an HTTP
 * date, blanks around it allowed), clamped to 0..60000; -1 when it is
 * neither. now is the current time in seconds since the epoch. Pure. */
long long http_retry_after_ms(const char *value, long long now);

#endif
