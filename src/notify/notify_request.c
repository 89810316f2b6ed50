/* notify_request.c - see notify_request.h. */
#include "notify_request.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "url.h"

static const char *const default_text[NO_COUNT] = {
    [NO_PUSH] = "New image {image} ({digest}) for {objects}",
    [NO_DELIVERED] = "Redeploy of {objects} requested for {image} (HTTP {status})",
    [NO_DEPLOYED] = "{objects} now run {image}",
    [NO_UNCONFIRMED] = "Not confirmed: {objects} do not run {image} ({digest})",
    [NO_FAILED] = "Redeploy of {objects} to {image} failed: {error}",
};

static void render_default(const char *src, const struct notify_message *m, struct buf *out)
{
    /* The defaults are known to compile: they use SPEC placeholders only. */
    char err[8];
    struct template *t = template_compile(src, err, sizeof err);
    template_render(t, &m->vars, TPL_PLAIN, out);
    template_free(t);
}

void notify_render_text(const struct notify_target *t, const struct notify_message *m, struct buf *out)
{
    if (t->text) template_render(t->text, &m->vars, TPL_PLAIN, out);
    else render_default(default_text[m->outcome], m, out);
}

void notify_render_title(const struct notify_target *t, const struct notify_message *m, struct buf *out)
{
    if (t->title) template_render(t->title, &m->vars, TPL_PLAIN, out);
    else render_default("webhook-router: {outcome} {repository}:{tag}", m, out);
}

/* ---- request assembly ----------------------------------------------------- */

struct build {
    const struct notify_target *t;
    const struct notify_message *m;
    struct buf text, title;
};

static void put_auth(struct buf *h, const struct notify_target *t, const char *bearer)
{
    if (bearer) {
        buf_printf(h, "Authorization: Bearer %s\r\n", bearer);
    } else if (t->basic) {
        /* Base64 by hand: the one use in the program. */
        static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const unsigned char *s = (const unsigned char *)t->basic;
        size_t n = strlen(t->basic);
        buf_puts(h, "Authorization: Basic ");
        for (size_t i = 0; i < n; i += 3) {
            unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0) | (i + 2 < n ? s[i + 2] : 0);
            char q[4] = {b64[v >> 18 & 63], b64[v >> 12 & 63], i + 1 < n ? b64[v >> 6 & 63] : '=',
                         i + 2 < n ? b64[v & 63] : '='};
            buf_append(h, q, 4);
        }
        buf_puts(h, "\r\n");
    }
}

/* Finishes one request: Content-Type and User-Agent, the kind's own
 * header lines (extra, may be NULL), then the auth (bearer when the kind
 * sends one, else the URL's Basic); the body is taken. */
static size_t emit(struct notify_request *r, const struct build *b, const char *method, const char *url,
                   const char *content_type, const char *extra, const char *bearer, struct buf *body)
{
    struct buf h;
    buf_init(&h);
    buf_printf(&h, "Content-Type: %s\r\n", content_type ? content_type : "application/json");
    buf_printf(&h, "User-Agent: webhook-router/%s\r\n", WR_VERSION);
    if (extra) buf_puts(&h, extra);
    put_auth(&h, b->t, bearer);
    r->method = method;
    r->url = xstrdup(url);
    r->headers = buf_steal(&h);
    r->body_len = body->len;
    r->body = body->data ? buf_steal(body) : xstrdup("");
    return 1;
}

/* "title\ntext", or the text alone when the title is empty. */
static void titled(struct buf *out, const struct build *b, const char *bold)
{
    if (b->title.len) {
        buf_printf(out, "%s%s%s\n", bold, buf_cstr(&b->title), bold);
    }
    buf_puts(out, buf_cstr(&b->text));
}

static size_t json_text(struct notify_request *r, const struct build *b, const char *key, const char *bold,
                        size_t max_chars)
{
    struct buf msg, body;
    buf_init(&msg);
    buf_init(&body);
    titled(&msg, b, bold);
    if (max_chars) tpl_truncate(&msg, 0, max_chars);
    int first = 1;
    buf_putc(&body, '{');
    json_put_member(&body, key, buf_cstr(&msg), &first);
    buf_putc(&body, '}');
    buf_free(&msg);
    return emit(r, b, "POST", b->t->url, NULL, NULL, NULL, &body);
}

