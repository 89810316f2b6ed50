/* status_page.c - the HTML status page (see status_page.h).
 *
 * Sections, top to bottom: a summary line, the engines, the routes (with
 * each route's last outcome), target health, the latest history, the
 * objects whose labels were ignored. The layout is plain tables in
 * scrolling boxes (a phone scrolls a table sideways rather than squeezing
 * it), a few hundred bytes of inline CSS, and colours that say the outcome
 * at a glance. Times are relative, the exact time in the title attribute. */
#include "status_page.h"

#include <string.h>

#include "deploy.h"
#include "docker_watch.h"
#include "history.h"
#include "log.h"
#include "notifier.h"
#include "registry_watch.h"
#include "routes.h"
#include "url.h"

/* The latest history entries shown; /history has the rest. */
#define PAGE_HISTORY 50
/* Distinct targets whose health is shown. */
#define PAGE_TARGETS 256

void html_escape(struct buf *out, const char *s)
{
    if (!s) return;
    const char *run = s;
    for (const char *p = s; *p; p++) {
        const char *rep;
        switch (*p) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default: continue;
        }
        buf_append(out, run, (size_t)(p - run));
        buf_puts(out, rep);
        run = p + 1;
    }
    buf_puts(out, run);
}

static const char CSS[] =
    ":root{color-scheme:light dark;--bg:#f6f7f9;--card:#fff;--fg:#1d2330;--mute:#6b7280;--line:#e3e6ea}"
    "@media(prefers-color-scheme:dark){:root{--bg:#14171c;--card:#1d2128;--fg:#e6e8eb;--mute:#9aa3ad;"
    "--line:#2c323b}}"
    "*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;"
    "background:var(--bg);color:var(--fg)}"
    "header{padding:14px 18px;background:#1f2a3c;color:#fff;display:flex;flex-wrap:wrap;gap:6px 18px;"
    "align-items:baseline}header h1{font-size:18px;margin:0}header span{color:#c5cede;font-size:13px}"
    "main{padding:12px;max-width:1400px;margin:auto}"
    "section{background:var(--card);border:1px solid var(--line);border-radius:8px;margin:0 0 14px}"
    "h2{font-size:15px;margin:0;padding:10px 14px;border-bottom:1px solid var(--line)}"
    "h2 small{color:var(--mute);font-weight:normal}"
    ".scroll{overflow-x:auto}table{border-collapse:collapse;width:100%}"
    "th,td{text-align:left;padding:6px 14px;border-bottom:1px solid var(--line);vertical-align:top}"
    "th{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:var(--mute);white-space:nowrap}"
    "tr:last-child td{border-bottom:0}td.t{white-space:nowrap;color:var(--mute)}"
    "code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;overflow-wrap:anywhere}"
    ".o{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;"
    "white-space:nowrap;background:#e5e7eb;color:#374151}"
    ".o-deployed,.o-live{background:#d1fae5;color:#065f46}.o-delivered{background:#dbeafe;color:#1e40af}"
    ".o-unconfirmed,.o-syncing,.o-connecting{background:#fef3c7;color:#92400e}"
    ".o-failed,.o-reconnecting{background:#fee2e2;color:#991b1b}"
    ".mute{color:var(--mute)}.err{color:#b91c1c}p.none{margin:0;padding:10px 14px;color:var(--mute)}"
    "@media(max-width:640px){th,td{padding:5px 8px;min-width:8em}td.t{min-width:0}main{padding:6px}"
    "body{font-size:13px}}";

/* "12 s ago", "4 min ago", "3 h ago", "2 d ago" with the exact time on hover. */
static void put_time(struct buf *b, long long ts_ms, long long now_ms)
{
    if (ts_ms <= 0) {
        buf_puts(b, "<span class=mute>never</span>");
        return;
    }
    long long s = (now_ms - ts_ms) / 1000;
    if (s < 0) s = 0;
    buf_puts(b, "<time title=\"");
    log_put_time(b, ts_ms);
    buf_puts(b, "\">");
    if (s < 60) buf_printf(b, "%lld s ago", s);
    else if (s < 3600) buf_printf(b, "%lld min ago", s / 60);
    else if (s < 86400) buf_printf(b, "%lld h ago", s / 3600);
    else buf_printf(b, "%lld d ago", s / 86400);
    buf_puts(b, "</time>");
}

