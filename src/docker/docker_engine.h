/* docker_engine.h - one Docker engine as the router talks to it.
 *
 * A handle per DOCKER_HOST entry: where to connect (unix socket or tcp), the
 * Host header to send, and the API version both sides speak. The watcher and
 * the updater call the engine through it, so there is one rule for the
 * version (MIN_API..MAX_API) and one way a request to an engine is built. */
#ifndef WR_DOCKER_ENGINE_H
#define WR_DOCKER_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include "docker_host.h"
#include "http_client.h"

#define DOCKER_MIN_API "1.24"   /* the oldest API this code can work with */
#define DOCKER_MAX_API "1.45"   /* the newest it was written against */

struct docker_engine;

/* host is copied. The engine's calls go through http (not owned). */
struct docker_engine *docker_engine_new(struct http_client *http, const struct docker_host *host);
/* Its calls must have been cancelled or completed by their owners. NULL: nothing. */
void docker_engine_free(struct docker_engine *e);

/* The DOCKER_HOST entry's text: names the engine in logs, /ready, /routes. */
const char *docker_engine_name(const struct docker_engine *e);
/* "" until a version was taken. */
const char *docker_engine_api(const struct docker_engine *e);

/* The version to speak to an engine that reports `reported` (GET
 * /version's ApiVersion): itself, or DOCKER_MAX_API when newer. Writes it
 * to out and returns 0; -ENOTSUP when older than DOCKER_MIN_API or not a
 * version at all. Pure. */
int docker_api_pick(const char *reported, char *out, size_t outlen);
/* docker_api_pick for this engine; on success its calls are versioned. */
int docker_engine_take_version(struct docker_engine *e, const char *reported);

/* One call to the engine: what http_client_opts says, but for the target
 * (built here) and the Host header. path is relative to the API version,
 * "/containers/json?all=1", sent as "/v1.45/containers/json?all=1" once a
 * version was taken and as is before (the engine then takes its own);
 * "/version" is always sent as is. Accept: application/json is always
 * sent; opts->headers adds to it. Returns the call (cancel with
 * http_call_cancel). */
struct http_call *docker_engine_call(struct docker_engine *e, const char *method, const char *path,
                                     const struct http_client_opts *opts);

#endif