static size_t build_teams(struct notify_request *r, const struct build *b)
{
    struct buf body;
    buf_init(&body);
    buf_puts(&body, "{\"type\":\"message\",\"attachments\":[{\"contentType\":\"application/vnd.microsoft.card.adaptive\","
                    "\"contentUrl\":null,\"content\":{\"$schema\":\"http://adaptivecards.io/schemas/adaptive-card.json\","
                    "\"type\":\"AdaptiveCard\",\"version\":\"1.4\",\"body\":[");
    if (b->title.len) {
        buf_puts(&body, "{\"type\":\"TextBlock\",\"size\":\"Medium\",\"weight\":\"Bolder\",\"wrap\":true,\"text\":");
        json_put_str(&body, buf_cstr(&b->title));
        buf_puts(&body, "},");
    }
    buf_puts(&body, "{\"type\":\"TextBlock\",\"wrap\":true,\"text\":");
    json_put_str(&body, buf_cstr(&b->text));
    buf_puts(&body, "}]}}]}");
    return emit(r, b, "POST", b->t->url, NULL, NULL, NULL, &body);
}

static size_t build_ntfy(struct notify_request *r, const struct build *b)
{
    struct buf body, h;
    buf_init(&body);
    buf_init(&h);
    buf_puts(&body, buf_cstr(&b->text));
    if (b->title.len) {
        /* A header line: no line breaks in it. */
        buf_puts(&h, "Title: ");
        for (const char *p = buf_cstr(&b->title); *p; p++) buf_putc(&h, *p == '\r' || *p == '\n' ? ' ' : *p);
        buf_puts(&h, "\r\n");
    }
    if (b->m->outcome == NO_FAILED) buf_puts(&h, "Priority: high\r\nTags: warning\r\n");
    size_t n = emit(r, b, "POST", b->t->url, "text/plain; charset=utf-8", buf_cstr(&h), b->t->token, &body);
    buf_free(&h);
    return n;
}

static size_t build_gotify(struct notify_request *r, const struct build *b)
{
    struct buf body, h, url;
    buf_init(&body);
    buf_init(&h);
    buf_init(&url);
    int first = 1;
    buf_putc(&body, '{');
    json_put_member(&body, "title", buf_cstr(&b->title), &first);
    json_put_member(&body, "message", buf_cstr(&b->text), &first);
    json_put_key(&body, "priority", &first);
    buf_put_uint(&body, b->m->outcome == NO_FAILED ? 8 : 5);
    buf_putc(&body, '}');
    buf_printf(&h, "X-Gotify-Key: %s\r\n", b->t->token ? b->t->token : "");
    const char *base = b->t->url;
    size_t blen = strlen(base);
    while (blen && base[blen - 1] == '/') blen--;
    buf_printf(&url, "%.*s/message", (int)blen, base);
    size_t n = emit(r, b, "POST", buf_cstr(&url), NULL, buf_cstr(&h), NULL, &body);
    buf_free(&h);
    buf_free(&url);
    return n;
}

/* The next comma-separated item of *p into out; false at the end. */
static bool next_item(const char **p, char *out, size_t outlen)
{
    while (**p == ',' || **p == ' ') (*p)++;
    if (!**p) return false;
    size_t n = strcspn(*p, ",");
    snprintf(out, outlen, "%.*s", (int)(n < outlen ? n : outlen - 1), *p);
    size_t len = strlen(out);
    while (len && out[len - 1] == ' ') out[--len] = '\0';
    *p += n;
    return true;
}

