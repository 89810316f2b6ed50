/* engine_update_pick.h - what an update installs (SPEC: Engine updates).
 *
 * Only the object's own image: the registry and repository of its own
 * image reference, whatever a host-less label matched, pulled by the
 * pushed digest. Only its own tag, unless its tag label asks for others,
 * and never an older version than it runs. Also how long to wait for a new
 * container to turn healthy. Pure: no I/O, unit-tested. */
#ifndef WR_ENGINE_UPDATE_PICK_H
#define WR_ENGINE_UPDATE_PICK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

struct engine_pick {
    char repo[800];     /* what the engine pulls, as the object's reference writes it:
                         * "127.0.0.1:5000/team/app", "nginx" */
    char tag[256];      /* the tag the object is left on: the pushed one */
    char digest[160];   /* the pushed digest; "" when the event has none */
    char host[256];     /* the own registry, normalised ("docker.io" for Hub): whose credentials */
    char path[512];     /* the own repository, normalised ("library/nginx") */
};

/* own_image: the container's Config.Image or the service's
 * ContainerSpec.Image. tag_label: the object's <prefix>.tag label, or NULL.
 * The event's registry may be NULL (a host-less generic event: the own
 * registry is used). Returns 0 with *out filled when the push applies, or
 * 1 when it does not (why says why, for an info line), or -EINVAL when the
 * own reference cannot be read (why says so). */
int engine_update_pick(const char *own_image, const char *tag_label, const char *ev_registry,
                       const char *ev_repository, const char *ev_tag, const char *ev_digest,
                       struct engine_pick *out, char *why, size_t whylen);

/* Whether an image's RepoDigests (["127.0.0.1:5000/team/app@sha256:..."])
 * hold the picked repository at the picked digest: what was pulled is what
 * was pushed. */
bool engine_pick_pulled(const struct engine_pick *p, json_t *repo_digests);

/* Version order of two tags ("v1.2.10" > "v1.2.9" > "1.2.9-rc1"): returns
 * <0, 0 or >0, and *comparable false (result 0) unless both read as
 * versions: an optional 'v', dot-separated numbers, an optional "-pre" or
 * "+build" suffix. */
int engine_version_cmp(const char *a, const char *b, bool *comparable);

/* How long a new container may take to turn healthy: its health check's
 * start period + interval x retries + timeout (Docker's defaults for what
 * is unset: 30 s, 3, 30 s), never less than floor_ms. healthcheck is the
 * Config.Healthcheck in force (the container's own, else the image's). */
uint64_t engine_update_health_wait_ms(json_t *healthcheck, uint64_t floor_ms);

#endif
