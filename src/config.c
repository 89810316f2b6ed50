/* config.c - environment variables and flags, validated up front.
 *
 * One table describes every setting: its variable, its flag (derived from
 * the variable's name), its default and how to read it. --help is printed
 * from the same table, so it can never disagree with what is parsed.
 *
 * Flags are read before the environment, and a setting given as a flag is
 * never looked up in the environment: a flag wins even over an environment
 * value that would be invalid, which is how an operator overrides a broken
 * inherited variable. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "docker_host.h"
#include "duration.h"

enum kind {
    K_INT,      /* int field, [min, max] */
    K_SIZE,     /* size_t field, [min, max] */
    K_ADDR,     /* IPv4 or IPv6 literal */
    K_DOCKER,   /* comma-separated unix:// and tcp:// engine addresses (docker_host.h) */
    K_PREFIX,   /* label prefix */
    K_LEVEL,    /* enum log_level */
    K_FORMAT,   /* enum log_format */
    K_SECRET,   /* non-empty string, never echoed */
    K_BOOL,     /* bool field */
    K_FILE,     /* path of a readable file */
    K_HOSTS,    /* comma-separated host[:port] list */
    K_DURATION, /* uint64_t milliseconds: "30s", "5m", "1h"; "off" or "0" is 0 */
};

struct setting {
    const char *env;
    const char *def;        /* NULL: unset */
    const char *def_help;   /* how --help shows the default when def is NULL */
    enum kind kind;
    long long min, max;     /* K_INT, K_SIZE */
    size_t offset;          /* of the field in struct config */
    const char *help;
};

#define OFF(field) offsetof(struct config, field)

