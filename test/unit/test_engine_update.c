/* Engine updates: the create body built from a real inspect (captured from
 * the harness engine: two networks with aliases and a static address, a
 * named and an anonymous volume, a port, a restart policy), the router's
 * own id, and the updater's ENGINE_UPDATES=0 path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "buf.h"
#include "docker_host.h"
#include "engine_update.h"
#include "engine_update_plan.h"
#include "testutil.h"

static json_t *fixture_json(const char *rel)
{
    size_t len;
    char *text = tu_shared_fixture(rel, &len);
    json_t *j = json_loadb(text, len, 0, NULL);
    free(text);
    assert_non_null(j);
    return j;
}

static const char *s(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static bool array_has(json_t *a, const char *v)
{
    size_t i;
    json_t *x;
    json_array_foreach(a, i, x) if (json_is_string(x) && !strcmp(json_string_value(x), v)) return true;
    return false;
}

static void test_build_create_keeps_everything(void **state)
{
    (void)state;
    json_t *ins = fixture_json("docker/container-inspect.json");
    json_t *img = fixture_json("docker/image-inspect.json");
    char short_id[13];
    snprintf(short_id, sizeof short_id, "%.12s", s(ins, "Id"));
    struct engine_create_plan p;
    char err[128];
    assert_int_equal(engine_update_build_create(ins, "reg:5000/team/app:v2", json_object_get(img, "Config"), &p,
                                                err, sizeof err), 0);
    json_t *b = p.body;
    assert_string_equal(s(b, "Image"), "reg:5000/team/app:v2");
    /* The Hostname was the old short id: the new container gets its own. */
    assert_null(json_object_get(b, "Hostname"));
    /* Cmd came from the old image: the new image's own applies. Env and
     * labels the operator set stay. */
    assert_null(json_object_get(b, "Cmd"));
    assert_true(array_has(json_object_get(b, "Env"), "GREETING=hello"));
    assert_string_equal(s(json_object_get(b, "Labels"), "webhook-router.update"), "true");
    assert_int_equal(json_integer_value(json_object_get(b, "StopTimeout")), 3);

    json_t *hc = json_object_get(b, "HostConfig");
    assert_string_equal(s(json_object_get(hc, "RestartPolicy"), "Name"), "unless-stopped");
    assert_int_equal(json_integer_value(json_object_get(hc, "Memory")), 64 * 1024 * 1024);
    json_t *pb = json_object_get(json_object_get(hc, "PortBindings"), "8080/tcp");
    assert_string_equal(s(json_array_get(pb, 0), "HostIp"), "127.0.0.1");
    assert_true(array_has(json_object_get(hc, "Binds"), "appdata:/named"));
    assert_non_null(json_object_get(json_object_get(hc, "Tmpfs"), "/run"));
    /* The anonymous volume by its name, at the same place; the named one is
     * not mounted twice. */
    json_t *mounts = json_object_get(hc, "Mounts");
    assert_int_equal(json_array_size(mounts), 1);
    json_t *m = json_array_get(mounts, 0);
    assert_string_equal(s(m, "Type"), "volume");
    assert_string_equal(s(m, "Target"), "/anon");
    size_t i;
    json_t *im;
    const char *anon = NULL;
    json_array_foreach(json_object_get(ins, "Mounts"), i, im)
        if (!strcmp(s(im, "Destination"), "/anon")) anon = s(im, "Name");
    assert_non_null(anon);
    assert_string_equal(s(m, "Source"), anon);

    /* Networks: front (NetworkMode) at create with its alias, not the old
     * short id; back connected after with its static address. */
    json_t *eps = json_object_get(json_object_get(b, "NetworkingConfig"), "EndpointsConfig");
    assert_int_equal(json_object_size(eps), 1);
    json_t *front = json_object_get(eps, "front");
    assert_true(array_has(json_object_get(front, "Aliases"), "alpha"));
    assert_false(array_has(json_object_get(front, "Aliases"), short_id));
    assert_null(json_object_get(front, "NetworkID"));
    assert_null(json_object_get(front, "IPAddress"));
    assert_int_equal(json_array_size(p.connect), 1);
    json_t *c = json_array_get(p.connect, 0);
    assert_string_equal(s(c, "Network"), "back");
    json_t *back = json_object_get(c, "EndpointConfig");
    assert_string_equal(s(json_object_get(back, "IPAMConfig"), "IPv4Address"), "10.77.0.9");
    assert_true(array_has(json_object_get(back, "Aliases"), "beta"));
    assert_false(array_has(json_object_get(back, "Aliases"), short_id));
    /* Each network's MAC address stays. */
    assert_string_equal(s(back, "MacAddress"), "02:42:0a:4d:00:09");
    assert_string_equal(s(front, "MacAddress"), "02:42:ac:11:00:02");
    /* The inspect itself is untouched. */
    assert_string_equal(s(json_object_get(ins, "Config"), "Hostname"), short_id);
    engine_create_plan_free(&p);

    /* Without the old image's config every value stays. */
    assert_int_equal(engine_update_build_create(ins, "x:1", NULL, &p, err, sizeof err), 0);
    assert_true(array_has(json_object_get(p.body, "Cmd"), "/bin/sleep"));
    engine_create_plan_free(&p);
    json_decref(ins);
    json_decref(img);
}

