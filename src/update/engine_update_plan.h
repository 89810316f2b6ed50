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

/* An unfinished recreate found at start-up: the container renamed aside
 * ("<name>-old-<id>", its inspect) and the one now under <name> (its
 * inspect, or NULL when there is none). FINISH: the new one runs (and is
 * healthy when it has a check): remove the old. UNDO: put the old one back
 * (*was_running: start it, it ran before the update stopped it). LEAVE: the
 * name belongs to a container that does not name the old one in
 * replaces_label. *why says which, for the warn line. */
enum engine_recover_action { RECOVER_LEAVE, RECOVER_FINISH, RECOVER_UNDO };
enum engine_recover_action engine_update_recover_decide(json_t *aside, json_t *named, const char *replaces_label,
                                                        bool *was_running, const char **why);

/* The container's own name (without '/') when it is one an update set
 * aside for container id: "<name>-old-<first 12 of id>"; the length of
 * <name> into *n. */
bool engine_update_aside_name(const char *name, const char *id, size_t *n);

/* The router's own container id, found in the text of /proc/self/mountinfo
 * or /proc/self/cgroup (app.c reads them). Writes 64 hex digits. */
bool engine_update_find_container_id(const char *text, char out[65]);

#endif
