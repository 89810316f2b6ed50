/* sha256.h - SHA-256 (FIPS 180-4) of a short string, without OpenSSL.
 *
 * For fingerprints only (url_redact's "#" and 8 hex digits). Not OpenSSL's
 * EVP_Digest, though that is faster (305 ns against 435 ns for a 60-byte
 * URL, and forward.c keeps each target's redacted form, so no push hashes):
 * its first call starts OpenSSL's default provider, which measured +1.4 MiB
 * on the push flood's peak RSS (4.6 -> 6.0 MiB, static build) in a router
 * that otherwise touches OpenSSL only for https targets and HMAC webhooks.
 * test_url checks ours against OpenSSL at every length to 300 bytes. */
#ifndef WR_SHA256_H
#define WR_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32

void sha256(const void *data, size_t len, uint8_t out[SHA256_LEN]);

#endif
