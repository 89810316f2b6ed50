/* docker_events.h - the Docker /events stream, parsed without I/O.
 *
 * The HTTP layer removes the chunked framing; what is left is JSON objects
 * separated by newlines, which may be split anywhere across reads. */
#ifndef WR_DOCKER_EVENTS_H
#define WR_DOCKER_EVENTS_H

#include <jansson.h>
#include <stddef.h>
#include "buf.h"

struct line_splitter {
    struct buf pending;   /* an incomplete line carried to the next feed */
    size_t max_line;      /* a longer line is an error (-E2BIG) */
};

void line_splitter_init(struct line_splitter *ls, size_t max_line);
void line_splitter_free(struct line_splitter *ls);
/* Calls on_line for each complete line (without '\n'; empty lines skipped).
 * Returns 0 or -E2BIG; after an error the splitter must be reset. */
int line_splitter_feed(struct line_splitter *ls, const char *data, size_t len,
                       void (*on_line)(void *ud, const char *line, size_t len), void *ud);

enum docker_event_type { DOCKER_EVENT_CONTAINER, DOCKER_EVENT_SERVICE, DOCKER_EVENT_OTHER };

struct docker_event {
    enum docker_event_type type;
    const char *action;       /* "create", "destroy", "update", "remove", ... */
    const char *id;           /* Actor.ID */
    json_t *attributes;       /* Actor.Attributes object (labels + name, image...), never NULL */
    long long time_nano;      /* timeNano, 0 if absent */
    json_t *root;             /* owns everything above */
};

/* Returns 0 or -EINVAL with *err set to a static reason. */
int docker_event_parse(const char *line, size_t len, struct docker_event *ev, const char **err);
void docker_event_free(struct docker_event *ev);

#endif
