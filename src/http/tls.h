/* tls.h - TLS client sessions over memory, below the HTTP client.
 *
 * OpenSSL never touches a socket: network bytes are fed in with
 * tls_session_feed, and what OpenSSL wants sent is taken out with
 * tls_session_flush, so the socket stays libuv's and nothing blocks. The
 * layering is Redis's (TLS in the connection layer, not in the protocol). */
#ifndef WR_TLS_H
#define WR_TLS_H

#include <stdbool.h>
#include <stddef.h>

struct tls_config;
struct tls_session;

/* Verification against ca_file (NULL: the system bundle), or none when
 * insecure. The OpenSSL context is made on first use (tls_config_load):
 * its initialisation and the parsed system bundle cost ~4 MiB, which a
 * router that only forwards over http never needs to pay. */
struct tls_config *tls_config_new(const char *ca_file, bool insecure);
/* Makes the context now if not yet. 0, or -EINVAL with *err saying why
 * (an unreadable CA file). */
int tls_config_load(struct tls_config *t, const char **err);
void tls_config_free(struct tls_config *t);

/* A client session for host (SNI, and name or IP verification). The
 * config must be loaded. NULL when out of memory. */
struct tls_session *tls_session_new(struct tls_config *t, const char *host);
void tls_session_free(struct tls_session *s);

/* Bytes read from the network. */
void tls_session_feed(struct tls_session *s, const char *data, size_t len);
/* Advances the handshake: 1 complete, 0 needs more input, or a negative
 * errno: -EKEYREJECTED when the peer's certificate failed verification,
 * -ECONNABORTED for another failure. why (may be NULL) gets the reason in
 * words, e.g. "certificate verify failed: self-signed certificate". */
int tls_session_handshake(struct tls_session *s, char *why, size_t whylen);
bool tls_session_established(const struct tls_session *s);
/* Encrypts plaintext for sending (then tls_session_flush). 0 or -ECONNABORTED. */
int tls_session_write(struct tls_session *s, const char *data, size_t len);
/* Decrypted bytes: > 0 read, 0 nothing more until more input,
 * TLS_SESSION_EOF after the peer's close_notify, or -ECONNABORTED. */
#define TLS_SESSION_EOF (-1000)
int tls_session_read(struct tls_session *s, char *out, size_t len);
/* Hands what must go to the network to sink, chunk by chunk; stops at and
 * returns the first negative result of sink, else 0. */
int tls_session_flush(struct tls_session *s, int (*sink)(void *ud, const char *data, size_t len), void *ud);

#endif
