/* bench/status_page_bench.c - how long GET /status takes to render with
 * many routes and a full history (no sockets: the renderer alone, which is
 * all the request does besides writing the bytes). Not a test.
 *
 *   build/release/bench_status_page [routes] [entries] [rounds]   (defaults 500 1000 50) */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "deploy.h"
#include "handlers.h"
#include "status_page.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    int nroutes = argc > 1 ? atoi(argv[1]) : 500;
    int nentries = argc > 2 ? atoi(argv[2]) : 1000;
    int rounds = argc > 3 ? atoi(argv[3]) : 50;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct logger lg;
    logger_init(&lg, LOG_ERROR, LOG_FORMAT_JSON, 2);
    struct route_table *routes = routes_new();
    char id[72], name[64], image[128], url[128];
    for (int i = 0; i < nroutes; i++) {
        snprintf(id, sizeof id, "%064d", i);
        snprintf(name, sizeof name, "stack%d-web-1", i);
        snprintf(image, sizeof image, "registry.example:5000/team/app%d", i);
        snprintf(url, sizeof url, "https://portainer.example/api/stacks/webhooks/%08x-token-%d", i * 2654435761u, i);
        json_t *labels = json_pack("{s:s,s:s,s:s}", "webhook-router.image", image, "webhook-router.url", url,
                                   "webhook-router.tag", "v*");
        struct route_source src = {.engine = "unix:///var/run/docker.sock", .kind = "container", .id = id,
                                   .name = name, .stack = name, .image = image};
        routes_put(routes, &src, labels, "webhook-router", &lg);
        json_decref(labels);
    }
    struct deploy_opts o = {.history_size = (size_t)nentries, .confirm_secs = 300, .routes = routes, .log = &lg};
    struct deploy *d = deploy_new(&loop, &o);
    char ev_id[64], repo[64], digest[80];
    for (int i = 0; i < nentries; i++) {
        int r = i % nroutes;
        snprintf(ev_id, sizeof ev_id, "3f1c2a9e-%04d-4b7e-9a61-%012d", i, i);
        snprintf(repo, sizeof repo, "team/app%d", r);
        snprintf(digest, sizeof digest, "sha256:%064x", i);
        snprintf(url, sizeof url, "https://portainer.example/api/stacks/webhooks/%08x-token-%d", r * 2654435761u, r);
        struct push_event ev = {.format = "distribution", .id = ev_id, .registry = "registry.example:5000",
                                .repository = repo, .tag = "v1", .digest = digest};
        uint64_t tag = deploy_record_redeploy(d, &ev, url);
        struct forward_result fo = {.delivered = i % 7 != 0, .status = i % 7 ? 204 : 502, .attempts = 1,
                                    .duration_ms = 40, .error = i % 7 ? NULL : "HTTP 502", .tag = tag};
        deploy_forward_done(d, &fo);
    }
    struct handlers_ctx ctx = {.routes = routes, .deploy = d, .log = &lg};
    struct buf b;
    buf_init(&b);
    double best = 1e9, total = 0;
    for (int i = 0; i < rounds; i++) {
        buf_reset(&b);
        double t0 = now_s();
        status_page_render(&b, &ctx, deploy_now_ms());
        double t = now_s() - t0;
        total += t;
        if (t < best) best = t;
    }
    printf("/status: %d routes, %d history entries: %zu bytes, best %.2f ms, mean %.2f ms over %d renders\n",
           nroutes, nentries, b.len, best * 1000, total * 1000 / rounds, rounds);
    buf_free(&b);
    deploy_close(d, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    deploy_free(d);
    routes_free(routes);
    return 0;
}
