/* status_page.c - the HTML status page (see status_page.h). */
#include "status_page.h"

#include <string.h>

void html_escape(struct buf *out, const char *s)
{
    if (!s) return;
    for (const char *p = s; *p; p++) {
        switch (*p) {
        case '&': buf_puts(out, "&amp;"); break;
        case '<': buf_puts(out, "&lt;"); break;
        case '>': buf_puts(out, "&gt;"); break;
        case '"': buf_puts(out, "&quot;"); break;
        case '\'': buf_puts(out, "&#39;"); break;
        default: buf_putc(out, *p);
        }
    }
}

void status_page_render(struct buf *out, const struct handlers_ctx *a, long long now_ms)
{
    (void)a;
    (void)now_ms;
    buf_puts(out, "<!doctype html><title>webhook-router</title>");
}
