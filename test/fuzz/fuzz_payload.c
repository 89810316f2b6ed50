/* libFuzzer: webhook bodies through format detection and every parser. The
 * input's length picks the event headers (so header-driven detection is
 * reached) without taking bytes from the body: seeds stay valid JSON.
 *
 * Also differential: our JSON reader (json_parse.c) must accept exactly
 * what jansson accepts, and read the same values, except where the two are
 * documented to differ: integers beyond int64, nesting past
 * JSON_MAX_DEPTH, numbers longer than our buffer, and NUL bytes (jansson
 * lets some through outside strings, e.g. "[54<NUL>]"; we refuse them). */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "json_parse.h"
#include "payload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t distinct_keys(const struct jv *o)
{
    size_t n = 0;
    for (uint32_t i = 0; i < o->n; i++) {
        const struct jv *k = &o->u.items[2 * i];
        bool seen = false;
        for (uint32_t j = 0; j < i && !seen; j++) {
            const struct jv *p = &o->u.items[2 * j];
            seen = p->n == k->n && memcmp(p->u.str, k->u.str, k->n) == 0;
        }
        n += !seen;
    }
    return n;
}

static bool same(const struct jv *a, json_t *b)
{
    switch (a->type) {
    case JV_NULL: return json_is_null(b);
    case JV_TRUE: return json_is_true(b);
    case JV_FALSE: return json_is_false(b);
    case JV_NUMBER:
        if (a->is_int) return json_is_integer(b) && json_integer_value(b) == a->u.i;
        return json_is_real(b) && json_real_value(b) == a->u.num;
    case JV_STRING:
        return json_is_string(b) && json_string_length(b) == a->n && memcmp(json_string_value(b), a->u.str, a->n) == 0;
    case JV_ARRAY:
        if (!json_is_array(b) || json_array_size(b) != a->n) return false;
        for (uint32_t i = 0; i < a->n; i++)
            if (!same(&a->u.items[i], json_array_get(b, i))) return false;
        return true;
    case JV_OBJECT: {
        if (!json_is_object(b) || a->n > 2000 || json_object_size(b) != distinct_keys(a)) return a->n > 2000;
        const char *key;
        json_t *v;
        json_object_foreach(b, key, v) {
            const struct jv *mine = jv_get(a, key);
            if (!mine || !same(mine, v)) return false;
        }
        return true;
    }
    }
    return false;
}

static void differential(const char *text, size_t size)
{
    struct jdoc doc;
    char err[160];
    json_error_t jerr;
    int ours = jdoc_parse(&doc, text, size, err, sizeof err);
    json_t *theirs = json_loadb(text, size, 0, &jerr);
    /* jansson refuses integers past int64 ("too big integer", "too big
     * negative integer"); we keep them as doubles. */
    bool too_big = !theirs && strstr(jerr.text, "too big") && strstr(jerr.text, "integer");
    bool known_difference = memchr(text, '\0', size) != NULL || too_big ||
                            (!theirs && strstr(jerr.text, "maximum parsing depth")) ||
                            (ours < 0 && (strstr(err, "too deeply nested") || strstr(err, "number too long")));
    if (!known_difference) {
        if ((ours == 0) != (theirs != NULL)) __builtin_trap();   /* one accepts what the other refuses */
        if (ours == 0 && !same(doc.root, theirs)) __builtin_trap();
    }
    json_decref(theirs);
    jdoc_free(&doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    differential((const char *)data, size);

    struct payload_hints h = {0};
    static const char *const gh[] = {NULL, "registry_package", "package", "push"};
    h.github_event = gh[size & 3];
    h.gitea_event = (size & 4) ? "package" : NULL;
    struct payload p;
    struct buf err;
    buf_init(&err);
    /* As /webhook parses: in the caller's memory, spilling past it. */
    unsigned char mem[2048];
    if (payload_parse_in((const char *)data, size, &h, mem, (size & 8) ? sizeof mem : 300, &p, &err) == 0) {
        for (size_t i = 0; i < p.n; i++)
            if (!p.events[i].format) __builtin_trap();
    } else if (err.len == 0) {
        __builtin_trap();   /* every refusal says why */
    }
    payload_free(&p);
    buf_free(&err);
    return 0;
}
