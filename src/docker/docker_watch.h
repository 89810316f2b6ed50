/* docker_watch.h - keeps the route table exact for one Docker engine.
 *
 * Start-up and every reconnect: GET /version (negotiate the API version),
 * subscribe to /events, and once the subscription is live list
 * /containers/json?all=1 with a label filter; events that arrive while the
 * list is in flight are buffered and replayed on top of it, so no change in
 * between is lost. Then container create/destroy/rename events update the
 * table (a full resync compares names too);
 * service events are followed by GET /services/<id>, retried on its own
 * (0.5 s, 1 s, 2 s) when it fails, then replaced by a list of the engine
 * (the /events stream stays): one failed GET never drops the connection.
 * The background resync (cache_ttl_secs) asks GET /info first: a node that
 * became a Swarm manager since (or stopped being one) is subscribed again
 * with the fitting event filter, and services are listed (or dropped).
 * Every response head, /events included, has a deadline (request_timeout_ms);
 * the /events stream of a tcp:// engine has TCP keepalive on (30 s).
 * On EOF or error the last map is kept and the watcher reconnects with
 * backoff (0.5 s doubling to 30 s), then resyncs completely.
 * Only GET requests, ever. */
#ifndef WR_DOCKER_WATCH_H
#define WR_DOCKER_WATCH_H

#include <stdbool.h>
#include <jansson.h>
#include <uv.h>
#include "docker_host.h"
#include "http_client.h"
#include "log.h"
#include "docker_engine.h"
#include "routes.h"

/* A labelled object began running something: a container started (its
 * image inspected once for RepoDigests), or a service's spec was fetched
 * after a create/update event. What deploy confirmation reads; all
 * borrowed for the call. */
struct docker_started {
    const char *engine;
    const char *kind;              /* "container" or "service" */
    const char *id;
    const char *name;              /* may be NULL */
    json_t *labels;                /* the object's labels (a container's event attributes) */
    const char *image;             /* the reference it runs */
    const char *const *digests;    /* container: its image's RepoDigests; service: its task image */
    size_t ndigests;
    long long created_ms;          /* wall clock; 0 unknown (created before the watcher saw it) */
    long long started_ms;          /* container start / service update, wall clock */
};
typedef void (*docker_started_fn)(void *ud, const struct docker_started *s);

struct docker_watch_opts {
    struct docker_engine *engine;  /* one DOCKER_HOST entry (not owned: outlives the watcher) */
    const char *label_prefix;
    int cache_ttl_secs;           /* background resync; 0 = off (issue 5) */
    uint64_t request_timeout_ms;  /* one API call, and every response head (/events included); 0 = 30 s */
    struct route_table *routes;
    const struct logger *log;
    docker_started_fn on_started;   /* optional: then container start events are followed too */
    void *started_ud;
};

struct docker_watch;

struct docker_watch *docker_watch_new(uv_loop_t *loop, const struct docker_watch_opts *opts);
/* Begins connecting; failures are retried forever with backoff. (The
 * address was checked when DOCKER_HOST was parsed: nothing can fail here.) */
void docker_watch_start(struct docker_watch *w);
/* true once the first full sync completed (stays true across reconnects). */
bool docker_watch_synced(const struct docker_watch *w);
/* "connecting", "syncing", "live", "reconnecting" */
const char *docker_watch_state(const struct docker_watch *w);
/* Last connection problem, e.g. "connect unix:///var/run/docker.sock: no such file or directory"; NULL if none. */
const char *docker_watch_last_error(const struct docker_watch *w);
/* The DOCKER_HOST entry, blanks trimmed: names the engine in logs and routes. */
const char *docker_watch_host(const struct docker_watch *w);
/* Connections lost (or never made) so far: each one is a reconnect. */
unsigned long docker_watch_reconnects(const struct docker_watch *w);
/* GET /images/<ref>/json on this engine (a GET like the rest; behind
 * docker-socket-proxy it needs IMAGES=1): what the registry watcher reads
 * a container image's RepoDigests from. cb gets 0 and the parsed image
 * (borrowed for the call), or a negative errno and NULL; never after
 * docker_watch_inspect_cancel or docker_watch_close. */
struct docker_inspect;
typedef void (*docker_image_fn)(void *ud, int err, json_t *image);
struct docker_inspect *docker_watch_inspect_image(struct docker_watch *w, const char *ref, docker_image_fn cb,
                                                  void *ud);
void docker_watch_inspect_cancel(struct docker_inspect *q);

/* Stops and frees (asynchronously; handles are closed by the loop), then
 * calls cb (may be NULL). Closing twice is a bug (an assert says so). */
void docker_watch_close(struct docker_watch *w, void (*cb)(void *ud), void *ud);

#endif
