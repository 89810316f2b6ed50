/* stream.c - immediate writes with a queued copy as the fallback (stream.h). */
#include "stream.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"

struct stream_wreq {
    uv_write_t req;
    stream_written_fn done;
    void *ud;
    char data[];
};

static void on_written(uv_write_t *req, int status)
{
    struct stream_wreq *w = (struct stream_wreq *)req;
    stream_written_fn done = w->done;
    void *ud = w->ud;
    free(w);
    if (done) done(ud, status);
}

int stream_write(uv_stream_t *s, const char *data, size_t len, bool try_now, stream_written_fn done, void *ud)
{
    /* Anything queued before goes first: then the queue it is. */
    if (try_now && uv_stream_get_write_queue_size(s) == 0) {
        uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
        int n = uv_try_write(s, &b, 1);
        if (n == (int)len) return 0;
        if (n > 0) {
            data += n;
            len -= (size_t)n;
        } else if (n != UV_EAGAIN) {
            return n;
        }
    }
    struct stream_wreq *w = xmalloc(sizeof *w + len);
    w->done = done;
    w->ud = ud;
    memcpy(w->data, data, len);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
    int rc = uv_write(&w->req, s, &b, 1, on_written);
    if (rc < 0) {
        free(w);
        return rc;
    }
    return 1;
}