static const struct setting settings[] = {
    {"LISTEN_ADDR", "0.0.0.0", NULL, K_ADDR, 0, 0, OFF(listen_addr),
     "address to listen on (:: for dual stack)"},
    {"LISTEN_PORT", "3000", NULL, K_INT, 1, 65535, OFF(listen_port), "port to listen on"},
    {"DOCKER_HOST", "unix:///var/run/docker.sock", NULL, K_DOCKER, 0, 0, OFF(docker_host),
     "Docker engine(s): unix:///path or tcp://host:port, comma-separated"},
    {"LABEL_PREFIX", "webhook-router", NULL, K_PREFIX, 0, 0, OFF(label_prefix),
     "prefix of the routing labels (<prefix>.image, <prefix>.url, <prefix>.tag)"},
    {"CACHE_TTL_SECS", "60", NULL, K_INT, 0, 86400, OFF(cache_ttl_secs),
     "full Docker resync interval in seconds, 0 = off"},
    {"LOG_LEVEL", "info", NULL, K_LEVEL, 0, 0, OFF(log_level), "trace, debug, info, warn or error"},
    {"LOG_FORMAT", "json", NULL, K_FORMAT, 0, 0, OFF(log_format), "json, or text for humans"},
    {"WEBHOOK_TOKEN", NULL, "unset", K_SECRET, 0, 0, OFF(webhook_token),
     "require Authorization: Bearer <token> or POST /webhook/<token>"},
    {"WEBHOOK_HMAC_SECRET", NULL, "unset", K_SECRET, 0, 0, OFF(webhook_hmac_secret),
     "require an HMAC-SHA256 body signature (X-Hub-Signature-256 / X-Gitea-Signature)"},
    {"FORWARD_TIMEOUT_SECS", "10", NULL, K_INT, 1, 300, OFF(forward_timeout_secs),
     "timeout of one forward attempt in seconds"},
    {"FORWARD_RETRIES", "3", NULL, K_INT, 0, 20, OFF(forward_retries),
     "retries after the first attempt"},
    {"FORWARD_CONCURRENCY", "64", NULL, K_INT, 1, 10000, OFF(forward_concurrency),
     "forwards in flight at most"},
    {"FORWARD_ORIGIN_CONCURRENCY", "32", NULL, K_INT, 1, 10000, OFF(forward_origin_concurrency),
     "forwards in flight to one target (scheme, host, port) at most"},
    {"FORWARD_QUEUE_MAX", "10000", NULL, K_INT, 1, 10000000, OFF(forward_queue_max),
     "forwards waiting at most (then webhooks get 503)"},
    {"DEBOUNCE_MS", "1000", NULL, K_INT, 0, 600000, OFF(debounce_ms),
     "pushes to one target within this window become one POST"},
    {"TLS_CA_FILE", NULL, "system bundle", K_FILE, 0, 0, OFF(tls_ca_file),
     "CA bundle (PEM) for https targets"},
    {"TLS_INSECURE", "0", NULL, K_BOOL, 0, 0, OFF(tls_insecure),
     "1 to skip certificate verification (bare --tls-insecure means 1)"},
    {"MAX_BODY_BYTES", "1048576", NULL, K_SIZE, 1024, 1073741824, OFF(max_body_bytes),
     "largest webhook body accepted"},
    {"MAX_BUFFERED_BYTES", "67108864", NULL, K_SIZE, 1024, 68719476736LL, OFF(max_buffered_bytes),
     "request-body bytes held across all connections at most (then 503 and close)"},
    {"MAX_CONNECTIONS", "8192", NULL, K_INT, 16, 1000000, OFF(max_connections),
     "open client connections at most (then 503 and close)"},
    {"ENGINE_UPDATES", "0", NULL, K_BOOL, 0, 0, OFF(engine_updates),
     "1 to let <prefix>.update=true routes pull and recreate containers / update services"},
    {"ENGINE_UPDATE_HEALTH_TIMEOUT_SECS", "60", NULL, K_INT, 1, 3600, OFF(engine_update_health_timeout_secs),
     "how long a recreated container with a HEALTHCHECK may take to become healthy, at least "
     "(its own check's start period + interval x retries + timeout when longer)"},
    {"ENGINE_UPDATE_CLEANUP", "0", NULL, K_BOOL, 0, 0, OFF(engine_update_cleanup),
     "1 to remove the old image after a successful container update when nothing else uses it"},
    {"POLL_INTERVAL", NULL, "off", K_DURATION, 0, 0, OFF(poll_interval_ms),
     "watch every route's registry this often (30s, 5m, 1h, or a bare number of seconds: 300);\n"
     "        a route's <prefix>.poll label (same forms) wins"},
    {"REGISTRY_AUTH_FILE", NULL, "none", K_FILE, 0, 0, OFF(registry_auth_file),
     "Docker config.json with registry credentials (auths), for registry watches"},
    {"INSECURE_REGISTRIES", NULL, "none", K_HOSTS, 0, 0, OFF(insecure_registries),
     "registries reached over plain http: host[:port], comma-separated"},
    {"DEPLOY_CONFIRM_SECS", "300", NULL, K_INT, 0, 86400, OFF(deploy_confirm_secs),
     "a delivered redeploy not seen running the pushed image within this is unconfirmed; 0 = off"},
    {"HISTORY_SIZE", "1000", NULL, K_SIZE, 1, 100000, OFF(history_size),
     "delivery history entries kept in memory (GET /history, /status)"},
    {"ADMIN_TOKEN", NULL, "unset", K_SECRET, 0, 0, OFF(admin_token),
     "require Bearer <token> (or Basic, token as password) for /routes /history /status / /metrics"},
};

#define NSETTINGS (sizeof settings / sizeof settings[0])

/* Long enough for the longest variable name, with room to spare. */
#define FLAG_MAX 48

