/* libFuzzer: the engine's two streams, in pieces whose size derives from
 * the input's length — the /events lines (framing and event parsing) and
 * the container list (json_split, each element through the arena parser). */
#include <stddef.h>
#include <stdint.h>

#include "docker_events.h"
#include "json_parse.h"
#include "json_split.h"

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

static int on_elem(void *ud, const char *text, size_t len)
{
    (void)ud;
    if (len == 0) __builtin_trap();
    if (text[0] != '{' && text[0] != '[') return 0;
    struct jdoc d;
    char err[96];
    int rc = jdoc_parse(&d, text, len, err, sizeof err);
    jdoc_free(&d);
    return rc < 0 ? -1 : 0;
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

    struct json_split js;
    json_split_init(&js, 4096);
    for (size_t off = 0; off < size; off += step) {
        size_t n = size - off < step ? size - off : step;
        if (json_split_feed(&js, (const char *)data + off, n, on_elem, NULL) < 0) break;
    }
    json_split_finish(&js);
    json_split_free(&js);
    return 0;
}
