/* libFuzzer: URL parsing, redaction and encoding. Redaction must never let
 * the last path segment or the query of a parseable URL through. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = xstrndup((const char *)data, size);
    struct buf red, enc;
    buf_init(&red);
    buf_init(&enc);
    url_redact(&red, s);
    url_encode(&enc, s);
    struct url u;
    if (url_parse(s, &u, NULL) == 0) {
        /* A query is secret: after redaction it reads "?***" and nothing more. */
        const char *q = strchr(s, '?');
        const char *frag = strchr(s, '#');
        if (frag && q && q > frag) q = NULL;   /* inside the fragment, which is hidden whole */
        const char *rq = strchr(buf_cstr(&red), '?');
        if (q && q[1] && q[1] != '#' && (!rq || strncmp(rq, "?***", 4) != 0 || (rq[4] && rq[4] != '#')))
            __builtin_trap();
        url_free(&u);
    }
    buf_free(&red);
    buf_free(&enc);
    free(s);
    return 0;
}