/* "LISTEN_PORT" -> "listen-port" */
static void flag_name(const char *env, char out[FLAG_MAX])
{
    size_t i = 0;
    for (; env[i] && i + 1 < FLAG_MAX; i++) {
        char ch = env[i];
        out[i] = ch == '_' ? '-' : ascii_lower(ch);
    }
    out[i] = '\0';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Decimal digits only: strtoll alone would also take leading blanks, a sign
 * and "0x"-less junk after the number. */
static bool parse_int(const char *v, long long min, long long max, long long *out)
{
    if (!is_digit(v[0])) return false;
    errno = 0;
    char *end;
    long long n = strtoll(v, &end, 10);
    if (errno == ERANGE || *end != '\0' || n < min || n > max) return false;
    *out = n;
    return true;
}

static bool in_set(char c, const char *set)
{
    return c != '\0' && strchr(set, c) != NULL;
}

static bool prefix_ok(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || v[0] == '.' || v[n - 1] == '.') return false;
    for (const char *p = v; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || is_digit(*p) || in_set(*p, "._-"))) return false;
    return true;
}

static bool secret_ok(const char *v)
{
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) return false;
    return true;
}

static bool parse_bool(const char *v, bool *out)
{
    if (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes")) *out = true;
    else if (!strcmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no")) *out = false;
    else return false;
    return true;
}

/* "reg.local:5000, 10.0.0.5:5000,[::1]:5000": exact names, as Docker's
 * --insecure-registry takes them (no CIDR ranges here). */
static bool hosts_ok(const char *v)
{
    bool any = false;
    for (const char *p = v; *p;) {
        while (*p == ',' || *p == ' ') p++;
        size_t n = strcspn(p, ", ");
        if (!n) break;
        for (size_t i = 0; i < n; i++)
            if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') || is_digit(p[i]) ||
                  in_set(p[i], ".-:[]")))
                return false;
        any = true;
        p += n;
    }
    return any;
}

static const char *what_accepts(const struct setting *s, char *tmp, size_t n)
{
    switch (s->kind) {
    case K_INT:
    case K_SIZE: snprintf(tmp, n, "an integer %lld-%lld", s->min, s->max); return tmp;
    case K_ADDR: return "an IPv4 or IPv6 address such as 0.0.0.0 or ::";
    case K_DOCKER: return "unix:///path/to/docker.sock or tcp://host:port, comma-separated";
    case K_PREFIX: return "lower-case letters, digits, '.', '_' or '-', not starting or ending with '.'";
    case K_LEVEL: return "one of trace, debug, info, warn, error";
    case K_FORMAT: return "json or text";
    case K_SECRET: return "printable ASCII without spaces";
    case K_BOOL: return "0, 1, true, false, yes or no";
    case K_FILE: return "a readable file";
    case K_HOSTS: return "host[:port] names, comma-separated";
    case K_DURATION: return "an interval of at least 1s such as 30s, 5m or 1h, a number of seconds such as 300, or off";
    }
    return "a valid value";
}

static void set_string(struct config *c, const struct setting *s, const char *v)
{
    char **slot = (char **)((char *)c + s->offset);
    free(*slot);
    *slot = xstrdup_or_null(v);
}

/* Stores value v for setting s. Returns 0, -EINVAL when v is not acceptable,
 * or for a file the reason it cannot be read (-ENOENT, -EACCES, -EISDIR...). */
