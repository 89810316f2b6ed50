/* testutil.h - small helpers shared by the unit tests. */
#ifndef WR_TESTUTIL_H
#define WR_TESTUTIL_H

#include <stddef.h>
#include <uv.h>

/* Reads a whole file (relative paths are used as given); aborts the test
 * binary if it cannot. Caller frees. */
char *tu_read_file(const char *path, size_t *len);
/* Reads WR_FIXTURES "/" rel: test/fixtures, the real captures copied into
 * the checkout (distribution/, docker/), so a fresh clone is self-contained. */
char *tu_shared_fixture(const char *rel, size_t *len);

/* Loopback servers, the one way every test makes them: a socket bound to
 * 127.0.0.1 on a free port, listening with backlog. Returns the fd and the
 * port in *port; aborts the test binary when the system refuses. */
int tu_tcp_listen(int backlog, int *port);
/* The same as a libuv handle on loop (initialised here), calling cb per
 * connection. Returns the port. */
int tu_uv_tcp_listen(uv_loop_t *loop, uv_tcp_t *server, int backlog, uv_connection_cb cb);
/* A loopback port nobody listens on (it was just free). */
int tu_closed_port(void);

#endif
