/* Notifications, the pure half: target URLs (each service's own, the
 * shoutrrr forms, <kind>+http(s)://), NOTIFY_* variables, templates and
 * the request of every kind. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "notify_request.h"
#include "notify_target.h"
#include "template.h"

static struct notify_target target(const char *url, int kind)
{
    struct notify_target t;
    char err[256] = "";
    if (notify_target_from_url(url, kind, &t, err, sizeof err) != 0) fail_msg("refused %s: %s", url, err);
    return t;
}

static void refused(const char *url, int kind, const char *why)
{
    struct notify_target t;
    char err[256] = "";
    assert_int_equal(notify_target_from_url(url, kind, &t, err, sizeof err), -EINVAL);
    if (!strstr(err, why)) fail_msg("%s: \"%s\" lacks \"%s\"", url, err, why);
}

static struct notify_message sample(enum notify_outcome_kind o)
{
    struct notify_message m = {.outcome = o};
    m.vars.v[TV_REPOSITORY] = "team/app";
    m.vars.v[TV_TAG] = "v1";
    m.vars.v[TV_DIGEST] = "sha256:abc";
    m.vars.v[TV_REGISTRY] = "reg.local:5000";
    m.vars.v[TV_IMAGE] = "reg.local:5000/team/app:v1";
    m.vars.v[TV_EVENT_ID] = "ev-1";
    m.vars.v[TV_SOURCE] = "distribution";
    m.vars.v[TV_OUTCOME] = notify_outcome_name(o);
    m.vars.v[TV_OBJECTS] = "web-1, web-2";
    return m;
}

static void test_forms(void **state)
{
    (void)state;
    struct { const char *url; int kind; const char *to; const char *display_host; } cases[] = {
        {"https://discord.com/api/webhooks/123/tok", NK_DISCORD, "https://discord.com/api/webhooks/123/tok", "discord.com"},
        {"https://discordapp.com/api/webhooks/123/tok", NK_DISCORD, "https://discordapp.com/api/webhooks/123/tok", NULL},
        {"discord://tok@123", NK_DISCORD, "https://discord.com/api/webhooks/123/tok", "discord.com"},
        {"https://hooks.slack.com/services/A/B/C", NK_SLACK, "https://hooks.slack.com/services/A/B/C", NULL},
        {"slack://hook:A-B-C@webhook", NK_SLACK, "https://hooks.slack.com/services/A/B/C", NULL},
        {"https://prod-1.westeurope.logic.azure.com/workflows/x?sig=s", NK_TEAMS,
         "https://prod-1.westeurope.logic.azure.com/workflows/x?sig=s", NULL},
        {"https://x.environment.api.powerplatform.com/p", NK_TEAMS, "https://x.environment.api.powerplatform.com/p", NULL},
        {"https://ntfy.sh/mytopic", NK_NTFY, "https://ntfy.sh/mytopic", NULL},
        {"ntfy://u:p@ntfy.example:8080/alerts", NK_NTFY, "https://ntfy.example:8080/alerts", "ntfy.example:8080"},
        {"gotify://gotify.example/sub/AppTok", NK_GOTIFY, "https://gotify.example/sub", NULL},
        {"gotify://gotify.example:8080/AppTok?disabletls=yes", NK_GOTIFY, "http://gotify.example:8080", NULL},
        {"telegram://123:ABC@telegram?chats=11,-22", NK_TELEGRAM, "https://api.telegram.org/bot123:ABC", NULL},
        {"pushover://shoutrrr:apptok@userkey", NK_PUSHOVER, "https://api.pushover.net/1/messages.json", NULL},
        {"matrix://:acc@matrix.example:8448/?rooms=%21r:example", NK_MATRIX, "https://matrix.example:8448", NULL},
        {"https://api.github.com/repos/o/r/dispatches", NK_GITHUB, "https://api.github.com/repos/o/r/dispatches", NULL},
        {"github://ghp_x@o/r", NK_GITHUB, "https://api.github.com/repos/o/r/dispatches", "api.github.com"},
        {"https://ci.example/hook?x=1", NK_GENERIC, "https://ci.example/hook?x=1", NULL},
        {"generic+https://ci.example/hook", NK_GENERIC, "https://ci.example/hook", NULL},
        {"slack+https://chat.example/hooks/x", NK_SLACK, "https://chat.example/hooks/x", NULL},
        {"gotify+http://127.0.0.1:8080", NK_GOTIFY, "http://127.0.0.1:8080", "127.0.0.1:8080"},
        {"github+http://ghe.local/repos/o/r/dispatches", NK_GITHUB, "http://ghe.local/repos/o/r/dispatches", NULL},
        {"telegram+http://127.0.0.1:9/botX/sendMessage?chats=5", NK_TELEGRAM, "http://127.0.0.1:9/botX/sendMessage", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct notify_target t = target(cases[i].url, -1);
        if ((int)t.kind != cases[i].kind || strcmp(t.url, cases[i].to) != 0)
            fail_msg("%s -> %s %s", cases[i].url, notify_kind_name(t.kind), t.url);
        /* Shown as kind, host, fingerprint: no part of the path or token. */
        char want[128];
        snprintf(want, sizeof want, "%s %s #", notify_kind_name(t.kind),
                 cases[i].display_host ? cases[i].display_host : "");
        if (cases[i].display_host && strncmp(t.display, want, strlen(want)) != 0)
            fail_msg("%s displayed as %s", cases[i].url, t.display);
        assert_int_equal(strlen(strchr(t.display, '#')), 9);
        assert_null(strstr(t.display, "tok"));
        assert_null(strstr(t.display, "ABC"));
        notify_target_free(&t);
    }
    /* The shoutrrr parts land where the requests need them. */
    struct notify_target t = target("telegram://123:ABC@telegram?chats=11,-22", -1);
    assert_string_equal(t.token, "123:ABC");
    assert_string_equal(t.param, "11,-22");
    notify_target_free(&t);
    t = target("matrix://:acc@matrix.example:8448/?rooms=%21r:example", -1);
    assert_string_equal(t.token, "acc");
    assert_string_equal(t.param, "!r:example");
    notify_target_free(&t);
    t = target("ntfy://u:p%40ss@ntfy.example/alerts", -1);
    assert_string_equal(t.basic, "u:p@ss");
    notify_target_free(&t);
    t = target("https://user:pw@ci.example/hook", -1);   /* user information: Basic auth */
    assert_string_equal(t.basic, "user:pw");
    assert_string_equal(t.url, "https://ci.example/hook");
    notify_target_free(&t);
    t = target("https://chat.example/hooks/x", NK_SLACK);   /* _KIND on a plain URL */
    assert_int_equal(t.kind, NK_SLACK);
    notify_target_free(&t);
}

