/* template.h - the message templates of notifications: a one-pass {name}
 * substitution, nothing more (no loops, no conditionals).
 *
 * A placeholder is '{' + lower-case letters or '_' + '}'. Any other brace is
 * text, so a JSON body template ({"text":"{image}"}) needs no escaping of
 * its own braces. A placeholder with an unknown name is refused when the
 * template is compiled (at start-up), never at send time. Pure. */
#ifndef WR_TEMPLATE_H
#define WR_TEMPLATE_H

#include <stddef.h>
#include "buf.h"

/* The SPEC's placeholders, in its order. */
enum tpl_var {
    TV_REPOSITORY, TV_TAG, TV_DIGEST, TV_REGISTRY, TV_IMAGE, TV_EVENT_ID, TV_SOURCE, TV_OUTCOME,
    TV_OBJECTS, TV_ERROR, TV_STATUS, TV_ATTEMPTS, TV_DURATION_MS, TV_TIME,
    TV_COUNT
};
const char *tpl_var_name(enum tpl_var v);

/* The values of one message; NULL reads as "". */
struct tpl_vars {
    const char *v[TV_COUNT];
};

/* How a value is escaped where it stands: inside a JSON string, inside a
 * URL, or in plain text (as is). The template's own text is never changed. */
enum tpl_escape { TPL_PLAIN, TPL_JSON, TPL_URL };

struct template;

/* Compiles src. Returns NULL with a reason in err ("unknown placeholder
 * {foo}") when it names an unknown placeholder. */
struct template *template_compile(const char *src, char *err, size_t errlen);
void template_free(struct template *t);
void template_render(const struct template *t, const struct tpl_vars *vars, enum tpl_escape esc,
                     struct buf *out);

/* Appends s escaped for esc (what template_render does to a value). */
void tpl_put_escaped(struct buf *out, const char *s, enum tpl_escape esc);

/* Cuts the text in b from byte `from` on to at most max characters
 * (code points), the last being "…" when anything was cut. Never splits a
 * UTF-8 sequence. */
void tpl_truncate(struct buf *b, size_t from, size_t max);

#endif
