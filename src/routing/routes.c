/* routes.c - the label map.
 *
 * Sources live in a hash table keyed by (engine, id); that is what events
 * and resyncs update. Matching works on a second structure, the index: every
 * distinct route (ref, url, glob) once, sorted by repository path, with the
 * sources that carry it. The index is rebuilt lazily on the first lookup
 * after a change, so a burst of container events costs one rebuild. */
#include "routes.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "duration.h"
#include "url.h"

struct source {
    struct route_source info;     /* strings owned */
    struct route *routes;
    size_t nroutes;
    char *problem;                /* why its labels were ignored (warned once); NULL: they were not */
    char *notice;                 /* an unknown key beside a good route, to warn once */
    unsigned mark;                /* resync generation it was last seen in */
    struct source *next;          /* hash chain */
};

struct index_entry {
    const struct route *route;
    const struct route_source **sources;
    size_t nsources;
};

struct route_table {
    struct source **buckets;
    size_t nbuckets;
    size_t nsources;
    unsigned mark;                /* current resync generation */
    unsigned long generation;     /* routes_generation */

    bool index_dirty;
    struct index_entry *index;
    size_t nindex;
    const struct route_source **index_sources;   /* one allocation for all entries */

    routes_notify_check_fn notify_check;
    void *notify_check_ud;
};

/* ---- label parsing (pure) ---------------------------------------------- */

void route_list_free(struct route *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(r[i].image);
        free(r[i].url);
        free(r[i].tag_glob);
        free(r[i].notify);
    }
    free(r);
}

static const char *label_str(json_t *labels, const char *prefix, const char *name, bool *bad)
{
    char key[256];
    snprintf(key, sizeof key, "%s.%s", prefix, name);
    json_t *v = json_object_get(labels, key);
    if (!v) return NULL;
    if (!json_is_string(v)) {
        *bad = true;
        return NULL;
    }
    return json_string_value(v);
}

static bool has_prefixed_key(json_t *labels, const char *prefix)
{
    size_t plen = strlen(prefix);
    const char *key;
    json_t *v;
    json_object_foreach(labels, key, v) {
        if (strncmp(key, prefix, plen) == 0 && key[plen] == '.') return true;
    }
    return false;
}

/* The keys a route reads under the prefix. */
static const char *const known_keys[] = {"image", "url", "tag", "poll", "update", "notify"};
#define NKNOWN (sizeof known_keys / sizeof known_keys[0])

/* Levenshtein distance ignoring case, for keys of a few letters (longer
 * ones are simply far: LABEL_KEY_MAX + 1). */
