/* routes.h - the label map: which webhook URLs want which image.
 *
 * Sources (a container or a service on an engine) carry labels; each source
 * yields zero or more routes (image x url x tag glob). The table is keyed by
 * (engine, source id) so create/destroy events and full resyncs update it
 * exactly. Identical routes from many sources (replicas) match once. */
#ifndef WR_ROUTES_H
#define WR_ROUTES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include "log.h"
#include "match.h"
#include "event.h"

struct route {
    char *image;          /* as written in the label */
    struct repo_ref ref;
    char *url;            /* secret: never log it without F_URL; NULL: update only */
    char *tag_glob;       /* NULL: every tag */
    bool update;          /* <prefix>.update=true: the engine updater redeploys the source */
    long long poll_ms;    /* <prefix>.poll: 0 not given, -1 "off", else the interval */
    char *notify;         /* <prefix>.notify: target names and URLs, blank-separated; NULL: none.
                           * Its URLs are secrets (shown only as notify_display does) */
};

/* Parses one source's labels (a route needs <prefix>.image and at least
 * one of <prefix>.url, <prefix>.update=true or <prefix>.notify) (a JSON object of string values; other keys are
 * ignored). Returns the number of routes written to *out (caller frees with
 * route_list_free), 0 when the source has no `<prefix>.image` label, or
 * -EINVAL with a reason in err (never containing the URL). Pure. */
int route_parse_labels(const char *prefix, json_t *labels, struct route **out,
                       char *err, size_t errlen);
void route_list_free(struct route *r, size_t n);

/* Whether labels hold a key under prefix that no route reads
 * ("webhook-router.images", ".URL"); out then names the first such key and
 * the known key nearest to it. route_parse_labels puts this before its own
 * reason when it refuses labels. Pure. */
bool route_unknown_label(const char *prefix, json_t *labels, char *out, size_t outlen);

struct route_source {
    const char *engine;   /* DOCKER_HOST entry it came from */
    const char *kind;     /* "container" or "service" */
    const char *id;
    const char *name;     /* may be NULL */
    const char *stack;    /* compose project / stack namespace; may be NULL */
    const char *image;    /* the object's own image reference ("reg:5000/team/app:v1",
                           * a service's "…@sha256:…", or an image id); may be NULL */
    const char *image_id; /* a container's ImageID ("sha256:…"), what it runs whatever
                           * its image name now points at; may be NULL (an event does
                           * not say it: a put without it keeps the one known) */
};

struct route_table;

struct route_table *routes_new(void);
/* Who knows the notification targets (the daemon): each word of a notify
 * label is checked with it; 0 or -EINVAL with a reason in err (which must
 * not repeat a URL). Without a checker every word is accepted. */
typedef int (*routes_notify_check_fn)(void *ud, const char *word, char *err, size_t errlen);
void routes_set_notify_check(struct route_table *t, routes_notify_check_fn fn, void *ud);
void routes_free(struct route_table *t);

/* Sets the routes of a source from its labels, replacing what it had.
 * Malformed labels: the source keeps no routes and one warn is logged (once
 * per distinct problem, so resyncs do not repeat it). Returns the number of
 * routes the source now has, or -EINVAL. */
int routes_put(struct route_table *t, const struct route_source *src, json_t *labels,
               const char *prefix, const struct logger *lg);
/* Returns true if the source existed. */
bool routes_remove(struct route_table *t, const char *engine, const char *id);

/* The source as the table has it, or NULL; valid until the table is next
 * modified. */
const struct route_source *routes_find(struct route_table *t, const char *engine, const char *id);
/* The routes of a source (*n of them), or NULL; valid until the table is
 * next modified. */
const struct route *routes_of_source(struct route_table *t, const char *engine, const char *id, size_t *n);
/* docker rename: the source keeps its routes under a new name. Returns true
 * if the source exists and its name changed. */
bool routes_rename(struct route_table *t, const char *engine, const char *id, const char *name);

/* Full resync of one engine without a window where a route is missing:
 * routes_mark(engine), then routes_put every listed source, then
 * routes_sweep(engine) drops the sources that were not put since the mark. */
void routes_mark(struct route_table *t, const char *engine);
size_t routes_sweep(struct route_table *t, const char *engine);

/* Distinct target URLs of every route matching the event. The strings stay
 * valid until the table is next modified. Returns how many (capped at max). */
size_t routes_match(struct route_table *t, const struct push_event *ev,
                    const char **urls, size_t max);

/* Everything a push asks for: the distinct URLs (as routes_match) and the
 * distinct sources whose matching route has update=true. Either array may
 * be NULL. Valid until the table is next modified. */
struct route_hit {
    const struct route *route;
    const struct route_source *const *sources;
    size_t nsources;
};
struct route_matches {
    const char **urls;
    size_t max_urls, nurls;
    const struct route_source **updates;
    size_t max_updates, nupdates;
    /* The matching routes that have a notify label (optional), and how
     * many there are (counted also without the array). */
    struct route_hit *notifies;
    size_t max_notifies, nnotifies;
    /* Where to put the event's canonical reference, as matched (optional):
     * whoever keys on it later need not work it out again. */
    struct repo_ref *ref;
};
/* Returns whether the event has a reference to match (then *m->ref holds it). */
bool routes_match_all(struct route_table *t, const struct push_event *ev, struct route_matches *m);
/* Bumped by every change of the table: a consumer that derives state from
 * it (the registry watcher) compares generations instead of polling. */
unsigned long routes_generation(const struct route_table *t);

size_t routes_count(struct route_table *t);   /* distinct routes (may rebuild the index) */
size_t routes_source_count(const struct route_table *t);

/* Iteration for /routes and tests: calls fn for every distinct route with
 * the sources that carry it. */
typedef void (*routes_visit_fn)(void *ud, const struct route *r,
                                const struct route_source *const *sources, size_t nsources);
void routes_foreach(struct route_table *t, routes_visit_fn fn, void *ud);

/* The sources whose labels were ignored (malformed: no route came of
 * them), with the reason as logged; for /routes and the status page. Order
 * is unspecified. */
typedef void (*routes_ignored_fn)(void *ud, const struct route_source *src, const char *reason);
void routes_foreach_ignored(const struct route_table *t, routes_ignored_fn fn, void *ud);

#endif
