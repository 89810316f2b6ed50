/* status_page.h - GET /status and GET /: one self-contained HTML page.
 *
 * Server-rendered from what the endpoints read (struct handlers_ctx), pure:
 * no I/O, the time is passed in. No script, no outside resource; it
 * refreshes itself every 10 s. Every string that came from outside (event
 * ids, label values, container names, errors) is HTML-escaped. */
#ifndef WR_STATUS_PAGE_H
#define WR_STATUS_PAGE_H

#include "buf.h"
#include "handlers.h"

void status_page_render(struct buf *out, const struct handlers_ctx *a, long long now_ms);

/* Appends s with & < > " ' escaped (NULL appends nothing). */
void html_escape(struct buf *out, const char *s);

#endif
