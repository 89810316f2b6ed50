/* http_server.h - the HTTP/1.1 listener (protocol layer).
 *
 * Owns sockets, llhttp parsing, keep-alive, pipelining, chunked request
 * bodies, Expect: 100-continue, limits and timeouts. It knows nothing about
 * webhooks: each complete request is handed to one handler function
 * (handlers.c) which fills in the response synchronously; an optional head
 * handler may answer a request from its head alone, before its body is read.
 * Bodies being received count against one cap for the whole server. */
#ifndef WR_HTTP_SERVER_H
#define WR_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "buf.h"
#include "log.h"

struct http_header {
    const char *name;     /* NUL-terminated, as sent */
    const char *value;    /* NUL-terminated, surrounding whitespace trimmed */
};

struct http_request {
    const char *method;   /* "GET", "POST", ... */
    const char *path;     /* target without the query, e.g. "/webhook" */
    const char *query;    /* after '?', "" when none */
    const struct http_header *headers;
    size_t nheaders;
    const char *body;     /* de-chunked; NUL-terminated for convenience */
    size_t body_len;
    const char *peer;     /* "127.0.0.1:40312" */
};

/* Case-insensitive header lookup; NULL when absent. */
const char *http_request_header(const struct http_request *req, const char *name);

struct http_response {
    int status;
    const char *content_type;   /* defaults to "application/json" */
    struct buf headers;         /* extra raw lines "Name: value\r\n" */
    struct buf body;
};

/* Sets status and a body {"error":"<msg>"} (msg escaped). */
void http_response_error(struct http_response *res, int status, const char *msg);
const char *http_status_reason(int status);

typedef void (*http_handler_fn)(void *ud, const struct http_request *req,
                                struct http_response *res);

/* Called once a request's head is complete, before any of its body is read:
 * req is the whole request but its body ("", 0). Leaving res->status at 0
 * lets the request go on (100 Continue, body, then the handler); setting it
 * answers now: that reply is sent with Connection: close, no 100 Continue is
 * written and the body is never buffered (discarded while the connection
 * goes away). For decisions that need no body, such as a wrong token. */
typedef void (*http_head_fn)(void *ud, const struct http_request *req,
                             struct http_response *res);

struct http_server_opts {
    const char *addr;             /* "0.0.0.0", "::", "127.0.0.1" */
    int port;                     /* 0: pick a free port (tests) */
    size_t max_header_bytes;      /* request line + headers; 431 past it */
    size_t max_body_bytes;        /* 413 past it */
    uint64_t request_timeout_ms;  /* first byte of a request -> complete body; 408 */
    uint64_t idle_timeout_ms;     /* keep-alive connection with no request */
    size_t max_connections;       /* past it: 503 and close */
    size_t max_buffered_bytes;    /* request-body bytes held across all connections;
                                     a body that would pass it: 503 and close. 0: no cap */
    http_handler_fn handler;
    http_head_fn head_handler;    /* optional (NULL); same ud as handler */
    void *ud;
    const struct logger *log;
};

struct http_server;

struct http_server *http_server_new(uv_loop_t *loop, const struct http_server_opts *opts);
/* Binds and listens. Returns 0 or a negative errno. */
int http_server_listen(struct http_server *s);
int http_server_port(const struct http_server *s);   /* the bound port */
size_t http_server_connections(const struct http_server *s);
/* Request-body bytes held now, across all connections (max_buffered_bytes). */
size_t http_server_buffered(const struct http_server *s);
/* Pausing stops reading from every connection (new ones are accepted and
 * read once resumed); the kernel's buffers and TCP flow control hold what
 * clients send meanwhile. What was already read is still answered. */
void http_server_pause(struct http_server *s, bool pause);
/* Stops accepting; open connections close after the response in progress. */
void http_server_stop(struct http_server *s);
/* Closes every handle; frees itself, then calls cb (may be NULL). */
void http_server_close(struct http_server *s, void (*cb)(void *ud), void *ud);

#endif