/* A coloured badge; the class comes from a fixed set of names. */
static void put_badge(struct buf *b, const char *name)
{
    buf_puts(b, "<span class=\"o o-");
    html_escape(b, name);
    buf_puts(b, "\">");
    html_escape(b, name);
    buf_puts(b, "</span>");
}

static void td(struct buf *b, const char *s)
{
    buf_puts(b, "<td>");
    if (s && *s) html_escape(b, s);
    else buf_puts(b, "<span class=mute>&ndash;</span>");
    buf_puts(b, "</td>");
}

static void td_code(struct buf *b, const char *s)
{
    buf_puts(b, "<td><code>");
    html_escape(b, s);
    buf_puts(b, "</code></td>");
}

static void section_start(struct buf *b, const char *title, const char *note)
{
    buf_puts(b, "<section><h2>");
    buf_puts(b, title);
    if (note) {
        buf_puts(b, " <small>");
        html_escape(b, note);
        buf_puts(b, "</small>");
    }
    buf_puts(b, "</h2>");
}

static void table_start(struct buf *b, const char *const *heads)
{
    buf_puts(b, "<div class=scroll><table><thead><tr>");
    for (; *heads; heads++) buf_printf(b, "<th>%s</th>", *heads);
    buf_puts(b, "</tr></thead><tbody>");
}

static void table_end(struct buf *b)
{
    buf_puts(b, "</tbody></table></div></section>");
}

/* ---- engines ---------------------------------------------------------------- */

static void render_engines(struct buf *b, const struct handlers_ctx *a)
{
    section_start(b, "Engines", NULL);
    if (!a->nwatchers) {
        buf_puts(b, "<p class=none>No engine.</p></section>");
        return;
    }
    table_start(b, (const char *const[]){"engine", "state", "reconnects", "last problem", NULL});
    for (size_t i = 0; i < a->nwatchers; i++) {
        struct docker_watch *w = a->watchers[i];
        buf_puts(b, "<tr>");
        td_code(b, docker_watch_host(w));
        buf_puts(b, "<td>");
        put_badge(b, docker_watch_state(w));
        buf_puts(b, "</td>");
        buf_printf(b, "<td>%lu</td>", docker_watch_reconnects(w));
        td(b, docker_watch_last_error(w));
        buf_puts(b, "</tr>");
    }
    table_end(b);
}

/* ---- routes ------------------------------------------------------------------- */

struct routes_ctx {
    struct buf *b;
    const struct handlers_ctx *a;
    struct history *h;
    long long now;
    size_t n;
    struct buf red;
};

struct last_ctx {
    size_t key;
    const struct history_entry *found;
};

static bool find_last(void *ud, struct history_entry *e)
{
    struct last_ctx *c = ud;
    if (e->action != HISTORY_REDEPLOY || e->target_key != c->key) return true;
    c->found = e;
    return false;
}

static void put_route_row(void *ud, const struct route *r, const struct route_source *const *src, size_t nsrc)
{
    struct routes_ctx *c = ud;
    struct buf *b = c->b;
    c->n++;
    buf_puts(b, "<tr>");
    td_code(b, r->image);
    td_code(b, r->tag_glob ? r->tag_glob : "*");
    buf_puts(b, "<td>");
    for (size_t i = 0; i < nsrc; i++) {
        if (i) buf_puts(b, "<br>");
        html_escape(b, src[i]->name ? src[i]->name : src[i]->id);
        buf_puts(b, " <span class=mute>");
        html_escape(b, src[i]->kind);
        if (src[i]->stack) {
            buf_puts(b, " of ");
            html_escape(b, src[i]->stack);
        }
        buf_puts(b, "</span>");
    }
    buf_puts(b, "</td><td>");
    if (r->url) {
        buf_reset(&c->red);
        url_redact(&c->red, r->url);   /* the URL's token is a secret */
        buf_puts(b, "<code>");
        html_escape(b, buf_cstr(&c->red));
        buf_puts(b, "</code>");
    }
    if (r->update) buf_puts(b, r->url ? "<br>engine update" : "engine update");
    buf_puts(b, "</td><td>");
    struct watch_status st;
    size_t i = 0;
    while (i < nsrc && !registry_watch_status(c->a->registry_watch, r, src[i], &st)) i++;
    if (i < nsrc) {
        buf_puts(b, "every ");
        buf_put_uint(b, st.key->interval_ms / 1000);
        buf_puts(b, " s, checked ");
        put_time(b, st.last_check_ms, c->now);
        if (st.error) {
            buf_puts(b, "<br><span class=err>");
            html_escape(b, st.error);
            buf_puts(b, "</span>");
        }
    } else {
        buf_puts(b, "<span class=mute>webhook only</span>");
    }
    buf_puts(b, "</td><td>");
    struct last_ctx lc = {.key = r->url ? hash_str(HASH_INIT, r->url) : 0};
    if (c->h && r->url) history_foreach(c->h, find_last, &lc);
    if (lc.found) {
        put_badge(b, history_outcome_name(lc.found->outcome));
        buf_puts(b, " ");
        put_time(b, lc.found->finished_ms, c->now);
    } else {
        buf_puts(b, "<span class=mute>none yet</span>");
    }
    buf_puts(b, "</td></tr>");
}

