/* auth.h - webhook authentication (SPEC: Auth). Pure; constant-time. */
#ifndef WR_AUTH_H
#define WR_AUTH_H

#include <stddef.h>

struct auth_input {
    const char *authorization;   /* Authorization header, or NULL */
    const char *path_token;      /* "<token>" of POST /webhook/<token>, or NULL */
    const char *hub_signature;   /* X-Hub-Signature-256: "sha256=<hex>" */
    const char *gitea_signature; /* X-Gitea-Signature: "<hex>" */
    const char *body;
    size_t body_len;
};

/* token / hmac_secret NULL means that check is off. Every configured check
 * must pass. Returns 0, or -EACCES with *why set to a static reason that
 * never contains a secret. */
int auth_check(const char *token, const char *hmac_secret, const struct auth_input *in,
               const char **why);

/* ADMIN_TOKEN on the operational endpoints: `Authorization: Bearer
 * <token>`, or Basic with any user name and the token as the password (so
 * a browser asks). token NULL: open. Returns 0 or -EACCES (*why static,
 * never the secret). Constant-time in the token's content. */
int auth_admin_check(const char *token, const char *authorization, const char **why);

#endif
