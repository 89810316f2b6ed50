/* libFuzzer: URL parsing, redaction and encoding. Redaction must show
 * nothing beyond the authority of a parseable URL, nothing but the scheme of
 * anything else, and always end with the 8-digit fingerprint. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* out ends with "#" and 8 lower-case hex digits; returns the length before them. */
static size_t fingerprint_at(const char *out, size_t len)
{
    if (len < 9 || out[len - 9] != '#') __builtin_trap();
    for (size_t i = len - 8; i < len; i++)
        if (!((out[i] >= '0' && out[i] <= '9') || (out[i] >= 'a' && out[i] <= 'f'))) __builtin_trap();
    return len - 9;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = xstrndup((const char *)data, size);
    struct buf red, enc;
    buf_init(&red);
    buf_init(&enc);
    url_redact(&red, s);
    url_encode(&enc, s);
    const char *out = buf_cstr(&red);
    if (!*s) {
        if (red.len != 0) __builtin_trap();
    } else {
        size_t head = fingerprint_at(out, red.len);
        struct url u;
        if (url_parse(s, &u, NULL) == 0) {
            /* scheme://authority, lower-cased, then exactly "/" "***". */
            const char *auth = strstr(s, "://") + 3;
            size_t alen = strcspn(auth, "/?#");
            size_t slen = (size_t)(auth - s);
            if (head != slen + alen + 4 || strncasecmp(out, s, slen + alen) != 0 ||
                memcmp(out + slen + alen, "/***", 4) != 0 || memchr(out, '@', head))
                __builtin_trap();
            url_free(&u);
        } else {
            /* Refused: at most the scheme survives. */
            size_t pre = head >= 3 ? head - 3 : 0;
            if (head < 3 || memcmp(out + pre, "***", 3) != 0) __builtin_trap();
            if (pre != 0 && !(pre == 7 && strncmp(out, "http://", 7) == 0) &&
                !(pre == 8 && strncmp(out, "https://", 8) == 0))
                __builtin_trap();
        }
    }
    buf_free(&red);
    buf_free(&enc);
    free(s);
    return 0;
}
