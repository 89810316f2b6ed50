/* testutil.h - small helpers shared by the unit tests. */
#ifndef WR_TESTUTIL_H
#define WR_TESTUTIL_H

#include <stddef.h>

/* Reads a whole file (relative paths are used as given); aborts the test
 * binary if it cannot. Caller frees. */
char *tu_read_file(const char *path, size_t *len);
/* Reads WR_FIXTURES "/" rel: test/fixtures, the real captures copied into
 * the checkout (distribution/, docker/), so a fresh clone is self-contained. */
char *tu_shared_fixture(const char *rel, size_t *len);

#endif