static void test_refused(void **state)
{
    (void)state;
    refused("discord://123", -1, "discord://<token>@");
    refused("teams://group@tenant/alt", -1, "retired");
    refused("slack://xoxb:tok@channel", -1, "webhook");
    refused("nope://x", -1, "unknown URL scheme");
    refused("foo+https://x", -1, "unknown kind");
    refused("slack+ftp://x", -1, "http://");
    refused("https://exa mple/", -1, "blank");
    refused("not a url", -1, "blank");
    refused("discord://tok@123", NK_SLACK, "differs");
    refused("github://tok@o", -1, "github://<token>@<owner>/<repo>");
    refused("http://", -1, "not a usable URL");
}

static void check_config(const char *const *env, const char *want_err)
{
    struct notify_config c;
    char err[512] = "";
    int rc = notify_config_parse((char *const *)env, &c, err, sizeof err);
    if (want_err) {
        assert_int_equal(rc, -EINVAL);
        if (!strstr(err, want_err)) fail_msg("error \"%s\" lacks \"%s\"", err, want_err);
        assert_null(strstr(err, "s3cret"));   /* never the secret */
    } else {
        if (rc != 0) fail_msg("refused: %s", err);
        notify_config_free(&c);
    }
}

static void test_config(void **state)
{
    (void)state;
    const char *ok[] = {"PATH=/bin", "NOTIFY_CHAT_URL=discord://s3cret@1", "NOTIFY_CHAT_ON=push, failed",
                        "NOTIFY_GH_URL=https://api.github.com/repos/o/r/dispatches", "NOTIFY_GH_TOKEN=s3cret",
                        "NOTIFY_CI_URL=https://ci/x", "NOTIFY_CI_TEMPLATE={\"ref\":\"main\",\"variables\":{\"TAG\":\"{tag}\"}}",
                        "NOTIFY_CI_HEADERS=X-A: 1\nX-B:two\n", NULL};
    struct notify_config c;
    char err[256];
    assert_int_equal(notify_config_parse((char *const *)ok, &c, err, sizeof err), 0);
    assert_int_equal(c.n, 3);
    const struct notify_target *chat = notify_config_find(&c, "CHAT", 4);
    assert_non_null(chat);
    assert_string_equal(chat->name, "chat");
    assert_int_equal(chat->on, NOTIFY_ON(NO_PUSH) | NOTIFY_ON(NO_FAILED));
    const struct notify_target *ci = notify_config_find(&c, "ci", 2);
    assert_string_equal(ci->headers, "X-A: 1\r\nX-B: two\r\n");
    assert_non_null(ci->body);
    assert_string_equal(notify_config_find(&c, "gh", 2)->token, "s3cret");
    assert_null(notify_config_find(&c, "nope", 4));
    notify_config_free(&c);

    check_config((const char *[]){"NOTIFY_X_KIND=slack", NULL}, "NOTIFY_X_URL: is missing");
    check_config((const char *[]){"NOTIFY_X_URL=https://h/s3cret", "NOTIFY_X_KIND=irc", NULL}, "NOTIFY_X_KIND");
    check_config((const char *[]){"NOTIFY_X_URL=https://h/s3cret", "NOTIFY_X_ON=push,later", NULL}, "NOTIFY_X_ON");
    check_config((const char *[]){"NOTIFY_X_URL=https://h/s3cret", "NOTIFY_X_TEMPLATE=hi {nope}", NULL},
                 "NOTIFY_X_TEMPLATE: unknown placeholder {nope}");
    check_config((const char *[]){"NOTIFY_X_URL=https://h/s3cret", "NOTIFY_X_TITLE={Image}", NULL}, NULL);
    check_config((const char *[]){"NOTIFY_X_URL=https://h/s3cret", "NOTIFY_X_TITLE={imagex}", NULL}, "NOTIFY_X_TITLE");
    check_config((const char *[]){"NOTIFY_X_URL=discord://s3cret", NULL}, "NOTIFY_X_URL: discord://");
    check_config((const char *[]){"NOTIFY_X_URL=https://api.github.com/repos/o/r/dispatches", NULL},
                 "NOTIFY_X_URL: a github target needs a token");
    check_config((const char *[]){"NOTIFY_X_URL=telegram://s3cret@telegram", NULL}, "chats");
    check_config((const char *[]){"NOTIFY_X_URL=https://h/s3cret", "NOTIFY_X_HEADERS=no colon", NULL}, "NOTIFY_X_HEADERS");
    check_config((const char *[]){"NOTIFY_X_URL=discord://s3cret@1", "NOTIFY_X_HEADERS=A: b", NULL}, "only for generic");
    check_config((const char *[]){"NOTIFY_X_URL_FILE=/nonexistent/s3cret", NULL}, "NOTIFY_X_URL_FILE: cannot read");
    check_config((const char *[]){"NOTIFY_x_URL=https://h/", NULL}, "NOTIFY_x_URL: not a notification setting");
    check_config((const char *[]){"NOTIFY_FOO=1", NULL}, "NOTIFY_FOO: not a notification setting");
    check_config((const char *[]){"NOTIFY_X_URL=https://h/s3cret", "NOTIFY_X_TOKEN=", NULL}, "NOTIFY_X_TOKEN: set but empty");
    check_config((const char *[]){"NOTIFY_X_URL=https://h/s3cret/{dgest}", NULL}, "NOTIFY_X_URL: unknown placeholder {dgest}");

    /* _URL_FILE: a Docker secret, trailing newline dropped. */
    char path[] = "/tmp/wr-notify-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "discord://t@1\n", 14), 14);
    close(fd);
    char var[64];
    snprintf(var, sizeof var, "NOTIFY_F_URL_FILE=%s", path);
    const char *env[] = {var, NULL};
    assert_int_equal(notify_config_parse((char *const *)env, &c, err, sizeof err), 0);
    assert_string_equal(c.targets[0].url, "https://discord.com/api/webhooks/1/t");
    notify_config_free(&c);
    unlink(path);
}

