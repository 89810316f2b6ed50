/* Every source format: detection, the fields each produces, what is
 * ignored, and malformed variants. Payloads in test/fixtures/payloads were
 * written from each provider's documented schema. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "match.h"
#include "payload.h"
#include "testutil.h"

struct expect {
    const char *file;
    struct payload_hints hints;
    const char *format;
    size_t n;
    const char *registry, *repository, *tag, *digest;
    bool has_id;
};

static const struct expect cases[] = {
    {"dockerhub-push.json", {0}, "dockerhub", 1, "docker.io", "acme/shop", "v2.3.1", NULL, true},
    {"harbor-push.json", {0}, "harbor", 1, "harbor.example.com", "team/myapp", "latest",
     "sha256:20a5b08e26ee5b7292cac7a88a810f8225f0b3e031ed4262c8d58f2edeabec94", true},
    {"harbor-cloudevents-push.json", {0}, "harbor", 1, "harbor.example.com:8443", "team/myapp", "v1", "sha256:20a5b08e26ee5b7292cac7a88a810f8225f0b3e031ed4262c8d58f2edeabec94", true},
    {"github-registry-package.json", {.github_event = "registry_package"}, "github", 1, "ghcr.io",
     "acme-org/myapp", "v1.4.0", "sha256:20a5b08e26ee5b7292cac7a88a810f8225f0b3e031ed4262c8d58f2edeabec94", true},
    {"github-registry-package.json", {0}, "github", 1, "ghcr.io", "acme-org/myapp", "v1.4.0", NULL, true},
    {"github-package.json", {.github_event = "package"}, "github", 1, "ghcr.io", "acme-org/myapp", "latest", NULL, true},
    {"gitea-package.json", {.gitea_event = "package", .github_event = "package"}, "gitea", 1,
     "git.example.com", "team/myapp", "v3", NULL, true},
    {"gitea-package.json", {0}, "gitea", 1, "git.example.com", "team/myapp", "v3", NULL, true},
    {"quay-push.json", {0}, "quay", 2, "quay.io", "team/myapp", "latest", NULL, false},
    {"acr-push.json", {0}, "acr", 1, "myregistry.azurecr.io", "team/myapp", "v7",
     "sha256:80f0d5c8786bb9e621a45ece0db56d11cdc624ad20da9fe62e9d25490f331d7d", true},
    {"generic-image.json", {0}, "generic", 1, "registry.local:5000", "team/myapp", "v9", "sha256:aaaa", true},
    {"generic-repository.json", {0}, "generic", 1, "registry.local:5000", "team/myapp", "v10", NULL, false},
};

static char *fixture(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/payloads/%s", WR_TEST_FIXTURES, name);
    return tu_read_file(path, len);
}

static int parse_json(json_t *doc, const struct payload_hints *h, struct payload *p, struct buf *err)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    buf_reset(err);
    int rc = payload_parse(text, strlen(text), h, p, err);
    free(text);
    return rc;
}

static void test_each_format(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct expect *c = &cases[i];
        size_t len;
        char *body = fixture(c->file, &len);
        struct payload p;
        struct buf err;
        buf_init(&err);
        if (payload_parse(body, len, &c->hints, &p, &err) != 0) fail_msg("%s: %s", c->file, buf_cstr(&err));
        assert_string_equal(p.format, c->format);
        assert_int_equal(p.n, c->n);
        struct push_event *ev = &p.events[0];
        if (ev->ignored) fail_msg("%s: ignored: %s", c->file, ev->ignored);
        assert_string_equal(ev->registry, c->registry);
        assert_string_equal(ev->repository, c->repository);
        assert_string_equal(ev->tag, c->tag);
        if (c->digest) assert_string_equal(ev->digest, c->digest);
        assert_true(c->has_id ? ev->id != NULL : ev->id == NULL);
        payload_free(&p);
        buf_free(&err);
        free(body);
    }
}

/* Change one field of a fixture (NULL value: delete it) and parse. */
static int mutate(const char *file, const struct payload_hints *h, const char *path, json_t *value,
                  struct payload *p, struct buf *err)
{
    size_t len;
    char *body = fixture(file, &len);
    json_error_t je;
    json_t *doc = json_loadb(body, len, 0, &je);
    free(body);
    json_t *parent = doc;
    char key[128];
    const char *s = path;
    for (;;) {
        size_t n = strcspn(s, ".");
        snprintf(key, sizeof key, "%.*s", (int)n, s);
        if (!s[n]) break;
        parent = json_object_get(parent, key);
        s += n + 1;
    }
    if (value) json_object_set_new(parent, key, value);
    else json_object_del(parent, key);
    int rc = parse_json(doc, h, p, err);
    json_decref(doc);
    return rc;
}

static void expect_error(const char *file, const struct payload_hints *h, const char *path, json_t *value,
                         const char *want)
{
    struct payload p;
    struct buf err;
    buf_init(&err);
    int rc = mutate(file, h, path, value, &p, &err);
    if (rc != -EINVAL || !strstr(buf_cstr(&err), want))
        fail_msg("%s with %s changed: rc %d, \"%s\" lacks \"%s\"", file, path, rc, buf_cstr(&err), want);
    payload_free(&p);
    buf_free(&err);
}

