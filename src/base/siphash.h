/* siphash.h - SipHash-2-4 (Aumasson and Bernstein, 2012): a 64-bit keyed hash.
 *
 * For remembering strings by a tag instead of a copy (routing/dedupe.c): with
 * a secret random key nobody can craft two strings with the same tag, so a
 * tag match is an id match (the chance otherwise is 2^-64 per comparison).
 * Not OpenSSL's SIPHASH MAC, though it is as fast: fetching it starts
 * OpenSSL's default provider, 1.7 MiB of the router's RSS (2.8 -> 4.5 MiB
 * idle, static build) that a router with no https target and no HMAC
 * webhooks never needs otherwise. test_dedupe checks ours against it. */
#ifndef WR_SIPHASH_H
#define WR_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

#define SIPHASH_KEY_LEN 16

uint64_t siphash24(const uint8_t key[SIPHASH_KEY_LEN], const void *data, size_t len);

#endif
