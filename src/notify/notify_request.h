/* notify_request.h - the HTTP request of one notification, per kind.
 *
 * Each kind is a small pure function from (target, message) to method,
 * URL, headers and body, following the service's documented shape and
 * size limits (Discord 2000 characters, Telegram 4096, Pushover 1024: cut
 * with "…"). Telegram sends one request per chat and Matrix one per room,
 * so a message can be several requests. */
#ifndef WR_NOTIFY_REQUEST_H
#define WR_NOTIFY_REQUEST_H

#include <stddef.h>
#include "buf.h"
#include "notify_target.h"
#include "template.h"

#define NOTIFY_MAX_REQUESTS 8   /* chats or rooms of one target */
#define DISCORD_MAX_CHARS 2000
#define TELEGRAM_MAX_CHARS 4096
#define PUSHOVER_MAX_CHARS 1024

/* One message: its outcome and the values of the placeholders. */
struct notify_message {
    enum notify_outcome_kind outcome;
    struct tpl_vars vars;
};

struct notify_request {
    const char *method;    /* static: "POST" or "PUT" */
    char *url;             /* secret */
    char *headers;         /* raw "Name: value\r\n" lines (User-Agent included) */
    char *body;
    size_t body_len;
};

/* Builds the requests of m for t into reqs (at most max). Returns how
 * many (0 when the target has nothing to send to). Caller frees each with
 * notify_request_free. */
size_t notify_build(const struct notify_target *t, const struct notify_message *m, struct notify_request *reqs,
                    size_t max);
void notify_request_free(struct notify_request *r);

/* The text and title of m for t: its templates, or the defaults. */
void notify_render_text(const struct notify_target *t, const struct notify_message *m, struct buf *out);
void notify_render_title(const struct notify_target *t, const struct notify_message *m, struct buf *out);

/* Discord's 429 body {"retry_after": 1.5, ...}: milliseconds (at most
 * 60000), or -1 when the body says nothing usable. */
long long notify_body_retry_after_ms(const char *body, size_t len);

#endif
