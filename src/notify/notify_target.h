/* notify_target.h - notification targets: where a message goes and how.
 *
 * A target comes from the environment (NOTIFY_<NAME>_URL and friends,
 * notify_config_parse) or from a URL written in a route's notify label
 * (notify_target_from_url). Its URL and token are secrets: everything that
 * shows a target shows `display` ("discord discord.com #3f9a1c0e": kind,
 * host, fingerprint of the URL) and nothing else. Pure. */
#ifndef WR_NOTIFY_TARGET_H
#define WR_NOTIFY_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include "template.h"

enum notify_kind {
    NK_DISCORD, NK_SLACK, NK_TEAMS, NK_NTFY, NK_GOTIFY, NK_TELEGRAM, NK_PUSHOVER, NK_MATRIX,
    NK_GITHUB, NK_GENERIC,
    NK_COUNT
};
const char *notify_kind_name(enum notify_kind k);

/* What a push came to; a bit each, for a target's _ON. */
enum notify_outcome_kind {
    NO_PUSH, NO_DELIVERED, NO_DEPLOYED, NO_UNCONFIRMED, NO_FAILED,
    NO_COUNT
};
#define NOTIFY_ON(o) (1u << (o))
/* A target without _ON: what a route that redeploys tells, and what a
 * notify-only route tells. */
#define NOTIFY_ON_REDEPLOY (NOTIFY_ON(NO_DEPLOYED) | NOTIFY_ON(NO_UNCONFIRMED) | NOTIFY_ON(NO_FAILED))
#define NOTIFY_ON_NOTIFY_ONLY NOTIFY_ON(NO_PUSH)
const char *notify_outcome_name(enum notify_outcome_kind o);

struct notify_target {
    char *name;            /* lower case ("chat" for NOTIFY_CHAT_*); NULL for a label URL */
    enum notify_kind kind;
    char *url;             /* secret: the http(s) URL requests go to (gotify: without /message;
                            * matrix: the homeserver; telegram: up to and without /sendMessage) */
    char *basic;           /* "user:pass" from the URL's user information, or NULL */
    char *token;           /* secret: the kind's credential, or NULL */
    char *param;           /* telegram: chat ids, matrix: room ids (comma-separated);
                            * pushover: the user key */
    unsigned on;           /* NOTIFY_ON bits; 0: the default of the route */
    struct template *text, *title;   /* NULL: the default per outcome */
    struct template *body;           /* generic: the whole JSON body; NULL: the placeholders */
    char *headers;         /* generic: extra "Name: value\r\n" lines, or NULL */
    char *display;         /* "kind host #fingerprint": the one way a target is shown */
};

/* Parses a target URL: each service's own URL, the shoutrrr forms, or
 * "<kind>+http(s)://". kind < 0: recognised from the URL; else the URL's
 * request goes to the given kind (an http(s) URL is then used as it is).
 * Returns 0, or -EINVAL with a reason in err that never repeats the URL. */
int notify_target_from_url(const char *url, int kind, struct notify_target *t, char *err, size_t errlen);
void notify_target_free(struct notify_target *t);
/* kind name -> enum, -1 if unknown (case-insensitive). */
int notify_kind_parse(const char *s);
/* "push,failed" -> NOTIFY_ON bits; -1 when a word is unknown or none given. */
int notify_on_parse(const char *s);

/* Appends "kind host #fingerprint" for a URL as written (for a label URL
 * before it is parsed, or one that does not parse: "notify *** #fp"). */
void notify_display(struct buf *out, const char *kind, const char *url);

/* All targets defined in the environment. */
struct notify_config {
    struct notify_target *targets;
    size_t n;
};

/* Reads every NOTIFY_<NAME>_* variable of envp ("NAME=value" strings,
 * NULL-terminated). _URL_FILE and _TOKEN_FILE are read here (a Docker
 * secret), with a trailing newline removed. Returns 0, or -EINVAL with one
 * line in err naming the variable and what it accepts (never its value
 * when that is a URL or a token). */
int notify_config_parse(char *const *envp, struct notify_config *c, char *err, size_t errlen);
void notify_config_free(struct notify_config *c);
/* The target named name (case-insensitive), or NULL. */
const struct notify_target *notify_config_find(const struct notify_config *c, const char *name, size_t len);

#endif