#define LABEL_KEY_MAX 31
static size_t key_distance(const char *a, const char *b)
{
    size_t an = strlen(a), bn = strlen(b);
    if (an > LABEL_KEY_MAX || bn > LABEL_KEY_MAX) return LABEL_KEY_MAX + 1;
    size_t row[LABEL_KEY_MAX + 1];
    for (size_t j = 0; j <= bn; j++) row[j] = j;
    for (size_t i = 1; i <= an; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= bn; j++) {
            size_t up = row[j];
            size_t best = diag + (ascii_lower(a[i - 1]) == ascii_lower(b[j - 1]) ? 0 : 1);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[bn];
}

bool route_unknown_label(const char *prefix, json_t *labels, char *out, size_t outlen)
{
    size_t plen = strlen(prefix);
    const char *key;
    json_t *v;
    if (!json_is_object(labels)) return false;
    json_object_foreach(labels, key, v) {
        if (strncmp(key, prefix, plen) != 0 || key[plen] != '.') continue;
        const char *name = key + plen + 1;
        size_t best = 0;
        bool known = false;
        for (size_t i = 0; i < NKNOWN && !known; i++) {
            known = strcmp(name, known_keys[i]) == 0;
            if (key_distance(name, known_keys[i]) < key_distance(name, known_keys[best])) best = i;
        }
        if (known) continue;
        /* Two edits still catch "images", "tags", "URL", "updates"; past
         * that a guess would mislead more than help. */
        if (key_distance(name, known_keys[best]) <= 2)
            snprintf(out, outlen, "unknown label %.64s (did you mean %s.%s?)", key, prefix, known_keys[best]);
        else
            snprintf(out, outlen, "unknown label %.64s (known: image, url, tag, poll, update, notify)", key);
        return true;
    }
    return false;
}

/* An error, with the unknown key that probably caused it named first. */
static int refuse(const char *prefix, json_t *labels, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int refuse(const char *prefix, json_t *labels, char *err, size_t errlen, const char *fmt, ...)
{
    char why[200], unknown[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (route_unknown_label(prefix, labels, unknown, sizeof unknown))
        snprintf(err, errlen, "%s; %s", unknown, why);
    else
        snprintf(err, errlen, "%s", why);
    return -EINVAL;
}

/* Would the repository s parse if it were lower case? Then upper case in
 * its path is what is wrong, and the warning says so. */
static bool only_case_is_wrong(const char *s)
{
    char *low = ascii_lower_str(xstrdup(s));
    struct repo_ref ref;
    bool ok = repo_ref_parse(low, &ref) == 0;
    free(low);
    return ok;
}

int route_parse_labels(const char *prefix, json_t *labels, struct route **out,
                       char *err, size_t errlen)
{
    *out = NULL;
    if (!json_is_object(labels) || !has_prefixed_key(labels, prefix)) return 0;

    bool bad = false;
    const char *image = label_str(labels, prefix, "image", &bad);
    const char *url = label_str(labels, prefix, "url", &bad);
    const char *tag = label_str(labels, prefix, "tag", &bad);
    const char *upd = label_str(labels, prefix, "update", &bad);
    const char *poll = label_str(labels, prefix, "poll", &bad);
    const char *notify = label_str(labels, prefix, "notify", &bad);
    const char *why;

    if (bad) {
        return refuse(prefix, labels, err, errlen, "%s.* labels must be strings", prefix);
    }
    if (!image) {
        return refuse(prefix, labels, err, errlen, "%s.image is missing", prefix);
    }
    bool update = false;
    if (upd && strcmp(upd, "true") == 0) update = true;
    else if (upd && strcmp(upd, "false") != 0) {
        return refuse(prefix, labels, err, errlen, "%s.update must be true or false, not \"%.32s\"", prefix, upd);
    }
    if (notify && strspn(notify, " \t\n") == strlen(notify))
        return refuse(prefix, labels, err, errlen, "%s.notify is empty", prefix);
    if (!url && !update && !notify) {
        return refuse(prefix, labels, err, errlen, "%s.url is missing (and neither %s.update=true nor %s.notify is set)",
                      prefix, prefix, prefix);
    }
    struct url parsed;
    if (url && url_parse(url, &parsed, &why) < 0) {
        /* The reason only: the URL itself is a secret. */
        snprintf(err, errlen, "%s.url is invalid: %s", prefix, why ? why : "not a URL");
        return -EINVAL;
    }
    if (url) url_free(&parsed);
    if (tag && !tag_glob_valid(tag)) {
        snprintf(err, errlen, "%s.tag is not a valid tag glob: \"%.64s\"", prefix, tag);
        return -EINVAL;
    }
    /* "*" (or "**"...) is every tag, as no tag label is: one route, not two
     * that /routes would list apart. */
    if (tag && strspn(tag, "*") == strlen(tag)) tag = NULL;
    long long poll_ms = 0;
    if (poll) {
        uint64_t ms;
        if (strcmp(poll, "off") == 0) poll_ms = -1;
        else if (duration_parse_ms(poll, &ms) == 0 && ms >= 1000) poll_ms = (long long)ms;
        else {
            snprintf(err, errlen, "%s.poll is not an interval of at least 1s (30s, 5m, 1h, or seconds: 300) or off: \"%.32s\"",
                     prefix, poll);
            return -EINVAL;
        }
    }

    struct route *routes = NULL;
    size_t n = 0;
    const char *p = image;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char *one = xstrndup(p, len);
        struct repo_ref ref;
        bool blank = strspn(one, " \t") == len;
        if (!blank && repo_ref_parse(one, &ref) < 0) {
            if (only_case_is_wrong(one))
                snprintf(err, errlen, "%s.image has upper-case letters in its repository path: \"%.128s\" "
                         "(registries accept lower case only, so it could never match)", prefix, one);
            else
                snprintf(err, errlen, "%s.image has an invalid repository: \"%.128s\"", prefix, one);
            free(one);
            route_list_free(routes, n);
            return -EINVAL;
        }
        if (blank) {
            free(one);
        } else {
            routes = xrealloc(routes, (n + 1) * sizeof *routes);
            routes[n].image = one;
            routes[n].ref = ref;
            routes[n].url = xstrdup_or_null(url);
            routes[n].tag_glob = xstrdup_or_null(tag);
            routes[n].update = update;
            routes[n].poll_ms = poll_ms;
            routes[n].notify = xstrdup_or_null(notify);
            n++;
        }
        p += len + (comma ? 1 : 0);
    }
    if (n == 0) {
        snprintf(err, errlen, "%s.image is empty", prefix);
        return -EINVAL;
    }
    *out = routes;
    return (int)n;
}

/* ---- the source table -------------------------------------------------- */

static size_t hash_key(const char *engine, const char *id)
{
    /* engine, a separator, and id. */
    return hash_str(hash_str(hash_str(HASH_INIT, engine), "\x1f"), id);
}

static struct source **find_slot(struct route_table *t, const char *engine, const char *id)
{
    struct source **slot = &t->buckets[hash_key(engine, id) & (t->nbuckets - 1)];
    while (*slot && (strcmp((*slot)->info.id, id) != 0 || strcmp((*slot)->info.engine, engine) != 0))
        slot = &(*slot)->next;
    return slot;
}

static void grow(struct route_table *t)
{
    size_t nb = t->nbuckets * 2;
    struct source **b = xcalloc(nb, sizeof *b);
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct source *s = t->buckets[i];
        while (s) {
            struct source *next = s->next;
            size_t k = hash_key(s->info.engine, s->info.id) & (nb - 1);
            s->next = b[k];
            b[k] = s;
            s = next;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = nb;
}

static void source_free(struct source *s)
{
    free((char *)s->info.engine);
    free((char *)s->info.kind);
    free((char *)s->info.id);
    free((char *)s->info.name);
    free((char *)s->info.stack);
    free((char *)s->info.image);
    free((char *)s->info.image_id);
    route_list_free(s->routes, s->nroutes);
    free(s->problem);
    free(s->notice);
    free(s);
}

static void index_clear(struct route_table *t)
{
    free(t->index);
    free(t->index_sources);
    t->index = NULL;
    t->index_sources = NULL;
    t->nindex = 0;
}

struct route_table *routes_new(void)
{
    struct route_table *t = xcalloc(1, sizeof *t);
    t->nbuckets = 64;
    t->buckets = xcalloc(t->nbuckets, sizeof *t->buckets);
    return t;
}

void routes_free(struct route_table *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct source *s = t->buckets[i];
        while (s) {
            struct source *next = s->next;
            source_free(s);
            s = next;
        }
    }
    free(t->buckets);
    index_clear(t);
    free(t);
}

static bool same_str(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static bool same_info(const struct route_source *have, const struct route_source *src)
{
    return same_str(have->kind, src->kind ? src->kind : "container") && same_str(have->name, src->name) &&
           same_str(have->stack, src->stack) && same_str(have->image, src->image) &&
           (!src->image_id || same_str(have->image_id, src->image_id));
}

static bool same_routes(const struct route *a, size_t na, const struct route *b, size_t nb)
{
    if (na != nb) return false;
    if (!a || !b) return na == 0;   /* no routes on either side */
    for (size_t i = 0; i < na; i++)
        if (!same_str(a[i].image, b[i].image) || !same_str(a[i].url, b[i].url) ||
            !same_str(a[i].tag_glob, b[i].tag_glob) || !same_str(a[i].notify, b[i].notify) ||
            a[i].update != b[i].update || a[i].poll_ms != b[i].poll_ms)
            return false;
    return true;
}

void routes_set_notify_check(struct route_table *t, routes_notify_check_fn fn, void *ud)
{
    t->notify_check = fn;
    t->notify_check_ud = ud;
}

/* Every word of the notify label must name a known target (or be a usable
 * URL): an unknown name makes the route malformed, as a bad url does. */
static int check_notify(const struct route_table *t, const char *prefix, const char *notify, char *err,
                        size_t errlen)
{
    if (!t->notify_check || !notify) return 0;
    for (const char *p = notify; *p;) {
        p += strspn(p, " \t\n");
        size_t n = strcspn(p, " \t\n");
        if (!n) break;
        char *word = xstrndup(p, n);
        char why[200] = "";
        int rc = t->notify_check(t->notify_check_ud, word, why, sizeof why);
        free(word);
        if (rc < 0) {
            snprintf(err, errlen, "%s.notify: %s", prefix, why);
            return -EINVAL;
        }
        p += n;
    }
    return 0;
}

static const char *source_label(const struct route_source *src)
{
    return src->name ? src->name : src->id;
}

/* Malformed labels: warn once per distinct problem, since resyncs would
 * otherwise repeat it. */
static void note_problem(struct source *s, const struct route_source *src, const char *err,
                         const struct logger *lg)
{
    if (s->problem && strcmp(s->problem, err) == 0) return;
    LOG(lg, LOG_WARN, "labels ignored", F_STR(s->info.kind, source_label(src)), F_STR("id", src->id),
        F_STR("stack", src->stack), F_STR("engine", src->engine), F_STR("error", err));
    free(s->problem);
    s->problem = xstrdup(err);
}

int routes_put(struct route_table *t, const struct route_source *src, json_t *labels,
               const char *prefix, const struct logger *lg)
{
    char err[256] = "";
    struct route *routes;
    int n = route_parse_labels(prefix, labels, &routes, err, sizeof err);
    if (n > 0 && routes && check_notify(t, prefix, routes[0].notify, err, sizeof err) < 0) {
        route_list_free(routes, (size_t)n);
        routes = NULL;
        n = -EINVAL;
    }

    struct source **slot = find_slot(t, src->engine, src->id);
    struct source *s = *slot;
    if (n == 0) {
        /* Not ours (any more): forget it. */
        routes_remove(t, src->engine, src->id);
        return 0;
    }
    bool changed = !s;
    if (!s) {
        s = xcalloc(1, sizeof *s);
        s->info.engine = xstrdup(src->engine);
        s->info.id = xstrdup(src->id);
        s->next = NULL;
        *slot = s;
        t->nsources++;
        if (t->nsources > t->nbuckets) grow(t);
    }
    s->mark = t->mark;
    /* A resync puts every source again: only a real change moves the
     * generation (the registry watcher rebuilds its watches on it) and
     * drops the index. */
    if (!changed)
        changed = !same_info(&s->info, src) ||
                  (n < 0 ? s->nroutes != 0 : !same_routes(s->routes, s->nroutes, routes, (size_t)n));
    if (!changed) {
        if (n > 0) route_list_free(routes, (size_t)n);
        if (n < 0) note_problem(s, src, err, lg);   /* still no routes, maybe another reason */
        return n < 0 ? -EINVAL : n;
    }
    free((char *)s->info.kind);
    free((char *)s->info.name);
    free((char *)s->info.stack);
    free((char *)s->info.image);
    s->info.kind = xstrdup(src->kind ? src->kind : "container");
    s->info.name = xstrdup_or_null(src->name);
    s->info.stack = xstrdup_or_null(src->stack);
    s->info.image = xstrdup_or_null(src->image);
    if (src->image_id) {
        /* A container's image never changes: a put that does not say it
         * (an event) keeps the one a list said. */
        free((char *)s->info.image_id);
        s->info.image_id = xstrdup(src->image_id);
    }
    t->generation++;
    route_list_free(s->routes, s->nroutes);
    s->routes = NULL;
    s->nroutes = 0;
    t->index_dirty = true;

    if (n < 0) {
        note_problem(s, src, err, lg);
        return -EINVAL;
    }
    free(s->problem);
    s->problem = NULL;
    s->routes = routes;
    s->nroutes = (size_t)n;
    /* A route that works despite a key nobody reads: "tags=v*" would
     * otherwise redeploy on every tag without a word. */
    char unknown[200];
    bool has_unknown = route_unknown_label(prefix, labels, unknown, sizeof unknown);
    if (has_unknown && (!s->notice || strcmp(s->notice, unknown) != 0))
        LOG(lg, LOG_WARN, "label key ignored", F_STR(s->info.kind, source_label(src)), F_STR("id", src->id),
            F_STR("stack", src->stack), F_STR("engine", src->engine), F_STR("error", unknown));
    free(s->notice);
    s->notice = has_unknown ? xstrdup(unknown) : NULL;
    return n;
}

bool routes_remove(struct route_table *t, const char *engine, const char *id)
{
    struct source **slot = find_slot(t, engine, id);
    struct source *s = *slot;
    if (!s) return false;
    *slot = s->next;
    source_free(s);
    t->nsources--;
    t->index_dirty = true;
    t->generation++;
    return true;
}

unsigned long routes_generation(const struct route_table *t)
{
    return t->generation;
}

const struct route_source *routes_find(struct route_table *t, const char *engine, const char *id)
{
    struct source *s = *find_slot(t, engine, id);
    return s ? &s->info : NULL;
}

const struct route *routes_of_source(struct route_table *t, const char *engine, const char *id, size_t *n)
{
    struct source *s = *find_slot(t, engine, id);
    *n = s ? s->nroutes : 0;
    return s ? s->routes : NULL;
}

bool routes_rename(struct route_table *t, const char *engine, const char *id, const char *name)
{
    struct source *s = *find_slot(t, engine, id);
    if (!s || same_str(s->info.name, name)) return false;
    free((char *)s->info.name);
    s->info.name = xstrdup_or_null(name);   /* the index points at s->info: no rebuild */
    return true;
}

void routes_mark(struct route_table *t, const char *engine)
{
    (void)engine;   /* sweep filters by engine; the generation is shared */
    t->mark++;
}

size_t routes_sweep(struct route_table *t, const char *engine)
{
    size_t removed = 0;
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct source **slot = &t->buckets[i];
        while (*slot) {
            struct source *s = *slot;
            if (strcmp(s->info.engine, engine) == 0 && s->mark != t->mark) {
                *slot = s->next;
                source_free(s);
                t->nsources--;
                removed++;
            } else {
                slot = &s->next;
            }
        }
    }
    if (removed) {
        t->index_dirty = true;
        t->generation++;
    }
    return removed;
}

/* ---- the match index --------------------------------------------------- */

struct pair {
    const struct route *route;
    const struct route_source *source;
};

static int route_cmp(const struct route *a, const struct route *b)
{
    int c = strcmp(a->ref.path, b->ref.path);
    if (!c) c = strcmp(a->ref.host, b->ref.host);
    if (!c) c = strcmp(a->url ? a->url : "", b->url ? b->url : "");
    if (!c) c = strcmp(a->tag_glob ? a->tag_glob : "", b->tag_glob ? b->tag_glob : "");
    if (!c) c = (int)a->update - (int)b->update;
    if (!c) c = strcmp(a->notify ? a->notify : "", b->notify ? b->notify : "");
    return c;
}

static int pair_cmp(const void *a, const void *b)
{
    const struct pair *x = a, *y = b;
    int c = route_cmp(x->route, y->route);
    if (!c) c = strcmp(x->source->id, y->source->id);
    return c;
}

static void index_build(struct route_table *t)
{
    index_clear(t);
    t->index_dirty = false;
    size_t npairs = 0;
    for (size_t i = 0; i < t->nbuckets; i++)
        for (struct source *s = t->buckets[i]; s; s = s->next) npairs += s->nroutes;
    if (npairs == 0) return;

    struct pair *pairs = xmalloc(npairs * sizeof *pairs);
    size_t k = 0;
    for (size_t i = 0; i < t->nbuckets; i++)
        for (struct source *s = t->buckets[i]; s; s = s->next)
            for (size_t r = 0; r < s->nroutes; r++)
                pairs[k++] = (struct pair){&s->routes[r], &s->info};
    qsort(pairs, npairs, sizeof *pairs, pair_cmp);

    t->index = xmalloc(npairs * sizeof *t->index);
    t->index_sources = xmalloc(npairs * sizeof *t->index_sources);
    for (size_t i = 0; i < npairs; i++) {
        t->index_sources[i] = pairs[i].source;
        if (t->nindex && route_cmp(t->index[t->nindex - 1].route, pairs[i].route) == 0) {
            t->index[t->nindex - 1].nsources++;
            continue;
        }
        t->index[t->nindex++] = (struct index_entry){pairs[i].route, &t->index_sources[i], 1};
    }
    free(pairs);
}

static void index_ensure(struct route_table *t)
{
    if (t->index_dirty) index_build(t);
}

/* First index entry whose path is >= path. */
static size_t lower_bound(const struct route_table *t, const char *path)
{
    size_t lo = 0, hi = t->nindex;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(t->index[mid].route->ref.path, path) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static size_t add_url(const char **urls, size_t n, size_t max, const char *url)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(urls[i], url) == 0) return n;
    if (n < max) urls[n++] = url;
    return n;
}

static size_t add_source(const struct route_source **v, size_t n, size_t max, const struct route_source *s)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == s) return n;
    if (n < max) v[n++] = s;
    return n;
}

