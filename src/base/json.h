/* json.h - writing JSON text. Reading is json_parse.h's job for webhook
 * bodies and jansson's for the Docker API; building our small responses and
 * log lines by hand is faster and keeps key order stable. */
#ifndef WR_JSON_H
#define WR_JSON_H

#include <stddef.h>
#include <string.h>

#include "buf.h"

/* Appends s (n bytes) as a quoted JSON string. Control characters, quotes and
 * backslashes are escaped; invalid UTF-8 bytes become U+FFFD so the output is
 * always valid JSON whatever the input. */
void json_put_strn(struct buf *b, const char *s, size_t n);
void json_put_str(struct buf *b, const char *s);   /* NULL writes null */

/* Appends `"key":` (key is trusted, not escaped) - with a leading comma
 * unless *first is set, which it then clears. Inline: keys are literals
 * nearly everywhere, so their length folds when compiling. */
static inline void json_put_key(struct buf *b, const char *key, int *first)
{
    size_t n = __builtin_strlen(key);
    buf_reserve(b, n + 4);
    char *d = b->data + b->len;
    if (*first) *first = 0;
    else *d++ = ',';
    *d++ = '"';
    memcpy(d, key, n);
    d += n;
    *d++ = '"';
    *d++ = ':';
    *d = '\0';
    b->len = (size_t)(d - b->data);
}

/* json_put_key then json_put_str: one "key":"value" member (NULL: null). */
static inline void json_put_member(struct buf *b, const char *key, const char *value, int *first)
{
    json_put_key(b, key, first);
    json_put_str(b, value);
}
/* json_put_member for each pair of kv: key, value, key, value, ..., NULL
 * (a value may be NULL: null). */
void json_put_members(struct buf *b, const char *const *kv, int *first);

#endif