static int apply(struct config *c, const struct setting *s, const char *v)
{
    char *field = (char *)c + s->offset;
    long long n;
    switch (s->kind) {
    case K_INT:
        if (!parse_int(v, s->min, s->max, &n)) return -EINVAL;
        *(int *)field = (int)n;
        return 0;
    case K_SIZE:
        if (!parse_int(v, s->min, s->max, &n)) return -EINVAL;
        *(size_t *)field = (size_t)n;
        return 0;
    case K_ADDR: {
        unsigned char tmp[16];
        if (inet_pton(AF_INET, v, tmp) != 1 && inet_pton(AF_INET6, v, tmp) != 1) return -EINVAL;
        break;
    }
    case K_DOCKER: {
        /* Parsed here once; app starts one watcher per entry from the result. */
        struct docker_host *engines;
        size_t count;
        char why[128];
        if (docker_host_parse_list(v, &engines, &count, why, sizeof why) < 0) return -EINVAL;
        docker_host_list_free(c->engines, c->nengines);
        c->engines = engines;
        c->nengines = count;
        break;
    }
    case K_PREFIX:
        if (!prefix_ok(v)) return -EINVAL;
        break;
    case K_LEVEL: {
        static const char *const names[] = {"trace", "debug", "info", "warn", "error"};
        static const enum log_level levels[] = {LOG_TRACE, LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR};
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (strcasecmp(v, names[i]) == 0) {
                *(enum log_level *)field = levels[i];
                return 0;
            }
        return -EINVAL;
    }
    case K_FORMAT:
        if (strcasecmp(v, "json") == 0) *(enum log_format *)field = LOG_FORMAT_JSON;
        else if (strcasecmp(v, "text") == 0) *(enum log_format *)field = LOG_FORMAT_TEXT;
        else return -EINVAL;
        return 0;
    case K_BOOL:
        return parse_bool(v, (bool *)field) ? 0 : -EINVAL;
    case K_SECRET:
        /* "VAR=" is refused, not taken as "not set": a typo or an unset
         * shell variable in a compose file would otherwise turn auth off. */
        if (!*v || !secret_ok(v)) return -EINVAL;
        break;
    case K_HOSTS:
        if (!hosts_ok(v)) return -EINVAL;
        break;
    case K_DURATION: {
        uint64_t ms = 0;
        if (strcmp(v, "off") != 0 && strcmp(v, "0") != 0 && (duration_parse_ms(v, &ms) < 0 || ms < 1000))
            return -EINVAL;
        *(uint64_t *)field = ms;
        return 0;
    }
    case K_FILE: {
        if (!*v) return -EINVAL;
        /* Checked now so a typo stops start-up with this message rather than
         * surfacing later as TLS handshake failures. */
        if (access(v, R_OK) != 0) return -errno;
        struct stat st;
        if (stat(v, &st) == 0 && S_ISDIR(st.st_mode)) return -EISDIR;
        break;
    }
    }
    set_string(c, s, v);
    return 0;
}

/* Appends v quoted, with control characters and non-ASCII escaped, so the
 * error stays one printable line whatever the value holds. */
static void quote_value(struct buf *b, const char *v)
{
    const size_t max = 100;
    size_t n = 0;
    buf_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)v; *p; p++, n++) {
        if (n == max) {
            buf_puts(b, "...");
            break;
        }
        if (*p == '"' || *p == '\\') buf_printf(b, "\\%c", *p);
        else if (*p < 0x20 || *p >= 0x7f) buf_printf(b, "\\x%02x", *p);
        else buf_putc(b, (char)*p);
    }
    buf_putc(b, '"');
}

static void put_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen) snprintf(err, errlen, "%s", msg);
}

/* "LISTEN_PORT: expected an integer 1-65535, got \"abc\"", or with the flag
 * named first when the value came from one. Secrets are never repeated. */
static void set_error(const struct setting *s, bool from_flag, const char *v, int rc, char *err,
                      size_t errlen)
{
    char tmp[64], flag[FLAG_MAX];
    struct buf b;
    buf_init(&b);
    if (from_flag) {
        flag_name(s->env, flag);
        buf_printf(&b, "--%s (%s): ", flag, s->env);
    } else {
        buf_printf(&b, "%s: ", s->env);
    }
    if (s->kind == K_SECRET && !*v) {
        buf_puts(&b, "set but empty, which would turn auth off; give it a value, or unset it to "
                     "run without auth");
        put_err(err, errlen, buf_cstr(&b));
        buf_free(&b);
        return;
    }
    buf_printf(&b, "expected %s", what_accepts(s, tmp, sizeof tmp));
    if (s->kind == K_SECRET) {
        /* The value itself is the secret; not even a part of it is shown. */
    } else if (s->kind == K_FILE && *v) {
        buf_puts(&b, ", cannot read ");
        quote_value(&b, v);
        buf_printf(&b, ": %s", strerror(-rc));
    } else {
        buf_puts(&b, ", got ");
        quote_value(&b, v);
    }
    if (s->kind == K_DOCKER) {
        /* Which entry, and what is wrong with it: a long list is hard to eyeball. */
        struct docker_host *engines;
        size_t n;
        char why[128];
        if (docker_host_parse_list(v, &engines, &n, why, sizeof why) < 0) buf_printf(&b, " (%s)", why);
        else docker_host_list_free(engines, n);
    }
    put_err(err, errlen, buf_cstr(&b));
    buf_free(&b);
}