static void render_routes(struct buf *b, const struct handlers_ctx *a, struct history *h, long long now)
{
    section_start(b, "Routes", NULL);
    table_start(b, (const char *const[]){"image", "tag", "objects", "target", "registry watch", "last outcome",
                                         NULL});
    struct routes_ctx c = {.b = b, .a = a, .h = h, .now = now};
    buf_init(&c.red);
    if (a->routes) routes_foreach(a->routes, put_route_row, &c);
    buf_free(&c.red);
    if (!c.n)
        buf_puts(b, "<tr><td colspan=6 class=mute>No container or service carries routing labels.</td></tr>");
    table_end(b);
}

/* ---- target health -------------------------------------------------------------- */

struct target_health {
    size_t key;
    const struct history_entry *newest;   /* names it */
    long long last_ok, last_fail;
    unsigned failures;                    /* consecutive, newest first */
    bool streak_over;
};

struct health_ctx {
    struct target_health t[PAGE_TARGETS];
    size_t n;
};

static bool add_health(void *ud, struct history_entry *e)
{
    struct health_ctx *c = ud;
    if (e->outcome == HISTORY_QUEUED || e->action == HISTORY_UPDATE) return true;
    struct target_health *t = NULL;
    for (size_t i = 0; i < c->n && !t; i++)
        if (c->t[i].key == e->target_key && c->t[i].newest->action == e->action) t = &c->t[i];
    if (!t) {
        if (c->n == PAGE_TARGETS) return true;
        t = &c->t[c->n++];
        *t = (struct target_health){.key = e->target_key, .newest = e};
    }
    long long when = e->posted_ms ? e->posted_ms : e->finished_ms;
    if (e->outcome == HISTORY_FAILED) {
        if (!t->last_fail) t->last_fail = e->finished_ms;
        if (!t->streak_over) t->failures++;
    } else {
        if (!t->last_ok) t->last_ok = when;
        t->streak_over = true;
    }
    return true;
}

static void render_health(struct buf *b, struct history *h, long long now)
{
    section_start(b, "Target health", "from the history kept");
    struct health_ctx *c = xcalloc(1, sizeof *c);
    if (h) history_foreach(h, add_health, c);
    if (!c->n) {
        buf_puts(b, "<p class=none>Nothing delivered yet.</p></section>");
        free(c);
        return;
    }
    table_start(b, (const char *const[]){"target", "kind", "last success", "last failure", "failing now", NULL});
    for (size_t i = 0; i < c->n; i++) {
        const struct target_health *t = &c->t[i];
        buf_puts(b, "<tr>");
        td_code(b, t->newest->target);
        td(b, history_action_name(t->newest->action));
        buf_puts(b, "<td class=t>");
        put_time(b, t->last_ok, now);
        buf_puts(b, "</td><td class=t>");
        put_time(b, t->last_fail, now);
        buf_puts(b, "</td><td>");
        if (t->failures) {
            buf_printf(b, "<span class=\"o o-failed\">%u in a row</span>", t->failures);
            if (t->newest->error[0]) {
                buf_puts(b, " <span class=err>");
                html_escape(b, t->newest->error);
                buf_puts(b, "</span>");
            }
        } else {
            buf_puts(b, "<span class=\"o o-deployed\">ok</span>");
        }
        buf_puts(b, "</td></tr>");
    }
    free(c);
    table_end(b);
}

