/* config.c - environment variables and flags, validated up front.
 *
 * One table describes every setting: its variable, its flag (derived), its
 * default and how to read it. --help is printed from the same table, so it
 * can never disagree with what is parsed. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "buf.h"

enum kind { K_INT, K_STR, K_ADDR, K_DOCKER, K_PREFIX, K_LEVEL, K_FORMAT, K_SECRET, K_BOOL, K_FILE };

struct setting {
    const char *env;
    const char *def;        /* NULL: unset */
    enum kind kind;
    long long min, max;     /* K_INT */
    size_t offset;          /* into struct config */
    const char *help;
};

#define OFF(field) offsetof(struct config, field)

static const struct setting settings[] = {
    {"LISTEN_ADDR", "0.0.0.0", K_ADDR, 0, 0, OFF(listen_addr), "address to listen on (:: for dual stack)"},
    {"LISTEN_PORT", "3000", K_INT, 1, 65535, OFF(listen_port), "port to listen on"},
    {"DOCKER_HOST", "unix:///var/run/docker.sock", K_DOCKER, 0, 0, OFF(docker_host),
     "Docker engine(s): unix:///path or tcp://host:port, comma-separated"},
    {"LABEL_PREFIX", "webhook-router", K_PREFIX, 0, 0, OFF(label_prefix), "prefix of the routing labels"},
    {"CACHE_TTL_SECS", "60", K_INT, 0, 86400, OFF(cache_ttl_secs), "full resync interval in seconds, 0 = off"},
    {"LOG_LEVEL", "info", K_LEVEL, 0, 0, OFF(log_level), "trace, debug, info, warn or error"},
    {"LOG_FORMAT", "json", K_FORMAT, 0, 0, OFF(log_format), "json or text"},
    {"WEBHOOK_TOKEN", NULL, K_SECRET, 0, 0, OFF(webhook_token),
     "require Authorization: Bearer <token> or POST /webhook/<token>"},
    {"WEBHOOK_HMAC_SECRET", NULL, K_SECRET, 0, 0, OFF(webhook_hmac_secret),
     "require an HMAC-SHA256 body signature (X-Hub-Signature-256 / X-Gitea-Signature)"},
    {"FORWARD_TIMEOUT_SECS", "10", K_INT, 1, 300, OFF(forward_timeout_secs), "timeout of one forward attempt"},
    {"FORWARD_RETRIES", "3", K_INT, 0, 20, OFF(forward_retries), "retries after the first attempt"},
    {"FORWARD_CONCURRENCY", "64", K_INT, 1, 10000, OFF(forward_concurrency), "forwards in flight at most"},
    {"FORWARD_QUEUE_MAX", "10000", K_INT, 1, 10000000, OFF(forward_queue_max),
     "forwards waiting at most (then 503)"},
    {"DEBOUNCE_MS", "1000", K_INT, 0, 600000, OFF(debounce_ms), "pushes to one target within this window become one POST"},
    {"TLS_CA_FILE", NULL, K_FILE, 0, 0, OFF(tls_ca_file), "CA bundle for https targets (default: system bundle)"},
    {"TLS_INSECURE", "0", K_BOOL, 0, 0, OFF(tls_insecure), "1 to skip certificate verification"},
    {"MAX_BODY_BYTES", "1048576", K_INT, 1024, 1073741824, OFF(max_body_bytes), "largest webhook body accepted"},
};

#define NSETTINGS (sizeof settings / sizeof settings[0])

/* "LISTEN_PORT" -> "listen-port" */
static void flag_name(const char *env, char *out, size_t n)
{
    size_t i = 0;
    for (; env[i] && i + 1 < n; i++) out[i] = env[i] == '_' ? '-' : (char)tolower((unsigned char)env[i]);
    out[i] = '\0';
}

static bool parse_int(const char *v, long long min, long long max, long long *out)
{
    if (!*v || strlen(v) > 18) return false;
    long long n = 0;
    for (const char *p = v; *p; p++) {
        if (!isdigit((unsigned char)*p)) return false;
        n = n * 10 + (*p - '0');
    }
    if (n < min || n > max) return false;
    *out = n;
    return true;
}

