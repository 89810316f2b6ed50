/* main.c - entry point: configuration, the `healthcheck` subcommand, the loop. */
#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <uv.h>

#include "app.h"
#include "config.h"

extern char **environ;

/* GET /health on the local listener; exit 0 if it answers 200. Blocking
 * sockets are fine here: this runs in its own short-lived process (the
 * container HEALTHCHECK), never in the daemon's loop. */
static int healthcheck(const struct config *c)
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof ss);
    const char *addr = c->listen_addr;
    int v6 = strchr(addr, ':') != NULL;
    /* A wildcard listener is reached on loopback. */
    if (strcmp(addr, "0.0.0.0") == 0) addr = "127.0.0.1";
    if (strcmp(addr, "::") == 0) addr = "::1";
    if (v6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)c->listen_port);
        inet_pton(AF_INET6, addr, &s6->sin6_addr);
        len = sizeof *s6;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)c->listen_port);
        inet_pton(AF_INET, addr, &s4->sin_addr);
        len = sizeof *s4;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (fd < 0) return 1;
    struct timeval tv = {.tv_sec = 3};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    const char req[] = "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    char resp[64] = "";
    int ok = connect(fd, (struct sockaddr *)&ss, len) == 0 &&
             write(fd, req, sizeof req - 1) == (ssize_t)(sizeof req - 1) &&
             read(fd, resp, sizeof resp - 1) > 12 && strncmp(resp + 8, " 200", 4) == 0;
    close(fd);
    if (!ok) fprintf(stderr, "webhook-router: healthcheck failed on %s port %d\n", addr,
                     c->listen_port);
    return ok ? 0 : 1;
}

/* Many idle keep-alive connections are normal for a webhook endpoint: take
 * every file descriptor the hard limit allows. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    struct config cfg;
    char err[512] = "";
    config_defaults(&cfg);
    enum config_action act = config_parse(&cfg, argc, argv, environ, stdout, err, sizeof err);
    int rc = 0;
    switch (act) {
    case CONFIG_ERROR:
        fprintf(stderr, "webhook-router: %s\n", err);
        config_free(&cfg);
        return 2;
    case CONFIG_EXIT_OK:
        config_free(&cfg);
        return 0;
    case CONFIG_HEALTHCHECK:
        rc = healthcheck(&cfg);
        config_free(&cfg);
        return rc;
    case CONFIG_RUN:
        break;
    }

    /* A peer closing its socket must be an EPIPE, not a dead process. */
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    /* Small blocks come and go with every request; glibc's per-thread cache
     * serves them. Its fastbins would only add work: each request's
     * larger block (the parsed body) makes malloc consolidate them. */
    mallopt(M_MXFAST, 0);

    uv_loop_t loop;
    uv_loop_init(&loop);
    struct app app;
    if (app_start(&app, &loop, &cfg) < 0) {
        rc = 1;
        app_stop(&app);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    app_free(&app);
    if (uv_loop_close(&loop) != 0) {
        /* Some handle was left open: a bug, but not one to hang on. */
        fprintf(stderr, "webhook-router: handles still open at exit\n");
    }
    config_free(&cfg);
    return rc;
}
