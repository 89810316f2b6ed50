/* history.c - the delivery history ring (see history.h). */
#include "history.h"

#include <string.h>

#include "json.h"
#include "log.h"

struct history {
    struct history_entry *ring;
    size_t size;
    uint64_t next_id;   /* the id the next entry gets; ids start at 1 */
    struct history_deploy_stats deploy;
};

static const char *const outcome_names[HISTORY_NOUTCOMES] = {"queued",      "delivered", "deployed",
                                                             "unconfirmed", "failed",    "unchanged"};
static const char *const action_names[] = {"redeploy", "update", "notify"};
/* From "a container restarted at once" to "a large image pulled over a slow link". */
static const double deploy_bounds[HISTORY_DEPLOY_BUCKETS] = {1, 2, 5, 10, 20, 30, 60, 120, 300, 600};

struct history *history_new(size_t size)
{
    struct history *h = xcalloc(1, sizeof *h);
    h->size = size ? size : 1;
    h->ring = xcalloc(h->size, sizeof *h->ring);
    h->next_id = 1;
    return h;
}

void history_free(struct history *h)
{
    if (!h) return;
    free_n(2, h->ring, h);
}

size_t history_size(const struct history *h)
{
    return h->size;
}

size_t history_count(const struct history *h)
{
    uint64_t n = h->next_id - 1;
    return n < h->size ? (size_t)n : h->size;
}

size_t history_copy(char *dst, size_t n, const char *src)
{
    if (!n) return 0;
    if (!src) src = "";
    size_t len = strlen(src);
    if (len >= n) {
        len = n - 1;
        /* Never half a character: back off continuation bytes (10xxxxxx)
         * and the lead byte they belong to. */
        while (len && ((unsigned char)src[len] & 0xC0) == 0x80) len--;
    }
    memcpy(dst, src, len);
    dst[len] = '\0';
    return len;
}

/* Appends s to e's text (at most max bytes with its NUL, and what is left). */
static const char *pack(struct history_entry *e, size_t *used, const char *s, size_t max)
{
    size_t room = sizeof e->text - *used;
    if (room < 2) return "";   /* the text is full: what is left of it is not worth a cut */
    char *dst = e->text + *used;
    *used += history_copy(dst, room < max ? room : max, s) + 1;
    return dst;
}

uint64_t history_add(struct history *h, const struct history_add *a)
{
    uint64_t id = h->next_id++;
    struct history_entry *e = &h->ring[(id - 1) % h->size];
    const struct push_event *ev = a->ev;
    e->id = id;
    e->ts_ms = a->now_ms;
    e->posted_ms = 0;
    e->finished_ms = a->now_ms;
    e->target_key = a->target_key;
    e->action = a->action;
    e->outcome = HISTORY_QUEUED;
    e->status = 0;
    e->attempts = 0;
    e->duration_ms = -1;
    e->deployed_ms = -1;
    /* The digest first: confirmation compares it whole ("sha256:" + 64 hex). */
    size_t used = 0;
    e->digest = pack(e, &used, ev->digest, 72);
    e->event_id = pack(e, &used, ev->id, 96);
    e->source = pack(e, &used, ev->format, 16);
    e->registry = pack(e, &used, ev->registry, 64);
    e->repository = pack(e, &used, ev->repository, 128);
    e->tag = pack(e, &used, ev->tag, 96);
    e->target = pack(e, &used, a->target, 96);
    history_copy(e->objects, sizeof e->objects, a->objects);
    e->error[0] = '\0';
    return id;
}

struct history_entry *history_get(struct history *h, uint64_t id)
{
    if (id == 0 || id >= h->next_id) return NULL;
    struct history_entry *e = &h->ring[(id - 1) % h->size];
    return e->id == id ? e : NULL;
}

void history_set_outcome(struct history_entry *e, enum history_outcome o, long long now_ms, const char *error)
{
    e->outcome = o;
    e->finished_ms = now_ms;
    history_copy(e->error, sizeof e->error, error);
}