static size_t build_telegram(struct notify_request *r, size_t max, const struct build *b)
{
    struct buf msg;
    buf_init(&msg);
    titled(&msg, b, "");
    tpl_truncate(&msg, 0, TELEGRAM_MAX_CHARS);
    struct buf url;
    buf_init(&url);
    /* The shoutrrr form gives the bot URL; "telegram+https://" the exact one. */
    bool bot = strstr(b->t->url, "api.telegram.org/bot") != NULL && b->t->token;
    buf_printf(&url, "%s%s", b->t->url, bot ? "/sendMessage" : "");
    size_t n = 0;
    char chat[128];
    const char *p = b->t->param ? b->t->param : "";
    while (n < max && next_item(&p, chat, sizeof chat)) {
        struct buf body;
        buf_init(&body);
        int first = 1;
        buf_putc(&body, '{');
        json_put_member(&body, "chat_id", chat, &first);
        json_put_member(&body, "text", buf_cstr(&msg), &first);
        buf_putc(&body, '}');
        n += emit(&r[n], b, "POST", buf_cstr(&url), NULL, NULL, NULL, &body);
    }
    buf_free(&msg);
    buf_free(&url);
    return n;
}

static size_t build_pushover(struct notify_request *r, const struct build *b)
{
    struct buf msg, body;
    buf_init(&msg);
    buf_init(&body);
    buf_puts(&msg, buf_cstr(&b->text));
    tpl_truncate(&msg, 0, PUSHOVER_MAX_CHARS);
    struct buf title;
    buf_init(&title);
    buf_puts(&title, buf_cstr(&b->title));
    tpl_truncate(&title, 0, 250);
    int first = 1;
    buf_putc(&body, '{');
    json_put_member(&body, "token", b->t->token, &first);
    json_put_member(&body, "user", b->t->param, &first);
    json_put_member(&body, "title", buf_cstr(&title), &first);
    json_put_member(&body, "message", buf_cstr(&msg), &first);
    if (b->m->outcome == NO_FAILED) {
        json_put_key(&body, "priority", &first);
        buf_puts(&body, "1");
    }
    buf_putc(&body, '}');
    buf_free(&msg);
    buf_free(&title);
    return emit(r, b, "POST", b->t->url, NULL, NULL, NULL, &body);
}

/* The transaction id: the same message to the same room is the same id,
 * so a retry of a request the server did get is not posted twice. */
static void matrix_txn(struct buf *out, const struct build *b, const char *room)
{
    size_t h = hash_str(HASH_INIT, notify_outcome_name(b->m->outcome));
    const struct tpl_vars *v = &b->m->vars;
    const enum tpl_var keys[] = {TV_EVENT_ID, TV_REGISTRY, TV_REPOSITORY, TV_TAG, TV_DIGEST, TV_OBJECTS};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        h = hash_str(h, "\x1f");
        h = hash_str(h, v->v[keys[i]] ? v->v[keys[i]] : "");
    }
    h = hash_str(hash_str(h, "\x1f"), room);
    buf_printf(out, "wr%016llx", (unsigned long long)h);
}

static size_t build_matrix(struct notify_request *r, size_t max, const struct build *b)
{
    struct buf msg;
    buf_init(&msg);
    titled(&msg, b, "");
    size_t n = 0;
    char room[256];
    const char *p = b->t->param ? b->t->param : "";
    const char *base = b->t->url;
    size_t blen = strlen(base);
    while (blen && base[blen - 1] == '/') blen--;
    while (n < max && next_item(&p, room, sizeof room)) {
        struct buf url, body;
        buf_init(&url);
        buf_init(&body);
        buf_printf(&url, "%.*s/_matrix/client/v3/rooms/", (int)blen, base);
        url_encode(&url, room);
        buf_puts(&url, "/send/m.room.message/");
        matrix_txn(&url, b, room);
        int first = 1;
        buf_putc(&body, '{');
        json_put_member(&body, "msgtype", "m.text", &first);
        json_put_member(&body, "body", buf_cstr(&msg), &first);
        buf_putc(&body, '}');
        n += emit(&r[n], b, "PUT", buf_cstr(&url), NULL, NULL, b->t->token, &body);
        buf_free(&url);
    }
    buf_free(&msg);
    return n;
}

static size_t build_github(struct notify_request *r, const struct build *b)
{
    static const enum tpl_var keys[] = {TV_REPOSITORY, TV_IMAGE, TV_TAG, TV_DIGEST, TV_REGISTRY, TV_OUTCOME,
                                        TV_EVENT_ID};
    struct buf body;
    buf_init(&body);
    buf_puts(&body, "{\"event_type\":\"image_published\",\"client_payload\":{");
    int first = 1;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        json_put_member(&body, tpl_var_name(keys[i]), b->m->vars.v[keys[i]] ? b->m->vars.v[keys[i]] : "", &first);
    buf_puts(&body, "}}");
    return emit(r, b, "POST", b->t->url, NULL, "Accept: application/vnd.github+json\r\nX-GitHub-Api-Version: 2022-11-28\r\n",
                b->t->token, &body);
}

