/* testutil.c - file helpers for unit tests. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>

char *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        abort();
    }
    size_t cap = 4096, n = 0;
    char *data = malloc(cap);
    size_t got;
    while (data && (got = fread(data + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n - 1 == 0) data = realloc(data, cap *= 2);
    }
    fclose(f);
    if (!data) abort();
    data[n] = '\0';
    if (len) *len = n;
    return data;
}

char *tu_shared_fixture(const char *rel, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", WR_FIXTURES, rel);
    return tu_read_file(path, len);
}