static void render(const char *src, enum tpl_escape esc, const char *want)
{
    char err[256] = "";
    struct template *t = template_compile(src, err, sizeof err);
    if (!t) fail_msg("refused %s: %s", src, err);
    struct notify_message m = sample(NO_PUSH);
    m.vars.v[TV_ERROR] = "a \"quoted\"\n&x=1/é";
    struct buf b;
    buf_init(&b);
    template_render(t, &m.vars, esc, &b);
    if (strcmp(buf_cstr(&b), want) != 0) fail_msg("%s -> %s, want %s", src, buf_cstr(&b), want);
    buf_free(&b);
    template_free(t);
}

static void test_template(void **state)
{
    (void)state;
    render("{image} {tag}", TPL_PLAIN, "reg.local:5000/team/app:v1 v1");
    render("{\"e\":\"{error}\"}", TPL_JSON, "{\"e\":\"a \\\"quoted\\\"\\n&x=1/é\"}");
    render("?e={error}&t={tag}", TPL_URL, "?e=a%20%22quoted%22%0A%26x%3D1%2F%C3%A9&t=v1");
    render("{} {{tag}} {TAG} { tag} {tag", TPL_PLAIN, "{} {v1} {TAG} { tag} {tag");
    render("{status}{attempts}", TPL_PLAIN, "");   /* unset values are empty */
    render("", TPL_PLAIN, "");
    /* One pass: a value that looks like a placeholder stays as it is. */
    struct notify_message m = sample(NO_PUSH);
    m.vars.v[TV_TAG] = "{digest}";
    char err[128];
    struct template *t = template_compile("{tag}", err, sizeof err);
    struct buf b;
    buf_init(&b);
    template_render(t, &m.vars, TPL_PLAIN, &b);
    assert_string_equal(buf_cstr(&b), "{digest}");
    buf_free(&b);
    template_free(t);
    /* Hostile input: unknown names refused with the name, long ones cut. */
    assert_null(template_compile("x {repo}", err, sizeof err));
    assert_non_null(strstr(err, "{repo}"));
    char longname[300];
    memset(longname, 'a', sizeof longname);
    longname[0] = '{';
    longname[298] = '}';
    longname[299] = '\0';
    assert_null(template_compile(longname, err, sizeof err));
    assert_true(strlen(err) < sizeof err);
    struct template *odd = template_compile("\xff\xfe{\x01}\"\\", err, sizeof err);   /* all text */
    assert_non_null(odd);
    template_free(odd);
}

