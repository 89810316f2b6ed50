/* config.h - settings from the environment and command-line flags.
 *
 * Every SPEC variable is also a flag: LISTEN_PORT <-> --listen-port VALUE
 * (or --listen-port=VALUE). Flags win over the environment. Parsing is pure:
 * the environment is passed in, nothing is read behind the caller's back. */
#ifndef WR_CONFIG_H
#define WR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "log.h"
#include "notify_target.h"

struct docker_host;

struct config {
    char *listen_addr;
    int listen_port;
    char *docker_host;          /* comma-separated list, as given */
    struct docker_host *engines; /* docker_host parsed (docker_host.h): one per entry, in order */
    size_t nengines;            /* >= 1 once parsed */
    char *label_prefix;
    int cache_ttl_secs;
    enum log_level log_level;
    enum log_format log_format;
    char *webhook_token;        /* NULL when unset */
    char *webhook_hmac_secret;  /* NULL when unset */
    int forward_timeout_secs;
    int forward_retries;
    int forward_concurrency;
    int forward_origin_concurrency;   /* in flight per scheme+host+port */
    int forward_queue_max;
    int debounce_ms;
    char *tls_ca_file;          /* NULL: system bundle */
    bool tls_insecure;
    size_t max_body_bytes;
    size_t max_buffered_bytes;  /* bodies being received, all connections together */
    int max_connections;
    bool engine_updates;        /* ENGINE_UPDATES: the router may change the engine (engine_update.h) */
    int engine_update_health_timeout_secs;
    bool engine_update_cleanup; /* ENGINE_UPDATE_CLEANUP: remove the replaced image when unused */
    uint64_t poll_interval_ms;  /* POLL_INTERVAL; 0: only routes with a poll label */
    char *registry_auth_file;   /* Docker config.json with registry credentials; NULL: none */
    char *insecure_registries;  /* "host[:port],..." reached over plain http; NULL: none */
    char *admin_token;          /* ADMIN_TOKEN: guards the operational endpoints; NULL: open */
    int deploy_confirm_secs;    /* 0: redeploys are not confirmed */
    size_t history_size;
    char *registry_digest_ref;  /* `registry-digest <ref>`: the reference */
    struct notify_config notify; /* NOTIFY_<NAME>_* targets */
    char *notify_test_name;     /* `notify-test <name>`: the target */
    /* Environment variables that look like a misspelt setting, found by
     * config_parse; app_start warns about each once. */
    struct config_unknown *unknown;
    size_t nunknown;
};

/* An environment variable config_parse did not use but probably should
 * have: one edit away from a setting (meant is that setting), or a name in
 * the family of the router's settings (meant is NULL). */
struct config_unknown {
    char *name;
    const char *meant;   /* static: a setting's name, or NULL */
};

enum config_action {
    CONFIG_RUN,          /* start the daemon */
    CONFIG_HEALTHCHECK,  /* `webhook-router healthcheck` */
    CONFIG_REGISTRY_DIGEST, /* `webhook-router registry-digest <ref>` */
    CONFIG_NOTIFY_TEST,  /* `webhook-router notify-test <name>` */
    CONFIG_EXIT_OK,      /* --help / --version printed */
    CONFIG_ERROR,        /* err holds one line naming the variable */
};

void config_defaults(struct config *c);
/* envp: NULL-terminated "NAME=value" array (main passes environ).
 * out receives --help / --version text. On CONFIG_ERROR, c->log_format
 * is the format the error line should be written in (LOG_FORMAT as given,
 * whether or not parsing reached it). */
enum config_action config_parse(struct config *c, int argc, char **argv, char *const *envp,
                                FILE *out, char *err, size_t errlen);
void config_free(struct config *c);

/* The settings that differ from their default, as "NAME=value" separated by
 * blanks, in --help's order (secrets as NAME=set), appended to out; for the
 * `starting` line. */
struct buf;
void config_describe_changes(const struct config *c, struct buf *out);

/* Whether name (an environment variable the router does not read) looks
 * like one of its settings: *meant is set to the setting one edit away
 * (Damerau-Levenshtein, case-insensitive), or to NULL when only its first
 * word is that of a setting (FORWARD_*, POLL_*, ...). Docker's own client
 * variables (DOCKER_CONFIG, DOCKER_TLS_VERIFY...) and NOTIFY_* (the
 * notification targets) are never suspects, nor are the variables
 * Kubernetes services and Docker links make (REGISTRY_SERVICE_HOST,
 * WEBHOOK_ROUTER_PORT_3000_TCP...). Pure. */
bool config_env_suspect(const char *name, size_t len, const char **meant);

#endif
