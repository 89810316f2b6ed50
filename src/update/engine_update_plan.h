/* engine_update_plan.h - the pure half of engine updates: what a container
 * recreate sends to the engine, and the router's own container id. No I/O;
 * unit-tested against captured inspects (test_engine_update_plan.c). */
#ifndef WR_ENGINE_UPDATE_PLAN_H
#define WR_ENGINE_UPDATE_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

/* A container recreate: the body of POST /containers/create (the old
 * Config with image replaced and the old image's defaults dropped, the
 * whole HostConfig plus the anonymous volumes by name, the first network's
 * endpoint) and the other networks, [{"Network": name, "EndpointConfig":
 * {...}}], for POST /networks/<name>/connect. old_image_config is the old
 * image's Config (GET /images/<id>/json), or NULL to keep every value.
 * Returns 0, or -EINVAL with a reason in err. */
struct engine_create_plan {
    json_t *body;
    json_t *connect;
};
int engine_update_build_create(json_t *inspect, const char *image, json_t *old_image_config,
                               struct engine_create_plan *out, char *err, size_t errlen);
void engine_create_plan_free(struct engine_create_plan *p);

/* The router's own container id, found in the text of /proc/self/mountinfo
 * or /proc/self/cgroup (app.c reads them). Writes 64 hex digits. */
bool engine_update_find_container_id(const char *text, char out[65]);

#endif