static bool docker_entry_ok(const char *e, size_t n)
{
    if (n > 7 && strncmp(e, "unix://", 7) == 0) return e[7] == '/' && n > 8;
    if (n > 6 && strncmp(e, "tcp://", 6) == 0) {
        const char *hp = e + 6;
        size_t hl = n - 6;
        const char *colon = NULL;
        for (size_t i = 0; i < hl; i++)
            if (hp[i] == ':') colon = hp + i;
        if (!colon || colon == hp) return false;
        long long port;
        char num[8];
        size_t pl = (size_t)(hp + hl - colon - 1);
        if (pl == 0 || pl >= sizeof num) return false;
        memcpy(num, colon + 1, pl);
        num[pl] = '\0';
        for (const char *p = hp; p < colon; p++)
            if (!isalnum((unsigned char)*p) && !strchr(".-_[]:", *p)) return false;
        return parse_int(num, 1, 65535, &port);
    }
    return false;
}

static bool docker_host_ok(const char *v)
{
    bool any = false;
    while (*v) {
        while (*v == ' ') v++;
        size_t n = strcspn(v, ",");
        size_t t = n;
        while (t && v[t - 1] == ' ') t--;
        if (t) {
            if (!docker_entry_ok(v, t)) return false;
            any = true;
        }
        v += n + (v[n] == ',');
    }
    return any;
}

static bool prefix_ok(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n > 100 || v[0] == '.' || v[n - 1] == '.') return false;
    for (const char *p = v; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || strchr("._-", *p))) return false;
    return true;
}

static bool secret_ok(const char *v)
{
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) return false;
    return true;
}

static const char *what_accepts(const struct setting *s, char *tmp, size_t n)
{
    switch (s->kind) {
    case K_INT: snprintf(tmp, n, "an integer %lld-%lld", s->min, s->max); return tmp;
    case K_ADDR: return "an IPv4 or IPv6 address such as 0.0.0.0 or ::";
    case K_DOCKER: return "unix:///path/to/docker.sock or tcp://host:port, comma-separated";
    case K_PREFIX: return "lower-case letters, digits, '.', '_' or '-', not starting or ending with '.'";
    case K_LEVEL: return "one of trace, debug, info, warn, error";
    case K_FORMAT: return "json or text";
    case K_SECRET: return "printable characters without spaces";
    case K_BOOL: return "0, 1, true, false, yes or no";
    case K_FILE: return "a readable file";
    case K_STR: return "a value";
    }
    return "a value";
}

/* Stores value v for setting s. Returns false if v is invalid. */
static bool apply(struct config *c, const struct setting *s, const char *v)
{
    char *base = (char *)c;
    long long n;
    switch (s->kind) {
    case K_INT:
        if (!parse_int(v, s->min, s->max, &n)) return false;
        if (s->offset == OFF(max_body_bytes)) *(size_t *)(base + s->offset) = (size_t)n;
        else *(int *)(base + s->offset) = (int)n;
        return true;
    case K_ADDR: {
        unsigned char tmp[16];
        if (inet_pton(AF_INET, v, tmp) != 1 && inet_pton(AF_INET6, v, tmp) != 1) return false;
        break;
    }
    case K_DOCKER:
        if (!docker_host_ok(v)) return false;
        break;
    case K_PREFIX:
        if (!prefix_ok(v)) return false;
        break;
    case K_LEVEL: {
        static const char *const names[] = {"trace", "debug", "info", "warn", "error"};
        for (int i = 0; i < 5; i++)
            if (strcasecmp(v, names[i]) == 0) {
                c->log_level = (enum log_level)i;
                return true;
            }
        return false;
    }
    case K_FORMAT:
        if (strcasecmp(v, "json") == 0) c->log_format = LOG_FORMAT_JSON;
        else if (strcasecmp(v, "text") == 0) c->log_format = LOG_FORMAT_TEXT;
        else return false;
        return true;
    case K_BOOL:
        if (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes")) c->tls_insecure = true;
        else if (!strcmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no")) c->tls_insecure = false;
        else return false;
        return true;
    case K_SECRET:
        if (!secret_ok(v)) return false;
        if (!*v) v = NULL;   /* empty means unset */
        break;
    case K_FILE:
        if (!*v || access(v, R_OK) != 0) return false;
        break;
    case K_STR:
        break;
    }
    char **slot = (char **)(base + s->offset);
    free(*slot);
    *slot = v ? xstrdup(v) : NULL;
    return true;
}

static void set_error(const struct setting *s, const char *flag, const char *v, char *err, size_t errlen)
{
    char tmp[64];
    const char *acc = what_accepts(s, tmp, sizeof tmp);
    char name[96];
    if (flag) snprintf(name, sizeof name, "--%s (%s)", flag, s->env);
    else snprintf(name, sizeof name, "%s", s->env);
    if (s->kind == K_SECRET) snprintf(err, errlen, "%s: expected %s", name, acc);
    else if (s->kind == K_FILE) snprintf(err, errlen, "%s: expected %s, cannot read \"%.200s\"", name, acc, v);
    else snprintf(err, errlen, "%s: expected %s, got \"%.100s\"", name, acc, v);
}

void config_defaults(struct config *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < NSETTINGS; i++)
        if (settings[i].def) apply(c, &settings[i], settings[i].def);
}

void config_free(struct config *c)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        enum kind k = settings[i].kind;
        if (k == K_ADDR || k == K_DOCKER || k == K_PREFIX || k == K_SECRET || k == K_FILE || k == K_STR) {
            char **slot = (char **)((char *)c + settings[i].offset);
            free(*slot);
            *slot = NULL;
        }
    }
}

