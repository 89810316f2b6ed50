/* docker_events.c - framing and parsing of the Docker /events stream. */
#include "docker_events.h"

#include <errno.h>
#include <string.h>

void line_splitter_init(struct line_splitter *ls, size_t max_line)
{
    buf_init(&ls->pending);
    ls->max_line = max_line;
}

void line_splitter_free(struct line_splitter *ls)
{
    buf_free(&ls->pending);
}

int line_splitter_feed(struct line_splitter *ls, const char *data, size_t len,
                       void (*on_line)(void *ud, const char *line, size_t len), void *ud)
{
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t)(nl - data) : len;
        if (ls->pending.len + take > ls->max_line) {
            buf_reset(&ls->pending);
            return -E2BIG;
        }
        if (!nl) {
            buf_append(&ls->pending, data, take);
            return 0;
        }
        const char *line = data;
        size_t n = take;
        if (ls->pending.len) {
            /* Only a line split across reads is copied. */
            buf_append(&ls->pending, data, take);
            line = ls->pending.data;
            n = ls->pending.len;
        }
        if (n && line[n - 1] == '\r') n--;
        if (n) on_line(ud, line, n);
        buf_reset(&ls->pending);
        data += take + 1;
        len -= take + 1;
    }
    return 0;
}

int docker_event_parse(const char *line, size_t len, struct docker_event *ev, const char **err)
{
    memset(ev, 0, sizeof *ev);
    json_error_t jerr;
    json_t *root = json_loadb(line, len, 0, &jerr);
    if (!root) {
        *err = "event is not valid JSON";
        return -EINVAL;
    }
    json_t *type = json_object_get(root, "Type");
    json_t *action = json_object_get(root, "Action");
    json_t *actor = json_object_get(root, "Actor");
    json_t *id = json_is_object(actor) ? json_object_get(actor, "ID") : NULL;
    if (!json_is_object(root) || !json_is_string(type) || !json_is_string(action) ||
        !json_is_string(id)) {
        *err = "event lacks Type, Action or Actor.ID";
        json_decref(root);
        return -EINVAL;
    }
    json_t *attrs = json_object_get(actor, "Attributes");
    if (attrs && !json_is_object(attrs)) {
        *err = "event Actor.Attributes is not an object";
        json_decref(root);
        return -EINVAL;
    }
    if (!attrs) {
        /* Give callers an object always; the root owns it from here. */
        attrs = json_object();
        json_object_set_new(actor, "Attributes", attrs);
    }
    const char *t = json_string_value(type);
    ev->type = !strcmp(t, "container") ? DOCKER_EVENT_CONTAINER
             : !strcmp(t, "service")   ? DOCKER_EVENT_SERVICE
                                       : DOCKER_EVENT_OTHER;
    ev->action = json_string_value(action);
    ev->id = json_string_value(id);
    ev->attributes = attrs;
    json_t *tn = json_object_get(root, "timeNano");
    ev->time_nano = json_is_integer(tn) ? (long long)json_integer_value(tn) : 0;
    ev->root = root;
    return 0;
}

void docker_event_free(struct docker_event *ev)
{
    json_decref(ev->root);
    memset(ev, 0, sizeof *ev);
}