/* An Env entry equal to the old image's may be the operator's own (the
 * engine merged both into one list): it is kept. */
static void test_build_create_keeps_env_equal_to_the_image(void **state)
{
    (void)state;
    json_t *ins = fixture_json("docker/container-inspect.json");
    json_t *img = fixture_json("docker/image-inspect.json");
    json_t *cfg = json_object_get(img, "Config");
    json_object_set_new(cfg, "Env", json_pack("[s,s]", "PATH=/usr/bin", "LOG_LEVEL=info"));
    json_object_set_new(json_object_get(ins, "Config"), "Env",
                        json_pack("[s,s,s]", "PATH=/usr/bin", "LOG_LEVEL=info", "GREETING=hello"));
    struct engine_create_plan p;
    char err[128];
    assert_int_equal(engine_update_build_create(ins, "reg:5000/team/app:v2", cfg, &p, err, sizeof err), 0);
    json_t *env = json_object_get(p.body, "Env");
    assert_true(array_has(env, "LOG_LEVEL=info"));
    assert_true(array_has(env, "PATH=/usr/bin"));
    assert_true(array_has(env, "GREETING=hello"));
    engine_create_plan_free(&p);
    json_decref(ins);
    json_decref(img);
}

static void test_build_create_shared_network_and_errors(void **state)
{
    (void)state;
    json_t *ins = fixture_json("docker/container-inspect.json");
    json_object_set_new(json_object_get(ins, "HostConfig"), "NetworkMode", json_string("host"));
    struct engine_create_plan p;
    char err[128];
    assert_int_equal(engine_update_build_create(ins, "x:1", NULL, &p, err, sizeof err), 0);
    assert_int_equal(json_object_size(json_object_get(json_object_get(p.body, "NetworkingConfig"), "EndpointsConfig")), 0);
    assert_int_equal(json_array_size(p.connect), 0);
    engine_create_plan_free(&p);
    json_object_del(ins, "HostConfig");
    assert_int_equal(engine_update_build_create(ins, "x:1", NULL, &p, err, sizeof err), -EINVAL);
    assert_null(p.body);
    json_decref(ins);
}

static void test_find_container_id(void **state)
{
    (void)state;
    const char *id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    char out[65];
    char text[512];
    snprintf(text, sizeof text,
             "612 590 0:50 / / rw,relatime - overlay overlay rw\n"
             "640 612 254:1 /var/lib/docker/containers/%s/hostname /etc/hostname rw - ext4 /dev/vda1 rw\n", id);
    assert_true(engine_update_find_container_id(text, out));
    assert_string_equal(out, id);
    snprintf(text, sizeof text, "12:pids:/docker/%s\n", id);
    assert_true(engine_update_find_container_id(text, out));
    assert_string_equal(out, id);
    assert_false(engine_update_find_container_id("0::/\n", out));
    assert_false(engine_update_find_container_id("0::/system.slice/docker-0123.scope\n", out));
}

static char *read_log(FILE *f)
{
    fflush(f);
    long n = lseek(fileno(f), 0, SEEK_END);
    char *t = calloc(1, (size_t)n + 1);
    assert_int_equal(pread(fileno(f), t, (size_t)n, 0), n);
    return t;
}

