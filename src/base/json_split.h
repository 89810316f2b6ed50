/* json_split.h - the elements of a JSON array that arrives in pieces.
 *
 * Each top-level element is handed over whole, as text, as soon as its
 * last byte is in: a list of thousands of containers is parsed one
 * container at a time, so memory follows the largest element, not the
 * list. Only the array's framing is checked here (the brackets, the
 * commas, where strings begin and end); whoever parses an element checks
 * the rest of it. Pure: no I/O. */
#ifndef WR_JSON_SPLIT_H
#define WR_JSON_SPLIT_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

struct json_split {
    struct buf buf;       /* bytes of the element being read, from `start` */
    size_t start, scan;   /* the element's first byte; the next byte to look at */
    size_t max_elem;
    int state;
    int depth;            /* open brackets of the element */
    bool in_str;
    int err;              /* 0, or the error every later feed returns */
    const char *why;      /* what was wrong, for a log line */
    size_t nelems;
};

/* An element is called back with on_elem(ud, text, len); a negative return
 * stops the split and is returned by json_split_feed from then on. */
typedef int (*json_split_fn)(void *ud, const char *elem, size_t len);

void json_split_init(struct json_split *s, size_t max_elem);
/* 0; -EINVAL for a malformed array, -E2BIG for an element over max_elem
 * (s->why says which); or on_elem's error. */
int json_split_feed(struct json_split *s, const char *data, size_t len, json_split_fn on_elem, void *ud);
/* 0 when the array was closed (and nothing but whitespace followed), else
 * -EINVAL, or the error of a failed feed. */
int json_split_finish(struct json_split *s);
void json_split_free(struct json_split *s);

#endif
