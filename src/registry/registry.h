/* registry.h - a client for the registry API (distribution v2 / OCI), for
 * registries that cannot call in: what digest does a tag point at now,
 * which tags exist.
 *
 * Requests go through the one HTTP client (keep-alive per registry host,
 * c-ares, TLS with TLS_CA_FILE / TLS_INSECURE as for targets); plain http
 * only for hosts listed in INSECURE_REGISTRIES and, as Docker does, for
 * loopback hosts (127.0.0.0/8, ::1, localhost) after https found plain
 * HTTP there. Authentication: anonymous
 * or credentialed Bearer token flow (401 + WWW-Authenticate -> token,
 * cached per host and scope until expires_in), and Basic. A 429 pauses its
 * host (Retry-After, else 60 s): requests to it fail at once until then.
 * At most 4 requests are in flight to one host (so at most 4 connections
 * to it); more wait in order, their deadline starting when they go.
 * Credentials and tokens never appear in a log line or a result. */
#ifndef WR_REGISTRY_H
#define WR_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "http_client.h"
#include "log.h"
#include "registry_auth.h"

struct registry_client_opts {
    struct http_client *http;
    const struct logger *log;
    const struct registry_auth *auth;   /* may be NULL: anonymous only */
    const char *insecure;               /* INSECURE_REGISTRIES: "host[:port],..." or NULL */
    uint64_t timeout_ms;                /* one request, token fetch included; 0: 30 s */
    /* A whole tag list (every page) at most: tags and bytes of JSON; more is
     * an -E2BIG error. 0: 100,000 tags, 16 MiB. */
    size_t max_tags;
    size_t max_tags_bytes;
};

struct registry_result {
    int err;                  /* 0, or a negative errno: -EACCES (credentials refused),
                               * -ENOENT (no such repository or tag), -EAGAIN (host paused
                               * by a 429: retry_after_ms says how long), -ETIMEDOUT, ... */
    int status;               /* HTTP status of the last answer; 0 if none */
    const char *error;        /* one line for the log when err != 0; never a credential */
    const char *digest;       /* manifest: "sha256:<hex>" */
    const char *media_type;   /* manifest: what the registry answered with */
    const char *const *tags;  /* tags: every page, in the registry's order */
    size_t ntags;
    uint64_t retry_after_ms;  /* -EAGAIN: the host's pause left */
    long ratelimit_limit;     /* Docker Hub's RateLimit-Limit / -Remaining when sent, else -1 */
    long ratelimit_remaining;
};

/* The result and its strings are valid during the callback only; the
 * request is freed when it returns (do not cancel it from there). */
typedef void (*registry_cb)(void *ud, const struct registry_result *r);

struct registry_client;
struct registry_req;

/* Whether host[:port] names this machine: localhost, 127.0.0.0/8, ::1. */
bool registry_host_is_loopback(const char *host);

struct registry_client *registry_client_new(uv_loop_t *loop, const struct registry_client_opts *opts);

/* HEAD /v2/<repository>/manifests/<tag> accepting the OCI index and
 * manifest and Docker's list and v2 manifest; the digest is
 * Docker-Content-Digest, or (a registry that omits it) the SHA-256 of a
 * GET's body. registry is a name as in a label ("docker.io",
 * "reg.local:5000"); repository "library/redis". cb is called once, from
 * the loop, unless the request is cancelled. NULL (and no callback) once
 * registry_client_close was called. */
struct registry_req *registry_get_digest(struct registry_client *c, const char *registry,
                                         const char *repository, const char *tag, registry_cb cb, void *ud);
/* GET /v2/<repository>/tags/list, following Link pagination. A list over
 * max_tags / max_tags_bytes is -E2BIG; a next link to a page already
 * fetched (a registry looping) is -ELOOP: either way no tags. */
struct registry_req *registry_get_tags(struct registry_client *c, const char *registry,
                                       const char *repository, registry_cb cb, void *ud);
/* Before its callback only: the callback will not come. */
void registry_req_cancel(struct registry_req *r);

/* Requests by registry and outcome, for /metrics
 * (webhook_router_registry_requests_total{registry,outcome}): one count per
 * registry_get_* whose callback ran (its 401 / token / GET-fallback /
 * pagination round trips are not counted apart), registry being the API
 * host ("registry-1.docker.io", "reg.local:5000"), outcome one of "ok",
 * "auth_error" (-EACCES), "not_found", "rate_limited" (-EAGAIN, also those
 * refused at once during a pause) and "error". */
typedef void (*registry_stat_fn)(void *ud, const char *registry, const char *outcome, unsigned long n);
void registry_client_stats(const struct registry_client *c, registry_stat_fn fn, void *ud);
/* Connections opened so far by the HTTP client the registry client uses
 * (http_client_connections_opened: shared with whatever else uses it). */
unsigned long registry_client_connections(const struct registry_client *c);

/* Cancels what is pending (no callbacks); cb (may be NULL) once freed. */
void registry_client_close(struct registry_client *c, void (*cb)(void *ud), void *ud);

#endif
