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
    char *registry_digest_ref;  /* `registry-digest <ref>`: the reference */
};

enum config_action {
    CONFIG_RUN,          /* start the daemon */
    CONFIG_HEALTHCHECK,  /* `webhook-router healthcheck` */
    CONFIG_REGISTRY_DIGEST, /* `webhook-router registry-digest <ref>` */
    CONFIG_EXIT_OK,      /* --help / --version printed */
    CONFIG_ERROR,        /* err holds one line naming the variable */
};

void config_defaults(struct config *c);
/* envp: NULL-terminated "NAME=value" array (main passes environ).
 * out receives --help / --version text. */
enum config_action config_parse(struct config *c, int argc, char **argv, char *const *envp,
                                FILE *out, char *err, size_t errlen);
void config_free(struct config *c);

#endif
