/* libFuzzer: webhook bodies through format detection and every parser. The
 * input's length picks the event headers (so header-driven detection is
 * reached) without taking bytes from the body: seeds stay valid JSON. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "payload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct payload_hints h = {0};
    static const char *const gh[] = {NULL, "registry_package", "package", "push"};
    h.github_event = gh[size & 3];
    h.gitea_event = (size & 4) ? "package" : NULL;
    struct payload p;
    struct buf err;
    buf_init(&err);
    if (payload_parse((const char *)data, size, &h, &p, &err) == 0) {
        for (size_t i = 0; i < p.n; i++)
            if (!p.events[i].format) __builtin_trap();
    } else if (err.len == 0) {
        __builtin_trap();   /* every refusal says why */
    }
    payload_free(&p);
    buf_free(&err);
    return 0;
}
