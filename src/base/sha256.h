/* sha256.h - SHA-256 (FIPS 180-4) of a short string, without OpenSSL.
 *
 * For fingerprints only (url_redact's "#" and 8 hex digits): OpenSSL 3's
 * EVP_Digest looks the algorithm up in its provider store on every call,
 * which cost five times the hash itself on a log line per forward. */
#ifndef WR_SHA256_H
#define WR_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32

void sha256(const void *data, size_t len, uint8_t out[SHA256_LEN]);

#endif