static size_t occurrences(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

static void on_closed(void *ud)
{
    *(int *)ud = 1;
}

/* ENGINE_UPDATES=0: nothing is sent (there is no HTTP client at all here),
 * and the warn is given once per object, not per push. The router's own
 * container is never updated. */
static void test_off_warns_once_and_never_self(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    FILE *logf = tmpfile();
    struct logger lg;
    logger_init(&lg, LOG_DEBUG, LOG_FORMAT_JSON, fileno(logf));
    struct docker_host *hosts;
    size_t n;
    char err[128];
    assert_int_equal(docker_host_parse_list("unix:///run/d.sock", &hosts, &n, err, sizeof err), 0);
    struct docker_engine *eng = docker_engine_new(NULL, &hosts[0]);
    struct engine_update_opts o = {.enabled = false, .engines = &eng, .nengines = 1, .log = &lg};
    struct engine_updater *u = engine_updater_new(&loop, &o);
    struct push_event ev = {.registry = "reg:5000", .repository = "team/app", .tag = "latest", .digest = "sha256:1"};
    struct update_target a = {.engine = "unix:///run/d.sock", .kind = "container", .id = "aaaa", .name = "web"};
    struct update_target b = {.engine = "unix:///run/d.sock", .kind = "service", .id = "bbbb", .name = "api"};
    struct update_target x = {.engine = "tcp://other:2375", .kind = "container", .id = "cccc"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(engine_updater_submit(u, &a, &ev), -EPERM);
        assert_int_equal(engine_updater_submit(u, &b, &ev), -EPERM);
    }
    assert_int_equal(engine_updater_submit(u, &x, &ev), -ENOENT);
    char *t = read_log(logf);
    assert_int_equal(occurrences(t, "engine updates are off"), 2);
    assert_int_equal(occurrences(t, "\"container\":\"web\""), 1);
    assert_int_equal(occurrences(t, "\"service\":\"api\""), 1);
    assert_non_null(strstr(t, "ENGINE_UPDATES=1"));
    free(t);
    int closed = 0;
    engine_updater_close(u, on_closed, &closed);
    assert_int_equal(closed, 1);

    /* On, but the target is the router itself (self_id a prefix of its id). */
    o.enabled = true;
    o.self_id = "aaaa00000000";
    u = engine_updater_new(&loop, &o);
    struct update_target me = {.engine = "unix:///run/d.sock", .kind = "container",
                               .id = "aaaa00000000ffff", .name = "router"};
    assert_int_equal(engine_updater_submit(u, &me, &ev), -EPERM);
    assert_int_equal(engine_updater_submit(u, &me, &ev), -EPERM);
    t = read_log(logf);
    assert_int_equal(occurrences(t, "router's own container"), 1);
    free(t);
    closed = 0;
    engine_updater_close(u, on_closed, &closed);
    assert_int_equal(closed, 1);
    docker_host_list_free(hosts, n);
    uv_run(&loop, UV_RUN_DEFAULT);
    docker_engine_free(eng);
    assert_int_equal(uv_loop_close(&loop), 0);
    fclose(logf);
}

static void test_aside_name_and_recover_decide(void **state)
{
    (void)state;
    const char *id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    size_t n;
    assert_true(engine_update_aside_name("/web-old-0123456789ab", id, &n));
    assert_int_equal(n, 3);
    assert_false(engine_update_aside_name("/web-old-0123456789ac", id, &n));   /* another container's id */
    assert_false(engine_update_aside_name("web", id, &n));
    assert_false(engine_update_aside_name(NULL, id, &n));

    const char *key = "webhook-router.replaces";
    json_t *aside = json_pack("{s:s, s:{s:b, s:s}}", "Id", id, "State", "Running", 0, "FinishedAt",
                              "2026-12-03T07:50:01.1Z");
    bool ran;
    const char *why;
    /* Nothing under the name: the old one goes back, left as it is. */
    assert_int_equal(engine_update_recover_decide(aside, NULL, key, &ran, &why), RECOVER_UNDO);
    assert_false(ran);
    /* The new one was created, never started; the old one stopped after
     * that (fractions of different lengths compared as times): it ran. */
    json_t *named = json_pack("{s:s, s:s, s:{s:{s:s}}, s:{s:b}}", "Id", "ffff", "Created", "2026-12-03T07:50:01.05Z",
                              "Config", "Labels", key, id, "State", "Running", 0);
    assert_int_equal(engine_update_recover_decide(aside, named, key, &ran, &why), RECOVER_UNDO);
    assert_true(ran);
    /* The new one runs: finished. */
    json_object_set_new(json_object_get(named, "State"), "Running", json_true());
    assert_int_equal(engine_update_recover_decide(aside, named, key, &ran, &why), RECOVER_FINISH);
    /* ... unless its health check says otherwise. */
    json_object_set_new(json_object_get(named, "State"), "Health", json_pack("{s:s}", "Status", "unhealthy"));
    assert_int_equal(engine_update_recover_decide(aside, named, key, &ran, &why), RECOVER_UNDO);
    /* A container under the name that does not replace this one. */
    json_object_set_new(json_object_get(json_object_get(named, "Config"), "Labels"), key, json_string("other"));
    assert_int_equal(engine_update_recover_decide(aside, named, key, &ran, &why), RECOVER_LEAVE);
    json_decref(named);
    json_decref(aside);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aside_name_and_recover_decide),
        cmocka_unit_test(test_build_create_keeps_everything),
        cmocka_unit_test(test_build_create_keeps_env_equal_to_the_image),
        cmocka_unit_test(test_build_create_shared_network_and_errors),
        cmocka_unit_test(test_find_container_id),
        cmocka_unit_test(test_off_warns_once_and_never_self),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
