/* The Docker watcher against a fake engine.
 *
 * The fake is a tiny HTTP server on a unix socket in a temp dir, served by
 * the test's own loop: /version and /containers/json answer from the real
 * captures in test/fixtures/docker, /events is a chunked stream the test
 * writes to when it wants an event to happen. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "buf.h"
#include "dns.h"
#include "docker_host.h"
#include "docker_watch.h"
#include "http_client.h"
#include "log.h"
#include "routes.h"
#include "testutil.h"

#define FX2_ID "6ab5009c3596d12eb2f5306a73103665afaca63077df25d6a323c40cb192751d"
#define FX1_ID "77d3a2f9ab0b4b090647509c72f234fc8f52bbe83b3768fc30dd56cde9f36ab0"

/* ---- the fake engine ------------------------------------------------------ */

struct fake;

struct fake_conn {
    union {
        uv_handle_t handle;         /* the common head: data, loop, type */
        uv_stream_t stream;
        uv_pipe_t pipe;
        uv_tcp_t tcp;               /* when the fake listens on TCP */
    } h;
    struct fake *fake;
    struct buf in;
    bool answered;
    bool closing;
    struct fake_conn *next;
};

struct fake {
    uv_loop_t *loop;
    union {
        uv_pipe_t pipe;
        uv_tcp_t tcp;
    } server;
    bool tcp;                     /* listening on 127.0.0.1:port instead of the unix socket */
    int port;
    bool listening;
    char api[16];                 /* the prefix requests must use, e.g. "1.41" */
    char *version_body;
    char *list_body;
    bool hold_list;               /* keep list requests unanswered until fake_release_list */
    int fail_events;              /* answer this many /events requests with 500 */
    int silent_events;            /* accept this many /events requests and never answer */
    struct fake_conn *conns;
    struct fake_conn *events;     /* the live /events stream, if any */
    struct fake_conn *held;       /* a list request waiting for an answer */
    int n_version, n_events, n_list, n_other;
    /* Misbehaviour: the next `garbage_times` requests of kind `garbage_kind`
     * ("version", "info", "events" or "list") get `garbage` as their whole
     * answer; the connection is then closed, or left open (a stall). */
    const char *garbage_kind;
    const char *garbage;
    size_t garbage_len;
    int garbage_times;
    bool garbage_stall;
    bool bad_method, bad_host;
    /* Swarm: /info says manager; /services lists services_body and
     * /services/<id> answers service_body, after fail_service 500s. */
    bool swarm;
    char *services_body;
    char *service_body;
    int fail_service;
    int n_services, n_service;
    char events_path[1024], list_path[1024];
    /* GET /images/<ref>/json answers image_body (when set). */
    const char *image_body;
    int n_image;
    char image_path[1024];
};

struct fwrite {
    uv_write_t req;
    bool close_after;
    char data[];
};

static void on_fake_conn_closed(uv_handle_t *h)
{
    struct fake_conn *fc = h->data;
    struct fake *f = fc->fake;
    for (struct fake_conn **pp = &f->conns; *pp; pp = &(*pp)->next)
        if (*pp == fc) {
            *pp = fc->next;
            break;
        }
    buf_free(&fc->in);
    free(fc);
}

static void fake_conn_close(struct fake_conn *fc)
{
    if (fc->closing) return;
    fc->closing = true;
    if (fc->fake->events == fc) fc->fake->events = NULL;
    if (fc->fake->held == fc) fc->fake->held = NULL;
    uv_close((uv_handle_t *)&fc->h, on_fake_conn_closed);
}

static void on_fake_written(uv_write_t *req, int status)
{
    struct fwrite *w = (struct fwrite *)req;
    struct fake_conn *fc = req->data;
    bool close = w->close_after || status < 0;
    free(w);
    if (close) fake_conn_close(fc);
}

static void fake_write(struct fake_conn *fc, const char *data, size_t len, bool close_after)
{
    if (fc->closing) return;
    struct fwrite *w = xmalloc(sizeof *w + len);
    memcpy(w->data, data, len);
    w->close_after = close_after;
    w->req.data = fc;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&fc->h, &b, 1, on_fake_written) < 0) {
        free(w);
        fake_conn_close(fc);
    }
}

static void fake_respond(struct fake_conn *fc, int status, const char *body)
{
    struct buf r;
    buf_init(&r);
    buf_printf(&r, "HTTP/1.1 %d %s\r\nApi-Version: %s\r\nContent-Type: application/json\r\n"
               "Server: Docker/20.10.24+dfsg1 (linux)\r\nContent-Length: %zu\r\n\r\n%s",
               status, status == 200 ? "OK" : "Error", fc->fake->api, strlen(body), body);
    fake_write(fc, r.data, r.len, true);
    buf_free(&r);
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void fake_request(struct fake_conn *fc)
{
    struct fake *f = fc->fake;
    char method[16] = "", target[1024] = "";
    if (sscanf(fc->in.data, "%15s %1023s", method, target) != 2) {
        fake_respond(fc, 400, "{\"message\":\"bad request\"}");
        return;
    }
    if (strcmp(method, "GET") != 0) f->bad_method = true;
    if (!strstr(fc->in.data, "\r\nHost: docker\r\n")) f->bad_host = true;

    char events[64], list[64], info[64], services[64], service[64];
    snprintf(events, sizeof events, "/v%s/events?", f->api);
    snprintf(info, sizeof info, "/v%s/info", f->api);
    snprintf(list, sizeof list, "/v%s/containers/json?", f->api);
    snprintf(services, sizeof services, "/v%s/services", f->api);
    snprintf(service, sizeof service, "/v%s/services/", f->api);
    const char *kind = strcmp(target, "/version") == 0 ? "version"
                       : strcmp(target, info) == 0     ? "info"
                       : starts_with(target, events)   ? "events"
                       : starts_with(target, list)     ? "list"
                       : strcmp(target, services) == 0 ? "services"
                       : starts_with(target, service)  ? "service"
                                                       : "other";
    if (f->garbage_times > 0 && strcmp(kind, f->garbage_kind) == 0) {
        f->garbage_times--;
        if (strcmp(kind, "events") == 0) f->n_events++;
        if (strcmp(kind, "list") == 0) f->n_list++;
        fake_write(fc, f->garbage, f->garbage_len, !f->garbage_stall);
        return;
    }
    if (strcmp(target, "/version") == 0) {
        f->n_version++;
        fake_respond(fc, 200, f->version_body);
    } else if (strcmp(target, info) == 0) {
        /* A standalone engine unless the test made it a Swarm manager. */
        fake_respond(fc, 200, f->swarm ? "{\"Swarm\":{\"LocalNodeState\":\"active\",\"ControlAvailable\":true}}"
                                       : "{\"Swarm\":{\"LocalNodeState\":\"inactive\",\"ControlAvailable\":false}}");
    } else if (strcmp(kind, "services") == 0 && f->swarm) {
        f->n_services++;
        fake_respond(fc, 200, f->services_body ? f->services_body : "[]");
    } else if (strcmp(kind, "service") == 0 && f->swarm && f->service_body) {
        f->n_service++;
        if (f->fail_service > 0) {
            f->fail_service--;
            fake_respond(fc, 500, "{\"message\":\"rpc error: code = Unavailable\"}");
        } else {
            fake_respond(fc, 200, f->service_body);
        }
    } else if (f->image_body && starts_with(target, "/v1.41/images/")) {
        f->n_image++;
        snprintf(f->image_path, sizeof f->image_path, "%s", target);
        fake_respond(fc, 200, f->image_body);
    } else if (starts_with(target, events)) {
        f->n_events++;
        snprintf(f->events_path, sizeof f->events_path, "%s", target);
        if (f->silent_events > 0) {
            f->silent_events--;   /* accepted, read, and left hanging */
            return;
        }
        if (f->fail_events > 0) {
            f->fail_events--;
            fake_respond(fc, 500, "{\"message\":\"try later\"}");
            return;
        }
        /* The head Docker sends (test/fixtures/docker/events-response-head.txt). */
        char head[256];
        snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nApi-Version: %s\r\nContent-Type: application/json\r\n"
                 "Docker-Experimental: false\r\nOstype: linux\r\nTransfer-Encoding: chunked\r\n\r\n", f->api);
        fake_write(fc, head, strlen(head), false);
        f->events = fc;
    } else if (starts_with(target, list)) {
        f->n_list++;
        snprintf(f->list_path, sizeof f->list_path, "%s", target);
        if (f->hold_list) f->held = fc;
        else fake_respond(fc, 200, f->list_body);
    } else {
        f->n_other++;
        fake_respond(fc, 404, "{\"message\":\"page not found\"}");
    }
}

