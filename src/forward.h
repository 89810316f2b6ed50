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
#include <stdint.h>
#include <uv.h>
#include "http_client.h"
#include "log.h"
#include "buf.h"
#include "event.h"

/* What became of a job, for the delivery history (optional). */
struct forward_outcome {
    bool delivered;        /* 2xx */
    bool superseded;       /* more pushes were coalesced into this POST than it tracks:
                            * this one's event was replaced by a later one's */
    int status;            /* of the last attempt; 0 none */
    int attempts;
    long long duration_ms; /* submitted -> final answer */
    long long attempt_ms;  /* the last attempt alone: when it began, in the past */
    const char *error;     /* in words; NULL on success. Borrowed for the call */
};
typedef void (*forward_outcome_fn)(void *ud, uint64_t tag, const struct forward_outcome *o);
/* Tags one job carries at most (pushes coalesced within DEBOUNCE_MS). */
#define FORWARD_MAX_TAGS 8

struct forward_opts {
    int timeout_secs;      /* one attempt, whole: connect, TLS, write, answer */
    int retries;           /* attempts after the first */
    int concurrency;
    int per_origin;        /* in flight to one scheme+host+port; 0 = concurrency */
    int queue_max;
    int debounce_ms;
    /* Called once per tag of forward_submit_tagged when its job ends
     * (delivered, failed, given up); from the loop, never from inside
     * forward_submit, except for a tag superseded at once (more than
     * FORWARD_MAX_TAGS pushes coalesced into one POST). */
    forward_outcome_fn on_outcome;
    void *outcome_ud;
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
/* The same, and the job's outcome is reported under tag (0: not reported).
 * A push coalesced into a pending job adds its tag to the job's. */
int forward_submit_tagged(struct forwarder *f, const char *url, const struct push_event *ev, uint64_t tag);
size_t forward_queued(const struct forwarder *f);
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
