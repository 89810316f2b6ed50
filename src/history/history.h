/* history.h - what became of each push: a fixed ring of delivery records.
 *
 * One entry per (push, action target): a redeploy POST, an engine update of
 * one object, or a notification. Entries are updated in place as their
 * outcome progresses (queued -> delivered -> deployed / unconfirmed, or
 * failed), found again by their id: a sequence number that also tells
 * whether the slot was since overwritten by newer entries (the ring wrapped).
 *
 * Fixed cost: the ring is allocated once (HISTORY_SIZE entries), strings are
 * cut to fixed sizes, nothing is allocated per entry. In memory only: a
 * restart starts a new history. Pure: no I/O, the caller passes the time. */
#ifndef WR_HISTORY_H
#define WR_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "buf.h"
#include "event.h"

enum history_action { HISTORY_REDEPLOY, HISTORY_UPDATE, HISTORY_NOTIFY };

enum history_outcome {
    HISTORY_QUEUED,
    HISTORY_DELIVERED,     /* the target answered 2xx */
    HISTORY_DEPLOYED,      /* an object of the route runs the pushed image; an update completed */
    HISTORY_UNCONFIRMED,   /* delivered, but nothing ran it within DEPLOY_CONFIRM_SECS */
    HISTORY_FAILED,        /* after the retries, or a final error; an update failed */
    HISTORY_UNCHANGED,     /* an update found the object already on the image */
    HISTORY_NOUTCOMES
};

/* Bounded sizes: longer values are cut (at a UTF-8 character boundary).
 * The strings fixed at the push (event id ... target) share one text area,
 * each cut to its own limit too; the two that change later have their own. */
#define HISTORY_TEXT 288
struct history_entry {
    uint64_t id;              /* 0: an empty slot */
    long long ts_ms;          /* wall clock: the push was answered (recorded) */
    long long posted_ms;      /* wall clock: the delivering attempt began; 0 before */
    long long finished_ms;    /* wall clock of the last outcome change */
    size_t target_key;        /* hash_str of the raw target (route URL): matches
                               * confirmations without keeping the secret */
    enum history_action action;
    enum history_outcome outcome;
    int status;               /* HTTP status of the last attempt; 0 none */
    int attempts;
    long long duration_ms;    /* queued -> final answer; -1 not yet */
    long long deployed_ms;    /* push answered -> confirmed running; -1 not (yet) */
    /* In text; never NULL ("" when unknown). */
    const char *event_id;
    const char *source;       /* the webhook format, or "poll" */
    const char *registry;
    const char *repository;
    const char *tag;
    const char *digest;
    const char *target;       /* redacted URL; for an update the object; for a notification the target */
    char objects[96];         /* the route's containers / services, comma-separated */
    char error[96];           /* in words; empty if none */
    char text[HISTORY_TEXT];
};

struct history;

/* size: entries kept (>= 1). */
struct history *history_new(size_t size);
void history_free(struct history *h);
size_t history_size(const struct history *h);
size_t history_count(const struct history *h);   /* entries recorded so far, at most size */

/* A new entry, outcome queued, newest in the ring (overwriting the oldest
 * once full). target is shown as is: pass it redacted. objects may be NULL.
 * Returns its id (never 0). */
struct history_add {
    long long now_ms;
    enum history_action action;
    const struct push_event *ev;
    const char *target;
    size_t target_key;
    const char *objects;
};
uint64_t history_add(struct history *h, const struct history_add *a);

/* The entry with this id, to update in place; NULL when the id is 0 or the
 * slot was overwritten since. Valid until the next history_add. */
struct history_entry *history_get(struct history *h, uint64_t id);

/* Copies src into dst (size n), cut at a character boundary; NULL is "". */
size_t history_copy(char *dst, size_t n, const char *src);   /* returns the length copied */
/* The outcome moves on: finished_ms = now, and the error (NULL: cleared). */
void history_set_outcome(struct history_entry *e, enum history_outcome o, long long now_ms, const char *error);

/* Newest first. Filters: NULL / HISTORY_NOUTCOMES mean any. */
struct history_filter {
    size_t limit;                   /* 0: every entry */
    const char *repository;         /* exact */
    enum history_outcome outcome;   /* HISTORY_NOUTCOMES: any */
};
/* Fills out (room for max) with matching entries, newest first; returns how many. */
size_t history_query(const struct history *h, const struct history_filter *f, const struct history_entry **out,
                     size_t max);
/* Every entry, newest first, while fn returns true. */
void history_foreach(struct history *h, bool (*fn)(void *ud, struct history_entry *e), void *ud);

const char *history_outcome_name(enum history_outcome o);
const char *history_action_name(enum history_action a);
/* HISTORY_NOUTCOMES when the name is none of them. */
enum history_outcome history_outcome_parse(const char *name);

/* One entry as a JSON object (the /history shape; every string escaped). */
void history_entry_json(struct buf *b, const struct history_entry *e);

/* deployed_ms histogram for /metrics: counts per bucket bound (seconds). */
#define HISTORY_DEPLOY_BUCKETS 10
struct history_deploy_stats {
    unsigned long le[HISTORY_DEPLOY_BUCKETS];
    unsigned long count;
    double sum;   /* seconds */
};
double history_deploy_bound(size_t i);
const struct history_deploy_stats *history_deploy_stats(const struct history *h);
/* The entry is confirmed running: outcome deployed, deployed_ms from its
 * ts, counted in the histogram. */
void history_deployed(struct history *h, struct history_entry *e, long long now_ms);

#endif
