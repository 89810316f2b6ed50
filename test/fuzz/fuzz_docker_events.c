/* libFuzzer: the /events stream — line framing across read boundaries
 * (their size derived from the input's length) and event parsing. */
#include <stddef.h>
#include <stdint.h>

#include "docker_events.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_line(void *ud, const char *line, size_t len)
{
    (void)ud;
    struct docker_event ev;
    const char *err;
    if (docker_event_parse(line, len, &ev, &err) == 0) {
        if (!ev.attributes || !ev.action || !ev.id) __builtin_trap();
        docker_event_free(&ev);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t step = size % 64 + 1;
    struct line_splitter ls;
    line_splitter_init(&ls, 4096);
    for (size_t off = 0; off < size; off += step) {
        size_t n = size - off < step ? size - off : step;
        if (line_splitter_feed(&ls, (const char *)data + off, n, on_line, NULL) < 0) {
            line_splitter_free(&ls);
            line_splitter_init(&ls, 4096);
        }
    }
    line_splitter_free(&ls);
    return 0;
}