/* ---- notification targets ------------------------------------------------------- */

struct notify_ctx {
    struct buf *b;
    long long now;
    size_t n;
};

static void put_notify_target(void *ud, const struct notify_target_health *t)
{
    struct notify_ctx *c = ud;
    struct buf *b = c->b;
    if (!c->n++)
        table_start(b, (const char *const[]){"target", "name", "last success", "last failure", "failing now", NULL});
    buf_puts(b, "<tr>");
    td_code(b, t->display);   /* kind, host and fingerprint: never the URL or the token */
    td(b, t->name ? t->name : "(label URL)");
    buf_puts(b, "<td class=t>");
    put_time(b, t->last_ok_ms, c->now);
    buf_puts(b, "</td><td class=t>");
    put_time(b, t->last_fail_ms, c->now);
    buf_puts(b, "</td><td>");
    if (t->consecutive_failures) {
        buf_printf(b, "<span class=\"o o-failed\">%lu in a row</span>", t->consecutive_failures);
        if (t->last_error && t->last_error[0]) {
            buf_puts(b, " <span class=err>");
            html_escape(b, t->last_error);
            buf_puts(b, "</span>");
        }
    } else if (t->last_ok_ms) {
        buf_puts(b, "<span class=\"o o-deployed\">ok</span>");
    } else {
        buf_puts(b, "<span class=mute>not used yet</span>");
    }
    buf_puts(b, "</td></tr>");
}

static void render_notify(struct buf *b, const struct handlers_ctx *a, long long now)
{
    section_start(b, "Notification targets", "NOTIFY_<NAME>_URL and URLs in notify labels");
    struct notify_ctx c = {.b = b, .now = now};
    if (a->notifier) notifier_foreach_target(a->notifier, put_notify_target, &c);
    if (c.n) table_end(b);
    else buf_puts(b, "<p class=none>None configured.</p></section>");
}

/* "registry/repository:tag", each part escaped; the registry and tag only when known. */
static void put_image(struct buf *b, const char *registry, const char *repository, const char *tag)
{
    if (registry && registry[0]) {
        html_escape(b, registry);
        buf_putc(b, '/');
    }
    html_escape(b, repository);
    if (tag && tag[0]) {
        buf_putc(b, ':');
        html_escape(b, tag);
    }
}

/* ---- history --------------------------------------------------------------------- */

static void render_history(struct buf *b, struct history *h, long long now)
{
    char note[96];
    snprintf(note, sizeof note, "newest first; %zu kept of %zu (GET /history has them all)",
             h ? history_count(h) : 0, h ? history_size(h) : 0);
    section_start(b, "Latest pushes", note);
    const struct history_entry *e[PAGE_HISTORY];
    struct history_filter f = {.limit = PAGE_HISTORY, .outcome = HISTORY_NOUTCOMES};
    size_t n = h ? history_query(h, &f, e, PAGE_HISTORY) : 0;
    if (!n) {
        buf_puts(b, "<p class=none>No push matched a route since the start.</p></section>");
        return;
    }
    table_start(b, (const char *const[]){"when", "image", "digest", "action", "target", "outcome", "detail",
                                         "event", NULL});
    for (size_t i = 0; i < n; i++) {
        const struct history_entry *x = e[i];
        buf_puts(b, "<tr><td class=t>");
        put_time(b, x->ts_ms, now);
        buf_puts(b, "</td><td><code>");
        put_image(b, x->registry, x->repository, x->tag);
        buf_puts(b, "</code></td><td><code title=\"");
        html_escape(b, x->digest);
        buf_puts(b, "\">");
        /* "sha256:" and 12 hex digits: enough to tell them apart on a screen. */
        char shortd[20];
        history_copy(shortd, sizeof shortd, x->digest);
        html_escape(b, shortd);
        if (strlen(x->digest) >= sizeof shortd) buf_puts(b, "&hellip;");
        buf_puts(b, "</code></td>");
        td(b, history_action_name(x->action));
        buf_puts(b, "<td><code>");
        html_escape(b, x->target);
        buf_puts(b, "</code>");
        if (x->objects[0]) {
            buf_puts(b, "<br><span class=mute>");
            html_escape(b, x->objects);
            buf_puts(b, "</span>");
        }
        buf_puts(b, "</td><td>");
        put_badge(b, history_outcome_name(x->outcome));
        buf_puts(b, "</td><td>");
        if (x->status) buf_printf(b, "HTTP %d", x->status);
        if (x->attempts > 1) buf_printf(b, ", %d attempts", x->attempts);
        if (x->deployed_ms >= 0) buf_printf(b, "%sdeployed in %.1f s", x->status ? ", " : "", (double)x->deployed_ms / 1000);
        if (x->error[0]) {
            buf_puts(b, "<br><span class=err>");
            html_escape(b, x->error);
            buf_puts(b, "</span>");
        }
        buf_puts(b, "</td><td><code>");
        html_escape(b, x->event_id);
        buf_puts(b, "</code> <span class=mute>");
        html_escape(b, x->source);
        buf_puts(b, "</span></td></tr>");
    }
    table_end(b);
}