static void test_truncate(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "héllo wörld");   /* 11 characters */
    tpl_truncate(&b, 0, 11);
    assert_string_equal(buf_cstr(&b), "héllo wörld");
    tpl_truncate(&b, 0, 8);
    assert_string_equal(buf_cstr(&b), "héllo w…");
    buf_reset(&b);
    buf_puts(&b, "ééé");
    tpl_truncate(&b, 0, 2);
    assert_string_equal(buf_cstr(&b), "é…");
    buf_free(&b);
}

static size_t count_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* Builds m for url; exactly one request expected unless nreq says more. */
static size_t build(const char *url, const struct notify_message *m, struct notify_request *r, size_t max)
{
    struct notify_target t = target(url, -1);
    size_t n = notify_build(&t, m, r, max);
    notify_target_free(&t);
    return n;
}

static void has(const char *hay, const char *needle)
{
    if (!strstr(hay, needle)) fail_msg("\"%s\" lacks \"%s\"", hay, needle);
}

static void test_requests(void **state)
{
    (void)state;
    struct notify_message m = sample(NO_DEPLOYED);
    struct notify_request r[NOTIFY_MAX_REQUESTS];

    assert_int_equal(build("discord://tok@123", &m, r, 8), 1);
    assert_string_equal(r[0].method, "POST");
    assert_string_equal(r[0].url, "https://discord.com/api/webhooks/123/tok");
    has(r[0].headers, "Content-Type: application/json\r\n");
    has(r[0].headers, "User-Agent: webhook-router/");
    assert_string_equal(r[0].body, "{\"content\":\"**webhook-router: deployed team/app:v1**\\nweb-1, web-2 now run "
                                   "reg.local:5000/team/app:v1\"}");
    notify_request_free(&r[0]);

    assert_int_equal(build("slack://hook:A-B-C@webhook", &m, r, 8), 1);
    has(r[0].body, "{\"text\":\"*webhook-router: deployed team/app:v1*\\n");
    notify_request_free(&r[0]);

    assert_int_equal(build("teams+http://127.0.0.1:1/wf", &m, r, 8), 1);
    has(r[0].body, "{\"type\":\"message\",\"attachments\":[{\"contentType\":\"application/vnd.microsoft.card.adaptive\"");
    has(r[0].body, "\"type\":\"AdaptiveCard\"");
    notify_request_free(&r[0]);

    assert_int_equal(build("ntfy://ntfy.example/alerts", &m, r, 8), 1);
    assert_string_equal(r[0].url, "https://ntfy.example/alerts");
    has(r[0].headers, "Title: webhook-router: deployed team/app:v1\r\n");
    has(r[0].headers, "Content-Type: text/plain");
    assert_string_equal(r[0].body, "web-1, web-2 now run reg.local:5000/team/app:v1");
    notify_request_free(&r[0]);

    assert_int_equal(build("ntfy://u:p@ntfy.example/alerts", &m, r, 8), 1);
    has(r[0].headers, "Authorization: Basic dTpw\r\n");
    notify_request_free(&r[0]);

    assert_int_equal(build("gotify://g.example/apptok", &m, r, 8), 1);
    assert_string_equal(r[0].url, "https://g.example/message");
    has(r[0].headers, "X-Gotify-Key: apptok\r\n");
    has(r[0].body, "\"priority\":5}");
    notify_request_free(&r[0]);

    assert_int_equal(build("telegram://1:T@telegram?chats=11,@chan", &m, r, 8), 2);
    assert_string_equal(r[0].url, "https://api.telegram.org/bot1:T/sendMessage");
    has(r[0].body, "{\"chat_id\":\"11\",\"text\":\"webhook-router: deployed");
    has(r[1].body, "{\"chat_id\":\"@chan\"");
    notify_request_free(&r[0]);
    notify_request_free(&r[1]);

    assert_int_equal(build("pushover://shoutrrr:app@user", &m, r, 8), 1);
    assert_string_equal(r[0].url, "https://api.pushover.net/1/messages.json");
    has(r[0].body, "{\"token\":\"app\",\"user\":\"user\",\"title\":");
    notify_request_free(&r[0]);

    /* Matrix: PUT, the transaction id the same for the same message. */
    assert_int_equal(build("matrix://:acc@m.example/?rooms=!a:x,!b:x", &m, r, 8), 2);
    assert_string_equal(r[0].method, "PUT");
    has(r[0].url, "https://m.example/_matrix/client/v3/rooms/%21a%3Ax/send/m.room.message/wr");
    has(r[0].headers, "Authorization: Bearer acc\r\n");
    has(r[0].body, "\"msgtype\":\"m.text\"");
    struct notify_request again[2];
    assert_int_equal(build("matrix://:acc@m.example/?rooms=!a:x,!b:x", &m, again, 8), 2);
    assert_string_equal(r[0].url, again[0].url);
    assert_string_not_equal(r[0].url, r[1].url);
    for (int i = 0; i < 2; i++) {
        notify_request_free(&r[i]);
        notify_request_free(&again[i]);
    }

    assert_int_equal(build("github://ghp@o/r", &m, r, 8), 1);
    has(r[0].headers, "Accept: application/vnd.github+json\r\n");
    has(r[0].headers, "X-GitHub-Api-Version: 2022-11-28\r\n");
    has(r[0].headers, "Authorization: Bearer ghp\r\n");
    assert_string_equal(r[0].body, "{\"event_type\":\"image_published\",\"client_payload\":{\"repository\":\"team/app\","
                                   "\"image\":\"reg.local:5000/team/app:v1\",\"tag\":\"v1\",\"digest\":\"sha256:abc\","
                                   "\"registry\":\"reg.local:5000\",\"outcome\":\"deployed\",\"event_id\":\"ev-1\"}}");
    notify_request_free(&r[0]);

    assert_int_equal(build("https://u:p@ci.example/x", &m, r, 8), 1);
    has(r[0].body, "{\"repository\":\"team/app\",\"tag\":\"v1\"");
    has(r[0].headers, "Authorization: Basic dTpw\r\n");
    notify_request_free(&r[0]);

    /* Generic with a template: JSON escaping of the values; HEADERS. */
    const char *env[] = {"NOTIFY_CI_URL=https://ci.example/trigger",
                         "NOTIFY_CI_TEMPLATE={\"ref\":\"main\",\"variables\":{\"OBJ\":\"{objects}\"}}",
                         "NOTIFY_CI_HEADERS=PRIVATE-TOKEN: x", NULL};
    struct notify_config c;
    char err[256];
    assert_int_equal(notify_config_parse((char *const *)env, &c, err, sizeof err), 0);
    m.vars.v[TV_OBJECTS] = "we\"b\n";
    assert_int_equal(notify_build(&c.targets[0], &m, r, 8), 1);
    assert_string_equal(r[0].body, "{\"ref\":\"main\",\"variables\":{\"OBJ\":\"we\\\"b\\n\"}}");
    has(r[0].headers, "PRIVATE-TOKEN: x\r\n");
    notify_request_free(&r[0]);
    notify_config_free(&c);

    /* Placeholders in a target URL are percent-encoded. */
    assert_int_equal(build("https://harbor.example/api/artifacts/{digest}/scan?t={tag}", &m, r, 8), 1);
    assert_string_equal(r[0].url, "https://harbor.example/api/artifacts/sha256%3Aabc/scan?t=v1");
    notify_request_free(&r[0]);
}