static void on_fake_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)h;
    b->base = xmalloc(suggested);
    b->len = suggested;
}

static void on_fake_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct fake_conn *fc = s->data;
    if (nread < 0) {
        fake_conn_close(fc);
    } else if (nread > 0 && !fc->answered) {
        buf_append(&fc->in, b->base, (size_t)nread);
        if (strstr(buf_cstr(&fc->in), "\r\n\r\n")) {
            fc->answered = true;   /* the client sends Connection: close: one request */
            fake_request(fc);
        }
    }
    free(b->base);
}

static void on_fake_connection(uv_stream_t *server, int status)
{
    struct fake *f = server->data;
    assert_int_equal(status, 0);
    struct fake_conn *fc = xcalloc(1, sizeof *fc);
    fc->fake = f;
    buf_init(&fc->in);
    if (f->tcp) uv_tcp_init(f->loop, &fc->h.tcp);
    else uv_pipe_init(f->loop, &fc->h.pipe, 0);
    fc->h.handle.data = fc;
    fc->next = f->conns;
    f->conns = fc;
    assert_int_equal(uv_accept(server, (uv_stream_t *)&fc->h), 0);
    uv_read_start((uv_stream_t *)&fc->h, on_fake_alloc, on_fake_read);
}

static void fake_listen(struct fake *f, const char *path)
{
    uv_pipe_init(f->loop, &f->server.pipe, 0);
    f->server.pipe.data = f;
    assert_int_equal(uv_pipe_bind(&f->server.pipe, path), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&f->server, 16, on_fake_connection), 0);
    f->listening = true;
}

/* The same engine on 127.0.0.1:<f->port> (for tcp:// behaviour). */
static void fake_listen_tcp(struct fake *f)
{
    f->tcp = true;
    f->port = tu_uv_tcp_listen(f->loop, &f->server.tcp, 16, on_fake_connection);
    f->server.tcp.data = f;
    f->listening = true;
}

static void fake_stop(struct fake *f)
{
    if (f->listening) uv_close((uv_handle_t *)&f->server, NULL);
    f->listening = false;
    for (struct fake_conn *fc = f->conns; fc; fc = fc->next) fake_conn_close(fc);
}

/* One chunk of the /events body. */
static void fake_chunk(struct fake *f, const char *data, size_t len)
{
    assert_non_null(f->events);
    struct buf c;
    buf_init(&c);
    buf_printf(&c, "%zx\r\n", len);
    buf_append(&c, data, len);
    buf_puts(&c, "\r\n");
    fake_write(f->events, c.data, c.len, false);
    buf_free(&c);
}

static void fake_event(struct fake *f, const char *line)
{
    struct buf b;
    buf_init(&b);
    buf_printf(&b, "%s\n", line);
    fake_chunk(f, b.data, b.len);
    buf_free(&b);
}

/* The engine ends the stream cleanly (what a daemon restart looks like). */
static void fake_end_events(struct fake *f)
{
    assert_non_null(f->events);
    fake_write(f->events, "0\r\n\r\n", 5, true);
    f->events = NULL;
}

static void fake_release_list(struct fake *f)
{
    assert_non_null(f->held);
    struct fake_conn *fc = f->held;
    f->held = NULL;
    f->hold_list = false;
    fake_respond(fc, 200, f->list_body);
}

static void fake_set_list(struct fake *f, const char *json)
{
    free(f->list_body);
    f->list_body = xstrdup(json);
}

/* ---- the test bench --------------------------------------------------------- */

struct bench {
    uv_loop_t loop;
    char dir[64];
    char sock[128];
    char host[160];               /* "unix://" + sock */
    char logpath[128];
    int logfd;
    struct logger lg;
    struct dns *dns;
    struct http_client *http;
    struct route_table *routes;
    struct docker_watch *w;
    struct docker_engine *eng;
    struct fake fake;
    uv_timer_t deadline;
    bool expired;
    uv_timer_t tick;              /* the loop-lag probe: fires every 5 ms */
    uint64_t last_tick, max_gap;
    char *fixture_list;
    char **events;                /* the lines of events-container-and-service.jsonl */
    size_t nevents;
    bool follow_starts;           /* the watcher gets on_started */
    int nstarted;                 /* its reports, the last one's parts: */
    char started_name[64], started_digest[128];
    size_t started_ndigests;
    long long started_created_ms, started_ms;
};

static void on_started(void *ud, const struct docker_started *s)
{
    struct bench *b = ud;
    b->nstarted++;
    snprintf(b->started_name, sizeof b->started_name, "%s", s->name ? s->name : "");
    snprintf(b->started_digest, sizeof b->started_digest, "%s", s->ndigests ? s->digests[0] : "");
    b->started_ndigests = s->ndigests;
    b->started_created_ms = s->created_ms;
    b->started_ms = s->started_ms;
}

static void on_deadline(uv_timer_t *t)
{
    struct bench *b = t->data;
    b->expired = true;
}

static void deadline_start(struct bench *b, uint64_t ms)
{
    b->expired = false;
    uv_timer_start(&b->deadline, on_deadline, ms, 0);
}

/* Runs the loop until cond holds, for at most ms. */
#define RUN_UNTIL(b, cond, ms)                                                   \
    do {                                                                          \
        deadline_start((b), (ms));                                                \
        while (!(cond) && !(b)->expired) uv_run(&(b)->loop, UV_RUN_ONCE);         \
        uv_timer_stop(&(b)->deadline);                                            \
        assert_true(cond);                                                        \
    } while (0)