static bool filter_ok(const struct history_filter *f, const struct history_entry *e)
{
    if (f->outcome != HISTORY_NOUTCOMES && e->outcome != f->outcome) return false;
    return !f->repository || strcmp(f->repository, e->repository) == 0;
}

void history_foreach(struct history *h, bool (*fn)(void *ud, struct history_entry *e), void *ud)
{
    size_t n = history_count(h);
    for (size_t k = 0; k < n; k++) {
        uint64_t id = h->next_id - 1 - k;
        if (!fn(ud, &h->ring[(id - 1) % h->size])) return;
    }
}

size_t history_query(const struct history *h, const struct history_filter *f, const struct history_entry **out,
                     size_t max)
{
    size_t n = history_count(h), got = 0;
    size_t limit = f->limit && f->limit < max ? f->limit : max;
    for (size_t k = 0; k < n && got < limit; k++) {
        uint64_t id = h->next_id - 1 - k;
        const struct history_entry *e = &h->ring[(id - 1) % h->size];
        if (filter_ok(f, e)) out[got++] = e;
    }
    return got;
}

const char *history_outcome_name(enum history_outcome o)
{
    return o < HISTORY_NOUTCOMES ? outcome_names[o] : "unknown";
}

const char *history_action_name(enum history_action a)
{
    return (size_t)a < sizeof action_names / sizeof action_names[0] ? action_names[a] : "unknown";
}

enum history_outcome history_outcome_parse(const char *name)
{
    for (int o = 0; o < HISTORY_NOUTCOMES; o++)
        if (strcmp(name, outcome_names[o]) == 0) return (enum history_outcome)o;
    return HISTORY_NOUTCOMES;
}

static void put_int_or_null(struct buf *b, const char *key, long long v, bool present, int *first)
{
    json_put_key(b, key, first);
    if (present) buf_put_int(b, v);
    else buf_puts(b, "null");
}

static void put_str_or_null(struct buf *b, const char *key, const char *s, int *first)
{
    json_put_member(b, key, s[0] ? s : NULL, first);
}

void history_entry_json(struct buf *b, const struct history_entry *e)
{
    int first = 1;
    buf_putc(b, '{');
    log_put_time_member(b, "ts", e->ts_ms, &first);
    put_str_or_null(b, "event_id", e->event_id, &first);
    put_str_or_null(b, "source", e->source, &first);
    put_str_or_null(b, "registry", e->registry, &first);
    put_str_or_null(b, "repository", e->repository, &first);
    put_str_or_null(b, "tag", e->tag, &first);
    put_str_or_null(b, "digest", e->digest, &first);
    json_put_member(b, "action", history_action_name(e->action), &first);
    put_str_or_null(b, "target", e->target, &first);
    put_str_or_null(b, "objects", e->objects, &first);
    json_put_member(b, "outcome", history_outcome_name(e->outcome), &first);
    put_int_or_null(b, "status", e->status, e->status > 0, &first);
    put_int_or_null(b, "attempts", e->attempts, true, &first);
    put_int_or_null(b, "duration_ms", e->duration_ms, e->duration_ms >= 0, &first);
    put_int_or_null(b, "deployed_ms", e->deployed_ms, e->deployed_ms >= 0, &first);
    put_str_or_null(b, "error", e->error, &first);
    buf_putc(b, '}');
}

double history_deploy_bound(size_t i)
{
    return deploy_bounds[i];
}

const struct history_deploy_stats *history_deploy_stats(const struct history *h)
{
    return &h->deploy;
}

void history_deployed(struct history *h, struct history_entry *e, long long now_ms)
{
    long long ms = now_ms - e->ts_ms;
    if (ms < 0) ms = 0;
    e->deployed_ms = ms;
    history_set_outcome(e, HISTORY_DEPLOYED, now_ms, NULL);
    double s = (double)ms / 1000.0;
    for (size_t i = 0; i < HISTORY_DEPLOY_BUCKETS; i++)
        if (s <= deploy_bounds[i]) h->deploy.le[i]++;
    h->deploy.count++;
    h->deploy.sum += s;
}
