/* forward.h - delivering redeploy POSTs to route URLs.
 *
 * The webhook handler hands each (event, url) pair to forward_submit and
 * answers the registry at once; from then on delivery is this module's
 * responsibility. Bounded: FORWARD_CONCURRENCY in flight, FORWARD_QUEUE_MAX
 * waiting. One log line per outcome (target redacted, status, duration). */
#ifndef WR_FORWARD_H
#define WR_FORWARD_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>
#include "http_client.h"
#include "log.h"
#include "buf.h"
#include "event.h"

struct forward_opts {
    int timeout_secs;      /* one attempt, whole: connect, TLS, write, answer */
    int retries;           /* attempts after the first */
    int concurrency;
    int per_origin;        /* in flight to one scheme+host+port; 0 = concurrency */
    int queue_max;
    int debounce_ms;
};

struct forwarder;

struct forwarder *forward_new(uv_loop_t *loop, struct http_client *http, const struct logger *lg,
                              const struct forward_opts *opts);
/* true if n more submissions would be accepted right now. The webhook
 * handler checks this before accepting, so nothing accepted is dropped. */
bool forward_has_room(const struct forwarder *f, size_t n);
/* Queues a POST of the event to url. Returns 0, -EAGAIN when the queue is
 * full, -EINVAL when the url cannot be used (logged). Copies what it needs. */
int forward_submit(struct forwarder *f, const char *url, const struct push_event *ev);

/* How a job ended, for whoever watches it (a notification's sender, the
 * notifier watching a redeploy POST). */
struct forward_result {
    bool delivered;        /* a 2xx */
    int err;               /* the client's errno, 0 when an answer came; -ECANCELED: shut down */
    int status;            /* 0 when no answer */
    int attempts;
    long long duration_ms; /* the last attempt's */
    long long attempt_ms;  /* when the last attempt began, in ms before this call; 0: none began */
    const char *error;     /* in words, NULL when delivered; borrowed for the call */
    uint64_t tag;          /* the watcher's own (struct forward_watch) */
};
typedef void (*forward_done_fn)(void *ud, const struct forward_result *r);

/* Someone to tell how a job ends: fn(ud, result) with result->tag = tag. */
struct forward_watch {
    forward_done_fn fn;
    void *ud;
    uint64_t tag;
};

/* Like forward_submit; each of the n watchers is then told exactly once,
 * from the loop, how the POST this event went into ends (a coalesced event
 * is told the outcome of the POST it was merged into). None is told when
 * the return is not 0: the caller tells them, if it wants. */
int forward_submit_watched(struct forwarder *f, const char *url, const struct push_event *ev,
                           const struct forward_watch *watches, size_t n);

/* A prepared request (a notification), sent as it is: same timeouts,
 * retries (5xx, 429 with Retry-After, or a JSON body's "retry_after" in
 * seconds, as Discord sends) and per-origin fairness as a redeploy, but
 * never coalesced, never counted against the redeploy queue (it has its
 * own bound, FORWARD_QUEUE_MAX more) and never holding more than half of
 * FORWARD_CONCURRENCY: a notification cannot delay or block a redeploy. */
struct forward_request {
    const char *method;    /* "POST", "PUT" */
    const char *url;       /* secret: never logged */
    const char *headers;   /* raw "Name: value\r\n" lines */
    const char *body;
    size_t body_len;
    const char *label;     /* how the logs show the target ("discord discord.com #3f9a1c0e") */
};
/* Returns 0 (done is called once, later), -EAGAIN when the notification
 * queue is full or the forwarder drains, -EINVAL for an unusable URL. */
int forward_send(struct forwarder *f, const struct forward_request *req, forward_done_fn done, void *ud);
size_t forward_notify_queued(const struct forwarder *f);

size_t forward_queued(const struct forwarder *f);   /* redeploys waiting (not notifications) */
size_t forward_in_flight(const struct forwarder *f);
/* Counters for /metrics. Latency is per attempt (one HTTP exchange). */
#define FORWARD_LATENCY_BUCKETS 11
struct forward_stats {
    unsigned long delivered[4];          /* by the attempt that succeeded: 1, 2, 3, 4+ */
    unsigned long failed;                /* final failures */
    unsigned long retried;               /* attempts that failed and were retried */
    unsigned long latency_le[FORWARD_LATENCY_BUCKETS];   /* attempts taking <= bound */
    unsigned long latency_count;
    double latency_sum;                  /* seconds */
};
/* Upper bounds of the latency buckets, in seconds. */
double forward_latency_bound(size_t i);
const struct forward_stats *forward_stats(const struct forwarder *f);

/* Shutdown: accept nothing more; forwards waiting for their coalescing
 * window or a retry get one last attempt now, without further retries;
 * whatever is not delivered within timeout_secs + 1 s is given up with one
 * error line per job. Then done is called once, from the loop. */
void forward_drain(struct forwarder *f, void (*done)(void *ud), void *ud);
/* The HTTP client must stay open until done: the drain cancels its own
 * calls, and a client closed first would leave them dangling. */
void forward_free(struct forwarder *f);   /* only after drain completed or loop stopped */

/* The JSON body of a forward (pure; exposed for tests):
 * {"repository":…,"tag":…,"digest":…,"registry":…,"event_id":…} */
void forward_build_body(struct buf *out, const struct push_event *ev);

#endif
