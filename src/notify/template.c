/* template.c - see template.h. A compiled template is a list of parts:
 * literal text (a slice of its own copy of the source) or a placeholder. */
#include "template.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "url.h"

static const char *const var_names[TV_COUNT] = {
    "repository", "tag", "digest", "registry", "image", "event_id", "source", "outcome",
    "objects", "error", "status", "attempts", "duration_ms", "time",
};

const char *tpl_var_name(enum tpl_var v)
{
    return var_names[v];
}

struct part {
    size_t off, len;   /* literal: a slice of src */
    int var;           /* -1: literal */
};

struct template {
    char *src;
    struct part *parts;
    size_t n;
};

static bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || c == '_';
}

static void add_part(struct template *t, size_t *cap, struct part p)
{
    if (p.var < 0 && p.len == 0) return;
    if (t->n == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        t->parts = xrealloc(t->parts, *cap * sizeof *t->parts);
    }
    t->parts[t->n++] = p;
}

struct template *template_compile(const char *src, char *err, size_t errlen)
{
    struct template *t = xcalloc(1, sizeof *t);
    t->src = xstrdup(src);
    size_t cap = 0, lit = 0, i = 0;
    while (t->src[i]) {
        if (t->src[i] != '{') {
            i++;
            continue;
        }
        size_t j = i + 1;
        while (is_name_char(t->src[j])) j++;
        if (j == i + 1 || t->src[j] != '}') {   /* not a placeholder: text */
            i++;
            continue;
        }
        size_t nlen = j - i - 1;
        int var = -1;
        for (int v = 0; v < TV_COUNT; v++)
            if (strlen(var_names[v]) == nlen && memcmp(var_names[v], t->src + i + 1, nlen) == 0) var = v;
        if (var < 0) {
            snprintf(err, errlen, "unknown placeholder {%.*s} (known: {repository} {tag} {digest} "
                     "{registry} {image} {event_id} {source} {outcome} {objects} {error} {status} "
                     "{attempts} {duration_ms} {time})", (int)(nlen > 40 ? 40 : nlen), t->src + i + 1);
            template_free(t);
            return NULL;
        }
        add_part(t, &cap, (struct part){lit, i - lit, -1});
        add_part(t, &cap, (struct part){0, 0, var});
        i = j + 1;
        lit = i;
    }
    add_part(t, &cap, (struct part){lit, i - lit, -1});
    return t;
}

void template_free(struct template *t)
{
    if (!t) return;
    free(t->parts);
    free(t->src);
    free(t);
}

void tpl_put_escaped(struct buf *out, const char *s, enum tpl_escape esc)
{
    if (!s) s = "";
    switch (esc) {
    case TPL_PLAIN:
        buf_puts(out, s);
        break;
    case TPL_URL:
        url_encode(out, s);
        break;
    case TPL_JSON: {
        /* json_put_strn writes the quotes too: the value goes inside a
         * string the template already opened. */
        size_t at = out->len;
        json_put_strn(out, s, strlen(s));
        memmove(out->data + at, out->data + at + 1, out->len - at - 2);
        out->len -= 2;
        out->data[out->len] = '\0';
        break;
    }
    }
}

void template_render(const struct template *t, const struct tpl_vars *vars, enum tpl_escape esc,
                     struct buf *out)
{
    for (size_t i = 0; i < t->n; i++) {
        const struct part *p = &t->parts[i];
        if (p->var < 0) buf_append(out, t->src + p->off, p->len);
        else tpl_put_escaped(out, vars->v[p->var], esc);
    }
}

static bool is_cont(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

void tpl_truncate(struct buf *b, size_t from, size_t max)
{
    if (from > b->len || max == 0) return;
    size_t chars = 0, cut = 0;   /* cut: where the (max-1)th character ends */
    for (size_t i = from; i < b->len; i++) {
        if (is_cont((unsigned char)b->data[i])) continue;
        if (chars == max - 1) cut = i;
        chars++;
    }
    if (chars <= max) return;
    b->len = cut;
    buf_puts(b, "\xE2\x80\xA6");   /* … */
}
