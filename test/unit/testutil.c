/* testutil.c - file and loopback helpers for unit tests. */
#include "testutil.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

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

static int bound_socket(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    socklen_t len = sizeof sa;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
        perror("loopback socket");
        abort();
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

int tu_tcp_listen(int backlog, int *port)
{
    int fd = bound_socket(port);
    if (listen(fd, backlog) < 0) {
        perror("listen");
        abort();
    }
    return fd;
}

int tu_uv_tcp_listen(uv_loop_t *loop, uv_tcp_t *server, int backlog, uv_connection_cb cb)
{
    uv_tcp_init(loop, server);
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    int len = sizeof sa;
    if (uv_tcp_bind(server, (const struct sockaddr *)&sa, 0) < 0 || uv_listen((uv_stream_t *)server, backlog, cb) < 0 ||
        uv_tcp_getsockname(server, (struct sockaddr *)&sa, &len) < 0) {
        fprintf(stderr, "cannot listen on 127.0.0.1\n");
        abort();
    }
    return ntohs(sa.sin_port);
}

int tu_closed_port(void)
{
    int port;
    close(bound_socket(&port));
    return port;
}