void config_defaults(struct config *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < NSETTINGS; i++)
        if (settings[i].def && apply(c, &settings[i], settings[i].def) != 0) abort();   /* table bug */
}

static bool holds_string(enum kind k)
{
    return k == K_ADDR || k == K_DOCKER || k == K_PREFIX || k == K_SECRET || k == K_FILE || k == K_HOSTS;
}

static void unknown_free(struct config *c)
{
    for (size_t i = 0; i < c->nunknown; i++) free(c->unknown[i].name);
    free(c->unknown);
    c->unknown = NULL;
    c->nunknown = 0;
}

void config_free(struct config *c)
{
    unknown_free(c);
    for (size_t i = 0; i < NSETTINGS; i++)
        if (holds_string(settings[i].kind)) set_string(c, &settings[i], NULL);
    docker_host_list_free(c->engines, c->nengines);
    c->engines = NULL;
    c->nengines = 0;
    free(c->registry_digest_ref);
    c->registry_digest_ref = NULL;
    notify_config_free(&c->notify);
    free(c->notify_test_name);
    c->notify_test_name = NULL;
}

/* The value of setting s in c as the operator would write it; secrets as
 * "set". Returns out's contents. */
static const char *value_text(const struct config *c, const struct setting *s, char *out, size_t n)
{
    const char *field = (const char *)c + s->offset;
    switch (s->kind) {
    case K_INT: snprintf(out, n, "%d", *(const int *)field); break;
    case K_SIZE: snprintf(out, n, "%zu", *(const size_t *)field); break;
    case K_LEVEL: snprintf(out, n, "%s", log_level_name(*(const enum log_level *)field)); break;
    case K_FORMAT: snprintf(out, n, "%s", *(const enum log_format *)field == LOG_FORMAT_TEXT ? "text" : "json"); break;
    case K_BOOL: snprintf(out, n, "%d", *(const bool *)field ? 1 : 0); break;
    case K_DURATION: {
        unsigned long long ms = *(const uint64_t *)field;
        if (!ms) snprintf(out, n, "off");
        else if (ms % 1000) snprintf(out, n, "%llums", ms);
        else snprintf(out, n, "%llus", ms / 1000);
        break;
    }
    case K_SECRET: snprintf(out, n, "%s", *(char *const *)field ? "set" : "unset"); break;
    case K_ADDR:
    case K_DOCKER:
    case K_PREFIX:
    case K_FILE:
    case K_HOSTS: {
        const char *v = *(char *const *)field;
        snprintf(out, n, "%s", v ? v : "unset");
        break;
    }
    }
    return out;
}

void config_describe_changes(const struct config *c, struct buf *out)
{
    struct config d;
    config_defaults(&d);
    for (size_t i = 0; i < NSETTINGS; i++) {
        char now[256], def[256];
        value_text(c, &settings[i], now, sizeof now);
        if (strcmp(now, value_text(&d, &settings[i], def, sizeof def)) == 0) continue;
        buf_printf(out, "%s%s=%s", out->len ? " " : "", settings[i].env, now);
    }
    config_free(&d);
}

static char upper(char ch)
{
    return ch >= 'a' && ch <= 'z' ? (char)(ch - 'a' + 'A') : ch;
}

/* Damerau-Levenshtein distance of at most 1 (one insertion, deletion,
 * substitution or swap of neighbours), ignoring case. */
