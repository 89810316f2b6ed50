/* libFuzzer: raw bytes into the real listener (llhttp, limits, pipelining)
 * over a loopback connection, with a handler that routes like the real one
 * and echoes. One server is started once; each input is one connection. */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "http_server.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uv_loop_t loop;
static struct http_server *srv;
static struct logger lg;

static void handler(void *ud, const struct http_request *req, struct http_response *res)
{
    (void)ud;
    res->status = strcmp(req->path, "/health") == 0 ? 200 : 404;
    buf_puts(&res->body, "{\"path\":");
    json_put_str(&res->body, req->path);
    buf_puts(&res->body, ",\"body\":");
    json_put_strn(&res->body, req->body, req->body_len);
    buf_putc(&res->body, '}');
    (void)http_request_header(req, "content-type");
}

static int start(void)
{
    uv_loop_init(&loop);
    logger_init(&lg, LOG_ERROR, LOG_FORMAT_JSON, 2);
    struct http_server_opts o = {
        .addr = "127.0.0.1", .port = 0, .max_header_bytes = 2048, .max_body_bytes = 4096,
        .request_timeout_ms = 200, .idle_timeout_ms = 200, .max_connections = 64,
        .handler = handler, .log = &lg,
    };
    srv = http_server_new(&loop, &o);
    return http_server_listen(srv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!srv && start() < 0) __builtin_trap();
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)http_server_port(srv))};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    connect(fd, (struct sockaddr *)&sa, sizeof sa);
    uv_run(&loop, UV_RUN_NOWAIT);   /* accept */
    size_t off = 0;
    char sink[65536];
    /* Feed the input and read what comes back until the server is done
     * with this connection (closed it, or went idle). */
    for (int spins = 0; spins < 2000; spins++) {
        if (off < size) {
            ssize_t w = send(fd, data + off, size - off, MSG_NOSIGNAL);
            if (w > 0) off += (size_t)w;
        } else if (off == size) {
            shutdown(fd, SHUT_WR);
            off++;
        }
        uv_run(&loop, UV_RUN_NOWAIT);
        ssize_t r = recv(fd, sink, sizeof sink, 0);
        if (r == 0 && off > size) break;
        if (r < 0 && off > size && http_server_connections(srv) == 0) break;
        if (r <= 0) usleep(50);
    }
    close(fd);
    for (int i = 0; i < 50 && http_server_connections(srv) > 0; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(100);
    }
    return 0;
}
