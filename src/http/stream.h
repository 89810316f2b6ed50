/* stream.h - the one write path of both HTTP sides (listener and client).
 *
 * Nearly every reply or request fits in the socket buffer: it is written
 * at once with uv_try_write, which costs no copy, no allocation and no
 * epoll_ctl. Only what the socket does not take is copied and queued. */
#ifndef WR_STREAM_H
#define WR_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

/* Called when a queued write completed (status 0) or failed (< 0). */
typedef void (*stream_written_fn)(void *ud, int status);

/* Writes data. try_now: attempt an immediate write when nothing is queued
 * before it (a caller that needs its completion callback passes false).
 * Returns 0 when everything went out now (done is not called), 1 when the
 * rest was queued (done is called once later), or a negative errno (done
 * is not called). */
int stream_write(uv_stream_t *s, const char *data, size_t len, bool try_now, stream_written_fn done, void *ud);

#endif