static void on_tick(uv_timer_t *t)
{
    struct bench *b = t->data;
    uv_update_time(&b->loop);
    uint64_t now = uv_now(&b->loop);
    if (b->last_tick && now - b->last_tick > b->max_gap) b->max_gap = now - b->last_tick;
    b->last_tick = now;
}

/* From now on, the longest the loop went without running a 5 ms timer. */
static void lag_probe_start(struct bench *b)
{
    b->last_tick = 0;
    b->max_gap = 0;
    uv_timer_start(&b->tick, on_tick, 5, 5);
}

static void run_for(struct bench *b, uint64_t ms)
{
    deadline_start(b, ms);
    while (!b->expired) uv_run(&b->loop, UV_RUN_ONCE);
}

static bool state_is(struct bench *b, const char *s)
{
    return strcmp(docker_watch_state(b->w), s) == 0;
}

static char *log_text(struct bench *b)
{
    return tu_read_file(b->logpath, NULL);
}

static bool log_has(struct bench *b, const char *needle)
{
    char *text = log_text(b);
    bool found = strstr(text, needle) != NULL;
    free(text);
    return found;
}

/* The containers fixture without the one whose Names[0] is name. */
static char *list_without(struct bench *b, const char *name)
{
    json_error_t jerr;
    json_t *list = json_loads(b->fixture_list, 0, &jerr);
    assert_non_null(list);
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c) {
        const char *n = json_string_value(json_array_get(json_object_get(c, "Names"), 0));
        if (n && strcmp(n, name) == 0) {
            json_array_remove(list, i);
            break;
        }
    }
    char *out = json_dumps(list, JSON_COMPACT);
    json_decref(list);
    return out;
}