/* ---- ignored labels ---------------------------------------------------------------- */

struct ignored_ctx {
    struct buf *b;
    size_t n;
};

static void put_ignored(void *ud, const struct route_source *src, const char *why)
{
    struct ignored_ctx *c = ud;
    struct buf *b = c->b;
    if (!c->n++)
        table_start(b, (const char *const[]){"object", "kind", "engine", "why", NULL});
    buf_puts(b, "<tr>");
    td(b, src->name ? src->name : src->id);
    td(b, src->kind);
    td_code(b, src->engine);
    buf_puts(b, "<td class=err>");
    html_escape(b, why);
    buf_puts(b, "</td></tr>");
}

static void render_ignored(struct buf *b, const struct handlers_ctx *a)
{
    section_start(b, "Ignored labels", "containers and services whose routing labels were not used");
    struct ignored_ctx c = {.b = b};
    if (a->routes) routes_foreach_ignored(a->routes, put_ignored, &c);
    if (c.n) table_end(b);
    else buf_puts(b, "<p class=none>None.</p></section>");
}

/* ---- the page ------------------------------------------------------------------------- */

struct summary_ctx {
    unsigned long n[HISTORY_NOUTCOMES];
};

static bool count_outcome(void *ud, struct history_entry *e)
{
    struct summary_ctx *c = ud;
    c->n[e->outcome]++;
    return true;
}

void status_page_render(struct buf *out, const struct handlers_ctx *a, long long now_ms)
{
    struct history *h = a->deploy ? deploy_history(a->deploy) : NULL;
    buf_puts(out, "<!doctype html><html lang=en><head><meta charset=utf-8>"
                  "<meta name=viewport content=\"width=device-width,initial-scale=1\">"
                  "<meta http-equiv=refresh content=10><title>webhook-router status</title><style>");
    buf_puts(out, CSS);
    buf_puts(out, "</style></head><body><header><h1>webhook-router</h1><span>");
    size_t live = 0;
    for (size_t i = 0; i < a->nwatchers; i++) live += strcmp(docker_watch_state(a->watchers[i]), "live") == 0;
    buf_printf(out, "%zu of %zu engine%s live &middot; %zu route%s", live, a->nwatchers,
               a->nwatchers == 1 ? "" : "s", a->routes ? routes_count(a->routes) : 0,
               a->routes && routes_count(a->routes) == 1 ? "" : "s");
    if (h) {
        struct summary_ctx s = {{0}};
        history_foreach(h, count_outcome, &s);
        buf_printf(out, " &middot; kept: %lu deployed, %lu failed, %lu unconfirmed", s.n[HISTORY_DEPLOYED],
                   s.n[HISTORY_FAILED], s.n[HISTORY_UNCONFIRMED]);
    }
    buf_puts(out, "</span><span>version " WR_VERSION " &middot; ");
    log_put_time(out, now_ms);
    buf_puts(out, " &middot; refreshes every 10 s</span></header><main>");
    render_engines(out, a);
    render_routes(out, a, h, now_ms);
    render_health(out, h, now_ms);
    render_notify(out, a, now_ms);
    render_history(out, h, now_ms);
    render_ignored(out, a);
    buf_puts(out, "</main></body></html>\n");
}
