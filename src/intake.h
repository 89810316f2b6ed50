/* intake.h - pausing webhook intake while the forward backlog is deep.
 *
 * When the backlog is deep because the router itself is the bottleneck
 * (forwards are being made as fast as it can), reading more webhooks only
 * grows memory: the listener pauses until the backlog is low again, for at
 * most 50 ms at a time, so a stuck target still ends in 503s (the queue's
 * own limit) rather than a deaf router. */
#ifndef WR_INTAKE_H
#define WR_INTAKE_H

#include <stdbool.h>
#include <uv.h>
#include "forward.h"
#include "http_server.h"
#include "log.h"

struct intake;

struct intake *intake_new(uv_loop_t *loop, const struct forwarder *fwd, const struct logger *lg);
/* The listener to pause; NULL detaches it (it is being closed). */
void intake_attach(struct intake *in, struct http_server *server);
/* Called after forwards were queued. */
void intake_pressure(struct intake *in);
/* Reads again now (shutdown: requests being received must be answered). */
void intake_resume(struct intake *in);
unsigned long intake_pauses(const struct intake *in);
/* Closes the timer; frees itself once it is closed, then calls cb (may be
 * NULL). NULL: nothing to close, cb is called. Closing twice is a bug. */
void intake_close(struct intake *in, void (*cb)(void *ud), void *ud);

#endif
