/* intake.c - webhook intake paused on a deep forward backlog (intake.h). */
#include "intake.h"

#include <assert.h>
#include <stdlib.h>

#include "buf.h"

/* Backlog that pauses intake, the level that resumes it, and the longest
 * one pause may last. A pause holds every waiting sender for as long as
 * the forwarder takes to send PAUSE - RESUME jobs: 64 (one FORWARD_CONCURRENCY's
 * worth) is about 3 ms at 20,000 forwards/s, where 1024 -> 256 was ~40 ms,
 * the whole p99 of a push flood. 192 ready jobs still keep every slot busy,
 * and fewer jobs held is less memory at the peak. */
#define BACKLOG_PAUSE 256
#define BACKLOG_RESUME 192
#define PAUSE_MAX_MS 50
/* How often a pause looks at the backlog. */
#define PAUSE_CHECK_MS 1

struct intake {
    uv_timer_t timer;             /* first member: the handle is the struct */
    const struct forwarder *fwd;
    const struct logger *log;
    struct http_server *server;
    bool paused;
    bool armed;                   /* false after a pause ran out: until the backlog is low again */
    uint64_t paused_at;
    unsigned long pauses;
    bool closing;
    struct close_cb closed;       /* intake_close's, once freed */
};

struct intake *intake_new(uv_loop_t *loop, const struct forwarder *fwd, const struct logger *lg)
{
    struct intake *in = xcalloc(1, sizeof *in);
    uv_timer_init(loop, &in->timer);
    in->timer.data = in;
    in->fwd = fwd;
    in->log = lg;
    in->armed = true;
    return in;
}

void intake_attach(struct intake *in, struct http_server *server)
{
    if (!server) intake_resume(in);
    in->server = server;
}

void intake_resume(struct intake *in)
{
    if (!in->paused) return;
    in->paused = false;
    uv_timer_stop(&in->timer);
    if (in->server) http_server_pause(in->server, false);
}

static void on_timer(uv_timer_t *t)
{
    struct intake *in = t->data;
    if (forward_queued(in->fwd) <= BACKLOG_RESUME) {
        intake_resume(in);
    } else if (uv_now(t->loop) - in->paused_at >= PAUSE_MAX_MS) {
        /* Forwards are not draining (slow or dead targets): hold no longer.
         * FORWARD_QUEUE_MAX and its 503 are the limit from here on. */
        in->armed = false;
        intake_resume(in);
    }
}

void intake_pressure(struct intake *in)
{
    if (in->paused || !in->server) return;
    size_t queued = forward_queued(in->fwd);
    if (!in->armed) {
        if (queued <= BACKLOG_RESUME) in->armed = true;
        return;
    }
    if (queued < BACKLOG_PAUSE) return;
    in->paused = true;
    in->paused_at = uv_now(in->timer.loop);
    in->pauses++;
    http_server_pause(in->server, true);
    uv_timer_start(&in->timer, on_timer, PAUSE_CHECK_MS, PAUSE_CHECK_MS);
    LOG(in->log, LOG_DEBUG, "webhook intake paused: forward backlog", F_INT("queued", queued));
}

unsigned long intake_pauses(const struct intake *in)
{
    return in->pauses;
}

static void on_closed(uv_handle_t *h)
{
    struct intake *in = h->data;
    close_cb_free(in, in->closed);
}

void intake_close(struct intake *in, void (*cb)(void *ud), void *ud)
{
    if (CLOSE_BEGIN(in, cb, ud)) return;
    intake_resume(in);
    in->server = NULL;
    uv_close((uv_handle_t *)&in->timer, on_closed);
}