static bool one_edit(const char *a, size_t an, const char *b)
{
    size_t bn = strlen(b);
    if (an > bn + 1 || bn > an + 1) return false;
    size_t i = 0;
    while (i < an && i < bn && upper(a[i]) == upper(b[i])) i++;
    if (i == an && i == bn) return true;
    if (an == bn) {
        /* One substitution, or a swap of a[i] and a[i+1]. */
        size_t rest = i + 1;
        if (i + 1 < an && upper(a[i]) == upper(b[i + 1]) && upper(a[i + 1]) == upper(b[i])) rest = i + 2;
        for (size_t k = rest; k < an; k++)
            if (upper(a[k]) != upper(b[k])) return false;
        return true;
    }
    /* One character more in the longer: skip it there. */
    const char *lg = an > bn ? a : b, *sh = an > bn ? b : a;
    size_t sn = an > bn ? bn : an;
    for (size_t k = i; k < sn; k++)
        if (upper(lg[k + 1]) != upper(sh[k])) return false;
    return true;
}

/* Variables of the same first word that belong to others: Docker's client
 * reads DOCKER_* (the router only DOCKER_HOST), and NOTIFY_<NAME>_* are
 * notification targets read by their own code. */
static bool foreign_family(const char *name, size_t len)
{
    return (len >= 7 && strncmp(name, "DOCKER_", 7) == 0) || (len >= 7 && strncmp(name, "NOTIFY_", 7) == 0);
}

/* Variables the orchestrator makes from other containers' names: a
 * Kubernetes service "registry" gives REGISTRY_SERVICE_HOST, REGISTRY_PORT,
 * REGISTRY_PORT_5000_TCP_ADDR...; a Docker link gives <ALIAS>_PORT_...,
 * <ALIAS>_NAME, <ALIAS>_ENV_<VAR>. Not settings, whatever their first word. */
static bool service_link_var(const char *name, size_t len)
{
    static const char *const ends[] = {"_SERVICE_HOST", "_SERVICE_PORT", "_PORT", "_NAME"};
    for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++) {
        size_t n = strlen(ends[i]);
        if (len > n && strncmp(name + len - n, ends[i], n) == 0) return true;
    }
    static const char *const inside[] = {"_SERVICE_PORT_", "_PORT_", "_ENV_"};
    for (size_t i = 0; i < sizeof inside / sizeof inside[0]; i++) {
        size_t n = strlen(inside[i]);
        for (size_t k = 1; k + n <= len; k++)
            if (strncmp(name + k, inside[i], n) == 0) return true;
    }
    return false;
}

bool config_env_suspect(const char *name, size_t len, const char **meant)
{
    *meant = NULL;
    for (size_t i = 0; i < NSETTINGS; i++)
        if (strlen(settings[i].env) == len && strncmp(settings[i].env, name, len) == 0) return false;
    for (size_t i = 0; i < NSETTINGS; i++)
        if (one_edit(name, len, settings[i].env)) {
            *meant = settings[i].env;
            return true;
        }
    if (foreign_family(name, len) || service_link_var(name, len)) return false;
    for (size_t i = 0; i < NSETTINGS; i++) {
        size_t word = strcspn(settings[i].env, "_") + 1;   /* "FORWARD_" */
        if (settings[i].env[word - 1] == '_' && len > word && strncmp(name, settings[i].env, word) == 0)
            return true;
    }
    return false;
}

static void note_unknown(struct config *c, const char *name, size_t len)
{
    const char *meant;
    if (!config_env_suspect(name, len, &meant)) return;
    for (size_t i = 0; i < c->nunknown; i++)
        if (strlen(c->unknown[i].name) == len && strncmp(c->unknown[i].name, name, len) == 0) return;
    c->unknown = xrealloc(c->unknown, (c->nunknown + 1) * sizeof *c->unknown);
    c->unknown[c->nunknown++] = (struct config_unknown){xstrndup(name, len), meant};
}