static void test_limits(void **state)
{
    (void)state;
    /* A long object list: cut to the service's limit, with "…". */
    char *objs = malloc(9000);
    for (int i = 0; i < 8999; i++) objs[i] = i % 2 ? 'x' : "\xc3\xa9"[0];
    for (int i = 0; i + 1 < 8999; i += 2) objs[i + 1] = "\xc3\xa9"[1];
    objs[8998] = '\0';
    struct notify_message m = sample(NO_PUSH);
    m.vars.v[TV_OBJECTS] = objs;
    struct notify_request r[NOTIFY_MAX_REQUESTS];
    struct { const char *url; const char *key; size_t max; } lim[] = {
        {"discord://t@1", "\"content\":\"", DISCORD_MAX_CHARS},
        {"telegram://1:T@telegram?chats=1", "\"text\":\"", TELEGRAM_MAX_CHARS},
        {"pushover://shoutrrr:a@u", "\"message\":\"", PUSHOVER_MAX_CHARS},
    };
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(build(lim[i].url, &m, r, 8), 1);
        char *start = strstr(r[0].body, lim[i].key) + strlen(lim[i].key);
        char *end = strstr(start, "\"");
        *end = '\0';
        /* "\n" is one character in the message, two in the JSON. */
        size_t n = count_chars(start);
        for (char *p = start; (p = strstr(p, "\\n")); p += 2) n--;
        assert_int_equal(n, lim[i].max);
        has(start, "…");
        notify_request_free(&r[0]);
    }
    free(objs);
}