static size_t build_generic(struct notify_request *r, const struct build *b)
{
    struct buf body;
    buf_init(&body);
    if (b->t->body) {
        template_render(b->t->body, &b->m->vars, TPL_JSON, &body);
    } else {
        int first = 1;
        buf_putc(&body, '{');
        for (int v = 0; v < TV_COUNT; v++)
            json_put_member(&body, tpl_var_name((enum tpl_var)v), b->m->vars.v[v] ? b->m->vars.v[v] : "", &first);
        json_put_member(&body, "title", buf_cstr(&b->title), &first);
        json_put_member(&body, "text", buf_cstr(&b->text), &first);
        buf_putc(&body, '}');
    }
    return emit(r, b, "POST", b->t->url, NULL, b->t->headers, NULL, &body);
}

size_t notify_build(const struct notify_target *t, const struct notify_message *m, struct notify_request *reqs,
                    size_t max)
{
    if (max == 0) return 0;
    struct build b = {.t = t, .m = m};
    buf_init(&b.text);
    buf_init(&b.title);
    notify_render_text(t, m, &b.text);
    notify_render_title(t, m, &b.title);
    size_t n = 0;
    switch (t->kind) {
    case NK_DISCORD: n = json_text(reqs, &b, "content", "**", DISCORD_MAX_CHARS); break;
    case NK_SLACK: n = json_text(reqs, &b, "text", "*", 0); break;
    case NK_TEAMS: n = build_teams(reqs, &b); break;
    case NK_NTFY: n = build_ntfy(reqs, &b); break;
    case NK_GOTIFY: n = build_gotify(reqs, &b); break;
    case NK_TELEGRAM: n = build_telegram(reqs, max, &b); break;
    case NK_PUSHOVER: n = build_pushover(reqs, &b); break;
    case NK_MATRIX: n = build_matrix(reqs, max, &b); break;
    case NK_GITHUB: n = build_github(reqs, &b); break;
    case NK_GENERIC: n = build_generic(reqs, &b); break;
    case NK_COUNT: break;
    }
    buf_free(&b.text);
    buf_free(&b.title);
    /* Placeholders in the target URL, percent-encoded (checked at start-up). */
    for (size_t i = 0; i < n; i++) {
        if (!strchr(reqs[i].url, '{')) continue;
        char err[8];
        struct template *u = template_compile(reqs[i].url, err, sizeof err);
        if (!u) continue;
        struct buf url;
        buf_init(&url);
        template_render(u, &m->vars, TPL_URL, &url);
        template_free(u);
        free(reqs[i].url);
        reqs[i].url = buf_steal(&url);
    }
    return n;
}

void notify_request_free(struct notify_request *r)
{
    free_n(3, r->url, r->headers, r->body);
    memset(r, 0, sizeof *r);
}

long long notify_body_retry_after_ms(const char *body, size_t len)
{
    static const char key[] = "\"retry_after\"";
    if (!body) return -1;
    const char *end = body + len;
    for (const char *p = body; p + sizeof key - 1 <= end; p++) {
        if (memcmp(p, key, sizeof key - 1) != 0) continue;
        p += sizeof key - 1;
        while (p < end && (*p == ' ' || *p == ':' || *p == '\t')) p++;
        double secs = 0, scale = 1;
        bool any = false, frac = false;
        for (; p < end && ((*p >= '0' && *p <= '9') || (*p == '.' && !frac)); p++) {
            if (*p == '.') {
                frac = true;
                continue;
            }
            any = true;
            if (frac) secs += (*p - '0') * (scale /= 10);
            else if (secs < 1e6) secs = secs * 10 + (*p - '0');
        }
        if (!any) return -1;
        double ms = secs * 1000;
        return ms > 60000 ? 60000 : (long long)(ms + 0.999);
    }
    return -1;
}