static void print_help(FILE *out)
{
    fprintf(out,
            "usage: webhook-router [--flag VALUE | --flag=VALUE ...]\n"
            "       webhook-router [--listen-addr A] [--listen-port N] healthcheck\n"
            "       webhook-router [--registry-auth-file F ...] registry-digest REF\n"
            "       webhook-router notify-test NAME\n"
            "       webhook-router --help | --version\n"
            "\n"
            "Receives container-registry push webhooks and POSTs to the webhook URLs that\n"
            "Docker labels ask for. Every setting is an environment variable or a flag;\n"
            "a flag wins over the environment. healthcheck GETs /health on the local port\n"
            "and exits 0 or 1. registry-digest prints the digest the registry has for an\n"
            "image reference (e.g. reg.local:5000/team/app:v1, redis:7) as a registry watch\n"
            "sees it, or the error, and exits 0 or 1. notify-test sends a sample message to\n"
            "the notification target NOTIFY_<NAME>_URL, prints the outcome, exits 0 or 1.\n"
            "Notification targets are environment variables only: NOTIFY_<NAME>_URL (or\n"
            "_URL_FILE), _KIND, _TOKEN (or _TOKEN_FILE), _ON, _TEMPLATE, _TITLE, _HEADERS.\n"
            "\n");
    for (size_t i = 0; i < NSETTINGS; i++) {
        const struct setting *s = &settings[i];
        char flag[FLAG_MAX];
        flag_name(s->env, flag);
        fprintf(out, "  --%-22s %-21s default: %s\n", flag, s->env, s->def ? s->def : s->def_help);
        fprintf(out, "        %s\n", s->help);
    }
    fprintf(out, "\n  %-24s %s\n  %-24s %s\n", "-h, --help", "this text", "--version",
            "print the version and exit");
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
        char flag[FLAG_MAX];
        flag_name(settings[i].env, flag);
        if (strlen(flag) == n && strncmp(flag, name, n) == 0) return &settings[i];
    }
    return NULL;
}