static void expect_ignored(const char *file, const struct payload_hints *h, const char *path, json_t *value,
                           const char *want)
{
    struct payload p;
    struct buf err;
    buf_init(&err);
    if (mutate(file, h, path, value, &p, &err) != 0) fail_msg("%s: %s", file, buf_cstr(&err));
    assert_true(p.n >= 1);
    if (!p.events[0].ignored || !strstr(p.events[0].ignored, want))
        fail_msg("%s with %s changed: ignored=%s, want %s", file, path,
                 p.events[0].ignored ? p.events[0].ignored : "(null)", want);
    payload_free(&p);
    buf_free(&err);
}

static void test_required_fields(void **state)
{
    (void)state;
    struct payload_hints none = {0}, gh = {.github_event = "registry_package"}, gt = {.gitea_event = "package"};
    struct payload_hints ghp = {.github_event = "package"};
    expect_error("dockerhub-push.json", &none, "repository.repo_name", NULL, "repository.repo_name missing");
    expect_error("dockerhub-push.json", &none, "repository.repo_name", json_integer(5), "repository.repo_name missing");
    expect_error("dockerhub-push.json", &none, "push_data.tag", json_array(), "push_data.tag must be a string");
    expect_error("harbor-push.json", &none, "event_data.repository", json_null(), "repo_full_name missing");
    expect_error("harbor-push.json", &none, "event_data.resources", json_string("x"), "resources missing");
    expect_error("harbor-cloudevents-push.json", &none, "data.resources", NULL, "data.resources missing");
    expect_error("github-registry-package.json", &gh, "registry_package.name", NULL, "package: name missing");
    expect_error("github-registry-package.json", &gh, "action", json_true(), "action missing");
    expect_error("github-registry-package.json", &gh, "registry_package", json_string("x"), "registry_package");
    /* namespace is optional (owner.login stands in), but one of them is not. */
    expect_error("github-package.json", &ghp, "package.owner", NULL, "namespace (or owner.login) missing");
    expect_error("gitea-package.json", &gt, "package.owner", NULL, "owner.login missing");
    expect_error("gitea-package.json", &gt, "package.version", json_integer(3), "version missing");
    expect_error("quay-push.json", &none, "repository", NULL, "repository missing");
    expect_error("quay-push.json", &none, "updated_tags", json_pack("[s,i]", "a", 1), "updated_tags[1]");
    expect_error("acr-push.json", &none, "target.repository", NULL, "target.repository missing");
    expect_error("generic-image.json", &none, "image", json_string(":tag"), "image is not an image reference");
    expect_error("generic-image.json", &none, "id", json_integer(1), "must be strings");
}

static void test_ignored_variants(void **state)
{
    (void)state;
    struct payload_hints none = {0}, gh = {.github_event = "package"}, gt = {.gitea_event = "package"};
    expect_ignored("harbor-push.json", &none, "type", json_string("DELETE_ARTIFACT"), "not a push");
    expect_ignored("harbor-cloudevents-push.json", &none, "type", json_string("harbor.scan.completed"), "not a push");
    expect_ignored("github-package.json", &gh, "action", json_string("updated"), "not published");
    expect_ignored("github-package.json", &gh, "package.package_type", json_string("npm"), "not container");
    expect_ignored("github-package.json", &gh, "package.package_version.container_metadata.tag.name",
                   json_string(""), "without a tag");
    expect_ignored("gitea-package.json", &gt, "action", json_string("deleted"), "not created");
    expect_ignored("gitea-package.json", &gt, "package.type", json_string("npm"), "not container");
    expect_ignored("gitea-package.json", &gt, "package.version",
                   json_string("sha256:20a5b08e26ee5b7292cac7a88a810f8225f0b3e031ed4262c8d58f2edeabec94"),
                   "without a tag");
    expect_ignored("dockerhub-push.json", &none, "push_data.tag", NULL, "without a tag");
    expect_ignored("github-package.json", &gh, "package.package_version", NULL, "without a tag");
    expect_ignored("acr-push.json", &none, "action", json_string("delete"), "not push");
}

static void test_detection(void **state)
{
    (void)state;
    struct payload p;
    struct buf err;
    buf_init(&err);
    /* An event header names a format the body does not fit: no guessing. */
    struct payload_hints push = {.github_event = "push"};
    assert_int_equal(payload_parse("{\"ref\":\"main\"}", 14, &push, &p, &err), -EINVAL);
    assert_non_null(strstr(buf_cstr(&err), "unknown payload format: expected one of:"));
    assert_non_null(strstr(buf_cstr(&err), "Harbor"));
    payload_free(&p);
    buf_free(&err);
}

