/* siphash.c - SipHash-2-4, written from the paper's description: four 64-bit
 * words of state, two rounds per 8-byte block, four to finish. */
#include "siphash.h"

#include <string.h>

static uint64_t rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

/* One 8-byte load (the byte loop was not merged into one by the compiler:
 * three quarters of a block's instructions). */
static uint64_t load_le64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

struct sip {
    uint64_t v0, v1, v2, v3;
};

static void sip_round(struct sip *s)
{
    s->v0 += s->v1;
    s->v1 = rotl(s->v1, 13) ^ s->v0;
    s->v0 = rotl(s->v0, 32);
    s->v2 += s->v3;
    s->v3 = rotl(s->v3, 16) ^ s->v2;
    s->v0 += s->v3;
    s->v3 = rotl(s->v3, 21) ^ s->v0;
    s->v2 += s->v1;
    s->v1 = rotl(s->v1, 17) ^ s->v2;
    s->v2 = rotl(s->v2, 32);
}

static void sip_block(struct sip *s, uint64_t m)
{
    s->v3 ^= m;
    sip_round(s);
    sip_round(s);
    s->v0 ^= m;
}

uint64_t siphash24(const uint8_t key[SIPHASH_KEY_LEN], const void *data, size_t len)
{
    uint64_t k0 = load_le64(key), k1 = load_le64(key + 8);
    /* The initial constants spell "somepseudorandomlygeneratedbytes". */
    struct sip s = {k0 ^ 0x736f6d6570736575ULL, k1 ^ 0x646f72616e646f6dULL, k0 ^ 0x6c7967656e657261ULL,
                    k1 ^ 0x7465646279746573ULL};
    const uint8_t *p = data;
    size_t whole = len & ~(size_t)7;
    for (size_t i = 0; i < whole; i += 8) sip_block(&s, load_le64(p + i));
    /* The last block: the tail bytes, the length's low byte on top. */
    uint8_t tail[8] = {0};
    memcpy(tail, p + whole, len - whole);
    tail[7] = (uint8_t)len;
    sip_block(&s, load_le64(tail));
    s.v2 ^= 0xff;
    for (int i = 0; i < 4; i++) sip_round(&s);
    return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}