static void test_retry_after_body(void **state)
{
    (void)state;
    const char *b = "{\"message\": \"You are being rate limited.\", \"retry_after\": 1.25, \"global\": false}";
    assert_int_equal(notify_body_retry_after_ms(b, strlen(b)), 1250);
    assert_int_equal(notify_body_retry_after_ms("{\"retry_after\":3}", 17), 3000);
    assert_int_equal(notify_body_retry_after_ms("{\"retry_after\":9999}", 20), 60000);
    assert_int_equal(notify_body_retry_after_ms("{\"retry_after\":\"x\"}", 19), -1);
    assert_int_equal(notify_body_retry_after_ms("{\"retry_aft", 11), -1);
    assert_int_equal(notify_body_retry_after_ms(NULL, 0), -1);
}

static void test_on(void **state)
{
    (void)state;
    assert_int_equal(notify_on_parse("push"), NOTIFY_ON(NO_PUSH));
    assert_int_equal(notify_on_parse(" deployed , unconfirmed,FAILED "), NOTIFY_ON_REDEPLOY);
    assert_int_equal(notify_on_parse(""), -1);
    assert_int_equal(notify_on_parse("push,nope"), -1);
    struct buf b;
    buf_init(&b);
    notify_display(&b, NULL, "discord://s3cret@123");
    has(buf_cstr(&b), "notify discord.com #");
    buf_reset(&b);
    notify_display(&b, NULL, "garbage s3cret");
    assert_null(strstr(buf_cstr(&b), "s3cret"));
    has(buf_cstr(&b), "notify *** #");
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forms),        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_config),       cmocka_unit_test(test_template),
        cmocka_unit_test(test_truncate),     cmocka_unit_test(test_requests),
        cmocka_unit_test(test_limits),       cmocka_unit_test(test_retry_after_body),
        cmocka_unit_test(test_on),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
