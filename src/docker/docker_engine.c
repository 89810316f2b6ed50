/* docker_engine.c - the one way the router calls a Docker engine. */
#include "docker_engine.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

struct docker_engine {
    struct http_client *http;
    struct docker_host host;     /* text and endpoint, owned */
    char *host_header;           /* "docker" on a unix socket, else host:port */
    char api[16];
};

struct docker_engine *docker_engine_new(struct http_client *http, const struct docker_host *host)
{
    struct docker_engine *e = xcalloc(1, sizeof *e);
    e->http = http;
    docker_host_copy(&e->host, host);
    if (e->host.ep.unix_path) {
        /* Any name does on a unix socket; the docker CLI sends this one. */
        e->host_header = xstrdup("docker");
    } else {
        struct buf b;
        buf_init(&b);
        const char *h = e->host.ep.host;
        buf_printf(&b, strchr(h, ':') ? "[%s]:%u" : "%s:%u", h, e->host.ep.port);
        e->host_header = buf_steal(&b);
    }
    return e;
}

void docker_engine_free(struct docker_engine *e)
{
    if (!e) return;
    docker_host_free(&e->host);
    free(e->host_header);
    free(e);
}

const char *docker_engine_name(const struct docker_engine *e)
{
    return e->host.text;
}

const char *docker_engine_api(const struct docker_engine *e)
{
    return e->api;
}

/* "1.41" as (1, 41); false unless it is exactly digits "." digits. */
static bool parse_api(const char *s, long *major, long *minor)
{
    char *end;
    if (!s || *s < '0' || *s > '9') return false;
    *major = strtol(s, &end, 10);
    if (*end != '.' || end[1] < '0' || end[1] > '9') return false;
    *minor = strtol(end + 1, &end, 10);
    return *end == '\0' && *major < 100 && *minor < 1000;
}

static int api_cmp(long amaj, long amin, const char *b)
{
    long bmaj = 0, bmin = 0;
    parse_api(b, &bmaj, &bmin);
    return amaj != bmaj ? (amaj < bmaj ? -1 : 1) : (amin < bmin ? -1 : amin > bmin);
}

int docker_api_pick(const char *reported, char *out, size_t outlen)
{
    long major, minor;
    if (!parse_api(reported, &major, &minor) || api_cmp(major, minor, DOCKER_MIN_API) < 0) return -ENOTSUP;
    snprintf(out, outlen, "%s", api_cmp(major, minor, DOCKER_MAX_API) > 0 ? DOCKER_MAX_API : reported);
    return 0;
}

int docker_engine_take_version(struct docker_engine *e, const char *reported)
{
    return docker_api_pick(reported, e->api, sizeof e->api);
}

struct http_call *docker_engine_call(struct docker_engine *e, const char *method, const char *path,
                                     const struct http_client_opts *opts)
{
    struct buf target, headers;
    buf_init(&target);
    buf_init(&headers);
    /* GET /version is how the version is found: never versioned, so a
     * reconnect to an engine that was downgraded meanwhile still works. */
    if (e->api[0] && strcmp(path, "/version") != 0) buf_printf(&target, "/v%s", e->api);
    buf_puts(&target, path);
    buf_puts(&headers, "Accept: application/json\r\n");
    if (opts->headers) buf_puts(&headers, opts->headers);
    struct http_client_opts o = *opts;
    o.method = method;
    o.host_header = e->host_header;
    o.path = buf_cstr(&target);
    o.headers = buf_cstr(&headers);
    /* The client copies the request at once: these buffers can go. */
    struct http_call *call = http_client_request(e->http, &e->host.ep, &o);
    buf_free(&target);
    buf_free(&headers);
    return call;
}
