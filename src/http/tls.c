/* tls.c - TLS client sessions over memory BIOs (see tls.h). */
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>

#include "buf.h"

struct tls_config {
    SSL_CTX *ctx;          /* NULL until tls_config_load */
    char *ca_file;         /* NULL: the system bundle */
    bool insecure;
};

struct tls_session {
    SSL *ssl;
    bool established;
};

struct tls_config *tls_config_new(const char *ca_file, bool insecure)
{
    struct tls_config *t = xcalloc(1, sizeof *t);
    t->ca_file = ca_file ? xstrdup(ca_file) : NULL;
    t->insecure = insecure;
    return t;
}

int tls_config_load(struct tls_config *t, const char **err)
{
    if (t->ctx) return 0;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        ERR_clear_error();
        *err = "cannot create a TLS context";
        return -EINVAL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    int ok = t->insecure ? 1
             : t->ca_file ? SSL_CTX_load_verify_locations(ctx, t->ca_file, NULL)
                          : SSL_CTX_set_default_verify_paths(ctx);
    if (!ok) {
        ERR_clear_error();
        SSL_CTX_free(ctx);
        *err = t->ca_file ? "TLS_CA_FILE holds no usable PEM certificate" : "cannot load the system CA bundle";
        return -EINVAL;
    }
    t->ctx = ctx;
    return 0;
}

void tls_config_free(struct tls_config *t)
{
    if (!t) return;
    if (t->ctx) SSL_CTX_free(t->ctx);
    free(t->ca_file);
    free(t);
}

static bool is_ip_literal(const char *host)
{
    unsigned char tmp[16];
    return inet_pton(AF_INET, host, tmp) == 1 || inet_pton(AF_INET6, host, tmp) == 1;
}

struct tls_session *tls_session_new(struct tls_config *t, const char *host)
{
    SSL *ssl = t->ctx ? SSL_new(t->ctx) : NULL;
    if (!ssl) return NULL;
    SSL_set_bio(ssl, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
    SSL_set_connect_state(ssl);
    if (is_ip_literal(host)) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host);
    } else {
        SSL_set_tlsext_host_name(ssl, host);   /* SNI */
        SSL_set1_host(ssl, host);              /* hostname verification */
    }
    SSL_set_verify(ssl, t->insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    struct tls_session *s = xcalloc(1, sizeof *s);
    s->ssl = ssl;
    return s;
}

void tls_session_free(struct tls_session *s)
{
    if (!s) return;
    SSL_free(s->ssl);
    free(s);
}

void tls_session_feed(struct tls_session *s, const char *data, size_t len)
{
    BIO_write(SSL_get_rbio(s->ssl), data, (int)len);
}

/* Why a handshake failed, as an errno and words. */
static int handshake_failure(struct tls_session *s, char *why, size_t whylen)
{
    long vr = SSL_get_verify_result(s->ssl);
    char detail[256];
    int err;
    if (vr != X509_V_OK) {
        snprintf(detail, sizeof detail, "certificate verify failed: %s", X509_verify_cert_error_string(vr));
        err = -EKEYREJECTED;
    } else {
        unsigned long e = ERR_peek_last_error();
        const char *reason = e ? ERR_reason_error_string(e) : NULL;
        snprintf(detail, sizeof detail, "TLS handshake failed: %s", reason ? reason : "connection closed");
        err = -ECONNABORTED;
    }
    ERR_clear_error();
    if (why && whylen) snprintf(why, whylen, "%s", detail);
    return err;
}

int tls_session_handshake(struct tls_session *s, char *why, size_t whylen)
{
    if (s->established) return 1;
    int r = SSL_do_handshake(s->ssl);
    if (r == 1) {
        s->established = true;
        return 1;
    }
    int e = SSL_get_error(s->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
    return handshake_failure(s, why, whylen);
}

bool tls_session_established(const struct tls_session *s)
{
    return s->established;
}

int tls_session_write(struct tls_session *s, const char *data, size_t len)
{
    if (SSL_write(s->ssl, data, (int)len) > 0) return 0;
    ERR_clear_error();
    return -ECONNABORTED;
}

int tls_session_read(struct tls_session *s, char *out, size_t len)
{
    int n = SSL_read(s->ssl, out, (int)len);
    if (n > 0) return n;
    int e = SSL_get_error(s->ssl, n);
    if (e == SSL_ERROR_ZERO_RETURN) return TLS_SESSION_EOF;
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
    ERR_clear_error();
    return -ECONNABORTED;
}

int tls_session_flush(struct tls_session *s, int (*sink)(void *ud, const char *data, size_t len), void *ud)
{
    BIO *wbio = SSL_get_wbio(s->ssl);
    char tmp[16 * 1024];
    int n;
    while ((n = BIO_read(wbio, tmp, sizeof tmp)) > 0) {
        int rc = sink(ud, tmp, (size_t)n);
        if (rc < 0) return rc;
    }
    return 0;
}