static enum config_action parse_all(struct config *c, int argc, char **argv, char *const *envp,
                                    FILE *out, char *err, size_t errlen)
{
    bool given[NSETTINGS] = {false};   /* decided by a flag (or an earlier env entry) */
    enum config_action act = CONFIG_RUN;
    bool after_secret = false;         /* the previous argument was a secret's value */

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool follows_secret = after_secret;
        after_secret = false;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            print_help(out);
            return CONFIG_EXIT_OK;
        }
        if (!strcmp(a, "--version")) {
            fprintf(out, "webhook-router %s\n", WR_VERSION);
            return CONFIG_EXIT_OK;
        }
        if (a[0] != '-' || a[1] == '\0') {
            if (!strcmp(a, "healthcheck") && act == CONFIG_RUN) {
                act = CONFIG_HEALTHCHECK;
                continue;
            }
            /* The subcommands that take one word: which, where it goes, what it is. */
            const struct {
                const char *name;
                char **slot;
                enum config_action act;
                const char *needs;
            } *sub = NULL, subs[] = {
                {"registry-digest", &c->registry_digest_ref, CONFIG_REGISTRY_DIGEST,
                 "an image reference is required (e.g. redis:7)"},
                {"notify-test", &c->notify_test_name, CONFIG_NOTIFY_TEST,
                 "a target name is required (NOTIFY_<NAME>_URL)"},
            };
            for (size_t k = 0; k < sizeof subs / sizeof subs[0] && act == CONFIG_RUN; k++)
                if (!strcmp(a, subs[k].name)) sub = &subs[k];
            if (sub) {
                if (i + 1 >= argc || argv[i + 1][0] == '-' || !argv[i + 1][0]) {
                    if (err && errlen) snprintf(err, errlen, "%s: %s", sub->name, sub->needs);
                    return CONFIG_ERROR;
                }
                free(*sub->slot);
                *sub->slot = xstrdup(argv[++i]);
                act = sub->act;
                continue;
            }
            /* Right after a secret, a stray word is likely the rest of a
             * token with a space in it: do not print it. */
            if (follows_secret) {
                put_err(err, errlen, "unexpected argument after a secret's value (see --help)");
            } else {
                struct buf b;
                buf_init(&b);
                buf_puts(&b, "unexpected argument ");
                quote_value(&b, a);
                buf_puts(&b, " (see --help)");
                put_err(err, errlen, buf_cstr(&b));
                buf_free(&b);
            }
            return CONFIG_ERROR;
        }
        const char *name = a + (a[1] == '-' ? 2 : 1), *eq = strchr(name, '=');
        size_t n = eq ? (size_t)(eq - name) : strlen(name);
        const struct setting *s = a[1] == '-' ? find_flag(name, n) : NULL;
        if (!s) {
            struct buf b;
            buf_init(&b);
            buf_puts(&b, "unknown flag ");
            /* The name only: what follows '=' may be a secret. */
            char *shown = xstrndup(a, (size_t)(name - a) + n);
            quote_value(&b, shown);
            free(shown);
            buf_puts(&b, " (see --help)");
            put_err(err, errlen, buf_cstr(&b));
            buf_free(&b);
            return CONFIG_ERROR;
        }
        const char *v;
        bool word;
        if (eq) {
            v = eq + 1;
        } else if (s->kind == K_BOOL) {
            /* A bare --tls-insecure means 1; it takes the next argument only
             * when that is a boolean word, so "--tls-insecure healthcheck"
             * still works. */
            if (i + 1 < argc && parse_bool(argv[i + 1], &word)) v = argv[++i];
            else v = "1";
        } else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
            v = argv[++i];
        } else {
            char msg[128];
            snprintf(msg, sizeof msg, "--%.*s (%s): a value is required", (int)n, name, s->env);
            put_err(err, errlen, msg);
            return CONFIG_ERROR;
        }
        int rc = apply(c, s, v);
        if (rc != 0) {
            set_error(s, true, v, rc, err, errlen);
            return CONFIG_ERROR;
        }
        given[s - settings] = true;
        after_secret = s->kind == K_SECRET;
    }

    for (char *const *e = envp; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq) continue;
        const struct setting *s = find_env(*e, (size_t)(eq - *e));
        if (!s) {
            note_unknown(c, *e, (size_t)(eq - *e));
            continue;
        }
        /* An environment block can name a variable twice; like getenv(),
         * the first one counts. */
        if (given[s - settings]) continue;
        given[s - settings] = true;
        int rc = apply(c, s, eq + 1);
        if (rc != 0) {
            set_error(s, false, eq + 1, rc, err, errlen);
            return CONFIG_ERROR;
        }
    }
    notify_config_free(&c->notify);
    if (notify_config_parse(envp, &c->notify, err, errlen) < 0) return CONFIG_ERROR;
    return act;
}

/* The format of the error line itself: parsing stopped at the first bad
 * value, maybe before LOG_FORMAT was read, so it is looked up on its own
 * (flag first, then the first LOG_FORMAT in the environment). JSON unless
 * text is asked for in so many words. */
static enum log_format error_format(int argc, char **argv, char *const *envp)
{
    const char *v = NULL;
    for (int i = 1; i < argc && argv[i] && !v; i++) {
        if (strncmp(argv[i], "--log-format=", 13) == 0) v = argv[i] + 13;
        else if (strcmp(argv[i], "--log-format") == 0 && i + 1 < argc) v = argv[i + 1];
    }
    for (char *const *e = envp; e && *e && !v; e++)
        if (strncmp(*e, "LOG_FORMAT=", 11) == 0) v = *e + 11;
    return v && strcasecmp(v, "text") == 0 ? LOG_FORMAT_TEXT : LOG_FORMAT_JSON;
}

enum config_action config_parse(struct config *c, int argc, char **argv, char *const *envp,
                                FILE *out, char *err, size_t errlen)
{
    enum config_action act = parse_all(c, argc, argv, envp, out, err, errlen);
    if (act == CONFIG_ERROR) c->log_format = error_format(argc, argv, envp);
    return act;
}
