/* json_split.c - top-level elements of a JSON array, from a stream of bytes.
 *
 * Between elements bytes are read one at a time (whitespace, commas, the
 * brackets); inside one, a string's body is skipped with memchr to its
 * next quote, so the work per byte is small where most bytes are. */
#include "json_split.h"

#include <errno.h>
#include <string.h>

enum { JS_OPEN, JS_FIRST, JS_NEXT, JS_AFTER, JS_ELEM, JS_SCALAR, JS_DONE };

void json_split_init(struct json_split *s, size_t max_elem)
{
    memset(s, 0, sizeof *s);
    buf_init(&s->buf);
    s->max_elem = max_elem;
    s->state = JS_OPEN;
}

void json_split_free(struct json_split *s)
{
    buf_free(&s->buf);
}

static int fail(struct json_split *s, int err, const char *why)
{
    s->err = err;
    s->why = why;
    return err;
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/* Scans the element that starts at s->start up to s->buf.len. Returns the
 * offset just past its end, or 0 when more bytes are needed. */
static size_t scan_element(struct json_split *s)
{
    char *b = s->buf.data;
    size_t len = s->buf.len, i = s->scan;
    while (i < len) {
        if (s->in_str) {
            char *q = memchr(b + i, '"', len - i);
            if (!q) {
                i = len;
                break;
            }
            size_t at = (size_t)(q - b), bs = 0;
            while (at - bs > s->start && b[at - bs - 1] == '\\') bs++;
            i = at + 1;
            if (bs % 2) continue;   /* an escaped quote */
            s->in_str = false;
            if (s->depth == 0) {    /* the element is a string */
                s->scan = i;
                return i;
            }
            continue;
        }
        if (s->state == JS_SCALAR) {
            if (is_ws(b[i]) || b[i] == ',' || b[i] == ']') {
                s->scan = i;
                return i;
            }
            i++;
            continue;
        }
        switch (b[i++]) {
        case '"': s->in_str = true; break;
        case '{':
        case '[': s->depth++; break;
        case '}':
        case ']':
            if (--s->depth == 0) {
                s->scan = i;
                return i;
            }
            break;
        default: break;
        }
    }
    s->scan = i;
    return 0;
}

int json_split_feed(struct json_split *s, const char *data, size_t len, json_split_fn on_elem, void *ud)
{
    if (s->err) return s->err;
    buf_append(&s->buf, data, len);
    size_t i = s->scan;
    for (;;) {
        if (s->state == JS_ELEM || s->state == JS_SCALAR) {
            size_t end = scan_element(s);
            if (!end) {
                if (s->buf.len - s->start > s->max_elem) return fail(s, -E2BIG, "an element is too large");
                break;
            }
            s->nelems++;
            int rc = on_elem(ud, s->buf.data + s->start, end - s->start);
            if (rc < 0) return fail(s, rc, "an element was refused");
            s->state = JS_AFTER;
            i = end;
            continue;
        }
        if (i >= s->buf.len) break;
        char c = s->buf.data[i];
        if (is_ws(c)) {
            i++;
            continue;
        }
        switch (s->state) {
        case JS_OPEN:
            if (c != '[') return fail(s, -EINVAL, "'[' expected");
            s->state = JS_FIRST;
            i++;
            continue;
        case JS_AFTER:
            if (c == ',') s->state = JS_NEXT;
            else if (c == ']') s->state = JS_DONE;
            else return fail(s, -EINVAL, "',' or ']' expected");
            i++;
            continue;
        case JS_DONE: return fail(s, -EINVAL, "end of input expected");
        default: break;   /* JS_FIRST, JS_NEXT: an element, or the end */
        }
        if (c == ']' && s->state == JS_FIRST) {
            s->state = JS_DONE;
            i++;
            continue;
        }
        if (c == ']' || c == ',') return fail(s, -EINVAL, "a value expected");
        s->start = s->scan = i;
        s->depth = 0;
        s->in_str = false;
        if (c == '{' || c == '[') {
            s->depth = 1;
            s->scan = i + 1;
            s->state = JS_ELEM;
        } else if (c == '"') {
            s->in_str = true;
            s->scan = i + 1;
            s->state = JS_ELEM;
        } else {
            s->state = JS_SCALAR;
        }
    }
    /* Keep only the unfinished element, at the front. */
    if (s->state == JS_ELEM || s->state == JS_SCALAR) {
        buf_consume(&s->buf, s->start);
        s->scan -= s->start;
        s->start = 0;
    } else {
        buf_reset(&s->buf);
        s->scan = 0;
    }
    return 0;
}

int json_split_finish(struct json_split *s)
{
    if (s->err) return s->err;
    if (s->state != JS_DONE) return fail(s, -EINVAL, "the array is not closed");
    return 0;
}