static void match_path(struct route_table *t, const char *path, const struct repo_ref *ev, const char *tag,
                       struct route_matches *m)
{
    for (size_t i = lower_bound(t, path); i < t->nindex; i++) {
        const struct route *r = t->index[i].route;
        if (strcmp(r->ref.path, path) != 0) break;
        if (!repo_ref_match(&r->ref, ev)) continue;
        if (r->tag_glob && !tag_glob_match(r->tag_glob, tag)) continue;
        if (r->url && m->urls) m->nurls = add_url(m->urls, m->nurls, m->max_urls, r->url);
        if (r->update && m->updates)
            for (size_t k = 0; k < t->index[i].nsources; k++)
                m->nupdates = add_source(m->updates, m->nupdates, m->max_updates, t->index[i].sources[k]);
        if (r->notify) {
            if (!m->notifies) m->nnotifies++;
            else if (m->nnotifies < m->max_notifies)
                m->notifies[m->nnotifies++] = (struct route_hit){r, t->index[i].sources, t->index[i].nsources};
        }
    }
}

bool routes_match_all(struct route_table *t, const struct push_event *ev, struct route_matches *m)
{
    m->nurls = m->nupdates = m->nnotifies = 0;
    struct repo_ref own, *ref = m->ref ? m->ref : &own;
    if (!ev->repository || !ev->tag || repo_ref_from_event(ev->registry, ev->repository, ref) < 0)
        return false;
    index_ensure(t);
    match_path(t, ref->path, ref, ev->tag, m);
    /* A host-less "nginx" label also wants Docker Hub's "library/nginx". */
    if (registry_host_is_docker_hub(ref->host) && strncmp(ref->path, "library/", 8) == 0)
        match_path(t, ref->path + 8, ref, ev->tag, m);
    return true;
}

size_t routes_match(struct route_table *t, const struct push_event *ev, const char **urls,
                    size_t max)
{
    struct route_matches m = {.urls = urls, .max_urls = max};
    routes_match_all(t, ev, &m);
    return m.nurls;
}

size_t routes_count(struct route_table *t)
{
    index_ensure(t);
    return t->nindex;
}

size_t routes_source_count(const struct route_table *t)
{
    return t->nsources;
}

void routes_foreach(struct route_table *t, routes_visit_fn fn, void *ud)
{
    index_ensure(t);
    for (size_t i = 0; i < t->nindex; i++)
        fn(ud, t->index[i].route, t->index[i].sources, t->index[i].nsources);
}

void routes_foreach_ignored(const struct route_table *t, routes_ignored_fn fn, void *ud)
{
    for (size_t i = 0; i < t->nbuckets; i++)
        for (const struct source *s = t->buckets[i]; s; s = s->next)
            if (s->problem) fn(ud, &s->info, s->problem);
}