static void test_hostile_values(void **state)
{
    (void)state;
    /* Huge strings, unicode, NUL-free junk, deep nesting: parsed as data or
     * refused cleanly, never a crash. */
    json_t *doc = json_object();
    size_t big = 200000;
    char *huge = malloc(big + 1);
    memset(huge, 'a', big);
    huge[big] = '\0';
    json_object_set_new(doc, "repository", json_string(huge));
    json_object_set_new(doc, "tag", json_string("\xe2\x9c\x93\"<script>"));
    struct payload p;
    struct buf err;
    buf_init(&err);
    struct payload_hints none = {0};
    assert_int_equal(parse_json(doc, &none, &p, &err), 0);
    assert_int_equal(strlen(p.events[0].repository), big);
    assert_string_equal(p.events[0].tag, "\xe2\x9c\x93\"<script>");
    payload_free(&p);
    json_decref(doc);
    free(huge);
    /* Nested junk where objects are expected. */
    const char *junk[] = {
        "{\"push_data\":{\"tag\":{\"a\":[1,2,{}]}},\"repository\":{\"repo_name\":[\"x\"]}}",
        "{\"type\":\"PUSH_ARTIFACT\",\"event_data\":{\"resources\":[[],{}],\"repository\":{\"repo_full_name\":\"a/b\"}}}",
        "{\"action\":\"published\",\"registry_package\":{\"name\":\"n\",\"namespace\":\"o\",\"package_version\":[]}}",
        "{\"updated_tags\":{},\"repository\":\"a\"}",
        "{\"image\":{\"nested\":true}}",
    };
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        buf_reset(&err);
        int rc = payload_parse(junk[i], strlen(junk[i]), &none, &p, &err);
        if (rc != 0) assert_true(err.len > 0);
        payload_free(&p);
    }
    buf_free(&err);
}

/* Parses a generic body that must give one event; checks its registry and
 * repository (NULL registry: none). */
static void generic_event(const char *body, const char *registry, const char *repository,
                          struct repo_ref *ref)
{
    struct payload p;
    struct buf err;
    buf_init(&err);
    struct payload_hints none = {0};
    if (payload_parse(body, strlen(body), &none, &p, &err) != 0) fail_msg("%s: %s", body, buf_cstr(&err));
    assert_string_equal(p.format, "generic");
    assert_int_equal(p.n, 1);
    const struct push_event *ev = &p.events[0];
    if (registry ? !ev->registry || strcmp(ev->registry, registry) != 0 : ev->registry != NULL)
        fail_msg("%s: registry \"%s\", want \"%s\"", body, ev->registry ? ev->registry : "(null)",
                 registry ? registry : "(null)");
    assert_string_equal(ev->repository, repository);
    assert_int_equal(repo_ref_from_event(ev->registry, ev->repository, ref), 0);
    payload_free(&p);
    buf_free(&err);
}

static bool label_matches(const char *label, const struct repo_ref *ev)
{
    struct repo_ref r;
    assert_int_equal(repo_ref_parse(label, &r), 0);
    return repo_ref_match(&r, ev);
}

/* {"image": ...} is an image reference, read by Docker's rules: a first
 * component without '.' or ':' that is not "localhost" is not a host, and
 * such a name is on Docker Hub. {"repository": ...} names no registry. */
static void test_generic_image_is_a_docker_reference(void **state)
{
    (void)state;
    struct repo_ref ev;
    generic_event("{\"image\":\"redis:7\"}", "docker.io", "redis", &ev);
    assert_true(label_matches("docker.io/library/redis", &ev));
    assert_true(label_matches("index.docker.io/redis", &ev));
    assert_true(label_matches("redis", &ev));
    assert_true(label_matches("library/redis", &ev));
    assert_false(label_matches("ghcr.io/redis", &ev));

    generic_event("{\"image\":\"team/app:v1\"}", "docker.io", "team/app", &ev);
    assert_true(label_matches("docker.io/team/app", &ev));
    assert_true(label_matches("team/app", &ev));
    assert_false(label_matches("registry.local:5000/team/app", &ev));

    generic_event("{\"image\":\"localhost/app:1\"}", "localhost", "app", &ev);
    assert_true(label_matches("localhost/app", &ev));
    assert_false(label_matches("docker.io/app", &ev));
    generic_event("{\"image\":\"reg.local/team/app:1\"}", "reg.local", "team/app", &ev);
    generic_event("{\"image\":\"reg:5000/app\"}", "reg:5000", "app", &ev);
    /* An explicit registry says where the push was; it still wins. */
    generic_event("{\"image\":\"team/app:1\",\"registry\":\"reg.local:5000\"}", "reg.local:5000", "team/app", &ev);

    /* A repository without a registry stays host-less: any registry's label
     * without a host, and no host-qualified label. */
    generic_event("{\"repository\":\"redis\",\"tag\":\"7\"}", NULL, "redis", &ev);
    assert_true(label_matches("redis", &ev));
    assert_false(label_matches("docker.io/library/redis", &ev));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_format), cmocka_unit_test(test_required_fields),
        cmocka_unit_test(test_ignored_variants), cmocka_unit_test(test_detection),
        cmocka_unit_test(test_hostile_values), cmocka_unit_test(test_generic_image_is_a_docker_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