static int setup(void **state)
{
    struct bench *b = xcalloc(1, sizeof *b);
    assert_int_equal(uv_loop_init(&b->loop), 0);
    snprintf(b->dir, sizeof b->dir, "/tmp/wr-dockwatch-XXXXXX");
    assert_non_null(mkdtemp(b->dir));
    snprintf(b->sock, sizeof b->sock, "%s/docker.sock", b->dir);
    snprintf(b->host, sizeof b->host, "unix://%s", b->sock);
    snprintf(b->logpath, sizeof b->logpath, "%s/log", b->dir);
    b->logfd = open(b->logpath, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    assert_true(b->logfd >= 0);
    logger_init(&b->lg, LOG_DEBUG, LOG_FORMAT_JSON, b->logfd);
    b->dns = dns_new(&b->loop, &b->lg);
    b->http = http_client_new(&b->loop, b->dns, &b->lg);
    b->routes = routes_new();
    uv_timer_init(&b->loop, &b->deadline);
    b->deadline.data = b;
    uv_timer_init(&b->loop, &b->tick);
    b->tick.data = b;

    b->fixture_list = tu_shared_fixture("docker/containers-json.json", NULL);
    char *all = tu_shared_fixture("docker/events-container-and-service.jsonl", NULL);
    for (char *line = strtok(all, "\n"); line; line = strtok(NULL, "\n")) {
        b->events = xrealloc(b->events, (b->nevents + 1) * sizeof *b->events);
        b->events[b->nevents++] = xstrdup(line);
    }
    free(all);
    assert_int_equal(b->nevents, 10);

    struct fake *f = &b->fake;
    f->loop = &b->loop;
    snprintf(f->api, sizeof f->api, "1.41");
    f->version_body = tu_shared_fixture("docker/version.json", NULL);
    f->list_body = xstrdup(b->fixture_list);
    *state = b;
    return 0;
}

static struct docker_watch *watch_with_timeout(struct bench *b, int cache_ttl_secs, uint64_t request_timeout_ms)
{
    struct docker_host *engine;
    size_t n;
    char err[128];
    assert_int_equal(docker_host_parse_list(b->host, &engine, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    b->eng = docker_engine_new(b->http, engine);
    docker_host_list_free(engine, n);   /* the engine keeps its own copy */
    struct docker_watch_opts o = {
        .engine = b->eng,
        .label_prefix = "webhook-router",
        .cache_ttl_secs = cache_ttl_secs,
        .request_timeout_ms = request_timeout_ms,
        .routes = b->routes,
        .log = &b->lg,
        .on_started = b->follow_starts ? on_started : NULL,
        .started_ud = b,
    };
    b->w = docker_watch_new(&b->loop, &o);
    return b->w;
}

static struct docker_watch *watch(struct bench *b, int cache_ttl_secs)
{
    return watch_with_timeout(b, cache_ttl_secs, 0);
}

static int teardown(void **state)
{
    struct bench *b = *state;
    docker_watch_close(b->w, NULL, NULL);
    http_client_close(b->http, NULL, NULL);
    dns_close(b->dns, NULL, NULL);
    fake_stop(&b->fake);
    uv_close((uv_handle_t *)&b->deadline, NULL);
    uv_close((uv_handle_t *)&b->tick, NULL);
    uv_run(&b->loop, UV_RUN_DEFAULT);
    /* Every handle of the watcher, the client and the fake is closed. */
    assert_int_equal(uv_loop_close(&b->loop), 0);
    docker_engine_free(b->eng);
    routes_free(b->routes);
    close(b->logfd);
    unlink(b->logpath);
    unlink(b->sock);
    rmdir(b->dir);
    free(b->fake.version_body);
    free(b->fake.list_body);
    free(b->fake.services_body);
    free(b->fake.service_body);
    free(b->fixture_list);
    for (size_t i = 0; i < b->nevents; i++) free(b->events[i]);
    free(b->events);
    free(b);
    return 0;
}

/* Collects "name," for every source of every route. */
static void collect_sources(void *ud, const struct route *r, const struct route_source *const *sources,
                            size_t nsources)
{
    (void)r;
    struct buf *out = ud;
    for (size_t i = 0; i < nsources; i++) buf_printf(out, "%s,", sources[i]->name ? sources[i]->name : "?");
}

static bool has_source(struct bench *b, const char *name)
{
    struct buf names;
    buf_init(&names);
    routes_foreach(b->routes, collect_sources, &names);
    char needle[128];
    snprintf(needle, sizeof needle, "%s,", name);
    bool found = strstr(buf_cstr(&names), needle) != NULL;
    buf_free(&names);
    return found;
}

/* ---- tests ------------------------------------------------------------------ */

/* Start-up against the fixture engine: the map is the fixture's; then
 * create/destroy events (the real captures) keep it exact, and garbage on
 * the stream is skipped without dropping the connection. */
static void test_sync_then_events(void **state)
{
    struct bench *b = *state;
    struct fake *f = &b->fake;
    fake_listen(f, b->sock);
    docker_watch_start(watch(b, 0));
    assert_false(docker_watch_synced(b->w));
    assert_string_equal(docker_watch_host(b->w), b->host);

    RUN_UNTIL(b, docker_watch_synced(b->w), 5000);
    assert_string_equal(docker_watch_state(b->w), "live");
    assert_null(docker_watch_last_error(b->w));
    /* fx2 and magical_spence carry the same route: 3 sources, 2 routes. */
    assert_int_equal(routes_source_count(b->routes), 3);
    assert_int_equal(routes_count(b->routes), 2);
    assert_true(has_source(b, "fx2") && has_source(b, "magical_spence") && has_source(b, "infallible_galois"));

    /* What was asked, and how: GETs only, Host: docker, the engine's API. */
    assert_int_equal(f->n_version, 1);
    assert_int_equal(f->n_events, 1);
    assert_int_equal(f->n_list, 1);
    assert_int_equal(f->n_other, 0);
    assert_false(f->bad_method);
    assert_false(f->bad_host);
    char *events_filter = NULL;
    assert_true(starts_with(f->events_path, "/v1.41/events?filters="));
    /* Every container: a misspelt label key (<prefix>.images) is reported,
     * which a filter on <prefix>.image would hide. */
    assert_string_equal(f->list_path, "/v1.41/containers/json?all=1");
    events_filter = strstr(f->events_path, "filters=") + 8;
    assert_null(strchr(events_filter, '"'));   /* url-encoded */
    assert_non_null(strstr(events_filter, "container"));
    assert_non_null(strstr(events_filter, "destroy"));
    assert_true(log_has(b, "\"msg\":\"docker synced\""));
    assert_true(log_has(b, "\"containers\":3"));

    /* A create, cut across two chunks: fx1 adds a third route. */
    const char *create = b->events[0];
    size_t half = strlen(create) / 2;
    fake_chunk(f, create, half);
    run_for(b, 50);
    assert_int_equal(routes_source_count(b->routes), 3);   /* half a line is not an event */
    struct buf rest;
    buf_init(&rest);
    buf_printf(&rest, "%s\n", create + half);
    fake_chunk(f, rest.data, rest.len);
    buf_free(&rest);
    RUN_UNTIL(b, routes_source_count(b->routes) == 4, 5000);
    assert_int_equal(routes_count(b->routes), 3);
    assert_true(has_source(b, "fx1"));
    assert_true(log_has(b, "\"msg\":\"route added\""));

    /* Garbage lines, then the rest of the capture (start, die, service
     * events, an unlabelled container, and fx1's destroy) in one chunk. */
    struct buf more;
    buf_init(&more);
    buf_puts(&more, "this is not json\n[1,2]\n{\"Type\":\"container\",\"Action\":\"create\"}\n");
    for (size_t i = 1; i < b->nevents; i++) buf_printf(&more, "%s\n", b->events[i]);
    fake_chunk(f, more.data, more.len);
    buf_free(&more);
    RUN_UNTIL(b, routes_source_count(b->routes) == 3, 5000);
    assert_false(has_source(b, "fx1"));
    assert_int_equal(routes_count(b->routes), 2);
    assert_true(log_has(b, "\"msg\":\"route removed\""));
    assert_true(log_has(b, "\"msg\":\"docker event skipped\""));

    /* Still the same subscription: a bad line does not drop the stream. */
    fake_event(f, "{\"Type\":\"container\",\"Action\":\"destroy\",\"Actor\":{\"ID\":\"" FX2_ID "\"}}");
    RUN_UNTIL(b, routes_source_count(b->routes) == 2, 5000);
    assert_int_equal(f->n_events, 1);
    assert_string_equal(docker_watch_state(b->w), "live");

    /* The webhook URL's token never reaches the log. */
    assert_false(log_has(b, "638e6967-ef77-4906-8af8-236800621360"));
}

/* An event that happens while the list is in flight is applied on top of
 * it, in order: nothing between subscribing and listing is lost. */
static void test_events_during_list_are_replayed(void **state)
{
    struct bench *b = *state;
    struct fake *f = &b->fake;
    f->hold_list = true;
    fake_listen(f, b->sock);
    docker_watch_start(watch(b, 0));
    RUN_UNTIL(b, f->held != NULL, 5000);
    assert_string_equal(docker_watch_state(b->w), "syncing");

    fake_event(f, b->events[0]);   /* fx1 created */
    fake_event(f, "{\"Type\":\"container\",\"Action\":\"destroy\",\"Actor\":{\"ID\":\"" FX2_ID
                  "\",\"Attributes\":{\"name\":\"fx2\"}}}");
    run_for(b, 100);
    /* Held back until the list is in: applied first, the list would undo them. */
    assert_int_equal(routes_source_count(b->routes), 0);
    assert_false(docker_watch_synced(b->w));

    fake_release_list(f);   /* still lists fx2: it was taken before the destroy */
    RUN_UNTIL(b, docker_watch_synced(b->w), 5000);
    assert_int_equal(routes_source_count(b->routes), 3);
    assert_true(has_source(b, "fx1"));
    assert_false(has_source(b, "fx2"));
    assert_true(has_source(b, "magical_spence"));
    assert_int_equal(routes_count(b->routes), 3);
    assert_string_equal(docker_watch_state(b->w), "live");
}

/* The engine ends the stream: the map stays, the watcher reconnects with
 * backoff and resyncs completely, so what vanished meanwhile is dropped. */
static void test_reconnect_resyncs(void **state)
{
    struct bench *b = *state;
    struct fake *f = &b->fake;
    fake_listen(f, b->sock);
    docker_watch_start(watch(b, 0));
    RUN_UNTIL(b, docker_watch_synced(b->w), 5000);
    assert_int_equal(routes_source_count(b->routes), 3);

    /* fx2 goes away while the watcher is not listening. */
    char *smaller = list_without(b, "/fx2");
    fake_set_list(f, smaller);
    free(smaller);
    fake_end_events(f);
    RUN_UNTIL(b, state_is(b, "reconnecting"), 5000);
    assert_int_equal(routes_source_count(b->routes), 3);   /* keep routing with the last map */
    assert_true(docker_watch_synced(b->w));
    assert_non_null(docker_watch_last_error(b->w));
    assert_non_null(strstr(docker_watch_last_error(b->w), "closed the event stream"));
    assert_true(log_has(b, "\"msg\":\"docker connection lost\""));

    uint64_t t0 = uv_now(&b->loop);
    RUN_UNTIL(b, f->n_list == 2 && state_is(b, "live"), 5000);
    assert_true(uv_now(&b->loop) - t0 >= 400);   /* backoff starts at 500 ms */
    assert_int_equal(f->n_version, 2);
    assert_int_equal(f->n_events, 2);
    assert_int_equal(routes_source_count(b->routes), 2);
    assert_false(has_source(b, "fx2"));
    assert_int_equal(routes_count(b->routes), 2);
    assert_null(docker_watch_last_error(b->w));

    /* Cut mid-line this time (the socket just closes); the half line is
     * dropped and fx2 is back in the list after the reconnect. */
    fake_set_list(f, b->fixture_list);
    fake_chunk(f, b->events[0], 40);
    run_for(b, 20);
    fake_conn_close(f->events);
    RUN_UNTIL(b, f->n_list == 3 && state_is(b, "live"), 5000);
    assert_int_equal(routes_source_count(b->routes), 3);
    assert_true(has_source(b, "fx2"));
    assert_false(has_source(b, "fx1"));
}

/* No engine yet: a plain error, then the watcher connects once it appears. */
static void test_unreachable_then_up(void **state)
{
    struct bench *b = *state;
    docker_watch_start(watch(b, 0));
    RUN_UNTIL(b, docker_watch_last_error(b->w) != NULL, 5000);
    char want[512];
    /* The socket file is missing, and that is what it says (what /ready shows). */
    snprintf(want, sizeof want, "connect %s: engine socket %s missing", b->host, b->sock);
    assert_string_equal(docker_watch_last_error(b->w), want);
    assert_string_equal(docker_watch_state(b->w), "reconnecting");
    assert_false(docker_watch_synced(b->w));
    assert_true(log_has(b, "\"msg\":\"docker unreachable\""));
    assert_true(log_has(b, "missing"));

    fake_listen(&b->fake, b->sock);
    RUN_UNTIL(b, docker_watch_synced(b->w), 5000);
    assert_null(docker_watch_last_error(b->w));
    assert_int_equal(routes_source_count(b->routes), 3);
}

/* /events refused once: treated as a failure, retried, then synced. */
static void test_events_error_status(void **state)
{
    struct bench *b = *state;
    struct fake *f = &b->fake;
    f->fail_events = 1;
    fake_listen(f, b->sock);
    docker_watch_start(watch(b, 0));
    RUN_UNTIL(b, docker_watch_last_error(b->w) != NULL, 5000);
    assert_non_null(strstr(docker_watch_last_error(b->w), "HTTP 500"));
    assert_int_equal(f->n_list, 0);   /* no list without a live subscription */
    RUN_UNTIL(b, docker_watch_synced(b->w), 5000);
    assert_int_equal(f->n_events, 2);
    assert_int_equal(routes_source_count(b->routes), 3);
}

/* An engine newer than this code is spoken to at the newest API it knows. */
static void test_api_version_capped(void **state)
{
    struct bench *b = *state;
    struct fake *f = &b->fake;
    free(f->version_body);
    f->version_body = xstrdup("{\"Version\":\"27.3.1\",\"ApiVersion\":\"1.47\",\"MinAPIVersion\":\"1.24\"}");
    snprintf(f->api, sizeof f->api, "1.45");
    fake_listen(f, b->sock);
    docker_watch_start(watch(b, 0));
    RUN_UNTIL(b, docker_watch_synced(b->w), 5000);
    assert_true(starts_with(f->events_path, "/v1.45/events?"));
    assert_true(starts_with(f->list_path, "/v1.45/containers/json?"));
    assert_int_equal(f->n_other, 0);
}

/* A line longer than the limit is a broken stream: reconnect and resync. */
static void test_huge_event_line(void **state)
{
    struct bench *b = *state;
    struct fake *f = &b->fake;
    fake_listen(f, b->sock);
    docker_watch_start(watch(b, 0));
    RUN_UNTIL(b, docker_watch_synced(b->w), 5000);
    size_t n = 1100 * 1024;
    char *big = xmalloc(n);
    memset(big, 'x', n);
    fake_chunk(f, big, n);
    free(big);
    RUN_UNTIL(b, state_is(b, "reconnecting"), 5000);
    assert_non_null(strstr(docker_watch_last_error(b->w), "larger than"));
    assert_int_equal(routes_source_count(b->routes), 3);
    RUN_UNTIL(b, f->n_list == 2 && state_is(b, "live"), 5000);
    assert_int_equal(routes_source_count(b->routes), 3);
}

/* CACHE_TTL_SECS: a background list catches what the events missed,
 * without reconnecting, and says so at warn. */
static void test_background_resync(void **state)
{
    struct bench *b = *state;
    struct fake *f = &b->fake;
    fake_listen(f, b->sock);
    docker_watch_start(watch(b, 1));
    RUN_UNTIL(b, docker_watch_synced(b->w), 5000);
    assert_int_equal(routes_source_count(b->routes), 3);

    char *smaller = list_without(b, "/magical_spence");
    fake_set_list(f, smaller);
    free(smaller);
    RUN_UNTIL(b, routes_source_count(b->routes) == 2, 5000);
    assert_int_equal(f->n_list, 2);
    assert_int_equal(f->n_events, 1);
    assert_false(has_source(b, "magical_spence"));
    assert_string_equal(docker_watch_state(b->w), "live");
    assert_true(log_has(b, "resync found changes the events missed"));
}

/* An engine answering garbage at every step of a sync: each is a clear
 * error naming the request, the last map stays, the loop keeps running,
 * and once the engine behaves the map is exact again. */
static void test_garbage_answers(void **state)
{
    struct bench *b = *state;
    struct fake *f = &b->fake;
    static char big_header[100 * 1024];   /* past the client's 64 KiB limit on a response head */
    memcpy(big_header, "HTTP/1.1 200 OK\r\nX-Big: ", 24);
    memset(big_header + 24, 'x', sizeof big_header - 24 - 5);
    memcpy(big_header + sizeof big_header - 5, "\r\n\r\n", 5);
    static const char binary[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x00\xff";
    const struct {
        const char *kind, *raw;
        size_t len;
        const char *request, *detail;   /* the error is "<request> <engine>: <detail>" */
    } cases[] = {
#define RAW(s) s, sizeof s - 1
        {"version", RAW("SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"), "GET /version", "malformed HTTP response"},
        {"version", binary, sizeof binary - 1, "GET /version", "malformed HTTP response"},
        {"version", RAW("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nnot json!"), "GET /version", ""},
        {"version", RAW("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n[1,2]"), "GET /version", ""},
        {"info", RAW("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"Swarm\":"), "GET /info", ""},
        {"events", RAW("HTTP/1.1 abc\r\n\r\n"), "GET /events", "malformed HTTP response"},
        {"events", RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n"),
         "GET /events", "malformed HTTP response"},
        {"events", RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n"),
         "GET /events", "malformed HTTP response"},
        {"events", RAW("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"), "GET /events", ""},
        {"list", RAW("HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n{\"not\":\"a list\"}"),
         "GET /containers/json", "the answer is not a JSON array"},
        {"list", RAW("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n[{\"Id\":"), "GET /containers/json", ""},
        {"list", RAW("HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n[{\"Id\":"), "GET /containers/json", "the answer is not a JSON array"},
        /* Framed as a list, but an element is not JSON: the list fails whole. */
        {"list", RAW("HTTP/1.1 200 OK\r\nContent-Length: 32\r\n\r\n[{\"Id\":\"a\",\"Labels\":{}},{\"Id\":}]"),
         "GET /containers/json", "the answer is not a JSON array"},
        {"list", big_header, sizeof big_header, "GET /containers/json", "the response is too large"},
        {"events", big_header, sizeof big_header, "GET /events", "the response is too large"},
#undef RAW
    };
    fake_listen(f, b->sock);
    docker_watch_start(watch(b, 0));
    RUN_UNTIL(b, docker_watch_synced(b->w), 5000);
    lag_probe_start(b);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        f->garbage_kind = cases[i].kind;
        f->garbage = cases[i].raw;
        f->garbage_len = cases[i].len;
        f->garbage_times = 1;
        f->garbage_stall = false;
        int lists = f->n_list;
        fake_end_events(f);   /* reconnect: the next sync meets the garbage */
        /* (The end of the old stream is an error too: wait for the next one.) */
        RUN_UNTIL(b, f->garbage_times == 0 && docker_watch_last_error(b->w) &&
                         strstr(docker_watch_last_error(b->w), cases[i].kind[0] == 'l' ? "containers" : cases[i].kind) &&
                         !strstr(docker_watch_last_error(b->w), "closed the event stream"),
                  10000);
        const char *err = docker_watch_last_error(b->w);
        if (strncmp(err, cases[i].request, strlen(cases[i].request)) != 0 || !strstr(err, b->host) ||
            !strstr(err, cases[i].detail))
            fail_msg("case %zu (%s): error \"%s\", want \"%s %s: %s\"", i, cases[i].kind, err, cases[i].request,
                     b->host, cases[i].detail);
        printf("  %-8s -> %s\n", cases[i].kind, err);
        /* The last map keeps routing meanwhile. */
        assert_int_equal(routes_source_count(b->routes), 3);
        /* And the engine, behaving again, gives the exact map back. */
        RUN_UNTIL(b, state_is(b, "live") && f->n_list > lists + (strcmp(cases[i].kind, "list") == 0), 10000);
        assert_int_equal(routes_source_count(b->routes), 3);
        assert_int_equal(routes_count(b->routes), 2);
    }
    assert_true(log_has(b, "\"msg\":\"docker connection lost\""));
    printf("garbage answers: %zu cases, longest loop stall %llu ms\n", sizeof cases / sizeof cases[0],
           (unsigned long long)b->max_gap);
    assert_true(b->max_gap < 250);
}

/* An /events stream stalled in the middle of a chunk is indistinguishable
 * from a quiet one: the map stays, nothing blocks, and when the rest comes
 * the event is applied. */
static void test_events_stall_mid_chunk(void **state)
{
    struct bench *b = *state;
    struct fake *f = &b->fake;
    fake_listen(f, b->sock);
    docker_watch_start(watch(b, 0));
    RUN_UNTIL(b, docker_watch_synced(b->w), 5000);
    lag_probe_start(b);
    struct buf line;
    buf_init(&line);
    buf_printf(&line, "%s\n", b->events[0]);   /* fx1 created */
    struct buf head;
    buf_init(&head);
    buf_printf(&head, "%zx\r\n", line.len);
    fake_write(f->events, head.data, head.len, false);
    fake_write(f->events, line.data, 60, false);   /* the chunk's size and a bit of it */
    run_for(b, 1500);
    assert_string_equal(docker_watch_state(b->w), "live");
    assert_int_equal(routes_source_count(b->routes), 3);
    assert_int_equal(f->n_events, 1);
    fake_write(f->events, line.data + 60, line.len - 60, false);
    fake_write(f->events, "\r\n", 2, false);
    RUN_UNTIL(b, routes_source_count(b->routes) == 4, 5000);
    assert_true(has_source(b, "fx1"));
    assert_true(b->max_gap < 250);
    buf_free(&line);
    buf_free(&head);
}

/* A list (or version) answer that stops half way is given up after the
 * request timeout; the engine is asked again and the map comes back. */
static void test_list_stall_mid_body(void **state)
{
    struct bench *b = *state;
    struct fake *f = &b->fake;
    static const char half[] = "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n[{\"Id\":\"6ab5009c35";
    fake_listen(f, b->sock);
    docker_watch_start(watch_with_timeout(b, 0, 1000));
    RUN_UNTIL(b, docker_watch_synced(b->w), 5000);
    lag_probe_start(b);
    const char *kinds[] = {"list", "version"};
    for (size_t i = 0; i < 2; i++) {
        f->garbage_kind = kinds[i];
        f->garbage = half;
        f->garbage_len = sizeof half - 1;
        f->garbage_times = 1;
        f->garbage_stall = true;
        int lists = f->n_list;
        fake_end_events(f);
        RUN_UNTIL(b, f->garbage_times == 0, 5000);
        run_for(b, 500);   /* stalled: nothing to do but wait */
        assert_int_equal(routes_source_count(b->routes), 3);
        RUN_UNTIL(b, docker_watch_last_error(b->w) && strstr(docker_watch_last_error(b->w), "no complete answer within 1000 ms"), 5000);
        RUN_UNTIL(b, state_is(b, "live") && f->n_list > lists + (i == 0), 10000);
        assert_int_equal(routes_source_count(b->routes), 3);
    }
    assert_true(b->max_gap < 250);
}

/* services.json's element i, as GET /services/<id> answers it. */
static char *fixture_service(size_t i)
{
    char *all = tu_shared_fixture("docker/services.json", NULL);
    json_error_t jerr;
    json_t *list = json_loads(all, 0, &jerr);
    assert_non_null(list);
    free(all);
    char *out = json_dumps(json_array_get(list, i), JSON_COMPACT);
    assert_non_null(out);
    json_decref(list);
    return out;
}

#define SVC2_ID "s9oejhuzrgh09xljxgv4jc22m"
#define SVC2_EVENT "{\"Type\":\"service\",\"Action\":\"update\",\"Actor\":{\"ID\":\"" SVC2_ID \
                   "\",\"Attributes\":{\"name\":\"fxsvc2\"}}}"

/* A GET /services/<id> that fails is retried by itself (0.5 s, 1 s, 2 s):
 * the engine connection and the rest of the map are left alone. */
static void test_service_fetch_retried(void **state)
{
    struct bench *b = *state;
    struct fake *f = &b->fake;
    f->swarm = true;
    f->service_body = fixture_service(1);   /* fxsvc2 */
    f->fail_service = 2;
    fake_listen(f, b->sock);
    docker_watch_start(watch(b, 0));
    RUN_UNTIL(b, docker_watch_synced(b->w), 5000);
    assert_int_equal(routes_source_count(b->routes), 3);
    assert_int_equal(f->n_services, 1);

    uint64_t t0 = uv_now(&b->loop);
    fake_event(f, SVC2_EVENT);
    RUN_UNTIL(b, has_source(b, "fxsvc2"), 10000);
    uint64_t took = uv_now(&b->loop) - t0;
    assert_int_equal(f->n_service, 3);
    assert_true(took >= 1400 && took < 3000);   /* 0.5 s + 1 s of backoff */
    assert_int_equal(routes_source_count(b->routes), 4);
    /* Same subscription, no resync: only that one fetch was repeated. */
    assert_int_equal(f->n_events, 1);
    assert_int_equal(f->n_version, 1);
    assert_int_equal(f->n_list, 1);
    assert_int_equal(docker_watch_reconnects(b->w), 0);
    assert_string_equal(docker_watch_state(b->w), "live");
    assert_null(docker_watch_last_error(b->w));
    assert_false(log_has(b, "docker connection lost"));
}

/* `docker swarm init` after the start: the next resync's GET /info says
 * manager, the events are subscribed again with services in the filter and
 * the services are listed. Old code listed containers only until a
 * reconnect. `swarm leave`: the services' routes go. */
static void test_swarm_init_noticed_at_resync(void **state)
{
    struct bench *b = *state;
    struct fake *f = &b->fake;
    char *svc = fixture_service(1);   /* fxsvc2 */
    struct buf list;
    buf_init(&list);
    buf_printf(&list, "[%s]", svc);
    free(svc);
    f->services_body = buf_steal(&list);
    fake_listen(f, b->sock);
    docker_watch_start(watch(b, 1));
    RUN_UNTIL(b, docker_watch_synced(b->w), 5000);
    assert_false(has_source(b, "fxsvc2"));
    assert_int_equal(f->n_services, 0);

    f->swarm = true;
    RUN_UNTIL(b, has_source(b, "fxsvc2"), 5000);
    assert_int_equal(f->n_events, 2);   /* subscribed again, with services */
    assert_non_null(strstr(f->events_path, "service"));
    assert_true(log_has(b, "swarm manager: watching services too"));
    assert_false(log_has(b, "resync found changes the events missed"));
    assert_int_equal(docker_watch_reconnects(b->w), 0);

    f->swarm = false;
    RUN_UNTIL(b, !has_source(b, "fxsvc2"), 5000);
    assert_true(log_has(b, "not a swarm manager"));
    assert_int_equal(f->n_events, 3);
    assert_int_equal(docker_watch_reconnects(b->w), 0);
    assert_string_equal(docker_watch_state(b->w), "live");
}

/* A fetch that keeps failing is given up after three retries with one
 * warn; a background list (the /events stream stays) then brings the
 * service in, so the map converges even with CACHE_TTL_SECS=0. */
static void test_service_fetch_gives_up(void **state)
{
    struct bench *b = *state;
    struct fake *f = &b->fake;
    f->swarm = true;
    f->service_body = fixture_service(1);
    f->fail_service = 1000;
    fake_listen(f, b->sock);
    docker_watch_start(watch(b, 0));
    RUN_UNTIL(b, docker_watch_synced(b->w), 5000);
    assert_false(has_source(b, "fxsvc2"));

    /* The service list now has it (the engine answers lists, not this one GET). */
    char *svc = fixture_service(1);
    struct buf list;
    buf_init(&list);
    buf_printf(&list, "[%s]", svc);
    free(svc);
    f->services_body = buf_steal(&list);

    uint64_t t0 = uv_now(&b->loop);
    fake_event(f, SVC2_EVENT);
    RUN_UNTIL(b, has_source(b, "fxsvc2"), 10000);
    uint64_t took = uv_now(&b->loop) - t0;
    assert_int_equal(f->n_service, 4);           /* one try and three retries */
    assert_true(took >= 3400 && took < 6000);    /* 0.5 + 1 + 2 s */
    assert_int_equal(f->n_list, 2);
    assert_int_equal(f->n_services, 2);
    assert_int_equal(f->n_events, 1);
    assert_int_equal(docker_watch_reconnects(b->w), 0);
    assert_true(log_has(b, "\"msg\":\"service fetch failed\""));
    assert_true(log_has(b, "HTTP 500"));
    run_for(b, 300);
    assert_int_equal(f->n_service, 4);           /* and not asked again */
    assert_string_equal(docker_watch_state(b->w), "live");
}

/* The real rename event (test/fixtures/docker/events-rename.jsonl, from
 * dockerd 20.10) re-aimed at fx2: Actor.ID := id, name := new_name. */
static char *rename_event(const char *id, const char *new_name)
{
    char *raw = tu_shared_fixture("docker/events-rename.jsonl", NULL);
    json_error_t jerr;
    json_t *ev = json_loads(raw, JSON_DISABLE_EOF_CHECK, &jerr);
    free(raw);
    assert_non_null(ev);
    assert_string_equal(json_string_value(json_object_get(ev, "Action")), "rename");
    json_t *actor = json_object_get(ev, "Actor");
    json_object_set_new(actor, "ID", json_string(id));
    json_object_set_new(ev, "id", json_string(id));
    json_t *attrs = json_object_get(actor, "Attributes");
    json_object_set_new(attrs, "name", json_string(new_name));
    json_object_set_new(attrs, "oldName", json_string("/fx2"));
    char *out = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    return out;
}

/* docker rename: /routes names the container by its new name at once. */
static void test_rename_event(void **state)
{
    struct bench *b = *state;
    struct fake *f = &b->fake;
    fake_listen(f, b->sock);
    docker_watch_start(watch(b, 0));
    RUN_UNTIL(b, docker_watch_synced(b->w), 5000);
    /* The engine only sends what the filter asks for. */
    assert_non_null(strstr(f->events_path, "rename"));
    assert_true(has_source(b, "fx2"));

    char *ev = rename_event(FX2_ID, "fx2-blue");
    fake_event(f, ev);
    free(ev);
    RUN_UNTIL(b, has_source(b, "fx2-blue"), 5000);
    assert_false(has_source(b, "fx2"));
    assert_int_equal(routes_source_count(b->routes), 3);
    assert_int_equal(routes_count(b->routes), 2);
    assert_true(log_has(b, "\"msg\":\"container renamed\""));
    assert_true(log_has(b, "\"old_name\":\"fx2\""));

    /* A container without routes: nothing to rename, nothing added. */
    ev = rename_event("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "other");
    json_error_t jerr;
    json_t *j = json_loads(ev, 0, &jerr);
    free(ev);
    json_t *attrs = json_object_get(json_object_get(j, "Actor"), "Attributes");
    json_object_del(attrs, "webhook-router.image");
    json_object_del(attrs, "webhook-router.url");
    ev = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    fake_event(f, ev);
    free(ev);
    run_for(b, 100);
    assert_int_equal(routes_source_count(b->routes), 3);
    assert_false(has_source(b, "other"));
    assert_int_equal(f->n_events, 1);
    assert_string_equal(docker_watch_state(b->w), "live");
}

/* A container event for id with the route labels (or none), at time_ms. */
static char *container_event(const char *action, const char *id, bool routed, long long time_ms)
{
    json_t *attrs = json_pack("{s:s,s:s}", "image", "reg:5000/team/app:v2", "name", "web-1");
    if (routed) {
        json_object_set_new(attrs, "webhook-router.image", json_string("reg:5000/team/app"));
        json_object_set_new(attrs, "webhook-router.url", json_string("http://127.0.0.1:9/hook"));
    }
    json_t *ev = json_pack("{s:s,s:s,s:s,s:{s:s,s:o},s:I}", "Type", "container", "Action", action, "id", id,
                           "Actor", "ID", id, "Attributes", attrs, "timeNano", (json_int_t)time_ms * 1000000);
    char *out = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    return out;
}

/* Deploy confirmation's input: a routed container's start is reported with
 * its image's RepoDigests (one image inspect) and its create and start
 * times; an unrouted container's start costs nothing. */
static void test_start_reported(void **state)
{
    struct bench *b = *state;
    struct fake *f = &b->fake;
    f->image_body = "{\"Id\":\"sha256:11\",\"RepoDigests\":[\"reg:5000/team/app@sha256:abc\"]}";
    b->follow_starts = true;
    fake_listen(f, b->sock);
    docker_watch_start(watch(b, 0));
    RUN_UNTIL(b, docker_watch_synced(b->w), 5000);
    assert_non_null(strstr(f->events_path, "start"));   /* asked for */
    const char *id = "feedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedface";
    char *ev = container_event("create", id, true, 1700000000000LL);
    fake_event(f, ev);
    free(ev);
    ev = container_event("start", id, true, 1700000000500LL);
    fake_event(f, ev);
    free(ev);
    RUN_UNTIL(b, b->nstarted == 1, 5000);
    assert_int_equal(f->n_image, 1);
    assert_true(starts_with(f->image_path, "/v1.41/images/reg:5000/team/app:v2/json"));
    assert_string_equal(b->started_name, "web-1");
    assert_int_equal(b->started_ndigests, 1);
    assert_string_equal(b->started_digest, "reg:5000/team/app@sha256:abc");
    assert_int_equal(b->started_created_ms, 1700000000000LL);
    assert_int_equal(b->started_ms, 1700000000500LL);

    /* A restart of a container whose create the watcher never saw: created unknown. */
    ev = container_event("start", FX2_ID, true, 1700000001000LL);
    fake_event(f, ev);
    free(ev);
    RUN_UNTIL(b, b->nstarted == 2, 5000);
    assert_int_equal(b->started_created_ms, 0);

    /* Without routes: no inspect, no report. */
    const char *other = "0000000000000000000000000000000000000000000000000000000000000001";
    ev = container_event("start", other, false, 1700000002000LL);
    fake_event(f, ev);
    free(ev);
    run_for(b, 100);
    assert_int_equal(f->n_image, 2);
    assert_int_equal(b->nstarted, 2);
}

/* A rename the events missed is a change the resync finds (and says so),
 * not "resync: no change". */
static void test_resync_sees_rename(void **state)
{
    struct bench *b = *state;
    struct fake *f = &b->fake;
    fake_listen(f, b->sock);
    docker_watch_start(watch(b, 1));
    RUN_UNTIL(b, docker_watch_synced(b->w), 5000);
    assert_true(has_source(b, "fx2"));

    json_error_t jerr;
    json_t *list = json_loads(b->fixture_list, 0, &jerr);
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c) {
        json_t *names = json_object_get(c, "Names");
        if (strcmp(json_string_value(json_array_get(names, 0)), "/fx2") == 0)
            json_array_set_new(names, 0, json_string("/fx2-green"));
    }
    char *renamed = json_dumps(list, JSON_COMPACT);
    json_decref(list);
    fake_set_list(f, renamed);
    free(renamed);
    RUN_UNTIL(b, has_source(b, "fx2-green"), 5000);
    assert_false(has_source(b, "fx2"));
    assert_int_equal(routes_source_count(b->routes), 3);
    assert_int_equal(f->n_events, 1);
    assert_true(log_has(b, "resync found changes the events missed"));
    assert_true(log_has(b, "\"renamed\":1"));
}

/* An engine (or a proxy) that accepts GET /events and never answers: after
 * the request timeout the watcher says so (the error /ready shows) and
 * reconnects with backoff. A live stream that is merely quiet is kept. */
static void test_events_no_head(void **state)
{
    struct bench *b = *state;
    struct fake *f = &b->fake;
    f->silent_events = 1;
    fake_listen(f, b->sock);
    docker_watch_start(watch_with_timeout(b, 0, 300));
    RUN_UNTIL(b, docker_watch_last_error(b->w) != NULL, 5000);
    char want[256];
    snprintf(want, sizeof want, "GET /events %s: no response head within 300 ms", b->host);
    assert_string_equal(docker_watch_last_error(b->w), want);
    assert_string_equal(docker_watch_state(b->w), "reconnecting");
    assert_false(docker_watch_synced(b->w));
    assert_int_equal(f->n_list, 0);
    assert_true(log_has(b, "\"msg\":\"docker unreachable\""));

    RUN_UNTIL(b, docker_watch_synced(b->w), 5000);
    assert_int_equal(f->n_events, 2);
    assert_null(docker_watch_last_error(b->w));
    run_for(b, 800);   /* well past the head deadline: the stream is not timed */
    assert_string_equal(docker_watch_state(b->w), "live");
    assert_int_equal(f->n_events, 2);
}

/* The "tr" (timer) column of this process's established TCP connection to
 * 127.0.0.1:port, and its expiry in 1/100 s; false if there is none. */
static bool tcp_timer_to(int port, unsigned *tr, unsigned long *when)
{
    FILE *fp = fopen("/proc/self/net/tcp", "r");
    assert_non_null(fp);
    char line[512];
    bool found = false;
    while (!found && fgets(line, sizeof line, fp)) {
        unsigned rport, st;
        if (sscanf(line, " %*u: %*x:%*x %*x:%x %x %*x:%*x %x:%lx", &rport, &st, tr, when) == 4 &&
            (int)rport == port && st == 1)
            found = true;
    }
    fclose(fp);
    return found;
}

/* On a tcp:// engine the head deadline holds too, and the /events stream
 * has TCP keepalive on (30 s), so a half-open engine is noticed. */
static void test_events_tcp_deadline_and_keepalive(void **state)
{
    struct bench *b = *state;
    struct fake *f = &b->fake;
    f->silent_events = 1;
    fake_listen_tcp(f);
    snprintf(b->host, sizeof b->host, "tcp://127.0.0.1:%d", f->port);
    docker_watch_start(watch_with_timeout(b, 0, 300));
    RUN_UNTIL(b, docker_watch_last_error(b->w) != NULL, 5000);
    char want[256];
    snprintf(want, sizeof want, "GET /events tcp://127.0.0.1:%d: no response head within 300 ms", f->port);
    assert_string_equal(docker_watch_last_error(b->w), want);

    RUN_UNTIL(b, docker_watch_synced(b->w), 5000);
    assert_int_equal(routes_source_count(b->routes), 3);
    run_for(b, 50);   /* the one-shot calls' connections are closed by now */
    unsigned tr = 0;
    unsigned long when = 0;
    assert_true(tcp_timer_to(f->port, &tr, &when));
    printf("keepalive timer of the /events connection: %lu.%02lu s\n", when / 100, when % 100);
    assert_int_equal(tr, 2);            /* the keepalive timer is armed */
    /* The watcher asks for 30 s (the kernel's default is 2 h). */
    assert_true(when > 2500 && when <= 3000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sync_then_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_during_list_are_replayed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnect_resyncs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreachable_then_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_error_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_version_capped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_huge_event_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_background_resync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_stall_mid_chunk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_stall_mid_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_service_fetch_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_service_fetch_gives_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_swarm_init_noticed_at_resync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rename_event, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resync_sees_rename, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_no_head, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_tcp_deadline_and_keepalive, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