static void print_help(FILE *out)
{
    fprintf(out,
            "usage: webhook-router [--flag value ...]\n"
            "       webhook-router healthcheck   (GET /health on the local port; exit 0 or 1)\n"
            "       webhook-router --help | --version\n\n"
            "Receives registry push webhooks and POSTs to the webhook URLs that Docker\n"
            "labels ask for. Every setting is an environment variable or a flag:\n\n");
    for (size_t i = 0; i < NSETTINGS; i++) {
        char flag[64];
        flag_name(settings[i].env, flag, sizeof flag);
        fprintf(out, "  --%-22s %-22s %s (default: %s)\n", flag, settings[i].env, settings[i].help,
                settings[i].def ? settings[i].def : "unset");
    }
}

static const struct setting *find_env(const char *name, size_t n)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (strlen(settings[i].env) == n && strncmp(settings[i].env, name, n) == 0) return &settings[i];
    return NULL;
}

static const struct setting *find_flag(const char *name, size_t n)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        char flag[64];
        flag_name(settings[i].env, flag, sizeof flag);
        if (strlen(flag) == n && strncmp(flag, name, n) == 0) return &settings[i];
    }
    return NULL;
}

enum config_action config_parse(struct config *c, int argc, char **argv, char *const *envp,
                                FILE *out, char *err, size_t errlen)
{
    for (char *const *e = envp; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq) continue;
        const struct setting *s = find_env(*e, (size_t)(eq - *e));
        if (s && !apply(c, s, eq + 1)) {
            set_error(s, NULL, eq + 1, err, errlen);
            return CONFIG_ERROR;
        }
    }
    enum config_action act = CONFIG_RUN;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            print_help(out);
            return CONFIG_EXIT_OK;
        }
        if (!strcmp(a, "--version")) {
            fprintf(out, "webhook-router %s\n", WR_VERSION);
            return CONFIG_EXIT_OK;
        }
        if (strncmp(a, "--", 2) != 0) {
            if (!strcmp(a, "healthcheck") && act == CONFIG_RUN) {
                act = CONFIG_HEALTHCHECK;
                continue;
            }
            snprintf(err, errlen, "unexpected argument \"%.100s\" (see --help)", a);
            return CONFIG_ERROR;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t n = eq ? (size_t)(eq - name) : strlen(name);
        const struct setting *s = find_flag(name, n);
        if (!s) {
            snprintf(err, errlen, "unknown flag \"--%.*s\" (see --help)", (int)(n > 100 ? 100 : n), name);
            return CONFIG_ERROR;
        }
        const char *v;
        if (eq) {
            v = eq + 1;
        } else if (s->kind == K_BOOL && (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0)) {
            v = "1";   /* bare --tls-insecure */
        } else if (i + 1 < argc) {
            v = argv[++i];
        } else {
            snprintf(err, errlen, "--%.*s (%s): a value is required", (int)n, name, s->env);
            return CONFIG_ERROR;
        }
        char flag[64];
        flag_name(s->env, flag, sizeof flag);
        if (!apply(c, s, v)) {
            set_error(s, flag, v, err, errlen);
            return CONFIG_ERROR;
        }
    }
    return act;
}
